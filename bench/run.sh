#!/usr/bin/env bash
# =============================================================================
# run.sh -- reproducible benchmark: Kamailio serving RFC 4575 "conference"
# event SUBSCRIBE/NOTIFY.  Measures every setup in setups/<name>/ side by side
# in one run (interleaved repetitions) and prints a results table:
#   A_presence_conference  Kamailio's stock presence + presence_conference (sqlite)
#   B_ceiling              the least work that satisfies the scenario (upper bound)
#   C_imconf               this repository's module, build/imconf.so
# and, in the phase `cluster` only, D_imconf_cluster: 1 against 3 imconf nodes joined by
# Kamailio's dmq (enable_dmq), N subscriptions spread over them, one change fed to node 1.
# `make bench` runs it; `make bench-smoke` / smoke.sh is the short check of C.
#
# ASSUMES: a Kamailio "target" as for `make build` (scripts/kamailio_target.py env: from
#   KAMAILIO_PREFIX, or KAMAILIO_BIN + KAMAILIO_SRC; default Debian bookworm's packaged
#   kamailio 5.6.3 with kamailio-presence-modules, -sqlite-modules, -xml-modules) with the
#   modules tm sl pv maxfwd textops ctl kex db_sqlite presence presence_conference dmq, its
#   kamcmd, the presence sqlite schema (<prefix>/share/kamailio/db_sqlite), and imconf.so
#   built for that same Kamailio (build/imconf.so from `make build`, or IMCONF_SO=...);
#   sip-tester (`sipp`, 3.6.1), python3 (stdlib only). The sqlite3 CLI is optional.
#   Explicit KAMAILIO, KAMCMD, KAM_MODDIR, IMCONF_SO, SQLITE_SCHEMA_DIR win over the target.
#   Run as root, or as a user allowed to bind UDP 127.0.0.0/8 ports 5071-5099.
#
# SAFETY: all SIP traffic stays within 127.0.0.0/8 (127.0.0.1; the phase cluster's node i
#   listens on 127.0.0.<i>), and every sender is bounded
#   (SIPp: -m <rate*secs> calls and -timeout; Python probe/fan-out: fixed counts
#   and deadlines).  Each kamailio runs with -DD -E (main process stays in the
#   foreground, own pid file and runtime dir under $RT/<setup>/); the script
#   stops only the pids it started (TERM, then KILL for leftovers whose command
#   line names our runtime dir).  Nothing outside this folder and $RT is written.
#
# USAGE:  ./run.sh                # full run (~25 min with the 3 default setups)
#         QUICK=1 ./run.sh        # quick look (< 5 min): 1 rep, short steps
#         SETUPS="C_imconf B_ceiling" PHASES="fixed fanout" ./run.sh
#   Knobs (environment): see the "knobs" block below.  Output: results/<run id>/
#   (summary.md, results.jsonl, run.log, raw/ = per-step SIPp stats and the
#   kamailio log's ERROR/WARNING lines), runtime dirs and kamailio logs in $RT.
#   Exit status: 0 done (even if steps failed: failing is how the maximum is
#   found), 2 harness error; STRICT=1 also exits 1 when a fixed-load step or a
#   fan-out failed (smoke.sh relies on its own check of results.jsonl instead).
#
# ADDING A SETUP (e.g. a new module): create setups/<name>/ with
#   kamailio.cfg  -- listens where run.sh says (-l udp:127.0.0.1:$PORT and the
#                    target's module dir -L are given on the command line: no mpath,
#                    loadmodule by name), children=4, answers SUBSCRIBE for
#                    Event: conference on sip:$CONF_USER@$CONF_DOMAIN with 2xx,
#                    sends the NOTIFYs of scen/subscribe_notify.xml;
#   setup.env     -- PORT=<free port>, SEED=publish|script|none, FANOUT=0|1,
#                    optionally DB=sqlite, SQLITE_JOURNAL=WAL|default,
#                    CONF_BODY=1, CFG=<other cfg path>,
#                    FANOUT_TRIGGER=publish|rpc (rpc: the change is one
#                    imconf.participant call on <rundir>/$CTL_SOCK, over binrpc),
#                    IMCONF=1 (loads $IMCONF_SO: checked against the target first);
#   prepare.sh    -- optional, run as prepare.sh <rundir> <port> <addr> before
#                    start; each stdout line is one extra kamailio argument;
#   seed.sh       -- optional (SEED=script), run as seed.sh <rundir> <port> <addr>
#                    after start to create the conference state (CONF_USER,
#                    CONF_DOMAIN, KAMCMD, IMCONF_SO are in its environment);
#   poststep.sh   -- optional, run as poststep.sh <rundir> <port> <addr> after
#                    every step, before kamailio stops; its output is kept in raw/.
#   (<addr>: the listening address, 127.0.0.1 but for the cluster's nodes.)
#   See README.md "Adding a setup".
# =============================================================================
set -u -o pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# ----------------------------------------------------------------- knobs ----
SETUPS=${SETUPS:-"A_presence_conference B_ceiling C_imconf"}
CEILING=${CEILING:-B_ceiling}           # reference for the ratios
BASELINE=${BASELINE:-A_presence_conference}   # second reference for the ratios
REPS=${REPS:-3}                         # repetitions of every measurement
STEP_SECS=${STEP_SECS:-10}              # duration of one rate step (max phase; the reference harness: 20)
CAL_SECS=${CAL_SECS:-5}                 # duration of a calibration step
CAL_START=${CAL_START:-200}             # first calibration rate (cps), doubled until failure
RATE_MAX=${RATE_MAX:-20000}             # never offer more than this (cps)
RES=${RES:-0.07}                        # stop the search when fail/pass <= 1+RES
MAX_STEPS=${MAX_STEPS:-6}               # max steps of one search
FIXED_RATE=${FIXED_RATE:-300}           # same-load comparison rate (cps)
HIGH_PCT=${HIGH_PCT:-80}                # phase high: % of the ceiling's max (issue 18)
FIXED_SECS=${FIXED_SECS:-10}
FANOUT_NS=${FANOUT_NS:-"100 1000 10000"} # subscribers held on the conference (capped by a setup's FANOUT_MAX_N)
FANOUT_REPS=${FANOUT_REPS:-$REPS}
# imconf output profiles per fan-out variant (R94, issue 16), space-separated variants of
# comma-separated profiles cycled over the subscribers: "default" (no User-Agent), or e.g.
# FANOUT_PROFILES="oma oma,rcs,rfc4575" for all-oma beside a third of each
FANOUT_PROFILES=${FANOUT_PROFILES:-default}
FANOUT_SUB_RATE=${FANOUT_SUB_RATE:-300} # SUBSCRIBE/s while building the N subscriptions (N <= 1000)
FANOUT_BIG_SUB_RATE=${FANOUT_BIG_SUB_RATE:-1000}   # ... and for N > 1000
# WORKLOAD (issue 18): "same" (default: every call asserts one identity, sip:bench, on an
# ad-hoc session of two) or "distinct" (every call another subscriber, cycling through
# PARTICIPANTS users fed ahead as connected participants of that session by setup C's seed.sh).
# Every initial NOTIFY then lists them all (~130 bytes each): over UDP, a few hundred at most
# (10 000, the issue's figure, makes a 1.3 MB document: TCP, not done yet). Or "sessions": the
# calls spread over SESSIONS ad-hoc sessions, as WORKLOAD=same's identity (setups B and C: A's
# seed publishes only the first session). Or "group": every call another subscriber, cycling
# through GROUP_MEMBERS members of a group document (R8: the group's rule allows its members),
# on a pre-defined session of that group with two participants (setup C; the others ignore it)
WORKLOAD=${WORKLOAD:-same}
PARTICIPANTS=${PARTICIPANTS:-100}
GROUP_MEMBERS=${GROUP_MEMBERS:-1000}
SESSIONS=${SESSIONS:-100}
SCENARIO=${SCENARIO:-}                   # the call (experiments: another scenario); default: by WORKLOAD
SIPP_EXTRA=${SIPP_EXTRA:-}               # more SIPp arguments for the load steps (experiments), e.g. "-inf f.csv"
KAM_ARGS=${KAM_ARGS:-}                   # extra kamailio arguments, e.g. "-x tlsf" (experiments)
KAM_DEFINES=${KAM_DEFINES:-}             # extra kamailio -A defines, e.g. "MAX_INFLIGHT=1024" (experiments)
FANOUT_SHM=${FANOUT_SHM:-1}             # shm per idle subscription (waits ~6 s per fan-out for tm to settle)
MEM_SETUPS=${MEM_SETUPS:-""}            # phase mem: setups (default: all of SETUPS)
MEM_CALLS=${MEM_CALLS:-100000}          # phase mem: calls measured, after MEM_WARM_CALLS
MEM_WARM_CALLS=${MEM_WARM_CALLS:-10000}
MEM_RATE=${MEM_RATE:-1000}              # phase mem: calls/s (at most 60 % of the setup's max of this run)
PROBE_RATE=${PROBE_RATE:-20}            # us-resolution probe calls/s during every step
NOISE_PCT=${NOISE_PCT:-50}              # a FAIL while other processes used > this % of a core is repeated once
MAX_P95_MS=${MAX_P95_MS:-500}           # a step also fails if p95 SUBSCRIBE->2xx exceeds this (0 = off)
SHM_MB=${SHM_MB:-1024}                  # kamailio -m (same for every setup)
PKG_MB=${PKG_MB:-32}                    # kamailio -M (same for every setup)
CONF_USER=${CONF_USER:-conf1}           # the conference URI: sip:$CONF_USER@$CONF_DOMAIN
CONF_DOMAIN=${CONF_DOMAIN:-127.0.0.1}
SUB_EXPIRES=${SUB_EXPIRES:-600}
PHASES=${PHASES:-"cal fixed max high fanout mem cluster"}
# phase cluster: imconf nodes joined by dmq (enable_dmq), 1 node against CLUSTER_SIZES' others
CLUSTER_SETUP=${CLUSTER_SETUP:-D_imconf_cluster}   # the node's setup (setups/D_imconf_cluster)
CLUSTER_SIZES=${CLUSTER_SIZES:-"1 3"}    # nodes per measurement, in this order within a repetition
CLUSTER_N=${CLUSTER_N:-1000}             # subscriptions, spread evenly over the nodes
CLUSTER_REPS=${CLUSTER_REPS:-$(( REPS > 5 ? REPS : 5 ))}   # at least 3 (medians, spread); 5: one change takes ~0.1 s, and the box is noisy
CLUSTER_SUB_RATE=${CLUSTER_SUB_RATE:-$FANOUT_SUB_RATE}   # SUBSCRIBE/s (all nodes together)
CLUSTER_PORT=${CLUSTER_PORT:-}           # node 1's port (node i: +i-1, on address 127.0.0.<i>); default: the setup's PORT
CLUSTER_SETTLE=${CLUSTER_SETTLE:-2}      # s between the last initial NOTIFY and the change (replication of the subscriptions settles)
CLUSTER_SYNC_WAIT_MS=${CLUSTER_SYNC_WAIT_MS:-3500}   # after the last node started (503 while syncing, <= 3 s)
RT=${RT:-/tmp/imconf-bench}             # runtime dirs, logs, sqlite files
PY=${PY:-$(command -v /usr/bin/python3 || command -v python3)}
SIPP=${SIPP:-sipp}
# The Kamailio (see "the target" below): KAMAILIO (binary), KAMCMD, KAM_MODDIR (its module dir,
# given as -L), IMCONF_SO (the imconf module of setups C and D), SQLITE_SCHEMA_DIR (setup A's
# presence schema); unset: derived from the target
# the phase cluster's node i listens on 127.0.0.<i> (CLUSTER_ADDRS: another list, all in 127.0.0.0/8)
CLUSTER_ADDRS=${CLUSTER_ADDRS:-}
# load generators' UDP ports on 127.0.0.1 (kamailio's are in setups/*/setup.env;
# PORT_OVERRIDE replaces that of every setup, for a run of a single setup)
SIPP_PORT=${SIPP_PORT:-5081}; SEED_PORT=${SEED_PORT:-5082}; PROBE_PORT=${PROBE_PORT:-5083}; FANOUT_PORT=${FANOUT_PORT:-5090}
STRICT=${STRICT:-0}
# STOP_AT=<epoch s>: a hard end for the run. The max search takes no new step after
# STOP_AT - STOP_RESERVE_S (left for fan-out and memory), and the memory phase shortens its
# measured step to fit (at least 2x10^4 calls); both are logged. Unset: no limit.
STOP_AT=${STOP_AT:-0}; STOP_RESERVE_S=${STOP_RESERVE_S:-900}

