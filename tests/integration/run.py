#!/usr/bin/env python3
"""imconf integration tests: a real Kamailio 5.6.3 loading build/imconf.so, driven by real SIPp.

    python3 tests/integration/run.py [--module build/imconf.so] [-k FILTER ...] [--list] [-v]
    python3 tests/integration/run.py --standin      # check the harness itself, no module needed

Each test renders tests/kamailio/imconf-test.cfg into its own run directory (tests/run/latest/<test>/),
starts `kamailio -DD -E` there (loopback only, own ctl socket, core dumps off), drives it with the
SIPp scenarios of tests/sipp/ and kamcmd, stops it by pid (TERM, KILL after a timeout) and scans
its log for PANIC|CRITICAL|ALERT|BUG:|exited by a signal. Besides SIPp's own `ereg check_it`
assertions, every SIPp message trace is re-read and every NOTIFY checked (harness.check_trace).
One line per test: PASS/FAIL/SKIP, name, rules (RULES.md numbers), seconds; exit status 1 when
anything failed, 2 when the tools or the module are missing.

--standin runs the SIP tests against tests/integration/fake_imconf.py, the Kamailio-specific ones
against the same cfg built with -A IMCONF_STANDIN (imconf not loaded), plus harness self-tests.
See tests/integration/README.md.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness as H  # noqa: E402
from harness import (ALICE, BOB, CAROL, DAVE, FACTORY, GROUP, LOG_ALARM, PANIC_USER,  # noqa: E402
                     KPORTS, ROOT, SESSION, SIPP, SPORTS, TIMING, KamailioServer, TestFailure, check_trace,
                     lint_scenarios, parse_kamcmd, parse_trace, pids_in_group, received_notifies, run_test, tail)
import corpus  # noqa: E402
import sipua  # noqa: E402
import uac  # noqa: E402

TESTS = []


def test(name, rules, *, standin="fake"):
    """Registers a test. `standin` says what --standin does with it: 'fake' runs it against
    fake_imconf.py, 'kamailio' against Kamailio built without imconf (the test adapts), 'only'
    runs it only in --standin mode (harness self-tests), 'skip' skips it (needs the module)."""
    def deco(fn):
        TESTS.append({"name": name, "rules": rules, "fn": fn, "standin": standin})
        return fn
    return deco


def expect(cond, message):
    if not cond:
        raise TestFailure(message)


def field(sub, name):
    """A field of one imconf.subscriptions entry, by the names of the RPC contract."""
    if name not in sub:
        raise TestFailure("imconf.subscriptions entry has no field %r (has %s)" % (name, sorted(sub)))
    return sub[name]


# ============================================================================ accepted subscriptions

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


# ============================================================================ termination

@test("session_close_terminates_all", "R67 R69 R38 R1 R13")
def t_session_close(ctx):
    """alice and bob subscribe; imconf.session_close; both get terminated;reason=noresource without
    body, an in-dialog refresh then gets 481 and a new SUBSCRIBE 404."""
    ctx.start_server()
    ctx.open_session()
    a = ctx.sipp_start("subscribe_until_noresource.xml", "alice")
    b = ctx.sipp_start("subscribe_until_noresource.xml", "bob",
                       keys=ctx.keys(subscriber=BOB, subscriber_user="bob", pai_hdr="P-Asserted-Identity: <%s>" % BOB))
    ctx.wait_subscriptions(2)
    ctx.rpc_ok("imconf.session_close", SESSION)
    ctx.sipp_wait(a)
    ctx.sipp_wait(b)
    ctx.sipp("reject_404.xml", "resubscribe-after-close")
    ctx.assert_no_subscription(ctx.name, "R67/R69: records deleted after the noresource NOTIFY")
    r = ctx.rpc_ok("imconf.sessions")
    expect(SESSION not in r.text, "R67: imconf.sessions still lists the closed session:\n%s" % r.text)


@test("leave_terminates_own_subscription", "R68 R57 R26")
def t_leave(ctx):
    """bob leaves: bob's own subscription ends with noresource (terminate_on_leave=1), alice gets a
    partial NOTIFY reporting bob disconnected."""
    ctx.start_server()
    ctx.open_session()
    a = ctx.sipp_start("subscribe_watch_leave.xml", "alice")
    b = ctx.sipp_start("subscribe_until_noresource.xml", "bob",
                       keys=ctx.keys(subscriber=BOB, subscriber_user="bob", pai_hdr="P-Asserted-Identity: <%s>" % BOB))
    ctx.wait_subscriptions(2)
    ctx.rpc_ok("imconf.participant", SESSION, BOB, "disconnected")
    ctx.sipp_wait(a)
    ctx.sipp_wait(b)
    subs = ctx.subscriptions()
    expect(len(subs) == 1 and field(subs[0], "subscriber") == ALICE,
           "R68: only alice's subscription should remain, got %s" % subs)


@test("notify_481_removes_subscription", "R31")
def t_notify_481(ctx):
    """The initial NOTIFY is answered 481: the subscription disappears from imconf.subscriptions and
    a later participant change sends nothing to it."""
    ctx.start_server()
    ctx.open_session()
    ctx.sipp("subscribe_notify_481.xml")
    before = (ctx.rundir / "subs-before-481.txt")
    expect(before.exists() and ctx.name in before.read_text(),
           "sanity: the subscription was not listed before the 481 (subs-before-481.txt: %r)"
           % (before.read_text() if before.exists() else None))
    ctx.assert_no_subscription(ctx.name, "R31: a NOTIFY answered 481 removes the subscription")


# ============================================================================ rejections

def rejection_ok_no_state(ctx):
    ctx.assert_no_subscription(ctx.name, "P9/R7: a rejected SUBSCRIBE creates no state")


@test("reject_unknown_uri_404", "R1 R9")
def t_404(ctx):
    ctx.start_server()
    ctx.open_session()
    ctx.sipp("reject_404.xml", "unknown-uri", keys=ctx.keys(ruri="sip:nosuch@127.0.0.1"))
    ctx.sipp("reject_404.xml", "factory-uri", keys=ctx.keys(ruri=FACTORY))
    # existence (P3) is checked before the feature tag (P4): 404, not 403 (R9)
    ctx.sipp("reject_404.xml", "unknown-and-no-tag",
             keys=ctx.keys(ruri="sip:nosuch@127.0.0.1", accept_contact_hdr="X-Omitted: Accept-Contact"))
    rejection_ok_no_state(ctx)


@test("reject_bad_event_489", "R10")
def t_489(ctx):
    ctx.start_server()
    ctx.open_session()
    ctx.sipp("reject_489.xml", "presence", keys=ctx.keys(event_hdr="Event: presence"))
    ctx.sipp("reject_489.xml", "no-event", keys=ctx.keys(event_hdr="X-Omitted: Event"))
    ctx.sipp("reject_489.xml", "conference-prefix", keys=ctx.keys(event_hdr="Event: conference-x"))
    # P1 comes first: even an unknown URI gets 489
    ctx.sipp("reject_489.xml", "presence-unknown-uri",
             keys=ctx.keys(event_hdr="Event: presence", ruri="sip:nosuch@127.0.0.1"))
    rejection_ok_no_state(ctx)


@test("reject_missing_feature_tag_403", "R4 R9")
def t_403_tag(ctx):
    ctx.start_server()
    ctx.open_session()
    ctx.sipp("reject_403.xml", "no-accept-contact", keys=ctx.keys(accept_contact_hdr="X-Omitted: Accept-Contact"))
    ctx.sipp("reject_403.xml", "large-message-only",
             keys=ctx.keys(accept_contact_hdr="Accept-Contact: *;+g.oma.sip-im.large-message"))
    ctx.sipp("reject_403.xml", "other-tag", keys=ctx.keys(accept_contact_hdr="Accept-Contact: *;+g.3gpp.smsip"))
    rejection_ok_no_state(ctx)


@test("reject_unauthorized_subscriber_403", "R5 R6 R9")
def t_403_auth(ctx):
    ctx.start_server()
    ctx.open_session(participants=((ALICE, "connected"), (BOB, "connected"), (DAVE, "alerting")))
    ctx.rpc_ok("imconf.participant", SESSION, DAVE, "disconnected")
    ctx.sipp("reject_403.xml", "no-pai", keys=ctx.keys(pai_hdr="X-Omitted: P-Asserted-Identity"))
    ctx.sipp("reject_403.xml", "not-a-participant",
             keys=ctx.keys(pai_hdr="P-Asserted-Identity: <sip:mallory@127.0.0.1>", subscriber="sip:mallory@127.0.0.1",
                           subscriber_user="mallory"))
    ctx.sipp("reject_403.xml", "left-participant",
             keys=ctx.keys(pai_hdr="P-Asserted-Identity: <%s>" % DAVE, subscriber=DAVE, subscriber_user="dave"))
    rejection_ok_no_state(ctx)


@test("reject_not_acceptable_406", "R11")
def t_406(ctx):
    ctx.start_server()
    ctx.open_session()
    ctx.sipp("reject_406.xml", "pidf", keys=ctx.keys(accept_hdr="Accept: application/pidf+xml"))
    rejection_ok_no_state(ctx)


@test("reject_short_expires_423", "R12")
def t_423(ctx):
    ctx.start_server()
    ctx.open_session()
    ctx.sipp("reject_423.xml", "expires-1", keys=ctx.keys(expires_hdr="Expires: 1"))
    rejection_ok_no_state(ctx)


@test("reject_unknown_dialog_481", "R13")
def t_481(ctx):
    ctx.start_server()
    ctx.open_session()
    ctx.sipp("reject_481.xml", "stale-to-tag", keys=ctx.keys(to_tag_param=";tag=no-such-dialog"))
    rejection_ok_no_state(ctx)


# ============================================================================ validation order (RULES.md §2)

UNKNOWN_URI = "sip:nosuch@127.0.0.1"
MALLORY = "sip:mallory@127.0.0.1"
ORDER_SESSION, ORDER_GROUP = "sip:conf-grp-order@127.0.0.1", "sip:grp-order@127.0.0.1"
NO_AC, NO_PAI = "X-Omitted: Accept-Contact", "X-Omitted: P-Asserted-Identity"
PIDF, SHORT, PRESENCE, STALE = "Accept: application/pidf+xml", "Expires: 1", "Event: presence", ";tag=no-such-dialog"
AS_MALLORY = {"subscriber": MALLORY, "subscriber_user": "mallory", "pai_hdr": "P-Asserted-Identity: <%s>" % MALLORY}


def later(*steps):
    """The defects of the pipeline steps after the one under test (RULES.md §2: P1 Event, P2 dialog,
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
    """RULES.md §2 row by row, each row with its own defect plus the defects of every later step (so
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


# ============================================================================ subscriptions and documents

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


# ============================================================================ termination (2)

@test("shutdown_sends_deactivated", "R72 R70")
def t_shutdown(ctx):
    """alice and bob subscribed; SIGTERM to Kamailio's pid: each gets terminated;reason=deactivated
    without a body (no db_url, no cluster: the subscriptions die with the node), and Kamailio
    exits cleanly."""
    srv = ctx.start_server()
    ctx.open_session()
    a = ctx.sipp_start("subscribe_until_deactivated.xml", "alice")
    b = ctx.sipp_start("subscribe_until_deactivated.xml", "bob",
                       keys=ctx.keys(subscriber=BOB, subscriber_user="bob", pai_hdr="P-Asserted-Identity: <%s>" % BOB))
    ctx.wait_for("both subscriptions active, initial NOTIFYs answered",
                 lambda: (lambda subs: len(subs) == 2 and all(str(s.get("notify_in_flight")) == "0" for s in subs))(
                     ctx.subscriptions()))
    complaints = srv.stop()
    expect(not complaints, "stop: %s" % complaints)
    expect(srv.proc.returncode == 0, "kamailio exit status %s after SIGTERM" % srv.proc.returncode)
    ctx.sipp_wait(a)
    ctx.sipp_wait(b)


@test("notify_timeout_removes_subscription", "R31")
def t_notify_timeout(ctx):
    """tm fr_timer=1000: the initial NOTIFY is never answered; after the transaction times out the
    subscription is gone, and a later change sends nothing."""
    ctx.start_server(modparams=[("tm", "fr_timer", 1000)])
    ctx.open_session()
    t0 = time.time()
    ctx.sipp("subscribe_notify_timeout.xml")
    before, after = (ctx.rundir / "subs-before-timeout.txt"), (ctx.rundir / "subs-after-timeout.txt")
    subs = [s for s in parse_kamcmd(before.read_text() if before.exists() else "") if isinstance(s, dict)]
    expect(len(subs) == 1 and str(subs[0].get("notify_in_flight")) == "1",
           "sanity: while the NOTIFY was outstanding the subscription should be listed with notify_in_flight 1: %r"
           % subs)
    expect(after.exists() and ctx.name not in after.read_text(),
           "R31: 3 s after an unanswered NOTIFY (fr_timer 1 s) the subscription is still listed:\n%s"
           % (after.read_text() if after.exists() else "(no snapshot)"))
    ctx.assert_no_subscription(ctx.name, "R31: a NOTIFY transaction that timed out removes the subscription")
    ctx.note("flow took %.1fs" % (time.time() - t0))


# ============================================================================ group identities

GROUP_SETS = [("sip:s%d@127.0.0.1" % i, "sip:grp%d@127.0.0.1" % i, "sip:m%d@127.0.0.1" % i) for i in range(1, 8)]


@test("group_identity_across_slots", "R3 R17(b) R45 R67 R1")
def t_group_identity(ctx):
    """Seven pre-defined sessions s1..s7 of groups grp1..grp7 (hashing to various of the 64 slots;
    the group URIs are aliases that lead across slots), each with alice and its own member m<i>.
    alice subscribes to each GROUP URI, m<i> to each SESSION URI: the 200 asserts the group
    (R17 b), the root entity is the group (R45), the users are exactly that session's. Sessions
    1-3 close: noresource, then 404 on their group and session URIs (R3, R1) while grp4 still
    takes a new subscription; then 4-7 close the same way."""
    ctx.start_server()
    for s, g, m in GROUP_SETS:
        ctx.open_session(participants=((ALICE, "connected"), (m, "connected")), uri=s, kind="pre-defined", group=g)

    def subscribe(i, by_group, extra=""):
        s, g, m = GROUP_SETS[i]
        if by_group:
            keys = ctx.keys(ruri=g, session=s, group=g, member=m)
        else:
            keys = ctx.keys(ruri=s, session=s, group=g, member=ALICE, subscriber=m, subscriber_user=m.split(":")[1].split("@")[0],
                            pai_hdr="P-Asserted-Identity: <%s>" % m)
        return ctx.sipp_start("subscribe_group.xml", "%s%d%s" % ("grp" if by_group else "sess", i + 1, extra), keys=keys)

    runs = {i: [subscribe(i, True), subscribe(i, False)] for i in range(len(GROUP_SETS))}
    ctx.wait_subscriptions(2 * len(GROUP_SETS))
    subs = ctx.subscriptions()
    for s, g, m in GROUP_SETS:
        mine = sorted(field(x, "subscriber") for x in subs if field(x, "session") == s)
        expect(mine == sorted([ALICE, m]), "R3/R24: session %s should hold alice's (via %s) and %s's subscriptions, "
               "has %s" % (s, g, m, mine))

    def close_and_check(idx):
        for i in idx:
            ctx.rpc_ok("imconf.session_close", GROUP_SETS[i][0])
        for i in idx:
            s, g, m = GROUP_SETS[i]
            for run in runs[i]:
                ctx.sipp_wait(run)
                docs = [info for _, info in received_notifies(run.paths["msg"]) if info]
                expect(docs and set(docs[0]["users"]) == {ALICE, m} and docs[0].get("entity") == g,
                       "R3/R45: %s: the NOTIFY of %s should have root entity %s and users alice and %s, got %s"
                       % (run.name, s, g, m, docs[:1]))
        rejects = []
        for i in idx:
            s, g, m = GROUP_SETS[i]
            rejects.append(ctx.sipp_start("reject_404.xml", "closed-grp%d" % (i + 1), keys=ctx.keys(ruri=g, session=s)))
            rejects.append(ctx.sipp_start("reject_404.xml", "closed-sess%d" % (i + 1), keys=ctx.keys(ruri=s, session=s)))
        for r in rejects:
            ctx.sipp_wait(r)

    close_and_check([0, 1, 2])
    runs[3].append(subscribe(3, True, "-again"))   # the other groups' aliases still work
    ctx.wait_for("the new subscription to grp4 listed (a 404 fails its SIPp run)",
                 lambda: runs[3][-1].proc.poll() is not None
                 or any("grp4-again" in str(x.get("call_id")) for x in ctx.subscriptions()))
    close_and_check(list(range(3, len(GROUP_SETS))))
    # this build's To-tags name the hash slot (docs/interface.md: i<slot>-...); the 404s show where
    # each URI hashed: note how many groups live in another slot than their session
    slots = {}
    for run in ctx.sipp_runs:
        if run.name.startswith("closed-"):
            for d, raw in parse_trace(run.paths["msg"]):
                mm = re.search(rb"^To:[^\r\n]*;tag=i([0-9a-f]+)-", raw, re.M)
                if d == "recv" and mm:
                    slots[run.name] = int(mm.group(1), 16)
    crossing = [i + 1 for i in range(len(GROUP_SETS))
                if slots.get("closed-grp%d" % (i + 1)) not in (None, slots.get("closed-sess%d" % (i + 1)))]
    ctx.note("hash slots of the closed URIs: %s; groups in another slot than their session: %s" % (slots, crossing))
    ctx.assert_subscriptions_empty("R67: every subscription ended with its session")
    r = ctx.rpc_ok("imconf.sessions")
    expect(not any(s in r.text for s, _, _ in GROUP_SETS), "R67: closed sessions still listed:\n%s" % r.text)


# ============================================================================ group documents (XDM policy)

def write_group_doc(ctx, filename, members, group=GROUP, text=None):
    """Writes one OMA group document into the test's groups_dir (RULES.md §9 shape): `members`
    [(uri, display name)] may see conference state (is-list-member), everyone else may not
    (other-identity -> false). `text` replaces the whole file (bad documents)."""
    d = ctx.rundir / "groups"
    d.mkdir(exist_ok=True)
    if text is None:
        entries = "".join('<entry uri="%s"><rl:display-name>%s</rl:display-name></entry>' % m for m in members)
        text = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                '<group xmlns="urn:oma:xml:poc:list-service" xmlns:rl="urn:ietf:params:xml:ns:resource-lists"'
                ' xmlns:cp="urn:ietf:params:xml:ns:common-policy" xmlns:ocp="urn:oma:xml:xdm:common-policy">\n'
                ' <list-service uri="%s"><display-name>Test group</display-name>\n'
                '  <list>%s</list>\n  <max-participant-count>20</max-participant-count>\n'
                '  <cp:ruleset>\n'
                '   <cp:rule id="members"><cp:conditions><is-list-member/></cp:conditions>'
                '<cp:actions><allow-conference-state>true</allow-conference-state></cp:actions></cp:rule>\n'
                '   <cp:rule id="others"><cp:conditions><ocp:other-identity/></cp:conditions>'
                '<cp:actions><allow-conference-state>false</allow-conference-state></cp:actions></cp:rule>\n'
                '  </cp:ruleset>\n </list-service>\n</group>\n') % (group, entries)
    (d / filename).write_text(text)
    return d


def start_with_groups(ctx):
    return ctx.start_server(modparams=[("imconf", "groups_dir", str(ctx.rundir / "groups"))])


def subscriber_keys(ctx, who, **over):
    user = who.split(":")[1].split("@")[0]
    return ctx.keys(subscriber=who, subscriber_user=user, pai_hdr="P-Asserted-Identity: <%s>" % who, **over)


@test("group_policy_decides_subscribe", "R8 R81-R85 R87 R49 R88", standin="skip")
def t_group_policy(ctx):
    """groups_dir holds grp1.xml: alice and bob (with rl:display-names) may see conference state,
    nobody else. Session conf1 of grp1 has only bob connected, fed without a nick. alice, a member
    but not a participant, subscribes to the group URI: 200 (R8), and bob is shown by his
    rl:display-name (R49, R88). dave, a participant but not a member, gets 403 (R85 via
    other-identity). A session of a group without a document gets 500 (R87)."""
    write_group_doc(ctx, "grp1.xml", [(ALICE, "Alice A."), (BOB, "Bob B.")])
    start_with_groups(ctx)
    ctx.open_session(participants=((BOB, "connected"), (DAVE, "connected")), kind="pre-defined", group=GROUP)
    alice = ctx.sipp_start("subscribe_until_noresource.xml", "alice", keys=ctx.keys(ruri=GROUP))
    ctx.wait_subscriptions(1)
    ctx.sipp("reject_403.xml", "dave-403", keys=subscriber_keys(ctx, DAVE))
    nodoc = "sip:conf2@127.0.0.1"
    ctx.rpc_ok("imconf.session_open", nodoc, "chat", "sip:nodoc@127.0.0.1")
    ctx.sipp("reject_500.xml", "nodoc-500", keys=ctx.keys(ruri=nodoc, session=nodoc))
    expect(len(ctx.subscriptions()) == 1, "R9: the 403 and the 500 created no subscription")
    ctx.rpc_ok("imconf.session_close", SESSION)
    ctx.sipp_wait(alice)
    docs = received_notifies(alice.paths["msg"])
    expect(docs and b"<display-text>Bob B.</display-text>" in docs[0][0].body,
           "R49/R88: bob, fed without a nick, should be shown by his rl:display-name: %s"
           % (docs[0][0].body if docs else "no NOTIFY"))
    expect(b"Alice A." not in docs[0][0].body, "alice is not a participant and must not be listed")


@test("groups_reload_revokes_and_recovers", "R71 R70 R67 R8", standin="skip")
def t_groups_reload(ctx):
    """alice and bob (members) subscribe to session conf1 of grp1. grp1.xml drops bob and
    imconf.groups_reload ends his subscription with terminated;reason=rejected, no body, and a
    refresh gets 481 (R71); alice's goes on. A broken grp1.xml: the reload answers an error naming
    the file, the previous document stays in force (alice may still subscribe, bob may not).
    grp1.xml removed: the reload closes the group's session, alice's subscription ends with
    noresource (R67) and the session is gone."""
    write_group_doc(ctx, "grp1.xml", [(ALICE, "Alice"), (BOB, "Bob")])
    start_with_groups(ctx)
    ctx.open_session(participants=((ALICE, "connected"), (BOB, "connected")), kind="pre-defined", group=GROUP)
    alice = ctx.sipp_start("subscribe_until_noresource.xml", "alice")
    bob = ctx.sipp_start("subscribe_until_noresource.xml", "bob", keys=subscriber_keys(ctx, BOB, end_reason="rejected"))
    ctx.wait_subscriptions(2)
    write_group_doc(ctx, "grp1.xml", [(ALICE, "Alice")])
    ctx.rpc_ok("imconf.groups_reload")
    ctx.sipp_wait(bob)
    subs = ctx.subscriptions()
    expect([field(x, "subscriber") for x in subs] == [ALICE], "R71: only alice's subscription should remain: %s" % subs)
    write_group_doc(ctx, "grp1.xml", [], text="<group xmlns='urn:oma:xml:poc:list-service'><list-service")
    r = ctx.rpc("imconf.groups_reload")
    expect(not r.ok and "grp1.xml" in r.text, "a broken document must be an RPC error naming the file: %s" % r)
    expect(len(ctx.subscriptions()) == 1, "a refused document changes nothing: %s" % ctx.subscriptions())
    ctx.sipp("reject_403.xml", "bob-still-403", keys=subscriber_keys(ctx, BOB))
    (ctx.rundir / "groups" / "grp1.xml").unlink()
    ctx.rpc_ok("imconf.groups_reload")
    ctx.sipp_wait(alice)
    ctx.assert_subscriptions_empty("R67: the group's document is gone, so is its session")
    r = ctx.rpc_ok("imconf.sessions")
    expect(SESSION not in r.text, "R67: session of a removed group still listed:\n%s" % r.text)


@test("rcs_profile_on_the_wire", "R89 R90 R91 R88 R57", standin="skip")
def t_rcs_profile(ctx):
    """rcs_compat=1 and a group document with <max-participant-count>20. Session conf1 of grp1:
    alice connected, carol invited and ringing (alerting). alice subscribes as an RCS client does
    (R89) and five changes follow one NOTIFY at a time: bob joins, carol declines (failed,
    603 Decline), dave rings, dave answers, bob leaves (no method given: departed); then the
    session closes. Every document must be one R90's client keeps (no alerting, every departure
    with a known disconnection-method, no deleted user, users with a user part), the first one
    carries maximum-user-count 20 and user-count, and merging every document the way that client
    does (never removing anyone, R90) gives the truth."""
    members = [(u, u.split(":")[1].split("@")[0].title()) for u in (ALICE, BOB, CAROL, DAVE)]
    write_group_doc(ctx, "grp1.xml", members)
    ctx.start_server(modparams=[("imconf", "groups_dir", str(ctx.rundir / "groups")),
                                ("imconf", "rcs_compat", 1)])
    ctx.body_profile = "rcs"
    ctx.rpc_ok("imconf.session_open", SESSION, "pre-defined", GROUP)
    ctx.rpc_ok("imconf.participant", SESSION, ALICE, "connected", "originator")
    ctx.rpc_ok("imconf.participant", SESSION, CAROL, "alerting", "invited")
    watch = ctx.sipp_start("subscribe_feed_watch.xml", "rcs-alice")
    wait_notified(ctx, 1)
    changes = [
        (BOB, "connected", "joined"),
        (CAROL, "disconnected", "invited", "-", "-", "-", "-", "failed", "603 Decline"),
        (DAVE, "alerting", "invited"),
        (DAVE, "connected", "invited"),
        (BOB, "disconnected", "joined"),
    ]
    for version, change in enumerate(changes, start=2):
        ctx.rpc_ok("imconf.participant", SESSION, *change)
        wait_notified(ctx, version)
    ctx.rpc_ok("imconf.session_close", SESSION)
    ctx.sipp_wait(watch)
    docs = [info for _, info in received_notifies(watch.paths["msg"], "rcs") if info]
    expect(len(docs) == 6, "want 6 documents (1 full + 5 partial), got %d" % len(docs))
    first = docs[0]
    expect(first.get("maximum_user_count") == 20, "R88/R91: maximum-user-count 20 in %s" % first)
    expect(first.get("user_count") == 2, "R91: user-count 2 (alice, ringing carol) in %s" % first)
    expect(first["users"].get(CAROL) == "dialing-out", "R91: alerting is sent as dialing-out: %s" % first)
    # R90: the client merges every document and never removes anyone
    shown = {}
    for d in docs:
        for u, st in d["users"].items():
            shown[u] = (st, d["methods"].get(u), d["reasons"].get(u))
    want = {ALICE: ("connected", None, None), BOB: ("disconnected", "departed", None),
            CAROL: ("disconnected", "failed", "603 Decline"), DAVE: ("connected", None, None)}
    expect(shown == want, "R90/R91: the RCS client ends with %s, want %s" % (shown, want))


# ============================================================================ robustness

@test("panic_gets_500_server_survives", "INTERFACE(panic->500) R22")
def t_panic(ctx):
    """SUBSCRIBEs to sip:panic-now@... make the module panic (modparam debug_panic_user): each gets
    the module's own 500, no worker dies (same PIDs), the panic is logged, and the next SUBSCRIBE
    is served normally by the same Kamailio."""
    ctx.log_allow = r"(?i)panic"
    srv = ctx.start_server()
    ctx.open_session()
    workers = srv.worker_pids()
    expect(workers, "core.psx lists no udp receiver processes")
    ctx.sipp("reject_500.xml", "panic", calls=4, keys=ctx.keys(ruri="sip:%s@127.0.0.1" % PANIC_USER))
    ctx.sipp("subscribe_unsubscribe.xml", "after-panic")
    ctx.sipp("subscribe_unsubscribe.xml", "after-panic-again")
    expect(srv.alive(), "the server died")
    after = srv.worker_pids()
    expect(after == workers, "a worker was replaced (it died): udp receivers %s before, %s after" % (workers, after))
    bad = [l for l in srv.log_text().splitlines() if re.search(r"exited by a signal|terminating due to SIGCHLD", l)]
    expect(not bad, "a process died: %s" % bad)
    expect(re.search(r"(?i)panic", srv.log_text()), "INTERFACE: a panic gives a log line; none found in the log")
    ctx.rpc_ok("imconf.stats")  # the shm lock was released during unwinding


@test("shm_allocators_qm_tlsf", "alignment under -x qm / -x tlsf", standin="kamailio")
def t_allocators(ctx):
    """The module's shm use under both of Kamailio's other allocators (the default is fm, which
    every other test uses): a full flow with partial NOTIFYs and a session close, then a clean log
    (qm reports misuse as BUG:/CRITICAL lines) and a clean stop."""
    for alloc in ("qm", "tlsf"):
        if ctx.opts.standin:  # no module: check that the harness drives Kamailio under -x
            srv = ctx.start_server(kamailio=True, alloc=alloc)
            ctx.sipp("harness_options_405.xml", "options-" + alloc)
        else:
            srv = ctx.start_server(alloc=alloc)
            ctx.open_session()
            ctx.sipp("subscribe_partial.xml", "partial-" + alloc)
            ctx.sipp("subscribe_unsubscribe.xml", "unsubscribe-" + alloc)
            ctx.rpc_ok("imconf.session_close", SESSION)
            ctx.rpc_ok("imconf.stats")
        complaints = srv.stop()
        expect(not complaints, "-x %s: %s" % (alloc, "; ".join(complaints)))
        expect(srv.proc.returncode == 0, "-x %s: kamailio exit status %s after SIGTERM" % (alloc, srv.proc.returncode))
        bad = [l for l in srv.log_text().splitlines() if LOG_ALARM.search(l)]
        expect(not bad, "-x %s: alarm lines in %s:\n  %s" % (alloc, srv.log_path, "\n  ".join(bad[:20])))


@test("cfg_check_with_module", "INTERFACE(kamailio -c)", standin="kamailio")
def t_cfg_check(ctx):
    """`kamailio -c -f <cfg>` passes with the module loaded: it loads, and its version and compile
    flags match the running Kamailio's."""
    srv = KamailioServer(ctx, standin=ctx.opts.standin)
    rc, out = srv.check_cfg()
    ctx.note(out)
    expect(rc == 0, "kamailio -c failed (exit %s):\n%s" % (rc, out))
    bad = [l for l in out.splitlines() if re.search(r"mismatch|ERROR|CRITICAL|ALERT|BUG:", l)]
    expect(not bad, "kamailio -c printed:\n  %s" % "\n  ".join(bad))


