//! The notifier core driven through its public API, one or more tests per rule (docs/conformance.md).
//!
//! Every NOTIFY body is read back with the strict RFC 4575 reader (`conference_info::parse`), so a
//! test that looks at a body also checks that the body is a valid document.
use allocator_api2::alloc::Global;
use imconf::core::conference_info::{self, EndpointStatus, ParsedDocument};
use imconf::core::config::Config;
use imconf::core::notifier::{Notifier, Notify, NotifyKind, SubscribeOutcome, SubscribeRequest};
use imconf::core::session::{ParticipantUpdate, Role, SessionKind};

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

// ---------------------------------------------------------------------------- §2 validation

#[test]
fn r01_unknown_uri_gets_404_without_contact_or_body() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let out = w.subscribe_as(&Req::initial("sip:nobody@im.example.net", ANA, "c1"), "t1");
    assert_eq!(out.reply.code, 404);
    assert_eq!(header(&out.reply.headers, "Contact"), None);
    assert!(out.notifies.is_empty());
    assert_eq!(w.sub_count(), 0);
}

#[test]
fn r01_existence_is_checked_before_the_feature_tag() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let req = Req::initial("sip:nobody@im.example.net", ANA, "c1").without("Accept-Contact");
    assert_eq!(w.subscribe_as(&req, "t1").reply.code, 404);
}

#[test]
fn r01_released_session_gets_404() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    assert_eq!(
        w.subscribe_as(&Req::initial(ADHOC, ANA, "c0"), "t0")
            .reply
            .code,
        200
    );
    w.n.close_session(&w.cfg, w.now, ADHOC.as_bytes()).unwrap();
    let out = w.subscribe_as(&Req::initial(ADHOC, ANA, "c1"), "t1");
    assert_eq!(out.reply.code, 404);
    assert!(out.notifies.is_empty());
}

#[test]
fn r01_conference_factory_uri_itself_gets_404() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let factory = w.cfg.conference_factory_uri.clone();
    assert_eq!(
        w.subscribe_as(&Req::initial(&factory, ANA, "c1"), "t1")
            .reply
            .code,
        404
    );
}

#[test]
fn r03_group_identity_of_an_active_session_is_accepted() {
    let mut w = World::new(cfg());
    w.open(GROUP_SESSION, SessionKind::PreDefined, Some(GROUP));
    w.join(GROUP_SESSION, ANA);
    let (_, n) = w.subscribed(GROUP, ANA, "c1");
    let d = doc(&n);
    assert_eq!(d.entity, GROUP);
    assert_eq!(users(&n), pairs(&[(ANA, "connected")]));
}

#[test]
fn r03_group_identity_without_an_active_session_gets_404() {
    let mut w = World::new(cfg());
    w.open(GROUP_SESSION, SessionKind::PreDefined, Some(GROUP));
    w.join(GROUP_SESSION, ANA);
    w.n.close_session(&w.cfg, w.now, GROUP_SESSION.as_bytes())
        .unwrap();
    assert_eq!(
        w.subscribe_as(&Req::initial(GROUP, ANA, "c1"), "t1")
            .reply
            .code,
        404
    );
}

#[test]
fn r04_no_oma_im_feature_tag_gets_403() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let base = Req::initial(ADHOC, ANA, "c1");
    let no_header = base.clone().without("Accept-Contact");
    assert_eq!(w.subscribe_as(&no_header, "t1").reply.code, 403);
    let large_only = base
        .clone()
        .with("Accept-Contact", "*;+g.oma.sip-im.large-message");
    assert_eq!(w.subscribe_as(&large_only, "t1").reply.code, 403);
    assert_eq!(w.sub_count(), 0);
    // The same request with the tag (compact form `a`, other case) passes.
    let tagged = base.without("Accept-Contact").with("a", "*;+G.OMA.SIP-IM");
    assert_eq!(w.subscribe_as(&tagged, "t1").reply.code, 200);
}

#[test]
fn r05_no_asserted_identity_gets_403() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let req = Req::initial(ADHOC, ANA, "c1").without("P-Asserted-Identity");
    let out = w.subscribe_as(&req, "t1");
    assert_eq!(out.reply.code, 403);
    assert!(out.notifies.is_empty());
    assert_eq!(w.sub_count(), 0);
}

#[test]
fn r05_trust_from_header_falls_back_to_the_from_uri() {
    let mut w = adhoc_with(
        Config {
            trust_from_header: true,
            ..cfg()
        },
        &[ANA],
    );
    let from_ana = Req::initial(ADHOC, ANA, "c1").without("P-Asserted-Identity");
    assert_eq!(w.subscribe_as(&from_ana, "t1").reply.code, 200);
    // The From URI really is the identity: a From that is not a participant is refused (R6).
    let from_bob = Req::initial(ADHOC, BOB, "c2").without("P-Asserted-Identity");
    assert_eq!(w.subscribe_as(&from_bob, "t2").reply.code, 403);
    let info = w.n.subscriptions_info(w.now, None);
    assert_eq!(info.len(), 1);
    assert_eq!(info[0].subscriber, ANA);
}

#[test]
fn r05_asserted_identity_wins_over_from() {
    let mut w = adhoc_with(
        Config {
            trust_from_header: true,
            ..cfg()
        },
        &[ANA],
    );
    // From says Ana, but the asserted identity is Bob, who is not a participant.
    let req = Req::initial(ADHOC, ANA, "c1").with("P-Asserted-Identity", &format!("<{BOB}>"));
    assert_eq!(w.subscribe_as(&req, "t1").reply.code, 403);
}

#[test]
fn r06_non_participant_of_adhoc_session_gets_403() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let out = w.subscribe_as(&Req::initial(ADHOC, BOB, "c1"), "t1");
    assert_eq!(out.reply.code, 403);
    assert!(out.notifies.is_empty());
    assert_eq!(w.sub_count(), 0);
    assert_eq!(w.n.stats.rejected_by_policy, 1);
}

#[test]
fn r06_departed_participant_gets_403_alerting_one_is_allowed() {
    let mut w = adhoc_with(cfg(), &[ANA, BOB]);
    w.leave(ADHOC, BOB);
    w.update(ADHOC, alerting(CARL));
    assert_eq!(
        w.subscribe_as(&Req::initial(ADHOC, BOB, "c1"), "t1")
            .reply
            .code,
        403
    );
    assert_eq!(
        w.subscribe_as(&Req::initial(ADHOC, CARL, "c2"), "t2")
            .reply
            .code,
        200
    );
}

#[test]
fn r07_subscriptions_per_user_are_limited() {
    let mut w = adhoc_with(
        Config {
            max_subs_per_user_per_session: 2,
            ..cfg()
        },
        &[ANA, BOB],
    );
    for c in ["a1", "a2"] {
        assert_eq!(
            w.subscribe_as(&Req::initial(ADHOC, ANA, c), c).reply.code,
            200
        );
    }
    let out = w.subscribe_as(&Req::initial(ADHOC, ANA, "a3"), "a3");
    assert_eq!(out.reply.code, 403);
    assert!(out.notifies.is_empty());
    assert_eq!(w.sub_count(), 2);
    // Another user is not affected.
    assert_eq!(
        w.subscribe_as(&Req::initial(ADHOC, BOB, "b1"), "b1")
            .reply
            .code,
        200
    );
}

#[test]
fn r07_an_ended_subscription_frees_its_place() {
    let mut w = adhoc_with(
        Config {
            max_subs_per_user_per_session: 1,
            ..cfg()
        },
        &[ANA],
    );
    let (mut d, n) = w.subscribed(ADHOC, ANA, "a1");
    w.complete(&n, 200);
    assert_eq!(
        w.subscribe_as(&Req::initial(ADHOC, ANA, "a2"), "a2")
            .reply
            .code,
        403
    );
    // unsubscribe: the terminating NOTIFY ends it (R28, R69), the count follows
    assert_eq!(w.resubscribe(&mut d, "0").reply.code, 200);
    assert_eq!(w.sub_count(), 0);
    assert_eq!(
        w.subscribe_as(&Req::initial(ADHOC, ANA, "a3"), "a3")
            .reply
            .code,
        200
    );
}

