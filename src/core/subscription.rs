//! One subscription to a session's conference state: its dialog (R24) and what its subscriber
//! has been told so far.
use super::bytes::{Bytes, OutOfMemory};
use super::conference_info::EndpointStatus;
use super::profile::Profile;
use super::strpack::{self, StrPack};
use allocator_api2::alloc::Allocator;
use allocator_api2::vec::Vec;

/// Why a subscription ends (R70), and whether its last NOTIFY carries a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    /// R28 unsubscribe and R29 fetch: full state in the final NOTIFY.
    TimeoutWithState,
    /// R30 expiry: no body.
    Timeout,
    /// R67, R68: session released or subscriber left; no body (R69).
    NoResource,
    /// R71: policy revoked; no body.
    Rejected,
    /// R72: node shutdown; no body.
    Deactivated,
}

impl Termination {
    pub fn reason(self) -> &'static str {
        match self {
            Termination::TimeoutWithState | Termination::Timeout => "timeout",
            Termination::NoResource => "noresource",
            Termination::Rejected => "rejected",
            Termination::Deactivated => "deactivated",
        }
    }
    pub fn with_state(self) -> bool {
        self == Termination::TimeoutWithState
    }
}

/// What a subscriber believes of one participant: the status and digests last reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Seen {
    /// None: not listed in anything this subscriber received (or told it left, R57).
    /// `Disconnected` only in the `rcs` profile: a merging client keeps the user (R90, R91).
    pub status: Option<EndpointStatus>,
    pub nick_tag: u32,
    /// R50: digest of the endpoint entity when it is the Contact (0: the user entity).
    pub endpoint_tag: u32,
    /// R91: digest of how the user left, as last reported (`Participant::departure_tag`).
    pub departure_tag: u32,
    /// R58: told `disconnected`; a `state="deleted"` entry is still to be sent.
    pub delete_pending: bool,
}

/// Where each string of a subscription sits in its block (`Dialog::strings`).
#[derive(Clone, Copy)]
enum Str {
    Session,
    Subscriber,
    Asserted,
    CallId,
    LocalTag,
    RemoteTag,
    LocalUri,
    RemoteUri,
    RemoteTarget,
    RouteSet,
    Socket,
    EventId,
}
const STRINGS: usize = Str::EventId as usize + 1;

/// The strings of a new subscription, as views; `Dialog::try_new` copies them into one block.
#[derive(Debug, Clone, Copy, Default)]
pub struct SubscriptionStrings<'a> {
    /// Key of the session (see uri::session_key).
    pub session: &'a [u8],
    /// The subscriber's AOIA (R5) in comparison form, for R7 limits and R68.
    pub subscriber: &'a [u8],
    /// The AOIA as asserted: what the group policy is asked again when its documents change
    /// (R71).
    pub asserted: &'a [u8],
    pub call_id: &'a [u8],
    pub local_tag: &'a [u8],
    pub remote_tag: &'a [u8],
    /// The SUBSCRIBE's To URI: From of our NOTIFYs.
    pub local_uri: &'a [u8],
    /// The SUBSCRIBE's From URI: To of our NOTIFYs.
    pub remote_uri: &'a [u8],
    pub remote_target: &'a [u8],
    pub route_set: &'a [u8],
    pub socket: &'a [u8],
    /// R34: the Event `id` parameter, echoed in every NOTIFY.
    pub event_id: Option<&'a [u8]>,
}

impl<'a> SubscriptionStrings<'a> {
    fn parts(&self) -> [&'a [u8]; STRINGS] {
        let mut p: [&[u8]; STRINGS] = [b""; STRINGS];
        p[Str::Session as usize] = self.session;
        p[Str::Subscriber as usize] = self.subscriber;
        p[Str::Asserted as usize] = self.asserted;
        p[Str::CallId as usize] = self.call_id;
        p[Str::LocalTag as usize] = self.local_tag;
        p[Str::RemoteTag as usize] = self.remote_tag;
        p[Str::LocalUri as usize] = self.local_uri;
        p[Str::RemoteUri as usize] = self.remote_uri;
        p[Str::RemoteTarget as usize] = self.remote_target;
        p[Str::RouteSet as usize] = self.route_set;
        p[Str::Socket as usize] = self.socket;
        p[Str::EventId as usize] = self.event_id.unwrap_or_default();
        p
    }

