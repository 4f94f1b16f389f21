//! Persistence records (issue 7): a session and a subscription survive encode -> decode whole,
//! the process-only state of a subscription does not, and no byte string makes decoding panic.
use allocator_api2::alloc::Global;
use allocator_api2::vec::Vec as AVec;
use imconf::core::conference_info::{DisconnectionMethod, EndpointStatus};
use imconf::core::persist::{
    decode_session, decode_subscription, encode_session, encode_subscription, DecodeError,
};
use imconf::core::profile::Profile;
use imconf::core::session::{ParticipantUpdate, Role, Session, SessionKind};
use imconf::core::subscription::{
    Beliefs, Dialog, Seen, Subscription, SubscriptionStrings, Termination,
};
use proptest::prelude::*;

const SEED: u64 = 11;

/// A chat session with every kind of participant record.
fn session() -> Session<Global> {
    let mut s = Session::try_new(
        b"sip:chat-9@im.example.net",
        SessionKind::Chat,
        Some(b"sip:friends@im.example.net"),
        SEED,
        Global,
    )
    .unwrap();
    s.max_user_count = Some(20);
    let updates = [
        ParticipantUpdate {
            role: Role::Originator,
            nick: Some(b"Ana"),
            contact: Some(b"<sip:ana@192.0.2.1;gr=x>"),
            when_ms: Some(1_796_601_600_000), // R95: when she joined
            ..ParticipantUpdate::new(b"sip:ana@example.net", EndpointStatus::Connected)
        },
        ParticipantUpdate {
            role: Role::Invited,
            privacy: true,
            ..ParticipantUpdate::new(b"sip:raj@example.net", EndpointStatus::Alerting)
        },
        ParticipantUpdate {
            role: Role::Invited,
            ..ParticipantUpdate::new(b"sip:omar@example.net", EndpointStatus::Alerting)
        },
        ParticipantUpdate {
            role: Role::Invited,
            disconnection_method: Some(DisconnectionMethod::Failed),
            disconnection_reason: Some(b"603 Decline"),
            when_ms: Some(1_796_601_605_000), // R95: when he declined
            ..ParticipantUpdate::new(b"sip:omar@example.net", EndpointStatus::Disconnected)
        },
        ParticipantUpdate::new(b"sip:lee@example.net", EndpointStatus::DialingOut),
    ];
    for u in &updates {
        s.apply(u, Global).unwrap();
    }
    s
}

/// What the stored subscription believes of the session's participants (R24 `seen_users`).
fn told() -> Vec<Seen> {
    vec![
        Seen {
            status: Some(EndpointStatus::Connected),
            nick_tag: 7,
            endpoint_tag: 9,
            departure_tag: 0,
            delete_pending: false,
        },
        Seen::default(),
        Seen {
            status: Some(EndpointStatus::Disconnected),
            departure_tag: 3,
            delete_pending: true,
            ..Seen::default()
        },
    ]
}

/// `told()` as a restored subscription's beliefs: the participants believed anything of.
fn told_beliefs() -> Vec<(u32, Seen)> {
    let t = told();
    vec![(0, t[0]), (2, t[2])]
}

fn subscription(id: u32) -> Subscription<Global> {
    let strings = SubscriptionStrings {
        session: b"sip:chat-9@im.example.net",
        subscriber: b"sip:ana@example.net",
        asserted: b"sip:ana@example.net;user=phone",
        call_id: b"c-1@192.0.2.1",
        local_tag: b"i3f-0011223344556677",
        remote_tag: b"ft-1",
        local_uri: b"sip:chat-9@im.example.net",
        remote_uri: b"sip:ana@example.net",
        remote_target: b"sip:ana@192.0.2.1:5060",
        route_set: b"<sip:p1.example.net;lr>,<sip:p2.example.net;lr>",
        socket: b"udp:192.0.2.100:5060",
        event_id: Some(b"42"),
    };
    Subscription {
        id,
        anonymous: true,
        dialog: Dialog::try_new(&strings, AVec::new_in(Global), 5, 17).unwrap(),
        expires_at: 5_000_000,
        version: 12,
        beliefs: Beliefs::new_in(Global),
        dirty: true,
        needs_full: false,
        terminate: Some(Termination::NoResource),
        in_flight: None,
        holds_place: false,
        held_since: Some(4_000_000),
        waiting: true,
        queued: true,
        last_notify_at: Some(4_100_000),
        notifies_sent: 12,
        unsent: 2,
        profile: Profile::Rcs,
        seen_description: 0,
        told_mark: imconf::core::history::NEVER,
        claimed_at: 4_100_000,
        awaiting_peers: true,
    }
}

