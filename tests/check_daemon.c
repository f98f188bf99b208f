/* SPDX-License-Identifier: ISC */
/*
 * check_daemon.c - the daemon's frame: systemd socket activation, a clean
 * stop on SIGTERM that frees what the broker allocated, one broker per socket
 * path, and the broker's own jail.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "tool.h"
#include "uffd-client.h"

/*
 * A start that fails for a common reason says what to do: the socket's
 * directory missing; started as another user than root.
 */
START_TEST(test_start_failure_hints)
{
	const char *missing[] = { brokerd_path(), "--socket",
	    "/nonexistent-dir/uffd.sock", "--allow-uid", "0", NULL };
	char out[PATH_MAX], sock[PATH_MAX], dir[64], bin[96];
	char *log;

	snprintf(out, sizeof(out), "%s/hint.log", getenv("UFFD_TEST_DIR"));
	ck_assert_int_eq(run_program(out, false, missing), 1);
	log = read_whole(out);
	ck_assert_msg(strstr(log, "the directory /nonexistent-dir does not "
	    "exist: create it") != NULL, "%s", log);
	free(log);
	/*
	 * As nobody, with a socket path nobody may use. A copy of the broker
	 * in a directory of its own: the build may be under root's 0700 home.
	 */
	snprintf(dir, sizeof(dir), "/tmp/uffd-hint.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(chmod(dir, 0755), 0);
	snprintf(bin, sizeof(bin), "%s/uffd-brokerd", dir);
	copy_file(brokerd_path(), bin);
	ck_assert_int_eq(chmod(bin, 0755), 0);
	snprintf(sock, sizeof(sock), "%s/nobody.sock", getenv("UFFD_TEST_DIR"));
	{
		const char *as_nobody[] = { bin, "--socket", sock,
		    "--allow-uid", "0", NULL };

		ck_assert_int_eq(run_program(out, true, as_nobody), 1);
	}
	unlink(bin);
	rmdir(dir);
	log = read_whole(out);
	ck_assert_msg(strstr(log, "start uffd-brokerd as root") != NULL, "%s",
	    log);
	free(log);
	unlink(out);
}
END_TEST

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
		exec_brokerd((const char *[]){ brokerd_path(), "--allow-uid",
		    "65534", NULL });
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

/* The next datagram on fd, within timeout_ms, into buf ("" if none). */
static const char *
notify_next(int fd, char *buf, size_t len, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	ssize_t n;

	buf[0] = '\0';
	if (poll(&pfd, 1, timeout_ms) == 1 &&
	    (n = recv(fd, buf, len - 1, MSG_DONTWAIT)) > 0)
		buf[n] = '\0';
	return buf;
}

/*
 * The service manager's protocol (Type=notify): READY=1 once the broker
 * listens, RELOADING=1 (with MONOTONIC_USEC) and READY=1 around a SIGHUP
 * reload, STOPPING=1 at SIGTERM; at a socket path and an abstract name.
 */
START_TEST(test_sd_notify)
{
	const char *policy = test_file("notify.conf",
	    "[rule a]\nuid = 65534\nmode = kernel\n");
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char name[108], msg[256];
	socklen_t len;
	int fd;

	if (_i == 0) {
		snprintf(name, sizeof(name), "%s/notify.sock",
		    getenv("UFFD_TEST_DIR"));
		unlink(name);
		memcpy(sun.sun_path, name, strlen(name) + 1);
		len = sizeof(sun);
	} else {
		snprintf(name, sizeof(name), "@uffd-broker-test-notify-%d",
		    (int)getpid());
		memcpy(sun.sun_path + 1, name + 1, strlen(name) - 1);
		len = offsetof(struct sockaddr_un, sun_path) + strlen(name);
	}
	ck_assert_int_ge(fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, len), 0);
	setenv("NOTIFY_SOCKET", name, 1);
	broker_start("--policy", policy, NULL);
	unsetenv("NOTIFY_SOCKET");

	ck_assert_str_eq(notify_next(fd, msg, sizeof(msg), 2000),
	    "READY=1\nSTATUS=serving, policy rules: 1");
	ck_assert_int_eq(run_client(client_gets_uffd, NULL, true), 0);
	kill(tb.pid, SIGHUP);
	notify_next(fd, msg, sizeof(msg), 2000);
	ck_assert_msg(strncmp(msg, "RELOADING=1\nMONOTONIC_USEC=", 27) == 0,
	    "got '%s'", msg);
	ck_assert_str_eq(notify_next(fd, msg, sizeof(msg), 2000),
	    "READY=1\nSTATUS=serving, policy rules: 1");
	ck_assert(log_wait(2000, "policy_reload", "result=ok"));
	kill(tb.pid, SIGTERM);
	ck_assert_str_eq(notify_next(fd, msg, sizeof(msg), 2000), "STOPPING=1");
	broker_stop();
	/* Nothing else was sent. */
	ck_assert_str_eq(notify_next(fd, msg, sizeof(msg), 0), "");
	close(fd);
	if (_i == 0)
		unlink(name);
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

/*
 * uffd-brokerd on a path the test prepared, output to log (as broker_start()
 * does, without waiting for the socket). Returns its pid.
 */
static pid_t
exec_broker(const char *sock, const char *log)
{
	pid_t pid = fork();
	int fd;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0 ||
		    prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
			_exit(127);
		exec_brokerd((const char *[]){ brokerd_path(), "--socket", sock,
		    "--allow-uid", "65534", NULL });
		_exit(127);
	}
	return pid;
}

