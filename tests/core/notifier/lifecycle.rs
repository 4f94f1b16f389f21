//! The notifier: R24-R38: the subscription lifecycle (docs/conformance.md).
use super::*;

#[test]
fn r25_initial_notify_is_active_with_a_full_body_version_1() {
    let mut w = adhoc_with(cfg(), &[ANA, BOB]);
    w.update(ADHOC, alerting(CARL));
    let (d, n) = w.subscribed(ADHOC, ANA, "c1");
    assert_eq!(n.kind, NotifyKind::Full);
    assert_eq!(sub_state(&n), "active;expires=3600");
    assert_eq!(
        header(&n.headers, "Content-Type").as_deref(),
        Some("application/conference-info+xml")
    );
    let body = doc(&n);
    assert_eq!(body.state, "full");
    assert_eq!(body.version, 1);
    assert_eq!(
        users(&n),
        pairs(&[(ANA, "connected"), (BOB, "connected"), (CARL, "alerting")])
    );
    // R39: the dialog of the SUBSCRIBE, seen from the other side.
    assert_eq!(n.call_id, b"c1");
    assert_eq!(n.local_tag, d.local_tag.as_bytes());
    assert_eq!(n.remote_tag, d.req.from_tag.as_bytes());
    assert_eq!(n.local_uri, ADHOC.as_bytes());
    assert_eq!(n.remote_uri, ANA.as_bytes());
    assert_eq!(n.remote_target, d.req.contact.as_bytes());
    assert_eq!(n.route_set, b"<sip:proxy.example.net;lr>");
    // R41
    assert_eq!(header(&n.headers, "Event").as_deref(), Some("conference"));
    assert_eq!(
        header(&n.headers, "Contact").as_deref(),
        Some("<sip:imconf@127.0.0.1>")
    );
}

#[test]
fn r26_r54_participant_change_sends_a_partial_with_only_that_user() {
    let mut w = adhoc_with(cfg(), &[ANA, BOB]);
    let _d = w.settled_subscriber(ADHOC, ANA, "c1");
    let n = only(w.update(ADHOC, alerting(CARL)));
    assert_eq!(n.kind, NotifyKind::Partial);
    let body = doc(&n);
    assert_eq!(body.state, "partial");
    assert_eq!(body.users_state.as_deref(), Some("partial"));
    assert_eq!(body.version, 2);
    assert_eq!(users(&n), pairs(&[(CARL, "alerting")]));
    assert_eq!(body.users[0].state, "full");
    assert_eq!(body.users[0].endpoint_entity, CARL);
    assert!(sub_state(&n).starts_with("active;expires="));

    w.complete(&n, 200);
    w.advance(1000);
    let n = only(w.update(
        ADHOC,
        ParticipantUpdate {
            nick: Some(b"Carl C."),
            ..joined(CARL)
        },
    ));
    let body = doc(&n);
    assert_eq!(body.version, 3);
    assert_eq!(body.users.len(), 1);
    assert_eq!(body.users[0].entity, CARL);
    assert_eq!(body.users[0].status, "connected");
    assert_eq!(body.users[0].display_text.as_deref(), Some("Carl C."));

    // A nick change alone is a change too (R26).
    w.complete(&n, 200);
    w.advance(1000);
    let n = only(w.update(
        ADHOC,
        ParticipantUpdate {
            nick: Some(b"Carlito"),
            ..joined(CARL)
        },
    ));
    let body = doc(&n);
    assert_eq!(body.users.len(), 1);
    assert_eq!(body.users[0].display_text.as_deref(), Some("Carlito"));
}

