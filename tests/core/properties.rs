//! Property tests of the notifier core: random sessions, subscribers and NOTIFY outcomes, checked
//! against a reference model of the session (R73-R80 entities, docs/conformance.md) and model subscribers that merge
//! documents the RFC 4575 way.
//!
//! Checked on every NOTIFY: the body passes the strict reader (a), versions and CSeqs move by one
//! (b), at most one NOTIFY per subscription is open (c), no private identity or nick leaks (e), and
//! every document is exact: present users carry the current state, a partial lists only changes
//! (R54, R55), a departure is reported only to whoever saw the user (R57). After the system has
//! gone quiet, every live subscriber's view equals the session's (d).
use allocator_api2::alloc::Global;
use imconf::core::conference_info::{self, EndpointStatus};
use imconf::core::config::Config;
use imconf::core::notifier::{Notifier, Notify, NotifyKind, SubscribeRequest};
use imconf::core::session::{ParticipantUpdate, Role, SessionKind};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use std::collections::BTreeMap;

const SESSION: &str = "sip:session-1@im.example.net";
const GROUP: &str = "sip:team@im.example.net";
const PEOPLE: usize = 5;
/// From URIs of private originators/joiners: a common one (clashes, R74) and generated look-alikes.
const FROMS: [&str; 3] = [
    "sip:anonymous@anonymous.invalid",
    "sip:anonymous1@anonymous.invalid",
    "sip:anonymous2@anonymous.invalid",
];
/// Nick names given under privacy all contain this; no body may (R78).
const SECRET: &str = "Secret";

fn aoia(i: usize) -> String {
    format!("sip:p{i}@example.net")
}

fn listed(i: usize) -> String {
    format!("sip:listed{i}@example.net")
}

fn fail(msg: String) -> TestCaseError {
    TestCaseError::fail(msg)
}

macro_rules! check {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(fail(format!($($fmt)+)));
        }
    };
}

// ------------------------------------------------------------------------ reference session

/// entity -> (status, display-text): what a subscriber should show.
type View = BTreeMap<String, (String, Option<String>)>;

/// One persona of a person: a person who changes their privacy choice appears as another user
/// (R78, R79), each persona with an entity fixed for the session (R48, R76).
#[derive(Debug, Clone)]
struct Persona {
    who: usize,
    privacy: bool,
    entity: String,
    nick: Option<String>,
    status: Option<&'static str>,
}

#[derive(Debug, Default, Clone)]
struct Reference {
    personas: Vec<Persona>,
    next_anonymous: u32,
}

#[derive(Debug, Clone)]
struct Update {
    who: usize,
    status: EndpointStatus,
    role: Role,
    privacy: bool,
    from: Option<String>,
    listed: Option<String>,
    nick: Option<String>,
}

impl Reference {
    fn new() -> Self {
        Reference {
            personas: Vec::new(),
            next_anonymous: 1,
        }
    }

    fn present(&self, who: usize) -> bool {
        self.personas
            .iter()
            .any(|p| p.who == who && p.status.is_some())
    }

    fn taken(&self, e: &str) -> bool {
        self.personas.iter().any(|p| p.entity == e)
    }

    /// R76: the lowest unused number, never handed out twice.
    fn anonymous(&mut self) -> String {
        loop {
            let e = format!("sip:anonymous{}@anonymous.invalid", self.next_anonymous);
            self.next_anonymous += 1;
            if !self.taken(&e) {
                return e;
            }
        }
    }

    /// R73-R77.
    fn entity(&mut self, u: &Update) -> String {
        match (u.role, u.privacy) {
            (Role::Invited, false) => u.listed.clone().unwrap_or_else(|| aoia(u.who)),
            (Role::Invited, true) => self.anonymous(),
            (_, false) => aoia(u.who),
            (_, true) => match &u.from {
                Some(f) if !self.taken(f) => f.clone(),
                _ => self.anonymous(),
            },
        }
    }

