//! What changed since each consumer last looked: the write-back to the database (`db_url`,
//! docs/persistence.md) and the replication to the cluster's replica holders (`enable_dmq`,
//! docs/cluster.md), each with a log of its own, so that both can run on one node and each
//! drains only its own (issue 17). Sessions and subscriptions to write again, and rows to
//! delete. Marking allocates through the notifier's allocator and may fail; then that log says
//! `overflow` and its consumer rewrites everything instead of losing a change.
use super::bytes::{try_bytes, try_push, Bytes};
use super::key::{new_set, Key, Set};
use allocator_api2::alloc::Allocator;
use allocator_api2::vec::Vec as AVec;

/// Who drains a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consumer {
    /// The write-back to `db_url`.
    Database = 0,
    /// The replication of this node's subscriptions to its peers.
    Cluster = 1,
}

/// One log per `Consumer`; a change is marked in each enabled one.
pub struct ChangeLog<A: Allocator + Clone> {
    logs: [Log<A>; 2],
}

impl<A: Allocator + Clone> ChangeLog<A> {
    /// Logs that record nothing until enabled (no `db_url`, no cluster: no cost).
    pub fn new_in(seed: u64, alloc: A) -> Self {
        ChangeLog {
            logs: [Log::new_in(seed, alloc.clone()), Log::new_in(seed, alloc)],
        }
    }

    pub fn enable(&mut self, c: Consumer) {
        self.logs[c as usize].enabled = true;
    }

    pub fn session(&mut self, key: &[u8]) {
        self.logs.iter_mut().for_each(|l| l.session(key));
    }

    pub fn session_gone(&mut self, uri: &[u8]) {
        self.logs.iter_mut().for_each(|l| l.session_gone(uri));
    }

    pub fn sub(&mut self, id: u32) {
        self.logs.iter_mut().for_each(|l| l.sub(id));
    }

    pub fn sub_gone(&mut self, call_id: &[u8], local_tag: &[u8]) {
        self.logs
            .iter_mut()
            .for_each(|l| l.sub_gone(call_id, local_tag));
    }

    /// Empties `c`'s log.
    pub fn take(&mut self, c: Consumer) -> Pending {
        self.logs[c as usize].take()
    }
}

struct Log<A: Allocator + Clone> {
    enabled: bool,
    /// Keys (`uri::session_key`) of sessions to write again.
    sessions: Set<Key<A>, A>,
    /// Sessions to delete, by the URI they were opened with (the row's key).
    gone_sessions: AVec<Bytes<A>, A>,
    /// Ids of subscriptions to write again.
    subs: Set<u32, A>,
    /// Subscriptions to delete, by (Call-ID, local tag) (the row's key).
    gone_subs: AVec<(Bytes<A>, Bytes<A>), A>,
    overflow: bool,
    alloc: A,
}

impl<A: Allocator + Clone> Log<A> {
    fn new_in(seed: u64, alloc: A) -> Self {
        Log {
            enabled: false,
            sessions: new_set(seed, alloc.clone()),
            gone_sessions: AVec::new_in(alloc.clone()),
            subs: new_set(seed, alloc.clone()),
            gone_subs: AVec::new_in(alloc.clone()),
            overflow: false,
            alloc,
        }
    }

    fn session(&mut self, key: &[u8]) {
        if !self.enabled || self.overflow || self.sessions.contains(key) {
            return;
        }
        let ok = self.sessions.try_reserve(1).is_ok()
            && Key::try_new(key, self.alloc.clone())
                .map(|k| self.sessions.insert(k))
                .is_ok();
        self.overflow |= !ok;
    }

    fn session_gone(&mut self, uri: &[u8]) {
        if !self.enabled || self.overflow {
            return;
        }
        let ok = try_bytes(uri, self.alloc.clone())
            .and_then(|b| try_push(&mut self.gone_sessions, b))
            .is_ok();
        self.overflow |= !ok;
    }

    fn sub(&mut self, id: u32) {
        if !self.enabled || self.overflow {
            return;
        }
        let ok = self.subs.try_reserve(1).is_ok();
        if ok {
            self.subs.insert(id);
        }
        self.overflow |= !ok;
    }

    fn sub_gone(&mut self, call_id: &[u8], local_tag: &[u8]) {
        if !self.enabled || self.overflow {
            return;
        }
        let ok = try_bytes(call_id, self.alloc.clone())
            .and_then(|c| Ok((c, try_bytes(local_tag, self.alloc.clone())?)))
            .and_then(|pair| try_push(&mut self.gone_subs, pair))
            .is_ok();
        self.overflow |= !ok;
    }

    fn take(&mut self) -> Pending {
        Pending {
            overflow: std::mem::take(&mut self.overflow),
            sessions: self.sessions.drain().map(|k| k.0.to_vec()).collect(),
            subs: self.subs.drain().collect(),
            gone_sessions: self.gone_sessions.drain(..).map(|b| b.to_vec()).collect(),
            gone_subs: self
                .gone_subs
                .drain(..)
                .map(|(c, t)| (c.to_vec(), t.to_vec()))
                .collect(),
        }
    }
}

/// What `ChangeLog::take` found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pending {
    /// A change could not be recorded: rewrite everything.
    pub overflow: bool,
    /// Keys (`uri::session_key`) of sessions to write again.
    pub sessions: Vec<Vec<u8>>,
    /// Ids of subscriptions to write again.
    pub subs: Vec<u32>,
    /// URIs (as opened) of sessions to delete.
    pub gone_sessions: Vec<Vec<u8>>,
    /// (Call-ID, local tag) of subscriptions to delete.
    pub gone_subs: Vec<(Vec<u8>, Vec<u8>)>,
}
