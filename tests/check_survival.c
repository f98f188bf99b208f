/* SPDX-License-Identifier: ISC */
/*
 * check_survival.c - nothing is lost when the broker is: a client that
 * holds a granted uffd keeps serving its page faults while the broker is
 * killed, killed and replaced by a new one on the same socket, stopped, or
 * hammered. A grant is the broker's last part in a uffd's life; the faults
 * must not wait for it.
 *
 * The client's toucher thread reads fresh pages of a registered region
 * (emptied with MADV_DONTNEED after each pass, so the faults never run
 * out) and checks every byte; its main thread serves each fault with
 * uffdc_copy() or uffdc_fill() (data or zeroes). The test opens a window
 * once the broker is surely gone or stopped and closes it before the
 * broker is back: the faults served inside it, and the longest time
 * without one, are what each test asserts.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "uffd-client.h"
#include "tool.h"

#define PAGE		4096
#define NPAGES		256
/* Between two touches: the faults go on at a few thousand a second. */
#define TOUCH_PAUSE_NS	100000
/* The window: how long the broker is away, and what must happen in it. */
#define WINDOW_MS	1500
#define WINDOW_MIN_FAULTS 50
/* The longest time without a fault served allowed in it (a busy machine). */
#define WINDOW_MAX_GAP_MS 500
/*
 * Hammered, the faults keep at least this share of their pace beside an
 * idle broker (seen: 76 to 92% with both cores busy; a client that asks
 * the broker before each fill kept 10%).
 */
#define HAMMER_MIN_SHARE 0.3

/* Shared between the test and its client (MAP_SHARED, made before fork). */
struct survival {
	_Atomic uint64_t served;	/* faults served and checked */
	_Atomic uint64_t last_ns;	/* when the last one was */
	_Atomic uint64_t bad_bytes;	/* bytes that were not what was served */
	/* The window, opened and closed by the test. */
	_Atomic int	window;
	_Atomic uint64_t win_start_ns;
	_Atomic uint64_t win_served;
	_Atomic uint64_t win_gap_ns;	/* the longest, between faults in it */
	/* Asked by the test: try the session (a creation, a Status). */
	_Atomic int	probe;
	_Atomic int	probe_done;
	int		create_rc, usage_rc;
	_Atomic int	stop;
	/* The client's failure, if any. */
	int		line;
	int		err;
};

