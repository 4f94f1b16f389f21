//! A cluster with `db_url` (issue 17): the write-back and the replication each drain a change
//! log of their own; subscriptions restored at a start wait for the peers before any NOTIFY;
//! and when two nodes restored the same dialog (one took it over from the other), the copy
//! claimed last stays and the other is dropped without a NOTIFY (`Notifier::settle_claim`).

use crate::common::{
    adhoc_node, alice_subscribe, connected, unthrottled_cfg, ALICE_HEADERS, SESSION,
};
use allocator_api2::alloc::Global;
use imconf::core::conference_info::parse;
use imconf::core::notifier::{Claim, Consumer, Notifier, NotifyKind};

const BOB: &[u8] = b"sip:bob@example.net";
const CAROL: &[u8] = b"sip:carol@example.net";
const OFFSET: i64 = 1_700_000_000_000;

fn node() -> Notifier<Global> {
    let mut n = adhoc_node();
    n.enable_changes(Consumer::Database);
    n.enable_changes(Consumer::Cluster);
    n
}

/// Node A with alice's subscription, told of bob at `t`=5: its last NOTIFY's CSeq and version.
fn subscribed() -> (Notifier<Global>, u32, u32) {
    let c = unthrottled_cfg();
    let mut a = node();
    let out = a.subscribe(&c, 0, &alice_subscribe(b"c1", &ALICE_HEADERS), b"i5-t1");
    a.notify_completed(&c, 0, out.notifies[0].token, 200);
    let change = a.participant(&c, 5, SESSION, &connected(BOB)).unwrap();
    a.notify_completed(&c, 5, change[0].token, 200);
    let version = parse(&change[0].body).unwrap().version;
    (a, change[0].cseq, version)
}

/// A node that restored `rows` (sessions, then subscriptions) as a start does.
fn restored(from: &Notifier<Global>, crashed: bool, hold: bool) -> Notifier<Global> {
    let mut n = Notifier::new_in(9, Global);
    if hold {
        n.hold_restored();
    }
    for r in from.session_rows() {
        n.restore_session(&r.state).unwrap();
    }
    for r in from.subscription_rows(&unthrottled_cfg(), OFFSET) {
        n.restore_subscription(10, &r.state, OFFSET, crashed)
            .unwrap();
    }
    // (as the module: a restore itself is not recorded)
    n.enable_changes(Consumer::Database);
    n.enable_changes(Consumer::Cluster);
    n
}

#[test]
fn the_write_back_and_the_replication_drain_their_own_logs() {
    let (mut a, _, _) = subscribed();
    let db = a.take_changes(&unthrottled_cfg(), Consumer::Database, OFFSET, false);
    assert_eq!((db.sessions.len(), db.subs.len()), (1, 1));
    let cluster = a.take_changes(&unthrottled_cfg(), Consumer::Cluster, OFFSET, false);
    assert_eq!(
        (cluster.sessions.len(), cluster.subs.len()),
        (1, 1),
        "the write-back took nothing from the replication"
    );
    assert!(a
        .take_changes(&unthrottled_cfg(), Consumer::Database, OFFSET, false)
        .is_empty());
    // one change, seen by each once
    let c = unthrottled_cfg();
    let n = a.participant(&c, 2000, SESSION, &connected(CAROL)).unwrap();
    a.notify_completed(&c, 2000, n[0].token, 200);
    for log in [Consumer::Cluster, Consumer::Database] {
        let ch = a.take_changes(&unthrottled_cfg(), log, OFFSET, false);
        assert_eq!((ch.sessions.len(), ch.subs.len()), (1, 1), "{log:?}");
        assert!(
            a.take_changes(&unthrottled_cfg(), log, OFFSET, false)
                .is_empty(),
            "{log:?}"
        );
    }
}

