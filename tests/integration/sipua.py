"""A small many-dialog SIP UA over UDP on 127.0.0.1 for the robustness tests (docs/robustness.md).

SIPp runs one scenario per call; the robustness tests need things SIPp cannot express: byte-level
malformed requests (tests/integration/corpus.py), thousands of subscriptions held at once until shm
runs out, and a per-dialog choice of how NOTIFYs are answered (200, 481, never, or too late).

`Ua` owns one UDP socket and a receiver thread:
  - `send(key, data, branch)` sends a request and records every response to it under `key`
    (matched by the top Via branch, else by Call-ID);
  - every NOTIFY it receives is answered according to `notify_policy(call_id)`: "200", "481",
    "ignore" (never answered), or ("late", seconds) (answered 200 after that delay);
  - `notifies[call_id]` lists (cseq, Subscription-State) of each NOTIFY received (retransmissions
    once).
python3 standard library only.
"""

import random
import re
import socket
import threading
import time

_HDR_CACHE = {}


def header(text, name, compact=None):
    """First value of header `name` (or its compact form) in a message's head, else None."""
    names = [re.escape(name)] + ([re.escape(compact)] if compact else [])
    key = tuple(names)
    rx = _HDR_CACHE.get(key)
    if rx is None:
        rx = _HDR_CACHE[key] = re.compile(r"^(?:%s)[ \t]*:[ \t]*(.*?)\r?$" % "|".join(names), re.M | re.I)
    m = rx.search(text)
    return m.group(1) if m else None


def top_branch(text):
    via = header(text, "Via", "v") or ""
    m = re.search(r"branch=([^;,\s]+)", via)
    return m.group(1) if m else None


class Ua:
    def __init__(self, server_port, local_port, notify_policy=None):
        self.server = ("127.0.0.1", server_port)
        self.port = local_port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", local_port))
        self.sock.settimeout(0.1)
        self.notify_policy = notify_policy or (lambda call_id: "200")
        self.lock = threading.Lock()
        self.by_branch = {}      # branch -> key
        self.by_callid = {}      # call-id -> key
        self.responses = {}      # key -> [(code, reason, raw head)]
        self.final = {}          # key -> threading-free flag: first final code
        self.notifies = {}       # call-id -> [(cseq, subscription-state)]
        self.notify_msgs = {}    # call-id -> [(head, body)] (retransmissions once)
        self._seen_notify = set()
        self.late = []           # (due time, bytes) of late NOTIFY answers
        self.stray = 0           # responses matching nothing
        self.running = True
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    # ------------------------------------------------------------------ sending
    def send(self, key, data, branch=None, call_id=None):
        with self.lock:
            if branch:
                self.by_branch[branch] = key
            if call_id:
                self.by_callid[call_id] = key
            self.responses.setdefault(key, [])
        self.sock.sendto(data, self.server)

    def resend(self, data):
        self.sock.sendto(data, self.server)

    def final_code(self, key):
        return self.final.get(key)

    def close(self):
        self.running = False
        self.thread.join(timeout=2)
        self.sock.close()

    # ------------------------------------------------------------------ receiving
    def _loop(self):
        while self.running:
            now = time.time()
            if self.late:
                due = [x for x in self.late if x[0] <= now]
                if due:
                    self.late = [x for x in self.late if x[0] > now]
                    for _, data in due:
                        try:
                            self.sock.sendto(data, self.server)
                        except OSError:
                            pass
            try:
                data, addr = self.sock.recvfrom(70000)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                self._handle(data, addr)
            except Exception:  # a malformed reply must not stop the UA; it shows as "no answer"
                self.stray += 1

    def _handle(self, data, addr):
        head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
        first = head.split("\r\n", 1)[0]
        if first.startswith("SIP/2.0 "):
            parts = first.split(" ", 2)
            code = int(parts[1])
            reason = parts[2] if len(parts) > 2 else ""
            with self.lock:
                key = self.by_branch.get(top_branch(head))
                if key is None:
                    key = self.by_callid.get(header(head, "Call-ID", "i"))
                if key is None:
                    self.stray += 1
                    return
                self.responses[key].append((code, reason, head))
                if code >= 200 and key not in self.final:
                    self.final[key] = code
            return
        if first.startswith("NOTIFY "):
            call_id = header(head, "Call-ID", "i") or ""
            cseq = header(head, "CSeq") or ""
            k = (call_id, cseq, top_branch(head))
            with self.lock:
                if k not in self._seen_notify:
                    self._seen_notify.add(k)
                    self.notifies.setdefault(call_id, []).append((cseq, header(head, "Subscription-State") or ""))
                    body = data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in data else b""
                    self.notify_msgs.setdefault(call_id, []).append((head, body))
            policy = self.notify_policy(call_id)
            if policy == "ignore":
                return
            code, reason = (481, "Call/Transaction Does Not Exist") if policy == "481" else (200, "OK")
            reply = response_to(head, code, reason)
            if isinstance(policy, tuple) and policy[0] == "late":
                with self.lock:
                    self.late.append((time.time() + policy[1], reply))
                return
            self.sock.sendto(reply, addr)
            return
        # any other request (none expected): answer 200 so that nothing retransmits forever
        if re.match(r"^[A-Z]+ ", first) and not first.startswith("ACK "):
            self.sock.sendto(response_to(head, 200, "OK"), addr)


