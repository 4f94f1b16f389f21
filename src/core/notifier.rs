//! The notifier state machine: sessions, their subscriptions, and the NOTIFYs they need.
//!
//! Sans-IO (quinn-proto style): every method takes the time (`now`, ms) and returns what to send;
//! the caller sends it. One `Notifier` holds a share of all sessions (the module keeps one per
//! hash slot, each behind its own cross-process lock); it allocates only through `A`.
use super::bytes::{try_bytes, Bytes, OutOfMemory};
use super::changes::{ChangeLog, Pending};
use super::conference_info::{
    self, DisconnectionMethod, DocState, Document, EndpointStatus, UserEntry,
};
use super::config::Config;
use super::deadlines::Deadlines;
use super::gate::{SendGate, Unlimited};
use super::headers::{self, HeaderName};
use super::key::{new_map, new_set, FixedState, Key, Map, Set};
use super::persist;
use super::policy::{GroupAuth, GroupPolicy, NoGroupPolicy};
use super::reply::{Reply, SubscribeError};
use super::session::{Participant, ParticipantUpdate, Session, SessionError, SessionKind};
use super::subscription::{Dialog, Seen, SeenList, Subscription, SubscriptionStrings, Termination};
use super::uri;
use allocator_api2::alloc::Allocator;
use allocator_api2::vec::Vec as AVec;
use hashbrown::HashTable;
use std::hash::BuildHasher;

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

/// Response codes counted by `Stats::replies`.
pub const COUNTED_CODES: [u16; 10] = [200, 400, 403, 404, 406, 423, 481, 489, 500, 0];

/// Counters of one notifier (INTERFACE.md imconf.stats); the module sums them over slots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Indexed like COUNTED_CODES; the last entry counts any other code.
    pub replies: [u64; COUNTED_CODES.len()],
    pub notifies_full: u64,
    pub notifies_partial: u64,
    pub notifies_terminated: u64,
    pub notify_ok: u64,
    pub notify_failed: u64,
    /// Participant changes merged into an already pending NOTIFY (R62).
    pub coalesced: u64,
    pub rejected_by_policy: u64,
}

impl Stats {
    pub fn count_reply(&mut self, code: u16) {
        let i = COUNTED_CODES
            .iter()
            .position(|&c| c == code)
            .unwrap_or(COUNTED_CODES.len() - 1);
        self.replies[i] += 1;
    }

    pub fn add(&mut self, o: &Stats) {
        for (a, b) in self.replies.iter_mut().zip(o.replies.iter()) {
            *a += b;
        }
        self.notifies_full += o.notifies_full;
        self.notifies_partial += o.notifies_partial;
        self.notifies_terminated += o.notifies_terminated;
        self.notify_ok += o.notify_ok;
        self.notify_failed += o.notify_failed;
        self.coalesced += o.coalesced;
        self.rejected_by_policy += o.rejected_by_policy;
    }
}

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
}

/// A NOTIFY tm refused to send is tried again this much later (`notify_unsent`)...
const UNSENT_RETRY_MS: u64 = 1000;
/// ...at most this many times in a row before its subscription is given up.
const MAX_UNSENT: u8 = 5;

/// CSeq numbers skipped by a subscription restored after a crash: more than one flush interval
/// of NOTIFYs can have used (R40 needs only that they grow).
const CRASH_CSEQ_MARGIN: u32 = 1000;

/// One row of `imconf_sessions` (sql/imconf-*.sql).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub uri: Vec<u8>,
    pub kind: &'static str,
    pub group: Option<Vec<u8>>,
    pub state: Vec<u8>,
}

/// One row of `imconf_subscriptions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRow {
    pub call_id: Vec<u8>,
    pub local_tag: Vec<u8>,
    pub session_uri: Vec<u8>,
    pub subscriber: Vec<u8>,
    pub expires_wall_ms: u64,
    pub state: Vec<u8>,
}

/// What to write back: rows to (re)write and keys of rows to delete. `overflow`: a change
/// was not recorded, so these are every row and the tables' other rows are stale.
#[derive(Debug, Default)]
pub struct Changes {
    pub overflow: bool,
    pub sessions: Vec<SessionRow>,
    pub subs: Vec<SubscriptionRow>,
    pub gone_sessions: Vec<Vec<u8>>,
    pub gone_subs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
            && self.subs.is_empty()
            && self.gone_sessions.is_empty()
            && self.gone_subs.is_empty()
    }
}

/// Why a stored record was not restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreError {
    Malformed(&'static str),
    /// Already there (the same row twice).
    Duplicate,
    /// A subscription whose session was not restored.
    NoSession,
    OutOfMemory,
}

impl From<persist::DecodeError> for RestoreError {
    fn from(e: persist::DecodeError) -> Self {
        match e {
            persist::DecodeError::Malformed(w) => RestoreError::Malformed(w),
            persist::DecodeError::OutOfMemory => RestoreError::OutOfMemory,
        }
    }
}

impl From<OutOfMemory> for RestoreError {
    fn from(_: OutOfMemory) -> Self {
        RestoreError::OutOfMemory
    }
}

impl From<SessionError> for RestoreError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::UnknownSession => RestoreError::Malformed("group URI"),
            SessionError::AlreadyOpen => RestoreError::Duplicate,
            SessionError::OutOfMemory => RestoreError::OutOfMemory,
        }
    }
}

fn session_row<A: Allocator>(s: &Session<A>) -> SessionRow {
    let mut state = Vec::new();
    persist::encode_session(s, &mut state);
    SessionRow {
        uri: s.uri.to_vec(),
        kind: s.kind.as_str(),
        group: s.group.as_ref().map(|g| g.to_vec()),
        state,
    }
}

