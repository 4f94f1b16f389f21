//! R86: identities are compared as scheme, user and host (host case-insensitive), without URI
//! parameters: the AOIA a P-Asserted-Identity carries and the one the script fed are one user.
use crate::common::*;
use allocator_api2::alloc::Global;
use imconf::core::conference_info::EndpointStatus;
use imconf::core::config::Config;
use imconf::core::notifier::{Notifier, NotifyKind};
use imconf::core::session::{ParticipantUpdate, SessionKind};

const PAI_WITH_PARAMS: [(&[u8], &[u8]); 3] = [
    (b"Event", b"conference"),
    (b"Accept-Contact", b"*;+g.oma.sip-im"),
    (
        b"P-Asserted-Identity",
        b"\"Alice\" <sip:alice@EXAMPLE.net;user=phone>",
    ),
];

#[test]
fn r86_asserted_identity_matches_the_fed_participant_despite_params_and_case() {
    let cfg = Config::default();
    let mut n = Notifier::new_in(4, Global);
    n.open_session(SESSION, SessionKind::AdHoc, None).unwrap();
    n.participant(&cfg, 0, SESSION, &connected(ALICE)).unwrap();
    let out = n.subscribe(&cfg, 0, &alice_subscribe(b"c1", &PAI_WITH_PARAMS), b"t1");
    assert_eq!(out.reply.code, 200, "R6: Alice is a current participant");

    // R68: the leave is fed with yet another spelling; her subscription still ends
    n.notify_completed(&cfg, 1, out.notifies[0].token, 200);
    let leave = ParticipantUpdate {
        status: EndpointStatus::Disconnected,
        ..connected(b"sip:alice@example.NET;transport=tcp")
    };
    let sent = n.participant(&cfg, 2, SESSION, &leave).unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].kind, NotifyKind::Terminated);
    assert_eq!(n.subscription_count(), 0);
}

#[test]
fn r14_initial_subscribe_without_contact_is_400_before_the_existence_check() {
    let cfg = Config::default();
    let mut n = Notifier::new_in(4, Global);
    let mut req = alice_subscribe(b"c1", &ALICE_HEADERS);
    req.contact = b"";
    req.ruri = b"sip:unknown@im.example.net";
    assert_eq!(n.subscribe(&cfg, 0, &req, b"t1").reply.code, 400);
}
