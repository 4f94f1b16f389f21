#!/usr/bin/env bash
# `make fuzz`: the long robustness corpus (docs/robustness.md): FUZZ_N generated malformed
# SUBSCRIBEs (default 100000), FUZZ_RPC_N bad RPC calls (default 3000) and FUZZ_CLUSTER_N hostile
# cluster messages (default 10000: robustness_corpus_cluster, unauthenticated, stale, replayed,
# malformed and hostile KDMQ bodies to a two-node cluster) from seed FUZZ_SEED (default: the time,
# printed so that a failure can be replayed), then the proptest parsers with PROPTEST_CASES
# (default 20000) cases. `make test` runs the short version (1000 requests, 150 calls, 500
# cluster messages).
set -euo pipefail
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$top"
seed="${FUZZ_SEED:-$(date +%s)}"
echo "==> fuzz: seed $seed (replay: FUZZ_SEED=$seed make fuzz)"
IMCONF_CORPUS_N="${FUZZ_N:-100000}" IMCONF_RPC_N="${FUZZ_RPC_N:-3000}" IMCONF_CLUSTER_N="${FUZZ_CLUSTER_N:-10000}" \
	IMCONF_CORPUS_SEED="$seed" \
	python3 tests/integration/run.py --module build/imconf.so -v -k robustness_corpus_sip -k robustness_corpus_rpc \
	-k robustness_corpus_cluster
PROPTEST_CASES="${PROPTEST_CASES:-20000}" cargo test --release --test core -- fuzz_parsers:: cluster_auth::
