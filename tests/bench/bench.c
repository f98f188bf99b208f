/* SPDX-License-Identifier: ISC */
/*
 * bench.c - uffd-bench, the benchmark suite of uffd-broker (make bench).
 *
 * Starts a real uffd-brokerd on a private socket in a temporary directory,
 * forks clients that drop to uid 65534 as the tests' clients do, and measures
 * each figure of issue 11 against its baseline, measured in the same run:
 *
 *   grant latency      uffdc_create + uffdc_release, against creating a uffd
 *                      directly (open the device, USERFAULTFD_IOC_NEW,
 *                      UFFDIO_API, close) in an unjailed process
 *   grant throughput   1, 8 and 64 client processes, against as many direct
 *   session open       in a fresh forked process, with no and with N idle
 *                      sessions present, against a forked direct creation
 *   lazy restore       uffd-restore-demo on a 256 MiB image, against memcpy
 *                      and read() of the same image
 *   fault path         uffdc_read_event + uffdc_copy, against read() +
 *                      ioctl(UFFDIO_COPY) on the same uffd
 *   memory             the broker's RSS per idle session
 *   liveness tick      the worst StatusRequest round trip with N sessions,
 *                      against the median one
 *
 * Prints a table, writes the same figures as JSON (--json FILE) and says for
 * each goal whether it is met. Slow figures do not fail the run (the machine
 * may be noisy); a benchmark that breaks does: exit status 1.
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
#include <linux/userfaultfd.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "build-config.h"
#include "uffd-client.h"
#include "../tool.h"

#define NOBODY		65534
#define MIB		(1024ul * 1024)
/* What the broker needs per session, and its reserve (broker.c). */
#define BROKER_FDS_PER_SESSION	5
#define BROKER_FD_RESERVE	(512 + 64)

/* ---- options and the run's state ---- */

static struct {
	bool		quick;
	const char	*json;
	unsigned int	sessions;	/* N idle sessions */
	const char	*brokerd;
	const char	*demo;
	int		cpu;		/* the core of the pinned figures */
	bool		idle_fork;	/* idle clients forked, not exec'd */
	const char	*broker_log;	/* keep a copy of the broker's log */
	bool		fd_store;	/* under the fd store's stand-in */
} opt = { .sessions = 0, .cpu = -1 };

/* The sizes of the run: --quick keeps it under 20 s. */
static struct {
	unsigned int	grant_samples;	/* per figure, lib and direct each */
	unsigned int	grant_blocks;	/* alternating lib / direct processes */
	unsigned int	grant_n_samples;	/* with N sessions present */
	double		tput_s;		/* wall time per throughput figure */
	size_t		fault_region[3];	/* bytes per round, per copy size */
	unsigned int	fault_rounds;	/* rounds per size, lib and raw each */
	size_t		image;		/* the restore's image */
	unsigned int	restore_runs;
	unsigned int	open_samples;	/* per figure, lib and direct each */
	double		rt_s;		/* round-trip sampling time per figure */
} cfg;

static pid_t main_pid;
static pid_t broker_pid;
static char dir[64], sock_path[128], log_path[128], image_path[128],
	demo_copy[128], lib_copy[128], bench_copy[128];
static char exe_dir[PATH_MAX];

/* Every child alive, for the cleanup. */
static pid_t *kids;
static size_t kids_cap;
/* The idle sessions wait for EOF on this pipe. */
static int hold_rd = -1, hold_wr = -1;

static cpu_set_t all_cpus;
static int ncpus;

/* Failures: a benchmark broke. */
static char failures[16][256];
static int nfailures;

static void __attribute__((format(printf, 1, 2)))
failed(const char *fmt, ...)
{
	va_list ap;
	char buf[256];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "uffd-bench: FAILED: %s\n", buf);
	if (nfailures < (int)(sizeof(failures) / sizeof(failures[0])))
		snprintf(failures[nfailures], sizeof(failures[0]), "%s", buf);
	nfailures++;
}

/* Anonymous shared memory, for children's results. */
static void *
shared_alloc(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("uffd-bench: mmap");
		exit(1);
	}
	return p;
}

/* ---- children ---- */

static void
kid_add(pid_t pid)
{
	size_t i;

	for (i = 0; i < kids_cap; i++)
		if (kids[i] == 0) {
			kids[i] = pid;
			return;
		}
}

static void
kid_del(pid_t pid)
{
	size_t i;

	for (i = 0; i < kids_cap; i++)
		if (kids[i] == pid) {
			kids[i] = 0;
			return;
		}
}

static int
pin(pid_t pid, int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(pid, sizeof(set), &set);
}

static int
unpin(pid_t pid)
{
	return sched_setaffinity(pid, sizeof(all_cpus), &all_cpus);
}

static int
drop_to_nobody(void)
{
	if (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
	    setresuid(NOBODY, NOBODY, NOBODY) < 0)
		return -1;
	return 0;
}

/*
 * Run fn(arg) in a child, as nobody if drop, on one core if cpu >= 0.
 * The child dies with the bench (PR_SET_PDEATHSIG).
 */
static pid_t
spawn(int (*fn)(void *), void *arg, bool drop, int cpu)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		perror("uffd-bench: fork");
		return -1;
	}
	if (pid == 0) {
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGALRM, SIG_DFL);
		if (hold_wr >= 0)
			close(hold_wr);
		if (cpu >= 0 && pin(0, cpu) < 0)
			_exit(126);
		if (drop && drop_to_nobody() < 0)
			_exit(126);
		/* Set after the uid change, which clears it. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != main_pid)
			_exit(126);
		_exit(fn(arg));
	}
	kid_add(pid);
	return pid;
}

/* A child's exit code, or 128 + its signal. */
static int
reap(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	kid_del(pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---- the broker ---- */

static bool
broker_alive(void)
{
	int status;

	if (broker_pid <= 0)
		return false;
	if (waitpid(broker_pid, &status, WNOHANG) == broker_pid) {
		fprintf(stderr, "uffd-bench: the broker ended (status 0x%x)\n",
		    status);
		broker_pid = 0;
		print_log_tail(log_path, 20);
		return false;
	}
	return true;
}

/*
 * The broker's own pid: with --fd-store, broker_pid is the stand-in's, and
 * the broker says its pid as it starts (and after an upgrade, the same).
 */
static pid_t
serving_pid(void)
{
	char line[512], *p;
	pid_t pid = broker_pid;
	FILE *f;

	if (!opt.fd_store || (f = fopen(log_path, "re")) == NULL)
		return broker_pid;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, "event=ready ") != NULL &&
		    (p = strstr(line, "pid=")) != NULL)
			pid = (pid_t)atoi(p + 4);
	fclose(f);
	return pid;
}

/* The fds a broker needs for max sessions. */
static rlim_t
broker_nofile(unsigned int max)
{
	return (rlim_t)max * BROKER_FDS_PER_SESSION + BROKER_FD_RESERVE + 64 +
	    256;
}

/*
 * As many idle sessions as asked, or as the fd limit this process may give
 * the broker holds (without CAP_SYS_RESOURCE the hard limit is the bound):
 * said, not failed.
 */
static void
fit_sessions(void)
{
	struct rlimit rl;
	unsigned int fit;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_max == RLIM_INFINITY ||
	    broker_nofile(opt.sessions + 256) <= rl.rlim_max)
		return;
	/* Raising the hard limit needs CAP_SYS_RESOURCE: try. */
	rl.rlim_max = broker_nofile(opt.sessions + 256);
	if (rl.rlim_cur > rl.rlim_max)
		rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
		return;
	(void)getrlimit(RLIMIT_NOFILE, &rl);
	fit = (unsigned int)((rl.rlim_max - broker_nofile(0)) /
	    BROKER_FDS_PER_SESSION) - 256;
	printf("uffd-bench: the fd hard limit (%llu, and no CAP_SYS_RESOURCE to "
	    "raise it) holds %u sessions: N = %u, not %u\n",
	    (unsigned long long)rl.rlim_max, fit, fit, opt.sessions);
	opt.sessions = fit;
}

