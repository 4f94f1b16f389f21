#!/usr/bin/env bash
#   scripts/check-load.sh [imconf.so]
# The module's compile flags must match the target Kamailio: `kamailio -c` loads it and
# refuses on any mismatch ("module compile flags mismatch"). Also checks that a bad
# parameter makes the load fail with a line naming it.
set -euo pipefail
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
so=$(realpath "${1:-$top/build/imconf.so}")
# the Kamailio the module was built for (the same environment as `make build`)
eval "$(python3 "$top/scripts/kamailio_target.py" env)"
kamailio() { "$KAM_BIN" -L "$KAM_MODDIR" "$@"; }
echo "check-load: $so into $KAM_FULL_VERSION ($KAM_BIN, modules $KAM_MODDIR)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=$(kamailio -c -f "$top/kamailio-cfg/imconf.cfg" -l udp:127.0.0.1:5059 \
	-A "IMCONF_SO=\"$so\"" -A "CTL_SOCK=\"unix:$tmp/ctl.sock\"" 2>&1) || {
	echo "$out" | tail -20
	echo "kamailio -c failed with the module"
	exit 1
}
echo "$out" | grep -q "config file ok" || { echo "$out" | tail; exit 1; }
if echo "$out" | grep -q "compile flags mismatch"; then echo "$out"; exit 1; fi
echo "kamailio -c: config ok with $so"

# the KEMI example: app_lua (kamailio-lua-modules) and the module load together, mod_register
# (KSR.imconf) included; `-c` does not run kamailio-cfg/imconf.lua itself (the kemi_* integration
# tests do, with tests/kamailio/imconf-test.lua)
out=$(kamailio -c -f "$top/kamailio-cfg/imconf-kemi.cfg" -l udp:127.0.0.1:5059 \
	-A "IMCONF_SO=\"$so\"" -A "IMCONF_LUA=\"$top/kamailio-cfg/imconf.lua\"" \
	-A "CTL_SOCK=\"unix:$tmp/ctl.sock\"" 2>&1) || {
	echo "$out" | tail -20
	echo "kamailio -c failed for kamailio-cfg/imconf-kemi.cfg"
	exit 1
}
echo "$out" | grep -q "config file ok" || { echo "$out" | tail; exit 1; }
echo "kamailio -c: KEMI example config ok (kamailio-cfg/imconf-kemi.cfg, imconf.lua)"

# the complete example behind an IMS core and its KEMI twin (issue 8), as shipped in the package:
# configured only through their defines (the ims_example_scenario_and_metrics test runs them)
for cfg in imconf-ims.cfg imconf-ims-kemi.cfg; do
	out=$(kamailio -c -f "$top/kamailio-cfg/$cfg" -A "IMCONF_SO=\"$so\"" \
		-A "IMCONF_LUA=\"$top/kamailio-cfg/imconf-ims.lua\"" -A "CTL_SOCK=\"unix:$tmp/ctl.sock\"" \
		-A LISTEN_SIP=udp:127.0.0.1:5059 -A LISTEN_HTTP=tcp:127.0.0.1:5059 2>&1) || {
		echo "$out" | tail -20
		echo "kamailio -c failed for kamailio-cfg/$cfg"
		exit 1
	}
	echo "$out" | grep -q "config file ok" || { echo "$out" | tail; exit 1; }
	echo "kamailio -c: kamailio-cfg/$cfg ok"
done

# a bad value must stop the start-up, naming the parameter (docs/interface.md)
sed 's/modparam("imconf", "min_expires", 60)/modparam("imconf", "min_expires", -5)/' \
	"$top/kamailio-cfg/imconf.cfg" >"$tmp/bad.cfg"
if out=$(timeout 20 "$KAM_BIN" -L "$KAM_MODDIR" -f "$tmp/bad.cfg" -DD -E -l udp:127.0.0.1:5059 -w "$tmp" -Y "$tmp" \
	-P "$tmp/k.pid" -A "IMCONF_SO=\"$so\"" -A "CTL_SOCK=\"unix:$tmp/ctl.sock\"" 2>&1); then
	echo "kamailio started with min_expires=-5"
	exit 1
fi
echo "$out" | grep -q 'modparam "min_expires"' || { echo "$out" | tail; echo "no log line naming min_expires"; exit 1; }
echo "bad parameter: start-up refused, log names it"
