/* Private to the C shim: Kamailio APIs bound in shim_mod.c and used by the other .c files. */
#ifndef IMCONF_SHIM_INT_H
#define IMCONF_SHIM_INT_H

#include "modules/tm/tm_load.h"
#include "shim.h"

extern struct tm_binds shim_tmb;

/* Registers the module's counters with Kamailio's statistics (shim_stats.c); from mod_init. */
int shim_stats_register(void);

/* The fan-out processes (shim_fanout.c): registered in mod_init, forked from PROC_MAIN. */
int shim_fanout_register(int workers);
int shim_fanout_fork(void);

/* A field of a shim.h mirror has the offset and size of Kamailio's (compile-time check). */
#define SHIM_SAME_FIELD(shim, kam, f) \
	_Static_assert(offsetof(shim, f) == offsetof(kam, f) \
			&& sizeof(((shim *)0)->f) == sizeof(((kam *)0)->f), #kam "." #f)

#endif
