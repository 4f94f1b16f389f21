//! Issue 16 (R94: a change's cost grows with the profiles in use, not with subscribers x
//! participants): the notifier shares work between the subscriptions it polls in one call (one
//! document written per profile and copied with each subscriber's version; what each profile
//! shows computed once) and looks only at the participants its journal says changed. None of
//! that may change a byte: two notifiers, one sharing and one not, are driven through the same
//! random sessions (subscribers of every profile, some of them participants, privacy, nicks,
//! departures with reasons, removals, subject, chairman, refreshes, bursts past
//! `max_pending_changes`, NOTIFYs answered late, the rate limit) and must send the same NOTIFYs.

use crate::common::unthrottled_cfg;
use allocator_api2::alloc::Global;
use imconf::core::conference_info::{DisconnectionMethod, EndpointStatus};
use imconf::core::config::Config;
use imconf::core::notifier::{Notifier, Notify, SubscribeRequest};
use imconf::core::profile::Profile;
use imconf::core::session::{ParticipantUpdate, SessionKind, SubjectUpdate};
use proptest::prelude::*;
use std::collections::VecDeque;

const SESSIONS: [&[u8]; 2] = [
    b"sip:shared-a@im.example.net",
    b"sip:shared-b@im.example.net",
];
const USERS: [&[u8]; 6] = [
    b"sip:+15550200@example.net",
    b"sip:+15550201@example.net",
    b"sip:+15550202@example.net",
    b"sip:+15550203@example.net",
    b"sip:+15550204@example.net",
    b"sip:+15550205@example.net",
];
/// Subscribers: (user, profile, session).
const SUBSCRIBERS: [(usize, Profile, usize); 9] = [
    (0, Profile::Rcs, 0),
    (1, Profile::Rcs, 0),
    (3, Profile::Rcs, 0),
    (2, Profile::Oma, 0),
    (4, Profile::Oma, 0),
    (5, Profile::Rfc4575, 0),
    (1, Profile::Rfc4575, 0),
    (0, Profile::Oma, 1),
    (2, Profile::Rcs, 1),
];

#[derive(Debug, Clone)]
enum Step {
    Status {
        session: usize,
        user: usize,
        status: EndpointStatus,
        private: bool,
        nick: Option<&'static str>,
    },
    Leave {
        session: usize,
        user: usize,
        method: Option<DisconnectionMethod>,
        reason: Option<&'static str>,
    },
    Subject(usize, Option<&'static str>),
    Chairman(usize, Option<usize>),
    /// An in-dialog SUBSCRIBE of one subscriber.
    Refresh(usize),
    /// One subscriber subscribes again in a new dialog (told nothing yet, beside older ones).
    NewDialog(usize),
    /// Every user connected at once (past `max_pending_changes`: R65).
    Burst(usize),
    /// The oldest NOTIFYs in flight answered 200.
    Answer(usize),
    /// Time passes and the timer runs (R61 rate limit, R66).
    Tick(u64),
}

fn step() -> impl Strategy<Value = Step> {
    let session = 0..SESSIONS.len();
    let user = 0..USERS.len();
    prop_oneof![
        6 => (session.clone(), user.clone(), prop_oneof![
            Just(EndpointStatus::Connected),
            Just(EndpointStatus::Alerting),
            Just(EndpointStatus::DialingOut)
        ], proptest::bool::weighted(0.2), proptest::option::of(prop_oneof![Just("Ana"), Just("Bo <b>")]))
            .prop_map(|(session, user, status, private, nick)| Step::Status { session, user, status, private, nick }),
        3 => (session.clone(), user.clone(), proptest::option::of(prop_oneof![
            Just(DisconnectionMethod::Departed),
            Just(DisconnectionMethod::Booted),
            Just(DisconnectionMethod::Failed)
        ]), proptest::option::of(prop_oneof![Just("603 Decline"), Just("486 Busy Here")]))
            .prop_map(|(session, user, method, reason)| Step::Leave { session, user, method, reason }),
        1 => (session.clone(), proptest::option::of(prop_oneof![Just("Hike"), Just("Ski")]))
            .prop_map(|(s, t)| Step::Subject(s, t)),
        1 => (session.clone(), proptest::option::of(user)).prop_map(|(s, u)| Step::Chairman(s, u)),
        1 => (0..SUBSCRIBERS.len()).prop_map(Step::Refresh),
        1 => (0..SUBSCRIBERS.len()).prop_map(Step::NewDialog),
        1 => session.prop_map(Step::Burst),
        4 => (1..12usize).prop_map(Step::Answer),
        2 => (1..400u64).prop_map(Step::Tick),
    ]
}

fn cfg_strategy() -> impl Strategy<Value = Config> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![Just(0u64), Just(100u64)],
        1..5usize,
    )
        .prop_map(
            |(deleted, dialing_out, contact, interval, pending)| Config {
                emit_deleted_after_disconnect: deleted,
                report_dialing_out: dialing_out,
                endpoint_entity_contact: contact,
                min_notify_interval_ms: interval,
                max_pending_changes: pending,
                ..twins_cfg()
            },
        )
}

