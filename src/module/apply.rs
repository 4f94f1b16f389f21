//! Session changes applied on this node only: the arguments of the script and RPC calls
//! (docs/interface.md) checked and applied under their slot's lock. feed.rs adds replication to the
//! cluster for changes fed here; cluster.rs applies its peers' changes through this file.
use super::fan_out;
use super::group_policy::DocumentPolicy;
use super::notify::send_all;
use super::state::{params, shared, SlotNotifier};
use crate::core::cluster::stamp_time_ms;
use crate::core::conference_info::{DisconnectionMethod, EndpointStatus};
use crate::core::config::Config;
use crate::core::notifier::Notify;
use crate::core::session::unix_time_ms;
use crate::core::session::{ParticipantUpdate, Role, SessionError, SessionKind, SubjectUpdate};
use crate::core::{headers, uri};
use crate::kam::clock;

/// A refused call: the argument at fault and why.
#[derive(Debug)]
pub struct FeedError {
    pub arg: &'static str,
    pub why: String,
    /// The core's refusal, when that was the cause (a peer's change may be one already made).
    pub session: Option<SessionError>,
}

impl std::fmt::Display for FeedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.arg, self.why)
    }
}

pub(super) fn err(arg: &'static str, why: impl Into<String>) -> FeedError {
    FeedError {
        arg,
        why: why.into(),
        session: None,
    }
}

/// "-" and "" mean "not given" (docs/interface.md).
fn given(a: Option<&[u8]>) -> Option<&[u8]> {
    a.filter(|v| !v.is_empty() && *v != b"-")
}

fn required<'a>(args: &[&'a [u8]], i: usize, name: &'static str) -> Result<&'a [u8], FeedError> {
    given(args.get(i).copied()).ok_or_else(|| err(name, "missing"))
}

pub(super) fn uri_arg<'a>(
    args: &[&'a [u8]],
    i: usize,
    name: &'static str,
) -> Result<&'a [u8], FeedError> {
    let v = required(args, i, name)?;
    if uri::session_key(v).is_none() {
        return Err(err(
            name,
            format!("not a sip/sips/tel URI: {}", String::from_utf8_lossy(v)),
        ));
    }
    Ok(v)
}

fn optional_uri<'a>(
    args: &[&'a [u8]],
    i: usize,
    name: &'static str,
) -> Result<Option<&'a [u8]>, FeedError> {
    match given(args.get(i).copied()) {
        None => Ok(None),
        Some(_) => uri_arg(args, i, name).map(Some),
    }
}

/// `privacy`: 0 or 1, or the Privacy header of the participant's INVITE or 2xx as received
/// (`$hdr(Privacy)`), which R79 decides: `id`, `user` or `header` request privacy.
fn privacy_arg(v: Option<&[u8]>) -> Result<bool, FeedError> {
    match v {
        None | Some(b"0") => Ok(false),
        Some(b"1") => Ok(true),
        Some(h) if is_privacy_header(h) => Ok(headers::privacy_requested(&[h])),
        Some(_) => Err(err("privacy", "0, 1 or a Privacy header value")),
    }
}

/// RFC 3323 priv-values separated by `;` (and `,` between header fields joined by Kamailio).
fn is_privacy_header(h: &[u8]) -> bool {
    h.split(|&c| c == b';' || c == b',')
        .map(<[u8]>::trim_ascii)
        .all(|v| {
            [
                &b"header"[..],
                b"session",
                b"user",
                b"none",
                b"critical",
                b"id",
                b"history",
            ]
            .iter()
            .any(|t| v.eq_ignore_ascii_case(t))
        })
}

/// Free text (a nick, a reason): UTF-8 without control characters.
fn text_arg<'a>(
    args: &[&'a [u8]],
    i: usize,
    name: &'static str,
) -> Result<Option<&'a [u8]>, FeedError> {
    let Some(v) = given(args.get(i).copied()) else {
        return Ok(None);
    };
    match std::str::from_utf8(v) {
        Ok(t) if !t.chars().any(char::is_control) => Ok(Some(v)),
        Ok(_) => Err(err(name, "contains control characters")),
        Err(_) => Err(err(name, "not UTF-8")),
    }
}

pub(super) fn check_arity(args: &[&[u8]], max: usize) -> Result<(), FeedError> {
    if args.len() > max {
        return Err(err(
            "arguments",
            format!("at most {max} expected, got {}", args.len()),
        ));
    }
    Ok(())
}

fn session_error(e: SessionError) -> FeedError {
    let fe = match e {
        SessionError::UnknownSession => err("session_uri", "no such session"),
        SessionError::AlreadyOpen => err("session_uri", "session already open"),
        SessionError::OutOfMemory => err("shm", "shared memory is full"),
    };
    FeedError {
        session: Some(e),
        ..fe
    }
}

