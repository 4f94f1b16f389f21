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
