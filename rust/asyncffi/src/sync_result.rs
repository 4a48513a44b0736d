//! Outcomes of sync exported functions: written into the caller's `AffiCompletion` at once,
//! with no port. A heap payload (bytes, text, an encoded container, an error or a panic
//! message) stays here until Python frees it by its `data` pointer (`affi_result_free`), from
//! any thread, exactly once; a pointer this table does not hold is refused, never freed.

use std::sync::{Mutex, MutexGuard};

use crate::boundary::{AffiStatus, Failure};
use crate::port::{self, AffiCompletion, Buffer, Outcome};

static HELD: Mutex<Vec<Buffer>> = Mutex::new(Vec::new());

fn held() -> MutexGuard<'static, Vec<Buffer>> {
    // No user code runs under this lock.
    HELD.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes `outcome` into `out`, holding its payload until [`free`].
///
/// # Safety
/// `out` must be NULL or point to a writable `AffiCompletion`.
pub unsafe fn deliver(out: *mut AffiCompletion, outcome: Outcome) -> Result<(), Failure> {
    if out.is_null() {
        return Err(Failure::new(
            AffiStatus::ErrValue,
            "completion buffer is NULL",
        ));
    }
    let (mut completion, buffer) = port::detached_completion(outcome);
    match buffer {
        // An empty payload needs no freeing: Python sees NULL.
        Some(buffer) if buffer.bytes().is_empty() => completion.data = std::ptr::null(),
        Some(buffer) => held().push(buffer),
        None => {}
    }
    // SAFETY: checked non-NULL; the caller guarantees it is a writable AffiCompletion.
    unsafe { out.write(completion) };
    Ok(())
}

/// Frees the payload a sync call left at `data`.
pub fn free(data: *const u8) -> Result<(), Failure> {
    let buffer = {
        let mut held = held();
        let at = held
            .iter()
            .rposition(|b| b.bytes().as_ptr() == data)
            .ok_or_else(|| {
                Failure::new(
                    AffiStatus::ErrValue,
                    "no sync result is held at this address",
                )
            })?;
        held.swap_remove(at)
    };
    drop(buffer); // outside the lock
    Ok(())
}
