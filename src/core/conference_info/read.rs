//! The strict reader (quick-xml): what tests and the fuzzers use to check what the writer and
//! the notifier produce.
use super::*;
use crate::core::xml;
use std::collections::HashSet;

/// A conference-info document as the strict reader found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedDocument {
    pub entity: String,
    pub state: String,
    pub version: u32,
    /// R52, R93: whether a `conference-description` is present (possibly empty).
    pub description: bool,
    /// R93, R95: `conference-description/subject`, if present.
    pub subject: Option<String>,
    /// R52: `conference-description/maximum-user-count`, if present.
    pub maximum_user_count: Option<u32>,
    /// R52: `conference-state/user-count`, if present.
    pub user_count: Option<u32>,
    pub users_state: Option<String>,
    pub users: Vec<ParsedUser>,
}

/// One `user` as the strict reader found it; `state` is "full" when the attribute is absent
/// (the schema default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedUser {
    pub entity: String,
    pub state: String,
    pub display_text: Option<String>,
    pub endpoint_entity: String,
    pub status: String,
    /// R52: `endpoint/disconnection-method`, if present.
    pub disconnection_method: Option<String>,
    /// R91: `endpoint/disconnection-info/reason`, if present.
    pub disconnection_reason: Option<String>,
    /// R95: `yourown="true"` (the subscriber's own entry, RCS).
    pub yourown: bool,
    /// R95: the entries of `roles` (`chairman`), in order.
    pub roles: Vec<String>,
    /// R95: `endpoint/joining-info/when` and `endpoint/disconnection-info/when`, if present.
    pub joined_at: Option<String>,
    pub left_at: Option<String>,
}

/// A strict reader used by tests (unit, property and the lead's notifier tests) to check RFC 4575
/// structure: root name and namespace, required attributes, state values, version an unsigned 32-bit
/// integer, `users` as the only child apart from R52's optional `conference-description` (holding
/// only `maximum-user-count`) and `conference-state` (holding only `user-count`) before it, each
/// `user` with an absolute-URI entity, unique entities, exactly one `endpoint` with entity and a
/// `status` child, child order of R53, status one of the RFC 4575 endpoint-status values,
/// `disconnection-method` one of RFC 4575's and `disconnection-info` an execution-type (`when`,
/// `reason`, `by`). Returns a description of the first violation.
pub fn parse(xml: &[u8]) -> Result<ParsedDocument, String> {
    let root = read_tree(xml)?;
    if root.name != "conference-info" {
        return Err(format!("root is <{}>, not <conference-info>", root.name));
    }
    check_element(&root, &["entity", "state", "version"])?;
    let entity = required_attr(&root, "entity")?;
    if !is_absolute_uri(entity) {
        return Err(format!("root entity {entity:?} is not an absolute URI"));
    }
    // R44: state and version are always written, so the reader requires them.
    let state = state_attr(&root)?.ok_or("root has no state attribute")?;
    let version = required_attr(&root, "version")?;
    let version = parse_u32(version).ok_or(format!(
        "version {version:?} is not an unsigned 32-bit integer"
    ))?;
    no_text(&root)?;

    // R47/R52: users is the one child, after R52's optional counts in schema order (R53); the
    // other RFC 4575 children (host-info, sidebars) are never written.
    check_order(&root, ROOT_CHILDREN, &[])?;
    let users = child(&root, "users").ok_or("<conference-info> has no <users>")?;
    let description = child(&root, "conference-description");
    let (subject, maximum_user_count) = match description {
        Some(d) => read_description(d)?,
        None => (None, None),
    };
    let user_count = match child(&root, "conference-state") {
        Some(c) => Some(count_child(c, "user-count")?),
        None => None,
    };
    check_element(users, &["state"])?;
    no_text(users)?;
    let users_state = state_attr(users)?;

    let mut seen = HashSet::new();
    let mut parsed_users = Vec::with_capacity(users.children.len());
    for user in &users.children {
        if user.name != "user" {
            return Err(format!("<users> contains <{}>", user.name));
        }
        let parsed = parse_user(user)?;
        if !seen.insert(parsed.entity.clone()) {
            return Err(format!(
                "user entity {:?} appears twice (R48)",
                parsed.entity
            ));
        }
        parsed_users.push(parsed);
    }
    Ok(ParsedDocument {
        entity: entity.to_owned(),
        state,
        version,
        description: description.is_some(),
        subject,
        maximum_user_count,
        user_count,
        users_state,
        users: parsed_users,
    })
}

