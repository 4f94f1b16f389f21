"""The malformed-SUBSCRIBE and bad-RPC corpus of the robustness tests (docs/robustness.md).

Deterministic from a seed: `sip_cases(seed, n, port)` gives n requests, each a valid fetch
(`Expires: 0`, so even a request the module accepts leaves no state) with one or two mutations
drawn from the categories below; `rpc_cases(seed, n)` gives n RPC calls that each carry at least
one invalid argument; `cluster_cases(seed, n, secret, node_id)` gives n hostile KDMQ bodies for
the cluster (see "cluster (R96)" below).

Every case says what may answer it:
  - `must_answer`: the request reaches the routing script (Kamailio's core parsed its first line
    and Via, tm could build a transaction from From/To/Call-ID/CSeq), so the module or the cfg
    must give a final response within the timeout;
  - otherwise "may be dropped": Kamailio's core (or tm, before the script runs) may discard it
    silently (a broken first line or Via, an empty or non-SIP datagram, a Content-Length beyond
    the datagram, a missing or unparsable From/To/Call-ID/CSeq). An answer is fine too, but it
    must still be an allowed code.
  - `allowed`: the set of final codes that are correct for it (R1-R14, docs/conformance.md: the first failing
    check decides, so the union over its mutations); 200 only when every mutation leaves a valid
    request (or is one the rules tolerate, noted "tolerated").
python3 standard library only.
"""

import hmac
import random
import re

# the seal as a node writes it (cluster.py): the corpus builds good and damaged ones from it
from cluster import MAGIC as CL_MAGIC, mac as cl_mac, seal as cl_seal, seal_raw as cl_seal_raw  # noqa: F401

SESSION = "sip:conf1@127.0.0.1"
ALICE = "sip:alice@127.0.0.1"

# the codes of the pipeline steps (R1-R14, docs/conformance.md) and of the cfg (405 for other methods)
BAD = {400}
EVENT = {489, 400}
DIALOG = {481}
EXIST = {404, 400}
TAG = {403}
AUTH = {403}
ACCEPT = {406}
EXPIRES = {423, 400}
OK = {200}


class Req:
    """A request as parts, serialized with a correct Content-Length unless told otherwise."""

    def __init__(self, token, port):
        self.port = port
        self.method = b"SUBSCRIBE"
        self.ruri = SESSION.encode()
        self.version = b"SIP/2.0"
        self.branch = ("z9hG4bK-fz-%s" % token).encode()
        self.call_id = ("fz-%s@127.0.0.1" % token).encode()
        self.headers = [
            [b"Via", b"SIP/2.0/UDP 127.0.0.1:%d;branch=%s;rport" % (port, self.branch)],
            [b"Max-Forwards", b"70"],
            [b"From", b"<%s>;tag=fz%s" % (ALICE.encode(), token.encode())],
            [b"To", b"<%s>" % SESSION.encode()],
            [b"Call-ID", self.call_id],
            [b"CSeq", b"1 SUBSCRIBE"],
            [b"Contact", b"<sip:alice@127.0.0.1:%d>" % port],
            [b"Event", b"conference"],
            [b"Accept", b"application/conference-info+xml"],
            [b"Accept-Contact", b"*;+g.oma.sip-im"],
            [b"P-Asserted-Identity", b"<%s>" % ALICE.encode()],
            [b"Expires", b"0"],
        ]
        self.body = b""
        self.content_length = None   # None: computed
        self.eol = b"\r\n"
        self.raw = None              # a byte-level mutation replaces everything
        self.post = []               # byte-level edits applied after serialization

    def set(self, name, value):
        """Replaces every header `name` (case-insensitive) by one with `value` (None removes)."""
        low = name.lower().encode()
        at = [i for i, (n, _) in enumerate(self.headers) if n.lower() == low]
        for i in reversed(at):
            del self.headers[i]
        if value is not None:
            self.headers.insert(at[0] if at else len(self.headers), [name.encode(), value])

    def get(self, name):
        for n, v in self.headers:
            if n.lower() == name.lower().encode():
                return v
        return None

    def add(self, name, value, count=1):
        for _ in range(count):
            self.headers.append([name.encode() if isinstance(name, str) else name, value])

    def bytes(self):
        if self.raw is not None:
            return self.raw
        eol = self.eol
        out = [self.method + b" " + self.ruri + b" " + self.version]
        for n, v in self.headers:
            out.append(n + b": " + v)
        cl = b"%d" % len(self.body) if self.content_length is None else self.content_length
        if cl is not False:
            out.append(b"Content-Length: " + cl)
        data = eol.join(out) + eol + eol + self.body
        for f in self.post:
            data = f(data)
        return data


class Case:
    __slots__ = ("key", "data", "category", "names", "must_answer", "allowed", "branch", "call_id")

    def __init__(self, key, data, category, names, must_answer, allowed, branch, call_id):
        self.key, self.data, self.category, self.names = key, data, category, names
        self.must_answer, self.allowed, self.branch, self.call_id = must_answer, allowed, branch, call_id


def junk(rng, n, alphabet=None):
    if alphabet is None:
        return bytes(rng.getrandbits(8) for _ in range(n))
    return bytes(rng.choice(alphabet) for _ in range(n))


NON_UTF8 = [b"\xff", b"\xfe\xfe", b"\xc3\x28", b"\xa0\xa1", b"\xe2\x28\xa1", b"\xf0\x28\x8c\xbc", b"\xed\xa0\x80",
            b"\xc0\xaf", b"\x80"]
TOKEN = b"abcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~"
PRINTABLE = bytes(range(0x21, 0x7f))
HIGH = bytes(range(0x80, 0x100))


def nonutf8(rng):
    return b"".join(rng.choice(NON_UTF8) for _ in range(rng.randint(1, 4)))


# ---------------------------------------------------------------------------- mutations
# Each mutation: (category, name, function(req, rng), allowed codes, may_drop)
# `allowed` None means "leaves the request valid": it contributes 200 only if nothing else fails.

MUTATIONS = []


def mutation(category, name, allowed, may_drop=False):
    def deco(fn):
        MUTATIONS.append((category, name, fn, allowed, may_drop))
        return fn
    return deco


def _event(value):
    return lambda r, g: r.set("Event", value)


for _name, _value in [("missing", None), ("presence", b"presence"), ("conference-x", b"conference-x"),
                      ("upper-case", b"Conference"), ("empty", b""), ("only-params", b";id=1"),
                      ("semicolons", b";;;;"), ("comma-list", b"conference, presence"),
                      ("quoted", b"\"conference\""), ("space-inside", b"conf erence"),
                      ("nul", b"conf\x00erence"), ("tab-only", b"\t")]:
    mutation("event", _name, EVENT)(_event(_value))
mutation("event", "huge-package", EVENT)(lambda r, g: r.set("Event", b"c" * g.randint(2000, 20000)))
mutation("event", "non-utf8", EVENT)(lambda r, g: r.set("Event", nonutf8(g)))
mutation("event", "random-printable", EVENT | OK)(lambda r, g: r.set("Event", junk(g, g.randint(1, 40), PRINTABLE)))
# valid variants: the compact form and an id parameter (a fetch, no state)
mutation("event", "compact-form", None)(lambda r, g: (r.set("Event", None), r.add("o", b"conference")))
mutation("event", "id-param", None)(lambda r, g: r.set("Event", b"conference;id=" + junk(g, 8, TOKEN)))
mutation("event", "id-non-utf8", EVENT | OK)(lambda r, g: r.set("Event", b"conference;id=" + nonutf8(g)))
mutation("event", "second-event-presence", EVENT | OK)(lambda r, g: r.add("Event", b"presence"))

for _name, _value in [("word", b"soon"), ("suffix", b"12abc"), ("negative", b"-1"), ("empty", b""),
                      ("hex", b"0x10"), ("float", b"1.5"), ("exponent", b"1e3"), ("plus", b"+5"),
                      ("one-below-min", b"1"), ("spaces-inside", b"1 0"), ("nul", b"\x000"),
                      ("non-utf8", b"\xff\xfe")]:
    mutation("expires", _name, EXPIRES)(lambda r, g, v=_value: r.set("Expires", v))
mutation("expires", "huge-digits", EXPIRES | OK)(
    lambda r, g: r.set("Expires", b"0" * g.randint(30, 4000)))  # zero, written long: a fetch or 400
mutation("expires", "duplicate-1", EXPIRES | OK)(lambda r, g: r.add("Expires", b"1"))

for _name, _value in [("pidf", b"application/pidf+xml"), ("text", b"text/plain"), ("empty-list", b","),
                      ("garbage", b"/////"), ("params-only", b";q=1"),
                      ("other-subtype", b"application/conference-info+json")]:
    mutation("accept", _name, ACCEPT | BAD)(lambda r, g, v=_value: r.set("Accept", v))
