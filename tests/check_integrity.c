/* SPDX-License-Identifier: ISC */
/*
 * check_integrity.c - a jailed process gets exactly the uffds its rule grants
 * (issue 9): the quota follows the address space, not the process; after
 * exec the old session is over; the device fd cannot be taken from a client
 * by another process of its user.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "harness.h"
#include "uffd-client.h"

#define QUOTA	2

/* What the CLONE_VM child found, for the test. */
struct relay {
	struct uffdc_session *s;
	pid_t	parent;
	int	report;		/* pipe: the child writes its results */
	int	rc[2];	/* the forked session's, the creation's */
};

/*
 * In the address space and fd table of the session's process, once that
 * process has exited: open a forked session and ask for one more uffd.
 */
static int
vm_sharer(void *arg)
{
	struct relay *r = arg;
	struct uffdc_session *cs;
	struct uffdc_uffd *u;
	int i;

	for (i = 0; i < 500 && getppid() == r->parent; i++)
		usleep(2000);
	usleep(100000);		/* the broker has seen the exit */
	r->rc[0] = uffdc_session_fork(r->s, &cs);
	r->rc[1] = r->rc[0] < 0 ? r->rc[0] : uffdc_create(cs, 0, 0, &u);
	if (write(r->report, r->rc, sizeof(r->rc)) != sizeof(r->rc))
		_exit(1);
	_exit(0);
}

/*
 * The relay of issue 9: a process takes its quota of uffds, shares them
 * with a CLONE_VM|CLONE_FILES child, and exits. Its uffds live on in the
 * same address space; a session there gets no more than the quota.
 */
static int
clone_vm_relay(void *arg)
{
	int *report = arg;
	static char stack[256 * 1024] __attribute__((aligned(16)));
	struct relay *r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct uffdc_uffd *u;
	int i;

	CHILD_CHECK(r != MAP_FAILED);
	r->parent = getpid();
	r->report = report[1];
	CHILD_CHECK(uffdc_session_open(tb.sock, &r->s) == 0);
	for (i = 0; i < QUOTA; i++)
		CHILD_CHECK(uffdc_create(r->s, 0, 0, &u) == 0);
	CHILD_CHECK(uffdc_create(r->s, 0, 0, &u) == -EDQUOT);
	CHILD_CHECK(clone(vm_sharer, stack + sizeof(stack),
	    CLONE_VM | CLONE_FILES | SIGCHLD, r) > 0);
	_exit(0);
}

START_TEST(test_clone_vm_relay)
{
	int report[2], got[2];

	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	broker_start("--allow-uid", "65534", "--max-uffds", "2",
	    "--probe-interval-ms", "50", NULL);
	ck_assert_int_eq(pipe2(report, O_CLOEXEC), 0);
	ck_assert_int_eq(run_client(clone_vm_relay, report, true), 0);
	close(report[1]);
	ck_assert_int_eq(read(report[0], got, sizeof(got)), sizeof(got));
	ck_assert_int_eq(waitpid(-1, NULL, 0) > 0, 1);	/* the sharer */
	close(report[0]);
	/* The sharer may have its own session, but not more uffds. */
	ck_assert_msg(got[1] == -EDQUOT, "forked session %d, creation %d: the "
	    "address space has %d uffds of a quota of %d", got[0], got[1],
	    got[1] == 0 ? QUOTA + 1 : QUOTA, QUOTA);
	/* Once the address space is gone, its quota is. */
	ck_assert(log_wait(2000, "event=session_released",
	    "address space gone"));
	ck_assert_int_eq(run_client(client_gets_uffd, NULL, true), 0);
	broker_stop();
}
END_TEST

/*
 * The image after exec: fds 3 (the old session's socket) and 4 (the device
 * fd) survived. Exits with a bit set for each thing it obtained.
 */
