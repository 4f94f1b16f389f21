//! The glue from Kamailio events (script calls, RPC, timer, tm callbacks) into the core.
//! Entered only through kam/entry.rs, which guards every call against panics.
// unsafe lives in src/kam only (docs/architecture.md)
#![deny(unsafe_code)]
mod apply;
mod cluster;
mod cluster_auth;
mod cluster_early;
mod extra;
mod feed;
mod group_policy;
mod group_store;
mod groups;
mod notify;
mod persist;
mod rpc;
mod state;
mod subscribe;

use crate::kam::request::Msg;
use crate::kam::rpc::Rpc;
use crate::kam::{clock, params, sys};
use crate::{kerr, kinfo};

pub fn mod_init() -> i32 {
    let p = match params::read() {
        Ok(p) => p,
        Err(e) => {
            kerr!("{e}");
            return -1;
        }
    };
    if let Some(url) = &p.db_url {
        if let Err(e) = persist::init(url) {
            kerr!("{e}");
            return -1;
        }
    }
    let slots = p.hash_slots;
    if p.enable_dmq {
        if let Err(e) = cluster::init(&p) {
            kerr!("{e}");
            return -1;
        }
    }
    if let Err(why) = state::init(p, clock::random_u64()) {
        kerr!("cannot start: {why}");
        return -1;
    }
    state::reseed_tags(clock::random_u64());
    // a bad document is logged and left out: one group's mistake does not stop the server
    if let Err(e) = groups::reload() {
        kerr!("groups_dir: {}", e.0);
    }
    if let Some(url) = &state::params().db_url {
        if let Err(e) = persist::restore(url) {
            kerr!("{e}");
            return -1;
        }
    }
    cluster::start_recording();
    group_policy::prime();
    kinfo!("imconf ready: {slots} hash slots in shared memory");
    0
}

pub fn child_init(_rank: i32) -> i32 {
    // forked processes must not share the tag sequence
    state::reseed_tags(clock::random_u64());
    0
}

pub fn mod_destroy() {
    if !state::is_initialised() {
        return;
    }
    if state::params().db_url.is_some() {
        // R72: the subscriptions outlive this stop; subscribers see only a pause
        persist::stop();
    } else if !cluster::stop() {
        // (with cluster peers alive, they took the subscriptions over: nothing is sent)
        notify::shutdown();
    }
}

pub fn handle_subscribe(msg: &Msg) -> i32 {
    subscribe::handle(msg)
}

/// A script function for the SIP message `msg` (Kamailio's id and pid of it).
pub fn script_call(fn_id: u32, msg: (u32, i32), args: &[&[u8]]) -> i32 {
    let (name, result) = match fn_id {
        sys::shim_script_fn_SHIM_FN_SESSION_OPEN => {
            ("imconf_session_open", feed::session_open(args))
        }
        sys::shim_script_fn_SHIM_FN_SESSION_CLOSE => {
            ("imconf_session_close", feed::session_close(args))
        }
        sys::shim_script_fn_SHIM_FN_PARTICIPANT => (
            "imconf_participant",
            extra::with_staged(msg, args, feed::participant),
        ),
        sys::shim_script_fn_SHIM_FN_PARTICIPANT_EXTRA => {
            ("imconf_participant_extra", extra::stage(msg, args))
        }
        sys::shim_script_fn_SHIM_FN_GROUPS_RELOAD => {
            ("imconf_groups_reload", feed::groups_reload(args))
        }
        _ => return -1,
    };
    match result {
        Ok(()) => 1,
        Err(e) => {
            kerr!("{name}: {e}");
            -1
        }
    }
}

pub fn rpc_call(fn_id: u32, rpc: &Rpc) {
    rpc::call(fn_id, rpc)
}

/// Kamailio's statistics (c-shim/shim_stats.c): the counters of `imconf.stats`, by index.
pub fn stat_name(id: usize) -> Option<&'static std::ffi::CStr> {
    rpc::stat_name(id)
}

pub fn stat_value(id: usize) -> i64 {
    rpc::stat_value(id)
}

pub fn notify_completed(token: u64, code: u16) {
    notify::completed(token, code)
}

pub fn dmq_receive(
    body: &[u8],
    src_ip: &[u8],
    src_port: u16,
    node: &crate::kam::dmq::Node<'_>,
) -> u16 {
    let source = cluster_auth::Source {
        ip: src_ip,
        port: src_port,
    };
    cluster::receive(body, &source, node)
}

pub fn dmq_ready() {
    cluster::ready()
}

/// The timer process: due NOTIFYs and expiries, then the write-back (db_url) and the cluster.
pub fn timer_tick() {
    notify::tick();
    persist::tick();
    cluster::tick();
}
