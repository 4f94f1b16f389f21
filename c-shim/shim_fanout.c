/*
 * imconf shim: the fan-out processes (issue 18). A change's NOTIFYs are queued in shm by the
 * process that fed it; it wakes one of these with the hash slot's number, as one datagram on a
 * socket pair made before the fork, and returns. Each datagram goes to one reader: a process
 * sends one batch of that slot's queue and, if more is left, wakes the next process itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/cfg/cfg_struct.h"
#include "core/dprint.h"
#include "core/pt.h"
#include "core/sr_module.h"

#include "shim.h"
#include "shim_int.h"

static int fanout_fds[2] = {-1, -1};
static int fanout_workers;

int shim_fanout_register(int workers)
{
	if(workers <= 0)
		return 0;
	if(socketpair(AF_UNIX, SOCK_DGRAM, 0, fanout_fds) < 0) {
		LM_ERR("fanout_workers: cannot make the socket pair: %s\n", strerror(errno));
		return -1;
	}
	/* a full queue of wakes must not block the process that fed a change */
	if(fcntl(fanout_fds[1], F_SETFL, fcntl(fanout_fds[1], F_GETFL) | O_NONBLOCK) < 0) {
		LM_ERR("fanout_workers: cannot make the socket non-blocking: %s\n", strerror(errno));
		return -1;
	}
	register_procs(workers);
	cfg_register_child(workers);
	fanout_workers = workers;
	return 0;
}

static void fanout_loop(void)
{
	unsigned int slot;
	ssize_t n;

	for(;;) {
		n = recv(fanout_fds[0], &slot, sizeof(slot), 0);
		if(n < 0 && errno == EINTR)
			continue;
		if(n != (ssize_t)sizeof(slot)) {
			LM_ERR("fan-out process: bad wake (%zd bytes): %s\n", n, n < 0 ? strerror(errno) : "");
			continue;
		}
		cfg_update();
		rs_fanout_work(slot);
	}
}

int shim_fanout_fork(void)
{
	int i, pid;

	for(i = 0; i < fanout_workers; i++) {
		/* PROC_RPC, as dmq's workers: every module's child_init runs in it (tm's included) */
		pid = fork_process(PROC_RPC, "IMCONF FANOUT", 1);
		if(pid < 0) {
			LM_ERR("cannot start fan-out process %d\n", i);
			return -1;
		}
		if(pid == 0) {
			if(cfg_child_init())
				return -1;
			fanout_loop(); /* never returns */
		}
	}
	return 0;
}

int shim_fanout_wake(unsigned int slot)
{
	if(fanout_fds[1] < 0)
		return -1;
	return send(fanout_fds[1], &slot, sizeof(slot), MSG_DONTWAIT) == (ssize_t)sizeof(slot) ? 0 : -1;
}