/*
 * Wait for a broker that must refuse to start: its exit code, or -1 if it
 * still runs after two seconds (it is killed then, without its clean-up).
 */
static int
wait_refused(pid_t pid)
{
	int status, i;

	for (i = 0; i < 200; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) :
			    128 + WTERMSIG(status);
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

static bool
file_has(const char *path, const char *needle)
{
	char buf[4096];
	size_t n;
	FILE *f;

	if ((f = fopen(path, "r")) == NULL)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return strstr(buf, needle) != NULL;
}

static bool
same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* A socket bound at path by the test; closed, it is a stale one. */
static int
bind_at(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return fd;
}

/*
 * A second broker on a live broker's path refuses to start, names the
 * first, and leaves its socket alone: the first still serves. lock: the
 * first one's lock file is there (else it was removed: the second must
 * find the first by connecting).
 */
static void
second_broker_refused(bool lock)
{
	char out[192], path[192], want[256];
	struct stat before, after;

	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(lstat(tb.sock, &before), 0);
	snprintf(path, sizeof(path), "%s.lock", tb.sock);
	if (lock)
		snprintf(want, sizeof(want), "another uffd-brokerd (pid %d) "
		    "holds %s", (int)tb.pid, path);
	else {
		(void)unlink(path);
		snprintf(want, sizeof(want), "another uffd-brokerd (pid %d) "
		    "answers on %s", (int)tb.pid, tb.sock);
	}
	snprintf(out, sizeof(out), "%s/second.log", tb.dir);
	ck_assert_int_eq(wait_refused(exec_broker(tb.sock, out)), 1);
	ck_assert_msg(file_has(out, want), "no \"%s\" in its output", want);
	ck_assert_int_eq(lstat(tb.sock, &after), 0);
	ck_assert(same_file(&before, &after));
	ck_assert_int_eq(run_client(client_gets_uffd, NULL, true), 0);
	unlink(out);
	broker_stop();
}

START_TEST(test_second_broker_refused_by_lock)
{
	second_broker_refused(true);
}
END_TEST

START_TEST(test_second_broker_refused_by_answer)
{
	second_broker_refused(false);
}
END_TEST

/* The path now names someone else's socket: the broker leaves it at exit. */
START_TEST(test_replaced_socket_left_alone)
{
	struct stat theirs, after;
	int fd, status;

	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(unlink(tb.sock), 0);
	fd = bind_at(tb.sock);
	ck_assert_int_eq(lstat(tb.sock, &theirs), 0);
	kill(tb.pid, SIGTERM);
	ck_assert_int_eq(waitpid(tb.pid, &status, 0), tb.pid);
	tb.pid = 0;
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_int_eq(lstat(tb.sock, &after), 0);
	ck_assert(same_file(&theirs, &after));
	ck_assert(log_wait(0, "left in place", tb.sock));
	close(fd);
	broker_stop();
}
END_TEST

/*
 * What a crashed broker leaves, a socket nobody listens on and an unlocked
 * lock file, does not keep the next one from starting.
 */
START_TEST(test_stale_socket_replaced)
{
	char lock[192];
	FILE *f;

	/* Borrow the harness's directory and paths. */
	broker_start("--allow-uid", "65534", NULL);
	broker_stop();
	ck_assert_int_eq(mkdir(tb.dir, 0755), 0);
	close(bind_at(tb.sock));
	snprintf(lock, sizeof(lock), "%s.lock", tb.sock);
	ck_assert_ptr_nonnull(f = fopen(lock, "w"));
	fputs("99999\n", f);
	fclose(f);
	tb.pid = exec_broker(tb.sock, tb.log);
	ck_assert(log_wait(5000, "event=ready", NULL));
	ck_assert_int_eq(run_client(client_gets_uffd, NULL, true), 0);
	broker_stop();
}
END_TEST

/*
 * A broker half-way through its start (lock taken, socket bound, not yet
 * listening) looks stale from outside: another must stop at the lock before
 * it touches the socket.
 */
START_TEST(test_lock_taken_before_unlink)
{
	char lock[192];
	struct stat before, after;
	int lockfd, fd;

	broker_start("--allow-uid", "65534", NULL);
	broker_stop();
	ck_assert_int_eq(mkdir(tb.dir, 0755), 0);
	snprintf(lock, sizeof(lock), "%s.lock", tb.sock);
	lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	ck_assert_int_ge(lockfd, 0);
	ck_assert_int_eq(flock(lockfd, LOCK_EX), 0);
	fd = bind_at(tb.sock);
	ck_assert_int_eq(lstat(tb.sock, &before), 0);
	ck_assert_int_eq(wait_refused(exec_broker(tb.sock, tb.log)), 1);
	ck_assert(log_wait(0, "holds", lock));
	ck_assert_int_eq(lstat(tb.sock, &after), 0);
	ck_assert(same_file(&before, &after));
	close(fd);
	close(lockfd);
	broker_stop();
}
END_TEST

/* Brokers started at the same moment on one path: one serves, the rest exit. */
START_TEST(test_simultaneous_brokers_one_serves)
{
	enum { N = 4 };
	char logs[N][192];
	pid_t pids[N];
	int status, i, t, exited = 0, winner = -1;

	broker_start("--allow-uid", "65534", NULL);
	broker_stop();
	ck_assert_int_eq(mkdir(tb.dir, 0755), 0);
	for (i = 0; i < N; i++) {
		snprintf(logs[i], sizeof(logs[i]), "%s/broker%d.log", tb.dir, i);
		pids[i] = exec_broker(tb.sock, logs[i]);
	}
	for (t = 0; t < 300 && exited < N - 1; t++) {
		for (i = 0; i < N; i++) {
			if (pids[i] <= 0 || waitpid(pids[i], &status, WNOHANG) !=
			    pids[i])
				continue;
			ck_assert_msg(WIFEXITED(status) &&
			    WEXITSTATUS(status) == 1, "broker %d: status 0x%x",
			    i, status);
			ck_assert(file_has(logs[i], "refusing to start"));
			pids[i] = 0;
			exited++;
		}
		usleep(10000);
	}
	for (i = 0; i < N; i++)
		if (pids[i] > 0) {
			ck_assert_msg(winner < 0, "brokers %d and %d both run",
			    winner, i);
			winner = i;
		}
	ck_assert_int_ge(winner, 0);
	tb.pid = pids[winner];
	snprintf(tb.log, sizeof(tb.log), "%s", logs[winner]);
	ck_assert(log_wait(5000, "event=ready", NULL));
	ck_assert_int_eq(run_client(client_gets_uffd, NULL, true), 0);
	for (i = 0; i < N; i++)
		if (i != winner)
			unlink(logs[i]);
	broker_stop();
}
END_TEST

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
		exec_brokerd(argv);
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

	ck_assert_int_eq(setenv("UFFD_BROKERD", build_file("uffd-brokerd-hooks"),
	    1), 0);
	broker_start("--allow-uid", "65534", NULL);
	unsetenv("UFFD_BROKERD");
	ck_assert(log_wait(2000, "event=jailed", NULL));
	ck_assert_int_eq(run_client(client_gets_uffd, NULL, true), 0);
	ck_assert_int_eq(kill(tb.pid, SIGUSR1), 0);
	ck_assert_int_eq(waitpid(tb.pid, &status, 0), tb.pid);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS,
	    "broker status 0x%x, expected death by SIGSYS", status);
	ck_assert(log_wait(0, "event=test_hook", NULL));
	tb.pid = 0;		/* reaped: broker_stop() only cleans up */
	broker_stop();
}
END_TEST

