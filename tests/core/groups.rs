//! R81-R88 (docs/conformance.md) on the pure group-document support: parsing (and its errors, with
//! lines), R86 identity comparison, the `<allow-conference-state>` policy, display names, and the
//! reload rules of the set of documents. The notifier side (R8, R71) is in group_policy.rs.
use imconf::core::groups::document::{
    parse_document, Condition, DocError, Entry, Except, ListService, Many, Rule,
};
use imconf::core::groups::identity::{same_identity, Identity};
use imconf::core::groups::policy::{self, Decision, NoLists};
use imconf::core::groups::set::{diff_removed, GroupSet, Reload};
use proptest::prelude::*;
use Decision::{Allow, Deny};

const HIKING: &str = include_str!("../../kamailio-cfg/groups/hiking-team.xml");
const CHAT: &str = include_str!("../../kamailio-cfg/groups/chat-friends.xml");
const TOWN_HALL: &str = include_str!("../../kamailio-cfg/groups/town-hall.xml");
const HIKING_URI: &str = "sip:hiking-team@im.example.net";
const CHAT_URI: &str = "sip:chat-friends@im.example.net";
const BOOK_URI: &str = "sip:book-club@im.example.net";
const TOWN_URI: &str = "sip:town-hall@im.example.net";
const GROUP_URI: &str = "sip:g@im.example.net";

const OPEN: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<group xmlns="urn:oma:xml:poc:list-service"
       xmlns:rl="urn:ietf:params:xml:ns:resource-lists"
       xmlns:cp="urn:ietf:params:xml:ns:common-policy"
       xmlns:ocp="urn:oma:xml:xdm:common-policy">
"#;

/// A document with one list-service `uri` holding `inner`.
fn service_doc(uri: &str, inner: &str) -> String {
    format!("{OPEN}<list-service uri=\"{uri}\">{inner}</list-service></group>")
}

/// A document for group `GROUP_URI` with `list` as its `<list>` content and `rules` in its ruleset.
fn doc(list: &str, rules: &[String]) -> String {
    let inner = format!(
        "<list>{list}</list><cp:ruleset>{}</cp:ruleset>",
        rules.concat()
    );
    service_doc(GROUP_URI, &inner)
}

/// A rule; `allow` None leaves `<allow-conference-state>` out.
fn rule(id: &str, conditions: &str, allow: Option<&str>) -> String {
    let action = allow
        .map(|a| format!("<allow-conference-state>{a}</allow-conference-state>"))
        .unwrap_or_default();
    format!(
        "<cp:rule id=\"{id}\"><cp:conditions>{conditions}</cp:conditions>\
         <cp:actions>{action}</cp:actions></cp:rule>"
    )
}

fn entry(uri: &str) -> String {
    format!("<entry uri=\"{uri}\"/>")
}

fn only_service(xml: &str) -> ListService {
    let mut services = parse_document(xml.as_bytes()).expect("the document parses");
    assert_eq!(services.len(), 1);
    services.remove(0)
}

/// The decision of a one-group document, read alone (no external lists), equivalence on.
fn decide(xml: &str, aoia: &str, anonymous: bool) -> Decision {
    let service = only_service(xml);
    policy::allow_conference_state(&service, &NoLists, aoia, anonymous, true)
}

fn files(list: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    list.iter()
        .map(|(name, xml)| (name.to_string(), xml.as_bytes().to_vec()))
        .collect()
}

fn set_of(list: &[(&str, &str)]) -> GroupSet {
    let reload = GroupSet::build(&files(list), &[]);
    assert!(reload.errors.is_empty(), "{:?}", reload.errors);
    reload.set
}

fn decide_in(set: &GroupSet, group: &str, aoia: &str, anonymous: bool) -> Option<Decision> {
    set.allow_conference_state(group, aoia, anonymous, true)
}

fn error_of(xml: &str) -> DocError {
    parse_document(xml.as_bytes()).expect_err("the document is refused")
}

fn assert_error(xml: &str, line: usize, element: &str, message_part: &str) {
    let e = error_of(xml);
    assert_eq!((e.line, e.element.as_str()), (line, element), "{e}");
    assert!(e.message.contains(message_part), "{e}");
}

fn names(reload: &Reload) -> Vec<&str> {
    reload.good.iter().map(|(n, _)| n.as_str()).collect()
}

// ---- the R81-R88 (docs/conformance.md) example ----

#[test]
fn r81_example_document_reads_into_its_parts() {
    let s = only_service(HIKING);
    assert_eq!(s.uri, "sip:hiking-team@im.example.net");
    assert_eq!(s.display_name.as_deref(), Some("Hiking team"));
    assert_eq!(
        s.entries,
        vec![
            Entry {
                uri: "sip:+15550100@example.net".into(),
                display_name: Some("Ana".into())
            },
            Entry {
                uri: "tel:+15550102".into(),
                display_name: Some("Raj".into())
            },
        ]
    );
    assert!(s.externals.is_empty());
    assert_eq!(s.invite_members, Some(true));
    assert_eq!(s.max_participant_count, Some(20));
    assert_eq!(
        s.rules,
        vec![
            Rule {
                id: "members".into(),
                conditions: vec![Condition::IsListMember],
                allow_conference_state: Some(true),
            },
            Rule {
                id: "everyone-else".into(),
                conditions: vec![Condition::OtherIdentity],
                allow_conference_state: Some(false),
            },
        ]
    );
}

#[test]
fn r08_example_ana_is_allowed() {
    assert_eq!(decide(HIKING, "sip:+15550100@example.net", false), Allow);
    // P-Asserted-Identity usually carries user=phone and a display name.
    let pai = "\"Ana\" <sip:+15550100@EXAMPLE.net;user=phone>";
    assert_eq!(decide(HIKING, pai, false), Allow);
}

#[test]
fn r08_example_omar_is_denied() {
    assert_eq!(decide(HIKING, "sip:omar@example.net", false), Deny);
}

#[test]
fn r86_example_raj_is_allowed_as_tel_and_as_sip_user_phone() {
    assert_eq!(decide(HIKING, "tel:+15550102", false), Allow);
    assert_eq!(
        decide(HIKING, "sip:+15550102@example.net;user=phone", false),
        Allow
    );
    // The equivalence is an option (R86): off, only the tel form is Raj.
    let s = only_service(HIKING);
    let sip = "sip:+15550102@example.net;user=phone";
    assert_eq!(
        policy::allow_conference_state(&s, &NoLists, sip, false, false),
        Deny
    );
    assert_eq!(
        policy::allow_conference_state(&s, &NoLists, "tel:+15550102", false, false),
        Allow
    );
}

