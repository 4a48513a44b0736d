//! Rust's `log` (and, with the feature `tracing`, `tracing`) records in Python's `logging`.
//!
//! # The big picture
//!
//! 1. **Install.** When Python loads a library it calls `affi_log_install`: this module
//!    becomes the library's `log` logger (and its `tracing` global subscriber). There is no
//!    hook at which an author could call an init function of a cdylib before Python uses it
//!    (no `#[pymodule]`), so the load is the hook; an author who installed another logger
//!    first keeps it (install reports it and the bridge stays off for that crate).
//! 2. **Levels.** Python pushes the effective levels it knows (`affi_log_levels`: the root
//!    logger's level, every logger with a level of its own, and `logging.disable`'s floor)
//!    whenever its logging is reconfigured. A record's logger is its target with `::` turned
//!    into `.`; its threshold is that of the longest dotted prefix with a level, exactly as
//!    `Logger.getEffectiveLevel` walks its parents. `log::set_max_level` (and tracing's
//!    interest cache) are set from the most verbose threshold, so a call below every threshold
//!    costs one atomic load and never builds its message.
//! 3. **Push.** An enabled record is formatted on the thread that logs it and pushed onto a
//!    bounded queue under a lock held for the push only. A full queue drops the record and
//!    counts it: a logging thread never waits, neither for Python nor for the drainer.
//! 4. **Drain.** A Python thread waits in `affi_log_wait` (the GIL released) and takes the
//!    records in batches with `affi_log_drain`, one MessagePack buffer per batch; it hands them
//!    to `logging` under the GIL. Only the push that makes the queue non-empty wakes it.
//! 5. **Flush.** At interpreter exit Python closes the bridge (`affi_log_close`), stops its
//!    thread and drains what is left on the exiting thread, after the runtimes stopped and
//!    before `logging.shutdown` closes the handlers.
//!
//! # One bridge per library
//!
//! `log`'s logger and tracing's global dispatcher are statics, and every cdylib links its own
//! copy of `log`, `tracing-core` and this crate: each loaded library has its own logger, its
//! own queue, its own levels and its own Python thread, and one library's bridge never sees
//! another's records. A crate linked into two cdylibs logs through the copy of the library
//! that runs it. A Rust program that runs Python (`asyncffi::python`) is its own library.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::codec;
use crate::value::Value;

/// Python's `logging` levels (`logging.DEBUG` ...), and `TRACE` (5) for Rust's `trace`.
pub mod level {
    /// Rust's `trace` (below Python's `DEBUG`; `logging.getLevelName(5)` is `"Level 5"`).
    pub const TRACE: u8 = 5;
    /// `logging.DEBUG`.
    pub const DEBUG: u8 = 10;
    /// `logging.INFO`.
    pub const INFO: u8 = 20;
    /// `logging.WARNING`.
    pub const WARNING: u8 = 30;
    /// `logging.ERROR`.
    pub const ERROR: u8 = 40;
    /// Above every level a Rust record can have: nothing crosses.
    pub const OFF: u8 = u8::MAX;
}

/// Records the queue holds by default before it drops.
pub const DEFAULT_CAPACITY: usize = 8192;

/// One record on its way to Python.
#[derive(Debug)]
pub struct Record {
    /// Python's level number.
    pub level: u8,
    /// The Python logger's name (the Rust target, `::` turned into `.`).
    pub logger: String,
    /// The formatted message.
    pub message: String,
    /// The source file, if known.
    pub file: Option<String>,
    /// The source line (0 if unknown).
    pub line: u32,
    /// Structured fields: `log`'s key-values or tracing's fields.
    pub fields: Vec<(String, Value)>,
    /// Seconds since the Unix epoch when it was logged.
    pub created: f64,
    /// The name of the thread that logged it.
    pub thread: Option<String>,
}

/// The levels Python pushed, resolved per target on first use.
struct Levels {
    /// The dotted logger names with a level of their own (`""` is the root).
    explicit: HashMap<String, u8>,
    /// `logging.disable(n)` drops records of level <= n: records need a level above it.
    floor: u8,
    /// Threshold per Rust target, filled on first use, cleared when levels change.
    cache: HashMap<String, u8>,
}

impl Levels {
    fn resolve(&self, dotted: &str) -> u8 {
        let mut name = dotted;
        let own = loop {
            if let Some(level) = self.explicit.get(name) {
                break *level;
            }
            match name.rfind('.') {
                Some(at) => name = &name[..at],
                None => break self.explicit.get("").copied().unwrap_or(level::WARNING),
            }
        };
        own.max(self.floor.saturating_add(1))
    }
}

