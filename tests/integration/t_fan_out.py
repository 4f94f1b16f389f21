"""Integration tests: the fan-out processes (issue 18, lever 3; registered with @test; run by
run.py)."""

from itest import *  # noqa: F401,F403


def fan_out_changes(ctx, workers):
    """1000 subscriptions to one session; five changes fed by RPC back to back. Every subscriber
    ends with the true view, its versions gapless (R33) and its CSeqs increasing in the order the
    NOTIFYs arrived (R32, R40: a dialog's NOTIFYs never overtake each other, whichever process
    sent them). `fanout_workers` processes are running."""
    import cluster
    ctx.log_allow = r"DEBUG"
    ctx.start_server(modparams=[("imconf", "max_subs_per_session", 2000),
                                ("imconf", "max_subs_per_user_per_session", 2000),
                                ("imconf", "min_notify_interval_ms", 0),
                                ("imconf", "fanout_workers", workers)])
    procs = [s for s in ctx.rpc_ok("core.psx").structs() if "IMCONF FANOUT" in s.get("DSC", "")]
    expect(len(procs) == workers, "fan-out processes in core.psx: %d, want %d" % (len(procs), workers))
    s = "sip:fan@127.0.0.1"
    alice, bob = "sip:alice@127.0.0.1", "sip:bob@127.0.0.1"
    ctx.open_session(uri=s, participants=((alice, "connected"), (bob, "connected")))
    truth = {alice: "connected", bob: "connected"}
    ua = sipua.Ua(ctx.server.port, SPORTS.take())
    ctx.cleanups.append(ua.close)
    g = sipua.Dialogs(ua, s, alice, "f")
    codes = g.open(1000, expires=600, window=128)
    expect(sum(1 for c in codes.values() if c == 200) == 1000, "SUBSCRIBEs: %s" % sorted(set(codes.values()), key=str))
    ctx.wait_for("every initial NOTIFY", lambda: all(ua.notify_msgs.get(c) for c in g.dialogs), timeout=20)
    for who, status in (("carol", "connected"), ("dave", "connected"), ("carol", "disconnected"),
                        ("erin", "connected"), ("dave", "connected")):
        aoia = "sip:%s@127.0.0.1" % who
        ctx.rpc_ok("imconf.participant", s, aoia, status)
        if status == "disconnected":
            truth.pop(aoia, None)
        else:
            truth[aoia] = status

    def problems():
        return [p for cid in g.dialogs
                for p in cluster.view_problems(ua.notify_msgs.get(cid, []), truth, "after 5 changes", cid)]
    deadline = time.time() + 20
    while problems() and time.time() < deadline:
        time.sleep(0.3)
    bad = problems()
    expect(not bad, "%d of 1000 subscribers wrong:\n%s" % (len(bad), "\n".join(bad[:5])))


@test("fan_out_workers_send_changes_in_order", "issue 18 (fanout_workers) R32 R33 R40", standin="skip")
def t_fan_out_workers(ctx):
    fan_out_changes(ctx, 2)


@test("fan_out_without_workers", "issue 18 (fanout_workers 0) R32 R33 R40", standin="skip")
def t_fan_out_inline(ctx):
    fan_out_changes(ctx, 0)
