/*
 * imconf shim: the module's counters in Kamailio's statistics (`kamcmd stats.get_statistics
 * imconf:`, $stat(...)). Each is a STAT_IS_FUNC statistic whose callback asks Rust for the value
 * (rs_stat_value), computed from the same counters as the imconf.stats RPC: no second
 * bookkeeping. The names come from Rust too (rs_stat_name), so both lists stay identical.
 * A stat_function takes no argument, hence one small trampoline per counter.
 */
#include "core/counters.h"
#include "core/dprint.h"

#include "shim.h"
#include "shim_int.h"

#define STATS_MAX SHIM_STATS_MAX

/* clang-format off */
#define STAT_FN(i) \
	static counter_val_t stat_fn_##i(void) { return (counter_val_t)rs_stat_value(i); }
STAT_FN(0) STAT_FN(1) STAT_FN(2) STAT_FN(3) STAT_FN(4) STAT_FN(5) STAT_FN(6) STAT_FN(7)
STAT_FN(8) STAT_FN(9) STAT_FN(10) STAT_FN(11) STAT_FN(12) STAT_FN(13) STAT_FN(14) STAT_FN(15)
STAT_FN(16) STAT_FN(17) STAT_FN(18) STAT_FN(19) STAT_FN(20) STAT_FN(21) STAT_FN(22) STAT_FN(23)
STAT_FN(24) STAT_FN(25) STAT_FN(26) STAT_FN(27) STAT_FN(28) STAT_FN(29) STAT_FN(30) STAT_FN(31)
STAT_FN(32) STAT_FN(33) STAT_FN(34) STAT_FN(35) STAT_FN(36) STAT_FN(37) STAT_FN(38) STAT_FN(39)
STAT_FN(40) STAT_FN(41) STAT_FN(42) STAT_FN(43) STAT_FN(44) STAT_FN(45) STAT_FN(46) STAT_FN(47)

static stat_function stat_fns[STATS_MAX] = {
	stat_fn_0, stat_fn_1, stat_fn_2, stat_fn_3, stat_fn_4, stat_fn_5, stat_fn_6, stat_fn_7,
	stat_fn_8, stat_fn_9, stat_fn_10, stat_fn_11, stat_fn_12, stat_fn_13, stat_fn_14, stat_fn_15,
	stat_fn_16, stat_fn_17, stat_fn_18, stat_fn_19, stat_fn_20, stat_fn_21, stat_fn_22, stat_fn_23,
	stat_fn_24, stat_fn_25, stat_fn_26, stat_fn_27, stat_fn_28, stat_fn_29, stat_fn_30, stat_fn_31,
	stat_fn_32, stat_fn_33, stat_fn_34, stat_fn_35, stat_fn_36, stat_fn_37, stat_fn_38, stat_fn_39,
	stat_fn_40, stat_fn_41, stat_fn_42, stat_fn_43, stat_fn_44, stat_fn_45, stat_fn_46, stat_fn_47,
};
/* clang-format on */

static stat_export_t stats[STATS_MAX + 1];

int shim_stats_register(void)
{
	int i;

	for(i = 0; i < STATS_MAX; i++) {
		const char *name = rs_stat_name(i);
		if(name == NULL)
			break;
		stats[i].name = (char *)name;
		/* computed values: resetting them means nothing */
		stats[i].flags = STAT_IS_FUNC | STAT_NO_RESET;
		stats[i].stat_pointer = (stat_var **)stat_fns[i];
	}
	if(i == STATS_MAX && rs_stat_name(i) != NULL) {
		LM_ERR("more counters than the %d statistics slots of shim_stats.c\n", STATS_MAX);
		return -1;
	}
	stats[i].name = NULL;
	if(register_module_stats("imconf", stats) != 0) {
		LM_ERR("cannot register the statistics of group imconf\n");
		return -1;
	}
	return 0;
}