#[test]
fn r07_subscriptions_per_session_are_limited() {
    let mut w = adhoc_with(
        Config {
            max_subs_per_session: 2,
            ..cfg()
        },
        &[ANA, BOB, CARL],
    );
    assert_eq!(
        w.subscribe_as(&Req::initial(ADHOC, ANA, "a1"), "a1")
            .reply
            .code,
        200
    );
    let (mut bob, n) = w.subscribed(ADHOC, BOB, "b1");
    w.complete(&n, 200);
    let out = w.subscribe_as(&Req::initial(ADHOC, CARL, "c1"), "c1");
    assert_eq!(out.reply.code, 403);
    assert_eq!(w.sub_count(), 2);
    assert_eq!(w.n.stats.rejected_by_policy, 1);
    // Once Bob unsubscribes there is room again.
    let out = w.resubscribe(&mut bob, "0");
    assert_eq!(out.reply.code, 200);
    assert_eq!(
        w.subscribe_as(&Req::initial(ADHOC, CARL, "c2"), "c2")
            .reply
            .code,
        200
    );
}

#[test]
fn r10_other_or_missing_event_gets_489_with_allow_events() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    for req in [
        Req::initial(ADHOC, ANA, "c1").with("Event", "presence"),
        Req::initial(ADHOC, ANA, "c1").without("Event"),
        // P1 runs first: an unknown URI with a wrong event is still 489.
        Req::initial("sip:nobody@im.example.net", ANA, "c1").with("Event", "dialog"),
    ] {
        let out = w.subscribe_as(&req, "t1");
        assert_eq!(out.reply.code, 489, "{req:?}");
        assert_eq!(
            header(&out.reply.headers, "Allow-Events").as_deref(),
            Some("conference")
        );
        assert!(out.notifies.is_empty());
    }
    assert_eq!(w.sub_count(), 0);
}

#[test]
fn r11_accept_without_conference_info_gets_406() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let pidf = Req::initial(ADHOC, ANA, "c1").with("Accept", "application/pidf+xml");
    let out = w.subscribe_as(&pidf, "t1");
    assert_eq!(out.reply.code, 406);
    assert!(out.notifies.is_empty());
    assert_eq!(w.sub_count(), 0);
    let wildcard = Req::initial(ADHOC, ANA, "c2").with("Accept", "application/pidf+xml, */*");
    assert_eq!(w.subscribe_as(&wildcard, "t2").reply.code, 200);
    let absent = Req::initial(ADHOC, ANA, "c3").without("Accept");
    assert_eq!(w.subscribe_as(&absent, "t3").reply.code, 200);
}

#[test]
fn r12_expires_below_minimum_gets_423_with_min_expires() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let out = w.subscribe_as(&Req::initial(ADHOC, ANA, "c1").with("Expires", "5"), "t1");
    assert_eq!(out.reply.code, 423);
    assert_eq!(
        header(&out.reply.headers, "Min-Expires").as_deref(),
        Some("60")
    );
    assert!(out.notifies.is_empty());
    assert_eq!(w.sub_count(), 0);
    // The minimum itself is fine.
    let out = w.subscribe_as(&Req::initial(ADHOC, ANA, "c2").with("Expires", "60"), "t2");
    assert_eq!(out.reply.code, 200);
}

#[test]
fn r12_refresh_below_minimum_gets_423_and_keeps_the_subscription() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let mut d = w.settled_subscriber(ADHOC, ANA, "c1");
    let out = w.resubscribe(&mut d, "10");
    assert_eq!(out.reply.code, 423);
    assert_eq!(
        header(&out.reply.headers, "Min-Expires").as_deref(),
        Some("60")
    );
    assert!(out.notifies.is_empty());
    assert_eq!(w.sub_count(), 1);
}

#[test]
fn r13_in_dialog_subscribe_for_no_subscription_gets_481() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let mut req = Req::initial(ADHOC, ANA, "c1");
    req.to_tag = "no-such-tag".into();
    let out = w.subscribe_as(&req, "ignored");
    assert_eq!(out.reply.code, 481);
    assert!(out.notifies.is_empty());
    // The right Call-ID with a different From tag is not that dialog either.
    let mut d = w.settled_subscriber(ADHOC, ANA, "c2");
    d.req.from_tag = "someone-else".into();
    assert_eq!(w.resubscribe(&mut d, "600").reply.code, 481);
}

#[test]
fn r13_lower_cseq_gets_500() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let mut d = w.settled_subscriber(ADHOC, ANA, "c1");
    d.req.cseq = 10;
    assert_eq!(w.resubscribe(&mut d, "600").reply.code, 200); // cseq 11
    d.req.cseq = 4;
    let out = w.resubscribe(&mut d, "600"); // cseq 5 < 11
    assert_eq!(out.reply.code, 500);
    assert!(out.notifies.is_empty());
    assert_eq!(w.sub_count(), 1);
}

#[test]
fn r14_unparseable_expires_gets_400() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    for bad in ["soon", "-1", "", "12s"] {
        let out = w.subscribe_as(&Req::initial(ADHOC, ANA, "c1").with("Expires", bad), "t1");
        assert_eq!(out.reply.code, 400, "Expires {bad:?}");
        assert!(out.notifies.is_empty());
    }
    assert_eq!(w.sub_count(), 0);
}

#[test]
fn r14_unparseable_request_uri_gets_400() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let out = w.subscribe_as(&Req::initial("not a uri", ANA, "c1"), "t1");
    assert_eq!(out.reply.code, 400);
}

// ------------------------------------------------------------------------------- §3 the 2xx

#[test]
fn r15_to_r21_ok_reply_headers_for_an_adhoc_session() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let out = w.subscribe_as(&Req::initial(ADHOC, ANA, "c1"), "t1");
    let r = &out.reply;
    assert_eq!((r.code, r.reason), (200, "OK")); // R15: never 202
    let h = &r.headers;
    assert_eq!(
        header(h, "Contact").as_deref(),
        Some("<sip:imconf@127.0.0.1>")
    ); // R16
    assert_eq!(
        header(h, "P-Asserted-Identity").as_deref(),
        Some("<sip:factory@127.0.0.1>")
    ); // R17 (a)
    assert_eq!(header(h, "Supported").as_deref(), Some("norefersub")); // R18
    assert_eq!(header(h, "Expires").as_deref(), Some("3600")); // R19
    assert_eq!(header(h, "Allow-Events").as_deref(), Some("conference")); // R21
    assert_eq!(header(h, "Content-Type"), None); // R21: no body
}

#[test]
fn r17_group_kinds_assert_the_group_identity() {
    for kind in [
        SessionKind::PreDefined,
        SessionKind::Chat,
        SessionKind::RestrictedChat,
    ] {
        let mut w = World::new(cfg());
        w.open(GROUP_SESSION, kind, Some(GROUP));
        w.join(GROUP_SESSION, ANA);
        let out = w.subscribe_as(&Req::initial(GROUP_SESSION, ANA, "c1"), "t1");
        assert_eq!(out.reply.code, 200);
        assert_eq!(
            header(&out.reply.headers, "P-Asserted-Identity").as_deref(),
            Some("<sip:hiking-team@im.example.net>"),
            "{kind:?}"
        );
    }
    let mut w = World::new(cfg());
    w.open(ADHOC, SessionKind::OneToOne, None);
    w.join(ADHOC, ANA);
    let out = w.subscribe_as(&Req::initial(ADHOC, ANA, "c1"), "t1");
    assert_eq!(
        header(&out.reply.headers, "P-Asserted-Identity").as_deref(),
        Some("<sip:factory@127.0.0.1>")
    );
}

