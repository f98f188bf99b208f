/* SPDX-License-Identifier: ISC */
/*
 * harness.c - start and stop a real uffd-brokerd, fork clients, speak the
 * protocol raw.
 */
#include <errno.h>
#include <netinet/in.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "harness.h"
#include "tool.h"

struct broker_proc tb;
unsigned long broker_nofile;

const char *
brokerd_path(void)
{
	const char *p = getenv("UFFD_BROKERD");

	return p ? p : build_file("uffd-brokerd");
}

const char *
build_file(const char *name)
{
	static char paths[4][PATH_MAX];
	static unsigned int next;
	const char *dir = getenv("UFFD_BUILD");
	char *p = paths[next++ % 4];

	snprintf(p, PATH_MAX, "%s/%s", dir ? dir : "build", name);
	return p;
}

bool
under_valgrind(void)
{
	const char *vg = getenv("UFFD_VALGRIND");

	return vg != NULL && *vg != '\0';
}

const char *const *
valgrind_argv(const char *const *argv)
{
	enum { MAX = 64 };
	const char **av;
	char *words, *w, *save = NULL;
	int n = 0;

	if (!under_valgrind())
		return argv;
	ck_assert_ptr_nonnull(words = strdup(getenv("UFFD_VALGRIND")));
	ck_assert_ptr_nonnull(av = calloc(MAX, sizeof(*av)));
	for (w = strtok_r(words, " \t", &save); w != NULL && n < MAX / 2;
	    w = strtok_r(NULL, " \t", &save))
		av[n++] = w;
	for (; *argv != NULL && n < MAX - 1; argv++)
		av[n++] = *argv;
	return av;	/* for an exec: never freed */
}

void
exec_brokerd(const char *const *argv)
{
	argv = valgrind_argv(argv);
	execvp(argv[0], (char *const *)argv);
}

void
broker_start(const char *arg, ...)
{
	struct sockaddr_un notify = { .sun_family = AF_UNIX };
	const char *argv[32];
	int argc = 0, i, nfd = -1;
	bool own_notify;
	va_list ap;

	memset(&tb, 0, sizeof(tb));
	snprintf(tb.dir, sizeof(tb.dir), "%s/broker.XXXXXX",
	    getenv("UFFD_TEST_DIR") ? getenv("UFFD_TEST_DIR") : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tb.dir));
	ck_assert_int_eq(chmod(tb.dir, 0755), 0);
	snprintf(tb.sock, sizeof(tb.sock), "%s/broker.sock", tb.dir);
	snprintf(tb.log, sizeof(tb.log), "%s/broker.log", tb.dir);

	argv[argc++] = brokerd_path();
	argv[argc++] = "--socket";
	argv[argc++] = tb.sock;
	va_start(ap, arg);
	for (; arg != NULL && argc < 30; arg = va_arg(ap, const char *))
		argv[argc++] = arg;
	va_end(ap);
	argv[argc] = NULL;

	/*
	 * Ready when the broker says so (READY=1 on $NOTIFY_SOCKET, sent once
	 * it listens), unless the test listens for that itself.
	 */
	own_notify = getenv("NOTIFY_SOCKET") == NULL;
	if (own_notify) {
		snprintf(notify.sun_path, sizeof(notify.sun_path), "%s/notify",
		    tb.dir);
		ck_assert_int_ge(nfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC,
		    0), 0);
		ck_assert_int_eq(bind(nfd, (struct sockaddr *)&notify,
		    sizeof(notify)), 0);
	}
	tb.pid = fork();
	ck_assert_int_ge(tb.pid, 0);
	if (tb.pid == 0) {
		int fd = open(tb.log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		/* A test that fails half-way takes its broker down with it. */
		struct rlimit nofile = { broker_nofile, broker_nofile +
		    (under_valgrind() ? VALGRIND_RESERVED_FDS : 0) };

		if (fd < 0 || dup2(fd, 2) < 0 ||
		    prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 ||
		    (broker_nofile && setrlimit(RLIMIT_NOFILE, &nofile) < 0) ||
		    (own_notify && setenv("NOTIFY_SOCKET", notify.sun_path, 1) < 0))
			_exit(127);
		exec_brokerd(argv);
		_exit(127);
	}
	if (own_notify) {
		struct pollfd pfd = { .fd = nfd, .events = POLLIN };
		char msg[256];
		ssize_t n = 0;

		/* Generous: a sanitizer or valgrind build starts slowly. */
		while (poll(&pfd, 1, 20000) == 1 &&
		    (n = recv(nfd, msg, sizeof(msg) - 1, 0)) > 0) {
			msg[n] = '\0';
			if (strncmp(msg, "READY=1", 7) == 0)
				break;
		}
		close(nfd);
		unlink(notify.sun_path);
		ck_assert_msg(n > 0 && strncmp(msg, "READY=1", 7) == 0,
		    "broker did not report ready (see %s)", tb.log);
		ck_assert(socket_listening(tb.sock));
		return;
	}
	/* Listening, not merely bound: a connect would be refused between. */
	for (i = 0; i < 200; i++) {
		if (socket_listening(tb.sock))
			return;
		usleep(10000);
	}
	ck_abort_msg("broker did not create %s", tb.sock);
}

