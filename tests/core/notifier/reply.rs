//! The notifier: R15-R23: the 2xx to an initial SUBSCRIBE (docs/conformance.md).
use super::*;

#[test]
fn r15_to_r21_ok_reply_headers_for_an_adhoc_session() {
    let mut w = adhoc_with(cfg(), &[ANA]);
    let out = w.subscribe_as(&Req::initial(ADHOC, ANA, "c1"), "t1");
    let r = &out.reply;
    assert_eq!((r.code, r.reason), (200, "OK")); // R15: never 202
    let h = &r.headers;
    assert_eq!(
        header(h, "Contact").as_deref(),
        Some("<sip:imconf@127.0.0.1>")
    ); // R16
    assert_eq!(
        header(h, "P-Asserted-Identity").as_deref(),
        Some("<sip:factory@127.0.0.1>")
    ); // R17 (a)
    assert_eq!(header(h, "Supported").as_deref(), Some("norefersub")); // R18
    assert_eq!(header(h, "Expires").as_deref(), Some("3600")); // R19
    assert_eq!(header(h, "Allow-Events").as_deref(), Some("conference")); // R21
    assert_eq!(header(h, "Content-Type"), None); // R21: no body
}

#[test]
fn r17_group_kinds_assert_the_group_identity() {
    for kind in [
        SessionKind::PreDefined,
        SessionKind::Chat,
        SessionKind::RestrictedChat,
    ] {
        let mut w = World::new(cfg());
        w.open(GROUP_SESSION, kind, Some(GROUP));
        w.join(GROUP_SESSION, ANA);
        let out = w.subscribe_as(&Req::initial(GROUP_SESSION, ANA, "c1"), "t1");
        assert_eq!(out.reply.code, 200);
        assert_eq!(
            header(&out.reply.headers, "P-Asserted-Identity").as_deref(),
            Some("<sip:hiking-team@im.example.net>"),
            "{kind:?}"
        );
    }
    let mut w = World::new(cfg());
    w.open(ADHOC, SessionKind::OneToOne, None);
    w.join(ADHOC, ANA);
    let out = w.subscribe_as(&Req::initial(ADHOC, ANA, "c1"), "t1");
    assert_eq!(
        header(&out.reply.headers, "P-Asserted-Identity").as_deref(),
        Some("<sip:factory@127.0.0.1>")
    );
}

#[test]
fn r17_identity_header_name_is_configurable() {
    let mut w = adhoc_with(
        Config {
            assert_identity_header: "P-Preferred-Identity".into(),
            ..cfg()
        },
        &[ANA],
    );
    let out = w.subscribe_as(&Req::initial(ADHOC, ANA, "c1"), "t1");
    assert_eq!(
        header(&out.reply.headers, "P-Preferred-Identity").as_deref(),
        Some("<sip:factory@127.0.0.1>")
    );
    assert_eq!(header(&out.reply.headers, "P-Asserted-Identity"), None);
}

#[test]
fn r19_expires_is_capped_at_the_maximum_and_defaults_when_absent() {
    let mut w = adhoc_with(
        Config {
            default_expires: 1800,
            ..cfg()
        },
        &[ANA],
    );
    let cases = [
        (Some("4294967295"), "3600"),
        (Some("99999999999"), "3600"),
        (Some("3601"), "3600"),
        (Some("120"), "120"),
        (None, "1800"),
    ];
    for (i, (asked, granted)) in cases.into_iter().enumerate() {
        let call = format!("c{i}");
        let mut req = Req::initial(ADHOC, ANA, &call).without("Expires");
        if let Some(e) = asked {
            req = req.with("Expires", e);
        }
        // One user may hold 4 subscriptions (R7): end each before the next.
        let out = w.subscribe_as(&req, &call);
        assert_eq!(out.reply.code, 200);
        assert_eq!(
            header(&out.reply.headers, "Expires").as_deref(),
            Some(granted),
            "{asked:?}"
        );
        let n = only(out.notifies);
        assert_eq!(sub_state(&n), format!("active;expires={granted}"));
        let info = w.n.subscriptions_info(w.now, None);
        let s = info.iter().find(|s| s.call_id == call).unwrap();
        assert_eq!(s.expires_in.to_string(), granted);
        w.complete(&n, 200);
        let mut d = Dialog {
            req,
            local_tag: call.clone(),
        };
        assert_eq!(w.resubscribe(&mut d, "0").reply.code, 200);
    }
}
