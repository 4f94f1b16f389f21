//! The notifier: R39-R59: what a NOTIFY carries (docs/conformance.md).
use super::*;

#[test]
fn r40_cseq_increases_by_one_per_notify() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let (mut d, n) = w.subscribed(ADHOC, ANA, "c1");
    let mut cseqs = vec![n.cseq];
    w.complete(&n, 200);
    w.advance(1000);
    let p = only(w.join(ADHOC, BOB));
    cseqs.push(p.cseq);
    w.complete(&p, 200);
    let f = only(w.resubscribe(&mut d, "600").notifies);
    cseqs.push(f.cseq);
    w.complete(&f, 200);
    let t = only(w.resubscribe(&mut d, "0").notifies);
    cseqs.push(t.cseq);
    let first = cseqs[0];
    assert_eq!(cseqs, (first..first + 4).collect::<Vec<u32>>());
}

#[test]
fn r42_active_expires_is_rounded_down_and_at_least_1() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let _d = w.settled_subscriber(ADHOC, ANA, "c1"); // expires at START + 3600 s
    w.now = START + 3_600_000 - 1500;
    let n = only(w.join(ADHOC, BOB));
    assert_eq!(sub_state(&n), "active;expires=1");
    w.complete(&n, 200);
    w.now = START + 3_600_000 - 200;
    let n = only(w.join(ADHOC, CARL));
    assert_eq!(sub_state(&n), "active;expires=1");
}

#[test]
fn r45_root_entity_is_session_uri_for_adhoc_and_group_uri_for_groups() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let (_, n) = w.subscribed(ADHOC, ANA, "c1");
    assert_eq!(doc(&n).entity, ADHOC);
    for kind in [
        SessionKind::PreDefined,
        SessionKind::Chat,
        SessionKind::RestrictedChat,
    ] {
        let mut w = World::new(cfg());
        w.open(GROUP_SESSION, kind, Some(GROUP));
        w.join(GROUP_SESSION, ANA);
        // Subscribed to the session identity, the root is still the group identity.
        let (_, n) = w.subscribed(GROUP_SESSION, ANA, "c1");
        assert_eq!(doc(&n).entity, GROUP, "{kind:?}");
        w.complete(&n, 200);
        w.advance(1000);
        assert_eq!(doc(&only(w.join(GROUP_SESSION, BOB))).entity, GROUP);
    }
}

#[test]
fn r55_leave_then_rejoin_of_a_seen_user_sends_nothing() {
    let mut w = adhoc_with(cfg(), &[ANA, BOB]);
    let (_d, n) = w.subscribed(ADHOC, ANA, "c1");
    w.complete(&n, 200);
    // Inside the interval (R61): both changes are held, and they cancel out.
    w.advance(100);
    assert!(w.leave(ADHOC, BOB).is_empty());
    assert!(w.join(ADHOC, BOB).is_empty());
    w.advance(2000);
    assert!(w.tick().is_empty());
    // While a NOTIFY is in flight (R32), the same.
    let p = only(w.join(ADHOC, CARL));
    assert!(w.leave(ADHOC, BOB).is_empty());
    assert!(w.join(ADHOC, BOB).is_empty());
    w.advance(2000);
    assert!(w.complete(&p, 200).is_empty());
    assert!(w.tick().is_empty());
}

#[test]
fn r55_repeating_the_current_state_sends_nothing() {
    let mut w = adhoc_with(cfg(), &[ANA, BOB]);
    let _d = w.settled_subscriber(ADHOC, ANA, "c1");
    assert!(w.join(ADHOC, BOB).is_empty());
    assert!(w.leave(ADHOC, "sip:stranger@example.net").is_empty());
    w.advance(2000);
    assert!(w.tick().is_empty());
}

#[test]
fn r55_nick_change_of_a_private_participant_sends_nothing() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let private = ParticipantUpdate {
        privacy: true,
        from_uri: Some(b"sip:anonymous@anonymous.invalid"),
        nick: Some(b"Secret Bob"),
        ..joined(BOB)
    };
    w.update(ADHOC, private);
    let _d = w.settled_subscriber(ADHOC, ANA, "c1");
    // The nick is never shown (R78), so changing it changes nothing a subscriber sees.
    let out = w.update(
        ADHOC,
        ParticipantUpdate {
            nick: Some(b"Secret Robert"),
            ..private
        },
    );
    assert!(
        out.is_empty(),
        "{:?}",
        out.iter().map(body_text).collect::<Vec<_>>()
    );
}

