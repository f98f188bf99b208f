/*
 * check_handshake.c - the device fd goes only to a peer proven to be covered
 * by the filter whose listener the broker holds.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "harness.h"

static void *
dummy_page(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);

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

/* The socket was closed by the broker: the next read sees the end. */
static bool
closed_by_broker(int sock)
{
	char buf[64];
	struct timeval tv = { .tv_sec = 2 };

	setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return recv(sock, buf, sizeof(buf), 0) == 0;
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
	/* The lender, not this peer, makes the call on that listener. */
	sync_signal(sv[0]);
	sync_wait(sv[0]);
	ck_assert(closed_by_broker(sock));
	ck_assert(log_wait(1000, "event=uffd_refused",
	    "caller has no session on this listener"));
	/* And this peer, unfiltered, has no way to the device either. */
	ck_assert_int_eq(client_verify(), -EBADF);
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

static int
library_refuses_threads(void *arg)
{
	struct uffdc_session *s;
	pthread_t thr;

	CHILD_CHECK(pthread_create(&thr, NULL, idle_thread, NULL) == 0);
	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == -EPERM);
	return 0;
}

START_TEST(test_session_open_needs_single_thread)
{
	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(run_client(library_refuses_threads, NULL, true), 0);
	broker_stop();
}
END_TEST

/* One listener offered for two sessions: the second is refused. */
static int
share_listener(void *arg)
{
	char reason[256];
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
	tcase_add_test(tc, test_shared_listener_refused);
	suite_add_tcase(s, tc);
	return s;
}