#[test]
fn r17_identity_header_name_is_configurable() {
    let mut w = adhoc_with(
        Config {
            assert_identity_header: "P-Preferred-Identity".into(),
            ..cfg()
        },
        &[ANA],
    );
    let out = w.subscribe_as(&Req::initial(ADHOC, ANA, "c1"), "t1");
    assert_eq!(
        header(&out.reply.headers, "P-Preferred-Identity").as_deref(),
        Some("<sip:factory@127.0.0.1>")
    );
    assert_eq!(header(&out.reply.headers, "P-Asserted-Identity"), None);
}

#[test]
fn r19_expires_is_capped_at_the_maximum_and_defaults_when_absent() {
    let mut w = adhoc_with(
        Config {
            default_expires: 1800,
            ..cfg()
        },
        &[ANA],
    );
    let cases = [
        (Some("4294967295"), "3600"),
        (Some("99999999999"), "3600"),
        (Some("3601"), "3600"),
        (Some("120"), "120"),
        (None, "1800"),
    ];
    for (i, (asked, granted)) in cases.into_iter().enumerate() {
        let call = format!("c{i}");
        let mut req = Req::initial(ADHOC, ANA, &call).without("Expires");
        if let Some(e) = asked {
            req = req.with("Expires", e);
        }
        // One user may hold 4 subscriptions (R7): end each before the next.
        let out = w.subscribe_as(&req, &call);
        assert_eq!(out.reply.code, 200);
        assert_eq!(
            header(&out.reply.headers, "Expires").as_deref(),
            Some(granted),
            "{asked:?}"
        );
        let n = only(out.notifies);
        assert_eq!(sub_state(&n), format!("active;expires={granted}"));
        let info = w.n.subscriptions_info(w.now, None);
        let s = info.iter().find(|s| s.call_id == call).unwrap();
        assert_eq!(s.expires_in.to_string(), granted);
        w.complete(&n, 200);
        let mut d = Dialog {
            req,
            local_tag: call.clone(),
        };
        assert_eq!(w.resubscribe(&mut d, "0").reply.code, 200);
    }
}

// -------------------------------------------------------------------- §4 subscription lifecycle

#[test]
fn r25_initial_notify_is_active_with_a_full_body_version_1() {
    let mut w = adhoc_with(cfg(), &[ANA, BOB]);
    w.update(ADHOC, alerting(CARL));
    let (d, n) = w.subscribed(ADHOC, ANA, "c1");
    assert_eq!(n.kind, NotifyKind::Full);
    assert_eq!(sub_state(&n), "active;expires=3600");
    assert_eq!(
        header(&n.headers, "Content-Type").as_deref(),
        Some("application/conference-info+xml")
    );
    let body = doc(&n);
    assert_eq!(body.state, "full");
    assert_eq!(body.version, 1);
    assert_eq!(
        users(&n),
        pairs(&[(ANA, "connected"), (BOB, "connected"), (CARL, "alerting")])
    );
    // R39: the dialog of the SUBSCRIBE, seen from the other side.
    assert_eq!(n.call_id, b"c1");
    assert_eq!(n.local_tag, d.local_tag.as_bytes());
    assert_eq!(n.remote_tag, d.req.from_tag.as_bytes());
    assert_eq!(n.local_uri, ADHOC.as_bytes());
    assert_eq!(n.remote_uri, ANA.as_bytes());
    assert_eq!(n.remote_target, d.req.contact.as_bytes());
    assert_eq!(n.route_set, b"<sip:proxy.example.net;lr>");
    // R41
    assert_eq!(header(&n.headers, "Event").as_deref(), Some("conference"));
    assert_eq!(
        header(&n.headers, "Contact").as_deref(),
        Some("<sip:imconf@127.0.0.1>")
    );
}

#[test]
fn r26_r54_participant_change_sends_a_partial_with_only_that_user() {
    let mut w = adhoc_with(cfg(), &[ANA, BOB]);
    let _d = w.settled_subscriber(ADHOC, ANA, "c1");
    let n = only(w.update(ADHOC, alerting(CARL)));
    assert_eq!(n.kind, NotifyKind::Partial);
    let body = doc(&n);
    assert_eq!(body.state, "partial");
    assert_eq!(body.users_state.as_deref(), Some("partial"));
    assert_eq!(body.version, 2);
    assert_eq!(users(&n), pairs(&[(CARL, "alerting")]));
    assert_eq!(body.users[0].state, "full");
    assert_eq!(body.users[0].endpoint_entity, CARL);
    assert!(sub_state(&n).starts_with("active;expires="));

    w.complete(&n, 200);
    w.advance(1000);
    let n = only(w.update(
        ADHOC,
        ParticipantUpdate {
            nick: Some(b"Carl C."),
            ..joined(CARL)
        },
    ));
    let body = doc(&n);
    assert_eq!(body.version, 3);
    assert_eq!(body.users.len(), 1);
    assert_eq!(body.users[0].entity, CARL);
    assert_eq!(body.users[0].status, "connected");
    assert_eq!(body.users[0].display_text.as_deref(), Some("Carl C."));

    // A nick change alone is a change too (R26).
    w.complete(&n, 200);
    w.advance(1000);
    let n = only(w.update(
        ADHOC,
        ParticipantUpdate {
            nick: Some(b"Carlito"),
            ..joined(CARL)
        },
    ));
    let body = doc(&n);
    assert_eq!(body.users.len(), 1);
    assert_eq!(body.users[0].display_text.as_deref(), Some("Carlito"));
}

#[test]
fn r27_refresh_sends_full_state_with_the_next_version() {
    let mut w = adhoc_with(cfg(), &[ANA, BOB]);
    let mut d = w.settled_subscriber(ADHOC, ANA, "c1");
    let n = only(w.join(ADHOC, CARL));
    assert_eq!(doc(&n).version, 2);
    w.complete(&n, 200);
    w.advance(10_000);
    d.req.contact = "<sip:moved@192.0.2.99:5070>".into();
    let out = w.resubscribe(&mut d, "1200");
    assert_eq!(out.reply.code, 200);
    assert_eq!(
        header(&out.reply.headers, "Expires").as_deref(),
        Some("1200")
    );
    let n = only(out.notifies);
    assert_eq!(n.kind, NotifyKind::Full);
    assert_eq!(sub_state(&n), "active;expires=1200");
    let body = doc(&n);
    assert_eq!((body.state.as_str(), body.version), ("full", 3));
    assert_eq!(
        users(&n),
        pairs(&[(ANA, "connected"), (BOB, "connected"), (CARL, "connected")])
    );
    // The remote target follows the new Contact.
    assert_eq!(n.remote_target, b"<sip:moved@192.0.2.99:5070>");
    assert_eq!(w.n.subscriptions_info(w.now, None)[0].expires_in, 1200);
}

#[test]
fn r28_unsubscribe_sends_terminated_timeout_with_full_state() {
    let mut w = adhoc_with(cfg(), &[ANA, BOB]);
    let mut d = w.settled_subscriber(ADHOC, ANA, "c1");
    let out = w.resubscribe(&mut d, "0");
    assert_eq!(out.reply.code, 200);
    assert_eq!(header(&out.reply.headers, "Expires").as_deref(), Some("0"));
    let n = only(out.notifies);
    assert_eq!(n.kind, NotifyKind::Terminated);
    assert_eq!(sub_state(&n), "terminated;reason=timeout");
    let body = doc(&n);
    assert_eq!((body.state.as_str(), body.version), ("full", 2));
    assert_eq!(users(&n), pairs(&[(ANA, "connected"), (BOB, "connected")]));
    assert_eq!(w.sub_count(), 0);
    // The record is gone: nothing more is sent and the dialog is unknown.
    assert!(w.complete(&n, 200).is_empty());
    assert!(w.join(ADHOC, CARL).is_empty());
    assert_eq!(w.resubscribe(&mut d, "600").reply.code, 481);
}

