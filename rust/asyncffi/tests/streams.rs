//! Streams both ways without Python: Rust streams delivered as items on a port (order, credit,
//! errors, cancellation) and Python iterators read by Rust (Pull requests, feeding, ending,
//! release, port close), with this test thread playing the Python side of the protocol.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use asyncffi::port::{AffiCompletion, AffiOutcome, AffiRequest, AffiTag, AffiWake, Port};
use asyncffi::stats::{LIVE_PORTS, LIVE_PY_ERRORS, LIVE_PY_STREAMS, LIVE_TASKS, LIVE_VALUES};
use asyncffi::{
    codec, pystream, spawn, spawn_stream, stream, task, AffiStatus, Error, PyStream, PythonError,
    Runtime, Stream, Value,
};

const RUNTIMES: [Runtime; 2] = [Runtime::Tokio, Runtime::AsyncStd];
const ITEM: i32 = AffiOutcome::Item as i32;
const ITEMS: i32 = AffiOutcome::Items as i32;
const OK: i32 = AffiOutcome::Ok as i32;
const PULL: i32 = AffiRequest::Pull as i32;
const RELEASE: i32 = AffiRequest::Release as i32;

/// The tests of this file run one at a time: each checks that the live counters it moved are
/// back where they started.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Tasks, heap payloads, ports, Python iterators and exceptions alive now.
fn live() -> [i64; 5] {
    [
        LIVE_TASKS.get(),
        LIVE_VALUES.get(),
        LIVE_PORTS.get(),
        LIVE_PY_STREAMS.get(),
        LIVE_PY_ERRORS.get(),
    ]
}

