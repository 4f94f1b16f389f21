//! R72: a node stopping without persistence tells every subscriber `deactivated`, at once.
use crate::common::*;
use allocator_api2::alloc::Global;
use imconf::core::config::Config;
use imconf::core::notifier::{Notifier, NotifyKind};
use imconf::core::session::SessionKind;

#[test]
fn r72_shutdown_deactivates_every_subscription_even_with_a_notify_in_flight() {
    let cfg = Config::default();
    let mut n = Notifier::new_in(3, Global);
    n.open_session(SESSION, SessionKind::AdHoc, None).unwrap();
    n.participant(&cfg, 0, SESSION, &connected(ALICE)).unwrap();
    for call in ["c1", "c2"] {
        let req = alice_subscribe(call.as_bytes(), &ALICE_HEADERS);
        let out = n.subscribe(&cfg, 0, &req, call.as_bytes());
        assert_eq!(out.reply.code, 200);
        assert_eq!(
            out.notifies.len(),
            1,
            "initial NOTIFY, awaiting its response"
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