/// Room for every subscriber's dialogs (NewDialog).
fn twins_cfg() -> Config {
    Config {
        max_subs_per_session: 50,
        max_subs_per_user_per_session: 8,
        ..unthrottled_cfg()
    }
}

/// A notifier and the NOTIFYs it sent that await their answer, oldest first.
struct Side {
    n: Notifier<Global>,
    in_flight: VecDeque<Notify>,
    /// Changes queue their NOTIFYs (issue 18's fan-out queue), drained after each step in
    /// batches of this many.
    drain: Option<usize>,
}

/// What the second notifier of the twins does differently from the first (which shares work
/// and returns every NOTIFY at once).
#[derive(Debug, Clone, Copy)]
enum Variant {
    /// Builds every document alone, from every participant (issue 16).
    NoSharing,
    /// Queues a change's NOTIFYs and hands them out in batches of this many (issue 18).
    Deferred(usize),
    /// Cuts each session's history short at every change, so that every subscription behind
    /// is moved past the cut, its beliefs kept (issue 18, lever 4: `view::move_mark`).
    ShortHistory,
}

/// What must be equal in both: everything a NOTIFY carries but its token.
fn sent(out: &[Notify]) -> Vec<(Vec<u8>, u32, Vec<u8>, String)> {
    out.iter()
        .map(|x| {
            (
                x.call_id.clone(),
                x.cseq,
                x.headers.clone(),
                String::from_utf8_lossy(&x.body).into_owned(),
            )
        })
        .collect()
}

struct Twins {
    cfg: Config,
    sides: [Side; 2],
    now: u64,
    cseq: u32,
    dialogs: u32,
}

impl Twins {
    fn new(cfg: Config) -> Twins {
        Twins::new_with(cfg, Variant::NoSharing)
    }

    fn new_with(cfg: Config, variant: Variant) -> Twins {
        let side = |share: bool, drain: Option<usize>, keep: Option<usize>| {
            let mut n = Notifier::new_in(7, Global);
            n.set_shared_documents(share);
            n.set_deferred_fan_out(drain.is_some());
            n.set_history_keep(keep);
            for s in SESSIONS {
                n.open_session(s, SessionKind::AdHoc, None).unwrap();
            }
            Side {
                n,
                in_flight: VecDeque::new(),
                drain,
            }
        };
        let second = match variant {
            Variant::NoSharing => side(false, None, None),
            Variant::Deferred(batch) => side(true, Some(batch), None),
            Variant::ShortHistory => side(true, None, Some(0)),
        };
        let mut t = Twins {
            cfg,
            sides: [side(true, None, None), second],
            now: 1_000,
            cseq: 1,
            dialogs: 0,
        };
        // R6: the subscribers of an ad-hoc session are its participants
        for (_, _, session) in SUBSCRIBERS {
            for u in USERS {
                t.run(&Step::Status {
                    session,
                    user: USERS.iter().position(|x| *x == u).unwrap(),
                    status: EndpointStatus::Connected,
                    private: false,
                    nick: None,
                });
            }
        }
        for i in 0..SUBSCRIBERS.len() {
            t.subscribe(i, 0, false);
        }
        t
    }

