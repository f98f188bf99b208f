/* SPDX-License-Identifier: ISC */
/*
 * check_policy.c - the access policy: the parser's errors (each kind, with
 * FILE:LINE), the canonical print (golden file), rule matching, and the
 * policy at work in a running broker: every kind of refusal, reload on
 * SIGHUP with a bad file and a good one, and the audit lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "harness.h"
#include "invariant.h"
#include "policy.h"

#define MIN(a, b)	((a) < (b) ? (a) : (b))

#define VIEW_STATUS	UFFD_BROKER__V1__ADMIN_STATUS__VIEW__STATUS
#define VIEW_POLICY	UFFD_BROKER__V1__ADMIN_STATUS__VIEW__POLICY

#define GOLDEN		"tests/golden/policy.conf.printed"
#define EXAMPLE		"policy/policy.conf"

/* The endings of messages about continuation lines and control characters. */
#define CONT	" (an indented line continues the value above)"
#define CNTRL	": only spaces and tabs are allowed"

static const struct {
	const char *text;
	const char *err;	/* after "FILE:"; NULL: loads */
} parse_cases[] = {
	{ "", NULL },
	{ "# only a comment\n\n; another\n", NULL },
	{ "[broker]\nadmin_group = 0\n\n[rule a]\nuid = 0, 65534 nobody\n"
	    "mode = kernel\nfeatures = MISSING_SHMEM UFFD_FEATURE_EVENT_REMOVE\n",
	    NULL },
	/*
	 * Whitespace. inih skips every isspace() character before a line's
	 * text, and reads an indented line after a key as more of its value:
	 * a section header seen by one reader and not the other would merge
	 * two rules. \v, \f and \r (and other control characters) are refused
	 * wherever they are; spaces and tabs mean what they mean to inih
	 * (load_cases below).
	 */
	{ "[rule a]\n\v[rule x]\nuid = 5\n", "2: control character 0x0b" CNTRL },
	{ "[rule a]\n\f[rule x]\nuid = 5\n", "2: control character 0x0c" CNTRL },
	{ "[rule a]\n\r[rule x]\nuid = 5\n", "2: control character 0x0d" CNTRL },
	{ "\v[rule a]\n", "1: control character 0x0b" CNTRL },
	{ "[rule a]\nuid = 0\n\f[rule x]\n", "3: control character 0x0c" CNTRL },
	{ "[rule a]\n\vuid = 0\n", "2: control character 0x0b" CNTRL },
	{ "[rule a]\n\fuid = 0\n", "2: control character 0x0c" CNTRL },
	{ "[rule a]\n\ruid = 0\n", "2: control character 0x0d" CNTRL },
	{ "[rule a]\nuid = 0\v65534\n", "2: control character 0x0b" CNTRL },
	{ "[rule a]\nexe = /usr/bin/a\fb\n", "2: control character 0x0c" CNTRL },
	{ "[rule a]\ncgroup = /a\r/b\n", "2: control character 0x0d" CNTRL },
	{ "[rule a]\nuid = 0 \x1b[2J\n", "2: control character 0x1b" CNTRL },
	{ "[rule a]\nuid = 0\x7f\n", "2: control character 0x7f" CNTRL },
	{ "[rule a]\n# a page\f\n", "2: control character 0x0c" CNTRL },
	{ "[rule a]\nuid = 0\r\r\n", "2: control character 0x0d" CNTRL },
	{ "[rule a]\nuid = 0\n  [rule x]\nuid = 5\n",
	    "3: a section header must start its line" CONT },
	{ "[rule a]\nuid = 0\n\t[rule x]\n",
	    "3: a section header must start its line" CONT },
	{ "[rule a]\n\tuid = 0\n\tmode = kernel\n",
	    "3: uid: no such user 'mode'" CONT },
	{ "[rule a]\nuid = 0\n\tnobodyxyz\n",
	    "3: uid: no such user 'nobodyxyz'" CONT },
	/* Only a ';' after a blank starts a comment, there as on a key line. */
	{ "[rule a]\nuid = 0\n\t65534;x ;y\n",
	    "3: uid: no such user '65534;x'" CONT },
	{ "[rule a]\nmode = kernel\n  user\n",
	    "3: mode: one value only, not a list" CONT },
	{ "[broker]\nadmin_group = 0\n  4\n",
	    "3: admin_group: one value only, not a list" CONT },
	{ "[rule a]\nfeatures = none\n  MISSING_SHMEM\n",
	    "3: features: 'none' stands alone" CONT },
	{ "[rule a]\nexe = /a\n /bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n",
	    "3: exe: a path longer than 189 characters" CONT },
	{ "[rule a]\nfoo = 1\n", "2: unknown key 'foo' in [rule a]" },
	{ "[broker]\nfoo = 1\n", "2: unknown key 'foo' in [broker]" },
	{ "[rule a]\nuid = 0\n\nuid = 1\n",
	    "4: duplicate key 'uid' (first on line 2)" },
	{ "[rule a]\nuid = 0\n[rule a]\nuid = 1\n",
	    "3: duplicate rule name 'a' (first on line 1)" },
	{ "[rule a b]\n", "1: bad rule name 'a b': use up to 63 letters, "
	    "digits, '-', '_' and '.'" },
	{ "[rules]\nuid = 0\n",
	    "1: unknown section [rules]; expected [broker] or [rule NAME]" },
	{ "uid = 0\n", "1: key 'uid' outside a section" },
	{ "[broker]\n[broker]\n", "2: duplicate section [broker] (first on line 1)" },
	{ "[rule a]\nmax_uffds = 0\n",
	    "2: max_uffds: expected a number from 1 to 1000000, got '0'" },
	{ "[rule a]\nmax_sessions_per_uid = 12x\n",
	    "2: max_sessions_per_uid: expected a number from 1 to 1000000, "
	    "got '12x'" },
	{ "[rule a]\nmode = both\n",
	    "2: mode: expected 'kernel' or 'user', got 'both'" },
	{ "[rule a]\naction = permit\n",
	    "2: action: expected 'deny' or 'allow', got 'permit'" },
	{ "[rule a]\nforked_sessions = maybe\n",
	    "2: forked_sessions: expected 'yes' or 'no', got 'maybe'" },
	{ "[rule a]\nfeatures = MISSING_SHMEM BOGUS\n",
	    "2: features: unknown feature 'BOGUS'" },
	{ "[rule a]\nuid = no-such-user-xyz\n",
	    "2: uid: no such user 'no-such-user-xyz'" },
	{ "[rule a]\ngid = no-such-group-xyz\n",
	    "2: gid: no such group 'no-such-group-xyz'" },
	{ "[broker]\nadmin_group = no-such-group-xyz\n",
	    "2: admin_group: no such group 'no-such-group-xyz'" },
	{ "[rule a]\nexe = crosvm\n", "2: exe: 'crosvm' is not an absolute path" },
	{ "[rule a]\ncgroup = system.slice\n",
	    "2: cgroup: 'system.slice' is not an absolute path" },
	{ "[rule a]\nuid = ,\n", "2: uid: empty value" },
	{ "[rule a]\nuid\n", "2: syntax error: expected 'key = value', "
	    "'[section]' or a comment" },
	{ "\n[rule a\n", "2: syntax error: a section header without its ']'" },
	{ "[rule a ;]\n", "1: syntax error: a section header without its ']'" },
	/*
	 * The first error is the one reported, though inih reads on past a
	 * syntax error (fuzz_policy; tests/fuzz/regressions/fuzz_policy/).
	 */
	{ "[rule a]\nuid\nfoo = 1\n", "2: syntax error: expected 'key = value', "
	    "'[section]' or a comment" },
	{ "udmoody\nmode = de\xd1\n", "1: syntax error: expected 'key = value', "
	    "'[section]' or a comment" },
	{ "[rule a\nuid = 0\n", "1: syntax error: a section header without "
	    "its ']'" },
	{ "[rule a]\nexe = /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaa\n", "2: line longer than 198 characters" },
};

/* Files that load, and what they hold: no rule merged into another. */
static const struct {
	const char *text;
	size_t	nrules;
	size_t	nuids;		/* of the last rule */
} load_cases[] = {
	{ "[rule a]\r\nuid = 0 \r\n\r\n[rule b]\r\n", 2, 0 },
	{ "\xef\xbb\xbf[rule a]\nuid = 0\n", 1, 1 },
	{ "[rule a]\n  [rule x]\nuid = 5\n", 2, 1 },
	{ "[rule a]\n\t[rule x]\n \t uid = 5\n", 2, 1 },
	{ "[rule a]\nuid = 0\n  65534\t1, 2\n", 1, 4 },
	{ "[rule a]\nuid = 0\n\n# between\n\t65534\n", 1, 2 },
	{ "[rule a]\nfeatures = MISSING_SHMEM\n  EVENT_REMOVE\n", 1, 0 },
	/* A comment ends a continuation's value too, whatever libinih does. */
	{ "[rule a]\nuid = 0 ; root\n\t65534 1 ; nobody daemon\n", 1, 3 },
};

START_TEST(test_policy_parse_table)
{
	const char *path = test_file("p.conf", parse_cases[_i].text);
	struct policy *p;
	char err[600], want[600];
	int rc;

	rc = policy_load(path, &p, err, sizeof(err));
	if (parse_cases[_i].err == NULL) {
		ck_assert_msg(rc == 0, "case %d: %s", _i, err);
		policy_free(p);
		return;
	}
	ck_assert_msg(rc < 0, "case %d loaded", _i);
	ck_assert_ptr_null(p);
	snprintf(want, sizeof(want), "%s:%s", path, parse_cases[_i].err);
	ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_policy_load_table)
{
	const char *path = test_file("l.conf", load_cases[_i].text);
	struct policy *p;
	char err[600];

	ck_assert_msg(policy_load(path, &p, err, sizeof(err)) == 0, "case %d: %s",
	    _i, err);
	ck_assert_uint_eq(p->nrules, load_cases[_i].nrules);
	ck_assert_uint_eq(p->rules[p->nrules - 1].nuids, load_cases[_i].nuids);
	policy_free(p);
}
END_TEST