/// The bridge of this library (see the module docs).
struct Bridge {
    queue: Mutex<VecDeque<Record>>,
    ready: Condvar,
    capacity: AtomicUsize,
    closed: AtomicBool,
    crossed: AtomicU64,
    dropped: AtomicU64,
    /// The most verbose threshold of any logger (`level::OFF` before Python pushed levels).
    min_threshold: AtomicU8,
    levels: RwLock<Levels>,
    /// The last buffer `affi_log_drain` returned: valid until the next drain.
    drained: Mutex<Vec<u8>>,
}

static BRIDGE: std::sync::LazyLock<Bridge> = std::sync::LazyLock::new(|| Bridge {
    queue: Mutex::new(VecDeque::new()),
    ready: Condvar::new(),
    capacity: AtomicUsize::new(DEFAULT_CAPACITY),
    closed: AtomicBool::new(false),
    crossed: AtomicU64::new(0),
    dropped: AtomicU64::new(0),
    min_threshold: AtomicU8::new(level::OFF),
    levels: RwLock::new(Levels {
        explicit: HashMap::new(),
        floor: 0,
        cache: HashMap::new(),
    }),
    drained: Mutex::new(Vec::new()),
});

fn queue() -> MutexGuard<'static, VecDeque<Record>> {
    // No user code runs under this lock.
    BRIDGE.queue.lock().unwrap_or_else(|e| e.into_inner())
}

/// The logger name of a Rust target: `mylib::store` is `mylib.store`.
pub fn logger_name(target: &str) -> String {
    target.replace("::", ".")
}

/// Whether a record of Python level `level` from `target` crosses to Python now.
pub fn enabled(level: u8, target: &str) -> bool {
    if level < BRIDGE.min_threshold.load(Ordering::Relaxed) {
        return false;
    }
    let levels = BRIDGE.levels.read().unwrap_or_else(|e| e.into_inner());
    if let Some(threshold) = levels.cache.get(target) {
        return level >= *threshold;
    }
    let threshold = levels.resolve(&logger_name(target));
    drop(levels);
    let mut levels = BRIDGE.levels.write().unwrap_or_else(|e| e.into_inner());
    levels.cache.insert(target.to_owned(), threshold);
    level >= threshold
}

/// Sets the levels (see the module docs): `explicit` maps dotted logger names (`""` is the
/// root) to their own level, `floor` is `logging.disable`'s level (0 for none).
pub fn set_levels(explicit: HashMap<String, u8>, floor: u8) {
    let root = explicit.get("").copied().unwrap_or(level::WARNING);
    let min = explicit
        .values()
        .copied()
        .chain([root])
        .min()
        .unwrap_or(root);
    let min = min.max(floor.saturating_add(1));
    {
        let mut levels = BRIDGE.levels.write().unwrap_or_else(|e| e.into_inner());
        levels.explicit = explicit;
        levels.floor = floor;
        levels.cache.clear();
    }
    BRIDGE.min_threshold.store(min, Ordering::Relaxed);
    if LOG_INSTALLED.load(Ordering::Relaxed) {
        log::set_max_level(log_filter(min));
    }
    #[cfg(feature = "tracing")]
    tracing_bridge::levels_changed();
}

/// The most verbose `log` filter that lets a threshold of `min` through.
fn log_filter(min: u8) -> log::LevelFilter {
    match min {
        0..=5 => log::LevelFilter::Trace,
        6..=10 => log::LevelFilter::Debug,
        11..=20 => log::LevelFilter::Info,
        21..=30 => log::LevelFilter::Warn,
        31..=40 => log::LevelFilter::Error,
        _ => log::LevelFilter::Off,
    }
}

