//! What every `extern "C"` function shares: status codes, the thread-local last error message,
//! and the guard that keeps panics from unwinding across the C boundary.
//!
//! Convention: functions return `0` (or a non-negative id / count) on success and a negative
//! `AffiStatus` on failure, with a message for the failure left in this thread's last-error slot
//! (`affi_last_error`). Python maps each status to an exception class and uses the message as
//! its text.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

pub use crate::abi::AffiStatus;

/// A failure: its status code and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Which exception Python raises.
    pub status: AffiStatus,
    /// The exception's text.
    pub message: String,
}

impl Failure {
    /// A failure with `status` and `message`.
    pub fn new(status: AffiStatus, message: impl Into<String>) -> Self {
        Failure {
            status,
            message: message.into(),
        }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Stores `message` as this thread's last error.
pub fn set_last_error(message: &str) {
    LAST_ERROR.with(|slot| {
        let mut slot = slot.borrow_mut();
        slot.clear();
        slot.extend_from_slice(message.as_bytes());
    });
}

/// Pointer and length of this thread's last error message. The bytes stay valid until the next
/// C ABI call on this thread that fails.
pub fn last_error() -> (*const u8, usize) {
    LAST_ERROR.with(|slot| {
        let slot = slot.borrow();
        (slot.as_ptr(), slot.len())
    })
}

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Rust panic with a non-string payload".to_owned()
    }
}

thread_local! {
    /// How many `catching` frames are on this thread's stack.
    static CATCHING: Cell<u32> = const { Cell::new(0) };
}

/// Installs (once) a panic hook that stays quiet for panics `catching` will turn into a status
/// or an outcome (their message reaches Python; set `ASYNCFFI_SHOW_PANICS=1` to print them
/// too), and hands every other panic to the hook that was there before.
fn install_quiet_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        let show = std::env::var_os("ASYNCFFI_SHOW_PANICS").is_some_and(|v| v != "0");
        std::panic::set_hook(Box::new(move |info| {
            let caught = CATCHING.try_with(Cell::get).unwrap_or(0) > 0;
            if show || !caught {
                previous(info);
            }
        }));
    });
}

/// `catch_unwind` for panics that become an `ErrPanic` status or a panic outcome: the panic
/// hook does not print them.
pub fn catching<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
    install_quiet_hook();
    CATCHING.with(|c| c.set(c.get() + 1));
    let result = catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(c.get() - 1));
    result
}

/// Runs the body of an `extern "C"` function: a panic or a `Failure` becomes a negative status
/// with its message in the last-error slot; success passes the non-negative value through.
/// Nothing unwinds past this frame.
pub fn guard(body: impl FnOnce() -> Result<i64, Failure>) -> i64 {
    match catching(body) {
        Ok(Ok(value)) => value,
        Ok(Err(failure)) => {
            set_last_error(&failure.message);
            failure.status as i64
        }
        Err(payload) => {
            set_last_error(&panic_message(payload.as_ref()));
            AffiStatus::ErrPanic as i64
        }
    }
}

/// `guard` for functions that return an `i32` status.
pub fn guard_status(body: impl FnOnce() -> Result<(), Failure>) -> i32 {
    guard(|| body().map(|()| 0)) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> String {
        let (ptr, len) = last_error();
        // SAFETY: `last_error` points at this thread's buffer, untouched since.
        String::from_utf8(unsafe { std::slice::from_raw_parts(ptr, len) }.to_vec()).unwrap()
    }

    #[test]
    fn panics_stop_at_the_guard_with_their_message() {
        let status = guard(|| panic!("kaboom {}", 42));
        assert_eq!(status, AffiStatus::ErrPanic as i64);
        assert_eq!(message(), "kaboom 42");
        let status = guard_status(|| std::panic::panic_any(7u8));
        assert_eq!(status, AffiStatus::ErrPanic as i32);
        assert_eq!(message(), "Rust panic with a non-string payload");
    }

    #[test]
    fn failures_become_status_and_message() {
        let status = guard(|| Err(Failure::new(AffiStatus::ErrOverflow, "too big")));
        assert_eq!(status, AffiStatus::ErrOverflow as i64);
        assert_eq!(message(), "too big");
        assert_eq!(guard(|| Ok(5)), 5);
    }
}
