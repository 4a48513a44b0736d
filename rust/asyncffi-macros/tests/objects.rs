//! `#[asyncffi::object]` through the C ABI: constructors (failing too), sync, async and static
//! methods, objects passed to and returned from functions, use after free.

#![deny(unsafe_op_in_unsafe_fn, missing_docs)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use asyncffi::{AffiStatus, Value};
use common::{call_sync, pack, s, Ended, Port};

#[derive(Debug)]
struct StoreError(String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A key-value store.
struct Store {
    capacity: u32,
    items: Mutex<Vec<(String, Vec<u8>)>>,
    gets: AtomicU64,
}

/// A key-value store.
#[asyncffi::object]
impl Store {
    /// Makes a store.
    #[asyncffi::constructor]
    fn new(capacity: Option<u32>) -> Result<Self, StoreError> {
        let capacity = capacity.unwrap_or(8);
        if capacity == 0 {
            return Err(StoreError("capacity must be > 0".into()));
        }
        Ok(Store {
            capacity,
            items: Mutex::new(Vec::new()),
            gets: AtomicU64::new(0),
        })
    }

    /// Reads a key.
    async fn get(&self, key: String) -> Option<Vec<u8>> {
        asyncffi::stream::yield_now().await;
        self.gets.fetch_add(1, Ordering::Relaxed);
        let items = self.items.lock().unwrap();
        items
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
    }

    async fn set(&self, key: String, value: Vec<u8>) -> Result<(), StoreError> {
        let mut items = self.items.lock().unwrap();
        if items.len() as u32 >= self.capacity {
            return Err(StoreError("full".into()));
        }
        items.retain(|(k, _)| *k != key);
        items.push((key, value));
        Ok(())
    }

    fn len(&self) -> u64 {
        self.items.lock().unwrap().len() as u64
    }

    /// A store holding both stores' items.
    fn merged(a: Arc<Store>, b: Arc<Store>) -> Store {
        let mut items = a.items.lock().unwrap().clone();
        items.extend(b.items.lock().unwrap().iter().cloned());
        Store {
            capacity: a.capacity + b.capacity,
            items: Mutex::new(items),
            gets: AtomicU64::new(0),
        }
    }
}

#[asyncffi::export]
async fn total_len(stores: Arc<Store>, other: Arc<Store>) -> u64 {
    stores.len() + other.len()
}

#[asyncffi::export]
fn fresh_store() -> Arc<Store> {
    Arc::new(Store::new(None).unwrap())
}

fn new_store(capacity: Option<u32>) -> Result<Ended, i32> {
    match capacity {
        None => call_sync(|out| unsafe { objects_Store_new(std::ptr::null(), 0, out) }),
        Some(c) => {
            let b = pack(&Value::Int(c.into()));
            call_sync(|out| unsafe { objects_Store_new(b.as_ptr(), b.len(), out) })
        }
    }
}

fn handle(end: Result<Ended, i32>) -> u64 {
    match end {
        Ok(Ended::Object(h)) => h,
        other => panic!("not an object: {other:?}"),
    }
}

#[test]
fn constructors_methods_and_free() {
    let _serial = common::serial();
    let before = common::stats().live_objects;
    let port = Port::open();
    let store = handle(new_store(Some(2)));
    assert_eq!(
        call_sync(|out| unsafe { objects_Store_len(store, out) }),
        Ok(Ended::Ok(Value::Int(0)))
    );

    let (k, v) = (pack(&s("k")), pack(&Value::Bytes(b"v".to_vec())));
    let set =
        |p, t| unsafe { objects_Store_set(p, t, store, k.as_ptr(), k.len(), v.as_ptr(), v.len()) };
    assert_eq!(port.call(set), Ok(Ended::Ok(Value::None)));
    let get = |p, t| unsafe { objects_Store_get(p, t, store, k.as_ptr(), k.len()) };
    assert_eq!(port.call(get), Ok(Ended::Ok(Value::Bytes(b"v".to_vec()))));
    let missing = pack(&s("nope"));
    let get = |p, t| unsafe { objects_Store_get(p, t, store, missing.as_ptr(), missing.len()) };
    assert_eq!(port.call(get), Ok(Ended::Ok(Value::None)));
    assert_eq!(
        call_sync(|out| unsafe { objects_Store_len(store, out) }),
        Ok(Ended::Ok(Value::Int(1)))
    );

    let k2 = pack(&s("k2"));
    let k3 = pack(&s("k3"));
    let set = |key: &[u8]| {
        port.call(|p, t| unsafe {
            objects_Store_set(p, t, store, key.as_ptr(), key.len(), v.as_ptr(), v.len())
        })
    };
    assert_eq!(set(&k2), Ok(Ended::Ok(Value::None)));
    assert_eq!(
        set(&k3),
        Ok(Ended::Error("StoreError".into(), "full".into()))
    );

    assert_eq!(asyncffi::ffi::affi_object_free(store), 0);
    let got = call_sync(|out| unsafe { objects_Store_len(store, out) });
    assert_eq!(got, Err(AffiStatus::ErrClosed as i32));
    let got = port.call(|p, t| unsafe { objects_Store_get(p, t, store, k.as_ptr(), k.len()) });
    assert_eq!(got, Err(AffiStatus::ErrClosed as i64));
    assert_eq!(common::stats().live_objects, before);
}

#[test]
fn a_failing_constructor_raises_and_registers_nothing() {
    let _serial = common::serial();
    let before = common::stats().live_objects;
    let got = new_store(Some(0));
    assert_eq!(
        got,
        Ok(Ended::Error(
            "StoreError".into(),
            "capacity must be > 0".into()
        ))
    );
    assert_eq!(common::stats().live_objects, before);
    let b = pack(&s("eight"));
    let got = call_sync(|out| unsafe { objects_Store_new(b.as_ptr(), b.len(), out) });
    assert_eq!(got, Err(AffiStatus::ErrType as i32));
    assert_eq!(
        common::last_error(),
        "argument `capacity`: expected int, got str"
    );
}

#[test]
fn objects_pass_to_and_return_from_functions() {
    let _serial = common::serial();
    let before = common::stats().live_objects;
    let port = Port::open();
    let a = handle(new_store(None));
    let b = handle(call_sync(|out| unsafe { objects_fresh_store(out) }));
    let (k, v) = (pack(&s("k")), pack(&Value::Bytes(vec![])));
    let got = port.call(|p, t| unsafe {
        objects_Store_set(p, t, a, k.as_ptr(), k.len(), v.as_ptr(), v.len())
    });
    assert_eq!(got, Ok(Ended::Ok(Value::None)));
    let both = handle(call_sync(|out| unsafe { objects_Store_merged(a, b, out) }));
    assert_eq!(
        call_sync(|out| unsafe { objects_Store_len(both, out) }),
        Ok(Ended::Ok(Value::Int(1)))
    );
    assert_eq!(
        port.call(|p, t| objects_total_len(p, t, a, both)),
        Ok(Ended::Ok(Value::Int(2)))
    );
    // A handle of another type, or a stale one, is refused naming the parameter.
    asyncffi::ffi::affi_object_free(b);
    assert_eq!(
        port.call(|p, t| objects_total_len(p, t, a, b)),
        Err(AffiStatus::ErrClosed as i64)
    );
    assert_eq!(
        common::last_error(),
        "argument `other`: the Rust object is closed"
    );
    for h in [a, both] {
        assert_eq!(asyncffi::ffi::affi_object_free(h), 0);
    }
    assert_eq!(common::stats().live_objects, before);
}
