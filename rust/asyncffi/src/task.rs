//! The task table and the wrapper every Rust future runs in when Python awaits it.
//!
//! Each call from Python becomes one `Tracked` future on a runtime and one entry in `TASKS`,
//! named by a generational id that Python keeps for cancellation. Ownership:
//! - `TASKS` entry: `Arc<TaskShared>` (the cancel flag and the waker) and the port id. Removed by
//!   the task's `TaskGuard` when the future is dropped, whatever the reason.
//! - `Tracked`: the future itself, the port it reports to and the guard.
//!
//! Life of a task, each step happening exactly once (after `spawn`'s eager first poll, which
//! delivers a future that is ready at once without any of this):
//! 1. `spawn` inserts the entry (`live_tasks` +1, `spawned` +1) and hands `Tracked` to the
//!    runtime.
//! 2. Either the future finishes: its outcome (value, error or caught panic) is pushed to the
//!    port (`completed` +1);
//! 3. or cancellation is requested (`affi_task_cancel`, port closed): `cancelled` is set and the
//!    task is woken; its next poll drops the inner future on its runtime thread without pushing
//!    anything (Python already knows);
//! 4. or the runtime drops the task unfinished (shutdown): the guard pushes `Cancelled` so the
//!    Python awaitable does not wait forever.
//! 5. The guard's drop removes the entry (`live_tasks` -1; `cancelled` +1 unless step 2 ran).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::boundary::{catching, panic_message, AffiStatus, Failure};
use crate::close_hooks::{CloseHook, Phase, CLOSE_HOOKS};
use crate::handle_table::{self, HandleTable};
use crate::port::{Outcome, Port};
use crate::runtime::Runtime;
use crate::stats::{CANCELLED, COMPLETED, LIVE_TASKS, PANICKED, SPAWNED};
use crate::stream::Credit;
use crate::value::Value;

/// State shared between a running task and whoever may cancel it.
#[derive(Default)]
struct TaskShared {
    /// Set once when cancellation is requested; never unset.
    cancelled: AtomicBool,
    /// The waker of the task's latest poll, used to make cancellation prompt.
    waker: Mutex<Option<Waker>>,
}

impl TaskShared {
    fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        let waker = self.waker.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    fn register(&self, waker: &Waker) {
        let mut slot = self.waker.lock().unwrap_or_else(|e| e.into_inner());
        match &*slot {
            Some(current) if current.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }
}

struct TaskEntry {
    shared: Arc<TaskShared>,
    port: u64,
    /// The item credit of a stream task (see `stream`).
    credit: Option<Arc<Credit>>,
}

static TASKS: Mutex<HandleTable<TaskEntry>> = Mutex::new(HandleTable::new());

fn tasks() -> MutexGuard<'static, HandleTable<TaskEntry>> {
    // No user code runs under this lock, so a poisoned lock still guards valid state.
    TASKS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Requests cancellation of task `id`. Stale ids (the task already finished) are an error the
/// caller may ignore: the outcome is on its way or already delivered.
pub fn cancel(id: u64) -> Result<(), Failure> {
    let shared = tasks()
        .get(id)
        .map(|entry| entry.shared.clone())
        .ok_or_else(|| {
            handle_table::miss(id, "task", || {
                Failure::new(AffiStatus::ErrClosed, "the task has already finished")
            })
        })?;
    shared.cancel();
    Ok(())
}

/// Lets stream task `id` send `n` more items (Python consumed them).
pub fn grant(id: u64, n: u64) -> Result<(), Failure> {
    let entry = tasks().get(id).map(|entry| entry.credit.clone());
    match entry {
        Some(Some(credit)) => {
            credit.grant(n);
            Ok(())
        }
        Some(None) => Err(Failure::new(
            AffiStatus::ErrValue,
            "the task is not a stream",
        )),
        None => Err(handle_table::miss(id, "task", || {
            Failure::new(AffiStatus::ErrClosed, "the stream has already ended")
        })),
    }
}

#[linkme::distributed_slice(CLOSE_HOOKS)]
static CLOSE_HOOK: CloseHook = CloseHook {
    phase: Phase::Drop,
    run: cancel_port,
};

/// Requests cancellation of every task bound to `port` (its close hook).
pub fn cancel_port(port: u64) {
    let doomed: Vec<Arc<TaskShared>> = tasks()
        .iter()
        .filter(|(_, entry)| entry.port == port)
        .map(|(_, entry)| entry.shared.clone())
        .collect();
    for shared in doomed {
        shared.cancel();
    }
}

/// Ends the task's bookkeeping when the future is dropped, whichever way it ends.
struct TaskGuard {
    id: u64,
    port: Arc<Port>,
    token: u64,
    shared: Arc<TaskShared>,
    completed: bool,
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        tasks().remove(self.id);
        LIVE_TASKS.dec();
        if !self.completed {
            CANCELLED.inc();
            if !self.shared.is_cancelled() {
                self.port.push(self.token, Outcome::Cancelled);
            }
        }
    }
}

/// The wrapper a Python-awaited future runs in: cancellation, panic capture, completion.
struct Tracked<F> {
    inner: Option<Pin<Box<F>>>,
    guard: TaskGuard,
}

impl<F> Tracked<F> {
    /// Drops the inner future, catching a panic from its destructor.
    fn drop_inner(&mut self) {
        if let Some(inner) = self.inner.take() {
            let _ = catching(move || drop(inner));
        }
    }
}

