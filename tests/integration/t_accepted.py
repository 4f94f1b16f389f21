"""Integration tests: accepted subscriptions (registered with @test; run by run.py)."""

from itest import *  # noqa: F401,F403


@test("initial_subscribe_full_state", "R1-R6 R15-R21 R25 R33 R39-R51")
def t_initial(ctx):
    """Ad-hoc session, alice and bob connected; alice subscribes. SIPp checks the 200 and the
    initial NOTIFY header by header and the body; then the subscription is listed over RPC."""
    ctx.start_server()
    ctx.open_session()
    ctx.sipp("subscribe_initial.xml")
    subs = ctx.subscriptions()
    expect(len(subs) == 1, "R24: want exactly one subscription listed, got %s" % subs)
    s = subs[0]
    expect(field(s, "session") == SESSION, "R24: session %r, want %s" % (s.get("session"), SESSION))
    expect(field(s, "subscriber") == ALICE, "R24/R5: subscriber %r, want %s" % (s.get("subscriber"), ALICE))
    expect(ctx.name in field(s, "call_id"), "R24: call_id %r is not the SUBSCRIBE's" % s.get("call_id"))
    expect(str(field(s, "version")) == "1", "R33: version %r after the initial NOTIFY, want 1" % s.get("version"))
    expect(str(field(s, "notifies_sent")) == "1", "notifies_sent %r, want 1" % s.get("notifies_sent"))
    exp = int(field(s, "expires_in"))
    expect(0 < exp <= TIMING["MAX_EXPIRES"], "R19: expires_in %s, want 1..%s" % (exp, TIMING["MAX_EXPIRES"]))


@test("partial_notify_on_participant_change", "R26 R33 R51 R54 R55 R57 R59")
def t_partial(ctx):
    """carol alerting -> connected, bob disconnected, carol connected again (no change): one partial
    NOTIFY per change holding only the changed user, versions 2, 3, 4, and none for the no-op."""
    ctx.start_server()
    ctx.open_session()
    ctx.sipp("subscribe_partial.xml")
    subs = ctx.subscriptions()
    expect(len(subs) == 1 and str(field(subs[0], "version")) == "4",
           "R33: want one subscription at version 4 after 1 full + 3 partial NOTIFYs, got %s" % subs)


@test("coalesced_changes_one_partial", "R61 R62 R63")
def t_coalesce(ctx):
    """Two participant changes right after the initial NOTIFY come as ONE partial NOTIFY, no sooner
    than the interval after the initial one. This test runs with min_notify_interval_ms=1000 (the
    scenario checks >= 900 ms), so that the two RPCs land inside the interval even on a busy host."""
    ctx.start_server(timing={"MIN_NOTIFY_INTERVAL_MS": 1000})
    ctx.open_session()
    ctx.sipp("subscribe_coalesce.xml")


@test("refresh_gets_full_state", "R27 R33 R46")
def t_refresh(ctx):
    ctx.start_server()
    ctx.open_session()
    ctx.sipp("subscribe_refresh.xml")
    subs = ctx.subscriptions()
    expect(len(subs) == 1, "want the refreshed subscription listed, got %s" % subs)
    exp = int(field(subs[0], "expires_in"))
    expect(0 < exp <= 30, "R27: expires_in %s after a refresh for 30 s" % exp)


@test("unsubscribe_expires_zero", "R28")
def t_unsubscribe(ctx):
    ctx.start_server()
    ctx.open_session()
    ctx.sipp("subscribe_unsubscribe.xml")
    ctx.assert_no_subscription(ctx.name, "R28: the record is deleted after the final NOTIFY")


@test("fetch_initial_expires_zero", "R29")
def t_fetch(ctx):
    ctx.start_server()
    ctx.open_session()
    ctx.sipp("subscribe_fetch.xml")
    ctx.assert_no_subscription(ctx.name, "R29: a fetch keeps no subscription")


@test("expiry_sends_timeout_without_body", "R12 R30 R42 R43")
def t_expiry(ctx):
    """Expires: 2 (= min_expires) and no refresh: NOTIFY terminated;reason=timeout, no body."""
    ctx.start_server()
    ctx.open_session()
    ctx.sipp("subscribe_expiry.xml")
    ctx.assert_no_subscription(ctx.name, "R30: the record is deleted at expiry")


@test("record_route_route_set", "R20 R24 R39")
def t_record_route(ctx):
    ctx.start_server()
    ctx.open_session()
    ctx.sipp("subscribe_record_route.xml")