const STATES: &[&str] = &["full", "partial", "deleted"];

/// R47, R52: the children of `conference-info` this module writes, in schema order.
const ROOT_CHILDREN: &[&str] = &["conference-description", "conference-state", "users"];

/// RFC 4575 endpoint-status-type.
const ENDPOINT_STATUSES: &[&str] = &[
    "pending",
    "dialing-out",
    "dialing-in",
    "alerting",
    "on-hold",
    "connected",
    "muted-via-focus",
    "disconnecting",
    "disconnected",
];

/// R53: children of `user`, in schema order, each at most once.
const USER_CHILDREN: &[&str] = &[
    "display-text",
    "associated-aors",
    "roles",
    "languages",
    "cascaded-focus",
    "endpoint",
];

/// R53: children of `endpoint`, in schema order; only `media` may repeat.
const ENDPOINT_CHILDREN: &[&str] = &[
    "display-text",
    "referred",
    "status",
    "joining-method",
    "joining-info",
    "disconnection-method",
    "disconnection-info",
    "media",
    "call-info",
];

fn parse_user(user: &Element) -> Result<ParsedUser, String> {
    let entity = required_attr(user, "entity")?;
    parse_user_content(user, entity).map_err(|e| format!("user {entity:?}: {e}"))
}

fn parse_user_content(user: &Element, entity: &str) -> Result<ParsedUser, String> {
    check_element(user, &["entity", "state", "yourown"])?;
    if !is_absolute_uri(entity) {
        return Err("entity is not an absolute URI (R56)".into());
    }
    let state = state_attr(user)?.unwrap_or_else(|| "full".into());
    let yourown = match user.attr("yourown") {
        None => false,
        Some("true") => true,
        Some(v) => return Err(format!("yourown={v:?}: only \"true\" is written (R95)")),
    };
    no_text(user)?;
    if state == "deleted" && user.children.is_empty() {
        // R58: a removed user carries nothing but its key (R95's removal by the chairman
        // keeps its endpoint, read below)
        return Ok(ParsedUser {
            entity: entity.to_owned(),
            state,
            display_text: None,
            endpoint_entity: String::new(),
            status: String::new(),
            disconnection_method: None,
            disconnection_reason: None,
            yourown,
            roles: Vec::new(),
            joined_at: None,
            left_at: None,
        });
    }
    check_order(user, USER_CHILDREN, &[])?;
    let display_text = match child(user, "display-text") {
        Some(d) => Some(leaf_text(d)?.to_owned()),
        None => None,
    };

    // R95: roles, each entry a token (`chairman` is what is written)
    let roles = match child(user, "roles") {
        Some(r) => {
            check_element(r, &[])?;
            no_text(r)?;
            let mut entries = Vec::new();
            for e in &r.children {
                if e.name != "entry" {
                    return Err(format!("<roles> contains <{}>", e.name));
                }
                entries.push(leaf_text(e)?.to_owned());
            }
            entries
        }
        None => Vec::new(),
    };
    // R50: exactly one endpoint (the order check already rules out a second one).
    let endpoint = child(user, "endpoint").ok_or("no <endpoint> (R50)")?;
    check_element(endpoint, &["entity", "state"])?;
    let endpoint_entity = required_attr(endpoint, "entity")?;
    state_attr(endpoint)?;
    no_text(endpoint)?;
    check_order(endpoint, ENDPOINT_CHILDREN, &["media"])?;
    if let Some(d) = child(endpoint, "display-text") {
        leaf_text(d)?;
    }
    let status = child(endpoint, "status").ok_or("endpoint has no <status> (R51)")?;
    let status = leaf_text(status)?;
    if !ENDPOINT_STATUSES.contains(&status) {
        return Err(format!(
            "status {status:?} is not an RFC 4575 endpoint status"
        ));
    }
    let joining = ["dialed-in", "dialed-out", "focus-owner"];
    check_enum_child(endpoint, "joining-method", &joining)?;
    let disconnection = ["departed", "booted", "failed", "busy"];
    check_enum_child(endpoint, "disconnection-method", &disconnection)?;
    let disconnection_method = match child(endpoint, "disconnection-method") {
        Some(m) => Some(leaf_text(m)?.to_owned()),
        None => None,
    };
    let (left_at, disconnection_reason) = match child(endpoint, "disconnection-info") {
        Some(info) => execution(info)?,
        None => (None, None),
    };
    let (joined_at, _) = match child(endpoint, "joining-info") {
        Some(info) => execution(info)?,
        None => (None, None),
    };
    Ok(ParsedUser {
        entity: entity.to_owned(),
        state,
        display_text,
        endpoint_entity: endpoint_entity.to_owned(),
        status: status.to_owned(),
        disconnection_method,
        disconnection_reason,
        yourown,
        roles,
        joined_at,
        left_at,
    })
}

