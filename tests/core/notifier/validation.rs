//! The notifier: R1-R14: validation and authorization order (docs/conformance.md).
use super::*;

#[test]
fn r01_unknown_uri_gets_404_without_contact_or_body() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let out = w.subscribe_as(&Req::initial("sip:nobody@im.example.net", ANA, "c1"), "t1");
    assert_eq!(out.reply.code, 404);
    assert_eq!(header(&out.reply.headers, "Contact"), None);
    assert!(out.notifies.is_empty());
    assert_eq!(w.sub_count(), 0);
}

#[test]
fn r01_existence_is_checked_before_the_feature_tag() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let req = Req::initial("sip:nobody@im.example.net", ANA, "c1").without("Accept-Contact");
    assert_eq!(w.subscribe_as(&req, "t1").reply.code, 404);
}

#[test]
fn r01_released_session_gets_404() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    assert_eq!(
        w.subscribe_as(&Req::initial(ADHOC, ANA, "c0"), "t0")
            .reply
            .code,
        200
    );
    w.n.close_session(&w.cfg, w.now, ADHOC.as_bytes()).unwrap();
    let out = w.subscribe_as(&Req::initial(ADHOC, ANA, "c1"), "t1");
    assert_eq!(out.reply.code, 404);
    assert!(out.notifies.is_empty());
}

#[test]
fn r01_conference_factory_uri_itself_gets_404() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let factory = w.cfg.conference_factory_uri.clone();
    assert_eq!(
        w.subscribe_as(&Req::initial(&factory, ANA, "c1"), "t1")
            .reply
            .code,
        404
    );
}

#[test]
fn r03_group_identity_of_an_active_session_is_accepted() {
    let mut w = World::new(cfg());
    w.open(GROUP_SESSION, SessionKind::PreDefined, Some(GROUP));
    w.join(GROUP_SESSION, ANA);
    let (_, n) = w.subscribed(GROUP, ANA, "c1");
    let d = doc(&n);
    assert_eq!(d.entity, GROUP);
    assert_eq!(users(&n), pairs(&[(ANA, "connected")]));
}

#[test]
fn r03_group_identity_without_an_active_session_gets_404() {
    let mut w = World::new(cfg());
    w.open(GROUP_SESSION, SessionKind::PreDefined, Some(GROUP));
    w.join(GROUP_SESSION, ANA);
    w.n.close_session(&w.cfg, w.now, GROUP_SESSION.as_bytes())
        .unwrap();
    assert_eq!(
        w.subscribe_as(&Req::initial(GROUP, ANA, "c1"), "t1")
            .reply
            .code,
        404
    );
}

#[test]
fn r04_no_oma_im_feature_tag_gets_403() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let base = Req::initial(ADHOC, ANA, "c1");
    let no_header = base.clone().without("Accept-Contact");
    assert_eq!(w.subscribe_as(&no_header, "t1").reply.code, 403);
    let large_only = base
        .clone()
        .with("Accept-Contact", "*;+g.oma.sip-im.large-message");
    assert_eq!(w.subscribe_as(&large_only, "t1").reply.code, 403);
    assert_eq!(w.sub_count(), 0);
    // The same request with the tag (compact form `a`, other case) passes.
    let tagged = base.without("Accept-Contact").with("a", "*;+G.OMA.SIP-IM");
    assert_eq!(w.subscribe_as(&tagged, "t1").reply.code, 200);
}

#[test]
fn r05_no_asserted_identity_gets_403() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let req = Req::initial(ADHOC, ANA, "c1").without("P-Asserted-Identity");
    let out = w.subscribe_as(&req, "t1");
    assert_eq!(out.reply.code, 403);
    assert!(out.notifies.is_empty());
    assert_eq!(w.sub_count(), 0);
}

#[test]
fn r05_trust_from_header_falls_back_to_the_from_uri() {
    let mut w = adhoc_with(
        Config {
            trust_from_header: true,
            ..cfg()
        },
        &[ANA],
    );
    let from_ana = Req::initial(ADHOC, ANA, "c1").without("P-Asserted-Identity");
    assert_eq!(w.subscribe_as(&from_ana, "t1").reply.code, 200);
    // The From URI really is the identity: a From that is not a participant is refused (R6).
    let from_bob = Req::initial(ADHOC, BOB, "c2").without("P-Asserted-Identity");
    assert_eq!(w.subscribe_as(&from_bob, "t2").reply.code, 403);
    let info = w.n.subscriptions_info(w.now, None);
    assert_eq!(info.len(), 1);
    assert_eq!(info[0].subscriber, ANA);
}

