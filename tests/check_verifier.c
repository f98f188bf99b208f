/* SPDX-License-Identifier: ISC */
/*
 * check_verifier.c - the device fd goes only to a peer whose every thread
 * carries the library's seccomp fragment, as the broker's verifier process
 * reads it (PTRACE_SECCOMP_GET_FILTER) at Hello; the verifier is jailed as
 * docs/security.md says, and the broker fails closed without it.
 */
#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "harness.h"

#ifndef PTRACE_SECCOMP_GET_FILTER
#define PTRACE_SECCOMP_GET_FILTER	0x420c
#endif

/* The attack's outcomes (exit codes of its process). */
#define ATTACK_REFUSED	0
#define ATTACK_WON	10
/* Uffds the attack makes: more than any quota its broker grants. */
#define ATTACK_UFFDS	20

static void *
dummy_page(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static int
send_hello(int sock, int fd, WireStatus *st, char *reason, size_t len)
{
	UffdBroker__V1__Hello hello = UFFD_BROKER__V1__HELLO__INIT;
	WireRequest req = UFFD_BROKER__V1__REQUEST__INIT;
	void *dummy = dummy_page();

	if (dummy == NULL)
		return -ENOMEM;
	hello.version = WIRE_VERSION;
	hello.dummy_page = (uintptr_t)dummy;
	hello.page_size = 4096;
	req.body_case = UFFD_BROKER__V1__REQUEST__BODY_HELLO;
	req.hello = &hello;
	return raw_call(sock, &req, fd, st, reason, len);
}

/*
 * A filter of the attacker's own: only ioctl(-1, USERFAULTFD_IOC_NEW), the
 * library's verification call, goes to the listener; everything else,
 * IOC_NEW on the device fd and UFFDIO_API included, is allowed. Returns the
 * listener.
 */
static int
narrow_filter(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int fd;

	if (ctx == NULL || seccomp_rule_add(ctx, SCMP_ACT_NOTIFY,
	    SCMP_SYS(ioctl), 2, SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffff,
	    0xffffffff), SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffff,
	    USERFAULTFD_IOC_NEW)) < 0 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    seccomp_load(ctx) < 0)
		return -1;
	fd = seccomp_notify_fd(ctx);
	seccomp_release(ctx);
	return fd;
}

/* A filter that makes one system call fail with EPERM, and nothing else. */
static int
refusing_filter(int nr)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int rc;

	if (ctx == NULL)
		return -ENOMEM;
	if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0)) == 0 &&
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	return rc;
}

/* The library's fragment as it loads it: its length in insns, or 0. */
static size_t
export_fragment(struct sock_filter insns[BPF_MAXINSNS])
{
	int memfd = memfd_create("fragment", MFD_CLOEXEC);
	off_t len;

	if (memfd < 0 || client_jail_export_bpf(memfd) < 0 ||
	    (len = lseek(memfd, 0, SEEK_END)) <= 0 ||
	    len > BPF_MAXINSNS * (off_t)sizeof(insns[0]) ||
	    pread(memfd, insns, len, 0) != len)
		len = 0;
	if (memfd >= 0)
		close(memfd);
	return len / sizeof(insns[0]);
}

/* The library's fragment, byte for byte, on the calling thread alone. */
static int
fragment_on_this_thread(void)
{
	static struct sock_filter insns[BPF_MAXINSNS];
	struct sock_fprog prog = { .filter = insns };

	if ((prog.len = export_fragment(insns)) == 0)
		return -1;
	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

/* Is the leader of process pid in a ptrace stop? No stdio, no malloc. */
static bool
traced_stop(pid_t pid)
{
	char path[64], buf[256], *paren;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return (paren = strrchr(buf, ')')) != NULL && paren[1] == ' ' &&
	    paren[2] == 't';
}

/*
 * A program the policy admits, malicious from the start: its own narrow
 * filter's listener goes in a raw Hello, the verification call earns the
 * device fd, and it then makes kernel-fault uffds on the device and
 * initialises them itself, beyond its quota, with features never granted.
 */
static int
attack(void *arg)
{
	struct uffdio_api api;
	char reason[256];
	WireStatus st;
	int sock, listener, devfd, ufd, i;

	(void)arg;
	CHILD_CHECK((sock = raw_connect()) >= 0);
	CHILD_CHECK((listener = narrow_filter()) >= 0);
	CHILD_CHECK(send_hello(sock, listener, &st, reason,
	    sizeof(reason)) == 0);
	close(listener);
	if (st != UFFD_BROKER__V1__STATUS__OK) {
		CHILD_CHECK(st == UFFD_BROKER__V1__STATUS__DENIED);
		CHILD_CHECK(strstr(reason, "filter not proven") != NULL);
		return ATTACK_REFUSED;
	}
	CHILD_CHECK((devfd = client_verify()) >= 0);
	for (i = 0; i < ATTACK_UFFDS; i++) {
		/* Kernel faults: no UFFD_USER_MODE_ONLY. */
		ufd = ioctl(devfd, USERFAULTFD_IOC_NEW, O_CLOEXEC);
		CHILD_CHECK(ufd >= 0);
		api = (struct uffdio_api){ .api = UFFD_API,
		    .features = UFFD_FEATURE_MISSING_SHMEM |
		    UFFD_FEATURE_THREAD_ID };
		CHILD_CHECK(ioctl(ufd, UFFDIO_API, &api) == 0);
	}
	return ATTACK_WON;
}

/* The verifier's pid, from the broker's start-up line. */
static pid_t
verifier_pid(void)
{
	char *log, *at;
	pid_t pid;

	ck_assert(log_wait(2000, "event=verifier ", NULL));
	log = read_whole(tb.log);
	at = strstr(log, "event=verifier pid=");
	ck_assert_ptr_nonnull(at);
	pid = atoi(at + strlen("event=verifier pid="));
	free(log);
	ck_assert_int_gt(pid, 0);
	return pid;
}

/* The attack against a broker that grants one uffd and no features. */
START_TEST(test_own_filter_refused)
{
	broker_start("--allow-uid", "65534", "--max-uffds", "1",
	    "--features", "0", NULL);
	ck_assert_int_eq(run_client(attack, NULL, true), ATTACK_REFUSED);
	ck_assert(log_wait(1000, "event=session_refused", "filter not proven: "
	    "the library's seccomp fragment is not among the 1 filters of "
	    "thread"));
	ck_assert(!log_wait(0, "event=session_verified", NULL));
	broker_stop();
}
END_TEST

/* The escape hatch: prove_filter = off, and the same attack goes through. */
START_TEST(test_prove_off_lets_attack_through)
{
	broker_start("--policy", test_file("off.conf", "[rule t]\nuid = 65534\n"
	    "mode = kernel\nmax_uffds = 1\nprove_filter = off\n"), NULL);
	ck_assert_int_eq(run_client(attack, NULL, true), ATTACK_WON);
	ck_assert(log_wait(1000, "event=session_verified", NULL));
	ck_assert(!log_wait(0, "event=filter_proven", NULL));
	broker_stop();
}
END_TEST

/*
 * The library's own client, as root and as nobody, one thread: proven, and
 * served. The time the proof takes is in the log.
 */
START_TEST(test_library_client_proven)
{
	char *log, *at;

	broker_start("--allow-uid", "0", "--allow-uid", "65534", NULL);
	ck_assert_int_eq(run_client(client_gets_uffd, NULL, true), 0);
	ck_assert_int_eq(run_client(client_gets_uffd, NULL, false), 0);
	ck_assert(log_wait(1000, "event=filter_proven", "uid=65534 threads=1"));
	ck_assert(log_wait(1000, "event=filter_proven", "uid=0 threads=1"));
	ck_assert(log_wait(1000, "event=uffd_granted", "uid=0"));
	log = read_whole(tb.log);
	at = strstr(log, "event=filter_proven");
	fprintf(stderr, "verifier: %.*s\n", (int)strcspn(at, "\n"), at);
	free(log);
	broker_stop();
}
END_TEST

/*
 * A broker started under a seccomp filter (a service manager's sandboxing:
 * systemd's ProtectKernelTunables= loads one) has a verifier that cannot
 * read filters. It says so at start, and kernel-fault sessions are
 * refused, never granted unproven.
 */
START_TEST(test_verifier_under_a_filter)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);

	ck_assert_ptr_nonnull(ctx);
	ck_assert_int_eq(seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0), 0);
	ck_assert_int_eq(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM),
	    SCMP_SYS(acct), 0), 0);
	ck_assert_int_eq(seccomp_load(ctx), 0);
	seccomp_release(ctx);
	broker_start("--allow-uid", "65534", NULL);
	ck_assert(log_wait(2000, "the verifier did not start",
	    "it runs under a seccomp filter"));
	ck_assert_int_eq(run_client(client_open_refused, NULL, true), 0);
	ck_assert(log_wait(1000, "event=session_refused", "uid=65534"));
	broker_stop();
}
END_TEST

