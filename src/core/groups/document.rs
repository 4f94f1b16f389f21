//! One OMA group document (R81-R88, docs/conformance.md): the root `<group>` and its `<list-service>` elements,
//! read with namespace resolution, so prefixes do not matter and only namespaces do.
//!
//! Strict where a wrong value would change a decision (required URIs, booleans, the count) and
//! lenient where the schema is extensible: unknown elements are skipped, except inside
//! `<cp:conditions>`, where an unknown one makes its rule never apply (R82, fail closed).
use crate::core::groups::identity;
use crate::core::groups::members::Members;
use crate::core::xml;

/// The root, `<list-service>` and its own children, the actions and `<is-list-member>`.
pub const LIST_SERVICE_NS: &str = "urn:oma:xml:poc:list-service";
/// `rl:display-name` of an entry (and `list`, `entry`, `external`, see `Ns::is_list`).
pub const RESOURCE_LISTS_NS: &str = "urn:ietf:params:xml:ns:resource-lists";
/// RFC 4745: ruleset, rule, conditions, actions, identity.
pub const COMMON_POLICY_NS: &str = "urn:ietf:params:xml:ns:common-policy";
/// OMA XDM extensions: external-list, other-identity, anonymous-request.
pub const OMA_COMMON_POLICY_NS: &str = "urn:oma:xml:xdm:common-policy";

/// One `<list-service>`: an IM group (R81-R88).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListService {
    /// The IM Group Identity, as written (a sip, sips or tel URI).
    pub uri: String,
    pub display_name: Option<String>,
    /// The `<entry>` elements of `<list>` (nested lists included), in document order.
    pub entries: Vec<Entry>,
    /// `entries` by identity (built with them by the parser).
    pub members: Members,
    /// The `anchor` of each `<external>` in `<list>`: other list-services, by their uri (R82).
    pub externals: Vec<String>,
    pub invite_members: Option<bool>,
    /// R88: feeds `maximum-user-count` (R52).
    pub max_participant_count: Option<u32>,
    pub rules: Vec<Rule>,
}

/// A member of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub uri: String,
    /// `rl:display-name`: the fallback Nick Name (R49, R88).
    pub display_name: Option<String>,
}

/// A `<cp:rule>` reduced to what this module uses (R81, R83).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub id: String,
    /// All must match (R81); empty or absent `<cp:conditions>` is an empty list: everyone.
    pub conditions: Vec<Condition>,
    /// `<allow-conference-state>`; None when the rule does not carry it (R85).
    pub allow_conference_state: Option<bool>,
}

/// R82: the recognised conditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// `<is-list-member/>` (or with content `true`).
    IsListMember,
    /// `<cp:identity>`: the AOIA is one of `ones` or falls under one of `many`.
    Identity {
        ones: Vec<String>,
        many: Vec<Many>,
    },
    /// `<ocp:external-list>`: the `anc` of each `<ocp:entry>`.
    ExternalList(Vec<String>),
    OtherIdentity,
    AnonymousRequest,
    /// Anything else, as `{namespace}name`: the rule never applies (fail closed).
    Unknown(String),
}

/// `<cp:many domain?>`: every identity (of the domain), minus the exceptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Many {
    pub domain: Option<String>,
    pub excepts: Vec<Except>,
}

/// `<cp:except id? domain?>`: a user, or a whole domain, left out of `<cp:many>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Except {
    pub id: Option<String>,
    pub domain: Option<String>,
}

/// Why a document was refused: where (1-based line of the element's start tag, or of the syntax
/// error), which element (local name; empty when the error is outside any element) and why.
pub use crate::core::xml::XmlError as DocError;

/// An element of a group document, its namespace told apart as `Ns`.
type Element = xml::Element<Ns>;

/// Reads one group document: every `<list-service>` of its `<group>`.
pub fn parse_document(bytes: &[u8]) -> Result<Vec<ListService>, DocError> {
    Ok(parse_with_lines(bytes)?
        .into_iter()
        .map(|(service, _)| service)
        .collect())
}

/// `parse_document`, with the line of each `<list-service>` (set.rs names it in clash errors).
pub(crate) fn parse_with_lines(bytes: &[u8]) -> Result<Vec<(ListService, usize)>, DocError> {
    group(&xml::read_tree(bytes, Ns::classify)?)
}

/// The namespaces the document is read in; the rest only need to be told apart.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ns {
    ListService,
    ResourceLists,
    CommonPolicy,
    OmaCommonPolicy,
    /// No namespace (only with `xmlns=""`, since the root sets a default one).
    None,
    Other(String),
}

impl Ns {
    fn classify(ns: xml::Namespace<'_>) -> Ns {
        ns.map_or(Ns::None, Ns::of)
    }

    fn of(uri: &[u8]) -> Ns {
        match uri {
            u if u == LIST_SERVICE_NS.as_bytes() => Ns::ListService,
            u if u == RESOURCE_LISTS_NS.as_bytes() => Ns::ResourceLists,
            u if u == COMMON_POLICY_NS.as_bytes() => Ns::CommonPolicy,
            u if u == OMA_COMMON_POLICY_NS.as_bytes() => Ns::OmaCommonPolicy,
            u => Ns::Other(String::from_utf8_lossy(u).into_owned()),
        }
    }