fn session_bytes(s: &Session<Global>) -> Vec<u8> {
    let mut out = Vec::new();
    encode_session(s, &mut out);
    out
}

fn sub_bytes(s: &Subscription<Global>, offset: i64) -> Vec<u8> {
    let mut out = Vec::new();
    encode_subscription(s, &told(), offset, &mut out);
    out
}

#[test]
fn session_round_trips_with_every_participant_field() {
    let s = session();
    let back = decode_session(&session_bytes(&s), SEED, Global).unwrap();
    assert_eq!(back.uri, s.uri);
    assert_eq!(back.kind, SessionKind::Chat);
    assert_eq!(back.group, s.group);
    assert_eq!(back.max_user_count, Some(20));
    assert_eq!(back.participants.len(), 4);
    for (a, b) in s.participants.iter().zip(back.participants.iter()) {
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }
    assert_eq!(back.participants[0].joined_ms, 1_796_601_600_000);
    assert_eq!(back.participants[2].left_ms, 1_796_601_605_000);
    assert!(
        back.subs.is_empty(),
        "subscriptions are records of their own"
    );
    // R76: the anonymous numbering goes on where it was, so entities stay unique
    let kim = ParticipantUpdate {
        role: Role::Invited,
        privacy: true,
        ..ParticipantUpdate::new(b"sip:kim@example.net", EndpointStatus::Alerting)
    };
    let mut s2 = back;
    s2.apply(&kim, Global).unwrap();
    let mut orig = session();
    orig.apply(&kim, Global).unwrap();
    assert_eq!(s2.participants[4].entity, orig.participants[4].entity);
}

#[test]
fn session_without_group_or_maximum_round_trips() {
    let s = Session::try_new(
        b"sip:adhoc@im.example.net",
        SessionKind::AdHoc,
        None,
        SEED,
        Global,
    )
    .unwrap();
    let back = decode_session(&session_bytes(&s), SEED, Global).unwrap();
    assert_eq!(back.group, None);
    assert_eq!(back.max_user_count, None);
    assert!(back.participants.is_empty());
}

#[test]
fn subscription_round_trips_and_comes_back_idle() {
    let s = subscription(3);
    // written by a process whose clock is 1000 s behind the wall clock, read by one 5000 s behind
    let back = decode_subscription(
        &sub_bytes(&s, 1_000_000),
        77,
        5_000_000,
        Profile::Oma,
        Global,
    )
    .unwrap();
    assert_eq!(back.id, 77, "ids belong to the process");
    assert_eq!(back.expires_at, s.expires_at + 1_000_000 - 5_000_000);
    assert_eq!(back.session(), s.session());
    assert_eq!(back.subscriber(), s.subscriber());
    assert_eq!(back.asserted(), s.asserted());
    assert!(back.anonymous);
    assert_eq!(format!("{:?}", back.dialog), format!("{:?}", s.dialog));
    assert_eq!(back.version, 12);
    assert_eq!(back.beliefs.as_slice(), told_beliefs());
    assert!(back.dirty);
    assert!(!back.needs_full);
    assert_eq!(back.terminate, Some(Termination::NoResource));
    assert_eq!(back.notifies_sent, 12);
    assert_eq!(back.in_flight, None);
    assert_eq!(back.held_since, None);
    assert!(!back.waiting);
    assert_eq!(back.last_notify_at, None);
    // issue 17: the claim is wall-clock time in the record, the reader's clock in memory
    assert_eq!(back.claimed_at, s.claimed_at + 1_000_000 - 5_000_000);
    assert!(
        !back.awaiting_peers,
        "a hold belongs to the run that restored it"
    );
}

