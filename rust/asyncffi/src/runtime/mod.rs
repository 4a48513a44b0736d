//! The async runtimes Python calls can run on, started lazily on first use.
//!
//! `Runtime` names one (`tokio` or `async-std`, chosen per call by the exported function);
//! `configure` sets how tokio is built before it starts; `shutdown` stops spawning and shuts
//! tokio down within a bounded time at interpreter exit.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::boundary::{AffiStatus, Failure};

#[cfg(feature = "async-std")]
mod async_std_rt;
#[cfg(feature = "tokio")]
pub mod tokio_rt;

/// tokio's scheduler flavour; its C value (`affi_configure`) is the discriminant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// A pool of worker threads (the default).
    MultiThread = 0,
    /// One dedicated thread drives every task.
    CurrentThread = 1,
}

impl Flavor {
    /// Every flavour with its name, as `affi_runtimes` lists them.
    pub const NAMES: [(&'static str, Flavor); 2] = [
        ("multi_thread", Flavor::MultiThread),
        ("current_thread", Flavor::CurrentThread),
    ];

    /// The flavour of a C value.
    pub fn from_raw(raw: u32) -> Option<Flavor> {
        Flavor::NAMES
            .iter()
            .map(|&(_, flavor)| flavor)
            .find(|&flavor| flavor as u32 == raw)
    }

    /// The flavour's name.
    pub fn name(self) -> &'static str {
        match self {
            Flavor::MultiThread => "multi_thread",
            Flavor::CurrentThread => "current_thread",
        }
    }
}

/// A runtime to spawn on; its C value (the `runtime_id` argument of hand-written exports) is
/// the discriminant. Python learns names and values from `affi_runtimes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// tokio (multi-thread unless configured otherwise).
    Tokio = 0,
    /// async-std's global executor.
    AsyncStd = 1,
    /// The event loop's own thread, inside tokio's context (see [`crate::local`]).
    Loop = 2,
}

static SHUT_DOWN: AtomicBool = AtomicBool::new(false);

impl Runtime {
    /// Every runtime's names (the first is its own name, the others aliases) and the runtime,
    /// as `affi_runtimes` lists them.
    pub const NAMES: [(&'static str, Runtime); 4] = [
        ("tokio", Runtime::Tokio),
        ("async-std", Runtime::AsyncStd),
        ("async_std", Runtime::AsyncStd),
        ("loop", Runtime::Loop),
    ];

    /// The runtime named by a C ABI value.
    pub fn from_raw(raw: u32) -> Result<Runtime, Failure> {
        match raw {
            x if x == Runtime::Tokio as u32 => Ok(Runtime::Tokio),
            x if x == Runtime::AsyncStd as u32 => Ok(Runtime::AsyncStd),
            x if x == Runtime::Loop as u32 => Ok(Runtime::Loop),
            _ => Err(Failure::new(
                AffiStatus::ErrValue,
                format!("unknown runtime {raw}: expected 0 (tokio), 1 (async-std) or 2 (loop)"),
            )),
        }
    }

    /// Fails if this runtime cannot take work: shut down (interpreter exit), not compiled in,
    /// or tokio failed to start. Starts tokio on first use.
    pub fn check_available(self) -> Result<(), Failure> {
        if SHUT_DOWN.load(Ordering::Acquire) {
            return Err(Failure::new(
                AffiStatus::ErrRuntime,
                "the asyncffi runtimes are shut down (the interpreter is exiting)",
            ));
        }
        match self {
            #[cfg(feature = "tokio")]
            Runtime::Tokio | Runtime::Loop => tokio_rt::handle().map(|_| ()),
            #[cfg(not(feature = "tokio"))]
            Runtime::Loop => Ok(()),
            #[cfg(feature = "async-std")]
            Runtime::AsyncStd => Ok(()),
            #[allow(unreachable_patterns)]
            other => Err(Failure::new(
                AffiStatus::ErrRuntime,
                format!("this build of asyncffi has no {other:?} runtime"),
            )),
        }
    }

    /// Enters this runtime's context on the current thread (for a future's first poll outside
    /// the runtime: tokio's timers and `spawn` need it) until the guard is dropped.
    pub fn enter(self) -> RuntimeContext {
        match self {
            #[cfg(feature = "tokio")]
            Runtime::Tokio | Runtime::Loop => RuntimeContext {
                tokio: tokio_rt::handle().ok().map(|handle| handle.enter()),
            },
            #[allow(unreachable_patterns)]
            _ => RuntimeContext {
                #[cfg(feature = "tokio")]
                tokio: None,
            },
        }
    }

    /// Runs `future` to completion on this runtime, detached. Call `check_available` first;
    /// a runtime that became unavailable since drops the future. (`Loop` tasks are filed with
    /// their port instead: see `task::spawn`.)
    pub fn spawn<F>(self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        match self {
            #[cfg(feature = "tokio")]
            Runtime::Tokio => match tokio_rt::handle() {
                Ok(handle) => drop(handle.spawn(future)),
                Err(_) => drop(future),
            },
            #[cfg(feature = "async-std")]
            Runtime::AsyncStd => async_std_rt::spawn(future),
            #[allow(unreachable_patterns)]
            _ => drop(future),
        }
    }
}

/// A runtime context entered on this thread (see [`Runtime::enter`]); left when dropped.
pub struct RuntimeContext {
    /// Held only for its `Drop`, which leaves tokio's context.
    #[cfg(feature = "tokio")]
    #[allow(dead_code)]
    tokio: Option<tokio::runtime::EnterGuard<'static>>,
}

/// The names of the runtimes and of tokio's flavours with their C values, as a JSON document:
/// `{"runtimes": {"tokio": 0, ...}, "flavors": {"multi_thread": 0, ...}}` (`affi_runtimes`).
pub fn names_json() -> &'static str {
    static JSON: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    JSON.get_or_init(|| {
        let table = |entries: Vec<(&str, u32)>| {
            let fields: Vec<String> = entries
                .iter()
                .map(|(name, value)| format!("\"{name}\": {value}"))
                .collect();
            format!("{{{}}}", fields.join(", "))
        };
        let runtimes = Runtime::NAMES.iter().map(|&(n, r)| (n, r as u32)).collect();
        let flavors = Flavor::NAMES.iter().map(|&(n, f)| (n, f as u32)).collect();
        format!(
            "{{\"runtimes\": {}, \"flavors\": {}}}",
            table(runtimes),
            table(flavors)
        )
    })
}

/// Refuses further spawns and shuts tokio down, waiting at most `timeout` for its threads.
pub fn shutdown(timeout: Duration) {
    SHUT_DOWN.store(true, Ordering::Release);
    #[cfg(feature = "tokio")]
    tokio_rt::shutdown(timeout);
    #[cfg(not(feature = "tokio"))]
    let _ = timeout;
}
