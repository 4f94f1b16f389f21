//! The notifier: R73-R80: privacy (docs/conformance.md).
use super::*;

/// The entity under which the initial full document of a fresh subscriber lists each user.
fn entities_seen_by_ana(w: &mut World, call: &str) -> Vec<(String, String)> {
    let (_, n) = w.subscribed(ADHOC, ANA, call);
    let v = users(&n);
    w.complete(&n, 200);
    v
}

#[test]
fn r73_originator_without_privacy_is_shown_by_its_aoia_and_nick() {
    let mut w = World::new(cfg());
    w.open(ADHOC, SessionKind::AdHoc, None);
    w.update(
        ADHOC,
        ParticipantUpdate {
            role: Role::Originator,
            from_uri: Some(b"sip:ana-from@example.net"),
            nick: Some(b"Ana"),
            ..joined(ANA)
        },
    );
    let (_, n) = w.subscribed(ADHOC, ANA, "c1");
    let d = doc(&n);
    assert_eq!(d.users.len(), 1);
    assert_eq!(d.users[0].entity, ANA);
    assert_eq!(d.users[0].endpoint_entity, ANA); // R50
    assert_eq!(d.users[0].display_text.as_deref(), Some("Ana"));
}

#[test]
fn r74_originator_with_privacy_is_shown_by_its_from_uri() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    w.update(
        ADHOC,
        ParticipantUpdate {
            role: Role::Originator,
            privacy: true,
            from_uri: Some(b"sip:anonymous@anonymous.invalid"),
            nick: Some(b"Bob"),
            ..joined(BOB)
        },
    );
    let (_, n) = w.subscribed(ADHOC, ANA, "c1");
    let d = doc(&n);
    let bob = d
        .users
        .iter()
        .find(|u| u.entity == "sip:anonymous@anonymous.invalid")
        .expect("Bob under his From URI");
    assert_eq!(bob.endpoint_entity, bob.entity); // R78
    assert_eq!(bob.display_text, None); // R78
}

#[test]
fn r74_clashing_from_uris_are_disambiguated() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    for aoia in [BOB, CARL, DORA] {
        w.update(
            ADHOC,
            ParticipantUpdate {
                privacy: true,
                from_uri: Some(b"sip:anonymous@anonymous.invalid"),
                ..joined(aoia)
            },
        );
    }
    let v = entities_seen_by_ana(&mut w, "c1"); // parse() already checks uniqueness
    let entities: Vec<&str> = v.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(v.len(), 4);
    assert!(entities.contains(&"sip:anonymous@anonymous.invalid"));
    let generated = entities
        .iter()
        .filter(|e| e.starts_with("sip:anonymous") && e.ends_with("@anonymous.invalid"))
        .count();
    assert_eq!(generated, 3);
}

#[test]
fn r75_invited_participant_is_shown_by_its_listed_uri() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    w.update(
        ADHOC,
        ParticipantUpdate {
            listed_uri: Some(b"tel:+15550102"),
            nick: Some(b"Raj"),
            ..alerting("sip:+15550102@ims.example.net")
        },
    );
    let v = entities_seen_by_ana(&mut w, "c1");
    assert_eq!(
        v,
        pairs(&[(ANA, "connected"), ("tel:+15550102", "alerting")])
    );
    // Later updates keep that entity.
    w.advance(1000);
    let n = only(w.update(
        ADHOC,
        ParticipantUpdate {
            status: EndpointStatus::Connected,
            listed_uri: Some(b"tel:+15550102"),
            ..alerting("sip:+15550102@ims.example.net")
        },
    ));
    assert_eq!(users(&n), pairs(&[("tel:+15550102", "connected")]));
    assert_eq!(doc(&n).users[0].display_text.as_deref(), Some("Raj"));
}