@test("bad_modparam_fails_cleanly", "INTERFACE(modparams)", standin="skip")
def t_bad_modparam(ctx):
    """Without the required server_contact, start-up fails with a log line naming the parameter,
    and no crash."""
    # a clean start-up failure may be logged at CRITICAL/ALERT level; a crash may not
    ctx.log_allow = r"(?i)server_contact|init|mod_init"
    srv = KamailioServer(ctx, defines=["OMIT_SERVER_CONTACT"])
    ctx.servers.append(srv)
    srv.expect_exit = True
    srv.start(expect_ready=False)
    try:
        srv.proc.wait(timeout=10)
    except Exception:
        raise TestFailure("kamailio kept running without the required server_contact")
    text = srv.log_text()
    expect(srv.proc.returncode != 0, "kamailio exited 0 without server_contact")
    expect("server_contact" in text, "INTERFACE: no log line names server_contact:\n%s" % tail(srv.log_path, 20))
    bad = [l for l in text.splitlines() if re.search(r"exited by a signal|PANIC|\bBUG:", l)]
    expect(not bad, "a crash instead of a clean failure: %s" % bad)


@test("persistence_tables_created", "INTERFACE(db_url) issue 7", standin="skip")
def t_db_tables(ctx):
    """db_url=sqlite://<rundir>/imconf.db with db_sqlite loaded: the first start creates the tables
    of sql/imconf-sqlite.sql, a second start finds them and starts as well. A db_url that no
    loaded module serves stops the start with a log line naming db_url."""
    import sqlite3
    db = ctx.rundir / "imconf.db"
    mp = [("imconf", "db_url", "sqlite:///%s" % db)]   # db_sqlite: sqlite:/// + an absolute path
    for attempt in ("first", "second"):
        srv = ctx.start_server(defines=["IMCONF_DB_SQLITE"], modparams=mp)
        ctx.rpc_ok("imconf.stats")
        complaints = srv.stop()
        expect(not complaints, "%s start: stop: %s" % (attempt, complaints))
        expect(srv.proc.returncode == 0, "%s start: kamailio exit status %s" % (attempt, srv.proc.returncode))
        con = sqlite3.connect(str(db))
        cols = {t: [r[1] for r in con.execute("PRAGMA table_info(%s)" % t)]
                for t in ("imconf_sessions", "imconf_subscriptions")}
        con.close()
        expect(cols["imconf_sessions"] == ["session_uri", "kind", "group_uri", "state"],
               "%s start: imconf_sessions columns %s" % (attempt, cols["imconf_sessions"]))
        expect(cols["imconf_subscriptions"] == ["call_id", "local_tag", "session_uri", "subscriber", "expires", "state"],
               "%s start: imconf_subscriptions columns %s" % (attempt, cols["imconf_subscriptions"]))
    ctx.log_allow = r"(?i)db_url|db_bind|module|init"
    srv = KamailioServer(ctx, modparams=[("imconf", "db_url", "postgres://imconf@127.0.0.1/imconf")])
    ctx.servers.append(srv)
    srv.expect_exit = True
    srv.start(expect_ready=False)
    try:
        srv.proc.wait(timeout=10)
    except Exception:
        raise TestFailure("kamailio kept running with a db_url no loaded module serves")
    expect(srv.proc.returncode != 0, "kamailio exited 0 with an unserved db_url")
    expect('"db_url"' in srv.log_text(), "INTERFACE: no log line names db_url:\n%s" % tail(srv.log_path, 20))


def db_server(ctx, backend):
    """Starts Kamailio with db_url on `backend` ("sqlite": a file in the run directory;
    "postgres": a cluster of its own on 127.0.0.1, stopped after the test)."""
    if backend == "postgres":
        import pgcluster
        if not pgcluster.available():
            raise TestFailure("PostgreSQL is missing (scripts/deps.sh installs postgresql)")
        pg = pgcluster.PgCluster(ctx.rundir)
        ctx.cleanups.append(pg.stop)
        pg.start()
        url, define = pg.url(), "IMCONF_DB_POSTGRES"
    else:
        url, define = "sqlite:///%s" % (ctx.rundir / "imconf.db"), "IMCONF_DB_SQLITE"
    mp = [("imconf", "db_url", url), ("imconf", "db_flush_interval_ms", 200),
          ("imconf", "max_subs_per_session", 1000), ("imconf", "max_subs_per_user_per_session", 1000)]
    return ctx.start_server(defines=[define], modparams=mp)


def subscribed_everywhere(ctx, sessions, per_session):
    """Opens `sessions` (alice and bob connected) and subscribes alice `per_session` times to
    each, all at once; returns the SIPp runs once every initial NOTIFY was answered."""
    for s in sessions:
        ctx.open_session(uri=s)
    runs = [ctx.sipp_start("subscribe_across_restart.xml", "s%d" % i, keys=ctx.keys(ruri=s, session=s),
                           calls=per_session, limit=per_session, rate=200, timeout=90)
            for i, s in enumerate(sessions)]
    ctx.wait_for("%d subscriptions, every initial NOTIFY answered" % (len(sessions) * per_session),
                 lambda: all_at(ctx, sessions, per_session, 1), timeout=30)
    return runs


def all_at(ctx, sessions, per_session, version):
    """Each session has `per_session` subscriptions, all at `version` with nothing in flight
    (listed per session: kamcmd takes at most 128 kB of reply)."""
    for s in sessions:
        subs = ctx.subscriptions(s)
        if len(subs) != per_session or not all(
                str(x.get("version")) == str(version) and str(x.get("notify_in_flight")) == "0" for x in subs):
            return False
    return True


def second_notifies(run):
    """The NOTIFY after the initial one, per dialog: (CSeq, conference-info summary)."""
    by_dialog = {}
    for m, info in received_notifies(run.paths["msg"]):
        by_dialog.setdefault(m.get("call-id"), []).append((m.cseq[0], info))
    return {cid: ns[1] for cid, ns in by_dialog.items() if len(ns) > 1}


def graceful_restart(ctx, backend):
    """db_url: 1000 subscriptions over 10 sessions. SIGTERM: no NOTIFY is sent (R72 with
    persistence; the SIPp scenario would take one for an unexpected message) and everything is
    written; the same cfg starts again on the same port with all 1000 subscriptions. A
    participant joins each session: every subscriber gets a partial NOTIFY with version 2 and
    CSeq 2, as if nothing had happened. Then the sessions close."""
    sessions = ["sip:persist%d@127.0.0.1" % i for i in range(10)]
    srv = db_server(ctx, backend)
    runs = subscribed_everywhere(ctx, sessions, 100)
    srv = ctx.restart_server(srv)
    expect("clean stop" in ctx.servers[0].log_text(), "the first server did not report a clean stop")
    expect(all_at(ctx, sessions, 100, 1), "all 1000 subscriptions restored at version 1")
    for s in sessions:
        ctx.rpc_ok("imconf.participant", s, CAROL, "connected")
    ctx.wait_for("every version-2 NOTIFY answered", lambda: all_at(ctx, sessions, 100, 2), timeout=30)
    for s in sessions:
        ctx.rpc_ok("imconf.session_close", s)
    for r in runs:
        ctx.sipp_wait(r)
        seconds = second_notifies(r)
        expect(len(seconds) == 100, "%s: %d dialogs got a second NOTIFY, want 100" % (r.name, len(seconds)))
        bad = [(cid, cseq, info.get("state")) for cid, (cseq, info) in seconds.items()
               if cseq != 2 or info.get("state") != "partial" or info.get("version") != 2
               or info.get("users", {}).get(CAROL) != "connected"]
        expect(not bad, "%s: after a graceful restart the next NOTIFY is the partial, CSeq 2, version 2: %s"
               % (r.name, bad[:3]))


def crash_restart(ctx, backend):
    """db_url, 100 subscriptions on one session, written back (flush 200 ms). SIGKILL to every
    process of Kamailio, then the same cfg again: every subscription is back and, since the stop
    was not clean, gets full state at once with its CSeq ahead of anything sent before (the last
    interval's CSeqs may be lost; R40's +1 gives way to RFC 3261's "greater")."""
    session = "sip:crash1@127.0.0.1"
    srv = db_server(ctx, backend)
    runs = subscribed_everywhere(ctx, [session], 100)
    time.sleep(1.0)   # several flush intervals
    srv = ctx.restart_server(srv, crash=True)
    ctx.trace_allow = r"^NOTIFY CSeq \d+ \([^)]*\): R40: CSeq \d+ after 1, want \+1$"
    expect(len(ctx.subscriptions(session)) == 100, "all 100 subscriptions restored: %d"
           % len(ctx.subscriptions(session)))
    ctx.wait_for("every resync NOTIFY answered", lambda: all_at(ctx, [session], 100, 2), timeout=30)
    ctx.rpc_ok("imconf.session_close", session)
    ctx.sipp_wait(runs[0])
    seconds = second_notifies(runs[0])
    expect(len(seconds) == 100, "%d dialogs got a second NOTIFY, want 100" % len(seconds))
    bad = [(cid, cseq, info.get("state")) for cid, (cseq, info) in seconds.items()
           if not cseq or cseq <= 1000 or info.get("state") != "full" or info.get("version") != 2]
    expect(not bad, "after a crash: full state, version 2, CSeq past 1000: %s" % bad[:3])


@test("persistence_graceful_restart", "R72 R33 R40 issue 7 (sqlite)", standin="skip")
def t_db_graceful_sqlite(ctx):
    graceful_restart(ctx, "sqlite")


@test("persistence_crash_restart", "R33 R40 issue 7 (sqlite)", standin="skip")
def t_db_crash_sqlite(ctx):
    crash_restart(ctx, "sqlite")


@test("persistence_refresh_after_restart", "R13 R27 issue 7 (sqlite)", standin="skip")
def t_db_refresh_after_restart(ctx):
    """db_url: 20 subscriptions over 5 sessions; a graceful restart; then each subscriber refreshes
    in its dialog: every refresh gets 200 (not 481: the To-tag names the hash slot, which must be
    the same in the new run) and a full NOTIFY with the next version."""
    sessions = ["sip:refresh%d@127.0.0.1" % i for i in range(5)]
    srv = db_server(ctx, "sqlite")
    for s in sessions:
        ctx.open_session(uri=s)
    ua = sipua.Ua(srv.port, SPORTS.take())
    ctx.cleanups.append(ua.close)
    groups = [sipua.Dialogs(ua, s, ALICE, "r%d" % i) for i, s in enumerate(sessions)]
    for g in groups:
        codes = g.open(4, expires=300)
        expect(all(c == 200 for c in codes.values()), "initial SUBSCRIBEs: %s" % codes)
    ctx.wait_for("every initial NOTIFY answered", lambda: all_at(ctx, sessions, 4, 1), timeout=10)
    srv = ctx.restart_server(srv)
    ua.server = ("127.0.0.1", srv.port)
    for g in groups:
        codes = g.refresh(list(g.dialogs), expires=300)
        expect(all(c == 200 for c in codes.values()), "refreshes after the restart: %s" % codes)
    ctx.wait_for("a full NOTIFY, version 2, for every refresh", lambda: all_at(ctx, sessions, 4, 2), timeout=10)


@test("persistence_postgres_graceful_restart", "R72 R33 R40 issue 7 (PostgreSQL)", standin="skip")
def t_db_graceful_pg(ctx):
    graceful_restart(ctx, "postgres")