/// A share of the sessions and subscriptions, all allocated in `A`.
pub struct Notifier<A: Allocator + Clone, G: SendGate = Unlimited> {
    alloc: A,
    gate: G,
    /// R66: subscriptions waiting for a place under the cap, oldest first from `waiting_head`.
    waiting: AVec<u32, A>,
    waiting_head: usize,
    /// Tokens of terminating NOTIFYs in flight: their subscription is gone (R69), but their
    /// completion still frees a place under the cap.
    final_tokens: Set<u64, A>,
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
            final_tokens: new_set(seed, alloc.clone()),
            sessions: new_map(seed, alloc.clone()),
            subs: new_map(seed, alloc.clone()),
            dialogs: HashTable::new_in(alloc.clone()),
            aliases: new_map(seed, alloc.clone()),
            seed,
            next_id: 1,
            deadlines: Deadlines::new_in(seed, alloc.clone()),
            rescan: false,
            changes: ChangeLog::new_in(seed, alloc.clone()),
            alloc,
            stats: Stats::default(),
        }
    }

    // ---------------------------------------------------------------- sessions

    /// INTERFACE.md `imconf_session_open`. Opening an open session changes nothing.
    pub fn open_session(
        &mut self,
        session_uri: &[u8],
        kind: SessionKind,
        group: Option<&[u8]>,
    ) -> Result<(), SessionError> {
        let key = uri::session_key(session_uri).ok_or(SessionError::UnknownSession)?;
        if self.sessions.contains_key(key.as_slice()) {
            return Err(SessionError::AlreadyOpen);
        }
        let session = Session::try_new(session_uri, kind, group, self.seed, self.alloc.clone())?;
        let key = Key::try_new(&key, self.alloc.clone())?;
        self.sessions.try_reserve(1).map_err(|_| OutOfMemory)?;
        if let Some(g) = group {
            // R3: the group identity stands for this session (the module adds the same alias
            // in the group URI's own slot when that is another notifier)
            self.add_alias(g, session_uri)?;
        }
        self.changes.session(&key.0);
        self.sessions.insert(key, session);
        Ok(())
    }

    /// R67, R38: every subscription gets `terminated;reason=noresource` and the session is gone.
    pub fn close_session(
        &mut self,
        cfg: &Config,
        now: u64,
        session_uri: &[u8],
    ) -> Result<Vec<Notify>, SessionError> {
        let key = uri::session_key(session_uri).ok_or(SessionError::UnknownSession)?;
        let session = self
            .sessions
            .remove(key.as_slice())
            .ok_or(SessionError::UnknownSession)?;
        let ids: Vec<u32> = session.subs.iter().copied().collect();
        if let Some(g) = &session.group {
            self.remove_alias(g, session_uri);
        }
        self.changes.session_gone(&session.uri);
        drop(session);
        let mut out = Vec::new();
        for id in ids {
            if let Some(sub) = self.subs.get_mut(&id) {
                sub.terminate = Some(Termination::NoResource);
            }
            out.extend(self.poll(cfg, now, id));
        }
        Ok(out)
    }

    /// R72: the node stops and its subscriptions will not outlive it: every subscription gets
    /// `terminated;reason=deactivated` at once (best effort: no response will be awaited, so a
    /// NOTIFY still in flight does not hold the last one back) and is forgotten.
    pub fn shutdown(&mut self, cfg: &Config, now: u64) -> Vec<Notify> {
        let ids: Vec<u32> = self.subs.keys().copied().collect();
        let mut out = Vec::new();
        for id in ids {
            if let Some(sub) = self.subs.get_mut(&id) {
                sub.terminate = Some(Termination::Deactivated);
                if sub.in_flight.take().is_some() {
                    self.gate.release(); // its response will never be read
                }
            }
            out.extend(self.poll(cfg, now, id));
        }
        out
    }

    /// R71: after the group documents changed, every live subscription of a group session
    /// whose subscriber `policy` now denies ends with `terminated;reason=rejected`, no body.
    /// An unreadable document (`Unavailable`) ends nothing: it is not a policy decision.
    pub fn reauthorize(&mut self, cfg: &Config, now: u64, policy: &dyn GroupPolicy) -> Vec<Notify> {
        let mut revoked = Vec::new();
        for (id, sub) in self.subs.iter() {
            if sub.terminate.is_some() {
                continue;
            }
            let Some(session) = self.sessions.get(sub.session()) else {
                continue;
            };
            let Some(group) = session.group.as_ref().filter(|_| session.kind.is_group()) else {
                continue;
            };
            if policy.authorize(group, sub.asserted(), sub.anonymous) == Some(GroupAuth::Deny) {
                revoked.push(*id);
            }
        }
        let mut out = Vec::new();
        for id in revoked {
            if let Some(sub) = self.subs.get_mut(&id) {
                sub.terminate = Some(Termination::Rejected);
                self.stats.rejected_by_policy += 1;
            }
            out.extend(self.poll(cfg, now, id));
        }
        out
    }

    /// Every open group session with its group URI (R88 when the documents change).
    pub fn group_sessions(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.sessions
            .values()
            .filter(|s| s.kind.is_group())
            .filter_map(|s| Some((s.uri.to_vec(), s.group.as_ref()?.to_vec())))
            .collect()
    }

    /// Whether `aoia` is a participant of the session with a Nick Name already (R49: a name the
    /// participant asserted wins over the group document's `rl:display-name`).
    pub fn has_nick(&self, session_uri: &[u8], aoia: &[u8]) -> bool {
        let Some(key) = uri::session_key(session_uri) else {
            return false;
        };
        let Some(session) = self.sessions.get(key.as_slice()) else {
            return false;
        };
        session
            .participant_index(aoia)
            .and_then(|i| session.participants.get(i))
            .is_some_and(|p| p.nick.is_some())
    }

    /// The open sessions of `group_uri` (R67 when its document is removed).
    pub fn sessions_of_group(&self, group_uri: &[u8]) -> Vec<Vec<u8>> {
        let Some(gkey) = uri::session_key(group_uri) else {
            return Vec::new();
        };
        self.sessions
            .values()
            .filter(|s| {
                s.group
                    .as_ref()
                    .and_then(|g| uri::session_key(g))
                    .is_some_and(|k| k.as_slice() == gkey.as_slice())
            })
            .map(|s| s.uri.to_vec())
            .collect()
    }

    /// INTERFACE.md `imconf_participant`: R26 partial NOTIFYs (rate limited, R61-R62) and R68.
    pub fn participant(
        &mut self,
        cfg: &Config,
        now: u64,
        session_uri: &[u8],
        update: &ParticipantUpdate<'_>,
    ) -> Result<Vec<Notify>, SessionError> {
        self.participant_stamped(cfg, now, session_uri, update, 0)
    }

    /// `participant` with a cluster stamp (docs/cluster.md): a change stamped at or below the
    /// one that last changed this user is older and changes nothing (last writer wins), so
    /// nodes that apply the same changes in different orders end in the same state.
    pub fn participant_stamped(
        &mut self,
        cfg: &Config,
        now: u64,
        session_uri: &[u8],
        update: &ParticipantUpdate<'_>,
        stamp: u64,
    ) -> Result<Vec<Notify>, SessionError> {
        let key = uri::session_key(session_uri).ok_or(SessionError::UnknownSession)?;
        let session = self
            .sessions
            .get_mut(key.as_slice())
            .ok_or(SessionError::UnknownSession)?;
        if stamp != 0 && session.stamp_of(update.aoia) >= stamp {
            return Ok(Vec::new());
        }
        let Some(idx) = session.apply(update, self.alloc.clone())? else {
            if stamp != 0 {
                session.remember_departure(update, stamp, self.alloc.clone())?;
            }
            return Ok(Vec::new());
        };
        if let Some(p) = session.participants.get_mut(idx) {
            p.stamp = stamp;
        }
        let ids: Vec<u32> = session.subs.iter().copied().collect();
        self.changes.session(&key);
        let leaving = update.status == EndpointStatus::Disconnected && cfg.terminate_on_leave;
        let leaver = uri::identity_key(update.aoia);
        let mut out = Vec::new();
        for id in ids {
            let Some(sub) = self.subs.get_mut(&id) else {
                continue;
            };
            if leaving && sub.subscriber() == leaver.as_slice() && sub.terminate.is_none() {
                // R68: the leaver's own subscriptions end; the others hear of the departure (R57)
                sub.terminate = Some(Termination::NoResource);
            } else if sub.dirty || sub.in_flight.is_some() {
                sub.dirty = true;
                self.stats.coalesced += 1;
            } else {
                sub.dirty = true;
            }
            out.extend(self.poll(cfg, now, id));
        }
        Ok(out)
    }

    /// R52, R88: the session's `maximum-user-count` (the group document's
    /// `<max-participant-count>`; None: unknown), written under `rcs_compat` (R91). It sends
    /// nothing by itself: the next document of each subscription carries it.
    pub fn set_max_user_count(
        &mut self,
        session_uri: &[u8],
        max: Option<u32>,
    ) -> Result<(), SessionError> {
        let key = uri::session_key(session_uri).ok_or(SessionError::UnknownSession)?;
        let session = self
            .sessions
            .get_mut(key.as_slice())
            .ok_or(SessionError::UnknownSession)?;
        if session.max_user_count != max {
            session.max_user_count = max;
            self.changes.session(&key);
        }
        Ok(())
    }

    // ------------------------------------------------------------- subscribing

    /// Handles a SUBSCRIBE end to end (RULES.md §2-§4). `local_tag` is the To-tag the caller
    /// puts in the reply to an initial SUBSCRIBE; it becomes the dialog's local tag. Group
    /// sessions are authorized like ad-hoc ones (no group documents); see `subscribe_with`.
    pub fn subscribe(
        &mut self,
        cfg: &Config,
        now: u64,
        req: &SubscribeRequest<'_>,
        local_tag: &[u8],
    ) -> SubscribeOutcome {
        self.subscribe_with(cfg, now, req, local_tag, &NoGroupPolicy)
    }

    /// `subscribe`, with group sessions authorized by `policy` (R8).
    pub fn subscribe_with(
        &mut self,
        cfg: &Config,
        now: u64,
        req: &SubscribeRequest<'_>,
        local_tag: &[u8],
        policy: &dyn GroupPolicy,
    ) -> SubscribeOutcome {
        self.subscribe_in_block(cfg, now, req, local_tag, policy, &mut None)
    }

    /// `subscribe_with`, where a new subscription's strings go into `block` (taken from it)
    /// when it is big enough: see `strings_block`. A block left in `block` is the caller's to
    /// free (after its lock, too).
    pub fn subscribe_in_block(
        &mut self,
        cfg: &Config,
        now: u64,
        req: &SubscribeRequest<'_>,
        local_tag: &[u8],
        policy: &dyn GroupPolicy,
        block: &mut Option<Bytes<A>>,
    ) -> SubscribeOutcome {
        let outcome = match self.try_subscribe(cfg, now, req, local_tag, policy, block) {
            Ok(o) => o,
            Err(e) => {
                if matches!(
                    e,
                    SubscribeError::NotAuthorized | SubscribeError::PolicyLimit
                ) {
                    self.stats.rejected_by_policy += 1;
                }
                SubscribeOutcome {
                    reply: e.reply(),
                    notifies: Vec::new(),
                    held: None,
                }
            }
        };
        self.stats.count_reply(outcome.reply.code);
        outcome
    }

    fn try_subscribe(
        &mut self,
        cfg: &Config,
        now: u64,
        req: &SubscribeRequest<'_>,
        local_tag: &[u8],
        policy: &dyn GroupPolicy,
        block: &mut Option<Bytes<A>>,
    ) -> Result<SubscribeOutcome, SubscribeError> {
        let h = RequestHeaders::collect(req.headers);
        // P1 (R10, R14)
        let event = h.event.ok_or(SubscribeError::BadEvent)?;
        let event = headers::parse_event(event).map_err(|_| SubscribeError::Malformed)?;
        if event.package != b"conference" {
            return Err(SubscribeError::BadEvent);
        }
        let expires = match h.expires {
            Some(e) => Some(headers::parse_expires(e).map_err(|_| SubscribeError::Malformed)?),
            None => None,
        };
        if req.call_id.is_empty() || req.from_tag.is_empty() {
            return Err(SubscribeError::Malformed);
        }
        // P2 (R13)
        if !req.to_tag.is_empty() {
            return self.in_dialog(cfg, now, req, event.id, expires);
        }
        // RFC 6665: an initial SUBSCRIBE without Contact is malformed (R14)
        if req.contact.is_empty() {
            return Err(SubscribeError::Malformed);
        }
        // P3 (R1, R2, R14)
        let mut key = uri::session_key(req.ruri).ok_or(SubscribeError::Malformed)?;
        if !self.sessions.contains_key(key.as_slice()) {
            // R1, R3: an IM Group Identity hosted here stands for its active session
            key = self
                .aliases
                .get(key.as_slice())
                .and_then(|target| uri::session_key(target))
                .ok_or(SubscribeError::UnknownConference)?;
        }
        let session = self
            .sessions
            .get(key.as_slice())
            .ok_or(SubscribeError::UnknownConference)?;
        // P4 (R4)
        if !headers::has_oma_im_feature_tag(&h.accept_contact, cfg.accept_cpm_icsi) {
            return Err(SubscribeError::MissingImFeatureTag);
        }
        // P5 (R5, R6)
        let aoia = asserted_identity(cfg, req, &h).ok_or(SubscribeError::NoAssertedIdentity)?;
        let aoia_key = uri::identity_key(aoia);
        let anonymous = headers::privacy_requested(&h.privacy);
        let by_group = match &session.group {
            Some(g) if session.kind.is_group() => policy.authorize(g, aoia, anonymous),
            _ => None,
        };
        match by_group {
            // R8 (R81-R85)
            Some(GroupAuth::Allow) => {}
            Some(GroupAuth::Deny) => return Err(SubscribeError::NotAuthorized),
            Some(GroupAuth::Unavailable) => return Err(SubscribeError::PolicyUnavailable),
            // R6: 1-1 and ad-hoc sessions, and group sessions without group documents
            None if !session.is_current_participant(aoia) => {
                return Err(SubscribeError::NotAuthorized)
            }
            None => {}
        }
        // R7
        if session.subs.len() >= cfg.max_subs_per_session {
            return Err(SubscribeError::PolicyLimit);
        }
        if session.subs_of(&aoia_key) >= cfg.max_subs_per_user_per_session {
            return Err(SubscribeError::PolicyLimit);
        }
        // P7 (R11)
        if !headers::accept_admits_conference_info(&h.accept) {
            return Err(SubscribeError::NotAcceptable);
        }
        // P8 (R12)
        let expires = expires.unwrap_or(cfg.default_expires);
        if expires != 0 && expires < cfg.min_expires {
            return Err(SubscribeError::IntervalTooBrief {
                min_expires: cfg.min_expires,
            });
        }
        // P9 (R19, R24)
        let granted = expires.min(cfg.max_expires);
        let identity = if session.kind.is_group() {
            session.root_entity().to_vec()
        } else {
            cfg.conference_factory_uri.as_bytes().to_vec()
        };
        let who = Subscriber {
            key: &aoia_key,
            asserted: aoia,
            anonymous,
        };
        let strings = new_strings(req, &key, &who, event.id, local_tag);
        let block = block
            .take()
            .unwrap_or_else(|| AVec::new_in(self.alloc.clone()));
        let id = self.create(now, &strings, block, req.cseq, who.anonymous, granted)?;
        let sub = self.subs.get_mut(&id).ok_or(SubscribeError::Internal)?;
        if granted == 0 {
            sub.terminate = Some(Termination::TimeoutWithState); // R29 fetch
        } else {
            sub.needs_full = true; // R25
        }
        // a new dialog has nothing in flight: its first NOTIFY goes to the caller, after the reply
        let notifies = self.poll(cfg, now, id).into_iter().collect();
        Ok(SubscribeOutcome {
            reply: ok_reply(cfg, granted, Some(&identity)),
            notifies,
            held: None,
        })
    }

    /// A new subscription with `strings`, copied into `block` (R24, R30).
    fn create(
        &mut self,
        now: u64,
        strings: &SubscriptionStrings<'_>,
        block: Bytes<A>,
        remote_cseq: u32,
        anonymous: bool,
        granted: u32,
    ) -> Result<u32, OutOfMemory> {
        let a = self.alloc.clone();
        let id = self.allocate_id();
        // R40: any start value; 0 makes the first NOTIFY CSeq 1
        let dialog = Dialog::try_new(strings, block, remote_cseq, 0)?;
        let sub = Subscription {
            id,
            anonymous,
            dialog,
            expires_at: now + u64::from(granted) * 1000,
            version: 0,
            seen: SeenList::new_in(a.clone()),
            dirty: false,
            needs_full: false,
            terminate: None,
            in_flight: None,
            held_since: None,
            waiting: false,
            last_notify_at: None,
            notifies_sent: 0,
            unsent: 0,
        };
        self.subs.try_reserve(1).map_err(|_| OutOfMemory)?;
        self.reserve_dialog()?;
        let session = self.sessions.get_mut(sub.session()).ok_or(OutOfMemory)?;
        session.add_sub(id, sub.subscriber(), a)?;
        let expires_at = sub.expires_at;
        self.insert_dialog(&sub);
        self.subs.insert(id, sub);
        self.wake_at(id, expires_at); // R30
        self.changes.sub(id);
        Ok(id)
    }

    /// Room in `dialogs` for one more, so that `insert_dialog` cannot fail.
    fn reserve_dialog(&mut self) -> Result<(), OutOfMemory> {
        let (subs, seed) = (&self.subs, self.seed);
        self.dialogs
            .try_reserve(1, |id| {
                subs.get(id).map_or(0, |s| dialog_hash(seed, &s.dialog))
            })
            .map_err(|_| OutOfMemory)
    }

    /// Records the dialog of `sub` (after `reserve_dialog`).
    fn insert_dialog(&mut self, sub: &Subscription<A>) {
        let (subs, seed) = (&self.subs, self.seed);
        self.dialogs
            .insert_unique(dialog_hash(seed, &sub.dialog), sub.id, |id| {
                subs.get(id).map_or(0, |s| dialog_hash(seed, &s.dialog))
            });
    }

    /// The subscription of dialog (Call-ID, local tag), comparing the strings themselves.
    fn find_dialog(&self, call_id: &[u8], local_tag: &[u8]) -> Option<u32> {
        let hash = FixedState::with_seed(self.seed).hash_one((call_id, local_tag));
        self.dialogs
            .find(hash, |id| {
                self.subs.get(id).is_some_and(|s| {
                    s.dialog.call_id() == call_id && s.dialog.local_tag() == local_tag
                })
            })
            .copied()
    }

    /// The group URI of an open session, if it has one.
    pub fn group_of(&self, session_uri: &[u8]) -> Option<Vec<u8>> {
        let key = uri::session_key(session_uri)?;
        self.sessions
            .get(key.as_slice())?
            .group
            .as_ref()
            .map(|g| g.to_vec())
    }

    /// R3 across notifiers: `group_uri` stands for the session `session_uri` held elsewhere.
    /// The first session of a group keeps the alias while it is open.
    pub fn add_alias(&mut self, group_uri: &[u8], session_uri: &[u8]) -> Result<(), SessionError> {
        let key = uri::session_key(group_uri).ok_or(SessionError::UnknownSession)?;
        if self.aliases.contains_key(key.as_slice()) {
            return Ok(());
        }
        let target = try_bytes(session_uri, self.alloc.clone())?;
        let key = Key::try_new(&key, self.alloc.clone())?;
        self.aliases.try_reserve(1).map_err(|_| OutOfMemory)?;
        self.aliases.insert(key, target);
        Ok(())
    }

    /// Drops the alias of `group_uri` if it points at `session_uri`.
    pub fn remove_alias(&mut self, group_uri: &[u8], session_uri: &[u8]) {
        let Some(key) = uri::session_key(group_uri) else {
            return;
        };
        if self
            .aliases
            .get(key.as_slice())
            .is_some_and(|t| uri::session_key(t) == uri::session_key(session_uri))
        {
            self.aliases.remove(key.as_slice());
        }
    }

    /// Where an initial SUBSCRIBE to `request_uri` is served: None when here (a session of
    /// this notifier, or unknown: the pipeline answers), Some(session URI) when the URI is a
    /// group identity (its session may be held by another notifier).
    pub fn resolve(&self, request_uri: &[u8]) -> Option<Vec<u8>> {
        let key = uri::session_key(request_uri)?;
        if self.sessions.contains_key(key.as_slice()) {
            return None;
        }
        self.aliases.get(key.as_slice()).map(|t| t.to_vec())
    }

    fn allocate_id(&mut self) -> u32 {
        loop {
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1).max(1);
            if !self.subs.contains_key(&id) {
                return id;
            }
        }
    }

    /// R13, R27, R28: refresh or unsubscribe within an existing dialog.
    fn in_dialog(
        &mut self,
        cfg: &Config,
        now: u64,
        req: &SubscribeRequest<'_>,
        event_id: Option<&[u8]>,
        expires: Option<u32>,
    ) -> Result<SubscribeOutcome, SubscribeError> {
        let id = self
            .find_dialog(req.call_id, req.to_tag)
            .ok_or(SubscribeError::NoSuchDialog)?;
        let sub = self.subs.get_mut(&id).ok_or(SubscribeError::NoSuchDialog)?;
        let same_id = sub.dialog.event_id() == event_id;
        if sub.terminate.is_some() || sub.dialog.remote_tag() != req.from_tag || !same_id {
            return Err(SubscribeError::NoSuchDialog);
        }
        if req.cseq <= sub.dialog.remote_cseq {
            return Err(SubscribeError::CSeqOutOfOrder);
        }
        let expires = expires.unwrap_or(cfg.default_expires);
        if expires != 0 && expires < cfg.min_expires {
            return Err(SubscribeError::IntervalTooBrief {
                min_expires: cfg.min_expires,
            });
        }
        sub.dialog.remote_cseq = req.cseq;
        self.changes.sub(id);
        let granted = expires.min(cfg.max_expires);
        if granted == 0 {
            sub.terminate = Some(Termination::TimeoutWithState); // R28
        } else {
            sub.expires_at = now + u64::from(granted) * 1000;
            if !req.contact.is_empty() {
                sub.dialog.set_remote_target(req.contact)?;
            }
            sub.needs_full = true; // R27
            let expires_at = sub.expires_at;
            self.wake_at(id, expires_at); // R30 (a shorter interval than before)
        }
        let notifies: Vec<Notify> = self.poll(cfg, now, id).into_iter().collect();
        // R25, R32: the NOTIFY this request calls for waits for one in flight; whoever sees that
        // one complete must not send it before our reply leaves
        let mut held = None;
        if let Some(sub) = self.subs.get_mut(&id) {
            if notifies.is_empty() && sub.in_flight.is_some() {
                sub.held_since = Some(now);
                held = Some(id);
            }
        }
        Ok(SubscribeOutcome {
            reply: ok_reply(cfg, granted, None),
            notifies,
            held,
        })
    }

    // ---------------------------------------------------------------- NOTIFYs

    /// The NOTIFY of `token` is over (answered, or refused by tm): its place under the cap is
    /// freed and its subscription's NOTIFY in flight cleared. Returns that subscription, or
    /// None for a terminating NOTIFY (R69: gone already) and for late or repeated tokens.
    fn settle(&mut self, token: u64) -> Option<u32> {
        let id = ((token & ((1u64 << TOKEN_BITS) - 1)) >> CSEQ_BITS) as u32;
        let cseq_low = (token & ((1u64 << CSEQ_BITS) - 1)) as u32;
        let core_token = token & ((1u64 << TOKEN_BITS) - 1);
        if self.final_tokens.remove(&core_token) {
            self.gate.release();
            return None;
        }
        let sub = self.subs.get_mut(&id)?;
        match sub.in_flight {
            Some(c) if c & ((1 << CSEQ_BITS) - 1) == cseq_low => sub.in_flight = None,
            _ => return None,
        }
        self.gate.release();
        Some(id)
    }

    /// R31: the final response of a NOTIFY. Returns the next NOTIFY of that subscription, if due.
    pub fn notify_completed(
        &mut self,
        cfg: &Config,
        now: u64,
        token: u64,
        code: u16,
    ) -> Vec<Notify> {
        let mut out = Vec::new();
        if let Some(id) = self.settle(token) {
            self.changes.sub(id); // confirmed: a restart need not resend it in full
            if (200..300).contains(&code) {
                self.stats.notify_ok += 1;
                if let Some(sub) = self.subs.get_mut(&id) {
                    sub.unsent = 0;
                }
                out.extend(self.poll(cfg, now, id));
            } else {
                // 481 MUST, 408 SHOULD, any other failure [ENG]: the subscription is removed
                self.stats.notify_failed += 1;
                self.remove(id);
            }
        }
        out.extend(self.kick(cfg, now));
        out
    }

    /// tm could not send the NOTIFY of `token` (no shared memory for its transaction, say):
    /// nothing reached the subscriber. The subscription stays and sends its state again, in
    /// full and with the same CSeq and version, after `UNSENT_RETRY_MS` (or with the next
    /// change); after `MAX_UNSENT` refusals in a row it is removed like a failed one (R31).
    /// A refused terminating NOTIFY only frees its place.
    pub fn notify_unsent(&mut self, cfg: &Config, now: u64, token: u64) -> Vec<Notify> {
        if let Some(id) = self.settle(token) {
            if let Some(sub) = self.subs.get_mut(&id) {
                // it never left: its CSeq and version are used again (R40, R33 stay gapless)
                sub.dialog.local_cseq = sub.dialog.local_cseq.wrapping_sub(1);
                sub.version = sub.version.saturating_sub(1);
                sub.unsent = sub.unsent.saturating_add(1);
                if sub.unsent >= MAX_UNSENT {
                    self.stats.notify_failed += 1;
                    self.remove(id);
                } else {
                    // what the subscriber was told is unknown now: a full document puts it right
                    sub.needs_full = true;
                    self.wake_at(id, now + UNSENT_RETRY_MS);
                }
            }
        }
        self.kick(cfg, now)
    }

    /// R66: NOTIFYs that waited for a place, oldest first, while places are free.
    fn kick(&mut self, cfg: &Config, now: u64) -> Vec<Notify> {
        let mut out = Vec::new();
        while self.waiting_head < self.waiting.len() {
            let id = self.waiting[self.waiting_head];
            let Some(sub) = self.subs.get_mut(&id) else {
                self.waiting_head += 1;
                continue;
            };
            // leave the oldest at the head until a place is free (FIFO)
            if !self.gate.try_acquire() {
                break;
            }
            self.gate.release(); // poll takes it (another process may win it first: then
                                 // this one queues again, at the back)
            self.waiting_head += 1;
            sub.waiting = false;
            out.extend(self.poll(cfg, now, id));
        }
        if self.waiting_head == self.waiting.len() {
            self.waiting.clear();
            self.waiting_head = 0;
        }
        out
    }

    /// Takes a place under the cap, or queues `id` for one (R66).
    fn admit(&mut self, id: u32) -> bool {
        if self.gate.try_acquire() {
            return true;
        }
        if let Some(sub) = self.subs.get_mut(&id) {
            if !sub.waiting {
                if self.waiting.try_reserve(1).is_ok() {
                    sub.waiting = true;
                    self.waiting.push(id);
                } else {
                    // the queue cannot grow: the next tick's full scan finds it due
                    self.rescan = true;
                }
            }
        }
        false
    }

    /// The reply that `SubscribeOutcome::held` waited for has left: the NOTIFYs may follow.
    pub fn reply_sent(&mut self, cfg: &Config, now: u64, id: u32) -> Vec<Notify> {
        match self.subs.get_mut(&id) {
            Some(sub) => sub.held_since = None,
            None => return Vec::new(),
        }
        self.poll(cfg, now, id).into_iter().collect()
    }

    /// Timer: R30 expiries, NOTIFYs held back by the rate limit (R61) or by a reply that never
    /// reported leaving (R25), and NOTIFYs that waited for a place under the cap (R66).
    ///
    /// It looks only at the subscriptions whose deadline has come (`Deadlines`), not at every
    /// subscription: O(due log n) rather than O(n) every `timer_interval_ms`. Only after an
    /// allocation failure (a deadline or a queue place that could not be recorded) does it
    /// scan them all once.
    pub fn tick(&mut self, cfg: &Config, now: u64) -> Vec<Notify> {
        let mut out = self.kick(cfg, now);
        let due: Vec<u32> = if std::mem::take(&mut self.rescan) {
            self.subs.keys().copied().collect()
        } else {
            // collected first: what handling them arms for `now` waits for the next tick
            std::iter::from_fn(|| self.deadlines.pop_due(now)).collect()
        };
        for id in due {
            let Some(sub) = self.subs.get_mut(&id) else {
                continue;
            };
            if sub.terminate.is_none() && sub.expires_at <= now {
                sub.terminate = Some(Termination::Timeout);
            }
            let has_work = sub.dirty || sub.terminate.is_some() || sub.needs_full;
            if sub.in_flight.is_none() && !sub.waiting && has_work {
                out.extend(self.poll(cfg, now, id));
            }
            // while it lives, a subscription stays armed for its expiry
            if let Some(sub) = self.subs.get(&id) {
                if sub.terminate.is_none() {
                    let expires_at = sub.expires_at;
                    self.wake_at(id, expires_at);
                }
            }
        }
        out
    }

    /// Arms the timer for subscription `id` at `at` (or keeps an earlier deadline).
    fn wake_at(&mut self, id: u32, at: u64) {
        if self.deadlines.arm(id, at).is_err() {
            self.rescan = true;
        }
    }

    /// Subscriptions with a timer deadline, and the deadline structure's entries (dead ones
    /// included): for tests of its bounds.
    pub fn timer_load(&self) -> (usize, usize) {
        (self.deadlines.armed(), self.deadlines.entries())
    }

    pub fn subscription_count(&self) -> usize {
        self.subs.len()
    }

    /// Decides the next NOTIFY of subscription `id` (R32: one in flight at a time).
    fn poll(&mut self, cfg: &Config, now: u64, id: u32) -> Option<Notify> {
        let sub = self.subs.get_mut(&id)?;
        if sub.in_flight.is_some() {
            return None;
        }
        if let Some(t) = sub.held_since.filter(|t| now < t + HOLD_LIMIT_MS) {
            // the reply to a SUBSCRIBE of this dialog has not left yet (R25): `reply_sent`
            // polls again, the timer at the latest when the hold lapses
            self.wake_at(id, t + HOLD_LIMIT_MS);
            return None;
        }
        sub.held_since = None;
        if sub.terminate.is_some() {
            return self.poll_final(cfg, now, id);
        }
        if !sub.needs_full && !sub.dirty {
            return None;
        }
        let earliest = sub
            .last_notify_at
            .map_or(0, |t| t + cfg.min_notify_interval_ms);
        if !sub.needs_full && now < earliest {
            self.wake_at(id, earliest); // R61: the timer sends it then
            return None;
        }
        if !self.admit(id) {
            return None;
        }
        let n = self.poll_admitted(cfg, now, id);
        if n.is_none() {
            self.gate.release();
        }
        n
    }

    /// The last NOTIFY of a subscription (R64: never suppressed, pending changes dropped).
    fn poll_final(&mut self, cfg: &Config, now: u64, id: u32) -> Option<Notify> {
        if !self.admit(id) {
            return None;
        }
        let sub = self.subs.get_mut(&id)?;
        let t = sub.terminate?;
        let body = match self.sessions.get(sub.session()) {
            Some(s) if t.with_state() => document(s, sub, cfg, true).ok().flatten(),
            _ => None,
        };
        let state = format!("terminated;reason={}", t.reason());
        let n = build_notify(sub, cfg, now, NotifyKind::Terminated, &state, body);
        self.stats.notifies_terminated += 1;
        self.remove(id); // R69: gone whatever the response
        if self.final_tokens.try_reserve(1).is_ok() {
            self.final_tokens.insert(n.token);
        } else {
            self.gate.release(); // cannot track it: free its place now rather than leak it
        }
        Some(n)
    }

    /// A NOTIFY with state, once it has a place under the cap.
    fn poll_admitted(&mut self, cfg: &Config, now: u64, id: u32) -> Option<Notify> {
        let sub = self.subs.get_mut(&id)?;
        let session = self.sessions.get(sub.session())?;
        let body = match document(session, sub, cfg, sub.needs_full) {
            Ok(Some(b)) => b,
            Ok(None) => {
                sub.dirty = false; // R55: nothing to say
                return None;
            }
            Err(OutOfMemory) => {
                self.rescan = true; // retried at the next tick
                return None;
            }
        };
        let kind = if body.full {
            NotifyKind::Full
        } else {
            NotifyKind::Partial
        };
        sub.dirty = body.delete_follows;
        sub.needs_full = false;
        let state = format!("active;expires={}", sub.expires_in(now));
        match kind {
            NotifyKind::Full => self.stats.notifies_full += 1,
            _ => self.stats.notifies_partial += 1,
        }
        let n = build_notify(sub, cfg, now, kind, &state, Some(body));
        self.changes.sub(id); // CSeq, version and what the subscriber was told
        Some(n)
    }

    fn remove(&mut self, id: u32) {
        let Some(sub) = self.subs.remove(&id) else {
            return;
        };
        self.deadlines.cancel(id);
        self.changes
            .sub_gone(sub.dialog.call_id(), sub.dialog.local_tag());
        if let Ok(entry) = self
            .dialogs
            .find_entry(dialog_hash(self.seed, &sub.dialog), |&x| x == id)
        {
            entry.remove();
        }
        if let Some(s) = self.sessions.get_mut(sub.session()) {
            s.remove_sub(id, sub.subscriber());
        }
    }

    // ------------------------------------------------------------ persistence

    /// Starts recording what changes, for `take_changes` (`db_url`).
    pub fn enable_persistence(&mut self) {
        self.changes.enable();
    }

    /// What changed since the last call, as rows to write and keys to delete. `all` (or a
    /// change that could not be recorded, `Changes::overflow`) gives every row instead.
    /// `wall_offset_ms` turns this clock into wall-clock time (see persist.rs).
    pub fn take_changes(&mut self, wall_offset_ms: i64, all: bool) -> Changes {
        let Pending {
            overflow,
            sessions,
            subs,
            gone_sessions,
            gone_subs,
        } = self.changes.take();
        let mut out = Changes {
            overflow,
            gone_sessions,
            gone_subs,
            ..Changes::default()
        };
        if all || overflow {
            out.sessions = self.sessions.values().map(session_row).collect();
            out.subs = self
                .subs
                .values()
                .filter_map(|sub| self.sub_row(sub, wall_offset_ms))
                .collect();
            return out;
        }
        out.sessions = sessions
            .iter()
            .filter_map(|k| self.sessions.get(k.as_slice()))
            .map(session_row)
            .collect();
        out.subs = subs
            .iter()
            .filter_map(|id| self.subs.get(id))
            .filter_map(|sub| self.sub_row(sub, wall_offset_ms))
            .collect();
        out
    }

    /// Every session as a record (`persist::encode_session`), for a cluster peer's sync.
    pub fn session_rows(&self) -> Vec<SessionRow> {
        self.sessions.values().map(session_row).collect()
    }

    /// Every subscription as a record, for a cluster peer's sync (nothing is drained).
    pub fn subscription_rows(&self, wall_offset_ms: i64) -> Vec<SubscriptionRow> {
        self.subs
            .values()
            .filter_map(|sub| self.sub_row(sub, wall_offset_ms))
            .collect()
    }

    /// A cluster peer's subscription, taken over because the peer left (docs/cluster.md): as
    /// `restore_subscription`, and its next NOTIFY, due now, carries full state, so that the
    /// subscriber learns our Contact (a target refresh) and, after a crash (`crashed`, the
    /// peer's last state may be behind), everything it may have missed.
    pub fn take_over(
        &mut self,
        now: u64,
        state: &[u8],
        wall_offset_ms: i64,
        crashed: bool,
    ) -> Result<(), RestoreError> {
        let id = self.restore_sub(now, state, wall_offset_ms, crashed)?;
        if let Some(sub) = self.subs.get_mut(&id) {
            sub.needs_full = true;
            self.changes.sub(id);
            self.wake_at(id, now);
        }
        Ok(())
    }

    fn sub_row(&self, sub: &Subscription<A>, wall_offset_ms: i64) -> Option<SubscriptionRow> {
        // a terminated subscription is gone the moment its last NOTIFY leaves (R69)
        let session = self.sessions.get(sub.session())?;
        let mut state = Vec::new();
        persist::encode_subscription(sub, wall_offset_ms, &mut state);
        Some(SubscriptionRow {
            call_id: sub.dialog.call_id().to_vec(),
            local_tag: sub.dialog.local_tag().to_vec(),
            session_uri: session.uri.to_vec(),
            subscriber: sub.subscriber().to_vec(),
            expires_wall_ms: sub.expires_at.saturating_add_signed(wall_offset_ms),
            state,
        })
    }

    /// Restores a session `take_changes` wrote (with its group alias here); returns its URI and
    /// group, for the caller to alias the group in another notifier as `open_session` does.
    pub fn restore_session(
        &mut self,
        state: &[u8],
    ) -> Result<(Vec<u8>, Option<Vec<u8>>), RestoreError> {
        let session = persist::decode_session(state, self.seed, self.alloc.clone())?;
        let key = uri::session_key(&session.uri).ok_or(RestoreError::Malformed("session URI"))?;
        if self.sessions.contains_key(key.as_slice()) {
            return Err(RestoreError::Duplicate);
        }
        let found = (
            session.uri.to_vec(),
            session.group.as_ref().map(|g| g.to_vec()),
        );
        let key = Key::try_new(&key, self.alloc.clone())?;
        self.sessions.try_reserve(1).map_err(|_| OutOfMemory)?;
        if let Some(g) = &found.1 {
            self.add_alias(g, &found.0)?;
        }
        self.sessions.insert(key, session);
        Ok(found)
    }

    /// Restores a subscription into its (restored) session. After a crash (`crashed`) the
    /// stored CSeq and version may be behind what was sent: the CSeq jumps ahead and the next
    /// NOTIFY carries full state, which a subscriber accepts at any higher version (RFC 4575).
    pub fn restore_subscription(
        &mut self,
        now: u64,
        state: &[u8],
        wall_offset_ms: i64,
        crashed: bool,
    ) -> Result<(), RestoreError> {
        self.restore_sub(now, state, wall_offset_ms, crashed)
            .map(|_| ())
    }

    /// `restore_subscription`, returning the new subscription's id.
    fn restore_sub(
        &mut self,
        now: u64,
        state: &[u8],
        wall_offset_ms: i64,
        crashed: bool,
    ) -> Result<u32, RestoreError> {
        let id = self.allocate_id();
        let mut sub = persist::decode_subscription(state, id, wall_offset_ms, self.alloc.clone())?;
        if !self.sessions.contains_key(sub.session()) {
            return Err(RestoreError::NoSession);
        }
        if self
            .find_dialog(sub.dialog.call_id(), sub.dialog.local_tag())
            .is_some()
        {
            return Err(RestoreError::Duplicate);
        }
        if crashed {
            sub.dialog.local_cseq = sub.dialog.local_cseq.saturating_add(CRASH_CSEQ_MARGIN);
            sub.needs_full = true;
        }
        let wake = if sub.needs_full || sub.dirty || sub.terminate.is_some() {
            now
        } else {
            sub.expires_at
        };
        self.subs.try_reserve(1).map_err(|_| OutOfMemory)?;
        self.reserve_dialog()?;
        let session = self
            .sessions
            .get_mut(sub.session())
            .ok_or(RestoreError::NoSession)?;
        session.add_sub(id, sub.subscriber(), self.alloc.clone())?;
        self.insert_dialog(&sub);
        self.subs.insert(id, sub);
        self.wake_at(id, wake);
        Ok(id)
    }

    // ------------------------------------------------------------- inspection

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
            })
            .collect()
    }
}

