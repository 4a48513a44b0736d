//! The cdylib shipped inside the `asyncffi` Python package: the core C ABI (re-exported from the
//! `asyncffi` crate) plus the built-in functions behind `asyncffi.demo`, used by the README,
//! the tests and the benchmarks.
//!
//! The built-ins are written with `#[asyncffi::export]` and `#[asyncffi::object]` like any
//! library's functions: their C shims, their manifest entries and, from those, their Python
//! wrappers (and `asyncffi/demo.pyi`) are generated. Symbols are `asyncffi_native_<name>`.
#![deny(unsafe_op_in_unsafe_fn)]

use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use asyncffi::{
    codec, stream, Args, BuiltinError, Error, PyCall, PyCallable, PyStream, Runtime, Stream, Value,
};

// Keep the core ABI in this library: referencing one item of `asyncffi::ffi` makes the linker
// keep its object file, whose `#[no_mangle]` functions are then exported.
pub use asyncffi::ffi::affi_abi_version;

async fn sleep_on(runtime: Runtime, duration: Duration) {
    match runtime {
        Runtime::AsyncStd => async_std::task::sleep(duration).await,
        // tokio, the loop (in tokio's context); the built-ins register no runtime of their own.
        _ => tokio::time::sleep(duration).await,
    }
}

fn overflow(what: impl std::fmt::Display) -> Error {
    Error::new("overflow", format!("{what} does not fit in 64 bits"))
}

/// Sleeps ``seconds`` on the runtime's timer; the event loop stays free meanwhile.
///
/// :raises ValueError: negative, NaN or infinite ``seconds`` (when awaited).
#[asyncffi::export]
async fn sleep(seconds: Duration, runtime: Runtime) {
    sleep_on(runtime, seconds).await;
}

/// Returns ``value`` after a round trip through Rust (tuples come back as lists).
#[asyncffi::export]
async fn echo(value: Value, _runtime: Runtime) -> Value {
    value
}

/// ``a + b`` in Rust; ``RustError`` of kind ``"overflow"`` if it leaves 64 bits.
#[asyncffi::export]
async fn add(a: i64, b: i64) -> Result<i64, Error> {
    a.checked_add(b)
        .ok_or_else(|| overflow(format_args!("{a} + {b}")))
}

/// Raises ``RustError(message)`` with ``.kind == kind`` from Rust.
#[asyncffi::export]
async fn fail(
    message: String,
    #[asyncffi(keyword, default = "demo")] kind: String,
) -> Result<Value, Error> {
    Err(Error::new(kind, message))
}

/// Panics in the Rust future; raises ``RustPanic(message)``.
#[asyncffi::export]
async fn panic(message: String) -> Value {
    if message.is_empty() {
        panic!("explicit panic");
    }
    panic!("{message}");
}

/// Never completes: a Rust future to cancel.
#[asyncffi::export]
async fn pending(_runtime: Runtime) -> Value {
    std::future::pending::<Value>().await
}

/// ``sum(range(n))``, computed by a loop on tokio's blocking pool.
#[asyncffi::export]
async fn cpu(#[asyncffi(min = 0)] n: u64) -> Result<i64, Error> {
    let closed_form = u128::from(n) * u128::from(n.saturating_sub(1)) / 2;
    if closed_form > i64::MAX as u128 {
        return Err(overflow(format_args!("sum(range({n}))")));
    }
    tokio::task::spawn_blocking(move || {
        // A loop rather than the closed form: this is meant to burn CPU.
        let mut sum: i64 = 0;
        for i in 0..n {
            sum = sum.wrapping_add(std::hint::black_box(i as i64));
        }
        sum
    })
    .await
    .map_err(|e| Error::new("join", e.to_string()))
}

/// Sleeps ``interval`` seconds ``count`` times on tokio; returns the observed offsets (in
/// seconds since the start) of each wake-up.
#[asyncffi::export]
async fn tick(interval: Duration, #[asyncffi(min = 0)] count: u32) -> Vec<f64> {
    let start = Instant::now();
    // Sized by what arrives, not by the caller's count (which may be huge).
    let mut offsets = Vec::new();
    for _ in 0..count {
        tokio::time::sleep(interval).await;
        offsets.push(start.elapsed().as_secs_f64());
    }
    offsets
}

/// An opaque Rust counter: ``await counter.add(n)`` returns the running total.
#[derive(Default)]
struct Counter {
    total: AtomicI64,
}

/// An opaque Rust counter: ``await counter.add(n)`` returns the running total.
#[asyncffi::object]
impl Counter {
    /// A counter at 0.
    #[asyncffi::constructor]
    fn new() -> Self {
        Counter::default()
    }

