"""Several Kamailio+imconf nodes on loopback joined by one DMQ bus (enable_dmq, docs/cluster.md),
and subscribers whose merged view of a session is compared with the truth.

Node i listens on its own address, 127.0.0.<i>, and its own UDP port; dmq's server_address is that
address and every node's notification_address is node 1's, as an operator would configure a
cluster of hosts. One address per node is needed: from Kamailio 6.0, dmq matches a node it is told
about by IP alone when the URI does not match (notification_peer.c, find_dmq_node_ip), so nodes
on one address and different ports merge into one and the bus never forms. Each node has its own
ctl socket (ctl-<name>.sock) and log (kamailio-<name>.log) in the test's run directory.
"""

import hashlib
import hmac
import re
import time
import xml.etree.ElementTree as ET

import sipua
from harness import KPORTS, SPORTS, KamailioServer, TestFailure

NS = "{urn:ietf:params:xml:ns:conference-info}"
# the test clusters' shared secret (modparam dmq_secret, R96)
SECRET = "imconf-test-cluster-secret-0123456789"


MAGIC = b"imconf-cluster/2"


def mac(secret, signed):
    """The hex HMAC-SHA-256 of a body's signed part (src/core/cluster_auth.rs) under `secret`."""
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, MAGIC + b"\n" + signed, hashlib.sha256).hexdigest().encode()


def seal_raw(secret, signed):
    """A body whose MAC line covers `signed` (sender line + operations) under `secret`."""
    return MAGIC + b" " + mac(secret, signed) + b"\n" + signed


def seal(secret, node, time_ms, counter, ops):
    """A sealed imconf-cluster/2 body: the MAC line, then the sender's line, then the operations
    (bytes). What a node holding `secret` sends."""
    return seal_raw(secret, b"%x %x %x\n" % (node, time_ms, counter) + ops)


def open_ops(session, user, stamp=1):
    """The operations (src/core/cluster.rs) that open `session` and make `user` a connected
    participant of it."""
    hx = lambda v: v.encode().hex()  # noqa: E731
    return ("O %x %s %s -\nP %x %s %s %s\n" % (
        stamp, hx(session), hx("ad-hoc"), stamp + 1, hx(session), hx(user), hx("connected"))).encode()


def op(tag, stamp, *args):
    """One operation line (src/core/cluster.rs encode_op): `tag` O (open), C (close) or P
    (participant), its stamp, then its arguments hex-encoded ("-" for an empty one)."""
    hx = lambda v: v.encode().hex() or "-"  # noqa: E731
    return ("%s %x %s\n" % (tag, stamp, " ".join(hx(a) for a in args))).encode()


