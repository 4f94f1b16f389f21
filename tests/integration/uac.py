"""A small stdlib UAC for the one check SIPp cannot express: a SUBSCRIBE retransmitted with the
same Via branch must get the same answer and must not create a second subscription (R22).

SIPp generates a new branch for every <send>, and its `[branch]` cannot be frozen, so this sends
the byte-identical request several times itself. It writes its traffic in SIPp's -trace_msg format
so that harness.check_trace() checks the NOTIFYs it received like any SIPp run's.
"""

import random
import re
import socket
import time

TRACE_SEP = "-" * 47


def _trace(f, direction, data, addr_note=""):
    stamp = time.strftime("%Y-%m-%d %H:%M:%S") + ".%06d" % (int(time.time() * 1e6) % 1000000)
    if direction == "sent":
        f.write(("%s %s\nUDP message sent (%d bytes):\n\n" % (TRACE_SEP, stamp, len(data))).encode())
    else:
        f.write(("%s %s\nUDP message received [%d] bytes :\n\n" % (TRACE_SEP, stamp, len(data))).encode())
    f.write(data + b"\n")
    f.flush()


def _hdr(text, name):
    m = re.search(r"^%s\s*:\s*(.*?)\r?$" % re.escape(name), text, re.M | re.I)
    return m.group(1) if m else None


def subscribe_retransmitted(server_port, local_port, call_id, trace_path, *, ruri, subscriber,
                            listen_secs=2.5):
    """Sends one SUBSCRIBE three times with the same branch and CSeq: at 0 ms, at 30 ms (likely
    while the first is being handled) and right after the first 200 arrived (the server must resend
    its reply). Answers every NOTIFY with 200. Returns {responses: [(code, to_tag)],
    notifies: [(branch, cseq, subscription_state)]} (NOTIFY retransmissions listed once)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", local_port))
    sock.settimeout(0.05)
    server = ("127.0.0.1", server_port)
    branch = "z9hG4bK-retrans-%08x" % random.getrandbits(32)
    from_tag = "uac-%08x" % random.getrandbits(32)
    user = subscriber.split(":", 1)[1].split("@", 1)[0]
    req = ("SUBSCRIBE {ruri} SIP/2.0\r\n"
           "Via: SIP/2.0/UDP 127.0.0.1:{lp};branch={br}\r\n"
           "Max-Forwards: 70\r\n"
           "From: <{sub}>;tag={ft}\r\n"
           "To: <{ruri}>\r\n"
           "Call-ID: {cid}\r\n"
           "CSeq: 1 SUBSCRIBE\r\n"
           "Contact: <sip:{user}@127.0.0.1:{lp}>\r\n"
           "Event: conference\r\n"
           "Accept: application/conference-info+xml\r\n"
           "Accept-Contact: *;+g.oma.sip-im\r\n"
           "P-Asserted-Identity: <{sub}>\r\n"
           "Expires: 60\r\n"
           "Content-Length: 0\r\n\r\n").format(ruri=ruri, lp=local_port, br=branch, sub=subscriber, ft=from_tag,
                                                cid=call_id, user=user).encode()
    responses, notifies, seen = [], [], set()
    sends = [0.0, 0.03]
    t0 = time.time()
    sent_after_ok = False
    with open(trace_path, "wb") as trace:
        try:
            while time.time() - t0 < listen_secs:
                now = time.time() - t0
                while sends and sends[0] <= now:
                    sends.pop(0)
                    sock.sendto(req, server)
                    _trace(trace, "sent", req)
                try:
                    data, addr = sock.recvfrom(65535)
                except socket.timeout:
                    continue
                _trace(trace, "recv", data)
                text = data.decode("utf-8", "replace")
                first = text.split("\r\n", 1)[0]
                if first.startswith("SIP/2.0"):
                    code = int(first.split()[1])
                    if (_hdr(text, "CSeq") or "").split()[-1:] == ["SUBSCRIBE"]:
                        tag = re.search(r";\s*tag=([^;>\s]+)", _hdr(text, "To") or "")
                        responses.append((code, tag.group(1) if tag else None))
                        if code >= 200 and not sent_after_ok:
                            sent_after_ok = True
                            sends.append(time.time() - t0 + 0.2)
                    continue
                if first.startswith("NOTIFY"):
                    nbranch = re.search(r"branch=([^;,\s]+)", _hdr(text, "Via") or "")
                    key = (nbranch.group(1) if nbranch else None, _hdr(text, "CSeq"))
                    if key not in seen:
                        seen.add(key)
                        notifies.append((key[0], key[1], _hdr(text, "Subscription-State")))
                    head = text.split("\r\n\r\n", 1)[0]
                    vias = [l for l in head.split("\r\n") if re.match(r"^(Via|v)\s*:", l, re.I)]
                    ok = "\r\n".join(["SIP/2.0 200 OK"] + vias + [
                        "From: " + (_hdr(text, "From") or ""), "To: " + (_hdr(text, "To") or ""),
                        "Call-ID: " + (_hdr(text, "Call-ID") or ""), "CSeq: " + (_hdr(text, "CSeq") or ""),
                        "Content-Length: 0", "", ""]).encode()
                    sock.sendto(ok, addr)
                    _trace(trace, "sent", ok)
        finally:
            sock.close()
    return {"responses": responses, "notifies": notifies}
