//! The notifier state machine: sessions, their subscriptions, and the NOTIFYs they need.
//!
//! Sans-IO (quinn-proto style): every method takes the time (`now`, ms) and returns what to send;
//! the caller sends it. One `Notifier` holds a share of all sessions (the module keeps one per
//! hash slot, each behind its own cross-process lock); it allocates only through `A`.
//!
//! This file holds the struct, its constructors and inspection; each part of its work is a file
//! of `impl Notifier` (quinn-proto's `connection/` shape): `sessions.rs` (sessions and
//! participants), `subscribe.rs` (the SUBSCRIBE pipeline, dialogs, aliases), `outbox.rs` (when a
//! NOTIFY may go, completions, the timer, the NOTIFY's header lines), `view.rs` (the document a
//! subscriber is shown), `snapshot.rs` (rows for persistence and the cluster, restore,
//! takeover), `stats.rs` (counters).
use super::bytes::{try_bytes, Bytes, OutOfMemory};
pub use super::changes::Consumer;
use super::changes::{ChangeLog, Pending};
use super::conference_info::{
    self, Description, DisconnectionMethod, DocState, Document, EndpointStatus, UserEntry,
};
use super::config::Config;
use super::deadlines::Deadlines;
use super::gate::{SendGate, Unlimited};
use super::headers::{self, HeaderName};
use super::history::{self, Facts, History};
use super::key::{new_map, FixedState, Key, Map};
use super::persist;
use super::policy::{GroupAuth, GroupPolicy, NoGroupPolicy};
use super::profile::{self, Profile};
use super::reply::{Reply, SubscribeError};
use super::session::{
    is_listed, Participant, ParticipantUpdate, Session, SessionError, SessionKind, Subject,
    SubjectUpdate,
};
use super::subscription::{Beliefs, Dialog, Seen, Subscription, SubscriptionStrings, Termination};
use super::uri;
use allocator_api2::alloc::Allocator;
use allocator_api2::vec::Vec as AVec;
use hashbrown::HashTable;
use std::hash::BuildHasher;

mod fan_out_queue;
mod outbox;
mod sessions;
mod shared;
mod snapshot;
mod stats;
mod subscribe;
mod view;

use outbox::push_angle;
use shared::FanOut;
pub use snapshot::{Changes, Claim, RestoreError, SessionRow, SubscriptionRow};
pub use stats::{Stats, COUNTED_CODES};
use subscribe::dialog_hash;
pub use subscribe::strings_block;
use view::{document, Body};

/// Bits of a NOTIFY token used by the core; the caller may use the bits above.
pub const TOKEN_BITS: u32 = 52;
const CSEQ_BITS: u32 = 20;

/// The SUBSCRIBE being handled, as views into the received message.
#[derive(Debug, Clone, Copy, Default)]
pub struct SubscribeRequest<'a> {
    pub ruri: &'a [u8],
    pub call_id: &'a [u8],
    pub cseq: u32,
    pub from_uri: &'a [u8],
    pub from_tag: &'a [u8],
    pub to_uri: &'a [u8],
    pub to_tag: &'a [u8],
    pub contact: &'a [u8],
    pub record_route: &'a [u8],
    pub socket: &'a [u8],
    /// Every header as (name, body).
    pub headers: &'a [(&'a [u8], &'a [u8])],
    /// R94: the output profile the routing script chose (None: the configured default).
    pub profile: Option<Profile>,
}

/// What kind of NOTIFY (for statistics and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyKind {
    Full,
    Partial,
    Terminated,
}

