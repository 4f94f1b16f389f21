//! R93-R94 (issue 16): output profiles, per subscription. The same session with one subscriber
//! of each profile: each gets documents in its own profile, whatever the others have.

use crate::common::{alice_subscribe, connected, unthrottled_cfg, ALICE, ALICE_HEADERS, SESSION};
use allocator_api2::alloc::Global;
use imconf::core::conference_info::{self, EndpointStatus, ParsedDocument};
use imconf::core::config::Config;
use imconf::core::notifier::{Notifier, Notify, SubscribeRequest};
use imconf::core::profile::{DefaultProfile, Profile};
use imconf::core::session::{ParticipantUpdate, SessionKind};

const BOB: &[u8] = b"sip:bob@example.net";
const DAVE: &[u8] = b"sip:dave@example.net";

/// Alice subscribes three times (three dialogs), once per profile; every NOTIFY is answered
/// 200 at once. Returns the notifier and, per profile, the documents each dialog got.
struct Three {
    cfg: Config,
    n: Notifier<Global>,
    docs: Vec<(Profile, Vec<ParsedDocument>)>,
    now: u64,
}

impl Three {
    fn new(cfg: Config) -> Three {
        let mut n = Notifier::new_in(7, Global);
        n.open_session(SESSION, SessionKind::AdHoc, None).unwrap();
        n.participant(&cfg, 0, SESSION, &connected(ALICE)).unwrap();
        n.participant(&cfg, 0, SESSION, &connected(BOB)).unwrap();
        let mut t = Three {
            cfg,
            n,
            docs: Vec::new(),
            now: 0,
        };
        for (i, p) in Profile::ALL.into_iter().enumerate() {
            let call_id = format!("c{i}");
            let req = SubscribeRequest {
                profile: Some(p),
                ..alice_subscribe(call_id.as_bytes(), &ALICE_HEADERS)
            };
            let out = t.n.subscribe(&t.cfg, 0, &req, format!("t{i}").as_bytes());
            assert_eq!(out.reply.code, 200, "{p:?}");
            t.docs.push((p, Vec::new()));
            t.deliver(out.notifies);
        }
        t
    }

    fn deliver(&mut self, notifies: Vec<Notify>) {
        let mut pending = notifies;
        while let Some(x) = pending.pop() {
            if !x.body.is_empty() {
                let doc = conference_info::parse(&x.body).unwrap_or_else(|e| {
                    panic!("strict reader: {e}\n{}", String::from_utf8_lossy(&x.body))
                });
                let i = usize::from(x.call_id[1] - b'0');
                self.docs[i].1.push(doc);
            }
            let more = self.n.notify_completed(&self.cfg, self.now, x.token, 200);
            pending.extend(more);
        }
    }

    fn change(&mut self, u: ParticipantUpdate<'_>) {
        self.now += 10;
        let out = self
            .n
            .participant(&self.cfg, self.now, SESSION, &u)
            .unwrap();
        self.deliver(out);
        // R58: a deletion due goes in a NOTIFY of its own, from the timer
        let out = self.n.tick(&self.cfg, self.now + 1);
        self.deliver(out);
    }

    fn of(&self, p: Profile) -> &[ParsedDocument] {
        &self.docs.iter().find(|(q, _)| *q == p).unwrap().1
    }
}

/// DAVE's (state, status, disconnection-method) in each document that lists him.
fn dave(docs: &[ParsedDocument]) -> Vec<(String, String, Option<String>)> {
    docs.iter()
        .filter_map(|d| d.users.iter().find(|u| u.entity.as_bytes() == DAVE))
        .map(|u| {
            (
                u.state.clone(),
                u.status.clone(),
                u.disconnection_method.clone(),
            )
        })
        .collect()
}

fn s(v: &str) -> String {
    v.to_string()
}

#[test]
fn r94_one_session_three_profiles_each_its_own_documents() {
    let mut t = Three::new(unthrottled_cfg());
    t.change(ParticipantUpdate::new(DAVE, EndpointStatus::Alerting));
    t.change(ParticipantUpdate::new(DAVE, EndpointStatus::Disconnected));

    // R93: a description in every document, partial ones included; the departure reported
    // disconnected, then removed with state="deleted"
    let rfc = t.of(Profile::Rfc4575);
    assert!(rfc.iter().all(|d| d.description), "{rfc:#?}");
    assert_eq!(
        dave(rfc),
        [
            (s("full"), s("alerting"), None),
            (s("full"), s("disconnected"), None),
            (s("deleted"), s(""), None)
        ]
    );
    // R91: never alerting, counts in every document, the departure with its method
    let rcs = t.of(Profile::Rcs);
    assert!(rcs.iter().all(|d| d.user_count.is_some()));
    assert_eq!(
        dave(rcs),
        [
            (s("full"), s("dialing-out"), None),
            (s("full"), s("disconnected"), Some(s("departed")))
        ]
    );
    // the seed's output: no description, the departure once
    let oma = t.of(Profile::Oma);
    assert!(oma.iter().all(|d| !d.description && d.user_count.is_none()));
    assert_eq!(
        dave(oma),
        [
            (s("full"), s("alerting"), None),
            (s("full"), s("disconnected"), None)
        ]
    );
    // versions are each dialog's own, gapless (R33)
    for (p, docs) in &t.docs {
        let versions: Vec<u32> = docs.iter().map(|d| d.version).collect();
        assert_eq!(
            versions,
            (1..=docs.len() as u32).collect::<Vec<_>>(),
            "{p:?}"
        );
    }
}

