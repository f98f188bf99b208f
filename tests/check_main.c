/* SPDX-License-Identifier: ISC */
/*
 * check_main.c - the test runner: every suite, fork mode, as root against the
 * real kernel and a real uffd-brokerd.
 */
#include <ftw.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static int
remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(path);
}

int
main(int argc, char **argv)
{
	char dir[] = "/tmp/uffd-tests.XXXXXX";
	SRunner *sr;
	int failed;

	/* Re-exec'd from a path of a test's choosing, as a client (check_audit.c). */
	if (argc == 3 && strcmp(argv[1], "--audit-client") == 0)
		return audit_client_main(argv[2]);
	/* Exec'd by a client with its session's fds (check_integrity.c). */
	if (argc == 3 && strcmp(argv[1], "--exec-relay") == 0)
		return exec_relay_main(argv[2]);
	setvbuf(stdout, NULL, _IONBF, 0);
	if (geteuid() != 0) {
		fprintf(stderr, "check-uffd-broker: run as root: the tests start "
		    "a broker that opens /dev/userfaultfd and switch to uid %d\n",
		    NOBODY);
		return 1;
	}
	if (access("/dev/userfaultfd", R_OK) != 0) {
		fprintf(stderr, "check-uffd-broker: /dev/userfaultfd is missing "
		    "(Linux 6.1+ with CONFIG_USERFAULTFD)\n");
		return 1;
	}
	/* Every test's broker lives under one directory, removed at the end. */
	if (mkdtemp(dir) == NULL || chmod(dir, 0755) < 0 ||
	    setenv("UFFD_TEST_DIR", dir, 1) < 0) {
		perror("check-uffd-broker: test directory");
		return 1;
	}
	sr = srunner_create(make_config_suite());
	srunner_add_suite(sr, make_grant_suite());
	srunner_add_suite(sr, make_jail_suite());
	srunner_add_suite(sr, make_handshake_suite());
	srunner_add_suite(sr, make_liveness_suite());
	srunner_add_suite(sr, make_protocol_suite());
	srunner_add_suite(sr, make_daemon_suite());
	srunner_add_suite(sr, make_family_suite());
	srunner_add_suite(sr, make_example_suite());
	srunner_add_suite(sr, make_parity_suite());
	srunner_add_suite(sr, make_policy_suite());
	srunner_add_suite(sr, make_ctl_suite());
	srunner_add_suite(sr, make_hostile_suite());
	srunner_add_suite(sr, make_audit_suite());
	srunner_add_suite(sr, make_integrity_suite());
	srunner_add_suite(sr, make_verifier_suite());
	srunner_add_suite(sr, make_survival_suite());
	srunner_add_suite(sr, make_upgrade_suite());
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
	return failed == 0 ? 0 : 1;
}
