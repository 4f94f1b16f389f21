//! Group documents for the module (R8, R71, R81-R88): `groups_dir` is read in mod_init and on
//! `imconf_groups_reload()` / `imconf.groups_reload`.
//!
//! Whichever process reloads writes the bytes of every good document to shm (one copy) and
//! bumps a generation; every process parses them into its own `GroupSet` the first time it sees
//! the new generation. A SUBSCRIBE reads only an atomic and that process-local set: no shm lock,
//! no parsing, no file access on the hot path.
use super::notify::send_all;
use super::state::{params, shared};
use crate::core::bytes::{try_bytes, Bytes};
use crate::core::groups::{Decision, GroupSet};
use crate::core::policy::{GroupAuth, GroupPolicy};
use crate::kam::clock;
use crate::kam::shm::ShmAlloc;
use crate::{kerr, kinfo};
use allocator_api2::vec::Vec as AVec;
use parking_lot::Mutex;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The good documents in force, by file name, as read (shared by all processes).
pub struct GroupStore {
    files: AVec<(Bytes<ShmAlloc>, Bytes<ShmAlloc>), ShmAlloc>,
}

impl GroupStore {
    pub fn new() -> Self {
        GroupStore {
            files: AVec::new_in(ShmAlloc),
        }
    }

    fn to_vec(&self) -> Vec<(String, Vec<u8>)> {
        self.files
            .iter()
            .map(|(n, b)| (String::from_utf8_lossy(n).into_owned(), b.to_vec()))
            .collect()
    }

    /// Replaces the contents; on a full shm nothing changes.
    fn replace(&mut self, good: &[(String, Vec<u8>)]) -> Result<(), &'static str> {
        const FULL: &str = "shared memory is full";
        let mut files = AVec::new_in(ShmAlloc);
        files.try_reserve_exact(good.len()).map_err(|_| FULL)?;
        for (name, bytes) in good {
            let n = try_bytes(name.as_bytes(), ShmAlloc).map_err(|_| FULL)?;
            let b = try_bytes(bytes, ShmAlloc).map_err(|_| FULL)?;
            files.push((n, b));
        }
        self.files = files;
        Ok(())
    }
}

/// This process's parsed copy, with the generation it was built from.
static LOCAL: Mutex<Option<(u64, Arc<GroupSet>)>> = Mutex::new(None);

/// The group set in force, parsed in this process if it changed since the last call.
pub fn current() -> Arc<GroupSet> {
    let generation = shared().groups_generation.load(Ordering::Acquire);
    let mut local = LOCAL.lock();
    if let Some((g, set)) = local.as_ref() {
        if *g == generation {
            return set.clone();
        }
    }
    // the stored bytes all parsed when they were stored: this cannot report errors
    let files = shared().groups.lock().to_vec();
    let set = Arc::new(GroupSet::build(&files, &[]).set);
    *local = Some((generation, set.clone()));
    set
}

/// Parses the documents in this (main) process, so the workers fork with them ready.
pub fn prime() {
    if params().groups_dir.is_some() {
        current();
    }
}

/// The module's answer to R8: None when no `groups_dir` is configured (R6 applies instead).
pub struct DocumentPolicy {
    set: Option<Arc<GroupSet>>,
    tel_sip_equivalence: bool,
}

impl DocumentPolicy {
    pub fn current() -> Self {
        let p = params();
        DocumentPolicy {
            set: p.groups_dir.as_ref().map(|_| current()),
            tel_sip_equivalence: p.tel_sip_equivalence,
        }
    }

    fn of(set: Arc<GroupSet>) -> Self {
        DocumentPolicy {
            set: Some(set),
            tel_sip_equivalence: params().tel_sip_equivalence,
        }
    }

    /// R49/R88: the member's `rl:display-name`, the fallback Nick Name.
    pub fn display_name(&self, group_uri: &[u8], aoia: &[u8]) -> Option<String> {
        let set = self.set.as_ref()?;
        set.display_name(&lossy(group_uri), &lossy(aoia), self.tel_sip_equivalence)
            .map(str::to_owned)
    }

    /// R88: `<max-participant-count>`, reported as `maximum-user-count` (R52, R91).
    pub fn max_participant_count(&self, group_uri: &[u8]) -> Option<u32> {
        self.set.as_ref()?.max_participant_count(&lossy(group_uri))
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl GroupPolicy for DocumentPolicy {
    fn authorize(&self, group_uri: &[u8], aoia: &[u8], anonymous: bool) -> Option<GroupAuth> {
        let set = self.set.as_ref()?;
        let decision = set.allow_conference_state(
            &lossy(group_uri),
            &lossy(aoia),
            anonymous,
            self.tel_sip_equivalence,
        );
        Some(match decision {
            Some(Decision::Allow) => GroupAuth::Allow,
            Some(Decision::Deny) => GroupAuth::Deny,
            // R87: no document for this group: fail closed with 500, not a policy 403
            None => GroupAuth::Unavailable,
        })
    }
}

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
                if let Err(e) = super::feed::close(&s) {
                    kerr!("closing {}: {e}", lossy(&s));
                }
            }
        }
    }
    let policy = DocumentPolicy::of(new);
    let cfg = &params().config;
    for slot in 0..shared().slots.len() {
        let notifies = {
            let mut n = shared().slots[slot].lock();
            for (session, group) in n.group_sessions() {
                let max = policy.max_participant_count(&group);
                let _ = n.set_max_user_count(&session, max);
            }
            n.reauthorize(cfg, clock::now_ms(), &policy)
        };
        send_all(slot, notifies);
    }
}
