//! One subscription to a session's conference state: its dialog (R24) and what its subscriber
//! has been told so far.
use super::bytes::{Bytes, OutOfMemory};
use super::conference_info::EndpointStatus;
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
    /// `Disconnected` only under `rcs_compat`: a merging client keeps the user (R90, R91).
    pub status: Option<EndpointStatus>,
    pub nick_tag: u32,
    /// R50: digest of the endpoint entity when it is the Contact (0: the user entity).
    pub endpoint_tag: u32,
    /// R91: digest of how the user left, as last reported (`Participant::departure_tag`).
    pub departure_tag: u32,
    /// R58: told `disconnected`; a `state="deleted"` entry is still to be sent.
    pub delete_pending: bool,
}

/// The dialog of the subscription (R24, R39).
#[derive(Debug)]
pub struct Dialog<A: Allocator> {
    pub call_id: Bytes<A>,
    pub local_tag: Bytes<A>,
    pub remote_tag: Bytes<A>,
    /// The SUBSCRIBE's To URI: From of our NOTIFYs.
    pub local_uri: Bytes<A>,
    /// The SUBSCRIBE's From URI: To of our NOTIFYs.
    pub remote_uri: Bytes<A>,
    pub remote_target: Bytes<A>,
    pub route_set: Bytes<A>,
    pub socket: Bytes<A>,
    /// R34: the Event `id` parameter, echoed in every NOTIFY.
    pub event_id: Option<Bytes<A>>,
    pub remote_cseq: u32,
    /// The CSeq of the last NOTIFY sent (R40), kept here so it survives any process.
    pub local_cseq: u32,
}

#[derive(Debug)]
pub struct Subscription<A: Allocator> {
    pub id: u32,
    /// Key of the session (see uri::session_key).
    pub session: Bytes<A>,
    /// The subscriber's AOIA (R5) in comparison form, for R7 limits and R68.
    pub subscriber: Bytes<A>,
    /// The AOIA as asserted and whether the SUBSCRIBE requested privacy: what the group
    /// policy is asked again when its documents change (R71, R82 anonymous-request).
    pub asserted: Bytes<A>,
    pub anonymous: bool,
    pub dialog: Dialog<A>,
    /// Absolute expiry, ms on the caller's clock.
    pub expires_at: u64,
    /// R33: the version of the last document sent; 0 before the first.
    pub version: u32,
    /// Indexed like the session's participants (R24 `seen_users`, R57).
    pub seen: Vec<Seen, A>,
    /// Participant state changed since the last NOTIFY (R26).
    pub dirty: bool,
    /// The next NOTIFY must carry full state (R27, R63).
    pub needs_full: bool,
    /// Set once the subscription is ending: the next NOTIFY is the last (R64).
    pub terminate: Option<Termination>,
    /// CSeq of the NOTIFY whose final response is awaited (R32).
    pub in_flight: Option<u32>,
    /// Set while the reply to an in-dialog SUBSCRIBE is on its way: no NOTIFY of this dialog
    /// may overtake it (R25), whichever process sees the in-flight NOTIFY complete.
    pub held_since: Option<u64>,
    /// In the notifier's queue for a place under the node-wide cap (R66).
    pub waiting: bool,
    pub last_notify_at: Option<u64>,
    pub notifies_sent: u64,
    /// NOTIFYs in a row that tm refused to send (no transaction could be made); see
    /// `Notifier::notify_unsent`.
    pub unsent: u8,
}

impl<A: Allocator> Subscription<A> {
    pub fn seen(&self, idx: usize) -> Seen {
        self.seen.get(idx).copied().unwrap_or_default()
    }

    pub fn set_seen(&mut self, idx: usize, s: Seen) -> Result<(), OutOfMemory> {
        if idx >= self.seen.len() {
            if s == Seen::default() {
                return Ok(());
            }
            let extra = idx + 1 - self.seen.len();
            self.seen.try_reserve(extra).map_err(|_| OutOfMemory)?;
            self.seen.resize(idx + 1, Seen::default());
        }
        self.seen[idx] = s;
        Ok(())
    }

    /// Seconds left, rounded down, at least 1 while active (R42).
    pub fn expires_in(&self, now: u64) -> u32 {
        (self.expires_at.saturating_sub(now) / 1000).max(1) as u32
    }
}