#[test]
fn r85_no_allow_conference_state_denies() {
    let without = HIKING
        .replace("<allow-conference-state>true</allow-conference-state>", "")
        .replace("<allow-conference-state>false</allow-conference-state>", "");
    for aoia in [
        "sip:+15550100@example.net",
        "tel:+15550102",
        "sip:omar@example.net",
    ] {
        assert_eq!(decide(&without, aoia, false), Deny, "{aoia}");
    }
}

#[test]
fn r85_no_applicable_rule_denies() {
    let d = doc(
        &entry("sip:ana@x.net"),
        &[rule("m", "<is-list-member/>", Some("true"))],
    );
    assert_eq!(decide(&d, "sip:omar@x.net", false), Deny);
    let no_rules = service_doc(
        GROUP_URI,
        &format!("<list>{}</list>", entry("sip:ana@x.net")),
    );
    assert_eq!(decide(&no_rules, "sip:ana@x.net", false), Deny);
}

// ---- R81: rule applicability ----

#[test]
fn r81_empty_or_absent_conditions_apply_to_everyone() {
    let empty = doc("", &[rule("all", "", Some("true"))]);
    assert_eq!(decide(&empty, "sip:anyone@x.net", false), Allow);
    assert_eq!(decide(&empty, "sip:anyone@x.net", true), Allow);
    let absent = doc(
        "",
        &[
            "<cp:rule id=\"all\"><cp:actions><allow-conference-state>true\
           </allow-conference-state></cp:actions></cp:rule>"
                .to_string(),
        ],
    );
    assert_eq!(only_service(&absent).rules[0].conditions, vec![]);
    assert_eq!(decide(&absent, "sip:anyone@x.net", false), Allow);
}

#[test]
fn r81_all_conditions_of_a_rule_must_match() {
    let d = doc(
        &entry("sip:ana@x.net"),
        &[rule(
            "anonymous-members",
            "<is-list-member/><ocp:anonymous-request/>",
            Some("true"),
        )],
    );
    assert_eq!(decide(&d, "sip:ana@x.net", true), Allow);
    assert_eq!(decide(&d, "sip:ana@x.net", false), Deny);
    assert_eq!(decide(&d, "sip:omar@x.net", true), Deny);
}

#[test]
fn r81_transformations_are_ignored() {
    let d = doc(
        "",
        &[
            "<cp:rule id=\"r\"><cp:conditions/><cp:actions><allow-conference-state>true\
           </allow-conference-state></cp:actions><cp:transformations><provide-all/>\
           </cp:transformations></cp:rule>"
                .to_string(),
        ],
    );
    assert_eq!(decide(&d, "sip:a@x.net", false), Allow);
}

// ---- R82: conditions ----

#[test]
fn r82_is_list_member_empty_and_true_content() {
    for condition in [
        "<is-list-member/>",
        "<is-list-member></is-list-member>",
        "<is-list-member>true</is-list-member>",
        "<is-list-member> true </is-list-member>",
    ] {
        let d = doc(
            &entry("sip:ana@x.net"),
            &[rule("m", condition, Some("true"))],
        );
        assert_eq!(
            only_service(&d).rules[0].conditions,
            vec![Condition::IsListMember]
        );
        assert_eq!(decide(&d, "sip:ana@x.net", false), Allow, "{condition}");
        assert_eq!(decide(&d, "sip:omar@x.net", false), Deny, "{condition}");
    }
}

#[test]
fn r82_is_list_member_in_no_namespace_is_read_too() {
    let d = doc(
        &entry("sip:ana@x.net"),
        &[rule("m", "<is-list-member xmlns=\"\"/>", Some("true"))],
    );
    assert_eq!(decide(&d, "sip:ana@x.net", false), Allow);
}

#[test]
fn r82_is_list_member_with_other_content_fails_closed() {
    let d = doc(
        &entry("sip:ana@x.net"),
        &[rule(
            "m",
            "<is-list-member>false</is-list-member>",
            Some("true"),
        )],
    );
    let conditions = &only_service(&d).rules[0].conditions;
    assert!(matches!(conditions[..], [Condition::Unknown(_)]));
    assert_eq!(decide(&d, "sip:ana@x.net", false), Deny);
    assert_eq!(decide(&d, "sip:omar@x.net", false), Deny);
}

#[test]
fn r82_is_list_member_includes_entries_of_external_lists() {
    let set = set_of(&[("chat-friends.xml", CHAT)]);
    // Mira is only in the book club, which chat-friends includes by <external>.
    assert_eq!(
        decide_in(&set, CHAT_URI, "sip:mira@example.org", false),
        Some(Allow)
    );
    assert_eq!(
        decide_in(&set, CHAT_URI, "sip:lena@example.net", false),
        Some(Allow)
    );
    // The inclusion goes one way: the book club does not list chat-friends' members.
    assert_eq!(
        decide_in(&set, BOOK_URI, "sip:lena@example.net", false),
        Some(Deny)
    );
    // Read alone, the external list resolves to nothing.
    let alone = &parse_document(CHAT.as_bytes()).unwrap()[0];
    assert_eq!(alone.externals, vec!["sip:book-club@im.example.net"]);
    assert_eq!(
        policy::allow_conference_state(alone, &NoLists, "sip:mira@example.org", false, true),
        Deny
    );
}

#[test]
fn r82_external_lists_resolve_across_files_and_nested_lists_count() {
    let a = service_doc(
        "sip:a@im.example.net",
        "<list><list><entry uri=\"sip:nested@x.net\"/></list>\
         <external anchor=\"SIP:b@IM.example.net\"/></list>\
         <cp:ruleset><cp:rule id=\"m\"><cp:conditions><is-list-member/></cp:conditions>\
         <cp:actions><allow-conference-state>true</allow-conference-state></cp:actions>\
         </cp:rule></cp:ruleset>",
    );
    let b = service_doc(
        "sip:b@im.example.net",
        "<list><rl:entry uri=\"sip:bea@x.net\"/></list>",
    );
    let set = set_of(&[("a.xml", &a), ("b.xml", &b)]);
    let group = "sip:a@im.example.net";
    assert_eq!(decide_in(&set, group, "sip:bea@x.net", false), Some(Allow));
    assert_eq!(
        decide_in(&set, group, "sip:nested@x.net", false),
        Some(Allow)
    );
    assert_eq!(
        decide_in(&set, group, "sip:nobody@x.net", false),
        Some(Deny)
    );
}

