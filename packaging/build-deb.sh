#!/usr/bin/env bash
# Builds the Debian package of imconf with dpkg-deb alone (docs/packaging.md says why):
#   packaging/build-deb.sh [--module build/imconf.so] [--out build]
# prints the path of build/kamailio-imconf-modules_<version>_<arch>.deb. It is for the Kamailio
# that `make build` targets (scripts/kamailio_target.py: KAMAILIO_PREFIX, KAMAILIO_BIN, ...), which
# must belong to a Debian package `kamailio` (Debian's or kamailio.org's); a Kamailio built from
# source gets the module with `make install` instead. The package installs the module into that
# Kamailio's module directory, the operator docs, example configs and SIPp scenarios under
# /usr/share/doc/kamailio-imconf-modules/, and depends on exactly the version of the `kamailio`
# package the target binary belongs to, since Kamailio refuses a module built for another version
# or with other compile flags.
set -euo pipefail
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
module="$top/build/imconf.so"
out="$top/build"
while [ $# -gt 0 ]; do
	case "$1" in
	--module) module=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	*) echo "usage: $0 [--module imconf.so] [--out dir]" >&2; exit 2 ;;
	esac
done

# the target: KAM_BIN, KAM_MODDIR (its module dir, Debian: /usr/lib/<multiarch>/kamailio/modules),
# KAM_FULL_VERSION, KAM_SRDB1_DIR, KAM_DEB_VERSION (of the package owning KAM_BIN, empty if none)
tenv=$(python3 "$top/scripts/kamailio_target.py" env) || exit 1
eval "$tenv"
if [ -z "$KAM_DEB_VERSION" ]; then
	echo "build-deb: $KAM_BIN (Kamailio $KAM_VERSION) is not from the Debian package kamailio, so no package can depend on it: install the module with \`make install\` instead (docs/packaging.md)" >&2
	exit 1
fi
# the module must carry the target's version string (Kamailio refuses it at load otherwise)
python3 "$top/scripts/kamailio_target.py" check-module "$module" || exit 1
pkg=kamailio-imconf-modules
kver=$KAM_DEB_VERSION
moddir=$KAM_MODDIR
arch=$(dpkg --print-architecture)
upstream=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$top/Cargo.toml" | head -1)
# <imconf version>-1+kam<kamailio version>: the Debian revision names the Kamailio build it is for
kv=${kver//-/.}
version="${upstream}-1+kam${kv//:/.}"
doc=/usr/share/doc/$pkg

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/root"
install -d "$root/DEBIAN" "$root$moddir" "$root$doc/examples/groups" "$root$doc/examples/sql" \
	"$root$doc/sipp" "$root/usr/share/doc/kamailio/modules"
install -m 0644 "$module" "$root$moddir/imconf.so"
strip --strip-unneeded "$root$moddir/imconf.so" 2>/dev/null || true

# the operator's reference, as markdown and as Kamailio-style plain text (README.imconf beside
# the other modules' READMEs, like Debian's kamailio packages ship them)
install -m 0644 "$top/docs/imconf.md" "$root$doc/imconf.md"
for f in operator-testing.md packaging.md interface.md groups.md persistence.md; do
	install -m 0644 "$top/docs/$f" "$root$doc/$f"
done
python3 "$top/packaging/md2txt.py" "$top/docs/imconf.md" >"$root$doc/README"
gzip -9n -c "$root$doc/README" >"$root/usr/share/doc/kamailio/modules/README.imconf.gz"
chmod 0644 "$root$doc/README" "$root/usr/share/doc/kamailio/modules/README.imconf.gz"

for f in imconf.cfg imconf-kemi.cfg imconf.lua imconf-ims.cfg imconf-ims-kemi.cfg imconf-ims.lua; do
	install -m 0644 "$top/kamailio-cfg/$f" "$root$doc/examples/$f"
done
install -m 0644 "$top"/kamailio-cfg/groups/*.xml "$root$doc/examples/groups/"
install -m 0644 "$top"/sql/*.sql "$root$doc/examples/sql/"
# the SIPp scenarios an operator runs against a deployment (docs/operator-testing.md)
for f in ims_participant.xml ims_watch.xml reject_403.xml reject_404.xml; do
	install -m 0644 "$top/tests/sipp/$f" "$root$doc/sipp/$f"
done

cat >"$root$doc/copyright" <<COPY
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: imconf

Files: *
License: GPL-2.0-or-later
 On Debian systems, the full text of the GNU General Public License version 2
 can be found in /usr/share/common-licenses/GPL-2.
COPY
chmod 0644 "$root$doc/copyright"
printf '%s (%s) unstable; urgency=medium\n\n  * Built from the imconf tree against kamailio %s.\n\n -- imconf builder <root@localhost>  %s\n' \
	"$pkg" "$version" "$kver" "$(date -R)" | gzip -9n >"$root$doc/changelog.Debian.gz"
chmod 0644 "$root$doc/changelog.Debian.gz"

# shared-library dependencies of the module (libc6, libgcc-s1; libsrdb1 up to Kamailio 5.8) as
# Debian computes them. libsrdb1 (Kamailio's DB API, for db_url) is a library beside the modules up
# to 5.8 (KAM_SRDB1_DIR, passed with -l) and inside the kamailio binary from 6.0, where the module
# does not link it (its symbols resolve against the binary): nothing for dpkg-shlibdeps to find.
shlibs=""
if command -v dpkg-shlibdeps >/dev/null; then
	mkdir -p "$stage/src/debian"
	printf 'Source: imconf\n\nPackage: %s\nArchitecture: any\n' "$pkg" >"$stage/src/debian/control"
	if sd=$(cd "$stage/src" && dpkg-shlibdeps ${KAM_SRDB1_DIR:+"-l$KAM_SRDB1_DIR"} -O "$root$moddir/imconf.so" 2>"$stage/shlibdeps.err"); then
		shlibs=$(printf '%s\n' "$sd" | sed -n 's/^shlibs:Depends=//p')
	else
		echo "build-deb: warning: dpkg-shlibdeps failed, Depends lists kamailio only: $(tail -1 "$stage/shlibdeps.err")" >&2
	fi
fi
# libsrdb1 comes from the kamailio package itself: its kamailio (>= ...) gives way to the pin below
shlibs=$(printf '%s' "$shlibs" | tr ',' '\n' | sed 's/^ *//' | { grep -v '^kamailio\b' || true; } | paste -sd, - | sed 's/,/, /g')
depends="kamailio (= $kver)${shlibs:+, $shlibs}"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CTRL
Package: $pkg
Version: $version
Architecture: $arch
Maintainer: imconf builder <root@localhost>
Installed-Size: $size
Depends: $depends
Suggests: kamailio-sqlite-modules (= $kver), kamailio-postgres-modules (= $kver), kamailio-lua-modules (= $kver), sip-tester
Section: net
Priority: optional
Description: conference event package (RFC 4575) notifier module for Kamailio
 imconf turns Kamailio into the notifier half of an OMA SIMPLE IM Controlling
 IM Function (OMA IM, RCS group chat): SUBSCRIBEs to the conference event
 package are authorized and answered, and NOTIFYs with conference-info
 documents follow the session state fed by the routing script or over RPC.
 .
 Built for kamailio $kver. The examples need kamailio-sqlite-modules
 (persistence in imconf.cfg) and kamailio-lua-modules (the KEMI examples).
CTRL
(cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"

mkdir -p "$out"
deb="$out/${pkg}_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
