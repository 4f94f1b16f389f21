//! IM sessions and their participants, as fed by the script or RPC.
use super::bytes::{try_assign, try_bytes, try_push, Bytes, OutOfMemory};
use super::conference_info::{DisconnectionMethod, EndpointStatus};
use super::history::{Facts, History};
use super::key::{new_map, new_set, Key, Map, Set};
use super::uri;
use allocator_api2::alloc::Allocator;
use allocator_api2::vec::Vec;

/// The kinds of IM session of docs/interface.md `imconf_session_open`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    OneToOne,
    AdHoc,
    PreDefined,
    Chat,
    RestrictedChat,
}

impl SessionKind {
    pub fn parse(s: &[u8]) -> Option<Self> {
        Some(match s {
            b"one-to-one" => SessionKind::OneToOne,
            b"ad-hoc" => SessionKind::AdHoc,
            b"pre-defined" => SessionKind::PreDefined,
            b"chat" => SessionKind::Chat,
            b"restricted-chat" => SessionKind::RestrictedChat,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::OneToOne => "one-to-one",
            SessionKind::AdHoc => "ad-hoc",
            SessionKind::PreDefined => "pre-defined",
            SessionKind::Chat => "chat",
            SessionKind::RestrictedChat => "restricted-chat",
        }
    }
    /// Group kinds need a group URI (docs/interface.md) and assert it in the 2xx (R17 b).
    pub fn is_group(self) -> bool {
        !matches!(self, SessionKind::OneToOne | SessionKind::AdHoc)
    }
}

/// The role of a participant (docs/interface.md `imconf_participant`), which decides its entity (§8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Originator,
    Invited,
    Joined,
}

impl Role {
    pub fn parse(s: &[u8]) -> Option<Self> {
        Some(match s {
            b"originator" => Role::Originator,
            b"invited" => Role::Invited,
            b"joined" => Role::Joined,
            _ => return None,
        })
    }
}

/// A participant change as given by the script or RPC. Empty optional fields mean "not given".
#[derive(Debug, Clone, Copy)]
pub struct ParticipantUpdate<'a> {
    pub aoia: &'a [u8],
    pub status: EndpointStatus,
    pub role: Role,
    pub listed_uri: Option<&'a [u8]>,
    pub from_uri: Option<&'a [u8]>,
    pub privacy: bool,
    pub nick: Option<&'a [u8]>,
    /// R52, R91: how a `disconnected` participant left; None is reported as `departed`.
    /// Ignored with any other status.
    pub disconnection_method: Option<DisconnectionMethod>,
    /// R91: why, as text such as `603 Decline` (`disconnection-info/reason`). Ignored with any
    /// status other than `disconnected`.
    pub disconnection_reason: Option<&'a [u8]>,
    /// R50: the participant's Contact or GRUU (a URI or name-addr); kept until another is given.
    /// Shown only with `endpoint_entity=contact` and never under privacy (R78).
    pub contact: Option<&'a [u8]>,
    /// R95: when the change happened, wall-clock ms (the feed call, or the cluster stamp's
    /// time, so that every node records the same); None: unknown. A join or departure keeps it.
    pub when_ms: Option<u64>,
}

impl<'a> ParticipantUpdate<'a> {
    /// `aoia` now has `status`, as a `joined` participant with nothing else given.
    pub fn new(aoia: &'a [u8], status: EndpointStatus) -> Self {
        ParticipantUpdate {
            aoia,
            status,
            role: Role::Joined,
            listed_uri: None,
            from_uri: None,
            privacy: false,
            nick: None,
            disconnection_method: None,
            disconnection_reason: None,
            contact: None,
            when_ms: None,
        }
    }
}

