//! The completion protocol without Python: spawn on both runtimes, complete, wake, drain,
//! release, cancel and close, driven through the same C ABI functions Python calls.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use asyncffi::ffi::{
    affi_call_complete, affi_port_close, affi_port_drain, affi_port_fd, affi_port_open,
    affi_port_release, affi_port_release_inline, affi_port_take_inline, affi_set_wake_callback,
    affi_stats, affi_task_cancel, AffiStats,
};
use asyncffi::ffi::{affi_last_error, affi_object_free, affi_stream_grant};
use asyncffi::port::{AffiCompletion, AffiOutcome, AffiRequest, AffiTag, AffiWake};
use asyncffi::{codec, spawn, AffiStatus, Error, PyCallable, Runtime, Value};

/// A future that is pending once (waking itself), then ready: it cannot finish on the eager
/// first poll, so it goes through the runtime and the port.
fn yield_once() -> impl std::future::Future<Output = ()> {
    let mut yielded = false;
    std::future::poll_fn(move |cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
}

/// `value`, delivered through the runtime and the port (not the eager path).
async fn later(value: asyncffi::Result<Value>) -> asyncffi::Result<Value> {
    yield_once().await;
    value
}

/// Tests that read the global counters run one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn stats() -> AffiStats {
    let mut out = AffiStats::default();
    // SAFETY: `out` is a valid, writable AffiStats.
    assert_eq!(unsafe { affi_stats(&mut out) }, 0);
    out
}

fn open(wake: AffiWake) -> u64 {
    let id = affi_port_open(wake as u32);
    assert!(id > 0, "port open failed: {id}");
    id as u64
}

/// Drains `port` until `n` completions arrived or `timeout` passed.
fn drain_n(port: u64, n: usize, timeout: Duration) -> Vec<AffiCompletion> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [AffiCompletion::default(); 16];
    while got.len() < n && Instant::now() < deadline {
        // SAFETY: `buf` holds 16 writable completions.
        let k = unsafe { affi_port_drain(port, buf.as_mut_ptr(), buf.len()) };
        assert!(k >= 0, "drain failed: {k}");
        got.extend_from_slice(&buf[..k as usize]);
        if k == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    got
}

fn bytes_of(c: &AffiCompletion) -> Vec<u8> {
    // SAFETY: the port keeps `data` alive until `affi_port_release`, which callers run after.
    unsafe { std::slice::from_raw_parts(c.data, c.len) }.to_vec()
}

struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn wait_for(flag: &AtomicBool, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while !flag.load(Ordering::SeqCst) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

#[test]
fn values_errors_and_panics_arrive_with_their_tokens() {
    let _serial = serial();
    for runtime in [Runtime::Tokio, Runtime::AsyncStd] {
        let port = open(AffiWake::Fd);
        spawn(runtime, port, 1, later(Ok(Value::Int(-7)))).unwrap();
        spawn(runtime, port, 2, later(Ok(Value::Str("é".into())))).unwrap();
        spawn(
            runtime,
            port,
            3,
            later(Err(Error::new("io", "disk on fire"))),
        )
        .unwrap();
        spawn(runtime, port, 4, async {
            yield_once().await;
            panic!("kaboom");
        })
        .unwrap();
        let list = Value::List(vec![Value::None, Value::Float(2.5)]);
        spawn(runtime, port, 5, later(Ok(list))).unwrap();
        let mut got = drain_n(port, 5, Duration::from_secs(5));
        got.sort_by_key(|c| c.token);
        assert_eq!(got.len(), 5);
        assert_eq!(
            (got[0].status, got[0].tag, got[0].int_value),
            (AffiOutcome::Ok as i32, AffiTag::Int as u32, -7)
        );
        assert_eq!(bytes_of(&got[1]), "é".as_bytes());
        assert_eq!(got[2].status, AffiOutcome::Error as i32);
        assert_eq!(
            codec::decode(&bytes_of(&got[2])).unwrap(),
            Value::List(vec![
                Value::Str("io".into()),
                Value::Str("disk on fire".into())
            ])
        );
        assert_eq!(got[3].status, AffiOutcome::Panic as i32);
        assert_eq!(bytes_of(&got[3]), b"kaboom");
        assert_eq!(
            codec::decode(&bytes_of(&got[4])).unwrap(),
            Value::List(vec![Value::None, Value::Float(2.5)])
        );
        assert!(stats().live_values >= 4);
        assert_eq!(affi_port_release(port), 0);
        assert_eq!(affi_port_close(port), 0);
    }
    // A task is dropped just after it pushed its outcome: give the last ones a moment.
    let deadline = Instant::now() + Duration::from_secs(2);
    while stats().live_tasks != 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    let s = stats();
    assert_eq!((s.live_values, s.live_tasks), (0, 0));
}

#[test]
fn only_the_first_push_into_an_empty_queue_wakes() {
    let _serial = serial();
    let port = open(AffiWake::Fd);
    let fd = affi_port_fd(port);
    assert!(fd >= 0);
    let wakes = stats().wakes;
    for token in 0..50 {
        spawn(Runtime::Tokio, port, token, async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(Value::None)
        })
        .unwrap();
    }
    // Nobody drains meanwhile, so only the first push found the queue empty.
    let deadline = Instant::now() + Duration::from_secs(5);
    while stats().live_tasks > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(stats().wakes - wakes, 1, "wake-ups were not coalesced");
    let got = drain_n(port, 50, Duration::from_secs(5));
    assert_eq!(got.len(), 50);
    assert_eq!(affi_port_close(port), 0);
}

#[test]
fn cancelling_drops_the_future_on_its_runtime_and_delivers_nothing() {
    let _serial = serial();
    for runtime in [Runtime::Tokio, Runtime::AsyncStd] {
        let port = open(AffiWake::Fd);
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = DropFlag(dropped.clone());
        let task = spawn(runtime, port, 9, async move {
            let _flag = flag;
            std::future::pending::<()>().await;
            Ok(Value::None)
        })
        .unwrap();
        let cancelled = stats().cancelled;
        assert_eq!(affi_task_cancel(task), 0);
        assert!(
            wait_for(&dropped, Duration::from_secs(2)),
            "{runtime:?} kept the future"
        );
        assert!(drain_n(port, 1, Duration::from_millis(50)).is_empty());
        assert_eq!(stats().cancelled, cancelled + 1);
        // The id is stale now: cancelling again is an error code, not undefined behaviour.
        assert_eq!(affi_task_cancel(task), AffiStatus::ErrClosed as i32);
        assert_eq!(affi_port_close(port), 0);
    }
}

#[test]
fn closing_a_port_cancels_its_tasks_and_refuses_use() {
    let _serial = serial();
    let port = open(AffiWake::Fd);
    let flags: Vec<Arc<AtomicBool>> = (0..10).map(|_| Arc::new(AtomicBool::new(false))).collect();
    for (token, dropped) in flags.iter().enumerate() {
        let flag = DropFlag(dropped.clone());
        let runtime = if token % 2 == 0 {
            Runtime::Tokio
        } else {
            Runtime::AsyncStd
        };
        spawn(runtime, port, token as u64, async move {
            let _flag = flag;
            std::future::pending::<()>().await;
            Ok(Value::None)
        })
        .unwrap();
    }
    assert_eq!(affi_port_close(port), 0);
    for flag in &flags {
        assert!(wait_for(flag, Duration::from_secs(2)));
    }
    assert_eq!(affi_port_close(port), AffiStatus::ErrClosed as i32);
    let mut buf = [AffiCompletion::default(); 1];
    // SAFETY: `buf` holds one writable completion.
    assert_eq!(
        unsafe { affi_port_drain(port, buf.as_mut_ptr(), 1) },
        AffiStatus::ErrClosed as i64
    );
    assert!(spawn(Runtime::Tokio, port, 0, async { Ok(Value::None) }).is_err());
    let deadline = Instant::now() + Duration::from_secs(2);
    while stats().live_ports != 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(stats().live_ports, 0);
}

