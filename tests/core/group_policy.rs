//! R8, R71, R87 in the notifier: group sessions are authorized by a `GroupPolicy` (the module's
//! is the group documents of `groups_dir`; here a table), and a policy change ends the
//! subscriptions it no longer allows. The documents themselves are tested in groups.rs.

use crate::common::connected;
use allocator_api2::alloc::Global;
use imconf::core::config::Config;
use imconf::core::notifier::{Notifier, NotifyKind, SubscribeOutcome, SubscribeRequest};
use imconf::core::policy::{GroupAuth, GroupPolicy};
use imconf::core::session::SessionKind;
use std::cell::RefCell;
use std::collections::HashMap;

const SESSION: &[u8] = b"sip:grp-session-1@im.example.net";
const GROUP: &[u8] = b"sip:hiking-team@im.example.net";
const ANA: &str = "sip:ana@example.net";
const OMAR: &str = "sip:omar@example.net";

/// A policy table: (AOIA, anonymous) -> answer; None for every group when `configured` is off.
#[derive(Default)]
struct Table {
    configured: bool,
    answers: RefCell<HashMap<(String, bool), GroupAuth>>,
    asked: RefCell<Vec<(String, String, bool)>>,
}

impl Table {
    fn with(entries: &[(&str, bool, GroupAuth)]) -> Table {
        let t = Table {
            configured: true,
            ..Table::default()
        };
        for (aoia, anon, a) in entries {
            t.set(aoia, *anon, *a);
        }
        t
    }
    fn set(&self, aoia: &str, anonymous: bool, a: GroupAuth) {
        self.answers
            .borrow_mut()
            .insert((aoia.to_string(), anonymous), a);
    }
}

impl GroupPolicy for Table {
    fn authorize(&self, group: &[u8], aoia: &[u8], anonymous: bool) -> Option<GroupAuth> {
        let (group, aoia) = (
            String::from_utf8_lossy(group).into_owned(),
            String::from_utf8_lossy(aoia).into_owned(),
        );
        self.asked
            .borrow_mut()
            .push((group, aoia.clone(), anonymous));
        if !self.configured {
            return None;
        }
        Some(
            self.answers
                .borrow()
                .get(&(aoia, anonymous))
                .copied()
                .unwrap_or(GroupAuth::Deny),
        )
    }
}

struct World {
    n: Notifier<Global>,
    cfg: Config,
    now: u64,
}

fn world(kind: SessionKind) -> World {
    let mut n = Notifier::new_in(3, Global);
    let group = kind.is_group().then_some(GROUP);
    n.open_session(SESSION, kind, group).unwrap();
    World {
        n,
        cfg: Config {
            server_contact: "sip:imconf@192.0.2.1".into(),
            conference_factory_uri: "sip:factory@im.example.net".into(),
            ..Config::default()
        },
        now: 1_000_000,
    }
}

impl World {
    fn subscribe(
        &mut self,
        aoia: &str,
        call_id: &str,
        privacy: Option<&str>,
        p: &Table,
    ) -> SubscribeOutcome {
        let pai = format!("<{aoia}>");
        let mut headers: Vec<(&[u8], &[u8])> = vec![
            (b"Event", b"conference"),
            (b"Accept-Contact", b"*;+g.oma.sip-im"),
            (b"P-Asserted-Identity", pai.as_bytes()),
        ];
        if let Some(v) = privacy {
            headers.push((b"Privacy", v.as_bytes()));
        }
        let req = SubscribeRequest {
            ruri: SESSION,
            call_id: call_id.as_bytes(),
            cseq: 1,
            from_uri: aoia.as_bytes(),
            from_tag: b"ft",
            to_uri: SESSION,
            contact: b"sip:client@192.0.2.9",
            headers: &headers,
            ..Default::default()
        };
        let tag = format!("lt-{call_id}");
        self.n
            .subscribe_with(&self.cfg, self.now, &req, tag.as_bytes(), p)
    }

