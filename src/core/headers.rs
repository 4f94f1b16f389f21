//! Parsing of the SIP header bodies the SUBSCRIBE pipeline (§2) needs, handed over raw by Kamailio.
//! Parsers borrow from the body and never allocate; anything they cannot read is `Malformed`, and
//! the caller maps that to a response (R14).
use super::uri;

/// The headers this module reads; everything else is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderName {
    Event,
    Expires,
    Accept,
    AcceptContact,
    Contact,
    PAssertedIdentity,
    Privacy,
    Other,
}

/// Case-insensitive; compact forms `o` (Event), `a` (Accept-Contact) and `m` (Contact).
pub fn classify(name: &[u8]) -> HeaderName {
    let name = name.trim_ascii();
    let is = |s: &str| name.eq_ignore_ascii_case(s.as_bytes());
    if is("Event") || is("o") {
        HeaderName::Event
    } else if is("Expires") {
        HeaderName::Expires
    } else if is("Accept") {
        HeaderName::Accept
    } else if is("Accept-Contact") || is("a") {
        HeaderName::AcceptContact
    } else if is("Contact") || is("m") {
        HeaderName::Contact
    } else if is("P-Asserted-Identity") {
        HeaderName::PAssertedIdentity
    } else if is("Privacy") {
        HeaderName::Privacy
    } else {
        HeaderName::Other
    }
}

/// A header body that does not follow its grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// An Event header: the package and the optional `id` parameter (R34).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventHeader<'a> {
    pub package: &'a [u8],
    pub id: Option<&'a [u8]>,
}

/// R10/R14/R34: `conference;id=abc` -> package "conference", id Some("abc"). Whitespace tolerant,
/// param names case-insensitive. Empty/garbage -> Malformed.
pub fn parse_event(body: &[u8]) -> Result<EventHeader<'_>, Malformed> {
    let mut items = split_outside_quotes(body, b';');
    let package = items.next().map(<[u8]>::trim_ascii).unwrap_or_default();
    if !is_token(package) {
        return Err(Malformed);
    }
    let mut id = None;
    for param in items {
        let (name, value) = parse_param(param).ok_or(Malformed)?;
        if name.eq_ignore_ascii_case(b"id") && id.is_none() {
            // RFC 6665 §8.4: id is a token; a quoted form is tolerated, an empty one is not.
            id = Some(
                value
                    .map(unquote)
                    .filter(|v| !v.is_empty())
                    .ok_or(Malformed)?,
            );
        }
    }
    Ok(EventHeader { package, id })
}

/// R14/R19: delta-seconds; values above u32::MAX saturate to u32::MAX (clients send 4294967295 and more).
/// Non-digits -> Malformed.
pub fn parse_expires(body: &[u8]) -> Result<u32, Malformed> {
    let digits = body.trim_ascii();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(Malformed);
    }
    Ok(digits.iter().fold(0u32, |n, &d| {
        n.saturating_mul(10).saturating_add(u32::from(d - b'0'))
    }))
}

/// R11: given the bodies of all Accept headers (each may be a comma list with params and q-values),
/// true when none is present (empty slice), or any media-range admits application/conference-info+xml
/// (exact, `application/*`, `*/*`, case-insensitive) with q != 0. A present but empty Accept header
/// admits nothing (RFC 3261 §20.1).
///
/// As in RFC 7231 §5.3.2, the most specific matching range decides, so
/// `application/conference-info+xml;q=0, */*` refuses the type.
pub fn accept_admits_conference_info(bodies: &[&[u8]]) -> bool {
    if bodies.is_empty() {
        // RFC 4575 §3.4: no Accept means conference-info+xml.
        return true;
    }
    // (specificity, admitted) of the most specific range seen so far; ties are resolved in favour of
    // admitting (the client listed the type with a non-zero weight somewhere).
    let mut best: Option<(u8, bool)> = None;
    for range in bodies.iter().flat_map(|b| split_outside_quotes(b, b',')) {
        let mut parts = split_outside_quotes(range, b';');
        let media = parts.next().unwrap_or_default().trim_ascii();
        let Some(specificity) = media_range_specificity(media) else {
            continue;
        };
        let admitted = parts
            .filter_map(parse_param)
            .find(|(name, _)| name.eq_ignore_ascii_case(b"q"))
            .and_then(|(_, value)| value)
            .is_none_or(|q| !is_zero_qvalue(q));
        best = match best {
            Some((s, a)) if s > specificity || (s == specificity && a) => Some((s, a)),
            _ => Some((specificity, admitted)),
        };
    }
    best.is_some_and(|(_, admitted)| admitted)
}