#[test]
fn r82_external_list_cycle_ends() {
    let member_rule = "<cp:ruleset><cp:rule id=\"m\"><cp:conditions><is-list-member/>\
        </cp:conditions><cp:actions><allow-conference-state>true</allow-conference-state>\
        </cp:actions></cp:rule></cp:ruleset>";
    let a = service_doc(
        "sip:a@im.example.net",
        &format!(
            "<list><entry uri=\"sip:al@x.net\"/><external anchor=\"sip:b@im.example.net\"/>\
             <external anchor=\"sip:a@im.example.net\"/></list>{member_rule}"
        ),
    );
    let b = service_doc(
        "sip:b@im.example.net",
        &format!(
            "<list><entry uri=\"sip:bo@x.net\"/><external anchor=\"sip:a@im.example.net\"/>\
             </list>{member_rule}"
        ),
    );
    let set = set_of(&[("a.xml", &a), ("b.xml", &b)]);
    let (ga, gb) = ("sip:a@im.example.net", "sip:b@im.example.net");
    assert_eq!(decide_in(&set, ga, "sip:bo@x.net", false), Some(Allow));
    assert_eq!(decide_in(&set, gb, "sip:al@x.net", false), Some(Allow));
    assert_eq!(decide_in(&set, ga, "sip:nobody@x.net", false), Some(Deny));
    assert_eq!(set.display_name(ga, "sip:nobody@x.net", true), None);
}

#[test]
fn r82_external_anchor_that_resolves_nowhere_adds_nobody() {
    let d = doc(
        "<external anchor=\"http://xcap.example.net/resource-lists/users/sip:x@y/index/~~/resource-lists/list%5b@name=%22f%22%5d\"/>",
        &[rule("m", "<is-list-member/>", Some("true"))],
    );
    let set = set_of(&[("g.xml", &d)]);
    let group = GROUP_URI;
    assert_eq!(decide_in(&set, group, "sip:x@y", false), Some(Deny));
}

#[test]
fn r82_identity_one_by_id() {
    let d = doc(
        "",
        &[rule(
            "one",
            "<cp:identity><cp:one id=\"sip:ana@x.net\"/><cp:one id=\"tel:+15550102\"/></cp:identity>",
            Some("true"),
        )],
    );
    assert_eq!(decide(&d, "sip:ana@X.NET;transport=tcp", false), Allow);
    assert_eq!(
        decide(&d, "sip:+15550102@other.net;user=phone", false),
        Allow
    );
    assert_eq!(decide(&d, "sip:omar@x.net", false), Deny);
}

#[test]
fn r82_identity_many_without_domain_covers_everyone() {
    let d = doc(
        "",
        &[rule(
            "m",
            "<cp:identity><cp:many/></cp:identity>",
            Some("true"),
        )],
    );
    assert_eq!(decide(&d, "sip:a@x.net", false), Allow);
    assert_eq!(decide(&d, "tel:+15550102", false), Allow);
    assert_eq!(decide(&d, "not a uri", false), Deny);
}

#[test]
fn r82_identity_many_by_domain_with_host_case_ignored() {
    let d = doc(
        "",
        &[rule(
            "m",
            "<cp:identity><cp:many domain=\"Example.NET\"/></cp:identity>",
            Some("true"),
        )],
    );
    assert_eq!(decide(&d, "sip:a@example.net", false), Allow);
    assert_eq!(decide(&d, "sips:b@EXAMPLE.net:5061", false), Allow);
    assert_eq!(decide(&d, "sip:a@sub.example.net", false), Deny);
    assert_eq!(decide(&d, "sip:a@example.org", false), Deny);
    // A tel identity has no domain.
    assert_eq!(decide(&d, "tel:+15550102", false), Deny);
}

#[test]
fn r82_identity_many_except_by_id_and_by_domain() {
    let d = doc(
        "",
        &[rule(
            "m",
            "<cp:identity><cp:many><cp:except id=\"sip:eve@good.net\"/>\
             <cp:except domain=\"evil.net\"/></cp:many></cp:identity>",
            Some("true"),
        )],
    );
    assert_eq!(
        only_service(&d).rules[0].conditions,
        vec![Condition::Identity {
            ones: vec![],
            many: vec![Many {
                domain: None,
                excepts: vec![
                    Except {
                        id: Some("sip:eve@good.net".into()),
                        domain: None
                    },
                    Except {
                        id: None,
                        domain: Some("evil.net".into())
                    },
                ],
            }],
        }]
    );
    assert_eq!(decide(&d, "sip:ann@good.net", false), Allow);
    assert_eq!(decide(&d, "sip:eve@GOOD.net;user=ip", false), Deny);
    assert_eq!(decide(&d, "sip:ann@Evil.Net", false), Deny);
}

#[test]
fn r82_chat_friends_colleagues_except_the_intern() {
    let set = set_of(&[("chat-friends.xml", CHAT)]);
    let colleague = "sip:bo@corp.example.com";
    assert_eq!(decide_in(&set, CHAT_URI, colleague, false), Some(Allow));
    let intern = "sip:intern@corp.example.com";
    assert_eq!(decide_in(&set, CHAT_URI, intern, false), Some(Deny));
    let moderator = "sip:mod@im.example.net";
    assert_eq!(decide_in(&set, CHAT_URI, moderator, false), Some(Allow));
    assert_eq!(
        decide_in(&set, CHAT_URI, "sip:zed@example.net", false),
        Some(Deny)
    );
}

#[test]
fn r82_identity_with_an_unknown_child_fails_closed() {
    let d = doc(
        "",
        &[rule(
            "m",
            "<cp:identity xmlns:x=\"urn:example:ext\"><cp:one id=\"sip:ana@x.net\"/>\
             <x:sphere-of-friends/></cp:identity>",
            Some("true"),
        )],
    );
    assert_eq!(
        only_service(&d).rules[0].conditions,
        vec![Condition::Unknown(
            "{urn:example:ext}sphere-of-friends".into()
        )]
    );
    assert_eq!(decide(&d, "sip:ana@x.net", false), Deny);
}

#[test]
fn r82_external_list_condition() {
    let club = service_doc(
        "sip:club@im.example.net",
        "<list><entry uri=\"sip:cat@x.net\"/></list>",
    );
    let g = doc(
        "",
        &[rule(
            "club",
            "<ocp:external-list><ocp:entry anc=\"sip:club@im.example.net\"/>\
             <ocp:entry anc=\"sip:missing@im.example.net\"/></ocp:external-list>",
            Some("true"),
        )],
    );
    assert_eq!(
        only_service(&g).rules[0].conditions,
        vec![Condition::ExternalList(vec![
            "sip:club@im.example.net".into(),
            "sip:missing@im.example.net".into()
        ])]
    );
    let set = set_of(&[("club.xml", &club), ("g.xml", &g)]);
    let group = GROUP_URI;
    assert_eq!(decide_in(&set, group, "sip:cat@x.net", false), Some(Allow));
    assert_eq!(decide_in(&set, group, "sip:dog@x.net", false), Some(Deny));
}