def response_to(head, code, reason):
    lines = head.split("\r\n")
    vias = [l for l in lines if re.match(r"^(Via|v)[ \t]*:", l, re.I)]
    keep = []
    for name, compact in (("From", "f"), ("To", "t"), ("Call-ID", "i"), ("CSeq", None)):
        v = header(head, name, compact)
        if v is not None:
            keep.append("%s: %s" % (name, v))
    return ("\r\n".join(["SIP/2.0 %d %s" % (code, reason)] + vias + keep + ["Content-Length: 0", "", ""])).encode()


# ---------------------------------------------------------------------- requests

def subscribe(*, ruri, subscriber, local_port, call_id, branch, from_tag, cseq=1, expires=60, to_tag=None,
              event="conference", extra=(), accept_contact="*;+g.oma.sip-im"):
    """A SUBSCRIBE that passes every check of R1-R14 (docs/conformance.md) for a connected participant.
    `accept_contact` None: no Accept-Contact (a generic RFC 4575 client); `extra`: more header lines."""
    user = subscriber.split(":", 1)[1].split("@", 1)[0]
    lines = ["SUBSCRIBE %s SIP/2.0" % ruri,
             "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=%s;rport" % (local_port, branch),
             "Max-Forwards: 70",
             "From: <%s>;tag=%s" % (subscriber, from_tag),
             "To: <%s>%s" % (ruri, ";tag=%s" % to_tag if to_tag else ""),
             "Call-ID: %s" % call_id,
             "CSeq: %d SUBSCRIBE" % cseq,
             "Contact: <sip:%s@127.0.0.1:%d>" % (user, local_port),
             "Event: %s" % event,
             "Accept: application/conference-info+xml",
             ] + (["Accept-Contact: %s" % accept_contact] if accept_contact else []) + [
             "P-Asserted-Identity: <%s>" % subscriber,
             "Expires: %d" % expires] + list(extra) + ["Content-Length: 0", "", ""]
    return "\r\n".join(lines).encode()


def new_branch(rng=random):
    return "z9hG4bK-ua-%016x" % rng.getrandbits(64)


def to_tag_of(head):
    m = re.search(r";\s*tag=([^;>\s]+)", header(head, "To", "t") or "")
    return m.group(1) if m else None


class Dialogs:
    """Subscriptions held by one Ua: subscribe many, refresh, unsubscribe, all over UDP with
    retransmissions (500 ms, doubling) until a final answer or the deadline."""

    def __init__(self, ua, ruri, subscriber, prefix, **headers):
        """`headers`: `extra` and `accept_contact` of every SUBSCRIBE (see `subscribe`)."""
        self.ua, self.ruri, self.subscriber, self.prefix = ua, ruri, subscriber, prefix
        self.headers = headers
        self.rng = random.Random(prefix)
        self.dialogs = {}   # call_id -> {"from_tag", "to_tag", "cseq"}
        self.n = 0

    def _request_all(self, reqs, timeout=8.0, window=64):
        """reqs: [(key, bytes, branch, call_id)]; returns {key: final code or None}."""
        out = {}
        pending = list(reqs)
        live = {}
        while pending or live:
            while pending and len(live) < window:
                key, data, branch, cid = pending.pop(0)
                self.ua.send(key, data, branch=branch, call_id=cid)
                live[key] = [data, time.time(), 0.5, time.time() + timeout]
            time.sleep(0.005)
            now = time.time()
            for key in list(live):
                code = self.ua.final_code(key)
                data, sent, rto, deadline = live[key]
                if code is not None or now > deadline:
                    out[key] = code
                    del live[key]
                elif now - sent > rto:
                    self.ua.resend(data)
                    live[key] = [data, now, min(rto * 2, 4.0), deadline]
        return out

    def open(self, count, expires=300, window=64):
        """`count` new subscriptions; returns {call_id: final code}. Dialogs answered 2xx are kept."""
        reqs = []
        for _ in range(count):
            self.n += 1
            cid = "%s-%d@127.0.0.1" % (self.prefix, self.n)
            ft = "ft-%x" % self.rng.getrandbits(40)
            br = new_branch(self.rng)
            self.dialogs[cid] = {"from_tag": ft, "to_tag": None, "cseq": 1}
            data = subscribe(ruri=self.ruri, subscriber=self.subscriber, local_port=self.ua.port, call_id=cid,
                             branch=br, from_tag=ft, expires=expires, **self.headers)
            reqs.append((("open", cid), data, br, cid))
        res = self._request_all(reqs, window=window)
        out = {}
        for (_, cid), code in res.items():
            out[cid] = code
            if code is not None and 200 <= code < 300:
                head = [r for r in self.ua.responses[("open", cid)] if r[0] == code][0][2]
                self.dialogs[cid]["to_tag"] = to_tag_of(head)
            else:
                del self.dialogs[cid]
        return out

    def refresh(self, call_ids, expires, window=64):
        """In-dialog SUBSCRIBE (refresh, or unsubscribe with expires=0); {call_id: final code}."""
        reqs = []
        for cid in call_ids:
            d = self.dialogs[cid]
            d["cseq"] += 1
            br = new_branch(self.rng)
            data = subscribe(ruri=self.ruri, subscriber=self.subscriber, local_port=self.ua.port, call_id=cid,
                             branch=br, from_tag=d["from_tag"], to_tag=d["to_tag"], cseq=d["cseq"], expires=expires,
                             **self.headers)
            reqs.append((("refresh", cid, d["cseq"]), data, br, None))
        res = self._request_all(reqs, window=window)
        out = {k[1]: v for k, v in res.items()}
        if expires == 0:
            for cid, code in out.items():
                if code is not None and (200 <= code < 300 or code == 481):
                    self.dialogs.pop(cid, None)
        return out
