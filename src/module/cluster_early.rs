//! Peer changes that arrived before their session (core::early_ops, docs/cluster.md "Order"),
//! kept in shm for every process of the node: dmq may run more than one worker, and the open
//! may be applied by another process than the one that kept the change.
use super::cluster_auth::log_limited;
use crate::core::early_ops::{EarlyOps, NotKept, Ready, EARLY_MAX, EARLY_TTL_MS};
use crate::core::uri;
use crate::kam::clock;
use crate::kam::lock::{init_in_place, ShmMutex};
use crate::kam::shm::{leak_in_shm, Published, ShmAlloc};
use crate::kdbg;
use std::sync::atomic::{AtomicU64, Ordering};

struct EarlyState {
    waiting: ShmMutex<EarlyOps<ShmAlloc>>,
    applied: AtomicU64,
    dropped: AtomicU64,
}

static STATE: Published<EarlyState> = Published::new();

/// mod_init with `enable_dmq`.
pub fn init() -> Result<(), String> {
    let st = leak_in_shm(EarlyState {
        waiting: ShmMutex::new(EarlyOps::new_in(ShmAlloc)),
        applied: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
    })
    .ok_or("enable_dmq: no shared memory for the early changes")?;
    if !init_in_place(&st.waiting) {
        return Err("enable_dmq: cannot initialise the early changes' lock".into());
    }
    STATE.publish(st);
    Ok(())
}

/// Keeps a peer's change (`op`, encoded) to session `session_uri`, which this node does not
/// have (yet).
pub fn park(session_uri: &[u8], from: u64, stamp: u64, op: &[u8]) {
    let (Some(st), Some(key)) = (STATE.get(), uri::session_key(session_uri)) else {
        return;
    };
    let (r, dropped) = {
        let mut w = st.waiting.lock();
        let r = w.park(&key, from, stamp, op, clock::now_ms());
        (r, w.take_dropped())
    };
    note_dropped(st, dropped);
    match r {
        Ok(()) => kdbg!(
            "enable_dmq: peer {from:016x}'s change to {} came before the session; kept",
            String::from_utf8_lossy(session_uri)
        ),
        Err(NotKept::Full) => log_limited(
            b"early-full",
            &format!(
                "enable_dmq: peer {from:016x}'s change to unknown session {} dropped: {EARLY_MAX} changes wait for their session already",
                String::from_utf8_lossy(session_uri)
            ),
        ),
        Err(NotKept::OutOfMemory) => log_limited(
            b"early-full",
            "enable_dmq: no shared memory to keep a peer's early change; dropped",
        ),
    }
}

/// Session `session_uri` (or a group identity leading to it) opened here with `stamp` (0: from
/// a sync): the changes that were waiting for it, to apply now in stamp order.
pub fn take(session_uri: &[u8], stamp: u64) -> Vec<Ready> {
    let (Some(st), Some(key)) = (STATE.get(), uri::session_key(session_uri)) else {
        return Vec::new();
    };
    let (ready, dropped) = {
        let mut w = st.waiting.lock();
        if w.is_empty() {
            return Vec::new();
        }
        let ready = w.take(&key, stamp, clock::now_ms());
        (ready, w.take_dropped())
    };
    note_dropped(st, dropped);
    st.applied.fetch_add(ready.len() as u64, Ordering::Relaxed);
    ready
}

fn note_dropped(st: &EarlyState, dropped: u64) {
    if dropped > 0 {
        st.dropped.fetch_add(dropped, Ordering::Relaxed);
        log_limited(
            b"early",
            &format!("enable_dmq: {dropped} peer changes dropped: their session did not open here within {EARLY_TTL_MS} ms (docs/cluster.md, \"Order\")"),
        );
    }
}

/// `cluster_early_applied`, `cluster_early_dropped` of `imconf.stats` (zeros without a cluster).
pub fn counters() -> [i64; 2] {
    STATE.get().map_or([0, 0], |st| {
        [
            st.applied.load(Ordering::Relaxed) as i64,
            st.dropped.load(Ordering::Relaxed) as i64,
        ]
    })
}