    /// Subscribes and answers the initial NOTIFY with 200.
    fn settled(&mut self, aoia: &str, call_id: &str, privacy: Option<&str>, p: &Table) {
        let out = self.subscribe(aoia, call_id, privacy, p);
        assert_eq!(out.reply.code, 200, "{out:?}");
        for n in out.notifies {
            assert!(self
                .n
                .notify_completed(&self.cfg, self.now, n.token, 200)
                .is_empty());
        }
    }
}

fn sub_state(headers: &[u8]) -> String {
    let text = String::from_utf8_lossy(headers);
    text.split("\r\n")
        .find_map(|l| l.strip_prefix("Subscription-State: "))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn r8_group_session_allowed_by_policy_without_being_a_participant() {
    let mut w = world(SessionKind::PreDefined);
    let p = Table::with(&[(ANA, false, GroupAuth::Allow)]);
    let out = w.subscribe(ANA, "c1", None, &p);
    assert_eq!(out.reply.code, 200);
    assert_eq!(out.notifies.len(), 1);
    // the policy was asked about this group and this identity, as asserted
    assert_eq!(
        p.asked.borrow().as_slice(),
        &[(
            String::from_utf8_lossy(GROUP).into_owned(),
            ANA.to_string(),
            false
        )]
    );
}

#[test]
fn r8_r85_denied_subscriber_gets_403_and_no_state() {
    let mut w = world(SessionKind::Chat);
    // even a current participant: for group sessions the document decides, not R6
    w.n.participant(&w.cfg, w.now, SESSION, &connected(OMAR.as_bytes()))
        .unwrap();
    let p = Table::with(&[]);
    let out = w.subscribe(OMAR, "c1", None, &p);
    assert_eq!(out.reply.code, 403);
    assert!(out.notifies.is_empty());
    assert_eq!(w.n.subscription_count(), 0);
    assert_eq!(w.n.stats.rejected_by_policy, 1);
}

#[test]
fn r87_unreadable_document_gets_500_not_403() {
    let mut w = world(SessionKind::RestrictedChat);
    let p = Table::with(&[(ANA, false, GroupAuth::Unavailable)]);
    let out = w.subscribe(ANA, "c1", None, &p);
    assert_eq!(out.reply.code, 500);
    assert_eq!(w.n.subscription_count(), 0);
    assert_eq!(w.n.stats.rejected_by_policy, 0);
}

#[test]
fn r6_without_group_documents_group_sessions_admit_participants_only() {
    let mut w = world(SessionKind::PreDefined);
    let p = Table::default(); // not configured: None for every question
    assert_eq!(w.subscribe(ANA, "c1", None, &p).reply.code, 403);
    w.n.participant(&w.cfg, w.now, SESSION, &connected(ANA.as_bytes()))
        .unwrap();
    assert_eq!(w.subscribe(ANA, "c2", None, &p).reply.code, 200);
}

#[test]
fn r6_adhoc_sessions_never_ask_the_group_policy() {
    let mut w = world(SessionKind::AdHoc);
    let p = Table::with(&[(ANA, false, GroupAuth::Allow)]);
    assert_eq!(w.subscribe(ANA, "c1", None, &p).reply.code, 403);
    assert!(p.asked.borrow().is_empty());
}

#[test]
fn r82_anonymous_request_is_the_subscribe_privacy_header() {
    let mut w = world(SessionKind::PreDefined);
    let p = Table::with(&[(ANA, true, GroupAuth::Allow)]);
    assert_eq!(w.subscribe(ANA, "c1", None, &p).reply.code, 403);
    assert_eq!(w.subscribe(ANA, "c2", Some("none"), &p).reply.code, 403);
    assert_eq!(w.subscribe(ANA, "c3", Some("id"), &p).reply.code, 200);
}

/// A pre-defined session whose group allows Ana and Omar, each subscribed (dialogs c1, c2) with
/// the first NOTIFY answered.
fn ana_and_omar_subscribed() -> (World, Table) {
    let mut w = world(SessionKind::PreDefined);
    let p = Table::with(&[
        (ANA, false, GroupAuth::Allow),
        (OMAR, false, GroupAuth::Allow),
    ]);
    w.settled(ANA, "c1", None, &p);
    w.settled(OMAR, "c2", None, &p);
    (w, p)
}

#[test]
fn r71_revoked_subscriber_gets_rejected_without_body() {
    let (mut w, p) = ana_and_omar_subscribed();
    // the documents change: Omar loses allow-conference-state
    p.set(OMAR, false, GroupAuth::Deny);
    let out = w.n.reauthorize(&w.cfg, w.now, &p);
    assert_eq!(out.len(), 1, "{out:?}");
    let n = &out[0];
    assert_eq!(n.kind, NotifyKind::Terminated);
    assert_eq!(sub_state(&n.headers), "terminated;reason=rejected");
    assert!(n.body.is_empty(), "R71: no body");
    assert_eq!(n.call_id, b"c2");
    assert_eq!(w.n.subscription_count(), 1, "the record is deleted");
    // nothing more for the allowed one, and a second pass changes nothing
    assert!(w.n.reauthorize(&w.cfg, w.now, &p).is_empty());
}

#[test]
fn r71_unreadable_document_revokes_nothing() {
    let mut w = world(SessionKind::Chat);
    let p = Table::with(&[(ANA, false, GroupAuth::Allow)]);
    w.settled(ANA, "c1", None, &p);
    p.set(ANA, false, GroupAuth::Unavailable);
    assert!(w.n.reauthorize(&w.cfg, w.now, &p).is_empty());
    assert_eq!(w.n.subscription_count(), 1);
}

#[test]
fn r71_revocation_waits_for_the_notify_in_flight() {
    let mut w = world(SessionKind::PreDefined);
    let p = Table::with(&[(ANA, false, GroupAuth::Allow)]);
    let out = w.subscribe(ANA, "c1", None, &p);
    let initial = out.notifies.into_iter().next().expect("initial NOTIFY");
    p.set(ANA, false, GroupAuth::Deny);
    // R32/R64: one NOTIFY in flight per subscription; the termination follows its response
    assert!(w.n.reauthorize(&w.cfg, w.now, &p).is_empty());
    let next = w.n.notify_completed(&w.cfg, w.now, initial.token, 200);
    assert_eq!(next.len(), 1);
    assert_eq!(sub_state(&next[0].headers), "terminated;reason=rejected");
}

#[test]
fn r71_revocation_uses_the_privacy_of_the_original_subscribe() {
    let mut w = world(SessionKind::PreDefined);
    let p = Table::with(&[(ANA, true, GroupAuth::Allow)]);
    w.settled(ANA, "c1", Some("id"), &p);
    assert!(w.n.reauthorize(&w.cfg, w.now, &p).is_empty());
    p.set(ANA, true, GroupAuth::Deny);
    assert_eq!(w.n.reauthorize(&w.cfg, w.now, &p).len(), 1);
}

#[test]
fn r67_sessions_of_a_group_are_listed_for_closing() {
    let w = world(SessionKind::PreDefined);
    assert_eq!(
        w.n.sessions_of_group(b"sip:hiking-team@IM.example.net;transport=udp"),
        vec![SESSION.to_vec()]
    );
    assert!(w
        .n
        .sessions_of_group(b"sip:other@im.example.net")
        .is_empty());
}

/// Issue 18: a new document may revoke thousands of subscriptions; with the fan-out processes
/// (deferred fan-out) their terminating NOTIFYs are queued, not built by the caller, and the
/// drain sends the same R71 NOTIFY.
#[test]
fn r71_revocations_are_queued_for_the_fan_out_processes() {
    let (mut w, p) = ana_and_omar_subscribed();
    w.n.set_deferred_fan_out(true);
    p.set(OMAR, false, GroupAuth::Deny);
    assert!(
        w.n.reauthorize(&w.cfg, w.now, &p).is_empty(),
        "the caller gets nothing back"
    );
    assert_eq!(w.n.fan_out_pending(), 1);
    let out = w.n.drain_fan_out(&w.cfg, w.now, usize::MAX);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(sub_state(&out[0].headers), "terminated;reason=rejected");
    assert!(out[0].body.is_empty(), "R71: no body");
    assert_eq!(out[0].call_id, b"c2");
    assert_eq!(w.n.subscription_count(), 1);
}
