//! The cluster (`enable_dmq`, docs/cluster.md): session changes fed on this node go to every
//! peer over Kamailio's dmq module, peers' changes are applied here as if fed here (each node
//! notifies its own subscribers), and a starting node asks its peers for every session. Each
//! node also sends the state of its own subscriptions; when a node says goodbye or goes
//! silent, its subscriptions are taken over by the peers (each by one, `successor`).
use super::apply::{self, Applied};
use super::cluster_auth::{self as auth, ACCEPTED, MALFORMED};
use super::cluster_early as early;
use super::state::{params, shared};
use crate::core::cluster::{
    decode, encode, member_name, next_stamp, plausible_stamp, replica_holders, successor, Op,
    Peers, PEER_URI_MAX,
};
use crate::core::cluster_auth::{Replay, Sealed};
use crate::core::notifier::{Changes, Claim, Consumer, RestoreError};
use crate::core::params::Settings as ModuleParams;
use crate::core::replicas::Replicas;
use crate::core::session::SessionError;
use crate::kam::dmq::{self, Node};
use crate::kam::lock::{init_in_place, try_lock_for, ShmMutex};
use crate::kam::shm::{leak_in_shm, Published, ShmAlloc};
use crate::kam::{clock, process};
use crate::{kdbg, kinfo, kwarn};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Shared by the node's processes (in shm, created before the fork).
struct ClusterState {
    /// This node's id for this run: random, in every message and in the low bits of stamps.
    node: u64,
    /// The highest stamp made or seen (core::cluster::next_stamp).
    clock: AtomicU64,
    /// A peer has sent its sessions (or none answered in time): SUBSCRIBEs are served.
    synced: AtomicBool,
    started_ms: u64,
    /// The peers heard from, and when, and the counters each sender used (one lock: both are
    /// touched by every message received).
    peers: ShmMutex<PeerTable>,
    /// The peers' subscriptions, as last sent: what a takeover restores.
    replicas: ShmMutex<Replicas<ShmAlloc>>,
    /// A peer left or fell silent: the next tick sends every subscription of this node again,
    /// so that the nodes that became their replica holders (`dmq_replicas`) get them.
    resend_all: AtomicBool,
    requests_sent: AtomicU64,
    /// The subscriptions restored from `db_url` may send (`release_restored`); true from the
    /// start without `db_url`.
    released: AtomicBool,
    /// Subscriptions of this node dropped because a peer held the same dialog in a newer
    /// state (`imconf.stats cluster_dialogs_yielded`).
    yielded: AtomicU64,
    /// Since when the held subscriptions wait for the peers' answers (`release_restored`): the
    /// start, or the end of a partition.
    hold_since_ms: AtomicU64,
    /// This node cannot see a majority of the cluster (a partition, `Peers::quorum`): it
    /// notifies nobody and takes nothing over until it can again.
    fenced: AtomicBool,
    /// Peers fell silent while this node was fenced: their subscriptions are taken over once a
    /// majority is seen again (if they are still silent then).
    orphans_pending: AtomicBool,
    /// This node's dmq URI, as its peers know it (`Peers::quorum` breaks ties by it).
    self_uri: [u8; PEER_URI_MAX],
    self_uri_len: usize,
}

struct PeerTable {
    heard: Peers,
    /// R96: which (sender, counter) were applied recently (core::cluster_auth).
    replay: Replay,
    /// The peers whose answer to this node's sync request has arrived.
    answered: Vec<u64>,
}

static STATE: Published<ClusterState> = Published::new();

/// How long a starting node waits for a peer's sessions before serving without them.
const SYNC_WAIT_MS: u64 = 3000;
/// Every node says it is alive this often (the timer process)...
const HEARTBEAT_MS: u64 = 1000;
/// ...and a peer silent this long has crashed: its subscriptions are taken over.
const PEER_TIMEOUT_MS: u64 = 3500;

fn state() -> Option<&'static ClusterState> {
    STATE.get()
}