#[test]
fn r05_asserted_identity_wins_over_from() {
    let mut w = adhoc_with(
        Config {
            trust_from_header: true,
            ..cfg()
        },
        &[ANA],
    );
    // From says Ana, but the asserted identity is Bob, who is not a participant.
    let req = Req::initial(ADHOC, ANA, "c1").with("P-Asserted-Identity", &format!("<{BOB}>"));
    assert_eq!(w.subscribe_as(&req, "t1").reply.code, 403);
}

#[test]
fn r06_non_participant_of_adhoc_session_gets_403() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let out = w.subscribe_as(&Req::initial(ADHOC, BOB, "c1"), "t1");
    assert_eq!(out.reply.code, 403);
    assert!(out.notifies.is_empty());
    assert_eq!(w.sub_count(), 0);
    assert_eq!(w.n.stats.rejected_by_policy, 1);
}

#[test]
fn r06_departed_participant_gets_403_alerting_one_is_allowed() {
    let mut w = adhoc_with(cfg(), &[ANA, BOB]);
    w.leave(ADHOC, BOB);
    w.update(ADHOC, alerting(CARL));
    assert_eq!(
        w.subscribe_as(&Req::initial(ADHOC, BOB, "c1"), "t1")
            .reply
            .code,
        403
    );
    assert_eq!(
        w.subscribe_as(&Req::initial(ADHOC, CARL, "c2"), "t2")
            .reply
            .code,
        200
    );
}

#[test]
fn r07_subscriptions_per_user_are_limited() {
    let mut w = adhoc_with(
        Config {
            max_subs_per_user_per_session: 2,
            ..cfg()
        },
        &[ANA, BOB],
    );
    for c in ["a1", "a2"] {
        assert_eq!(
            w.subscribe_as(&Req::initial(ADHOC, ANA, c), c).reply.code,
            200
        );
    }
    let out = w.subscribe_as(&Req::initial(ADHOC, ANA, "a3"), "a3");
    assert_eq!(out.reply.code, 403);
    assert!(out.notifies.is_empty());
    assert_eq!(w.sub_count(), 2);
    // Another user is not affected.
    assert_eq!(
        w.subscribe_as(&Req::initial(ADHOC, BOB, "b1"), "b1")
            .reply
            .code,
        200
    );
}

#[test]
fn r07_an_ended_subscription_frees_its_place() {
    let mut w = adhoc_with(
        Config {
            max_subs_per_user_per_session: 1,
            ..cfg()
        },
        &[ANA],
    );
    let (mut d, n) = w.subscribed(ADHOC, ANA, "a1");
    w.complete(&n, 200);
    assert_eq!(
        w.subscribe_as(&Req::initial(ADHOC, ANA, "a2"), "a2")
            .reply
            .code,
        403
    );
    // unsubscribe: the terminating NOTIFY ends it (R28, R69), the count follows
    assert_eq!(w.resubscribe(&mut d, "0").reply.code, 200);
    assert_eq!(w.sub_count(), 0);
    assert_eq!(
        w.subscribe_as(&Req::initial(ADHOC, ANA, "a3"), "a3")
            .reply
            .code,
        200
    );
}

#[test]
fn r07_subscriptions_per_session_are_limited() {
    let mut w = adhoc_with(
        Config {
            max_subs_per_session: 2,
            ..cfg()
        },
        &[ANA, BOB, CARL],
    );
    assert_eq!(
        w.subscribe_as(&Req::initial(ADHOC, ANA, "a1"), "a1")
            .reply
            .code,
        200
    );
    let (mut bob, n) = w.subscribed(ADHOC, BOB, "b1");
    w.complete(&n, 200);
    let out = w.subscribe_as(&Req::initial(ADHOC, CARL, "c1"), "c1");
    assert_eq!(out.reply.code, 403);
    assert_eq!(w.sub_count(), 2);
    assert_eq!(w.n.stats.rejected_by_policy, 1);
    // Once Bob unsubscribes there is room again.
    let out = w.resubscribe(&mut bob, "0");
    assert_eq!(out.reply.code, 200);
    assert_eq!(
        w.subscribe_as(&Req::initial(ADHOC, CARL, "c2"), "c2")
            .reply
            .code,
        200
    );
}

