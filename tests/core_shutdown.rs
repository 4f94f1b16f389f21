//! R72: a node stopping without persistence tells every subscriber `deactivated`, at once.
use allocator_api2::alloc::Global;
use imconf::core::conference_info::EndpointStatus;
use imconf::core::config::Config;
use imconf::core::notifier::{Notifier, NotifyKind, SubscribeRequest};
use imconf::core::session::{ParticipantUpdate, Role, SessionKind};

const SESSION: &[u8] = b"sip:s1@im.example.net";

#[test]
fn r72_shutdown_deactivates_every_subscription_even_with_a_notify_in_flight() {
    let cfg = Config::default();
    let mut n = Notifier::new_in(3, Global);
    n.open_session(SESSION, SessionKind::AdHoc, None).unwrap();
    let update = ParticipantUpdate {
        aoia: b"sip:alice@example.net",
        status: EndpointStatus::Connected,
        role: Role::Joined,
        listed_uri: None,
        from_uri: None,
        privacy: false,
        nick: None,
    };
    n.participant(&cfg, 0, SESSION, &update).unwrap();
    let headers: Vec<(&[u8], &[u8])> = vec![
        (b"Event", b"conference"),
        (b"Accept-Contact", b"*;+g.oma.sip-im"),
        (b"P-Asserted-Identity", b"<sip:alice@example.net>"),
    ];
    for call in ["c1", "c2"] {
        let req = SubscribeRequest {
            ruri: SESSION,
            call_id: call.as_bytes(),
            cseq: 1,
            from_uri: b"sip:alice@example.net",
            from_tag: b"ft",
            to_uri: SESSION,
            contact: b"sip:alice@192.0.2.1",
            headers: &headers,
            ..Default::default()
        };
        let out = n.subscribe(&cfg, 0, &req, call.as_bytes());
        assert_eq!(out.reply.code, 200);
        assert_eq!(
            out.notifies.len(),
            1,
            "initial NOTIFY, still awaiting its response"
        );
    }
    let last = n.shutdown(&cfg, 10);
    assert_eq!(last.len(), 2);
    for m in &last {
        assert_eq!(m.kind, NotifyKind::Terminated);
        let h = String::from_utf8_lossy(&m.headers);
        assert!(
            h.contains("Subscription-State: terminated;reason=deactivated\r\n"),
            "{h}"
        );
        assert!(m.body.is_empty(), "R69/R70: no body");
        assert_eq!(m.cseq, 2, "R40: the next CSeq of the dialog");
    }
    assert_eq!(n.subscription_count(), 0);
}