fn slot_of(session_uri: &[u8]) -> Result<usize, FeedError> {
    shared()
        .slot_of_uri(session_uri)
        .ok_or_else(|| err("session_uri", "not a sip/sips/tel URI"))
}

/// `session_open` without replication (a peer's, or this node's before replicating).
pub fn open(args: &[&[u8]]) -> Result<(), FeedError> {
    check_arity(args, 3)?;
    let session_uri = uri_arg(args, 0, "session_uri")?;
    let kind_arg = required(args, 1, "kind")?;
    let kind = SessionKind::parse(kind_arg).ok_or_else(|| {
        err(
            "kind",
            "one of one-to-one, ad-hoc, pre-defined, chat, restricted-chat",
        )
    })?;
    let group = optional_uri(args, 2, "group_uri")?;
    match (kind.is_group(), group) {
        (true, None) => return Err(err("group_uri", "required for a group session")),
        (false, Some(_)) => return Err(err("group_uri", "only for group sessions")),
        _ => {}
    }
    let slot = slot_of(session_uri)?;
    let max_users = group.and_then(|g| DocumentPolicy::current().max_participant_count(g));
    {
        let mut n = shared().slots[slot].lock();
        n.open_session(session_uri, kind, group)
            .map_err(session_error)?;
        // R88: reported as maximum-user-count (R52, R91)
        n.set_max_user_count(session_uri, max_users)
            .map_err(session_error)?;
    }
    if let Some(g) = group {
        // R3: a SUBSCRIBE to the group identity lands in the group URI's slot; point it here
        let gslot = slot_of(g)?;
        if gslot != slot {
            let added = shared().slots[gslot].lock().add_alias(g, session_uri);
            if let Err(e) = added {
                let _ = shared().slots[slot].lock().close_session(
                    &params().config,
                    clock::now_ms(),
                    session_uri,
                );
                return Err(session_error(e));
            }
        }
    }
    Ok(())
}

/// A change applied under its slot's lock: the NOTIFYs it calls for, still to be sent, and
/// whether it queued more for the fan-out processes (fan_out.rs).
#[must_use]
pub(super) struct Applied {
    slot: usize,
    notifies: Vec<Notify>,
    queued: bool,
}

impl Applied {
    /// Read while the slot is still locked.
    pub(super) fn of(slot: usize, n: &SlotNotifier, notifies: Vec<Notify>) -> Applied {
        Applied {
            slot,
            notifies,
            queued: n.fan_out_pending() > 0,
        }
    }

    pub(super) fn send(self) {
        send_all(self.slot, self.notifies);
        fan_out::start(self.slot, self.queued);
    }
}

/// Releases a session (R67) and its group alias, on this node only: also used when its group
/// document goes (each node reads its own groups_dir) and for a peer's close.
pub fn close(session_uri: &[u8]) -> Result<(), FeedError> {
    apply_close(session_uri).map(Applied::send)
}

pub(super) fn apply_close(session_uri: &[u8]) -> Result<Applied, FeedError> {
    let slot = slot_of(session_uri)?;
    let (notifies, group) = {
        let mut n = shared().slots[slot].lock();
        let group = n.group_of(session_uri);
        let notifies = n
            .close_session(&params().config, clock::now_ms(), session_uri)
            .map_err(session_error)?;
        (Applied::of(slot, &n, notifies), group)
    };
    if let Some(g) = group {
        if let Ok(gslot) = slot_of(&g) {
            shared().slots[gslot].lock().remove_alias(&g, session_uri);
        }
    }
    Ok(notifies)
}

