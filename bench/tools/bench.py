#!/usr/bin/env python3
"""Measurement helpers for run.sh (RFC 4575 conference-event SUBSCRIBE/NOTIFY bench).

Sub-commands
  step     run one SIPp load step (scen/subscribe_notify.xml) against a running
           kamailio; meanwhile a low-rate Python probe runs the same call flow
           with microsecond timestamps.  Measures kamailio/SIPp CPU, latency,
           failures; appends one JSON line to --results.
           Exit 0 = PASS, 1 = FAIL, 3 = FAIL while the box was busy with other
           work (caller may retry), 2 = harness error.
  fanout   N subscriptions held on one conference, one change to it:
           time until all N NOTIFYs carrying the change have arrived.  The
           change is a PUBLISH (--trigger publish) or, for imconf, one
           imconf.participant RPC over the ctl module's binrpc unix socket
           (--trigger rpc:<socket path>).  With --kind cluster --node-ports, the
           subscriptions are spread over the nodes of an imconf cluster (phase
           `cluster`): per-node figures and the first NOTIFY from a node not fed.
  cluster-wait  until every node of an imconf cluster lists all nodes active in dmq (or
           holds the seeded session): the phase `cluster` of run.sh.
  body     print the CONF_BODY cfg define (quoted, escaped) for the ceiling.
  report   read the JSON lines of a run and print the result tables (markdown).
  check    exit 1 unless every step of the given phases passed with 0 failed
           calls (SIPp and probe) and every fan-out completed (smoke.sh).
  rpc      call one RPC command over binrpc and print the reply (debugging).
  plot     PNG of probe latency against offered load per setup (matplotlib: the
           bench venv, setup.sh; everything else here is standard library only).

Every SUBSCRIBE (SIPp scenario, probe, fan-out) asserts the same identity,
P-Asserted-Identity <sip:bench@127.0.0.1>, with Accept-Contact *;+g.oma.sip-im:
imconf authorizes only participants of the session, the other setups ignore it.

Standard library only.  Only loopback addresses (127.0.0.1; a cluster's nodes: their own
127.0.0.0/8 addresses, checked) and a unix socket given on the command line are ever
contacted, and every sender here is bounded in count and time.  Every record written to
--results carries "kamailio": the version line of the Kamailio benched (BENCH_KAMAILIO, from
run.sh: `kamailio -v`'s first line).
"""
import argparse
import ipaddress
import json
import os
import re
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


def loopback_host(host):
    """`host` if it is an IPv4 address within 127.0.0.0/8; the bench sends nowhere else."""
    try:
        ok = ipaddress.ip_address(host) in LOOPBACK
    except ValueError:
        ok = False
    if not ok:
        raise SystemExit("bench.py: %r is not a 127.0.0.0/8 address: refusing to send there" % host)
    return host


def write_record(path, rec):
    """One JSON line of results.jsonl, with the Kamailio it came from."""
    if os.environ.get("BENCH_KAMAILIO"):
        rec.setdefault("kamailio", os.environ["BENCH_KAMAILIO"])
    with open(path, "a") as f:
        f.write(json.dumps(rec) + "\n")


SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)   # Linux; SCM_TIMESTAMPNS has the same value
NCPU = os.cpu_count() or 1


# --------------------------------------------------------------------------
# /proc helpers
# --------------------------------------------------------------------------
def _read(path):
    with open(path) as f:
        return f.read()


def proc_tree(root):
    """pids of root and all its descendants (ppid links from /proc/*/stat)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            st = _read("/proc/%s/stat" % d)
        except OSError:
            continue
        rest = st[st.rfind(")") + 2:].split()
        children.setdefault(int(rest[1]), []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def tree_usage(root):
    """(cpu seconds, private anon memory kB, nproc) summed over the tree.

    CPU time is the scheduler's exact runtime (/proc/PID/schedstat, ns),
    falling back to utime+stime (10 ms ticks).  Memory is RssAnon (private
    heap), i.e. without the shared-memory pool that every child maps."""
    cpu = 0.0
    anon = n = 0
    for p in proc_tree(root):
        try:
            status = _read("/proc/%d/status" % p)
            try:
                cpu += int(_read("/proc/%d/schedstat" % p).split()[0]) / 1e9
            except (OSError, IndexError, ValueError):
                st = _read("/proc/%d/stat" % p)
                rest = st[st.rfind(")") + 2:].split()
                cpu += (int(rest[11]) + int(rest[12])) / CLK_TCK   # fields 14, 15
        except OSError:
            continue
        m = re.search(r"^RssAnon:\s+(\d+)", status, re.M)
        anon += int(m.group(1)) if m else 0
        n += 1
    return cpu, anon, n


def machine_idle():
    """(idle+iowait ticks of all CPUs, monotonic time).

    Only the idle counters are used: on this VM the tick-sampled busy
    counters of /proc/stat miss the short bursts of SIP processing (they do
    not add up to wall time under load), while idle time is exact (nohz)."""
    v = [int(x) for x in _read("/proc/stat").splitlines()[0].split()[1:]]
    return v[3] + v[4], time.monotonic()


def busy_pct(i0, i1):
    wall_ticks = (i1[1] - i0[1]) * CLK_TCK * NCPU
    if wall_ticks <= 0:
        return None
    return max(0.0, min(100.0, 100.0 * (1.0 - (i1[0] - i0[0]) / wall_ticks)))


SHM_ERR_RE = re.compile(r"could not allocate shared memory|out of mem|short of cell shmem|Free fragment not found")


def count_shm_errors(klog):
    """Lines of a kamailio log that say its shared memory pool ran out."""
    try:
        with open(klog, errors="replace") as f:
            return sum(1 for line in f if SHM_ERR_RE.search(line))
    except OSError:
        return None


def udp_counters():
    lines = [l.split() for l in _read("/proc/net/snmp").splitlines() if l.startswith("Udp:")]
    return dict(zip(lines[0][1:], (int(x) for x in lines[1][1:])))


def udp_port_drops(port):
    """receive-buffer drops of the UDP socket(s) bound to 127.0.0.1:port."""
    want = ":%04X" % port
    n = 0
    for line in _read("/proc/net/udp").splitlines()[1:]:
        f = line.split()
        if f[1].endswith(want):
            n += int(f[-1])
    return n


def pct(values, q):
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def lat_summary(vals, nd=3):
    if not vals:
        return None
    return {"n": len(vals), "median": round(pct(vals, 0.5), nd), "mean": round(statistics.fmean(vals), nd),
            "p95": round(pct(vals, 0.95), nd), "max": round(max(vals), nd)}


# --------------------------------------------------------------------------
# SIPp output parsing
# --------------------------------------------------------------------------
def parse_stat(path):
    with open(path) as f:
        lines = [l.rstrip("\n") for l in f if l.strip()]
    hdr = lines[0].rstrip(";").split(";")
    d = dict(zip(hdr, lines[-1].rstrip(";").split(";")))

    def num(k):
        try:
            return int(d.get(k, "0"))
        except ValueError:
            return 0
    return {
        "created": num("TotalCallCreated"), "success": num("SuccessfulCall(C)"),
        "failed": num("FailedCall(C)"), "f_recv_timeout": num("FailedTimeoutOnRecv(C)"),
        "f_max_retrans": num("FailedMaxUDPRetrans(C)"), "f_unexpected": num("FailedUnexpectedMessage(C)"),
        "f_regexp": num("FailedRegexpDoesntMatch(C)") + num("FailedRegexpHdrNotFound(C)"),
        "retrans": num("Retransmissions(C)"), "dead_msgs": num("DeadCallMsgs(C)"),
        "out_of_call": num("OutOfCallMsgs(C)"), "watchdog_major": num("WatchdogMajor(C)"),
        "watchdog_minor": num("WatchdogMinor(C)"), "current": num("CurrentCall"),
    }


def early_notify_index(scenario):
    """SIPp message index of the scenario's optional NOTIFY recv (the terminating
    NOTIFY that overtook the 2xx of the un-SUBSCRIBE), or None."""
    import xml.etree.ElementTree as ET
    idx = 0
    for el in ET.parse(scenario).getroot():
        if el.tag in ("send", "recv", "pause", "nop", "sendCmd", "recvCmd"):
            if el.tag == "recv" and el.get("request") == "NOTIFY" and el.get("optional") == "true":
                return idx
            idx += 1
    return None


def parse_counts(dirpath, index):
    """How often message <index> was received: last line of <scenario>_<pid>_counts.csv."""
    if index is None:
        return None
    for fn in os.listdir(dirpath):
        if fn.endswith("_counts.csv"):
            with open(os.path.join(dirpath, fn)) as f:
                lines = [l.rstrip("\n") for l in f if l.strip()]
            if len(lines) < 2:
                return None
            d = dict(zip(lines[0].split(";"), lines[-1].split(";")))
            for k, v in d.items():
                if k.startswith("%d_" % index) and k.endswith("_Recv"):
                    try:
                        return int(v)
                    except ValueError:
                        return None
    return None


def parse_rtt(dirpath):
    """{rtd_no: [ms, ...]} from <scenario>_<pid>_rtt.csv (SIPp: 1 ms ticks)."""
    res = {}
    for fn in os.listdir(dirpath):
        if not fn.endswith("_rtt.csv"):
            continue
        with open(os.path.join(dirpath, fn)) as f:
            for line in f:
                parts = line.strip().split(";")
                if len(parts) >= 3 and parts[1].replace(".", "").isdigit():
                    res.setdefault(parts[2], []).append(float(parts[1]))
    return res


# --------------------------------------------------------------------------
# tiny SIP UAC used by the latency probe and the fan-out test
# --------------------------------------------------------------------------
def _hdr(msg, *names):
    for name in names:
        m = re.search(r"^%s[ \t]*:[ \t]*(.*?)\r?$" % re.escape(name), msg, re.M | re.I)
        if m:
            return m.group(1)
    return None


class Uac:
    def __init__(self, port, dst_port, conf_user, conf_domain, rcvbuf=16 << 20, kernel_ts=False,
                 dst_host="127.0.0.1"):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # kernel_ts: recv() returns the time the datagram reached the socket (SO_TIMESTAMPNS,
        # CLOCK_REALTIME, compare with time.time()), not when this Python loop got to it: the
        # fan-out then measures the server's delivery, not how fast this receiver keeps up
        self.kernel_ts = kernel_ts
        self.raw = False         # recv() returns bytes, NOTIFYs not answered (see notify_fast)
        if kernel_ts:
            self.s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        for opt in (getattr(socket, "SO_RCVBUFFORCE", 33), socket.SO_RCVBUF):
            try:
                self.s.setsockopt(socket.SOL_SOCKET, opt, rcvbuf)
                break
            except OSError:
                continue
        self.s.bind(("127.0.0.1", port))
        self.me = "127.0.0.1:%d" % port
        self.dst = (loopback_host(dst_host), dst_port)
        self.conf = "sip:%s@%s" % (conf_user, conf_domain)
        self.tag = "py%d" % os.getpid()
        self.nb = 0

    def request(self, method, cid, ftag, cseq, extra, body="", to_tag=None, user="x", branch=None, dst=None):
        """Sends a request; `branch` (an int) repeats an earlier one: a retransmission.
        `dst`: another server (host, port) than the one given at construction (a cluster's node;
        the host checked to be in 127.0.0.0/8 by the caller)."""
        if branch is None:
            self.nb += 1
            branch = self.nb
        to = "<%s>" % self.conf + (";tag=%s" % to_tag if to_tag else "")
        m = ("%s %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-%s-%d\r\n"
             "From: <sip:%s@127.0.0.1>;tag=%s\r\nTo: %s\r\nCall-ID: %s\r\n"
             "CSeq: %d %s\r\nMax-Forwards: 70\r\nContact: <sip:%s@%s>\r\n%s"
             "Content-Length: %d\r\n\r\n%s" % (
                 method, self.conf, self.me, self.tag, branch, user, ftag, to, cid, cseq, method,
                 user, self.me, extra, len(body.encode()), body))
        self.s.sendto(m.encode(), dst if dst else self.dst)

    @property
    def tail200(self):
        return ("\r\nContact: <sip:py@%s>\r\nContent-Length: 0\r\n\r\n" % self.me).encode()

    def reply200(self, msg, src):
        head = msg.split("\r\n\r\n", 1)[0].split("\r\n")
        keep = [l for l in head[1:] if re.match(r"(?i)(via|v|from|f|to|t|call-id|i|cseq)\s*:", l)]
        self.s.sendto(("SIP/2.0 200 OK\r\n" + "\r\n".join(keep) +
                       "\r\nContact: <sip:py@%s>\r\nContent-Length: 0\r\n\r\n" % self.me).encode(), src)

    def recv(self, timeout):
        """-> (t, msg, src) or None.  NOTIFYs are answered 200 right away."""
        self.s.settimeout(max(0.0001, timeout))
        try:
            if self.kernel_ts:
                data, anc, _, src = self.s.recvmsg(65535, socket.CMSG_SPACE(16))
                t = None
                for lvl, typ, cd in anc:
                    if lvl == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS and len(cd) >= 16:
                        sec, nsec = struct.unpack("qq", cd[:16])
                        t = sec + nsec / 1e9
                if t is None:
                    t = time.time()
            else:
                data, src = self.s.recvfrom(65535)
                t = time.perf_counter()
        except (socket.timeout, BlockingIOError):
            return None
        if self.raw:
            return t, data, src
        msg = data.decode("utf-8", "replace")
        if msg.startswith("NOTIFY "):
            self.reply200(msg, src)
        return t, msg, src

    def notify_fast(self, data, src):
        """The fan-out's NOTIFY path in bytes (no decode, no regex): answers 200 and returns
        (Call-ID, Subscription-State); a cheap receiver leaves the CPU to the server."""
        head = data[:data.find(b"\r\n\r\n")].split(b"\r\n")
        keep, cid, state = [], b"", b""
        for line in head[1:]:
            name = line[:line.find(b":")].strip().lower()
            if name in _REPLY_KEEP:
                keep.append(line)
                if name in (b"call-id", b"i"):
                    cid = line[line.find(b":") + 1:].strip()
            elif name == b"subscription-state":
                state = line[line.find(b":") + 1:].strip()
        self.s.sendto(b"SIP/2.0 200 OK\r\n" + b"\r\n".join(keep) + self.tail200, src)
        return cid.decode(), state.decode()


SUB_HDRS = ("Event: conference\r\nAccept: application/conference-info+xml\r\nAccept-Contact: *;+g.oma.sip-im\r\n"
            "P-Asserted-Identity: <sip:%s@127.0.0.1>\r\nExpires: %d\r\n")
# the one identity every benchmark SUBSCRIBE asserts (a participant of the imconf session)
BENCH_IDENTITY = "bench"


# --------------------------------------------------------------------------
# minimal binrpc client (Kamailio ctl module), for the imconf fan-out trigger
# --------------------------------------------------------------------------
def _int_bytes(i):
    return i.to_bytes(4, "big").lstrip(b"\0") or b"\0"


def _binrpc_str(s):
    v = s.encode() + b"\0"              # BINRPC_T_STR (1): 0-terminated, length includes the 0
    if len(v) < 8:
        return bytes([(len(v) << 4) | 1]) + v
    lb = _int_bytes(len(v))
    return bytes([((len(lb) | 8) << 4) | 1]) + lb + v


def binrpc_call(path, method, *args, timeout=5.0):
    """Calls an RPC command over a binrpc unix stream socket (what kamcmd does).
    Returns (ok, values): ok is False for a fault; values is the flat list of
    the reply's records (ints, doubles, strings; structs/arrays as ("start"/"end", type))."""
    body = _binrpc_str(method) + b"".join(_binrpc_str(str(x)) for x in args)
    lb, cb = _int_bytes(len(body)), _int_bytes((os.getpid() & 0xffff) << 8 | 0x5a)
    hdr = bytes([0xA1, ((len(lb) - 1) << 2) | (len(cb) - 1)]) + lb + cb
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    buf, need, hl = b"", None, 0
    try:
        s.connect(path)
        s.sendall(hdr + body)
        while need is None or len(buf) < need:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            if need is None and len(buf) >= 2:
                ll, cl = ((buf[1] >> 2) & 3) + 1, (buf[1] & 3) + 1
                if len(buf) >= 2 + ll + cl:
                    hl = 2 + ll + cl
                    need = hl + int.from_bytes(buf[2:2 + ll], "big")
    finally:
        s.close()
    if need is None or len(buf) < need or buf[0] >> 4 != 0xA:
        raise OSError("binrpc: short or malformed reply from %s" % path)
    vals, p = [], hl
    while p < need:
        h = buf[p]
        p += 1
        big, size, typ = h >> 7, (h >> 4) & 7, h & 0xF
        if typ in (3, 4):                    # struct / array start or end mark
            vals.append(("end" if big else "start", typ))
            continue
        ln = size
        if big:
            ln = int.from_bytes(buf[p:p + size], "big")
            p += size
        raw = buf[p:p + ln]
        p += ln
        # numbers are sent big-endian in as few bytes as they need, unsigned; the reader puts
        # them in a C int (4 bytes) or long long (8): only a full-width value can be negative
        if typ == 0:
            u = int.from_bytes(raw, "big")
            vals.append(u - (1 << 32) if u >= 1 << 31 else u)
        elif typ == 2:
            # BINRPC_T_DOUBLE: a long long of value*1000. Kamailio 6 sends its (unsigned) long
            # values this way, e.g. core.shmmem's sizes (rpc "j"; 5.6 sent them as ints, "d")
            u = int.from_bytes(raw, "big")
            x = (u - (1 << 64) if u >= 1 << 63 else u) / 1000.0
            vals.append(int(x) if x.is_integer() else x)
        elif typ in (1, 5):
            vals.append(raw.rstrip(b"\0").decode("utf-8", "replace"))
        else:
            vals.append(raw)
    return (buf[1] >> 4) != 3, vals
