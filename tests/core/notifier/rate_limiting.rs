//! The notifier: R60-R66: rate limiting (docs/conformance.md).
use super::*;

#[test]
fn r61_partial_is_held_until_the_interval_has_passed() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let (_d, n) = w.subscribed(ADHOC, ANA, "c1");
    let sent_at = w.now;
    w.complete(&n, 200);
    w.advance(100);
    assert!(w.join(ADHOC, BOB).is_empty());
    w.now = sent_at + 999;
    assert!(w.tick().is_empty());
    w.now = sent_at + 1000;
    let p = only(w.tick());
    assert_eq!(p.kind, NotifyKind::Partial);
    assert_eq!(users(&p), pairs(&[(BOB, "connected")]));
    w.complete(&p, 200);
    // The interval restarts at every NOTIFY.
    w.now = sent_at + 1500;
    assert!(w.join(ADHOC, CARL).is_empty());
    w.now = sent_at + 1999;
    assert!(w.tick().is_empty());
    w.now = sent_at + 2000;
    assert_eq!(users(&only(w.tick())), pairs(&[(CARL, "connected")]));
}

#[test]
fn r61_interval_is_per_subscription_and_configurable() {
    let mut w = adhoc_with(
        Config {
            min_notify_interval_ms: 5000,
            ..cfg()
        },
        &[ANA, BOB],
    );
    let (_a, na) = w.subscribed(ADHOC, ANA, "a");
    w.complete(&na, 200);
    w.advance(4000);
    let (_b, nb) = w.subscribed(ADHOC, BOB, "b");
    w.complete(&nb, 200);
    w.advance(1000); // Ana's interval is over, Bob's is not.
    let p = only(w.join(ADHOC, CARL));
    assert_eq!(p.call_id, b"a");
    w.advance(3999);
    assert!(w.tick().is_empty());
    w.advance(1);
    assert_eq!(only(w.tick()).call_id, b"b");
}

#[test]
fn r63_refresh_is_not_delayed_by_the_throttle_and_absorbs_pending_changes() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let (mut d, n) = w.subscribed(ADHOC, ANA, "c1");
    w.complete(&n, 200);
    w.advance(10);
    assert!(w.join(ADHOC, BOB).is_empty()); // held (R61)
    w.advance(10);
    let f = only(w.resubscribe(&mut d, "600").notifies);
    assert_eq!(f.kind, NotifyKind::Full);
    assert_eq!(doc(&f).version, 2);
    assert_eq!(users(&f), pairs(&[(ANA, "connected"), (BOB, "connected")]));
    w.complete(&f, 200);
    w.advance(5000);
    assert!(w.tick().is_empty(), "the pending partial was absorbed");
}

#[test]
fn r65_too_many_pending_changes_give_a_full_document() {
    let mut w = adhoc_with(
        Config {
            max_pending_changes: 2,
            ..cfg()
        },
        &[ANA, BOB],
    );
    let (_d, n) = w.subscribed(ADHOC, ANA, "c1");
    w.complete(&n, 200);
    w.advance(10);
    w.leave(ADHOC, BOB);
    w.join(ADHOC, CARL);
    w.join(ADHOC, DORA);
    w.advance(1000);
    let f = only(w.tick());
    assert_eq!(f.kind, NotifyKind::Full);
    let body = doc(&f);
    assert_eq!((body.state.as_str(), body.version), ("full", 2));
    // A full document replaces the subscriber's list: it holds everyone present (Ana did not
    // change) and still reports the departure (R57).
    assert_eq!(
        users(&f),
        pairs(&[
            (ANA, "connected"),
            (BOB, "disconnected"),
            (CARL, "connected"),
            (DORA, "connected"),
        ])
    );
}

#[test]
fn r65_changes_up_to_the_limit_stay_partial() {
    let mut w = adhoc_with(
        Config {
            max_pending_changes: 2,
            ..cfg()
        },
        &[ANA],
    );
    let (_d, n) = w.subscribed(ADHOC, ANA, "c1");
    w.complete(&n, 200);
    w.advance(10);
    w.join(ADHOC, CARL);
    w.join(ADHOC, DORA);
    w.advance(1000);
    let p = only(w.tick());
    assert_eq!(p.kind, NotifyKind::Partial);
    assert_eq!(
        users(&p),
        pairs(&[(CARL, "connected"), (DORA, "connected")])
    );
}

#[test]
fn r64_unsubscribe_discards_pending_partial_changes() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let (mut d, n) = w.subscribed(ADHOC, ANA, "c1");
    w.complete(&n, 200);
    w.advance(10);
    w.join(ADHOC, BOB); // held
    let t = only(w.resubscribe(&mut d, "0").notifies);
    assert_eq!(t.kind, NotifyKind::Terminated);
    w.advance(5000);
    assert!(w.tick().is_empty());
}