/*
 * A clean stop frees what the broker allocated: the AddressSanitizer build's
 * leak check at exit turns a leak (or a use after free on the way out) into
 * a non-zero exit status, which broker_stop() reports with the log. Stacks
 * are no roots: main()'s frame, which held the broker's state, is dead but
 * still scanned then. Without the jail, which would kill the checker's
 * ptrace.
 */
START_TEST(test_broker_frees_all_at_exit)
{
	const char *path = test_file("asan.conf", "[rule vmm]\nuid = 65534\n"
	    "cgroup = /**\nmode = kernel\n[rule never]\nexe = /nonexistent/a "
	    "/nonexistent/b\naction = deny\n");

	ck_assert_int_eq(setenv("UFFD_BROKERD", build_file("asan/uffd-brokerd"),
	    1), 0);
	/* ASan's runtime cannot run under valgrind (make valgrind). */
	unsetenv("UFFD_VALGRIND");
	ck_assert_int_eq(setenv("LSAN_OPTIONS", "use_stacks=0", 1), 0);
	broker_start("--policy", path, "--no-jail", NULL);
	unsetenv("UFFD_BROKERD");
	unsetenv("LSAN_OPTIONS");
	ck_assert_int_eq(run_client(client_gets_uffd, NULL, true), 0);
	ck_assert(log_wait(1000, "event=session_end", NULL));
	kill(tb.pid, SIGHUP);
	ck_assert(log_wait(1000, "event=policy_reload result=ok", NULL));
	broker_stop();
}
END_TEST

