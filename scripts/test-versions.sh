#!/usr/bin/env bash
# `make test-versions`: imconf on every current Kamailio that Debian serves the source of, beside
# the packaged 5.6.3 that `make test` covers. For each suite in SUITES (trixie: 6.0.x; sid: 6.1.x):
#   1. scripts/kamailio-build.sh builds that Kamailio (core, kamcmd and the modules the tests load)
#      into the cache $IMCONF_KAM_CACHE (default /var/cache/imconf-kamailio), reused by later runs;
#   2. imconf is built against it (KAMAILIO_PREFIX; its own cargo target dir, target/kam-<version>);
#   3. scripts/check-load.sh loads it with the shipped example cfgs; the module built for the
#      packaged Kamailio (build/imconf.so) must be refused with Kamailio's own version error;
#   4. the whole integration suite runs against it (tests/integration/run.py --kamailio ...), then
#      the bench's smoke check (bench/smoke.sh).
# A suite whose source Debian does not serve today is reported UNAVAILABLE, never faked; it fails
# the run only when it is in REQUIRED (default: trixie). Prints a summary table; exit 1 if any
# available version failed.
set -uo pipefail
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$top"
SUITES=${SUITES:-trixie sid}
REQUIRED=${REQUIRED:-trixie}
export IMCONF_KAM_CACHE=${IMCONF_KAM_CACHE:-/var/cache/imconf-kamailio}
summary=()
failed=0

say() { echo "==> test-versions: $*"; }

for suite in $SUITES; do
	t0=$SECONDS
	say "$suite: Kamailio from Debian's source package"
	out=$(./scripts/kamailio-build.sh "$suite")
	rc=$?
	if [ $rc = 3 ]; then
		say "$suite: UNAVAILABLE (Debian does not serve its Kamailio source today; see the line above)"
		if [[ " $REQUIRED " == *" $suite "* ]]; then
			summary+=("$suite|-|UNAVAILABLE (required)|-|-")
			failed=1
		else
			summary+=("$suite|-|UNAVAILABLE|-|-")
		fi
		continue
	fi
	prefix=$(sed -n 's/^prefix=//p' <<<"$out")
	if [ $rc != 0 ] || [ -z "$prefix" ]; then
		say "$suite: FAIL building Kamailio"
		summary+=("$suite|?|FAIL (Kamailio build)|-|$((SECONDS - t0)) s")
		failed=1
		continue
	fi
	kam_build=$(cat "$prefix/.done")
	export KAMAILIO_PREFIX=$prefix
	unset KAMAILIO_BIN KAMAILIO_SRC KAMCMD KAMAILIO_MODULES
	eval "$(python3 scripts/kamailio_target.py env)" || { summary+=("$suite|?|FAIL (target)|-|-"); failed=1; continue; }
	ver=$KAM_VERSION
	say "$suite: $KAM_FULL_VERSION in $prefix ($kam_build)"

	t1=$SECONDS
	mod="build/versions/$ver/imconf.so"
	mkdir -p "build/versions/$ver"
	if ! CARGO_TARGET_DIR="target/kam-$ver" cargo build --release --features kamailio; then
		say "$suite: FAIL building imconf against Kamailio $ver"
		summary+=("$suite|$ver|FAIL (imconf build)|-|$((SECONDS - t0)) s")
		failed=1
		continue
	fi
	cp "target/kam-$ver/release/libimconf.so" "$mod.tmp" && mv -f "$mod.tmp" "$mod"
	imconf_build=$((SECONDS - t1))

	status=PASS
	# headers of another version than the binary: the build refuses with one line
	if [ -f .deps/kamailio-src/src/core/sr_module.h ]; then
		if refusal=$(KAMAILIO_PREFIX="" KAMAILIO_BIN="$KAM_BIN" KAMAILIO_SRC="$top/.deps/kamailio-src" \
			python3 scripts/kamailio_target.py build 2>&1 >/dev/null); then
			say "$suite: the 5.6.3 headers were accepted for Kamailio $ver"
			status="FAIL (mismatched headers accepted)"
		else
			say "$suite: mismatched headers refused as expected: $refusal"
		fi
	fi
	if ! ./scripts/check-load.sh "$mod"; then
		status="FAIL (load check)"
	fi
	# a module built for another Kamailio is refused by Kamailio's own check (expected; docs/packaging.md)
	if [ -f build/imconf.so ]; then
		cross=$("$KAM_BIN" -c -L "$KAM_MODDIR" -f kamailio-cfg/imconf.cfg -l udp:127.0.0.1:5059 \
			-A "IMCONF_SO=\"$top/build/imconf.so\"" -A "CTL_SOCK=\"unix:/tmp/imconf-tv-$$.sock\"" 2>&1)
		if grep -qE "module version mismatch|module compile flags mismatch" <<<"$cross"; then
			say "$suite: build/imconf.so (built for the packaged Kamailio) refused as expected: $(grep -m1 -oE 'module (version|compile flags) mismatch[^;]*' <<<"$cross")"
		elif ! cmp -s build/imconf.so "$mod"; then
			say "$suite: build/imconf.so was NOT refused by Kamailio $ver:"
			tail -5 <<<"$cross"
			status="FAIL (foreign module accepted)"
		fi
	fi

	t2=$SECONDS
	log="build/versions/$ver/integration.log"
	python3 tests/integration/run.py --module "$mod" --kamailio "$KAM_BIN" --kamcmd "$KAM_KAMCMD" \
		--mpath "$KAM_MODDIR" 2>&1 | tee "$log"
	irc=${PIPESTATUS[0]}
	counts=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1 | cut -d' ' -f1-6)
	[ $irc = 0 ] || status="FAIL (integration)"
	# the bench's own quick check on this Kamailio (setup C and the 3-node cluster, < 1 min)
	IMCONF_SO="$top/$mod" ./bench/smoke.sh || status="FAIL (bench smoke)"
	[ "$status" = PASS ] || failed=1
	summary+=("$suite|$ver|$status|${counts:-no result}|kamailio: $kam_build; imconf build ${imconf_build} s; suite $((SECONDS - t2)) s; total $((SECONDS - t0)) s")
done

echo
echo "test-versions summary (the packaged 5.6.3 is \`make test\`'s):"
printf '  %-7s %-8s %-26s %-38s %s\n' suite kamailio status tests time
for row in "${summary[@]}"; do
	IFS='|' read -r s v st c tm <<<"$row"
	printf '  %-7s %-8s %-26s %-38s %s\n' "$s" "$v" "$st" "$c" "$tm"
done
if [ $failed = 1 ]; then
	echo "make test-versions: FAILED"
	exit 1
fi
echo "make test-versions: all available versions passed"