def kam_mem(sock):
    """Kamailio's own memory accounting over binrpc: shm (core.shmmem) and the sum over all
    processes of pkg (kex pkg.stats), in bytes; None where the RPC is not available."""
    out = {"shm_used": None, "shm_real_used": None, "pkg_used": None, "pkg_real_used": None}
    if not sock:
        return out
    try:
        ok, v = binrpc_call(sock, "core.shmmem")
        if ok:
            d = dict(zip(v[1:-1:2], v[2:-1:2]))
            out["shm_used"], out["shm_real_used"] = d.get("used"), d.get("real_used")
        ok, v = binrpc_call(sock, "pkg.stats")
        if ok:
            used = real = 0
            flat = [x for x in v if not isinstance(x, tuple)]
            for k, x in zip(flat[0::2], flat[1::2]):
                if k == "used":
                    used += x
                elif k == "real_used":
                    real += x
            out["pkg_used"], out["pkg_real_used"] = used, real
    except (OSError, ValueError, IndexError) as e:
        out["error"] = "%s: %s" % (type(e).__name__, e)
    return out


def kam_mem_settled(sock, max_wait, step=0.5, min_wait=0.0, stable=1):
    """kam_mem once shm and pkg in use stop changing for `stable` consecutive readings `step`
    apart (tm frees a transaction ~5 s after its final response: its wait timer), no sooner
    than min_wait and no later than max_wait seconds."""
    t0 = time.monotonic()
    if min_wait > 0:
        time.sleep(min_wait)
    last = kam_mem(sock)
    same = 0
    while time.monotonic() < t0 + max_wait and last["shm_real_used"] is not None:
        time.sleep(step)
        cur = kam_mem(sock)
        if cur["shm_real_used"] == last["shm_real_used"] and cur["pkg_real_used"] == last["pkg_real_used"]:
            same += 1
            if same >= stable:
                return cur
        else:
            same = 0
        last = cur
    return last


_REPLY_KEEP = (b"via", b"v", b"from", b"f", b"to", b"t", b"call-id", b"i", b"cseq")
BODY_NS = b"urn:ietf:params:xml:ns:conference-info"
BODY_RE = re.compile(r"<conference-info[^>]*urn:ietf:params:xml:ns:conference-info")


class Probe(threading.Thread):
    """Runs the scenario's call flow sequentially at `rate` cycles/s and
    records microsecond latencies: SUBSCRIBE->2xx, SUBSCRIBE->NOTIFY,
    unSUBSCRIBE->2xx.  Runs until stop() (bounded by max_cycles)."""

    def __init__(self, port, dst_port, conf_user, conf_domain, rate=20.0, max_cycles=20000):
        super().__init__(daemon=True)
        self.uac = Uac(port, dst_port, conf_user, conf_domain, rcvbuf=1 << 20)
        self.rate, self.max_cycles = rate, max_cycles
        self._halt = threading.Event()
        self.sub2xx, self.subntf, self.unsub2xx = [], [], []
        self.cycles = self.failures = 0
        self.notify_first = 0    # terminating NOTIFY arrived before the un-SUBSCRIBE's 2xx

    def stop(self):
        self._halt.set()

    def _wait(self, cid, want_code_cseq, want_notify, deadline):
        got_code = got_ntf = None
        to_tag = None
        while (want_code_cseq and got_code is None) or (want_notify and got_ntf is None):
            r = self.uac.recv(deadline - time.perf_counter())
            if r is None:
                return None
            t, msg, _ = r
            if (_hdr(msg, "Call-ID", "i") or "") != cid:
                continue
            if msg.startswith("SIP/2.0 "):
                if (_hdr(msg, "CSeq") or "").startswith(want_code_cseq or "-"):
                    code = int(msg.split()[1])
                    if not 200 <= code < 300:
                        return None
                    got_code = t
                    m = re.search(r";tag=([^;>\s]+)", _hdr(msg, "To", "t") or "")
                    to_tag = m.group(1) if m else None
            elif msg.startswith("NOTIFY ") and want_notify and got_ntf is None:
                if want_notify == "body" and not BODY_RE.search(msg):
                    return None
                if want_notify == "terminated" and "terminated" not in (_hdr(msg, "Subscription-State") or ""):
                    return None
                got_ntf = t
        return got_code, got_ntf, to_tag

    def run(self):
        i = 0
        start = time.perf_counter()
        while not self._halt.is_set() and i < self.max_cycles:
            due = start + i / self.rate
            now = time.perf_counter()
            if now < due:
                self._halt.wait(due - now)
                if self._halt.is_set():
                    break
            i += 1
            cid = "probe-%d-%d@127.0.0.1" % (os.getpid(), i)
            ftag = "pr%d" % i
            t0 = time.perf_counter()
            self.uac.request("SUBSCRIBE", cid, ftag, 1, SUB_HDRS % (BENCH_IDENTITY, 600), user="probe")
            r = self._wait(cid, "1 SUBSCRIBE", "body", t0 + 2.0)
            if r is None:
                self.failures += 1
                continue
            t1 = time.perf_counter()
            self.uac.request("SUBSCRIBE", cid, ftag, 2, SUB_HDRS % (BENCH_IDENTITY, 0), to_tag=r[2], user="probe")
            r2 = self._wait(cid, "2 SUBSCRIBE", "terminated", t1 + 2.0)
            if r2 is None:
                self.failures += 1
                continue
            self.sub2xx.append((r[0] - t0) * 1e6)
            self.subntf.append((r[1] - t0) * 1e6)
            self.unsub2xx.append((r2[0] - t1) * 1e6)
            self.cycles += 1
            if r2[1] is not None and r2[0] is not None and r2[1] < r2[0]:
                self.notify_first += 1
        # answer stragglers (retransmitted NOTIFYs) for a moment
        end = time.perf_counter() + 0.2
        while time.perf_counter() < end:
            self.uac.recv(end - time.perf_counter())

    def summary(self):
        return {"cycles": self.cycles, "failures": self.failures, "rate": self.rate,
                "sub_2xx_us": lat_summary(self.sub2xx, 1), "sub_notify_us": lat_summary(self.subntf, 1),
                "unsub_2xx_us": lat_summary(self.unsub2xx, 1), "notify_before_unsub_2xx": self.notify_first}


