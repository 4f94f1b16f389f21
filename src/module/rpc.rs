//! RPC commands (`kamcmd imconf.*`, jsonrpcs): the feeding commands of feed.rs and the
//! listings, gathered one slot lock at a time.
use super::apply::FeedError;
use super::cluster_auth;
use super::cluster_early;
use super::feed;
use super::state::{self, shared};
use crate::core::notifier::{Stats, COUNTED_CODES};
use crate::core::uri;
use crate::kam::clock;
use crate::kam::rpc::Rpc;
use crate::kam::shm;
use crate::kam::sys;
use crate::kwarn;
use std::ffi::CStr;

/// The positional arguments (one more than any command takes, so that an extra one is seen).
fn args(rpc: &Rpc) -> Vec<Vec<u8>> {
    rpc.args(sys::SHIM_MAX_ARGS as usize + 1)
}

/// A feeding command: `ok`, or fault 400 with the reason.
fn feeding(rpc: &Rpc, f: fn(&[&[u8]]) -> Result<(), FeedError>) {
    let owned = args(rpc);
    let args: Vec<&[u8]> = owned.iter().map(|a| a.as_slice()).collect();
    match f(&args) {
        Ok(()) => rpc.add_str("ok"),
        Err(e) => rpc.fault(400, &e.to_string()),
    }
}

pub fn session_open(rpc: &Rpc) {
    feeding(rpc, feed::session_open)
}

pub fn session_close(rpc: &Rpc) {
    feeding(rpc, feed::session_close)
}

pub fn participant(rpc: &Rpc) {
    feeding(rpc, feed::participant)
}

pub fn session_subject(rpc: &Rpc) {
    feeding(rpc, feed::session_subject)
}

pub fn session_chairman(rpc: &Rpc) {
    feeding(rpc, feed::session_chairman)
}

pub fn groups_reload(rpc: &Rpc) {
    feeding(rpc, feed::groups_reload)
}

pub fn cluster_rekey(rpc: &Rpc) {
    match cluster_auth::rekey() {
        Ok(keys) => rpc.add_str(&format!("ok: {keys}")),
        Err(e) => {
            kwarn!("imconf.cluster_rekey: {e}; the keys in use are kept");
            rpc.fault(400, &e)
        }
    }
}

pub fn sessions(rpc: &Rpc) {
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

pub fn subscriptions(rpc: &Rpc) {
    let owned = args(rpc);
    let args: Vec<&[u8]> = owned.iter().map(|a| a.as_slice()).collect();
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
                .int(c"notify_in_flight", i64::from(s.notify_in_flight))
                .str(c"profile", s.profile.as_str());
        }
    }
}

/// The module's counters, in the order of `imconf.stats` (docs/interface.md). Kamailio's statistics
/// (`kamcmd stats.get_statistics imconf:`, c-shim/shim_stats.c) register the same names.
pub const STAT_NAMES: [&CStr; STAT_COUNT] = [
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
    c"sessions",
    c"subscriptions",
    c"notifies_sent",
    c"notifies_full",
    c"notifies_partial",
    c"notifies_terminated",
    c"notify_responses_2xx",
    c"notify_responses_failed",
    c"notifies_in_flight",
    c"coalesced_changes",
    c"rejected_by_policy",
    c"shm_bytes_in_use",
    c"cluster_accepted",
    c"cluster_refused_unsigned",
    c"cluster_refused_bad_mac",
    c"cluster_refused_stale",
    c"cluster_refused_replay",
    c"cluster_refused_malformed",
    c"cluster_early_applied",
    c"cluster_early_dropped",
    c"notifies_slow",
    c"cluster_replicas",
    c"cluster_replication_requests",
    c"cluster_dialogs_yielded",
    c"cluster_fenced",
    c"subscribe_retransmissions",
];
pub const STAT_COUNT: usize = COUNTED_CODES.len() + 12 + cluster_auth::COUNTERS + 2 + 6;
// every counter must fit a statistics slot of the shim, or the module would not start
const _: () = assert!(STAT_COUNT <= crate::kam::STATS_SLOTS);

/// Every counter of `STAT_NAMES`, summed over the slots. Takes each slot lock in turn, never two
/// at once (the same rule as every other reader), so a reader never blocks a slot for long.
pub fn stat_values() -> [i64; STAT_COUNT] {
    let mut total = Stats::default();
    let (mut sessions, mut subs) = (0usize, 0usize);
    let mut in_flight = 0i64;
    if state::is_initialised() {
        for slot in shared().slots.iter() {
            let n = slot.lock();
            total.add(&n.stats);
            sessions += n.sessions_info().len();
            subs += n.subscription_count();
        }
        in_flight = i64::from(shared().in_flight.in_flight());
    }
    let mut out = [0i64; STAT_COUNT];
    for (o, v) in out.iter_mut().zip(total.replies.iter()) {
        *o = *v as i64;
    }
    let rest = [
        sessions as i64,
        subs as i64,
        (total.notifies_full + total.notifies_partial + total.notifies_terminated) as i64,
        total.notifies_full as i64,
        total.notifies_partial as i64,
        total.notifies_terminated as i64,
        total.notify_ok as i64,
        total.notify_failed as i64,
        in_flight,
        total.coalesced as i64,
        total.rejected_by_policy as i64,
        shm::used_bytes() as i64,
    ];
    let (mine, cluster) = out[COUNTED_CODES.len()..].split_at_mut(rest.len());
    mine.copy_from_slice(&rest);
    let (auth, rest) = cluster.split_at_mut(cluster_auth::COUNTERS);
    auth.copy_from_slice(&cluster_auth::counters());
    let (early, last) = rest.split_at_mut(2);
    early.copy_from_slice(&cluster_early::counters());
    last[0] = total.notifies_slow as i64;
    last[1] = super::cluster::replica_count() as i64;
    last[2] = super::cluster::requests_sent() as i64;
    last[3] = super::cluster::dialogs_yielded() as i64;
    last[4] = i64::from(super::cluster::fenced());
    last[5] = total.retransmissions_answered as i64;
    out
}

/// Name of counter `id` for Kamailio's statistics; `None` past the last.
pub fn stat_name(id: usize) -> Option<&'static CStr> {
    STAT_NAMES.get(id).copied()
}

/// Value of counter `id` for Kamailio's statistics (0 for an unknown id).
pub fn stat_value(id: usize) -> i64 {
    stat_values().get(id).copied().unwrap_or(0)
}

pub fn stats(rpc: &Rpc) {
    let values = stat_values();
    let Some(st) = rpc.add_struct() else { return };
    for (name, v) in STAT_NAMES.iter().zip(values.iter()) {
        st.int(name, *v);
    }
}
