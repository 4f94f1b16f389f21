//! Persistence with `db_url` (issue 7, docs/persistence.md): tables created in mod_init, the
//! state restored from them before the workers fork, changes written back by the timer process
//! every `db_flush_interval_ms` (never on the SIP path, never under a slot lock), and
//! everything written on a graceful stop, which sends no NOTIFY (R72).
//!
//! Every row names its `owner` (`db_node_name`), so that the nodes of a cluster may share one
//! database (issue 17): a node restores its own rows (and rows of no owner, written before
//! owners), rewrites only its own, and a subscription's row, keyed by its dialog alone, is
//! replaced by whichever node holds the subscription now.
use super::state::{params, shared};
use crate::core::notifier::{Changes, Consumer};
use crate::core::persist::{migrate_v1, schema_for, statements};
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
/// start that does not find it follows a crash (the stored CSeqs may be behind). One per
/// owner: `clean_stop_mark`.
const CLEAN_STOP: &str = "clean_stop";

/// This node's clean-stop mark: `clean_stop` alone (as before owners), else followed by a
/// hash of its name (the name column holds 64 bytes, a node name up to 255).
fn clean_stop_mark(owner: &str) -> Vec<u8> {
    if owner.is_empty() {
        return CLEAN_STOP.as_bytes().to_vec();
    }
    // FNV-1a: stable across runs and builds, unlike std's hasher
    let h = owner.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    format!("{CLEAN_STOP} {h:016x}").into_bytes()
}

/// Whose rows are this node's.
fn owner() -> &'static [u8] {
    params().db_node_name.as_bytes()
}

/// The owners whose rows this node rewrites and deletes: its own, and none (rows written
/// alone or before owners, which it restored).
fn own_owners() -> Vec<&'static [u8]> {
    let me = owner();
    if me.is_empty() {
        vec![b""]
    } else {
        vec![me, b""]
    }
}

