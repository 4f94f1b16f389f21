//! The notifier's timer (R30 expiry, R61 rate limit, R25 hold) works from deadlines: each tick
//! looks only at the subscriptions whose time has come, and the deadline structure stays
//! bounded by the subscriptions alive, however many come and go.
use crate::common::*;
use allocator_api2::alloc::Global;
use imconf::core::config::Config;
use imconf::core::notifier::{Notifier, Notify, NotifyKind, SubscribeRequest};
use imconf::core::session::SessionKind;

const T0: u64 = 1_000_000;
const BOB: &[u8] = b"sip:bob@example.net";

fn cfg() -> Config {
    Config {
        min_expires: 1,
        max_subs_per_user_per_session: usize::MAX,
        max_subs_per_session: usize::MAX,
        ..Config::default()
    }
}

fn notifier(cfg: &Config) -> Notifier<Global> {
    let mut n = Notifier::new_in(7, Global);
    n.open_session(SESSION, SessionKind::AdHoc, None).unwrap();
    n.participant(cfg, T0, SESSION, &connected(ALICE)).unwrap();
    n
}

fn headers(expires: &[u8]) -> [(&[u8], &[u8]); 4] {
    [
        ALICE_HEADERS[0],
        ALICE_HEADERS[1],
        ALICE_HEADERS[2],
        (b"Expires", expires),
    ]
}

/// Subscribes in dialog `call_id` (local tag = call id), answers the initial NOTIFY with 200.
fn settled(n: &mut Notifier<Global>, cfg: &Config, now: u64, call_id: &str, expires: &str) {
    let h = headers(expires.as_bytes());
    let out = n.subscribe(
        cfg,
        now,
        &alice_subscribe(call_id.as_bytes(), &h),
        call_id.as_bytes(),
    );
    assert_eq!(out.reply.code, 200, "{:?}", out.reply);
    for notify in out.notifies {
        assert!(n.notify_completed(cfg, now, notify.token, 200).is_empty());
    }
}

/// The in-dialog SUBSCRIBE number `cseq` of dialog `call_id` with the given Expires.
fn resubscribe(
    n: &mut Notifier<Global>,
    cfg: &Config,
    now: u64,
    call_id: &str,
    cseq: u32,
    expires: &str,
) -> Vec<Notify> {
    let h = headers(expires.as_bytes());
    let req = SubscribeRequest {
        cseq,
        to_tag: call_id.as_bytes(),
        ..alice_subscribe(call_id.as_bytes(), &h)
    };
    let out = n.subscribe(cfg, now, &req, call_id.as_bytes());
    assert_eq!(out.reply.code, 200, "{:?}", out.reply);
    out.notifies
}

fn state(n: &Notify) -> String {
    let h = String::from_utf8_lossy(&n.headers).into_owned();
    h.lines()
        .find_map(|l| l.strip_prefix("Subscription-State: "))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn r30_a_subscription_expires_at_its_deadline_not_before() {
    let cfg = cfg();
    let mut n = notifier(&cfg);
    settled(&mut n, &cfg, T0, "c1", "60");
    assert!(n.tick(&cfg, T0 + 59_999).is_empty());
    let out = n.tick(&cfg, T0 + 60_000);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].kind, NotifyKind::Terminated);
    assert_eq!(state(&out[0]), "terminated;reason=timeout");
    assert_eq!(n.subscription_count(), 0);
    assert_eq!(n.timer_load().0, 0, "nothing left armed");
}

/// Issue 17, fix 1: a change fed after the expiry but before the timer's next tick does not
/// send an active NOTIFY (`expires=1`) first: the subscription's next NOTIFY ends it. Its
/// refresh in that window gets 481.
#[test]
fn r30_a_change_between_the_expiry_and_the_tick_ends_the_subscription() {
    let cfg = cfg();
    let mut n = notifier(&cfg);
    settled(&mut n, &cfg, T0, "c1", "60");
    settled(&mut n, &cfg, T0, "c2", "60");
    let late = T0 + 60_000;
    let out = n.participant(&cfg, late, SESSION, &connected(BOB)).unwrap();
    let states: Vec<String> = out.iter().map(state).collect();
    assert_eq!(
        states,
        ["terminated;reason=timeout", "terminated;reason=timeout"],
        "R30: no active NOTIFY after the expiry"
    );
    assert_eq!(n.subscription_count(), 0);
    let mut n = notifier(&cfg);
    settled(&mut n, &cfg, T0, "c3", "60");
    let h = headers(b"60");
    let req = SubscribeRequest {
        cseq: 2,
        to_tag: b"c3",
        ..alice_subscribe(b"c3", &h)
    };
    let out = n.subscribe(&cfg, late + 1, &req, b"c3");
    assert_eq!(
        out.reply.code, 481,
        "R30: a refresh after the expiry, before the tick"
    );
    let out = n.tick(&cfg, late + 1);
    assert_eq!(
        out.iter().map(state).collect::<Vec<_>>(),
        ["terminated;reason=timeout"]
    );
}

