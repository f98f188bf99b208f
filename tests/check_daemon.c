/*
 * check_daemon.c - the daemon's frame: systemd socket activation, a clean
 * stop on SIGTERM, and the broker's own jail.
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

/* A field of /proc/PID/status, as text. */
static void
status_field(pid_t pid, const char *key, char *out, size_t len)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	out[0] = '\0';
	ck_assert_ptr_nonnull(f = fopen(path, "r"));
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			snprintf(out, len, "%s", line + klen + 2);
			out[strcspn(out, "\n")] = '\0';
		}
	fclose(f);
}

/* Jailed as a dedicated user, without capabilities, the broker still serves. */
START_TEST(test_broker_jailed_still_serves)
{
	char v[128];

	broker_start("--allow-uid", "65534", "--user", "64000:64000", NULL);
	ck_assert(log_wait(2000, "event=jailed", "uid=64000 gid=64000 caps=none"));
	status_field(tb.pid, "Uid", v, sizeof(v));
	ck_assert_str_eq(v, "64000\t64000\t64000\t64000");
	status_field(tb.pid, "CapEff", v, sizeof(v));
	ck_assert_str_eq(v, "0000000000000000");
	status_field(tb.pid, "CapBnd", v, sizeof(v));
	ck_assert_str_eq(v, "0000000000000000");
	status_field(tb.pid, "NoNewPrivs", v, sizeof(v));
	ck_assert_str_eq(v, "1");
	status_field(tb.pid, "Seccomp", v, sizeof(v));
	ck_assert_str_eq(v, "2");
	ck_assert_int_eq(run_client(client_gets_uffd, NULL, true), 0);
	ck_assert(log_wait(1000, "event=uffd_granted", NULL));
	broker_stop();
}
END_TEST

/* A policy that matches on exe keeps CAP_SYS_PTRACE, and only that. */
START_TEST(test_broker_keeps_ptrace_for_exe_rules)
{
	const char *path = test_file("exe.conf",
	    "[rule x]\nuid = 65534\nexe = /usr/bin/true\n");
	char v[128];

	broker_start("--policy", path, NULL);
	ck_assert(log_wait(2000, "event=jailed", "caps=cap_sys_ptrace"));
	status_field(tb.pid, "CapEff", v, sizeof(v));
	ck_assert_str_eq(v, "0000000000080000");
	broker_stop();
	unlink(path);
}
END_TEST

/*
 * Logging to syslog from inside the jail: socket, connect and send to
 * /dev/log are in the allow-list (whether a syslog daemon listens or not).
 */
START_TEST(test_broker_jailed_syslog)
{
	broker_start("--allow-uid", "65534", "--syslog", "--user", "64000", NULL);
	ck_assert_int_eq(run_client(client_gets_uffd, NULL, true), 0);
	ck_assert_int_eq(run_client(client_gets_uffd, NULL, true), 0);
	/* broker_stop() checks that it is alive and exits 0 on SIGTERM. */
	broker_stop();
}
END_TEST

/*
 * stderr on a character device (here /dev/null): stdio asks isatty() when
 * it first writes, which must not be the jail's first surprise.
 */
START_TEST(test_broker_jailed_stderr_devnull)
{
	char sock[128];
	const char *argv[] = { brokerd_path(), "--socket", sock,
	    "--allow-uid", "65534", NULL };
	int status, null, i;
	pid_t pid;

	/* Under the run's directory, which the runner removes whatever happens. */
	snprintf(sock, sizeof(sock), "%s/devnull.sock", getenv("UFFD_TEST_DIR"));
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		null = open("/dev/null", O_WRONLY);
		dup2(null, 2);
		execv(argv[0], (char **)argv);
		_exit(127);
	}
	for (i = 0; i < 200 && access(sock, F_OK) != 0; i++)
		usleep(10000);
	usleep(50000);
	ck_assert_int_eq(waitpid(pid, &status, WNOHANG), 0);	/* alive */
	kill(pid, SIGTERM);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "status 0x%x", status);
	unlink(sock);
}
END_TEST

/* A system call outside the allow-list kills the broker (test build hook). */
START_TEST(test_broker_jail_kills_forbidden_syscall)
{
	int status;

	ck_assert_int_eq(setenv("UFFD_BROKERD", "build/uffd-brokerd-hooks", 1), 0);
	broker_start("--allow-uid", "65534", NULL);
	unsetenv("UFFD_BROKERD");
	ck_assert(log_wait(2000, "event=jailed", NULL));
	ck_assert_int_eq(run_client(client_gets_uffd, NULL, true), 0);
	ck_assert_int_eq(kill(tb.pid, SIGUSR2), 0);
	ck_assert_int_eq(waitpid(tb.pid, &status, 0), tb.pid);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS,
	    "broker status 0x%x, expected death by SIGSYS", status);
	ck_assert(log_wait(0, "event=test_hook", NULL));
	tb.pid = 0;		/* reaped: broker_stop() only cleans up */
	broker_stop();
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
	tcase_add_test(tc, test_broker_jailed_still_serves);
	tcase_add_test(tc, test_broker_keeps_ptrace_for_exe_rules);
	tcase_add_test(tc, test_broker_jailed_syslog);
	tcase_add_test(tc, test_broker_jailed_stderr_devnull);
	tcase_add_test(tc, test_broker_jail_kills_forbidden_syscall);
	suite_add_tcase(s, tc);
	return s;
}
