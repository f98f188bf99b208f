# SPDX-License-Identifier: ISC
# gen-jail.awk - turn policy/uffd-client.seccomp into a C table for
# client/jail.c. Any line it does not understand stops the build.
#   awk -f mk/gen-jail.awk policy/uffd-client.seccomp > jail-rules.h
function fail(msg) {
	printf "%s:%d: %s\n", FILENAME, FNR, msg > "/dev/stderr"
	failed = 1
	exit 1
}
BEGIN {
	print "/* Generated from policy/uffd-client.seccomp by mk/gen-jail.awk: do not edit. */"
	print "static const struct jail_rule jail_rules[] = {"
}
/^[ \t]*(#|$)/ { next }
{
	if ($1 == "notify")
		act = "JAIL_NOTIFY, 0"
	else if ($1 ~ /^errno:[A-Z0-9]+$/)
		act = "JAIL_ERRNO, " substr($1, 7)
	else
		fail("unknown action '" $1 "'")
	if ($2 !~ /^[a-z_0-9]+$/)
		fail("bad system call name '" $2 "'")
	if (NF == 2) {
		printf "\t{ %s, \"%s\", false, 0, 0, 0, %d },\n", act, $2, FNR
		next
	}
	if (NF != 7 || $3 !~ /^arg[0-5]$/ || $4 != "&" || $6 != "==")
		fail("expected: ACTION SYSCALL [argN & MASK == VALUE]")
	printf "\t{ %s, \"%s\", true, %s, (%s), (%s), %d },\n", act, $2,
	    substr($3, 4), $5, $7, FNR
}
END {
	if (!failed)
		print "};"
}
