/* SPDX-License-Identifier: ISC */
/*
 * check_config.c - uffd-brokerd's command line, table-driven.
 */
#include <errno.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "harness.h"
#include "policy.h"

static const struct {
	const char *args[6];
	int rc;
	const char *err;	/* substring of the message, for rc < 0 */
} cases[] = {
	{ { NULL }, 0, NULL },
	{ { "--allow-uid", "0", "--allow-uid", "65534", NULL }, 0, NULL },
	{ { "--max-uffds", "0", NULL }, -EINVAL,
	    "--max-uffds: expected a number from 1 to 1000000, got '0'" },
	{ { "--max-uffds", "-3", NULL }, -EINVAL,
	    "--max-uffds: expected a number from 1 to 1000000, got '-3'" },
	{ { "--allow-uid", "root", NULL }, 0, NULL },
	{ { "--allow-uid", "no-such-user-here", NULL }, -EINVAL,
	    "--allow-uid: no such user or bad uid 'no-such-user-here'" },
	{ { "--allow-uid", "4294967295", NULL }, -EINVAL, "--allow-uid: no such "
	    "user or bad uid" },
	{ { "--features", "0x2", NULL }, 0, NULL },
	{ { "--features", "MISSING_SHMEM,UFFD_FEATURE_EVENT_REMOVE", NULL }, 0,
	    NULL },
	{ { "--features", "fork", NULL }, -EINVAL, "--features: 'fork' is "
	    "neither a mask nor a feature name" },
	{ { "--bogus", NULL }, -EINVAL, "unknown option, or option without its "
	    "value: '--bogus'" },
	{ { "--socket", NULL }, -EINVAL, "option without its value" },
	{ { "stray", NULL }, -EINVAL, "unexpected argument 'stray'" },
	{ { "--help", NULL }, 1, NULL },
	{ { "--policy", "/x", NULL }, 0, NULL },
	{ { "--policy", "/x", "--allow-uid", "1", NULL }, -EINVAL,
	    "--policy excludes --allow-uid" },
	/* The site invariants go with a policy file or the command line. */
	{ { "--policy", "/x", "--invariants", "/i", NULL }, 0, NULL },
	{ { "--allow-uid", "1", "--invariants", "/i", NULL }, 0, NULL },
	{ { "--invariants", NULL }, -EINVAL, "option without its value" },
	{ { "--creation", "magic", NULL }, -EINVAL,
	    "--creation: expected auto, device or syscall, got 'magic'" },
	{ { "--log-burst", "0", NULL }, -EINVAL,
	    "--log-burst: expected a number from 1 to 1000000, got '0'" },
	{ { "--log-session-burst", "x", NULL }, -EINVAL,
	    "--log-session-burst: expected a number from 1 to 1000000" },
	{ { "--log-interval-ms", "1000001", NULL }, -EINVAL,
	    "--log-interval-ms: expected a number from 1 to 1000000" },
};

START_TEST(test_config_table)
{
	const char *argv[8] = { "uffd-brokerd" };
	struct broker_config cfg;
	char err[256] = "";
	int argc, rc;

	for (argc = 0; cases[_i].args[argc] != NULL; argc++)
		argv[argc + 1] = cases[_i].args[argc];
	argv[argc + 1] = NULL;
	rc = config_parse(argc + 1, (char **)argv, &cfg, err, sizeof(err));
	ck_assert_int_eq(rc, cases[_i].rc);
	if (cases[_i].err != NULL)
		ck_assert_msg(strstr(err, cases[_i].err) != NULL,
		    "case %d: message '%s' lacks '%s'", _i, err, cases[_i].err);
}
END_TEST

