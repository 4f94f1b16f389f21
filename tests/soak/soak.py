#!/usr/bin/env python3
"""imconf soak test (`make soak`, scripts/soak.sh; docs/robustness.md).

One Kamailio (the integration harness's cfg, 4 UDP workers, -m 1024 -M 32 as bench/, kex for pkg.stats), loaded
for SOAK_MIN minutes (default 10) with:
  - SIPp running bench/scen/subscribe_notify.xml (subscribe, full NOTIFY, unsubscribe, terminating
    NOTIFY: one call = 8 messages) at SOAK_RATE calls/s, default 70 % of the highest 0-failure rate
    of C_imconf in the last benchmark (bench/results/latest/results.jsonl), on session conf1;
  - fan-out changes mixed in: 100 subscriptions to session conf2 held by a Python UA (refreshed
    every 60 s), and one participant change of conf2 per second over RPC, so 100 partial NOTIFYs
    a second on top of the call load.
Every 5 s it samples shm_bytes_in_use (imconf.stats: the whole server's shm, tm's transactions
included), the module's own shm (kex mod.stats imconf shm) and each process's private memory in
use (kex pkg.stats). At the end: the SIPp call counts, NOTIFYs per fan-out subscription, and the slope
of shm and of private memory over the steady part (after the first 20 %), in bytes per minute.
Pass: 0 failed calls, every fan-out subscription alive and notified (at least one NOTIFY per two changes: R62 coalesces),
private memory and the module's own shm flat (|slope| below SOAK_MAX_PKG_SLOPE_KB, 16 KB/min,
for every process and for the module), the server's shm flat
(runs of 3 min or more: |slope| below SOAK_MAX_SHM_PCT, 0.5 %, of its plateau per minute; the
plateau is tm's transactions in flight) and back to its starting level (+ SOAK_RETAIN_KB, 2 MB)
once the load and the subscriptions have ended, nothing alarming in the log, and the server stops
cleanly. Exit 0 on pass. UDP receive-buffer drops during the run are reported (a failed call on
a busy box is often a dropped 200).

Loopback only; SIPp bounded by -m and -timeout; everything stopped by pid (harness).
"""

import json
import os
import re
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))

import harness  # noqa: E402
import sipua  # noqa: E402
from harness import ALICE, SIPP, SPORTS, TestFailure  # noqa: E402

MINUTES = float(os.environ.get("SOAK_MIN", "10"))
SCENARIO = ROOT / "bench" / "scen" / "subscribe_notify.xml"
MAX_SHM_PCT = float(os.environ.get("SOAK_MAX_SHM_PCT", "0.5"))
RETAIN = float(os.environ.get("SOAK_RETAIN_KB", "2048")) * 1024
MAX_PKG_SLOPE = float(os.environ.get("SOAK_MAX_PKG_SLOPE_KB", "16")) * 1024
FANOUT_N = int(os.environ.get("SOAK_FANOUT_N", "100"))
SAMPLE_S = 5.0


def measured_max_rate():
    """Highest passing C_imconf rate of the last benchmark run, or None."""
    path = ROOT / "bench" / "results" / "latest" / "results.jsonl"
    best = None
    try:
        for line in path.read_text().splitlines():
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if (r.get("kind") == "step" and r.get("setup") == "C_imconf" and r.get("phase") == "max"
                    and r.get("pass")):
                best = max(best or 0, int(r["rate"]))
    except OSError:
        return None
    return best


def slope(points):
    """Least-squares slope of [(t seconds, value)], in value per minute."""
    n = len(points)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    return 0.0 if den == 0 else 60.0 * sum((t - mt) * (v - mv) for t, v in points) / den


def udp_rcvbuf_errors():
    """The kernel's count of UDP datagrams dropped for a full receive buffer (all sockets)."""
    try:
        lines = [l.split() for l in Path("/proc/net/snmp").read_text().splitlines() if l.startswith("Udp:")]
        return int(lines[1][lines[0].index("RcvbufErrors")])
    except (OSError, ValueError, IndexError):
        return None


def module_shm(srv):
    """Bytes of shm the module itself holds (kex mod.stats: every allocation of the module goes
    through one call site, shim_shm_malloc), or None when mod.stats is not available."""
    r = srv.rpc("mod.stats", "imconf", "shm")
    m = re.search(r"Total:\s*(\d+)", r.text)
    return int(m.group(1)) if r.ok and m else None


