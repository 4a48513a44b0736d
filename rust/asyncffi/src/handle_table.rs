//! Generational handle tables: how the C ABI names Rust things without raw pointers.
//!
//! A handle is a `u64` of three fields (bit 63 is always clear, so a handle is also a positive
//! `i64`):
//!
//! | bits   | field      | meaning                                                        |
//! |--------|------------|----------------------------------------------------------------|
//! | 0..20  | library    | the tag of the copy of this crate that issued it               |
//! | 20..41 | generation | the slot's generation, bumped when the slot is freed           |
//! | 41..63 | index      | the slot (so at most 2^22 live values per table)               |
//!
//! The index is on top so that the first slots' ids stay below 2^30: Python keeps such ints in
//! one digit, and converts them to C faster (a port id crosses twice per call).
//!
//! Freeing a slot bumps its generation, so an old handle to a reused slot no longer matches and
//! lookups answer `None`. A stale or forged handle is therefore an error value, never undefined
//! behaviour. Handle `0` is never issued (generations start at 1), so C callers may use it as
//! "no handle".
//!
//! The library tag: every cdylib built on asyncffi links its own copy of this crate, with its
//! own tables. The tag is drawn once per copy (see [`library_tag`]), so an id one library
//! issued and another is handed misses there, and [`miss`] tells the caller that it "belongs
//! to another library" rather than that it is closed. Two copies draw the same tag with
//! probability 2^-20.
//!
//! The table itself is not synchronised; owners wrap it in a `Mutex` and keep critical sections
//! short (no callbacks, no allocation-heavy work under the lock).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

use crate::boundary::{AffiStatus, Failure};

const INDEX_BITS: u32 = crate::abi::HANDLE_INDEX_BITS;
const TAG_BITS: u32 = crate::abi::HANDLE_TAG_BITS;
const GENERATION_BITS: u32 = crate::abi::HANDLE_GENERATION_BITS;
const INDEX_MASK: u64 = (1 << INDEX_BITS) - 1;
const TAG_SHIFT: u32 = 0;
const TAG_MASK: u64 = (1 << TAG_BITS) - 1;
const GENERATION_SHIFT: u32 = TAG_BITS;
const GENERATION_MASK: u64 = (1 << GENERATION_BITS) - 1;
const INDEX_SHIFT: u32 = TAG_BITS + GENERATION_BITS;
const MAX_GENERATION: u32 = (1 << GENERATION_BITS) - 1;
/// A table whose tag is not drawn yet (it has never issued a handle).
const NO_TAG: u64 = u64::MAX;

/// This copy of the crate's library tag (20 bits), drawn on first use from the process's
/// random hash keys, the address of a static of this copy and the time: two cdylibs in one
/// process have distinct statics and, with probability 1 - 2^-20, distinct tags.
pub fn library_tag() -> u64 {
    static TAG: OnceLock<u64> = OnceLock::new();
    *TAG.get_or_init(|| {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_usize(&TAG as *const OnceLock<u64> as usize);
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        hasher.write_u32(std::process::id());
        hasher.finish() & TAG_MASK
    })
}

/// Whether `handle` carries another library's tag (or is not a handle at all: forged values
/// mostly do too). 0, "no handle", is not foreign.
pub fn is_foreign(handle: u64) -> bool {
    handle != 0 && ((handle >> TAG_SHIFT) & TAG_MASK != library_tag() || handle >> 63 != 0)
}

/// The failure for a lookup of `handle` (a `what`: "task", "port", "object", "call") that
/// missed: `ErrValue` naming another library if the handle carries another tag, else
/// `closed()` (the handle is stale: its value was removed).
pub fn miss(handle: u64, what: &str, closed: impl FnOnce() -> Failure) -> Failure {
    if is_foreign(handle) {
        Failure::new(
            AffiStatus::ErrValue,
            format!(
                "{what} id {handle:#x} belongs to another library (or is no {what} id at all): \
                 ids are only valid with the library that issued them"
            ),
        )
    } else {
        closed()
    }
}

/// One slot: its current generation and, while occupied, the value.
struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// A slab of values addressed by generational `u64` handles.
pub struct HandleTable<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    len: usize,
    /// This library's tag, shifted into place (`NO_TAG` until the first insert).
    tag: u64,
}

impl<T> Default for HandleTable<T> {
    fn default() -> Self {
        Self::new()
    }
}

fn make(generation: u32, tag: u64, index: u32) -> u64 {
    (u64::from(index) << INDEX_SHIFT) | (u64::from(generation) << GENERATION_SHIFT) | tag
}

impl<T> HandleTable<T> {
    /// An empty table.
    pub const fn new() -> Self {
        HandleTable {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
            tag: NO_TAG,
        }
    }

