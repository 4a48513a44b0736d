//! The cdylib shipped inside the `asyncffi` Python package: the core C ABI (re-exported from the
//! `asyncffi` crate) plus the built-in functions behind `asyncffi.demo`, used by the README,
//! the tests and the benchmarks.
//!
//! Each async built-in has the exported-function shape: `(port, token, arguments...) -> i64`,
//! a task id or a negative `AffiStatus`; stream built-ins take the stream's `buffer` last.
#![deny(unsafe_op_in_unsafe_fn)]

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::future::Future;
use std::task::Poll;

use asyncffi::{
    args, guard, object, spawn, spawn_stream, stream, AffiStatus, Error, Failure, PyCallable,
    PyStream, Runtime, Value,
};

// Keep the core ABI in this library: referencing one item of `asyncffi::ffi` makes the linker
// keep its object file, whose `#[no_mangle]` functions are then exported.
pub use asyncffi::ffi::affi_abi_version;

fn runtime(raw: u32) -> Result<Runtime, Failure> {
    Runtime::from_raw(raw)
}

fn duration(seconds: f64) -> Result<Duration, Failure> {
    Duration::try_from_secs_f64(seconds).map_err(|_| {
        Failure::new(
            AffiStatus::ErrValue,
            format!("seconds must be a finite number >= 0, got {seconds}"),
        )
    })
}

async fn sleep_on(runtime: Runtime, duration: Duration) {
    match runtime {
        Runtime::Tokio | Runtime::Loop => tokio::time::sleep(duration).await,
        Runtime::AsyncStd => async_std::task::sleep(duration).await,
    }
}

/// `demo.sleep(seconds, runtime=...)`: sleeps on the runtime's timer, returns None.
#[no_mangle]
pub extern "C" fn affi_demo_sleep(port: u64, token: u64, seconds: f64, runtime_id: u32) -> i64 {
    guard(|| {
        let rt = runtime(runtime_id)?;
        let duration = duration(seconds)?;
        let task = spawn(rt, port, token, async move {
            sleep_on(rt, duration).await;
            Ok(Value::None)
        })?;
        Ok(task as i64)
    })
}

/// `demo.echo(value, runtime=...)`: returns its argument.
///
/// # Safety
/// `data` must be readable for `len` bytes during the call (see `asyncffi::args::value`).
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn affi_demo_echo(
    port: u64,
    token: u64,
    tag: u32,
    int_value: i64,
    float_value: f64,
    data: *const u8,
    len: usize,
    runtime_id: u32,
) -> i64 {
    guard(|| {
        let rt = runtime(runtime_id)?;
        // SAFETY: forwarded contract.
        let value = unsafe { args::value(tag, int_value, float_value, data, len) }?;
        Ok(spawn(rt, port, token, async move { Ok(value) })? as i64)
    })
}

/// `demo.add(a, b)`: `a + b`, or a RustError of kind "overflow".
#[no_mangle]
pub extern "C" fn affi_demo_add(port: u64, token: u64, a: i64, b: i64) -> i64 {
    guard(|| {
        let task = spawn(Runtime::Tokio, port, token, async move {
            a.checked_add(b)
                .map(Value::Int)
                .ok_or_else(|| Error::new("overflow", format!("{a} + {b} does not fit in 64 bits")))
        })?;
        Ok(task as i64)
    })
}

/// `demo.fail(message, kind=...)`: fails with a RustError.
///
/// # Safety
/// `message` and `kind` must be readable for their lengths during the call.
#[no_mangle]
pub unsafe extern "C" fn affi_demo_fail(
    port: u64,
    token: u64,
    message: *const u8,
    message_len: usize,
    kind: *const u8,
    kind_len: usize,
) -> i64 {
    guard(|| {
        // SAFETY: forwarded contract.
        let message = unsafe { args::string(message, message_len) }?;
        // SAFETY: forwarded contract.
        let kind = unsafe { args::string(kind, kind_len) }?;
        Ok(spawn(Runtime::Tokio, port, token, async move {
            Err(Error::new(kind, message))
        })? as i64)
    })
}

/// `demo.panic(message)`: panics inside the Rust future.
///
/// # Safety
/// `message` must be readable for `message_len` bytes during the call.
#[no_mangle]
pub unsafe extern "C" fn affi_demo_panic(
    port: u64,
    token: u64,
    message: *const u8,
    message_len: usize,
) -> i64 {
    guard(|| {
        // SAFETY: forwarded contract.
        let message = unsafe { args::string(message, message_len) }?;
        let task = spawn(Runtime::Tokio, port, token, async move {
            if !message.is_empty() {
                panic!("{message}");
            }
            Ok(Value::None)
        })?;
        Ok(task as i64)
    })
}

