//! R89-R92: the RCS interop profile (`rcs`, R94; `rcs_compat`), R50's `endpoint_entity=contact`, R52's
//! switches and R92's CPM feature tag, driven through the core `Notifier`.
//!
//! The centre piece is `RcsClient`, a model of what the RCS client (rcsjta) does with a NOTIFY,
//! written from R90 (docs/conformance.md) line by line. A scripted session and a property test hand it every
//! NOTIFY body and compare its participant list with the truth: the status a real RCS client
//! should show for each user.
use allocator_api2::alloc::Global;
use imconf::core::conference_info::{self, DisconnectionMethod, EndpointStatus, ParsedDocument};
use imconf::core::config::Config;
use imconf::core::notifier::{Notifier, Notify, NotifyKind, SubscribeRequest};
use imconf::core::profile::{DefaultProfile, Profile};
use imconf::core::session::{ParticipantUpdate, Role, SessionError, SessionKind};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// The `rcs` output profile by default (what `rcs_compat=1` means, R94).
const RCS: DefaultProfile = DefaultProfile::Fixed(Profile::Rcs);

const SESSION: &str = "sip:chat-1@im.example.net";
const GROUP: &str = "sip:friends@im.example.net";
/// The RCS client under test: the session's originator, and the one subscriber.
const ME: &str = "sip:+15550100@example.net;user=phone";
const BOB: &str = "tel:+15550101";
const CAROL: &str = "sip:+15550102@example.net;user=phone";
const DAN: &str = "sip:+15550103@example.net;user=phone";
const ERIN: &str = "tel:+15550104";
const FRANK: &str = "sip:+15550105@example.net;user=phone";
const GINA: &str = "tel:+15550106";
const HANK: &str = "sip:+15550107@example.net;user=phone";
const START: u64 = 7_000_000;
/// The Accept-Contact value of a CPM (Universal Profile) client (R92).
const CPM_ICSI: &str = "*;+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.session\"";

// --------------------------------------------------------------------- the RCS client (R90)

/// The statuses the RCS client shows for a participant: the ones R90 says it maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shown {
    Connected,
    /// A plain `disconnected`: still treated as a recipient of group messages.
    Disconnected,
    Pending,
    DialingIn,
    /// Invited and being called.
    DialingOut,
    Departed,
    Booted,
    Failed,
    Busy,
    Declined,
}

/// Why the client threw while reading a NOTIFY, which drops the whole NOTIFY (R90).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Throw {
    /// An endpoint status it does not map (`alerting`, `on-hold`, `disconnecting`, wrong case).
    UnknownStatus(String),
    /// A user without a status (R58's `<user state="deleted"/>` is one).
    NoStatus(String),
    /// A `disconnection-method` it does not map. R90 does not say; assumed to throw like an
    /// unknown status (the stricter reading).
    UnknownMethod(String),
    /// A `sip:` entity without `@`: the phone number extraction throws.
    SipWithoutAt(String),
}

/// R90 (docs/conformance.md), one comment per statement of the rule.
#[derive(Debug, Default)]
struct RcsClient {
    /// Phone number -> what the client shows. Nothing is ever removed.
    list: BTreeMap<String, Shown>,
    maximum_user_count: Option<u32>,
}

impl RcsClient {
    /// Reads one NOTIFY body. Err: the client threw, and nothing of the NOTIFY was applied.
    fn receive(&mut self, doc: &ParsedDocument) -> Result<(), Throw> {
        // R90 "it does not read `state`: every document, full or partial, is merged into its
        // participant list": `doc.state`, `users_state` and each user's `state` are not looked at.
        let mut merged = Vec::new();
        for u in &doc.users {
            // R90 "it keys users by the phone number in `entity`; an entity that is not a phone
            // number (including anonymous ones) is invisible to it, and a `sip:` URI without `@`
            // makes the number extraction throw (NOTIFY dropped)"
            let Some(number) = phone_number(&u.entity)? else {
                continue;
            };
            let shown = match u.status.as_str() {
                // R90 "a user without a status makes it throw and drop the whole NOTIFY"
                "" => return Err(Throw::NoStatus(u.entity.clone())),
                // R90 "it maps each user's endpoint `status`: `connected`, `disconnected`,
                // `pending`, `dialing-in`, `dialing-out`"
                "connected" => Shown::Connected,
                "pending" => Shown::Pending,
                "dialing-in" => Shown::DialingIn,
                "dialing-out" => Shown::DialingOut,
                // R90 "`disconnected` with `disconnection-method` uses the method (`departed` ->
                // DEPARTED; `failed` with "603" in `disconnection-info/reason` -> DECLINED); a
                // plain `disconnected` user is still treated as a recipient of group messages";
                // R90 "and the disconnection methods `departed`, `booted`, `failed`, `busy`,
                // `declined`"
                "disconnected" => match u.disconnection_method.as_deref() {
                    None => Shown::Disconnected,
                    Some("departed") => Shown::Departed,
                    Some("booted") => Shown::Booted,
                    Some("failed")
                        if u.disconnection_reason
                            .as_deref()
                            .is_some_and(|r| r.contains("603")) =>
                    {
                        Shown::Declined
                    }
                    Some("failed") => Shown::Failed,
                    Some("busy") => Shown::Busy,
                    Some("declined") => Shown::Declined,
                    Some(other) => return Err(Throw::UnknownMethod(other.into())),
                },
                // R90 "Any other value (`alerting`, `on-hold`, `disconnecting`, wrong case) ...
                // makes it throw and drop the whole NOTIFY, losing every other change in it"
                other => return Err(Throw::UnknownStatus(other.into())),
            };
            merged.push((number, shown));
        }
        // R90 "it reads `maximum-user-count`; it ignores `user-count`"
        if let Some(max) = doc.maximum_user_count {
            self.maximum_user_count = Some(max);
        }
        // R90 "merged into its participant list, and it never removes a participant. A user
        // left out of a later full document stays in its list with its last status"
        self.list.extend(merged);
        Ok(())
    }
}

