/* SPDX-License-Identifier: ISC */
/*
 * check_handshake.c - the device fd goes only to a peer proven to be covered
 * by the filter whose listener the broker holds.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "client.h"
#include "harness.h"

static void *
dummy_page(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ck_assert_ptr_ne(p, MAP_FAILED);
	return p;
}

static int
send_hello(int sock, void *dummy, int fd, WireStatus *st, char *reason)
{
	UffdBroker__V1__Hello hello = UFFD_BROKER__V1__HELLO__INIT;
	WireRequest req = UFFD_BROKER__V1__REQUEST__INIT;

	hello.version = WIRE_VERSION;
	hello.dummy_page = (uintptr_t)dummy;
	hello.page_size = 4096;
	req.body_case = UFFD_BROKER__V1__REQUEST__BODY_HELLO;
	req.hello = &hello;
	return raw_call(sock, &req, fd, st, reason, 256);
}

START_TEST(test_no_filter_no_device)
{
	int sock, pipefd[2];
	WireStatus st;
	char reason[256];
	void *dummy = dummy_page();

	broker_start("--allow-uid", "0", NULL);
	sock = raw_connect();
	ck_assert_int_ge(sock, 0);
	ck_assert_int_eq(send_hello(sock, dummy, -1, &st, reason), 0);
	ck_assert_int_eq(st, UFFD_BROKER__V1__STATUS__BAD_FD);
	ck_assert_ptr_nonnull(strstr(reason, "seccomp notify"));
	ck_assert_int_eq(pipe2(pipefd, O_CLOEXEC), 0);
	ck_assert_int_eq(send_hello(sock, dummy, pipefd[0], &st, reason), 0);
	ck_assert_int_eq(st, UFFD_BROKER__V1__STATUS__BAD_FD);
	/* Unfiltered, the verification ioctl is an ordinary bad ioctl. */
	ck_assert_int_eq(client_verify(), -EBADF);
	close(sock);
	close(pipefd[0]);
	close(pipefd[1]);
	broker_stop();
}
END_TEST

struct lender {
	int chan;		/* socketpair end to the borrower */
};

/* A covered process lends its listener, then makes the verification call. */
static int
lend_listener(void *arg)
{
	struct lender *l = arg;
	int listener = client_jail_install(), rc;

	CHILD_CHECK(listener >= 0);
	CHILD_CHECK(wire_send(l->chan, "L", 1, listener) == 0);
	close(listener);
	sync_wait(l->chan);
	rc = client_verify();
	CHILD_CHECK(rc == -EPERM);	/* the broker refused: no device fd */
	sync_signal(l->chan);
	/* Alive until told: its exit would end the session anyway. */
	sync_wait(l->chan);
	return 0;
}

START_TEST(test_borrowed_listener_no_device)
{
	struct lender l;
	int sv[2], listener, flags, sock;
	char buf[4], reason[256];
	WireStatus st;
	pid_t child;
	void *dummy = dummy_page();

	/*
	 * Unfiltered, this peer is refused at Hello by the verifier
	 * (check_verifier.c): without it, the check at verification holds.
	 */
	broker_start("--policy", test_file("borrow.conf", "[rule t]\nuid = 0\n"
	    "mode = kernel\nprove_filter = off\n"), NULL);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
	    sv), 0);
	l.chan = sv[1];
	child = spawn(lend_listener, &l, false);
	close(sv[1]);
	{
		struct pollfd pfd = { .fd = sv[0], .events = POLLIN };

		ck_assert_int_eq(poll(&pfd, 1, 5000), 1);
	}
	ck_assert_int_eq(wire_recv(sv[0], buf, sizeof(buf), &listener, &flags), 1);
	ck_assert_int_ge(listener, 0);

	sock = raw_connect();
	ck_assert_int_eq(send_hello(sock, dummy, listener, &st, reason), 0);
	close(listener);
	ck_assert_int_eq(st, UFFD_BROKER__V1__STATUS__OK);
	/*
	 * The lender, not this peer, makes the call on that listener: the
	 * listener was borrowed, and the session ends at once, while the
	 * lender (and so the listener) lives on.
	 */
	sync_signal(sv[0]);
	sync_wait(sv[0]);
	ck_assert(closed_by_broker(sock));
	ck_assert(log_wait(1000, "event=uffd_refused",
	    "caller has no session on this listener"));
	ck_assert(log_wait(0, "event=session_end",
	    "handshake notification from another process"));
	/* And this peer, unfiltered, has no way to the device either. */
	ck_assert_int_eq(client_verify(), -EBADF);
	sync_signal(sv[0]);
	ck_assert_int_eq(reap(child), 0);
	close(sock);
	close(sv[0]);
	broker_stop();
}
END_TEST

