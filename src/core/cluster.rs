//! What the nodes of a cluster tell each other (`enable_dmq`, docs/cluster.md): the wire form
//! of the messages and the stamps that order concurrent changes. The transport (Kamailio's
//! dmq module) and the effects live in the module; this file knows neither.
//!
//! A message's operations are UTF-8 text, one line each; core::cluster_auth seals them
//! (MAC, sender, time, counter: R96) before they leave the node:
//!
//! ```text
//! O <stamp> <session_uri> <kind> <group_uri>       session_open (fields hex, "-": none)
//! C <stamp> <session_uri>                          session_close
//! P <stamp> <arg 1> ... <arg 12>                   participant (the docs/interface.md arguments)
//! T <stamp> <session_uri> <subject> [<by>]          session_subject (R95)
//! K <stamp> <session_uri> <aoia>                    session_chairman (R95)
//! S <session_uri> <session record>                 one session's full state (sync)
//! Q                                                "send me everything" (a node starting)
//! D                                                end of a sync
//! U <call_id> <local_tag> <session_uri> <record>   one of the sender's subscriptions (its state)
//! X <call_id> <local_tag>                          that subscription ended
//! H                                                the sender is alive (every second)
//! B                                                the sender stops; its subscriptions are yours
//! ```
//!
//! Every byte string is hex, so no value can break the framing whatever it contains.

/// A body stays below what every transport of dmq carries in one datagram.
pub const MAX_BODY: usize = 60_000;
/// The operations of one body: the rest is the seal's (two lines of under 128 bytes).
const MAX_OPS: usize = MAX_BODY - 128;

