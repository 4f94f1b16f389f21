#!/usr/bin/env python3
"""A stand-in for Kamailio + imconf, used ONLY to check the test harness itself.

`run.py --standin` runs the SIP-flow tests against this process instead of Kamailio with
build/imconf.so, so the SIPp scenarios, the runner's SIPp/RPC plumbing and the trace checker can be
exercised while the real module does not exist or does not work yet. It is not a reference
implementation: it implements just enough of the rules (docs/conformance.md) for the flows the tests drive, in the same
reading of the rules as the tests (so it proves the tests' mechanics, not their reading of the spec).

Two sub-commands:
  fake_imconf.py serve --port P --rundir DIR [--server-contact URI ...]
      UDP SIP on 127.0.0.1:P, an RPC socket at DIR/ctl.sock, log on stderr.
  fake_imconf.py rpc DIR/ctl.sock CMD [ARG ...]
      kamcmd look-alike client: prints structs and "error: <code> - <msg>" like kamcmd does
      (and, like kamcmd, exits 0 on an RPC error).

IMCONF_FAKE_BUG=<name> makes the stand-in misbehave in one known way (see BUGS), so that one can
check that the tests notice (harness mutation check, see tests/integration/README.md).
"""

import argparse
import heapq
import itertools
import json
import os
import random
import re
import selectors
import signal
import socket
import sys
import time

BUGS = {
    "no_norefersub": "omit Supported: norefersub from the 200 (R18)",
    "version_skip": "partial NOTIFYs skip a version number (R33)",
    "partial_all_users": "partial NOTIFYs carry every user instead of the changed ones (R54)",
    "no_expiry": "subscriptions never expire (R30)",
    "ignore_481": "a NOTIFY answered 481 keeps the subscription (R31)",
    "notify_first": "the initial NOTIFY is sent before the 200 (R25)",
    "unknown_403": "an unknown Request-URI gets 403 instead of 404 (R1, R9)",
    "close_with_body": "the noresource NOTIFY carries a body (R69)",
    "bad_content_length": "NOTIFY Content-Length is off by one (R43)",
    "panic_exits": "the panicking SUBSCRIBE kills the server instead of answering 500",
    "no_coalesce": "every participant change is sent at once, without the interval (R61, R62)",
    "retrans_new_sub": "a retransmitted SUBSCRIBE creates a second subscription (R22)",
    "accept_before_identity": "the Accept check (406) runs before the identity checks (P5/R5, R6)",
    "lower_cseq_refresh": "an in-dialog SUBSCRIBE with a lower CSeq is taken as a refresh (R13)",
    "no_max_subs": "max_subs_per_user_per_session is not enforced (R7)",
    "no_event_id": "NOTIFYs carry Event: conference without the SUBSCRIBE's id (R34)",
    "version_per_user": "one version counter per user and session, shared by the user's dialogs (R35)",
    "refresh_keeps_departed": "full documents keep listing departed users as disconnected (R57)",
    "overflow_partial": "max_pending_changes is ignored: an overflow still gives a partial (R65)",
    "silent_shutdown": "no NOTIFY when the server stops (R72)",
    "privacy_aoia": "a private invitee is listed under its AOIA instead of an anonymous URI (R76, R78)",
    "ignore_timeout": "a NOTIFY transaction that times out (408) keeps the subscription (R31)",
    "session_entity": "the root entity of a group session is the session URI, not the group (R45)",
    "id_not_matched": "an in-dialog SUBSCRIBE refreshes the dialog's subscription whatever its Event id (R34)",
    "from_uri_clash": "a private originator's From URI is used even when another user already has it (R74)",
}
BUG = os.environ.get("IMCONF_FAKE_BUG", "")

NS = "urn:ietf:params:xml:ns:conference-info"
COMPACT = {"a": "accept-contact", "o": "event", "f": "from", "t": "to", "i": "call-id", "m": "contact",
           "l": "content-length", "c": "content-type", "v": "via", "k": "supported", "u": "allow-events",
           "x": "session-expires"}
KINDS = ("one-to-one", "ad-hoc", "pre-defined", "chat", "restricted-chat")
STATUSES = ("alerting", "connected", "disconnected")


