//! Persistence through the notifier (issue 7): what `take_changes` reports after each kind of
//! change, and a notifier rebuilt from those rows carrying on where the first stopped, after a
//! graceful stop (the next change is a partial NOTIFY with the next version and CSeq) and after
//! a crash (full state, CSeq ahead).

use crate::common::{alice_subscribe, connected, unthrottled_cfg, ALICE, ALICE_HEADERS, SESSION};
use allocator_api2::alloc::Global;
use imconf::core::config::Config;
use imconf::core::notifier::{Changes, Consumer, Notifier, NotifyKind, RestoreError};

/// The write-back's change log (the cluster has one of its own).
const DB: Consumer = Consumer::Database;
use imconf::core::session::SessionKind;

const BOB: &[u8] = b"sip:bob@example.net";
const CAROL: &[u8] = b"sip:carol@example.net";
/// Wall clock minus the notifier's clock, in the first and in the restarted process.
const OFFSET_1: i64 = 1_700_000_000_000;
const OFFSET_2: i64 = 1_700_000_500_000;

fn cfg() -> Config {
    unthrottled_cfg()
}

fn version_of(body: &[u8]) -> u32 {
    imconf::core::conference_info::parse(body).unwrap().version
}

/// A notifier with SESSION (alice, bob) and alice subscribed, her initial NOTIFY answered.
fn running(enabled: bool) -> (Notifier<Global>, u64) {
    let mut n = Notifier::new_in(5, Global);
    if enabled {
        n.enable_changes(Consumer::Database);
    }
    let c = cfg();
    n.open_session(SESSION, SessionKind::AdHoc, None).unwrap();
    n.participant(&c, 0, SESSION, &connected(ALICE)).unwrap();
    n.participant(&c, 0, SESSION, &connected(BOB)).unwrap();
    let out = n.subscribe(&c, 0, &alice_subscribe(b"c1", &ALICE_HEADERS), b"t1");
    assert_eq!(out.reply.code, 200);
    let first = &out.notifies[0];
    assert!(n.notify_completed(&c, 0, first.token, 200).is_empty());
    (n, 0)
}

#[test]
fn nothing_is_recorded_without_persistence() {
    let (mut n, _) = running(false);
    assert!(n.take_changes(&cfg(), DB, OFFSET_1, false).is_empty());
    // `all` still gives the whole state (a first write of a freshly enabled store)
    let all = n.take_changes(&cfg(), DB, OFFSET_1, true);
    assert_eq!((all.sessions.len(), all.subs.len()), (1, 1));
}

#[test]
fn each_change_marks_its_rows() {
    let (mut n, now) = running(true);
    let c = cfg();
    let ch = n.take_changes(&cfg(), DB, OFFSET_1, false);
    assert!(!ch.overflow);
    assert_eq!(ch.sessions.len(), 1);
    assert_eq!(ch.sessions[0].uri, SESSION);
    assert_eq!(ch.sessions[0].kind, "ad-hoc");
    assert_eq!(ch.subs.len(), 1);
    let row = &ch.subs[0];
    assert_eq!(
        (row.call_id.as_slice(), row.local_tag.as_slice()),
        (&b"c1"[..], &b"t1"[..])
    );
    assert_eq!(row.session_uri, SESSION);
    assert_eq!(row.expires_wall_ms, 3_600_000u64 + OFFSET_1 as u64);
    // taken: nothing more until the next change
    assert!(n.take_changes(&cfg(), DB, OFFSET_1, false).is_empty());
    // a participant change: the session, and the subscription its NOTIFY updates
    let out = n.participant(&c, now, SESSION, &connected(CAROL)).unwrap();
    let ch = n.take_changes(&cfg(), DB, OFFSET_1, false);
    assert_eq!((ch.sessions.len(), ch.subs.len()), (1, 1));
    n.notify_completed(&c, now, out[0].token, 200);
    let ch = n.take_changes(&cfg(), DB, OFFSET_1, false);
    assert_eq!(
        (ch.sessions.len(), ch.subs.len()),
        (0, 1),
        "the 200 confirms it"
    );
    // a session released: its row and its subscriptions' rows go
    n.close_session(&c, now, SESSION).unwrap();
    let ch = n.take_changes(&cfg(), DB, OFFSET_1, false);
    assert_eq!(ch.gone_sessions, vec![SESSION.to_vec()]);
    assert_eq!(ch.gone_subs, vec![(b"c1".to_vec(), b"t1".to_vec())]);
    assert!(ch.sessions.is_empty() && ch.subs.is_empty());
}

fn restore(rows: &Changes, offset: i64, now: u64, crashed: bool) -> Notifier<Global> {
    let mut n = Notifier::new_in(9, Global);
    n.enable_changes(Consumer::Database);
    for s in &rows.sessions {
        let (uri, group) = n.restore_session(&s.state).unwrap();
        assert_eq!((uri, group), (s.uri.clone(), s.group.clone()));
    }
    for sub in &rows.subs {
        n.restore_subscription(now, &sub.state, offset, crashed)
            .unwrap();
    }
    n
}

