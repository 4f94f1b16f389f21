//! The one XML tree reader (quick-xml) for the documents read whole: OMA group documents
//! (groups/document.rs) and, in the tests and fuzzers, conference-info (conference_info/read.rs).
//! It checks well-formedness (XML 1.0 and namespaces), UTF-8, XML characters, refuses a DOCTYPE
//! (no entity may expand behind the reader's back) and bounds the depth (the tree is dropped
//! and walked recursively). Each caller classifies namespaces its own way (`N`).
use quick_xml::escape::{resolve_xml_entity, unescape_with};
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;
use std::fmt;

/// How deep elements may nest: a group document is ~10 deep (nested lists included), a
/// conference-info document ~6; deeper input would overflow the stack (tests/core/fuzz_parsers.rs).
pub const MAX_DEPTH: usize = 64;

/// Where a document is wrong: the line (1-based; of the element, or of the reader's position
/// for a syntax error), which element (local name; empty when outside any element) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlError {
    pub line: usize,
    pub element: String,
    pub message: String,
}

impl fmt::Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.element.is_empty() {
            write!(f, "line {}: {}", self.line, self.message)
        } else {
            write!(f, "line {} <{}>: {}", self.line, self.element, self.message)
        }
    }
}

impl std::error::Error for XmlError {}

/// An element reduced to what the readers need. `ns` is the caller's classification of its
/// namespace; attributes are the unprefixed ones (namespace declarations and `xml:lang` are
/// left out), with entities resolved and whitespace normalised (XML 1.0 §3.3.3).
#[derive(Debug)]
pub struct Element<N> {
    pub ns: N,
    pub name: String,
    pub line: usize,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element<N>>,
    pub text: String,
}

impl<N: PartialEq> Element<N> {
    pub fn is(&self, ns: &N, name: &str) -> bool {
        self.ns == *ns && self.name == name
    }
}

impl<N> Element<N> {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn required_attr(&self, name: &str) -> Result<&str, XmlError> {
        self.attr(name)
            .ok_or_else(|| self.error(format!("no {name} attribute")))
    }

    /// The text content with surrounding whitespace gone (xs:boolean, xs:nonNegativeInteger and
    /// names all collapse it).
    pub fn value(&self) -> &str {
        self.text.trim_matches(is_xml_space)
    }

    pub fn error(&self, message: impl Into<String>) -> XmlError {
        XmlError {
            line: self.line,
            element: self.name.clone(),
            message: message.into(),
        }
    }
}

/// A namespace as the document bound it: `Some(uri)`, or `None` for no namespace.
pub type Namespace<'a> = Option<&'a [u8]>;

