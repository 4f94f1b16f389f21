//! The writer and the reader, against each other and against RFC 4575 (R44-R56).
use super::*;
use crate::core::xml::is_xml_char;
use proptest::prelude::*;

fn written(doc: &Document<'_>) -> String {
    let mut out = Vec::new();
    write(doc, &mut out, None);
    String::from_utf8(out).expect("the writer emits UTF-8")
}

fn user<'a>(entity: &'a str, display: Option<&'a str>, status: EndpointStatus) -> UserEntry<'a> {
    UserEntry {
        deleted: false,
        removed: false,
        yourown: false,
        chairman: false,
        entity: entity.as_bytes(),
        endpoint_entity: entity.as_bytes(),
        display_text: display.map(str::as_bytes),
        status,
        disconnection_method: None,
        disconnection_reason: None,
        joined_at: None,
        left_at: None,
    }
}

#[test]
fn r95_times_are_rfc3339_utc() {
    // checked against Python's datetime.fromtimestamp(ms / 1000, timezone.utc)
    for (ms, want) in [
        (0, "1970-01-01T00:00:00Z"),
        (951_782_400_000, "2000-02-29T00:00:00Z"),
        (1_796_601_605_000, "2026-12-07T00:00:05Z"),
        (4_102_444_799_000, "2099-12-31T23:59:59Z"),
        (1_709_251_199_999, "2024-02-29T23:59:59Z"),
    ] {
        let mut out = Vec::new();
        super::write::push_rfc3339(ms, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), want, "{ms}");
    }
}

#[test]
fn r95_rcs_group_state_is_written_and_read() {
    let mut u = user("sip:+1555@x", None, EndpointStatus::Disconnected);
    u.removed = true;
    u.yourown = true;
    u.disconnection_method = Some(DisconnectionMethod::Booted);
    u.left_at = Some(1_796_601_605_000);
    u.disconnection_reason = Some(b"SIP;cause=603;text=\"Decline\"");
    let mut joined = user("sip:+1666@x", None, EndpointStatus::Connected);
    joined.joined_at = Some(0);
    let users = [u, joined];
    let mut out = Vec::new();
    write(&partial(&users), &mut out, None);
    let xml = String::from_utf8(out.clone()).unwrap();
    assert!(
        xml.contains("<user entity=\"sip:+1555@x\" state=\"deleted\" yourown=\"true\"><endpoint"),
        "{xml}"
    );
    let parsed = parse(&out).unwrap();
    let removed = &parsed.users[0];
    assert_eq!(
        (removed.state.as_str(), removed.status.as_str()),
        ("deleted", "disconnected")
    );
    assert_eq!(removed.disconnection_method.as_deref(), Some("booted"));
    assert!(removed.yourown);
    assert_eq!(removed.left_at.as_deref(), Some("2026-12-07T00:00:05Z"));
    assert_eq!(
        removed.disconnection_reason.as_deref(),
        Some("SIP;cause=603;text=\"Decline\"")
    );
    assert_eq!(
        parsed.users[1].joined_at.as_deref(),
        Some("1970-01-01T00:00:00Z")
    );
    assert!(!parsed.users[1].yourown);
}

const GROUP: &[u8] = b"sip:hiking-team@im.example.net";

/// A partial document of GROUP, version 2, with `users` and nothing else.
fn partial<'a>(users: &'a [UserEntry<'a>]) -> Document<'a> {
    Document {
        entity: GROUP,
        state: DocState::Partial,
        version: 2,
        description: None,
        user_count: None,
        users,
    }
}

/// the example bodies of the rules (R39-R59, docs/conformance.md), first example (full state, version 1), verbatim.
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

/// the example bodies of the rules (R39-R59, docs/conformance.md), second example (partial state, version 2), verbatim.
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
        description: None,
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
    let doc = partial(&users);
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
        description: None,
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
        description: None,
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
        description: None,
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
        description: None,
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
        description: None,
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
        description: None,
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
            description: None,
            user_count: None,
            users: &[],
        },
        &mut out,
        None,
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
    // R93: an empty description is what a generic client needs when there is nothing to say
    let empty = parse(root(ROOT_ATTRS, "<conference-description/><users/>").as_bytes()).unwrap();
    assert!(empty.description && empty.maximum_user_count.is_none());
    let bad_content = [
        // R95: subject, then maximum-user-count; nothing else (keywords are never written)
        (
            "<conference-description><keywords>s</keywords></conference-description>",
            "may not contain <keywords>",
        ),
        (
            "<conference-description><maximum-user-count>3</maximum-user-count><subject>s</subject></conference-description>",
            "out of order",
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
        description: Some(Description {
            subject: None,
            maximum_user_count: Some(20),
        }),
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
        // R93: no description, an empty one, or one with a subject (R95), the maximum, or both
        described in proptest::option::of((
            proptest::option::of(text_bytes()),
            proptest::option::of(any::<u32>()),
        )),
        user_count in proptest::option::of(any::<u32>()),
    ) {
        let entities: Vec<Vec<u8>> =
            raw_users.iter().enumerate().map(|(i, (u, ..))| sip_uri(i, u)).collect();
        let users: Vec<UserEntry<'_>> = raw_users
            .iter()
            .zip(&entities)
            .map(|((_, display, status, method, reason), entity)| UserEntry {
                deleted: false,
                removed: false,
                yourown: false,
                chairman: false,
                entity,
                endpoint_entity: entity,
                display_text: display.as_deref(),
                status: *status,
                disconnection_method: *method,
                disconnection_reason: reason.as_deref(),
                joined_at: None,
                left_at: None,
            })
            .collect();
        let conf = sip_uri(0, &conf_user);
        let state = if partial { DocState::Partial } else { DocState::Full };
        let doc = Document {
            entity: &conf,
            state,
            version,
            description: described.as_ref().map(|(subject, maximum_user_count)| Description {
                subject: subject.as_deref(),
                maximum_user_count: *maximum_user_count,
            }),
            user_count,
            users: &users,
        };
        let mut out = Vec::new();
        write(&doc, &mut out, None);

        let parsed = parse(&out).map_err(|e| {
            TestCaseError::fail(format!("{e}\n{}", String::from_utf8_lossy(&out)))
        })?;
        prop_assert_eq!(&parsed.entity, &as_read(&conf));
        prop_assert_eq!(parsed.state.as_str(), state.as_str());
        prop_assert_eq!(parsed.version, version);
        prop_assert_eq!(parsed.description, described.is_some());
        let (subject, max) = described.clone().unwrap_or_default();
        prop_assert_eq!(parsed.maximum_user_count, max);
        prop_assert_eq!(parsed.subject, subject.as_deref().map(as_read));
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