int
exec_relay_main(const char *sock)
{
	struct uffdc_session parent, *s;
	struct uffdc_uffd *u;
	int fd, rc = 0;

	/* A creation through the old session, as it was before exec. */
	fd = ioctl(4, USERFAULTFD_IOC_NEW, O_CLOEXEC);
	fprintf(stderr, "exec relay: creation on the old session: %d (%s)\n",
	    fd, fd < 0 ? strerror(errno) : "ok");
	if (fd >= 0)
		rc |= 1;
	/*
	 * Closes it, and opens a fresh one the way a forked child does. Exec
	 * made it dumpable again: undone, so that only the one-session rule
	 * stands between it and a fresh quota (the probe proof refuses a
	 * dumpable peer too).
	 */
	close(3);
	if (prctl(PR_SET_DUMPABLE, 0) < 0)
		return 64;
	usleep(100000);
	memset(&parent, 0, sizeof(parent));
	parent.path = (char *)sock;
	parent.devfd = 4;
	parent.sock = -1;
	if (uffdc_session_fork(&parent, &s) == 0) {
		rc |= 2;
		if (uffdc_create(s, 0, 0, &u) == 0)
			rc |= 4;
	}
	fprintf(stderr, "exec relay: fresh session and uffd: %d\n", rc);
	return rc;
}

static int
exec_relay(void *arg)
{
	struct uffdc_session *s;
	struct uffdc_uffd *u;

	(void)arg;
	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	CHILD_CHECK(uffdc_create(s, 0, 0, &u) == 0);
	CHILD_CHECK(dup2(s->sock, 3) == 3 && dup2(s->devfd, 4) == 4);
	execl("/proc/self/exe", "check-uffd-broker", "--exec-relay", tb.sock,
	    (char *)NULL);
	_exit(126);
}

START_TEST(test_exec_relay)
{
	broker_start("--allow-uid", "65534", "--max-uffds", "2",
	    "--probe-interval-ms", "1000", NULL);
	ck_assert_int_eq(run_client(exec_relay, NULL, true), 0);
	ck_assert(log_wait(1000, "event=uffd_refused", "address space gone"));
	ck_assert(log_wait(1000, "event=session_end", NULL));
	broker_stop();
}
END_TEST

/*
 * Another process of the client's user takes its device fd with
 * pidfd_getfd(2): the library made the client non-dumpable, so it cannot.
 */
static int
theft_victim(void *arg)
{
	int *p = arg;
	struct uffdc_session *s;
	char c;

	/* As a process started by its user is (spawn()'s setuid is not). */
	CHILD_CHECK(prctl(PR_SET_DUMPABLE, 1) == 0);
	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	CHILD_CHECK(write(p[1], &s->devfd, sizeof(int)) == sizeof(int));
	CHILD_CHECK(read(p[2], &c, 1) == 1);
	return 0;
}

struct theft {
	pid_t	victim;
	int	devfd;
};

static int
thief(void *arg)
{
	struct theft *t = arg;
	int pidfd = syscall(SYS_pidfd_open, t->victim, 0), fd;

	CHILD_CHECK(pidfd >= 0);
	fd = syscall(SYS_pidfd_getfd, pidfd, t->devfd, 0);
	if (fd >= 0) {
		fprintf(stderr, "thief: took the device fd; IOC_NEW: %d\n",
		    ioctl(fd, USERFAULTFD_IOC_NEW, O_CLOEXEC));
		return 1;
	}
	CHILD_CHECK(errno == EPERM);
	return 0;
}

START_TEST(test_device_fd_theft)
{
	struct theft t;
	int p[4];
	char c = 0;

	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(p + 2, O_CLOEXEC), 0);
	t.victim = spawn(theft_victim, p, true);
	ck_assert_int_eq(read(p[0], &t.devfd, sizeof(int)), sizeof(int));
	ck_assert_int_eq(run_client(thief, &t, true), 0);
	ck_assert_int_eq(write(p[3], &c, 1), 1);
	ck_assert_int_eq(reap(t.victim), 0);
	close(p[0]);
	close(p[1]);
	close(p[2]);
	close(p[3]);
	broker_stop();
}
END_TEST

