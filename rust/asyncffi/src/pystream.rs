//! Python iterators read by Rust: an async iterator (or async generator, or iterable) passed to
//! an exported function arrives as a [`PyStream`], a `Stream` of `Result<Value, PythonError>`.
//!
//! The protocol, step by step:
//! 1. **Pass.** Python registers the iterator on the port of the loop making the call and
//!    passes its id; the exported function adopts it with [`PyStream::adopt`].
//! 2. **Pull.** When Rust first polls the stream, and again whenever what it holds plus what
//!    is on its way falls to half its prefetch, it queues a `Pull` request for the missing
//!    items. Nothing is pulled before Rust asks, and Python never sends more than was asked,
//!    so Rust holds at most `prefetch` items.
//! 3. **Feed.** On its loop thread Python iterates the iterator in a task and sends what it
//!    has in batches, one C call per batch (`affi_pystream_items`): when the batch is as
//!    large as what was asked, or when the iterator has to wait (so a slow iterator's items
//!    are not held back).
//! 4. **End.** Exhaustion, or the exception the iterator raised, is sent once
//!    (`affi_pystream_end`); an exception arrives as an `Err` item, after which the stream
//!    ends.
//! 5. **Drop.** Dropping the `PyStream` releases the iterator: Python cancels its task and
//!    closes the iterator (`aclose()`, so an async generator's `finally` blocks run).
//! 6. **Close.** Closing the port ends every stream reading from it with a
//!    [`PythonError::CLOSED`] error.

use std::collections::{BTreeMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::boundary::{AffiStatus, Failure};
use crate::callable::{closed, PythonError};
use crate::close_hooks::{CloseHook, Phase, CLOSE_HOOKS};
use crate::port::{AffiRequest, Port};
use crate::pyref::{PyKind, PyRef};
use crate::stream::Stream;
use crate::value::Value;

/// Items a `PyStream` asks for ahead of its reader, unless set with `with_prefetch`.
pub const DEFAULT_PREFETCH: u64 = 1024;

#[derive(Default)]
struct State {
    items: VecDeque<Value>,
    /// How the iterator ended, once Python said so: taken by the reader after the last item.
    end: Option<Result<(), PythonError>>,
    /// Set with `end`, never unset (the reader takes `end` itself).
    ended: bool,
    /// Items asked for and received so far.
    asked: u64,
    received: u64,
    waker: Option<Waker>,
}

struct Shared {
    port: Arc<Port>,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No user code runs under this lock, so a poisoned lock still guards valid state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the end (unless set already) and wakes the reader.
    fn end(&self, result: Result<(), PythonError>) -> bool {
        let waker = {
            let mut state = self.lock();
            if state.ended {
                return false;
            }
            state.ended = true;
            state.end = Some(result);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }
}

/// The streams Rust reads, by the id of their Python iterator (unique in the process).
static STREAMS: Mutex<BTreeMap<u64, Arc<Shared>>> = Mutex::new(BTreeMap::new());

fn streams() -> MutexGuard<'static, BTreeMap<u64, Arc<Shared>>> {
    STREAMS.lock().unwrap_or_else(|e| e.into_inner())
}

fn find(object: u64) -> Result<Arc<Shared>, Failure> {
    streams().get(&object).cloned().ok_or_else(|| {
        Failure::new(
            AffiStatus::ErrClosed,
            "the Rust side no longer reads this iterator (dropped or never adopted)",
        )
    })
}

/// A Python async iterator, read from Rust: a `Stream` of the values it yields. An exception
/// it raises arrives as an `Err` item and ends the stream; a closed event loop ends it with a
/// [`PythonError::CLOSED`] error. Dropping it closes the Python iterator.
///
/// ```
/// use asyncffi::{guard, spawn, stream, Error, PyStream, Runtime, Value};
///
/// /// Reads a Python async iterator: how many items it yields.
/// #[no_mangle]
/// pub extern "C" fn mylib_length(port: u64, token: u64, iterator: u64) -> i64 {
///     guard(|| {
///         let mut items = PyStream::adopt(port, iterator)?.with_prefetch(64);
///         let task = spawn(Runtime::Tokio, port, token, async move {
///             let mut n = 0;
///             while let Some(item) = stream::next(&mut items).await {
///                 item?; // a Python exception: passed back to Python as itself
///                 n += 1;
///             }
///             Ok::<_, Error>(Value::Int(n))
///         })?;
///         Ok(task as i64)
///     })
/// }
/// ```
pub struct PyStream {
    object: PyRef,
    shared: Arc<Shared>,
    prefetch: u64,
    finished: bool,
}

impl PyStream {
    /// Takes over Python iterator `id`, which Python registered on port `port` and passed as an
    /// argument. Call it once per id, in the exported function that received it.
    pub fn adopt(port: u64, id: u64) -> Result<PyStream, Failure> {
        let port = Port::get(port)?;
        let shared = Arc::new(Shared {
            port: port.clone(),
            state: Mutex::new(State::default()),
        });
        {
            let mut table = streams();
            if table.contains_key(&id) {
                return Err(Failure::new(
                    AffiStatus::ErrValue,
                    format!("Python iterator {id} is already adopted"),
                ));
            }
            table.insert(id, shared.clone());
        }
        Ok(PyStream {
            object: PyRef::adopt_on(port, id, PyKind::Stream),
            shared,
            prefetch: DEFAULT_PREFETCH,
            finished: false,
        })
    }

    /// Sets how many items Rust asks for ahead of its reading (at least 1). Takes effect at
    /// the next request.
    pub fn with_prefetch(mut self, prefetch: u64) -> Self {
        self.prefetch = prefetch.max(1);
        self
    }

    /// How many more items to ask for: enough to hold `prefetch`, once what is held and on its
    /// way has fallen to half of it.
    fn to_ask(&self, state: &mut State) -> u64 {
        if state.ended {
            return 0;
        }
        let have = state.items.len() as u64 + (state.asked - state.received);
        if have > self.prefetch / 2 {
            return 0;
        }
        let more = self.prefetch - have.min(self.prefetch);
        state.asked += more;
        more
    }
}

impl Stream for PyStream {
    type Item = Result<Value, PythonError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.finished {
            return Poll::Ready(None);
        }
        let (ready, ask) = {
            let mut state = this.shared.lock();
            if let Some(item) = state.items.pop_front() {
                let ask = this.to_ask(&mut state);
                (Some(Some(Ok(item))), ask)
            } else if let Some(end) = state.end.take() {
                this.finished = true;
                (Some(end.err().map(Err)), 0)
            } else {
                let ask = this.to_ask(&mut state);
                match &state.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => state.waker = Some(cx.waker().clone()),
                }
                (None, ask)
            }
        };
        if ask > 0 {
            let sent = this.shared.port.push_request(
                AffiRequest::Pull,
                ask,
                this.object.id() as i64,
                None,
            );
            if !sent {
                // The port closed: this stream ends with a closed error after what it holds.
                this.shared.end(Err(closed()));
            }
        }
        match ready {
            Some(item) => Poll::Ready(item),
            None => {
                if this.shared.lock().ended {
                    cx.waker().wake_by_ref();
                }
                Poll::Pending
            }
        }
    }
}