/* With user-mode faults only, the verifier is not asked. */
static int
user_mode_client(void *arg)
{
	struct uffdc_session *s;
	struct uffdc_uffd *u;

	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	CHILD_CHECK(uffdc_create(s, 0, UFFDC_USER_MODE_ONLY, &u) == 0);
	CHILD_CHECK(uffdc_release(u) == 0);
	uffdc_session_close(s);
	return 0;
}

START_TEST(test_user_mode_not_proven)
{
	broker_start("--allow-uid", "65534", "--user-mode-only", NULL);
	ck_assert_int_eq(run_client(user_mode_client, NULL, true), 0);
	ck_assert(log_wait(1000, "event=uffd_granted", NULL));
	ck_assert(!log_wait(0, "event=filter_proven", NULL));
	broker_stop();
}
END_TEST

/* Filters of its own before the library's fragment and after it. */
static int
fragment_among_others(void *arg)
{
	struct uffdc_session s = { .sock = -1 };
	UffdBroker__V1__Hello hello = UFFD_BROKER__V1__HELLO__INIT;
	WireRequest req = UFFD_BROKER__V1__REQUEST__INIT;
	WireReply *reply;
	int listener;

	(void)arg;
	CHILD_CHECK(refusing_filter(SCMP_SYS(swapon)) == 0);
	s.sock = client_connect(tb.sock);
	CHILD_CHECK(s.sock >= 0 && client_welcome(&s) == 0);
	CHILD_CHECK((listener = client_jail_install()) >= 0);
	CHILD_CHECK(refusing_filter(SCMP_SYS(swapoff)) == 0);
	hello.version = WIRE_VERSION;
	hello.dummy_page = (uintptr_t)dummy_page();
	hello.page_size = 4096;
	req.body_case = UFFD_BROKER__V1__REQUEST__BODY_HELLO;
	req.hello = &hello;
	CHILD_CHECK(client_call(&s, &req, listener, &reply) == 0);
	uffd_broker__v1__reply__free_unpacked(reply, NULL);
	close(listener);
	/* Verified: the device fd. */
	CHILD_CHECK(client_verify() >= 0);
	return 0;
}

START_TEST(test_fragment_among_others)
{
	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(run_client(fragment_among_others, NULL, true), 0);
	ck_assert(log_wait(1000, "event=filter_proven", "threads=1"));
	ck_assert(log_wait(1000, "event=session_verified", NULL));
	broker_stop();
}
END_TEST

/*
 * An unfiltered peer with a covered process's listener: nothing to read,
 * refused at Hello with the kernel's reason.
 */
static int
lend_listener(void *arg)
{
	int *chan = arg, listener = client_jail_install();

	CHILD_CHECK(listener >= 0);
	CHILD_CHECK(wire_send(*chan, "L", 1, listener) == 0);
	close(listener);
	sync_wait(*chan);
	return 0;
}