#[test]
fn r82_other_identity_matches_only_identities_no_other_rule_names() {
    let d = doc(
        &entry("sip:ana@x.net"),
        &[
            rule("members", "<is-list-member/>", Some("false")),
            rule(
                "boss",
                "<cp:identity><cp:one id=\"sip:boss@x.net\"/></cp:identity>",
                None,
            ),
            rule("others", "<ocp:other-identity/>", Some("true")),
        ],
    );
    // Named by another rule's condition: not "other", even where that rule grants nothing.
    assert_eq!(decide(&d, "sip:ana@x.net", false), Deny);
    assert_eq!(decide(&d, "sip:boss@x.net", false), Deny);
    assert_eq!(decide(&d, "sip:zed@x.net", false), Allow);
}

#[test]
fn r82_other_identity_ignores_its_own_rule() {
    let d = doc(
        "",
        &[rule(
            "self",
            "<cp:identity><cp:one id=\"sip:ana@x.net\"/></cp:identity><ocp:other-identity/>",
            Some("true"),
        )],
    );
    assert_eq!(decide(&d, "sip:ana@x.net", false), Allow);
}

#[test]
fn r82_other_identity_counts_a_matching_condition_even_when_its_rule_does_not_apply() {
    let d = doc(
        "",
        &[
            rule(
                "ana-anonymous",
                "<cp:identity><cp:one id=\"sip:ana@x.net\"/></cp:identity><ocp:anonymous-request/>",
                Some("true"),
            ),
            rule("others", "<ocp:other-identity/>", Some("true")),
        ],
    );
    assert_eq!(decide(&d, "sip:ana@x.net", true), Allow);
    assert_eq!(decide(&d, "sip:ana@x.net", false), Deny);
}

#[test]
fn r82_anonymous_request_true_and_false() {
    let d = doc(
        "",
        &[rule("anon", "<ocp:anonymous-request/>", Some("true"))],
    );
    assert_eq!(decide(&d, "sip:a@x.net", true), Allow);
    assert_eq!(decide(&d, "sip:a@x.net", false), Deny);
}

#[test]
fn r82_anonymous_request_keeps_anonymous_subscribers_out_of_other_identity() {
    let set = set_of(&[("town-hall.xml", TOWN_HALL)]);
    assert_eq!(
        decide_in(&set, TOWN_URI, "sip:joe@example.net", false),
        Some(Allow)
    );
    assert_eq!(
        decide_in(&set, TOWN_URI, "sip:joe@example.net", true),
        Some(Deny)
    );
    // chat-friends: an anonymous member still passes (R84), an anonymous stranger does not.
    let chat = set_of(&[("chat-friends.xml", CHAT)]);
    assert_eq!(
        decide_in(&chat, CHAT_URI, "sip:lena@example.net", true),
        Some(Allow)
    );
    assert_eq!(
        decide_in(&chat, CHAT_URI, "sip:zed@example.net", true),
        Some(Deny)
    );
}

#[test]
fn r82_unknown_condition_fails_closed() {
    let d = doc(
        &entry("sip:ana@x.net"),
        &[rule(
            "m",
            "<is-list-member/><cp:validity><cp:from>2020-01-01T00:00:00Z</cp:from></cp:validity>",
            Some("true"),
        )],
    );
    let conditions = &only_service(&d).rules[0].conditions;
    assert_eq!(
        conditions[1],
        Condition::Unknown("{urn:ietf:params:xml:ns:common-policy}validity".into())
    );
    assert_eq!(decide(&d, "sip:ana@x.net", false), Deny);
    // An unknown condition alone does not make "everyone" either.
    let alone = doc(
        "",
        &[rule("x", "<cp:sphere value=\"work\"/>", Some("true"))],
    );
    assert_eq!(decide(&alone, "sip:ana@x.net", false), Deny);
}

#[test]
fn r82_a_known_name_in_another_namespace_is_unknown() {
    let d = doc(
        &entry("sip:ana@x.net"),
        &[rule("m", "<cp:is-list-member/>", Some("true"))],
    );
    assert!(matches!(
        only_service(&d).rules[0].conditions[..],
        [Condition::Unknown(_)]
    ));
    assert_eq!(decide(&d, "sip:ana@x.net", false), Deny);
}

