#!/usr/bin/env bash
# profile.sh SETUP [RATE] [SECS] [fixed|fanout|stat]: where one setup's kamailio spends its CPU.
#   fixed  (default): run.sh's fixed-load step at RATE calls/s; perf samples for SECS s
#   fanout: run.sh's fan-out with N = RATE subscribers; perf samples the whole fan-out
#   stat:   the fixed-load step, `perf stat` of context switches and futex calls (lock waits)
# PERF_CG="--call-graph dwarf,16384" adds call graphs; PERF_EVENT=syscalls:sys_enter_futex
# samples that event instead of the CPU clock (who waits on which lock: docs/performance.md).
# perf (Debian linux-perf, see setup.sh) records only the processes of that kamailio (-p), not
# the whole box: the box is shared, and other people's kamailio processes would mix in.
# Output: $RT/out/profile-<setup>.txt (flat, by DSO and symbol) and $RT/perf-<setup>.data.
# Kamailio has no frame pointers, so call graphs are not recorded; the flat profile is enough
# to tell the allocator from the parser from the module.
# The Kamailio is run.sh's: the target (KAMAILIO_PREFIX=..., or KAMAILIO_BIN + KAMAILIO_SRC;
# default Debian's) with IMCONF_SO built for it; the version line is in $RT/out/env.txt.
set -u -o pipefail
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SETUP=${1:-C_imconf}; RATE=${2:-1500}; SECS=${3:-10}; MODE=${4:-fixed}
export RT=${RT:-/tmp/imconf-bench-prof}
export OUT=$RT/out RUN_ID=prof-$SETUP PLOT=0 SETUPS=$SETUP REPS=1 FANOUT_REPS=1 NOISE_PCT=1000 FANOUT_SHM=0
command -v perf >/dev/null || { echo "profile: perf not found (bench/setup.sh installs linux-perf)"; exit 2; }
rm -rf "$OUT"; mkdir -p "$OUT"
if [ "$MODE" = fanout ]; then
	PHASES=fanout FANOUT_NS=$RATE "$BENCH/run.sh" >"$OUT/run.out" 2>&1 &
else
	PHASES=fixed FIXED_RATE=$RATE FIXED_SECS=$((SECS + 4)) "$BENCH/run.sh" >"$OUT/run.out" 2>&1 &
fi
runner=$!
pidf="$RT/$SETUP/kamailio.pid"
for _ in $(seq 1 100); do [ -s "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null && break; sleep 0.1; done
kpid=$(cat "$pidf" 2>/dev/null) || { echo "profile: kamailio did not start"; wait $runner; tail -5 "$OUT/run.out"; exit 2; }
sleep 2   # seeding, the step's start
pids=$(awk -v pp="$kpid" '$4 == pp { print $1 }' /proc/[0-9]*/stat 2>/dev/null | tr '\n' ',')"$kpid"
if [ "$MODE" = stat ]; then
	perf stat -e context-switches,cpu-clock,syscalls:sys_enter_futex,syscalls:sys_enter_recvfrom -p "$pids" \
		-- sleep "$SECS" 2>&1 | grep -E "context|clock|futex|recvfrom|elapsed" | tee "$OUT/stat-$SETUP.txt"
	wait $runner
	grep -E "cps x" "$OUT/run.out"
	exit 0
elif [ "$MODE" = fanout ]; then
	# the whole fan-out (subscriptions + the change): until run.sh is done
	perf record -F 1999 -p "$pids" -o "$RT/perf-$SETUP.data" -- sleep 600 >/dev/null 2>&1 &
	perfpid=$!
	wait $runner
	kill -INT $perfpid 2>/dev/null; wait $perfpid
else
	perf record -F 1999 ${PERF_EVENT:+-e $PERF_EVENT} ${PERF_CG:-} -p "$pids" -o "$RT/perf-$SETUP.data" -- sleep "$SECS" >/dev/null 2>&1
	wait $runner
fi
grep -E "cps x|fanout N" "$OUT/run.out"
sed -n 's/^kamailio: /kamailio: /p' "$OUT/env.txt" 2>/dev/null | head -1
perf report -i "$RT/perf-$SETUP.data" --no-children --sort dso,sym -q 2>/dev/null | head -60 >"$OUT/profile-$SETUP.txt"
perf report -i "$RT/perf-$SETUP.data" --no-children --sort dso -q 2>/dev/null | head -15 >"$OUT/profile-$SETUP.dso.txt"
echo "== by DSO"; cat "$OUT/profile-$SETUP.dso.txt"
echo "== by symbol (top 40)"; head -40 "$OUT/profile-$SETUP.txt"
