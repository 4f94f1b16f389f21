"""Integration tests: termination (registered with @test; run by run.py)."""

from itest import *  # noqa: F401,F403


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