/*
 * Valgrind's report in a broker's log (make valgrind): an error marker
 * (--error-markers), or errors summed up at an exit. The log is kept in
 * $UFFD_VALGRIND_REPORTS (it goes with the broker's directory).
 */
static bool
valgrind_reported(const char *log)
{
	const char *p;

	if (strstr(log, VALGRIND_ERROR_MARKER) != NULL)
		return true;
	for (p = log; (p = strstr(p, "ERROR SUMMARY: ")) != NULL; p += 15)
		if (p[15] != '0')
			return true;
	return false;
}

static void
keep_report(const char *log, pid_t broker)
{
	const char *dir = getenv("UFFD_VALGRIND_REPORTS");
	char path[PATH_MAX];
	FILE *f;

	if (dir == NULL)
		return;
	/* A broker by its pid; any other program by the test's. */
	if (broker > 0)
		snprintf(path, sizeof(path), "%s/test-%d-broker-%d.log", dir,
		    (int)getpid(), (int)broker);
	else
		snprintf(path, sizeof(path), "%s/test-%d.log", dir,
		    (int)getpid());
	if ((f = fopen(path, "w")) != NULL) {
		fputs(log, f);
		fclose(f);
		fprintf(stderr, "(kept as %s)\n", path);
	}
}

void
valgrind_check_output(const char *path, const char *what)
{
	char *out = read_whole(path);
	bool vg = valgrind_reported(out);

	if (vg) {
		fprintf(stderr, "--- %s's output with a valgrind report ---\n%s",
		    what, out);
		keep_report(out, 0);
	}
	free(out);
	ck_assert_msg(!vg, "valgrind reported on %s (above)", what);
}

/* A sanitizer's or valgrind's report in the broker's log fails the test. */
static void
sanitizer_reports(pid_t broker)
{
	char *log = read_whole(tb.log);
	bool san = log != NULL && (strstr(log, "Sanitizer") != NULL ||
	    strstr(log, "runtime error:") != NULL);
	bool vg = log != NULL && valgrind_reported(log);

	if (san || vg) {
		fprintf(stderr, "--- broker log with a %s report ---\n%s",
		    san ? "sanitizer" : "valgrind", log);
		keep_report(log, broker);
	}
	free(log);
	ck_assert_msg(!san, "the broker's sanitizer reported (above)");
	ck_assert_msg(!vg, "valgrind reported on the broker (above)");
}