START_TEST(test_unfiltered_borrower_refused)
{
	int sv[2], listener, flags, sock;
	char buf[4], reason[256];
	WireStatus st;
	pid_t lender;

	broker_start("--allow-uid", "0", NULL);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
	    sv), 0);
	lender = spawn(lend_listener, &sv[1], false);
	ck_assert_int_eq(poll(&(struct pollfd){ .fd = sv[0], .events = POLLIN },
	    1, 5000), 1);
	ck_assert_int_eq(wire_recv(sv[0], buf, sizeof(buf), &listener, &flags),
	    1);
	ck_assert_int_ge(sock = raw_connect(), 0);
	ck_assert_int_eq(send_hello(sock, listener, &st, reason,
	    sizeof(reason)), 0);
	ck_assert_int_eq(st, UFFD_BROKER__V1__STATUS__DENIED);
	ck_assert_msg(strstr(reason, "filter not proven: the filters of thread "
	    "") != NULL && strstr(reason, "could not be read: Invalid argument "
	    "(no filter, or a kernel without CONFIG_CHECKPOINT_RESTORE)"),
	    "%s", reason);
	sync_signal(sv[0]);
	ck_assert_int_eq(reap(lender), 0);
	close(listener);
	close(sock);
	close(sv[0]);
	close(sv[1]);
	broker_stop();
}
END_TEST

/*
 * Every thread is read, not the leader alone. Here the leader carries the
 * fragment, a thread made before it was installed (without TSYNC) only
 * the attacker's filter: that thread could exec after Hello, take the
 * leader's pid, and make the verification call alone.
 */
static pid_t second_tid;

static void *
park(void *arg)
{
	int *chan = arg;

	second_tid = gettid();
	sync_signal(*chan);
	for (;;)
		pause();
	return NULL;
}

static int
fragment_on_leader_only(void *arg)
{
	char reason[256], tid[48];
	WireStatus st;
	pthread_t thr;
	int sock, listener, p[2];

	(void)arg;
	CHILD_CHECK((sock = raw_connect()) >= 0 && pipe(p) == 0);
	CHILD_CHECK((listener = narrow_filter()) >= 0);
	CHILD_CHECK(pthread_create(&thr, NULL, park, &p[1]) == 0);
	sync_wait(p[0]);
	CHILD_CHECK(fragment_on_this_thread() == 0);
	CHILD_CHECK(send_hello(sock, listener, &st, reason,
	    sizeof(reason)) == 0);
	CHILD_CHECK(st == UFFD_BROKER__V1__STATUS__DENIED);
	snprintf(tid, sizeof(tid), "filters of thread %d", (int)second_tid);
	CHILD_CHECK(strstr(reason, "seccomp fragment is not among") != NULL);
	CHILD_CHECK(strstr(reason, tid) != NULL);
	return 0;
}

START_TEST(test_every_thread_read)
{
	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(run_client(fragment_on_leader_only, NULL, true), 0);
	ck_assert(!log_wait(0, "event=session_verified", NULL));
	broker_stop();
}
END_TEST

/*
 * A thread made while the verifier reads is found: once every thread
 * listed is stopped, it lists them again. Here the leader and a second
 * thread carry the fragment; the second waits in a vfork while the leader
 * is stopped (its vfork child lets it go 20 ms later), and meanwhile a
 * third, not stopped yet, makes a fourth and only then takes the fragment
 * itself: read at the first listing alone, every thread would have it.
 */
static pid_t leader;
static volatile pid_t made_late;

static int
release_later(void *arg)
{
	struct timespec ts = { .tv_nsec = 20 * 1000000L };

	(void)arg;
	while (!traced_stop(leader))
		;
	nanosleep(&ts, NULL);
	return 0;
}

static pid_t vfork_tid;

static void *
held_in_vfork(void *arg)
{
	static char stack[65536] __attribute__((aligned(16)));
	int *chan = arg, status;
	pid_t pid;

	if (fragment_on_this_thread() < 0)
		return NULL;
	vfork_tid = gettid();
	sync_signal(*chan);
	pid = clone(release_later, stack + sizeof(stack),
	    CLONE_VM | CLONE_VFORK | SIGCHLD, NULL);
	if (pid > 0)
		waitpid(pid, &status, 0);
	for (;;)
		pause();
	return NULL;
}

static void *
makes_one_late(void *arg)
{
	int *chan = arg, idle[2];
	pthread_t thr;

	if (pipe(idle) < 0)
		return NULL;
	sync_signal(*chan);
	while (!traced_stop(leader))
		;
	if (pthread_create(&thr, NULL, park, &idle[1]) != 0)
		return NULL;
	sync_wait(idle[0]);
	made_late = second_tid;
	if (fragment_on_this_thread() < 0)
		made_late = 0;
	for (;;)
		pause();
	return NULL;
}

static int
thread_made_during_read(void *arg)
{
	char reason[256], tid[48];
	WireStatus st;
	pthread_t thr;
	int sock, listener, p[2];

	(void)arg;
	leader = getpid();
	CHILD_CHECK((sock = raw_connect()) >= 0 && pipe(p) == 0);
	CHILD_CHECK((listener = narrow_filter()) >= 0);
	CHILD_CHECK(pthread_create(&thr, NULL, held_in_vfork, &p[1]) == 0);
	sync_wait(p[0]);
	CHILD_CHECK(pthread_create(&thr, NULL, makes_one_late, &p[1]) == 0);
	sync_wait(p[0]);
	CHILD_CHECK(fragment_on_this_thread() == 0);
	/* The second thread in its vfork: a vfork parent sleeps in D. */
	CHILD_CHECK(wait_task_state(vfork_tid, 'D', 2000));
	CHILD_CHECK(send_hello(sock, listener, &st, reason,
	    sizeof(reason)) == 0);
	CHILD_CHECK(made_late > 0);
	snprintf(tid, sizeof(tid), "filters of thread %d", (int)made_late);
	CHILD_CHECK(st == UFFD_BROKER__V1__STATUS__DENIED);
	CHILD_CHECK(strstr(reason, tid) != NULL);
	return 0;
}

START_TEST(test_thread_made_during_read)
{
	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(run_client(thread_made_during_read, NULL, true), 0);
	ck_assert(log_wait(0, "event=session_refused", "filter not proven: "
	    "the library's seccomp fragment is not among"));
	broker_stop();
}
END_TEST

/*
 * Byte for byte: the fragment with one instruction changed (UFFDIO_API, or
 * a second listener, allowed) has its length, and is not it.
 */
