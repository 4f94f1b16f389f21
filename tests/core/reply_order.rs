//! R25 with R32: a SUBSCRIBE answered while a NOTIFY of its dialog is in flight. The NOTIFY it
//! calls for must wait for that one, and must not overtake the reply either, even when the
//! in-flight NOTIFY completes in another process before the reply has left.
use crate::common::*;
use allocator_api2::alloc::Global;
use imconf::core::config::Config;
use imconf::core::notifier::{Notifier, NotifyKind, SubscribeRequest};
use imconf::core::session::SessionKind;

fn unsubscribe<'a>(to_tag: &'a [u8], headers: &'a [(&'a [u8], &'a [u8])]) -> SubscribeRequest<'a> {
    SubscribeRequest {
        cseq: 2,
        to_tag,
        ..alice_subscribe(b"c1", headers)
    }
}

#[test]
fn r25_unsubscribe_during_a_notify_in_flight_waits_for_its_reply() {
    let cfg = Config::default();
    let mut n = Notifier::new_in(5, Global);
    n.open_session(SESSION, SessionKind::AdHoc, None).unwrap();
    n.participant(&cfg, 0, SESSION, &connected(ALICE)).unwrap();
    let first = n.subscribe(&cfg, 0, &alice_subscribe(b"c1", &ALICE_HEADERS), b"t1");
    let initial = &first.notifies[0];

    let mut headers = ALICE_HEADERS.to_vec();
    headers.push((b"Expires", b"0"));
    let out = n.subscribe(&cfg, 10, &unsubscribe(b"t1", &headers), b"t1");
    assert_eq!(out.reply.code, 200);
    assert!(
        out.notifies.is_empty(),
        "R32: the initial NOTIFY is still in flight"
    );
    let id = out
        .held
        .expect("the subscription is held until the reply leaves");

    // another process sees the initial NOTIFY complete before this reply left: nothing may go
    assert!(n.notify_completed(&cfg, 11, initial.token, 200).is_empty());
    assert!(
        n.tick(&cfg, 12).is_empty(),
        "the timer must not send it either"
    );

    // the reply left: the final NOTIFY follows
    let last = n.reply_sent(&cfg, 13, id);
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].kind, NotifyKind::Terminated);
    assert_eq!(last[0].cseq, 2);
}

#[test]
fn r25_a_hold_never_released_expires() {
    let cfg = Config::default();
    let mut n = Notifier::new_in(5, Global);
    n.open_session(SESSION, SessionKind::AdHoc, None).unwrap();
    n.participant(&cfg, 0, SESSION, &connected(ALICE)).unwrap();
    let first = n.subscribe(&cfg, 0, &alice_subscribe(b"c1", &ALICE_HEADERS), b"t1");
    let mut headers = ALICE_HEADERS.to_vec();
    headers.push((b"Expires", b"0"));
    let out = n.subscribe(&cfg, 10, &unsubscribe(b"t1", &headers), b"t1");
    assert!(out.held.is_some());
    assert!(n
        .notify_completed(&cfg, 20, first.notifies[0].token, 200)
        .is_empty());
    // the caller died before releasing: the timer sends it after the hold limit
    let late = n.tick(&cfg, 10 + 5000);
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].kind, NotifyKind::Terminated);
}
