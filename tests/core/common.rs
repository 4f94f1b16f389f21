//! Small builders shared by the core test files that drive `Notifier` directly.
#![allow(dead_code)]
use allocator_api2::alloc::Global;
use imconf::core::conference_info::EndpointStatus;
use imconf::core::config::Config;
use imconf::core::notifier::{Notifier, SubscribeRequest};
use imconf::core::session::{ParticipantUpdate, SessionKind};

pub const SESSION: &[u8] = b"sip:s1@im.example.net";
pub const ALICE: &[u8] = b"sip:alice@example.net";

/// Headers of a SUBSCRIBE from Alice that passes every check of R1-R14 (docs/conformance.md).
pub const ALICE_HEADERS: [(&[u8], &[u8]); 3] = [
    (b"Event", b"conference"),
    (b"Accept-Contact", b"*;+g.oma.sip-im"),
    (b"P-Asserted-Identity", b"<sip:alice@example.net>"),
];

pub fn connected(aoia: &[u8]) -> ParticipantUpdate<'_> {
    ParticipantUpdate::new(aoia, EndpointStatus::Connected)
}

/// An initial SUBSCRIBE from Alice to SESSION in dialog `call_id`.
pub fn alice_subscribe<'a>(
    call_id: &'a [u8],
    headers: &'a [(&'a [u8], &'a [u8])],
) -> SubscribeRequest<'a> {
    SubscribeRequest {
        ruri: SESSION,
        call_id,
        cseq: 1,
        from_uri: ALICE,
        from_tag: b"ft",
        to_uri: SESSION,
        contact: b"sip:alice@192.0.2.1",
        headers,
        ..Default::default()
    }
}

/// A configuration for notifier tests: the required identities, no NOTIFY throttle (R61).
pub fn unthrottled_cfg() -> Config {
    Config {
        server_contact: "sip:imconf@192.0.2.1".into(),
        conference_factory_uri: "sip:factory@im.example.net".into(),
        min_notify_interval_ms: 0,
        ..Config::default()
    }
}

/// A node's notifier (seed 9, as every node of a cluster test) with the ad-hoc SESSION open and
/// Alice connected.
pub fn adhoc_node() -> Notifier<Global> {
    let mut n = Notifier::new_in(9, Global);
    n.open_session(SESSION, SessionKind::AdHoc, None).unwrap();
    n.participant(&unthrottled_cfg(), 0, SESSION, &connected(ALICE))
        .unwrap();
    n
}