/// mod_init with `enable_dmq`: loads the cluster's secret, binds dmq and registers the peer
/// "imconf".
pub fn init(p: &ModuleParams) -> Result<(), String> {
    let keys = auth::init(p.dmq_secret.as_deref(), p.dmq_secret_file.as_deref())?;
    early::init()?;
    dmq::bind().map_err(|e| format!("modparam \"enable_dmq\": {e}"))?;
    let mut self_uri = [0u8; PEER_URI_MAX];
    let own = dmq::self_uri().unwrap_or_default();
    let own = member_name(&own);
    let self_uri_len = if own.len() <= PEER_URI_MAX {
        own.len()
    } else {
        0
    };
    self_uri[..self_uri_len].copy_from_slice(&own[..self_uri_len]);
    let st = leak_in_shm(ClusterState {
        node: clock::random_u64(),
        clock: AtomicU64::new(0),
        synced: AtomicBool::new(false),
        started_ms: clock::now_ms(),
        peers: ShmMutex::new(PeerTable {
            heard: Peers::default(),
            replay: Replay::default(),
            answered: Vec::new(),
        }),
        replicas: ShmMutex::new(Replicas::new_in(clock::random_u64(), ShmAlloc)),
        resend_all: AtomicBool::new(false),
        requests_sent: AtomicU64::new(0),
        released: AtomicBool::new(p.db_url.is_none()),
        yielded: AtomicU64::new(0),
        hold_since_ms: AtomicU64::new(clock::now_ms()),
        fenced: AtomicBool::new(false),
        orphans_pending: AtomicBool::new(false),
        self_uri,
        self_uri_len,
    })
    .ok_or("enable_dmq: no shared memory for the cluster state")?;
    if !init_in_place(&st.peers) || !init_in_place(&st.replicas) {
        return Err("enable_dmq: cannot initialise the cluster locks".into());
    }
    STATE.publish(st);
    kinfo!(
        "enable_dmq: node {:016x} joins the dmq peer \"imconf\" ({keys})",
        st.node
    );
    Ok(())
}

/// mod_init, once the slots exist: they record what changes in their subscriptions, which
/// `tick` sends to the peers.
pub fn start_recording() {
    if state().is_some() {
        for slot in shared().slots.iter() {
            slot.lock().enable_changes(Consumer::Cluster);
        }
    }
}

/// The stamp of a change fed here (0 without a cluster: every change applies).
pub fn stamp() -> u64 {
    let Some(st) = state() else { return 0 };
    let mut prev = st.clock.load(Ordering::Relaxed);
    loop {
        let next = next_stamp(prev, clock::wall_ms(), st.node);
        match st
            .clock
            .compare_exchange_weak(prev, next, Ordering::AcqRel, Ordering::Relaxed)
        {
            Ok(_) => return next,
            Err(seen) => prev = seen,
        }
    }
}

fn observe(stamp: u64) {
    if let Some(st) = state() {
        st.clock.fetch_max(stamp, Ordering::AcqRel);
    }
}

/// Whether an in-dialog SUBSCRIBE may be served: false while the subscriptions restored from
/// `db_url` wait for the peers (one of them may hold the dialog in a newer state).
pub fn serving_in_dialog() -> bool {
    state().is_none_or(|st| st.released.load(Ordering::Acquire))
}

/// Whether this node cannot see a majority of its cluster (`imconf.stats cluster_fenced`).
pub fn fenced() -> bool {
    state().is_some_and(|st| st.fenced.load(Ordering::Acquire))
}

/// Subscriptions this node dropped because a peer held the dialog in a newer state.
pub fn dialogs_yielded() -> u64 {
    state().map_or(0, |st| st.yielded.load(Ordering::Relaxed))
}

/// Whether SUBSCRIBEs may be served: false while a starting node waits for its peers' sessions.
pub fn serving() -> bool {
    state().is_none_or(|st| {
        !st.fenced.load(Ordering::Acquire)
            && (st.synced.load(Ordering::Acquire)
                || clock::now_ms() >= st.started_ms + SYNC_WAIT_MS)
    })
}

/// Sends a change fed on this node to every peer (after it was applied here, outside any
/// slot lock: dmq sends through tm). A failure is logged: peers then catch up at their next sync.
pub fn replicate(op: Op) {
    if let Some(st) = state() {
        broadcast(st, std::slice::from_ref(&op));
    }
}

/// The arguments of a script or RPC call, owned, for `Op`.
pub fn owned(args: &[&[u8]]) -> Vec<Vec<u8>> {
    args.iter().map(|a| a.to_vec()).collect()
}

/// dmq has this node's peer list: ask the peers for their sessions.
pub fn ready() {
    let Some(st) = state() else { return };
    kinfo!("enable_dmq: peers known, asking them for their sessions");
    broadcast(st, &[Op::SyncRequest]);
}