/// An in-dialog NOTIFY to send, copied out of shared state so it can be sent without a lock.
#[derive(Debug, Clone)]
pub struct Notify {
    /// Handed back with the final response (`notify_completed`); uses the low TOKEN_BITS bits.
    pub token: u64,
    pub kind: NotifyKind,
    pub call_id: Vec<u8>,
    pub local_tag: Vec<u8>,
    pub remote_tag: Vec<u8>,
    pub local_uri: Vec<u8>,
    pub remote_uri: Vec<u8>,
    pub remote_target: Vec<u8>,
    pub route_set: Vec<u8>,
    pub socket: Vec<u8>,
    pub cseq: u32,
    /// Header lines, each ending in CRLF.
    pub headers: Vec<u8>,
    /// Empty when the NOTIFY has no body.
    pub body: Vec<u8>,
}

/// The response to a SUBSCRIBE and the NOTIFYs that follow it (R25: reply first).
#[derive(Debug, Clone)]
pub struct SubscribeOutcome {
    pub reply: Reply,
    pub notifies: Vec<Notify>,
    /// A subscription whose NOTIFYs wait for this reply: call `reply_sent` once it left (R25).
    pub held: Option<u32>,
}

/// How long a hold (see `SubscribeOutcome::held`) lasts at most, should its caller never
/// release it.
const HOLD_LIMIT_MS: u64 = 2000;

/// One line of `imconf.sessions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub uri: String,
    pub kind: SessionKind,
    pub group: Option<String>,
    pub participants: usize,
    pub subscriptions: usize,
}

/// One line of `imconf.subscriptions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionInfo {
    pub session: String,
    pub subscriber: String,
    pub call_id: String,
    pub expires_in: u32,
    pub version: u32,
    pub notifies_sent: u64,
    pub notify_in_flight: bool,
    /// R94.
    pub profile: Profile,
}

/// A NOTIFY tm refused to send is tried again this much later (`notify_unsent`)...
const UNSENT_RETRY_MS: u64 = 1000;
/// ...at most this many times in a row before its subscription is given up.
const MAX_UNSENT: u8 = 5;

/// CSeq numbers (and versions, R33) skipped by a subscription restored after a crash or taken
/// over from a silent peer: more than one flush or replication interval of NOTIFYs can have
/// used (R61 sends at most one per `min_notify_interval_ms` to a subscription; R40 needs only
/// that they grow).
const CRASH_CSEQ_MARGIN: u32 = 1000;

