"""Integration tests: validation order (R1-R14, docs/conformance.md) (registered with @test; run by run.py)."""

from itest import *  # noqa: F401,F403


UNKNOWN_URI = "sip:nosuch@127.0.0.1"


MALLORY = "sip:mallory@127.0.0.1"


ORDER_SESSION, ORDER_GROUP = "sip:conf-grp-order@127.0.0.1", "sip:grp-order@127.0.0.1"


NO_AC, NO_PAI = "X-Omitted: Accept-Contact", "X-Omitted: P-Asserted-Identity"


PIDF, SHORT, PRESENCE, STALE = "Accept: application/pidf+xml", "Expires: 1", "Event: presence", ";tag=no-such-dialog"


AS_MALLORY = {"subscriber": MALLORY, "subscriber_user": "mallory", "pai_hdr": "P-Asserted-Identity: <%s>" % MALLORY}


def later(*steps):
    """The defects of the pipeline steps after the one under test (R1-R14, docs/conformance.md: P1 Event, P2 dialog,
    P3 exists, P4 Accept-Contact, P5 identity/authorization, P6 group policy, P7 Accept, P8 Expires),
    so that a row shows which check comes FIRST, not only that each check exists."""
    defects = {"P2": {"to_tag_param": STALE}, "P3": {"ruri": UNKNOWN_URI}, "P4": {"accept_contact_hdr": NO_AC},
               "P5": {"pai_hdr": NO_PAI}, "P7": {"accept_hdr": PIDF}, "P8": {"expires_hdr": SHORT}}
    out = {}
    for s in steps:
        out.update(defects[s])
    return out


# (row, scenario, keys): the first failing check decides; the SIPp scenario checks the status line
# (reason phrase included), no Warning, no body, the To-tag, and Allow-Events (489) / Min-Expires (423)
ORDER_ROWS = [
    ("P1 Event: presence to a valid session", "reject_489.xml", {"event_hdr": PRESENCE}),
    ("P1 Event: presence with every later defect", "reject_489.xml",
     dict(later("P2", "P3", "P4", "P5", "P7", "P8"), event_hdr=PRESENCE)),
    ("P2 unknown dialog with every later defect", "reject_481.xml", later("P2", "P3", "P4", "P5", "P7", "P8")),
    ("P3 unknown URI, no Accept-Contact", "reject_404.xml", later("P3", "P4")),
    ("P3 unknown URI with every later defect", "reject_404.xml", later("P3", "P4", "P5", "P7", "P8")),
    ("P4 valid session, no feature tag", "reject_403.xml", later("P4")),
    ("P4 no feature tag with every later defect", "reject_403.xml", later("P4", "P5", "P7", "P8")),
    ("P5 tag present, no P-Asserted-Identity", "reject_403.xml", later("P5")),
    ("P5 no P-Asserted-Identity, Accept pidf, Expires 1", "reject_403.xml", later("P5", "P7", "P8")),
    ("P5/R6 ad-hoc, not a participant, Accept pidf, Expires 1", "reject_403.xml", dict(later("P7", "P8"), **AS_MALLORY)),
    ("P6/R8 group identity, not a participant", "reject_403.xml",
     dict(AS_MALLORY, ruri=ORDER_GROUP, session=ORDER_SESSION)),
    ("P6/R8 group session identity, not a participant, Accept pidf, Expires 1", "reject_403.xml",
     dict(later("P7", "P8"), ruri=ORDER_SESSION, session=ORDER_SESSION, **AS_MALLORY)),
    ("P7 Accept pidf", "reject_406.xml", later("P7")),
    ("P7 Accept pidf and Expires 1", "reject_406.xml", later("P7", "P8")),
    ("P8 Expires 1 (min_expires 2): 423 + Min-Expires: 2", "reject_423.xml", later("P8")),
    ("R14 Expires: soon", "reject_400.xml", {"expires_hdr": "Expires: soon"}),
    ("R14 Expires: 12abc", "reject_400.xml", {"expires_hdr": "Expires: 12abc"}),
    ("R14 Expires: -1", "reject_400.xml", {"expires_hdr": "Expires: -1"}),
]


@test("validation_order_matrix", "R1-R14 (§2 P1-P9)")
def t_order_matrix(ctx):
    """R1-R14 (docs/conformance.md) row by row, each row with its own defect plus the defects of every later step (so
    the row shows the ORDER), and after EACH rejection imconf.subscriptions is empty: no state
    before P9. Then the all-pass row (200 + full NOTIFY), and R13's lower CSeq in a live dialog
    (500, the dialog survives, nothing refreshed)."""
    ctx.start_server()
    ctx.open_session()
    ctx.open_session(participants=((ALICE, "connected"),), uri=ORDER_SESSION, kind="pre-defined", group=ORDER_GROUP)
    for i, (row, scenario, over) in enumerate(ORDER_ROWS):
        ctx.note("row %d: %s" % (i, row))
        ctx.sipp(scenario, "row%02d" % i, keys=ctx.keys(**over))
        ctx.assert_subscriptions_empty("P9 (row %r): a rejected SUBSCRIBE creates no state" % row)
    # all checks pass: 200, full NOTIFY (then the scenario unsubscribes)
    ctx.sipp("subscribe_unsubscribe.xml", "all-pass")
    ctx.assert_subscriptions_empty("R28 (all-pass row unsubscribed)")
    # R13: in-dialog SUBSCRIBE with a lower CSeq
    ctx.sipp("subscribe_lower_cseq_500.xml", "lower-cseq")
    snap = (ctx.rundir / "subs-after-500.txt")
    subs = [s for s in parse_kamcmd(snap.read_text() if snap.exists() else "") if isinstance(s, dict)]
    expect(len(subs) == 1, "R13: after the 500 the dialog's subscription should still be listed once: %r" % subs)
    expect(str(subs[0].get("version")) == "1" and str(subs[0].get("notifies_sent")) == "1",
           "R13: the SUBSCRIBE answered 500 must not refresh (no NOTIFY, version stays 1): %s" % subs[0])
    expect(int(subs[0].get("expires_in", 0)) > 30,
           "R13: the SUBSCRIBE answered 500 (Expires: 30) must not change the expiry: %s" % subs[0])
    ctx.assert_subscriptions_empty("R28 (the lower-CSeq dialog unsubscribed)")


@test("max_subs_per_user_403", "R7")
def t_max_subs_user(ctx):
    """max_subs_per_user_per_session=2: alice's third SUBSCRIBE (a third dialog) gets 403 and creates
    nothing; the limit is per user, so bob still gets in."""
    ctx.start_server(modparams=[("imconf", "max_subs_per_user_per_session", 2)])
    ctx.open_session()
    ctx.sipp("subscribe_initial.xml", "alice-1")
    ctx.sipp("subscribe_initial.xml", "alice-2")
    expect(len(ctx.subscriptions()) == 2, "sanity: alice's first two subscriptions should be listed")
    ctx.sipp("reject_403.xml", "alice-3")
    subs = ctx.subscriptions()
    expect(len(subs) == 2 and not any("alice-3" in field(s, "call_id") for s in subs),
           "R7: the rejected third SUBSCRIBE must create no state: %s" % subs)
    ctx.sipp("subscribe_initial.xml", "bob-1",
             keys=ctx.keys(subscriber=BOB, subscriber_user="bob", pai_hdr="P-Asserted-Identity: <%s>" % BOB))
    subs = ctx.subscriptions()
    expect(sorted(field(s, "subscriber") for s in subs) == [ALICE, ALICE, BOB],
           "R7: the limit is per user: want alice twice and bob, got %s" % subs)