@test("persistence_postgres_crash_restart", "R33 R40 issue 7 (PostgreSQL)", standin="skip")
def t_db_crash_pg(ctx):
    crash_restart(ctx, "postgres")


@test("rpc_contract", "INTERFACE(RPC)")
def t_rpc(ctx):
    """The RPC commands of INTERFACE.md: listings, and errors that name the bad argument and change
    nothing."""
    ctx.start_server()
    ctx.rpc_ok("imconf.session_open", SESSION, "ad-hoc")
    r = ctx.rpc("imconf.session_open", SESSION, "ad-hoc")
    expect(not r.ok, "INTERFACE: opening an already open session is an error: %s" % r)
    r = ctx.rpc("imconf.session_open", "sip:x@127.0.0.1", "bogus-kind")
    expect(not r.ok and "kind" in r.text, "INTERFACE: a bad kind is an error naming `kind`: %s" % r)
    r = ctx.rpc("imconf.session_open", "sip:g@127.0.0.1", "pre-defined")
    expect(not r.ok and "group_uri" in r.text, "INTERFACE: pre-defined without group_uri is an error naming it: %s" % r)
    ctx.rpc_ok("imconf.participant", SESSION, ALICE, "connected")
    r = ctx.rpc("imconf.participant", SESSION, BOB, "sleeping")
    expect(not r.ok and "status" in r.text, "INTERFACE: a bad status is an error naming `status`: %s" % r)
    r = ctx.rpc_ok("imconf.sessions")
    sessions = [s for s in r.structs() if SESSION in s.values()]
    expect(len(sessions) == 1, "imconf.sessions should list %s once: %s" % (SESSION, r.text))
    s = sessions[0]
    expect("ad-hoc" in s.values(), "imconf.sessions: kind ad-hoc not shown: %s" % s)
    expect(not any(v in ("sip:x@127.0.0.1", "sip:g@127.0.0.1") for v in
                   [x for st in r.structs() for x in st.values()]),
           "INTERFACE: a rejected session_open changed state: %s" % r.text)
    counts = [v for k, v in s.items() if "participant" in k.lower()]
    expect(counts == ["1"], "imconf.sessions: want 1 participant (bob's bad status changed nothing): %s" % s)
    ctx.rpc_ok("imconf.subscriptions")
    ctx.rpc_ok("imconf.subscriptions", SESSION)
    ctx.rpc_ok("imconf.stats")
    ctx.rpc_ok("imconf.session_close", SESSION)
    r = ctx.rpc("imconf.session_close", SESSION)
    expect(not r.ok, "closing a session that is not open should be an error: %s" % r)


# ============================================================================ KEMI, script/RPC errors, jsonrpcs, statistics
# (issue 5) The same routing run natively and under KEMI (tests/kamailio/imconf-test.lua), the
# failures of every script function and RPC command, JSON-RPC over HTTP, and Kamailio's statistics.


KEMI_LUA = ROOT / "tests" / "kamailio" / "imconf-test.lua"
KSESSION = "sip:kconf@127.0.0.1"
EVE = "sip:eve@127.0.0.1"


def in_variant(ctx, name):
    """Moves the test's files (cfg, log, ctl socket, SIPp traces) to rundir/<name>/, so that a test
    can start one Kamailio per variant (native, KEMI) and keep each one's log for the scans."""
    base = getattr(ctx, "base_rundir", None) or ctx.rundir
    ctx.base_rundir = base
    ctx.rundir = base / name
    ctx.rundir.mkdir(exist_ok=True)


def start_variant(ctx, variant, **kw):
    """The server under test routing with the template's native blocks, or (variant 'kemi') with
    their KEMI twin imconf-test.lua (app_lua, cfgengine "lua")."""
    in_variant(ctx, variant)
    defines = list(kw.pop("defines", []))
    if variant == "kemi":
        defines += ["IMCONF_KEMI", 'IMCONF_LUA="%s"' % KEMI_LUA]
    return ctx.start_server(defines=defines, **kw)


def feed(ctx, call, ok=True, name=None):
    """One MESSAGE to the routing script's feed: call = (op, arg1, ... arg11). ok: the script
    function must return > 0 (200 "Fed <rc>"); otherwise < 0 (500 "Feed Failed <rc>")."""
    op, args = call[0], call[1:]
    over = {"feed_op": op}
    for i, a in enumerate(args, 1):
        over["feed_a%d" % i] = a
    return ctx.sipp("feed_message.xml" if ok else "feed_refused.xml", name or "feed-" + op, keys=ctx.keys(**over))


def wait_notified(ctx, version):
    ctx.wait_for("the subscription at version %d with its NOTIFY answered" % version,
                 lambda: [s for s in ctx.subscriptions() if str(s.get("version")) == str(version)
                          and str(s.get("notify_in_flight")) == "0"], timeout=8)


# the session fed by the script; then alice subscribes; then each change gives one partial NOTIFY
FEED_SETUP = [
    ("open", KSESSION, "ad-hoc", "-"),
    ("part", KSESSION, ALICE, "connected", "originator", "-", "sip:alice.from@127.0.0.1"),
    ("part3", KSESSION, BOB, "connected"),                  # KEMI: KSR.x.modf, 3 parameters
]
FEED_CHANGES = [
    ("part", KSESSION, CAROL, "alerting", "invited", "sip:carol.listed@127.0.0.1", "-"),
    ("part3", KSESSION, CAROL, "connected"),
    # privacy and nick: imconf_participant_extra, then imconf_participant
    ("part8", KSESSION, DAVE, "connected", "joined", "-", "-", "1", "DaveNick"),
    # the same through KSR.x.modf (the native functions and their fixups)
    ("part8m", KSESSION, EVE, "connected", "joined", "-", "-", "0", "Eve Nick"),
    # arguments 9-11 (disconnection_method, disconnection_reason, contact) the same way
    ("part11", KSESSION, BOB, "disconnected", "-", "-", "-", "-", "-", "booted", "Kicked out", "-"),
]


def notify_view(m):
    """What must be identical between the native and the KEMI run: the NOTIFY's Event,
    Subscription-State (expires counts down: normalised), Content-Type, CSeq and body, with ports,
    tags and Call-IDs normalised away."""
    def norm(text):
        text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text)
        return re.sub(r"(tag=|call-id:)\S+", r"\1X", text, flags=re.I)
    return {"event": m.get("event"),
            "subscription-state": re.sub(r"expires=\d+", "expires=N", (m.get("subscription-state") or "").replace(" ", "")),
            "content-type": m.get("content-type"), "cseq": m.cseq,
            "body": norm(m.body.decode("utf-8", "replace"))}


@test("kemi_same_notifies_as_native", "INTERFACE(KEMI) R26 R33 R67 R78", standin="skip")
def t_kemi_same_notifies(ctx):
    """The same flow against the native cfg and against its KEMI twin (Lua): the session is fed by
    the routing script from MESSAGE requests (imconf_session_open / imconf_participant /
    imconf_session_close; the 3-argument form through KSR.x.modf; privacy and nick through
    imconf_participant_extra, once as KSR.imconf.* and once through KSR.x.modf); alice subscribes
    and gets one NOTIFY per change. Every NOTIFY's Event, Subscription-State, Content-Type, CSeq and
    body must be the same in both runs."""
    runs = {}
    for variant in ("native", "kemi"):
        srv = start_variant(ctx, variant)
        for call in FEED_SETUP:
            feed(ctx, call)
        watch = ctx.sipp_start("subscribe_feed_watch.xml", "watch", keys=ctx.keys(ruri=KSESSION, session=KSESSION))
        wait_notified(ctx, 1)
        for version, call in enumerate(FEED_CHANGES, 2):
            feed(ctx, call)
            wait_notified(ctx, version)
        feed(ctx, ("close", KSESSION))
        ctx.sipp_wait(watch)
        runs[variant] = [notify_view(m) for m, _ in received_notifies(watch.paths["msg"])]
        ctx.note("%s: %d NOTIFYs" % (variant, len(runs[variant])))
        complaints = srv.stop()
        expect(not complaints, "%s: stop: %s" % (variant, complaints))
    native, kemi = runs["native"], runs["kemi"]
    expect(len(native) == 7, "native run: want 7 NOTIFYs (full, 5 partial, noresource), got %d" % len(native))
    for i, (a, b) in enumerate(zip(native, kemi)):
        for k in a:
            expect(a[k] == b[k], "INTERFACE(KEMI): NOTIFY %d differs in %s:\n  native: %r\n  KEMI:   %r"
                   % (i + 1, k, a[k], b[k]))
    expect(len(native) == len(kemi), "INTERFACE(KEMI): %d NOTIFYs native, %d under KEMI" % (len(native), len(kemi)))
    # the arguments 7-8 really reached the module on both paths (identical but empty would pass above)
    expect("DaveNick" not in native[3]["body"] and "dave" not in native[3]["body"]
           and "anonymous" in native[3]["body"],
           "R78: dave joined with privacy 1 (imconf_participant_extra): want an anonymous entity and no "
           "nick, got:\n%s" % native[3]["body"])
    expect("Eve Nick" in native[4]["body"],
           "R49: eve's nick (imconf_participant_extra through KSR.x.modf) is missing:\n%s" % native[4]["body"])


def state_snapshot(ctx):
    """imconf.sessions and imconf.subscriptions, without the expiry countdown."""
    sessions = sorted(tuple(sorted(s.items())) for s in ctx.rpc_ok("imconf.sessions").structs())
    subs = sorted(tuple(sorted((k, v) for k, v in s.items() if k != "expires_in")) for s in ctx.subscriptions())
    return sessions, subs


# (label, feed call, script function, argument the log line must name)
BAD_FEED = [
    ("unknown kind", ("open", "sip:kbad1@127.0.0.1", "bogus-kind", "-"), "imconf_session_open", "kind"),
    ("group kind without group", ("open", "sip:kbad2@127.0.0.1", "chat", "-"), "imconf_session_open", "group_uri"),
    ("group given for ad-hoc", ("open", "sip:kbad3@127.0.0.1", "ad-hoc", "sip:kgrp3@127.0.0.1"),
     "imconf_session_open", "group_uri"),
    ("malformed session URI", ("open", "no-scheme-here", "ad-hoc", "-"), "imconf_session_open", "session_uri"),
    ("malformed group URI", ("open", "sip:kbad4@127.0.0.1", "pre-defined", "no-scheme"), "imconf_session_open",
     "group_uri"),
    ("session already open", ("open", SESSION, "ad-hoc", "-"), "imconf_session_open", "session_uri"),
    ("close: malformed URI", ("close", "no-scheme-here"), "imconf_session_close", "session_uri"),
    ("close: no such session", ("close", "sip:nosuch@127.0.0.1"), "imconf_session_close", "session_uri"),
    ("unknown status", ("part", SESSION, CAROL, "sleeping", "-", "-", "-"), "imconf_participant", "status"),
    ("unknown status, 3 arguments (KEMI: KSR.x.modf)", ("part3", SESSION, CAROL, "sleeping"), "imconf_participant",
     "status"),
    ("malformed aoia", ("part", SESSION, "carol", "connected", "-", "-", "-"), "imconf_participant", "aoia"),
    ("unknown role", ("part", SESSION, CAROL, "connected", "boss", "-", "-"), "imconf_participant", "role"),
    ("malformed listed_uri", ("part", SESSION, CAROL, "connected", "invited", "listed", "-"), "imconf_participant",
     "listed_uri"),
    ("malformed from_uri", ("part", SESSION, CAROL, "connected", "joined", "-", "from"), "imconf_participant",
     "from_uri"),
    ("participant: no such session", ("part", "sip:nosuch@127.0.0.1", CAROL, "connected", "-", "-", "-"),
     "imconf_participant", "session_uri"),
    ("privacy 2 (imconf_participant_extra)", ("part8", SESSION, CAROL, "connected", "-", "-", "-", "2", "CNick"),
     "imconf_participant", "privacy"),
    ("privacy 2 (KEMI: through KSR.x.modf)", ("part8m", SESSION, CAROL, "connected", "-", "-", "-", "2", "CNick"),
     "imconf_participant", "privacy"),
    ("malformed contact (argument 11)", ("part11", SESSION, CAROL, "connected", "-", "-", "-", "-", "-", "-", "-",
                                         "no-scheme"), "imconf_participant", "contact"),
    ("disconnection_method while connected (argument 9, KEMI: KSR.x.modf)",
     ("part11m", SESSION, CAROL, "connected", "-", "-", "-", "-", "-", "departed", "-", "-"), "imconf_participant",
     "disconnection_method"),
]


@test("kemi_bad_arguments_fail", "INTERFACE(script functions, KEMI)", standin="skip")
def t_kemi_bad_arguments(ctx):
    """Native cfg and KEMI: each script function with a bad argument (unknown kind, a group kind
    without group, a malformed URI, unknown status/role, privacy not 0/1, ...) returns a negative
    value, logs one line naming the function and the argument, and changes nothing: imconf.sessions
    and imconf.subscriptions stay the same and the live subscription gets no NOTIFY. Under KEMI,
    KSR.x.modf with 7 parameters is refused by app_lua (its limit is 6)."""
    for variant in ("native", "kemi"):
        srv = start_variant(ctx, variant)
        ctx.open_session()
        sub = ctx.sipp_start("subscribe_until_noresource.xml", "alice")
        wait_notified(ctx, 1)
        before = state_snapshot(ctx)
        cases = list(BAD_FEED)
        if variant == "kemi":
            cases.append(("KSR.x.modf with 7 parameters", ("modf7", SESSION, CAROL, "connected", "-", "-", "-", "0"),
                          None, "too many parameters"))
        for i, (label, call, fn, arg) in enumerate(cases):
            seen = len(srv.log_text())
            feed(ctx, call, ok=False, name="bad%02d" % i)
            new = srv.log_text()[seen:]
            want = re.compile(re.escape("%s: %s:" % (fn, arg)) if fn else re.escape(arg))
            expect(want.search(new), "%s, %s: no log line naming %s (want %r); new log lines:\n%s"
                   % (variant, label, arg, want.pattern, new.strip()[-1500:]))
            after = state_snapshot(ctx)
            expect(after == before, "%s, %s: the refused call changed the state:\n  before %s\n  after  %s"
                   % (variant, label, before, after))
        ctx.rpc_ok("imconf.session_close", SESSION)
        ctx.sipp_wait(sub)
        complaints = srv.stop()
        expect(not complaints, "%s: stop: %s" % (variant, complaints))


# (command, arguments, the argument the fault must name). rpc_contract covers a bad kind,
# pre-defined without group_uri, a bad status string and closing a closed session.
RPC_BAD = [
    ("imconf.session_open", [], "session_uri"),
    ("imconf.session_open", ["no-scheme-here", "ad-hoc"], "session_uri"),
    ("imconf.session_open", [SESSION, "ad-hoc"], "session_uri"),               # already open
    ("imconf.session_open", ["sip:r1@127.0.0.1"], "kind"),
    ("imconf.session_open", ["sip:r1@127.0.0.1", 7], "kind"),                  # kamcmd sends an integer
    ("imconf.session_open", ["sip:r1@127.0.0.1", "chat"], "group_uri"),
    ("imconf.session_open", ["sip:r1@127.0.0.1", "restricted-chat", "no-scheme"], "group_uri"),
    ("imconf.session_open", ["sip:r1@127.0.0.1", "one-to-one", "sip:g1@127.0.0.1"], "group_uri"),
    ("imconf.session_open", ["sip:r1@127.0.0.1", "ad-hoc", "-", "extra"], "arguments"),
    ("imconf.session_close", [], "session_uri"),
    ("imconf.session_close", ["no-scheme-here"], "session_uri"),
    ("imconf.session_close", ["sip:nosuch@127.0.0.1"], "session_uri"),
    ("imconf.session_close", [SESSION, "extra"], "arguments"),
    ("imconf.participant", [], "session_uri"),
    ("imconf.participant", ["no-scheme-here", CAROL, "connected"], "session_uri"),
    ("imconf.participant", ["sip:nosuch@127.0.0.1", CAROL, "connected"], "session_uri"),
    ("imconf.participant", [SESSION], "aoia"),
    ("imconf.participant", [SESSION, "carol", "connected"], "aoia"),
    ("imconf.participant", [SESSION, CAROL], "status"),
    ("imconf.participant", [SESSION, CAROL, 1], "status"),
    ("imconf.participant", [SESSION, CAROL, "connected", "boss"], "role"),
    ("imconf.participant", [SESSION, CAROL, "connected", "invited", "listed"], "listed_uri"),
    ("imconf.participant", [SESSION, CAROL, "connected", "joined", "-", "from"], "from_uri"),
    ("imconf.participant", [SESSION, CAROL, "connected", "joined", "-", "-", 2], "privacy"),
    ("imconf.participant", [SESSION, CAROL, "connected", "joined", "-", "-", "yes"], "privacy"),
    ("imconf.participant", [SESSION, CAROL, "disconnected", "-", "-", "-", "-", "-", "bogus"], "disconnection_method"),
    ("imconf.participant", [SESSION, CAROL, "connected", "-", "-", "-", "-", "-", "-", "-", "no-scheme"], "contact"),
    ("imconf.participant", [SESSION, CAROL, "connected"] + ["-"] * 9, "arguments"),   # 12: one too many
    ("imconf.subscriptions", ["no-scheme-here"], "session_uri"),
    ("imconf.groups_reload", ["extra"], "arguments"),
]


@test("rpc_bad_arguments_named", "INTERFACE(RPC)", standin="skip")
def t_rpc_bad_arguments(ctx):
    """Every RPC command with each bad argument (missing, malformed URI, unknown value, an integer
    where a word is due, one argument too many, a session that is (not) open) answers fault 400
    whose message starts with the argument's name, and changes nothing: imconf.sessions and
    imconf.subscriptions (with a live subscription) stay the same."""
    ctx.start_server()
    ctx.open_session()
    sub = ctx.sipp_start("subscribe_until_noresource.xml", "alice")
    wait_notified(ctx, 1)
    before = state_snapshot(ctx)
    for cmd, args, arg in RPC_BAD:
        r = ctx.rpc(cmd, *args)
        expect(not r.ok and r.error, "INTERFACE: %s %s should fail naming %s: %s" % (cmd, args, arg, r))
        code, message = r.error
        expect(code == 400 and message.startswith(arg + ":"),
               "INTERFACE: %s %s: want fault 400 '%s: ...', got %s %r" % (cmd, args, arg, code, message))
        after = state_snapshot(ctx)
        expect(after == before, "INTERFACE: %s %s changed the state:\n  before %s\n  after  %s"
               % (cmd, args, before, after))
    ctx.rpc_ok("imconf.session_close", SESSION)
    ctx.sipp_wait(sub)


def free_tcp_port():
    """A port of our range free for TCP on 127.0.0.1 (the pools only look at UDP)."""
    import socket
    for _ in range(40):
        port = SPORTS.take()
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise TestFailure("no free TCP port")


def jsonrpc(ctx, port, method, *params):
    """POSTs one JSON-RPC 2.0 request to http://127.0.0.1:<port>/RPC with curl; the decoded reply."""
    import json
    import subprocess
    body = json.dumps({"jsonrpc": "2.0", "method": method, "params": list(params), "id": 1})
    cmd = ["curl", "-sS", "--max-time", "5", "-H", "Content-Type: application/json", "--data-binary", body,
           "http://127.0.0.1:%d/RPC" % port]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
    out = r.stdout.decode("utf-8", "replace")
    ctx.note("curl %s %s -> %s" % (method, params, out.strip()[:300]))
    expect(r.returncode == 0, "curl %s failed (exit %s): %s" % (method, r.returncode, out))
    try:
        reply = json.loads(out)
    except ValueError:
        raise TestFailure("%s: the reply is not JSON: %r" % (method, out))
    expect(reply.get("jsonrpc") == "2.0" and reply.get("id") == 1, "%s: not a JSON-RPC 2.0 reply: %s" % (method, reply))
    return reply


