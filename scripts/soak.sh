#!/usr/bin/env bash
# `make soak`: the soak test (tests/soak/soak.py, docs/robustness.md). SOAK_MIN minutes (default 10)
# at SOAK_RATE calls/s (default 70 % of the last benchmark's max for C_imconf) with fan-out changes
# mixed in; prints a summary (failed calls, shm and private-memory slopes); exit 1 on failure.
# Kamailio runs with -x tlsf unless SOAK_KAM_ARGS says otherwise (docs/robustness.md: why).
# Ports: IMCONF_TEST_PORT_BASE (default 5160) like the integration tests; loopback only.
set -euo pipefail
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$top"
exec python3 tests/soak/soak.py "$@"
