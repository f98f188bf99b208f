#!/bin/bash
# SPDX-License-Identifier: ISC
# mutants.sh - the mutation check (make mutants): each security check listed
# in tests/mutants.txt is disabled in turn, in a copy of the tree, and the
# test suites named for it must then fail. A mutant that survives (its
# suites pass) is a check no test defends; one whose text is not found
# exactly once means the table needs updating after a change of the code.
# Either fails the run.
#
# Needs bash, awk, tar, make and the compiler: no python.
#
#   MUTANTS_JOBS=N       mutants built and tested at once (default 2)
#   MUTANTS_ONLY="A B"   only these ids
#   MUTANTS_TABLE=FILE   another table (default tests/mutants.txt)
#   MUTANTS_KEEP=1       keep the work directory (its logs) at the end
set -uo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C
unset UFFD_BROKERD CK_RUN_SUITE CK_RUN_CASE

table=${MUTANTS_TABLE:-tests/mutants.txt}
jobs=${MUTANTS_JOBS:-2}
only=${MUTANTS_ONLY:-}
testbin=build/check-uffd-broker
targets="$testbin build/uffd-brokerd build/uffd-brokerctl build/uffd-fdstore build/uffd-brokerd-hooks"
start=$SECONDS

work=$(mktemp -d /tmp/uffd-mutants.XXXXXX) || exit 1
chmod 755 "$work"
cleanup() {
	kill $(jobs -p) 2>/dev/null
	if [ -n "${MUTANTS_KEEP:-}" ]; then
		echo "mutants: logs kept in $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf 'mutants: %s\n' "$*"; }
die() { say "$*" >&2; exit 1; }

# ---- the table: one directory per mutant (id, file, suites, orig, repl) ----
mkdir -p "$work/spec"
awk -v dir="$work/spec" '
function bad(msg) {
	printf "%s:%d: %s\n", FILENAME, FNR, msg > "/dev/stderr"
	failed = 1
	exit 1
}
function finish() {
	if (n == 0)
		return
	if (norig == 0)
		bad("mutant " id ": no original text (\"- \" lines)")
	printf "%s", orig > (d "/orig")
	printf "%s", repl > (d "/repl")
	close(d "/orig")
	close(d "/repl")
}
/^[ \t]*(#|$)/ { next }
/^@/ {
	finish()
	if (NF != 4 || $1 != "@")
		bad("expected: @ ID FILE SUITE[:CASE][,SUITE[:CASE]...]")
	if ($2 !~ /^[a-z0-9][a-z0-9-]*$/)
		bad("bad id " $2)
	if ($2 in seen)
		bad("id " $2 " used twice")
	seen[$2] = 1
	id = $2
	d = sprintf("%s/%03d-%s", dir, ++n, id)
	if (system("mkdir \"" d "\"") != 0)
		bad("cannot make " d)
	print id > (d "/id")
	print $3 > (d "/file")
	print $4 > (d "/suites")
	close(d "/id"); close(d "/file"); close(d "/suites")
	orig = repl = ""
	norig = nrepl = 0
	next
}
/^- / || /^-$/ || /^\+ / || /^\+$/ {
	if (n == 0)
		bad("text before the first @ line")
	text = substr($0, 3)
	if (substr($0, 1, 1) == "-") {
		if (nrepl > 0)
			bad("\"- \" after \"+ \" lines")
		orig = orig (norig++ ? "\n" : "") text
	} else
		repl = repl (nrepl++ ? "\n" : "") text
	next
}
{ bad("expected \"@ \", \"- \", \"+ \", a comment or a blank line") }
END {
	if (!failed)
		finish()
}' "$table" || die "$table: not read"

specs=()
for d in "$work"/spec/*/; do
	d=${d%/}
	id=$(cat "$d/id")
	if [ -n "$only" ] && [[ " $only " != *" $id "* ]]; then
		continue
	fi
	specs+=("$d")
done
[ ${#specs[@]} -gt 0 ] || die "no mutant in $table${only:+ among: $only}"

# ---- the unmutated tree, built once ----
base="$work/base"
mkdir -p "$base"
tar -cf - --exclude=./build --exclude=./.git . | tar -C "$base" -xf - ||
	die "copying the tree failed"

# Every mutant must apply to the code as it is now.
unapplied=0
for d in "${specs[@]}"; do
	file=$(cat "$d/file")
	if [ ! -f "$base/$file" ] || ! (cd "$base" && awk -v orig="$d/orig" \
	    -v repl="$d/repl" -f mk/mutate.awk "$file") > /dev/null \
	    2> "$d/apply.err"; then
		[ -f "$base/$file" ] || echo "no file $file" > "$d/apply.err"
		printf '%-28s NOT APPLIED  %s\n' "$(cat "$d/id")" \
		    "$(head -1 "$d/apply.err")"
		unapplied=$((unapplied + 1))
		touch "$d/unapplied"
	fi
done

say "building the unmutated tree"
if ! make -C "$base" --no-print-directory -j"$jobs" $targets \
    > "$work/base-build.log" 2>&1; then
	tail -20 "$work/base-build.log"
	die "the unmutated tree does not build"
fi

# run_suites DIR LOG SPEC: run each SUITE[:CASE] of SPEC in DIR, stopping at
# the first that fails. Status 0 if all pass.
run_suites() {
	local dir=$1 log=$2 spec suite sel
	for spec in ${3//,/ }; do
		suite=${spec%%:*}
		sel=(CK_RUN_SUITE="$suite")
		[ "$suite" != "$spec" ] && sel+=(CK_RUN_CASE="${spec#*:}")
		echo "== $spec" >> "$log"
		if ! (cd "$dir" && env "${sel[@]}" timeout 600 ./$testbin) \
		    >> "$log" 2>&1; then
			return 1
		fi
	done
	return 0
}

# The failing tests named in a libcheck log (FILE:LINE:F|E:SUITE:TEST:N: ...).
failed_tests() {
	awk -F: '($3 == "F" || $3 == "E") && NF >= 6 { if (!($5 in s)) {
	    s[$5] = 1; printf "%s%s", n++ ? "," : "", $5 } }' "$1"
}

# ---- the control: the suites pass on the unmutated tree ----
say "control: the named suites on the unmutated tree"
all_suites=$(for d in "${specs[@]}"; do tr ',' '\n' < "$d/suites"; done |
	sort -u | tr '\n' ' ')
control_failed=0
for spec in $all_suites; do
	log="$work/control-${spec//:/-}.log"
	run_suites "$base" "$log" "$spec" && continue
	# Timing tests can fail on a loaded machine: one more try.
	say "control: $spec failed unmutated ($(failed_tests "$log")): again"
	: > "$log"
	run_suites "$base" "$log" "$spec" && continue
	say "control: $spec FAILS unmutated: $(failed_tests "$log")"
	tail -5 "$log" | sed 's/^/    /'
	control_failed=1
done
[ $control_failed -eq 0 ] || die "the unmutated tree fails: no mutant can be judged"

# ---- the mutants ----
# run_one DIR: build and test one mutant; its verdict goes to DIR/result.
run_one() {
	local d=$1 id file suites m t0 tests verdict
	id=$(cat "$d/id")
	file=$(cat "$d/file")
	suites=$(cat "$d/suites")
	m="$work/m-$id"
	t0=$SECONDS
	cp -a "$base" "$m"
	(cd "$base" && awk -v orig="$d/orig" -v repl="$d/repl" \
	    -f mk/mutate.awk "$file") > "$m/$file"
	if ! make -C "$m" --no-print-directory $targets > "$d/build.log" 2>&1; then
		verdict="KILLED       by the build: $(grep -m1 'error:' \
		    "$d/build.log" | cut -c1-60)"
		echo build > "$d/kind"
	elif run_suites "$m" "$d/test.log" "$suites"; then
		verdict="SURVIVED     ($suites passed)"
		echo survived > "$d/kind"
	else
		tests=$(failed_tests "$d/test.log")
		verdict="KILLED       by ${tests:-a failing exit status} ($suites)"
		echo killed > "$d/kind"
	fi
	rm -rf "$m"
	printf '%-28s %s [%ds]\n' "$id" "$verdict" $((SECONDS - t0)) |
	    tee "$d/result"
}

say "${#specs[@]} mutants, $jobs at a time"
for d in "${specs[@]}"; do
	[ -e "$d/unapplied" ] && continue
	while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
		wait -n
	done
	run_one "$d" &
done
wait

killed=0 survived=0 build=0 lost=0
for d in "${specs[@]}"; do
	[ -e "$d/unapplied" ] && continue
	case $(cat "$d/kind" 2>/dev/null) in
	killed) killed=$((killed + 1)) ;;
	build) killed=$((killed + 1)); build=$((build + 1)) ;;
	survived) survived=$((survived + 1)) ;;
	*) lost=$((lost + 1)); say "$(cat "$d/id"): no verdict" ;;
	esac
done
say "$((SECONDS - start)) s in all"
[ $unapplied -eq 0 ] || say "$unapplied not applied: update $table"
[ $build -eq 0 ] || say "$build of the killed did not build: make them compile"
echo "$killed killed, $survived survived"
[ $survived -eq 0 ] && [ $unapplied -eq 0 ] && [ $lost -eq 0 ]
