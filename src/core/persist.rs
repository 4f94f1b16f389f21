//! Sessions and subscriptions as bytes and back, for persistence (issue 7: `db_url`).
//!
//! One record per session (with its participants) and one per subscription (its dialog, CSeq,
//! version, expiry and what its subscriber has been told), each a compact versioned encoding the
//! module stores in a BLOB column beside a few readable key columns. Decoding never panics: bad
//! bytes are `Malformed`, a full allocator `OutOfMemory`. What only matters while the process
//! lives (NOTIFY in flight, holds, queue places, ids) is not kept: a restored subscription is
//! idle and gets a new id.
use super::bytes::{try_bytes, Bytes, OutOfMemory};
use super::conference_info::{DisconnectionMethod, EndpointStatus};
use super::history::{self, History};
use super::key::{new_map, new_set};
use super::profile::Profile;
use super::session::{Participant, Session, SessionKind, Subject};
use super::subscription::{Beliefs, Dialog, Seen, Subscription, SubscriptionStrings, Termination};
use allocator_api2::alloc::Allocator;
use allocator_api2::vec::Vec as AVec;

/// First byte of every record; a record of another format is refused, not misread.
const FORMAT: u8 = 1;
const SESSION_TAG: u8 = b'S';
const SUBSCRIPTION_TAG: u8 = b'D';

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    Malformed(&'static str),
    OutOfMemory,
}

impl From<OutOfMemory> for DecodeError {
    fn from(_: OutOfMemory) -> Self {
        DecodeError::OutOfMemory
    }
}

// ------------------------------------------------------------------ primitive encoding

struct Writer<'a>(&'a mut Vec<u8>);

impl Writer<'_> {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bool(&mut self, v: bool) {
        self.u8(v as u8);
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
    }
    fn opt_bytes(&mut self, b: Option<&[u8]>) {
        match b {
            None => self.u8(0),
            Some(b) => {
                self.u8(1);
                self.bytes(b);
            }
        }
    }
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.b.len() < n {
            return Err(DecodeError::Malformed("truncated"));
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::Malformed("bad flag")),
        }
    }
    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn opt_bytes(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        Ok(if self.bool()? {
            Some(self.bytes()?)
        } else {
            None
        })
    }
    fn owned<A: Allocator>(&mut self, alloc: A) -> Result<Bytes<A>, DecodeError> {
        Ok(try_bytes(self.bytes()?, alloc)?)
    }
    fn opt_owned<A: Allocator>(&mut self, alloc: A) -> Result<Option<Bytes<A>>, DecodeError> {
        match self.opt_bytes()? {
            None => Ok(None),
            Some(b) => Ok(Some(try_bytes(b, alloc)?)),
        }
    }
    fn end(&self) -> Result<(), DecodeError> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Malformed("trailing bytes"))
        }
    }
}

fn header(r: &mut Reader<'_>, tag: u8) -> Result<(), DecodeError> {
    if r.u8()? != FORMAT {
        return Err(DecodeError::Malformed("unknown format"));
    }
    if r.u8()? != tag {
        return Err(DecodeError::Malformed("not this kind of record"));
    }
    Ok(())
}

// ------------------------------------------------------------------ enums as codes

const KINDS: [SessionKind; 5] = [
    SessionKind::OneToOne,
    SessionKind::AdHoc,
    SessionKind::PreDefined,
    SessionKind::Chat,
    SessionKind::RestrictedChat,
];
const STATUSES: [EndpointStatus; 4] = [
    EndpointStatus::Connected,
    EndpointStatus::Disconnected,
    EndpointStatus::Alerting,
    EndpointStatus::DialingOut,
];
const METHODS: [DisconnectionMethod; 4] = [
    DisconnectionMethod::Departed,
    DisconnectionMethod::Booted,
    DisconnectionMethod::Failed,
    DisconnectionMethod::Busy,
];
const TERMINATIONS: [Termination; 5] = [
    Termination::TimeoutWithState,
    Termination::Timeout,
    Termination::NoResource,
    Termination::Rejected,
    Termination::Deactivated,
];