/// R55, R62: a nick that goes A -> B -> A while a NOTIFY is held is no change at all.
#[test]
fn r55_nick_changed_and_changed_back_sends_nothing() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let bob = |nick: &'static [u8]| ParticipantUpdate {
        nick: Some(nick),
        ..joined(BOB)
    };
    w.update(ADHOC, bob(b"Bob"));
    let (_d, n) = w.subscribed(ADHOC, ANA, "c1");
    w.update(ADHOC, bob(b"Robert"));
    w.update(ADHOC, bob(b"Bob"));
    w.advance(1000);
    let out = w.complete(&n, 200);
    assert!(
        out.is_empty(),
        "{:?}",
        out.iter().map(body_text).collect::<Vec<_>>()
    );
}

#[test]
fn r57_departure_is_reported_once_then_omitted() {
    let mut w = adhoc_with(cfg(), &[ANA, BOB]);
    let mut d = w.settled_subscriber(ADHOC, ANA, "c1");
    let p = only(w.leave(ADHOC, BOB));
    assert_eq!(users(&p), pairs(&[(BOB, "disconnected")]));
    assert_eq!(doc(&p).state, "partial");
    w.complete(&p, 200);
    w.advance(1000);
    // Not reported again, neither in a partial...
    let p = only(w.join(ADHOC, CARL));
    assert_eq!(users(&p), pairs(&[(CARL, "connected")]));
    w.complete(&p, 200);
    // ...nor in a later full document.
    let f = only(w.resubscribe(&mut d, "600").notifies);
    assert_eq!(users(&f), pairs(&[(ANA, "connected"), (CARL, "connected")]));
}

#[test]
fn r57_a_full_document_still_reports_an_untold_departure() {
    let mut w = adhoc_with(cfg(), &[ANA, BOB]);
    let mut d = w.settled_subscriber(ADHOC, ANA, "c1");
    let p = only(w.join(ADHOC, CARL));
    // Bob leaves while the partial is in flight; then Ana refreshes.
    assert!(w.leave(ADHOC, BOB).is_empty());
    w.complete(&p, 200);
    // (held by the interval)
    let f = only(w.resubscribe(&mut d, "600").notifies);
    assert_eq!(f.kind, NotifyKind::Full);
    assert_eq!(
        users(&f),
        pairs(&[
            (ANA, "connected"),
            (BOB, "disconnected"),
            (CARL, "connected")
        ])
    );
    w.complete(&f, 200);
    w.advance(2000);
    assert!(w.tick().is_empty(), "the departure was told once");
    let f = only(w.resubscribe(&mut d, "600").notifies);
    assert_eq!(users(&f), pairs(&[(ANA, "connected"), (CARL, "connected")]));
}

#[test]
fn r57_join_and_leave_between_notifies_is_never_shown() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let (mut d, n) = w.subscribed(ADHOC, ANA, "c1");
    w.complete(&n, 200);
    w.advance(100);
    assert!(w.join(ADHOC, BOB).is_empty());
    assert!(w.update(ADHOC, alerting(DORA)).is_empty());
    assert!(w.leave(ADHOC, BOB).is_empty());
    assert!(w.join(ADHOC, CARL).is_empty());
    assert!(w.leave(ADHOC, DORA).is_empty());
    w.advance(1000);
    let p = only(w.tick());
    assert_eq!(users(&p), pairs(&[(CARL, "connected")]));
    w.complete(&p, 200);
    let f = only(w.resubscribe(&mut d, "600").notifies);
    assert_eq!(users(&f), pairs(&[(ANA, "connected"), (CARL, "connected")]));
    // The same inside an initial NOTIFY's flight.
    let (_e, n) = w.subscribed(ADHOC, ANA, "c2");
    w.join(ADHOC, BOB);
    w.leave(ADHOC, BOB);
    w.advance(5000);
    assert!(w.complete(&n, 200).is_empty());
    assert!(w.tick().is_empty());
}
