//! The glue from Kamailio events (script calls, RPC, timer, tm callbacks) into the core.
//! Entered only through kam/entry.rs, which guards every call against panics.
// unsafe lives in src/kam only (docs/architecture.md)
#![deny(unsafe_code)]
mod apply;
mod cluster;
mod cluster_auth;
mod cluster_early;
mod extra;
mod fan_out;
mod feed;
mod group_policy;
mod group_store;
mod groups;
mod notify;
mod persist;
pub(crate) mod rpc;
pub(crate) mod script;
mod state;
mod subscribe;

use crate::core::config::BadParam;
use crate::core::params::{settings, Settings};
use crate::kam::request::Msg;
use crate::kam::{clock, params};
use crate::{kerr, kinfo};

/// The settings the cfg gave (core::params checks every value; the directory is checked here).
fn read_settings() -> Result<Settings, BadParam> {
    let s = settings(&params::values())?;
    if let Some(dir) = &s.groups_dir {
        if !std::path::Path::new(dir).is_dir() {
            return Err(BadParam {
                name: "groups_dir",
                why: format!("{dir} is not a directory"),
            });
        }
    }
    Ok(s)
}

pub fn mod_init() -> i32 {
    let p = match read_settings() {
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
    state::set_dialog_tag_key(clock::random_u64());
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
        // R72: the subscriptions outlive this stop; subscribers see only a pause. With cluster
        // peers alive they are handed over too, after they were written (issue 17)
        let peers = cluster::peers_alive();
        persist::stop(!peers);
        if peers {
            cluster::stop();
        }
    } else if !cluster::stop() {
        // (with cluster peers alive, they took the subscriptions over: nothing is sent)
        notify::shutdown();
    }
}

pub fn handle_subscribe(msg: &Msg, args: &[&[u8]]) -> i32 {
    subscribe::handle(msg, args)
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

/// The timer process's interval (the shim starts it after mod_init).
pub fn timer_interval_ms() -> i32 {
    state::params().timer_interval_ms as i32
}

/// How many fan-out processes the shim starts (issue 18).
pub fn fanout_workers() -> i32 {
    state::params().fanout_workers as i32
}

/// A fan-out process was woken for `slot`.
pub fn fanout_work(slot: usize) {
    fan_out::work(slot)
}

/// The timer process: due NOTIFYs and expiries, then the write-back (db_url) and the cluster.
pub fn timer_tick() {
    notify::tick();
    persist::tick();
    cluster::tick();
}
