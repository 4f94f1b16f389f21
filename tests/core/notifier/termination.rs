//! The notifier: R67-R72: termination (docs/conformance.md).
use super::*;

#[test]
fn r67_release_terminates_every_subscription_with_noresource() {
    let mut w = adhoc_with(cfg(), &[ANA, BOB]);
    let _a = w.settled_subscriber(ADHOC, ANA, "a");
    let _b = w.settled_subscriber(ADHOC, BOB, "b");
    let (_c, in_flight) = w.subscribed(ADHOC, BOB, "c");
    let mut out = w.n.close_session(&w.cfg, w.now, ADHOC.as_bytes()).unwrap();
    out.sort_by(|x, y| x.call_id.cmp(&y.call_id));
    assert_eq!(out.len(), 2);
    for n in &out {
        assert_eq!(n.kind, NotifyKind::Terminated);
        assert_eq!(sub_state(n), "terminated;reason=noresource");
        assert!(n.body.is_empty()); // R69
        assert_eq!(header(&n.headers, "Content-Type"), None);
    }
    assert_eq!(out[0].call_id, b"a");
    assert_eq!(out[1].call_id, b"b");
    // The one with a NOTIFY in flight gets its termination once that completes (R64).
    let t = only(w.complete(&in_flight, 200));
    assert_eq!(t.call_id, b"c");
    assert_eq!(sub_state(&t), "terminated;reason=noresource");
    assert!(t.body.is_empty());
    assert_eq!(w.sub_count(), 0);
    assert!(w.n.sessions_info().is_empty());
    // R69: late responses are ignored.
    for n in out.iter().chain([&t]) {
        assert!(w.complete(n, 481).is_empty());
    }
}

#[test]
fn r68_leaver_own_subscriptions_end_with_noresource() {
    let mut w = adhoc_with(cfg(), &[ANA, BOB]);
    let _a = w.settled_subscriber(ADHOC, ANA, "ana");
    let _b1 = w.settled_subscriber(ADHOC, BOB, "bob-phone");
    let _b2 = w.settled_subscriber(ADHOC, BOB, "bob-tablet");
    let mut out = w.leave(ADHOC, BOB);
    out.sort_by(|x, y| x.call_id.cmp(&y.call_id));
    assert_eq!(out.len(), 3);
    assert_eq!(out[0].call_id, b"ana");
    assert_eq!(out[0].kind, NotifyKind::Partial);
    assert_eq!(users(&out[0]), pairs(&[(BOB, "disconnected")]));
    for n in &out[1..] {
        assert_eq!(n.kind, NotifyKind::Terminated);
        assert_eq!(sub_state(n), "terminated;reason=noresource");
        assert!(n.body.is_empty());
    }
    assert_eq!(w.sub_count(), 1);
}

#[test]
fn r68_without_terminate_on_leave_the_leaver_hears_of_itself() {
    let mut w = adhoc_with(
        Config {
            terminate_on_leave: false,
            ..cfg()
        },
        &[ANA, BOB],
    );
    let _b = w.settled_subscriber(ADHOC, BOB, "bob");
    let n = only(w.leave(ADHOC, BOB));
    assert_eq!(n.kind, NotifyKind::Partial);
    assert_eq!(users(&n), pairs(&[(BOB, "disconnected")]));
    assert_eq!(w.sub_count(), 1);
}
