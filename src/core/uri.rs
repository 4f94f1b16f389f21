//! SIP/SIPS/tel URIs as the notifier needs them: the addr-spec of a header value, the key sessions and
//! groups are stored under (R2, R86) and the validity check for document entities (R56).
//! Everything borrows from the input; only `session_key` allocates (the key it returns).

/// The addr-spec inside a header value: for a name-addr (`"Ana" <sip:a@x>;tag=1`) the part inside <>;
/// for a bare addr-spec (`sip:a@x;tag=1`) the URI up to the first `;` that starts header params
/// (for bare addr-spec, RFC 3261 says params after the URI belong to the header). Trims whitespace.
pub fn addr_spec(value: &[u8]) -> &[u8] {
    let value = value.trim_ascii();
    match form_of(value) {
        Form::NameAddr(inside) => inside.trim_ascii(),
        Form::Unclosed => &[],
        Form::Bare => {
            // RFC 3261 §20: a bare addr-spec cannot contain `;`, so the first one starts header params.
            let end = value.iter().position(|&b| b == b';').unwrap_or(value.len());
            value[..end].trim_ascii()
        }
    }
}

/// R2/R86: the key a session (or group) is stored under and looked up by: `scheme:user@host`
/// with scheme and host lowercased, user part kept as is, no port, no URI parameters, no headers;
/// `tel:+123` keeps just `tel:+123` (visual separators `-.()` removed). Input may be a bare URI or
/// name-addr (use addr_spec). None if the scheme is not sip/sips/tel or the URI is malformed
/// (no host, empty, spaces inside, non-ASCII control bytes).
pub fn session_key(uri: &[u8]) -> Option<Vec<u8>> {
    let parts = parse(uri)?;
    let mut key = Vec::with_capacity(uri.len());
    key.extend_from_slice(parts.scheme.prefix());
    match parts.scheme {
        Scheme::Tel => key.extend(
            parts
                .host
                .iter()
                .copied()
                .filter(|b| !is_visual_separator(*b)),
        ),
        Scheme::Sip | Scheme::Sips => {
            if let Some(user) = parts.user {
                key.extend_from_slice(user);
                key.push(b'@');
            }
            key.extend(parts.host.iter().map(u8::to_ascii_lowercase));
        }
    }
    Some(key)
}

/// R86: the form identities are compared in (AOIA from P-Asserted-Identity against the AOIA the
/// script or RPC gave): `session_key` when the URI parses, else the bytes as given.
pub fn identity_key(uri: &[u8]) -> Vec<u8> {
    session_key(uri).unwrap_or_else(|| addr_spec(uri).to_vec())
}

/// R56: true for an absolute sip/sips URI with a host, or a tel URI with digits.
pub fn is_valid(uri: &[u8]) -> bool {
    parse(uri).is_some()
}

/// The user part of a sip/sips URI (between `sip:` and `@`, without any `:password`), if any.
/// Accepts a bare URI or a name-addr, like `session_key`.
pub fn user_part(uri: &[u8]) -> Option<&[u8]> {
    // A tel URI parses with no user.
    parse(uri)?.user
}

/// The URI of a plain URI or a name-addr, with its URI parameters: the part inside `<>`, else the
/// whole trimmed value. Unlike `addr_spec`, which reads header values (where a `;` after a bare
/// URI starts header params), a bare value keeps its `;params`: R86 reads `user=phone` there.
/// None for a `<` without its `>`.
pub fn uri_of(value: &[u8]) -> Option<&[u8]> {
    let value = value.trim_ascii();
    match form_of(value) {
        Form::NameAddr(inside) => Some(inside.trim_ascii()),
        Form::Unclosed => None,
        Form::Bare => Some(value),
    }
}

/// R86: the pieces of a URI that name a user, as `uri_of` finds the URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentityParts<'a> {
    /// `"sip"`, `"sips"` or `"tel"`, lowercase.
    pub scheme: &'static str,
    /// The user part of a sip/sips URI as written (escapes kept, no `:password`).
    pub user: Option<&'a [u8]>,
    /// The host as written (no port), or the number of a tel URI as written (no params).
    pub host: &'a [u8],
    /// A `user=phone` URI parameter (name and value case-insensitive) on a sip/sips URI.
    pub user_phone: bool,
}