/// One replicated operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `session_open` arguments, as the feeding node received them.
    Open {
        stamp: u64,
        args: Vec<Vec<u8>>,
    },
    Close {
        stamp: u64,
        session_uri: Vec<u8>,
    },
    /// `participant` arguments (up to 11), as the feeding node received them.
    Participant {
        stamp: u64,
        args: Vec<Vec<u8>>,
    },
    /// R95: `session_subject` arguments (session_uri, subject[, by]).
    Subject {
        stamp: u64,
        args: Vec<Vec<u8>>,
    },
    /// R95: `session_chairman` arguments (session_uri, aoia).
    Chairman {
        stamp: u64,
        args: Vec<Vec<u8>>,
    },
    /// A session record (`persist::encode_session`), for a node that asked for a sync.
    Session {
        uri: Vec<u8>,
        record: Vec<u8>,
    },
    SyncRequest,
    SyncDone,
    /// One of the sender's subscriptions (`persist::encode_subscription`), for a takeover.
    Sub {
        call_id: Vec<u8>,
        local_tag: Vec<u8>,
        session_uri: Vec<u8>,
        record: Vec<u8>,
    },
    SubGone {
        call_id: Vec<u8>,
        local_tag: Vec<u8>,
    },
    Heartbeat,
    Bye,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadMessage(pub &'static str);

fn hex(out: &mut String, b: &[u8]) {
    if b.is_empty() {
        out.push('-');
        return;
    }
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &c in b {
        out.push(DIGITS[(c >> 4) as usize] as char);
        out.push(DIGITS[(c & 15) as usize] as char);
    }
}

fn unhex(s: &str) -> Result<Vec<u8>, BadMessage> {
    if s == "-" {
        return Ok(Vec::new());
    }
    if !s.len().is_multiple_of(2) {
        return Err(BadMessage("odd hex field"));
    }
    s.as_bytes()
        .chunks(2)
        .map(|p| {
            let d = |c: u8| (c as char).to_digit(16).ok_or(BadMessage("bad hex digit"));
            Ok((d(p[0])? * 16 + d(p[1])?) as u8)
        })
        .collect()
}

fn words(out: &mut String, tag: &str, fields: &[&Vec<u8>]) {
    out.push_str(tag);
    for f in fields {
        out.push(' ');
        hex(out, f);
    }
}

fn encode_op(op: &Op, out: &mut String) {
    let fields = |out: &mut String, tag: &str, stamp: u64, args: &[Vec<u8>]| {
        out.push_str(&format!("{tag} {stamp:x}"));
        for a in args {
            out.push(' ');
            hex(out, a);
        }
    };
    match op {
        Op::Open { stamp, args } => fields(out, "O", *stamp, args),
        Op::Close { stamp, session_uri } => {
            fields(out, "C", *stamp, std::slice::from_ref(session_uri))
        }
        Op::Participant { stamp, args } => fields(out, "P", *stamp, args),
        Op::Subject { stamp, args } => fields(out, "T", *stamp, args),
        Op::Chairman { stamp, args } => fields(out, "K", *stamp, args),
        Op::Session { uri, record } => {
            out.push_str("S ");
            hex(out, uri);
            out.push(' ');
            hex(out, record);
        }
        Op::SyncRequest => out.push('Q'),
        Op::SyncDone => out.push('D'),
        Op::Sub {
            call_id,
            local_tag,
            session_uri,
            record,
        } => words(out, "U", &[call_id, local_tag, session_uri, record]),
        Op::SubGone { call_id, local_tag } => words(out, "X", &[call_id, local_tag]),
        Op::Heartbeat => out.push('H'),
        Op::Bye => out.push('B'),
    }
    out.push('\n');
}

/// The operations `ops` in pieces of at most `MAX_OPS` bytes (one sealed body each), unless a
/// single operation is larger (it then travels alone).
pub fn encode(ops: &[Op]) -> Vec<Vec<u8>> {
    let mut bodies = Vec::new();
    let mut cur = String::new();
    for op in ops {
        let mut line = String::new();
        encode_op(op, &mut line);
        if !cur.is_empty() && cur.len() + line.len() > MAX_OPS {
            bodies.push(std::mem::take(&mut cur).into_bytes());
        }
        cur.push_str(&line);
    }
    if !cur.is_empty() {
        bodies.push(cur.into_bytes());
    }
    bodies
}

fn stamp_field(f: Option<&str>) -> Result<u64, BadMessage> {
    u64::from_str_radix(f.ok_or(BadMessage("missing stamp"))?, 16)
        .map_err(|_| BadMessage("bad stamp"))
}

fn decode_op(line: &str) -> Result<Op, BadMessage> {
    let mut f = line.split(' ');
    let tag = f.next().unwrap_or_default();
    let args = |f: std::str::Split<'_, char>, min: usize, max: usize| {
        let v = f.map(unhex).collect::<Result<Vec<_>, _>>()?;
        if v.len() < min || v.len() > max {
            return Err(BadMessage("wrong number of fields"));
        }
        Ok(v)
    };
    Ok(match tag {
        "O" => {
            let stamp = stamp_field(f.next())?;
            Op::Open {
                stamp,
                args: args(f, 2, 3)?,
            }
        }
        "C" => {
            let stamp = stamp_field(f.next())?;
            Op::Close {
                stamp,
                session_uri: args(f, 1, 1)?.remove(0),
            }
        }
        // a stamped feed call: the stamp, then its arguments
        "P" | "T" | "K" => {
            let stamp = stamp_field(f.next())?;
            match tag {
                "P" => Op::Participant {
                    stamp,
                    args: args(f, 3, 12)?,
                },
                "T" => Op::Subject {
                    stamp,
                    args: args(f, 2, 3)?,
                },
                _ => Op::Chairman {
                    stamp,
                    args: args(f, 2, 2)?,
                },
            }
        }
        "S" => {
            let mut v = args(f, 2, 2)?;
            let record = v.pop().unwrap_or_default();
            Op::Session {
                uri: v.pop().unwrap_or_default(),
                record,
            }
        }
        "Q" => Op::SyncRequest,
        "D" => Op::SyncDone,
        "U" => {
            let mut v = args(f, 4, 4)?.into_iter();
            let mut next = || v.next().unwrap_or_default();
            Op::Sub {
                call_id: next(),
                local_tag: next(),
                session_uri: next(),
                record: next(),
            }
        }
        "X" => {
            let mut v = args(f, 2, 2)?.into_iter();
            let mut next = || v.next().unwrap_or_default();
            Op::SubGone {
                call_id: next(),
                local_tag: next(),
            }
        }
        "H" => Op::Heartbeat,
        "B" => Op::Bye,
        _ => return Err(BadMessage("unknown operation")),
    })
}