if [ "${QUICK:-0}" = 1 ]; then
	REPS=${QUICK_REPS:-1}; STEP_SECS=5; CAL_SECS=2; FIXED_SECS=5; FANOUT_REPS=1
	MAX_STEPS=4; RES=0.15; CAL_START=${QUICK_CAL_START:-800}
	MEM_CALLS=${QUICK_MEM_CALLS:-10000}; MEM_WARM_CALLS=3000; MEM_RATE=${QUICK_MEM_RATE:-1000}
	MEM_SETUPS=${QUICK_MEM_SETUPS:-C_imconf}
	NOISE_PCT=${QUICK_NOISE_PCT:-1000}   # no repeated steps: stay within ~5 minutes on a shared box
	CLUSTER_N=${QUICK_CLUSTER_N:-300}; CLUSTER_REPS=${QUICK_CLUSTER_REPS:-3}
fi

case "$WORKLOAD" in
	same) SCENARIO=${SCENARIO:-"$BENCH/scen/subscribe_notify.xml"}; PARTICIPANTS=0 ;;
	distinct)
		SCENARIO=${SCENARIO:-"$BENCH/scen/subscribe_notify_distinct.xml"}
		mkdir -p "$RT"
		{ echo SEQUENTIAL; for i in $(seq 1 "$PARTICIPANTS"); do echo "u$i;"; done; } >"$RT/subscribers.csv"
		SIPP_EXTRA="$SIPP_EXTRA -inf $RT/subscribers.csv" ;;
	sessions)
		SCENARIO=${SCENARIO:-"$BENCH/scen/subscribe_notify_sessions.xml"}; PARTICIPANTS=0
		mkdir -p "$RT"
		EXTRA_CONF_USERS=""
		{ echo SEQUENTIAL; echo "$CONF_USER;"
		  for i in $(seq 2 "$SESSIONS"); do echo "${CONF_USER}x$i;"; done; } >"$RT/sessions.csv"
		for i in $(seq 2 "$SESSIONS"); do EXTRA_CONF_USERS="$EXTRA_CONF_USERS ${CONF_USER}x$i"; done
		export EXTRA_CONF_USERS   # for setup C's seed.sh
		SIPP_EXTRA="$SIPP_EXTRA -inf $RT/sessions.csv" ;;
	group)
		SCENARIO=${SCENARIO:-"$BENCH/scen/subscribe_notify_distinct.xml"}; PARTICIPANTS=0
		mkdir -p "$RT/groups"
		{ echo SEQUENTIAL; for i in $(seq 1 "$GROUP_MEMBERS"); do echo "u$i;"; done; } >"$RT/subscribers.csv"
		"$BENCH/tools/group_document.sh" "sip:bench-group@$CONF_DOMAIN" "$GROUP_MEMBERS" >"$RT/groups/bench-group.xml"
		GROUPS_DIR="$RT/groups" GROUP_URI="sip:bench-group@$CONF_DOMAIN"
		export GROUPS_DIR GROUP_URI   # for setup C's prepare.sh and seed.sh
		SIPP_EXTRA="$SIPP_EXTRA -inf $RT/subscribers.csv" ;;
	*) echo "WORKLOAD must be same, distinct, sessions or group, not $WORKLOAD" >&2; exit 2 ;;
esac
export PARTICIPANTS   # for setup C's seed.sh

RUN_ID=${RUN_ID:-$(date +%Y%m%d-%H%M%S)}
OUT=${OUT:-$BENCH/results/$RUN_ID}
# for the setups' prepare.sh / seed.sh / poststep.sh
export CONF_USER CONF_DOMAIN RT RUN_ID   # (and KAMCMD, IMCONF_SO: below, once resolved)
RESULTS="$OUT/results.jsonl"