/// R86: the identity pieces of a plain URI or name-addr; None where `session_key` is None.
pub fn identity_parts(value: &[u8]) -> Option<IdentityParts<'_>> {
    let uri = uri_of(value)?;
    let parts = parse(uri)?;
    let scheme = match parts.scheme {
        Scheme::Sip => "sip",
        Scheme::Sips => "sips",
        Scheme::Tel => "tel",
    };
    // As in `parse`: the first `@` ends the userinfo, so the URI parameters are the `;` fields
    // after the host, up to the `?` of the headers.
    let after_user = match uri.iter().position(|&b| b == b'@') {
        Some(at) => &uri[at + 1..],
        None => uri,
    };
    let end = after_user
        .iter()
        .position(|&b| b == b'?')
        .unwrap_or(after_user.len());
    let user_phone = parts.scheme != Scheme::Tel
        && after_user[..end]
            .split(|&b| b == b';')
            .skip(1)
            .any(is_user_phone);
    Some(IdentityParts {
        scheme,
        user: parts.user,
        host: parts.host,
        user_phone,
    })
}

/// `user=phone`, with the whitespace RFC 3261 allows around `=`.
fn is_user_phone(param: &[u8]) -> bool {
    let Some(eq) = param.iter().position(|&b| b == b'=') else {
        return false;
    };
    param[..eq].trim_ascii().eq_ignore_ascii_case(b"user")
        && param[eq + 1..].trim_ascii().eq_ignore_ascii_case(b"phone")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Sip,
    Sips,
    Tel,
}

impl Scheme {
    fn prefix(self) -> &'static [u8] {
        match self {
            Scheme::Sip => b"sip:",
            Scheme::Sips => b"sips:",
            Scheme::Tel => b"tel:",
        }
    }
}

/// The pieces of a URI that identify it; `host` is the number for a tel URI.
#[derive(Debug, Clone, Copy)]
struct Parts<'a> {
    scheme: Scheme,
    user: Option<&'a [u8]>,
    host: &'a [u8],
}

/// Parses a bare URI or a name-addr. A bare value is parsed whole (not cut at the first `;`) so that a
/// Request-URI whose user part holds `;` (`sip:alice;day=tue@x`) still works; params are dropped anyway.
fn parse(value: &[u8]) -> Option<Parts<'_>> {
    let value = value.trim_ascii();
    let uri = match form_of(value) {
        Form::NameAddr(inside) => inside.trim_ascii(),
        Form::Unclosed => return None,
        Form::Bare => value,
    };
    // A URI is ASCII: non-ASCII and control bytes must be %-escaped (RFC 3261 §25.1). Tabs and spaces
    // are checked per component below, since header params may legally have whitespace around `;`.
    if uri
        .iter()
        .any(|&b| b >= 0x80 || b == 0x7f || (b < 0x20 && b != b'\t'))
    {
        return None;
    }
    let colon = uri.iter().position(|&b| b == b':')?;
    let (scheme, rest) = (&uri[..colon], &uri[colon + 1..]);
    let scheme = if scheme.eq_ignore_ascii_case(b"sip") {
        Scheme::Sip
    } else if scheme.eq_ignore_ascii_case(b"sips") {
        Scheme::Sips
    } else if scheme.eq_ignore_ascii_case(b"tel") {
        Scheme::Tel
    } else {
        return None;
    };
    if scheme == Scheme::Tel {
        let end = rest.iter().position(|&b| b == b';').unwrap_or(rest.len());
        let number = rest[..end].trim_ascii_end();
        return is_tel_number(number).then_some(Parts {
            scheme,
            user: None,
            host: number,
        });
    }
    // `@` is legal only in the userinfo (not in params or headers), so the first one ends it.
    let (user, hostport_and_tail) = match rest.iter().position(|&b| b == b'@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let user_end = userinfo
                .iter()
                .position(|&b| b == b':')
                .unwrap_or(userinfo.len());
            let user = &userinfo[..user_end];
            if user.is_empty() || user.iter().any(|&b| !is_uri_byte(b)) {
                return None;
            }
            (Some(user), &rest[at + 1..])
        }
        None => (None, rest),
    };
    let end = hostport_and_tail
        .iter()
        .position(|&b| b == b';' || b == b'?')
        .unwrap_or(hostport_and_tail.len());
    let host = host_of(hostport_and_tail[..end].trim_ascii_end())?;
    Some(Parts { scheme, user, host })
}