    /// The bytes of the block these strings take: a caller that allocates it beforehand
    /// (outside its lock) hands it to `Dialog::try_new`.
    pub fn block_size(&self) -> usize {
        strpack::block_size(&self.parts())
    }
}

/// What a subscriber was told of so many participants needs no allocation of its own: a
/// subscription to a small session is then one shm block (its strings), made and freed under
/// Kamailio's one allocator lock (docs/performance.md, "The missed targets").
const INLINE_SEEN: usize = 4;

/// What a subscriber believes of each participant, indexed like the session's participants:
/// inline up to `INLINE_SEEN` of them, in a block of its own beyond.
#[derive(Debug)]
pub struct SeenList<A: Allocator> {
    inline: [Seen; INLINE_SEEN],
    inline_len: u8,
    /// Every entry once there were more than fit inline (allocated: `spilled()`).
    spilled: Vec<Seen, A>,
}

impl<A: Allocator> SeenList<A> {
    pub fn new_in(alloc: A) -> Self {
        SeenList {
            inline: [Seen::default(); INLINE_SEEN],
            inline_len: 0,
            spilled: Vec::new_in(alloc),
        }
    }

    fn spilled(&self) -> bool {
        self.spilled.capacity() > 0
    }

    pub fn as_slice(&self) -> &[Seen] {
        if self.spilled() {
            &self.spilled
        } else {
            &self.inline[..usize::from(self.inline_len)]
        }
    }

    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entry `idx`; the default (never told) beyond the end.
    pub fn get(&self, idx: usize) -> Seen {
        self.as_slice().get(idx).copied().unwrap_or_default()
    }

    /// Room for `n` entries in all; unchanged when memory runs out.
    pub fn try_reserve(&mut self, n: usize) -> Result<(), OutOfMemory> {
        if !self.spilled() {
            if n <= INLINE_SEEN {
                return Ok(());
            }
            self.spilled.try_reserve(n).map_err(|_| OutOfMemory)?;
            self.spilled
                .extend_from_slice(&self.inline[..usize::from(self.inline_len)]);
            self.inline_len = 0;
            return Ok(());
        }
        let extra = n.saturating_sub(self.spilled.len());
        self.spilled.try_reserve(extra).map_err(|_| OutOfMemory)
    }

    /// Sets entry `idx`, growing the list with defaults; a default past the end is not stored.
    pub fn set(&mut self, idx: usize, s: Seen) -> Result<(), OutOfMemory> {
        if idx >= self.len() {
            if s == Seen::default() {
                return Ok(());
            }
            self.try_reserve(idx + 1)?;
            if self.spilled() {
                self.spilled.resize(idx + 1, Seen::default());
            } else {
                self.inline_len = (idx + 1) as u8; // <= INLINE_SEEN: try_reserve kept it inline
            }
        }
        if self.spilled() {
            self.spilled[idx] = s;
        } else {
            self.inline[idx] = s;
        }
        Ok(())
    }

    /// Appends `s`, a default one too (as a stored record has it).
    pub fn try_push(&mut self, s: Seen) -> Result<(), OutOfMemory> {
        let n = self.len();
        self.try_reserve(n + 1)?;
        if self.spilled() {
            self.spilled.push(s);
        } else {
            self.inline[n] = s;
            self.inline_len += 1;
        }
        Ok(())
    }
}

/// The dialog of the subscription (R24, R39).
#[derive(Debug)]
pub struct Dialog<A: Allocator> {
    /// The dialog's strings and the subscription's own (session, subscriber, asserted AOIA),
    /// in one allocation: shm allocations take Kamailio's one allocator lock.
    strings: StrPack<A, STRINGS>,
    /// R34: the SUBSCRIBE had an Event `id` (possibly empty).
    has_event_id: bool,
    pub remote_cseq: u32,
    /// The CSeq of the last NOTIFY sent (R40), kept here so it survives any process.
    pub local_cseq: u32,
}

