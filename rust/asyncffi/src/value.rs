//! The values that cross the boundary, and the errors an exported function can end with.
//!
//! `Value` is what exported Rust functions take and return: none, bool, int (`i64`, and `u64`
//! above `i64::MAX`), float,
//! bytes, str, list, dict with str keys (insertion order kept), and opaque Rust objects.
//! Scalars travel in a flat C struct; containers travel as one buffer in the codec's encoding
//! (see `codec`).

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::pyref::PyRef;

/// An opaque Rust object handed to Python. Python sees a wrapper with `close()`; Rust code that
/// receives it back gets the same `Arc` and downcasts it.
pub type Object = Arc<dyn Any + Send + Sync>;

/// A value crossing the boundary in either direction.
#[derive(Clone)]
pub enum Value {
    /// Python `None`.
    None,
    /// Python `bool`.
    Bool(bool),
    /// Python `int` within the signed 64-bit range.
    Int(i64),
    /// Python `int` above the signed 64-bit range, up to `2**64 - 1` (msgpack's uint64). The
    /// decoder and the conversions make an `Int` of every int that fits in `i64`; a `UInt` of
    /// a smaller int (made by hand) equals the `Int` of the same value and crosses as it.
    UInt(u64),
    /// Python `float`.
    Float(f64),
    /// Python `bytes`.
    Bytes(Vec<u8>),
    /// Python `str`.
    Str(String),
    /// Python `list` (tuples arrive as lists).
    List(Vec<Value>),
    /// Python `dict` with `str` keys, in insertion order.
    Dict(Vec<(String, Value)>),
    /// An opaque Rust object (only at the top level of a result).
    Object(Object),
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::None => f.write_str("None"),
            Value::Bool(b) => write!(f, "{b:?}"),
            Value::Int(i) => write!(f, "{i:?}"),
            Value::UInt(u) => write!(f, "{u:?}"),
            Value::Float(x) => write!(f, "{x:?}"),
            Value::Bytes(b) => write!(f, "b{:?}", String::from_utf8_lossy(b)),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::List(items) => f.debug_list().entries(items).finish(),
            Value::Dict(entries) => f
                .debug_map()
                .entries(entries.iter().map(|(k, v)| (k, v)))
                .finish(),
            Value::Object(_) => f.write_str("<object>"),
        }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::None, Value::None) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::UInt(a), Value::UInt(b)) => a == b,
            // A `UInt` made by hand may hold a small int: equal by value.
            (Value::Int(i), Value::UInt(u)) | (Value::UInt(u), Value::Int(i)) => {
                u64::try_from(*i) == Ok(*u)
            }
            (Value::Float(a), Value::Float(b)) => a.to_bits() == b.to_bits() || a == b,
            (Value::Bytes(a), Value::Bytes(b)) => a == b,
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::List(a), Value::List(b)) => a == b,
            (Value::Dict(a), Value::Dict(b)) => a == b,
            (Value::Object(a), Value::Object(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

macro_rules! value_from {
    ($($t:ty => $variant:ident),* $(,)?) => {
        $(impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::$variant(v.into())
            }
        })*
    };
}

value_from!(bool => Bool, i64 => Int, i32 => Int, u32 => Int, f64 => Float,
            Vec<u8> => Bytes, String => Str, &str => Str, Vec<Value> => List);

impl From<()> for Value {
    fn from(_: ()) -> Self {
        Value::None
    }
}

/// How an exported function failed. Python raises its package's error for Rust errors, with
/// `kind` as its category and `message` as its text.
///
/// An error converted from a [`crate::PythonError`] keeps the Python exception object, so
/// Python raises the original exception again instead, as long as `kind` and `message` are
/// left as they came (an error Rust annotated is raised as a Rust error).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// A short machine-readable category, such as `"overflow"` or `"not_found"` (for Python
    /// exceptions: the exception's type name).
    pub kind: String,
    /// The human-readable message.
    pub message: String,
    pub(crate) origin: Option<Origin>,
}

/// The Python exception behind an error, and the text it arrived with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    pub(crate) object: PyRef,
    pub(crate) kind: String,
    pub(crate) message: String,
}

impl Error {
    /// The original Python exception, if this error still says what it said.
    pub(crate) fn unchanged_origin(self) -> Option<PyRef> {
        let origin = self.origin?;
        (origin.kind == self.kind && origin.message == self.message).then_some(origin.object)
    }
}

impl Error {
    /// An error of the given kind and message.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        Error {
            kind: kind.into(),
            message: message.into(),
            origin: None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for Error {}

/// The result type of exported async functions.
pub type Result<T = Value> = std::result::Result<T, Error>;
