/*
 * imconf shim: the version and compile-flags strings Kamailio's loader compares with its own
 * (ksr_version_control, byte for byte). A translation unit of its own that includes nothing but
 * core/ver_defs.h, as core/sr_module.c expands it: from 6.1 a header pulled in before it
 * (mem/q_malloc.h) adds DBG_QM_MALLOC and friends to the string, and `kamailio -v` prints that
 * longer string while the loader compares the shorter one (scripts/kamailio_target.py).
 */
#include "core/ver_defs.h"

const char shim_ser_full_version[] = SER_FULL_VERSION;
const char shim_ser_compile_flags[] = SER_COMPILE_FLAGS;