/// A KDMQ message for "imconf" from `source` (dmq's `node`, when it knows the sender); the
/// response code for dmq to send. Only an authentic, fresh, never-seen message changes anything
/// (R96): every other is refused whole, counted and logged (cluster_auth).
pub fn receive(body: &[u8], source: &auth::Source<'_>, node: &Node<'_>) -> u16 {
    let Some(st) = state() else {
        kwarn!("a cluster message arrived without enable_dmq; refused");
        return 500;
    };
    let mut joined = false;
    let fresh = |m: &Sealed<'_>| {
        if m.node == st.node {
            return Ok(()); // our own broadcast, looped back: nothing to apply
        }
        let mut t = st.peers.lock();
        t.replay.check(m, clock::wall_ms())?;
        joined = !t.heard.heard(m.node, clock::now_ms());
        Ok(())
    };
    let msg = match auth::admit(body, source, fresh) {
        Ok(m) => m,
        Err(code) => return code,
    };
    if msg.node == st.node {
        return 200;
    }
    // where replicas to it go (dmq_replicas): the URI dmq knows it by
    if let Some(uri) = node.uri() {
        st.peers.lock().heard.set_uri(msg.node, &uri);
    }
    if joined {
        kinfo!("enable_dmq: peer {:016x} joined", msg.node);
        // it holds some replicas now (it asks for them: a sync); this node may not any more
        prune_replicas(st);
    }
    let now = clock::wall_ms();
    let ops = match decode(msg.ops) {
        Ok(ops)
            if ops
                .iter()
                .filter_map(Op::stamp)
                .all(|s| plausible_stamp(s, now)) =>
        {
            ops
        }
        bad => {
            // authentic but unreadable (a node of another version, or a bug), or stamped far
            // in the future: nothing applied
            let why = match bad {
                Err(e) => format!("malformed ({})", e.0),
                Ok(_) => "malformed (a stamp far ahead of this node's clock)".to_string(),
            };
            auth::count(MALFORMED);
            auth::log_refusal(source, &why);
            return 400;
        }
    };
    auth::count(ACCEPTED);
    for op in ops {
        apply(st, msg.node, op, node);
    }
    200
}

fn apply(st: &ClusterState, from: u64, op: Op, node: &Node<'_>) {
    match op {
        Op::Open { stamp, args } => {
            observe(stamp);
            let a: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            let r = apply::open(&a);
            let opened = r.is_ok();
            ignore_known(r, "session_open", from);
            if opened {
                // the session URI and its group identity (R3) are both names a change may use
                for name in args.iter().take(3).step_by(2) {
                    apply_early(st, name, stamp, node);
                }
            }
        }
        Op::Close { stamp, session_uri } => {
            observe(stamp);
            let r = apply::close(&session_uri);
            if unknown_session(&r) {
                let key = session_uri.clone();
                park(&key, from, stamp, &Op::Close { stamp, session_uri });
            } else {
                ignore_known(r, "session_close", from);
            }
        }
        Op::Participant { stamp, args } => feed_call(from, stamp, args, &PARTICIPANT),
        Op::Subject { stamp, args } => feed_call(from, stamp, args, &SUBJECT),
        Op::Chairman { stamp, args } => feed_call(from, stamp, args, &CHAIRMAN),
        Op::Session { uri, record } => {
            for name in restore_session(&uri, &record) {
                apply_early(st, &name, 0, node);
            }
        }
        Op::SyncRequest => send_sync(node),
        Op::SyncDone => {
            let mut t = st.peers.lock();
            if !t.answered.contains(&from) && t.answered.len() < 1024 {
                t.answered.push(from);
            }
            drop(t);
            if !st.synced.swap(true, Ordering::AcqRel) {
                kinfo!("enable_dmq: synced with a peer; serving");
            }
        }
        Op::Sub {
            call_id,
            local_tag,
            session_uri,
            record,
        } => {
            if yields_to_peer(st, from, &call_id, &local_tag, &session_uri, &record) {
                return; // this node holds the dialog in a newer state: the peer drops its copy
            }
            // dmq_replicas: kept only by the owner's first successors (issue 17)
            let nodes = known_nodes(st);
            let mut replicas = st.replicas.lock();
            let stored = if holds_replica(st, &call_id, from, &nodes) {
                replicas.upsert(from, &call_id, &local_tag, &session_uri, &record)
            } else {
                replicas.remove(from, &call_id, &local_tag); // it moved to other holders
                Ok(())
            };
            drop(replicas);
            if stored.is_err() {
                kwarn!("enable_dmq: no shared memory for a peer's subscription; it cannot be taken over");
            }
        }
        Op::SubGone { call_id, local_tag } => st.replicas.lock().remove(from, &call_id, &local_tag),
        Op::Heartbeat => {}
        Op::Bye => {
            st.peers.lock().heard.forget(from);
            st.replicas.lock().departed(from);
            st.resend_all.store(true, Ordering::Release);
            kinfo!("enable_dmq: peer {from:016x} stops and hands over its subscriptions");
            take_over(st, from, false);
        }
    }
}