/// R90: the phone number in an entity (`tel:+N`, or `sip:+N@host`), None when there is none.
fn phone_number(entity: &str) -> Result<Option<String>, Throw> {
    let user = if let Some(rest) = entity.strip_prefix("tel:") {
        rest.split(';').next().unwrap_or_default()
    } else if let Some(rest) = entity
        .strip_prefix("sip:")
        .or_else(|| entity.strip_prefix("sips:"))
    {
        match rest.split_once('@') {
            Some((user, _)) => user,
            None => return Err(Throw::SipWithoutAt(entity.into())),
        }
    } else {
        return Ok(None);
    };
    let digits = user.strip_prefix('+').unwrap_or(user);
    let is_number = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    Ok(is_number.then(|| user.to_string()))
}

fn number(entity: &str) -> String {
    phone_number(entity)
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("{entity} has no phone number"))
}

// ------------------------------------------------------------------------------------- truth

/// R91: what a departure should look like to an RCS client.
fn departure(method: Option<DisconnectionMethod>, reason: Option<&str>) -> Shown {
    match method {
        None | Some(DisconnectionMethod::Departed) => Shown::Departed,
        Some(DisconnectionMethod::Booted) => Shown::Booted,
        Some(DisconnectionMethod::Busy) => Shown::Busy,
        Some(DisconnectionMethod::Failed) if reason.is_some_and(|r| r.starts_with("603")) => {
            Shown::Declined
        }
        Some(DisconnectionMethod::Failed) => Shown::Failed,
    }
}

/// The session as a real RCS client should show it: number -> (status, still in the session).
#[derive(Debug, Clone, Default)]
struct Truth {
    users: BTreeMap<String, (Shown, bool)>,
    max: Option<u32>,
}

impl Truth {
    fn apply(&mut self, u: &ParticipantUpdate<'_>) {
        let entity = std::str::from_utf8(u.aoia).unwrap();
        let key = number(entity);
        let present = self.users.get(&key).is_some_and(|&(_, p)| p);
        let next = match u.status {
            EndpointStatus::Connected => (Shown::Connected, true),
            // R91: an invitee being alerted is being called
            EndpointStatus::Alerting => (Shown::DialingOut, true),
            // the departure of someone not in the session changes nothing
            EndpointStatus::Disconnected if !present => return,
            EndpointStatus::Disconnected => {
                let reason = u
                    .disconnection_reason
                    .map(|r| std::str::from_utf8(r).unwrap());
                (departure(u.disconnection_method, reason), false)
            }
            // R59: listed (with report_dialing_out) as being called
            EndpointStatus::DialingOut => (Shown::DialingOut, true),
        };
        self.users.insert(key, next);
    }

    fn present(&self) -> u32 {
        self.users.values().filter(|&&(_, p)| p).count() as u32
    }

    /// Whether the client's list is the truth. A user who left may be missing, and only then:
    /// the client never heard of someone who joined and left between two NOTIFYs (R57).
    fn differs_from(&self, list: &BTreeMap<String, Shown>) -> Option<String> {
        for (n, &(want, present)) in &self.users {
            match list.get(n) {
                Some(&got) if got == want => {}
                None if !present => {}
                got => return Some(format!("{n}: client shows {got:?}, truth is {want:?}")),
            }
        }
        list.keys()
            .find(|n| !self.users.contains_key(*n))
            .map(|n| format!("{n}: shown but never in the session"))
    }
}

// ----------------------------------------------------------------------------------- harness

/// The client's subscription dialog.
#[derive(Debug, Clone)]
struct Dialog {
    call_id: String,
    local_tag: String,
    cseq: u32,
    live: bool,
}

/// One NOTIFY the client read.
#[derive(Debug)]
struct Read {
    kind: NotifyKind,
    xml: String,
    doc: ParsedDocument,
}

/// The notifier, one RCS client subscribed to SESSION, and the truth.
struct Harness {
    n: Notifier<Global>,
    cfg: Config,
    now: u64,
    client: RcsClient,
    truth: Truth,
    dialog: Option<Dialog>,
    next_call: u32,
    /// NOTIFYs sent and not answered yet, each with the truth of the moment it was built.
    open: Vec<(Notify, Truth)>,
    /// Every NOTIFY the client read, in order.
    read: Vec<Read>,
    /// NOTIFYs the client dropped (R90), with the body.
    dropped: Vec<(Throw, String)>,
    /// After a NOTIFY was read: how the client's list (or a count) differed from the truth.
    mismatches: Vec<String>,
}

impl Harness {
    /// A session of `kind` whose originator is ME, connected.
    fn new(cfg: Config, kind: SessionKind) -> Harness {
        let mut n = Notifier::new_in(11, Global);
        let group = kind.is_group().then_some(GROUP.as_bytes());
        n.open_session(SESSION.as_bytes(), kind, group).unwrap();
        let mut h = Harness {
            n,
            cfg,
            now: START,
            client: RcsClient::default(),
            truth: Truth::default(),
            dialog: None,
            next_call: 0,
            open: Vec::new(),
            read: Vec::new(),
            dropped: Vec::new(),
            mismatches: Vec::new(),
        };
        h.update(ParticipantUpdate {
            role: Role::Originator,
            ..connected(ME)
        });
        h
    }

