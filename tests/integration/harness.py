#!/usr/bin/env python3
"""Harness of the imconf integration tests (run.py is the command line, t_*.py the tests by area,
itest.py their registry and shared helpers).

Servers (Kamailio started by the test with -DD -E, or the stand-in fake_imconf.py), SIPp runs,
kamcmd output parsing, and the trace checker that re-checks every NOTIFY SIPp received.
python3 standard library only.
"""

import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import sys
import threading
import time
import traceback
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SIPP_DIR = ROOT / "tests" / "sipp"
CFG_TEMPLATE = ROOT / "tests" / "kamailio" / "imconf-test.cfg"
RUN_ROOT = ROOT / "tests" / "run"
FAKE = HERE / "fake_imconf.py"

# the Kamailio under test: run.py's --kamailio, --kamcmd and --mpath (scripts/test.sh passes the
# target that `make build` built for, scripts/kamailio_target.py); set by use_kamailio()
KAMAILIO = None
KAMCMD = None
MPATH = None


def kamailio_target():
    """The Kamailio that `make build` builds for (scripts/kamailio_target.py json): bin, kamcmd,
    moddir, version, deb_version (the Debian package's version, empty for a source install)."""
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "kamailio_target.py"), "json"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    if r.returncode != 0:
        raise SystemExit(r.stderr.decode("utf-8", "replace").strip())
    return json.loads(r.stdout)


