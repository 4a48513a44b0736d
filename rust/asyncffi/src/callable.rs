//! Rust awaiting Python: `PyCallable`, a Python callable received as an argument, and
//! `PyCall`, the future of one call to it.
//!
//! The protocol, step by step:
//! 1. **Pass.** Python registers the callable (with a copy of the caller's contextvars context)
//!    on the port of the loop making the call and passes its id; the exported function adopts
//!    it with [`PyCallable::adopt`]. Rust now owns one reference.
//! 2. **Call.** [`PyCallable::call`] registers a call slot in `CALLS` and queues a `Call`
//!    request (call id, callable id, packed arguments) on that port: the same queue and the same
//!    coalesced wake as completions, so no runtime thread ever touches Python.
//! 3. **Run.** On its loop thread Python calls the callable inside a copy of the captured
//!    context; an awaitable result runs as a task of that loop.
//! 4. **Answer.** When it finishes, Python answers with one C call (`affi_call_complete`): the
//!    value, or the exception's type name and message plus the id of the exception object,
//!    which Rust keeps (`PyRef`) so that returning the error to Python raises the original.
//! 5. **Cancel.** Dropping an unanswered `PyCall` removes its slot and queues a `Cancel`
//!    request: Python cancels the task (its cancellation handlers and `finally` blocks run).
//!    A late answer finds no slot and is refused, so Python releases what it sent.
//! 6. **Close.** Closing the port fails every call still waiting on it, at once.
//!
//! Each call slot is completed or removed exactly once, under the `CALLS` lock.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::boundary::{AffiStatus, Failure};
use crate::close_hooks::{CloseHook, Phase, CLOSE_HOOKS};
use crate::codec;
use crate::handle_table::{self, HandleTable};
use crate::port::{AffiRequest, Buffer, Port};
use crate::pyref::{PyKind, PyRef};
use crate::stats::LIVE_CALLS;
use crate::value::{Error, Origin, Value};

/// A Python exception, as Rust sees it: its type name and message, and (when it came from a
/// call) the exception object itself, held on the Python side.
///
/// Converting it into [`Error`] (for instance with `?` in an exported function) keeps the
/// object: if that error reaches Python on the same event loop, Python raises the original
/// exception (same type, same traceback), not a copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PythonError {
    /// The name of the exception's class, or [`PythonError::CLOSED`] / [`PythonError::TYPE`]
    /// for the errors Rust makes itself.
    pub type_name: String,
    /// `str(exception)`.
    pub message: String,
    pub(crate) origin: Option<PyRef>,
}

impl PythonError {
    /// The `type_name` of the error of a call or iterator whose event loop closed: it never
    /// answered, and never will.
    pub const CLOSED: &'static str = "closed";
    /// The `type_name` of the error of a call whose arguments or answer could not cross (a
    /// value the other side cannot represent).
    pub const TYPE: &'static str = "type";

    /// An error with no Python exception object behind it.
    pub fn new(type_name: impl Into<String>, message: impl Into<String>) -> Self {
        PythonError {
            type_name: type_name.into(),
            message: message.into(),
            origin: None,
        }
    }
}

impl fmt::Display for PythonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.type_name, self.message)
    }
}

impl std::error::Error for PythonError {}

impl From<PythonError> for Error {
    fn from(e: PythonError) -> Error {
        let mut error = Error::new(e.type_name.clone(), e.message.clone());
        error.origin = e.origin.map(|object| Origin {
            object,
            kind: e.type_name,
            message: e.message,
        });
        error
    }
}

/// A Python callable (an `async def` function, any callable returning an awaitable, or a plain
/// function) that Rust can call as often as it likes, from any thread and any runtime.
///
/// Cloning is cheap; the Python object is released on its loop thread when the last clone is
/// dropped. Calls run on the event loop the callable was passed from.
#[derive(Clone, Debug)]
pub struct PyCallable {
    object: PyRef,
}

impl PyCallable {
    /// Takes over callable `id`, which Python registered on port `port` and passed as an
    /// argument. Call it once per id, in the exported function that received it.
    pub fn adopt(port: u64, id: u64) -> Result<PyCallable, Failure> {
        Ok(PyCallable {
            object: PyRef::adopt(port, id, PyKind::Callable)?,
        })
    }

    /// The id of the port (event loop) the callable belongs to.
    #[cfg(feature = "python")]
    pub(crate) fn port_id(&self) -> u64 {
        self.object.port_id()
    }

