//! A test harness for integration tests that need Python (feature `testing`): `cargo test`'s
//! own harness cannot give Python the main thread, so a test target with `harness = false`
//! calls [`main`] with its tests. Python's event loop runs on the main thread, each test on the
//! runtime as a Rust main would (`asyncffi::python::run`), one after the other, with libtest's
//! conventions: name filters (substring, or `--exact`), `--list`, `--ignored` and
//! `--include-ignored`, a timeout per test (`--timeout SECONDS`, default 60), a failing,
//! panicking or timed-out test not stopping the others, and libtest's summary line. Exit
//! status: 0 if every test run passed, 101 otherwise.
//!
//! ```no_run
//! use asyncffi::testing::Test;
//!
//! async fn sleeps() -> asyncffi::Result<()> {
//!     asyncffi::python::import("asyncio")?.attr("sleep")?.call((0.01,)).await?;
//!     Ok(())
//! }
//!
//! asyncffi::testing::main(vec![Test::new("sleeps", || Box::pin(sleeps()))]);
//! ```

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::boundary::catching;
use crate::python::{self, Config};
use crate::value::Result;

/// The future of one test.
pub type TestFuture = Pin<Box<dyn Future<Output = Result<()>> + Send>>;

/// One test: its name, how to start it, whether it is ignored unless asked for.
pub struct Test {
    /// Its name, as filters match it.
    pub name: &'static str,
    /// Makes its future.
    pub run: fn() -> TestFuture,
    /// Run only with `--ignored` or `--include-ignored`.
    pub ignored: bool,
}

impl Test {
    /// A test that runs unless filtered out.
    pub fn new(name: &'static str, run: fn() -> TestFuture) -> Test {
        Test {
            name,
            run,
            ignored: false,
        }
    }

    /// The same test, ignored unless asked for.
    pub fn ignored(self) -> Test {
        Test {
            ignored: true,
            ..self
        }
    }
}

/// The command line, as libtest reads it.
#[derive(Debug, Default, PartialEq)]
struct Options {
    filters: Vec<String>,
    exact: bool,
    list: bool,
    ignored: bool,
    include_ignored: bool,
    timeout: Option<Duration>,
}

fn parse(args: impl Iterator<Item = String>) -> std::result::Result<Options, String> {
    let mut options = Options::default();
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--exact" => options.exact = true,
            "--list" => options.list = true,
            "--ignored" => options.ignored = true,
            "--include-ignored" => options.include_ignored = true,
            "--timeout" => {
                let value = args.next().ok_or("--timeout needs a number of seconds")?;
                let seconds: f64 = value
                    .parse()
                    .map_err(|_| format!("--timeout {value:?}: not a number of seconds"))?;
                options.timeout = Some(Duration::from_secs_f64(seconds));
            }
            // Accepted for cargo's sake; tests run one at a time, output is not captured.
            "--nocapture" | "--show-output" | "-q" | "--quiet" => {}
            "--test-threads" | "--format" | "--color" => {
                args.next();
            }
            s if s.starts_with("--test-threads=") || s.starts_with("--format=") => {}
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            _ => options.filters.push(arg),
        }
    }
    Ok(options)
}

impl Options {
    fn selects(&self, test: &Test) -> bool {
        let name = test.name;
        if self.ignored && !test.ignored {
            return false;
        }
        self.filters.is_empty()
            || self.filters.iter().any(|f| {
                if self.exact {
                    f == name
                } else {
                    name.contains(f.as_str())
                }
            })
    }
}

/// Runs `tests` as libtest would and exits the process (see the module documentation).
pub fn main(tests: Vec<Test>) -> ! {
    let options = match parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(101);
        }
    };
    if options.list {
        let listed: Vec<&Test> = tests.iter().filter(|t| options.selects(t)).collect();
        for test in &listed {
            println!("{}: test", test.name);
        }
        println!("\n{} tests, 0 benchmarks", listed.len());
        std::process::exit(0);
    }
    let status = python::run(Config::new(), run_all(tests, options));
    if status == 0 && FAILED.load(Ordering::SeqCst) {
        std::process::exit(101);
    }
    std::process::exit(status)
}

/// Whether a test failed (the main itself still ends with `Ok`, so that the status is
/// libtest's 101 rather than an error's 1).
static FAILED: AtomicBool = AtomicBool::new(false);

/// How one test ended.
enum Outcome {
    Passed,
    Failed(String),
}

