/* SPDX-License-Identifier: ISC */
/*
 * load.c - uffd-load, the load test of uffd-broker (make load).
 *
 * Starts a real uffd-brokerd on a private socket in a temporary directory
 * and runs N client slots against it, each M grant/release cycles
 * (uffdc_create + uffdc_release), in processes that drop to uid 65534 as
 * the tests' clients do. Every K cycles a slot's process closes its session
 * and exits, and a new process opens the next one (a process has one session
 * for its life): session churn.
 *
 * Before the load (after a short warm-up, so that what the broker allocates
 * once is not counted as growth) and after it, once every client is gone and
 * the broker has settled, it reads the broker's open fds (/proc/PID/fd), its
 * VmRSS and its child processes. It fails (exit 1) when the fds or the
 * children are not back to the baseline, the RSS grew by more than the
 * margin (--rss-margin), a session open or a grant failed, a session's
 * broker count of live uffds was not 0 after its releases, or the broker
 * died.
 *
 * Run as root. Everything it starts is stopped, and its directory removed,
 * when it exits, fails or is interrupted.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "uffd-client.h"
#include "../tool.h"

#define NOBODY		65534
/* What the broker needs per session, and its reserve (broker.c). */
#define BROKER_FDS_PER_SESSION	5
#define BROKER_FD_RESERVE	(512 + 64)
/* The most fds listed when the broker's are not back to the baseline. */
#define MAX_FD_LIST	4096
/*
 * A client's exit code when the broker refused its session (EACCES). On a
 * busy machine the broker's verifier may not stop a client's thread within
 * its deadline: that session is refused, and the uid's next ones for a
 * second (broker/verifier.c, VERIFIER_BACKOFF_MS). The client waits that
 * long before it exits, and a new process tries again; refused this many
 * times in a row, a slot fails the run.
 */
#define CLIENT_REFUSED		3
#define REFUSED_WAIT_MS		1100
#define REFUSED_MAX		5

static struct {
	unsigned int	clients;	/* N: client slots at once */
	unsigned long	cycles;		/* M: grant/release cycles per slot */
	unsigned long	churn;		/* K: cycles per session; 0: one session */
	unsigned long	rss_margin_kb;	/* the RSS growth allowed */
	unsigned int	settle_s;	/* how long the broker may take to settle */
	unsigned int	timeout_s;	/* the watchdog; 0: from the sizes */
	bool		quick;
	const char	*brokerd;
	const char	*broker_log;
} opt = { .rss_margin_kb = 512, .settle_s = 15 };

static pid_t main_pid;
static pid_t broker_pid;
static int broker_status;
static bool broker_died;
static char dir[64], sock_path[128], log_path[128];

/* The client slots' processes (0: none), for the cleanup. */
static pid_t *kids;

/* ---- shared with the clients ---- */

struct slot {
	int		err;		/* the first failure, a child's */
	uint64_t	err_cycle;
	char		what[160];
};

static struct slot *slots;	/* shared, one per slot */
static uint32_t *lat_ns;	/* shared: clients * cycles grant latencies */
static uint32_t *open_ns;	/* shared: clients * sessions per slot */
static unsigned long sess_per_slot;

/* ---- small helpers (the shared ones: tests/tool.c) ---- */

static void *
shared_alloc(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED) {
		fprintf(stderr, "uffd-load: mmap of %zu bytes: %s\n", len,
		    strerror(errno));
		exit(1);
	}
	return p;
}

/* Failures: the run fails with them. */
static int nfailures;

static void __attribute__((format(printf, 1, 2)))
failed(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "uffd-load: FAILED: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	nfailures++;
}

