#!/usr/bin/env bash
# poststep.sh <rundir> <port> [<addr>]: run.sh calls it after every step of setup C, before kamailio
# stops; the output lands in results/<run>/raw/<step>.poststep.txt.  imconf's counters show
# what the SIP load cannot: replies by code, NOTIFY responses that failed, subscriptions still
# held after all calls ended (should be 0 after a rate step), shared memory in use.
set -u
rundir=$1
sleep 0.3   # let the last NOTIFY transactions complete
timeout 10 "${KAMCMD:-kamcmd}" -s "unix:$rundir/ctl.sock" imconf.stats
timeout 10 "${KAMCMD:-kamcmd}" -s "unix:$rundir/ctl.sock" imconf.sessions