static int
altered_fragment(void *arg)
{
	static struct sock_filter insns[BPF_MAXINSNS];
	struct sock_fprog prog = { .filter = insns };
	char reason[256];
	WireStatus st;
	int sock, listener;
	size_t i;

	(void)arg;
	CHILD_CHECK((prog.len = export_fragment(insns)) > 0);
	for (i = 0; i < prog.len; i++)
		if (BPF_CLASS(insns[i].code) == BPF_RET &&
		    insns[i].k == (SECCOMP_RET_ERRNO | EPERM))
			break;
	CHILD_CHECK(i < prog.len);
	insns[i].k = SECCOMP_RET_ALLOW;
	CHILD_CHECK((sock = raw_connect()) >= 0);
	CHILD_CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
	listener = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
	    SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
	CHILD_CHECK(listener >= 0);
	CHILD_CHECK(send_hello(sock, listener, &st, reason,
	    sizeof(reason)) == 0);
	CHILD_CHECK(st == UFFD_BROKER__V1__STATUS__DENIED);
	CHILD_CHECK(strstr(reason, "is not among the 1 filters") != NULL);
	return 0;
}

START_TEST(test_altered_fragment_refused)
{
	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(run_client(altered_fragment, NULL, true), 0);
	broker_stop();
}
END_TEST

/* The threads read are bounded: 65 of them are too many. */
static int
many_threads(void *arg)
{
	struct uffdc_session *s;
	pthread_t thr;
	int i, p[2];

	(void)arg;
	/* Jailed first: the library leaves the threads to the broker. */
	CHILD_CHECK(jail_allow_all() == 0);
	CHILD_CHECK(pipe(p) == 0);
	for (i = 0; i < 64; i++) {
		CHILD_CHECK(pthread_create(&thr, NULL, park, &p[1]) == 0);
		sync_wait(p[0]);
	}
	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == -EACCES);
	return 0;
}

START_TEST(test_too_many_threads)
{
	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(run_client(many_threads, NULL, true), 0);
	ck_assert(log_wait(1000, "event=session_refused",
	    "filter not proven: more than 64 threads"));
	broker_stop();
}
END_TEST

/*
 * A thread the kernel cannot stop: a vfork parent waits for its child in
 * a sleep PTRACE_INTERRUPT does not break. The verifier's worker gives up
 * at its deadline, and its end lets every thread it stopped go.
 */
/* Longer than the verifier's answer deadline (harness.h). */
#ifdef TEST_UNDER_VALGRIND
#define VFORK_CHILD_MS	3000
#else
#define VFORK_CHILD_MS	500
#endif

static int
vfork_child(void *arg)
{
	struct timespec ts = { .tv_sec = VFORK_CHILD_MS / 1000,
	    .tv_nsec = VFORK_CHILD_MS % 1000 * 1000000L };

	(void)arg;
	nanosleep(&ts, NULL);
	return 0;
}

static void *
vfork_parent(void *arg)
{
	static char stack[65536] __attribute__((aligned(16)));
	int *chan = arg, status;
	pid_t pid;

	second_tid = gettid();
	sync_signal(*chan);
	pid = clone(vfork_child, stack + sizeof(stack),
	    CLONE_VM | CLONE_VFORK | SIGCHLD, NULL);
	if (pid > 0)
		waitpid(pid, &status, 0);
	return (void *)(intptr_t)(pid > 0);
}

static int
unstoppable_thread(void *arg)
{
	struct uffdc_session *s;
	struct timespec t0;
	pthread_t thr;
	void *ok;
	int p[2];

	(void)arg;
	alarm(5);	/* a thread left stopped would hang the join */
	CHILD_CHECK(jail_allow_all() == 0);	/* threads: the broker's check */
	CHILD_CHECK(pipe(p) == 0);
	CHILD_CHECK(pthread_create(&thr, NULL, vfork_parent, &p[1]) == 0);
	sync_wait(p[0]);
	CHILD_CHECK(wait_task_state(second_tid, 'D', 2000));	/* in its vfork */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == -EACCES);
	CHILD_CHECK(ms_since(&t0) < VFORK_CHILD_MS);
	CHILD_CHECK(pthread_join(thr, &ok) == 0 && ok != NULL);
	return 0;
}

START_TEST(test_unstoppable_thread)
{
	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(run_client(unstoppable_thread, NULL, true), 0);
	ck_assert(log_wait(1000, "event=session_refused", "filter not proven: "
	    "thread "));
	ck_assert(log_wait(0, "event=session_refused", "did not stop within "
	    VERIFIER_DEADLINE_TEXT));
	/* The verifier serves on (once the uid's back-off of 1 s is over). */
	usleep(1100000);
	ck_assert_int_eq(run_client(client_gets_uffd, NULL, true), 0);
	broker_stop();
}
END_TEST

/* A Hello with a fresh dummy page, packed into buf: its length (0: none). */
static size_t
pack_jailed_hello(uint8_t *buf)
{
	UffdBroker__V1__Hello hello = UFFD_BROKER__V1__HELLO__INIT;
	WireRequest req = UFFD_BROKER__V1__REQUEST__INIT;

	hello.version = WIRE_VERSION;
	if ((hello.dummy_page = (uintptr_t)dummy_page()) == 0)
		return 0;
	hello.page_size = 4096;
	req.body_case = UFFD_BROKER__V1__REQUEST__BODY_HELLO;
	req.hello = &hello;
	return uffd_broker__v1__request__pack(&req, buf);
}

/*
 * Run peer (as nobody) while the verifier is stopped: it sends, signals on
 * p[1], and reads its replies once the verifier goes on, 100 ms later.
 */
static void
peer_while_verifier_stopped(int (*peer)(void *))
{
	int p[2];
	pid_t v = verifier_pid(), pid;

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ck_assert_int_eq(kill(v, SIGSTOP), 0);
	pid = spawn(peer, p, true);
	close(p[1]);
	sync_wait(p[0]);
	usleep(100000);		/* its datagrams read, its proofs asked */
	ck_assert_int_eq(kill(v, SIGCONT), 0);
	ck_assert_int_eq(reap(pid), 0);
	close(p[0]);
}

/*
 * A peer's datagrams wait while its proof runs: a request sent right behind
 * the Hello is not read before the Hello is answered (read in the Hello's
 * state, it would be answered first, and a second Hello would ask again).
 */