/// Reads the operations of one (authentic) body. Any malformed line refuses the whole message
/// (nothing is half applied).
pub fn decode(ops: &[u8]) -> Result<Vec<Op>, BadMessage> {
    let text = std::str::from_utf8(ops).map_err(|_| BadMessage("not UTF-8"))?;
    text.lines()
        .filter(|l| !l.is_empty())
        .map(decode_op)
        .collect()
}

/// Bits of a stamp that name its node: two nodes never make the same stamp.
const NODE_BITS: u32 = 16;
/// How far a peer's stamp may run ahead of this node's wall clock. A node's stamps follow its
/// wall clock (clocks agree within the seal's 30 s, core::cluster_auth) and run ahead of it only
/// while it makes more than one change per ms; a stamp further ahead is refused, so that one
/// message cannot throw every node's clock to the end of time (found by the cluster corpus:
/// a stamp of 2^64-1 made the next local stamp wrap to 0 and the next change was dropped).
pub const MAX_STAMP_LEAD_MS: u64 = 600_000;

impl Op {
    /// The stamp of a replicated change (None for the other operations).
    pub fn stamp(&self) -> Option<u64> {
        match self {
            Op::Open { stamp, .. }
            | Op::Close { stamp, .. }
            | Op::Participant { stamp, .. }
            | Op::Subject { stamp, .. }
            | Op::Chairman { stamp, .. } => Some(*stamp),
            _ => None,
        }
    }
}

/// Whether a peer's stamp may be believed at `wall_ms` (this node's wall clock).
pub fn plausible_stamp(stamp: u64, wall_ms: u64) -> bool {
    stamp >> NODE_BITS <= wall_ms.saturating_add(MAX_STAMP_LEAD_MS)
}

/// The next stamp of a hybrid logical clock: the wall clock in ms in the high bits, this node
/// in the low ones, and always above `prev` (this node's last stamp or the highest it saw), so
/// a change made after hearing of another orders after it whatever the clocks say.
/// Last writer wins (docs/cluster.md): a change applies only over an older stamp.
/// The wall-clock ms a stamp was made at (R95: when a change happened, the same on every node).
pub fn stamp_time_ms(stamp: u64) -> u64 {
    stamp >> NODE_BITS
}

pub fn next_stamp(prev: u64, wall_ms: u64, node: u64) -> u64 {
    // saturates rather than wrapping to 0 (plausible_stamp keeps a peer from getting us there)
    let time = wall_ms
        .max((prev >> NODE_BITS) + 1)
        .min(u64::MAX >> NODE_BITS);
    (time << NODE_BITS) | (node & ((1 << NODE_BITS) - 1))
}

/// The node, among `alive` (which includes the deciding node itself), that takes over a
/// subscription of a node that left: the highest rendezvous hash of (node, Call-ID). Every
/// node that agrees on who is alive picks the same one, and a node leaving moves only its
/// own share of subscriptions (the others keep their successor).
pub fn successor(call_id: &[u8], alive: &[u64]) -> Option<u64> {
    alive
        .iter()
        .copied()
        .max_by_key(|&node| rendezvous(node, call_id))
}

fn rendezvous(node: u64, call_id: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    crate::core::key::FixedState::with_seed(node).hash_one(call_id)
}