/* A "Key: N kB" line of /proc/PID/status, in KiB, or -1. */
static long
status_kb(pid_t pid, const char *key)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			v = strtol(line + klen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/* The open fds of pid, their targets into list (may be NULL). -1: gone. */
static int
list_fds(pid_t pid, char (*list)[96], int max)
{
	char path[64], fdpath[320];
	struct dirent *d;
	DIR *dp;
	ssize_t n;
	int count = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	if ((dp = opendir(path)) == NULL)
		return -1;
	while ((d = readdir(dp)) != NULL) {
		if (d->d_name[0] == '.')
			continue;
		if (list != NULL && count < max) {
			snprintf(fdpath, sizeof(fdpath), "%s/%s", path,
			    d->d_name);
			n = readlink(fdpath, list[count], sizeof(list[0]) - 1);
			list[count][n > 0 ? n : 0] = '\0';
		}
		count++;
	}
	closedir(dp);
	return count;
}

/* Processes whose parent is pid (/proc/PID/task/PID/children). */
static int
count_children(pid_t pid)
{
	char path[64], buf[4096], *p, *end;
	ssize_t len;
	int fd, n = 0;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid,
	    (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[len > 0 ? len : 0] = '\0';
	for (p = buf; ; p = end) {
		strtol(p, &end, 10);
		if (end == p)
			break;
		n++;
	}
	return n;
}

static int
copy_log(const char *to)
{
	char buf[65536];
	ssize_t n;
	int in, out, rc = 0;

	if ((in = open(log_path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	if ((out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644)) < 0) {
		close(in);
		return -1;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, n) != n) {
			rc = -1;
			break;
		}
	if (n < 0)
		rc = -1;
	close(in);
	if (close(out) < 0)
		rc = -1;
	return rc;
}

/* ---- the broker ---- */

/* Reap the broker if it ended; false then. */
static bool
broker_alive(void)
{
	int status;

	if (broker_pid <= 0)
		return false;
	if (waitpid(broker_pid, &status, WNOHANG) == broker_pid) {
		broker_pid = 0;
		broker_status = status;
		broker_died = true;
		return false;
	}
	return true;
}

static int
broker_start(void)
{
	/* Churn: a slot's old session may not be gone when its next opens. */
	unsigned int max = 2 * opt.clients + 16;
	rlim_t nofile = (rlim_t)max * BROKER_FDS_PER_SESSION +
	    BROKER_FD_RESERVE + 64 + 256;
	char maxs[16];
	const char *argv[] = { opt.brokerd, "--socket", sock_path,
	    "--allow-uid", "65534", "--max-sessions", maxs,
	    "--max-sessions-per-uid", maxs, NULL };
	int i;

	snprintf(maxs, sizeof(maxs), "%u", max);
	fflush(stdout);
	fflush(stderr);
	broker_pid = fork();
	if (broker_pid < 0) {
		perror("uffd-load: fork");
		return -1;
	}
	if (broker_pid == 0) {
		struct rlimit rl = { nofile, nofile };
		int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		    0644);

		/* It caps its sessions to what its fd limit holds. */
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0 ||
		    setrlimit(RLIMIT_NOFILE, &rl) < 0 ||
		    prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
			_exit(127);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	for (i = 0; i < 500; i++) {
		if (socket_listening(sock_path))
			return 0;
		if (!broker_alive())
			return -1;
		sleep_ms(10);
	}
	fprintf(stderr, "uffd-load: the broker does not listen on %s\n",
	    sock_path);
	return -1;
}

/* SIGTERM, and wait for its exit (SIGKILL after 10 s). Its exit code. */
static int
broker_stop(void)
{
	int status, i;
	pid_t pid = broker_pid;

	if (pid <= 0)
		return -1;
	kill(pid, SIGTERM);
	for (i = 0; i < 1000; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			broker_pid = 0;
			return WIFEXITED(status) ? WEXITSTATUS(status) :
			    128 + WTERMSIG(status);
		}
		sleep_ms(10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	broker_pid = 0;
	return 137;
}

/*
 * The broker's helpers (its verifier and closer) come to us when it ends
 * (PR_SET_CHILD_SUBREAPER): wait for them. How many were still alive after
 * timeout_ms (killed then).
 */
static int
reap_orphans(unsigned int timeout_ms)
{
	char path[64], buf[4096], *p, *end;
	unsigned int waited;
	int status, n = 0, fd;
	ssize_t len;
	pid_t pid;

	for (waited = 0; ; waited += 10) {
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
			;
		if (pid < 0 && errno == ECHILD)
			return 0;
		if (waited >= timeout_ms)
			break;
		sleep_ms(10);
	}
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children",
	    (int)main_pid, (int)main_pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[len > 0 ? len : 0] = '\0';
	for (p = buf; *p != '\0'; p = end) {
		pid = (pid_t)strtol(p, &end, 10);
		if (end == p)
			break;
		fprintf(stderr, "uffd-load: pid %d outlived the broker: "
		    "killed\n", (int)pid);
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		n++;
	}
	return n;
}

/* ---- cleanup, at exit and on a signal (async-signal-safe calls only) ---- */

static void
cleanup(void)
{
	char lock[160];
	size_t n;
	unsigned int i;
	int status;

	if (getpid() != main_pid)
		return;
	for (i = 0; kids != NULL && i < opt.clients; i++)
		if (kids[i] > 0)
			kill(kids[i], SIGKILL);
	for (i = 0; kids != NULL && i < opt.clients; i++)
		if (kids[i] > 0) {
			waitpid(kids[i], &status, 0);
			kids[i] = 0;
		}
	if (broker_pid > 0) {
		struct timespec ts = { 0, 10000000 };

		kill(broker_pid, SIGTERM);
		for (i = 0; i < 500; i++) {
			if (waitpid(broker_pid, &status, WNOHANG) == broker_pid)
				break;
			nanosleep(&ts, NULL);
		}
		if (i == 500) {
			kill(broker_pid, SIGKILL);
			waitpid(broker_pid, &status, 0);
		}
		broker_pid = 0;
	}
	if (dir[0] == '\0')
		return;
	if (sock_path[0] != '\0') {
		unlink(sock_path);
		/* Built without snprintf, which is not async-signal-safe. */
		n = strlen(sock_path);
		memcpy(lock, sock_path, n);
		memcpy(lock + n, ".lock", 6);
		unlink(lock);
	}
	if (log_path[0] != '\0')
		unlink(log_path);
	rmdir(dir);
	dir[0] = '\0';
}

static void
on_signal(int sig)
{
	static const char msg[] = "uffd-load: interrupted; stopping the "
	    "broker and the clients\n";
	static const char alarm_msg[] = "uffd-load: FAILED: the run did not "
	    "finish in time (watchdog); stopping the broker and the clients\n";

	if (sig == SIGALRM)
		(void)!write(2, alarm_msg, sizeof(alarm_msg) - 1);
	else
		(void)!write(2, msg, sizeof(msg) - 1);
	cleanup();
	_exit(sig == SIGALRM ? 1 : 128 + sig);
}

/* ---- the clients ---- */

struct job {
	unsigned int	slot;
	uint64_t	first, n;	/* cycles [first, first + n) */
	unsigned long	session;	/* the slot's session index */
	bool		timed;		/* record latencies */
	unsigned int	refused;	/* sessions refused in a row */
};

static int
child_fail(struct slot *sl, int err, uint64_t cycle, const char *what,
    struct uffdc_session *s)
{
	sl->err = err;
	sl->err_cycle = cycle;
	/* The reason is the broker's last reply's, maybe an earlier one. */
	snprintf(sl->what, sizeof(sl->what), "%s: %s%s%s%s", what,
	    uffdc_strerror(err), s != NULL && *uffdc_session_reason(s) ?
	    " (the broker's last reason: \"" : "",
	    s != NULL ? uffdc_session_reason(s) : "",
	    s != NULL && *uffdc_session_reason(s) ? "\")" : "");
	return 1;
}

/* One process's session: open, n grants and releases, check, close. */
static int
child_session(const struct job *j)
{
	struct slot *sl = &slots[j->slot];
	struct uffdc_session *s;
	struct uffdc_uffd *u;
	unsigned int live, max;
	uint64_t i, t0, dt;
	int rc;

	t0 = now_ns();
	if ((rc = uffdc_session_open(sock_path, &s)) == -EACCES) {
		sleep_ms(REFUSED_WAIT_MS);
		return CLIENT_REFUSED;
	}
	if (rc < 0)
		return child_fail(sl, rc, j->first, "session open", NULL);
	dt = now_ns() - t0;
	if (j->timed)
		open_ns[(size_t)j->slot * sess_per_slot + j->session] =
		    dt > UINT32_MAX ? UINT32_MAX : (uint32_t)dt;
	for (i = 0; i < j->n; i++) {
		t0 = now_ns();
		if ((rc = uffdc_create(s, 0, 0, &u)) < 0)
			return child_fail(sl, rc, j->first + i, "grant", s);
		if ((rc = uffdc_release(u)) < 0)
			return child_fail(sl, rc, j->first + i, "release", s);
		dt = now_ns() - t0;
		if (j->timed)
			lat_ns[(size_t)j->slot * opt.cycles + j->first + i] =
			    dt > UINT32_MAX ? UINT32_MAX : (uint32_t)dt;
	}
	/* Every uffd released: the broker's exact count says none is live. */
	if ((rc = uffdc_session_usage(s, &live, &max)) < 0)
		return child_fail(sl, rc, j->first + j->n, "usage", s);
	if (live != 0) {
		sl->err = -EPROTO;
		sl->err_cycle = j->first + j->n;
		snprintf(sl->what, sizeof(sl->what), "the broker counts %u "
		    "live uffds after all were released", live);
		return 1;
	}
	uffdc_session_close(s);
	return 0;
}

static pid_t
spawn_session(const struct job *j)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) < 0) {
		perror("uffd-load: fork");
		return -1;
	}
	if (pid == 0) {
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGALRM, SIG_DFL);
		if (setgroups(0, NULL) < 0 ||
		    setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
		    setresuid(NOBODY, NOBODY, NOBODY) < 0)
			_exit(126);
		/* Set after the uid change, which clears it. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 ||
		    getppid() != main_pid)
			_exit(126);
		_exit(child_session(j));
	}
	return pid;
}

struct phase_result {
	uint64_t	grants, sessions, refused;
	double		wall_s;
	bool		ok;
};

/*
 * clients slots, cycles each, a new process every churn cycles (0: one).
 * timed: record the latencies into lat_ns and open_ns.
 */
static struct phase_result
run_phase(unsigned int clients, uint64_t cycles, uint64_t churn, bool timed)
{
	struct phase_result r = { .ok = true };
	struct job *jobs = calloc(clients, sizeof(*jobs));
	unsigned int i, active = 0;
	uint64_t t0 = now_ns(), per = churn ? churn : cycles;
	int status, code;
	pid_t pid;

	if (jobs == NULL) {
		failed("out of memory");
		r.ok = false;
		return r;
	}
	for (i = 0; i < clients; i++) {
		memset(&slots[i], 0, sizeof(slots[i]));
		jobs[i].slot = i;
		jobs[i].timed = timed;
	}
	for (i = 0; i < clients; i++) {
		jobs[i].first = 0;
		jobs[i].n = per < cycles ? per : cycles;
		jobs[i].session = 0;
		if ((kids[i] = spawn_session(&jobs[i])) < 0) {
			kids[i] = 0;
			failed("cannot fork client %u", i);
			r.ok = false;
			break;
		}
		active++;
	}
	while (active > 0) {
		if ((pid = waitpid(-1, &status, 0)) < 0) {
			if (errno == EINTR)
				continue;
			perror("uffd-load: waitpid");
			r.ok = false;
			break;
		}
		if (pid == broker_pid) {
			broker_pid = 0;
			broker_status = status;
			broker_died = true;
			r.ok = false;
			break;
		}
		for (i = 0; i < clients && kids[i] != pid; i++)
			;
		if (i == clients)
			continue;	/* not ours: an orphan */
		kids[i] = 0;
		active--;
		code = WIFEXITED(status) ? WEXITSTATUS(status) :
		    128 + WTERMSIG(status);
		if (code == CLIENT_REFUSED && ++jobs[i].refused < REFUSED_MAX) {
			/* The same cycles again, in a new process. */
			r.refused++;
			if ((kids[i] = spawn_session(&jobs[i])) < 0) {
				kids[i] = 0;
				failed("cannot fork client %u", i);
				r.ok = false;
				break;
			}
			active++;
			continue;
		}
		if (code == CLIENT_REFUSED) {
			failed("client %u: %u sessions refused in a row (EACCES)",
			    i, jobs[i].refused);
			r.ok = false;
			break;
		}
		if (code != 0) {
			if (slots[i].err != 0)
				failed("client %u, cycle %" PRIu64 ": %s", i,
				    slots[i].err_cycle, slots[i].what);
			else
				failed("client %u (pid %d) ended with status "
				    "%d", i, (int)pid, code);
			r.ok = false;
			break;
		}
		r.sessions++;
		r.grants += jobs[i].n;
		jobs[i].refused = 0;
		jobs[i].first += jobs[i].n;
		jobs[i].session++;
		if (jobs[i].first >= cycles)
			continue;
		jobs[i].n = cycles - jobs[i].first < per ?
		    cycles - jobs[i].first : per;
		if ((kids[i] = spawn_session(&jobs[i])) < 0) {
			kids[i] = 0;
			failed("cannot fork client %u", i);
			r.ok = false;
			break;
		}
		active++;
	}
	r.wall_s = (double)(now_ns() - t0) / 1e9;
	if (!r.ok) {
		/* Stop the rest; cleanup() would too. */
		for (i = 0; i < clients; i++)
			if (kids[i] > 0)
				kill(kids[i], SIGKILL);
		for (i = 0; i < clients; i++)
			if (kids[i] > 0) {
				waitpid(kids[i], &status, 0);
				kids[i] = 0;
			}
	}
	free(jobs);
	return r;
}

/* ---- the broker's state ---- */

struct sample {
	long	rss_kb;
	int	fds, children;
};

static char (*fds_before)[96], (*fds_after)[96];

static struct sample
broker_sample(char (*list)[96])
{
	struct sample m;

	m.rss_kb = status_kb(broker_pid, "VmRSS");
	m.fds = list_fds(broker_pid, list, MAX_FD_LIST);
	m.children = count_children(broker_pid);
	return m;
}

/*
 * Wait until the broker's fds and children are back to base, and stay
 * there for a while (its liveness tick frees an ended session's probe once
 * the address space is gone). The sample then; the time taken in *settle_s.
 */
static struct sample
broker_settle(const struct sample *base, double *settle_s)
{
	uint64_t t0 = now_ns(), deadline = t0 + opt.settle_s * 1000000000ull,
	    good_since = 0;
	struct sample m;

	for (;;) {
		m = broker_sample(NULL);
		if (m.fds == base->fds && m.children == base->children) {
			if (good_since == 0)
				good_since = now_ns();
			/* Two liveness ticks (1 s each) without a change. */
			if (now_ns() - good_since >= 2100000000ull)
				break;
		} else
			good_since = 0;
		if (now_ns() > deadline || !broker_alive())
			break;
		sleep_ms(50);
	}
	*settle_s = (double)(now_ns() - t0) / 1e9;
	return broker_sample(fds_after);
}

/* The fds in after that are not in before (as many of each). */
static void
print_fd_diff(int nbefore, int nafter)
{
	bool *used = calloc(nbefore > 0 ? nbefore : 1, sizeof(bool));
	int i, k, shown = 0;

	if (used == NULL)
		return;
	fprintf(stderr, "uffd-load: the broker's fds not in the baseline:\n");
	for (i = 0; i < nafter && i < MAX_FD_LIST; i++) {
		for (k = 0; k < nbefore && k < MAX_FD_LIST; k++)
			if (!used[k] && strcmp(fds_before[k], fds_after[i]) == 0)
				break;
		if (k < nbefore && k < MAX_FD_LIST) {
			used[k] = true;
			continue;
		}
		if (shown++ < 40)
			fprintf(stderr, "  %s\n", fds_after[i]);
	}
	for (k = 0; k < nbefore && k < MAX_FD_LIST; k++)
		if (!used[k] && shown++ < 80)
			fprintf(stderr, "  (gone) %s\n", fds_before[k]);
	free(used);
}

/* ---- statistics ---- */

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The nearest-rank percentile of sorted samples, in microseconds. */
static double
pct_us(const uint32_t *v, size_t n, double p)
{
	size_t rank;

	if (n == 0)
		return 0;
	rank = (size_t)(p / 100.0 * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1] / 1e3;
}

/* ---- options ---- */

static void __attribute__((noreturn))
usage(int rc)
{
	fprintf(rc ? stderr : stdout,
	    "usage: uffd-load [--clients N] [--cycles M] [--churn K] [--quick]\n"
	    "                 [--rss-margin KIB] [--settle S] [--timeout S]\n"
	    "                 [--brokerd PATH] [--broker-log FILE]\n"
	    "  --clients N     client processes at once (default 16; --quick 8)\n"
	    "  --cycles M      grant/release cycles per client (default 20000;\n"
	    "                  --quick 3000)\n"
	    "  --churn K       a new process and session every K cycles "
	    "(default 1000;\n"
	    "                  --quick 250; 0: one session per client)\n"
	    "  --quick         the small figures above (under 10 s)\n"
	    "  --rss-margin KIB  the broker's RSS growth allowed (default "
	    "512)\n"
	    "  --settle S      how long the broker may take to settle "
	    "(default 15)\n"
	    "  --timeout S     the watchdog (default: from the sizes)\n"
	    "  --brokerd PATH  the broker (default: uffd-brokerd beside "
	    "uffd-load)\n"
	    "  --broker-log FILE  keep a copy of the broker's log\n"
	    "Run as root. Exit status 1 when a check failed.\n");
	exit(rc);
}

static unsigned long
number(const char *name, const char *s, unsigned long min, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || end == s || s[0] == '-' || v < min || v > max) {
		fprintf(stderr, "uffd-load: bad --%s '%s' (%lu to %lu)\n", name,
		    s, min, max);
		usage(2);
	}
	return v;
}

static void
parse_options(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "clients", required_argument, NULL, 'n' },
		{ "cycles", required_argument, NULL, 'm' },
		{ "churn", required_argument, NULL, 'k' },
		{ "quick", no_argument, NULL, 'q' },
		{ "rss-margin", required_argument, NULL, 'r' },
		{ "settle", required_argument, NULL, 's' },
		{ "timeout", required_argument, NULL, 't' },
		{ "brokerd", required_argument, NULL, 'b' },
		{ "broker-log", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static char brokerd[PATH_MAX + 32];
	char exe[PATH_MAX], *end;
	long churn = -1;
	ssize_t n;
	int o;

	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'n':
			opt.clients = number("clients", optarg, 1, 4096);
			break;
		case 'm':
			opt.cycles = number("cycles", optarg, 1, 100000000);
			break;
		case 'k':
			churn = (long)number("churn", optarg, 0, 100000000);
			break;
		case 'q': opt.quick = true; break;
		case 'r':
			opt.rss_margin_kb = number("rss-margin", optarg, 0,
			    1ul << 30);
			break;
		case 's':
			opt.settle_s = number("settle", optarg, 1, 3600);
			break;
		case 't':
			opt.timeout_s = number("timeout", optarg, 1, 86400);
			break;
		case 'b': opt.brokerd = optarg; break;
		case 'L': opt.broker_log = optarg; break;
		case 'h': usage(0);
		default: usage(2);
		}
	}
	if (optind != argc)
		usage(2);
	if (opt.clients == 0)
		opt.clients = opt.quick ? 8 : 16;
	if (opt.cycles == 0)
		opt.cycles = opt.quick ? 3000 : 20000;
	opt.churn = churn >= 0 ? (unsigned long)churn :
	    opt.quick ? 250 : 1000;
	if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) < 0) {
		perror("uffd-load: /proc/self/exe");
		exit(1);
	}
	exe[n] = '\0';
	if ((end = strrchr(exe, '/')) != NULL)
		*end = '\0';
	snprintf(brokerd, sizeof(brokerd), "%s/uffd-brokerd", exe);
	if (opt.brokerd == NULL)
		opt.brokerd = getenv("UFFD_BROKERD") ? getenv("UFFD_BROKERD") :
		    brokerd;
}

