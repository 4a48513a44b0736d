//! The peer of `examples/rust-app`'s `rust-app-bench`: a Rust program that runs Python with
//! pyo3-async-runtimes (`#[pyo3_async_runtimes::tokio::main]`, `into_future`), awaiting a
//! trivial Python coroutine one call after another and 1,000 at a time.
//!
//! `pyo3-app start`: start and exit. `pyo3-app seq N ROUNDS` / `pyo3-app conc N ROUNDS`: each
//! round awaits N calls (sequentially, or in batches of 1,000 joined) and prints the
//! nanoseconds per await.

use std::time::Instant;

use futures_util::future::join_all;
use pyo3::prelude::*;

const BATCH: usize = 1000;

#[pyo3_async_runtimes::tokio::main]
async fn main() -> PyResult<()> {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("start");
    if mode == "start" {
        return Ok(());
    }
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let rounds: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5);
    let noop: Py<PyAny> = Python::attach(|py| {
        let module = PyModule::from_code(
            py,
            c"async def noop(i):\n    return i\n",
            c"bench.py",
            c"bench",
        )?;
        Ok::<_, PyErr>(module.getattr("noop")?.unbind())
    })?;
    for _ in 0..rounds {
        let started = Instant::now();
        let mut sum: i64 = 0;
        match mode {
            "seq" => {
                for i in 0..n {
                    let fut = Python::attach(|py| {
                        pyo3_async_runtimes::tokio::into_future(noop.bind(py).call1((i,))?)
                    })?;
                    let value = fut.await?;
                    sum += Python::attach(|py| value.extract::<i64>(py))?;
                }
            }
            "conc" => {
                for _ in 0..n / BATCH {
                    let futs = Python::attach(|py| {
                        (0..BATCH)
                            .map(|i| {
                                pyo3_async_runtimes::tokio::into_future(noop.bind(py).call1((i,))?)
                            })
                            .collect::<PyResult<Vec<_>>>()
                    })?;
                    for value in join_all(futs).await {
                        let value = value?;
                        sum += Python::attach(|py| value.extract::<i64>(py))?;
                    }
                }
            }
            other => panic!("unknown mode {other:?}"),
        }
        let awaits = if mode == "seq" { n } else { n / BATCH * BATCH };
        let ns = started.elapsed().as_nanos() as f64 / awaits as f64;
        println!("{ns:.0} ns/await (sum {sum})");
    }
    Ok(())
}
