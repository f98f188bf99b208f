#!/bin/bash
# SPDX-License-Identifier: ISC
# Build the binary RPMs from packaging/rpm/uffd-broker.spec.
#
# usage: mk/build-rpm.sh [OUTDIR] [RPMBUILD-ARGS...]
#   OUTDIR          where the .rpm files go (default: build/rpm in the
#                   tree; a relative OUTDIR is from the current directory);
#                   the uffd-broker-*.rpm already there are removed first
#   RPMBUILD-ARGS   passed on to rpmbuild, e.g. --without check
#
# The source tarball is the tree git would commit: HEAD, or, when tracked
# files are changed, the commit `git stash create` makes of them (it is a
# commit object only: the working tree, the index and the stash list stay
# as they are). It is git archive's output either way, so what is built is
# what git holds: no build products, nothing ignored, and no untracked
# file, which is named on stderr rather than silently left out. Add one
# with `git add` to have it built.
#
# rpmbuild runs with --nodeps (the build dependencies are the distribution's
# packages, which an rpm database on a Debian machine does not know) in a
# temporary topdir, removed at the end. The script then checks that there
# are exactly the three packages the spec makes and that each holds its key
# files, and exits non-zero if anything fails.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/build/rpm
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
	out=$1
	shift
	case $out in /*) ;; *) out=$PWD/$out ;; esac
fi
cd "$top"

die() { echo "build-rpm: $*" >&2; exit 1; }
command -v rpmbuild >/dev/null || die "rpmbuild not found (apt-get install rpm)"
git rev-parse --git-dir >/dev/null 2>&1 || die "$top is not a git checkout"

name=uffd-broker
version=$(cat VERSION)
spec=packaging/rpm/$name.spec
specver=$(sed -n 's/^Version:[[:space:]]*//p' "$spec")
[ "$specver" = "$version" ] || die "$spec is at $specver, VERSION $version"

# The tree to build.
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
	ident=()
	git var GIT_COMMITTER_IDENT >/dev/null 2>&1 ||
		ident=(-c user.name=build-rpm -c user.email=build-rpm@localhost)
	tree=$(git "${ident[@]}" stash create "build-rpm: working tree")
	echo "build-rpm: building the working tree's tracked files (uncommitted changes)"
else
	tree=HEAD
	echo "build-rpm: building HEAD ($(git rev-parse --short HEAD))"
fi
untracked=$(git ls-files --others --exclude-standard)
if [ -n "$untracked" ]; then
	echo "build-rpm: untracked, not built:" $untracked >&2
fi

tmp=$(mktemp -d /tmp/uffd-broker-rpm.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/SOURCES" "$tmp/SPECS"
git archive --format=tar.gz --prefix="$name-$version/" \
	-o "$tmp/SOURCES/$name-$version.tar.gz" "$tree"
# The spec and Source1 from the same tree as the tarball.
git show "$tree:$spec" > "$tmp/SPECS/$name.spec"
git show "$tree:packaging/$name.sysusers" > "$tmp/SOURCES/$name.sysusers"
# The manual pages that tree has, to check that they are packaged.
mapfile -t pages < <(git ls-tree --name-only "$tree" docs/man/ |
	sed -n 's|^docs/man/\(.*\)\.scd$|\1|p')

start=$(date +%s)
rpmbuild -bb --nodeps --define "_topdir $tmp" "$@" "$tmp/SPECS/$name.spec" ||
	die "rpmbuild failed"
echo "build-rpm: rpmbuild took $(( $(date +%s) - start ))s"

# The packages: debuginfo and debugsource, where the distribution makes
# them, are not the spec's and are copied but not counted.
mapfile -t rpms < <(find "$tmp/RPMS" -name '*.rpm' | sort)
mkdir -p "$out"
rm -f "$out/$name"-*.rpm
main= libs= devel= others=()
for r in "${rpms[@]}"; do
	cp "$r" "$out/"
	n=$(rpm -qp --qf '%{NAME}' "$r" 2>/dev/null)
	case $n in
	$name) main=$r ;;
	$name-libs) libs=$r ;;
	$name-devel) devel=$r ;;
	*-debuginfo|*-debugsource) ;;
	*) others+=("$n") ;;
	esac
