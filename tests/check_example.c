/* SPDX-License-Identifier: ISC */
/*
 * check_example.c - the multi-process VMM swap example (demo/vmm-swap.c), run
 * as nobody against a real broker: device processes with forked sessions, a
 * monitor serving every fault from a swap file, a remove event from a
 * balloon, a killed device found by the dead check and skipped by
 * register_regions.
 */
#include <fcntl.h>
#include <grp.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static const char *
example_path(void)
{
	const char *p = getenv("UFFD_VMM_SWAP");

	return p ? p : build_file("uffd-vmm-swap");
}

/*
 * Run the example as nobody; its stdout and stderr go to out. It runs from
 * a copy beside its library (its rpath is $ORIGIN): the checkout may be
 * where nobody cannot go (a root user's clone in /root, 0700).
 */
static int
run_example(const char *out, const char *devices)
{
	char prog[160], lib[160];
	const char *argv[] = { prog, "--socket", tb.sock,
	    "--devices", devices, "--mem-mib", "8", NULL };
	int rc;

	snprintf(prog, sizeof(prog), "%s/uffd-vmm-swap", tb.dir);
	snprintf(lib, sizeof(lib), "%s/libuffd-client.so.1", tb.dir);
	copy_file(example_path(), prog);
	copy_file(build_file("libuffd-client.so.1"), lib);
	rc = run_program(out, true, argv);
	unlink(prog);
	unlink(lib);
	return rc;
}

/* The output holds a line with both needles. */
static bool
output_has(const char *out, const char *needle1, const char *needle2)
{
	char line[512];
	bool found = false;
	FILE *f = fopen(out, "r");

	while (f != NULL && !found && fgets(line, sizeof(line), f) != NULL)
		found = strstr(line, needle1) != NULL &&
		    (needle2 == NULL || strstr(line, needle2) != NULL);
	if (f != NULL)
		fclose(f);
	return found;
}

static void
dump(const char *out)
{
	char line[512];
	FILE *f = fopen(out, "r");

	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		fprintf(stderr, "example: %s", line);
	if (f != NULL)
		fclose(f);
}

START_TEST(test_vmm_swap_example)
{
	char out[160];
	int rc;

	broker_start("--allow-uid", "65534", NULL);
	snprintf(out, sizeof(out), "%s/example.out", tb.dir);
	rc = run_example(out, "3");
	if (rc != 0)
		dump(out);
	ck_assert_int_eq(rc, 0);
	/* Three device processes and main: four uffds, each from its own session. */
	ck_assert(output_has(out, "monitor: holds 4 uffds", NULL));
	ck_assert(output_has(out, "4 live, 0 skipped", NULL));
	ck_assert(output_has(out, "all pages verified", "served from swap"));
	ck_assert(output_has(out, "monitor: remove event", "from device 0: 16 pages"));
	ck_assert(output_has(out, "ballooned pages read as zero", NULL));
	ck_assert(output_has(out, "dead check: uffd of device 2 is dead", NULL));
	ck_assert(output_has(out, "3 live, 1 skipped (process gone)", NULL));
	ck_assert(output_has(out, "surviving devices", "all pages verified"));
	ck_assert(output_has(out, "uffd-vmm-swap: ok", NULL));
	/* The broker saw three forked sessions join main's listener. */
	ck_assert(log_wait(1000, "event=session_open", "forked=yes"));
	ck_assert(log_wait(0, "event=session_joined", NULL));
	unlink(out);
	broker_stop();
}
END_TEST

Suite *
make_example_suite(void)
{
	Suite *s = suite_create("example");
	TCase *tc = tcase_create("vmm-swap");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_vmm_swap_example);
	suite_add_tcase(s, tc);
	return s;
}