impl<A: Allocator> Dialog<A> {
    /// Copies `s` into `block` (which then allocates only if it is smaller than
    /// `s.block_size()`).
    pub fn try_new(
        s: &SubscriptionStrings<'_>,
        block: Bytes<A>,
        remote_cseq: u32,
        local_cseq: u32,
    ) -> Result<Self, OutOfMemory> {
        Ok(Dialog {
            strings: StrPack::try_new_in(block, s.parts())?,
            has_event_id: s.event_id.is_some(),
            remote_cseq,
            local_cseq,
        })
    }

    fn get(&self, s: Str) -> &[u8] {
        self.strings.get(s as usize)
    }

    pub fn call_id(&self) -> &[u8] {
        self.get(Str::CallId)
    }
    pub fn local_tag(&self) -> &[u8] {
        self.get(Str::LocalTag)
    }
    pub fn remote_tag(&self) -> &[u8] {
        self.get(Str::RemoteTag)
    }
    /// The SUBSCRIBE's To URI: From of our NOTIFYs.
    pub fn local_uri(&self) -> &[u8] {
        self.get(Str::LocalUri)
    }
    /// The SUBSCRIBE's From URI: To of our NOTIFYs.
    pub fn remote_uri(&self) -> &[u8] {
        self.get(Str::RemoteUri)
    }
    pub fn remote_target(&self) -> &[u8] {
        self.get(Str::RemoteTarget)
    }
    pub fn route_set(&self) -> &[u8] {
        self.get(Str::RouteSet)
    }
    pub fn socket(&self) -> &[u8] {
        self.get(Str::Socket)
    }
    /// R34: the Event `id` parameter, echoed in every NOTIFY.
    pub fn event_id(&self) -> Option<&[u8]> {
        self.has_event_id.then(|| self.get(Str::EventId))
    }

    /// R27 target refresh: a new Contact. Rebuilds the block (rare); unchanged when memory
    /// runs out.
    pub fn set_remote_target(&mut self, target: &[u8]) -> Result<(), OutOfMemory>
    where
        A: Clone,
    {
        self.strings.try_set(Str::RemoteTarget as usize, target)
    }
}

#[derive(Debug)]
pub struct Subscription<A: Allocator> {
    pub id: u32,
    /// Whether the SUBSCRIBE requested privacy (R82 anonymous-request, asked again with
    /// `asserted` under R71).
    pub anonymous: bool,
    /// Its strings, the subscription's own (`session`, `subscriber`, `asserted`) included.
    pub dialog: Dialog<A>,
    /// Absolute expiry, ms on the caller's clock.
    pub expires_at: u64,
    /// R33: the version of the last document sent; 0 before the first.
    pub version: u32,
    /// Indexed like the session's participants (R24 `seen_users`, R57).
    pub seen: SeenList<A>,
    /// Participant state changed since the last NOTIFY (R26).
    pub dirty: bool,
    /// The next NOTIFY must carry full state (R27, R63).
    pub needs_full: bool,
    /// Set once the subscription is ending: the next NOTIFY is the last (R64).
    pub terminate: Option<Termination>,
    /// CSeq of the NOTIFY whose final response is awaited (R32).
    pub in_flight: Option<u32>,
    /// Whether that NOTIFY still holds a place under the node-wide cap (R66): it gives it up
    /// when unanswered for `slow_notify_ms` (issue 17), and its response then frees nothing.
    pub holds_place: bool,
    /// Set while the reply to an in-dialog SUBSCRIBE is on its way: no NOTIFY of this dialog
    /// may overtake it (R25), whichever process sees the in-flight NOTIFY complete.
    pub held_since: Option<u64>,
    /// In the notifier's queue for a place under the node-wide cap (R66).
    pub waiting: bool,
    /// In the notifier's fan-out queue (`Notifier::drain_fan_out`, issue 18).
    pub queued: bool,
    pub last_notify_at: Option<u64>,
    pub notifies_sent: u64,
    /// NOTIFYs in a row that tm refused to send (no transaction could be made); see
    /// `Notifier::notify_unsent`.
    pub unsent: u8,
    /// R94: what its documents look like (kept across refresh, persistence and takeover).
    pub profile: Profile,
    /// R93, R95: `Session::description_tag` of the description last sent (0: none yet; not
    /// persisted, so a restored subscription is sent it again).
    pub seen_description: u32,
    /// The session's `Journal::mark` when it was last told everything (`journal::NEVER`: not
    /// known to be; not persisted): its next partial document looks only at what changed since.
    pub told_mark: u64,
    /// When this node last claimed the dialog (ms on the caller's clock): its creation, its
    /// takeover, or its latest NOTIFY. Of two nodes that hold the same dialog after a restart
    /// (a cluster with `db_url`, issue 17), the one with the later claim is the one the
    /// subscriber heard last; the other drops its copy (`settle_claim`).
    pub claimed_at: u64,
    /// Restored at a start and not notified until the cluster's peers have told whether one of
    /// them holds this dialog in a newer state (`release_restored`; not persisted).
    pub awaiting_peers: bool,
}

