//! A second cdylib built on asyncffi, loaded next to the built-ins by the tests of several
//! libraries in one process (`tests/test_libraries.py`). It links its own copy of the core, so
//! its runtimes, ports, tables and counters are its own.
//!
//! Written as a third-party author would write it today, by hand in the exported-function
//! shape `(port, token, arguments...) -> i64` (a task id or a negative `AffiStatus`): an async
//! function, an object with an async method, a stream, and a call that awaits a Python
//! callable.
#![deny(unsafe_op_in_unsafe_fn)]

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use asyncffi::{
    guard, object, spawn, spawn_stream, stream, AffiStatus, Error, Failure, PyCallable, Runtime,
    Value,
};

// Keep the core ABI in this library: referencing one item of `asyncffi::ffi` makes the linker
// keep its object file, whose `#[no_mangle]` functions are then exported.
pub use asyncffi::ffi::affi_abi_version;

mod exported;
mod logs;
mod own_runtime;
mod roundtrip;

fn delay(seconds: f64) -> Result<Duration, Failure> {
    Duration::try_from_secs_f64(seconds).map_err(|_| {
        Failure::new(
            AffiStatus::ErrValue,
            format!("seconds must be a finite number >= 0, got {seconds}"),
        )
    })
}

async fn sleep_on(runtime: Runtime, duration: Duration) {
    if duration.is_zero() {
        return;
    }
    match runtime {
        Runtime::Tokio | Runtime::Loop => tokio::time::sleep(duration).await,
        Runtime::AsyncStd => async_std::task::sleep(duration).await,
        Runtime::Own(_) => {
            smol::Timer::after(duration).await;
        }
    }
}

/// `x * factor` after sleeping `seconds` on the runtime `runtime_id` (a RustError of kind
/// "overflow" if the product leaves 64 bits).
#[no_mangle]
pub extern "C" fn testlib_scale(
    port: u64,
    token: u64,
    x: i64,
    factor: i64,
    seconds: f64,
    runtime_id: u32,
) -> i64 {
    guard(|| {
        let rt = Runtime::from_raw(runtime_id)?;
        let pause = delay(seconds)?;
        let task = spawn(rt, port, token, async move {
            sleep_on(rt, pause).await;
            x.checked_mul(factor)
                .map(Value::Int)
                .ok_or_else(|| Error::new("overflow", format!("{x} * {factor} overflows")))
        })?;
        Ok(task as i64)
    })
}

/// The state behind an accumulator object.
struct Accumulator {
    total: AtomicI64,
}

/// A new accumulator holding `start`; returns its object handle (> 0).
#[no_mangle]
pub extern "C" fn testlib_accumulator_new(start: i64) -> i64 {
    guard(|| {
        let acc = Accumulator {
            total: AtomicI64::new(start),
        };
        Ok(object::register(Arc::new(acc)) as i64)
    })
}

/// The accumulator's async method: adds `x` after sleeping `seconds`, returns the new total
/// (wrapping on overflow).
#[no_mangle]
pub extern "C" fn testlib_accumulator_add(
    port: u64,
    token: u64,
    accumulator: u64,
    x: i64,
    seconds: f64,
    runtime_id: u32,
) -> i64 {
    guard(|| {
        let rt = Runtime::from_raw(runtime_id)?;
        let pause = delay(seconds)?;
        let acc = object::get::<Accumulator>(accumulator)?;
        let task = spawn(rt, port, token, async move {
            sleep_on(rt, pause).await;
            let before = acc.total.fetch_add(x, Ordering::AcqRel);
            Ok(Value::Int(before.wrapping_add(x)))
        })?;
        Ok(task as i64)
    })
}

/// A stream of the squares `0, 1, 4, ..., (n - 1)^2`, sleeping `seconds` before each.
#[no_mangle]
pub extern "C" fn testlib_squares(
    port: u64,
    token: u64,
    n: i64,
    seconds: f64,
    runtime_id: u32,
    buffer: u64,
) -> i64 {
    guard(|| {
        let rt = Runtime::from_raw(runtime_id)?;
        let pause = delay(seconds)?;
        let items = stream::unfold(0i64, move |i| async move {
            if i >= n {
                return None;
            }
            sleep_on(rt, pause).await;
            Some((Ok(Value::Int(i * i)), i + 1))
        });
        Ok(spawn_stream(rt, port, token, items, buffer)? as i64)
    })
}

/// Awaits the Python callable `callable` with `x` and returns its result plus one (a
/// RustError of kind "type" if it is not an int).
#[no_mangle]
pub extern "C" fn testlib_apply(
    port: u64,
    token: u64,
    callable: u64,
    x: i64,
    runtime_id: u32,
) -> i64 {
    guard(|| {
        let rt = Runtime::from_raw(runtime_id)?;
        let callable = PyCallable::adopt(port, callable)?;
        let task = spawn(rt, port, token, async move {
            match callable.call(vec![Value::Int(x)]).await? {
                Value::Int(y) => Ok(Value::Int(y.wrapping_add(1))),
                other => Err(Error::new("type", format!("fn({x}) returned {other:?}"))),
            }
        })?;
        Ok(task as i64)
    })
}