/// One user of the session. Participants are never removed while the session lives: a leaver
/// stays as `Disconnected`, so its index (core::history, subscriptions' beliefs) and its
/// anonymous entity stay stable (R48, R76).
#[derive(Debug)]
pub struct Participant<A: Allocator> {
    /// The real identity: authorization and R68 matching only, never shown under privacy (R78).
    pub aoia: Bytes<A>,
    /// What subscribers see as `entity` (§8), fixed at first appearance.
    pub entity: Bytes<A>,
    pub nick: Option<Bytes<A>>,
    pub status: EndpointStatus,
    pub privacy: bool,
    /// A digest of the nick (0: none), so subscribers can tell whether what they were shown
    /// is still current; a nick changed and changed back is no change (R55).
    pub nick_tag: u32,
    /// R50: the addr-spec of the participant's Contact/GRUU, if one was given. Never shown under
    /// privacy (R78).
    pub contact: Option<Bytes<A>>,
    /// A digest of `contact` (0: none), like `nick_tag`.
    pub contact_tag: u32,
    /// R52, R91: how it left, set when it leaves (None: `departed`).
    pub disconnection_method: Option<DisconnectionMethod>,
    /// R91: the `disconnection-info/reason` of its departure, set when it leaves.
    pub disconnection_reason: Option<Bytes<A>>,
    /// R91: a digest of the method and reason of its departure (0 while in the session), so
    /// a merging client can be told when how the user left changes (R55).
    pub departure_tag: u32,
    /// The cluster stamp of the change last applied (0: unstamped); see `stamp_of`.
    pub stamp: u64,
    /// R95: when it last became connected, and when it last left (wall-clock ms; 0: unknown or
    /// not applicable). `joining-info/when` and `disconnection-info/when` in the `rcs` profile.
    pub joined_ms: u64,
    pub left_ms: u64,
}

impl<A: Allocator> Participant<A> {
    pub fn is_present(&self) -> bool {
        self.status != EndpointStatus::Disconnected
    }
    /// R6: in the session (connected) or being alerted; an invitee not yet ringing is not.
    pub fn is_current(&self) -> bool {
        matches!(
            self.status,
            EndpointStatus::Connected | EndpointStatus::Alerting
        )
    }
    /// R59: whether documents list this participant now.
    pub fn is_listed(&self, report_dialing_out: bool) -> bool {
        is_listed(self.status, report_dialing_out)
    }
    /// R49, R78: the display text, never under privacy.
    pub fn display_text(&self) -> Option<&[u8]> {
        if self.privacy {
            None
        } else {
            self.nick.as_ref().map(|n| n.as_slice())
        }
    }
    /// R50, R78: the endpoint entity: the Contact when asked for and known, never under
    /// privacy; else the user entity.
    pub fn endpoint_entity(&self, contact_wanted: bool) -> &[u8] {
        match &self.contact {
            Some(c) if contact_wanted && !self.privacy => c,
            _ => &self.entity,
        }
    }
    /// R55: a digest of the endpoint entity `endpoint_entity` shows (0: the user entity).
    /// What a document's view of it depends on now (core::history); `chair`: it is the
    /// chairman.
    pub fn facts(&self, chair: bool) -> Facts {
        Facts {
            status: self.status,
            privacy: self.privacy,
            chair,
            nick_tag: self.nick_tag,
            contact_tag: self.contact_tag,
            departure_tag: self.departure_tag,
        }
    }
    pub fn endpoint_tag(&self, contact_wanted: bool) -> u32 {
        if contact_wanted && !self.privacy {
            self.contact_tag
        } else {
            0
        }
    }
}

/// R95: a time the feeder gives (`when`): Unix time in seconds, optionally with a fraction
/// (`1796601600` or `1796601600.25`, what Kamailio's `$TS` and `$TV(s)` give); wall-clock ms.
pub fn unix_time_ms(s: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(s).ok()?;
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    let (secs, frac) = match s.split_once('.') {
        Some((secs, frac)) if digits(frac) => (secs, frac),
        Some(_) => return None,
        None => (s, ""),
    };
    if !digits(secs) {
        return None;
    }
    let ms = frac.bytes().chain(std::iter::repeat(b'0')).take(3);
    let ms = ms.fold(0u64, |n, b| n * 10 + u64::from(b - b'0'));
    secs.parse::<u64>().ok()?.checked_mul(1000)?.checked_add(ms)
}

/// R95: a change of subject, as fed (`text` None: the subject is removed).
#[derive(Debug, Clone, Copy)]
pub struct SubjectUpdate<'a> {
    pub text: Option<&'a [u8]>,
    pub by: Option<&'a [u8]>,
    /// Wall-clock ms (0: unknown).
    pub when_ms: u64,
}

