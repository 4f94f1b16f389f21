"""Integration tests: group documents (XDM policy) (registered with @test; run by run.py)."""

from itest import *  # noqa: F401,F403


def write_group_doc(ctx, filename, members, group=GROUP, text=None):
    """Writes one OMA group document into the test's groups_dir (R81-R88, docs/conformance.md shape): `members`
    [(uri, display name)] may see conference state (is-list-member), everyone else may not
    (other-identity -> false). `text` replaces the whole file (bad documents)."""
    d = ctx.rundir / "groups"
    d.mkdir(exist_ok=True)
    if text is None:
        entries = "".join('<entry uri="%s"><rl:display-name>%s</rl:display-name></entry>' % m for m in members)
        text = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                '<group xmlns="urn:oma:xml:poc:list-service" xmlns:rl="urn:ietf:params:xml:ns:resource-lists"'
                ' xmlns:cp="urn:ietf:params:xml:ns:common-policy" xmlns:ocp="urn:oma:xml:xdm:common-policy">\n'
                ' <list-service uri="%s"><display-name>Test group</display-name>\n'
                '  <list>%s</list>\n  <max-participant-count>20</max-participant-count>\n'
                '  <cp:ruleset>\n'
                '   <cp:rule id="members"><cp:conditions><is-list-member/></cp:conditions>'
                '<cp:actions><allow-conference-state>true</allow-conference-state></cp:actions></cp:rule>\n'
                '   <cp:rule id="others"><cp:conditions><ocp:other-identity/></cp:conditions>'
                '<cp:actions><allow-conference-state>false</allow-conference-state></cp:actions></cp:rule>\n'
                '  </cp:ruleset>\n </list-service>\n</group>\n') % (group, entries)
    (d / filename).write_text(text)
    return d


def start_with_groups(ctx):
    return ctx.start_server(modparams=[("imconf", "groups_dir", str(ctx.rundir / "groups"))])


def subscriber_keys(ctx, who, **over):
    user = who.split(":")[1].split("@")[0]
    return ctx.keys(subscriber=who, subscriber_user=user, pai_hdr="P-Asserted-Identity: <%s>" % who, **over)


@test("group_policy_decides_subscribe", "R8 R81-R85 R87 R49 R88", standin="skip")
def t_group_policy(ctx):
    """groups_dir holds grp1.xml: alice and bob (with rl:display-names) may see conference state,
    nobody else. Session conf1 of grp1 has only bob connected, fed without a nick. alice, a member
    but not a participant, subscribes to the group URI: 200 (R8), and bob is shown by his
    rl:display-name (R49, R88). dave, a participant but not a member, gets 403 (R85 via
    other-identity). A session of a group without a document gets 500 (R87)."""
    write_group_doc(ctx, "grp1.xml", [(ALICE, "Alice A."), (BOB, "Bob B.")])
    start_with_groups(ctx)
    ctx.open_session(participants=((BOB, "connected"), (DAVE, "connected")), kind="pre-defined", group=GROUP)
    alice = ctx.sipp_start("subscribe_until_noresource.xml", "alice", keys=ctx.keys(ruri=GROUP))
    ctx.wait_subscriptions(1)
    ctx.sipp("reject_403.xml", "dave-403", keys=subscriber_keys(ctx, DAVE))
    nodoc = "sip:conf2@127.0.0.1"
    ctx.rpc_ok("imconf.session_open", nodoc, "chat", "sip:nodoc@127.0.0.1")
    ctx.sipp("reject_500.xml", "nodoc-500", keys=ctx.keys(ruri=nodoc, session=nodoc))
    expect(len(ctx.subscriptions()) == 1, "R9: the 403 and the 500 created no subscription")
    ctx.rpc_ok("imconf.session_close", SESSION)
    ctx.sipp_wait(alice)
    docs = received_notifies(alice.paths["msg"])
    expect(docs and b"<display-text>Bob B.</display-text>" in docs[0][0].body,
           "R49/R88: bob, fed without a nick, should be shown by his rl:display-name: %s"
           % (docs[0][0].body if docs else "no NOTIFY"))
    expect(b"Alice A." not in docs[0][0].body, "alice is not a participant and must not be listed")


