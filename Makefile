# imconf: `make run` and `make test` do all the set-up on a fresh Debian bookworm (as root).
SHELL := /bin/bash
CARGO ?= cargo
PORT ?= 5060
MODULE := build/imconf.so
# The Kamailio to build, test, package and install for (docs/packaging.md): by default the one
# `make deps` installs (Debian's package, headers from its source package in .deps/). Another one:
# KAMAILIO_PREFIX=<its install prefix> (sbin/kamailio, sbin/kamcmd, src/ = its source tree), or
# KAMAILIO_BIN=<kamailio binary> KAMAILIO_SRC=<its source tree> [KAMCMD=...] [KAMAILIO_MODULES=<dir>].
# scripts/kamailio_target.py derives everything else from the binary.
export KAMAILIO_PREFIX KAMAILIO_BIN KAMAILIO_SRC KAMCMD KAMAILIO_MODULES

.PHONY: all deps build run test test-versions shim-check test-unit lint bench bench-smoke bench-mac bench-profiles bench-replicas fuzz soak clean

all: build

deps:
	./scripts/deps.sh

# the module is the cdylib built with feature `kamailio`
build: deps
	@# the target first, alone: a mismatch is one clear line, not a panic inside cargo's output
	@python3 scripts/kamailio_target.py build >/dev/null
	$(CARGO) build --release --features kamailio
	mkdir -p build
	# atomic replace: a running Kamailio keeps its mapping of the old file
	cp target/release/libimconf.so $(MODULE).tmp && mv -f $(MODULE).tmp $(MODULE)

run: build
	./scripts/run.sh $(PORT)

test: build
	./scripts/test.sh

# the integration suite on the other Kamailio versions Debian serves the source of (6.0 from
# trixie, 6.1 from sid when it can be downloaded), each built into /var/cache/imconf-kamailio
# (IMCONF_KAM_CACHE), reused by the next run; SUITES="trixie" picks (scripts/test-versions.sh)
test-versions: build
	./scripts/test-versions.sh

# the C shim against the headers of Kamailio source trees there is no binary of (6.1, master):
# make shim-check TREES="/path/to/kamailio-6.1 /path/to/kamailio-master"
shim-check:
	python3 scripts/shim_compile_check.py $(TREES)

test-unit:
	$(CARGO) test

# the benchmark: imconf vs presence_conference vs the ceiling (bench/README.md); QUICK=1 for < 5 min.
# bench/setup.sh: the plot's matplotlib venv (.deps/bench-venv) and perf/valgrind for profiling
bench: build
	./bench/setup.sh
	QUICK=$(QUICK) IMCONF_SO=$${IMCONF_SO:-$(abspath $(MODULE))} ./bench/run.sh

bench-smoke: build
	IMCONF_SO=$${IMCONF_SO:-$(abspath $(MODULE))} ./bench/smoke.sh

# what output profiles cost a fan-out (R94, docs/performance.md): core only, 1000 subscribers
bench-profiles:
	$(CARGO) run --release --example profile_fanout_cost

# what the cluster's MAC costs (R96, docs/performance.md): per message in the core, then end to end
# against the last build without it (BASE, a git worktree in /tmp) on one node; N and REPS scale it
# what dmq_replicas saves (issue 17, docs/cluster.md): 5 nodes, N subscriptions, 0 vs 2
bench-replicas: build
	python3 bench/cluster_replicas.py --n $${N:-10000} --reps $${REPS:-2}

bench-mac: build
	$(CARGO) run --release --example cluster_mac_cost
	python3 bench/cluster_mac_ab.py --base $${BASE:-b990f6c} --n $${N:-20000} --reps $${REPS:-3}

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

# the module as <module dir of the target Kamailio>/imconf.so (0644), for a Kamailio built from
# source or from kamailio.org's repository (docs/packaging.md); DESTDIR=<dir> stages it.
# `make -o build install MODULE=<file>` installs a module built already, without building.
.PHONY: install
install: build
	@set -e; t=$$(python3 scripts/kamailio_target.py env); eval "$$t"; \
	python3 scripts/kamailio_target.py check-module "$(MODULE)"; \
	dest="$(DESTDIR)$$KAM_MODDIR/imconf.so"; \
	install -D -m 0644 "$(MODULE)" "$$dest"; \
	echo "installed $(MODULE) as $$dest (for $$KAM_BIN, $$KAM_FULL_VERSION): loadmodule \"imconf.so\""

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --release --features kamailio -- -D warnings

clean:
	$(CARGO) clean
	rm -rf build tests/run