/// Issue 17 (`dmq_replicas`): the nodes, among `nodes`, that keep a replica of `owner`'s
/// subscription `call_id`: its first `k` successors in rendezvous order (every one but the
/// owner when `k` is 0). The first of them is the `successor` should the owner leave, and the
/// next ones should they leave together.
pub fn replica_holders(call_id: &[u8], owner: u64, nodes: &[u64], k: usize) -> Vec<u64> {
    let mut ranked: Vec<(u64, u64)> = nodes
        .iter()
        .filter(|&&n| n != owner)
        .map(|&n| (rendezvous(n, call_id), n))
        .collect();
    ranked.sort_unstable_by(|a, b| b.cmp(a));
    ranked.dedup_by_key(|x| x.1);
    let take = if k == 0 { ranked.len() } else { k };
    ranked.into_iter().take(take).map(|(_, n)| n).collect()
}

/// Most peers a node keeps track of.
pub const MAX_PEERS: usize = 64;

/// Longest dmq node URI kept for a peer (a longer one is not kept: replication to that peer
/// falls back to a broadcast).
pub const PEER_URI_MAX: usize = 96;

#[derive(Debug, Clone, Copy)]
struct PeerEntry {
    node: u64,
    heard_at: u64,
    /// The URI dmq knows it by (`uri_len` 0: unknown): where replicas to it go (issue 17).
    uri: [u8; PEER_URI_MAX],
    uri_len: u8,
}

const NO_PEER: PeerEntry = PeerEntry {
    node: 0,
    heard_at: 0,
    uri: [0; PEER_URI_MAX],
    uri_len: 0,
};

/// A member of the cluster, by the URI dmq knows it by without parameters (the same for every
/// run of that node: a restarted node is the same member).
#[derive(Debug, Clone, Copy)]
struct Member {
    uri: [u8; PEER_URI_MAX],
    uri_len: u8,
}

impl Member {
    fn uri(&self) -> &[u8] {
        &self.uri[..usize::from(self.uri_len)]
    }
}

const NO_MEMBER: Member = Member {
    uri: [0; PEER_URI_MAX],
    uri_len: 0,
};

/// A dmq URI as a member's name: without its parameters (dmq's list may carry `;status=`).
pub fn member_name(uri: &[u8]) -> &[u8] {
    let end = uri.iter().position(|&b| b == b';').unwrap_or(uri.len());
    &uri[..end]
}

/// The peers this node has heard from, and when (ms), and the cluster's members (every node
/// heard from whose URI is known, until it says goodbye): fixed size, so it lives in shm as is.
#[derive(Debug, Clone)]
pub struct Peers {
    nodes: [PeerEntry; MAX_PEERS],
    len: usize,
    members: [Member; MAX_PEERS],
    members_len: usize,
}

impl Default for Peers {
    fn default() -> Self {
        Peers {
            nodes: [NO_PEER; MAX_PEERS],
            len: 0,
            members: [NO_MEMBER; MAX_PEERS],
            members_len: 0,
        }
    }
}

impl Peers {
    /// Notes that `node` spoke at `now`; false when it is new (or the table is full).
    pub fn heard(&mut self, node: u64, now: u64) -> bool {
        if let Some(e) = self.nodes[..self.len].iter_mut().find(|e| e.node == node) {
            e.heard_at = now;
            return true;
        }
        if self.len < MAX_PEERS {
            self.nodes[self.len] = PeerEntry {
                node,
                heard_at: now,
                ..NO_PEER
            };
            self.len += 1;
        }
        false
    }

