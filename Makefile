# imconf: `make run` and `make test` do all the set-up on a fresh Debian bookworm (as root).
SHELL := /bin/bash
CARGO ?= cargo
PORT ?= 5060
MODULE := build/imconf.so

.PHONY: all deps build run test test-unit lint bench bench-smoke fuzz soak clean

all: build

deps:
	./scripts/deps.sh

# the module is the cdylib built with feature `kamailio`
build: deps
	$(CARGO) build --release --features kamailio
	mkdir -p build
	# atomic replace: a running Kamailio keeps its mapping of the old file
	cp target/release/libimconf.so $(MODULE).tmp && mv -f $(MODULE).tmp $(MODULE)

run: build
	./scripts/run.sh $(PORT)

test: build
	./scripts/test.sh

test-unit:
	$(CARGO) test

# the benchmark: imconf vs presence_conference vs the ceiling (bench/README.md); QUICK=1 for < 5 min.
# bench/setup.sh: the plot's matplotlib venv (.deps/bench-venv) and perf/valgrind for profiling
bench: build
	./bench/setup.sh
	QUICK=$(QUICK) ./bench/run.sh

bench-smoke: build
	./bench/smoke.sh

# the long robustness corpus: FUZZ_N (10^5) malformed SUBSCRIBEs, bad RPC calls, parser proptests
# (docs/robustness.md); `make test` runs 10^3
fuzz: build
	./scripts/fuzz.sh

# SOAK_MIN minutes (10) at 70% of the measured max rate with fan-out changes; prints the memory slopes
# (Kamailio with -x tlsf; SOAK_KAM_ARGS="" for its default q_malloc, docs/robustness.md)
soak: build
	./scripts/soak.sh

# the Debian package build/kamailio-imconf-modules_<version>_<arch>.deb (dpkg-deb; docs/packaging.md)
.PHONY: deb
deb: build
	./packaging/build-deb.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --release --features kamailio -- -D warnings

clean:
	$(CARGO) clean
	rm -rf build tests/run
