//! Shutdown with a wake callback that never returns (its own test binary: shutdown is final
//! for the process): exit does not wait for it past the timeout.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use asyncffi::ffi::{affi_port_open, affi_set_wake_callback, affi_shutdown};
use asyncffi::port::AffiWake;
use asyncffi::{spawn, Runtime, Value};

static CALLED: AtomicBool = AtomicBool::new(false);

/// A wake callback blocked for good, as one whose Python code waits on a lock that is never
/// released would be.
extern "C" fn blocked_wake(_port: u64) {
    CALLED.store(true, Ordering::SeqCst);
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

#[test]
fn shutdown_returns_within_its_bound_while_a_wake_callback_blocks() {
    assert_eq!(affi_set_wake_callback(Some(blocked_wake)), 0);
    let port = affi_port_open(AffiWake::Threadsafe as u32) as u64;
    // Pending on its first poll whatever the clock does (a 1 ms timer can already be due when
    // it is first polled under valgrind, and the call then completes inline, with no task):
    // the task is spawned, and its completion goes through the port and its wake callback.
    let task = spawn(Runtime::Tokio, port, 1, async {
        let mut polled = false;
        std::future::poll_fn(|cx| {
            if std::mem::replace(&mut polled, true) {
                return std::task::Poll::Ready(());
            }
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        })
        .await;
        Ok(Value::None)
    })
    .unwrap();
    assert!(
        task > 0,
        "the call completed inline instead of spawning a task"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !CALLED.load(Ordering::SeqCst) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(CALLED.load(Ordering::SeqCst), "the wake callback runs");
    let start = Instant::now();
    assert_eq!(affi_shutdown(300), 0);
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "shutdown waited {took:?} for a blocked wake callback"
    );
}
