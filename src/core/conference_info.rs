//! The RFC 4575 conference-info body (R44-R56): a writer for the NOTIFY hot path and a strict reader
//! (quick-xml) that tests use to check what the writer and the notifier produce.
//!
//! The writer appends straight into the caller's buffer with its own escaping: that needs no
//! allocation per element, and it also handles what a generic escaper does not (bytes that are not
//! UTF-8, and characters XML 1.0 forbids even as references).
use quick_xml::escape::{resolve_xml_entity, unescape_with};
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::NsReader;
use std::collections::HashSet;

/// R44: the namespace of every element of the document.
pub const NAMESPACE: &str = "urn:ietf:params:xml:ns:conference-info";

/// R46: whether a document replaces the subscriber's view (`full`) or updates it (`partial`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocState {
    Full,
    Partial,
}

impl DocState {
    pub fn as_str(self) -> &'static str {
        match self {
            DocState::Full => "full",
            DocState::Partial => "partial",
        }
    }
}

/// R51: the endpoint statuses OMA IM defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointStatus {
    Connected,
    Disconnected,
    Alerting,
    /// R59: invited, no 180 yet; listed only with `report_dialing_out`.
    DialingOut,
}

impl EndpointStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointStatus::Connected => "connected",
            EndpointStatus::Disconnected => "disconnected",
            EndpointStatus::Alerting => "alerting",
            EndpointStatus::DialingOut => "dialing-out",
        }
    }
}

/// RFC 4575 `disconnection-type`: how an endpoint left (R52, R91).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectionMethod {
    /// It left on its own (BYE).
    Departed,
    /// It was removed from the session.
    Booted,
    /// An error, or a declined invitation (the SIP code goes into `disconnection-info/reason`).
    Failed,
    /// The invitee was busy.
    Busy,
}

impl DisconnectionMethod {
    pub fn parse(s: &[u8]) -> Option<Self> {
        Some(match s {
            b"departed" => DisconnectionMethod::Departed,
            b"booted" => DisconnectionMethod::Booted,
            b"failed" => DisconnectionMethod::Failed,
            b"busy" => DisconnectionMethod::Busy,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectionMethod::Departed => "departed",
            DisconnectionMethod::Booted => "booted",
            DisconnectionMethod::Failed => "failed",
            DisconnectionMethod::Busy => "busy",
        }
    }
}

/// One `user` element (R48-R51).
#[derive(Debug, Clone, Copy)]
pub struct UserEntry<'a> {
    /// R58: `<user entity=".." state="deleted"/>` (only `entity` is written).
    pub deleted: bool,
    pub entity: &'a [u8],
    /// R50: the user entity by default, the participant's Contact with `endpoint_entity=contact`.
    pub endpoint_entity: &'a [u8],
    pub display_text: Option<&'a [u8]>,
    pub status: EndpointStatus,
    /// R52, R91: `<disconnection-method>` (written after `<status>`, R53).
    pub disconnection_method: Option<DisconnectionMethod>,
    /// R91: `<disconnection-info><reason>` text such as `603 Decline` (after the method, R53).
    pub disconnection_reason: Option<&'a [u8]>,
}

/// A whole conference-info document (R44-R47).
#[derive(Debug, Clone, Copy)]
pub struct Document<'a> {
    pub entity: &'a [u8],
    pub state: DocState,
    pub version: u32,
    /// R52, R91: `<conference-description><maximum-user-count>`; None: no description.
    pub maximum_user_count: Option<u32>,
    /// R52, R91: `<conference-state><user-count>`; None: no conference-state.
    pub user_count: Option<u32>,
    pub users: &'a [UserEntry<'a>],
}

/// Appends the UTF-8 document to `out` (R44-R56), compact, straight into `out` (hot path):
/// - the XML declaration, then the root `conference-info` in the RFC 4575 namespace with `entity`,
///   `state` and `version` always written (R44);
/// - R52 optional children, in schema order before `users`: `conference-description` with
///   `maximum-user-count`, then `conference-state` with `user-count`;
/// - `users` (`<users/>` when empty, R47; `state="partial"` in a partial document, R54), each user
///   `state="full"` with optional `display-text` and exactly one `endpoint` (R50) holding `status`,
///   then optionally `disconnection-method` and `disconnection-info/reason` (R53 order);
/// - text and attributes escaped, bytes that are not UTF-8 replaced (R56).
pub fn write(doc: &Document<'_>, out: &mut Vec<u8>) {
    // One reservation sized for typical entries, so the pushes below rarely reallocate.
    let per_user: usize = doc
        .users
        .iter()
        .map(|u| {
            u.entity.len()
                + u.endpoint_entity.len()
                + u.display_text.map_or(0, <[u8]>::len)
                + u.disconnection_reason.map_or(0, |r| r.len() + 50)
                + u.disconnection_method.map_or(0, |_| 50)
                + 140
        })
        .sum();
    out.reserve(260 + doc.entity.len() + per_user);

    out.extend_from_slice(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<conference-info xmlns=\"");
    out.extend_from_slice(NAMESPACE.as_bytes());
    out.extend_from_slice(b"\" entity=\"");
    push_escaped(doc.entity, out);
    out.extend_from_slice(b"\" state=\"");
    out.extend_from_slice(doc.state.as_str().as_bytes());
    out.extend_from_slice(b"\" version=\"");
    push_decimal(doc.version, out);
    out.extend_from_slice(b"\">");

    // R52, R53: the optional counts come before `users`, in schema order.
    if let Some(max) = doc.maximum_user_count {
        out.extend_from_slice(b"<conference-description><maximum-user-count>");
        push_decimal(max, out);
        out.extend_from_slice(b"</maximum-user-count></conference-description>");
    }
    if let Some(count) = doc.user_count {
        out.extend_from_slice(b"<conference-state><user-count>");
        push_decimal(count, out);
        out.extend_from_slice(b"</user-count></conference-state>");
    }

    // R54: mark partial lists explicitly, so a strict reader cannot take the default ("full").
    let users_open: &[u8] = match doc.state {
        DocState::Full => b"<users",
        DocState::Partial => b"<users state=\"partial\"",
    };
    out.extend_from_slice(users_open);
    if doc.users.is_empty() {
        // R47: the one child is written even when there is nobody to list.
        out.extend_from_slice(b"/>");
    } else {
        out.push(b'>');
        for user in doc.users {
            push_user(user, out);
        }
        out.extend_from_slice(b"</users>");
    }
    out.extend_from_slice(b"</conference-info>\n");
}

