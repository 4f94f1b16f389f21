//! The core's side of the cluster (`enable_dmq`, docs/cluster.md): stamped participant changes
//! converge whatever order nodes apply them in (last writer wins), and a peer's subscription
//! taken over continues its dialog: a full NOTIFY at once with the next version and CSeq (or,
//! after a crash, the CSeq ahead).

use crate::common::{
    adhoc_node, alice_subscribe, connected, unthrottled_cfg, ALICE, ALICE_HEADERS, SESSION,
};
use allocator_api2::alloc::Global;
use imconf::core::conference_info::EndpointStatus;
use imconf::core::notifier::{Consumer, Notifier, NotifyKind};
use imconf::core::session::ParticipantUpdate;

/// The replication's change log.
const LOG: Consumer = Consumer::Cluster;

const BOB: &[u8] = b"sip:bob@example.net";
const OFFSET: i64 = 1_700_000_000_000;

fn node() -> Notifier<Global> {
    adhoc_node()
}

fn with_status(aoia: &[u8], status: EndpointStatus) -> ParticipantUpdate<'_> {
    ParticipantUpdate {
        status,
        ..connected(aoia)
    }
}

/// Two nodes receive the same two stamped changes of bob in opposite orders.
#[test]
fn stamped_changes_converge_in_any_order() {
    let c = unthrottled_cfg();
    let (mut a, mut b) = (node(), node());
    let older = (with_status(BOB, EndpointStatus::Alerting), 100);
    let newer = (with_status(BOB, EndpointStatus::Connected), 200);
    for (u, st) in [&older, &newer] {
        a.participant_stamped(&c, 0, SESSION, u, *st).unwrap();
    }
    for (u, st) in [&newer, &older] {
        b.participant_stamped(&c, 0, SESSION, u, *st).unwrap();
    }
    let (ra, rb) = (a.session_rows(), b.session_rows());
    assert_eq!(
        ra[0].state, rb[0].state,
        "the two nodes hold the same state"
    );
    // an older change is not applied at all (nothing to notify)
    let out = b.subscribe(&c, 0, &alice_subscribe(b"c1", &ALICE_HEADERS), b"t1");
    assert_eq!(out.reply.code, 200);
    b.notify_completed(&c, 0, out.notifies[0].token, 200);
    let mut alerting_at = |stamp| {
        b.participant_stamped(
            &c,
            10,
            SESSION,
            &with_status(BOB, EndpointStatus::Alerting),
            stamp,
        )
        .unwrap()
    };
    let stale = alerting_at(150);
    assert!(
        stale.is_empty(),
        "a change older than the one in force was applied"
    );
    let fresh = alerting_at(250);
    assert_eq!(fresh.len(), 1);
    b.notify_completed(&c, 10, fresh[0].token, 200);
    // unstamped changes (no cluster) always apply
    let local = b
        .participant(
            &c,
            20,
            SESSION,
            &with_status(BOB, EndpointStatus::Connected),
        )
        .unwrap();
    assert_eq!(local.len(), 1);
}

/// Node A's subscription, its state as sent to the peers, taken over by node B.
fn handed_over(crashed: bool) -> (u32, u32, Notifier<Global>) {
    let c = unthrottled_cfg();
    let mut a = node();
    a.enable_changes(LOG);
    let out = a.subscribe(&c, 0, &alice_subscribe(b"c1", &ALICE_HEADERS), b"i5-t1");
    let first = out.notifies[0].clone();
    a.notify_completed(&c, 0, first.token, 200);
    let change = a.participant(&c, 5, SESSION, &connected(BOB)).unwrap();
    assert_eq!(change.len(), 1);
    a.notify_completed(&c, 5, change[0].token, 200);
    let last_cseq = change[0].cseq;
    let last_version = imconf::core::conference_info::parse(&change[0].body)
        .unwrap()
        .version;
    let rows = a.subscription_rows(&unthrottled_cfg(), OFFSET);
    assert_eq!(rows.len(), 1);
    let mut b = node();
    b.participant(&c, 0, SESSION, &connected(BOB)).unwrap();
    b.enable_changes(LOG);
    b.take_changes(&unthrottled_cfg(), LOG, OFFSET, false);
    b.take_over(1000, &rows[0].state, OFFSET, crashed).unwrap();
    (last_cseq, last_version, b)
}

