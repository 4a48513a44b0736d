//! Rust programs that run Python (feature `python`): the program starts a CPython found at run
//! time (no PyO3, no libpython at link time), Python's event loop runs on the main thread, the
//! Rust main is polled on that same thread by default (`Runtime::Loop`; tokio or async-std on
//! request, see [`Config::runtime`]), and the Rust main reaches Python objects by import path.
//!
//! ```no_run
//! let status = asyncffi::python::run(asyncffi::python::Config::new(), async {
//!     let sleep = asyncffi::python::import("asyncio")?.attr("sleep")?;
//!     sleep.call((0.1,)).await?;
//!     Ok(())
//! });
//! std::process::exit(status);
//! ```
//!
//! - `interpreter`: finding the interpreter, opening its shared library, the C-API calls.
//! - `host`: [`run`] and [`Config`], the Rust main's start and exit status.
//!
//! The program must export its symbols (link it with `-rdynamic`: a `build.rs` printing
//! `cargo:rustc-link-arg-bins=-rdynamic`), since the bootstrap loads the program itself as an
//! asyncffi library: its `#[asyncffi::export]` functions are available to the Python code it
//! runs (`asyncffi._host.program()`).

mod host;
mod interpreter;

pub use host::{affi_host_main, run, try_run, Config};
pub use interpreter::StartError;

use std::sync::{Arc, Mutex};

use crate::callable::{PyCall, PyCallable, PythonError};
use crate::convert::IntoPython;
use crate::value::{Error, Value};

/// What an `async fn main` under `#[asyncffi::main]` may return: `()` or `Result<(), E>` with
/// an error that converts into [`Error`].
pub trait MainResult {
    /// The outcome as [`run`] takes it.
    fn into_result(self) -> Result<(), Error>;
}

impl MainResult for () {
    fn into_result(self) -> Result<(), Error> {
        Ok(())
    }
}

impl<E: crate::IntoError> MainResult for Result<(), E> {
    fn into_result(self) -> Result<(), Error> {
        self.map_err(crate::IntoError::into_error)
    }
}

/// A Python object reached by import path: a module and a chain of attributes. Nothing is
/// imported until it is used; the first use imports the module (once: Python caches it) and
/// gets the attributes on the event loop's thread.
///
/// The first [`call`](Self::call) also lends the object to Rust, so that later calls (of this
/// value and its clones) go to it directly, without naming it again; a module made again by
/// [`module_from_code`], or another run of Python in this process, makes the next call look
/// the object up anew.
#[derive(Clone, Debug)]
pub struct PyObject {
    module: String,
    attrs: Vec<String>,
    lent: Arc<Mutex<Option<Lent>>>,
}

/// A [`PyObject`] lent as a callable, and the generation of Python's objects it was lent in.
#[derive(Debug)]
struct Lent {
    generation: u64,
    callable: PyCallable,
}

impl PartialEq for PyObject {
    fn eq(&self, other: &Self) -> bool {
        self.module == other.module && self.attrs == other.attrs
    }
}

impl Eq for PyObject {}

fn check_name(name: &str, what: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.split('.').all(|part| {
            let mut chars = part.chars();
            chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
                && chars.all(|c| c == '_' || c.is_alphanumeric())
        });
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            "ValueError",
            format!("{name:?} is not a {what} name"),
        ))
    }
}

/// The module `name` (dotted, such as `"myapp.jobs"`), imported when first used.
///
/// # Errors
/// `name` is not a dotted Python name.
pub fn import(name: &str) -> Result<PyObject, Error> {
    check_name(name, "module")?;
    Ok(PyObject::new(name.to_owned(), Vec::new()))
}

/// Makes the module `name` from Python source text (as the seed's `PyModule::from_code`),
/// replacing any module of that name, and returns it.
///
/// # Errors
/// `name` is not a dotted Python name; the source raised (a `SyntaxError`, ...).
pub async fn module_from_code(name: &str, source: &str) -> Result<PyObject, Error> {
    let module = import(name)?;
    let defined = import("asyncffi._host")?
        .attr("define")?
        .call((name.to_owned(), source.to_owned()))
        .await;
    host::new_generation(); // objects looked up before may be gone or replaced
    defined?;
    Ok(module)
}

/// Positional arguments of a call: a tuple of values that convert to Python (`()`, `(x,)`,
/// `(x, y)`, ...), or a `Vec<Value>`.
pub trait Args {
    /// The values.
    fn into_values(self) -> Result<Vec<Value>, Error>;
}

impl Args for Vec<Value> {
    fn into_values(self) -> Result<Vec<Value>, Error> {
        Ok(self)
    }
}