static struct survival *
survival_new(void)
{
	struct survival *sv = mmap(NULL, sizeof(*sv), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	ck_assert_ptr_ne(sv, MAP_FAILED);
	memset(sv, 0, sizeof(*sv));
	return sv;
}

/* ---- the client ---- */

/* The client's exit code when the broker refused its session. */
#define CLIENT_REFUSED	3

static struct survival *csv;	/* the client's copy of the pointer */

/* In the client: record where it failed, and end it. */
#define SURVIVE_CHECK(cond, e) do {					\
	if (!(cond)) {							\
		csv->line = __LINE__;					\
		csv->err = (e);						\
		fprintf(stderr, "%s:%d: client check failed: %s (%d)\n", \
		    __FILE__, __LINE__, #cond, (int)(e));		\
		_exit(1);						\
	}								\
} while (0)

struct region {
	uint8_t		*mem;
	struct uffdc_uffd *u;
	_Atomic uint64_t round;		/* the toucher's pass over mem */
	_Atomic int	done;		/* the toucher has stopped */
};

/* Byte b of page i in pass r, as served (kind 2 pages are zeroes). */
static uint8_t
pattern(uint64_t r, size_t i, size_t b)
{
	return (uint8_t)((r * 251 + i) * 131 + b * 17 + 0x5a);
}

static int
page_kind(uint64_t r, size_t i)
{
	return (int)((r + i) % 3);
}

/* Read fresh pages, each a fault, and check every byte of each. */
static void *
toucher(void *arg)
{
	struct region *rg = arg;
	struct timespec nap = { 0, TOUCH_PAUSE_NS };
	uint64_t r = 0, t, prev, gap, bad;
	size_t i, b;

	while (!atomic_load(&csv->stop)) {
		for (i = 0; i < NPAGES && !atomic_load(&csv->stop); i++) {
			volatile uint8_t *p = rg->mem + i * PAGE;
			int kind = page_kind(r, i);

			bad = 0;
			for (b = 0; b < PAGE; b++)
				if (p[b] != (kind == 2 ? 0 : pattern(r, i, b)))
					bad++;
			if (bad)
				atomic_fetch_add(&csv->bad_bytes, bad);
			t = now_ns();
			if (atomic_load(&csv->window)) {
				prev = atomic_load(&csv->last_ns);
				if (prev < atomic_load(&csv->win_start_ns))
					prev = atomic_load(&csv->win_start_ns);
				gap = t - prev;
				if (gap > atomic_load(&csv->win_gap_ns))
					atomic_store(&csv->win_gap_ns, gap);
				atomic_fetch_add(&csv->win_served, 1);
			}
			atomic_store(&csv->last_ns, t);
			atomic_fetch_add(&csv->served, 1);
			nanosleep(&nap, NULL);
		}
		/* Empty again: the next pass faults on every page anew. */
		SURVIVE_CHECK(madvise(rg->mem, NPAGES * PAGE, MADV_DONTNEED) == 0,
		    errno);
		atomic_store(&rg->round, ++r);
	}
	atomic_store(&rg->done, 1);
	return NULL;
}

/* Serve one fault: copy, fill with data, or fill with zeroes. */
static void
serve_fault(struct region *rg, uint64_t addr)
{
	uint8_t src[PAGE], *page;
	uint64_t r = atomic_load(&rg->round);
	size_t i, b, done;
	int rc;

	page = (uint8_t *)(uintptr_t)(addr & ~(uint64_t)(PAGE - 1));
	i = (size_t)(page - rg->mem) / PAGE;
	SURVIVE_CHECK(page >= rg->mem && i < NPAGES, 0);
	for (b = 0; b < PAGE; b++)
		src[b] = pattern(r, i, b);
	switch (page_kind(r, i)) {
	case 0:
		done = 0;
		rc = uffdc_copy(rg->u, page, src, PAGE, 0, &done);
		SURVIVE_CHECK(rc == 0 && done == PAGE, rc);
		break;
	case 1:
		rc = uffdc_fill(rg->u, page, src, PAGE, 0, NULL);
		SURVIVE_CHECK(rc == 0, rc);
		break;
	default:
		rc = uffdc_fill(rg->u, page, NULL, PAGE, 0, NULL);
		SURVIVE_CHECK(rc == 0, rc);
	}
}

/* When the test asks: a creation and a Status on the session. */
static void *
prober(void *arg)
{
	struct uffdc_session *s = arg;
	struct uffdc_uffd *u;
	unsigned int live;

	while (!atomic_load(&csv->probe) && !atomic_load(&csv->stop))
		sleep_ms(5);
	if (atomic_load(&csv->stop))
		return NULL;
	csv->create_rc = uffdc_create(s, 0, 0, &u);
	if (csv->create_rc == 0)
		uffdc_release(u);
	csv->usage_rc = uffdc_session_usage(s, &live, NULL);
	atomic_store(&csv->probe_done, 1);
	return NULL;
}

static int
client_serves_on(void *arg)
{
	struct region rg = { 0 };
	struct uffdc_session *s;
	struct uffdc_event ev;
	struct pollfd pfd;
	pthread_t touch_thr, probe_thr;
	int rc;

	csv = arg;
	/* The session and the grant, while single-threaded. */
	if ((rc = uffdc_session_open(tb.sock, &s)) == -EACCES)
		_exit(CLIENT_REFUSED);
	SURVIVE_CHECK(rc == 0, rc);
	rc = uffdc_create(s, 0, 0, &rg.u);
	SURVIVE_CHECK(rc == 0, rc);
	rg.mem = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	SURVIVE_CHECK(rg.mem != MAP_FAILED, errno);
	rc = uffdc_register(rg.u, rg.mem, NPAGES * PAGE, UFFDC_MODE_MISSING,
	    NULL);
	SURVIVE_CHECK(rc == 0, rc);
	SURVIVE_CHECK(pthread_create(&touch_thr, NULL, toucher, &rg) == 0, 0);
	SURVIVE_CHECK(pthread_create(&probe_thr, NULL, prober, s) == 0, 0);
	pfd.fd = uffdc_fd(rg.u);
	pfd.events = POLLIN;
	while (!atomic_load(&rg.done)) {
		rc = poll(&pfd, 1, 50);
		if (rc < 0 && errno == EINTR)
			continue;
		SURVIVE_CHECK(rc >= 0, errno);
		while ((rc = uffdc_read_event(rg.u, &ev)) == 1) {
			SURVIVE_CHECK(ev.kind == UFFDC_EVENT_PAGEFAULT, ev.kind);
			serve_fault(&rg, ev.pagefault.address);
		}
		SURVIVE_CHECK(rc == 0, rc);
	}
	pthread_join(touch_thr, NULL);
	pthread_join(probe_thr, NULL);
	SURVIVE_CHECK(atomic_load(&csv->bad_bytes) == 0, 0);
	SURVIVE_CHECK(uffdc_release(rg.u) == 0, 0);
	uffdc_session_close(s);
	return 0;
}

/* ---- the test's side ---- */

/*
 * Start the client; return once it has served some faults. On a busy
 * machine the verifier may not stop the client's thread within its
 * deadline: the session is refused, and the uid's next ones for a second
 * (verifier.c, VERIFIER_BACKOFF_MS). A new client then, a few times.
 */
static pid_t
client_start(struct survival *sv)
{
	int attempt, i, status;
	pid_t pid;

	for (attempt = 1; ; attempt++) {
		pid = spawn(client_serves_on, sv, true);
		for (i = 0; i < 500 && atomic_load(&sv->served) < 100; i++) {
			if (waitpid(pid, &status, WNOHANG) == pid)
				break;
			sleep_ms(10);
		}
		if (i < 500 && atomic_load(&sv->served) < 100) {
			ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) ==
			    CLIENT_REFUSED && attempt < 5, "the client ended "
			    "before serving (status 0x%x, line %d, err %d)",
			    status, sv->line, sv->err);
			printf("survival: the client's session was refused "
			    "(attempt %d)\n", attempt);
			sleep_ms(1100);
			continue;
		}
		ck_assert_msg(atomic_load(&sv->served) >= 100, "the client "
		    "served %llu faults in 5 s",
		    (unsigned long long)atomic_load(&sv->served));
		return pid;
	}
}