    fn rcs(cfg: Config) -> Harness {
        Harness::new(
            Config {
                default_profile: RCS,
                ..cfg
            },
            SessionKind::PreDefined,
        )
    }

    /// Feeds a participant change and the truth.
    fn update(&mut self, u: ParticipantUpdate<'_>) {
        self.truth.apply(&u);
        let out = self
            .n
            .participant(&self.cfg, self.now, SESSION.as_bytes(), &u)
            .unwrap();
        self.sent(out);
    }

    fn set_max(&mut self, max: Option<u32>) {
        self.truth.max = max;
        self.n.set_max_user_count(SESSION.as_bytes(), max).unwrap();
    }

    fn sent(&mut self, notifies: Vec<Notify>) {
        for n in notifies {
            self.open.push((n, self.truth.clone()));
        }
    }

    fn request<'a>(
        &self,
        d: &'a Dialog,
        to_tag: &'a str,
        headers: &'a [(&'a [u8], &'a [u8])],
    ) -> SubscribeRequest<'a> {
        SubscribeRequest {
            ruri: SESSION.as_bytes(),
            call_id: d.call_id.as_bytes(),
            cseq: d.cseq,
            from_uri: ME.as_bytes(),
            from_tag: b"rcs-ft",
            to_uri: SESSION.as_bytes(),
            to_tag: to_tag.as_bytes(),
            contact: b"<sip:+15550100@192.0.2.100:5060>",
            record_route: b"",
            socket: b"",
            headers,
            profile: None,
        }
    }

    /// R89: the client subscribes to the IM Session Identity (a new dialog).
    fn subscribe(&mut self) {
        self.next_call += 1;
        let d = Dialog {
            call_id: format!("rcs-{}", self.next_call),
            local_tag: format!("lt-{}", self.next_call),
            cseq: 1,
            live: true,
        };
        let headers: [(&[u8], &[u8]); 5] = [
            (b"Event", b"conference"),
            (b"Accept", b"application/conference-info+xml"),
            (b"Accept-Contact", b"*;+g.oma.sip-im"),
            (
                b"P-Asserted-Identity",
                b"<sip:+15550100@example.net;user=phone>",
            ),
            (b"Expires", b"3600"),
        ];
        let out = self.n.subscribe(
            &self.cfg,
            self.now,
            &self.request(&d, "", &headers),
            d.local_tag.as_bytes(),
        );
        assert_eq!(out.reply.code, 200, "{:?}", out.reply);
        assert_eq!(out.notifies.len(), 1);
        self.dialog = Some(d);
        self.sent(out.notifies);
    }

    /// An initial SUBSCRIBE from ME with these Accept-Contact bodies; the response code.
    fn subscribe_with_accept_contact(&mut self, accept_contact: &[&str]) -> u16 {
        self.next_call += 1;
        let d = Dialog {
            call_id: format!("ac-{}", self.next_call),
            local_tag: format!("lt-ac-{}", self.next_call),
            cseq: 1,
            live: true,
        };
        let mut headers: Vec<(&[u8], &[u8])> = vec![
            (b"Event", b"conference"),
            (
                b"P-Asserted-Identity",
                b"<sip:+15550100@example.net;user=phone>",
            ),
        ];
        headers.extend(
            accept_contact
                .iter()
                .map(|v| (&b"Accept-Contact"[..], v.as_bytes())),
        );
        let out = self.n.subscribe(
            &self.cfg,
            self.now,
            &self.request(&d, "", &headers),
            d.local_tag.as_bytes(),
        );
        out.reply.code
    }

    /// R89: the client's own refresh (R27: a full document follows). A dead subscription
    /// gets 481, and the client subscribes again.
    fn refresh(&mut self) {
        let Some(mut d) = self.dialog.clone() else {
            return self.subscribe();
        };
        d.cseq += 1;
        let headers: [(&[u8], &[u8]); 2] = [(b"Event", b"conference"), (b"Expires", b"3600")];
        let out = self.n.subscribe(
            &self.cfg,
            self.now,
            &self.request(&d, &d.local_tag, &headers),
            d.local_tag.as_bytes(),
        );
        if let Some(id) = out.held {
            // R25: the caller releases the hold once the reply has left
            assert!(self.n.reply_sent(&self.cfg, self.now, id).is_empty());
        }
        match out.reply.code {
            200 => {
                self.dialog = Some(d);
                self.sent(out.notifies);
            }
            481 if !d.live => self.subscribe(),
            code => panic!("refresh got {code}"),
        }
    }

    /// The client answers the oldest open NOTIFY with `code`. `read`: whether it read the body
    /// first (a 2xx always does; a failure may be a NOTIFY that never arrived).
    fn answer(&mut self, code: u16, read: bool) {
        if self.open.is_empty() {
            return;
        }
        let (n, truth) = self.open.remove(0);
        if read || (200..300).contains(&code) {
            self.read(&n, &truth);
        }
        if !(200..300).contains(&code) {
            // R31: the notifier forgets the subscription
            if let Some(d) = &mut self.dialog {
                d.live = false;
            }
        }
        let out = self.n.notify_completed(&self.cfg, self.now, n.token, code);
        self.sent(out);
    }

    /// What the client does with a NOTIFY, checked against the truth of the moment it was built.
    fn read(&mut self, n: &Notify, truth: &Truth) {
        if n.kind == NotifyKind::Terminated {
            // R90: it stops refreshing; the list freezes
            if let Some(d) = &mut self.dialog {
                d.live = false;
            }
        }
        if n.body.is_empty() {
            return;
        }
        let xml = String::from_utf8_lossy(&n.body).into_owned();
        let doc =
            conference_info::parse(&n.body).unwrap_or_else(|e| panic!("strict reader: {e}\n{xml}"));
        if let Err(t) = self.client.receive(&doc) {
            self.dropped.push((t, xml.clone()));
        } else if let Some(d) = truth.differs_from(&self.client.list) {
            self.mismatches.push(format!("{d}\n{xml}"));
        }
        if self.cfg.default_profile == RCS {
            // R91: user-count is everyone present, maximum-user-count the session's
            if doc.user_count != Some(truth.present()) || doc.maximum_user_count != truth.max {
                self.mismatches.push(format!(
                    "counts {:?}/{:?}, truth {}/{:?}\n{xml}",
                    doc.user_count,
                    doc.maximum_user_count,
                    truth.present(),
                    truth.max
                ));
            }
        }
        self.read.push(Read {
            kind: n.kind,
            xml,
            doc,
        });
    }

    /// Answers everything with 200 and lets the rate limit pass until nothing more is sent;
    /// a client whose subscription is gone subscribes again first.
    fn settle(&mut self) {
        for _ in 0..200 {
            if self.dialog.as_ref().is_none_or(|d| !d.live) && self.open.is_empty() {
                self.subscribe();
            }
            if !self.open.is_empty() {
                self.answer(200, true);
                continue;
            }
            self.now += self.cfg.min_notify_interval_ms.max(1);
            let out = self.n.tick(&self.cfg, self.now);
            if out.is_empty() {
                return;
            }
            self.sent(out);
        }
        panic!("the notifier never went quiet");
    }

    fn last(&self) -> &Read {
        self.read.last().expect("a NOTIFY was read")
    }

    /// (entity, status, method, reason) of the users of the last NOTIFY read.
    fn last_users(&self) -> Vec<(String, String, Option<String>, Option<String>)> {
        self.last()
            .doc
            .users
            .iter()
            .map(|u| {
                (
                    u.entity.clone(),
                    u.status.clone(),
                    u.disconnection_method.clone(),
                    u.disconnection_reason.clone(),
                )
            })
            .collect()
    }

    fn show(&self, list: &[(&str, Shown)]) -> BTreeMap<String, Shown> {
        list.iter().map(|&(e, s)| (number(e), s)).collect()
    }
}

