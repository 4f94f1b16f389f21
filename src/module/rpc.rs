//! RPC commands (`kamcmd imconf.*`, jsonrpcs): the feeding commands of feed.rs and the
//! listings, gathered one slot lock at a time.
use super::feed::{self, FeedError};
use super::state::shared;
use crate::core::notifier::{Stats, COUNTED_CODES};
use crate::core::uri;
use crate::kam::clock;
use crate::kam::rpc::Rpc;
use crate::kam::shm;
use crate::kam::sys;

pub fn call(fn_id: u32, rpc: &Rpc) {
    let owned = rpc.args(sys::SHIM_MAX_ARGS as usize + 1);
    let args: Vec<&[u8]> = owned.iter().map(|a| a.as_slice()).collect();
    let result = match fn_id {
        sys::shim_rpc_fn_SHIM_RPC_SESSION_OPEN => feed::session_open(&args),
        sys::shim_rpc_fn_SHIM_RPC_SESSION_CLOSE => feed::session_close(&args),
        sys::shim_rpc_fn_SHIM_RPC_PARTICIPANT => feed::participant(&args),
        sys::shim_rpc_fn_SHIM_RPC_GROUPS_RELOAD => feed::groups_reload(&args),
        sys::shim_rpc_fn_SHIM_RPC_SESSIONS => return sessions(rpc),
        sys::shim_rpc_fn_SHIM_RPC_SUBSCRIPTIONS => return subscriptions(rpc, &args),
        sys::shim_rpc_fn_SHIM_RPC_STATS => return stats(rpc),
        _ => Err(FeedError {
            arg: "command",
            why: "unknown".into(),
        }),
    };
    match result {
        Ok(()) => rpc.add_str("ok"),
        Err(e) => rpc.fault(400, &e.to_string()),
    }
}

fn sessions(rpc: &Rpc) {
    for slot in shared().slots.iter() {
        let infos = slot.lock().sessions_info();
        for s in infos {
            let Some(st) = rpc.add_struct() else { return };
            st.str(c"uri", &s.uri)
                .str(c"kind", s.kind.as_str())
                .str(c"group", s.group.as_deref().unwrap_or(""))
                .int(c"participants", s.participants as i64)
                .int(c"subscriptions", s.subscriptions as i64);
        }
    }
}

fn subscriptions(rpc: &Rpc, args: &[&[u8]]) {
    let filter = match args.first() {
        Some(a) if !a.is_empty() && *a != b"-" => match uri::session_key(a) {
            Some(k) => Some(k),
            None => return rpc.fault(400, "session_uri: not a sip/sips/tel URI"),
        },
        _ => None,
    };
    let now = clock::now_ms();
    for slot in shared().slots.iter() {
        let infos = slot.lock().subscriptions_info(now, filter.as_deref());
        for s in infos {
            let Some(st) = rpc.add_struct() else { return };
            st.str(c"session", &s.session)
                .str(c"subscriber", &s.subscriber)
                .str(c"call_id", &s.call_id)
                .int(c"expires_in", i64::from(s.expires_in))
                .int(c"version", i64::from(s.version))
                .int(c"notifies_sent", s.notifies_sent as i64)
                .int(c"notify_in_flight", i64::from(s.notify_in_flight));
        }
    }
}

fn stats(rpc: &Rpc) {
    let mut total = Stats::default();
    let (mut sessions, mut subs) = (0usize, 0usize);
    for slot in shared().slots.iter() {
        let n = slot.lock();
        total.add(&n.stats);
        sessions += n.sessions_info().len();
        subs += n.subscription_count();
    }
    let Some(st) = rpc.add_struct() else { return };
    const NAMES: [&std::ffi::CStr; COUNTED_CODES.len()] = [
        c"subscribe_200",
        c"subscribe_400",
        c"subscribe_403",
        c"subscribe_404",
        c"subscribe_406",
        c"subscribe_423",
        c"subscribe_481",
        c"subscribe_489",
        c"subscribe_500",
        c"subscribe_other",
    ];
    for (name, v) in NAMES.iter().zip(total.replies.iter()) {
        st.int(name, *v as i64);
    }
    st.int(c"sessions", sessions as i64)
        .int(c"subscriptions", subs as i64)
        .int(
            c"notifies_sent",
            (total.notifies_full + total.notifies_partial + total.notifies_terminated) as i64,
        )
        .int(c"notifies_full", total.notifies_full as i64)
        .int(c"notifies_partial", total.notifies_partial as i64)
        .int(c"notifies_terminated", total.notifies_terminated as i64)
        .int(c"notify_responses_2xx", total.notify_ok as i64)
        .int(c"notify_responses_failed", total.notify_failed as i64)
        .int(
            c"notifies_in_flight",
            i64::from(shared().in_flight.in_flight()),
        )
        .int(c"coalesced_changes", total.coalesced as i64)
        .int(c"rejected_by_policy", total.rejected_by_policy as i64)
        .int(c"shm_bytes_in_use", shm::used_bytes() as i64);
}