/// 1-based position in `table` (0 is "none" for optional values).
fn code<T: PartialEq>(table: &[T], v: &T) -> u8 {
    table.iter().position(|x| x == v).map_or(0, |i| i as u8 + 1)
}

fn from_code<T: Copy>(table: &[T], c: u8, what: &'static str) -> Result<T, DecodeError> {
    table
        .get((c as usize).wrapping_sub(1))
        .copied()
        .ok_or(DecodeError::Malformed(what))
}

fn opt_from_code<T: Copy>(
    table: &[T],
    c: u8,
    what: &'static str,
) -> Result<Option<T>, DecodeError> {
    if c == 0 {
        Ok(None)
    } else {
        from_code(table, c, what).map(Some)
    }
}

// ------------------------------------------------------------------ sessions

/// A session and its participants (its subscriptions are records of their own).
pub fn encode_session<A: Allocator>(s: &Session<A>, out: &mut Vec<u8>) {
    let mut w = Writer(out);
    w.u8(FORMAT);
    w.u8(SESSION_TAG);
    w.bytes(&s.uri);
    w.u8(code(&KINDS, &s.kind));
    w.opt_bytes(s.group.as_deref());
    w.u32(s.max_user_count.map_or(0, |m| m.saturating_add(1)));
    w.u32(s.next_anonymous);
    w.u32(s.participants.len() as u32);
    for p in s.participants.iter() {
        w.bytes(&p.aoia);
        w.bytes(&p.entity);
        w.opt_bytes(p.nick.as_deref());
        w.u8(code(&STATUSES, &p.status));
        w.bool(p.privacy);
        w.u32(p.nick_tag);
        w.opt_bytes(p.contact.as_deref());
        w.u32(p.contact_tag);
        w.u8(p.disconnection_method.map_or(0, |m| code(&METHODS, &m)));
        w.opt_bytes(p.disconnection_reason.as_deref());
        w.u32(p.departure_tag);
    }
    // R95, added after the rest (a record written before ends above): when each joined and left
    for p in s.participants.iter() {
        w.u64(p.joined_ms);
        w.u64(p.left_ms);
    }
    // R95, after those: the subject (who set it, when) and the chairman
    w.opt_bytes(s.subject.as_ref().map(|x| x.text.as_slice()));
    w.opt_bytes(s.subject.as_ref().and_then(|x| x.by.as_deref()));
    w.u64(s.subject.as_ref().map_or(0, |x| x.when_ms));
    w.opt_bytes(s.chairman.as_deref());
    // issue 17, after those: the cluster stamps in force (docs/cluster.md "Conflicts"), so that a
    // node synced from this record drops a change older than what it holds, as its peers do
    for p in s.participants.iter() {
        w.u64(p.stamp);
    }
    w.u64(s.subject_stamp);
    w.u64(s.chairman_stamp);
}

