# SPDX-License-Identifier: ISC
# mutate.awk - replace the one occurrence of a text in a file, for
# mk/mutants.sh. Exact text, no patterns: byte for byte (LC_ALL=C).
#   awk -v orig=FILE -v repl=FILE -f mk/mutate.awk SOURCE > MUTATED
# orig and repl hold the text and its replacement (lines joined by
# newlines, no final one). Fails (exit 2) unless the text occurs exactly
# once in SOURCE: the table then needs updating after a change of the code.
function slurp(path,	s, line, n) {
	s = ""
	n = 0
	while ((getline line < path) > 0)
		s = s (n++ ? "\n" : "") line
	close(path)
	return s
}
BEGIN {
	o = slurp(orig)
	r = slurp(repl)
	text = ""
}
{ text = text $0 "\n" }
END {
	if (o == "") {
		print "mutate: no original text" > "/dev/stderr"
		exit 2
	}
	count = 0
	rest = text
	base = 0
	while ((i = index(rest, o)) > 0) {
		if (++count == 1)
			at = base + i
		base += i
		rest = substr(rest, i + 1)
	}
	if (count != 1) {
		printf "mutate: %s: the original text occurs %d times, not once\n",
		    FILENAME, count > "/dev/stderr"
		exit 2
	}
	printf "%s%s%s", substr(text, 1, at - 1), r,
	    substr(text, at + length(o))
}
