//! An async Redis client for Python's asyncio, built on the Rust `redis` crate and exported
//! with asyncffi's macros alone: no hand-written C, no PyO3.
//!
//! - [`client`]: the `Client` object (`#[asyncffi::object]`): one connection manager per
//!   client, multiplexing every command sent on it over one TCP connection.
//! - [`pubsub`]: `subscribe` and `scan_iter`, Rust streams Python reads with `async for`.
//! - [`arg`]: what Python may pass as a key, a value or a command argument.
//! - [`reply`]: Redis replies as asyncffi values (bytes by default).
//! - [`error`]: Redis errors as `RustError`s with a meaningful `kind`.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod arg;
pub mod client;
pub mod error;
pub mod pubsub;
pub mod reply;

// Keep the core ABI in this library: referencing one item of `asyncffi::ffi` makes the linker
// keep its object file, whose `#[no_mangle]` functions are then exported.
pub use asyncffi::ffi::affi_abi_version;
