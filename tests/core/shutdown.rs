//! R72: a node stopping without persistence tells every subscriber `deactivated`, at once.
use crate::common::*;
use allocator_api2::alloc::Global;
use imconf::core::config::Config;
use imconf::core::notifier::{Notifier, NotifyKind};
use imconf::core::session::SessionKind;

#[test]
fn r72_shutdown_deactivates_every_subscription_even_with_a_notify_in_flight() {
    let cfg = Config::default();
    let mut n = Notifier::new_in(3, Global);
    n.open_session(SESSION, SessionKind::AdHoc, None).unwrap();
    n.participant(&cfg, 0, SESSION, &connected(ALICE)).unwrap();
    for call in ["c1", "c2"] {
        let req = alice_subscribe(call.as_bytes(), &ALICE_HEADERS);
        let out = n.subscribe(&cfg, 0, &req, call.as_bytes());
        assert_eq!(out.reply.code, 200);
        assert_eq!(
            out.notifies.len(),
            1,
            "initial NOTIFY, awaiting its response"
        );
    }
    let last = n.shutdown(&cfg, 10);
    assert_eq!(last.len(), 2);
    for m in &last {
        assert_eq!(m.kind, NotifyKind::Terminated);
        let h = String::from_utf8_lossy(&m.headers);
        assert!(
            h.contains("Subscription-State: terminated;reason=deactivated\r\n"),
            "{h}"
        );
        assert!(m.body.is_empty(), "R69/R70: no body");
        assert_eq!(m.cseq, 2, "R40: the next CSeq of the dialog");
    }
    assert_eq!(n.subscription_count(), 0);
}

/// R72 with the R66 cap: every subscriber is told, not only as many as the cap has places (the
/// last NOTIFYs await no response, so they take none); found measuring a stop with 5000
/// subscriptions (issue 17), where only the first `max_inflight_notifies` were sent.
#[test]
fn r72_shutdown_tells_every_subscriber_whatever_the_cap() {
    use imconf::core::gate::InFlightCap;
    let cfg = Config {
        max_subs_per_user_per_session: 10,
        min_notify_interval_ms: 0,
        ..Config::default()
    };
    let cap: &'static InFlightCap = Box::leak(Box::new(InFlightCap::new(2)));
    let mut n = Notifier::with_gate(3, Global, cap);
    n.open_session(SESSION, SessionKind::AdHoc, None).unwrap();
    n.participant(&cfg, 0, SESSION, &connected(ALICE)).unwrap();
    for call in ["c1", "c2", "c3", "c4", "c5"] {
        let req = alice_subscribe(call.as_bytes(), &ALICE_HEADERS);
        let out = n.subscribe(&cfg, 0, &req, call.as_bytes());
        assert_eq!(out.reply.code, 200);
        for x in out.notifies {
            n.notify_completed(&cfg, 0, x.token, 200);
        }
    }
    // two places taken (a change in flight to c1, c2), three subscriptions waiting for one
    let _in_flight = n.participant(&cfg, 5, SESSION, &connected(b"sip:bob@example.net"));
    let last = n.shutdown(&cfg, 10);
    let mut told: Vec<Vec<u8>> = last.iter().map(|m| m.call_id.clone()).collect();
    told.sort();
    assert_eq!(
        told,
        [b"c1", b"c2", b"c3", b"c4", b"c5"].map(|c| c.to_vec())
    );
    assert!(last.iter().all(|m| m.kind == NotifyKind::Terminated));
    assert_eq!(n.subscription_count(), 0);
    assert_eq!(cap.in_flight(), 0, "none of them holds a place");
}
