//! The core C ABI: ports, tasks, objects, configuration, statistics and shutdown.
//!
//! Every cdylib that links this crate exports these functions; the Python package drives them.
//! Exported async functions (in the cdylib) have the shape
//! `int64_t f(uint64_t port, uint64_t token, ...arguments)`: they return a task id (> 0) or a
//! negative `AffiStatus`, and spawn through [`crate::spawn`]. Functions exported with the
//! macros are listed, with their exact C shapes, by `affi_manifest` (see [`crate::manifest`]).
//!
//! All functions may be called from any thread unless stated otherwise. None of them blocks on
//! Python, and none lets a panic unwind into the caller.

use std::time::Duration;

pub use crate::abi::{AffiLogStats, AffiStats, ABI_VERSION};
use crate::args;
use crate::boundary::{guard, guard_status, last_error, AffiStatus, Failure};
use crate::callable::{self, PythonError};
use crate::codec;
use crate::local;
use crate::notifier;
use crate::object;
use crate::port::{AffiCompletion, AffiOutcome, AffiWake, Port};
use crate::pystream;
use crate::runtime::{self, Flavor};
use crate::stats;
use crate::task;
use crate::value::Value;

// === Public FFI API ===

/// The ABI version (`ABI_VERSION`).
#[no_mangle]
pub extern "C" fn affi_abi_version() -> u32 {
    ABI_VERSION
}

/// The runtimes calls can run on and the flavours of tokio's scheduler, with their C values,
/// as a UTF-8 JSON document written to `len` and returned: `{"runtimes": {name: value, ...},
/// "flavors": {name: value, ...}}`. A runtime may have several names (aliases); its value is
/// the `runtime_id` argument of hand-written exports, a flavour's is `affi_configure`'s
/// `flavor`. It lives as long as the library; never free it.
///
/// # Safety
/// `len` must be NULL or point to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn affi_runtimes(len: *mut usize) -> *const u8 {
    let json = runtime::names_json();
    if !len.is_null() {
        // SAFETY: non-NULL, and the caller guarantees it is writable.
        unsafe { len.write(json.len()) };
    }
    json.as_ptr()
}

/// Sets how tokio is built: `worker_threads` (0 = one per core) and `flavor` (a value
/// `affi_runtimes` lists). Returns 0, or `AFFI_STATUS_ERR_RUNTIME` if tokio already runs with
/// another configuration.
#[no_mangle]
pub extern "C" fn affi_configure(worker_threads: u32, flavor: u32) -> i32 {
    guard_status(|| {
        let flavor = Flavor::from_raw(flavor).ok_or_else(|| {
            Failure::new(AffiStatus::ErrValue, format!("unknown flavor {flavor}"))
        })?;
        runtime::tokio_rt::configure(runtime::tokio_rt::Config {
            worker_threads: worker_threads as usize,
            flavor,
        })
    })
}

/// Registers the callback the notifier thread calls for `threadsafe` ports (NULL unregisters).
/// The callback runs on the notifier thread, never on a runtime worker, and never after
/// `affi_shutdown` has returned.
#[no_mangle]
pub extern "C" fn affi_set_wake_callback(callback: Option<extern "C" fn(port: u64)>) -> i32 {
    guard_status(|| {
        notifier::set_callback(callback);
        Ok(())
    })
}

/// Opens a completion port with the wake strategy `wake` (`AffiWake`) and returns its id (> 0).
#[no_mangle]
pub extern "C" fn affi_port_open(wake: u32) -> i64 {
    guard(|| {
        let wake = match wake {
            w if w == AffiWake::Threadsafe as u32 => AffiWake::Threadsafe,
            w if w == AffiWake::Fd as u32 => AffiWake::Fd,
            w if w == AffiWake::Wait as u32 => AffiWake::Wait,
            _ => {
                return Err(Failure::new(
                    AffiStatus::ErrValue,
                    format!("unknown wake strategy {wake}"),
                ))
            }
        };
        Port::open(wake).map(|id| id as i64)
    })
}

/// The eventfd of an `fd` port, for the loop to watch. Owned by the port: do not close it.
#[no_mangle]
pub extern "C" fn affi_port_fd(port: u64) -> i32 {
    guard(|| Port::get(port)?.fd().map(i64::from)) as i32
}