/// `conference-description`: empty (R93), or `subject` (R95) then `maximum-user-count` (R52),
/// each optional, nothing else.
fn read_description(d: &Element) -> Result<(Option<String>, Option<u32>), String> {
    check_element(d, &[])?;
    no_text(d)?;
    check_order(d, &["subject", "maximum-user-count"], &[])?;
    let subject = match child(d, "subject") {
        Some(s) => Some(leaf_text(s)?.to_owned()),
        None => None,
    };
    let max = match child(d, "maximum-user-count") {
        Some(m) => {
            let text = leaf_text(m)?;
            Some(parse_u32(text).ok_or(format!(
                "<maximum-user-count> {text:?} is not an unsigned 32-bit integer"
            ))?)
        }
        None => None,
    };
    Ok((subject, max))
}

/// RFC 4575 `execution-type` (`when`, `reason`, `by`, each optional, in this order): the time
/// (an RFC 3339 date-time, R95) and the reason.
fn execution(info: &Element) -> Result<(Option<String>, Option<String>), String> {
    check_element(info, &[])?;
    no_text(info)?;
    check_order(info, &["when", "reason", "by"], &[])?;
    for c in &info.children {
        leaf_text(c)?;
    }
    let when = match child(info, "when") {
        Some(w) if is_rfc3339(&w.text) => Some(w.text.clone()),
        Some(w) => return Err(format!("<when> {:?} is not an RFC 3339 date-time", w.text)),
        None => None,
    };
    Ok((when, child(info, "reason").map(|r| r.text.clone())))
}

/// `YYYY-MM-DDTHH:MM:SS`, optional fraction, then `Z` or an offset (what xs:dateTime needs here).
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && (s.ends_with('Z') || s[19..].contains(['+', '-']))
}

/// An element of the document; `ns`: whether it is in the conference-info namespace.
type Element = xml::Element<bool>;

/// Reads the whole document into a tree (core::xml), then checks that every element is in the
/// conference-info namespace (R44: the writer emits no extensions).
fn read_tree(bytes: &[u8]) -> Result<Element, String> {
    let root =
        xml::read_tree(bytes, |ns| ns == Some(NAMESPACE.as_bytes())).map_err(|e| e.to_string())?;
    in_namespace(&root)?;
    Ok(root)
}

fn in_namespace(el: &Element) -> Result<(), String> {
    if !el.ns {
        return Err(format!(
            "<{}> is not in namespace {NAMESPACE} (R44)",
            el.name
        ));
    }
    el.children.iter().try_for_each(in_namespace)
}

