#!/usr/bin/env bash
# poststep.sh <rundir> <port> [<addr>]: run.sh calls it for every node of setup D after a measurement,
# before the nodes stop (output in results/<run>/raw/): setup C's (imconf.stats,
# imconf.sessions), plus dmq's node list as this node sees it.
set -u
rundir=$1
"$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../C_imconf/poststep.sh" "$@"
timeout 10 "${KAMCMD:-kamcmd}" -s "unix:$rundir/ctl.sock" dmq.list_nodes
