-- imconf example routing script for KEMI (Lua), loaded by kamailio-cfg/imconf-kemi.cfg.
--
-- The same as the request_route of kamailio-cfg/imconf.cfg, plus an example of feeding session
-- state from the script: a MESSAGE from the local application server (127.0.0.1) with
-- X-Session / X-Participant / X-Status headers. A real deployment calls the same functions where
-- it handles the session's INVITEs, BYEs and REFERs.
--
-- KEMI functions have a fixed arity: give every parameter, "" or "-" meaning "not given".
-- imconf_participant takes the first six arguments of the native function; its later ones
-- (privacy, nick, disconnection_method, disconnection_reason, contact) are set just before it by
-- KSR.imconf.imconf_participant_extra(...), for the same message. The native functions are also
-- reachable through KSR.x.modf (at most 6 parameters), e.g. with their optional arguments left out.

local function hdr(name)
	local v = KSR.pv.get("$hdr(" .. name .. ")")
	if v == nil or v == "" then
		return "-"
	end
	return v
end

-- Example feed: one MESSAGE per change of the session.
--   X-Op: open        X-Session: <session URI>  X-Kind: ad-hoc|...  [X-Group: <group URI>]
--   X-Op: participant X-Session  X-Participant: <AOIA>  X-Status: connected|alerting|disconnected
--                     [X-Role] [X-Privacy: 0|1] [X-Nick]
--   X-Op: close       X-Session
local function feed()
	local op = hdr("X-Op")
	local session = hdr("X-Session")
	local rc = -1
	if op == "open" then
		rc = KSR.imconf.imconf_session_open(session, hdr("X-Kind"), hdr("X-Group"))
	elseif op == "participant" then
		-- arguments 7 and 8 (privacy, nick) for the imconf_participant call that follows
		KSR.imconf.imconf_participant_extra(hdr("X-Privacy"), hdr("X-Nick"), "-", "-", "-")
		rc = KSR.imconf.imconf_participant(session, hdr("X-Participant"), hdr("X-Status"),
			hdr("X-Role"), "-", "-")
	elseif op == "close" then
		rc = KSR.imconf.imconf_session_close(session)
	end
	-- positive: done; negative: refused, the log names the bad argument
	if rc > 0 then
		KSR.sl.sl_send_reply(200, "OK")
	else
		KSR.sl.sl_send_reply(400, "Refused")
	end
end

function ksr_request_route()
	if KSR.maxfwd.process_maxfwd(10) < 0 then
		KSR.sl.sl_send_reply(483, "Too Many Hops")
		return 1
	end
	local method = KSR.pv.get("$rm")
	-- RFC 3325: an asserted identity counts only from the trust domain (TRUST_NET)
	local trust = (string.gsub(KSR.pv.get("$def(TRUST_NET)") or "", '^"(.*)"$', "%1"))
	if KSR.hdr.is_present("P-Asserted-Identity") > 0 and KSR.ipops.is_in_subnet(KSR.pv.get("$si"), trust) < 0 then
		KSR.warn("imconf: " .. method .. " from " .. KSR.pv.get("$si") .. " refused: P-Asserted-Identity from outside TRUST_NET\n")
		KSR.sl.sl_send_reply(403, "Forbidden")
		return 1
	end
	if method == "SUBSCRIBE" then
		-- every check of R1-R14 (docs/conformance.md), the reply and the NOTIFYs; -1: no reply was sent
		if KSR.imconf.imconf_handle_subscribe() < 0 then
			KSR.sl.sl_send_reply(500, "Server Internal Error")
		end
		return 1
	end
	if method == "ACK" then
		return 1
	end
	if method == "MESSAGE" and KSR.pv.get("$si") == "127.0.0.1" then
		feed()
		return 1
	end
	KSR.sl.sl_send_reply(405, "Method Not Allowed")
	return 1
end
