//! R58: with `emit_deleted_after_disconnect`, a departed user is first reported `disconnected`
//! (R57), then removed with `state="deleted"` in a later partial document. Off by default.
use crate::common::*;
use allocator_api2::alloc::Global;
use imconf::core::conference_info::{self, EndpointStatus};
use imconf::core::config::Config;
use imconf::core::notifier::{Notifier, Notify};
use imconf::core::session::{ParticipantUpdate, SessionKind};

const BOB: &[u8] = b"sip:bob@example.net";

/// Users (entity, state, status) of every NOTIFY Alice gets after Bob leaves.
fn after_bob_leaves(cfg: &Config) -> Vec<Vec<(String, String, String)>> {
    let mut n = Notifier::new_in(2, Global);
    n.open_session(SESSION, SessionKind::AdHoc, None).unwrap();
    n.participant(cfg, 0, SESSION, &connected(ALICE)).unwrap();
    n.participant(cfg, 0, SESSION, &connected(BOB)).unwrap();
    let first = n.subscribe(cfg, 0, &alice_subscribe(b"c1", &ALICE_HEADERS), b"t1");
    assert!(n
        .notify_completed(cfg, 1, first.notifies[0].token, 200)
        .is_empty());
    let leave = ParticipantUpdate {
        status: EndpointStatus::Disconnected,
        ..connected(BOB)
    };
    let mut got: Vec<Notify> = n.participant(cfg, 5000, SESSION, &leave).unwrap();
    let mut docs = Vec::new();
    let mut now = 5000;
    while let Some(m) = got.pop() {
        let doc = conference_info::parse(&m.body).unwrap();
        docs.push(
            doc.users
                .into_iter()
                .map(|u| (u.entity, u.state, u.status))
                .collect(),
        );
        now += 1;
        got.extend(n.notify_completed(cfg, now, m.token, 200));
        now += cfg.min_notify_interval_ms;
        got.extend(n.tick(cfg, now));
    }
    docs
}

fn bob(state: &str, status: &str) -> (String, String, String) {
    ("sip:bob@example.net".into(), state.into(), status.into())
}

#[test]
fn r58_off_by_default_only_disconnected() {
    assert_eq!(
        after_bob_leaves(&Config::default()),
        vec![vec![bob("full", "disconnected")]]
    );
}

#[test]
fn r58_option_removes_the_user_after_the_disconnected_report() {
    let cfg = Config {
        emit_deleted_after_disconnect: true,
        ..Config::default()
    };
    assert_eq!(
        after_bob_leaves(&cfg),
        vec![vec![bob("full", "disconnected")], vec![bob("deleted", "")]]
    );
}