/// R48-R54: a complete user (state="full", also inside partial documents), children in R53 order.
fn push_user(user: &UserEntry<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"<user entity=\"");
    push_escaped(user.entity, out);
    if user.deleted {
        out.extend_from_slice(b"\" state=\"deleted\"/>");
        return;
    }
    out.extend_from_slice(b"\" state=\"full\">");
    if let Some(text) = user.display_text {
        out.extend_from_slice(b"<display-text>");
        push_escaped(text, out);
        out.extend_from_slice(b"</display-text>");
    }
    // R50: exactly one endpoint; the caller chose its entity.
    out.extend_from_slice(b"<endpoint entity=\"");
    push_escaped(user.endpoint_entity, out);
    out.extend_from_slice(b"\" state=\"full\"><status>");
    out.extend_from_slice(user.status.as_str().as_bytes());
    out.extend_from_slice(b"</status>");
    // R53: disconnection-method, then disconnection-info (execution-type: when, reason, by)
    if let Some(method) = user.disconnection_method {
        out.extend_from_slice(b"<disconnection-method>");
        out.extend_from_slice(method.as_str().as_bytes());
        out.extend_from_slice(b"</disconnection-method>");
    }
    if let Some(reason) = user.disconnection_reason {
        out.extend_from_slice(b"<disconnection-info><reason>");
        push_escaped(reason, out);
        out.extend_from_slice(b"</reason></disconnection-info>");
    }
    out.extend_from_slice(b"</endpoint></user>");
}

/// R56: writes `raw` as XML character data, valid in both text and double-quoted attributes.
/// - `&`, `<`, `>`, `"` become entity references;
/// - tab, LF and CR become character references, so attribute-value normalisation and line-end
///   handling in the reader give back the same characters;
/// - bytes that are not UTF-8, other C0 controls, U+FFFE and U+FFFF (none of which XML 1.0 allows,
///   not even as references) become U+FFFD.
fn push_escaped(raw: &[u8], out: &mut Vec<u8>) {
    const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();
    for chunk in raw.utf8_chunks() {
        let valid = chunk.valid().as_bytes();
        let mut copied = 0;
        let mut i = 0;
        while i < valid.len() {
            let (replacement, width): (&[u8], usize) = match valid[i] {
                b'&' => (b"&amp;", 1),
                b'<' => (b"&lt;", 1),
                b'>' => (b"&gt;", 1),
                b'"' => (b"&quot;", 1),
                b'\t' => (b"&#9;", 1),
                b'\n' => (b"&#10;", 1),
                b'\r' => (b"&#13;", 1),
                0..=0x1f => (REPLACEMENT, 1),
                // U+FFFE / U+FFFF are EF BF BE / EF BF BF.
                0xef if matches!(valid.get(i + 1..i + 3), Some([0xbf, 0xbe | 0xbf])) => {
                    (REPLACEMENT, 3)
                }
                _ => {
                    i += 1;
                    continue;
                }
            };
            out.extend_from_slice(&valid[copied..i]);
            out.extend_from_slice(replacement);
            i += width;
            copied = i;
        }
        out.extend_from_slice(&valid[copied..]);
        if !chunk.invalid().is_empty() {
            out.extend_from_slice(REPLACEMENT);
        }
    }
}

fn push_decimal(mut n: u32, out: &mut Vec<u8>) {
    let mut digits = [0u8; 10];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// A conference-info document as the strict reader found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedDocument {
    pub entity: String,
    pub state: String,
    pub version: u32,
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
}