/// R95: a group chat's subject, who set it (an AOIA as fed; None: unknown) and when (wall-clock
/// ms; 0: unknown).
#[derive(Debug)]
pub struct Subject<A: Allocator> {
    pub text: Bytes<A>,
    pub by: Option<Bytes<A>>,
    pub when_ms: u64,
}

#[derive(Debug)]
pub struct Session<A: Allocator> {
    /// The IM Session Identity as opened (used as the root entity of 1-1/ad-hoc, R45).
    pub uri: Bytes<A>,
    pub kind: SessionKind,
    pub group: Option<Bytes<A>>,
    pub participants: Vec<Participant<A>, A>,
    /// Ids of the subscriptions to this session.
    pub subs: Set<u32, A>,
    /// R7: how many of them each subscriber (AOIA key) holds; kept with `subs` by
    /// `add_sub`/`remove_sub` so the limit is a lookup, not a scan of the session.
    pub(crate) subs_per_user: Map<Key<A>, u32, A>,
    /// R52, R88: `maximum-user-count` (from the group's `<max-participant-count>`), if known.
    pub max_user_count: Option<u32>,
    pub(crate) next_anonymous: u32,
    /// R95 (and R93's `conference-description/subject`): the subject, once set.
    pub subject: Option<Subject<A>>,
    /// R95: the identity key (`uri::identity_key`) of the chairman, the participant who
    /// administers the group, if one was named.
    pub chairman: Option<Bytes<A>>,
    /// The cluster stamps of the last subject and chairman changes (0: unstamped): an older
    /// peer change is dropped (last writer wins, as for participants).
    pub(crate) subject_stamp: u64,
    pub(crate) chairman_stamp: u64,
    /// What each participant looked like before its recent changes (core::history): what a
    /// subscription believes and what its next partial document looks at.
    pub(crate) history: History<A>,
}

/// Errors of the session-feeding interface (script functions and RPC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    UnknownSession,
    AlreadyOpen,
    OutOfMemory,
}

impl From<OutOfMemory> for SessionError {
    fn from(_: OutOfMemory) -> Self {
        SessionError::OutOfMemory
    }
}

impl<A: Allocator + Clone> Session<A> {
    pub fn try_new(
        uri: &[u8],
        kind: SessionKind,
        group: Option<&[u8]>,
        seed: u64,
        alloc: A,
    ) -> Result<Self, OutOfMemory> {
        Ok(Session {
            uri: try_bytes(uri, alloc.clone())?,
            kind,
            group: match group {
                Some(g) => Some(try_bytes(g, alloc.clone())?),
                None => None,
            },
            participants: Vec::new_in(alloc.clone()),
            subs: new_set(seed, alloc.clone()),
            subs_per_user: new_map(seed, alloc.clone()),
            history: History::new_in(alloc),
            max_user_count: None,
            next_anonymous: 1,
            subject: None,
            chairman: None,
            subject_stamp: 0,
            chairman_stamp: 0,
        })
    }

    /// A digest of what `conference-description` says (subject, maximum-user-count): a
    /// subscription whose copy has another one is sent the description again (R93).
    pub fn description_tag(&self) -> u32 {
        let mut h = tag_of(self.subject.as_ref().map_or(&b""[..], |s| &s.text));
        h = h.rotate_left(5) ^ self.max_user_count.map_or(0, |m| m.wrapping_add(1));
        h | 1 // never 0, which a new subscription holds
    }

    /// R95: whether participant `p` is the chairman.
    pub fn is_chairman(&self, p: &Participant<A>) -> bool {
        chairs(self.chairman.as_deref(), p)
    }

    /// What a document's view of participant `idx` depends on now (core::history).
    pub fn facts(&self, idx: usize) -> Facts {
        let p = &self.participants[idx];
        p.facts(self.is_chairman(p))
    }

    /// R95: names `chairman` (an identity key; None: nobody) the chairman, recording what the
    /// records of the old and the new one looked like before (core::history).
    pub fn set_chairman(&mut self, chairman: Option<Bytes<A>>) -> Result<(), OutOfMemory> {
        let affected = |p: &Participant<A>| {
            chairs(self.chairman.as_deref(), p) || chairs(chairman.as_deref(), p)
        };
        let n = self.participants.iter().filter(|p| affected(p)).count();
        self.history.reserve(n)?;
        for idx in 0..self.participants.len() {
            if affected(&self.participants[idx]) {
                self.history.record(idx, Some(self.facts(idx)))?;
            }
        }
        self.chairman = chairman;
        Ok(())
    }