mutation("accept", "q0", ACCEPT | OK)(lambda r, g: r.set("Accept", b"application/conference-info+xml;q=0"))  # tolerated
mutation("accept", "non-utf8", ACCEPT | BAD)(lambda r, g: r.set("Accept", b"application/" + nonutf8(g)))
mutation("accept", "huge-list", ACCEPT | BAD)(
    lambda r, g: r.set("Accept", b", ".join(b"application/x-%d" % i for i in range(g.randint(100, 1500)))))
mutation("accept", "wildcard", None)(lambda r, g: r.set("Accept", b"*/*"))
mutation("accept", "absent", None)(lambda r, g: r.set("Accept", None))

for _name, _value in [("missing", None), ("large-message-only", b"*;+g.oma.sip-im.large-message"),
                      ("prefix", b"*;+g.oma.sip-i"), ("false", b"*;+g.oma.sip-im=\"FALSE\""),
                      ("empty", b""), ("semicolons", b";;;;;"), ("other-tag", b"*;+g.3gpp.icsi-ref=\"x\""),
                      ("unbalanced-quote", b"*;+g.oma.sip-im.x=\"TRUE")]:
    mutation("accept-contact", _name, TAG | BAD)(lambda r, g, v=_value: r.set("Accept-Contact", v))
mutation("accept-contact", "huge-params", TAG | BAD)(
    lambda r, g: r.set("Accept-Contact", b"*" + b"".join(b";p%d=v" % i for i in range(g.randint(200, 3000)))))
mutation("accept-contact", "many-lines", TAG | BAD)(
    lambda r, g: (r.set("Accept-Contact", None), r.add("Accept-Contact", b"*;audio", g.randint(20, 200))))
mutation("accept-contact", "non-utf8", TAG | BAD)(lambda r, g: r.set("Accept-Contact", b"*;+g.oma." + nonutf8(g)))
mutation("accept-contact", "compact-upper", None)(
    lambda r, g: (r.set("Accept-Contact", None), r.add("a", b"*;+G.OMA.SIP-IM")))

for _name, _value in [("missing", None), ("empty-angle", b"<>"), ("garbage", b"garbage"), ("no-user", b"<sip:>"),
                      ("stranger", b"<sip:mallory@127.0.0.1>"), ("tel-stranger", b"<tel:+15550000>"),
                      ("unbalanced", b"<sip:alice@127.0.0.1"), ("only-display", b"\"Alice\""),
                      ("mailto", b"<mailto:alice@127.0.0.1>")]:
    mutation("pai", _name, AUTH | BAD)(lambda r, g, v=_value: r.set("P-Asserted-Identity", v))
mutation("pai", "non-utf8-user", AUTH | BAD)(
    lambda r, g: r.set("P-Asserted-Identity", b"<sip:" + nonutf8(g) + b"@127.0.0.1>"))
mutation("pai", "huge", AUTH | BAD)(
    lambda r, g: r.set("P-Asserted-Identity", b"<sip:" + b"m" * g.randint(1000, 30000) + b"@127.0.0.1>"))
mutation("pai", "many-strangers", AUTH | BAD)(
    lambda r, g: (r.set("P-Asserted-Identity", None),
                  r.add("P-Asserted-Identity", b"<sip:mallory@127.0.0.1>", g.randint(2, 100))))
mutation("pai", "no-angle", None)(lambda r, g: r.set("P-Asserted-Identity", ALICE.encode()))

mutation("huge", "filler-value", OK | BAD)(lambda r, g: r.add("X-Huge", b"x" * g.randint(1000, 50000)))
mutation("huge", "call-id", OK | BAD)(
    lambda r, g: r.set("Call-ID", r.call_id + b"-" + b"c" * g.randint(500, 8000)))
mutation("huge", "from-tag", OK | BAD)(
    lambda r, g: r.set("From", b"<%s>;tag=%s" % (ALICE.encode(), b"t" * g.randint(500, 8000))))
mutation("huge", "contact", OK | BAD)(
    lambda r, g: r.set("Contact", b"<sip:%s@127.0.0.1:%d>" % (b"u" * g.randint(500, 8000), r.port)))
mutation("huge", "display-name", OK | BAD)(
    lambda r, g: r.set("From", b"\"%s\" <%s>;tag=fzd" % (b"D" * g.randint(500, 8000), ALICE.encode())))
mutation("repeated", "300-fillers", BAD)(lambda r, g: r.add("X-Filler", b"v", g.randint(257, 600)))
mutation("repeated", "100-fillers", OK | BAD)(lambda r, g: r.add("X-Filler", b"v", g.randint(1, 200)))
mutation("repeated", "events", EVENT | OK)(lambda r, g: r.add("Event", b"conference", g.randint(2, 100)))
mutation("repeated", "expires", EXPIRES | OK)(lambda r, g: r.add("Expires", b"0", g.randint(2, 100)))
mutation("repeated", "accepts", ACCEPT | OK)(lambda r, g: r.add("Accept", b"text/plain", g.randint(2, 100)))

# Kamailio's URI parser accepts empty parameters, and R2 ignores parameters (tolerated)
mutation("uri", "empty-params", EXIST | BAD | OK)(lambda r, g: setattr(r, "ruri", b"sip:conf1@127.0.0.1;;;;"))
for _name, _value in [("no-user-host", b"sip:"), ("at-only", b"sip:@"), ("no-host", b"sip:conf1@"),
                      ("bad-escape", b"sip:%zz@127.0.0.1"),
                      ("angle", b"<sip:conf1@127.0.0.1>"), ("tel", b"tel:+1"), ("http", b"http://x/y"),
                      ("unknown", b"sip:nobody@127.0.0.1"), ("factory", b"sip:factory@127.0.0.1"),
                      ("bad-port", b"sip:conf1@127.0.0.1:99999999"), ("ipv6-broken", b"sip:conf1@[::1"),
                      ("colon-only", b":"), ("non-utf8-user", b"sip:\xff\xfe@127.0.0.1")]:
    mutation("uri", _name, EXIST | BAD)(lambda r, g, v=_value: setattr(r, "ruri", v))
mutation("uri", "huge-user", EXIST | BAD)(lambda r, g: setattr(r, "ruri", b"sip:" + b"u" * g.randint(500, 30000) + b"@127.0.0.1"))
mutation("uri", "random", EXIST | BAD)(lambda r, g: setattr(r, "ruri", b"sip:" + junk(g, g.randint(1, 60), PRINTABLE)))
mutation("uri", "session-with-params", None)(lambda r, g: setattr(r, "ruri", SESSION.encode() + b";transport=udp;x=y"))
mutation("uri", "contact-garbage", BAD)(lambda r, g: r.set("Contact", b"<garbage"))
mutation("uri", "contact-missing", BAD)(lambda r, g: r.set("Contact", None))
mutation("uri", "contact-star", BAD)(lambda r, g: r.set("Contact", b"*"))

# CSeq that Kamailio's parser refuses: tm cannot build a transaction: may be dropped before the script
for _name, _value in [("word", b"abc SUBSCRIBE"), ("overflow", b"4294967296 SUBSCRIBE"), ("negative", b"-1 SUBSCRIBE"),
                      ("no-method", b"1"), ("empty", b""), ("missing", None)]:
    mutation("cseq", _name, BAD, may_drop=True)(lambda r, g, v=_value: r.set("CSeq", v))
mutation("cseq", "method-mismatch", BAD | OK)(lambda r, g: r.set("CSeq", b"1 NOTIFY"))  # tolerated
mutation("cseq", "zero", OK | BAD)(lambda r, g: r.set("CSeq", b"0 SUBSCRIBE"))
mutation("cseq", "max", OK | BAD)(lambda r, g: r.set("CSeq", b"4294967295 SUBSCRIBE"))  # tolerated
mutation("cseq", "trailing", BAD | OK, may_drop=True)(lambda r, g: r.set("CSeq", b"1 SUBSCRIBE extra"))


def _to_tag(value):
    return lambda r, g: r.set("To", b"<%s>;tag=%s" % (SESSION.encode(), value(g)))