    /// Calls the Python callable with `args` and returns the future of its result. The call
    /// starts now (so several calls made before awaiting any run concurrently); dropping the
    /// future before it resolves cancels the Python task.
    pub fn call(&self, args: Vec<Value>) -> PyCall {
        let port = self.object.port().clone();
        let shared = Arc::new(CallShared::default());
        let encoded = match codec::encode_items(&args) {
            Ok(bytes) => bytes,
            Err(e) => return PyCall::failed(PythonError::new(PythonError::TYPE, e.to_string())),
        };
        let id = calls().insert(CallEntry {
            shared: shared.clone(),
            port: port.clone(),
        });
        LIVE_CALLS.inc();
        let sent = port.push_request(
            AffiRequest::Call,
            id,
            self.object.id() as i64,
            Some(Buffer::new(encoded)),
        );
        if !sent {
            finish(id, |_| Err(closed()));
        }
        PyCall {
            id,
            shared,
            port: Some(port),
            done: false,
        }
    }
}

pub(crate) fn closed() -> PythonError {
    PythonError::new(
        PythonError::CLOSED,
        "the event loop of this Python object is closed",
    )
}

#[derive(Default)]
struct CallState {
    result: Option<Result<Value, PythonError>>,
    waker: Option<Waker>,
}

#[derive(Default)]
struct CallShared {
    state: Mutex<CallState>,
}

struct CallEntry {
    shared: Arc<CallShared>,
    port: Arc<Port>,
}

static CALLS: Mutex<HandleTable<CallEntry>> = Mutex::new(HandleTable::new());

fn calls() -> MutexGuard<'static, HandleTable<CallEntry>> {
    // No user code runs under this lock, so a poisoned lock still guards valid state.
    CALLS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Completes call `id` with the result `make` builds (given the call's port), if the call is
/// still waiting. Returns false if it is not (answered, cancelled or failed already).
fn finish(id: u64, make: impl FnOnce(&Arc<Port>) -> Result<Value, PythonError>) -> bool {
    let Some(entry) = calls().remove(id) else {
        return false;
    };
    LIVE_CALLS.dec();
    let result = make(&entry.port);
    let waker = {
        let mut state = entry.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        state.result = Some(result);
        state.waker.take()
    };
    if let Some(waker) = waker {
        waker.wake();
    }
    true
}

/// Step 4: Python's answer to call `id`. `exception` is the id of the exception object when
/// `result` is an error from Python (0 if none); Rust adopts it only if the call was waiting.
pub fn complete(
    id: u64,
    result: Result<Value, PythonError>,
    exception: u64,
) -> Result<(), Failure> {
    let answered = finish(id, move |port| match result {
        Err(mut e) if exception != 0 => {
            e.origin = Some(PyRef::adopt_on(port.clone(), exception, PyKind::Exception));
            Err(e)
        }
        other => other,
    });
    if answered {
        Ok(())
    } else {
        Err(handle_table::miss(id, "call", || {
            Failure::new(
                AffiStatus::ErrClosed,
                "the Rust side no longer waits for this call (cancelled or answered)",
            )
        }))
    }
}

#[linkme::distributed_slice(CLOSE_HOOKS)]
static CLOSE_HOOK: CloseHook = CloseHook {
    phase: Phase::Fail,
    run: fail_port,
};

/// Step 6: fails every call waiting on port `port`.
pub fn fail_port(port: u64) {
    let ids: Vec<u64> = calls()
        .iter()
        .filter(|(_, entry)| entry.port.id() == port)
        .map(|(id, _)| id)
        .collect();
    for id in ids {
        finish(id, |_| Err(closed()));
    }
}

/// The future of one call to a Python callable. Resolves to the call's result, or to a
/// `PythonError` (the exception it raised, the cancellation if its task was cancelled from
/// Python, [`PythonError::CLOSED`] if its event loop closed).
#[must_use = "dropping a PyCall cancels the Python call"]
pub struct PyCall {
    id: u64,
    shared: Arc<CallShared>,
    /// None for a call that failed before it was sent.
    port: Option<Arc<Port>>,
    done: bool,
}

impl PyCall {
    fn failed(error: PythonError) -> PyCall {
        let shared = Arc::new(CallShared::default());
        shared
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .result = Some(Err(error));
        PyCall {
            id: 0,
            shared,
            port: None,
            done: false,
        }
    }
}

impl Future for PyCall {
    type Output = Result<Value, PythonError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut state = this.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(result) = state.result.take() {
            this.done = true;
            return Poll::Ready(result);
        }
        if this.done {
            drop(state);
            panic!("PyCall polled after it resolved");
        }
        match &state.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl Drop for PyCall {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let Some(port) = &self.port else { return };
        if calls().remove(self.id).is_some() {
            LIVE_CALLS.dec();
            port.push_request(AffiRequest::Cancel, self.id, 0, None);
        }
    }
}
