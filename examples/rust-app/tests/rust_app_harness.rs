//! Integration tests that need Python, run by `asyncffi::testing` (`harness = false`): each
//! test awaits Python on the event loop of the main thread. Some fail on purpose (an error, a
//! panic, a timeout): `tests/test_rust_app.py` runs this binary and checks what it reports.

use std::sync::OnceLock;

use asyncffi::python::{self, PyObject};
use asyncffi::testing::{self, Test};
use asyncffi::Value;

/// Exported by the test binary, for the Python it runs.
#[asyncffi::export]
fn double(x: i64) -> i64 {
    x * 2
}

async fn sleeps() -> asyncffi::Result<()> {
    let sleep = asyncffi::python::import("asyncio")?.attr("sleep")?;
    sleep.call((0.01,)).await?;
    Ok(())
}

async fn calls_back_into_the_binary() -> asyncffi::Result<()> {
    let module = asyncffi::python::module_from_code(
        "harness_helpers",
        "import asyncffi\ndef twice(x):\n    return asyncffi.program().double(x)\n",
    )
    .await?;
    let got = module.attr("twice")?.call((21,)).await?;
    assert_eq!(got, Value::Int(42));
    Ok(())
}

/// A module made again from source text: calls through an object looked up before reach the
/// new module's function.
async fn a_module_made_again_is_looked_up_again() -> asyncffi::Result<()> {
    let source = |n: i64| format!("def f():\n    return {n}\n");
    let f = python::module_from_code("harness_remade", &source(1))
        .await?
        .attr("f")?;
    assert_eq!(f.call(()).await?, Value::Int(1));
    python::module_from_code("harness_remade", &source(2)).await?;
    assert_eq!(f.call(()).await?, Value::Int(2));
    Ok(())
}

/// Kept across tests, each of which runs Python anew: looked up again in each.
static HYPOT: OnceLock<PyObject> = OnceLock::new();

async fn an_object_kept_across_runs_is_looked_up_again() -> asyncffi::Result<()> {
    let hypot = HYPOT.get_or_init(|| {
        python::import("math")
            .and_then(|m| m.attr("hypot"))
            .expect("valid names")
    });
    assert_eq!(hypot.call((3.0, 4.0)).await?, Value::Float(5.0));
    assert_eq!(hypot.call((5.0, 12.0)).await?, Value::Float(13.0));
    Ok(())
}

async fn fails() -> asyncffi::Result<()> {
    Err(asyncffi::Error::new("check", "expected 1, got 2"))
}

async fn panics() -> asyncffi::Result<()> {
    sleeps().await?;
    panic!("a test panicked");
}

async fn times_out() -> asyncffi::Result<()> {
    let sleep = asyncffi::python::import("asyncio")?.attr("sleep")?;
    sleep.call((60.0,)).await?;
    Ok(())
}

fn main() {
    testing::main(vec![
        Test::new("sleeps", || Box::pin(sleeps())),
        Test::new("calls_back_into_the_binary", || {
            Box::pin(calls_back_into_the_binary())
        }),
        Test::new("lookups::a_module_made_again", || {
            Box::pin(a_module_made_again_is_looked_up_again())
        }),
        Test::new("lookups::kept_across_runs_1", || {
            Box::pin(an_object_kept_across_runs_is_looked_up_again())
        }),
        Test::new("lookups::kept_across_runs_2", || {
            Box::pin(an_object_kept_across_runs_is_looked_up_again())
        }),
        Test::new("failing::fails", || Box::pin(fails())),
        Test::new("failing::panics", || Box::pin(panics())),
        Test::new("failing::times_out", || Box::pin(times_out())).ignored(),
    ]);
}
