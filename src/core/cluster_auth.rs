//! Authenticated cluster messages (R96, docs/cluster.md "Security"). Kamailio's dmq module
//! believes any KDMQ request (it looks the sender up by its spoofable From URI), so every
//! message imconf sends is sealed with HMAC-SHA-256 under the cluster's shared secret, and a
//! message is applied only when its MAC verifies under a key this node accepts, its time is
//! within `MAX_SKEW_MS` of this node's clock and its (node, counter) was not seen before.
//!
//! A sealed body:
//!
//! ```text
//! imconf-cluster/2 <MAC, 64 hex digits>
//! <node id, hex> <sender's wall clock in ms, hex> <counter, hex>
//! <operations, as core::cluster encodes them>
//! ```
//!
//! The MAC covers `imconf-cluster/2\n` and every byte after the first line, so the sender,
//! time and counter cannot be changed without the key.
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const MAGIC: &[u8] = b"imconf-cluster/2";
const MAC_HEX: usize = 64;
/// Shortest secret accepted: anything shorter is a password, not a key.
pub const MIN_SECRET: usize = 16;
/// Longest secret kept (it lives in a fixed shm buffer).
pub const MAX_SECRET: usize = 256;
/// A message's time may differ from the receiver's clock by this much (both ways): a captured
/// message is refused once this has passed, whatever the replay table remembers.
pub const MAX_SKEW_MS: u64 = 30_000;
/// A sender's counters within this distance below its highest are checked one by one (the
/// node's processes send concurrently, so its messages may arrive out of order); older ones
/// are refused.
pub const REPLAY_WINDOW: u64 = 1024;
/// Most sending nodes (node ids: one per run of a node) remembered at once.
pub const MAX_SENDERS: usize = 256;

/// Why a cluster message was refused (counted and logged per reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not an `imconf-cluster/2` message, or no well-formed MAC or sender line.
    Unsigned,
    /// The MAC does not verify under any accepted key.
    BadMac,
    /// Authentic, but its time is outside `MAX_SKEW_MS` of this node's clock.
    Stale,
    /// Authentic, but this (node, counter) was already applied or is below the window.
    Replayed,
    /// Authentic and fresh, but too many senders are remembered to check it.
    TooManySenders,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Unsigned => {
                "not signed (no imconf-cluster/2 seal: a forgery, or an imconf without dmq_secret)"
            }
            Refusal::BadMac => "bad MAC (not the cluster's secret)",
            Refusal::Stale => "stale or future timestamp",
            Refusal::Replayed => "replayed",
            Refusal::TooManySenders => "too many senders to check for replay",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadSecret(pub String);

/// Checks one secret as configured (`dmq_secret`, a line of `dmq_secret_file`).
pub fn check_secret(s: &[u8]) -> Result<(), BadSecret> {
    if s.len() < MIN_SECRET {
        return Err(BadSecret(format!(
            "is {} bytes; at least {MIN_SECRET} are needed (e.g. `openssl rand -hex 32`)",
            s.len()
        )));
    }
    if s.len() > MAX_SECRET {
        return Err(BadSecret(format!(
            "is {} bytes; at most {MAX_SECRET} are kept",
            s.len()
        )));
    }
    Ok(())
}