void
broker_stop(void)
{
	pid_t pid = tb.pid;
	char path[192];
	int status = 0;

	if (pid > 0) {
		kill(pid, SIGTERM);
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		tb.pid = 0;
	}
	/* Also of a broker the test reaped itself. */
	if (tb.log[0] != '\0' && access(tb.log, F_OK) == 0)
		sanitizer_reports(pid);
	if (pid > 0) {
		if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
			FILE *f = fopen(tb.log, "r");
			char line[512];

			while (f && fgets(line, sizeof(line), f))
				fputs(line, stderr);
			if (f)
				fclose(f);
		}
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "broker did not exit cleanly (status 0x%x)", status);
	}
	unlink(tb.sock);
	snprintf(path, sizeof(path), "%s.lock", tb.sock);
	unlink(path);
	unlink(tb.log);
	snprintf(path, sizeof(path), "%s", tb.dir);
	rmdir(path);
}

bool
log_wait(int timeout_ms, const char *needle1, const char *needle2)
{
	char line[1024];
	int waited;

	for (waited = 0; waited <= timeout_ms; waited += 10) {
		FILE *f = fopen(tb.log, "r");

		while (f && fgets(line, sizeof(line), f)) {
			if (strstr(line, needle1) &&
			    (needle2 == NULL || strstr(line, needle2))) {
				fclose(f);
				return true;
			}
		}
		if (f)
			fclose(f);
		usleep(10000);
	}
	return false;
}

/*
 * Where valgrind's own fds begin in a process it runs (its soft limit less
 * its reserve), or INT_MAX in one it does not.
 */
static int
valgrind_fds_from(pid_t pid)
{
	char path[64], exe[PATH_MAX], line[256];
	unsigned long soft;
	int from = INT_MAX;
	ssize_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	if ((n = readlink(path, exe, sizeof(exe) - 1)) < 0)
		return INT_MAX;
	exe[n] = '\0';
	if (strstr(exe, "/valgrind/") == NULL)
		return INT_MAX;
	snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return INT_MAX;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "Max open files %lu", &soft) == 1 &&
		    soft > VALGRIND_RESERVED_FDS && soft < INT_MAX)
			from = (int)soft - VALGRIND_RESERVED_FDS;
	fclose(f);
	return from;
}

/* The process's own: not those valgrind keeps for itself. */
int
count_fds(pid_t pid)
{
	char path[64];
	struct dirent *d;
	DIR *dir;
	int n = 0, from = valgrind_fds_from(pid);

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	if ((dir = opendir(path)) == NULL)
		return -1;
	while ((d = readdir(dir)) != NULL)
		if (d->d_name[0] != '.' && atoi(d->d_name) < from)
			n++;
	closedir(dir);
	return n;
}

pid_t
spawn(int (*fn)(void *), void *arg, bool drop)
{
	return spawn_as(fn, arg, drop ? NOBODY : 0);
}

pid_t
spawn_as(int (*fn)(void *), void *arg, uid_t uid)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (uid != 0 && (setgroups(0, NULL) < 0 ||
		    setresgid(uid, uid, uid) < 0 ||
		    setresuid(uid, uid, uid) < 0))
			_exit(126);
		/* Set after the uid change, which clears it. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
			_exit(126);
		_exit(fn(arg));
	}
	return pid;
}

int
reap(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int
run_client(int (*fn)(void *), void *arg, bool drop)
{
	return reap(spawn(fn, arg, drop));
}

int
run_client_as(int (*fn)(void *), void *arg, uid_t uid)
{
	return reap(spawn_as(fn, arg, uid));
}

int
raw_connect_quiet(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", tb.sock);
	if (sock < 0 || connect(sock, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		if (sock >= 0)
			close(sock);
		return -1;
	}
	return sock;
}

int
raw_welcome(int sock, WireStatus *status, char *reason, size_t reasonlen)
{
	uint8_t in[WIRE_MAX_DATAGRAM];
	struct timeval tv = { .tv_sec = 5 };
	WireReply *r;
	ssize_t n;

	setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/* The broker's verifier, stopping us at Hello, interrupts a recv(). */
	do {
		n = recv(sock, in, sizeof(in), 0);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ECONNRESET;
	if ((r = uffd_broker__v1__reply__unpack(NULL, n, in)) == NULL)
		return -EPROTO;
	*status = r->status;
	snprintf(reason, reasonlen, "%s", r->reason);
	uffd_broker__v1__reply__free_unpacked(r, NULL);
	return 0;
}

