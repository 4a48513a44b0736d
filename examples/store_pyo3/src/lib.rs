//! `examples/store` written with PyO3 + pyo3-async-runtimes, for comparison: the same four
//! functions and the same `Store`, behaving the same from Python (`tests/test_example_store.py`
//! runs the same checks against both). What asyncffi's macros generate is written here by
//! hand: a `future_into_py` per async function, a pyclass for the stream, the awaiting of a
//! callback's result, the `with` / `async with` / `close()` protocol and the module registration.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::exceptions::{PyException, PyStopAsyncIteration, PyTypeError};
use pyo3::prelude::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;

pyo3::create_exception!(
    store_pyo3,
    MyError,
    PyException,
    "This library's own error."
);
pyo3::create_exception!(
    store_pyo3,
    ClosedError,
    PyException,
    "A closed Store was used."
);

/// An event: crosses to Python as a dict (`{"id": ..., "name": ..., "tags": [...]}`).
#[derive(IntoPyObject)]
struct Event {
    id: u64,
    name: String,
    tags: Vec<String>,
}

/// Connects to `host:port` and reads `n` lines (fewer if the server closes first), without
/// their line endings.
///
/// An I/O error is raised as its OSError subclass, such as ConnectionRefusedError.
#[pyfunction]
fn fetch_lines(py: Python<'_>, host: String, port: u16, n: u32) -> PyResult<Bound<'_, PyAny>> {
    pyo3_async_runtimes::tokio::future_into_py(py, async move {
        let stream = TcpStream::connect((host.as_str(), port)).await?;
        let mut lines = BufReader::new(stream).lines();
        let mut out = Vec::new();
        while out.len() < n as usize {
            match lines.next_line().await? {
                Some(line) => out.push(line),
                None => break,
            }
        }
        Ok(out)
    })
}

/// The async iterator `events` returns: one `future_into_py` per item.
#[pyclass]
struct Events {
    next: Arc<Mutex<u32>>,
    n: u32,
    every_ms: u64,
}

#[pymethods]
impl Events {
    fn __aiter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (next, n, every_ms) = (Arc::clone(&self.next), self.n, self.every_ms);
        pyo3_async_runtimes::async_std::future_into_py(py, async move {
            let i = {
                let mut next = next.lock().unwrap();
                let i = *next;
                if i >= n {
                    return Err(PyStopAsyncIteration::new_err(()));
                }
                *next = if every_ms > 60_000 { n } else { i + 1 };
                i
            };
            if every_ms > 60_000 {
                let message = format!("every_ms must be at most 60000, not {every_ms}");
                return Err(MyError::new_err(message));
            }
            async_std::task::sleep(Duration::from_millis(every_ms)).await;
            let tags = if i % 2 == 0 { "even" } else { "odd" };
            Ok(Event {
                id: i.into(),
                name: format!("event-{i}"),
                tags: vec![tags.into()],
            })
        })
    }
}

/// `n` events, one every `every_ms` milliseconds (on async-std's timer).
///
/// `every_ms` above 60000 is refused (a MyError, raised by the first item).
#[pyfunction]
fn events(n: u32, every_ms: u64) -> Events {
    Events {
        next: Arc::new(Mutex::new(0)),
        n,
        every_ms,
    }
}

