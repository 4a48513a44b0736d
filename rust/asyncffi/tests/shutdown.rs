//! Shutdown (its own test binary: it is final for the process): spawns are refused afterwards,
//! tasks in flight are dropped, and nothing is left alive.

use std::time::{Duration, Instant};

use asyncffi::ffi::{affi_port_open, affi_shutdown, affi_stats, AffiStats};
use asyncffi::port::AffiWake;
use asyncffi::{spawn, AffiStatus, Runtime, Value};

fn stats() -> AffiStats {
    let mut out = AffiStats::default();
    // SAFETY: `out` is a valid, writable AffiStats.
    assert_eq!(unsafe { affi_stats(&mut out) }, 0);
    out
}

#[test]
fn shutdown_drops_work_in_flight_and_refuses_new_work() {
    let port = affi_port_open(AffiWake::Threadsafe as u32) as u64;
    for token in 0..1000 {
        let runtime = if token % 2 == 0 {
            Runtime::Tokio
        } else {
            Runtime::AsyncStd
        };
        spawn(runtime, port, token, async {
            std::future::pending::<()>().await;
            Ok(Value::None)
        })
        .unwrap();
    }
    let start = Instant::now();
    assert_eq!(affi_shutdown(500), 0);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "shutdown is bounded"
    );
    let err = spawn(Runtime::Tokio, port, 0, async { Ok(Value::None) }).unwrap_err();
    assert_eq!(err.status, AffiStatus::ErrClosed);
    let deadline = Instant::now() + Duration::from_secs(2);
    while (stats().live_tasks, stats().live_ports) != (0, 0) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    let s = stats();
    assert_eq!((s.live_tasks, s.live_ports, s.live_values), (0, 0, 0));
    assert_eq!(s.cancelled, 1000);
    let port = affi_port_open(AffiWake::Fd as u32) as u64;
    let err = spawn(Runtime::AsyncStd, port, 0, async { Ok(Value::None) }).unwrap_err();
    assert_eq!(err.status, AffiStatus::ErrRuntime);
}