/// The header lines of the SUBSCRIBE that the pipeline reads.
#[derive(Default)]
struct RequestHeaders<'a> {
    event: Option<&'a [u8]>,
    expires: Option<&'a [u8]>,
    accept: Vec<&'a [u8]>,
    accept_contact: Vec<&'a [u8]>,
    asserted_identity: Vec<&'a [u8]>,
    privacy: Vec<&'a [u8]>,
}

/// Who subscribes, as the subscription keeps it.
struct Subscriber<'a> {
    key: &'a [u8],
    asserted: &'a [u8],
    anonymous: bool,
}

impl<'a> RequestHeaders<'a> {
    fn collect(all: &[(&'a [u8], &'a [u8])]) -> Self {
        let mut h = RequestHeaders::default();
        for &(name, body) in all {
            match headers::classify(name) {
                HeaderName::Event => {
                    h.event.get_or_insert(body);
                }
                HeaderName::Expires => {
                    h.expires.get_or_insert(body);
                }
                HeaderName::Accept => h.accept.push(body),
                HeaderName::AcceptContact => h.accept_contact.push(body),
                HeaderName::PAssertedIdentity => h.asserted_identity.push(body),
                HeaderName::Privacy => h.privacy.push(body),
                HeaderName::Other => {}
            }
        }
        h
    }
}