#[test]
fn r93_the_description_is_complete_in_every_document() {
    // a maximum-user-count, once known, is in every rfc4575 document (a partial one carrying an
    // emptied description would erase the client's copy)
    let mut t = Three::new(unthrottled_cfg());
    t.n.set_max_user_count(SESSION, Some(5)).unwrap();
    t.change(ParticipantUpdate::new(DAVE, EndpointStatus::Connected));
    t.change(ParticipantUpdate::new(DAVE, EndpointStatus::Disconnected));
    let rfc = t.of(Profile::Rfc4575);
    assert!(rfc.len() >= 3);
    assert!(
        rfc[1..].iter().all(|d| d.maximum_user_count == Some(5)),
        "{rfc:#?}"
    );
    assert!(t
        .of(Profile::Oma)
        .iter()
        .all(|d| d.maximum_user_count.is_none()));
}

#[test]
fn r94_the_default_applies_when_the_script_names_none() {
    for (default, want) in [(Profile::Oma, false), (Profile::Rfc4575, true)] {
        let cfg = Config {
            default_profile: DefaultProfile::Fixed(default),
            ..unthrottled_cfg()
        };
        let mut n = Notifier::new_in(7, Global);
        n.open_session(SESSION, SessionKind::AdHoc, None).unwrap();
        n.participant(&cfg, 0, SESSION, &connected(ALICE)).unwrap();
        let out = n.subscribe(&cfg, 0, &alice_subscribe(b"c1", &ALICE_HEADERS), b"t1");
        let doc = conference_info::parse(&out.notifies[0].body).unwrap();
        assert_eq!(doc.description, want, "{default:?}");
        assert_eq!(n.subscriptions_info(0, None)[0].profile, default);
    }
}

#[test]
fn r4_r94_a_generic_subscriber_only_when_admitted_and_then_rfc4575() {
    let headers: [(&[u8], &[u8]); 2] = [
        (b"Event", b"conference"),
        (b"P-Asserted-Identity", b"<sip:alice@example.net>"),
    ];
    for admit in [false, true] {
        let cfg = Config {
            admit_generic_subscribers: admit,
            ..unthrottled_cfg()
        };
        let mut n = Notifier::new_in(7, Global);
        n.open_session(SESSION, SessionKind::AdHoc, None).unwrap();
        n.participant(&cfg, 0, SESSION, &connected(ALICE)).unwrap();
        let out = n.subscribe(&cfg, 0, &alice_subscribe(b"c1", &headers), b"t1");
        if admit {
            assert_eq!(out.reply.code, 200);
            assert_eq!(n.subscriptions_info(0, None)[0].profile, Profile::Rfc4575);
        } else {
            assert_eq!(out.reply.code, 403, "R4");
        }
    }
}

#[test]
fn r95_rcs_group_state_only_in_the_rcs_profile() {
    use imconf::core::conference_info::DisconnectionMethod;
    let mut t = Three::new(unthrottled_cfg());
    t.change(ParticipantUpdate {
        when_ms: Some(1_796_601_600_000),
        ..ParticipantUpdate::new(DAVE, EndpointStatus::Connected)
    });
    t.change(ParticipantUpdate {
        when_ms: Some(1_796_601_605_000),
        disconnection_method: Some(DisconnectionMethod::Booted),
        disconnection_reason: Some(b"603 Decline"),
        ..ParticipantUpdate::new(DAVE, EndpointStatus::Disconnected)
    });
    let dave_of = |docs: &[ParsedDocument], n: usize| {
        docs.iter()
            .filter_map(|d| d.users.iter().find(|u| u.entity.as_bytes() == DAVE))
            .nth(n)
            .cloned()
            .unwrap()
    };
    let rcs = t.of(Profile::Rcs);
    // the subscriber's own entry (alice), and only hers
    let own: Vec<&str> = rcs[0]
        .users
        .iter()
        .filter(|u| u.yourown)
        .map(|u| u.entity.as_str())
        .collect();
    assert_eq!(own, [std::str::from_utf8(ALICE).unwrap()]);
    let joined = dave_of(rcs, 0);
    assert_eq!(joined.joined_at.as_deref(), Some("2026-12-07T00:00:00Z"));
    // removed by the chairman: deleted, with its endpoint, disconnected, booted
    let removed = dave_of(rcs, 1);
    assert_eq!(
        (removed.state.as_str(), removed.status.as_str()),
        ("deleted", "disconnected")
    );
    assert_eq!(removed.disconnection_method.as_deref(), Some("booted"));
    assert_eq!(removed.left_at.as_deref(), Some("2026-12-07T00:00:05Z"));
    assert_eq!(
        removed.disconnection_reason.as_deref(),
        Some("SIP;cause=603;text=\"Decline\"")
    );
    for p in [Profile::Oma, Profile::Rfc4575] {
        let docs = t.of(p);
        assert!(docs.iter().flat_map(|d| &d.users).all(|u| !u.yourown
            && u.joined_at.is_none()
            && u.left_at.is_none()
            && u.disconnection_method.is_none()));
        assert_eq!(
            dave_of(docs, 1).state,
            "full",
            "{p:?}: a plain disconnected report"
        );
    }
}