static WOKEN: AtomicU64 = AtomicU64::new(0);

extern "C" fn record_wake(port: u64) {
    WOKEN.store(port, Ordering::SeqCst);
}

#[test]
fn threadsafe_ports_wake_through_the_notifier_thread() {
    let _serial = serial();
    assert_eq!(affi_set_wake_callback(Some(record_wake)), 0);
    let port = open(AffiWake::Threadsafe);
    assert!(affi_port_fd(port) < 0, "a threadsafe port has no fd");
    spawn(Runtime::AsyncStd, port, 1, later(Ok(Value::Bool(true)))).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while WOKEN.load(Ordering::SeqCst) != port && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(WOKEN.load(Ordering::SeqCst), port);
    let got = drain_n(port, 1, Duration::from_secs(1));
    assert_eq!((got[0].tag, got[0].int_value), (AffiTag::Bool as u32, 1));
    assert_eq!(affi_port_close(port), 0);
    assert_eq!(affi_set_wake_callback(None), 0);
}

#[test]
fn bad_handles_and_arguments_are_errors() {
    assert_eq!(affi_port_open(99), AffiStatus::ErrValue as i64);
    assert_eq!(affi_port_close(0), AffiStatus::ErrClosed as i32);
    // Forged ids carry no tag of this library: refused as ids of another library.
    assert_eq!(affi_port_close(u64::MAX), AffiStatus::ErrValue as i32);
    let tag = asyncffi::handle_table::library_tag();
    let forged = (5 << 41) | (1 << 20) | (tag ^ 1);
    assert_eq!(affi_task_cancel(forged), AffiStatus::ErrValue as i32);
    // An id of this library that names nothing: closed.
    let stale = (12345 << 41) | (1 << 20) | tag;
    assert_eq!(affi_task_cancel(stale), AffiStatus::ErrClosed as i32);
    assert!(Runtime::from_raw(7).is_err());
    // SAFETY: a NULL buffer with a non-zero cap is refused before any write.
    let port = open(AffiWake::Threadsafe);
    assert_eq!(
        unsafe { affi_port_drain(port, std::ptr::null_mut(), 4) },
        AffiStatus::ErrValue as i64
    );
    assert_eq!(affi_port_close(port), 0);
}

/// The message of this thread's last error.
fn last_error_text() -> String {
    let mut len = 0usize;
    // SAFETY: `len` is a writable usize; the bytes stay valid until the next failing call.
    let ptr = unsafe { affi_last_error(&mut len) };
    // SAFETY: the library wrote `len` readable UTF-8 bytes at `ptr`.
    String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(ptr, len) }).into_owned()
}

#[test]
fn ids_of_another_library_are_refused_by_name() {
    // Another copy of the core issues ids with another tag: the same slot and generation
    // under a different tag is what such an id looks like here.
    let other = |id: u64| id ^ (1 << 7);
    let port = open(AffiWake::Threadsafe);
    let task = spawn(
        Runtime::Tokio,
        port,
        1,
        std::future::pending::<asyncffi::Result<Value>>(),
    )
    .unwrap();
    assert_eq!(affi_task_cancel(other(task)), AffiStatus::ErrValue as i32);
    assert!(last_error_text().contains("task id"));
    assert!(last_error_text().contains("belongs to another library"));
    assert_eq!(
        affi_stream_grant(other(task), 1),
        AffiStatus::ErrValue as i32
    );
    assert_eq!(affi_port_close(other(port)), AffiStatus::ErrValue as i32);
    assert!(last_error_text().contains("port id"));
    let object = asyncffi::object::register(std::sync::Arc::new(7u8));
    assert_eq!(affi_object_free(other(object)), AffiStatus::ErrValue as i32);
    assert!(last_error_text().contains("belongs to another library"));
    // Their own library's ids still work.
    assert_eq!(affi_object_free(object), 0);
    assert_eq!(affi_task_cancel(task), 0);
    assert_eq!(affi_port_close(port), 0);
}

