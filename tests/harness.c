/*
 * harness.c - start and stop a real uffd-brokerd, fork clients, speak the
 * protocol raw.
 */
#include <errno.h>
#include <netinet/in.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "uffd-client.h"

struct broker_proc tb;
unsigned long broker_nofile;

const char *
brokerd_path(void)
{
	const char *p = getenv("UFFD_BROKERD");

	return p ? p : "build/uffd-brokerd";
}

/* Is a unix socket bound to path listening (/proc/net/unix)? */
static bool
socket_listening(const char *path)
{
	char line[512], *p;
	unsigned long flags;
	bool yes = false;
	FILE *f = fopen("/proc/net/unix", "re");

	while (f != NULL && !yes && fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if ((p = strrchr(line, ' ')) == NULL || strcmp(p + 1, path) != 0)
			continue;
		/* Num RefCount Protocol Flags ...: __SO_ACCEPTCON is 1 << 16. */
		if (sscanf(line, "%*s %*s %*s %lx", &flags) == 1)
			yes = (flags & 0x10000) != 0;
	}
	if (f != NULL)
		fclose(f);
	return yes;
}

void
broker_start(const char *arg, ...)
{
	const char *argv[32];
	int argc = 0, i;
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

	tb.pid = fork();
	ck_assert_int_ge(tb.pid, 0);
	if (tb.pid == 0) {
		int fd = open(tb.log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		/* A test that fails half-way takes its broker down with it. */
		struct rlimit nofile = { broker_nofile, broker_nofile };

		if (fd < 0 || dup2(fd, 2) < 0 ||
		    prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 ||
		    (broker_nofile && setrlimit(RLIMIT_NOFILE, &nofile) < 0))
			_exit(127);
		execv(argv[0], (char **)argv);
		_exit(127);
	}
	/* Listening, not merely bound: a connect would be refused between. */
	for (i = 0; i < 200; i++) {
		if (socket_listening(tb.sock))
			return;
		usleep(10000);
	}
	ck_abort_msg("broker did not create %s", tb.sock);
}

void
broker_stop(void)
{
	char path[192];
	int status;

	if (tb.pid > 0) {
		kill(tb.pid, SIGTERM);
		ck_assert_int_eq(waitpid(tb.pid, &status, 0), tb.pid);
		tb.pid = 0;
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

int
count_fds(pid_t pid)
{
	char path[64];
	struct dirent *d;
	DIR *dir;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	if ((dir = opendir(path)) == NULL)
		return -1;
	while ((d = readdir(dir)) != NULL)
		if (d->d_name[0] != '.')
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
	return 0;
}

int
client_gets_uffd(void *arg)
{
	struct uffdc_session *s;
	struct uffdc_uffd *u;

	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
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
		execv(argv[0], (char *const *)argv);
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