/// P5 (R5, R6): the subscriber's AOIA, as asserted (or its From URI where trusted).
fn asserted_identity<'a>(
    cfg: &Config,
    req: &SubscribeRequest<'a>,
    h: &RequestHeaders<'a>,
) -> Option<&'a [u8]> {
    match headers::pick_asserted_identity(&h.asserted_identity) {
        Some(a) => Some(a),
        None if cfg.trust_from_header && !req.from_uri.is_empty() => Some(req.from_uri),
        None => None,
    }
}

/// What a subscription created from the initial SUBSCRIBE `req` keeps (R24).
fn new_strings<'a>(
    req: &SubscribeRequest<'a>,
    session_key: &'a [u8],
    who: &Subscriber<'a>,
    event_id: Option<&'a [u8]>,
    local_tag: &'a [u8],
) -> SubscriptionStrings<'a> {
    SubscriptionStrings {
        session: session_key,
        subscriber: who.key,
        asserted: who.asserted,
        call_id: req.call_id,
        local_tag,
        remote_tag: req.from_tag,
        local_uri: req.to_uri,
        remote_uri: req.from_uri,
        remote_target: req.contact,
        route_set: req.record_route,
        socket: req.socket,
        event_id,
    }
}

/// The block the strings of the subscription that `req` would create take, allocated in
/// `alloc`, for `Notifier::subscribe_in_block`; None when `req` creates none (in-dialog, or
/// refused before P5). The module allocates it before taking the slot lock, so that lock is
/// never held waiting for the shm allocator's (docs/performance.md, lever 2). A block too
/// small (the Request-URI was a group identity, R3) is grown under the lock instead.
pub fn strings_block<A: Allocator>(
    cfg: &Config,
    req: &SubscribeRequest<'_>,
    local_tag: &[u8],
    alloc: A,
) -> Option<Bytes<A>> {
    if !req.to_tag.is_empty() {
        return None;
    }
    let h = RequestHeaders::collect(req.headers);
    let event = headers::parse_event(h.event?).ok()?;
    let session_key = uri::session_key(req.ruri)?;
    let asserted = asserted_identity(cfg, req, &h)?;
    let key = uri::identity_key(asserted);
    let who = Subscriber {
        key: &key,
        asserted,
        anonymous: false,
    };
    let size = new_strings(req, &session_key, &who, event.id, local_tag).block_size();
    let mut block = AVec::new_in(alloc);
    block.try_reserve_exact(size).ok()?;
    Some(block)
}

