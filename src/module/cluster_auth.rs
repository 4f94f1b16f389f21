//! The cluster's shared secret on this node (R96, docs/cluster.md "Security"): where it comes
//! from (`dmq_secret` or `dmq_secret_file`), rotation at run time (`imconf.cluster_rekey`),
//! sealing what this node sends and admitting what it receives (MAC, freshness, replay), and
//! the counters and rate-limited log of refused messages.
//!
//! The secrets live in shm (one copy per node, changed by the RPC process); each process keeps
//! its own `Keys` (HMAC key schedule computed once) and rebuilds them when the shm generation
//! moves, so sealing and checking take no lock.
use crate::core::cluster_auth::{check_secret, Keys, Refusal, Sealed, MAX_SECRET};
use crate::kam::clock;
use crate::kam::lock::{init_in_place, ShmMutex};
use crate::kam::shm::{leak_in_shm, Published};
use crate::kwarn;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// The configured secrets, as bytes in fixed buffers (shm).
struct Secrets {
    sign: [u8; MAX_SECRET],
    sign_len: usize,
    /// A second key accepted (not signed with): the one being rotated in or out.
    also: [u8; MAX_SECRET],
    also_len: usize,
}

impl Secrets {
    fn keys(&self) -> Option<Keys> {
        let sign = &self.sign[..self.sign_len];
        let also = &self.also[..self.also_len];
        let also: &[&[u8]] = if also.is_empty() { &[] } else { &[also] };
        Keys::new(sign, also).ok()
    }
}

/// Counters of received cluster messages, in the order of the `cluster_*` names of
/// `imconf.stats` (rpc::STAT_NAMES): accepted, refused unsigned, bad MAC, stale, replay, malformed.
pub const COUNTERS: usize = 6;
pub const ACCEPTED: usize = 0;
pub const MALFORMED: usize = 5;

struct AuthState {
    /// Moves each time the secrets change: processes then rebuild their `Keys`.
    generation: AtomicU64,
    secrets: ShmMutex<Secrets>,
    /// The message counter of this node (all its processes): with the node id, never repeats.
    sent: AtomicU64,
    counters: [AtomicU64; COUNTERS],
    /// `dmq_secret_file`, if the secrets come from a file (for `imconf.cluster_rekey`).
    file: Option<String>,
}

static STATE: Published<AuthState> = Published::new();

fn state() -> Option<&'static AuthState> {
    STATE.get()
}

/// The secrets of a `dmq_secret_file`: the first line signs, a second is accepted too; blank
/// lines and `#` comments are skipped.
fn read_file(path: &str) -> Result<(Vec<u8>, Vec<u8>), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("dmq_secret_file {path}: cannot read it ({e})"))?;
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    match lines.as_slice() {
        [sign] => Ok((sign.as_bytes().to_vec(), Vec::new())),
        [sign, also] => Ok((sign.as_bytes().to_vec(), also.as_bytes().to_vec())),
        [] => Err(format!("dmq_secret_file {path}: holds no secret")),
        _ => Err(format!(
            "dmq_secret_file {path}: holds {} secrets; at most 2 (the one signing, one more accepted)",
            lines.len()
        )),
    }
}

fn secrets(sign: &[u8], also: &[u8], origin: &str) -> Result<Secrets, String> {
    check_secret(sign).map_err(|e| format!("{origin}: the signing secret {}", e.0))?;
    if !also.is_empty() {
        check_secret(also).map_err(|e| format!("{origin}: the second secret {}", e.0))?;
    }
    let mut s = Secrets {
        sign: [0; MAX_SECRET],
        sign_len: sign.len(),
        also: [0; MAX_SECRET],
        also_len: also.len(),
    };
    s.sign[..sign.len()].copy_from_slice(sign);
    s.also[..also.len()].copy_from_slice(also);
    Ok(s)
}

/// Short, one-way names of the keys (for logs and the RPC: nodes agree when these agree).
fn fingerprints(s: &Secrets) -> String {
    let fp = |k: &[u8]| crate::core::cluster_auth::fingerprint(k);
    match s.also_len {
        0 => format!("signing key {}", fp(&s.sign[..s.sign_len])),
        n => format!(
            "signing key {}, also accepting {}",
            fp(&s.sign[..s.sign_len]),
            fp(&s.also[..n])
        ),
    }
}