/* A NUL byte: inih would ignore the rest of its line, unseen. */
START_TEST(test_policy_nul_byte)
{
	static const char text[] = "[rule a]\nuid = 0\0, 65534\n";
	const char *path = test_file("nul.conf", "");
	struct policy *p;
	char err[600], want[600];
	FILE *f;

	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	ck_assert_uint_eq(fwrite(text, 1, sizeof(text) - 1, f), sizeof(text) - 1);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_lt(policy_load(path, &p, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s:2: control character 0x00" CNTRL, path);
	ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_policy_missing_file)
{
	struct policy *p;
	char err[600];

	ck_assert_int_lt(policy_load("/nonexistent/policy.conf", &p, err,
	    sizeof(err)), 0);
	ck_assert_str_eq(err, "/nonexistent/policy.conf: No such file or directory");
}
END_TEST

/*
 * Every error of a file, in the order of its lines: one wrong line does not
 * hide the next. What follows a wrong line is checked as what it is, and
 * not where that is unknown: the keys of a section whose header is wrong,
 * the indented lines that continue a key that is no key, or a line inih
 * never saw (blank to it).
 */
static const struct {
	const char *text;
	const char *errs;	/* each after "FILE:", one a line */
} all_errors_cases[] = {
	{ "[rule a]\n"					/* 1 */
	  "uid = nosuch-1, 0 nosuch-2\n"		/* 2 */
	  "\tnosuch-3\n"				/* 3 */
	  "mode = sideways\n"				/* 4 */
	  "\tuser\n"					/* 5 */
	  "bogus = 1\n"					/* 6 */
	  "\tmore\n"					/* 7: no key's */
	  "[rule a]\n"					/* 8 */
	  "uid = nosuch-4\n"				/* 9: bad header's */
	  "[rule b\v]\n"				/* 10 */
	  "uid = nosuch-5\n"				/* 11: likewise */
	  "[rule c]\n"					/* 12 */
	  "features = BOGUS\n"				/* 13 */
	  "\tMISSING_SHMEM XX\n"			/* 14 */
	  "uid\n"					/* 15 */
	  "\t0\n"					/* 16: inih: features */
	  "max_uffds = 0\n",				/* 17 */
	  "2: uid: no such user 'nosuch-1'\n"
	  "2: uid: no such user 'nosuch-2'\n"
	  "3: uid: no such user 'nosuch-3'" CONT "\n"
	  "4: mode: expected 'kernel' or 'user', got 'sideways'\n"
	  "5: mode: one value only, not a list" CONT "\n"
	  "6: unknown key 'bogus' in [rule a]\n"
	  "8: duplicate rule name 'a' (first on line 1)\n"
	  "10: control character 0x0b" CNTRL "\n"
	  "13: features: unknown feature 'BOGUS'\n"
	  "14: features: unknown feature 'XX'" CONT "\n"
	  "15: syntax error: expected 'key = value', '[section]' or a comment\n"
	  "17: max_uffds: expected a number from 1 to 1000000, got '0'\n" },
	/* A key line inih never saw: the indented line after it is skipped. */
	{ "[rule a]\nuid = 0\nmode = kernel\fx\n\tuser\nmax_uffds = x\n",
	  "3: control character 0x0c" CNTRL "\n"
	  "5: max_uffds: expected a number from 1 to 1000000, got 'x'\n" },
	{ "uid = x\nmode = y\n\tz\n[rule a]\nuid = nosuch-1\n",
	  "1: key 'uid' outside a section\n"
	  "2: key 'mode' outside a section\n"
	  "5: uid: no such user 'nosuch-1'\n" },
	{ "[rule a]\nfeatures = none\n  MISSING_SHMEM\n  BOGUS\n",
	  "3: features: 'none' stands alone" CONT "\n"
	  "4: features: 'none' stands alone" CONT "\n" },
	{ "[broker]\nadmin_group = nosuch-g\n[rule a]\n  [rule b]\n"
	  "uid = 0\n  [rule c]\n",
	  "2: admin_group: no such group 'nosuch-g'\n"
	  "6: a section header must start its line" CONT "\n" },
};

static void
collect_error(void *arg, const char *msg)
{
	char *buf = arg;
	size_t len = strlen(buf);

	snprintf(buf + len, 8192 - len, "%s\n", msg);
}

START_TEST(test_policy_all_errors)
{
	const char *path = test_file("all.conf", all_errors_cases[_i].text);
	char got[8192] = "", want[8192] = "", *line, *save = NULL, *copy;
	struct policy *p = (struct policy *)1;
	size_t n = 0, len;

	copy = strdup(all_errors_cases[_i].errs);
	for (line = strtok_r(copy, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save), n++) {
		len = strlen(want);
		snprintf(want + len, sizeof(want) - len, "%s:%s\n", path, line);
	}
	free(copy);
	ck_assert_int_eq(policy_load_report(path, &p, collect_error, got), n);
	ck_assert_ptr_null(p);
	ck_assert_str_eq(got, want);
}
END_TEST

/* Errors past POLICY_MAX_ERRORS are counted, not listed. */
START_TEST(test_policy_many_errors)
{
	char *text = NULL, got[8192] = "", want[600], err[600];
	size_t len = 0, i;
	struct policy *p;
	const char *path;
	FILE *f = open_memstream(&text, &len);

	ck_assert_ptr_nonnull(f);
	fprintf(f, "[rule a]\n");
	for (i = 0; i < POLICY_MAX_ERRORS + 10; i++)
		fprintf(f, "bogus%zu = 1\n", i);
	fclose(f);
	path = test_file("many.conf", text);
	free(text);
	ck_assert_int_eq(policy_load_report(path, &p, collect_error, got),
	    POLICY_MAX_ERRORS + 10);
	snprintf(want, sizeof(want), "%s:%d: unknown key 'bogus%d' in "
	    "[rule a]\n", path, POLICY_MAX_ERRORS + 1, POLICY_MAX_ERRORS - 1);
	ck_assert_ptr_nonnull(strstr(got, want));
	snprintf(want, sizeof(want), "\n%s: 10 more errors\n", path);
	ck_assert_ptr_nonnull(strstr(got, want));
	ck_assert_ptr_null(strstr(got, "bogus50 "));
	/* policy_load() says the first. */
	ck_assert_int_eq(policy_load(path, &p, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:2: unknown key 'bogus0' in [rule a]",
	    path);
	ck_assert_str_eq(err, want);
}
END_TEST

/*
 * A policy is a regular file: a directory read as one was no rules (every
 * peer refused, and "ok"), a FIFO would block the broker's loop on open.
 */
START_TEST(test_policy_not_regular)
{
	char dir[256], fifo[256], link[256], err[600], want[700];
	struct policy *p;

	snprintf(dir, sizeof(dir), "%s/policy.d", getenv("UFFD_TEST_DIR"));
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	ck_assert_int_eq(policy_load(dir, &p, err, sizeof(err)), -1);
	ck_assert_ptr_null(p);
	snprintf(want, sizeof(want), "%s: not a regular file (a directory)",
	    dir);
	ck_assert_str_eq(err, want);
	ck_assert_int_eq(rmdir(dir), 0);

	snprintf(fifo, sizeof(fifo), "%s/policy.fifo", getenv("UFFD_TEST_DIR"));
	ck_assert_int_eq(mkfifo(fifo, 0644), 0);
	ck_assert_int_eq(policy_load(fifo, &p, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: not a regular file (a FIFO)", fifo);
	ck_assert_str_eq(err, want);
	ck_assert_int_eq(unlink(fifo), 0);

	ck_assert_int_eq(policy_load("/dev/null", &p, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "/dev/null: not a regular file (a character "
	    "device)");

	/* A link to a regular file is that file. */
	snprintf(link, sizeof(link), "%s/policy.link", getenv("UFFD_TEST_DIR"));
	ck_assert_int_eq(symlink(test_file("target.conf",
	    "[rule a]\nuid = 0\n"), link), 0);
	ck_assert_int_eq(policy_load(link, &p, err, sizeof(err)), 0);
	ck_assert_uint_eq(p->nrules, 1);
	policy_free(p);
	ck_assert_int_eq(unlink(link), 0);
}
END_TEST

static char *
print_to_string(const struct policy *p)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(f);
	policy_print(p, f);
	fclose(f);
	return buf;
}

/* The shipped example loads, prints as the golden file, and reloads to itself. */
START_TEST(test_policy_golden_print)
{
	struct policy *p, *q;
	char err[600], *printed, *golden, *again;

	ck_assert_msg(policy_load(EXAMPLE, &p, err, sizeof(err)) == 0, "%s", err);
	printed = print_to_string(p);
	golden = read_whole(GOLDEN);
	ck_assert_str_eq(printed, golden);
	ck_assert_msg(policy_load(test_file("printed.conf", printed), &q, err,
	    sizeof(err)) == 0, "%s", err);
	again = print_to_string(q);
	ck_assert_str_eq(again, printed);
	free(printed);
	free(golden);
	free(again);
	policy_free(p);
	policy_free(q);
}
END_TEST

/*
 * Users and groups print as numbers, each line of them followed by a comment
 * of their names ("-" for a number without one), and load back so.
 */
START_TEST(test_policy_print_names)
{
	struct policy *p, *q;
	char err[600], *printed, *again;

	ck_assert_msg(policy_load(test_file("names.conf", "[broker]\n"
	    "admin_group = root\n[rule a]\nuid = root nobody 4000000000\n"
	    "gid = 4000000000 0\n[rule b]\nuid = 4000000000\n"), &p, err,
	    sizeof(err)) == 0, "%s", err);
	printed = print_to_string(p);
	ck_assert_ptr_nonnull(strstr(printed, "\nadmin_group = 0 ; root\n"));
	ck_assert_ptr_nonnull(strstr(printed, "\nuid = 0 65534 4000000000 ; "
	    "root nobody -\ngid = 4000000000 0 ; - root\n"));
	/* A line of numbers without names has no comment. */
	ck_assert_ptr_nonnull(strstr(printed, "[rule b]\nuid = 4000000000\n"));
	ck_assert_msg(policy_load(test_file("names-printed.conf", printed), &q,
	    err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(q->rules[0].nuids, 3);
	ck_assert_uint_eq(q->rules[0].ngids, 2);
	again = print_to_string(q);
	ck_assert_str_eq(again, printed);
	free(printed);
	free(again);
	policy_free(p);
	policy_free(q);
}
END_TEST

/*
 * The longest rule the reader takes: every list full, every item as long as
 * it may be, on continuation lines. Its canonical form fits inih's lines,
 * loads back, and prints the same again.
 */
START_TEST(test_policy_print_longest)
{
	char *text = NULL, *printed, *again, *line, *name, *save = NULL;
	char err[600], features[512], item[POLICY_ITEM_MAX + 1];
	struct policy *p, *q;
	size_t len = 0, i, k;
	FILE *f = open_memstream(&text, &len);

	ck_assert_ptr_nonnull(f);
	fprintf(f, "[broker]\nadmin_group = 4294967294\n\n[rule %.*s]\n",
	    POLICY_NAME_MAX - 1, "rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr"
	    "rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr");
	for (k = 0; k < 2; k++)
		for (i = 0; i < POLICY_MAX_ITEMS; i++)
			fprintf(f, "%s%u\n", i > 0 ? "\t" : k == 0 ? "uid = " :
			    "gid = ", (unsigned)(4294967294u - i));
	for (k = 0; k < 2; k++)
		for (i = 0; i < POLICY_MAX_ITEMS; i++) {
			/* "/NN/xxx...", and a subtree glob for cgroups. */
			memset(item, 'x', POLICY_ITEM_MAX);
			item[POLICY_ITEM_MAX] = '\0';
			snprintf(item, 4, "/%02zu", i);
			item[3] = '/';
			if (k == 1)
				memcpy(item + POLICY_ITEM_MAX - 3, "/**", 3);
			fprintf(f, "%s%s\n", i > 0 ? "\t" : k == 0 ? "exe = " :
			    "cgroup = ", item);
		}
	/* Every feature this build knows by name, one a line. */
	policy_feature_names(~0ULL, features, sizeof(features));
	*strstr(features, " 0x") = '\0';
	for (name = strtok_r(features, " ", &save); name != NULL;
	    name = strtok_r(NULL, " ", &save))
		fprintf(f, "%s%s\n", name == features ? "features = " : "\t",
		    name);
	fprintf(f, "mode = kernel\nmax_uffds = 1000000\n"
	    "max_sessions_per_uid = 1000000\nforked_sessions = yes\n");
	fprintf(f, "\n[rule deny-%.*s]\naction = deny\n", POLICY_NAME_MAX - 6,
	    "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd");
	fclose(f);

	ck_assert_msg(policy_load(test_file("longest.conf", text), &p, err,
	    sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(p->nrules, 2);
	ck_assert_uint_eq(p->rules[0].nuids, POLICY_MAX_ITEMS);
	ck_assert_uint_eq(p->rules[0].ngids, POLICY_MAX_ITEMS);
	ck_assert_uint_eq(p->rules[0].nexes, POLICY_MAX_ITEMS);
	ck_assert_uint_eq(p->rules[0].ncgroups, POLICY_MAX_ITEMS);
	ck_assert_uint_eq(strlen(p->rules[0].cgroups[31]), POLICY_ITEM_MAX);
	printed = print_to_string(p);
	ck_assert_msg(policy_load(test_file("printed.conf", printed), &q, err,
	    sizeof(err)) == 0, "%s", err);
	again = print_to_string(q);
	ck_assert_str_eq(again, printed);
	/* No line longer than inih's, whatever the reader's check says. */
	for (line = strtok_r(printed, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save))
		ck_assert_uint_le(strlen(line), 198);
	free(text);
	free(printed);
	free(again);
	policy_free(p);
	policy_free(q);
}
END_TEST

/* SHA-256 against FIPS 180-4's examples, fed in pieces of every size. */
START_TEST(test_policy_sha256)
{
	static const struct {
		const char *in;
		size_t repeat;
		const char *hex;
	} v[] = {
		{ "", 1,
		    "e3b0c44298fc1c149afbf4c8996fb924"
		    "27ae41e4649b934ca495991b7852b855" },
		{ "abc", 1,
		    "ba7816bf8f01cfea414140de5dae2223"
		    "b00361a396177a9cb410ff61f20015ad" },
		{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
		    "248d6a61d20638b8e5c026930c3e6039"
		    "a33ce45964ff2167f6ecedd419db06c1" },
		{ "a", 1000000,
		    "cdc76e5c9914fb9281a1c7e284d73e67"
		    "f1809a48a497200e046d39ccc7112cd0" },
		/* 55, 56 and 64 bytes: the padding's edges (sha256sum's). */
		{ "0123456789012345678901234567890123456789012345678901234", 1,
		    "f34d5a0f80c0cbf84c8c0b90218c2263"
		    "7abd199965249da736a20143c8c9c9d9" },
		{ "01234567890123456789012345678901234567890123456789012345", 1,
		    "83aa034bda83e458a0dc9cbce0d4e354"
		    "716aa0ff770ed37ac0ed2b292052e4af" },
		{ "01234567890123456789012345678901"
		    "23456789012345678901234567890123", 1,
		    "9674d9e078535b7cec43284387a6ee39"
		    "956188e735a85452b0050b55341cda56" },
	};
	uint8_t digest[SHA256_LEN], big[1000];
	char hex[SHA256_HEX_LEN];
	struct sha256 c;
	size_t i, left, n, step;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		sha256_init(&c);
		if (v[i].repeat == 1)
			for (n = 0, step = 1; n < strlen(v[i].in); n += step,
			    step = step % 7 + 1)
				sha256_update(&c, v[i].in + n, MIN(step,
				    strlen(v[i].in) - n));
		else {
			memset(big, v[i].in[0], sizeof(big));
			for (left = v[i].repeat, step = 1; left > 0;
			    left -= n, step = step * 3 % 997 + 1) {
				n = MIN(step, left);
				sha256_update(&c, big, n);
			}
		}
		sha256_final(&c, digest);
		sha256_hex(digest, hex);
		ck_assert_msg(strcmp(hex, v[i].hex) == 0, "vector %zu: %s", i,
		    hex);
	}
}
END_TEST

/*
 * The digest of a policy file is what sha256sum(1) says of it, every byte
 * (comments included); that of the command-line rule is of its content.
 */
START_TEST(test_policy_digest)
{
	const char *argv[] = { "/usr/bin/sha256sum", EXAMPLE, NULL };
	char out[PATH_MAX], hex[SHA256_HEX_LEN], err[600], *sum;
	const uid_t a[] = { 65534 }, b[] = { 65533 };
	struct grant g = { .max_uffds = 4, .max_sessions_per_uid = 1 };
	struct policy *p, *q;

	snprintf(out, sizeof(out), "%s/sha256sum.out", getenv("UFFD_TEST_DIR"));
	ck_assert_int_eq(run_program(out, false, argv), 0);
	sum = read_whole(out);
	ck_assert(policy_load(EXAMPLE, &p, err, sizeof(err)) == 0);
	sha256_hex(p->digest, hex);
	ck_assert_int_eq(strncmp(sum, hex, SHA256_HEX_LEN - 1), 0);
	ck_assert_int_ne(p->loaded.tv_sec, 0);
	policy_free(p);
	free(sum);
	unlink(out);

	p = policy_single("command-line", a, 1, &g);
	q = policy_single("command-line", a, 1, &g);
	ck_assert_mem_eq(p->digest, q->digest, SHA256_LEN);
	policy_free(q);
	q = policy_single("command-line", b, 1, &g);
	ck_assert_mem_ne(p->digest, q->digest, SHA256_LEN);
	policy_free(q);
	g.max_uffds = 5;
	q = policy_single("command-line", a, 1, &g);
	ck_assert_mem_ne(p->digest, q->digest, SHA256_LEN);
	policy_free(q);
	policy_free(p);
}
END_TEST

/*
 * A summary with its indented lines joined to the line above: one line an
 * item (a rule's match keys on one).
 */
static char *
unwrap(char *buf)
{
	char *r, *w;

	for (r = w = buf; *r != '\0'; r++) {
		if (r[0] == '\n' && strncmp(r + 1, "   ", 3) == 0) {
			while (r[1] == ' ')
				r++;
			*w++ = ' ';
			continue;
		}
		*w++ = *r;
	}
	*w = '\0';
	return buf;
}

/* policy_summary(), no line wider than its promise, unwrapped. */
static char *
summary_of(const struct policy *p, const struct policy_origin *o)
{
	char *buf = NULL, *r, *end;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(f);
	policy_summary(p, o, f);
	fclose(f);
	for (r = buf; *r != '\0'; r = *end ? end + 1 : end) {
		end = strchrnul(r, '\n');
		ck_assert_msg(end - r <= POLICY_SUMMARY_WIDTH ||
		    strncmp(r, "invariants digest: ", 19) == 0, "%.*s",
		    (int)(end - r), r);
	}
	return unwrap(buf);
}

/*
 * Who may have which uffds, how many: each rule's peers by name and number,
 * mode, features, and its bound on live uffds per process, per uid and
 * host-wide; the warnings under their rule; the totals.
 */
START_TEST(test_policy_summary)
{
	const char *path = test_file("summary.conf", "[broker]\n"
	    "admin_group = root\n"			/* 2 */
	    "[rule no-logins]\ncgroup = /user.slice/**\naction = deny\n"
	    "[rule vmm]\nuid = nobody 4000000000 nobody\n"	/* 6 */
	    "cgroup = /system.slice/vmm@*.service/**\nmode = kernel\n"
	    "features = MISSING_SHMEM EVENT_REMOVE\nmax_uffds = 4\n"
	    "max_sessions_per_uid = 8\nforked_sessions = yes\n"
	    "[rule forky]\nuid = 4000000001\nexe = /usr/bin/forky\n" /* 14 */
	    "mode = kernel\nfeatures = EVENT_FORK\n"
	    "[rule helpers]\ngid = root\nmax_uffds = 2\n"	/* 19 */
	    "max_sessions_per_uid = 3\n"
	    "[rule everyone]\naction = deny\n"		/* 23 */
	    "[rule late]\nuid = 4000000005\n");		/* 25 */
	struct policy_origin o = { .running = false, .source = "file x" };
	struct policy *p;
	char err[600], *sum;

	ck_assert_msg(policy_load(path, &p, err, sizeof(err)) == 0, "%s", err);
	sum = summary_of(p, &o);
	ck_assert_ptr_nonnull(strstr(sum, "# uffd-broker policy summary\n"
	    "source: file x\ndigest: sha256:"));
	ck_assert_ptr_null(strstr(sum, "in force:"));
	ck_assert_ptr_nonnull(strstr(sum, "\nrules: 6\nstatus for: root and "
	    "group 0 (root)\nsessions host-wide: the broker's --max-sessions "
	    "open at once (1024 unless given; not in the file)\n"));
	ck_assert_ptr_nonnull(strstr(sum, "\nrule 'no-logins' (line 3): deny\n"
	    "  matches: cgroup /user.slice/**\n\n"));
	ck_assert_ptr_nonnull(strstr(sum, "\nrule 'vmm' (line 6): allow, "
	    "kernel-fault uffds\n  matches: uid 65534 (nobody), 4000000000, "
	    "65534 (nobody) cgroup /system.slice/vmm@*.service/**\n"
	    "  features: EVENT_REMOVE MISSING_SHMEM\n  forked sessions: yes\n"
	    "  filter proof: required\n  live uffds: at most 4 per process "
	    "(address space), 32 per uid (8 sessions x 4), 64 host-wide "
	    "(2 uids)\n\n"));
	ck_assert_ptr_nonnull(strstr(sum, "\nrule 'forky' (line 14): allow, "
	    "kernel-fault uffds\n  matches: uid 4000000001 exe /usr/bin/forky\n"
	    "  features: EVENT_FORK\n"));
	ck_assert_ptr_nonnull(strstr(sum, "  live uffds: no bound: EVENT_FORK "
	    "hands the client a uffd per fork, which the broker does not "
	    "count; counted, at most 16 per process (address space)\n"
	    "  warning: rule 'forky' (line 14) grants EVENT_FORK"));
	ck_assert_ptr_nonnull(strstr(sum, "\nrule 'helpers' (line 19): allow, "
	    "user-mode uffds only\n  matches: gid 0 (root)\n  features: none\n"
	    "  forked sessions: no\n  live uffds: at most 2 per process "
	    "(address space), 6 per uid (3 sessions x 2), no bound host-wide: "
	    "it matches on gid: any number of uids may be in its groups\n"));
	ck_assert_ptr_nonnull(strstr(sum, "\nrule 'everyone' (line 23): deny\n"
	    "  matches: every peer\n"));
	ck_assert_ptr_nonnull(strstr(sum, "\nrule 'late' (line 25): never "
	    "reached\n  matches: uid 4000000005\n  warning: rule 'late' "
	    "(line 25) is never reached: rule 'everyone' (line 23) matches "
	    "every peer\n"));
	ck_assert_ptr_nonnull(strstr(sum, "\n\nkernel-fault uffds: rules "
	    "'vmm', 'forky'\n  live: no bound per uid (rule 'forky'), no "
	    "bound host-wide (rule 'forky')\nuser-mode uffds only: rule "
	    "'helpers'\n  live: at most 6 per uid, no bound host-wide (rule "
	    "'helpers')\n"));
	free(sum);
	policy_free(p);

	/* Bounded everywhere: the totals add up; nothing granted, none. */
	ck_assert(policy_load(test_file("summary.conf", "[rule a]\nuid = 1 2\n"
	    "cgroup = /a\nmode = kernel\nmax_uffds = 3\nmax_sessions_per_uid = "
	    "2\n[rule b]\nuid = 3\nexe = /b\nmode = kernel\nmax_uffds = 5\n"
	    "max_sessions_per_uid = 1\n"), &p, err, sizeof(err)) == 0);
	sum = summary_of(p, &o);
	ck_assert_ptr_nonnull(strstr(sum, "\nkernel-fault uffds: rules 'a', "
	    "'b'\n  live: at most 10 per uid, at most 17 host-wide\n"
	    "user-mode uffds only: none: no rule grants them\n"));
	ck_assert_ptr_nonnull(strstr(sum, "\nstatus for: root only\n"));
	free(sum);
	policy_free(p);
}
END_TEST

/* ---- site invariants ---- */

/* Each error of an invariants file, FILE:LINE, in the order of its lines. */
START_TEST(test_invariants_errors)
{
	const char *path = test_file("inv.conf",
	    "# a comment\n"
	    "never\n"					/* 2 */
	    "max live-per-uid x\n"			/* 3 */
	    "max foo 1\n"				/* 4 */
	    "max live-host 5 per mode kernel\n"	/* 5 */
	    "never mode kernel mode user\n"		/* 6 */
	    "never feature BOGUS\n"			/* 7 */
	    "never without pid\n"			/* 8 */
	    "never uid no-such-user-xyz\n"		/* 9 */
	    "frobnicate\n"				/* 10 */
	    "never prove_filter on\n"			/* 11 */
	    "max live-host\n"				/* 12 */
	    "never mode\n"				/* 13 */
	    "never mode kernel\fx\n"			/* 14 */
	    "max live-per-uid 1 for\n"			/* 15 */
	    "never forked_sessions no\n"		/* 16 */
	    "never mode kernel without exe # ok\n"	/* 17 */
	    "max live-host 1000000000000001\n");	/* 18 */
	char got[8192] = "", want[8192] = "";
	struct invariants *inv = (struct invariants *)1;
	static const char *const errs[] = {
		"2: expected a condition at the end of the line",
		"3: max live-per-uid: expected a number from 0 to "
		    "1000000000000000, got 'x'",
		"4: max: expected live-per-process, live-per-uid, live-host or "
		    "sessions-per-uid, got 'foo'",
		"5: max: expected 'for' and conditions after the number, got "
		    "'per'",
		"6: mode: given twice",
		"7: feature: unknown feature 'BOGUS'",
		"8: without: expected uid, gid, exe or cgroup, got 'pid'",
		"9: uid: no such user 'no-such-user-xyz'",
		"10: unknown assertion 'frobnicate': expected never or max",
		"11: prove_filter: expected off, got 'on'",
		"12: expected a number at the end of the line",
		"13: expected kernel or user at the end of the line",
		"14: control character 0x0c: only spaces and tabs are allowed",
		"15: expected a condition at the end of the line",
		"16: forked_sessions: expected yes, got 'no'",
		"18: max live-host: expected a number from 0 to "
		    "1000000000000000, got '1000000000000001'",
	};
	size_t i, len;

	for (i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		len = strlen(want);
		snprintf(want + len, sizeof(want) - len, "%s:%s\n", path,
		    errs[i]);
	}
	ck_assert_int_eq(invariants_load_report(path, &inv, collect_error, got),
	    sizeof(errs) / sizeof(errs[0]));
	ck_assert_ptr_null(inv);
	ck_assert_str_eq(got, want);

	/* What loads: comments, blanks, tabs; the text as messages quote it. */
	path = test_file("inv.conf", "\n  # indented comment\n"
	    "never\tmode kernel   without exe # why\r\n"
	    "max live-per-uid 64 for mode kernel feature MISSING_SHMEM\n");
	ck_assert_int_eq(invariants_load_report(path, &inv, collect_error, got),
	    0);
	ck_assert_uint_eq(inv->n, 2);
	ck_assert_str_eq(inv->v[0].text, "never mode kernel without exe");
	ck_assert_int_eq(inv->v[0].line, 3);
	ck_assert_str_eq(inv->v[1].text, "max live-per-uid 64 for mode kernel "
	    "feature MISSING_SHMEM");
	invariants_free(inv);
	ck_assert_int_eq(invariants_load_report("policy", &inv, collect_error,
	    got), 1);
	ck_assert_ptr_nonnull(strstr(got, "policy: not a regular file (a "
	    "directory)\n"));
}
END_TEST

static void
collect_violation(void *arg, size_t rule, const char *msg)
{
	char *buf = arg;
	size_t len = strlen(buf);

	snprintf(buf + len, 8192 - len, "[%zu] %s\n", rule, msg);
}

/*
 * Each kind of assertion refuses a policy that breaks it, naming the
 * assertion and the rule with FILE:LINE, and keeps one that does not.
 */
static const struct {
	const char *inv;
	const char *policy;
	const char *broken;	/* after "POLICY:"; NULL: kept */
} invariant_cases[] = {
	/* never mode kernel without exe: the first example */
	{ "never mode kernel without exe",
	  "[rule u]\nuid = 1\nmode = user\n"
	  "[rule k]\nuid = 1\ncgroup = /a\nmode = kernel\n",
	  "4: rule 'k' breaks invariant 'never mode kernel without exe' "
	  "(INV:1): it grants kernel faults, does not match on exe" },
	{ "never mode kernel without exe",
	  "[rule k]\nuid = 1\nexe = /usr/bin/vmm\nmode = kernel\n"
	  "[rule d]\nmode = kernel\naction = deny\n", NULL },
	/* never feature EVENT_FORK */
	{ "never feature EVENT_FORK",
	  "[rule f]\nuid = 1\nfeatures = MISSING_SHMEM EVENT_FORK\n",
	  "1: rule 'f' breaks invariant 'never feature EVENT_FORK' (INV:1): "
	  "it grants EVENT_FORK" },
	{ "never feature EVENT_FORK", "[rule f]\nuid = 1\n"
	  "features = MISSING_SHMEM\n", NULL },
	{ "never prove_filter off",
	  "[rule k]\nuid = 1\nmode = kernel\nprove_filter = off\n",
	  "1: rule 'k' breaks invariant 'never prove_filter off' (INV:1): it "
	  "gives the device fd without the filter proof" },
	/* with mode = user, prove_filter = off means nothing */
	{ "never prove_filter off", "[rule u]\nuid = 1\nprove_filter = off\n",
	  NULL },
	{ "never forked_sessions yes", "[rule a]\nuid = 1\n"
	  "forked_sessions = yes\n", "1: rule 'a' breaks invariant 'never "
	  "forked_sessions yes' (INV:1): it admits forked sessions" },
	{ "never mode kernel uid root", "[rule r]\nuid = 7 0\nmode = kernel\n",
	  "1: rule 'r' breaks invariant 'never mode kernel uid root' (INV:1): "
	  "it grants kernel faults, matches uid 0" },
	{ "never mode kernel uid root", "[rule r]\nuid = 7\nmode = kernel\n",
	  NULL },
	{ "never without uid without gid", "[rule all]\ncgroup = /**\n",
	  "1: rule 'all' breaks invariant 'never without uid without gid' "
	  "(INV:1): it does not match on uid, does not match on gid" },
	/* max live-per-process: max_uffds */
	{ "max live-per-process 8", "[rule a]\nuid = 1\nmax_uffds = 9\n",
	  "1: rule 'a' breaks invariant 'max live-per-process 8' (INV:1): "
	  "max_uffds = 9" },
	{ "max live-per-process 8", "[rule a]\nuid = 1\nmax_uffds = 8\n",
	  NULL },
	{ "max sessions-per-uid 4 for mode kernel",
	  "[rule u]\nuid = 1\n[rule k]\nuid = 2\nmode = kernel\n",
	  "3: rule 'k' breaks invariant 'max sessions-per-uid 4 for mode "
	  "kernel' (INV:1): max_sessions_per_uid = 64" },
	/* max live-per-uid: the third example; a rule's own bound */
	{ "max live-per-uid 100 for mode kernel",
	  "[rule k]\nuid = 1\nmode = kernel\nmax_uffds = 4\n"
	  "max_sessions_per_uid = 26\n",
	  "1: rule 'k' breaks invariant 'max live-per-uid 100 for mode "
	  "kernel' (INV:1): up to 104 live uffds per uid" },
	{ "max live-per-uid 100 for mode kernel",
	  "[rule k]\nuid = 1\nmode = kernel\nmax_uffds = 4\n"
	  "max_sessions_per_uid = 25\n", NULL },
	/*
	 * Two rules a uid may use, together: a's sessions hold 50 each and
	 * number at most 2, b's hold 1 and number at most 100: 200 at most.
	 */
	{ "max live-per-uid 100 for mode kernel",
	  "[rule a]\nuid = 1\nmode = kernel\nmax_uffds = 50\n"
	  "max_sessions_per_uid = 2\n[rule b]\ngid = 1\nmode = kernel\n"
	  "max_uffds = 1\nmax_sessions_per_uid = 100\n",
	  "1: rule 'a' breaks invariant 'max live-per-uid 100 for mode "
	  "kernel' (INV:1): with 1 other rule it concerns, up to 200 live "
	  "uffds per uid" },
	{ "max live-per-uid 1000", "[rule f]\nuid = 1\nfeatures = EVENT_FORK\n",
	  "1: rule 'f' breaks invariant 'max live-per-uid 1000' (INV:1): no "
	  "bound on live uffds per uid: EVENT_FORK hands the client a uffd per "
	  "fork, which the broker does not count" },
	/* max live-host */
	{ "max live-host 1000", "[rule g]\ngid = 1\n",
	  "1: rule 'g' breaks invariant 'max live-host 1000' (INV:1): no bound "
	  "on live uffds host-wide: it matches on gid: any number of uids may "
	  "be in its groups" },
	{ "max live-host 1000", "[rule u]\nuid = 1 2\nmax_uffds = 8\n"
	  "[rule v]\nuid = 3\nmax_uffds = 8\n",
	  "1: rule 'u' breaks invariant 'max live-host 1000' (INV:1): "
	  "up to 1024 live uffds host-wide" },
	{ "max live-host 1000", "[rule u]\nuid = 1\nmax_uffds = 8\n"
	  "[rule v]\nuid = 3\nmax_uffds = 8\n",
	  "1: rule 'u' breaks invariant 'max live-host 1000' (INV:1): "
	  "with 1 other rule it concerns, up to 1024 live uffds host-wide" },
	/* deny rules grant nothing, and break nothing */
	{ "max live-host 0", "[rule d]\naction = deny\n", NULL },
};

START_TEST(test_invariants_each_kind)
{
	const char *inv_path = test_file("inv.conf", invariant_cases[_i].inv);
	char ipath[PATH_MAX], err[600], got[8192] = "", want[8192];
	struct invariants *inv;
	struct policy *p;
	const char *b;
	char *at;

	snprintf(ipath, sizeof(ipath), "%s", inv_path);
	ck_assert_int_eq(invariants_load_report(ipath, &inv, collect_error,
	    got), 0);
	ck_assert_msg(policy_load(test_file("p.conf",
	    invariant_cases[_i].policy), &p, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(invariants_check(inv, p, collect_violation, got),
	    invariant_cases[_i].broken != NULL);
	if ((b = invariant_cases[_i].broken) != NULL) {
		/* "[RULE] POLICY:LINE...(INV:1)": the file names filled in. */
		snprintf(want, sizeof(want), "%s:%s\n", p->path, b);
		if ((at = strstr(want, "(INV:")) != NULL) {
			char rest[4096];

			snprintf(rest, sizeof(rest), "%s", at + 4);
			snprintf(at, sizeof(want) - (at - want), "(%s%s", ipath,
			    rest);
		}
		ck_assert_msg(strstr(got, want) != NULL, "got %s want %s", got,
		    want);
	} else
		ck_assert_str_eq(got, "");
	policy_free(p);
	invariants_free(inv);
}
END_TEST

/* The command-line rule keeps the invariants too. */
START_TEST(test_invariants_command_line)
{
	const uid_t uids[] = { 65534 };
	struct grant g = { .kernel_faults = true, .max_uffds = 16,
	    .max_sessions_per_uid = 64, .prove_filter = true };
	char got[8192] = "", want[1024];
	struct invariants *inv;
	struct policy *p = policy_single("command-line", uids, 1, &g);
	const char *path = test_file("inv.conf", "never mode kernel "
	    "without exe\n");

	ck_assert_int_eq(invariants_load_report(path, &inv, collect_error,
	    got), 0);
	ck_assert_uint_eq(invariants_check(inv, p, collect_violation, got), 1);
	snprintf(want, sizeof(want), "[0] command line: rule 'command-line' "
	    "breaks invariant 'never mode kernel without exe' (%s:1): it "
	    "grants kernel faults, does not match on exe\n", path);
	ck_assert_str_eq(got, want);
	policy_free(p);
	invariants_free(inv);
}
END_TEST

static const char match_policy[] =
	"[rule deny-user-slice]\ncgroup = /user.slice/**\naction = deny\n"
	"[rule by-exe]\nuid = 1000\nexe = /usr/bin/crosvm\nmode = kernel\n"
	"[rule by-group]\ngid = 4\nfeatures = THREAD_ID\n"
	"[rule by-cgroup]\ncgroup = /system.slice/vmm@*.service\n"
	"max_uffds = 3\n"
	"[rule root]\nuid = 0\n"
	"[rule any-cgroup]\ncgroup = /**\n";

static const struct {
	struct peer peer;
	const char *rule;	/* NULL: refused for want of a rule */
} match_cases[] = {
	{ { .uid = 1000, .gid = 1000, .exe = "/usr/bin/crosvm",
	    .cgroup = "/system.slice/x.service" }, "by-exe" },
	{ { .uid = 1000, .gid = 1000, .exe = "/usr/bin/crosvm",
	    .cgroup = "/user.slice/user-1000.slice/session-2.scope" },
	    "deny-user-slice" },
	{ { .uid = 1000, .gid = 1000, .exe = "/usr/bin/qemu" }, NULL },
	{ { .uid = 1000, .gid = 1000, .exe = NULL }, NULL },
	{ { .uid = 7, .gid = 4 }, "by-group" },
	{ { .uid = 7, .gid = 7, .groups = (const gid_t[]){ 9, 4 }, .ngroups = 2 },
	    "by-group" },
	{ { .uid = 7, .gid = 7, .cgroup = "/system.slice/vmm@a.service" },
	    "by-cgroup" },
	/* '*' does not cross '/': by-cgroup does not take a child cgroup. */
	{ { .uid = 7, .gid = 7, .cgroup = "/system.slice/vmm@a.service/dev" },
	    "any-cgroup" },
	/* The root's subtree is every cgroup, the root included. */
	{ { .uid = 7, .gid = 7, .cgroup = "/" }, "any-cgroup" },
	{ { .uid = 7, .gid = 7, .cgroup = "/a/b/c" }, "any-cgroup" },
	{ { .uid = 7, .gid = 7, .cgroup = NULL }, NULL },
	{ { .uid = 0, .gid = 0 }, "root" },
	{ { .uid = 0, .gid = 0, .cgroup = "/user.slice" }, "deny-user-slice" },
};

START_TEST(test_policy_matching)
{
	struct policy *p;
	struct rule *r;
	char err[600];

	ck_assert_msg(policy_load(test_file("m.conf", match_policy), &p, err,
	    sizeof(err)) == 0, "%s", err);
	r = policy_match(p, &match_cases[_i].peer);
	if (match_cases[_i].rule == NULL)
		ck_assert_msg(r == NULL, "case %d matched %s", _i, r->name);
	else {
		ck_assert_msg(r != NULL, "case %d: no match", _i);
		ck_assert_str_eq(r->name, match_cases[_i].rule);
	}
	policy_free(p);
}
END_TEST

static void
collect(void *arg, const char *msg)
{
	char *buf = arg;

	strncat(buf, msg, 4000 - strlen(buf));
	strncat(buf, "\n", 4000 - strlen(buf));
}

START_TEST(test_policy_warnings)
{
	struct policy *p;
	char err[600], warnings[4096] = "";

	ck_assert(policy_load(test_file("w.conf",
	    "[rule all-kernel]\nmode = kernel\n[rule late]\nuid = 0\n"
	    "[rule forky]\nuid = 5\nfeatures = EVENT_FORK\n"), &p, err,
	    sizeof(err)) == 0);
	ck_assert_uint_eq(policy_check(p, collect, warnings), 3);
	ck_assert_ptr_nonnull(strstr(warnings, "rule 'all-kernel' (line 1) "
	    "grants kernel faults to every uid\n"));
	ck_assert_ptr_nonnull(strstr(warnings, "rule 'late' (line 3) is never "
	    "reached: rule 'all-kernel' (line 1) matches every peer"));
	ck_assert_ptr_nonnull(strstr(warnings, "rule 'forky' (line 5) is never "
	    "reached"));
	policy_free(p);

	warnings[0] = '\0';
	ck_assert(policy_load(test_file("w2.conf",
	    "[rule forky]\nuid = 5\nfeatures = EVENT_FORK\n"), &p, err,
	    sizeof(err)) == 0);
	ck_assert_uint_eq(policy_check(p, collect, warnings), 1);
	ck_assert_ptr_nonnull(strstr(warnings, "grants EVENT_FORK"));
	policy_free(p);
	/* The shipped example draws no warning. */
	warnings[0] = '\0';
	ck_assert(policy_load(EXAMPLE, &p, err, sizeof(err)) == 0);
	ck_assert_msg(policy_check(p, collect, warnings) == 0, "%s", warnings);
	policy_free(p);
}
END_TEST

/*
 * prove_filter: required unless a rule says off; printed, explained and
 * warned about where it means something, with kernel faults.
 */
START_TEST(test_policy_prove_filter)
{
	struct policy *p;
	char err[600], warnings[4096] = "", grant[640], *printed;

	ck_assert(policy_load(test_file("prove.conf",
	    "[rule k]\nuid = 4000000001\ncgroup = /a\nmode = kernel\n"
	    "[rule off]\nuid = 2\ncgroup = /a\nmode = kernel\n"
	    "prove_filter = off\n"
	    "[rule u]\nuid = 3\nprove_filter = required\n"), &p, err,
	    sizeof(err)) == 0);
	ck_assert(p->rules[0].grant.prove_filter);
	ck_assert(!p->rules[1].grant.prove_filter);
	ck_assert_uint_eq(policy_check(p, collect, warnings), 1);
	ck_assert_ptr_nonnull(strstr(warnings, "rule 'off' (line 5) grants "
	    "kernel faults with prove_filter = off"));
	policy_grant_text(&p->rules[0].grant, grant, sizeof(grant));
	ck_assert_ptr_nonnull(strstr(grant, " prove_filter=required"));
	policy_grant_text(&p->rules[1].grant, grant, sizeof(grant));
	ck_assert_ptr_nonnull(strstr(grant, " prove_filter=off"));
	/* With user-mode faults there is no device fd to prove it for. */
	policy_grant_text(&p->rules[2].grant, grant, sizeof(grant));
	ck_assert_ptr_null(strstr(grant, "prove_filter"));
	printed = print_to_string(p);
	ck_assert_ptr_nonnull(strstr(printed, "[rule k]\nuid = 4000000001\n"
	    "cgroup = /a\n"
	    "action = allow\nmode = kernel\nfeatures = none\nmax_uffds = 16\n"
	    "max_sessions_per_uid = 64\nforked_sessions = no\n"
	    "prove_filter = required\n"));
	ck_assert_ptr_nonnull(strstr(printed, "prove_filter = off\n"));
	ck_assert_ptr_null(strstr(strstr(printed, "[rule u]"), "prove_filter"));
	free(printed);
	policy_free(p);

	ck_assert_int_eq(policy_load(test_file("prove-bad.conf",
	    "[rule a]\nmode = kernel\nprove_filter = yes\n"), &p, err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, ":3: prove_filter: expected "
	    "'required' or 'off', got 'yes'"));
}
END_TEST

/* ---- the policy at work in a broker ---- */

/* This test binary's path: the clients' executable. */
static const char *
self_exe(void)
{
	static char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	ck_assert_int_gt(n, 0);
	exe[n] = '\0';
	return exe;
}

struct expect {
	int	open_rc;	/* uffdc_session_open() */
	int	create_rc;	/* uffdc_create() kernel faults, default features */
	int	second_rc;	/* a second uffdc_create() */
};

static int
client_expect(void *arg)
{
	const struct expect *e = arg;
	struct uffdc_session *s;
	struct uffdc_uffd *u, *v;

	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == e->open_rc);
	if (e->open_rc != 0)
		return 0;
	CHILD_CHECK(uffdc_create(s, UFFDC_FEATURES_DEFAULT, 0, &u) ==
	    e->create_rc);
	CHILD_CHECK(uffdc_create(s, UFFDC_FEATURES_DEFAULT, 0, &v) ==
	    e->second_rc);
	uffdc_session_close(s);
	return 0;
}

static void
start_with_policy(const char *text)
{
	broker_start("--policy", test_file("broker.conf", text), NULL);
}

START_TEST(test_policy_refusals_end_to_end)
{
	char text[PATH_MAX + 256];
	struct expect ok = { 0, 0, 0 };
	struct expect no_rule = { -EACCES, 0, 0 };
	struct expect one = { 0, 0, -EDQUOT };
	struct expect user_only = { 0, -EACCES, -EACCES };
	struct expect no_features = { 0, -EACCES, -EACCES };

	/* No rule matches uid 65534: refused, and says so. */
	start_with_policy("[rule root-only]\nuid = 0\nmode = kernel\n");
	ck_assert_int_eq(run_client(client_expect, &no_rule, true), 0);
	ck_assert(log_wait(1000, "event=session_refused", "rule=(none) "
	    "reason=\"no rule of the policy matches uid 65534 "));
	broker_stop();

	/* A deny rule before an allow rule. */
	start_with_policy("[rule no-nobody]\nuid = nobody\naction = deny\n"
	    "[rule all]\nmode = kernel\n");
	ck_assert_int_eq(run_client(client_expect, &no_rule, true), 0);
	ck_assert(log_wait(1000, "event=session_refused", "rule=no-nobody"));
	ck_assert(log_wait(0, "reason=\"refused by rule 'no-nobody'\"", NULL));
	broker_stop();

	/* The executable: this test binary matches, another path does not. */
	snprintf(text, sizeof(text), "[rule by-exe]\nuid = 65534\nexe = %s\n"
	    "mode = kernel\nfeatures = MISSING_SHMEM EVENT_REMOVE\n", self_exe());
	start_with_policy(text);
	ck_assert_int_eq(run_client(client_expect, &ok, true), 0);
	ck_assert(log_wait(1000, "event=session_open", "rule=by-exe"));
	broker_stop();
	start_with_policy("[rule by-exe]\nuid = 65534\nexe = /usr/bin/crosvm\n"
	    "mode = kernel\n");
	ck_assert_int_eq(run_client(client_expect, &no_rule, true), 0);
	ck_assert(log_wait(1000, "event=session_refused", "exe /"));
	broker_stop();

	/* User mode only; no features; a quota of one uffd. */
	start_with_policy("[rule u]\nuid = 65534\nmode = user\n"
	    "features = MISSING_SHMEM EVENT_REMOVE\n");
	ck_assert_int_eq(run_client(client_expect, &user_only, true), 0);
	ck_assert(log_wait(1000, "event=uffd_refused", "rule=u"));
	ck_assert(log_wait(0, "kernel faults not granted", NULL));
	broker_stop();
	start_with_policy("[rule f]\nuid = 65534\nmode = kernel\n");
	ck_assert_int_eq(run_client(client_expect, &no_features, true), 0);
	ck_assert(log_wait(1000, "event=uffd_refused", "features not granted"));
	broker_stop();
	start_with_policy("[rule q]\nuid = 65534\nmode = kernel\nmax_uffds = 1\n"
	    "features = MISSING_SHMEM EVENT_REMOVE\n");
	ck_assert_int_eq(run_client(client_expect, &one, true), 0);
	ck_assert(log_wait(1000, "event=quota_hit", "rule=q what=uffds"));
	broker_stop();
}
END_TEST

static int
client_gets_uffd_user_mode(void *arg)
{
	struct uffdc_session *s;
	struct uffdc_uffd *u;

	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	CHILD_CHECK(uffdc_create(s, 0, UFFDC_USER_MODE_ONLY, &u) == 0);
	CHILD_CHECK(uffdc_create(s, 0, 0, &u) == -EACCES);
	uffdc_session_close(s);
	return 0;
}

/* A client that holds its session until told to end; reports each grant. */
struct holder {
	int	go[2], done[2];
	int	want_rc;	/* the create after "go" */
};

static int
hold_then_create(void *arg)
{
	struct holder *h = arg;
	struct uffdc_session *s;
	struct uffdc_uffd *u;

	close(h->go[1]);
	close(h->done[0]);
	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	CHILD_CHECK(uffdc_create(s, 0, UFFDC_USER_MODE_ONLY, &u) == 0);
	sync_signal(h->done[1]);
	sync_wait(h->go[0]);
	/* The grant the session was admitted with stands after a reload. */
	CHILD_CHECK(uffdc_create(s, 0, UFFDC_USER_MODE_ONLY, &u) == h->want_rc);
	uffdc_session_close(s);
	return 0;
}

/* Start a holder; returns once its session is open. */
static pid_t
holder_start(struct holder *h)
{
	pid_t pid;

	ck_assert_int_eq(pipe2(h->go, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(h->done, O_CLOEXEC), 0);
	pid = spawn(hold_then_create, h, true);
	close(h->go[0]);
	close(h->done[1]);
	sync_wait(h->done[0]);
	return pid;
}

/* Let the holder make its last creation and end; it must have succeeded. */
static void
holder_finish(struct holder *h, pid_t pid)
{
	sync_signal(h->go[1]);
	ck_assert_int_eq(reap(pid), 0);
	close(h->go[1]);
	close(h->done[0]);
}

START_TEST(test_policy_reload)
{
	struct holder h = { .want_rc = 0 };
	struct expect refused = { -EACCES, 0, 0 };
	const char *path;
	pid_t holder;

	path = test_file("reload.conf", "[rule nobody]\nuid = 65534\n");
	broker_start("--policy", path, "--probe-interval-ms", "100", NULL);
	holder = holder_start(&h);

	/* A bad file: the old policy stays, the log says why. */
	test_file("reload.conf", "[rule nobody]\nuid = 65534\nmode = sideways\n");
	ck_assert_int_eq(kill(tb.pid, SIGHUP), 0);
	ck_assert(log_wait(2000, "event=policy_reload result=failed",
	    "reload.conf:3: mode: expected 'kernel' or 'user', got 'sideways'"));
	ck_assert_int_eq(run_client(client_gets_uffd_user_mode, NULL, true), 0);

	/* Names come from /etc/passwd: an unknown one fails the reload only. */
	test_file("reload.conf", "[rule nobody]\nuid = no-such-user-xyz\n");
	ck_assert_int_eq(kill(tb.pid, SIGHUP), 0);
	ck_assert(log_wait(2000, "event=policy_reload result=failed",
	    "uid: no such user 'no-such-user-xyz'"));
	ck_assert_int_eq(run_client(client_gets_uffd_user_mode, NULL, true), 0);

	/* A directory where the file was: no policy, not an empty one. */
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	ck_assert_int_eq(kill(tb.pid, SIGHUP), 0);
	ck_assert(log_wait(2000, "event=policy_reload result=failed "
	    "rules_in_force=1 errors=1 error=", "reload.conf: not a regular "
	    "file (a directory)\""));
	ck_assert_int_eq(run_client(client_gets_uffd_user_mode, NULL, true), 0);
	ck_assert_int_eq(rmdir(path), 0);

	/* A good file that denies nobody: new sessions refused at once... */
	test_file("reload.conf", "[rule nobody]\nuid = 65534\naction = deny\n");
	ck_assert_int_eq(kill(tb.pid, SIGHUP), 0);
	ck_assert(log_wait(2000, "event=policy_reload result=ok", "rules=1"));
	ck_assert_int_eq(run_client(client_expect, &refused, true), 0);
	ck_assert(log_wait(1000, "event=session_refused",
	    "refused by rule 'nobody'"));
	/* ...while the session admitted before keeps its grant. */
	holder_finish(&h, holder);
	broker_stop();
}
END_TEST

/*
 * A reload that adds an exe rule to a broker jailed without CAP_SYS_PTRACE:
 * the executable cannot be read, so every peer is refused (fail closed),
 * and the log says why.
 */
START_TEST(test_policy_unreadable_exe_fails_closed)
{
	const char *path = test_file("exe.conf", "[rule all]\nuid = 65534\n");
	struct expect refused = { -EACCES, 0, 0 };

	broker_start("--policy", path, "--user", "64000", NULL);
	ck_assert_int_eq(run_client(client_gets_uffd_user_mode, NULL, true), 0);
	test_file("exe.conf", "[rule not-this]\nexe = /usr/bin/evil\n"
	    "action = deny\n[rule all]\nuid = 65534\n");
	ck_assert_int_eq(kill(tb.pid, SIGHUP), 0);
	ck_assert(log_wait(2000, "event=policy_reload result=ok", NULL));
	ck_assert(log_wait(1000, "need CAP_SYS_PTRACE", "fail closed"));
	ck_assert_int_eq(run_client(client_expect, &refused, true), 0);
	ck_assert(log_wait(1000, "event=session_refused", "the policy matches "
	    "on the peer's executable, which the broker could not read"));
	broker_stop();
}
END_TEST

/* The hex SHA-256 of a file, computed here. */
static void
file_digest(const char *path, char hex[SHA256_HEX_LEN])
{
	uint8_t digest[SHA256_LEN];
	char *text = read_whole(path);
	struct sha256 c;

	sha256_init(&c);
	sha256_update(&c, text, strlen(text));
	sha256_final(&c, digest);
	sha256_hex(digest, hex);
	free(text);
}

/*
 * The policy in force, as the running broker says: its source, digest and
 * load time in status, its summary with the broker's own limits; after a
 * failed reload, the old policy's, and the failure, not the file on disk.
 */
START_TEST(test_policy_in_force)
{
	char want[PATH_MAX + 200], hex[SHA256_HEX_LEN], *st, *sum;
	const char *path;

	path = test_file("force.conf", "[rule nobody]\nuid = 65534\n"
	    "cgroup = /**\nmode = kernel\nmax_uffds = 3\n");
	file_digest(path, hex);
	broker_start("--policy", path, "--max-sessions", "77", NULL);
	ck_assert_ptr_nonnull(st = admin_view(VIEW_STATUS));
	snprintf(want, sizeof(want), "\npolicy source=%s digest=sha256:%s "
	    "loaded=20", path, hex);
	ck_assert_msg(strstr(st, want) != NULL, "%s", st);
	ck_assert_ptr_nonnull(strstr(st, " rules=1 invariants=none "
	    "last_reload=none\n"));
	free(st);
	ck_assert_ptr_nonnull(sum = admin_view(VIEW_POLICY));
	unwrap(sum);
	snprintf(want, sizeof(want), "source: file %s\ndigest: sha256:%s\n"
	    "in force: since 20", path, hex);
	ck_assert_msg(strstr(sum, want) != NULL, "%s", sum);
	ck_assert_ptr_nonnull(strstr(sum, "\nsessions host-wide: at most 77 "
	    "open at once (--max-sessions)\n"));
	ck_assert_ptr_nonnull(strstr(sum, "\nrule 'nobody' (line 1): allow, "
	    "kernel-fault uffds\n  matches: uid 65534 (nobody) cgroup /**\n"));
	ck_assert_ptr_nonnull(strstr(sum, "  live uffds: at most 3 per "
	    "process"));
	ck_assert_ptr_null(strstr(sum, "last reload"));
	free(sum);
	ck_assert(log_wait(1000, "event=admin_status", "view=policy"));

	/* A reload that fails: what runs is not what the file says. */
	test_file("force.conf", "[rule nobody]\nuid = 65534\nmode = kernel\n"
	    "max_uffds = many\n");
	ck_assert_int_eq(kill(tb.pid, SIGHUP), 0);
	ck_assert(log_wait(2000, "event=policy_reload result=failed", NULL));
	ck_assert_ptr_nonnull(st = admin_view(VIEW_STATUS));
	ck_assert_msg(strstr(st, hex) != NULL, "%s", st);
	ck_assert_ptr_nonnull(strstr(st, " last_reload=failed "
	    "last_reload_at=20"));
	ck_assert_ptr_nonnull(strstr(st, " last_reload_error=\""));
	ck_assert_ptr_nonnull(strstr(st, "force.conf:4: max_uffds: expected a "
	    "number from 1 to 1000000, got 'many'\"\n"));
	free(st);
	ck_assert_ptr_nonnull(sum = admin_view(VIEW_POLICY));
	unwrap(sum);
	ck_assert_ptr_nonnull(strstr(sum, hex));
	ck_assert_ptr_nonnull(strstr(sum, "\nlast reload: failed at 20"));
	ck_assert_ptr_nonnull(strstr(sum, "at most 3 per process"));
	free(sum);

	/* A good one: its digest, and ok. */
	path = test_file("force.conf", "[rule nobody]\nuid = 65534\n"
	    "cgroup = /**\nmode = kernel\nmax_uffds = 5\n");
	file_digest(path, hex);
	ck_assert_int_eq(kill(tb.pid, SIGHUP), 0);
	ck_assert(log_wait(2000, "event=policy_reload result=ok", NULL));
	ck_assert_ptr_nonnull(st = admin_view(VIEW_STATUS));
	ck_assert_msg(strstr(st, hex) != NULL, "%s", st);
	ck_assert_ptr_nonnull(strstr(st, " last_reload=ok last_reload_at=20"));
	ck_assert_ptr_null(strstr(st, "last_reload_error"));
	free(st);
	ck_assert_ptr_nonnull(sum = admin_view(VIEW_POLICY));
	unwrap(sum);
	ck_assert_ptr_nonnull(strstr(sum, "at most 5 per process"));
	ck_assert_ptr_null(strstr(sum, "last reload"));
	free(sum);
	broker_stop();

	/* The command-line rule: its options are its policy. */
	broker_start("--allow-uid", "nobody", "--max-uffds", "3",
	    "--max-sessions-per-uid", "2", NULL);
	ck_assert_ptr_nonnull(st = admin_view(VIEW_STATUS));
	ck_assert_ptr_nonnull(strstr(st, "\npolicy source=(command line) "
	    "digest=sha256:"));
	free(st);
	ck_assert_ptr_nonnull(sum = admin_view(VIEW_POLICY));
	unwrap(sum);
	ck_assert_ptr_nonnull(strstr(sum, "source: command line\n"));
	ck_assert_ptr_nonnull(strstr(sum, "\nrule 'command-line' (the "
	    "command line): allow, kernel-fault uffds\n  matches: uid 65534 "
	    "(nobody)\n"));
	ck_assert_ptr_nonnull(strstr(sum, "  live uffds: at most 3 per "
	    "process (address space), 6 per uid (2 sessions x 3), 6 host-wide "
	    "(1 uid)"));
	ck_assert_ptr_nonnull(strstr(sum, "\nsessions host-wide: at most 1024 "
	    "open at once (--max-sessions)\n"));
	free(sum);
	broker_stop();
}
END_TEST

static int
client_kernel_uffd(void *arg)
{
	struct uffdc_session *s;
	struct uffdc_uffd *u;

	(void)arg;
	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	CHILD_CHECK(uffdc_create(s, 0, 0, &u) == 0);
	uffdc_session_close(s);
	return 0;
}

/* uffd-brokerd with args; returns its exit code, its log in *log. */
static int
broker_refuses(char **log, const char *arg, ...)
{
	const char *argv[16] = { brokerd_path(), "--socket", "/nonexistent/s" };
	char out[PATH_MAX];
	int argc = 3, rc;
	va_list ap;

	va_start(ap, arg);
	for (; arg != NULL && argc < 15; arg = va_arg(ap, const char *))
		argv[argc++] = arg;
	va_end(ap);
	argv[argc] = NULL;
	snprintf(out, sizeof(out), "%s/refuses.log", getenv("UFFD_TEST_DIR"));
	rc = run_program(out, false, argv);
	*log = read_whole(out);
	unlink(out);
	return rc;
}

/*
 * The site invariants, enforced by the broker: a policy that breaks one
 * does not start it, nor load on reload, where the policy in force stays,
 * and the log names the assertion and the rule, each with FILE:LINE.
 */
START_TEST(test_policy_invariants_enforced)
{
	char good[PATH_MAX + 128], want[PATH_MAX * 2], hex[SHA256_HEX_LEN];
	char inv[PATH_MAX], *st, *log;
	const char *path;

	snprintf(inv, sizeof(inv), "%s", test_file("site.inv",
	    "never mode kernel without exe\n"
	    "max live-per-uid 64 for mode kernel\n"));
	file_digest(inv, hex);
	snprintf(good, sizeof(good), "[rule vmm]\nuid = 65534\nexe = %s\n"
	    "mode = kernel\nmax_uffds = 2\nmax_sessions_per_uid = 4\n",
	    self_exe());
	path = test_file("site.conf", good);
	broker_start("--policy", path, "--invariants", inv, NULL);
	ck_assert_int_eq(run_client(client_kernel_uffd, NULL, true), 0);
	ck_assert_ptr_nonnull(st = admin_view(VIEW_STATUS));
	snprintf(want, sizeof(want), " invariants=%s "
	    "invariants_digest=sha256:%s invariants_count=2 ", inv, hex);
	ck_assert_msg(strstr(st, want) != NULL, "%s", st);
	free(st);
	ck_assert_ptr_nonnull(st = admin_view(VIEW_POLICY));
	snprintf(want, sizeof(want), "\ninvariants: %s, 2 assertions: the "
	    "policy keeps them all\ninvariants digest: sha256:%s\n", inv, hex);
	ck_assert_msg(strstr(unwrap(st), want) != NULL, "%s", st);
	free(st);

	/* A policy breaking one: the reload fails, the old one serves. */
	test_file("site.conf", "[rule vmm]\nuid = 65534\ncgroup = /**\n"
	    "mode = kernel\n");
	ck_assert_int_eq(kill(tb.pid, SIGHUP), 0);
	snprintf(want, sizeof(want), "site.conf:1: rule 'vmm' breaks invariant "
	    "'never mode kernel without exe' (%s:1): it grants kernel faults, "
	    "does not match on exe", inv);
	ck_assert(log_wait(2000, "event=policy_reload result=failed", want));
	ck_assert(log_wait(0, "event=policy_reload result=failed", "errors=2"));
	ck_assert_int_eq(run_client(client_kernel_uffd, NULL, true), 0);
	ck_assert_ptr_nonnull(st = admin_view(VIEW_STATUS));
	ck_assert_ptr_nonnull(strstr(st, " last_reload=failed "));
	ck_assert_ptr_nonnull(strstr(st, "breaks invariant 'never mode kernel "
	    "without exe'"));
	free(st);

	/* Invariants that do not load: the reload fails too. */
	test_file("site.conf", good);
	test_file("site.inv", "never mode kernel without pid\n");
	ck_assert_int_eq(kill(tb.pid, SIGHUP), 0);
	ck_assert(log_wait(2000, "event=policy_reload result=failed",
	    "site.inv:1: without: expected uid, gid, exe or cgroup, got "
	    "'pid'"));

	/* Both good: it loads, with the new invariants. */
	test_file("site.inv", "never feature EVENT_FORK\n");
	file_digest(inv, hex);
	ck_assert_int_eq(kill(tb.pid, SIGHUP), 0);
	ck_assert(log_wait(2000, "event=policy_reload result=ok",
	    "invariants=1"));
	ck_assert_ptr_nonnull(st = admin_view(VIEW_STATUS));
	ck_assert_ptr_nonnull(strstr(st, hex));
	ck_assert_ptr_nonnull(strstr(st, " last_reload=ok "));
	free(st);
	broker_stop();

	/* At start-up: a policy breaking one does not start the broker. */
	test_file("site.inv", "never mode kernel without exe\n");
	test_file("site.conf", "[rule vmm]\nuid = 65534\nmode = kernel\n");
	ck_assert_int_eq(broker_refuses(&log, "--policy", path,
	    "--invariants", inv, NULL), 1);
	ck_assert_msg(strstr(log, "site.conf:1: rule 'vmm' breaks invariant "
	    "'never mode kernel without exe'") != NULL, "%s", log);
	ck_assert_ptr_nonnull(strstr(log, "policy not loaded: it breaks 1 "
	    "invariant of "));
	free(log);
	/* Nor does the command-line rule that breaks one. */
	ck_assert_int_eq(broker_refuses(&log, "--allow-uid", "65534",
	    "--invariants", inv, NULL), 1);
	ck_assert_ptr_nonnull(strstr(log, "command line: rule 'command-line' "
	    "breaks invariant 'never mode kernel without exe'"));
	free(log);
	/* Nor invariants that do not load, or are not there. */
	test_file("site.inv", "never\n");
	ck_assert_int_eq(broker_refuses(&log, "--allow-uid", "65534",
	    "--user-mode-only", "--invariants", inv, NULL), 1);
	ck_assert_ptr_nonnull(strstr(log, "site.inv:1: expected a condition at "
	    "the end of the line"));
	ck_assert_ptr_nonnull(strstr(log, "invariants not loaded: 1 error"));
	free(log);
	unlink(inv);
	ck_assert_int_eq(broker_refuses(&log, "--allow-uid", "65534",
	    "--user-mode-only", "--invariants", inv, NULL), 1);
	ck_assert_ptr_nonnull(strstr(log, "site.inv: No such file or "
	    "directory"));
	free(log);
}
END_TEST

/* The audit trail: one line per decision, with the fields a reviewer needs. */
START_TEST(test_policy_audit_lines)
{
	struct expect one = { 0, 0, -EDQUOT };

	start_with_policy("[rule vmm]\nuid = 65534\nmode = kernel\nmax_uffds = 1\n"
	    "features = MISSING_SHMEM EVENT_REMOVE\nforked_sessions = yes\n");
	ck_assert_int_eq(run_client(client_expect, &one, true), 0);
	ck_assert(log_wait(1000, "event=session_open", "rule=vmm forked=no"));
	ck_assert(log_wait(0, "event=session_open", "mode=kernel "
	    "features=\"EVENT_REMOVE MISSING_SHMEM\" max_uffds=1 "
	    "max_sessions_per_uid=64 forked_sessions=yes"));
	ck_assert(log_wait(0, "event=uffd_granted", "rule=vmm "
	    "features=\"EVENT_REMOVE MISSING_SHMEM\" live_at_most=1 max=1"));
	ck_assert(log_wait(0, "event=quota_hit", "rule=vmm what=uffds"));
	ck_assert(log_wait(1000, "event=session_end", "rule=vmm state=ready"));
	ck_assert(log_wait(0, "event=start", "rules=1"));
	broker_stop();
}
END_TEST

/* Two sessions of one uid with max_sessions_per_uid = 1: a quota hit. */
START_TEST(test_policy_session_quota)
{
	struct holder h = { .want_rc = 0 };
	struct expect refused = { -EDQUOT, 0, 0 };
	pid_t holder;

	start_with_policy("[rule one]\nuid = 65534\nmax_sessions_per_uid = 1\n");
	holder = holder_start(&h);
	ck_assert_int_eq(run_client(client_expect, &refused, true), 0);
	ck_assert(log_wait(1000, "event=quota_hit", "rule=one what=sessions"));
	ck_assert(log_wait(0, "event=quota_hit", "limit 1 of rule 'one'"));
	holder_finish(&h, holder);
	broker_stop();
}
END_TEST

/*
 * A peer that exits before the broker reads it, its pid taken meanwhile by
 * a process running an executable the policy admits: what /proc shows under
 * that pid is not the peer, and the peer's pidfd says so.
 */
START_TEST(test_policy_peer_pid_reused)
{
	char exe[PATH_MAX], text[PATH_MAX + 32], path[64], reason[256], c;
	int sv[2], sock, flags, i;
	pid_t peer, taker;
	WireStatus st;
	ssize_t n;

	ck_assert_ptr_nonnull(realpath("/bin/sleep", exe));
	snprintf(text, sizeof(text), "[rule sleep]\nexe = %s\n", exe);
	start_with_policy(text);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
	    sv), 0);
	broker_pause();
	/* The peer connects (the broker is stopped: it reads nothing yet). */
	if ((peer = fork()) == 0) {
		sock = raw_connect_quiet();
		_exit(sock >= 0 && wire_send(sv[1], "s", 1, sock) == 0 ? 0 : 1);
	}
	ck_assert_int_eq(reap(peer), 0);
	ck_assert_int_eq(wire_recv(sv[0], &c, 1, &sock, &flags), 1);
	ck_assert_int_ge(sock, 0);
	if ((taker = fork_with_pid(peer)) == 0) {
		execl(exe, "sleep", "30", (char *)NULL);
		_exit(127);
	}
	ck_assert_int_eq(taker, peer);
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)taker);
	for (i = 0; i < 1000; i++) {
		n = readlink(path, text, sizeof(text) - 1);
		if (n > 0 && (text[n] = '\0', strcmp(text, exe) == 0))
			break;
		usleep(1000);
	}
	broker_resume();
	ck_assert_int_eq(raw_welcome(sock, &st, reason, sizeof(reason)), 0);
	ck_assert_msg(st == UFFD_BROKER__V1__STATUS__DENIED, "%s: %s",
	    wire_status_name(st), reason);
	ck_assert_str_eq(reason, "the peer exited during admission");
	kill(taker, SIGKILL);
	reap(taker);
	close(sock);
	close(sv[0]);
	close(sv[1]);
	broker_stop();
}
END_TEST

/* Every error is logged; so is a policy that is no regular file. */
START_TEST(test_policy_bad_file_refuses_start)
{
	const char *argv[] = { brokerd_path(), "--socket", "/nonexistent/s",
	    "--policy", test_file("bad.conf", "[rule x]\nbogus = 1\n"
	    "mode = sideways\n"), NULL };
	char out[PATH_MAX], dir[PATH_MAX], *log;

	snprintf(out, sizeof(out), "%s/bad.log", getenv("UFFD_TEST_DIR"));
	ck_assert_int_eq(run_program(out, false, valgrind_argv(argv)), 1);
	if (under_valgrind())
		valgrind_check_output(out, "uffd-brokerd");
	log = read_whole(out);
	ck_assert_ptr_nonnull(strstr(log, "bad.conf:2: unknown key 'bogus' in "
	    "[rule x]"));
	ck_assert_ptr_nonnull(strstr(log, "bad.conf:3: mode: expected 'kernel' "
	    "or 'user', got 'sideways'"));
	ck_assert_ptr_nonnull(strstr(log, "policy not loaded: 2 errors"));
	free(log);

	snprintf(dir, sizeof(dir), "%s/policy.d", getenv("UFFD_TEST_DIR"));
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	argv[4] = dir;
	ck_assert_int_eq(run_program(out, false, argv), 1);
	log = read_whole(out);
	ck_assert_ptr_nonnull(strstr(log, "policy.d: not a regular file (a "
	    "directory)"));
	ck_assert_ptr_nonnull(strstr(log, "no policy: refusing to start"));
	free(log);
	ck_assert_int_eq(rmdir(dir), 0);
	unlink(out);
}
END_TEST

Suite *
make_policy_suite(void)
{
	Suite *s = suite_create("policy");
	TCase *parse = tcase_create("parse");
	TCase *live = tcase_create("broker");

	tcase_add_loop_test(parse, test_policy_parse_table, 0,
	    sizeof(parse_cases) / sizeof(parse_cases[0]));
	tcase_add_loop_test(parse, test_policy_load_table, 0,
	    sizeof(load_cases) / sizeof(load_cases[0]));
	tcase_add_test(parse, test_policy_nul_byte);
	tcase_add_test(parse, test_policy_missing_file);
	tcase_add_loop_test(parse, test_policy_all_errors, 0,
	    sizeof(all_errors_cases) / sizeof(all_errors_cases[0]));
	tcase_add_test(parse, test_policy_many_errors);
	tcase_add_test(parse, test_policy_not_regular);
	tcase_add_test(parse, test_policy_golden_print);
	tcase_add_test(parse, test_policy_print_names);
	tcase_add_test(parse, test_policy_print_longest);
	tcase_add_loop_test(parse, test_policy_matching, 0,
	    sizeof(match_cases) / sizeof(match_cases[0]));
	tcase_add_test(parse, test_policy_warnings);
	tcase_add_test(parse, test_policy_prove_filter);
	tcase_add_test(parse, test_policy_sha256);
	tcase_add_test(parse, test_policy_digest);
	tcase_add_test(parse, test_policy_summary);
	tcase_add_test(parse, test_invariants_errors);
	tcase_add_loop_test(parse, test_invariants_each_kind, 0,
	    sizeof(invariant_cases) / sizeof(invariant_cases[0]));
	tcase_add_test(parse, test_invariants_command_line);
	suite_add_tcase(s, parse);
	tcase_set_timeout(live, 30);
	tcase_add_test(live, test_policy_refusals_end_to_end);
	tcase_add_test(live, test_policy_reload);
	tcase_add_test(live, test_policy_in_force);
	tcase_add_test(live, test_policy_invariants_enforced);
	tcase_add_test(live, test_policy_audit_lines);
	tcase_add_test(live, test_policy_unreadable_exe_fails_closed);
	tcase_add_test(live, test_policy_session_quota);
	tcase_add_test(live, test_policy_bad_file_refuses_start);
	tcase_add_test(live, test_policy_peer_pid_reused);
	suite_add_tcase(s, live);
	return s;
}