/// A short one-way name of a key (8 hex digits), for logs and `imconf.cluster_rekey`: two
/// nodes hold the same key when the names agree, and the name does not reveal the key.
pub fn fingerprint(key: &[u8]) -> String {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    m.update(b"imconf key fingerprint");
    m.finalize().into_bytes()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The keys of one process: the one it signs with and every one it accepts (the signing key
/// first, then the one being rotated in or out). The HMAC key schedule is computed once here.
#[derive(Clone)]
pub struct Keys {
    accepted: Vec<HmacSha256>,
}

impl Keys {
    /// `sign`: the key this node signs with (and accepts); `also`: keys accepted as well.
    pub fn new(sign: &[u8], also: &[&[u8]]) -> Result<Keys, BadSecret> {
        let mut accepted = Vec::with_capacity(1 + also.len());
        for k in std::iter::once(sign).chain(also.iter().copied()) {
            check_secret(k)?;
            // HMAC takes a key of any length: this cannot fail
            accepted
                .push(HmacSha256::new_from_slice(k).map_err(|_| BadSecret("unusable key".into()))?);
        }
        Ok(Keys { accepted })
    }

    fn mac(key: &HmacSha256, signed: &[u8]) -> HmacSha256 {
        let mut m = key.clone();
        m.update(MAGIC);
        m.update(b"\n");
        m.update(signed);
        m
    }

    /// The body carrying `ops` (core::cluster's encoding) from `node`, sent at `time_ms` (wall
    /// clock) as its `counter`-th message.
    pub fn seal(&self, node: u64, time_ms: u64, counter: u64, ops: &[u8]) -> Vec<u8> {
        use std::io::Write;
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        // one buffer: room for the MAC line first, filled in once the rest is known
        let head = MAGIC.len() + 1 + MAC_HEX + 1;
        let mut out = Vec::with_capacity(head + 52 + ops.len());
        out.resize(head, b' ');
        // writing to a Vec cannot fail
        let _ = writeln!(out, "{node:x} {time_ms:x} {counter:x}");
        out.extend_from_slice(ops);
        let tag = Self::mac(&self.accepted[0], &out[head..])
            .finalize()
            .into_bytes();
        out[..MAGIC.len()].copy_from_slice(MAGIC);
        for (i, b) in tag.iter().enumerate() {
            out[MAGIC.len() + 1 + 2 * i] = DIGITS[(b >> 4) as usize];
            out[MAGIC.len() + 2 + 2 * i] = DIGITS[(b & 15) as usize];
        }
        out[head - 1] = b'\n';
        out
    }

    /// Checks the MAC of `body` (constant time) under every accepted key; the sender's line and
    /// the operations when one verifies. Freshness and replay are `Replay::check`'s.
    pub fn open<'a>(&self, body: &'a [u8]) -> Result<Sealed<'a>, Refusal> {
        let nl = body
            .iter()
            .position(|&c| c == b'\n')
            .ok_or(Refusal::Unsigned)?;
        let (first, signed) = (&body[..nl], &body[nl + 1..]);
        let hex = first
            .strip_prefix(MAGIC)
            .and_then(|r| r.strip_prefix(b" "))
            .filter(|h| h.len() == MAC_HEX)
            .ok_or(Refusal::Unsigned)?;
        let mut tag = [0u8; MAC_HEX / 2];
        for (t, pair) in tag.iter_mut().zip(hex.chunks(2)) {
            // lower-case only, as seal writes it: one body, one spelling
            let d = |c: u8| match c {
                b'0'..=b'9' => Ok(c - b'0'),
                b'a'..=b'f' => Ok(c - b'a' + 10),
                _ => Err(Refusal::Unsigned),
            };
            *t = d(pair[0])? * 16 + d(pair[1])?;
        }
        if !self
            .accepted
            .iter()
            .any(|k| Self::mac(k, signed).verify_slice(&tag).is_ok())
        {
            return Err(Refusal::BadMac);
        }
        // authentic from here: a malformed sender line is the sender's bug, still refused
        let nl = signed
            .iter()
            .position(|&c| c == b'\n')
            .ok_or(Refusal::Unsigned)?;
        let line = std::str::from_utf8(&signed[..nl]).map_err(|_| Refusal::Unsigned)?;
        let mut f = line.split(' ').map(|w| u64::from_str_radix(w, 16));
        let mut next = || f.next().and_then(Result::ok).ok_or(Refusal::Unsigned);
        Ok(Sealed {
            node: next()?,
            time_ms: next()?,
            counter: next()?,
            ops: &signed[nl + 1..],
        })
    }
}

/// An authentic message: who sent it, when, its counter and its operations (still to decode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed<'a> {
    pub node: u64,
    pub time_ms: u64,
    pub counter: u64,
    pub ops: &'a [u8],
}

/// What one sender's counters looked like: the highest applied and which of the
/// `REPLAY_WINDOW` below it were applied (bit i: `top - i`).
#[derive(Debug, Clone, Copy)]
struct Sender {
    node: u64,
    /// The latest message time applied from it: the entry is kept while a message of that
    /// time could still pass the skew check.
    latest_ms: u64,
    top: u64,
    seen: [u64; (REPLAY_WINDOW / 64) as usize],
}

/// The senders' counters seen recently: fixed size, so it lives in shm as is (one per node,
/// shared by its processes under a lock).
#[derive(Debug, Clone)]
pub struct Replay {
    senders: [Sender; MAX_SENDERS],
    len: usize,
}

