#!/usr/bin/env python3
"""imconf integration tests: a real Kamailio 5.6.3 loading build/imconf.so, driven by real SIPp.

    python3 tests/integration/run.py [--module build/imconf.so] [-k FILTER ...] [--list] [-v]
    python3 tests/integration/run.py --standin      # check the harness itself, no module needed

Each test renders tests/kamailio/imconf-test.cfg into its own run directory (tests/run/latest/<test>/),
starts `kamailio -DD -E` there (loopback only, own ctl socket, core dumps off), drives it with the
SIPp scenarios of tests/sipp/ and kamcmd, stops it by pid (TERM, KILL after a timeout) and scans
its log for PANIC|CRITICAL|ALERT|BUG:|exited by a signal. Besides SIPp's own `ereg check_it`
assertions, every SIPp message trace is re-read and every NOTIFY checked (harness.check_trace).
One line per test: PASS/FAIL/SKIP, name, rules (R numbers, docs/conformance.md), seconds; exit status 1 when
anything failed, 2 when the tools or the module are missing.

--standin runs the SIP tests against tests/integration/fake_imconf.py, the Kamailio-specific ones
against the same cfg built with -A IMCONF_STANDIN (imconf not loaded), plus harness self-tests.
See tests/integration/README.md.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from itest import *  # noqa: E402,F401,F403
# the tests, area by area, in the order they run and are listed
import t_accepted  # noqa: E402,F401
import t_termination  # noqa: E402,F401
import t_rejections  # noqa: E402,F401
import t_validation_order  # noqa: E402,F401
import t_documents  # noqa: E402,F401
import t_group_identities  # noqa: E402,F401
import t_group_documents  # noqa: E402,F401
import t_robustness  # noqa: E402,F401
import t_interfaces  # noqa: E402,F401
import t_robustness_corpus  # noqa: E402,F401
import t_ecosystem  # noqa: E402,F401
import t_harness_selftests  # noqa: E402,F401
import t_cluster  # noqa: E402,F401
import t_cluster_persist  # noqa: E402,F401
import t_profiles  # noqa: E402,F401
import t_fan_out  # noqa: E402,F401


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