    /// R7: the subscriptions `subscriber` (an AOIA key) holds to this session.
    pub fn subs_of(&self, subscriber: &[u8]) -> usize {
        self.subs_per_user
            .get(subscriber)
            .map_or(0, |&n| n as usize)
    }

    /// Records subscription `id` of `subscriber`; nothing changes when memory runs out.
    pub fn add_sub(&mut self, id: u32, subscriber: &[u8], alloc: A) -> Result<(), OutOfMemory> {
        self.subs.try_reserve(1).map_err(|_| OutOfMemory)?;
        if let Some(n) = self.subs_per_user.get_mut(subscriber) {
            *n += 1;
        } else {
            let key = Key::try_new(subscriber, alloc)?;
            self.subs_per_user.try_reserve(1).map_err(|_| OutOfMemory)?;
            self.subs_per_user.insert(key, 1);
        }
        self.subs.insert(id);
        Ok(())
    }

    pub fn remove_sub(&mut self, id: u32, subscriber: &[u8]) {
        if !self.subs.remove(&id) {
            return;
        }
        if let Some(n) = self.subs_per_user.get_mut(subscriber) {
            *n -= 1;
            if *n == 0 {
                self.subs_per_user.remove(subscriber);
            }
        }
    }

    /// R45: the group identity for group sessions, else the session identity.
    pub fn root_entity(&self) -> &[u8] {
        self.group.as_ref().unwrap_or(&self.uri).as_slice()
    }

    /// The first record of `aoia` (a user has one per privacy choice, see `apply`).
    pub fn participant_index(&self, aoia: &[u8]) -> Option<usize> {
        let key = uri::identity_key(aoia);
        self.participants
            .iter()
            .position(|p| p.aoia.as_slice() == key.as_slice())
    }

    /// R6: a current participant (connected or alerting).
    /// A new record for the user of `u`, with `u`'s status; its index.
    fn push_record(&mut self, u: &ParticipantUpdate<'_>, alloc: A) -> Result<usize, OutOfMemory> {
        let key = uri::identity_key(u.aoia);
        let (entity, generated) = self.choose_entity(u);
        let p = Participant {
            aoia: try_bytes(&key, alloc.clone())?,
            entity: try_bytes(&entity, alloc.clone())?,
            nick: None,
            status: u.status,
            privacy: u.privacy,
            nick_tag: 0,
            contact: None,
            contact_tag: 0,
            disconnection_method: None,
            disconnection_reason: None,
            departure_tag: 0,
            stamp: 0,
            joined_ms: 0,
            left_ms: 0,
        };
        try_push(&mut self.participants, p)?;
        if generated {
            self.next_anonymous += 1;
        }
        Ok(self.participants.len() - 1)
    }

    /// A cluster peer's departure of a user never seen here: kept as a departed record carrying
    /// its stamp, so that the user's arrival, if it raced this departure on another node and is
    /// older, is dropped here as everywhere (docs/cluster.md). Nobody was told of the user, so
    /// nobody is told of the departure (R57).
    pub fn remember_departure(
        &mut self,
        u: &ParticipantUpdate<'_>,
        stamp: u64,
        alloc: A,
    ) -> Result<(), OutOfMemory> {
        self.history.reserve(1)?;
        let idx = self.push_record(u, alloc)?;
        self.participants[idx].stamp = stamp;
        self.history.record(idx, None)
    }

    /// The stamp of the latest change applied to this user, over all its records (R78): a
    /// cluster peer's change stamped at or below it is older and is dropped (last writer wins,
    /// docs/cluster.md).
    pub fn stamp_of(&self, aoia: &[u8]) -> u64 {
        let key = uri::identity_key(aoia);
        self.participants
            .iter()
            .filter(|p| p.aoia.as_slice() == key.as_slice())
            .map(|p| p.stamp)
            .max()
            .unwrap_or(0)
    }

    pub fn is_current_participant(&self, aoia: &[u8]) -> bool {
        self.participants
            .iter()
            .any(|p| p.aoia.as_slice() == uri::identity_key(aoia).as_slice() && p.is_current())
    }

