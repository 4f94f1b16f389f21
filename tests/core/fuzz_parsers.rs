//! Fuzz-style properties of the core's parsers (docs/robustness.md): whatever the bytes, no panic
//! and no crash, and the parsers agree with themselves. What the unit properties already cover is
//! not repeated here (headers.rs: random bytes <= 64 and header-like ASCII <= 40 through every
//! header function; uri.rs: random bytes <= 64 through session_key/user_part/addr_spec;
//! conference_info/tests.rs: write-then-parse round trip, random bytes <= 128; groups.rs: random
//! bytes <= 200 and one-byte damage of the example document). The gaps filled here:
//! - header values from SIP's own alphabet (quotes, escapes, params, commas, non-UTF-8, up to
//!   2 KB, many header lines) and the models they must agree with (Expires, Event);
//! - every uri.rs function (identity_key, is_valid, uri_of, identity_parts too) on URI-shaped
//!   input, and the key being a fixed point;
//! - XML-shaped input for the conference-info reader and the group-document reader: grammar-built
//!   fragments (entities, CDATA, comments, PIs, DOCTYPE, namespaces), damaged valid documents
//!   (byte flips, cuts, spliced fragments), and deep nesting, which must be refused or read
//!   without exhausting the stack;
//! - group identities (groups::identity) and GroupSet::build over several random files.
//!
//! `PROPTEST_CASES` raises the case count (`make fuzz` runs 20000).
use imconf::core::conference_info;
use imconf::core::groups::identity::{same_identity, Identity};
use imconf::core::groups::{parse_document, GroupSet};
use imconf::core::headers;
use imconf::core::uri;
use proptest::prelude::*;

// ------------------------------------------------------------------------- generators

/// Bytes from SIP header grammar, with some non-UTF-8 and control bytes mixed in.
fn sip_text(max: usize) -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        8 => proptest::sample::select(vec![
            &b"conference"[..], b"presence", b";id=", b";", b",", b"=", b"\"", b"\\", b"<", b">", b"*",
            b"+g.oma.sip-im", b"+g.3gpp.icsi-ref", b"=\"TRUE\"", b"application/conference-info+xml",
            b"application/*", b"*/*", b";q=0", b";q=0.5", b"sip:", b"tel:+1", b"@", b"alice", b"127.0.0.1",
            b":5060", b"%41", b"%zz", b" ", b"\t", b"0", b"4294967295", b"99999999999", b"-", b"id", b"user",
            b"header", b"none", b"\r\n ", b"sips:", b"[::1]", b"?h=v",
        ]).prop_map(|s| s.to_vec()),
        1 => proptest::collection::vec(any::<u8>(), 1..4),
        1 => "[a-zA-Z0-9]{1,8}".prop_map(|s| s.into_bytes()),
    ];
    proptest::collection::vec(piece, 0..max).prop_map(|v| v.concat())
}

fn header_lines() -> impl Strategy<Value = Vec<Vec<u8>>> {
    proptest::collection::vec(sip_text(24), 0..12)
}

fn uri_like() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::sample::select(vec![
            &b"sip:"[..],
            b"SIP:",
            b"sips:",
            b"tel:",
            b"<sip:",
            b"\"A\" <sip:",
            b"mailto:",
            b"",
        ]),
        proptest::collection::vec(
            proptest::sample::select(b"abc+-._~!%0123456789AZ:;=@?&<>[]\" \t\xff".to_vec()),
            0..30,
        ),
        proptest::option::of("[a-z0-9.-]{0,12}"),
        proptest::sample::select(vec![
            &b""[..],
            b">",
            b">;tag=1",
            b";user=phone",
            b";transport=udp>",
        ]),
    )
        .prop_map(|(scheme, body, host, tail)| {
            let mut v = scheme.to_vec();
            v.extend(body);
            if let Some(h) = host {
                v.push(b'@');
                v.extend(h.into_bytes());
            }
            v.extend_from_slice(tail);
            v
        })
}

