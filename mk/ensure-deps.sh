#!/bin/sh
# SPDX-License-Identifier: ISC
# Make sure the build dependencies are present. As root on Debian, install
# what is missing with apt-get; otherwise name it and fail.
set -u
missing=""
need() {	# need PACKAGE TEST...
	pkg=$1; shift
	"$@" >/dev/null 2>&1 || missing="$missing $pkg"
}
hdr() { printf '#include <%s>\n' "$1" | ${CC:-cc} -E -x c - ; }

need pkg-config		command -v pkg-config
need protobuf-c-compiler	command -v protoc-c
need libprotobuf-c-dev	hdr protobuf-c/protobuf-c.h
need libseccomp-dev	hdr seccomp.h
need libcap-ng-dev	hdr cap-ng.h
need check		hdr check.h
need libinih-dev	hdr ini.h
need util-linux		command -v setpriv
need clang		command -v clang
need scdoc		command -v scdoc
need valgrind		command -v valgrind

[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "ensure-deps: installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing \
		>/dev/null || { echo "ensure-deps: apt-get failed for:$missing" >&2; exit 1; }
	exit 0
fi
echo "ensure-deps: missing build dependencies (Debian package names):$missing" >&2
echo "ensure-deps: install them, e.g. 'apt-get install$missing', or run as root" >&2
exit 1