int
main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct phase_result warm, load;
	struct sample cold, base, after;
	struct rlimit rl;
	uint64_t t_start = now_ns(), total;
	size_t nlat, nopen;
	int i;
	double settle_s, warm_settle_s;
	unsigned long warm_cycles;
	rlim_t want;
	int rc;

	parse_options(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (geteuid() != 0) {
		fprintf(stderr, "uffd-load: run as root: it starts a broker and "
		    "switches its clients to uid %d\n", NOBODY);
		return 1;
	}
	if (access(opt.brokerd, X_OK) < 0) {
		fprintf(stderr, "uffd-load: %s is missing (make first)\n",
		    opt.brokerd);
		return 1;
	}
	if (access("/dev/userfaultfd", R_OK) < 0) {
		fprintf(stderr, "uffd-load: /dev/userfaultfd is missing (Linux "
		    "6.1+ with CONFIG_USERFAULTFD)\n");
		return 1;
	}
	main_pid = getpid();
	/* The broker's helpers come back to us when it ends: see they end. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		perror("uffd-load: PR_SET_CHILD_SUBREAPER");
		return 1;
	}
	/* Ours: a process per slot, and what they inherit (as the bench). */
	want = (rlim_t)opt.clients * 4 + 1024;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
		rl.rlim_cur = want;
		if (rl.rlim_max < want)
			rl.rlim_max = want;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			perror("uffd-load: RLIMIT_NOFILE");
	}
	total = (uint64_t)opt.clients * opt.cycles;
	sess_per_slot = opt.churn ? (opt.cycles + opt.churn - 1) / opt.churn :
	    1;
	nlat = (size_t)total;
	nopen = (size_t)opt.clients * sess_per_slot;
	slots = shared_alloc(opt.clients * sizeof(*slots));
	lat_ns = shared_alloc(nlat * sizeof(*lat_ns));
	open_ns = shared_alloc(nopen * sizeof(*open_ns));
	kids = calloc(opt.clients, sizeof(*kids));
	fds_before = calloc(MAX_FD_LIST, sizeof(*fds_before));
	fds_after = calloc(MAX_FD_LIST, sizeof(*fds_after));
	if (kids == NULL || fds_before == NULL || fds_after == NULL) {
		fprintf(stderr, "uffd-load: out of memory\n");
		return 1;
	}

	snprintf(dir, sizeof(dir), "/tmp/uffd-load.XXXXXX");
	if (mkdtemp(dir) == NULL || chmod(dir, 0755) < 0) {
		perror("uffd-load: mkdtemp");
		return 1;
	}
	snprintf(sock_path, sizeof(sock_path), "%s/broker.sock", dir);
	snprintf(log_path, sizeof(log_path), "%s/broker.log", dir);
	atexit(cleanup);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* A hung run fails instead of hanging make: 0.5 ms a grant at worst. */
	alarm(opt.timeout_s ? opt.timeout_s :
	    (unsigned int)(120 + opt.settle_s * 2 + total / 2000));

	printf("uffd-load%s: %u clients x %lu cycles, a new session every "
	    "%lu cycles%s; broker %s on %s; clients uid %d\n",
	    opt.quick ? " (--quick)" : "", opt.clients, opt.cycles, opt.churn,
	    opt.churn ? "" : " (none)", opt.brokerd, sock_path, NOBODY);
	if (broker_start() < 0) {
		failed("the broker did not start");
		print_log_tail(log_path, 20);
		return 1;
	}
	sleep_ms(200);
	cold = broker_sample(NULL);

	/*
	 * The warm-up: every slot at once, one session each, a few cycles.
	 * What the broker allocates once (its tables grown to N sessions,
	 * malloc's arenas, the log's rate limits) is then in the baseline.
	 */
	warm_cycles = opt.cycles < 200 ? opt.cycles : 200;
	warm = run_phase(opt.clients, warm_cycles, 0, false);
	if (!warm.ok)
		goto broken;
	{
		struct sample c2 = cold;

		/* Settled as after the load: back to the cold fds. */
		base = broker_settle(&c2, &warm_settle_s);
		if (base.fds != cold.fds || base.children != cold.children)
			failed("after the warm-up the broker has %d fds and %d "
			    "children (at start %d and %d)", base.fds,
			    base.children, cold.fds, cold.children);
		memcpy(fds_before, fds_after, MAX_FD_LIST * sizeof(*fds_before));
	}
	if (!broker_alive())
		goto broken;
	printf("broker pid %d: at start %d fds, VmRSS %ld KiB, %d children; "
	    "after a warm-up (%u x %lu cycles, settled in %.1f s): %d fds, "
	    "VmRSS %ld KiB, %d children\n", (int)broker_pid, cold.fds,
	    cold.rss_kb, cold.children, opt.clients, warm_cycles,
	    warm_settle_s, base.fds, base.rss_kb, base.children);

	load = run_phase(opt.clients, opt.cycles, opt.churn, true);
	if (!load.ok)
		goto broken;
	after = broker_settle(&base, &settle_s);
	if (!broker_alive())
		goto broken;

	qsort(lat_ns, nlat, sizeof(*lat_ns), cmp_u32);
	qsort(open_ns, nopen, sizeof(*open_ns), cmp_u32);
	printf("load: %" PRIu64 " grants in %.2f s: %.0f grants/s (with the "
	    "session opens)\n", load.grants, load.wall_s,
	    (double)load.grants / load.wall_s);
	printf("grant (uffdc_create + uffdc_release) latency: p50 %.1f us, "
	    "p99 %.1f us, p99.9 %.1f us, max %.1f us\n",
	    pct_us(lat_ns, nlat, 50), pct_us(lat_ns, nlat, 99),
	    pct_us(lat_ns, nlat, 99.9), lat_ns[nlat - 1] / 1e3);
	printf("sessions opened: %" PRIu64 " (plus %" PRIu64 " in the "
	    "warm-up); open latency p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
	    load.sessions, warm.sessions, pct_us(open_ns, nopen, 50) / 1e3,
	    pct_us(open_ns, nopen, 99) / 1e3, open_ns[nopen - 1] / 1e6);
	printf("sessions refused and tried again (EACCES; the verifier's "
	    "deadline on a busy machine): %" PRIu64 " (%" PRIu64 " in the "
	    "warm-up)\n", load.refused, warm.refused);
	printf("broker before the load: %d fds, VmRSS %ld KiB, %d children\n",
	    base.fds, base.rss_kb, base.children);
	printf("broker after the load (settled in %.1f s): %d fds, VmRSS %ld "
	    "KiB (%+ld KiB; margin %lu KiB), %d children\n", settle_s,
	    after.fds, after.rss_kb, after.rss_kb - base.rss_kb,
	    opt.rss_margin_kb, after.children);
	if (after.fds != base.fds) {
		failed("the broker's fds are not back to the baseline: %d, "
		    "before %d", after.fds, base.fds);
		print_fd_diff(base.fds, after.fds);
	}
	if (after.children != base.children)
		failed("the broker has %d child processes, before %d",
		    after.children, base.children);
	if (base.rss_kb < 0 || after.rss_kb < 0)
		failed("cannot read the broker's VmRSS");
	else if (after.rss_kb - base.rss_kb > (long)opt.rss_margin_kb)
		failed("the broker's RSS grew by %ld KiB (margin %lu KiB)",
		    after.rss_kb - base.rss_kb, opt.rss_margin_kb);
	if ((rc = broker_stop()) != 0)
		failed("the broker did not exit cleanly (status %d)", rc);
	if ((rc = reap_orphans(5000)) != 0)
		failed("%d process(es) of the broker outlived it by 5 s", rc);
	goto out;
