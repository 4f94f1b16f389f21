#!/usr/bin/env bash
# Starts Kamailio in the foreground with the module and the example config on 127.0.0.1.
# Runtime files (pid, ctl socket, the SQLite state file) go to $RUNDIR (default /tmp/imconf-run).
set -euo pipefail
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
port=${1:-5060}
rundir=${RUNDIR:-/tmp/imconf-run}
# the Kamailio `make build` built for (KAMAILIO_PREFIX, KAMAILIO_BIN...; docs/packaging.md)
eval "$(python3 "$top/scripts/kamailio_target.py" env)"
mkdir -p "$rundir"
echo "imconf: Kamailio on udp:127.0.0.1:$port; RPC: kamcmd -s unix:$rundir/ctl.sock imconf.stats"

# Once Kamailio answers on its ctl socket (at most 30 s), a helper opens an example session with
# alice connected (unless imconf.db kept it from an earlier run) and prints how to watch it with
# SIPp. It is detached (double fork): Kamailio shuts down when a child of its own exits, and this
# shell becomes Kamailio (exec). It ends as soon as Kamailio is gone, and after printing.
example_session() {
	local kpid=$1 rpc=("$KAM_KAMCMD" -s "unix:$rundir/ctl.sock") s="sip:s1@127.0.0.1" i
	for i in $(seq 1 100); do
		kill -0 "$kpid" 2>/dev/null || return 0
		[ -S "$rundir/ctl.sock" ] && "${rpc[@]}" core.version >/dev/null 2>&1 && break
		sleep 0.3
	done
	"${rpc[@]}" imconf.sessions 2>/dev/null | grep -q "uri: $s\$" || {
		"${rpc[@]}" imconf.session_open "$s" ad-hoc >/dev/null 2>&1 &&
			"${rpc[@]}" imconf.participant "$s" sip:alice@127.0.0.1 connected >/dev/null 2>&1
	} || return 0
	local k="$KAM_KAMCMD -s unix:$rundir/ctl.sock"
	cat >&2 <<EOF

imconf: example session $s is open, alice connected. Watch it as alice (SIPp, another shell):
  sipp -sf $top/tests/sipp/ims_watch.xml -i 127.0.0.1 -p 5999 127.0.0.1:$port -m 1 -trace_msg \\
    -key ruri $s -key subscriber sip:alice@127.0.0.1 -key subscriber_user alice \\
    -key pai_hdr 'P-Asserted-Identity: <sip:alice@127.0.0.1>' -key extra_hdr 'X-Omitted: 1'
Expect a 200 and a full NOTIFY (version 1, alice connected). Then change the session:
  $k imconf.participant $s sip:bob@127.0.0.1 connected      # partial NOTIFY: bob connected
  $k imconf.participant $s sip:bob@127.0.0.1 disconnected   # partial NOTIFY: bob disconnected
  $k imconf.session_close $s                                # terminated;reason=noresource
SIPp then ends with "1 successful call"; every NOTIFY is in ims_watch_<pid>_messages.log.
(docs/operator-testing.md: the scenarios and what they check.)

EOF
}
( example_session $$ </dev/null & )
echo "imconf: $KAM_FULL_VERSION ($KAM_BIN), modules from $KAM_MODDIR"
exec "$KAM_BIN" -f "$top/kamailio-cfg/imconf.cfg" -L "$KAM_MODDIR" -DD -E -m 64 -M 16 \
	-P "$rundir/kamailio.pid" -Y "$rundir" -w "$rundir" \
	-l "udp:127.0.0.1:$port" \
	-A "IMCONF_SO=\"$top/build/imconf.so\"" \
	-A "CTL_SOCK=\"unix:$rundir/ctl.sock\"" \
	-A "SERVER_CONTACT=\"sip:imconf@127.0.0.1:$port\"" \
	-A "DB_URL=\"sqlite:///$rundir/imconf.db\""
