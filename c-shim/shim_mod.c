/*
 * imconf shim: what Kamailio reads of the module: the tables of script
 * functions, parameters and RPC commands, the lifecycle functions, and the
 * thin wrappers that turn script and RPC calls into calls of Rust entry points.
 * The `exports` descriptor itself is defined in Rust (src/module/exports.rs),
 * because a cdylib does not export C-defined data symbols.
 */
#include <stddef.h>

/* clang-format off */
#include "core/sr_module.h"
#include "core/mod_fix.h"
#include "core/rpc.h"
#include "core/timer_proc.h"
#include "core/dprint.h"

#include "shim.h"
#include "shim_int.h"

struct tm_binds shim_tmb;

_Static_assert(SHIM_MODULE_INTERFACE_VER == MODULE_INTERFACE_VER, "interface version");
_Static_assert(sizeof(shim_module_exports_t) == sizeof(struct module_exports), "exports size");
_Static_assert(offsetof(shim_module_exports_t, cmds) == offsetof(struct module_exports, cmds), "cmds");
_Static_assert(offsetof(shim_module_exports_t, params) == offsetof(struct module_exports, params), "params");
_Static_assert(offsetof(shim_module_exports_t, rpc_methods) == offsetof(struct module_exports, rpc_methods), "rpc");
_Static_assert(offsetof(shim_module_exports_t, pv_items) == offsetof(struct module_exports, pv_items), "pv");
_Static_assert(offsetof(shim_module_exports_t, response_f) == offsetof(struct module_exports, response_f), "resp");
_Static_assert(offsetof(shim_module_exports_t, init_mod_f) == offsetof(struct module_exports, init_mod_f), "init");
_Static_assert(offsetof(shim_module_exports_t, init_child_f) == offsetof(struct module_exports, init_child_f), "child");
_Static_assert(offsetof(shim_module_exports_t, destroy_mod_f) == offsetof(struct module_exports, destroy_mod_f), "destroy");

/* Defaults of docs/interface.md; mod_init (Rust) validates every value. */
static shim_params_t params = {
	.assert_identity_header = "P-Asserted-Identity",
	.trust_from_header = 0,
	.default_expires = 3600,
	.min_expires = 60,
	.max_expires = 3600,
	.min_notify_interval_ms = 1000,
	.max_pending_changes = 200,
	.max_subs_per_session = 256,
	.max_subs_per_user_per_session = 4,
	.terminate_on_leave = 1,
	.rcs_compat = 0,
	.emit_deleted_after_disconnect = 0,
	.report_dialing_out = 0,
	.accept_cpm_icsi = 0,
	.db_flush_interval_ms = 1000,
	.enable_dmq = 0,
	.hash_slots = 64,
	.timer_interval_ms = 100,
	.max_inflight_notifies = 1024,
	.tel_sip_equivalence = 1,
	.emit_disconnection_method = 0,
	.endpoint_entity = "user",
};

const shim_params_t *shim_get_params(void)
{
	return &params;
}

/* ---- script functions ---- */

static int w_handle_subscribe(struct sip_msg *msg, char *p1, char *p2)
{
	return rs_handle_subscribe(msg);
}

static int w_groups_reload(struct sip_msg *msg, char *p1, char *p2)
{
	shim_msg_ref_t ref = {msg->id, msg->pid};
	return rs_script_call(SHIM_FN_GROUPS_RELOAD, &ref, NULL, 0);
}

/* Evaluates the (variable) string parameters into views (valid until the next evaluation). */
static int eval_args(struct sip_msg *msg, int argc, action_u_t *vals, shim_str_t *args)
{
	str s;
	int i;

	if(argc > SHIM_MAX_ARGS)
		return -1;
	for(i = 0; i < argc; i++) {
		if(get_str_fparam(&s, msg, (fparam_t *)vals[i].u.data) < 0) {
			LM_ERR("cannot evaluate parameter %d\n", i + 1);
			return -1;
		}
		args[i].s = s.s;
		args[i].len = s.len;
	}
	return argc;
}

static int call_with_args(struct sip_msg *msg, int fn_id, int argc, action_u_t *vals)
{
	shim_str_t args[SHIM_MAX_ARGS];
	shim_msg_ref_t ref = {msg->id, msg->pid};

	if(eval_args(msg, argc, vals, args) < 0)
		return -1;
	return rs_script_call(fn_id, &ref, args, argc);
}