#[test]
fn r95_subject_to_rcs_and_rfc4575_chairman_to_rcs_only() {
    use imconf::core::session::SubjectUpdate;
    let mut t = Three::new(unthrottled_cfg());
    let counts = |t: &Three| Profile::ALL.map(|p| t.of(p).len());
    let before = counts(&t);
    let subject = SubjectUpdate {
        text: Some(b"Hiking <2027>"),
        by: Some(ALICE),
        when_ms: 1_796_601_600_000,
    };
    let out = t.n.set_subject(&t.cfg, 10, SESSION, &subject, 0).unwrap();
    t.deliver(out);
    let after = counts(&t);
    assert_eq!(after[0], before[0], "oma is not told");
    assert_eq!((after[1], after[2]), (before[1] + 1, before[2] + 1));
    for p in [Profile::Rcs, Profile::Rfc4575] {
        let last = t.of(p).last().unwrap();
        assert_eq!(last.subject.as_deref(), Some("Hiking <2027>"), "{p:?}");
        assert!(last.users.is_empty(), "{p:?}: the description alone");
    }
    // every later rfc4575 document carries it whole (R93)
    t.change(ParticipantUpdate::new(DAVE, EndpointStatus::Connected));
    let last = t.of(Profile::Rfc4575).last().unwrap();
    assert_eq!(last.subject.as_deref(), Some("Hiking <2027>"));

    // the chairman: rcs only, and a change of chairman is reported for both users
    let before = counts(&t);
    let out =
        t.n.set_chairman(&t.cfg, 20, SESSION, Some(ALICE), 0)
            .unwrap();
    t.deliver(out);
    let after = counts(&t);
    assert_eq!(
        (after[0], after[1], after[2]),
        (before[0], before[1] + 1, before[2])
    );
    let roles = |d: &ParsedDocument| -> Vec<(String, Vec<String>)> {
        d.users
            .iter()
            .map(|u| (u.entity.clone(), u.roles.clone()))
            .collect()
    };
    let alice = std::str::from_utf8(ALICE).unwrap().to_string();
    let bob = std::str::from_utf8(BOB).unwrap().to_string();
    assert_eq!(
        roles(t.of(Profile::Rcs).last().unwrap()),
        [(alice.clone(), vec!["chairman".to_string()])]
    );
    let out = t.n.set_chairman(&t.cfg, 30, SESSION, Some(BOB), 0).unwrap();
    t.deliver(out);
    let mut got = roles(t.of(Profile::Rcs).last().unwrap());
    got.sort();
    assert_eq!(got, [(alice, vec![]), (bob, vec!["chairman".to_string()])]);
    assert!(t
        .of(Profile::Oma)
        .iter()
        .chain(t.of(Profile::Rfc4575))
        .all(|d| d.users.iter().all(|u| u.roles.is_empty())));
}

#[test]
fn r95_an_older_peer_change_of_subject_is_dropped() {
    use imconf::core::session::SubjectUpdate;
    let mut t = Three::new(unthrottled_cfg());
    let set = |t: &mut Three, text: &'static [u8], stamp| {
        let u = SubjectUpdate {
            text: Some(text),
            by: None,
            when_ms: 0,
        };
        let out = t.n.set_subject(&t.cfg, 10, SESSION, &u, stamp).unwrap();
        t.deliver(out);
    };
    set(&mut t, b"newer", 200);
    set(&mut t, b"older", 100);
    assert_eq!(
        t.of(Profile::Rfc4575).last().unwrap().subject.as_deref(),
        Some("newer")
    );
    let rows = t.n.session_rows();
    let back = imconf::core::persist::decode_session(&rows[0].state, 7, Global).unwrap();
    assert_eq!(
        back.subject.map(|s| s.text.to_vec()),
        Some(b"newer".to_vec())
    );
}
