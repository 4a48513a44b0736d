//! [`Error`]: a Redis error on its way to Python, where it is a `RustError` whose `kind` says
//! what went wrong:
//!
//! | kind | when |
//! |---|---|
//! | `connection_refused` | nothing listens at the address (connecting, or reconnecting) |
//! | `timeout` | no reply within the response timeout, or no connection within the connection timeout |
//! | `connection_dropped` | the connection closed under a command (the server went away) |
//! | `io` | any other socket error |
//! | `auth` | the server wants a password, or refused the one given |
//! | `wrong_type` | the command does not apply to the key's type (`WRONGTYPE`) |
//! | `response` | any other error reply from the server (`ERR ...`) |
//! | `invalid_config` | a URL or setting the crate refuses |
//! | `type` | a reply of another type than the command's (a parse error) |
//! | `client` | anything else the crate reports |
//!
//! The message is the server's for an error reply, else the crate's own text.

use std::fmt;

use asyncffi::IntoError;
use redis::ErrorKind;

/// A `redis::RedisError`, or a message of our own with its kind.
#[derive(Debug)]
pub enum Error {
    /// An error the crate reported.
    Redis(redis::RedisError),
    /// An error of this library: `(kind, message)`.
    Own(&'static str, String),
}

impl From<redis::RedisError> for Error {
    fn from(e: redis::RedisError) -> Self {
        Error::Redis(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Redis(e) => write!(f, "{e}"),
            Error::Own(_, message) => f.write_str(message),
        }
    }
}

/// The `kind` of a crate error (see the table above).
pub fn kind_of(e: &redis::RedisError) -> &'static str {
    if e.is_connection_refusal() {
        return "connection_refused";
    }
    if e.is_timeout() {
        return "timeout";
    }
    if e.is_connection_dropped() {
        return "connection_dropped";
    }
    match e.code() {
        Some("WRONGTYPE") => return "wrong_type",
        Some("NOAUTH" | "WRONGPASS") => return "auth",
        _ => {}
    }
    match e.kind() {
        ErrorKind::Io => "io",
        ErrorKind::AuthenticationFailed => "auth",
        ErrorKind::InvalidClientConfig => "invalid_config",
        ErrorKind::UnexpectedReturnType | ErrorKind::Parse => "type",
        ErrorKind::Server(_) => "response",
        _ => "client",
    }
}

/// The message of a crate error: an error reply as the server wrote it (`WRONGTYPE
/// Operation against a key ...`), anything else as the crate words it.
pub fn message_of(e: &redis::RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        _ => e.to_string(),
    }
}

impl IntoError for Error {
    fn into_error(self) -> asyncffi::Error {
        match self {
            Error::Redis(e) => asyncffi::Error::new(kind_of(&e), message_of(&e)),
            Error::Own(kind, message) => asyncffi::Error::new(kind, message),
        }
    }
}

impl std::error::Error for Error {}