/// mod_init with `enable_dmq`: the secret is required (R96); a node without one refuses to start.
pub fn init(secret: Option<&str>, file: Option<&str>) -> Result<String, String> {
    let s = match (secret, file) {
        (Some(_), Some(_)) => {
            return Err("modparam \"dmq_secret\" and \"dmq_secret_file\": set one, not both".into())
        }
        (Some(k), None) => secrets(k.as_bytes(), b"", "modparam \"dmq_secret\"")?,
        (None, Some(path)) => {
            let (sign, also) = read_file(path)?;
            secrets(&sign, &also, &format!("dmq_secret_file {path}"))?
        }
        (None, None) => {
            return Err("modparam \"enable_dmq\": cluster messages must be authenticated (R96): set \
                        dmq_secret or dmq_secret_file, the same on every node (docs/cluster.md, Security)"
                .into())
        }
    };
    let described = fingerprints(&s);
    let st = leak_in_shm(AuthState {
        generation: AtomicU64::new(1),
        secrets: ShmMutex::new(s),
        sent: AtomicU64::new(0),
        counters: Default::default(),
        file: file.map(str::to_string),
    })
    .ok_or("enable_dmq: no shared memory for the cluster keys")?;
    if !init_in_place(&st.secrets) {
        return Err("enable_dmq: cannot initialise the cluster key locks".into());
    }
    STATE.publish(st);
    Ok(described)
}

/// `imconf.cluster_rekey`: reads `dmq_secret_file` again; the old keys stay on any error.
pub fn rekey() -> Result<String, String> {
    let st = state().ok_or("enable_dmq is off: there are no cluster keys")?;
    let path = st.file.as_deref().ok_or(
        "dmq_secret_file is not set: a key given by dmq_secret changes only with a restart",
    )?;
    let (sign, also) = read_file(path)?;
    let s = secrets(&sign, &also, &format!("dmq_secret_file {path}"))?;
    let described = fingerprints(&s);
    *st.secrets.lock() = s;
    st.generation.fetch_add(1, Ordering::AcqRel);
    Ok(described)
}

thread_local! {
    /// This process's keys and the generation they were built from.
    static KEYS: RefCell<Option<(u64, Keys)>> = const { RefCell::new(None) };
}

fn with_keys<R>(st: &AuthState, f: impl FnOnce(&Keys) -> R) -> Option<R> {
    let gen = st.generation.load(Ordering::Acquire);
    KEYS.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.as_ref().is_none_or(|(g, _)| *g != gen) {
            *cached = st.secrets.lock().keys().map(|k| (gen, k));
        }
        cached.as_ref().map(|(_, k)| f(k))
    })
}

/// The sealed bodies of `pieces` (core::cluster::encode's), each with its own counter.
pub fn seal(node: u64, pieces: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let Some(st) = state() else { return Vec::new() };
    let now = clock::wall_ms();
    with_keys(st, |k| {
        pieces
            .iter()
            .map(|p| k.seal(node, now, st.sent.fetch_add(1, Ordering::Relaxed), p))
            .collect()
    })
    .unwrap_or_default()
}

/// An admitted message: its sender and its operations (still to decode).
pub struct Admitted<'a> {
    pub node: u64,
    pub ops: &'a [u8],
}

/// Checks a received body: its seal here, then `fresh` (the replay table, kept by the caller
/// under the lock it takes anyway). On refusal, the response code: nothing was changed, the
/// refusal is counted and logged at most once per source per `LOG_INTERVAL_MS`.
pub fn admit<'a>(
    body: &'a [u8],
    source: &Source<'_>,
    fresh: impl FnOnce(&Sealed<'a>) -> Result<(), Refusal>,
) -> Result<Admitted<'a>, u16> {
    let Some(st) = state() else { return Err(500) };
    let opened = with_keys(st, |k| k.open(body)).unwrap_or(Err(Refusal::BadMac));
    match opened.and_then(|m| fresh(&m).map(|()| m)) {
        Ok(m) => {
            // counted as accepted by the caller, once its operations are read
            Ok(Admitted {
                node: m.node,
                ops: m.ops,
            })
        }
        Err(r) => {
            count(match r {
                Refusal::Unsigned => 1,
                Refusal::BadMac => 2,
                Refusal::Stale => 3,
                Refusal::Replayed | Refusal::TooManySenders => 4,
            });
            log_refusal(source, r.as_str());
            Err(403)
        }
    }
}