    /// `<list>`, `<entry>`, `<external>` and an entry's `<display-name>`: the group schema puts
    /// `<list>` in its own namespace with the resource-lists type, and documents in the wild write
    /// its content in either namespace, so both are read.
    fn is_list(&self) -> bool {
        matches!(self, Ns::ListService | Ns::ResourceLists)
    }

    /// The actions and `<is-list-member>` belong to the list-service namespace; an element with no
    /// namespace at all can only mean the same thing, so it is read too.
    fn is_oma(&self) -> bool {
        matches!(self, Ns::ListService | Ns::None)
    }

    fn uri(&self) -> &str {
        match self {
            Ns::ListService => LIST_SERVICE_NS,
            Ns::ResourceLists => RESOURCE_LISTS_NS,
            Ns::CommonPolicy => COMMON_POLICY_NS,
            Ns::OmaCommonPolicy => OMA_COMMON_POLICY_NS,
            Ns::None => "",
            Ns::Other(uri) => uri,
        }
    }
}

fn group(root: &Element) -> Result<Vec<(ListService, usize)>, DocError> {
    if !root.is(&Ns::ListService, "group") {
        return Err(root.error(format!(
            "the root must be <group> in namespace {LIST_SERVICE_NS}, not <{}> in {:?}",
            root.name,
            root.ns.uri()
        )));
    }
    let mut services: Vec<(ListService, usize)> = Vec::new();
    for child in &root.children {
        if !child.is(&Ns::ListService, "list-service") {
            continue;
        }
        let service = list_service(child)?;
        // Two definitions of one group in a document: which one is meant cannot be guessed.
        let key = identity::key(&service.uri);
        if let Some((_, line)) = services.iter().find(|(s, _)| identity::key(&s.uri) == key) {
            return Err(child.error(format!(
                "group {} is already defined at line {line}",
                service.uri
            )));
        }
        services.push((service, child.line));
    }
    if services.is_empty() {
        return Err(root.error("no <list-service>"));
    }
    Ok(services)
}

fn list_service(el: &Element) -> Result<ListService, DocError> {
    let uri = el.required_attr("uri")?;
    if identity::key(uri).is_none() {
        return Err(el.error(format!("uri {uri:?} is not a sip, sips or tel URI")));
    }
    let mut service = ListService {
        uri: uri.to_owned(),
        display_name: None,
        entries: Vec::new(),
        members: Members::default(),
        externals: Vec::new(),
        invite_members: None,
        max_participant_count: None,
        rules: Vec::new(),
    };
    let mut seen_ruleset = false;
    for child in &el.children {
        match (&child.ns, child.name.as_str()) {
            // Several display names (one per xml:lang) are allowed: the first one is used.
            (Ns::ListService, "display-name") => {
                service
                    .display_name
                    .get_or_insert_with(|| child.value().to_owned());
            }
            (Ns::ListService, "list") => list(child, &mut service)?,
            (Ns::ListService, "invite-members") => {
                once(&mut service.invite_members, child, boolean(child)?)?
            }
            (Ns::ListService, "max-participant-count") => {
                once(&mut service.max_participant_count, child, count(child)?)?
            }
            (Ns::CommonPolicy, "ruleset") => {
                if seen_ruleset {
                    return Err(child.error("appears twice in <list-service>"));
                }
                seen_ruleset = true;
                service.rules = ruleset(child)?;
            }
            // Other list-service children (owner, supported-services, ...) do not concern R8.
            _ => {}
        }
    }
    service.members = Members::of(&service.entries);
    Ok(service)
}

/// `<list>` and nested lists: members and `<external>` references, in document order.
fn list(el: &Element, service: &mut ListService) -> Result<(), DocError> {
    for child in el.children.iter().filter(|c| c.ns.is_list()) {
        match child.name.as_str() {
            "entry" => {
                let uri = child.required_attr("uri")?.to_owned();
                let display_name = child
                    .children
                    .iter()
                    .find(|c| c.ns.is_list() && c.name == "display-name")
                    .map(|d| d.value().to_owned());
                service.entries.push(Entry { uri, display_name });
            }
            "external" => service
                .externals
                .push(child.required_attr("anchor")?.to_owned()),
            "list" => list(child, service)?,
            // entry-ref points into a user's XCAP tree, which this module cannot read.
            _ => {}
        }
    }
    Ok(())
}

fn ruleset(el: &Element) -> Result<Vec<Rule>, DocError> {
    let mut rules: Vec<Rule> = Vec::new();
    for child in el.children.iter() {
        if !child.is(&Ns::CommonPolicy, "rule") {
            continue;
        }
        let rule = rule(child)?;
        // RFC 4745: the id names the rule uniquely within the ruleset.
        if rules.iter().any(|r| r.id == rule.id) {
            return Err(child.error(format!("rule id {:?} appears twice", rule.id)));
        }
        rules.push(rule);
    }
    Ok(rules)
}

