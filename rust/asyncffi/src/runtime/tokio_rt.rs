//! tokio: one runtime per library, built on first use from the configuration `configure` set,
//! or the library's own (see [`tokio_runtime!`](crate::tokio_runtime)).
//!
//! Multi-thread flavour: the `Runtime` lives here until `shutdown` takes it. Current-thread
//! flavour: a dedicated thread (`asyncffi-tokio`) drives the runtime until told to stop. A
//! runtime the library lends by its handle is never shut down here: it is the library's.

use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::runtime::{Builder, Handle, Runtime};
use tokio::sync::oneshot;

use super::Flavor;
use crate::boundary::{AffiStatus, Failure};

/// How the tokio runtime is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Worker threads of the multi-thread flavour; 0 means one per core.
    pub worker_threads: usize,
    /// The scheduler flavour.
    pub flavor: Flavor,
}

impl Config {
    const DEFAULT: Config = Config {
        worker_threads: 0,
        flavor: Flavor::MultiThread,
    };
}

/// What keeps the runtime running until shutdown.
enum Owner {
    MultiThread(Runtime),
    CurrentThread {
        stop: oneshot::Sender<Duration>,
        thread: JoinHandle<()>,
        stopped: mpsc::Receiver<()>,
    },
}

/// The library's own tokio runtime, as [`tokio_runtime!`](crate::tokio_runtime) gives it.
pub enum OwnTokio {
    /// A runtime the library runs itself: asyncffi spawns on it and never shuts it down.
    Handle(Handle),
    /// A builder configured by the library (flavour, worker threads, thread names, drivers):
    /// asyncffi builds the runtime on first use and shuts it down at interpreter exit.
    Builder(Box<Builder>),
}

impl From<Handle> for OwnTokio {
    fn from(handle: Handle) -> OwnTokio {
        OwnTokio::Handle(handle)
    }
}

impl From<Builder> for OwnTokio {
    fn from(builder: Builder) -> OwnTokio {
        OwnTokio::Builder(Box::new(builder))
    }
}

/// The registration [`tokio_runtime!`](crate::tokio_runtime) makes.
pub struct OwnTokioEntry {
    /// Gives the runtime (called once, on first use).
    pub make: fn() -> OwnTokio,
}

/// The library's own tokio runtime, if it registered one (at most one).
#[linkme::distributed_slice]
pub static OWN_TOKIO: [OwnTokioEntry];

/// Whether the library brings its own tokio runtime (then `configure` does not apply to it).
pub fn is_own() -> bool {
    !OWN_TOKIO.is_empty()
}

/// Gives asyncffi the library's own tokio runtime, for every call on `tokio` (and for the
/// `loop` runtime's tokio context): an expression (a closure or a function) returning a
/// `tokio::runtime::Handle` (a runtime the library runs itself) or a
/// `tokio::runtime::Builder` (asyncffi builds it on first use, and shuts it down at exit). It
/// runs on the first call that needs tokio. Python's `asyncffi.configure(worker_threads=...,
/// flavor=...)` does not apply to such a library. At most one per library.
///
/// ```
/// asyncffi::tokio_runtime!(|| {
///     let mut builder = tokio::runtime::Builder::new_multi_thread();
///     builder.worker_threads(2).thread_name("mylib-worker").enable_all();
///     builder
/// });
/// ```
#[macro_export]
macro_rules! tokio_runtime {
    ($make:expr $(,)?) => {
        const _: () = {
            #[$crate::__private::linkme::distributed_slice($crate::runtime::tokio_rt::OWN_TOKIO)]
            #[linkme(crate = $crate::__private::linkme)]
            static __AFFI_OWN_TOKIO: $crate::runtime::tokio_rt::OwnTokioEntry =
                $crate::runtime::tokio_rt::OwnTokioEntry {
                    make: || -> $crate::runtime::tokio_rt::OwnTokio {
                        ::std::convert::From::from(($make)())
                    },
                };
        };
    };
}

struct Started {
    /// `None` for the library's own runtime.
    config: Option<Config>,
    handle: Handle,
    owner: Mutex<Option<Owner>>,
}

static REQUESTED: Mutex<Config> = Mutex::new(Config::DEFAULT);
static STARTED: OnceLock<Result<Started, String>> = OnceLock::new();

fn describe(config: &Config) -> String {
    let workers = match config.worker_threads {
        0 => "None".to_owned(),
        n => n.to_string(),
    };
    format!(
        "worker_threads={workers}, flavor={:?}",
        config.flavor.name()
    )
}