#[test]
fn r10_other_or_missing_event_gets_489_with_allow_events() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    for req in [
        Req::initial(ADHOC, ANA, "c1").with("Event", "presence"),
        Req::initial(ADHOC, ANA, "c1").without("Event"),
        // P1 runs first: an unknown URI with a wrong event is still 489.
        Req::initial("sip:nobody@im.example.net", ANA, "c1").with("Event", "dialog"),
    ] {
        let out = w.subscribe_as(&req, "t1");
        assert_eq!(out.reply.code, 489, "{req:?}");
        assert_eq!(
            header(&out.reply.headers, "Allow-Events").as_deref(),
            Some("conference")
        );
        assert!(out.notifies.is_empty());
    }
    assert_eq!(w.sub_count(), 0);
}

#[test]
fn r11_accept_without_conference_info_gets_406() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let pidf = Req::initial(ADHOC, ANA, "c1").with("Accept", "application/pidf+xml");
    let out = w.subscribe_as(&pidf, "t1");
    assert_eq!(out.reply.code, 406);
    assert!(out.notifies.is_empty());
    assert_eq!(w.sub_count(), 0);
    let wildcard = Req::initial(ADHOC, ANA, "c2").with("Accept", "application/pidf+xml, */*");
    assert_eq!(w.subscribe_as(&wildcard, "t2").reply.code, 200);
    let absent = Req::initial(ADHOC, ANA, "c3").without("Accept");
    assert_eq!(w.subscribe_as(&absent, "t3").reply.code, 200);
}

#[test]
fn r12_expires_below_minimum_gets_423_with_min_expires() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let out = w.subscribe_as(&Req::initial(ADHOC, ANA, "c1").with("Expires", "5"), "t1");
    assert_eq!(out.reply.code, 423);
    assert_eq!(
        header(&out.reply.headers, "Min-Expires").as_deref(),
        Some("60")
    );
    assert!(out.notifies.is_empty());
    assert_eq!(w.sub_count(), 0);
    // The minimum itself is fine.
    let out = w.subscribe_as(&Req::initial(ADHOC, ANA, "c2").with("Expires", "60"), "t2");
    assert_eq!(out.reply.code, 200);
}

#[test]
fn r12_refresh_below_minimum_gets_423_and_keeps_the_subscription() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let mut d = w.settled_subscriber(ADHOC, ANA, "c1");
    let out = w.resubscribe(&mut d, "10");
    assert_eq!(out.reply.code, 423);
    assert_eq!(
        header(&out.reply.headers, "Min-Expires").as_deref(),
        Some("60")
    );
    assert!(out.notifies.is_empty());
    assert_eq!(w.sub_count(), 1);
}

#[test]
fn r13_in_dialog_subscribe_for_no_subscription_gets_481() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let mut req = Req::initial(ADHOC, ANA, "c1");
    req.to_tag = "no-such-tag".into();
    let out = w.subscribe_as(&req, "ignored");
    assert_eq!(out.reply.code, 481);
    assert!(out.notifies.is_empty());
    // The right Call-ID with a different From tag is not that dialog either.
    let mut d = w.settled_subscriber(ADHOC, ANA, "c2");
    d.req.from_tag = "someone-else".into();
    assert_eq!(w.resubscribe(&mut d, "600").reply.code, 481);
}

#[test]
fn r13_lower_cseq_gets_500() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let mut d = w.settled_subscriber(ADHOC, ANA, "c1");
    d.req.cseq = 10;
    assert_eq!(w.resubscribe(&mut d, "600").reply.code, 200); // cseq 11
    d.req.cseq = 4;
    let out = w.resubscribe(&mut d, "600"); // cseq 5 < 11
    assert_eq!(out.reply.code, 500);
    assert!(out.notifies.is_empty());
    assert_eq!(w.sub_count(), 1);
}

#[test]
fn r14_unparseable_expires_gets_400() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    for bad in ["soon", "-1", "", "12s"] {
        let out = w.subscribe_as(&Req::initial(ADHOC, ANA, "c1").with("Expires", bad), "t1");
        assert_eq!(out.reply.code, 400, "Expires {bad:?}");
        assert!(out.notifies.is_empty());
    }
    assert_eq!(w.sub_count(), 0);
}

#[test]
fn r14_unparseable_request_uri_gets_400() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let out = w.subscribe_as(&Req::initial("not a uri", ANA, "c1"), "t1");
    assert_eq!(out.reply.code, 400);
}