# ------------------------------------------------------------- helpers ----
T_START=$(date +%s)
log() { printf '[%5ss] %s\n' "$(( $(date +%s) - T_START ))" "$*"; }
die() { log "ERROR: $*"; exit 2; }
calc() { awk "BEGIN { printf \"%.6f\", $* }"; }
# round a rate to a "nice" value: <100 -> 1, <1000 -> 10, <10000 -> 50, else 100
nice_rate() {
	awk -v x="$1" 'BEGIN { s = (x < 100) ? 1 : (x < 1000) ? 10 : (x < 10000) ? 50 : 100;
		r = int(x / s + 0.5) * s; if (r < 1) r = 1; print r }'
}
port_hex() { printf '%04X' "$1"; }
port_bound() { grep -qi ":$(port_hex "$1") " /proc/net/udp 2>/dev/null; }
has_phase() { case " $PHASES " in *" $1 "*) return 0 ;; esac; return 1; }
child_pids() { awk -v pp="$1" '$4 == pp { print $1 }' /proc/[0-9]*/stat 2>/dev/null; }

KPID=""; KRUNDIR=""; KNAME=""; KADDR=""
CL_PIDS=(); CL_DIRS=(); CL_PORTS=(); CL_ADDRS=()
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[ -n "$KPID" ] && { log "cleanup: stopping kamailio $KNAME (pid $KPID)"; k_stop; }
	[ ${#CL_PIDS[@]} -gt 0 ] && { log "cleanup: stopping the cluster's nodes (pids ${CL_PIDS[*]})"; cl_stop; }
	exit $rc
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# load_setup NAME: sets SDIR CFG PORT DB SQLITE_JOURNAL SEED FANOUT CONF_BODY IMCONF ...
load_setup() {
	SDIR="$BENCH/setups/$1"
	# a setup that is not here may live in the caller's own folder (EXTRA_SETUPS_DIR)
	[ -d "$SDIR" ] || [ -z "${EXTRA_SETUPS_DIR:-}" ] || SDIR="$EXTRA_SETUPS_DIR/$1"
	[ -f "$SDIR/setup.env" ] || { log "no $SDIR/setup.env"; return 1; }
	CFG=kamailio.cfg; PORT=""; DB=none; SQLITE_JOURNAL=WAL; SEED=publish; FANOUT=0; CONF_BODY=0
	FANOUT_TRIGGER=publish; CTL_SOCK=ctl.sock; FANOUT_MAX_N=1000; CLUSTER_NODES=1; IMCONF=0
	# shellcheck disable=SC1090
	. "$SDIR/setup.env"
	SETUP_PORT=$PORT
	[ -n "${PORT_OVERRIDE:-}" ] && PORT=$PORT_OVERRIDE
	case "$CFG" in /*) ;; *) CFG="$SDIR/$CFG" ;; esac
	[ -f "$CFG" ] || { log "$1: config $CFG missing"; return 1; }
	[ -n "$PORT" ] || { log "$1: PORT not set"; return 1; }
	return 0
}

# k_start NAME [noseed]: start kamailio for setup NAME, wait for its socket, seed it.
# NODE_PORT / NODE_DIR / NODE_ADDR (environment): another port, run dir (under $RT) and
# listening address (127.0.0.1) than the setup's, for the nodes of a cluster (cl_start).
k_start() {
	local name=$1 noseed=${2:-}
	[ -n "$KPID" ] && k_stop
	load_setup "$name" || return 2
	[ -n "${NODE_PORT:-}" ] && PORT=$NODE_PORT
	local rundir="$RT/${NODE_DIR:-$name}" addr=${NODE_ADDR:-127.0.0.1}
	rm -rf "$rundir"; mkdir -p "$rundir"
	if port_bound "$PORT"; then log "$name: UDP port $PORT already in use"; return 2; fi
	# -L: the target's module dir (it overrides any mpath of the cfg)
	local args=(-f "$CFG" -L "$KAM_MODDIR" -DD -E -P "$rundir/kamailio.pid" -Y "$rundir" -w "$rundir"
		-l "udp:$addr:$PORT" -m "$SHM_MB" -M "$PKG_MB")
	if [ "$DB" = sqlite ]; then
		cp "$RT/template.sqlite" "$rundir/presence.sqlite"
		if [ "$SQLITE_JOURNAL" != default ]; then   # persistent in the file, set before start
			"$PY" -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); m=c.execute("PRAGMA journal_mode="+sys.argv[2]).fetchone()[0]; sys.exit(m.lower()!=sys.argv[2].lower())' \
				"$rundir/presence.sqlite" "$SQLITE_JOURNAL" || { log "$name: cannot set sqlite journal_mode=$SQLITE_JOURNAL"; return 2; }
		fi
		args+=(-A "DBURL=\"sqlite:///$rundir/presence.sqlite\"")
	fi
	[ "$CONF_BODY" = 1 ] && args+=(-A "CONF_BODY=$CONF_BODY_DEF")
	[ -n "${K_DEFINE:-}" ] && args+=(-A "$K_DEFINE")
	# every setup loads ctl on this socket: memory statistics (and imconf's RPCs)
	args+=(-A "CTL_SOCK=\"unix:$rundir/$CTL_SOCK\"")
	# extra -A defines for experiments, e.g. KAM_DEFINES="MAX_INFLIGHT=20000" (C_imconf)
	for d in $KAM_DEFINES; do args+=(-A "$d"); done
	# and extra kamailio arguments, e.g. KAM_ARGS="-x tlsf" (another shm allocator; experiments)
	for d in $KAM_ARGS; do args+=("$d"); done
	if [ -x "$SDIR/prepare.sh" ]; then
		local extra=()
		mapfile -t extra < <("$SDIR/prepare.sh" "$rundir" "$PORT" "$addr") || { log "$name: prepare.sh failed"; return 2; }
		args+=("${extra[@]}")
	fi
	"$KAMAILIO" "${args[@]}" >"$rundir/kamailio.log" 2>&1 &
	KPID=$!; KRUNDIR=$rundir; KNAME=$name; KADDR=$addr
	local i
	for i in $(seq 1 100); do
		if ! kill -0 "$KPID" 2>/dev/null; then
			log "$name: kamailio exited during start-up:"; tail -15 "$rundir/kamailio.log"
			wait "$KPID" 2>/dev/null; KPID=""; return 2
		fi
		port_bound "$PORT" && break
		sleep 0.1
	done
	port_bound "$PORT" || { log "$name: socket not bound after 10 s"; k_stop; return 2; }
	sleep 0.5   # let the workers finish child_init (DB connections)
	[ "$noseed" = noseed ] && return 0
	case "$SEED" in
	publish)
		( cd "$BENCH/scen" && "$SIPP" "$addr:$PORT" -sf publish.xml -i 127.0.0.1 -p "$SEED_PORT" \
			-key conf_user "$CONF_USER" -key conf_domain "$CONF_DOMAIN" -key pub_expires 3600 \
			-m 1 -nostdin -timeout 10s -timeout_error \
			-trace_err -error_file "$rundir/seed_errors.log" >"$rundir/seed.out" 2>&1 ) \
			|| { log "$name: seeding PUBLISH failed (see $rundir/seed.out)"; k_stop; return 2; } ;;
	script)
		"$SDIR/seed.sh" "$rundir" "$PORT" "$addr" >"$rundir/seed.out" 2>&1 \
			|| { log "$name: seed.sh failed (see $rundir/seed.out)"; k_stop; return 2; } ;;
	none) ;;
	*) log "$name: unknown SEED=$SEED"; k_stop; return 2 ;;
	esac
	return 0
}

# k_stop [KIDS...]: stop the kamailio we started (only that pid and its own children; KIDS:
# its children, listed by the caller before it sent TERM itself, see cl_stop)
k_stop() {
	[ -n "$KPID" ] || return 0
	local kids k i
	if [ $# -gt 0 ]; then kids="$*"; else kids=$(child_pids "$KPID"); fi
	kill -TERM "$KPID" 2>/dev/null
	for i in $(seq 1 150); do kill -0 "$KPID" 2>/dev/null || break; sleep 0.1; done
	local killed=0 st
	if kill -0 "$KPID" 2>/dev/null; then
		log "$KNAME: kamailio $KPID ignored TERM for 15 s, sending KILL"
		kill -KILL "$KPID" 2>/dev/null; killed=1
	fi
	wait "$KPID" 2>/dev/null; st=$?
	# kamailio exits 0 on TERM; anything else (a signal: 128+n) is a crash worth a look
	if [ "$killed" = 0 ] && [ "$st" != 0 ]; then
		local why="exit status $st"; [ "$st" -gt 128 ] && why="killed by signal $((st - 128))"
		[ -f "$KRUNDIR/core" ] && why="$why, core dumped"
		log "CRASH: kamailio $KNAME (pid $KPID) $why at shutdown or earlier; log: $KRUNDIR/kamailio.log"
		mkdir -p "$OUT/raw"
		echo "$(date -u '+%F %T') $KNAME pid $KPID: $why (${CUR_TAG:-?})" >>"$OUT/raw/crashes.txt"
		tail -20 "$KRUNDIR/kamailio.log" >"$OUT/raw/${CUR_TAG:-$KNAME}.crash_log_tail.txt" 2>/dev/null
		if [ -f "$KRUNDIR/core" ]; then
			if [ "${KEEP_CORES:-0}" = 1 ]; then mkdir -p "$RT/cores" && mv "$KRUNDIR/core" "$RT/cores/${CUR_TAG:-$KNAME}.core"
			else rm -f "$KRUNDIR/core"; fi   # ~SHM_MB large; KEEP_CORES=1 keeps it in $RT/cores
		fi
	fi
	for k in $kids; do   # leftovers: only if still ours (command line names our runtime dir)
		if [ -r "/proc/$k/cmdline" ] && tr '\0' ' ' <"/proc/$k/cmdline" | grep -qF -- "$KRUNDIR/"; then
			kill -KILL "$k" 2>/dev/null
		fi
	done
	KPID=""
}

# poststep TAG: the setup's optional poststep.sh (e.g. module statistics over RPC)
poststep() {
	[ -n "$KPID" ] && [ -x "$SDIR/poststep.sh" ] || return 0
	mkdir -p "$OUT/raw"
	timeout 20 "$SDIR/poststep.sh" "$KRUNDIR" "$PORT" "${KADDR:-127.0.0.1}" >"$OUT/raw/$1.poststep.txt" 2>&1 \
		|| log "$KNAME: poststep.sh failed (see $OUT/raw/$1.poststep.txt)"
}

# cl_start SIZE: nodes 1..SIZE of CLUSTER_SETUP (node i on its own address, 127.0.0.<i>, and
# port base+i-1, run dir $RT/<setup>/n<i>, dmq's notification_address = node 1; one address
# per node as one host per node in a real cluster, and because Kamailio 6's dmq, when a node's
# URI is not in its list, takes the node with the same IP address for it: nodes that share an
# IP merge into one and the bus never forms), then: until every node lists every
# node active in dmq, the session seeded on node 1 (seed.sh) and held by every node, and 3.5 s
# since the last node started (a starting node refuses SUBSCRIBEs with 503 until it has synced,
# at most 3 s). Sets CL_PIDS CL_DIRS CL_PORTS CL_ADDRS; 2 on failure (nodes stopped).
cl_start() {
	local size=$1 i base t_last socks
	load_setup "$CLUSTER_SETUP" || return 2
	base=${CLUSTER_PORT:-$SETUP_PORT}   # not PORT_OVERRIDE: that is for the single-server setups
	export CLUSTER_NODE1_PORT=$base CLUSTER_NODE1_ADDR=${CL_ADDRS_ALL[0]}
	CL_PIDS=(); CL_DIRS=(); CL_PORTS=(); CL_ADDRS=()
	for i in $(seq 1 "$size"); do
		NODE_ADDR=${CL_ADDRS_ALL[$((i - 1))]} NODE_PORT=$((base + i - 1)) NODE_DIR="$CLUSTER_SETUP/n$i" k_start "$CLUSTER_SETUP" noseed \
			|| { log "$CLUSTER_SETUP: node $i of $size did not start"; cl_stop; return 2; }
		CL_PIDS+=("$KPID"); CL_DIRS+=("$KRUNDIR"); CL_PORTS+=("$((base + i - 1))"); CL_ADDRS+=("$KADDR"); KPID=""
	done
	t_last=$(date +%s%N)
	socks=$(printf '%s/'"$CTL_SOCK"',' "${CL_DIRS[@]}"); socks=${socks%,}
	for i in $(seq 1 50); do [ -S "${CL_DIRS[$((size - 1))]}/$CTL_SOCK" ] && break; sleep 0.1; done
	"$PY" "$BENCH/tools/bench.py" cluster-wait --ctl "$socks" --nodes "$size" --timeout 20 \
		|| { log "$CLUSTER_SETUP: the dmq bus of $size nodes did not form"; cl_stop; return 2; }
	"$SDIR/seed.sh" "${CL_DIRS[0]}" "$base" "${CL_ADDRS[0]}" >"${CL_DIRS[0]}/seed.out" 2>&1 \
		|| { log "$CLUSTER_SETUP: seed.sh on node 1 failed (see ${CL_DIRS[0]}/seed.out)"; cl_stop; return 2; }
	"$PY" "$BENCH/tools/bench.py" cluster-wait --ctl "$socks" --session "sip:$CONF_USER@$CONF_DOMAIN" \
		--participants 2 --timeout 10 \
		|| { log "$CLUSTER_SETUP: the seeded session did not reach every node"; cl_stop; return 2; }
	local wait_ms=$(( CLUSTER_SYNC_WAIT_MS - ($(date +%s%N) - t_last) / 1000000 ))
	[ "$wait_ms" -gt 0 ] && sleep "$(calc "$wait_ms / 1000")"
	return 0
}

# cl_stop: TERM to every node at once (a node that stops hands its subscriptions to the peers
# still running: stopping them together keeps that short), then k_stop each (exit status,
# leftovers); per node the poststep output and the log's ERROR/WARNING lines (tag CL_TAG)
cl_stop() {
	local j kids=()
	[ ${#CL_PIDS[@]} -gt 0 ] || return 0
	for j in "${!CL_PIDS[@]}"; do kids[$j]="$(child_pids "${CL_PIDS[$j]}" | tr '\n' ' ')"; done
	for j in "${!CL_PIDS[@]}"; do kill -TERM "${CL_PIDS[$j]}" 2>/dev/null; done
	for j in "${!CL_PIDS[@]}"; do
		KPID=${CL_PIDS[$j]}; KRUNDIR=${CL_DIRS[$j]}; KADDR=${CL_ADDRS[$j]:-}; KNAME="$CLUSTER_SETUP/n$((j + 1))"
		CUR_TAG="${CL_TAG:-$CLUSTER_SETUP}-n$((j + 1))"
		# shellcheck disable=SC2086
		k_stop ${kids[$j]}
		save_step_artifacts /nonexistent "$CUR_TAG"
	done
	KRUNDIR=""; KNAME=""; KADDR=""; CL_PIDS=(); CL_DIRS=(); CL_PORTS=(); CL_ADDRS=()
}

# keep a compact trace of a step: SIPp stats + error head, kamailio error summary
save_step_artifacts() {
	local sdir=$1 tag=$2
	mkdir -p "$OUT/raw"
	[ -f "$sdir/stat.csv" ] && cp "$sdir/stat.csv" "$OUT/raw/$tag.sipp_stat.csv"
	[ -s "$sdir/errors.log" ] && head -c 20000 "$sdir/errors.log" >"$OUT/raw/$tag.sipp_errors.txt"
	if [ -f "$KRUNDIR/kamailio.log" ]; then
		grep -E "ERROR|WARNING|CRITICAL" "$KRUNDIR/kamailio.log" | sed -E 's/^ *[0-9]+\([0-9]+\) //' \
			| sort | uniq -c | sort -rn | head -20 >"$OUT/raw/$tag.kamailio_errors.txt"
		[ -s "$OUT/raw/$tag.kamailio_errors.txt" ] || rm -f "$OUT/raw/$tag.kamailio_errors.txt"
	fi
}

# run_step SETUP PHASE REP RATE SECS -> 0 pass, 1 fail, 2 harness error
run_step() {
	local s=$1 ph=$2 rep=$3 rate=$4 secs=$5 attempt rc=2
	for attempt in 1 2; do
		k_start "$s" || return 2
		local sdir="$RT/steps/$s-$ph-$rep-$rate-$attempt" retry=()
		rm -rf "$sdir"
		[ "$attempt" = 1 ] && retry=(--retry-on-noise)
		local sipp_extra=() x
		for x in $SIPP_EXTRA; do sipp_extra+=("--sipp-arg=$x"); done
		"$PY" "$BENCH/tools/bench.py" step --setup "$s" --phase "$ph" --rep "$rep" \
			--port "$PORT" --kpid "$KPID" --rate "$rate" --secs "$secs" \
			--scenario "$SCENARIO" --outdir "$sdir" --results "$RESULTS" \
			--key "conf_user=$CONF_USER" --key "conf_domain=$CONF_DOMAIN" --key "expires=$SUB_EXPIRES" \
			--sipp "$SIPP" --sipp-port "$SIPP_PORT" --probe-port "$PROBE_PORT" --probe-rate "$PROBE_RATE" \
			--noise-pct "$NOISE_PCT" --max-p95-ms "$MAX_P95_MS" --ctl "$KRUNDIR/$CTL_SOCK" --klog "$KRUNDIR/kamailio.log" \
			"${retry[@]}" "${sipp_extra[@]}"
		rc=$?
		CUR_TAG="$s-$ph-rep$rep-${rate}cps-try$attempt"
		poststep "$CUR_TAG"
		k_stop
		save_step_artifacts "$sdir" "$s-$ph-rep$rep-${rate}cps-try$attempt"
		rm -rf "$sdir"
		[ "$rc" = 3 ] && continue
		break
	done
	[ "$rc" = 3 ] && rc=1
	return "$rc"
}

declare -A CAL_LO CAL_HI MAXES

# calibrate SETUP: short steps, rate doubled from CAL_START until the first failure
calibrate() {
	local s=$1 r=$CAL_START lo=0 hi=0 rc n=0
	while [ $n -lt 12 ]; do
		run_step "$s" cal 0 "$r" "$CAL_SECS"; rc=$?; n=$((n + 1))
		[ $rc = 2 ] && return 2
		if [ $rc = 0 ]; then
			lo=$r; [ $hi -gt 0 ] && break
			r=$((r * 2)); [ $r -gt "$RATE_MAX" ] && { hi=$r; break; }
		else
			hi=$r; [ $lo -gt 0 ] && break
			r=$((r / 2)); [ $r -lt 5 ] && break
		fi
	done
	CAL_LO[$s]=$lo; CAL_HI[$s]=$hi
	log "calibration $s: passes $lo cps, fails $hi cps (${CAL_SECS}s steps)"
}

# The search for the highest passing rate: a geometric bisection per setup.  L is presumed to
# pass and H to fail until tested; the bracket widens if wrong.  The setups' searches advance
# in lockstep (one step of A, one of B, one of C, ...), so that each sees the same stretch of
# a shared, noisy machine (run_step starts a fresh kamailio per step anyway).
declare -A S_LO S_HI S_PLO S_PHI S_N S_DONE
search_init() { S_LO[$1]=0; S_HI[$1]=0; S_PLO[$1]=$2; S_PHI[$1]=$3; S_N[$1]=0; S_DONE[$1]=0; }
# search_next SETUP: NEXT_RATE = the next rate to try, or S_DONE[SETUP]=1
search_next() {
	local s=$1 lo=${S_LO[$1]} hi=${S_HI[$1]} a b r
	NEXT_RATE=0
	if [ "${S_N[$s]}" -ge "$MAX_STEPS" ]; then S_DONE[$s]=1; return; fi
	a=${S_PLO[$s]}; [ "$lo" -gt 0 ] && a=$lo
	b=${S_PHI[$s]}; [ "$hi" -gt 0 ] && b=$hi
	if awk -v a="$a" -v b="$b" -v res="$RES" 'BEGIN { exit !(b <= a * (1 + res)) }'; then
		if [ "$lo" = 0 ]; then r=$a
		elif [ "$hi" = 0 ]; then r=$b
		else S_DONE[$s]=1; return; fi
	else
		r=$(nice_rate "$(calc "sqrt($a * $b)")")
		if [ "$r" -le "$a" ] || [ "$r" -ge "$b" ]; then   # rounding ate the gap
			if [ "$lo" = 0 ]; then r=$a; elif [ "$hi" = 0 ]; then r=$b; else S_DONE[$s]=1; return; fi
		fi
	fi
	if [ "$r" -gt "$RATE_MAX" ]; then S_HI[$s]=$r; S_DONE[$s]=1; return; fi
	NEXT_RATE=$r
}
# search_record SETUP RATE RC
search_record() {
	local s=$1 r=$2 rc=$3
	S_N[$s]=$((S_N[$s] + 1))
	if [ "$rc" = 0 ]; then
		S_LO[$s]=$r; [ "$r" -ge "${S_PHI[$s]}" ] && S_PHI[$s]=$(nice_rate "$(calc "$r * 1.3")")
	else
		S_HI[$s]=$r; [ "$r" -le "${S_PLO[$s]}" ] && S_PLO[$s]=$(nice_rate "$(calc "$r * 0.7")")
	fi
}
search_done() {
	local s=$1 rep=$2
	# a repetition that found no passing rate does not pull later brackets down (a median with 0)
	[ "${S_LO[$s]}" -gt 0 ] && MAXES[$s]="${MAXES[$s]:-} ${S_LO[$s]}"
	log "max $s rep $rep: highest passing rate ${S_LO[$s]} cps (lowest failing ${S_HI[$s]} cps, ${S_N[$s]} steps)"
}

median_of() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

ordered_setups() {   # alternate the order between repetitions to cancel drift
	local rep=$1
	if [ $((rep % 2)) = 1 ]; then echo "$SETUPS"; else echo "$SETUPS" | tr ' ' '\n' | tac | tr '\n' ' '; fi
}

# ------------------------------------------------------------ the target ----
# The Kamailio to bench, as for `make build` (the Makefile exports KAMAILIO_PREFIX, KAMAILIO_BIN,
# KAMAILIO_SRC, KAMCMD, KAMAILIO_MODULES): scripts/kamailio_target.py env says where its binary,
# kamcmd and module dir are. Explicit KAMAILIO / KAMCMD / KAM_MODDIR win. If the script cannot
# tell (e.g. no headers for KAMAILIO=<a binary> alone: the bench does not need them), the
# binary's own `kamailio -I` gives the module dir.
REPO="$(cd "$BENCH/.." && pwd)"
resolve_target() {
	local out err T_BIN="" T_KAMCMD="" T_MODDIR="" T_SRC=""
	[ -n "$PY" ] || die "python3 not found"
	# KAMAILIO=<binary> alone names the target too
	[ -n "${KAMAILIO:-}" ] && [ -z "${KAMAILIO_BIN:-}" ] && [ -z "${KAMAILIO_PREFIX:-}" ] && export KAMAILIO_BIN=$KAMAILIO
	err=$(mktemp)
	if out=$("$PY" "$REPO/scripts/kamailio_target.py" env 2>"$err"); then
		eval "$(printf '%s\n' "$out" | grep -E '^KAM_(BIN|KAMCMD|MODDIR|SRC)=' | sed 's/^KAM_/T_/')"
		TARGET_FROM="scripts/kamailio_target.py"
	elif [ -n "${KAMAILIO_BIN:-}" ] || [ -n "${KAMAILIO_PREFIX:-}" ]; then
		T_BIN=${KAMAILIO_BIN:-${KAMAILIO_PREFIX:-}/sbin/kamailio}
		log "note: $(head -c 300 "$err" | tr '\n' ' ')-- using $T_BIN and its own module path"
		TARGET_FROM="$T_BIN -I"
	else
		cat "$err" >&2; rm -f "$err"
		die "cannot tell which Kamailio to bench (scripts/kamailio_target.py env failed: make deps, or set KAMAILIO_PREFIX, or KAMAILIO=<binary>)"
	fi
	rm -f "$err"
	KAMAILIO=${KAMAILIO:-$T_BIN}
	[ -x "$KAMAILIO" ] || die "kamailio binary $KAMAILIO not found"
	KAMCMD=${KAMCMD:-${T_KAMCMD:-$(dirname "$KAMAILIO")/kamcmd}}
	if [ -z "${KAM_MODDIR:-}" ]; then
		KAM_MODDIR=${T_MODDIR:-${KAMAILIO_MODULES:-}}
		if [ -z "$KAM_MODDIR" ]; then
			local d
			for d in $("$KAMAILIO" -I 2>/dev/null | sed -n 's/^ *Default paths to modules: //p' | tr ':' ' '); do
				[ -f "$d/tm.so" ] && { KAM_MODDIR=$d; break; }
			done
		fi
	fi
	[ -f "${KAM_MODDIR:-/nonexistent}/tm.so" ] || die "no module dir with tm.so for $KAMAILIO (got '${KAM_MODDIR:-}'; set KAM_MODDIR)"
	KAM_SRCDIR=$T_SRC
	# what the figures came from: `kamailio -v`'s first line (version, arch, git revision), and
	# the version string a module must carry to load (core/ver_defs.h: SER_FULL_VERSION)
	KAM_VERSION_LINE=$("$KAMAILIO" -v 2>&1 | head -1 | sed 's/[[:space:]]*$//')
	[[ $KAM_VERSION_LINE == "version: "* ]] || die "cannot read the version of $KAMAILIO (kamailio -v: '$KAM_VERSION_LINE')"
	IMCONF_SO=${IMCONF_SO:-$REPO/build/imconf.so}
	case "$IMCONF_SO" in /*) ;; *) IMCONF_SO="$PWD/$IMCONF_SO" ;; esac
}
# module_matches FILE: the module carries this Kamailio's version string (the loader refuses it
# otherwise: ksr_version_control); 1 with a reason in MODULE_WHY if not (scripts/kamailio_target.py
# check-module, the check `make install` and `make deb` make too).
module_matches() {
	MODULE_WHY=$("$PY" "$REPO/scripts/kamailio_target.py" check-module "$1" "$KAMAILIO" 2>&1) && return 0
	MODULE_WHY="$MODULE_WHY (or IMCONF_SO=<imconf.so built for this Kamailio>)"
	return 1
}
sqlite_schema_dir() {   # presence-create.sql of the target, Debian's as the last resort
	local d
	for d in ${SQLITE_SCHEMA_DIR:+"$SQLITE_SCHEMA_DIR"} "$(dirname "$KAMAILIO")/../share/kamailio/db_sqlite" \
		${KAM_SRCDIR:+"$KAM_SRCDIR/utils/kamctl/db_sqlite"} /usr/share/kamailio/db_sqlite; do
		[ -f "$d/presence-create.sql" ] && [ -f "$d/standard-create.sql" ] && { (cd "$d" && pwd); return 0; }
	done
	return 1
}

# ------------------------------------------------------------ preflight ----
resolve_target
export KAMAILIO KAMCMD KAM_MODDIR IMCONF_SO
export BENCH_KAMAILIO="$KAM_VERSION_LINE"   # bench.py writes it into every record of results.jsonl
command -v "$SIPP" >/dev/null || die "sipp not found (apt install sip-tester)"
mkdir -p "$OUT/raw" "$RT/steps" || die "cannot create $OUT or $RT"
[ "$OUT" = "$BENCH/results/$RUN_ID" ] && { ln -sfn "$RUN_ID" "$BENCH/results/latest" 2>/dev/null || true; }
exec > >(tee -a "$OUT/run.log") 2>&1

for p in $SIPP_PORT $SEED_PORT $PROBE_PORT $FANOUT_PORT; do
	port_bound "$p" && die "UDP port $p (used by the load generators) is busy"
done
NEED_SQLITE=0; NEED_IMCONF=0
psetups=$SETUPS; has_phase cluster && psetups="$psetups $CLUSTER_SETUP"
for s in $psetups; do
	load_setup "$s" || die "bad setup $s"
	[ "$s" = "$CLUSTER_SETUP" ] || ! port_bound "$PORT" || die "port $PORT of $s is busy"
	[ "$DB" = sqlite ] && NEED_SQLITE=1
	[ "$IMCONF" = 1 ] && NEED_IMCONF=1
	if [ "$SEED" = script ] || [ "$FANOUT_TRIGGER" = rpc ]; then
		[ -x "$KAMCMD" ] || die "kamcmd $KAMCMD not found (setup $s seeds over RPC; set KAMCMD)"
	fi
done
if [ "$NEED_IMCONF" = 1 ]; then
	module_matches "$IMCONF_SO" || die "$MODULE_WHY"
fi
# the cluster's addresses: node i on 127.0.0.<i> unless CLUSTER_ADDRS lists others (127.0.0.0/8 only)
CL_ADDRS_ALL=()
if has_phase cluster; then
	maxsize=1; for z in $CLUSTER_SIZES; do [ "$z" -gt "$maxsize" ] && maxsize=$z; done
	if [ -n "$CLUSTER_ADDRS" ]; then read -r -a CL_ADDRS_ALL <<<"$CLUSTER_ADDRS"
	else for i in $(seq 1 "$maxsize"); do CL_ADDRS_ALL+=("127.0.0.$i"); done; fi
	[ ${#CL_ADDRS_ALL[@]} -ge "$maxsize" ] || die "CLUSTER_ADDRS lists ${#CL_ADDRS_ALL[@]} addresses, the largest cluster has $maxsize nodes"
	for a_ in "${CL_ADDRS_ALL[@]}"; do
		[[ "$a_" =~ ^127\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] && [ "${BASH_REMATCH[1]}" -le 255 ] \
			&& [ "${BASH_REMATCH[2]}" -le 255 ] && [ "${BASH_REMATCH[3]}" -le 254 ] && [ "${BASH_REMATCH[3]}" -ge 1 ] \
			|| die "cluster address $a_ is not a host address in 127.0.0.0/8"
	done
	[ "$(printf '%s\n' "${CL_ADDRS_ALL[@]:0:$maxsize}" | sort -u | wc -l)" = "$maxsize" ] \
		|| die "CLUSTER_ADDRS: every node needs its own address (Kamailio 6 dmq tells nodes apart by IP)"
fi

# sqlite presence schema, once per run (only if a setup uses it): the target's
SQLDIR=""
if [ "$NEED_SQLITE" = 1 ]; then
SQLDIR=$(sqlite_schema_dir) || die "presence-create.sql of $KAMAILIO not found (looked in $(dirname "$KAMAILIO")/../share/kamailio/db_sqlite, ${KAM_SRCDIR:-<no source tree>}/utils/kamctl/db_sqlite, /usr/share/kamailio/db_sqlite; set SQLITE_SCHEMA_DIR)"
rm -f "$RT/template.sqlite"
if command -v sqlite3 >/dev/null; then
	cat "$SQLDIR/standard-create.sql" "$SQLDIR/presence-create.sql" | sqlite3 "$RT/template.sqlite" || die "sqlite3 schema load failed"
else
	"$PY" -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); [c.executescript(open(f).read()) for f in sys.argv[2:]]; c.commit()' \
		"$RT/template.sqlite" "$SQLDIR/standard-create.sql" "$SQLDIR/presence-create.sql" || die "python sqlite3 schema load failed"
fi
fi
CONF_BODY_DEF=$("$PY" "$BENCH/tools/bench.py" body --doc "$BENCH/scen/conference-info.xml")

{
	echo "run_id: $RUN_ID"; date -u +"date_utc: %F %T"; echo "host: $(uname -srm), $(nproc) cpus, $(awk '/MemTotal/ {print $2" kB"}' /proc/meminfo)"
	echo "kamailio: $KAM_VERSION_LINE"; echo "sipp: $("$SIPP" -v 2>&1 | grep -m1 SIPp | sed 's/^ *//')"
	echo "kamailio binary: $KAMAILIO (target from $TARGET_FROM)"; echo "kamailio modules: $KAM_MODDIR"; echo "kamcmd: $KAMCMD"
	[ "$NEED_IMCONF" = 1 ] && echo "imconf module: $IMCONF_SO (sha256 $(sha256sum "$IMCONF_SO" | cut -c1-16), built $(date -r "$IMCONF_SO" '+%F %T'))"
	has_phase cluster && echo "cluster addresses: ${CL_ADDRS_ALL[*]}"
	echo "python: $("$PY" -V 2>&1)"; echo "sqlite schema: ${SQLDIR:-none}"; echo "loadavg at start: $(cat /proc/loadavg)"
	echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(grep -m1 'cpu MHz' /proc/cpuinfo | sed 's/.*: //') MHz"
	# the speed of this box right now (a shared VM's varies): one core, a fixed Python loop,
	# best of 3; compare with other runs' to tell a slower box from a slower build
	echo "cpu_calib_ms: $("$PY" -c 'import time
def f():
    t = time.perf_counter(); x = 0
    for i in range(2000000): x += i & 7
    return (time.perf_counter() - t) * 1000
print("%.0f" % min(f() for _ in range(3)))')"
	for v in SETUPS CEILING BASELINE REPS STEP_SECS CAL_SECS CAL_START RATE_MAX RES MAX_STEPS FIXED_RATE HIGH_PCT FIXED_SECS FANOUT_NS \
		CLUSTER_SETUP CLUSTER_SIZES CLUSTER_N CLUSTER_REPS CLUSTER_SUB_RATE CLUSTER_PORT CLUSTER_SETTLE CLUSTER_SYNC_WAIT_MS \
		WORKLOAD PARTICIPANTS SESSIONS GROUP_MEMBERS SCENARIO SIPP_EXTRA KAM_ARGS KAM_DEFINES STOP_AT STOP_RESERVE_S FANOUT_REPS FANOUT_SUB_RATE FANOUT_BIG_SUB_RATE MEM_SETUPS MEM_CALLS MEM_WARM_CALLS MEM_RATE PROBE_RATE NOISE_PCT MAX_P95_MS SHM_MB PKG_MB CONF_USER CONF_DOMAIN SUB_EXPIRES PHASES RT; do
		echo "$v=${!v}"
	done
} >"$OUT/env.txt"
log "run $RUN_ID: setups [$SETUPS], reps $REPS, ${STEP_SECS}s steps; output in $OUT"
sed 's/^/    /' "$OUT/env.txt" | head -9


# ----------------------------------------------------- 1. calibration ----
if has_phase cal || has_phase max; then
	log "phase 1/5: calibration (rate doubled from $CAL_START cps, ${CAL_SECS}s steps)"
	for s in $SETUPS; do calibrate "$s" || die "calibration of $s failed"; done
fi

# same_load PHASE RATE: every setup at RATE cps for FIXED_SECS, REPS reps, interleaved
same_load() {
	local phase=$1 rate=$2 rep s
	for rep in $(seq 1 "$REPS"); do
		for s in $(ordered_setups "$rep"); do
			run_step "$s" "$phase" "$rep" "$rate" "$FIXED_SECS"; [ $? = 2 ] && die "$phase step of $s failed to run"
		done
	done
}

# ----------------------------------------------- 2. same offered load ----
if has_phase fixed; then
	log "phase 2/5: every setup at $FIXED_RATE cps for ${FIXED_SECS}s, $REPS reps (interleaved)"
	same_load fixed "$FIXED_RATE"
fi

# ------------------------------------------------------ 3. max rate ------
if has_phase max; then
	log "phase 3/5: highest rate with 0 failed calls, ${STEP_SECS}s steps, $REPS reps (setups in lockstep)"
	for rep in $(seq 1 "$REPS"); do
		order=$(ordered_setups "$rep")
		for s in $order; do
			lo=${CAL_LO[$s]:-0}; hi=${CAL_HI[$s]:-0}
			[ "$lo" -gt 0 ] || lo=$CAL_START
			[ "$hi" -gt 0 ] || hi=$RATE_MAX
			if [ -n "${MAXES[$s]:-}" ]; then      # later reps: narrow bracket around earlier results
				# shellcheck disable=SC2086
				m=$(median_of ${MAXES[$s]})
				if [ "${m%.*}" -gt 0 ]; then L=$(nice_rate "$(calc "$m * 0.85")"); H=$(nice_rate "$(calc "$m * 1.2")")
				else L=$(nice_rate "$(calc "$lo * 0.5")"); H=$lo; fi
			else
				L=$(nice_rate "$(calc "$lo * 0.75")"); H=$hi
			fi
			search_init "$s" "$L" "$H"
		done
		busy=1
		while [ $busy = 1 ]; do
			busy=0
			for s in $order; do
				[ "${S_DONE[$s]}" = 1 ] && continue
				if [ "$STOP_AT" -gt 0 ] && [ $(( $(date +%s) + STOP_RESERVE_S )) -gt "$STOP_AT" ]; then
					log "time budget (STOP_AT): no further max step for $s"; S_DONE[$s]=1; search_done "$s" "$rep"; continue
				fi
				search_next "$s"
				if [ "${S_DONE[$s]}" = 1 ]; then search_done "$s" "$rep"; continue; fi
				busy=1
				run_step "$s" max "$rep" "$NEXT_RATE" "$STEP_SECS"; rc=$?
				[ $rc = 2 ] && die "max search of $s failed to run"
				search_record "$s" "$NEXT_RATE" "$rc"
			done
		done
	done
fi

# ------------------------------- 3b. the same high load for every setup ----
# phase high (issue 18): every setup at HIGH_PCT % of the ceiling's median max of this run (after
# phase max), FIXED_SECS per step, REPS reps: the CPU per call near the top, where the max-rate
# figure alone does not say what each call costs
if has_phase high; then
	# shellcheck disable=SC2086
	m=$(median_of ${MAXES[$CEILING]:-})
	if [ "${m%.*}" -gt 0 ]; then
		HIGH_RATE=$(nice_rate "$(calc "$m * $HIGH_PCT / 100")")
		log "phase 3b: every setup at $HIGH_RATE cps ($HIGH_PCT % of $CEILING's max $m) for ${FIXED_SECS}s, $REPS reps (interleaved)"
		same_load high "$HIGH_RATE"
	else
		log "phase 3b (high): skipped, no max of $CEILING in this run (add phase max and $CEILING to SETUPS)"
	fi
fi

# -------------------------------------------------------- 4. fan-out -----
if has_phase fanout; then
	log "phase 4/5: fan-out (N = $FANOUT_NS), $FANOUT_REPS reps"
	for n in $FANOUT_NS; do
		for rep in $(seq 1 "$FANOUT_REPS"); do
			for prof in $FANOUT_PROFILES; do
			for s in $SETUPS; do
				load_setup "$s" || continue
				[ "$FANOUT" = 1 ] || continue
				# output profiles: imconf only (the other setups take no User-Agent choice)
				pflag=(); K_DEFINE=""
				if [ "$prof" != default ]; then
					[ "$IMCONF" = 1 ] || continue
					pflag=(--profiles "$prof"); K_DEFINE=FANOUT_PROFILES
				fi
				[ "$n" -le "$FANOUT_MAX_N" ] || continue
				srate=$FANOUT_SUB_RATE; [ "$n" -gt 1000 ] && srate=$FANOUT_BIG_SUB_RATE
				if [ "$FANOUT_TRIGGER" = rpc ]; then
					# the state comes from seed.sh, the change from one RPC call
					k_start "$s" || die "start of $s failed"
					trigger="rpc:$KRUNDIR/$CTL_SOCK"
				else
					# bench.py publishes the initial document itself
					k_start "$s" noseed || die "start of $s failed"
					trigger=publish
				fi
				fctl=(); [ "$FANOUT_SHM" = 1 ] && fctl=(--ctl "$KRUNDIR/$CTL_SOCK")
				"$PY" "$BENCH/tools/bench.py" fanout --setup "$s" --rep "$rep" --port "$PORT" --kpid "$KPID" \
					--n "$n" --local-port "$FANOUT_PORT" --sub-rate "$srate" --trigger "$trigger" "${fctl[@]}" \
					--doc "$BENCH/scen/conference-info.xml" --conf-user "$CONF_USER" --conf-domain "$CONF_DOMAIN" \
					--results "$RESULTS" "${pflag[@]}" || { log "fan-out $s N=$n rep $rep did not complete"; FANOUT_FAILED=1; }
				ptag=""; [ "$prof" != default ] && ptag="-${prof//,/+}"
				CUR_TAG="$s-fanout-N$n$ptag-rep$rep"
				poststep "$CUR_TAG"
				k_stop
				save_step_artifacts /nonexistent "$CUR_TAG"
				K_DEFINE=""
			done
			done
		done
	done
fi

# --------------------------------------------------------- 5. memory -----
# One kamailio per setup: MEM_WARM_CALLS calls (warm-up: pools, caches, hash tables reach their
# working size), then MEM_CALLS calls; shm / pkg / private memory in use before and after the
# second step, each taken once tm has freed the step's transactions (bench.py --settle-mem).
if has_phase mem; then
	log "phase 5/5: memory, $MEM_WARM_CALLS + $MEM_CALLS calls at $MEM_RATE cps per setup"
	msetups=${MEM_SETUPS:-$SETUPS}; nleft=$(echo $msetups | wc -w)
	for s in $msetups; do
		nleft=$((nleft - 1))
		# at most MEM_RATE, and at most 60 % of the setup's highest passing rate of this run
		mrate=$MEM_RATE
		if [ -n "${MAXES[$s]:-}" ]; then
			# shellcheck disable=SC2086
			m=$(median_of ${MAXES[$s]}); cap=$(nice_rate "$(calc "$m * 0.6")")
			[ "${m%.*}" -gt 0 ] && [ "$cap" -lt "$mrate" ] && mrate=$cap
		fi
		log "memory $s: $MEM_WARM_CALLS + $MEM_CALLS calls at $mrate cps"
		k_start "$s" || die "start of $s failed"
		for ph in memwarm mem; do
			calls=$MEM_WARM_CALLS; [ $ph = mem ] && calls=$MEM_CALLS
			if [ $ph = mem ] && [ "$STOP_AT" -gt 0 ]; then
				# what is left of the budget, shared with the setups still to come, 40 s each for the rest
				left=$(( STOP_AT - $(date +%s) - 40 * nleft ))
				fit=$(( left * mrate * 10 / 13 / (nleft + 1) ))
				if [ "$fit" -lt "$calls" ]; then
					[ "$fit" -lt 20000 ] && fit=20000
					log "time budget (STOP_AT): $s memory step shortened to $fit calls"; calls=$fit
				fi
			fi
			secs=$(( (calls + mrate - 1) / mrate ))
			sdir="$RT/steps/$s-$ph"; rm -rf "$sdir"
			"$PY" "$BENCH/tools/bench.py" step --setup "$s" --phase "$ph" --rep 1 \
				--port "$PORT" --kpid "$KPID" --rate "$mrate" --secs "$secs" \
				--scenario "$BENCH/scen/subscribe_notify.xml" --outdir "$sdir" --results "$RESULTS" \
				--key "conf_user=$CONF_USER" --key "conf_domain=$CONF_DOMAIN" --key "expires=$SUB_EXPIRES" \
				--sipp "$SIPP" --sipp-port "$SIPP_PORT" --probe-port "$PROBE_PORT" --probe-rate "$PROBE_RATE" \
				--noise-pct 1000 --max-p95-ms "$MAX_P95_MS" --ctl "$KRUNDIR/$CTL_SOCK" --klog "$KRUNDIR/kamailio.log" --settle-mem 20
			[ $? = 2 ] && die "memory step of $s failed to run"
			CUR_TAG="$s-$ph-${mrate}cps"
			save_step_artifacts "$sdir" "$CUR_TAG"
			rm -rf "$sdir"
		done
		poststep "$s-mem"
		k_stop
	done
fi

# --------------------------------------------------------- 6. cluster ----
# imconf nodes joined by dmq (enable_dmq): CLUSTER_N subscriptions on one session, spread
# evenly over the nodes (subscriber i through node i % size), one change fed to node 1 by RPC;
# the time until all N NOTIFYs (from every node) arrived, and until the first one from a node
# other than node 1 (replication). The fan-out's code (bench.py fanout --kind cluster).
if has_phase cluster; then
	load_setup "$CLUSTER_SETUP" || die "bad setup $CLUSTER_SETUP"
	log "phase cluster: $CLUSTER_SIZES imconf node(s) with enable_dmq, N = $CLUSTER_N, $CLUSTER_REPS reps (interleaved); node i on address i of [${CL_ADDRS_ALL[*]}], port ${CLUSTER_PORT:-$SETUP_PORT}+i-1"
	[ -x "$KAMCMD" ] || die "kamcmd $KAMCMD not found (the cluster is seeded over RPC)"
	[ -x "$SDIR/seed.sh" ] || die "$CLUSTER_SETUP has no seed.sh"
	for rep in $(seq 1 "$CLUSTER_REPS"); do
		for size in $CLUSTER_SIZES; do
			CL_TAG="$CLUSTER_SETUP-${size}nodes-N$CLUSTER_N-rep$rep"
			cl_start "$size" || die "start of a $size-node cluster failed"
			nodes_at=(); for j in "${!CL_PORTS[@]}"; do nodes_at+=("${CL_ADDRS[$j]}:${CL_PORTS[$j]}"); done
			"$PY" "$BENCH/tools/bench.py" fanout --kind cluster --setup "$CLUSTER_SETUP" --rep "$rep" \
				--host "${CL_ADDRS[0]}" --port "${CL_PORTS[0]}" --node-ports "$(IFS=,; echo "${nodes_at[*]}")" \
				--kpid "$(IFS=,; echo "${CL_PIDS[*]}")" --n "$CLUSTER_N" --local-port "$FANOUT_PORT" \
				--sub-rate "$CLUSTER_SUB_RATE" --settle "$CLUSTER_SETTLE" --retry-503 --trigger "rpc:${CL_DIRS[0]}/$CTL_SOCK" \
				--doc "$BENCH/scen/conference-info.xml" --conf-user "$CONF_USER" --conf-domain "$CONF_DOMAIN" \
				--results "$RESULTS" || { log "cluster of $size, N=$CLUSTER_N, rep $rep did not complete"; CLUSTER_FAILED=1; }
			for j in "${!CL_PIDS[@]}"; do
				KPID=${CL_PIDS[$j]}; KRUNDIR=${CL_DIRS[$j]}; PORT=${CL_PORTS[$j]}; KADDR=${CL_ADDRS[$j]}
				poststep "$CL_TAG-n$((j + 1))"
			done
			KPID=""; KADDR=""
			cl_stop
		done
	done
fi

# --------------------------------------------------------- report --------
log "done in $(( $(date +%s) - T_START ))s; loadavg now $(cat /proc/loadavg)"
echo "loadavg at end: $(cat /proc/loadavg)" >>"$OUT/env.txt"
echo
[ -s "$RESULTS" ] && "$PY" "$BENCH/tools/bench.py" report --results "$RESULTS" --ceiling "$CEILING" \
	--baseline "$BASELINE" --raw "$OUT/raw" --out "$OUT/summary.md" --ratios-out "$OUT/ratios.json" --env "$OUT/env.txt"
# the plot needs matplotlib: the bench venv (setup.sh); without it, everything else still works
VPY=${VPY:-"$BENCH/../.deps/bench-venv/bin/python"}
if [ "${PLOT:-1}" = 0 ]; then :
elif [ -s "$RESULTS" ] && [ -x "$VPY" ] && "$VPY" -c 'import matplotlib' 2>/dev/null; then
	"$VPY" "$BENCH/tools/bench.py" plot --results "$RESULTS" --out "$OUT/latency_vs_load.png" --title "$RUN_ID" \
		|| log "plot failed"
else
	log "no plot: $VPY with matplotlib not found (bench/setup.sh creates it)"
fi
echo
log "raw data: $RESULTS ; tables: $OUT/summary.md ; log: $OUT/run.log"
[ -s "$OUT/raw/crashes.txt" ] && { log "kamailio CRASHED in this run:"; cat "$OUT/raw/crashes.txt"; }
if [ "$STRICT" = 1 ]; then
	if [ "${FANOUT_FAILED:-0}" = 1 ] || [ "${CLUSTER_FAILED:-0}" = 1 ] || [ -s "$OUT/raw/crashes.txt" ] || ! "$PY" "$BENCH/tools/bench.py" check --results "$RESULTS" --phases fixed; then
		log "STRICT: a fixed-load step, a fan-out or a cluster measurement failed"; exit 1
	fi
fi
exit 0
