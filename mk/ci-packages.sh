#!/bin/bash
# SPDX-License-Identifier: ISC
# CI, the packages: build the Debian packages from a clean copy of the
# tree (their build runs the tests), lint them, run their autopkgtest here
# (it installs them and runs the installed broker from its installed units:
# packaging/smoke-test.sh), build against the -dev package, purge them and
# check nothing is left; then build the RPMs (mk/build-rpm.sh).
# As root on Debian; installs the tools it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
log() { echo "ci-packages: $*"; }

export DEBIAN_FRONTEND=noninteractive
need=""
for p in dpkg-dev debhelper lintian rpm scdoc systemd autopkgtest; do
	dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
done
if [ -n "$need" ]; then
	log "installing:$need"
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends $need >/dev/null
fi
# The build dependencies, as debian/control names them.
sh mk/ensure-deps.sh

work=$(mktemp -d /tmp/uffd-ci-packages.XXXXXX)
trap 'rm -rf "$work"' EXIT
# A clean tree: what git tracks, with the working tree's content.
mkdir "$work/uffd-broker"
git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$work/uffd-broker"

log "dpkg-buildpackage"
(cd "$work/uffd-broker" && dpkg-buildpackage -us -uc -b) >"$work/deb.log" 2>&1 ||
	{ tail -50 "$work/deb.log"; exit 1; }
grep -E "^(100%|[0-9]+%): Checks" "$work/deb.log" || log "(no tests at build time)"
debs=$(ls "$work"/*.deb)
[ "$(echo "$debs" | wc -l)" = 3 ] || { log "expected three debs: $debs"; exit 1; }
for d in $debs; do dpkg-deb -I "$d" | sed -n 's/^ Package: /  package: /p'; done

log "lintian"
lintian --fail-on error --info "$work"/*.changes | tee "$work/lintian.log"

# The autopkgtest (debian/tests) on this machine: it installs the three
# packages and runs packaging/smoke-test.sh against them.
log "autopkgtest"
autopkgtest --output-dir "$work/autopkgtest" "$work/uffd-broker" \
	"$work"/*.deb -- null >"$work/autopkgtest.log" 2>&1 ||
	{ tail -40 "$work/autopkgtest.log"; exit 1; }
grep -E "^smoke +PASS" "$work/autopkgtest.log"
# (autopkgtest removes what it installed.)
log "install"
apt-get install -y -qq "$work"/*.deb >/dev/null
# The -dev package: a program builds against the installed library alone.
printf '#include <uffd-client.h>\nint main(void){return uffdc_strerror(0)==0;}\n' \
	> "$work/dev.c"
cc -o "$work/dev" "$work/dev.c" $(pkg-config --cflags --libs uffd-client)
"$work/dev"
libdir=$(pkg-config --variable=libdir uffd-client)
cc -o "$work/dev-static" "$work/dev.c" $(pkg-config --cflags uffd-client) \
	"$libdir/libuffd-client.a" $(pkg-config --static --libs uffd-client |
	sed 's/-luffd-client//')
"$work/dev-static"

log "purge"
apt-get purge -y -qq uffd-broker libuffd-client1 libuffd-client-dev >/dev/null
left=$(ls -d /etc/uffd-broker /usr/libexec/uffd-broker /usr/share/uffd-broker \
	/usr/sbin/uffd-brokerd /lib/systemd/system/uffd-brokerd.* \
	/usr/lib/*/libuffd-client* /usr/include/uffd-client.h /run/uffd-broker/socket \
	2>/dev/null || true)
[ -z "$left" ] || { log "left behind after purge: $left"; exit 1; }
# The packages keep their system user and group after a purge, as Debian
# does; this machine is CI's, so remove them.
userdel uffd-broker 2>/dev/null || true
groupdel uffd-clients 2>/dev/null || true
groupdel uffd-broker 2>/dev/null || true

log "rpm"
bash mk/build-rpm.sh "$work/rpm" --without check
log "ok"