/// R4 (+R92): given all Accept-Contact bodies (each a comma list of `*;param;param=value` entries),
/// true when some entry carries the feature tag `+g.oma.sip-im` (name compared case-insensitively,
/// exact name: `+g.oma.sip-im.large-message` alone does not count), with no value or value TRUE /
/// "TRUE" (any case). When `accept_cpm_icsi` is true, an entry with
/// `+g.3gpp.icsi-ref` whose (quoted, possibly comma-separated inside quotes) value contains
/// `urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.session` also counts. Careful: commas inside quoted
/// strings do not split entries.
pub fn has_oma_im_feature_tag(bodies: &[&[u8]], accept_cpm_icsi: bool) -> bool {
    const OMA_IM: &[u8] = b"+g.oma.sip-im";
    const ICSI_REF: &[u8] = b"+g.3gpp.icsi-ref";
    bodies
        .iter()
        .flat_map(|b| feature_params(b))
        .any(|(name, value)| {
            if name.eq_ignore_ascii_case(OMA_IM) {
                value.is_none_or(|v| unquote(v).eq_ignore_ascii_case(b"TRUE"))
            } else if accept_cpm_icsi && name.eq_ignore_ascii_case(ICSI_REF) {
                value.is_some_and(lists_cpm_session)
            } else {
                false
            }
        })
}

/// Every `;name[=value]` parameter of a comma list of entries (an Accept-Contact or Contact
/// body): the feature tags (RFC 3840) among them. Quoted commas and semicolons do not split.
pub fn feature_params(body: &[u8]) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
    split_outside_quotes(body, b',')
        .flat_map(|entry| split_outside_quotes(entry, b';'))
        .filter_map(parse_param)
}

/// R92: whether a `+g.3gpp.icsi-ref` value lists the OMA CPM session ICSI. The value is one
/// quoted string that may list several ICSIs, separated by commas. Each is an RFC 3840 token
/// (`%` is a token character), and tokens compare case-insensitively, so `%3a` matches `%3A`.
/// A negated `!urn...` does not match.
pub fn lists_cpm_session(value: &[u8]) -> bool {
    const CPM_SESSION: &[u8] = b"urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.session";
    unquote(value)
        .split(|&b| b == b',')
        .any(|icsi| icsi.trim_ascii().eq_ignore_ascii_case(CPM_SESSION))
}

/// R5: given all P-Asserted-Identity bodies (each possibly a comma list of name-addrs), the addr-spec
/// to use: the first sip/sips URI, else the first tel URI, else None.
pub fn pick_asserted_identity<'a>(bodies: &[&'a [u8]]) -> Option<&'a [u8]> {
    let identities = || {
        bodies
            .iter()
            .flat_map(|b| split_name_addrs(b))
            .map(uri::addr_spec)
            .filter(|spec| uri::is_valid(spec))
    };
    let has_scheme = |spec: &[u8], scheme: &[u8]| {
        spec.len() > scheme.len() && spec[..scheme.len()].eq_ignore_ascii_case(scheme)
    };
    identities()
        .find(|s| has_scheme(s, b"sip:") || has_scheme(s, b"sips:"))
        .or_else(|| identities().find(|s| has_scheme(s, b"tel:")))
}

/// R79: true when some Privacy header lists `id`, `user` or `header` (tokens separated by `;`,
/// case-insensitive). Commas are accepted as separators too, as some clients send them.
pub fn privacy_requested(bodies: &[&[u8]]) -> bool {
    bodies
        .iter()
        .flat_map(|b| b.split(|&c| c == b';' || c == b','))
        .map(<[u8]>::trim_ascii)
        .any(|v| {
            v.eq_ignore_ascii_case(b"id")
                || v.eq_ignore_ascii_case(b"user")
                || v.eq_ignore_ascii_case(b"header")
        })
}

/// 2 for `type/subtype`, 1 for `application/*`, 0 for `*/*` when the range covers
/// application/conference-info+xml; None when it does not (or is not a media range).
fn media_range_specificity(media: &[u8]) -> Option<u8> {
    let slash = media.iter().position(|&b| b == b'/')?;
    let (ty, sub) = (media[..slash].trim_ascii(), media[slash + 1..].trim_ascii());
    let is = |s: &[u8], want: &[u8]| s.eq_ignore_ascii_case(want);
    if is(ty, b"*") && is(sub, b"*") {
        Some(0)
    } else if is(ty, b"application") && is(sub, b"*") {
        Some(1)
    } else if is(ty, b"application") && is(sub, b"conference-info+xml") {
        Some(2)
    } else {
        None
    }
}