#[test]
fn a_takeover_notifies_at_once_with_the_next_version_and_cseq() {
    let c = unthrottled_cfg();
    let (cseq, version, mut b) = handed_over(false);
    let due = b.tick(&c, 1000);
    assert_eq!(
        due.len(),
        1,
        "the new holder notifies at once (its Contact moves the target)"
    );
    let n = &due[0];
    assert_eq!(n.kind, NotifyKind::Full);
    assert_eq!(n.cseq, cseq + 1, "R40");
    assert_eq!(n.call_id, b"c1");
    assert_eq!(n.local_tag, b"i5-t1", "the same dialog");
    let v = imconf::core::conference_info::parse(&n.body)
        .unwrap()
        .version;
    assert_eq!(v, version + 1, "R33");
    // the holder records it as its own, to be sent to its peers in turn
    let ch = b.take_changes(&unthrottled_cfg(), LOG, OFFSET, false);
    assert_eq!(ch.subs.len(), 1, "the new holder sends it to its own peers");
    assert_eq!(ch.subs[0].call_id, b"c1");
}

#[test]
fn after_a_crash_the_cseq_jumps_ahead() {
    let c = unthrottled_cfg();
    let (cseq, _, mut b) = handed_over(true);
    let due = b.tick(&c, 1000);
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].kind, NotifyKind::Full);
    assert!(
        due[0].cseq > cseq + 100,
        "R40 across a crash: {}",
        due[0].cseq
    );
}

#[test]
fn a_subscription_cannot_be_taken_over_twice() {
    let (_, _, mut b) = handed_over(false);
    let c = unthrottled_cfg();
    let mut a = node();
    let out = a.subscribe(&c, 0, &alice_subscribe(b"c1", &ALICE_HEADERS), b"i5-t1");
    a.notify_completed(&c, 0, out.notifies[0].token, 200);
    let rows = a.subscription_rows(&unthrottled_cfg(), OFFSET);
    assert!(b.take_over(2000, &rows[0].state, OFFSET, false).is_err());
    assert_eq!(b.subscription_count(), 1);
}

/// A user's arrival fed on one node and departure fed on another at once: the node that hears
/// of the departure first has never seen the user, and must still drop the older arrival.
#[test]
fn a_departure_racing_an_arrival_converges() {
    let c = unthrottled_cfg();
    let (mut a, mut b) = (node(), node());
    let arrival = (connected(BOB), 100);
    let departure = (with_status(BOB, EndpointStatus::Disconnected), 200);
    for (u, st) in [&arrival, &departure] {
        a.participant_stamped(&c, 0, SESSION, u, *st).unwrap();
    }
    for (u, st) in [&departure, &arrival] {
        b.participant_stamped(&c, 0, SESSION, u, *st).unwrap();
    }
    let present = |n: &Notifier<Global>| n.sessions_info()[0].participants;
    assert_eq!(present(&a), 1, "only alice");
    assert_eq!(present(&b), 1, "bob's older arrival was dropped on b too");
}

/// Issue 17 (docs/cluster.md's known gap): a session's sync record carries its stamps, so a
/// node that synced from a peer drops a change older than the one in force there, for a
/// participant, the subject and the chairman, exactly as the peer does.
#[test]
fn a_synced_session_keeps_its_stamps() {
    use imconf::core::session::SubjectUpdate;
    let c = unthrottled_cfg();
    let mut a = node();
    a.participant_stamped(&c, 0, SESSION, &connected(BOB), 500)
        .unwrap();
    let subject = |text: &'static [u8]| SubjectUpdate {
        text: Some(text),
        by: None,
        when_ms: 0,
    };
    a.set_subject(&c, 0, SESSION, &subject(b"newer"), 600)
        .unwrap();
    a.set_chairman(&c, 0, SESSION, Some(BOB), 700).unwrap();
    // b starts and syncs from a
    let mut b = Notifier::new_in(11, Global);
    b.restore_session(&a.session_rows()[0].state).unwrap();
    // changes older than those in force, arriving late (fed elsewhere before them)
    for n in [&mut a, &mut b] {
        let older = with_status(BOB, EndpointStatus::Disconnected);
        n.participant_stamped(&c, 0, SESSION, &older, 400).unwrap();
        n.set_subject(&c, 0, SESSION, &subject(b"older"), 550)
            .unwrap();
        n.set_chairman(&c, 0, SESSION, Some(ALICE), 650).unwrap();
    }
    let (ra, rb) = (a.session_rows(), b.session_rows());
    assert_eq!(
        ra[0].state, rb[0].state,
        "the synced node holds what its peer holds"
    );
    assert_eq!(
        b.sessions_info()[0].participants,
        2,
        "bob's older departure dropped"
    );
    let back = imconf::core::persist::decode_session(&rb[0].state, 7, Global).unwrap();
    assert_eq!(
        back.subject.map(|s| s.text.to_vec()),
        Some(b"newer".to_vec())
    );
    assert_eq!(back.chairman.as_deref(), Some(&b"sip:bob@example.net"[..]));
}