/// `demo.pending(runtime=...)`: never completes (until cancelled).
#[no_mangle]
pub extern "C" fn affi_demo_pending(port: u64, token: u64, runtime_id: u32) -> i64 {
    guard(|| {
        let rt = runtime(runtime_id)?;
        let task = spawn(rt, port, token, async move {
            std::future::pending::<()>().await;
            Ok(Value::None)
        })?;
        Ok(task as i64)
    })
}

/// `demo.cpu(n)`: `sum(range(n))` computed by a loop on tokio's blocking pool; a RustError of
/// kind "overflow" (at once, without looping) if the sum leaves 64 bits.
#[no_mangle]
pub extern "C" fn affi_demo_cpu(port: u64, token: u64, n: u64) -> i64 {
    guard(|| {
        let task = spawn(Runtime::Tokio, port, token, async move {
            let closed_form = u128::from(n) * u128::from(n.saturating_sub(1)) / 2;
            if closed_form > i64::MAX as u128 {
                return Err(Error::new(
                    "overflow",
                    format!("sum(range({n})) does not fit in 64 bits"),
                ));
            }
            let sum = tokio::task::spawn_blocking(move || {
                // A loop rather than the closed form: this is meant to burn CPU.
                let mut sum: i64 = 0;
                for i in 0..n {
                    sum = sum.wrapping_add(std::hint::black_box(i as i64));
                }
                sum
            })
            .await
            .map_err(|e| Error::new("join", e.to_string()))?;
            Ok(Value::Int(sum))
        })?;
        Ok(task as i64)
    })
}

/// `demo.tick(interval, count)`: sleeps `interval` seconds `count` times on tokio and returns
/// the observed offsets (seconds since the start) of each wake-up.
#[no_mangle]
pub extern "C" fn affi_demo_tick(port: u64, token: u64, interval: f64, count: u32) -> i64 {
    guard(|| {
        let interval = duration(interval)?;
        let task = spawn(Runtime::Tokio, port, token, async move {
            let start = Instant::now();
            // Sized by what arrives, not by the caller's count (which may be huge).
            let mut offsets = Vec::new();
            for _ in 0..count {
                tokio::time::sleep(interval).await;
                offsets.push(Value::Float(start.elapsed().as_secs_f64()));
            }
            Ok(Value::List(offsets))
        })?;
        Ok(task as i64)
    })
}

/// The state behind `demo.Counter`.
#[derive(Default)]
struct Counter {
    total: AtomicI64,
}

/// `demo.Counter()`: a new opaque counter object; returns its handle (> 0).
#[no_mangle]
pub extern "C" fn affi_demo_counter_new() -> i64 {
    guard(|| Ok(object::register(Arc::new(Counter::default())) as i64))
}

/// `await counter.add(n)`: adds `n` and returns the new total (RustError "overflow" if it would
/// leave 64 bits).
#[no_mangle]
pub extern "C" fn affi_demo_counter_add(port: u64, token: u64, counter: u64, n: i64) -> i64 {
    guard(|| {
        let counter = object::get::<Counter>(counter)?;
        let task = spawn(Runtime::Tokio, port, token, async move {
            let mut current = counter.total.load(Ordering::Relaxed);
            loop {
                let next = current.checked_add(n).ok_or_else(|| {
                    Error::new(
                        "overflow",
                        format!("{current} + {n} does not fit in 64 bits"),
                    )
                })?;
                match counter.total.compare_exchange_weak(
                    current,
                    next,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Ok(Value::Int(next)),
                    Err(seen) => current = seen,
                }
            }
        })?;
        Ok(task as i64)
    })
}

// === Rust awaiting Python ===

/// The argument list of a call, passed as one tagged value holding a list.
///
/// # Safety
/// As for `asyncffi::args::value`.
unsafe fn arg_list(tag: u32, data: *const u8, len: usize) -> Result<Vec<Value>, Failure> {
    // SAFETY: forwarded contract.
    match unsafe { args::value(tag, 0, 0.0, data, len) }? {
        Value::List(items) => Ok(items),
        _ => Err(Failure::new(
            AffiStatus::ErrType,
            "call arguments must be a list",
        )),
    }
}

/// `demo.call_python(fn, *args)`: awaits `fn(*args)` once and returns its result.
///
/// # Safety
/// `data` must be readable for `len` bytes during the call.
#[no_mangle]
pub unsafe extern "C" fn affi_demo_call_python(
    port: u64,
    token: u64,
    callable: u64,
    tag: u32,
    data: *const u8,
    len: usize,
    runtime_id: u32,
) -> i64 {
    guard(|| {
        let rt = runtime(runtime_id)?;
        // SAFETY: forwarded contract.
        let args = unsafe { arg_list(tag, data, len) }?;
        let callable = PyCallable::adopt(port, callable)?;
        let task = spawn(
            rt,
            port,
            token,
            async move { Ok(callable.call(args).await?) },
        )?;
        Ok(task as i64)
    })
}

