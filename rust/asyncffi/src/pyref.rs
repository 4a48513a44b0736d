//! References to Python objects held by Rust: callables and iterators passed as arguments, and
//! exceptions a Python call raised (kept so that Python can raise the very same object again).
//!
//! Rust never touches the object itself: it holds an id that the Python side of one port
//! resolves. A `PyRef` is cheap to clone (an `Arc`); when the last clone is dropped, on any
//! thread, a `Release` request is queued on the port, and Python forgets the object on its loop
//! thread. If the port is closed by then, Python has already forgotten everything it held.

use std::fmt;
use std::sync::Arc;

use crate::boundary::Failure;
use crate::port::{AffiRequest, Port};
use crate::stats::{Counter, LIVE_CALLABLES, LIVE_PY_ERRORS, LIVE_PY_STREAMS};

/// What a Python object reference points to (for the live counters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PyKind {
    /// A callable passed to Rust as an argument.
    Callable,
    /// An exception raised by a Python call, kept to be raised again.
    Exception,
    /// An iterator passed to Rust as an argument (read as a `PyStream`).
    Stream,
}

impl PyKind {
    fn counter(self) -> &'static Counter {
        match self {
            PyKind::Callable => &LIVE_CALLABLES,
            PyKind::Exception => &LIVE_PY_ERRORS,
            PyKind::Stream => &LIVE_PY_STREAMS,
        }
    }
}

struct Inner {
    port: Arc<Port>,
    id: u64,
    kind: PyKind,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.kind.counter().dec();
        self.port
            .push_request(AffiRequest::Release, 0, self.id as i64, None);
    }
}

/// A reference to a Python object registered with a port. `Send + Sync + Clone`.
#[derive(Clone)]
pub struct PyRef(Arc<Inner>);

impl PyRef {
    /// Takes over Python object `id`, registered by Python with port `port`. From here on
    /// Rust releases it exactly once, when the last clone is dropped.
    pub fn adopt(port: u64, id: u64, kind: PyKind) -> Result<PyRef, Failure> {
        let port = Port::get(port)?;
        Ok(PyRef::adopt_on(port, id, kind))
    }

    pub(crate) fn adopt_on(port: Arc<Port>, id: u64, kind: PyKind) -> PyRef {
        kind.counter().inc();
        PyRef(Arc::new(Inner { port, id, kind }))
    }

    /// The object's id on its port.
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// The id of the port (event loop) the object belongs to.
    pub fn port_id(&self) -> u64 {
        self.0.port.id()
    }

    pub(crate) fn port(&self) -> &Arc<Port> {
        &self.0.port
    }
}

impl fmt::Debug for PyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PyRef({:?} {} on port {:#x})",
            self.0.kind,
            self.0.id,
            self.port_id()
        )
    }
}

impl PartialEq for PyRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for PyRef {}