fn connected(aoia: &str) -> ParticipantUpdate<'_> {
    ParticipantUpdate::new(aoia.as_bytes(), EndpointStatus::Connected)
}

/// An invitee that answered 180 Ringing.
fn alerting(aoia: &str) -> ParticipantUpdate<'_> {
    ParticipantUpdate {
        status: EndpointStatus::Alerting,
        role: Role::Invited,
        ..connected(aoia)
    }
}

/// An invitee that answered 200.
fn accepted(aoia: &str) -> ParticipantUpdate<'_> {
    ParticipantUpdate {
        role: Role::Invited,
        ..connected(aoia)
    }
}

fn left<'a>(
    aoia: &'a str,
    method: Option<DisconnectionMethod>,
    reason: Option<&'a str>,
) -> ParticipantUpdate<'a> {
    ParticipantUpdate {
        status: EndpointStatus::Disconnected,
        disconnection_method: method,
        disconnection_reason: reason.map(str::as_bytes),
        ..connected(aoia)
    }
}

/// An invitee that declined (603), as the module feeds it (R91).
fn declined(aoia: &str) -> ParticipantUpdate<'_> {
    left(aoia, Some(DisconnectionMethod::Failed), Some("603 Decline"))
}

// ------------------------------------------------------------------- the scripted session

/// A group chat as an RCS client lives it: invitations ringing, joins, a decline, leaves, a
/// refresh and an overflow. Each NOTIFY is answered at once, so the client's list is checked
/// after every one of them (in `Harness::read`).
fn scripted_session(cfg: Config) -> Harness {
    let cfg = Config {
        min_notify_interval_ms: 0,
        max_pending_changes: 2,
        ..cfg
    };
    let mut h = Harness::new(cfg, SessionKind::PreDefined);
    h.set_max(Some(10));
    h.update(alerting(BOB));
    h.subscribe(); // full: ME connected, BOB ringing
    h.settle();
    h.update(alerting(CAROL));
    h.settle();
    h.update(accepted(BOB));
    h.settle();
    h.update(declined(CAROL));
    h.settle();
    h.update(connected(DAN));
    h.settle();
    h.update(left(DAN, None, None)); // BYE
    h.settle();
    h.update(alerting(ERIN));
    h.settle();
    h.update(left(
        ERIN,
        Some(DisconnectionMethod::Busy),
        Some("486 Busy Here"),
    ));
    h.settle();
    h.update(left(BOB, Some(DisconnectionMethod::Booted), None));
    h.settle();
    h.refresh(); // R27: full state
    h.settle();
    assert_eq!(h.last().kind, NotifyKind::Full, "the refresh's NOTIFY");
    // Overflow (R65): more than max_pending_changes while a NOTIFY is in flight.
    h.update(alerting(FRANK));
    assert_eq!(h.open.len(), 1, "FRANK's NOTIFY in flight");
    h.update(declined(FRANK));
    h.update(connected(GINA));
    h.update(connected(DAN)); // DAN comes back
    h.update(connected(HANK));
    h.update(left(HANK, None, None)); // in and out between two NOTIFYs
    h.settle();
    assert_eq!(h.last().kind, NotifyKind::Full, "R65: the overflow resync");
    h
}