mutation("in-dialog", "random-tag", DIALOG)(_to_tag(lambda g: junk(g, 12, TOKEN)))
mutation("in-dialog", "our-format-tag", DIALOG)(_to_tag(lambda g: b"i%x-%016x" % (g.randint(0, 63), g.getrandbits(64))))
mutation("in-dialog", "slot-beyond", DIALOG)(_to_tag(lambda g: b"i%x-%016x" % (g.randint(64, 0xfff), g.getrandbits(64))))
mutation("in-dialog", "slot-huge", DIALOG)(_to_tag(lambda g: b"iffffffffffffffffffff-1"))
mutation("in-dialog", "tag-non-utf8", DIALOG)(_to_tag(lambda g: b"i1-" + nonutf8(g)))
mutation("in-dialog", "refresh-unknown", DIALOG)(
    lambda r, g: (_to_tag(lambda g2: b"i2-%016x" % g2.getrandbits(64))(r, g), r.set("Expires", b"60"),
                  r.set("CSeq", b"%d SUBSCRIBE" % g.randint(2, 1000))))


def _method(m, allowed):
    def fn(r, g):
        r.method = m
        r.set("CSeq", b"1 " + m)
        _to_tag(lambda g2: b"i3-%016x" % g2.getrandbits(64))(r, g)
    return mutation("in-dialog", "method-" + m.decode().lower(), allowed)(fn)


_method(b"NOTIFY", {405, 481})
_method(b"BYE", {405, 481})
_method(b"INFO", {405, 481})
_method(b"PUBLISH", {405, 481, 489})

mutation("body", "text", OK | {400, 415})(lambda r, g: (r.set("Content-Type", b"text/plain"),
                                                         setattr(r, "body", b"hello")))
mutation("body", "binary", OK | {400, 415})(lambda r, g: (r.set("Content-Type", b"application/octet-stream"),
                                                           setattr(r, "body", junk(g, g.randint(1, 3000)))))
mutation("body", "no-content-type", OK | {400, 415})(lambda r, g: setattr(r, "body", junk(g, g.randint(1, 200), PRINTABLE)))
mutation("body", "large", OK | {400, 415})(lambda r, g: (r.set("Content-Type", b"application/xml"),
                                                          setattr(r, "body", b"<a>" * g.randint(1000, 15000))))
mutation("body", "content-length-short", OK | {400, 415})(
    lambda r, g: (setattr(r, "body", b"abcdef"), setattr(r, "content_length", b"3")))
mutation("body", "content-length-beyond", OK | BAD, may_drop=True)(
    lambda r, g: (setattr(r, "body", b"abc"), setattr(r, "content_length", b"%d" % g.randint(4, 100000))))
mutation("body", "content-length-garbage", OK | BAD, may_drop=True)(lambda r, g: setattr(r, "content_length", b"x1"))
mutation("body", "content-length-missing", OK | BAD)(lambda r, g: setattr(r, "content_length", False))

mutation("non-utf8", "from-display", OK | BAD)(
    lambda r, g: r.set("From", b"\"" + nonutf8(g) + b"\" <" + ALICE.encode() + b">;tag=nu8"))
mutation("non-utf8", "call-id", OK | BAD)(lambda r, g: r.set("Call-ID", r.call_id + nonutf8(g)))
# Kamailio's parser refuses such a header name, and then cannot build any reply (not even sl's)
mutation("non-utf8", "header-name", OK | BAD, may_drop=True)(lambda r, g: r.add(b"X-" + nonutf8(g), b"v"))
mutation("non-utf8", "header-value", OK | BAD)(lambda r, g: r.add("X-Bytes", nonutf8(g) + junk(g, 20, HIGH)))
# any byte at all (CR, LF and NUL too) can break the header section: may be dropped
mutation("non-utf8", "header-value-any-byte", OK | BAD, may_drop=True)(lambda r, g: r.add("X-Bytes", junk(g, 20)))
mutation("non-utf8", "contact-user", OK | BAD)(
    lambda r, g: r.set("Contact", b"<sip:" + nonutf8(g) + b"@127.0.0.1:%d>" % r.port))
mutation("non-utf8", "event-id", EVENT | OK)(lambda r, g: r.set("Event", b"conference;id=\xff\xfe"))

# structural damage: Kamailio's core (first line, Via) or tm (transaction key) may drop these silently
mutation("structure", "empty-datagram", BAD, may_drop=True)(lambda r, g: setattr(r, "raw", b""))
mutation("structure", "random-bytes", BAD, may_drop=True)(lambda r, g: setattr(r, "raw", junk(g, g.randint(1, 2000))))
mutation("structure", "crlf-only", BAD, may_drop=True)(lambda r, g: setattr(r, "raw", b"\r\n\r\n"))
mutation("structure", "bad-version", BAD, may_drop=True)(lambda r, g: setattr(r, "version", b"SIP/3.0"))
mutation("structure", "no-version", BAD, may_drop=True)(lambda r, g: setattr(r, "version", b""))
mutation("structure", "space-in-ruri", BAD | EXIST, may_drop=True)(lambda r, g: setattr(r, "ruri", b"sip:conf 1@127.0.0.1"))
# Kamailio matches method names case-insensitively, so `subscribe` is served (tolerated)
mutation("structure", "lower-method", {405} | BAD | OK, may_drop=True)(lambda r, g: setattr(r, "method", b"subscribe"))
mutation("structure", "no-via", BAD, may_drop=True)(lambda r, g: r.set("Via", None))
mutation("structure", "broken-via", BAD, may_drop=True)(lambda r, g: r.set("Via", b"SIP/2.0/UDP"))
mutation("structure", "no-from", BAD, may_drop=True)(lambda r, g: r.set("From", None))
mutation("structure", "no-to", BAD, may_drop=True)(lambda r, g: r.set("To", None))
mutation("structure", "no-call-id", BAD, may_drop=True)(lambda r, g: r.set("Call-ID", None))
mutation("structure", "from-garbage", BAD, may_drop=True)(lambda r, g: r.set("From", b"garbage;;tag"))
mutation("structure", "from-no-tag", BAD, may_drop=True)(lambda r, g: r.set("From", b"<" + ALICE.encode() + b">"))
mutation("structure", "header-no-colon", BAD, may_drop=True)(
    lambda r, g: r.post.append(lambda d: d.replace(b"\r\n", b"\r\nX-No-Colon-Line\r\n", 1)))
mutation("structure", "truncated", BAD, may_drop=True)(
    lambda r, g: r.post.append(lambda d: d[:g.randint(1, max(1, len(d) - 5))]))
mutation("structure", "nul-in-head", BAD, may_drop=True)(
    lambda r, g: r.post.append(lambda d: d[:60] + b"\x00" + d[60:]))
mutation("structure", "lf-only", OK | BAD, may_drop=True)(lambda r, g: setattr(r, "eol", b"\n"))
mutation("structure", "folded-header", OK | BAD, may_drop=True)(
    lambda r, g: r.set("Accept-Contact", b"*;\r\n +g.oma.sip-im"))
mutation("structure", "flip-bytes", OK | BAD | EVENT | EXIST | TAG | AUTH | ACCEPT | EXPIRES | DIALOG | {405},
         may_drop=True)(lambda r, g: r.post.append(lambda d, n=g.randint(1, 8): _flip(d, g, n)))


def _flip(data, rng, n):
    b = bytearray(data)
    for _ in range(n):
        if b:
            b[rng.randrange(len(b))] = rng.getrandbits(8)
    return bytes(b)


CATEGORIES = sorted({m[0] for m in MUTATIONS})


def sip_cases(seed, n, port):
    """n cases; every category is used (round robin over categories, a random mutation of it),
    and one case in three gets a second mutation of another category."""
    rng = random.Random(seed)
    by_cat = {c: [m for m in MUTATIONS if m[0] == c] for c in CATEGORIES}
    out = []
    for i in range(n):
        token = "%x-%d" % (seed, i)
        req = Req(token, port)
        picked = [rng.choice(by_cat[CATEGORIES[i % len(CATEGORIES)]])]
        if rng.random() < 1 / 3:
            other = rng.choice([c for c in CATEGORIES if c != picked[0][0]])
            picked.append(rng.choice(by_cat[other]))
        for m in picked:
            m[2](req, rng)
        if len(req.bytes()) > 65000 and len(picked) > 1:  # one UDP datagram: drop the second mutation
            picked = picked[:1]
            req = Req(token, port)
            picked[0][2](req, rng)
        failing = [m[3] for m in picked if m[3] is not None]
        allowed = set().union(*failing) if failing else set(OK)
        may_drop = any(m[4] for m in picked)
        out.append(Case(token, req.bytes(), picked[0][0], "+".join("%s/%s" % (m[0], m[1]) for m in picked),
                        not may_drop, allowed, req.branch.decode(), req.call_id.decode()))
    return out


# ---------------------------------------------------------------------------- RPC