class Cluster:
    def __init__(self, ctx, n=3, modparams=(), make=None, extra_args=(), defines=(), per_node=None):
        """`make(ctx, name, host, port, notify_hostport)`: a server other than the test cfg's (the
        example cfg), already in ctx.servers. Without a dmq_secret or dmq_secret_file among
        `modparams`, the nodes share SECRET. `extra_args`: more kamailio options (`-m 512`);
        `defines`: more cfg defines (IMCONF_DB_SQLITE); `per_node(i)`: node i's own modparams
        (its own db_url), the same at every restart."""
        self.ctx = ctx
        self.extra_args = list(extra_args)
        self.defines = list(defines)
        self.per_node = per_node or (lambda i: [])
        self.ports = [KPORTS.take() for _ in range(n)]
        self.extra = list(modparams)
        if not any(m[0] == "imconf" and m[1].startswith("dmq_secret") for m in self.extra):
            self.extra.append(("imconf", "dmq_secret", SECRET))
        self.make = make
        self.nodes = [self._node(i) for i in range(n)]
        self.restarts = 0

    @staticmethod
    def host(i):
        return "127.0.0.%d" % (i + 1)

    def _node(self, i, name=None):
        port = self.ports[i]
        if self.make:
            return self.make(self.ctx, name or "n%d" % (i + 1), self.host(i), port,
                             "%s:%d" % (self.host(0), self.ports[0]))
        mp = [("dmq", "server_address", "sip:%s:%d" % (self.host(i), port)),
              ("dmq", "notification_address", "sip:%s:%d" % (self.host(0), self.ports[0])),
              ("imconf", "enable_dmq", 1)] + self.extra + list(self.per_node(i))
        srv = KamailioServer(self.ctx, defines=["IMCONF_DMQ"] + self.defines, modparams=mp, node=name or "n%d" % (i + 1),
                             port=port, host=self.host(i), extra_args=self.extra_args)
        self.ctx.servers.append(srv)
        return srv

    def start(self, timeout=20):
        for srv in self.nodes:
            srv.start()
        self.wait_formed(timeout)

    def active_peers(self, srv):
        r = srv.rpc("dmq.list_nodes")
        if not r.ok:
            return -1
        return sum(1 for s in r.structs() if s.get("status") == "active")

    def wait_formed(self, timeout=20):
        """Until every node's dmq lists every node active."""
        deadline = time.time() + timeout
        want = len(self.nodes)
        while time.time() < deadline:
            counts = [self.active_peers(s) for s in self.nodes]
            if all(c >= want for c in counts):
                return
            time.sleep(0.2)
        raise TestFailure("the DMQ bus did not form within %ss: active nodes seen per node %s"
                          % (timeout, [self.active_peers(s) for s in self.nodes]))

    def crash(self, i):
        """SIGKILL to every process of node i (a crash: nothing is said to the peers)."""
        import os
        import signal
        srv = self.nodes[i]
        srv.stopped = True
        os.killpg(srv.proc.pid, signal.SIGKILL)
        srv.proc.wait(timeout=10)
        srv.logf.close()

    def restart(self, i):
        """Stops node i (SIGTERM) and starts it again on the same port, with a new log."""
        self.nodes[i].stop()
        self.restarts += 1
        srv = self._node(i, name="n%d-r%d" % (i + 1, self.restarts))
        self.nodes[i] = srv
        srv.start()
        self.wait_formed()
        return srv

    def stop_all(self, crash=False):
        """Every node at once: SIGTERM to each (in parallel, as an operator stopping the whole
        cluster), or SIGKILL to every process of each (a power cut)."""
        import threading
        if crash:
            for i in range(len(self.nodes)):
                self.crash(i)
            return
        threads = [threading.Thread(target=srv.stop) for srv in self.nodes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def start_all(self):
        """Starts every node again, as after `stop_all`, on the same ports, with new logs."""
        self.restarts += 1
        self.nodes = [self._node(i, name="n%d-r%d" % (i + 1, self.restarts)) for i in range(len(self.nodes))]
        for srv in self.nodes:
            srv.start()
        self.wait_formed()

    def feed(self, i, cmd, *args):
        r = self.nodes[i].rpc(cmd, *args)
        if not r.ok:
            raise TestFailure("node %d: %s" % (i + 1, r))
        return r

    def participants(self, i, session):
        r = self.nodes[i].rpc("imconf.sessions")
        for s in r.structs():
            if s.get("uri") == session:
                return int(s.get("participants", -1))
        return None

    def wait_everywhere(self, session, participants, timeout=10):
        """Until every node holds `session` with that many participant records."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            seen = [self.participants(i, session) for i in range(len(self.nodes))]
            if all(p == participants for p in seen):
                return
            time.sleep(0.1)
        raise TestFailure("%s: participant records per node %s, want %d everywhere"
                          % (session, seen, participants))


class Subscriber:
    """One subscription through one node, with every NOTIFY it got."""

    def __init__(self, ctx, node, session, aor, name, **headers):
        """`headers`: `extra` and `accept_contact` of its SUBSCRIBEs (sipua.subscribe)."""
        self.node, self.session, self.aor = node, session, aor
        self.ua = sipua.Ua(node.port, SPORTS.take())
        self.ua.server = (node.host, node.port)
        ctx.cleanups.append(self.ua.close)
        self.dialogs = sipua.Dialogs(self.ua, session, aor, name, **headers)
        self.call_id = None

    def subscribe(self, expires=300, timeout=10):
        """Subscribes, retrying after a 503 (a node still syncing asks for Retry-After: 1)."""
        deadline = time.time() + timeout
        while True:
            res = self.dialogs.open(1, expires=expires)
            (cid, code), = res.items()
            if code == 503 and time.time() < deadline:
                time.sleep(1)
                continue
            if code != 200:
                raise TestFailure("SUBSCRIBE of %s through port %d: %s" % (self.aor, self.node.port, code))
            self.call_id = cid
            return cid

    def target(self):
        """(host, port) of the Contact of the last NOTIFY (where in-dialog requests go now)."""
        head = self.notifies()[-1][0]
        m = re.search(r"@(127\.\d+\.\d+\.\d+):(\d+)", sipua.header(head, "Contact", "m") or "")
        return (m.group(1), int(m.group(2))) if m else (None, None)

    def target_port(self):
        return self.target()[1]

    def refresh(self, expires=300):
        """An in-dialog SUBSCRIBE to the current target; its final code."""
        self.ua.server = self.target()
        return self.dialogs.refresh([self.call_id], expires)[self.call_id]

    def notifies(self):
        return list(self.ua.notify_msgs.get(self.call_id, []))

    def view(self):
        """`merged_view` of this subscriber's NOTIFYs: (users, versions, CSeqs); `self.full`
        says, per version, whether its document was full."""
        users, versions, self.full, cseqs = merged_view(self.notifies())
        return users, versions, cseqs

    def check(self, truth, what, jumps=False):
        """`view_problems` of this subscriber's NOTIFYs."""
        return view_problems(self.notifies(), truth, what, self.aor, jumps)


def settled_problems(subs, truth, what, jumps=False, timeout=8):
    """`Subscriber.check` of every subscriber in `subs`, looked at again every 0.2 s until there is
    no problem or `timeout` s passed; the problems left."""
    deadline = time.time() + timeout
    while True:
        problems = [p for sub in subs for p in sub.check(truth, what, jumps)]
        if not problems or time.time() > deadline:
            return problems
        time.sleep(0.2)


def merged_view(msgs):
    """The merged view after the NOTIFYs `msgs` [(head, body)] in order: {entity: status} of
    present users, and the versions, whether each document was full, and the CSeqs. Full state
    replaces, partial updates (RFC 4575 §4.6)."""
    users, versions, fulls, cseqs = {}, [], [], []
    for head, body in msgs:
        cseqs.append(int((sipua.header(head, "CSeq") or "0 NOTIFY").split()[0]))
        if not body.strip():
            continue
        root = ET.fromstring(body)
        versions.append(int(root.get("version")))
        fulls.append(root.get("state") == "full")
        if root.get("state") == "full":
            users = {}
        for u in root.iter(NS + "user"):
            ent = u.get("entity")
            st = u.find(NS + "endpoint/" + NS + "status")
            status = (st.text or "").strip() if st is not None else None
            if u.get("state") == "deleted" or status == "disconnected":
                users.pop(ent, None)
            else:
                users[ent] = status
    return users, versions, fulls, cseqs


def view_problems(msgs, truth, what, who, jumps=False):
    """The merged view of `msgs` equals `truth`, versions are 1, 2, 3, ... and CSeqs increase.
    With `jumps` (a takeover after a crash, R40), a version may jump ahead into a full document,
    never back and never repeated."""
    users, versions, fulls, cseqs = merged_view(msgs)
    problems = []
    if users != truth:
        problems.append("%s: %s sees %s, truth %s" % (what, who, sorted(users.items()), sorted(truth.items())))
    steps_ok = all(b == a + 1 or (jumps and b > a and full)
                   for a, b, full in zip(versions, versions[1:], fulls[1:]))
    if versions[:1] not in ([], [1]) or not steps_ok:
        problems.append("%s: %s got versions %s (R33: gapless from 1%s)"
                        % (what, who, versions, ", or a jump into full state" if jumps else ""))
    if any(b <= a for a, b in zip(cseqs, cseqs[1:])):
        problems.append("%s: %s got CSeqs %s (R40: increasing)" % (what, who, cseqs))
    return problems