/// The session `encode_session` wrote, in `alloc`, with no subscriptions yet.
pub fn decode_session<A: Allocator + Clone>(
    bytes: &[u8],
    seed: u64,
    alloc: A,
) -> Result<Session<A>, DecodeError> {
    let r = &mut Reader { b: bytes };
    header(r, SESSION_TAG)?;
    let uri = r.owned(alloc.clone())?;
    let kind = from_code(&KINDS, r.u8()?, "session kind")?;
    let group = r.opt_owned(alloc.clone())?;
    let max_user_count = r.u32()?.checked_sub(1);
    let next_anonymous = r.u32()?;
    let n = r.u32()? as usize;
    let mut participants = AVec::new_in(alloc.clone());
    // every participant takes more than 16 bytes: a count the record cannot hold is refused
    // before anything is reserved for it
    if n > r.b.len() / 16 {
        return Err(DecodeError::Malformed("participant count"));
    }
    participants.try_reserve_exact(n).map_err(|_| OutOfMemory)?;
    for _ in 0..n {
        let p = Participant {
            aoia: r.owned(alloc.clone())?,
            entity: r.owned(alloc.clone())?,
            nick: r.opt_owned(alloc.clone())?,
            status: from_code(&STATUSES, r.u8()?, "status")?,
            privacy: r.bool()?,
            nick_tag: r.u32()?,
            contact: r.opt_owned(alloc.clone())?,
            contact_tag: r.u32()?,
            disconnection_method: opt_from_code(&METHODS, r.u8()?, "disconnection method")?,
            disconnection_reason: r.opt_owned(alloc.clone())?,
            departure_tag: r.u32()?,
            stamp: 0,
            joined_ms: 0,
            left_ms: 0,
        };
        participants.push(p);
    }
    // R95: the times, then the subject and the chairman, unless the record predates them
    if !r.b.is_empty() {
        for p in participants.iter_mut() {
            p.joined_ms = r.u64()?;
            p.left_ms = r.u64()?;
        }
    }
    let (mut subject, mut chairman) = (None, None);
    if !r.b.is_empty() {
        let text = r.opt_owned(alloc.clone())?;
        let by = r.opt_owned(alloc.clone())?;
        let when_ms = r.u64()?;
        subject = text.map(|text| Subject { text, by, when_ms });
        chairman = r.opt_owned(alloc.clone())?;
    }
    // issue 17: the stamps, unless the record predates them (then none: 0)
    let (mut subject_stamp, mut chairman_stamp) = (0, 0);
    if !r.b.is_empty() {
        for p in participants.iter_mut() {
            p.stamp = r.u64()?;
        }
        subject_stamp = r.u64()?;
        chairman_stamp = r.u64()?;
    }
    r.end()?;
    Ok(Session {
        uri,
        kind,
        group,
        participants,
        subs: new_set(seed, alloc.clone()),
        subs_per_user: new_map(seed, alloc.clone()),
        max_user_count,
        next_anonymous,
        subject,
        chairman,
        subject_stamp,
        chairman_stamp,
        history: History::new_in(alloc),
    })
}

// ------------------------------------------------------------------ subscriptions

/// A subscription, which believes `told` of the session's participants, in order (R24
/// `seen_users`; see `Notifier::subscription_rows`). `wall_offset_ms` turns the caller's clock
/// into wall-clock time (wall minus clock), so the expiry means the same after a restart.
pub fn encode_subscription<A: Allocator>(
    s: &Subscription<A>,
    told: &[Seen],
    wall_offset_ms: i64,
    out: &mut Vec<u8>,
) {
    let mut w = Writer(out);
    w.u8(FORMAT);
    w.u8(SUBSCRIPTION_TAG);
    w.bytes(s.session());
    w.bytes(s.subscriber());
    w.bytes(s.asserted());
    w.bool(s.anonymous);
    let d = &s.dialog;
    for b in [
        d.call_id(),
        d.local_tag(),
        d.remote_tag(),
        d.local_uri(),
        d.remote_uri(),
        d.remote_target(),
        d.route_set(),
        d.socket(),
    ] {
        w.bytes(b);
    }
    w.opt_bytes(d.event_id());
    w.u32(d.remote_cseq);
    w.u32(d.local_cseq);
    w.u64(s.expires_at.saturating_add_signed(wall_offset_ms));
    w.u32(s.version);
    w.bool(s.dirty);
    w.bool(s.needs_full);
    w.u8(s.terminate.map_or(0, |t| code(&TERMINATIONS, &t)));
    // a NOTIFY in flight may never have arrived: the restored subscription resyncs in full
    w.bool(s.in_flight.is_some());
    w.u64(s.notifies_sent);
    w.u32(told.len() as u32);
    for seen in told {
        w.u8(seen.status.map_or(0, |st| code(&STATUSES, &st)));
        w.u32(seen.nick_tag);
        w.u32(seen.endpoint_tag);
        w.u32(seen.departure_tag);
        w.bool(seen.delete_pending);
    }
    // R94, added after the rest: a record written before profiles ends above
    w.u8(s.profile.code());
    // issue 17, added after the profile: when the dialog was last claimed, wall clock
    w.u64(s.claimed_at.saturating_add_signed(wall_offset_ms));
}

