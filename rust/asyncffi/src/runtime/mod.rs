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

/// Which runtime a call runs on, as the C ABI passes it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AffiRuntime {
    /// tokio (multi-thread unless configured otherwise).
    Tokio = 0,
    /// async-std's global executor.
    AsyncStd = 1,
    /// No runtime thread: polled on the event loop's thread (see `local`).
    Loop = 2,
}

/// tokio's scheduler flavour.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AffiFlavor {
    /// A pool of worker threads (the default).
    MultiThread = 0,
    /// One dedicated thread drives every task.
    CurrentThread = 1,
}

/// A runtime to spawn on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// tokio.
    Tokio,
    /// async-std.
    AsyncStd,
    /// The event loop's own thread, inside tokio's context (see [`crate::local`]).
    Loop,
}

static SHUT_DOWN: AtomicBool = AtomicBool::new(false);

impl Runtime {
    /// The runtime named by a C ABI value.
    pub fn from_raw(raw: u32) -> Result<Runtime, Failure> {
        match raw {
            x if x == AffiRuntime::Tokio as u32 => Ok(Runtime::Tokio),
            x if x == AffiRuntime::AsyncStd as u32 => Ok(Runtime::AsyncStd),
            x if x == AffiRuntime::Loop as u32 => Ok(Runtime::Loop),
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

/// Refuses further spawns and shuts tokio down, waiting at most `timeout` for its threads.
pub fn shutdown(timeout: Duration) {
    SHUT_DOWN.store(true, Ordering::Release);
    #[cfg(feature = "tokio")]
    tokio_rt::shutdown(timeout);
    #[cfg(not(feature = "tokio"))]
    let _ = timeout;
}
