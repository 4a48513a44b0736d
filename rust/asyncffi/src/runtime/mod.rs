//! The async runtimes Python calls can run on, started lazily on first use.
//!
//! `Runtime` names one (`tokio`, `async-std`, `loop` or one the library registered in
//! [`own`], chosen per call by the exported function); `configure` sets how tokio is built
//! before it starts (unless the library brings its own, [`tokio_runtime!`](crate::tokio_runtime));
//! `shutdown` stops spawning and shuts the runtimes down within a bounded time at interpreter
//! exit.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::boundary::{AffiStatus, Failure};

#[cfg(feature = "async-std")]
mod async_std_rt;
pub mod own;
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
/// [`Runtime::raw`]. Python learns names and values from `affi_runtimes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// tokio (multi-thread unless configured otherwise, or the library's own).
    Tokio,
    /// async-std's global executor.
    AsyncStd,
    /// The event loop's own thread, inside tokio's context (see [`crate::local`]).
    Loop,
    /// An executor the library registered ([`register_runtime!`](crate::register_runtime)),
    /// by its index in the library's registrations; its C value is 16 + the index.
    Own(u16),
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
            0 => Ok(Runtime::Tokio),
            1 => Ok(Runtime::AsyncStd),
            2 => Ok(Runtime::Loop),
            _ => raw
                .checked_sub(own::FIRST_ID)
                .and_then(|index| u16::try_from(index).ok())
                .filter(|&index| own::entry(index).is_some())
                .map(Runtime::Own)
                .ok_or_else(|| {
                    let mut expected = String::from("0 (tokio), 1 (async-std), 2 (loop)");
                    for (index, entry) in own::OWN_RUNTIMES.iter().enumerate() {
                        let id = own::FIRST_ID as usize + index;
                        expected.push_str(&format!(", {id} ({})", entry.name()));
                    }
                    Failure::new(
                        AffiStatus::ErrValue,
                        format!("unknown runtime {raw}: expected {expected}"),
                    )
                }),
        }
    }

    /// The runtime's C value.
    pub fn raw(self) -> u32 {
        match self {
            Runtime::Tokio => 0,
            Runtime::AsyncStd => 1,
            Runtime::Loop => 2,
            Runtime::Own(index) => own::FIRST_ID + u32::from(index),
        }
    }

    /// The runtime called `name`: a built-in one (or an alias, as in [`Runtime::NAMES`]), else
    /// one the library registered.
    pub fn named(name: &str) -> Result<Runtime, Failure> {
        if let Some(&(_, runtime)) = Runtime::NAMES.iter().find(|(n, _)| *n == name) {
            return Ok(runtime);
        }
        own::find(name).map(Runtime::Own).ok_or_else(|| {
            Failure::new(
                AffiStatus::ErrValue,
                format!(
                    "no runtime named {name:?} in this library: the built-in ones are 'tokio', \
                     'async-std' and 'loop'; others are registered with \
                     asyncffi::register_runtime!"
                ),
            )
        })
    }

    /// The runtime's name.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Tokio => "tokio",
            Runtime::AsyncStd => "async-std",
            Runtime::Loop => "loop",
            Runtime::Own(index) => own::entry(index).map_or("?", own::OwnRuntime::name),
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
            Runtime::Own(index) => own::check(index),
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
            Runtime::Own(index) => own::spawn(index, Box::pin(future)),
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
        let builtin = Runtime::NAMES.iter().map(|&(n, r)| (n, r.raw()));
        let registered = own::OWN_RUNTIMES
            .iter()
            .enumerate()
            .filter(|&(index, entry)| {
                // Not a built-in's name, nor one registered earlier: the name reaches it.
                matches!(Runtime::named(entry.name()), Ok(Runtime::Own(i)) if usize::from(i) == index)
            })
            .map(|(index, entry)| (entry.name(), own::FIRST_ID + index as u32));
        let runtimes = builtin.chain(registered).collect();
        let flavors = Flavor::NAMES.iter().map(|&(n, f)| (n, f as u32)).collect();
        format!(
            "{{\"runtimes\": {}, \"flavors\": {}}}",
            table(runtimes),
            table(flavors)
        )
    })
}

/// Refuses further spawns and shuts tokio and the registered executors down, waiting at
/// most `timeout` for their threads (all together).
pub fn shutdown(timeout: Duration) {
    SHUT_DOWN.store(true, Ordering::Release);
    let deadline = std::time::Instant::now() + timeout;
    #[cfg(feature = "tokio")]
    tokio_rt::shutdown(timeout);
    own::shutdown(deadline.saturating_duration_since(std::time::Instant::now()));
}