#[test]
fn r90_r91_rcs_client_follows_the_whole_session_with_rcs_compat() {
    let h = scripted_session(Config {
        default_profile: RCS,
        ..Config::default()
    });
    assert!(h.dropped.is_empty(), "dropped NOTIFYs: {:#?}", h.dropped);
    assert!(h.mismatches.is_empty(), "{}", h.mismatches.join("\n\n"));
    assert!(h.read.len() >= 12, "{} NOTIFYs read", h.read.len());
    // What the client shows at the end, spelt out.
    let want = h.show(&[
        (ME, Shown::Connected),
        (BOB, Shown::Booted),
        (CAROL, Shown::Declined),
        (DAN, Shown::Connected),
        (ERIN, Shown::Busy),
        (FRANK, Shown::Declined),
        (GINA, Shown::Connected),
        // R91: full documents list everyone who left, so the client learns of HANK too
        (HANK, Shown::Departed),
    ]);
    assert_eq!(h.client.list, want);
    assert_eq!(h.client.maximum_user_count, Some(10));
}

#[test]
fn r90_without_rcs_compat_alerting_makes_the_rcs_client_drop_notifies() {
    // Why the profile exists: the default (OMA) output reports ringing invitees as
    // `alerting`, and the RCS client throws away every NOTIFY that has one, with all the other
    // changes in it. Departures also come without a method, so they show as plain
    // `disconnected` (still recipients of group messages) instead of declined, departed ...
    let h = scripted_session(Config::default());
    assert!(!h.dropped.is_empty(), "expected dropped NOTIFYs");
    for (t, xml) in &h.dropped {
        assert_eq!(t, &Throw::UnknownStatus("alerting".into()), "{xml}");
    }
    // The initial NOTIFY (ME connected, BOB alerting) is the first one lost.
    assert!(h.dropped[0].1.contains("state=\"full\" version=\"1\""));
    assert!(!h.mismatches.is_empty());
    // CAROL declined, but the client can only show a plain `disconnected`
    assert_eq!(
        h.client.list.get(&number(CAROL)),
        Some(&Shown::Disconnected)
    );
}

// ------------------------------------------------------------------------------ rule tests

fn contact_cfg() -> Config {
    Config {
        endpoint_entity_contact: true,
        ..Config::default()
    }
}

fn endpoint_of(h: &Harness, entity: &str) -> String {
    let u = h.last().doc.users.iter().find(|u| u.entity == entity);
    u.unwrap_or_else(|| panic!("{entity} not in\n{}", h.last().xml))
        .endpoint_entity
        .clone()
}

#[test]
fn r50_endpoint_entity_contact_option() {
    let contact = "\"Bob\" <sip:+15550101@192.0.2.7:5060;gr=urn:uuid:b0b>;expires=600";
    let gruu = "sip:+15550101@192.0.2.7:5060;gr=urn:uuid:b0b";
    for (cfg, want) in [(Config::default(), BOB), (contact_cfg(), gruu)] {
        let mut h = Harness::new(cfg, SessionKind::AdHoc);
        h.update(ParticipantUpdate {
            contact: Some(contact.as_bytes()),
            ..connected(BOB)
        });
        h.subscribe();
        h.settle();
        assert_eq!(endpoint_of(&h, BOB), want);
        // no Contact known: the user entity
        assert_eq!(endpoint_of(&h, ME), ME);
    }

    let mut h = Harness::new(contact_cfg(), SessionKind::AdHoc);
    h.update(connected(BOB));
    h.subscribe();
    h.settle();
    assert_eq!(endpoint_of(&h, BOB), BOB);
    // A Contact learnt later is a visible change (R26, R54): a partial with only BOB.
    h.update(ParticipantUpdate {
        contact: Some(b"<sip:+15550101@192.0.2.8>"),
        ..connected(BOB)
    });
    h.settle();
    assert_eq!(h.last().kind, NotifyKind::Partial);
    assert_eq!(h.last().doc.users.len(), 1);
    assert_eq!(endpoint_of(&h, BOB), "sip:+15550101@192.0.2.8");
    // The same Contact again, or something that is not a URI, changes nothing (R55).
    let before = h.read.len();
    h.update(ParticipantUpdate {
        contact: Some(b"sip:+15550101@192.0.2.8"),
        ..connected(BOB)
    });
    h.update(ParticipantUpdate {
        contact: Some(b"not a uri"),
        ..connected(BOB)
    });
    h.settle();
    assert_eq!(h.read.len(), before);
    // The departure names the endpoint the subscriber was shown.
    h.update(left(BOB, None, None));
    h.settle();
    assert_eq!(endpoint_of(&h, BOB), "sip:+15550101@192.0.2.8");
}

#[test]
fn r50_contact_never_under_privacy() {
    let mut h = Harness::new(contact_cfg(), SessionKind::AdHoc);
    let private = |contact: &'static str| ParticipantUpdate {
        privacy: true,
        from_uri: Some(b"sip:anonymous@anonymous.invalid"),
        contact: Some(contact.as_bytes()),
        ..connected(CAROL)
    };
    // BOB is public first (its Contact is shown), then comes back with privacy (R78, R79).
    h.update(ParticipantUpdate {
        contact: Some(b"<sip:+15550101@192.0.2.7>"),
        ..connected(BOB)
    });
    h.update(private("<sip:+15550102@192.0.2.9;gr=urn:uuid:ca>"));
    h.subscribe();
    h.settle();
    assert_eq!(endpoint_of(&h, BOB), "sip:+15550101@192.0.2.7");
    assert_eq!(
        endpoint_of(&h, "sip:anonymous@anonymous.invalid"),
        "sip:anonymous@anonymous.invalid"
    );
    // A private participant's new Contact is nothing anyone may see (R55, R78).
    let before = h.read.len();
    h.update(private("<sip:+15550102@192.0.2.10>"));
    h.settle();
    assert_eq!(h.read.len(), before);
    h.update(ParticipantUpdate {
        privacy: true,
        from_uri: Some(b"sip:anonymous@anonymous.invalid"),
        contact: Some(b"<sip:+15550101@192.0.2.11>"),
        ..connected(BOB)
    });
    h.update(left(CAROL, None, None));
    h.settle();
    for r in &h.read {
        for secret in ["15550102", "192.0.2.9", "192.0.2.10", "192.0.2.11"] {
            assert!(!r.xml.contains(secret), "R78: {secret} shown\n{}", r.xml);
        }
        for u in r
            .doc
            .users
            .iter()
            .filter(|u| u.entity.contains("anonymous"))
        {
            assert_eq!(u.endpoint_entity, u.entity, "R78\n{}", r.xml);
        }
    }
}

