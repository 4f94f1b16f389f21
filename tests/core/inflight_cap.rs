//! R66: a node-wide cap on NOTIFYs in flight; the rest wait in FIFO order and leave as
//! responses free places. Terminating NOTIFYs hold a place too until their response.
use crate::common::*;
use allocator_api2::alloc::Global;
use imconf::core::config::Config;
use imconf::core::gate::InFlightCap;
use imconf::core::notifier::{Notifier, NotifyKind};
use imconf::core::session::SessionKind;

#[test]
fn r66_cap_holds_back_notifies_and_releases_them_in_fifo_order() {
    let cfg = Config {
        max_subs_per_user_per_session: 10,
        ..Config::default()
    };
    let cap: &'static InFlightCap = Box::leak(Box::new(InFlightCap::new(2)));
    let mut n = Notifier::with_gate(1, Global, cap);
    n.open_session(SESSION, SessionKind::AdHoc, None).unwrap();
    n.participant(&cfg, 0, SESSION, &connected(ALICE)).unwrap();

    let mut sent = Vec::new();
    for call in ["c1", "c2", "c3", "c4"] {
        let out = n.subscribe(
            &cfg,
            0,
            &alice_subscribe(call.as_bytes(), &ALICE_HEADERS),
            call.as_bytes(),
        );
        assert_eq!(
            out.reply.code, 200,
            "R66 delays NOTIFYs, it never refuses a SUBSCRIBE"
        );
        sent.extend(out.notifies);
    }
    assert_eq!(sent.len(), 2, "only two places");
    assert_eq!(cap.in_flight(), 2);
    assert!(
        n.tick(&cfg, 10).is_empty(),
        "the timer cannot pass the cap either"
    );

    // a response frees a place: the oldest waiting subscription (c3) goes first
    let next = n.notify_completed(&cfg, 20, sent[0].token, 200);
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].call_id, b"c3");
    assert_eq!(cap.in_flight(), 2);

    // a repeated completion frees nothing
    assert!(n.notify_completed(&cfg, 21, sent[0].token, 200).is_empty());
    assert_eq!(cap.in_flight(), 2);

    let next = n.notify_completed(&cfg, 22, sent[1].token, 200);
    assert_eq!(next[0].call_id, b"c4");

    // a terminating NOTIFY keeps its place until its own response (its subscription is gone)
    let closing = n.close_session(&cfg, 30, SESSION).unwrap();
    assert!(
        closing.is_empty(),
        "both places are taken by c3 and c4's initial NOTIFYs"
    );
    // the freed place goes to one terminating NOTIFY at once; the cap still holds
    let after = n.notify_completed(&cfg, 31, next[0].token, 200);
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0].kind, NotifyKind::Terminated);
    assert_eq!(cap.in_flight(), 2);
}

#[test]
fn r66_terminating_notify_response_frees_its_place() {
    let cfg = Config::default();
    let cap: &'static InFlightCap = Box::leak(Box::new(InFlightCap::new(1)));
    let mut n = Notifier::with_gate(1, Global, cap);
    n.open_session(SESSION, SessionKind::AdHoc, None).unwrap();
    n.participant(&cfg, 0, SESSION, &connected(ALICE)).unwrap();
    let first = n.subscribe(&cfg, 0, &alice_subscribe(b"c1", &ALICE_HEADERS), b"c1");
    n.notify_completed(&cfg, 1, first.notifies[0].token, 200);
    assert_eq!(cap.in_flight(), 0);
    let last = n.close_session(&cfg, 2, SESSION).unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!(cap.in_flight(), 1);
    assert_eq!(n.subscription_count(), 0, "R69: forgotten at once");
    n.notify_completed(&cfg, 3, last[0].token, 200);
    assert_eq!(cap.in_flight(), 0, "the final response frees the place");
    n.notify_completed(&cfg, 4, last[0].token, 200);
    assert_eq!(cap.in_flight(), 0, "and only once");
}

const LIVE: &[u8] = b"sip:live@im.example.net";
const BOB: &[u8] = b"sip:bob@example.net";

/// `call` subscribes Alice to `session`; its NOTIFYs (and those they let out) answered 200.
fn settled_sub(
    n: &mut Notifier<Global, &'static InFlightCap>,
    cfg: &Config,
    session: &'static [u8],
    call: &str,
) {
    let req = imconf::core::notifier::SubscribeRequest {
        ruri: session,
        to_uri: session,
        ..alice_subscribe(call.as_bytes(), &ALICE_HEADERS)
    };
    let out = n.subscribe(cfg, 0, &req, call.as_bytes());
    assert_eq!(out.reply.code, 200);
    let mut pending = out.notifies;
    while let Some(x) = pending.pop() {
        pending.extend(n.notify_completed(cfg, 0, x.token, 200));
    }
}

