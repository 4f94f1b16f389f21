/*
 * imconf shim: the module's lifecycle functions and what the script functions need of C
 * (evaluating and fixing their parameters). The tables and the `exports` descriptor are built
 * in Rust from one declaration (src/exports.rs, src/core/params.rs): a cdylib does not export
 * C-defined data symbols, and one list is what a newcomer edits. shim_layout.c checks them.
 */
#include <stddef.h>

#include "core/sr_module.h"
#include "core/mod_fix.h"
#include "core/timer_proc.h"
#include "core/dprint.h"
#include "core/route.h"

#include "shim.h"
#include "shim_int.h"

struct tm_binds shim_tmb;

/* ---- what the script functions Rust declares call ---- */

int shim_eval_args(void *m, int argc, void *v, shim_str_t *out, shim_msg_ref_t *ref)
{
	struct sip_msg *msg = m;
	action_u_t *vals = v;
	str s;
	int i;

	ref->id = msg->id;
	ref->pid = msg->pid;
	if(argc < 0 || argc > SHIM_MAX_ARGS)
		return -1;
	for(i = 0; i < argc; i++) {
		if(get_str_fparam(&s, msg, (fparam_t *)vals[i].u.data) < 0) {
			LM_ERR("cannot evaluate parameter %d\n", i + 1);
			return -1;
		}
		out[i].s = s.s;
		out[i].len = s.len;
	}
	return 0;
}

/* Rejects extra parameters at start-up; Rust checks the minimum at run time. param_no 0 (a call
 * without parameters, also KSR.x.modf) has nothing to fix. */
int shim_fixup_args(void **param, int param_no, int max)
{
	if(param_no > max) {
		LM_ERR("too many parameters (at most %d)\n", max);
		return E_CFG;
	}
	if(param_no == 0 || param == NULL)
		return 0;
	return fixup_spve_all(param, param_no);
}

int shim_fixup_free_args(void **param, int param_no)
{
	return fixup_free_spve_all(param, param_no);
}

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
	if(shim_fanout_register(rs_fanout_workers()) < 0)
		return -1;
	/* kamcmd stats.get_statistics imconf: (values computed from imconf.stats' counters) */
	return shim_stats_register();
}

int shim_child_init(int rank)
{
	if(rank == PROC_MAIN) {
		int interval_ms = rs_timer_interval_ms();
		if(fork_basic_utimer(PROC_TIMER, "IMCONF TIMER", 1, shim_timer_cb, NULL,
				   interval_ms * 1000) < 0) {
			LM_ERR("cannot start the timer process\n");
			return -1;
		}
		if(shim_fanout_fork() < 0)
			return -1;
	}
	return rs_child_init(rank);
}

void shim_mod_destroy(void)
{
	rs_mod_destroy();
}
