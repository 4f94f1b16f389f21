#!/usr/bin/env bash
# seed.sh <rundir> <port> [<addr>]: run on node 1 only: the session and participants of setup C
# (../C_imconf/seed.sh); dmq carries them to the other nodes (run.sh waits until every node
# has them).
exec "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../C_imconf/seed.sh" "$@"