    fn apply(&mut self, u: &Update) {
        let status = match u.status {
            EndpointStatus::Disconnected => {
                for p in self.personas.iter_mut().filter(|p| p.who == u.who) {
                    p.status = None;
                }
                return;
            }
            EndpointStatus::Connected => "connected",
            EndpointStatus::Alerting => "alerting",
            // R59 has its own tests (dialing_out.rs); the generator does not produce it
            EndpointStatus::DialingOut => unreachable!("not generated"),
        };
        let idx = match self
            .personas
            .iter()
            .position(|p| p.who == u.who && p.privacy == u.privacy)
        {
            Some(i) => i,
            None => {
                let entity = self.entity(u);
                self.personas.push(Persona {
                    who: u.who,
                    privacy: u.privacy,
                    entity,
                    nick: None,
                    status: None,
                });
                self.personas.len() - 1
            }
        };
        for (i, p) in self.personas.iter_mut().enumerate() {
            if p.who == u.who && i != idx {
                p.status = None; // the other persona is gone
            }
        }
        let p = &mut self.personas[idx];
        p.status = Some(status);
        if u.nick.is_some() {
            p.nick = u.nick.clone();
        }
    }

    /// The nick an update sets (R55: a nick changed back to an earlier value is no change; the
    /// notifier compares nick digests, so reverts are generated too).
    fn new_nick(&self, u: &Update) -> Option<String> {
        u.nick.clone()
    }

    fn view(&self) -> View {
        self.personas
            .iter()
            .filter_map(|p| {
                let status = p.status?;
                let display = if p.privacy { None } else { p.nick.clone() };
                Some((p.entity.clone(), (status.to_string(), display)))
            })
            .collect()
    }

    /// R78: a person's AOIA may be shown only as the entity of one of its public personas.
    fn aoia_may_show(&self, who: usize) -> bool {
        self.personas
            .iter()
            .any(|p| p.who == who && !p.privacy && p.entity == aoia(who))
    }
}

// --------------------------------------------------------------------------------- clients

/// A subscriber: its dialog, and what it believes after merging every NOTIFY it received.
#[derive(Debug)]
struct Client {
    who: usize,
    call_id: String,
    local_tag: String,
    from_tag: String,
    ruri: String,
    cseq: u32,
    event_id: Option<String>,
    view: View,
    version: u32,
    last_cseq: Option<u32>,
    in_flight: Option<u64>,
    /// When the last NOTIFY was sent (R61).
    last_sent: Option<u64>,
    /// It asked to end (Expires: 0): the final NOTIFY carries state (R28, R29).
    ending: bool,
    /// It received a terminated NOTIFY.
    terminated: bool,
    /// A NOTIFY to it failed, so the server forgot it (R31).
    dead: bool,
}

impl Client {
    fn live(&self) -> bool {
        !self.terminated && !self.dead
    }
}

fn headers_of(h: &[(String, String)]) -> Vec<(&[u8], &[u8])> {
    h.iter()
        .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
        .collect()
}

fn header(block: &[u8], name: &str) -> Option<String> {
    std::str::from_utf8(block)
        .ok()?
        .split("\r\n")
        .find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
}

// ------------------------------------------------------------------------------ operations

#[derive(Debug, Clone)]
enum Op {
    Participant {
        who: usize,
        status: u8,
        role: u8,
        privacy: bool,
        from: u8,
        listed: bool,
        nick: Option<u8>,
    },
    Subscribe {
        who: usize,
        expires: u8,
        to_group: bool,
        event_id: bool,
    },
    Refresh {
        client: usize,
        expires: u8,
    },
    Complete {
        pick: usize,
        code: u8,
    },
    Tick {
        ms: u64,
    },
    Settle,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..PEOPLE, 0u8..3, 0u8..3, any::<bool>(), 0u8..4, any::<bool>(), proptest::option::of(0u8..3))
            .prop_map(|(who, status, role, privacy, from, listed, nick)| Op::Participant {
                who, status, role, privacy, from, listed, nick
            }),
        3 => (0..PEOPLE, 0u8..5, any::<bool>(), any::<bool>())
            .prop_map(|(who, expires, to_group, event_id)| Op::Subscribe { who, expires, to_group, event_id }),
        2 => (any::<usize>(), 0u8..5).prop_map(|(client, expires)| Op::Refresh { client, expires }),
        5 => (any::<usize>(), 0u8..6).prop_map(|(pick, code)| Op::Complete { pick, code }),
        3 => prop_oneof![0u64..1500, 0u64..40_000].prop_map(|ms| Op::Tick { ms }),
        1 => Just(Op::Settle),
    ]
}