/// Where the dialog of a subscription is in `Notifier::dialogs`: by Call-ID and local tag,
/// which never change (a target refresh changes only the remote target).
fn dialog_hash<A: Allocator>(seed: u64, d: &Dialog<A>) -> u64 {
    FixedState::with_seed(seed).hash_one((d.call_id(), d.local_tag()))
}

/// R15-R21: the 200 to a SUBSCRIBE (the To-tag and Record-Route are added by the caller / tm).
fn ok_reply(cfg: &Config, granted: u32, identity: Option<&[u8]>) -> Reply {
    let mut h = Vec::with_capacity(256);
    h.extend_from_slice(b"Contact: ");
    push_angle(&mut h, cfg.server_contact.as_bytes());
    h.extend_from_slice(format!("\r\nExpires: {granted}\r\n").as_bytes());
    h.extend_from_slice(b"Supported: norefersub\r\nAllow-Events: conference\r\n");
    if let Some(id) = identity {
        h.extend_from_slice(cfg.assert_identity_header.as_bytes());
        h.extend_from_slice(b": ");
        push_angle(&mut h, id);
        h.extend_from_slice(b"\r\n");
    }
    Reply {
        code: 200,
        reason: "OK",
        headers: h,
    }
}

fn push_angle(out: &mut Vec<u8>, uri: &[u8]) {
    if uri.starts_with(b"<") {
        out.extend_from_slice(uri);
    } else {
        out.push(b'<');
        out.extend_from_slice(uri);
        out.push(b'>');
    }
}

