#!/bin/sh
# SPDX-License-Identifier: ISC
# Run a demo: a broker on a private socket, and the demo client as the
# unprivileged user nobody, jailed by libuffd-client.
#   restore   lazy restore of a memory image (options: --image FILE)
#   vmm-swap  the multi-process VMM swap pattern (options: --devices N, --mem-mib M)
# usage: run-demo.sh BUILD_DIR restore|vmm-swap [demo options]
set -u
usage="usage: run-demo.sh BUILD_DIR restore|vmm-swap [demo options]"
build=${1:?$usage}
which=${2:?$usage}
shift 2
case $which in
restore) prog="$build/uffd-restore-demo" ;;
vmm-swap) prog="$build/uffd-vmm-swap" ;;
*) echo "$usage" >&2; exit 2 ;;
esac
dir=$(mktemp -d /tmp/uffd-demo.XXXXXX)
chmod 0755 "$dir"
mkdir "$dir/work"
chown 65534:65534 "$dir/work"
# nobody runs the demo from here: the checkout may be where it cannot go
# (a root user's clone in /root, 0700), and the library is found beside it.
cp "$prog" "$build/libuffd-client.so.1" "$dir/"
prog="$dir/${prog##*/}"
broker=
cleanup() {
	[ -n "$broker" ] && kill "$broker" 2>/dev/null && wait "$broker"
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The least each demo needs, as a policy file would grant it: the restore
# demo handles its own accesses' faults (user mode), on private or shmem
# memory (minor faults); the VMM's devices need kernel faults, as crosvm's
# do, and fork their sessions. Each by its executable, one uffd per address
# space.
cat > "$dir/policy.conf" <<EOF
[rule restore-demo]
uid = nobody
exe = $dir/uffd-restore-demo
mode = user
features = MINOR_SHMEM
max_uffds = 1

[rule vmm-swap-demo]
uid = nobody
exe = $dir/uffd-vmm-swap
mode = kernel
features = MISSING_SHMEM EVENT_REMOVE
max_uffds = 1
forked_sessions = yes
EOF
"$build/uffd-brokerd" --socket "$dir/broker.sock" --policy "$dir/policy.conf" \
	2>"$dir/broker.log" &
broker=$!
i=0
until grep -q 'event=ready' "$dir/broker.log" 2>/dev/null; do
	if [ $i -ge 50 ] || ! kill -0 "$broker" 2>/dev/null; then
		echo "run-demo: the broker did not start:" >&2
		cat "$dir/broker.log" >&2
		exit 1
	fi
	sleep 0.1
	i=$((i + 1))
done
echo "broker pid $broker on $dir/broker.sock, its policy:"
sed 's/^/    /' "$dir/policy.conf"
echo "running $which as nobody"
if [ "$which" = restore ]; then
	set -- --workdir "$dir/work" "$@"
fi
setpriv --reuid=65534 --regid=65534 --clear-groups \
	"$prog" --socket "$dir/broker.sock" "$@"
rc=$?
echo "--- broker log ---"
cat "$dir/broker.log"
case $which in
restore) what="lazy restore of a memory image by nobody, jailed, through the broker" ;;
vmm-swap) what="the VMM swap pattern: devices' uffds served by one monitor" ;;
esac
if [ $rc -eq 0 ]; then
	echo "run-demo: $which PASSED: $what"
else
	echo "run-demo: $which FAILED (exit $rc): $what"
fi
exit $rc