#[test]
fn after_a_graceful_restart_the_next_change_is_the_next_partial() {
    let (mut n, now) = running(true);
    let c = cfg();
    let rows = n.take_changes(&cfg(), DB, OFFSET_1, true);
    assert_eq!(n.subscriptions_info(now, None)[0].version, 1);
    // the new process's clock reads 100 s (it started elsewhere: another wall offset)
    let now2 = 100_000;
    let mut m = restore(&rows, OFFSET_2, now2, false);
    assert!(
        m.tick(&c, now2).is_empty(),
        "nothing to send after a graceful stop"
    );
    let info = &m.subscriptions_info(now2, None)[0];
    assert_eq!(info.subscriber, String::from_utf8_lossy(ALICE));
    // the expiry is the same wall-clock instant: 3600 s after the first process's 0
    let want = (3_600_000 + OFFSET_1 - OFFSET_2 - now2 as i64) / 1000;
    assert_eq!(i64::from(info.expires_in), want);
    let out = m.participant(&c, now2, SESSION, &connected(CAROL)).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].kind, NotifyKind::Partial);
    assert_eq!(version_of(&out[0].body), 2, "the next version");
    assert_eq!(out[0].cseq, 2, "the next CSeq");
    assert_eq!(out[0].call_id, b"c1");
    assert_eq!(out[0].local_tag, b"t1");
}

#[test]
fn after_a_crash_the_restored_subscription_resyncs_in_full_with_cseq_ahead() {
    let (mut n, now) = running(true);
    let rows = n.take_changes(&cfg(), DB, OFFSET_1, true);
    let c = cfg();
    let mut m = restore(&rows, OFFSET_1, now, true);
    let out = m.tick(&c, now);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].kind, NotifyKind::Full);
    assert!(
        version_of(&out[0].body) > 1000,
        "R40: the version jumps too (issue 17, fix 2)"
    );
    assert!(
        out[0].cseq > 1000,
        "CSeq {} jumps past what may have been sent",
        out[0].cseq
    );
}

/// Issue 17, fix 2: killed a few ms after a NOTIFY, before that NOTIFY's state was written
/// back: the restored subscription's full document must have a version higher than the one the
/// subscriber holds (a strict RFC 4575 subscriber discards it otherwise and keeps a stale list).
/// The same after a takeover from a silent cluster peer, whose replica may be as old.
#[test]
fn after_a_crash_no_version_repeats_one_the_subscriber_holds() {
    for takeover in [false, true] {
        let (mut n, now) = running(true);
        let c = cfg();
        let rows = n.take_changes(&cfg(), DB, OFFSET_1, true); // written at version 1
                                                               // then a change: version 2 reaches the subscriber, and the process dies before the
                                                               // next write-back
        let out = n.participant(&c, now, SESSION, &connected(CAROL)).unwrap();
        let held = version_of(&out[0].body);
        assert_eq!(held, 2);
        let mut m = if takeover {
            let mut m = Notifier::new_in(9, Global);
            for s in &rows.sessions {
                m.restore_session(&s.state).unwrap();
            }
            m.take_over(now, &rows.subs[0].state, OFFSET_1, true)
                .unwrap();
            m
        } else {
            restore(&rows, OFFSET_1, now, true)
        };
        let out = m.tick(&c, now);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].kind, NotifyKind::Full);
        let v = version_of(&out[0].body);
        assert!(
            v > held,
            "takeover {takeover}: version {v} after the subscriber held {held} (R40, R33)"
        );
    }
}

#[test]
fn a_subscription_expired_while_down_ends_at_the_first_tick() {
    let (mut n, _) = running(true);
    let rows = n.take_changes(&cfg(), DB, OFFSET_1, true);
    let c = cfg();
    // the new process starts 2 hours later on the wall clock
    let later = 7_200_000;
    let mut m = restore(&rows, OFFSET_1, later, false);
    let out = m.tick(&c, later);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].kind, NotifyKind::Terminated);
    assert_eq!(m.subscription_count(), 0);
}

/// Issue 17, fix 1: restored expired, a change fed before the first tick (as a feeder does
/// right after a start) sends it only `terminated;reason=timeout`, never `active;expires=1`.
#[test]
fn a_subscription_expired_while_down_gets_no_active_notify_from_an_early_change() {
    for crashed in [false, true] {
        let (mut n, _) = running(true);
        let rows = n.take_changes(&cfg(), DB, OFFSET_1, true);
        let c = cfg();
        let later = 7_200_000;
        let mut m = restore(&rows, OFFSET_1, later, crashed);
        let out = m
            .participant(&c, later, SESSION, &connected(CAROL))
            .unwrap();
        assert_eq!(out.len(), 1, "crashed {crashed}");
        assert_eq!(out[0].kind, NotifyKind::Terminated, "crashed {crashed}");
        let headers = String::from_utf8_lossy(&out[0].headers).into_owned();
        assert!(
            headers.contains("Subscription-State: terminated;reason=timeout"),
            "{headers}"
        );
        assert_eq!(m.subscription_count(), 0);
        assert!(m.tick(&c, later + 100).is_empty());
    }
}

#[test]
fn rows_that_do_not_fit_are_refused() {
    let (mut n, now) = running(true);
    let rows = n.take_changes(&cfg(), DB, OFFSET_1, true);
    let mut m = Notifier::new_in(9, Global);
    // a subscription without its session
    assert_eq!(
        m.restore_subscription(now, &rows.subs[0].state, OFFSET_1, false),
        Err(RestoreError::NoSession)
    );
    m.restore_session(&rows.sessions[0].state).unwrap();
    assert_eq!(
        m.restore_session(&rows.sessions[0].state),
        Err(RestoreError::Duplicate)
    );
    m.restore_subscription(now, &rows.subs[0].state, OFFSET_1, false)
        .unwrap();
    assert_eq!(
        m.restore_subscription(now, &rows.subs[0].state, OFFSET_1, false),
        Err(RestoreError::Duplicate)
    );
    assert!(matches!(
        m.restore_session(b"garbage"),
        Err(RestoreError::Malformed(_))
    ));
    assert_eq!(m.subscription_count(), 1);
}