static void *
idle_thread(void *arg)
{
	pause();
	return NULL;
}

static int
threaded_handshake(void *arg)
{
	struct uffdc_session s = { .sock = -1 };
	UffdBroker__V1__Hello hello = UFFD_BROKER__V1__HELLO__INIT;
	WireRequest req = UFFD_BROKER__V1__REQUEST__INIT;
	WireReply *reply;
	pthread_t thr;
	int listener;

	s.sock = client_connect(tb.sock);
	CHILD_CHECK(s.sock >= 0 && client_welcome(&s) == 0);
	listener = client_jail_install();
	CHILD_CHECK(listener >= 0);
	CHILD_CHECK(pthread_create(&thr, NULL, idle_thread, NULL) == 0);
	hello.version = WIRE_VERSION;
	hello.dummy_page = (uintptr_t)dummy_page();
	hello.page_size = 4096;
	req.body_case = UFFD_BROKER__V1__REQUEST__BODY_HELLO;
	req.hello = &hello;
	CHILD_CHECK(client_call(&s, &req, listener, &reply) == 0);
	uffd_broker__v1__reply__free_unpacked(reply, NULL);
	close(listener);
	CHILD_CHECK(client_verify() == -EPERM);
	CHILD_CHECK(closed_by_broker(s.sock));
	return 0;
}

START_TEST(test_threads_at_handshake_no_device)
{
	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(run_client(threaded_handshake, NULL, true), 0);
	ck_assert(log_wait(1000, "event=uffd_refused",
	    "several threads at the handshake"));
	broker_stop();
}
END_TEST

/*
 * A multi-threaded process is refused by the library itself, before
 * anything it cannot undo: no filter, still dumpable, and it says why.
 */
static int
library_refuses_threads(void *arg)
{
	struct uffdc_session *s;
	pthread_t thr;

	(void)arg;
	CHILD_CHECK(prctl(PR_SET_DUMPABLE, 1) == 0);
	CHILD_CHECK(pthread_create(&thr, NULL, idle_thread, NULL) == 0);
	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == -EBUSY);
	CHILD_CHECK(strstr(uffdc_last_reason(), "has 2 threads") != NULL);
	CHILD_CHECK(prctl(PR_GET_SECCOMP) == 0);
	CHILD_CHECK(prctl(PR_GET_DUMPABLE) == 1);
	return 0;
}

/*
 * Under a filter of its own (jailed first), the library does not open
 * /proc to count: the broker refuses the threads at verification.
 */
static int
broker_refuses_threads(void *arg)
{
	struct uffdc_session *s;
	pthread_t thr;

	(void)arg;
	CHILD_CHECK(jail_allow_all() == 0);
	CHILD_CHECK(pthread_create(&thr, NULL, idle_thread, NULL) == 0);
	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == -EPERM);
	return 0;
}

START_TEST(test_session_open_needs_single_thread)
{
	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(run_client(library_refuses_threads, NULL, true), 0);
	ck_assert(!log_wait(0, "event=session_connect", NULL));
	ck_assert_int_eq(run_client(broker_refuses_threads, NULL, true), 0);
	ck_assert(log_wait(1000, "event=uffd_refused",
	    "several threads at the handshake"));
	broker_stop();
}
END_TEST

/*
 * No broker at the path: the errno, and words that say what to do; a
 * refused peer reads the broker's reason. Nothing irreversible either time.
 */