def log(level, msg):
    sys.stderr.write(" 0(%d) %s: imconf-standin: %s\n" % (os.getpid(), level, msg))
    sys.stderr.flush()


# ---------------------------------------------------------------- SIP message helpers

class Msg:
    def __init__(self, raw):
        text = raw.decode("utf-8", "replace")
        head, _, body = text.partition("\r\n\r\n")
        lines = head.split("\r\n")
        self.first = lines[0]
        self.headers = []  # (lower-case full name, value, original line)
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and self.headers:
                n, v, o = self.headers[-1]
                self.headers[-1] = (n, v + " " + line.strip(), o + line)
                continue
            name, _, value = line.partition(":")
            name = name.strip().lower()
            self.headers.append((COMPACT.get(name, name), value.strip(), line))
        self.body = body
        parts = self.first.split(" ", 2)
        self.is_request = not self.first.startswith("SIP/2.0")
        if self.is_request:
            self.method, self.ruri = parts[0], parts[1]
            self.code = 0
        else:
            self.code = int(parts[1])
            self.method = ""

    def all(self, name):
        return [v for n, v, _ in self.headers if n == name]

    def lines(self, name):
        return [o for n, _, o in self.headers if n == name]

    def get(self, name):
        vals = self.all(name)
        return vals[0] if vals else None


def uri_of(value):
    """URI of a name-addr / addr-spec header value."""
    if value is None:
        return None
    m = re.search(r"<([^>]*)>", value)
    if m:
        return m.group(1)
    return value.split(";")[0].strip()


def tag_of(value):
    m = re.search(r";\s*tag=([^;>\s]+)", value or "")
    return m.group(1) if m else None


def uri_key(uri):
    """R2: compare scheme, user and host."""
    m = re.match(r"^(sips?):(?:([^@;>]*)@)?([^:;>?]+)", uri or "", re.I)
    if not m:
        return None
    return (m.group(1).lower(), m.group(2) or "", m.group(3).lower())


def event_id(value):
    """R34: the id parameter of an Event header."""
    for prm in (value or "").split(";")[1:]:
        name, _, val = prm.partition("=")
        if name.strip().lower() == "id":
            return val.strip()
    return None


def cseq_of(msg):
    m = re.match(r"\s*(\d+)", msg.get("cseq") or "")
    return int(m.group(1)) if m else None


def hostport(uri):
    m = re.match(r"^sips?:(?:[^@]*@)?([^:;>?]+)(?::(\d+))?", uri)
    return (m.group(1), int(m.group(2) or 5060))


def new_tag():
    return "%08x" % random.getrandbits(32)


def has_im_tag(msg):
    """R4: +g.oma.sip-im in any Accept-Contact value (name exact, case-insensitive)."""
    for value in msg.all("accept-contact"):
        for ac in value.split(","):
            for param in ac.split(";")[1:]:
                name, _, val = param.strip().partition("=")
                if name.strip().lower() == "+g.oma.sip-im":
                    if val.strip().strip('"').upper() in ("", "TRUE"):
                        return True
    return False


def accept_ok(msg):
    """R11"""
    values = msg.all("accept")
    if not values:
        return True
    for value in values:
        for item in value.split(","):
            t = item.split(";")[0].strip().lower()
            if t in ("application/conference-info+xml", "application/*", "*/*"):
                return True
    return False


# ---------------------------------------------------------------- state

class Sub:
    def __init__(self, **kw):
        self.__dict__.update(kw)
        self.version = 0
        self.cseq = random.randint(1, 1000)
        self.seen = {}         # entity -> status last reported (R57)
        self.pending = {}      # entity -> latest status not yet reported (R62)
        self.inflight = None   # branch of the outstanding NOTIFY (R32)
        self.queued = []       # full/terminate NOTIFYs waiting for the outstanding one
        self.last_sent = 0.0
        self.flush_armed = False
        self.notifies_sent = 0
        self.dead = False