/// A peer sent its own state of a dialog (`Sub`): if this node holds that dialog too (both
/// restored it from `db_url` after a takeover, issue 17), the copy claimed last stays
/// (`Notifier::settle_claim`, ties to the higher node id). True when it is this node's: its
/// state then goes to the peer, which drops its copy on receipt.
fn yields_to_peer(
    st: &ClusterState,
    from: u64,
    call_id: &[u8],
    local_tag: &[u8],
    session_uri: &[u8],
    record: &[u8],
) -> bool {
    let s = shared();
    let Some(slot) = s.slot_of_uri(session_uri) else {
        return false;
    };
    let offset = clock::wall_offset_ms();
    let mut n = s.slots[slot].lock();
    match n.settle_claim(call_id, local_tag, record, offset, from > st.node) {
        Claim::NotHere => false,
        Claim::Theirs => {
            drop(n);
            st.yielded.fetch_add(1, Ordering::Relaxed);
            kinfo!(
                "enable_dmq: peer {from:016x} holds dialog {} in a newer state; this node's copy dropped",
                String::from_utf8_lossy(call_id)
            );
            false
        }
        Claim::Ours => {
            let row = n.subscription_row(&params().config, call_id, local_tag, offset);
            drop(n);
            if let Some(r) = row {
                let op = Op::Sub {
                    call_id: r.call_id,
                    local_tag: r.local_tag,
                    session_uri: r.session_uri,
                    record: r.state,
                };
                send_to_peer(st, from, std::slice::from_ref(&op));
            }
            true
        }
    }
}

/// `ops` to one peer: by the URI dmq knows it by, else in a broadcast (the others drop what
/// is not theirs).
fn send_to_peer(st: &ClusterState, peer: u64, ops: &[Op]) {
    let uri = st.peers.lock().heard.uri_of(peer).map(<[u8]>::to_vec);
    for body in auth::seal(st.node, encode(ops)) {
        let sent = match &uri {
            Some(u) => dmq::send_to(u, &body),
            None => dmq::broadcast(&body),
        };
        if let Err(e) = sent {
            kwarn!("enable_dmq: not sent to peer {peer:016x}: {e}");
        }
    }
}

/// Restores the subscriptions of `gone` that fall to this node. `crashed`: its last state may
/// be behind (the CSeq jumps, R40), else it is exact (the next CSeq and version follow).
fn take_over(st: &ClusterState, gone: u64, crashed: bool) {
    // every replica whose owner is gone, not only `gone`'s: a successor that fell silent
    // before it took its share over leaves it to the next one (issue 17)
    let alive = known_nodes(st);
    let orphans = st
        .replicas
        .lock()
        .take_orphans(&alive, |cid| successor(cid, &alive) == Some(st.node));
    let s = shared();
    let (now, offset) = (clock::now_ms(), clock::wall_offset_ms());
    let mut taken = 0;
    for o in &orphans {
        let Some(slot) = s.slot_of_uri(&o.session_uri) else {
            continue;
        };
        let r = s.slots[slot]
            .lock()
            .take_over(now, &o.record, offset, !o.graceful);
        match r {
            Ok(()) => taken += 1,
            Err(e) => auth::log_limited(
                b"takeover",
                &format!(
                    "enable_dmq: subscription {} of peer {gone:016x} not taken over: {e:?}",
                    String::from_utf8_lossy(&o.call_id)
                ),
            ),
        }
    }
    kinfo!(
        "enable_dmq: took over {taken} of {} subscriptions of {}{}",
        orphans.len(),
        match gone {
            0 => "peers gone while this node was fenced".to_string(),
            g => format!("peer {g:016x}"),
        },
        if crashed { " (it went silent)" } else { "" }
    );
}

