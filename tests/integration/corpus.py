"""The malformed-SUBSCRIBE and bad-RPC corpus of the robustness tests (docs/robustness.md).

Deterministic from a seed: `sip_cases(seed, n, port)` gives n requests, each a valid fetch
(`Expires: 0`, so even a request the module accepts leaves no state) with one or two mutations
drawn from the categories below; `rpc_cases(seed, n)` gives n RPC calls that each carry at least
one invalid argument.

Every case says what may answer it:
  - `must_answer`: the request reaches the routing script (Kamailio's core parsed its first line
    and Via, tm could build a transaction from From/To/Call-ID/CSeq), so the module or the cfg
    must give a final response within the timeout;
  - otherwise "may be dropped": Kamailio's core (or tm, before the script runs) may discard it
    silently (a broken first line or Via, an empty or non-SIP datagram, a Content-Length beyond
    the datagram, a missing or unparsable From/To/Call-ID/CSeq). An answer is fine too, but it
    must still be an allowed code.
  - `allowed`: the set of final codes that are correct for it (RULES.md §2: the first failing
    check decides, so the union over its mutations); 200 only when every mutation leaves a valid
    request (or is one the rules tolerate, noted "tolerated").
python3 standard library only.
"""

import random

SESSION = "sip:conf1@127.0.0.1"
ALICE = "sip:alice@127.0.0.1"

# the codes of the pipeline steps (RULES.md §2) and of the cfg (405 for other methods)
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
        lambda: ("imconf.participant", [GOOD_SESSION, "sip:zed@127.0.0.1", "connected"] + ["-"] * 9),
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