/// The status a document gives a present participant. R91: RCS clients drop a whole NOTIFY
/// that has `alerting` (R90); an invitee being called is `dialing-out` to them.
fn reported_status(status: EndpointStatus, cfg: &Config) -> EndpointStatus {
    match status {
        EndpointStatus::Alerting if cfg.rcs_compat => EndpointStatus::DialingOut,
        s => s,
    }
}

/// What a subscriber is shown of a present participant. R55, R78: the nick and Contact of a
/// private participant are never shown, so changing them changes nothing the subscriber sees.
fn shown<A: Allocator>(p: &Participant<A>, cfg: &Config) -> Seen {
    Seen {
        delete_pending: false,
        status: Some(reported_status(p.status, cfg)),
        nick_tag: if p.privacy { 0 } else { p.nick_tag },
        endpoint_tag: p.endpoint_tag(cfg.endpoint_entity_contact),
        departure_tag: 0,
    }
}

/// R91: what a merging client keeps of a participant reported `disconnected` (R90: it never
/// forgets a user).
fn shown_departed<A: Allocator>(p: &Participant<A>, cfg: &Config) -> Seen {
    Seen {
        status: Some(EndpointStatus::Disconnected),
        departure_tag: if p.status == EndpointStatus::Disconnected {
            p.departure_tag
        } else {
            0 // not in the session, yet not gone either (R59 dialing-out): reported `departed`
        },
        ..shown(p, cfg)
    }
}

