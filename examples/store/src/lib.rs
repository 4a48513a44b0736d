//! An async Rust library exported to Python with asyncffi, as an outside author writes one:
//! plain Rust with three attributes, no glue code on either side. `python/store/__init__.py`
//! loads the cdylib, and `asyncffi` builds each function's wrapper from the manifest the
//! macros export (signatures, docs, argument checks).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use asyncffi::{PyCallable, Stream, Value};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;

/// This library's own error: raised in Python as `asyncffi.RustError` with `kind == "MyError"`
/// (the type's name) and the `Display` text as its message.
#[derive(Debug)]
pub struct MyError(String);

impl std::fmt::Display for MyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An event: crosses to Python as a dict (`{"id": ..., "name": ..., "tags": [...]}`), by serde.
#[derive(Serialize)]
pub struct Event {
    id: u64,
    name: String,
    tags: Vec<String>,
}

/// Connects to `host:port` and reads `n` lines (fewer if the server closes first), without
/// their line endings.
///
/// An I/O error is raised with its kind, such as "ConnectionRefused".
#[asyncffi::export]
async fn fetch_lines(host: String, port: u16, n: u32) -> Result<Vec<String>, std::io::Error> {
    let stream = TcpStream::connect((host.as_str(), port)).await?;
    let mut lines = BufReader::new(stream).lines();
    let mut out = Vec::new();
    while out.len() < n as usize {
        match lines.next_line().await? {
            Some(line) => out.push(line),
            None => break,
        }
    }
    Ok(out)
}

/// `n` events, one every `every_ms` milliseconds (on async-std's timer).
///
/// `every_ms` above 60000 is refused (a MyError, raised by the first item).
#[asyncffi::export(runtime = "async-std")]
fn events(n: u32, every_ms: u64) -> impl Stream<Item = Result<Event, MyError>> {
    asyncffi::stream::unfold(0u32, move |i| async move {
        if i >= n {
            return None;
        }
        if every_ms > 60_000 {
            // One error, then the end of the stream.
            let error = MyError(format!("every_ms must be at most 60000, not {every_ms}"));
            return Some((Err(error), n));
        }
        async_std::task::sleep(Duration::from_millis(every_ms)).await;
        let event = Event {
            id: i.into(),
            name: format!("event-{i}"),
            tags: if i % 2 == 0 {
                vec!["even".into()]
            } else {
                vec!["odd".into()]
            },
        };
        Some((Ok(event), i + 1))
    })
}

/// Awaits `handler(i)` for each `i` in `0..n` (a plain or an async Python function) and
/// returns the sum of its int results.
///
/// An exception raised by `handler` is raised again, as itself.
#[asyncffi::export]
async fn for_each(handler: PyCallable, n: u32) -> Result<u64, asyncffi::Error> {
    let mut total = 0u64;
    for i in 0..n {
        match handler.call(vec![Value::Int(i.into())]).await? {
            Value::Int(x) => total = total.wrapping_add(x as u64),
            other => {
                let message = format!("handler({i}) returned {other:?}, not an int");
                return Err(asyncffi::Error::new("TypeError", message));
            }
        }
    }
    Ok(total)
}

/// The library's version.
#[asyncffi::export]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// A key-value store in memory holding at most `capacity` keys (the oldest goes first).
pub struct Store {
    capacity: usize,
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    values: HashMap<String, Vec<u8>>,
    /// Keys, oldest first.
    order: VecDeque<String>,
}

/// A key-value store in memory holding at most `capacity` keys (the oldest goes first).
#[asyncffi::object]
impl Store {
    /// A store of at most `capacity` keys (1024 by default); 0 is refused.
    #[asyncffi::constructor]
    fn new(capacity: Option<u32>) -> Result<Self, MyError> {
        let capacity = capacity.unwrap_or(1024);
        if capacity == 0 {
            return Err(MyError("capacity must be at least 1".into()));
        }
        Ok(Store {
            capacity: capacity as usize,
            entries: Mutex::new(Entries::default()),
        })
    }

    /// The value of `key`, or None.
    async fn get(&self, key: String) -> Option<Vec<u8>> {
        self.entries.lock().unwrap().values.get(&key).cloned()
    }

    /// Sets `key` to `value`; a new key beyond the capacity drops the oldest one.
    async fn set(&self, key: String, value: Vec<u8>) {
        let mut entries = self.entries.lock().unwrap();
        if entries.values.insert(key.clone(), value).is_none() {
            entries.order.push_back(key);
            if entries.order.len() > self.capacity {
                let oldest = entries.order.pop_front().expect("not empty");
                entries.values.remove(&oldest);
            }
        }
    }

    /// How many keys the store holds.
    fn len(&self) -> u64 {
        self.entries.lock().unwrap().values.len() as u64
    }
}