#[test]
fn subscription_with_a_notify_in_flight_resyncs_in_full() {
    let mut s = subscription(3);
    s.in_flight = Some(17);
    let back = decode_subscription(&sub_bytes(&s, 0), 1, 0, Profile::Oma, Global).unwrap();
    assert!(
        back.needs_full,
        "the NOTIFY in flight may never have arrived"
    );
    assert_eq!(back.dialog.local_cseq, 17, "CSeq goes on (R40)");
}

/// `subscription(3)` with a NOTIFY in flight, as written by the build before a subscription's
/// strings were packed into one block: the record format did not change with it.
const RECORD_BEFORE_PACKING: &[&str] = &[
    "0144190000007369703a636861742d3940696d2e6578616d706c652e6e6574130000007369703a616e614065",
    "78616d706c652e6e65741e0000007369703a616e61406578616d706c652e6e65743b757365723d70686f6e65",
    "010d000000632d31403139322e302e322e31140000006933662d303031313232333334343535363637370400",
    "000066742d31190000007369703a636861742d3940696d2e6578616d706c652e6e6574130000007369703a61",
    "6e61406578616d706c652e6e6574160000007369703a616e61403139322e302e322e313a353036302f000000",
    "3c7369703a70312e6578616d706c652e6e65743b6c723e2c3c7369703a70322e6578616d706c652e6e65743b",
    "6c723e140000007564703a3139322e302e322e3130303a35303630010200000034320500000011000000808d",
    "5b00000000000c000000010003010c0000000000000003000000010700000009000000000000000000000000",
    "000000000000000000000200000000000000000300000001",
];

#[test]
fn records_written_before_the_strings_were_packed_read_the_same() {
    let hex: String = RECORD_BEFORE_PACKING.concat();
    let old: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let mut s = subscription(3);
    s.in_flight = Some(17);
    let claim = (s.claimed_at + 1_000_000).to_le_bytes();
    assert_eq!(
        sub_bytes(&s, 1_000_000),
        [&old[..], &[Profile::Rcs.code()], &claim[..]].concat(),
        "written byte for byte as before, the profile (R94) and the claim (issue 17) appended"
    );
    // a record from before claims reads as claimed at time 0: older than any claim
    let with_profile = [&old[..], &[Profile::Rcs.code()]].concat();
    let back = decode_subscription(&with_profile, 3, 0, Profile::Oma, Global).unwrap();
    assert_eq!((back.profile, back.claimed_at), (Profile::Rcs, 0));
    // a record from before profiles gets the profile the caller gives (the configured default)
    let back = decode_subscription(&old, 3, 1_000_000, Profile::Rfc4575, Global).unwrap();
    assert_eq!(back.profile, Profile::Rfc4575);
    assert_eq!(format!("{:?}", back.dialog), format!("{:?}", s.dialog));
    assert_eq!(
        (back.session(), back.subscriber(), back.asserted()),
        (s.session(), s.subscriber(), s.asserted())
    );
    assert_eq!(back.dialog.event_id(), Some(&b"42"[..]));
    assert_eq!(back.dialog.route_set(), s.dialog.route_set());
    assert_eq!(back.beliefs.as_slice(), told_beliefs());
    assert!(back.needs_full, "its NOTIFY was in flight");
}

