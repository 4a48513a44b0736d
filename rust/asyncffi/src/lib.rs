//! asyncffi: async Rust and Python's event loops awaiting each other over a plain C ABI.
//!
//! This crate is the Rust core. It knows nothing about CPython: it speaks a small C protocol
//! (completion ports, generational task and object ids, a value encoding) that the `asyncffi`
//! Python package drives through CFFI.
//!
//! - [`abi`]: the C ABI's types and constants (what the C header declares).
//! - [`port`]: completion ports, the queue and wake path back to an event loop;
//!   [`close_hooks`]: what each feature does when a port closes (registered by the feature).
//! - [`task`]: the task table and the wrapper that runs each Python-awaited future.
//! - [`runtime`]: tokio and async-std, started lazily, the library's own tokio runtime
//!   ([`tokio_runtime!`]) and any executor it registers ([`Executor`], [`register_runtime!`]);
//!   [`local`]: the `loop` runtime, futures polled on the event loop's thread.
//! - [`value`] and [`codec`]: what crosses the boundary and how containers are encoded.
//! - [`args`]: reading C arguments into values.
//! - [`object`](mod@object): opaque Rust objects held by Python.
//! - [`callable`] and [`pyref`]: Rust awaiting Python callables, and the Python objects Rust holds.
//! - [`stream`] and [`pystream`]: Rust streams read by Python, Python iterators read by Rust.
//! - [`ffi`]: the exported C functions every asyncffi cdylib carries.
//! - `watchdog`: wakes a port again when Python missed a wake-up (an interrupted drain).
//! - [`convert`]: [`FromPython`] and [`IntoPython`], how Rust types cross (and
//!   [`serde_value`]: any serde type, feature `serde`).
//! - `python` (feature `python`): Rust programs that run Python, their async main and the
//!   Python objects they reach by import path.
//! - `testing` (feature `testing`): a `harness = false` test harness running async tests
//!   with Python.
//! - [`logging`]: `log` (and `tracing`, feature `tracing`) records in Python's `logging`.
//! - [`manifest`]: what a library exports, as JSON (`affi_manifest`); `sync_result`: the
//!   outcome of a sync export, handed back through an out-parameter.
//!
//! A library exports plain Rust with the attribute macros; they generate the C shims and the
//! manifest entries, and Python needs no glue:
//!
//! ```
//! /// Adds two ints (awaited from Python).
//! #[asyncffi::export]
//! async fn add(a: i64, b: i64) -> Result<i64, std::io::Error> {
//!     Ok(a + b)
//! }
//!
//! /// A plain Python function.
//! #[asyncffi::export]
//! fn version() -> &'static str {
//!     "1.0"
//! }
//!
//! struct Store(std::sync::Mutex<Vec<String>>);
//!
//! /// A Python class.
//! #[asyncffi::object]
//! impl Store {
//!     #[asyncffi::constructor]
//!     fn new() -> Self {
//!         Store(Default::default())
//!     }
//!
//!     async fn push(&self, item: String) -> u64 {
//!         let mut items = self.0.lock().unwrap();
//!         items.push(item);
//!         items.len() as u64
//!     }
//! }
//! ```
//!
//! By hand, an exported async function is a `#[no_mangle] extern "C"` function taking the port
//! id, the Python token and its arguments, which calls [`spawn`] inside [`guard`]:
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
#![deny(missing_docs)]

pub mod abi;
pub mod args;
pub mod boundary;
pub mod callable;
pub mod close_hooks;
pub mod codec;
pub mod convert;
pub mod ffi;
pub mod handle_table;
pub mod local;
pub mod logging;
#[doc(hidden)]
pub mod macro_support;
pub mod manifest;
mod notifier;
pub mod object;
pub mod port;
pub mod pyref;
pub mod pystream;
#[cfg(feature = "python")]
pub mod python;
pub mod runtime;
#[cfg(feature = "serde")]
pub mod serde_value;
pub mod stats;
pub mod stream;
mod sync_result;
pub mod task;
#[cfg(feature = "testing")]
pub mod testing;
pub mod value;
mod watchdog;

#[doc(hidden)]
pub use macro_support as __private;

#[cfg(feature = "python")]
pub use asyncffi_macros::main;
pub use asyncffi_macros::{constructor, export, object, skip, Record};
pub use boundary::{guard, guard_status, AffiStatus, Failure};
pub use callable::{PyCall, PyCallable, PythonError};
pub use convert::{Args, BuiltinError, FromPython, IntoError, IntoPython};
pub use notifier::AffiWakeFn;
pub use pystream::PyStream;
pub use runtime::own::Executor;
pub use runtime::Runtime;
pub use stream::{spawn_stream, Stream};
pub use task::spawn;
pub use value::{Error, Object, Result, Value};