#[test]
fn r27_refresh_sends_full_state_with_the_next_version() {
    let mut w = adhoc_with(cfg(), &[ANA, BOB]);
    let mut d = w.settled_subscriber(ADHOC, ANA, "c1");
    let n = only(w.join(ADHOC, CARL));
    assert_eq!(doc(&n).version, 2);
    w.complete(&n, 200);
    w.advance(10_000);
    d.req.contact = "<sip:moved@192.0.2.99:5070>".into();
    let out = w.resubscribe(&mut d, "1200");
    assert_eq!(out.reply.code, 200);
    assert_eq!(
        header(&out.reply.headers, "Expires").as_deref(),
        Some("1200")
    );
    let n = only(out.notifies);
    assert_eq!(n.kind, NotifyKind::Full);
    assert_eq!(sub_state(&n), "active;expires=1200");
    let body = doc(&n);
    assert_eq!((body.state.as_str(), body.version), ("full", 3));
    assert_eq!(
        users(&n),
        pairs(&[(ANA, "connected"), (BOB, "connected"), (CARL, "connected")])
    );
    // The remote target follows the new Contact.
    assert_eq!(n.remote_target, b"<sip:moved@192.0.2.99:5070>");
    assert_eq!(w.n.subscriptions_info(w.now, None)[0].expires_in, 1200);
}

#[test]
fn r28_unsubscribe_sends_terminated_timeout_with_full_state() {
    let mut w = adhoc_with(cfg(), &[ANA, BOB]);
    let mut d = w.settled_subscriber(ADHOC, ANA, "c1");
    let out = w.resubscribe(&mut d, "0");
    assert_eq!(out.reply.code, 200);
    assert_eq!(header(&out.reply.headers, "Expires").as_deref(), Some("0"));
    let n = only(out.notifies);
    assert_eq!(n.kind, NotifyKind::Terminated);
    assert_eq!(sub_state(&n), "terminated;reason=timeout");
    let body = doc(&n);
    assert_eq!((body.state.as_str(), body.version), ("full", 2));
    assert_eq!(users(&n), pairs(&[(ANA, "connected"), (BOB, "connected")]));
    assert_eq!(w.sub_count(), 0);
    // The record is gone: nothing more is sent and the dialog is unknown.
    assert!(w.complete(&n, 200).is_empty());
    assert!(w.join(ADHOC, CARL).is_empty());
    assert_eq!(w.resubscribe(&mut d, "600").reply.code, 481);
}

#[test]
fn r29_fetch_gets_one_terminated_notify_with_full_state() {
    let mut w = adhoc_with(cfg(), &[ANA, BOB]);
    let out = w.subscribe_as(&Req::initial(ADHOC, ANA, "c1").with("Expires", "0"), "t1");
    assert_eq!(out.reply.code, 200);
    assert_eq!(header(&out.reply.headers, "Expires").as_deref(), Some("0"));
    let n = only(out.notifies);
    assert_eq!(n.kind, NotifyKind::Terminated);
    assert_eq!(sub_state(&n), "terminated;reason=timeout");
    let body = doc(&n);
    assert_eq!((body.state.as_str(), body.version), ("full", 1));
    assert_eq!(users(&n), pairs(&[(ANA, "connected"), (BOB, "connected")]));
    assert_eq!(w.sub_count(), 0);
    assert!(w.complete(&n, 200).is_empty());
    assert!(w.join(ADHOC, CARL).is_empty());
    w.advance(5000);
    assert!(w.tick().is_empty());
}

#[test]
fn r30_expiry_sends_terminated_timeout_without_body() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let (_d, n) = w.subscribed(ADHOC, ANA, "c1" /* Expires 3600 */);
    w.complete(&n, 200);
    w.advance(3_600_000 - 1);
    assert!(w.tick().is_empty());
    assert_eq!(w.sub_count(), 1);
    w.advance(1);
    let n = only(w.tick());
    assert_eq!(n.kind, NotifyKind::Terminated);
    assert_eq!(sub_state(&n), "terminated;reason=timeout");
    assert!(n.body.is_empty());
    assert_eq!(header(&n.headers, "Content-Type"), None); // R43
    assert_eq!(w.sub_count(), 0);
    assert!(w.n.subscriptions_info(w.now, None).is_empty());
    w.advance(1000);
    assert!(w.tick().is_empty());
}

