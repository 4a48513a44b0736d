//! A Rust program that runs Python: its async main is polled on the event loop's thread (the
//! default runtime), Python's event loop (uvloop's) runs on the main thread; the main awaits
//! `asyncio.sleep` and a Python module shipped beside it (see `app.rs`).
//!
//! `rust-app [ok|err|pyerr|pyasyncerr|panic|sleep|start]` chooses how the main ends (the tests
//! use each); `rust-app-tokio` is the same program with `runtime = "tokio"`. The plain-function
//! form of `#[asyncffi::main]` is `asyncffi::python::run(config, future)` (`rust-app-plain`).

mod app;

#[asyncffi::main(
    loop_factory = "uvloop",
    path = concat!(env!("CARGO_MANIFEST_DIR"), "/python")
)]
async fn main() -> asyncffi::Result<()> {
    let mode = std::env::args().nth(1).unwrap_or_default();
    app::app(mode).await
}