@test("groups_reload_revokes_and_recovers", "R71 R70 R67 R8", standin="skip")
def t_groups_reload(ctx):
    """alice and bob (members) subscribe to session conf1 of grp1. grp1.xml drops bob and
    imconf.groups_reload ends his subscription with terminated;reason=rejected, no body, and a
    refresh gets 481 (R71); alice's goes on. A broken grp1.xml: the reload answers an error naming
    the file, the previous document stays in force (alice may still subscribe, bob may not).
    grp1.xml removed: the reload closes the group's session, alice's subscription ends with
    noresource (R67) and the session is gone."""
    write_group_doc(ctx, "grp1.xml", [(ALICE, "Alice"), (BOB, "Bob")])
    start_with_groups(ctx)
    ctx.open_session(participants=((ALICE, "connected"), (BOB, "connected")), kind="pre-defined", group=GROUP)
    alice = ctx.sipp_start("subscribe_until_noresource.xml", "alice")
    bob = ctx.sipp_start("subscribe_until_noresource.xml", "bob", keys=subscriber_keys(ctx, BOB, end_reason="rejected"))
    ctx.wait_subscriptions(2)
    write_group_doc(ctx, "grp1.xml", [(ALICE, "Alice")])
    ctx.rpc_ok("imconf.groups_reload")
    ctx.sipp_wait(bob)
    subs = ctx.subscriptions()
    expect([field(x, "subscriber") for x in subs] == [ALICE], "R71: only alice's subscription should remain: %s" % subs)
    write_group_doc(ctx, "grp1.xml", [], text="<group xmlns='urn:oma:xml:poc:list-service'><list-service")
    r = ctx.rpc("imconf.groups_reload")
    expect(not r.ok and "grp1.xml" in r.text, "a broken document must be an RPC error naming the file: %s" % r)
    expect(len(ctx.subscriptions()) == 1, "a refused document changes nothing: %s" % ctx.subscriptions())
    ctx.sipp("reject_403.xml", "bob-still-403", keys=subscriber_keys(ctx, BOB))
    (ctx.rundir / "groups" / "grp1.xml").unlink()
    ctx.rpc_ok("imconf.groups_reload")
    ctx.sipp_wait(alice)
    ctx.assert_subscriptions_empty("R67: the group's document is gone, so is its session")
    r = ctx.rpc_ok("imconf.sessions")
    expect(SESSION not in r.text, "R67: session of a removed group still listed:\n%s" % r.text)


@test("rcs_profile_on_the_wire", "R89 R90 R91 R88 R57", standin="skip")
def t_rcs_profile(ctx):
    """rcs_compat=1 and a group document with <max-participant-count>20. Session conf1 of grp1:
    alice connected, carol invited and ringing (alerting). alice subscribes as an RCS client does
    (R89) and five changes follow one NOTIFY at a time: bob joins, carol declines (failed,
    603 Decline), dave rings, dave answers, bob leaves (no method given: departed); then the
    session closes. Every document must be one R90's client keeps (no alerting, every departure
    with a known disconnection-method, no deleted user, users with a user part), the first one
    carries maximum-user-count 20 and user-count, and merging every document the way that client
    does (never removing anyone, R90) gives the truth."""
    members = [(u, u.split(":")[1].split("@")[0].title()) for u in (ALICE, BOB, CAROL, DAVE)]
    write_group_doc(ctx, "grp1.xml", members)
    ctx.start_server(modparams=[("imconf", "groups_dir", str(ctx.rundir / "groups")),
                                ("imconf", "rcs_compat", 1)])
    ctx.body_profile = "rcs"
    ctx.rpc_ok("imconf.session_open", SESSION, "pre-defined", GROUP)
    ctx.rpc_ok("imconf.participant", SESSION, ALICE, "connected", "originator")
    ctx.rpc_ok("imconf.participant", SESSION, CAROL, "alerting", "invited")
    watch = ctx.sipp_start("subscribe_feed_watch.xml", "rcs-alice")
    wait_notified(ctx, 1)
    changes = [
        (BOB, "connected", "joined"),
        (CAROL, "disconnected", "invited", "-", "-", "-", "-", "failed", "603 Decline"),
        (DAVE, "alerting", "invited"),
        (DAVE, "connected", "invited"),
        (BOB, "disconnected", "joined"),
    ]
    for version, change in enumerate(changes, start=2):
        ctx.rpc_ok("imconf.participant", SESSION, *change)
        wait_notified(ctx, version)
    ctx.rpc_ok("imconf.session_close", SESSION)
    ctx.sipp_wait(watch)
    docs = [info for _, info in received_notifies(watch.paths["msg"], "rcs") if info]
    expect(len(docs) == 6, "want 6 documents (1 full + 5 partial), got %d" % len(docs))
    first = docs[0]
    expect(first.get("maximum_user_count") == 20, "R88/R91: maximum-user-count 20 in %s" % first)
    expect(first.get("user_count") == 2, "R91: user-count 2 (alice, ringing carol) in %s" % first)
    expect(first["users"].get(CAROL) == "dialing-out", "R91: alerting is sent as dialing-out: %s" % first)
    # R90: the client merges every document and never removes anyone
    shown = {}
    for d in docs:
        for u, st in d["users"].items():
            shown[u] = (st, d["methods"].get(u), d["reasons"].get(u))
    want = {ALICE: ("connected", None, None), BOB: ("disconnected", "departed", None),
            # R95: the reason as a Reason header value (rcsjta finds "603" in it, Samsung the cause)
            CAROL: ("disconnected", "failed", 'SIP;cause=603;text="Decline"'), DAVE: ("connected", None, None)}
    expect(shown == want, "R90/R91: the RCS client ends with %s, want %s" % (shown, want))
