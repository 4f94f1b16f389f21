//! IM sessions and their participants, as fed by the script or RPC.
use super::bytes::{try_assign, try_bytes, try_push, Bytes, OutOfMemory};
use super::conference_info::EndpointStatus;
use super::key::{new_set, Set};
use super::uri;
use allocator_api2::alloc::Allocator;
use allocator_api2::vec::Vec;

/// The kinds of IM session of INTERFACE.md `imconf_session_open`.
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
    /// Group kinds need a group URI (INTERFACE.md) and assert it in the 2xx (R17 b).
    pub fn is_group(self) -> bool {
        !matches!(self, SessionKind::OneToOne | SessionKind::AdHoc)
    }
}

/// The role of a participant (INTERFACE.md `imconf_participant`), which decides its entity (§8).
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
}

/// One user of the session. Participants are never removed while the session lives: a leaver
/// stays as `Disconnected`, so its index (used by subscriptions' `seen` lists) and its
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
        self.is_current() || (report_dialing_out && self.status == EndpointStatus::DialingOut)
    }
    /// R49, R78: the display text, never under privacy.
    pub fn display_text(&self) -> Option<&[u8]> {
        if self.privacy {
            None
        } else {
            self.nick.as_ref().map(|n| n.as_slice())
        }
    }
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
    next_anonymous: u32,
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
            subs: new_set(seed, alloc),
            next_anonymous: 1,
        })
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
        // R86: one user whatever URI parameters or host case the feeder used
        let key = uri::identity_key(u.aoia);
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
        let idx = match found {
            Some(i) => i,
            None if u.status == EndpointStatus::Disconnected => return Ok(None),
            None => {
                let (entity, generated) = self.choose_entity(u);
                let p = Participant {
                    aoia: try_bytes(&key, alloc.clone())?,
                    entity: try_bytes(&entity, alloc.clone())?,
                    nick: None,
                    status: u.status,
                    privacy: u.privacy,
                    nick_tag: 0,
                };
                try_push(&mut self.participants, p)?;
                if generated {
                    self.next_anonymous += 1;
                }
                self.participants.len() - 1
            }
        };
        for (i, p) in self.participants.iter_mut().enumerate() {
            if i != idx && p.aoia.as_slice() == key.as_slice() {
                // R78: the record of the other privacy choice is no longer in the session
                p.status = EndpointStatus::Disconnected;
            }
        }
        let p = &mut self.participants[idx];
        p.status = u.status;
        if let Some(n) = u.nick {
            match &mut p.nick {
                Some(old) if old.as_slice() == n => {}
                Some(old) => {
                    try_assign(old, n)?;
                    p.nick_tag = nick_tag(n);
                }
                None => {
                    p.nick = Some(try_bytes(n, alloc)?);
                    p.nick_tag = nick_tag(n);
                }
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

/// FNV-1a of the nick, never 0 (0 means "no nick").
fn nick_tag(nick: &[u8]) -> u32 {
    let h = nick.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    h.max(1)
}