#[test]
fn r29_fetch_gets_one_terminated_notify_with_full_state() {
    let mut w = adhoc_with(cfg(), &[ANA, BOB]);
    let out = w.subscribe_as(&Req::initial(ADHOC, ANA, "c1").with("Expires", "0"), "t1");
    assert_eq!(out.reply.code, 200);
    assert_eq!(header(&out.reply.headers, "Expires").as_deref(), Some("0"));
    let n = only(out.notifies);
    assert_eq!(n.kind, NotifyKind::Terminated);
    assert_eq!(sub_state(&n), "terminated;reason=timeout");
    let body = doc(&n);
    assert_eq!((body.state.as_str(), body.version), ("full", 1));
    assert_eq!(users(&n), pairs(&[(ANA, "connected"), (BOB, "connected")]));
    assert_eq!(w.sub_count(), 0);
    assert!(w.complete(&n, 200).is_empty());
    assert!(w.join(ADHOC, CARL).is_empty());
    w.advance(5000);
    assert!(w.tick().is_empty());
}

#[test]
fn r30_expiry_sends_terminated_timeout_without_body() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let (_d, n) = w.subscribed(ADHOC, ANA, "c1" /* Expires 3600 */);
    w.complete(&n, 200);
    w.advance(3_600_000 - 1);
    assert!(w.tick().is_empty());
    assert_eq!(w.sub_count(), 1);
    w.advance(1);
    let n = only(w.tick());
    assert_eq!(n.kind, NotifyKind::Terminated);
    assert_eq!(sub_state(&n), "terminated;reason=timeout");
    assert!(n.body.is_empty());
    assert_eq!(header(&n.headers, "Content-Type"), None); // R43
    assert_eq!(w.sub_count(), 0);
    assert!(w.n.subscriptions_info(w.now, None).is_empty());
    w.advance(1000);
    assert!(w.tick().is_empty());
}

#[test]
fn r30_expiry_waits_for_the_notify_in_flight() {
    let mut w = adhoc_with(
        Config {
            min_expires: 1,
            ..cfg()
        },
        &[ANA],
    );
    let req = Req::initial(ADHOC, ANA, "c1").with("Expires", "2");
    let n = only(w.subscribe_as(&req, "t1").notifies);
    w.advance(5000);
    assert!(w.tick().is_empty(), "R32: the initial NOTIFY is still open");
    let t = only(w.complete(&n, 200));
    assert_eq!(sub_state(&t), "terminated;reason=timeout");
    assert_eq!(t.cseq, n.cseq + 1);
    assert_eq!(w.sub_count(), 0);
}

#[test]
fn r31_notify_failures_remove_the_subscription() {
    for code in [481u16, 408, 500, 403] {
        let mut w = adhoc_with(cfg(), &[ANA]);
        let (mut d, n) = w.subscribed(ADHOC, ANA, "c1");
        assert!(w.complete(&n, code).is_empty());
        assert_eq!(w.sub_count(), 0, "{code}");
        assert_eq!(w.n.stats.notify_failed, 1);
        w.advance(2000);
        assert!(
            w.join(ADHOC, BOB).is_empty(),
            "{code}: nothing more is sent"
        );
        assert!(w.tick().is_empty());
        assert_eq!(w.resubscribe(&mut d, "600").reply.code, 481);
    }
}

#[test]
fn r31_a_2xx_keeps_the_subscription() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let (_d, n) = w.subscribed(ADHOC, ANA, "c1");
    assert!(w.complete(&n, 200).is_empty());
    assert_eq!(w.sub_count(), 1);
    assert_eq!(w.n.stats.notify_ok, 1);
    w.advance(1000);
    assert_eq!(only(w.join(ADHOC, BOB)).kind, NotifyKind::Partial);
}

#[test]
fn r31_a_repeated_or_stale_completion_is_ignored() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let (_d, n) = w.subscribed(ADHOC, ANA, "c1");
    w.complete(&n, 200);
    w.advance(1000);
    let p = only(w.join(ADHOC, BOB));
    // The old token's final response again: the partial in flight is not taken as answered...
    assert!(w.complete(&n, 481).is_empty());
    assert_eq!(w.sub_count(), 1);
    assert!(w.n.subscriptions_info(w.now, None)[0].notify_in_flight);
    // ...and its own response still counts.
    assert!(w.complete(&p, 200).is_empty());
    assert!(!w.n.subscriptions_info(w.now, None)[0].notify_in_flight);
}

#[test]
fn r32_changes_during_a_notify_in_flight_wait_and_coalesce() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let (_d, n) = w.subscribed(ADHOC, ANA, "c1");
    w.advance(1500);
    assert!(w.update(ADHOC, alerting(BOB)).is_empty());
    assert!(w.join(ADHOC, BOB).is_empty());
    assert!(w.join(ADHOC, CARL).is_empty());
    assert!(w.tick().is_empty());
    assert!(w.n.stats.coalesced >= 2);
    let p = only(w.complete(&n, 200));
    assert_eq!(p.kind, NotifyKind::Partial);
    assert_eq!(p.cseq, n.cseq + 1);
    let body = doc(&p);
    assert_eq!(body.version, 2);
    // R62: the latest status of each user wins.
    assert_eq!(users(&p), pairs(&[(BOB, "connected"), (CARL, "connected")]));
    assert!(w.complete(&p, 200).is_empty());
    w.advance(5000);
    assert!(w.tick().is_empty());
}

#[test]
fn r33_versions_are_gapless_across_full_and_partial_documents() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let (mut d, n) = w.subscribed(ADHOC, ANA, "c1");
    let mut versions = vec![doc(&n).version];
    w.complete(&n, 200);
    for step in 0..6 {
        w.advance(1000);
        let n = if step % 3 == 2 {
            only(w.resubscribe(&mut d, "3600").notifies)
        } else {
            let who = format!("sip:u{step}@example.net");
            only(w.join(ADHOC, &who))
        };
        versions.push(doc(&n).version);
        w.complete(&n, 200);
    }
    w.advance(1000);
    versions.push(doc(&only(w.resubscribe(&mut d, "0").notifies)).version);
    assert_eq!(versions, (1..=8).collect::<Vec<u32>>());
}

#[test]
fn r34_event_id_is_echoed_and_matched_on_refresh() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let req = Req::initial(ADHOC, ANA, "c1").with("Event", "conference;id=abc");
    let out = w.subscribe_as(&req, "t1");
    let n = only(out.notifies);
    assert_eq!(
        header(&n.headers, "Event").as_deref(),
        Some("conference;id=abc")
    );
    w.complete(&n, 200);
    w.advance(1000);
    let p = only(w.join(ADHOC, BOB));
    assert_eq!(
        header(&p.headers, "Event").as_deref(),
        Some("conference;id=abc")
    );
    w.complete(&p, 200);
    let mut d = Dialog {
        req,
        local_tag: "t1".into(),
    };
    // Another id (or none) in the same dialog is another subscription: unknown.
    d.req = d.req.with("Event", "conference;id=xyz");
    assert_eq!(w.resubscribe(&mut d, "600").reply.code, 481);
    d.req = d.req.with("Event", "conference");
    assert_eq!(w.resubscribe(&mut d, "600").reply.code, 481);
    d.req = d.req.with("Event", "conference;id=abc");
    let out = w.resubscribe(&mut d, "600");
    assert_eq!(out.reply.code, 200);
    let f = only(out.notifies);
    assert_eq!(
        header(&f.headers, "Event").as_deref(),
        Some("conference;id=abc")
    );
}