/// A document for one subscription, and whether it is full.
struct Body {
    xml: Vec<u8>,
    full: bool,
    /// R58: a deletion is due in a later NOTIFY of its own.
    delete_follows: bool,
}

/// Builds the next document for `sub` and records what it tells (R33, R46, R54, R57, R65).
/// Ok(None): a partial document would be empty (R55).
fn document<A: Allocator + Clone>(
    session: &Session<A>,
    sub: &mut Subscription<A>,
    cfg: &Config,
    mut full: bool,
) -> Result<Option<Body>, OutOfMemory> {
    // (participant index, status to report; None: R58 `state="deleted"`)
    let changes = |full: bool| {
        let mut changed: Vec<(usize, Option<EndpointStatus>)> = Vec::new();
        for (i, p) in session.participants.iter().enumerate() {
            let seen = sub.seen(i);
            if p.is_listed(cfg.report_dialing_out) {
                if full || seen != shown(p, cfg) {
                    changed.push((i, Some(reported_status(p.status, cfg))));
                }
            } else if cfg.rcs_compat {
                // R90, R91: a merging client keeps every user it heard of, with the last status
                // it was told. So a departure is reported to whoever was shown the user, again
                // whenever how the user left changes, and in every full document: the client's
                // list may be older than this subscription (an earlier one, a lost NOTIFY).
                let told = seen.status.is_some();
                let departed = p.status == EndpointStatus::Disconnected;
                if (full && (told || departed)) || (told && seen != shown_departed(p, cfg)) {
                    changed.push((i, Some(EndpointStatus::Disconnected)));
                }
            } else if seen.status.is_some() {
                // R57: a departure is reported once, in whatever the next document is
                changed.push((i, Some(EndpointStatus::Disconnected)));
            } else if seen.delete_pending && !full {
                // R58: then removed, when the option asks for it (a full document omits it)
                changed.push((i, None));
            }
        }
        changed
    };
    let mut changed = changes(full);
    if !full && changed.len() > cfg.max_pending_changes {
        // R65: a full document replaces the subscriber's list, so it lists everyone present
        // (not only the changes) and still reports the departures (R57)
        full = true;
        changed = changes(true);
    }
    if !full && changed.is_empty() {
        return Ok(None);
    }
    if full {
        // a full document records (nearly) every participant: room for all at once, not a
        // reallocation per doubling (each one a trip to the shm allocator's lock)
        sub.reserve_seen(session.participants.len())?;
    }
    let mut delete_follows = false;
    for &(i, report) in &changed {
        let seen = match report {
            Some(EndpointStatus::Disconnected) if cfg.rcs_compat => {
                shown_departed(&session.participants[i], cfg)
            }
            Some(EndpointStatus::Disconnected) => {
                delete_follows |= cfg.emits_deleted();
                Seen {
                    delete_pending: cfg.emits_deleted(),
                    ..Seen::default()
                }
            }
            Some(_) => shown(&session.participants[i], cfg),
            None => Seen::default(),
        };
        sub.set_seen(i, seen)?;
    }
    if full {
        // a full document already dropped users it omits: no deletion left to send (R58)
        for i in 0..session.participants.len() {
            let s = sub.seen(i);
            if s.delete_pending && !changed.iter().any(|&(j, _)| j == i) {
                sub.set_seen(i, Seen::default())?;
            }
        }
    }
    let users: Vec<UserEntry<'_>> = changed
        .iter()
        .map(|&(i, report)| {
            let p = &session.participants[i];
            // R52, R91: a departure says how it happened (BYE when nobody said otherwise)
            let departure =
                report == Some(EndpointStatus::Disconnected) && cfg.emits_disconnection_method();
            UserEntry {
                deleted: report.is_none(),
                entity: &p.entity,
                endpoint_entity: p.endpoint_entity(cfg.endpoint_entity_contact),
                display_text: p.display_text(),
                status: report.unwrap_or(EndpointStatus::Disconnected),
                disconnection_method: departure.then(|| {
                    p.disconnection_method
                        .unwrap_or(DisconnectionMethod::Departed)
                }),
                disconnection_reason: p.disconnection_reason.as_deref().filter(|_| departure),
            }
        })
        .collect();
    // R52, R91: the counts, for RCS clients only. user-count is everyone a full document
    // would list as present now: connected, being alerted (and dialing-out when listed, R59).
    let (maximum_user_count, user_count) = if cfg.rcs_compat {
        let present = session
            .participants
            .iter()
            .filter(|p| p.is_listed(cfg.report_dialing_out))
            .count();
        (
            session.max_user_count,
            Some(u32::try_from(present).unwrap_or(u32::MAX)),
        )
    } else {
        (None, None)
    };
    sub.version = sub.version.wrapping_add(1);
    let doc = Document {
        entity: session.root_entity(),
        state: if full {
            DocState::Full
        } else {
            DocState::Partial
        },
        version: sub.version,
        maximum_user_count,
        user_count,
        users: &users,
    };
    let mut xml = Vec::with_capacity(256 + 160 * users.len());
    conference_info::write(&doc, &mut xml);
    Ok(Some(Body {
        xml,
        full,
        delete_follows,
    }))
}