def kamailio_version():
    """`kamailio -v`'s version line of the binary under test."""
    r = subprocess.run([KAMAILIO, "-v"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    return r.stdout.decode("utf-8", "replace").splitlines()[0].replace("version: ", "").strip()


def use_kamailio(kamailio, kamcmd, mpath):
    """Points every server, kamcmd call and cfg of the suite at one Kamailio build."""
    global KAMAILIO, KAMCMD, MPATH
    KAMAILIO, KAMCMD, MPATH = str(kamailio), str(kamcmd), str(mpath)
SIPP = shutil.which("sipp") or "/usr/bin/sipp"

# Names the scenarios check literally (tests/sipp/*.xml): keep in step with them.
SESSION = "sip:conf1@127.0.0.1"
FACTORY = "sip:factory@127.0.0.1"
ALICE, BOB, CAROL, DAVE = (f"sip:{u}@127.0.0.1" for u in ("alice", "bob", "carol", "dave"))
PANIC_USER = "panic-now"
GROUP = "sip:grp1@127.0.0.1"   # default of the `group` key (pre-defined group sessions)
# Module timing for the tests (a test may override some: KamailioServer(timing=...)).
# subscribe_initial.xml checks MAX_EXPIRES (300) literally, reject_423.xml and subscribe_expiry.xml
# MIN_EXPIRES (2); subscribe_coalesce.xml expects its test's 1000 ms interval override.
TIMING = {"MIN_EXPIRES": 2, "MAX_EXPIRES": 300, "DEFAULT_EXPIRES": 120, "MIN_NOTIFY_INTERVAL_MS": 200}

# IMCONF_TEST_PORT_BASE moves both ranges (two runs side by side on one machine).
PORT_BASE = int(os.environ.get("IMCONF_TEST_PORT_BASE", "5160"))
KAM_PORTS = range(PORT_BASE, PORT_BASE + 40)
SIPP_PORTS = range(PORT_BASE + 100, PORT_BASE + 140)
LOG_ALARM = re.compile(r"PANIC|CRITICAL|ALERT|exited by a signal|\bBUG:")
NS = "{urn:ietf:params:xml:ns:conference-info}"


class TestFailure(Exception):
    """A test's assertion failed; the message says which rule and what was seen."""


class Skip(Exception):
    pass


# ============================================================================ small utilities

def udp_ports_in_use():
    used = set()
    for name in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    local = line.split()[1]
                    used.add(int(local.rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return used


def udp_port_bound(port, host="127.0.0.1"):
    """Is something listening on host:port (as /proc/net/udp shows it)?"""
    want = "%s:%04X" % (socket.inet_aton(host)[::-1].hex().upper(), port)
    try:
        with open("/proc/net/udp") as f:
            return any(line.split()[1] == want for line in list(f)[1:])
    except OSError:
        return False


class PortPool:
    """Hands out free loopback UDP ports from a range, round robin, so that consecutive tests
    never reuse the port of a server that may still be shutting down."""

    def __init__(self, ports):
        self.ports = list(ports)
        self.next = 0
        self.lock = threading.Lock()

    def take(self):
        with self.lock:
            used = udp_ports_in_use()
            for _ in range(len(self.ports)):
                port = self.ports[self.next]
                self.next = (self.next + 1) % len(self.ports)
                if port in used:
                    continue
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
                finally:
                    s.close()
                return port
        raise TestFailure("no free UDP port in %d-%d" % (self.ports[0], self.ports[-1]))


KPORTS = PortPool(KAM_PORTS)
SPORTS = PortPool(SIPP_PORTS)


def tail(path, n=40):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return "(no %s)" % path
    return "\n".join(lines[-n:])


def no_core_dumps():
    """Core dumps off for the runner and everything it starts (the cfg also says
    disable_core_dump=yes, so Kamailio does not raise the limit again)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


no_core_dumps()


def pids_in_group(pgid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.getpgid(int(d)) == pgid:
                    out.append(int(d))
            except OSError:
                pass
    return out


def stack_of(pid):
    """Where a process that does not exit is stuck: gdb's backtrace when gdb is here (a
    diagnosis for the log; bounded in time)."""
    gdb = shutil.which("gdb")
    if not gdb:
        return []
    try:
        out = subprocess.run([gdb, "-p", str(pid), "-batch", "-ex", "bt"], capture_output=True,
                             text=True, timeout=30).stdout
    except (subprocess.TimeoutExpired, OSError) as e:
        return ["gdb: %s" % e]
    return ["stack: " + "\n".join(l for l in out.splitlines() if l.startswith("#"))]


def stop_process(proc, term_timeout):
    """TERM the process by pid, KILL it after term_timeout; then make sure nothing of its own
    process group (it was started in a new session, pgid == pid) is left, killing leftovers one
    by one by pid. Returns a list of complaints (empty: stopped cleanly)."""
    complaints = []
    pgid = proc.pid
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=term_timeout)
        except subprocess.TimeoutExpired:
            complaints.append("did not exit within %.0fs of SIGTERM: killed" % term_timeout)
            complaints.extend(stack_of(proc.pid))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    deadline = time.time() + 3
    left = [p for p in pids_in_group(pgid) if p != os.getpid()]
    while left and time.time() < deadline:
        time.sleep(0.1)
        left = [p for p in pids_in_group(pgid) if p != os.getpid()]
    if left:
        complaints.append("processes left after the main one exited: %s (killed)" % left)
        for p in left:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return complaints


# ============================================================================ RPC output

class RpcResult:
    def __init__(self, cmd, text, rc):
        self.cmd, self.text, self.rc = cmd, text, rc
        m = re.match(r"^error: (\d+) - (.*)$", text.strip(), re.S)
        self.error = (int(m.group(1)), m.group(2)) if m else None
        self.ok = rc == 0 and self.error is None
        self.items = parse_kamcmd(text) if self.ok else []

    def structs(self):
        """Every struct at any depth (kamcmd prints nested structs as `key: {`)."""
        out = []

        def walk(x):
            if isinstance(x, dict):
                out.append(x)
                for v in x.values():
                    walk(v)
            elif isinstance(x, list):
                for v in x:
                    walk(v)
        walk(self.items)
        return out

    def __str__(self):
        return "%s -> rc=%s %r" % (self.cmd, self.rc, self.text.strip())


def parse_kamcmd(text):
    """kamcmd prints each top-level struct as `{` / `\\tkey: value` / `}`, nested ones as
    `key: {` ... `}`, and bare values on their own lines."""
    items, stack = [], []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line == "{":
            d = {}
            (stack[-1].setdefault("_items", []).append(d) if stack else items.append(d))
            stack.append(d)
        elif line.endswith(": {") and stack:
            d = {}
            stack[-1][line[:-3].strip()] = d
            stack.append(d)
        elif line == "}" and stack:
            stack.pop()
        elif stack and ": " in line:
            k, v = line.split(": ", 1)
            stack[-1][k.strip()] = v.strip()
        elif stack and line.endswith(":"):
            stack[-1][line[:-1].strip()] = ""
        else:
            items.append(line)
    return items


# ============================================================================ servers

class KamailioServer:
    """Kamailio started by the test: `-DD -E` (no fork into background, log to stderr), own run
    directory, own ctl socket; stopped by its pid."""

    def __init__(self, ctx, *, alloc=None, defines=(), standin=False, extra_args=(), timing=None, modparams=(),
                 node=None, port=None, host="127.0.0.1"):
        self.ctx = ctx
        # the loopback address it listens on: cluster nodes get one each (127.0.0.N), as hosts of a
        # real cluster do; from 6.0 dmq tells nodes apart by IP alone (cluster.py)
        self.host = host
        self.timing = dict(TIMING, **(timing or {}))  # per-test overrides of the module's timing knobs
        # the test's own modparams: [(module, name, value)], rendered at @EXTRA_MODPARAMS@
        # (an int value is written bare, a str quoted), e.g. ("tm", "fr_timer", 1000)
        self.modparams = list(modparams)
        # `node`: a name for one of several servers of a test (cluster tests): its own files
        self.port = port or KPORTS.take()
        self.alloc = alloc
        self.defines = list(defines) + (["IMCONF_STANDIN"] if standin else [])
        self.standin = standin
        self.extra_args = list(extra_args)
        tag = "kamailio" + ("-" + alloc if alloc else "") + ("-" + node if node else "")
        self.log_path = ctx.rundir / (tag + ".log")
        self.cfg_path = ctx.rundir / (tag + ".cfg")
        self.ctl = ctx.rundir / ("ctl-%s.sock" % node if node else "ctl.sock")
        self.pid_path = ctx.rundir / ("k-%s.pid" % node if node else "k.pid")
        self.proc = None
        self.logf = None
        self.stopped = False       # stop() was called (exiting afterwards is expected)
        self.expect_exit = False   # the test expects this server to exit by itself
        self.server_contact = "sip:imconf@%s:%d" % (self.host, self.port)

    def modparam_lines(self):
        return ["modparam(\"%s\", \"%s\", %s)" % (mod, name, v if isinstance(v, int) else "\"%s\"" % v)
                for mod, name, v in self.modparams]

    def render(self):
        text = CFG_TEMPLATE.read_text()
        extra = "\n".join(self.modparam_lines()) or "# (this test adds no modparam)"
        text = re.sub(r"(?m)^@EXTRA_MODPARAMS@$", lambda m: extra, text)
        values = dict(self.timing, RUNDIR=str(self.ctx.rundir), PORT=str(self.port), HOST=self.host, CTL=str(self.ctl),
                      MODULE=str(self.ctx.opts.module), MPATH=MPATH, EXTRA_MODPARAMS="(the test's modparams)")
        for k, v in values.items():
            text = text.replace("@%s@" % k, str(v))
        left = re.findall(r"@[A-Z][A-Z_]*@", text)
        if left:
            raise TestFailure("cfg template has unknown placeholders: %s" % sorted(set(left)))
        self.cfg_path.write_text(text)
        return self.cfg_path

    def base_args(self):
        # -L: the target's module directory, whatever mpath a shipped example sets
        args = ["-f", str(self.cfg_path), "-L", MPATH]
        for d in self.defines:
            args += ["-A", d]
        return args

    def check_cfg(self):
        """`kamailio -c -f cfg`: parses the cfg and loads every module (version and compile-flag
        checks happen at load)."""
        self.render()
        r = subprocess.run([KAMAILIO, "-c"] + self.base_args() + ["-l", "udp:%s:%d" % (self.host, self.port)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        return r.returncode, r.stdout.decode("utf-8", "replace")

    def start(self, expect_ready=True, timeout=10):
        self.render()
        if self.ctl.exists():
            self.ctl.unlink()
        cmd = [KAMAILIO] + self.base_args() + [
            "-DD", "-E", "-P", str(self.pid_path), "-Y", str(self.ctx.rundir),
            "-w", str(self.ctx.rundir), "-l", "udp:%s:%d" % (self.host, self.port), "-m", "64", "-M", "16"]
        if self.alloc:
            cmd += ["-x", self.alloc]
        cmd += self.extra_args
        self.ctx.note("start: " + " ".join(cmd))
        self.logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.logf, stderr=subprocess.STDOUT,
                                     cwd=str(self.ctx.rundir), start_new_session=True)
        if expect_ready:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise TestFailure("kamailio exited during start-up (status %s)" % self.proc.returncode)
            if udp_port_bound(self.port, self.host) and self.ctl.exists():
                r = self.rpc("core.version")
                if r.ok:
                    return
            time.sleep(0.05)
        raise TestFailure("kamailio not ready within %ss (udp:%s:%d bound: %s, ctl socket: %s)"
                          % (timeout, self.host, self.port, udp_port_bound(self.port, self.host), self.ctl.exists()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def rpc_prefix(self):
        return "%s -s unix:%s" % (KAMCMD, self.ctl)

    def rpc(self, cmd, *args):
        argv = [KAMCMD, "-s", "unix:%s" % self.ctl, cmd] + [str(a) for a in args]
        try:
            r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=5)
        except subprocess.TimeoutExpired:
            return RpcResult(cmd, "error: 0 - kamcmd timed out", 124)
        return RpcResult(" ".join([cmd] + [str(a) for a in args]), r.stdout.decode("utf-8", "replace"),
                         r.returncode)

    def worker_pids(self):
        r = self.rpc("core.psx")
        return sorted(int(s["PID"]) for s in r.structs() if "PID" in s and "udp receiver" in s.get("DSC", ""))

    def stop(self):
        """SIGTERM to our Kamailio's pid; SIGKILL after 10 s (a complaint). Idempotent."""
        if self.proc is None or self.stopped:
            return []
        self.stopped = True
        complaints = stop_process(self.proc, term_timeout=10)
        self.logf.close()
        return complaints

    def log_text(self):
        try:
            return self.log_path.read_bytes().decode("utf-8", "replace")
        except OSError:
            return ""


class FakeServer(KamailioServer):
    """tests/integration/fake_imconf.py in place of Kamailio+imconf (run.py --standin)."""

    def __init__(self, ctx, **kw):
        super().__init__(ctx, **kw)
        self.log_path = ctx.rundir / "standin.log"

    def start(self, expect_ready=True, timeout=10):
        if self.ctl.exists():
            self.ctl.unlink()
        cmd = [sys.executable, str(FAKE), "serve", "--port", str(self.port), "--rundir", str(self.ctx.rundir),
               "--server-contact", self.server_contact, "--factory", FACTORY,
               "--min-expires", str(self.timing["MIN_EXPIRES"]), "--max-expires", str(self.timing["MAX_EXPIRES"]),
               "--default-expires", str(self.timing["DEFAULT_EXPIRES"]),
               "--min-notify-interval-ms", str(self.timing["MIN_NOTIFY_INTERVAL_MS"]), "--panic-user", PANIC_USER]
        known = {("imconf", "max_subs_per_user_per_session"): "--max-subs-per-user",
                 ("imconf", "max_pending_changes"): "--max-pending-changes", ("tm", "fr_timer"): "--fr-timer-ms"}
        for mod, name, value in self.modparams:
            if (mod, name) not in known:
                raise TestFailure("harness: the stand-in does not know modparam %s.%s" % (mod, name))
            cmd += [known[(mod, name)], str(value)]
        env = dict(os.environ)
        if self.ctx.opts.fake_bug:
            env["IMCONF_FAKE_BUG"] = self.ctx.opts.fake_bug
        self.ctx.note("start: " + " ".join(cmd))
        self.logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.logf, stderr=subprocess.STDOUT,
                                     cwd=str(self.ctx.rundir), start_new_session=True, env=env)
        if expect_ready:
            self.wait_ready(timeout)
        return self

    @property
    def rpc_prefix(self):
        return "%s %s rpc %s" % (sys.executable, FAKE, self.ctl)

    def rpc(self, cmd, *args):
        argv = [sys.executable, str(FAKE), "rpc", str(self.ctl), cmd] + [str(a) for a in args]
        try:
            r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=5)
        except subprocess.TimeoutExpired:
            return RpcResult(cmd, "error: 0 - rpc timed out", 124)
        return RpcResult(" ".join([cmd] + [str(a) for a in args]), r.stdout.decode("utf-8", "replace"),
                         r.returncode)


# ============================================================================ SIPp

class SippRun:
    def __init__(self, ctx, scenario, name, cmd, paths, proc):
        self.ctx, self.scenario, self.name, self.cmd, self.paths, self.proc = ctx, scenario, name, cmd, paths, proc

    def wait(self, timeout=40):
        """Waits for SIPp; if a server of the test dies meanwhile, stops SIPp at once and says so
        (a crash then shows as a crash, not as SIPp receive timeouts)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                return rc
            dead = [s for s in self.ctx.servers if s.proc is not None and s.proc.poll() is not None
                    and not s.stopped and not s.expect_exit]
            if dead:
                time.sleep(0.5)  # let SIPp log what it saw last
                stop_process(self.proc, term_timeout=2)
                raise TestFailure("%s exited (status %s) while sipp %s was running\n%s"
                                  % (dead[0].log_path.name, dead[0].proc.returncode, self.name,
                                     self.failure_text("stopped after the server died")))
            time.sleep(0.05)
        stop_process(self.proc, term_timeout=2)
        return "hung"

    def failure_text(self, what=None):
        what = what or "failed, exit status %s" % self.proc.returncode
        out = ["sipp %s (%s) %s" % (self.name, self.scenario, what),
               "  command: " + " ".join(self.cmd)]
        for label, key, n in (("SIPp error file", "err", 60), ("SIPp log file", "log", 20),
                              ("SIPp screen", "screen", 25)):
            text = tail(self.paths[key], n).strip()
            if text and not text.startswith("(no "):
                out.append("---- %s %s (tail) ----\n%s" % (label, self.paths[key], text))
        return "\n".join(out)


class Ctx:
    """Per-test context: run directory, the server under test, SIPp runs, notes."""

    def __init__(self, opts, name):
        self.opts = opts
        self.name = name
        self.rundir = rundir_for(name)
        self.servers = []
        self.sipp_runs = []
        self.notes = []
        self.server = None
        self.log_allow = None          # regex of alarming log lines this test expects
        self.body_profile = "oma"      # what NOTIFY bodies must look like: "oma" or "rcs" (rcs_compat=1)
        self.trace_allow = None        # regex of trace-check findings this test expects
        self.cleanups = []             # callables run after the servers stopped (e.g. a database)
        self.traces_checked = set()

    # --- notes shown on failure
    def note(self, text):
        self.notes.append(text)

    # --- servers
    def start_server(self, *, kamailio=False, **kw):
        """The server under test: Kamailio+imconf, or in --standin mode the stand-in notifier
        (or, with kamailio=True, Kamailio built with -A IMCONF_STANDIN)."""
        for attempt in range(3):
            if self.opts.standin and not kamailio:
                srv = FakeServer(self, **kw)
            else:
                srv = KamailioServer(self, standin=self.opts.standin, **kw)
            self.servers.append(srv)
            try:
                srv.start()
            except TestFailure:
                # another process (a second suite run) took the port between our check and the
                # bind: retry on the next port; anything else is a real failure
                if attempt < 2 and srv.proc.poll() is not None and "in use" in srv.log_text():
                    self.note("port %d was taken meanwhile, retrying on another" % srv.port)
                    srv.stop()
                    self.servers.remove(srv)
                    continue
                raise
            break
        self.server = srv
        return srv

    def restart_server(self, old, *, crash=False, down_s=0):
        """Stops `old` (SIGTERM, or with `crash` SIGKILL to every process of it) and starts the
        same cfg on the same port (persistence tests), `down_s` seconds later. The new log is
        kamailio-<n>.log."""
        if crash:
            old.stopped = True
            os.kill(old.proc.pid, signal.SIGKILL)
            old.proc.wait(timeout=10)
            for p in pids_in_group(old.proc.pid):
                if p != os.getpid():
                    try:
                        os.kill(p, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            deadline = time.time() + 5
            while [p for p in pids_in_group(old.proc.pid) if p != os.getpid()] and time.time() < deadline:
                time.sleep(0.05)
            old.logf.close()
        else:
            complaints = old.stop()
            if complaints:
                raise TestFailure("stopping for a restart: %s" % complaints)
        time.sleep(down_s)
        srv = KamailioServer(self, alloc=old.alloc, defines=[d for d in old.defines if d != "IMCONF_STANDIN"],
                             standin=old.standin, extra_args=old.extra_args, timing=old.timing,
                             modparams=old.modparams)
        srv.port, srv.server_contact = old.port, old.server_contact
        srv.log_path = self.rundir / ("kamailio-%d.log" % (len(self.servers) + 1))
        self.servers.append(srv)
        srv.start()
        self.server = srv
        return srv

    def stop_servers(self):
        complaints = []
        for srv in self.servers:
            for c in srv.stop():
                complaints.append("%s: %s" % (srv.log_path.name, c))
        return complaints

    # --- RPC helpers
    def rpc(self, cmd, *args):
        r = self.server.rpc(cmd, *args)
        self.note("rpc %s" % r)
        return r

    def rpc_ok(self, cmd, *args):
        r = self.rpc(cmd, *args)
        if not r.ok:
            raise TestFailure("RPC failed: %s" % r)
        return r

    def open_session(self, participants=((ALICE, "connected"), (BOB, "connected")), uri=SESSION, kind="ad-hoc",
                     group=None):
        self.rpc_ok("imconf.session_open", uri, kind, *([group] if group else []))
        for p in participants:
            self.rpc_ok("imconf.participant", uri, *p)

    def wait_for(self, what, cond, timeout=6, interval=0.05):
        """Polls cond() until it returns something true; fails naming `what` after timeout."""
        deadline = time.time() + timeout
        while True:
            v = cond()
            if v:
                return v
            if time.time() > deadline:
                raise TestFailure("%s: not reached within %ss" % (what, timeout))
            time.sleep(interval)

    def subscriptions(self, session=None):
        r = self.rpc_ok("imconf.subscriptions", *([session] if session else []))
        return [s for s in r.structs() if any(k in s for k in ("call_id", "callid", "Call-ID"))] or \
            [s for s in r.structs() if s]

    def wait_subscriptions(self, n, timeout=6):
        deadline = time.time() + timeout
        while time.time() < deadline:
            subs = self.subscriptions()
            if len(subs) >= n:
                return subs
            time.sleep(0.1)
        raise TestFailure("expected %d subscription(s) in imconf.subscriptions within %ss, have: %s"
                          % (n, timeout, self.subscriptions()))

    def assert_subscriptions_empty(self, rule):
        """Nothing at all in imconf.subscriptions (and no session counts a subscription)."""
        subs = self.subscriptions()
        if subs:
            raise TestFailure("%s: imconf.subscriptions should be empty, lists %s" % (rule, subs))
        r = self.rpc_ok("imconf.sessions")
        counted = [s for s in r.structs() if str(s.get("subscriptions", "0")) not in ("0", "")]
        if counted:
            raise TestFailure("%s: imconf.sessions counts subscriptions: %s" % (rule, counted))

    def assert_no_subscription(self, call_id_part, rule):
        r = self.rpc_ok("imconf.subscriptions")
        if call_id_part in r.text:
            raise TestFailure("%s: imconf.subscriptions still lists %s:\n%s" % (rule, call_id_part, r.text))

    # --- SIPp
    def keys(self, **over):
        srv = self.server
        keys = {
            "session": SESSION, "ruri": SESSION, "subscriber": ALICE, "subscriber_user": "alice",
            "pai_hdr": "P-Asserted-Identity: <%s>" % ALICE, "event_hdr": "Event: conference",
            "accept_hdr": "Accept: application/conference-info+xml",
            "accept_contact_hdr": "Accept-Contact: *;+g.oma.sip-im", "expires_hdr": "Expires: 60",
            "extra_hdr": "X-Imconf-Test: %s" % self.name, "to_tag_param": "",
            "server_contact": srv.server_contact if srv else "sip:imconf@127.0.0.1:0",
            "factory": FACTORY, "rpc": srv.rpc_prefix if srv else "false", "rundir": str(self.rundir),
            # group-session tests: the IM Group Identity and the session's other member
            "group": GROUP, "member": BOB,
            # feed_message.xml / feed_refused.xml: the routing script's feed call and its arguments
            "feed_op": "-", **{"feed_a%d" % i: "-" for i in range(1, 12)},
            # subscribe_until_noresource.xml: the reason of the server's terminating NOTIFY
            "end_reason": "noresource",
        }
        for k, v in over.items():
            if k not in keys:
                raise TestFailure("harness bug: unknown SIPp key %s" % k)
            keys[k] = v
        return keys

    def sipp_start(self, scenario, name=None, *, keys=None, calls=1, timeout=20, recv_timeout_ms=8000,
                   limit=1, rate=None):
        """SIPp runs `calls` calls of `scenario`, at most `limit` at once (`rate` calls/s if given)."""
        name = name or Path(scenario).stem
        n = sum(1 for r in self.sipp_runs if r.name.startswith(name))
        if n:
            name = "%s-%d" % (name, n + 1)
        port = SPORTS.take()
        base = self.rundir / ("sipp-" + name)
        paths = {k: str(base) + "." + k for k in ("msg", "err", "log", "screen")}
        cmd = [SIPP, "-sf", str(SIPP_DIR / scenario), "-i", "127.0.0.1", "-p", str(port),
               "127.0.0.1:%d" % self.server.port, "-m", str(calls), "-l", str(limit),
               "-timeout", "%ds" % timeout, "-timeout_error", "-recv_timeout", str(recv_timeout_ms),
               "-nostdin", "-default_behaviors", "abortunexp",
               "-cid_str", "%s-%s-%%u-%%p@127.0.0.1" % (self.name, name),
               "-trace_msg", "-message_file", paths["msg"], "-trace_err", "-error_file", paths["err"],
               "-trace_logs", "-log_file", paths["log"]]
        if rate:
            cmd += ["-r", str(rate)]
        for k, v in (keys or self.keys()).items():
            cmd += ["-key", k, v]
        screen = open(paths["screen"], "wb")
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=screen, stderr=subprocess.STDOUT,
                                cwd=str(self.rundir), start_new_session=True)
        screen.close()
        run = SippRun(self, scenario, name, cmd, paths, proc)
        self.sipp_runs.append(run)
        return run

    def sipp_wait(self, run, expect_ok=True):
        rc = run.wait()
        if expect_ok and rc != 0:
            raise TestFailure(run.failure_text())
        if not expect_ok and rc == 0:
            raise TestFailure("sipp %s was expected to fail but passed" % run.name)
        self.check_traces(run)
        return rc

    def sipp(self, scenario, name=None, expect_ok=True, **kw):
        run = self.sipp_start(scenario, name, **kw)
        self.sipp_wait(run, expect_ok)
        return run

    def check_traces(self, run):
        if run.paths["msg"] in self.traces_checked:
            return
        self.traces_checked.add(run.paths["msg"])
        problems = check_trace(run.paths["msg"], self.server.server_contact if self.server else None,
                               profile=self.body_profile)
        if self.trace_allow:
            problems = [p for p in problems if not re.search(self.trace_allow, p)]
        if problems:
            raise TestFailure("NOTIFY/trace check of %s:\n  - %s" % (run.paths["msg"], "\n  - ".join(problems)))

    def check_rpc_log(self):
        """Commands SIPp ran mid-scenario (<exec command="[rpc] ...">) append to rpc.log."""
        path = self.rundir / "rpc.log"
        if path.exists():
            text = path.read_text(errors="replace")
            bad = [l for l in text.splitlines() if l.startswith("error:") or "ERROR" in l]
            if bad:
                raise TestFailure("an RPC run from a SIPp scenario failed (rpc.log): %s" % bad)


_SESSION_ROOT = None
KEEP_RUNS = 5


def session_root():
    """tests/run/<time>-<pid>/ for this invocation (tests/run/latest points at it), so that two
    suites running at once (two engineers, CI and a developer) never share or delete each other's
    run directories. Older invocations beyond the newest KEEP_RUNS are removed once more than an
    hour old."""
    global _SESSION_ROOT
    if _SESSION_ROOT is None:
        RUN_ROOT.mkdir(parents=True, exist_ok=True)
        _SESSION_ROOT = RUN_ROOT / ("%s-%d" % (time.strftime("%Y%m%d-%H%M%S"), os.getpid()))
        _SESSION_ROOT.mkdir()
        latest = RUN_ROOT / "latest"
        try:
            tmp = RUN_ROOT / (".latest-%d" % os.getpid())
            tmp.symlink_to(_SESSION_ROOT.name)
            os.replace(tmp, latest)
        except OSError:
            pass
        old = sorted((d for d in RUN_ROOT.iterdir() if d.is_dir() and not d.is_symlink()
                      and re.match(r"^\d{8}-\d{6}-\d+$", d.name)), key=lambda d: d.name)[:-KEEP_RUNS]
        for d in old:
            if time.time() - d.stat().st_mtime > 3600:
                shutil.rmtree(d, ignore_errors=True)
    return _SESSION_ROOT


def rundir_for(name):
    d = session_root() / name
    if len(str(d / "ctl-node1.sock")) > 100:  # unix socket path limit (cluster nodes: ctl-<node>)
        d = Path(tempfile.mkdtemp(prefix="imconf-it-")) / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d


# ============================================================================ trace checker

def parse_trace(path):
    """SIPp -trace_msg file -> list of (direction 'sent'|'recv', bytes)."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return []
    out = []
    # "UDP message sent (530 bytes):" / "UDP message received [444] bytes :"
    pat = re.compile(rb"-{47} [^\n]*\n(?:UDP|TCP) message (sent|received) (?:\((\d+) bytes\)|\[(\d+)\] bytes ?):\n\n")
    pos = 0
    while True:
        m = pat.search(data, pos)
        if not m:
            break
        n = int(m.group(2) or m.group(3))
        start = m.end()
        out.append(("sent" if m.group(1) == b"sent" else "recv", data[start:start + n]))
        pos = start + n
    return out


class SipMsg:
    COMPACT = {"a": "accept-contact", "o": "event", "f": "from", "t": "to", "i": "call-id", "m": "contact",
               "l": "content-length", "c": "content-type", "v": "via", "k": "supported", "u": "allow-events"}

    def __init__(self, raw):
        head, sep, body = raw.partition(b"\r\n\r\n")
        self.raw, self.body = raw, body
        lines = head.decode("utf-8", "replace").split("\r\n")
        self.first = lines[0]
        self.headers = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and self.headers:
                n, v = self.headers[-1]
                self.headers[-1] = (n, v + " " + line.strip())
                continue
            name, _, value = line.partition(":")
            name = name.strip().lower()
            self.headers.append((self.COMPACT.get(name, name), value.strip()))
        self.is_request = not self.first.startswith("SIP/2.0")
        parts = self.first.split(" ", 2)
        self.method = parts[0] if self.is_request else None
        self.ruri = parts[1] if self.is_request and len(parts) > 1 else None
        self.code = int(parts[1]) if not self.is_request else None

    def get(self, name):
        for n, v in self.headers:
            if n == name:
                return v
        return None

    def all(self, name):
        return [v for n, v in self.headers if n == name]

    @property
    def cseq(self):
        m = re.match(r"\s*(\d+)\s+(\S+)", self.get("cseq") or "")
        return (int(m.group(1)), m.group(2)) if m else (None, None)

    @property
    def branch(self):
        m = re.search(r";\s*branch=([^;,\s]+)", self.get("via") or "")
        return m.group(1) if m else None


def tag_of(value):
    m = re.search(r";\s*tag=([^;>\s]+)", value or "")
    return m.group(1) if m else None


def event_of(value):
    """Event header value -> (package, id parameter or None); None when absent."""
    if value is None:
        return None
    parts = [x.strip() for x in value.split(";")]
    ident = None
    for prm in parts[1:]:
        name, _, val = prm.partition("=")
        if name.strip().lower() == "id":
            ident = val.strip()
    return (parts[0], ident)


def uri_of(value):
    m = re.search(r"<([^>]*)>", value or "")
    return m.group(1) if m else (value or "").split(";")[0].strip()


# R90: the endpoint statuses an RCS client (rcsjta) maps; any other value makes it drop the NOTIFY
RCS_STATUSES = ("connected", "disconnected", "pending", "dialing-in", "dialing-out")
RCS_METHODS = ("departed", "booted", "failed", "busy")


def check_conference_info(body, profile="oma"):
    """RFC 4575 / R44-R56 (docs/conformance.md) shape of one conference-info document. Profile "oma" is the default
    output (R47, R51, R52); "rcs" is rcs_compat=1 (R91) read as R90's RCS client reads it: every
    document must be one it would not drop.
    Returns (problems, info) where info = {state, version, entity, users: {entity: status},
    methods: {entity: disconnection-method}, reasons: {entity: reason}, maximum_user_count,
    user_count}."""
    if profile == "rcs":
        return check_rcs_conference_info(body)
    problems = []
    info = {"users": {}}
    try:
        root = ET.fromstring(body)
    except ET.ParseError as e:
        return ["R44: body is not well-formed XML (%s)" % e], info
    if root.tag != NS + "conference-info":
        problems.append("R44: root element is %s, want conference-info in urn:ietf:params:xml:ns:conference-info"
                        % root.tag)
        return problems, info
    entity, state, version = root.get("entity"), root.get("state"), root.get("version")
    info.update(entity=entity, state=state)
    if not entity or not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", entity):
        problems.append("R44/R56: root entity %r is not an absolute URI" % entity)
    if state not in ("full", "partial"):
        problems.append("R44/R46: root state %r, want full or partial written explicitly" % state)
    if version is None or not version.isdigit() or int(version) > 0xFFFFFFFF:
        problems.append("R33/R44: root version %r is not an unsigned 32-bit number" % version)
    else:
        info["version"] = int(version)
    children = list(root)
    extra = [c.tag.replace(NS, "") for c in children if c.tag != NS + "users"]
    if extra:
        problems.append("R47/R52: only <users> is emitted by default, found %s" % extra)
    users_el = [c for c in children if c.tag == NS + "users"]
    if len(users_el) != 1:
        problems.append("R47: want exactly one <users> (even if empty in a full document), found %d"
                        % len(users_el))
        return problems, info
    users = users_el[0]
    if state == "partial" and users.get("state") != "partial":
        problems.append("R54: a partial document marks <users state=\"partial\">, found %r" % users.get("state"))
    if state == "full" and users.get("state") not in (None, "full"):
        problems.append("R46: a full document's <users> is full, found state=%r" % users.get("state"))
    for user in users:
        if user.tag != NS + "user":
            problems.append("R47: unexpected %s inside <users>" % user.tag)
            continue
        ue = user.get("entity")
        if not ue or not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", ue):
            problems.append("R48/R56: user entity %r is not an absolute URI" % ue)
        if ue in info["users"]:
            problems.append("R48: user %s appears twice" % ue)
        if state == "partial" and user.get("state") != "full":
            problems.append("R54: user %s in a partial document has state=%r, want full" % (ue, user.get("state")))
        order = [c.tag.replace(NS, "") for c in user]
        allowed = ["display-text", "endpoint"]
        if any(t not in allowed for t in order):
            problems.append("R52: user %s has elements beyond display-text/endpoint: %s" % (ue, order))
        known = [t for t in order if t in allowed]
        if known != sorted(known, key=allowed.index):
            problems.append("R53: children of user %s out of schema order: %s" % (ue, order))
        eps = user.findall(NS + "endpoint")
        if len(eps) != 1:
            problems.append("R50: user %s has %d endpoints, want exactly one" % (ue, len(eps)))
            continue
        ep = eps[0]
        if not ep.get("entity"):
            problems.append("R50: endpoint of %s has no entity attribute" % ue)
        elif ep.get("entity") != ue:
            problems.append("R50: endpoint entity %s differs from user entity %s (default endpoint_entity)"
                            % (ep.get("entity"), ue))
        if state == "partial" and ep.get("state") not in (None, "full"):
            problems.append("R54: endpoint of %s in a partial document has state=%r" % (ue, ep.get("state")))
        eorder = [c.tag.replace(NS, "") for c in ep]
        if eorder != ["status"]:
            problems.append("R51/R52: endpoint of %s must hold exactly one <status> by default, has %s" % (ue, eorder))
        st = ep.find(NS + "status")
        status = (st.text or "").strip() if st is not None else None
        if status not in ("connected", "disconnected", "alerting"):
            problems.append("R51: status of %s is %r, want connected/disconnected/alerting" % (ue, status))
        info["users"][ue] = status
    return problems, info


RFC4575_XSD = Path(__file__).resolve().parent / "rfc4575.xsd"


def schema_problems(bodies):
    """RFC 4575 section 5.9 (issue 16): each body validated against the RFC's schema
    (rfc4575.xsd) by xmllint, in one run. R95's one deliberate deviation, the unprefixed
    yourown="true" the RCS clients read (RULES.md R95), is taken out first; nothing else is."""
    bodies = [b.encode() if isinstance(b, str) else b for b in bodies if b.strip()]
    if not bodies:
        return []
    if not shutil.which("xmllint"):
        return ["xmllint is missing (libxml2-utils; scripts/deps.sh installs it)"]
    with tempfile.TemporaryDirectory(prefix="imconf-xsd-") as d:
        paths = []
        for i, b in enumerate(bodies):
            path = Path(d) / ("body-%d.xml" % i)
            path.write_bytes(b.replace(b' yourown="true"', b""))
            paths.append(str(path))
        r = subprocess.run(["xmllint", "--noout", "--schema", str(RFC4575_XSD)] + paths,
                           capture_output=True, text=True, timeout=120)
    if r.returncode == 0:
        return []
    problems = []
    for line in r.stderr.splitlines():
        m = re.search(r"body-(\d+)\.xml:\d+: (.*)", line)
        if m:
            body = bodies[int(m.group(1))].decode("utf-8", "replace")
            problems.append("RFC 4575 schema: %s\n%s" % (m.group(2), body[:800]))
    return problems or ["xmllint failed (%d): %s" % (r.returncode, r.stderr[-400:])]


def received_notifies(path, profile="oma"):
    """The NOTIFYs a trace received, each once (retransmissions dropped): [(SipMsg, info)] where info
    is check_conference_info()'s summary of the body ({} without a body)."""
    out, seen = [], set()
    for direction, raw in parse_trace(path):
        m = SipMsg(raw)
        if direction != "recv" or not m.is_request or m.method != "NOTIFY":
            continue
        key = (m.get("call-id"), m.branch, m.cseq[0])
        if key in seen:
            continue
        seen.add(key)
        out.append((m, check_conference_info(m.body, profile)[1] if m.body.strip() else {}))
    return out


def check_rcs_conference_info(body):
    problems = []
    info = {"users": {}, "methods": {}, "reasons": {}}
    try:
        root = ET.fromstring(body)
    except ET.ParseError as e:
        return ["R44: body is not well-formed XML (%s)" % e], info
    if root.tag != NS + "conference-info":
        return ["R44: root element is %s" % root.tag], info
    info.update(entity=root.get("entity"), state=root.get("state"))
    version = root.get("version")
    if version and version.isdigit():
        info["version"] = int(version)
    else:
        problems.append("R33/R44: root version %r" % version)
    order = [c.tag.replace(NS, "") for c in root]
    want = [t for t in ("conference-description", "conference-state", "users") if t in order]
    if order != want or "users" not in order:
        problems.append("R47/R53: root children %s, want [conference-description] [conference-state] users"
                        % order)
    desc = root.find(NS + "conference-description")
    if desc is not None:
        muc = desc.find(NS + "maximum-user-count")
        if muc is not None:
            info["maximum_user_count"] = int(muc.text)
    cstate = root.find(NS + "conference-state")
    if cstate is not None and cstate.find(NS + "user-count") is not None:
        info["user_count"] = int(cstate.find(NS + "user-count").text)
    users = root.find(NS + "users")
    for user in (users if users is not None else []):
        ue = user.get("entity") or ""
        if user.get("state") == "deleted" and user.find(NS + "endpoint/" + NS + "disconnection-method") is None:
            # R95: only a removal by the chairman is `deleted`, and it keeps its endpoint (booted)
            problems.append("R91/R95: %s has state=deleted without its endpoint (never under rcs)" % ue)
            continue
        if user.get("state") == "deleted" and \
                (user.findtext(NS + "endpoint/" + NS + "disconnection-method") or "").strip() != "booted":
            problems.append("R95: %s is deleted, but not removed by the chairman (booted)" % ue)
        if ue.startswith("sip:") and "@" not in ue:
            problems.append("R90: entity %s has no user part: the RCS client throws" % ue)
        eps = user.findall(NS + "endpoint")
        if len(eps) != 1:
            problems.append("R91: user %s has %d endpoints, want one" % (ue, len(eps)))
            continue
        ep = eps[0]
        eorder = [c.tag.replace(NS, "") for c in ep]
        # R53 order; R95 adds joining-info (when)
        allowed = ["status", "joining-info", "disconnection-method", "disconnection-info"]
        if any(t not in allowed for t in eorder) or eorder != sorted(eorder, key=allowed.index):
            problems.append("R53/R91: endpoint of %s holds %s" % (ue, eorder))
        st = ep.find(NS + "status")
        status = (st.text or "").strip() if st is not None else None
        if status not in RCS_STATUSES:
            problems.append("R90: status %r of %s makes the RCS client drop the NOTIFY" % (status, ue))
        dm = ep.find(NS + "disconnection-method")
        if status == "disconnected":
            method = (dm.text or "").strip() if dm is not None else None
            if method not in RCS_METHODS:
                problems.append("R91: departure of %s without a known disconnection-method (%r)" % (ue, method))
            info["methods"][ue] = method
            reason = ep.find(NS + "disconnection-info/" + NS + "reason")
            if reason is not None:
                info["reasons"][ue] = (reason.text or "").strip()
        info["users"][ue] = status
    return problems, info


def check_trace(path, server_contact, profile="oma"):
    """Checks every NOTIFY of one SIPp message trace against R24-R59 (docs/conformance.md) and the dialog state
    implied by the SUBSCRIBE/200 exchange in the same trace. Returns a list of problems."""
    problems = []
    msgs = [(d, SipMsg(raw)) for d, raw in parse_trace(path)]
    dialogs = {}   # Call-ID -> state
    bodies = []    # every NOTIFY body, for the RFC 4575 schema
    seen_branches = set()
    for direction, m in msgs:
        cid = m.get("call-id")
        dlg = dialogs.setdefault(cid, {"sub_from_tag": None, "contact": None, "ok_to_tag": None,
                                       "notifies": [], "versions": [], "cseqs": [], "terminated": False,
                                       "last_notify_answered": True, "answered_481": False,
                                       "initial_ok_seen": False})
        if direction == "sent" and m.is_request and m.method == "SUBSCRIBE":
            dlg["sub_from_tag"] = tag_of(m.get("from"))
            dlg["contact"] = uri_of(m.get("contact"))
            dlg["event"] = event_of(m.get("event"))
        elif direction == "recv" and not m.is_request and m.cseq[1] == "SUBSCRIBE":
            if 200 <= m.code < 300 and not dlg["ok_to_tag"]:
                dlg["ok_to_tag"] = tag_of(m.get("to"))
                dlg["initial_ok_seen"] = True
        elif direction == "sent" and not m.is_request and m.cseq[1] == "NOTIFY":
            dlg["last_notify_answered"] = True
            if m.code == 481:
                dlg["answered_481"] = True
        elif direction == "recv" and m.is_request and m.method == "NOTIFY":
            key = (cid, m.branch, m.cseq[0])
            if key in seen_branches:
                continue  # a retransmission
            seen_branches.add(key)
            where = "NOTIFY CSeq %s (%s)" % (m.cseq[0], cid)
            p = []
            if not dlg["sub_from_tag"]:
                p.append("harness: no SUBSCRIBE of this dialog found in the trace, dialog checks impossible")
            if not dlg["initial_ok_seen"]:
                p.append("R25: NOTIFY arrived before the 2xx to the SUBSCRIBE")
            if not dlg["last_notify_answered"]:
                p.append("R32: a new NOTIFY arrived while the previous one was still unanswered")
            if dlg["terminated"]:
                p.append("R31/R64/R69: NOTIFY after a terminating NOTIFY in the same dialog")
            if dlg["answered_481"]:
                p.append("R31: NOTIFY after the subscriber answered 481")
            # R39 dialog identifiers
            if dlg["ok_to_tag"] and tag_of(m.get("from")) != dlg["ok_to_tag"]:
                p.append("R39: From tag %s, want the 200's To tag %s" % (tag_of(m.get("from")), dlg["ok_to_tag"]))
            if dlg["sub_from_tag"] and tag_of(m.get("to")) != dlg["sub_from_tag"]:
                p.append("R39: To tag %s, want the SUBSCRIBE's From tag %s" % (tag_of(m.get("to")), dlg["sub_from_tag"]))
            if dlg["contact"] and m.ruri != dlg["contact"]:
                p.append("R39: Request-URI %s, want the subscriber's Contact %s" % (m.ruri, dlg["contact"]))
            if (m.get("max-forwards") or "").strip() != "70":
                p.append("R39: Max-Forwards %r, want 70" % m.get("max-forwards"))
            # R40 CSeq
            n, method = m.cseq
            if method != "NOTIFY":
                p.append("R40: CSeq method %r" % method)
            if dlg["cseqs"] and n is not None and n != dlg["cseqs"][-1] + 1:
                p.append("R40: CSeq %s after %s, want +1" % (n, dlg["cseqs"][-1]))
            dlg["cseqs"].append(n)
            # R41, R34: Event: conference, with the SUBSCRIBE's id parameter if it had one (and only then)
            want_event = ("conference", (dlg.get("event") or (None, None))[1])
            if event_of(m.get("event")) != want_event:
                p.append("R41/R34: Event %r, want conference%s" % (
                    m.get("event"), ";id=%s" % want_event[1] if want_event[1] else " (no id: the SUBSCRIBE had none)"))
            if server_contact and uri_of(m.get("contact")) != server_contact:
                p.append("R16/R41: Contact %r, want %s" % (m.get("contact"), server_contact))
            # R42
            ss = (m.get("subscription-state") or "").strip()
            mm = re.match(r"^active;expires=(\d+)$", ss.replace(" ", ""))
            mt = re.match(r"^terminated;reason=(deactivated|probation|rejected|timeout|giveup|noresource|invariant)$",
                          ss.replace(" ", ""))
            if mm:
                if int(mm.group(1)) < 1:
                    p.append("R42: active;expires=%s, want at least 1" % mm.group(1))
            elif mt:
                dlg["terminated"] = True
            else:
                p.append("R42: Subscription-State %r is neither active;expires=N nor terminated;reason=R" % ss)
            # R43 framing
            clen = m.get("content-length")
            if clen is None or not clen.strip().isdigit() or int(clen) != len(m.body):
                p.append("R43: Content-Length %r but the body has %d bytes" % (clen, len(m.body)))
            ctype = (m.get("content-type") or "").strip()
            if m.body.strip():
                if ctype.split(";")[0].strip().lower() != "application/conference-info+xml":
                    p.append("R43: body with Content-Type %r" % ctype)
                if mt and mt.group(1) == "noresource":
                    p.append("R69: a noresource NOTIFY carries no body")
                doc_problems, info = check_conference_info(m.body, profile)
                p += doc_problems
                bodies.append(m.body)
                if "version" in info:
                    if not dlg["versions"] and info["version"] != 1:
                        p.append("R33: first document has version %s, want 1" % info["version"])
                    if dlg["versions"] and info["version"] != dlg["versions"][-1] + 1:
                        p.append("R33: version %s after %s, want +1" % (info["version"], dlg["versions"][-1]))
                    if not dlg["versions"] and info.get("state") != "full":
                        p.append("R46: the first document of a subscription must be full, got %s" % info.get("state"))
                    dlg["versions"].append(info["version"])
            else:
                if ctype:
                    p.append("R43: no body but Content-Type %r" % ctype)
                if mm:
                    p.append("R25/R26: an active NOTIFY without a conference-info body")
            dlg["last_notify_answered"] = False
            problems += ["%s: %s" % (where, x) for x in p]
    return problems + schema_problems(bodies)


# ============================================================================ scenario lint

def lint_scenarios():
    """Every tests/sipp/*.xml is well-formed XML and loads in SIPp: SIPp has no parse-only mode,
    so each is started for one second against a UDP socket that never answers; a scenario that
    loads ends with 'timed out', one that does not ends with a parse error."""
    files = sorted(SIPP_DIR.glob("*.xml"))
    problems = []
    for f in files:
        try:
            ET.parse(f)
        except ET.ParseError as e:
            problems.append("%s: not well-formed XML: %s" % (f.name, e))
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink_port = sink.getsockname()[1]
    lintdir = rundir_for("sipp_scenarios_parse")

    class Dummy:
        server = None
        name = "lint"
        rundir = lintdir
    keys = Ctx.keys(Dummy())

    def one(f):
        port = SPORTS.take()
        cmd = [SIPP, "-sf", str(f), "-i", "127.0.0.1", "-p", str(port), "127.0.0.1:%d" % sink_port,
               "-m", "1", "-timeout", "1s", "-timeout_error", "-nostdin"]
        for k, v in keys.items():
            cmd += ["-key", k, v]
        try:
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=15,
                               cwd=str(lintdir))
            out = r.stdout.decode("utf-8", "replace")
        except subprocess.TimeoutExpired:
            return "%s: sipp did not end" % f.name
        if "timed out after" not in out:
            lines = [l for l in out.splitlines() if l.strip() and not l.startswith(("---", " "))]
            return "%s: sipp did not load it: %s" % (f.name, " | ".join(lines[-3:]))
        return None
    with ThreadPoolExecutor(max_workers=6) as ex:
        problems += [p for p in ex.map(one, files) if p]
    sink.close()
    return len(files), problems




