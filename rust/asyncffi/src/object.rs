//! The object table: opaque Rust objects held by Python, named by generational handles.
//!
//! Python owns one handle per wrapper and frees it exactly once (`close()`, the context manager
//! or the garbage collector). Rust code that is handed a handle clones the `Arc` out of the
//! table, so an operation already in flight keeps its object alive even if Python closes the
//! wrapper meanwhile; later lookups of the freed handle fail with `ErrClosed`.

use std::sync::{Arc, Mutex};

use crate::boundary::{AffiStatus, Failure};
use crate::handle_table::{self, HandleTable};
use crate::stats::LIVE_OBJECTS;
use crate::value::Object;

static OBJECTS: Mutex<HandleTable<Object>> = Mutex::new(HandleTable::new());

fn table() -> std::sync::MutexGuard<'static, HandleTable<Object>> {
    // The table is never left inconsistent by a panic (no user code runs under the lock).
    OBJECTS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Registers `object` and returns the handle Python will hold.
pub fn register(object: Object) -> u64 {
    let handle = table().insert(object);
    LIVE_OBJECTS.inc();
    handle
}

/// The object behind `handle`, downcast to `T`.
pub fn get<T: Send + Sync + 'static>(handle: u64) -> Result<Arc<T>, Failure> {
    let object = table().get(handle).cloned().ok_or_else(|| {
        handle_table::miss(handle, "object", || {
            Failure::new(AffiStatus::ErrClosed, "the Rust object is closed")
        })
    })?;
    object.downcast::<T>().map_err(|_| {
        Failure::new(
            AffiStatus::ErrType,
            format!("the Rust object is not a {}", std::any::type_name::<T>()),
        )
    })
}

/// Frees `handle`. The object itself is dropped once no Rust task holds it any more.
pub fn free(handle: u64) -> Result<(), Failure> {
    let object = table().remove(handle).ok_or_else(|| {
        handle_table::miss(handle, "object", || {
            Failure::new(AffiStatus::ErrClosed, "the Rust object is already closed")
        })
    })?;
    LIVE_OBJECTS.dec();
    drop(object);
    Ok(())
}
