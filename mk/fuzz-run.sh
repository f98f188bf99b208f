#!/bin/sh
# SPDX-License-Identifier: ISC
# fuzz-run.sh - make fuzz: for each fuzzer, replay its regressions
# (tests/fuzz/regressions/NAME/), then run it for SECONDS on a copy of its
# corpus (tests/fuzz/corpus/NAME/) in a temporary directory, so that the
# tree's corpus is never written. A crash, a leak or a timeout fails the
# run; the inputs that caused them are kept in FUZZ_DIR/artifacts/.
#
#   fuzz-run.sh FUZZ_DIR SECONDS FUZZER...
#   FUZZ_MAXLEN_<fuzzer>=N   its -max_len (set by mk/fuzz.mk)
#   FUZZ_ARGS="..."          more libFuzzer options, for every fuzzer
set -u
dir=${1:?usage: fuzz-run.sh FUZZ_DIR SECONDS FUZZER...}
seconds=${2:?usage: fuzz-run.sh FUZZ_DIR SECONDS FUZZER...}
shift 2
art=$dir/artifacts
mkdir -p "$art"
work=$(mktemp -d /tmp/uffd-fuzz.XXXXXX) || exit 1
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
fail=0
say() { printf 'fuzz: %s\n' "$*"; }

for name in "$@"; do
	bin=$dir/$name
	eval "maxlen=\${FUZZ_MAXLEN_$name:-4096}"
	log=$dir/$name.log
	# Inputs a fuzzer crashes on now are kept under their own prefix.
	prefix=$art/$name-
	regs=tests/fuzz/regressions/$name
	if [ -d "$regs" ] && [ -n "$(ls -A "$regs")" ]; then
		say "$name: replaying $(ls "$regs" | wc -l) regressions"
		if ! "$bin" -artifact_prefix="$prefix" "$regs"/* > "$log" 2>&1; then
			say "$name: a regression fails again (log: $log)"
			grep -E 'ERROR|SUMMARY|property|fuzz_' "$log" | head -5
			fail=1
			continue
		fi
	fi
	mkdir -p "$work/$name"
	cp tests/fuzz/corpus/$name/* "$work/$name/"
	before=$(ls "$art" | grep -c "^$name-" || true)
	say "$name: ${seconds}s on $(ls "$work/$name" | wc -l) seeds (log: $log)"
	# -timeout: a single input that takes this long is a hang.
	"$bin" -max_total_time="$seconds" -max_len="$maxlen" -timeout=30 \
	    -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$prefix" \
	    ${FUZZ_ARGS:-} "$work/$name" > "$log" 2>&1
	rc=$?
	grep -E '^#[0-9]+[[:space:]]+DONE|^stat::number_of_executed_units|^stat::average_exec_per_sec' \
	    "$log" | sed "s/^/fuzz: $name: /"
	if [ $rc -ne 0 ]; then
		say "$name: FAILED (exit $rc); log: $log"
		grep -E '^==[0-9]+==ERROR|^SUMMARY|property failed|fuzz_[a-z]+:|Test unit written' \
		    "$log" | head -10
		fail=1
	fi
	after=$(ls "$art" | grep -c "^$name-" || true)
	if [ "$after" -gt "$before" ]; then
		say "$name: new artifacts:"
		ls -t "$art" | grep "^$name-" | head -n $((after - before)) |
		    sed "s|^|fuzz:   $art/|"
	fi
done
[ $fail = 0 ] && say "all fuzzers ran ${seconds}s clean: $*"
exit $fail
