#!/usr/bin/env bash
# `make test`: every test, after `make build` (which ran deps). Prints what it ran.
set -uo pipefail
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$top"
failed=()
step() {
	local name=$1
	shift
	echo "==> $name: $*"
	local t0=$SECONDS
	if "$@"; then
		echo "==> $name: PASS ($((SECONDS - t0))s)"
	else
		echo "==> $name: FAIL ($((SECONDS - t0))s)"
		failed+=("$name")
	fi
}

step format cargo fmt --all -- --check
step clippy-core cargo clippy --all-targets -- -D warnings
step clippy-module cargo clippy --release --features kamailio -- -D warnings
step unit-and-property cargo test --release
# the Kamailio `make build` built for (KAMAILIO_PREFIX, KAMAILIO_BIN...; default Debian's package)
eval "$(python3 scripts/kamailio_target.py env)" || exit 1
echo "==> target: $KAM_FULL_VERSION ($KAM_BIN, modules $KAM_MODDIR)"
step load-check ./scripts/check-load.sh build/imconf.so
step integration python3 tests/integration/run.py --module build/imconf.so \
	--kamailio "$KAM_BIN" --kamcmd "$KAM_KAMCMD" --mpath "$KAM_MODDIR"
step bench-smoke ./bench/smoke.sh

echo
if [ ${#failed[@]} -gt 0 ]; then
	echo "make test: FAILED: ${failed[*]}"
	exit 1
fi
echo "make test: all passed"
