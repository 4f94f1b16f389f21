//! Peer changes that arrive before their session (core::early_ops, docs/cluster.md "Order"):
//! kept until the session opens, handed back in stamp order, dropped when older than the open,
//! after EARLY_TTL_MS, or past EARLY_MAX waiting; never more than EARLY_MAX held.

use allocator_api2::alloc::Global;
use imconf::core::early_ops::{EarlyOps, NotKept, Ready, EARLY_MAX, EARLY_TTL_MS};
use proptest::prelude::*;

const A: &[u8] = b"sip:a@example.net";
const B: &[u8] = b"sip:b@example.net";

fn ops(ready: &[Ready]) -> Vec<&[u8]> {
    ready.iter().map(|r| r.op.as_slice()).collect()
}

#[test]
fn kept_until_the_session_opens_then_in_stamp_order() {
    let mut e = EarlyOps::new_in(Global);
    e.park(A, 7, 30, b"third", 0).unwrap();
    e.park(A, 7, 10, b"first", 1).unwrap();
    e.park(B, 8, 5, b"other session", 2).unwrap();
    e.park(A, 9, 20, b"second", 3).unwrap();
    let ready = e.take(A, 1, 4);
    assert_eq!(ops(&ready), [&b"first"[..], b"second", b"third"]);
    assert_eq!(ready[1].from, 9);
    assert_eq!(e.len(), 1, "session b's change still waits");
    assert!(e.take(A, 1, 5).is_empty(), "handed out once");
    assert_eq!(e.take_dropped(), 0);
}

#[test]
fn changes_older_than_the_open_are_dropped() {
    // an earlier session of the same URI: its changes must not reach the new one
    let mut e = EarlyOps::new_in(Global);
    e.park(A, 7, 10, b"old", 0).unwrap();
    e.park(A, 7, 30, b"new", 0).unwrap();
    assert_eq!(ops(&e.take(A, 20, 1)), [&b"new"[..]]);
    assert_eq!(e.take_dropped(), 1);
    assert!(e.is_empty());
}

#[test]
fn a_sync_opens_with_stamp_zero_and_takes_every_change() {
    let mut e = EarlyOps::new_in(Global);
    e.park(A, 7, 1, b"x", 0).unwrap();
    assert_eq!(e.take(A, 0, 1).len(), 1);
}

#[test]
fn a_change_whose_session_never_opens_expires() {
    let mut e = EarlyOps::new_in(Global);
    e.park(A, 7, 10, b"x", 1000).unwrap();
    assert!(e.take(B, 0, 1000 + EARLY_TTL_MS - 1).is_empty());
    assert_eq!(e.len(), 1, "not yet");
    assert!(e.take(A, 0, 1000 + EARLY_TTL_MS).is_empty(), "expired");
    assert_eq!(e.take_dropped(), 1);
    assert_eq!(e.take_dropped(), 0, "counted once");
}

#[test]
fn at_most_early_max_wait() {
    let mut e = EarlyOps::new_in(Global);
    for i in 0..EARLY_MAX as u64 {
        e.park(format!("sip:s{i}@x").as_bytes(), 1, i + 1, b"p", 0)
            .unwrap();
    }
    assert_eq!(e.park(A, 1, 1, b"p", 0), Err(NotKept::Full));
    assert_eq!(e.take_dropped(), 1);
    // expiry makes room again
    e.park(A, 1, 1, b"p", EARLY_TTL_MS).unwrap();
    assert_eq!(e.len(), 1);
    assert_eq!(e.take_dropped(), EARLY_MAX as u64);
}

proptest! {
    /// Whatever arrives, nothing is held past EARLY_MAX, and every change parked is accounted
    /// for exactly once: handed back, dropped, or still waiting.
    #[test]
    fn every_change_accounted_for_once(
        steps in proptest::collection::vec((0u8..4, 0u64..3, 1u64..50, 0u64..2000), 1..400)
    ) {
        let mut e = EarlyOps::new_in(Global);
        let (mut parked, mut handed, mut dropped, mut now) = (0u64, 0u64, 0u64, 0u64);
        for (what, session, stamp, dt) in steps {
            now += dt;
            let key = format!("sip:s{session}@x");
            if what == 0 {
                handed += e.take(key.as_bytes(), stamp, now).len() as u64;
            } else {
                parked += 1;
                let _ = e.park(key.as_bytes(), 1, stamp, b"p", now);
            }
            dropped += e.take_dropped();
            prop_assert!(e.len() <= EARLY_MAX);
        }
        prop_assert_eq!(parked, handed + dropped + e.len() as u64);
    }
}
