//! The cluster peers' subscriptions this node could take over (`enable_dmq`, docs/cluster.md):
//! the latest state each peer sent of each of its subscriptions, keyed by dialog. Nothing here
//! is notified; a replica becomes a live subscription only when its owner leaves.
use super::bytes::{try_bytes, Bytes, OutOfMemory};
use super::key::{dialog_key, new_map, Key, Map};
use allocator_api2::alloc::Allocator;

#[derive(Debug)]
pub struct Replica<A: Allocator> {
    pub owner: u64,
    pub call_id: Bytes<A>,
    pub session_uri: Bytes<A>,
    /// `persist::encode_subscription`
    pub record: Bytes<A>,
}

/// What a takeover needs of one replica, copied out of shm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    /// Its owner said goodbye with its latest state (else it fell silent: a crash, R40).
    pub graceful: bool,
    pub call_id: Vec<u8>,
    pub session_uri: Vec<u8>,
    pub record: Vec<u8>,
}

pub struct Replicas<A: Allocator + Clone> {
    alloc: A,
    by_dialog: Map<Key<A>, Replica<A>, A>,
    /// The last peers (node runs) that said goodbye: a replica of theirs arriving after it (a
    /// KDMQ retransmission) is dropped rather than kept until a restart. A run never returns
    /// (a restarted node has a new random id).
    departed: [u64; DEPARTED_KEPT],
    next_departed: usize,
}

/// Departed peers remembered: more than a cluster ever holds at once.
const DEPARTED_KEPT: usize = 64;

impl<A: Allocator + Clone> Replicas<A> {
    pub fn new_in(seed: u64, alloc: A) -> Self {
        Replicas {
            by_dialog: new_map(seed, alloc.clone()),
            alloc,
            departed: [0; DEPARTED_KEPT],
            next_departed: 0,
        }
    }

    /// `owner` said goodbye: what it sends later is not kept (see `departed`).
    pub fn departed(&mut self, owner: u64) {
        if owner != 0 && !self.departed.contains(&owner) {
            self.departed[self.next_departed] = owner;
            self.next_departed = (self.next_departed + 1) % DEPARTED_KEPT;
        }
    }

    /// Stores (or replaces) `owner`'s latest state of a subscription; nothing for an owner that
    /// said goodbye (its subscriptions were taken over already).
    pub fn upsert(
        &mut self,
        owner: u64,
        call_id: &[u8],
        local_tag: &[u8],
        session_uri: &[u8],
        record: &[u8],
    ) -> Result<(), OutOfMemory> {
        if owner != 0 && self.departed.contains(&owner) {
            return Ok(());
        }
        let key = dialog_key(call_id, local_tag);
        let a = self.alloc.clone();
        let replica = Replica {
            owner,
            call_id: try_bytes(call_id, a.clone())?,
            session_uri: try_bytes(session_uri, a.clone())?,
            record: try_bytes(record, a.clone())?,
        };
        if let Some(r) = self.by_dialog.get_mut(key.as_slice()) {
            *r = replica;
            return Ok(());
        }
        self.by_dialog.try_reserve(1).map_err(|_| OutOfMemory)?;
        self.by_dialog.insert(Key::try_new(&key, a)?, replica);
        Ok(())
    }

    /// Removes `owner`'s replica of the dialog; one of another owner stays (after a restart of
    /// a cluster with `db_url`, the node whose copy of a dialog lost says it is gone, while
    /// the replica may be the winner's already: issue 17).
    pub fn remove(&mut self, owner: u64, call_id: &[u8], local_tag: &[u8]) {
        let key = dialog_key(call_id, local_tag);
        if self
            .by_dialog
            .get(key.as_slice())
            .is_some_and(|r| r.owner == owner)
        {
            self.by_dialog.remove(key.as_slice());
        }
    }

