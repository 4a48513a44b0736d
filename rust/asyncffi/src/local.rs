//! The `loop` runtime: futures polled on the event loop's own thread.
//!
//! A call on `Runtime::Loop` is a task like any other (same task table, cancellation, panic
//! capture and completion), but no runtime thread polls it: its waker queues a `Poll` request on
//! the task's port, and Python answers it on the loop thread with `affi_task_poll`. Each poll
//! runs inside tokio's context, so tokio timers, IO and `spawn_blocking` work as usual (their
//! drivers run on tokio's threads and wake the task through the port).
//!
//! What it buys: no thread hop between Rust and Python. A Rust future that awaits Python
//! callables one after another (`PyCallable::call`) goes back and forth on one thread, where
//! the other runtimes pay two thread wake-ups per call. What it costs: the event loop runs the
//! Rust code, so every poll must be short, as for the first poll of any call.
//!
//! Life of a local task:
//! 1. `spawn` polls it once (the eager path); if pending, `start` files it here and queues its
//!    first `Poll` (wake-ups during the eager poll went to a no-op waker).
//! 2. A wake queues one `Poll` request (later wakes before that poll are merged).
//! 3. `poll` takes the future out of the table, polls it and puts it back, or drops it once
//!    it is ready (the task's `Tracked` wrapper has delivered its outcome or seen its cancel).
//! 4. Closing the port drops the port's local tasks on the closing thread.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Wake, Waker};

use crate::boundary::catching;
use crate::close_hooks::{CloseHook, Phase, CLOSE_HOOKS};
use crate::port::{AffiRequest, Port};
use crate::runtime::Runtime;

/// A task's future, as its `Tracked` wrapper (which never panics out of `poll`).
pub(crate) type LocalFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Queues a `Poll` request for its task on its port, once per poll.
struct PollRequest {
    port: Arc<Port>,
    task: u64,
    queued: AtomicBool,
}

impl Wake for PollRequest {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            // A closed port drops the request; closing it also drops this task.
            self.port
                .push_request(AffiRequest::Poll, self.task, 0, None);
        }
    }
}

struct Entry {
    /// None while it is being polled.
    future: Option<LocalFuture>,
    waker: Arc<PollRequest>,
}

static LOCAL: Mutex<BTreeMap<u64, Entry>> = Mutex::new(BTreeMap::new());

fn local() -> MutexGuard<'static, BTreeMap<u64, Entry>> {
    // No user code runs under this lock, so a poisoned lock still guards valid state.
    LOCAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Step 1: files task `task` (bound to `port`) and queues its first poll.
pub(crate) fn start(task: u64, port: Arc<Port>, future: LocalFuture) {
    let closed = port.clone();
    let waker = Arc::new(PollRequest {
        port,
        task,
        queued: AtomicBool::new(false),
    });
    local().insert(
        task,
        Entry {
            future: Some(future),
            waker: waker.clone(),
        },
    );
    if closed.is_closed() {
        // The port closed before the insert, so its `drop_port` sweep missed this task (a
        // sweep after the insert finds it): drop it here, as nothing would ever poll it.
        let entry = local().remove(&task);
        let context = Runtime::Tokio.enter();
        let _ = catching(move || drop(entry));
        drop(context);
        return;
    }
    waker.wake_by_ref();
}

/// Step 3: polls local task `task` on this thread, which must be its port's event-loop
/// thread. Returns false for a task that is not filed here (it ended, or is being polled).
pub fn poll(task: u64) -> bool {
    let (mut future, waker) = {
        let mut table = local();
        let Some(entry) = table.get_mut(&task) else {
            return false;
        };
        let Some(future) = entry.future.take() else {
            return false;
        };
        (future, entry.waker.clone())
    };
    // Wakes from here on queue a new poll.
    waker.queued.store(false, Ordering::Release);
    let context = Runtime::Tokio.enter();
    let waker = Waker::from(waker);
    let mut cx = Context::from_waker(&waker);
    // `Tracked` catches the task's panics; this only guards the wrapper itself.
    let ready = catching(|| future.as_mut().poll(&mut cx).is_ready()).unwrap_or(true);
    let finished = {
        let mut table = local();
        match table.get_mut(&task) {
            Some(entry) if !ready => {
                entry.future = Some(future);
                return true;
            }
            Some(_) => {
                table.remove(&task);
                future
            }
            None => future, // its port closed while it was being polled
        }
    };
    // Dropped in the context it ran in, outside the lock.
    let _ = catching(move || drop(finished));
    drop(context);
    true
}

#[linkme::distributed_slice(CLOSE_HOOKS)]
static CLOSE_HOOK: CloseHook = CloseHook {
    phase: Phase::Drop,
    run: drop_port,
};

/// Step 4: drops every local task of port `port`.
pub(crate) fn drop_port(port: u64) {
    let doomed: Vec<Entry> = {
        let mut table = local();
        let ids: Vec<u64> = table
            .iter()
            .filter(|(_, entry)| entry.waker.port.id() == port)
            .map(|(id, _)| *id)
            .collect();
        ids.iter().filter_map(|id| table.remove(id)).collect()
    };
    let context = Runtime::Tokio.enter();
    for entry in doomed {
        let _ = catching(move || drop(entry));
    }
    drop(context);
}
