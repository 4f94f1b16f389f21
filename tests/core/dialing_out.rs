//! R59: an invitee that has not answered 180 yet is not listed by default; with
//! `report_dialing_out` it is listed as `dialing-out`. Either way it may not subscribe (R6).
use crate::common::*;
use allocator_api2::alloc::Global;
use imconf::core::conference_info::{self, EndpointStatus};
use imconf::core::config::Config;
use imconf::core::notifier::Notifier;
use imconf::core::session::{ParticipantUpdate, Role, SessionKind};

const CAROL: &[u8] = b"sip:carol@example.net";

fn invited(status: EndpointStatus) -> ParticipantUpdate<'static> {
    ParticipantUpdate {
        role: Role::Invited,
        status,
        ..connected(CAROL)
    }
}

/// (entity, status) of every user of Alice's initial document.
fn initial_users(cfg: &Config) -> Vec<(String, String)> {
    let mut n = Notifier::new_in(9, Global);
    n.open_session(SESSION, SessionKind::AdHoc, None).unwrap();
    n.participant(cfg, 0, SESSION, &connected(ALICE)).unwrap();
    n.participant(cfg, 0, SESSION, &invited(EndpointStatus::DialingOut))
        .unwrap();
    let out = n.subscribe(cfg, 0, &alice_subscribe(b"c1", &ALICE_HEADERS), b"t1");
    assert_eq!(out.reply.code, 200);
    let doc = conference_info::parse(&out.notifies[0].body).unwrap();
    doc.users
        .into_iter()
        .map(|u| (u.entity, u.status))
        .collect()
}

#[test]
fn r59_invitee_not_yet_ringing_is_not_listed_by_default() {
    assert_eq!(
        initial_users(&Config::default()),
        vec![("sip:alice@example.net".into(), "connected".into())]
    );
}

#[test]
fn r59_report_dialing_out_lists_it_as_dialing_out() {
    let cfg = Config {
        report_dialing_out: true,
        ..Config::default()
    };
    let users = initial_users(&cfg);
    assert!(
        users.contains(&("sip:carol@example.net".into(), "dialing-out".into())),
        "{users:?}"
    );
}

#[test]
fn r6_an_invitee_not_yet_ringing_may_not_subscribe() {
    let cfg = Config::default();
    let mut n = Notifier::new_in(9, Global);
    n.open_session(SESSION, SessionKind::AdHoc, None).unwrap();
    n.participant(&cfg, 0, SESSION, &invited(EndpointStatus::DialingOut))
        .unwrap();
    let headers: [(&[u8], &[u8]); 3] = [
        (b"Event", b"conference"),
        (b"Accept-Contact", b"*;+g.oma.sip-im"),
        (b"P-Asserted-Identity", b"<sip:carol@example.net>"),
    ];
    let out = n.subscribe(&cfg, 0, &alice_subscribe(b"c1", &headers), b"t1");
    assert_eq!(out.reply.code, 403);
    n.participant(&cfg, 0, SESSION, &invited(EndpointStatus::Alerting))
        .unwrap();
    let out = n.subscribe(&cfg, 0, &alice_subscribe(b"c2", &headers), b"t2");
    assert_eq!(
        out.reply.code, 200,
        "alerting counts as a current participant"
    );
}
