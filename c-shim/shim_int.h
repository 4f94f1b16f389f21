/* Private to the C shim: Kamailio APIs bound in shim_mod.c and used by the other .c files. */
#ifndef IMCONF_SHIM_INT_H
#define IMCONF_SHIM_INT_H

#include "modules/tm/tm_load.h"
#include "shim.h"

extern struct tm_binds shim_tmb;

/* imconf_participant from the native cfg and from KEMI (shim_mod.c): appends the arguments that
 * imconf_participant_extra() set for the same message, then calls Rust. `args` has room for
 * SHIM_MAX_ARGS views; argc <= SHIM_PARTICIPANT_ARGS. */
int shim_participant_call(struct sip_msg *msg, shim_str_t *args, int argc);
/* imconf_participant_extra(privacy, nick, disconnection_method, disconnection_reason, contact):
 * keeps up to SHIM_PARTICIPANT_EXTRA_ARGS values for the next imconf_participant of `msg`. */
int shim_participant_extra(struct sip_msg *msg, const shim_str_t *vals, int n);

/* Registers the module's counters with Kamailio's statistics (shim_stats.c); from mod_init. */
int shim_stats_register(void);

#endif