/// Waits up to `timeout` for `done`; returns whether it became true.
fn eventually(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Asserts the live counters return to `before` (a task is dropped just after its outcome).
fn assert_nothing_left(before: [i64; 5]) {
    eventually(Duration::from_secs(2), || live() == before);
    assert_eq!(
        live(),
        before,
        "[tasks, values, ports, py streams, py errors] leaked"
    );
}

fn open() -> u64 {
    Port::open(AffiWake::Fd).unwrap()
}

fn close(port: u64) {
    Port::close(port).unwrap();
}

/// Everything queued on `port` now (up to 256), as Python's drain reads it.
fn drain(port: u64) -> Vec<AffiCompletion> {
    let mut buf = [AffiCompletion::default(); 256];
    let n = Port::get(port).unwrap().drain(&mut buf);
    buf[..n].to_vec()
}

/// Drains `port` until `n` completions arrived or `timeout` passed.
fn drain_n(port: u64, n: usize, timeout: Duration) -> Vec<AffiCompletion> {
    let mut got = Vec::new();
    eventually(timeout, || {
        got.extend(drain(port));
        got.len() >= n
    });
    got
}

/// What arrives on `port` within `wait` (meant to be nothing).
fn arrivals(port: u64, wait: Duration) -> Vec<AffiCompletion> {
    std::thread::sleep(wait);
    drain(port)
}

/// The next completion on `port`, waiting up to 5 s for it.
fn next_completion(port: u64) -> AffiCompletion {
    let mut buf = [AffiCompletion::default(); 1];
    let arrived = eventually(Duration::from_secs(5), || {
        Port::get(port).unwrap().drain(&mut buf) == 1
    });
    assert!(arrived, "nothing arrived on port {port:#x}");
    buf[0]
}

fn release(port: u64) {
    Port::get(port).unwrap().release();
}

/// The packed payload of `c`, decoded (valid until `release`).
fn decoded(c: &AffiCompletion) -> Value {
    assert_eq!(c.tag, AffiTag::Packed as u32);
    // SAFETY: the port keeps `data` alive until `release`, which callers run after this.
    codec::decode(unsafe { std::slice::from_raw_parts(c.data, c.len) }).unwrap()
}

fn str_of(c: &AffiCompletion) -> String {
    assert_eq!(c.tag, AffiTag::Str as u32);
    // SAFETY: as in `decoded`.
    String::from_utf8(unsafe { std::slice::from_raw_parts(c.data, c.len) }.to_vec()).unwrap()
}

fn ints(values: impl IntoIterator<Item = i64>) -> Vec<Value> {
    values.into_iter().map(Value::Int).collect()
}

fn pair(kind: &str, message: &str) -> Value {
    Value::List(vec![Value::Str(kind.into()), Value::Str(message.into())])
}

/// The status of a failed call (panics on success).
fn status<T: std::fmt::Debug>(result: Result<T, asyncffi::Failure>) -> AffiStatus {
    result.unwrap_err().status
}

struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

// === Rust streams read by Python ===

/// The value of a completion, as Python rebuilds it (valid until `release`).
fn value_of(c: &AffiCompletion) -> Value {
    match c.tag {
        t if t == AffiTag::None as u32 => Value::None,
        t if t == AffiTag::Bool as u32 => Value::Bool(c.int_value != 0),
        t if t == AffiTag::Int as u32 => Value::Int(c.int_value),
        t if t == AffiTag::Float as u32 => Value::Float(c.float_value),
        t if t == AffiTag::Str as u32 => Value::Str(str_of(c)),
        t if t == AffiTag::Packed as u32 => decoded(c),
        other => panic!("unexpected tag {other}"),
    }
}

/// What Python receives for one stream call: its items in order, then its end.
#[derive(Default)]
struct Received {
    items: Vec<Value>,
    /// The status and value of the outcome that ended the stream.
    end: Option<(i32, Value)>,
}

impl Received {
    /// Drains `port` once, as Python does: items come one per completion (`Item`) or as a
    /// packed batch (`Items`). Returns how many items arrived.
    fn drain(&mut self, port: u64, token: u64) -> u64 {
        let before = self.items.len();
        for c in drain(port) {
            assert_eq!(c.token, token);
            assert!(self.end.is_none(), "a completion after the end");
            match c.status {
                ITEM => self.items.push(value_of(&c)),
                ITEMS => match decoded(&c) {
                    Value::List(batch) => self.items.extend(batch),
                    other => panic!("a batch of items is a list, not {other:?}"),
                },
                status => self.end = Some((status, value_of(&c))),
            }
        }
        release(port);
        (self.items.len() - before) as u64
    }

    /// Drains `port` until `done` or 5 s passed.
    fn wait(&mut self, port: u64, token: u64, done: impl Fn(&Self) -> bool) {
        eventually(Duration::from_secs(5), || {
            self.drain(port, token);
            done(self)
        });
    }
}

#[test]
fn every_item_arrives_in_order_then_one_ok_outcome() {
    let _serial = serial();
    const N: i64 = 10_000;
    const BUFFER: u64 = 64;
    for runtime in RUNTIMES {
        let before = live();
        let port = open();
        let items = stream::iter((0..N).map(|i| Ok(Value::Int(i))));
        let task = spawn_stream(runtime, port, 7, items, BUFFER).unwrap();
        let mut got = Received::default();
        let mut granted = 0u64;
        let deadline = Instant::now() + Duration::from_secs(20);
        while got.end.is_none() {
            assert!(Instant::now() < deadline, "{runtime:?}: stuck");
            let taken = got.drain(port, 7);
            assert!(
                got.items.len() as u64 <= BUFFER + granted,
                "{runtime:?}: {} items sent with {granted} credits granted",
                got.items.len()
            );
            if taken == 0 {
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            // The consumer gives back what it took; the stream may have ended meanwhile.
            match task::grant(task, taken) {
                Ok(()) => granted += taken,
                Err(f) => assert_eq!(f.status, AffiStatus::ErrClosed),
            }
        }
        assert!(
            got.items == ints(0..N),
            "{runtime:?}: items lost or reordered"
        );
        assert_eq!(got.end, Some((OK, Value::None)));
        assert!(arrivals(port, Duration::from_millis(20)).is_empty());
        assert!(
            eventually(Duration::from_secs(2), || task::grant(task, 1).is_err()),
            "the task outlived its stream"
        );
        assert_eq!(status(task::grant(task, 1)), AffiStatus::ErrClosed);
        close(port);
        assert_nothing_left(before);
    }
}

#[test]
fn a_stream_runs_at_most_its_credit_ahead() {
    let _serial = serial();
    let before = live();
    let port = open();
    let produced = Arc::new(AtomicU64::new(0));
    let counter = produced.clone();
    let items = stream::iter((0..).map(move |i: i64| {
        counter.fetch_add(1, Ordering::SeqCst);
        Ok(Value::Int(i))
    }));
    let task = spawn_stream(Runtime::Tokio, port, 3, items, 8).unwrap();

    let mut got = Received::default();
    got.wait(port, 3, |got| got.items.len() >= 8);
    // Nobody grants: the producer stays stopped, whatever the wait.
    std::thread::sleep(Duration::from_millis(100));
    got.drain(port, 3);
    assert_eq!(got.items, ints(0..8));
    assert_eq!(produced.load(Ordering::SeqCst), 8);

    task::grant(task, 5).unwrap();
    got.wait(port, 3, |got| got.items.len() >= 13);
    std::thread::sleep(Duration::from_millis(100));
    got.drain(port, 3);
    assert_eq!(got.items, ints(0..13));
    assert_eq!(produced.load(Ordering::SeqCst), 13);
    assert!(got.end.is_none());

    task::cancel(task).unwrap();
    close(port);
    assert_nothing_left(before);
    assert_eq!(produced.load(Ordering::SeqCst), 13);
}

#[test]
fn an_err_item_ends_the_stream_with_its_error() {
    let _serial = serial();
    let before = live();
    let port = open();
    let pulled_past_error = Arc::new(AtomicBool::new(false));
    let flag = pulled_past_error.clone();
    let items = stream::iter((1..=4).map(move |i| match i {
        3 => Err(Error::new("parse", "bad row 3")),
        4 => {
            flag.store(true, Ordering::SeqCst);
            Ok(Value::Int(4))
        }
        _ => Ok(Value::Int(i)),
    }));
    let task = spawn_stream(Runtime::Tokio, port, 11, items, 16).unwrap();
    let mut got = Received::default();
    got.wait(port, 11, |got| got.end.is_some());
    assert_eq!(got.items, ints([1, 2]));
    assert_eq!(
        got.end,
        Some((AffiOutcome::Error as i32, pair("parse", "bad row 3")))
    );
    assert!(arrivals(port, Duration::from_millis(50)).is_empty());
    assert!(!pulled_past_error.load(Ordering::SeqCst));
    assert!(eventually(Duration::from_secs(2), || task::grant(task, 1).is_err()));
    close(port);
    assert_nothing_left(before);
}

#[test]
fn a_panicking_stream_ends_with_a_panic_outcome_after_its_items() {
    let _serial = serial();
    let before = live();
    let port = open();
    let items = stream::unfold(0i64, |n| async move {
        if n == 2 {
            panic!("stream broke at {n}");
        }
        Some((Ok(Value::Int(n)), n + 1))
    });
    spawn_stream(Runtime::AsyncStd, port, 4, items, 0).unwrap();
    let mut got = Received::default();
    got.wait(port, 4, |got| got.end.is_some());
    assert_eq!(got.items, ints([0, 1]));
    assert_eq!(
        got.end,
        Some((
            AffiOutcome::Panic as i32,
            Value::Str("stream broke at 2".into())
        ))
    );
    assert!(arrivals(port, Duration::from_millis(20)).is_empty());
    close(port);
    assert_nothing_left(before);
}

#[test]
fn cancel_drops_a_stream_waiting_for_credit_and_delivers_nothing_more() {
    let _serial = serial();
    for runtime in RUNTIMES {
        let before = live();
        let port = open();
        let dropped = Arc::new(AtomicBool::new(false));
        let guard = DropFlag(dropped.clone());
        let items = stream::unfold((guard, 0i64), |(guard, i)| async move {
            Some((Ok(Value::Int(i)), (guard, i + 1)))
        });
        let task = spawn_stream(runtime, port, 2, items, 4).unwrap();
        let mut got = Received::default();
        got.wait(port, 2, |got| got.items.len() >= 4);
        // Out of credit now: the stream waits, alive.
        std::thread::sleep(Duration::from_millis(20));
        got.drain(port, 2);
        assert_eq!(got.items, ints(0..4));
        assert!(!dropped.load(Ordering::SeqCst));

        let start = Instant::now();
        task::cancel(task).unwrap();
        assert!(
            eventually(Duration::from_secs(2), || dropped.load(Ordering::SeqCst)),
            "{runtime:?} kept the stream"
        );
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{runtime:?}: slow"
        );
        assert!(
            arrivals(port, Duration::from_millis(50)).is_empty(),
            "{runtime:?}: something arrived after cancel"
        );
        assert!(eventually(Duration::from_secs(2), || task::cancel(task).is_err()));
        assert_eq!(status(task::cancel(task)), AffiStatus::ErrClosed);
        assert_eq!(status(task::grant(task, 1)), AffiStatus::ErrClosed);
        close(port);
        assert_nothing_left(before);
    }
}

#[test]
fn closing_the_port_drops_a_stream_that_is_always_ready_with_credit_to_spare() {
    // Items ready at once and a buffer no consumer reaches: the task must still go back to
    // its runtime now and then, see the port close and drop its stream.
    let _serial = serial();
    for runtime in RUNTIMES {
        let before = live();
        let port = open();
        let dropped = Arc::new(AtomicBool::new(false));
        let guard = DropFlag(dropped.clone());
        let items = stream::unfold((guard, 0i64), |(guard, i)| async move {
            Some((Ok(Value::Int(i)), (guard, i + 1)))
        });
        spawn_stream(runtime, port, 2, items, 1 << 40).unwrap();
        assert!(eventually(Duration::from_secs(2), || {
            let got = !drain(port).is_empty();
            Port::get(port).unwrap().release();
            got
        }));
        close(port);
        assert!(
            eventually(Duration::from_secs(5), || dropped.load(Ordering::SeqCst)),
            "{runtime:?} kept running the stream after its port closed"
        );
        assert_nothing_left(before);
    }
}

#[test]
fn grant_refuses_tasks_that_are_not_streams() {
    let _serial = serial();
    let before = live();
    let port = open();
    let task = spawn(Runtime::Tokio, port, 1, async {
        std::future::pending::<()>().await;
        Ok(Value::None)
    })
    .unwrap();
    assert_eq!(status(task::grant(task, 1)), AffiStatus::ErrValue);
    task::cancel(task).unwrap();
    close(port);
    assert_nothing_left(before);
}

// === Python iterators read by Rust ===

/// One poll of `stream` on this thread, with a waker that does nothing.
fn poll(stream: &mut PyStream) -> Poll<Option<Result<Value, PythonError>>> {
    Pin::new(stream).poll_next(&mut Context::from_waker(Waker::noop()))
}

/// `poll`, expecting an item.
fn take(stream: &mut PyStream) -> Value {
    match poll(stream) {
        Poll::Ready(Some(Ok(v))) => v,
        other => panic!("expected an item, got {other:?}"),
    }
}

/// The Pull requests queued on `port` now, as `(items asked, object id)`.
fn pulls(port: u64) -> Vec<(u64, i64)> {
    drain(port)
        .iter()
        .map(|c| {
            assert_eq!(c.status, PULL, "expected only Pull requests");
            (c.token, c.int_value)
        })
        .collect()
}

#[test]
fn a_pystream_asks_for_its_prefetch_and_refuses_more_than_asked() {
    let _serial = serial();
    let before = live();
    let port = open();
    const OBJ: u64 = 1001;
    let mut stream = PyStream::adopt(port, OBJ).unwrap().with_prefetch(8);
    assert_eq!(
        status(PyStream::adopt(port, OBJ)),
        AffiStatus::ErrValue,
        "adopted twice"
    );
    assert!(drain(port).is_empty(), "pulled before Rust asked");

    assert!(poll(&mut stream).is_pending());
    assert_eq!(pulls(port), [(8, OBJ as i64)]);
    assert!(poll(&mut stream).is_pending());
    assert!(pulls(port).is_empty(), "asked again for items on their way");

    let refused = pystream::feed(OBJ, ints(0..9)).unwrap_err();
    assert_eq!(refused.status, AffiStatus::ErrValue);
    assert_eq!(refused.message, "9 items sent, 8 asked for");
    pystream::feed(OBJ, ints(0..3)).unwrap();
    pystream::feed(OBJ, ints(3..8)).unwrap();
    assert_eq!(status(pystream::feed(OBJ, ints([8]))), AffiStatus::ErrValue);

    // Rust asks again once what it holds falls to half the prefetch, for what is missing.
    for expected in 0..3 {
        assert_eq!(take(&mut stream), Value::Int(expected));
        assert!(pulls(port).is_empty());
    }
    assert_eq!(take(&mut stream), Value::Int(3));
    assert_eq!(pulls(port), [(4, OBJ as i64)]);
    assert_eq!(
        status(pystream::feed(OBJ, ints(8..13))),
        AffiStatus::ErrValue
    );
    pystream::feed(OBJ, ints(8..12)).unwrap();

    // An exception ends the iterator: the items sent before it, then it, then the end.
    pystream::end(OBJ, Err(PythonError::new("ValueError", "bad")), 0).unwrap();
    assert_eq!(
        status(pystream::end(OBJ, Ok(()), 0)),
        AffiStatus::ErrValue,
        "ended twice"
    );
    assert_eq!(status(pystream::feed(OBJ, vec![])), AffiStatus::ErrValue);
    for expected in 4..12 {
        assert_eq!(take(&mut stream), Value::Int(expected));
    }
    assert!(pulls(port).is_empty(), "asked for items after the end");
    match poll(&mut stream) {
        Poll::Ready(Some(Err(e))) => {
            assert_eq!(
                (e.type_name.as_str(), e.message.as_str()),
                ("ValueError", "bad")
            )
        }
        other => panic!("expected the exception, got {other:?}"),
    }
    assert!(matches!(poll(&mut stream), Poll::Ready(None)));
    assert!(matches!(poll(&mut stream), Poll::Ready(None)));
    // Still refused once the reader has taken the end.
    assert_eq!(status(pystream::feed(OBJ, ints([1]))), AffiStatus::ErrValue);
    assert_eq!(status(pystream::end(OBJ, Ok(()), 0)), AffiStatus::ErrValue);

    // Dropping it releases the Python iterator, once.
    assert_eq!(LIVE_PY_STREAMS.get(), before[3] + 1);
    drop(stream);
    let got = drain(port);
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].status, got[0].int_value), (RELEASE, OBJ as i64));
    assert_eq!(
        status(pystream::feed(OBJ, ints([1]))),
        AffiStatus::ErrClosed
    );
    assert_eq!(status(pystream::end(OBJ, Ok(()), 0)), AffiStatus::ErrClosed);
    close(port);
    assert_nothing_left(before);
}