static int
request_behind_hello(void *arg)
{
	uint8_t buf[WIRE_MAX_DATAGRAM];
	int *p = arg, sock, listener;
	char reason[256];
	WireStatus st;
	size_t len;

	close(p[0]);
	CHILD_CHECK((sock = raw_connect()) >= 0);
	CHILD_CHECK((listener = client_jail_install()) >= 0);
	CHILD_CHECK((len = pack_jailed_hello(buf)) > 0);
	CHILD_CHECK(wire_send(sock, buf, len, listener) == 0);
	CHILD_CHECK(wire_send(sock, buf, len, -1) == 0);
	sync_signal(p[1]);
	CHILD_CHECK(raw_welcome(sock, &st, reason, sizeof(reason)) == 0);
	CHILD_CHECK(st == UFFD_BROKER__V1__STATUS__OK);
	CHILD_CHECK(strstr(reason, "listener received") != NULL);
	return 0;
}

START_TEST(test_requests_wait_for_the_proof)
{
	broker_start("--allow-uid", "65534", NULL);
	peer_while_verifier_stopped(request_behind_hello);
	broker_stop();
}
END_TEST

/*
 * Two Hellos with one listener, from one process, on two connections, sent
 * together while the verifier is stopped: both are checked before their
 * proofs run, and neither holds the listener yet. The one proven second is
 * checked again, and refused: a listener belongs to one session.
 */
static int
two_hellos_one_listener(void *arg)
{
	uint8_t buf[WIRE_MAX_DATAGRAM];
	int *p = arg, a, b, listener, ok = 0, shared = 0, i;
	char reason[256];
	WireStatus st;
	size_t len;

	close(p[0]);
	CHILD_CHECK((a = raw_connect()) >= 0 && (b = raw_connect()) >= 0);
	CHILD_CHECK((listener = client_jail_install()) >= 0);
	CHILD_CHECK((len = pack_jailed_hello(buf)) > 0);
	CHILD_CHECK(wire_send(a, buf, len, listener) == 0);
	CHILD_CHECK(wire_send(b, buf, len, listener) == 0);
	sync_signal(p[1]);
	for (i = 0; i < 2; i++) {
		CHILD_CHECK(raw_welcome(i ? b : a, &st, reason,
		    sizeof(reason)) == 0);
		ok += st == UFFD_BROKER__V1__STATUS__OK;
		shared += st == UFFD_BROKER__V1__STATUS__BAD_FD &&
		    strstr(reason, "already belongs to another session") != NULL;
	}
	CHILD_CHECK(ok == 1 && shared == 1);
	return 0;
}

START_TEST(test_listener_race_during_proofs)
{
	broker_start("--allow-uid", "65534", NULL);
	peer_while_verifier_stopped(two_hellos_one_listener);
	ck_assert(log_wait(1000, "event=session_end",
	    "listener shared with another session"));
	broker_stop();
}
END_TEST

/*
 * A verifier that does not answer in time (stopped here) refuses that
 * session; its late answer is not taken for the next request's: an
 * attacker of another uid (root, the first's back-off aside) asks while the
 * late answer — proven: the first peer is alive, single-threaded, covered —
 * is still to come.
 */
static int
refused_then_waits(void *arg)
{
	int *p = arg;
	struct uffdc_session *s;
	char c;

	close(p[3]);
	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == -EACCES);
	sync_signal(p[1]);
	/* Alive, single-threaded and covered when the late answer is made. */
	CHILD_CHECK(read(p[2], &c, 1) == 0);
	return 0;
}

START_TEST(test_verifier_late_answer)
{
	int p[4];
	pid_t v, waiting, attacker;

	broker_start("--allow-uid", "0", "--allow-uid", "65534", NULL);
	v = verifier_pid();
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(p + 2, O_CLOEXEC), 0);
	ck_assert_int_eq(kill(v, SIGSTOP), 0);
	waiting = spawn(refused_then_waits, p, true);
	sync_wait(p[0]);
	ck_assert(log_wait(VERIFIER_ANSWER_MS + 2000, "event=session_refused",
	    "filter not proven: the broker's verifier did not answer within "
	    VERIFIER_ANSWER_TEXT));
	attacker = spawn(attack, NULL, false);
	ck_assert(log_wait(2000, "event=session_connect", "uid=0"));
	usleep(100000);		/* its Hello read, its proof asked */
	ck_assert_int_eq(kill(v, SIGCONT), 0);
	ck_assert_int_eq(reap(attacker), ATTACK_REFUSED);
	/* The uid's back-off of 1 s ends; the verifier serves on. */
	usleep(1100000);
	ck_assert_int_eq(run_client(client_gets_uffd, NULL, true), 0);
	close(p[3]);
	ck_assert_int_eq(reap(waiting), 0);
	close(p[0]);
	close(p[1]);
	close(p[2]);
	broker_stop();
}
END_TEST

/*
 * The loop does not wait for a proof, and a slow verifier (stopped here for
 * 600 ms, less than its answer time) is waited for: meanwhile a session
 * that needs no proof (root's rule is user mode) opens, gets a uffd and
 * ends at once, and the proof, when it comes, opens the first session. A
 * loop that waited for proofs would hold the second until the verifier
 * went on; one with a short answer time would refuse the first.
 */
static int
proof_waits(void *arg)
{
	int *p = arg;
	struct uffdc_session *s;

	close(p[0]);
	sync_signal(p[1]);
	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	uffdc_session_close(s);
	return 0;
}

START_TEST(test_proof_does_not_hold_the_loop)
{
	struct timespec t0, stopped;
	int p[2];
	pid_t v, waiting;
	double ms;

	broker_start("--policy", test_file("async.conf", "[rule proven]\n"
	    "uid = 65534\nmode = kernel\n[rule user]\nuid = 0\nmode = user\n"),
	    NULL);
	v = verifier_pid();
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ck_assert_int_eq(kill(v, SIGSTOP), 0);
	clock_gettime(CLOCK_MONOTONIC, &stopped);
	waiting = spawn(proof_waits, p, true);
	close(p[1]);
	sync_wait(p[0]);
	/* Its Hello is read, and its proof asked, by now (a margin of 100 ms). */
	usleep(100000);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(run_client(user_mode_client, NULL, false), 0);
	ms = ms_since(&t0);
	ck_assert_msg(ms < 250, "a session that needs no proof took %.0f ms "
	    "while another's proof waited", ms);
	while (ms_since(&stopped) < 600)
		usleep(10000);
	ck_assert_int_eq(kill(v, SIGCONT), 0);
	ck_assert_int_eq(reap(waiting), 0);
	ck_assert(log_wait(1000, "event=filter_proven", "uid=65534"));
	close(p[0]);
	broker_stop();
}
END_TEST

