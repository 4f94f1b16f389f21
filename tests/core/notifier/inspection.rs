//! The notifier: the listings of sessions and subscriptions (docs/conformance.md).
use super::*;

#[test]
fn sessions_and_subscriptions_info_describe_the_state() {
    let mut w = adhoc_with(cfg(), &[ANA, BOB]);
    w.open(GROUP_SESSION, SessionKind::Chat, Some(GROUP));
    w.leave(ADHOC, BOB);
    let (_, n) = w.subscribed(ADHOC, ANA, "c1");
    let mut s = w.n.sessions_info();
    s.sort_by(|a, b| a.uri.cmp(&b.uri));
    assert_eq!(s.len(), 2);
    assert_eq!(
        (s[0].uri.as_str(), s[0].participants, s[0].subscriptions),
        (ADHOC, 1, 1)
    );
    assert_eq!(s[1].group.as_deref(), Some(GROUP));
    let info = w.n.subscriptions_info(w.now + 1000, None);
    assert_eq!(info.len(), 1);
    let i = &info[0];
    assert_eq!((i.session.as_str(), i.subscriber.as_str()), (ADHOC, ANA));
    assert_eq!((i.expires_in, i.version, i.notifies_sent), (3599, 1, 1));
    assert!(i.notify_in_flight);
    w.complete(&n, 200);
    assert!(!w.n.subscriptions_info(w.now, None)[0].notify_in_flight);
    assert!(w
        .n
        .subscriptions_info(w.now, Some(b"sip:grp-session-7@im.example.net"))
        .is_empty());
}