#[test]
fn r52_switches_off_by_default() {
    let mut h = Harness::new(Config::default(), SessionKind::PreDefined);
    h.set_max(Some(20));
    h.update(ParticipantUpdate {
        contact: Some(b"<sip:+15550101@192.0.2.7>"),
        ..connected(BOB)
    });
    h.update(alerting(CAROL));
    h.subscribe();
    h.settle();
    h.update(declined(CAROL));
    h.update(left(
        BOB,
        Some(DisconnectionMethod::Booted),
        Some("removed"),
    ));
    h.settle();
    assert!(h.read.len() >= 2);
    for r in &h.read {
        // R52 default output: only users/user/display-text/endpoint/status
        for element in [
            "conference-description",
            "maximum-user-count",
            "conference-state",
            "user-count",
            "disconnection-method",
            "disconnection-info",
            "192.0.2.7",
        ] {
            assert!(!r.xml.contains(element), "{element}\n{}", r.xml);
        }
        assert_eq!((r.doc.maximum_user_count, r.doc.user_count), (None, None));
    }
    assert!(h.read[0].xml.contains("<status>alerting</status>"));
}

#[test]
fn r52_emit_disconnection_method_alone() {
    let cfg = Config {
        emit_disconnection_method: true,
        ..Config::default()
    };
    let mut h = Harness::new(cfg, SessionKind::PreDefined);
    h.set_max(Some(20));
    h.update(alerting(CAROL));
    h.subscribe();
    h.settle();
    h.update(declined(CAROL));
    h.settle();
    let carol = (
        CAROL.to_string(),
        "disconnected".to_string(),
        Some("failed".to_string()),
        Some("603 Decline".to_string()),
    );
    assert_eq!(h.last_users(), vec![carol]);
    // the rest of the RCS profile stays off
    assert!(h.read[0].xml.contains("<status>alerting</status>"));
    assert_eq!(
        (h.last().doc.maximum_user_count, h.last().doc.user_count),
        (None, None)
    );
}

#[test]
fn r91_alerting_sent_as_dialing_out() {
    let mut h = Harness::rcs(Config {
        report_dialing_out: true,
        ..Config::default()
    });
    h.update(alerting(BOB));
    h.subscribe();
    h.settle();
    assert!(!h.last().xml.contains("alerting"), "{}", h.last().xml);
    assert!(h
        .last_users()
        .contains(&(BOB.into(), "dialing-out".into(), None, None)));
    h.update(accepted(BOB));
    h.settle();
    assert_eq!(
        h.last_users(),
        vec![(BOB.into(), "connected".into(), None, None)]
    );
    // R59 + R91: not ringing yet and ringing look the same to an RCS client, so the 180 is
    // no change (R55)
    h.update(ParticipantUpdate {
        status: EndpointStatus::DialingOut,
        ..alerting(CAROL)
    });
    h.settle();
    assert_eq!(
        h.last_users(),
        vec![(CAROL.into(), "dialing-out".into(), None, None)]
    );
    let before = h.read.len();
    h.update(alerting(CAROL));
    h.settle();
    assert_eq!(h.read.len(), before);
    assert!(h.dropped.is_empty() && h.mismatches.is_empty());
}