static int
no_broker_then_refused(void *arg)
{
	struct uffdc_session *s;

	(void)arg;
	CHILD_CHECK(uffdc_session_open("/nonexistent/uffd-broker.sock", &s) ==
	    -ENOENT);
	CHILD_CHECK(s == NULL);
	CHILD_CHECK(strstr(uffdc_last_reason(), "no broker listens at "
	    "/nonexistent/uffd-broker.sock") != NULL);
	CHILD_CHECK(strstr(uffdc_last_reason(), "is uffd-brokerd running?") !=
	    NULL);
	CHILD_CHECK(prctl(PR_GET_SECCOMP) == 0);
	/* uid 65534 matches no rule of this broker's. */
	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == -EACCES);
	CHILD_CHECK(strstr(uffdc_last_reason(), "65534") != NULL);
	CHILD_CHECK(prctl(PR_GET_SECCOMP) == 0);
	return 0;
}

START_TEST(test_open_failure_says_why)
{
	broker_start("--allow-uid", "0", NULL);
	ck_assert_int_eq(run_client(no_broker_then_refused, NULL, true), 0);
	broker_stop();
}
END_TEST

/* One listener offered for two sessions: the second is refused. */
static int
share_listener(void *arg)
{
	const int *hold = arg;	/* a pipe: keep the session until it closes */
	char reason[256], c;
	WireStatus st;
	void *dummy = dummy_page();
	int a, b, listener;

	a = raw_connect();
	b = raw_connect();
	CHILD_CHECK(a >= 0 && b >= 0);
	listener = client_jail_install();
	CHILD_CHECK(listener >= 0);
	CHILD_CHECK(send_hello(a, dummy, listener, &st, reason) == 0);
	CHILD_CHECK(st == UFFD_BROKER__V1__STATUS__OK);
	CHILD_CHECK(send_hello(b, dummy, listener, &st, reason) == 0);
	CHILD_CHECK(st == UFFD_BROKER__V1__STATUS__BAD_FD);
	CHILD_CHECK(strstr(reason, "already belongs to another session") != NULL);
	CHILD_CHECK(closed_by_broker(b));
	if (hold != NULL) {
		close(hold[1]);
		CHILD_CHECK(read(hold[0], &c, 1) == 0);
	}
	return 0;
}

START_TEST(test_shared_listener_refused)
{
	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(run_client(share_listener, NULL, true), 0);
	/* The broker was not wedged by it. */
	ck_assert_int_eq(run_client(library_refuses_threads, NULL, true), 0);
	broker_stop();
}
END_TEST

/*
 * The same with many listeners held: the broker finds a listener among
 * them by a binary search in kcmp's order of their files, which must hold
 * whatever order they arrive in (kcmp's order is per boot).
 */
#define MANY_LISTENERS	24
START_TEST(test_shared_listener_among_many)
{
	pid_t pids[MANY_LISTENERS];
	int hold[2], i;

	broker_start("--allow-uid", "65534", "--max-sessions-per-uid", "64",
	    NULL);
	ck_assert_int_eq(pipe(hold), 0);
	for (i = 0; i < MANY_LISTENERS; i++)
		pids[i] = spawn(share_listener, hold, true);
	close(hold[1]);
	/* Each child's duplicate is refused while the others hold theirs. */
	for (i = 0; i < MANY_LISTENERS; i++)
		ck_assert_int_eq(reap(pids[i]), 0);
	close(hold[0]);
	broker_stop();
}
END_TEST

/*
 * A bad probe creation: kernel faults, a flag the broker does not know, or
 * the path the broker does not supervise. The client keeps its own copy of
 * the probe, which the broker initialises: a kernel-fault probe would be a
 * kernel-fault uffd outside the quota (and, from a user-mode session, the
 * grant: those have no device fd, see check_integrity.c).
 */
static const struct bad_probe {
	bool		syscall;	/* userfaultfd(2), not the device */
	unsigned int	flags;
} bad_probes[] = {
	{ false, O_CLOEXEC },
	{ false, O_CLOEXEC | UFFD_USER_MODE_ONLY | O_APPEND },
	{ true, O_CLOEXEC | UFFD_USER_MODE_ONLY },
};

static int
bad_probe(void *arg)
{
	const struct bad_probe *bp = arg;
	struct hand h;
	int fd;

	CHILD_CHECK(hand_connect(&h) == 0);
	CHILD_CHECK(hand_jail(&h) == 0);
	CHILD_CHECK(hand_verify(&h) >= 0);
	if (bp->syscall)
		fd = syscall(SYS_userfaultfd, bp->flags);
	else
		fd = ioctl(h.devfd, USERFAULTFD_IOC_NEW, bp->flags);
	CHILD_CHECK(fd < 0 && errno == EPERM);
	CHILD_CHECK(closed_by_broker(h.sock));
	return 0;
}