/// The host of `host[:port]`, if both are well formed.
fn host_of(hostport: &[u8]) -> Option<&[u8]> {
    let (host, port) = if hostport.first() == Some(&b'[') {
        let close = hostport.iter().position(|&b| b == b']')?;
        let host = &hostport[..=close];
        let inner = &host[1..close];
        if inner.is_empty()
            || !inner
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return None;
        }
        (host, &hostport[close + 1..])
    } else {
        let end = hostport
            .iter()
            .position(|&b| b == b':')
            .unwrap_or(hostport.len());
        let host = &hostport[..end];
        if host.is_empty()
            || !host
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        {
            return None;
        }
        (host, &hostport[end..])
    };
    match port {
        [] => Some(host),
        [b':', digits @ ..] if (1..=5).contains(&digits.len()) => {
            digits.iter().all(u8::is_ascii_digit).then_some(host)
        }
        _ => None,
    }
}

/// RFC 3966: an optional `+`, then dialling digits (and `*`/`#` for local numbers) with visual
/// separators; at least one digit.
fn is_tel_number(number: &[u8]) -> bool {
    let digits = number.strip_prefix(b"+").unwrap_or(number);
    digits.iter().any(u8::is_ascii_digit)
        && digits
            .iter()
            .all(|&b| b.is_ascii_digit() || matches!(b, b'*' | b'#') || is_visual_separator(b))
}

fn is_visual_separator(b: u8) -> bool {
    matches!(b, b'-' | b'.' | b'(' | b')')
}

/// A byte that may appear in the user part of a SIP URI as sent (escapes stay escaped).
fn is_uri_byte(b: u8) -> bool {
    b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"' | b'@')
}

/// How a header value carries its URI.
enum Form<'a> {
    /// `display-name <uri>`: the bytes between `<` and `>`.
    NameAddr(&'a [u8]),
    /// A `<` without its `>`.
    Unclosed,
    /// A bare addr-spec.
    Bare,
}

