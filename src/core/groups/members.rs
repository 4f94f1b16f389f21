//! The entries of one list-service by R86 identity (issue 18): a SUBSCRIBE's R8 check and a
//! participant's R49 name cost a hash lookup, not a parse of every entry of the group (a group of
//! 1000 members parsed 500 URIs per SUBSCRIBE on average).
use crate::core::groups::document::Entry;
use crate::core::groups::identity::Identity;
use std::collections::HashMap;

/// Entry positions (document order) by what R86 compares. An entry that is not a well-formed
/// URI is in neither map: it equals nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Members {
    /// By normalised key (`Identity::key`).
    by_key: HashMap<String, Vec<u32>>,
    /// By global number (`tel:+N`, `sip:+N@host;user=phone`), for `tel_sip_equivalence`.
    by_number: HashMap<String, Vec<u32>>,
}

impl Members {
    pub fn of(entries: &[Entry]) -> Self {
        let mut members = Members::default();
        for (i, entry) in entries.iter().enumerate() {
            let Some(id) = Identity::parse(&entry.uri) else {
                continue;
            };
            let i = i as u32;
            if let Some(number) = id.global_number() {
                members
                    .by_number
                    .entry(number.to_owned())
                    .or_default()
                    .push(i);
            }
            members
                .by_key
                .entry(id.key().to_owned())
                .or_default()
                .push(i);
        }
        members
    }

    /// Whether an entry is `aoia` (R86).
    pub fn contains(&self, aoia: &Identity, tel_sip_equivalence: bool) -> bool {
        self.by_key.contains_key(aoia.key())
            || (tel_sip_equivalence
                && aoia
                    .global_number()
                    .is_some_and(|n| self.by_number.contains_key(n)))
    }

    /// The positions of the entries that are `aoia` (R86), in document order.
    pub fn positions(&self, aoia: &Identity, tel_sip_equivalence: bool) -> Vec<usize> {
        let by_key = self.by_key.get(aoia.key()).into_iter().flatten();
        let by_number = tel_sip_equivalence
            .then(|| aoia.global_number().and_then(|n| self.by_number.get(n)))
            .flatten()
            .into_iter()
            .flatten();
        let mut out: Vec<usize> = by_key.chain(by_number).map(|&i| i as usize).collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}