#[test]
fn r35_two_subscriptions_of_one_user_are_independent() {
    let mut w = adhoc_with(cfg(), &[ANA, BOB]);
    let mut phone = w.settled_subscriber(ADHOC, ANA, "phone");
    let (mut tablet, n) = w.subscribed(ADHOC, ANA, "tablet");
    assert_eq!(doc(&n).version, 1);
    // The phone refreshes: only its version moves.
    let f = only(w.resubscribe(&mut phone, "600").notifies);
    assert_eq!((f.call_id.as_slice(), doc(&f).version), (&b"phone"[..], 2));
    w.complete(&f, 200);
    w.complete(&n, 200);
    w.advance(1000);
    let mut out = w.join(ADHOC, CARL);
    out.sort_by(|a, b| a.call_id.cmp(&b.call_id));
    assert_eq!(out.len(), 2);
    assert_eq!(
        (out[0].call_id.as_slice(), doc(&out[0]).version),
        (&b"phone"[..], 3)
    );
    assert_eq!(
        (out[1].call_id.as_slice(), doc(&out[1]).version),
        (&b"tablet"[..], 2)
    );
    // Each has its own expiry.
    let info = w.n.subscriptions_info(w.now, None);
    let exp = |c: &str| info.iter().find(|s| s.call_id == c).unwrap().expires_in;
    assert_eq!(exp("phone"), 599);
    assert_eq!(exp("tablet"), 3599);
    // Ending one leaves the other.
    for n in &out {
        w.complete(n, 200);
    }
    assert_eq!(
        only(w.resubscribe(&mut tablet, "0").notifies).kind,
        NotifyKind::Terminated
    );
    assert_eq!(w.sub_count(), 1);
    assert_eq!(w.n.subscriptions_info(w.now, None)[0].call_id, "phone");
}

#[test]
fn r38_after_release_refresh_gets_481_and_new_subscribe_404() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let mut d = w.settled_subscriber(ADHOC, ANA, "c1");
    let t = only(w.n.close_session(&w.cfg, w.now, ADHOC.as_bytes()).unwrap());
    assert_eq!(sub_state(&t), "terminated;reason=noresource");
    assert_eq!(w.resubscribe(&mut d, "600").reply.code, 481);
    assert_eq!(
        w.subscribe_as(&Req::initial(ADHOC, ANA, "c2"), "t2")
            .reply
            .code,
        404
    );
}

#[test]
fn r38_refresh_while_the_termination_waits_gets_481() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let (mut d, n) = w.subscribed(ADHOC, ANA, "c1");
    assert!(w
        .n
        .close_session(&w.cfg, w.now, ADHOC.as_bytes())
        .unwrap()
        .is_empty());
    assert_eq!(w.resubscribe(&mut d, "600").reply.code, 481);
    let t = only(w.complete(&n, 200));
    assert_eq!(sub_state(&t), "terminated;reason=noresource");
}

// ------------------------------------------------------------------------- §5 NOTIFY content

#[test]
fn r40_cseq_increases_by_one_per_notify() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let (mut d, n) = w.subscribed(ADHOC, ANA, "c1");
    let mut cseqs = vec![n.cseq];
    w.complete(&n, 200);
    w.advance(1000);
    let p = only(w.join(ADHOC, BOB));
    cseqs.push(p.cseq);
    w.complete(&p, 200);
    let f = only(w.resubscribe(&mut d, "600").notifies);
    cseqs.push(f.cseq);
    w.complete(&f, 200);
    let t = only(w.resubscribe(&mut d, "0").notifies);
    cseqs.push(t.cseq);
    let first = cseqs[0];
    assert_eq!(cseqs, (first..first + 4).collect::<Vec<u32>>());
}

#[test]
fn r42_active_expires_is_rounded_down_and_at_least_1() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let _d = w.settled_subscriber(ADHOC, ANA, "c1"); // expires at START + 3600 s
    w.now = START + 3_600_000 - 1500;
    let n = only(w.join(ADHOC, BOB));
    assert_eq!(sub_state(&n), "active;expires=1");
    w.complete(&n, 200);
    w.now = START + 3_600_000 - 200;
    let n = only(w.join(ADHOC, CARL));
    assert_eq!(sub_state(&n), "active;expires=1");
}

#[test]
fn r45_root_entity_is_session_uri_for_adhoc_and_group_uri_for_groups() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let (_, n) = w.subscribed(ADHOC, ANA, "c1");
    assert_eq!(doc(&n).entity, ADHOC);
    for kind in [
        SessionKind::PreDefined,
        SessionKind::Chat,
        SessionKind::RestrictedChat,
    ] {
        let mut w = World::new(cfg());
        w.open(GROUP_SESSION, kind, Some(GROUP));
        w.join(GROUP_SESSION, ANA);
        // Subscribed to the session identity, the root is still the group identity.
        let (_, n) = w.subscribed(GROUP_SESSION, ANA, "c1");
        assert_eq!(doc(&n).entity, GROUP, "{kind:?}");
        w.complete(&n, 200);
        w.advance(1000);
        assert_eq!(doc(&only(w.join(GROUP_SESSION, BOB))).entity, GROUP);
    }
}

#[test]
fn r55_leave_then_rejoin_of_a_seen_user_sends_nothing() {
    let mut w = adhoc_with(cfg(), &[ANA, BOB]);
    let (_d, n) = w.subscribed(ADHOC, ANA, "c1");
    w.complete(&n, 200);
    // Inside the interval (R61): both changes are held, and they cancel out.
    w.advance(100);
    assert!(w.leave(ADHOC, BOB).is_empty());
    assert!(w.join(ADHOC, BOB).is_empty());
    w.advance(2000);
    assert!(w.tick().is_empty());
    // While a NOTIFY is in flight (R32), the same.
    let p = only(w.join(ADHOC, CARL));
    assert!(w.leave(ADHOC, BOB).is_empty());
    assert!(w.join(ADHOC, BOB).is_empty());
    w.advance(2000);
    assert!(w.complete(&p, 200).is_empty());
    assert!(w.tick().is_empty());
}

#[test]
fn r55_repeating_the_current_state_sends_nothing() {
    let mut w = adhoc_with(cfg(), &[ANA, BOB]);
    let _d = w.settled_subscriber(ADHOC, ANA, "c1");
    assert!(w.join(ADHOC, BOB).is_empty());
    assert!(w.leave(ADHOC, "sip:stranger@example.net").is_empty());
    w.advance(2000);
    assert!(w.tick().is_empty());
}

#[test]
fn r55_nick_change_of_a_private_participant_sends_nothing() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let private = ParticipantUpdate {
        privacy: true,
        from_uri: Some(b"sip:anonymous@anonymous.invalid"),
        nick: Some(b"Secret Bob"),
        ..joined(BOB)
    };
    w.update(ADHOC, private);
    let _d = w.settled_subscriber(ADHOC, ANA, "c1");
    // The nick is never shown (R78), so changing it changes nothing a subscriber sees.
    let out = w.update(
        ADHOC,
        ParticipantUpdate {
            nick: Some(b"Secret Robert"),
            ..private
        },
    );
    assert!(
        out.is_empty(),
        "{:?}",
        out.iter().map(body_text).collect::<Vec<_>>()
    );
}

/// R55, R62: a nick that goes A -> B -> A while a NOTIFY is held is no change at all.
#[test]
fn r55_nick_changed_and_changed_back_sends_nothing() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let bob = |nick: &'static [u8]| ParticipantUpdate {
        nick: Some(nick),
        ..joined(BOB)
    };
    w.update(ADHOC, bob(b"Bob"));
    let (_d, n) = w.subscribed(ADHOC, ANA, "c1");
    w.update(ADHOC, bob(b"Robert"));
    w.update(ADHOC, bob(b"Bob"));
    w.advance(1000);
    let out = w.complete(&n, 200);
    assert!(
        out.is_empty(),
        "{:?}",
        out.iter().map(body_text).collect::<Vec<_>>()
    );
}

#[test]
fn r57_departure_is_reported_once_then_omitted() {
    let mut w = adhoc_with(cfg(), &[ANA, BOB]);
    let mut d = w.settled_subscriber(ADHOC, ANA, "c1");
    let p = only(w.leave(ADHOC, BOB));
    assert_eq!(users(&p), pairs(&[(BOB, "disconnected")]));
    assert_eq!(doc(&p).state, "partial");
    w.complete(&p, 200);
    w.advance(1000);
    // Not reported again, neither in a partial...
    let p = only(w.join(ADHOC, CARL));
    assert_eq!(users(&p), pairs(&[(CARL, "connected")]));
    w.complete(&p, 200);
    // ...nor in a later full document.
    let f = only(w.resubscribe(&mut d, "600").notifies);
    assert_eq!(users(&f), pairs(&[(ANA, "connected"), (CARL, "connected")]));
}

