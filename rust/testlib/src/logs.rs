//! Functions that log, for the tests of the log bridge (`tests/test_logging.rs`): through
//! `log` (with key-values) and `tracing` (with fields), from sync calls and runtime tasks.

use std::time::{Duration, Instant};

/// Logs one record through `log` at `level` ("error" ... "trace") with `message`, the target
/// `target` (the module's path if empty) and the key-values `user` and `attempt`; returns the
/// line it logged at.
#[asyncffi::export]
fn log_record(level: String, message: String, target: String) -> u32 {
    let level = match level.as_str() {
        "error" => log::Level::Error,
        "warn" => log::Level::Warn,
        "info" => log::Level::Info,
        "debug" => log::Level::Debug,
        _ => log::Level::Trace,
    };
    let target = if target.is_empty() {
        module_path!()
    } else {
        &target
    };
    let line = line!() + 1;
    log::log!(target: target, level, user = "ada", attempt = 3; "{message}");
    line
}

/// Logs one `tracing` event at INFO with the fields `items` and `ok`; returns its line.
#[asyncffi::export]
fn trace_event(message: String) -> u32 {
    let line = line!() + 1;
    tracing::info!(items = 7u64, ok = true, "{message}");
    line
}

/// Logs `debug` records at DEBUG, then `warn` at WARN (the text `"burst <i>"`), on the calling
/// thread.
#[asyncffi::export]
fn log_burst(debug: u32, warn: u32) {
    for i in 0..debug {
        log::debug!("burst {i}");
    }
    for i in 0..warn {
        log::warn!("burst {i}");
    }
}

/// Logs `n` INFO records from a task on `runtime`, then returns.
#[asyncffi::export]
async fn log_later(n: u32, runtime: asyncffi::Runtime) {
    let _ = runtime;
    for i in 0..n {
        log::info!(target: "testlib::later", "late {i}");
    }
}

/// Ticks every `period` for `ticks` ticks on `runtime`, logging a WARN record each tick, and
/// returns the largest lateness of a tick behind its schedule, in seconds.
#[asyncffi::export]
async fn log_ticks(period: Duration, ticks: u32, runtime: asyncffi::Runtime) -> f64 {
    let start = Instant::now();
    let mut worst = Duration::ZERO;
    for i in 1..=ticks {
        let due = start + period * i;
        let now = Instant::now();
        if due > now {
            match runtime {
                asyncffi::Runtime::AsyncStd => async_std::task::sleep(due - now).await,
                _ => tokio::time::sleep(due - now).await,
            }
        }
        worst = worst.max(Instant::now().saturating_duration_since(due));
        log::warn!(target: "testlib::ticks", tick = i; "tick {i}");
    }
    worst.as_secs_f64()
}