    /// Runs `f` on both sides and checks that they sent the same NOTIFYs.
    fn both(&mut self, what: &str, f: impl Fn(&mut Notifier<Global>, &Config, u64) -> Vec<Notify>) {
        let (cfg, now) = (&self.cfg, self.now);
        let outs: Vec<Vec<Notify>> = self
            .sides
            .iter_mut()
            .map(|s| {
                let mut out = f(&mut s.n, cfg, now);
                if let Some(batch) = s.drain {
                    while s.n.fan_out_pending() > 0 {
                        let before = s.n.fan_out_pending();
                        out.extend(s.n.drain_fan_out(cfg, now, batch));
                        assert!(s.n.fan_out_pending() < before, "a drain took nothing");
                    }
                }
                out
            })
            .collect();
        let brief = |o: &[Notify]| {
            o.iter()
                .map(|x| {
                    let b = String::from_utf8_lossy(&x.body);
                    let st = if b.contains("state=\"full\" version") {
                        "F"
                    } else {
                        "P"
                    };
                    format!("{}:{}:{}", String::from_utf8_lossy(&x.call_id), x.cseq, st)
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert!(
            sent(&outs[0]) == sent(&outs[1]),
            "{what}: sharing changed what was sent\n{}\n{}",
            brief(&outs[0]),
            brief(&outs[1])
        );
        for (side, out) in self.sides.iter_mut().zip(outs) {
            side.in_flight.extend(out);
        }
    }

    /// Subscriber `i` subscribes in dialog `dialog` (a refresh when `refresh`).
    fn subscribe(&mut self, i: usize, dialog: u32, refresh: bool) {
        let (user, profile, session) = SUBSCRIBERS[i];
        let pai = format!("<{}>", String::from_utf8_lossy(USERS[user]));
        let call_id = format!("call-{i}-{dialog}");
        let tag = format!("tag-{i}");
        self.cseq += 1;
        let cseq = self.cseq;
        self.both("subscribe", |n, cfg, now| {
            let headers: [(&[u8], &[u8]); 3] = [
                (b"Event", b"conference"),
                (b"Accept-Contact", b"*;+g.oma.sip-im"),
                (b"P-Asserted-Identity", pai.as_bytes()),
            ];
            let req = SubscribeRequest {
                ruri: SESSIONS[session],
                call_id: call_id.as_bytes(),
                cseq,
                from_uri: USERS[user],
                from_tag: b"ft",
                to_uri: SESSIONS[session],
                to_tag: if refresh { tag.as_bytes() } else { b"" },
                contact: b"sip:ue@192.0.2.1",
                headers: &headers,
                profile: Some(profile),
                ..Default::default()
            };
            // (both sides answer alike: a refused refresh sends nothing on either)
            let out = n.subscribe(cfg, now, &req, tag.as_bytes());
            let mut notifies = out.notifies;
            if let Some(id) = out.held {
                notifies.extend(n.reply_sent(cfg, now, id));
            }
            notifies
        });
    }

    fn answer(&mut self, k: usize) {
        for _ in 0..k {
            let tokens: Vec<Option<u64>> = self
                .sides
                .iter_mut()
                .map(|s| s.in_flight.pop_front().map(|x| x.token))
                .collect();
            let [Some(a), Some(b)] = tokens[..] else {
                assert_eq!(tokens[0].is_some(), tokens[1].is_some());
                return;
            };
            let (cfg, now) = (&self.cfg, self.now);
            let outs = [
                self.sides[0].n.notify_completed(cfg, now, a, 200),
                self.sides[1].n.notify_completed(cfg, now, b, 200),
            ];
            assert_eq!(
                sent(&outs[0]),
                sent(&outs[1]),
                "an answer: sharing changed what was sent"
            );
            for (side, out) in self.sides.iter_mut().zip(outs) {
                side.in_flight.extend(out);
            }
        }
    }

    fn run(&mut self, s: &Step) {
        match *s {
            Step::Status {
                session,
                user,
                status,
                private,
                nick,
            } => self.both("participant", |n, cfg, now| {
                let u = ParticipantUpdate {
                    privacy: private,
                    nick: nick.map(str::as_bytes),
                    contact: Some(b"sip:dev@192.0.2.9"),
                    ..ParticipantUpdate::new(USERS[user], status)
                };
                n.participant(cfg, now, SESSIONS[session], &u).unwrap()
            }),
            Step::Leave {
                session,
                user,
                method,
                reason,
            } => self.both("departure", |n, cfg, now| {
                let u = ParticipantUpdate {
                    disconnection_method: method,
                    disconnection_reason: reason.map(str::as_bytes),
                    when_ms: Some(1_796_601_600_000),
                    ..ParticipantUpdate::new(USERS[user], EndpointStatus::Disconnected)
                };
                n.participant(cfg, now, SESSIONS[session], &u).unwrap()
            }),
            Step::Subject(session, text) => self.both("subject", |n, cfg, now| {
                let u = SubjectUpdate {
                    text: text.map(str::as_bytes),
                    by: None,
                    when_ms: 0,
                };
                n.set_subject(cfg, now, SESSIONS[session], &u, 0).unwrap()
            }),
            Step::Chairman(session, user) => self.both("chairman", |n, cfg, now| {
                n.set_chairman(cfg, now, SESSIONS[session], user.map(|u| USERS[u]), 0)
                    .unwrap()
            }),
            Step::Refresh(i) => self.subscribe(i, 0, true),
            Step::NewDialog(i) => {
                self.dialogs += 1;
                self.subscribe(i, self.dialogs, false);
            }
            Step::Burst(session) => self.both("burst", |n, cfg, now| {
                let mut out = Vec::new();
                for u in USERS {
                    let c = ParticipantUpdate::new(u, EndpointStatus::Connected);
                    out.extend(n.participant(cfg, now, SESSIONS[session], &c).unwrap());
                    // a queued fan-out is sent before the next change, as a returned one is
                    // (else the changes coalesce before the first NOTIFY: R65 may make it full)
                    out.extend(n.drain_fan_out(cfg, now, 1));
                    out.extend(n.drain_fan_out(cfg, now, usize::MAX));
                }
                out
            }),
            Step::Answer(k) => self.answer(k),
            Step::Tick(ms) => {
                self.now += ms;
                self.both("tick", |n, cfg, now| n.tick(cfg, now));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    /// Issue 16: sharing documents between subscriptions and looking only at the participants
    /// that changed send exactly what building each document alone from every participant sends.
    #[test]
    fn sharing_changes_no_byte(cfg in cfg_strategy(), steps in proptest::collection::vec(step(), 1..60)) {
        let mut t = Twins::new(cfg);
        for s in &steps {
            t.run(s);
        }
        // everything answered: the last NOTIFYs equal too
        t.answer(usize::MAX);
    }

    /// Issue 18: a change that queues its NOTIFYs for the fan-out processes, drained in
    /// batches of any size right after it, sends exactly what returning them at once sends.
    #[test]
    fn a_queued_fan_out_sends_the_same(
        cfg in cfg_strategy(),
        steps in proptest::collection::vec(step(), 1..60),
        batch in 1usize..6,
    ) {
        let mut t = Twins::new_with(cfg, Variant::Deferred(batch));
        for s in &steps {
            t.run(s);
        }
        t.answer(usize::MAX);
    }

    /// Issue 18, lever 4: a subscription keeps only the mark it was told everything at and
    /// what it believes otherwise. Cutting the history short at every change, which moves every
    /// subscription behind past the cut, sends exactly what keeping it sends.
    #[test]
    fn cutting_the_history_short_sends_the_same(
        cfg in cfg_strategy(),
        steps in proptest::collection::vec(step(), 1..60),
    ) {
        let mut t = Twins::new_with(cfg, Variant::ShortHistory);
        for s in &steps {
            t.run(s);
        }
        t.answer(usize::MAX);
    }
}

/// A session's history is cut short past 128 changes (twice `History::keeps`): a
/// subscription whose NOTIFY stays in flight through more changes than that is moved past the
/// cut, and still sends the same as one whose documents look at every participant.
#[test]
fn a_subscription_behind_the_history_cut_sends_the_same() {
    let mut t = Twins::new(Config {
        max_pending_changes: 100,
        ..twins_cfg()
    });
    for round in 0..300 {
        let status = if round % 2 == 0 {
            EndpointStatus::Alerting
        } else {
            EndpointStatus::Connected
        };
        t.run(&Step::Status {
            session: 0,
            user: round % USERS.len(),
            status,
            private: false,
            nick: None,
        });
        if round % 150 == 149 {
            t.answer(usize::MAX);
        }
    }
    t.answer(usize::MAX);
}

/// R95: an `rcs` subscriber told a subject is sent an emptied description from then on; one
/// subscribed later was told none: the same change is two documents.
#[test]
fn subscribers_told_different_descriptions_get_their_own() {
    let mut t = Twins::new(twins_cfg());
    t.answer(usize::MAX);
    t.run(&Step::Subject(0, Some("Hike")));
    t.answer(usize::MAX);
    t.run(&Step::Subject(0, None));
    t.answer(usize::MAX);
    t.run(&Step::NewDialog(1));
    t.answer(usize::MAX);
    t.run(&Step::Status {
        session: 0,
        user: 4,
        status: EndpointStatus::Alerting,
        private: false,
        nick: None,
    });
    t.answer(usize::MAX);
}