static int
broker_start(void)
{
	unsigned int max = opt.sessions + 256;
	rlim_t nofile = broker_nofile(max);
	char maxs[16], standin[PATH_MAX + 32], notify[160];
	const char *argv[] = { standin, "--notify", notify, "--",
	    opt.brokerd, "--socket", sock_path,
	    "--allow-uid", "65534", "--max-sessions", maxs,
	    "--max-sessions-per-uid", maxs, NULL };
	/* With --fd-store, the stand-in starts the broker (its fds: twice). */
	const char *const *args = opt.fd_store ? argv : argv + 4;
	int i;

	snprintf(standin, sizeof(standin), "%s/uffd-fdstore", exe_dir);
	snprintf(notify, sizeof(notify), "%s/notify", dir);
	if (opt.fd_store)
		nofile *= 2;

	snprintf(maxs, sizeof(maxs), "%u", max);
	fflush(stdout);
	fflush(stderr);
	broker_pid = fork();
	if (broker_pid < 0) {
		perror("uffd-bench: fork");
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
		execv(args[0], (char *const *)args);
		_exit(127);
	}
	for (i = 0; i < 500; i++) {
		if (socket_listening(sock_path) && serving_pid() > 0)
			return 0;
		if (!broker_alive())
			return -1;
		sleep_ms(10);
	}
	fprintf(stderr, "uffd-bench: the broker does not listen on %s\n",
	    sock_path);
	print_log_tail(log_path, 20);
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
 * The broker's own helpers (its verifier and closer processes) come to the
 * bench when it exits (PR_SET_CHILD_SUBREAPER). Wait for them: none may
 * outlive the run. Returns how many were still alive after timeout_ms
 * (killed then).
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
			kid_del(pid);
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
		fprintf(stderr, "uffd-bench: pid %d outlived the broker: "
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
	const char *files[] = { sock_path, log_path, image_path, demo_copy,
	    lib_copy, bench_copy };
	char lock[160];
	size_t i;
	int status;

	if (getpid() != main_pid)
		return;
	for (i = 0; i < kids_cap; i++)
		if (kids[i] > 0)
			kill(kids[i], SIGKILL);
	for (i = 0; i < kids_cap; i++)
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
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (files[i][0] != '\0')
			unlink(files[i]);
	if (sock_path[0] != '\0') {
		/* Built without snprintf, which is not async-signal-safe. */
		size_t n = strlen(sock_path);

		memcpy(lock, sock_path, n);
		memcpy(lock + n, ".lock", 6);
		unlink(lock);
	}
	rmdir(dir);
	dir[0] = '\0';
}

static void
on_signal(int sig)
{
	static const char msg[] = "uffd-bench: interrupted; stopping the "
	    "broker and the clients\n";
	static const char alarm_msg[] = "uffd-bench: FAILED: the run did not "
	    "finish in time (watchdog); stopping the broker and the clients\n";

	if (sig == SIGALRM)
		(void)!write(2, alarm_msg, sizeof(alarm_msg) - 1);
	else
		(void)!write(2, msg, sizeof(msg) - 1);
	cleanup();
	_exit(sig == SIGALRM ? 1 : 128 + sig);
}

/* ---- statistics ---- */

struct stats {
	size_t	n;
	double	min, p50, p90, p99, p999, max, mean;
};

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The nearest-rank percentile of sorted samples. */
static double
pct(const double *v, size_t n, double p)
{
	size_t rank;

	if (n == 0)
		return NAN;
	rank = (size_t)ceil(p / 100.0 * (double)n);
	if (rank < 1)
		rank = 1;
	return v[rank - 1];
}

/* Sorts v. */
static struct stats
stats_of(double *v, size_t n)
{
	struct stats s = { .n = n };
	double sum = 0;
	size_t i;

	if (n == 0) {
		s.min = s.p50 = s.p90 = s.p99 = s.p999 = s.max = s.mean = NAN;
		return s;
	}
	qsort(v, n, sizeof(*v), cmp_double);
	for (i = 0; i < n; i++)
		sum += v[i];
	s.min = v[0];
	s.max = v[n - 1];
	s.p50 = pct(v, n, 50);
	s.p90 = pct(v, n, 90);
	s.p99 = pct(v, n, 99);
	s.p999 = pct(v, n, 99.9);
	s.mean = sum / (double)n;
	return s;
}

static double
median_of(double *v, size_t n)
{
	return stats_of(v, n).p50;
}

/* ---- figures ---- */

#define MAX_DETAILS	16

struct figure {
	char	id[48];
	char	name[96];
	const char *unit;
	double	value;
	size_t	samples;
	char	base_what[128];
	double	base;
	size_t	base_samples;
	double	ratio;
	char	goal[64];
	int	met;		/* 1 met, 0 not, -1 no goal */
	int	stretch;	/* the stretch goal: 1, 0, -1 none */
	bool	ok;		/* false: the benchmark broke */
	char	note[512];
	struct { const char *key; double v; } det[MAX_DETAILS];
	int	ndet;
};

static struct figure figs[32];
static int nfigs;

static struct figure *
figure_new(const char *id, const char *unit)
{
	struct figure *f = &figs[nfigs++];

	memset(f, 0, sizeof(*f));
	snprintf(f->id, sizeof(f->id), "%s", id);
	f->unit = unit;
	f->value = f->base = f->ratio = NAN;
	f->met = f->stretch = -1;
	f->ok = false;
	return f;
}

static void
detail(struct figure *f, const char *key, double v)
{
	if (f->ndet < MAX_DETAILS) {
		f->det[f->ndet].key = key;
		f->det[f->ndet].v = v;
		f->ndet++;
	}
}

/* ---- direct creation, the baseline ---- */

/* What a process that may open /dev/userfaultfd does for one uffd. */
static int
direct_create(void)
{
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	int dev, fd, rc = 0;

	if ((dev = open("/dev/userfaultfd", O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		rc = -errno;
	else {
		if (ioctl(fd, UFFDIO_API, &api) < 0)
			rc = -errno;
		close(fd);
	}
	close(dev);
	return rc;
}

static int
open_session(struct uffdc_session **s)
{
	int rc = uffdc_session_open(sock_path, s);

	if (rc < 0)
		fprintf(stderr, "uffd-bench: pid %d: session open: %s\n",
		    (int)getpid(), uffdc_strerror(rc));
	return rc;
}

/* One grant: uffdc_create + uffdc_release. */
static int
lib_grant(struct uffdc_session *s)
{
	struct uffdc_uffd *u;
	int rc;

	if ((rc = uffdc_create(s, 0, 0, &u)) < 0) {
		fprintf(stderr, "uffd-bench: pid %d: grant refused: %s (%s)\n",
		    (int)getpid(), uffdc_strerror(rc), uffdc_session_reason(s));
		return rc;
	}
	if ((rc = uffdc_release(u)) < 0)
		fprintf(stderr, "uffd-bench: pid %d: release: %s\n",
		    (int)getpid(), uffdc_strerror(rc));
	return rc;
}

/* ---- grant latency ---- */

struct lat_job {
	unsigned int	warm, n;
	uint64_t	*out;		/* shared: n samples, ns */
};

static int
child_lib_latency(void *arg)
{
	struct lat_job *j = arg;
	struct uffdc_session *s;
	unsigned int i;

	if (open_session(&s) < 0)
		return 1;
	for (i = 0; i < j->warm + j->n; i++) {
		uint64_t t0 = now_ns();

		if (lib_grant(s) < 0)
			return 1;
		if (i >= j->warm)
			j->out[i - j->warm] = now_ns() - t0;
	}
	uffdc_session_close(s);
	return 0;
}

static int
child_direct_latency(void *arg)
{
	struct lat_job *j = arg;
	unsigned int i;
	int rc;

	for (i = 0; i < j->warm + j->n; i++) {
		uint64_t t0 = now_ns();

		if ((rc = direct_create()) < 0) {
			fprintf(stderr, "uffd-bench: direct creation: %s\n",
			    strerror(-rc));
			return 1;
		}
		if (i >= j->warm)
			j->out[i - j->warm] = now_ns() - t0;
	}
	return 0;
}

/* The p50 of each block of the library's grants, of the last call. */
static double block_p50[16];
static unsigned int nblocks;

/*
 * n samples of each, in alternating blocks (a fresh process each), in
 * microseconds. direct may be NULL (the library's alone).
 */
static int
grant_latency(int cpu, unsigned int n, unsigned int blocks, double *lib,
    double *direct)
{
	unsigned int per = n / blocks, b, i, got = 0;
	uint64_t *buf = shared_alloc(sizeof(uint64_t) * per);
	struct lat_job j = { .warm = 200, .n = per, .out = buf };
	int pass, rc = 0;

	nblocks = 0;
	for (b = 0; b < blocks && rc == 0; b++) {
		for (pass = 0; pass < 2 && rc == 0; pass++) {
			/* Alternate which goes first. */
			bool is_lib = (pass == 0) == (b % 2 == 0);
			double *dst = is_lib ? lib : direct;
			pid_t pid;

			if (dst == NULL)
				continue;
			pid = spawn(is_lib ? child_lib_latency :
			    child_direct_latency, &j, is_lib, cpu);
			if (pid < 0 || reap(pid) != 0) {
				rc = -1;
				break;
			}
			for (i = 0; i < per; i++)
				dst[got + i] = buf[i] / 1e3;
			if (is_lib && b < 16) {
				double *copy = malloc(per * sizeof(double));

				if (copy != NULL) {
					memcpy(copy, dst + got, per *
					    sizeof(double));
					block_p50[b] = median_of(copy, per);
					nblocks = b + 1;
					free(copy);
				}
			}
		}
		got += per;
	}
	munmap(buf, sizeof(uint64_t) * per);
	return rc;
}


static void
bench_grant_latency(void)
{
	unsigned int n = cfg.grant_samples / cfg.grant_blocks * cfg.grant_blocks;
	double *lib = calloc(n, sizeof(double));
	double *direct = calloc(n, sizeof(double));
	struct figure *f;
	struct stats sl, sd;
	int rc;

	/* Pinned: the broker and the client share one core. */
	f = figure_new("grant_p50_pinned", "us");
	snprintf(f->name, sizeof(f->name), "grant p50, broker+client on CPU %d",
	    opt.cpu);
	snprintf(f->base_what, sizeof(f->base_what), "direct open+IOC_NEW+"
	    "UFFDIO_API+close, unjailed, on CPU %d, p50", opt.cpu);
	snprintf(f->goal, sizeof(f->goal), "<= 5x (stretch 3x)");
	if (pin(serving_pid(), opt.cpu) < 0) {
		failed("pinning the broker: %s", strerror(errno));
		return;
	}
	rc = grant_latency(opt.cpu, n, cfg.grant_blocks, lib, direct);
	unpin(serving_pid());
	if (rc < 0) {
		failed("grant latency, pinned: a client failed");
	} else {
		sl = stats_of(lib, n);
		sd = stats_of(direct, n);
		f->ok = true;
		f->value = sl.p50;
		f->base = sd.p50;
		f->samples = f->base_samples = n;
		f->ratio = sl.p50 / sd.p50;
		f->met = f->ratio <= 5;
		f->stretch = f->ratio <= 3;
		median_of(block_p50, nblocks);
		detail(f, "lib_block_p50_min_us", block_p50[0]);
		detail(f, "lib_block_p50_max_us", block_p50[nblocks - 1]);
		detail(f, "lib_p90_us", sl.p90);
		detail(f, "lib_p99_us", sl.p99);
		detail(f, "direct_p90_us", sd.p90);
		detail(f, "direct_p99_us", sd.p99);
	}

	f = figure_new("grant_p99_unpinned", "us");
	snprintf(f->name, sizeof(f->name), "grant p99, unpinned");
	snprintf(f->base_what, sizeof(f->base_what), "direct creation, "
	    "unpinned, p99");
	snprintf(f->goal, sizeof(f->goal), "<= 20x");
	if (grant_latency(-1, n, cfg.grant_blocks, lib, direct) < 0) {
		failed("grant latency, unpinned: a client failed");
	} else {
		sl = stats_of(lib, n);
		sd = stats_of(direct, n);
		f->ok = true;
		f->value = sl.p99;
		f->base = sd.p99;
		f->samples = f->base_samples = n;
		f->ratio = sl.p99 / sd.p99;
		f->met = f->ratio <= 20;
		detail(f, "lib_p50_us", sl.p50);
		detail(f, "lib_p999_us", sl.p999);
		detail(f, "lib_max_us", sl.max);
		detail(f, "direct_p50_us", sd.p50);
		detail(f, "direct_p999_us", sd.p999);
		detail(f, "direct_max_us", sd.max);
	}
	free(lib);
	free(direct);
}

/* ---- grant throughput ---- */

struct tput_shared {
	uint64_t	deadline;
	uint64_t	count[64];
};

struct tput_job {
	struct tput_shared *sh;
	int		go_rd, go_wr, ready_wr;
	unsigned int	idx;
	bool		lib;
};

static int
child_tput(void *arg)
{
	struct tput_job *j = arg;
	struct uffdc_session *s = NULL;
	uint64_t n = 0;
	char c = 'R';
	int rc;

	close(j->go_wr);
	if (j->lib && open_session(&s) < 0)
		c = 'F';
	if (write(j->ready_wr, &c, 1) != 1 || c == 'F')
		return 1;
	/* All start when the bench closes the pipe. */
	while (read(j->go_rd, &c, 1) < 0 && errno == EINTR)
		;
	for (;;) {
		rc = j->lib ? lib_grant(s) : direct_create();
		if (rc < 0) {
			if (!j->lib)
				fprintf(stderr, "uffd-bench: direct creation: "
				    "%s\n", strerror(-rc));
			return 1;
		}
		if (now_ns() > j->sh->deadline)
			break;
		n++;
	}
	j->sh->count[j->idx] = n;
	if (s != NULL)
		uffdc_session_close(s);
	return 0;
}

/* Grants per second from nproc processes; -1 when one failed. */
static double
throughput(unsigned int nproc, bool lib)
{
	struct tput_shared *sh = shared_alloc(sizeof(*sh));
	pid_t pids[64];
	int go[2], ready[2];
	unsigned int i, started = 0, readied = 0;
	uint64_t total = 0;
	bool bad = false;
	char c;

	if (pipe2(go, O_CLOEXEC) < 0 || pipe2(ready, O_CLOEXEC) < 0) {
		perror("uffd-bench: pipe");
		exit(1);
	}
	for (i = 0; i < nproc; i++) {
		struct tput_job j = { .sh = sh, .go_rd = go[0], .go_wr = go[1],
		    .ready_wr = ready[1], .idx = i, .lib = lib };

		if ((pids[i] = spawn(child_tput, &j, lib, -1)) < 0)
			break;
		started++;
	}
	close(ready[1]);
	while (readied < started) {
		struct pollfd pfd = { .fd = ready[0], .events = POLLIN };

		if (poll(&pfd, 1, 20000) <= 0 || read(ready[0], &c, 1) != 1 ||
		    c != 'R') {
			bad = true;
			break;
		}
		readied++;
	}
	sh->deadline = now_ns() + (uint64_t)(cfg.tput_s * 1e9);
	close(go[1]);
	close(go[0]);
	close(ready[0]);
	for (i = 0; i < started; i++)
		if (reap(pids[i]) != 0)
			bad = true;
	for (i = 0; i < started; i++)
		total += sh->count[i];
	munmap(sh, sizeof(*sh));
	if (bad || started < nproc)
		return -1;
	return (double)total / cfg.tput_s;
}

static void
bench_throughput(void)
{
	static const unsigned int procs[] = { 1, 8, 64 };
	static const char *const ids[] = { "grant_tput_1", "grant_tput_8",
	    "grant_tput_64" };
	size_t k;

	for (k = 0; k < sizeof(procs) / sizeof(procs[0]); k++) {
		struct figure *f = figure_new(ids[k], "grants/s");
		double lib, direct;

		snprintf(f->name, sizeof(f->name), "grant throughput, %u "
		    "process%s", procs[k], procs[k] == 1 ? "" : "es");
		snprintf(f->base_what, sizeof(f->base_what), "direct creation, "
		    "%u process%s, %.1f s", procs[k], procs[k] == 1 ? "" : "es",
		    cfg.tput_s);
		snprintf(f->goal, sizeof(f->goal), "ratio >= 0.2");
		lib = throughput(procs[k], true);
		direct = throughput(procs[k], false);
		if (lib < 0 || direct < 0) {
			failed("throughput with %u processes: a client failed",
			    procs[k]);
			continue;
		}
		f->ok = true;
		f->value = lib;
		f->base = direct;
		f->samples = (size_t)(lib * cfg.tput_s);
		f->base_samples = (size_t)(direct * cfg.tput_s);
		f->ratio = lib / direct;
		f->met = f->ratio >= 0.2;
		detail(f, "wall_s", cfg.tput_s);
		detail(f, "processes", procs[k]);
	}
}

/* ---- the fault path: library against raw ioctls ---- */

static const size_t fault_sizes[] = { 4096, 64 * 1024, 2 * MIB };
#define NSIZES		(sizeof(fault_sizes) / sizeof(fault_sizes[0]))
#define MAX_ROUNDS	64

struct fault_shared {
	double	lib_ns[NSIZES][MAX_ROUNDS];	/* per fault, per round */
	double	raw_ns[NSIZES][MAX_ROUNDS];
	unsigned int rounds;
};

struct fault_loop {
	struct uffdc_uffd *u;
	int		fd;
	uint8_t		*region;
	const uint8_t	*src;
	size_t		size, chunk;
	bool		lib;
	int		err;
};

/* Serve every fault of one round through the library. */
static int
serve_lib(struct fault_loop *c, size_t *served)
{
	struct uffdc_event ev;
	int rc;

	while ((rc = uffdc_read_event(c->u, &ev)) == 1) {
		uint64_t off;
		size_t done = 0, step;

		if (ev.kind != UFFDC_EVENT_PAGEFAULT)
			return -EPROTO;
		off = (ev.pagefault.address - (uintptr_t)c->region) &
		    ~(uint64_t)(c->chunk - 1);
		do {
			step = 0;
			rc = uffdc_copy(c->u, c->region + off + done,
			    c->src + off + done, c->chunk - done, 0, &step);
			done += step;
		} while (rc == -UFFDC_EPARTIAL && done < c->chunk);
		if (rc < 0 && rc != -UFFDC_EPARTIAL)
			return rc;
		(*served)++;
	}
	return rc;
}

/* The same with read() and ioctl(UFFDIO_COPY). */
static int
serve_raw(struct fault_loop *c, size_t *served)
{
	struct uffd_msg msg;
	ssize_t n;

	while ((n = read(c->fd, &msg, sizeof(msg))) == sizeof(msg)) {
		uint64_t off;
		size_t done = 0;
		int rc;

		if (msg.event != UFFD_EVENT_PAGEFAULT)
			return -EPROTO;
		off = (msg.arg.pagefault.address - (uintptr_t)c->region) &
		    ~(uint64_t)(c->chunk - 1);
		do {
			struct uffdio_copy cp = {
				.dst = (uintptr_t)(c->region + off + done),
				.src = (uintptr_t)(c->src + off + done),
				.len = c->chunk - done,
			};

			rc = ioctl(c->fd, UFFDIO_COPY, &cp);
			if (cp.copy > 0)
				done += (size_t)cp.copy;
			if (rc < 0 && !(errno == EAGAIN && cp.copy > 0))
				return -errno;
		} while (done < c->chunk);
		(*served)++;
	}
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		return -errno;
	return 0;
}

static void *
fault_handler(void *arg)
{
	struct fault_loop *c = arg;
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	size_t need = c->size / c->chunk, served = 0;
	int rc;

	while (served < need) {
		rc = poll(&pfd, 1, 5000);
		if (rc <= 0) {
			if (rc < 0 && errno == EINTR)
				continue;
			c->err = rc == 0 ? -ETIMEDOUT : -errno;
			return NULL;
		}
		rc = c->lib ? serve_lib(c, &served) : serve_raw(c, &served);
		if (rc < 0) {
			c->err = rc;
			return NULL;
		}
	}
	return NULL;
}

/* One round: empty the region, touch a byte of every chunk. ns per fault. */
static double
fault_round(struct fault_loop *c)
{
	pthread_t thr;
	uint64_t t0, t1;
	size_t off;

	if (madvise(c->region, c->size, MADV_DONTNEED) < 0)
		return -1;
	c->err = 0;
	if (pthread_create(&thr, NULL, fault_handler, c) != 0)
		return -1;
	t0 = now_ns();
	for (off = 0; off < c->size; off += c->chunk)
		(void)*(volatile uint8_t *)(c->region + off);
	t1 = now_ns();
	pthread_join(thr, NULL);
	if (c->err < 0) {
		fprintf(stderr, "uffd-bench: fault handler (%s, %zu bytes): %s\n",
		    c->lib ? "library" : "raw", c->chunk, uffdc_strerror(c->err));
		return -1;
	}
	if (memcmp(c->region, c->src, c->size) != 0) {
		fprintf(stderr, "uffd-bench: fault path (%s, %zu bytes): the "
		    "region differs from its source\n",
		    c->lib ? "library" : "raw", c->chunk);
		return -1;
	}
	return (double)(t1 - t0) / (double)(c->size / c->chunk);
}

static int
child_fault(void *arg)
{
	struct fault_shared *sh = arg;
	struct fault_loop c = { .size = 0 };
	size_t most = 0;
	struct uffdc_session *s;
	uint8_t *map, *src;
	uint64_t x = 0x2545f4914f6cdd1dULL;
	size_t k, i;
	unsigned int r;
	int rc;

	for (k = 0; k < NSIZES; k++)
		if (cfg.fault_region[k] > most)
			most = cfg.fault_region[k];
	map = mmap(NULL, most + 2 * MIB, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	src = mmap(NULL, most, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (map == MAP_FAILED || src == MAP_FAILED)
		return 1;
	/* 2 MiB-aligned, so that every chunk is aligned. */
	c.region = (uint8_t *)(((uintptr_t)map + 2 * MIB - 1) & ~(2 * MIB - 1));
	for (i = 0; i < most; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(src + i, &x, 8);
	}
	c.src = src;
	if (open_session(&s) < 0)
		return 1;
	if ((rc = uffdc_create(s, 0, 0, &c.u)) < 0) {
		fprintf(stderr, "uffd-bench: fault path: grant: %s\n",
		    uffdc_strerror(rc));
		return 1;
	}
	c.fd = uffdc_fd(c.u);
	if ((rc = uffdc_register(c.u, c.region, most, UFFDC_MODE_MISSING,
	    NULL)) < 0) {
		fprintf(stderr, "uffd-bench: fault path: register: %s\n",
		    uffdc_strerror(rc));
		return 1;
	}
	for (k = 0; k < NSIZES; k++) {
		c.chunk = fault_sizes[k];
		c.size = cfg.fault_region[k];
		/* One round of each to warm up, not counted. */
		for (r = 0; r < 2; r++) {
			c.lib = r == 0;
			if (fault_round(&c) < 0)
				return 1;
		}
		for (r = 0; r < sh->rounds; r++) {
			int pass;

			/* Alternate which goes first. */
			for (pass = 0; pass < 2; pass++) {
				double ns;

				c.lib = (pass == 0) == (r % 2 == 0);
				if ((ns = fault_round(&c)) < 0)
					return 1;
				if (c.lib)
					sh->lib_ns[k][r] = ns;
				else
					sh->raw_ns[k][r] = ns;
			}
		}
	}
	uffdc_release(c.u);
	uffdc_session_close(s);
	return 0;
}

static void
bench_fault_path(void)
{
	static const char *const ids[] = { "fault_path_4k", "fault_path_64k",
	    "fault_path_2m" };
	static const char *const names[] = { "4 KiB", "64 KiB", "2 MiB" };
	struct fault_shared *sh = shared_alloc(sizeof(*sh));
	double ratios[MAX_ROUNDS];
	struct figure *f[NSIZES];
	unsigned int r;
	size_t k;
	pid_t pid;
	int rc;

	sh->rounds = cfg.fault_rounds;
	for (k = 0; k < NSIZES; k++) {
		f[k] = figure_new(ids[k], "us/fault");
		snprintf(f[k]->name, sizeof(f[k]->name), "fault path via library, "
		    "%s copies", names[k]);
		snprintf(f[k]->base_what, sizeof(f[k]->base_what), "raw read() + "
		    "ioctl(UFFDIO_COPY) on the same uffd, %s copies", names[k]);
		snprintf(f[k]->goal, sizeof(f[k]->goal), "ratio 1.00 +- 0.05");
	}
	pid = spawn(child_fault, sh, true, -1);
	rc = pid < 0 ? -1 : reap(pid);
	if (rc != 0) {
		failed("fault path: the client failed (exit %d)", rc);
		munmap(sh, sizeof(*sh));
		return;
	}
	/*
	 * The ratio is the median of the rounds' ratios: each round runs the
	 * two loops back to back, so a slow spell of the machine (another
	 * process, the balloon) hits both loops of a round.
	 */
	for (k = 0; k < NSIZES; k++) {
		double lmin, rmin, pair;

		for (r = 0; r < sh->rounds; r++)
			ratios[r] = sh->lib_ns[k][r] / sh->raw_ns[k][r];
		pair = median_of(ratios, sh->rounds);	/* sorts ratios */
		f[k]->ok = true;
		f[k]->value = median_of(sh->lib_ns[k], sh->rounds) / 1e3;
		f[k]->base = median_of(sh->raw_ns[k], sh->rounds) / 1e3;
		lmin = sh->lib_ns[k][0] / 1e3;		/* sorted */
		rmin = sh->raw_ns[k][0] / 1e3;
		f[k]->samples = f[k]->base_samples = sh->rounds;
		f[k]->ratio = pair;
		f[k]->met = f[k]->ratio >= 0.95 && f[k]->ratio <= 1.05;
		detail(f[k], "faults_per_round", (double)(cfg.fault_region[k] /
		    fault_sizes[k]));
		detail(f[k], "round_bytes", (double)cfg.fault_region[k]);
		detail(f[k], "ratio_of_medians", f[k]->value / f[k]->base);
		detail(f[k], "ratio_of_minima", lmin / rmin);
		detail(f[k], "pair_ratio_min", ratios[0]);
		detail(f[k], "pair_ratio_max", ratios[sh->rounds - 1]);
		detail(f[k], "lib_min_us", lmin);
		detail(f[k], "raw_min_us", rmin);
		detail(f[k], "lib_MBps", fault_sizes[k] / f[k]->value);
		detail(f[k], "raw_MBps", fault_sizes[k] / f[k]->base);
		snprintf(f[k]->note, sizeof(f[k]->note), "%u rounds of %zu "
		    "faults, the loops back to back; ratio: the rounds' median "
		    "(%.3f..%.3f); of medians %.3f, of minima %.3f",
		    sh->rounds, cfg.fault_region[k] / fault_sizes[k], ratios[0],
		    ratios[sh->rounds - 1], f[k]->value / f[k]->base,
		    lmin / rmin);
	}
	munmap(sh, sizeof(*sh));
}

/* ---- lazy restore ---- */

/* An image as the demo makes one: random data, 2 MiB holes, zero pages. */
static int
make_image(size_t size)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	uint8_t *buf = malloc(2 * MIB);
	size_t off, i;
	int fd;

	fd = open(image_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 || buf == NULL || fchmod(fd, 0644) < 0 ||
	    ftruncate(fd, (off_t)size) < 0)
		goto fail;
	for (off = 0; off < size; off += 2 * MIB) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		if (x % 4 == 0)
			continue;
		for (i = 0; i < 2 * MIB / 8; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			memcpy(buf + i * 8, &x, 8);
		}
		for (i = 0; i < 2 * MIB; i += 4096)
			if ((buf[i] & 15) == 0)
				memset(buf + i, 0, 4096);
		if (pwrite(fd, buf, 2 * MIB, (off_t)off) != (ssize_t)(2 * MIB))
			goto fail;
	}
	free(buf);
	return close(fd);
fail:
	perror("uffd-bench: making the image");
	free(buf);
	if (fd >= 0)
		close(fd);
	return -1;
}

static int
copy_file(const char *from, const char *to, mode_t mode)
{
	char buf[65536];
	ssize_t n;
	int in, out, rc = 0;

	if ((in = open(from, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	if ((out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    mode)) < 0) {
		close(in);
		return -1;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, n) != n) {
			rc = -1;
			break;
		}
	if (n < 0 || fchmod(out, mode) < 0)
		rc = -1;
	close(in);
	if (close(out) < 0)
		rc = -1;
	return rc;
}

struct demo_job {
	int		out_wr;
	const char	*mode;		/* the demo's --mode: copy or minor */
};

static int
child_demo(void *arg)
{
	struct demo_job *j = arg;
	const char *argv[] = { demo_copy, "--socket", sock_path, "--image",
	    image_path, "--mode", j->mode, NULL };

	if (dup2(j->out_wr, 1) < 0 || dup2(j->out_wr, 2) < 0)
		return 126;
	execv(argv[0], (char *const *)argv);
	return 127;
}

/* Run the demo as nobody in mode; its MB/s, or -1. */
static double
run_demo(const char *mode)
{
	struct demo_job j = { .mode = mode };
	char out[16384], *p, *q;
	size_t len = 0;
	ssize_t n;
	unsigned long long faults;
	double mbps;
	int pipefd[2], rc;
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -1;
	j.out_wr = pipefd[1];
	pid = spawn(child_demo, &j, true, -1);
	close(pipefd[1]);
	while (pid > 0 && (n = read(pipefd[0], out + len,
	    sizeof(out) - 1 - len)) > 0)
		len += (size_t)n;
	close(pipefd[0]);
	out[len] = '\0';
	rc = pid < 0 ? -1 : reap(pid);
	/* "..., faults N" then "  M MB/s, time to get the uffd ..." */
	if (rc != 0 || strstr(out, "restore verified") == NULL ||
	    (p = strstr(out, "faults ")) == NULL ||
	    sscanf(p, "faults %llu", &faults) != 1 ||
	    (q = strstr(p, " MB/s, time to get the uffd")) == NULL ||
	    (q = memrchr(p, '\n', (size_t)(q - p))) == NULL ||
	    sscanf(q + 1, " %lf MB/s", &mbps) != 1) {
		fprintf(stderr, "uffd-bench: the restore demo failed (exit %d):\n"
		    "%s\n", rc, out);
		return -1;
	}
	return mbps;
}

/*
 * memcpy from the (cached, mapped) image into fresh memory, as a restore
 * fills memory nobody touched yet; or into memory already faulted in
 * (prefault), the copy alone. MB/s.
 */
static double
memcpy_mbps(size_t size, bool prefault)
{
	int fd = open(image_path, O_RDONLY | O_CLOEXEC);
	uint8_t *src, *dst;
	uint64_t t0, t1;

	if (fd < 0)
		return -1;
	src = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
	close(fd);
	dst = mmap(NULL, size, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (src == MAP_FAILED || dst == MAP_FAILED)
		return -1;
	if (prefault)
		memset(dst, 1, size);
	t0 = now_ns();
	memcpy(dst, src, size);
	t1 = now_ns();
	if (memcmp(dst, src, size) != 0) {
		fprintf(stderr, "uffd-bench: memcpy baseline: copy differs\n");
		return -1;
	}
	munmap(src, size);
	munmap(dst, size);
	return (double)size / 1e6 / ((double)(t1 - t0) / 1e9);
}

/* read() of the (cached) image into fresh memory: MB/s. */
static double
read_mbps(size_t size)
{
	int fd = open(image_path, O_RDONLY | O_CLOEXEC);
	uint8_t *dst;
	uint64_t t0, t1;
	size_t off = 0;
	ssize_t n = 0;

	if (fd < 0)
		return -1;
	dst = mmap(NULL, size, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (dst == MAP_FAILED) {
		close(fd);
		return -1;
	}
	t0 = now_ns();
	while (off < size && (n = read(fd, dst + off, size - off)) > 0)
		off += (size_t)n;
	t1 = now_ns();
	close(fd);
	munmap(dst, size);
	if (off != size)
		return -1;
	return (double)size / 1e6 / ((double)(t1 - t0) / 1e9);
}

static void
bench_restore(void)
{
	struct figure *f = figure_new("lazy_restore", "MB/s");
	double demo[8], minor[8], mc[8], rd[8], mp[8], d, m, r, p, mi;
	unsigned int i, runs = cfg.restore_runs;
	uint64_t t0;

	snprintf(f->name, sizeof(f->name), "lazy restore of %zu MiB via "
	    "library", cfg.image / MIB);
	snprintf(f->base_what, sizeof(f->base_what), "memcpy of the same "
	    "%zu MiB (page-cached image to fresh memory)", cfg.image / MIB);
	snprintf(f->goal, sizeof(f->goal), ">= 0.5 of memcpy");
	/* nobody runs the demo from the bench's directory, as run-demo.sh. */
	if (copy_file(opt.demo, demo_copy, 0755) < 0) {
		failed("restore: cannot copy %s: %s", opt.demo, strerror(errno));
		return;
	}
	t0 = now_ns();
	if (make_image(cfg.image) < 0) {
		failed("restore: cannot make the image");
		return;
	}
	detail(f, "image_make_s", (double)(now_ns() - t0) / 1e9);
	for (i = 0; i < runs; i++) {
		if ((demo[i] = run_demo("copy")) < 0 ||
		    (minor[i] = run_demo("minor")) < 0) {
			failed("restore: uffd-restore-demo failed");
			return;
		}
		if ((mc[i] = memcpy_mbps(cfg.image, false)) < 0 ||
		    (rd[i] = read_mbps(cfg.image)) < 0 ||
		    (mp[i] = memcpy_mbps(cfg.image, true)) < 0) {
			failed("restore: a baseline failed");
			return;
		}
	}
	d = median_of(demo, runs);
	mi = median_of(minor, runs);
	m = median_of(mc, runs);
	r = median_of(rd, runs);
	p = median_of(mp, runs);
	f->ok = true;
	f->value = d;
	f->base = m;
	f->samples = f->base_samples = runs;
	f->ratio = d / m;
	f->met = f->ratio >= 0.5;
	detail(f, "read_MBps", r);
	detail(f, "ratio_to_read", d / r);
	detail(f, "memcpy_prefaulted_MBps", p);
	detail(f, "ratio_to_memcpy_prefaulted", d / p);
	detail(f, "minor_mode_MBps", mi);
	detail(f, "minor_mode_ratio_to_memcpy", mi / m);
	detail(f, "demo_min_MBps", demo[0]);
	detail(f, "demo_max_MBps", demo[runs - 1]);
	detail(f, "memcpy_min_MBps", mc[0]);
	detail(f, "memcpy_max_MBps", mc[runs - 1]);
	snprintf(f->note, sizeof(f->note), "median of %u runs (restore "
	    "%.0f..%.0f, memcpy %.0f..%.0f); read() %.0f MB/s (restore/read "
	    "%.2f); memcpy into prefaulted memory %.0f MB/s (%.2f); minor mode "
	    "(UFFDIO_CONTINUE of a memfd's page cache) %.0f MB/s (%.2f of "
	    "memcpy)", runs, demo[0], demo[runs - 1], mc[0], mc[runs - 1], r,
	    d / r, p, d / p, mi, mi / m);
	unlink(image_path);
}

/* ---- session open ---- */

struct open_job {
	uint64_t	*t_end;		/* shared */
	bool		lib;
};

static int
child_open(void *arg)
{
	struct open_job *j = arg;
	struct uffdc_session *s;
	int rc;

	if (j->lib) {
		rc = open_session(&s);
		*j->t_end = now_ns();
	} else {
		rc = direct_create();
		*j->t_end = now_ns();
		if (rc < 0)
			fprintf(stderr, "uffd-bench: direct creation: %s\n",
			    strerror(-rc));
	}
	return rc < 0;
}

/* n of each, alternating, in ms, fork included. */
static int
session_open_samples(unsigned int n, double *lib, double *direct)
{
	uint64_t *t_end = shared_alloc(sizeof(uint64_t));
	unsigned int i;
	int pass, rc = 0;

	for (i = 0; i < n && rc == 0; i++)
		for (pass = 0; pass < 2; pass++) {
			struct open_job j = { .t_end = t_end,
			    .lib = (pass == 0) == (i % 2 == 0) };
			uint64_t t0 = now_ns();
			pid_t pid = spawn(child_open, &j, j.lib, -1);

			if (pid < 0 || reap(pid) != 0) {
				rc = -1;
				break;
			}
			(j.lib ? lib : direct)[i] = (double)(*t_end - t0) / 1e6;
		}
	munmap(t_end, sizeof(uint64_t));
	return rc;
}

static void
bench_session_open(unsigned int present)
{
	unsigned int n = cfg.open_samples;
	double *lib = calloc(n, sizeof(double)), *direct = calloc(n,
	    sizeof(double));
	struct figure *f = figure_new(present ? "session_open_n" :
	    "session_open_0", "ms");
	struct stats sl, sd;

	snprintf(f->name, sizeof(f->name), "session open p50, %u idle "
	    "sessions present", present);
	snprintf(f->base_what, sizeof(f->base_what), "fresh forked process "
	    "creating directly (fork included in both), p50");
	snprintf(f->goal, sizeof(f->goal), "%s", present ? "<= 0.3 ms" :
	    "(info; goal with N)");
	if (session_open_samples(n, lib, direct) < 0) {
		failed("session open with %u sessions: a client failed",
		    present);
	} else {
		sl = stats_of(lib, n);
		sd = stats_of(direct, n);
		f->ok = true;
		f->value = sl.p50;
		f->base = sd.p50;
		f->samples = f->base_samples = n;
		f->ratio = sl.p50 / sd.p50;
		if (present)
			f->met = sl.p50 <= 0.3;
		detail(f, "sessions_present", present);
		detail(f, "lib_p90_ms", sl.p90);
		detail(f, "lib_p99_ms", sl.p99);
		detail(f, "lib_max_ms", sl.max);
		detail(f, "direct_p90_ms", sd.p90);
		detail(f, "direct_p99_ms", sd.p99);
	}
	free(lib);
	free(direct);
}

/* ---- idle sessions ---- */

static pid_t *idle;
static unsigned int nidle;

struct idle_job {
	int	ready_wr;
};

/* Open a session, say so on ready_wr, hold it until EOF on hold. */
static int
idle_session(const char *sock, int ready_wr, int hold)
{
	struct uffdc_session *s;
	char c;
	int rc;

	if ((rc = uffdc_session_open(sock, &s)) < 0)
		fprintf(stderr, "uffd-bench: idle client %d: session open: %s\n",
		    (int)getpid(), uffdc_strerror(rc));
	c = rc < 0 ? 'F' : 'R';
	if (write(ready_wr, &c, 1) != 1 || c == 'F')
		return 1;
	close(ready_wr);
	/* Until the bench closes the other end. */
	while (read(hold, &c, 1) < 0 && errno == EINTR)
		;
	return 0;
}

/* Put fd at want, open across exec. */
static int
fd_at(int fd, int want)
{
	if (fd == want)
		return fcntl(fd, F_SETFD, 0);
	return dup2(fd, want) < 0 ? -1 : 0;
}

/*
 * An idle client is a fresh program, as a VMM's processes are (its own
 * address-space layout): the bench run again with --idle-client, the pipes
 * at fds 3 and 4. --idle-fork keeps the forked process instead.
 */
static int
child_idle(void *arg)
{
	struct idle_job *j = arg;
	const char *argv[] = { "uffd-bench", "--idle-client", sock_path, NULL };

	if (opt.idle_fork)
		return idle_session(sock_path, j->ready_wr, hold_rd);
	if (j->ready_wr == 4) {
		int fd = dup(j->ready_wr);

		if (fd < 0)
			return 126;
		j->ready_wr = fd;
	}
	if (fd_at(j->ready_wr, 3) < 0 || fd_at(hold_rd, 4) < 0)
		return 126;
	execv(bench_copy, (char *const *)argv);
	fprintf(stderr, "uffd-bench: exec %s: %s\n", bench_copy, strerror(errno));
	return 127;
}

/* N idle sessions, at most 8 handshakes at a time. Seconds, or -1. */
static double
idle_up(unsigned int n)
{
	int ready[2], hold[2];
	unsigned int inflight = 0;
	uint64_t t0 = now_ns();
	char c;

	if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(hold, O_CLOEXEC) < 0) {
		perror("uffd-bench: pipe");
		return -1;
	}
	hold_rd = hold[0];
	hold_wr = hold[1];
	idle = calloc(n, sizeof(*idle));
	while (nidle < n || inflight > 0) {
		if (nidle < n && inflight < 8) {
			struct idle_job j = { .ready_wr = ready[1] };

			if ((idle[nidle] = spawn(child_idle, &j, true, -1)) < 0)
				break;
			nidle++;
			inflight++;
			continue;
		}
		{
			struct pollfd pfd = { .fd = ready[0], .events = POLLIN };

			if (poll(&pfd, 1, 20000) <= 0 ||
			    read(ready[0], &c, 1) != 1 || c != 'R') {
				fprintf(stderr, "uffd-bench: idle session %u of "
				    "%u did not open\n", nidle, n);
				close(ready[0]);
				close(ready[1]);
				return -1;
			}
			inflight--;
		}
	}
	close(ready[0]);
	close(ready[1]);
	close(hold_rd);
	hold_rd = -1;
	if (nidle < n)
		return -1;
	return (double)(now_ns() - t0) / 1e9;
}

/* End them all; seconds, or -1 when one did not exit cleanly. */
static double
idle_down(void)
{
	uint64_t t0 = now_ns();
	unsigned int i;
	bool bad = false;

	if (hold_wr >= 0)
		close(hold_wr);
	hold_wr = -1;
	for (i = 0; i < nidle; i++)
		if (reap(idle[i]) != 0)
			bad = true;
	nidle = 0;
	free(idle);
	idle = NULL;
	return bad ? -1 : (double)(now_ns() - t0) / 1e9;
}

/* ---- the broker's memory ---- */

/* A "Key: N kB" line of a /proc file, in KiB, or -1. */
static long
proc_kb(pid_t pid, const char *file, const char *key)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
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

static int
count_fds(pid_t pid)
{
	char path[64];
	struct dirent *d;
	DIR *dp;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	if ((dp = opendir(path)) == NULL)
		return -1;
	while ((d = readdir(dp)) != NULL)
		if (d->d_name[0] != '.')
			n++;
	closedir(dp);
	return n;
}

struct mem_sample {
	long	rss_kb, pss_kb;
	int	fds;
};

static struct mem_sample
broker_memory(void)
{
	struct mem_sample m;

	m.rss_kb = proc_kb(serving_pid(), "status", "VmRSS");
	m.pss_kb = proc_kb(serving_pid(), "smaps_rollup", "Pss");
	m.fds = count_fds(serving_pid());
	return m;
}

static void
memory_figure(const struct mem_sample *m0, const struct mem_sample *mn,
    unsigned int n)
{
	struct figure *f = figure_new("memory_per_idle_session", "KiB");

	snprintf(f->name, sizeof(f->name), "broker RSS per idle session "
	    "(N=%u)", n);
	snprintf(f->base_what, sizeof(f->base_what), "-");
	snprintf(f->goal, sizeof(f->goal), "< 8 KiB");
	if (m0->rss_kb < 0 || mn->rss_kb < 0) {
		failed("memory: cannot read the broker's VmRSS");
		return;
	}
	f->ok = true;
	f->value = (double)(mn->rss_kb - m0->rss_kb) / n;
	f->samples = 2;
	f->met = f->value < 8;
	detail(f, "rss0_kb", m0->rss_kb);
	detail(f, "rssN_kb", mn->rss_kb);
	detail(f, "pss0_kb", m0->pss_kb);
	detail(f, "pssN_kb", mn->pss_kb);
	detail(f, "pss_per_session_kb", (double)(mn->pss_kb - m0->pss_kb) / n);
	detail(f, "fds0", m0->fds);
	detail(f, "fdsN", mn->fds);
	detail(f, "fds_per_session", (double)(mn->fds - m0->fds) / n);
	snprintf(f->note, sizeof(f->note), "VmRSS %ld -> %ld KiB, Pss %ld -> "
	    "%ld KiB, fds %d -> %d (kernel objects not in RSS)", m0->rss_kb,
	    mn->rss_kb, m0->pss_kb, mn->pss_kb, m0->fds, mn->fds);
}

/* ---- the liveness tick, seen from outside ---- */

#define RT_WINDOWS	16	/* one per second of sampling */
#define RT_SLOW_US	500	/* a round trip worth listing */
#define RT_SLOW_MAX	32

struct rt_shared {
	size_t	n;
	double	win_max_us[RT_WINDOWS];	/* the worst of each second */
	unsigned int nwin;
	struct {
		double	at_s, us;
	} slow[RT_SLOW_MAX];			/* the first slow ones */
	size_t	nslow;
	double	us[];
};

struct rt_result {
	struct stats st;
	double	win_max_us[RT_WINDOWS];
	unsigned int nwin;
	size_t	nslow;
	char	slow[160];		/* "at_s:ms ..." */
};

static size_t rt_cap;

static int
child_round_trips(void *arg)
{
	struct rt_shared *sh = arg;
	struct uffdc_session *s;
	unsigned int live, max, i;
	uint64_t start, end;
	int rc;

	if (open_session(&s) < 0)
		return 1;
	/* A quarter of a second first: the last client's exit settles. */
	start = now_ns() + 250000000u;
	for (i = 0; i < 200 || now_ns() < start; i++)
		if ((rc = uffdc_session_usage(s, &live, &max)) < 0)
			goto fail;
	start = now_ns();
	end = start + (uint64_t)(cfg.rt_s * 1e9);
	for (;;) {
		uint64_t t0 = now_ns(), t1;
		unsigned int w = (unsigned int)((t0 - start) / 1000000000u);
		double us;

		if ((rc = uffdc_session_usage(s, &live, &max)) < 0)
			goto fail;
		t1 = now_ns();
		us = (double)(t1 - t0) / 1e3;
		if (sh->n < rt_cap)
			sh->us[sh->n++] = us;
		if (w < RT_WINDOWS) {
			if (w >= sh->nwin)
				sh->nwin = w + 1;
			if (us > sh->win_max_us[w])
				sh->win_max_us[w] = us;
		}
		if (us > RT_SLOW_US) {
			if (sh->nslow < RT_SLOW_MAX) {
				sh->slow[sh->nslow].at_s =
				    (double)(t0 - start) / 1e9;
				sh->slow[sh->nslow].us = us;
			}
			sh->nslow++;
		}
		if (t1 > end)
			break;
	}
	uffdc_session_close(s);
	return 0;
fail:
	fprintf(stderr, "uffd-bench: session usage: %s\n", uffdc_strerror(rc));
	return 1;
}

/* Round trips for cfg.rt_s seconds; r->st.n == 0 when the client failed. */
static void
round_trips(struct rt_result *r)
{
	size_t len = sizeof(struct rt_shared) + rt_cap * sizeof(double);
	struct rt_shared *sh = shared_alloc(len);
	pid_t pid = spawn(child_round_trips, sh, true, -1);
	size_t i, at = 0;

	memset(r, 0, sizeof(*r));
	if (pid >= 0 && reap(pid) == 0 && sh->n > 0) {
		r->st = stats_of(sh->us, sh->n);
		r->nwin = sh->nwin;
		memcpy(r->win_max_us, sh->win_max_us, sizeof(r->win_max_us));
		r->nslow = sh->nslow;
		for (i = 0; i < sh->nslow && i < RT_SLOW_MAX; i++) {
			int n = snprintf(r->slow + at, sizeof(r->slow) - at,
			    "%s%.2fs:%.2fms", i ? " " : "", sh->slow[i].at_s,
			    sh->slow[i].us / 1e3);

			if (n < 0 || (size_t)n >= sizeof(r->slow) - at)
				break;
			at += (size_t)n;
		}
	}
	munmap(sh, len);
}

/* The median of the per-second worst round trips, in ms. */
static double
typical_tick(const struct rt_result *r)
{
	double w[RT_WINDOWS];

	memcpy(w, r->win_max_us, sizeof(w));
	return median_of(w, r->nwin) / 1e3;
}

static struct rt_result rt0;

static void
liveness_figure(unsigned int n)
{
	struct figure *f = figure_new("liveness_tick_stall", "ms");
	struct rt_result r;
	const struct stats *st = &r.st;

	round_trips(&r);
	snprintf(f->name, sizeof(f->name), "liveness tick: worst status round "
	    "trip, N=%u", n);
	snprintf(f->base_what, sizeof(f->base_what), "median round trip, "
	    "same run (uffdc_session_usage), N=%u", n);
	snprintf(f->goal, sizeof(f->goal), "stall (worst - median) <= 5 ms");
	if (st->n == 0 || rt0.st.n == 0) {
		failed("liveness: the round-trip client failed");
		return;
	}
	f->ok = true;
	f->value = st->max / 1e3;
	f->base = st->p50 / 1e3;
	f->samples = f->base_samples = st->n;
	f->ratio = st->max / st->p50;
	f->met = (st->max - st->p50) / 1e3 <= 5;
	detail(f, "sampling_s", cfg.rt_s);
	detail(f, "stall_ms", (st->max - st->p50) / 1e3);
	detail(f, "per_second_worst_median_ms", typical_tick(&r));
	detail(f, "p99_us", st->p99);
	detail(f, "p999_us", st->p999);
	detail(f, "over_0.5ms", (double)r.nslow);
	detail(f, "none_median_us", rt0.st.p50);
	detail(f, "none_max_ms", rt0.st.max / 1e3);
	detail(f, "none_per_second_worst_median_ms", typical_tick(&rt0));
	detail(f, "none_over_0.5ms", (double)rt0.nslow);
	snprintf(f->note, sizeof(f->note), "with no other sessions: median "
	    "%.1f us, worst %.2f ms; over 0.5 ms at %s", rt0.st.p50,
	    rt0.st.max / 1e3, r.slow);

	/*
	 * The worst round trip may be another process's doing on a busy
	 * machine; each second holds one tick, so the median of the seconds'
	 * worst round trips is the tick's, noise filtered out.
	 */
	f = figure_new("liveness_tick_typical", "ms");
	snprintf(f->name, sizeof(f->name), "liveness tick: median of "
	    "per-second worst, N=%u", n);
	snprintf(f->base_what, sizeof(f->base_what), "the same with no idle "
	    "sessions, earlier in this run");
	snprintf(f->goal, sizeof(f->goal), "(info: the noise-robust stall)");
	f->ok = true;
	f->value = typical_tick(&r);
	f->base = typical_tick(&rt0);
	f->samples = r.nwin;
	f->base_samples = rt0.nwin;
	f->ratio = f->value / f->base;
	detail(f, "stall_ms", f->value - st->p50 / 1e3);
	detail(f, "stall_per_session_us", (f->value - f->base) * 1e3 / n);
	snprintf(f->note, sizeof(f->note), "stall %.2f ms over the median "
	    "round trip, %.2f us per idle session; none: over 0.5 ms at %s",
	    f->value - st->p50 / 1e3, (f->value - f->base) * 1e3 / n,
	    rt0.slow);
}

/* ---- grant latency with N sessions present (not a goal) ---- */

/* The library's grants on opt.cpu, the broker pinned there; n == 0: failed. */
static struct stats
pinned_grants(unsigned int samples)
{
	double *lib = calloc(samples, sizeof(double));
	struct stats sl = { 0 };
	int rc;

	if (lib == NULL || pin(serving_pid(), opt.cpu) < 0) {
		failed("pinning the broker: %s", strerror(errno));
		free(lib);
		return sl;
	}
	rc = grant_latency(opt.cpu, samples, 2, lib, NULL);
	unpin(serving_pid());
	if (rc == 0)
		sl = stats_of(lib, samples);
	free(lib);
	return sl;
}

/* Measured just before the idle sessions come, the same way. */
static struct stats grant_n0;

static void
bench_grant_with_n(unsigned int n)
{
	struct figure *f = figure_new("grant_p50_with_n", "us");
	struct stats sl;

	snprintf(f->name, sizeof(f->name), "grant p50 on CPU %d, %u idle "
	    "sessions present", opt.cpu, n);
	snprintf(f->base_what, sizeof(f->base_what), "the same just before "
	    "the idle sessions came, p50");
	snprintf(f->goal, sizeof(f->goal), "(info)");
	sl = pinned_grants(cfg.grant_n_samples);
	if (sl.n == 0 || grant_n0.n == 0) {
		failed("grant latency with and without %u sessions: a client "
		    "failed", n);
		return;
	}
	f->ok = true;
	f->value = sl.p50;
	f->base = grant_n0.p50;
	f->samples = sl.n;
	f->base_samples = grant_n0.n;
	f->ratio = sl.p50 / grant_n0.p50;
	detail(f, "p99_us", sl.p99);
	detail(f, "none_p99_us", grant_n0.p99);
	detail(f, "extra_ns_per_session", (sl.p50 - grant_n0.p50) * 1e3 / n);
}

/* ---- an upgrade with N sessions present ---- */

/* Shared with the client that creates throughout the upgrade. */
struct upgrade_job {
	_Atomic int	stop, ready;
	_Atomic uint64_t n, failed, worst_ns;
};

static int
child_upgrade_creations(void *arg)
{
	struct upgrade_job *j = arg;
	struct uffdc_session *s;
	uint64_t t0, dt;

	if (open_session(&s) < 0)
		return 1;
	atomic_store(&j->ready, 1);
	while (!atomic_load(&j->stop)) {
		t0 = now_ns();
		if (lib_grant(s) < 0)
			atomic_fetch_add(&j->failed, 1);
		dt = now_ns() - t0;
		if (dt > atomic_load(&j->worst_ns))
			atomic_store(&j->worst_ns, dt);
		atomic_fetch_add(&j->n, 1);
	}
	uffdc_session_close(s);
	return 0;
}

/* The handover_ms= of the broker's resumed line, or NAN if none yet. */
static double
handover_ms(void)
{
	char line[1024], *p;
	double ms = NAN;
	FILE *f = fopen(log_path, "re");

	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, "event=resumed") != NULL &&
		    (p = strstr(line, "handover_ms=")) != NULL)
			ms = strtod(p + 12, NULL);
	if (f != NULL)
		fclose(f);
	return ms;
}

/*
 * An upgrade (SIGUSR2) while the N idle sessions are up and one client
 * creates and releases uffds in a loop: the longest of its creations, in
 * the same run as the p50 of creations before it, and the hand-over the
 * broker logs (docs/upgrade.md).
 */
static void
bench_upgrade_with_n(unsigned int n)
{
	struct figure *f = figure_new("upgrade_stall_with_n", "ms");
	struct upgrade_job *j = shared_alloc(sizeof(*j));
	double ho = NAN;
	pid_t pid;
	int i;

	snprintf(f->name, sizeof(f->name), "longest creation during an "
	    "upgrade, %u idle sessions present", n);
	snprintf(f->base_what, sizeof(f->base_what), "grant p50 with them, "
	    "pinned (above)");
	snprintf(f->goal, sizeof(f->goal), "(info)");
	memset(j, 0, sizeof(*j));
	pid = spawn(child_upgrade_creations, j, true, -1);
	for (i = 0; i < 10000 && pid > 0 && !atomic_load(&j->ready); i++)
		usleep(1000);
	/* Some creations at rest first; then the upgrade. */
	usleep(100000);
	atomic_store(&j->worst_ns, 0);
	if (pid < 0 || !atomic_load(&j->ready) || kill(serving_pid(), SIGUSR2) < 0) {
		failed("upgrade with %u sessions: the client or the signal "
		    "failed", n);
		if (pid > 0) {
			kill(pid, SIGKILL);
			reap(pid);
		}
		return;
	}
	for (i = 0; i < 60000 && isnan(ho = handover_ms()); i += 10)
		usleep(10000);
	usleep(100000);
	atomic_store(&j->stop, 1);
	if (reap(pid) != 0 || isnan(ho) || atomic_load(&j->failed) > 0) {
		failed("upgrade with %u sessions: %s (%llu creations failed)",
		    n, isnan(ho) ? "the broker did not resume" :
		    "the client failed",
		    (unsigned long long)atomic_load(&j->failed));
		return;
	}
	f->ok = true;
	f->value = atomic_load(&j->worst_ns) / 1e6;
	f->samples = atomic_load(&j->n);
	f->base = grant_n0.p50 / 1e3;
	f->base_samples = grant_n0.n;
	f->ratio = f->value / f->base;
	detail(f, "handover_ms", ho);
	snprintf(f->note, sizeof(f->note), "every creation succeeded; the "
	    "broker's own hand-over (exec to resumed) took %.1f ms", ho);
}

/* ---- output ---- */

static void
fmt_value(char *buf, size_t len, double v, const char *unit)
{
	if (isnan(v))
		snprintf(buf, len, "-");
	else if (fabs(v) >= 10000)
		snprintf(buf, len, "%.0f %s", v, unit);
	else if (fabs(v) >= 100)
		snprintf(buf, len, "%.1f %s", v, unit);
	else
		snprintf(buf, len, "%.3g %s", v, unit);
}

static const char *
met_text(const struct figure *f)
{
	if (!f->ok)
		return "BROKE";
	if (f->met < 0)
		return "-";
	if (f->met == 0)
		return "no";
	if (f->stretch == 0)
		return "yes (stretch no)";
	if (f->stretch == 1)
		return "yes (stretch yes)";
	return "yes";
}

/* The order of the figures, for the table and the JSON. */
static int
figure_rank(const struct figure *f)
{
	static const char *const order[] = { "grant_p50_pinned",
	    "grant_p99_unpinned", "grant_tput_1", "grant_tput_8",
	    "grant_tput_64", "session_open_0", "session_open_n",
	    "lazy_restore", "fault_path_4k", "fault_path_64k",
	    "fault_path_2m", "memory_per_idle_session",
	    "liveness_tick_stall", "liveness_tick_typical",
	    "grant_p50_with_n", "upgrade_stall_with_n" };
	size_t i;

	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		if (strcmp(f->id, order[i]) == 0)
			return (int)i;
	return (int)i;
}

static int
cmp_figure(const void *a, const void *b)
{
	return figure_rank(a) - figure_rank(b);
}

static void
print_table(void)
{
	int i, k;

	printf("\n%-54s %14s %14s %8s  %-30s %s\n", "figure", "value",
	    "baseline", "ratio", "goal", "met");
	for (i = 0; i < 140; i++)
		putchar('-');
	putchar('\n');
	for (i = 0; i < nfigs; i++) {
		const struct figure *f = &figs[i];
		char v[32], b[32], r[16];

		fmt_value(v, sizeof(v), f->value, f->unit);
		fmt_value(b, sizeof(b), f->base, f->unit);
		if (isnan(f->ratio))
			snprintf(r, sizeof(r), "-");
		else
			snprintf(r, sizeof(r), "%.2fx", f->ratio);
		printf("%-54s %14s %14s %8s  %-30s %s\n", f->name, v, b, r,
		    f->goal, met_text(f));
		if (isnan(f->base))
			printf("    samples %zu\n", f->samples);
		else
			printf("    baseline: %s; samples %zu / %zu\n",
			    f->base_what, f->samples, f->base_samples);
		if (f->note[0])
			printf("    %s\n", f->note);
		else if (f->ndet > 0) {
			printf("   ");
			for (k = 0; k < f->ndet; k++)
				printf(" %s=%.4g", f->det[k].key, f->det[k].v);
			putchar('\n');
		}
	}
}

static void
json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(out, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(out, "\\u%04x", (unsigned char)*s);
		else
			fputc(*s, out);
	}
	fputc('"', out);
}

static void
json_number(FILE *out, double v)
{
	if (isnan(v) || isinf(v))
		fputs("null", out);
	else
		fprintf(out, "%.6g", v);
}

static void
json_bool3(FILE *out, int v)
{
	fputs(v < 0 ? "null" : v ? "true" : "false", out);
}

struct run_info {
	char	kernel[512];
	char	cpu_model[128];
	char	started[32];
	char	load0[64], load1[64];	/* /proc/loadavg at start and end */
	double	wall_s, idle_up_s, idle_down_s;
	int	goals, goals_met;
};

static int
write_json(const char *path, const struct run_info *ri)
{
	FILE *out = fopen(path, "we");
	int i, k;

	if (out == NULL) {
		fprintf(stderr, "uffd-bench: %s: %s\n", path, strerror(errno));
		return -1;
	}
	fprintf(out, "{\n  \"tool\": \"uffd-bench\",\n  \"version\": ");
	json_string(out, UFFD_BROKER_VERSION);
	fprintf(out, ",\n  \"started\": ");
	json_string(out, ri->started);
	fprintf(out, ",\n  \"quick\": %s,\n  \"sessions\": %u,\n",
	    opt.quick ? "true" : "false", opt.sessions);
	fprintf(out, "  \"machine\": {\"cpus_online\": %ld, \"cpus_allowed\": "
	    "%d, \"kernel\": ", sysconf(_SC_NPROCESSORS_ONLN), ncpus);
	json_string(out, ri->kernel);
	fprintf(out, ", \"cpu_model\": ");
	json_string(out, ri->cpu_model);
	fprintf(out, ", \"pinned_cpu\": %d, \"loadavg_start\": ", opt.cpu);
	json_string(out, ri->load0);
	fprintf(out, ", \"loadavg_end\": ");
	json_string(out, ri->load1);
	fprintf(out, "},\n");
	fprintf(out, "  \"wall_s\": ");
	json_number(out, ri->wall_s);
	fprintf(out, ",\n  \"idle_sessions_setup_s\": ");
	json_number(out, ri->idle_up_s);
	fprintf(out, ",\n  \"idle_sessions_teardown_s\": ");
	json_number(out, ri->idle_down_s);
	fprintf(out, ",\n  \"figures\": [\n");
	for (i = 0; i < nfigs; i++) {
		const struct figure *f = &figs[i];

		fprintf(out, "    {\"id\": ");
		json_string(out, f->id);
		fprintf(out, ", \"figure\": ");
		json_string(out, f->name);
		fprintf(out, ", \"unit\": ");
		json_string(out, f->unit);
		fprintf(out, ",\n     \"value\": ");
		json_number(out, f->value);
		fprintf(out, ", \"samples\": %zu,\n     \"baseline\": {\"what\": ",
		    f->samples);
		json_string(out, f->base_what);
		fprintf(out, ", \"value\": ");
		json_number(out, f->base);
		fprintf(out, ", \"samples\": %zu},\n     \"ratio\": ",
		    f->base_samples);
		json_number(out, f->ratio);
		fprintf(out, ", \"goal\": ");
		json_string(out, f->goal);
		fprintf(out, ", \"met\": ");
		json_bool3(out, f->ok ? f->met : -1);
		fprintf(out, ", \"stretch_met\": ");
		json_bool3(out, f->ok ? f->stretch : -1);
		fprintf(out, ", \"ok\": %s,\n     \"note\": ",
		    f->ok ? "true" : "false");
		json_string(out, f->note);
		fprintf(out, ",\n     \"details\": {");
		for (k = 0; k < f->ndet; k++) {
			fprintf(out, "%s", k ? ", " : "");
			json_string(out, f->det[k].key);
			fprintf(out, ": ");
			json_number(out, f->det[k].v);
		}
		fprintf(out, "}}%s\n", i + 1 < nfigs ? "," : "");
	}
	fprintf(out, "  ],\n  \"goals\": %d,\n  \"goals_met\": %d,\n",
	    ri->goals, ri->goals_met);
	fprintf(out, "  \"failures\": [");
	for (i = 0; i < nfailures && i < 16; i++) {
		fprintf(out, "%s", i ? ", " : "");
		json_string(out, failures[i]);
	}
	fprintf(out, "],\n  \"ok\": %s\n}\n", nfailures ? "false" : "true");
	if (fclose(out) != 0) {
		fprintf(stderr, "uffd-bench: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* What the broker's log says: lines, warnings, failures. */
static void
summarize_log(void)
{
	char line[1024];
	unsigned long lines = 0, warnings = 0, suppressed = 0, granted = 0;
	FILE *f = fopen(log_path, "re");
	int shown = 0;

	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		lines++;
		if (strstr(line, "event=uffd_granted"))
			granted++;
		if (strstr(line, "event=log_suppressed"))
			suppressed++;
		if (strstr(line, "warning") || strstr(line, "fatal") ||
		    strstr(line, "event=uffd_refused") ||
		    strstr(line, "event=session_refused")) {
			warnings++;
			if (shown++ < 5)
				printf("    broker: %s", line);
		}
	}
	fclose(f);
	printf("broker log: %lu lines (%lu uffd_granted, %lu log_suppressed), "
	    "%lu warnings or refusals\n", lines, granted, suppressed, warnings);
}

/* The load averages and runnable count of /proc/loadavg. */
static void
loadavg(char *buf, size_t len)
{
	FILE *f = fopen("/proc/loadavg", "re");

	snprintf(buf, len, "?");
	if (f != NULL) {
		if (fgets(buf, (int)len, f) != NULL) {
			char *p = strrchr(buf, ' ');

			if (p != NULL)
				*p = '\0';	/* not the last pid */
		}
		fclose(f);
	}
}

static void
machine(struct run_info *ri)
{
	struct utsname u;
	char line[256];
	FILE *f;

	if (uname(&u) == 0)
		snprintf(ri->kernel, sizeof(ri->kernel), "%s %s %s %s",
		    u.sysname, u.release, u.version, u.machine);
	snprintf(ri->cpu_model, sizeof(ri->cpu_model), "unknown");
	if ((f = fopen("/proc/cpuinfo", "re")) != NULL) {
		while (fgets(line, sizeof(line), f) != NULL)
			if (strncmp(line, "model name", 10) == 0) {
				char *p = strchr(line, ':');

				if (p != NULL) {
					p += strspn(p + 1, " \t") + 1;
					p[strcspn(p, "\n")] = '\0';
					snprintf(ri->cpu_model,
					    sizeof(ri->cpu_model), "%s", p);
				}
				break;
			}
		fclose(f);
	}
}

static void
usage(int rc)
{
	fprintf(rc ? stderr : stdout, "usage: uffd-bench [--quick] [--json FILE] "
	    "[--sessions N] [--cpu N] [--brokerd PATH] [--demo PATH]\n"
	    "                  [--idle-fork] [--broker-log FILE] [--fd-store]\n"
	    "  --quick         small N, short runs (under 20 s)\n"
	    "  --json FILE     also write the figures as JSON\n"
	    "  --sessions N    idle sessions for the N figures (default 1000; "
	    "--quick 50)\n"
	    "  --cpu N         the core of the pinned figure (default: the "
	    "last allowed)\n"
	    "  --brokerd PATH  the broker (default: uffd-brokerd beside "
	    "uffd-bench)\n"
	    "  --demo PATH     the restore demo (default: uffd-restore-demo "
	    "beside uffd-bench)\n"
	    "  --idle-fork     idle sessions in forks of the bench (one "
	    "address-space\n"
	    "                  layout for all) instead of fresh programs\n"
	    "  --broker-log FILE  keep a copy of the broker's log\n"
	    "  --fd-store      the broker under the fd store's stand-in "
	    "(uffd-fdstore beside\n"
	    "                  uffd-bench): every change is written to the "
	    "store\n"
	    "Run as root. Exit status 1 when a benchmark broke; slow figures "
	    "only say so.\n");
	exit(rc);
}

static void
parse_options(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "json", required_argument, NULL, 'j' },
		{ "sessions", required_argument, NULL, 'n' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "brokerd", required_argument, NULL, 'b' },
		{ "demo", required_argument, NULL, 'd' },
		{ "idle-fork", no_argument, NULL, 'F' },
		{ "broker-log", required_argument, NULL, 'L' },
		{ "fd-store", no_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static char brokerd[PATH_MAX + 32], demo[PATH_MAX + 32];
	char *end;
	long v;
	int o;

	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'q': opt.quick = true; break;
		case 'j': opt.json = optarg; break;
		case 'b': opt.brokerd = optarg; break;
		case 'd': opt.demo = optarg; break;
		case 'F': opt.idle_fork = true; break;
		case 'L': opt.broker_log = optarg; break;
		case 'S': opt.fd_store = true; break;
		case 'n': case 'c':
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || *end || v < (o == 'n' ? 1 : 0) ||
			    v > (o == 'n' ? 100000 : CPU_SETSIZE - 1)) {
				fprintf(stderr, "uffd-bench: bad --%s '%s'\n",
				    o == 'n' ? "sessions" : "cpu", optarg);
				usage(2);
			}
			if (o == 'n')
				opt.sessions = (unsigned int)v;
			else
				opt.cpu = (int)v;
			break;
		case 'h': usage(0); break;
		default: usage(2);
		}
	}
	if (optind != argc)
		usage(2);
	if (readlink("/proc/self/exe", exe_dir, sizeof(exe_dir) - 1) < 0) {
		perror("uffd-bench: /proc/self/exe");
		exit(1);
	}
	if ((end = strrchr(exe_dir, '/')) != NULL)
		*end = '\0';
	snprintf(brokerd, sizeof(brokerd), "%s/uffd-brokerd", exe_dir);
	snprintf(demo, sizeof(demo), "%s/uffd-restore-demo", exe_dir);
	if (opt.brokerd == NULL)
		opt.brokerd = getenv("UFFD_BROKERD") ? getenv("UFFD_BROKERD") :
		    brokerd;
	if (opt.demo == NULL)
		opt.demo = demo;
	if (opt.sessions == 0)
		opt.sessions = opt.quick ? 50 : 1000;
}

static void
set_sizes(void)
{
	if (opt.quick) {
		cfg.grant_samples = 2000;
		cfg.grant_blocks = 2;
		cfg.grant_n_samples = 1000;
		cfg.tput_s = 0.3;
		cfg.fault_region[0] = 16 * MIB;
		cfg.fault_region[1] = 32 * MIB;
		cfg.fault_region[2] = 64 * MIB;
		cfg.fault_rounds = 3;
		cfg.image = 64 * MIB;
		cfg.restore_runs = 1;
		cfg.open_samples = 20;
		cfg.rt_s = 1.2;
	} else {
		cfg.grant_samples = 30000;
		cfg.grant_blocks = 6;
		cfg.grant_n_samples = 10000;
		cfg.tput_s = 2.0;
		cfg.fault_region[0] = 64 * MIB;
		cfg.fault_region[1] = 128 * MIB;
		cfg.fault_region[2] = 256 * MIB;
		cfg.fault_rounds = 15;
		cfg.image = 256 * MIB;
		cfg.restore_runs = 5;
		cfg.open_samples = 300;
		cfg.rt_s = 5.5;
	}
	/* A status round trip takes some microseconds: room for all. */
	rt_cap = (size_t)(cfg.rt_s * 1e6);
}

static void
section(const char *what)
{
	static uint64_t t_prev;
	uint64_t t = now_ns();

	if (t_prev != 0)
		printf(" (%.1f s)\n", (double)(t - t_prev) / 1e9);
	t_prev = t;
	if (what != NULL) {
		printf("%s ...", what);
		fflush(stdout);
	}
}

int
main(int argc, char **argv)
{
	struct run_info ri = { .idle_up_s = NAN, .idle_down_s = NAN };
	struct sigaction sa = { .sa_handler = on_signal };
	struct mem_sample m0, mn;
	char so[PATH_MAX + 32];
	uint64_t t_start = now_ns();
	time_t started = time(NULL);
	int i, rc;

	/* An idle client, run again by child_idle(). */
	if (argc == 3 && strcmp(argv[1], "--idle-client") == 0)
		return idle_session(argv[2], 3, 4);
	parse_options(argc, argv);
	set_sizes();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (geteuid() != 0) {
		fprintf(stderr, "uffd-bench: run as root: it starts a broker "
		    "and creates uffds directly for the baselines\n");
		return 1;
	}
	if (access(opt.brokerd, X_OK) < 0 || access(opt.demo, X_OK) < 0) {
		fprintf(stderr, "uffd-bench: %s or %s is missing (make first)\n",
		    opt.brokerd, opt.demo);
		return 1;
	}
	main_pid = getpid();
	fit_sessions();
	/* The broker's helpers come back to us when it ends: see they end. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		perror("uffd-bench: PR_SET_CHILD_SUBREAPER");
		return 1;
	}
	kids_cap = opt.sessions + 512;
	if ((kids = calloc(kids_cap, sizeof(*kids))) == NULL)
		return 1;
	if (sched_getaffinity(0, sizeof(all_cpus), &all_cpus) < 0) {
		perror("uffd-bench: sched_getaffinity");
		return 1;
	}
	ncpus = CPU_COUNT(&all_cpus);
	if (opt.cpu < 0)
		for (i = 0; i < CPU_SETSIZE; i++)
			if (CPU_ISSET(i, &all_cpus))
				opt.cpu = i;
	if (!CPU_ISSET(opt.cpu, &all_cpus)) {
		fprintf(stderr, "uffd-bench: CPU %d is not ours\n", opt.cpu);
		return 2;
	}
	machine(&ri);
	loadavg(ri.load0, sizeof(ri.load0));
	strftime(ri.started, sizeof(ri.started), "%Y-%m-%dT%H:%M:%SZ",
	    gmtime(&started));

	snprintf(dir, sizeof(dir), "/tmp/uffd-bench.XXXXXX");
	if (mkdtemp(dir) == NULL || chmod(dir, 0755) < 0) {
		perror("uffd-bench: mkdtemp");
		return 1;
	}
	snprintf(sock_path, sizeof(sock_path), "%s/broker.sock", dir);
	snprintf(log_path, sizeof(log_path), "%s/broker.log", dir);
	snprintf(image_path, sizeof(image_path), "%s/image", dir);
	snprintf(demo_copy, sizeof(demo_copy), "%s/uffd-restore-demo", dir);
	snprintf(lib_copy, sizeof(lib_copy), "%s/libuffd-client.so.1", dir);
	snprintf(bench_copy, sizeof(bench_copy), "%s/uffd-bench", dir);
	atexit(cleanup);
	/*
	 * nobody runs the idle clients and the demo from here (a checkout
	 * may be where nobody cannot go), the library beside them.
	 */
	snprintf(so, sizeof(so), "%s/libuffd-client.so.1", exe_dir);
	if (copy_file("/proc/self/exe", bench_copy, 0755) < 0 ||
	    copy_file(so, lib_copy, 0755) < 0) {
		fprintf(stderr, "uffd-bench: cannot copy the bench and %s to "
		    "%s: %s\n", so, dir, strerror(errno));
		return 1;
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* A hung benchmark fails instead of hanging make. */
	alarm(opt.quick ? 120 : 600);

	printf("uffd-bench %s%s: %d CPUs (%ld online; %s), %s\n",
	    UFFD_BROKER_VERSION, opt.quick ? " (--quick)" : "", ncpus,
	    sysconf(_SC_NPROCESSORS_ONLN), ri.cpu_model, ri.kernel);
	printf("load average %s (other work on the machine makes the figures "
	    "noisy)\n", ri.load0);
	printf("broker %s on %s; clients uid %d; N = %u idle sessions; "
	    "pinned figures on CPU %d\n", opt.brokerd, sock_path, NOBODY,
	    opt.sessions, opt.cpu);
	if (opt.fd_store)
		printf("the broker under the fd store's stand-in: every change "
		    "written to the store\n");
	if (broker_start() < 0) {
		failed("the broker did not start");
		goto out;
	}

	/*
	 * The figures that fork and wake processes first, the memory-heavy
	 * ones last: on a VM whose balloon takes freed memory back (free page
	 * reporting), the big frees of the fault path and the restore can
	 * leave later allocations, fork's among them, slow for a while (a
	 * run in the other order saw forks take milliseconds afterwards).
	 */
	section("grant latency (pinned, unpinned)");
	bench_grant_latency();
	if (!broker_alive())
		goto dead;
	section("grant throughput (1, 8, 64 processes)");
	bench_throughput();
	if (!broker_alive())
		goto dead;
	section("session open, no idle sessions");
	bench_session_open(0);
	section("status round trips, no idle sessions");
	round_trips(&rt0);
	section("grant latency, pinned, no idle sessions");
	grant_n0 = pinned_grants(cfg.grant_n_samples);
	m0 = broker_memory();
	if (!broker_alive())
		goto dead;

	section("idle sessions up");
	ri.idle_up_s = idle_up(opt.sessions);
	if (ri.idle_up_s < 0) {
		failed("setting up %u idle sessions", opt.sessions);
		ri.idle_up_s = NAN;
		goto down;
	}
	printf(" %u in %.2f s (%.2f ms each)", opt.sessions, ri.idle_up_s,
	    ri.idle_up_s * 1e3 / opt.sessions);
	sleep_ms(200);
	mn = broker_memory();
	memory_figure(&m0, &mn, opt.sessions);
	section("session open, N idle sessions");
	bench_session_open(opt.sessions);
	section("status round trips, N idle sessions");
	liveness_figure(opt.sessions);
	section("grant latency, N idle sessions");
	bench_grant_with_n(opt.sessions);
	section("upgrade, N idle sessions");
	bench_upgrade_with_n(opt.sessions);
down:
	section("idle sessions down");
	ri.idle_down_s = idle_down();
	if (ri.idle_down_s < 0) {
		failed("an idle session's process did not exit cleanly");
		ri.idle_down_s = NAN;
	}
	if (!broker_alive())
		goto dead;

	section("fault path (library vs raw)");
	bench_fault_path();
	if (!broker_alive())
		goto dead;
	section("lazy restore");
	bench_restore();
	section(NULL);
	if (!broker_alive())
		goto dead;
	if ((rc = broker_stop()) != 0)
		failed("the broker did not exit cleanly (status %d)", rc);
	if ((rc = reap_orphans(5000)) != 0)
		failed("%d process(es) of the broker outlived it by 5 s", rc);
	goto out;
dead:
	section(NULL);
	failed("the broker died during the run");
out:
	ri.wall_s = (double)(now_ns() - t_start) / 1e9;
	loadavg(ri.load1, sizeof(ri.load1));
	qsort(figs, (size_t)nfigs, sizeof(figs[0]), cmp_figure);
	for (i = 0; i < nfigs; i++)
		if (figs[i].ok && figs[i].met >= 0) {
			ri.goals++;
			ri.goals_met += figs[i].met;
		}
	print_table();
	printf("\n");
	if (!isnan(ri.idle_up_s))
		printf("%u idle sessions: set up in %.2f s, ended in %.2f s\n",
		    opt.sessions, ri.idle_up_s, ri.idle_down_s);
	summarize_log();
	if (opt.broker_log != NULL && copy_file(log_path, opt.broker_log,
	    0644) < 0)
		fprintf(stderr, "uffd-bench: copying the broker's log to %s: "
		    "%s\n", opt.broker_log, strerror(errno));
	printf("goals met: %d of %d; wall time %.1f s; load average at the "
	    "end %s\n", ri.goals_met, ri.goals, ri.wall_s, ri.load1);
	if (opt.json != NULL && write_json(opt.json, &ri) == 0)
		printf("figures written to %s\n", opt.json);
	if (nfailures) {
		printf("uffd-bench: %d benchmark(s) BROKE:\n", nfailures);
		for (i = 0; i < nfailures && i < 16; i++)
			printf("  %s\n", failures[i]);
		print_log_tail(log_path, 15);
		return 1;
	}
	return 0;
}
