#!/usr/bin/env bash
# seed.sh <rundir> <port> [<addr>]: creates the conference state of setup C over RPC:
# the ad-hoc session sip:$CONF_USER@$CONF_DOMAIN with two connected participants,
# sip:bench@127.0.0.1 (the identity every benchmark SUBSCRIBE asserts) and
# sip:alice@127.0.0.1, so that every document lists two users.
set -eu
rundir=$1
conf="sip:${CONF_USER:-conf1}@${CONF_DOMAIN:-127.0.0.1}"
kamcmd=${KAMCMD:-kamcmd}
rpc() { timeout 10 "$kamcmd" -s "unix:$rundir/ctl.sock" "$@"; }
# the ctl socket appears a little after the SIP socket
for _ in $(seq 1 50); do [ -S "$rundir/ctl.sock" ] && break; sleep 0.1; done
# EXTRA_CONF_USERS="conf2 conf3 ...": more sessions like it (experiments: load over several slots)
for user in "${CONF_USER:-conf1}" ${EXTRA_CONF_USERS:-}; do
	conf="sip:$user@${CONF_DOMAIN:-127.0.0.1}"
	# WORKLOAD=group (run.sh): a pre-defined session of the bench group (R8 authorizes)
	if [ -n "${GROUP_URI:-}" ]; then
		rpc imconf.session_open "$conf" pre-defined "$GROUP_URI"
	else
		rpc imconf.session_open "$conf" ad-hoc
	fi
	rpc imconf.participant "$conf" sip:bench@127.0.0.1 connected
	rpc imconf.participant "$conf" sip:alice@127.0.0.1 connected
	# WORKLOAD=distinct (run.sh): the subscribers u1..uN, connected, fed in one kamcmd session
	if [ "${PARTICIPANTS:-0}" -gt 0 ]; then
		for i in $(seq 1 "$PARTICIPANTS"); do
			echo "imconf.participant $conf sip:u$i@127.0.0.1 connected"
		done | timeout 300 "$kamcmd" -s "unix:$rundir/ctl.sock" >/dev/null
	fi
done
rpc imconf.sessions
