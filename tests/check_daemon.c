/*
 * check_daemon.c - the daemon's frame: systemd socket activation and a clean
 * stop on SIGTERM.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "uffd-client.h"

/* As systemd does: bind the socket, pass it as fd 3 with LISTEN_PID/FDS. */
START_TEST(test_socket_activation)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd, status;

	/* Borrow the harness's directory and paths, then replace the broker. */
	broker_start("--allow-uid", "65534", NULL);
	broker_stop();
	ck_assert_int_eq(mkdir(tb.dir, 0755), 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", tb.sock);
	fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(chmod(tb.sock, 0666), 0);
	ck_assert_int_eq(listen(fd, 16), 0);

	tb.pid = fork();
	ck_assert_int_ge(tb.pid, 0);
	if (tb.pid == 0) {
		char pid[16];
		int log = open(tb.log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		snprintf(pid, sizeof(pid), "%d", (int)getpid());
		if (log < 0 || dup2(log, 2) < 0 || dup2(fd, 3) < 0)
			_exit(127);
		setenv("LISTEN_PID", pid, 1);
		setenv("LISTEN_FDS", "1", 1);
		execl(brokerd_path(), "uffd-brokerd", "--allow-uid",
		    "65534", (char *)NULL);
		_exit(127);
	}
	close(fd);
	ck_assert(log_wait(2000, "event=start", "activated=yes"));
	ck_assert_int_eq(run_client(client_gets_uffd, NULL, true), 0);
	/* The socket belongs to systemd: the broker leaves it in place. */
	kill(tb.pid, SIGTERM);
	ck_assert_int_eq(waitpid(tb.pid, &status, 0), tb.pid);
	tb.pid = 0;
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_int_eq(access(tb.sock, F_OK), 0);
	broker_stop();
}
END_TEST

START_TEST(test_sigterm_stops_cleanly)
{
	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(run_client(client_gets_uffd, NULL, true), 0);
	kill(tb.pid, SIGTERM);
	ck_assert(log_wait(2000, "event=stop", NULL));
	/* broker_stop() checks exit status 0; the socket is gone. */
	broker_stop();
	ck_assert_int_eq(access(tb.sock, F_OK), -1);
}
END_TEST

Suite *
make_daemon_suite(void)
{
	Suite *s = suite_create("daemon");
	TCase *tc = tcase_create("daemon");

	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_socket_activation);
	tcase_add_test(tc, test_sigterm_stops_cleanly);
	suite_add_tcase(s, tc);
	return s;
}