/// XML-ish text: tags (some namespaced, some unbalanced), attributes, entities, CDATA, comments,
/// processing instructions, DOCTYPEs, text with non-ASCII.
fn xml_like() -> impl Strategy<Value = Vec<u8>> {
    let piece = proptest::sample::select(vec![
        &b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>"[..],
        b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>",
        b"<conference-info xmlns=\"urn:ietf:params:xml:ns:conference-info\" entity=\"sip:c@h\" state=\"full\" version=\"1\">",
        b"</conference-info>",
        b"<users>", b"</users>", b"<users state=\"partial\">",
        b"<user entity=\"sip:a@h\" state=\"full\">", b"<user entity=\"sip:a@h\">", b"</user>",
        b"<endpoint entity=\"sip:a@h\">", b"</endpoint>", b"<status>connected</status>",
        b"<status>", b"</status>", b"<display-text>", b"</display-text>",
        b"<disconnection-method>departed</disconnection-method>",
        b"<group xmlns=\"urn:oma:xml:poc:list-service\">", b"</group>",
        b"<list-service uri=\"sip:g@h\">", b"</list-service>",
        b"<list xmlns=\"urn:ietf:params:xml:ns:resource-lists\">", b"</list>",
        b"<entry uri=\"tel:+1\"/>", b"<entry uri=\"sip:a@h\"><display-name>A</display-name></entry>",
        b"<ruleset xmlns=\"urn:ietf:params:xml:ns:common-policy\">", b"</ruleset>",
        b"<rule id=\"r\">", b"</rule>", b"<conditions>", b"</conditions>", b"<identity>", b"</identity>",
        b"<one id=\"sip:a@h\"/>", b"<many/>", b"<actions>", b"</actions>",
        b"<allow-conference-state>true</allow-conference-state>", b"<max-participant-count>3</max-participant-count>",
        b"&amp;", b"&lt;", b"&#x41;", b"&#0;", b"&#xD800;", b"&#99999999;", b"&foo;", b"&", b"<![CDATA[x<y]]>",
        b"<!-- c -->", b"<?pi x?>", b"<!DOCTYPE a [<!ENTITY e \"x\">]>", b"&e;", b"text", b"\xc3\xa9", b"\xff",
        b"<a:b xmlns:a=\"urn:x\">", b"</a:b>", b"<x:y>", b" attr=\"v\"", b"\"", b"=", b">", b"<", b"/>",
    ]);
    proptest::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

fn conference_document() -> Vec<u8> {
    br#"<?xml version="1.0" encoding="UTF-8"?>
<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" entity="sip:conf1@127.0.0.1" state="full" version="7"><conference-description><maximum-user-count>10</maximum-user-count></conference-description><users><user entity="sip:alice@127.0.0.1" state="full"><display-text>Alice</display-text><endpoint entity="sip:alice@127.0.0.1"><status>connected</status></endpoint></user><user entity="tel:+15550102" state="full"><endpoint entity="tel:+15550102"><status>disconnected</status><disconnection-method>departed</disconnection-method></endpoint></user></users></conference-info>"#
        .to_vec()
}

fn group_document() -> Vec<u8> {
    br#"<?xml version="1.0" encoding="UTF-8"?>
<group xmlns="urn:oma:xml:poc:list-service" xmlns:rl="urn:ietf:params:xml:ns:resource-lists" xmlns:cr="urn:ietf:params:xml:ns:common-policy" xmlns:ocp="urn:oma:xml:xdm:common-policy">
 <list-service uri="sip:hiking@example.com">
  <display-name>Hiking</display-name>
  <list><rl:entry uri="tel:+15550101"><rl:display-name>Ann</rl:display-name></rl:entry><rl:entry uri="sip:bob@example.com"/></list>
  <max-participant-count>10</max-participant-count>
  <cr:ruleset><cr:rule id="a"><cr:conditions><is-list-member/></cr:conditions><cr:actions><allow-conference-state>true</allow-conference-state></cr:actions></cr:rule></cr:ruleset>
 </list-service>
</group>"#
        .to_vec()
}

#[derive(Debug, Clone)]
enum Damage {
    Flip(usize, u8),
    Cut(usize),
    Splice(usize, Vec<u8>),
    Remove(usize, usize),
}

fn damage() -> impl Strategy<Value = Vec<Damage>> {
    let one = prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Damage::Flip(a, b)),
        any::<usize>().prop_map(Damage::Cut),
        (any::<usize>(), xml_like()).prop_map(|(a, b)| Damage::Splice(a, b)),
        (any::<usize>(), 1usize..40).prop_map(|(a, n)| Damage::Remove(a, n)),
    ];
    proptest::collection::vec(one, 1..4)
}