/// A participant change stamped `stamp` (0: unstamped, without a cluster), on this node only.
pub(super) fn apply_participant(args: &[&[u8]], stamp: u64) -> Result<Applied, FeedError> {
    check_arity(args, 12)?;
    let session_uri = uri_arg(args, 0, "session_uri")?;
    let aoia = uri_arg(args, 1, "aoia")?;
    let status = match required(args, 2, "status")? {
        b"alerting" => EndpointStatus::Alerting,
        b"connected" => EndpointStatus::Connected,
        b"disconnected" => EndpointStatus::Disconnected,
        // extension (docs/interface.md): invited, INVITE sent, no 180 yet (R59)
        b"dialing-out" => EndpointStatus::DialingOut,
        _ => {
            return Err(err(
                "status",
                "one of alerting, connected, disconnected, dialing-out",
            ))
        }
    };
    let role = match given(args.get(3).copied()) {
        None => Role::Joined,
        Some(r) => {
            Role::parse(r).ok_or_else(|| err("role", "one of originator, invited, joined"))?
        }
    };
    let listed_uri = optional_uri(args, 4, "listed_uri")?;
    let from_uri = optional_uri(args, 5, "from_uri")?;
    let privacy = privacy_arg(given(args.get(6).copied()))?;
    let nick = text_arg(args, 7, "nick")?;
    // R52/R91: how and why a participant left (written with emit_disconnection_method/rcs_compat)
    let disconnection_method = match given(args.get(8).copied()) {
        None => None,
        Some(_) if status != EndpointStatus::Disconnected => {
            return Err(err("disconnection_method", "only with status disconnected"))
        }
        Some(m) => Some(DisconnectionMethod::parse(m).ok_or_else(|| {
            err(
                "disconnection_method",
                "one of departed, booted, failed, busy",
            )
        })?),
    };
    let disconnection_reason = text_arg(args, 9, "disconnection_reason")?;
    // R50: the Contact/GRUU, the endpoint entity under endpoint_entity=contact
    let contact = optional_uri(args, 10, "contact")?;
    // R95: when it happened, as the feeder knows it (else the stamp's time)
    let when = match given(args.get(11).copied()) {
        None => when_ms(stamp),
        Some(w) => unix_time_ms(w).ok_or_else(|| {
            err(
                "when",
                "Unix time in seconds, optionally with a fraction (e.g. 1796601600.250)",
            )
        })?,
    };
    let update = ParticipantUpdate {
        aoia,
        status,
        role,
        listed_uri,
        from_uri,
        privacy,
        nick,
        disconnection_method,
        disconnection_reason,
        contact,
        // R95: every node records the same time (the feeder's, or the stamp's)
        when_ms: Some(when),
    };
    let slot = slot_of(session_uri)?;
    let policy = DocumentPolicy::current(); // before the slot lock (groups.rs)
    let notifies = {
        let mut n = shared().slots[slot].lock();
        // R49, R88: without a name of its own, a member is shown by its rl:display-name
        let fallback = match (nick, n.group_of(session_uri)) {
            (None, Some(g)) if !n.has_nick(session_uri, aoia) => policy.display_name(&g, aoia),
            _ => None,
        };
        let update = ParticipantUpdate {
            nick: nick.or(fallback.as_deref().map(str::as_bytes)),
            ..update
        };
        let notifies = n
            .participant_stamped(
                &params().config,
                clock::now_ms(),
                session_uri,
                &update,
                stamp,
            )
            .map_err(session_error)?;
        Applied::of(slot, &n, notifies)
    };
    Ok(notifies)
}

/// The wall-clock ms a change happened at: the stamp's, so that every node records the same;
/// this node's clock without a cluster (stamp 0).
fn when_ms(stamp: u64) -> u64 {
    match stamp {
        0 => clock::wall_ms(),
        s => stamp_time_ms(s),
    }
}

/// R95 `session_subject(session_uri, subject[, by])` stamped `stamp`, on this node: the
/// subject (`-` or empty: none), and who set it (a URI).
pub(super) fn apply_subject(args: &[&[u8]], stamp: u64) -> Result<Applied, FeedError> {
    check_arity(args, 3)?;
    let session_uri = uri_arg(args, 0, "session_uri")?;
    let text = text_arg(args, 1, "subject")?;
    let by = optional_uri(args, 2, "by")?;
    let slot = slot_of(session_uri)?;
    let update = SubjectUpdate {
        text,
        by,
        when_ms: when_ms(stamp),
    };
    change_in_slot(slot, |n, cfg, now| {
        n.set_subject(cfg, now, session_uri, &update, stamp)
    })
}

/// A session change applied under `slot`'s lock, with the configuration and the time.
fn change_in_slot(
    slot: usize,
    change: impl FnOnce(&mut SlotNotifier, &Config, u64) -> Result<Vec<Notify>, SessionError>,
) -> Result<Applied, FeedError> {
    let mut n = shared().slots[slot].lock();
    let notifies = change(&mut n, &params().config, clock::now_ms()).map_err(session_error)?;
    Ok(Applied::of(slot, &n, notifies))
}

/// R95 `session_chairman(session_uri, aoia)` stamped `stamp`, on this node (`-` or empty:
/// none).
pub(super) fn apply_chairman(args: &[&[u8]], stamp: u64) -> Result<Applied, FeedError> {
    check_arity(args, 2)?;
    let session_uri = uri_arg(args, 0, "session_uri")?;
    let chairman = optional_uri(args, 1, "aoia")?;
    let slot = slot_of(session_uri)?;
    change_in_slot(slot, |n, cfg, now| {
        n.set_chairman(cfg, now, session_uri, chairman, stamp)
    })
}