#[test]
fn r30_expiry_waits_for_the_notify_in_flight() {
    let mut w = adhoc_with(
        Config {
            min_expires: 1,
            ..cfg()
        },
        &[ANA],
    );
    let req = Req::initial(ADHOC, ANA, "c1").with("Expires", "2");
    let n = only(w.subscribe_as(&req, "t1").notifies);
    w.advance(5000);
    assert!(w.tick().is_empty(), "R32: the initial NOTIFY is still open");
    let t = only(w.complete(&n, 200));
    assert_eq!(sub_state(&t), "terminated;reason=timeout");
    assert_eq!(t.cseq, n.cseq + 1);
    assert_eq!(w.sub_count(), 0);
}

#[test]
fn r31_notify_failures_remove_the_subscription() {
    for code in [481u16, 408, 500, 403] {
        let mut w = adhoc_with(cfg(), &[ANA]);
        let (mut d, n) = w.subscribed(ADHOC, ANA, "c1");
        assert!(w.complete(&n, code).is_empty());
        assert_eq!(w.sub_count(), 0, "{code}");
        assert_eq!(w.n.stats.notify_failed, 1);
        w.advance(2000);
        assert!(
            w.join(ADHOC, BOB).is_empty(),
            "{code}: nothing more is sent"
        );
        assert!(w.tick().is_empty());
        assert_eq!(w.resubscribe(&mut d, "600").reply.code, 481);
    }
}

#[test]
fn r31_a_2xx_keeps_the_subscription() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let (_d, n) = w.subscribed(ADHOC, ANA, "c1");
    assert!(w.complete(&n, 200).is_empty());
    assert_eq!(w.sub_count(), 1);
    assert_eq!(w.n.stats.notify_ok, 1);
    w.advance(1000);
    assert_eq!(only(w.join(ADHOC, BOB)).kind, NotifyKind::Partial);
}

#[test]
fn r31_a_repeated_or_stale_completion_is_ignored() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let (_d, n) = w.subscribed(ADHOC, ANA, "c1");
    w.complete(&n, 200);
    w.advance(1000);
    let p = only(w.join(ADHOC, BOB));
    // The old token's final response again: the partial in flight is not taken as answered...
    assert!(w.complete(&n, 481).is_empty());
    assert_eq!(w.sub_count(), 1);
    assert!(w.n.subscriptions_info(w.now, None)[0].notify_in_flight);
    // ...and its own response still counts.
    assert!(w.complete(&p, 200).is_empty());
    assert!(!w.n.subscriptions_info(w.now, None)[0].notify_in_flight);
}

#[test]
fn r32_changes_during_a_notify_in_flight_wait_and_coalesce() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let (_d, n) = w.subscribed(ADHOC, ANA, "c1");
    w.advance(1500);
    assert!(w.update(ADHOC, alerting(BOB)).is_empty());
    assert!(w.join(ADHOC, BOB).is_empty());
    assert!(w.join(ADHOC, CARL).is_empty());
    assert!(w.tick().is_empty());
    assert!(w.n.stats.coalesced >= 2);
    let p = only(w.complete(&n, 200));
    assert_eq!(p.kind, NotifyKind::Partial);
    assert_eq!(p.cseq, n.cseq + 1);
    let body = doc(&p);
    assert_eq!(body.version, 2);
    // R62: the latest status of each user wins.
    assert_eq!(users(&p), pairs(&[(BOB, "connected"), (CARL, "connected")]));
    assert!(w.complete(&p, 200).is_empty());
    w.advance(5000);
    assert!(w.tick().is_empty());
}

