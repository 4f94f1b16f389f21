#!/usr/bin/env bash
# Starts Kamailio in the foreground with the module and the example config on 127.0.0.1.
# Runtime files (pid, ctl socket, the SQLite state file) go to $RUNDIR (default /tmp/imconf-run).
set -euo pipefail
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
port=${1:-5060}
rundir=${RUNDIR:-/tmp/imconf-run}
mkdir -p "$rundir"
echo "imconf: Kamailio on udp:127.0.0.1:$port; RPC: kamcmd -s unix:$rundir/ctl.sock imconf.stats"
exec kamailio -f "$top/kamailio-cfg/imconf.cfg" -DD -E -m 64 -M 16 \
	-P "$rundir/kamailio.pid" -Y "$rundir" -w "$rundir" \
	-l "udp:127.0.0.1:$port" \
	-A "IMCONF_SO=\"$top/build/imconf.so\"" \
	-A "CTL_SOCK=\"unix:$rundir/ctl.sock\"" \
	-A "SERVER_CONTACT=\"sip:imconf@127.0.0.1:$port\"" \
	-A "DB_URL=\"sqlite:///$rundir/imconf.db\""