/// Blocks until `port` (opened with `AFFI_WAKE_WAIT`) has completions queued, for at most
/// `timeout_ms` milliseconds: returns 1 if it has, 0 if the time ran out (or the port closed
/// meanwhile), `AFFI_STATUS_ERR_VALUE` for a port of another wake strategy. This is how a
/// thread with no event loop waits for its own calls: call it with the GIL released (cffi
/// does) and in short slices, so that the caller can notice signals (Ctrl-C) in between; then
/// drain as after a wake-up, until a drain returns 0, before waiting again.
#[no_mangle]
pub extern "C" fn affi_port_wait(port: u64, timeout_ms: u32) -> i32 {
    guard(|| {
        let port = Port::get(port)?;
        let ready = port.wait(Duration::from_millis(u64::from(timeout_ms)))?;
        Ok(i64::from(ready))
    }) as i32
}

/// Copies up to `cap` completions of `port` into `out` and returns how many (>= 0). After a
/// call that returned completions, call it again (now or from a later loop callback) until one
/// returns 0: completions queued in between do not wake the loop.
///
/// # Safety
/// `out` must point to `cap` writable `AffiCompletion`s. Call from the port's loop thread; the
/// `data` pointers written stay valid until the next `affi_port_release` on this port.
#[no_mangle]
pub unsafe extern "C" fn affi_port_drain(port: u64, out: *mut AffiCompletion, cap: usize) -> i64 {
    guard(|| {
        let port = Port::get(port)?;
        if cap == 0 {
            return Ok(0);
        }
        if out.is_null() {
            return Err(Failure::new(AffiStatus::ErrValue, "drain buffer is NULL"));
        }
        // SAFETY: the caller guarantees `out` points to `cap` writable completions, and
        // `AffiCompletion` is plain data, so any bit pattern already there may be overwritten.
        let out = unsafe { std::slice::from_raw_parts_mut(out, cap) };
        Ok(port.drain(out) as i64)
    })
}

/// The eager path: after an exported function called with `port` and `token` returned 0 (its
/// future finished on its first poll, on this thread), writes that outcome into `out`, as a
/// drain would. Its payload stays valid until `affi_port_release_inline` on `port` for `token`
/// (releasing another call's inline outcome leaves it alone). Returns 0,
/// `AFFI_STATUS_ERR_VALUE` if this thread holds no inline outcome for that call, or
/// `AFFI_STATUS_ERR_CLOSED` if the port is closed (the outcome is then dropped).
///
/// # Safety
/// `out` must point to a writable `AffiCompletion`. Call on the thread that made the call.
#[no_mangle]
pub unsafe extern "C" fn affi_port_take_inline(
    port: u64,
    token: u64,
    out: *mut AffiCompletion,
) -> i32 {
    guard_status(|| {
        let outcome = task::take_inline(port, token);
        let port = Port::get(port)?;
        let outcome = outcome.ok_or_else(|| {
            Failure::new(
                AffiStatus::ErrValue,
                "no call finished inline on this thread",
            )
        })?;
        if out.is_null() {
            return Err(Failure::new(
                AffiStatus::ErrValue,
                "completion buffer is NULL",
            ));
        }
        let completion = port.deliver_inline(token, outcome)?;
        // SAFETY: checked non-null; the caller guarantees it is a writable AffiCompletion.
        unsafe { out.write(completion) };
        Ok(())
    })
}

/// Frees the payload of the inline outcome of call `token` taken from `port`. Works on a
/// closed port too (the payload lingered); returns `AFFI_STATUS_ERR_CLOSED` if the port is
/// closed and held nothing for `token`.
#[no_mangle]
pub extern "C" fn affi_port_release_inline(port: u64, token: u64) -> i32 {
    guard_status(|| Port::release_inline_id(port, token))
}

/// Frees the payloads of the batches drained from `port` so far. Works on a closed port too
/// (the batch being read lingered); returns `AFFI_STATUS_ERR_CLOSED` if the port is closed and
/// held nothing.
#[no_mangle]
pub extern "C" fn affi_port_release(port: u64) -> i32 {
    guard_status(|| Port::release_id(port))
}

/// Closes `port`: cancels its tasks, frees its queue; later completions are dropped on arrival.
/// For an `fd` port, remove the loop's reader first. May be called from any thread, also while
/// the loop thread reads a drained batch or an inline outcome: those payloads stay valid until
/// that thread calls `affi_port_release` / `affi_port_release_inline` (a drain of a closed
/// port returns `AFFI_STATUS_ERR_CLOSED`).
#[no_mangle]
pub extern "C" fn affi_port_close(port: u64) -> i32 {
    guard_status(|| Port::close(port))
}

/// Requests cancellation of `task`: the future is dropped on its runtime at its next poll, and
/// no completion is delivered for it. Returns `AFFI_STATUS_ERR_CLOSED` if the task already
/// ended (its completion is then queued or delivered).
#[no_mangle]
pub extern "C" fn affi_task_cancel(task: u64) -> i32 {
    guard_status(|| task::cancel(task))
}