/// The subscription `encode_subscription` wrote, with id `id`, idle (nothing in flight, no
/// hold, not queued), its expiry back on the caller's clock (`wall_offset_ms` as then). One
/// whose NOTIFY was in flight when it was written sends full state next. A record written
/// before output profiles (R94) gets `old_records_profile`.
pub fn decode_subscription<A: Allocator + Clone>(
    bytes: &[u8],
    id: u32,
    wall_offset_ms: i64,
    old_records_profile: Profile,
    alloc: A,
) -> Result<Subscription<A>, DecodeError> {
    let r = &mut Reader { b: bytes };
    header(r, SUBSCRIPTION_TAG)?;
    // read in record order (struct fields are evaluated in the order written)
    let mut strings = SubscriptionStrings {
        session: r.bytes()?,
        subscriber: r.bytes()?,
        asserted: r.bytes()?,
        ..SubscriptionStrings::default()
    };
    let anonymous = r.bool()?;
    strings = SubscriptionStrings {
        call_id: r.bytes()?,
        local_tag: r.bytes()?,
        remote_tag: r.bytes()?,
        local_uri: r.bytes()?,
        remote_uri: r.bytes()?,
        remote_target: r.bytes()?,
        route_set: r.bytes()?,
        socket: r.bytes()?,
        event_id: r.opt_bytes()?,
        ..strings
    };
    let remote_cseq = r.u32()?;
    let local_cseq = r.u32()?;
    let expires_at = r
        .u64()?
        .saturating_add_signed(wall_offset_ms.saturating_neg());
    let version = r.u32()?;
    let dirty = r.bool()?;
    let needs_full = r.bool()?;
    let terminate = opt_from_code(&TERMINATIONS, r.u8()?, "termination")?;
    let unconfirmed = r.bool()?;
    let notifies_sent = r.u64()?;
    let n = r.u32()? as usize;
    const SEEN_BYTES: usize = 14;
    if n > r.b.len() / SEEN_BYTES {
        return Err(DecodeError::Malformed("seen count"));
    }
    // what it believes of each participant: kept as beliefs of its own, with no mark (a
    // restored session's history starts anew)
    let mut told = std::vec::Vec::new();
    for i in 0..n {
        let s = Seen {
            status: opt_from_code(&STATUSES, r.u8()?, "seen status")?,
            nick_tag: r.u32()?,
            endpoint_tag: r.u32()?,
            departure_tag: r.u32()?,
            delete_pending: r.bool()?,
        };
        if s != Seen::default() {
            told.push((i as u32, s));
        }
    }
    let mut beliefs = Beliefs::new_in(alloc.clone());
    beliefs.replace(&told)?;
    // R94: records written before profiles have none; they get `old_records_profile`
    let profile = match r.b {
        [] => old_records_profile,
        _ => Profile::from_code(r.u8()?).ok_or(DecodeError::Malformed("profile"))?,
    };
    // issue 17: records written before claims have none (0: older than any claim)
    let claimed_at = match r.b {
        [] => 0,
        _ => r
            .u64()?
            .saturating_add_signed(wall_offset_ms.saturating_neg()),
    };
    r.end()?;
    // one block for every string, allocated once the record is known to be whole
    let dialog = Dialog::try_new(&strings, AVec::new_in(alloc), remote_cseq, local_cseq)?;
    Ok(Subscription {
        id,
        anonymous,
        dialog,
        expires_at,
        version,
        beliefs,
        dirty,
        needs_full: needs_full || unconfirmed,
        terminate,
        in_flight: None,
        holds_place: false,
        held_since: None,
        waiting: false,
        queued: false,
        last_notify_at: None,
        notifies_sent,
        unsent: 0,
        profile,
        seen_description: 0,
        told_mark: history::NEVER,
        claimed_at,
        awaiting_peers: false,
    })
}