/// Issue 17 (`dmq_replicas`): a subscription's replica holders are its owner's first `k`
/// successors in rendezvous order; the first is the `successor` should the owner leave, the
/// second should the first leave with it. `k` 0: every node but the owner.
#[test]
fn replica_holders_are_the_first_successors() {
    use imconf::core::cluster::{replica_holders, successor};
    let nodes: Vec<u64> = (1..=5).map(|i| i * 0x1111_2222_3333).collect();
    let mut held = [0usize; 5];
    for i in 0..2000 {
        let cid = format!("call-{i}");
        let owner = nodes[i % 5];
        let all = replica_holders(cid.as_bytes(), owner, &nodes, 0);
        assert_eq!(all.len(), 4);
        assert!(!all.contains(&owner));
        let two = replica_holders(cid.as_bytes(), owner, &nodes, 2);
        assert_eq!(two, all[..2], "the first two of the same order");
        let others: Vec<u64> = nodes.iter().copied().filter(|&n| n != owner).collect();
        assert_eq!(Some(two[0]), successor(cid.as_bytes(), &others));
        let without_first: Vec<u64> = others.iter().copied().filter(|&n| n != two[0]).collect();
        assert_eq!(Some(two[1]), successor(cid.as_bytes(), &without_first));
        for h in two {
            held[nodes.iter().position(|&n| n == h).unwrap()] += 1;
        }
    }
    // spread: each node holds about 2/5 of the 2000 (800), none far off
    assert!(held.iter().all(|&h| (650..950).contains(&h)), "{held:?}");
}

/// A partition healed (docs/cluster.md "Partitions"): each side changed the session on its
/// own; each merges the other's record and both end in the same state, the later change of a
/// user changed on both sides winning, and a side's subscriber hears of the other side's
/// changes.
#[test]
fn the_two_sides_of_a_partition_merge_their_sessions() {
    let c = unthrottled_cfg();
    let (mut a, mut b) = (node(), node());
    let out = a.subscribe(&c, 0, &alice_subscribe(b"c1", &ALICE_HEADERS), b"t1");
    a.notify_completed(&c, 0, out.notifies[0].token, 200);
    let carol: &[u8] = b"sip:carol@example.net";
    let dave: &[u8] = b"sip:dave@example.net";
    for (side, who, status, stamp) in [
        (0, carol, EndpointStatus::Connected, 100),
        (0, BOB, EndpointStatus::Alerting, 110),
        (1, dave, EndpointStatus::Connected, 105),
        (1, BOB, EndpointStatus::Connected, 120),
    ] {
        let n = if side == 0 { &mut a } else { &mut b };
        for x in n
            .participant_stamped(&c, 10, SESSION, &with_status(who, status), stamp)
            .unwrap()
        {
            n.notify_completed(&c, 10, x.token, 200);
        }
    }
    let (ra, rb) = (a.session_rows(), b.session_rows());
    let told = a.merge_session(&c, 20, &rb[0].state).unwrap();
    b.merge_session(&c, 20, &ra[0].state).unwrap();
    assert_eq!(told.len(), 1, "a's subscriber hears of b's side");
    let next = a.notify_completed(&c, 20, told[0].token, 200);
    let body = |n: &imconf::core::notifier::Notify| String::from_utf8_lossy(&n.body).into_owned();
    assert!(body(&told[0]).contains("dave"), "{}", body(&told[0]));
    assert!(
        body(&next[0]).contains("bob"),
        "R32: then the rest, coalesced"
    );
    // both hold the same users in the same states (the records may list them in other orders)
    let view = |n: &Notifier<Global>| {
        let s =
            imconf::core::persist::decode_session(&n.session_rows()[0].state, 9, Global).unwrap();
        let mut v: Vec<(Vec<u8>, String, u64)> = s
            .participants
            .iter()
            .map(|p| (p.aoia.to_vec(), format!("{:?}", p.status), p.stamp))
            .collect();
        v.sort();
        v
    };
    assert_eq!(view(&a), view(&b));
    assert!(
        view(&a).contains(&(
            BOB.to_vec(),
            format!("{:?}", EndpointStatus::Connected),
            120
        )),
        "the later change of bob wins on both sides"
    );
    // merging again changes nothing
    assert!(a.merge_session(&c, 30, &rb[0].state).unwrap().is_empty());
}

/// A node cut off from its cluster's majority holds every NOTIFY until released.
#[test]
fn a_fenced_node_notifies_nobody_until_released() {
    let c = unthrottled_cfg();
    let mut a = node();
    let out = a.subscribe(&c, 0, &alice_subscribe(b"c1", &ALICE_HEADERS), b"t1");
    a.notify_completed(&c, 0, out.notifies[0].token, 200);
    a.hold_all();
    assert!(a
        .participant_stamped(&c, 10, SESSION, &connected(BOB), 100)
        .unwrap()
        .is_empty());
    assert!(a.tick(&c, 5000).is_empty());
    a.release_restored(6000);
    let due = a.tick(&c, 6000);
    assert_eq!(due.len(), 1);
    assert!(String::from_utf8_lossy(&due[0].body).contains("bob"));
}
