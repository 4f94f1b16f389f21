#!/usr/bin/env bash
# Installs everything imconf needs on Debian bookworm (as root), idempotently:
# Kamailio and the modules the tests use, SIPp, clang/libclang for bindgen, and
# Kamailio's headers from Debian's source package (cached under .deps/, git-ignored).
set -euo pipefail
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="$top/.deps"
pkgs=(kamailio kamailio-extra-modules kamailio-presence-modules kamailio-sqlite-modules
      kamailio-xml-modules kamailio-lua-modules kamailio-postgres-modules postgresql
      sip-tester clang libclang-dev dpkg-dev python3 curl libxml2-utils)

# (make deb, issue 8: dpkg-deb is in dpkg, dpkg-shlibdeps in dpkg-dev; the examples' xhttp_prom,
# xhttp, jsonrpcs, htable and ipops modules ship in the kamailio package itself)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
need_src=0
[ -f "$cache/kamailio-src/src/core/sr_module.h" ] || need_src=1

if [ ${#missing[@]} -gt 0 ] || [ $need_src = 1 ]; then
	[ "$(id -u)" = 0 ] || { echo "deps: run as root to install: ${missing[*]}" >&2; exit 1; }
	export DEBIAN_FRONTEND=noninteractive
	src_list=/etc/apt/sources.list.d/imconf-deb-src.sources
	if [ ! -f "$src_list" ]; then
		cat >"$src_list" <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	fi
	apt-get update -qq
	# packages must not start system services (Kamailio, PostgreSQL): tests start their own,
	# bounded and on loopback; policy-rc.d 101 forbids starts during the install
	policy=/usr/sbin/policy-rc.d
	had_policy=0
	[ -e "$policy" ] && had_policy=1
	[ $had_policy = 1 ] || { printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy"; }
	rc=0
	[ ${#missing[@]} -gt 0 ] && { apt-get install -y -qq --no-install-recommends "${missing[@]}" || rc=$?; }
	[ $had_policy = 1 ] || rm -f "$policy"
	[ $rc = 0 ] || exit $rc
	systemctl disable --now kamailio postgresql >/dev/null 2>&1 || true
fi

if [ $need_src = 1 ]; then
	ver=$(dpkg-query -W -f='${Version}' kamailio)
	rm -rf "$cache/src-dl" && mkdir -p "$cache/src-dl"
	( cd "$cache/src-dl" && apt-get source -qq --download-only "kamailio=$ver" \
	  && dpkg-source -x --no-check ./*.dsc unpacked >/dev/null )
	rm -rf "$cache/kamailio-src"
	mv "$cache/src-dl/unpacked" "$cache/kamailio-src"
	rm -rf "$cache/src-dl"
fi

# rustfmt and clippy are part of the test run
if command -v rustup >/dev/null; then
	rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
fi
echo "deps: ok (kamailio $(dpkg-query -W -f='${Version}' kamailio), headers in $cache/kamailio-src)"
