#!/bin/sh
# SPDX-License-Identifier: ISC
# Checks of the build and the tree that the C suite cannot make:
#  - the libraries export the API (uffdc_*) and nothing else, so a program
#    may define its own client_connect or wire_send and link either one;
#  - VERSION is the version every binary reports and both packages carry;
#  - every source file carries its SPDX licence line;
#  - the broker's jail allows none of the system calls a sanitizer's
#    runtime or valgrind's core needs (their builds' lists, broker/jail.c).
# usage: check-tree.sh BUILD_DIR
set -u
b=${1:?usage: check-tree.sh BUILD_DIR}
fail=0
bad() { echo "check-tree: $*" >&2; fail=1; }

# Exports.
for lib in "$b/libuffd-client.a" "$b/libuffd-client.so"; do
	extra=$(nm -g --defined-only "$lib" | awk 'NF == 3 && $3 !~ /^uffdc_/ && $3 != "UFFDC_1" { print $3 }')
	[ -z "$extra" ] || bad "$lib exports more than the API:" $extra
	nm -g --defined-only "$lib" | grep -q ' T uffdc_session_open$' ||
		bad "$lib does not export uffdc_session_open"
done
tmp=$(mktemp -d /tmp/uffd-check-tree.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/own.c" <<'PROG'
#include <stddef.h>
#include "uffd-client.h"
/* Names the library uses inside: a program may have its own. */
int client_connect(void) { return 1; }
int wire_send(void) { return 2; }
int uffd_broker__v1__request__descriptor;
int main(void) {
	struct uffdc_session *s = NULL;
	return client_connect() + wire_send() - 3 +
	    (uffdc_session_open("/nonexistent", &s) < 0 ? 0 : 1);
}
PROG
for kind in static shared; do
	if [ $kind = static ]; then
		libs="$b/libuffd-client.a -lprotobuf-c -lpthread"
	else
		libs="-L$b -luffd-client -Wl,-rpath,$b"
	fi
	if ! ${CC:-cc} -Iclient -o "$tmp/own-$kind" "$tmp/own.c" $libs \
	    2>"$tmp/err"; then
		bad "a program with its own client_connect does not link" \
		    "against the $kind library: $(cat "$tmp/err")"
	elif ! "$tmp/own-$kind"; then
		bad "the program linked against the $kind library fails"
	fi
done

# One version.
v=$(cat VERSION)
for prog in uffd-brokerd uffd-brokerctl; do
	got=$("$b/$prog" --version)
	[ "$got" = "$prog $v" ] || bad "$prog --version says '$got', VERSION $v"
done
deb=$(sed -n '1s/^uffd-broker (\([^)]*\)).*/\1/p' debian/changelog)
[ "$deb" = "$v" ] || bad "debian/changelog is at $deb, VERSION $v"
rpm=$(sed -n 's/^Version:[[:space:]]*//p' packaging/rpm/uffd-broker.spec)
[ "$rpm" = "$v" ] || bad "packaging/rpm/uffd-broker.spec is at $rpm, VERSION $v"
grep -q "^## $v" NEWS.md || bad "NEWS.md has no entry for $v"

# The service unit: no directive systemd implements with a seccomp filter.
# The verifier, forked from the broker, must run under none (the kernel
# reads a client's filters only for such a tracer).
seccomp_directives='SystemCallFilter|SystemCallArchitectures|SystemCallLog|SystemCallErrorNumber|RestrictAddressFamilies|RestrictNamespaces|LockPersonality|MemoryDenyWriteExecute|RestrictRealtime|RestrictSUIDSGID|PrivateDevices|ProtectClock|ProtectHostname|ProtectKernelModules|ProtectKernelLogs|ProtectKernelTunables|SuppressSync'
if grep -En "^[[:space:]]*($seccomp_directives)=" packaging/uffd-brokerd.service.in; then
	bad "packaging/uffd-brokerd.service.in: a seccomp-based directive (above) would stop the verifier from proving any client"
fi

# The jail of this build: not a sanitizer's (make sanitize) nor valgrind's
# (make valgrind, BROKER_UNDER_VALGRIND). The names are jail.c's lists.
extra=$(awk '/^static const char \*const (sanitizer|valgrind)_allowed\[\]/,/^};/' \
    broker/jail.c | grep -o '^	"[a-z0-9_]*"' | tr -d '\t"')
[ -n "$extra" ] || bad "broker/jail.c: no sanitizer or valgrind allow-list found"
dump=$("$b/uffd-brokerctl" policy dump-bpf broker)
for name in $extra; do
	if printf '%s\n' "$dump" | grep -q "syscall \"$name\""; then
		bad "the broker's jail allows $name, which only the sanitizer" \
		    "and valgrind builds may"
	fi
done
if grep -aq -e 'sanitizer-runtime' -e 'valgrind-core' "$b/uffd-brokerd"; then
	bad "$b/uffd-brokerd is a sanitizer's or valgrind's build"
fi

# Licence lines.
for f in $(git ls-files '*.c' '*.h' '*.sh' '*.awk' '*.proto' Makefile \
    'packaging/*' 'mk/*' 2>/dev/null); do
	grep -q 'SPDX-License-Identifier: ISC' "$f" || bad "$f: no SPDX line"
done

[ $fail = 0 ] && echo "check-tree: exports, version $v, jail and licence lines: ok"
exit $fail
