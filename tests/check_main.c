/*
 * check_main.c - the test runner: every suite, fork mode, as root against the
 * real kernel and a real uffd-brokerd.
 */
#include <stdio.h>
#include <unistd.h>

#include "harness.h"

int
main(void)
{
	SRunner *sr;
	int failed;

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
	sr = srunner_create(make_config_suite());
	srunner_add_suite(sr, make_grant_suite());
	srunner_add_suite(sr, make_jail_suite());
	srunner_add_suite(sr, make_handshake_suite());
	srunner_add_suite(sr, make_liveness_suite());
	srunner_add_suite(sr, make_protocol_suite());
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
