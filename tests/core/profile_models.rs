//! R93, R94 (issue 16): a subscriber model per profile, run over random sessions. The
//! generic RFC 4575 client is modelled from R93 line by line (Jitsi Desktop's conference code):
//! it must never discard a document and must show the truth. The OMA client merges partial
//! documents and forgets a user reported `disconnected` (R54, R57). The RCS client has its own
//! model and property in tests/core/rcs.rs; here its subscription runs beside the others, on the
//! same session, and the subject it is shown is checked.

use crate::common::unthrottled_cfg;
use allocator_api2::alloc::Global;
use imconf::core::conference_info::{self, DisconnectionMethod, EndpointStatus, ParsedDocument};
use imconf::core::config::Config;
use imconf::core::notifier::{Notifier, Notify, SubscribeRequest};
use imconf::core::profile::Profile;
use imconf::core::session::{ParticipantUpdate, SessionKind, SubjectUpdate};
use proptest::prelude::*;
use std::collections::BTreeMap;

const SESSION: &[u8] = b"sip:models@im.example.net";
const USERS: [&[u8]; 5] = [
    b"sip:+15550100@example.net",
    b"sip:+15550101@example.net",
    b"sip:+15550102@example.net",
    b"sip:+15550103@example.net",
    b"sip:+15550104@example.net",
];
const SUBSCRIBER: usize = 0;

#[derive(Debug, Clone)]
enum Step {
    Status(usize, EndpointStatus),
    Leave(usize, Option<DisconnectionMethod>),
    Subject(Option<&'static str>),
    Chairman(Option<usize>),
    Refresh,
    /// Several changes at once, past `max_pending_changes` (R65: a full document).
    Burst,
}

fn step() -> impl Strategy<Value = Step> {
    let who = 1..USERS.len();
    prop_oneof![
        4 => (who.clone(), prop_oneof![
            Just(EndpointStatus::Connected),
            Just(EndpointStatus::Alerting)
        ])
            .prop_map(|(i, s)| Step::Status(i, s)),
        2 => (who.clone(), proptest::option::of(prop_oneof![
            Just(DisconnectionMethod::Departed),
            Just(DisconnectionMethod::Booted),
            Just(DisconnectionMethod::Failed)
        ]))
            .prop_map(|(i, m)| Step::Leave(i, m)),
        1 => proptest::option::of(prop_oneof![Just("Hike"), Just("Ski & <snow>")])
            .prop_map(Step::Subject),
        1 => proptest::option::of(0..USERS.len()).prop_map(Step::Chairman),
        1 => Just(Step::Refresh),
        1 => Just(Step::Burst),
    ]
}

/// R93, as Jitsi Desktop reads conference-info. Err: it discards the document.
#[derive(Debug, Default)]
struct GenericClient {
    version: Option<u32>,
    users: BTreeMap<String, String>,
    subject: Option<String>,
}

impl GenericClient {
    fn receive(&mut self, d: &ParsedDocument) -> Result<(), String> {
        // "drops any document whose root lacks a conference-description or a users child"
        if !d.description {
            return Err("no conference-description".into());
        }
        // "versions are exact: the first document must be full; a partial applies only at
        // exactly local+1, a full one only when higher"
        match (self.version, d.state.as_str()) {
            (None, "full") => {}
            (None, _) => return Err("the first document is partial".into()),
            (Some(v), "partial") if d.version == v.wrapping_add(1) => {}
            (Some(v), "full") if d.version > v => {}
            (Some(v), s) => return Err(format!("{s} version {} after {v}", d.version)),
        }
        // "a partial document needs <users state="partial"> (otherwise it replaces the whole
        // list); users in it must be state="full" or "deleted""
        let partial = d.users_state.as_deref() == Some("partial");
        if d.state == "partial" && !partial {
            return Err("a partial document whose users are not partial".into());
        }
        if !partial {
            self.users.clear();
        }
        for u in &d.users {
            match u.state.as_str() {
                "deleted" => {
                    self.users.remove(&u.entity);
                }
                "full" => {
                    // "statuses must be spelled exactly as RFC 4575 has them"
                    const RFC4575: [&str; 9] = [
                        "connected",
                        "disconnected",
                        "on-hold",
                        "muted-via-focus",
                        "pending",
                        "alerting",
                        "dialing-in",
                        "dialing-out",
                        "disconnecting",
                    ];
                    if !RFC4575.contains(&u.status.as_str()) {
                        return Err(format!("status {:?}", u.status));
                    }
                    self.users.insert(u.entity.clone(), u.status.clone());
                }
                other => return Err(format!("a user with state {other:?}")),
            }
        }
        // "conference-description ... when present in a partial document it replaces the
        // subscriber's copy whole"
        self.subject = d.subject.clone();
        self.version = Some(d.version);
        Ok(())
    }
}

/// An OMA client: merges partial documents, forgets a user reported `disconnected` (R57).
#[derive(Debug, Default)]
struct OmaClient {
    users: BTreeMap<String, String>,
}

impl OmaClient {
    fn receive(&mut self, d: &ParsedDocument) {
        if d.state == "full" {
            self.users.clear();
        }
        for u in &d.users {
            if u.state == "deleted" || u.status == "disconnected" {
                self.users.remove(&u.entity);
            } else {
                self.users.insert(u.entity.clone(), u.status.clone());
            }
        }
    }
}

struct World {
    cfg: Config,
    n: Notifier<Global>,
    truth: BTreeMap<String, String>,
    subject: Option<String>,
    generic: GenericClient,
    oma: OmaClient,
    rcs_subject: Option<String>,
    problems: Vec<String>,
    cseq: u32,
    now: u64,
}

fn name(i: usize) -> String {
    String::from_utf8(USERS[i].to_vec()).unwrap()
}

impl World {
    fn new() -> World {
        let cfg = Config {
            max_pending_changes: 3,
            ..unthrottled_cfg()
        };
        let mut n = Notifier::new_in(3, Global);
        n.open_session(SESSION, SessionKind::AdHoc, None).unwrap();
        let mut w = World {
            cfg,
            n,
            truth: BTreeMap::new(),
            subject: None,
            generic: GenericClient::default(),
            oma: OmaClient::default(),
            rcs_subject: None,
            problems: Vec::new(),
            cseq: 1,
            now: 0,
        };
        w.status(SUBSCRIBER, EndpointStatus::Connected);
        for p in Profile::ALL {
            let out = w.subscribe(p, None);
            w.deliver(out);
        }
        w
    }

