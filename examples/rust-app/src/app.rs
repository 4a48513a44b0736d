//! The example program's work, shared by `rust-app` (the default runtime) and `rust-app-tokio`
//! (`runtime = "tokio"`): it awaits `asyncio.sleep` and a Python module shipped beside it
//! (`python/rust_app_jobs.py`), which calls back into `progress`, exported below.
//!
//! The mode (the program's first argument) chooses how the main ends: `ok` (or none), `err`,
//! `pyerr` (a Python function raises), `pyasyncerr` (a Python coroutine raises), `panic`, `sleep` (in flight until SIGINT), `start` (start-up and exit only).

use asyncffi::python;

/// Called by the Python module while it works.
#[asyncffi::export]
pub async fn progress(done: u32, total: u32) -> u32 {
    println!("progress {done}/{total}");
    total - done
}

pub async fn app(mode: String) -> asyncffi::Result<()> {
    if mode == "start" {
        return Ok(()); // start-up and exit only, to measure them
    }
    let sleep = python::import("asyncio")?.attr("sleep")?;
    sleep.call((0.05,)).await?;
    println!("slept");
    // Where the main resumed: the default runtime polls it on the event loop's thread (the
    // program's main thread), tokio on one of its workers.
    let thread = std::thread::current();
    println!("main on {}", thread.name().unwrap_or("an unnamed thread"));
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
        "pyasyncerr" => {
            let source = "async def fail():\n    raise ValueError('raised by a coroutine')\n";
            let failing = python::module_from_code("failing", source).await?;
            failing.attr("fail")?.call(()).await?;
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