fn apply(mut doc: Vec<u8>, damages: &[Damage]) -> Vec<u8> {
    for d in damages {
        let len = doc.len().max(1);
        match d {
            Damage::Flip(at, b) if !doc.is_empty() => doc[at % len] = *b,
            Damage::Cut(at) => doc.truncate(at % len),
            Damage::Splice(at, bytes) => {
                let at = at % (doc.len() + 1);
                doc.splice(at..at, bytes.iter().copied());
            }
            Damage::Remove(at, n) if !doc.is_empty() => {
                let at = at % len;
                let end = (at + n).min(doc.len());
                doc.drain(at..end);
            }
            _ => {}
        }
    }
    doc
}

/// `depth` nested elements inside a valid prefix: the readers must refuse or read it without
/// running out of stack.
fn nested(prefix: &[u8], open: &[u8], close: &[u8], depth: usize, suffix: &[u8]) -> Vec<u8> {
    let mut v = prefix.to_vec();
    for _ in 0..depth {
        v.extend_from_slice(open);
    }
    for _ in 0..depth {
        v.extend_from_slice(close);
    }
    v.extend_from_slice(suffix);
    v
}

// ------------------------------------------------------------------------- headers

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Every header function on SIP-alphabet values, one or many header lines, never panics.
    #[test]
    fn header_functions_never_panic_on_sip_text(lines in header_lines(), one in sip_text(80)) {
        let all: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
        let _ = headers::classify(&one);
        let _ = headers::parse_event(&one);
        let _ = headers::parse_expires(&one);
        let _ = headers::has_oma_im_feature_tag(&all, false);
        let _ = headers::has_oma_im_feature_tag(&all, true);
        let _ = headers::accept_admits_conference_info(&all);
        let _ = headers::pick_asserted_identity(&all);
        let _ = headers::privacy_requested(&all);
    }

    /// R14/R19: Expires is delta-seconds with optional surrounding whitespace: digits give the
    /// saturated value, anything else is malformed.
    #[test]
    fn r14_expires_agrees_with_its_model(v in sip_text(12)) {
        let t = v.trim_ascii();
        let model = if !t.is_empty() && t.iter().all(u8::is_ascii_digit) {
            Some(t.iter().fold(0u32, |n, &d| n.saturating_mul(10).saturating_add(u32::from(d - b'0'))))
        } else {
            None
        };
        prop_assert_eq!(headers::parse_expires(&v).ok(), model);
    }

    /// R10: a parsed Event's package is a non-empty piece of the value itself.
    #[test]
    fn r10_event_package_comes_from_the_value(v in sip_text(16)) {
        if let Ok(e) = headers::parse_event(&v) {
            prop_assert!(!e.package.is_empty());
            let range = v.as_ptr_range();
            prop_assert!(range.contains(&e.package.as_ptr()));
        }
    }

    /// Long values and many lines (the corpus sends up to 50 KB): still no panic.
    #[test]
    fn header_functions_take_long_values(rep in 1usize..2000, piece in sip_text(6), n in 1usize..300) {
        let long = piece.repeat(rep.min(2000 / piece.len().max(1) + 1));
        let lines: Vec<&[u8]> = std::iter::repeat_n(long.as_slice(), n).collect();
        let _ = headers::parse_event(&long);
        let _ = headers::parse_expires(&long);
        let _ = headers::has_oma_im_feature_tag(&lines, true);
        let _ = headers::accept_admits_conference_info(&lines);
        let _ = headers::pick_asserted_identity(&lines);
        let _ = headers::privacy_requested(&lines);
    }
}

// ------------------------------------------------------------------------- uri

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Every uri.rs function on URI-shaped and arbitrary bytes; the validity check and the key
    /// agree, and a key is its own key (R2: lookups by key are stable).
    #[test]
    fn uri_functions_agree_and_keys_are_fixed_points(
        v in prop_oneof![uri_like(), proptest::collection::vec(any::<u8>(), 0..200)],
    ) {
        let _ = uri::addr_spec(&v);
        let _ = uri::user_part(&v);
        let _ = uri::identity_key(&v);
        let _ = uri::uri_of(&v);
        let parts = uri::identity_parts(&v);
        let key = uri::session_key(&v);
        prop_assert_eq!(uri::is_valid(&v), key.is_some());
        if let Some(k) = key {
            let again = uri::session_key(&k);
            prop_assert_eq!(again.as_deref(), Some(k.as_slice()), "key of {:?}", String::from_utf8_lossy(&v));
        }
        if let Some(p) = parts {
            prop_assert!(["sip", "sips", "tel"].contains(&p.scheme));
        }
    }
}

