#!/usr/bin/env python3
"""The integration tests' shared part: the registry (`@test`), the names every area file
imports (`from itest import *`), and the helpers more than one area uses.

What the suite is and how to run it: run.py and README.md.
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
                     lint_scenarios, parse_kamcmd, parse_trace, pids_in_group, received_notifies, run_test, schema_problems,
                     tail)
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


def expect_start_refused(srv, why, what):
    """Starts `srv` expecting start-up to fail: it exits within 10 s, not 0, with a log line
    containing `why`, and without a crash (INTERFACE: a bad configuration stops the start
    cleanly). `what` names the case in failures."""
    srv.ctx.servers.append(srv)
    srv.expect_exit = True
    srv.start(expect_ready=False)
    try:
        srv.proc.wait(timeout=10)
    except Exception:
        raise TestFailure("kamailio kept running (%s)" % what)
    text = srv.log_text()
    expect(srv.proc.returncode != 0, "kamailio exited 0 (%s)" % what)
    expect(why in text, "%s: no log line saying %r:\n%s" % (what, why, tail(srv.log_path, 20)))
    bad = [line for line in text.splitlines() if re.search(r"exited by a signal|PANIC|\bBUG:", line)]
    expect(not bad, "%s: a crash instead of a clean failure: %s" % (what, bad))


def field(sub, name):
    """A field of one imconf.subscriptions entry, by the names of the RPC contract."""
    if name not in sub:
        raise TestFailure("imconf.subscriptions entry has no field %r (has %s)" % (name, sorted(sub)))
    return sub[name]


def in_variant(ctx, name):
    """Moves the test's files (cfg, log, ctl socket, SIPp traces) to rundir/<name>/, so that a test
    can start one Kamailio per variant (native, KEMI) and keep each one's log for the scans."""
    base = getattr(ctx, "base_rundir", None) or ctx.rundir
    ctx.base_rundir = base
    ctx.rundir = base / name
    ctx.rundir.mkdir(exist_ok=True)


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


CORPUS_SEED = int(os.environ.get("IMCONF_CORPUS_SEED", "20261125"))


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


def moved(before, after, *names):
    return {n: after.get(n, 0) - before.get(n, 0) for n in names}