/*
 * The back-off holds for the probe's proof too. Two peers of one uid pass
 * Hello and verification; the first then sends its Probe with a thread in
 * a vfork, which the probe's proof cannot stop (it runs out of time); the
 * second's Probe right after is refused without a proof.
 */
struct probe_peer {
	int	go, ready, done;
	bool	stuck;
};

static int
probe_after_hello(void *arg)
{
	const struct probe_peer *pp = arg;
	struct hand h;
	pthread_t thr;
	int fd, chan[2];

	CHILD_CHECK(hand_connect(&h) == 0);
	CHILD_CHECK(hand_jail(&h) == 0);
	CHILD_CHECK(hand_verify(&h) >= 0);
	sync_signal(pp->ready);
	sync_wait(pp->go);
	fd = ioctl(h.devfd, USERFAULTFD_IOC_NEW, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	CHILD_CHECK(fd >= 0);
	if (pp->stuck) {
		alarm(5);
		CHILD_CHECK(pipe(chan) == 0);
		CHILD_CHECK(pthread_create(&thr, NULL, vfork_parent,
		    &chan[1]) == 0);
		sync_wait(chan[0]);
		CHILD_CHECK(wait_task_state(second_tid, 'D', 2000));
	}
	CHILD_CHECK(hand_send(&h, UFFD_BROKER__V1__REQUEST__BODY_PROBE, fd) == 0);
	CHILD_CHECK(h.st == UFFD_BROKER__V1__STATUS__DENIED);
	CHILD_CHECK(strstr(h.reason, pp->stuck ? "did not stop within" :
	    "ran out of time less than") != NULL);
	sync_signal(pp->done);
	_exit(0);		/* not waiting for a vfork child */
}

START_TEST(test_probe_proof_backs_off)
{
	int go1[2], go2[2], ready[2], done[2];
	struct probe_peer one, two;
	pid_t first, second;

	SKIP_UNDER_VALGRIND("the vfork child's 500 ms are not past the "
	    "worker's deadline under valgrind (800 ms)");
	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(pipe2(go1, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(go2, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(ready, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(done, O_CLOEXEC), 0);
	one = (struct probe_peer){ go1[0], ready[1], done[1], true };
	two = (struct probe_peer){ go2[0], ready[1], done[1], false };
	first = spawn(probe_after_hello, &one, true);
	second = spawn(probe_after_hello, &two, true);
	sync_wait(ready[0]);
	sync_wait(ready[0]);	/* both verified */
	sync_signal(go1[1]);	/* the first: its stuck Probe */
	sync_wait(done[0]);
	sync_signal(go2[1]);	/* the second, backed off */
	sync_wait(done[0]);
	ck_assert_int_eq(reap(first), 0);
	ck_assert_int_eq(reap(second), 0);
	ck_assert(log_wait(0, "event=session_refused", "ran out of time less "
	    "than"));
	close(go1[0]); close(go1[1]); close(go2[0]); close(go2[1]);
	close(ready[0]); close(ready[1]); close(done[0]); close(done[1]);
	broker_stop();
}
END_TEST

/*
 * A verifier that stops answering costs the uid whose proof ran out of time
 * a back-off, and no one else: a proof of another uid that waited behind it
 * is refused when it has waited as long (the verifier was busy), but its
 * uid may try again at once once the verifier answers.
 */
START_TEST(test_late_verifier_backs_off_one_uid)
{
	int p[4];
	pid_t v, first, second;

	broker_start("--allow-uid", "0", "--allow-uid", "65534", NULL);
	v = verifier_pid();
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(p + 2, O_CLOEXEC), 0);
	ck_assert_int_eq(kill(v, SIGSTOP), 0);
	first = spawn(refused_then_waits, p, true);
	ck_assert(log_wait(2000, "event=session_connect", "uid=65534"));
	usleep(300000);		/* its proof asked; then root's queued */
	second = spawn(client_open_refused, NULL, false);
	ck_assert_int_eq(reap(second), 0);
	ck_assert(log_wait(0, "event=session_refused", "uid=0 "));
	ck_assert(log_wait(0, "uid=0 ", "busy with an earlier proof"));
	ck_assert_int_eq(kill(v, SIGCONT), 0);
	sync_wait(p[0]);
	/* Root was not backed off: it gets a session at once. */
	ck_assert_int_eq(run_client(client_gets_uffd, NULL, false), 0);
	ck_assert(!log_wait(0, "uid 0 ran out of time", NULL));
	close(p[3]);
	ck_assert_int_eq(reap(first), 0);
	close(p[0]);
	close(p[1]);
	close(p[2]);
	broker_stop();
}
END_TEST

/*
 * The verifier as docs/security.md has it: CAP_SYS_ADMIN and CAP_SYS_PTRACE
 * only, no bounding set, no-new-privs, the broker's --user (loop 0) or
 * root's uid (loop 1), not dumpable (its /proc/PID files are root's, the
 * directory aside), one fd. No seccomp filter: the kernel reads filters
 * only for a tracer under none (test_filtered_tracer_cannot_read).
 */
START_TEST(test_verifier_jailed)
{
	char v[128];
	struct stat st;
	pid_t pid;

	const char *ids = _i == 0 ? "64000\t64000\t64000\t64000" : "0\t0\t0\t0";

	gid_t group = 4242;

	/* A supplementary group for the verifier to drop with the uid. */
	ck_assert_int_eq(setgroups(1, &group), 0);
	if (_i == 0)
		broker_start("--allow-uid", "65534", "--user", "64000:64000",
		    NULL);
	else
		broker_start("--allow-uid", "65534", NULL);
	pid = verifier_pid();
	ck_assert(log_wait(0, "event=verifier", _i == 0 ? "uid=64000 "
	    "caps=cap_sys_admin,cap_sys_ptrace" : "uid=0 "
	    "caps=cap_sys_admin,cap_sys_ptrace"));
	status_field(pid, "Name", v, sizeof(v));
	ck_assert_str_eq(v, "uffd-verifier");
	status_field(pid, "Uid", v, sizeof(v));
	ck_assert_str_eq(v, ids);
	status_field(pid, "Gid", v, sizeof(v));
	ck_assert_str_eq(v, ids);
	/* The uid change drops supplementary groups. */
	status_field(pid, "Groups", v, sizeof(v));
	if (_i == 0)
		ck_assert_uint_eq(strspn(v, " "), strlen(v));
	status_field(pid, "CapEff", v, sizeof(v));
	ck_assert_str_eq(v, "0000000000280000");
	status_field(pid, "CapPrm", v, sizeof(v));
	ck_assert_str_eq(v, "0000000000280000");
	status_field(pid, "CapInh", v, sizeof(v));
	ck_assert_str_eq(v, "0000000000000000");
	status_field(pid, "CapBnd", v, sizeof(v));
	ck_assert_str_eq(v, "0000000000000000");
	status_field(pid, "CapAmb", v, sizeof(v));
	ck_assert_str_eq(v, "0000000000000000");
	status_field(pid, "NoNewPrivs", v, sizeof(v));
	ck_assert_str_eq(v, "1");
	status_field(pid, "Seccomp", v, sizeof(v));
	ck_assert_str_eq(v, "0");
	snprintf(v, sizeof(v), "/proc/%d/status", (int)pid);
	ck_assert_int_eq(stat(v, &st), 0);
	ck_assert_int_eq(st.st_uid, 0);
	ck_assert_int_eq(count_fds(pid), 1);
	/* So jailed, it reads root's and nobody's filters. */
	ck_assert_int_eq(run_client(client_gets_uffd, NULL, true), 0);
	ck_assert(log_wait(1000, "event=filter_proven", NULL));
	broker_stop();
}
END_TEST

/*
 * The kernel's rule that keeps the verifier without a filter of its own:
 * PTRACE_SECCOMP_GET_FILTER fails with EACCES for a tracer under any.
 */
static int
read_first_filter(pid_t pid, bool filtered)
{
	struct sock_filter insns[BPF_MAXINSNS];
	int status;

	if (filtered && refusing_filter(SCMP_SYS(swapon)) < 0)
		return 100;
	if (ptrace(PTRACE_SEIZE, pid, 0, 0) < 0 ||
	    ptrace(PTRACE_INTERRUPT, pid, 0, 0) < 0 ||
	    waitpid(pid, &status, __WALL) != pid)
		return 101;
	if (ptrace(PTRACE_SECCOMP_GET_FILTER, pid, 0, insns) > 0)
		return 0;
	return errno == EACCES ? 1 : 102;
}

static int
covered_and_idle(void *arg)
{
	(void)arg;
	CHILD_CHECK(client_jail_install() >= 0);
	for (;;)
		pause();
	return 0;
}

START_TEST(test_filtered_tracer_cannot_read)
{
	pid_t covered = spawn(covered_and_idle, NULL, true), tracer;
	int i;

	usleep(50000);
	for (i = 0; i < 2; i++) {
		tracer = fork();
		ck_assert_int_ge(tracer, 0);
		if (tracer == 0)
			_exit(read_first_filter(covered, i == 1));
		/* Its exit lets the covered process go. */
		ck_assert_int_eq(reap(tracer), i);
	}
	kill(covered, SIGKILL);
	reap(covered);
}
END_TEST

/*
 * A verifier killed: sessions that need the proof are refused, the log
 * says why; the broker serves on (user-mode sessions here) and stops
 * cleanly.
 */
START_TEST(test_verifier_killed_fails_closed)
{
	char *log, *at;

	broker_start("--policy", test_file("killed.conf", "[rule vmm]\n"
	    "uid = 65534\nmode = kernel\n[rule helpers]\nuid = 64001\n"), NULL);
	ck_assert_int_eq(run_client(client_gets_uffd, NULL, true), 0);
	ck_assert_int_eq(kill(verifier_pid(), SIGKILL), 0);
	ck_assert(log_wait(1000, "event=verifier_lost", "reason=\"exited\""));
	ck_assert_int_eq(run_client(client_open_refused, NULL, true), 0);
	ck_assert(log_wait(1000, "event=session_refused", "filter not proven: "
	    "the broker has no verifier"));
	ck_assert_int_eq(run_client(client_open_refused, NULL, true), 0);
	ck_assert_int_eq(run_client_as(user_mode_client, NULL, 64001), 0);
	/* Its loss is said once. */
	log = read_whole(tb.log);
	ck_assert_ptr_nonnull(at = strstr(log, "event=verifier_lost"));
	ck_assert_ptr_null(strstr(at + 1, "event=verifier_lost"));
	free(log);
	broker_stop();
}
END_TEST

static bool
dead(pid_t pid)
{
	char path[64], *stat, *paren;
	bool yes;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return true;
	fclose(f);
	stat = read_whole(path);
	yes = (paren = strrchr(stat, ')')) != NULL && paren[2] == 'Z';
	free(stat);
	return yes;
}

/*
 * The verifier's loss found by a request, then by its hang-up, in one turn
 * of the loop: a Hello is queued before the verifier dies while the broker
 * is stopped. Said once.
 */
static int
hello_when_told(void *arg)
{
	int *chan = arg, sock, listener;
	char reason[256];
	WireStatus st;

	CHILD_CHECK((sock = raw_connect()) >= 0);
	CHILD_CHECK((listener = client_jail_install()) >= 0);
	sync_signal(*chan);
	sync_wait(*chan);
	CHILD_CHECK(send_hello(sock, listener, &st, reason,
	    sizeof(reason)) == 0);
	CHILD_CHECK(st == UFFD_BROKER__V1__STATUS__DENIED);
	CHILD_CHECK(strstr(reason, "the broker has no verifier") != NULL);
	return 0;
}

START_TEST(test_verifier_lost_twice_in_a_turn)
{
	char *log, *at;
	pid_t v, client;
	int sv[2];

	broker_start("--allow-uid", "65534", NULL);
	v = verifier_pid();
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
	    sv), 0);
	client = spawn(hello_when_told, &sv[1], true);
	sync_wait(sv[0]);
	ck_assert_int_eq(kill(tb.pid, SIGSTOP), 0);
	sync_signal(sv[0]);
	usleep(50000);		/* the Hello is queued first */
	ck_assert_int_eq(kill(v, SIGKILL), 0);
	usleep(50000);
	ck_assert_int_eq(kill(tb.pid, SIGCONT), 0);
	ck_assert_int_eq(reap(client), 0);
	ck_assert(log_wait(1000, "event=verifier_lost", NULL));
	usleep(100000);
	log = read_whole(tb.log);
	ck_assert_ptr_nonnull(at = strstr(log, "event=verifier_lost"));
	ck_assert_msg(strstr(at + 1, "event=verifier_lost") == NULL, "%s", log);
	free(log);
	close(sv[0]);
	close(sv[1]);
	broker_stop();
}
END_TEST

/* The verifier dies with the broker. */
START_TEST(test_verifier_dies_with_broker)
{
	pid_t pid;
	int i;

	broker_start("--allow-uid", "65534", NULL);
	pid = verifier_pid();
	ck_assert_int_eq(kill(tb.pid, SIGKILL), 0);
	ck_assert_int_eq(reap(tb.pid), 128 + SIGKILL);
	tb.pid = 0;		/* reaped: broker_stop() only cleans up */
	/* Gone, or a zombie left to an init that does not reap. */
	for (i = 0; i < 100 && !dead(pid); i++)
		usleep(10000);
	ck_assert(dead(pid));
	broker_stop();
}
END_TEST

/*
 * A verifier that cannot start (no CAP_SYS_ADMIN to keep: the broker's
 * bounding set lacks it) is said at start-up; sessions that need it are
 * refused, and the broker serves on.
 */
START_TEST(test_verifier_not_started)
{
	ck_assert_int_eq(prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0), 0);
	broker_start("--allow-uid", "65534", NULL);
	ck_assert(log_wait(2000, "the verifier did not start (capabilities: "
	    "Operation not permitted)", NULL));
	ck_assert_int_eq(run_client(client_open_refused, NULL, true), 0);
	ck_assert(log_wait(1000, "event=session_refused", "filter not proven: "
	    "the broker has no verifier"));
	broker_stop();
}
END_TEST

