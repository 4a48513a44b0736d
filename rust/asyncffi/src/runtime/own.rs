//! Executors a library brings itself: any executor that can run a `Send` future, registered
//! under a name with [`register_runtime!`](crate::register_runtime) and chosen with
//! `#[asyncffi::export(runtime = "name")]`.
//!
//! The registrations are a link-time list in the library that makes them (each cdylib links
//! its own copy of this crate, so its list, its executors and their shutdown are its own). An
//! executor is built on the first call that needs it, and told to stop at interpreter exit.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::boundary::{catching, panic_message, AffiStatus, Failure};

/// A future asyncffi hands an executor: one Python call, wrapped in asyncffi's task (which
/// delivers its outcome, catches its panic and drops it when Python cancels it).
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// An executor calls can run on, besides tokio and async-std.
///
/// asyncffi's task wrapper does the rest: a call cancelled from Python sets the task's cancel
/// flag and wakes it, and its next poll (on the executor) drops the Rust future; a panic in a
/// poll is caught there and reaches Python as `RustPanic`. So an executor needs no join or
/// abort handle: it only has to poll a woken task, on threads that never call into Python.
///
/// ```
/// use asyncffi::runtime::own::{Executor, Task};
///
/// /// Every call on a thread of its own (a toy: a real executor pools its threads).
/// struct ThreadPerCall;
///
/// impl Executor for ThreadPerCall {
///     fn spawn(&self, task: Task) {
///         std::thread::spawn(move || futures_lite_block_on(task));
///     }
/// }
/// # fn futures_lite_block_on(_: Task) {}
///
/// asyncffi::register_runtime!("thread-per-call", || ThreadPerCall);
///
/// #[asyncffi::export(runtime = "thread-per-call")]
/// async fn answer() -> i64 {
///     42
/// }
/// ```
pub trait Executor: Send + Sync + 'static {
    /// Runs `task` until it is ready (or drops it, if the executor is stopping), detached.
    /// Called on the thread Python called from, after the task's first poll returned pending;
    /// it must not block.
    fn spawn(&self, task: Task);

    /// Interpreter exit: the library's ports are closed (every task was asked to stop) and no
    /// call spawns on it any more. Stop the executor's threads if it owns them, within
    /// `timeout`; the default does nothing (an executor the library keeps running itself).
    fn shutdown(&self, timeout: Duration) {
        let _ = timeout;
    }
}

/// Any tokio runtime, by its handle (a second tokio runtime under a name of its own).
#[cfg(feature = "tokio")]
impl Executor for tokio::runtime::Handle {
    fn spawn(&self, task: Task) {
        drop(tokio::runtime::Handle::spawn(self, task));
    }
}

/// One registration (made by [`register_runtime!`](crate::register_runtime)).
pub struct OwnRuntime {
    name: &'static str,
    make: fn() -> Box<dyn Executor>,
    started: OnceLock<Box<dyn Executor>>,
}

impl OwnRuntime {
    /// A registration of the executor `make` builds, under `name`.
    pub const fn new(name: &'static str, make: fn() -> Box<dyn Executor>) -> OwnRuntime {
        OwnRuntime {
            name,
            make,
            started: OnceLock::new(),
        }
    }

    /// Its name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The executor, built on first use (a panic while building it is an error, and the next
    /// call tries again).
    fn executor(&self) -> Result<&dyn Executor, Failure> {
        if let Some(executor) = self.started.get() {
            return Ok(executor.as_ref());
        }
        let made = catching(self.make).map_err(|payload| {
            Failure::new(
                AffiStatus::ErrRuntime,
                format!(
                    "could not start the runtime {:?}: {}",
                    self.name,
                    panic_message(payload.as_ref())
                ),
            )
        })?;
        // Another thread may have won the race: its executor is kept, this one dropped.
        Ok(self.started.get_or_init(|| made).as_ref())
    }
}

/// Every executor registered in this library, in link order.
#[linkme::distributed_slice]
pub static OWN_RUNTIMES: [OwnRuntime];

/// The C values of registered runtimes start here (index 0 of `OWN_RUNTIMES` is 16).
pub(crate) const FIRST_ID: u32 = 16;

/// The index of the runtime registered as `name`, if any (the first, if several are).
pub fn find(name: &str) -> Option<u16> {
    OWN_RUNTIMES
        .iter()
        .position(|entry| entry.name == name)
        .and_then(|index| u16::try_from(index).ok())
}

/// The registration at `index`.
pub fn entry(index: u16) -> Option<&'static OwnRuntime> {
    OWN_RUNTIMES.get(usize::from(index))
}

/// Starts the executor at `index` if needed.
pub(crate) fn check(index: u16) -> Result<(), Failure> {
    let entry = entry(index).ok_or_else(|| unknown(index))?;
    entry.executor().map(|_| ())
}

fn unknown(index: u16) -> Failure {
    Failure::new(
        AffiStatus::ErrValue,
        format!("unknown runtime {}", FIRST_ID + u32::from(index)),
    )
}

/// Hands `task` to the executor at `index` (dropped if it cannot start).
pub(crate) fn spawn(index: u16, task: Task) {
    match entry(index).map(OwnRuntime::executor) {
        Some(Ok(executor)) => executor.spawn(task),
        _ => drop(task),
    }
}

/// Tells every started executor to stop, all within `timeout` together.
pub(crate) fn shutdown(timeout: Duration) {
    let deadline = Instant::now() + timeout;
    for entry in OWN_RUNTIMES.iter() {
        if let Some(executor) = entry.started.get() {
            let left = deadline.saturating_duration_since(Instant::now());
            // A panic in an author's shutdown must not unwind out of `affi_shutdown`.
            let _ = catching(|| executor.shutdown(left));
        }
    }
}

/// Registers an executor under a name, for `#[asyncffi::export(runtime = "name")]`, the
/// caller-chosen `runtime=` keyword and `affi_runtimes`. The second argument is a closure
/// (or function) returning an [`Executor`]; it runs on the first call that needs it.
///
/// A cdylib has no start-up code that runs before Python's first call, so the registration
/// is static: the macro places it in a link-time list of the library. A name of a built-in
/// runtime (`tokio`, `async-std`, `async_std`, `loop`) cannot be registered; if a name is
/// registered twice, the first registration wins.
///
/// ```
/// asyncffi::register_runtime!("second-tokio", || {
///     tokio::runtime::Builder::new_multi_thread()
///         .worker_threads(1)
///         .thread_name("second-tokio")
///         .enable_all()
///         .build()
///         .map(|rt| {
///             let handle = rt.handle().clone();
///             std::mem::forget(rt); // kept for the life of the process
///             handle
///         })
///         .expect("tokio starts")
/// });
/// ```
#[macro_export]
macro_rules! register_runtime {
    ($name:expr, $make:expr $(,)?) => {
        const _: () = {
            #[$crate::__private::linkme::distributed_slice($crate::runtime::own::OWN_RUNTIMES)]
            #[linkme(crate = $crate::__private::linkme)]
            static __AFFI_OWN_RUNTIME: $crate::runtime::own::OwnRuntime =
                $crate::runtime::own::OwnRuntime::new(
                    $name,
                    || -> ::std::boxed::Box<dyn $crate::runtime::own::Executor> {
                        ::std::boxed::Box::new(($make)())
                    },
                );
        };
    };
}