@test("accept_contact_variants_accepted", "R4")
def t_accept_contact_variants(ctx):
    """The feature tag counts in the compact form, in any case, among several values, with the
    value TRUE, and in a second Accept-Contact line."""
    ctx.start_server()
    ctx.open_session()
    variants = [
        ("compact", "a: *;+g.oma.sip-im", "X-Imconf-Test: compact"),
        ("upper-case", "Accept-Contact: *;+G.OMA.SIP-IM", "X-Imconf-Test: upper"),
        ("comma-list", "Accept-Contact: *;+g.3gpp.smsip, *;+g.oma.sip-im;explicit", "X-Imconf-Test: list"),
        ("value-true", 'Accept-Contact: *;+g.oma.sip-im="TRUE"', "X-Imconf-Test: true"),
        ("second-line", "Accept-Contact: *;+g.oma.sip-im.large-message", "Accept-Contact: *;+g.oma.sip-im"),
    ]
    for label, ac, extra in variants:
        ctx.sipp("subscribe_unsubscribe.xml", "variant-" + label,
                 keys=ctx.keys(accept_contact_hdr=ac, extra_hdr=extra))
    ctx.assert_no_subscription(ctx.name, "R28")


@test("retransmitted_subscribe_same_answer", "R22")
def t_retransmission(ctx):
    """Python UAC: one SUBSCRIBE sent three times with the same branch gets the same 200 (same
    To-tag) each time it is answered, one initial NOTIFY, and one subscription."""
    ctx.start_server()
    ctx.open_session()
    call_id = "%s-uac@127.0.0.1" % ctx.name
    trace = ctx.rundir / "uac-retransmission.msg"
    res = uac.subscribe_retransmitted(ctx.server.port, SPORTS.take(), call_id, str(trace), ruri=SESSION,
                                      subscriber=ALICE)
    ctx.note("uac result: %s" % res)
    codes = [c for c, _ in res["responses"] if c >= 200]
    tags = {t for c, t in res["responses"] if c >= 200}
    expect(codes and all(c == 200 for c in codes), "R22: every final answer is 200, got %s" % res["responses"])
    expect(len(codes) >= 2, "R22: the retransmission after the 200 must get the 200 again, got %s" % res["responses"])
    expect(len(tags) == 1, "R22: the same transaction must get the same answer, To-tags %s" % tags)
    initial = [n for n in res["notifies"] if (n[2] or "").startswith("active")]
    expect(len(initial) == 1, "R22: one initial NOTIFY, got %d: %s" % (len(initial), res["notifies"]))
    problems = check_trace(str(trace), ctx.server.server_contact)
    expect(not problems, "trace check:\n  - " + "\n  - ".join(problems))
    subs = [s for s in ctx.subscriptions() if call_id in str(s)]
    expect(len(subs) == 1, "R22: want one subscription for %s, got %s" % (call_id, subs))
    if not ctx.opts.standin:
        # issue 18: absorbed by imconf from the subscription, not by a tm transaction
        stats = ctx.rpc_ok("imconf.stats").structs()[0]
        expect(int(stats["subscribe_retransmissions"]) >= 1, "no retransmission counted: %s" % stats)


@test("too_many_headers_gets_400", "R14", standin="skip")
def t_too_many_headers(ctx):
    """A SUBSCRIBE with 300 extra header fields (more than the module's view holds, so a check
    could miss the one it needs) is answered 400 and creates nothing; the server keeps serving."""
    import socket
    ctx.start_server()
    ctx.open_session()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", SPORTS.take()))
    sock.settimeout(5)
    try:
        extra = "".join("X-Filler-%d: v\r\n" % i for i in range(300))
        msg = ("SUBSCRIBE %s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-many-1\r\n"
               "From: <%s>;tag=many1\r\nTo: <%s>\r\nCall-ID: %s-many@127.0.0.1\r\nCSeq: 1 SUBSCRIBE\r\n"
               "Contact: <sip:alice@127.0.0.1:%d>\r\nMax-Forwards: 70\r\n%s"
               "Event: conference\r\nAccept-Contact: *;+g.oma.sip-im\r\nP-Asserted-Identity: <%s>\r\n"
               "Expires: 600\r\nContent-Length: 0\r\n\r\n") % (
                   SESSION, sock.getsockname()[1], ALICE, SESSION, ctx.name, sock.getsockname()[1], extra, ALICE)
        sock.sendto(msg.encode(), ("127.0.0.1", ctx.server.port))
        first_line = sock.recvfrom(65535)[0].decode("utf-8", "replace").split("\r\n")[0]
    finally:
        sock.close()
    expect(first_line == "SIP/2.0 400 Bad Request", "R14: want 400 Bad Request, got %r" % first_line)
    expect(not ctx.subscriptions(), "R14: no subscription may be created")
    ctx.sipp("subscribe_fetch.xml", "normal-after-many")