#[test]
fn r30_a_refresh_moves_the_expiry_later() {
    let cfg = cfg();
    let mut n = notifier(&cfg);
    settled(&mut n, &cfg, T0, "c1", "60");
    for notify in resubscribe(&mut n, &cfg, T0 + 30_000, "c1", 2, "60") {
        n.notify_completed(&cfg, T0 + 30_000, notify.token, 200);
    }
    // the first deadline comes, finds the subscription refreshed, and re-arms
    assert!(n.tick(&cfg, T0 + 60_000).is_empty());
    assert_eq!(n.subscription_count(), 1);
    assert!(n.tick(&cfg, T0 + 89_999).is_empty());
    let out = n.tick(&cfg, T0 + 90_000);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].kind, NotifyKind::Terminated);
}

#[test]
fn r30_a_shorter_refresh_brings_the_expiry_forward() {
    let cfg = cfg();
    let mut n = notifier(&cfg);
    settled(&mut n, &cfg, T0, "c1", "3600");
    for notify in resubscribe(&mut n, &cfg, T0 + 10_000, "c1", 2, "60") {
        n.notify_completed(&cfg, T0 + 10_000, notify.token, 200);
    }
    assert!(n.tick(&cfg, T0 + 69_999).is_empty());
    let out = n.tick(&cfg, T0 + 70_000);
    assert_eq!(
        out.len(),
        1,
        "expired 60 s after the refresh, not 3600 s after the start"
    );
    assert_eq!(out[0].kind, NotifyKind::Terminated);
}

#[test]
fn r30_expiry_during_a_notify_in_flight_ends_after_its_response() {
    let cfg = cfg();
    let mut n = notifier(&cfg);
    let h = headers(b"10");
    let out = n.subscribe(&cfg, T0, &alice_subscribe(b"c1", &h), b"c1");
    let initial = out.notifies.into_iter().next().unwrap();
    assert!(
        n.tick(&cfg, T0 + 10_000).is_empty(),
        "R32: one NOTIFY in flight at a time"
    );
    let next = n.notify_completed(&cfg, T0 + 10_500, initial.token, 200);
    assert_eq!(next.len(), 1);
    assert_eq!(state(&next[0]), "terminated;reason=timeout");
}

#[test]
fn r61_a_held_back_change_leaves_when_the_interval_ends() {
    let cfg = Config {
        min_notify_interval_ms: 5000,
        ..cfg()
    };
    let mut n = notifier(&cfg);
    settled(&mut n, &cfg, T0, "c1", "3600");
    // a change right after the initial NOTIFY: held back until T0 + 5000
    assert!(n
        .participant(&cfg, T0 + 100, SESSION, &connected(BOB))
        .unwrap()
        .is_empty());
    assert!(n.tick(&cfg, T0 + 4_999).is_empty());
    let out = n.tick(&cfg, T0 + 5_000);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].kind, NotifyKind::Partial);
}

#[test]
fn idle_subscriptions_cost_the_timer_nothing_until_they_expire() {
    let cfg = cfg();
    let mut n = notifier(&cfg);
    for i in 0..10_000 {
        settled(&mut n, &cfg, T0, &format!("c{i}"), "600");
    }
    let (armed, entries) = n.timer_load();
    assert_eq!(armed, 10_000, "one deadline per subscription");
    assert!(entries <= 2 * armed + 64, "{entries} entries");
    for s in 1..=100u64 {
        assert!(n.tick(&cfg, T0 + s * 100).is_empty());
    }
    let out = n.tick(&cfg, T0 + 600_000);
    assert_eq!(out.len(), 10_000);
    assert!(out.iter().all(|x| x.kind == NotifyKind::Terminated));
}

#[test]
fn subscriptions_that_come_and_go_leave_no_deadline_behind() {
    // the bench's call: subscribe, initial NOTIFY, unsubscribe, final NOTIFY; 10^5 times
    let cfg = cfg();
    let mut n = notifier(&cfg);
    let mut most = 0;
    for i in 0..100_000u64 {
        let now = T0 + i;
        let call = format!("c{i}");
        settled(&mut n, &cfg, now, &call, "600");
        for notify in resubscribe(&mut n, &cfg, now, &call, 2, "0") {
            assert_eq!(notify.kind, NotifyKind::Terminated);
            n.notify_completed(&cfg, now, notify.token, 200);
        }
        most = most.max(n.timer_load().1);
    }
    assert_eq!(n.subscription_count(), 0);
    assert_eq!(n.timer_load().0, 0);
    assert!(most <= 65, "the dead entries are compacted: at most {most}");
}