/* Stop the client: it must end well, every byte it read as served. */
static void
client_finish(struct survival *sv, pid_t pid)
{
	int rc;

	atomic_store(&sv->stop, 1);
	rc = reap(pid);
	ck_assert_msg(rc == 0, "the client ended with %d (line %d, err %d)",
	    rc, sv->line, sv->err);
	ck_assert_uint_eq(atomic_load(&sv->bad_bytes), 0);
}

struct window {
	uint64_t	start_ns, end_ns;
	uint64_t	served;		/* faults in it */
	uint64_t	gap_ns;		/* the longest time without one */
};

static void
window_open(struct survival *sv)
{
	atomic_store(&sv->win_served, 0);
	atomic_store(&sv->win_gap_ns, 0);
	atomic_store(&sv->win_start_ns, now_ns());
	atomic_store(&sv->window, 1);
}

static struct window
window_close(struct survival *sv)
{
	struct window w;
	uint64_t last, tail;

	atomic_store(&sv->window, 0);
	w.end_ns = now_ns();
	w.start_ns = atomic_load(&sv->win_start_ns);
	w.served = atomic_load(&sv->win_served);
	w.gap_ns = atomic_load(&sv->win_gap_ns);
	/* Since the last fault, or the window's start. */
	last = atomic_load(&sv->last_ns);
	if (last < w.start_ns)
		last = w.start_ns;
	tail = w.end_ns > last ? w.end_ns - last : 0;
	if (tail > w.gap_ns)
		w.gap_ns = tail;
	return w;
}

