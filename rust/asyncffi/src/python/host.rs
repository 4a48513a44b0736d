//! Running a Rust program's async main with Python: [`run`] starts the interpreter on the main
//! thread and hands it to the bootstrap `asyncffi._host.main`, which loads the program itself
//! as a library (`dlopen(NULL)`: its exports and manifest), runs the event loop, and calls
//! `affi_host_main` here. That spawns the Rust main on its runtime, with the bootstrap's
//! `invoke` (a Python callable: import a path, get attributes, call, await) as the handle
//! through which [`super::PyObject`] reaches Python, by the Rust-awaits-Python protocol.
//!
//! Exit statuses: 0 when the main returns `Ok`, 1 for an `Err` (printed by the bootstrap: a
//! Python exception with its traceback, a Rust error with its kind), 101 for a panic, 130 when
//! SIGINT cancelled the main (its future is dropped and the Python calls it made are
//! cancelled), 1 when no usable Python was found (the error names what was tried).

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::interpreter::{self, CApi, StartError};
use crate::boundary::{guard, AffiStatus, Failure};
use crate::callable::PyCallable;
use crate::runtime::Runtime;
use crate::value::{Result, Value};

type MainFuture = Pin<Box<dyn Future<Output = Result<()>> + Send>>;

/// The Rust main, from [`run`] until the bootstrap starts it.
static MAIN: Mutex<Option<MainFuture>> = Mutex::new(None);
/// The bootstrap's `invoke`, while the Rust main runs.
static INVOKE: Mutex<Option<PyCallable>> = Mutex::new(None);

/// How a Rust program runs Python: which interpreter, the runtime of the Rust main, the event
/// loop, and extra `sys.path` entries.
#[derive(Clone, Debug)]
pub struct Config {
    python: Option<PathBuf>,
    runtime: Runtime,
    loop_factory: Option<String>,
    path: Vec<PathBuf>,
    finalize_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            python: None,
            runtime: Runtime::Loop,
            loop_factory: None,
            path: Vec::new(),
            finalize_timeout: Duration::from_secs(5),
        }
    }
}

impl Config {
    /// The defaults: the interpreter found at run time, the main polled on the event loop's
    /// thread (`Runtime::Loop`), asyncio's default loop.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs this interpreter (its `sys.executable`, or any path that runs it), not one found
    /// through `ASYNCFFI_PYTHON`, the virtual environment or `PATH`.
    pub fn python(mut self, path: impl Into<PathBuf>) -> Self {
        self.python = Some(path.into());
        self
    }

    /// The runtime of the Rust main: `Runtime::Loop` (the default), `Runtime::Tokio` or
    /// `Runtime::AsyncStd`.
    ///
    /// On `Loop` the main is polled on the event loop's thread, inside tokio's context: no
    /// thread hop per call to Python (the fastest way to await Python), and `tokio::spawn`,
    /// tokio's timers, IO and `spawn_blocking` work as usual. But while the main runs Rust
    /// code between two awaits, the event loop waits for it. Choose `Runtime::Tokio` (the main
    /// on a tokio worker thread) for a main that computes between its awaits, or move that
    /// work to `tokio::task::spawn_blocking`.
    pub fn runtime(mut self, runtime: Runtime) -> Self {
        self.runtime = runtime;
        self
    }

    /// The event loop: `"uvloop"`, or a factory by path (`"module:function"`) called with no
    /// arguments to make the loop.
    pub fn loop_factory(mut self, factory: impl Into<String>) -> Self {
        self.loop_factory = Some(factory.into());
        self
    }

    /// Prepends `entry` to `sys.path` (after the ones given before it).
    pub fn path(mut self, entry: impl Into<PathBuf>) -> Self {
        self.path.push(entry.into());
        self
    }

    /// How long finalizing the interpreter may take before the process exits anyway (5 s).
    pub fn finalize_timeout(mut self, timeout: Duration) -> Self {
        self.finalize_timeout = timeout;
        self
    }
}

/// Runs `main` with Python: starts the interpreter, runs the event loop on this (the main)
/// thread and `main` on the configured runtime, finalizes the interpreter and returns the
/// exit status (see the module documentation). Call it once, from `fn main`, and pass the
/// status to `std::process::exit`.
pub fn run<F>(config: Config, main: F) -> i32
where
    F: Future<Output = Result<()>> + Send + 'static,
{
    match try_run(config, main) {
        Ok(status) => status,
        Err(e) => {
            eprintln!("error: cannot run Python: {e}");
            1
        }
    }
}

