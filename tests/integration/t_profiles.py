"""R93-R95 (issue 16): output profiles, chosen per subscription. The test cfg picks the profile
by User-Agent (`profile-<name>` -> imconf_handle_subscribe("<name>")), as an operator would;
the Python UA (cluster.Subscriber) collects every NOTIFY, whose bodies are checked here."""
import time
import xml.etree.ElementTree as ET

from harness import NS, schema_problems
from itest import ALICE, BOB, CAROL, DAVE, SESSION, expect, test

ERIN = "sip:erin@127.0.0.1"


def profile_subscriber(ctx, srv, aor, name, ua=None, accept_contact="*;+g.oma.sip-im", contact_tags=""):
    import cluster
    extra = ["User-Agent: %s" % ua] if ua else []
    sub = cluster.Subscriber(ctx, srv, SESSION, aor, name, extra=extra, accept_contact=accept_contact)
    if contact_tags:
        # feature tags on the Contact (R94 auto reads them there too): the UA's own Contact line
        # is replaced by one carrying them
        sub.dialogs.headers["extra"] = extra + ["Contact: <sip:%s@127.0.0.1:%d>;%s"
                                               % (name, sub.ua.port, contact_tags)]
    return sub


def bodies(sub):
    """(root element, raw text) of every NOTIFY with a body, in order."""
    out = []
    for _, body in sub.notifies():
        if body.strip():
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
            out.append((ET.fromstring(body), text))
    return out


def expect_schema_valid(subs):
    """Issue 16: every body each subscriber received validates against RFC 4575's schema (R95's
    unprefixed yourown aside, see harness.schema_problems)."""
    problems = schema_problems([b for s in subs for _, b in bodies(s)])
    expect(not problems, "RFC 4575 schema:\n%s" % "\n".join(problems))


def profiles_of(ctx):
    return {s.get("subscriber"): s.get("profile") for s in ctx.subscriptions()}


def wait_notifies(ctx, sub, n, what):
    ctx.wait_for("%s: %d NOTIFYs with a body" % (what, n), lambda: len(bodies(sub)) >= n, timeout=8)


@test("profiles_per_subscriber_by_user_agent", "R94 R93 R91 issue 16", standin="skip")
def t_profiles_by_ua(ctx):
    """See `profiles_by_ua` (the native cfg: imconf_handle_subscribe("<profile>"))."""
    profiles_by_ua(ctx, ctx.start_server())


@test("profiles_per_subscriber_by_user_agent_kemi", "R94 R93 R91 issue 16 INTERFACE(KEMI)", standin="skip")
def t_profiles_by_ua_kemi(ctx):
    """See `profiles_by_ua`, routed by the KEMI twin (KSR.imconf.imconf_handle_subscribe_profile)."""
    from t_interfaces import KEMI_LUA
    profiles_by_ua(ctx, ctx.start_server(defines=["IMCONF_KEMI", 'IMCONF_LUA="%s"' % KEMI_LUA]))