/*
 * Undefined behaviour in the broker's loop, its ticks and its closer is an
 * illegal instruction in the UBSan build (trap mode, so it runs jailed):
 * many ticks, sessions, unwanted fds and a closer replacement, then a clean
 * stop. (memmove(NULL, NULL, 0) at every tick killed such a broker once.)
 */
START_TEST(test_broker_ubsan_jailed)
{
	int sock, null, server, fd, i;
	char reason[256];

	ck_assert_int_eq(setenv("UFFD_BROKERD", build_file("ubsan/uffd-brokerd"),
	    1), 0);
	/* Valgrind 3.19 cannot read clang's DWARF 5 (make valgrind). */
	unsetenv("UFFD_VALGRIND");
	broker_start("--allow-uid", "0", "--allow-uid", "65534",
	    "--probe-interval-ms", "20", NULL);
	unsetenv("UFFD_BROKERD");
	ck_assert(log_wait(1000, "event=jailed", NULL));
	/* Ticks of a broker that has had no client yet, then of a busy one. */
	usleep(100000);
	null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	for (i = 0; i < 5; i++) {
		ck_assert_int_eq(run_client(client_gets_uffd, NULL, true), 0);
		sock = raw_connect();
		ck_assert_int_ge(sock, 0);
		ck_assert_int_eq(wire_send(sock, "x", 1, null), 0);
		ck_assert_int_gt(recv(sock, reason, sizeof(reason), 0), 0);
		close(sock);
	}
	/* A closer stuck on a lingering socket is replaced. */
	sock = raw_connect();
	fd = nest_in_unix_socket(lingering_socket(30, &server));
	ck_assert_int_eq(kill(tb.pid, SIGSTOP), 0);
	ck_assert_int_eq(wire_send(sock, "y", 1, fd), 0);
	close(fd);
	ck_assert_int_eq(kill(tb.pid, SIGCONT), 0);
	ck_assert(log_wait(3000, "event=closer_replaced", NULL));
	ck_assert_int_eq(run_client(client_gets_uffd, NULL, true), 0);
	close(sock);
	close(server);
	close(null);
	broker_stop();
}
END_TEST

Suite *
make_daemon_suite(void)
{
	Suite *s = suite_create("daemon");
	TCase *tc = tcase_create("daemon");

	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_start_failure_hints);
	tcase_add_test(tc, test_socket_activation);
	tcase_add_loop_test(tc, test_sd_notify, 0, 2);
	tcase_add_test(tc, test_sigterm_stops_cleanly);
	tcase_add_test(tc, test_second_broker_refused_by_lock);
	tcase_add_test(tc, test_second_broker_refused_by_answer);
	tcase_add_test(tc, test_replaced_socket_left_alone);
	tcase_add_test(tc, test_stale_socket_replaced);
	tcase_add_test(tc, test_lock_taken_before_unlink);
	tcase_add_test(tc, test_simultaneous_brokers_one_serves);
	tcase_add_test(tc, test_broker_jailed_still_serves);
	tcase_add_test(tc, test_broker_keeps_ptrace_for_exe_rules);
	tcase_add_test(tc, test_broker_jailed_syslog);
	tcase_add_test(tc, test_broker_jailed_stderr_devnull);
	tcase_add_test(tc, test_broker_jail_kills_forbidden_syscall);
	tcase_add_test(tc, test_broker_frees_all_at_exit);
	tcase_add_test(tc, test_broker_ubsan_jailed);
	suite_add_tcase(s, tc);
	return s;
}