impl Default for Replay {
    fn default() -> Self {
        Replay {
            senders: [Sender {
                node: 0,
                latest_ms: 0,
                top: 0,
                seen: [0; (REPLAY_WINDOW / 64) as usize],
            }; MAX_SENDERS],
            len: 0,
        }
    }
}

impl Replay {
    /// Accepts `m` (received at `now_ms`, this node's wall clock) when it is fresh and its
    /// counter was not seen, and records it; refuses it otherwise, changing nothing.
    pub fn check(&mut self, m: &Sealed<'_>, now_ms: u64) -> Result<(), Refusal> {
        if m.time_ms.abs_diff(now_ms) > MAX_SKEW_MS {
            return Err(Refusal::Stale);
        }
        self.forget_quiet(now_ms);
        let i = match self.senders[..self.len]
            .iter()
            .position(|s| s.node == m.node)
        {
            Some(i) => i,
            None if self.len < MAX_SENDERS => {
                self.senders[self.len] = Sender {
                    node: m.node,
                    latest_ms: m.time_ms,
                    top: m.counter,
                    seen: [0; (REPLAY_WINDOW / 64) as usize],
                };
                self.senders[self.len].seen[0] = 1;
                self.len += 1;
                return Ok(());
            }
            None => return Err(Refusal::TooManySenders),
        };
        let s = &mut self.senders[i];
        if m.counter > s.top {
            shift(&mut s.seen, m.counter - s.top);
            s.top = m.counter;
            s.seen[0] |= 1;
        } else {
            let back = s.top - m.counter;
            if back >= REPLAY_WINDOW {
                return Err(Refusal::Replayed);
            }
            let (word, bit) = ((back / 64) as usize, back % 64);
            if s.seen[word] & (1 << bit) != 0 {
                return Err(Refusal::Replayed);
            }
            s.seen[word] |= 1 << bit;
        }
        s.latest_ms = s.latest_ms.max(m.time_ms);
        Ok(())
    }

    /// Drops senders whose every message is past the skew check anyway.
    fn forget_quiet(&mut self, now_ms: u64) {
        let mut i = 0;
        while i < self.len {
            if self.senders[i].latest_ms + 2 * MAX_SKEW_MS < now_ms {
                self.senders[i] = self.senders[self.len - 1];
                self.len -= 1;
            } else {
                i += 1;
            }
        }
    }

    pub fn senders(&self) -> usize {
        self.len
    }
}

