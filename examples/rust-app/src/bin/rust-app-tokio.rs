//! The example program (`app.rs`) with its main on tokio (`runtime = "tokio"`): a worker
//! thread of tokio's polls it, so Rust code between its awaits never blocks the event loop.

#[path = "../app.rs"]
mod app;

#[asyncffi::main(
    runtime = "tokio",
    loop_factory = "uvloop",
    path = concat!(env!("CARGO_MANIFEST_DIR"), "/python")
)]
async fn main() -> asyncffi::Result<()> {
    let mode = std::env::args().nth(1).unwrap_or_default();
    app::app(mode).await
}