done
echo "build-rpm: in $out:"
for r in "${rpms[@]}"; do
	printf '  %-52s %8s bytes\n' "$(basename "$r")" "$(stat -c %s "$r")"
done

fail=0
bad() { echo "build-rpm: $*" >&2; fail=1; }
[ ${#others[@]} = 0 ] || bad "packages the spec should not make: ${others[*]}"
[ -n "$main" ] || bad "no package $name"
[ -n "$libs" ] || bad "no package $name-libs"
[ -n "$devel" ] || bad "no package $name-devel"
[ $fail = 0 ] || exit 1
count=$(( ${#rpms[@]} ))
for r in "${rpms[@]}"; do
	case $r in *-debuginfo-*|*-debugsource-*) count=$((count - 1)) ;; esac
done
[ $count = 3 ] || bad "$count binary packages, not 3"

# Key files, where the spec puts them.
sbindir=$(rpm --eval '%{_sbindir}')
libdir=$(rpm --eval '%{_libdir}')
incdir=$(rpm --eval '%{_includedir}')
mandir=$(rpm --eval '%{_mandir}')
has() { # PACKAGE-FILE PATH-REGEX...
	local r=$1 list; shift
	list=$(rpm -qp --list "$r")
	for f; do
		grep -Eqx "$f" <<<"$list" || bad "$(basename "$r") lacks $f"
	done
}
lacks() { # PACKAGE-FILE PATH-REGEX...
	local r=$1 list; shift
	list=$(rpm -qp --list "$r")
	for f; do
		! grep -Eqx "$f" <<<"$list" || bad "$(basename "$r") holds $f"
	done
}
has "$main" "$sbindir/uffd-brokerd" "$sbindir/uffd-brokerctl" \
	'.*/systemd/system/uffd-brokerd\.(service|socket)' \
	'.*/sysusers\.d/uffd-broker\.conf' '.*/tmpfiles\.d/uffd-broker\.conf' \
	'/etc/uffd-broker/policy\.conf' '.*/libexec/uffd-broker/uffd-vmm-swap' \
	'.*/share/uffd-broker/uffd-client\.seccomp' \
	'.*/licenses/uffd-broker(-[0-9.]+)?/LICENSE'
lacks "$main" '.*/libuffd-client.*' '.*/uffd-client\.(h|pc)'
has "$libs" "$libdir/libuffd-client\.so\.1" "$libdir/libuffd-client\.so\.1\.0\.0"
lacks "$libs" "$libdir/libuffd-client\.(so|a)"
has "$devel" "$incdir/uffd-client\.h" "$libdir/pkgconfig/uffd-client\.pc" \
	"$libdir/libuffd-client\.so" "$libdir/libuffd-client\.a"
lacks "$devel" "$libdir/libuffd-client\.so\.1.*"
rpm -qp --configfiles "$main" | grep -qx /etc/uffd-broker/policy.conf ||
	bad "policy.conf is not a config file"
for p in "${pages[@]}"; do
	sec=${p##*.}
	if [ "$sec" = 3 ]; then r=$devel; else r=$main; fi
	has "$r" "$mandir/man$sec/${p//./\\.}(\.gz|\.bz2|\.xz|\.zst)?"
done
if [ ${#pages[@]} = 0 ]; then
	echo "build-rpm: the tree has no docs/man/*.scd: no manual pages packaged"
fi

if [ $fail = 0 ]; then
	echo "build-rpm: $count packages, key files in place"
	for r in "$main" "$libs" "$devel"; do
		echo "== $(basename "$r")"
		rpm -qp --list "$r" | sed 's/^/  /'
	done
fi
exit $fail
