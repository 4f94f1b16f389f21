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

/// What a subscriber believes of the participants it believes otherwise than the session's
/// facts at its mark say (core::history, `view::believed`): a participant it was never told of
/// that joined and left between two of its NOTIFYs, a deletion still to send (R58), everything
/// a restored subscription was told. Usually none: no allocation, and a subscription's memory
/// does not grow with the session's size (issue 18, lever 4).
#[derive(Debug)]
pub struct Beliefs<A: Allocator> {
    /// (participant index, belief), ascending by index.
    list: Vec<(u32, Seen), A>,
}

impl<A: Allocator> Beliefs<A> {
    pub fn new_in(alloc: A) -> Self {
        Beliefs {
            list: Vec::new_in(alloc),
        }
    }

    /// The belief about participant `idx`, if it is one of them.
    pub fn get(&self, idx: usize) -> Option<Seen> {
        let idx = u32::try_from(idx).ok()?;
        let k = self.list.binary_search_by_key(&idx, |&(i, _)| i).ok()?;
        Some(self.list[k].1)
    }

    /// Their participants' indexes, ascending.
    pub fn indexes(&self) -> impl Iterator<Item = usize> + '_ {
        self.list.iter().map(|&(i, _)| i as usize)
    }

    pub fn as_slice(&self) -> &[(u32, Seen)] {
        &self.list
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Becomes `new` (ascending by index); unchanged when memory runs out. None left frees
    /// the block.
    pub fn replace(&mut self, new: &[(u32, Seen)]) -> Result<(), OutOfMemory>
    where
        A: Clone,
    {
        if self.list.as_slice() == new {
            return Ok(());
        }
        debug_assert!(new.windows(2).all(|w| w[0].0 < w[1].0));
        if new.is_empty() {
            self.list = Vec::new_in(self.list.allocator().clone());
            return Ok(());
        }
        let mut list = Vec::new_in(self.list.allocator().clone());
        list.try_reserve_exact(new.len()).map_err(|_| OutOfMemory)?;
        list.extend_from_slice(new);
        self.list = list;
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
    /// R24 `seen_users`, R57: what it believes of the participants, where the session's facts
    /// at `told_mark` do not say it (core::history).
    pub beliefs: Beliefs<A>,
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
    /// The session's `History::mark` when it was last told everything (`history::NEVER`:
    /// never; not persisted): what it believes of a participant is what the session showed then,
    /// unless `beliefs` says otherwise, and its next partial document looks only at what changed
    /// since (core::history).
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
    fn beliefs_are_looked_up_by_index_and_free_their_block_when_none_is_left() {
        let mut b = Beliefs::new_in(Global);
        assert_eq!(b.get(3), None);
        b.replace(&[(2, told(2)), (9, told(9))]).unwrap();
        assert_eq!(
            (b.get(2), b.get(9), b.get(5)),
            (Some(told(2)), Some(told(9)), None)
        );
        assert_eq!(b.indexes().collect::<std::vec::Vec<_>>(), [2, 9]);
        b.replace(&[]).unwrap();
        assert!(b.is_empty());
        assert_eq!(b.list.capacity(), 0, "no block kept for none");
    }
}