/// RFC 3261 qvalue: "0" [ "." 0*3DIGIT ] or "1" [ "." 0*3("0") ]. True only for a well-formed zero;
/// a malformed q is ignored rather than read as a refusal.
fn is_zero_qvalue(q: &[u8]) -> bool {
    match q {
        [b'0'] => true,
        [b'0', b'.', rest @ ..] => rest.len() <= 3 && rest.iter().all(|&d| d == b'0'),
        _ => false,
    }
}

/// `name[=value]` with whitespace around `=` trimmed; None when the name is not a token.
fn parse_param(param: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let (name, value) = match param.iter().position(|&b| b == b'=') {
        Some(eq) => (&param[..eq], Some(param[eq + 1..].trim_ascii())),
        None => (param, None),
    };
    let name = name.trim_ascii();
    if !is_token(name) {
        return None;
    }
    match value {
        Some(v) if v.is_empty() || !(is_token(v) || is_quoted_string(v)) => None,
        _ => Some((name, value)),
    }
}

/// RFC 3261 token characters.
fn is_token(s: &[u8]) -> bool {
    !s.is_empty()
        && s.iter().all(|&b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
                )
        })
}

fn is_quoted_string(s: &[u8]) -> bool {
    s.len() >= 2 && s[0] == b'"' && s[s.len() - 1] == b'"' && {
        // The closing quote must not be escaped.
        let mut escaped = false;
        s[1..s.len() - 1].iter().all(|&b| {
            let ok = escaped || b != b'"';
            escaped = !escaped && b == b'\\';
            ok
        }) && !escaped
    }
}