/// Polls local task `task` (a task on the `loop` runtime, named by an `AFFI_REQUEST_POLL`) on
/// this thread, which must be its port's event-loop thread. Returns 0 (also for a task that has
/// ended meanwhile: nothing to do).
#[no_mangle]
pub extern "C" fn affi_task_poll(task: u64) -> i32 {
    guard_status(|| {
        local::poll(task);
        Ok(())
    })
}

/// Python's answer to call `call` (an `AFFI_REQUEST_CALL` it drained), made on the loop thread
/// of `port`. Returns 0, or 1 when the answer queued work on `port` without waking it (it
/// resumed a `loop`-runtime task): the caller must then drain `port` soon.
///
/// `status` is `AFFI_OUTCOME_OK` with the result as a tagged value (`tag`, `int_value`,
/// `float_value`, `data`, `len`, as for arguments), or `AFFI_OUTCOME_ERROR` with `data` the packed
/// `[type_name, message]` of the exception and `int_value` the id of the exception object
/// registered on the call's port (0 for none). Returns `AFFI_STATUS_ERR_CLOSED` if Rust no longer
/// waits for the call; Python then keeps ownership of the exception object.
///
/// # Safety
/// `data` must be readable for `len` bytes during the call (or `len` is 0).
#[no_mangle]
pub unsafe extern "C" fn affi_call_complete(
    port: u64,
    call: u64,
    status: i32,
    tag: u32,
    int_value: i64,
    float_value: f64,
    data: *const u8,
    len: usize,
) -> i32 {
    guard(|| {
        let (answered, drain) = crate::port::holding_wakes(port, || {
            if status == AffiOutcome::Ok as i32 {
                // SAFETY: forwarded contract.
                let result = unsafe { args::value(tag, int_value, float_value, data, len) }
                    .map_err(|f| PythonError::new(PythonError::TYPE, f.message));
                callable::complete(call, result, 0)
            } else if status == AffiOutcome::Error as i32 {
                // SAFETY: forwarded contract.
                let error = unsafe { python_error(data, len) }?;
                let exception = u64::try_from(int_value).unwrap_or(0);
                callable::complete(call, Err(error), exception)
            } else {
                Err(Failure::new(
                    AffiStatus::ErrValue,
                    format!("unknown call status {status}"),
                ))
            }
        });
        answered?;
        Ok(i64::from(drain))
    }) as i32
}

/// The packed `[type_name, message]` of a Python exception at `data`.
///
/// # Safety
/// `data` must be readable for `len` bytes during the call (or `len` is 0).
unsafe fn python_error(data: *const u8, len: usize) -> Result<PythonError, Failure> {
    let malformed = || Failure::new(AffiStatus::ErrValue, "expected [type_name, message]");
    // SAFETY: forwarded contract.
    match codec::decode(unsafe { args::bytes(data, len) }?) {
        Ok(Value::List(items)) => match <[Value; 2]>::try_from(items) {
            Ok([Value::Str(t), Value::Str(m)]) => Ok(PythonError::new(t, m)),
            _ => Err(malformed()),
        },
        _ => Err(malformed()),
    }
}

/// Lets stream task `task` (a Rust stream Python reads) send `n` more items: Python's consumer
/// took `n` items. Returns `AFFI_STATUS_ERR_CLOSED` if the stream has ended.
#[no_mangle]
pub extern "C" fn affi_stream_grant(task: u64, n: u64) -> i32 {
    guard_status(|| task::grant(task, n))
}

/// Items of Python iterator `object` for the Rust stream reading it (an `AFFI_REQUEST_PULL`
/// asked for them): `data` is a packed list of at most as many items as were asked for and
/// not yet sent. Returns `AFFI_STATUS_ERR_CLOSED` if Rust no longer reads the iterator.
///
/// # Safety
/// `data` must be readable for `len` bytes during the call.
#[no_mangle]
pub unsafe extern "C" fn affi_pystream_items(object: u64, data: *const u8, len: usize) -> i32 {
    guard_status(|| {
        // SAFETY: forwarded contract (an item Rust cannot take fails with its own status:
        // an int outside 64 bits is ERR_OVERFLOW, a dict key that is not text ERR_TYPE).
        let items = unsafe { args::items(data, len) }?;
        pystream::feed(object, items)
    })
}