#[test]
fn records_are_refused_not_misread() {
    let good = session_bytes(&session());
    let sub = sub_bytes(&subscription(1), 0);
    // the other kind of record
    assert!(matches!(
        decode_session(&sub, SEED, Global),
        Err(DecodeError::Malformed(_))
    ));
    assert!(matches!(
        decode_subscription(&good, 1, 0, Profile::Oma, Global),
        Err(DecodeError::Malformed(_))
    ));
    // another format
    let mut other = good.clone();
    other[0] = 2;
    assert!(decode_session(&other, SEED, Global).is_err());
    // every truncation, and a trailing byte; cut right before the participants' times (R95),
    // it is a record written before them, and loads without them
    // (and cut before the subject and chairman, it is one written before those; cut before
    // the stamps, one written before issue 17)
    let session = session();
    let before_stamps = good.len() - 8 * session.participants.len() - 16;
    let before_subject = before_stamps - 11; // no subject, no chairman: 1 + 1 + 8 + 1 bytes
    let before_times = before_subject - 16 * session.participants.len();
    let cuts = [before_times, before_subject, before_stamps];
    for n in (0..good.len()).filter(|n| !cuts.contains(n)) {
        assert!(decode_session(&good[..n], SEED, Global).is_err(), "{n}");
    }
    let old = decode_session(&good[..before_stamps], SEED, Global).unwrap();
    assert!(old.participants.iter().all(|p| p.stamp == 0));
    let old = decode_session(&good[..before_times], SEED, Global).unwrap();
    assert!(old
        .participants
        .iter()
        .all(|p| p.joined_ms == 0 && p.left_ms == 0));
    let old = decode_session(&good[..before_subject], SEED, Global).unwrap();
    assert!(old.subject.is_none() && old.chairman.is_none());
    // cut before the profile, a record is one written before profiles (R94); cut before the
    // claim (8 bytes, issue 17), one written before claims
    let (before_claim, before_profile) = (sub.len() - 8, sub.len() - 9);
    for n in (0..sub.len()).filter(|n| ![before_profile, before_claim].contains(n)) {
        assert!(
            decode_subscription(&sub[..n], 1, 0, Profile::Oma, Global).is_err(),
            "{n}"
        );
    }
    let before_profiles = decode_subscription(&sub[..before_profile], 1, 0, Profile::Oma, Global);
    assert_eq!(before_profiles.unwrap().profile, Profile::Oma);
    let before_claims = decode_subscription(&sub[..before_claim], 1, 0, Profile::Oma, Global);
    assert_eq!(before_claims.unwrap().claimed_at, 0);
    assert_eq!(
        decode_subscription(&sub, 1, 0, Profile::Oma, Global)
            .unwrap()
            .profile,
        Profile::Rcs
    );
    let mut unknown_profile = sub[..before_claim].to_vec();
    *unknown_profile.last_mut().unwrap() = 9;
    assert!(matches!(
        decode_subscription(&unknown_profile, 1, 0, Profile::Oma, Global),
        Err(DecodeError::Malformed("profile"))
    ));
    let mut long = good.clone();
    long.push(0);
    assert!(decode_session(&long, SEED, Global).is_err());
}

#[test]
fn a_huge_count_is_refused_before_anything_is_reserved() {
    let s = Session::try_new(b"sip:x@h", SessionKind::AdHoc, None, SEED, Global).unwrap();
    let mut bytes = session_bytes(&s);
    let n = bytes.len();
    // the participant count, before the R95 fields of a session without subject or chairman
    // (two absent strings, a u64 time, one absent string) and the two session stamps
    let count = n - 16 - 11 - 4;
    bytes[count..count + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        decode_session(&bytes, SEED, Global).err(),
        Some(DecodeError::Malformed("participant count"))
    );
}

proptest! {
    #[test]
    fn decoding_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_session(&bytes, SEED, Global);
        let _ = decode_subscription(&bytes, 1, 0, Profile::Oma, Global);
    }

    #[test]
    fn decoding_damaged_records_never_panics(i in 0usize..400, v in any::<u8>()) {
        for mut bytes in [session_bytes(&session()), sub_bytes(&subscription(1), 0)] {
            let i = i % bytes.len();
            bytes[i] = v;
            let _ = decode_session(&bytes, SEED, Global);
            let _ = decode_subscription(&bytes, 1, 0, Profile::Oma, Global);
        }
    }
}