/* A client that stays dumpable is refused the device fd. */
static int
dumpable_client(void *arg)
{
	struct uffdc_session *s;

	(void)arg;
	CHILD_CHECK(prctl(PR_SET_DUMPABLE, 1) == 0);
	CHILD_CHECK(uffdc_session_open_flags(tb.sock, UFFDC_KEEP_DUMPABLE,
	    &s) == -EPERM);
	CHILD_CHECK(prctl(PR_GET_DUMPABLE) == 1);
	return 0;
}

START_TEST(test_dumpable_peer_refused_device)
{
	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(run_client(dumpable_client, NULL, true), 0);
	ck_assert(log_wait(1000, "event=uffd_refused", "dumpable"));
	broker_stop();
}
END_TEST

/* Does this process hold an fd on path? */
static bool
holds_fd_on(const char *path)
{
	char link[64], target[256];
	ssize_t n;
	int fd;

	for (fd = 0; fd < 1024; fd++) {
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strcmp(target, path) == 0)
			return true;
	}
	return false;
}

/*
 * A user-mode grant needs no device fd (any process may create a user-mode
 * uffd by userfaultfd(2)): the session creates through the supervised
 * system call and never holds /dev/userfaultfd, and the device ioctl is no
 * way to one.
 */
static int
user_mode_client(void *arg)
{
	struct uffdc_session *s;
	struct uffdc_uffd *u;

	(void)arg;
	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	CHILD_CHECK(s->via_syscall && s->devfd < 0);
	CHILD_CHECK(!holds_fd_on("/dev/userfaultfd"));
	CHILD_CHECK(uffdc_create(s, 0, UFFDC_USER_MODE_ONLY, &u) == 0);
	CHILD_CHECK(uffdc_create(s, 0, 0, &u) == -EACCES);
	/* The verification ioctl earns nothing here. */
	CHILD_CHECK(ioctl(-1, USERFAULTFD_IOC_NEW, 0) == -1 && errno == EPERM);
	CHILD_CHECK(!holds_fd_on("/dev/userfaultfd"));
	return 0;
}

START_TEST(test_user_mode_no_device_fd)
{
	broker_start("--allow-uid", "65534", "--user-mode-only", NULL);
	ck_assert_int_eq(run_client(user_mode_client, NULL, true), 0);
	ck_assert(log_wait(1000, "event=session_open", "creation=syscall"));
	ck_assert(!log_wait(0, "event=session_verified", NULL));
	broker_stop();
}
END_TEST

/*
 * A decoy probe: the client forks a decoy before its filter (so the decoy
 * has the dummy page's mapping and no filter), the decoy makes a fresh
 * user-mode uffd and passes it over, and the client sends that as its
 * probe. The broker would then watch the decoy's address space for the
 * client's: its liveness, exec and address-space sharing. The verifier
 * writes a token through the probe and reads the client's page: refused.
 */
static int
decoy_probe(void *arg)
{
	struct hand h;
	int sv[2], fd, decoy_fd = -1, flags, i;
	char buf[4];
	pid_t decoy;

	(void)arg;
	CHILD_CHECK(hand_connect(&h) == 0);	/* maps the dummy page */
	CHILD_CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
	    sv) == 0);
	if ((decoy = fork()) == 0) {
		fd = syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
		if (fd < 0 || wire_send(sv[1], "d", 1, fd) < 0)
			_exit(1);
		pause();
		_exit(0);
	}
	CHILD_CHECK(decoy > 0);
	for (i = 0; i < 500 && wire_recv(sv[0], buf, sizeof(buf), &decoy_fd,
	    &flags) == -EAGAIN; i++)
		usleep(2000);
	CHILD_CHECK(decoy_fd >= 0);
	CHILD_CHECK(hand_jail(&h) == 0);
	CHILD_CHECK(hand_verify(&h) >= 0);
	fd = ioctl(h.devfd, USERFAULTFD_IOC_NEW, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	CHILD_CHECK(fd >= 0);
	CHILD_CHECK(hand_send(&h, UFFD_BROKER__V1__REQUEST__BODY_PROBE,
	    decoy_fd) == 0);
	kill(decoy, SIGKILL);
	waitpid(decoy, NULL, 0);
	if (h.st == UFFD_BROKER__V1__STATUS__OK)
		fprintf(stderr, "decoy probe: the session is ready on the "
		    "decoy's uffd\n");
	CHILD_CHECK(h.st == UFFD_BROKER__V1__STATUS__DENIED);
	CHILD_CHECK(strstr(h.reason, "not bound to the peer's address space"));
	return 0;
}

