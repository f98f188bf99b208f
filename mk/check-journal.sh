#!/bin/bash
# SPDX-License-Identifier: ISC
# check-journal.sh - the suites once more (make check-journal), every broker
# the test build with the fd store on and its audit
# (UFFD_BROKER_TEST_AUDIT_STORE, broker/store.c): after each loop turn the
# broker reads back what a restarted broker would (its whole state and the
# journal over it) and stops if that is not its state. A change to a record
# that no one told the registry (broker/registry.h) fails the test whose
# broker it stops, whatever the test was about.
#
# The store is on by $FDSTORE and the harness's $NOTIFY_SOCKET; the fds it
# would send to a service manager are refused once the harness stops
# listening, which the broker says once and serves on. Not run here: the
# daemon suite (it reads that socket itself), the upgrade suite (its own
# stand-in and audit), and the audit suite's flood case (it counts
# attempts per second, which the audit's reading slows).
set -uo pipefail
cd "$(dirname "$0")/.."
B=${B:-build}
suites="config grant jail handshake liveness protocol family example parity
	policy ctl hostile integrity verifier survival"
audit_cases="quote ratelimit forgery"
failed=""

run() {
	FDSTORE=1 UFFD_BROKER_TEST_AUDIT_STORE=1 \
	    UFFD_BROKERD="$PWD/$B/uffd-brokerd-hooks" UFFD_BUILD=$B \
	    "$B/check-uffd-broker" || failed="$failed $*"
}

for s in $suites; do
	CK_RUN_SUITE=$s run "$s"
done
for c in $audit_cases; do
	CK_RUN_SUITE=audit CK_RUN_CASE=$c run "audit:$c"
done
if [ -n "$failed" ]; then
	echo "check-journal: failed:$failed (a broker's log with \"store audit\" names the record)"
	exit 1
fi
echo "check-journal: ok"