/// When the dialog of a subscription record was last claimed (wall clock, ms; 0 for a record
/// written before claims): see `Notifier::settle_claim`.
pub fn claimed_wall_ms(bytes: &[u8]) -> Result<u64, DecodeError> {
    let sub = decode_subscription(bytes, 0, 0, Profile::Oma, allocator_api2::alloc::Global)?;
    Ok(sub.claimed_at)
}

// ------------------------------------------------------------------ tables

const SQLITE: &str = include_str!("../../sql/imconf-sqlite.sql");
const POSTGRES: &str = include_str!("../../sql/imconf-postgres.sql");

/// The table definitions for the database `url` names, if this build ships them.
pub fn schema_for(url: &str) -> Option<&'static str> {
    let scheme = url.split(':').next().unwrap_or_default();
    match scheme.to_ascii_lowercase().as_str() {
        "sqlite" => Some(SQLITE),
        "postgres" | "postgresql" => Some(POSTGRES),
        _ => None,
    }
}

/// The statements of a schema file, comments dropped.
pub fn statements(schema: &str) -> impl Iterator<Item = String> + '_ {
    schema.split(';').filter_map(|stmt| {
        let text: Vec<&str> = stmt
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect();
        let text = text.join("\n");
        (!text.trim().is_empty()).then_some(text)
    })
}

/// Statements that turn tables of an imconf before owners (issue 17) into the shipped
/// `schema`'s: the sessions table is made again (its key gains the owner: SQLite cannot change
/// a key in place) with every row kept, the subscriptions table gains the column. The rows
/// get no owner, which every node reads as its own.
pub fn migrate_v1(schema: &str) -> Vec<String> {
    let create_sessions = statements(schema).next().unwrap_or_default();
    vec![
        "ALTER TABLE imconf_sessions RENAME TO imconf_sessions_v1".into(),
        create_sessions,
        "INSERT INTO imconf_sessions (owner, session_uri, kind, group_uri, state) \
         SELECT '', session_uri, kind, group_uri, state FROM imconf_sessions_v1"
            .into(),
        "DROP TABLE imconf_sessions_v1".into(),
        "ALTER TABLE imconf_subscriptions ADD COLUMN owner VARCHAR(255) NOT NULL DEFAULT ''".into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_schema_has_its_tables_as_separate_statements() {
        for schema in [SQLITE, POSTGRES] {
            let s: Vec<String> = statements(schema).collect();
            assert_eq!(s.len(), 3);
            assert!(s[0].contains("CREATE TABLE IF NOT EXISTS imconf_sessions"));
            assert!(s[1].contains("CREATE TABLE IF NOT EXISTS imconf_subscriptions"));
            assert!(s[2].contains("CREATE TABLE IF NOT EXISTS imconf_meta"));
            assert!(s.iter().all(|x| !x.contains("--")));
        }
        assert_eq!(schema_for("sqlite:///tmp/x.db"), Some(SQLITE));
        assert_eq!(
            schema_for("postgres://u:p@127.0.0.1/imconf"),
            Some(POSTGRES)
        );
        assert_eq!(schema_for("mysql://u@h/db"), None);
    }

    #[test]
    fn the_owner_migration_remakes_the_sessions_table_from_the_shipped_schema() {
        for schema in [SQLITE, POSTGRES] {
            let m = migrate_v1(schema);
            assert_eq!(m.len(), 5);
            assert!(m[1].contains("CREATE TABLE IF NOT EXISTS imconf_sessions"));
            assert!(m[1].contains("PRIMARY KEY (owner, session_uri)"));
        }
    }
}