static int w_session_open(struct sip_msg *msg, int argc, action_u_t *vals)
{
	return call_with_args(msg, SHIM_FN_SESSION_OPEN, argc, vals);
}

static int w_session_close(struct sip_msg *msg, int argc, action_u_t *vals)
{
	return call_with_args(msg, SHIM_FN_SESSION_CLOSE, argc, vals);
}

static int w_participant(struct sip_msg *msg, int argc, action_u_t *vals)
{
	return call_with_args(msg, SHIM_FN_PARTICIPANT, argc, vals);
}

/* arguments 7-11 of imconf_participant, kept by Rust for the next call on this message */
static int w_participant_extra(struct sip_msg *msg, int argc, action_u_t *vals)
{
	return call_with_args(msg, SHIM_FN_PARTICIPANT_EXTRA, argc, vals);
}

/* Each fixup rejects extra parameters at start-up; Rust checks the minimum at run time.
 * param_no 0 (a call without parameters, also KSR.x.modf) has nothing to fix. */
#define ARGS_FIXUP(fname, max) \
	static int fname(void **param, int param_no) \
	{ \
		if(param_no > (max)) { \
			LM_ERR("too many parameters (at most %d)\n", (max)); \
			return E_CFG; \
		} \
		if(param_no == 0 || param == NULL) \
			return 0; \
		return fixup_spve_all(param, param_no); \
	}
ARGS_FIXUP(fixup_session_open, 3)
ARGS_FIXUP(fixup_session_close, 1)
ARGS_FIXUP(fixup_participant, SHIM_MAX_ARGS)
ARGS_FIXUP(fixup_participant_extra, SHIM_PARTICIPANT_EXTRA_ARGS)

cmd_export_t shim_cmds[] = {
	{"imconf_handle_subscribe", (cmd_function)w_handle_subscribe, 0, 0, 0, REQUEST_ROUTE},
	{"imconf_session_open", (cmd_function)w_session_open, VAR_PARAM_NO,
		fixup_session_open, fixup_free_spve_all, ANY_ROUTE},
	{"imconf_session_close", (cmd_function)w_session_close, VAR_PARAM_NO,
		fixup_session_close, fixup_free_spve_all, ANY_ROUTE},
	{"imconf_participant", (cmd_function)w_participant, VAR_PARAM_NO,
		fixup_participant, fixup_free_spve_all, ANY_ROUTE},
	{"imconf_participant_extra", (cmd_function)w_participant_extra, VAR_PARAM_NO,
		fixup_participant_extra, fixup_free_spve_all, ANY_ROUTE},
	{"imconf_groups_reload", (cmd_function)w_groups_reload, 0, 0, 0, ANY_ROUTE},
	{0, 0, 0, 0, 0, 0}
};

param_export_t shim_params[] = {
	{"server_contact", PARAM_STRING, &params.server_contact},
	{"conference_factory_uri", PARAM_STRING, &params.conference_factory_uri},
	{"assert_identity_header", PARAM_STRING, &params.assert_identity_header},
	{"trust_from_header", PARAM_INT, &params.trust_from_header},
	{"default_expires", PARAM_INT, &params.default_expires},
	{"min_expires", PARAM_INT, &params.min_expires},
	{"max_expires", PARAM_INT, &params.max_expires},
	{"min_notify_interval_ms", PARAM_INT, &params.min_notify_interval_ms},
	{"max_pending_changes", PARAM_INT, &params.max_pending_changes},
	{"max_subs_per_session", PARAM_INT, &params.max_subs_per_session},
	{"max_subs_per_user_per_session", PARAM_INT, &params.max_subs_per_user_per_session},
	{"terminate_on_leave", PARAM_INT, &params.terminate_on_leave},
	{"groups_dir", PARAM_STRING, &params.groups_dir},
	{"rcs_compat", PARAM_INT, &params.rcs_compat},
	{"emit_deleted_after_disconnect", PARAM_INT, &params.emit_deleted_after_disconnect},
	{"report_dialing_out", PARAM_INT, &params.report_dialing_out},
	{"accept_cpm_icsi", PARAM_INT, &params.accept_cpm_icsi},
	{"db_url", PARAM_STRING, &params.db_url},
	{"db_flush_interval_ms", PARAM_INT, &params.db_flush_interval_ms},
	{"enable_dmq", PARAM_INT, &params.enable_dmq},
	{"dmq_secret", PARAM_STRING, &params.dmq_secret},
	{"dmq_secret_file", PARAM_STRING, &params.dmq_secret_file},
	{"hash_slots", PARAM_INT, &params.hash_slots},
	{"timer_interval_ms", PARAM_INT, &params.timer_interval_ms},
	{"max_inflight_notifies", PARAM_INT, &params.max_inflight_notifies},
	{"debug_panic_user", PARAM_STRING, &params.debug_panic_user},
	{"tel_sip_equivalence", PARAM_INT, &params.tel_sip_equivalence},
	{"endpoint_entity", PARAM_STRING, &params.endpoint_entity},
	{"emit_disconnection_method", PARAM_INT, &params.emit_disconnection_method},
	{0, 0, 0}
};

