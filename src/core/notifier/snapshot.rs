//! The notifier as rows: what persistence (`db_url`) writes and restores, what a cluster peer
//! keeps and takes over (docs/persistence.md, docs/cluster.md).
use super::*;

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

/// Which copy of a dialog two nodes hold stays (`settle_claim`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This node does not hold it.
    NotHere,
    /// Ours is the newer: the peer must drop its copy.
    Ours,
    /// Theirs is the newer: ours was dropped.
    Theirs,
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

pub(super) fn session_row<A: Allocator>(s: &Session<A>) -> SessionRow {
    let mut state = Vec::new();
    persist::encode_session(s, &mut state);
    SessionRow {
        uri: s.uri.to_vec(),
        kind: s.kind.as_str(),
        group: s.group.as_ref().map(|g| g.to_vec()),
        state,
    }
}

impl<A: Allocator + Clone, G: SendGate> Notifier<A, G> {
    /// Starts recording what changes for `c`, for `take_changes` (`db_url`, the cluster).
    pub fn enable_changes(&mut self, c: Consumer) {
        self.changes.enable(c);
    }

    /// What changed since `c`'s last call, as rows to write and keys to delete. `all` (or a
    /// change that could not be recorded, `Changes::overflow`) gives every row instead.
    /// `wall_offset_ms` turns this clock into wall-clock time (see persist.rs).
    pub fn take_changes(
        &mut self,
        cfg: &Config,
        c: Consumer,
        wall_offset_ms: i64,
        all: bool,
    ) -> Changes {
        let Pending {
            overflow,
            sessions,
            subs,
            gone_sessions,
            gone_subs,
        } = self.changes.take(c);
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
                .filter_map(|sub| self.sub_row(cfg, sub, wall_offset_ms))
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
            .filter_map(|sub| self.sub_row(cfg, sub, wall_offset_ms))
            .collect();
        out
    }

    /// Every session as a record (`persist::encode_session`), for a cluster peer's sync.
    pub fn session_rows(&self) -> Vec<SessionRow> {
        self.sessions.values().map(session_row).collect()
    }

    /// Every subscription as a record, for a cluster peer's sync (nothing is drained).
    pub fn subscription_rows(&self, cfg: &Config, wall_offset_ms: i64) -> Vec<SubscriptionRow> {
        self.subs
            .values()
            .filter_map(|sub| self.sub_row(cfg, sub, wall_offset_ms))
            .collect()
    }