    /// Applies a participant change. Returns the participant's index, or None when nothing
    /// changed (a `disconnected` for someone never seen is a no-op, docs/interface.md).
    ///
    /// R78, R79: privacy is requested per INVITE (or 2xx), so a user may come back with another
    /// choice than before. Each choice is its own record with its own entity (stable for the
    /// session, R48, R76): reusing the public record would show the real identity of a user who
    /// now asks for privacy. Switching records reports the other one as gone (R57).
    pub fn apply(
        &mut self,
        u: &ParticipantUpdate<'_>,
        alloc: A,
    ) -> Result<Option<usize>, OutOfMemory> {
        let key = uri::identity_key(u.aoia);
        // R86: one user whatever URI parameters or host case the feeder used
        let own = |p: &Participant<A>| p.aoia.as_slice() == key.as_slice();
        let found = if u.status == EndpointStatus::Disconnected {
            // Whichever record is present leaves.
            self.participants
                .iter()
                .position(|p| own(p) && p.is_present())
                .or_else(|| self.participant_index(u.aoia))
        } else {
            self.participants
                .iter()
                .position(|p| own(p) && p.privacy == u.privacy)
        };
        let before = found.map(|i| self.participants[i].status);
        if found.is_none() && u.status == EndpointStatus::Disconnected {
            return Ok(None);
        }
        // room to record this record's change and the other privacy record's (R78: a user has
        // at most one record per privacy choice), first: recording cannot fail once the change
        // has begun
        self.history.reserve(2)?;
        let idx = match found {
            Some(i) => {
                // (first: whatever changes below, even if a later step fails)
                self.history.record(i, Some(self.facts(i)))?;
                i
            }
            None => {
                let i = self.push_record(u, alloc.clone())?;
                self.history.record(i, None)?;
                i
            }
        };
        // The steps that may fail come first: on OutOfMemory the status is left as it was (the
        // caller reports the error and nobody is notified).
        let p = &mut self.participants[idx];
        let departing = u.status == EndpointStatus::Disconnected && p.is_present();
        if let Some(n) = u.nick {
            if try_set(&mut p.nick, n, &alloc)? {
                p.nick_tag = tag_of(n);
            }
        }
        // R50: the addr-spec only (a name-addr's display name and header parameters are not
        // part of an entity); anything that is not a URI is ignored
        if let Some(c) = u.contact.map(uri::addr_spec).filter(|c| uri::is_valid(c)) {
            if try_set(&mut p.contact, c, &alloc)? {
                p.contact_tag = tag_of(c);
            }
        }
        if departing {
            // R91: how it left, reported with the departure (R57)
            match u.disconnection_reason {
                Some(r) => {
                    try_set(&mut p.disconnection_reason, r, &alloc)?;
                }
                None => p.disconnection_reason = None,
            }
            p.disconnection_method = u.disconnection_method;
            p.departure_tag = departure_tag(u.disconnection_method, u.disconnection_reason);
        } else if u.status != EndpointStatus::Disconnected {
            // back in the session: an earlier departure's details no longer apply
            p.disconnection_method = None;
            p.disconnection_reason = None;
            p.departure_tag = 0;
        }
        // R95: when it joined and when it left, as the change says
        let when = u.when_ms.unwrap_or(0);
        if u.status == EndpointStatus::Connected && before != Some(EndpointStatus::Connected) {
            p.joined_ms = when;
        }
        if departing {
            p.left_ms = when;
        } else if u.status != EndpointStatus::Disconnected {
            p.left_ms = 0;
        }
        p.status = u.status;
        let chairman = self.chairman.as_deref();
        for (i, p) in self.participants.iter_mut().enumerate() {
            if i != idx && p.aoia.as_slice() == key.as_slice() && p.is_present() {
                // R78: the record of the other privacy choice is no longer in the session
                self.history.record(i, Some(p.facts(chairs(chairman, p))))?;
                p.status = EndpointStatus::Disconnected;
                p.disconnection_method = None;
                p.disconnection_reason = None;
                p.departure_tag = departure_tag(None, None);
            }
        }
        Ok(Some(idx))
    }

