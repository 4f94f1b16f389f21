"""A throwaway PostgreSQL cluster for the persistence tests: its own data directory under /tmp
(the `postgres` user cannot always traverse the test's run directory; the log stays there),
removed at stop, listening on 127.0.0.1 only (no unix socket: its path under a deep run directory can pass the
107-byte limit of sun_path, which made postgres exit at start in CI), trust
authentication, run as the `postgres` system user (PostgreSQL refuses root), stopped by its pid.
"""

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time


def bindir():
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    return dirs[-1] if dirs and os.path.exists(os.path.join(dirs[-1], "postgres")) else None


def available():
    return bindir() is not None and shutil.which("setpriv") is not None and _user() is not None


def _user():
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        return None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class PgCluster:
    def __init__(self, base, port=None):
        self.dir = tempfile.mkdtemp(prefix="imconf-pg-")
        self.port = port or free_port()
        self.proc = None
        self.log = os.path.join(str(base), "postgres.log")

    def _as_postgres(self, argv, **kw):
        u = _user()
        return ["setpriv", "--reuid=%d" % u.pw_uid, "--regid=%d" % u.pw_gid, "--clear-groups", "--"] + argv

    def start(self, timeout=30):
        u = _user()
        os.makedirs(self.dir, exist_ok=True)
        os.chown(self.dir, u.pw_uid, u.pw_gid)
        env = dict(os.environ, HOME=self.dir, LC_ALL="C")
        subprocess.run(self._as_postgres([os.path.join(bindir(), "initdb"), "-D", self.dir, "-A", "trust",
                                          "-U", "postgres", "-E", "UTF8", "--no-sync"]),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, env=env, timeout=120)
        logf = open(self.log, "wb")
        self.proc = subprocess.Popen(
            self._as_postgres([os.path.join(bindir(), "postgres"), "-D", self.dir, "-h", "127.0.0.1",
                               "-p", str(self.port), "-k", "", "-F", "-c", "fsync=off"]),
            stdout=logf, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        logf.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            r = subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", str(self.port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if r.returncode == 0:
                break
            if self.proc.poll() is not None:
                raise RuntimeError("postgres exited: see %s:\n%s" % (self.log, self._log_tail()))
            time.sleep(0.2)
        else:
            raise RuntimeError("postgres not ready within %ss: see %s:\n%s" % (timeout, self.log, self._log_tail()))
        self.psql("CREATE DATABASE imconf")

    def _log_tail(self, lines=15):
        try:
            with open(self.log, "rb") as f:
                return b"\n".join(f.read().splitlines()[-lines:]).decode(errors="replace")
        except OSError as e:
            return "(no log: %s)" % e

    def psql(self, sql, db="postgres"):
        r = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", db,
                            "-At", "-c", sql], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        if r.returncode != 0:
            raise RuntimeError("psql %r: %s" % (sql, r.stdout.decode(errors="replace")))
        return r.stdout.decode(errors="replace")

    def url(self):
        return "postgres://postgres@127.0.0.1:%d/imconf" % self.port

    def stop(self):
        """SIGTERM to the postmaster's pid (a smart shutdown), SIGKILL to it after 20 s; then the
        data directory goes."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)