int
raw_connect(void)
{
	char reason[256];
	WireStatus st;
	int sock = raw_connect_quiet();

	if (sock >= 0 && raw_welcome(sock, &st, reason, sizeof(reason)) < 0) {
		close(sock);
		return -1;
	}
	return sock;
}

int
raw_exchange(int sock, const void *buf, size_t len, int fd,
    WireStatus *status, char *reason, size_t reasonlen)
{
	int rc;

	if ((rc = wire_send(sock, buf, len, fd)) < 0)
		return rc;
	return raw_welcome(sock, status, reason, reasonlen);
}

int
raw_call(int sock, const WireRequest *req, int fd, WireStatus *status,
    char *reason, size_t reasonlen)
{
	uint8_t buf[WIRE_MAX_DATAGRAM];
	size_t len = uffd_broker__v1__request__pack(req, buf);

	return raw_exchange(sock, buf, len, fd, status, reason, reasonlen);
}

char *
admin_view(UffdBroker__V1__AdminStatus__View view)
{
	UffdBroker__V1__AdminStatus as = UFFD_BROKER__V1__ADMIN_STATUS__INIT;
	WireRequest req = UFFD_BROKER__V1__REQUEST__INIT;
	struct uffdc_session s;
	WireReply *reply;
	uint32_t offset = 0, total = 1;
	char *text = NULL;
	size_t len = 0, i;
	FILE *f;
	bool ok = true;

	memset(&s, 0, sizeof(s));
	if ((s.sock = client_connect(tb.sock)) < 0)
		return NULL;
	/* An administrator no rule admits gets a refusal first: no matter. */
	(void)client_welcome(&s);
	ck_assert_ptr_nonnull(f = open_memstream(&text, &len));
	req.body_case = UFFD_BROKER__V1__REQUEST__BODY_ADMIN_STATUS;
	req.admin_status = &as;
	as.has_view = true;
	as.view = view;
	while (ok && offset < total) {
		as.offset = offset;
		if (client_call(&s, &req, -1, &reply) < 0) {
			ok = false;
			break;
		}
		ok = reply->body_case ==
		    UFFD_BROKER__V1__REPLY__BODY_ADMIN_STATUS_REPLY &&
		    reply->admin_status_reply->next_offset > offset;
		for (i = 0; ok && i < reply->admin_status_reply->n_lines; i++)
			fprintf(f, "%s\n", reply->admin_status_reply->lines[i]);
		if (ok) {
			offset = reply->admin_status_reply->next_offset;
			total = reply->admin_status_reply->total;
		}
		uffd_broker__v1__reply__free_unpacked(reply, NULL);
	}
	close(s.sock);
	fclose(f);
	if (!ok) {
		free(text);
		return NULL;
	}
	return text;
}

void
sync_signal(int fd)
{
	char c = 1;

	if (write(fd, &c, 1) != 1)
		_exit(125);
}

void
sync_wait(int fd)
{
	char c;

	if (read(fd, &c, 1) != 1)
		_exit(124);
}

int
client_open_refused(void *arg)
{
	struct uffdc_session *s;

	(void)arg;
	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == -EACCES);
	CHILD_CHECK(*uffdc_last_reason() != '\0');
	return 0;
}

int
client_open_over_limit(void *arg)
{
	struct uffdc_session *s;

	(void)arg;
	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == -EDQUOT);
	CHILD_CHECK(strstr(uffdc_last_reason(), "sessions") != NULL);
	return 0;
}

int
jail_allow_all(void)
{
	struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	struct sock_fprog prog = { .len = 1, .filter = &allow };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
		return -errno;
	return 0;
}

