//! The library's own runtimes, as an author who already has them would hand them over: its
//! tokio runtime, built by asyncffi from the library's builder (two workers named
//! `testlib-tokio`), and a smol executor registered as `smol`, driven by two threads of its
//! own (`testlib-smol`) and stopped at interpreter exit. Exercised by
//! `tests/test_own_runtime.py`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use asyncffi::runtime::own::{Executor, Task};
use asyncffi::Value;

asyncffi::tokio_runtime!(|| {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder
        .worker_threads(2)
        .thread_name("testlib-tokio")
        .enable_all();
    builder
});

asyncffi::register_runtime!("smol", Smol::start);

/// A smol executor on threads of its own.
struct Smol {
    executor: Arc<smol::Executor<'static>>,
    /// Closed to stop the threads.
    stop: smol::channel::Sender<()>,
    /// One message per thread that stopped.
    stopped: Mutex<mpsc::Receiver<()>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Smol {
    const THREADS: usize = 2;

    fn start() -> Smol {
        let executor = Arc::new(smol::Executor::new());
        let (stop, stop_rx) = smol::channel::bounded::<()>(1);
        let (stopped_tx, stopped) = mpsc::channel();
        let threads = (0..Smol::THREADS)
            .map(|_| {
                let executor = executor.clone();
                let stop_rx = stop_rx.clone();
                let stopped_tx = stopped_tx.clone();
                std::thread::Builder::new()
                    .name("testlib-smol".into())
                    .spawn(move || {
                        // Runs tasks until the stop channel closes.
                        let _ = smol::block_on(executor.run(stop_rx.recv()));
                        let _ = stopped_tx.send(());
                    })
                    .expect("a thread for the smol executor")
            })
            .collect();
        Smol {
            executor,
            stop,
            stopped: Mutex::new(stopped),
            threads: Mutex::new(threads),
        }
    }
}

impl Executor for Smol {
    fn spawn(&self, task: Task) {
        self.executor.spawn(task).detach();
    }

    fn shutdown(&self, timeout: Duration) {
        self.stop.close();
        let deadline = Instant::now() + timeout;
        let stopped = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
        let mut threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        for _ in 0..threads.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if stopped.recv_timeout(left).is_err() {
                return; // a thread still busy: left running, as the process ends anyway
            }
        }
        for thread in threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Guards alive now and guards dropped so far (`Guard`).
static LIVE_GUARDS: AtomicU64 = AtomicU64::new(0);
static DROPPED_GUARDS: AtomicU64 = AtomicU64::new(0);

/// Counts its own drop: held across an await, it shows whether a cancelled future was dropped.
struct Guard;

impl Guard {
    fn new() -> Guard {
        LIVE_GUARDS.fetch_add(1, Ordering::SeqCst);
        Guard
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        LIVE_GUARDS.fetch_sub(1, Ordering::SeqCst);
        DROPPED_GUARDS.fetch_add(1, Ordering::SeqCst);
    }
}

/// `(alive, dropped)`: the guards held by running futures, and those dropped so far.
#[asyncffi::export]
fn guards() -> (u64, u64) {
    (
        LIVE_GUARDS.load(Ordering::SeqCst),
        DROPPED_GUARDS.load(Ordering::SeqCst),
    )
}

fn thread_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("<unnamed>")
        .to_owned()
}

/// `value` back, from the smol executor.
#[asyncffi::export(runtime = "smol")]
async fn smol_echo(value: Value) -> Value {
    smol::future::yield_now().await;
    value
}

/// The name of the thread that runs the future after `delay` on smol's timer.
#[asyncffi::export(runtime = "smol")]
async fn smol_thread(delay: Duration) -> String {
    smol::Timer::after(delay).await;
    thread_name()
}

/// An error of kind `SmolError` with `message`, from the smol executor.
#[asyncffi::export(runtime = "smol", error_kind = "SmolError")]
async fn smol_fail(message: String) -> Result<i64, String> {
    smol::future::yield_now().await;
    Err(message)
}

/// Panics with `message` on the smol executor.
#[asyncffi::export(runtime = "smol")]
async fn smol_panic(message: String) -> i64 {
    smol::future::yield_now().await;
    panic!("{message}")
}

/// Holds a `Guard` for `seconds` on smol's timer, then returns `x`.
#[asyncffi::export(runtime = "smol")]
async fn smol_hold(x: i64, seconds: Duration) -> i64 {
    let _guard = Guard::new();
    smol::Timer::after(seconds).await;
    x
}

/// The name of the thread that runs the future once it has left the caller's thread (the
/// library's own tokio runtime's workers).
#[asyncffi::export]
async fn tokio_thread() -> String {
    tokio::task::yield_now().await;
    thread_name()
}

/// Holds a `Guard` for `seconds` on the library's tokio runtime, then returns `x`.
#[asyncffi::export]
async fn tokio_hold(x: i64, seconds: Duration) -> i64 {
    let _guard = Guard::new();
    tokio::time::sleep(seconds).await;
    x
}
