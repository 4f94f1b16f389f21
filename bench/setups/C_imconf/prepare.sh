#!/usr/bin/env bash
# prepare.sh <rundir> <port> [<addr>]: prints the extra kamailio arguments of setup C, one per
# line: the module (IMCONF_SO) and the server_contact on the listening address and port
# (<addr>, default 127.0.0.1; a cluster node's own address).
#
# The module is NOT loaded from <repo>/build/imconf.so directly: `make build` overwrites that
# file in place (cp), and a running kamailio that has it mapped then executes the new file's
# code pages and crashes.  So the first start of a run copies it to a snapshot
# ($RT/C_imconf-module/imconf-$RUN_ID.so, written atomically) and every step of the run loads
# that same copy.  IMCONF_SO=/other/imconf.so benchmarks another build (run.sh exports
# IMCONF_SO, checked to be built for the Kamailio being benched).
set -eu
rundir=$1 port=$2 addr=${3:-127.0.0.1}
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src=${IMCONF_SO:-"$(cd "$here/../../.." && pwd)/build/imconf.so"}
if [ ! -f "$src" ]; then
	echo "prepare.sh: module $src not found (run 'make build' first, or set IMCONF_SO)" >&2
	exit 1
fi
snapdir="${RT:-$(dirname "$rundir")}/C_imconf-module"
so="$snapdir/imconf-${RUN_ID:-$$}.so"
if [ ! -f "$so" ]; then
	mkdir -p "$snapdir"
	find "$snapdir" -name 'imconf-*.so*' -mmin +60 -delete 2>/dev/null || true   # old runs' copies
	cp "$src" "$so.tmp.$$" && mv -f "$so.tmp.$$" "$so"
	echo "prepare.sh: module $src copied to $so (sha256 $(sha256sum "$so" | cut -c1-16), built $(date -r "$src" '+%F %T'))" >&2
fi
echo "-A"; echo "IMCONF_SO=\"$so\""
echo "-A"; echo "SERVER_CONTACT=\"sip:imconf@$addr:$port\""
# WORKLOAD=group (run.sh): the group documents' directory
if [ -n "${GROUPS_DIR:-}" ]; then echo "-A"; echo "GROUPS_DIR=\"$GROUPS_DIR\""; fi