int
client_gets_uffd(void *arg)
{
	struct uffdc_session *s;
	struct uffdc_uffd *u;
	int rc;

	if ((rc = uffdc_session_open(tb.sock, &s)) != 0)
		fprintf(stderr, "client_gets_uffd: session: %s (%s)\n",
		    uffdc_strerror(rc), uffdc_last_reason());
	CHILD_CHECK(rc == 0);
	CHILD_CHECK(uffdc_create(s, 0, 0, &u) == 0);
	CHILD_CHECK(uffdc_release(u) == 0);
	uffdc_session_close(s);
	return 0;
}

int
run_program(const char *out, bool drop, const char *const *argv)
{
	int fd, status;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(126);
		if (drop && (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 ||
		    setuid(NOBODY) < 0))
			_exit(126);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

char *
read_whole(const char *path)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *in = fopen(path, "r"), *out = open_memstream(&buf, &len);
	int c;

	ck_assert_ptr_nonnull(in);
	ck_assert_ptr_nonnull(out);
	while ((c = fgetc(in)) != EOF)
		fputc(c, out);
	fclose(in);
	fclose(out);
	return buf;
}

const char *
test_file(const char *name, const char *text)
{
	static char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", getenv("UFFD_TEST_DIR"), name);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(chmod(path, 0644), 0);
	return path;
}

void
copy_file(const char *from, const char *to)
{
	char buf[65536];
	ssize_t n;
	int in, out;

	ck_assert_int_ge(in = open(from, O_RDONLY | O_CLOEXEC), 0);
	ck_assert_int_ge(out = open(to, O_WRONLY | O_CREAT | O_TRUNC |
	    O_CLOEXEC, 0755), 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		ck_assert_int_eq(write(out, buf, n), n);
	ck_assert_int_eq(n, 0);
	close(in);
	ck_assert_int_eq(close(out), 0);
}

int
lingering_socket(int linger_s, int *server)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct linger lg = { .l_onoff = 1, .l_linger = linger_s };
	socklen_t len = sizeof(sin);
	char junk[65536];
	int lsn, fd;

	memset(junk, 'j', sizeof(junk));
	lsn = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(lsn, 0);
	ck_assert_int_eq(bind(lsn, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(lsn, 1), 0);
	ck_assert_int_eq(getsockname(lsn, (struct sockaddr *)&sin, &len), 0);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert(connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 ||
	    errno == EINPROGRESS);
	*server = accept4(lsn, NULL, NULL, SOCK_CLOEXEC);
	ck_assert_int_ge(*server, 0);
	close(lsn);
	usleep(10000);
	while (write(fd, junk, sizeof(junk)) > 0)
		;
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg,
	    sizeof(lg)), 0);
	return fd;
}

int
nest_in_unix_socket(int fd)
{
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
	    sv), 0);
	ck_assert_int_eq(wire_send(sv[0], "n", 1, fd), 0);
	close(fd);
	close(sv[0]);
	return sv[1];
}

double
ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1e3 + (t.tv_nsec - t0->tv_nsec) / 1e6;
}

double
timed_client_ms(bool drop)
{
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(run_client(client_gets_uffd, NULL, drop), 0);
	return ms_since(&t0);
}

void
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

int
count_children(pid_t parent)
{
	char path[300], line[256];
	struct dirent *d;
	DIR *dir;
	FILE *f;
	int n = 0;

	ck_assert_ptr_nonnull(dir = opendir("/proc"));
	while ((d = readdir(dir)) != NULL) {
		if (d->d_name[0] < '1' || d->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/status", d->d_name);
		if ((f = fopen(path, "re")) == NULL)
			continue;
		while (fgets(line, sizeof(line), f) != NULL)
			if (strncmp(line, "PPid:", 5) == 0) {
				if (atoi(line + 5) == (int)parent)
					n++;
				break;
			}
		fclose(f);
	}
	closedir(dir);
	return n;
}

int
broker_children(pid_t pid, pid_t *out, int max)
{
	char path[64], buf[1024], *p, *end;
	ssize_t len;
	int fd, n = 0;
	long v;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid,
	    (int)pid);
	ck_assert_int_ge(fd = open(path, O_RDONLY | O_CLOEXEC), 0);
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[len > 0 ? len : 0] = '\0';
	for (p = buf; n < max; p = end) {
		v = strtol(p, &end, 10);
		if (end == p)
			break;
		out[n++] = (pid_t)v;
	}
	return n;
}

