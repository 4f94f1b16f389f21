//! What one timer tick costs with many idle subscriptions in one notifier (docs/performance.md,
//! "A timer that only looks at what is due"): 20 000 subscriptions of one participant, every
//! first NOTIFY answered, then 200 ticks 100 ms apart with nothing due. Core only (no Kamailio).
//!
//! `cargo run --release --example timer_tick_cost [subscriptions]`
use allocator_api2::alloc::Global;
use imconf::core::conference_info::EndpointStatus;
use imconf::core::config::Config;
use imconf::core::notifier::{Notifier, SubscribeRequest};
use imconf::core::session::{ParticipantUpdate, SessionKind};
use std::time::Instant;

const SESSION: &[u8] = b"sip:chat-4711@conf.example.net";
const ALICE: &[u8] = b"sip:alice@example.net";
const T0: u64 = 1_000_000;
/// An OMA IM client's SUBSCRIBE for an hour, asserting Alice.
const ALICE_HEADERS: [(&[u8], &[u8]); 4] = [
    (b"Event", b"conference"),
    (b"Accept-Contact", b"*;+g.oma.sip-im"),
    (b"P-Asserted-Identity", b"<sip:alice@example.net>"),
    (b"Expires", b"3600"),
];

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let cfg = Config {
        min_expires: 1,
        max_subs_per_user_per_session: usize::MAX,
        max_subs_per_session: usize::MAX,
        ..Config::default()
    };
    let mut notifier = Notifier::new_in(7, Global);
    notifier
        .open_session(SESSION, SessionKind::AdHoc, None)
        .unwrap();
    let alice = ParticipantUpdate::new(ALICE, EndpointStatus::Connected);
    notifier.participant(&cfg, T0, SESSION, &alice).unwrap();
    // every SUBSCRIBE is Alice's, each in a dialog of its own
    let alice_subscribes = SubscribeRequest {
        ruri: SESSION,
        to_uri: SESSION,
        from_uri: ALICE,
        from_tag: b"ft",
        contact: b"sip:alice@192.0.2.1",
        cseq: 1,
        headers: &ALICE_HEADERS,
        ..Default::default()
    };
    // (building them is quadratic: R7 counts the subscriber's own subscriptions of the session)
    for i in 0..n {
        let call_id = format!("c{i}");
        let req = SubscribeRequest {
            call_id: call_id.as_bytes(),
            ..alice_subscribes
        };
        let out = notifier.subscribe(&cfg, T0, &req, call_id.as_bytes());
        assert_eq!(out.reply.code, 200, "{:?}", out.reply);
        for x in out.notifies {
            assert!(notifier.notify_completed(&cfg, T0, x.token, 200).is_empty());
        }
    }
    let ticks = 200u64;
    let mut times: Vec<_> = (1..=ticks)
        .map(|s| {
            let t = Instant::now();
            let out = notifier.tick(&cfg, T0 + s * 100);
            assert!(out.is_empty(), "nothing is due");
            (t.elapsed(), s)
        })
        .collect();
    let total: std::time::Duration = times.iter().map(|&(d, _)| d).sum();
    times.sort();
    let (longest, at) = times[times.len() - 1];
    println!(
        "tick with {n} idle subscriptions: median {:?}, mean {:?}, longest {longest:?} (tick {at})",
        times[times.len() / 2].0,
        total / ticks as u32,
    );
}