/* The faults went on, all through the window. */
static void
window_check(const struct window *w, const char *what)
{
	printf("survival: %s: %llu faults served in %.0f ms, the longest "
	    "time without one %.1f ms\n", what, (unsigned long long)w->served,
	    (w->end_ns - w->start_ns) / 1e6, w->gap_ns / 1e6);
	ck_assert_msg(w->served >= WINDOW_MIN_FAULTS, "%s: only %llu faults "
	    "served in %.0f ms", what, (unsigned long long)w->served,
	    (w->end_ns - w->start_ns) / 1e6);
	ck_assert_msg(w->gap_ns <= WINDOW_MAX_GAP_MS * 1000000ull, "%s: no "
	    "fault served for %.1f ms", what, w->gap_ns / 1e6);
}

/* Ask the client to try its session; wait for the answer. */
static void
client_probe(struct survival *sv)
{
	int i;

	atomic_store(&sv->probe, 1);
	for (i = 0; i < 500 && !atomic_load(&sv->probe_done); i++)
		sleep_ms(10);
	ck_assert_msg(atomic_load(&sv->probe_done), "the client's creation "
	    "did not return in 5 s");
}

/* Is pid gone (or a zombie, waiting for its new parent)? */
static bool
process_gone(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return true;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return true;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p != NULL && (p[2] == 'Z' || p[2] == 'X');
}

/*
 * SIGKILL the broker and reap it: no clean-up of its own. Its helpers die
 * with it (PR_SET_PDEATHSIG): none is left behind.
 */