/* ---- holding the broker still at a chosen point ---- */

/* A process's (or thread's) state letter in /proc/PID/stat, or 0. */
char
proc_state(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* After the command's closing parenthesis, which may hold anything. */
	if ((p = strrchr(buf, ')')) == NULL || p[1] != ' ')
		return 0;
	return p[2];
}

bool
wait_task_state(pid_t tid, char state, int timeout_ms)
{
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (proc_state(tid) != state) {
		if (ms_since(&t0) > timeout_ms)
			return false;
		usleep(1000);
	}
	return true;
}

void
broker_pause(void)
{
	int i;

	ck_assert_int_eq(kill(tb.pid, SIGSTOP), 0);
	for (i = 0; i < 500 && proc_state(tb.pid) != 'T'; i++)
		usleep(1000);
	ck_assert_msg(proc_state(tb.pid) == 'T', "broker not stopped");
}

void
broker_resume(void)
{
	ck_assert_int_eq(kill(tb.pid, SIGCONT), 0);
}

bool
wait_in_syscall(pid_t pid, long nr, int timeout_ms)
{
	char path[64], buf[64];
	ssize_t n;
	int i, fd;

	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
	for (i = 0; i <= timeout_ms; i++) {
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
			n = read(fd, buf, sizeof(buf) - 1);
			close(fd);
			/* "NR args..." while blocked in it; "running" otherwise. */
			if (n > 0) {
				buf[n] = '\0';
				if (strtol(buf, NULL, 10) == nr && buf[0] != 'r' &&
				    proc_state(pid) == 'S')
					return true;
			}
		}
		usleep(1000);
	}
	return false;
}

void
broker_trace(void)
{
	int status;

	ck_assert_int_eq(ptrace(PTRACE_SEIZE, tb.pid, 0,
	    PTRACE_O_TRACESYSGOOD), 0);
	ck_assert_int_eq(ptrace(PTRACE_INTERRUPT, tb.pid, 0, 0), 0);
	ck_assert_int_eq(waitpid(tb.pid, &status, 0), tb.pid);
	ck_assert(WIFSTOPPED(status));
}

void
broker_hold_at_notification(void)
{
	broker_hold_after(__NR_ioctl, 1, 0xffffffff, SECCOMP_IOCTL_NOTIF_RECV);
}

void
broker_hold_after(long nr, int arg, uint64_t mask, uint64_t value)
{
	struct __ptrace_syscall_info info;
	bool match = false;
	int status, sig = 0;

	for (;;) {
		ck_assert_int_eq(ptrace(PTRACE_SYSCALL, tb.pid, 0, sig), 0);
		sig = 0;
		ck_assert_int_eq(waitpid(tb.pid, &status, 0), tb.pid);
		ck_assert_msg(WIFSTOPPED(status), "traced broker ended (0x%x)",
		    status);
		if (WSTOPSIG(status) != (SIGTRAP | 0x80)) {
			/* A signal for the broker (its SIGALRM): deliver it. */
			if ((status >> 16) == 0)
				sig = WSTOPSIG(status);
			continue;
		}
		ck_assert_int_gt(ptrace(PTRACE_GET_SYSCALL_INFO, tb.pid,
		    sizeof(info), &info), 0);
		if (info.op == PTRACE_SYSCALL_INFO_ENTRY)
			match = (long)info.entry.nr == nr &&
			    (info.entry.args[arg] & mask) == value;
		else if (info.op == PTRACE_SYSCALL_INFO_EXIT && match &&
		    info.exit.rval >= 0)
			return;
	}
}