fn rule(el: &Element) -> Result<Rule, DocError> {
    let mut rule = Rule {
        id: el.required_attr("id")?.to_owned(),
        conditions: Vec::new(),
        allow_conference_state: None,
    };
    let (mut seen_conditions, mut seen_actions) = (false, false);
    for child in el.children.iter().filter(|c| c.ns == Ns::CommonPolicy) {
        match child.name.as_str() {
            "conditions" => {
                if std::mem::replace(&mut seen_conditions, true) {
                    return Err(child.error("appears twice in <rule>"));
                }
                // R81: no children, no condition: the rule applies to everyone.
                rule.conditions = child
                    .children
                    .iter()
                    .map(condition)
                    .collect::<Result<_, _>>()?;
            }
            "actions" => {
                if std::mem::replace(&mut seen_actions, true) {
                    return Err(child.error("appears twice in <rule>"));
                }
                rule.allow_conference_state = actions(child)?;
            }
            // R81: transformations do not concern conference state.
            _ => {}
        }
    }
    Ok(rule)
}

/// R82: one child of `<cp:conditions>`.
fn condition(el: &Element) -> Result<Condition, DocError> {
    let unknown = || Condition::Unknown(clark(el));
    Ok(match (&el.ns, el.name.as_str()) {
        // [ENG] An early draft wrote `true` as content; any other content is not understood.
        (ns, "is-list-member") if ns.is_oma() => match el.value() {
            "" | "true" => Condition::IsListMember,
            _ => unknown(),
        },
        (Ns::CommonPolicy, "identity") => return identity(el),
        (Ns::OmaCommonPolicy, "external-list") => {
            let mut ancs = Vec::new();
            for entry in &el.children {
                if !entry.is(&Ns::OmaCommonPolicy, "entry") {
                    return Ok(unknown());
                }
                ancs.push(entry.required_attr("anc")?.to_owned());
            }
            Condition::ExternalList(ancs)
        }
        (Ns::OmaCommonPolicy, "other-identity") => Condition::OtherIdentity,
        (Ns::OmaCommonPolicy, "anonymous-request") => Condition::AnonymousRequest,
        _ => unknown(),
    })
}

/// RFC 4745 §7.1. An extension inside `<cp:identity>` could narrow it in ways not understood
/// here, so the whole condition is then unknown (fail closed).
fn identity(el: &Element) -> Result<Condition, DocError> {
    let (mut ones, mut many) = (Vec::new(), Vec::new());
    for child in &el.children {
        match (&child.ns, child.name.as_str()) {
            (Ns::CommonPolicy, "one") => ones.push(child.required_attr("id")?.to_owned()),
            (Ns::CommonPolicy, "many") => {
                let mut excepts = Vec::new();
                for except in &child.children {
                    if !except.is(&Ns::CommonPolicy, "except") {
                        return Ok(Condition::Unknown(clark(except)));
                    }
                    excepts.push(Except {
                        id: except.attr("id").map(str::to_owned),
                        domain: except.attr("domain").map(str::to_owned),
                    });
                }
                many.push(Many {
                    domain: child.attr("domain").map(str::to_owned),
                    excepts,
                });
            }
            _ => return Ok(Condition::Unknown(clark(child))),
        }
    }
    Ok(Condition::Identity { ones, many })
}

/// R83: the actions this module reads; the other recognised ones are checked and ignored, and
/// unknown ones are ignored.
fn actions(el: &Element) -> Result<Option<bool>, DocError> {
    let mut allow = None;
    for child in el.children.iter().filter(|c| c.ns.is_oma()) {
        match child.name.as_str() {
            "allow-conference-state" => once(&mut allow, child, boolean(child)?)?,
            // Drafts before 2006 wrote allow/block (R83).
            "join-handling" if matches!(child.value(), "allow" | "block") => {}
            "join-handling"
            | "allow-invite-users-dynamically"
            | "allow-initiate-conference"
            | "allow-anonymity"
            | "is-key-participant" => {
                boolean(child)?;
            }
            _ => {}
        }
    }
    Ok(allow)
}

/// Sets a value that may appear once.
fn once<T>(slot: &mut Option<T>, el: &Element, value: T) -> Result<(), DocError> {
    if slot.replace(value).is_some() {
        return Err(el.error("appears twice"));
    }
    Ok(())
}

/// R83: xs:boolean.
fn boolean(el: &Element) -> Result<bool, DocError> {
    match el.value() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(el.error("not a boolean (true, false, 1 or 0)")),
    }
}

/// xs:nonNegativeInteger, within u32.
fn count(el: &Element) -> Result<u32, DocError> {
    let value = el.value();
    let digits = value.strip_prefix('+').unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(el.error("not a non-negative integer"));
    }
    digits
        .parse()
        .map_err(|_| el.error(format!("larger than {}", u32::MAX)))
}

/// `{namespace}name`, or just `name` with no namespace.
fn clark(el: &Element) -> String {
    match el.ns {
        Ns::None => el.name.clone(),
        ref ns => format!("{{{}}}{}", ns.uri(), el.name),
    }
}