class Server:
    def __init__(self, a):
        self.a = a
        self.port = a.port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", a.port))
        self.ctl_path = os.path.join(a.rundir, "ctl.sock")
        if os.path.exists(self.ctl_path):
            os.unlink(self.ctl_path)
        self.ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.ctl.bind(self.ctl_path)
        self.ctl.listen(8)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.sock, selectors.EVENT_READ, "sip")
        self.sel.register(self.ctl, selectors.EVENT_READ, "ctl")
        self.timers = []
        self.seq = itertools.count()
        self.sessions = {}     # uri_key -> {"uri", "kind", "group", "participants": {aoia: status},
        #                                  "info": {aoia: role/listed/from/privacy/nick},
        #                                  "entities": {aoia: entity}, "next_anon": N}
        self.aliases = {}      # uri_key of an IM Group Identity -> uri_key of its open session (R3)
        self.user_versions = {}  # bug version_per_user only
        self.subs = {}         # (call_id, local_tag) -> Sub
        self.txns = {}         # SUBSCRIBE transaction (branch) -> last reply (R22)
        self.inflight = {}     # NOTIFY branch -> (sub, retrans state)
        self.stats = {}

    # --- plumbing
    def at(self, delay, fn):
        heapq.heappush(self.timers, (time.monotonic() + delay, next(self.seq), fn))

    def send(self, data, addr):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendto(data, addr)

    def count(self, key):
        self.stats[key] = self.stats.get(key, 0) + 1

    def shutdown(self, signum, frame):
        """R72: no persistence, no cluster: every subscription ends with the node."""
        if BUG != "silent_shutdown":
            for sub in list(self.subs.values()):
                if not sub.dead:
                    sub.inflight = None
                    self.send_notify(sub, "terminated;reason=deactivated", None)
        log("INFO", "stopped by signal %d" % signum)
        sys.exit(0)

    def run(self):
        signal.signal(signal.SIGTERM, self.shutdown)
        log("INFO", "listening on udp:127.0.0.1:%d, rpc on %s%s" % (
            self.port, self.ctl_path, (" (bug: %s)" % BUG) if BUG else ""))
        while True:
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                _, _, fn = heapq.heappop(self.timers)
                fn()
            timeout = max(0.0, self.timers[0][0] - time.monotonic()) if self.timers else 0.5
            for key, _ in self.sel.select(min(timeout, 0.5)):
                if key.data == "sip":
                    data, addr = self.sock.recvfrom(65535)
                    try:
                        self.on_sip(Msg(data), addr)
                    except SystemExit:
                        raise
                    except Exception as e:  # a stand-in bug must not look like a module bug
                        log("ERROR", "stand-in failed on a message: %r" % (e,))
                elif key.data == "ctl":
                    conn, _ = self.ctl.accept()
                    self.on_ctl(conn)

    # --- SIP
    def reply(self, req, addr, code, reason, extra=(), to_tag=None):
        to = req.get("to")
        if to_tag and not tag_of(to):
            to = to + ";tag=" + to_tag
        lines = ["SIP/2.0 %d %s" % (code, reason)]
        lines += req.lines("via")
        lines += ["From: " + req.get("from"), "To: " + to, "Call-ID: " + req.get("call-id"),
                  "CSeq: " + req.get("cseq")]
        lines += list(extra)
        lines += ["Server: imconf-standin", "Content-Length: 0", "", ""]
        data = "\r\n".join(lines)
        branch = self.branch(req)
        if req.method == "SUBSCRIBE" and branch:
            self.txns[branch] = (data, addr)
            self.at(32, lambda: self.txns.pop(branch, None))
        self.count("subscribe_%d" % code if req.method == "SUBSCRIBE" else "reply_%d" % code)
        self.send(data, addr)

    @staticmethod
    def branch(msg):
        via = msg.get("via") or ""
        m = re.search(r";\s*branch=([^;,\s]+)", via)
        return m.group(1) if m else None

    def on_sip(self, msg, addr):
        if not msg.is_request:
            return self.on_response(msg)
        if msg.method == "ACK":
            return
        if msg.method != "SUBSCRIBE":
            return self.reply(msg, addr, 405, "Method Not Allowed", to_tag=new_tag())
        branch = self.branch(msg)
        if branch in self.txns and BUG != "retrans_new_sub":   # R22: absorbed retransmission
            data, raddr = self.txns[branch]
            return self.send(data, raddr)
        self.on_subscribe(msg, addr)

    def on_subscribe(self, msg, addr):
        a = self.a
        ruri_user = (uri_key(msg.ruri) or ("", "", ""))[1]
        if a.panic_user and ruri_user == a.panic_user:
            if BUG == "panic_exits":
                log("CRITICAL", "panic not caught; aborting")
                os._exit(134)
            log("CRITICAL", "panic caught at the FFI boundary in imconf_handle_subscribe: deliberate panic "
                "(debug_panic_user)")
            return self.reply(msg, addr, 500, "Server Internal Error", to_tag=new_tag())
        event = msg.get("event")
        if event is None or event.split(";")[0].strip() != "conference":                        # R10
            return self.reply(msg, addr, 489, "Bad Event", ["Allow-Events: conference"], new_tag())
        expires_hdr = msg.get("expires")
        if expires_hdr is not None and not expires_hdr.strip().isdigit():                       # R14
            return self.reply(msg, addr, 400, "Bad Request", to_tag=new_tag())
        to_tag = tag_of(msg.get("to"))
        if to_tag:                                                                               # R13
            sub = self.subs.get((msg.get("call-id"), to_tag))
            if not sub or sub.dead or (event_id(event) != sub.event_id and BUG != "id_not_matched"):  # R34
                return self.reply(msg, addr, 481, "Call/Transaction Does Not Exist")
            return self.on_in_dialog(sub, msg, addr, expires_hdr)
        key = uri_key(msg.ruri)
        key = self.aliases.get(key, key)                                                         # R3
        session = self.sessions.get(key)
        if session is None:                                                                      # R1
            if BUG == "unknown_403":
                return self.reply(msg, addr, 403, "Forbidden", to_tag=new_tag())
            return self.reply(msg, addr, 404, "Not Found", to_tag=new_tag())
        if not has_im_tag(msg):                                                                  # R4
            return self.reply(msg, addr, 403, "Forbidden", to_tag=new_tag())
        if BUG == "accept_before_identity" and not accept_ok(msg):
            return self.reply(msg, addr, 406, "Not Acceptable", to_tag=new_tag())
        pai = msg.get("p-asserted-identity")                                                     # R5
        aoia = uri_of(pai) if pai else (uri_of(msg.get("from")) if a.trust_from else None)
        if not aoia:
            return self.reply(msg, addr, 403, "Forbidden", to_tag=new_tag())
        if session["participants"].get(aoia) not in ("connected", "alerting"):                   # R6
            return self.reply(msg, addr, 403, "Forbidden", to_tag=new_tag())
        if BUG != "no_max_subs" and sum(1 for x in self.subs.values()                           # R7
                                        if x.skey == key and x.aoia == aoia) >= a.max_subs_per_user:
            return self.reply(msg, addr, 403, "Forbidden", to_tag=new_tag())
        if not accept_ok(msg):                                                                   # R11
            return self.reply(msg, addr, 406, "Not Acceptable", to_tag=new_tag())
        expires = a.default_expires if expires_hdr is None else int(expires_hdr)
        if 0 < expires < a.min_expires:                                                          # R12
            return self.reply(msg, addr, 423, "Interval Too Brief", ["Min-Expires: %d" % a.min_expires],
                              new_tag())
        expires = min(expires, a.max_expires)                                                    # R19
        local_tag = new_tag()
        sub = Sub(session=session["uri"], skey=key, aoia=aoia, call_id=msg.get("call-id"),
                  local_tag=local_tag, remote_tag=tag_of(msg.get("from")),
                  local_uri=uri_of(msg.get("to")), remote_uri=uri_of(msg.get("from")),
                  target=uri_of(msg.get("contact")), routes=[uri_of(v) for v in msg.all("record-route")],
                  expires_at=time.monotonic() + expires, event_id=event_id(event),
                  remote_cseq=cseq_of(msg))
        ident = session["group"] if session["kind"] in ("pre-defined", "chat", "restricted-chat") \
            else a.factory                                                                       # R17
        ok = ["Contact: <%s>" % a.server_contact, "Expires: %d" % expires,
              "Allow-Events: conference", "P-Asserted-Identity: <%s>" % ident]
        if BUG != "no_norefersub":
            ok.append("Supported: norefersub")
        ok += msg.lines("record-route")                                                          # R20
        if expires == 0:                                                                         # R29
            if BUG == "notify_first":
                self.send_full(sub, "terminated;reason=timeout")
            self.reply(msg, addr, 200, "OK", ok, local_tag)
            if BUG != "notify_first":
                self.send_full(sub, "terminated;reason=timeout")
            return
        self.subs[(sub.call_id, local_tag)] = sub
        if BUG != "no_expiry":
            self.arm_expiry(sub)
        if BUG == "notify_first":
            self.send_full(sub, None)
            self.reply(msg, addr, 200, "OK", ok, local_tag)
        else:
            self.reply(msg, addr, 200, "OK", ok, local_tag)                                      # R25
            self.send_full(sub, None)

    def arm_expiry(self, sub):
        due = sub.expires_at

        def fire():
            if not sub.dead and sub.expires_at == due:
                self.terminate(sub, "timeout")                                                   # R30
        self.at(max(0.0, due - time.monotonic()), fire)

    def on_in_dialog(self, sub, msg, addr, expires_hdr):
        a = self.a
        cseq = cseq_of(msg)
        if cseq is not None and sub.remote_cseq is not None and cseq < sub.remote_cseq \
                and BUG != "lower_cseq_refresh":                                                 # R13
            return self.reply(msg, addr, 500, "Server Internal Error")
        sub.remote_cseq = cseq
        expires = a.default_expires if expires_hdr is None else int(expires_hdr)
        if 0 < expires < a.min_expires:
            return self.reply(msg, addr, 423, "Interval Too Brief", ["Min-Expires: %d" % a.min_expires])
        expires = min(expires, a.max_expires)
        if msg.get("contact"):
            sub.target = uri_of(msg.get("contact"))
        self.reply(msg, addr, 200, "OK", ["Contact: <%s>" % a.server_contact, "Expires: %d" % expires,
                                          "Allow-Events: conference"])
        if expires == 0:                                                                         # R28
            sub.dead = True
            self.subs.pop((sub.call_id, sub.local_tag), None)
            self.send_full(sub, "terminated;reason=timeout")
        else:                                                                                    # R27
            sub.expires_at = time.monotonic() + expires
            if BUG != "no_expiry":
                self.arm_expiry(sub)
            self.send_full(sub, None)

    # --- NOTIFY building and sending
    def body(self, sub, state, users):
        self_version = sub.version + (2 if (BUG == "version_skip" and state == "partial") else 1)
        if BUG == "version_per_user":
            self_version = self.user_versions.get((sub.skey, sub.aoia), 0) + 1
            self.user_versions[(sub.skey, sub.aoia)] = self_version
        sub.version = self_version
        session = self.sessions.get(sub.skey)
        root = sub.session
        if session:
            root = session["group"] if session["group"] and BUG != "session_entity" else session["uri"]  # R45
        out = ['<?xml version="1.0" encoding="UTF-8"?>',
               '<conference-info xmlns="%s" entity="%s" state="%s" version="%d">'
               % (NS, root, state, sub.version)]
        if users:
            out.append('  <users%s>' % (' state="partial"' if state == "partial" else ""))
            for entity, status in users:
                out.append('    <user entity="%s" state="full">' % entity)
                out.append('      <endpoint entity="%s" state="full">' % entity)
                out.append('        <status>%s</status>' % status)
                out.append('      </endpoint>')
                out.append('    </user>')
            out.append('  </users>')
        else:
            out.append('  <users/>')
        out.append('</conference-info>')
        return "\r\n".join(out) + "\r\n"

    def entity(self, session, aoia):
        """R73-R77: the user entity of a participant, chosen on first appearance and kept (R48)."""
        if session is None:
            return aoia
        if aoia in session["entities"]:
            return session["entities"][aoia]
        info = session["info"].get(aoia) or {"role": "joined", "privacy": False}
        taken = set(session["entities"].values())

        def anonymous():                                                                         # R76
            while True:
                e = "sip:anonymous%d@anonymous.invalid" % session["next_anon"]
                session["next_anon"] += 1
                if e not in taken:
                    return e
        if info["role"] == "invited":
            if info["privacy"]:
                ent = aoia if BUG == "privacy_aoia" else anonymous()
            else:
                ent = info.get("listed") or aoia                                                 # R75
        elif info["privacy"]:                                                                    # R74, R77
            ent = info["from"] if info.get("from") and (info["from"] not in taken or BUG == "from_uri_clash") \
                else anonymous()
        else:
            ent = aoia                                                                           # R73
        session["entities"][aoia] = ent
        return ent

    def full_users(self, sub):
        session = self.sessions.get(sub.skey)
        current = {self.entity(session, e): s for e, s in (session["participants"].items() if session else [])
                   if s in ("connected", "alerting")}
        users = list(current.items())
        for entity in list(sub.seen):                                                            # R57
            if entity not in current:
                users.append((entity, "disconnected"))
        if BUG == "refresh_keeps_departed":
            current.update({e: "disconnected" for e, st in sub.seen.items() if st == "disconnected"})
            users = list(current.items())
        sub.seen = dict(current)
        sub.pending.clear()
        return users

    def send_full(self, sub, terminated):
        if sub.inflight:
            sub.queued.append(("full", terminated))
            return
        body = self.body(sub, "full", self.full_users(sub))
        self.send_notify(sub, terminated or None, body)

    def terminate(self, sub, reason):
        sub.dead = True
        self.subs.pop((sub.call_id, sub.local_tag), None)
        sub.pending.clear()
        if sub.inflight:
            sub.queued = [("terminate", reason)]                                                 # R64
            return
        body = None
        if reason == "noresource" and BUG == "close_with_body":
            body = self.body(sub, "full", self.full_users(sub))
        self.send_notify(sub, "terminated;reason=" + reason, body)                               # R30, R69

    def changed(self, sub, entity, status):
        sub.pending[entity] = status
        self.schedule_flush(sub)

    def schedule_flush(self, sub):
        if sub.flush_armed or sub.inflight or sub.dead:
            return
        interval = 0 if BUG == "no_coalesce" else self.a.min_notify_interval_ms / 1000.0
        delay = max(0.0, sub.last_sent + interval - time.monotonic())
        sub.flush_armed = True

        def fire():
            sub.flush_armed = False
            self.flush(sub)
        self.at(delay, fire)

    def flush(self, sub):
        if sub.dead or sub.inflight or not sub.pending:
            return
        if len(sub.pending) > self.a.max_pending_changes and BUG != "overflow_partial":         # R65
            return self.send_full(sub, None)
        users = []
        for entity, status in sub.pending.items():                                               # R62
            if status == "disconnected":
                if entity in sub.seen:
                    users.append((entity, status))
                    del sub.seen[entity]
                    if BUG == "refresh_keeps_departed":
                        sub.seen[entity] = "disconnected"
            elif sub.seen.get(entity) != status:
                users.append((entity, status))
                sub.seen[entity] = status
        sub.pending.clear()
        if not users:                                                                            # R55
            return
        if BUG == "partial_all_users":
            users = list(self.sessions[sub.skey]["participants"].items())
        self.send_notify(sub, None, self.body(sub, "partial", users))                            # R26, R54

    def send_notify(self, sub, terminated, body):
        sub.cseq += 1
        branch = "z9hG4bK" + new_tag() + new_tag()
        left = max(1, int(sub.expires_at - time.monotonic()))
        state = terminated or "active;expires=%d" % left                                         # R42
        dest_uri = sub.routes[0] if sub.routes else sub.target
        lines = ["NOTIFY %s SIP/2.0" % sub.target,
                 "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=%s" % (self.port, branch),
                 "Max-Forwards: 70"]
        lines += ["Route: <%s>" % r for r in sub.routes]
        lines += ["From: <%s>;tag=%s" % (sub.local_uri, sub.local_tag),
                  "To: <%s>;tag=%s" % (sub.remote_uri, sub.remote_tag),
                  "Call-ID: " + sub.call_id, "CSeq: %d NOTIFY" % sub.cseq,
                  "Contact: <%s>" % self.a.server_contact,
                  "Event: conference" + (";id=%s" % sub.event_id if sub.event_id and BUG != "no_event_id" else ""),
                  "Subscription-State: " + state]
        payload = (body or "").encode()
        if body:
            lines.append("Content-Type: application/conference-info+xml")
        clen = len(payload) + (1 if BUG == "bad_content_length" and body else 0)
        lines.append("Content-Length: %d" % clen)
        data = ("\r\n".join(lines) + "\r\n\r\n").encode() + payload
        addr = hostport(dest_uri)
        sub.inflight = branch
        sub.last_sent = time.monotonic()
        sub.notifies_sent += 1
        self.count("notify_sent")
        self.count("notify_partial" if body and 'state="partial"' in body else "notify_full")
        self.inflight[branch] = {"sub": sub, "data": data, "addr": addr, "t": 0.5, "start": time.monotonic(),
                                 "final": bool(terminated)}
        self.send(data, addr)
        self.arm_retrans(branch)

    def arm_retrans(self, branch):
        st = self.inflight.get(branch)
        if not st:
            return

        def fire():
            cur = self.inflight.get(branch)
            if not cur:
                return
            if time.monotonic() - cur["start"] >= self.a.fr_timer_ms / 1000.0:
                self.on_notify_final(branch, 408)
                return
            self.send(cur["data"], cur["addr"])
            cur["t"] = min(cur["t"] * 2, 4.0)
            self.arm_retrans(branch)
        self.at(st["t"], fire)

    def on_response(self, msg):
        branch = self.branch(msg)
        if branch in self.inflight and msg.code >= 200:
            self.on_notify_final(branch, msg.code)

    def on_notify_final(self, branch, code):
        st = self.inflight.pop(branch)
        sub = st["sub"]
        sub.inflight = None
        self.count("notify_%d" % code)
        if st["final"]:
            return                                                                               # R69
        if code >= 300 and not (code == 481 and BUG == "ignore_481") \
                and not (code == 408 and BUG == "ignore_timeout"):                               # R31
            sub.dead = True
            self.subs.pop((sub.call_id, sub.local_tag), None)
            log("INFO", "NOTIFY got %d: subscription %s removed" % (code, sub.call_id))
            return
        if sub.queued:
            kind, arg = sub.queued.pop(0)
            if kind == "full":
                return self.send_full(sub, arg)
            return self.send_notify(sub, "terminated;reason=" + arg, None)
        if sub.pending:
            self.schedule_flush(sub)

    # --- RPC
    def on_ctl(self, conn):
        try:
            conn.settimeout(2)
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                buf += chunk
            req = json.loads(buf.decode() or "{}")
            try:
                result = self.rpc(req.get("cmd", ""), [str(x) for x in req.get("args", [])])
                resp = {"ok": True, "result": result}
            except RpcError as e:
                resp = {"ok": False, "code": e.code, "message": e.message}
            conn.sendall((json.dumps(resp) + "\n").encode())
        finally:
            conn.close()

    def rpc(self, cmd, args):
        def need(n, names):
            if len(args) < n:
                raise RpcError(400, "missing argument: %s" % names[len(args)])
        if cmd == "core.version":
            return ["imconf stand-in (tests/integration/fake_imconf.py)"]
        if cmd == "core.psx":
            return [{"IDX": 0, "PID": os.getpid(), "DSC": "main process - attendant"},
                    {"IDX": 1, "PID": os.getpid(), "DSC": "udp receiver child=0 sock=127.0.0.1:%d" % self.port}]
        if cmd == "imconf.session_open":
            need(2, ["session_uri", "kind"])
            uri, kind, group = args[0], args[1], (args[2] if len(args) > 2 and args[2] != "-" else "")
            if uri_key(uri) is None:
                raise RpcError(400, "bad session_uri")
            if kind not in KINDS:
                raise RpcError(400, "bad kind: %s" % kind)
            if kind in ("pre-defined", "chat", "restricted-chat") and not group:
                raise RpcError(400, "group_uri is required for kind %s" % kind)
            if uri_key(uri) in self.sessions:
                raise RpcError(409, "session_uri already open: %s" % uri)
            self.sessions[uri_key(uri)] = {"uri": uri, "kind": kind, "group": group, "participants": {},
                                           "info": {}, "entities": {}, "next_anon": 1}
            if group:
                self.aliases[uri_key(group)] = uri_key(uri)
            return []
        if cmd == "imconf.session_close":
            need(1, ["session_uri"])
            session = self.sessions.pop(uri_key(args[0]), None)
            if session is None:
                raise RpcError(404, "no such session_uri: %s" % args[0])
            if session["group"]:
                self.aliases.pop(uri_key(session["group"]), None)
            for sub in [s for s in self.subs.values() if s.skey == uri_key(args[0])]:
                self.terminate(sub, "noresource")                                               # R67
            return []
        if cmd == "imconf.participant":
            need(3, ["session_uri", "aoia", "status"])
            session = self.sessions.get(uri_key(args[0]))
            if session is None:
                raise RpcError(404, "no such session_uri: %s" % args[0])
            aoia, status = args[1], args[2]
            if status not in STATUSES:
                raise RpcError(400, "bad status: %s" % status)
            opt = [(x if x not in ("", "-") else None) for x in args[3:8]] + [None] * 5
            if status == "disconnected":
                if aoia not in session["participants"]:
                    return []  # documented no-op
                del session["participants"][aoia]
            else:
                session["participants"][aoia] = status
                if any(opt[:5]) or aoia not in session["info"]:
                    session["info"][aoia] = {"role": opt[0] or "joined", "listed": opt[1], "from": opt[2],
                                             "privacy": opt[3] == "1", "nick": opt[4]}
            entity = self.entity(session, aoia)
            for sub in [s for s in self.subs.values() if s.skey == uri_key(args[0])]:
                if status == "disconnected" and sub.aoia == aoia:
                    self.terminate(sub, "noresource")                                           # R68
                else:
                    self.changed(sub, entity, status)
            return []
        if cmd == "imconf.sessions":
            return [{"uri": s["uri"], "kind": s["kind"], "group": s["group"] or "-",
                     "participants": len(s["participants"]),
                     "subscriptions": sum(1 for x in self.subs.values() if x.skey == k)}
                    for k, s in self.sessions.items()]
        if cmd == "imconf.subscriptions":
            only = uri_key(args[0]) if args else None
            now = time.monotonic()
            return [{"session": s.session, "subscriber": s.aoia, "call_id": s.call_id,
                     "expires_in": max(0, int(s.expires_at - now)), "version": s.version,
                     "notifies_sent": s.notifies_sent, "notify_in_flight": 1 if s.inflight else 0}
                    for s in self.subs.values() if only is None or s.skey == only]
        if cmd == "imconf.stats":
            return [dict(self.stats) or {"subscribes": 0}]
        raise RpcError(500, "command %s not found" % cmd)


