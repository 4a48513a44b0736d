//! A Rust program that runs Python: its async main runs on tokio, Python's event loop on the
//! main thread (uvloop's); it awaits `asyncio.sleep` and a Python module shipped beside it
//! (`python/rust_app_jobs.py`), which calls back into `progress`, exported below.
//!
//! `rust-app [ok|err|pyerr|panic|sleep|start]` chooses how the main ends (the tests use each).
//! The plain-function form of `#[asyncffi::main]` is `asyncffi::python::run(config, future)`.

use asyncffi::python;

/// Called by the Python module while it works.
#[asyncffi::export]
async fn progress(done: u32, total: u32) -> u32 {
    println!("progress {done}/{total}");
    total - done
}

async fn app(mode: String) -> asyncffi::Result<()> {
    if mode == "start" {
        return Ok(()); // start-up and exit only, to measure them
    }
    let sleep = python::import("asyncio")?.attr("sleep")?;
    sleep.call((0.05,)).await?;
    println!("slept");
    let fetch = python::import("rust_app_jobs")?.attr("fetch")?;
    let body = fetch.call(("https://example.invalid", 3)).await?;
    println!("fetched {body:?}");
    let jobs = python::import("rust_app_jobs")?;
    let name = jobs.attr("loop_name")?.call(()).await?;
    println!("on {name:?}");
    match mode.as_str() {
        "err" => Err(asyncffi::Error::new("app", "the work failed")),
        "pyerr" => {
            python::import("json")?
                .attr("loads")?
                .call(("{not json",))
                .await?;
            Ok(())
        }
        "panic" => panic!("the app panicked"),
        "sleep" => {
            // Work in flight in Python when SIGINT arrives: the Rust main is dropped, and
            // dropping this call cancels the Python task.
            println!("sleeping");
            sleep.call((60.0,)).await?;
            Ok(())
        }
        _ => Ok(()),
    }
}

#[asyncffi::main(
    loop_factory = "uvloop",
    path = concat!(env!("CARGO_MANIFEST_DIR"), "/python")
)]
async fn main() -> asyncffi::Result<()> {
    let mode = std::env::args().nth(1).unwrap_or_default();
    app(mode).await
}