// ------------------------------------------------------------------------- conference-info reader

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn conference_info_reader_never_panics_on_xml_like_input(x in xml_like()) {
        let _ = conference_info::parse(&x);
    }

    /// A valid document, damaged: read or refused, never a panic; what is read keeps the checks
    /// the reader promises (an absolute root entity, unique users).
    #[test]
    fn conference_info_reader_on_damaged_documents(d in damage()) {
        let doc = apply(conference_document(), &d);
        if let Ok(parsed) = conference_info::parse(&doc) {
            prop_assert!(parsed.entity.contains(':'));
            let mut seen = std::collections::HashSet::new();
            for u in &parsed.users {
                prop_assert!(seen.insert(u.entity.clone()), "duplicate user {}", u.entity);
            }
        }
    }
}

#[test]
fn conference_info_reader_survives_deep_nesting() {
    for depth in [1_000, 100_000] {
        let doc = nested(
            br#"<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" entity="sip:c@h" state="full" version="1"><users>"#,
            b"<user entity=\"sip:a@h\">",
            b"</user>",
            depth,
            b"</users></conference-info>",
        );
        assert!(conference_info::parse(&doc).is_err(), "depth {depth}");
    }
}

#[test]
fn the_valid_documents_used_here_are_valid() {
    conference_info::parse(&conference_document()).unwrap();
    assert_eq!(parse_document(&group_document()).unwrap().len(), 1);
}

// ------------------------------------------------------------------------- group documents

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn group_reader_never_panics_on_xml_like_input(x in xml_like()) {
        if let Err(e) = parse_document(&x) {
            prop_assert!(e.line >= 1);
        }
    }

    /// R87: a damaged group document is read or refused with a line inside it; whatever is read
    /// can be evaluated for any identity.
    #[test]
    fn group_reader_on_damaged_documents(d in damage(), who in uri_like()) {
        let doc = apply(group_document(), &d);
        match parse_document(&doc) {
            Err(e) => prop_assert!(e.line >= 1 && e.line <= 1 + doc.iter().filter(|&&b| b == b'\n').count()),
            Ok(services) => {
                let set = GroupSet::build(&[("g.xml".to_string(), doc.clone())], &[]).set;
                let who = String::from_utf8_lossy(&who).into_owned();
                for s in &services {
                    let _ = set.allow_conference_state(&s.uri, &who, false, true);
                    let _ = set.allow_conference_state(&s.uri, &who, true, false);
                    let _ = set.display_name(&s.uri, &who, true);
                    let _ = set.max_participant_count(&s.uri);
                }
            }
        }
    }

    /// A reload of several files, some good, some damaged, some random: never a panic, at most
    /// one error per file, and reloading the files now in force gives the same set.
    #[test]
    fn group_set_build_over_random_files(
        files in proptest::collection::vec(prop_oneof![
            Just(group_document()),
            damage().prop_map(|d| apply(group_document(), &d)),
            xml_like(),
        ], 0..5),
    ) {
        let named: Vec<(String, Vec<u8>)> =
            files.into_iter().enumerate().map(|(i, b)| (format!("f{i}.xml"), b)).collect();
        let once = GroupSet::build(&named, &[]);
        prop_assert!(once.errors.len() <= named.len());
        let again = GroupSet::build(&once.good, &once.good);
        prop_assert_eq!(once.set.len(), again.set.len());
        prop_assert!(again.errors.is_empty());
    }

    /// Group identities: parsing any string never panics; matching is reflexive and symmetric.
    #[test]
    fn group_identities_match_consistently(
        a in uri_like().prop_map(|v| String::from_utf8_lossy(&v).into_owned()),
        b in uri_like().prop_map(|v| String::from_utf8_lossy(&v).into_owned()),
        tel_sip in any::<bool>(),
    ) {
        let _ = imconf::core::groups::identity::key(&a);
        if let Some(ia) = Identity::parse(&a) {
            prop_assert!(ia.matches(&ia, tel_sip));
            let _ = ia.host();
        }
        prop_assert_eq!(same_identity(&a, &b, tel_sip), same_identity(&b, &a, tel_sip));
    }
}

#[test]
fn group_reader_survives_deep_nesting() {
    for depth in [1_000, 100_000] {
        let doc = nested(
            br#"<group xmlns="urn:oma:xml:poc:list-service"><list-service uri="sip:g@h"><list>"#,
            b"<list>",
            b"</list>",
            depth,
            b"</list></list-service></group>",
        );
        let _ = parse_document(&doc);
        let doc = nested(b"", b"<a>", b"</a>", depth, b"");
        assert!(parse_document(&doc).is_err(), "depth {depth}");
    }
}
