//! The benchmark peer: the scenarios of `benchmarks/run.py`, written the way
//! pyo3-async-runtimes' README shows (tokio runtime, `future_into_py`, `into_future`; streams
//! with `into_stream_v2`).
//! Built only for benchmarks; never part of the shipped package.

use futures_util::StreamExt;
use pyo3::exceptions::PyStopAsyncIteration;
use pyo3::prelude::*;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Mutex};

/// How far a Rust producer may run ahead of its Python consumer (asyncffi's default buffer).
const STREAM_BUFFER: usize = 1024;

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
            let v = h
                .await
                .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))??;
            out.push(v);
        }
        Ok(out)
    })
}

/// The Python side of [`count`]: an async iterator whose `__anext__` is one
/// `future_into_py` per item, each receiving one item from the channel.
#[pyclass]
struct Count {
    rx: Arc<Mutex<mpsc::Receiver<i64>>>,
}

#[pymethods]
impl Count {
    fn __aiter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let rx = Arc::clone(&self.rx);
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            match rx.lock().await.recv().await {
                Some(i) => Ok(i),
                None => Err(PyStopAsyncIteration::new_err(())),
            }
        })
    }
}

/// A Rust stream of `0..n`, read from Python with `async for`. pyo3-async-runtimes has no
/// Rust Stream -> Python async iterator bridge; this is its nearest equivalent: a tokio task
/// feeds a bounded channel, and [`Count`] awaits one item per Python future.
#[pyfunction]
fn count(n: i64) -> Count {
    let (tx, rx) = mpsc::channel(STREAM_BUFFER);
    pyo3_async_runtimes::tokio::get_runtime().spawn(async move {
        for i in 0..n {
            if tx.send(i).await.is_err() {
                break; // the consumer dropped the iterator
            }
        }
    });
    Count {
        rx: Arc::new(Mutex::new(rx)),
    }
}

/// Rust sums the ints a Python async generator yields, read as a Rust Stream with
/// `into_stream_v2` (the `unstable-streams` feature).
#[pyfunction]
fn sum_stream<'py>(py: Python<'py>, agen: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let mut items = pyo3_async_runtimes::tokio::into_stream_v2(agen)?;
    pyo3_async_runtimes::tokio::future_into_py(py, async move {
        let mut sum: i64 = 0;
        while let Some(item) = items.next().await {
            sum += Python::attach(|py| item.extract::<i64>(py))?;
        }
        Ok(sum)
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
    m.add_function(wrap_pyfunction!(count, m)?)?;
    m.add_function(wrap_pyfunction!(sum_stream, m)?)?;
    m.add_function(wrap_pyfunction!(add_blocking, m)?)?;
    m.add_class::<Count>()?;
    Ok(())
}
