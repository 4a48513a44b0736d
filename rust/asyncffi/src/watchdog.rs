//! The re-wake timer: wakes a port again when Python was told to drain it and did not.
//!
//! A port wakes its loop only when its queue goes from empty to non-empty, and not while Python
//! is draining (Python drains until a drain returns nothing). If Python loses that one wake-up,
//! for instance to an interrupt (a signal's exception) raised at the first line of the drain
//! callback, before any code of it could note that a drain is owed, the port would never wake
//! again. This thread
//! notices: a port expects a drain while its queue holds items or its last drain returned some,
//! and counts its drain calls; when one expects a drain and no drain call came for a while, the
//! port is woken again through its normal path (the notifier for `threadsafe`, an eventfd write
//! for `fd`), with a backoff from [`FIRST_DELAY`] up to [`MAX_DELAY`]. A duplicate wake-up is
//! harmless: a drain that finds nothing returns at once.
//!
//! - It never calls Python itself and takes no lock for long: a port's lock for a read, the
//!   notifier's lock to queue an id. The drain path pays only a counter increment under the lock
//!   it already takes.
//! - A `threadsafe` re-wake of a loop that is stopped (not closed) queues a callback that runs
//!   when the loop runs again; a port gets at most [`MAX_REWAKES`] of them per missed drain, so
//!   a stopped loop does not pile up callbacks. An eventfd write adds nothing when repeated.
//! - Started by the first port opened; idle (no timer) while no port is open; stopped for good
//!   by [`stop`] at interpreter exit, which does not wait for the thread (it only ever sleeps or
//!   takes short locks, and finds `stopped` set at its next tick).

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::port::Port;

/// How often ports are looked at while one expects a drain.
const TICK: Duration = Duration::from_millis(25);
/// How often ports are looked at while ports are open but none expects a drain.
const IDLE_TICK: Duration = Duration::from_millis(100);
/// How long a port may expect a drain before its first re-wake.
const FIRST_DELAY: Duration = Duration::from_millis(50);
/// The longest wait between two re-wakes of one port.
const MAX_DELAY: Duration = Duration::from_secs(1);
/// Re-wakes of a `threadsafe` port without a drain in between, at most.
const MAX_REWAKES: u32 = 16;

#[derive(Default)]
struct State {
    started: bool,
    stopped: bool,
    /// Ports opened since the thread last looked: it stops idling.
    opened: bool,
}

struct Watchdog {
    state: Mutex<State>,
    signal: Condvar,
}

fn watchdog() -> &'static Watchdog {
    static WATCHDOG: OnceLock<Watchdog> = OnceLock::new();
    WATCHDOG.get_or_init(|| Watchdog {
        state: Mutex::new(State::default()),
        signal: Condvar::new(),
    })
}

fn lock(w: &Watchdog) -> MutexGuard<'_, State> {
    // Only flags live under this lock: a poisoned lock still guards valid state.
    w.state.lock().unwrap_or_else(|e| e.into_inner())
}

/// A port was opened: starts the thread if needed, and ends its idling.
pub fn port_opened() {
    let w = watchdog();
    let mut state = lock(w);
    if state.stopped {
        return;
    }
    state.opened = true;
    if !state.started {
        // If the thread cannot start now, the next port opened tries again.
        state.started = std::thread::Builder::new()
            .name("asyncffi-watchdog".into())
            .spawn(run)
            .is_ok();
    }
    w.signal.notify_one();
}

/// Stops re-waking for good (interpreter exit). Returns at once.
pub fn stop() {
    let w = watchdog();
    lock(w).stopped = true;
    w.signal.notify_all();
}

/// What the thread remembers of a port that expects a drain.
struct Watch {
    /// The port's drain count when last seen changing.
    drains: u64,
    /// When it was last seen changing, or last re-woken.
    since: Instant,
    delay: Duration,
    rewakes: u32,
}

fn run() {
    let w = watchdog();
    let mut watched: HashMap<u64, Watch> = HashMap::new();
    let mut tick = IDLE_TICK;
    loop {
        {
            let mut state = lock(w);
            if !state.stopped && !state.opened {
                state = w
                    .signal
                    .wait_timeout(state, tick)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            if state.stopped {
                return;
            }
            state.opened = false;
        }
        let ports = Port::all_open();
        if ports.is_empty() {
            watched.clear();
            let mut state = lock(w);
            while !state.stopped && !state.opened {
                state = w.signal.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            continue;
        }
        let now = Instant::now();
        let mut seen = HashMap::with_capacity(watched.len());
        for port in ports {
            let Some((drains, threadsafe)) = port.drain_expected() else {
                continue;
            };
            let id = port.id();
            let mut watch = watched.remove(&id).unwrap_or(Watch {
                drains,
                since: now,
                delay: FIRST_DELAY,
                rewakes: 0,
            });
            if watch.drains != drains {
                watch = Watch {
                    drains,
                    since: now,
                    delay: FIRST_DELAY,
                    rewakes: 0,
                };
            } else if now.duration_since(watch.since) >= watch.delay
                && !(threadsafe && watch.rewakes >= MAX_REWAKES)
            {
                port.rewake();
                watch.since = now;
                watch.delay = (watch.delay * 2).min(MAX_DELAY);
                watch.rewakes += 1;
            }
            seen.insert(id, watch);
        }
        watched = seen;
        tick = if watched.is_empty() { IDLE_TICK } else { TICK };
    }
}
