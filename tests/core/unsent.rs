//! A NOTIFY that tm refuses to send (no shared memory for its transaction) does not end the
//! subscription at once: its state goes again, in full, a second later; only refusals in a row
//! give it up (R31), so a subscription lives through a short shm exhaustion.

use crate::common::{alice_subscribe, connected, unthrottled_cfg, ALICE, ALICE_HEADERS, SESSION};
use allocator_api2::alloc::Global;
use imconf::core::config::Config;
use imconf::core::notifier::{Notifier, NotifyKind};
use imconf::core::session::SessionKind;

const BOB: &[u8] = b"sip:bob@example.net";

fn cfg() -> Config {
    unthrottled_cfg()
}

fn version_of(body: &[u8]) -> u32 {
    imconf::core::conference_info::parse(body).unwrap().version
}

/// Alice subscribed to SESSION; the initial NOTIFY is returned, not yet sent.
fn subscribed() -> (Notifier<Global>, imconf::core::notifier::Notify) {
    let c = cfg();
    let mut n = Notifier::new_in(3, Global);
    n.open_session(SESSION, SessionKind::AdHoc, None).unwrap();
    n.participant(&c, 0, SESSION, &connected(ALICE)).unwrap();
    let out = n.subscribe(&c, 0, &alice_subscribe(b"c1", &ALICE_HEADERS), b"t1");
    assert_eq!(out.reply.code, 200);
    let first = out.notifies.into_iter().next().unwrap();
    (n, first)
}

#[test]
fn an_unsent_notify_is_sent_again_in_full_a_second_later() {
    let c = cfg();
    let (mut n, first) = subscribed();
    assert!(n.notify_unsent(&c, 0, first.token).is_empty());
    assert_eq!(n.subscription_count(), 1, "kept");
    // nothing until the retry is due...
    assert!(n.tick(&c, 999).is_empty());
    let again = n.tick(&c, 1000);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].kind, NotifyKind::Full);
    assert_eq!(again[0].cseq, first.cseq, "it never left: same CSeq (R40)");
    assert_eq!(version_of(&again[0].body), 1, "and the same version (R33)");
    // ...or until a change, which goes at once, with the full state
    assert!(n.notify_unsent(&c, 1000, again[0].token).is_empty());
    let again = n.participant(&c, 1010, SESSION, &connected(BOB)).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].kind, NotifyKind::Full);
    assert_eq!(again[0].cseq, first.cseq);
    assert_eq!(version_of(&again[0].body), 1);
    let users = imconf::core::conference_info::parse(&again[0].body)
        .unwrap()
        .users;
    assert_eq!(users.len(), 2);
    assert_eq!(n.stats.notify_failed, 0);
}

#[test]
fn refusals_in_a_row_give_the_subscription_up() {
    let c = cfg();
    let (mut n, mut pending) = subscribed();
    let mut now = 0;
    for _ in 0..4 {
        assert!(n.notify_unsent(&c, now, pending.token).is_empty());
        now += 1000;
        pending = n.tick(&c, now).into_iter().next().expect("sent again");
    }
    assert!(n.notify_unsent(&c, now, pending.token).is_empty());
    assert_eq!(
        n.subscription_count(),
        0,
        "the fifth refusal in a row ends it (R31)"
    );
    assert_eq!(n.stats.notify_failed, 1);
}

#[test]
fn a_delivered_notify_resets_the_count() {
    let c = cfg();
    let (mut n, first) = subscribed();
    let mut now = 0;
    let mut pending = first;
    for _ in 0..4 {
        n.notify_unsent(&c, now, pending.token);
        now += 1000;
        pending = n.tick(&c, now).into_iter().next().unwrap();
    }
    assert!(n.notify_completed(&c, now, pending.token, 200).is_empty());
    // four more refusals are survived again
    let mut pending = n
        .participant(&c, now, SESSION, &connected(BOB))
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    for _ in 0..4 {
        n.notify_unsent(&c, now, pending.token);
        now += 1000;
        pending = n.tick(&c, now).into_iter().next().unwrap();
    }
    assert_eq!(n.subscription_count(), 1);
}

#[test]
fn a_refused_terminating_notify_only_frees_its_place() {
    let c = cfg();
    let (mut n, first) = subscribed();
    n.notify_completed(&c, 0, first.token, 200);
    let last = n.close_session(&c, 0, SESSION).unwrap();
    assert_eq!(last[0].kind, NotifyKind::Terminated);
    assert!(n.notify_unsent(&c, 0, last[0].token).is_empty());
    assert_eq!(n.subscription_count(), 0);
    assert!(n.tick(&c, 5000).is_empty());
}