/// A strict reader used by tests (unit, property and the lead's notifier tests) to check RFC 4575
/// structure: root name and namespace, required attributes, state values, version an unsigned 32-bit
/// integer, `users` as the only child apart from R52's optional `conference-description` (holding
/// only `maximum-user-count`) and `conference-state` (holding only `user-count`) before it, each
/// `user` with an absolute-URI entity, unique entities, exactly one `endpoint` with entity and a
/// `status` child, child order of RULES.md R53, status one of the RFC 4575 endpoint-status values,
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
    let maximum_user_count = match child(&root, "conference-description") {
        Some(d) => Some(count_child(d, "maximum-user-count")?),
        None => None,
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
    check_element(user, &["entity", "state"])?;
    if !is_absolute_uri(entity) {
        return Err("entity is not an absolute URI (R56)".into());
    }
    let state = state_attr(user)?.unwrap_or_else(|| "full".into());
    no_text(user)?;
    if state == "deleted" {
        // R58: a removed user carries nothing but its key
        if user.children.is_empty() {
            return Ok(ParsedUser {
                entity: entity.to_owned(),
                state,
                display_text: None,
                endpoint_entity: String::new(),
                status: String::new(),
                disconnection_method: None,
                disconnection_reason: None,
            });
        }
        return Err("a deleted user has children".into());
    }
    check_order(user, USER_CHILDREN, &[])?;
    let display_text = match child(user, "display-text") {
        Some(d) => Some(leaf_text(d)?.to_owned()),
        None => None,
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
    let disconnection_reason = match child(endpoint, "disconnection-info") {
        Some(info) => execution_reason(info)?,
        None => None,
    };
    Ok(ParsedUser {
        entity: entity.to_owned(),
        state,
        display_text,
        endpoint_entity: endpoint_entity.to_owned(),
        status: status.to_owned(),
        disconnection_method,
        disconnection_reason,
    })
}

/// RFC 4575 `execution-type` (`when`, `reason`, `by`, each optional, in this order): the reason.
fn execution_reason(info: &Element) -> Result<Option<String>, String> {
    check_element(info, &[])?;
    no_text(info)?;
    check_order(info, &["when", "reason", "by"], &[])?;
    for c in &info.children {
        leaf_text(c)?;
    }
    Ok(child(info, "reason").map(|r| r.text.clone()))
}

/// An element of the document, reduced to what the checks need. Attributes are the unprefixed
/// ones (namespace declarations and `xml:lang`-style attributes are left out).
#[derive(Debug)]
struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Element>,
    text: String,
}

/// How deep `read_tree` lets elements nest; deeper input would overflow the stack when the tree
/// is dropped (regression test: tests/core_fuzz_parsers.rs, deep nesting).
const MAX_DEPTH: usize = 32;

/// Reads the whole document into a tree, checking well-formedness, the encoding, and that every
/// element is in the conference-info namespace (the writer emits no extensions).
fn read_tree(xml: &[u8]) -> Result<Element, String> {
    let xml = std::str::from_utf8(xml).map_err(|e| format!("document is not UTF-8: {e}"))?;
    let mut reader = NsReader::from_str(xml);
    reader.config_mut().enable_all_checks(true);
    let mut open: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut at_start = true;
    loop {
        let (in_namespace, event) = match reader.read_resolved_event() {
            Ok((ns, event)) => (
                ns == ResolveResult::Bound(Namespace(NAMESPACE.as_bytes())),
                event,
            ),
            Err(e) => return Err(format!("not well-formed XML: {e}")),
        };
        let mut text = None;
        match event {
            Event::Decl(decl) => {
                if !at_start {
                    return Err("XML declaration is not at the start".into());
                }
                if let Some(encoding) = decl.encoding() {
                    let encoding = encoding.map_err(|e| format!("bad XML declaration: {e}"))?;
                    if !encoding.eq_ignore_ascii_case(b"UTF-8") {
                        return Err("the XML declaration does not say UTF-8 (R44)".into());
                    }
                }
            }
            Event::Start(start) => {
                // the tree is dropped recursively: bound its depth (an RFC 4575 document is ~6 deep)
                if open.len() >= MAX_DEPTH {
                    return Err(format!("elements nested deeper than {MAX_DEPTH}"));
                }
                open.push(element(&start, in_namespace)?)
            }
            Event::Empty(start) => {
                let el = element(&start, in_namespace)?;
                attach(el, &mut open, &mut root)?;
            }
            Event::End(_) => {
                let el = open.pop().ok_or("end tag without start tag")?;
                attach(el, &mut open, &mut root)?;
            }
            Event::Text(t) => {
                text = Some(
                    t.xml10_content()
                        .map_err(|e| format!("bad text: {e}"))?
                        .into_owned(),
                );
            }
            Event::CData(c) => {
                text = Some(
                    c.decode()
                        .map_err(|e| format!("bad CDATA: {e}"))?
                        .into_owned(),
                );
            }
            Event::GeneralRef(r) => {
                let resolved = match r
                    .resolve_char_ref()
                    .map_err(|e| format!("bad reference: {e}"))?
                {
                    Some(c) => c.to_string(),
                    None => {
                        let name = r.decode().map_err(|e| format!("bad reference: {e}"))?;
                        resolve_xml_entity(&name)
                            .ok_or(format!("unknown entity &{name};"))?
                            .to_owned()
                    }
                };
                text = Some(resolved);
            }
            Event::DocType(_) => return Err("a DOCTYPE is not allowed".into()),
            Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
        if let Some(text) = text {
            check_chars(&text)?;
            match open.last_mut() {
                Some(el) => el.text.push_str(&text),
                None if is_xml_space(&text) => {}
                None => return Err(format!("text {text:?} outside the root element")),
            }
        }
        at_start = false;
    }
    if let Some(el) = open.last() {
        return Err(format!("<{}> is not closed", el.name));
    }
    root.ok_or_else(|| "no root element".into())
}

fn element(start: &BytesStart<'_>, in_namespace: bool) -> Result<Element, String> {
    let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
    if !in_namespace {
        return Err(format!("<{name}> is not in namespace {NAMESPACE} (R44)"));
    }
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| format!("<{name}>: bad attribute: {e}"))?;
        if attr.key.as_namespace_binding().is_some() || attr.key.prefix().is_some() {
            continue;
        }
        let key = String::from_utf8_lossy(attr.key.as_ref()).into_owned();
        let raw = std::str::from_utf8(&attr.value).map_err(|e| format!("<{name} {key}>: {e}"))?;
        // XML 1.0 §3.3.3: literal whitespace in an attribute value reads as a space.
        let normalised = raw.replace(['\t', '\n', '\r'], " ");
        let value = unescape_with(&normalised, resolve_xml_entity)
            .map_err(|e| format!("<{name} {key}>: {e}"))?
            .into_owned();
        check_chars(&value)?;
        attrs.push((key, value));
    }
    Ok(Element {
        name,
        attrs,
        children: Vec::new(),
        text: String::new(),
    })
}

