//! Session state fed by the script or over RPC (INTERFACE.md): the same arguments, the same
//! checks, the same effects. A bad argument is an error naming it; nothing changes then.
use super::notify::send_all;
use super::state::{params, shared};
use crate::core::conference_info::EndpointStatus;
use crate::core::session::{ParticipantUpdate, Role, SessionError, SessionKind};
use crate::core::uri;
use crate::kam::clock;

/// A refused call: the argument at fault and why.
#[derive(Debug)]
pub struct FeedError {
    pub arg: &'static str,
    pub why: String,
}

impl std::fmt::Display for FeedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.arg, self.why)
    }
}

fn err(arg: &'static str, why: impl Into<String>) -> FeedError {
    FeedError {
        arg,
        why: why.into(),
    }
}

/// "-" and "" mean "not given" (INTERFACE.md).
fn given(a: Option<&[u8]>) -> Option<&[u8]> {
    a.filter(|v| !v.is_empty() && *v != b"-")
}

fn required<'a>(args: &[&'a [u8]], i: usize, name: &'static str) -> Result<&'a [u8], FeedError> {
    given(args.get(i).copied()).ok_or_else(|| err(name, "missing"))
}

fn uri_arg<'a>(args: &[&'a [u8]], i: usize, name: &'static str) -> Result<&'a [u8], FeedError> {
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

fn check_arity(args: &[&[u8]], max: usize) -> Result<(), FeedError> {
    if args.len() > max {
        return Err(err(
            "arguments",
            format!("at most {max} expected, got {}", args.len()),
        ));
    }
    Ok(())
}

fn session_error(e: SessionError) -> FeedError {
    match e {
        SessionError::UnknownSession => err("session_uri", "no such session"),
        SessionError::AlreadyOpen => err("session_uri", "session already open"),
        SessionError::OutOfMemory => err("shm", "shared memory is full"),
    }
}

fn slot_of(session_uri: &[u8]) -> Result<usize, FeedError> {
    shared()
        .slot_of_uri(session_uri)
        .ok_or_else(|| err("session_uri", "not a sip/sips/tel URI"))
}

/// `session_open(session_uri, kind[, group_uri])`
pub fn session_open(args: &[&[u8]]) -> Result<(), FeedError> {
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
    shared().slots[slot]
        .lock()
        .open_session(session_uri, kind, group)
        .map_err(session_error)?;
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

/// `session_close(session_uri)`: R67.
pub fn session_close(args: &[&[u8]]) -> Result<(), FeedError> {
    check_arity(args, 1)?;
    let session_uri = uri_arg(args, 0, "session_uri")?;
    let slot = slot_of(session_uri)?;
    let (notifies, group) = {
        let mut n = shared().slots[slot].lock();
        let group = n.group_of(session_uri);
        let notifies = n
            .close_session(&params().config, clock::now_ms(), session_uri)
            .map_err(session_error)?;
        (notifies, group)
    };
    if let Some(g) = group {
        if let Ok(gslot) = slot_of(&g) {
            shared().slots[gslot].lock().remove_alias(&g, session_uri);
        }
    }
    send_all(slot, notifies);
    Ok(())
}

/// `participant(session_uri, aoia, status[, role[, listed_uri[, from_uri[, privacy[, nick]]]]])`
pub fn participant(args: &[&[u8]]) -> Result<(), FeedError> {
    check_arity(args, 8)?;
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
    let privacy = match given(args.get(6).copied()) {
        None | Some(b"0") => false,
        Some(b"1") => true,
        Some(_) => return Err(err("privacy", "0 or 1")),
    };
    let nick = given(args.get(7).copied());
    if nick.is_some_and(|n| std::str::from_utf8(n).is_err()) {
        return Err(err("nick", "not UTF-8"));
    }
    let update = ParticipantUpdate {
        aoia,
        status,
        role,
        listed_uri,
        from_uri,
        privacy,
        nick,
    };
    let slot = slot_of(session_uri)?;
    let notifies = shared().slots[slot]
        .lock()
        .participant(&params().config, clock::now_ms(), session_uri, &update)
        .map_err(session_error)?;
    send_all(slot, notifies);
    Ok(())
}

/// `groups_reload()`: group documents arrive with XDM policy (issue 5); until then there is
/// nothing to reread, which is reported rather than faked.
pub fn groups_reload(args: &[&[u8]]) -> Result<(), FeedError> {
    check_arity(args, 0)?;
    if params().groups_dir.is_some() {
        return Err(err("groups_dir", "group documents are not supported yet"));
    }
    Ok(())
}