broken:
	/*
	 * A dying broker's listeners close before it can be reaped: a client
	 * may see it gone (ENOSYS) first.
	 */
	for (i = 0; i < 50 && broker_alive(); i++)
		sleep_ms(10);
	if (broker_died)
		failed("the broker died (%s %d)", WIFSIGNALED(broker_status) ?
		    "signal" : "exit status", WIFSIGNALED(broker_status) ?
		    WTERMSIG(broker_status) : WEXITSTATUS(broker_status));
	else if (broker_pid > 0 && (rc = broker_stop()) != 0)
		failed("the broker did not exit cleanly (status %d)", rc);
	if ((rc = reap_orphans(5000)) != 0)
		failed("%d process(es) of the broker outlived it by 5 s", rc);
out:
	if (opt.broker_log != NULL && copy_log(opt.broker_log) < 0)
		fprintf(stderr, "uffd-load: copying the broker's log to %s: "
		    "%s\n", opt.broker_log, strerror(errno));
	printf("wall time %.1f s\n", (double)(now_ns() - t_start) / 1e9);
	if (nfailures) {
		printf("uffd-load: %d check(s) FAILED\n", nfailures);
		print_log_tail(log_path, 15);
		return 1;
	}
	printf("uffd-load: ok\n");
	return 0;
}