#[test]
fn r91_departure_carries_disconnection_method() {
    let mut h = Harness::rcs(Config::default());
    for who in [BOB, DAN, FRANK] {
        h.update(connected(who));
    }
    h.update(alerting(CAROL));
    h.update(alerting(ERIN));
    h.subscribe();
    h.settle();
    let cases: [(ParticipantUpdate<'_>, &str, Option<&str>, Shown); 5] = [
        // a BYE: nobody said how, so `departed`
        (left(BOB, None, None), "departed", None, Shown::Departed),
        // R95: the reason reaches RCS clients as a Reason header value
        (
            declined(CAROL),
            "failed",
            Some("SIP;cause=603;text=\"Decline\""),
            Shown::Declined,
        ),
        (
            left(DAN, Some(DisconnectionMethod::Booted), None),
            "booted",
            None,
            Shown::Booted,
        ),
        (
            left(ERIN, Some(DisconnectionMethod::Busy), Some("486 Busy Here")),
            "busy",
            Some("SIP;cause=486;text=\"Busy Here\""),
            Shown::Busy,
        ),
        (
            left(
                FRANK,
                Some(DisconnectionMethod::Failed),
                Some("500 Server Internal Error"),
            ),
            "failed",
            Some("SIP;cause=500;text=\"Server Internal Error\""),
            Shown::Failed,
        ),
    ];
    for (update, method, reason, shown) in cases {
        let who = std::str::from_utf8(update.aoia).unwrap().to_string();
        h.update(update);
        h.settle();
        assert_eq!(
            h.last_users(),
            vec![(
                who.clone(),
                "disconnected".into(),
                Some(method.into()),
                reason.map(String::from)
            )]
        );
        assert_eq!(h.client.list[&number(&who)], shown);
    }
    // A method given with another status is ignored, and a comeback forgets the old one.
    h.update(ParticipantUpdate {
        disconnection_method: Some(DisconnectionMethod::Booted),
        ..connected(BOB)
    });
    h.settle();
    assert_eq!(
        h.last_users(),
        vec![(BOB.into(), "connected".into(), None, None)]
    );
    h.update(left(BOB, None, None));
    h.settle();
    assert_eq!(
        h.last_users(),
        vec![(
            BOB.into(),
            "disconnected".into(),
            Some("departed".into()),
            None
        )]
    );
    assert!(h.dropped.is_empty() && h.mismatches.is_empty());
}

#[test]
fn r91_maximum_and_user_count() {
    let mut h = Harness::rcs(Config::default());
    h.update(alerting(BOB));
    h.subscribe();
    h.settle();
    // ME connected and BOB being called both count; no maximum known yet
    assert_eq!(
        (h.last().doc.maximum_user_count, h.last().doc.user_count),
        (None, Some(2))
    );
    assert!(!h.last().xml.contains("conference-description"));
    // R88: the group document's maximum; it rides on the next document
    h.set_max(Some(20));
    assert!(h.open.is_empty(), "a new maximum sends nothing by itself");
    h.update(connected(CAROL));
    h.settle();
    assert_eq!(h.last().kind, NotifyKind::Partial);
    assert_eq!(
        (h.last().doc.maximum_user_count, h.last().doc.user_count),
        (Some(20), Some(3))
    );
    assert!(h.last().xml.contains(
        "<conference-description><maximum-user-count>20</maximum-user-count></conference-description>\
         <conference-state><user-count>3</user-count></conference-state><users state=\"partial\">"
    ));
    h.update(declined(BOB));
    h.settle();
    assert_eq!(h.last().doc.user_count, Some(2));
    h.refresh();
    h.settle();
    assert_eq!(h.last().kind, NotifyKind::Full);
    assert_eq!(
        (h.last().doc.maximum_user_count, h.last().doc.user_count),
        (Some(20), Some(2))
    );
    assert_eq!(h.client.maximum_user_count, Some(20));
    h.set_max(None);
    h.update(connected(DAN));
    h.settle();
    assert_eq!(
        (h.last().doc.maximum_user_count, h.last().doc.user_count),
        (None, Some(3))
    );
    assert_eq!(
        h.n.set_max_user_count(b"sip:gone@im.example.net", Some(3)),
        Err(SessionError::UnknownSession)
    );
    assert!(h.dropped.is_empty() && h.mismatches.is_empty());
}

#[test]
fn r91_never_deleted() {
    let deleted = Config {
        emit_deleted_after_disconnect: true,
        ..Config::default()
    };
    let run = |cfg: Config| {
        let mut h = Harness::new(cfg, SessionKind::AdHoc);
        h.update(connected(BOB));
        h.subscribe();
        h.settle();
        h.update(left(BOB, None, None));
        h.settle();
        h
    };
    // R58 alone: BOB is reported gone, then removed; the RCS client drops the removal (R90).
    let h = run(deleted.clone());
    assert!(h.last().xml.contains("state=\"deleted\""));
    assert_eq!(h.dropped.len(), 1);
    assert_eq!(h.dropped[0].0, Throw::NoStatus(BOB.into()));
    // R91 forces it off.
    let h = run(Config {
        default_profile: RCS,
        ..deleted
    });
    assert_eq!(h.read.len(), 2);
    assert!(h.read.iter().all(|r| !r.xml.contains("deleted")));
    assert!(h.dropped.is_empty() && h.mismatches.is_empty());
    assert_eq!(h.client.list[&number(BOB)], Shown::Departed);
}

#[test]
fn r91_full_documents_list_everyone_who_left() {
    // A merging client's list may be older than its subscription (R90): a full document lists
    // the departures too, each once per document, so no stale entry survives.
    let run = |cfg: Config| {
        let mut h = Harness::new(cfg, SessionKind::PreDefined);
        h.update(alerting(BOB));
        h.update(declined(BOB));
        h.update(connected(CAROL));
        h.update(left(CAROL, None, None));
        h.subscribe();
        h.settle();
        h.last_users()
    };
    assert_eq!(
        run(Config::default()),
        vec![(ME.into(), "connected".into(), None, None)]
    );
    let rcs = Config {
        default_profile: RCS,
        ..Config::default()
    };
    assert_eq!(
        run(rcs),
        vec![
            (ME.into(), "connected".into(), None, None),
            (
                BOB.into(),
                "disconnected".into(),
                Some("failed".into()),
                Some("SIP;cause=603;text=\"Decline\"".into())
            ),
            (
                CAROL.into(),
                "disconnected".into(),
                Some("departed".into()),
                None
            ),
        ]
    );
}

#[test]
fn r92_cpm_icsi_accepted_only_when_enabled() {
    let mut h = Harness::new(
        Config {
            accept_cpm_icsi: true,
            ..Config::default()
        },
        SessionKind::AdHoc,
    );
    assert_eq!(h.subscribe_with_accept_contact(&[CPM_ICSI]), 200);
    // among other values of the list, in another header line, %-encoding in lower case
    let listed = "*;+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel,\
                  urn%3aurn-7%3a3gpp-service.ims.icsi.oma.cpm.session\";explicit";
    assert_eq!(h.subscribe_with_accept_contact(&["*;audio", listed]), 200);
    // the OMA tag still counts (R4)
    assert_eq!(h.subscribe_with_accept_contact(&["*;+g.oma.sip-im"]), 200);
    // another CPM service, or the ICSI negated, does not
    let msg = "*;+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.msg\"";
    assert_eq!(h.subscribe_with_accept_contact(&[msg]), 403);
    let negated = "*;+g.3gpp.icsi-ref=\"!urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.session\"";
    assert_eq!(h.subscribe_with_accept_contact(&[negated]), 403);
}

#[test]
fn r92_cpm_icsi_refused_by_default() {
    let mut h = Harness::new(Config::default(), SessionKind::AdHoc);
    // SEED step 3: only +g.oma.sip-im counts
    assert_eq!(h.subscribe_with_accept_contact(&[CPM_ICSI]), 403);
    assert_eq!(h.subscribe_with_accept_contact(&["*;+g.oma.sip-im"]), 200);
}

// ------------------------------------------------------------------------- property test

const PEOPLE: [&str; 5] = [BOB, CAROL, DAN, ERIN, FRANK];
const CONTACTS: [&str; 5] = [
    "<sip:+15550101@192.0.2.1>",
    "<sip:+15550102@192.0.2.2;gr=urn:uuid:2>",
    "<sip:+15550103@192.0.2.3:5080>",
    "<sip:+15550104@192.0.2.4;transport=tcp>",
    "<sip:+15550105@192.0.2.5>",
];
/// How people leave: a BYE (nobody says how), an explicit BYE, a removal, busy, a decline,
/// another failure with and without a reason.
const LEAVES: [(Option<DisconnectionMethod>, Option<&str>); 7] = [
    (None, None),
    (Some(DisconnectionMethod::Departed), None),
    (Some(DisconnectionMethod::Booted), None),
    (Some(DisconnectionMethod::Busy), Some("486 Busy Here")),
    (Some(DisconnectionMethod::Failed), Some("603 Decline")),
    (
        Some(DisconnectionMethod::Failed),
        Some("480 Temporarily Unavailable"),
    ),
    (Some(DisconnectionMethod::Failed), None),
];

#[derive(Debug, Clone)]
enum Op {
    Invite(usize),
    /// An invitee accepts, or someone joins.
    Connect(usize),
    Leave(usize, usize),
    Refresh,
    /// The client answers the oldest open NOTIFY; a failure ends the subscription (R31), and
    /// `read` says whether the client read it anyway.
    Answer {
        code: usize,
        read: bool,
    },
    Tick(u64),
    SetMax(Option<u32>),
    Settle,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..PEOPLE.len()).prop_map(Op::Invite),
        4 => (0..PEOPLE.len()).prop_map(Op::Connect),
        4 => (0..PEOPLE.len(), 0..LEAVES.len()).prop_map(|(w, how)| Op::Leave(w, how)),
        1 => Just(Op::Refresh),
        5 => (0usize..6, any::<bool>()).prop_map(|(code, read)| Op::Answer { code, read }),
        2 => (0u64..5000).prop_map(Op::Tick),
        1 => proptest::option::of(0u32..50).prop_map(Op::SetMax),
        1 => Just(Op::Settle),
    ]
}

