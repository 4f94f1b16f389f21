//! The notifier core driven through its public API, one or more tests per rule (docs/conformance.md).
//!
//! Every NOTIFY body is read back with the strict RFC 4575 reader (`conference_info::parse`), so a
//! test that looks at a body also checks that the body is a valid document.
//!
//! This file is the harness; the tests are in one file per section of the rules.
use allocator_api2::alloc::Global;
use imconf::core::conference_info::{self, EndpointStatus, ParsedDocument};
use imconf::core::config::Config;
use imconf::core::notifier::{Notifier, Notify, NotifyKind, SubscribeOutcome, SubscribeRequest};
use imconf::core::session::{ParticipantUpdate, Role, SessionKind};

mod content;
mod inspection;
mod lifecycle;
mod privacy;
mod rate_limiting;
mod reply;
mod termination;
mod validation;

const ADHOC: &str = "sip:adhoc-1@im.example.net";
const GROUP_SESSION: &str = "sip:grp-session-7@im.example.net";
const GROUP: &str = "sip:hiking-team@im.example.net";
const ANA: &str = "sip:ana@example.net";
const BOB: &str = "sip:bob@example.net";
const CARL: &str = "sip:carl@example.net";
const DORA: &str = "sip:dora@example.net";
const START: u64 = 1_000_000;

// ------------------------------------------------------------------------------------ harness

/// A SUBSCRIBE as the subscriber sends it (owned, turned into `SubscribeRequest` views on use).
#[derive(Debug, Clone)]
struct Req {
    ruri: String,
    call_id: String,
    cseq: u32,
    from_uri: String,
    from_tag: String,
    to_uri: String,
    to_tag: String,
    contact: String,
    headers: Vec<(String, String)>,
}

impl Req {
    /// An initial SUBSCRIBE that passes every check of §2 for a participant `aoia`.
    fn initial(ruri: &str, aoia: &str, call_id: &str) -> Req {
        Req {
            ruri: ruri.into(),
            call_id: call_id.into(),
            cseq: 1,
            from_uri: aoia.into(),
            from_tag: format!("ft-{call_id}"),
            to_uri: ruri.into(),
            to_tag: String::new(),
            contact: format!("<sip:{call_id}@192.0.2.10:5060>"),
            headers: vec![
                ("Event".into(), "conference".into()),
                ("Accept-Contact".into(), "*;+g.oma.sip-im".into()),
                ("P-Asserted-Identity".into(), format!("<{aoia}>")),
                ("Accept".into(), "application/conference-info+xml".into()),
                ("Expires".into(), "3600".into()),
            ],
        }
    }

    /// Replaces (or adds) a header.
    fn with(mut self, name: &str, value: &str) -> Req {
        self = self.without(name);
        self.headers.push((name.into(), value.into()));
        self
    }

    fn without(mut self, name: &str) -> Req {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    /// The next in-dialog SUBSCRIBE of this dialog (`local_tag` is the server's To-tag).
    fn next_in_dialog(&self, local_tag: &str) -> Req {
        let mut r = self.clone();
        r.to_tag = local_tag.into();
        r.cseq += 1;
        r
    }

    fn view<'a>(&'a self, headers: &'a [(&'a [u8], &'a [u8])]) -> SubscribeRequest<'a> {
        SubscribeRequest {
            ruri: self.ruri.as_bytes(),
            call_id: self.call_id.as_bytes(),
            cseq: self.cseq,
            from_uri: self.from_uri.as_bytes(),
            from_tag: self.from_tag.as_bytes(),
            to_uri: self.to_uri.as_bytes(),
            to_tag: self.to_tag.as_bytes(),
            contact: self.contact.as_bytes(),
            record_route: b"<sip:proxy.example.net;lr>",
            socket: b"udp:192.0.2.1:5060",
            headers,
            profile: None,
        }
    }
}

/// The notifier, its configuration and the clock.
struct World {
    n: Notifier<Global>,
    cfg: Config,
    now: u64,
}

impl World {
    fn new(cfg: Config) -> World {
        World {
            n: Notifier::new_in(7, Global),
            cfg,
            now: START,
        }
    }

    fn open(&mut self, uri: &str, kind: SessionKind, group: Option<&str>) {
        self.n
            .open_session(uri.as_bytes(), kind, group.map(str::as_bytes))
            .unwrap();
    }

    fn update(&mut self, session: &str, u: ParticipantUpdate<'_>) -> Vec<Notify> {
        self.n
            .participant(&self.cfg, self.now, session.as_bytes(), &u)
            .unwrap()
    }

    fn join(&mut self, session: &str, aoia: &str) -> Vec<Notify> {
        self.update(session, joined(aoia))
    }

    fn leave(&mut self, session: &str, aoia: &str) -> Vec<Notify> {
        self.update(session, left(aoia))
    }

