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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "harness.h"
#include "policy.h"

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
	{ "\n[rule a\n", "2: syntax error: expected 'key = value', "
	    "'[section]' or a comment" },
	/*
	 * The first error is the one reported, though inih reads on past a
	 * syntax error (fuzz_policy; tests/fuzz/regressions/fuzz_policy/).
	 */
	{ "[rule a]\nuid\nfoo = 1\n", "2: syntax error: expected 'key = value', "
	    "'[section]' or a comment" },
	{ "udmoody\nmode = de\xd1\n", "1: syntax error: expected 'key = value', "
	    "'[section]' or a comment" },
	{ "[rule a\nuid = 0\n", "1: syntax error: expected 'key = value', "
	    "'[section]' or a comment" },
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
	    "[rule k]\nuid = 1\ncgroup = /a\nmode = kernel\n"
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
	ck_assert_ptr_nonnull(strstr(printed, "[rule k]\nuid = 1\ncgroup = /a\n"
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
	struct expect user_only = { 0, -EPERM, -EPERM };
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
	CHILD_CHECK(uffdc_create(s, 0, 0, &u) == -EPERM);
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
	ck_assert(log_wait(0, "event=uffd_granted", "rule=vmm features=0x28 "
	    "live_at_most=1 max=1"));
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
	struct expect refused = { -EACCES, 0, 0 };
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

START_TEST(test_policy_bad_file_refuses_start)
{
	const char *argv[] = { brokerd_path(), "--socket", "/nonexistent/s",
	    "--policy", test_file("bad.conf", "[rule x]\nbogus = 1\n"), NULL };
	char out[PATH_MAX], *log;

	snprintf(out, sizeof(out), "%s/bad.log", getenv("UFFD_TEST_DIR"));
	ck_assert_int_eq(run_program(out, false, valgrind_argv(argv)), 1);
	if (under_valgrind())
		valgrind_check_output(out, "uffd-brokerd");
	log = read_whole(out);
	ck_assert_ptr_nonnull(strstr(log, "bad.conf:2: unknown key 'bogus' in "
	    "[rule x]"));
	free(log);
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
	tcase_add_test(parse, test_policy_golden_print);
	tcase_add_test(parse, test_policy_print_longest);
	tcase_add_loop_test(parse, test_policy_matching, 0,
	    sizeof(match_cases) / sizeof(match_cases[0]));
	tcase_add_test(parse, test_policy_warnings);
	tcase_add_test(parse, test_policy_prove_filter);
	suite_add_tcase(s, parse);
	tcase_set_timeout(live, 30);
	tcase_add_test(live, test_policy_refusals_end_to_end);
	tcase_add_test(live, test_policy_reload);
	tcase_add_test(live, test_policy_audit_lines);
	tcase_add_test(live, test_policy_unreadable_exe_fails_closed);
	tcase_add_test(live, test_policy_session_quota);
	tcase_add_test(live, test_policy_bad_file_refuses_start);
	tcase_add_test(live, test_policy_peer_pid_reused);
	suite_add_tcase(s, live);
	return s;
}
