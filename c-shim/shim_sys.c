/*
 * imconf shim: logging, shared memory and cross-process locks.
 */
#include "core/dprint.h"
#include "core/mem/shm_mem.h"
#include "core/locking.h"

#include <signal.h>

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

/* Kamailio's children _exit() from their SIGTERM/SIGINT handler at once. A child stopped
 * while it holds a slot lock would leave that slot locked for the main process's final
 * write-back (mod_destroy), so the two signals wait while this process holds any imconf lock:
 * the pending one is taken right after the last release. Process-local: workers are
 * single-threaded. */
static int held_locks;
static sigset_t mask_before;

static void stop_signals_wait(void)
{
	if(held_locks++ == 0) {
		sigset_t stop;
		sigemptyset(&stop);
		sigaddset(&stop, SIGTERM);
		sigaddset(&stop, SIGINT);
		sigprocmask(SIG_BLOCK, &stop, &mask_before);
	}
}

static void stop_signals_resume(void)
{
	if(held_locks > 0 && --held_locks == 0)
		sigprocmask(SIG_SETMASK, &mask_before, NULL);
}

void shim_lock_get(void *lock)
{
	stop_signals_wait();
	lock_get((gen_lock_t *)lock);
}

void shim_lock_release(void *lock)
{
	lock_release((gen_lock_t *)lock);
	stop_signals_resume();
}

int shim_lock_try(void *lock)
{
	stop_signals_wait();
	if(lock_try((gen_lock_t *)lock) == 0)
		return 0;
	stop_signals_resume();
	return -1;
}
