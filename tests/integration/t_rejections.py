"""Integration tests: rejections (registered with @test; run by run.py)."""

from itest import *  # noqa: F401,F403


def rejection_ok_no_state(ctx):
    ctx.assert_no_subscription(ctx.name, "P9/R7: a rejected SUBSCRIBE creates no state")


@test("reject_unknown_uri_404", "R1 R9")
def t_404(ctx):
    ctx.start_server()
    ctx.open_session()
    ctx.sipp("reject_404.xml", "unknown-uri", keys=ctx.keys(ruri="sip:nosuch@127.0.0.1"))
    ctx.sipp("reject_404.xml", "factory-uri", keys=ctx.keys(ruri=FACTORY))
    # existence (P3) is checked before the feature tag (P4): 404, not 403 (R9)
    ctx.sipp("reject_404.xml", "unknown-and-no-tag",
             keys=ctx.keys(ruri="sip:nosuch@127.0.0.1", accept_contact_hdr="X-Omitted: Accept-Contact"))
    rejection_ok_no_state(ctx)


@test("reject_bad_event_489", "R10")
def t_489(ctx):
    ctx.start_server()
    ctx.open_session()
    ctx.sipp("reject_489.xml", "presence", keys=ctx.keys(event_hdr="Event: presence"))
    ctx.sipp("reject_489.xml", "no-event", keys=ctx.keys(event_hdr="X-Omitted: Event"))
    ctx.sipp("reject_489.xml", "conference-prefix", keys=ctx.keys(event_hdr="Event: conference-x"))
    # P1 comes first: even an unknown URI gets 489
    ctx.sipp("reject_489.xml", "presence-unknown-uri",
             keys=ctx.keys(event_hdr="Event: presence", ruri="sip:nosuch@127.0.0.1"))
    rejection_ok_no_state(ctx)


@test("reject_missing_feature_tag_403", "R4 R9")
def t_403_tag(ctx):
    ctx.start_server()
    ctx.open_session()
    ctx.sipp("reject_403.xml", "no-accept-contact", keys=ctx.keys(accept_contact_hdr="X-Omitted: Accept-Contact"))
    ctx.sipp("reject_403.xml", "large-message-only",
             keys=ctx.keys(accept_contact_hdr="Accept-Contact: *;+g.oma.sip-im.large-message"))
    ctx.sipp("reject_403.xml", "other-tag", keys=ctx.keys(accept_contact_hdr="Accept-Contact: *;+g.3gpp.smsip"))
    rejection_ok_no_state(ctx)


@test("reject_unauthorized_subscriber_403", "R5 R6 R9")
def t_403_auth(ctx):
    ctx.start_server()
    ctx.open_session(participants=((ALICE, "connected"), (BOB, "connected"), (DAVE, "alerting")))
    ctx.rpc_ok("imconf.participant", SESSION, DAVE, "disconnected")
    ctx.sipp("reject_403.xml", "no-pai", keys=ctx.keys(pai_hdr="X-Omitted: P-Asserted-Identity"))
    ctx.sipp("reject_403.xml", "not-a-participant",
             keys=ctx.keys(pai_hdr="P-Asserted-Identity: <sip:mallory@127.0.0.1>", subscriber="sip:mallory@127.0.0.1",
                           subscriber_user="mallory"))
    ctx.sipp("reject_403.xml", "left-participant",
             keys=ctx.keys(pai_hdr="P-Asserted-Identity: <%s>" % DAVE, subscriber=DAVE, subscriber_user="dave"))
    rejection_ok_no_state(ctx)


@test("reject_not_acceptable_406", "R11")
def t_406(ctx):
    ctx.start_server()
    ctx.open_session()
    ctx.sipp("reject_406.xml", "pidf", keys=ctx.keys(accept_hdr="Accept: application/pidf+xml"))
    rejection_ok_no_state(ctx)


@test("reject_short_expires_423", "R12")
def t_423(ctx):
    ctx.start_server()
    ctx.open_session()
    ctx.sipp("reject_423.xml", "expires-1", keys=ctx.keys(expires_hdr="Expires: 1"))
    rejection_ok_no_state(ctx)


@test("reject_unknown_dialog_481", "R13")
def t_481(ctx):
    ctx.start_server()
    ctx.open_session()
    ctx.sipp("reject_481.xml", "stale-to-tag", keys=ctx.keys(to_tag_param=";tag=no-such-dialog"))
    rejection_ok_no_state(ctx)
