//! The module's shared state: the sessions and subscriptions of the whole server, split into
//! hash slots, each a core `Notifier` in shm behind its own Kamailio lock (no global lock on
//! the hot path). Created in mod_init, before the workers fork, so every process maps it at the
//! same address.
use super::group_store::GroupStore;
use crate::core::gate::InFlightCap;
use crate::core::notifier::{Notifier, TOKEN_BITS};
use crate::core::params::Settings as ModuleParams;
use crate::core::uri;
use crate::kam::lock::{init_in_place, ShmMutex};
use crate::kam::shm::{leak_in_shm, Published, ShmAlloc};
use allocator_api2::vec::Vec as AVec;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

pub type SlotNotifier = Notifier<ShmAlloc, &'static InFlightCap>;
pub type Slot = ShmMutex<SlotNotifier>;

pub struct Shared {
    /// The group documents in force (R81-R88) and their generation (see groups.rs).
    pub groups: ShmMutex<GroupStore>,
    pub groups_generation: AtomicU64,
    /// R66: shared by every slot's notifier.
    pub in_flight: &'static InFlightCap,
    pub slots: AVec<Slot, ShmAlloc>,
}

/// The slot hash's seed: fixed (see `slot_of_uri`). The maps inside each slot keep a random
/// seed per run; a slot itself is only a lock, so predictable placement costs nothing.
const SLOT_SEED: u64 = 0x696d_636f_6e66_0001;

static SHARED: Published<Shared> = Published::new();
/// Read-only after mod_init; each forked process inherits its copy.
static PARAMS: OnceLock<ModuleParams> = OnceLock::new();
/// Process-local state of the tag generator (reseeded in every child).
static TAG_STATE: AtomicU64 = AtomicU64::new(0);

pub fn init(params: ModuleParams, seed: u64) -> Result<(), &'static str> {
    let n = params.hash_slots;
    let in_flight = leak_in_shm(InFlightCap::new(params.max_inflight_notifies))
        .ok_or("no shared memory for the NOTIFY cap")?;
    let mut slots = AVec::new_in(ShmAlloc);
    slots
        .try_reserve_exact(n)
        .map_err(|_| "no shared memory for the hash slots")?;
    // R94: records written before profiles get the configured one
    let old_records = params.config.default_profile.for_old_records();
    for _ in 0..n {
        let mut notifier = Notifier::with_gate(seed, ShmAlloc, in_flight);
        notifier.set_old_records_profile(old_records);
        // issue 18: with fan-out processes, a change's NOTIFYs are queued for them
        notifier.set_deferred_fan_out(params.fanout_workers > 0);
        slots.push(ShmMutex::new(notifier));
    }
    // the locks are initialised at their final address (the Vec does not move its buffer)
    if !slots.iter().all(init_in_place) {
        return Err("cannot initialise the slot locks");
    }
    let shared = leak_in_shm(Shared {
        groups: ShmMutex::new(GroupStore::new()),
        groups_generation: AtomicU64::new(0),
        in_flight,
        slots,
    })
    .ok_or("no shared memory for the state")?;
    if !init_in_place(&shared.groups) {
        return Err("cannot initialise the group documents lock");
    }
    SHARED.publish(shared);
    PARAMS.set(params).map_err(|_| "initialised twice")?;
    Ok(())
}

/// False in `kamailio -c` or when mod_init failed.
pub fn is_initialised() -> bool {
    SHARED.get().is_some()
}

pub fn shared() -> &'static Shared {
    SHARED.get().expect("imconf state used before mod_init")
}

pub fn params() -> &'static ModuleParams {
    PARAMS.get().expect("imconf params used before mod_init")
}

impl Shared {
    /// The slot of a session (or of anything keyed by a session URI); the same in every process,
    /// and in every run and node with the same `hash_slots`: our To-tags name the slot
    /// (`new_local_tag`), and a dialog restored after a restart (db_url) or taken over by a
    /// cluster peer (enable_dmq) must be found where its tag says.
    pub fn slot_of_uri(&self, session_uri: &[u8]) -> Option<usize> {
        let key = uri::session_key(session_uri)?;
        let h = crate::core::key::FixedState::with_seed(SLOT_SEED).hash_one(key.as_slice());
        Some((h % self.slots.len() as u64) as usize)
    }

    pub fn slot_of_token(&self, token: u64) -> Option<usize> {
        let slot = (token >> TOKEN_BITS) as usize;
        (slot < self.slots.len()).then_some(slot)
    }
}

/// Our To-tags name the slot of their subscription, so an in-dialog SUBSCRIBE (whose
/// Request-URI is our Contact, not the session) finds it with one lock.
pub fn new_local_tag(slot: usize) -> Vec<u8> {
    // splitmix64 over a per-process random start: unique tags without a syscall per SUBSCRIBE
    let mut z = TAG_STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    format!("i{slot:x}-{z:016x}").into_bytes()
}

/// The To-tag of the dialog an initial SUBSCRIBE creates in `slot`: derived from its Call-ID,
/// From-tag and CSeq under a key drawn at start (the same in every process), so that a
/// retransmission names the dialog its first copy created and is answered from it (R22 without
/// a tm transaction, issue 18). Unique as a 64-bit hash is; unguessable without the key.
pub fn initial_local_tag(slot: usize, call_id: &[u8], from_tag: &[u8], cseq: u32) -> Vec<u8> {
    use std::hash::BuildHasher;
    let key = DIALOG_TAG_KEY.load(Ordering::Relaxed);
    let h = crate::core::key::FixedState::with_seed(key).hash_one((call_id, from_tag, cseq));
    format!("i{slot:x}-{h:016x}").into_bytes()
}

/// mod_init, before the fork: the key of `initial_local_tag`.
pub fn set_dialog_tag_key(key: u64) {
    DIALOG_TAG_KEY.store(key, Ordering::Relaxed);
}

static DIALOG_TAG_KEY: AtomicU64 = AtomicU64::new(0);

pub fn slot_of_tag(tag: &[u8]) -> Option<usize> {
    let rest = tag.strip_prefix(b"i")?;
    let end = rest.iter().position(|&b| b == b'-')?;
    let hex = std::str::from_utf8(&rest[..end]).ok()?;
    usize::from_str_radix(hex, 16).ok()
}

pub fn reseed_tags(seed: u64) {
    TAG_STATE.store(seed, Ordering::Relaxed);
}