/// Drains until a completion with `status` arrives; returns it.
fn next_with_status(port: u64, status: i32) -> AffiCompletion {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [AffiCompletion::default(); 1];
    while Instant::now() < deadline {
        // SAFETY: `buf` holds one writable completion.
        let k = unsafe { affi_port_drain(port, buf.as_mut_ptr(), 1) };
        if k == 1 && buf[0].status == status {
            return buf[0];
        }
        if k == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    panic!("no completion with status {status} arrived");
}

fn answer(call: u64, value: i64) -> i32 {
    // SAFETY: an int value uses no data pointer.
    unsafe {
        affi_call_complete(
            0, // no port: wake-ups are not held
            call,
            AffiOutcome::Ok as i32,
            AffiTag::Int as u32,
            value,
            0.0,
            std::ptr::null(),
            0,
        )
    }
}

/// Python's answer "KeyError: 'k'" to call `call`, naming exception object `exception`.
fn answer_key_error(call: u64, exception: i64) -> i32 {
    let pair = codec::encode(&Value::List(vec![
        Value::Str("KeyError".into()),
        Value::Str("'k'".into()),
    ]))
    .unwrap();
    // SAFETY: `pair` is readable for its length.
    unsafe {
        affi_call_complete(
            0, // no port: wake-ups are not held
            call,
            AffiOutcome::Error as i32,
            AffiTag::Packed as u32,
            exception,
            0.0,
            pair.as_ptr(),
            pair.len(),
        )
    }
}

#[test]
fn rust_calls_python_through_requests_on_the_port() {
    let _serial = serial();
    let port = open(AffiWake::Fd);
    let callable = PyCallable::adopt(port, 77).unwrap();
    let result = Arc::new(Mutex::new(None));
    let sink = result.clone();
    let c = callable.clone();
    spawn(Runtime::AsyncStd, port, 1, async move {
        let r = c.call(vec![Value::Int(5), Value::Str("x".into())]).await;
        *sink.lock().unwrap() = Some(r);
        Ok(Value::None)
    })
    .unwrap();
    // Python's side of the protocol: a Call request naming the callable, with packed arguments.
    let request = next_with_status(port, AffiRequest::Call as i32);
    assert_eq!(request.int_value, 77);
    assert_eq!(
        codec::decode(&bytes_of(&request)).unwrap(),
        Value::List(vec![Value::Int(5), Value::Str("x".into())])
    );
    assert_eq!(stats().live_calls, 1);
    assert_eq!(answer(request.token, 6), 0);
    assert_eq!(
        answer(request.token, 6),
        AffiStatus::ErrClosed as i32,
        "answered twice"
    );
    next_with_status(port, AffiOutcome::Ok as i32);
    assert_eq!(*result.lock().unwrap(), Some(Ok(Value::Int(6))));
    assert_eq!(affi_port_release(port), 0);
    // Dropping the last reference asks Python to release the callable.
    assert_eq!(stats().live_callables, 1);
    drop(callable);
    let release = next_with_status(port, AffiRequest::Release as i32);
    assert_eq!(release.int_value, 77);
    assert_eq!(stats().live_callables, 0);
    assert_eq!(affi_port_close(port), 0);
}

#[test]
fn dropping_a_call_sends_cancel_and_python_errors_keep_their_object() {
    let _serial = serial();
    let port = open(AffiWake::Fd);
    let callable = PyCallable::adopt(port, 5).unwrap();
    let call = callable.call(vec![]);
    let request = next_with_status(port, AffiRequest::Call as i32);
    drop(call);
    let cancel = next_with_status(port, AffiRequest::Cancel as i32);
    assert_eq!(cancel.token, request.token);
    assert_eq!(
        answer(request.token, 1),
        AffiStatus::ErrClosed as i32,
        "late answers are refused"
    );

    // An exception: Rust gets type name and message and adopts the exception object (id 9).
    let call = callable.call(vec![]);
    let request = next_with_status(port, AffiRequest::Call as i32);
    assert_eq!(answer_key_error(request.token, 9), 0);
    let error = futures_block_on(call).unwrap_err();
    assert_eq!(
        (error.type_name.as_str(), error.message.as_str()),
        ("KeyError", "'k'")
    );
    assert_eq!(stats().live_py_errors, 1);
    // Returned to Python unchanged, the error names the original object (id 9) ...
    spawn(Runtime::Tokio, port, 3, later(Err(Error::from(error)))).unwrap();
    let outcome = next_with_status(port, AffiOutcome::Error as i32);
    assert_eq!(
        codec::decode(&bytes_of(&outcome)).unwrap(),
        Value::List(vec![
            Value::Str("KeyError".into()),
            Value::Str("'k'".into()),
            Value::Int(9)
        ])
    );
    // ... which Rust releases once Python has read the batch.
    assert_eq!(affi_port_release(port), 0);
    let release = next_with_status(port, AffiRequest::Release as i32);
    assert_eq!(release.int_value, 9);
    assert_eq!(stats().live_py_errors, 0);
    drop(callable);
    assert_eq!(affi_port_close(port), 0);
}

#[test]
fn closing_the_port_fails_waiting_calls_at_once() {
    let _serial = serial();
    let port = open(AffiWake::Fd);
    let callable = PyCallable::adopt(port, 1).unwrap();
    let call = callable.call(vec![Value::None]);
    assert_eq!(affi_port_close(port), 0);
    let error = futures_block_on(call).unwrap_err();
    assert_eq!(error.type_name, "closed");
    // Calls made after the close fail at once too.
    let error = futures_block_on(callable.call(vec![])).unwrap_err();
    assert_eq!(error.type_name, "closed");
    assert_eq!(stats().live_calls, 0);
    drop(callable);
    assert_eq!(stats().live_callables, 0);
}

/// Runs a future to completion on this thread, on a throwaway current-thread runtime.
fn futures_block_on<F: std::future::Future>(future: F) -> F::Output {
    let handle = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    handle.block_on(future)
}

#[test]
fn ready_futures_are_delivered_inline_without_a_task_or_a_wake() {
    let _serial = serial();
    let port = open(AffiWake::Fd);
    let before = stats();
    for runtime in [Runtime::Tokio, Runtime::AsyncStd] {
        // tokio's context is entered for the first poll: creating a timer there is fine.
        let task = spawn(runtime, port, 1, async move {
            if runtime == Runtime::Tokio {
                drop(tokio::time::sleep(Duration::from_secs(1)));
            }
            Ok(Value::Str("now".into()))
        })
        .unwrap();
        assert_eq!(task, 0, "ready on the first poll: no task");
        let mut out = AffiCompletion::default();
        // SAFETY: `out` is a writable completion.
        assert_eq!(unsafe { affi_port_take_inline(port, 1, &mut out) }, 0);
        assert_eq!(
            (out.status, out.tag),
            (AffiOutcome::Ok as i32, AffiTag::Str as u32)
        );
        assert_eq!(bytes_of(&out), b"now");
        assert_eq!(affi_port_release_inline(port, 1), 0);
        // SAFETY: as above; nothing is left to take now.
        assert_eq!(
            unsafe { affi_port_take_inline(port, 1, &mut out) },
            AffiStatus::ErrValue as i32
        );
    }
    let panicked = spawn(Runtime::Tokio, port, 2, async { panic!("at once") }).unwrap();
    assert_eq!(panicked, 0);
    let mut out = AffiCompletion::default();
    // SAFETY: `out` is a writable completion; an outcome is only handed to its own call.
    assert_eq!(
        unsafe { affi_port_take_inline(port, 3, &mut out) },
        AffiStatus::ErrValue as i32
    );
    spawn(Runtime::Tokio, port, 2, async { panic!("at once") }).unwrap();
    // SAFETY: as above.
    assert_eq!(unsafe { affi_port_take_inline(port, 2, &mut out) }, 0);
    assert_eq!(
        (out.status, bytes_of(&out)),
        (AffiOutcome::Panic as i32, b"at once".to_vec())
    );
    assert_eq!(affi_port_release_inline(port, 2), 0);
    let after = stats();
    assert_eq!(after.wakes, before.wakes, "nothing was queued");
    assert_eq!(after.spawned - before.spawned, 4);
    assert_eq!(after.completed - before.completed, 4);
    assert_eq!((after.live_tasks, after.live_values), (0, 0));
    assert_eq!(affi_port_close(port), 0);
}

#[test]
fn an_annotated_python_error_no_longer_names_the_original() {
    let _serial = serial();
    let port = open(AffiWake::Fd);
    let callable = PyCallable::adopt(port, 4).unwrap();
    let call = callable.call(vec![]);
    let request = next_with_status(port, AffiRequest::Call as i32);
    assert_eq!(answer_key_error(request.token, 12), 0);
    let mut error = Error::from(futures_block_on(call).unwrap_err());
    error.message = format!("while loading: {}", error.message);
    spawn(Runtime::Tokio, port, 3, later(Err(error))).unwrap();
    let outcome = next_with_status(port, AffiOutcome::Error as i32);
    assert_eq!(
        codec::decode(&bytes_of(&outcome)).unwrap(),
        Value::List(vec![
            Value::Str("KeyError".into()),
            Value::Str("while loading: 'k'".into())
        ]),
        "an edited error is a RustError, not the original exception"
    );
    assert_eq!(affi_port_release(port), 0);
    drop(callable);
    assert_eq!(affi_port_close(port), 0);
}

#[test]
fn a_closed_port_keeps_the_payloads_being_read_until_they_are_released() {
    let _serial = serial();
    let port = open(AffiWake::Fd);
    let big = vec![7u8; 1 << 20];
    spawn(
        Runtime::Tokio,
        port,
        1,
        later(Ok(Value::Bytes(big.clone()))),
    )
    .unwrap();
    let drained = drain_n(port, 1, Duration::from_secs(2));
    assert_eq!(drained.len(), 1);
    let task = spawn(Runtime::Tokio, port, 2, async {
        Ok(Value::Str("inline".into()))
    })
    .unwrap();
    assert_eq!(task, 0);
    let mut inline = AffiCompletion::default();
    // SAFETY: `inline` is a writable completion.
    assert_eq!(unsafe { affi_port_take_inline(port, 2, &mut inline) }, 0);
    let values = stats().live_values;
    // Another thread closes the port (interpreter exit) while this one reads both payloads.
    std::thread::spawn(move || assert_eq!(affi_port_close(port), 0))
        .join()
        .unwrap();
    assert_eq!(stats().live_values, values, "nothing being read was freed");
    assert_eq!(bytes_of(&drained[0]), big);
    assert_eq!(bytes_of(&inline), b"inline");
    let mut buf = [AffiCompletion::default(); 4];
    // SAFETY: `buf` holds 4 writable completions.
    let n = unsafe { affi_port_drain(port, buf.as_mut_ptr(), buf.len()) };
    assert_eq!(
        n,
        AffiStatus::ErrClosed as i64,
        "a closed port drains nothing"
    );
    assert_eq!(affi_port_release(port), 0);
    assert_eq!(stats().live_values, values - 1);
    assert_eq!(affi_port_release_inline(port, 2), 0);
    assert_eq!(stats().live_values, values - 2);
    assert_eq!(affi_port_release(port), AffiStatus::ErrClosed as i32);
    assert_eq!(
        affi_port_release_inline(port, 2),
        AffiStatus::ErrClosed as i32
    );
    // SAFETY: as above.
    let mut out = AffiCompletion::default();
    assert_eq!(
        unsafe { affi_port_take_inline(port, 3, &mut out) },
        AffiStatus::ErrClosed as i32
    );
}

#[test]
fn inline_outcomes_are_released_one_token_at_a_time() {
    let _serial = serial();
    let port = open(AffiWake::Fd);
    let before = stats().live_values;
    let mut first = AffiCompletion::default();
    let mut second = AffiCompletion::default();
    let outer = vec![1u8; 1 << 20];
    let value = Value::Bytes(outer.clone());
    assert_eq!(
        spawn(Runtime::Tokio, port, 1, async { Ok(value) }).unwrap(),
        0
    );
    // SAFETY: `first` is a writable completion.
    assert_eq!(unsafe { affi_port_take_inline(port, 1, &mut first) }, 0);
    // A finalizer run while `first` is decoded makes, takes and releases another inline call.
    assert_eq!(
        spawn(Runtime::AsyncStd, port, 2, async {
            Ok(Value::Str("inner".into()))
        })
        .unwrap(),
        0
    );
    // SAFETY: `second` is a writable completion.
    assert_eq!(unsafe { affi_port_take_inline(port, 2, &mut second) }, 0);
    assert_eq!(bytes_of(&second), b"inner");
    assert_eq!(affi_port_release_inline(port, 2), 0);
    assert_eq!(
        stats().live_values,
        before + 1,
        "the outer payload is still held"
    );
    assert_eq!(bytes_of(&first), outer);
    assert_eq!(affi_port_release_inline(port, 1), 0);
    assert_eq!(stats().live_values, before);
    assert_eq!(affi_port_close(port), 0);
}

#[test]
fn a_panic_while_holding_wakes_restores_them_and_sends_the_held_wake() {
    use asyncffi::port::{holding_wakes, Outcome, Port};
    let _serial = serial();
    let port = open(AffiWake::Fd);
    let wakes = stats().wakes;
    let unwound = std::panic::catch_unwind(|| {
        holding_wakes(port, || {
            Port::get(port)
                .unwrap()
                .push(1, Outcome::Done(Ok(Value::Int(1))));
            panic!("inside holding_wakes");
        })
    });
    assert!(unwound.is_err());
    assert_eq!(
        stats().wakes,
        wakes + 1,
        "the held wake is sent as the panic unwinds"
    );
    assert_eq!(drain_n(port, 1, Duration::from_secs(2)).len(), 1);
    assert_eq!(drain_n(port, 1, Duration::from_millis(10)).len(), 0);
    // Wake-ups are no longer held on this thread: the next push into the empty queue wakes.
    Port::get(port)
        .unwrap()
        .push(2, Outcome::Done(Ok(Value::Int(2))));
    assert_eq!(stats().wakes, wakes + 2);
    let ((), needed) = holding_wakes(port, || {
        Port::get(port)
            .unwrap()
            .push(3, Outcome::Done(Ok(Value::Int(3))));
    });
    assert!(!needed, "the queue was not empty: no wake was needed");
    assert_eq!(affi_port_close(port), 0);
}

#[test]
fn the_runtimes_and_flavors_are_listed_with_their_c_values() {
    let mut len = 0usize;
    // SAFETY: `len` is writable; the document lives as long as the library.
    let ptr = unsafe { asyncffi::ffi::affi_runtimes(&mut len) };
    // SAFETY: `affi_runtimes` returns `len` readable bytes.
    let json = std::str::from_utf8(unsafe { std::slice::from_raw_parts(ptr, len) }).unwrap();
    assert_eq!(
        json,
        "{\"runtimes\": {\"tokio\": 0, \"async-std\": 1, \"async_std\": 1, \"loop\": 2}, \
         \"flavors\": {\"multi_thread\": 0, \"current_thread\": 1}}"
    );
    // The values listed are the ones hand-written exports and `affi_configure` take.
    for (value, runtime) in [
        (0, Runtime::Tokio),
        (1, Runtime::AsyncStd),
        (2, Runtime::Loop),
    ] {
        assert_eq!(Runtime::from_raw(value).unwrap(), runtime);
    }
    assert_eq!(
        Runtime::from_raw(3).unwrap_err().status,
        AffiStatus::ErrValue
    );
    assert_eq!(
        asyncffi::ffi::affi_configure(0, 7),
        AffiStatus::ErrValue as i32
    );
}
