//! Persistence with `db_url` (issue 7, docs/persistence.md): tables created in mod_init, the
//! state restored from them before the workers fork, changes written back by the timer process
//! every `db_flush_interval_ms` (never on the SIP path, never under a slot lock), and
//! everything written on a graceful stop, which sends no NOTIFY (R72).
use super::state::{params, shared};
use crate::core::notifier::Changes;
use crate::core::persist::{schema_for, statements};
use crate::kam::clock;
use crate::kam::db::{self, Conn, Read, Value};
use crate::kam::lock::try_lock_for;
use crate::{kerr, kinfo, kwarn};
use parking_lot::Mutex;
use std::ffi::CStr;

const SESSIONS: &CStr = c"imconf_sessions";
const SUBSCRIPTIONS: &CStr = c"imconf_subscriptions";
const META: &CStr = c"imconf_meta";
/// Written after the last write of a graceful stop, removed once its state is restored: a
/// start that does not find it follows a crash (the stored CSeqs may be behind).
const CLEAN_STOP: &[u8] = b"clean_stop";

/// mod_init: binds the database and creates the tables if missing. An error names `db_url`.
pub fn init(url: &str) -> Result<(), String> {
    let fail = |e: &dyn std::fmt::Display| format!("modparam \"db_url\": {url}: {e}");
    db::bind(url).map_err(|e| fail(&format!("{e} (load its db_* module first)")))?;
    let conn = Conn::open(url).map_err(|e| fail(&e))?;
    match schema_for(url) {
        Some(schema) => {
            for stmt in statements(schema) {
                conn.exec(&stmt)
                    .map_err(|e| fail(&format!("creating the tables: {e}")))?;
            }
        }
        None => kinfo!(
            "db_url {url}: create the tables of sql/imconf-postgres.sql (or -sqlite.sql) yourself"
        ),
    }
    Ok(())
}

fn bytes(v: Option<&Read>) -> Option<&[u8]> {
    match v {
        Some(Read::Bytes(b)) => Some(b),
        _ => None,
    }
}

/// mod_init, after the state exists: loads the stored sessions and subscriptions, then starts
/// recording changes. A row that cannot be restored is logged and left out.
pub fn restore(url: &str) -> Result<(), String> {
    let conn = Conn::open(url).map_err(|e| format!("modparam \"db_url\": {url}: {e}"))?;
    let read = |table, cols: &[&CStr]| {
        conn.select(table, cols)
            .map_err(|e| format!("db_url {url}: reading {}: {e}", table.to_string_lossy()))
    };
    let meta = read(META, &[c"name"])?;
    let session_rows = read(SESSIONS, &[c"session_uri", c"state"])?;
    let sub_rows = read(SUBSCRIPTIONS, &[c"session_uri", c"state", c"call_id"])?;
    let clean = meta.iter().any(|r| bytes(r.first()) == Some(CLEAN_STOP));
    // state without the clean-stop mark was left by a crash (an empty store by nothing)
    let empty = session_rows.is_empty() && sub_rows.is_empty();
    let crashed = !clean && !empty;
    let s = shared();
    let now = clock::now_ms();
    let offset = clock::wall_offset_ms();
    let (mut sessions, mut subs, mut refused) = (0usize, 0usize, 0usize);
    for row in session_rows {
        let Some((slot, uri, state)) = placed(&row) else {
            refused += 1;
            continue;
        };
        let restored = s.slots[slot].lock().restore_session(state);
        match restored {
            Ok((session_uri, Some(group))) => {
                sessions += 1;
                // R3: the group identity leads here from its own slot too (as session_open)
                if let Some(gslot) = s.slot_of_uri(&group).filter(|&g| g != slot) {
                    let _ = s.slots[gslot].lock().add_alias(&group, &session_uri);
                }
            }
            Ok(_) => sessions += 1,
            Err(e) => {
                refused += 1;
                kwarn!("db_url: session {} not restored: {e:?}", lossy(uri));
            }
        }
    }
    for row in sub_rows {
        let Some((slot, _, state)) = placed(&row) else {
            refused += 1;
            continue;
        };
        let restored = s.slots[slot]
            .lock()
            .restore_subscription(now, state, offset, crashed);
        match restored {
            Ok(()) => subs += 1,
            Err(e) => {
                refused += 1;
                let call_id = bytes(row.get(2)).map(lossy).unwrap_or_default();
                kwarn!("db_url: subscription {call_id} not restored: {e:?}");
            }
        }
    }
    if clean {
        let _ = conn.delete(META, &[c"name"], &[Value::Str(CLEAN_STOP)]);
    }
    for slot in s.slots.iter() {
        slot.lock().enable_persistence();
    }
    kinfo!(
        "db_url: restored {sessions} sessions and {subs} subscriptions ({refused} rows left out){}",
        if crashed {
            " after an unclean stop: full state first"
        } else {
            ""
        }
    );
    Ok(())
}