/*
 * An admitted uid's Hellos in a loop, each with a thread the verifier
 * cannot stop: each proof runs out of time, and the loop waits for it. A
 * uid whose proof did so is refused without asking for a second, so others
 * are served meanwhile.
 */
static int
unstoppable_hello(void *arg)
{
	struct uffdc_session *s;
	pthread_t thr;
	int p[2];

	(void)arg;
	alarm(5);
	CHILD_CHECK(jail_allow_all() == 0);	/* threads: the broker's check */
	CHILD_CHECK(pipe(p) == 0);
	CHILD_CHECK(pthread_create(&thr, NULL, vfork_parent, &p[1]) == 0);
	sync_wait(p[0]);
	CHILD_CHECK(wait_task_state(second_tid, 'D', 2000));	/* in its vfork */
	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == -EACCES);
	_exit(0);		/* not waiting for the vfork child */
}

static int
hello_storm(void *arg)
{
	struct timespec t0;

	(void)arg;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (ms_since(&t0) < 2500)
		CHILD_CHECK(run_client(unstoppable_hello, NULL, false) == 0);
	return 0;
}

START_TEST(test_unproven_uid_backs_off)
{
	enum { STORMS = 8 };
	pid_t storms[STORMS];
	double ms, best = 1e9;
	int i;

	SKIP_UNDER_VALGRIND("it holds another uid's client to 100 ms during "
	    "the storm; under valgrind a handshake alone takes 100-300 ms, and "
	    "each unproven Hello costs the verifier its 800 ms deadline");
	broker_start("--allow-uid", "0", "--allow-uid", "64000",
	    "--allow-uid", "65534", "--max-sessions-per-uid", "1000", NULL);
	/* Two uids storm: uids take turns, so a third waits one turn. */
	for (i = 0; i < STORMS; i++)
		storms[i] = i % 2 ? spawn_as(hello_storm, NULL, 64000) :
		    spawn(hello_storm, NULL, false);
	usleep(500000);
	for (i = 0; i < 3; i++) {
		ms = timed_client_ms(true);
		if (ms < best)
			best = ms;
	}
	for (i = 0; i < STORMS; i++)
		ck_assert_int_eq(reap(storms[i]), 0);
	ck_assert_msg(best < 100, "a client of another uid waited %.0f ms "
	    "during the Hello storm", best);
	ck_assert(log_wait(0, "event=session_refused", "ran out of time less "
	    "than"));
	broker_stop();
}
END_TEST