START_TEST(test_decoy_probe_refused)
{
	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(run_client(decoy_probe, NULL, true), 0);
	ck_assert(log_wait(1000, "event=session_refused", "probe not proven"));
	/* The library's own probe is proven. */
	ck_assert_int_eq(run_client(client_gets_uffd, NULL, true), 0);
	broker_stop();
}
END_TEST

/* The probe creation, then the Probe with that uffd: the reply in h. */
static void
send_own_probe(struct hand *h)
{
	int fd = ioctl(h->devfd, USERFAULTFD_IOC_NEW,
	    O_CLOEXEC | UFFD_USER_MODE_ONLY);

	CHILD_CHECK(fd >= 0);
	CHILD_CHECK(hand_send(h, UFFD_BROKER__V1__REQUEST__BODY_PROBE, fd) == 0);
	close(fd);
}

/*
 * A dummy page that another address space shares (MAP_SHARED, a decoy's
 * too) would show the decoy's token: refused before any token is written.
 */
static int
shared_dummy(void *arg)
{
	struct hand h;

	(void)arg;
	CHILD_CHECK(hand_connect(&h) == 0);
	CHILD_CHECK(munmap(h.dummy, h.page_size) == 0);
	CHILD_CHECK(mmap(h.dummy, h.page_size, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == h.dummy);
	CHILD_CHECK(hand_jail(&h) == 0);
	CHILD_CHECK(hand_verify(&h) >= 0);
	send_own_probe(&h);
	CHILD_CHECK(h.st == UFFD_BROKER__V1__STATUS__DENIED);
	CHILD_CHECK(strstr(h.reason, "not untouched private anonymous"));
	return 0;
}

START_TEST(test_shared_dummy_page_refused)
{
	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(run_client(shared_dummy, NULL, true), 0);
	broker_stop();
}
END_TEST

/*
 * Dumpable again after verification: another process of its user could
 * write the verifier's token into its page (process_vm_writev) for a decoy.
 */
static int
dumpable_at_probe(void *arg)
{
	struct hand h;

	(void)arg;
	CHILD_CHECK(hand_connect(&h) == 0);
	CHILD_CHECK(hand_jail(&h) == 0);
	CHILD_CHECK(hand_verify(&h) >= 0);
	CHILD_CHECK(prctl(PR_SET_DUMPABLE, 1) == 0);
	send_own_probe(&h);
	CHILD_CHECK(h.st == UFFD_BROKER__V1__STATUS__DENIED);
	CHILD_CHECK(strstr(h.reason, "dumpable"));
	return 0;
}

START_TEST(test_dumpable_at_probe_refused)
{
	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(run_client(dumpable_at_probe, NULL, true), 0);
	broker_stop();
}
END_TEST

Suite *
make_integrity_suite(void)
{
	Suite *s = suite_create("integrity");
	TCase *tc = tcase_create("grants");

	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_clone_vm_relay);
	tcase_add_test(tc, test_exec_relay);
	tcase_add_test(tc, test_device_fd_theft);
	tcase_add_test(tc, test_dumpable_peer_refused_device);
	tcase_add_test(tc, test_user_mode_no_device_fd);
	tcase_add_test(tc, test_decoy_probe_refused);
	tcase_add_test(tc, test_shared_dummy_page_refused);
	tcase_add_test(tc, test_dumpable_at_probe_refused);
	suite_add_tcase(s, tc);
	return s;
}