/// Issue 17, fix 3: 1100 subscriptions whose subscribers stopped answering (a region gone
/// dark), one change in their session, then a change in another session: its subscriber's
/// NOTIFY leaves once the unanswered ones have held their places for `slow_notify_ms`, not
/// when tm times them out (`fr_timer`, 4 to 30 s). Their late responses free nothing twice.
#[test]
fn unresponsive_destinations_do_not_hold_the_places_of_responsive_ones() {
    let cfg = Config {
        max_subs_per_user_per_session: 2000,
        max_subs_per_session: 2000,
        min_notify_interval_ms: 0,
        ..Config::default()
    };
    assert_eq!(cfg.slow_notify_ms, 1000, "the default");
    let cap: &'static InFlightCap = Box::leak(Box::new(InFlightCap::new(1024)));
    let mut n = Notifier::with_gate(1, Global, cap);
    for s in [SESSION, LIVE] {
        n.open_session(s, SessionKind::AdHoc, None).unwrap();
        n.participant(&cfg, 0, s, &connected(ALICE)).unwrap();
    }
    for i in 0..1100 {
        settled_sub(&mut n, &cfg, SESSION, &format!("dark{i}"));
    }
    settled_sub(&mut n, &cfg, LIVE, "live");
    assert_eq!(cap.in_flight(), 0);

    let t0 = 10_000;
    let dark = n.participant(&cfg, t0, SESSION, &connected(BOB)).unwrap();
    assert_eq!(dark.len(), 1024, "the cap");
    let live = n.participant(&cfg, t0 + 1, LIVE, &connected(BOB)).unwrap();
    assert!(live.is_empty(), "R66: it waits for a place");
    assert!(n.tick(&cfg, t0 + 999).is_empty());

    let out = n.tick(&cfg, t0 + 1000);
    assert!(
        out.iter().any(|x| x.call_id == b"live"),
        "the live subscriber's NOTIFY waits for the unanswered ones no longer than slow_notify_ms"
    );
    assert_eq!(out.len(), 77, "the 76 that waited before it, then it");
    assert_eq!(n.stats.notifies_slow, 1024);
    assert_eq!(cap.in_flight(), 77);

    // tm times the dark ones out (408): their subscriptions go (R31), no place is freed twice
    for x in &dark {
        n.notify_completed(&cfg, t0 + 4000, x.token, 408);
    }
    assert_eq!(cap.in_flight(), 77);
    for x in &out {
        n.notify_completed(&cfg, t0 + 4001, x.token, 200);
    }
    assert_eq!(cap.in_flight(), 0);
    assert_eq!(
        n.subscription_count(),
        1 + 76,
        "the live one and the 76 that answered"
    );
}

/// The same for terminating NOTIFYs (their subscriptions are gone, R69): unanswered for
/// `slow_notify_ms`, they give up their places; their late responses free nothing more.
#[test]
fn unanswered_terminating_notifies_give_up_their_places() {
    let cfg = Config {
        min_notify_interval_ms: 0,
        max_subs_per_user_per_session: 10,
        ..Config::default()
    };
    let cap: &'static InFlightCap = Box::leak(Box::new(InFlightCap::new(2)));
    let mut n = Notifier::with_gate(1, Global, cap);
    for s in [SESSION, LIVE] {
        n.open_session(s, SessionKind::AdHoc, None).unwrap();
        n.participant(&cfg, 0, s, &connected(ALICE)).unwrap();
    }
    settled_sub(&mut n, &cfg, SESSION, "d1");
    settled_sub(&mut n, &cfg, SESSION, "d2");
    settled_sub(&mut n, &cfg, LIVE, "live");
    let closing = n.close_session(&cfg, 100, SESSION).unwrap();
    assert_eq!(closing.len(), 2);
    assert!(n
        .participant(&cfg, 101, LIVE, &connected(BOB))
        .unwrap()
        .is_empty());
    assert!(n.tick(&cfg, 1099).is_empty());
    let out = n.tick(&cfg, 1100);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].call_id, b"live");
    for x in &closing {
        assert!(n.notify_completed(&cfg, 5000, x.token, 408).is_empty());
    }
    assert_eq!(cap.in_flight(), 1);
    n.notify_completed(&cfg, 5001, out[0].token, 200);
    assert_eq!(cap.in_flight(), 0);
}