impl<F: Future<Output = crate::value::Result<Value>>> Future for Tracked<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // `Tracked` is Unpin: the inner future is pinned in its own box.
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(());
        };
        // Register first, then check: a cancel landing in between finds the waker and wakes
        // us again, so it is never lost.
        this.guard.shared.register(cx.waker());
        if this.guard.shared.is_cancelled() {
            this.drop_inner();
            return Poll::Ready(());
        }
        let outcome = match catching(|| inner.as_mut().poll(cx)) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(result)) => Outcome::Done(result),
            Err(payload) => {
                PANICKED.inc();
                Outcome::Panic(panic_message(payload.as_ref()))
            }
        };
        this.drop_inner();
        this.guard.completed = true;
        COMPLETED.inc();
        this.guard.port.push(this.guard.token, outcome);
        Poll::Ready(())
    }
}

impl<F> Drop for Tracked<F> {
    fn drop(&mut self) {
        self.drop_inner();
    }
}

thread_local! {
    /// The outcome of this thread's last call whose future was ready on its first poll, until
    /// Python takes it (`take_inline`).
    static INLINE: RefCell<Option<(u64, u64, Outcome)>> = const { RefCell::new(None) };
}

/// Takes the outcome left by the last `spawn` on this thread that returned 0, if it was for
/// call `token` on port `port` (anything else left there is dropped: freed).
pub fn take_inline(port: u64, token: u64) -> Option<Outcome> {
    let (p, t, outcome) = INLINE.with(|slot| slot.borrow_mut().take())?;
    (p == port && t == token).then_some(outcome)
}

/// Spawns `future` on `runtime` for the Python call `token` on port `port`, and returns the
/// task id Python uses to cancel it, or 0 when the future finished on its first poll.
///
/// This is what an exported C function calls after decoding its arguments: once per call, on
/// the thread Python called it on.
///
/// **Eager path.** The future is polled once right here, on the calling (event-loop) thread,
/// inside the runtime's context. If it is ready, its outcome is left for Python to take at
/// once (no task, no thread hop, no wake) and 0 is returned. Otherwise it is spawned on the
/// runtime, which polls it again at once with its own waker (so a wake-up meant for the first
/// poll cannot be lost), and its outcome reaches Python through the port exactly once, unless
/// Python cancels the task first. A first poll must therefore be cheap: do blocking or
/// CPU-heavy work in `spawn_blocking`, as for any async code.
pub fn spawn<F>(runtime: Runtime, port: u64, token: u64, future: F) -> Result<u64, Failure>
where
    F: Future<Output = crate::value::Result<Value>> + Send + 'static,
{
    spawn_task(runtime, port, token, Box::pin(future), true, None)
}

/// `spawn`, with the eager first poll optional, and an item credit for stream tasks (whose
/// items must reach the port before their end, so they never finish inline).
pub(crate) fn spawn_task<F>(
    runtime: Runtime,
    port: u64,
    token: u64,
    future: Pin<Box<F>>,
    eager: bool,
    credit: Option<Arc<Credit>>,
) -> Result<u64, Failure>
where
    F: Future<Output = crate::value::Result<Value>> + Send + 'static,
{
    let port = Port::get(port)?;
    runtime.check_available()?;
    let future = if eager {
        match first_poll(runtime, future) {
            Ok(outcome) => {
                SPAWNED.inc();
                COMPLETED.inc();
                let port_id = port.id();
                INLINE.with(|slot| *slot.borrow_mut() = Some((port_id, token, outcome)));
                return Ok(0);
            }
            Err(future) => future,
        }
    } else {
        future
    };
    let shared = Arc::new(TaskShared::default());
    let port_id = port.id();
    let id = tasks().insert(TaskEntry {
        shared: shared.clone(),
        port: port_id,
        credit,
    });
    LIVE_TASKS.inc();
    SPAWNED.inc();
    if port.is_closed() {
        // The port closed between `Port::get` and the insert, so its `cancel_port` sweep
        // missed this task: cancel it here (it is dropped at its next poll).
        shared.cancel();
    }
    let tracked = Tracked {
        inner: Some(future),
        guard: TaskGuard {
            id,
            port,
            token,
            shared,
            completed: false,
        },
    };
    if runtime == Runtime::Loop {
        crate::local::start(id, tracked.guard.port.clone(), Box::pin(tracked));
    } else {
        runtime.spawn(tracked);
    }
    Ok(id)
}

/// The eager path's first poll, on the calling thread inside the runtime's context: the
/// outcome if the future is ready (the future is then dropped, in that same context), else the
/// future back.
fn first_poll<F>(runtime: Runtime, mut future: Pin<Box<F>>) -> Result<Outcome, Pin<Box<F>>>
where
    F: Future<Output = crate::value::Result<Value>>,
{
    let context = runtime.enter();
    let mut cx = Context::from_waker(Waker::noop());
    let outcome = match catching(|| future.as_mut().poll(&mut cx)) {
        Ok(Poll::Pending) => return Err(future),
        Ok(Poll::Ready(result)) => Outcome::Done(result),
        Err(payload) => {
            PANICKED.inc();
            Outcome::Panic(panic_message(payload.as_ref()))
        }
    };
    // Dropped in the same context it was polled in.
    let _ = catching(move || drop(future));
    drop(context);
    Ok(outcome)
}
