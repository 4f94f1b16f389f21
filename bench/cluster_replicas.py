#!/usr/bin/env python3
"""What `dmq_replicas` saves (issue 17): five imconf nodes on one DMQ bus, N subscriptions spread
evenly over them (subscriber i through node i mod 5, all answering), once with every peer keeping
every replica (`dmq_replicas` 0, the rule before issue 17) and once with the default 2, alternated
REPS times in one run. Reported per setting, per node: the replicas it keeps and the shm the whole
Kamailio uses once the subscriptions settled (imconf.stats `cluster_replicas`,
`shm_bytes_in_use`), and the KDMQ requests the
cluster sends to replicate one change of every subscription (one participant change fans out to
all N; `cluster_replication_requests` summed over the nodes, a broadcast counted once per
peer). Then the
ratios 2 / 0. docs/cluster.md and docs/performance.md keep the figures.

  python3 bench/cluster_replicas.py [--n 10000] [--reps 2]

Everything listens on 127.0.0.x, and is stopped by pid.
"""
import argparse
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
import cluster  # noqa: E402
import harness  # noqa: E402
import sipua  # noqa: E402

SESSION = "sip:replicas-bench@127.0.0.1"
ALICE, CAROL = "sip:alice@127.0.0.1", "sip:carol@127.0.0.1"
NODES = 5


def stats(srv):
    return {k: int(v) for k, v in srv.rpc("imconf.stats").structs()[0].items() if v.lstrip("-").isdigit()}


def measure(k, n, out):
    def run(ctx):
        ctx.log_allow = r"DEBUG|enable_dmq"
        mp = [("imconf", "dmq_replicas", k), ("imconf", "max_subs_per_session", n + 10),
              ("imconf", "max_subs_per_user_per_session", n + 10), ("imconf", "min_notify_interval_ms", 0)]
        cl = cluster.Cluster(ctx, n=NODES, modparams=mp, extra_args=["-m", "1024"])
        cl.start()
        cl.feed(0, "imconf.session_open", SESSION, "ad-hoc")
        cl.feed(0, "imconf.participant", SESSION, ALICE, "connected")
        cl.wait_everywhere(SESSION, 1)
        time.sleep(3.5)  # every node synced (a SUBSCRIBE before gets 503)
        uas = []
        for i, srv in enumerate(cl.nodes):
            ua = sipua.Ua(srv.port, harness.SPORTS.take())
            ctx.cleanups.append(ua.close)
            ua.server = (cluster.Cluster.host(i), srv.port)
            d = sipua.Dialogs(ua, SESSION, ALICE, "r%d" % i)
            codes = d.open(n // NODES, expires=600, window=128)
            if sum(1 for c in codes.values() if c == 200) != n // NODES:
                raise harness.TestFailure("node %d: SUBSCRIBE answers %s" % (i + 1, sorted(set(codes.values()), key=str)))
            uas.append(ua)
        ctx.wait_for("every replica in place", lambda: sum(stats(s)["cluster_replicas"] for s in cl.nodes)
                     == n * (NODES - 1 if k == 0 else k), timeout=60, interval=0.5)
        time.sleep(6.0)  # tm's wait timer frees the initial NOTIFYs' transactions: shm of the state
        before = [stats(s) for s in cl.nodes]
        cl.feed(0, "imconf.participant", SESSION, CAROL, "connected")
        ctx.wait_for("every NOTIFY of the change", lambda: all(
            len(ua.notifies.get(cid, [])) >= 2 for ua in uas for cid in list(ua.notifies)), timeout=60, interval=0.5)
        time.sleep(1.5)  # the replication ticks (100 ms) of every node
        after = [stats(s) for s in cl.nodes]
        out.update(replicas=[a["cluster_replicas"] for a in after], shm=[b["shm_bytes_in_use"] for b in before],
                   requests=sum(a["cluster_replication_requests"] - b["cluster_replication_requests"]
                                for a, b in zip(after, before)))
    return run


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--reps", type=int, default=2)
    a = p.parse_args()
    target = harness.kamailio_target()
    harness.use_kamailio(target["bin"], target["kamcmd"], target["moddir"])
    so = (ROOT / "build" / "imconf.so").resolve()
    results = {0: [], 2: []}
    for rep in range(a.reps):
        for k in (0, 2):
            opts = types.SimpleNamespace(module=so, standin=False, fake_bug="", filters=[], v=True)
            out = {}
            ctx, failure, _, _ = harness.run_test(opts, "cluster_replicas_k%d" % k, measure(k, a.n, out))
            if failure and "requests" not in out:
                print("FAIL dmq_replicas=%d rep %d: %s (%s)" % (k, rep + 1, failure, ctx.rundir))
                return 1
            if failure:  # measured; the teardown failed (reported, not hidden)
                print("rep %d dmq_replicas=%d: measured, then: %s" % (rep + 1, k, failure))
            results[k].append(out)
            print("rep %d dmq_replicas=%d: replicas per node %s, shm MB per node %s, KDMQ requests for one change "
                  "of all %d subscriptions: %d" % (rep + 1, k, out["replicas"],
                                                   [round(x / 2**20, 1) for x in out["shm"]], a.n, out["requests"]),
                  flush=True)
    print("\n%s, %d nodes, %d subscriptions, %d reps alternated:" % (harness.kamailio_version(), NODES, a.n, a.reps))
    print("| dmq_replicas | replicas per node (mean) | shm per node, MB (mean) | KDMQ requests per change of every subscription |")
    print("|---|---|---|---|")
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    rows = {}
    for k, runs in results.items():
        rows[k] = (mean([mean(r["replicas"]) for r in runs]), mean([mean(r["shm"]) for r in runs]) / 2**20,
                   mean([r["requests"] for r in runs]))
        print("| %d | %.0f | %.1f | %.0f |" % ((k,) + rows[k]))
    print("ratio 2 / 0: replicas %.2f, shm %.2f, requests %.2f" % tuple(
        rows[2][i] / rows[0][i] if rows[0][i] else float("nan") for i in range(3)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
