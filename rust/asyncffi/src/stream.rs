//! Rust streams read by Python: an exported function returns a `Stream` of values, and Python
//! iterates it with `async for`.
//!
//! The protocol, step by step:
//! 1. **Spawn.** The exported function calls [`spawn_stream`]: the stream runs as one task (the
//!    same task table, cancellation and panic capture as any call), and its id goes back to
//!    Python. It is never polled on the calling thread: its items must reach the port before
//!    its end does.
//! 2. **Items.** Each item is pushed onto the port's queue as an `AFFI_OUTCOME_ITEM` completion
//!    for the call's token. Items share the queue's coalesced wake and batched drain, so a
//!    producer that is ahead delivers many items per wake-up and per drain.
//! 3. **Credit.** The task starts with `buffer` credits and spends one before pulling each item
//!    from the stream; with none left it sleeps. Python grants credits back as its consumer
//!    takes items (`affi_stream_grant`), so the producer runs at most `buffer` items ahead of
//!    the consumer.
//! 4. **End.** The stream's end is the task's outcome, queued after its last item: `None` when
//!    the stream is exhausted, the error of an `Err` item (which ends the stream), a panic.
//! 5. **Drop.** Python cancels the task (`affi_task_cancel`) when its iterator is closed,
//!    cancelled or collected: the stream is dropped on its runtime at once, even while it waits
//!    for credit.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

pub use futures_core::Stream;

use crate::boundary::Failure;
use crate::port::Port;
use crate::runtime::Runtime;
use crate::task;
use crate::value::{Result, Value};

/// Items a stream may run ahead of its consumer when the exported function passes 0.
pub const DEFAULT_BUFFER: u64 = 1024;

#[derive(Default)]
struct CreditState {
    available: u64,
    waker: Option<Waker>,
}

/// How many more items a stream task may send; granted by Python, spent by the task.
#[derive(Default)]
pub(crate) struct Credit {
    state: Mutex<CreditState>,
}

impl Credit {
    fn new(available: u64) -> Self {
        Credit {
            state: Mutex::new(CreditState {
                available,
                waker: None,
            }),
        }
    }

    /// Adds `n` credits and wakes the task if it waits for them.
    pub(crate) fn grant(&self, n: u64) {
        let waker = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.available = state.available.saturating_add(n);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Spends one credit, or waits for one.
    fn poll_spend(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.available > 0 {
            state.available -= 1;
            return Poll::Ready(());
        }
        match &state.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// Runs `stream` on `runtime` for the Python call `token` on port `port`, which Python reads as
/// an async iterator; returns the task id (for `affi_stream_grant` and `affi_task_cancel`).
///
/// `buffer` bounds how far the stream runs ahead of its Python consumer (0: `DEFAULT_BUFFER`).
/// An `Err` item ends the stream and raises in the consumer; so does a panic.
///
/// ```
/// use asyncffi::{guard, spawn_stream, stream, Runtime, Value};
///
/// /// A stream Python reads with `async for`: the squares of 0..n.
/// #[no_mangle]
/// pub extern "C" fn mylib_squares(port: u64, token: u64, n: i64, buffer: u64) -> i64 {
///     guard(|| {
///         let items = stream::unfold(0, move |i| async move {
///             // any async work here; None ends the stream, an Err item ends it with an error
///             (i < n).then(|| (Ok(Value::Int(i * i)), i + 1))
///         });
///         Ok(spawn_stream(Runtime::Tokio, port, token, items, buffer)? as i64)
///     })
/// }
/// ```
pub fn spawn_stream<S>(
    runtime: Runtime,
    port: u64,
    token: u64,
    stream: S,
    buffer: u64,
) -> std::result::Result<u64, Failure>
where
    S: Stream<Item = Result<Value>> + Send + 'static,
{
    let target = Port::get(port)?;
    let buffer = if buffer == 0 { DEFAULT_BUFFER } else { buffer };
    let credit = Arc::new(Credit::new(buffer));
    let spend = credit.clone();
    let future = async move {
        let mut stream = pin!(stream);
        let mut since_yield = 0u32;
        loop {
            poll_fn(|cx| spend.poll_spend(cx)).await;
            match poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
                None => return Ok(Value::None),
                Some(Err(e)) => return Err(e),
                Some(Ok(item)) => target.push_item(token, item)?,
            }
            // A stream whose items are always ready, with credit to spare, would otherwise
            // never return to its runtime: the task would not see a cancel (or its port's
            // close) and would hold a worker thread.
            since_yield += 1;
            if since_yield == YIELD_EVERY {
                since_yield = 0;
                yield_now().await;
            }
        }
    };
    task::spawn_task(runtime, port, token, Box::pin(future), false, Some(credit))
}

/// Items a stream task sends between two returns to its runtime, at most.
const YIELD_EVERY: u32 = 256;

/// Gives the runtime a turn: returns `Pending` once (waking itself at once), then is ready. For
/// loops in a task that might otherwise never return to their runtime.
pub async fn yield_now() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}

/// A stream of the items of `iter`, each ready at once.
pub fn iter<I: IntoIterator>(iter: I) -> Iter<I::IntoIter> {
    Iter(iter.into_iter())
}

/// The stream [`iter`] returns.
pub struct Iter<I>(I);

impl<I: Iterator + Unpin> Stream for Iter<I> {
    type Item = I::Item;

    fn poll_next(self: std::pin::Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<I::Item>> {
        Poll::Ready(self.get_mut().0.next())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

/// A stream built from a state and an async step, like `futures::stream::unfold` (without
/// depending on `futures-util`): `f(state)` resolves to `Some((item, next_state))` or `None` to
/// end the stream.
pub fn unfold<St, F, Fut, T>(init: St, f: F) -> Unfold<St, F, Fut>
where
    F: FnMut(St) -> Fut,
    Fut: Future<Output = Option<(T, St)>>,
{
    Unfold {
        state: Some(init),
        f,
        step: None,
    }
}

/// The stream [`unfold`] returns.
pub struct Unfold<St, F, Fut> {
    /// The state between steps; `None` while a step runs or after the end.
    state: Option<St>,
    f: F,
    step: Option<std::pin::Pin<Box<Fut>>>,
}

impl<St: Unpin, F: Unpin, Fut, T> Stream for Unfold<St, F, Fut>
where
    F: FnMut(St) -> Fut,
    Fut: Future<Output = Option<(T, St)>>,
{
    type Item = T;

    fn poll_next(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        if this.step.is_none() {
            let Some(state) = this.state.take() else {
                return Poll::Ready(None);
            };
            this.step = Some(Box::pin((this.f)(state)));
        }
        let step = this.step.as_mut().expect("set above");
        let next = std::task::ready!(step.as_mut().poll(cx));
        this.step = None;
        Poll::Ready(next.map(|(item, state)| {
            this.state = Some(state);
            item
        }))
    }
}

/// The next item of `stream` (a future), like `StreamExt::next` without `futures-util`.
pub fn next<S: Stream + Unpin>(stream: &mut S) -> impl Future<Output = Option<S::Item>> + '_ {
    poll_fn(move |cx| std::pin::Pin::new(&mut *stream).poll_next(cx))
}