START_TEST(test_bad_probe_creation)
{
	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(run_client(bad_probe, (void *)&bad_probes[_i], true),
	    0);
	ck_assert(log_wait(1000, "event=session_end", "bad probe creation"));
	broker_stop();
}
END_TEST

/*
 * The probe must be the uffd the broker let the client create, fresh: not
 * one the client made before its filter and initialised as it liked.
 */
static int
stale_probe(void *arg)
{
	struct uffdio_api api = { .api = UFFD_API,
	    .features = UFFD_FEATURE_MISSING_SHMEM };
	struct hand h;
	int old, fd;

	old = syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	CHILD_CHECK(old >= 0 && ioctl(old, UFFDIO_API, &api) == 0);
	CHILD_CHECK(hand_connect(&h) == 0);
	CHILD_CHECK(hand_jail(&h) == 0);
	CHILD_CHECK(hand_verify(&h) >= 0);
	fd = ioctl(h.devfd, USERFAULTFD_IOC_NEW, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	CHILD_CHECK(fd >= 0);
	CHILD_CHECK(hand_send(&h, UFFD_BROKER__V1__REQUEST__BODY_PROBE,
	    old) == 0);
	CHILD_CHECK(h.st == UFFD_BROKER__V1__STATUS__BAD_FD);
	CHILD_CHECK(strstr(h.reason, "not a fresh uffd") != NULL);
	CHILD_CHECK(closed_by_broker(h.sock));
	return 0;
}

START_TEST(test_probe_must_be_fresh)
{
	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(run_client(stale_probe, NULL, true), 0);
	ck_assert(log_wait(1000, "event=session_end", "probe uffd not fresh"));
	ck_assert(!log_wait(0, "event=session_open", NULL));
	broker_stop();
}
END_TEST

/*
 * A filter of the client's own that sends only userfaultfd(2) to a listener
 * (not the device ioctl, and UFFDIO_API allowed): verified by that call, it
 * would hold the device fd with nothing between it and the kernel.
 */
static int
verify_by_syscall(void *arg)
{
	struct uffdio_api api = { .api = UFFD_API };
	scmp_filter_ctx ctx;
	struct hand h;
	int listener, fd;

	CHILD_CHECK(hand_connect(&h) == 0);
	CHILD_CHECK((ctx = seccomp_init(SCMP_ACT_ALLOW)) != NULL);
	CHILD_CHECK(seccomp_rule_add(ctx, SCMP_ACT_NOTIFY,
	    SCMP_SYS(userfaultfd), 0) == 0);
	CHILD_CHECK(seccomp_load(ctx) == 0);
	CHILD_CHECK((listener = seccomp_notify_fd(ctx)) >= 0);
	CHILD_CHECK(hand_hello(&h, listener, WIRE_VERSION) == 0);
	CHILD_CHECK(h.st == UFFD_BROKER__V1__STATUS__OK);
	fd = syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	if (fd >= 0) {
		/* The device: a kernel-fault uffd, unsupervised, its own API. */
		int u = ioctl(fd, USERFAULTFD_IOC_NEW, O_CLOEXEC);

		fprintf(stderr, "verified by userfaultfd(2): uffd %d, API %d\n",
		    u, u >= 0 ? ioctl(u, UFFDIO_API, &api) : -1);
	}
	CHILD_CHECK(fd < 0 && errno == EPERM);
	CHILD_CHECK(closed_by_broker(h.sock));
	return 0;
}

/* (Under prove_filter = off: the verifier refuses such a filter first.) */
START_TEST(test_verification_by_device_ioctl_only)
{
	broker_start("--policy", test_file("syscall.conf", "[rule t]\n"
	    "uid = 65534\nmode = kernel\nprove_filter = off\n"), NULL);
	ck_assert_int_eq(run_client(verify_by_syscall, NULL, true), 0);
	ck_assert(log_wait(1000, "event=session_end",
	    "verification by the wrong system call"));
	broker_stop();
}
END_TEST

/*
 * The peer exits during its handshake, and a process under its filter takes
 * its pid and makes the verification call: a live process with the peer's
 * pid, not the peer (its pidfd says so). The broker is held stopped so that
 * it reads that call before the peer's exit: a notification posted and
 * withdrawn meanwhile puts the listener first on its epoll ready list.
 */
struct reuse {
	int	to_test[2];	/* pids and steps done */
	int	to_peer[2];	/* exit now */
	int	to_child[2];	/* the next step */
};

static void
on_signal(int sig)
{
	(void)sig;
}

/* The peer's child, under its filter. */
static int
pid_taker(struct reuse *r, pid_t peer)
{
	struct sigaction sa = { .sa_handler = on_signal };	/* no restart */
	pid_t taker;

	CHILD_CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
	sync_wait(r->to_child[0]);
	CHILD_CHECK(client_verify() == -EINTR);
	sync_signal(r->to_test[1]);
	sync_wait(r->to_child[0]);	/* the peer is reaped */
	if ((taker = fork_with_pid(peer)) == 0) {
		/* As the peer's pid, under its filter: the verification. */
		_exit(client_verify() >= 0 ? 1 : 0);
	}
	CHILD_CHECK(taker == peer);
	sync_signal(r->to_test[1]);
	pause();
	return 0;
}

static int
pid_reused_peer(void *arg)
{
	struct reuse *r = arg;
	struct hand h;
	pid_t me = getpid(), child;

	CHILD_CHECK(hand_connect(&h) == 0);
	CHILD_CHECK(hand_jail(&h) == 0);
	if ((child = fork()) == 0)
		_exit(pid_taker(r, me));
	CHILD_CHECK(write(r->to_test[1], &child, sizeof(child)) ==
	    sizeof(child));
	sync_wait(r->to_peer[0]);
	return 0;
}

START_TEST(test_verification_by_pid_reuser)
{
	struct reuse r;
	pid_t peer, child;

	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	ck_assert_int_eq(pipe2(r.to_test, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(r.to_peer, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(r.to_child, O_CLOEXEC), 0);
	broker_start("--allow-uid", "0", NULL);
	peer = spawn(pid_reused_peer, &r, false);
	ck_assert_int_eq(read(r.to_test[0], &child, sizeof(child)),
	    sizeof(child));
	broker_pause();
	/* A creation by the child, withdrawn by a signal before it is read. */
	sync_signal(r.to_child[1]);
	ck_assert(wait_in_syscall(child, __NR_ioctl, 2000));
	ck_assert_int_eq(kill(child, SIGUSR1), 0);
	sync_wait(r.to_test[0]);
	/* The peer exits; the child forks a process with its pid. */
	sync_signal(r.to_peer[1]);
	ck_assert_int_eq(reap(peer), 0);
	sync_signal(r.to_child[1]);
	sync_wait(r.to_test[0]);
	ck_assert(wait_in_syscall(peer, __NR_ioctl, 2000));
	broker_resume();
	ck_assert(log_wait(2000, "event=session_end",
	    "peer vanished during verification"));
	ck_assert(!log_wait(0, "event=session_verified", NULL));
	kill(peer, SIGKILL);
	kill(child, SIGKILL);
	reap(peer);
	reap(child);
	broker_stop();
}
END_TEST

Suite *
make_handshake_suite(void)
{
	Suite *s = suite_create("handshake");
	TCase *tc = tcase_create("coverage");

	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_no_filter_no_device);
	tcase_add_test(tc, test_borrowed_listener_no_device);
	tcase_add_test(tc, test_threads_at_handshake_no_device);
	tcase_add_test(tc, test_session_open_needs_single_thread);
	tcase_add_test(tc, test_open_failure_says_why);
	tcase_add_test(tc, test_shared_listener_refused);
	tcase_add_test(tc, test_shared_listener_among_many);
	tcase_add_loop_test(tc, test_bad_probe_creation, 0,
	    sizeof(bad_probes) / sizeof(bad_probes[0]));
	tcase_add_test(tc, test_probe_must_be_fresh);
	tcase_add_test(tc, test_verification_by_device_ioctl_only);
	tcase_add_test(tc, test_verification_by_pid_reuser);
	suite_add_tcase(s, tc);
	return s;
}
