//! R81-R85, R88: what a group document decides for one subscriber, and what it says about a member.
//!
//! Identity-type conditions, for `<ocp:other-identity>` (R82): `<cp:identity>`,
//! `<is-list-member>`, `<ocp:external-list>` and `<ocp:anonymous-request>`. Each one counts when
//! the condition itself matches this request, whether or not the rest of its rule does: a
//! subscriber a rule names is never "other", so a catch-all cannot hand them what their own rule
//! withholds. `anonymous-request` counts so that a rule for anonymous requests is not undone by a
//! catch-all grant (OMA's presence defaults pair the two that way).
use crate::core::groups::document::{Condition, Except, ListService, Many, Rule};
use crate::core::groups::identity::{self, Identity};

/// The outcome of R84/R85 for `<allow-conference-state>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
}

/// Where `<external anchor>` and `<ocp:entry anc>` references resolve (R82): list-services by
/// their uri, compared as R86 says.
pub trait Lists {
    fn list(&self, uri: &str) -> Option<&ListService>;
}

/// No other list-services: external references resolve to nothing.
pub struct NoLists;

impl Lists for NoLists {
    fn list(&self, _: &str) -> Option<&ListService> {
        None
    }
}

/// R81-R85 for `aoia` (the subscriber's asserted identity) subscribing to `service`'s sessions;
/// `anonymous` says whether the SUBSCRIBE requested privacy.
pub fn allow_conference_state<L: Lists + ?Sized>(
    service: &ListService,
    lists: &L,
    aoia: &str,
    anonymous: bool,
    tel_sip_equivalence: bool,
) -> Decision {
    let request = Request {
        lists,
        aoia: Identity::parse(aoia),
        anonymous,
        tel_sip_equivalence,
    };
    let named: Vec<bool> = service
        .rules
        .iter()
        .map(|rule| request.names(service, rule))
        .collect();
    let applicable = service.rules.iter().enumerate().filter(|(i, rule)| {
        // R81: every condition must match.
        rule.conditions.iter().all(|c| match c {
            Condition::OtherIdentity => !named
                .iter()
                .enumerate()
                .any(|(other, &named)| other != *i && named),
            c => request.matches(service, c),
        })
    });
    // R84: true wins; R85: false or absent everywhere denies.
    let allowed = applicable
        .filter_map(|(_, rule)| rule.allow_conference_state)
        .any(|allow| allow);
    if allowed {
        Decision::Allow
    } else {
        Decision::Deny
    }
}

/// R49/R88: the `rl:display-name` of the first entry for `aoia` that has one, looking through
/// `<external>` lists after the service's own entries.
pub fn display_name<'a, L: Lists + ?Sized>(
    service: &'a ListService,
    lists: &'a L,
    aoia: &str,
    tel_sip_equivalence: bool,
) -> Option<&'a str> {
    let aoia = Identity::parse(aoia)?;
    let mut visited = Vec::new();
    display_name_in(service, lists, &aoia, tel_sip_equivalence, &mut visited)
}

fn display_name_in<'a, L: Lists + ?Sized>(
    service: &'a ListService,
    lists: &'a L,
    aoia: &Identity,
    equivalence: bool,
    visited: &mut Vec<String>,
) -> Option<&'a str> {
    if !first_visit(service, visited) {
        return None;
    }
    let own = service
        .members
        .positions(aoia, equivalence)
        .into_iter()
        .find_map(|i| service.entries[i].display_name.as_deref());
    own.or_else(|| {
        service.externals.iter().find_map(|anchor| {
            let list = lists.list(anchor)?;
            display_name_in(list, lists, aoia, equivalence, visited)
        })
    })
}

/// One subscription request, evaluated against one document.
struct Request<'l, L: ?Sized> {
    lists: &'l L,
    /// None when the AOIA is not a URI: then no identity-type condition matches.
    aoia: Option<Identity>,
    anonymous: bool,
    tel_sip_equivalence: bool,
}

impl<L: Lists + ?Sized> Request<'_, L> {
    /// Whether one of the rule's identity-type conditions matches (see the module doc).
    fn names(&self, service: &ListService, rule: &Rule) -> bool {
        rule.conditions.iter().any(|c| match c {
            Condition::IsListMember
            | Condition::Identity { .. }
            | Condition::ExternalList(_)
            | Condition::AnonymousRequest => self.matches(service, c),
            Condition::OtherIdentity | Condition::Unknown(_) => false,
        })
    }

    /// R82 for every condition but `other-identity`, which needs the whole ruleset.
    fn matches(&self, service: &ListService, condition: &Condition) -> bool {
        match (condition, &self.aoia) {
            (Condition::AnonymousRequest, _) => self.anonymous,
            (Condition::IsListMember, Some(aoia)) => self.member(aoia, service, &mut Vec::new()),
            (Condition::Identity { ones, many }, Some(aoia)) => {
                ones.iter().any(|id| self.is(aoia, id)) || many.iter().any(|m| self.under(aoia, m))
            }
            (Condition::ExternalList(anchors), Some(aoia)) => anchors.iter().any(|anchor| {
                self.lists
                    .list(anchor)
                    .is_some_and(|list| self.member(aoia, list, &mut Vec::new()))
            }),
            // No AOIA: no identity matches. Other-identity is the caller's; unknown fails closed.
            _ => false,
        }
    }

    /// R82 is-list-member: an entry of the list, or of the lists its `<external>` elements name,
    /// each list visited once (so a cycle ends).
    fn member(&self, aoia: &Identity, service: &ListService, visited: &mut Vec<String>) -> bool {
        if !first_visit(service, visited) {
            return false;
        }
        service.members.contains(aoia, self.tel_sip_equivalence)
            || service.externals.iter().any(|anchor| {
                self.lists
                    .list(anchor)
                    .is_some_and(|list| self.member(aoia, list, visited))
            })
    }

    /// RFC 4745 §7.1.2: `<many>` covers every identity (of its domain) but its exceptions. A tel
    /// identity has no domain: only a `<many>` without one covers it.
    fn under(&self, aoia: &Identity, many: &Many) -> bool {
        let in_domain = match &many.domain {
            Some(domain) => same_domain(aoia, domain),
            None => true,
        };
        in_domain && !many.excepts.iter().any(|e| self.excepted(aoia, e))
    }

    fn excepted(&self, aoia: &Identity, except: &Except) -> bool {
        except.id.as_ref().is_some_and(|id| self.is(aoia, id))
            || except
                .domain
                .as_ref()
                .is_some_and(|domain| same_domain(aoia, domain))
    }

    fn is(&self, aoia: &Identity, uri: &str) -> bool {
        is(aoia, uri, self.tel_sip_equivalence)
    }
}

/// R86 against a URI from the document.
fn is(aoia: &Identity, uri: &str, tel_sip_equivalence: bool) -> bool {
    Identity::parse(uri).is_some_and(|id| aoia.matches(&id, tel_sip_equivalence))
}

/// R86: hosts compare case-insensitively.
fn same_domain(aoia: &Identity, domain: &str) -> bool {
    aoia.host()
        .is_some_and(|host| host.eq_ignore_ascii_case(domain.trim()))
}

/// Records `service` as visited; false if it already was (an `<external>` cycle).
fn first_visit(service: &ListService, visited: &mut Vec<String>) -> bool {
    let key = identity::key(&service.uri).unwrap_or_else(|| service.uri.clone());
    if visited.contains(&key) {
        return false;
    }
    visited.push(key);
    true
}
