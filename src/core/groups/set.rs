//! The group documents in force in one process (R87): built from named files (the module reads
//! `groups_dir`), with the previous good version of a file kept while its new one is refused.
//! Rebuilt whole on each reload from validated bytes, so plain std collections do.
//!
//! Reload rules:
//! - files are taken in name order; a name given twice counts once (the last bytes given);
//! - a file that parses replaces that file's previous version;
//! - a file that fails keeps its previous good bytes, if any, and its error is reported;
//! - a file no longer given is gone, and so are its groups;
//! - a group URI (R86) defined by two files is an error for the later name; that file keeps its
//!   previous good version only if that one does not clash either, else it contributes nothing.
use crate::core::groups::document::{parse_with_lines, DocError, ListService};
use crate::core::groups::identity;
use crate::core::groups::policy::{self, Decision, Lists};
use std::collections::BTreeMap;

/// The list-services of every file in force, by group key (R86).
#[derive(Debug, Clone, Default)]
pub struct GroupSet {
    groups: BTreeMap<String, ListService>,
}

/// What a reload produced.
#[derive(Debug, Clone)]
pub struct Reload {
    pub set: GroupSet,
    /// The bytes now in force, per file, in name order: store them and pass them as `previous`
    /// to the next `build`.
    pub good: Vec<(String, Vec<u8>)>,
    /// Each refused file, by name, with why (its previous version may still be in force).
    pub errors: Vec<(String, DocError)>,
}

impl GroupSet {
    /// Builds the set from `files` (name, bytes), falling back per file on `previous` (the `good`
    /// of the last reload) as the module doc says.
    pub fn build(files: &[(String, Vec<u8>)], previous: &[(String, Vec<u8>)]) -> Reload {
        let files: BTreeMap<&str, &[u8]> = files
            .iter()
            .map(|(name, bytes)| (name.as_str(), bytes.as_slice()))
            .collect();
        let previous: BTreeMap<&str, &[u8]> = previous
            .iter()
            .map(|(name, bytes)| (name.as_str(), bytes.as_slice()))
            .collect();
        let mut reload = Reload {
            set: GroupSet::default(),
            good: Vec::new(),
            errors: Vec::new(),
        };
        // Which file defines each group key, for the clash message.
        let mut owners: BTreeMap<String, &str> = BTreeMap::new();
        for (&name, &bytes) in &files {
            let error = match parse_with_lines(bytes) {
                Ok(services) => match clash(&services, &owners) {
                    None => {
                        reload.take(name, bytes, services, &mut owners);
                        continue;
                    }
                    Some(error) => error,
                },
                Err(error) => error,
            };
            reload.errors.push((name.to_owned(), error));
            // Good bytes were good when stored; if they are not (or now clash), the file is out.
            let fallback = previous.get(name).and_then(|&old| {
                let services = parse_with_lines(old).ok()?;
                clash(&services, &owners)
                    .is_none()
                    .then_some((old, services))
            });
            if let Some((old, services)) = fallback {
                reload.take(name, old, services, &mut owners);
            }
        }
        reload
    }

    /// The list-service of a group, matched as R86 says.
    pub fn get(&self, group_uri: &str) -> Option<&ListService> {
        self.groups.get(&identity::key(group_uri)?)
    }

    /// R8 via R81-R85; None when no document defines the group.
    pub fn allow_conference_state(
        &self,
        group_uri: &str,
        aoia: &str,
        anonymous: bool,
        tel_sip_equivalence: bool,
    ) -> Option<Decision> {
        let service = self.get(group_uri)?;
        Some(policy::allow_conference_state(
            service,
            self,
            aoia,
            anonymous,
            tel_sip_equivalence,
        ))
    }

    /// R49/R88: the member's `rl:display-name` in the group's list (external lists included).
    pub fn display_name(
        &self,
        group_uri: &str,
        aoia: &str,
        tel_sip_equivalence: bool,
    ) -> Option<&str> {
        policy::display_name(self.get(group_uri)?, self, aoia, tel_sip_equivalence)
    }

    /// R88: `<max-participant-count>`, for `maximum-user-count` (R52).
    pub fn max_participant_count(&self, group_uri: &str) -> Option<u32> {
        self.get(group_uri)?.max_participant_count
    }

    /// Every group's URI as its document writes it, in key order.
    pub fn group_uris(&self) -> impl Iterator<Item = &str> {
        self.groups.values().map(|s| s.uri.as_str())
    }

    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

impl Lists for GroupSet {
    fn list(&self, uri: &str) -> Option<&ListService> {
        self.get(uri)
    }
}

/// R67: the groups of `old` that `new` no longer has (their sessions are to be released), as
/// `old` wrote them.
pub fn diff_removed(old: &GroupSet, new: &GroupSet) -> Vec<String> {
    old.groups
        .iter()
        .filter(|(key, _)| !new.groups.contains_key(*key))
        .map(|(_, service)| service.uri.clone())
        .collect()
}

impl Reload {
    fn take<'n>(
        &mut self,
        name: &'n str,
        bytes: &[u8],
        services: Vec<(ListService, usize)>,
        owners: &mut BTreeMap<String, &'n str>,
    ) {
        for (service, _) in services {
            let key = group_key(&service);
            owners.insert(key.clone(), name);
            self.set.groups.insert(key, service);
        }
        self.good.push((name.to_owned(), bytes.to_vec()));
    }
}

/// The first group of `services` that an earlier file already defines.
fn clash(services: &[(ListService, usize)], owners: &BTreeMap<String, &str>) -> Option<DocError> {
    services.iter().find_map(|(service, line)| {
        let owner = owners.get(&group_key(service))?;
        Some(DocError {
            line: *line,
            element: "list-service".into(),
            message: format!("group {} is already defined in {owner}", service.uri),
        })
    })
}

/// document.rs only accepts list-services whose uri has a key.
fn group_key(service: &ListService) -> String {
    identity::key(&service.uri).unwrap_or_else(|| service.uri.clone())
}
