//! Shared memory can run out at any moment: the core must then answer 500 (or report
//! OutOfMemory to the feeder), never panic or abort, and keep working once memory is back.
use crate::common::{alice_subscribe, ALICE_HEADERS, SESSION};
use allocator_api2::alloc::{AllocError, Allocator, Global, Layout};
use imconf::core::conference_info::EndpointStatus;
use imconf::core::config::Config;
use imconf::core::notifier::Notifier;
use imconf::core::session::{ParticipantUpdate, Role, SessionError, SessionKind};
use std::cell::Cell;
use std::ptr::NonNull;
use std::rc::Rc;

/// The heap with a byte budget that tests can shrink and restore.
#[derive(Clone)]
struct Budget(Rc<Cell<usize>>);

unsafe impl Allocator for Budget {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let left = self.0.get();
        if layout.size() > left {
            return Err(AllocError);
        }
        self.0.set(left - layout.size());
        Global.allocate(layout)
    }
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        self.0.set(self.0.get() + layout.size());
        Global.deallocate(ptr, layout)
    }
}

fn join(n: &mut Notifier<Budget>, cfg: &Config, who: &str) -> Result<(), SessionError> {
    let update = ParticipantUpdate {
        aoia: who.as_bytes(),
        status: EndpointStatus::Connected,
        role: Role::Joined,
        listed_uri: None,
        from_uri: None,
        privacy: false,
        nick: Some(b"a nick"),
        disconnection_method: None,
        disconnection_reason: None,
        contact: None,
        when_ms: None,
    };
    n.participant(cfg, 0, SESSION, &update).map(|_| ())
}

fn subscribe(n: &mut Notifier<Budget>, cfg: &Config, i: usize) -> u16 {
    let call_id = format!("call-{i}");
    let req = alice_subscribe(call_id.as_bytes(), &ALICE_HEADERS);
    n.subscribe(cfg, 0, &req, format!("tag{i}").as_bytes())
        .reply
        .code
}

#[test]
fn full_memory_gives_500_and_service_recovers() {
    let cfg = Config {
        max_subs_per_user_per_session: 1000,
        max_subs_per_session: 1000,
        ..Config::default()
    };
    let budget = Rc::new(Cell::new(usize::MAX / 2));
    let mut n = Notifier::new_in(7, Budget(budget.clone()));
    n.open_session(SESSION, SessionKind::AdHoc, None).unwrap();
    join(&mut n, &cfg, "sip:alice@example.net").unwrap();

    // every budget from 0 upwards: each SUBSCRIBE is either accepted or refused with 500
    let mut saw_500 = false;
    let mut accepted = 0;
    for (i, b) in (0..4000).step_by(37).enumerate() {
        budget.set(b);
        match subscribe(&mut n, &cfg, i) {
            200 => accepted += 1,
            500 => saw_500 = true,
            other => panic!("unexpected {other} with a budget of {b} bytes"),
        }
        assert_eq!(
            n.subscription_count(),
            accepted,
            "a refused SUBSCRIBE left state"
        );
        // a participant change under the same budget fails cleanly or succeeds
        let r = join(&mut n, &cfg, &format!("sip:u{i}@example.net"));
        assert!(matches!(r, Ok(()) | Err(SessionError::OutOfMemory)));
    }
    assert!(saw_500, "the budget never ran out: the test proves nothing");
    budget.set(usize::MAX / 2);
    assert_eq!(subscribe(&mut n, &cfg, 99_999), 200);
}

#[test]
fn a_target_refresh_without_memory_keeps_the_old_target() {
    let cfg = crate::common::unthrottled_cfg();
    let budget = Rc::new(Cell::new(usize::MAX / 2));
    let mut n = Notifier::new_in(7, Budget(budget.clone()));
    n.open_session(SESSION, SessionKind::AdHoc, None).unwrap();
    join(&mut n, &cfg, "sip:alice@example.net").unwrap();
    let first = n.subscribe(&cfg, 0, &alice_subscribe(b"c1", &ALICE_HEADERS), b"t1");
    assert_eq!(first.reply.code, 200);
    n.notify_completed(&cfg, 0, first.notifies[0].token, 200);

    // R27: a new Contact rebuilds the subscription's block of strings; with no memory the
    // refresh is answered 500 and the dialog still targets the old Contact
    let refresh = |cseq: u32| imconf::core::notifier::SubscribeRequest {
        to_tag: b"t1",
        cseq,
        contact: b"sip:alice@198.51.100.7:5070",
        ..alice_subscribe(b"c1", &ALICE_HEADERS)
    };
    budget.set(0);
    assert_eq!(n.subscribe(&cfg, 1000, &refresh(2), b"").reply.code, 500);
    budget.set(usize::MAX / 2);
    let same_target = imconf::core::notifier::SubscribeRequest {
        contact: b"",
        ..refresh(3)
    };
    let out = n.subscribe(&cfg, 2000, &same_target, b"");
    assert_eq!(out.reply.code, 200);
    assert_eq!(out.notifies[0].remote_target, b"sip:alice@192.0.2.1");
    n.notify_completed(&cfg, 2000, out.notifies[0].token, 200);

    let out = n.subscribe(&cfg, 3000, &refresh(4), b"");
    assert_eq!(out.reply.code, 200);
    let sent = &out.notifies[0];
    assert_eq!(sent.remote_target, b"sip:alice@198.51.100.7:5070");
    assert_eq!(
        (&sent.call_id[..], &sent.remote_uri[..]),
        (&b"c1"[..], crate::common::ALICE)
    );
}