class RpcError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


# ---------------------------------------------------------------- kamcmd look-alike client

def rpc_client(path, cmd, args):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(path)
    except OSError as e:
        print("ERROR: connecting to %s: %s" % (path, e), file=sys.stderr)
        return 255
    s.sendall((json.dumps({"cmd": cmd, "args": args}) + "\n").encode())
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    resp = json.loads(buf.decode())
    if not resp["ok"]:
        print("error: %d - %s" % (resp["code"], resp["message"]))
        return 0  # kamcmd exits 0 on an RPC error, too
    for item in resp["result"]:
        if isinstance(item, dict):
            print("{")
            for k, v in item.items():
                print("\t%s: %s" % (k, v))
            print("}")
        else:
            print(item)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sp = p.add_subparsers(dest="what", required=True)
    s = sp.add_parser("serve")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--rundir", required=True)
    s.add_argument("--server-contact", required=True)
    s.add_argument("--factory", default="sip:factory@127.0.0.1")
    s.add_argument("--min-expires", type=int, default=60)
    s.add_argument("--max-expires", type=int, default=3600)
    s.add_argument("--default-expires", type=int, default=3600)
    s.add_argument("--min-notify-interval-ms", type=int, default=1000)
    s.add_argument("--panic-user", default="")
    s.add_argument("--trust-from", type=int, default=0)
    s.add_argument("--max-subs-per-user", type=int, default=4)
    s.add_argument("--max-pending-changes", type=int, default=200)
    s.add_argument("--fr-timer-ms", type=int, default=30000)
    r = sp.add_parser("rpc")
    r.add_argument("sock")
    r.add_argument("cmd")
    r.add_argument("args", nargs="*")
    a = p.parse_args()
    if a.what == "rpc":
        sys.exit(rpc_client(a.sock, a.cmd, a.args))
    if BUG and BUG not in BUGS:
        sys.exit("unknown IMCONF_FAKE_BUG %r; known: %s" % (BUG, ", ".join(sorted(BUGS))))
    Server(a).run()


if __name__ == "__main__":
    main()