async fn run_all(tests: Vec<Test>, options: Options) -> Result<()> {
    let started = Instant::now();
    let total = tests.len();
    let selected: Vec<Test> = tests.into_iter().filter(|t| options.selects(t)).collect();
    let filtered_out = total - selected.len();
    let timeout = options.timeout.unwrap_or(Duration::from_secs(60));
    println!(
        "\nrunning {} test{}",
        selected.len(),
        if selected.len() == 1 { "" } else { "s" }
    );
    let (mut passed, mut ignored) = (0, 0);
    let mut failures = Vec::new();
    for test in selected {
        if test.ignored && !options.ignored && !options.include_ignored {
            println!("test {} ... ignored", test.name);
            ignored += 1;
            continue;
        }
        match run_one(test.run, timeout).await {
            Outcome::Passed => {
                println!("test {} ... ok", test.name);
                passed += 1;
            }
            Outcome::Failed(why) => {
                println!("test {} ... FAILED", test.name);
                failures.push((test.name, why));
            }
        }
    }
    if !failures.is_empty() {
        println!("\nfailures:\n");
        for (name, why) in &failures {
            println!("---- {name} stdout ----\n{why}\n");
        }
        println!("failures:");
        for (name, _) in &failures {
            println!("    {name}");
        }
    }
    println!(
        "\ntest result: {}. {passed} passed; {} failed; {ignored} ignored; 0 measured; \
         {filtered_out} filtered out; finished in {:.2}s\n",
        if failures.is_empty() { "ok" } else { "FAILED" },
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    FAILED.store(!failures.is_empty(), Ordering::SeqCst);
    Ok(())
}

async fn run_one(make: fn() -> TestFuture, timeout: Duration) -> Outcome {
    let future = match catching(make) {
        Ok(future) => future,
        Err(payload) => return Outcome::Failed(panic_message(&*payload)),
    };
    let deadline = Deadline::new(timeout);
    Guarded { future, deadline }.await
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-string payload".to_owned());
    format!("panicked: {message}")
}

/// A test's future, polled with panics caught, failing when its deadline passes (the future
/// is then dropped, which cancels the Python calls it was awaiting).
struct Guarded {
    future: TestFuture,
    deadline: Deadline,
}

impl Future for Guarded {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let this = &mut *self;
        let polled = catching(AssertUnwindSafe(|| this.future.as_mut().poll(cx)));
        match polled {
            Err(payload) => Poll::Ready(Outcome::Failed(panic_message(&*payload))),
            Ok(Poll::Ready(Ok(()))) => Poll::Ready(Outcome::Passed),
            Ok(Poll::Ready(Err(e))) => Poll::Ready(Outcome::Failed(format!("Error: {e}"))),
            Ok(Poll::Pending) if this.deadline.passed(cx.waker()) => Poll::Ready(Outcome::Failed(
                format!("timed out after {:?}", this.deadline.timeout),
            )),
            Ok(Poll::Pending) => Poll::Pending,
        }
    }
}

/// A timeout that needs no runtime's timer: a thread sleeps, then wakes the test.
struct Deadline {
    timeout: Duration,
    passed: Arc<AtomicBool>,
    waker: Arc<Mutex<Option<Waker>>>,
    started: bool,
}

impl Deadline {
    fn new(timeout: Duration) -> Deadline {
        Deadline {
            timeout,
            passed: Arc::new(AtomicBool::new(false)),
            waker: Arc::new(Mutex::new(None)),
            started: false,
        }
    }

    fn passed(&mut self, waker: &Waker) -> bool {
        *self.waker.lock().unwrap_or_else(|e| e.into_inner()) = Some(waker.clone());
        if !self.started {
            self.started = true;
            let (timeout, passed, slot) = (self.timeout, self.passed.clone(), self.waker.clone());
            std::thread::spawn(move || {
                std::thread::sleep(timeout);
                passed.store(true, Ordering::SeqCst);
                if let Some(w) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    w.wake();
                }
            });
        }
        self.passed.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> impl Iterator<Item = String> + '_ {
        s.split_whitespace().map(str::to_owned)
    }

    #[test]
    fn the_command_line_is_read_as_libtest_reads_it() {
        let options = parse(args("sleep --exact --timeout 0.5 --ignored --nocapture")).unwrap();
        assert_eq!(options.filters, ["sleep"]);
        assert!(options.exact && options.ignored && !options.list);
        assert_eq!(options.timeout, Some(Duration::from_millis(500)));
        let test = |name: &'static str| Test::new(name, || Box::pin(async { Ok(()) }));
        assert!(options.selects(&test("sleep").ignored()));
        assert!(
            !options.selects(&test("sleep")),
            "--ignored runs only ignored tests"
        );
        assert!(!options.selects(&test("sleep_more").ignored()), "--exact");
        let options = parse(args("sle")).unwrap();
        assert!(options.selects(&test("sleep")) && !options.selects(&test("other")));
        assert!(parse(args("--bogus")).is_err());
        assert!(parse(args("--timeout x")).is_err());
    }
}
