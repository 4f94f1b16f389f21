#!/usr/bin/env bash
# smoke.sh -- the benchmark's own quick check (well under a minute), run by `make test`
# (through `make bench-smoke`) so that the bench cannot rot:
#   * setup C_imconf only (build/imconf.so), fresh kamailio per measurement;
#   * one fixed-rate step: SMOKE_RATE calls/s for SMOKE_SECS s (SIPp, scen/subscribe_notify.xml)
#     plus the 20 calls/s Python probe running the same flow;
#   * one fan-out: SMOKE_FANOUT_N subscriptions, one imconf.participant RPC, all N NOTIFYs.
# Exits 0 only if every call succeeded and every NOTIFY arrived; 1 if any call failed, a
# NOTIFY was missing, kamailio crashed or logged PANIC/CRITICAL/BUG; 2 if the harness could not run.
# Uses its own ports (kamailio 5075, load generators 5084-5086 and 5091) and runtime dir
# ($RT, default /tmp/imconf-bench-smoke), so it can run while run.sh runs.
set -u -o pipefail
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY=${PY:-$(command -v /usr/bin/python3 || command -v python3)}
export RT=${RT:-/tmp/imconf-bench-smoke}
export RUN_ID=${RUN_ID:-smoke-$(date +%Y%m%d-%H%M%S)}
export OUT=${OUT:-$RT/out/$RUN_ID}
rm -rf "$RT/out"   # keep only the latest smoke run's output

SETUPS=C_imconf PHASES="fixed fanout" REPS=1 FANOUT_REPS=1 \
	FIXED_RATE=${SMOKE_RATE:-100} FIXED_SECS=${SMOKE_SECS:-5} FANOUT_NS=${SMOKE_FANOUT_N:-20} \
	PORT_OVERRIDE=${SMOKE_PORT:-5075} SIPP_PORT=5084 SEED_PORT=5085 PROBE_PORT=5086 FANOUT_PORT=5091 \
	NOISE_PCT=1000 FANOUT_SHM=0 PLOT=0 \
	"$BENCH/run.sh"
rc=$?
[ "$rc" = 0 ] || { echo "smoke: run.sh failed (rc=$rc); see $OUT/run.log"; exit 2; }

status=0
"$PY" "$BENCH/tools/bench.py" check --results "$OUT/results.jsonl" --phases fixed --min-steps 1 --min-fanouts 1 || status=1
# fatal lines in the kamailio logs: the last run dir, and the per-step summaries in raw/
if grep -lE "PANIC|CRITICAL|BUG:|exited by a signal" "$RT"/C_imconf/kamailio.log "$OUT"/raw/*.kamailio_errors.txt 2>/dev/null; then
	echo "smoke: FAIL kamailio logged PANIC/CRITICAL/BUG (files above)"
	status=1
fi
if [ -s "$OUT/raw/crashes.txt" ]; then
	echo "smoke: FAIL kamailio crashed:"; cat "$OUT/raw/crashes.txt"
	status=1
fi
if [ "$status" = 0 ]; then echo "smoke: PASS ($OUT)"; else echo "smoke: FAIL (output in $OUT, kamailio logs in $RT)"; fi
exit $status