static void
broker_kill(void)
{
	pid_t helpers[8];
	int n, i, k, status;

	n = broker_children(tb.pid, helpers, 8);
	ck_assert_int_ge(n, 1);
	ck_assert_int_eq(kill(tb.pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(tb.pid, &status, 0), tb.pid);
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	tb.pid = 0;
	for (i = 0; i < n; i++) {
		for (k = 0; k < 200 && !process_gone(helpers[i]); k++)
			sleep_ms(10);
		ck_assert_msg(process_gone(helpers[i]), "the killed broker's "
		    "child %d is still alive", (int)helpers[i]);
	}
}

/*
 * A new broker on the killed one's socket path, as a service manager
 * would restart it: it finds the stale socket and the unlocked lock file
 * and replaces the one (docs/security.md). Its log is tb.log anew.
 */
static void
broker_restart(void)
{
	int i, fd;

	tb.pid = fork();
	ck_assert_int_ge(tb.pid, 0);
	if (tb.pid == 0) {
		fd = open(tb.log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || dup2(fd, 2) < 0 ||
		    prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
			_exit(127);
		exec_brokerd((const char *[]){ brokerd_path(), "--socket",
		    tb.sock, "--allow-uid", "65534", NULL });
		_exit(127);
	}
	for (i = 0; i < 300 && !socket_listening(tb.sock); i++) {
		ck_assert_msg(waitpid(tb.pid, NULL, WNOHANG) == 0,
		    "the new broker ended");
		sleep_ms(10);
	}
	ck_assert_msg(socket_listening(tb.sock), "the new broker does not "
	    "listen on %s", tb.sock);
}

/* A session and a uffd: 0; 2 when the session is refused, 1 otherwise. */
static int
client_opens_quietly(void *arg)
{
	struct uffdc_session *s;
	struct uffdc_uffd *u;

	(void)arg;
	if (uffdc_session_open(tb.sock, &s) < 0)
		return 2;
	if (uffdc_create(s, 0, 0, &u) < 0 || uffdc_release(u) < 0)
		return 1;
	uffdc_session_close(s);
	return 0;
}

/*
 * A new process opens a session and gets a uffd. A proof that ran out of
 * time (a thread the verifier could not stop in its 40 ms on a busy
 * machine) refuses the uid's sessions for a second (verifier.c,
 * VERIFIER_BACKOFF_MS): it may take a few tries, for 4 s at most.
 */
static void
new_client_gets_uffd(const char *when)
{
	int i, rc;

	for (i = 1; i <= 40; i++) {
		if ((rc = run_client(client_opens_quietly, NULL, true)) != 2)
			break;
		sleep_ms(100);
	}
	if (i > 1)
		printf("survival: %s, a new client got a uffd at its attempt "
		    "%d\n", when, i);
	ck_assert_msg(rc == 0, "%s, a new client: %s", when, rc == 2 ?
	    "refused a session for 4 s" : "its session did not grant a uffd");
}

static int
client_finds_no_broker(void *arg)
{
	struct uffdc_session *s;
	int rc = uffdc_session_open(tb.sock, &s);

	(void)arg;
	CHILD_CHECK(rc == -ECONNREFUSED);
	return 0;
}

/*
 * (a) The broker is SIGKILLed: the faults go on, the whole time it is
 * gone. The session is gone with it: a creation is refused by the kernel
 * (no supervisor: ENOSYS), and nobody answers on the socket.
 */
START_TEST(test_faults_served_after_broker_killed)
{
	struct survival *sv = survival_new();
	struct window w;
	struct stat st;
	pid_t client;

	broker_start("--allow-uid", "65534", NULL);
	client = client_start(sv);
	broker_kill();
	window_open(sv);
	sleep_ms(WINDOW_MS);
	w = window_close(sv);
	window_check(&w, "broker killed");
	/* What a crash leaves: a socket nobody listens on. */
	ck_assert_int_eq(lstat(tb.sock, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_int_eq(run_client(client_finds_no_broker, NULL, true), 0);
	client_probe(sv);
	ck_assert_int_eq(sv->create_rc, -ENOSYS);
	ck_assert_int_lt(sv->usage_rc, 0);
	/* Still serving after all that. */
	window_open(sv);
	sleep_ms(200);
	w = window_close(sv);
	ck_assert_uint_gt(w.served, 0);
	client_finish(sv, client);
	/* The socket, the lock file, the log and the directory, by hand. */
	broker_stop();
	ck_assert_int_ne(access(tb.dir, F_OK), 0);
}
END_TEST

/*
 * (b) The broker is SIGKILLed and a new one started on the same path. The
 * faults go on while none runs and after the new one is up; a new process
 * opens a session with it; the old session stays gone (ENOSYS: the new
 * broker does not supervise the old client's filter).
 */
START_TEST(test_faults_served_across_broker_restart)
{
	struct survival *sv = survival_new();
	struct window w;
	char lock[192];
	pid_t client;

	broker_start("--allow-uid", "65534", NULL);
	client = client_start(sv);
	broker_kill();
	window_open(sv);
	sleep_ms(WINDOW_MS);
	w = window_close(sv);
	window_check(&w, "no broker");
	/* The crashed broker's lock file is unlocked: the new one takes it. */
	snprintf(lock, sizeof(lock), "%s.lock", tb.sock);
	ck_assert_int_eq(access(lock, F_OK), 0);
	broker_restart();
	ck_assert(log_wait(5000, "event=ready", NULL));
	window_open(sv);
	new_client_gets_uffd("with the new broker");
	ck_assert(log_wait(2000, "event=uffd_granted", "uid=65534"));
	client_probe(sv);
	ck_assert_int_eq(sv->create_rc, -ENOSYS);
	ck_assert_int_lt(sv->usage_rc, 0);
	sleep_ms(500);
	w = window_close(sv);
	window_check(&w, "new broker");
	client_finish(sv, client);
	broker_stop();
}
END_TEST

/*
 * (c) The broker is stopped (SIGSTOP): it cannot answer anyone, and the
 * faults on a granted uffd go on. Resumed, it serves the same session.
 */
START_TEST(test_faults_served_while_broker_stopped)
{
	struct survival *sv = survival_new();
	struct pollfd pfd;
	struct window w;
	pid_t client;
	int sock;

	broker_start("--allow-uid", "65534", NULL);
	client = client_start(sv);
	broker_pause();
	window_open(sv);
	/* Stopped indeed: a new peer waits for its welcome in vain. */
	ck_assert_int_ge(sock = raw_connect_quiet(), 0);
	pfd.fd = sock;
	pfd.events = POLLIN;
	ck_assert_int_eq(poll(&pfd, 1, 300), 0);
	sleep_ms(WINDOW_MS - 300);
	w = window_close(sv);
	window_check(&w, "broker stopped");
	broker_resume();
	close(sock);
	client_probe(sv);
	ck_assert_int_eq(sv->create_rc, 0);
	ck_assert_int_eq(sv->usage_rc, 0);
	client_finish(sv, client);
	broker_stop();
}
END_TEST

/* ---- the hammer ---- */

struct hammer {
	_Atomic int	stop;
	_Atomic uint64_t connects;	/* raw connections made */
	_Atomic uint64_t sessions;	/* sessions opened */
	_Atomic uint64_t refused;	/* session opens that failed */
	_Atomic uint64_t grants;
	_Atomic uint64_t statuses;	/* StatusRequest round trips */
};

/* Connect, read nothing, hang up; hold a few at a time. */
static int
hammer_connects(void *arg)
{
	struct hammer *h = arg;
	int held[32], i, n = 0;

	for (i = 0; i < 32; i++)
		held[i] = -1;
	while (!atomic_load(&h->stop)) {
		i = n++ % 32;
		if (held[i] >= 0)
			close(held[i]);
		held[i] = raw_connect_quiet();
		if (held[i] >= 0)
			atomic_fetch_add(&h->connects, 1);
	}
	return 0;
}

/* Processes one after another, each a session and a few grants. */
static int
hammer_sessions(void *arg)
{
	struct hammer *h = arg;
	struct uffdc_session *s;
	struct uffdc_uffd *u;
	int i, status;
	pid_t pid;

	while (!atomic_load(&h->stop)) {
		if ((pid = fork()) < 0)
			return 1;
		if (pid == 0) {
			if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
				_exit(126);
			if (uffdc_session_open(tb.sock, &s) < 0) {
				atomic_fetch_add(&h->refused, 1);
				_exit(0);
			}
			atomic_fetch_add(&h->sessions, 1);
			for (i = 0; i < 20; i++)
				if (uffdc_create(s, 0, 0, &u) == 0) {
					uffdc_release(u);
					atomic_fetch_add(&h->grants, 1);
				}
			uffdc_session_close(s);
			_exit(0);
		}
		if (waitpid(pid, &status, 0) != pid)
			return 1;
	}
	return 0;
}

/*
 * One session asking for its Status as fast as the broker answers (in a
 * new process when an open is refused: a process tries once).
 */
static int
hammer_status(void *arg)
{
	struct hammer *h = arg;
	struct uffdc_session *s;
	unsigned int live;
	int status;
	pid_t pid;

	while (!atomic_load(&h->stop)) {
		if ((pid = fork()) < 0)
			return 1;
		if (pid == 0) {
			if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
				_exit(126);
			if (uffdc_session_open(tb.sock, &s) < 0) {
				atomic_fetch_add(&h->refused, 1);
				_exit(0);
			}
			while (!atomic_load(&h->stop))
				if (uffdc_session_usage(s, &live, NULL) == 0)
					atomic_fetch_add(&h->statuses, 1);
			uffdc_session_close(s);
			_exit(0);
		}
		if (waitpid(pid, &status, 0) != pid)
			return 1;
	}
	return 0;
}

/* The broker's CPU time, in clock ticks (/proc/PID/stat utime + stime). */
static unsigned long
broker_cpu_ticks(void)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)tb.pid);
	ck_assert_ptr_nonnull(f = fopen(path, "r"));
	ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), f));
	fclose(f);
	ck_assert_ptr_nonnull(p = strrchr(buf, ')'));
	/* After ")": state, then fields 4..13; utime and stime are 14, 15. */
	ck_assert_int_eq(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u "
	    "%*u %*u %lu %lu", &ut, &st), 2);
	return ut + st;
}

