#!/usr/bin/env bash
# prepare.sh <rundir> <port> <addr>: one extra kamailio argument per line
echo "-A"
echo "STATEFUL_SUBSCRIBE"