fn attach(el: Element, open: &mut [Element], root: &mut Option<Element>) -> Result<(), String> {
    match open.last_mut() {
        Some(parent) => parent.children.push(el),
        None if root.is_none() => *root = Some(el),
        None => return Err(format!("second root element <{}>", el.name)),
    }
    Ok(())
}

/// XML 1.0 `Char`: what may appear in a document, literally or as a reference.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn check_chars(s: &str) -> Result<(), String> {
    match s.chars().find(|&c| !is_xml_char(c)) {
        Some(c) => Err(format!("character {c:?} is not allowed in XML")),
        None => Ok(()),
    }
}

fn is_xml_space(s: &str) -> bool {
    s.chars().all(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
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

fn attr<'e>(el: &'e Element, name: &str) -> Option<&'e str> {
    el.attrs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn required_attr<'e>(el: &'e Element, name: &str) -> Result<&'e str, String> {
    attr(el, name).ok_or_else(|| format!("<{}> has no {name} attribute", el.name))
}

fn state_attr(el: &Element) -> Result<Option<String>, String> {
    match attr(el, "state") {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn written(doc: &Document<'_>) -> String {
        let mut out = Vec::new();
        write(doc, &mut out);
        String::from_utf8(out).expect("the writer emits UTF-8")
    }

    fn user<'a>(
        entity: &'a str,
        display: Option<&'a str>,
        status: EndpointStatus,
    ) -> UserEntry<'a> {
        UserEntry {
            deleted: false,
            entity: entity.as_bytes(),
            endpoint_entity: entity.as_bytes(),
            display_text: display.map(str::as_bytes),
            status,
            disconnection_method: None,
            disconnection_reason: None,
        }
    }

    const GROUP: &[u8] = b"sip:hiking-team@im.example.net";

    /// RULES.md §5.4, first example (full state, version 1), verbatim.
    const EXAMPLE_FULL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<conference-info xmlns="urn:ietf:params:xml:ns:conference-info"
                 entity="sip:hiking-team@im.example.net" state="full" version="1">
  <users>
    <user entity="sip:+15550100@example.net" state="full">
      <display-text>Ana</display-text>
      <endpoint entity="sip:+15550100@example.net" state="full">
        <status>connected</status>
      </endpoint>
    </user>
    <user entity="sip:anonymous1@anonymous.invalid" state="full">
      <endpoint entity="sip:anonymous1@anonymous.invalid" state="full">
        <status>connected</status>
      </endpoint>
    </user>
    <user entity="tel:+15550102" state="full">
      <display-text>Raj</display-text>
      <endpoint entity="tel:+15550102" state="full">
        <status>alerting</status>
      </endpoint>
    </user>
  </users>
</conference-info>
"#;

    /// RULES.md §5.4, second example (partial state, version 2), verbatim.
    const EXAMPLE_PARTIAL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<conference-info xmlns="urn:ietf:params:xml:ns:conference-info"
                 entity="sip:hiking-team@im.example.net" state="partial" version="2">
  <users state="partial">
    <user entity="tel:+15550102" state="full">
      <display-text>Raj</display-text>
      <endpoint entity="tel:+15550102" state="full">
        <status>connected</status>
      </endpoint>
    </user>
    <user entity="sip:+15550100@example.net" state="full">
      <display-text>Ana</display-text>
      <endpoint entity="sip:+15550100@example.net" state="full">
        <status>disconnected</status>
      </endpoint>
    </user>
  </users>