# ============================================================================ one test

def run_test(opts, name, fn):
    """Runs one test function with a fresh Ctx; whatever happens, stops its SIPp runs and servers
    by pid, then (if it passed so far) checks that no server died on its own, that they stopped
    cleanly, and that their logs hold no alarm line the test did not expect."""
    ctx = Ctx(opts, name)
    start = time.time()
    failure = skipped = None
    try:
        fn(ctx)
        ctx.check_rpc_log()
    except Skip as e:
        skipped = str(e)
    except TestFailure as e:
        failure = str(e)
    except Exception:
        failure = "harness error:\n" + traceback.format_exc()
    for run in ctx.sipp_runs:
        if run.proc.poll() is None:
            stop_process(run.proc, term_timeout=2)
    died = [s for s in ctx.servers if s.proc is not None and s.proc.poll() is not None
            and not s.stopped and not s.expect_exit]
    complaints = ctx.stop_servers()
    for fn_ in reversed(ctx.cleanups):
        try:
            fn_()
        except Exception as e:  # a cleanup that fails is reported, the others still run
            complaints.append("cleanup: %s" % e)
    if failure is None and skipped is None:
        if died:
            failure = "; ".join("%s: the server exited by itself during the test (status %s)"
                                % (s.log_path.name, s.proc.returncode) for s in died)
        elif complaints:
            failure = "stopping: " + "; ".join(complaints)
        else:
            for srv in ctx.servers:
                bad = [l for l in srv.log_text().splitlines() if LOG_ALARM.search(l)
                       and not (ctx.log_allow and re.search(ctx.log_allow, l))]
                if bad:
                    failure = "unexpected alarm lines in %s:\n  %s" % (srv.log_path, "\n  ".join(bad[:20]))
                    break
    return ctx, failure, skipped, time.time() - start