#[test]
fn r76_invited_with_privacy_gets_unique_stable_anonymous_entities() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let invite = |aoia: &'static str| ParticipantUpdate {
        privacy: true,
        listed_uri: Some(aoia.as_bytes()),
        nick: Some(b"Hidden"),
        ..alerting(aoia)
    };
    w.update(ADHOC, invite(BOB));
    w.update(ADHOC, invite(CARL));
    let (mut d, n) = w.subscribed(ADHOC, ANA, "c1");
    let first = users(&n);
    assert_eq!(
        first,
        pairs(&[
            (ANA, "connected"),
            ("sip:anonymous1@anonymous.invalid", "alerting"),
            ("sip:anonymous2@anonymous.invalid", "alerting"),
        ])
    );
    assert!(!body_text(&n).contains("Hidden"));
    w.complete(&n, 200);
    // Bob leaves and is invited again: same anonymous entity, and Dora gets a fresh one.
    w.advance(1000);
    let p = only(w.update(
        ADHOC,
        ParticipantUpdate {
            status: EndpointStatus::Disconnected,
            ..invite(BOB)
        },
    ));
    w.complete(&p, 200);
    w.update(ADHOC, invite(BOB));
    w.update(ADHOC, invite(DORA));
    let f = only(w.resubscribe(&mut d, "600").notifies);
    let bob_now = users(&f);
    assert_eq!(
        bob_now,
        pairs(&[
            (ANA, "connected"),
            ("sip:anonymous1@anonymous.invalid", "alerting"),
            ("sip:anonymous2@anonymous.invalid", "alerting"),
            ("sip:anonymous3@anonymous.invalid", "alerting"),
        ])
    );
    // Which one is Bob: the departure partial named him.
    assert_eq!(
        users(&p),
        pairs(&[("sip:anonymous1@anonymous.invalid", "disconnected")])
    );
}

#[test]
fn r76_generated_names_skip_a_from_uri_already_in_use() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    w.update(
        ADHOC,
        ParticipantUpdate {
            privacy: true,
            from_uri: Some(b"sip:anonymous1@anonymous.invalid"),
            ..joined(BOB)
        },
    );
    w.update(
        ADHOC,
        ParticipantUpdate {
            privacy: true,
            ..alerting(CARL)
        },
    );
    let v = entities_seen_by_ana(&mut w, "c1");
    assert_eq!(
        v,
        pairs(&[
            (ANA, "connected"),
            ("sip:anonymous1@anonymous.invalid", "connected"),
            ("sip:anonymous2@anonymous.invalid", "alerting"),
        ])
    );
}

#[test]
fn r77_a_user_joining_on_their_own_is_treated_like_the_originator() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    w.update(
        ADHOC,
        ParticipantUpdate {
            listed_uri: Some(b"sip:listed-bob@example.net"),
            ..joined(BOB)
        },
    );
    w.update(
        ADHOC,
        ParticipantUpdate {
            privacy: true,
            from_uri: Some(b"sip:carl-hidden@anonymous.invalid"),
            ..joined(CARL)
        },
    );
    let v = entities_seen_by_ana(&mut w, "c1");
    assert_eq!(
        v,
        pairs(&[
            (ANA, "connected"),
            (BOB, "connected"),
            ("sip:carl-hidden@anonymous.invalid", "connected"),
        ])
    );
}

/// Bob's real identity and nick, which no body may carry while he asks for privacy.
const BOB_NICK: &str = "Bobby Tables";

fn assert_private(n: &Notify) {
    let text = body_text(n);
    doc(n);
    assert!(!text.contains(BOB), "R78: Bob's AOIA in\n{text}");
    assert!(!text.contains(BOB_NICK), "R78: Bob's nick in\n{text}");
}