#[test]
fn r57_a_full_document_still_reports_an_untold_departure() {
    let mut w = adhoc_with(cfg(), &[ANA, BOB]);
    let mut d = w.settled_subscriber(ADHOC, ANA, "c1");
    let p = only(w.join(ADHOC, CARL));
    // Bob leaves while the partial is in flight; then Ana refreshes.
    assert!(w.leave(ADHOC, BOB).is_empty());
    w.complete(&p, 200);
    // (held by the interval)
    let f = only(w.resubscribe(&mut d, "600").notifies);
    assert_eq!(f.kind, NotifyKind::Full);
    assert_eq!(
        users(&f),
        pairs(&[
            (ANA, "connected"),
            (BOB, "disconnected"),
            (CARL, "connected")
        ])
    );
    w.complete(&f, 200);
    w.advance(2000);
    assert!(w.tick().is_empty(), "the departure was told once");
    let f = only(w.resubscribe(&mut d, "600").notifies);
    assert_eq!(users(&f), pairs(&[(ANA, "connected"), (CARL, "connected")]));
}

#[test]
fn r57_join_and_leave_between_notifies_is_never_shown() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let (mut d, n) = w.subscribed(ADHOC, ANA, "c1");
    w.complete(&n, 200);
    w.advance(100);
    assert!(w.join(ADHOC, BOB).is_empty());
    assert!(w.update(ADHOC, alerting(DORA)).is_empty());
    assert!(w.leave(ADHOC, BOB).is_empty());
    assert!(w.join(ADHOC, CARL).is_empty());
    assert!(w.leave(ADHOC, DORA).is_empty());
    w.advance(1000);
    let p = only(w.tick());
    assert_eq!(users(&p), pairs(&[(CARL, "connected")]));
    w.complete(&p, 200);
    let f = only(w.resubscribe(&mut d, "600").notifies);
    assert_eq!(users(&f), pairs(&[(ANA, "connected"), (CARL, "connected")]));
    // The same inside an initial NOTIFY's flight.
    let (_e, n) = w.subscribed(ADHOC, ANA, "c2");
    w.join(ADHOC, BOB);
    w.leave(ADHOC, BOB);
    w.advance(5000);
    assert!(w.complete(&n, 200).is_empty());
    assert!(w.tick().is_empty());
}

// ------------------------------------------------------------------------- §6 rate limiting

#[test]
fn r61_partial_is_held_until_the_interval_has_passed() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let (_d, n) = w.subscribed(ADHOC, ANA, "c1");
    let sent_at = w.now;
    w.complete(&n, 200);
    w.advance(100);
    assert!(w.join(ADHOC, BOB).is_empty());
    w.now = sent_at + 999;
    assert!(w.tick().is_empty());
    w.now = sent_at + 1000;
    let p = only(w.tick());
    assert_eq!(p.kind, NotifyKind::Partial);
    assert_eq!(users(&p), pairs(&[(BOB, "connected")]));
    w.complete(&p, 200);
    // The interval restarts at every NOTIFY.
    w.now = sent_at + 1500;
    assert!(w.join(ADHOC, CARL).is_empty());
    w.now = sent_at + 1999;
    assert!(w.tick().is_empty());
    w.now = sent_at + 2000;
    assert_eq!(users(&only(w.tick())), pairs(&[(CARL, "connected")]));
}

#[test]
fn r61_interval_is_per_subscription_and_configurable() {
    let mut w = adhoc_with(
        Config {
            min_notify_interval_ms: 5000,
            ..cfg()
        },
        &[ANA, BOB],
    );
    let (_a, na) = w.subscribed(ADHOC, ANA, "a");
    w.complete(&na, 200);
    w.advance(4000);
    let (_b, nb) = w.subscribed(ADHOC, BOB, "b");
    w.complete(&nb, 200);
    w.advance(1000); // Ana's interval is over, Bob's is not.
    let p = only(w.join(ADHOC, CARL));
    assert_eq!(p.call_id, b"a");
    w.advance(3999);
    assert!(w.tick().is_empty());
    w.advance(1);
    assert_eq!(only(w.tick()).call_id, b"b");
}

#[test]
fn r63_refresh_is_not_delayed_by_the_throttle_and_absorbs_pending_changes() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let (mut d, n) = w.subscribed(ADHOC, ANA, "c1");
    w.complete(&n, 200);
    w.advance(10);
    assert!(w.join(ADHOC, BOB).is_empty()); // held (R61)
    w.advance(10);
    let f = only(w.resubscribe(&mut d, "600").notifies);
    assert_eq!(f.kind, NotifyKind::Full);
    assert_eq!(doc(&f).version, 2);
    assert_eq!(users(&f), pairs(&[(ANA, "connected"), (BOB, "connected")]));
    w.complete(&f, 200);
    w.advance(5000);
    assert!(w.tick().is_empty(), "the pending partial was absorbed");
}

#[test]
fn r65_too_many_pending_changes_give_a_full_document() {
    let mut w = adhoc_with(
        Config {
            max_pending_changes: 2,
            ..cfg()
        },
        &[ANA, BOB],
    );
    let (_d, n) = w.subscribed(ADHOC, ANA, "c1");
    w.complete(&n, 200);
    w.advance(10);
    w.leave(ADHOC, BOB);
    w.join(ADHOC, CARL);
    w.join(ADHOC, DORA);
    w.advance(1000);
    let f = only(w.tick());
    assert_eq!(f.kind, NotifyKind::Full);
    let body = doc(&f);
    assert_eq!((body.state.as_str(), body.version), ("full", 2));
    // A full document replaces the subscriber's list: it holds everyone present (Ana did not
    // change) and still reports the departure (R57).
    assert_eq!(
        users(&f),
        pairs(&[
            (ANA, "connected"),
            (BOB, "disconnected"),
            (CARL, "connected"),
            (DORA, "connected"),
        ])
    );
}

#[test]
fn r65_changes_up_to_the_limit_stay_partial() {
    let mut w = adhoc_with(
        Config {
            max_pending_changes: 2,
            ..cfg()
        },
        &[ANA],
    );
    let (_d, n) = w.subscribed(ADHOC, ANA, "c1");
    w.complete(&n, 200);
    w.advance(10);
    w.join(ADHOC, CARL);
    w.join(ADHOC, DORA);
    w.advance(1000);
    let p = only(w.tick());
    assert_eq!(p.kind, NotifyKind::Partial);
    assert_eq!(
        users(&p),
        pairs(&[(CARL, "connected"), (DORA, "connected")])
    );
}

#[test]
fn r64_unsubscribe_discards_pending_partial_changes() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let (mut d, n) = w.subscribed(ADHOC, ANA, "c1");
    w.complete(&n, 200);
    w.advance(10);
    w.join(ADHOC, BOB); // held
    let t = only(w.resubscribe(&mut d, "0").notifies);
    assert_eq!(t.kind, NotifyKind::Terminated);
    w.advance(5000);
    assert!(w.tick().is_empty());
}

// --------------------------------------------------------------------------- §7 termination

