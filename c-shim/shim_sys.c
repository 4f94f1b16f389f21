/*
 * imconf shim: logging, shared memory and cross-process locks.
 */
#include "core/dprint.h"
#include "core/mem/shm_mem.h"
#include "core/locking.h"

#include "shim.h"

_Static_assert(sizeof(gen_lock_t) <= SHIM_LOCK_SIZE, "gen_lock_t larger than SHIM_LOCK_SIZE");
_Static_assert(_Alignof(gen_lock_t) <= SHIM_LOCK_ALIGN, "gen_lock_t alignment above SHIM_LOCK_ALIGN");

static int shim_to_kam_level(int level)
{
	switch(level) {
		case SHIM_L_ERR: return L_ERR;
		case SHIM_L_WARN: return L_WARN;
		case SHIM_L_NOTICE: return L_NOTICE;
		case SHIM_L_INFO: return L_INFO;
		default: return L_DBG;
	}
}

int shim_log_enabled(int level)
{
	return is_printable(shim_to_kam_level(level));
}

void shim_log(int level, const char *prefix, const char *func, const char *msg, int len)
{
	/* LOG_FX takes the prefix and function name at run time, so lines name the Rust source */
	LOG_FX(DEFAULT_FACILITY, shim_to_kam_level(level), NULL, (char *)prefix, (char *)func,
			"%.*s\n", len, msg);
}

void *shim_shm_malloc(size_t size)
{
	return shm_malloc(size);
}

void shim_shm_free(void *p)
{
	shm_free(p);
}

unsigned long shim_shm_used(void)
{
	struct mem_info mi;
	shm_info(&mi);
	return mi.used_size;
}

unsigned long shim_shm_free_size(void)
{
	return shm_available();
}

int shim_lock_init(void *lock)
{
	return lock_init((gen_lock_t *)lock) == NULL ? -1 : 0;
}

void shim_lock_get(void *lock)
{
	lock_get((gen_lock_t *)lock);
}

void shim_lock_release(void *lock)
{
	lock_release((gen_lock_t *)lock);
}

int shim_lock_try(void *lock)
{
	return lock_try((gen_lock_t *)lock) == 0 ? 0 : -1;
}
