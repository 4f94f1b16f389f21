#!/usr/bin/env bash
# Builds one Kamailio from Debian's source package into a cache outside the checkout, for
# `make test-versions` (and `make bench KAMAILIO_PREFIX=...`):
#   scripts/kamailio-build.sh SUITE      # SUITE: a Debian suite whose Sources list kamailio (trixie, sid)
# On success prints one line, `prefix=<dir>`: <dir>/sbin/kamailio, <dir>/sbin/kamcmd,
# <dir>/lib/kamailio/modules/*.so and <dir>/src (the unpacked source tree: the headers imconf's shim
# is compiled against). Exit 3 (and one line saying why) when Debian does not serve the source
# today (sid's files sometimes answer 404): the caller reports that version as unavailable.
# Only the core, kamcmd and the modules the tests and the bench load are built (MODULES below).
# A finished build is reused: the cache key is the Debian version (<cache>/<version>/.done).
set -euo pipefail
suite=${1:?usage: $0 SUITE}
cache=${IMCONF_KAM_CACHE:-/var/cache/imconf-kamailio}
MODULES="tm tmx sl pv xlog textops maxfwd ctl kex rr siputils htable ipops dmq db_sqlite db_postgres"
MODULES+=" app_lua jsonrpcs xhttp xhttp_prom presence presence_conference"
# what compiling them needs (Debian bookworm package names)
BUILD_DEPS=(bison flex make gcc pkg-config libsqlite3-dev libpq-dev liblua5.1-0-dev libxml2-dev
	libssl-dev dpkg-dev)

log() { echo "kamailio-build[$suite]: $*" >&2; }
mkdir -p "$cache/apt/lists/partial" "$cache/apt/cache/archives/partial"

# throwaway apt state: a deb-src line for the suite, lists in the cache (the system's apt
# configuration is not touched)
list="$cache/apt/$suite.list"
key=/usr/share/keyrings/debian-archive-keyring.gpg
printf 'deb-src [signed-by=%s] http://deb.debian.org/debian %s main\n' "$key" "$suite" >"$list"
# a stable suite's security updates are what its users run (trixie: 6.0.1-1+deb13u2): the newest
# version either list has is built
case $suite in
sid | unstable | experimental) ;;
*) printf 'deb-src [signed-by=%s] http://deb.debian.org/debian-security %s-security main\n' "$key" "$suite" >>"$list" ;;
esac
apto=(-o "Dir::Etc::SourceList=$list" -o Dir::Etc::SourceParts=/nonexistent
	-o "Dir::State::Lists=$cache/apt/lists" -o "Dir::Cache=$cache/apt/cache"
	-o APT::Sandbox::User=root)
if ! apt-get "${apto[@]}" update -qq >/dev/null 2>"$cache/apt/$suite.update.err"; then
	log "apt-get update for $suite failed: $(tail -1 "$cache/apt/$suite.update.err")"
	exit 3
fi
ver=$(apt-cache "${apto[@]}" showsrc kamailio 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -1)
[ -n "$ver" ] || { log "$suite lists no kamailio source package"; exit 3; }
prefix="$cache/$ver"
if [ -f "$prefix/.done" ]; then
	log "cached: kamailio $ver in $prefix"
	echo "prefix=$prefix"
	exit 0
fi

missing=()
for p in "${BUILD_DEPS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	log "installing build dependencies: ${missing[*]}"
	inst() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
	# the system's package lists may be older than the mirror (or absent): refresh once on failure
	inst || { apt-get update -qq && inst; }
fi

dl="$cache/dl/$ver"
rm -rf "$dl" "$prefix" && mkdir -p "$dl"
log "downloading the source of kamailio $ver ($suite)"
# apt fails on the upstream tarball's detached .asc, which Debian's mirrors no longer serve; the
# files that matter are checked by apt against the suite's signed Sources index all the same,
# so the download is judged by what arrived, not by apt's exit status
(cd "$dl" && apt-get "${apto[@]}" source --download-only "kamailio=$ver" >"$dl/apt.log" 2>&1) || true
dsc=$(ls "$dl"/*.dsc 2>/dev/null | head -1 || true)
if [ -z "$dsc" ] || ! ls "$dl"/kamailio_*.orig.tar.* 2>/dev/null | grep -qv '\.asc$'; then
	log "Debian does not serve kamailio $ver's source today: $(grep -m1 -E '^E:' "$dl/apt.log" || echo 'no files')"
	rm -rf "$dl"
	exit 3
fi
dpkg-source -x --no-check "$dsc" "$dl/tree" >/dev/null
mkdir -p "$prefix"
mv "$dl/tree" "$prefix/src"
rm -rf "$dl"

src="$prefix/src"
all_mods=$(cd "$src/src/modules" && ls -d */ | tr -d /)
exclude=$(comm -23 <(printf '%s\n' $all_mods | sort) <(printf '%s\n' $MODULES | sort) | tr '\n' ' ')
log "building kamailio $ver core, kamcmd and $(echo $MODULES | wc -w) modules (log: $prefix/build.log)"
t0=$SECONDS
# Kamailio's own make system, as Debian's rules drive it (Makefile build in 5.x and 6.x); the
# install goes under $prefix, the modules into $prefix/lib/kamailio/modules
# (one && chain: `set -e` does not apply inside a subshell that is the left side of ||)
(
	cd "$src" &&
	make cfg PREFIX="$prefix" LIBDIR=lib exclude_modules="$exclude" include_modules="$MODULES" \
		CC_EXTRA_OPTS="-O2 -g" quiet=verbose &&
	make -j"$(nproc)" all &&
	make -j"$(nproc)" utils &&
	make install
) >"$prefix/build.log" 2>&1 || {
	tail -30 "$prefix/build.log" >&2
	log "build of kamailio $ver failed (full log: $prefix/build.log)"
	exit 1
}
for m in $MODULES; do
	[ -f "$prefix/lib/kamailio/modules/$m.so" ] || { log "module $m.so was not built"; exit 1; }
done
[ -x "$prefix/sbin/kamailio" ] && [ -x "$prefix/sbin/kamcmd" ] || { log "kamailio or kamcmd not installed"; exit 1; }
echo "$ver built in $((SECONDS - t0)) s" >"$prefix/.done"
log "kamailio $ver built in $((SECONDS - t0)) s"
echo "prefix=$prefix"