#[test]
fn r67_release_terminates_every_subscription_with_noresource() {
    let mut w = adhoc_with(cfg(), &[ANA, BOB]);
    let _a = w.settled_subscriber(ADHOC, ANA, "a");
    let _b = w.settled_subscriber(ADHOC, BOB, "b");
    let (_c, in_flight) = w.subscribed(ADHOC, BOB, "c");
    let mut out = w.n.close_session(&w.cfg, w.now, ADHOC.as_bytes()).unwrap();
    out.sort_by(|x, y| x.call_id.cmp(&y.call_id));
    assert_eq!(out.len(), 2);
    for n in &out {
        assert_eq!(n.kind, NotifyKind::Terminated);
        assert_eq!(sub_state(n), "terminated;reason=noresource");
        assert!(n.body.is_empty()); // R69
        assert_eq!(header(&n.headers, "Content-Type"), None);
    }
    assert_eq!(out[0].call_id, b"a");
    assert_eq!(out[1].call_id, b"b");
    // The one with a NOTIFY in flight gets its termination once that completes (R64).
    let t = only(w.complete(&in_flight, 200));
    assert_eq!(t.call_id, b"c");
    assert_eq!(sub_state(&t), "terminated;reason=noresource");
    assert!(t.body.is_empty());
    assert_eq!(w.sub_count(), 0);
    assert!(w.n.sessions_info().is_empty());
    // R69: late responses are ignored.
    for n in out.iter().chain([&t]) {
        assert!(w.complete(n, 481).is_empty());
    }
}

#[test]
fn r68_leaver_own_subscriptions_end_with_noresource() {
    let mut w = adhoc_with(cfg(), &[ANA, BOB]);
    let _a = w.settled_subscriber(ADHOC, ANA, "ana");
    let _b1 = w.settled_subscriber(ADHOC, BOB, "bob-phone");
    let _b2 = w.settled_subscriber(ADHOC, BOB, "bob-tablet");
    let mut out = w.leave(ADHOC, BOB);
    out.sort_by(|x, y| x.call_id.cmp(&y.call_id));
    assert_eq!(out.len(), 3);
    assert_eq!(out[0].call_id, b"ana");
    assert_eq!(out[0].kind, NotifyKind::Partial);
    assert_eq!(users(&out[0]), pairs(&[(BOB, "disconnected")]));
    for n in &out[1..] {
        assert_eq!(n.kind, NotifyKind::Terminated);
        assert_eq!(sub_state(n), "terminated;reason=noresource");
        assert!(n.body.is_empty());
    }
    assert_eq!(w.sub_count(), 1);
}

#[test]
fn r68_without_terminate_on_leave_the_leaver_hears_of_itself() {
    let mut w = adhoc_with(
        Config {
            terminate_on_leave: false,
            ..cfg()
        },
        &[ANA, BOB],
    );
    let _b = w.settled_subscriber(ADHOC, BOB, "bob");
    let n = only(w.leave(ADHOC, BOB));
    assert_eq!(n.kind, NotifyKind::Partial);
    assert_eq!(users(&n), pairs(&[(BOB, "disconnected")]));
    assert_eq!(w.sub_count(), 1);
}

// ------------------------------------------------------------------------------ §8 privacy

/// The entity under which the initial full document of a fresh subscriber lists each user.
fn entities_seen_by_ana(w: &mut World, call: &str) -> Vec<(String, String)> {
    let (_, n) = w.subscribed(ADHOC, ANA, call);
    let v = users(&n);
    w.complete(&n, 200);
    v
}

#[test]
fn r73_originator_without_privacy_is_shown_by_its_aoia_and_nick() {
    let mut w = World::new(cfg());
    w.open(ADHOC, SessionKind::AdHoc, None);
    w.update(
        ADHOC,
        ParticipantUpdate {
            role: Role::Originator,
            from_uri: Some(b"sip:ana-from@example.net"),
            nick: Some(b"Ana"),
            ..joined(ANA)
        },
    );
    let (_, n) = w.subscribed(ADHOC, ANA, "c1");
    let d = doc(&n);
    assert_eq!(d.users.len(), 1);
    assert_eq!(d.users[0].entity, ANA);
    assert_eq!(d.users[0].endpoint_entity, ANA); // R50
    assert_eq!(d.users[0].display_text.as_deref(), Some("Ana"));
}

#[test]
fn r74_originator_with_privacy_is_shown_by_its_from_uri() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    w.update(
        ADHOC,
        ParticipantUpdate {
            role: Role::Originator,
            privacy: true,
            from_uri: Some(b"sip:anonymous@anonymous.invalid"),
            nick: Some(b"Bob"),
            ..joined(BOB)
        },
    );
    let (_, n) = w.subscribed(ADHOC, ANA, "c1");
    let d = doc(&n);
    let bob = d
        .users
        .iter()
        .find(|u| u.entity == "sip:anonymous@anonymous.invalid")
        .expect("Bob under his From URI");
    assert_eq!(bob.endpoint_entity, bob.entity); // R78
    assert_eq!(bob.display_text, None); // R78
}

#[test]
fn r74_clashing_from_uris_are_disambiguated() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    for aoia in [BOB, CARL, DORA] {
        w.update(
            ADHOC,
            ParticipantUpdate {
                privacy: true,
                from_uri: Some(b"sip:anonymous@anonymous.invalid"),
                ..joined(aoia)
            },
        );
    }
    let v = entities_seen_by_ana(&mut w, "c1"); // parse() already checks uniqueness
    let entities: Vec<&str> = v.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(v.len(), 4);
    assert!(entities.contains(&"sip:anonymous@anonymous.invalid"));
    let generated = entities
        .iter()
        .filter(|e| e.starts_with("sip:anonymous") && e.ends_with("@anonymous.invalid"))
        .count();
    assert_eq!(generated, 3);
}

#[test]
fn r75_invited_participant_is_shown_by_its_listed_uri() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    w.update(
        ADHOC,
        ParticipantUpdate {
            listed_uri: Some(b"tel:+15550102"),
            nick: Some(b"Raj"),
            ..alerting("sip:+15550102@ims.example.net")
        },
    );
    let v = entities_seen_by_ana(&mut w, "c1");
    assert_eq!(
        v,
        pairs(&[(ANA, "connected"), ("tel:+15550102", "alerting")])
    );
    // Later updates keep that entity.
    w.advance(1000);
    let n = only(w.update(
        ADHOC,
        ParticipantUpdate {
            status: EndpointStatus::Connected,
            listed_uri: Some(b"tel:+15550102"),
            ..alerting("sip:+15550102@ims.example.net")
        },
    ));
    assert_eq!(users(&n), pairs(&[("tel:+15550102", "connected")]));
    assert_eq!(doc(&n).users[0].display_text.as_deref(), Some("Raj"));
}

#[test]
fn r76_invited_with_privacy_gets_unique_stable_anonymous_entities() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let invite = |aoia: &'static str| ParticipantUpdate {
        privacy: true,
        listed_uri: Some(aoia.as_bytes()),
        nick: Some(b"Hidden"),
        ..alerting(aoia)
    };
    w.update(ADHOC, invite(BOB));
    w.update(ADHOC, invite(CARL));
    let (mut d, n) = w.subscribed(ADHOC, ANA, "c1");
    let first = users(&n);
    assert_eq!(
        first,
        pairs(&[
            (ANA, "connected"),
            ("sip:anonymous1@anonymous.invalid", "alerting"),
            ("sip:anonymous2@anonymous.invalid", "alerting"),
        ])
    );
    assert!(!body_text(&n).contains("Hidden"));
    w.complete(&n, 200);
    // Bob leaves and is invited again: same anonymous entity, and Dora gets a fresh one.
    w.advance(1000);
    let p = only(w.update(
        ADHOC,
        ParticipantUpdate {
            status: EndpointStatus::Disconnected,
            ..invite(BOB)
        },
    ));
    w.complete(&p, 200);
    w.update(ADHOC, invite(BOB));
    w.update(ADHOC, invite(DORA));
    let f = only(w.resubscribe(&mut d, "600").notifies);
    let bob_now = users(&f);
    assert_eq!(
        bob_now,
        pairs(&[
            (ANA, "connected"),
            ("sip:anonymous1@anonymous.invalid", "alerting"),
            ("sip:anonymous2@anonymous.invalid", "alerting"),
            ("sip:anonymous3@anonymous.invalid", "alerting"),
        ])
    );
    // Which one is Bob: the departure partial named him.
    assert_eq!(
        users(&p),
        pairs(&[("sip:anonymous1@anonymous.invalid", "disconnected")])
    );
}

