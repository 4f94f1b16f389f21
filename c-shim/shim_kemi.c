/*
 * imconf shim: the KEMI exports (KSR.imconf.* in Lua, Python, ... scripts).
 *
 * Every function has the name of the native cfg function and calls the same Rust entry point
 * (rs_handle_subscribe / rs_script_call) as the native wrapper, so both behave identically: positive on success, negative on failure, never 0.
 * KEMI functions have a fixed arity of at most SR_KEMI_PARAMS_MAX (6) parameters, all given:
 * "" or "-" means "not given" (docs/interface.md). The table is added from mod_register, which Rust
 * defines (src/module/exports.rs): a cdylib does not export C-defined symbols.
 */
#include <stddef.h>

#include "core/kemi.h"
#include "core/dprint.h"
#include "core/route.h"
#include "core/parser/msg_parser.h"

#include "shim.h"
#include "shim_int.h"

static int script_call(sip_msg_t *msg, int fn_id, const shim_str_t *args, int argc)
{
	shim_msg_ref_t ref = {msg->id, msg->pid};
	return rs_script_call(fn_id, &ref, args, argc);
}

static void view_of(shim_str_t *out, const str *s)
{
	out->s = (s && s->s) ? s->s : NULL;
	out->len = (s && s->s) ? s->len : 0;
}

static int ki_handle_subscribe(sip_msg_t *msg)
{
	/* the native function is exported for REQUEST_ROUTE only; KEMI has no such table */
	if(!is_route_type(REQUEST_ROUTE) || msg->first_line.type != SIP_REQUEST) {
		LM_ERR("imconf_handle_subscribe: only for a request in the request route\n");
		return -1;
	}
	return rs_handle_subscribe(msg);
}

static int ki_session_open(sip_msg_t *msg, str *session_uri, str *kind, str *group_uri)
{
	shim_str_t args[3];
	view_of(&args[0], session_uri);
	view_of(&args[1], kind);
	view_of(&args[2], group_uri);
	return script_call(msg, SHIM_FN_SESSION_OPEN, args, 3);
}

static int ki_session_close(sip_msg_t *msg, str *session_uri)
{
	shim_str_t args[1];
	view_of(&args[0], session_uri);
	return script_call(msg, SHIM_FN_SESSION_CLOSE, args, 1);
}

static int ki_participant(sip_msg_t *msg, str *session_uri, str *aoia, str *status, str *role,
		str *listed_uri, str *from_uri)
{
	shim_str_t args[SHIM_MAX_ARGS];
	view_of(&args[0], session_uri);
	view_of(&args[1], aoia);
	view_of(&args[2], status);
	view_of(&args[3], role);
	view_of(&args[4], listed_uri);
	view_of(&args[5], from_uri);
	return script_call(msg, SHIM_FN_PARTICIPANT, args, 6);
}

static int ki_participant_extra(sip_msg_t *msg, str *privacy, str *nick,
		str *disconnection_method, str *disconnection_reason, str *contact)
{
	shim_str_t vals[SHIM_PARTICIPANT_EXTRA_ARGS];
	view_of(&vals[0], privacy);
	view_of(&vals[1], nick);
	view_of(&vals[2], disconnection_method);
	view_of(&vals[3], disconnection_reason);
	view_of(&vals[4], contact);
	return script_call(msg, SHIM_FN_PARTICIPANT_EXTRA, vals, SHIM_PARTICIPANT_EXTRA_ARGS);
}

static int ki_groups_reload(sip_msg_t *msg)
{
	return script_call(msg, SHIM_FN_GROUPS_RELOAD, NULL, 0);
}

/* clang-format off */
static sr_kemi_t shim_kemi_exports[] = {
	{ str_init("imconf"), str_init("imconf_handle_subscribe"),
		SR_KEMIP_INT, ki_handle_subscribe,
		{ SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ str_init("imconf"), str_init("imconf_session_open"),
		SR_KEMIP_INT, ki_session_open,
		{ SR_KEMIP_STR, SR_KEMIP_STR, SR_KEMIP_STR,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ str_init("imconf"), str_init("imconf_session_close"),
		SR_KEMIP_INT, ki_session_close,
		{ SR_KEMIP_STR, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ str_init("imconf"), str_init("imconf_participant"),
		SR_KEMIP_INT, ki_participant,
		{ SR_KEMIP_STR, SR_KEMIP_STR, SR_KEMIP_STR,
			SR_KEMIP_STR, SR_KEMIP_STR, SR_KEMIP_STR }
	},
	{ str_init("imconf"), str_init("imconf_participant_extra"),
		SR_KEMIP_INT, ki_participant_extra,
		{ SR_KEMIP_STR, SR_KEMIP_STR, SR_KEMIP_STR,
			SR_KEMIP_STR, SR_KEMIP_STR, SR_KEMIP_NONE }
	},
	{ str_init("imconf"), str_init("imconf_groups_reload"),
		SR_KEMIP_INT, ki_groups_reload,
		{ SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ {0, 0}, {0, 0}, 0, NULL, { 0, 0, 0, 0, 0, 0 } }
};
/* clang-format on */

int shim_kemi_register(void)
{
	return sr_kemi_modules_add(shim_kemi_exports) < 0 ? -1 : 0;
}
