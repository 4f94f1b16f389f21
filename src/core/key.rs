//! Hash-map keys and maps that live in any allocator (shm in the module).
use super::bytes::{try_bytes, Bytes, OutOfMemory};
use allocator_api2::alloc::Allocator;
use std::borrow::Borrow;
use std::hash::{Hash, Hasher};

/// Fixed-seed hashing: a map in shm is used by every Kamailio process, so the hasher state must
/// live in the map itself, not in a per-process global.
pub type FixedState = foldhash::fast::FixedState;
pub type Map<K, V, A> = hashbrown::HashMap<K, V, FixedState, A>;
pub type Set<K, A> = hashbrown::HashSet<K, FixedState, A>;

/// A byte-string key that can be looked up by `&[u8]`.
#[derive(Debug)]
pub struct Key<A: Allocator>(pub Bytes<A>);

impl<A: Allocator> Key<A> {
    pub fn try_new(b: &[u8], alloc: A) -> Result<Self, OutOfMemory> {
        Ok(Key(try_bytes(b, alloc)?))
    }
    pub fn as_slice(&self) -> &[u8] {
        self.0.as_slice()
    }
}

impl<A: Allocator> Hash for Key<A> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.as_slice().hash(state)
    }
}
impl<A: Allocator> PartialEq for Key<A> {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_slice() == other.0.as_slice()
    }
}
impl<A: Allocator> Eq for Key<A> {}
impl<A: Allocator> Borrow<[u8]> for Key<A> {
    fn borrow(&self) -> &[u8] {
        self.0.as_slice()
    }
}

/// An empty map in `alloc` with a seed shared by all processes.
pub fn new_map<K, V, A: Allocator>(seed: u64, alloc: A) -> Map<K, V, A> {
    hashbrown::HashMap::with_hasher_in(FixedState::with_seed(seed), alloc)
}

pub fn new_set<K, A: Allocator>(seed: u64, alloc: A) -> Set<K, A> {
    hashbrown::HashSet::with_hasher_in(FixedState::with_seed(seed), alloc)
}

/// The key of a dialog: Call-ID and our (local) tag.
pub fn dialog_key(call_id: &[u8], local_tag: &[u8]) -> std::vec::Vec<u8> {
    let mut k = std::vec::Vec::with_capacity(call_id.len() + local_tag.len() + 1);
    k.extend_from_slice(call_id);
    k.push(0);
    k.extend_from_slice(local_tag);
    k
}