# --------------------------------------------------------------------------
# step
# --------------------------------------------------------------------------
_child = None


def _on_signal(signum, frame):
    if _child is not None and _child.poll() is None:
        _child.terminate()
    sys.exit(130)


def cmd_step(a):
    global _child
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    os.makedirs(a.outdir, exist_ok=True)
    total = int(round(a.rate * a.secs))
    limit = max(200, int(a.rate * a.max_inflight_secs))
    keys = dict(kv.split("=", 1) for kv in (a.key or []))
    cmd = [a.sipp, "127.0.0.1:%d" % a.port, "-sf", a.scenario,
           "-i", "127.0.0.1", "-p", str(a.sipp_port),
           "-r", str(a.rate), "-rp", "1000", "-m", str(total), "-l", str(limit),
           "-nostdin", "-buff_size", str(a.buff_size),
           "-recv_timeout", str(a.recv_timeout_ms),
           "-timeout", "%ds" % int(a.secs + a.drain_secs), "-timeout_error",
           "-trace_stat", "-stf", "stat.csv", "-fd", "1",
           "-trace_rtt", "-rtt_freq", "1000", "-trace_counts",
           "-trace_err", "-error_file", "errors.log"]
    for k, v in keys.items():
        cmd += ["-key", k, v]
    cmd += a.sipp_arg or []

    probe = None
    if a.probe_rate > 0:
        probe = Probe(a.probe_port, a.port, keys.get("conf_user", "conf1"),
                      keys.get("conf_domain", "127.0.0.1"), rate=a.probe_rate)

    mem0 = kam_mem(a.ctl)
    k0 = tree_usage(a.kpid)
    m0 = machine_idle()
    u0 = udp_counters()
    d0 = udp_port_drops(a.port)
    t0 = time.monotonic()
    if probe:
        probe.start()
    with open(os.path.join(a.outdir, "sipp.out"), "w") as so:
        _child = subprocess.Popen(cmd, cwd=a.outdir, stdout=so, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
        _, status, ru = os.wait4(_child.pid, 0)
        _child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - t0
    if probe:
        probe.stop()
        probe.join(5)
    k1 = tree_usage(a.kpid)
    m1 = machine_idle()
    u1 = udp_counters()
    d1 = udp_port_drops(a.port)
    rc = _child.returncode
    _child = None
    anon_after = k1[1]
    if a.settle_mem > 0:
        # memory after the step: once tm has freed the step's transactions
        mem1 = kam_mem_settled(a.ctl, a.settle_mem, min_wait=min(6.0, a.settle_mem / 2), stable=3)
        anon_after = tree_usage(a.kpid)[1]
    else:
        mem1 = kam_mem(a.ctl)

    try:
        st = parse_stat(os.path.join(a.outdir, "stat.csv"))
    except (OSError, IndexError):
        st = None
    lat = {k: lat_summary(v) for k, v in sorted(parse_rtt(a.outdir).items())}
    ps = probe.summary() if probe else None

    kcpu_s = k1[0] - k0[0]
    sipp_cpu_s = ru.ru_utime + ru.ru_stime
    mbusy = busy_pct(m0, m1)
    ncalls = total + (ps["cycles"] + ps["failures"] if ps else 0)
    rec = {
        "kind": "step", "setup": a.setup, "phase": a.phase, "rep": a.rep,
        "rate": a.rate, "secs": a.secs, "planned": total, "sipp_rc": rc,
        "wall_s": round(wall, 3),
        "kam_cpu_pct": round(100.0 * kcpu_s / wall, 1),              # % of one core
        "kam_cpu_ms_per_call": round(1000.0 * kcpu_s / max(1, ncalls), 4),
        "sipp_cpu_pct": round(100.0 * sipp_cpu_s / wall, 1),
        "machine_busy_pct": round(mbusy, 1) if mbusy is not None else None,   # % of all cores
        # everything else on the box (other users' jobs, this harness+probe), % of one core
        "other_cpu_pct": round(max(0.0, (mbusy or 0) * NCPU - 100.0 * (kcpu_s + sipp_cpu_s) / wall), 1),
        "kam_anon_kb_before": k0[1], "kam_anon_kb_after": anon_after, "kam_nproc": k1[2],
        # kamailio's own accounting (bytes): shm in use, pkg in use summed over its processes
        "mem_before": mem0, "mem_after": mem1,
        "udp_rcvbuf_errors": u1.get("RcvbufErrors", 0) - u0.get("RcvbufErrors", 0),
        "udp_in_errors": u1.get("InErrors", 0) - u0.get("InErrors", 0),
        "udp_drops_kamailio_socket": d1 - d0,   # the rest of udp_rcvbuf_errors: SIPp's / probe's sockets
        "sipp": st, "lat_ms": lat, "probe": ps,
        # calls whose terminating NOTIFY overtook the un-SUBSCRIBE's 2xx (accepted, RFC 6665)
        "notify_before_unsub_2xx": parse_counts(a.outdir, early_notify_index(a.scenario)),
    }

    reasons = []
    if st is None:
        reasons.append("no SIPp statistics")
    else:
        if st["failed"]:
            reasons.append("%d failed calls" % st["failed"])
        if st["success"] < total:
            reasons.append("%d/%d calls ok" % (st["success"], total))
        if rc != 0 and not reasons:
            reasons.append("sipp rc=%d" % rc)
    if wall > a.secs * 1.10 + 3.0:
        reasons.append("offered rate not held (%.1fs for %ss)" % (wall, a.secs))
    l1 = lat.get("1")
    if a.max_p95_ms > 0 and l1 and l1["p95"] > a.max_p95_ms:
        reasons.append("p95 SUB->2xx %.0fms>%dms" % (l1["p95"], a.max_p95_ms))
    # kamailio's shared memory (SHM_MB) ran out: tm keeps every transaction ~5 s after it
    # completed (wait timer), ~10 kB each, 4 per call here; past ~SHM_MB / 46 kB calls within 5 s
    # a step measures the pool, not the speed (the failed calls are t_newtran's "out of mem")
    rec["kam_shm_alloc_errors"] = count_shm_errors(a.klog) if a.klog else None
    if reasons and rec["kam_shm_alloc_errors"]:
        reasons.insert(0, "kamailio shm exhausted (%d alloc errors; SHM_MB)" % rec["kam_shm_alloc_errors"])
    rec["pass"] = not reasons
    rec["why"] = "; ".join(reasons)
    noisy = (not rec["pass"]) and rec["other_cpu_pct"] > a.noise_pct
    rec["retried"] = bool(noisy and a.retry_on_noise)
    write_record(a.results, rec)

    def fm(x, nd=0):
        return "-" if x is None else ("%.*f" % (nd, x))
    pu = ps and ps["sub_2xx_us"]
    print("  %-24s %-5s rep%-2s %5d cps x%2ds: %s kam=%5.1f%% sipp=%4.1f%% other=%5.1f%% "
          "| SIPp rtd1 med/p95 %s/%s ms | probe SUB->2xx med %s us | ok=%s fail=%s retr=%s ntf<2xx=%s %s" % (
              a.setup, a.phase, a.rep, a.rate, a.secs, "PASS" if rec["pass"] else "FAIL",
              rec["kam_cpu_pct"], rec["sipp_cpu_pct"], rec["other_cpu_pct"],
              fm(l1 and l1["median"]), fm(l1 and l1["p95"]), fm(pu and pu["median"]),
              st and st["success"], st and st["failed"], st and st["retrans"], rec["notify_before_unsub_2xx"],
              ("(" + rec["why"] + (", noisy box -> retry" if rec["retried"] else "") + ")") if reasons else ""),
          flush=True)
    if rec["pass"]:
        return 0
    return 3 if rec["retried"] else 1


# --------------------------------------------------------------------------
# fanout
# --------------------------------------------------------------------------
def cmd_fanout(a):
    rpc_sock = a.trigger[4:] if a.trigger.startswith("rpc:") else None
    if not rpc_sock and a.trigger != "publish":
        print("fanout: --trigger must be 'publish' or 'rpc:<socket path>'", file=sys.stderr)
        return 2
    conf_uri = "sip:%s@%s" % (a.conf_user, a.conf_domain)
    # a cluster (--node-ports): subscription i goes through node i % k; the trigger goes to the
    # node of --host/--port (node 1), whose NOTIFYs are told apart from the others' by their
    # source (address, port): every node has its own address (Kamailio 6's dmq needs that)
    fed = (loopback_host(a.host), a.port)
    nodes = []
    for x in (a.node_ports.split(",") if a.node_ports else [str(a.port)]):
        h, _, p_ = x.strip().rpartition(":")
        nodes.append((loopback_host(h or a.host), int(p_)))
    kpids = [int(x) for x in str(a.kpid).split(",") if x.strip() and int(x) > 0]
    if rpc_sock:
        # imconf: the session is seeded over RPC (seed.sh); the change is one new participant
        marker = a.newcomer
        doc1 = doc2 = None
    else:
        doc1 = open(a.doc).read()
        marker = "fanout-newcomer-%d" % int(time.time())
        newuser = ('<user entity="sip:%s@example.com" state="full">\n'
                   '      <display-text>Newcomer</display-text>\n'
                   '      <endpoint entity="sip:%s@pc9.example.com" state="full">\n'
                   '        <status>connected</status>\n'
                   '        <joining-method>dialed-in</joining-method>\n'
                   '        <media id="1"><type>audio</type><status>sendrecv</status></media>\n'
                   '      </endpoint>\n    </user>\n  </users>' % (marker, marker))
        doc2 = re.sub(r"<user-count>(\d+)</user-count>",
                      lambda m: "<user-count>%d</user-count>" % (int(m.group(1)) + 1), doc1, count=1)
        doc2 = doc2.replace("</users>", newuser, 1)
        doc2 = doc2.replace('version="1"', 'version="2"', 1)
        assert marker in doc2

    u = Uac(a.local_port, a.port, a.conf_user, a.conf_domain, rcvbuf=64 << 20, kernel_ts=True,
            dst_host=fed[0])
    u.raw = True
    marker_b = marker.encode()
    st = {"pub_etag": None, "pub_200_t": None, "sub_ok": {}, "init_notify": set(),
          "change_notify": {}, "change_src": {}, "notifies": 0, "errors": [],
          "refused": set(), "n_503": 0}

    def pump(deadline, stop_when=None):
        while True:
            if stop_when and stop_when():
                return
            left = deadline - time.perf_counter()
            if left <= 0:
                return
            r = u.recv(min(left, 0.05))
            if r is None:
                continue
            t, data, src = r
            if data.startswith(b"NOTIFY "):
                cid, state = u.notify_fast(data, src)
                st["notifies"] += 1
                if marker_b in data:
                    if cid not in st["change_notify"]:
                        st["change_notify"][cid] = t
                        st["change_src"][cid] = (src[0], src[1])
                elif BODY_NS in data:
                    st["init_notify"].add(cid)
                if state.startswith("terminated"):
                    st["errors"].append("NOTIFY terminated: " + state)
                continue
            msg = data.decode("utf-8", "replace")
            cid = _hdr(msg, "Call-ID", "i") or ""
            if msg.startswith("SIP/2.0 "):
                code = int(msg.split()[1])
                meth = (_hdr(msg, "CSeq") or "").split()[-1:]
                if meth == ["PUBLISH"]:
                    if code == 200:
                        st["pub_etag"] = _hdr(msg, "SIP-ETag")
                        st["pub_200_t"] = t
                    elif code >= 300:
                        st["errors"].append("PUBLISH %d" % code)
                elif meth == ["SUBSCRIBE"]:
                    if 200 <= code < 300:
                        tt = re.search(r";tag=([^;>\s]+)", _hdr(msg, "To", "t") or "")
                        st["sub_ok"][cid] = tt.group(1) if tt else None
                    elif code == 503 and a.retry_503:
                        # a cluster node still syncing with its peers (Retry-After: 1): the
                        # resend loop below sends a new SUBSCRIBE a second later
                        st["n_503"] += 1
                        st["refused"].add(cid)
                    elif code >= 300:
                        st["errors"].append("SUBSCRIBE %d" % code)

    pub_hdrs = "Event: conference\r\nExpires: 3600\r\nContent-Type: application/conference-info+xml\r\n"
    pub_cid = "fo-pub-%d@127.0.0.1" % os.getpid()
    etag = None
    if not rpc_sock:
        # 1. create the conference state (run.sh does not seed fan-out instances)
        u.request("PUBLISH", pub_cid, u.tag + "p", 1, pub_hdrs, doc1, user="mixer")
        pump(time.perf_counter() + 5, lambda: st["pub_200_t"] is not None)
        if st["pub_200_t"] is None:
            print("fanout: initial PUBLISH not answered with 200", file=sys.stderr)
            return 2
        etag, st["pub_200_t"] = st["pub_etag"], None

    # 2. N subscriptions, paced at sub_rate/s
    n = a.n
    profiles = [x for x in (a.profiles or "").split(",") if x]
    mem0 = kam_mem_settled(a.ctl, 10) if a.ctl else None
    t_start = time.perf_counter()
    attempt = [0] * n
    def fo_cid(i):
        return "fo-%d-%d@127.0.0.1" % (i, os.getpid())
    def fo_subscribe(i):
        # branch 10^6 + i: the same branch each time, so a resend is a retransmission (tm absorbs
        # it when the first copy arrived); the UAC is no full SIP stack, this is its timer E.
        # After a 503 (--retry-503) the resend is a new request: new branch, next CSeq
        cid = fo_cid(i)
        if cid in st["refused"]:
            st["refused"].discard(cid)
            attempt[i] += 1
        hdrs = SUB_HDRS % (BENCH_IDENTITY, 3600)
        if profiles:
            # R94: the setup's cfg names the output profile after the User-Agent (issue 16)
            hdrs += "User-Agent: profile-%s\r\n" % profiles[i % len(profiles)]
        u.request("SUBSCRIBE", cid, "%s-%d" % (u.tag, i), 1 + attempt[i], hdrs, user="f%d" % i,
                  branch=1000000 + i + 10000000 * attempt[i], dst=nodes[i % len(nodes)])
    for i in range(n):
        due = t_start + i / a.sub_rate
        if time.perf_counter() < due:
            pump(due)
        fo_subscribe(i)
    resent = 0
    for _ in range(int(a.timeout)):
        pump(time.perf_counter() + 1.0, lambda: len(st["sub_ok"]) >= n and len(st["init_notify"]) >= n)
        if len(st["sub_ok"]) >= n:
            break
        for i in range(n):   # a SUBSCRIBE lost in a full socket buffer (UDP): send it again
            if fo_cid(i) not in st["sub_ok"]:
                fo_subscribe(i)
                resent += 1
    pump(time.perf_counter() + a.timeout, lambda: len(st["sub_ok"]) >= n and len(st["init_notify"]) >= n)
    if len(st["sub_ok"]) < n or len(st["init_notify"]) < n:
        print("fanout: only %d/%d subscriptions, %d initial NOTIFYs (errors: %s)" % (
            len(st["sub_ok"]), n, len(st["init_notify"]), ", ".join(st["errors"][:5])), file=sys.stderr)
        return 2
    t_subscribed = time.perf_counter() - t_start
    # the box's noise: CPU used by other processes from here to the end of the measurement
    noise0 = (machine_idle(), sum(tree_usage(p)[0] for p in kpids), time.process_time())
    pump(time.perf_counter() + a.settle)     # let tm finish the initial NOTIFY transactions
    mem1 = None
    if a.ctl:
        # shm held by N idle subscriptions: once tm has freed the initial NOTIFYs' transactions
        # (wait timer ~5 s); answer retransmissions meanwhile
        pump(time.perf_counter() + 6)
        end = time.perf_counter() + 8
        last = kam_mem(a.ctl)
        while time.perf_counter() < end:
            pump(time.perf_counter() + 1)
            cur = kam_mem(a.ctl)
            if cur["shm_real_used"] == last["shm_real_used"]:
                break
            last = cur
        mem1 = last

    # 3. one change -> N NOTIFYs. First the round trip of an RPC that does nothing (core.uptime),
    # so that what the change's RPC itself costs can be told apart (issue 18: the feeder returns
    # before the fan-out)
    rpc_noop_ms = None
    if rpc_sock:
        tn = time.perf_counter()
        if binrpc_call(rpc_sock, "core.uptime")[0]:
            rpc_noop_ms = round(1000 * (time.perf_counter() - tn), 2)
    k0 = sum(tree_usage(p)[0] for p in kpids)
    before = st["notifies"]
    rpc_res = {}
    t0 = time.perf_counter()   # deadlines
    t0w = time.time()          # times: the receive timestamps are the kernel's (CLOCK_REALTIME)
    if rpc_sock:
        # the RPC runs in a thread so that NOTIFYs are timestamped while it is in progress
        def do_rpc():
            try:
                rpc_res["reply"] = binrpc_call(rpc_sock, "imconf.participant", conf_uri, marker, "connected")
            except OSError as e:
                rpc_res["reply"] = (False, [str(e)])
            rpc_res["t"] = time.time()
        th = threading.Thread(target=do_rpc, daemon=True)
        th.start()
    else:
        extra = ("SIP-If-Match: %s\r\n" % etag if etag else "") + pub_hdrs
        u.request("PUBLISH", pub_cid, u.tag + "p", 2, extra, doc2, user="mixer")
    pump(t0 + a.timeout, lambda: len(st["change_notify"]) >= n)
    k1 = sum(tree_usage(p)[0] for p in kpids)
    noise1 = (machine_idle(), k1, time.process_time())
    nwall = noise1[0][1] - noise0[0][1]
    other_pct = None
    if nwall > 0 and busy_pct(noise0[0], noise1[0]) is not None:
        other_pct = max(0.0, busy_pct(noise0[0], noise1[0]) * NCPU
                        - 100.0 * (noise1[1] - noise0[1]) / nwall - 100.0 * (noise1[2] - noise0[2]) / nwall)
    pump(time.perf_counter() + 0.3)          # absorb stragglers / retransmissions
    if rpc_sock:
        th.join(5)
        ok, vals = rpc_res.get("reply", (False, ["no reply"]))
        if not ok or vals[:1] != ["ok"]:
            st["errors"].append("RPC imconf.participant: %s" % (vals,))
        t_trigger = rpc_res.get("t")
    else:
        t_trigger = st["pub_200_t"]
    got = len(st["change_notify"])
    times = sorted(st["change_notify"].values())
    rec = {
        "kind": "fanout", "setup": a.setup, "rep": a.rep, "n": n, "received": got,
        "profiles": a.profiles or "default",
        "complete": got >= n, "trigger": "rpc" if rpc_sock else "publish",
        "publish_if_match": bool(etag),
        "subscribe_phase_s": round(t_subscribed, 3),
        # time until the trigger was acknowledged: PUBLISH 200, or the RPC reply
        "t_publish_200_ms": round(1000 * (t_trigger - t0w), 2) if t_trigger else None,
        "rpc_noop_ms": rpc_noop_ms,
        "t_first_ms": round(1000 * (times[0] - t0w), 2) if times else None,
        "t_median_ms": round(1000 * (pct(times, 0.5) - t0w), 2) if times else None,
        "t_all_ms": round(1000 * (times[-1] - t0w), 2) if got >= n else None,
        "notify_per_s": round(got / (times[-1] - t0w), 1) if got >= 2 else None,
        "lost_notifies": n - got,
        "subscribes_resent": resent,
        "sub_rate": a.sub_rate,
        "mem_before_subs": mem0, "mem_after_subs": mem1,
        # real_used: what the allocator gave out, its per-fragment overhead included (`used`
        # is a 32-bit signed counter in the binrpc reply and wraps with large pools)
        "shm_bytes_per_idle_sub": (round((mem1["shm_real_used"] - mem0["shm_real_used"]) / n, 1)
                                   if mem0 and mem1 and mem0["shm_real_used"] is not None
                                   and mem1["shm_real_used"] is not None else None),
        "timestamps": "kernel SO_TIMESTAMPNS",
        "kam_cpu_s": round(k1 - k0, 4),
        "kam_cpu_us_per_notify": round(1e6 * (k1 - k0) / max(1, got), 1),
        "duplicate_notifies": st["notifies"] - before - got,
        # % of one core used by everything but kamailio and this receiver, from the settle
        # pause before the change until all N NOTIFYs arrived (idle ticks: ~10 ms resolution)
        "other_cpu_pct": round(other_pct, 1) if other_pct is not None else None,
        "noise_window_s": round(nwall, 2),
        "errors": st["errors"][:5],
    }
    if a.kind == "cluster":
        # per node: its subscriptions, the change's NOTIFYs it sent (by source address and
        # port), when its first and last arrived; the first from a node other than the fed one
        # = replication
        sub_node = {fo_cid(i): nodes[i % len(nodes)] for i in range(n)}
        per_node = []
        for nd in nodes:
            ts = sorted(t for c, t in st["change_notify"].items() if st["change_src"][c] == nd)
            nsubs = sum(1 for c in sub_node.values() if c == nd)
            per_node.append({"addr": nd[0], "port": nd[1], "subs": nsubs, "notifies": len(ts),
                             "t_first_ms": round(1000 * (ts[0] - t0w), 2) if ts else None,
                             "t_all_ms": round(1000 * (ts[-1] - t0w), 2) if ts and len(ts) >= nsubs else None})
        others = sorted(t for c, t in st["change_notify"].items() if st["change_src"][c] != fed)
        rec.update({
            "kind": "cluster", "nodes": len(nodes), "fed_addr": fed[0], "fed_port": fed[1], "per_node": per_node,
            "t_first_other_ms": round(1000 * (others[0] - t0w), 2) if others else None,
            # a change NOTIFY from another node than the one the subscription went through
            "notifies_from_other_node": sum(1 for c, nd in st["change_src"].items() if sub_node.get(c) != nd),
            "subscribes_503": st["n_503"],
        })
    write_record(a.results, rec)
    print("  %-24s %s N=%-5d rep%s: %d/%d NOTIFYs, all in %s ms (first %s, median %s, %s at %s ms%s)"
          " = %s NOTIFY/s, kam CPU %.3f s%s" % (
              a.setup, "fanout" if a.kind == "fanout" else "cluster of %d," % len(nodes),
              n, a.rep, got, n, rec["t_all_ms"], rec["t_first_ms"], rec["t_median_ms"],
              "RPC ok" if rpc_sock else "PUBLISH 200", rec["t_publish_200_ms"],
              "; a no-op RPC %s ms" % rpc_noop_ms if rpc_noop_ms is not None else "", rec["notify_per_s"],
              rec["kam_cpu_s"], (" errors: " + "; ".join(rec["errors"])) if rec["errors"] else ""), flush=True)
    if a.kind == "cluster":
        print("  %-24s cluster of %d, N=%-5d rep%s: first NOTIFY from a node not fed %s ms; per node %s;"
              " SUBSCRIBEs refused 503 %d" % (
                  a.setup, len(nodes), n, a.rep, rec["t_first_other_ms"],
                  ", ".join("%s:%d: %d/%d, first %s, all %s ms" % (
                      x["addr"], x["port"], x["notifies"], x["subs"], x["t_first_ms"], x["t_all_ms"])
                      for x in rec["per_node"]),
                  rec["subscribes_503"]), flush=True)
    if rec["shm_bytes_per_idle_sub"] is not None:
        print("  %-24s fanout N=%-5d rep%s: shm per idle subscription %s bytes" % (
            a.setup, n, a.rep, rec["shm_bytes_per_idle_sub"]), flush=True)
    return 0 if rec["complete"] and not rec["errors"] else 1


# --------------------------------------------------------------------------
# cluster-wait
# --------------------------------------------------------------------------
def _structs(vals):
    """binrpc_call's flat reply -> list of dicts (one per struct of name/value pairs)."""
    out, cur = [], None
    for v in vals:
        if isinstance(v, tuple):
            if v[0] == "start":
                cur = []
            elif cur is not None:
                out.append(dict(zip(cur[0::2], cur[1::2])))
                cur = None
        elif cur is not None:
            cur.append(v)
    return out


def cmd_cluster_wait(a):
    """Until every node's dmq lists all --nodes nodes active (the bus has formed), or, with
    --session, until every node holds that session with at least --participants participants
    (the seed reached every node).  Exit 0 when so, 1 after --timeout s (with what was seen)."""
    socks = a.ctl.split(",")
    t0 = time.monotonic()
    seen = []
    while True:
        seen = []
        for sk in socks:
            try:
                if a.session:
                    ok, v = binrpc_call(sk, "imconf.sessions", timeout=2)
                    seen.append(max([int(d.get("participants", -1)) for d in _structs(v) if ok
                                     and d.get("uri") == a.session] or [-1]))
                else:
                    ok, v = binrpc_call(sk, "dmq.list_nodes", timeout=2)
                    seen.append(sum(1 for d in _structs(v) if ok and d.get("status") == "active"))
            except OSError:
                seen.append(-1)
        want = a.participants if a.session else a.nodes
        if all(x >= want for x in seen):
            print("cluster-wait: %s on all %d nodes after %.2f s" % (
                "session %s with %d participants" % (a.session, want) if a.session
                else "%d active dmq nodes" % want, len(socks), time.monotonic() - t0), flush=True)
            return 0
        if time.monotonic() - t0 > a.timeout:
            print("cluster-wait: not within %s s: %s per node %s, want %d" % (
                a.timeout, "participants" if a.session else "active dmq nodes", seen, want), file=sys.stderr)
            return 1
        time.sleep(0.1)


# --------------------------------------------------------------------------
# body
# --------------------------------------------------------------------------
def cmd_body(a):
    s = open(a.doc).read()
    s = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    sys.stdout.write('"' + s + '"')
    return 0


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------
def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(x, nd=1):
    if x is None:
        return "-"
    return ("%." + str(nd) + "f") % x


def g(d, *path):
    for p in path:
        if d is None:
            return None
        d = d.get(p) if isinstance(d, dict) else None
    return d


def early(r):
    """NOTIFY(terminated) before the un-SUBSCRIBE's 2xx, SIPp + probe, as 'n (x.xx%)'."""
    if r is None:
        return "-"
    n = (r.get("notify_before_unsub_2xx") or 0) + (g(r, "probe", "notify_before_unsub_2xx") or 0)
    calls = (g(r, "sipp", "success") or 0) + (g(r, "probe", "cycles") or 0)
    return "%d (%.2f%%)" % (n, 100.0 * n / calls) if calls else "%d" % n


def _kb(b):
    return None if b is None else b / 1024.0


def _growth(r, key):
    b, e = g(r, "mem_before", key), g(r, "mem_after", key)
    calls = (g(r, "sipp", "success") or 0) + (g(r, "probe", "cycles") or 0)
    return None if b is None or e is None or not calls else (e - b) / calls


def _anon_growth(r):
    calls = (g(r, "sipp", "success") or 0) + (g(r, "probe", "cycles") or 0)
    return (r["kam_anon_kb_after"] - r["kam_anon_kb_before"]) / calls if calls else None


# (ratios.json key, target as text, test)
TARGETS = [
    ("max_cps_vs_ceiling", ">= 0.9", lambda v: v >= 0.9),
    ("max_cps_vs_presence_conference", ">= 2.5", lambda v: v >= 2.5),
    ("cpu_per_call_vs_ceiling", "<= 1.2", lambda v: v <= 1.2),
    ("cpu_per_call_vs_ceiling_at_high_load", "<= 1.2 (issue 18)", lambda v: v <= 1.2),
    ("fanout_1000_time_vs_presence_conference", "<= 0.333", lambda v: v <= 1 / 3),
    ("fanout_10000_lost_notifies", "0", lambda v: v == 0),
    ("fanout_10000_vs_1000_time_per_notify", "<= 1.2 (linear)", lambda v: v <= 1.2),
    ("mem_growth_kb_per_call", "0 (< 0.01)", lambda v: v < 0.01),
    ("shm_growth_bytes_per_call", "0 (< 1)", lambda v: v < 1),
]


def compute_ratios(steps, fans, best, a, clusters=None):
    """ratios.json (medians over repetitions) and the per-repetition values behind them."""
    subj, ceil, base = a.subject, a.ceiling, a.baseline
    detail, ratios = {}, {}

    def put(key, vals):
        vals = [v for v in vals if v is not None]
        detail[key] = [round(v, 4) for v in vals]
        if vals:
            ratios[key] = round(statistics.median(vals), 4)

    reps = sorted({k[1] for k in best}, key=lambda x: int(x))
    for ref, key in ((ceil, "max_cps_vs_ceiling"), (base, "max_cps_vs_presence_conference")):
        put(key, [best[(subj, r)]["rate"] / best[(ref, r)]["rate"] for r in reps
                  if (subj, r) in best and (ref, r) in best])
    fixed = {(r["setup"], r["rep"]): r for r in steps if r["phase"] == "fixed"}
    put("cpu_per_call_vs_ceiling", [
        fixed[(subj, r)]["kam_cpu_ms_per_call"] / fixed[(ceil, r)]["kam_cpu_ms_per_call"]
        for (s_, r) in fixed if s_ == subj and (ceil, r) in fixed and fixed[(ceil, r)]["kam_cpu_ms_per_call"]])
    high = {(r["setup"], r["rep"]): r for r in steps if r["phase"] == "high"}
    put("cpu_per_call_vs_ceiling_at_high_load", [
        high[(subj, r)]["kam_cpu_ms_per_call"] / high[(ceil, r)]["kam_cpu_ms_per_call"]
        for (s_, r) in high if s_ == subj and (ceil, r) in high and high[(ceil, r)]["kam_cpu_ms_per_call"]])
    put("cpu_per_call_vs_presence_conference", [
        fixed[(subj, r)]["kam_cpu_ms_per_call"] / fixed[(base, r)]["kam_cpu_ms_per_call"]
        for (s_, r) in fixed if s_ == subj and (base, r) in fixed and fixed[(base, r)]["kam_cpu_ms_per_call"]])
    fo = {(r["setup"], r["n"], r["rep"]): r for r in fans}
    put("fanout_1000_time_vs_presence_conference", [
        fo[(subj, 1000, r)]["t_all_ms"] / fo[(base, 1000, r)]["t_all_ms"]
        for (s_, n_, r) in fo if s_ == subj and n_ == 1000 and (base, 1000, r) in fo
        and fo[(subj, 1000, r)]["t_all_ms"] and fo[(base, 1000, r)]["t_all_ms"]])
    put("fanout_10000_lost_notifies", [fo[k]["lost_notifies"] if "lost_notifies" in fo[k]
                                       else fo[k]["n"] - fo[k]["received"]
                                       for k in fo if k[0] == subj and k[1] == 10000])
    per = {}
    for (s_, n_, r), rec in fo.items():
        if s_ == subj and rec["t_all_ms"]:
            per.setdefault(n_, []).append(1000.0 * rec["t_all_ms"] / n_)
    if per:
        detail["fanout_time_per_notify_us"] = {str(n_): round(statistics.median(v), 1) for n_, v in sorted(per.items())}
    if 10000 in per and 1000 in per:
        put("fanout_10000_vs_1000_time_per_notify", [statistics.median(per[10000]) / statistics.median(per[1000])])
    mems = [r for r in steps if r["phase"] == "mem" and r["setup"] == subj]
    put("mem_growth_kb_per_call", [_anon_growth(r) for r in mems])
    put("shm_growth_bytes_per_call", [_growth(r, "shm_real_used") for r in mems])
    put("pkg_growth_bytes_per_call", [_growth(r, "pkg_real_used") for r in mems])
    idle = [r["shm_bytes_per_idle_sub"] for r in fans if r["setup"] == subj and r.get("shm_bytes_per_idle_sub") is not None]
    put("shm_bytes_per_idle_subscription", idle)
    # keep the info entries out of the per-repetition table
    for key in ("pkg_growth_bytes_per_call", "shm_bytes_per_idle_subscription"):
        if key in detail:
            detail[key] = ratios.get(key)
    # phase cluster: NOTIFY/s with 1 node and with 3, their ratio within each repetition, the
    # NOTIFYs lost over all its measurements, the first NOTIFY from a node not fed (3 nodes)
    cl = clusters or []
    if cl:
        by = {}
        for r in cl:
            by.setdefault(r["nodes"], {})[r["rep"]] = r
        one, three = by.get(1, {}), by.get(3, {})
        put("cluster_notify_per_s_1_node", [r["notify_per_s"] for r in one.values() if r["complete"]])
        put("cluster_notify_per_s_3_nodes", [r["notify_per_s"] for r in three.values() if r["complete"]])
        put("cluster_3_vs_1_notify_rate", [three[k]["notify_per_s"] / one[k]["notify_per_s"] for k in three
                                           if k in one and three[k]["complete"] and one[k]["complete"]
                                           and one[k]["notify_per_s"]])
        detail["cluster_lost_notifies"] = [r["lost_notifies"] for r in cl]
        ratios["cluster_lost_notifies"] = sum(r["lost_notifies"] for r in cl)
        put("cluster_replication_delay_ms", [r.get("t_first_other_ms") for r in three.values()])
    return ratios, detail


def cmd_report(a):
    recs = [json.loads(l) for l in open(a.results) if l.strip()]
    steps = [r for r in recs if r["kind"] == "step" and not r.get("retried")]
    retried = [r for r in recs if r["kind"] == "step" and r.get("retried")]
    # fan-outs with the setup's default output (the comparisons between setups), and those whose
    # subscribers named output profiles (FANOUT_PROFILES, issue 16: compared with each other)
    fans = [r for r in recs if r["kind"] == "fanout" and r.get("profiles", "default") == "default"]
    prof_fans = [r for r in recs if r["kind"] == "fanout" and r.get("profiles", "default") != "default"]
    clusters = [r for r in recs if r["kind"] == "cluster"]
    setups = []
    for r in recs:
        if r["setup"] not in setups:
            setups.append(r["setup"])
    out = []
    w = out.append
    # the Kamailio the figures came from: env.txt's line, else the records'
    env = {}
    if a.env and os.path.exists(a.env):
        env = dict(l.rstrip("\n").split(": ", 1) for l in open(a.env) if ": " in l and "=" not in l.split(": ", 1)[0])
    kams = sorted({r.get("kamailio") for r in recs if r.get("kamailio")})
    kam = env.get("kamailio") or "; ".join(kams) or None
    if kam:
        w("Kamailio: `%s`%s" % (kam, (" (binary %s)" % env["kamailio binary"].split(" (")[0])
                               if env.get("kamailio binary") else ""))
        w("")

    if env:
        allsteps = [r for r in steps if r.get("other_cpu_pct") is not None]
        oth = sorted(r["other_cpu_pct"] for r in allsteps)
        w("Run %s, %s UTC, %s; cpu: %s, cpu_calib_ms %s; loadavg at start %s, at end %s; CPU used by "
          "other processes during the steps (%% of one core): median %s, p90 %s, max %s (%d steps)." % (
              env.get("run_id", "?"), env.get("date_utc", "?"), env.get("host", "?"), env.get("cpu", "?"),
              env.get("cpu_calib_ms", "?"), " ".join(env.get("loadavg at start", "?").split()[:3]),
              " ".join(env.get("loadavg at end", "?").split()[:3]), fmt(pct(oth, 0.5), 0),
              fmt(pct(oth, 0.9), 0), fmt(oth[-1] if oth else None, 0), len(oth)))
        w("")

    maxsteps = [r for r in steps if r["phase"] == "max"]
    reps = sorted({r["rep"] for r in maxsteps}, key=lambda x: int(x))
    best, lowfail = {}, {}
    for r in maxsteps:
        k = (r["setup"], r["rep"])
        if r["pass"] and (k not in best or r["rate"] > best[k]["rate"]):
            best[k] = r
    for r in maxsteps:
        k = (r["setup"], r["rep"])
        if not r["pass"] and (k not in lowfail or r["rate"] < lowfail[k]["rate"]):
            lowfail[k] = r

    if maxsteps:
        w("### 1. Highest call rate with 0 failed calls (%s s per step, fresh kamailio per step)" % maxsteps[0]["secs"])
        w("")
        w("One call = SUBSCRIBE/2xx, NOTIFY(conference-info)/200, un-SUBSCRIBE/2xx, NOTIFY(terminated)/200 "
          "(8 SIP messages). CPU in %% of ONE core (the box has %d). 'other' = CPU used by everything "
          "else on the box during the step (other users' jobs, the harness). SIPp latencies have 1 ms "
          "resolution; the probe (a 20 call/s Python UAC running the same flow alongside SIPp) has us "
          "resolution." % NCPU)
        w("")
        oom = sorted({r["setup"] for r in maxsteps if r.get("kam_shm_alloc_errors")})
        if oom:
            w("**Shared memory ran out** (kamailio -m, `SHM_MB`) in failed max steps of %s: tm keeps each "
              "transaction ~5 s after it completed (~10 kB each, 4 per call for a stateful setup), so above "
              "~SHM_MB / 46 kB calls per 5 s the step measures the pool, not the CPU. Rerun with a larger "
              "`SHM_MB` for a rate figure." % ", ".join(oom))
            w("")
        w("| setup | rep | max pass cps | lowest fail cps: why | kamailio CPU % | kam CPU ms/call | SIPp CPU % | other % | box busy % (of 2 cores) | SIPp SUB->2xx med / p95 ms | probe SUB->2xx med us | probe SUB->NOTIFY med us | NOTIFY before unSUB 2xx @max |")
        w("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for s in setups:
            for rep in reps:
                b, ff = best.get((s, rep)), lowfail.get((s, rep))
                if b is None and ff is None:
                    continue
                w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                    s, rep, b["rate"] if b else "none",
                    ("%d: %s" % (ff["rate"], ff["why"][:70])) if ff else "-",
                    fmt(g(b, "kam_cpu_pct")), fmt(g(b, "kam_cpu_ms_per_call"), 3),
                    fmt(g(b, "sipp_cpu_pct")), fmt(g(b, "other_cpu_pct"), 0), fmt(g(b, "machine_busy_pct"), 0),
                    ("%s / %s" % (fmt(g(b, "lat_ms", "1", "median"), 0), fmt(g(b, "lat_ms", "1", "p95"), 0))) if b else "-",
                    fmt(g(b, "probe", "sub_2xx_us", "median"), 0), fmt(g(b, "probe", "sub_notify_us", "median"), 0),
                    early(b)))
        w("")
        w("Medians over the repetitions:")
        w("")
        w("| setup | reps | max cps | kamailio CPU % @max | kam CPU ms/call @max | SIPp CPU % @max | SIPp SUB->2xx median ms @max | SIPp SUB->2xx p95 ms @max | probe SUB->2xx median us @max | probe SUB->NOTIFY median us @max |")
        w("|---|---|---|---|---|---|---|---|---|---|")
        for s in setups:
            bs = [best[(s, rep)] for rep in reps if (s, rep) in best]
            if not bs:
                continue
            w("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                s, len(bs), fmt(med([b["rate"] for b in bs]), 0), fmt(med([b["kam_cpu_pct"] for b in bs])),
                fmt(med([b["kam_cpu_ms_per_call"] for b in bs]), 3), fmt(med([b["sipp_cpu_pct"] for b in bs])),
                fmt(med([g(b, "lat_ms", "1", "median") for b in bs]), 1),
                fmt(med([g(b, "lat_ms", "1", "p95") for b in bs]), 1),
                fmt(med([g(b, "probe", "sub_2xx_us", "median") for b in bs]), 0),
                fmt(med([g(b, "probe", "sub_notify_us", "median") for b in bs]), 0)))
        w("")

    def same_load(phase, title):
        """The table of one same-load phase ('fixed', 'high'); {setup: {"cpc": median CPU/call}}."""
        rows = [r for r in steps if r["phase"] == phase]
        out = {}
        if not rows:
            return rows, out
        w(title % (rows[0]["rate"], rows[0]["secs"]))
        w("")
        w("'NOTIFY before unSUB 2xx': calls (SIPp + probe) whose terminating NOTIFY arrived before the 2xx of "
          "the un-SUBSCRIBE. RFC 6665 subscribers accept that order, so the call still passes; it is counted "
          "because a server that replies and notifies from one process never does it.")
        w("")
        w("| setup | reps (pass) | kamailio CPU % | kam CPU ms/call | SIPp CPU % | probe SUB->2xx median / p95 us | probe SUB->NOTIFY median us | probe unSUB->2xx median us | kam private mem growth kB/call | NOTIFY before unSUB 2xx (per rep) |")
        w("|---|---|---|---|---|---|---|---|---|---|")
        for s in setups:
            rs = [r for r in rows if r["setup"] == s]
            if not rs:
                continue
            m = {"cpc": med([r["kam_cpu_ms_per_call"] for r in rs])}
            out[s] = m
            w("| %s | %d (%d) | %s | %s | %s | %s / %s | %s | %s | %s | %s |" % (
                s, len(rs), sum(1 for r in rs if r["pass"]), fmt(med([r["kam_cpu_pct"] for r in rs])),
                fmt(m["cpc"], 3), fmt(med([r["sipp_cpu_pct"] for r in rs])),
                fmt(med([g(r, "probe", "sub_2xx_us", "median") for r in rs]), 0),
                fmt(med([g(r, "probe", "sub_2xx_us", "p95") for r in rs]), 0),
                fmt(med([g(r, "probe", "sub_notify_us", "median") for r in rs]), 0),
                fmt(med([g(r, "probe", "unsub_2xx_us", "median") for r in rs]), 0),
                fmt(med([(r["kam_anon_kb_after"] - r["kam_anon_kb_before"]) / max(1, r["planned"]) for r in rs]), 1),
                ", ".join(early(r) for r in rs)))
        w("")
        return rows, out

    fixed, fsum = same_load("fixed", "### 2. Same offered load for every setup: %s cps x %s s (phase 'fixed')")
    high, hsum = same_load("high", "### 2b. Same high load for every setup: %s cps x %s s (phase 'high': "
                           "HIGH_PCT %% of the ceiling's max in this run)")

    nsec = 3
    for ref in [x for x in (a.ceiling, a.baseline) if x]:
        if ref not in setups or len(setups) < 2 or not (maxsteps or fixed):
            continue
        w("### %d. Ratios against `%s`, computed within each repetition (back-to-back runs), then the median" % (nsec, ref))
        nsec += 1
        w("")
        w("Rate ratio > 1: more calls/s than `%s`; CPU and latency ratios < 1: cheaper / faster." % ref)
        w("")
        w("| setup | max-rate ratio per rep | median max-rate ratio | median kam CPU/call ratio @max | kam CPU/call ratio @fixed load | kam CPU/call ratio @high load | probe SUB->NOTIFY latency ratio @fixed load |")
        w("|---|---|---|---|---|---|---|")
        for s in setups:
            if s == ref:
                continue
            rr, cr = [], []
            for rep in reps:
                b, c = best.get((s, rep)), best.get((ref, rep))
                if b and c:
                    rr.append(b["rate"] / c["rate"])
                    cr.append(b["kam_cpu_ms_per_call"] / max(1e-9, c["kam_cpu_ms_per_call"]))
            fx = lx = None
            if s in fsum and ref in fsum and fsum[ref]["cpc"]:
                fx = fsum[s]["cpc"] / fsum[ref]["cpc"]
                ls = med([g(r, "probe", "sub_notify_us", "median") for r in fixed if r["setup"] == s])
                lr = med([g(r, "probe", "sub_notify_us", "median") for r in fixed if r["setup"] == ref])
                lx = ls / lr if ls and lr else None
            hx = hsum[s]["cpc"] / hsum[ref]["cpc"] if s in hsum and ref in hsum and hsum[ref]["cpc"] else None
            w("| %s | %s | %s | %s | %s | %s | %s |" % (
                s, ", ".join("%.3f" % x for x in rr) or "-", fmt(med(rr), 3), fmt(med(cr), 2), fmt(fx, 2), fmt(hx, 2),
                fmt(lx, 2)))
        w("")

    if fans:
        w("### %d. Fan-out: N subscriptions on one conference, one change to it" % nsec)
        w("")
        w("The change is a PUBLISH of the document with one more user (presence_conference), or one "
          "`imconf.participant <conf> sip:newcomer@127.0.0.1 connected` RPC over binrpc (imconf). Times "
          "from sending the trigger until the NOTIFY carrying the change arrived; 'trigger ok' = the PUBLISH's "
          "200 or the RPC's reply; 'no-op RPC' = the round trip of `core.uptime` just before, over the same "
          "socket (what the RPC path costs by itself).")
        w("")
        w("| setup | N | rep | trigger | NOTIFYs received | trigger ok ms | no-op RPC ms | first NOTIFY ms | median NOTIFY ms | all N NOTIFYs ms | NOTIFY/s | kamailio CPU s | kam CPU us/NOTIFY | errors |")
        w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in fans:
            w("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                r["setup"], r["n"], r["rep"], r.get("trigger", "publish"),
                ("%d" % r["received"]) + ("" if r["complete"] else " (INCOMPLETE)"),
                fmt(r["t_publish_200_ms"], 1), fmt(r.get("rpc_noop_ms"), 1), fmt(r["t_first_ms"], 1), fmt(r.get("t_median_ms"), 1),
                fmt(r["t_all_ms"], 1), fmt(r["notify_per_s"], 0), fmt(r["kam_cpu_s"], 3),
                fmt(r.get("kam_cpu_us_per_notify"), 0), "; ".join(r.get("errors") or []) or "-"))
        w("")
        w("| setup | N | reps | median time until all N NOTIFYs ms | median NOTIFY/s | median trigger ok ms | all-N time ratio vs `%s` |" % a.baseline)
        w("|---|---|---|---|---|---|---|")
        keys = []
        for r in fans:
            if (r["setup"], r["n"]) not in keys:
                keys.append((r["setup"], r["n"]))
        for s, n in keys:
            rs = [r for r in fans if r["setup"] == s and r["n"] == n]
            bs = [r for r in fans if r["setup"] == a.baseline and r["n"] == n]
            tall, ball = med([r["t_all_ms"] for r in rs]), med([r["t_all_ms"] for r in bs])
            w("| %s | %d | %d | %s | %s | %s | %s |" % (
                s, n, len(rs), fmt(tall, 1), fmt(med([r["notify_per_s"] for r in rs]), 0),
                fmt(med([r["t_publish_200_ms"] for r in rs]), 1),
                fmt(tall / ball, 2) if tall and ball else "-"))
        w("")

    if prof_fans:
        w("### Fan-out by output profiles (R94, issue 16; FANOUT_PROFILES)")
        w("")
        w("The same fan-out, with subscriber i given the (i mod k)-th of the listed profiles through its "
          "User-Agent. Ratios against the first variant listed, within each repetition (variants alternate "
          "inside a repetition), then their median.")
        w("")
        w("| setup | N | profiles | reps | all N NOTIFYs ms per rep | kam CPU us/NOTIFY per rep | all-N time ratio per rep | CPU ratio per rep | median ratios (time, CPU) |")
        w("|---|---|---|---|---|---|---|---|---|")
        variants = []
        for r in prof_fans:
            if (r["setup"], r["n"], r["profiles"]) not in variants:
                variants.append((r["setup"], r["n"], r["profiles"]))
        for s, n, p in variants:
            rs = {r["rep"]: r for r in prof_fans if (r["setup"], r["n"], r["profiles"]) == (s, n, p)}
            first = next(v for v in variants if v[:2] == (s, n))
            bs = {r["rep"]: r for r in prof_fans if (r["setup"], r["n"], r["profiles"]) == first}
            reps_ = sorted(rs, key=lambda x: int(x))

            def ratio(key, rep):
                x, y = rs[rep].get(key), bs.get(rep, {}).get(key)
                return x / y if x and y else None
            tr = [ratio("t_all_ms", k) for k in reps_]
            cr = [ratio("kam_cpu_us_per_notify", k) for k in reps_]
            w("| %s | %d | %s | %d | %s | %s | %s | %s | %s, %s |" % (
                s, n, p, len(rs), " / ".join(fmt(rs[k]["t_all_ms"], 1) for k in reps_),
                " / ".join(fmt(rs[k].get("kam_cpu_us_per_notify"), 0) for k in reps_),
                " / ".join(fmt(x, 2) for x in tr), " / ".join(fmt(x, 2) for x in cr),
                fmt(med([x for x in tr if x]), 2), fmt(med([x for x in cr if x]), 2)))
        w("")

    # --------------------------------------------------------------- cluster
    if clusters:
        nsec += 1
        cn = clusters[0]["n"]
        w("### %d. Cluster: imconf nodes joined by dmq (`enable_dmq`), N = %d subscriptions, one change (phase 'cluster')" % (nsec, cn))
        w("")
        w("Every node is setup `%s` (setup C plus dmq and `enable_dmq 1`), on its own address (127.0.0.<i>) and port; a node alone "
          "is a cluster of 1. The N subscriptions on `sip:conf1@127.0.0.1` are spread evenly over the nodes "
          "(subscriber i through node i mod k), the change is one `imconf.participant` RPC on node 1, the "
          "times run from sending it until the NOTIFYs carrying it arrived (kernel receive timestamps). "
          "'first from another node' is the first such NOTIFY sent by a node other than node 1: the "
          "replication delay. NOTIFY/s = N / time until all N arrived. kamailio CPU: all nodes together. "
          "'other %%': CPU used by every other process (not kamailio, not the receiver) from the pause "
          "before the change until the last NOTIFY, in %% of one core (~%s s window, 10 ms ticks): "
          "the shared box's noise. The box has %d cores, shared by all nodes and the receiver." % (
              clusters[0]["setup"], fmt(med([r.get("noise_window_s") for r in clusters]), 1), NCPU))
        w("")
        w("| nodes | rep | NOTIFYs received | per node (sent/subscriptions) | trigger ok ms | first NOTIFY ms | first from another node ms | all N NOTIFYs ms | NOTIFY/s | kamailio CPU s | kam CPU us/NOTIFY | other % | SUBSCRIBE 503 | from another node than subscribed | errors |")
        w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in clusters:
            w("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                r["nodes"], r["rep"], ("%d" % r["received"]) + ("" if r["complete"] else " (INCOMPLETE)"),
                ", ".join("%d/%d" % (x["notifies"], x["subs"]) for x in r["per_node"]),
                fmt(r["t_publish_200_ms"], 1), fmt(r["t_first_ms"], 1), fmt(r.get("t_first_other_ms"), 1),
                fmt(r["t_all_ms"], 1), fmt(r["notify_per_s"], 0), fmt(r["kam_cpu_s"], 3),
                fmt(r.get("kam_cpu_us_per_notify"), 0), fmt(r.get("other_cpu_pct"), 0), r.get("subscribes_503", 0),
                r.get("notifies_from_other_node", 0), "; ".join(r.get("errors") or []) or "-"))
        w("")

        def spread(vals, nd=0):
            vals = [v for v in vals if v is not None]
            return ("%s (%s..%s)" % (fmt(statistics.median(vals), nd), fmt(min(vals), nd), fmt(max(vals), nd))
                    if vals else "-")
        w("Medians over the repetitions (min..max):")
        w("")
        w("| nodes | reps | time until all N NOTIFYs ms | NOTIFY/s | first NOTIFY ms | first from another node ms | kam CPU us/NOTIFY | other % | lost NOTIFYs (sum) |")
        w("|---|---|---|---|---|---|---|---|---|")
        for k in sorted({r["nodes"] for r in clusters}):
            rs = [r for r in clusters if r["nodes"] == k]
            w("| %d | %d | %s | %s | %s | %s | %s | %s | %d |" % (
                k, len(rs), spread([r["t_all_ms"] for r in rs], 1), spread([r["notify_per_s"] for r in rs]),
                spread([r["t_first_ms"] for r in rs], 1), spread([r.get("t_first_other_ms") for r in rs], 1),
                spread([r.get("kam_cpu_us_per_notify") for r in rs]), spread([r.get("other_cpu_pct") for r in rs]),
                sum(r["lost_notifies"] for r in rs)))
        w("")
        crat, cdet = compute_ratios([], [], {}, a, clusters)
        w("| figure (`ratios.json`) | per repetition | median |")
        w("|---|---|---|")
        for key in ("cluster_notify_per_s_1_node", "cluster_notify_per_s_3_nodes", "cluster_3_vs_1_notify_rate",
                    "cluster_replication_delay_ms", "cluster_lost_notifies"):
            nd = 3 if "rate" in key else 0 if "lost" in key else 1
            w("| `%s` | %s | %s |" % (key, ", ".join(fmt(x, nd) for x in cdet.get(key) or []) or "-",
                                     fmt(crat.get(key), nd) if key != "cluster_lost_notifies"
                                     else "%s (must be 0: %s)" % (crat.get(key), "yes" if crat.get(key) == 0 else "**no**")))
        w("")

    # ---------------------------------------------------------------- memory
    mems = [r for r in steps if r["phase"] == "mem"]
    if mems:
        w("### %d. Memory: %s calls after a warm-up, on one kamailio (phase 'mem')" % (nsec + 1, mems[0]["planned"]))
        nsec += 1
        w("")
        w("Growth from the start to the end of the measured step, the end taken once tm has freed the "
          "step's transactions (at least 6 s after the load, then shm and pkg in use unchanged over 1.5 s). shm and pkg: kamailio's own accounting "
          "(`core.shmmem` real_used, `pkg.stats` real_used summed over all processes: what the allocators handed out, their per-fragment overhead included); private: RssAnon of the "
          "kamailio process tree (first-touched pkg pool pages count here too).")
        w("")
        w("| setup | calls | rate cps | failed | shm in use before kB | shm growth bytes/call | pkg in use before kB | pkg growth bytes/call | private growth kB/call |")
        w("|---|---|---|---|---|---|---|---|---|")
        for r in mems:
            w("| %s | %d | %d | %s | %s | %s | %s | %s | %s |" % (
                r["setup"], r["planned"], r["rate"], g(r, "sipp", "failed"),
                fmt(_kb(g(r, "mem_before", "shm_real_used")), 0), fmt(_growth(r, "shm_real_used"), 3),
                fmt(_kb(g(r, "mem_before", "pkg_real_used")), 0), fmt(_growth(r, "pkg_real_used"), 3),
                fmt(_anon_growth(r), 3)))
        w("")
    idle = [r for r in fans if r.get("shm_bytes_per_idle_sub") is not None]
    if idle:
        w("shm in use per idle subscription (fan-out phase: shm in use after the N subscriptions, once "
          "tm freed the initial NOTIFYs' transactions, minus before, divided by N), bytes: " + "; ".join(
              "%s N=%d: %s" % (s_, n_, fmt(med([r["shm_bytes_per_idle_sub"] for r in idle
                                                if r["setup"] == s_ and r["n"] == n_]), 0))
              for s_, n_ in sorted({(r["setup"], r["n"]) for r in idle})))
        w("")

    # ---------------------------------------------------------- ratios.json
    ratios, detail = compute_ratios(steps, fans, best, a, clusters)
    if any(not k.startswith("cluster_") for k in ratios):   # (the cluster's figures: its own section)
        w("### %d. Targets (issue 6): `%s` against `%s` and `%s`, ratios computed within each "
          "repetition, then the median (spread = min..max over repetitions)" % (nsec + 1, a.subject, a.ceiling, a.baseline))
        nsec += 1
        w("")
        w("| figure | per repetition | median | target | met |")
        w("|---|---|---|---|---|")
        for key, target, ok in TARGETS:
            v = ratios.get(key)
            per = detail.get(key) or []
            w("| `%s` | %s | %s | %s | %s |" % (
                key, ", ".join(fmt(x, 3) for x in per) or "-", fmt(v, 3), target,
                "-" if v is None else ("yes" if ok(v) else "**no**")))
        for key in ("fanout_time_per_notify_us", "shm_bytes_per_idle_subscription",
                    "pkg_growth_bytes_per_call"):
            if detail.get(key) is not None:
                w("| `%s` (info) | %s | | | |" % (key, detail[key]))
        w("")
    if ratios:
        if kam:
            ratios["kamailio"] = kam     # which Kamailio these figures are from
            detail["kamailio"] = kam
        if a.ratios_out:
            with open(a.ratios_out, "w") as fo:
                json.dump(ratios, fo, indent=1, sort_keys=True)
                fo.write("\n")
            with open(os.path.join(os.path.dirname(a.ratios_out) or ".", "ratios_detail.json"), "w") as fo:
                json.dump(detail, fo, indent=1, sort_keys=True)
                fo.write("\n")

    if retried:
        w("Steps repeated because they failed while other processes used > the noise threshold of CPU: %d (%s)" % (
            len(retried), ", ".join("%s %s@%d" % (r["setup"], r["phase"], r["rate"]) for r in retried)))
        w("")
    if a.raw and os.path.isdir(a.raw):
        # the kamailio log's ERROR/WARNING lines, as save_step_artifacts summarised them per step
        per_setup = {}
        for fn in sorted(os.listdir(a.raw)):
            if not fn.endswith(".kamailio_errors.txt"):
                continue
            setup = next((x for x in setups if fn.startswith(x + "-")), fn.split("-")[0])
            for line in open(os.path.join(a.raw, fn)):
                m = re.match(r"\s*(\d+)\s+(.*)", line.rstrip("\n"))
                if m:
                    key = re.sub(r"\b\d+\b", "N", m.group(2))[:160]
                    d = per_setup.setdefault(setup, {})
                    ent = d.setdefault(key, [0, set()])
                    ent[0] += int(m.group(1))
                    ent[1].add(fn[len(setup) + 1:].replace(".kamailio_errors.txt", ""))
        cf = os.path.join(a.raw, "crashes.txt")
        if os.path.exists(cf) and os.path.getsize(cf):
            w("### Kamailio CRASHED (exit status not 0 after TERM)")
            w("")
            for line in open(cf):
                w("- " + line.strip())
            w("")
        w("### Kamailio log: ERROR / WARNING lines (numbers replaced by N), summed over all steps")
        w("")
        if not per_setup:
            w("None in any step.")
        else:
            w("| setup | count | steps | line |")
            w("|---|---|---|---|")
            for setup, d in per_setup.items():
                for key, (cnt, steps_) in sorted(d.items(), key=lambda kv: -kv[1][0])[:8]:
                    w("| %s | %d | %d | `%s` |" % (setup, cnt, len(steps_), key.replace("|", "/")))
        w("")
    text = "\n".join(out)
    print(text)
    if a.out:
        with open(a.out, "w") as fo:
            fo.write(text + "\n")
    return 0