impl Drop for PyStream {
    fn drop(&mut self) {
        streams().remove(&self.object.id());
        // Dropping `object` queues its release: Python closes the iterator.
    }
}

impl std::fmt::Debug for PyStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PyStream({:?})", self.object)
    }
}

/// Step 3: items Python sends for iterator `object`.
pub fn feed(object: u64, items: Vec<Value>) -> Result<(), Failure> {
    let shared = find(object)?;
    let waker = {
        let mut state = shared.lock();
        if state.ended {
            return Err(Failure::new(
                AffiStatus::ErrValue,
                "items sent after the end of the iterator",
            ));
        }
        let n = items.len() as u64;
        if n > state.asked - state.received {
            return Err(Failure::new(
                AffiStatus::ErrValue,
                format!("{n} items sent, {} asked for", state.asked - state.received),
            ));
        }
        state.received += n;
        state.items.extend(items);
        state.waker.take()
    };
    if let Some(waker) = waker {
        waker.wake();
    }
    Ok(())
}

/// Step 4: iterator `object` ended. `exception` is the id of the exception object for an
/// error from Python (0 if none); Rust adopts it only if the stream took the end.
pub fn end(object: u64, result: Result<(), PythonError>, exception: u64) -> Result<(), Failure> {
    let shared = find(object)?;
    let result = match result {
        Err(mut e) if exception != 0 => {
            e.origin = Some(PyRef::adopt_on(
                shared.port.clone(),
                exception,
                PyKind::Exception,
            ));
            Err(e)
        }
        other => other,
    };
    if shared.end(result) {
        Ok(())
    } else {
        // `result` (and the adopted exception with it) is dropped: its release is queued.
        Err(Failure::new(
            AffiStatus::ErrValue,
            "the iterator has already ended",
        ))
    }
}

#[linkme::distributed_slice(CLOSE_HOOKS)]
static CLOSE_HOOK: CloseHook = CloseHook {
    phase: Phase::Fail,
    run: fail_port,
};

/// Step 6: ends every stream reading from port `port`.
pub fn fail_port(port: u64) {
    let doomed: Vec<Arc<Shared>> = streams()
        .values()
        .filter(|shared| shared.port.id() == port)
        .cloned()
        .collect();
    for shared in doomed {
        shared.end(Err(closed()));
    }
}