@test("jsonrpcs_over_http", "INTERFACE(RPC over jsonrpcs)", standin="skip")
def t_jsonrpcs(ctx):
    """xhttp + jsonrpcs on tcp:127.0.0.1 (this test only): imconf.session_open, imconf.participant
    (privacy as a JSON integer), imconf.sessions, imconf.subscriptions and imconf.stats with curl;
    the results have the documented shape and types; a bad argument is a JSON-RPC error naming it."""
    import shutil as _shutil
    if not _shutil.which("curl"):
        raise TestFailure("curl is missing (scripts/deps.sh installs it)")
    hport = free_tcp_port()
    # Kamailio's TCP main process logs this when its TCP workers exit first on SIGTERM (shutdown
    # order of the core, not a fault; it never appears while the server runs)
    ctx.log_allow = r"receive_fd\(\): EOF on [0-9]+"
    ctx.start_server(defines=["IMCONF_HTTP"], extra_args=["-l", "tcp:127.0.0.1:%d" % hport])

    def http_ready():
        try:
            return "result" in jsonrpc(ctx, hport, "imconf.stats")
        except TestFailure:
            return False
    ctx.wait_for("the HTTP listener on tcp:127.0.0.1:%d" % hport, http_ready)
    r = jsonrpc(ctx, hport, "imconf.session_open", SESSION, "ad-hoc")
    expect(r.get("result") == "ok", "imconf.session_open: want result \"ok\", got %s" % r)
    for aoia, privacy in ((ALICE, 0), (BOB, 1)):
        r = jsonrpc(ctx, hport, "imconf.participant", SESSION, aoia, "connected", "joined", "-", "-", privacy, "Nick")
        expect(r.get("result") == "ok", "imconf.participant with privacy %d (JSON integer): %s" % (privacy, r))
    r = jsonrpc(ctx, hport, "imconf.session_open", "sip:j2@127.0.0.1", "bogus-kind")
    err = r.get("error") or {}
    expect("result" not in r and err.get("code") == 400 and str(err.get("message", "")).startswith("kind:"),
           "INTERFACE: a bad kind over JSON-RPC is an error 400 naming `kind`: %s" % r)
    sub = ctx.sipp_start("subscribe_until_noresource.xml", "alice")
    wait_notified(ctx, 1)
    r = jsonrpc(ctx, hport, "imconf.sessions")
    sessions = r.get("result")
    expect(isinstance(sessions, list) and len(sessions) == 1, "imconf.sessions: want a list of one session: %s" % r)
    s = sessions[0]
    expect(s == {"uri": SESSION, "kind": "ad-hoc", "group": "", "participants": 2, "subscriptions": 1},
           "imconf.sessions: want {uri, kind, group, participants: 2, subscriptions: 1}, got %s" % s)
    r = jsonrpc(ctx, hport, "imconf.subscriptions")
    subs = r.get("result")
    expect(isinstance(subs, list) and len(subs) == 1, "imconf.subscriptions: want a list of one: %s" % r)
    x = subs[0]
    want = {"session": str, "subscriber": str, "call_id": str, "expires_in": int, "version": int,
            "notifies_sent": int, "notify_in_flight": int}
    expect(set(x) == set(want) and all(isinstance(x[k], t) for k, t in want.items()),
           "imconf.subscriptions: want the fields %s with those types, got %s" % (sorted(want), x))
    expect(x["session"] == SESSION and x["subscriber"] == ALICE and x["version"] == 1 and ctx.name in x["call_id"],
           "imconf.subscriptions: %s" % x)
    r = jsonrpc(ctx, hport, "imconf.subscriptions", SESSION)
    expect(len(r.get("result") or []) == 1, "imconf.subscriptions %s: %s" % (SESSION, r))
    r = jsonrpc(ctx, hport, "imconf.stats")
    st = r.get("result")
    expect(isinstance(st, dict) and st.get("sessions") == 1 and st.get("subscriptions") == 1
           and st.get("subscribe_200") == 1 and all(isinstance(v, int) for v in st.values()),
           "imconf.stats: want an object of integers (sessions 1, subscriptions 1, subscribe_200 1): %s" % r)
    r = jsonrpc(ctx, hport, "imconf.session_close", SESSION)
    expect(r.get("result") == "ok", "imconf.session_close: %s" % r)
    ctx.sipp_wait(sub)