/// Queues `record` for Python, or drops and counts it if the queue is full or the bridge is
/// closed. Never blocks beyond the push itself.
pub fn push(record: Record) {
    let mut queue = queue();
    if BRIDGE.closed.load(Ordering::Relaxed)
        || queue.len() >= BRIDGE.capacity.load(Ordering::Relaxed)
    {
        drop(queue);
        BRIDGE.dropped.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let was_empty = queue.is_empty();
    queue.push_back(record);
    drop(queue);
    BRIDGE.crossed.fetch_add(1, Ordering::Relaxed);
    if was_empty {
        BRIDGE.ready.notify_all();
    }
}

/// Seconds since the Unix epoch, and the current thread's name: what every record carries.
fn now_and_thread() -> (f64, Option<String>) {
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    (created, std::thread::current().name().map(str::to_owned))
}

/// Waits up to `timeout` for records; returns how many are queued (0 on timeout), or `None`
/// once the bridge is closed and empty.
pub fn wait(timeout: Duration) -> Option<usize> {
    let queue = queue();
    let (queue, _) = BRIDGE
        .ready
        .wait_timeout_while(queue, timeout, |q| {
            q.is_empty() && !BRIDGE.closed.load(Ordering::Relaxed)
        })
        .unwrap_or_else(|e| e.into_inner());
    if queue.is_empty() && BRIDGE.closed.load(Ordering::Relaxed) {
        return None;
    }
    Some(queue.len())
}

/// Takes up to `max` queued records, oldest first.
pub fn take(max: usize) -> Vec<Record> {
    let mut queue = queue();
    let n = queue.len().min(max);
    queue.drain(..n).collect()
}

/// The records as one MessagePack list of `[level, logger, message, file, line, fields,
/// created, thread]` lists (file and thread may be nil, fields is a map).
pub fn encode(records: Vec<Record>) -> Vec<u8> {
    let items: Vec<Value> = records
        .into_iter()
        .map(|r| {
            Value::List(vec![
                Value::Int(i64::from(r.level)),
                Value::Str(r.logger),
                Value::Str(r.message),
                r.file.map_or(Value::None, Value::Str),
                Value::Int(i64::from(r.line)),
                Value::Dict(r.fields),
                Value::Float(r.created),
                r.thread.map_or(Value::None, Value::Str),
            ])
        })
        .collect();
    // Only str, int, float and nil at depth 2: nothing the codec refuses.
    codec::encode(&Value::List(items)).unwrap_or_default()
}

/// Closes the bridge: a waiting drainer returns, later records are dropped and counted.
pub fn close() {
    BRIDGE.closed.store(true, Ordering::Relaxed);
    drop(queue());
    BRIDGE.ready.notify_all();
}

/// Sets how many records the queue holds before it drops (at least 1).
pub fn set_capacity(capacity: usize) {
    BRIDGE.capacity.store(capacity.max(1), Ordering::Relaxed);
}

/// The bridge's counters: `(crossed, dropped, queued, capacity)`.
pub fn counters() -> (u64, u64, usize, usize) {
    (
        BRIDGE.crossed.load(Ordering::Relaxed),
        BRIDGE.dropped.load(Ordering::Relaxed),
        queue().len(),
        BRIDGE.capacity.load(Ordering::Relaxed),
    )
}

/// Keeps `buffer` as the last drained batch and returns its address and length.
pub(crate) fn hold_drained(buffer: Vec<u8>) -> (*const u8, usize) {
    let mut held = BRIDGE.drained.lock().unwrap_or_else(|e| e.into_inner());
    *held = buffer;
    (held.as_ptr(), held.len())
}

// --- log ------------------------------------------------------------------------------------

/// The `log` logger of this library.
struct LogBridge;

fn python_level(level: log::Level) -> u8 {
    match level {
        log::Level::Error => level::ERROR,
        log::Level::Warn => level::WARNING,
        log::Level::Info => level::INFO,
        log::Level::Debug => level::DEBUG,
        log::Level::Trace => level::TRACE,
    }
}

/// Collects `log`'s key-values as values.
struct Fields(Vec<(String, Value)>);

impl<'kvs> log::kv::VisitSource<'kvs> for Fields {
    fn visit_pair(
        &mut self,
        key: log::kv::Key<'kvs>,
        value: log::kv::Value<'kvs>,
    ) -> Result<(), log::kv::Error> {
        let value = if let Some(b) = value.to_bool() {
            Value::Bool(b)
        } else if let Some(i) = value.to_i64() {
            Value::Int(i)
        } else if let Some(u) = value.to_u64() {
            Value::UInt(u)
        } else if let Some(f) = value.to_f64() {
            Value::Float(f)
        } else if let Some(s) = value.to_borrowed_str() {
            Value::Str(s.to_owned())
        } else {
            Value::Str(value.to_string())
        };
        self.0.push((key.as_str().to_owned(), value));
        Ok(())
    }
}

impl log::Log for LogBridge {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        enabled(python_level(metadata.level()), metadata.target())
    }

    fn log(&self, record: &log::Record<'_>) {
        let level = python_level(record.level());
        if !enabled(level, record.target()) {
            return;
        }
        let mut fields = Fields(Vec::new());
        let _ = record.key_values().visit(&mut fields);
        let (created, thread) = now_and_thread();
        push(Record {
            level,
            logger: logger_name(record.target()),
            message: record.args().to_string(),
            file: record.file().map(str::to_owned),
            line: record.line().unwrap_or(0),
            fields: fields.0,
            created,
            thread,
        });
    }

    fn flush(&self) {}
}

static LOG_BRIDGE: LogBridge = LogBridge;
/// Whether `log`'s logger is the bridge (an author's own logger keeps its max level).
static LOG_INSTALLED: AtomicBool = AtomicBool::new(false);