/// The peers' subscriptions this node keeps (`imconf.stats cluster_replicas`).
pub fn replica_count() -> usize {
    state().map_or(0, |st| st.replicas.lock().len())
}

/// This node and the peers it hears.
fn known_nodes(st: &ClusterState) -> Vec<u64> {
    let mut nodes = st.peers.lock().heard.alive();
    nodes.push(st.node);
    nodes
}

/// Whether this node keeps a replica of `owner`'s subscription `call_id` (`dmq_replicas`).
fn holds_replica(st: &ClusterState, call_id: &[u8], owner: u64, nodes: &[u64]) -> bool {
    let k = params().dmq_replicas as usize;
    k == 0 || replica_holders(call_id, owner, nodes, k).contains(&st.node)
}

/// Drops the replicas this node no longer holds (a peer joined and ranks above it).
fn prune_replicas(st: &ClusterState) {
    if params().dmq_replicas == 0 {
        return;
    }
    let nodes = known_nodes(st);
    st.replicas
        .lock()
        .prune(|owner, cid| !nodes.contains(&owner) || holds_replica(st, cid, owner, &nodes));
}

/// The ops that tell the peers what changed in this node's subscriptions.
fn sub_ops(ch: Changes, ops: &mut Vec<Op>) {
    for (call_id, local_tag) in ch.gone_subs {
        ops.push(Op::SubGone { call_id, local_tag });
    }
    for row in ch.subs {
        ops.push(Op::Sub {
            call_id: row.call_id,
            local_tag: row.local_tag,
            session_uri: row.session_uri,
            record: row.state,
        });
    }
}

fn broadcast(st: &ClusterState, ops: &[Op]) -> u64 {
    let mut sent = 0;
    for body in auth::seal(st.node, encode(ops)) {
        match dmq::broadcast(&body) {
            Ok(()) => sent += 1,
            Err(e) => kwarn!("enable_dmq: not sent to the peers: {e}"),
        }
    }
    sent
}