#[test]
fn r33_versions_are_gapless_across_full_and_partial_documents() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let (mut d, n) = w.subscribed(ADHOC, ANA, "c1");
    let mut versions = vec![doc(&n).version];
    w.complete(&n, 200);
    for step in 0..6 {
        w.advance(1000);
        let n = if step % 3 == 2 {
            only(w.resubscribe(&mut d, "3600").notifies)
        } else {
            let who = format!("sip:u{step}@example.net");
            only(w.join(ADHOC, &who))
        };
        versions.push(doc(&n).version);
        w.complete(&n, 200);
    }
    w.advance(1000);
    versions.push(doc(&only(w.resubscribe(&mut d, "0").notifies)).version);
    assert_eq!(versions, (1..=8).collect::<Vec<u32>>());
}

#[test]
fn r34_event_id_is_echoed_and_matched_on_refresh() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let req = Req::initial(ADHOC, ANA, "c1").with("Event", "conference;id=abc");
    let out = w.subscribe_as(&req, "t1");
    let n = only(out.notifies);
    assert_eq!(
        header(&n.headers, "Event").as_deref(),
        Some("conference;id=abc")
    );
    w.complete(&n, 200);
    w.advance(1000);
    let p = only(w.join(ADHOC, BOB));
    assert_eq!(
        header(&p.headers, "Event").as_deref(),
        Some("conference;id=abc")
    );
    w.complete(&p, 200);
    let mut d = Dialog {
        req,
        local_tag: "t1".into(),
    };
    // Another id (or none) in the same dialog is another subscription: unknown.
    d.req = d.req.with("Event", "conference;id=xyz");
    assert_eq!(w.resubscribe(&mut d, "600").reply.code, 481);
    d.req = d.req.with("Event", "conference");
    assert_eq!(w.resubscribe(&mut d, "600").reply.code, 481);
    d.req = d.req.with("Event", "conference;id=abc");
    let out = w.resubscribe(&mut d, "600");
    assert_eq!(out.reply.code, 200);
    let f = only(out.notifies);
    assert_eq!(
        header(&f.headers, "Event").as_deref(),
        Some("conference;id=abc")
    );
}

#[test]
fn r35_two_subscriptions_of_one_user_are_independent() {
    let mut w = adhoc_with(cfg(), &[ANA, BOB]);
    let mut phone = w.settled_subscriber(ADHOC, ANA, "phone");
    let (mut tablet, n) = w.subscribed(ADHOC, ANA, "tablet");
    assert_eq!(doc(&n).version, 1);
    // The phone refreshes: only its version moves.
    let f = only(w.resubscribe(&mut phone, "600").notifies);
    assert_eq!((f.call_id.as_slice(), doc(&f).version), (&b"phone"[..], 2));
    w.complete(&f, 200);
    w.complete(&n, 200);
    w.advance(1000);
    let mut out = w.join(ADHOC, CARL);
    out.sort_by(|a, b| a.call_id.cmp(&b.call_id));
    assert_eq!(out.len(), 2);
    assert_eq!(
        (out[0].call_id.as_slice(), doc(&out[0]).version),
        (&b"phone"[..], 3)
    );
    assert_eq!(
        (out[1].call_id.as_slice(), doc(&out[1]).version),
        (&b"tablet"[..], 2)
    );
    // Each has its own expiry.
    let info = w.n.subscriptions_info(w.now, None);
    let exp = |c: &str| info.iter().find(|s| s.call_id == c).unwrap().expires_in;
    assert_eq!(exp("phone"), 599);
    assert_eq!(exp("tablet"), 3599);
    // Ending one leaves the other.
    for n in &out {
        w.complete(n, 200);
    }
    assert_eq!(
        only(w.resubscribe(&mut tablet, "0").notifies).kind,
        NotifyKind::Terminated
    );
    assert_eq!(w.sub_count(), 1);
    assert_eq!(w.n.subscriptions_info(w.now, None)[0].call_id, "phone");
}