/// [`run`], with a failure to start Python returned rather than printed.
pub fn try_run<F>(config: Config, main: F) -> std::result::Result<i32, StartError>
where
    F: Future<Output = Result<()>> + Send + 'static,
{
    check_exported()?;
    let found = interpreter::find(config.python.as_deref())?;
    let api = CApi::open(&found)?;
    *MAIN.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::pin(main));
    // SAFETY: the one interpreter of this process, started and finalized on this thread.
    unsafe { api.initialize(&found.executable)? };
    // SAFETY: initialized, and this thread holds the GIL.
    let status = unsafe { api.call_int("asyncffi._host", "main", &bootstrap_config(&config)) };
    let status = status.map_or(1, |s| s as i32);
    // Bounded finalization: a Python thread that never ends would block it forever.
    let timeout = config.finalize_timeout;
    std::thread::spawn(move || {
        std::thread::sleep(timeout);
        eprintln!("error: the Python interpreter did not finalize within {timeout:?}");
        // SAFETY: ends the process without running anything else.
        unsafe { libc::_exit(status) };
    });
    // SAFETY: the thread that initialized it, holding the GIL, once.
    unsafe { api.finalize() };
    Ok(status)
}

/// Refuses a program whose symbols Python cannot find: the bootstrap opens the program with
/// `dlopen(NULL)`, which sees only dynamically exported symbols.
fn check_exported() -> std::result::Result<(), StartError> {
    // SAFETY: a NUL-terminated name; RTLD_DEFAULT searches the program and its libraries.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"affi_host_main".as_ptr()) };
    if p.is_null() {
        return Err(StartError {
            message: "this program does not export its symbols, so Python cannot load it: \
                      link it with -rdynamic (a build.rs printing \
                      `cargo:rustc-link-arg-bins=-rdynamic`)"
                .to_owned(),
        });
    }
    Ok(())
}

/// The bootstrap's argument: a JSON object.
fn bootstrap_config(config: &Config) -> String {
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let path: Vec<String> = config
        .path
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let runtime = config.runtime.name();
    format!(
        "{{\"argv\": {}, \"path\": {}, \"loop\": {}, \"runtime\": {}}}",
        json_list(&argv),
        json_list(&path),
        config
            .loop_factory
            .as_deref()
            .map_or("null".to_owned(), json_str),
        json_str(runtime)
    )
}

fn json_list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|s| json_str(s)).collect();
    format!("[{}]", items.join(", "))
}

fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The bootstrap's `invoke`, for [`super::PyObject`]; `ClosedError` outside the Rust main.
pub(crate) fn invoke() -> std::result::Result<PyCallable, crate::PythonError> {
    INVOKE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .ok_or_else(|| {
            crate::PythonError::new(
                "ClosedError",
                "Python is not running: asyncffi::python is used only inside the main given \
                 to asyncffi::python::run (or #[asyncffi::main])",
            )
        })
}

/// The generation of the Python objects lent to Rust by [`super::PyObject`]: a new one begins
/// with each Rust main and each module made from source text, and objects lent in an earlier
/// one are looked up again.
static GENERATION: AtomicU64 = AtomicU64::new(0);

pub(crate) fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

pub(crate) fn new_generation() {
    GENERATION.fetch_add(1, Ordering::AcqRel);
}

/// Releases `invoke` when the Rust main ends (completes or is dropped).
struct ClearInvoke;

impl Drop for ClearInvoke {
    fn drop(&mut self) {
        let invoke = INVOKE.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(invoke);
    }
}

/// Starts the Rust main: called once by the bootstrap, as an exported async function
/// (`int64_t affi_host_main(uint64_t port, uint64_t token, uint64_t invoke, uint32_t runtime)`).
#[no_mangle]
pub extern "C" fn affi_host_main(port: u64, token: u64, invoke: u64, runtime: u32) -> i64 {
    guard(|| {
        let runtime = Runtime::from_raw(runtime)?;
        let invoke = PyCallable::adopt(port, invoke)?;
        let main = MAIN
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or_else(|| Failure::new(AffiStatus::ErrClosed, "the Rust main has started"))?;
        *INVOKE.lock().unwrap_or_else(|e| e.into_inner()) = Some(invoke);
        new_generation();
        let task = crate::task::spawn(runtime, port, token, async move {
            let _clear = ClearInvoke;
            main.await.map(|()| Value::None)
        })?;
        Ok(task as i64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_str("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
        assert_eq!(json_list(&["x".into(), "é".into()]), "[\"x\", \"é\"]");
    }

    #[test]
    fn the_bootstrap_config_is_json() {
        let config = Config::new()
            .path("/opt/app")
            .loop_factory("uvloop")
            .runtime(Runtime::AsyncStd);
        let text = bootstrap_config(&config);
        assert!(text.contains("\"path\": [\"/opt/app\"]"), "{text}");
        assert!(text.contains("\"loop\": \"uvloop\""), "{text}");
        assert!(text.contains("\"runtime\": \"async-std\""), "{text}");
    }
}
