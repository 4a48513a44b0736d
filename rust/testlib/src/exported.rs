//! The test library's functions and object written with `#[asyncffi::export]` and
//! `#[asyncffi::object]`: Python builds their wrappers from the library's manifest alone
//! (`tests/test_manifest.py`). None of them is in the checked-in header: cbindgen does not
//! see what the macros generate.

use std::collections::BTreeMap;
use std::sync::Mutex;

use asyncffi::{PyCallable, PyStream, Stream, Value};

#[derive(Debug)]
struct TestError(String);

impl std::fmt::Display for TestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Mixes ints of several widths with a label.
///
/// Returns `"<label>:<sum>"`.
#[asyncffi::export]
async fn mix(small: i8, port: u16, count: u32, big: i64, label: String) -> String {
    let sum = i64::from(small) + i64::from(port) + i64::from(count) + big;
    format!("{label}:{sum}")
}

/// The words of `text`, in order (a sync function).
#[asyncffi::export]
fn words(text: String) -> Vec<String> {
    text.split_whitespace().map(String::from).collect()
}

/// `a / b`, a RustError of kind "math" when `b` is 0.
#[asyncffi::export(error_kind = "math")]
fn divide(a: i64, b: i64) -> Result<i64, TestError> {
    if b == 0 {
        return Err(TestError(format!("{a} / 0")));
    }
    Ok(a / b)
}

/// A greeting, `times` times (once by default).
#[asyncffi::export]
async fn greet(name: String, times: Option<u8>) -> String {
    vec![format!("hello {name}"); times.unwrap_or(1).into()].join(", ")
}

/// Looks `key` up; a RustError of kind "missing" if absent.
#[asyncffi::export(error_kind = "missing")]
async fn lookup(key: String) -> Result<u64, TestError> {
    match key.as_str() {
        "one" => Ok(1),
        "two" => Ok(2),
        _ => Err(TestError(format!("no key {key}"))),
    }
}

/// An event, as serde makes it (its stubs are a `TypedDict`: `asyncffi::Record`).
#[derive(serde::Serialize, serde::Deserialize, asyncffi::Record)]
struct Event {
    /// Its number.
    id: u64,
    name: String,
    tags: Vec<String>,
}

/// The event `id`, tagged with `tags`.
#[asyncffi::export]
async fn event(id: u64, tags: Vec<String>) -> Event {
    Event {
        id,
        name: format!("event-{id}"),
        tags,
    }
}

/// The ids of `events` by tag (a list of records as a parameter).
#[asyncffi::export]
async fn by_tag(events: Vec<Event>) -> BTreeMap<String, Vec<u64>> {
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for event in events {
        for tag in event.tags {
            out.entry(tag).or_default().push(event.id);
        }
    }
    out
}

/// Counts the values of `scores` above `floor`.
#[asyncffi::export]
fn above(scores: BTreeMap<String, f64>, floor: f64) -> u32 {
    scores.values().filter(|&&s| s > floor).count() as u32
}

/// The numbers `start, start + step, ...`, `n` of them.
#[asyncffi::export]
fn steps(start: i64, step: i64, n: u32) -> impl Stream<Item = i64> {
    asyncffi::stream::iter((0..i64::from(n)).map(move |i| start + i * step))
}

/// Calls `f` with each of `0..n` and sums the int results.
#[asyncffi::export]
async fn sum_calls(f: PyCallable, n: u32) -> Result<i64, asyncffi::Error> {
    let mut total = 0;
    for i in 0..n {
        if let Value::Int(x) = f.call(vec![Value::Int(i.into())]).await? {
            total += x;
        }
    }
    Ok(total)
}

/// Sums the ints `items` yields.
#[asyncffi::export]
async fn sum_items(mut items: PyStream) -> Result<i64, asyncffi::PythonError> {
    let mut total = 0;
    while let Some(item) = asyncffi::stream::next(&mut items).await {
        if let Value::Int(x) = item? {
            total += x;
        }
    }
    Ok(total)
}

/// A bounded list of notes.
pub(crate) struct Notebook {
    capacity: u32,
    notes: Mutex<Vec<String>>,
}

/// A bounded list of notes.
#[asyncffi::object]
impl Notebook {
    /// A notebook holding at most `capacity` notes (8 by default).
    #[asyncffi::constructor]
    fn new(capacity: Option<u32>) -> Result<Self, TestError> {
        let capacity = capacity.unwrap_or(8);
        if capacity == 0 {
            return Err(TestError("capacity must be > 0".into()));
        }
        Ok(Notebook {
            capacity,
            notes: Mutex::new(Vec::new()),
        })
    }