def kamailio_stats(ctx):
    """`kamcmd stats.get_statistics imconf:` as {name: int}."""
    r = ctx.rpc_ok("stats.get_statistics", "imconf:")
    out = {}
    for line in r.text.splitlines():
        m = re.match(r"^\s*imconf:(\w+)\s*=\s*(-?\d+)\s*$", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


@test("kamailio_statistics_registered", "INTERFACE(imconf.stats)", standin="skip")
def t_kamailio_stats(ctx):
    """`kamcmd stats.get_statistics imconf:` (kex) lists exactly the counters of imconf.stats, with
    the same values, and they move with traffic: subscribe_200 0 -> 1 after a SUBSCRIBE, sessions
    0 -> 1 after session_open, notifies_sent, subscribe_404."""
    ctx.start_server(defines=["IMCONF_STATS"])

    def rpc_stats():
        st = [s for s in ctx.rpc_ok("imconf.stats").structs() if s]
        expect(len(st) == 1, "imconf.stats: want one struct: %s" % st)
        return {k: int(v) for k, v in st[0].items()}

    k0, r0 = kamailio_stats(ctx), rpc_stats()
    expect(sorted(k0) == sorted(r0), "statistics names differ from imconf.stats:\n  kamailio: %s\n  rpc:      %s"
           % (sorted(k0), sorted(r0)))
    volatile = {"shm_bytes_in_use"}
    expect({k: v for k, v in k0.items() if k not in volatile} == {k: v for k, v in r0.items() if k not in volatile},
           "statistics values differ from imconf.stats:\n  kamailio: %s\n  rpc:      %s" % (k0, r0))
    expect(k0["subscribe_200"] == 0 and k0["sessions"] == 0 and k0["shm_bytes_in_use"] > 0,
           "fresh server: want subscribe_200 0, sessions 0, shm in use > 0: %s" % k0)
    ctx.open_session()
    ctx.sipp("subscribe_unsubscribe.xml")
    ctx.sipp("reject_404.xml", "unknown-uri", keys=ctx.keys(ruri="sip:nosuch@127.0.0.1"))
    k1, r1 = kamailio_stats(ctx), rpc_stats()
    moved = {k: (k0[k], k1[k]) for k in ("subscribe_200", "subscribe_404", "sessions", "subscriptions",
                                         "notifies_sent", "notifies_full")}
    ctx.note("moved: %s" % moved)
    expect(k1["subscribe_200"] == 2 and k1["subscribe_404"] == 1 and k1["sessions"] == 1 and k1["subscriptions"] == 0
           and k1["notifies_sent"] >= 2,
           "want subscribe_200 0 -> 2 (subscribe + unsubscribe), subscribe_404 0 -> 1, sessions 0 -> 1, "
           "notifies_sent >= 2: %s" % moved)
    expect({k: v for k, v in k1.items() if k not in volatile} == {k: v for k, v in r1.items() if k not in volatile},
           "statistics values differ from imconf.stats after traffic:\n  kamailio: %s\n  rpc:      %s" % (k1, r1))
    one = ctx.rpc_ok("stats.get_statistics", "subscribe_200")
    expect(re.search(r"imconf:subscribe_200\s*=\s*2", one.text), "one statistic by name: %s" % one.text)


# ============================================================================ robustness: corpus, shm exhaustion, leaks
# docs/robustness.md. Helpers: corpus.py (the generated malformed SUBSCRIBEs and bad RPC calls),
# sipua.py (a many-dialog UDP UA: NOTIFYs answered 200, 481, never, or too late).
# IMCONF_CORPUS_N / IMCONF_CORPUS_SEED / IMCONF_RPC_N size the corpus (`make fuzz` raises them).

CORPUS_N = int(os.environ.get("IMCONF_CORPUS_N", "1000"))
CORPUS_SEED = int(os.environ.get("IMCONF_CORPUS_SEED", "20261125"))
RPC_N = int(os.environ.get("IMCONF_RPC_N", "150"))


def all_pids(srv):
    """Every process of the server: core.psx, and the process group (they must agree)."""
    r = srv.rpc("core.psx")
    psx = sorted(int(s["PID"]) for s in r.structs() if "PID" in s)
    return psx, sorted(pids_in_group(srv.proc.pid))


def stat(ctx, name):
    r = ctx.rpc_ok("imconf.stats")
    for s in r.structs():
        if name in s:
            return int(s[name])
    raise TestFailure("imconf.stats has no %s: %s" % (name, r.text))


def settle_shm(ctx, want=None, timeout=20, tolerance=0, stable_s=2.0, read=None):
    """shm_bytes_in_use once it has not moved for `stable_s` (tm frees a transaction wt_timer after
    its final reply: a test that measures sets tm's wt_timer below stable_s), or as soon as it is
    back to `want` (+ tolerance). Returns the last value. `read`: another way to read it."""
    read = read or (lambda: stat(ctx, "shm_bytes_in_use"))
    deadline = time.time() + timeout
    last, since = None, time.time()
    while time.time() < deadline:
        v = read()
        if want is not None and v <= want + tolerance:
            return v
        if v != last:
            last, since = v, time.time()
        elif want is None and time.time() - since >= stable_s:
            return v
        time.sleep(0.25)
    return last


def survived(ctx, srv, pids_before, sessions_before, rule):
    """The checks after any abuse: same processes, nothing subscribed, the sessions as before,
    and a normal subscription (SIPp) still works."""
    expect(srv.alive(), "%s: kamailio died" % rule)
    after = all_pids(srv)
    expect(after == pids_before, "%s: the processes changed (a worker died and was replaced?): core.psx/pgid "
           "%s before, %s after" % (rule, pids_before, after))
    ctx.wait_for("%s: imconf.subscriptions empty" % rule, lambda: not ctx.subscriptions(), timeout=8)
    ctx.assert_subscriptions_empty(rule)
    now = ctx.rpc_ok("imconf.sessions").text
    expect(now == sessions_before, "%s: imconf.sessions changed:\n%s\nbefore:\n%s" % (rule, now, sessions_before))
    ctx.sipp("subscribe_unsubscribe.xml", "normal-after")
    bad = [l for l in srv.log_text().splitlines() if re.search(r"exited by a signal|terminating due to SIGCHLD", l)]
    expect(not bad, "%s: a process died: %s" % (rule, bad[:5]))


@test("robustness_corpus_sip", "R1-R14 INTERFACE(never kills a worker)", standin="skip")
def t_corpus_sip(ctx):
    """IMCONF_CORPUS_N (1000; `make fuzz`: 10^5) generated SUBSCRIBEs, each a fetch with one or two
    mutations (corpus.py: broken Event/Expires/Accept/Accept-Contact/PAI, huge and repeated
    headers, invalid URIs, bad CSeq, in-dialog requests for unknown dialogs, bodies, non-UTF-8,
    structural damage): every must-answer case gets a final response among its allowed codes
    (never the cfg's `500 Script Fallback`), the may-drop ones get an allowed code or nothing;
    then the same processes, no subscription, the sessions unchanged, and SIPp subscribes."""
    srv = ctx.start_server()
    ctx.open_session()
    pids = all_pids(srv)
    expect(pids[0] and pids[0] == pids[1], "core.psx %s and the process group %s disagree" % pids)
    sessions = ctx.rpc_ok("imconf.sessions").text
    shm0 = settle_shm(ctx)
    port = SPORTS.take()
    cases = corpus.sip_cases(CORPUS_SEED, CORPUS_N, port)
    ua = sipua.Ua(srv.port, port)
    t0 = time.time()
    try:
        results = corpus.run_sip(ua, cases)
    finally:
        ua.close()
    secs = time.time() - t0
    verdict = corpus.judge(cases, results)
    reasons = {}
    for key, resp in ua.responses.items():
        for code, reason, _ in resp:
            if code >= 200:
                reasons["%d %s" % (code, reason)] = reasons.get("%d %s" % (code, reason), 0) + 1
    summary = {"seed": CORPUS_SEED, "requests": len(cases), "must_answer": sum(c.must_answer for c in cases),
               "answered": sum(verdict["answered"].values()), "by_code": verdict["answered"],
               "by_reason": reasons, "dropped_may_drop": len(verdict["dropped_ok"]),
               "dropped_by_mutation": sorted({c.names for c in verdict["dropped_ok"]}),
               "unanswered_must": [c.names for c in verdict["unanswered"]],
               "wrong": [(c.names, code) for c, code in verdict["wrong"]],
               "by_category": {k: {str(c): n for c, n in v.items()} for k, v in verdict["by_category"].items()},
               "seconds": round(secs, 1), "shm_before": shm0}
    ctx.note("corpus: %d requests (seed %d) in %.1fs: answered %d %s; may-drop cases dropped %d"
             % (len(cases), CORPUS_SEED, secs, summary["answered"], sorted(verdict["answered"].items()),
                summary["dropped_may_drop"]))
    try:
        expect(not verdict["unanswered"], "must-answer cases without a final response (%d): %s" % (
            len(verdict["unanswered"]), [c.names for c in verdict["unanswered"][:20]]))
        expect(not verdict["wrong"], "answers outside the allowed codes (%d): %s" % (
            len(verdict["wrong"]), ["%s -> %s (allowed %s)" % (c.names, code, sorted(c.allowed))
                                    for c, code in verdict["wrong"][:20]]))
        fallback = reasons.get("500 Script Fallback", 0)
        expect(not fallback, "INTERFACE: %d requests got the cfg's 500 Script Fallback (the module could not reply)"
               % fallback)
        active = [cid for cid, ns in ua.notifies.items() if ns and not ns[-1][1].startswith("terminated")]
        expect(not active, "fetches must end terminated; still active: %s" % active[:10])
        survived(ctx, srv, pids, sessions, "corpus")
        shm1 = settle_shm(ctx, want=shm0, tolerance=64 * 1024)
        summary["shm_after"] = shm1
        ctx.note("shm_bytes_in_use %d before, %d after" % (shm0, shm1))
        expect(shm1 <= shm0 + 64 * 1024, "shm_bytes_in_use %d before the corpus, %d after it settled" % (shm0, shm1))
    finally:
        (ctx.rundir / "corpus-summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True))


@test("robustness_corpus_rpc", "INTERFACE(RPC errors)", standin="skip")
def t_corpus_rpc(ctx):
    """IMCONF_RPC_N (150) RPC calls, each with at least one invalid argument (corpus.rpc_cases:
    malformed/huge/non-UTF-8 URIs, unknown words, missing and extra arguments, out-of-range
    flags): each answered (no kamcmd timeout), every state-changing one with an RPC error; the
    processes, sessions and subscriptions unchanged, and SIPp subscribes afterwards."""
    srv = ctx.start_server()
    ctx.open_session()
    pids = all_pids(srv)
    sessions = ctx.rpc_ok("imconf.sessions").text
    calls = corpus.rpc_cases(CORPUS_SEED, RPC_N)
    ok_listing, errors, problems = 0, 0, []
    for cmd, args in calls:
        argv = [H.KAMCMD, "-s", "unix:%s" % srv.ctl, cmd] + [a if isinstance(a, bytes) else a.encode() for a in args]
        try:
            r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=5)
        except subprocess.TimeoutExpired:
            problems.append("%s %.160r: no answer within 5 s" % (cmd, args))
            continue
        out = r.stdout.decode("utf-8", "replace")
        if r.returncode != 0 and not out.strip():
            problems.append("harness: kamcmd refused %s %.80r itself (exit %d; its argument size limit?)"
                            % (cmd, args, r.returncode))
        elif out.startswith("error:"):
            errors += 1
        elif cmd in ("imconf.sessions", "imconf.subscriptions", "imconf.stats"):
            ok_listing += 1
        else:
            problems.append("%s %.160r: accepted: %.160r" % (cmd, args, out.strip()))
    ctx.note("rpc corpus: %d calls, %d errors, %d listings answered" % (len(calls), errors, ok_listing))
    expect(not problems, "INTERFACE: bad RPC calls must be answered with an error:\n  " + "\n  ".join(problems[:20]))
    survived(ctx, srv, pids, sessions, "rpc corpus")


def count_codes(results):
    out = {}
    for c in results.values():
        out[c] = out.get(c, 0) + 1
    return out


@test("robustness_shm_exhaustion", "INTERFACE(shm full -> 500) R31", standin="skip")
def t_shm_exhaustion(ctx):
    """Kamailio with `-m 8` (8 MB of shm, 2.5 MB used at start): alice holds 100 subscriptions,
    then opens more in bursts until SUBSCRIBEs are answered 500 (the module's own `Server Internal
    Error`, never the cfg's fallback; nothing but 200 and 500). Then the 100 (and whatever of the
    burst survived) keep working: refreshes get 200 and a full NOTIFY, a participant change
    reaches every one; once they all end shm is back near its start, a new SUBSCRIBE gets 200,
    and no process died. (A burst's own subscriptions whose initial NOTIFY found shm full are
    ended, R31: counted, not failed.)"""
    # tm keeps a finished transaction wt_timer (5 s) for retransmissions: 1 s here, so that the
    # memory a burst of transactions takes comes back within the test's settle window
    srv = ctx.start_server(extra_args=["-m", "8"], modparams=[
        ("imconf", "max_subs_per_session", 1000000), ("imconf", "max_subs_per_user_per_session", 1000000),
        ("tm", "wt_timer", 1000)])
    ctx.open_session()
    pids = all_pids(srv)
    shm0 = settle_shm(ctx)
    ua = sipua.Ua(srv.port, SPORTS.take())
    base = sipua.Dialogs(ua, SESSION, ALICE, ctx.name + "-base")
    burst = sipua.Dialogs(ua, SESSION, ALICE, ctx.name + "-burst")
    try:
        codes = count_codes(base.open(100, window=4))
        expect(codes == {200: 100}, "the 100 subscriptions made before the burst: %s" % codes)
        ctx.wait_subscriptions(100)
        seen, batches = {}, 0
        while batches < 40:
            batches += 1
            codes = count_codes(burst.open(200, window=32))
            for c, n in codes.items():
                seen[c] = seen.get(c, 0) + n
            if any(c != 200 for c in codes):
                break
        reasons = {}
        for rs in ua.responses.values():
            for r in rs:
                if r[0] >= 200:
                    reasons["%d %s" % (r[0], r[1])] = reasons.get("%d %s" % (r[0], r[1]), 0) + 1
        ctx.note("burst: %d batches of 200, answers %s, reasons %s" % (batches, seen, reasons))
        expect(seen.get(500), "shm never ran out: %d subscriptions with -m 8 (answers %s)" % (len(burst.dialogs), seen))
        expect(set(seen) <= {200, 500}, "while shm is full, SUBSCRIBEs get 200 or 500: %s" % seen)
        expect(set(reasons) <= {"200 OK", "500 Server Internal Error"},
               "INTERFACE: the module answers 500 itself when shm is full (never the cfg's fallback): %s" % reasons)
        full = settle_shm(ctx)
        listed = {x.get("call_id") for x in ctx.subscriptions()}
        expect(set(base.dialogs) <= listed, "R31/INTERFACE: subscriptions made before shm ran out were lost: %d of 100"
               % len(set(base.dialogs) - listed))
        lost = sorted(set(burst.dialogs) - listed)
        for cid in lost:
            del burst.dialogs[cid]
        ctx.note("after the burst: %d subscriptions listed; %d of the burst's were ended (initial NOTIFY found shm full)"
                 % (len(listed), len(lost)))
        expect(listed == set(base.dialogs) | set(burst.dialogs), "the server lists subscriptions alice does not hold")
        everyone = [(d, cid) for d in (base, burst) for cid in d.dialogs]
        # existing subscriptions keep working: refreshes, and a change that reaches all of them
        some = sorted(base.dialogs)[:20]
        before = {cid: len(ua.notifies.get(cid, [])) for _, cid in everyone}
        codes = count_codes(base.refresh(some, expires=300, window=4))
        expect(codes == {200: len(some)}, "refreshes of existing subscriptions after the burst: %s" % codes)
        ctx.rpc_ok("imconf.participant", SESSION, CAROL, "connected")
        ctx.wait_for("every subscription notified of carol (and each refreshed one of its refresh)",
                     lambda: all(len(ua.notifies.get(cid, [])) >= before[cid] + (2 if cid in some else 1)
                                 for _, cid in everyone), timeout=20)
        expect(len(ctx.subscriptions()) == len(everyone), "a subscription was lost after the burst")
        # they end (slowly: each unsubscribe is two transactions; a 500 is retried, as a subscriber
        # would): shm back, service back
        # An unsubscribe answered 500 may still have ended its subscription: the module ended it,
        # then shm was too full for the 200 itself, which it replaced with its own stateless 500
        # (robustness.md, bug 2). Its retry then gets 481 (seen once on 6.0.1), and only then.
        tries, got_500 = [], set()
        while (base.dialogs or burst.dialogs) and len(tries) < 6:
            for d in (base, burst):
                if d.dialogs:
                    answers = d.refresh(sorted(d.dialogs), expires=0, window=8)
                    tries.append(count_codes(answers))
                    unexpected = {cid: code for cid, code in answers.items()
                                  if code not in (200, 500) and not (code == 481 and cid in got_500)}
                    expect(not unexpected, "unsubscribing: %s (unexpected: %s)" % (tries, unexpected))
                    got_500 |= {cid for cid, code in answers.items() if code == 500}
            if base.dialogs or burst.dialogs:
                time.sleep(1.5)
        ctx.note("unsubscribe rounds: %s" % tries)
        expect(not base.dialogs and not burst.dialogs, "unsubscribing everything: %s" % tries)
        ctx.wait_for("imconf.subscriptions empty", lambda: not ctx.subscriptions(), timeout=10)
        shm_end = settle_shm(ctx)
        ctx.note("shm_bytes_in_use: %d at start, %d after the burst settled, %d after everything ended"
                 % (shm0, full, shm_end))
        (ctx.rundir / "shm-figures.json").write_text(json.dumps(
            {"shm_start": shm0, "shm_after_burst_settled": full, "shm_end": shm_end, "listed": len(listed),
             "burst_lost": len(lost), "answers": seen, "reasons": reasons, "unsubscribe_rounds": tries}))
        expect(shm_end - shm0 < 512 * 1024, "shm did not come back: %d at start, %d at the end" % (shm0, shm_end))
    finally:
        ua.close()
    ctx.sipp("subscribe_unsubscribe.xml", "after-recovery")
    expect(all_pids(srv) == pids, "a process died or was replaced: %s -> %s" % (pids, all_pids(srv)))


@test("robustness_notify_failures_no_leak", "R31 INTERFACE(shm_bytes_in_use)", standin="skip")
def t_notify_failures_leak(ctx):
    """tm fr_timer 1 s. Three rounds of 3 x 30 subscriptions whose NOTIFYs are never answered,
    answered 481, or answered 200 only after 2 s (after tm's timeout): every subscription is
    removed (imconf.subscriptions empty, notify_responses_failed grows by 90 a round), and
    shm_bytes_in_use after rounds 2 and 3 equals its value after round 1 (the first round grows
    tables that keep their capacity)."""
    srv = ctx.start_server(modparams=[("tm", "fr_timer", 1000), ("tm", "wt_timer", 1000),
                                      ("imconf", "max_subs_per_user_per_session", 1000)])
    ctx.open_session()
    pids = all_pids(srv)
    policies = {}
    shm = [settle_shm(ctx)]
    ua = sipua.Ua(srv.port, SPORTS.take(), notify_policy=lambda cid: policies.get(cid, "200"))
    try:
        for rnd in range(3):
            failed0 = stat(ctx, "notify_responses_failed")
            for kind, pol in (("ignore", "ignore"), ("481", "481"), ("late", ("late", 2.0))):
                d = sipua.Dialogs(ua, SESSION, ALICE, "%s-r%d-%s" % (ctx.name, rnd, kind))
                # the policy must be known before the first NOTIFY arrives: name the Call-IDs ahead
                for i in range(1, 31):
                    policies["%s-r%d-%s-%d@127.0.0.1" % (ctx.name, rnd, kind, i)] = pol
                codes = count_codes(d.open(30, window=30))
                expect(codes == {200: 30}, "round %d %s: SUBSCRIBEs %s" % (rnd, kind, codes))
            ctx.wait_for("round %d: every subscription removed" % rnd, lambda: not ctx.subscriptions(), timeout=15)
            failed = stat(ctx, "notify_responses_failed") - failed0
            expect(failed == 90, "round %d: want 90 failed NOTIFY transactions (30 x 408, 30 x 481, 30 x 408), "
                   "counted %d" % (rnd, failed))
            shm.append(settle_shm(ctx, want=shm[1] if rnd else None, stable_s=3.0))
        ctx.note("shm_bytes_in_use: start %d, after rounds 1-3: %s" % (shm[0], shm[1:]))
        (ctx.rundir / "shm-figures.json").write_text(json.dumps({"shm_start": shm[0], "after_rounds": shm[1:]}))
        expect(shm[2] <= shm[1] and shm[3] <= shm[1],
               "shm leaks: %d after round 1, %d after round 2, %d after round 3" % tuple(shm[1:]))
        expect(shm[1] - shm[0] < 256 * 1024, "round 1 kept %d bytes of shm (tables grow, but not by that much)"
               % (shm[1] - shm[0]))
    finally:
        ua.close()
    ctx.assert_subscriptions_empty("R31")
    ctx.sipp("subscribe_unsubscribe.xml", "after-failures")
    expect(all_pids(srv) == pids, "a process died or was replaced")


@test("shutdown_deactivates_every_subscriber", "R72 R70", standin="skip")
def t_shutdown_many(ctx):
    """Without db_url: 3 sessions (hashed to different slots), 20 subscriptions each held by a
    UA that answers every NOTIFY; SIGTERM to Kamailio: every one of the 60 gets exactly one
    `terminated;reason=deactivated` NOTIFY, and Kamailio exits 0."""
    srv = ctx.start_server(modparams=[("imconf", "max_subs_per_user_per_session", 100)])
    sessions = ["sip:conf%d@127.0.0.1" % i for i in (1, 2, 3)]
    for s in sessions:
        ctx.open_session(uri=s)
    ua = sipua.Ua(srv.port, SPORTS.take())
    held = []
    try:
        for s in sessions:
            d = sipua.Dialogs(ua, s, ALICE, "%s-%s" % (ctx.name, s[4:9]))
            codes = count_codes(d.open(20))
            expect(codes == {200: 20}, "subscribing to %s: %s" % (s, codes))
            held += list(d.dialogs)
        ctx.wait_for("60 subscriptions, initial NOTIFYs answered",
                     lambda: (lambda subs: len(subs) == 60 and all(str(x.get("notify_in_flight")) == "0" for x in subs))(
                         ctx.subscriptions()), timeout=10)
        complaints = srv.stop()
        expect(not complaints, "stop: %s" % complaints)
        expect(srv.proc.returncode == 0, "kamailio exit status %s after SIGTERM" % srv.proc.returncode)
        time.sleep(0.3)
    finally:
        ua.close()
    last = {cid: [n for n in ua.notifies.get(cid, []) if n[1].startswith("terminated")] for cid in held}
    missing = [cid for cid, ns in last.items() if not ns]
    expect(not missing, "R72: %d of 60 subscribers got no terminating NOTIFY: %s" % (len(missing), missing[:5]))
    wrong = {cid: ns for cid, ns in last.items() if [n[1].replace(" ", "") for n in ns] != ["terminated;reason=deactivated"]}
    expect(not wrong, "R72: want exactly one terminated;reason=deactivated each: %s" % list(wrong.items())[:5])


# ============================================================================ operator ecosystem
# (issue 8) The shipped example configurations run as shipped (kamailio-cfg/imconf-ims*.cfg, not
# the test template), the SIPp scenarios an operator uses (tests/sipp/ims_*.xml), the Prometheus
# export through xhttp_prom, and the Debian package installed on this machine with dpkg.


IMS_SESSION = "sip:chat1@127.0.0.1"
PKG = "kamailio-imconf-modules"


class ExampleServer(KamailioServer):
    """A shipped example cfg as it is (kamailio-cfg/<cfg>, or an installed copy), configured only
    through its documented defines: LISTEN_SIP (the same address as the harness's -l), LISTEN_HTTP
    (a free TCP port on 127.0.0.1), SERVER_CONTACT, CTL_SOCK in the run directory, IMCONF_SO
    (the module under test, unless `module` is None: then the cfg's default, "imconf.so")."""

    def __init__(self, ctx, cfg, *, module="test", defines=(), node=None, port=None, host="127.0.0.1"):
        super().__init__(ctx, node=node, port=port, host=host)
        self.example = Path(cfg)
        self.http_port = free_tcp_port()
        self.cfg_path = self.example
        d = ['LISTEN_SIP=udp:%s:%d' % (self.host, self.port), 'LISTEN_HTTP=tcp:127.0.0.1:%d' % self.http_port,
             'SERVER_CONTACT="%s"' % self.server_contact, 'CTL_SOCK="unix:%s"' % self.ctl]
        if module is not None:
            d.append('IMCONF_SO="%s"' % ctx.opts.module)
        self.defines = d + list(defines)

    def render(self):
        return self.example


def start_example(ctx, cfg, **kw):
    srv = ExampleServer(ctx, cfg, **kw)
    ctx.servers.append(srv)
    srv.start(timeout=15)
    ctx.server = srv
    return srv


def sipp_for(ctx, scenario, name, keys, duration_ms=None, timeout=30):
    """ctx.sipp_start, plus SIPp's -d (the pause of ims_participant.xml) when duration_ms is given:
    the same command line (ports, traces, keys), registered the same way (stopped by pid at the
    end, its trace checked by ctx.sipp_wait)."""
    if duration_ms is None:
        return ctx.sipp_start(scenario, name, keys=keys, timeout=timeout, recv_timeout_ms=15000)
    real_popen = subprocess.Popen

    def popen_with_d(cmd, *a, **kw):
        return real_popen(list(cmd) + ["-d", str(duration_ms)], *a, **kw)
    H.subprocess.Popen = popen_with_d
    try:
        run = ctx.sipp_start(scenario, name, keys=keys, timeout=timeout, recv_timeout_ms=15000)
    finally:
        H.subprocess.Popen = real_popen
    run.cmd = list(run.cmd) + ["-d", str(duration_ms)]
    return run


def ims_keys(ctx, who, **over):
    user = who.split(":", 1)[1].split("@", 1)[0]
    k = dict(session=IMS_SESSION, ruri=IMS_SESSION, subscriber=who, subscriber_user=user,
             pai_hdr="P-Asserted-Identity: <%s>" % who, expires_hdr="Expires: 600",
             extra_hdr="X-Omitted: 1")
    k.update(over)
    return ctx.keys(**k)


def scrape(ctx, port):
    """GET http://127.0.0.1:<port>/metrics (xhttp_prom) with curl: {name: value} of the
    kamailio_imconf_* samples (`name value timestamp` lines)."""
    r = subprocess.run(["curl", "-sS", "--max-time", "5", "http://127.0.0.1:%d/metrics" % port],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
    text = r.stdout.decode("utf-8", "replace")
    expect(r.returncode == 0, "curl /metrics failed (exit %s): %s" % (r.returncode, text[:300]))
    out = {}
    for line in text.splitlines():
        m = re.match(r"^kamailio_imconf_(\w+)\s+(-?\d+)(\s+\d+)?\s*$", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def moved(before, after, *names):
    return {n: after.get(n, 0) - before.get(n, 0) for n in names}


@test("ims_example_scenario_and_metrics", "issue 8 R6 R26 R67 R68 R79 (examples, Prometheus)", standin="skip")
def t_ims_example(ctx):
    """kamailio-cfg/imconf-ims.cfg as shipped, then its KEMI twin (imconf-ims-kemi.cfg +
    imconf-ims.lua): SIPp participants INVITE the session URI (alice opens it, bob joins with
    `Privacy: id` and leaves, alice's BYE closes it), alice watches with ims_watch.xml; the
    NOTIFYs show alice, bob appearing and leaving (never bob's identity: privacy from the INVITE),
    then the end; a non-participant gets 403, an unknown session 404; and the imconf counters
    scraped from xhttp_prom's /metrics move accordingly (sessions, subscriptions, subscribe_200 /
    403 / 404, notifies_full / partial / terminated, notify_responses_2xx)."""
    if not __import__("shutil").which("curl"):
        raise TestFailure("curl is missing (scripts/deps.sh installs it)")
    # Kamailio's TCP main process logs this when its TCP workers exit first on SIGTERM
    ctx.log_allow = r"receive_fd\(\): EOF on [0-9]+"
    for variant, cfg, defines in (
            ("native", "imconf-ims.cfg", []),
            ("kemi", "imconf-ims-kemi.cfg", ['IMCONF_LUA="%s"' % (ROOT / "kamailio-cfg" / "imconf-ims.lua")])):
        in_variant(ctx, variant)
        srv = start_example(ctx, ROOT / "kamailio-cfg" / cfg, defines=defines)
        ctx.wait_for("xhttp_prom on tcp:127.0.0.1:%d" % srv.http_port,
                     lambda: "sessions" in scrape(ctx, srv.http_port), timeout=8)
        m0 = scrape(ctx, srv.http_port)
        expect(m0.get("sessions") == 0 and m0.get("subscribe_200") == 0 and len(m0) >= 20,
               "%s: fresh server: want the imconf counters at 0 in /metrics: %s" % (variant, m0))
        alice = sipp_for(ctx, "ims_participant.xml", "alice", ims_keys(ctx, ALICE), duration_ms=10000)
        ctx.wait_for("alice's INVITE opened the session",
                     lambda: [s for s in ctx.rpc_ok("imconf.sessions").structs()
                              if s.get("uri") == IMS_SESSION and str(s.get("participants")) == "1"], timeout=8)
        ctx.sipp("reject_403.xml", "carol-403", keys=ims_keys(ctx, CAROL))
        ctx.sipp("reject_404.xml", "unknown-404", keys=ims_keys(ctx, ALICE, ruri="sip:nosuch@127.0.0.1"))
        watch = sipp_for(ctx, "ims_watch.xml", "watch", ims_keys(ctx, ALICE))
        ctx.wait_for("alice's subscription answered", lambda: [s for s in ctx.subscriptions()
                                                               if str(s.get("notify_in_flight")) == "0"], timeout=8)
        m1 = scrape(ctx, srv.http_port)
        d1 = moved(m0, m1, "subscribe_200", "subscribe_403", "subscribe_404", "notifies_full", "subscriptions",
                   "sessions")
        ctx.note("%s: after join + subscribe: %s" % (variant, d1))
        expect(d1 == {"subscribe_200": 1, "subscribe_403": 1, "subscribe_404": 1, "notifies_full": 1,
                      "subscriptions": 1, "sessions": 1},
               "%s: /metrics after alice joined and subscribed, carol 403, unknown 404: %s" % (variant, d1))
        # bob asks for privacy as a UE does: Privacy: id and an anonymous From (R78: his entity)
        bob = sipp_for(ctx, "ims_participant.xml", "bob", ims_keys(ctx, BOB, extra_hdr="Privacy: id",
                                                                    subscriber="sip:anonymous@anonymous.invalid"),
                       duration_ms=1500)
        ctx.sipp_wait(bob)
        ctx.wait_for("two partial NOTIFYs (bob appeared, bob left) answered",
                     lambda: scrape(ctx, srv.http_port).get("notifies_partial", 0) - m0.get("notifies_partial", 0) >= 2
                     and scrape(ctx, srv.http_port).get("notifies_in_flight") == 0, timeout=8)
        m2 = scrape(ctx, srv.http_port)
        ctx.sipp_wait(alice)
        ctx.sipp_wait(watch)
        ctx.wait_for("the session closed by the last BYE", lambda: scrape(ctx, srv.http_port).get("sessions") == 0)
        m3 = scrape(ctx, srv.http_port)
        d2 = moved(m0, m2, "notifies_partial", "notifies_terminated", "subscriptions")
        d3 = moved(m0, m3, "notifies_full", "notifies_partial", "notifies_terminated", "subscriptions", "sessions",
                   "notify_responses_2xx", "subscribe_200")
        ctx.note("%s: after bob: %s; at the end: %s" % (variant, d2, d3))
        expect(d2 == {"notifies_partial": 2, "notifies_terminated": 0, "subscriptions": 1},
               "%s: /metrics after bob joined and left: want 2 partial NOTIFYs, none terminated: %s" % (variant, d2))
        expect(d3 == {"notifies_full": 1, "notifies_partial": 2, "notifies_terminated": 1, "subscriptions": 0,
                      "sessions": 0, "notify_responses_2xx": 3, "subscribe_200": 1},
               "%s: /metrics at the end: want 1 full, 2 partial, 1 terminated NOTIFY, nothing left: %s" % (variant, d3))
        # what alice saw: herself; bob (anonymous: he asked for privacy) connected, then disconnected; the end
        notes = received_notifies(watch.paths["msg"])
        seen = [(m.get("subscription-state").split(";")[0].strip(), info.get("state"),
                 dict(info.get("users") or {})) for m, info in notes]
        ctx.note("%s: alice saw %s" % (variant, seen))
        expect(len(seen) == 4, "%s: want 4 NOTIFYs (full, bob in, bob out, end), got %s" % (variant, seen))
        expect(seen[0][:2] == ("active", "full") and seen[0][2] == {ALICE: "connected"},
               "%s: the first NOTIFY: want full state with alice connected: %s" % (variant, seen[0]))
        anon = [e for e in seen[1][2] if e != ALICE]
        expect(seen[1][1] == "partial" and len(anon) == 1 and "anonymous" in anon[0]
               and seen[1][2][anon[0]] == "connected",
               "%s: bob joined with Privacy: id: want a partial NOTIFY with one anonymous user connected: %s"
               % (variant, seen[1]))
        expect(seen[2][1] == "partial" and seen[2][2] == {anon[0]: "disconnected"},
               "%s: bob left: want a partial NOTIFY with %s disconnected: %s" % (variant, anon[0], seen[2]))
        expect(seen[3][0] == "terminated", "%s: alice left: want her subscription terminated: %s" % (variant, seen[3]))
        raw = Path(watch.paths["msg"]).read_bytes()
        expect(b"sip:bob@" not in raw, "%s: R79: bob's identity appears in a NOTIFY although he asked for privacy"
               % variant)
        expect(b">alice<" in raw, "%s: R49: alice's nick (her From display name) is not her display-text" % variant)
        complaints = srv.stop()
        expect(not complaints, "%s: stopping: %s" % (variant, complaints))


def dpkg_status(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, timeout=30)
    return r.stdout.decode().strip() if r.returncode == 0 else ""


def try_lock(fcntl, f):
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


class InstalledModuleServer(KamailioServer):
    """The test template with `loadmodule "imconf.so"`: no path, found in Kamailio's module dir."""

    def render(self):
        path = super().render()
        text = path.read_text()
        want = 'loadmodule "%s"' % self.ctx.opts.module
        if want not in text:
            raise TestFailure("harness: the rendered cfg has no line %s" % want)
        path.write_text(text.replace(want, 'loadmodule "imconf.so"'))
        return path


@test("deb_install_subscribe", "issue 8, 13 (make deb, dpkg -i; or make install; loadmodule \"imconf.so\")",
      standin="skip")
def t_deb(ctx):
    """For the Kamailio that `make build` targets (scripts/kamailio_target.py; KAMAILIO_PREFIX,
    KAMAILIO_BIN), when its binary belongs to the Debian package kamailio:
    packaging/build-deb.sh builds kamailio-imconf-modules_<version>_<arch>.deb from the module
    under test: its control fields (Depends kamailio (= the version of that package), Suggests)
    and files (imconf.so in the target's module dir, README and examples under
    /usr/share/doc/<package>/). `dpkg -i` installs it; Kamailio starts with `loadmodule "imconf.so"`
    (no path), a session is opened over RPC and alice's SUBSCRIBE gets its 200 and full NOTIFY; the
    installed example imconf-ims.cfg passes `kamailio -c` with its default module path. `dpkg -r`
    removes the package afterwards, whatever happened (a cleanup), and the module file is gone.
    A target built from source (no Debian package) takes t_install instead."""
    target = H.kamailio_target()
    same = (Path(target["bin"]).resolve() == Path(H.KAMAILIO).resolve()
            and Path(target["moddir"]).resolve() == Path(H.MPATH).resolve())
    if not same:
        raise H.Skip("the Kamailio under test (%s, modules %s) is not the build target (%s, modules %s) that "
                     "make deb / make install are for: choose it with KAMAILIO_PREFIX or KAMAILIO_BIN"
                     % (H.KAMAILIO, H.MPATH, target["bin"], target["moddir"]))
    if not target["deb_version"]:
        return t_install(ctx, target)
    if os.geteuid() != 0:
        raise H.Skip("needs root for dpkg -i / dpkg -r")
    deb_test_lock(ctx)
    before = dpkg_status(PKG)
    if "installed" in before and "not-installed" not in before:
        raise H.Skip("%s is already installed (%s): not touching it" % (PKG, before))
    r = subprocess.run([str(ROOT / "packaging" / "build-deb.sh"), "--module", str(ctx.opts.module),
                        "--out", str(ctx.rundir)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    out = r.stdout.decode("utf-8", "replace").strip()
    expect(r.returncode == 0, "packaging/build-deb.sh failed:\n%s" % out)
    deb = Path(out.splitlines()[-1])
    kver = target["deb_version"]
    expect(re.match(r"^%s_[0-9][^_]*_[a-z0-9]+\.deb$" % PKG, deb.name), "package file name: %s" % deb.name)
    info = subprocess.run(["dpkg-deb", "-f", str(deb)], stdout=subprocess.PIPE, timeout=30).stdout.decode()
    ctx.note("control:\n" + info)
    fields = dict(re.findall(r"(?m)^([A-Za-z-]+): (.*)$", info))
    expect(fields.get("Package") == PKG, "Package: %s" % fields.get("Package"))
    expect(re.search(r"(^|, )kamailio \(= %s\)(,|$)" % re.escape(kver), fields.get("Depends", "")),
           "Depends must pin kamailio (= %s): %s" % (kver, fields.get("Depends")))
    suggests = fields.get("Suggests", "")
    expect("kamailio-sqlite-modules (= %s)" % kver in suggests and "kamailio-lua-modules (= %s)" % kver in suggests,
           "Suggests: %s" % suggests)
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], stdout=subprocess.PIPE, timeout=30).stdout.decode()
    files = set(re.findall(r"\s\./(\S+)$", listing, re.M))
    so = Path(target["moddir"]) / "imconf.so"
    doc = "usr/share/doc/%s/" % PKG
    for f in [str(so)[1:], doc + "README", doc + "imconf.md", doc + "copyright", doc + "examples/imconf.cfg",
              doc + "examples/imconf-ims.cfg", doc + "examples/imconf-ims-kemi.cfg", doc + "examples/imconf-ims.lua",
              doc + "sipp/ims_participant.xml", doc + "sipp/ims_watch.xml", doc + "operator-testing.md",
              "usr/share/doc/kamailio/modules/README.imconf.gz"]:
        expect(f in files, "the package lacks %s:\n%s" % (f, listing))
    expect(not so.exists(), "%s exists before the install" % so)
    # from here on the package is removed at the end whatever happens (after the servers stopped)

    def remove():
        rr = subprocess.run(["dpkg", "-r", PKG], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        ctx.note("dpkg -r: %s" % rr.stdout.decode("utf-8", "replace").strip())
        left = dpkg_status(PKG)
        if rr.returncode != 0 or so.exists() or ("installed" in left and "not-installed" not in left):
            raise RuntimeError("dpkg -r %s: exit %s, status %r, %s %s" % (
                PKG, rr.returncode, left, so, "still there" if so.exists() else "gone"))
    ctx.cleanups.append(remove)
    try:
        installed_checks(ctx, deb, so, doc)
    except (KeyboardInterrupt, SystemExit):
        # run_test's cleanups do not run then: stop our Kamailio and remove the package here
        ctx.stop_servers()
        ctx.cleanups.remove(remove)
        remove()
        raise


def deb_test_lock(ctx):
    """Two suites at once (two engineers) must not install and remove the module under each other:
    one at a time, from the checks before the install until after the removal (the lock is
    released by the cleanups)."""
    import fcntl
    lock = open(os.path.join(tempfile.gettempdir(), "imconf-deb-test.lock"), "w")
    ctx.cleanups.append(lock.close)
    ctx.wait_for("the deb test lock (another suite is installing the package)",
                 lambda: try_lock(fcntl, lock), timeout=180, interval=0.5)


# Only Kamailio builds under this directory (scripts/kamailio-build.sh's throwaway trees) get a real
# `make install` from the test; any other installation is left alone.
THROWAWAY_KAMAILIO = Path("/var/cache/imconf-kamailio")


def make_install(ctx, destdir):
    """`make install` of the module under test for the target in the environment, without building
    it again: `make -o build install MODULE=<module> DESTDIR=<destdir>` (docs/packaging.md)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "DESTDIR")}
    r = subprocess.run(["make", "--no-print-directory", "-o", "build", "install", "MODULE=%s" % ctx.opts.module,
                        "DESTDIR=%s" % destdir], cwd=str(ROOT), env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=180)
    out = r.stdout.decode("utf-8", "replace").strip()
    ctx.note("make install DESTDIR=%s: exit %d: %s" % (destdir, r.returncode, out))
    return r.returncode, out


def t_install(ctx, target):
    """deb_install_subscribe for a Kamailio that is not from a Debian package (built from source):
    build-deb.sh refuses with one line pointing to `make install`; `make install DESTDIR=<tmp>`
    puts the module at <tmp><module dir>/imconf.so (0644); then, only for a throwaway Kamailio
    under /var/cache/imconf-kamailio, a real `make install` into its module dir, Kamailio with
    `loadmodule "imconf.so"` and alice's subscription as with the package, and the shipped
    imconf-ims.cfg passes `kamailio -c` loading it by name; a cleanup removes the installed file
    whatever happened."""
    r = subprocess.run([str(ROOT / "packaging" / "build-deb.sh"), "--module", str(ctx.opts.module),
                        "--out", str(ctx.rundir)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    out = r.stdout.decode("utf-8", "replace").strip()
    ctx.note("build-deb.sh: exit %d: %s" % (r.returncode, out))
    expect(r.returncode != 0, "build-deb.sh built a package for a Kamailio that is no Debian package:\n%s" % out)
    expect(len(out.splitlines()) == 1 and "not from the Debian package kamailio" in out and "make install" in out,
           "build-deb.sh must refuse with one line pointing to make install:\n%s" % out)
    expect(not list(ctx.rundir.glob("*.deb")), "build-deb.sh refused but left a package")
    built = Path(ctx.opts.module).read_bytes()
    # staged: DESTDIR
    stage = ctx.rundir / "destdir"
    staged = Path(str(stage) + target["moddir"]) / "imconf.so"
    rc, out = make_install(ctx, stage)
    expect(rc == 0, "make install DESTDIR=%s failed:\n%s" % (stage, out))
    expect(staged.is_file() and staged.read_bytes() == built, "make install DESTDIR: no copy of %s at %s"
           % (ctx.opts.module, staged))
    expect(staged.stat().st_mode & 0o7777 == 0o644, "%s: mode %o, want 0644" % (staged, staged.stat().st_mode & 0o7777))
    expect(str(staged) in out, "make install does not say where the module went: %s" % out)
    # the real one, into the target's module dir: only a throwaway build of ours
    moddir = Path(target["moddir"])
    so = moddir / "imconf.so"
    if THROWAWAY_KAMAILIO not in moddir.resolve().parents:
        raise H.Skip("build-deb.sh refusal and make install DESTDIR= passed; not installing into %s (only into "
                     "a throwaway Kamailio under %s)" % (moddir, THROWAWAY_KAMAILIO))
    if not os.access(str(moddir), os.W_OK):
        raise H.Skip("build-deb.sh refusal and make install DESTDIR= passed; %s is not writable" % moddir)
    deb_test_lock(ctx)
    if so.exists():
        raise H.Skip("%s exists already (installed by someone else): not touching it" % so)

    def remove():
        if so.exists():
            so.unlink()
        ctx.note("removed %s" % so)
    ctx.cleanups.append(remove)
    try:
        rc, out = make_install(ctx, "")
        expect(rc == 0, "make install failed:\n%s" % out)
        expect(so.is_file() and so.read_bytes() == built and str(so) in out,
               "make install: no copy of %s at %s: %s" % (ctx.opts.module, so, out))
        installed_subscribe(ctx, ROOT / "kamailio-cfg" / "imconf-ims.cfg", ["-L", H.MPATH])
    except (KeyboardInterrupt, SystemExit):
        ctx.stop_servers()
        ctx.cleanups.remove(remove)
        remove()
        raise


def installed_checks(ctx, deb, so, doc):
    """deb_install_subscribe, once the package is to be removed whatever happens."""
    r = subprocess.run(["dpkg", "-i", str(deb)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    ctx.note("dpkg -i: %s" % r.stdout.decode("utf-8", "replace").strip())
    expect(r.returncode == 0, "dpkg -i failed: %s" % r.stdout.decode("utf-8", "replace"))
    expect(so.exists() and dpkg_status(PKG) == "install ok installed", "after dpkg -i: %s, %s" % (so, dpkg_status(PKG)))
    # the plain-text README in the shape of Kamailio's module READMEs (packaging/md2txt.py)
    readme = (Path("/") / doc / "README").read_text()
    for section in ("1. Overview", "2. Dependencies", "3. Parameters", "3.1. server_contact (str)", "4. Functions",
                    "imconf_participant_extra(", "5. RPC Commands", "6. Statistics", "Example 1.1. Set server_contact"):
        expect(section in readme, "the installed README lacks %r" % section)
    # the installed example with its default module path (mpath, "imconf.so")
    installed_subscribe(ctx, Path("/") / doc / "examples" / "imconf-ims.cfg", [])


def installed_subscribe(ctx, example, kam_args):
    """With imconf.so in the module dir: Kamailio with `loadmodule "imconf.so"` (the test template
    otherwise), a session over RPC and alice's subscription (200, full NOTIFY, unsubscribe); then
    `kamailio -c` of the example cfg, which loads "imconf.so" by name (kam_args: e.g. -L)."""
    srv = InstalledModuleServer(ctx)
    ctx.servers.append(srv)
    srv.start()
    ctx.server = srv
    expect('loadmodule "imconf.so"' in srv.cfg_path.read_text(), "the cfg does not load imconf.so by name")
    ctx.open_session()
    ctx.sipp("subscribe_unsubscribe.xml")
    r = subprocess.run([H.KAMAILIO, "-c", "-f", str(example)] + list(kam_args) + [
                        "-A", 'CTL_SOCK="unix:%s/ex.sock"' % ctx.rundir,
                        "-A", "LISTEN_SIP=udp:127.0.0.1:%d" % srv.port], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    text = r.stdout.decode("utf-8", "replace")
    expect(r.returncode == 0 and "config file ok" in text, "kamailio -c %s:\n%s" % (example, text[-1500:]))


# ============================================================================ harness self-tests

@test("harness_kamailio_lifecycle", "harness", standin="only")
def t_harness_lifecycle(ctx):
    """The runner's Kamailio handling, with the cfg built without imconf: start (-DD -E, own run
    dir, ctl socket), readiness, kamcmd, a SIPp run, stop by pid, nothing left behind."""
    srv = ctx.start_server(kamailio=True)
    expect(len(srv.worker_pids()) == 2, "children=2: want 2 udp receivers in core.psx")
    ctx.sipp("harness_options_405.xml")
    t0 = time.time()
    complaints = srv.stop()
    expect(not complaints, "stop: %s" % complaints)
    expect(srv.proc.returncode == 0, "exit status %s after SIGTERM" % srv.proc.returncode)
    expect(not (ctx.rundir / "k.pid").exists(), "pid file left behind")
    ctx.note("stopped in %.1fs" % (time.time() - t0))


@test("harness_detects_failures", "harness", standin="only")
def t_harness_negative(ctx):
    """The harness reports what it should: a SIPp check that fails, an RPC error from kamcmd,
    alarm lines in a log, and bad NOTIFYs in a trace."""
    ctx.start_server(kamailio=True)
    # 1. a scenario whose expectation is not met (the stand-in cfg answers 501) fails, with details
    run = ctx.sipp_start("reject_404.xml", "must-fail")
    rc = run.wait()
    expect(rc not in (0, "hung"), "sipp passed against a server answering 501 (exit %s)" % rc)
    text = run.failure_text()
    expect("501" in text, "failure report does not show the 501:\n%s" % text)
    # 2. kamcmd reports errors on stdout with exit 0: RpcResult must still see the error
    r = ctx.rpc("imconf.sessions")
    expect(not r.ok and r.error and r.error[0] == 500, "an unknown RPC was not seen as an error: %s" % r)
    expect(parse_kamcmd("{\n\turi: sip:a@b\n\tsub: {\n\t\tx: 1\n\t}\n}\n{\n\turi: sip:c@d\n}\n")[1] == {"uri": "sip:c@d"},
           "parse_kamcmd")
    # 3. the log scan
    for line in (" 1(9) CRITICAL: <core> x", " 0(1) ALERT: <core> [main.c]: child process 9 exited by a signal 11",
                 " 2(3) BUG: qm_free: freeing already freed pointer", "imconf PANIC at src/x.rs"):
        expect(LOG_ALARM.search(line), "log scan misses %r" % line)
    expect(not LOG_ALARM.search(" 0(1) INFO: <core> [main.c:854]: sig_usr(): signal 15 received"), "log scan false alarm")
    # 4. the trace checker on a hand-made trace: version jump, bad Content-Length, two endpoints,
    #    NOTIFY before the 200, partial without users state
    body = (b'<?xml version="1.0" encoding="UTF-8"?>\r\n<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" '
            b'entity="sip:conf1@127.0.0.1" state="partial" version="3"><users><user entity="sip:bob@127.0.0.1" state="full">'
            b'<endpoint entity="sip:bob@127.0.0.1"><status>connected</status></endpoint>'
            b'<endpoint entity="sip:bob2@127.0.0.1"><status>connected</status></endpoint></user></users></conference-info>')
    notify = (b"NOTIFY sip:alice@127.0.0.1:5999 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5160;branch=z9hG4bKx\r\n"
              b"Max-Forwards: 70\r\nFrom: <sip:conf1@127.0.0.1>;tag=srv\r\nTo: <sip:alice@127.0.0.1>;tag=cli\r\n"
              b"Call-ID: c1\r\nCSeq: 7 NOTIFY\r\nContact: <sip:imconf@127.0.0.1:5160>\r\nEvent: conference\r\n"
              b"Subscription-State: active;expires=10\r\nContent-Type: application/conference-info+xml\r\n"
              b"Content-Length: %d\r\n\r\n" % (len(body) + 3)) + body
    with tempfile.NamedTemporaryFile("wb", suffix=".msg", delete=False) as f:
        f.write(b"-" * 47 + b" 2026-01-01 00:00:00.000000\nUDP message received [%d] bytes :\n\n" % len(notify))
        f.write(notify + b"\n")
    problems = check_trace(f.name, "sip:imconf@127.0.0.1:5160")
    Path(f.name).unlink()
    ctx.note("trace checker on a bad NOTIFY: %s" % problems)
    for rule in ("R25", "R33", "R43", "R50", "R54"):
        expect(any(p.split(": ", 1)[1].startswith(rule) for p in problems),
               "trace checker did not report %s on a bad NOTIFY: %s" % (rule, problems))


# ============================================================================ main

# ============================================================================ cluster (enable_dmq)

def cluster_feed_round(cl, session, changes, truth):
    """Feeds (node index, aoia, status) one after another, 0.2 s apart (so that each node has
    heard of the previous change), and keeps `truth` up to date."""
    for i, aoia, status in changes:
        cl.feed(i, "imconf.participant", session, aoia, status)
        if status == "disconnected":
            truth.pop(aoia, None)
        else:
            truth[aoia] = status
        time.sleep(0.2)


@test("cluster_changes_reach_every_node", "issue 9 (enable_dmq) R26 R33 R40 R57", standin="skip")
def t_cluster_changes(ctx):
    """Three nodes on one DMQ bus. A session opened on node 1, its participants fed on nodes 1, 2
    and 3; one subscriber through each node. Changes fed to different nodes reach every subscriber:
    each one's merged view equals the truth, versions gapless, CSeqs increasing. Then the same
    participant changed on all three nodes at once: every node settles on one state (last writer
    wins), which every subscriber sees. Then node 3 restarts: it asks its peers for their sessions
    before serving, and a new subscription through it gets the state changed while it was down."""
    import cluster
    ctx.log_allow = r"DEBUG|enable_dmq"
    cl = cluster.Cluster(ctx)
    cl.start()
    s = "sip:cluster-chat@127.0.0.1"
    people = ["sip:%s@127.0.0.1" % n for n in ("alice", "bob", "carol", "dave", "erin", "gina", "harry")]
    alice, bob, carol, dave, erin, gina, harry = people
    cl.feed(0, "imconf.session_open", s, "ad-hoc")
    truth = {}
    cluster_feed_round(cl, s, [(0, alice, "connected"), (1, bob, "connected"), (2, carol, "connected")], truth)
    cl.wait_everywhere(s, 3)
    subs = [cluster.Subscriber(ctx, cl.nodes[i], s, who, "c%d" % i) for i, who in enumerate((alice, bob, carol))]
    for sub in subs:
        sub.subscribe()
    time.sleep(0.5)
    cluster_feed_round(cl, s, [(1, dave, "connected"), (2, erin, "alerting"), (0, erin, "connected"),
                               (2, dave, "disconnected"), (0, bob, "alerting"), (1, bob, "connected")], truth)
    time.sleep(1.0)
    problems = [p for sub in subs for p in sub.check(truth, "after changes on every node")]
    expect(not problems, "\n".join(problems))
    for sub in subs:
        expect(len(sub.notifies()) >= 3, "%s got %d NOTIFYs" % (sub.aor, len(sub.notifies())))

    # conflict: gina changed on the three nodes at once
    import threading
    threads = [threading.Thread(target=cl.feed, args=(i, "imconf.participant", s, gina, st))
               for i, st in enumerate(("connected", "alerting", "alerting"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(1.5)
    views = [sub.view()[0] for sub in subs]
    expect(views[0] == views[1] == views[2],
           "after concurrent changes of %s the subscribers disagree: %s" % (gina, views))
    expect(gina in views[0], "%s missing after concurrent changes: %s" % (gina, views[0]))
    truth[gina] = views[0][gina]
    problems = [p for sub in subs for p in sub.check(truth, "after concurrent changes")]
    expect(not problems, "\n".join(problems))

    # node 3 restarts; harry joins meanwhile; a new subscriber through node 3 sees him
    cl.nodes[2].stop()
    cluster_feed_round(cl, s, [(0, harry, "connected")], truth)
    cl.restart(2)
    late = cluster.Subscriber(ctx, cl.nodes[2], s, carol, "c-late")
    late.subscribe()
    time.sleep(0.5)
    problems = late.check(truth, "after node 3 restarted") + [
        p for sub in subs[:2] for p in sub.check(truth, "after node 3 restarted")]
    expect(not problems, "\n".join(problems))
    expect(re.search(r"synced with a peer", cl.nodes[2].log_text()),
           "the restarted node did not report a sync from its peers")



def udp_request(src_host, dst, method, ruri, headers, body=b""):
    """Sends one request from src_host (any loopback address, its own port) to dst=(host, port);
    the status code of the first final response, or None after 3 s."""
    import socket
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((src_host, 0))
        port = sock.getsockname()[1]
        tag = "%x" % int(time.time() * 1e6)
        head = ["%s %s SIP/2.0" % (method, ruri),
                "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK-%s;rport" % (src_host, port, tag),
                "Max-Forwards: 70", "Call-ID: %s@%s" % (tag, src_host), "CSeq: 1 %s" % method] + headers
        sock.sendto(("\r\n".join(head + ["Content-Length: %d" % len(body), "", ""])).encode() + body, dst)
        sock.settimeout(0.5)
        deadline = time.time() + 3
        while time.time() < deadline:
            try:
                data = sock.recv(65535)
            except socket.timeout:
                continue
            m = re.match(rb"SIP/2\.0 (\d{3})", data)
            if m and int(m.group(1)) >= 200:
                return int(m.group(1))
        return None
    finally:
        sock.close()


@test("example_trust_domain_and_cluster_sources", "issue 14 (defence in depth) R5 RFC 3325", standin="skip")
def t_example_sources(ctx):
    """The shipped example as a 2-node cluster whose CLUSTER_NET and TRUST_NET name only the nodes'
    addresses (127.0.0.1, 127.0.0.2). A KDMQ from 127.0.0.9 carrying a well-formed message that opens
    a session with an attacker connected gets 403 and changes nothing (imconf.sessions identical
    before and after, on both nodes); a SUBSCRIBE from 127.0.0.9 with a P-Asserted-Identity gets
    403 and no subscription. Control: the same KDMQ from a node's address is applied (so the 403
    came from the source check, not from a malformed body or a bad MAC: the message is sealed
    with the cluster's secret, as if captured from a node; that a node's address can still be
    spoofed is what the MAC is for, tested in cluster_authenticated_messages)."""
    import cluster
    nets = '"127.0.0.1/32,127.0.0.2/32"'
    secret_file = ctx.rundir / "imconf-dmq.secret"
    secret_file.write_text("# the example's DMQ_SECRET_FILE\n%s\n" % cluster.SECRET)

    def make(ctx, name, host, port, notify):
        srv = ExampleServer(ctx, ROOT / "kamailio-cfg" / "imconf.cfg", node=name, host=host, port=port, defines=[
            "WITH_DMQ", 'DMQ_ADDRESS="sip:%s:%d"' % (host, port), 'DMQ_NOTIFY="sip:%s"' % notify,
            "CLUSTER_NET=" + nets, "TRUST_NET=" + nets, 'DMQ_SECRET_FILE="%s"' % secret_file])
        ctx.servers.append(srv)
        return srv

    ctx.log_allow = r"DEBUG|enable_dmq|refused"
    cl = cluster.Cluster(ctx, n=2, make=make)
    cl.start()
    node = cl.nodes[0]
    evil_session, attacker = "sip:evil-chat@127.0.0.1", "sip:attacker@evil.example"
    body = cluster.seal(cluster.SECRET, 0x5eed, int(time.time() * 1000), 1, cluster.open_ops(evil_session, attacker))
    kdmq = ["From: <sip:127.0.0.9:5999>;tag=x", "To: <sip:imconf@%s:%d>" % (node.host, node.port),
            "Content-Type: application/x-imconf-cluster"]
    before = [n.rpc("imconf.sessions").structs() for n in cl.nodes]
    code = udp_request("127.0.0.9", (node.host, node.port), "KDMQ", "sip:imconf@%s:%d" % (node.host, node.port),
                       kdmq, body)
    expect(code == 403, "KDMQ from 127.0.0.9 (not in CLUSTER_NET): %s, want 403" % code)
    time.sleep(0.5)
    after = [n.rpc("imconf.sessions").structs() for n in cl.nodes]
    expect(after == before, "a refused KDMQ changed the sessions: %s -> %s" % (before, after))
    expect(re.search(r"KDMQ from 127\.0\.0\.9:\d+ refused", node.log_text()), "no log line for the refused KDMQ")

    sub = ["From: <%s>;tag=y" % ALICE, "To: <%s>" % SESSION, "Event: conference",
           "Accept: application/conference-info+xml", "Contact: <sip:alice@127.0.0.9:5998>", "Expires: 600",
           "P-Asserted-Identity: <%s>" % ALICE]
    node.rpc("imconf.session_open", SESSION, "ad-hoc")
    code = udp_request("127.0.0.9", (node.host, node.port), "SUBSCRIBE", SESSION, sub)
    expect(code == 403, "SUBSCRIBE with a P-Asserted-Identity from 127.0.0.9 (outside TRUST_NET): %s, want 403" % code)
    subs = node.rpc("imconf.subscriptions").structs()
    expect(not any(s.get("subscriber") for s in subs), "a subscription was made: %s" % subs)

    code = udp_request("127.0.0.2", (node.host, node.port), "KDMQ", "sip:imconf@%s:%d" % (node.host, node.port),
                       kdmq, body)
    expect(code == 200, "control: the same KDMQ from a node's address: %s, want 200" % code)
    deadline = time.time() + 3
    while cl.participants(0, evil_session) != 1 and time.time() < deadline:
        time.sleep(0.1)
    expect(cl.participants(0, evil_session) == 1,
           "control: the KDMQ from a node's address was not applied (is the test's message well-formed?)")


@test("kemi_example_trust_domain", "issue 14 (trust domain) R5 RFC 3325", standin="skip")
def t_kemi_example_trust(ctx):
    """The shipped KEMI lab example (imconf-kemi.cfg + imconf.lua) with TRUST_NET=127.0.0.1/32: a
    SUBSCRIBE with a P-Asserted-Identity from 127.0.0.9 gets 403 and is logged; the same from
    127.0.0.1 reaches imconf (404: no such session)."""
    srv = start_example(ctx, ROOT / "kamailio-cfg" / "imconf-kemi.cfg", defines=[
        'IMCONF_LUA="%s"' % (ROOT / "kamailio-cfg" / "imconf.lua"), 'TRUST_NET="127.0.0.1/32"'])
    ctx.log_allow = r"refused"
    sub = ["From: <%s>;tag=y" % ALICE, "To: <%s>" % SESSION, "Event: conference",
           "Accept: application/conference-info+xml", "Contact: <sip:alice@127.0.0.9:5998>", "Expires: 600",
           "P-Asserted-Identity: <%s>" % ALICE]
    code = udp_request("127.0.0.9", (srv.host, srv.port), "SUBSCRIBE", SESSION, sub)
    expect(code == 403, "SUBSCRIBE with a P-Asserted-Identity from 127.0.0.9: %s, want 403" % code)
    expect(re.search(r"from 127\.0\.0\.9 refused: P-Asserted-Identity", srv.log_text()), "no log line for the refusal")
    code = udp_request("127.0.0.1", (srv.host, srv.port), "SUBSCRIBE", SESSION, sub)
    expect(code == 404, "the same SUBSCRIBE from 127.0.0.1 (inside TRUST_NET): %s, want imconf's 404" % code)


@test("cluster_takeover_graceful_and_crash", "issue 9 (enable_dmq) R72 R33 R40 R25", standin="skip")
def t_cluster_takeover(ctx):
    """Three nodes, three subscriptions through each. Node 3 stops (SIGTERM): it sends its
    subscribers nothing (R72) and hands their state to the peers, which notify them in the same
    dialogs with the next version and CSeq and their own Contact; a refresh sent there is
    accepted. Then node 2 is killed (SIGKILL): after its silence the last node takes over its
    subscriptions too (full state, the CSeq jumping ahead, R40). After each step a change fed to
    node 1 reaches all nine: merged views equal the truth, versions gapless, CSeqs increasing."""
    import cluster
    ctx.log_allow = r"DEBUG|enable_dmq"
    cl = cluster.Cluster(ctx)
    cl.start()
    s = "sip:takeover@127.0.0.1"
    users = ["sip:%s@127.0.0.1" % n for n in ("alice", "bob", "carol", "dave", "erin", "frank")]
    alice, bob, carol, dave, erin, frank = users
    cl.feed(0, "imconf.session_open", s, "ad-hoc")
    truth = {}
    cluster_feed_round(cl, s, [(0, alice, "connected"), (1, bob, "connected"), (2, carol, "connected")], truth)
    cl.wait_everywhere(s, 3)
    subs = [cluster.Subscriber(ctx, cl.nodes[i], s, who, "t%d-%d" % (i, k))
            for i, who in enumerate((alice, bob, carol)) for k in range(3)]
    for sub in subs:
        sub.subscribe()
    time.sleep(1.0)  # the subscriptions reach the peers (timer, 100 ms) and everyone settles

    def settle_and_check(what, timeout=8):
        deadline = time.time() + timeout
        while True:
            problems = [p for sub in subs for p in sub.check(truth, what)]
            if not problems or time.time() > deadline:
                expect(not problems, "\n".join(problems))
                return
            time.sleep(0.2)

    settle_and_check("before any node left")
    before = {sub.call_id: len(sub.notifies()) for sub in subs}
    cl.nodes[2].stop()
    time.sleep(0.5)
    for sub in subs[6:]:
        got = sub.notifies()[before[sub.call_id]:]
        expect(got, "%s: no NOTIFY from the peer that took the subscription over" % sub.call_id)
        head = got[0][0]
        expect("terminated" not in (sipua.header(head, "Subscription-State") or ""),
               "%s: node 3 ended the subscription on stopping (R72: nothing is sent)" % sub.call_id)
        expect(sub.target_port() in (cl.ports[0], cl.ports[1]),
               "%s: the takeover NOTIFY's Contact is %s, not a live node" % (sub.call_id, sub.target_port()))
    cluster_feed_round(cl, s, [(0, dave, "connected")], truth)
    settle_and_check("after node 3 stopped")
    for sub in subs[6:]:
        code = sub.refresh()
        expect(code == 200, "%s: refresh sent to the new target got %s" % (sub.call_id, code))
    # a crash loses what changed in the last replication interval (100 ms timer, docs/cluster.md):
    # the state the peers hold is the last NOTIFY's once that interval has passed
    time.sleep(0.5)
    cl.crash(1)
    time.sleep(4.5)  # PEER_TIMEOUT_MS (3.5 s) and a timer tick
    cluster_feed_round(cl, s, [(0, erin, "connected"), (0, frank, "alerting")], truth)
    settle_and_check("after node 2 crashed")
    for sub in subs:
        expect(sub.target_port() == cl.ports[0],
               "%s: last NOTIFY's Contact port %s, want node 1's %d" % (sub.call_id, sub.target_port(), cl.ports[0]))


@test("cluster_example_config", "issue 9 (enable_dmq, kamailio-cfg/imconf.cfg -A WITH_DMQ)", standin="skip")
def t_cluster_example(ctx):
    """The shipped example as two cluster nodes (-A WITH_DMQ, DMQ_ADDRESS, DMQ_NOTIFY): a session
    opened and fed on node 1, subscribers through both nodes, a change fed to node 2: both
    subscribers' views equal the truth."""
    import cluster

    secret_file = ctx.rundir / "imconf-dmq.secret"
    secret_file.write_text(cluster.SECRET + "\n")

    def make(ctx, name, host, port, notify):
        srv = ExampleServer(ctx, ROOT / "kamailio-cfg" / "imconf.cfg", node=name, host=host, port=port, defines=[
            "WITH_DMQ", 'DMQ_ADDRESS="sip:%s:%d"' % (host, port), 'DMQ_NOTIFY="sip:%s"' % notify,
            'DMQ_SECRET_FILE="%s"' % secret_file])
        ctx.servers.append(srv)
        return srv

    ctx.log_allow = r"DEBUG|enable_dmq"
    cl = cluster.Cluster(ctx, n=2, make=make)
    cl.start()
    s = "sip:example-cluster@127.0.0.1"
    alice, bob, carol = ("sip:%s@127.0.0.1" % n for n in ("alice", "bob", "carol"))
    cl.feed(0, "imconf.session_open", s, "ad-hoc")
    truth = {}
    cluster_feed_round(cl, s, [(0, alice, "connected"), (0, bob, "connected")], truth)
    cl.wait_everywhere(s, 2)
    subs = [cluster.Subscriber(ctx, cl.nodes[0], s, alice, "x0"), cluster.Subscriber(ctx, cl.nodes[1], s, bob, "x1")]
    for sub in subs:
        sub.subscribe(expires=600)
    cluster_feed_round(cl, s, [(1, carol, "connected")], truth)
    deadline = time.time() + 5  # the example's min_notify_interval_ms is 1000
    while True:
        problems = [p for sub in subs for p in sub.check(truth, "example cluster")]
        if not problems or time.time() > deadline:
            break
        time.sleep(0.2)
    expect(not problems, "\n".join(problems))


def cluster_state(cl):
    """What every node holds: its sessions and its subscriptions (imconf.sessions, .subscriptions;
    without expires_in, which the clock moves)."""
    subs = lambda n: [{k: v for k, v in st.items() if k != "expires_in"}  # noqa: E731
                      for st in n.rpc("imconf.subscriptions").structs()]
    return [(n.rpc("imconf.sessions").structs(), subs(n)) for n in cl.nodes]


def cluster_stats(srv):
    """The cluster_* counters of imconf.stats on one node."""
    for st in srv.rpc("imconf.stats").structs():
        if "cluster_accepted" in st:
            return {k: int(v) for k, v in st.items() if k.startswith("cluster_")}
    raise TestFailure("imconf.stats has no cluster counters")


def kdmq(src_host, node, body):
    """One KDMQ for the peer "imconf" of `node` from `src_host`: the final response code."""
    to = "sip:imconf@%s:%d" % (node.host, node.port)
    return udp_request(src_host, (node.host, node.port), "KDMQ", to,
                       ["From: <sip:%s:5999>;tag=x" % src_host, "To: <%s>" % to,
                        "Content-Type: application/x-imconf-cluster"], body)


@test("cluster_authenticated_messages", "issue 14 R96", standin="skip")
def t_cluster_auth(ctx):
    """Three nodes on one DMQ bus (the test cfg: no source filter, so only the MAC decides), a
    subscriber through node 1. The attacker, from 127.0.0.9 (no node), sends node 1 messages that
    would open a session with itself connected: unsigned (the old imconf-cluster/1 form), sealed
    with a wrong secret, and with a bad MAC line; a message sealed with the cluster's secret but 60 s
    old; each gets 403 and changes nothing on any node (imconf.sessions and imconf.subscriptions
    identical before and after), and each is counted under its reason. A message sealed with the
    secret, sent from a node's address (what a node sends), is applied. Replayed after the session
    it opened was closed, it gets 403 and the session stays closed. A flood of 200 forged messages
    from one address, each datagram from a new port, is counted whole but logged at most twice (once
    per address per 10 s). A real change fed on node 2 still reaches node 1's subscriber."""
    import cluster
    ctx.log_allow = r"DEBUG|enable_dmq|refused"
    cl = cluster.Cluster(ctx)
    cl.start()
    n1 = cl.nodes[0]
    s, alice = "sip:auth-chat@127.0.0.1", "sip:alice@127.0.0.1"
    cl.feed(0, "imconf.session_open", s, "ad-hoc")
    truth = {}
    cluster_feed_round(cl, s, [(0, alice, "connected")], truth)
    cl.wait_everywhere(s, 1)
    sub = cluster.Subscriber(ctx, n1, s, alice, "a0")
    sub.subscribe(expires=600)
    time.sleep(0.5)

    evil, attacker = "sip:evil-chat@127.0.0.1", "sip:attacker@evil.example"
    ops = cluster.open_ops(evil, attacker)
    now = lambda: int(time.time() * 1000)  # noqa: E731
    forged = [
        ("unsigned", (b"imconf-cluster/1 5eed\n" + ops), "cluster_refused_unsigned"),
        ("a wrong secret", cluster.seal("not-the-cluster-secret-0123456789", 0x5eed, now(), 1, ops),
         "cluster_refused_bad_mac"),
        ("a MAC of zeros", b"imconf-cluster/2 " + b"0" * 64 + b"\n" + b"5eed %x 2\n" % now() + ops,
         "cluster_refused_bad_mac"),
        ("the secret, 60 s old", cluster.seal(cluster.SECRET, 0x5eed, now() - 60000, 3, ops),
         "cluster_refused_stale"),
    ]
    for what, body, counter in forged:
        before, counts = cluster_state(cl), cluster_stats(n1)
        code = kdmq("127.0.0.9", n1, body)
        expect(code == 403, "KDMQ with %s from 127.0.0.9: %s, want 403" % (what, code))
        time.sleep(0.3)
        after = cluster_state(cl)
        expect(after == before, "KDMQ with %s changed the state: %s -> %s" % (what, before, after))
        got = cluster_stats(n1)
        expect(got[counter] == counts[counter] + 1, "KDMQ with %s: %s %d -> %d, want +1"
               % (what, counter, counts[counter], got[counter]))

    # what a node sends: applied
    valid = cluster.seal(cluster.SECRET, 0x5eed, now(), 10, ops)
    expect(kdmq("127.0.0.2", n1, valid) == 200, "a message sealed with the cluster's secret was refused")
    deadline = time.time() + 3
    while cl.participants(0, evil) != 1 and time.time() < deadline:
        time.sleep(0.1)
    expect(cl.participants(0, evil) == 1, "a message sealed with the cluster's secret was not applied")
    # the session closed, the captured message replayed (from anywhere): refused, still closed
    cl.feed(0, "imconf.session_close", evil)
    time.sleep(0.5)
    before, counts = cluster_state(cl), cluster_stats(n1)
    for src in ("127.0.0.9", "127.0.0.2"):
        code = kdmq(src, n1, valid)
        expect(code == 403, "the captured message replayed from %s: %s, want 403" % (src, code))
    time.sleep(0.3)
    expect(cluster_state(cl) == before, "a replayed message changed the state")
    expect(cl.participants(0, evil) is None, "the replayed message reopened the closed session")
    got = cluster_stats(n1)
    expect(got["cluster_refused_replay"] == counts["cluster_refused_replay"] + 2,
           "replays counted %d -> %d, want +2" % (counts["cluster_refused_replay"], got["cluster_refused_replay"]))

    # a flood: every message counted and refused, the log not flooded
    lines_before = len(re.findall(r"cluster message from 127\.0\.0\.7:", n1.log_text()))
    counts = cluster_stats(n1)
    import socket
    to = "sip:imconf@%s:%d" % (n1.host, n1.port)
    for i in range(200):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.7", 0))  # a new source port each time
        body = cluster.seal("an-attacker-guessing-the-secret-%d" % i, 0xbad, now(), i, ops)
        head = ["KDMQ %s SIP/2.0" % to, "Via: SIP/2.0/UDP 127.0.0.7:%d;branch=z9hG4bK-f%d" % (sock.getsockname()[1], i),
                "Max-Forwards: 70", "From: <sip:127.0.0.7:5999>;tag=f", "To: <%s>" % to, "Call-ID: flood-%d" % i,
                "CSeq: 1 KDMQ", "Content-Type: application/x-imconf-cluster", "Content-Length: %d" % len(body), "", ""]
        sock.sendto("\r\n".join(head).encode() + body, (n1.host, n1.port))
        sock.close()
    deadline = time.time() + 10
    while cluster_stats(n1)["cluster_refused_bad_mac"] < counts["cluster_refused_bad_mac"] + 200 \
            and time.time() < deadline:
        time.sleep(0.2)
    got = cluster_stats(n1)
    expect(got["cluster_refused_bad_mac"] == counts["cluster_refused_bad_mac"] + 200,
           "the flood: bad_mac %d -> %d, want +200" % (counts["cluster_refused_bad_mac"], got["cluster_refused_bad_mac"]))
    lines = len(re.findall(r"cluster message from 127\.0\.0\.7:", n1.log_text())) - lines_before
    expect(1 <= lines <= 2, "the flood of 200 forged messages wrote %d log lines, want 1 or 2" % lines)
    expect(cl.participants(0, evil) is None, "the flood changed the state")

    # the real nodes still talk
    bob = "sip:bob@127.0.0.1"
    cluster_feed_round(cl, s, [(1, bob, "connected")], truth)
    deadline = time.time() + 5
    while True:
        problems = sub.check(truth, "after the attacks")
        if not problems or time.time() > deadline:
            break
        time.sleep(0.2)
    expect(not problems, "\n".join(problems))


@test("cluster_key_rotation_without_loss", "issue 14 R96 R33", standin="skip")
def t_cluster_rekey(ctx):
    """Three nodes, each with its own dmq_secret_file holding the key OLD; a subscriber through
    node 1 while changes are fed on nodes 2 and 3 every 0.3 s throughout. The documented rotation,
    one node at a time with `imconf.cluster_rekey`: every file to "OLD, then NEW" (sign OLD, accept
    NEW), then to "NEW, then OLD", then to "NEW" alone. The subscriber's merged view equals the
    truth, versions gapless (no NOTIFY lost), and no node refused a message. Control: a node rekeyed
    to a key the others do not hold is not heard (its change does not reach node 1, which counts a
    bad MAC); a file with a short secret is refused by the RPC with the old keys kept."""
    import threading
    import cluster
    ctx.log_allow = r"DEBUG|enable_dmq|refused|cluster_rekey"
    old, new, other = "OLD-" + "a" * 32, "NEW-" + "b" * 32, "OTHER-" + "c" * 32
    files = [ctx.rundir / ("secret-n%d" % (i + 1)) for i in range(3)]
    for f in files:
        f.write_text(old + "\n")

    # each node reads its own file (as on separate hosts)
    class Keyed(cluster.Cluster):
        def _node(self, i, name=None):
            self.extra = [m for m in self.extra if m[1] != "dmq_secret_file"] + [
                ("imconf", "dmq_secret_file", str(files[i]))]
            return super()._node(i, name)

    cl = Keyed(ctx, modparams=[("imconf", "dmq_secret_file", str(files[0]))])
    cl.start()
    s, alice = "sip:rekey-chat@127.0.0.1", "sip:alice@127.0.0.1"
    cl.feed(0, "imconf.session_open", s, "ad-hoc")
    truth = {alice: "connected"}
    cl.feed(0, "imconf.participant", s, alice, "connected")
    cl.wait_everywhere(s, 1)
    sub = cluster.Subscriber(ctx, cl.nodes[0], s, alice, "r0")
    sub.subscribe(expires=600)

    stop, lock, errors = threading.Event(), threading.Lock(), []

    def feeder():
        i = 0
        while not stop.is_set():
            who = "sip:user%d@127.0.0.1" % (i % 6)
            status = "connected" if (i // 6) % 2 == 0 else "disconnected"
            r = cl.nodes[1 + i % 2].rpc("imconf.participant", s, who, status)
            with lock:
                if not r.ok:
                    errors.append(str(r))
                elif status == "disconnected":
                    truth.pop(who, None)
                else:
                    truth[who] = status
            i += 1
            time.sleep(0.3)

    t = threading.Thread(target=feeder, daemon=True)
    t.start()
    try:
        for phase in ([old, new], [new, old], [new]):
            for i, f in enumerate(files):
                f.write_text("\n".join(phase) + "\n")
                r = cl.nodes[i].rpc("imconf.cluster_rekey")
                expect(r.ok and "signing key" in r.text, "node %d: imconf.cluster_rekey: %s" % (i + 1, r))
                ctx.note("node %d rekeyed to %s: %s" % (i + 1, "/".join(k[:3] for k in phase), r.text.strip()))
                time.sleep(1.0)
    finally:
        stop.set()
        t.join(timeout=10)
    expect(not errors, "feeding failed: %s" % errors)
    deadline = time.time() + 5
    while True:
        with lock:
            problems = sub.check(dict(truth), "through the key rotation")
        if not problems or time.time() > deadline:
            break
        time.sleep(0.2)
    expect(not problems, "\n".join(problems))
    refused = {i + 1: {k: v for k, v in cluster_stats(n).items() if k.startswith("cluster_refused") and v}
               for i, n in enumerate(cl.nodes)}
    expect(not any(refused.values()), "messages refused during the rotation: %s" % refused)
    fps = {cl.nodes[i].rpc("imconf.cluster_rekey").text.strip() for i in range(3)}
    expect(len(fps) == 1, "the nodes report different keys after the rotation: %s" % fps)

    # a bad file: refused, the keys in use kept
    files[2].write_text("short\n")
    r = cl.nodes[2].rpc("imconf.cluster_rekey")
    expect(not r.ok and "at least 16" in r.text, "a 5-byte secret: imconf.cluster_rekey answered %s" % r)
    # control: node 3 with a key nobody else holds is not heard
    files[2].write_text(other + "\n")
    expect(cl.nodes[2].rpc("imconf.cluster_rekey").ok, "rekey to OTHER failed")
    before = cluster_stats(cl.nodes[0])["cluster_refused_bad_mac"]
    cl.feed(2, "imconf.participant", s, "sip:mallory@127.0.0.1", "connected")
    time.sleep(1.0)
    expect(cl.participants(0, s) == cl.participants(1, s) and cl.participants(2, s) == cl.participants(0, s) + 1,
           "a change signed with a key node 1 does not hold reached it (participants per node: %s)"
           % [cl.participants(i, s) for i in range(3)])
    expect(cluster_stats(cl.nodes[0])["cluster_refused_bad_mac"] > before, "node 1 did not count the bad MAC")
    files[2].write_text(new + "\n")
    expect(cl.nodes[2].rpc("imconf.cluster_rekey").ok, "rekey back to NEW failed")


@test("cluster_start_refused_without_secret", "issue 14 R96 INTERFACE(dmq_secret)", standin="skip")
def t_cluster_no_secret(ctx):
    """enable_dmq=1 without dmq_secret or dmq_secret_file, with a 5-byte dmq_secret, with both
    set, or with a dmq_secret_file that does not exist: Kamailio refuses to start, with one line
    naming the parameter, and no crash."""
    import cluster
    ctx.log_allow = r"(?i)dmq_secret|enable_dmq|init|mod_init"
    port = KPORTS.take()
    cases = [
        ([], "cluster messages must be authenticated"),
        ([("imconf", "dmq_secret", "short")], "at least 16"),
        ([("imconf", "dmq_secret", cluster.SECRET), ("imconf", "dmq_secret_file", "/nonexistent")], "not both"),
        ([("imconf", "dmq_secret_file", str(ctx.rundir / "missing.secret"))], "cannot read it"),
    ]
    for i, (mp, why) in enumerate(cases):
        mp = [("dmq", "server_address", "sip:127.0.0.1:%d" % port),
              ("dmq", "notification_address", "sip:127.0.0.1:%d" % port), ("imconf", "enable_dmq", 1)] + mp
        srv = KamailioServer(ctx, defines=["IMCONF_DMQ"], modparams=mp, node="nosecret%d" % i, port=port)
        ctx.servers.append(srv)
        srv.expect_exit = True
        srv.start(expect_ready=False)
        try:
            srv.proc.wait(timeout=10)
        except Exception:
            raise TestFailure("case %d: kamailio kept running (%s)" % (i, mp[3:]))
        text = srv.log_text()
        expect(srv.proc.returncode != 0, "case %d: kamailio exited 0 (%s)" % (i, mp[3:]))
        expect(why in text, "case %d (%s): no log line saying %r:\n%s" % (i, mp[3:], why, tail(srv.log_path, 20)))
        bad = [l for l in text.splitlines() if re.search(r"exited by a signal|PANIC|\bBUG:", l)]
        expect(not bad, "case %d: a crash instead of a clean failure: %s" % (i, bad))


# the hostile-cluster-message corpus (corpus.cluster_cases): IMCONF_CLUSTER_N cases (`make fuzz`: 10^4)
CLUSTER_N = int(os.environ.get("IMCONF_CLUSTER_N", "500"))
FUZZ_NODE = 0xf022   # the sender id the corpus's authentic messages carry


def node_stat(srv, name):
    for st in srv.rpc("imconf.stats").structs():
        if name in st:
            return int(st[name])
    raise TestFailure("imconf.stats of %s has no %s" % (srv.log_path.name, name))


def settle_node_shm(srv, want=None, tolerance=0, timeout=20, stable_s=2.0):
    """settle_shm for one node of a cluster."""
    return settle_shm(None, want=want, timeout=timeout, tolerance=tolerance, stable_s=stable_s,
                      read=lambda: node_stat(srv, "shm_bytes_in_use"))


def stable_cluster_state(cl, timeout=10):
    """cluster_state once two readings 0.5 s apart agree (NOTIFYs in flight settle)."""
    deadline = time.time() + timeout
    prev = cluster_state(cl)
    while time.time() < deadline:
        time.sleep(0.5)
        cur = cluster_state(cl)
        if cur == prev:
            return cur
        prev = cur
    return prev


def counter_moves(before, after):
    return {k[len("cluster_"):]: after[k] - before[k] for k in after}


@test("robustness_corpus_cluster", "issue 14 R96 (hostile cluster messages)", standin="skip")
def t_corpus_cluster(ctx):
    """IMCONF_CLUSTER_N (500; `make fuzz`: 10^4) generated KDMQ bodies (corpus.cluster_cases, seed
    IMCONF_CORPUS_SEED) sent to node 1 of two from 127.0.0.9, at most 32 unanswered at once, each
    answered: unauthenticated ones (random bytes, old format, damaged, truncated or extended seals,
    wrong secret, another body's MAC, non-UTF-8, ~60 kB) 403; authentic but stale (31 s to 1 h
    off) or replayed (exact resends, reused or too old counters) 403; authentic with malformed
    operations 400; authentic, well-formed but hostile (unknown sessions, invalid values, junk
    URIs, random session and subscription records, extreme stamps) 200 or 400. Phase A
    (categories 1-3) changes nothing on either node (imconf.sessions, imconf.subscriptions), and
    shm settles back; phase B (category 4) may change state; the fuzzer's sender then goes silent
    and node 1 takes over (or refuses cleanly) the random subscription records it sent; phase C
    resends phase B's accepted messages: 403, nothing changes. The cluster_* counters move by
    exactly the cases of each kind (accepted by at least the applied ones); the same processes
    on both nodes; the subscriber's NOTIFYs parse, versions gapless; node 1's refusal log stays
    within one line per 10 s; no log line forged by a value's newline; and changes still flow
    both ways (an update of a participant fed on node 1 after the extreme stamps reaches node 2)."""
    import cluster
    ctx.log_allow = r"DEBUG|enable_dmq|refused|not applied|left out"
    cl = cluster.Cluster(ctx, n=2)
    cl.start()
    n1, n2 = cl.nodes
    src = "127.0.0.9"
    target, member = corpus.CL_TARGET, corpus.CL_MEMBER
    cl.feed(0, "imconf.session_open", target, "ad-hoc")
    cl.feed(0, "imconf.participant", target, member, "connected")
    cl.wait_everywhere(target, 1)
    sub = cluster.Subscriber(ctx, n1, target, member, "fz0")
    sub.subscribe(expires=3600)
    time.sleep(0.5)
    pids = [all_pids(n) for n in cl.nodes]
    cases = corpus.cluster_cases(CORPUS_SEED, CLUSTER_N, cluster.SECRET, FUZZ_NODE)
    phases = {p: [c for c in cases if c.phase == p] for p in "ABC"}
    prefix = "clfz-%x-%x" % (CORPUS_SEED, int(time.time()))
    results, sent = {}, {}
    counts, secs = {}, {}
    summary = {"seed": CORPUS_SEED, "cases": len(cases), "node_id": "%x" % FUZZ_NODE}
    problems = []

    def send(phase):
        s0, t = cluster_stats(n1), time.time()
        corpus.run_cluster(src, (n1.host, n1.port), phases[phase], call_prefix=prefix, results=results, sent=sent)
        secs[phase] = round(time.time() - t, 1)
        # the last answers were sent after the counting: nothing is in flight
        counts[phase] = counter_moves(s0, cluster_stats(n1))

    def judge(phase):
        for c in phases[phase]:
            code = results[c.key]
            if code not in c.allowed:
                problems.append("%s (phase %s, category %d %s, variant %s, %d bytes): %s, allowed %s; body %.200r"
                                % (c.key, phase, c.category, corpus.CL_CATEGORIES[c.category], c.name,
                                   len(sent.get(c.key, b"")), code, sorted(c.allowed), sent.get(c.key)))

    def reason_of(c):
        return corpus.cluster_open(sent[c.key], [cluster.SECRET])[0]

    try:
        t_start = time.time()
        # phase A: categories 1-3 change nothing
        before = stable_cluster_state(cl)
        shm0 = settle_node_shm(n1)
        send("A")
        judge("A")
        after = stable_cluster_state(cl)
        if after != before:
            problems.append("phase A (unauthenticated, stale/replayed, malformed) changed the state:\n%s\nbefore:\n%s"
                            % (after, before))
        cat = lambda p, k: [c for c in phases[p] if c.category == k]  # noqa: E731
        a1, a2, a3 = cat("A", 1), cat("A", 2), cat("A", 3)
        want = {"refused_unsigned": sum(reason_of(c) == "unsigned" for c in a1),
                "refused_bad_mac": sum(reason_of(c) == "bad_mac" for c in a1),
                "refused_malformed": len(a3)}
        got = counts["A"]
        for k, v in want.items():
            if got[k] != v:
                problems.append("phase A: cluster_%s moved by %d, want %d" % (k, got[k], v))
        if got["refused_stale"] + got["refused_replay"] != len(a2):
            problems.append("phase A: cluster_refused_stale + _replay moved by %d + %d, want %d (category 2)"
                            % (got["refused_stale"], got["refused_replay"], len(a2)))
        # (cluster_accepted counts applied messages only: the real peer's heartbeats move it, the
        # authentic malformed ones of category 3 must not; not checked exactly for that reason)
        shm1 = settle_node_shm(n1, want=shm0, tolerance=64 * 1024)
        summary["shm_phase_a"] = [shm0, shm1]
        if shm1 > shm0 + 64 * 1024:
            problems.append("node 1: shm_bytes_in_use %d before phase A, %d after it settled" % (shm0, shm1))

        # phase B: category 4, authentic hostile content
        send("B")
        judge("B")
        b400 = sum(results[c.key] == 400 for c in phases["B"])
        # the highest stamp node 1 read (it moves the node's clock, core::cluster::next_stamp)
        max_stamp = max([int(line.split(" ")[1], 16)
                         for c in phases["B"] if results[c.key] == 200
                         for line in corpus.cluster_open(sent[c.key], [cluster.SECRET])[1][3].decode().splitlines()
                         if line[:2] in ("O ", "C ", "P ")] or [0])
        got = counts["B"]
        for k in ("refused_unsigned", "refused_bad_mac", "refused_stale", "refused_replay"):
            if got[k]:
                problems.append("phase B: cluster_%s moved by %d, want 0" % (k, got[k]))
        if got["refused_malformed"] != b400:
            problems.append("phase B: cluster_refused_malformed moved by %d, but %d cases got 400"
                            % (got["refused_malformed"], b400))
        b200 = sum(results[c.key] == 200 for c in phases["B"])
        if got["accepted"] < b200:
            problems.append("phase B: cluster_accepted moved by %d, want at least the %d applied"
                            % (got["accepted"], b200))
        # the fuzzer's sender goes silent: node 1 takes over what it claimed to hold
        silent = "peer %016x silent" % FUZZ_NODE
        took = "subscriptions of peer %016x (it went silent)" % FUZZ_NODE
        try:
            ctx.wait_for("node 1 notices the fuzzer's sender went silent and takes over",
                         lambda: silent in n1.log_text() and took in n1.log_text(), timeout=15, interval=0.2)
        except TestFailure as e:
            problems.append(str(e))
        summary["takeover"] = [l.split("enable_dmq: ", 1)[-1] for l in n1.log_text().splitlines() if took in l]

        # phase C: resends of phase B's (applied) messages change nothing
        before = stable_cluster_state(cl)
        send("C")
        judge("C")
        after = stable_cluster_state(cl)
        if after != before:
            problems.append("phase C (resent authentic messages) changed the state:\n%s\nbefore:\n%s" % (after, before))
        got = counts["C"]
        if got["refused_stale"] + got["refused_replay"] != len(phases["C"]):
            problems.append("phase C: cluster_refused_stale + _replay moved by %d + %d, want %d"
                            % (got["refused_stale"], got["refused_replay"], len(phases["C"])))
        for k in ("refused_unsigned", "refused_bad_mac", "refused_malformed"):
            if got[k]:
                problems.append("phase C: cluster_%s moved by %d, want 0" % (k, got[k]))
        elapsed = time.time() - t_start

        # the nodes: the same processes, NOTIFYs that parse, changes flowing both ways
        for i, n in enumerate(cl.nodes):
            now = all_pids(n)
            if not n.alive() or now != pids[i]:
                problems.append("node %d: processes %s before, %s after (alive: %s)" % (i + 1, pids[i], now, n.alive()))
        import xml.etree.ElementTree as ET
        summary["target_notifies"] = len(sub.notifies())
        unparsable = []
        for head, body in sub.notifies():
            try:
                if body.strip():
                    ET.fromstring(body)
            except ET.ParseError as e:
                line, col = e.position
                unparsable.append("%s at %r" % (e, body.splitlines()[line - 1][max(0, col - 60):col + 60]))
        if unparsable:
            problems.append("%d of %d NOTIFYs to the subscriber of %s are not well-formed XML, e.g. %s"
                            % (len(unparsable), len(sub.notifies()), target, unparsable[0]))
        else:
            _, versions, cseqs = sub.view()
            if versions != list(range(1, len(versions) + 1)) or any(b <= a for a, b in zip(cseqs, cseqs[1:])):
                problems.append("the subscriber of %s got versions %s, CSeqs %s" % (target, versions, cseqs))
        live = "sip:fuzz-live-after@127.0.0.1"
        bob, carol = "sip:bob@127.0.0.1", "sip:carol@127.0.0.1"
        cl.feed(1, "imconf.session_open", live, "ad-hoc")
        cl.feed(1, "imconf.participant", live, member, "connected")
        try:
            cl.wait_everywhere(live, 1)
            subs = [cluster.Subscriber(ctx, n, live, member, "live%d" % i) for i, n in enumerate(cl.nodes)]
            for s_ in subs:
                s_.subscribe()
            time.sleep(0.5)
            truth = {member: "connected"}
            # node 1 first: its first stamp after the corpus's extreme ones
            cluster_feed_round(cl, live, [(0, member, "alerting"), (0, bob, "connected"), (1, carol, "connected"),
                                          (1, bob, "alerting"), (0, carol, "disconnected")], truth)
            deadline = time.time() + 5
            while True:
                late = [p for s_ in subs for p in s_.check(truth, "after the corpus")]
                if not late or time.time() > deadline:
                    break
                time.sleep(0.2)
            if late and max_stamp >= (1 << 64) - (1 << 16):
                late.append("(node 1 read stamp %x in the corpus: the next stamp it makes overflows, "
                            "core::cluster::next_stamp)" % max_stamp)
            problems.extend(late)
        except TestFailure as e:
            problems.append("after the corpus: %s" % e)

        # the logs
        text1 = n1.log_text()
        lines = len(re.findall(r"cluster message from 127\.0\.0\.9:", text1))
        allowed_lines = 2 + int(elapsed // 10)
        if lines > allowed_lines:
            problems.append("node 1 logged %d refusals from %s in %.0f s, want at most %d (one per 10 s)"
                            % (lines, src, elapsed, allowed_lines))
        for i, n in enumerate(cl.nodes):
            text = n.log_text()
            all_lines = text.splitlines()
            forged = [j for j, l in enumerate(all_lines) if l.lstrip().startswith(corpus.CL_FORGED_LINE.decode())]
            if forged:
                problems.append("node %d: %d log lines forged by a CR/LF inside a value of an authentic message, e.g. "
                                "%r following %r" % (i + 1, len(forged), all_lines[forged[0]][:100],
                                                     all_lines[forged[0] - 1][-160:]))
            caught = [l for l in all_lines if re.search(r"panic caught|panicked at", l)]
            if caught:
                problems.append("node %d: %s" % (i + 1, caught[:5]))
        summary.update({
            "phases": {p: len(v) for p, v in phases.items()}, "seconds": secs, "seconds_total": round(elapsed, 1),
            "by_category": {}, "by_variant": {}, "counters_moved": counts,
            "refusal_log_lines": lines, "refusal_log_lines_allowed": allowed_lines,
            "not_applied_lines": len(re.findall(r"not applied", text1)),
            "left_out_lines": len(re.findall(r"left out", text1)),
            "not_taken_over_lines": len(re.findall(r"not taken over", text1)),
            "category4_400": b400})
        summary["max_stamp_applied"] = "%x" % max_stamp
        for c in cases:
            code = str(results.get(c.key))
            k = "%d %s" % (c.category, corpus.CL_CATEGORIES[c.category])
            summary["by_category"].setdefault(k, {})
            summary["by_category"][k][code] = summary["by_category"][k].get(code, 0) + 1
            v = "%d/%s" % (c.category, c.name if c.category != 4 else ("many-ops" if c.name == "many-ops" else
                                                                       "+".join(sorted(set(c.name.split("+"))))))
            summary["by_variant"].setdefault(v, {})
            summary["by_variant"][v][code] = summary["by_variant"][v].get(code, 0) + 1
        ctx.note("cluster corpus: %d cases (seed %d) in %.1fs (A %ss, B %ss, C %ss): %s; counters moved %s; "
                 "%d refusal lines (allowed %d)" % (len(cases), CORPUS_SEED, elapsed, secs.get("A"), secs.get("B"),
                                                   secs.get("C"), summary["by_category"], counts, lines, allowed_lines))
        expect(not problems, "%d problems:\n  %s" % (len(problems), "\n  ".join(p[:1500] for p in problems[:30])))
    finally:
        summary["problems"] = problems[:200]
        (ctx.rundir / "cluster-corpus-summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True))


def main():
    p = argparse.ArgumentParser(description="imconf integration tests (real Kamailio + SIPp)")
    p.add_argument("--module", default=str(ROOT / "build" / "imconf.so"),
                   help="the module to load (default: build/imconf.so)")
    p.add_argument("--kamailio", help="the kamailio binary under test (default: the target of "
                   "scripts/kamailio_target.py, i.e. what `make build` builds for: KAMAILIO_PREFIX, KAMAILIO_BIN)")
    p.add_argument("--kamcmd", help="its kamcmd (default: the target's)")
    p.add_argument("--mpath", help="its module directory, holding tm.so, sl.so, ... (default: the target's)")
    p.add_argument("-k", dest="filters", action="append", default=[],
                   help="run only tests whose name contains this (repeatable)")
    p.add_argument("--list", action="store_true", help="list the tests and exit")
    p.add_argument("--standin", action="store_true",
                   help="check the harness without the module (fake_imconf.py, cfg without imconf, self-tests)")
    p.add_argument("--fake-bug", default="",
                   help="with --standin: make the stand-in misbehave one way (fake_imconf.BUGS)")
    p.add_argument("-v", action="store_true", help="print the notes of passing tests too")
    opts = p.parse_args()
    opts.module = Path(opts.module).resolve()
    if opts.list:
        print("%-40s %s" % ("sipp_scenarios_parse", "(every tests/sipp/*.xml loads)"))
        for t in TESTS:
            print("%-40s %-28s %s" % (t["name"], t["rules"], "" if t["standin"] == "fake" else "[standin: %s]" % t["standin"]))
        return 0
    if not (opts.kamailio and opts.kamcmd and opts.mpath):
        target = H.kamailio_target()
        opts.kamailio = opts.kamailio or target["bin"]
        opts.kamcmd = opts.kamcmd or target["kamcmd"]
        opts.mpath = opts.mpath or target["moddir"]
    H.use_kamailio(opts.kamailio, opts.kamcmd, opts.mpath)
    for tool in (H.KAMAILIO, H.KAMCMD, SIPP):
        if not Path(tool).exists():
            print("missing tool: %s" % tool)
            return 2
    if not opts.standin and not opts.module.exists():
        print("module not found: %s\n(build it with `make build`, or check the harness alone with --standin)" % opts.module)
        return 2
    print("imconf integration tests against %s, in %s (modules %s)" % (
        "the stand-in (fake_imconf.py%s; kamailio -A IMCONF_STANDIN)" % (", bug " + opts.fake_bug if opts.fake_bug else "")
        if opts.standin else opts.module, H.kamailio_version(), H.MPATH))

    def wanted(name):
        return not opts.filters or any(f in name for f in opts.filters)

    failed, passed, skipped = [], 0, 0
    t0 = time.time()
    if wanted("sipp_scenarios_parse"):
        s = time.time()
        n, problems = lint_scenarios()
        report("FAIL" if problems else "PASS", "sipp_scenarios_parse", "(%d scenarios)" % n, time.time() - s)
        if problems:
            failed.append("sipp_scenarios_parse")
            print(indent("\n".join(problems)))
        else:
            passed += 1
    for t in TESTS:
        if not wanted(t["name"]) or (t["standin"] == "only" and not opts.standin):
            continue
        if opts.standin and t["standin"] == "skip":
            report("SKIP", t["name"], t["rules"], 0, "(needs the module)")
            skipped += 1
            continue
        ctx, failure, skip, secs = run_test(opts, t["name"], t["fn"])
        report("SKIP" if skip else ("FAIL" if failure else "PASS"), t["name"], t["rules"], secs)
        if skip:
            skipped += 1
            print(indent(skip))
        elif failure:
            failed.append(t["name"])
            print(indent(failure))
            for srv in ctx.servers:
                print(indent("---- %s (tail) ----\n%s" % (srv.log_path, tail(srv.log_path, 40))))
            if ctx.notes:
                print(indent("---- notes (last 25) ----\n" + "\n".join(ctx.notes[-25:])))
            print(indent("(run directory: %s)" % ctx.rundir))
        else:
            passed += 1
            if opts.v and ctx.notes:
                print(indent("\n".join(ctx.notes)))
    print("%d passed, %d failed, %d skipped in %.1fs%s" % (
        passed, len(failed), skipped, time.time() - t0, (" -- failed: " + ", ".join(failed)) if failed else ""))
    return 1 if failed else 0


def report(status, name, rules, secs, extra=""):
    print("%-4s %-40s %-30s %5.1fs %s" % (status, name, rules, secs, extra), flush=True)


def indent(text, n=5):
    return "\n".join(" " * n + line for line in text.splitlines())


if __name__ == "__main__":
    sys.exit(main())
