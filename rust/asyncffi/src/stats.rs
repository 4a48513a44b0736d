//! Process-wide counters, exposed to Python through `affi_stats` so tests can assert that every
//! spawn is matched by one completion or cancellation and every value and object is freed.
//!
//! `live_*` counters go up on creation and down on destruction; the others only grow.
//! All updates are `Relaxed`: the counters order nothing, they only count.

use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

/// One counter.
pub struct Counter(AtomicI64);

impl Counter {
    const fn new() -> Self {
        Counter(AtomicI64::new(0))
    }
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Relaxed);
    }
    /// Subtracts one.
    pub fn dec(&self) {
        self.0.fetch_sub(1, Relaxed);
    }
    /// Adds `n`.
    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Relaxed);
    }
    /// The current value.
    pub fn get(&self) -> i64 {
        self.0.load(Relaxed)
    }
}

/// Rust tasks spawned for Python and not yet dropped.
pub static LIVE_TASKS: Counter = Counter::new();
/// Heap payloads (bytes, str, encoded containers, error texts) not yet freed.
pub static LIVE_VALUES: Counter = Counter::new();
/// Completion ports open or still referenced by a task.
pub static LIVE_PORTS: Counter = Counter::new();
/// Opaque Rust objects held by Python.
pub static LIVE_OBJECTS: Counter = Counter::new();
/// Python callables held by Rust.
pub static LIVE_CALLABLES: Counter = Counter::new();
/// Python exception objects held by Rust (to raise the original again).
pub static LIVE_PY_ERRORS: Counter = Counter::new();
/// Python iterators held by Rust (`PyStream`).
pub static LIVE_PY_STREAMS: Counter = Counter::new();
/// Calls from Rust to Python waiting for their answer.
pub static LIVE_CALLS: Counter = Counter::new();
/// Tasks ever spawned.
pub static SPAWNED: Counter = Counter::new();
/// Tasks that ran to an outcome (value, error or panic).
pub static COMPLETED: Counter = Counter::new();
/// Tasks dropped before their outcome (cancelled, port closed, runtime shut down).
pub static CANCELLED: Counter = Counter::new();
/// Tasks whose future panicked.
pub static PANICKED: Counter = Counter::new();
/// Wake-ups sent to Python (one per empty -> non-empty transition of a port's queue).
pub static WAKES: Counter = Counter::new();