    fn headers() -> [(&'static [u8], &'static [u8]); 3] {
        [
            (b"Event", b"conference"),
            (b"Accept-Contact", b"*;+g.oma.sip-im"),
            (b"P-Asserted-Identity", b"<sip:+15550100@example.net>"),
        ]
    }

    fn subscribe(&mut self, p: Profile, to_tag: Option<&[u8]>) -> Vec<Notify> {
        let headers = Self::headers();
        let call_id = p.as_str();
        let tag = format!("t-{}", p.as_str());
        let req = SubscribeRequest {
            ruri: SESSION,
            call_id: call_id.as_bytes(),
            cseq: self.cseq,
            from_uri: USERS[SUBSCRIBER],
            from_tag: b"ft",
            to_uri: SESSION,
            to_tag: to_tag.unwrap_or_default(),
            contact: b"sip:ue@192.0.2.1",
            headers: &headers,
            profile: Some(p),
            ..Default::default()
        };
        let out = self.n.subscribe(&self.cfg, self.now, &req, tag.as_bytes());
        assert_eq!(out.reply.code, 200, "{p:?}");
        out.notifies
    }

    fn deliver(&mut self, notifies: Vec<Notify>) {
        let mut pending = notifies;
        while let Some(x) = pending.pop() {
            if !x.body.is_empty() {
                let xml = String::from_utf8_lossy(&x.body).into_owned();
                let d = conference_info::parse(&x.body)
                    .unwrap_or_else(|e| panic!("strict reader: {e}\n{xml}"));
                match x.call_id.as_slice() {
                    b"rfc4575" => {
                        if let Err(why) = self.generic.receive(&d) {
                            self.problems
                                .push(format!("R93: the generic client discards: {why}\n{xml}"));
                        }
                    }
                    b"oma" => self.oma.receive(&d),
                    _ => {
                        if d.description {
                            self.rcs_subject = d.subject.clone();
                        }
                    }
                }
            }
            pending.extend(self.n.notify_completed(&self.cfg, self.now, x.token, 200));
        }
    }

    fn settle(&mut self) {
        self.now += 10;
        let out = self.n.tick(&self.cfg, self.now);
        self.deliver(out);
    }

    fn status(&mut self, i: usize, s: EndpointStatus) {
        let out = self
            .n
            .participant(
                &self.cfg,
                self.now,
                SESSION,
                &ParticipantUpdate::new(USERS[i], s),
            )
            .unwrap();
        self.truth.insert(name(i), s.as_str().to_string());
        self.deliver(out);
    }

    fn run(&mut self, s: &Step) {
        match s {
            Step::Status(i, st) => self.status(*i, *st),
            Step::Leave(i, m) => {
                let u = ParticipantUpdate {
                    disconnection_method: *m,
                    ..ParticipantUpdate::new(USERS[*i], EndpointStatus::Disconnected)
                };
                let out = self
                    .n
                    .participant(&self.cfg, self.now, SESSION, &u)
                    .unwrap();
                self.truth.remove(&name(*i));
                self.deliver(out);
            }
            Step::Subject(text) => {
                let u = SubjectUpdate {
                    text: text.map(str::as_bytes),
                    by: None,
                    when_ms: 0,
                };
                let out = self
                    .n
                    .set_subject(&self.cfg, self.now, SESSION, &u, 0)
                    .unwrap();
                self.subject = text.map(String::from);
                self.deliver(out);
            }
            Step::Chairman(i) => {
                let out = self
                    .n
                    .set_chairman(&self.cfg, self.now, SESSION, i.map(|i| USERS[i]), 0)
                    .unwrap();
                self.deliver(out);
            }
            Step::Refresh => {
                self.cseq += 1;
                for p in Profile::ALL {
                    let tag = format!("t-{}", p.as_str());
                    let out = self.subscribe(p, Some(tag.as_bytes()));
                    self.deliver(out);
                }
            }
            Step::Burst => {
                for i in 1..USERS.len() {
                    self.status(i, EndpointStatus::Connected);
                }
            }
        }
        self.settle();
    }
}

proptest! {
    /// R93, R94: whatever happens on the session, the generic RFC 4575 client never discards a
    /// document and shows the truth (present users with their status, the subject); the OMA
    /// client shows the present users; the RCS client is shown the subject. One session, one
    /// subscriber per profile.
    #[test]
    fn every_profile_shows_the_truth(steps in proptest::collection::vec(step(), 1..40)) {
        let mut w = World::new();
        for s in &steps {
            w.run(s);
            prop_assert!(w.problems.is_empty(), "{}", w.problems.join("\n\n"));
            prop_assert_eq!(&w.generic.users, &w.truth, "the generic client's list");
            prop_assert_eq!(&w.generic.subject, &w.subject, "the generic client's subject");
            prop_assert_eq!(&w.oma.users, &w.truth, "the OMA client's list");
            prop_assert_eq!(&w.rcs_subject, &w.subject, "the RCS client's subject");
        }
    }
}