#[test]
fn r78_private_identity_and_nick_never_appear_in_any_body() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let bob = |status, role| ParticipantUpdate {
        status,
        role,
        privacy: true,
        listed_uri: Some(BOB.as_bytes()),
        from_uri: Some(b"sip:anonymous@anonymous.invalid"),
        nick: Some(BOB_NICK.as_bytes()),
        aoia: BOB.as_bytes(),
        disconnection_method: None,
        disconnection_reason: None,
        contact: None,
        when_ms: None,
    };
    let (mut d, n) = w.subscribed(ADHOC, ANA, "c1");
    let mut sent = vec![n.clone()];
    w.complete(&n, 200);
    let steps = [
        (EndpointStatus::Alerting, Role::Invited),
        (EndpointStatus::Connected, Role::Invited),
        (EndpointStatus::Disconnected, Role::Invited),
        (EndpointStatus::Connected, Role::Joined),
        (EndpointStatus::Disconnected, Role::Joined),
    ];
    for (status, role) in steps {
        w.advance(1000);
        for n in w.update(ADHOC, bob(status, role)) {
            w.complete(&n, 200);
            sent.push(n);
        }
        w.advance(1000);
        let f = only(w.resubscribe(&mut d, "600").notifies);
        w.complete(&f, 200);
        sent.push(f);
    }
    // A fetch and an unsubscribe carry full state too.
    w.update(ADHOC, bob(EndpointStatus::Connected, Role::Joined));
    sent.extend(
        w.subscribe_as(
            &Req::initial(ADHOC, ANA, "fetch").with("Expires", "0"),
            "tf",
        )
        .notifies,
    );
    w.advance(1000);
    sent.extend(w.tick());
    sent.extend(w.resubscribe(&mut d, "0").notifies);
    assert!(sent.len() >= 12, "{}", sent.len());
    assert!(sent.iter().any(|n| users(n).len() == 2));
    for n in &sent {
        assert_private(n);
    }
}

#[test]
fn r78_rejoining_with_privacy_after_a_public_appearance_hides_the_identity() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let public = ParticipantUpdate {
        nick: Some(b"Bob"),
        ..joined(BOB)
    };
    w.update(ADHOC, public);
    let (mut d, n) = w.subscribed(ADHOC, ANA, "c1");
    assert!(users(&n).contains(&(BOB.to_string(), "connected".to_string())));
    w.complete(&n, 200);
    w.advance(1000);
    let p = only(w.leave(ADHOC, BOB));
    w.complete(&p, 200);
    w.advance(1000);
    // Bob comes back asking for privacy this time (R79: decided per INVITE).
    let private = ParticipantUpdate {
        privacy: true,
        from_uri: Some(b"sip:anonymous@anonymous.invalid"),
        nick: Some(BOB_NICK.as_bytes()),
        ..joined(BOB)
    };
    let p = only(w.update(ADHOC, private));
    assert_private(&p);
    assert_eq!(
        users(&p),
        pairs(&[("sip:anonymous@anonymous.invalid", "connected")])
    );
    w.complete(&p, 200);
    let f = only(w.resubscribe(&mut d, "600").notifies);
    assert_private(&f);
    assert_eq!(
        users(&f),
        pairs(&[
            (ANA, "connected"),
            ("sip:anonymous@anonymous.invalid", "connected")
        ])
    );
}

#[test]
fn r78_invitee_that_answers_with_privacy_is_hidden_from_then_on() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let _d = w.settled_subscriber(ADHOC, ANA, "c1");
    // 180 without privacy: listed under the URI-list entry (R75).
    let n = only(w.update(
        ADHOC,
        ParticipantUpdate {
            listed_uri: Some(BOB.as_bytes()),
            nick: Some(b"Bob"),
            ..alerting(BOB)
        },
    ));
    assert_eq!(users(&n), pairs(&[(BOB, "alerting")]));
    w.complete(&n, 200);
    w.advance(1000);
    // Its 200 asks for privacy (R79): from now on it is anonymous (R76), and the listed entity
    // it was alerting under is reported gone, so no subscriber keeps it (R57, R90).
    let n = only(w.update(
        ADHOC,
        ParticipantUpdate {
            status: EndpointStatus::Connected,
            privacy: true,
            listed_uri: Some(BOB.as_bytes()),
            nick: Some(BOB_NICK.as_bytes()),
            ..alerting(BOB)
        },
    ));
    let v = users(&n);
    assert!(!body_text(&n).contains(BOB_NICK));
    assert_eq!(
        v,
        pairs(&[
            (BOB, "disconnected"),
            ("sip:anonymous1@anonymous.invalid", "connected")
        ])
    );
}