#[derive(Debug, Clone)]
struct Setup {
    group: bool,
    interval: u64,
    max_pending: usize,
    terminate_on_leave: bool,
    close_at_end: bool,
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        any::<bool>(),
        prop_oneof![Just(0u64), Just(1000), Just(3000)],
        prop_oneof![Just(1usize), Just(2), Just(3), Just(200)],
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(group, interval, max_pending, terminate_on_leave, close_at_end)| Setup {
                group,
                interval,
                max_pending,
                terminate_on_leave,
                close_at_end,
            },
        )
}

// ---------------------------------------------------------------------------------- driver

struct Driver {
    n: Notifier<Global>,
    cfg: Config,
    now: u64,
    group: bool,
    reference: Reference,
    clients: Vec<Client>,
    /// NOTIFYs sent and not yet answered, in any subscription.
    open: Vec<Notify>,
    next_call: u32,
    closed: bool,
}

type Check = Result<(), TestCaseError>;

impl Driver {
    fn new(s: &Setup) -> Self {
        let cfg = Config {
            min_notify_interval_ms: s.interval,
            max_pending_changes: s.max_pending,
            terminate_on_leave: s.terminate_on_leave,
            ..Config::default()
        };
        let mut n = Notifier::new_in(42, Global);
        let (kind, group) = if s.group {
            (SessionKind::PreDefined, Some(GROUP.as_bytes()))
        } else {
            (SessionKind::AdHoc, None)
        };
        n.open_session(SESSION.as_bytes(), kind, group).unwrap();
        Driver {
            n,
            cfg,
            now: 5_000_000,
            group: s.group,
            reference: Reference::new(),
            clients: Vec::new(),
            open: Vec::new(),
            next_call: 0,
            closed: false,
        }
    }