void
broker_untrace(void)
{
	ck_assert_int_eq(ptrace(PTRACE_DETACH, tb.pid, 0, 0), 0);
}

pid_t
fork_with_pid(pid_t want)
{
	struct clone_args ca = {
		.exit_signal = SIGCHLD,
		.set_tid = (uintptr_t)&want,
		.set_tid_size = 1,
	};

	return (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
}

/* ---- a client made by hand ---- */

int
spare_listener(void)
{
	int sv[2], fd, flags;
	char c;
	pid_t child;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
	    sv), 0);
	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		fd = client_jail_install();
		_exit(fd >= 0 && wire_send(sv[1], "L", 1, fd) == 0 ? 0 : 1);
	}
	close(sv[1]);
	ck_assert_int_eq(reap(child), 0);
	ck_assert_int_eq(wire_recv(sv[0], &c, 1, &fd, &flags), 1);
	ck_assert_int_ge(fd, 0);
	close(sv[0]);
	return fd;
}

int
hand_connect(struct hand *h)
{
	long psz = sysconf(_SC_PAGESIZE);

	memset(h, 0, sizeof(*h));
	h->devfd = -1;
	h->page_size = psz;
	h->dummy = mmap(NULL, psz, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (h->dummy == MAP_FAILED)
		return -errno;
	if ((h->sock = raw_connect_quiet()) < 0)
		return -ECONNREFUSED;
	return raw_welcome(h->sock, &h->st, h->reason, sizeof(h->reason));
}

int
hand_hello(struct hand *h, int listener, uint32_t version)
{
	UffdBroker__V1__Hello hello = UFFD_BROKER__V1__HELLO__INIT;
	WireRequest req = UFFD_BROKER__V1__REQUEST__INIT;

	hello.version = version;
	hello.dummy_page = (uintptr_t)h->dummy;
	hello.page_size = h->page_size;
	req.body_case = UFFD_BROKER__V1__REQUEST__BODY_HELLO;
	req.hello = &hello;
	return raw_call(h->sock, &req, listener, &h->st, h->reason,
	    sizeof(h->reason));
}

int
hand_jail(struct hand *h)
{
	int listener = client_jail_install(), rc;

	if (listener < 0)
		return listener;
	rc = hand_hello(h, listener, WIRE_VERSION);
	close(listener);
	if (rc == 0 && h->st != UFFD_BROKER__V1__STATUS__OK)
		rc = -EPROTO;
	return rc;
}

int
hand_verify(struct hand *h)
{
	int fd = client_verify();

	if (fd >= 0)
		h->devfd = fd;
	return fd;
}

int
hand_send(struct hand *h, UffdBroker__V1__Request__BodyCase body, int fd)
{
	UffdBroker__V1__Probe probe = UFFD_BROKER__V1__PROBE__INIT;
	UffdBroker__V1__Attach attach = UFFD_BROKER__V1__ATTACH__INIT;
	UffdBroker__V1__StatusRequest status =
	    UFFD_BROKER__V1__STATUS_REQUEST__INIT;
	WireRequest req = UFFD_BROKER__V1__REQUEST__INIT;

	req.body_case = body;
	req.probe = &probe;	/* a union: the body case picks */
	if (body == UFFD_BROKER__V1__REQUEST__BODY_ATTACH)
		req.attach = &attach;
	else if (body == UFFD_BROKER__V1__REQUEST__BODY_STATUS)
		req.status = &status;
	return raw_call(h->sock, &req, fd, &h->st, h->reason,
	    sizeof(h->reason));
}

bool
closed_by_broker(int sock)
{
	char buf[64];
	struct timeval tv = { .tv_sec = 2 };

	setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return recv(sock, buf, sizeof(buf), 0) == 0;
}