START_TEST(test_config_values)
{
	const char *argv[] = { "uffd-brokerd", "--allow-uid", "7",
	    "--max-uffds", "3", "--user-mode-only", "--socket", "/x/y", NULL };
	struct broker_config cfg;
	char err[256];

	ck_assert_int_eq(config_parse(8, (char **)argv, &cfg, err, sizeof(err)), 0);
	/* No --invariants: the broker looks for the default file. */
	ck_assert_ptr_null(cfg.invariants_path);
	ck_assert_uint_eq(cfg.n_allow_uids, 1);
	ck_assert_uint_eq(cfg.allow_uids[0], 7);
	ck_assert_uint_eq(cfg.cli_grant.max_uffds, 3);
	ck_assert(!cfg.cli_grant.kernel_faults);
	ck_assert(cfg.cli_rule && cfg.policy_path == NULL);
	ck_assert_str_eq(cfg.socket_path, "/x/y");
	/* The default grant never includes EVENT_FORK. */
	ck_assert_uint_eq(cfg.cli_grant.features & 2, 0);
	/* Log limits: per uid, per session, per 10 s. */
	ck_assert_uint_eq(cfg.log_burst, 100);
	ck_assert_uint_eq(cfg.log_session_burst, 20);
	ck_assert_uint_eq(cfg.log_interval_ms, 10000);
}

/* Every --allow-uid reaches the rule, up to the 32 a rule holds; a 33rd is
 * refused, not dropped. */
START_TEST(test_config_allow_uid_limit)
{
	const char *argv[2 + 2 * 33] = { "uffd-brokerd" };
	char uids[33][12], err[256];
	struct broker_config cfg;
	struct policy *p;
	int i, argc = 1;

	for (i = 0; i < 33; i++) {
		snprintf(uids[i], sizeof(uids[i]), "%d", 1000 + i);
		argv[argc++] = "--allow-uid";
		argv[argc++] = uids[i];
	}
	ck_assert_int_eq(config_parse(argc - 2, (char **)argv, &cfg, err,
	    sizeof(err)), 0);
	ck_assert_uint_eq(cfg.n_allow_uids, 32);
	p = policy_single("command-line", cfg.allow_uids, cfg.n_allow_uids,
	    &cfg.cli_grant);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(p->rules[0].nuids, 32);
	ck_assert_uint_eq(p->rules[0].uids[31], 1031);
	policy_free(p);
	ck_assert_int_eq(config_parse(argc, (char **)argv, &cfg, err,
	    sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "more than 32 uids") != NULL, "%s", err);
}
END_TEST

/* Names, as the policy file takes them: users and features. */
START_TEST(test_config_names)
{
	const char *argv[] = { "uffd-brokerd", "--allow-uid", "nobody",
	    "--features", "MISSING_SHMEM,UFFD_FEATURE_EVENT_REMOVE", NULL };
	struct broker_config cfg;
	char err[256];

	ck_assert_int_eq(config_parse(5, (char **)argv, &cfg, err, sizeof(err)), 0);
	ck_assert_uint_eq(cfg.n_allow_uids, 1);
	ck_assert_uint_eq(cfg.allow_uids[0], 65534);
	ck_assert_uint_eq(cfg.cli_grant.features, UFFD_FEATURE_MISSING_SHMEM |
	    UFFD_FEATURE_EVENT_REMOVE);
}
END_TEST

START_TEST(test_config_log_limits)
{
	const char *argv[] = { "uffd-brokerd", "--log-burst", "7",
	    "--log-session-burst", "3", "--log-interval-ms", "500", NULL };
	struct broker_config cfg;
	char err[256];

	ck_assert_int_eq(config_parse(7, (char **)argv, &cfg, err, sizeof(err)), 0);
	ck_assert_uint_eq(cfg.log_burst, 7);
	ck_assert_uint_eq(cfg.log_session_burst, 3);
	ck_assert_uint_eq(cfg.log_interval_ms, 500);
}
END_TEST

Suite *
make_config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("parse");

	tcase_add_loop_test(tc, test_config_table, 0,
	    sizeof(cases) / sizeof(cases[0]));
	tcase_add_test(tc, test_config_values);
	tcase_add_test(tc, test_config_log_limits);
	tcase_add_test(tc, test_config_allow_uid_limit);
	tcase_add_test(tc, test_config_names);
	suite_add_tcase(s, tc);
	return s;
}