/// Whether a stored row is this node's to restore: its own, or one of no owner (written
/// before owners, or by this node alone).
fn mine(row_owner: Option<&[u8]>) -> bool {
    matches!(row_owner, Some(o) if o.is_empty() || o == owner())
}

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
    if conn.select(SESSIONS, &[c"owner"]).is_err() {
        // tables of an imconf before owners (issue 17): the rows become this node's
        kinfo!("db_url {url}: adding the owner column to the imconf tables (the error above is the probe)");
        let schema = schema_for(url).ok_or_else(|| {
            fail(&"the tables lack the owner column: see sql/imconf-postgres.sql and docs/persistence.md")
        })?;
        for stmt in migrate_v1(schema) {
            conn.exec(&stmt)
                .map_err(|e| fail(&format!("adding the owner column: {e}")))?;
        }
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
    let mark = clean_stop_mark(&params().db_node_name);
    let ours = |rows: Vec<Vec<Read>>| -> Vec<Vec<Read>> {
        rows.into_iter().filter(|r| mine(bytes(r.get(3)))).collect()
    };
    let session_rows = ours(read(
        SESSIONS,
        &[c"session_uri", c"state", c"kind", c"owner"],
    )?);
    let sub_rows = ours(read(
        SUBSCRIPTIONS,
        &[c"session_uri", c"state", c"call_id", c"owner"],
    )?);
    let clean = meta.iter().any(|r| bytes(r.first()) == Some(&mark[..]));
    // state without the clean-stop mark was left by a crash (an empty store by nothing)
    let empty = session_rows.is_empty() && sub_rows.is_empty();
    let crashed = !clean && !empty;
    let s = shared();
    let now = clock::now_ms();
    let offset = clock::wall_offset_ms();
    if params().enable_dmq {
        // a peer may hold some of these dialogs in a newer state (it took them over): nothing
        // is sent for them until the peers have had their say (cluster::release_restored)
        for slot in s.slots.iter() {
            slot.lock().hold_restored();
        }
    }
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
        let _ = conn.delete(META, &[c"name"], &[Value::Str(&mark)]);
    }
    for slot in s.slots.iter() {
        slot.lock().enable_changes(Consumer::Database);
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

/// mod_destroy with `db_url`: every row rewritten, then, when `clean`, the clean-stop mark. A
/// slot whose lock a killed child holds is skipped and the mark left out, so the next start
/// resyncs in full. Not `clean`: the subscriptions are handed to cluster peers, which may
/// send NOTIFYs these rows do not reflect (the next start jumps, as after a crash).
pub fn stop(clean: bool) {
    let Some(url) = params().db_url.as_deref() else {
        return;
    };
    if write_back(url, true, SLOT_WAIT_MS) {
        if !clean {
            kinfo!("db_url: state written; handed to the cluster's peers");
            return;
        }
        let mark = clean_stop_mark(&params().db_node_name);
        let marked = with_conn(url, |c| {
            c.delete(META, &[c"name"], &[Value::Str(&mark)])?;
            c.insert(
                META,
                &[c"name", c"value"],
                &[Value::Str(&mark), Value::Str(b"1")],
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
    // one transaction: a row is rewritten as a delete and an insert, and a crash between the
    // two must not lose it (issue 17: a whole-cluster kill -9 lost one of 1000 subscriptions
    // to this, with sqlite committing, and syncing, every statement on its own). COMMIT even
    // after a failure: what was written stays (PostgreSQL rolls an aborted transaction back)
    if !with_conn(url, |c| c.exec("BEGIN")) {
        return false;
    }
    let ok = write_rows(url, all, wait_ms);
    with_conn(url, |c| c.exec("COMMIT")) && ok
}

/// `write_back`'s statements, inside its transaction.
fn write_rows(url: &str, all: bool, wait_ms: u64) -> bool {
    let s = shared();
    let offset = clock::wall_offset_ms();
    let mut ok = true;
    if all {
        // this node's rows, and those of no owner it restored (a shared database keeps the
        // other nodes' rows)
        ok &= with_conn(url, |c| {
            for o in own_owners() {
                c.delete(SUBSCRIPTIONS, &[c"owner"], &[Value::Str(o)])?;
                c.delete(SESSIONS, &[c"owner"], &[Value::Str(o)])?;
            }
            Ok(())
        });
        if !ok {
            return false;
        }
    }
    for slot in s.slots.iter() {
        let changes = if wait_ms > 0 {
            match try_lock_for(slot, wait_ms) {
                Some(mut n) => n.take_changes(&params().config, Consumer::Database, offset, all),
                None => {
                    ok = false;
                    continue;
                }
            }
        } else {
            slot.lock()
                .take_changes(&params().config, Consumer::Database, offset, all)
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
/// module has both, not all have REPLACE). A subscription's row is replaced whoever wrote it
/// (this node holds the dialog now: a takeover); only this node's own are deleted.
fn write(c: &Conn, ch: &Changes) -> Result<(), crate::kam::KamError> {
    let me = owner();
    let sub_key = [c"call_id", c"local_tag"];
    let session_key = [c"owner", c"session_uri"];
    let owners = own_owners();
    for (call_id, tag) in &ch.gone_subs {
        for o in &owners {
            c.delete(
                SUBSCRIPTIONS,
                &[c"owner", c"call_id", c"local_tag"],
                &[Value::Str(o), Value::Str(call_id), Value::Str(tag)],
            )?;
        }
    }
    for uri in &ch.gone_sessions {
        for o in &owners {
            c.delete(SESSIONS, &session_key, &[Value::Str(o), Value::Str(uri)])?;
        }
    }
    for row in &ch.sessions {
        c.delete(
            SESSIONS,
            &session_key,
            &[Value::Str(me), Value::Str(&row.uri)],
        )?;
        let group = row.group.as_deref().map_or(Value::Null, Value::Str);
        c.insert(
            SESSIONS,
            &[c"owner", c"session_uri", c"kind", c"group_uri", c"state"],
            &[
                Value::Str(me),
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
                c"owner",
                c"call_id",
                c"local_tag",
                c"session_uri",
                c"subscriber",
                c"expires",
                c"state",
            ],
            &[
                Value::Str(me),
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