#[test]
fn a_restored_subscription_sends_nothing_until_released() {
    let c = unthrottled_cfg();
    let (a, cseq, version) = subscribed();
    let mut b = restored(&a, true, true);
    assert!(b.tick(&c, 10).is_empty(), "held: no full state yet");
    let change = b.participant(&c, 20, SESSION, &connected(CAROL)).unwrap();
    assert!(change.is_empty(), "held: a change waits too");
    assert!(b.tick(&c, 2000).is_empty());
    b.release_restored(2100);
    let due = b.tick(&c, 2100);
    assert_eq!(due.len(), 1, "released: the restored state goes out");
    assert_eq!(due[0].kind, NotifyKind::Full);
    assert!(due[0].cseq > cseq + 1 && parse(&due[0].body).unwrap().version > version + 1);
    assert!(
        String::from_utf8_lossy(&due[0].body).contains("carol"),
        "with the change made while it waited"
    );
    // without a hold (a node alone) the same restore notifies at the first tick
    assert_eq!(restored(&a, true, false).tick(&c, 10).len(), 1);
}

#[test]
fn an_expired_restored_subscription_ends_only_once_released() {
    let c = unthrottled_cfg();
    let (a, _, _) = subscribed();
    let mut b = restored(&a, false, true);
    let expiry = 3_600_000 + 10;
    assert!(
        b.tick(&c, expiry).is_empty(),
        "a peer may hold it refreshed"
    );
    b.release_restored(expiry + 1);
    let due = b.tick(&c, expiry + 1);
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].kind, NotifyKind::Terminated);
}

/// A took alice over from B's copy (a takeover after A's peer B stopped); both restarted and
/// restored the dialog. B's copy is older: it yields without a NOTIFY, A's stays.
#[test]
fn the_copy_claimed_last_keeps_the_dialog() {
    let c = unthrottled_cfg();
    let (stale, _, _) = subscribed();
    let stale_row = stale
        .subscription_rows(&unthrottled_cfg(), OFFSET)
        .remove(0);
    let mut holder = node();
    holder.participant(&c, 0, SESSION, &connected(BOB)).unwrap();
    holder
        .take_over(1000, &stale_row.state, OFFSET, false)
        .unwrap();
    let sent = holder.tick(&c, 1000);
    holder.notify_completed(&c, 1000, sent[0].token, 200);
    let newer_row = holder
        .subscription_rows(&unthrottled_cfg(), OFFSET)
        .remove(0);

    let mut b = restored(&stale, false, true);
    // the holder hears of B's older copy: it keeps its own (and tells B)
    assert_eq!(
        holder.settle_claim(b"c1", b"i5-t1", &stale_row.state, OFFSET, true),
        Claim::Ours
    );
    assert_eq!(holder.subscription_count(), 1);
    // B hears of the holder's newer copy: B drops its own, silently
    assert_eq!(
        b.settle_claim(b"c1", b"i5-t1", &newer_row.state, OFFSET, false),
        Claim::Theirs
    );
    assert_eq!(b.subscription_count(), 0);
    b.release_restored(2000);
    assert!(
        b.tick(&c, 2000).is_empty(),
        "no NOTIFY for a dialog yielded"
    );
    for log in [Consumer::Database, Consumer::Cluster] {
        let ch = b.take_changes(&unthrottled_cfg(), log, OFFSET, false);
        assert_eq!(
            ch.gone_subs,
            vec![(b"c1".to_vec(), b"i5-t1".to_vec())],
            "{log:?}: its row and its replicas go"
        );
    }
    // a dialog not held here, and a tie decided by the caller's node order
    assert_eq!(
        b.settle_claim(b"c9", b"x", &newer_row.state, OFFSET, true),
        Claim::NotHere
    );
    let mut twin = restored(&holder, false, true);
    assert_eq!(
        twin.settle_claim(b"c1", b"i5-t1", &newer_row.state, OFFSET, false),
        Claim::Ours,
        "a tie stays here when the peer ranks lower"
    );
    assert_eq!(
        twin.settle_claim(b"c1", b"i5-t1", &newer_row.state, OFFSET, true),
        Claim::Theirs,
        "and goes to the peer when it ranks higher"
    );
}