/// This node's subscription changes (`Sub`, `SubGone`) to the nodes that keep their replicas
/// (`dmq_replicas`, issue 17), each node one request with its share; to every peer with
/// `dmq_replicas` 0, or for a holder whose dmq URI is not known (yet).
fn send_replicas(st: &ClusterState, ops: Vec<Op>) {
    let k = params().dmq_replicas as usize;
    if ops.is_empty() {
        return;
    }
    // (a broadcast is a request to each peer)
    let peers = st.peers.lock().heard.alive().len() as u64;
    if k == 0 {
        let sent = broadcast(st, &ops);
        st.requests_sent.fetch_add(sent * peers, Ordering::Relaxed);
        return;
    }
    let nodes = known_nodes(st);
    let mut shares: Vec<(u64, Vec<Op>)> = Vec::new();
    let mut everyone = Vec::new();
    for op in ops {
        let call_id = match &op {
            Op::Sub { call_id, .. } | Op::SubGone { call_id, .. } => call_id.clone(),
            _ => {
                everyone.push(op);
                continue;
            }
        };
        for holder in replica_holders(&call_id, st.node, &nodes, k) {
            match shares.iter_mut().find(|(n, _)| *n == holder) {
                Some((_, share)) => share.push(op.clone()),
                None => shares.push((holder, vec![op.clone()])),
            }
        }
    }
    for (holder, share) in shares {
        let uri = st.peers.lock().heard.uri_of(holder).map(<[u8]>::to_vec);
        let Some(uri) = uri else {
            everyone.extend(share);
            continue;
        };
        for body in auth::seal(st.node, encode(&share)) {
            match dmq::send_to(&uri, &body) {
                Ok(()) => {
                    st.requests_sent.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => kwarn!("enable_dmq: not sent to peer {holder:016x}: {e}"),
            }
        }
    }
    if !everyone.is_empty() {
        let sent = broadcast(st, &everyone);
        st.requests_sent.fetch_add(sent * peers, Ordering::Relaxed);
    }
}

/// KDMQ requests this node sent to replicate its subscriptions (`imconf.stats
/// cluster_replication_requests`): a broadcast counts one per peer.
pub fn requests_sent() -> u64 {
    state().map_or(0, |st| st.requests_sent.load(Ordering::Relaxed))
}

/// The timer process: this node's subscription changes to the peers, the heartbeat, and the
/// takeover of peers gone silent.
pub fn tick() {
    let Some(st) = state() else { return };
    let now = clock::now_ms();
    let offset = clock::wall_offset_ms();
    let mut ops = Vec::new();
    // after a peer left, everything again: the nodes now among each subscription's replica
    // holders (dmq_replicas) may not have it
    let all = st.resend_all.swap(false, Ordering::AcqRel);
    for slot in shared().slots.iter() {
        let ch = slot
            .lock()
            .take_changes(&params().config, Consumer::Cluster, offset, all);
        sub_ops(ch, &mut ops);
    }
    send_replicas(st, ops);
    let last = LAST_HEARTBEAT.load(Ordering::Relaxed);
    if now >= last + HEARTBEAT_MS {
        LAST_HEARTBEAT.store(now, Ordering::Relaxed);
        broadcast(st, &[Op::Heartbeat]);
    }
    let (silent, quorum) = {
        let mut t = st.peers.lock();
        let silent = t.heard.expire(now, PEER_TIMEOUT_MS);
        let own = &st.self_uri[..st.self_uri_len];
        (silent, t.heard.quorum(now, FENCE_AFTER_MS, own))
    };
    fence(st, now, quorum);
    if !st.fenced.load(Ordering::Acquire) {
        release_restored(st, now);
    }
    for gone in &silent {
        kwarn!("enable_dmq: peer {gone:016x} silent for {PEER_TIMEOUT_MS} ms");
    }
    // peers silent while this node was fenced are taken over only once every peer that is
    // back has had the time to be heard (a heal makes the majority visible one peer at a time)
    let settled = now >= st.hold_since_ms.load(Ordering::Acquire) + PEER_TIMEOUT_MS;
    let pending = st.orphans_pending.load(Ordering::Acquire) && settled;
    if !silent.is_empty() || pending {
        if quorum {
            // every replica whose owner is gone and whose successor is this node
            st.orphans_pending.store(false, Ordering::Release);
            take_over(st, silent.first().copied().unwrap_or(0), true);
            st.resend_all.store(true, Ordering::Release);
        } else if !silent.is_empty() {
            kwarn!("enable_dmq: no majority of the cluster in sight: their subscriptions are not taken over");
            st.orphans_pending.store(true, Ordering::Release);
        }
    }
}

/// A peer unheard this long no longer counts toward this node's majority (`fence`): less than
/// `PEER_TIMEOUT_MS`, so that a node cut off from the majority stops notifying before the
/// majority takes its subscriptions over.
const FENCE_AFTER_MS: u64 = 2000;

/// A partition (docs/cluster.md "Partitions"): a node that cannot see a majority of the
/// cluster's members stops notifying (the majority, if there is one, takes its subscriptions
/// over) and serves no SUBSCRIBE; once it sees a majority again it asks its peers for their
/// state, sends them its sessions (both sides merge by stamps), and notifies again once they
/// answered, each dialog held by the node that holds its newest copy (`yields_to_peer`).
fn fence(st: &ClusterState, now: u64, quorum: bool) {
    let fenced = st.fenced.load(Ordering::Acquire);
    if !quorum && !fenced {
        st.fenced.store(true, Ordering::Release);
        st.released.store(false, Ordering::Release);
        for slot in shared().slots.iter() {
            slot.lock().hold_all();
        }
        kwarn!("enable_dmq: a majority of the cluster is out of sight: this node stops notifying");
    } else if quorum && fenced {
        st.hold_since_ms.store(now, Ordering::Release);
        st.peers.lock().answered.clear();
        st.fenced.store(false, Ordering::Release);
        let mut ops: Vec<Op> = session_ops();
        ops.push(Op::SyncRequest);
        broadcast(st, &ops);
        kinfo!("enable_dmq: a majority of the cluster in sight again; asking the peers for their state");
    }
}

/// Every session of this node, as `Session` operations (a sync's first part).
fn session_ops() -> Vec<Op> {
    let mut ops = Vec::new();
    for slot in shared().slots.iter() {
        let rows = slot.lock().session_rows();
        ops.extend(rows.into_iter().map(|r| Op::Session {
            uri: r.uri,
            record: r.state,
        }));
    }
    ops
}

/// Timer process only.
static LAST_HEARTBEAT: AtomicU64 = AtomicU64::new(0);

/// The subscriptions restored from `db_url` may send once every peer heard from has answered
/// this node's sync (each has said which dialogs it holds, and the newer copies have settled),
/// or `SYNC_WAIT_MS` after the start; their replicas then go to their holders.
fn release_restored(st: &ClusterState, now: u64) {
    if st.released.load(Ordering::Acquire) {
        return;
    }
    let answered_all = st.synced.load(Ordering::Acquire) && {
        let t = st.peers.lock();
        t.heard.alive().iter().all(|p| t.answered.contains(p))
    };
    if !answered_all && now < st.hold_since_ms.load(Ordering::Acquire) + SYNC_WAIT_MS {
        return;
    }
    st.released.store(true, Ordering::Release);
    for slot in shared().slots.iter() {
        slot.lock().release_restored(now);
    }
    st.resend_all.store(true, Ordering::Release);
    kinfo!("enable_dmq: the restored subscriptions are served");
}

/// Whether a peer is alive to hand this node's subscriptions to (mod_destroy).
pub fn peers_alive() -> bool {
    state()
        .is_some_and(|st| try_lock_for(&st.peers, 200).is_some_and(|p| !p.heard.alive().is_empty()))
}

/// mod_destroy: with peers alive, this node's subscriptions go to them in their latest state,
/// then goodbye; no NOTIFY is sent (R72), the peers go on. False without peers (the caller
/// then ends the subscriptions as a single node does).
pub fn stop() -> bool {
    let Some(st) = state() else { return false };
    let alive = try_lock_for(&st.peers, 200).map(|p| p.heard.alive());
    if alive.is_none_or(|a| a.is_empty()) {
        return false;
    }
    // in a copy of this process bounded in time: a tm or dmq lock left taken by an exited child
    // would block the send forever (kam/process.rs)
    if let Err(why) = process::bounded(HANDOVER_LIMIT, || hand_over(st)) {
        kwarn!("enable_dmq: stopping; the handover to the peers failed ({why}): they take this node's subscriptions over when it has been silent for 3.5 s");
    }
    true
}

/// The longest a stop waits for its handover (about 90 bodies of 60 kB for 5000 subscriptions
/// take well under a second).
const HANDOVER_LIMIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Every subscription in its latest state to the peers, then goodbye.
fn hand_over(st: &ClusterState) {
    let offset = clock::wall_offset_ms();
    let mut ops = Vec::new();
    for slot in shared().slots.iter() {
        match try_lock_for(slot, 200) {
            Some(mut n) => sub_ops(n.take_changes(&params().config, Consumer::Cluster, offset, true), &mut ops),
            None => kwarn!("enable_dmq: a hash slot held by an exited process; its subscriptions are left to the peers' last copy"),
        }
    }
    let count = ops.len();
    ops.push(Op::Bye);
    broadcast(st, &ops);
    kinfo!("enable_dmq: stopping; {count} subscriptions handed to the peers");
}

/// A stamped feed call a peer replicates: its name (for the log), how it applies here, and
/// how its operation is rebuilt (to keep it for a session not here yet).
struct FeedOp {
    what: &'static str,
    apply: fn(&[&[u8]], u64) -> Result<Applied, apply::FeedError>,
    op: fn(u64, Vec<Vec<u8>>) -> Op,
}

const PARTICIPANT: FeedOp = FeedOp {
    what: "participant",
    apply: apply::apply_participant,
    op: |stamp, args| Op::Participant { stamp, args },
};
const SUBJECT: FeedOp = FeedOp {
    what: "session_subject",
    apply: apply::apply_subject,
    op: |stamp, args| Op::Subject { stamp, args },
};
const CHAIRMAN: FeedOp = FeedOp {
    what: "session_chairman",
    apply: apply::apply_chairman,
    op: |stamp, args| Op::Chairman { stamp, args },
};

/// A peer's stamped feed call, applied here; one for a session not here (yet) is kept for it
/// (cluster_early).
fn feed_call(from: u64, stamp: u64, args: Vec<Vec<u8>>, call: &FeedOp) {
    observe(stamp);
    let a: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    let r = (call.apply)(&a, stamp).map(Applied::send);
    if unknown_session(&r) {
        let key = args[0].clone();
        park(&key, from, stamp, &(call.op)(stamp, args));
    } else {
        ignore_known(r, call.what, from);
    }
}

/// Whether a peer's change failed only because its session is not here (yet).
fn unknown_session(r: &Result<(), apply::FeedError>) -> bool {
    matches!(r, Err(e) if matches!(e.session, Some(SessionError::UnknownSession)))
}

/// A peer's change to a session this node does not have: kept until the session opens
/// (cluster_early; the two requests may have arrived in the other order).
fn park(session_uri: &[u8], from: u64, stamp: u64, op: &Op) {
    early::park(
        session_uri,
        from,
        stamp,
        &encode(std::slice::from_ref(op)).concat(),
    );
}

/// The session `name` opened here (`stamp`; 0 from a sync): the peers' changes that came
/// before it, applied now.
fn apply_early(st: &ClusterState, name: &[u8], stamp: u64, node: &Node<'_>) {
    for ready in early::take(name, stamp) {
        match decode(&ready.op) {
            Ok(ops) => {
                for op in ops {
                    apply(st, ready.from, op, node);
                }
            }
            Err(e) => kwarn!("enable_dmq: a kept change could not be read back: {}", e.0),
        }
    }
}

/// A peer's change that this node already reflects (a session it opened or closed too) is
/// no error; anything else is logged (rate-limited per peer).
fn ignore_known(r: Result<(), apply::FeedError>, what: &str, from: u64) {
    if let Err(e) = r {
        if !matches!(
            e.session,
            Some(SessionError::AlreadyOpen | SessionError::UnknownSession)
        ) {
            auth::log_limited(
                format!("{from:x}").as_bytes(),
                &format!("enable_dmq: peer {from:016x}'s {what} not applied: {e}"),
            );
        } else {
            kdbg!("enable_dmq: a peer's {what} changed nothing here: {e}");
        }
    }
}

/// A session from a peer's sync: restored, or, when this node has it already (restored from
/// `db_url`, or kept through a partition), merged by stamps (`Notifier::merge_session`),
/// notifying what changed here. The names it opened under (its URI, and its group identity)
/// when it was restored.
fn restore_session(uri: &[u8], record: &[u8]) -> Vec<Vec<u8>> {
    let s = shared();
    let Some(slot) = s.slot_of_uri(uri) else {
        auth::log_limited(
            b"sync",
            "enable_dmq: synced session with a bad URI left out",
        );
        return Vec::new();
    };
    let restored = s.slots[slot].lock().restore_session(record);
    match restored {
        Ok((session_uri, Some(group))) => {
            // R3: the group identity leads here from its own slot too (as session_open)
            if let Some(gslot) = s.slot_of_uri(&group).filter(|&g| g != slot) {
                let _ = s.slots[gslot].lock().add_alias(&group, &session_uri);
            }
            return vec![session_uri, group];
        }
        Ok((session_uri, None)) => return vec![session_uri],
        Err(RestoreError::Duplicate) => {
            let merged =
                s.slots[slot]
                    .lock()
                    .merge_session(&params().config, clock::now_ms(), record);
            match merged {
                Ok(out) => super::notify::send_all(slot, out),
                Err(e) => auth::log_limited(
                    b"sync",
                    &format!(
                        "enable_dmq: synced session {} not merged: {e:?}",
                        String::from_utf8_lossy(uri)
                    ),
                ),
            }
        }
        Err(e) => auth::log_limited(
            b"sync",
            &format!(
                "enable_dmq: synced session {} left out: {e:?}",
                String::from_utf8_lossy(uri)
            ),
        ),
    }
    Vec::new()
}

/// Every session of this node to the node that asked, then the end mark.
fn send_sync(node: &Node<'_>) {
    let Some(st) = state() else { return };
    let s = shared();
    let mut ops = session_ops();
    let count = ops.len();
    let offset = clock::wall_offset_ms();
    for slot in s.slots.iter() {
        let rows = slot.lock().subscription_rows(&params().config, offset);
        ops.extend(rows.into_iter().map(|r| Op::Sub {
            call_id: r.call_id,
            local_tag: r.local_tag,
            session_uri: r.session_uri,
            record: r.state,
        }));
    }
    ops.push(Op::SyncDone);
    for body in auth::seal(st.node, encode(&ops)) {
        if let Err(e) = node.send(&body) {
            kwarn!("enable_dmq: sync to a starting peer cut short: {e}");
            return;
        }
    }
    kinfo!("enable_dmq: sent {count} sessions to a starting peer");
}