    fn root(&self) -> &'static str {
        if self.group {
            GROUP
        } else {
            SESSION
        }
    }

    fn run(&mut self, op: &Op) -> Check {
        match *op {
            Op::Participant {
                who,
                status,
                role,
                privacy,
                from,
                listed: with_listed,
                nick,
            } => {
                let status = [
                    EndpointStatus::Alerting,
                    EndpointStatus::Connected,
                    EndpointStatus::Disconnected,
                ][status as usize];
                let role = [Role::Originator, Role::Invited, Role::Joined][role as usize];
                let leaving = status == EndpointStatus::Disconnected;
                let mut u = Update {
                    who,
                    status,
                    role,
                    privacy,
                    from: FROMS.get(from as usize).map(|s| s.to_string()),
                    listed: with_listed.then(|| listed(who)),
                    nick: nick.filter(|_| !leaving).map(|k| {
                        if privacy {
                            format!("{SECRET}{who}x{k}")
                        } else {
                            format!("Nick{who}x{k}")
                        }
                    }),
                };
                u.nick = self.reference.new_nick(&u);
                let a = aoia(who);
                let pu = ParticipantUpdate {
                    aoia: a.as_bytes(),
                    status,
                    role,
                    listed_uri: u.listed.as_deref().map(str::as_bytes),
                    from_uri: u.from.as_deref().map(str::as_bytes),
                    privacy,
                    nick: u.nick.as_deref().map(str::as_bytes),
                    disconnection_method: None,
                    disconnection_reason: None,
                    contact: None,
                    when_ms: None,
                };
                self.reference.apply(&u);
                let out = self
                    .n
                    .participant(&self.cfg, self.now, SESSION.as_bytes(), &pu)
                    .map_err(|e| fail(format!("participant: {e:?}")))?;
                self.receive(out)
            }
            Op::Subscribe {
                who,
                expires,
                to_group,
                event_id,
            } => self.subscribe(who, expires, to_group && self.group, event_id),
            Op::Refresh { client, expires } => self.refresh(client, expires),
            Op::Complete { pick, code } => {
                if self.open.is_empty() {
                    return Ok(());
                }
                let n = self.open.remove(pick % self.open.len());
                let code = [200u16, 200, 202, 481, 408, 500][code as usize];
                self.complete(n, code)
            }
            Op::Tick { ms } => {
                self.now += ms;
                let out = self.n.tick(&self.cfg, self.now);
                self.receive(out)
            }
            Op::Settle => self.settle(),
        }
    }

    fn subscribe(&mut self, who: usize, expires: u8, to_group: bool, with_id: bool) -> Check {
        let asked = [0u32, 60, 120, 3600, u32::MAX][expires as usize];
        self.next_call += 1;
        let call_id = format!("call-{}", self.next_call);
        let local_tag = format!("lt-{}", self.next_call);
        let from_tag = format!("ft-{}", self.next_call);
        let ruri = if to_group { GROUP } else { SESSION };
        let event_id = with_id.then(|| format!("id{}", self.next_call));
        let event = match &event_id {
            Some(id) => format!("conference;id={id}"),
            None => "conference".into(),
        };
        let hs = vec![
            ("Event".to_string(), event),
            ("Accept-Contact".into(), "*;+g.oma.sip-im".into()),
            ("P-Asserted-Identity".into(), format!("<{}>", aoia(who))),
            ("Expires".into(), asked.to_string()),
        ];
        let h = headers_of(&hs);
        let a = aoia(who);
        let contact = format!("<sip:{call_id}@192.0.2.7>");
        let req = SubscribeRequest {
            ruri: ruri.as_bytes(),
            call_id: call_id.as_bytes(),
            cseq: 1,
            from_uri: a.as_bytes(),
            from_tag: from_tag.as_bytes(),
            to_uri: ruri.as_bytes(),
            to_tag: b"",
            contact: contact.as_bytes(),
            record_route: b"",
            socket: b"",
            headers: &h,
            profile: None,
        };
        let out = self
            .n
            .subscribe(&self.cfg, self.now, &req, local_tag.as_bytes());
        // R1, R6, R7 (4 per user; the per-session limit is out of reach here).
        let own = self
            .clients
            .iter()
            .filter(|c| c.who == who && c.live())
            .count();
        let expected = if self.closed {
            404
        } else if self.reference.present(who) && own < self.cfg.max_subs_per_user_per_session {
            200
        } else {
            403
        };
        check!(
            out.reply.code == expected,
            "SUBSCRIBE of p{who}: {} (expected {expected})",
            out.reply.code
        );
        if expected != 200 {
            check!(out.notifies.is_empty(), "NOTIFY after a {expected}");
            return Ok(());
        }
        let granted = asked.min(self.cfg.max_expires);
        check!(
            header(&out.reply.headers, "Expires") == Some(granted.to_string()),
            "R19: {:?}",
            String::from_utf8_lossy(&out.reply.headers)
        );
        check!(out.notifies.len() == 1, "R25/R29: {:?}", out.notifies);
        let want = if granted == 0 {
            NotifyKind::Terminated
        } else {
            NotifyKind::Full
        };
        check!(out.notifies[0].kind == want, "R25/R29 kind");
        self.clients.push(Client {
            who,
            call_id,
            local_tag,
            from_tag,
            ruri: ruri.into(),
            cseq: 1,
            event_id,
            view: View::new(),
            version: 0,
            last_cseq: None,
            in_flight: None,
            last_sent: None,
            ending: granted == 0,
            terminated: false,
            dead: false,
        });
        self.receive(out.notifies)
    }

    fn refresh(&mut self, pick: usize, expires: u8) -> Check {
        if self.clients.is_empty() {
            return Ok(());
        }
        let i = pick % self.clients.len();
        let asked = [0u32, 60, 600, 3600, 10][expires as usize];
        let c = &mut self.clients[i];
        c.cseq += 1;
        let event = match &c.event_id {
            Some(id) => format!("conference;id={id}"),
            None => "conference".into(),
        };
        let hs = vec![
            ("Event".to_string(), event),
            ("Expires".into(), asked.to_string()),
        ];
        let h = headers_of(&hs);
        let a = aoia(c.who);
        let contact = format!("<sip:{}@192.0.2.7>", c.call_id);
        let req = SubscribeRequest {
            ruri: contact.as_bytes(),
            call_id: c.call_id.as_bytes(),
            cseq: c.cseq,
            from_uri: a.as_bytes(),
            from_tag: c.from_tag.as_bytes(),
            to_uri: c.ruri.as_bytes(),
            to_tag: c.local_tag.as_bytes(),
            contact: contact.as_bytes(),
            record_route: b"",
            socket: b"",
            headers: &h,
            profile: None,
        };
        let (live, in_flight) = (c.live(), c.in_flight.is_some());
        if live && asked == 0 {
            c.ending = true;
        }
        let out = self
            .n
            .subscribe(&self.cfg, self.now, &req, c.local_tag.as_bytes());
        if let Some(id) = out.held {
            // the caller has sent the reply (R25): release the NOTIFY held behind it
            check!(in_flight, "R25: a hold without a NOTIFY in flight");
            let released = self.n.reply_sent(&self.cfg, self.now, id);
            check!(released.is_empty(), "R32: sent while another is in flight");
        }
        let code = out.reply.code;
        if !live {
            check!(
                code == 481,
                "R13/R31: refresh of a gone subscription: {code}"
            );
        } else if code == 481 {
            // Only a termination waiting behind an open NOTIFY (R64) explains it.
            check!(
                in_flight,
                "R27: refresh of a live, idle subscription got 481"
            );
        } else {
            let want = if asked == 10 { 423 } else { 200 };
            check!(code == want, "R12/R27: refresh got {code}, expected {want}");
        }
        if code != 200 {
            check!(out.notifies.is_empty(), "NOTIFY after a {code}");
            return Ok(());
        }
        let want = usize::from(!in_flight);
        check!(
            out.notifies.len() == want,
            "R27/R32: {} NOTIFYs after a refresh (one open: {in_flight})",
            out.notifies.len()
        );
        if let Some(n) = out.notifies.first() {
            let kind = if asked == 0 {
                NotifyKind::Terminated
            } else {
                NotifyKind::Full
            };
            check!(n.kind == kind, "R27/R28/R63: {:?}", n.kind);
        }
        self.receive(out.notifies)
    }

    fn complete(&mut self, n: Notify, code: u16) -> Check {
        let c = self
            .clients
            .iter_mut()
            .find(|c| c.call_id.as_bytes() == n.call_id.as_slice())
            .ok_or_else(|| fail("completion for an unknown dialog".into()))?;
        check!(c.in_flight == Some(n.token), "open NOTIFY bookkeeping");
        c.in_flight = None;
        if !(200..300).contains(&code) && !c.terminated {
            c.dead = true; // R31
        }
        let gone = !c.live();
        let out = self.n.notify_completed(&self.cfg, self.now, n.token, code);
        check!(
            !gone || out.is_empty(),
            "R31/R69: NOTIFY after the subscription ended"
        );
        self.receive(out)
    }

    /// Answers every NOTIFY with 200 and lets the interval pass until nothing more is sent.
    fn settle(&mut self) -> Check {
        for _ in 0..200 {
            if let Some(n) = self.open.pop() {
                self.complete(n, 200)?;
                continue;
            }
            self.now += self.cfg.min_notify_interval_ms.max(1);
            let out = self.n.tick(&self.cfg, self.now);
            if out.is_empty() {
                return self.check_quiet();
            }
            self.receive(out)?;
        }
        Err(fail("the notifier never went quiet".into()))
    }

    /// (d): every live subscriber now shows exactly the session's state.
    fn check_quiet(&self) -> Check {
        let expected = self.reference.view();
        let mut live: Vec<&str> = Vec::new();
        for c in self.clients.iter().filter(|c| c.live()) {
            live.push(&c.call_id);
            check!(
                c.view == expected,
                "(d) {} of p{} shows {:?}\nsession is {:?}",
                c.call_id,
                c.who,
                c.view,
                expected
            );
            if self.cfg.terminate_on_leave {
                check!(
                    self.reference.present(c.who),
                    "R68: {} of departed p{} still live",
                    c.call_id,
                    c.who
                );
            }
        }
        let mut server: Vec<String> = self
            .n
            .subscriptions_info(self.now, None)
            .into_iter()
            .map(|s| s.call_id)
            .collect();
        server.sort();
        live.sort();
        check!(
            server == live,
            "server subscriptions {server:?}, live clients {live:?}"
        );
        Ok(())
    }

    /// Every NOTIFY the notifier hands out goes through here, in order.
    fn receive(&mut self, notifies: Vec<Notify>) -> Check {
        for n in notifies {
            self.receive_one(&n)?;
            self.open.push(n);
        }
        Ok(())
    }

    fn receive_one(&mut self, n: &Notify) -> Check {
        let root = self.root();
        let now = self.now;
        let interval = self.cfg.min_notify_interval_ms;
        let current = self.reference.view();
        let c = self
            .clients
            .iter_mut()
            .find(|c| c.call_id.as_bytes() == n.call_id.as_slice())
            .ok_or_else(|| fail("NOTIFY for an unknown dialog".into()))?;
        let at = format!("{} (p{}) cseq {}", c.call_id, c.who, n.cseq);
        check!(c.live(), "{at}: NOTIFY after the subscription ended");
        check!(n.local_tag == c.local_tag.as_bytes(), "{at}: R39 tags");
        check!(n.remote_tag == c.from_tag.as_bytes(), "{at}: R39 tags");
        // (c) R32
        check!(c.in_flight.is_none(), "{at}: (c) two NOTIFYs open at once");
        c.in_flight = Some(n.token);
        // (b) R40
        if let Some(last) = c.last_cseq {
            check!(
                n.cseq == last.wrapping_add(1),
                "{at}: (b) CSeq after {last}"
            );
        }
        c.last_cseq = Some(n.cseq);
        // R61: only partial NOTIFYs wait for the interval (R63, R64)
        if let (NotifyKind::Partial, Some(last)) = (n.kind, c.last_sent) {
            check!(
                now >= last + interval,
                "{at}: R61 partial {} ms after the previous NOTIFY",
                now - last
            );
        }
        c.last_sent = Some(now);
        let event = header(&n.headers, "Event");
        let want_event = match &c.event_id {
            Some(id) => format!("conference;id={id}"),
            None => "conference".into(),
        };
        check!(event == Some(want_event), "{at}: R34 Event {event:?}");
        let state = header(&n.headers, "Subscription-State").unwrap_or_default();
        if n.kind == NotifyKind::Terminated {
            check!(state.starts_with("terminated;reason="), "{at}: {state}");
            c.terminated = true;
        } else {
            let secs = state
                .strip_prefix("active;expires=")
                .and_then(|s| s.parse::<u32>().ok());
            check!(secs.is_some_and(|s| s >= 1), "{at}: R42 {state}");
        }
        let content_type = header(&n.headers, "Content-Type");
        if n.body.is_empty() {
            check!(
                n.kind == NotifyKind::Terminated,
                "{at}: active NOTIFY without body"
            );
            check!(
                content_type.is_none(),
                "{at}: R43 Content-Type without body"
            );
            return Ok(());
        }
        check!(
            content_type.as_deref() == Some("application/conference-info+xml"),
            "{at}: R43"
        );
        let text = String::from_utf8_lossy(&n.body).into_owned();
        // (a)
        let doc = conference_info::parse(&n.body)
            .map_err(|e| fail(format!("{at}: (a) body rejected: {e}\n{text}")))?;
        // (b) R33
        check!(
            doc.version == c.version.wrapping_add(1),
            "{at}: (b) version {} after {}",
            doc.version,
            c.version
        );
        c.version = doc.version;
        check!(doc.entity == root, "{at}: R45 root {}", doc.entity);
        let full = doc.state == "full";
        match n.kind {
            NotifyKind::Partial => check!(!full, "{at}: Partial with a full body"),
            _ => check!(full, "{at}: R46 {:?} with a partial body", n.kind),
        }
        if n.kind == NotifyKind::Terminated {
            // R28/R29 carry state; expiry (R30) and noresource (R69) do not
            check!(
                state == "terminated;reason=timeout" && c.ending,
                "{at}: R30/R69 body with {state}"
            );
        }
        // (e) R78
        check!(!text.contains(SECRET), "{at}: (e) a private nick\n{text}");
        for who in 0..PEOPLE {
            check!(
                !text.contains(&aoia(who)) || self.reference.aoia_may_show(who),
                "{at}: (e) private p{who}'s AOIA\n{text}"
            );
        }
        // Exactness: each user says what the session says now; departures go to those who saw them.
        let mut shown_present = View::new();
        for u in &doc.users {
            check!(u.endpoint_entity == u.entity, "{at}: R50");
            if u.status == "disconnected" {
                check!(
                    !current.contains_key(&u.entity),
                    "{at}: R57 {} reported gone but present",
                    u.entity
                );
                check!(
                    c.view.contains_key(&u.entity),
                    "{at}: R57 departure of {} never shown to this subscriber",
                    u.entity
                );
            } else {
                let got = (u.status.clone(), u.display_text.clone());
                check!(
                    current.get(&u.entity) == Some(&got),
                    "{at}: {} shown as {got:?}, session has {:?}\n{text}",
                    u.entity,
                    current.get(&u.entity)
                );
                if !full {
                    check!(
                        c.view.get(&u.entity) != Some(&got),
                        "{at}: R54/R55 unchanged {} in a partial\n{text}",
                        u.entity
                    );
                }
                shown_present.insert(u.entity.clone(), got);
            }
        }
        if full {
            check!(
                shown_present == current,
                "{at}: R46/R65 full document lists {shown_present:?}, session has {current:?}\n{text}"
            );
            c.view = shown_present;
        } else {
            check!(!doc.users.is_empty(), "{at}: R55 empty partial");
            for u in &doc.users {
                if u.status == "disconnected" {
                    c.view.remove(&u.entity);
                } else {
                    c.view
                        .insert(u.entity.clone(), (u.status.clone(), u.display_text.clone()));
                }
            }
        }
        Ok(())
    }

    /// R67: closing the session ends every subscription with noresource and no body.
    fn close(&mut self) -> Check {
        let out = self
            .n
            .close_session(&self.cfg, self.now, SESSION.as_bytes())
            .map_err(|e| fail(format!("close: {e:?}")))?;
        self.closed = true;
        for n in &out {
            check!(
                header(&n.headers, "Subscription-State").as_deref()
                    == Some("terminated;reason=noresource")
                    && n.body.is_empty(),
                "R67/R69: {:?}",
                String::from_utf8_lossy(&n.headers)
            );
        }
        self.receive(out)?;
        for _ in 0..100 {
            let Some(n) = self.open.pop() else { break };
            self.complete(n, 200)?;
        }
        check!(
            self.clients.iter().all(|c| !c.live()),
            "R67: a subscription survived the release"
        );
        check!(self.n.subscription_count() == 0, "R67: records left");
        // R38: no re-subscription.
        self.subscribe(0, 3, false, false)
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 400,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn notifier_keeps_every_subscriber_exact(
        s in setup(),
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let mut d = Driver::new(&s);
        for op in &ops {
            d.run(op)?;
        }
        d.settle()?;
        if s.close_at_end {
            d.close()?;
        }
    }
}