#[test]
fn r38_after_release_refresh_gets_481_and_new_subscribe_404() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let mut d = w.settled_subscriber(ADHOC, ANA, "c1");
    let t = only(w.n.close_session(&w.cfg, w.now, ADHOC.as_bytes()).unwrap());
    assert_eq!(sub_state(&t), "terminated;reason=noresource");
    assert_eq!(w.resubscribe(&mut d, "600").reply.code, 481);
    assert_eq!(
        w.subscribe_as(&Req::initial(ADHOC, ANA, "c2"), "t2")
            .reply
            .code,
        404
    );
}

#[test]
fn r38_refresh_while_the_termination_waits_gets_481() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let (mut d, n) = w.subscribed(ADHOC, ANA, "c1");
    assert!(w
        .n
        .close_session(&w.cfg, w.now, ADHOC.as_bytes())
        .unwrap()
        .is_empty());
    assert_eq!(w.resubscribe(&mut d, "600").reply.code, 481);
    let t = only(w.complete(&n, 200));
    assert_eq!(sub_state(&t), "terminated;reason=noresource");
}

/// R22 without a transaction (issue 18): the module derives an initial SUBSCRIBE's To-tag from
/// its Call-ID, From-tag and CSeq, so a retransmission comes with the tag its first copy got.
/// It is answered the same 200 (same Expires but for the time gone by, same asserted
/// identity), with no NOTIFY and no second subscription.
#[test]
fn r22_a_retransmitted_initial_subscribe_gets_the_same_answer_and_nothing_else() {
    let mut w = adhoc_with(cfg(), &[ANA, BOB]);
    let (d, n) = w.subscribed(ADHOC, ANA, "c1");
    let first = Req::initial(ADHOC, ANA, "c1");
    w.advance(2000);
    let again = w.subscribe_as(&first, &d.local_tag);
    assert_eq!(again.reply.code, 200);
    assert!(again.notifies.is_empty(), "no second initial NOTIFY");
    assert_eq!(w.sub_count(), 1, "no second subscription");
    assert_eq!(
        header(&again.reply.headers, "Expires").as_deref(),
        Some("3598")
    );
    assert_eq!(w.n.stats.retransmissions_answered, 1);
    // still one dialog, going on as before
    assert!(w.complete(&n, 200).is_empty());
    // another From-tag under the same Call-ID and To-tag is no retransmission
    let mut other = first.clone();
    other.from_tag = "other".into();
    assert_eq!(w.subscribe_as(&other, &d.local_tag).reply.code, 481);
}

/// R22: a retransmitted refresh (the CSeq the dialog last saw) gets 200 again and no NOTIFY.
/// A retransmitted unsubscribe finds the subscription gone (R69: with its final NOTIFY) and
/// gets 481, which tells the subscriber the same: it has ended (docs/conformance.md, R22).
#[test]
fn r22_a_retransmitted_in_dialog_subscribe_gets_the_same_answer_and_nothing_else() {
    let mut w = adhoc_with(cfg(), &[ANA, BOB]);
    let mut d = w.settled_subscriber(ADHOC, ANA, "c1");
    let refresh = w.resubscribe(&mut d, "600");
    assert_eq!((refresh.reply.code, refresh.notifies.len()), (200, 1));
    w.complete(&refresh.notifies[0], 200);
    let (req, tag) = (d.req.clone(), d.local_tag.clone());
    let again = w.subscribe_as(&req, &tag);
    assert_eq!(again.reply.code, 200);
    assert!(again.notifies.is_empty(), "no NOTIFY for a retransmission");
    assert_eq!(
        header(&again.reply.headers, "Expires").as_deref(),
        Some("600")
    );
    let bye = w.resubscribe(&mut d, "0");
    assert_eq!((bye.reply.code, bye.notifies.len()), (200, 1));
    let (req, tag) = (d.req.clone(), d.local_tag.clone());
    let again = w.subscribe_as(&req, &tag);
    assert_eq!(again.reply.code, 481);
    assert!(again.notifies.is_empty());
}