/// A `<` inside a quoted display name does not start the URI.
fn form_of(value: &[u8]) -> Form<'_> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, &b) in value.iter().enumerate() {
        if in_quotes {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_quotes = false,
                _ => {}
            }
        } else if b == b'"' {
            in_quotes = true;
        } else if b == b'<' {
            let inside = &value[i + 1..];
            return match inside.iter().position(|&b| b == b'>') {
                Some(end) => Form::NameAddr(&inside[..end]),
                None => Form::Unclosed,
            };
        }
    }
    Form::Bare
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(s: &str) -> Option<String> {
        session_key(s.as_bytes()).map(|k| String::from_utf8(k).unwrap())
    }

    #[test]
    fn addr_spec_of_name_addr_and_bare_forms() {
        assert_eq!(
            addr_spec(br#" "Ana" <sip:a@x;user=phone>;tag=1 "#),
            b"sip:a@x;user=phone"
        );
        assert_eq!(addr_spec(b"sip:a@x;tag=1"), b"sip:a@x");
        assert_eq!(addr_spec(b"  sip:a@x  "), b"sip:a@x");
        assert_eq!(addr_spec(br#""a <b>" <sip:c@d>"#), b"sip:c@d");
        assert_eq!(addr_spec(b"< sip:a@x >"), b"sip:a@x");
    }

    /// Each input must have the key next to it.
    fn assert_keys(cases: &[(&str, &str)]) {
        for (input, want) in cases {
            assert_eq!(key(input).as_deref(), Some(*want), "{input:?}");
        }
    }

    #[test]
    fn r2_key_lowercases_scheme_and_host_keeps_user() {
        assert_keys(&[
            ("SIP:Alice@IM.Example.NET", "sip:Alice@im.example.net"),
            ("sips:Bob@X.org", "sips:Bob@x.org"),
        ]);
    }

    #[test]
    fn r2_key_drops_port_params_and_headers() {
        assert_keys(&[
            (
                "sip:conf-7@im.example.net:5061;transport=tcp;session-id=9?subject=x",
                "sip:conf-7@im.example.net",
            ),
            ("sip:a:secret@x.net", "sip:a@x.net"),
            ("sip:[2001:DB8::1]:5060", "sip:[2001:db8::1]"),
            ("sip:im.example.net", "sip:im.example.net"),
        ]);
    }

    #[test]
    fn r2_key_of_name_addr_and_bare_header_value() {
        assert_keys(&[
            (
                r#""Hiking" <sip:hiking-team@IM.example.net;isfocus>;tag=77"#,
                "sip:hiking-team@im.example.net",
            ),
            ("sip:a@x.net;tag=1", "sip:a@x.net"),
            ("sip:a@x.net ; tag=1", "sip:a@x.net"),
        ]);
    }

    #[test]
    fn r2_request_uri_with_semicolon_in_user_part() {
        assert_keys(&[(
            "sip:alice;day=tue@atlanta.com",
            "sip:alice;day=tue@atlanta.com",
        )]);
    }

    #[test]
    fn r86_tel_key_removes_visual_separators_and_params() {
        assert_keys(&[
            ("tel:+1-555-(010).0", "tel:+15550100"),
            ("TEL:+15550102;phone-context=x", "tel:+15550102"),
            ("<tel:+15550102>", "tel:+15550102"),
        ]);
    }

    #[test]
    fn r2_malformed_uris_have_no_key() {
        for bad in [
            "",
            "   ",
            "sip:",
            "sip:a@",
            "sip:@x.net",
            "sip:a b@x.net",
            "sip:a@x y.net",
            "sip:a@x.net:",
            "sip:a@x.net:12ab",
            "sip:a@[]",
            "sip:a\u{1}@x.net",
            "sip:é@x.net",
            "http://x.net",
            "mailto:a@x.net",
            "tel:",
            "tel:+",
            "tel:abc",
            "<sip:a@x.net",
            "sipx.net",
        ] {
            assert_eq!(key(bad), None, "{bad:?}");
            assert!(!is_valid(bad.as_bytes()), "{bad:?}");
        }
    }

    #[test]
    fn r56_valid_uris() {
        for good in [
            "sip:anonymous1@anonymous.invalid",
            "sips:a@x.net",
            "tel:+15550102",
            "sip:+15550100@example.net;user=phone",
        ] {
            assert!(is_valid(good.as_bytes()), "{good}");
        }
    }

    #[test]
    fn user_part_of_sip_uris_only() {
        assert_eq!(user_part(b"sip:+1555@x;user=phone"), Some(&b"+1555"[..]));
        assert_eq!(user_part(b"<sips:bob:pw@x>"), Some(&b"bob"[..]));
        assert_eq!(user_part(b"sip:x.net"), None);
        assert_eq!(user_part(b"tel:+1555"), None);
        assert_eq!(user_part(b"garbage"), None);
    }

    #[test]
    fn r86_uri_of_keeps_params_of_a_bare_uri() {
        assert_eq!(
            uri_of(b" sip:a@x;user=phone "),
            Some(&b"sip:a@x;user=phone"[..])
        );
        assert_eq!(
            uri_of(b"\"A\" <sip:a@x;user=phone>;tag=1"),
            Some(&b"sip:a@x;user=phone"[..])
        );
        assert_eq!(uri_of(b"<sip:a@x"), None);
    }

    #[test]
    fn r86_identity_parts_find_user_phone() {
        let p =
            identity_parts(b"SIPS:+1-555@Example.NET:5061;transport=tls;User=Phone?x=y").unwrap();
        assert_eq!(
            (p.scheme, p.user, p.host, p.user_phone),
            ("sips", Some(&b"+1-555"[..]), &b"Example.NET"[..], true)
        );
        assert!(!identity_parts(b"sip:a@x;user=ip").unwrap().user_phone);
        assert!(!identity_parts(b"sip:a@x?user=phone").unwrap().user_phone);
        assert!(!identity_parts(b"sip:user=phone@x").unwrap().user_phone);
        let tel = identity_parts(b"tel:+1-555;phone-context=x").unwrap();
        assert_eq!(
            (tel.scheme, tel.user, tel.host),
            ("tel", None, &b"+1-555"[..])
        );
        assert_eq!(identity_parts(b"mailto:a@x"), None);
    }

    proptest! {
        #[test]
        fn session_key_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = session_key(&bytes);
            let _ = user_part(&bytes);
            let _ = addr_spec(&bytes);
        }

        #[test]
        fn r2_key_is_stable_under_params_port_and_case(
            user in "[a-zA-Z0-9+_.!~*'-]{1,12}",
            host in "[a-zA-Z0-9-]{1,10}(\\.[a-zA-Z]{2,4}){0,2}",
            port in proptest::option::of(1u16..),
            params in "(;[a-z]{1,5}(=[a-z0-9]{1,5})?){0,3}",
        ) {
            let plain = format!("sip:{user}@{}", host.to_ascii_lowercase());
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let upper = host.to_ascii_uppercase();
            let decorated = format!("<SIP:{user}@{upper}{port}{params}>;tag=9");
            prop_assert_eq!(key(&decorated), Some(plain.clone()));
            prop_assert_eq!(key(&plain), Some(plain));
        }
    }
}
