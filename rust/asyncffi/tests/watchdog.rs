//! The watchdog: a port that expects a drain and gets none is woken again.

use std::time::{Duration, Instant};

use asyncffi::ffi::{affi_port_close, affi_port_drain, affi_port_fd, affi_port_open};
use asyncffi::port::{AffiCompletion, AffiWake};
use asyncffi::{spawn, Runtime, Value};

/// Whether `fd` becomes readable within `timeout`.
fn readable(fd: i32, timeout: Duration) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd; `fd` is the port's open eventfd.
    let n = unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as i32) };
    n == 1 && pfd.revents & libc::POLLIN != 0
}

fn drain(port: u64) -> usize {
    let mut buf = [AffiCompletion::default(); 16];
    // SAFETY: `buf` holds 16 writable completions.
    let n = unsafe { affi_port_drain(port, buf.as_mut_ptr(), buf.len()) };
    assert!(n >= 0, "drain failed: {n}");
    n as usize
}

fn complete_soon(port: u64, token: u64) {
    spawn(Runtime::Tokio, port, token, async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok(Value::None)
    })
    .unwrap();
}

#[test]
fn a_port_whose_drain_never_came_is_woken_again() {
    let port = affi_port_open(AffiWake::Fd as u32);
    assert!(port > 0);
    let port = port as u64;
    let fd = affi_port_fd(port);
    complete_soon(port, 1);
    assert!(
        readable(fd, Duration::from_secs(5)),
        "the first completion did not wake"
    );
    // Python drains once (items came back, so it owes another drain) and is then interrupted
    // before that next drain: pushes meanwhile do not wake a port being drained.
    assert_eq!(drain(port), 1);
    complete_soon(port, 2);
    let started = Instant::now();
    assert!(
        readable(fd, Duration::from_secs(5)),
        "the port was never woken again: its loop would wait forever"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = 0;
    while got == 0 && Instant::now() < deadline {
        got = drain(port);
    }
    assert_eq!(got, 1);
    assert_eq!(drain(port), 0);
    // Drained until empty: nothing is owed, so nothing wakes it.
    assert!(
        !readable(fd, Duration::from_millis(400)),
        "an idle port was woken"
    );
    assert_eq!(affi_port_close(port), 0);
}