/// Python iterator `object` ended: `status` is `AFFI_OUTCOME_OK` (exhausted) or
/// `AFFI_OUTCOME_ERROR` with `data` the packed `[type_name, message]` of the exception it
/// raised and `exception` the id of that exception object (0 for none). Returns
/// `AFFI_STATUS_ERR_CLOSED` if Rust no longer reads the iterator; Python then keeps the
/// exception object.
///
/// # Safety
/// `data` must be readable for `len` bytes during the call (or `len` is 0).
#[no_mangle]
pub unsafe extern "C" fn affi_pystream_end(
    object: u64,
    status: i32,
    data: *const u8,
    len: usize,
    exception: u64,
) -> i32 {
    guard_status(|| {
        if status == AffiOutcome::Ok as i32 {
            pystream::end(object, Ok(()), 0)
        } else if status == AffiOutcome::Error as i32 {
            // SAFETY: forwarded contract.
            let error = unsafe { python_error(data, len) }?;
            pystream::end(object, Err(error), exception)
        } else {
            Err(Failure::new(
                AffiStatus::ErrValue,
                format!("unknown stream status {status}"),
            ))
        }
    })
}

/// Frees the object handle `handle`. Returns `AFFI_STATUS_ERR_CLOSED` if it is already freed.
#[no_mangle]
pub extern "C" fn affi_object_free(handle: u64) -> i32 {
    guard_status(|| object::free(handle))
}

/// Writes the current counters into `out`.
///
/// # Safety
/// `out` must point to a writable `AffiStats`.
#[no_mangle]
pub unsafe extern "C" fn affi_stats(out: *mut AffiStats) -> i32 {
    guard_status(|| {
        if out.is_null() {
            return Err(Failure::new(AffiStatus::ErrValue, "stats buffer is NULL"));
        }
        let now = AffiStats {
            live_tasks: stats::LIVE_TASKS.get(),
            live_values: stats::LIVE_VALUES.get(),
            live_ports: stats::LIVE_PORTS.get(),
            live_objects: stats::LIVE_OBJECTS.get(),
            live_callables: stats::LIVE_CALLABLES.get(),
            live_calls: stats::LIVE_CALLS.get(),
            live_py_errors: stats::LIVE_PY_ERRORS.get(),
            live_py_streams: stats::LIVE_PY_STREAMS.get(),
            spawned: stats::SPAWNED.get(),
            completed: stats::COMPLETED.get(),
            cancelled: stats::CANCELLED.get(),
            panicked: stats::PANICKED.get(),
            wakes: stats::WAKES.get(),
        };
        // SAFETY: checked non-null; the caller guarantees it is a writable `AffiStats`.
        unsafe { out.write(now) };
        Ok(())
    })
}

/// Interpreter exit: stops all wake callbacks (waiting for one in progress to return, for
/// `timeout_ms` at most), closes every port (cancelling its tasks) and shuts the runtimes down
/// within `timeout_ms`. Returns in about twice `timeout_ms` at most, whatever Python does.
/// Call with the GIL released (cffi does). Later spawns fail with `AFFI_STATUS_ERR_RUNTIME`.
#[no_mangle]
pub extern "C" fn affi_shutdown(timeout_ms: u32) -> i32 {
    guard_status(|| {
        let timeout = Duration::from_millis(u64::from(timeout_ms));
        crate::watchdog::stop();
        notifier::stop(timeout);
        Port::close_all();
        runtime::shutdown(timeout);
        Ok(())
    })
}

/// This thread's last error message: a pointer to `*len` UTF-8 bytes, valid until the next
/// failing call on this thread.
///
/// # Safety
/// `len` must point to a writable `uintptr_t`.
#[no_mangle]
pub unsafe extern "C" fn affi_last_error(len: *mut usize) -> *const u8 {
    let (ptr, n) = last_error();
    if !len.is_null() {
        // SAFETY: checked non-null; the caller guarantees it is writable.
        unsafe { len.write(n) };
    }
    ptr
}

/// The library's manifest (see [`crate::manifest`]): a UTF-8 JSON document describing every
/// exported function and object, written to `len` and returned. It lives as long as the
/// library; never free it.
///
/// # Safety
/// `len` must be NULL or point to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn affi_manifest(len: *mut usize) -> *const u8 {
    let json = crate::manifest::json();
    if !len.is_null() {
        // SAFETY: non-NULL, and the caller guarantees it is writable.
        unsafe { len.write(json.len()) };
    }
    json.as_ptr()
}

/// Frees the payload a sync exported function wrote into its `AffiCompletion` (call it once
/// for every non-NULL `data` a sync call returned). Returns `AFFI_STATUS_ERR_VALUE` for an
/// address no sync result is held at (freed already, or never a sync result).
#[no_mangle]
pub extern "C" fn affi_result_free(data: *const u8) -> i32 {
    guard_status(|| crate::sync_result::free(data))
}