/// Awaits `handler(i)` for each `i` in `0..n` (a plain or an async Python function) and
/// returns the sum of its int results.
///
/// An exception raised by `handler` is raised again, as itself.
#[pyfunction]
fn for_each(py: Python<'_>, handler: Py<PyAny>, n: u32) -> PyResult<Bound<'_, PyAny>> {
    pyo3_async_runtimes::tokio::future_into_py(py, async move {
        let mut total = 0u64;
        for i in 0..n {
            // A plain function's result is used as it is; an awaitable is awaited.
            let (result, awaiting) = Python::attach(|py| {
                let result = handler.bind(py).call1((i,))?;
                if result.hasattr("__await__")? {
                    let future = pyo3_async_runtimes::tokio::into_future(result)?;
                    Ok::<_, PyErr>((None, Some(future)))
                } else {
                    Ok((Some(result.unbind()), None))
                }
            })?;
            let result = match (result, awaiting) {
                (Some(result), _) => result,
                (None, Some(future)) => future.await?,
                (None, None) => unreachable!("one of them is set"),
            };
            total = total.wrapping_add(Python::attach(|py| {
                result.extract::<i64>(py).map_err(|_| {
                    let shown = result.bind(py).repr().map(|r| r.to_string());
                    PyTypeError::new_err(format!(
                        "handler({i}) returned {}, not an int",
                        shown.unwrap_or_default()
                    ))
                })
            })? as u64);
        }
        Ok(total)
    })
}

/// The library's version.
#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[derive(Default)]
struct Entries {
    values: HashMap<String, Vec<u8>>,
    /// Keys, oldest first.
    order: VecDeque<String>,
}

struct Inner {
    capacity: usize,
    entries: Mutex<Entries>,
}

/// A key-value store in memory holding at most `capacity` keys (the oldest goes first).
#[pyclass(weakref)]
struct Store {
    inner: Mutex<Option<Arc<Inner>>>,
}

impl Store {
    fn inner(&self) -> PyResult<Arc<Inner>> {
        let inner = self.inner.lock().unwrap();
        inner
            .clone()
            .ok_or_else(|| ClosedError::new_err("Store is closed"))
    }
}

#[pymethods]
impl Store {
    /// A store of at most `capacity` keys (1024 by default); 0 is refused.
    #[new]
    #[pyo3(signature = (capacity=None))]
    fn new(capacity: Option<u32>) -> PyResult<Self> {
        let capacity = capacity.unwrap_or(1024);
        if capacity == 0 {
            return Err(MyError::new_err("capacity must be at least 1"));
        }
        let inner = Inner {
            capacity: capacity as usize,
            entries: Mutex::new(Entries::default()),
        };
        Ok(Store {
            inner: Mutex::new(Some(Arc::new(inner))),
        })
    }

    /// The value of `key`, or None.
    fn get<'py>(&self, py: Python<'py>, key: String) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner()?;
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let entries = inner.entries.lock().unwrap();
            let value = entries.values.get(&key).cloned();
            Ok(value.map(Cow::<[u8]>::Owned))
        })
    }

    /// Sets `key` to `value`; a new key beyond the capacity drops the oldest one.
    fn set<'py>(
        &self,
        py: Python<'py>,
        key: String,
        value: Vec<u8>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner()?;
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let mut entries = inner.entries.lock().unwrap();
            if entries.values.insert(key.clone(), value).is_none() {
                entries.order.push_back(key);
                if entries.order.len() > inner.capacity {
                    let oldest = entries.order.pop_front().expect("not empty");
                    entries.values.remove(&oldest);
                }
            }
            Ok(())
        })
    }

    /// How many keys the store holds.
    fn len(&self) -> PyResult<u64> {
        Ok(self.inner()?.entries.lock().unwrap().values.len() as u64)
    }

    /// Releases the store (once operations in flight finish). Idempotent.
    fn close(&self) {
        self.inner.lock().unwrap().take();
    }

    /// Whether `close()` has run.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.lock().unwrap().is_none()
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyResult<PyRef<'_, Self>> {
        slf.inner()?;
        Ok(slf)
    }

    fn __exit__(&self, _exc_type: Py<PyAny>, _exc: Py<PyAny>, _tb: Py<PyAny>) {
        self.close();
    }

    fn __aenter__<'py>(slf: Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.borrow().inner()?;
        let this = slf.clone().unbind();
        pyo3_async_runtimes::tokio::future_into_py(slf.py(), async move { Ok(this) })
    }

    fn __aexit__<'py>(
        &self,
        py: Python<'py>,
        _exc_type: Py<PyAny>,
        _exc: Py<PyAny>,
        _tb: Py<PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.close();
        pyo3_async_runtimes::tokio::future_into_py(py, async move { Ok(()) })
    }
}

#[pymodule]
fn store_pyo3(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(fetch_lines, m)?)?;
    m.add_function(wrap_pyfunction!(events, m)?)?;
    m.add_function(wrap_pyfunction!(for_each, m)?)?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add_class::<Store>()?;
    m.add_class::<Events>()?;
    m.add("MyError", m.py().get_type::<MyError>())?;
    m.add("ClosedError", m.py().get_type::<ClosedError>())?;
    Ok(())
}
