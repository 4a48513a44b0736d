//! Integration tests that need Python, run by `asyncffi::testing` (`harness = false`): each
//! test awaits Python on the event loop of the main thread. Some fail on purpose (an error, a
//! panic, a timeout): `tests/test_rust_app.py` runs this binary and checks what it reports.

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
        Test::new("failing::fails", || Box::pin(fails())),
        Test::new("failing::panics", || Box::pin(panics())),
        Test::new("failing::times_out", || Box::pin(times_out())).ignored(),
    ]);
}
