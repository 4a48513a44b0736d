//! The `Client` object: a Redis client behind one `redis::aio::ConnectionManager`, which
//! multiplexes every command sent on it (from any number of Python tasks) over one TCP
//! connection, pipelining them as they come.
//!
//! Connection and reconnection are the crate's: the connection is made by `open()` (Python's
//! `connect()` awaits it), each connection attempt gives up after `connection_timeout`, and a
//! command with no reply within `response_timeout` fails with kind `timeout`. When the
//! connection breaks, the commands in flight fail (`connection_dropped`, `io` or `timeout`)
//! and the manager reconnects in the background, retrying up to `retries` times with an
//! exponential backoff from 100 ms; commands sent after that use the new connection, so a
//! client recovers by itself once the server is back.

use std::time::Duration;

use asyncffi::Value;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::FromRedisValue;
use tokio::sync::OnceCell;

use crate::arg::Arg;
use crate::error::Error;
use crate::{pubsub, reply};

/// An async Redis client (one multiplexed connection).
pub struct Client {
    client: redis::Client,
    config: ConnectionManagerConfig,
    manager: OnceCell<ConnectionManager>,
}

/// Seconds as an optional duration: `None` keeps the crate's default, `0` means none at all.
fn timeout(name: &str, seconds: Option<f64>) -> Result<Option<Option<Duration>>, Error> {
    match seconds {
        None => Ok(None),
        Some(0.0) => Ok(Some(None)),
        Some(s) => Duration::try_from_secs_f64(s)
            .map(|d| Some(Some(d)))
            .map_err(|_| Error::Own("value", format!("{name} must be >= 0 seconds, got {s}"))),
    }
}

impl Client {
    async fn conn(&self) -> Result<ConnectionManager, Error> {
        let manager = self
            .manager
            .get_or_try_init(|| {
                ConnectionManager::new_with_config(self.client.clone(), self.config.clone())
            })
            .await?;
        Ok(manager.clone())
    }

    async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, Error> {
        let mut conn = self.conn().await?;
        Ok(cmd.query_async(&mut conn).await?)
    }
}

/// An async Redis client (one multiplexed connection).
#[asyncffi::object]
impl Client {
    /// A client of the server at `url` (`redis://[:password@]host[:port][/db]`); nothing
    /// is sent before `open()` or the first command.
    ///
    /// `response_timeout` and `connection_timeout` are in seconds (`None`: the crate's
    /// defaults, 0.5 s and 1 s; `0`: none); `retries` is how often a lost connection is
    /// tried again (`None`: 6).
    #[asyncffi::constructor]
    fn new(
        url: String,
        response_timeout: Option<f64>,
        connection_timeout: Option<f64>,
        retries: Option<u32>,
    ) -> Result<Self, Error> {
        let client = redis::Client::open(url.as_str())?;
        let mut config = ConnectionManagerConfig::new();
        if let Some(t) = timeout("response_timeout", response_timeout)? {
            config = config.set_response_timeout(t);
        }
        if let Some(t) = timeout("connection_timeout", connection_timeout)? {
            config = config.set_connection_timeout(t);
        }
        if let Some(n) = retries {
            config = config.set_number_of_retries(n as usize);
        }
        Ok(Client {
            client,
            config,
            manager: OnceCell::new(),
        })
    }

    /// Connects (once; later calls return at once).
    async fn open(&self) -> Result<(), Error> {
        self.conn().await.map(|_| ())
    }

    /// PING: `True`.
    async fn ping(&self) -> Result<bool, Error> {
        let pong: String = self.query(&redis::cmd("PING")).await?;
        Ok(pong == "PONG")
    }

    /// The value of `key`, or `None`.
    async fn get(&self, key: Arg) -> Result<Option<Vec<u8>>, Error> {
        self.query(redis::cmd("GET").arg(key)).await
    }