GOOD_SESSION = SESSION
BAD_URIS = ["", b"sip:\xff\xfe@127.0.0.1", "garbage", "sip:", "sip:@", "tel:", "http://x", "sip:a b@c", "\u00ff\u00fe",
            "sip:@" + "u" * 900, ";;;", "sip:x@[::1", "1234", "<sip:x@y", "sip:x@y>", "sip:a@b\tc"]
# (accepted on purpose, so not here: a name-addr `<sip:x@y>`, a host-only `sip:x`, and escapes
# such as `%zz`: URIs are checked leniently, docs/robustness.md)
BAD_WORDS = ["", "bogus", "CONNECTED", "connected ", "ad_hoc", "Ad-Hoc", "x" * 900, "\u00e9t\u00e9", "0", "0-1",
             "99999999999999999999", "null"]


def rpc_cases(seed, n):
    """n RPC calls [(command, args)], each with at least one argument that must be refused, so
    that none may change state (the open session SESSION exists; sip:rpcfz@127.0.0.1 does not)."""
    rng = random.Random(seed ^ 0x5eed)
    other = "sip:rpcfz@127.0.0.1"
    gens = [
        lambda: ("imconf.session_open", [rng.choice(BAD_URIS), rng.choice(["ad-hoc", "one-to-one"])]),
        lambda: ("imconf.session_open", [other, rng.choice(BAD_WORDS)]),
        lambda: ("imconf.session_open", [other, rng.choice(["pre-defined", "chat", "restricted-chat"])]),
        lambda: ("imconf.session_open", [other, rng.choice(["pre-defined", "chat"]), rng.choice(BAD_URIS)]),
        lambda: ("imconf.session_open", [other, "ad-hoc", "sip:grp@127.0.0.1"]),
        lambda: ("imconf.session_open", [GOOD_SESSION, "ad-hoc"]),
        lambda: ("imconf.session_open", [other, "ad-hoc", "-", "extra"]),
        lambda: ("imconf.session_open", []),
        lambda: ("imconf.session_close", [rng.choice(BAD_URIS + [other])]),
        lambda: ("imconf.session_close", []),
        lambda: ("imconf.participant", [rng.choice(BAD_URIS), ALICE, "connected"]),
        lambda: ("imconf.participant", [other, ALICE, "connected"]),
        lambda: ("imconf.participant", [GOOD_SESSION, rng.choice(BAD_URIS[1:]), "connected"]),
        lambda: ("imconf.participant", [GOOD_SESSION, "sip:zed@127.0.0.1", rng.choice(BAD_WORDS)]),
        lambda: ("imconf.participant", [GOOD_SESSION, "sip:zed@127.0.0.1", "connected", rng.choice(BAD_WORDS[1:])]),
        lambda: ("imconf.participant", [GOOD_SESSION, "sip:zed@127.0.0.1", "connected", "joined",
                                        rng.choice(BAD_URIS[1:])]),
        lambda: ("imconf.participant", [GOOD_SESSION, "sip:zed@127.0.0.1", "connected", "joined", "-",
                                        rng.choice(BAD_URIS[1:])]),
        lambda: ("imconf.participant", [GOOD_SESSION, "sip:zed@127.0.0.1", "connected", "joined", "-", "-",
                                        rng.choice(["2", "yes", "x-5", "x" * 100, "\u00ff"])]),
        lambda: ("imconf.participant", [GOOD_SESSION, "sip:zed@127.0.0.1", "connected", "joined", "-", "-", "0",
                                        "nick\u0001ctl"]),
        lambda: ("imconf.participant", [GOOD_SESSION, "sip:zed@127.0.0.1", "connected", "joined", "-", "-", "0",
                                        "-", "departed"]),  # a method without status disconnected
        lambda: ("imconf.participant", [GOOD_SESSION, "sip:zed@127.0.0.1", "connected"] + ["-"] * 10),  # 13
        lambda: ("imconf.participant", [GOOD_SESSION, "sip:zed@127.0.0.1", "connected"] + ["-"] * 8
                 + [rng.choice(["noon", "-5", "2026-12-07T00:00:00Z", "12:00", "1e9x"])]),   # R95: when
        lambda: ("imconf.participant", [GOOD_SESSION]),
        lambda: ("imconf.subscriptions", [rng.choice([u for u in BAD_URIS[1:] if isinstance(u, str)]) + "x", "extra"]),
        lambda: ("imconf.sessions", ["extra"]),
        lambda: ("imconf.stats", ["extra"]),
    ]
    out = []
    for i in range(n):
        out.append(gens[i % len(gens)]() if i < len(gens) else rng.choice(gens)())
    return out


def run_sip(ua, cases, *, window=48, timeout=5.0):
    """Sends every case through `ua` (a sipua.Ua), at most `window` unanswered at once; a
    must-answer case is retransmitted after 0.5, 1 and 2 s (RFC 3261 timer E; tm answers a
    retransmission with the same reply), any case is given up after `timeout` s.
    Returns {case key: first final code or None}."""
    import time
    results = {}
    pending = list(cases)
    live = {}
    while pending or live:
        while pending and len(live) < window:
            c = pending.pop(0)
            try:
                ua.send(c.key, c.data, branch=c.branch, call_id=c.call_id)
            except OSError:  # EMSGSIZE and the like: the case could not be sent at all
                results[c.key] = "unsendable"
                continue
            now = time.time()
            live[c.key] = (c, now, 0.5, now + (timeout if c.must_answer else min(timeout, 2.0)))
        time.sleep(0.002)
        now = time.time()
        for key in list(live):
            c, sent, rto, deadline = live[key]
            code = ua.final_code(key)
            if code is not None or now > deadline:
                results[key] = code
                del live[key]
            elif c.must_answer and now - sent > rto and c.data:
                ua.resend(c.data)
                live[key] = (c, now, rto * 2, deadline)
    return results


def judge(cases, results):
    """Sorts the outcome: {"answered": {code: n}, "dropped_ok": [..], "unanswered": [..],
    "wrong": [(case, code)], "by_category": {cat: {code: n}}}."""
    out = {"answered": {}, "dropped_ok": [], "unanswered": [], "wrong": [], "by_category": {}}
    for c in cases:
        code = results.get(c.key)
        cat = out["by_category"].setdefault(c.category, {})
        cat[code] = cat.get(code, 0) + 1
        if code is None or code == "unsendable":
            (out["unanswered"] if c.must_answer else out["dropped_ok"]).append(c)
            continue
        out["answered"][code] = out["answered"].get(code, 0) + 1
        if code not in c.allowed:
            out["wrong"].append((c, code))
    return out


# ---------------------------------------------------------------------------- cluster (R96)
# `cluster_cases(seed, n, secret, node_id)`: n KDMQ bodies for the dmq peer "imconf", in the order
# they are to be sent, as the robustness_corpus_cluster test plays a hostile sender (a non-node
# address; some bodies sealed with the cluster's secret, as a node of the cluster would, under the
# sender id `node_id`). Four categories, each with the answers it may get:
#   1 unauthenticated (403, counted unsigned or bad_mac): random bytes, empty, the old
#     imconf-cluster/1 form, truncated or damaged seals, MAC lines of the wrong length or not hex,
#     a valid seal with a byte changed, added or removed, a wrong secret, the MAC of another body,
#     non-UTF-8, ~60 kB bodies, and a valid MAC over a malformed sender line;
#   2 authentic but stale or replayed (403, counted stale or replay): 31..3600 s off (both ways),
#     exact resends of earlier authentic cases, an authentic new body reusing a counter, a
#     counter below the replay window;
#   3 authentic, fresh, operations malformed (400, counted malformed, nothing applied): unknown
#     operations, wrong field counts, odd-length or bad hex, missing or bad stamps, very long
#     lines, NUL, non-UTF-8; often after valid operations that would change state;
#   4 authentic, fresh, well formed but hostile (200, or 400; must not crash): participant changes
#     for unknown sessions, invalid status/role/privacy/nick values, URIs of junk bytes, session
#     and subscription records of random bytes, unknown subscriptions, invalid kinds, extreme
#     stamps (0, 2^64-1, ...), and valid participant changes of CL_TARGET whose URIs and texts a
#     NOTIFY body must escape (or cannot carry: U+FFFF). Never B (goodbye) or Q (sync request).
#     Some values hold CR/LF then CL_FORGED_LINE: a log line must not start with it.
# The cases come in three phases: A (categories 1-3: nothing may change), B (category 4), C
# (category 2: exact resends of phase B's cases). Each authentic case has its own counter,
# increasing in sending order; its time is the sending time (`ClusterCase.build(now_ms)`).
# `cluster_open` and `cluster_decode` mirror src/core/cluster_auth.rs (Keys::open) and
# src/core/cluster.rs (decode), so that every case's category is checked, not assumed.

