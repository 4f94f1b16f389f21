"""Integration tests: harness self-tests (registered with @test; run by run.py)."""

from itest import *  # noqa: F401,F403


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
    # 5. the RFC 4575 schema (issue 16): a good rcs body passes (yourown, R95), a status outside the
    #    RFC's set and children out of the schema's order do not
    good = (b'<?xml version="1.0" encoding="UTF-8"?>\n<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" '
            b'entity="sip:conf1@127.0.0.1" state="partial" version="2"><conference-description><subject>Hike</subject>'
            b'</conference-description><conference-state><user-count>1</user-count></conference-state>'
            b'<users state="partial"><user entity="sip:bob@127.0.0.1" state="full" yourown="true"><roles><entry>'
            b'chairman</entry></roles><endpoint entity="sip:bob@127.0.0.1" state="full"><status>connected</status>'
            b'<joining-info><when>2026-12-07T01:00:00Z</when></joining-info></endpoint></user></users></conference-info>')
    expect(schema_problems([good]) == [], "schema: a good body refused: %s" % schema_problems([good]))
    bad_status = good.replace(b"<status>connected", b"<status>gone")
    bad_order = good.replace(b'<conference-description><subject>Hike</subject></conference-description>', b"") \
                    .replace(b"</users>", b"</users><conference-description/>")
    for what, bad in (("a status outside RFC 4575's", bad_status), ("children out of order", bad_order)):
        got = schema_problems([good, bad])
        expect(len(got) == 1 and got[0].startswith("RFC 4575 schema"), "schema: %s not reported: %s" % (what, got))
