#!/usr/bin/env bash
# prepare.sh <rundir> <port>: the extra kamailio arguments of one node of setup D: those of
# setup C (the module snapshot, server_contact on this node's port), plus dmq's addresses:
# this node's own and, as notification_address, node 1's (CLUSTER_NODE1_PORT, set by run.sh;
# a node alone is its own node 1).
set -eu
rundir=$1 port=$2
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$here/../C_imconf/prepare.sh" "$rundir" "$port"
echo "-A"; echo "DMQ_SERVER=\"sip:127.0.0.1:$port\""
echo "-A"; echo "DMQ_NOTIFY=\"sip:127.0.0.1:${CLUSTER_NODE1_PORT:-$port}\""