Suite *
make_verifier_suite(void)
{
	Suite *s = suite_create("verifier");
	TCase *tc = tcase_create("verifier");

	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_own_filter_refused);
	tcase_add_test(tc, test_prove_off_lets_attack_through);
	tcase_add_test(tc, test_library_client_proven);
	tcase_add_test(tc, test_verifier_under_a_filter);
	tcase_add_test(tc, test_user_mode_not_proven);
	tcase_add_test(tc, test_fragment_among_others);
	tcase_add_test(tc, test_unfiltered_borrower_refused);
	tcase_add_test(tc, test_every_thread_read);
	tcase_add_test(tc, test_thread_made_during_read);
	tcase_add_test(tc, test_altered_fragment_refused);
	tcase_add_test(tc, test_too_many_threads);
	tcase_add_test(tc, test_unstoppable_thread);
	tcase_add_test(tc, test_verifier_late_answer);
	tcase_add_test(tc, test_proof_does_not_hold_the_loop);
	tcase_add_test(tc, test_requests_wait_for_the_proof);
	tcase_add_test(tc, test_listener_race_during_proofs);
	tcase_add_test(tc, test_late_verifier_backs_off_one_uid);
	tcase_add_test(tc, test_probe_proof_backs_off);
	tcase_add_loop_test(tc, test_verifier_jailed, 0, 2);
	tcase_add_test(tc, test_filtered_tracer_cannot_read);
	tcase_add_test(tc, test_verifier_killed_fails_closed);
	tcase_add_test(tc, test_verifier_lost_twice_in_a_turn);
	tcase_add_test(tc, test_verifier_dies_with_broker);
	tcase_add_test(tc, test_verifier_not_started);
	tcase_add_test(tc, test_unproven_uid_backs_off);
	suite_add_tcase(s, tc);
	return s;
}
