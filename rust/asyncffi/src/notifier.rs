//! The notifier thread: the only Rust thread that ever calls into Python, for the `threadsafe`
//! wake strategy.
//!
//! Runtime workers never call the wake callback themselves (it takes the GIL, which may be held
//! for seconds). They push the port's id here and return; this thread calls the registered C
//! callback (`AffiWakeFn`) once per queued id, outside every lock. The Python side turns each
//! call into a thread-safe request to its event loop to drain the port.
//!
//! Shutdown protocol (Python's atexit hook calls `affi_shutdown` with the GIL released):
//! 1. `stop` sets `stopped`; no callback starts after that.
//! 2. `stop` waits, for the shutdown timeout at most, until a callback already running returns.
//!    A callback waiting for the GIL finishes within that time, because the caller released
//!    the GIL for the duration of the C call.
//! 3. The thread exits. So no callback starts in a finalizing interpreter, and no Rust frame is
//!    under a Python call when finalization could kill the thread.
//!
//! A callback still running when the timeout passes is one that Python code blocked (a
//! finalizer run by the garbage collector inside it that waits on a lock or sleeps, say):
//! exit goes on without it rather than hang. The cost, stated in the README: if that callback
//! gets back to Python later, during finalization, CPython 3.13 and older end the thread as it
//! takes the GIL, which can abort the process instead of a clean exit; while it stays blocked,
//! the process exits normally and the thread ends with it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub use crate::abi::AffiWakeFn;

static CALLBACK: AtomicUsize = AtomicUsize::new(0);

#[derive(Default)]
struct State {
    /// Ports to wake, in order.
    pending: Vec<u64>,
    /// Set once by `stop`; never unset.
    stopped: bool,
    /// True while the thread is running callbacks outside the lock.
    calling: bool,
    /// Whether the thread was started.
    started: bool,
}

struct Notifier {
    state: Mutex<State>,
    /// Signals the thread: work pending or stop requested.
    work: Condvar,
    /// Signals `stop`: the thread is no longer calling out.
    idle: Condvar,
}

fn notifier() -> &'static Notifier {
    static NOTIFIER: OnceLock<Notifier> = OnceLock::new();
    NOTIFIER.get_or_init(|| Notifier {
        state: Mutex::new(State::default()),
        work: Condvar::new(),
        idle: Condvar::new(),
    })
}

fn lock(n: &Notifier) -> std::sync::MutexGuard<'_, State> {
    n.state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Registers the callback that wakes Python (replacing any earlier one).
pub fn set_callback(callback: Option<AffiWakeFn>) {
    CALLBACK.store(callback.map_or(0, |f| f as usize), Ordering::Release);
}

fn callback() -> Option<AffiWakeFn> {
    match CALLBACK.load(Ordering::Acquire) {
        0 => None,
        // SAFETY: the only non-zero values stored are `AffiWakeFn` pointers (`set_callback`).
        raw => Some(unsafe { std::mem::transmute::<usize, AffiWakeFn>(raw) }),
    }
}

/// Queues a wake-up for `port`. Cheap and non-blocking apart from a short lock; never calls
/// into Python. Returns false once the notifier is stopped.
pub fn notify(port: u64) -> bool {
    let n = notifier();
    let mut state = lock(n);
    if state.stopped {
        return false;
    }
    state.pending.push(port);
    if !state.started {
        // The id stays pending either way: if the thread cannot start now, the next wake of
        // any port tries again and delivers it.
        state.started = std::thread::Builder::new()
            .name("asyncffi-notifier".into())
            .spawn(run)
            .is_ok();
        return state.started;
    }
    if state.pending.len() == 1 {
        n.work.notify_one();
    }
    true
}

fn run() {
    let n = notifier();
    let mut batch = Vec::new();
    loop {
        {
            let mut state = lock(n);
            state.calling = false;
            n.idle.notify_all();
            while state.pending.is_empty() && !state.stopped {
                state = n.work.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            if state.stopped {
                return;
            }
            std::mem::swap(&mut batch, &mut state.pending);
            state.calling = true;
        }
        for port in batch.drain(..) {
            if is_stopped() {
                break;
            }
            if let Some(cb) = callback() {
                cb(port);
            }
        }
    }
}

fn is_stopped() -> bool {
    lock(notifier()).stopped
}

/// Stops all wake-ups for good and waits, for `timeout` at most, until a callback in progress
/// has returned. Returns false if one is still running after `timeout` (see the module docs
/// for what that costs).
///
/// A callback in progress is normally waiting for the GIL (or running with it), and the caller
/// released the GIL for this call, so it finishes as soon as the interpreter lets it.
pub fn stop(timeout: Duration) -> bool {
    let n = notifier();
    let deadline = Instant::now() + timeout;
    let mut state = lock(n);
    state.stopped = true;
    state.pending.clear();
    n.work.notify_all();
    while state.calling {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        state = n
            .idle
            .wait_timeout(state, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    true
}