impl<A: Allocator> Subscription<A> {
    /// Key of the session (see uri::session_key).
    pub fn session(&self) -> &[u8] {
        self.dialog.get(Str::Session)
    }
    /// The subscriber's AOIA (R5) in comparison form, for R7 limits and R68.
    pub fn subscriber(&self) -> &[u8] {
        self.dialog.get(Str::Subscriber)
    }
    /// The AOIA as asserted: what the group policy is asked again when its documents change
    /// (R71, with `anonymous`: R82 anonymous-request).
    pub fn asserted(&self) -> &[u8] {
        self.dialog.get(Str::Asserted)
    }

    pub fn seen(&self, idx: usize) -> Seen {
        self.seen.get(idx)
    }

    pub fn set_seen(&mut self, idx: usize, s: Seen) -> Result<(), OutOfMemory> {
        self.seen.set(idx, s)
    }

    /// Room for what `n` participants were told.
    pub fn reserve_seen(&mut self, n: usize) -> Result<(), OutOfMemory> {
        self.seen.try_reserve(n)
    }

    /// Seconds left, rounded down, at least 1 while active (R42).
    pub fn expires_in(&self, now: u64) -> u32 {
        (self.expires_at.saturating_sub(now) / 1000).max(1) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::conference_info::EndpointStatus;
    use allocator_api2::alloc::Global;

    fn told(tag: u32) -> Seen {
        Seen {
            status: Some(EndpointStatus::Connected),
            nick_tag: tag,
            ..Seen::default()
        }
    }

    #[test]
    fn seen_list_moves_to_a_block_of_its_own_past_the_inline_entries() {
        let mut l = SeenList::new_in(Global);
        l.set(7, Seen::default()).unwrap();
        assert!(l.is_empty(), "a default past the end is not stored");
        l.set(2, told(2)).unwrap();
        assert_eq!(l.as_slice(), &[Seen::default(), Seen::default(), told(2)]);
        assert_eq!(l.spilled.capacity(), 0, "inline: no allocation");
        l.set(INLINE_SEEN + 1, told(9)).unwrap();
        assert_eq!(l.len(), INLINE_SEEN + 2);
        assert_eq!((l.get(2), l.get(INLINE_SEEN + 1)), (told(2), told(9)));
        assert_eq!(l.get(100), Seen::default());
        l.set(0, told(1)).unwrap();
        assert_eq!(l.get(0), told(1));
    }

    #[test]
    fn seen_list_reserved_while_empty_spills_cleanly() {
        let mut l = SeenList::new_in(Global);
        l.try_reserve(INLINE_SEEN * 3).unwrap();
        assert!(l.is_empty());
        l.set(1, told(1)).unwrap();
        l.try_push(Seen::default()).unwrap();
        assert_eq!(l.as_slice(), &[Seen::default(), told(1), Seen::default()]);
    }
}