    /// Adds `note`; returns how many notes there are (a RustError if full).
    async fn add(&self, note: String) -> Result<u32, TestError> {
        asyncffi::stream::yield_now().await;
        let mut notes = self.notes.lock().unwrap();
        if notes.len() as u32 >= self.capacity {
            return Err(TestError("full".into()));
        }
        notes.push(note);
        Ok(notes.len() as u32)
    }

    /// How many notes there are.
    fn len(&self) -> u32 {
        self.notes.lock().unwrap().len() as u32
    }

    /// The notes, in order.
    fn notes(&self) -> Vec<String> {
        self.notes.lock().unwrap().clone()
    }

    /// A copy of this notebook, made by an async method.
    async fn copy(&self) -> Notebook {
        Notebook {
            capacity: self.capacity,
            notes: Mutex::new(self.notes.lock().unwrap().clone()),
        }
    }

    /// A notebook with the notes of both.
    fn merged(a: std::sync::Arc<Notebook>, b: std::sync::Arc<Notebook>) -> Notebook {
        let mut notes = a.notes.lock().unwrap().clone();
        notes.extend(b.notes.lock().unwrap().iter().cloned());
        Notebook {
            capacity: a.capacity + b.capacity,
            notes: Mutex::new(notes),
        }
    }
}

/// How many notes `book` holds (an object passed to a function).
#[asyncffi::export]
async fn count_notes(book: std::sync::Arc<Notebook>) -> u32 {
    book.len()
}

/// A fresh notebook (an object returned by a function).
#[asyncffi::export]
fn fresh_notebook() -> std::sync::Arc<Notebook> {
    std::sync::Arc::new(Notebook {
        capacity: 8,
        notes: Mutex::new(Vec::new()),
    })
}

/// Waits `delay` on the caller's runtime, then returns its name and `label`.
#[asyncffi::export]
async fn where_run(
    delay: std::time::Duration,
    #[asyncffi(keyword, default = "x")] label: String,
    runtime: asyncffi::Runtime,
) -> String {
    match runtime {
        asyncffi::Runtime::AsyncStd => async_std::task::sleep(delay).await,
        asyncffi::Runtime::Own(_) => drop(smol::Timer::after(delay).await),
        _ => tokio::time::sleep(delay).await,
    }
    format!("{}:{label}", runtime.name())
}

/// `f(*args)`, then how many arguments there were and the result.
#[asyncffi::export]
async fn call_with(f: PyCallable, args: asyncffi::Args) -> Result<(u32, Value), asyncffi::Error> {
    let args = args.into_vec();
    let n = args.len() as u32;
    Ok((n, f.call(args).await?))
}

/// The first `n` items of `items`, `n` at least 1 (a ValueError below).
#[asyncffi::export]
async fn first_items(
    mut items: PyStream,
    #[asyncffi(min = 1)] n: u32,
) -> Result<Vec<Value>, asyncffi::PythonError> {
    let mut out = Vec::new();
    while out.len() < n as usize {
        match asyncffi::stream::next(&mut items).await {
            Some(item) => out.push(item?),
            None => break,
        }
    }
    Ok(out)
}

/// `value` `times` times, as a stream.
#[asyncffi::export]
fn repeat(value: Value, #[asyncffi(keyword, default = 2)] times: u32) -> impl Stream<Item = Value> {
    asyncffi::stream::iter((0..times).map(move |_| value.clone()))
}

/// The square root of `x`: a ValueError for a negative `x` (found once the call runs).
#[asyncffi::export]
async fn root(x: f64) -> Result<f64, asyncffi::BuiltinError> {
    if x < 0.0 {
        return Err(asyncffi::BuiltinError::Value(format!("root of {x}")));
    }
    Ok(x.sqrt())
}

/// A notebook of `capacity`, made by an async function.
#[asyncffi::export]
async fn notebook_later(capacity: u32) -> std::sync::Arc<Notebook> {
    asyncffi::stream::yield_now().await;
    std::sync::Arc::new(Notebook {
        capacity,
        notes: Mutex::new(Vec::new()),
    })
}

/// `n` notebooks, of capacities `1..=n`, from a stream.
#[asyncffi::export]
fn notebooks(n: u32) -> impl Stream<Item = Notebook> {
    asyncffi::stream::iter((1..=n).map(|capacity| Notebook {
        capacity,
        notes: Mutex::new(Vec::new()),
    }))
}

/// A notebook if `make`, else None (sync).
#[asyncffi::export]
fn maybe_notebook(make: bool) -> Option<std::sync::Arc<Notebook>> {
    make.then(|| {
        std::sync::Arc::new(Notebook {
            capacity: 1,
            notes: Mutex::new(Vec::new()),
        })
    })
}

/// A notebook if `make`, else None (async).
#[asyncffi::export]
async fn maybe_notebook_later(make: bool) -> Option<std::sync::Arc<Notebook>> {
    maybe_notebook(make)
}