def pkg_used(srv):
    """{pid: used bytes} from kex's pkg.stats."""
    r = srv.rpc("pkg.stats")
    out = {}
    for s in r.structs():
        if "pid" in s and "used" in s:
            out[int(s["pid"])] = int(s["used"])
    return out


def soak(ctx):
    rate = int(os.environ.get("SOAK_RATE", "0")) or None
    measured = measured_max_rate()
    if rate is None:
        rate = int(0.7 * measured) if measured else 700
    ctx.note("rate %d calls/s (%s)" % (rate, "SOAK_RATE" if os.environ.get("SOAK_RATE") else
                                        "70%% of the measured max %s" % measured if measured else "default"))
    # SOAK_KAM_ARGS: more kamailio arguments; by default Kamailio's TLSF shm allocator. Under
    # the default q_malloc the server's shm in use creeps up under a constant load while tm's
    # transaction count stays constant (fragments no longer split: docs/robustness.md), which
    # would hide a leak of ours; TLSF shows the server's real use. SOAK_KAM_ARGS="" runs q_malloc.
    extra = ["-n", "4", "-m", "1024", "-M", "32"] + os.environ.get("SOAK_KAM_ARGS", "-x tlsf").split()
    srv = ctx.start_server(defines=["IMCONF_STATS"], extra_args=extra,
                           timing={"MAX_EXPIRES": 3600, "MIN_NOTIFY_INTERVAL_MS": 0},
                           modparams=[("imconf", "max_subs_per_session", 1000000),
                                      ("imconf", "max_subs_per_user_per_session", 1000000)])
    ctx.open_session(participants=(("sip:bench@127.0.0.1", "connected"), (ALICE, "connected")))
    conf2 = "sip:conf2@127.0.0.1"
    ctx.open_session(uri=conf2)
    pids_before = sorted(int(s["PID"]) for s in srv.rpc("core.psx").structs() if "PID" in s)
    ua = sipua.Ua(srv.port, SPORTS.take())
    fan = sipua.Dialogs(ua, conf2, ALICE, "soak-fan")
    codes = fan.open(FANOUT_N, expires=3600)
    if sorted(set(codes.values())) != [200]:
        raise TestFailure("fan-out subscriptions: %s" % codes)
    duration = MINUTES * 60
    calls = max(1, int(rate * duration))
    sport = SPORTS.take()
    stat_csv = ctx.rundir / "sipp-soak-stats.csv"
    cmd = [SIPP, "-sf", str(SCENARIO), "-i", "127.0.0.1", "-p", str(sport), "127.0.0.1:%d" % srv.port,
           "-r", str(rate), "-m", str(calls), "-l", str(max(50, rate * 2)),
           "-timeout", "%ds" % int(duration + 120), "-recv_timeout", "10000", "-nostdin",
           "-key", "conf_user", "conf1", "-key", "conf_domain", "127.0.0.1", "-key", "expires", "600",
           "-buff_size", str(8 << 20), "-trace_stat", "-stf", str(stat_csv), "-fd", "5",
           "-trace_err", "-error_file", str(ctx.rundir / "sipp-soak.err")]
    screen = open(ctx.rundir / "sipp-soak.screen", "wb")
    sipp = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=screen, stderr=subprocess.STDOUT,
                            cwd=str(ctx.rundir), start_new_session=True)
    ctx.sipp_runs.append(types.SimpleNamespace(proc=sipp))
    stop = threading.Event()
    changes = [0]

    def changer():
        i = 0
        while not stop.wait(1.0):
            i += 1
            status = "connected" if (i // 5) % 2 == 0 else "disconnected"
            r = srv.rpc("imconf.participant", conf2, "sip:fan%d@127.0.0.1" % (i % 5), status)
            if r.ok:
                changes[0] += 1
    samples = []
    drops0 = udp_rcvbuf_errors()
    t0 = time.time()
    th = threading.Thread(target=changer, daemon=True)
    th.start()
    next_refresh = t0 + 60
    try:
        while sipp.poll() is None and time.time() - t0 < duration + 150:
            stats = [s for s in srv.rpc("imconf.stats").structs() if "shm_bytes_in_use" in s]
            pkg = pkg_used(srv)
            if stats and pkg:
                samples.append({"t": time.time() - t0, "shm": int(stats[0]["shm_bytes_in_use"]), "pkg": pkg,
                                "module_shm": module_shm(srv),
                                "subscriptions": int(stats[0].get("subscriptions", -1)),
                                "notifies_in_flight": int(stats[0].get("notifies_in_flight", -1))})
            if time.time() > next_refresh:
                codes = fan.refresh(sorted(fan.dialogs), expires=3600)
                if sorted(set(codes.values())) != [200]:
                    raise TestFailure("fan-out refresh: %s" % codes)
                next_refresh += 60
            if not srv.alive():
                raise TestFailure("kamailio died during the soak")
            time.sleep(SAMPLE_S)
    finally:
        stop.set()
        th.join(timeout=5)
    if sipp.poll() is None:
        harness.stop_process(sipp, term_timeout=5)
        raise TestFailure("SIPp did not finish in time")
    screen.close()
    wall = time.time() - t0
    drops = udp_rcvbuf_errors()
    drops = drops - drops0 if drops is not None and drops0 is not None else None
    listed = len(ctx.subscriptions(conf2))
    got = {cid: len(ua.notifies.get(cid, [])) - 1 for cid in fan.dialogs}  # minus the initial NOTIFY
    codes = fan.refresh(sorted(fan.dialogs), expires=0)
    ua.close()
    # after the load: every subscription ended and tm's wait timers expired, shm must be back
    shm_after, last, since = None, None, time.time()
    deadline = time.time() + 60
    while time.time() < deadline:
        v = [int(s["shm_bytes_in_use"]) for s in srv.rpc("imconf.stats").structs() if "shm_bytes_in_use" in s][0]
        if v != last:
            last, since = v, time.time()
        elif time.time() - since > 3 and not ctx.subscriptions():
            shm_after = v
            break
        time.sleep(0.5)
    pids_after = sorted(int(s["PID"]) for s in srv.rpc("core.psx").structs() if "PID" in s)
    # SIPp's final cumulative counters
    lines = stat_csv.read_text().splitlines()
    head = lines[0].split(";")
    last = lines[-1].split(";")
    col = {h: last[i] for i, h in enumerate(head) if i < len(last)}
    ok_calls = int(col.get("SuccessfulCall(C)", "0"))
    failed_calls = int(col.get("FailedCall(C)", "0"))
    steady = [s for s in samples if s["t"] >= 0.2 * wall]
    shm_slope = slope([(s["t"], s["shm"]) for s in steady])
    mod_points = [(s["t"], s["module_shm"]) for s in steady if s.get("module_shm") is not None]
    mod_slope = slope(mod_points) if mod_points else None
    pids = sorted(set.intersection(*[set(s["pkg"]) for s in steady])) if steady else []
    pkg_slopes = {p: slope([(s["t"], s["pkg"][p]) for s in steady]) for p in pids}
    worst_pid = max(pkg_slopes, key=lambda p: abs(pkg_slopes[p])) if pkg_slopes else None
    summary = {
        "minutes": MINUTES, "rate": rate, "measured_max_rate": measured, "calls_planned": calls,
        "calls_ok": ok_calls, "calls_failed": failed_calls, "wall_s": round(wall, 1),
        "fanout_subscriptions": FANOUT_N, "fanout_listed_at_end": listed, "changes": changes[0],
        "fanout_notifies_min": min(got.values()) if got else 0, "fanout_unsubscribe": sorted(set(codes.values())),
        "samples": len(samples), "shm_first": samples[0]["shm"] if samples else None,
        "shm_last": samples[-1]["shm"] if samples else None, "shm_slope_bytes_per_min": round(shm_slope),
        "pkg_slope_bytes_per_min_worst": round(pkg_slopes[worst_pid]) if worst_pid else None,
        "pkg_slope_bytes_per_min": {str(p): round(v) for p, v in pkg_slopes.items()},
        "pkg_sum_first": sum(samples[0]["pkg"].values()) if samples else None,
        "pkg_sum_last": sum(samples[-1]["pkg"].values()) if samples else None,
        "processes_same": pids_before == pids_after, "shm_after_settled": shm_after,
        "shm_mean_steady": round(sum(x["shm"] for x in steady) / len(steady)) if steady else None,
        "udp_rcvbuf_errors": drops,
        "module_shm_first": samples[0].get("module_shm") if samples else None,
        "module_shm_last": samples[-1].get("module_shm") if samples else None,
        "module_shm_slope_bytes_per_min": round(mod_slope) if mod_slope is not None else None,
    }
    (ctx.rundir / "soak-summary.json").write_text(json.dumps(summary, indent=1))
    (ctx.rundir / "soak-samples.json").write_text(json.dumps(samples))
    print("soak summary (%s):" % (ctx.rundir / "soak-summary.json"))
    for k in ("minutes", "rate", "measured_max_rate", "calls_ok", "calls_failed", "changes",
              "fanout_listed_at_end", "fanout_notifies_min", "shm_first", "shm_last", "shm_slope_bytes_per_min",
              "shm_mean_steady", "shm_after_settled", "module_shm_first", "module_shm_last",
              "module_shm_slope_bytes_per_min", "pkg_sum_first", "pkg_sum_last",
              "pkg_slope_bytes_per_min_worst", "processes_same", "udp_rcvbuf_errors"):
        print("  %-32s %s" % (k, summary[k]))
    problems = []
    if failed_calls or ok_calls != calls:
        problems.append("%d failed calls, %d of %d ok" % (failed_calls, ok_calls, calls))
    if listed != FANOUT_N:
        problems.append("fan-out subscriptions alive at the end: %d of %d" % (listed, FANOUT_N))
    # changes that meet a NOTIFY still in flight are coalesced into the next one (R62), so a
    # subscriber may get fewer NOTIFYs than changes; far fewer means it stopped being served
    if got and min(got.values()) < 0.5 * changes[0]:
        problems.append("a fan-out subscription got %d NOTIFYs for %d changes" % (min(got.values()), changes[0]))
    # Under load shm holds tm's transactions (each kept wt_timer, 5 s, after its reply): a plateau
    # of ~rate x 4 x 5 s x ~10 KB that moves with the load. Over a run of 3 minutes or more its
    # slope must stay below MAX_SHM_PCT of the plateau per minute; after the load it must be back
    # to where it started (+ SOAK_RETAIN_KB of table capacity).
    mean = summary["shm_mean_steady"] or 1
    if MINUTES >= 3 and abs(shm_slope) > MAX_SHM_PCT / 100.0 * mean:
        problems.append("shm not flat: %.0f bytes/min (%.2f %% of the plateau per minute)"
                        % (shm_slope, 100.0 * shm_slope / mean))
    # the module's own shm (mod.stats) must not grow under a steady load at all
    if mod_slope is not None and abs(mod_slope) > MAX_PKG_SLOPE:
        problems.append("the module's own shm not flat: %.0f bytes/min" % mod_slope)
    if shm_after is None or shm_after - samples[0]["shm"] > RETAIN:
        problems.append("shm after the load %s, %d at the start" % (shm_after, samples[0]["shm"]))
    if worst_pid and abs(pkg_slopes[worst_pid]) > MAX_PKG_SLOPE:
        problems.append("private memory of pid %d not flat: %.0f bytes/min" % (worst_pid, pkg_slopes[worst_pid]))
    if pids_before != pids_after:
        problems.append("processes changed: %s -> %s" % (pids_before, pids_after))
    if problems:
        raise TestFailure("; ".join(problems))


def main():
    if not SCENARIO.exists():
        print("missing %s" % SCENARIO)
        return 2
    opts = types.SimpleNamespace(module=(ROOT / "build" / "imconf.so").resolve(), standin=False, fake_bug="",
                                 filters=[], v=True)
    if not opts.module.exists():
        print("module not found: %s (make build)" % opts.module)
        return 2
    # the Kamailio `make build` built for (KAMAILIO_PREFIX, KAMAILIO_BIN, ...)
    target = harness.kamailio_target()
    harness.use_kamailio(target["bin"], target["kamcmd"], target["moddir"])
    print("imconf soak: %.1f min, %s" % (MINUTES, harness.kamailio_version()), flush=True)
    ctx, failure, skipped, secs = harness.run_test(opts, "soak", soak)
    for n in ctx.notes:
        if not n.startswith("rpc "):
            print("  note: " + n)
    print("%s soak (%.0fs)%s" % ("FAIL" if failure else "PASS", secs, (": " + failure) if failure else ""))
    if failure:
        for srv in ctx.servers:
            print(harness.tail(srv.log_path, 30))
        print("(run directory: %s)" % ctx.rundir)
    return 1 if failure else 0


if __name__ == "__main__":
    sys.exit(main())
