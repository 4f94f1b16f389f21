//! What output profiles cost a fan-out (R94, issue 16, docs/performance.md): one session with
//! 1000 subscribers, each a participant subscribed once; one participant change notifies all
//! of them (the notifier builds each document and the NOTIFY around it; every NOTIFY is then
//! answered 200). The same run times the fan-out with every subscriber in one profile (`oma`,
//! `rcs`, `rfc4575`) and with the subscribers split over the three, in rounds that alternate
//! between the variants, and prints the median per fan-out and the ratios. Core only (no
//! Kamailio, no network): the work a profile adds to the notifier, not an end-to-end figure.
//! It runs twice: with partial documents (the change only, the usual case), then with
//! `max_pending_changes` 0, so that every document is full (R65: each lists every participant).
//!
//! `cargo run --release --example profile_fanout_cost [subscribers] [rounds]`
use allocator_api2::alloc::Global;
use imconf::core::conference_info::EndpointStatus;
use imconf::core::config::Config;
use imconf::core::notifier::{Notifier, Notify, SubscribeRequest};
use imconf::core::profile::Profile;
use imconf::core::session::{ParticipantUpdate, SessionKind};
use std::time::Instant;

const SESSION: &[u8] = b"sip:chat-4711@conf.example.net";
const EXTRA: &[u8] = b"sip:extra@example.net";

fn cfg(n: usize, full: bool) -> Config {
    Config {
        min_notify_interval_ms: 0,
        max_subs_per_session: n + 1,
        max_pending_changes: if full {
            0
        } else {
            Config::default().max_pending_changes
        },
        ..Config::default()
    }
}

/// A session of `n` participants, each subscribed once with the profile `pick(i)`, every
/// first NOTIFY answered.
fn session(c: &Config, n: usize, pick: impl Fn(usize) -> Profile) -> Notifier<Global> {
    let mut notifier = Notifier::new_in(1, Global);
    notifier
        .open_session(SESSION, SessionKind::AdHoc, None)
        .unwrap();
    for i in 0..n {
        let user = format!("sip:user{i}@example.net");
        notifier
            .participant(
                c,
                0,
                SESSION,
                &ParticipantUpdate::new(user.as_bytes(), EndpointStatus::Connected),
            )
            .unwrap();
    }
    for i in 0..n {
        let user = format!("sip:user{i}@example.net");
        let pai = format!("<{user}>");
        let headers: [(&[u8], &[u8]); 3] = [
            (b"Event", b"conference"),
            (b"Accept-Contact", b"*;+g.oma.sip-im"),
            (b"P-Asserted-Identity", pai.as_bytes()),
        ];
        let call_id = format!("c{i}");
        let req = SubscribeRequest {
            ruri: SESSION,
            call_id: call_id.as_bytes(),
            cseq: 1,
            from_uri: user.as_bytes(),
            from_tag: b"ft",
            to_uri: SESSION,
            contact: b"sip:ue@192.0.2.1",
            headers: &headers,
            profile: Some(pick(i)),
            ..Default::default()
        };
        let out = notifier.subscribe(c, 0, &req, format!("t{i}").as_bytes());
        assert_eq!(out.reply.code, 200);
        answer(&mut notifier, c, out.notifies);
    }
    notifier
}

fn answer(n: &mut Notifier<Global>, c: &Config, notifies: Vec<Notify>) -> usize {
    let mut pending = notifies;
    let mut count = 0;
    while let Some(x) = pending.pop() {
        count += 1;
        pending.extend(n.notify_completed(c, 0, x.token, 200));
    }
    count
}

/// One fan-out: EXTRA alternates between connected and alerting; ns for the change and all
/// NOTIFYs built and answered.
fn fan_out(n: &mut Notifier<Global>, c: &Config, round: usize, subscribers: usize) -> u128 {
    let status = if round.is_multiple_of(2) {
        EndpointStatus::Connected
    } else {
        EndpointStatus::Alerting
    };
    let t = Instant::now();
    let out = n
        .participant(c, 0, SESSION, &ParticipantUpdate::new(EXTRA, status))
        .unwrap();
    let sent = answer(n, c, out);
    let ns = t.elapsed().as_nanos();
    assert_eq!(sent, subscribers, "one NOTIFY per subscriber");
    ns
}

/// Which profile subscriber `i` gets.
type Pick = fn(usize) -> Profile;

fn median(v: &mut [u128]) -> u128 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let subscribers: usize = args.next().map_or(1000, |a| a.parse().unwrap());
    let rounds: usize = args.next().map_or(201, |a| a.parse().unwrap());
    measure(subscribers, rounds, false);
    // (full documents cost far more each: fewer rounds)
    measure(subscribers, rounds.div_ceil(10), true);
}

fn measure(subscribers: usize, rounds: usize, full: bool) {
    let c = cfg(subscribers, full);
    let variants: [(&str, Pick); 4] = [
        ("oma", |_| Profile::Oma),
        ("rcs", |_| Profile::Rcs),
        ("rfc4575", |_| Profile::Rfc4575),
        ("mixed (1/3 each)", |i| Profile::ALL[i % 3]),
    ];
    let mut notifiers: Vec<Notifier<Global>> = variants
        .iter()
        .map(|(_, p)| session(&c, subscribers, p))
        .collect();
    let mut times: Vec<Vec<u128>> = vec![Vec::new(); variants.len()];
    for round in 0..rounds {
        // interleaved, so that a slower moment of the machine hits every variant alike
        for (v, n) in notifiers.iter_mut().enumerate() {
            times[v].push(fan_out(n, &c, round, subscribers));
        }
    }
    let medians: Vec<u128> = times.iter_mut().map(|t| median(t)).collect();
    let kind = if full { "full" } else { "partial" };
    println!("fan-out of one change to {subscribers} subscribers, {kind} documents, median of {rounds} rounds (core only):");
    for ((name, _), m) in variants.iter().zip(&medians) {
        println!(
            "  {name:<18} {:>8.1} us per fan-out, {:>6.2} us per NOTIFY",
            *m as f64 / 1e3,
            *m as f64 / 1e3 / subscribers as f64
        );
    }
    let mixed = medians[3] as f64;
    for (i, (name, _)) in variants.iter().take(3).enumerate() {
        println!("  mixed / {name:<8} = {:.2}", mixed / medians[i] as f64);
    }
    let slowest_single = medians[..3].iter().max().copied().unwrap_or(1) as f64;
    println!(
        "  mixed / slowest single profile = {:.2}",
        mixed / slowest_single
    );
}