#[test]
fn r76_generated_names_skip_a_from_uri_already_in_use() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    w.update(
        ADHOC,
        ParticipantUpdate {
            privacy: true,
            from_uri: Some(b"sip:anonymous1@anonymous.invalid"),
            ..joined(BOB)
        },
    );
    w.update(
        ADHOC,
        ParticipantUpdate {
            privacy: true,
            ..alerting(CARL)
        },
    );
    let v = entities_seen_by_ana(&mut w, "c1");
    assert_eq!(
        v,
        pairs(&[
            (ANA, "connected"),
            ("sip:anonymous1@anonymous.invalid", "connected"),
            ("sip:anonymous2@anonymous.invalid", "alerting"),
        ])
    );
}

#[test]
fn r77_a_user_joining_on_their_own_is_treated_like_the_originator() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    w.update(
        ADHOC,
        ParticipantUpdate {
            listed_uri: Some(b"sip:listed-bob@example.net"),
            ..joined(BOB)
        },
    );
    w.update(
        ADHOC,
        ParticipantUpdate {
            privacy: true,
            from_uri: Some(b"sip:carl-hidden@anonymous.invalid"),
            ..joined(CARL)
        },
    );
    let v = entities_seen_by_ana(&mut w, "c1");
    assert_eq!(
        v,
        pairs(&[
            (ANA, "connected"),
            (BOB, "connected"),
            ("sip:carl-hidden@anonymous.invalid", "connected"),
        ])
    );
}

/// Bob's real identity and nick, which no body may carry while he asks for privacy.
const BOB_NICK: &str = "Bobby Tables";

fn assert_private(n: &Notify) {
    let text = body_text(n);
    doc(n);
    assert!(!text.contains(BOB), "R78: Bob's AOIA in\n{text}");
    assert!(!text.contains(BOB_NICK), "R78: Bob's nick in\n{text}");
}

#[test]
fn r78_private_identity_and_nick_never_appear_in_any_body() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let bob = |status, role| ParticipantUpdate {
        status,
        role,
        privacy: true,
        listed_uri: Some(BOB.as_bytes()),
        from_uri: Some(b"sip:anonymous@anonymous.invalid"),
        nick: Some(BOB_NICK.as_bytes()),
        aoia: BOB.as_bytes(),
        disconnection_method: None,
        disconnection_reason: None,
        contact: None,
    };
    let (mut d, n) = w.subscribed(ADHOC, ANA, "c1");
    let mut sent = vec![n.clone()];
    w.complete(&n, 200);
    let steps = [
        (EndpointStatus::Alerting, Role::Invited),
        (EndpointStatus::Connected, Role::Invited),
        (EndpointStatus::Disconnected, Role::Invited),
        (EndpointStatus::Connected, Role::Joined),
        (EndpointStatus::Disconnected, Role::Joined),
    ];
    for (status, role) in steps {
        w.advance(1000);
        for n in w.update(ADHOC, bob(status, role)) {
            w.complete(&n, 200);
            sent.push(n);
        }
        w.advance(1000);
        let f = only(w.resubscribe(&mut d, "600").notifies);
        w.complete(&f, 200);
        sent.push(f);
    }
    // A fetch and an unsubscribe carry full state too.
    w.update(ADHOC, bob(EndpointStatus::Connected, Role::Joined));
    sent.extend(
        w.subscribe_as(
            &Req::initial(ADHOC, ANA, "fetch").with("Expires", "0"),
            "tf",
        )
        .notifies,
    );
    w.advance(1000);
    sent.extend(w.tick());
    sent.extend(w.resubscribe(&mut d, "0").notifies);
    assert!(sent.len() >= 12, "{}", sent.len());
    assert!(sent.iter().any(|n| users(n).len() == 2));
    for n in &sent {
        assert_private(n);
    }
}

#[test]
fn r78_rejoining_with_privacy_after_a_public_appearance_hides_the_identity() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let public = ParticipantUpdate {
        nick: Some(b"Bob"),
        ..joined(BOB)
    };
    w.update(ADHOC, public);
    let (mut d, n) = w.subscribed(ADHOC, ANA, "c1");
    assert!(users(&n).contains(&(BOB.to_string(), "connected".to_string())));
    w.complete(&n, 200);
    w.advance(1000);
    let p = only(w.leave(ADHOC, BOB));
    w.complete(&p, 200);
    w.advance(1000);
    // Bob comes back asking for privacy this time (R79: decided per INVITE).
    let private = ParticipantUpdate {
        privacy: true,
        from_uri: Some(b"sip:anonymous@anonymous.invalid"),
        nick: Some(BOB_NICK.as_bytes()),
        ..joined(BOB)
    };
    let p = only(w.update(ADHOC, private));
    assert_private(&p);
    assert_eq!(
        users(&p),
        pairs(&[("sip:anonymous@anonymous.invalid", "connected")])
    );
    w.complete(&p, 200);
    let f = only(w.resubscribe(&mut d, "600").notifies);
    assert_private(&f);
    assert_eq!(
        users(&f),
        pairs(&[
            (ANA, "connected"),
            ("sip:anonymous@anonymous.invalid", "connected")
        ])
    );
}

#[test]
fn r78_invitee_that_answers_with_privacy_is_hidden_from_then_on() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let _d = w.settled_subscriber(ADHOC, ANA, "c1");
    // 180 without privacy: listed under the URI-list entry (R75).
    let n = only(w.update(
        ADHOC,
        ParticipantUpdate {
            listed_uri: Some(BOB.as_bytes()),
            nick: Some(b"Bob"),
            ..alerting(BOB)
        },
    ));
    assert_eq!(users(&n), pairs(&[(BOB, "alerting")]));
    w.complete(&n, 200);
    w.advance(1000);
    // Its 200 asks for privacy (R79): from now on it is anonymous (R76), and the listed entity
    // it was alerting under is reported gone, so no subscriber keeps it (R57, R90).
    let n = only(w.update(
        ADHOC,
        ParticipantUpdate {
            status: EndpointStatus::Connected,
            privacy: true,
            listed_uri: Some(BOB.as_bytes()),
            nick: Some(BOB_NICK.as_bytes()),
            ..alerting(BOB)
        },
    ));
    let v = users(&n);
    assert!(!body_text(&n).contains(BOB_NICK));
    assert_eq!(
        v,
        pairs(&[
            (BOB, "disconnected"),
            ("sip:anonymous1@anonymous.invalid", "connected")
        ])
    );
}

// ---------------------------------------------------------------------------- inspection

#[test]
fn sessions_and_subscriptions_info_describe_the_state() {
    let mut w = adhoc_with(cfg(), &[ANA, BOB]);
    w.open(GROUP_SESSION, SessionKind::Chat, Some(GROUP));
    w.leave(ADHOC, BOB);
    let (_, n) = w.subscribed(ADHOC, ANA, "c1");
    let mut s = w.n.sessions_info();
    s.sort_by(|a, b| a.uri.cmp(&b.uri));
    assert_eq!(s.len(), 2);
    assert_eq!(
        (s[0].uri.as_str(), s[0].participants, s[0].subscriptions),
        (ADHOC, 1, 1)
    );
    assert_eq!(s[1].group.as_deref(), Some(GROUP));
    let info = w.n.subscriptions_info(w.now + 1000, None);
    assert_eq!(info.len(), 1);
    let i = &info[0];
    assert_eq!((i.session.as_str(), i.subscriber.as_str()), (ADHOC, ANA));
    assert_eq!((i.expires_in, i.version, i.notifies_sent), (3599, 1, 1));
    assert!(i.notify_in_flight);
    w.complete(&n, 200);
    assert!(!w.n.subscriptions_info(w.now, None)[0].notify_in_flight);
    assert!(w
        .n
        .subscriptions_info(w.now, Some(b"sip:grp-session-7@im.example.net"))
        .is_empty());
}
