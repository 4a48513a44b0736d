//! asyncffi: async Rust and Python's asyncio awaiting each other over a plain C ABI.
//!
//! This crate is the Rust core. It knows nothing about CPython: it speaks a small C protocol
//! (completion ports, generational task and object ids, a value encoding) that the `asyncffi`
//! Python package drives through CFFI.
//!
//! - [`port`]: completion ports, the queue and wake path back to an event loop.
//! - [`task`]: the task table and the wrapper that runs each Python-awaited future.
//! - [`runtime`]: tokio and async-std, started lazily; [`local`]: the `loop` runtime, futures
//!   polled on the event loop's thread.
//! - [`value`] and [`codec`]: what crosses the boundary and how containers are encoded.
//! - [`args`]: reading C arguments into values.
//! - [`object`]: opaque Rust objects held by Python.
//! - [`callable`] and [`pyref`]: Rust awaiting Python callables, and the Python objects Rust holds.
//! - [`stream`] and [`pystream`]: Rust streams read by Python, Python iterators read by Rust.
//! - [`ffi`]: the exported C functions every asyncffi cdylib carries.
//!
//! An exported async function is a `#[no_mangle] extern "C"` function taking the port id, the
//! Python token and its arguments, which calls [`spawn`] inside [`guard`]:
//!
//! ```
//! use asyncffi::{guard, spawn, Runtime, Value};
//!
//! #[no_mangle]
//! pub extern "C" fn mylib_double(port: u64, token: u64, x: i64) -> i64 {
//!     guard(|| {
//!         let task = spawn(Runtime::Tokio, port, token, async move {
//!             x.checked_mul(2)
//!                 .map(Value::Int)
//!                 .ok_or_else(|| asyncffi::Error::new("overflow", "x * 2 overflows"))
//!         })?;
//!         Ok(task as i64)
//!     })
//! }
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod args;
pub mod boundary;
pub mod callable;
pub mod codec;
pub mod ffi;
pub mod handle_table;
pub mod local;
mod notifier;
pub mod object;
pub mod port;
pub mod pyref;
pub mod pystream;
pub mod runtime;
pub mod stats;
pub mod stream;
pub mod task;
pub mod value;

pub use boundary::{guard, guard_status, AffiStatus, Failure};
pub use callable::{PyCall, PyCallable, PythonError};
pub use notifier::AffiWakeFn;
pub use pystream::PyStream;
pub use runtime::Runtime;
pub use stream::{spawn_stream, Stream};
pub use task::spawn;
pub use value::{Error, Object, Result, Value};