CL_MAX_SKEW_MS = 30_000
CL_WINDOW = 1024
CL_BASE_COUNTER = 1 << 32       # counters below it are never used: "below the window" cases
CL_TARGET = "sip:fuzz-target@127.0.0.1"   # a session the test opens (with a subscriber) before
CL_MEMBER = "sip:alice@127.0.0.1"         # its participant (and the subscriber)
CL_CATEGORIES = {1: "unauthenticated", 2: "stale-or-replayed", 3: "malformed-ops", 4: "hostile-content"}
CL_ALLOWED = {1: {403}, 2: {403}, 3: {400}, 4: {200, 400}}
CL_FORGED_LINE = b"FAKE-LOG-LINE-imconf-fuzz"  # after a newline inside values that may be logged
_HEX = frozenset(b"0123456789abcdefABCDEF")   # an operation's fields (unhex)
_MAC_HEX = frozenset(b"0123456789abcdef")        # the MAC: lower case only, as seal writes it


def _rust_u64_hex(word):
    """u64::from_str_radix(word, 16): an optional '+', then hex digits, no overflow."""
    w = word[1:] if word.startswith("+") else word
    if not w or any(c not in "0123456789abcdefABCDEF" for c in w):
        return None
    v = int(w, 16)
    return v if v < 1 << 64 else None


def cluster_open(body, secrets):
    """What Keys::open makes of `body`: ("unsigned"|"bad_mac", None) or ("authentic",
    (node, time_ms, counter, ops))."""
    nl = body.find(b"\n")
    if nl < 0:
        return "unsigned", None
    first, signed = body[:nl], body[nl + 1:]
    if not first.startswith(CL_MAGIC + b" "):
        return "unsigned", None
    hx = first[len(CL_MAGIC) + 1:]
    if len(hx) != 64 or any(c not in _MAC_HEX for c in hx):
        return "unsigned", None
    tag = bytes.fromhex(hx.decode())
    if not any(hmac.compare_digest(bytes.fromhex(cl_mac(k, signed).decode()), tag) for k in secrets):
        return "bad_mac", None
    nl = signed.find(b"\n")
    if nl < 0:
        return "unsigned", None
    try:
        words = signed[:nl].decode("utf-8").split(" ")
    except UnicodeDecodeError:
        return "unsigned", None
    vals = [_rust_u64_hex(w) for w in words[:3]]
    if len(vals) < 3 or None in vals:
        return "unsigned", None
    return "authentic", (vals[0], vals[1], vals[2], signed[nl + 1:])


def _rust_lines(text):
    """str::lines: split at \\n, a \\r before it dropped; no empty last line."""
    pieces = text.split("\n")
    out = [p[:-1] if p.endswith("\r") else p for p in pieces[:-1]]
    if pieces[-1]:
        out.append(pieces[-1])
    return out


def _unhex_err(word):
    if word == "-":
        return None
    b = word.encode()
    if len(b) % 2:
        return "odd hex field"
    if any(c not in _HEX for c in b):
        return "bad hex digit"
    return None


def _decode_op_err(line):
    f = line.split(" ")
    tag, rest = f[0], f[1:]
    if tag in ("Q", "D", "H", "B"):
        return None
    shape = {"O": (True, 2, 3), "C": (True, 1, 1), "P": (True, 3, 11), "S": (False, 2, 2),
             "U": (False, 4, 4), "X": (False, 2, 2)}.get(tag)
    if shape is None:
        return "unknown operation"
    stamped, lo, hi = shape
    if stamped:
        if not rest:
            return "missing stamp"
        if _rust_u64_hex(rest[0]) is None:
            return "bad stamp"
        rest = rest[1:]
    for w in rest:
        e = _unhex_err(w)
        if e:
            return e
    if not lo <= len(rest) <= hi:
        return "wrong number of fields"
    return None


def cluster_decode(ops):
    """What core::cluster::decode says of `ops`: None when it reads, else its reason."""
    try:
        text = ops.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8"
    for line in _rust_lines(text):
        if line:
            e = _decode_op_err(line)
            if e:
                return e
    return None


def cl_hx(b, upper=False):
    if isinstance(b, str):
        b = b.encode()
    if not b:
        return "-"
    return b.hex().upper() if upper else b.hex()


class ClusterCase:
    """One KDMQ body. `build(now_ms)` makes it at sending time (None for an exact resend:
    `replay_of` names the case whose bytes are sent again); `after`: a case that must have been
    answered first; `allowed`: the codes it may get."""
    __slots__ = ("key", "phase", "category", "name", "allowed", "build", "after", "replay_of", "counter")

    def __init__(self, key, phase, category, name, build, after=None, replay_of=None, counter=None):
        self.key, self.phase, self.category, self.name = key, phase, category, name
        self.allowed = CL_ALLOWED[category]
        self.build, self.after, self.replay_of, self.counter = build, after, replay_of, counter


def _cl_junk_uri(g):
    """Something in a URI field: often not a URI at all."""
    r = g.randrange(12)
    if r == 0:
        return junk(g, g.randint(1, 80))
    if r == 1:
        return junk(g, g.randint(1, 60), PRINTABLE)
    if r == 2:
        return b"sip:" + nonutf8(g) + b"@127.0.0.1"
    if r == 3:
        return b"sip:\"'<>&;=%00@127.0.0.1"
    if r == 4:
        return b"sip:" + b"u" * g.randint(300, 6000) + b"@127.0.0.1"
    if r == 5:
        return b"<sip:x@127.0.0.1"
    if r == 6:
        return b"sip:fz@127.0.0.1;x=\n" + CL_FORGED_LINE
    if r == 7:
        return g.choice([b"sip:", b"sip:@", b"tel:", b"tel:+", b"http://x/y", b"sip:a b@c", b"\x00", b" "])
    if r == 8:
        return b"sip:fz-%x@127.0.0.1" % g.getrandbits(32)       # valid, unknown
    if r == 9:
        return b"tel:+1555%07d" % g.randrange(10 ** 7)
    if r == 10:
        return b"sip:%s@[::1" % junk(g, 4, TOKEN)
    return b"sip:fz\r\n" + CL_FORGED_LINE + b"@127.0.0.1"


_CL_WORDS = [b"", b"bogus", b"CONNECTED", b"connected ", b"ad_hoc", b"Ad-Hoc", b"x" * 900, "\u00e9t\u00e9".encode(),
             b"0", b"-1", b"99999999999999999999", b"null", b"\x00", b"\xff\xfe", b"connected\x00",
             b"connected\n" + CL_FORGED_LINE, b"<xml/>", b"&amp;"]


def _cl_word(g, valid):
    return g.choice(valid) if g.random() < 0.35 else g.choice(_CL_WORDS + [junk(g, g.randint(1, 30))])


def _cl_text(g):
    """A nick or reason: text that has to be escaped in a NOTIFY body, or is invalid."""
    return g.choice([b"Alice & <Bob> \"'", "\u202eevil\u202c \U0001F600".encode(), b"nick\x01ctl", b"\x7f",
                     b"\xff\xfe", b"x" * g.randint(100, 3000), b"]]><!--", b"line\n" + CL_FORGED_LINE,
                     junk(g, g.randint(1, 40)), junk(g, g.randint(1, 40), PRINTABLE), b"\t", b"-"])


# valid, but to be escaped (or not representable) in a conference-info body
_CL_ODD_URIS = [b"sip:x&y<z>\"'@127.0.0.1", b"sip:%3Cb%3E@127.0.0.1", "sip:\u00e9t\u00e9@127.0.0.1".encode(),
                b"sips:a@[::1]:5061;transport=tls", b"tel:+1-555-0100", b"sip:" + b"u" * 500 + b"@127.0.0.1",
                b"<sip:name-addr@127.0.0.1>", b"sip:a@127.0.0.1;p=]]>", "sip:\u202eevil@127.0.0.1".encode()]
_CL_ODD_TEXT = [b"", b"Alice & <Bob> \"'", b"]]><!-- -->", b"<![CDATA[x]]>", b"&amp;&#0;&#x1;", "\u202eevil\u202c".encode(),
                "\U0001F600 \u4e2d\u6587 \u0627\u0644".encode(), b"x" * 2000, "\ufdd0".encode(), "\ufffe".encode(),
                "\uffff".encode(), "a\u2028b\u2029c".encode(), b" ", b"\\"]


def _cl_stamp(g):
    """("abs", v) or ("now", delta_ms): a stamp, the latter made at sending time."""
    r = g.random()
    if r < 0.2:
        return ("abs", g.choice([0, 1, (1 << 64) - 1, (1 << 64) - (1 << 16), 1 << 63, 0xffff, (1 << 48) - 1]))
    if r < 0.45:
        return ("abs", g.getrandbits(64))
    return ("now", g.randint(-3_600_000, 3_600_000))