    /// §8 (R73-R77): the entity other subscribers see for a new participant.
    /// Returns the entity and whether it is a generated anonymous one.
    fn choose_entity(&mut self, u: &ParticipantUpdate<'_>) -> (std::vec::Vec<u8>, bool) {
        let taken = |s: &Self, e: &[u8]| s.participants.iter().any(|p| p.entity.as_slice() == e);
        // R76: unique within the session and never reused; skip numbers someone's From URI took
        let anonymous = |s: &mut Self| loop {
            let e = format!("sip:anonymous{}@anonymous.invalid", s.next_anonymous).into_bytes();
            if !taken(s, &e) {
                return e;
            }
            s.next_anonymous += 1;
        };
        match (u.role, u.privacy) {
            // R75: the identity that invited it (URI-list or group entry)
            (Role::Invited, false) => (u.listed_uri.unwrap_or(u.aoia).to_vec(), false),
            // R76
            (Role::Invited, true) => (anonymous(self), true),
            // R73, R77
            (_, false) => (u.aoia.to_vec(), false),
            // R74, R77: the From URI of its INVITE, made unique when it clashes
            (_, true) => match u.from_uri {
                Some(f) if !taken(self, f) => (f.to_vec(), false),
                _ => (anonymous(self), true),
            },
        }
    }
}

/// R59: whether documents list a participant whose status is `status`: in the session
/// (connected) or being alerted, and an invitee not yet ringing only with `report_dialing_out`.
pub fn is_listed(status: EndpointStatus, report_dialing_out: bool) -> bool {
    matches!(status, EndpointStatus::Connected | EndpointStatus::Alerting)
        || (report_dialing_out && status == EndpointStatus::DialingOut)
}

/// R95: whether `p` is the chairman `chairman` (an identity key) names.
fn chairs<A: Allocator>(chairman: Option<&[u8]>, p: &Participant<A>) -> bool {
    chairman.is_some_and(|c| c == p.aoia.as_slice())
}

/// Sets `field` to `value`, reusing its buffer. Returns whether the value changed.
fn try_set<A: Allocator + Clone>(
    field: &mut Option<Bytes<A>>,
    value: &[u8],
    alloc: &A,
) -> Result<bool, OutOfMemory> {
    match field {
        Some(old) if old.as_slice() == value => Ok(false),
        Some(old) => try_assign(old, value).map(|()| true),
        None => {
            *field = Some(try_bytes(value, alloc.clone())?);
            Ok(true)
        }
    }
}

/// FNV-1a of a nick or contact, never 0 (0 means "none").
fn tag_of(bytes: &[u8]) -> u32 {
    tag_of_parts(&[bytes])
}

/// FNV-1a of the concatenated parts, never 0.
fn tag_of_parts(parts: &[&[u8]]) -> u32 {
    let h = parts
        .iter()
        .flat_map(|p| p.iter())
        .fold(0x811c_9dc5u32, |h, &b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
    h.max(1)
}

/// R91: a digest of how a participant left, as documents write it (no method is `departed`).
fn departure_tag(method: Option<DisconnectionMethod>, reason: Option<&[u8]>) -> u32 {
    let method = method
        .unwrap_or(DisconnectionMethod::Departed)
        .as_str()
        .as_bytes();
    match reason {
        // the separator keeps ("failed", "x") apart from a method spelt "failedx"
        Some(r) => tag_of_parts(&[method, b"\n", r]),
        None => tag_of_parts(&[method]),
    }
}

#[cfg(test)]
mod tests {
    use super::unix_time_ms;

    #[test]
    fn r95_when_is_unix_seconds_with_an_optional_fraction() {
        assert_eq!(unix_time_ms(b"1796601600"), Some(1_796_601_600_000));
        assert_eq!(unix_time_ms(b"1796601600.25"), Some(1_796_601_600_250));
        assert_eq!(unix_time_ms(b"1796601600.123456"), Some(1_796_601_600_123));
        assert_eq!(unix_time_ms(b"0"), Some(0));
        let not_numbers: [&[u8]; 4] = [b"", b"-1", b"1.", b".5"];
        let other_forms: [&[u8]; 4] = [
            b"12:00",
            b"2026-12-07T00:00:00Z",
            b"1e9",
            b"1".repeat(20).leak(),
        ];
        for bad in not_numbers.into_iter().chain(other_forms) {
            assert_eq!(unix_time_ms(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }
}