    /// Records the URI dmq knows `node` by (ignored when unknown or too long).
    pub fn set_uri(&mut self, node: u64, uri: &[u8]) {
        let Some(e) = self.nodes[..self.len].iter_mut().find(|e| e.node == node) else {
            return;
        };
        if uri.len() > PEER_URI_MAX || e.uri[..usize::from(e.uri_len)] == *uri {
            return;
        }
        e.uri[..uri.len()].copy_from_slice(uri);
        e.uri_len = uri.len() as u8;
        let name = member_name(uri);
        if self.members_len < MAX_PEERS
            && !self.members[..self.members_len]
                .iter()
                .any(|m| m.uri() == name)
        {
            let m = &mut self.members[self.members_len];
            m.uri[..name.len()].copy_from_slice(name);
            m.uri_len = name.len() as u8;
            self.members_len += 1;
        }
    }

    /// The URI dmq knows `node` by, if recorded.
    pub fn uri_of(&self, node: u64) -> Option<&[u8]> {
        let e = self.nodes[..self.len].iter().find(|e| e.node == node)?;
        (e.uri_len > 0).then(|| &e.uri[..usize::from(e.uri_len)])
    }

    /// Removes `node` (it said goodbye: it leaves the members too); true when it was known.
    pub fn forget(&mut self, node: u64) -> bool {
        match self.nodes[..self.len].iter().position(|e| e.node == node) {
            Some(i) => {
                let gone = self.nodes[i];
                self.nodes[i] = self.nodes[self.len - 1];
                self.len -= 1;
                let name = member_name(&gone.uri[..usize::from(gone.uri_len)]);
                let still_here = self.nodes[..self.len]
                    .iter()
                    .any(|e| member_name(&e.uri[..usize::from(e.uri_len)]) == name);
                if !name.is_empty() && !still_here {
                    if let Some(m) = self.members[..self.members_len]
                        .iter()
                        .position(|m| m.uri() == name)
                    {
                        self.members[m] = self.members[self.members_len - 1];
                        self.members_len -= 1;
                    }
                }
                true
            }
            None => false,
        }
    }

    /// Whether this node (`self_uri`, as its peers know it; empty: unknown) sees a majority of
    /// the cluster's members, itself included, among the peers heard within `recent_ms`: a
    /// node that does not must not take a peer's subscriptions over, nor notify (docs/cluster.md
    /// "Partitions"). Exactly half is a majority for the half holding the smallest member name,
    /// so that two nodes, or an even split, leave one side serving.
    pub fn quorum(&self, now: u64, recent_ms: u64, self_uri: &[u8]) -> bool {
        let me = member_name(self_uri);
        let members = || {
            self.members[..self.members_len]
                .iter()
                .map(Member::uri)
                .filter(|&m| m != me)
        };
        let heard = |name: &[u8]| {
            self.nodes[..self.len].iter().any(|e| {
                e.heard_at + recent_ms >= now
                    && member_name(&e.uri[..usize::from(e.uri_len)]) == name
            })
        };
        let known = members().count() + 1;
        let seen = members().filter(|&m| heard(m)).count() + 1;
        if 2 * seen != known {
            return 2 * seen > known;
        }
        let smallest = members().chain((!me.is_empty()).then_some(me)).min();
        !me.is_empty() && smallest.is_some_and(|s| s == me || heard(s))
    }

    /// Removes and returns the peers not heard from since `now - timeout`.
    pub fn expire(&mut self, now: u64, timeout: u64) -> Vec<u64> {
        let mut gone = Vec::new();
        let mut i = 0;
        while i < self.len {
            if self.nodes[i].heard_at + timeout < now {
                gone.push(self.nodes[i].node);
                self.nodes[i] = self.nodes[self.len - 1];
                self.len -= 1;
            } else {
                i += 1;
            }
        }
        gone
    }