/// Moves the window of seen counters `by` places up (bit i becomes bit i + by).
fn shift(seen: &mut [u64], by: u64) {
    if by >= REPLAY_WINDOW {
        seen.fill(0);
        return;
    }
    let (words, bits) = ((by / 64) as usize, (by % 64) as u32);
    for i in (0..seen.len()).rev() {
        let lo = i.checked_sub(words).map_or(0, |j| seen[j]);
        let below = i
            .checked_sub(words + 1)
            .filter(|_| bits > 0)
            .map_or(0, |j| seen[j] >> (64 - bits));
        seen[i] = if bits == 0 { lo } else { (lo << bits) | below };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &[u8] = b"0123456789abcdef0123456789abcdef";
    const K2: &[u8] = b"fedcba9876543210fedcba9876543210";

    fn keys(sign: &[u8], also: &[&[u8]]) -> Keys {
        Keys::new(sign, also).unwrap()
    }

    #[test]
    fn a_sealed_message_opens_with_the_same_key_only() {
        let body = keys(K1, &[]).seal(0xab, 1000, 7, b"H\n");
        let m = keys(K1, &[]).open(&body).unwrap();
        assert_eq!(
            (m.node, m.time_ms, m.counter, m.ops),
            (0xab, 1000, 7, &b"H\n"[..])
        );
        assert_eq!(keys(K2, &[]).open(&body), Err(Refusal::BadMac));
        // rotation: a node accepting both keys opens either
        assert!(keys(K2, &[K1]).open(&body).is_ok());
    }

    #[test]
    fn every_byte_is_covered() {
        let body = keys(K1, &[]).seal(0xab, 1000, 7, b"P 1 61 62 63\n");
        for i in 0..body.len() {
            let mut forged = body.clone();
            forged[i] ^= 0x01;
            assert!(keys(K1, &[]).open(&forged).is_err(), "byte {i} not covered");
        }
        let mut longer = body.clone();
        longer.extend_from_slice(b"B\n");
        assert_eq!(keys(K1, &[]).open(&longer), Err(Refusal::BadMac));
    }

    #[test]
    fn unsigned_and_short_secrets_are_refused() {
        for bad in [
            &b""[..],
            b"imconf-cluster/1 1\nQ\n",
            b"imconf-cluster/2 00\n1 2 3\nQ\n",
            b"imconf-cluster/2 zz00000000000000000000000000000000000000000000000000000000000000\n",
        ] {
            assert_eq!(keys(K1, &[]).open(bad), Err(Refusal::Unsigned));
        }
        assert!(Keys::new(b"short", &[]).is_err());
        assert!(Keys::new(K1, &[b"short"]).is_err());
        assert!(Keys::new(&[7; MAX_SECRET + 1], &[]).is_err());
    }

    fn sealed(node: u64, time_ms: u64, counter: u64) -> Sealed<'static> {
        Sealed {
            node,
            time_ms,
            counter,
            ops: b"",
        }
    }

    #[test]
    fn replays_and_stale_messages_are_refused() {
        let mut r = Replay::default();
        let now = 1_000_000;
        assert_eq!(r.check(&sealed(1, now, 5), now), Ok(()));
        assert_eq!(r.check(&sealed(1, now, 5), now), Err(Refusal::Replayed));
        // out of order within the window: each once
        assert_eq!(r.check(&sealed(1, now, 9), now), Ok(()));
        assert_eq!(r.check(&sealed(1, now, 7), now), Ok(()));
        assert_eq!(r.check(&sealed(1, now, 7), now), Err(Refusal::Replayed));
        assert_eq!(r.check(&sealed(1, now, 6), now), Ok(()));
        // another sender's counters are its own
        assert_eq!(r.check(&sealed(2, now, 5), now), Ok(()));
        // far behind the window
        assert_eq!(r.check(&sealed(1, now, 9 + 5000), now), Ok(()));
        assert_eq!(r.check(&sealed(1, now, 10), now), Err(Refusal::Replayed));
        // outside the skew, both ways
        let old = now - MAX_SKEW_MS - 1;
        assert_eq!(r.check(&sealed(3, old, 1), now), Err(Refusal::Stale));
        let ahead = now + MAX_SKEW_MS + 1;
        assert_eq!(r.check(&sealed(3, ahead, 1), now), Err(Refusal::Stale));
    }

    #[test]
    fn a_quiet_sender_is_forgotten_only_when_its_messages_are_stale_anyway() {
        let mut r = Replay::default();
        let t = 1_000_000;
        r.check(&sealed(1, t, 1), t).unwrap();
        // its message, replayed as late as the skew allows, is still refused
        let late = t + MAX_SKEW_MS;
        assert_eq!(r.check(&sealed(1, t, 1), late), Err(Refusal::Replayed));
        // long after, the table forgets it, and the old message is stale
        let much_later = t + 3 * MAX_SKEW_MS;
        assert_eq!(r.check(&sealed(1, t, 1), much_later), Err(Refusal::Stale));
        r.check(&sealed(2, much_later, 1), much_later).unwrap();
        assert_eq!(r.senders(), 1);
    }

    #[test]
    fn the_table_is_bounded() {
        let mut r = Replay::default();
        let now = 1_000_000;
        for n in 0..MAX_SENDERS as u64 {
            r.check(&sealed(n, now, 1), now).unwrap();
        }
        assert_eq!(
            r.check(&sealed(9999, now, 1), now),
            Err(Refusal::TooManySenders)
        );
    }

    #[test]
    fn the_window_shifts_exactly() {
        // every counter of a shuffled range is accepted once and refused the second time
        let mut r = Replay::default();
        let now = 5_000_000;
        let mut order: Vec<u64> = (1..3000).collect();
        // a deterministic shuffle that stays within the window
        for c in order.chunks_mut(700) {
            c.reverse();
        }
        for &c in &order {
            assert_eq!(r.check(&sealed(1, now, c), now), Ok(()), "counter {c}");
        }
        for c in 2000..3000 {
            assert_eq!(r.check(&sealed(1, now, c), now), Err(Refusal::Replayed));
        }
    }
}
