//! The SUBSCRIBE pipeline (R1-R14, docs/conformance.md): checks, creating,
//! refreshing and ending subscriptions, dialogs and session aliases.
use super::*;

impl<A: Allocator + Clone, G: SendGate> Notifier<A, G> {
    /// Handles a SUBSCRIBE end to end (R1-R38, docs/conformance.md). `local_tag` is the To-tag the caller
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

    pub(super) fn try_subscribe(
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
        // R22 without a transaction (issue 18): the caller derives the To-tag of an initial
        // SUBSCRIBE from its Call-ID, From-tag and CSeq, so a retransmission names the dialog
        // its first copy created; it gets the same 200 and creates nothing
        if let Some(id) = self.find_dialog(req.call_id, local_tag) {
            return self.answer_again(cfg, now, id, req.from_tag);
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
        // P4 (R4); a generic RFC 4575 subscriber only with `admit_generic_subscribers` (R93)
        let generic = !headers::has_oma_im_feature_tag(&h.accept_contact, cfg.accept_cpm_icsi);
        if generic && !cfg.admit_generic_subscribers {
            return Err(SubscribeError::MissingImFeatureTag);
        }
        // R94: the profile is chosen once, kept for the life of the subscription
        let profile = profile::choose(cfg, req.profile, generic, &h.accept_contact, &h.contact);
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
        let terms = Terms {
            remote_cseq: req.cseq,
            anonymous: who.anonymous,
            granted,
            profile,
        };
        let id = self.create(now, &strings, block, terms)?;
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
    pub(super) fn create(
        &mut self,
        now: u64,
        strings: &SubscriptionStrings<'_>,
        block: Bytes<A>,
        terms: Terms,
    ) -> Result<u32, OutOfMemory> {
        let Terms {
            remote_cseq,
            anonymous,
            granted,
            profile,
        } = terms;
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
            beliefs: Beliefs::new_in(a.clone()),
            dirty: false,
            needs_full: false,
            terminate: None,
            in_flight: None,
            holds_place: false,
            held_since: None,
            waiting: false,
            queued: false,
            last_notify_at: None,
            notifies_sent: 0,
            unsent: 0,
            profile,
            seen_description: 0,
            told_mark: history::NEVER,
            claimed_at: now,
            awaiting_peers: false,
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
    pub(super) fn reserve_dialog(&mut self) -> Result<(), OutOfMemory> {
        let (subs, seed) = (&self.subs, self.seed);
        self.dialogs
            .try_reserve(1, |id| {
                subs.get(id).map_or(0, |s| dialog_hash(seed, &s.dialog))
            })
            .map_err(|_| OutOfMemory)
    }

    /// Records the dialog of `sub` (after `reserve_dialog`).
    pub(super) fn insert_dialog(&mut self, sub: &Subscription<A>) {
        let (subs, seed) = (&self.subs, self.seed);
        self.dialogs
            .insert_unique(dialog_hash(seed, &sub.dialog), sub.id, |id| {
                subs.get(id).map_or(0, |s| dialog_hash(seed, &s.dialog))
            });
    }

    /// The subscription of dialog (Call-ID, local tag), comparing the strings themselves.
    pub(super) fn find_dialog(&self, call_id: &[u8], local_tag: &[u8]) -> Option<u32> {
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

    pub(super) fn allocate_id(&mut self) -> u32 {
        loop {
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1).max(1);
            if !self.subs.contains_key(&id) {
                return id;
            }
        }
    }

    /// R13, R27, R28: refresh or unsubscribe within an existing dialog.
    pub(super) fn in_dialog(
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
        if req.cseq == sub.dialog.remote_cseq && same_id {
            // R22: a retransmission of the request that set this CSeq: the same answer again
            return self.answer_again(cfg, now, id, req.from_tag);
        }
        // R30: an expired subscription is gone, even before the timer ended it
        let expired = sub.expires_at <= now;
        if sub.terminate.is_some() || expired || sub.dialog.remote_tag() != req.from_tag || !same_id
        {
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
}

impl<A: Allocator + Clone, G: SendGate> Notifier<A, G> {
    /// R22: the 200 that subscription `id`'s latest SUBSCRIBE got, again, for a retransmission
    /// of it (the same Expires but for the time gone by: 0 once it is ending), with no NOTIFY.
    /// A From-tag of another dialog is no retransmission (481).
    fn answer_again(
        &mut self,
        cfg: &Config,
        now: u64,
        id: u32,
        from_tag: &[u8],
    ) -> Result<SubscribeOutcome, SubscribeError> {
        let sub = self.subs.get(&id).ok_or(SubscribeError::NoSuchDialog)?;
        if sub.dialog.remote_tag() != from_tag {
            return Err(SubscribeError::NoSuchDialog);
        }
        let granted = match sub.terminate {
            Some(_) => 0,
            None => sub.expires_in(now),
        };
        let identity = self.sessions.get(sub.session()).map(|s| {
            if s.kind.is_group() {
                s.root_entity().to_vec()
            } else {
                cfg.conference_factory_uri.as_bytes().to_vec()
            }
        });
        self.stats.retransmissions_answered += 1;
        Ok(SubscribeOutcome {
            reply: ok_reply(cfg, granted, identity.as_deref()),
            notifies: Vec::new(),
            held: None,
        })
    }
}

/// The header lines of the SUBSCRIBE that the pipeline reads.
#[derive(Default)]
pub(super) struct RequestHeaders<'a> {
    event: Option<&'a [u8]>,
    expires: Option<&'a [u8]>,
    accept: Vec<&'a [u8]>,
    accept_contact: Vec<&'a [u8]>,
    /// R94 `auto`: its feature tags choose the profile.
    contact: Vec<&'a [u8]>,
    asserted_identity: Vec<&'a [u8]>,
    privacy: Vec<&'a [u8]>,
}

/// What a new subscription starts with besides its strings (`create`).
pub(super) struct Terms {
    pub(super) remote_cseq: u32,
    pub(super) anonymous: bool,
    /// R19: the expiry granted, in seconds.
    pub(super) granted: u32,
    pub(super) profile: Profile,
}

/// Who subscribes, as the subscription keeps it.
pub(super) struct Subscriber<'a> {
    key: &'a [u8],
    asserted: &'a [u8],
    anonymous: bool,
}

impl<'a> RequestHeaders<'a> {
    pub(super) fn collect(all: &[(&'a [u8], &'a [u8])]) -> Self {
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
                HeaderName::Contact => h.contact.push(body),
                HeaderName::PAssertedIdentity => h.asserted_identity.push(body),
                HeaderName::Privacy => h.privacy.push(body),
                HeaderName::Other => {}
            }
        }
        h
    }
}

/// P5 (R5, R6): the subscriber's AOIA, as asserted (or its From URI where trusted).
pub(super) fn asserted_identity<'a>(
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
pub(super) fn new_strings<'a>(
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
pub(super) fn dialog_hash<A: Allocator>(seed: u64, d: &Dialog<A>) -> u64 {
    FixedState::with_seed(seed).hash_one((d.call_id(), d.local_tag()))
}

/// R15-R21: the 200 to a SUBSCRIBE (the To-tag and Record-Route are added by the caller / tm).
pub(super) fn ok_reply(cfg: &Config, granted: u32, identity: Option<&[u8]>) -> Reply {
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
