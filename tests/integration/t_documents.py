"""Integration tests: subscriptions and documents (registered with @test; run by run.py)."""

from itest import *  # noqa: F401,F403


@test("event_id_echoed_in_every_notify", "R34 R41")
def t_event_id(ctx):
    """Event: conference;id=abc: the initial, a partial, the post-refresh and the final NOTIFY all
    carry Event: conference;id=abc (the trace checker also compares every NOTIFY's id with the
    SUBSCRIBE's, in every test)."""
    ctx.start_server()
    ctx.open_session()
    ctx.sipp("subscribe_event_id.xml", keys=ctx.keys(event_hdr="Event: conference;id=abc"))
    ctx.assert_subscriptions_empty("R28")


@test("two_dialogs_own_versions", "R35 R33")
def t_two_dialogs(ctx):
    """alice holds two subscriptions (two dialogs): the first is at version 2 when the second starts
    at 1; dave's connection is version 3 for the first and 2 for the second. Each keeps its own
    expiry (60 s and 30 s asked)."""
    ctx.start_server()
    ctx.open_session()
    first = ctx.sipp_start("subscribe_versions_first.xml", "first")
    ctx.wait_for("the first dialog at version 2",
                 lambda: [s for s in ctx.subscriptions() if str(s.get("version")) == "2"], timeout=8)
    ctx.sipp("subscribe_versions_second.xml", "second", keys=ctx.keys(expires_hdr="Expires: 30"))
    ctx.sipp_wait(first)
    subs = ctx.subscriptions()
    by = {}
    for s in subs:
        by["first" if "-first-" in field(s, "call_id") else "second"] = s
    expect(len(subs) == 2 and len(by) == 2 and all(field(s, "subscriber") == ALICE for s in subs),
           "R35: want alice's two subscriptions, got %s" % subs)
    expect(str(field(by["first"], "version")) == "3" and str(field(by["first"], "notifies_sent")) == "3",
           "R35: the first dialog should be at version 3 after 3 NOTIFYs: %s" % by["first"])
    expect(str(field(by["second"], "version")) == "2" and str(field(by["second"], "notifies_sent")) == "2",
           "R35: the second dialog should be at version 2 after 2 NOTIFYs: %s" % by["second"])
    e1, e2 = int(field(by["first"], "expires_in")), int(field(by["second"], "expires_in"))
    expect(30 < e1 <= 60 and 0 < e2 <= 30, "R35: own expiries (60 s and 30 s asked), got %s and %s" % (e1, e2))


@test("departure_reported_once", "R57 R27 R46")
def t_departure_once(ctx):
    """bob leaves: reported once as disconnected in a partial; the full document after a refresh no
    longer lists him, and neither does a later partial."""
    ctx.start_server()
    ctx.open_session()
    ctx.sipp("subscribe_leave_then_refresh.xml")


@test("overflow_full_keeps_departures", "R65 R57 R46")
def t_overflow(ctx):
    """max_pending_changes=1, interval 1000 ms: two changes inside one interval give a FULL document
    (next version) that lists bob as disconnected; one change later is a partial again."""
    ctx.start_server(timing={"MIN_NOTIFY_INTERVAL_MS": 1000}, modparams=[("imconf", "max_pending_changes", 1)])
    ctx.open_session()
    ctx.sipp("subscribe_overflow_full.xml")


PRIVACY_PARTICIPANTS = [
    # aoia, status, role, listed_uri, from_uri, privacy, nick
    (ALICE, "connected", "originator", "-", "sip:alice.from@127.0.0.1", "0", "AliceNick"),
    ("sip:orig-hidden@127.0.0.1", "connected", "originator", "-", "sip:anonymous@anonymous.invalid", "1",
     "OrigHiddenNick"),
    ("sip:+15550101@127.0.0.1", "connected", "invited", "sip:ivan@127.0.0.1", "-", "0", "IvanNick"),
    ("sip:inv-hidden@127.0.0.1", "connected", "invited", "sip:inv-hidden-listed@127.0.0.1", "-", "1", "InvHiddenNick"),
]


@test("privacy_entities_and_no_leak", "R73-R78")
def t_privacy(ctx):
    """Entities per §8 (AOIA / From URI / listed URI / anonymousN; a clashing From URI made unique),
    no display-text under privacy, stable anonymous numbers; and no byte of any NOTIFY received (retransmissions included) holds a
    private AOIA, listed URI or Nick Name."""
    ctx.start_server()
    ctx.open_session(participants=PRIVACY_PARTICIPANTS)
    run = ctx.sipp("subscribe_privacy.xml")
    notifies = received_notifies(run.paths["msg"])
    expect(len(notifies) == 6, "want 6 NOTIFYs (full, 4 partial, full), got %d" % len(notifies))
    secrets = [b"orig-hidden", b"orig2-hidden", b"inv-hidden", b"inv2-hidden", b"HiddenNick"]
    for direction, raw in parse_trace(run.paths["msg"]):
        if direction == "recv" and raw.startswith(b"NOTIFY"):
            leaked = [x.decode() for x in secrets if x.lower() in raw.lower()]
            expect(not leaked, "R78: a NOTIFY holds %s:\n%s" % (leaked, raw.decode("utf-8", "replace")))
    want = {ALICE: "connected", "sip:anonymous@anonymous.invalid": "connected", "sip:ivan@127.0.0.1": "connected",
            "sip:anonymous1@anonymous.invalid": "connected", "sip:anonymous2@anonymous.invalid": "alerting"}
    # R74: the second private joiner's From URI clashed: it has a generated anonymous entity of its own
    joiner = [e for e in notifies[4][1].get("users", {})]
    expect(len(joiner) == 1 and re.match(r"^sip:anonymous\d+@anonymous\.invalid$", joiner[0]) and joiner[0] not in want,
           "R74/R48: the second private user with From sip:anonymous@anonymous.invalid needs a generated entity "
           "nobody else has, got %s" % joiner)
    want[joiner[0]] = "connected"
    got = notifies[-1][1].get("users")
    expect(got == want, "R73-R77: the last full document should list exactly %s, got %s" % (want, got))