/// A share of the sessions and subscriptions, all allocated in `A`.
pub struct Notifier<A: Allocator + Clone, G: SendGate = Unlimited> {
    alloc: A,
    gate: G,
    /// R66: subscriptions waiting for a place under the cap, oldest first from `waiting_head`.
    waiting: AVec<u32, A>,
    waiting_head: usize,
    /// Tokens of terminating NOTIFYs in flight, with when they were sent: their subscription
    /// is gone (R69), but their completion still frees a place under the cap (unless they gave
    /// it up as slow, `slow_notify_ms`).
    final_tokens: Map<u64, u64, A>,
    seed: u64,
    sessions: Map<Key<A>, Session<A>, A>,
    subs: Map<u32, Subscription<A>, A>,
    /// (Call-ID, local tag) -> subscription id, for in-dialog SUBSCRIBEs: ids only, hashed and
    /// compared by their subscription's own strings (no copy of them, no allocation of its own
    /// per subscription); see `find_dialog`.
    dialogs: HashTable<u32, A>,
    /// Group identity key -> URI of its open session, when that session lives in another
    /// notifier (the module keeps one per hash slot); see `resolve`.
    aliases: Map<Key<A>, Bytes<A>, A>,
    next_id: u32,
    /// When the timer must look at a subscription again (R30, R61, R25); see `tick`.
    deadlines: Deadlines<A>,
    /// A deadline could not be recorded (out of memory): the next tick looks at every
    /// subscription, as a timer without deadlines would.
    rescan: bool,
    /// What to write back to the database (`db_url`); records nothing unless enabled.
    changes: ChangeLog<A>,
    /// R94: the profile of a restored subscription whose record predates profiles.
    old_records_profile: Profile,
    /// Restored subscriptions wait for `release_restored` before their first NOTIFY (a
    /// cluster with `db_url`: a peer may hold the same dialog in a newer state).
    hold_restored: bool,
    /// Whether the subscriptions polled in one call share their work (`shared.rs`); off only
    /// in tests that compare the documents with and without.
    share_documents: bool,
    /// Subscriptions a change made due, from `fan_out_head` on, when changes queue their
    /// NOTIFYs rather than return them (`fan_out_queue.rs`).
    fan_out_queue: AVec<u32, A>,
    fan_out_head: usize,
    defer_fan_out: bool,
    /// Changes each session's history keeps (`History::keeps` when None); set only by tests
    /// that cut it short at every change.
    history_keep: Option<usize>,
    pub stats: Stats,
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl<A: Allocator + Clone> Notifier<A> {
    /// `seed` keys the hash maps: the same value in every process that uses this notifier.
    pub fn new_in(seed: u64, alloc: A) -> Self {
        Notifier::with_gate(seed, alloc, Unlimited)
    }
}

impl<A: Allocator + Clone, G: SendGate> Notifier<A, G> {
    /// A notifier whose NOTIFYs pass `gate` (R66).
    pub fn with_gate(seed: u64, alloc: A, gate: G) -> Self {
        Notifier {
            gate,
            waiting: AVec::new_in(alloc.clone()),
            waiting_head: 0,
            final_tokens: new_map(seed, alloc.clone()),
            sessions: new_map(seed, alloc.clone()),
            subs: new_map(seed, alloc.clone()),
            dialogs: HashTable::new_in(alloc.clone()),
            aliases: new_map(seed, alloc.clone()),
            seed,
            next_id: 1,
            deadlines: Deadlines::new_in(seed, alloc.clone()),
            rescan: false,
            old_records_profile: Profile::Oma,
            hold_restored: false,
            share_documents: true,
            fan_out_queue: AVec::new_in(alloc.clone()),
            fan_out_head: 0,
            defer_fan_out: false,
            history_keep: None,
            changes: ChangeLog::new_in(seed, alloc.clone()),
            alloc,
            stats: Stats::default(),
        }
    }

    // ------------------------------------------------------------- inspection

    /// Tests only: whether the subscriptions polled in one call share their work
    /// (`shared.rs`), so that a test can check that sharing changes no byte.
    #[doc(hidden)]
    pub fn set_shared_documents(&mut self, on: bool) {
        self.share_documents = on;
    }

    /// Tests only: how many changes each session's history keeps (None: `History::keeps`), so
    /// that a test can cut it short at every change and check that this changes no byte.
    #[doc(hidden)]
    pub fn set_history_keep(&mut self, keep: Option<usize>) {
        self.history_keep = keep;
    }

    pub fn sessions_info(&self) -> Vec<SessionInfo> {
        self.sessions
            .values()
            .map(|s| SessionInfo {
                uri: lossy(&s.uri),
                kind: s.kind,
                group: s.group.as_ref().map(|g| lossy(g)),
                participants: s.participants.iter().filter(|p| p.is_present()).count(),
                subscriptions: s.subs.len(),
            })
            .collect()
    }

    /// `session_key`: only subscriptions to that session (see uri::session_key).
    pub fn subscriptions_info(
        &self,
        now: u64,
        session_key: Option<&[u8]>,
    ) -> Vec<SubscriptionInfo> {
        self.subs
            .values()
            .filter(|s| session_key.is_none_or(|k| s.session() == k))
            .map(|s| SubscriptionInfo {
                session: self
                    .sessions
                    .get(s.session())
                    .map_or_else(|| lossy(s.session()), |x| lossy(&x.uri)),
                subscriber: lossy(s.subscriber()),
                call_id: lossy(s.dialog.call_id()),
                expires_in: (s.expires_at.saturating_sub(now) / 1000) as u32,
                version: s.version,
                notifies_sent: s.notifies_sent,
                notify_in_flight: s.in_flight.is_some(),
                profile: s.profile,
            })
            .collect()
    }
}
