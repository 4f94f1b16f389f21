-- imconf integration tests: the KEMI (Lua) twin of the routing blocks of imconf-test.cfg.
--
-- Loaded by app_lua when the template is started with -A IMCONF_KEMI (cfgengine "lua"). It must
-- do exactly what the native request_route and route[FEED] do, through KSR.imconf.* and
-- KSR.x.modf instead of the cfg functions, so that a test can run one scenario against both and
-- compare what the subscribers receive (kemi_same_notifies_as_native).
--
-- MESSAGE requests feed the session state: X-Imconf-Op names the call, X-Imconf-A1..A11 carry its
-- arguments ("-" = not given). Reply "200 Fed <rc>" when the call returned rc > 0, otherwise
-- "500 Feed Failed <rc>".

local FEED_ARGS = 11

local function hdr(name)
	local v = KSR.pv.get("$hdr(" .. name .. ")")
	if v == nil then
		return "-"
	end
	return v
end

-- KSR.x.modf answers -1 itself when it refuses a call (e.g. more than 6 parameters)
local function as_rc(v)
	if type(v) == "number" then
		return v
	end
	return -98
end

local function feed()
	local op = hdr("X-Imconf-Op")
	local a = {}
	for i = 1, FEED_ARGS do
		a[i] = hdr("X-Imconf-A" .. i)
	end
	local rc = -99
	if op == "open" then
		rc = KSR.imconf.imconf_session_open(a[1], a[2], a[3])
	elseif op == "close" then
		rc = KSR.imconf.imconf_session_close(a[1])
	elseif op == "part" then
		rc = KSR.imconf.imconf_participant(a[1], a[2], a[3], a[4], a[5], a[6])
	elseif op == "part3" then
		-- the optional-argument form of the native cfg: KEMI functions have a fixed arity, the
		-- native function (with its fixups) is reachable through KSR.x.modf
		rc = KSR.x.modf("imconf_participant", a[1], a[2], a[3])
	elseif op == "part8" then
		-- privacy and nick (arguments 7 and 8) through imconf_participant_extra
		KSR.imconf.imconf_participant_extra(a[7], a[8], "-", "-", "-")
		rc = KSR.imconf.imconf_participant(a[1], a[2], a[3], a[4], a[5], a[6])
	elseif op == "part8m" then
		-- the same through the native functions and their fixups
		KSR.x.modf("imconf_participant_extra", a[7], a[8])
		rc = KSR.x.modf("imconf_participant", a[1], a[2], a[3], a[4], a[5], a[6])
	elseif op == "part11" then
		-- arguments 7-11 (privacy, nick, disconnection_method, disconnection_reason, contact)
		KSR.imconf.imconf_participant_extra(a[7], a[8], a[9], a[10], a[11])
		rc = KSR.imconf.imconf_participant(a[1], a[2], a[3], a[4], a[5], a[6])
	elseif op == "part11m" then
		KSR.x.modf("imconf_participant_extra", a[7], a[8], a[9], a[10], a[11])
		rc = KSR.x.modf("imconf_participant", a[1], a[2], a[3], a[4], a[5], a[6])
	elseif op == "modf7" then
		-- KSR.x.modf takes at most 6 parameters: refused (-1) before the module is called
		rc = KSR.x.modf("imconf_participant", a[1], a[2], a[3], a[4], a[5], a[6], a[7])
	elseif op == "reload" then
		rc = KSR.imconf.imconf_groups_reload()
	elseif op == "subject" then
		rc = KSR.imconf.imconf_session_subject(a[1], a[2], a[3])
	elseif op == "chair" then
		rc = KSR.imconf.imconf_session_chairman(a[1], a[2])
	end
	rc = as_rc(rc)
	if rc > 0 then
		KSR.sl.sl_send_reply(200, "Fed " .. rc)
	else
		KSR.sl.sl_send_reply(500, "Feed Failed " .. rc)
	end
end

function ksr_request_route()
	local method = KSR.pv.get("$rm")
	if method == "SUBSCRIBE" then
		-- R94: the profile chosen by User-Agent, as the native test cfg does
		local ua = KSR.pv.get("$ua") or ""
		local rc
		if string.sub(ua, 1, 8) == "profile-" then
			rc = KSR.imconf.imconf_handle_subscribe_profile(string.sub(ua, 9))
		else
			rc = KSR.imconf.imconf_handle_subscribe()
		end
		if rc < 0 then
			-- the module could not reply (INTERFACE.md): the same fallback as the native cfg
			KSR.sl.sl_send_reply(500, "Script Fallback")
		end
		return 1
	end
	if method == "ACK" then
		return 1
	end
	if method == "MESSAGE" then
		feed()
		return 1
	end
	KSR.sl.sl_send_reply(405, "Method Not Allowed")
	return 1
end
