//! The log bridge without Python: levels resolved per target as Python's loggers resolve
//! them, records below them never queued, a full queue dropping and counting, what a record
//! carries. One test, in order: the bridge is this process's `log` logger.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use asyncffi::logging::{self, level};
use asyncffi::Value;

fn levels(pairs: &[(&str, u8)], floor: u8) {
    let map: HashMap<String, u8> = pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    logging::set_levels(map, floor);
}

fn crossed() -> u64 {
    logging::counters().0
}

#[test]
fn bridge() {
    assert_eq!(logging::install() & 1, 1, "the bridge is the log logger");
    levels(&[("", level::WARNING), ("app.db", level::DEBUG)], 0);
    assert_eq!(log::max_level(), log::LevelFilter::Debug);

    // Below the root's level: never queued.
    let before = crossed();
    log::info!(target: "app::web", "dropped");
    log::debug!(target: "app::dbx", "not under app.db");
    assert_eq!(crossed(), before);
    // A target under a logger with its own level, and one at the root's level.
    log::debug!(target: "app::db::pool", user = "ada", n = 3; "kept {}", 1);
    log::warn!(target: "app::web", "kept too");
    assert_eq!(crossed(), before + 2);
    let records = logging::take(10);
    assert_eq!(records.len(), 2);
    let r = &records[0];
    assert_eq!(
        (r.level, r.logger.as_str(), r.message.as_str()),
        (10, "app.db.pool", "kept 1")
    );
    assert_eq!(r.file.as_deref(), Some(file!()));
    assert!(r.line > 0);
    assert!(matches!(r.fields.as_slice(),
        [(k1, Value::Str(v1)), (k2, Value::Int(3))] if k1 == "user" && v1 == "ada" && k2 == "n"));
    assert_eq!(records[1].logger, "app.web");

    // logging.disable(WARNING): nothing at or below it crosses.
    levels(&[("", level::DEBUG)], level::WARNING);
    log::warn!("dropped");
    assert_eq!(crossed(), before + 2);
    log::error!("kept");
    assert_eq!(crossed(), before + 3);
    logging::take(10);

    // A full queue drops and counts.
    levels(&[("", level::DEBUG)], 0);
    logging::set_capacity(4);
    let dropped = logging::counters().1;
    for i in 0..10 {
        log::info!("n {i}");
    }
    assert_eq!(logging::counters().1, dropped + 6);
    assert_eq!(logging::take(100).len(), 4);
    logging::set_capacity(logging::DEFAULT_CAPACITY);
}

/// `cargo test --release -p asyncffi --test logging -- --ignored --nocapture`: the cost of a
/// log call the bridge skips, and of one it queues.
#[test]
#[ignore]
fn bench() {
    logging::install();
    const N: u32 = 10_000_000;
    let per = |f: &dyn Fn(u32)| {
        let mut runs: Vec<f64> = (0..5)
            .map(|_| {
                let t = Instant::now();
                for i in 0..N {
                    f(black_box(i));
                }
                t.elapsed().as_nanos() as f64 / f64::from(N)
            })
            .collect();
        runs.sort_by(f64::total_cmp);
        runs[2]
    };
    levels(&[("", level::WARNING)], 0);
    let off = per(&|i| log::debug!(target: "app::web", "n {i}"));
    levels(&[("", level::WARNING), ("other", level::DEBUG)], 0);
    let below = per(&|i| log::debug!(target: "app::web", "n {i}"));
    levels(&[("", level::DEBUG)], 0);
    logging::set_capacity(usize::MAX);
    let t = Instant::now();
    for i in 0..1_000_000u32 {
        log::info!(target: "app::web", user = "ada"; "n {i}");
    }
    let queued = t.elapsed().as_nanos() as f64 / 1e6;
    let _ = logging::take(usize::MAX);
    println!("disabled (below every level, one atomic load): {off:.2} ns/call");
    println!("disabled (below its logger's level, target lookup): {below:.1} ns/call");
    println!("enabled and queued (format, push): {queued:.0} ns/call");
    std::thread::sleep(Duration::ZERO);
}
