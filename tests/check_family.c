/* SPDX-License-Identifier: ISC */
/*
 * check_family.c - forked sessions (docs/design.md §3): a client jails
 * itself, then forks; each child opens its own session, proven by its probe
 * arriving on the parent's listener, and gets uffds bound to its own address
 * space under its own quota. Also the supervised userfaultfd(2) path, which
 * a broker uses without the device node or when told to.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "harness.h"

/* What the forked child does with the parent's session. */
typedef int (*child_fn)(struct uffdc_session *parent);

struct family {
	child_fn	child;
	unsigned int	parent_uffds;	/* uffds the parent holds meanwhile */
	/*
	 * With parent_exits, the parent ends at once; the child waits for a
	 * byte on go, then writes its exit code to report.
	 */
	bool		parent_exits;
	int		go[2], report[2];
};

/*
 * A uffd that serves this process's own memory: register a private page,
 * fill it through the uffd, read it back.
 */
static int
uffd_serves_own_memory(struct uffdc_uffd *u)
{
	long psz = sysconf(_SC_PAGESIZE);
	char *page, *src;
	size_t done;

	page = mmap(NULL, psz, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	src = malloc(psz);
	CHILD_CHECK(page != MAP_FAILED && src != NULL);
	memset(src, 0x5a, psz);
	CHILD_CHECK(uffdc_register(u, page, psz, UFFDC_MODE_MISSING, NULL) == 0);
	CHILD_CHECK(uffdc_copy(u, page, src, psz, 0, &done) == 0);
	CHILD_CHECK(done == (size_t)psz);
	CHILD_CHECK(page[0] == 0x5a && page[psz - 1] == 0x5a);
	munmap(page, psz);
	free(src);
	return 0;
}

/* Parent: open a session, hold some uffds, fork the child, report its fate. */
static int
family_parent(void *arg)
{
	struct family *f = arg;
	struct uffdc_session *s;
	struct uffdc_uffd *u[4];
	unsigned int i;
	int status;
	char code;
	pid_t child;

	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	for (i = 0; i < f->parent_uffds; i++)
		CHILD_CHECK(uffdc_create(s, UFFDC_FEATURES_DEFAULT, 0, &u[i]) == 0);
	child = fork();
	CHILD_CHECK(child >= 0);
	if (child == 0 && f->parent_exits) {
		sync_wait(f->go[0]);
		code = (char)f->child(s);
		CHILD_CHECK(write(f->report[1], &code, 1) == 1);
		_exit(0);
	}
	if (child == 0)
		_exit(f->child(s));
	if (f->parent_exits)
		_exit(0);	/* the child is re-parented; it reports by pipe */
	CHILD_CHECK(waitpid(child, &status, 0) == child);
	for (i = 0; i < f->parent_uffds; i++)
		CHILD_CHECK(uffdc_release(u[i]) == 0);
	uffdc_session_close(s);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

static int
child_gets_uffd(struct uffdc_session *parent)
{
	struct uffdc_session *s;
	struct uffdc_uffd *u;

	CHILD_CHECK(uffdc_session_fork(parent, &s) == 0);
	uffdc_session_close(parent);
	/* As crosvm's Factory::create(): the reference's features, kernel faults. */
	CHILD_CHECK(uffdc_create_default(s, &u) == 0);
	CHILD_CHECK(uffdc_features(u) == (UFFD_FEATURE_MISSING_SHMEM |
	    UFFD_FEATURE_EVENT_REMOVE));
	CHILD_CHECK(uffd_serves_own_memory(u) == 0);
	CHILD_CHECK(uffdc_release(u) == 0);
	uffdc_session_close(s);
	return 0;
}

START_TEST(test_forked_session_gets_uffd)
{
	struct family f = { .child = child_gets_uffd, .parent_uffds = 1 };

	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(run_client(family_parent, &f, true), 0);
	ck_assert(log_wait(1000, "event=session_joined", NULL));
	ck_assert(log_wait(1000, "event=session_open", "forked=yes"));
	ck_assert(log_wait(1000, "event=uffd_granted", NULL));
	broker_stop();
}
END_TEST

/* A forked child without a session of its own gets nothing. */
static int
child_without_session(struct uffdc_session *parent)
{
	CHILD_CHECK(client_new_uffd(parent, O_CLOEXEC) == -EPERM);
	return 0;
}

START_TEST(test_forked_child_without_session_refused)
{
	struct family f = { .child = child_without_session };

	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(run_client(family_parent, &f, true), 0);
	ck_assert(log_wait(1000, "event=uffd_refused",
	    "caller has no session on this listener"));
	broker_stop();
}
END_TEST

/* Each process has its own quota, the parent's uffds not counted. */
static int
child_quota(struct uffdc_session *parent)
{
	struct uffdc_session *s;
	struct uffdc_uffd *u, *v;
	unsigned int live, max;

	CHILD_CHECK(uffdc_session_fork(parent, &s) == 0);
	CHILD_CHECK(uffdc_create(s, 0, 0, &u) == 0);
	CHILD_CHECK(uffdc_create(s, 0, 0, &v) == -EDQUOT);
	CHILD_CHECK(uffdc_session_usage(s, &live, &max) == 0);
	CHILD_CHECK(live == 1 && max == 1);
	uffdc_session_close(s);
	return 0;
}

START_TEST(test_forked_session_own_quota)
{
	struct family f = { .child = child_quota, .parent_uffds = 1 };

	broker_start("--allow-uid", "65534", "--max-uffds", "1", NULL);
	ck_assert_int_eq(run_client(family_parent, &f, true), 0);
	ck_assert(log_wait(1000, "event=quota_hit", "quota reached: 1 of 1"));
	broker_stop();
}
END_TEST

/*
 * The family's listener stays while any session uses it: a child keeps
 * getting uffds after the process that brought the listener has exited.
 */
static int
child_after_parent(struct uffdc_session *parent)
{
	struct uffdc_session *s;
	struct uffdc_uffd *u;
	int rc;

	rc = uffdc_session_fork(parent, &s);
	CHILD_CHECK(rc == 0);
	/* The parent's session has ended by now (its process is gone). */
	CHILD_CHECK(uffdc_create(s, 0, 0, &u) == 0);
	CHILD_CHECK(uffd_serves_own_memory(u) == 0);
	CHILD_CHECK(uffdc_release(u) == 0);
	uffdc_session_close(s);
	return 0;
}

START_TEST(test_forked_session_outlives_parent)
{
	struct family f = { .child = child_after_parent, .parent_exits = true };
	char code = 1;

	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(pipe2(f.go, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(f.report, O_CLOEXEC), 0);
	ck_assert_int_eq(run_client(family_parent, &f, true), 0);
	/* The parent's session is over before the child starts its own. */
	ck_assert(log_wait(2000, "event=session_end", "forked=no"));
	sync_signal(f.go[1]);
	close(f.report[1]);
	ck_assert_int_eq(read(f.report[0], &code, 1), 1);
	ck_assert_int_eq(code, 0);
	ck_assert(log_wait(2000, "event=session_end", "forked=yes"));
	close(f.go[0]);
	close(f.go[1]);
	close(f.report[0]);
	broker_stop();
}
END_TEST

static int
child_refused(struct uffdc_session *parent)
{
	struct uffdc_session *s;

	CHILD_CHECK(uffdc_session_fork(parent, &s) == -EACCES);
	CHILD_CHECK(s == NULL);
	return 0;
}

START_TEST(test_forked_sessions_disabled)
{
	struct family f = { .child = child_refused };

	broker_start("--allow-uid", "65534", "--no-forked-sessions", NULL);
	ck_assert_int_eq(run_client(family_parent, &f, true), 0);
	ck_assert(log_wait(1000, "event=session_end",
	    "forked sessions not allowed"));
	broker_stop();
}
END_TEST

/* ForkHello from a process under no client's filter proves nothing. */
static int
unproven_fork_hello(void *arg)
{
	UffdBroker__V1__ForkHello fh = UFFD_BROKER__V1__FORK_HELLO__INIT;
	UffdBroker__V1__Probe probe = UFFD_BROKER__V1__PROBE__INIT;
	WireRequest req = UFFD_BROKER__V1__REQUEST__INIT;
	long psz = sysconf(_SC_PAGESIZE);
	void *dummy = mmap(NULL, psz, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
	    -1, 0);
	char reason[256];
	WireStatus st;
	int sock, ufd;

	CHILD_CHECK(dummy != MAP_FAILED && (sock = raw_connect()) >= 0);
	fh.version = WIRE_VERSION;
	fh.dummy_page = (uintptr_t)dummy;
	fh.page_size = psz;
	req.body_case = UFFD_BROKER__V1__REQUEST__BODY_FORK_HELLO;
	req.fork_hello = &fh;
	CHILD_CHECK(raw_call(sock, &req, -1, &st, reason, sizeof(reason)) == 0);
	CHILD_CHECK(st == UFFD_BROKER__V1__STATUS__OK);
	/* A uffd made without supervision is no probe. */
	ufd = syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	CHILD_CHECK(ufd >= 0);
	/* No fd is due before a probe creation: the kernel refuses it. */
	req.body_case = UFFD_BROKER__V1__REQUEST__BODY_PROBE;
	req.probe = &probe;
	CHILD_CHECK(raw_call(sock, &req, ufd, &st, reason, sizeof(reason)) ==
	    -EPERM);
	/* Without it, the Probe is out of order. */
	CHILD_CHECK(raw_call(sock, &req, -1, &st, reason, sizeof(reason)) == 0);
	CHILD_CHECK(st == UFFD_BROKER__V1__STATUS__OUT_OF_ORDER);
	close(ufd);
	/* The handshake then runs out of time: the broker hangs up. */
	CHILD_CHECK(read(sock, reason, sizeof(reason)) == 0);
	close(sock);
	return 0;
}

START_TEST(test_fork_hello_unproven)
{
	broker_start("--allow-uid", "65534", "--handshake-timeout-ms", "300",
	    "--probe-interval-ms", "100", NULL);
	ck_assert_int_eq(run_client(unproven_fork_hello, NULL, true), 0);
	ck_assert(log_wait(2000, "event=session_end", "handshake timed out"));
	ck_assert(!log_wait(0, "event=session_open", NULL));
	broker_stop();
}
END_TEST

/*
 * A forked session waiting for its first creation on its family's listener
 * is joined only by its own: a sibling's creation, made first and looking
 * like a probe, is refused and joins nothing.
 */
static int
join_stealer(void *arg)
{
	UffdBroker__V1__ForkHello fh = UFFD_BROKER__V1__FORK_HELLO__INIT;
	WireRequest req = UFFD_BROKER__V1__REQUEST__INIT;
	long psz = sysconf(_SC_PAGESIZE);
	struct uffdc_session *s;
	int hello[2], done[2], status;
	char reason[256], c;
	WireStatus st;
	pid_t waiter, thief;
	void *dummy;
	int sock;

	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	CHILD_CHECK(pipe(hello) == 0 && pipe(done) == 0);
	if ((waiter = fork()) == 0) {
		/* A forked session that says ForkHello, then waits. */
		dummy = mmap(NULL, psz, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
		    -1, 0);
		CHILD_CHECK(dummy != MAP_FAILED && (sock = raw_connect()) >= 0);
		fh.version = WIRE_VERSION;
		fh.dummy_page = (uintptr_t)dummy;
		fh.page_size = psz;
		req.body_case = UFFD_BROKER__V1__REQUEST__BODY_FORK_HELLO;
		req.fork_hello = &fh;
		CHILD_CHECK(raw_call(sock, &req, -1, &st, reason,
		    sizeof(reason)) == 0);
		CHILD_CHECK(st == UFFD_BROKER__V1__STATUS__OK);
		CHILD_CHECK(write(hello[1], "h", 1) == 1);
		CHILD_CHECK(read(done[0], &c, 1) == 1);
		_exit(0);
	}
	CHILD_CHECK(waiter > 0 && read(hello[0], &c, 1) == 1);
	if ((thief = fork()) == 0) {
		/* Its sibling, with no session, creates first, as a probe would. */
		CHILD_CHECK(client_new_uffd(s, O_CLOEXEC | UFFD_USER_MODE_ONLY) ==
		    -EPERM);
		_exit(0);
	}
	CHILD_CHECK(thief > 0 && waitpid(thief, &status, 0) == thief);
	CHILD_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHILD_CHECK(write(done[1], "d", 1) == 1);
	CHILD_CHECK(waitpid(waiter, &status, 0) == waiter);
	CHILD_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	uffdc_session_close(s);
	return 0;
}

START_TEST(test_forked_join_not_stolen)
{
	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(run_client(join_stealer, NULL, true), 0);
	ck_assert(log_wait(1000, "event=uffd_refused",
	    "caller has no session on this listener"));
	ck_assert(!log_wait(0, "event=session_joined", NULL));
	broker_stop();
}
END_TEST

/* A process that has a session cannot open a second, forked one. */
static int
second_session(void *arg)
{
	struct uffdc_session *s, *t;

	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	CHILD_CHECK(uffdc_session_fork(s, &t) == -EPROTO);
	uffdc_session_close(s);
	return 0;
}

START_TEST(test_second_session_same_process)
{
	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(run_client(second_session, NULL, true), 0);
	ck_assert(log_wait(1000, "event=session_end",
	    "second session for one process"));
	broker_stop();
}
END_TEST

/*
 * A process whose session ended while it lives on keeps what it was given:
 * it cannot start over with a fresh quota, and it still counts against its
 * uid's session limit until it exits.
 */
struct rejoin {
	int	to_child[2], to_parent[2];
	int	want;		/* what its attempt to rejoin returns */
	bool	unmap;		/* end it by breaking the dummy page instead */
};

static int
closes_then_rejoins(void *arg)
{
	struct rejoin *r = arg;
	struct uffdc_session *s, *t;
	struct uffdc_uffd *u;
	char c;

	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	CHILD_CHECK(uffdc_create(s, 0, 0, &u) == 0);
	if (r->unmap) {
		/* The broker's probe fails (not ESRCH): it ends the session. */
		CHILD_CHECK(munmap(s->dummy, s->page_size) == 0);
		s->dummy = mmap(NULL, s->page_size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		CHILD_CHECK(s->dummy != MAP_FAILED);
	} else {
		/* Hang up, keeping the uffd and what a fork would need. */
		close(s->sock);
		s->sock = -1;
	}
	/* The test waits for the broker to end the session (its log). */
	CHILD_CHECK(write(r->to_parent[1], "e", 1) == 1);
	CHILD_CHECK(read(r->to_child[0], &c, 1) == 1);
	CHILD_CHECK(uffdc_session_fork(s, &t) == r->want);
	CHILD_CHECK(write(r->to_parent[1], "s", 1) == 1);
	CHILD_CHECK(read(r->to_child[0], &c, 1) == 1);	/* until told to exit */
	return 0;
}

static pid_t
rejoin_start(struct rejoin *r)
{
	pid_t child;
	char c;

	ck_assert_int_eq(pipe2(r->to_child, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(r->to_parent, O_CLOEXEC), 0);
	child = spawn(closes_then_rejoins, r, true);
	close(r->to_parent[1]);	/* a child that fails is seen as EOF */
	close(r->to_child[0]);
	ck_assert_int_eq(read(r->to_parent[0], &c, 1), 1);
	/* Not before the broker has ended the first session: it says why. */
	ck_assert(log_wait(2000, "event=session_end", r->unmap ?
	    "liveness probe failed" : "state=ready"));
	ck_assert_int_eq(write(r->to_child[1], "g", 1), 1);
	ck_assert_int_eq(read(r->to_parent[0], &c, 1), 1);
	return child;
}

static void
rejoin_end(struct rejoin *r, pid_t child)
{
	ck_assert_int_eq(write(r->to_child[1], "x", 1), 1);
	ck_assert_int_eq(reap(child), 0);
	close(r->to_child[1]);
	close(r->to_parent[0]);
}

START_TEST(test_no_fresh_quota_after_close)
{
	struct rejoin r = { .want = -EPROTO };
	pid_t child;

	/* Room for two sessions: the process itself is refused a second. */
	broker_start("--allow-uid", "65534", "--max-uffds", "1",
	    "--max-sessions-per-uid", "2", NULL);
	child = rejoin_start(&r);
	ck_assert(log_wait(1000, "event=session_end",
	    "second session for one process"));
	rejoin_end(&r, child);
	broker_stop();

	/* Ended by the broker for a broken dummy page: the same. */
	r.unmap = true;
	broker_start("--allow-uid", "65534", "--max-uffds", "1",
	    "--max-sessions-per-uid", "2", "--probe-interval-ms", "100", NULL);
	child = rejoin_start(&r);
	ck_assert(log_wait(1000, "event=session_end", "liveness probe failed"));
	ck_assert(log_wait(1000, "event=session_end",
	    "second session for one process"));
	rejoin_end(&r, child);
	broker_stop();
	r.unmap = false;

	/* Room for one: the spent session holds it until the process exits. */
	r.want = -EDQUOT;
	broker_start("--allow-uid", "65534", "--max-uffds", "1",
	    "--max-sessions-per-uid", "1", "--probe-interval-ms", "100", NULL);
	child = rejoin_start(&r);
	ck_assert(log_wait(1000, "event=quota_hit", "what=sessions"));
	ck_assert_int_eq(run_client(client_open_over_limit, NULL, true), 0);
	rejoin_end(&r, child);
	/* A tick forgets the exited process: then the uid has room again. */
	ck_assert(log_wait(2000, "event=session_forgotten", NULL));
	ck_assert_int_eq(run_client(client_gets_uffd, NULL, true), 0);
	broker_stop();
}
END_TEST

/*
 * A creation continued but never attached does not hold its slot for ever.
 */
static int
never_attaches(void *arg)
{
	struct uffdc_session *s;
	unsigned int live, max;
	int fd, i;

	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	fd = client_new_uffd(s, O_CLOEXEC);
	CHILD_CHECK(fd >= 0);
	close(fd);
	CHILD_CHECK(uffdc_session_usage(s, &live, &max) == 0);
	CHILD_CHECK(live == 1);
	for (i = 0; i < 100 && live != 0; i++) {
		usleep(20000);
		CHILD_CHECK(uffdc_session_usage(s, &live, &max) == 0);
	}
	CHILD_CHECK(live == 0);
	uffdc_session_close(s);
	return 0;
}

START_TEST(test_pending_creation_expires)
{
	broker_start("--allow-uid", "65534", "--handshake-timeout-ms", "300",
	    "--probe-interval-ms", "100", NULL);
	ck_assert_int_eq(run_client(never_attaches, NULL, true), 0);
	ck_assert(log_wait(1000, "event=pending_expired", "pending=1"));
	broker_stop();
}
END_TEST

/* The supervised userfaultfd(2) path: what a broker without the device does. */
static int
syscall_client(void *arg)
{
	bool privileged = arg != NULL;
	struct uffdc_session *s;
	struct uffdc_uffd *u;

	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	CHILD_CHECK(s->via_syscall && s->devfd < 0);
	CHILD_CHECK(uffdc_create(s, UFFDC_FEATURES_DEFAULT, UFFDC_USER_MODE_ONLY,
	    &u) == 0);
	CHILD_CHECK(uffd_serves_own_memory(u) == 0);
	CHILD_CHECK(uffdc_release(u) == 0);
	/*
	 * Kernel faults through userfaultfd(2) only as the kernel would allow
	 * this process: vm.unprivileged_userfaultfd, or CAP_SYS_PTRACE.
	 */
	if (privileged) {
		CHILD_CHECK(uffdc_create(s, UFFDC_FEATURES_DEFAULT, 0, &u) == 0);
		CHILD_CHECK(uffdc_release(u) == 0);
	} else
		CHILD_CHECK(uffdc_create(s, UFFDC_FEATURES_DEFAULT, 0, &u) ==
		    -EPERM);
	/* And the device ioctl is not the way here. */
	CHILD_CHECK(ioctl(-1, USERFAULTFD_IOC_NEW, O_CLOEXEC) == -1 &&
	    errno == EPERM);
	uffdc_session_close(s);
	return 0;
}

/*
 * The syscall path's tests need vm.unprivileged_userfaultfd at a known
 * value: the test sets it (root), and the fixture puts it back.
 */
#define SYSCTL_UFFD	"/proc/sys/vm/unprivileged_userfaultfd"
static int sysctl_saved = -1;

static void
sysctl_uffd_set(int v)
{
	FILE *f = fopen(SYSCTL_UFFD, "r+");

	ck_assert_msg(f != NULL, "%s: cannot open (not root, or no such "
	    "sysctl)", SYSCTL_UFFD);
	if (sysctl_saved < 0)
		ck_assert_int_eq(fscanf(f, "%d", &sysctl_saved), 1);
	rewind(f);
	ck_assert_int_gt(fprintf(f, "%d\n", v), 0);
	ck_assert_int_eq(fclose(f), 0);
}

static void
sysctl_uffd_restore(void)
{
	FILE *f;

	if (sysctl_saved >= 0 && (f = fopen(SYSCTL_UFFD, "w")) != NULL) {
		fprintf(f, "%d\n", sysctl_saved);
		fclose(f);
	}
	sysctl_saved = -1;
}

/* Where the sysctl lets anyone, nobody gets kernel faults by the syscall. */
static int
syscall_client_unprivileged_allowed(void *arg)
{
	struct uffdc_session *s;
	struct uffdc_uffd *u;

	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	CHILD_CHECK(uffdc_create(s, UFFDC_FEATURES_DEFAULT, 0, &u) == 0);
	CHILD_CHECK(uffdc_release(u) == 0);
	uffdc_session_close(s);
	return 0;
}

START_TEST(test_syscall_path_sysctl_allows)
{
	sysctl_uffd_set(1);
	broker_start("--allow-uid", "65534", "--creation", "syscall", NULL);
	ck_assert_int_eq(run_client(syscall_client_unprivileged_allowed, NULL,
	    true), 0);
	broker_stop();
}
END_TEST

START_TEST(test_syscall_path_forced)
{
	sysctl_uffd_set(0);
	broker_start("--allow-uid", "65534", "--allow-uid", "0",
	    "--creation", "syscall", NULL);
	ck_assert(log_wait(1000, "event=start", "creation=syscall"));
	ck_assert_int_eq(run_client(syscall_client, NULL, true), 0);
	ck_assert(log_wait(1000, "event=session_open", "creation=syscall"));
	ck_assert(log_wait(1000, "event=uffd_refused",
	    "only user-mode faults through userfaultfd(2)"));
	/* root keeps CAP_SYS_PTRACE: the kernel, and so the broker, allow it. */
	ck_assert_int_eq(run_client(syscall_client, (void *)1, false), 0);
	/* The device ioctl is refused by the broker, not left to the kernel. */
	ck_assert(log_wait(1000, "event=uffd_refused",
	    "this session creates by userfaultfd(2); it has no device"));
	broker_stop();
}
END_TEST

/*
 * Capabilities count only in the initial user namespace: root of a user
 * namespace of its own gets user-mode faults only on the syscall path.
 */
static int
userns_client(void *arg)
{
	struct uffdc_session *s;
	struct uffdc_uffd *u;

	CHILD_CHECK(unshare(CLONE_NEWUSER) == 0);
	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	CHILD_CHECK(uffdc_create(s, 0, UFFDC_USER_MODE_ONLY, &u) == 0);
	CHILD_CHECK(uffdc_create(s, 0, 0, &u) == -EPERM);
	uffdc_session_close(s);
	return 0;
}

START_TEST(test_syscall_path_user_namespace)
{
	/* Where the sysctl lets anyone, the namespace's root would get them. */
	sysctl_uffd_set(0);
	broker_start("--allow-uid", "0", "--creation", "syscall", NULL);
	ck_assert_int_eq(run_client(userns_client, NULL, false), 0);
	ck_assert(log_wait(1000, "event=uffd_refused",
	    "only user-mode faults through userfaultfd(2)"));
	broker_stop();
}
END_TEST

START_TEST(test_missing_device_falls_back)
{
	sysctl_uffd_set(0);	/* syscall_client expects EPERM for nobody */
	broker_start("--allow-uid", "65534", "--device",
	    "/nonexistent/userfaultfd", NULL);
	ck_assert(log_wait(1000, "does not exist: supervising userfaultfd(2)",
	    NULL));
	ck_assert(log_wait(1000, "event=start", "creation=syscall"));
	ck_assert_int_eq(run_client(syscall_client, NULL, true), 0);
	broker_stop();
}
END_TEST

START_TEST(test_missing_device_forced_fails)
{
	const char *argv[] = { brokerd_path(), "--socket", "/nonexistent/s",
	    "--creation", "device", "--device", "/nonexistent/userfaultfd", NULL };
	char out[PATH_MAX];

	/* fatal() at start-up: exit 1, not a crash and not a running broker. */
	snprintf(out, sizeof(out), "%s/forced.log", getenv("UFFD_TEST_DIR"));
	ck_assert_int_eq(run_program(out, false, valgrind_argv(argv)), 1);
	if (under_valgrind())
		valgrind_check_output(out, "uffd-brokerd");
	unlink(out);
}
END_TEST

static int
syscall_child(struct uffdc_session *parent)
{
	struct uffdc_session *s;
	struct uffdc_uffd *u;

	CHILD_CHECK(uffdc_session_fork(parent, &s) == 0);
	CHILD_CHECK(s->via_syscall);
	CHILD_CHECK(uffdc_create(s, 0, UFFDC_USER_MODE_ONLY, &u) == 0);
	CHILD_CHECK(uffd_serves_own_memory(u) == 0);
	CHILD_CHECK(uffdc_release(u) == 0);
	uffdc_session_close(s);
	return 0;
}

START_TEST(test_syscall_path_forked_session)
{
	struct family f = { .child = syscall_child };

	broker_start("--allow-uid", "65534", "--creation", "syscall", NULL);
	ck_assert_int_eq(run_client(family_parent, &f, true), 0);
	ck_assert(log_wait(1000, "event=session_open", "forked=yes"));
	broker_stop();
}
END_TEST

Suite *
make_family_suite(void)
{
	Suite *s = suite_create("family");
	TCase *fork = tcase_create("forked-sessions");
	TCase *sys = tcase_create("syscall-path");

	tcase_set_timeout(fork, 20);
	tcase_add_test(fork, test_forked_session_gets_uffd);
	tcase_add_test(fork, test_forked_child_without_session_refused);
	tcase_add_test(fork, test_forked_session_own_quota);
	tcase_add_test(fork, test_forked_session_outlives_parent);
	tcase_add_test(fork, test_forked_sessions_disabled);
	tcase_add_test(fork, test_fork_hello_unproven);
	tcase_add_test(fork, test_forked_join_not_stolen);
	tcase_add_test(fork, test_second_session_same_process);
	tcase_add_test(fork, test_pending_creation_expires);
	tcase_add_test(fork, test_no_fresh_quota_after_close);
	suite_add_tcase(s, fork);
	tcase_set_timeout(sys, 20);
	tcase_add_checked_fixture(sys, NULL, sysctl_uffd_restore);
	tcase_add_test(sys, test_syscall_path_forced);
	tcase_add_test(sys, test_syscall_path_sysctl_allows);
	tcase_add_test(sys, test_syscall_path_user_namespace);
	tcase_add_test(sys, test_missing_device_falls_back);
	tcase_add_test(sys, test_missing_device_forced_fails);
	tcase_add_test(sys, test_syscall_path_forked_session);
	suite_add_tcase(s, sys);
	return s;
}
