#!/usr/bin/env bash
# smoke.sh -- the benchmark's own quick check (well under a minute), run by `make test`
# (through `make bench-smoke`) so that the bench cannot rot:
#   * setup C_imconf only (build/imconf.so, or IMCONF_SO), fresh kamailio per measurement;
#   * on the Kamailio of the target, as run.sh (scripts/kamailio_target.py env: KAMAILIO_PREFIX,
#     or KAMAILIO_BIN + KAMAILIO_SRC; default Debian's), with an imconf.so built for it;
#   * one fixed-rate step: SMOKE_RATE calls/s for SMOKE_SECS s (SIPp, scen/subscribe_notify.xml)
#     plus the 20 calls/s Python probe running the same flow;
#   * one fan-out: SMOKE_FANOUT_N subscriptions, one imconf.participant RPC, all N NOTIFYs;
#   * one cluster measurement (phase cluster): 3 imconf nodes joined by dmq (setup
#     D_imconf_cluster, enable_dmq; node i on its own address 127.0.0.<i>, which Kamailio 6's
#     dmq needs), SMOKE_CLUSTER_N subscriptions spread over them, one RPC on node 1, every
#     NOTIFY from every node (SMOKE_CLUSTER=0 leaves it out).
# Exits 0 only if every call succeeded and every NOTIFY arrived; 1 if any call failed, a
# NOTIFY was missing, kamailio crashed or logged PANIC/CRITICAL/BUG; 2 if the harness could not run
# (e.g. no imconf.so built for the target).
# Uses its own ports (kamailio 127.0.0.1:5075, cluster nodes 127.0.0.1:5092, 127.0.0.2:5093,
# 127.0.0.3:5094, load generators 127.0.0.1:5084-5086 and 5091) and runtime dir
# ($RT, default /tmp/imconf-bench-smoke), so it can run while run.sh runs (SMOKE_PORT,
# SMOKE_CLUSTER_PORT, SMOKE_SIPP_PORT, SMOKE_SEED_PORT, SMOKE_PROBE_PORT, SMOKE_FANOUT_PORT move them).
set -u -o pipefail
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY=${PY:-$(command -v /usr/bin/python3 || command -v python3)}
export RT=${RT:-/tmp/imconf-bench-smoke}
export RUN_ID=${RUN_ID:-smoke-$(date +%Y%m%d-%H%M%S)}
export OUT=${OUT:-$RT/out/$RUN_ID}
rm -rf "$RT/out"   # keep only the latest smoke run's output

phases="fixed fanout"; min_clusters=0
[ "${SMOKE_CLUSTER:-1}" = 1 ] && { phases="$phases cluster"; min_clusters=1; }
SETUPS=C_imconf PHASES="$phases" REPS=1 FANOUT_REPS=1 \
	CLUSTER_SIZES=3 CLUSTER_REPS=1 CLUSTER_N=${SMOKE_CLUSTER_N:-30} CLUSTER_PORT=${SMOKE_CLUSTER_PORT:-5092} CLUSTER_SETTLE=0.5 \
	FIXED_RATE=${SMOKE_RATE:-100} FIXED_SECS=${SMOKE_SECS:-5} FANOUT_NS=${SMOKE_FANOUT_N:-20} \
	PORT_OVERRIDE=${SMOKE_PORT:-5075} SIPP_PORT=${SMOKE_SIPP_PORT:-5084} SEED_PORT=${SMOKE_SEED_PORT:-5085} \
	PROBE_PORT=${SMOKE_PROBE_PORT:-5086} FANOUT_PORT=${SMOKE_FANOUT_PORT:-5091} \
	NOISE_PCT=1000 FANOUT_SHM=0 PLOT=0 \
	"$BENCH/run.sh"
rc=$?
[ "$rc" = 0 ] || { echo "smoke: run.sh failed (rc=$rc); see $OUT/run.log"; exit 2; }

status=0
"$PY" "$BENCH/tools/bench.py" check --results "$OUT/results.jsonl" --phases fixed --min-steps 1 --min-fanouts 1 --min-clusters "$min_clusters" || status=1
# fatal lines in the kamailio logs: the last run dir, and the per-step summaries in raw/
if grep -lE "PANIC|CRITICAL|BUG:|exited by a signal" "$RT"/C_imconf/kamailio.log "$RT"/D_imconf_cluster/n*/kamailio.log "$OUT"/raw/*.kamailio_errors.txt 2>/dev/null; then
	echo "smoke: FAIL kamailio logged PANIC/CRITICAL/BUG (files above)"
	status=1
fi
if [ -s "$OUT/raw/crashes.txt" ]; then
	echo "smoke: FAIL kamailio crashed:"; cat "$OUT/raw/crashes.txt"
	status=1
fi
kam=$(sed -n 's/^kamailio: //p' "$OUT/env.txt" 2>/dev/null | head -1)
if [ "$status" = 0 ]; then echo "smoke: PASS on ${kam:-?} ($OUT)"; else echo "smoke: FAIL on ${kam:-?} (output in $OUT, kamailio logs in $RT)"; fi
exit $status
