//! Group documents for the module (R8, R71, R81-R88): `groups_dir` is read in mod_init and on
//! `imconf_groups_reload()` / `imconf.groups_reload`.
//!
//! Whichever process reloads writes the bytes of every good document to shm (one copy) and
//! bumps a generation; every process parses them into its own `GroupSet` the first time it sees
//! the new generation. A SUBSCRIBE reads only an atomic and that process-local set: no shm lock,
//! no parsing, no file access on the hot path.
use super::apply::Applied;
use super::group_policy::{lossy, DocumentPolicy};
use super::state::{params, shared};
use crate::core::groups::GroupSet;
use crate::kam::clock;
use crate::{kerr, kinfo};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Reads every `*.xml` file of `dir`, sorted by name.
fn read_dir(dir: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read {dir}: {e}"))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {dir}: {e}"))?;
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("xml") || !path.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {name}: {e}"))?;
        files.push((name, bytes));
    }
    files.sort();
    Ok(files)
}

/// What a reload found wrong; the good part was applied all the same.
pub struct ReloadError(pub String);

/// Rereads `groups_dir`, keeps the previous good version of every file that fails (naming it),
/// then applies the change to live state: R67 for groups that are gone, R71 for subscribers
/// the documents no longer allow, R88 for the maximum user counts.
pub fn reload() -> Result<(), ReloadError> {
    let Some(dir) = params().groups_dir.as_deref() else {
        return Ok(());
    };
    let files = read_dir(dir).map_err(ReloadError)?;
    let (old, new, errors) = {
        // one reload at a time: the store lock is held from reading the previous state to
        // publishing the new one (no slot lock is taken meanwhile)
        let mut store = shared().groups.lock();
        let previous = store.to_vec();
        let old = GroupSet::build(&previous, &[]).set;
        let outcome = GroupSet::build(&files, &previous);
        store
            .replace(&outcome.good)
            .map_err(|e| ReloadError(e.into()))?;
        shared().groups_generation.fetch_add(1, Ordering::AcqRel);
        (old, outcome.set, outcome.errors)
    };
    let messages: Vec<String> = errors
        .iter()
        .map(|(file, e)| format!("{dir}/{file}: {e}"))
        .collect();
    for m in &messages {
        kerr!("group document refused, previous version kept: {m}");
    }
    let new = Arc::new(new);
    apply(&old, new.clone());
    kinfo!(
        "group documents loaded from {dir}: {} groups",
        new.group_uris().count()
    );
    if messages.is_empty() {
        Ok(())
    } else {
        Err(ReloadError(messages.join("; ")))
    }
}

/// Brings live sessions in line with `new`, one slot lock at a time.
fn apply(old: &GroupSet, new: Arc<GroupSet>) {
    for gone in crate::core::groups::diff_removed(old, &new) {
        for slot in 0..shared().slots.len() {
            let sessions = shared().slots[slot]
                .lock()
                .sessions_of_group(gone.as_bytes());
            for s in sessions {
                kinfo!("group {gone} removed: closing its session {}", lossy(&s));
                if let Err(e) = super::apply::close(&s) {
                    kerr!("closing {}: {e}", lossy(&s));
                }
            }
        }
    }
    let policy = DocumentPolicy::of(new);
    let cfg = &params().config;
    for slot in 0..shared().slots.len() {
        let applied = {
            let mut n = shared().slots[slot].lock();
            for (session, group) in n.group_sessions() {
                let max = policy.max_participant_count(&group);
                let _ = n.set_max_user_count(&session, max);
            }
            let notifies = n.reauthorize(cfg, clock::now_ms(), &policy);
            Applied::of(slot, &n, notifies)
        };
        applied.send();
    }
}