/* ---- RPC commands ---- */

#define RPC_WRAPPER(fname, id) \
	static void fname(rpc_t *rpc, void *ctx) { rs_rpc_call((id), rpc, ctx); }
RPC_WRAPPER(rpc_session_open, SHIM_RPC_SESSION_OPEN)
RPC_WRAPPER(rpc_session_close, SHIM_RPC_SESSION_CLOSE)
RPC_WRAPPER(rpc_participant, SHIM_RPC_PARTICIPANT)
RPC_WRAPPER(rpc_groups_reload, SHIM_RPC_GROUPS_RELOAD)
RPC_WRAPPER(rpc_sessions, SHIM_RPC_SESSIONS)
RPC_WRAPPER(rpc_subscriptions, SHIM_RPC_SUBSCRIPTIONS)
RPC_WRAPPER(rpc_stats, SHIM_RPC_STATS)
RPC_WRAPPER(rpc_cluster_rekey, SHIM_RPC_CLUSTER_REKEY)

static const char *doc_session_open[] = {"Open an IM session: session_uri kind [group_uri]", 0};
static const char *doc_session_close[] = {"Release an IM session: session_uri", 0};
static const char *doc_participant[] = {
	"Participant change: session_uri aoia status [role [listed_uri [from_uri [privacy [nick "
	"[disconnection_method [disconnection_reason [contact]]]]]]]]", 0};
static const char *doc_groups_reload[] = {"Reread groups_dir", 0};
static const char *doc_sessions[] = {"List open sessions", 0};
static const char *doc_subscriptions[] = {"List subscriptions [session_uri]", 0};
static const char *doc_stats[] = {"Module counters", 0};
static const char *doc_cluster_rekey[] = {"Reread dmq_secret_file (cluster key rotation)", 0};

rpc_export_t shim_rpc_methods[] = {
	{"imconf.session_open", rpc_session_open, doc_session_open, 0},
	{"imconf.session_close", rpc_session_close, doc_session_close, 0},
	{"imconf.participant", rpc_participant, doc_participant, 0},
	{"imconf.groups_reload", rpc_groups_reload, doc_groups_reload, 0},
	{"imconf.sessions", rpc_sessions, doc_sessions, RET_ARRAY},
	{"imconf.subscriptions", rpc_subscriptions, doc_subscriptions, RET_ARRAY},
	{"imconf.stats", rpc_stats, doc_stats, 0},
	{"imconf.cluster_rekey", rpc_cluster_rekey, doc_cluster_rekey, 0},
	{0, 0, 0, 0}
};
/* clang-format on */

/* ---- lifecycle ---- */

static void shim_timer_cb(unsigned int ticks, void *param)
{
	rs_timer_tick();
}

int shim_mod_init(void)
{
	if(load_tm_api(&shim_tmb) < 0) {
		LM_ERR("cannot bind the tm API: load tm.so before imconf.so\n");
		return -1;
	}
	/* one dedicated process drives expiries and delayed NOTIFYs (R30, R61) */
	if(register_basic_timers(1) < 0) {
		LM_ERR("cannot register the timer process\n");
		return -1;
	}
	if(rs_mod_init() < 0)
		return -1;
	/* kamcmd stats.get_statistics imconf: (values computed from imconf.stats' counters) */
	return shim_stats_register();
}

int shim_child_init(int rank)
{
	if(rank == PROC_MAIN) {
		int interval_ms = params.timer_interval_ms > 0 ? params.timer_interval_ms : 100;
		if(fork_basic_utimer(PROC_TIMER, "IMCONF TIMER", 1, shim_timer_cb, NULL,
				   interval_ms * 1000) < 0) {
			LM_ERR("cannot start the timer process\n");
			return -1;
		}
	}
	return rs_child_init(rank);
}

void shim_mod_destroy(void)
{
	rs_mod_destroy();
}