/// Reads the whole document into a tree; `classify` names each element's namespace.
pub fn read_tree<N>(
    bytes: &[u8],
    classify: impl Fn(Namespace<'_>) -> N,
) -> Result<Element<N>, XmlError> {
    let at = |position: u64, open: &[Element<N>], message: String| XmlError {
        line: line_at(bytes, position),
        element: open.last().map(|e| e.name.clone()).unwrap_or_default(),
        message,
    };
    let xml = std::str::from_utf8(bytes).map_err(|e| {
        at(
            e.valid_up_to() as u64,
            &[],
            format!("the document is not UTF-8: {e}"),
        )
    })?;
    let mut reader = NsReader::from_str(xml);
    reader.config_mut().enable_all_checks(true);
    let mut open: Vec<Element<N>> = Vec::new();
    let mut root: Option<Element<N>> = None;
    let mut at_start = true;
    loop {
        let start = reader.buffer_position();
        let (ns, event) = match reader.read_resolved_event() {
            Ok((ns, event)) => (namespace(ns), event),
            Err(e) => {
                let message = format!("not well-formed XML: {e}");
                return Err(at(reader.error_position(), &open, message));
            }
        };
        let fail = |open: &[Element<N>], message: String| Err(at(start, open, message));
        let text = match event {
            Event::Decl(decl) => {
                if !at_start {
                    return fail(&open, "the XML declaration is not at the start".into());
                }
                let encoding = decl.encoding().transpose().ok().flatten();
                if encoding.is_some_and(|e| !e.eq_ignore_ascii_case(b"UTF-8")) {
                    return fail(&open, "only UTF-8 documents are read".into());
                }
                None
            }
            Event::Start(tag) => {
                if open.len() >= MAX_DEPTH {
                    return fail(&open, format!("elements nested deeper than {MAX_DEPTH}"));
                }
                let el = element(&tag, ns, &classify, line_at(bytes, start))?;
                open.push(el);
                None
            }
            Event::Empty(tag) => {
                let el = element(&tag, ns, &classify, line_at(bytes, start))?;
                attach(el, &mut open, &mut root)?;
                None
            }
            Event::End(_) => {
                // quick-xml already refuses an unmatched end tag; this only keeps a panic out.
                let Some(el) = open.pop() else {
                    return fail(&open, "an end tag without its start tag".into());
                };
                attach(el, &mut open, &mut root)?;
                None
            }
            Event::Text(t) => match t.xml10_content() {
                Ok(t) => Some(t.into_owned()),
                Err(e) => return fail(&open, format!("bad text: {e}")),
            },
            Event::CData(c) => match c.decode() {
                Ok(c) => Some(c.into_owned()),
                Err(e) => return fail(&open, format!("bad CDATA: {e}")),
            },
            Event::GeneralRef(r) => match reference(&r) {
                Ok(resolved) => Some(resolved),
                Err(message) => return fail(&open, message),
            },
            Event::DocType(_) => return fail(&open, "a DOCTYPE is not allowed".into()),
            Event::Comment(_) | Event::PI(_) => None,
            Event::Eof => break,
        };
        at_start = false;
        if let Some(text) = text {
            if let Err(message) = check_chars(&text) {
                return fail(&open, message);
            }
            match open.last_mut() {
                Some(el) => el.text.push_str(&text),
                None if text.chars().all(is_xml_space) => {}
                None => return fail(&open, format!("text {text:?} outside the root element")),
            }
        }
    }
    if let Some(el) = open.last() {
        return Err(el.error("not closed"));
    }
    root.ok_or_else(|| at(bytes.len() as u64, &[], "no root element".into()))
}

/// An undeclared prefix is an error, like any other namespace well-formedness error.
fn namespace(resolved: ResolveResult<'_>) -> Result<Namespace<'_>, String> {
    match resolved {
        ResolveResult::Bound(ns) => Ok(Some(ns.into_inner())),
        ResolveResult::Unbound => Ok(None),
        ResolveResult::Unknown(prefix) => Err(format!(
            "prefix {:?} is not declared",
            String::from_utf8_lossy(&prefix)
        )),
    }
}

fn element<N>(
    tag: &BytesStart<'_>,
    ns: Result<Namespace<'_>, String>,
    classify: &impl Fn(Namespace<'_>) -> N,
    line: usize,
) -> Result<Element<N>, XmlError> {
    let name = String::from_utf8_lossy(tag.local_name().as_ref()).into_owned();
    let ns = match ns {
        Ok(ns) => classify(ns),
        Err(message) => {
            return Err(XmlError {
                line,
                element: name,
                message,
            })
        }
    };
    let mut el = Element {
        ns,
        name,
        line,
        attrs: Vec::new(),
        children: Vec::new(),
        text: String::new(),
    };
    for attr in tag.attributes() {
        let attr = attr.map_err(|e| el.error(format!("bad attribute: {e}")))?;
        if attr.key.as_namespace_binding().is_some() || attr.key.prefix().is_some() {
            continue;
        }
        let key = String::from_utf8_lossy(attr.key.as_ref()).into_owned();
        let bad = |e: &dyn fmt::Display| el.error(format!("attribute {key}: {e}"));
        let raw = std::str::from_utf8(&attr.value).map_err(|e| bad(&e))?;
        // XML 1.0 §3.3.3: literal whitespace in an attribute value reads as a space.
        let normalised = raw.replace(['\t', '\n', '\r'], " ");
        let value = unescape_with(&normalised, resolve_xml_entity)
            .map_err(|e| bad(&e))?
            .into_owned();
        check_chars(&value).map_err(|m| bad(&m))?;
        el.attrs.push((key, value));
    }
    Ok(el)
}

fn attach<N>(
    el: Element<N>,
    open: &mut [Element<N>],
    root: &mut Option<Element<N>>,
) -> Result<(), XmlError> {
    match open.last_mut() {
        Some(parent) => parent.children.push(el),
        None if root.is_none() => *root = Some(el),
        None => return Err(el.error("a second root element")),
    }
    Ok(())
}

/// A character reference or one of the five predefined entities.
fn reference(r: &BytesRef<'_>) -> Result<String, String> {
    if let Some(c) = r
        .resolve_char_ref()
        .map_err(|e| format!("bad reference: {e}"))?
    {
        return Ok(c.to_string());
    }
    let name = r.decode().map_err(|e| format!("bad reference: {e}"))?;
    resolve_xml_entity(&name)
        .map(str::to_owned)
        .ok_or_else(|| format!("unknown entity &{name};"))
}

/// XML 1.0 `Char`: what may appear in a document, literally or as a reference.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn check_chars(s: &str) -> Result<(), String> {
    match s.chars().find(|&c| !is_xml_char(c)) {
        Some(c) => Err(format!("character {c:?} is not allowed in XML")),
        None => Ok(()),
    }
}

pub fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// 1-based line of a byte position.
fn line_at(bytes: &[u8], position: u64) -> usize {
    let end = usize::try_from(position).map_or(bytes.len(), |p| p.min(bytes.len()));
    1 + bytes[..end].iter().filter(|&&b| b == b'\n').count()
}