    pub fn alive(&self) -> Vec<u64> {
        self.nodes[..self.len].iter().map(|e| e.node).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_every_byte() {
        let ops = vec![
            Op::Open {
                stamp: 7,
                args: vec![b"sip:s@x".to_vec(), b"chat".to_vec(), b"sip:g@x".to_vec()],
            },
            Op::Close {
                stamp: 8,
                session_uri: b"sip:s@x".to_vec(),
            },
            Op::Participant {
                stamp: u64::MAX,
                args: vec![
                    b"sip:s@x".to_vec(),
                    b"sip:a@x".to_vec(),
                    b"connected".to_vec(),
                    Vec::new(),
                    b"\x00\n \xff".to_vec(),
                ],
            },
            Op::Subject {
                stamp: 9,
                args: vec![
                    b"sip:s@x".to_vec(),
                    "Hiking \u{e9}".into(),
                    b"sip:a@x".to_vec(),
                ],
            },
            Op::Chairman {
                stamp: 10,
                args: vec![b"sip:s@x".to_vec(), b"sip:a@x".to_vec()],
            },
            Op::Session {
                uri: b"sip:s@x".to_vec(),
                record: vec![0, 1, 2, 255],
            },
            Op::SyncRequest,
            Op::SyncDone,
            Op::Sub {
                call_id: b"c@x".to_vec(),
                local_tag: b"i3-ab".to_vec(),
                session_uri: b"sip:s@x".to_vec(),
                record: vec![9; 40],
            },
            Op::SubGone {
                call_id: b"c@x".to_vec(),
                local_tag: b"i3-ab".to_vec(),
            },
            Op::Heartbeat,
            Op::Bye,
        ];
        let bodies = encode(&ops);
        assert_eq!(bodies.len(), 1);
        assert_eq!(decode(&bodies[0]).unwrap(), ops);
    }

    #[test]
    fn large_syncs_are_split_below_the_datagram_limit() {
        let ops: Vec<Op> = (0..100)
            .map(|i| Op::Session {
                uri: format!("sip:s{i}@x").into_bytes(),
                record: vec![i as u8; 2000],
            })
            .collect();
        let bodies = encode(&ops);
        assert!(bodies.len() > 1);
        assert!(bodies.iter().all(|b| b.len() <= MAX_OPS));
        let back: Vec<Op> = bodies.iter().flat_map(|b| decode(b).unwrap()).collect();
        assert_eq!(back, ops);
    }

    #[test]
    fn malformed_messages_are_refused_whole() {
        for bad in [
            &b"hello 1\nQ\n"[..],
            b"X\n",
            b"O 1 abc\n",
            b"P 1 61\n",
            b"C zz 61\n",
            b"Q\nS 61 6g\n",
            b"S 61\n",
            b"\xff\n",
        ] {
            assert!(decode(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn stamps_order_by_time_then_stay_above_what_was_seen() {
        let a = next_stamp(0, 1000, 1);
        let b = next_stamp(0, 1000, 2);
        assert_ne!(a, b, "two nodes never make the same stamp");
        // a clock behind what this node saw still moves forward
        let later = next_stamp(b, 500, 1);
        assert!(later > b && later > a);
        assert!(next_stamp(later, 2000, 3) > later);
    }

    #[test]
    fn a_stamp_from_the_end_of_time_is_refused_and_cannot_wrap() {
        let now = 1_800_000_000_000;
        assert!(plausible_stamp(next_stamp(0, now + 1000, 7), now));
        assert!(!plausible_stamp(u64::MAX, now));
        assert!(!plausible_stamp(
            (now + MAX_STAMP_LEAD_MS + 1) << NODE_BITS,
            now
        ));
        // even so, the clock never wraps below what it saw
        assert!(next_stamp(u64::MAX, now, 7) >= u64::MAX - 0xffff);
    }

    #[test]
    fn one_successor_per_subscription_and_only_the_leavers_share_moves() {
        let nodes = [11, 22, 33, 44];
        let mut moved = 0;
        for i in 0..1000 {
            let cid = format!("call-{i}");
            let before = successor(cid.as_bytes(), &nodes).unwrap();
            let after = successor(cid.as_bytes(), &[11, 22, 44]).unwrap();
            if before != 33 {
                assert_eq!(before, after, "a subscription not on the leaver moved");
            } else {
                moved += 1;
            }
        }
        assert!((150..350).contains(&moved), "uneven share: {moved}/1000");
        assert_eq!(successor(b"x", &[]), None);
    }

    #[test]
    fn peers_are_heard_forgotten_and_expire() {
        let mut p = Peers::default();
        assert!(!p.heard(1, 100));
        assert!(p.heard(1, 200));
        assert!(!p.heard(2, 150));
        assert_eq!(p.expire(1200, 1000), vec![2]);
        assert_eq!(p.alive(), vec![1]);
        assert!(p.forget(1));
        assert!(!p.forget(1));
        assert!(p.alive().is_empty());
        for n in 0..(MAX_PEERS as u64 + 5) {
            p.heard(n + 10, 0);
        }
        assert_eq!(p.alive().len(), MAX_PEERS);
    }

    /// Peers `ids` (URI `sip:10.0.0.<id>:5060;status=active`, as dmq lists them) heard at `at`.
    fn cluster_of(ids: &[u64], at: u64) -> Peers {
        let mut p = Peers::default();
        for &id in ids {
            p.heard(id, at);
            p.set_uri(id, format!("sip:10.0.0.{id}:5060;status=active").as_bytes());
        }
        p
    }

    const ME_3: &[u8] = b"sip:10.0.0.3:5060";

    #[test]
    fn a_majority_of_the_members_is_needed_to_serve() {
        // five members: this node (3) and four peers
        let mut p = cluster_of(&[1, 2, 4, 5], 0);
        assert!(p.quorum(1000, 2000, ME_3));
        // 4 and 5 fall silent (a 3|2 split): 3 of 5 still serve
        for id in [1, 2] {
            p.heard(id, 5000);
        }
        assert!(p.quorum(5000, 2000, ME_3));
        // on the other side of that split, 4 sees 2 of 5
        let mut q = cluster_of(&[1, 2, 3, 5], 0);
        q.heard(5, 5000);
        assert!(!q.quorum(5000, 2000, b"sip:10.0.0.4:5060"));
        // expired peers stay members: silence is not a departure
        assert_eq!(p.expire(9000, 3500).len(), 4);
        assert!(!p.quorum(9000, 2000, ME_3));
        // a goodbye is: the members shrink
        let mut r = cluster_of(&[1, 2, 4, 5], 0);
        for id in [1, 2] {
            assert!(r.forget(id));
        }
        r.heard(4, 5000);
        assert!(r.quorum(5000, 2000, ME_3), "2 of 3 members");
    }

    #[test]
    fn half_the_members_serve_when_they_hold_the_smallest_name() {
        let p = cluster_of(&[5], 0);
        assert!(p.quorum(0, 2000, ME_3), "both heard");
        assert!(
            p.quorum(9000, 2000, ME_3),
            "3 alone: the smaller name serves"
        );
        let q = cluster_of(&[3], 0);
        assert!(!q.quorum(9000, 2000, b"sip:10.0.0.5:5060"), "5 alone stops");
        assert!(
            !q.quorum(9000, 2000, b""),
            "without its own name, no tie is won"
        );
        // 2|2: the half with 1 serves
        let mut r = cluster_of(&[1, 2, 4], 0);
        r.heard(1, 9000);
        assert!(r.quorum(9000, 2000, ME_3));
        let mut t = cluster_of(&[1, 2, 3], 0);
        t.heard(3, 9000);
        assert!(!t.quorum(9000, 2000, b"sip:10.0.0.4:5060"));
    }

    #[test]
    fn a_restarted_node_is_the_same_member() {
        let mut p = cluster_of(&[1, 2], 0);
        // node 2 crashed and came back as a new run, same URI
        p.heard(22, 9000);
        p.set_uri(22, b"sip:10.0.0.2:5060");
        assert_eq!(p.expire(9000, 3500), vec![1, 2]);
        assert!(p.quorum(9000, 2000, ME_3), "2 of 3 members (1 is silent)");
    }
}