fn is_xml_space(s: &str) -> bool {
    s.chars().all(xml::is_xml_space)
}

/// Rejects unprefixed attributes the schema does not define for this element.
fn check_element(el: &Element, known_attrs: &[&str]) -> Result<(), String> {
    match el
        .attrs
        .iter()
        .find(|(k, _)| !known_attrs.contains(&k.as_str()))
    {
        Some((k, _)) => Err(format!("<{}> has unknown attribute {k:?}", el.name)),
        None => Ok(()),
    }
}

fn required_attr<'e>(el: &'e Element, name: &str) -> Result<&'e str, String> {
    el.attr(name)
        .ok_or_else(|| format!("<{}> has no {name} attribute", el.name))
}

fn state_attr(el: &Element) -> Result<Option<String>, String> {
    match el.attr("state") {
        Some(s) if STATES.contains(&s) => Ok(Some(s.to_owned())),
        Some(s) => Err(format!(
            "<{}> state {s:?} is not full/partial/deleted",
            el.name
        )),
        None => Ok(None),
    }
}

fn no_text(el: &Element) -> Result<(), String> {
    if is_xml_space(&el.text) {
        Ok(())
    } else {
        Err(format!("<{}> holds text {:?}", el.name, el.text))
    }
}

/// The text of an element that may hold only text.
fn leaf_text(el: &Element) -> Result<&str, String> {
    check_element(el, &[])?;
    match el.children.first() {
        Some(c) => Err(format!("<{}> contains <{}>", el.name, c.name)),
        None => Ok(&el.text),
    }
}

fn child<'e>(el: &'e Element, name: &str) -> Option<&'e Element> {
    el.children.iter().find(|c| c.name == name)
}

/// R53: children appear in `order`, each at most once except those in `repeatable`.
fn check_order(el: &Element, order: &[&str], repeatable: &[&str]) -> Result<(), String> {
    let mut last: Option<usize> = None;
    for c in &el.children {
        let name = c.name.as_str();
        let pos = order
            .iter()
            .position(|&n| n == name)
            .ok_or_else(|| format!("<{}> may not contain <{name}>", el.name))?;
        let repeated_ok = last == Some(pos) && repeatable.contains(&name);
        if last.is_some_and(|l| l >= pos) && !repeated_ok {
            return Err(format!(
                "<{name}> is out of order or repeated in <{}> (R53)",
                el.name
            ));
        }
        last = Some(pos);
    }
    Ok(())
}

fn check_enum_child(el: &Element, name: &str, allowed: &[&str]) -> Result<(), String> {
    match child(el, name) {
        Some(c) => {
            let value = leaf_text(c)?;
            if allowed.contains(&value) {
                Ok(())
            } else {
                Err(format!("<{name}> {value:?} is not one of {allowed:?}"))
            }
        }
        None => Ok(()),
    }
}

/// R52: `el` holds exactly one child, `name`, an `xs:unsignedInt` (the only count the writer puts
/// in a `conference-description` or `conference-state`).
fn count_child(el: &Element, name: &str) -> Result<u32, String> {
    check_element(el, &[])?;
    no_text(el)?;
    match el.children.as_slice() {
        [c] if c.name == name => {
            let text = leaf_text(c)?;
            parse_u32(text).ok_or(format!(
                "<{name}> {text:?} is not an unsigned 32-bit integer"
            ))
        }
        [] => Err(format!("<{}> has no <{name}>", el.name)),
        [c, ..] => Err(format!(
            "<{}> may contain only <{name}>, not <{}>",
            el.name, c.name
        )),
    }
}

/// RFC 3986 absolute URI, as far as a test needs: a scheme, a colon, and a non-empty rest without
/// whitespace or control characters.
fn is_absolute_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut scheme = scheme.bytes();
    scheme.next().is_some_and(|b| b.is_ascii_alphabetic())
        && scheme.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        && !rest.is_empty()
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// `xs:unsignedInt` as the writer emits it: decimal digits only.
fn parse_u32(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}