/// A stored row (session URI, state, ...) with the hash slot its session lives in.
fn placed(row: &[Read]) -> Option<(usize, &[u8], &[u8])> {
    let (uri, state) = (bytes(row.first())?, bytes(row.get(1))?);
    Some((shared().slot_of_uri(uri)?, uri, state))
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// This process's connection (opened on first use; the timer process and, at the end, main).
static CONN: Mutex<Option<Conn>> = Mutex::new(None);
/// A write failed or a change was not recorded: the next write-back rewrites every row.
static REWRITE: Mutex<bool> = Mutex::new(false);
/// When this process last wrote back (ms, `clock::now_ms`).
static LAST_FLUSH: Mutex<u64> = Mutex::new(0);

/// Timer: writes back what changed, every `db_flush_interval_ms`.
pub fn tick() {
    let p = params();
    let Some(url) = p.db_url.as_deref() else {
        return;
    };
    let now = clock::now_ms();
    {
        let mut last = LAST_FLUSH.lock();
        if now < *last + p.db_flush_interval_ms {
            return;
        }
        *last = now;
    }
    let mut rewrite = REWRITE.lock();
    let all = *rewrite;
    *rewrite = !write_back(url, all, 0);
}

/// mod_destroy with `db_url`: every row rewritten, then the clean-stop mark. A slot whose lock
/// a killed child holds is skipped and the mark left out, so the next start resyncs in full.
pub fn stop() {
    let Some(url) = params().db_url.as_deref() else {
        return;
    };
    if write_back(url, true, SLOT_WAIT_MS) {
        let marked = with_conn(url, |c| {
            c.delete(META, &[c"name"], &[Value::Str(CLEAN_STOP)])?;
            c.insert(
                META,
                &[c"name", c"value"],
                &[Value::Str(CLEAN_STOP), Value::Str(b"1")],
            )
        });
        if marked {
            kinfo!("db_url: state written, clean stop");
            return;
        }
    }
    kerr!("db_url: the state could not all be written; the next start resyncs subscribers in full");
}

/// How long the final write-back waits for a slot lock (see notify::shutdown).
const SLOT_WAIT_MS: u64 = 200;

fn with_conn(url: &str, f: impl FnOnce(&Conn) -> Result<(), crate::kam::KamError>) -> bool {
    let mut conn = CONN.lock();
    if conn.is_none() {
        match Conn::open(url) {
            Ok(c) => *conn = Some(c),
            Err(e) => {
                kerr!("db_url: {e}");
                return false;
            }
        }
    }
    let Some(c) = conn.as_ref() else { return false };
    match f(c) {
        Ok(()) => true,
        Err(e) => {
            kerr!("db_url: {e}");
            false
        }
    }
}

/// Writes back every slot's changes (`all`: every row, after emptying the tables). With
/// `wait_ms` > 0 a slot lock is waited for at most that long (shutdown). True when all was
/// written.
fn write_back(url: &str, all: bool, wait_ms: u64) -> bool {
    let s = shared();
    let offset = clock::wall_offset_ms();
    let mut ok = true;
    if all {
        ok &= with_conn(url, |c| {
            c.delete(SUBSCRIPTIONS, &[], &[])?;
            c.delete(SESSIONS, &[], &[])
        });
        if !ok {
            return false;
        }
    }
    for slot in s.slots.iter() {
        let changes = if wait_ms > 0 {
            match try_lock_for(slot, wait_ms) {
                Some(mut n) => n.take_changes(offset, all),
                None => {
                    ok = false;
                    continue;
                }
            }
        } else {
            slot.lock().take_changes(offset, all)
        };
        if changes.overflow && !all {
            ok = false; // a change was lost: rewrite everything next time
        }
        if !changes.is_empty() {
            ok &= with_conn(url, |c| write(c, &changes));
        }
    }
    ok
}

/// One slot's changes: deletions first, then each row replaced (delete + insert: every DB
/// module has both, not all have REPLACE).
fn write(c: &Conn, ch: &Changes) -> Result<(), crate::kam::KamError> {
    let sub_key = [c"call_id", c"local_tag"];
    for (call_id, tag) in &ch.gone_subs {
        c.delete(
            SUBSCRIPTIONS,
            &sub_key,
            &[Value::Str(call_id), Value::Str(tag)],
        )?;
    }
    for uri in &ch.gone_sessions {
        c.delete(SESSIONS, &[c"session_uri"], &[Value::Str(uri)])?;
    }
    for row in &ch.sessions {
        c.delete(SESSIONS, &[c"session_uri"], &[Value::Str(&row.uri)])?;
        let group = row.group.as_deref().map_or(Value::Null, Value::Str);
        c.insert(
            SESSIONS,
            &[c"session_uri", c"kind", c"group_uri", c"state"],
            &[
                Value::Str(&row.uri),
                Value::Str(row.kind.as_bytes()),
                group,
                Value::Blob(&row.state),
            ],
        )?;
    }
    for row in &ch.subs {
        c.delete(
            SUBSCRIPTIONS,
            &sub_key,
            &[Value::Str(&row.call_id), Value::Str(&row.local_tag)],
        )?;
        c.insert(
            SUBSCRIPTIONS,
            &[
                c"call_id",
                c"local_tag",
                c"session_uri",
                c"subscriber",
                c"expires",
                c"state",
            ],
            &[
                Value::Str(&row.call_id),
                Value::Str(&row.local_tag),
                Value::Str(&row.session_uri),
                Value::Str(&row.subscriber),
                Value::Int((row.expires_wall_ms / 1000) as i64),
                Value::Blob(&row.state),
            ],
        )?;
    }
    Ok(())
}