    fn subscribe_as(&mut self, req: &Req, local_tag: &str) -> SubscribeOutcome {
        let headers: Vec<(&[u8], &[u8])> = req
            .headers
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .collect();
        let out = self.n.subscribe(
            &self.cfg,
            self.now,
            &req.view(&headers),
            local_tag.as_bytes(),
        );
        if let Some(id) = out.held {
            // as the module does once the reply has left (R25); one NOTIFY is still in flight
            assert!(self.n.reply_sent(&self.cfg, self.now, id).is_empty());
        }
        out
    }

    /// Subscribes `aoia` to `ruri` and returns its dialog and the initial NOTIFY (still in flight).
    fn subscribed(&mut self, ruri: &str, aoia: &str, call_id: &str) -> (Dialog, Notify) {
        let req = Req::initial(ruri, aoia, call_id);
        let local_tag = format!("lt-{call_id}");
        let out = self.subscribe_as(&req, &local_tag);
        assert_eq!(out.reply.code, 200, "{:?}", out.reply);
        assert_eq!(out.notifies.len(), 1, "{:?}", out.notifies);
        let n = out.notifies.into_iter().next().unwrap();
        (Dialog { req, local_tag }, n)
    }

    /// Subscribes, answers the initial NOTIFY with 200 and lets the rate-limit interval pass.
    fn settled_subscriber(&mut self, ruri: &str, aoia: &str, call_id: &str) -> Dialog {
        let (d, n) = self.subscribed(ruri, aoia, call_id);
        assert!(self.complete(&n, 200).is_empty());
        self.advance(self.cfg.min_notify_interval_ms);
        d
    }

    fn complete(&mut self, n: &Notify, code: u16) -> Vec<Notify> {
        self.n.notify_completed(&self.cfg, self.now, n.token, code)
    }

    fn tick(&mut self) -> Vec<Notify> {
        self.n.tick(&self.cfg, self.now)
    }

    fn advance(&mut self, ms: u64) {
        self.now += ms;
    }

    /// Sends the next in-dialog SUBSCRIBE of `d` with the given Expires.
    fn resubscribe(&mut self, d: &mut Dialog, expires: &str) -> SubscribeOutcome {
        d.req = d.req.next_in_dialog(&d.local_tag).with("Expires", expires);
        let req = d.req.clone();
        let tag = d.local_tag.clone();
        self.subscribe_as(&req, &tag)
    }

    fn sub_count(&self) -> usize {
        self.n.subscription_count()
    }
}

/// A subscriber's dialog: its last request and the server's tag.
struct Dialog {
    req: Req,
    local_tag: String,
}

fn joined(aoia: &str) -> ParticipantUpdate<'_> {
    ParticipantUpdate::new(aoia.as_bytes(), EndpointStatus::Connected)
}

fn left(aoia: &str) -> ParticipantUpdate<'_> {
    ParticipantUpdate {
        status: EndpointStatus::Disconnected,
        ..joined(aoia)
    }
}

fn alerting(aoia: &str) -> ParticipantUpdate<'_> {
    ParticipantUpdate {
        status: EndpointStatus::Alerting,
        role: Role::Invited,
        ..joined(aoia)
    }
}

fn cfg() -> Config {
    Config::default()
}

/// An ad-hoc session with `members` connected (the first is the originator).
fn adhoc_with(cfg: Config, members: &[&str]) -> World {
    let mut w = World::new(cfg);
    w.open(ADHOC, SessionKind::AdHoc, None);
    for (i, m) in members.iter().enumerate() {
        let role = if i == 0 {
            Role::Originator
        } else {
            Role::Joined
        };
        assert!(w
            .update(ADHOC, ParticipantUpdate { role, ..joined(m) })
            .is_empty());
    }
    w
}

/// The value of header `name` in a block of CRLF-terminated header lines.
fn header(block: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(block).expect("headers are UTF-8");
    assert!(
        text.is_empty() || text.ends_with("\r\n"),
        "header lines end in CRLF: {text:?}"
    );
    text.split("\r\n").find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

fn sub_state(n: &Notify) -> String {
    header(&n.headers, "Subscription-State").expect("Subscription-State")
}

/// The body, read by the strict RFC 4575 reader.
fn doc(n: &Notify) -> ParsedDocument {
    conference_info::parse(&n.body).unwrap_or_else(|e| {
        panic!(
            "NOTIFY body rejected: {e}\n{}",
            String::from_utf8_lossy(&n.body)
        )
    })
}

/// (entity, status) of every user of the body, sorted.
fn users(n: &Notify) -> Vec<(String, String)> {
    let mut v: Vec<_> = doc(n)
        .users
        .into_iter()
        .map(|u| (u.entity, u.status))
        .collect();
    v.sort();
    v
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<_> = list
        .iter()
        .map(|(e, s)| (e.to_string(), s.to_string()))
        .collect();
    v.sort();
    v
}

fn only(mut v: Vec<Notify>) -> Notify {
    assert_eq!(v.len(), 1, "expected exactly one NOTIFY: {v:?}");
    v.pop().unwrap()
}

fn body_text(n: &Notify) -> String {
    String::from_utf8_lossy(&n.body).into_owned()
}
