/* SPDX-License-Identifier: ISC */
/*
 * check_protocol.c - bad input gets a clear error or a closed session, loses
 * nothing, and the broker keeps serving everyone else.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "harness.h"

static void
expect(int sock, const void *buf, size_t len, int fd, WireStatus want,
    const char *text)
{
	char reason[256];
	WireStatus st;

	ck_assert_int_eq(raw_exchange(sock, buf, len, fd, &st, reason,
	    sizeof(reason)), 0);
	ck_assert_msg(st == want, "status %s, wanted %s (%s)",
	    wire_status_name(st), wire_status_name(want), reason);
	ck_assert_msg(strstr(reason, text) != NULL, "reason '%s' lacks '%s'",
	    reason, text);
}

static size_t
pack_hello_page(uint8_t *buf, uint32_t version, uint64_t page,
    uint32_t page_size)
{
	UffdBroker__V1__Hello hello = UFFD_BROKER__V1__HELLO__INIT;
	WireRequest req = UFFD_BROKER__V1__REQUEST__INIT;

	hello.version = version;
	hello.dummy_page = page;
	hello.page_size = page_size;
	req.body_case = UFFD_BROKER__V1__REQUEST__BODY_HELLO;
	req.hello = &hello;
	return uffd_broker__v1__request__pack(&req, buf);
}

static size_t
pack_hello(uint8_t *buf, uint32_t version)
{
	return pack_hello_page(buf, version, 0x100000, sysconf(_SC_PAGESIZE));
}

static size_t
pack_fork_hello(uint8_t *buf, uint32_t version)
{
	UffdBroker__V1__ForkHello fh = UFFD_BROKER__V1__FORK_HELLO__INIT;
	WireRequest req = UFFD_BROKER__V1__REQUEST__INIT;

	fh.version = version;
	fh.dummy_page = 0x100000;
	fh.page_size = sysconf(_SC_PAGESIZE);
	req.body_case = UFFD_BROKER__V1__REQUEST__BODY_FORK_HELLO;
	req.fork_hello = &fh;
	return uffd_broker__v1__request__pack(&req, buf);
}

static size_t
pack_attach(uint8_t *buf)
{
	UffdBroker__V1__Attach attach = UFFD_BROKER__V1__ATTACH__INIT;
	WireRequest req = UFFD_BROKER__V1__REQUEST__INIT;

	req.body_case = UFFD_BROKER__V1__REQUEST__BODY_ATTACH;
	req.attach = &attach;
	return uffd_broker__v1__request__pack(&req, buf);
}

/* Send a datagram with three fds at once. */
static void
send_three_fds(int sock, const void *buf, size_t len, int fd)
{
	union {
		char buf[CMSG_SPACE(3 * sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = control.buf, .msg_controllen = sizeof(control.buf),
	};
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
	int fds[3] = { fd, fd, fd };

	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(cmsg), fds, sizeof(fds));
	ck_assert_int_eq(sendmsg(sock, &msg, 0), (ssize_t)len);
}

START_TEST(test_bad_datagrams)
{
	static const uint8_t garbage[] = { 0xff, 0xff, 0xff, 0xff, 0x0f };
	static const uint8_t unknown_field[] = { 0x78, 0x01 };
	uint8_t big[5000], buf[256];
	int sock, baseline, pipefd[2], listener;
	char reason[256];
	WireStatus st;
	size_t len;

	broker_start("--allow-uid", "0", "--allow-uid", "65534", NULL);
	baseline = count_fds(tb.pid);
	ck_assert_int_eq(pipe2(pipefd, O_CLOEXEC), 0);
	sock = raw_connect();
	ck_assert_int_ge(sock, 0);

	expect(sock, garbage, sizeof(garbage), -1,
	    UFFD_BROKER__V1__STATUS__BAD_MESSAGE, "undecodable request");
	memset(big, 0x41, sizeof(big));
	expect(sock, big, sizeof(big), -1,
	    UFFD_BROKER__V1__STATUS__BAD_MESSAGE, "datagram longer than 1024");
	expect(sock, unknown_field, sizeof(unknown_field), -1,
	    UFFD_BROKER__V1__STATUS__BAD_MESSAGE, "unknown request type 0");
	len = pack_attach(buf);
	expect(sock, buf, len, pipefd[0],
	    UFFD_BROKER__V1__STATUS__OUT_OF_ORDER,
	    "attach is not allowed in session state hello");
	len = pack_hello(buf, 99);
	expect(sock, buf, len, -1, UFFD_BROKER__V1__STATUS__BAD_FD,
	    "hello needs one fd of kind anon_inode:seccomp notify");
	/* With the listener it needs, the version is what is wrong. */
	listener = spare_listener();
	expect(sock, buf, len, listener, UFFD_BROKER__V1__STATUS__BAD_VERSION,
	    "protocol version 99 is not spoken here");
	len = pack_fork_hello(buf, 99);
	expect(sock, buf, len, -1, UFFD_BROKER__V1__STATUS__BAD_VERSION,
	    "protocol version 99 is not spoken here");
	/* A request that takes no fd, with one (an fd is due in Hello). */
	len = pack_fork_hello(buf, WIRE_VERSION);
	expect(sock, buf, len, pipefd[0], UFFD_BROKER__V1__STATUS__BAD_FD,
	    "fork-hello takes no fd");
	/* A good Hello, but three fds: the first would do, none is taken. */
	len = pack_hello(buf, WIRE_VERSION);
	send_three_fds(sock, buf, len, listener);
	ck_assert_int_eq(raw_welcome(sock, &st, reason, sizeof(reason)), 0);
	ck_assert_msg(st == UFFD_BROKER__V1__STATUS__BAD_FD &&
	    strstr(reason, "at most 1 fd per request") != NULL, "%s: %s",
	    wire_status_name(st), reason);
	close(listener);

	/* Meanwhile another client is served as usual. */
	ck_assert_int_eq(run_client(client_gets_uffd, NULL, true), 0);

	/* The misbehaving session still gets answers. */
	ck_assert_int_eq(raw_exchange(sock, garbage, sizeof(garbage), -1, &st,
	    reason, sizeof(reason)), 0);
	ck_assert_int_eq(st, UFFD_BROKER__V1__STATUS__BAD_MESSAGE);
	close(sock);
	close(pipefd[0]);
	close(pipefd[1]);
	/*
	 * Every fd it was sent was closed (the other client's ended session
	 * is forgotten at the next tick, once its process has exited).
	 */
	ck_assert(log_wait(1000, "event=session_end", "state=hello"));
	for (int i = 0; i < 200 && count_fds(tb.pid) != baseline; i++)
		usleep(10000);
	ck_assert_int_eq(count_fds(tb.pid), baseline);
	broker_stop();
}
END_TEST

START_TEST(test_fd_flood_and_slow_reader)
{
	enum { CONNS = 100 };
	int socks[CONNS], i, baseline, pipefd[2], slow;
	uint8_t buf[256];
	size_t len;

	/* 100 connections of one uid are over its log burst: raise it. */
	broker_start("--allow-uid", "0", "--allow-uid", "65534",
	    "--max-sessions-per-uid", "200", "--log-burst", "1000",
	    "--log-session-burst", "1000", NULL);
	baseline = count_fds(tb.pid);
	ck_assert_int_eq(pipe2(pipefd, O_CLOEXEC), 0);
	len = pack_hello(buf, WIRE_VERSION);
	for (i = 0; i < CONNS; i++) {
		socks[i] = raw_connect();
		ck_assert_int_ge(socks[i], 0);
		send_three_fds(socks[i], buf, len, pipefd[0]);
	}
	/* A reader that never reads: its replies pile up until it is dropped. */
	slow = raw_connect();
	len = pack_attach(buf);
	for (i = 0; i < 3000; i++) {
		if (send(slow, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
			continue;
		if (errno != EAGAIN)
			break;		/* the broker hung up */
		usleep(1000);
	}
	ck_assert(log_wait(3000, "event=session_end",
	    "reason=\"reply could not be sent\""));
	ck_assert_int_eq(run_client(client_gets_uffd, NULL, true), 0);
	for (i = 0; i < CONNS; i++)
		close(socks[i]);
	close(slow);
	close(pipefd[0]);
	close(pipefd[1]);
	for (i = 0; i < 200 && count_fds(tb.pid) != baseline; i++)
		usleep(10000);
	ck_assert_int_eq(count_fds(tb.pid), baseline);
	broker_stop();
}
END_TEST

/* One uid's refused connections cannot fill the broker's session slots. */
START_TEST(test_refused_flood_bounded)
{
	int socks[40], i, hung = 0;
	char c;

	broker_start("--allow-uid", "65534", "--max-sessions", "32", NULL);
	for (i = 0; i < 40; i++) {
		socks[i] = raw_connect();
		ck_assert_int_ge(socks[i], 0);
	}
	/* Beyond eight pending, root's refused connections are hung up. */
	for (i = 0; i < 40; i++) {
		struct timeval tv = { .tv_usec = 200000 };

		setsockopt(socks[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (recv(socks[i], &c, 1, 0) == 0)
			hung++;
	}
	ck_assert_int_ge(hung, 40 - 8);
	ck_assert(log_wait(1000, "event=session_refused", "refused connections "
	    "of this uid are pending"));
	/* Everyone else is still served. */
	ck_assert_int_eq(run_client(client_gets_uffd, NULL, true), 0);
	for (i = 0; i < 40; i++)
		close(socks[i]);
	broker_stop();
}
END_TEST

/*
 * The dummy page must be one page of user memory: the broker registers it
 * on the probe and zeroes it every second, in the client's address space.
 */
START_TEST(test_hello_dummy_page_checked)
{
	const uint64_t psz = sysconf(_SC_PAGESIZE);
	const struct {
		uint64_t	page;
		uint32_t	size;
	} bad[] = {
		{ 0x100000, 2 * psz },		/* not the page size */
		{ 0x100000, 0 },
		{ 0, psz },			/* no page */
		{ 0x100000 + 8, psz },		/* not aligned */
		{ 1ULL << 56, psz },		/* not user space */
		{ -psz, psz },
	};
	uint8_t buf[256];
	size_t len, i;
	int sock, listener;

	/* The spare listener's filter is no fragment: nothing to prove here. */
	broker_start("--policy", test_file("page.conf", "[rule t]\nuid = 0\n"
	    "mode = kernel\nprove_filter = off\n"), NULL);
	listener = spare_listener();
	ck_assert_int_ge(sock = raw_connect(), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		len = pack_hello_page(buf, WIRE_VERSION, bad[i].page,
		    bad[i].size);
		expect(sock, buf, len, listener,
		    UFFD_BROKER__V1__STATUS__BAD_MESSAGE,
		    "is not a page of user memory");
	}
	len = pack_hello_page(buf, WIRE_VERSION, 0x100000, psz);
	expect(sock, buf, len, listener, UFFD_BROKER__V1__STATUS__OK,
	    "listener received");
	close(listener);
	close(sock);
	broker_stop();
}
END_TEST

Suite *
make_protocol_suite(void)
{
	Suite *s = suite_create("protocol");
	TCase *tc = tcase_create("bad-input");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_bad_datagrams);
	tcase_add_test(tc, test_hello_dummy_page_checked);
	tcase_add_test(tc, test_fd_flood_and_slow_reader);
	tcase_add_test(tc, test_refused_flood_bounded);
	suite_add_tcase(s, tc);
	return s;
}
