//! The group documents as this process sees them (R8, R49, R85-R88): parsed from the shm copy
//! the first time a process sees a new generation, then read without any lock (a SUBSCRIBE
//! reads an atomic and this process's set).
use super::state::{params, shared};
use crate::core::groups::{Decision, GroupSet};
use crate::core::policy::{GroupAuth, GroupPolicy};
use parking_lot::Mutex;
use std::sync::atomic::Ordering;
use std::sync::Arc;

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

    pub(super) fn of(set: Arc<GroupSet>) -> Self {
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

pub(super) fn lossy(b: &[u8]) -> String {
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