/// Sets how tokio will be built. Once it has started, a different configuration is refused.
pub fn configure(config: Config) -> Result<(), Failure> {
    if is_own() {
        // The library's own runtime is configured by the library.
        return Ok(());
    }
    let mut requested = REQUESTED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(started) = STARTED.get() {
        let running = match started {
            Ok(started) => started.config.unwrap_or(*requested),
            Err(_) => *requested,
        };
        if running != config {
            return Err(Failure::new(
                AffiStatus::ErrRuntime,
                format!(
                    "the tokio runtime already started with {}; asyncffi.configure({}) must be \
                     called before the first call that uses it",
                    describe(&running),
                    describe(&config)
                ),
            ));
        }
    }
    *requested = config;
    Ok(())
}

fn start(config: Config) -> Result<Started, String> {
    let mut builder = match config.flavor {
        Flavor::MultiThread => Builder::new_multi_thread(),
        Flavor::CurrentThread => Builder::new_current_thread(),
    };
    // Every driver compiled in (time here; IO too when a library enables tokio's `net`).
    builder.enable_all().thread_name("asyncffi-tokio");
    if config.worker_threads > 0 && config.flavor == Flavor::MultiThread {
        builder.worker_threads(config.worker_threads);
    }
    run(&mut builder, Some(config))
}

/// Starts the library's own runtime.
fn start_own() -> Result<Started, String> {
    if OWN_TOKIO.len() > 1 {
        return Err(format!(
            "the library registers {} tokio runtimes with asyncffi::tokio_runtime!; at most one",
            OWN_TOKIO.len()
        ));
    }
    let made = crate::boundary::catching(OWN_TOKIO[0].make).map_err(|payload| {
        format!(
            "could not start the library's tokio runtime: {}",
            crate::boundary::panic_message(payload.as_ref())
        )
    })?;
    match made {
        OwnTokio::Handle(handle) => Ok(Started {
            config: None,
            handle,
            owner: Mutex::new(None),
        }),
        OwnTokio::Builder(mut builder) => run(&mut builder, None),
    }
}

/// Builds the runtime and keeps it running (a current-thread one on a thread of its own).
fn run(builder: &mut Builder, config: Option<Config>) -> Result<Started, String> {
    let runtime = builder
        .build()
        .map_err(|e| format!("could not start the tokio runtime: {e}"))?;
    let handle = runtime.handle().clone();
    let owner = match handle.runtime_flavor() {
        tokio::runtime::RuntimeFlavor::CurrentThread => {
            let (stop, stop_rx) = oneshot::channel::<Duration>();
            let (stopped_tx, stopped) = mpsc::channel::<()>();
            let thread = std::thread::Builder::new()
                .name("asyncffi-tokio".into())
                .spawn(move || {
                    // Drive the runtime until `shutdown` sends its timeout.
                    let timeout = runtime.block_on(stop_rx).unwrap_or(Duration::ZERO);
                    runtime.shutdown_timeout(timeout);
                    let _ = stopped_tx.send(());
                })
                .map_err(|e| format!("could not start the tokio thread: {e}"))?;
            Owner::CurrentThread {
                stop,
                thread,
                stopped,
            }
        }
        _ => Owner::MultiThread(runtime),
    };
    Ok(Started {
        config,
        handle,
        owner: Mutex::new(Some(owner)),
    })
}

/// The running runtime's handle, starting it on first use.
pub fn handle() -> Result<&'static Handle, Failure> {
    let started = STARTED.get_or_init(|| {
        if is_own() {
            return start_own();
        }
        let config = *REQUESTED.lock().unwrap_or_else(|e| e.into_inner());
        start(config)
    });
    match started {
        Ok(started) => Ok(&started.handle),
        Err(message) => Err(Failure::new(AffiStatus::ErrRuntime, message.clone())),
    }
}

/// Shuts the runtime down (if it ever started), waiting at most `timeout`.
pub fn shutdown(timeout: Duration) {
    let Some(Ok(started)) = STARTED.get() else {
        return;
    };
    let owner = started
        .owner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    match owner {
        Some(Owner::MultiThread(runtime)) => runtime.shutdown_timeout(timeout),
        Some(Owner::CurrentThread {
            stop,
            thread,
            stopped,
        }) => {
            let _ = stop.send(timeout);
            if stopped
                .recv_timeout(timeout + Duration::from_millis(100))
                .is_ok()
            {
                let _ = thread.join();
            }
        }
        None => {}
    }
}