#[test]
fn a_tokio_task_sums_a_pystream_fed_in_batches() {
    let _serial = serial();
    let before = live();
    let port = open();
    const OBJ: u64 = 1002;
    const PREFETCH: u64 = 8;
    const N: i64 = 1000;
    let stream = PyStream::adopt(port, OBJ).unwrap().with_prefetch(PREFETCH);
    let consumed = Arc::new(AtomicU64::new(0));
    let counter = consumed.clone();
    let task = spawn(Runtime::Tokio, port, 5, async move {
        let mut stream = stream;
        let mut sum = 0;
        while let Some(item) = stream::next(&mut stream).await {
            match item? {
                Value::Int(i) => sum += i,
                other => return Err(Error::new("type", format!("{other:?}"))),
            }
            counter.fetch_add(1, Ordering::SeqCst);
        }
        Ok(Value::Int(sum))
    })
    .unwrap();
    assert_ne!(
        task, 0,
        "nothing to sum yet: the call cannot finish at once"
    );

    // Python's side: answer each Pull with what was asked, in batches of at most 3.
    let (mut asked, mut fed, mut outstanding) = (0u64, 0i64, 0u64);
    let mut asks = Vec::new();
    let (mut result, mut released, mut ended) = (None, false, false);
    while result.is_none() || !released {
        let c = next_completion(port);
        match c.status {
            PULL => {
                assert_eq!(c.int_value, OBJ as i64);
                assert!((1..=PREFETCH).contains(&c.token), "asked for {}", c.token);
                asked += c.token;
                outstanding += c.token;
                asks.push(c.token);
                // Rust cannot have taken more than was sent.
                assert!(
                    asked <= fed as u64 + PREFETCH,
                    "asked for {asked} items with {fed} sent: beyond the prefetch"
                );
            }
            RELEASE => {
                assert_eq!(c.int_value, OBJ as i64);
                assert!(!released, "released twice");
                released = true;
            }
            OK => {
                assert_eq!(c.token, 5);
                result = Some(c.int_value);
            }
            other => panic!("unexpected completion status {other}"),
        }
        while outstanding > 0 && fed < N {
            let n = outstanding.min(3).min((N - fed) as u64);
            pystream::feed(OBJ, ints(fed + 1..=fed + n as i64)).unwrap();
            fed += n as i64;
            outstanding -= n;
        }
        if fed == N && !ended {
            pystream::end(OBJ, Ok(()), 0).unwrap();
            ended = true;
        }
    }
    assert_eq!(result, Some(N * (N + 1) / 2));
    assert_eq!(consumed.load(Ordering::SeqCst), N as u64);
    assert_eq!(asks[0], PREFETCH, "the first request fills the prefetch");
    assert!(
        asked >= N as u64 && asked <= N as u64 + PREFETCH,
        "asked {asked}"
    );
    assert!(arrivals(port, Duration::from_millis(20)).is_empty());
    assert_eq!(status(pystream::feed(OBJ, vec![])), AffiStatus::ErrClosed);
    close(port);
    assert_nothing_left(before);
}

