#!/usr/bin/env bash
# setup.sh -- the benchmark's own set-up, called by `make bench` (not by `make test`):
#   * a Python venv with matplotlib for the latency plot: <repo>/.deps/bench-venv
#     (from the Python package registry, through pip; everything else in bench/ uses
#     python3's standard library only);
#   * perf and valgrind (Debian: linux-perf, valgrind) for profiling (docs/performance.md),
#     installed with apt only if missing and only when running as root.
# Idempotent and quick when everything is there. A failure here never stops the benchmark:
# without matplotlib the run has no PNG, without perf there is no profile.
set -u
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV=${VENV:-"$BENCH/../.deps/bench-venv"}
PY=${PY:-$(command -v /usr/bin/python3 || command -v python3)}

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import matplotlib' 2>/dev/null; then
	echo "setup: $VENV has matplotlib"
else
	echo "setup: creating $VENV with matplotlib"
	mkdir -p "$(dirname "$VENV")"
	{ "$PY" -m venv "$VENV" && "$VENV/bin/pip" install -q matplotlib; } \
		|| echo "setup: WARNING: no matplotlib venv (apt install python3-venv?); the run will have no plot"
fi

missing=()
command -v perf >/dev/null || missing+=(linux-perf)
command -v valgrind >/dev/null || missing+=(valgrind)
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "setup: apt-get install ${missing[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null \
			|| echo "setup: WARNING: could not install ${missing[*]} (profiling only)"
	else
		echo "setup: note: ${missing[*]} missing (profiling only; apt-get install ${missing[*]})"
	fi
fi
exit 0
