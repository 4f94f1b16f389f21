-- imconf-ims.lua: the routing of imconf-ims.cfg in Lua (KEMI), loaded by imconf-ims-kemi.cfg.
-- An IM server (the focus) behind an IMS/SIP core: the first INVITE to a session URI opens the
-- session, every INVITE dialog is a connected participant (privacy = its Privacy header, nick =
-- its From display name), a BYE disconnects it and the last BYE closes the session; SUBSCRIBEs
-- go to imconf. The assumptions are listed at the top of imconf-ims.cfg.
--
-- KEMI functions have a fixed arity: give every parameter, "-" meaning "not given".
-- KSR.imconf.imconf_participant takes the first six arguments of the native function; privacy
-- and nick (arguments 7 and 8) are set just before it by KSR.imconf.imconf_participant_extra.

-- a #!define of the cfg, without its quotes (read while routing: $def needs a message)
local defines = {}
local function define(name)
	if defines[name] == nil then
		local v = KSR.pv.get("$def(" .. name .. ")") or ""
		defines[name] = (string.gsub(v, '^"(.*)"$', "%1"))
	end
	return defines[name]
end

local function reply(code, reason)
	KSR.sl.sl_send_reply(code, reason)
	return 1
end

-- the session and identity of each INVITE dialog, by Call-ID (htable imd)
local function dialog_get(what)
	return KSR.htable.sht_get("imd", KSR.pv.get("$ci") .. "::" .. what)
end

local function answer()
	KSR.hdr.append_to_reply("Contact: <" .. dialog_get("s") .. ">;isfocus\r\n")
	KSR.sl.sl_send_reply(200, "OK")
end

local function subscribe()
	-- every check of R1-R14 (docs/conformance.md), the reply, the subscription and its NOTIFYs.
	-- R94: the output profile by User-Agent (docs/imconf.md "Output profiles"); "-": the default
	local ua = KSR.pv.get("$ua") or ""
	local profile = "-"
	if string.find(ua, "Jitsi") or string.find(ua, "Linphone") then
		profile = "rfc4575"
	elseif string.find(ua, "Samsung") or string.find(ua, "rcsjta") or string.find(ua, "Juphoon") then
		profile = "rcs"
	end
	if KSR.imconf.imconf_handle_subscribe_profile(profile) < 0 then
		KSR.sl.sl_send_reply(500, "Server Internal Error")
	end
end

-- an INVITE to a session URI: the participant is connected (the 200 OK follows at once)
local function join()
	local aoia = KSR.pv.get("$ai")
	if aoia == nil then
		return reply(403, "No Asserted Identity")
	end
	local user, domain = KSR.pv.get("$rU"), KSR.pv.get("$rd")
	if user == nil then
		return reply(404, "Not A Session URI")
	end
	local session = "sip:" .. user .. "@" .. domain
	if session == define("FACTORY_URI") then
		-- allocating a session URI for the factory is the session controller's job
		return reply(404, "Not A Session URI")
	end
	if dialog_get("s") ~= nil then
		-- a retransmission of an INVITE already fed: answer it again, feed nothing
		return answer()
	end
	local privacy = "-"
	if KSR.textops.is_present_hf("Privacy") > 0 then
		privacy = KSR.pv.get("$hdr(Privacy)")
	end
	local nick = KSR.pv.get("$(fn{s.unquote})")
	if nick == nil or nick == "" then
		nick = "-"
	end
	KSR.htable.sht_lock("ims", session)
	local role = "joined"
	if KSR.htable.sht_get("ims", session) == nil then
		-- the first INVITE opens the session
		if KSR.imconf.imconf_session_open(session, "ad-hoc", "-") < 0 then
			KSR.htable.sht_unlock("ims", session)
			return reply(500, "Session Not Opened")
		end
		KSR.htable.sht_seti("ims", session, 0)
		role = "originator"
	end
	KSR.imconf.imconf_participant_extra(privacy, nick, "-", "-", "-")
	if KSR.imconf.imconf_participant(session, aoia, "connected", role, "-", KSR.pv.get("$fu")) < 0 then
		if role == "originator" then
			KSR.imconf.imconf_session_close(session)
			KSR.htable.sht_rm("ims", session)
		end
		KSR.htable.sht_unlock("ims", session)
		return reply(400, "Participant Refused")
	end
	KSR.htable.sht_inc("ims", session)
	local ci = KSR.pv.get("$ci")
	KSR.htable.sht_sets("imd", ci .. "::s", session)
	KSR.htable.sht_sets("imd", ci .. "::a", aoia)
	KSR.htable.sht_unlock("ims", session)
	KSR.info("imconf-ims: " .. aoia .. " joined " .. session .. " (" .. role .. ")\n")
	answer()
