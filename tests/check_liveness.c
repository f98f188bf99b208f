/* SPDX-License-Identifier: ISC */
/*
 * check_liveness.c - a client that dies or execs is noticed within a second,
 * and its slot is given back.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "harness.h"

struct holder {
	int ready[2];
	bool exec;		/* exec sleep after opening the session */
	bool keep_socket;	/* let the session socket survive the exec */
};

static int
hold_session(void *arg)
{
	struct holder *h = arg;
	struct uffdc_session *s;
	struct uffdc_uffd *u;

	close(h->ready[0]);
	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	CHILD_CHECK(uffdc_create(s, 0, 0, &u) == 0);
	if (h->keep_socket)
		CHILD_CHECK(fcntl(s->sock, F_SETFD, 0) == 0);
	sync_signal(h->ready[1]);
	if (h->exec) {
		/* Let the parent note the time first. */
		usleep(100000);
		execl("/bin/sleep", "sleep", "30", (char *)NULL);
		return 3;
	}
	pause();
	return 0;
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Holder opens the only session its uid may have; then it goes away. */
static void
check_gone_within_a_second(struct holder *h, const char *reason)
{
	char pidstr[32];
	double t0;
	pid_t child;

	ck_assert_int_eq(pipe2(h->ready, O_CLOEXEC), 0);
	child = spawn(hold_session, h, true);
	close(h->ready[1]);
	sync_wait(h->ready[0]);
	close(h->ready[0]);
	snprintf(pidstr, sizeof(pidstr), " pid=%d ", (int)child);
	ck_assert(log_wait(1000, "event=session_open", pidstr));
	/* The slot is taken: a second session of the same uid is refused. */
	ck_assert_int_eq(run_client(client_open_over_limit, NULL, true), 0);

	t0 = now_ms();
	if (!h->exec)
		kill(child, SIGKILL);
	ck_assert_msg(log_wait(1000 + (h->exec ? 100 : 0), "event=session_end",
	    pidstr), "death of %d not noticed within a second", (int)child);
	ck_assert(log_wait(0, pidstr, reason));
	fprintf(stderr, "liveness: %s noticed after %.0f ms\n", reason,
	    now_ms() - t0);
	/*
	 * An exec'd process keeps its uid's slot while it lives: it may hold
	 * uffds its old session granted (docs/security.md).
	 */
	if (h->exec) {
		ck_assert_int_eq(run_client(client_open_over_limit, NULL, true), 0);
		kill(child, SIGKILL);
	}
	reap(child);
	/* The slot is back. */
	ck_assert_int_eq(run_client(client_gets_uffd, NULL, true), 0);
}

/*
 * One exit, one reason: a client that closes its session and lives on is
 * logged as having closed it (the library unmaps its dummy page as it
 * does: that is no failed probe).
 */
static int
closes_and_waits(void *arg)
{
	const int *p = arg;
	struct uffdc_session *s;
	char c;

	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	/*
	 * As uffdc_session_close() does, but with the dummy page gone before
	 * the hang-up, not just after it: the broker's probe at the hang-up
	 * always finds it unusable (not ESRCH), whatever the timing.
	 */
	CHILD_CHECK(munmap(s->dummy, s->page_size) == 0);
	CHILD_CHECK(close(s->sock) == 0);
	CHILD_CHECK(read(p[0], &c, 1) == 1);
	return 0;
}

START_TEST(test_clean_close_reason)
{
	char end[64];
	int p[2], i;
	pid_t pid;

	/* Every line, however many sessions. */
	broker_start("--allow-uid", "65534", "--log-burst", "10000", NULL);
	for (i = 0; i < 20; i++) {
		ck_assert_int_eq(pipe(p), 0);
		pid = spawn(closes_and_waits, p, true);
		/* Sessions are numbered from 1, one a client here. */
		snprintf(end, sizeof(end), "event=session_end session=%d ", i + 1);
		ck_assert(log_wait(2000, end, "state=ready"));
		ck_assert_msg(log_wait(0, end, "reason=\"client closed the "
		    "session\""), "session %d: another reason", i + 1);
		ck_assert_int_eq(write(p[1], "x", 1), 1);
		ck_assert_int_eq(reap(pid), 0);
		close(p[0]);
		close(p[1]);
	}
	broker_stop();
}
END_TEST

/*
 * The same close, with the liveness tick first: the broker is stopped until
 * its timer has fired (a whole sweep is due), then the client closes its
 * session (page unmapped, socket closed) and lives on. The tick's probe
 * sees the page gone before the loop reads the hang-up: still a clean
 * close, not a failed probe.
 */
static int
closes_when_told(void *arg)
{
	const int *p = arg;
	struct uffdc_session *s;
	char c;

	close(p[1]);
	close(p[2]);
	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	sync_signal(p[3]);
	CHILD_CHECK(read(p[0], &c, 1) == 1);
	CHILD_CHECK(munmap(s->dummy, s->page_size) == 0);
	CHILD_CHECK(close(s->sock) == 0);
	sync_signal(p[3]);
	CHILD_CHECK(read(p[0], &c, 1) == 0);
	return 0;
}

START_TEST(test_clean_close_tick_first)
{
	int p[4];
	pid_t pid;

	broker_start("--allow-uid", "65534", "--probe-interval-ms", "50", NULL);
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(p + 2, O_CLOEXEC), 0);
	pid = spawn(closes_when_told, p, true);
	sync_wait(p[2]);
	ck_assert(log_wait(1000, "event=session_open", NULL));
	ck_assert_int_eq(kill(tb.pid, SIGSTOP), 0);
	usleep(150000);		/* three intervals: the timer has fired */
	sync_signal(p[1]);
	sync_wait(p[2]);	/* closed, and alive */
	ck_assert_int_eq(kill(tb.pid, SIGCONT), 0);
	ck_assert(log_wait(2000, "event=session_end", "state=ready"));
	ck_assert_msg(log_wait(0, "event=session_end", "reason=\"client closed "
	    "the session\""), "a clean close logged with another reason");
	close(p[1]);
	ck_assert_int_eq(reap(pid), 0);
	close(p[0]);
	close(p[2]);
	close(p[3]);
	broker_stop();
}
END_TEST

START_TEST(test_sigkill_noticed)
{
	struct holder h = { .exec = false };

	broker_start("--allow-uid", "65534", "--max-sessions-per-uid", "1", NULL);
	check_gone_within_a_second(&h, "reason=\"process exited");
	broker_stop();
}
END_TEST

START_TEST(test_exec_noticed_by_hangup)
{
	struct holder h = { .exec = true };

	broker_start("--allow-uid", "65534", "--max-sessions-per-uid", "1", NULL);
	check_gone_within_a_second(&h, "exec'd");
	broker_stop();
}
END_TEST

/* The socket survives the exec: only the dummy-page probe can tell. */
START_TEST(test_exec_noticed_by_probe)
{
	struct holder h = { .exec = true, .keep_socket = true };

	broker_start("--allow-uid", "65534", "--max-sessions-per-uid", "1",
	    "--probe-interval-ms", "500", NULL);
	check_gone_within_a_second(&h, "exec'd");
	broker_stop();
}
END_TEST

Suite *
make_liveness_suite(void)
{
	Suite *s = suite_create("liveness");
	TCase *tc = tcase_create("death");

	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_clean_close_reason);
	tcase_add_test(tc, test_clean_close_tick_first);
	tcase_add_test(tc, test_sigkill_noticed);
	tcase_add_test(tc, test_exec_noticed_by_hangup);
	tcase_add_test(tc, test_exec_noticed_by_probe);
	suite_add_tcase(s, tc);
	return s;
}