    /// Sets `key` to `value`: `True`, or `None` when `nx` or `xx` kept it from being set.
    /// `ex` expires it after that many seconds (a fraction is sent as milliseconds), `px`
    /// after that many milliseconds.
    async fn set(
        &self,
        key: Arg,
        value: Arg,
        ex: Option<f64>,
        px: Option<u64>,
        nx: Option<bool>,
        xx: Option<bool>,
    ) -> Result<Option<bool>, Error> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(value);
        if let Some(seconds) = ex {
            if !(seconds > 0.0 && seconds.is_finite()) {
                return Err(Error::Own(
                    "value",
                    format!("ex must be > 0, got {seconds}"),
                ));
            }
            if seconds.fract() == 0.0 {
                cmd.arg("EX").arg(seconds as u64);
            } else {
                cmd.arg("PX").arg((seconds * 1000.0).ceil() as u64);
            }
        }
        if let Some(ms) = px {
            cmd.arg("PX").arg(ms);
        }
        if nx == Some(true) {
            cmd.arg("NX");
        }
        if xx == Some(true) {
            cmd.arg("XX");
        }
        let reply: redis::Value = self.query(&cmd).await?;
        Ok(match reply {
            redis::Value::Nil => None,
            _ => Some(true),
        })
    }

    /// The values of `keys` (a list), `None` for each missing one.
    async fn mget(&self, keys: Vec<Arg>) -> Result<Vec<Option<Vec<u8>>>, Error> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.query(redis::cmd("MGET").arg(keys)).await
    }

    /// DEL: how many of `keys` existed.
    #[asyncffi::export(name = "_delete")]
    async fn delete(&self, keys: Vec<Arg>) -> Result<i64, Error> {
        self.query(redis::cmd("DEL").arg(keys)).await
    }

    /// INCRBY: the new value of `key` after adding `amount` (1 by default).
    async fn incr(&self, key: Arg, amount: Option<i64>) -> Result<i64, Error> {
        self.query(redis::cmd("INCRBY").arg(key).arg(amount.unwrap_or(1)))
            .await
    }

    /// HSET: how many of the `(field, value)` pairs were new fields.
    #[asyncffi::export(name = "_hset")]
    async fn hset(&self, key: Arg, pairs: Vec<(Arg, Arg)>) -> Result<i64, Error> {
        let mut cmd = redis::cmd("HSET");
        cmd.arg(key);
        for (field, value) in &pairs {
            cmd.arg(field).arg(value);
        }
        self.query(&cmd).await
    }

    /// HGETALL as the flat list `[field, value, ...]`.
    #[asyncffi::export(name = "_hgetall")]
    async fn hgetall(&self, key: Arg) -> Result<Value, Error> {
        let flat: redis::Value = self.query(redis::cmd("HGETALL").arg(key)).await?;
        reply::flat_pairs(flat)
    }

    /// Any command, as its words: its reply (see `reply` for the types).
    #[asyncffi::export(name = "_execute_command")]
    async fn execute_command(&self, args: Vec<Arg>) -> Result<Value, Error> {
        let Some((name, rest)) = args.split_first() else {
            return Err(Error::Own("value", "a command needs a name".into()));
        };
        let mut cmd = redis::cmd(&String::from_utf8_lossy(&name.0));
        cmd.arg(rest);
        reply::to_value(self.query(&cmd).await?)
    }

    /// Sends `commands` (each a list of words) in one round trip, wrapped in MULTI/EXEC when
    /// `transaction` is true: the list of their replies. An error reply fails the call with
    /// that error.
    async fn pipeline(
        &self,
        commands: Vec<Vec<Arg>>,
        transaction: Option<bool>,
    ) -> Result<Value, Error> {
        let mut pipe = redis::pipe();
        if transaction == Some(true) {
            pipe.atomic();
        }
        for words in &commands {
            let Some((name, rest)) = words.split_first() else {
                return Err(Error::Own("value", "a command needs a name".into()));
            };
            pipe.cmd(&String::from_utf8_lossy(&name.0)).arg(rest);
        }
        if commands.is_empty() {
            return Ok(Value::List(Vec::new()));
        }
        let mut conn = self.conn().await?;
        let replies: redis::Value = pipe.query_async(&mut conn).await?;
        reply::to_value(replies)
    }

    /// Subscribes to `channels` on a connection of its own (see the `pubsub` module).
    #[asyncffi::export(name = "_subscribe")]
    fn subscribe(
        &self,
        channels: Vec<Arg>,
    ) -> impl asyncffi::Stream<Item = Result<Value, Error>> + Send + 'static {
        pubsub::messages(self.client.clone(), channels)
    }

    /// The keys matching `pattern` (all if `None`), by SCAN (`count`: its hint).
    fn scan_iter(
        &self,
        pattern: Option<String>,
        count: Option<u32>,
    ) -> impl asyncffi::Stream<Item = Result<Vec<u8>, Error>> + Send + 'static {
        let conn = self.manager.get().cloned().ok_or(Error::Own(
            "client",
            "scan_iter needs an open client (await connect(...) first)".into(),
        ));
        pubsub::scan(conn, pattern, count)
    }
}