</conference-info>
"#;

    #[test]
    fn s5_4_full_example_is_reproduced() {
        let users = [
            user(
                "sip:+15550100@example.net",
                Some("Ana"),
                EndpointStatus::Connected,
            ),
            user(
                "sip:anonymous1@anonymous.invalid",
                None,
                EndpointStatus::Connected,
            ),
            user("tel:+15550102", Some("Raj"), EndpointStatus::Alerting),
        ];
        let doc = Document {
            entity: GROUP,
            state: DocState::Full,
            version: 1,
            maximum_user_count: None,
            user_count: None,
            users: &users,
        };
        let expected = parse(EXAMPLE_FULL.as_bytes()).unwrap();
        assert_eq!(expected.users.len(), 3);
        assert_eq!(expected.users_state, None);
        assert_eq!(parse(written(&doc).as_bytes()).unwrap(), expected);
    }

    #[test]
    fn s5_4_partial_example_is_reproduced() {
        let users = [
            user("tel:+15550102", Some("Raj"), EndpointStatus::Connected),
            user(
                "sip:+15550100@example.net",
                Some("Ana"),
                EndpointStatus::Disconnected,
            ),
        ];
        let doc = Document {
            entity: GROUP,
            state: DocState::Partial,
            version: 2,
            maximum_user_count: None,
            user_count: None,
            users: &users,
        };
        let expected = parse(EXAMPLE_PARTIAL.as_bytes()).unwrap();
        assert_eq!(expected.users_state.as_deref(), Some("partial"));
        assert_eq!(parse(written(&doc).as_bytes()).unwrap(), expected);
    }

    #[test]
    fn r44_declaration_root_namespace_and_attributes() {
        let xml = written(&Document {
            entity: GROUP,
            state: DocState::Full,
            version: u32::MAX,
            maximum_user_count: None,
            user_count: None,
            users: &[],
        });
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
        assert!(xml.contains(
            "<conference-info xmlns=\"urn:ietf:params:xml:ns:conference-info\" \
             entity=\"sip:hiking-team@im.example.net\" state=\"full\" version=\"4294967295\">"
        ));
        assert_eq!(parse(xml.as_bytes()).unwrap().version, u32::MAX);
    }

    #[test]
    fn r47_empty_full_document_has_users_element() {
        let xml = written(&Document {
            entity: GROUP,
            state: DocState::Full,
            version: 3,
            maximum_user_count: None,
            user_count: None,
            users: &[],
        });
        assert!(xml.contains("<users/>"), "{xml}");
        let parsed = parse(xml.as_bytes()).unwrap();
        assert!(parsed.users.is_empty());
        assert_eq!(parsed.users_state, None);
    }

    #[test]
    fn r54_partial_marks_users_partial() {
        let users = [user("sip:a@x.net", None, EndpointStatus::Connected)];
        let xml = written(&Document {
            entity: GROUP,
            state: DocState::Partial,
            version: 2,
            maximum_user_count: None,
            user_count: None,
            users: &users,
        });
        assert!(xml.contains("<users state=\"partial\">"), "{xml}");
        let parsed = parse(xml.as_bytes()).unwrap();
        assert_eq!(parsed.state, "partial");
        assert_eq!(parsed.users_state.as_deref(), Some("partial"));
        assert_eq!(parsed.users[0].state, "full");
    }

    #[test]
    fn r50_endpoint_entity_is_the_user_entity() {
        let users = [user("sip:a@x.net", Some("A"), EndpointStatus::Alerting)];
        let doc = Document {
            entity: GROUP,
            state: DocState::Full,
            version: 1,
            maximum_user_count: None,
            user_count: None,
            users: &users,
        };
        let xml = written(&doc);
        assert!(xml.contains(
            "<user entity=\"sip:a@x.net\" state=\"full\"><display-text>A</display-text>\
             <endpoint entity=\"sip:a@x.net\" state=\"full\"><status>alerting</status></endpoint></user>"
        ));
        let parsed = parse(xml.as_bytes()).unwrap();
        assert_eq!(parsed.users[0].endpoint_entity, "sip:a@x.net");
    }

    #[test]
    fn r56_escapes_entities() {
        let users = [user(
            "sip:a&b@x.net",
            Some("<Ana & \"Bo\">"),
            EndpointStatus::Connected,
        )];
        let doc = Document {
            entity: b"sip:g&\"<>@x.net",
            state: DocState::Full,
            version: 1,
            maximum_user_count: None,
            user_count: None,
            users: &users,
        };
        let xml = written(&doc);
        assert!(
            xml.contains("entity=\"sip:g&amp;&quot;&lt;&gt;@x.net\""),
            "{xml}"
        );
        assert!(xml.contains("<display-text>&lt;Ana &amp; &quot;Bo&quot;&gt;</display-text>"));
        let parsed = parse(xml.as_bytes()).unwrap();
        assert_eq!(parsed.entity, "sip:g&\"<>@x.net");
        assert_eq!(parsed.users[0].entity, "sip:a&b@x.net");
        assert_eq!(
            parsed.users[0].display_text.as_deref(),
            Some("<Ana & \"Bo\">")
        );
    }

    #[test]
    fn r56_invalid_utf8_and_forbidden_characters_are_replaced() {
        let users = [UserEntry {
            display_text: Some(b"A\xffn\x00a\r\n\t\xef\xbf\xbf"),
            ..user("sip:a@x.net", None, EndpointStatus::Connected)
        }];
        let doc = Document {
            entity: GROUP,
            state: DocState::Full,
            version: 1,
            maximum_user_count: None,
            user_count: None,
            users: &users,
        };
        let parsed = parse(written(&doc).as_bytes()).unwrap();
        assert_eq!(
            parsed.users[0].display_text.as_deref(),
            Some("A\u{FFFD}n\u{FFFD}a\r\n\t\u{FFFD}")
        );
    }

    #[test]
    fn write_appends_to_existing_content() {
        let mut out = b"keep".to_vec();
        write(
            &Document {
                entity: GROUP,
                state: DocState::Full,
                version: 1,
                maximum_user_count: None,
                user_count: None,
                users: &[],
            },
            &mut out,
        );
        assert!(out.starts_with(b"keep<?xml"));
    }

    fn rejects(xml: &str, why: &str) {
        match parse(xml.as_bytes()) {
            Ok(doc) => panic!("accepted ({why}): {doc:?}"),
            Err(e) => assert!(e.contains(why), "expected {why:?} in {e:?}"),
        }
    }

    const ROOT_ATTRS: &str = r#"entity="sip:g@x" state="full" version="1""#;

    /// A root element with `attrs` around `inner`.
    fn root(attrs: &str, inner: &str) -> String {
        format!(r#"<conference-info xmlns="{NAMESPACE}" {attrs}>{inner}</conference-info>"#)
    }

    fn doc_with_users(users: &str) -> String {
        root(ROOT_ATTRS, &format!("<users>{users}</users>"))
    }

    fn user_xml(entity: &str, inner: &str) -> String {
        format!(r#"<user entity="{entity}"><endpoint entity="{entity}">{inner}</endpoint></user>"#)
    }

    #[test]
    fn strict_reader_rejects_wrong_root_and_namespace() {
        let no_ns = format!(r#"<conference-info {ROOT_ATTRS}><users/></conference-info>"#);
        rejects(&no_ns, "namespace");
        rejects(
            &format!(r#"<conference xmlns="{NAMESPACE}"/>"#),
            "root is <conference>",
        );
        rejects("", "no root element");
        rejects("<a", "well-formed");
        let latin1 = r#"<?xml version="1.0" encoding="ISO-8859-1"?>"#;
        rejects(
            &format!("{latin1}{}", root(ROOT_ATTRS, "<users/>")),
            "UTF-8",
        );
    }

    #[test]
    fn r44_strict_reader_requires_root_attributes() {
        let with = |attrs: &str| root(attrs, "<users/>");
        rejects(&with(r#"state="full" version="1""#), "no entity");
        rejects(&with(r#"entity="sip:g@x" version="1""#), "no state");
        rejects(&with(r#"entity="sip:g@x" state="full""#), "no version");
        rejects(
            &with(r#"entity="sip:g@x" state="whole" version="1""#),
            "full/partial/deleted",
        );
        rejects(
            &with(r#"entity="sip:g@x" state="full" version="-1""#),
            "unsigned",
        );
        rejects(
            &with(r#"entity="sip:g@x" state="full" version="4294967296""#),
            "unsigned",
        );
        rejects(
            &with(r#"entity="g" state="full" version="1""#),
            "absolute URI",
        );
        rejects(
            &with(&format!(r#"{ROOT_ATTRS} extra="1""#)),
            "unknown attribute",
        );
    }

    #[test]
    fn r47_strict_reader_requires_users_as_only_child() {
        rejects(&root(ROOT_ATTRS, ""), "no <users>");
        // R52: a conference-state is allowed only with the user-count the writer puts in it
        rejects(
            &root(ROOT_ATTRS, "<conference-state/><users/>"),
            "no <user-count>",
        );
        rejects(&root(ROOT_ATTRS, "<users/><users/>"), "repeated");
        rejects(&root(ROOT_ATTRS, "<host-info/><users/>"), "may not contain");
        rejects(
            &root(ROOT_ATTRS, "<users/><sidebars-by-ref/>"),
            "may not contain",
        );
    }

    const DESCRIPTION: &str =
        "<conference-description><maximum-user-count>20</maximum-user-count></conference-description>";
    const STATE: &str = "<conference-state><user-count>3</user-count></conference-state>";

    #[test]
    fn r52_r53_strict_reader_accepts_the_counts_in_schema_order_only() {
        let parsed =
            parse(root(ROOT_ATTRS, &format!("{DESCRIPTION}{STATE}<users/>")).as_bytes()).unwrap();
        assert_eq!(parsed.maximum_user_count, Some(20));
        assert_eq!(parsed.user_count, Some(3));
        let parsed = parse(root(ROOT_ATTRS, &format!("{STATE}<users/>")).as_bytes()).unwrap();
        assert_eq!(
            (parsed.maximum_user_count, parsed.user_count),
            (None, Some(3))
        );
        let misplaced = [
            format!("{STATE}{DESCRIPTION}<users/>"),
            format!("<users/>{STATE}"),
            format!("{DESCRIPTION}<users/>{STATE}"),
            format!("{STATE}{STATE}<users/>"),
        ];
        for xml in &misplaced {
            rejects(&root(ROOT_ATTRS, xml), "out of order or repeated");
        }
        let bad_content = [
            ("<conference-description/>", "no <maximum-user-count>"),
            (
                "<conference-description><subject>s</subject></conference-description>",
                "may contain only",
            ),
            (
                "<conference-state><user-count>3</user-count><active>true</active></conference-state>",
                "may contain only",
            ),
            (
                "<conference-state><user-count>-1</user-count></conference-state>",
                "unsigned",
            ),
            (
                "<conference-state><user-count>3</user-count>x</conference-state>",
                "holds text",
            ),
        ];
        for (xml, why) in bad_content {
            rejects(&root(ROOT_ATTRS, &format!("{xml}<users/>")), why);
        }
    }

    #[test]
    fn r52_r53_writer_puts_counts_and_disconnection_in_schema_order() {
        let users = [
            UserEntry {
                endpoint_entity: b"sip:a@192.0.2.1;gr=x",
                disconnection_method: Some(DisconnectionMethod::Failed),
                disconnection_reason: Some(b"603 Decline & <more>"),
                ..user("sip:a@x.net", Some("A"), EndpointStatus::Disconnected)
            },
            UserEntry {
                disconnection_method: Some(DisconnectionMethod::Booted),
                ..user("sip:b@x.net", None, EndpointStatus::Disconnected)
            },
        ];
        let doc = Document {
            entity: GROUP,
            state: DocState::Partial,
            version: 4,
            maximum_user_count: Some(20),
            user_count: Some(0),
            users: &users,
        };
        let xml = written(&doc);
        assert!(
            xml.contains(
                "version=\"4\"><conference-description><maximum-user-count>20</maximum-user-count>\
                 </conference-description><conference-state><user-count>0</user-count>\
                 </conference-state><users state=\"partial\">"
            ),
            "{xml}"
        );
        assert!(
            xml.contains(
                "<endpoint entity=\"sip:a@192.0.2.1;gr=x\" state=\"full\"><status>disconnected</status>\
                 <disconnection-method>failed</disconnection-method><disconnection-info>\
                 <reason>603 Decline &amp; &lt;more&gt;</reason></disconnection-info></endpoint>"
            ),
            "{xml}"
        );
        let parsed = parse(xml.as_bytes()).unwrap();
        assert_eq!(parsed.maximum_user_count, Some(20));
        assert_eq!(parsed.user_count, Some(0));
        let a = &parsed.users[0];
        assert_eq!(a.endpoint_entity, "sip:a@192.0.2.1;gr=x");
        assert_eq!(a.disconnection_method.as_deref(), Some("failed"));
        assert_eq!(
            a.disconnection_reason.as_deref(),
            Some("603 Decline & <more>")
        );
        let b = &parsed.users[1];
        assert_eq!(b.disconnection_method.as_deref(), Some("booted"));
        assert_eq!(b.disconnection_reason, None);
    }

    #[test]
    fn r53_strict_reader_checks_disconnection_info() {
        let info = |inner: &str| {
            doc_with_users(&user_xml(
                "sip:a@x",
                &format!(
                    "<status>disconnected</status><disconnection-info>{inner}</disconnection-info>"
                ),
            ))
        };
        let parsed = parse(
            info("<when>2024-01-01T00:00:00Z</when><reason>r</reason><by>sip:b@x</by>").as_bytes(),
        )
        .unwrap();
        assert_eq!(parsed.users[0].disconnection_reason.as_deref(), Some("r"));
        assert_eq!(
            parse(info("").as_bytes()).unwrap().users[0].disconnection_reason,
            None
        );
        rejects(&info("<reason>r</reason><when>w</when>"), "out of order");
        rejects(&info("<reason>r</reason><reason>s</reason>"), "repeated");
        rejects(&info("<code>603</code>"), "may not contain");
        rejects(&info("<reason><b/></reason>"), "contains <b>");
        rejects(&info("text"), "holds text");
    }

    #[test]
    fn disconnection_methods_round_trip() {
        for m in [
            DisconnectionMethod::Departed,
            DisconnectionMethod::Booted,
            DisconnectionMethod::Failed,
            DisconnectionMethod::Busy,
        ] {
            assert_eq!(DisconnectionMethod::parse(m.as_str().as_bytes()), Some(m));
        }
        assert_eq!(DisconnectionMethod::parse(b"declined"), None);
        assert_eq!(DisconnectionMethod::parse(b"Departed"), None);
    }

    #[test]
    fn r48_strict_reader_checks_user_entities() {
        let a = user_xml("sip:a@x", "<status>connected</status>");
        rejects(&doc_with_users(&format!("{a}{a}")), "twice");
        rejects(
            &doc_with_users(&user_xml("a@x", "<status>connected</status>")),
            "absolute URI",
        );
        rejects(
            &doc_with_users(
                "<user><endpoint entity=\"e\"><status>connected</status></endpoint></user>",
            ),
            "no entity",
        );
    }

    #[test]
    fn r50_r51_strict_reader_checks_endpoint_and_status() {
        rejects(
            &doc_with_users("<user entity=\"sip:a@x\"/>"),
            "no <endpoint>",
        );
        rejects(&doc_with_users(&user_xml("sip:a@x", "")), "no <status>");
        rejects(
            &doc_with_users(&user_xml("sip:a@x", "<status>Connected</status>")),
            "endpoint status",
        );
        rejects(
            &doc_with_users(&user_xml("sip:a@x", "<status>gone</status>")),
            "endpoint status",
        );
        rejects(
            &doc_with_users(
                "<user entity=\"sip:a@x\"><endpoint><status>connected</status></endpoint></user>",
            ),
            "no entity",
        );
        let two =
            "<user entity=\"sip:a@x\"><endpoint entity=\"e\"><status>connected</status></endpoint>\
                   <endpoint entity=\"f\"><status>connected</status></endpoint></user>";
        rejects(&doc_with_users(two), "repeated");
    }

    #[test]
    fn r53_strict_reader_checks_child_order() {
        let late_text =
            "<user entity=\"sip:a@x\"><endpoint entity=\"e\"><status>connected</status></endpoint>\
                         <display-text>A</display-text></user>";
        rejects(&doc_with_users(late_text), "out of order");
        rejects(
            &doc_with_users(&user_xml(
                "sip:a@x",
                "<disconnection-method>departed</disconnection-method><status>disconnected</status>",
            )),
            "out of order",
        );
        rejects(
            &doc_with_users(&user_xml("sip:a@x", "<status>connected</status><bogus/>")),
            "may not contain",
        );
        rejects(
            &doc_with_users(&user_xml(
                "sip:a@x",
                "<status>disconnected</status><disconnection-method>left</disconnection-method>",
            )),
            "not one of",
        );
        // R52/R91 optional elements in schema order are fine.
        let ok = doc_with_users(&user_xml(
            "sip:a@x",
            "<display-text>d</display-text><status>disconnected</status>\
             <disconnection-method>failed</disconnection-method>\
             <disconnection-info><reason>603 Decline</reason></disconnection-info><media/><media/>",
        ));
        let parsed = parse(ok.as_bytes()).unwrap();
        assert_eq!(parsed.users[0].status, "disconnected");
        assert_eq!(parsed.users[0].display_text, None);
    }

    #[test]
    fn strict_reader_rejects_stray_text_and_doctype() {
        rejects(
            &doc_with_users(&user_xml("sip:a@x", "x<status>connected</status>")),
            "holds text",
        );
        rejects(
            &format!("<!DOCTYPE x><conference-info xmlns=\"{NAMESPACE}\"/>"),
            "DOCTYPE",
        );
        rejects(
            &doc_with_users(&user_xml("sip:a@x", "<status>&bogus;</status>")),
            "",
        );
        rejects(
            &doc_with_users(&user_xml("sip:a@x", "<status>connected&#1;</status>")),
            "not allowed",
        );
    }

    /// What a reader sees for `bytes` written by `write`: lossy UTF-8, XML-forbidden characters replaced.
    fn as_read(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes)
            .chars()
            .map(|c| if is_xml_char(c) { c } else { '\u{FFFD}' })
            .collect()
    }

    /// `sip:` + the bytes as a user part: unreserved and some reserved characters (including `&`, which
    /// must be escaped in XML) kept, everything else %-escaped.
    fn sip_uri(index: usize, user: &[u8]) -> Vec<u8> {
        let mut uri = format!("sip:u{index}-").into_bytes();
        for &b in user {
            if b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&b) {
                uri.push(b);
            } else {
                uri.extend_from_slice(format!("%{b:02X}").as_bytes());
            }
        }
        uri.extend_from_slice(b"@example.net");
        uri
    }

    fn text_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..24),
            "[<>&\"' \t\r\na-zé\u{0}\u{1}\u{FFFE}\u{1F600}]{0,16}".prop_map(String::into_bytes),
        ]
    }

    fn status() -> impl Strategy<Value = EndpointStatus> {
        prop_oneof![
            Just(EndpointStatus::Connected),
            Just(EndpointStatus::Disconnected),
            Just(EndpointStatus::Alerting),
        ]
    }

    fn disconnection() -> impl Strategy<Value = DisconnectionMethod> {
        prop_oneof![
            Just(DisconnectionMethod::Departed),
            Just(DisconnectionMethod::Booted),
            Just(DisconnectionMethod::Failed),
            Just(DisconnectionMethod::Busy),
        ]
    }

    proptest! {
        #[test]
        fn r44_r56_write_then_parse_round_trips(
            conf_user in text_bytes(),
            partial in any::<bool>(),
            version in any::<u32>(),
            raw_users in proptest::collection::vec(
                (
                    text_bytes(),
                    proptest::option::of(text_bytes()),
                    status(),
                    proptest::option::of(disconnection()),
                    proptest::option::of(text_bytes()),
                ),
                0..6,
            ),
            maximum_user_count in proptest::option::of(any::<u32>()),
            user_count in proptest::option::of(any::<u32>()),
        ) {
            let entities: Vec<Vec<u8>> =
                raw_users.iter().enumerate().map(|(i, (u, ..))| sip_uri(i, u)).collect();
            let users: Vec<UserEntry<'_>> = raw_users
                .iter()
                .zip(&entities)
                .map(|((_, display, status, method, reason), entity)| UserEntry {
                    deleted: false,
                    entity,
                    endpoint_entity: entity,
                    display_text: display.as_deref(),
                    status: *status,
                    disconnection_method: *method,
                    disconnection_reason: reason.as_deref(),
                })
                .collect();
            let conf = sip_uri(0, &conf_user);
            let state = if partial { DocState::Partial } else { DocState::Full };
            let doc = Document {
                entity: &conf,
                state,
                version,
                maximum_user_count,
                user_count,
                users: &users,
            };
            let mut out = Vec::new();
            write(&doc, &mut out);

            let parsed = parse(&out).map_err(|e| {
                TestCaseError::fail(format!("{e}\n{}", String::from_utf8_lossy(&out)))
            })?;
            prop_assert_eq!(&parsed.entity, &as_read(&conf));
            prop_assert_eq!(parsed.state.as_str(), state.as_str());
            prop_assert_eq!(parsed.version, version);
            prop_assert_eq!(parsed.maximum_user_count, maximum_user_count);
            prop_assert_eq!(parsed.user_count, user_count);
            prop_assert_eq!(parsed.users_state.as_deref(), partial.then_some("partial"));
            prop_assert_eq!(parsed.users.len(), users.len());
            for (got, want) in parsed.users.iter().zip(&users) {
                prop_assert_eq!(&got.entity, &as_read(want.entity));
                prop_assert_eq!(&got.endpoint_entity, &got.entity);
                prop_assert_eq!(got.state.as_str(), "full");
                prop_assert_eq!(got.display_text.clone(), want.display_text.map(as_read));
                prop_assert_eq!(got.status.as_str(), want.status.as_str());
                prop_assert_eq!(
                    got.disconnection_method.as_deref(),
                    want.disconnection_method.map(DisconnectionMethod::as_str)
                );
                prop_assert_eq!(
                    got.disconnection_reason.clone(),
                    want.disconnection_reason.map(as_read)
                );
            }
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = parse(&bytes);
        }
    }
}