    /// Adds ``n`` in Rust and returns the new total.
    ///
    /// :raises ClosedError: the counter is closed.
    async fn add(&self, n: i64) -> Result<i64, Error> {
        let mut current = self.total.load(Ordering::Relaxed);
        loop {
            let next = current
                .checked_add(n)
                .ok_or_else(|| overflow(format_args!("{current} + {n}")))?;
            match self.total.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(next),
                Err(seen) => current = seen,
            }
        }
    }
}

// === Rust awaiting Python ===
//
// ``fn`` may be an ``async def`` function, any callable returning an awaitable, or a plain
// function. Each call runs on the event loop awaiting the Rust call, as an asyncio task, in a
// copy of the contextvars context of the code that called the ``demo`` function.

/// Rust awaits ``fn(*args)`` once and returns its result (a Python exception comes back as
/// the original exception object).
#[asyncffi::export]
async fn call_python(r#fn: PyCallable, args: Args, _runtime: Runtime) -> Result<Value, Error> {
    Ok(r#fn.call(args.into_vec()).await?)
}

/// Rust awaits ``fn(i)`` for ``i`` in ``range(n)`` one after another and returns the sum of
/// the int results.
#[asyncffi::export]
async fn call_python_n(
    r#fn: PyCallable,
    #[asyncffi(min = 0)] n: u64,
    _runtime: Runtime,
) -> Result<i64, Error> {
    let mut sum: i64 = 0;
    for i in 0..n {
        let value = r#fn.call(vec![Value::Int(i as i64)]).await?;
        let Value::Int(x) = value else {
            return Err(Error::new(
                "type",
                format!("fn({i}) returned {value:?}, not an int"),
            ));
        };
        sum = sum.checked_add(x).ok_or_else(|| overflow("the sum"))?;
    }
    Ok(sum)
}

/// How many calls `gather_python` starts at a time. Two such chunks are in flight at most: the
/// next chunk starts once every call of the oldest one is answered. Enough to keep the event
/// loop's batches full, and a bound on the memory the fan-out holds whatever `n` is.
const GATHER_CHUNK: u64 = 1024;

/// Rust awaits ``fn(i)`` for every ``i`` in ``range(n)`` concurrently and returns the results
/// in order; the first exception cancels the calls still running. At most 2048 calls are in
/// flight at a time, whatever ``n`` is.
///
/// :raises ValueError: ``n`` above ``2**32 - 1``, more than a list can hold.
#[asyncffi::export]
async fn gather_python(
    r#fn: PyCallable,
    #[asyncffi(min = 0)] n: u64,
    _runtime: Runtime,
) -> Result<Vec<Value>, Error> {
    // At most `2 * GATHER_CHUNK` calls are in flight. Memory is that window plus the results
    // collected so far, which is the list Python gets; `n` above what a list result can hold
    // (`codec::MAX_LEN`) is refused with ValueError.
    if usize::try_from(n).map_or(true, |n| n > codec::MAX_LEN) {
        return Err(BuiltinError::Value(format!(
            "n={n} is more results than a list can hold (at most {})",
            codec::MAX_LEN
        ))
        .into());
    }
    let start = |first: u64| -> Vec<PyCall> {
        (first..n.min(first + GATHER_CHUNK))
            .map(|i| r#fn.call(vec![Value::Int(i as i64)]))
            .collect()
    };
    // The results vector grows as results arrive, never pre-sized by the caller's `n`.
    let mut results = Vec::new();
    let mut oldest = start(0);
    let mut newer = start(GATHER_CHUNK);
    let mut next = 2 * GATHER_CHUNK;
    while !oldest.is_empty() {
        // Awaiting the chunk's last call first wakes this task once per chunk rather than once
        // per answer (Python answers a batch in order); the others are then ready, and are
        // taken in order so that the first failure in order wins.
        let last = match oldest.pop() {
            Some(call) => Some(call.await),
            None => None,
        };
        for call in oldest {
            results.push(call.await?);
        }
        if let Some(last) = last {
            results.push(last?);
        }
        oldest = std::mem::replace(&mut newer, start(next));
        next = next.saturating_add(GATHER_CHUNK);
        // Between chunks, let other tasks (and a cancellation) in.
        stream::yield_now().await;
    }
    Ok(results)
}

/// Rust starts ``fn(*args)`` and drops it after ``seconds`` (which cancels the Python task):
/// returns True if it timed out, else its result.
#[asyncffi::export]
async fn timeout_python(
    r#fn: PyCallable,
    seconds: Duration,
    args: Args,
    runtime: Runtime,
) -> Result<Value, Error> {
    let call = r#fn.call(args.into_vec());
    match first(call, sleep_on(runtime, seconds)).await {
        Either::Left(result) => Ok(result?),
        Either::Right(()) => Ok(Value::Bool(true)), // the call is dropped: cancelled
    }
}

enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Waits for whichever of `a` and `b` finishes first (`a` wins ties) and drops the other.
async fn first<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let mut a = std::pin::pin!(a);
    let mut b = std::pin::pin!(b);
    std::future::poll_fn(move |cx| {
        if let Poll::Ready(x) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(x));
        }
        if let Poll::Ready(y) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(y));
        }
        Poll::Pending
    })
    .await
}

