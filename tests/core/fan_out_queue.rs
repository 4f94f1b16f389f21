//! Issue 18, lever 3: a change queues its NOTIFYs for the module's fan-out processes
//! (`set_deferred_fan_out`), and `drain_fan_out` hands them out in batches. The caller that fed
//! the change gets nothing back; each subscription is queued once however many changes come
//! before the drain; one that ended meanwhile is skipped; and R32 still holds: a subscription
//! with a NOTIFY in flight sends its next one only after that one's answer. (That a drained
//! fan-out sends exactly what an immediate one does is `shared_documents.rs`.)

use crate::common::{connected, unthrottled_cfg};
use allocator_api2::alloc::Global;
use imconf::core::config::Config;
use imconf::core::notifier::{Notifier, Notify, NotifyKind, SubscribeRequest};
use imconf::core::session::SessionKind;

const SESSION: &[u8] = b"sip:fan@im.example.net";

fn cfg() -> Config {
    Config {
        max_subs_per_session: 1000,
        ..unthrottled_cfg()
    }
}

fn user(i: usize) -> Vec<u8> {
    format!("sip:u{i}@example.net").into_bytes()
}

/// A deferring notifier with `n` participants, each subscribed, every initial NOTIFY answered.
fn fan(n: usize) -> Notifier<Global> {
    let c = cfg();
    let mut nf = Notifier::new_in(5, Global);
    nf.set_deferred_fan_out(true);
    nf.open_session(SESSION, SessionKind::AdHoc, None).unwrap();
    for i in 0..n {
        let out = nf
            .participant(&c, 0, SESSION, &connected(&user(i)))
            .unwrap();
        assert!(
            out.is_empty(),
            "a change returns nothing while changes defer"
        );
    }
    nf.drain_fan_out(&c, 0, usize::MAX); // (no subscriber yet)
    for i in 0..n {
        let uri = user(i);
        let pai = format!("<{}>", String::from_utf8_lossy(&uri));
        let headers: [(&[u8], &[u8]); 3] = [
            (b"Event", b"conference"),
            (b"Accept-Contact", b"*;+g.oma.sip-im"),
            (b"P-Asserted-Identity", pai.as_bytes()),
        ];
        let call_id = format!("call-{i}");
        let req = SubscribeRequest {
            ruri: SESSION,
            call_id: call_id.as_bytes(),
            cseq: 1,
            from_uri: &uri,
            from_tag: b"ft",
            to_uri: SESSION,
            contact: b"sip:ue@192.0.2.1",
            headers: &headers,
            ..Default::default()
        };
        let out = nf.subscribe(&c, 0, &req, format!("t{i}").as_bytes());
        assert_eq!(out.reply.code, 200);
        let mut first = out.notifies;
        if let Some(id) = out.held {
            first.extend(nf.reply_sent(&c, 0, id));
        }
        assert_eq!(first.len(), 1, "the initial NOTIFY is not queued (R25)");
        assert!(nf.notify_completed(&c, 0, first[0].token, 200).is_empty());
    }
    nf
}

/// `who` connects; the feeding call returns nothing while changes defer.
fn feed(nf: &mut Notifier<Global>, who: &[u8]) {
    let out = nf.participant(&cfg(), 0, SESSION, &connected(who)).unwrap();
    assert!(
        out.is_empty(),
        "a change returns nothing while changes defer"
    );
}

fn answer_all(nf: &mut Notifier<Global>, sent: &[Notify]) -> Vec<Notify> {
    let c = cfg();
    sent.iter()
        .flat_map(|x| nf.notify_completed(&c, 0, x.token, 200))
        .collect()
}

#[test]
fn the_feeding_call_returns_nothing_and_the_batches_hand_out_every_subscriber_once() {
    let c = cfg();
    let mut nf = fan(10);
    let out = nf
        .participant(&c, 0, SESSION, &connected(b"sip:new@example.net"))
        .unwrap();
    assert!(out.is_empty());
    assert_eq!(nf.fan_out_pending(), 10);
    let mut calls: Vec<Vec<u8>> = Vec::new();
    for want in [4, 4, 2, 0] {
        let batch = nf.drain_fan_out(&c, 0, 4);
        assert_eq!(batch.len(), want);
        assert!(batch.iter().all(|x| x.kind == NotifyKind::Partial));
        calls.extend(batch.iter().map(|x| x.call_id.clone()));
    }
    calls.sort();
    calls.dedup();
    assert_eq!(calls.len(), 10, "each subscriber once");
    assert_eq!(nf.fan_out_pending(), 0);
}

