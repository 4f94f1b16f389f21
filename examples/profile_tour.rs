//! What each output profile (R94) sends in one scripted group chat: Alice subscribes three times
//! (one dialog per profile), Bob joins, Carol is invited (ringing), Carol joins, the subject is
//! set, Alice becomes chairman and removes Bob, Carol leaves, Alice refreshes. Prints every
//! document of each dialog. Core only (the module sends the same bodies).
//!
//! `cargo run --release --example profile_tour`
use allocator_api2::alloc::Global;
use imconf::core::conference_info::{DisconnectionMethod, EndpointStatus};
use imconf::core::config::Config;
use imconf::core::notifier::{Notifier, Notify, SubscribeRequest};
use imconf::core::profile::Profile;
use imconf::core::session::{ParticipantUpdate, SessionKind, SubjectUpdate};

const SESSION: &[u8] = b"sip:chat-42@conf.example.net";
const GROUP: &[u8] = b"sip:hikers@conf.example.net";
const ALICE: &[u8] = b"sip:+15550100@ims.example.net";
const BOB: &[u8] = b"sip:+15550101@ims.example.net";
const CAROL: &[u8] = b"sip:+15550102@ims.example.net";
const T0: u64 = 1_796_601_600_000; // 2026-12-07T00:00:00Z

struct Tour {
    cfg: Config,
    n: Notifier<Global>,
    docs: Vec<Vec<String>>,
}

impl Tour {
    fn deliver(&mut self, notifies: Vec<Notify>) {
        let mut pending = notifies;
        while let Some(x) = pending.pop() {
            if !x.body.is_empty() {
                let i = usize::from(x.call_id[1] - b'0');
                self.docs[i].push(String::from_utf8_lossy(&x.body).into_owned());
            }
            pending.extend(self.n.notify_completed(&self.cfg, 0, x.token, 200));
        }
    }

    fn feed(&mut self, u: ParticipantUpdate<'_>, at_s: u64) {
        let u = ParticipantUpdate {
            when_ms: Some(T0 + at_s * 1000),
            ..u
        };
        let out = self.n.participant(&self.cfg, at_s, SESSION, &u).unwrap();
        self.deliver(out);
        let out = self.n.tick(&self.cfg, at_s + 1);
        self.deliver(out);
    }
}

fn main() {
    let cfg = Config {
        min_notify_interval_ms: 0,
        ..Config::default()
    };
    let mut n = Notifier::new_in(1, Global);
    n.open_session(SESSION, SessionKind::Chat, Some(GROUP))
        .unwrap();
    let mut t = Tour {
        cfg,
        n,
        docs: vec![Vec::new(); 3],
    };
    t.feed(ParticipantUpdate::new(ALICE, EndpointStatus::Connected), 0);
    let headers: [(&[u8], &[u8]); 3] = [
        (b"Event", b"conference"),
        (b"Accept-Contact", b"*;+g.oma.sip-im"),
        (b"P-Asserted-Identity", b"<sip:+15550100@ims.example.net>"),
    ];
    for (i, p) in Profile::ALL.into_iter().enumerate() {
        let call_id = format!("c{i}");
        let req = SubscribeRequest {
            ruri: SESSION,
            call_id: call_id.as_bytes(),
            cseq: 1,
            from_uri: ALICE,
            from_tag: b"ft",
            to_uri: SESSION,
            contact: b"sip:alice@192.0.2.1",
            headers: &headers,
            profile: Some(p),
            ..Default::default()
        };
        let out = t.n.subscribe(&t.cfg, 1, &req, format!("t{i}").as_bytes());
        t.deliver(out.notifies);
    }
    t.feed(ParticipantUpdate::new(BOB, EndpointStatus::Connected), 10);
    t.feed(ParticipantUpdate::new(CAROL, EndpointStatus::Alerting), 20);
    t.feed(ParticipantUpdate::new(CAROL, EndpointStatus::Connected), 30);
    let subject = SubjectUpdate {
        text: Some(b"Hike on Sunday"),
        by: Some(ALICE),
        when_ms: T0 + 40_000,
    };
    let out = t.n.set_subject(&t.cfg, 40, SESSION, &subject, 0).unwrap();
    t.deliver(out);
    let out =
        t.n.set_chairman(&t.cfg, 50, SESSION, Some(ALICE), 0)
            .unwrap();
    t.deliver(out);
    t.feed(
        ParticipantUpdate {
            disconnection_method: Some(DisconnectionMethod::Booted),
            ..ParticipantUpdate::new(BOB, EndpointStatus::Disconnected)
        },
        60,
    );
    t.feed(
        ParticipantUpdate::new(CAROL, EndpointStatus::Disconnected),
        70,
    );
    // Alice refreshes each dialog: a full document each
    for i in 0..3 {
        let (call_id, tag) = (format!("c{i}"), format!("t{i}"));
        let req = SubscribeRequest {
            ruri: SESSION,
            call_id: call_id.as_bytes(),
            cseq: 2,
            from_uri: ALICE,
            from_tag: b"ft",
            to_uri: SESSION,
            to_tag: tag.as_bytes(),
            contact: b"sip:alice@192.0.2.1",
            headers: &headers,
            ..Default::default()
        };
        let out = t.n.subscribe(&t.cfg, 80, &req, tag.as_bytes());
        t.deliver(out.notifies);
    }
    for (p, docs) in Profile::ALL.into_iter().zip(&t.docs) {
        println!("==== profile {} ({} documents)", p.as_str(), docs.len());
        for d in docs {
            println!("{}", d.trim_end());
        }
    }
}
