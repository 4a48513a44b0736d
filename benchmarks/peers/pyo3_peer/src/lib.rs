//! The benchmark peer: the scenarios of `benchmarks/run.py`, written the way
//! pyo3-async-runtimes' README shows (tokio runtime, `future_into_py`, `into_future`).
//! Built only for benchmarks; never part of the shipped package.

use pyo3::prelude::*;
use std::time::Duration;

/// A trivial Rust future: `a + b`.
#[pyfunction]
fn add(py: Python<'_>, a: i64, b: i64) -> PyResult<Bound<'_, PyAny>> {
    pyo3_async_runtimes::tokio::future_into_py(py, async move { Ok(a + b) })
}

/// `tokio::time::sleep(seconds)`.
#[pyfunction]
fn sleep(py: Python<'_>, seconds: f64) -> PyResult<Bound<'_, PyAny>> {
    pyo3_async_runtimes::tokio::future_into_py(py, async move {
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        Ok(())
    })
}

/// Rust awaits `f(i)` for `i` in `range(n)`, one after another; returns the sum.
#[pyfunction]
fn call_python_n(py: Python<'_>, f: Py<PyAny>, n: i64) -> PyResult<Bound<'_, PyAny>> {
    pyo3_async_runtimes::tokio::future_into_py(py, async move {
        let mut sum: i64 = 0;
        for i in 0..n {
            let fut = Python::attach(|py| {
                pyo3_async_runtimes::tokio::into_future(f.bind(py).call1((i,))?)
            })?;
            let value = fut.await?;
            sum += Python::attach(|py| value.extract::<i64>(py))?;
        }
        Ok(sum)
    })
}

/// Rust awaits `f(i)` for every `i` in `range(n)` concurrently; returns the results in order.
#[pyfunction]
fn gather_python(py: Python<'_>, f: Py<PyAny>, n: i64) -> PyResult<Bound<'_, PyAny>> {
    pyo3_async_runtimes::tokio::future_into_py(py, async move {
        let mut handles = Vec::with_capacity(n as usize);
        for i in 0..n {
            let fut = Python::attach(|py| {
                pyo3_async_runtimes::tokio::into_future(f.bind(py).call1((i,))?)
            })?;
            handles.push(tokio::spawn(fut));
        }
        let mut out = Vec::with_capacity(handles.len());
        for h in handles {
            let v = h.await.map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))??;
            out.push(v);
        }
        Ok(out)
    })
}

/// A blocking native call for the naive `run_in_executor` approach.
#[pyfunction]
fn add_blocking(a: i64, b: i64) -> i64 {
    a + b
}

#[pymodule]
fn pyo3_peer(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(add, m)?)?;
    m.add_function(wrap_pyfunction!(sleep, m)?)?;
    m.add_function(wrap_pyfunction!(call_python_n, m)?)?;
    m.add_function(wrap_pyfunction!(gather_python, m)?)?;
    m.add_function(wrap_pyfunction!(add_blocking, m)?)?;
    Ok(())
}