    /// The index and generation of `handle`, if it carries this table's tag.
    fn split(&self, handle: u64) -> Option<(usize, u32)> {
        if handle & (TAG_MASK << TAG_SHIFT) != self.tag || handle >> 63 != 0 {
            return None;
        }
        let generation = ((handle >> GENERATION_SHIFT) & GENERATION_MASK) as u32;
        Some(((handle >> INDEX_SHIFT) as usize, generation))
    }

    /// Stores `value` and returns its handle (never 0; always below 2^63 so it also fits an
    /// `i64` return value).
    ///
    /// # Panics
    /// If the table already holds 2^22 values (the guard of the exported function turns that
    /// panic into an error status).
    pub fn insert(&mut self, value: T) -> u64 {
        if self.tag == NO_TAG {
            self.tag = library_tag() << TAG_SHIFT;
        }
        if let Some(index) = self.free.pop() {
            let slot = &mut self.slots[index as usize];
            slot.value = Some(value);
            self.len += 1;
            return make(slot.generation, self.tag, index);
        }
        let index = self.slots.len() as u64;
        assert!(
            index <= INDEX_MASK,
            "a handle table holds at most 2^22 values"
        );
        self.slots.push(Slot {
            generation: 1,
            value: Some(value),
        });
        self.len += 1;
        make(1, self.tag, index as u32)
    }

    /// The value behind `handle`, if the handle is current.
    pub fn get(&self, handle: u64) -> Option<&T> {
        let (index, generation) = self.split(handle)?;
        let slot = self.slots.get(index)?;
        if slot.generation == generation {
            slot.value.as_ref()
        } else {
            None
        }
    }

    /// Removes and returns the value behind `handle`, if the handle is current. The slot's
    /// generation moves on, so `handle` is stale from now on.
    pub fn remove(&mut self, handle: u64) -> Option<T> {
        let (index, generation) = self.split(handle)?;
        let slot = self.slots.get_mut(index)?;
        if slot.generation != generation {
            return None;
        }
        let value = slot.value.take()?;
        // Generations have 21 bits: wrapping back to 1 after two million reuses of one slot is
        // an accepted ABA (a stale id would have to be used exactly that many reuses later).
        slot.generation = if slot.generation >= MAX_GENERATION {
            1
        } else {
            slot.generation + 1
        };
        self.free.push(index as u32);
        self.len -= 1;
        Some(value)
    }

    /// Number of live values.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table holds no value.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Handles and values of every live entry.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &T)> {
        self.slots.iter().enumerate().filter_map(|(index, slot)| {
            slot.value
                .as_ref()
                .map(|v| (make(slot.generation, self.tag, index as u32), v))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::HandleTable;

    #[test]
    fn stale_handles_miss_after_reuse() {
        let mut table = HandleTable::new();
        let a = table.insert("a");
        assert_ne!(a, 0);
        assert_eq!(table.get(a), Some(&"a"));
        assert_eq!(table.remove(a), Some("a"));
        assert_eq!(table.get(a), None);
        assert_eq!(table.remove(a), None);
        let b = table.insert("b");
        assert_ne!(a, b, "a reused slot gets a new generation");
        assert_eq!(table.get(a), None);
        assert_eq!(table.get(b), Some(&"b"));
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn forged_handles_miss() {
        let mut table = HandleTable::new();
        table.insert(1);
        assert_eq!(table.get(0), None);
        assert_eq!(table.get(u64::MAX), None);
        assert_eq!(table.get(7 << 32), None);
        assert!(table.iter().all(|(h, _)| (h as i64) > 0));
    }

    #[test]
    fn handles_carry_the_library_tag() {
        let mut table = HandleTable::new();
        let a = table.insert(1);
        assert!(!super::is_foreign(a));
        // The same slot and generation under another tag: refused, and named as foreign.
        let other = a ^ (1 << super::TAG_SHIFT);
        assert_eq!(table.get(other), None);
        assert!(super::is_foreign(other));
        let failure = super::miss(other, "task", || unreachable!());
        assert_eq!(failure.status, crate::AffiStatus::ErrValue);
        assert!(failure.message.contains("belongs to another library"));
        table.remove(a);
        let stale = super::miss(a, "task", || {
            crate::Failure::new(crate::AffiStatus::ErrClosed, "closed")
        });
        assert_eq!(stale.status, crate::AffiStatus::ErrClosed);
    }

    #[test]
    fn generations_wrap_below_the_sign_bit() {
        let mut table = HandleTable::new();
        let mut last = 0;
        for _ in 0..3 {
            last = table.insert(());
            table.remove(last);
        }
        table.slots[0].generation = super::MAX_GENERATION;
        let high = table.insert(());
        assert!((high as i64) > 0 && high != last);
        table.remove(high);
        assert_eq!(table.slots[0].generation, 1);
    }
}