/// `demo.call_python_n(fn, n)`: awaits `fn(i)` for `i` in `range(n)`, one after another, and
/// returns the sum of the int results.
#[no_mangle]
pub extern "C" fn affi_demo_call_python_n(
    port: u64,
    token: u64,
    callable: u64,
    n: u64,
    runtime_id: u32,
) -> i64 {
    guard(|| {
        let rt = runtime(runtime_id)?;
        let callable = PyCallable::adopt(port, callable)?;
        let task = spawn(rt, port, token, async move {
            let mut sum: i64 = 0;
            for i in 0..n {
                let value = callable.call(vec![Value::Int(i as i64)]).await?;
                let Value::Int(x) = value else {
                    return Err(Error::new(
                        "type",
                        format!("fn({i}) returned {value:?}, not an int"),
                    ));
                };
                sum = sum
                    .checked_add(x)
                    .ok_or_else(|| Error::new("overflow", "the sum does not fit in 64 bits"))?;
            }
            Ok(Value::Int(sum))
        })?;
        Ok(task as i64)
    })
}

/// `demo.gather_python(fn, n)`: awaits `fn(i)` for every `i` in `range(n)` concurrently and
/// returns the results in order. The first failure cancels the calls still running.
#[no_mangle]
pub extern "C" fn affi_demo_gather_python(
    port: u64,
    token: u64,
    callable: u64,
    n: u64,
    runtime_id: u32,
) -> i64 {
    guard(|| {
        let rt = runtime(runtime_id)?;
        let callable = PyCallable::adopt(port, callable)?;
        let task = spawn(rt, port, token, async move {
            // Every call starts now; awaiting them in order collects the results in order.
            // The vectors grow as calls are made, never pre-sized by the caller's `n`, and the
            // task yields every 1024 calls so that a huge `n` neither holds the first poll (on
            // the event-loop thread) nor keeps a cancellation waiting.
            let mut calls = Vec::new();
            for i in 0..n {
                calls.push(callable.call(vec![Value::Int(i as i64)]));
                if i % 1024 == 1023 {
                    yield_now().await;
                }
            }
            let mut results = Vec::with_capacity(calls.len());
            for call in calls {
                results.push(call.await?);
            }
            Ok(Value::List(results))
        })?;
        Ok(task as i64)
    })
}

/// `demo.timeout_python(fn, seconds, *args)`: starts `fn(*args)`; if it has not finished after
/// `seconds`, drops it (cancelling the Python task) and returns True, else returns its result.
///
/// # Safety
/// `data` must be readable for `len` bytes during the call.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn affi_demo_timeout_python(
    port: u64,
    token: u64,
    callable: u64,
    seconds: f64,
    tag: u32,
    data: *const u8,
    len: usize,
    runtime_id: u32,
) -> i64 {
    guard(|| {
        let rt = runtime(runtime_id)?;
        let limit = duration(seconds)?;
        // SAFETY: forwarded contract.
        let args = unsafe { arg_list(tag, data, len) }?;
        let callable = PyCallable::adopt(port, callable)?;
        let task = spawn(rt, port, token, async move {
            let call = callable.call(args);
            match first(call, sleep_on(rt, limit)).await {
                Either::Left(result) => Ok(result?),
                Either::Right(()) => Ok(Value::Bool(true)), // the call is dropped: cancelled
            }
        })?;
        Ok(task as i64)
    })
}

