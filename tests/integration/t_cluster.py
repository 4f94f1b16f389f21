"""Integration tests: cluster (enable_dmq) and its security (registered with @test; run by run.py)."""

from itest import *  # noqa: F401,F403


def cluster_feed_round(cl, session, changes, truth):
    """Feeds (node index, aoia, status) one after another, 0.2 s apart (so that each node has
    heard of the previous change), and keeps `truth` up to date."""
    for i, aoia, status in changes:
        cl.feed(i, "imconf.participant", session, aoia, status)
        if status == "disconnected":
            truth.pop(aoia, None)
        else:
            truth[aoia] = status
        time.sleep(0.2)


def session_of_two(cl, session, first, second):
    """Starts the cluster `cl` and opens the ad-hoc `session` on node 1 with `first` and
    `second` connected, known to every node; returns the truth ({aoia: status})."""
    cl.start()
    cl.feed(0, "imconf.session_open", session, "ad-hoc")
    truth = {}
    cluster_feed_round(cl, session, [(0, first, "connected"), (0, second, "connected")], truth)
    cl.wait_everywhere(session, 2)
    return truth


@test("cluster_changes_reach_every_node", "issue 9 (enable_dmq) R26 R33 R40 R57", standin="skip")
def t_cluster_changes(ctx):
    """Three nodes on one DMQ bus. A session opened on node 1, its participants fed on nodes 1, 2
    and 3; one subscriber through each node. Changes fed to different nodes reach every subscriber:
    each one's merged view equals the truth, versions gapless, CSeqs increasing. Then the same
    participant changed on all three nodes at once: every node settles on one state (last writer
    wins), which every subscriber sees. Then node 3 restarts: it asks its peers for their sessions
    before serving, and a new subscription through it gets the state changed while it was down."""
    import cluster
    ctx.log_allow = r"DEBUG|enable_dmq"
    cl = cluster.Cluster(ctx)
    cl.start()
    s = "sip:cluster-chat@127.0.0.1"
    people = ["sip:%s@127.0.0.1" % n for n in ("alice", "bob", "carol", "dave", "erin", "gina", "harry")]
    alice, bob, carol, dave, erin, gina, harry = people
    cl.feed(0, "imconf.session_open", s, "ad-hoc")
    truth = {}
    cluster_feed_round(cl, s, [(0, alice, "connected"), (1, bob, "connected"), (2, carol, "connected")], truth)
    cl.wait_everywhere(s, 3)
    subs = [cluster.Subscriber(ctx, cl.nodes[i], s, who, "c%d" % i) for i, who in enumerate((alice, bob, carol))]
    for sub in subs:
        sub.subscribe()
    time.sleep(0.5)
    cluster_feed_round(cl, s, [(1, dave, "connected"), (2, erin, "alerting"), (0, erin, "connected"),
                               (2, dave, "disconnected"), (0, bob, "alerting"), (1, bob, "connected")], truth)
    time.sleep(1.0)
    problems = [p for sub in subs for p in sub.check(truth, "after changes on every node")]
    expect(not problems, "\n".join(problems))
    for sub in subs:
        expect(len(sub.notifies()) >= 3, "%s got %d NOTIFYs" % (sub.aor, len(sub.notifies())))

    # conflict: gina changed on the three nodes at once
    import threading
    threads = [threading.Thread(target=cl.feed, args=(i, "imconf.participant", s, gina, st))
               for i, st in enumerate(("connected", "alerting", "alerting"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(1.5)
    views = [sub.view()[0] for sub in subs]
    expect(views[0] == views[1] == views[2],
           "after concurrent changes of %s the subscribers disagree: %s" % (gina, views))
    expect(gina in views[0], "%s missing after concurrent changes: %s" % (gina, views[0]))
    truth[gina] = views[0][gina]
    problems = [p for sub in subs for p in sub.check(truth, "after concurrent changes")]
    expect(not problems, "\n".join(problems))

    # node 3 restarts; harry joins meanwhile; a new subscriber through node 3 sees him
    cl.nodes[2].stop()
    cluster_feed_round(cl, s, [(0, harry, "connected")], truth)
    cl.restart(2)
    late = cluster.Subscriber(ctx, cl.nodes[2], s, carol, "c-late")
    late.subscribe()
    time.sleep(0.5)
    problems = late.check(truth, "after node 3 restarted") + [
        p for sub in subs[:2] for p in sub.check(truth, "after node 3 restarted")]
    expect(not problems, "\n".join(problems))
    expect(re.search(r"synced with a peer", cl.nodes[2].log_text()),
           "the restarted node did not report a sync from its peers")


def udp_request(src_host, dst, method, ruri, headers, body=b""):
    """Sends one request from src_host (any loopback address, its own port) to dst=(host, port);
    the status code of the first final response, or None after 3 s."""
    import socket
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((src_host, 0))
        port = sock.getsockname()[1]
        tag = "%x" % int(time.time() * 1e6)
        head = ["%s %s SIP/2.0" % (method, ruri),
                "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK-%s;rport" % (src_host, port, tag),
                "Max-Forwards: 70", "Call-ID: %s@%s" % (tag, src_host), "CSeq: 1 %s" % method] + headers
        sock.sendto(("\r\n".join(head + ["Content-Length: %d" % len(body), "", ""])).encode() + body, dst)
        sock.settimeout(0.5)
        deadline = time.time() + 3
        while time.time() < deadline:
            try:
                data = sock.recv(65535)
            except socket.timeout:
                continue
            m = re.match(rb"SIP/2\.0 (\d{3})", data)
            if m and int(m.group(1)) >= 200:
                return int(m.group(1))
        return None
    finally:
        sock.close()


@test("example_trust_domain_and_cluster_sources", "issue 14 (defence in depth) R5 RFC 3325", standin="skip")
def t_example_sources(ctx):
    """The shipped example as a 2-node cluster whose CLUSTER_NET and TRUST_NET name only the nodes'
    addresses (127.0.0.1, 127.0.0.2). A KDMQ from 127.0.0.9 carrying a well-formed message that opens
    a session with an attacker connected gets 403 and changes nothing (imconf.sessions identical
    before and after, on both nodes); a SUBSCRIBE from 127.0.0.9 with a P-Asserted-Identity gets
    403 and no subscription. Control: the same KDMQ from a node's address is applied (so the 403
    came from the source check, not from a malformed body or a bad MAC: the message is sealed
    with the cluster's secret, as if captured from a node; that a node's address can still be
    spoofed is what the MAC is for, tested in cluster_authenticated_messages)."""
    import cluster
    nets = '"127.0.0.1/32,127.0.0.2/32"'
    secret_file = ctx.rundir / "imconf-dmq.secret"
    secret_file.write_text("# the example's DMQ_SECRET_FILE\n%s\n" % cluster.SECRET)

    def make(ctx, name, host, port, notify):
        srv = ExampleServer(ctx, ROOT / "kamailio-cfg" / "imconf.cfg", node=name, host=host, port=port, defines=[
            "WITH_DMQ", 'DMQ_ADDRESS="sip:%s:%d"' % (host, port), 'DMQ_NOTIFY="sip:%s"' % notify,
            "CLUSTER_NET=" + nets, "TRUST_NET=" + nets, 'DMQ_SECRET_FILE="%s"' % secret_file,
            'DB_URL="sqlite:///%s"' % (ctx.rundir / ("%s.db" % name))])
        ctx.servers.append(srv)
        return srv

    ctx.log_allow = r"DEBUG|enable_dmq|refused"
    cl = cluster.Cluster(ctx, n=2, make=make)
    cl.start()
    node = cl.nodes[0]
    evil_session, attacker = "sip:evil-chat@127.0.0.1", "sip:attacker@evil.example"
    body = cluster.seal(cluster.SECRET, 0x5eed, int(time.time() * 1000), 1, cluster.open_ops(evil_session, attacker))
    kdmq = ["From: <sip:127.0.0.9:5999>;tag=x", "To: <sip:imconf@%s:%d>" % (node.host, node.port),
            "Content-Type: application/x-imconf-cluster"]
    before = [n.rpc("imconf.sessions").structs() for n in cl.nodes]
    code = udp_request("127.0.0.9", (node.host, node.port), "KDMQ", "sip:imconf@%s:%d" % (node.host, node.port),
                       kdmq, body)
    expect(code == 403, "KDMQ from 127.0.0.9 (not in CLUSTER_NET): %s, want 403" % code)
    time.sleep(0.5)
    after = [n.rpc("imconf.sessions").structs() for n in cl.nodes]
    expect(after == before, "a refused KDMQ changed the sessions: %s -> %s" % (before, after))
    expect(re.search(r"KDMQ from 127\.0\.0\.9:\d+ refused", node.log_text()), "no log line for the refused KDMQ")

    sub = ["From: <%s>;tag=y" % ALICE, "To: <%s>" % SESSION, "Event: conference",
           "Accept: application/conference-info+xml", "Contact: <sip:alice@127.0.0.9:5998>", "Expires: 600",
           "P-Asserted-Identity: <%s>" % ALICE]
    node.rpc("imconf.session_open", SESSION, "ad-hoc")
    code = udp_request("127.0.0.9", (node.host, node.port), "SUBSCRIBE", SESSION, sub)
    expect(code == 403, "SUBSCRIBE with a P-Asserted-Identity from 127.0.0.9 (outside TRUST_NET): %s, want 403" % code)
    subs = node.rpc("imconf.subscriptions").structs()
    expect(not any(s.get("subscriber") for s in subs), "a subscription was made: %s" % subs)

    code = udp_request("127.0.0.2", (node.host, node.port), "KDMQ", "sip:imconf@%s:%d" % (node.host, node.port),
                       kdmq, body)
    expect(code == 200, "control: the same KDMQ from a node's address: %s, want 200" % code)
    deadline = time.time() + 3
    while cl.participants(0, evil_session) != 1 and time.time() < deadline:
        time.sleep(0.1)
    expect(cl.participants(0, evil_session) == 1,
           "control: the KDMQ from a node's address was not applied (is the test's message well-formed?)")


@test("kemi_example_trust_domain", "issue 14 (trust domain) R5 RFC 3325", standin="skip")
def t_kemi_example_trust(ctx):
    """The shipped KEMI lab example (imconf-kemi.cfg + imconf.lua) with TRUST_NET=127.0.0.1/32: a
    SUBSCRIBE with a P-Asserted-Identity from 127.0.0.9 gets 403 and is logged; the same from
    127.0.0.1 reaches imconf (404: no such session)."""
    srv = start_example(ctx, ROOT / "kamailio-cfg" / "imconf-kemi.cfg", defines=[
        'IMCONF_LUA="%s"' % (ROOT / "kamailio-cfg" / "imconf.lua"), 'TRUST_NET="127.0.0.1/32"'])
    ctx.log_allow = r"refused"
    sub = ["From: <%s>;tag=y" % ALICE, "To: <%s>" % SESSION, "Event: conference",
           "Accept: application/conference-info+xml", "Contact: <sip:alice@127.0.0.9:5998>", "Expires: 600",
           "P-Asserted-Identity: <%s>" % ALICE]
    code = udp_request("127.0.0.9", (srv.host, srv.port), "SUBSCRIBE", SESSION, sub)
    expect(code == 403, "SUBSCRIBE with a P-Asserted-Identity from 127.0.0.9: %s, want 403" % code)
    expect(re.search(r"from 127\.0\.0\.9 refused: P-Asserted-Identity", srv.log_text()), "no log line for the refusal")
    code = udp_request("127.0.0.1", (srv.host, srv.port), "SUBSCRIBE", SESSION, sub)
    expect(code == 404, "the same SUBSCRIBE from 127.0.0.1 (inside TRUST_NET): %s, want imconf's 404" % code)


@test("cluster_takeover_graceful_and_crash", "issue 9 (enable_dmq) R72 R33 R40 R25", standin="skip")
def t_cluster_takeover(ctx):
    """Three nodes, three subscriptions through each. Node 3 stops (SIGTERM): it sends its
    subscribers nothing (R72) and hands their state to the peers, which notify them in the same
    dialogs with the next version and CSeq and their own Contact; a refresh sent there is
    accepted. Then node 2 is killed (SIGKILL): after its silence the last node takes over its
    subscriptions too (full state, the CSeq jumping ahead, R40). After each step a change fed to
    node 1 reaches all nine: merged views equal the truth, versions gapless, CSeqs increasing."""
    import cluster
    ctx.log_allow = r"DEBUG|enable_dmq"
    cl = cluster.Cluster(ctx)
    cl.start()
    s = "sip:takeover@127.0.0.1"
    users = ["sip:%s@127.0.0.1" % n for n in ("alice", "bob", "carol", "dave", "erin", "frank")]
    alice, bob, carol, dave, erin, frank = users
    cl.feed(0, "imconf.session_open", s, "ad-hoc")
    truth = {}
    cluster_feed_round(cl, s, [(0, alice, "connected"), (1, bob, "connected"), (2, carol, "connected")], truth)
    cl.wait_everywhere(s, 3)
    subs = [cluster.Subscriber(ctx, cl.nodes[i], s, who, "t%d-%d" % (i, k))
            for i, who in enumerate((alice, bob, carol)) for k in range(3)]
    for sub in subs:
        sub.subscribe()
    time.sleep(1.0)  # the subscriptions reach the peers (timer, 100 ms) and everyone settles

    def settle_and_check(what, jumps=False):
        problems = cluster.settled_problems(subs, truth, what, jumps)
        expect(not problems, "\n".join(problems))

    settle_and_check("before any node left")
    before = {sub.call_id: len(sub.notifies()) for sub in subs}
    cl.nodes[2].stop()
    time.sleep(0.5)
    for sub in subs[6:]:
        got = sub.notifies()[before[sub.call_id]:]
        expect(got, "%s: no NOTIFY from the peer that took the subscription over" % sub.call_id)
        head = got[0][0]
        expect("terminated" not in (sipua.header(head, "Subscription-State") or ""),
               "%s: node 3 ended the subscription on stopping (R72: nothing is sent)" % sub.call_id)
        expect(sub.target_port() in (cl.ports[0], cl.ports[1]),
               "%s: the takeover NOTIFY's Contact is %s, not a live node" % (sub.call_id, sub.target_port()))
    cluster_feed_round(cl, s, [(0, dave, "connected")], truth)
    settle_and_check("after node 3 stopped")
    for sub in subs[6:]:
        code = sub.refresh()
        expect(code == 200, "%s: refresh sent to the new target got %s" % (sub.call_id, code))
    # a crash loses what changed in the last replication interval (100 ms timer, docs/cluster.md):
    # the state the peers hold is the last NOTIFY's once that interval has passed
    time.sleep(0.5)
    cl.crash(1)
    time.sleep(4.5)  # PEER_TIMEOUT_MS (3.5 s) and a timer tick
    cluster_feed_round(cl, s, [(0, erin, "connected"), (0, frank, "alerting")], truth)
    # R40: node 2's subscribers' versions jump into full state (its last NOTIFYs may not have
    # reached the replicas); never back
    settle_and_check("after node 2 crashed", jumps=True)
    for sub in subs:
        expect(sub.target_port() == cl.ports[0],
               "%s: last NOTIFY's Contact port %s, want node 1's %d" % (sub.call_id, sub.target_port(), cl.ports[0]))


@test("cluster_crash_right_after_a_notify", "R40 R33 issue 17 (fix 2)", standin="skip")
def t_cluster_crash_after_notify(ctx):
    """Three nodes; four subscribers through node 2. A change fed to node 1 reaches them (node 2
    sends the NOTIFYs) and node 2 is killed at once, before its next replication tick told the
    peers the new version (100 ms). After its silence a peer takes the subscriptions over: each
    subscriber's next NOTIFY is full state with a version above the one it holds (a strict
    RFC 4575 subscriber discards one that is not higher; before issue 17 it repeated) and a
    higher CSeq; its view is the truth."""
    import cluster
    ctx.log_allow = r"DEBUG|enable_dmq"
    cl = cluster.Cluster(ctx)
    s = "sip:crashnotify@127.0.0.1"
    alice, bob, carol = ("sip:%s@127.0.0.1" % n for n in ("alice", "bob", "carol"))
    truth = session_of_two(cl, s, alice, bob)
    subs = [cluster.Subscriber(ctx, cl.nodes[1], s, alice, "cn%d" % k) for k in range(4)]
    for sub in subs:
        sub.subscribe()
    time.sleep(1.0)  # the replicas reach the peers; everyone settles
    before = {sub.call_id: len(sub.notifies()) for sub in subs}
    cl.feed(0, "imconf.participant", s, carol, "connected")
    truth[carol] = "connected"
    deadline = time.time() + 3
    while not all(len(sub.notifies()) > before[sub.call_id] for sub in subs) and time.time() < deadline:
        time.sleep(0.002)
    cl.crash(1)
    held = {}
    for sub in subs:
        _, versions, cseqs = sub.view()
        expect(len(sub.notifies()) > before[sub.call_id], "%s: no NOTIFY for the change" % sub.call_id)
        held[sub.call_id] = (versions[-1], cseqs[-1], len(sub.notifies()))
    time.sleep(4.5)  # PEER_TIMEOUT_MS (3.5 s) and a timer tick: a peer takes them over
    for sub in subs:
        ctx.wait_for("%s: a NOTIFY from the successor" % sub.call_id,
                     lambda: len(sub.notifies()) > held[sub.call_id][2], timeout=5)
        _, versions, cseqs = sub.view()
        i = len([1 for _, b in sub.notifies()[:held[sub.call_id][2]] if b.strip()])
        expect(versions[i] > held[sub.call_id][0] and sub.full[i] and cseqs[held[sub.call_id][2]] > held[sub.call_id][1],
               "R40/R33: %s held version %d CSeq %d; the successor sent version %d (full: %s) CSeq %d"
               % (sub.call_id, held[sub.call_id][0], held[sub.call_id][1], versions[i], sub.full[i],
                  cseqs[held[sub.call_id][2]]))
        problems = sub.check(truth, "after the successor took over", jumps=True)
        expect(not problems, "\n".join(problems))


@test("cluster_two_nodes_killed_at_once", "issue 17 (dmq_replicas) R40 R33", standin="skip")
def t_cluster_two_killed(ctx):
    """Five nodes, `dmq_replicas` 2 (the default): each subscription's replica is kept by its
    owner's first two successors only (imconf.stats cluster_replicas: twice the subscriptions
    over the cluster, not four times). Four subscribers through each node. Nodes 4 and 5 are
    killed (SIGKILL) 0.6 s apart, so that they fall silent in different timer ticks: every one of
    their subscriptions is taken over by a survivor (a successor that was itself killed leaves
    its share to the next), and after a change every subscriber's view is the truth, its
    versions jumping ahead into full state, never back."""
    import cluster
    ctx.log_allow = r"DEBUG|enable_dmq"
    cl = cluster.Cluster(ctx, n=5)
    s = "sip:twokilled@127.0.0.1"
    alice, bob, carol = ("sip:%s@127.0.0.1" % n for n in ("alice", "bob", "carol"))
    truth = session_of_two(cl, s, alice, bob)
    subs = [cluster.Subscriber(ctx, cl.nodes[i], s, alice, "k%d-%d" % (i, k)) for i in range(5) for k in range(4)]
    for sub in subs:
        sub.subscribe()
    time.sleep(1.0)  # replicated, settled

    def replicas():
        return [int(n.rpc("imconf.stats").structs()[0]["cluster_replicas"]) for n in cl.nodes if not n.stopped]
    held = replicas()
    ctx.note("replicas per node with dmq_replicas=2: %s" % held)
    expect(sum(held) == 2 * len(subs), "dmq_replicas 2: %s replicas over the cluster for %d subscriptions, "
           "want %d" % (held, len(subs), 2 * len(subs)))
    cl.crash(3)
    time.sleep(0.6)
    cl.crash(4)
    time.sleep(5.0)  # PEER_TIMEOUT_MS (3.5 s) after the later one, and a tick
    cluster_feed_round(cl, s, [(0, carol, "connected")], truth)
    problems = cluster.settled_problems(subs, truth, "after two nodes were killed", jumps=True)
    expect(not problems, "\n".join(problems))
    for sub in subs:
        expect(sub.target_port() in cl.ports[:3], "%s: last NOTIFY from port %s, not a survivor"
               % (sub.call_id, sub.target_port()))
    # the survivors hold replicas of each other's subscriptions again (two holders each)
    ctx.wait_for("every subscription replicated twice among the survivors",
                 lambda: sum(replicas()) == 2 * len(subs), timeout=5)


@test("cluster_takeover_during_a_fan_out", "issue 17 R40 R33 R32", standin="skip")
def t_cluster_takeover_under_load(ctx):
    """Three nodes; 1000 subscriptions through node 2. A change fed to node 1 makes node 2 fan
    out 1000 NOTIFYs, and node 2 is killed in the middle of it. After its silence nodes 1 and 3
    take its subscriptions over; after one more change every subscriber's view is the truth, its
    versions gapless or jumping ahead into full state, never back, its CSeqs increasing."""
    import cluster
    ctx.log_allow = r"DEBUG|enable_dmq"
    cl = cluster.Cluster(ctx, modparams=[("imconf", "max_subs_per_session", 2000),
                                         ("imconf", "max_subs_per_user_per_session", 2000)])
    s = "sip:underload@127.0.0.1"
    alice, bob, carol, dave = ("sip:%s@127.0.0.1" % n for n in ("alice", "bob", "carol", "dave"))
    truth = session_of_two(cl, s, alice, bob)
    time.sleep(3.5)  # node 2 synced (a SUBSCRIBE before gets 503)
    ua = sipua.Ua(cl.ports[1], SPORTS.take())
    ctx.cleanups.append(ua.close)
    ua.server = (cluster.Cluster.host(1), cl.ports[1])
    g = sipua.Dialogs(ua, s, alice, "u")
    codes = g.open(1000, expires=600, window=128)
    expect(sum(1 for c in codes.values() if c == 200) == 1000, "SUBSCRIBEs through node 2: %s"
           % sorted(set(codes.values()), key=str))
    ctx.wait_for("every initial NOTIFY", lambda: all(ua.notify_msgs.get(c) for c in g.dialogs), timeout=20)
    time.sleep(1.5)  # replicated to nodes 1 and 3, and past min_notify_interval_ms
    cl.feed(0, "imconf.participant", s, carol, "connected")
    truth[carol] = "connected"
    t0 = time.time()
    while time.time() - t0 < 2 and sum(len(ua.notify_msgs.get(c, [])) > 1 for c in g.dialogs) < 100:
        time.sleep(0.002)
    cl.crash(1)
    mid = sum(len(ua.notify_msgs.get(c, [])) > 1 for c in g.dialogs)
    ctx.note("node 2 killed with %d of 1000 change NOTIFYs received" % mid)
    time.sleep(5.0)  # PEER_TIMEOUT_MS and a tick: taken over
    cluster_feed_round(cl, s, [(0, dave, "connected")], truth)

    def problems():
        out = []
        for cid in g.dialogs:
            msgs = ua.notify_msgs.get(cid, [])
            out += cluster.view_problems(msgs, truth, "after the takeover", cid, jumps=True)
            if cluster.merged_view(msgs)[2][:1] != [True]:
                out.append("%s: the first document is not full (R46)" % cid)
        return out
    deadline = time.time() + 15
    while problems() and time.time() < deadline:
        time.sleep(0.5)
    bad = problems()
    expect(not bad, "%d of 1000 subscribers wrong after the takeover during a fan-out:\n%s"
           % (len(bad), "\n".join(bad[:5])))


@test("cluster_example_config", "issue 9 (enable_dmq, kamailio-cfg/imconf.cfg -A WITH_DMQ)", standin="skip")
def t_cluster_example(ctx):
    """The shipped example as two cluster nodes (-A WITH_DMQ, DMQ_ADDRESS, DMQ_NOTIFY, each its
    own DB_URL): a session opened and fed on node 1, subscribers through both nodes, a change fed
    to node 2: both subscribers' views equal the truth. Then both nodes stop and start again
    (issue 17: each persisted what it held): a change reaches both subscribers in their dialogs."""
    import cluster

    secret_file = ctx.rundir / "imconf-dmq.secret"
    secret_file.write_text(cluster.SECRET + "\n")

    def make(ctx, name, host, port, notify):
        srv = ExampleServer(ctx, ROOT / "kamailio-cfg" / "imconf.cfg", node=name, host=host, port=port, defines=[
            "WITH_DMQ", 'DMQ_ADDRESS="sip:%s:%d"' % (host, port), 'DMQ_NOTIFY="sip:%s"' % notify,
            'DMQ_SECRET_FILE="%s"' % secret_file, 'DB_URL="sqlite:///%s"' % (ctx.rundir / ("node%s.db" % port))])
        ctx.servers.append(srv)
        return srv

    ctx.log_allow = r"DEBUG|enable_dmq|db_url"
    cl = cluster.Cluster(ctx, n=2, make=make)
    s = "sip:example-cluster@127.0.0.1"
    alice, bob, carol = ("sip:%s@127.0.0.1" % n for n in ("alice", "bob", "carol"))
    truth = session_of_two(cl, s, alice, bob)
    subs = [cluster.Subscriber(ctx, cl.nodes[0], s, alice, "x0"), cluster.Subscriber(ctx, cl.nodes[1], s, bob, "x1")]
    for sub in subs:
        sub.subscribe(expires=600)
    cluster_feed_round(cl, s, [(1, carol, "connected")], truth)
    deadline = time.time() + 5  # the example's min_notify_interval_ms is 1000
    while True:
        problems = [p for sub in subs for p in sub.check(truth, "example cluster")]
        if not problems or time.time() > deadline:
            break
        time.sleep(0.2)
    expect(not problems, "\n".join(problems))
    time.sleep(1.5)  # written back (the example's db_flush_interval_ms: the default, 1 s)
    cl.stop_all()
    cl.start_all()
    time.sleep(3.5)  # the restored subscriptions are served (at most 3 s)
    cluster_feed_round(cl, s, [(0, "sip:dave@127.0.0.1", "connected")], truth)
    problems = cluster.settled_problems(subs, truth, "example cluster after a whole-cluster restart", jumps=True)
    expect(not problems, "\n".join(problems))


def cluster_state(cl):
    """What every node holds: its sessions and its subscriptions (imconf.sessions, .subscriptions;
    without expires_in, which the clock moves)."""
    subs = lambda n: [{k: v for k, v in st.items() if k != "expires_in"}  # noqa: E731
                      for st in n.rpc("imconf.subscriptions").structs()]
    return [(n.rpc("imconf.sessions").structs(), subs(n)) for n in cl.nodes]


def cluster_stats(srv):
    """The cluster_* counters of imconf.stats on one node."""
    for st in srv.rpc("imconf.stats").structs():
        if "cluster_accepted" in st:
            return {k: int(v) for k, v in st.items() if k.startswith("cluster_")}
    raise TestFailure("imconf.stats has no cluster counters")


def kdmq(src_host, node, body):
    """One KDMQ for the peer "imconf" of `node` from `src_host`: the final response code."""
    to = "sip:imconf@%s:%d" % (node.host, node.port)
    return udp_request(src_host, (node.host, node.port), "KDMQ", to,
                       ["From: <sip:%s:5999>;tag=x" % src_host, "To: <%s>" % to,
                        "Content-Type: application/x-imconf-cluster"], body)


@test("cluster_authenticated_messages", "issue 14 R96", standin="skip")
def t_cluster_auth(ctx):
    """Three nodes on one DMQ bus (the test cfg: no source filter, so only the MAC decides), a
    subscriber through node 1. The attacker, from 127.0.0.9 (no node), sends node 1 messages that
    would open a session with itself connected: unsigned (the old imconf-cluster/1 form), sealed
    with a wrong secret, and with a bad MAC line; a message sealed with the cluster's secret but 60 s
    old; each gets 403 and changes nothing on any node (imconf.sessions and imconf.subscriptions
    identical before and after), and each is counted under its reason. A message sealed with the
    secret, sent from a node's address (what a node sends), is applied. Replayed after the session
    it opened was closed, it gets 403 and the session stays closed. A flood of 200 forged messages
    from one address, each datagram from a new port, is counted whole but logged at most twice (once
    per address per 10 s). A real change fed on node 2 still reaches node 1's subscriber."""
    import cluster
    ctx.log_allow = r"DEBUG|enable_dmq|refused"
    cl = cluster.Cluster(ctx)
    cl.start()
    n1 = cl.nodes[0]
    s, alice = "sip:auth-chat@127.0.0.1", "sip:alice@127.0.0.1"
    cl.feed(0, "imconf.session_open", s, "ad-hoc")
    truth = {}
    cluster_feed_round(cl, s, [(0, alice, "connected")], truth)
    cl.wait_everywhere(s, 1)
    sub = cluster.Subscriber(ctx, n1, s, alice, "a0")
    sub.subscribe(expires=600)
    time.sleep(0.5)

    evil, attacker = "sip:evil-chat@127.0.0.1", "sip:attacker@evil.example"
    ops = cluster.open_ops(evil, attacker)
    now = lambda: int(time.time() * 1000)  # noqa: E731
    forged = [
        ("unsigned", (b"imconf-cluster/1 5eed\n" + ops), "cluster_refused_unsigned"),
        ("a wrong secret", cluster.seal("not-the-cluster-secret-0123456789", 0x5eed, now(), 1, ops),
         "cluster_refused_bad_mac"),
        ("a MAC of zeros", b"imconf-cluster/2 " + b"0" * 64 + b"\n" + b"5eed %x 2\n" % now() + ops,
         "cluster_refused_bad_mac"),
        ("the secret, 60 s old", cluster.seal(cluster.SECRET, 0x5eed, now() - 60000, 3, ops),
         "cluster_refused_stale"),
    ]
    for what, body, counter in forged:
        before, counts = cluster_state(cl), cluster_stats(n1)
        code = kdmq("127.0.0.9", n1, body)
        expect(code == 403, "KDMQ with %s from 127.0.0.9: %s, want 403" % (what, code))
        time.sleep(0.3)
        after = cluster_state(cl)
        expect(after == before, "KDMQ with %s changed the state: %s -> %s" % (what, before, after))
        got = cluster_stats(n1)
        expect(got[counter] == counts[counter] + 1, "KDMQ with %s: %s %d -> %d, want +1"
               % (what, counter, counts[counter], got[counter]))

    # what a node sends: applied
    valid = cluster.seal(cluster.SECRET, 0x5eed, now(), 10, ops)
    expect(kdmq("127.0.0.2", n1, valid) == 200, "a message sealed with the cluster's secret was refused")
    deadline = time.time() + 3
    while cl.participants(0, evil) != 1 and time.time() < deadline:
        time.sleep(0.1)
    expect(cl.participants(0, evil) == 1, "a message sealed with the cluster's secret was not applied")
    # the session closed, the captured message replayed (from anywhere): refused, still closed
    cl.feed(0, "imconf.session_close", evil)
    time.sleep(0.5)
    before, counts = cluster_state(cl), cluster_stats(n1)
    for src in ("127.0.0.9", "127.0.0.2"):
        code = kdmq(src, n1, valid)
        expect(code == 403, "the captured message replayed from %s: %s, want 403" % (src, code))
    time.sleep(0.3)
    expect(cluster_state(cl) == before, "a replayed message changed the state")
    expect(cl.participants(0, evil) is None, "the replayed message reopened the closed session")
    got = cluster_stats(n1)
    expect(got["cluster_refused_replay"] == counts["cluster_refused_replay"] + 2,
           "replays counted %d -> %d, want +2" % (counts["cluster_refused_replay"], got["cluster_refused_replay"]))

    # a flood: every message counted and refused, the log not flooded
    lines_before = len(re.findall(r"cluster message from 127\.0\.0\.7:", n1.log_text()))
    counts = cluster_stats(n1)
    import socket
    to = "sip:imconf@%s:%d" % (n1.host, n1.port)
    for i in range(200):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.7", 0))  # a new source port each time
        body = cluster.seal("an-attacker-guessing-the-secret-%d" % i, 0xbad, now(), i, ops)
        head = ["KDMQ %s SIP/2.0" % to, "Via: SIP/2.0/UDP 127.0.0.7:%d;branch=z9hG4bK-f%d" % (sock.getsockname()[1], i),
                "Max-Forwards: 70", "From: <sip:127.0.0.7:5999>;tag=f", "To: <%s>" % to, "Call-ID: flood-%d" % i,
                "CSeq: 1 KDMQ", "Content-Type: application/x-imconf-cluster", "Content-Length: %d" % len(body), "", ""]
        sock.sendto("\r\n".join(head).encode() + body, (n1.host, n1.port))
        sock.close()
    deadline = time.time() + 10
    while cluster_stats(n1)["cluster_refused_bad_mac"] < counts["cluster_refused_bad_mac"] + 200 \
            and time.time() < deadline:
        time.sleep(0.2)
    got = cluster_stats(n1)
    expect(got["cluster_refused_bad_mac"] == counts["cluster_refused_bad_mac"] + 200,
           "the flood: bad_mac %d -> %d, want +200" % (counts["cluster_refused_bad_mac"], got["cluster_refused_bad_mac"]))
    lines = len(re.findall(r"cluster message from 127\.0\.0\.7:", n1.log_text())) - lines_before
    expect(1 <= lines <= 2, "the flood of 200 forged messages wrote %d log lines, want 1 or 2" % lines)
    expect(cl.participants(0, evil) is None, "the flood changed the state")

    # the real nodes still talk
    bob = "sip:bob@127.0.0.1"
    cluster_feed_round(cl, s, [(1, bob, "connected")], truth)
    deadline = time.time() + 5
    while True:
        problems = sub.check(truth, "after the attacks")
        if not problems or time.time() > deadline:
            break
        time.sleep(0.2)
    expect(not problems, "\n".join(problems))


@test("cluster_changes_out_of_order", "R33 docs/cluster.md (Order)", standin="skip")
def t_cluster_order(ctx):
    """A peer's session_open and the participant fed right after it are two KDMQ requests, which
    the receiving node's workers may take in the other order. Authentic messages to node 1, sent
    in the wrong order: a participant before its session's open ends in the session (counted
    cluster_early_applied); a close before the open leaves the session closed; a change older
    than the open (an earlier session of the URI), or one whose session never opens within 5 s,
    is dropped (cluster_early_dropped) and changes nothing; a flood of 300 changes to sessions
    that never open keeps at most 256 and drops the rest, and the node still applies in-order
    changes. No message is refused."""
    import cluster
    ctx.log_allow = r"DEBUG|enable_dmq"
    cl = cluster.Cluster(ctx, n=2)
    cl.start()
    n1 = cl.nodes[0]
    node, counter = 0xe0e0, [0]
    now = lambda: int(time.time() * 1000)  # noqa: E731

    def send(*ops):
        counter[0] += 1
        code = kdmq("127.0.0.2", n1, cluster.seal(cluster.SECRET, node, now(), counter[0], b"".join(ops)))
        expect(code == 200, "an authentic message (%s) got %s, want 200" % (b"".join(ops)[:60], code))

    def early():
        st = cluster_stats(n1)
        return st["cluster_early_applied"], st["cluster_early_dropped"]

    def sessions():
        return {s["uri"]: int(s["participants"]) for s in n1.rpc("imconf.sessions").structs()}

    alice, bob = "sip:alice@127.0.0.1", "sip:bob@127.0.0.1"
    a, b, c, d = ("sip:order-%s@127.0.0.1" % x for x in "abcd")
    # a participant before its open: applied when the open comes
    send(cluster.op("P", 20, a, alice, "connected"))
    time.sleep(0.3)
    expect(a not in sessions(), "the participant opened session a by itself")
    send(cluster.op("O", 10, a, "ad-hoc", ""))
    time.sleep(0.3)
    expect(sessions().get(a) == 1, "session a after participant-then-open: %s, want 1 participant" % sessions().get(a))
    expect(early() == (1, 0), "early (applied, dropped) after session a: %s, want (1, 0)" % (early(),))
    # two participants and a departure before the open: all applied, in stamp order (last writer wins)
    send(cluster.op("P", 23, d, alice, "disconnected"))
    send(cluster.op("P", 22, d, alice, "connected"), cluster.op("P", 22, d, bob, "connected"))
    send(cluster.op("O", 21, d, "ad-hoc", ""))
    time.sleep(0.3)
    sub = cluster.Subscriber(ctx, n1, d, bob, "d0")
    sub.subscribe()
    time.sleep(0.5)
    problems = sub.check({bob: "connected"}, "session d (alice joined and left, bob joined, "
                         "all before the open)")
    expect(not problems, "\n".join(problems))
    # a close before the open: the session ends closed
    send(cluster.op("C", 40, b))
    send(cluster.op("O", 30, b, "ad-hoc", ""))
    time.sleep(0.3)
    expect(b not in sessions(), "session b is open after its close came before its open")
    applied, dropped = early()
    expect(applied == 5 and dropped == 0, "early after sessions d and b: %s, want (5, 0)" % ((applied, dropped),))
    # a change older than the open belongs to an earlier session of that URI: dropped
    send(cluster.op("P", 50, c, alice, "connected"))
    send(cluster.op("O", 60, c, "ad-hoc", ""))
    time.sleep(0.3)
    expect(sessions().get(c) == 0, "session c: an older participant was applied: %s" % sessions().get(c))
    expect(early() == (5, 1), "early after session c: %s, want (5, 1)" % (early(),))
    send(cluster.op("C", 61, c))
    # a flood of changes to sessions that never open: bounded, then dropped
    for i in range(0, 300, 50):
        send(*[cluster.op("P", 100 + i + k, "sip:never-%d@127.0.0.1" % (i + k), alice, "connected")
               for k in range(50)])
    expect(early()[1] == 1 + 300 - 256, "a flood of 300: dropped %d at once, want %d" % (early()[1] - 1, 300 - 256))
    time.sleep(5.5)
    send(cluster.op("P", 1000, "sip:never-more@127.0.0.1", alice, "connected"))  # expiry runs on arrival
    expect(early()[1] == 301, "5 s after the flood: dropped %d, want 301 (every change of the flood)" % early()[1])
    # in-order changes still apply, and nothing was refused
    send(cluster.op("O", 2000, "sip:order-e@127.0.0.1", "ad-hoc", ""),
         cluster.op("P", 2001, "sip:order-e@127.0.0.1", alice, "connected"))
    time.sleep(0.3)
    expect(sessions().get("sip:order-e@127.0.0.1") == 1, "an in-order open and participant after the flood")
    refused = {k: v for k, v in cluster_stats(n1).items() if k.startswith("cluster_refused") and v}
    expect(not refused, "messages refused: %s" % refused)


@test("cluster_group_state_reaches_every_node", "R95 R94 R33 issue 16", standin="skip")
def t_cluster_group_state(ctx):
    """Two nodes; an rcs subscriber (User-Agent profile-rcs) through node 1. The subject and the
    chairman fed on node 2 reach it (a description-only partial with the subject, then the
    chairman's role). Node 2 restarts and gets both back in its sync from node 1: its own rcs
    subscriber's first document shows the subject and marks its own entry yourown."""
    import xml.etree.ElementTree as ET
    import cluster
    from harness import NS
    ctx.log_allow = r"DEBUG|enable_dmq"
    cl = cluster.Cluster(ctx, n=2)
    cl.start()
    s, alice, bob = "sip:state-chat@127.0.0.1", "sip:alice@127.0.0.1", "sip:bob@127.0.0.1"
    cl.feed(0, "imconf.session_open", s, "ad-hoc")
    cl.feed(0, "imconf.participant", s, alice, "connected")
    cl.feed(0, "imconf.participant", s, bob, "connected")
    cl.wait_everywhere(s, 2)
    sub = cluster.Subscriber(ctx, cl.nodes[0], s, alice, "g0", extra=["User-Agent: profile-rcs"])
    sub.subscribe()
    cl.feed(1, "imconf.session_subject", s, "Ski trip", bob)
    cl.feed(1, "imconf.session_chairman", s, bob)

    def last_with(pred, what):
        deadline = time.time() + 5
        while time.time() < deadline:
            for _, body in reversed(sub.notifies()):
                if body.strip() and pred(ET.fromstring(body)):
                    return
            time.sleep(0.1)
        raise TestFailure("%s never reached the subscriber on node 1: %s" % (what, [b for _, b in sub.notifies()]))

    last_with(lambda r: r.findtext(NS + "conference-description/" + NS + "subject") == "Ski trip",
              "the subject fed on node 2")
    last_with(lambda r: any(u.get("entity") == bob and u.findtext(NS + "roles/" + NS + "entry") == "chairman"
                            for u in r.iter(NS + "user")), "the chairman fed on node 2")
    # node 2 restarts: it gets them back in its sync from node 1
    cl.restart(1)
    cl.wait_everywhere(s, 2)
    late = cluster.Subscriber(ctx, cl.nodes[1], s, bob, "g1", extra=["User-Agent: profile-rcs"])
    late.subscribe()
    time.sleep(0.5)
    first = ET.fromstring([b for _, b in late.notifies() if b.strip()][0])
    expect(first.findtext(NS + "conference-description/" + NS + "subject") == "Ski trip",
           "node 2's own subscriber does not see the subject")
    bob_entry = [u for u in first.iter(NS + "user") if u.get("entity") == bob]
    expect([u.get("yourown") for u in bob_entry] == ["true"]
           and [u.findtext(NS + "roles/" + NS + "entry") for u in bob_entry] == ["chairman"],
           "R95: after the sync, bob's own entry on node 2 is not yourown and chairman")
    # node 1 stops: node 2 takes alice's subscription over, and it stays rcs (R94: the profile
    # is part of the replicated subscription)
    time.sleep(0.5)  # the subscription's latest state reaches node 2 (every timer tick)
    cl.nodes[0].stop()
    n = len(sub.notifies())
    carol = "sip:carol@127.0.0.1"
    deadline = time.time() + 8
    while len(sub.notifies()) <= n and time.time() < deadline:
        time.sleep(0.2)
    cl.feed(1, "imconf.participant", s, carol, "alerting")
    deadline = time.time() + 5
    seen = None
    while time.time() < deadline and seen is None:
        for _, body in reversed(sub.notifies()):
            if body.strip() and b"carol" in (body if isinstance(body, bytes) else body.encode()):
                seen = ET.fromstring(body)
                break
        time.sleep(0.2)
    expect(seen is not None, "alice's subscription, taken over by node 2, did not hear of carol")
    status = [u.findtext(NS + "endpoint/" + NS + "status") for u in seen.iter(NS + "user")
              if u.get("entity") == carol]
    expect(status == ["dialing-out"] and seen.find(NS + "conference-state/" + NS + "user-count") is not None,
           "R94: after the takeover alice's documents are not rcs's (carol %s)" % status)


@test("cluster_key_rotation_without_loss", "issue 14 R96 R33", standin="skip")
def t_cluster_rekey(ctx):
    """Three nodes, each with its own dmq_secret_file holding the key OLD; a subscriber through
    node 1 while changes are fed on nodes 2 and 3 every 0.3 s throughout. The documented rotation,
    one node at a time with `imconf.cluster_rekey`: every file to "OLD, then NEW" (sign OLD, accept
    NEW), then to "NEW, then OLD", then to "NEW" alone. The subscriber's merged view equals the
    truth, versions gapless (no NOTIFY lost), and no node refused a message. Control: a node rekeyed
    to a key the others do not hold is not heard (its change does not reach node 1, which counts a
    bad MAC); a file with a short secret is refused by the RPC with the old keys kept."""
    import threading
    import cluster
    ctx.log_allow = r"DEBUG|enable_dmq|refused|cluster_rekey"
    old, new, other = "OLD-" + "a" * 32, "NEW-" + "b" * 32, "OTHER-" + "c" * 32
    files = [ctx.rundir / ("secret-n%d" % (i + 1)) for i in range(3)]
    for f in files:
        f.write_text(old + "\n")

    # each node reads its own file (as on separate hosts)
    class Keyed(cluster.Cluster):
        def _node(self, i, name=None):
            self.extra = [m for m in self.extra if m[1] != "dmq_secret_file"] + [
                ("imconf", "dmq_secret_file", str(files[i]))]
            return super()._node(i, name)

    cl = Keyed(ctx, modparams=[("imconf", "dmq_secret_file", str(files[0]))])
    cl.start()
    s, alice = "sip:rekey-chat@127.0.0.1", "sip:alice@127.0.0.1"
    cl.feed(0, "imconf.session_open", s, "ad-hoc")
    truth = {alice: "connected"}
    cl.feed(0, "imconf.participant", s, alice, "connected")
    cl.wait_everywhere(s, 1)
    sub = cluster.Subscriber(ctx, cl.nodes[0], s, alice, "r0")
    sub.subscribe(expires=600)

    stop, lock, errors = threading.Event(), threading.Lock(), []

    def feeder():
        i = 0
        while not stop.is_set():
            who = "sip:user%d@127.0.0.1" % (i % 6)
            status = "connected" if (i // 6) % 2 == 0 else "disconnected"
            r = cl.nodes[1 + i % 2].rpc("imconf.participant", s, who, status)
            with lock:
                if not r.ok:
                    errors.append(str(r))
                elif status == "disconnected":
                    truth.pop(who, None)
                else:
                    truth[who] = status
            i += 1
            time.sleep(0.3)

    t = threading.Thread(target=feeder, daemon=True)
    t.start()
    try:
        for phase in ([old, new], [new, old], [new]):
            for i, f in enumerate(files):
                f.write_text("\n".join(phase) + "\n")
                r = cl.nodes[i].rpc("imconf.cluster_rekey")
                expect(r.ok and "signing key" in r.text, "node %d: imconf.cluster_rekey: %s" % (i + 1, r))
                ctx.note("node %d rekeyed to %s: %s" % (i + 1, "/".join(k[:3] for k in phase), r.text.strip()))
                time.sleep(1.0)
    finally:
        stop.set()
        t.join(timeout=10)
    expect(not errors, "feeding failed: %s" % errors)
    deadline = time.time() + 5
    while True:
        with lock:
            problems = sub.check(dict(truth), "through the key rotation")
        if not problems or time.time() > deadline:
            break
        time.sleep(0.2)
    expect(not problems, "\n".join(problems))
    refused = {i + 1: {k: v for k, v in cluster_stats(n).items() if k.startswith("cluster_refused") and v}
               for i, n in enumerate(cl.nodes)}
    expect(not any(refused.values()), "messages refused during the rotation: %s" % refused)
    fps = {cl.nodes[i].rpc("imconf.cluster_rekey").text.strip() for i in range(3)}
    expect(len(fps) == 1, "the nodes report different keys after the rotation: %s" % fps)

    # a bad file: refused, the keys in use kept
    files[2].write_text("short\n")
    r = cl.nodes[2].rpc("imconf.cluster_rekey")
    expect(not r.ok and "at least 16" in r.text, "a 5-byte secret: imconf.cluster_rekey answered %s" % r)
    # control: node 3 with a key nobody else holds is not heard
    files[2].write_text(other + "\n")
    expect(cl.nodes[2].rpc("imconf.cluster_rekey").ok, "rekey to OTHER failed")
    before = cluster_stats(cl.nodes[0])["cluster_refused_bad_mac"]
    cl.feed(2, "imconf.participant", s, "sip:mallory@127.0.0.1", "connected")
    time.sleep(1.0)
    expect(cl.participants(0, s) == cl.participants(1, s) and cl.participants(2, s) == cl.participants(0, s) + 1,
           "a change signed with a key node 1 does not hold reached it (participants per node: %s)"
           % [cl.participants(i, s) for i in range(3)])
    expect(cluster_stats(cl.nodes[0])["cluster_refused_bad_mac"] > before, "node 1 did not count the bad MAC")
    files[2].write_text(new + "\n")
    expect(cl.nodes[2].rpc("imconf.cluster_rekey").ok, "rekey back to NEW failed")


@test("cluster_start_refused_without_secret", "issue 14 R96 INTERFACE(dmq_secret)", standin="skip")
def t_cluster_no_secret(ctx):
    """enable_dmq=1 without dmq_secret or dmq_secret_file, with a 5-byte dmq_secret, with both
    set, or with a dmq_secret_file that does not exist: Kamailio refuses to start, with one line
    naming the parameter, and no crash."""
    import cluster
    ctx.log_allow = r"(?i)dmq_secret|enable_dmq|init|mod_init"
    port = KPORTS.take()
    cases = [
        ([], "cluster messages must be authenticated"),
        ([("imconf", "dmq_secret", "short")], "at least 16"),
        ([("imconf", "dmq_secret", cluster.SECRET), ("imconf", "dmq_secret_file", "/nonexistent")], "not both"),
        ([("imconf", "dmq_secret_file", str(ctx.rundir / "missing.secret"))], "cannot read it"),
    ]
    for i, (mp, why) in enumerate(cases):
        mp = [("dmq", "server_address", "sip:127.0.0.1:%d" % port),
              ("dmq", "notification_address", "sip:127.0.0.1:%d" % port), ("imconf", "enable_dmq", 1)] + mp
        expect_start_refused(KamailioServer(ctx, defines=["IMCONF_DMQ"], modparams=mp, node="nosecret%d" % i,
                                            port=port), why, "case %d %s" % (i, mp[3:]))


# the hostile-cluster-message corpus (corpus.cluster_cases): IMCONF_CLUSTER_N cases (`make fuzz`: 10^4)
CLUSTER_N = int(os.environ.get("IMCONF_CLUSTER_N", "500"))


FUZZ_NODE = 0xf022   # the sender id the corpus's authentic messages carry


def node_stat(srv, name):
    for st in srv.rpc("imconf.stats").structs():
        if name in st:
            return int(st[name])
    raise TestFailure("imconf.stats of %s has no %s" % (srv.log_path.name, name))


def settle_node_shm(srv, want=None, tolerance=0, timeout=20, stable_s=2.0):
    """settle_shm for one node of a cluster."""
    return settle_shm(None, want=want, timeout=timeout, tolerance=tolerance, stable_s=stable_s,
                      read=lambda: node_stat(srv, "shm_bytes_in_use"))


def stable_cluster_state(cl, timeout=10):
    """cluster_state once two readings 0.5 s apart agree (NOTIFYs in flight settle)."""
    deadline = time.time() + timeout
    prev = cluster_state(cl)
    while time.time() < deadline:
        time.sleep(0.5)
        cur = cluster_state(cl)
        if cur == prev:
            return cur
        prev = cur
    return prev


def counter_moves(before, after):
    return {k[len("cluster_"):]: after[k] - before[k] for k in after}


@test("robustness_corpus_cluster", "issue 14 R96 (hostile cluster messages)", standin="skip")
def t_corpus_cluster(ctx):
    """IMCONF_CLUSTER_N (500; `make fuzz`: 10^4) generated KDMQ bodies (corpus.cluster_cases, seed
    IMCONF_CORPUS_SEED) sent to node 1 of two from 127.0.0.9, at most 32 unanswered at once, each
    answered: unauthenticated ones (random bytes, old format, damaged, truncated or extended seals,
    wrong secret, another body's MAC, non-UTF-8, ~60 kB) 403; authentic but stale (31 s to 1 h
    off) or replayed (exact resends, reused or too old counters) 403; authentic with malformed
    operations 400; authentic, well-formed but hostile (unknown sessions, invalid values, junk
    URIs, random session and subscription records, extreme stamps) 200 or 400. Phase A
    (categories 1-3) changes nothing on either node (imconf.sessions, imconf.subscriptions), and
    shm settles back; phase B (category 4) may change state; the fuzzer's sender then goes silent
    and node 1 takes over (or refuses cleanly) the random subscription records it sent; phase C
    resends phase B's accepted messages: 403, nothing changes. The cluster_* counters move by
    exactly the cases of each kind (accepted by at least the applied ones); the same processes
    on both nodes; the subscriber's NOTIFYs parse, versions gapless; node 1's refusal log stays
    within one line per 10 s; no log line forged by a value's newline; and changes still flow
    both ways (an update of a participant fed on node 1 after the extreme stamps reaches node 2)."""
    import cluster
    ctx.log_allow = r"DEBUG|enable_dmq|refused|not applied|left out"
    cl = cluster.Cluster(ctx, n=2)
    cl.start()
    n1, n2 = cl.nodes
    src = "127.0.0.9"
    target, member = corpus.CL_TARGET, corpus.CL_MEMBER
    cl.feed(0, "imconf.session_open", target, "ad-hoc")
    cl.feed(0, "imconf.participant", target, member, "connected")
    cl.wait_everywhere(target, 1)
    sub = cluster.Subscriber(ctx, n1, target, member, "fz0")
    sub.subscribe(expires=3600)
    time.sleep(0.5)
    pids = [all_pids(n) for n in cl.nodes]
    cases = corpus.cluster_cases(CORPUS_SEED, CLUSTER_N, cluster.SECRET, FUZZ_NODE)
    phases = {p: [c for c in cases if c.phase == p] for p in "ABC"}
    prefix = "clfz-%x-%x" % (CORPUS_SEED, int(time.time()))
    results, sent = {}, {}
    counts, secs = {}, {}
    summary = {"seed": CORPUS_SEED, "cases": len(cases), "node_id": "%x" % FUZZ_NODE}
    problems = []

    def send(phase):
        s0, t = cluster_stats(n1), time.time()
        corpus.run_cluster(src, (n1.host, n1.port), phases[phase], call_prefix=prefix, results=results, sent=sent)
        secs[phase] = round(time.time() - t, 1)
        # the last answers were sent after the counting: nothing is in flight
        counts[phase] = counter_moves(s0, cluster_stats(n1))

    def judge(phase):
        for c in phases[phase]:
            code = results[c.key]
            if code not in c.allowed:
                problems.append("%s (phase %s, category %d %s, variant %s, %d bytes): %s, allowed %s; body %.200r"
                                % (c.key, phase, c.category, corpus.CL_CATEGORIES[c.category], c.name,
                                   len(sent.get(c.key, b"")), code, sorted(c.allowed), sent.get(c.key)))

    def reason_of(c):
        return corpus.cluster_open(sent[c.key], [cluster.SECRET])[0]

    try:
        t_start = time.time()
        # phase A: categories 1-3 change nothing
        before = stable_cluster_state(cl)
        shm0 = settle_node_shm(n1)
        send("A")
        judge("A")
        after = stable_cluster_state(cl)
        if after != before:
            problems.append("phase A (unauthenticated, stale/replayed, malformed) changed the state:\n%s\nbefore:\n%s"
                            % (after, before))
        cat = lambda p, k: [c for c in phases[p] if c.category == k]  # noqa: E731
        a1, a2, a3 = cat("A", 1), cat("A", 2), cat("A", 3)
        want = {"refused_unsigned": sum(reason_of(c) == "unsigned" for c in a1),
                "refused_bad_mac": sum(reason_of(c) == "bad_mac" for c in a1),
                "refused_malformed": len(a3)}
        got = counts["A"]
        for k, v in want.items():
            if got[k] != v:
                problems.append("phase A: cluster_%s moved by %d, want %d" % (k, got[k], v))
        if got["refused_stale"] + got["refused_replay"] != len(a2):
            problems.append("phase A: cluster_refused_stale + _replay moved by %d + %d, want %d (category 2)"
                            % (got["refused_stale"], got["refused_replay"], len(a2)))
        # (cluster_accepted counts applied messages only: the real peer's heartbeats move it, the
        # authentic malformed ones of category 3 must not; not checked exactly for that reason)
        shm1 = settle_node_shm(n1, want=shm0, tolerance=64 * 1024)
        summary["shm_phase_a"] = [shm0, shm1]
        if shm1 > shm0 + 64 * 1024:
            problems.append("node 1: shm_bytes_in_use %d before phase A, %d after it settled" % (shm0, shm1))

        # phase B: category 4, authentic hostile content
        send("B")
        judge("B")
        b400 = sum(results[c.key] == 400 for c in phases["B"])
        # the highest stamp node 1 read (it moves the node's clock, core::cluster::next_stamp)
        max_stamp = max([int(line.split(" ")[1], 16)
                         for c in phases["B"] if results[c.key] == 200
                         for line in corpus.cluster_open(sent[c.key], [cluster.SECRET])[1][3].decode().splitlines()
                         if line[:2] in ("O ", "C ", "P ")] or [0])
        got = counts["B"]
        for k in ("refused_unsigned", "refused_bad_mac", "refused_stale", "refused_replay"):
            if got[k]:
                problems.append("phase B: cluster_%s moved by %d, want 0" % (k, got[k]))
        if got["refused_malformed"] != b400:
            problems.append("phase B: cluster_refused_malformed moved by %d, but %d cases got 400"
                            % (got["refused_malformed"], b400))
        b200 = sum(results[c.key] == 200 for c in phases["B"])
        if got["accepted"] < b200:
            problems.append("phase B: cluster_accepted moved by %d, want at least the %d applied"
                            % (got["accepted"], b200))
        # the fuzzer's sender goes silent: node 1 takes over what it claimed to hold
        silent = "peer %016x silent" % FUZZ_NODE
        took = "subscriptions of peer %016x (it went silent)" % FUZZ_NODE
        try:
            ctx.wait_for("node 1 notices the fuzzer's sender went silent and takes over",
                         lambda: silent in n1.log_text() and took in n1.log_text(), timeout=15, interval=0.2)
        except TestFailure as e:
            problems.append(str(e))
        summary["takeover"] = [l.split("enable_dmq: ", 1)[-1] for l in n1.log_text().splitlines() if took in l]

        # phase C: resends of phase B's (applied) messages change nothing
        before = stable_cluster_state(cl)
        send("C")
        judge("C")
        after = stable_cluster_state(cl)
        if after != before:
            problems.append("phase C (resent authentic messages) changed the state:\n%s\nbefore:\n%s" % (after, before))
        got = counts["C"]
        if got["refused_stale"] + got["refused_replay"] != len(phases["C"]):
            problems.append("phase C: cluster_refused_stale + _replay moved by %d + %d, want %d"
                            % (got["refused_stale"], got["refused_replay"], len(phases["C"])))
        for k in ("refused_unsigned", "refused_bad_mac", "refused_malformed"):
            if got[k]:
                problems.append("phase C: cluster_%s moved by %d, want 0" % (k, got[k]))
        elapsed = time.time() - t_start

        # the nodes: the same processes, NOTIFYs that parse, changes flowing both ways
        for i, n in enumerate(cl.nodes):
            now = all_pids(n)
            if not n.alive() or now != pids[i]:
                problems.append("node %d: processes %s before, %s after (alive: %s)" % (i + 1, pids[i], now, n.alive()))
        import xml.etree.ElementTree as ET
        summary["target_notifies"] = len(sub.notifies())
        unparsable = []
        for head, body in sub.notifies():
            try:
                if body.strip():
                    ET.fromstring(body)
            except ET.ParseError as e:
                line, col = e.position
                unparsable.append("%s at %r" % (e, body.splitlines()[line - 1][max(0, col - 60):col + 60]))
        if unparsable:
            problems.append("%d of %d NOTIFYs to the subscriber of %s are not well-formed XML, e.g. %s"
                            % (len(unparsable), len(sub.notifies()), target, unparsable[0]))
        else:
            _, versions, cseqs = sub.view()
            if versions != list(range(1, len(versions) + 1)) or any(b <= a for a, b in zip(cseqs, cseqs[1:])):
                problems.append("the subscriber of %s got versions %s, CSeqs %s" % (target, versions, cseqs))
        live = "sip:fuzz-live-after@127.0.0.1"
        bob, carol = "sip:bob@127.0.0.1", "sip:carol@127.0.0.1"
        cl.feed(1, "imconf.session_open", live, "ad-hoc")
        cl.feed(1, "imconf.participant", live, member, "connected")
        try:
            cl.wait_everywhere(live, 1)
            subs = [cluster.Subscriber(ctx, n, live, member, "live%d" % i) for i, n in enumerate(cl.nodes)]
            for s_ in subs:
                s_.subscribe()
            time.sleep(0.5)
            truth = {member: "connected"}
            # node 1 first: its first stamp after the corpus's extreme ones
            cluster_feed_round(cl, live, [(0, member, "alerting"), (0, bob, "connected"), (1, carol, "connected"),
                                          (1, bob, "alerting"), (0, carol, "disconnected")], truth)
            deadline = time.time() + 5
            while True:
                late = [p for s_ in subs for p in s_.check(truth, "after the corpus")]
                if not late or time.time() > deadline:
                    break
                time.sleep(0.2)
            if late and max_stamp >= (1 << 64) - (1 << 16):
                late.append("(node 1 read stamp %x in the corpus: the next stamp it makes overflows, "
                            "core::cluster::next_stamp)" % max_stamp)
            problems.extend(late)
        except TestFailure as e:
            problems.append("after the corpus: %s" % e)

        # the logs
        text1 = n1.log_text()
        lines = len(re.findall(r"cluster message from 127\.0\.0\.9:", text1))
        allowed_lines = 2 + int(elapsed // 10)
        if lines > allowed_lines:
            problems.append("node 1 logged %d refusals from %s in %.0f s, want at most %d (one per 10 s)"
                            % (lines, src, elapsed, allowed_lines))
        for i, n in enumerate(cl.nodes):
            text = n.log_text()
            all_lines = text.splitlines()
            forged = [j for j, l in enumerate(all_lines) if l.lstrip().startswith(corpus.CL_FORGED_LINE.decode())]
            if forged:
                problems.append("node %d: %d log lines forged by a CR/LF inside a value of an authentic message, e.g. "
                                "%r following %r" % (i + 1, len(forged), all_lines[forged[0]][:100],
                                                     all_lines[forged[0] - 1][-160:]))
            caught = [l for l in all_lines if re.search(r"panic caught|panicked at", l)]
            if caught:
                problems.append("node %d: %s" % (i + 1, caught[:5]))
        summary.update({
            "phases": {p: len(v) for p, v in phases.items()}, "seconds": secs, "seconds_total": round(elapsed, 1),
            "by_category": {}, "by_variant": {}, "counters_moved": counts,
            "refusal_log_lines": lines, "refusal_log_lines_allowed": allowed_lines,
            "not_applied_lines": len(re.findall(r"not applied", text1)),
            "left_out_lines": len(re.findall(r"left out", text1)),
            "not_taken_over_lines": len(re.findall(r"not taken over", text1)),
            "category4_400": b400})
        summary["max_stamp_applied"] = "%x" % max_stamp
        for c in cases:
            code = str(results.get(c.key))
            k = "%d %s" % (c.category, corpus.CL_CATEGORIES[c.category])
            summary["by_category"].setdefault(k, {})
            summary["by_category"][k][code] = summary["by_category"][k].get(code, 0) + 1
            v = "%d/%s" % (c.category, c.name if c.category != 4 else ("many-ops" if c.name == "many-ops" else
                                                                       "+".join(sorted(set(c.name.split("+"))))))
            summary["by_variant"].setdefault(v, {})
            summary["by_variant"][v][code] = summary["by_variant"][v].get(code, 0) + 1
        ctx.note("cluster corpus: %d cases (seed %d) in %.1fs (A %ss, B %ss, C %ss): %s; counters moved %s; "
                 "%d refusal lines (allowed %d)" % (len(cases), CORPUS_SEED, elapsed, secs.get("A"), secs.get("B"),
                                                   secs.get("C"), summary["by_category"], counts, lines, allowed_lines))
        expect(not problems, "%d problems:\n  %s" % (len(problems), "\n  ".join(p[:1500] for p in problems[:30])))
    finally:
        summary["problems"] = problems[:200]
        (ctx.rundir / "cluster-corpus-summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True))


def cut(cl, sides):
    """A partition of the DMQ bus between `sides` (lists of node indexes), by the test cfg's
    $shv(dmq_cut): each node drops KDMQ from the nodes of the other sides. `[range(n)]` heals."""
    for side in sides:
        others = [cluster_host(i) for other in sides if other is not side for i in other]
        for i in side:
            r = cl.nodes[i].rpc("pv.shvSet", "dmq_cut", "str", "," + ",".join(others) + ",")
            expect(r.ok, "node %d: pv.shvSet: %s" % (i + 1, r))


def cluster_host(i):
    import cluster
    return cluster.Cluster.host(i)


def stat(srv, name):
    return int(srv.rpc("imconf.stats").structs()[0][name])


@test("cluster_partition_and_heal", "issue 17 (partitions) R33 R40", standin="skip")
def t_cluster_partition(ctx):
    """Five nodes, two subscribers through each. The DMQ bus is cut 3|2 (each side drops KDMQ
    from the other: the SIP path to the subscribers stays). The two nodes without a majority
    stop notifying (`cluster_fenced` 1) and take nothing over; the three with it take the
    other side's subscriptions over. Changes are fed on both sides (one user changed on both:
    the later change wins), and the cut lasts past tm's fr_timer, so that they cross only by
    the sessions' merge at the heal (without it, each side lacks the other's). While cut, no subscriber hears from the minority. When the cut
    heals, the sides merge their sessions, the minority yields the dialogs the majority took
    over, and every subscriber's view is the truth, its versions and CSeqs never going back;
    a last change is then notified once per dialog, by one node."""
    import cluster
    ctx.log_allow = r"DEBUG|enable_dmq"
    # tm gives up on a KDMQ request after 2 s (its retransmissions would carry a change across a
    # shorter cut); dmq does not ping (a failed ping would disable the other side's nodes in
    # dmq's list until its next ping, docs/cluster.md "Partitions")
    cl = cluster.Cluster(ctx, n=5, modparams=[("dmq", "ping_interval", 300), ("tm", "fr_timer", 2000)])
    s = "sip:partition@127.0.0.1"
    alice, bob, carol, dave, erin, frank = ("sip:%s@127.0.0.1" % n
                                            for n in ("alice", "bob", "carol", "dave", "erin", "frank"))
    truth = session_of_two(cl, s, alice, bob)
    subs = [cluster.Subscriber(ctx, cl.nodes[i], s, alice, "pt%d-%d" % (i, k)) for i in range(5) for k in range(2)]
    for sub in subs:
        sub.subscribe()
    time.sleep(1.0)  # replicated
    majority, minority = [0, 1, 2], [3, 4]
    cut(cl, [majority, minority])
    t_cut = time.time()
    ctx.wait_for("the minority fenced", lambda: all(stat(cl.nodes[i], "cluster_fenced") == 1 for i in minority),
                 timeout=5)
    expect(all(stat(cl.nodes[i], "cluster_fenced") == 0 for i in majority), "a majority node fenced itself")
    ctx.wait_for("the majority took the minority's subscriptions over",
                 lambda: all(sub.target_port() in [cl.ports[i] for i in majority] for sub in subs[6:]), timeout=8)
    before_changes = {sub.call_id: len(sub.notifies()) for sub in subs}
    cl.feed(0, "imconf.participant", s, carol, "connected")
    cl.feed(3, "imconf.participant", s, dave, "connected")
    cl.feed(4, "imconf.participant", s, erin, "alerting")
    time.sleep(0.3)
    cl.feed(1, "imconf.participant", s, erin, "connected")  # later: wins over the minority's
    truth.update({carol: "connected", dave: "connected", erin: "connected"})
    time.sleep(3.0)  # past tm's fr_timer: each side's changes reach the other only by the merge
    for sub in subs:
        late = [h for h, _ in sub.notifies()[before_changes[sub.call_id]:]]
        from_minority = [h for h in late if any(":%d" % cl.ports[i] in (sipua.header(h, "Contact", "m") or "")
                                                for i in minority)]
        expect(not from_minority, "%s: a NOTIFY from a fenced node during the partition" % sub.call_id)
    ctx.note("partition held %.1f s" % (time.time() - t_cut))
    cut(cl, [list(range(5))])  # heal
    ctx.wait_for("the minority serves again", lambda: all(stat(cl.nodes[i], "cluster_fenced") == 0 for i in minority),
                 timeout=8)
    cl.wait_everywhere(s, 5, timeout=10)  # alice, bob, carol, dave, erin on every node
    problems = cluster.settled_problems(subs, truth, "after the partition healed", jumps=True, timeout=10)
    expect(not problems, "\n".join(problems))
    time.sleep(3.5)  # the minority released what it still held
    before = {sub.call_id: len(sub.notifies()) for sub in subs}
    cl.feed(4, "imconf.participant", s, frank, "connected")
    truth[frank] = "connected"
    problems = cluster.settled_problems(subs, truth, "after a change past the heal", jumps=True)
    expect(not problems, "\n".join(problems))
    time.sleep(1.0)
    for sub in subs:
        got = len(sub.notifies()) - before[sub.call_id]
        expect(got == 1, "%s: %d NOTIFYs for one change after the heal (one node per dialog)" % (sub.call_id, got))
    yielded = [stat(cl.nodes[i], "cluster_dialogs_yielded") for i in range(5)]
    ctx.note("dialogs yielded per node after the heal: %s" % yielded)
    expect(yielded == [0, 0, 0, 2, 2], "dialogs yielded per node %s: want the minority's 4 taken over, and "
           "nothing taken from the majority" % yielded)