#[test]
fn dropping_an_unread_pystream_releases_it_without_pulling() {
    let _serial = serial();
    let before = live();
    let port = open();
    const OBJ: u64 = 1003;
    let stream = PyStream::adopt(port, OBJ).unwrap();
    assert_eq!(LIVE_PY_STREAMS.get(), before[3] + 1);
    drop(stream);
    let got = drain(port);
    assert_eq!(got.len(), 1, "exactly one request: the release");
    assert_eq!((got[0].status, got[0].int_value), (RELEASE, OBJ as i64));
    // The id is free again: a later call may pass the same iterator.
    drop(PyStream::adopt(port, OBJ).unwrap());
    assert_eq!(drain(port).len(), 1);
    close(port);
    assert_eq!(status(PyStream::adopt(port, OBJ)), AffiStatus::ErrClosed);
    assert_nothing_left(before);
}

#[test]
fn closing_the_port_ends_a_waiting_pystream_with_closed_error() {
    let _serial = serial();
    let before = live();
    // The iterator comes from the loop of port `python`; the reading task reports to `rust`.
    let (python, rust) = (open(), open());
    const OBJ: u64 = 1004;
    let stream = PyStream::adopt(python, OBJ).unwrap();
    let consumed = Arc::new(AtomicU64::new(0));
    let counter = consumed.clone();
    spawn(Runtime::Tokio, rust, 8, async move {
        let mut stream = stream;
        let mut seen = Vec::new();
        while let Some(item) = stream::next(&mut stream).await {
            seen.push(match item {
                Ok(v) => v,
                Err(e) => Value::Str(e.type_name),
            });
            counter.fetch_add(1, Ordering::SeqCst);
        }
        Ok(Value::List(seen))
    })
    .unwrap();
    let pull = next_completion(python);
    assert_eq!((pull.status, pull.int_value), (PULL, OBJ as i64));
    pystream::feed(OBJ, ints([1, 2])).unwrap();
    assert!(eventually(Duration::from_secs(5), || consumed
        .load(Ordering::SeqCst)
        == 2));
    // The reader now waits for more.
    assert!(arrivals(rust, Duration::from_millis(20)).is_empty());
    close(python);
    let outcome = next_completion(rust);
    assert_eq!(outcome.status, OK);
    assert_eq!(
        decoded(&outcome),
        Value::List(vec![
            Value::Int(1),
            Value::Int(2),
            Value::Str("closed".into())
        ])
    );
    release(rust);
    assert_eq!(
        status(pystream::feed(OBJ, ints([3]))),
        AffiStatus::ErrClosed
    );
    close(rust);
    assert_nothing_left(before);
}

