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
step load-check ./scripts/check-load.sh
step integration python3 tests/integration/run.py --module build/imconf.so
step bench-smoke ./bench/smoke.sh

echo
if [ ${#failed[@]} -gt 0 ]; then
	echo "make test: FAILED: ${failed[*]}"
	exit 1
fi
echo "make test: all passed"
