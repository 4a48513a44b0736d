//! The benchmark of a Rust program that runs Python (`benchmarks/rust_awaits_python.py`): the
//! Rust main awaits a trivial Python coroutine one call after another and 1,000 at a time; its
//! peer is `benchmarks/peers/pyo3_app` (pyo3-async-runtimes).
//!
//! `rust-app-bench RUNTIME start`: start and exit. `rust-app-bench RUNTIME seq N ROUNDS` /
//! `... conc N ROUNDS`: each round awaits N calls (sequentially, or in batches of 1,000
//! joined) and prints the nanoseconds per await. RUNTIME runs the Rust main: `default` (no
//! runtime chosen, as most programs), `loop` or `tokio`.

use std::time::Instant;

use asyncffi::{python, Runtime, Value};
use futures_util::future::join_all;

const BATCH: usize = 1000;

async fn bench(mode: &str, n: usize, rounds: usize) -> asyncffi::Result<()> {
    let module = python::module_from_code("bench", "async def noop(i):\n    return i\n").await?;
    let noop = module.attr("noop")?;
    let int = |v: Value| match v {
        Value::Int(i) => Ok(i),
        other => Err(asyncffi::Error::new("TypeError", format!("{other:?}"))),
    };
    for _ in 0..rounds {
        let started = Instant::now();
        let mut sum: i64 = 0;
        match mode {
            "seq" => {
                for i in 0..n {
                    sum += int(noop.call((i as i64,)).await?)?;
                }
            }
            "conc" => {
                for _ in 0..n / BATCH {
                    let calls = (0..BATCH).map(|i| noop.call((i as i64,)));
                    for value in join_all(calls).await {
                        sum += int(value?)?;
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

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // No runtime chosen: the default, as a program that says nothing gets.
    let runtime = match args.get(1).map(String::as_str) {
        Some("loop") => Some(Runtime::Loop),
        Some("tokio") => Some(Runtime::Tokio),
        Some("default") => None,
        other => panic!("unknown runtime {other:?}: expected default, loop or tokio"),
    };
    let mode = args.get(2).cloned().unwrap_or_else(|| "start".into());
    let n = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let rounds = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(5);
    let config = match runtime {
        Some(runtime) => python::Config::new().runtime(runtime),
        None => python::Config::new(),
    };
    std::process::exit(python::run(config, async move {
        if mode == "start" {
            return Ok(());
        }
        bench(&mode, n, rounds).await
    }));
}