def profiles_by_ua(ctx, srv):
    """One session, three subscribers whose User-Agent makes the test cfg name a profile: carol
    `oma`, bob `rcs`, alice `rfc4575` (and dave with a User-Agent naming no profile gets 500
    Script Fallback: the function returned -1 and sent nothing). Then dave is invited (alerting)
    and leaves. Each subscriber's documents follow its profile: rfc4575 has a
    conference-description in every document, reports dave's departure `disconnected` and then
    removes him with state="deleted"; rcs never sees `alerting` (dialing-out), has user-count in
    every document and the departure's disconnection-method; oma sees `alerting`, no
    conference-description, the departure once. imconf.subscriptions shows each profile, and a
    refresh keeps it."""
    ctx.open_session(participants=((ALICE, "connected"), (BOB, "connected"), (CAROL, "connected"),
                                   (ERIN, "connected")))
    subs = {
        "rfc4575": profile_subscriber(ctx, srv, ALICE, "a0", ua="profile-rfc4575"),
        "rcs": profile_subscriber(ctx, srv, BOB, "b0", ua="profile-rcs"),
        "oma": profile_subscriber(ctx, srv, CAROL, "c0"),
    }
    for s in subs.values():
        s.subscribe()
    bogus = profile_subscriber(ctx, srv, ALICE, "x0", ua="profile-jitsi")
    code = list(bogus.dialogs.open(1).values())[0]
    expect(code == 500, "an unknown profile name: SUBSCRIBE answered %s, want 500 (the script's fallback)" % code)
    expect("profile \"jitsi\" is not one of oma, rcs, rfc4575" in srv.log_text(),
           "the unknown profile name was not logged")
    got = profiles_of(ctx)
    expect(got == {ALICE: "rfc4575", BOB: "rcs", CAROL: "oma"}, "imconf.subscriptions profiles: %s" % got)

    ctx.rpc_ok("imconf.participant", SESSION, DAVE, "alerting")
    for name, s in subs.items():
        wait_notifies(ctx, s, 2, name + " after dave's invitation")
    ctx.rpc_ok("imconf.participant", SESSION, DAVE, "disconnected")
    for name, s in subs.items():
        wait_notifies(ctx, s, 3, name + " after dave's departure")
    # rfc4575: the deletion follows in a NOTIFY of its own
    wait_notifies(ctx, subs["rfc4575"], 4, "rfc4575: dave's deletion")

    def dave(root):
        for u in root.iter(NS + "user"):
            if u.get("entity") == DAVE:
                st = u.find(NS + "endpoint/" + NS + "status")
                method = u.find(NS + "endpoint/" + NS + "disconnection-method")
                return (u.get("state"), st.text if st is not None else None,
                        method.text if method is not None else None)
        return None

    r = bodies(subs["rfc4575"])
    expect(all(root.find(NS + "conference-description") is not None for root, _ in r),
           "R93: an rfc4575 document without conference-description:\n%s"
           % "\n".join(b for root, b in r if root.find(NS + "conference-description") is None))
    seen = [dave(root) for root, _ in r]
    expect(seen[1:4] == [("full", "alerting", None), ("full", "disconnected", None), ("deleted", None, None)],
           "R93/R58: rfc4575 sees dave %s, want alerting, disconnected, then deleted" % seen)

    r = bodies(subs["rcs"])
    expect(not any("alerting" in b for _, b in r), "R90/R91: the rcs subscriber was sent alerting")
    expect(all(root.find(NS + "conference-state/" + NS + "user-count") is not None for root, _ in r),
           "R91: an rcs document without user-count")
    seen = [dave(root) for root, _ in r]
    expect(seen[1:3] == [("full", "dialing-out", None), ("full", "disconnected", "departed")],
           "R91: rcs sees dave %s" % seen)

    r = bodies(subs["oma"])
    expect(not any(root.find(NS + "conference-description") is not None for root, _ in r),
           "oma: a conference-description was written")
    seen = [dave(root) for root, _ in r]
    expect(seen[1:3] == [("full", "alerting", None), ("full", "disconnected", None)] and len(r) == 3,
           "R57: oma sees dave %s in %d documents" % (seen, len(r)))

    # R95, rcs only: the subscriber's own entry, join and leave times, a removal by the chairman
    # as deleted with its endpoint (booted), the reason as a Reason value
    first_rcs = bodies(subs["rcs"])[0][0]
    own = [u.get("entity") for u in first_rcs.iter(NS + "user") if u.get("yourown") == "true"]
    expect(own == [BOB], "R95: the rcs subscriber's own entry: %s, want only %s" % (own, BOB))
    expect(first_rcs.find(".//" + NS + "joining-info/" + NS + "when") is not None,
           "R95: no joining-info/when in the rcs subscriber's first document")
    n = {name: len(bodies(s)) for name, s in subs.items()}
    ctx.rpc_ok("imconf.participant", SESSION, ERIN, "disconnected", "-", "-", "-", "-", "-", "booted",
               "603 Decline", "-", "1796601605")   # argument 12, when (R95): the feeder's time
    for name, s in subs.items():
        wait_notifies(ctx, s, n[name] + 1, name + " after erin's removal")
    root, body = bodies(subs["rcs"])[-1]
    erin = [u for u in root.iter(NS + "user") if u.get("entity") == ERIN]
    expect(len(erin) == 1 and erin[0].get("state") == "deleted"
           and erin[0].findtext(NS + "endpoint/" + NS + "status") == "disconnected"
           and erin[0].findtext(NS + "endpoint/" + NS + "disconnection-method") == "booted"
           and erin[0].findtext(NS + "endpoint/" + NS + "disconnection-info/" + NS + "reason")
           == 'SIP;cause=603;text="Decline"'
           and erin[0].findtext(NS + "endpoint/" + NS + "disconnection-info/" + NS + "when")
           == "2026-12-07T00:00:05Z",
           "R95: the rcs subscriber's view of erin's removal:\n%s" % body)
    root, body = bodies(subs["oma"])[-1]
    expect(b"yourown" not in body.encode() and b"booted" not in body.encode() and "deleted" not in body,
           "oma: R95's group state leaked into the oma profile:\n%s" % body)

    # R95: the subject (fed by the script: native or KEMI) reaches rcs and rfc4575, not oma; the
    # chairman (over RPC) only rcs, as a role
    from itest import feed
    n = {name: len(bodies(s)) for name, s in subs.items()}
    feed(ctx, ("subject", SESSION, "Trip & <plans>", ALICE))
    for name in ("rcs", "rfc4575"):
        wait_notifies(ctx, subs[name], n[name] + 1, name + " after the subject")
        root, body = bodies(subs[name])[-1]
        subject = root.findtext(NS + "conference-description/" + NS + "subject")
        expect(subject == "Trip & <plans>", "R95: %s got subject %r:\n%s" % (name, subject, body))
    ctx.rpc_ok("imconf.session_chairman", SESSION, BOB)
    wait_notifies(ctx, subs["rcs"], n["rcs"] + 2, "rcs after the chairman")
    root, body = bodies(subs["rcs"])[-1]
    chair = [u.get("entity") for u in root.iter(NS + "user")
             if u.findtext(NS + "roles/" + NS + "entry") == "chairman"]
    expect(chair == [BOB], "R95: the chairman shown to rcs: %s:\n%s" % (chair, body))
    time.sleep(0.5)
    expect(len(bodies(subs["oma"])) == n["oma"], "oma was sent the subject or the chairman")
    expect(len(bodies(subs["rfc4575"])) == n["rfc4575"] + 1, "rfc4575 was sent the chairman")

    # a refresh keeps the profile, and its full document is in that profile
    before = len(bodies(subs["rfc4575"]))
    expect(subs["rfc4575"].refresh() == 200, "the rfc4575 subscriber's refresh failed")
    wait_notifies(ctx, subs["rfc4575"], before + 1, "rfc4575 refresh")
    root, body = bodies(subs["rfc4575"])[-1]
    expect(root.get("state") == "full" and root.find(NS + "conference-description") is not None,
           "R94: the full document after the refresh is not rfc4575's:\n%s" % body)
    expect(profiles_of(ctx) == {ALICE: "rfc4575", BOB: "rcs", CAROL: "oma"},
           "profiles after the refresh: %s" % profiles_of(ctx))
    expect_schema_valid(subs.values())


