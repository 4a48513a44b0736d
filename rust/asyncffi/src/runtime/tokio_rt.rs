//! tokio: one runtime per process, built on first use from the configuration `configure` set.
//!
//! Multi-thread flavour: the `Runtime` lives here until `shutdown` takes it. Current-thread
//! flavour: a dedicated thread (`asyncffi-tokio`) drives the runtime until told to stop.

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

struct Started {
    config: Config,
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
    let mut requested = REQUESTED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(started) = STARTED.get() {
        let running = match started {
            Ok(started) => started.config,
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
    let runtime = builder
        .build()
        .map_err(|e| format!("could not start the tokio runtime: {e}"))?;
    let handle = runtime.handle().clone();
    let owner = match config.flavor {
        Flavor::MultiThread => Owner::MultiThread(runtime),
        Flavor::CurrentThread => {
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
