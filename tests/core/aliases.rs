//! R3 across hash slots: the module keeps one notifier per slot, so a group identity may hash to
//! another notifier than its session; an alias there points SUBSCRIBEs at the session.
use allocator_api2::alloc::Global;
use imconf::core::notifier::Notifier;
use imconf::core::session::SessionKind;

const SESSION: &[u8] = b"sip:s9@im.example.net";
const GROUP: &[u8] = b"sip:hiking-team@im.example.net";

#[test]
fn r3_group_identity_resolves_to_a_session_in_another_notifier() {
    let mut home = Notifier::new_in(1, Global);
    let mut other = Notifier::new_in(1, Global);
    home.open_session(SESSION, SessionKind::PreDefined, Some(GROUP))
        .unwrap();
    assert_eq!(home.group_of(SESSION).as_deref(), Some(GROUP));
    other.add_alias(GROUP, SESSION).unwrap();
    // URI parameters and host case do not matter (R2)
    assert_eq!(
        other
            .resolve(b"sip:hiking-team@IM.example.net;transport=udp")
            .as_deref(),
        Some(SESSION)
    );
    // served where it is: no redirection for the session itself or unknown URIs
    assert_eq!(home.resolve(SESSION), None);
    assert_eq!(other.resolve(b"sip:nobody@im.example.net"), None);
    // an alias of another session is kept; the right one is removed
    other.remove_alias(GROUP, b"sip:s10@im.example.net");
    assert!(other.resolve(GROUP).is_some());
    other.remove_alias(GROUP, SESSION);
    assert_eq!(other.resolve(GROUP), None);
}
