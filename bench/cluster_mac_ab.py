#!/usr/bin/env python3
"""What authenticating cluster messages (R96) costs a node, end to end: the same load of KDMQ
participant changes received by one imconf node built from BASE (the last commit before the MAC,
cluster format 1, unsigned) and by this tree's build/imconf.so (format 2, sealed with
HMAC-SHA-256), alternated REPS times in one run. Reported per build: the node's CPU time per
message (every process of the Kamailio, from /proc) and the messages per second the sender
reached; then the ratios HEAD / BASE. docs/performance.md keeps the figures.

  python3 bench/cluster_mac_ab.py [--base b990f6c] [--n 20000] [--reps 3]

BASE is built once into /tmp/imconf-ab-<base> (a git worktree, its own target directory). The
node listens on 127.0.0.1, the sender on 127.0.0.9; everything is stopped by pid.
"""
import argparse
import os
import socket
import subprocess
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
import cluster  # noqa: E402
import harness  # noqa: E402

SESSION = "sip:mac-bench@127.0.0.1"
NODE = 0xf00d
SENT = [0]  # the sender's message counter: never repeats within a node's run (else: 403 replay)


def build_base(commit):
    wt = Path("/tmp/imconf-ab-%s" % commit)
    so = wt / "build" / "imconf.so"
    if not so.exists():
        if not wt.exists():
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(wt), commit], check=True)
        # the headers make deps unpacked here serve the worktree too
        deps = wt / ".deps"
        if not deps.exists():
            deps.symlink_to(ROOT / ".deps")
        subprocess.run(["make", "-C", str(wt), "build"], check=True)
    return so


def cpu_jiffies(pids):
    total = 0
    for pid in pids:
        try:
            fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total


def body(fmt, i):
    hx = lambda v: v.encode().hex()  # noqa: E731
    stamp = (int(time.time() * 1000) << 16) | (i & 0xffff)
    op = ("P %x %s %s %s\n" % (stamp, hx(SESSION), hx("sip:user%d@127.0.0.1" % (i % 50)),
                                hx("connected" if (i // 50) % 2 == 0 else "disconnected"))).encode()
    if fmt == 1:
        return b"imconf-cluster/1 %x\n" % NODE + op
    SENT[0] += 1
    return cluster.seal(cluster.SECRET, NODE, int(time.time() * 1000), SENT[0], op)


def load(srv, fmt, n, window=64):
    """Sends n KDMQ participant changes, at most `window` unanswered; (seconds, codes)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.9", 0))
    sock.settimeout(2.0)
    port = sock.getsockname()[1]
    to = "sip:imconf@%s:%d" % (srv.host, srv.port)
    codes, outstanding, sent = {}, set(), 0
    t0 = time.time()
    while len(codes) < n:
        while sent < n and len(outstanding) < window:
            b = body(fmt, sent)
            head = ["KDMQ %s SIP/2.0" % to, "Via: SIP/2.0/UDP 127.0.0.9:%d;branch=z9hG4bK-m%d" % (port, sent),
                    "Max-Forwards: 70", "From: <sip:127.0.0.9:5999>;tag=m", "To: <%s>" % to,
                    "Call-ID: mac-%d" % sent, "CSeq: 1 KDMQ", "Content-Type: application/x-imconf-cluster",
                    "Content-Length: %d" % len(b), "", ""]
            sock.sendto("\r\n".join(head).encode() + b, (srv.host, srv.port))
            outstanding.add(sent)
            sent += 1
        try:
            data = sock.recv(65535)
        except socket.timeout:
            break
        cid = data.split(b"Call-ID: mac-", 1)
        code = int(data[8:11]) if data.startswith(b"SIP/2.0 ") else 0
        if len(cid) == 2 and code >= 200:
            i = int(cid[1].split(b"\r\n", 1)[0])
            if i in outstanding:
                outstanding.discard(i)
                codes[code] = codes.get(code, 0) + 1
    secs = time.time() - t0
    sock.close()
    return secs, codes


def measure(fmt, n, out):
    def run(ctx):
        port = harness.KPORTS.take()
        mp = [("dmq", "server_address", "sip:127.0.0.1:%d" % port),
              ("dmq", "notification_address", "sip:127.0.0.1:%d" % port), ("imconf", "enable_dmq", 1)]
        if fmt == 2:
            mp.append(("imconf", "dmq_secret", cluster.SECRET))
        srv = harness.KamailioServer(ctx, defines=["IMCONF_DMQ"], modparams=mp, port=port)
        ctx.servers.append(srv)
        srv.start()
        ctx.log_allow = r"DEBUG|enable_dmq"
        r = srv.rpc("imconf.session_open", SESSION, "ad-hoc")
        if not r.ok:
            raise harness.TestFailure(str(r))
        load(srv, fmt, 500)  # warm-up
        pids = harness.pids_in_group(srv.proc.pid)
        c0 = cpu_jiffies(pids)
        secs, codes = load(srv, fmt, n)
        time.sleep(0.5)  # the last replies' transactions
        cpu = (cpu_jiffies(pids) - c0) / os.sysconf("SC_CLK_TCK")
        out.update(secs=secs, codes=codes, cpu=cpu)
        if codes != {200: n}:
            raise harness.TestFailure("responses %s, want %d x 200" % (codes, n))
    return run


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", default="b990f6c")
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--reps", type=int, default=3)
    a = p.parse_args()
    target = harness.kamailio_target()
    harness.use_kamailio(target["bin"], target["kamcmd"], target["moddir"])
    builds = [("base %s (format 1, unsigned)" % a.base, build_base(a.base), 1),
              ("head (format 2, HMAC-SHA-256)", (ROOT / "build" / "imconf.so").resolve(), 2)]
    results = {label: [] for label, _, _ in builds}
    for rep in range(a.reps):
        for label, so, fmt in builds:
            opts = types.SimpleNamespace(module=so, standin=False, fake_bug="", filters=[], v=True)
            out = {}
            ctx, failure, _, _ = harness.run_test(opts, "cluster_mac_ab", measure(fmt, a.n, out))
            if failure:
                print("FAIL %s rep %d: %s (%s)" % (label, rep + 1, failure, ctx.rundir))
                return 1
            results[label].append(out)
            print("rep %d %-40s %6.0f msg/s  %5.1f µs CPU/msg" % (
                rep + 1, label, a.n / out["secs"], out["cpu"] / a.n * 1e6), flush=True)
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    rows = {}
    for label, runs in results.items():
        rows[label] = (med([a.n / r["secs"] for r in runs]), med([r["cpu"] / a.n * 1e6 for r in runs]))
    print("\n%s, n = %d KDMQ participant changes per run, %d reps alternated (medians):" % (
        harness.kamailio_version(), a.n, a.reps))
    print("| build | msg/s reached | node CPU per message |")
    print("|---|---|---|")
    for label, (rate, cpu) in rows.items():
        print("| %s | %.0f | %.1f µs |" % (label, rate, cpu))
    (b_rate, b_cpu), (h_rate, h_cpu) = rows.values()
    print("ratio head/base: msg/s %.3f, CPU per message %.3f" % (h_rate / b_rate, h_cpu / b_cpu))
    return 0


if __name__ == "__main__":
    sys.exit(main())