/// Every element without a prefix gets `prefix:` (the default namespace is then declared for it).
fn prefix_unprefixed(xml: &str, prefix: &str) -> String {
    let mut out = String::with_capacity(xml.len() * 2);
    let mut rest = xml;
    while let Some(at) = rest.find('<') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let slash = rest.starts_with('/');
        if slash {
            out.push('/');
            rest = &rest[1..];
        }
        let name_end = rest
            .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
            .unwrap_or(rest.len());
        let name = &rest[..name_end];
        if name.starts_with(|c: char| c.is_ascii_alphabetic()) && !name.contains(':') {
            out.push_str(prefix);
            out.push(':');
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn r82_prefixes_do_not_matter_only_namespaces() {
    let prefixed = prefix_unprefixed(HIKING, "ls")
        .replace(
            "xmlns=\"urn:oma:xml:poc:list-service\"",
            "xmlns:ls=\"urn:oma:xml:poc:list-service\"",
        )
        .replace("xmlns:cp=", "xmlns:policy=")
        .replace("<cp:", "<policy:")
        .replace("</cp:", "</policy:")
        .replace("xmlns:ocp=", "xmlns:oma=")
        .replace("<ocp:", "<oma:");
    assert!(
        prefixed.contains("<ls:allow-conference-state>"),
        "{prefixed}"
    );
    assert_eq!(
        parse_document(prefixed.as_bytes()).unwrap(),
        parse_document(HIKING.as_bytes()).unwrap()
    );
    // chat-friends.xml is written with other prefixes throughout.
    let chat = &parse_document(CHAT.as_bytes()).unwrap()[0];
    assert_eq!(chat.entries.len(), 2);
    assert_eq!(chat.rules.len(), 5);
    assert_eq!(chat.rules[0].conditions, vec![Condition::IsListMember]);
}

// ---- R83, R84: actions ----

#[test]
fn r83_boolean_spellings() {
    for (value, expected) in [
        ("true", Some(true)),
        ("1", Some(true)),
        (" true\n", Some(true)),
        ("false", Some(false)),
        ("0", Some(false)),
    ] {
        let d = doc("", &[rule("r", "", Some(value))]);
        assert_eq!(
            only_service(&d).rules[0].allow_conference_state,
            expected,
            "{value:?}"
        );
        let want = if expected == Some(true) { Allow } else { Deny };
        assert_eq!(decide(&d, "sip:a@x.net", false), want, "{value:?}");
    }
}

#[test]
fn r83_other_actions_are_recognised_and_ignored() {
    let actions = "<join-handling>block</join-handling><join-handling>allow</join-handling>\
        <allow-invite-users-dynamically>true</allow-invite-users-dynamically>\
        <allow-initiate-conference>0</allow-initiate-conference>\
        <allow-anonymity>1</allow-anonymity><is-key-participant>false</is-key-participant>\
        <x:future xmlns:x=\"urn:example:ext\">maybe</x:future><some-new-action>soon</some-new-action>";
    let d = doc(
        "",
        &[format!(
            "<cp:rule id=\"r\"><cp:actions>{actions}</cp:actions></cp:rule>"
        )],
    );
    assert_eq!(only_service(&d).rules[0].allow_conference_state, None);
    assert_eq!(decide(&d, "sip:a@x.net", false), Deny);
}

#[test]
fn r84_true_wins_over_false() {
    let d = doc(
        &entry("sip:ana@x.net"),
        &[
            rule(
                "no",
                "<cp:identity><cp:one id=\"sip:ana@x.net\"/></cp:identity>",
                Some("false"),
            ),
            rule("yes", "<is-list-member/>", Some("true")),
            rule("absent", "", None),
        ],
    );
    assert_eq!(decide(&d, "sip:ana@x.net", false), Allow);
}

#[test]
fn r84_several_false_rules_deny() {
    let d = doc(
        &entry("sip:ana@x.net"),
        &[
            rule("a", "<is-list-member/>", Some("false")),
            rule("b", "", Some("0")),
        ],
    );
    assert_eq!(decide(&d, "sip:ana@x.net", false), Deny);
}

// ---- R86: identity comparison ----

fn same(a: &str, b: &str) -> bool {
    same_identity(a, b, true)
}

#[test]
fn r86_host_is_case_insensitive() {
    assert!(same("sip:ana@EXAMPLE.Net", "sip:ana@example.net"));
    assert!(same("SIP:ana@example.net", "sip:ana@example.net"));
}

#[test]
fn r86_user_is_case_sensitive() {
    assert!(!same("sip:Ana@example.net", "sip:ana@example.net"));
    assert!(same("sip:%41na@example.net", "sip:Ana@example.net"));
}

#[test]
fn r86_uri_parameters_port_and_headers_are_ignored() {
    assert!(same(
        "sip:ana@example.net:5061;transport=tls;gr=urn:uuid:1?subject=hi",
        "sip:ana@example.net"
    ));
    assert!(same(
        "\"Ana\" <sip:ana@example.net;lr>",
        "sip:ana@example.net"
    ));
}

#[test]
fn r86_user_phone_reads_the_user_as_a_number() {
    assert!(same(
        "sip:+1-555-0100@example.net;user=phone",
        "sip:+15550100@example.net;user=phone"
    ));
    // The parameter alone does not make another user at the same host.
    assert!(same(
        "sip:+15550100@example.net;user=phone",
        "sip:+15550100@example.net"
    ));
    // Without user=phone a user part is a name: separators count.
    assert!(!same(
        "sip:+1-555-0100@example.net",
        "sip:+15550100@example.net"
    ));
}

#[test]
fn r86_tel_equals_sip_user_phone_at_any_host_when_enabled() {
    assert!(same(
        "tel:+1-555-0102",
        "sip:+15550102@example.net;user=phone"
    ));
    assert!(same("sip:+15550102@other.org;user=phone", "tel:+15550102"));
    assert!(same(
        "sip:+15550102@a.net;user=phone",
        "sip:+15550102@b.net;user=phone"
    ));
    let off = |a: &str, b: &str| same_identity(a, b, false);
    assert!(!off(
        "tel:+15550102",
        "sip:+15550102@example.net;user=phone"
    ));
    assert!(off("tel:+15550102", "tel:+1-555-0102"));
}

#[test]
fn r86_tel_needs_user_phone_and_a_global_number() {
    assert!(!same("tel:+15550102", "sip:+15550102@example.net"));
    assert!(!same(
        "tel:5550102;phone-context=example.net",
        "sip:5550102@example.net;user=phone"
    ));
}

#[test]
fn r86_sip_and_sips_name_the_same_user() {
    assert!(same("sips:ana@example.net", "sip:ana@example.net"));
}

#[test]
fn r86_what_is_not_a_uri_matches_nothing() {
    assert!(!same("ana", "ana"));
    assert!(!same("mailto:ana@example.net", "mailto:ana@example.net"));
    assert!(!same("<sip:ana@example.net", "sip:ana@example.net"));
    assert!(Identity::parse("sip:ana@example.net").is_some());
    assert!(Identity::parse("").is_none());
}

// ---- R49, R88: display name and max-participant-count ----

#[test]
fn r88_display_name_is_the_entry_display_name() {
    let set = set_of(&[("hiking-team.xml", HIKING)]);
    let name = |aoia: &str| set.display_name(HIKING_URI, aoia, true);
    assert_eq!(name("sip:+15550100@example.net"), Some("Ana"));
    assert_eq!(name("sip:+15550102@example.net;user=phone"), Some("Raj"));
    assert_eq!(name("sip:omar@example.net"), None);
    assert_eq!(
        set.display_name("sip:nope@im.example.net", "tel:+15550102", true),
        None
    );
}

#[test]
fn r88_display_name_looks_into_external_lists_and_skips_entries_without_one() {
    let chat = set_of(&[("chat-friends.xml", CHAT)]);
    let mira = "sip:mira@example.org";
    assert_eq!(chat.display_name(CHAT_URI, mira, true), Some("Mira"));
    let d = doc(
        "<entry uri=\"sip:ana@x.net\"/><entry uri=\"sip:ana@X.net\">\
         <rl:display-name>Ana</rl:display-name></entry>",
        &[],
    );
    let s = only_service(&d);
    assert_eq!(
        policy::display_name(&s, &NoLists, "sip:ana@x.net", true),
        Some("Ana")
    );
}

#[test]
fn r88_max_participant_count() {
    let set = set_of(&[("hiking-team.xml", HIKING), ("town-hall.xml", TOWN_HALL)]);
    assert_eq!(set.max_participant_count(HIKING_URI), Some(20));
    assert_eq!(set.max_participant_count(TOWN_URI), Some(500));
    assert_eq!(set.max_participant_count("sip:nope@im.example.net"), None);
    let none = doc("", &[]);
    assert_eq!(only_service(&none).max_participant_count, None);
    let plus = service_doc(
        GROUP_URI,
        "<max-participant-count> +7 </max-participant-count>",
    );
    assert_eq!(only_service(&plus).max_participant_count, Some(7));
}

// ---- document errors, with their lines ----

#[test]
fn r87_doc_error_display_names_line_and_element() {
    let e = DocError {
        line: 12,
        element: "max-participant-count".into(),
        message: "not a non-negative integer".into(),
    };
    assert_eq!(
        e.to_string(),
        "line 12 <max-participant-count>: not a non-negative integer"
    );
    let outside = DocError {
        line: 1,
        element: String::new(),
        message: "no root element".into(),
    };
    assert_eq!(outside.to_string(), "line 1: no root element");
}

#[test]
fn r87_doc_error_non_integer_max_participant_count() {
    let bad = HIKING.replace(">20<", ">twenty<");
    let e = error_of(&bad);
    assert_eq!(
        e.to_string(),
        "line 15 <max-participant-count>: not a non-negative integer"
    );
    assert_error(
        &HIKING.replace(">20<", ">-1<"),
        15,
        "max-participant-count",
        "non-negative",
    );
    assert_error(
        &HIKING.replace(">20<", "><"),
        15,
        "max-participant-count",
        "non-negative",
    );
    let big = HIKING.replace(">20<", ">4294967296<");
    assert_error(&big, 15, "max-participant-count", "larger than 4294967295");
}

#[test]
fn r87_doc_error_not_well_formed() {
    let bad = HIKING.replace("</list>", "</lists>");
    let e = error_of(&bad);
    assert_eq!(e.line, 13, "{e}");
    assert!(e.message.contains("not well-formed"), "{e}");
    assert_error("", 1, "", "no root element");
    assert_error(
        "<group xmlns=\"urn:oma:xml:poc:list-service\">\n<list-service",
        2,
        "group",
        "not well-formed",
    );
    let e = error_of("<?xml version=\"1.0\"?>\n\n<group xmlns=\"urn:oma:xml:poc:list-service\"><list-service uri=\"sip:g@x\">");
    assert_eq!(e.line, 3, "{e}");
}

#[test]
fn r87_doc_error_not_utf8() {
    let mut bytes = HIKING.as_bytes().to_vec();
    let at = HIKING.find(">Ana<").unwrap() + 1;
    bytes[at] = 0xff;
    let e = parse_document(&bytes).unwrap_err();
    assert_eq!(e.line, 11, "{e}");
    assert!(e.message.contains("not UTF-8"), "{e}");
    let latin = HIKING.replace("encoding=\"UTF-8\"", "encoding=\"ISO-8859-1\"");
    assert_error(&latin, 1, "", "only UTF-8");
}

#[test]
fn r87_doc_error_wrong_root_name_or_namespace() {
    let name = HIKING
        .replace("<group ", "<groups ")
        .replace("</group>", "</groups>");
    assert_error(&name, 4, "groups", "the root must be <group>");
    let ns = HIKING.replace(
        "xmlns=\"urn:oma:xml:poc:list-service\"",
        "xmlns=\"urn:oma:xml:poc:list-services\"",
    );
    assert_error(&ns, 4, "group", "urn:oma:xml:poc:list-services");
    let none = "<group><list-service uri=\"sip:g@x\"/></group>";
    assert_error(none, 1, "group", "the root must be <group>");
}

#[test]
fn r87_doc_error_no_list_service() {
    let empty = format!("{OPEN}</group>");
    assert_error(&empty, 2, "group", "no <list-service>");
}

#[test]
fn r87_doc_error_list_service_without_uri_or_with_a_bad_one() {
    let none = HIKING.replace(" uri=\"sip:hiking-team@im.example.net\"", "");
    assert_error(&none, 8, "list-service", "no uri attribute");
    let bad = HIKING.replace("sip:hiking-team@im.example.net", "hiking-team");
    assert_error(&bad, 8, "list-service", "not a sip, sips or tel URI");
}

#[test]
fn r87_doc_error_group_defined_twice_in_one_document() {
    let twice = format!(
        "{OPEN}<list-service uri=\"sip:g@x.net\"/>\n<list-service uri=\"SIP:g@X.net;lr\"/></group>"
    );
    assert_error(&twice, 7, "list-service", "already defined at line 6");
}

#[test]
fn r87_doc_error_entry_without_uri_and_external_without_anchor() {
    let entry = HIKING.replace("<entry uri=\"tel:+15550102\">", "<entry>");
    assert_error(&entry, 12, "entry", "no uri attribute");
    let external = doc("\n<external/>", &[]);
    assert_error(&external, 7, "external", "no anchor attribute");
}

#[test]
fn r87_doc_error_non_boolean_action_value() {
    let bad = HIKING.replace(
        "<allow-conference-state>true<",
        "<allow-conference-state>yes<",
    );
    assert_error(&bad, 21, "allow-conference-state", "not a boolean");
    let ignored = HIKING.replace("<join-handling>true<", "<join-handling>maybe<");
    assert_error(&ignored, 20, "join-handling", "not a boolean");
    let invite = HIKING.replace("<invite-members>true<", "<invite-members>TRUE<");
    assert_error(&invite, 14, "invite-members", "not a boolean");
}

#[test]
fn r87_doc_error_rule_shape() {
    let no_id = HIKING.replace("<cp:rule id=\"members\">", "<cp:rule>");
    assert_error(&no_id, 17, "rule", "no id attribute");
    let same_id = HIKING.replace("id=\"everyone-else\"", "id=\"members\"");
    assert_error(&same_id, 24, "rule", "rule id \"members\" appears twice");
    let twice = HIKING.replace(
        "<join-handling>true</join-handling>",
        "<allow-conference-state>false</allow-conference-state>",
    );
    assert_error(&twice, 21, "allow-conference-state", "appears twice");
    let one = doc(
        "",
        &[rule(
            "r",
            "\n<cp:identity><cp:one/></cp:identity>",
            Some("true"),
        )],
    );
    assert_error(&one, 7, "one", "no id attribute");
    let anc = doc(
        "",
        &[rule(
            "r",
            "<ocp:external-list>\n<ocp:entry/></ocp:external-list>",
            Some("true"),
        )],
    );
    assert_error(&anc, 7, "entry", "no anc attribute");
}

#[test]
fn r87_doc_error_single_elements_appear_once() {
    let count = HIKING.replace(
        "<max-participant-count>20</max-participant-count>",
        "<max-participant-count>20</max-participant-count>\n<max-participant-count>2</max-participant-count>",
    );
    assert_error(&count, 16, "max-participant-count", "appears twice");
    let ruleset = HIKING.replace("</cp:ruleset>", "</cp:ruleset>\n<cp:ruleset/>");
    assert_error(&ruleset, 29, "ruleset", "appears twice");
    let conditions = HIKING.replace(
        "<cp:conditions><is-list-member/></cp:conditions>",
        "<cp:conditions><is-list-member/></cp:conditions><cp:conditions/>",
    );
    assert_error(&conditions, 18, "conditions", "appears twice");
}

#[test]
fn r87_doc_error_undeclared_prefix_and_doctype() {
    let prefix = HIKING.replace("<ocp:other-identity/>", "<oma:other-identity/>");
    assert_error(
        &prefix,
        25,
        "other-identity",
        "prefix \"oma\" is not declared",
    );
    let doctype = HIKING.replace(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><!DOCTYPE group>",
    );
    assert_error(&doctype, 1, "", "DOCTYPE");
}

// ---- the set of documents and its reload rules ----

fn hiking_with(count: u32) -> String {
    HIKING.replace(">20<", &format!(">{count}<"))
}

#[test]
fn r86_group_lookup_compares_group_uris() {
    let set = set_of(&[("hiking-team.xml", HIKING)]);
    assert!(set
        .get("sip:hiking-team@IM.EXAMPLE.NET;transport=tcp")
        .is_some());
    assert!(set.get("<sips:hiking-team@im.example.net>").is_some());
    assert!(set.get("sip:Hiking-Team@im.example.net").is_none());
    assert_eq!(
        decide_in(&set, "sip:unknown@im.example.net", "tel:+15550102", false),
        None
    );
    assert_eq!(
        set.group_uris().collect::<Vec<_>>(),
        vec!["sip:hiking-team@im.example.net"]
    );
}

#[test]
fn r87_reload_holds_every_group_of_every_file() {
    let set = set_of(&[
        ("town-hall.xml", TOWN_HALL),
        ("hiking-team.xml", HIKING),
        ("chat-friends.xml", CHAT),
    ]);
    assert_eq!(set.len(), 4);
    for uri in [HIKING_URI, CHAT_URI, BOOK_URI, TOWN_URI] {
        assert!(set.get(uri).is_some(), "{uri}");
    }
}

#[test]
fn r87_reload_good_file_replaces_its_previous_version() {
    let first = GroupSet::build(&files(&[("hiking-team.xml", HIKING)]), &[]);
    let second = GroupSet::build(
        &files(&[("hiking-team.xml", &hiking_with(30))]),
        &first.good,
    );
    assert!(second.errors.is_empty());
    assert_eq!(second.set.max_participant_count(HIKING_URI), Some(30));
    assert_eq!(second.good, files(&[("hiking-team.xml", &hiking_with(30))]));
}

#[test]
fn r87_reload_bad_file_keeps_its_previous_version_and_reports_the_error() {
    let first = GroupSet::build(&files(&[("hiking-team.xml", HIKING)]), &[]);
    let broken = HIKING.replace(">20<", ">lots<");
    let second = GroupSet::build(&files(&[("hiking-team.xml", &broken)]), &first.good);
    assert_eq!(second.errors.len(), 1);
    let (name, error) = &second.errors[0];
    assert_eq!(name, "hiking-team.xml");
    assert_eq!(
        error.to_string(),
        "line 15 <max-participant-count>: not a non-negative integer"
    );
    // Still the old document, still the old bytes to keep.
    assert_eq!(second.set.max_participant_count(HIKING_URI), Some(20));
    assert_eq!(second.good, first.good);
    assert_eq!(
        decide_in(&second.set, HIKING_URI, "tel:+15550102", false),
        Some(Allow)
    );
}

#[test]
fn r87_reload_bad_file_without_previous_version_contributes_nothing() {
    let reload = GroupSet::build(
        &files(&[("a.xml", "<oops"), ("hiking-team.xml", HIKING)]),
        &[],
    );
    assert_eq!(reload.errors.len(), 1);
    assert_eq!(reload.errors[0].0, "a.xml");
    assert_eq!(names(&reload), vec!["hiking-team.xml"]);
    assert_eq!(reload.set.len(), 1);
}

#[test]
fn r67_removed_file_removes_its_groups() {
    let first = GroupSet::build(
        &files(&[("hiking-team.xml", HIKING), ("town-hall.xml", TOWN_HALL)]),
        &[],
    );
    let second = GroupSet::build(&files(&[("town-hall.xml", TOWN_HALL)]), &first.good);
    assert!(second.set.get(HIKING_URI).is_none());
    assert_eq!(names(&second), vec!["town-hall.xml"]);
    assert_eq!(
        diff_removed(&first.set, &second.set),
        vec!["sip:hiking-team@im.example.net".to_string()]
    );
    assert!(diff_removed(&second.set, &first.set).is_empty());
}

#[test]
fn r67_diff_removed_lists_groups_gone_from_a_file_that_stays() {
    let first = set_of(&[("chat-friends.xml", CHAT)]);
    // The book club's list-service goes; chat-friends' <external> to it then names nothing.
    let start = CHAT.find("<g:list-service uri=\"sip:book-club").unwrap();
    let end = CHAT.rfind("</g:list-service>").unwrap() + "</g:list-service>".len();
    let trimmed = format!("{}{}", &CHAT[..start], &CHAT[end..]);
    let second = set_of(&[("chat-friends.xml", &trimmed)]);
    assert_eq!(
        diff_removed(&first, &second),
        vec!["sip:book-club@im.example.net".to_string()]
    );
    let mira = "sip:mira@example.org";
    assert_eq!(decide_in(&second, CHAT_URI, mira, false), Some(Deny));
}

#[test]
fn r87_reload_duplicate_group_uri_is_an_error_for_the_later_file() {
    let copy = HIKING.replace(
        "sip:hiking-team@im.example.net",
        "SIP:hiking-team@IM.example.net",
    );
    let reload = GroupSet::build(
        &files(&[("b-copy.xml", &copy), ("a-hiking.xml", HIKING)]),
        &[],
    );
    assert_eq!(names(&reload), vec!["a-hiking.xml"]);
    assert_eq!(reload.errors.len(), 1);
    let (name, e) = &reload.errors[0];
    assert_eq!(name, "b-copy.xml");
    assert_eq!((e.line, e.element.as_str()), (8, "list-service"));
    assert!(e.message.contains("already defined in a-hiking.xml"), "{e}");
    assert_eq!(
        reload.set.get(HIKING_URI).unwrap().uri,
        "sip:hiking-team@im.example.net"
    );
}

#[test]
fn r87_reload_clashing_file_keeps_its_previous_version_only_if_that_does_not_clash() {
    let first = GroupSet::build(&files(&[("a.xml", TOWN_HALL), ("b.xml", HIKING)]), &[]);
    // b.xml now also defines the town hall: refused, its old version (hiking only) stays.
    let both = format!(
        "{OPEN}<list-service uri=\"sip:hiking-team@im.example.net\"/>\
         <list-service uri=\"sip:town-hall@im.example.net\"/></group>"
    );
    let second = GroupSet::build(
        &files(&[("a.xml", TOWN_HALL), ("b.xml", &both)]),
        &first.good,
    );
    assert_eq!(second.errors.len(), 1);
    assert_eq!(second.errors[0].0, "b.xml");
    assert_eq!(second.good, first.good);
    assert_eq!(second.set.max_participant_count(HIKING_URI), Some(20));

    // a.xml now takes the hiking team: b.xml's new and old versions both clash, so b.xml is out.
    let a_both = format!(
        "{OPEN}<list-service uri=\"sip:hiking-team@im.example.net\"/>\
         <list-service uri=\"sip:town-hall@im.example.net\"/></group>"
    );
    let third = GroupSet::build(
        &files(&[("a.xml", &a_both), ("b.xml", HIKING)]),
        &second.good,
    );
    assert_eq!(names(&third), vec!["a.xml"]);
    assert_eq!(third.errors[0].0, "b.xml");
    assert_eq!(third.set.max_participant_count(HIKING_URI), None);
}

#[test]
fn r87_reload_file_order_is_by_name_not_by_position() {
    let copy = HIKING.replace(">20<", ">99<");
    let forward = GroupSet::build(&files(&[("x.xml", &copy), ("y.xml", HIKING)]), &[]);
    let backward = GroupSet::build(&files(&[("y.xml", HIKING), ("x.xml", &copy)]), &[]);
    for reload in [forward, backward] {
        assert_eq!(reload.set.max_participant_count(HIKING_URI), Some(99));
        assert_eq!(reload.errors[0].0, "y.xml");
    }
}

#[test]
fn r81_every_shipped_group_document_parses() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/kamailio-cfg/groups");
    let mut read = Vec::new();
    for entry in std::fs::read_dir(dir).expect("kamailio-cfg/groups exists") {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        if let Err(e) = parse_document(&bytes) {
            panic!("{}: {e}", path.display());
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        read.push((name, bytes));
    }
    assert!(read.len() >= 3, "{read:?}");
    let reload = GroupSet::build(&read, &[]);
    assert!(reload.errors.is_empty(), "{:?}", reload.errors);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// R87: whatever a file holds, it is read or refused with a line inside the document.
    #[test]
    fn r87_any_bytes_are_read_or_refused(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Err(e) = parse_document(&bytes) {
            prop_assert!(e.line >= 1 && e.line <= 1 + bytes.iter().filter(|&&b| b == b'\n').count());
        }
    }

    /// The same for the example document with one byte changed or cut short.
    #[test]
    fn r87_damaged_example_is_read_or_refused(at in 0..HIKING.len(), byte in any::<u8>(), cut in any::<bool>()) {
        let mut bytes = HIKING.as_bytes().to_vec();
        if cut {
            bytes.truncate(at);
        } else {
            bytes[at] = byte;
        }
        if let Ok(services) = parse_document(&bytes) {
            let set = GroupSet::build(&[("f.xml".to_string(), bytes)], &[]).set;
            for s in &services {
                let _ = set.allow_conference_state(&s.uri, "tel:+15550102", false, true);
            }
        }
    }
}

/// URIs that R86 folds together or keeps apart in every way it knows (issue 18's index).
fn r86_uri() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("sip:ana@example.net".to_string()),
        Just("sips:ana@EXAMPLE.net:5061".to_string()),
        Just("sip:%61na@example.net".to_string()),
        Just("sip:Ana@example.net".to_string()),
        Just("sip:+15550100@example.net;user=phone".to_string()),
        Just("sip:+1-555-0100@other.net;user=phone".to_string()),
        Just("sip:+15550100@example.net".to_string()),
        Just("tel:+1.555.0100".to_string()),
        Just("tel:+15550102".to_string()),
        Just("tel:5550102;phone-context=example.net".to_string()),
        Just("sip:5550102@example.net;user=phone".to_string()),
        Just("<sip:raj@example.net>".to_string()),
        Just("sip:raj@example.net;transport=tcp".to_string()),
        Just("not a uri".to_string()),
        Just("sip:".to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Issue 18: the members index decides exactly as comparing the AOIA with every entry (R86),
    /// for membership (R82) and for the display name (R49/R88: the first named entry).
    #[test]
    fn r86_member_index_is_the_linear_scan(
        uris in proptest::collection::vec((r86_uri(), any::<bool>()), 0..12),
        aoia in r86_uri(),
        equivalence in any::<bool>(),
    ) {
        let list: String = uris
            .iter()
            .enumerate()
            .map(|(i, (u, named))| {
                let u = u.replace('<', "&lt;").replace('>', "&gt;");
                if *named {
                    format!("<entry uri=\"{u}\"><rl:display-name>n{i}</rl:display-name></entry>")
                } else {
                    format!("<entry uri=\"{u}\"/>")
                }
            })
            .collect();
        let xml = doc(&list, &[rule("m", "<is-list-member/>", Some("true"))]);
        let service = only_service(&xml);
        let linear: Vec<usize> = (0..uris.len())
            .filter(|&i| same_identity(&aoia, &uris[i].0, equivalence))
            .collect();
        let id = Identity::parse(&aoia);
        let indexed = id.as_ref().map(|a| service.members.positions(a, equivalence)).unwrap_or_default();
        prop_assert_eq!(&indexed, &linear);
        let want = if linear.is_empty() { Deny } else { Allow };
        prop_assert_eq!(policy::allow_conference_state(&service, &NoLists, &aoia, false, equivalence), want);
        let name = linear.iter().find(|&&i| uris[i].1).map(|i| format!("n{i}"));
        prop_assert_eq!(policy::display_name(&service, &NoLists, &aoia, equivalence).map(str::to_owned), name);
    }
}
