//! Generational handle tables: how the C ABI names Rust things without raw pointers.
//!
//! A handle is a `u64`: the low 32 bits index a slot, the high 32 bits carry the slot's
//! generation. Freeing a slot bumps its generation, so an old handle to a reused slot no longer
//! matches and lookups answer `None`. A stale or forged handle is therefore an error value,
//! never undefined behaviour. Handle `0` is never issued (generations start at 1), so C callers
//! may use it as "no handle".
//!
//! The table itself is not synchronised; owners wrap it in a `Mutex` and keep critical sections
//! short (no callbacks, no allocation-heavy work under the lock).

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
}

impl<T> Default for HandleTable<T> {
    fn default() -> Self {
        Self::new()
    }
}

fn split(handle: u64) -> (usize, u32) {
    ((handle & 0xffff_ffff) as usize, (handle >> 32) as u32)
}

impl<T> HandleTable<T> {
    /// An empty table.
    pub const fn new() -> Self {
        HandleTable {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    /// Stores `value` and returns its handle (never 0; always below 2^63 so it also fits an
    /// `i64` return value).
    pub fn insert(&mut self, value: T) -> u64 {
        self.len += 1;
        if let Some(index) = self.free.pop() {
            let slot = &mut self.slots[index as usize];
            slot.value = Some(value);
            return (u64::from(slot.generation) << 32) | u64::from(index);
        }
        let index = u32::try_from(self.slots.len()).expect("handle table holds 2^32 entries");
        self.slots.push(Slot {
            generation: 1,
            value: Some(value),
        });
        (1u64 << 32) | u64::from(index)
    }

    /// The value behind `handle`, if the handle is current.
    pub fn get(&self, handle: u64) -> Option<&T> {
        let (index, generation) = split(handle);
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
        let (index, generation) = split(handle);
        let slot = self.slots.get_mut(index)?;
        if slot.generation != generation {
            return None;
        }
        let value = slot.value.take()?;
        // Keep generations below 2^31 so handles stay positive as i64; wrapping back to 1
        // after two billion reuses of one slot is an accepted (astronomically unlikely) ABA.
        slot.generation = if slot.generation >= 0x7fff_ffff {
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
                .map(|v| ((u64::from(slot.generation) << 32) | index as u64, v))
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
}