/// Gives the runtime a turn: pending once (waking itself at once), then ready.
async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(move |cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
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
/// completes `count` calls, tokens `first_token..first_token + count`, on `port` with `None`,
/// through the same queue, coalesced wake and drain as real completions. It measures what
/// completing a future from another thread costs at the least.
#[no_mangle]
pub extern "C" fn affi_bench_complete_from_thread(port: u64, first_token: u64, count: u64) -> i32 {
    asyncffi::guard_status(|| {
        let port = asyncffi::port::Port::get(port)?;
        std::thread::Builder::new()
            .name("asyncffi-bench".into())
            .spawn(move || {
                for token in first_token..first_token.saturating_add(count) {
                    port.push(token, asyncffi::port::Outcome::Done(Ok(Value::None)));
                }
            })
            .map_err(|e| Failure::new(AffiStatus::ErrRuntime, e.to_string()))?;
        Ok(())
    })
}

// === Streams ===

/// The produced-items counter of the most recent `count` stream.
static LAST_COUNT: std::sync::Mutex<Option<Arc<AtomicU64>>> = std::sync::Mutex::new(None);

/// `demo.count(n, delay=..., buffer=..., runtime=...)`: a stream of 0..n-1, sleeping `delay`
/// seconds before each item.
#[no_mangle]
pub extern "C" fn affi_demo_count(
    port: u64,
    token: u64,
    n: i64,
    delay: f64,
    runtime_id: u32,
    buffer: u64,
) -> i64 {
    guard(|| {
        let rt = runtime(runtime_id)?;
        let delay = duration(delay)?;
        let produced = Arc::new(AtomicU64::new(0));
        *LAST_COUNT.lock().unwrap_or_else(|e| e.into_inner()) = Some(produced.clone());
        let items = stream::unfold(0i64, move |i| {
            let produced = produced.clone();
            async move {
                if i >= n {
                    return None;
                }
                if !delay.is_zero() {
                    sleep_on(rt, delay).await;
                }
                produced.fetch_add(1, Ordering::Relaxed);
                Some((Ok(Value::Int(i)), i + 1))
            }
        });
        Ok(spawn_stream(rt, port, token, items, buffer)? as i64)
    })
}

/// `demo.count_produced()`: how many items the most recent `count` stream has produced.
#[no_mangle]
pub extern "C" fn affi_demo_count_produced() -> i64 {
    let last = LAST_COUNT.lock().unwrap_or_else(|e| e.into_inner());
    last.as_ref()
        .map_or(0, |produced| produced.load(Ordering::Relaxed) as i64)
}

/// `demo.fail_after(n, message)`: a stream of 0..n-1 that then fails with `message`.
///
/// # Safety
/// `message` must be readable for `message_len` bytes during the call.
#[no_mangle]
pub unsafe extern "C" fn affi_demo_fail_after(
    port: u64,
    token: u64,
    n: i64,
    message: *const u8,
    message_len: usize,
    buffer: u64,
) -> i64 {
    guard(|| {
        // SAFETY: forwarded contract.
        let message = unsafe { args::string(message, message_len) }?;
        let items = (0..n)
            .map(|i| Ok(Value::Int(i)))
            .chain(std::iter::once(Err(Error::new("demo", message))));
        Ok(spawn_stream(Runtime::Tokio, port, token, stream::iter(items), buffer)? as i64)
    })
}

/// Adopts Python iterator `iterator`, asking for `prefetch` items ahead (0: the default).
fn py_stream(port: u64, iterator: u64, prefetch: u64) -> Result<PyStream, Failure> {
    let stream = PyStream::adopt(port, iterator)?;
    Ok(if prefetch == 0 {
        stream
    } else {
        stream.with_prefetch(prefetch)
    })
}

/// `demo.sum_stream(aiter)`: the sum of the ints a Python iterator yields.
#[no_mangle]
pub extern "C" fn affi_demo_sum_stream(
    port: u64,
    token: u64,
    iterator: u64,
    prefetch: u64,
    runtime_id: u32,
) -> i64 {
    guard(|| {
        let rt = runtime(runtime_id)?;
        let mut items = py_stream(port, iterator, prefetch)?;
        let task = spawn(rt, port, token, async move {
            let mut sum: i64 = 0;
            while let Some(item) = stream::next(&mut items).await {
                let value = item?;
                let Value::Int(x) = value else {
                    return Err(Error::new("type", format!("{value:?} is not an int")));
                };
                sum = sum
                    .checked_add(x)
                    .ok_or_else(|| Error::new("overflow", "the sum does not fit in 64 bits"))?;
            }
            Ok(Value::Int(sum))
        })?;
        Ok(task as i64)
    })
}

/// `demo.echo_stream(aiter)`: a Rust stream of what a Python iterator yields.
#[no_mangle]
pub extern "C" fn affi_demo_echo_stream(
    port: u64,
    token: u64,
    iterator: u64,
    prefetch: u64,
    runtime_id: u32,
    buffer: u64,
) -> i64 {
    guard(|| {
        let rt = runtime(runtime_id)?;
        let items = py_stream(port, iterator, prefetch)?;
        let echoed = stream::unfold(items, |mut items| async move {
            let item = stream::next(&mut items).await?;
            Some((item.map_err(Error::from), items))
        });
        Ok(spawn_stream(rt, port, token, echoed, buffer)? as i64)
    })
}

/// `demo.take(aiter, k)`: the first `k` items of a Python iterator, as a list; then drops it
/// (which closes the Python iterator).
#[no_mangle]
pub extern "C" fn affi_demo_take(
    port: u64,
    token: u64,
    iterator: u64,
    k: u64,
    prefetch: u64,
    runtime_id: u32,
) -> i64 {
    guard(|| {
        let rt = runtime(runtime_id)?;
        let mut items = py_stream(port, iterator, prefetch)?;
        let task = spawn(rt, port, token, async move {
            let mut taken = Vec::new();
            while (taken.len() as u64) < k {
                match stream::next(&mut items).await {
                    Some(item) => taken.push(item?),
                    None => break,
                }
            }
            drop(items);
            Ok(Value::List(taken))
        })?;
        Ok(task as i64)
    })
}