/// R39-R43: copies the dialog out and assigns the next CSeq.
fn build_notify<A: Allocator>(
    sub: &mut Subscription<A>,
    cfg: &Config,
    now: u64,
    kind: NotifyKind,
    state: &str,
    body: Option<Body>,
) -> Notify {
    sub.dialog.local_cseq = sub.dialog.local_cseq.wrapping_add(1).max(1);
    let cseq = sub.dialog.local_cseq;
    sub.in_flight = Some(cseq);
    sub.last_notify_at = Some(now);
    sub.notifies_sent += 1;
    let d = &sub.dialog;
    let mut headers = Vec::with_capacity(200);
    headers.extend_from_slice(b"Event: conference");
    if let Some(id) = d.event_id() {
        headers.extend_from_slice(b";id=");
        headers.extend_from_slice(id);
    }
    headers.extend_from_slice(b"\r\nSubscription-State: ");
    headers.extend_from_slice(state.as_bytes());
    headers.extend_from_slice(b"\r\nContact: ");
    push_angle(&mut headers, cfg.server_contact.as_bytes());
    headers.extend_from_slice(b"\r\n");
    let body = body.map(|b| b.xml).unwrap_or_default();
    if !body.is_empty() {
        headers.extend_from_slice(b"Content-Type: application/conference-info+xml\r\n");
    }
    Notify {
        token: (u64::from(sub.id) << CSEQ_BITS) | u64::from(cseq & ((1 << CSEQ_BITS) - 1)),
        kind,
        call_id: d.call_id().to_vec(),
        local_tag: d.local_tag().to_vec(),
        remote_tag: d.remote_tag().to_vec(),
        local_uri: d.local_uri().to_vec(),
        remote_uri: d.remote_uri().to_vec(),
        remote_target: d.remote_target().to_vec(),
        route_set: d.route_set().to_vec(),
        socket: d.socket().to_vec(),
        cseq,
        headers,
        body,
    }
}
