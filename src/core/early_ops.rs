//! Peer changes that arrive before the session they change (`enable_dmq`, docs/cluster.md,
//! "Order"). A node's session_open and the participant fed right after it travel as two KDMQ
//! requests; the receiving Kamailio's workers may hand them to dmq in the other order, and the
//! participant would find no session and be lost on that node (R33). Such a change is kept here,
//! for a short while, and applied when its session opens.
use super::bytes::{try_bytes, try_push, Bytes, OutOfMemory};
use allocator_api2::alloc::Allocator;
use allocator_api2::vec::Vec as AVec;

/// How long an early change waits for its session; past this the session is not coming (its
/// open was lost, or it was closed): the change is dropped.
pub const EARLY_TTL_MS: u64 = 5000;
/// At most this many wait at once, over all sessions: a peer cannot fill shm with them.
pub const EARLY_MAX: usize = 256;

struct Early<A: Allocator> {
    /// `uri::session_key` of the session (or group identity) the change names.
    key: Bytes<A>,
    /// The peer that sent it (for the log).
    from: u64,
    stamp: u64,
    arrived_ms: u64,
    /// The change, as `cluster::encode` wrote it.
    op: Bytes<A>,
}

/// A change taken out to be applied now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    pub from: u64,
    pub op: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotKept {
    /// `EARLY_MAX` wait already.
    Full,
    OutOfMemory,
}

pub struct EarlyOps<A: Allocator + Clone> {
    alloc: A,
    waiting: AVec<Early<A>, A>,
    /// Changes dropped since the last `take_dropped` (expired, or the table full).
    dropped: u64,
}

impl<A: Allocator + Clone> EarlyOps<A> {
    pub fn new_in(alloc: A) -> Self {
        EarlyOps {
            waiting: AVec::new_in(alloc.clone()),
            alloc,
            dropped: 0,
        }
    }

    /// Keeps `op` (stamped `stamp`, from peer `from`) until the session `key` opens.
    pub fn park(
        &mut self,
        key: &[u8],
        from: u64,
        stamp: u64,
        op: &[u8],
        now_ms: u64,
    ) -> Result<(), NotKept> {
        self.expire(now_ms);
        if self.waiting.len() >= EARLY_MAX {
            self.dropped += 1;
            return Err(NotKept::Full);
        }
        let oom = |_: OutOfMemory| NotKept::OutOfMemory;
        let early = Early {
            key: try_bytes(key, self.alloc.clone()).map_err(oom)?,
            from,
            stamp,
            arrived_ms: now_ms,
            op: try_bytes(op, self.alloc.clone()).map_err(oom)?,
        };
        try_push(&mut self.waiting, early).map_err(oom)
    }

    /// The session `key` opened with stamp `opened` (0: from a sync, unstamped): the changes
    /// waiting for it that are newer, oldest stamp first, removed. Older ones belong to an
    /// earlier session of the same URI and are dropped.
    pub fn take(&mut self, key: &[u8], opened: u64, now_ms: u64) -> Vec<Ready> {
        self.expire(now_ms);
        let mut out: Vec<(u64, Ready)> = Vec::new();
        let mut stale = 0;
        self.waiting.retain(|e| {
            if e.key.as_slice() != key {
                return true;
            }
            if e.stamp > opened {
                out.push((
                    e.stamp,
                    Ready {
                        from: e.from,
                        op: e.op.to_vec(),
                    },
                ));
            } else {
                stale += 1;
            }
            false
        });
        self.dropped += stale;
        out.sort_by_key(|(stamp, _)| *stamp);
        out.into_iter().map(|(_, r)| r).collect()
    }

    /// How many changes were dropped since the last call (for the counter and the log).
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }

    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    fn expire(&mut self, now_ms: u64) {
        let before = self.waiting.len();
        self.waiting
            .retain(|e| now_ms < e.arrived_ms.saturating_add(EARLY_TTL_MS));
        self.dropped += (before - self.waiting.len()) as u64;
    }
}