/// Installs the bridge as this library's `log` logger (and tracing subscriber, feature
/// `tracing`). Returns a bit set: 1 if the `log` logger is the bridge, 2 if tracing's
/// dispatcher is. Installing again reports the same.
pub fn install() -> u32 {
    static INSTALLED: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *INSTALLED.get_or_init(|| {
        let mut installed = 0;
        if log::set_logger(&LOG_BRIDGE).is_ok() {
            LOG_INSTALLED.store(true, Ordering::Relaxed);
            log::set_max_level(log_filter(BRIDGE.min_threshold.load(Ordering::Relaxed)));
            installed |= 1;
        }
        #[cfg(feature = "tracing")]
        if tracing_bridge::install() {
            installed |= 2;
        }
        installed
    })
}

// --- tracing ---------------------------------------------------------------------------------

#[cfg(feature = "tracing")]
mod tracing_bridge {
    //! Tracing events as records. Spans are not forwarded (their fields do not reach the
    //! events inside them); each callsite's interest is cached by tracing and rebuilt when
    //! Python's levels change, so a disabled event costs what tracing's own check costs.

    use super::{enabled, level, logger_name, now_and_thread, push, Record, BRIDGE};
    use crate::value::Value;
    use std::sync::atomic::Ordering;
    use tracing_core::field::{Field, Visit};
    use tracing_core::span::{Attributes, Id, Record as SpanRecord};
    use tracing_core::subscriber::{Interest, Subscriber};
    use tracing_core::{Event, Level, LevelFilter, Metadata};

    fn python_level(level: &Level) -> u8 {
        match *level {
            Level::ERROR => level::ERROR,
            Level::WARN => level::WARNING,
            Level::INFO => level::INFO,
            Level::DEBUG => level::DEBUG,
            _ => level::TRACE,
        }
    }

    struct TracingBridge;

    #[derive(Default)]
    struct Fields {
        message: String,
        fields: Vec<(String, Value)>,
    }

    impl Visit for Fields {
        fn record_i64(&mut self, field: &Field, value: i64) {
            self.fields
                .push((field.name().to_owned(), Value::Int(value)));
        }
        fn record_u64(&mut self, field: &Field, value: u64) {
            let value = i64::try_from(value).map_or(Value::UInt(value), Value::Int);
            self.fields.push((field.name().to_owned(), value));
        }
        fn record_f64(&mut self, field: &Field, value: f64) {
            self.fields
                .push((field.name().to_owned(), Value::Float(value)));
        }
        fn record_bool(&mut self, field: &Field, value: bool) {
            self.fields
                .push((field.name().to_owned(), Value::Bool(value)));
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            if field.name() == "message" {
                self.message = value.to_owned();
            } else {
                self.fields
                    .push((field.name().to_owned(), Value::Str(value.to_owned())));
            }
        }
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                self.message = format!("{value:?}");
            } else {
                self.fields
                    .push((field.name().to_owned(), Value::Str(format!("{value:?}"))));
            }
        }
    }

    impl Subscriber for TracingBridge {
        fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
            if metadata.is_event() && enabled(python_level(metadata.level()), metadata.target()) {
                Interest::always()
            } else {
                Interest::never()
            }
        }

        fn max_level_hint(&self) -> Option<LevelFilter> {
            Some(match BRIDGE.min_threshold.load(Ordering::Relaxed) {
                0..=5 => LevelFilter::TRACE,
                6..=10 => LevelFilter::DEBUG,
                11..=20 => LevelFilter::INFO,
                21..=30 => LevelFilter::WARN,
                31..=40 => LevelFilter::ERROR,
                _ => LevelFilter::OFF,
            })
        }

        fn enabled(&self, metadata: &Metadata<'_>) -> bool {
            metadata.is_event() && enabled(python_level(metadata.level()), metadata.target())
        }

        fn new_span(&self, _span: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }

        fn record(&self, _span: &Id, _values: &SpanRecord<'_>) {}

        fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

        fn event(&self, event: &Event<'_>) {
            let metadata = event.metadata();
            let mut fields = Fields::default();
            event.record(&mut fields);
            let (created, thread) = now_and_thread();
            push(Record {
                level: python_level(metadata.level()),
                logger: logger_name(metadata.target()),
                message: fields.message,
                file: metadata.file().map(str::to_owned),
                line: metadata.line().unwrap_or(0),
                fields: fields.fields,
                created,
                thread,
            });
        }

        fn enter(&self, _span: &Id) {}

        fn exit(&self, _span: &Id) {}
    }

    pub(super) fn install() -> bool {
        tracing_core::dispatcher::set_global_default(tracing_core::Dispatch::new(TracingBridge))
            .is_ok()
    }

    pub(super) fn levels_changed() {
        tracing_core::callsite::rebuild_interest_cache();
    }
}