end

-- a BYE in a participant's dialog: it is disconnected; the last one closes the session
local function leave()
	local session, aoia = dialog_get("s"), dialog_get("a")
	if session == nil then
		return reply(481, "Call/Transaction Does Not Exist")
	end
	local ci = KSR.pv.get("$ci")
	KSR.htable.sht_lock("ims", session)
	KSR.imconf.imconf_participant(session, aoia, "disconnected", "-", "-", "-")
	KSR.htable.sht_rm("imd", ci .. "::s")
	KSR.htable.sht_rm("imd", ci .. "::a")
	local left = (KSR.htable.sht_get("ims", session) or 1) - 1
	if left <= 0 then
		KSR.imconf.imconf_session_close(session)
		KSR.htable.sht_rm("ims", session)
		KSR.info("imconf-ims: " .. aoia .. " left, " .. session .. " closed\n")
	else
		KSR.htable.sht_seti("ims", session, left)
		KSR.info("imconf-ims: " .. aoia .. " left " .. session .. "\n")
	end
	KSR.htable.sht_unlock("ims", session)
	KSR.sl.sl_send_reply(200, "OK")
end

-- in-dialog requests: SUBSCRIBE refreshes go to imconf, BYE ends a participant's dialog
local function within_dialog()
	KSR.rr.loose_route()
	if KSR.is_SUBSCRIBE() then
		return subscribe()
	end
	if KSR.is_BYE() then
		return leave()
	end
	if KSR.is_method_in("IUMO") or KSR.is_INFO() then   -- INVITE UPDATE MESSAGE OPTIONS, INFO
		if dialog_get("s") == nil then
			return reply(481, "Call/Transaction Does Not Exist")
		end
		if KSR.is_INVITE() then
			return answer()
		end
		return reply(200, "OK")
	end
	return reply(405, "Method Not Allowed")
end

function ksr_request_route()
	if KSR.maxfwd.process_maxfwd(10) < 0 then
		return reply(483, "Too Many Hops")
	end
	if KSR.ipops.is_in_subnet(KSR.pv.get("$si"), define("CORE_NET")) < 0 then
		KSR.notice("imconf-ims: " .. KSR.pv.get("$rm") .. " from " .. KSR.pv.get("$si") .. " is not from the IMS core\n")
		return reply(403, "Not From The IMS Core")
	end
	if KSR.is_ACK() then
		return 1
	end
	if KSR.siputils.has_totag() > 0 then
		return within_dialog()
	end
	-- initial requests: a Route to this server (the core's pre-loaded route) is consumed
	if KSR.textops.is_present_hf("Route") > 0 then
		KSR.rr.loose_route()
	end
	if KSR.is_SUBSCRIBE() then
		return subscribe()
	end
	if KSR.is_INVITE() then
		return join()
	end
	if KSR.is_CANCEL() then
		-- INVITEs are answered at once: nothing left to cancel
		return reply(481, "Call/Transaction Does Not Exist")
	end
	if KSR.is_OPTIONS() then
		return reply(200, "OK")
	end
	return reply(405, "Method Not Allowed")
end

-- GET /metrics: Prometheus (xhttp_prom); POST /RPC: JSON-RPC (jsonrpcs), 127.0.0.1 only
function ksr_xhttp_event(evname)
	if KSR.pv.get("$si") ~= "127.0.0.1" then
		KSR.xhttp.xhttp_reply(403, "Forbidden", "text/plain", "local only\n")
		return 1
	end
	if KSR.xhttp_prom.check_uri() > 0 then
		KSR.xhttp_prom.dispatch()
		return 1
	end
	if string.find(KSR.pv.get("$hu") or "", "^/RPC") then
		KSR.jsonrpcs.dispatch()
		return 1
	end
	KSR.xhttp.xhttp_reply(404, "Not Found", "text/plain", "GET /metrics or POST /RPC\n")
	return 1
end