CPM = '*;+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.session"'


@test("profile_auto_by_feature_tags", "R94 R4 issue 16", standin="skip")
def t_profile_auto(ctx):
    """output_profile=auto with admit_generic_subscribers=1: the CPM ICSI in Accept-Contact gives
    `rcs`, a +g.gsma.rcs tag on the Contact `rcs`, +g.oma.sip-im `oma`, no tag at all (a generic
    client, admitted) `rfc4575`. Without admit_generic_subscribers the generic client gets 403
    (R4) and the others are unchanged."""
    srv = ctx.start_server(modparams=[("imconf", "output_profile", "auto"),
                                      ("imconf", "admit_generic_subscribers", 1)])
    ctx.open_session(participants=[(u, "connected") for u in (ALICE, BOB, CAROL, DAVE)])
    generic = profile_subscriber(ctx, srv, DAVE, "d1", accept_contact=None)
    auto_subs = [profile_subscriber(ctx, srv, ALICE, "a1", accept_contact=CPM),
                 profile_subscriber(ctx, srv, BOB, "b1", accept_contact=None,
                                    contact_tags='+g.gsma.rcs.telephony="none"'),
                 profile_subscriber(ctx, srv, CAROL, "c1"), generic]
    for s in auto_subs:
        s.subscribe()
    got = profiles_of(ctx)
    expect(got == {ALICE: "rcs", BOB: "rcs", CAROL: "oma", DAVE: "rfc4575"},
           "R94 auto: %s" % got)
    root, body = bodies(generic)[0]
    expect(root.find(NS + "conference-description") is not None,
           "R93: the generic subscriber's first document has no conference-description:\n%s" % body)
    expect_schema_valid(auto_subs)

    srv.stop()
    srv2 = ctx.start_server(modparams=[("imconf", "output_profile", "auto")], node="strict")
    ctx.open_session(participants=[(DAVE, "connected")])
    refused = profile_subscriber(ctx, srv2, DAVE, "d2", accept_contact=None)
    code = list(refused.dialogs.open(1).values())[0]
    expect(code == 403, "R4: a SUBSCRIBE without +g.oma.sip-im got %s without admit_generic_subscribers" % code)


@test("profile_survives_db_restart", "R94 issue 16 issue 7 (sqlite)", standin="skip")
def t_profile_restart(ctx):
    """A subscription with the rfc4575 profile, persisted (db_url, sqlite), survives a graceful
    restart with its profile: imconf.subscriptions says rfc4575 and the next NOTIFY, after a
    change, has a conference-description."""
    db = ctx.rundir / "imconf.db"   # db_sqlite: sqlite:/// + an absolute path
    srv = ctx.start_server(modparams=[("imconf", "db_url", "sqlite:///%s" % db),
                                      ("imconf", "db_flush_interval_ms", 100)],
                           defines=["IMCONF_DB_SQLITE"])
    ctx.open_session()
    sub = profile_subscriber(ctx, srv, ALICE, "a3", ua="profile-rfc4575")
    sub.subscribe()
    time.sleep(0.5)
    ctx.restart_server(srv)
    expect(profiles_of(ctx) == {ALICE: "rfc4575"}, "after the restart: %s" % profiles_of(ctx))
    n = len(bodies(sub))
    ctx.rpc_ok("imconf.participant", SESSION, CAROL, "connected")
    wait_notifies(ctx, sub, n + 1, "after the restart")
    root, body = bodies(sub)[-1]
    expect(root.find(NS + "conference-description") is not None,
           "R94: after the restart the subscriber's document is not rfc4575's:\n%s" % body)
    expect_schema_valid([sub])