    /// Removes and returns the replicas whose owner is not among `alive` (it left or fell
    /// silent) and that `mine` picks (this node is their successor). The others stay until
    /// their successor sends its own state of them (an `upsert` under its name): should that
    /// successor fall silent first, too (two nodes lost within a second), the next call finds
    /// them again, so that nothing is lost.
    pub fn take_orphans(
        &mut self,
        alive: &[u64],
        mut mine: impl FnMut(&[u8]) -> bool,
    ) -> Vec<Orphan> {
        let mut out = Vec::new();
        let departed = self.departed;
        self.by_dialog.retain(|_, r| {
            if alive.contains(&r.owner) || !mine(&r.call_id) {
                return true;
            }
            out.push(Orphan {
                graceful: departed.contains(&r.owner),
                call_id: r.call_id.to_vec(),
                session_uri: r.session_uri.to_vec(),
                record: r.record.to_vec(),
            });
            false
        });
        out
    }

    /// Drops the replicas `keep` no longer wants (`dmq_replicas`: a node that joined holds
    /// them now).
    pub fn prune(&mut self, mut keep: impl FnMut(u64, &[u8]) -> bool) {
        self.by_dialog.retain(|_, r| keep(r.owner, &r.call_id));
    }

    pub fn len(&self) -> usize {
        self.by_dialog.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_dialog.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use allocator_api2::alloc::Global;

    #[test]
    fn latest_state_wins_and_a_leavers_share_is_handed_out_once() {
        let mut r = Replicas::new_in(1, Global);
        r.upsert(7, b"a", b"t1", b"sip:s@x", b"v1").unwrap();
        r.upsert(7, b"a", b"t1", b"sip:s@x", b"v2").unwrap();
        r.upsert(7, b"b", b"t2", b"sip:s@x", b"w").unwrap();
        r.upsert(8, b"c", b"t3", b"sip:s@x", b"z").unwrap();
        assert_eq!(r.len(), 3);
        let mine = r.take_orphans(&[8], |cid| cid == b"a");
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].record, b"v2");
        assert_eq!(
            r.len(),
            2,
            "the leaver's other replica waits for its own successor's state"
        );
        assert!(r.take_orphans(&[8], |cid| cid == b"a").is_empty(), "once");
        // its successor's state arrives: the replica is that node's now
        r.upsert(9, b"b", b"t2", b"sip:s@x", b"w2").unwrap();
        assert!(r.take_orphans(&[8, 9], |_| true).is_empty());
        // that successor falls silent before it was taken over again: found again
        assert_eq!(r.take_orphans(&[8], |cid| cid == b"b").len(), 1);
        r.remove(7, b"c", b"t3");
        assert_eq!(
            r.len(),
            1,
            "another owner's replica of the dialog stays (issue 17)"
        );
        r.remove(8, b"c", b"t3");
        assert!(r.is_empty());
    }

    /// Issue 17 (docs/cluster.md's known gap): a replica that arrives after its owner's
    /// goodbye (a KDMQ retransmission) is not kept until a restart.
    #[test]
    fn a_departed_peers_late_replica_is_dropped() {
        let mut r = Replicas::new_in(1, Global);
        r.upsert(7, b"a", b"t1", b"sip:s@x", b"v1").unwrap();
        r.departed(7);
        assert_eq!(r.take_orphans(&[], |_| true).len(), 1);
        r.upsert(7, b"a", b"t1", b"sip:s@x", b"v2").unwrap();
        assert!(r.is_empty(), "a late replica of a departed peer");
        r.upsert(8, b"b", b"t2", b"sip:s@x", b"w").unwrap();
        assert_eq!(r.len(), 1, "other peers' are kept");
        for owner in 100..100 + DEPARTED_KEPT as u64 {
            r.departed(owner);
        }
        r.upsert(7, b"a", b"t1", b"sip:s@x", b"v3").unwrap();
        assert_eq!(r.len(), 2, "only the last DEPARTED_KEPT are remembered");
    }
}