def cmd_plot(a):
    """PNG: latency (probe, us) against offered load, one series per setup (needs matplotlib:
    run with the bench venv's python, see setup.sh)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    recs = [json.loads(l) for l in open(a.results) if l.strip()]
    steps = [r for r in recs if r["kind"] == "step" and not r.get("retried") and r["phase"] != "mem"]
    if not steps:
        print("plot: no load steps in this run (phases fanout/mem/cluster only): no plot")
        return 0
    setups = []
    for r in steps:
        if r["setup"] not in setups:
            setups.append(r["setup"])
    fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharex=True)
    panels = (("sub_notify_us", "SUBSCRIBE -> first NOTIFY"), ("sub_2xx_us", "SUBSCRIBE -> 200"))
    for ax, (key, title) in zip(axes, panels):
        for i, s_ in enumerate(setups):
            col = "C%d" % i
            by_rate = {}
            for r in steps:
                if r["setup"] != s_:
                    continue
                m = g(r, "probe", key, "median")
                if m is None:
                    continue
                by_rate.setdefault(r["rate"], []).append((m, g(r, "probe", key, "p95"), r["pass"]))
            rates = sorted(by_rate)
            if not rates:
                continue
            meds = [statistics.median(x[0] for x in by_rate[q]) for q in rates]
            p95s = [statistics.median(x[1] for x in by_rate[q] if x[1] is not None) for q in rates]
            ax.plot(rates, meds, "-o", color=col, ms=4, label="%s median" % s_)
            ax.plot(rates, p95s, ":", color=col, lw=1, label="%s p95" % s_)
            bad = [(q, statistics.median(x[0] for x in by_rate[q])) for q in rates
                   if not all(x[2] for x in by_rate[q])]
            if bad:
                ax.plot([b[0] for b in bad], [b[1] for b in bad], "x", color=col, ms=9, mew=2)
        ax.set_yscale("log")
        ax.set_xlabel("offered load, calls/s (SIPp)")
        ax.set_ylabel("probe latency, us (log)")
        ax.set_title(title + " (x: step with failed calls)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("imconf bench %s: latency of a 20 calls/s probe vs offered load (medians over repetitions)"
                 % (a.title or ""), fontsize=10)
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)
    print("plot: %s" % a.out)
    return 0


def cmd_check(a):
    recs = [json.loads(l) for l in open(a.results) if l.strip()]
    phases = a.phases.split(",")
    bad = []
    nsteps = nfans = nclus = 0
    for r in recs:
        if r["kind"] == "step" and r["phase"] in phases and not r.get("retried"):
            nsteps += 1
            st, pr = r.get("sipp") or {}, r.get("probe") or {}
            if not r["pass"] or st.get("failed") or st.get("success", 0) < r["planned"] or pr.get("failures"):
                bad.append("%s %s %d cps: %s; probe failures %s" % (
                    r["setup"], r["phase"], r["rate"], r["why"] or "-", pr.get("failures")))
        elif r["kind"] in ("fanout", "cluster"):
            if r["kind"] == "fanout":
                nfans += 1
            else:
                nclus += 1
            if not r["complete"] or r.get("errors"):
                bad.append("%s %s N=%d: %d/%d NOTIFYs %s" % (
                    r["setup"], r["kind"] if r["kind"] == "fanout" else "cluster of %d" % r["nodes"],
                    r["n"], r["received"], r["n"], "; ".join(r.get("errors") or [])))
    if nsteps < a.min_steps or nfans < a.min_fanouts or nclus < a.min_clusters:
        bad.append("expected >= %d steps, >= %d fan-outs and >= %d cluster measurements, found %d, %d and %d" % (
            a.min_steps, a.min_fanouts, a.min_clusters, nsteps, nfans, nclus))
    for r in recs:
        if r["kind"] == "step" and r["phase"] in phases and not r.get("retried"):
            n = (r.get("notify_before_unsub_2xx") or 0) + (g(r, "probe", "notify_before_unsub_2xx") or 0)
            if n:
                print("check: note %s %s %d cps: %s calls got the terminating NOTIFY before the un-SUBSCRIBE's 2xx"
                      " (accepted, RFC 6665)" % (r["setup"], r["phase"], r["rate"], early(r)))
    for b in bad:
        print("check: FAIL " + b)
    if not bad:
        print("check: OK (%d steps, %d fan-outs, %d cluster measurements, 0 failed calls)" % (nsteps, nfans, nclus))
    return 1 if bad else 0


def cmd_rpc(a):
    ok, vals = binrpc_call(a.socket, a.method, *a.args)
    print(("ok " if ok else "FAULT ") + json.dumps(vals, default=str))
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sp = p.add_subparsers(dest="cmd", required=True)

    s = sp.add_parser("step")
    s.add_argument("--setup", required=True)
    s.add_argument("--phase", default="max")
    s.add_argument("--rep", default="1")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--kpid", type=int, required=True)
    s.add_argument("--rate", type=int, required=True)
    s.add_argument("--secs", type=int, default=20)
    s.add_argument("--scenario", required=True)
    s.add_argument("--outdir", required=True)
    s.add_argument("--results", required=True)
    s.add_argument("--sipp", default="sipp")
    s.add_argument("--sipp-port", type=int, default=5081)
    s.add_argument("--probe-port", type=int, default=5083)
    s.add_argument("--probe-rate", type=float, default=20.0)
    s.add_argument("--key", action="append", help="k=v, passed to SIPp as -key k v")
    s.add_argument("--sipp-arg", action="append", help="one more SIPp argument (repeatable)")
    s.add_argument("--recv-timeout-ms", type=int, default=5000)
    s.add_argument("--drain-secs", type=int, default=25)
    s.add_argument("--max-inflight-secs", type=float, default=3.0)
    s.add_argument("--buff-size", type=int, default=2 * 1024 * 1024)
    s.add_argument("--max-p95-ms", type=int, default=500)
    s.add_argument("--noise-pct", type=float, default=50.0)
    s.add_argument("--retry-on-noise", action="store_true")
    s.add_argument("--ctl", help="kamailio's binrpc socket: shm/pkg in use before and after")
    s.add_argument("--klog", help="kamailio's log: a failed step says so if its shm pool ran out")
    s.add_argument("--settle-mem", type=float, default=0,
                   help="after the load, wait up to this many s for shm in use to settle")

    s = sp.add_parser("fanout")
    s.add_argument("--setup", required=True)
    s.add_argument("--rep", default="1")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--kpid", default="0", help="kamailio main pid(s), comma-separated: CPU summed over their trees")
    s.add_argument("--n", type=int, required=True)
    s.add_argument("--kind", default="fanout", choices=("fanout", "cluster"),
                   help="cluster: a record of the phase cluster (per-node figures, replication delay)")
    s.add_argument("--host", default="127.0.0.1", help="the server's (node 1's) address, within 127.0.0.0/8")
    s.add_argument("--node-ports", help="cluster: every node's [addr:]port (addr default --host), comma-separated, "
                   "the --host/--port one first; subscription i goes through node i %% k")
    s.add_argument("--retry-503", action="store_true",
                   help="a SUBSCRIBE refused with 503 (a syncing cluster node) is sent again a second later")
    s.add_argument("--local-port", type=int, default=5090)
    s.add_argument("--sub-rate", type=float, default=300)
    s.add_argument("--settle", type=float, default=1.0)
    s.add_argument("--timeout", type=float, default=30)
    s.add_argument("--doc", required=True)
    s.add_argument("--trigger", default="publish", help="publish | rpc:<binrpc unix socket path>")
    s.add_argument("--newcomer", default="sip:newcomer@127.0.0.1", help="participant added by the rpc trigger")
    s.add_argument("--conf-user", default="conf1")
    s.add_argument("--conf-domain", default="127.0.0.1")
    s.add_argument("--results", required=True)
    s.add_argument("--ctl", help="kamailio's binrpc socket: shm in use before/after the N subscriptions")
    s.add_argument("--profiles", default="",
                   help="imconf output profiles (R94), comma-separated, subscriber i gets the (i mod k)-th "
                        "through its User-Agent (profile-<name>); empty: no User-Agent, the default profile")

    s = sp.add_parser("cluster-wait")
    s.add_argument("--ctl", required=True, help="every node's binrpc socket, comma-separated")
    s.add_argument("--nodes", type=int, default=1, help="dmq nodes every node must list active")
    s.add_argument("--session", help="instead: wait until every node holds this session ...")
    s.add_argument("--participants", type=int, default=1, help="... with at least this many participants")
    s.add_argument("--timeout", type=float, default=20)

    s = sp.add_parser("body")
    s.add_argument("--doc", required=True)

    s = sp.add_parser("report")
    s.add_argument("--results", required=True)
    s.add_argument("--ceiling", default="B_ceiling")
    s.add_argument("--baseline", default="A_presence_conference")
    s.add_argument("--raw", help="raw/ dir of the run: summarise the kamailio ERROR/WARNING lines")
    s.add_argument("--out")
    s.add_argument("--subject", default="C_imconf", help="the setup the targets are about")
    s.add_argument("--ratios-out", help="write ratios.json here (and ratios_detail.json beside it)")
    s.add_argument("--env", help="env.txt of the run: machine and load lines at the top")

    s = sp.add_parser("plot")
    s.add_argument("--results", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--title", default="")

    s = sp.add_parser("check")
    s.add_argument("--results", required=True)
    s.add_argument("--phases", default="fixed", help="comma-separated step phases to check")
    s.add_argument("--min-steps", type=int, default=0)
    s.add_argument("--min-fanouts", type=int, default=0)
    s.add_argument("--min-clusters", type=int, default=0)

    s = sp.add_parser("rpc")
    s.add_argument("socket")
    s.add_argument("method")
    s.add_argument("args", nargs="*")

    a = p.parse_args()
    return {"step": cmd_step, "fanout": cmd_fanout, "body": cmd_body, "report": cmd_report,
            "check": cmd_check, "rpc": cmd_rpc, "plot": cmd_plot, "cluster-wait": cmd_cluster_wait}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