#[test]
fn changes_before_the_drain_queue_each_subscriber_once_and_are_sent_together() {
    let c = cfg();
    let mut nf = fan(5);
    for who in [
        &b"sip:x@example.net"[..],
        b"sip:y@example.net",
        b"sip:z@example.net",
    ] {
        assert!(nf
            .participant(&c, 0, SESSION, &connected(who))
            .unwrap()
            .is_empty());
    }
    assert_eq!(nf.fan_out_pending(), 5, "queued once, not once per change");
    let sent = nf.drain_fan_out(&c, 0, usize::MAX);
    assert_eq!(sent.len(), 5);
    for x in &sent {
        let body = String::from_utf8_lossy(&x.body);
        for who in ["sip:x@", "sip:y@", "sip:z@"] {
            assert!(body.contains(who), "{who} missing from {body}");
        }
    }
    assert!(answer_all(&mut nf, &sent).is_empty(), "nothing more to say");
}

#[test]
fn a_subscription_that_ended_while_queued_is_skipped() {
    let c = cfg();
    let mut nf = fan(3);
    feed(&mut nf, b"sip:x@example.net");
    assert_eq!(nf.fan_out_pending(), 3);
    // user 0 unsubscribes before the drain: its last NOTIFY goes with the reply (R28)
    let uri = user(0);
    let headers: [(&[u8], &[u8]); 4] = [
        (b"Event", b"conference"),
        (b"Accept-Contact", b"*;+g.oma.sip-im"),
        (b"P-Asserted-Identity", b"<sip:u0@example.net>"),
        (b"Expires", b"0"),
    ];
    let req = SubscribeRequest {
        ruri: SESSION,
        call_id: b"call-0",
        cseq: 2,
        from_uri: &uri,
        from_tag: b"ft",
        to_uri: SESSION,
        to_tag: b"t0",
        contact: b"sip:ue@192.0.2.1",
        headers: &headers,
        ..Default::default()
    };
    let out = nf.subscribe(&c, 0, &req, b"");
    assert_eq!(out.reply.code, 200);
    let mut last = out.notifies;
    if let Some(id) = out.held {
        last.extend(nf.reply_sent(&c, 0, id));
    }
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].kind, NotifyKind::Terminated);
    assert_eq!(nf.subscription_count(), 2);
    let sent = nf.drain_fan_out(&c, 0, usize::MAX);
    assert_eq!(
        sent.len(),
        2,
        "the queued entry of the ended subscription hands out nothing"
    );
    assert!(sent
        .iter()
        .all(|x| x.call_id != b"call-0" && x.kind == NotifyKind::Partial));
    assert_eq!(nf.fan_out_pending(), 0);
}

#[test]
fn r67_closing_a_session_queues_its_terminating_notifies() {
    let c = cfg();
    let mut nf = fan(5);
    assert!(nf.close_session(&c, 0, SESSION).unwrap().is_empty());
    assert_eq!(nf.fan_out_pending(), 5);
    let last = nf.drain_fan_out(&c, 0, usize::MAX);
    assert_eq!(last.len(), 5);
    for x in &last {
        assert_eq!(x.kind, NotifyKind::Terminated);
        let head = String::from_utf8_lossy(&x.headers);
        assert!(head.contains("terminated;reason=noresource"), "{head}");
        assert!(x.body.is_empty(), "R69: no body");
    }
    assert_eq!(nf.subscription_count(), 0);
}

#[test]
fn r32_a_queued_subscriber_with_a_notify_in_flight_waits_for_its_answer() {
    let c = cfg();
    let mut nf = fan(2);
    feed(&mut nf, b"sip:x@example.net");
    let first = nf.drain_fan_out(&c, 0, usize::MAX);
    assert_eq!(first.len(), 2);
    // a second change while both NOTIFYs are in flight: queued, but nothing may go yet
    feed(&mut nf, b"sip:y@example.net");
    assert!(
        nf.drain_fan_out(&c, 0, usize::MAX).is_empty(),
        "R32: one in flight per dialog"
    );
    // each answer releases that dialog's next NOTIFY, with the next CSeq
    for x in &first {
        let next = nf.notify_completed(&c, 0, x.token, 200);
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].call_id, x.call_id);
        assert_eq!(next[0].cseq, x.cseq + 1);
        assert!(String::from_utf8_lossy(&next[0].body).contains("sip:y@"));
    }
}
