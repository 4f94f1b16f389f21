/* Private to the C shim: Kamailio APIs bound in shim_mod.c and used by the other .c files. */
#ifndef IMCONF_SHIM_INT_H
#define IMCONF_SHIM_INT_H

#include "modules/tm/tm_load.h"

extern struct tm_binds shim_tmb;

#endif