fn setup() -> impl Strategy<Value = (Config, bool)> {
    (
        prop_oneof![Just(0u64), Just(1000), Just(3000)],
        prop_oneof![Just(1usize), Just(2), Just(200)],
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(interval, max_pending, dialing_out, contact, deleted, leave, group)| {
                let cfg = Config {
                    default_profile: RCS,
                    min_notify_interval_ms: interval,
                    max_pending_changes: max_pending,
                    report_dialing_out: dialing_out,
                    endpoint_entity_contact: contact,
                    // R91 must keep R58 off whatever this says
                    emit_deleted_after_disconnect: deleted,
                    terminate_on_leave: leave,
                    ..Config::default()
                };
                (cfg, group)
            },
        )
}

fn run(h: &mut Harness, op: &Op) {
    match *op {
        Op::Invite(i) => h.update(alerting(PEOPLE[i])),
        Op::Connect(i) => h.update(ParticipantUpdate {
            role: Role::Invited,
            contact: Some(CONTACTS[i].as_bytes()),
            ..connected(PEOPLE[i])
        }),
        Op::Leave(i, how) => h.update(left(PEOPLE[i], LEAVES[how].0, LEAVES[how].1)),
        Op::Refresh => h.refresh(),
        Op::Answer { code, read } => h.answer([200, 200, 202, 481, 408, 500][code], read),
        Op::Tick(ms) => {
            h.now += ms;
            let out = h.n.tick(&h.cfg, h.now);
            h.sent(out);
        }
        Op::SetMax(max) => h.set_max(max),
        Op::Settle => h.settle(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// R90, R91: whatever happens (joins, leaves of every kind, ringing invitees, refreshes,
    /// lost or failed NOTIFYs followed by a new subscription, overflows), the RCS client never
    /// drops a NOTIFY, and after every NOTIFY its list is the truth of the moment the NOTIFY
    /// was built; once everything is delivered, it is the truth of now.
    #[test]
    fn r90_r91_rcs_client_never_drops_a_notify_and_shows_the_truth(
        (cfg, group) in setup(),
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let kind = if group { SessionKind::PreDefined } else { SessionKind::AdHoc };
        let mut h = Harness::new(cfg, kind);
        h.subscribe();
        for op in &ops {
            run(&mut h, op);
        }
        h.settle();
        prop_assert!(h.dropped.is_empty(), "dropped: {:#?}", h.dropped);
        prop_assert!(h.mismatches.is_empty(), "{}", h.mismatches.join("\n\n"));
        let now = h.truth.differs_from(&h.client.list);
        prop_assert!(now.is_none(), "after settling: {:?}", now);
    }
}