    /// The subscription of dialog (`call_id`, `local_tag`) as a record, if here.
    pub fn subscription_row(
        &self,
        cfg: &Config,
        call_id: &[u8],
        local_tag: &[u8],
        wall_offset_ms: i64,
    ) -> Option<SubscriptionRow> {
        let id = self.find_dialog(call_id, local_tag)?;
        self.sub_row(cfg, self.subs.get(&id)?, wall_offset_ms)
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
            sub.claimed_at = now; // this node holds the dialog now (settle_claim)
            self.changes.sub(id);
            self.wake_at(id, now);
        }
        Ok(())
    }

    pub(super) fn sub_row(
        &self,
        cfg: &Config,
        sub: &Subscription<A>,
        wall_offset_ms: i64,
    ) -> Option<SubscriptionRow> {
        // a terminated subscription is gone the moment its last NOTIFY leaves (R69)
        let session = self.sessions.get(sub.session())?;
        let mut state = Vec::new();
        let told = view::told(session, sub, cfg);
        persist::encode_subscription(sub, &told, wall_offset_ms, &mut state);
        Some(SubscriptionRow {
            call_id: sub.dialog.call_id().to_vec(),
            local_tag: sub.dialog.local_tag().to_vec(),
            session_uri: session.uri.to_vec(),
            subscriber: sub.subscriber().to_vec(),
            expires_wall_ms: sub.expires_at.saturating_add_signed(wall_offset_ms),
            state,
        })
    }

    /// R94: the profile a restored subscription gets when its record predates profiles (the
    /// configured default; `oma` until set).
    pub fn set_old_records_profile(&mut self, profile: Profile) {
        self.old_records_profile = profile;
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
        let id = self.restore_sub(now, state, wall_offset_ms, crashed)?;
        if let Some(sub) = self.subs.get_mut(&id) {
            sub.awaiting_peers = self.hold_restored;
        }
        Ok(())
    }

    /// Subscriptions restored from now on send nothing until `release_restored` (a cluster
    /// with `db_url`: its peers may hold some of the same dialogs in a newer state, issue 17).
    pub fn hold_restored(&mut self) {
        self.hold_restored = true;
    }

    /// The peers have had their say: the restored subscriptions that are still here send what
    /// is due from the next tick (or the next change) on.
    pub fn release_restored(&mut self, now: u64) {
        self.hold_restored = false;
        let held: Vec<u32> = self
            .subs
            .values()
            .filter(|s| s.awaiting_peers)
            .map(|s| s.id)
            .collect();
        for id in held {
            if let Some(sub) = self.subs.get_mut(&id) {
                sub.awaiting_peers = false;
            }
            self.wake_at(id, now);
        }
    }

    /// Every subscription sends nothing until `release_restored`: this node cannot see a
    /// majority of its cluster (a partition, docs/cluster.md "Partitions"), whose other side
    /// takes its subscriptions over.
    pub fn hold_all(&mut self) {
        self.hold_restored = true;
        for sub in self.subs.values_mut() {
            sub.awaiting_peers = true;
        }
    }

    /// A peer's record of a session this node holds too (`session_rows`: a sync after a
    /// partition healed, or after a restart that restored it from `db_url`): each user whose
    /// record there carries a newer cluster stamp than here changes here as that peer changed
    /// it, and so do a newer subject and chairman (last writer wins, docs/cluster.md
    /// "Conflicts"), with their NOTIFYs. Unstamped records (no cluster) change nothing.
    pub fn merge_session(
        &mut self,
        cfg: &Config,
        now: u64,
        record: &[u8],
    ) -> Result<Vec<Notify>, RestoreError> {
        let theirs = persist::decode_session(record, self.seed, self.alloc.clone())?;
        let uri = theirs.uri.to_vec();
        let mut out = Vec::new();
        for p in theirs.participants.iter().filter(|p| p.stamp != 0) {
            let when = if p.is_present() {
                p.joined_ms
            } else {
                p.left_ms
            };
            let update = ParticipantUpdate {
                privacy: p.privacy,
                nick: p.nick.as_deref(),
                contact: p.contact.as_deref(),
                disconnection_method: p.disconnection_method,
                disconnection_reason: p.disconnection_reason.as_deref(),
                when_ms: (when != 0).then_some(when),
                ..ParticipantUpdate::new(&p.aoia, p.status)
            };
            out.extend(self.participant_stamped(cfg, now, &uri, &update, p.stamp)?);
        }
        if theirs.subject_stamp != 0 {
            let subject = theirs.subject.as_ref().map(|s| SubjectUpdate {
                text: Some(&s.text),
                by: s.by.as_deref(),
                when_ms: s.when_ms,
            });
            let none = SubjectUpdate {
                text: None,
                by: None,
                when_ms: 0,
            };
            out.extend(self.set_subject(
                cfg,
                now,
                &uri,
                &subject.unwrap_or(none),
                theirs.subject_stamp,
            )?);
        }
        if theirs.chairman_stamp != 0 {
            out.extend(self.set_chairman(
                cfg,
                now,
                &uri,
                theirs.chairman.as_deref(),
                theirs.chairman_stamp,
            )?);
        }
        Ok(out)
    }

    /// A peer holds dialog (`call_id`, `local_tag`) too, as `record` (`encode_subscription`):
    /// after a restart of a cluster with `db_url`, the node that took a subscription over and
    /// the node it came from may both have restored it. The later claim (`claimed_at`: the
    /// last NOTIFY, takeover or creation) is what the subscriber heard last and stays; a
    /// tie goes to the peer when `theirs_on_tie` (both sides decide alike: the caller breaks
    /// it by node). Ours, when it loses, is dropped without a NOTIFY (its row and replicas go).
    pub fn settle_claim(
        &mut self,
        call_id: &[u8],
        local_tag: &[u8],
        record: &[u8],
        wall_offset_ms: i64,
        theirs_on_tie: bool,
    ) -> Claim {
        let Some(id) = self.find_dialog(call_id, local_tag) else {
            return Claim::NotHere;
        };
        let Ok(theirs) = persist::claimed_wall_ms(record) else {
            return Claim::Ours; // unreadable: nothing to prefer it for
        };
        let Some(sub) = self.subs.get(&id) else {
            return Claim::NotHere;
        };
        let ours = sub.claimed_at.saturating_add_signed(wall_offset_ms);
        if theirs > ours || (theirs == ours && theirs_on_tie) {
            if sub.holds_place && sub.in_flight.is_some() {
                self.gate.release();
            }
            self.remove(id);
            Claim::Theirs
        } else {
            Claim::Ours
        }
    }

    /// `restore_subscription`, returning the new subscription's id.
    pub(super) fn restore_sub(
        &mut self,
        now: u64,
        state: &[u8],
        wall_offset_ms: i64,
        crashed: bool,
    ) -> Result<u32, RestoreError> {
        let id = self.allocate_id();
        let mut sub = persist::decode_subscription(
            state,
            id,
            wall_offset_ms,
            self.old_records_profile,
            self.alloc.clone(),
        )?;
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
            // R40: NOTIFYs may have left after the state was written; the CSeq and the version
            // (R33: a strict RFC 4575 subscriber discards a full document whose version is not
            // higher than its own) jump past anything they can have used, and full state
            // follows. Each NOTIFY uses one CSeq and at most one version, so one margin covers
            // both (issue 17, fix 2)
            sub.dialog.local_cseq = sub.dialog.local_cseq.saturating_add(CRASH_CSEQ_MARGIN);
            sub.version = sub.version.wrapping_add(CRASH_CSEQ_MARGIN);
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
}