/*
 * (c) The broker is hammered: raw connections by the thousand, sessions
 * opened and ended one after another with their grants, Status round trips
 * without pause. Faults on a granted uffd never wait for it.
 */
START_TEST(test_faults_served_while_broker_hammered)
{
	struct survival *sv = survival_new();
	struct hammer *h = mmap(NULL, sizeof(*h), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t client, hammers[6];
	unsigned long ticks0, ticks1;
	struct window base, w;
	double busy;
	int i;

	ck_assert_ptr_ne(h, MAP_FAILED);
	memset(h, 0, sizeof(*h));
	/* Room for the hammer's connections: the quota is not under test. */
	broker_start("--allow-uid", "65534", "--max-sessions-per-uid", "512",
	    NULL);
	client = client_start(sv);
	/* The client's pace with the broker idle, for comparison. */
	window_open(sv);
	sleep_ms(WINDOW_MS);
	base = window_close(sv);
	window_check(&base, "broker idle");
	hammers[0] = spawn(hammer_connects, h, true);
	hammers[1] = spawn(hammer_connects, h, true);
	hammers[2] = spawn(hammer_connects, h, false);
	hammers[3] = spawn(hammer_sessions, h, true);
	hammers[4] = spawn(hammer_sessions, h, true);
	hammers[5] = spawn(hammer_status, h, true);
	/* Under way before the window opens. */
	sleep_ms(200);
	ticks0 = broker_cpu_ticks();
	window_open(sv);
	sleep_ms(WINDOW_MS);
	w = window_close(sv);
	ticks1 = broker_cpu_ticks();
	atomic_store(&h->stop, 1);
	for (i = 0; i < 6; i++)
		ck_assert_int_eq(reap(hammers[i]), 0);
	busy = (double)(ticks1 - ticks0) / sysconf(_SC_CLK_TCK) /
	    ((w.end_ns - w.start_ns) / 1e9);
	printf("survival: hammer: %llu connections, %llu sessions (%llu "
	    "refused), %llu grants, %llu status round trips; the broker "
	    "busy %.0f%% of a CPU\n",
	    (unsigned long long)atomic_load(&h->connects),
	    (unsigned long long)atomic_load(&h->sessions),
	    (unsigned long long)atomic_load(&h->refused),
	    (unsigned long long)atomic_load(&h->grants),
	    (unsigned long long)atomic_load(&h->statuses), busy * 100);
	window_check(&w, "broker hammered");
	printf("survival: hammered, %.0f%% of the faults of a window beside an "
	    "idle broker (%llu)\n", 100.0 * w.served / base.served,
	    (unsigned long long)base.served);
	ck_assert_msg(w.served >= HAMMER_MIN_SHARE * base.served, "hammered, "
	    "%llu faults served, beside an idle broker %llu",
	    (unsigned long long)w.served, (unsigned long long)base.served);
	/* The hammer did hammer. */
	ck_assert_uint_ge(atomic_load(&h->connects), 100);
	ck_assert_uint_ge(atomic_load(&h->sessions), 5);
	ck_assert_uint_ge(atomic_load(&h->statuses), 100);
	/* And the broker is still whole: the client's session, a new one. */
	client_probe(sv);
	ck_assert_int_eq(sv->create_rc, 0);
	ck_assert_int_eq(sv->usage_rc, 0);
	new_client_gets_uffd("after the hammer");
	client_finish(sv, client);
	broker_stop();
}
END_TEST

Suite *
make_survival_suite(void)
{
	Suite *s = suite_create("survival");
	TCase *tc = tcase_create("survival");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_faults_served_after_broker_killed);
	tcase_add_test(tc, test_faults_served_across_broker_restart);
	tcase_add_test(tc, test_faults_served_while_broker_stopped);
	tcase_add_test(tc, test_faults_served_while_broker_hammered);
	suite_add_tcase(s, tc);
	return s;
}