/// The content of a quoted string (escapes left as they are), or the value itself.
fn unquote(v: &[u8]) -> &[u8] {
    if is_quoted_string(v) {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

/// Splits at `sep` except inside double-quoted strings (with `\` escapes).
fn split_outside_quotes(s: &[u8], sep: u8) -> impl Iterator<Item = &[u8]> {
    split_outside(s, sep, false)
}

/// Splits a list of name-addrs at commas outside quotes and outside `<...>` (a URI may hold commas).
fn split_name_addrs(s: &[u8]) -> impl Iterator<Item = &[u8]> {
    split_outside(s, b',', true)
}

fn split_outside(s: &[u8], sep: u8, angle_brackets: bool) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let s = rest?;
        let (mut in_quotes, mut escaped, mut in_angle) = (false, false, false);
        for (i, &b) in s.iter().enumerate() {
            if in_quotes {
                match b {
                    _ if escaped => escaped = false,
                    b'\\' => escaped = true,
                    b'"' => in_quotes = false,
                    _ => {}
                }
            } else if in_angle {
                in_angle = b != b'>';
            } else if b == b'"' {
                in_quotes = true;
            } else if angle_brackets && b == b'<' {
                in_angle = true;
            } else if b == sep {
                rest = Some(&s[i + 1..]);
                return Some(&s[..i]);
            }
        }
        rest = None;
        Some(s)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ac(bodies: &[&str], cpm: bool) -> bool {
        let bodies: Vec<&[u8]> = bodies.iter().map(|b| b.as_bytes()).collect();
        has_oma_im_feature_tag(&bodies, cpm)
    }

    fn accept(bodies: &[&str]) -> bool {
        let bodies: Vec<&[u8]> = bodies.iter().map(|b| b.as_bytes()).collect();
        accept_admits_conference_info(&bodies)
    }

    #[test]
    fn classify_full_and_compact_names() {
        assert_eq!(classify(b"event"), HeaderName::Event);
        assert_eq!(classify(b"O"), HeaderName::Event);
        assert_eq!(classify(b"EXPIRES"), HeaderName::Expires);
        assert_eq!(classify(b"Accept"), HeaderName::Accept);
        assert_eq!(classify(b"accept-contact"), HeaderName::AcceptContact);
        assert_eq!(classify(b"a"), HeaderName::AcceptContact);
        assert_eq!(
            classify(b"P-Asserted-Identity"),
            HeaderName::PAssertedIdentity
        );
        assert_eq!(classify(b"privacy"), HeaderName::Privacy);
        assert_eq!(classify(b"Accept-Encoding"), HeaderName::Other);
        assert_eq!(classify(b""), HeaderName::Other);
    }

    #[test]
    fn r10_event_package_and_id() {
        let e = parse_event(b" conference ; ID = abc ").unwrap();
        assert_eq!(e.package, b"conference");
        assert_eq!(e.id, Some(&b"abc"[..]));
        let e = parse_event(b"conference").unwrap();
        assert_eq!((e.package, e.id), (&b"conference"[..], None));
        let e = parse_event(b"presence;foo;id=\"x y\"").unwrap();
        assert_eq!((e.package, e.id), (&b"presence"[..], Some(&b"x y"[..])));
    }

    #[test]
    fn r14_garbage_event_is_malformed() {
        for bad in [
            "",
            "  ",
            ";id=1",
            "conf erence",
            "conference;id=",
            "conference;=x",
            "a,b",
            "é",
        ] {
            assert_eq!(parse_event(bad.as_bytes()), Err(Malformed), "{bad:?}");
        }
    }

    #[test]
    fn r19_expires_saturates() {
        assert_eq!(parse_expires(b" 3600\r\n"), Ok(3600));
        assert_eq!(parse_expires(b"0"), Ok(0));
        assert_eq!(parse_expires(b"4294967295"), Ok(u32::MAX));
        assert_eq!(parse_expires(b"4294967296"), Ok(u32::MAX));
        assert_eq!(parse_expires(b"99999999999999999999999"), Ok(u32::MAX));
    }

    #[test]
    fn r14_non_numeric_expires_is_malformed() {
        for bad in ["", "-1", "+5", "5s", "1 2", "0x10"] {
            assert_eq!(parse_expires(bad.as_bytes()), Err(Malformed), "{bad:?}");
        }
    }

    #[test]
    fn r11_missing_accept_means_conference_info() {
        assert!(accept(&[]));
    }

    #[test]
    fn r11_pidf_only_is_not_acceptable() {
        assert!(!accept(&["application/pidf+xml"]));
    }

    #[test]
    fn r11_empty_accept_admits_nothing() {
        assert!(!accept(&[""]));
        assert!(!accept(&["  "]));
    }

    #[test]
    fn r11_exact_and_wildcards_admit() {
        assert!(accept(&["Application/Conference-Info+XML"]));
        assert!(accept(&["application/pidf+xml, application/*"]));
        assert!(accept(&["application/pidf+xml", "*/*;q=0.1"]));
        assert!(accept(&[
            "application/conference-info+xml;charset=\"utf-8,x\";q=1.0"
        ]));
    }

    #[test]
    fn r11_q_zero_refuses() {
        assert!(!accept(&["application/conference-info+xml;q=0"]));
        assert!(!accept(&["*/*; q = 0.000"]));
        assert!(accept(&["application/conference-info+xml;q=0.001"]));
        // The most specific range decides (RFC 7231 §5.3.2).
        assert!(!accept(&["application/conference-info+xml;q=0, */*"]));
        assert!(accept(&[
            "application/*;q=0, application/conference-info+xml"
        ]));
    }

    #[test]
    fn r4_plain_tag_counts() {
        assert!(ac(&["*;+g.oma.sip-im"], false));
        assert!(ac(&["*;+G.OMA.SIP-IM=TRUE"], false));
        assert!(ac(&["*;explicit;+g.oma.sip-im=\"true\";require"], false));
    }

    #[test]
    fn r4_large_message_tag_alone_does_not_count() {
        assert!(!ac(&["*;+g.oma.sip-im.large-message"], false));
        assert!(ac(&["*;+g.oma.sip-im.large-message;+g.oma.sip-im"], false));
    }

    #[test]
    fn r4_false_or_missing_tag_does_not_count() {
        assert!(!ac(&[], false));
        assert!(!ac(&[""], false));
        assert!(!ac(&["*;+g.oma.sip-im=FALSE"], false));
        assert!(!ac(&["*;+g.oma.sip-im=\"<x>\""], false));
        assert!(!ac(&["*;audio"], false));
    }

    #[test]
    fn r4_compact_form_and_comma_lists() {
        // Each Accept-Contact line (including compact `a:` ones) is one body; any entry counts.
        assert!(ac(&["*;audio", "*;video, *;+g.oma.sip-im"], false));
        assert!(ac(&["*;audio,*;+g.oma.sip-im;explicit"], false));
    }

    #[test]
    fn r4_commas_inside_quotes_do_not_split_entries() {
        // Were the quoted comma a separator, `+g.oma.sip-im"` would look like a bare tag.
        assert!(!ac(
            &["*;+g.3gpp.iari-ref=\"urn%3Ax,+g.oma.sip-im\""],
            false
        ));
    }

    #[test]
    fn r92_cpm_icsi_counts_only_when_enabled() {
        let cpm = "*;+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel,\
                   urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.session\";explicit";
        assert!(!ac(&[cpm], false));
        assert!(ac(&[cpm], true));
        assert!(!ac(
            &["*;+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.msg\""],
            true
        ));
        // lower-case percent-encoding, among other entries and header lines
        let lower = "*;+g.3gpp.icsi-ref=\"urn%3aurn-7%3a3gpp-service.ims.icsi.oma.cpm.session\"";
        assert!(ac(&["*;+g.foo", &format!("*;audio, {lower}")], true));
        assert!(!ac(&[lower], false));
        // negated, or only as a prefix of another ICSI
        assert!(!ac(
            &["*;+g.3gpp.icsi-ref=\"!urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.session\""],
            true
        ));
        assert!(!ac(
            &["*;+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.session.x\""],
            true
        ));
    }

    #[test]
    fn r5_prefers_sip_over_tel() {
        let tel: &[u8] = b"<tel:+15550100>";
        let sip: &[u8] = b"\"Ana\" <sip:+15550100@example.net;user=phone>";
        assert_eq!(
            pick_asserted_identity(&[tel, sip]),
            Some(&b"sip:+15550100@example.net;user=phone"[..])
        );
        assert_eq!(
            pick_asserted_identity(&[b"<tel:+1555>, <sips:a@x>"]),
            Some(&b"sips:a@x"[..])
        );
        assert_eq!(pick_asserted_identity(&[tel]), Some(&b"tel:+15550100"[..]));
    }

    #[test]
    fn r5_no_usable_identity() {
        assert_eq!(pick_asserted_identity(&[]), None);
        assert_eq!(pick_asserted_identity(&[b"<mailto:a@x>", b"garbage"]), None);
    }

    #[test]
    fn r5_commas_inside_quotes_and_brackets_do_not_split() {
        let body: &[u8] = b"\"Doe, John\" <sip:john@x.net>, <tel:+1>";
        assert_eq!(
            pick_asserted_identity(&[body]),
            Some(&b"sip:john@x.net"[..])
        );
    }

    #[test]
    fn r79_privacy_tokens() {
        assert!(privacy_requested(&[b"id"]));
        assert!(privacy_requested(&[b"none", b"header; critical"]));
        assert!(privacy_requested(&[b"USER"]));
        assert!(!privacy_requested(&[]));
        assert!(!privacy_requested(&[b"none"]));
        assert!(!privacy_requested(&[b"session;critical"]));
        assert!(!privacy_requested(&[b"identity"]));
    }

    fn bodies() -> impl Strategy<Value = Vec<Vec<u8>>> {
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..48), 0..4)
    }

    proptest! {
        #[test]
        fn parsers_never_panic(
            body in proptest::collection::vec(any::<u8>(), 0..64),
            all in bodies(),
        ) {
            let _ = classify(&body);
            let _ = parse_event(&body);
            let _ = parse_expires(&body);
            let all: Vec<&[u8]> = all.iter().map(Vec::as_slice).collect();
            let _ = has_oma_im_feature_tag(&all, true);
            let _ = accept_admits_conference_info(&all);
            let _ = pick_asserted_identity(&all);
            let _ = privacy_requested(&all);
        }

        #[test]
        fn parsers_never_panic_on_header_like_text(
            body in "[ ;,=\"\\\\<>*a-z+.0-9/-]{0,40}",
        ) {
            let one = [body.as_bytes()];
            let _ = parse_event(body.as_bytes());
            let _ = has_oma_im_feature_tag(&one, true);
            let _ = accept_admits_conference_info(&one);
            let _ = pick_asserted_identity(&one);
        }

        #[test]
        fn r19_expires_matches_saturating_decimal(n in any::<u64>()) {
            let expected = u32::try_from(n).unwrap_or(u32::MAX);
            prop_assert_eq!(parse_expires(n.to_string().as_bytes()), Ok(expected));
        }

        #[test]
        fn r4_tag_found_among_other_entries(
            before in proptest::collection::vec("[a-z]{1,6}(=[a-z]{1,4})?", 0..3),
            after in proptest::collection::vec("[a-z]{1,6}", 0..3),
        ) {
            let mut params = before;
            params.push("+g.oma.sip-im".into());
            params.extend(after);
            let body = format!("*;audio, *;{}", params.join(";"));
            prop_assert!(has_oma_im_feature_tag(&[body.as_bytes()], false));
        }
    }
}