// --- the log bridge (see `crate::logging`) --------------------------------------------------

/// Makes the log bridge this library's `log` logger (and tracing subscriber, if the library is
/// built with asyncffi's feature `tracing`). Returns a bit set: 1 if `log`'s records reach the
/// bridge, 2 if tracing's do (0: the library installed loggers of its own first).
#[no_mangle]
pub extern "C" fn affi_log_install() -> i32 {
    guard(|| Ok(i64::from(crate::logging::install()))) as i32
}

/// Sets the levels records must reach to cross: `data[..len]` is a MessagePack list
/// `[floor, {logger name: level, ...}]` (see `crate::logging::set_levels`; `""` is the root
/// logger).
///
/// # Safety
/// `data` must point to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn affi_log_levels(data: *const u8, len: usize) -> i32 {
    guard_status(|| {
        if data.is_null() {
            return Err(Failure::new(AffiStatus::ErrValue, "levels buffer is NULL"));
        }
        // SAFETY: the caller guarantees `len` readable bytes at `data`.
        let bytes = unsafe { std::slice::from_raw_parts(data, len) };
        let bad = || {
            Failure::new(
                AffiStatus::ErrValue,
                "levels must be [floor, {name: level}]",
            )
        };
        let value =
            codec::decode(bytes).map_err(|e| Failure::new(AffiStatus::ErrValue, e.to_string()))?;
        let Value::List(items) = value else {
            return Err(bad());
        };
        let [Value::Int(floor), Value::Dict(entries)] = items.as_slice() else {
            return Err(bad());
        };
        let level = |n: i64| n.clamp(0, i64::from(u8::MAX)) as u8;
        let mut explicit = std::collections::HashMap::with_capacity(entries.len());
        for (name, value) in entries {
            let Value::Int(n) = value else {
                return Err(bad());
            };
            explicit.insert(name.clone(), level(*n));
        }
        crate::logging::set_levels(explicit, level(*floor));
        Ok(())
    })
}

/// Waits up to `timeout_ms` for records (the GIL released: cffi does). Returns how many are
/// queued (0 on timeout), or `AFFI_STATUS_ERR_CLOSED` once the bridge is closed and empty.
#[no_mangle]
pub extern "C" fn affi_log_wait(timeout_ms: u32) -> i64 {
    guard(|| {
        crate::logging::wait(Duration::from_millis(u64::from(timeout_ms)))
            .map(|n| n as i64)
            .ok_or_else(|| Failure::new(AffiStatus::ErrClosed, "the log bridge is closed"))
    })
}

/// Takes up to `max` queued records as one MessagePack buffer of `*len` bytes (see
/// `crate::logging::encode`), NULL with `*len == 0` if none is queued. The buffer stays valid
/// until the next `affi_log_drain` of this library: drain from one thread at a time.
///
/// # Safety
/// `len` must point to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn affi_log_drain(max: usize, len: *mut usize) -> *const u8 {
    let (ptr, n) = crate::boundary::catching(|| {
        let records = crate::logging::take(max);
        if records.is_empty() {
            (std::ptr::null(), 0)
        } else {
            crate::logging::hold_drained(crate::logging::encode(records))
        }
    })
    .unwrap_or((std::ptr::null(), 0));
    if !len.is_null() {
        // SAFETY: checked non-null; the caller guarantees it is writable.
        unsafe { len.write(n) };
    }
    ptr
}

/// Closes the log bridge: a waiting `affi_log_wait` returns; later records are dropped and
/// counted. What is queued can still be drained.
#[no_mangle]
pub extern "C" fn affi_log_close() -> i32 {
    guard_status(|| {
        crate::logging::close();
        Ok(())
    })
}

/// Sets how many records the log queue holds before it drops (0 keeps the current capacity)
/// and writes the bridge's counters into `out` (if not NULL).
///
/// # Safety
/// `out` must be NULL or point to a writable `AffiLogStats`.
#[no_mangle]
pub unsafe extern "C" fn affi_log_stats(capacity: u64, out: *mut AffiLogStats) -> i32 {
    guard_status(|| {
        if capacity > 0 {
            crate::logging::set_capacity(usize::try_from(capacity).unwrap_or(usize::MAX));
        }
        if !out.is_null() {
            let (crossed, dropped, queued, capacity) = crate::logging::counters();
            let now = AffiLogStats {
                crossed,
                dropped,
                queued: queued as u64,
                capacity: capacity as u64,
            };
            // SAFETY: checked non-null; the caller guarantees it is a writable AffiLogStats.
            unsafe { out.write(now) };
        }
        Ok(())
    })
}