// === Benchmark floor ===

/// The cross-thread floor of the benchmarks: a plain thread (no runtime, no task table)
/// completes ``count`` calls, tokens ``first_token .. first_token + count``, on ``port`` with
/// ``None``, through the same queue, coalesced wake and drain as real completions. It
/// measures what completing a future from another thread costs at the least.
#[asyncffi::export]
fn bench_complete_from_thread(port: u64, first_token: u64, count: u64) -> Result<(), Error> {
    let port = asyncffi::port::Port::get(port).map_err(|f| Error::new("value", f.message))?;
    std::thread::Builder::new()
        .name("asyncffi-bench".into())
        .spawn(move || {
            for token in first_token..first_token.saturating_add(count) {
                port.push(token, asyncffi::port::Outcome::Done(Ok(Value::None)));
            }
        })
        .map(drop)
        .map_err(|e| Error::new("thread", e.to_string()))
}

// === Streams ===
//
// Rust -> Python: the function returns a ``RustStream``, an async iterator. ``buffer`` bounds
// how many items the Rust producer runs ahead of the consumer (default 1024).
//
// Python -> Rust: ``aiter`` may be an async iterator, an async generator or a plain iterable;
// Rust reads it as a stream, asking for up to ``prefetch`` items ahead (default 1024). When Rust
// drops it, the iterator is closed (an async generator's ``finally`` blocks run).

/// The produced-items counter of the most recent `count` stream.
static LAST_COUNT: Mutex<Option<Arc<AtomicU64>>> = Mutex::new(None);

/// A Rust stream of ``0, 1, ..., n - 1``, sleeping ``delay`` seconds before each item.
#[asyncffi::export]
fn count(
    #[asyncffi(min = 0)] n: i64,
    #[asyncffi(keyword, default = 0.0)] delay: Duration,
    runtime: Runtime,
) -> impl Stream<Item = i64> {
    let produced = Arc::new(AtomicU64::new(0));
    *LAST_COUNT.lock().unwrap_or_else(|e| e.into_inner()) = Some(produced.clone());
    stream::unfold(0i64, move |i| {
        let produced = produced.clone();
        async move {
            if i >= n {
                return None;
            }
            if !delay.is_zero() {
                sleep_on(runtime, delay).await;
            }
            produced.fetch_add(1, Ordering::Relaxed);
            Some((i, i + 1))
        }
    })
}

/// How many items the most recent ``count`` stream has produced so far (0 before any):
/// with a slow consumer it stays within ``buffer`` of what was consumed.
#[asyncffi::export]
fn count_produced() -> u64 {
    let last = LAST_COUNT.lock().unwrap_or_else(|e| e.into_inner());
    last.as_ref()
        .map_or(0, |produced| produced.load(Ordering::Relaxed))
}

/// A Rust stream of ``0, ..., n - 1`` that then raises ``RustError(message)``.
#[asyncffi::export]
fn fail_after(
    #[asyncffi(min = 0)] n: i64,
    message: String,
) -> impl Stream<Item = Result<i64, Error>> {
    let items = (0..n)
        .map(Ok)
        .chain(std::iter::once(Err(Error::new("demo", message))));
    stream::iter(items)
}

/// Rust sums the ints ``aiter`` yields (an exception it raises comes back as itself).
#[asyncffi::export]
async fn sum_stream(mut aiter: PyStream, _runtime: Runtime) -> Result<i64, Error> {
    let mut sum: i64 = 0;
    while let Some(item) = stream::next(&mut aiter).await {
        let value = item?;
        let Value::Int(x) = value else {
            return Err(Error::new("type", format!("{value:?} is not an int")));
        };
        sum = sum.checked_add(x).ok_or_else(|| overflow("the sum"))?;
    }
    Ok(sum)
}

/// A Rust stream of what ``aiter`` yields: Python -> Rust -> Python.
#[asyncffi::export]
fn echo_stream(aiter: PyStream, _runtime: Runtime) -> impl Stream<Item = Result<Value, Error>> {
    stream::unfold(aiter, |mut items| async move {
        let item = stream::next(&mut items).await?;
        Some((item.map_err(Error::from), items))
    })
}

/// Rust reads the first ``k`` items of ``aiter`` (fewer if it ends first), returns them as
/// a list, and drops the stream, which closes ``aiter``.
#[asyncffi::export]
async fn take(
    mut aiter: PyStream,
    #[asyncffi(min = 0)] k: u64,
    _runtime: Runtime,
) -> Result<Vec<Value>, Error> {
    let mut taken = Vec::new();
    while (taken.len() as u64) < k {
        match stream::next(&mut aiter).await {
            Some(item) => taken.push(item?),
            None => break,
        }
    }
    drop(aiter);
    Ok(taken)
}
