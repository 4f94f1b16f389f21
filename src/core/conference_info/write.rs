//! The writer: a conference-info document straight into the NOTIFY's buffer (R44-R56).
use super::*;

/// Appends the UTF-8 document to `out` (R44-R56), compact, straight into `out` (hot path):
/// - the XML declaration, then the root `conference-info` in the RFC 4575 namespace with `entity`,
///   `state` and `version` always written (R44);
/// - R52 optional children, in schema order before `users`: `conference-description` (with
///   `maximum-user-count`, when known; empty when not, R93), then `conference-state` with
///   `user-count`;
/// - `users` (`<users/>` when empty, R47; `state="partial"` in a partial document, R54), each user
///   `state="full"` with optional `display-text` and exactly one `endpoint` (R50) holding `status`,
///   then optionally `disconnection-method` and `disconnection-info/reason` (R53 order);
/// - text and attributes escaped, bytes that are not UTF-8 replaced (R56).
///
/// `marks`, when given, records what differs between subscribers' copies (see `personalize`).
pub fn write(doc: &Document<'_>, out: &mut Vec<u8>, mut marks: Option<&mut Marks>) {
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
    let version_start = out.len();
    push_decimal(doc.version, out);
    if let Some(m) = marks.as_deref_mut() {
        m.version = (version_start, out.len());
        m.users.clear();
    }
    out.extend_from_slice(b"\">");

    // R52, R53: the optional counts come before `users`, in schema order.
    match doc.description {
        None => {}
        // R93: an empty one is enough for a generic client that needs one
        Some(d) if d.is_empty() => out.extend_from_slice(b"<conference-description/>"),
        Some(d) => {
            out.extend_from_slice(b"<conference-description>");
            // RFC 4575 order: display-text, subject, ..., maximum-user-count
            if let Some(subject) = d.subject {
                push_leaf(b"subject", out, |o| push_escaped(subject, o));
            }
            if let Some(max) = d.maximum_user_count {
                push_leaf(b"maximum-user-count", out, |o| push_decimal(max, o));
            }
            out.extend_from_slice(b"</conference-description>");
        }
    }
    if let Some(count) = doc.user_count {
        out.extend_from_slice(b"<conference-state>");
        push_leaf(b"user-count", out, |o| push_decimal(count, o));
        out.extend_from_slice(b"</conference-state>");
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
            push_user(user, out, marks.as_deref_mut());
        }
        out.extend_from_slice(b"</users>");
    }
    out.extend_from_slice(b"</conference-info>\n");
}

/// Where the copies of one document for several subscribers differ (issue 16): its version's
/// digits (R33), and where in each user entry `yourown` goes (R95).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Marks {
    version: (usize, usize),
    users: Vec<usize>,
}

/// One subscriber's copy of `doc`, written with `marks` and no `yourown`: with `version`, and
/// `yourown="true"` on the user entries `own` (indices into the document's users, ascending,
/// none of them deleted).
pub fn personalize(doc: &[u8], marks: &Marks, version: u32, own: &[usize]) -> Vec<u8> {
    const YOUROWN: &[u8] = b" yourown=\"true\"";
    let mut out = Vec::with_capacity(doc.len() + 10 + own.len() * YOUROWN.len());
    let (start, end) = marks.version;
    out.extend_from_slice(&doc[..start]);
    push_decimal(version, &mut out);
    let mut from = end;
    for &k in own {
        let at = marks.users[k];
        out.extend_from_slice(&doc[from..at]);
        out.extend_from_slice(YOUROWN);
        from = at;
    }
    out.extend_from_slice(&doc[from..]);
    out
}

/// R48-R54: a complete user (state="full", also inside partial documents), children in R53 order.
fn push_user(user: &UserEntry<'_>, out: &mut Vec<u8>, marks: Option<&mut Marks>) {
    out.extend_from_slice(b"<user entity=\"");
    push_escaped(user.entity, out);
    if user.deleted {
        if let Some(m) = marks {
            m.users.push(0); // (never `yourown`)
        }
        out.extend_from_slice(b"\" state=\"deleted\"/>");
        return;
    }
    // R95: a removal by the chairman keeps its endpoint; the RCS clients read `yourown`
    // unprefixed
    out.extend_from_slice(if user.removed {
        b"\" state=\"deleted\""
    } else {
        b"\" state=\"full\""
    });
    if let Some(m) = marks {
        m.users.push(out.len());
    }
    if user.yourown {
        out.extend_from_slice(b" yourown=\"true\"");
    }
    out.push(b'>');
    if let Some(text) = user.display_text {
        push_leaf(b"display-text", out, |o| push_escaped(text, o));
    }
    // RFC 4575 order: display-text, associated-aors, roles, ..., endpoint
    if user.chairman {
        out.extend_from_slice(b"<roles><entry>chairman</entry></roles>");
    }
    // R50: exactly one endpoint; the caller chose its entity.
    out.extend_from_slice(b"<endpoint entity=\"");
    push_escaped(user.endpoint_entity, out);
    out.extend_from_slice(b"\" state=\"full\"><status>");
    out.extend_from_slice(user.status.as_str().as_bytes());
    out.extend_from_slice(b"</status>");
    if let Some(when) = user.joined_at {
        out.extend_from_slice(b"<joining-info>");
        push_leaf(b"when", out, |o| push_rfc3339(when, o));
        out.extend_from_slice(b"</joining-info>");
    }
    // R53: disconnection-method, then disconnection-info (execution-type: when, reason, by)
    if let Some(method) = user.disconnection_method {
        push_leaf(b"disconnection-method", out, |o| {
            o.extend_from_slice(method.as_str().as_bytes())
        });
    }
    if user.left_at.is_some() || user.disconnection_reason.is_some() {
        out.extend_from_slice(b"<disconnection-info>");
        if let Some(when) = user.left_at {
            push_leaf(b"when", out, |o| push_rfc3339(when, o));
        }
        if let Some(reason) = user.disconnection_reason {
            push_leaf(b"reason", out, |o| push_escaped(reason, o));
        }
        out.extend_from_slice(b"</disconnection-info>");
    }
    out.extend_from_slice(b"</endpoint></user>");
}

/// `<name>` + what `content` writes + `</name>`.
fn push_leaf(name: &[u8], out: &mut Vec<u8>, content: impl FnOnce(&mut Vec<u8>)) {
    out.push(b'<');
    out.extend_from_slice(name);
    out.push(b'>');
    content(out);
    out.extend_from_slice(b"</");
    out.extend_from_slice(name);
    out.push(b'>');
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

/// R95: wall-clock `ms` as an RFC 3339 UTC date-time to the second, e.g. `2026-12-06T23:20:05Z`.
pub(super) fn push_rfc3339(ms: u64, out: &mut Vec<u8>) {
    let secs = ms / 1000;
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    // days since 1970-01-01 to a civil date (H. Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let two = |n: u64, out: &mut Vec<u8>| {
        out.extend_from_slice(&[b'0' + (n / 10) as u8, b'0' + (n % 10) as u8])
    };
    push_decimal(year.clamp(0, 9999) as u32, out);
    out.push(b'-');
    two(month as u64, out);
    out.push(b'-');
    two(day as u64, out);
    out.push(b'T');
    two(rest / 3600, out);
    out.push(b':');
    two(rest / 60 % 60, out);
    out.push(b':');
    two(rest % 60, out);
    out.push(b'Z');
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