#[test]
fn a_pystream_adopted_then_closed_ends_with_closed_error_when_polled() {
    let _serial = serial();
    let before = live();
    let port = open();
    const OBJ: u64 = 1005;
    let mut stream = PyStream::adopt(port, OBJ).unwrap();
    close(port);
    match poll(&mut stream) {
        Poll::Ready(Some(Err(e))) => assert_eq!(e.type_name, "closed"),
        other => panic!("expected a closed error, got {other:?}"),
    }
    assert!(matches!(poll(&mut stream), Poll::Ready(None)));
    drop(stream);
    assert_nothing_left(before);
}

#[test]
fn a_python_exception_ending_a_pystream_keeps_its_object() {
    let _serial = serial();
    let before = live();
    let port = open();
    const OBJ: u64 = 1006;
    const EXCEPTION: u64 = 42;
    let stream = PyStream::adopt(port, OBJ).unwrap();
    spawn(Runtime::AsyncStd, port, 6, async move {
        let mut stream = stream;
        while let Some(item) = stream::next(&mut stream).await {
            item?;
        }
        Ok(Value::None)
    })
    .unwrap();
    assert_eq!(next_completion(port).status, PULL);
    let error = PythonError::new("ValueError", "bad");
    pystream::end(OBJ, Err(error), EXCEPTION).unwrap();
    // The task returns the error as it came: the outcome names the original exception object.
    let mut got = drain_n(port, 2, Duration::from_secs(5));
    got.sort_by_key(|c| c.status);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].status, AffiOutcome::Error as i32);
    assert_eq!(
        decoded(&got[0]),
        Value::List(vec![
            Value::Str("ValueError".into()),
            Value::Str("bad".into()),
            Value::Int(EXCEPTION as i64)
        ])
    );
    assert_eq!((got[1].status, got[1].int_value), (RELEASE, OBJ as i64));
    assert_eq!(LIVE_PY_ERRORS.get(), before[4] + 1);
    // Once Python read the outcome, Rust lets go of the exception.
    release(port);
    let released = next_completion(port);
    assert_eq!(
        (released.status, released.int_value),
        (RELEASE, EXCEPTION as i64)
    );
    close(port);
    assert_nothing_left(before);
}
