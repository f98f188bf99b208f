#!/bin/sh
# SPDX-License-Identifier: ISC
# The installed packages, run as systemd would run them: the broker started
# from the installed socket unit's ListenSequentialPacket= socket by
# systemd-socket-activate (socket activation without systemd as PID 1),
# with the installed service unit's ExecStart= line, jailing itself as the
# service user; the installed demo client, as nobody in the group
# uffd-clients, restores a memory image through it. Everything it makes
# is removed at exit.
#
# usage: smoke-test.sh        (as root, after installing the packages)
set -eu
say() { echo "smoke-test: $*"; }
die() { echo "smoke-test: FAIL: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root"
unitdir=
for d in /lib/systemd/system /usr/lib/systemd/system; do
	[ -e "$d/uffd-brokerd.socket" ] && unitdir=$d && break
done
[ -n "$unitdir" ] || die "no installed uffd-brokerd.socket"
sock=$(sed -n 's/^ListenSequentialPacket=//p' "$unitdir/uffd-brokerd.socket")
group=$(sed -n 's/^SocketGroup=//p' "$unitdir/uffd-brokerd.socket")
mode=$(sed -n 's/^SocketMode=//p' "$unitdir/uffd-brokerd.socket")
start=$(sed -n 's/^ExecStart=//p' "$unitdir/uffd-brokerd.service")
user=$(echo "$start" | sed -n 's/.*--user \([^ ]*\).*/\1/p')
demo=$(ls /usr/libexec/uffd-broker/uffd-restore-demo 2>/dev/null) ||
	die "no installed demo client"
getent passwd "$user" >/dev/null || die "no service user $user (sysusers)"
gid=$(getent group "$group" | cut -d: -f3)
[ -n "$gid" ] || die "no group $group (sysusers)"
uid=$(id -u "$user")
[ "$uid" != 0 ] && [ "$uid" != 65534 ] || die "service user $user is uid $uid"
uffd-brokerctl policy check /etc/uffd-broker/policy.conf >/dev/null ||
	die "the installed policy does not load"

tmp=$(mktemp -d /tmp/uffd-smoke.XXXXXX)
chmod 0755 "$tmp"
mkdir "$tmp/work"
chown 65534:65534 "$tmp/work"
broker=
cleanup() {
	[ -n "$broker" ] && kill "$broker" 2>/dev/null && wait "$broker" || true
	rm -f "$sock"
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The installed tmpfiles entry makes the socket's directory.
systemd-tmpfiles --create /usr/lib/tmpfiles.d/uffd-broker.conf
[ -d "$(dirname "$sock")" ] || die "tmpfiles did not create $(dirname "$sock")"
[ ! -e "$sock" ] || die "$sock exists: is a broker running?"

# A policy for this test: nobody, kernel faults, as the demo needs.
cat > "$tmp/policy.conf" <<POLICY
[rule smoke]
uid = nobody
mode = kernel
features = MISSING_SHMEM EVENT_REMOVE
max_uffds = 4
POLICY
chmod 0644 "$tmp/policy.conf"

# What of the unit's sandbox can be applied without systemd: its capability
# bounding set, no-new-privs and fd limit (setpriv, ulimit).
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$unitdir/uffd-brokerd.service" |
	tr 'A-Z' 'a-z' | sed 's/cap_/+/g; s/ /,/g')
nofile=$(sed -n 's/^LimitNOFILE=//p' "$unitdir/uffd-brokerd.service")
nnp=
grep -q '^NoNewPrivileges=yes' "$unitdir/uffd-brokerd.service" && nnp=--no-new-privs
[ -n "$caps" ] && [ -n "$nofile" ] || die "the unit names no bounding set or fd limit"
# shellcheck disable=SC2086
(ulimit -n "$nofile" && exec setpriv --bounding-set=-all,$caps $nnp \
	systemd-socket-activate --seqpacket -l "$sock" \
	$start --policy "$tmp/policy.conf") 2>"$tmp/broker.log" &
broker=$!
i=0
while [ ! -S "$sock" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
[ -S "$sock" ] || die "no socket at $sock"
chgrp "$group" "$sock"
chmod "$mode" "$sock"

say "demo as nobody (group $group) against $sock"
setpriv --reuid=65534 --regid=65534 --groups="$gid" \
	"$demo" --socket "$sock" --workdir "$tmp/work" --size-mib 32 ||
	{ cat "$tmp/broker.log" >&2; die "the demo failed"; }
grep -q "event=start .*activated=yes" "$tmp/broker.log" ||
	die "the broker was not socket-activated"
grep -q "event=jailed uid=$uid " "$tmp/broker.log" ||
	die "the broker did not drop to $user ($uid)"
grep -q "event=uffd_granted" "$tmp/broker.log" || die "no grant logged"
grep -q "event=filter_proven" "$tmp/broker.log" ||
	die "the verifier did not prove the client under the unit's bounding set"
# Not in the group: the socket's mode refuses before the broker is asked.
if setpriv --reuid=65534 --regid=65534 --clear-groups \
	"$demo" --socket "$sock" --workdir "$tmp/work" --size-mib 1 \
	>/dev/null 2>&1; then
	die "a client outside $group was served"
fi
kill "$broker"
wait "$broker" || die "the broker did not stop cleanly"
broker=
grep -q "event=stop" "$tmp/broker.log" || die "no stop line"
say "ok: socket-activated broker as $user served the installed demo"