/// Counts one more message under counter `i`.
pub fn count(i: usize) {
    if let Some(st) = state() {
        st.counters[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// The counters' values (zeros without a cluster).
pub fn counters() -> [i64; COUNTERS] {
    let mut out = [0; COUNTERS];
    if let Some(st) = state() {
        for (o, c) in out.iter_mut().zip(st.counters.iter()) {
            *o = c.load(Ordering::Relaxed) as i64;
        }
    }
    out
}

/// At most one log line per source address (or other key) per interval, and at most
/// `LOG_LINES` lines per interval in all: forged messages, from one address or from many spoofed
/// ones, cannot flood the log (every one is still counted), nor can a peer's odd operations.
const LOG_INTERVAL_MS: u64 = 10_000;
const LOG_LINES: u64 = 20;
/// Sources remembered by one process before the table starts afresh.
const LOG_SOURCES: usize = 1024;

#[derive(Default)]
struct RefusalLog {
    /// Per key: when a line was last logged, and how many were left out since.
    sources: HashMap<Vec<u8>, (u64, u64)>,
    /// The current interval: when it began and how many lines it has had.
    window: (u64, u64),
}

thread_local! {
    static LOGGED: RefCell<RefusalLog> = RefCell::new(RefusalLog::default());
}

/// Where a received message came from: the address as raw bytes (4 or 16, as Kamailio keeps
/// it) and the port. Formatted only when a refusal is logged.
pub struct Source<'a> {
    pub ip: &'a [u8],
    pub port: u16,
}

impl std::fmt::Display for Source<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.ip.len() {
            4 => {
                let a: [u8; 4] = self.ip.try_into().map_err(|_| std::fmt::Error)?;
                write!(f, "{}:{}", std::net::Ipv4Addr::from(a), self.port)
            }
            16 => {
                let a: [u8; 16] = self.ip.try_into().map_err(|_| std::fmt::Error)?;
                write!(f, "[{}]:{}", std::net::Ipv6Addr::from(a), self.port)
            }
            _ => write!(f, "an unknown address:{}", self.port),
        }
    }
}

/// Logs a refused message unless `source`'s address (the port changes with every datagram an
/// attacker sends) was logged within `LOG_INTERVAL_MS` or the interval's lines are spent.
pub fn log_refusal(source: &Source<'_>, why: &str) {
    // its own key space: the raw address bytes could spell another key ("sync")
    log_limited(
        &[b"ip ", source.ip].concat(),
        &format!("enable_dmq: cluster message from {source} refused: {why}"),
    );
}

/// Logs `line` (a warning) unless one for `key` was logged within `LOG_INTERVAL_MS` or the
/// interval's lines are spent; the next line for `key` says how many were left out.
pub fn log_limited(key: &[u8], line: &str) {
    let now = clock::now_ms();
    let quiet = LOGGED.with(|cell| {
        let log = &mut *cell.borrow_mut();
        if now >= log.window.0 + LOG_INTERVAL_MS {
            log.window = (now, 0);
        }
        if log.sources.len() >= LOG_SOURCES && !log.sources.contains_key(key) {
            log.sources.clear();
        }
        let e = log.sources.entry(key.to_vec()).or_insert((0, 0));
        if (e.0 != 0 && now < e.0 + LOG_INTERVAL_MS) || log.window.1 >= LOG_LINES {
            e.1 += 1;
            return None;
        }
        log.window.1 += 1;
        let quiet = e.1;
        *e = (now, 0);
        Some(quiet)
    });
    match quiet {
        Some(0) => kwarn!("{line}"),
        Some(n) => kwarn!("{line} ({n} more like it left out of the log since the last)"),
        None => {}
    }
}