def _cl_stamp_hex(st, now_ms, node):
    kind, v = st
    if kind == "abs":
        return "%x" % v
    return "%x" % ((((now_ms + v) & ((1 << 48) - 1)) << 16) | (node & 0xffff))


class _Cat4:
    """The well-formed hostile operations of category 4 (each a function of (now_ms) -> str)."""

    def __init__(self, g, node, i):
        self.g, self.node, self.i = g, node, i

    def session(self, opened):
        g = self.g
        r = g.random()
        if r < 0.45:
            return CL_TARGET.encode()
        if r < 0.6 and opened:
            return g.choice(opened)
        if r < 0.75:
            return b"sip:fz-nosuch-%x@127.0.0.1" % g.getrandbits(24)
        return _cl_junk_uri(g)

    def line(self, opened):
        g, node = self.g, self.node
        up = g.random() < 0.1
        hx = lambda b: cl_hx(b, up)  # noqa: E731
        st = _cl_stamp(g)
        kind = g.choices("VPOCSUXHD", weights=[25, 30, 12, 8, 8, 10, 8, 3, 2])[0]
        if kind == "V":
            return self.valid_participant(opened)
        if kind == "P":
            s = self.session(opened)
            aoia = g.choice([b"sip:fz-user%d@127.0.0.1" % g.randrange(40), CL_MEMBER.encode(), _cl_junk_uri(g)])
            status = _cl_word(g, [b"connected", b"alerting", b"disconnected", b"dialing-out"])
            extra = []
            for j in range(g.randint(0, 8)):
                extra.append([lambda: _cl_word(g, [b"originator", b"invited", b"joined", b"-"]),
                              lambda: _cl_junk_uri(g) if g.random() < 0.6 else b"sip:list@127.0.0.1",
                              lambda: _cl_junk_uri(g) if g.random() < 0.6 else b"sip:from@127.0.0.1",
                              lambda: _cl_word(g, [b"0", b"1", b"-"]),
                              lambda: _cl_text(g),
                              lambda: _cl_word(g, [b"departed", b"booted", b"failed", b"busy", b"-"]),
                              lambda: _cl_text(g),
                              lambda: _cl_junk_uri(g) if g.random() < 0.6 else b"sip:alice@127.0.0.1:5099"][j]())
            fields = [hx(x) for x in [s, aoia, status] + extra]
            return lambda now: "P %s %s" % (_cl_stamp_hex(st, now, node), " ".join(fields))
        if kind == "O":
            r = g.random()
            if r < 0.4:
                s = b"sip:fz-open-%d-%x@127.0.0.1" % (self.i, g.getrandbits(16))
                opened.append(s)
            elif r < 0.55:
                s = CL_TARGET.encode()
            else:
                s = _cl_junk_uri(g)
            k = _cl_word(g, [b"ad-hoc", b"one-to-one", b"pre-defined", b"chat", b"restricted-chat"])
            fields = [hx(s), hx(k)] + ([hx(g.choice([b"sip:fz-group@127.0.0.1", _cl_junk_uri(g), b""]))]
                                       if g.random() < 0.5 else [])
            return lambda now: "O %s %s" % (_cl_stamp_hex(st, now, node), " ".join(fields))
        if kind == "C":
            r = g.random()
            s = (g.choice(opened) if opened and r < 0.4 else
                 b"sip:fz-nosuch-%x@127.0.0.1" % g.getrandbits(24) if r < 0.7 else _cl_junk_uri(g))
            return lambda now: "C %s %s" % (_cl_stamp_hex(st, now, node), hx(s))
        if kind == "S":
            s = self.session(opened) if g.random() < 0.7 else b"sip:fz-synced-%x@127.0.0.1" % g.getrandbits(16)
            rec = self.record()
            return lambda now: "S %s %s" % (hx(s), hx(rec))
        if kind == "U":
            cid = g.choice([junk(g, g.randint(1, 40), TOKEN) + b"@127.0.0.1", junk(g, g.randint(0, 30)),
                            b"fz-call\n" + CL_FORGED_LINE])
            tag = g.choice([b"i%x-%016x" % (g.randrange(64), g.getrandbits(64)), junk(g, g.randint(0, 20))])
            s, rec = self.session(opened), self.record()
            return lambda now: "U %s %s %s %s" % (hx(cid), hx(tag), hx(s), hx(rec))
        if kind == "X":
            cid, tag = junk(g, g.randint(1, 40), TOKEN), junk(g, g.randint(0, 20))
            return lambda now: "X %s %s" % (hx(cid), hx(tag))
        return lambda now: kind  # H or D

    def valid_participant(self, opened):
        """A participant change every argument of which is valid, with values the NOTIFY bodies
        must escape (or that XML cannot carry), stamped ahead of now: it applies, and the target's
        subscriber is told."""
        g, node = self.g, self.node
        s = g.choice(opened) if opened and g.random() < 0.2 else CL_TARGET.encode()
        aoia = g.choice([b"sip:fz-text-%d@127.0.0.1" % g.randrange(60)] * 3 + _CL_ODD_URIS)
        status = g.choice([b"connected", b"alerting", b"disconnected", b"dialing-out"])
        args = [s, aoia, status, g.choice([b"originator", b"invited", b"joined", b""]),
                g.choice([b""] + _CL_ODD_URIS), g.choice([b""] + _CL_ODD_URIS),
                g.choice([b"0", b"1", b"", b"id", b"user;header", b"none"]), g.choice(_CL_ODD_TEXT),
                g.choice([b"departed", b"booted", b"failed", b"busy"]) if status == b"disconnected" else b"",
                g.choice(_CL_ODD_TEXT), g.choice([b""] + _CL_ODD_URIS)]
        args = args[:g.randint(3, 11)]
        fields = " ".join(cl_hx(a) for a in args)
        delta = g.randint(1, 600_000)
        return lambda now: "P %s %s" % (_cl_stamp_hex(("now", delta), now, node), fields)

    def record(self):
        g = self.g
        r = g.random()
        if r < 0.1:
            return b""
        if r < 0.2:
            return bytes(g.randint(1, 200))
        if r < 0.3:
            return b"\xff" * g.randint(1, 200)
        if r < 0.4:
            return junk(g, g.randint(2000, 8000))
        return junk(g, g.randint(1, 600))


def _cl_bait(g, i):
    """Valid operations that would change state if a refused message were applied anyway."""
    s = b"sip:fz-bait-%d@127.0.0.1" % i
    evil = b"sip:attacker-%d@evil.example" % i
    st = lambda: "%x" % (g.getrandbits(62) | (1 << 62))  # noqa: E731  (above any real stamp)
    ops = [
        "O %s %s %s -" % (st(), cl_hx(s), cl_hx("ad-hoc")),
        "P %s %s %s %s" % (st(), cl_hx(s), cl_hx(evil), cl_hx("connected")),
        "P %s %s %s %s" % (st(), cl_hx(CL_TARGET), cl_hx(evil), cl_hx("connected")),
        "P %s %s %s %s" % (st(), cl_hx(CL_TARGET), cl_hx(CL_MEMBER), cl_hx("disconnected")),
        "C %s %s" % (st(), cl_hx(CL_TARGET)),
        "S %s %s" % (cl_hx(s), cl_hx(junk(g, 40))),
        "U %s %s %s %s" % (cl_hx("bait-%d@x" % i), cl_hx("i1-0"), cl_hx(CL_TARGET), cl_hx(junk(g, 40))),
        "X %s %s" % (cl_hx("bait-%d@x" % i), cl_hx("i1-0")),
        "H", "D",
    ]
    picked = ops[:2] + g.sample(ops[2:], g.randint(0, 3))
    return ("\n".join(picked) + "\n").encode()


def _cl_flip(body, g, lo=0, mac_range=None):
    """One byte of body[lo:] changed to another value; in the MAC's hex digits, never to the
    same digit in the other case (refused as unsigned, not as a bad MAC: the case's counter
    would not be the one the category expects)."""
    b = bytearray(body)
    while True:
        i = g.randrange(lo, len(b))
        v = g.getrandbits(8)
        if v == b[i]:
            continue
        if mac_range and mac_range[0] <= i < mac_range[1] and bytes([v]).lower() == bytes([b[i]]).lower():
            continue
        b[i] = v
        return bytes(b)


