"""Integration tests: KEMI, script/RPC errors, jsonrpcs, statistics (registered with @test; run by run.py)."""

from itest import *  # noqa: F401,F403


# (issue 5) The same routing run natively and under KEMI (tests/kamailio/imconf-test.lua), the
# failures of every script function and RPC command, JSON-RPC over HTTP, and Kamailio's statistics.


KEMI_LUA = ROOT / "tests" / "kamailio" / "imconf-test.lua"


KSESSION = "sip:kconf@127.0.0.1"


EVE = "sip:eve@127.0.0.1"


def start_variant(ctx, variant, **kw):
    """The server under test routing with the template's native blocks, or (variant 'kemi') with
    their KEMI twin imconf-test.lua (app_lua, cfgengine "lua")."""
    in_variant(ctx, variant)
    defines = list(kw.pop("defines", []))
    if variant == "kemi":
        defines += ["IMCONF_KEMI", 'IMCONF_LUA="%s"' % KEMI_LUA]
    return ctx.start_server(defines=defines, **kw)


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
    ("imconf.participant", [SESSION, CAROL, "connected"] + ["-"] * 8 + ["noon"], "when"),   # R95: Unix time
    ("imconf.participant", [SESSION, CAROL, "connected"] + ["-"] * 10, "arguments"),   # 13: one too many
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
            "notifies_sent": int, "notify_in_flight": int, "profile": str}
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