macro_rules! tuple_args {
    ($($name:ident),*) => {
        impl<$($name: IntoPython),*> Args for ($($name,)*) {
            #[allow(non_snake_case)]
            fn into_values(self) -> Result<Vec<Value>, Error> {
                let ($($name,)*) = self;
                Ok(vec![$($name.into_value()?),*])
            }
        }
    };
}

tuple_args!();
tuple_args!(A);
tuple_args!(A, B);
tuple_args!(A, B, C);
tuple_args!(A, B, C, D);
tuple_args!(A, B, C, D, E);
tuple_args!(A, B, C, D, E, F);

impl PyObject {
    fn new(module: String, attrs: Vec<String>) -> PyObject {
        PyObject {
            module,
            attrs,
            lent: Arc::default(),
        }
    }

    /// Its attribute `name` (a dotted chain is allowed: `"path.join"`).
    ///
    /// # Errors
    /// `name` is not a dotted Python name.
    pub fn attr(&self, name: &str) -> Result<PyObject, Error> {
        check_name(name, "attribute")?;
        let mut attrs = self.attrs.clone();
        attrs.extend(name.split('.').map(str::to_owned));
        Ok(PyObject::new(self.module.clone(), attrs))
    }

    /// Calls it with `args` and awaits whatever awaitable it returns (a coroutine, a future, a
    /// task), resolving to the result. Dropping the future cancels the Python task.
    pub async fn call(&self, args: impl Args) -> Result<Value, Error> {
        self.call_kw(args, Vec::<(String, Value)>::new()).await
    }

    /// [`call`](Self::call), with keyword arguments.
    pub async fn call_kw(
        &self,
        args: impl Args,
        kwargs: impl IntoIterator<Item = (impl Into<String>, Value)>,
    ) -> Result<Value, Error> {
        let args = args.into_values()?;
        let kwargs: Vec<(String, Value)> = kwargs.into_iter().map(|(k, v)| (k.into(), v)).collect();
        if kwargs.is_empty() {
            return Ok(self.callable().await?.call(args).await?);
        }
        Ok(self.invoke(true, args, kwargs)?.await?)
    }

    /// The object lent to Rust as a callable: lent at the first call, and again after a new
    /// generation began. Concurrent first calls may each lend it; all but one of those
    /// loans are given back when their calls end.
    async fn callable(&self) -> Result<PyCallable, Error> {
        let generation = host::generation();
        if let Some(lent) = &*self.lent.lock().unwrap_or_else(|e| e.into_inner()) {
            if lent.generation == generation {
                return Ok(lent.callable.clone());
            }
        }
        let attrs = self.attrs.iter().cloned().map(Value::Str).collect();
        let lend = PyObject::new("asyncffi._host".into(), vec!["lend".into()]);
        let args = vec![Value::Str(self.module.clone()), Value::List(attrs)];
        let id = lend.invoke(true, args, Vec::new())?.await?;
        let id = match id {
            Value::Int(id) => u64::try_from(id).ok(),
            _ => None,
        }
        .ok_or_else(|| Error::new("TypeError", format!("lend returned {id:?}, not an id")))?;
        let callable = PyCallable::adopt(host::invoke()?.port_id(), id)
            .map_err(|f| Error::new("ClosedError", f.message))?;
        *self.lent.lock().unwrap_or_else(|e| e.into_inner()) = Some(Lent {
            generation,
            callable: callable.clone(),
        });
        Ok(callable)
    }

    /// Its value (the module itself, or the attribute), converted; awaited if it is
    /// awaitable.
    pub async fn get(&self) -> Result<Value, Error> {
        Ok(self.invoke(false, Vec::new(), Vec::new())?.await?)
    }

    fn invoke(
        &self,
        call: bool,
        args: Vec<Value>,
        kwargs: Vec<(String, Value)>,
    ) -> Result<PyCall, PythonError> {
        let attrs = self.attrs.iter().cloned().map(Value::Str).collect();
        Ok(host::invoke()?.call(vec![
            Value::Str(self.module.clone()),
            Value::List(attrs),
            Value::Bool(call),
            Value::List(args),
            Value::Dict(kwargs),
        ]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(import("asyncio").is_ok());
        assert!(import("os.path").unwrap().attr("join").is_ok());
        assert_eq!(import("").unwrap_err().kind, "ValueError");
        assert_eq!(import("a..b").unwrap_err().kind, "ValueError");
        assert_eq!(
            import("os").unwrap().attr("1x").unwrap_err().kind,
            "ValueError"
        );
        assert_eq!(
            import("os").unwrap().attr("path.join").unwrap(),
            PyObject::new("os".into(), vec!["path".into(), "join".into()])
        );
    }

    #[tokio::test]
    async fn outside_the_main_python_is_not_running() {
        let err = import("asyncio")
            .unwrap()
            .attr("sleep")
            .unwrap()
            .call((0.0,))
            .await
            .unwrap_err();
        assert_eq!(err.kind, "ClosedError");
    }
}
