#!/usr/bin/env bash
# prepare.sh <rundir> <port> <addr>: the extra kamailio arguments of one node of setup D: those
# of setup C (the module snapshot, server_contact on this node's address and port), plus dmq's
# addresses: this node's own and, as notification_address, node 1's (CLUSTER_NODE1_ADDR and
# CLUSTER_NODE1_PORT, set by run.sh; a node alone is its own node 1).  Every node has its own
# IP address (run.sh: node i on 127.0.0.<i>): Kamailio 6's dmq takes a node whose URI it does
# not know for the node with the same IP, so nodes sharing one IP merge and the bus never forms.
set -eu
rundir=$1 port=$2 addr=${3:-127.0.0.1}
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$here/../C_imconf/prepare.sh" "$rundir" "$port" "$addr"
echo "-A"; echo "DMQ_SERVER=\"sip:$addr:$port\""
echo "-A"; echo "DMQ_NOTIFY=\"sip:${CLUSTER_NODE1_ADDR:-$addr}:${CLUSTER_NODE1_PORT:-$port}\""