def _cat1(g, variant, secret, node, i, counter):
    """A category-1 body builder: (now_ms) -> bytes."""
    bait = _cl_bait(g, i)
    seal = lambda now: cl_seal(secret, node, now, counter, bait)  # noqa: E731
    mac_range = (len(CL_MAGIC) + 1, len(CL_MAGIC) + 65)
    if variant == "random-bytes":
        data = junk(g, g.randint(1, 3000))
        return lambda now: data
    if variant == "empty":
        return lambda now: b""
    if variant == "v1-unsigned":
        return lambda now: b"imconf-cluster/1 %x\n" % node + bait
    if variant == "truncated":
        frac = g.random()
        return lambda now: (lambda b: b[:int(frac * (len(b) - 1))])(seal(now))
    if variant == "mac-not-hex":
        pos, bad = g.randrange(64), g.choice(b"gGzZxX -+.\x00\n\xff:")
        return lambda now: (lambda b: b[:mac_range[0] + pos] + bytes([bad]) + b[mac_range[0] + pos + 1:])(seal(now))
    if variant == "mac-wrong-length":
        n = g.choice([0, 1, 62, 63, 65, 66, 128, g.randint(2, 500)])
        return lambda now: (lambda b: CL_MAGIC + b" " + (b[mac_range[0]:mac_range[1]] * 8)[:n] + b[mac_range[1]:])(seal(now))
    if variant == "flip-byte":
        seed_ = g.getrandbits(32)
        return lambda now: _cl_flip(seal(now), random.Random(seed_), 0, mac_range)
    if variant == "flip-byte-signed":
        seed_ = g.getrandbits(32)
        return lambda now: _cl_flip(seal(now), random.Random(seed_), mac_range[1] + 1)
    if variant == "append":
        extra = g.choice([b"B\n", b"Q\n", b"\n", b"\x00", junk(g, g.randint(1, 100))])
        return lambda now: seal(now) + extra
    if variant == "remove":
        frac, k = g.random(), g.randint(1, 10)
        return lambda now: (lambda b, p: b[:p] + b[p + k:])(seal(now), int(frac * (len(seal(now)) - k)))
    if variant == "wrong-secret":
        s = secret.encode() if isinstance(secret, str) else secret
        wrong = g.choice([s[:-1], s + b"x", s.upper(), b"", b"\x00" * 32, s[1:] + s[:1], junk(g, 32),
                          b"not-the-cluster-secret-0123456789", s + b"\n"])
        return lambda now: cl_seal(wrong, node, now, counter, bait)
    if variant == "mac-of-other-body":
        other = _cl_bait(g, i + 1_000_000)
        return lambda now: (lambda a, b: a[:mac_range[1]] + b[mac_range[1]:])(
            cl_seal(secret, node, now, counter, other), seal(now))
    if variant == "non-utf8":
        r = g.randrange(3)
        nu = nonutf8(g)
        if r == 0:      # in the MAC line
            return lambda now: CL_MAGIC + b" " + nu + b"0" * (64 - len(nu)) + b"\n" + seal(now)[mac_range[1] + 1:]
        if r == 1:      # in the operations, the MAC of the clean ones
            return lambda now: (lambda b: b[:-1] + nu + b"\n")(seal(now))
        return lambda now: nu + seal(now)
    if variant == "huge":
        size = g.randint(20_000, 59_000)
        r = g.randrange(3)
        big = ("P 1 %s %s %s\n" % (cl_hx(CL_TARGET), cl_hx("sip:attacker@evil.example"), cl_hx("connected"))).encode()
        ops = (big * (size // len(big) + 1))[:size]
        if r == 0:      # a plausible header, a MAC of nothing
            mac = junk(g, 32).hex().encode()
            return lambda now: CL_MAGIC + b" " + mac + b"\n" + b"%x %x %x\n" % (node, now, counter) + ops
        if r == 1:      # one line, no newline at all
            return lambda now: CL_MAGIC + b" " + b"a" * size
        data = junk(g, size)
        return lambda now: data
    if variant == "bad-sender-line":     # the MAC verifies, the sender line does not read
        line = g.choice([b"zz %x %x" % (counter, counter), b"%x %x" % (node, counter), b"", b"%x  1 %x" % (node, counter),
                         b"-1 1 %x" % counter, b"%x 10000000000000000 %x" % (node, counter), b"\xff 1 2",
                         b"%x 1 %x" % (node, counter) + b"\x00", b"%x\t1\t%x" % (node, counter)])
        nl = g.random() < 0.85
        return lambda now: cl_seal_raw(secret, line.replace(b" 1 ", b" %x " % now, 1) + (b"\n" + bait if nl else b""))
    if variant == "magic-variants":
        which = g.randrange(4)
        def mk(now, which=which):
            b = seal(now)
            if which == 0:
                return b.replace(CL_MAGIC, b"IMCONF-CLUSTER/2", 1)
            if which == 1:
                return b.replace(CL_MAGIC + b" ", CL_MAGIC + b"  ", 1)
            if which == 2:
                return b[:mac_range[1]] + b"\r" + b[mac_range[1]:]
            return b.replace(CL_MAGIC, b"imconf-cluster/3", 1)
        return mk
    raise ValueError(variant)


CL_CAT1 = ["random-bytes", "empty", "v1-unsigned", "truncated", "mac-not-hex", "mac-wrong-length", "flip-byte",
           "flip-byte-signed", "append", "remove", "wrong-secret", "mac-of-other-body", "non-utf8", "huge",
           "bad-sender-line", "magic-variants"]
CL_CAT2 = ["stale-past", "stale-future", "stale-extreme", "replay-exact", "counter-reused", "below-window"]
CL_CAT3 = ["unknown-op", "field-count", "odd-hex", "bad-hex", "stamp", "long-line", "nul", "non-utf8", "separators"]


def _cat3_bad_line(g, variant):
    st = "%x" % g.getrandbits(40)
    h = lambda s: cl_hx(s)  # noqa: E731
    s, a = h(CL_TARGET), h("sip:fz-m@127.0.0.1")
    if variant == "unknown-op":
        tag = g.choice(["Z", "o", "OO", "Px", "h", "#", "0", "\u00e9", "\u03a9", "", "\t", "PQ", "-", "b"])
        return (tag + g.choice(["", " " + st + " " + s, " -"])).encode()
    if variant == "field-count":
        return g.choice([
            "O %s %s" % (st, s), "O %s %s %s %s %s" % (st, s, h("ad-hoc"), s, s),
            "C %s" % st, "C %s %s %s" % (st, s, s),
            "P %s %s %s" % (st, s, a), "P %s %s" % (st, " ".join([a] * g.randint(13, 40))),
            "S %s" % s, "S %s %s %s" % (s, s, s), "S",
            "U %s %s %s" % (a, a, s), "U %s %s %s %s %s" % (a, a, s, a, a),
            "X %s" % a, "X %s %s %s" % (a, a, a), "X",
            "P %s %s %s %s " % (st, s, a, h("connected")) + " " * g.randint(9, 20),   # empty fields
        ]).encode()
    if variant == "odd-hex":
        return ("P %s %s %s %s" % (st, s, a + g.choice("0123456789abcdef"), h("connected"))).encode()
    if variant == "bad-hex":
        bad = g.choice(["zz", "0g", "g0", "0x", "+1", " ", "\u00e9\u00e9", "--", "\u00ff\u00fe", "0 "])
        return ("P %s %s %s %s" % (st, s, bad, h("connected"))).encode()
    if variant == "stamp":
        return g.choice(["O", "C", "P", "O  %s %s" % (s, h("ad-hoc")), "P zz %s %s %s" % (s, a, h("connected")),
                         "C -1 %s" % s, "C 1.5 %s" % s, "P %s %s %s %s" % ("1" * 17, s, a, h("connected")),
                         "O - %s %s" % (s, h("ad-hoc")), "P 0x10 %s %s %s" % (s, a, h("connected")),
                         "C + %s" % s]).encode()
    if variant == "long-line":
        n = g.randint(10_000, 27_000)
        r = g.randrange(3)
        if r == 0:
            return ("P %s %s %s %s" % (st, s, "61" * n + "6", h("connected"))).encode()
        if r == 1:
            return ("P %s %s %s %s" % (st, s, "61" * n + "zz", h("connected"))).encode()
        return ("U " + " ".join(["6162"] * (n // 5))).encode()
    if variant == "nul":
        return g.choice([b"P\x00 %s %s" % (st.encode(), s.encode()), b"P %s %s\x00%s %s" % (
            st.encode(), s.encode(), a.encode(), h("connected").encode()), b"\x00", b"H\x00"[::-1]])
    if variant == "non-utf8":
        return b"P %s %s " % (st.encode(), s.encode()) + nonutf8(g) + b" " + h("connected").encode()
    if variant == "separators":
        return g.choice([b"P\t%s\t%s\t%s\t%s" % (st.encode(), s.encode(), a.encode(), h("connected").encode()),
                         b"C %s\r%s" % (st.encode(), s.encode()), b"C %s %s\r" % (st.encode(), s.encode()),
                         b"O,%s,%s" % (st.encode(), s.encode())])
    raise ValueError(variant)


def cluster_cases(seed, n, secret, node_id):
    """n cases (ClusterCase) in sending order: phase A (categories 1-3, interleaved), phase B
    (category 4), phase C (category 2: exact resends of phase B cases). About 30% category 1,
    15% category 2 (a third of it in phase C), 25% category 3, 30% category 4; within a category
    the variants go round robin, then at random."""
    g = random.Random(seed ^ 0xc1a5)
    n1, n3, n4 = round(n * 0.30), round(n * 0.25), round(n * 0.30)
    n2 = n - n1 - n3 - n4
    n2c = min(n2 // 3, n4)
    n2a = n2 - n2c
    order = [1] * n1 + [2] * n2a + [3] * n3
    g.shuffle(order)
    counter = [CL_BASE_COUNTER]

    def fresh():
        counter[0] += 1
        return counter[0]

    used = {1: 0, 2: 0, 3: 0}

    def variant(cat, names):
        k = used[cat]
        used[cat] += 1
        return names[k] if k < len(names) else g.choice(names)

    out, recorded = [], []   # recorded: (index, key, counter) of authentic cases that reach the replay table
    for i, cat in enumerate(order):
        key = "a%d" % i
        if cat == 1:
            v = variant(1, CL_CAT1)
            c = fresh()
            while True:  # a damage that leaves a valid message (rare) is drawn again
                build = _cat1(g, v, secret, node_id, i, c)
                if cluster_open(build(1_700_000_000_000), [secret])[0] != "authentic":
                    break
            out.append(ClusterCase(key, "A", 1, v, build, counter=c))
        elif cat == 2:
            v = variant(2, CL_CAT2)
            if v in ("replay-exact", "counter-reused", "below-window") and not recorded:
                v = "stale-past"
            bait = _cl_bait(g, i)
            if v in ("stale-past", "stale-future", "stale-extreme"):
                c = fresh()
                if v == "stale-extreme":
                    t = g.choice([0, 1, (1 << 64) - 1, 1 << 63])
                    build = lambda now, t=t, c=c, bait=bait: cl_seal(secret, node_id, t, c, bait)  # noqa: E731
                else:
                    d = g.randint(31_000, 3_600_000) * (-1 if v == "stale-past" else 1)
                    build = lambda now, d=d, c=c, bait=bait: cl_seal(secret, node_id, now + d, c, bait)  # noqa: E731
                out.append(ClusterCase(key, "A", 2, v, build, counter=c))
            elif v == "replay-exact":
                _, ref, c = g.choice(recorded[-200:])
                out.append(ClusterCase(key, "A", 2, v, None, after=ref, replay_of=ref, counter=c))
            elif v == "counter-reused":
                _, ref, c = g.choice(recorded[-200:])
                build = lambda now, c=c, bait=bait: cl_seal(secret, node_id, now, c, bait)  # noqa: E731
                out.append(ClusterCase(key, "A", 2, v, build, after=ref, counter=c))
            else:
                c = g.randint(0, CL_BASE_COUNTER - 2 * CL_WINDOW)
                build = lambda now, c=c, bait=bait: cl_seal(secret, node_id, now, c, bait)  # noqa: E731
                out.append(ClusterCase(key, "A", 2, v, build, after=recorded[0][1], counter=c))
        else:
            v = variant(3, CL_CAT3)
            c = fresh()
            while True:
                lines = _cl_bait(g, i).splitlines()[:g.randint(0, 4)]
                lines.insert(g.randint(0, len(lines)), _cat3_bad_line(g, v))
                ops = b"\n".join(lines) + (b"\n" if g.random() < 0.8 else b"")
                if cluster_decode(ops) is not None:
                    break
            build = lambda now, c=c, ops=ops: cl_seal(secret, node_id, now, c, ops)  # noqa: E731
            out.append(ClusterCase(key, "A", 3, v, build, counter=c))
            recorded.append((i, key, c))
    opened = []
    phase_b = []
    for j in range(n4):
        key = "b%d" % j
        c = fresh()
        gen = _Cat4(g, node_id, j)
        while True:
            if g.random() < 0.03:   # a big one: many operations, up to ~55 kB
                makers, size = [], 0
                while size < g.randint(20_000, 50_000):
                    m = gen.line(opened)
                    size += len(m(1_700_000_000_000)) + 1
                    makers.append(m)
                name = "many-ops"
            else:
                makers = [gen.line(opened) for _ in range(g.randint(1, 6))]
                name = "+".join(sorted({m(0)[0] for m in makers}))
            eol = g.choice(["\n"] * 6 + ["\r\n", "\n\n"])
            last = g.choice(["", eol, eol])
            probe = (eol.join(m(1_700_000_000_000) for m in makers) + last).encode()
            if cluster_decode(probe) is None and len(probe) < 58_000:
                break
        build = lambda now, c=c, makers=makers, eol=eol, last=last: cl_seal(  # noqa: E731
            secret, node_id, now, c, (eol.join(m(now) for m in makers) + last).encode())
        case = ClusterCase(key, "B", 4, name, build, counter=c)
        phase_b.append(case)
    out.extend(phase_b)
    for j, ref in enumerate(g.sample(phase_b, n2c)):
        out.append(ClusterCase("c%d" % j, "C", 2, "replay-exact-applied", None, after=ref.key, replay_of=ref.key,
                               counter=ref.counter))
    return out


def run_cluster(src_host, dst, cases, *, call_prefix, results, sent, window=32, max_bytes=192 * 1024,
                timeout=5.0):
    """Sends every case as a KDMQ to the peer "imconf" of dst=(host, port) from one UDP socket
    bound to src_host, at most `window` unanswered (and `max_bytes` of them) at once, a case whose
    `after` is unanswered held back until it is answered; nothing is retransmitted (a KDMQ is
    answered statelessly: a second copy would be a replay). Each request has its own Call-ID;
    responses are matched by it. Fills `results` ({key: final code, None when unanswered within
    `timeout` s}) and `sent` ({key: the bytes sent}), which may hold earlier phases' (resends and
    `after` refer to them)."""
    import socket
    import time
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind((src_host, 0))
    sock.settimeout(0.005)
    port = sock.getsockname()[1]
    host, dport = dst
    to = "sip:imconf@%s:%d" % (host, dport)
    live = {}          # call-id -> (key, deadline, size)
    pending = list(cases)
    live_bytes = 0

    def receive():
        nonlocal live_bytes
        try:
            data = sock.recv(65535)
        except socket.timeout:
            return False
        m = re.match(rb"SIP/2\.0 (\d{3})", data)
        cid = re.search(rb"\r\n(?:Call-ID|i)[ \t]*:[ \t]*([^\r\n]+)", data, re.I)
        if m and cid and int(m.group(1)) >= 200:
            entry = live.pop(cid.group(1).strip().decode("latin-1"), None)
            if entry:
                results[entry[0]] = int(m.group(1))
                live_bytes -= entry[2]
        return True

    try:
        while pending or live:
            while pending and len(live) < window:
                c = pending[0]
                if c.after is not None and c.after not in results:
                    if not any(e[0] == c.after for e in live.values()):
                        raise ValueError("case %s waits for %s, which was not sent before it" % (c.key, c.after))
                    break
                body = sent[c.replay_of] if c.replay_of is not None else c.build(int(time.time() * 1000))
                if live and live_bytes + len(body) > max_bytes:
                    break
                pending.pop(0)
                cid = "%s-%s@%s" % (call_prefix, c.key, src_host)
                head = ["KDMQ %s SIP/2.0" % to,
                        "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK-%s-%s;rport" % (src_host, port, call_prefix, c.key),
                        "Max-Forwards: 70", "From: <sip:%s:5999>;tag=fz" % src_host, "To: <%s>" % to,
                        "Call-ID: %s" % cid, "CSeq: 1 KDMQ", "Content-Type: application/x-imconf-cluster",
                        "Content-Length: %d" % len(body), "", ""]
                sock.sendto("\r\n".join(head).encode() + body, dst)
                sent[c.key] = body
                live[cid] = (c.key, time.time() + timeout, len(body))
                live_bytes += len(body)
            while receive():
                pass
            now = time.time()
            for cid, (key, deadline, size) in list(live.items()):
                if now > deadline:
                    results[key] = None
                    del live[cid]
                    live_bytes -= size
    finally:
        sock.close()
    for c in cases:
        results.setdefault(c.key, None)
