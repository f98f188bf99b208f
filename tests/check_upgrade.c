/* SPDX-License-Identifier: ISC */
/*
 * check_upgrade.c - the broker execs itself again (SIGUSR2) and its clients
 * notice nothing: sessions, listeners, quotas and counters carry over; a
 * creation made while it upgrades waits and succeeds; a state that is not
 * the broker's own is refused; an upgrade whose new binary cannot serve
 * leaves the old one serving.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <grp.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#include "harness.h"
#include "state.h"
#include "uffd-client.h"

#define UPGRADES	10
#define CLIENT_MAX_UFFDS 4

/* Shared with the looping client (MAP_SHARED, made before fork). */
struct looper {
	_Atomic int	stop;
	_Atomic uint64_t created;	/* creations that succeeded */
	_Atomic uint64_t failed;	/* and that did not */
	_Atomic int	last_error;
	_Atomic uint64_t worst_ns;	/* the longest creation */
	_Atomic int	ready;		/* the session is open */
	_Atomic uint32_t held;		/* uffds held at the end */
};

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * Create and release uffds until told to stop, holding two of them
 * throughout, so that the broker's count of live uffds is tested as well.
 */
static int
loop_client(void *arg)
{
	struct looper *lp = arg;
	struct uffdc_session *s;
	struct uffdc_uffd *held[2], *u;
	uint64_t t0, dt;
	int rc;

	rc = uffdc_session_open(tb.sock, &s);
	if (rc != 0)
		fprintf(stderr, "loop_client: %s (%s)\n", uffdc_strerror(rc),
		    uffdc_last_reason());
	CHILD_CHECK(rc == 0);
	CHILD_CHECK(uffdc_create(s, 0, 0, &held[0]) == 0);
	CHILD_CHECK(uffdc_create(s, 0, 0, &held[1]) == 0);
	atomic_store(&lp->ready, 1);
	while (!atomic_load(&lp->stop)) {
		t0 = now_ns();
		rc = uffdc_create(s, 0, 0, &u);
		dt = now_ns() - t0;
		if (dt > atomic_load(&lp->worst_ns))
			atomic_store(&lp->worst_ns, dt);
		if (rc != 0) {
			atomic_fetch_add(&lp->failed, 1);
			atomic_store(&lp->last_error, rc);
			continue;
		}
		atomic_fetch_add(&lp->created, 1);
		CHILD_CHECK(uffdc_release(u) == 0);
	}
	atomic_store(&lp->held, 2);
	/* Wait to be killed, holding two: the test reads the broker's count. */
	for (;;)
		pause();
}

static void
wait_resumed(int upgrades)
{
	char needle[64];

	snprintf(needle, sizeof(needle), "upgrades=%d ", upgrades);
	ck_assert_msg(log_wait(20000, "event=resumed", needle),
	    "upgrade %d: the broker did not resume", upgrades);
}

/*
 * The broker's fds, once the status queries' own sessions are gone (it
 * sees them hang up a moment after): at most limit, or what is left after
 * a second.
 */
static int
settled_fds(pid_t pid, int limit)
{
	int n = count_fds(pid), waited;

	for (waited = 0; n > limit && waited < 1000; waited += 10) {
		usleep(10000);
		n = count_fds(pid);
	}
	return n;
}

static struct looper *
looper_new(void)
{
	struct looper *lp = mmap(NULL, sizeof(*lp), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	ck_assert_ptr_ne(lp, MAP_FAILED);
	memset(lp, 0, sizeof(*lp));
	return lp;
}

static void
wait_flag(_Atomic int *flag)
{
	int i;

	for (i = 0; i < 10000 && !atomic_load(flag); i++)
		usleep(1000);
	ck_assert_int_ne(atomic_load(flag), 0);
}

/* The status holds needle. */
static bool
status_has(const char *needle)
{
	char *text = admin_view(UFFD_BROKER__V1__ADMIN_STATUS__VIEW__STATUS);
	bool found = text != NULL && strstr(text, needle) != NULL;

	if (!found)
		fprintf(stderr, "status lacks \"%s\":\n%s\n", needle,
		    text ? text : "(none)");
	free(text);
	return found;
}

/* Wait until the status holds needle. */
static bool
status_wait(int timeout_ms, const char *needle)
{
	char *text;
	bool found;
	int waited;

	for (waited = 0; waited <= timeout_ms; waited += 20) {
		text = admin_view(UFFD_BROKER__V1__ADMIN_STATUS__VIEW__STATUS);
		found = text != NULL && strstr(text, needle) != NULL;
		free(text);
		if (found)
			return true;
		usleep(20000);
	}
	return status_has(needle);
}

/* The longest handover_ms= of the broker's resumed lines. */
static double
longest_handover(void)
{
	char line[1024], *p;
	double ms, worst = 0;
	FILE *f = fopen(tb.log, "r");

	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, "event=resumed") != NULL &&
		    (p = strstr(line, "handover_ms=")) != NULL &&
		    (ms = strtod(p + 12, NULL)) > worst)
			worst = ms;
	if (f != NULL)
		fclose(f);
	return worst;
}

/*
 * After the looping client stopped: every creation succeeded; the counters
 * are exact (each granted once, the two held live, none pending); the
 * upgrades counted; the broker holds no more fds than before.
 */
static void
assert_exact(struct looper *lp, int upgrades, int fds_before)
{
	char needle[160];
	int fds_after;

	ck_assert_msg(atomic_load(&lp->failed) == 0, "%llu creations failed, "
	    "the last with %d", (unsigned long long)atomic_load(&lp->failed),
	    atomic_load(&lp->last_error));
	snprintf(needle, sizeof(needle), "live=2 pending=0 max=4 "
	    "uffds_granted=%llu uffds_refused=0",
	    (unsigned long long)atomic_load(&lp->created) + 2);
	ck_assert(status_has(needle));
	snprintf(needle, sizeof(needle), "upgrades=%d ", upgrades);
	ck_assert(status_has(needle));
	fds_after = settled_fds(tb.pid, fds_before + 1);
	ck_assert_msg(fds_after <= fds_before + 1, "the broker held %d fds "
	    "before and %d after", fds_before, fds_after);
}

START_TEST(test_upgrade_keeps_sessions)
{
	struct looper *lp = looper_new();
	uint64_t before;
	int fds_before, i;
	pid_t client, pid;

	SKIP_UNDER_VALGRIND("valgrind's own execve(2) makes calls the jail "
	    "forbids (open, getxattr), and the image it execs runs natively");
	broker_start("--allow-uid", "65534", "--max-uffds", "4", NULL);
	pid = tb.pid;
	client = spawn(loop_client, lp, true);
	wait_flag(&lp->ready);
	fds_before = count_fds(tb.pid);
	for (i = 1; i <= UPGRADES; i++) {
		before = atomic_load(&lp->created);
		ck_assert_int_eq(kill(tb.pid, SIGUSR2), 0);
		wait_resumed(i);
		/* It serves after each: the client creates on. */
		while (atomic_load(&lp->created) < before + 20)
			usleep(1000);
	}
	atomic_store(&lp->stop, 1);
	while (atomic_load(&lp->held) != 2)
		usleep(1000);
	ck_assert_int_eq(tb.pid, pid);
	assert_exact(lp, UPGRADES, fds_before);
	printf("test_upgrade_keeps_sessions: %d upgrades, %llu creations, "
	    "longest %.1f ms; longest hand-over %.1f ms\n", UPGRADES,
	    (unsigned long long)atomic_load(&lp->created),
	    atomic_load(&lp->worst_ns) / 1e6, longest_handover());
	kill(client, SIGKILL);
	reap(client);
	broker_stop();
}
END_TEST


/* A new directory under the run's (removed at its end), for name. */
static void
test_dir(char *dir, size_t len, const char *name)
{
	snprintf(dir, len, "%s/%s.XXXXXX", getenv("UFFD_TEST_DIR") ?
	    getenv("UFFD_TEST_DIR") : "/tmp", name);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(chmod(dir, 0755), 0);
}

/* Replace the broker's binary (the copy it runs from) with text. */
static void
replace_binary(const char *path, const char *text, mode_t mode)
{
	char tmp[PATH_MAX + 8];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.new", path);
	ck_assert_ptr_nonnull(f = fopen(tmp, "w"));
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(chmod(tmp, mode), 0);
	ck_assert_int_eq(rename(tmp, path), 0);
}

/*
 * A new binary that cannot serve is found out by the check, and the old
 * broker serves on: one that exits at once, one that cannot be executed,
 * one that is killed by the old jail (it makes a system call the filter
 * forbids), one whose jail differs (the hooks build, told to allow one call
 * more). Then the real binary is put back and the upgrade goes through.
 */
START_TEST(test_failed_upgrade_keeps_serving)
{
	struct looper *lp = looper_new();
	char dir[96], bin[PATH_MAX], needle[64];
	char out[PATH_MAX], ctl_bin[PATH_MAX], *text;
	const char *ctl[] = { ctl_bin, "upgrade", "--socket", NULL, NULL };
	static const struct {
		const char *text;
		mode_t mode;
		const char *says;
	} broken[] = {
		{ "#!/bin/sh\nexit 3\n", 0755, "exited without a report" },
		{ "not a program\n", 0644, "Permission denied" },
		/* a file opened for writing: killed by the old jail's filter */
		{ "#!/bin/sh\necho x >/dev/null\necho ok\n", 0755,
		    "exited without a report" },
	};
	uint64_t before;
	size_t i;
	pid_t client;

	SKIP_UNDER_VALGRIND("the broker's binary is valgrind's");
	test_dir(dir, sizeof(dir), "upgrade");
	snprintf(bin, sizeof(bin), "%s/uffd-brokerd", dir);
	copy_file(brokerd_path(), bin);
	ck_assert_int_eq(chmod(bin, 0755), 0);
	ck_assert_int_eq(setenv("UFFD_BROKERD", bin, 1), 0);
	/* Read by the hooks build only, which the last case runs. */
	ck_assert_int_eq(setenv("UFFD_BROKER_TEST_WIDER_JAIL", "1", 1), 0);
	broker_start("--allow-uid", "65534", "--max-uffds", "4", NULL);
	unsetenv("UFFD_BROKERD");
	unsetenv("UFFD_BROKER_TEST_WIDER_JAIL");
	ctl[3] = tb.sock;
	snprintf(ctl_bin, sizeof(ctl_bin), "%s", build_file("uffd-brokerctl"));
	client = spawn(loop_client, lp, true);
	wait_flag(&lp->ready);
	snprintf(out, sizeof(out), "%s/ctl.out", dir);
	for (i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
		replace_binary(bin, broken[i].text, broken[i].mode);
		/* The first by uffd-brokerctl, which says it was refused. */
		if (i == 0) {
			ck_assert_int_eq(run_program(out, false, ctl), 1);
			text = read_whole(out);
			ck_assert_msg(strstr(text, "upgrade refused, the broker "
			    "serves on") && strstr(text, broken[i].says),
			    "uffd-brokerctl upgrade said: %s", text);
			free(text);
		} else
			ck_assert_int_eq(kill(tb.pid, SIGUSR2), 0);
		snprintf(needle, sizeof(needle), "refused=%zu phase=idle", i + 1);
		ck_assert_msg(status_wait(20000, needle), "case %zu: the upgrade "
		    "was not refused", i);
		ck_assert_msg(status_has(broken[i].says), "case %zu: the "
		    "refusal does not say \"%s\"", i, broken[i].says);
		/* It serves on. */
		before = atomic_load(&lp->created);
		while (atomic_load(&lp->created) < before + 20)
			usleep(1000);
		ck_assert_int_eq(run_client(client_gets_uffd, NULL, true), 0);
	}
	/* A binary whose jail differs: the filter in force cannot widen. */
	copy_file(build_file("uffd-brokerd-hooks"), bin);
	ck_assert_int_eq(chmod(bin, 0755), 0);
	ck_assert_int_eq(kill(tb.pid, SIGUSR2), 0);
	snprintf(needle, sizeof(needle), "refused=%zu phase=idle", i + 1);
	ck_assert_msg(status_wait(20000, needle), "a wider jail: the upgrade "
	    "was not refused");
	ck_assert(status_has("jail differs from the one in force"));
	ck_assert(!log_wait(0, "event=resumed", NULL));
	copy_file(brokerd_path(), bin);
	ck_assert_int_eq(chmod(bin, 0755), 0);
	ck_assert_int_eq(run_program(out, false, ctl), 0);
	text = read_whole(out);
	snprintf(needle, sizeof(needle), "upgraded: pid %d, 1 upgrade so far",
	    (int)tb.pid);
	ck_assert_msg(strstr(text, needle), "uffd-brokerctl upgrade said: %s",
	    text);
	free(text);
	unlink(out);
	wait_resumed(1);
	atomic_store(&lp->stop, 1);
	while (atomic_load(&lp->held) != 2)
		usleep(1000);
	ck_assert_msg(atomic_load(&lp->failed) == 0, "%llu creations failed, "
	    "the last with %d", (unsigned long long)atomic_load(&lp->failed),
	    atomic_load(&lp->last_error));
	kill(client, SIGKILL);
	reap(client);
	broker_stop();
	unlink(bin);
	rmdir(dir);
}
END_TEST

/*
 * Forged states: a broker is started as an upgrade's exec would start it
 * (the state in a memfd named by UFFD_BROKER_STATE_FD, written by its own
 * pid) on a state that is damaged, or not its own, or that lies about its
 * fds and peers. The frame's faults refuse the whole state; a lie about one
 * session drops that session, its fds closed; a lie about the broker's own
 * fds stops it.
 */
enum forgery {
	FORGE_NONE,		/* the control: adopted */
	FORGE_SHORT,		/* shorter than the header */
	FORGE_TRUNCATED,	/* the message cut short */
	FORGE_MAGIC,
	FORGE_FORMAT,
	FORGE_DIGEST,		/* a byte of the message changed */
	FORGE_BOOT,		/* another boot's */
	FORGE_PID,		/* another broker's */
	FORGE_GARBAGE,		/* framed right, but no State inside */
	FORGE_PEER_UID,		/* the session's peer said to be root */
	FORGE_PEER_PIDFD,	/* its pidfd another process's */
	FORGE_TRACKER_KIND,	/* a timerfd as an account's tracker */
	FORGE_FD_TWICE,		/* one fd named twice */
	FORGE_NOT_LISTENING,	/* the listening socket does not listen */
	FORGE_FD_CLOSED,	/* the device fd is not open */
	FORGE_FORKED_ATTACH,	/* a forked session past its probe creation,
				   with no listener: a Probe would crash it */
	FORGE_COUNT
};

static const struct {
	const char *line;	/* in the broker's log */
	const char *detail;
	bool runs;		/* it serves (on what is left) */
} forged_result[FORGE_COUNT] = {
	[FORGE_NONE] = { "event=resumed", "sessions=1 listeners=0 dropped=0", true },
	[FORGE_SHORT] = { "state refused", "shorter than its header", false },
	[FORGE_TRUNCATED] = { "state refused", "truncated or padded", false },
	[FORGE_MAGIC] = { "state refused", "bad magic", false },
	[FORGE_FORMAT] = { "state refused", "state format 2 is not", false },
	[FORGE_DIGEST] = { "state refused", "digest mismatch", false },
	[FORGE_BOOT] = { "state refused", "another boot", false },
	[FORGE_PID] = { "state refused", "written by pid 1,", false },
	[FORGE_GARBAGE] = { "state refused", "does not decode", false },
	[FORGE_PEER_UID] = { "event=resume_dropped session=1",
	    "socket's peer is not", true },
	[FORGE_PEER_PIDFD] = { "event=resume_dropped session=1", "is of pid",
	    true },
	[FORGE_TRACKER_KIND] = { "event=fatal", "is anon_inode:[timerfd], "
	    "not anon_inode:[eventpoll]", false },
	[FORGE_FD_TWICE] = { "event=fatal", "is named twice", false },
	[FORGE_NOT_LISTENING] = { "event=fatal", "is not a listening unix",
	    false },
	[FORGE_FD_CLOSED] = { "event=fatal", "device: fd 999 is not open",
	    false },
	[FORGE_FORKED_ATTACH] = { "event=resume_dropped session=1",
	    "listener 0 is not in the state", true },
};

/* In the child that becomes the broker: a peer, as nobody, connected. */
static pid_t
forge_peer(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	pid_t pid = fork();
	int fd;

	if (pid != 0)
		return pid;
	if (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
	    setresuid(NOBODY, NOBODY, NOBODY) < 0 ||
	    prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		_exit(126);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		_exit(125);
	for (;;)
		pause();
}

/*
 * Build a state in the broker-to-be (this child), with real fds, forge it
 * as asked, and exec the broker on it. Never returns.
 */
static void __attribute__((noreturn))
forge_and_exec(enum forgery kind, const char *dir, const char *log)
{
	UffdBroker__State__V1__State st = UFFD_BROKER__STATE__V1__STATE__INIT;
	UffdBroker__State__V1__Session ses = UFFD_BROKER__STATE__V1__SESSION__INIT;
	UffdBroker__State__V1__Session *sesp[] = { &ses };
	UffdBroker__State__V1__Grant grant = UFFD_BROKER__STATE__V1__GRANT__INIT;
	UffdBroker__State__V1__Account acc = UFFD_BROKER__STATE__V1__ACCOUNT__INIT;
	UffdBroker__State__V1__Account *accp[] = { &acc };
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	uint8_t boot_id[16], *msg, *framed;
	size_t len, flen;
	char num[16], sockpath[108];
	const char *argv[8];
	pid_t peer, self = getpid();
	sigset_t mask;
	int lfd, sock, memfd, logfd;

	logfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (logfd < 0 || dup2(logfd, 2) < 0 || prctl(PR_SET_PDEATHSIG,
	    SIGTERM) < 0 || state_boot_id(boot_id) < 0)
		_exit(120);
	snprintf(sockpath, sizeof(sockpath), "%s/broker.sock", dir);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sockpath);
	lfd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    chmod(sockpath, 0666) < 0 || listen(lfd, 8) < 0)
		_exit(121);
	peer = forge_peer(sockpath);
	if ((sock = accept4(lfd, NULL, NULL, 0)) < 0)
		_exit(122);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR2);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		_exit(123);
	st.listen_fd = kind == FORGE_NOT_LISTENING ?
	    socket(AF_UNIX, SOCK_SEQPACKET, 0) : lfd;
	st.lock_fd = -1;
	st.devfd = kind == FORGE_FD_CLOSED ? 999 :
	    open("/dev/userfaultfd", O_RDONLY);
	st.timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	st.sigfd = signalfd(-1, &mask, SFD_NONBLOCK);
	st.verifier_sock = -1;
	st.notify_fd = -1;
	st.upgrades = 1;
	st.next_id = 1;
	acc.mm_id = 1;
	acc.tracker = kind == FORGE_TRACKER_KIND ?
	    timerfd_create(CLOCK_MONOTONIC, 0) :
	    kind == FORGE_FD_TWICE ? st.sigfd : epoll_create1(0);
	st.accounts = accp;
	st.n_accounts = 1;
	grant.max_uffds = 4;
	grant.max_sessions_per_uid = 4;
	ses.id = 1;
	ses.state = 0;		/* waiting for its Hello */
	ses.sock = sock;
	ses.pidfd = (int)syscall(SYS_pidfd_open, kind == FORGE_PEER_PIDFD ?
	    self : peer, 0);
	(void)fcntl(ses.pidfd, F_SETFD, 0);	/* pidfds are close-on-exec */
	ses.pid = peer;
	ses.uid = kind == FORGE_PEER_UID ? 0 : NOBODY;
	ses.gid = NOBODY;
	ses.probe_uffd = -1;
	ses.account = 1;
	ses.proof_fd = -1;
	ses.grant = &grant;
	ses.rule = (char *)"";
	ses.page_size = 4096;
	if (kind == FORGE_FORKED_ATTACH) {
		ses.state = 3;		/* probe-attach */
		ses.forked = true;
		ses.dummy_page = 0x10000;
	}
	st.sessions = sesp;
	st.n_sessions = 1;

	len = uffd_broker__state__v1__state__get_packed_size(&st);
	if ((msg = malloc(len + 1)) == NULL)
		_exit(124);
	uffd_broker__state__v1__state__pack(&st, msg);
	if (kind == FORGE_GARBAGE)
		memset(msg, 0xff, len);
	if (kind == FORGE_BOOT)
		boot_id[3] ^= 1;
	framed = state_frame(msg, len, kind == FORGE_PID ? 1 : self, boot_id,
	    &flen);
	if (framed == NULL)
		_exit(124);
	if (kind == FORGE_SHORT)
		flen = 10;
	if (kind == FORGE_TRUNCATED)
		flen -= 5;
	if (kind == FORGE_MAGIC)
		framed[0] ^= 0x20;
	if (kind == FORGE_FORMAT)
		framed[8] = 2;
	if (kind == FORGE_DIGEST)
		framed[flen - 1] ^= 1;
	memfd = memfd_create("forged", 0);
	if (memfd < 0 || write(memfd, framed, flen) != (ssize_t)flen)
		_exit(124);
	snprintf(num, sizeof(num), "%d", memfd);
	setenv("UFFD_BROKER_STATE_FD", num, 1);
	argv[0] = brokerd_path();
	argv[1] = "--socket";
	argv[2] = sockpath;
	argv[3] = "--allow-uid";
	argv[4] = "65534";
	argv[5] = NULL;
	exec_brokerd(argv);
	_exit(127);
}

START_TEST(test_forged_state_refused)
{
	enum forgery kind = (enum forgery)_i;
	char dir[96], log[128], path[128];
	int status = 0, waited;
	bool reaped = false;
	pid_t pid;

	/* Under the run's directory: removed at the end even if this fails. */
	test_dir(dir, sizeof(dir), "forged");
	snprintf(log, sizeof(log), "%s/broker.log", dir);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		forge_and_exec(kind, dir, log);
	/* log_wait() reads the test broker's log. */
	snprintf(tb.log, sizeof(tb.log), "%s", log);
	for (waited = 0; waited < 20000 && !log_wait(0,
	    forged_result[kind].line, forged_result[kind].detail);
	    waited += 10) {
		/* A child that failed before it became the broker says so. */
		if (waitpid(pid, &status, WNOHANG) == pid) {
			reaped = true;
			if (log_wait(0, forged_result[kind].line,
			    forged_result[kind].detail))
				break;
			ck_abort_msg("forgery %d: the broker-to-be exited, status "
			    "0x%x, before saying \"%s\"", kind, status,
			    forged_result[kind].detail);
		}
		usleep(10000);
	}
	ck_assert_msg(log_wait(0, forged_result[kind].line,
	    forged_result[kind].detail), "forgery %d: no line with \"%s\" "
	    "and \"%s\"", kind, forged_result[kind].line,
	    forged_result[kind].detail);
	if (forged_result[kind].runs) {
		if (kind != FORGE_NONE)
			ck_assert(log_wait(20000, "event=resumed",
			    "sessions=0 listeners=0 dropped=1"));
		ck_assert(log_wait(20000, "event=ready", NULL));
		kill(pid, SIGTERM);
	}
	if (!reaped)
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) ==
	    (forged_result[kind].runs ? 0 : 1), "forgery %d: status 0x%x",
	    kind, status);
	if (!forged_result[kind].runs)
		ck_assert(!log_wait(0, "event=resumed", NULL));
	tb.log[0] = '\0';
	unlink(log);
	snprintf(path, sizeof(path), "%s/broker.sock", dir);
	unlink(path);
	rmdir(dir);
}
END_TEST

/* ---- a restart from the fd store (uffd-fdstore stands in for systemd) ---- */

#define RESTARTS	5

struct standin {
	pid_t	pid;		/* the stand-in's */
	char	out[96], dump[96], notify[96];
};

/* The pid of the stand-in's nth start of the broker (1..), or 0. */
static pid_t
started_pid(const struct standin *si, int nth)
{
	char line[256];
	int seen = 0;
	pid_t pid = 0;
	FILE *f = fopen(si->out, "r");

	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "started pid=", 12) == 0 && ++seen == nth)
			pid = (pid_t)atoi(line + 12);
	if (f != NULL)
		fclose(f);
	return pid;
}

/* Wait for the nth start to say READY=1; its pid. */
static pid_t
wait_started(const struct standin *si, int nth)
{
	char line[256], needle[64];
	pid_t pid = 0;
	int waited;
	FILE *f;

	for (waited = 0; waited < 20000; waited += 10) {
		if (pid == 0)
			pid = started_pid(si, nth);
		if (pid != 0) {
			snprintf(needle, sizeof(needle), "ready pid=%d\n", (int)pid);
			if ((f = fopen(si->out, "r")) != NULL) {
				while (fgets(line, sizeof(line), f) != NULL)
					if (strcmp(line, needle) == 0) {
						fclose(f);
						return pid;
					}
				fclose(f);
			}
		}
		usleep(10000);
	}
	ck_abort_msg("the broker's start %d did not say READY=1", nth);
	return 0;
}

/* The broker under the stand-in, with args; its pid in tb.pid. */
static void
standin_start(struct standin *si, const char *arg, ...)
{
	const char *argv[32];
	int argc = 0, fd;
	va_list ap;

	memset(&tb, 0, sizeof(tb));
	snprintf(tb.dir, sizeof(tb.dir), "%s/standin.XXXXXX",
	    getenv("UFFD_TEST_DIR") ? getenv("UFFD_TEST_DIR") : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tb.dir));
	ck_assert_int_eq(chmod(tb.dir, 0755), 0);
	snprintf(tb.sock, sizeof(tb.sock), "%s/broker.sock", tb.dir);
	snprintf(tb.log, sizeof(tb.log), "%s/broker.log", tb.dir);
	snprintf(si->out, sizeof(si->out), "%s/standin.out", tb.dir);
	snprintf(si->dump, sizeof(si->dump), "%s/store.txt", tb.dir);
	snprintf(si->notify, sizeof(si->notify), "%s/notify", tb.dir);
	argv[argc++] = build_file("uffd-fdstore");
	argv[argc++] = "--notify";
	argv[argc++] = si->notify;
	argv[argc++] = "--dump";
	argv[argc++] = si->dump;
	argv[argc++] = "--";
	argv[argc++] = brokerd_path();
	argv[argc++] = "--socket";
	argv[argc++] = tb.sock;
	va_start(ap, arg);
	for (; arg != NULL && argc < 30; arg = va_arg(ap, const char *))
		argv[argc++] = arg;
	va_end(ap);
	argv[argc] = NULL;
	si->pid = fork();
	ck_assert_int_ge(si->pid, 0);
	if (si->pid == 0) {
		if ((fd = open(si->out, O_WRONLY | O_CREAT | O_TRUNC |
		    O_CLOEXEC, 0644)) < 0 || dup2(fd, 1) < 0 ||
		    (fd = open(tb.log, O_WRONLY | O_CREAT | O_APPEND |
		    O_CLOEXEC, 0644)) < 0 || dup2(fd, 2) < 0 ||
		    prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
			_exit(127);
		unsetenv("NOTIFY_SOCKET");
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	tb.pid = wait_started(si, 1);
}

/* Stop the stand-in, which stops the broker; clean up. */
static void
standin_stop(struct standin *si)
{
	char path[192];

	ck_assert_int_eq(kill(si->pid, SIGTERM), 0);
	ck_assert_int_eq(reap(si->pid), 0);
	unlink(tb.sock);
	snprintf(path, sizeof(path), "%s.lock", tb.sock);
	unlink(path);
	unlink(tb.log);
	unlink(si->out);
	unlink(si->dump);
	rmdir(tb.dir);
	tb.pid = 0;
}

/* The names the stand-in holds, one a line. */
static char *
standin_names(const struct standin *si)
{
	int i;

	unlink(si->dump);
	ck_assert_int_eq(kill(si->pid, SIGUSR1), 0);
	for (i = 0; i < 2000 && access(si->dump, F_OK) != 0; i++)
		usleep(1000);
	usleep(10000);
	return read_whole(si->dump);
}

/*
 * Lines of text that are prefix, then digits if digits, then suffix
 * ("s", true, ".sock" counts "s12.sock").
 */
static int
count_names(const char *text, const char *prefix, bool digits,
    const char *suffix)
{
	const char *p = text, *q;
	int n = 0;
	size_t len;

	while (p != NULL && *p != '\0') {
		len = strcspn(p, "\n");
		q = p + strlen(prefix);
		if (strncmp(p, prefix, strlen(prefix)) == 0) {
			if (digits) {
				if (!isdigit((unsigned char)*q))
					q = NULL;
				while (q != NULL && isdigit((unsigned char)*q))
					q++;
			}
			if (q != NULL && (size_t)(p + len - q) == strlen(suffix) &&
			    strncmp(q, suffix, strlen(suffix)) == 0)
				n++;
		}
		p += len + (p[len] == '\n');
	}
	return n;
}

/*
 * The loop: a client creates and releases uffds (holding two) across
 * 10 upgrades and 5 SIGKILLs of the broker, which the stand-in restarts from
 * the fd store. Every creation succeeds, the counters are exact, the broker
 * holds no more fds at the end than at the start, and the store holds the
 * session's fds once each.
 */
START_TEST(test_restart_keeps_sessions)
{
	struct looper *lp = looper_new();
	struct standin si;
	uint64_t before;
	char *names;
	int fds_before, step, upgrades = 0, starts = 1;
	pid_t client;

	SKIP_UNDER_VALGRIND("valgrind's own execve(2) makes calls the jail "
	    "forbids, and the restarted broker is not under valgrind");
	standin_start(&si, "--allow-uid", "65534", "--max-uffds", "4", NULL);
	client = spawn(loop_client, lp, true);
	wait_flag(&lp->ready);
	fds_before = count_fds(tb.pid);
	for (step = 1; step <= UPGRADES + RESTARTS; step++) {
		before = atomic_load(&lp->created);
		if (step % 3 == 0) {
			ck_assert_int_eq(kill(tb.pid, SIGKILL), 0);
			tb.pid = wait_started(&si, ++starts);
			ck_assert(log_wait(20000, "event=restarted", NULL));
		} else {
			ck_assert_int_eq(kill(tb.pid, SIGUSR2), 0);
			wait_resumed(++upgrades);
		}
		while (atomic_load(&lp->created) < before + 20)
			usleep(1000);
	}
	ck_assert_int_eq(starts, RESTARTS + 1);
	atomic_store(&lp->stop, 1);

	while (atomic_load(&lp->held) != 2)
		usleep(1000);
	assert_exact(lp, upgrades, fds_before);
	/*
	 * One session: its listener, socket, pidfd, probe, tracker. (The
	 * status queries' own sessions leave as the broker sees them hang
	 * up: asked again a moment later.)
	 */
	for (step = 0; step < 100; step++) {
		names = standin_names(&si);
		if (count_names(names, "s", true, ".sock") == 1)
			break;
		free(names);
		usleep(20000);
	}
	ck_assert_msg(count_names(names, "l", true, "") == 1 &&
	    count_names(names, "s", true, ".sock") == 1 &&
	    count_names(names, "s", true, ".pidfd") == 1 &&
	    count_names(names, "s", true, ".probe") == 1 &&
	    count_names(names, "a", true, "") == 1 &&
	    count_names(names, "state.", true, "") == 2 &&
	    count_names(names, "journal", false, "") == 1 &&
	    count_names(names, "listen", false, "") == 1 &&
	    count_names(names, "lock", false, "") == 1 &&
	    count_names(names, "", false, "") == 0,
	    "the store holds:\n%s", names);
	free(names);
	printf("test_restart_keeps_sessions: %d upgrades, %d restarts, %llu "
	    "creations, longest %.1f ms\n", upgrades, RESTARTS,
	    (unsigned long long)atomic_load(&lp->created),
	    atomic_load(&lp->worst_ns) / 1e6);
	kill(client, SIGKILL);
	reap(client);
	standin_stop(&si);
}
END_TEST

/*
 * The broker is killed at the worst moments of a creation, one after the
 * other, by the hooks build: a notification received and not answered (the
 * old broker received it; the new one answers), an Attach read and not
 * answered, an Attach whose uffd is initialised and not tracked, one whose
 * uffd is initialised and tracked and nothing written. Each creation
 * succeeds, and the counters are exact.
 */
struct stepper {
	_Atomic int	ready, go, done, rc;
};

static int
step_client(void *arg)
{
	struct stepper *st = arg;
	struct uffdc_session *s;
	struct uffdc_uffd *u;
	int rc, round;

	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	atomic_store(&st->ready, 1);
	for (round = 1;; round++) {
		while (atomic_load(&st->go) < round)
			usleep(1000);
		rc = uffdc_create(s, 0, 0, &u);
		if (rc == 0)
			rc = uffdc_release(u);
		atomic_store(&st->rc, rc);
		atomic_store(&st->done, round);
	}
}

/* No turn's audit found the journal and the state apart (its line, if so). */
static void
assert_audit_clean(void)
{
	char *log = read_whole(tb.log), *line, *end;

	ck_assert_ptr_nonnull(log);
	if ((line = strstr(log, "store audit")) != NULL &&
	    (end = strchr(line, '\n')) != NULL)
		*end = '\0';
	ck_assert_msg(line == NULL, "%s", line);
	free(log);
}

/* A session whose very first notification meets the kill. */
static int
first_client(void *arg)
{
	struct uffdc_session *s;
	struct uffdc_uffd *u;

	(void)arg;
	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	CHILD_CHECK(uffdc_create(s, 0, 0, &u) == 0);
	CHILD_CHECK(uffdc_release(u) == 0);
	uffdc_session_close(s);
	return 0;
}

static int
count_in_log(const char *needle)
{
	char *log = read_whole(tb.log), *p;
	int n = 0;

	for (p = log; p != NULL && (p = strstr(p, needle)) != NULL; p++)
		n++;
	free(log);
	return n;
}

START_TEST(test_restart_at_the_worst_moments)
{
	static const char *const points[] = { "received", "attach-read",
	    "attach-initialised", "attach-tracked" };
	static const char *const recovery[] = { "event=restart_answered",
	    "event=uffd_granted", "initialised by the broker that was killed",
	    "granted by the broker that was killed" };
	struct stepper *st = mmap(NULL, sizeof(*st), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char flag[128], needle[64];
	struct standin si;
	pid_t client;
	size_t i;
	int fd, waited;

	SKIP_UNDER_VALGRIND("the restarted broker is not under valgrind");
	ck_assert_ptr_ne(st, MAP_FAILED);
	memset(st, 0, sizeof(*st));
	ck_assert_int_eq(setenv("UFFD_BROKERD", build_file("uffd-brokerd-hooks"),
	    1), 0);
	snprintf(flag, sizeof(flag), "%s/die.%d", getenv("UFFD_TEST_DIR") ?
	    getenv("UFFD_TEST_DIR") : "/tmp", (int)getpid());
	ck_assert_int_eq(setenv("UFFD_BROKER_TEST_DIE_FLAG", flag, 1), 0);
	ck_assert_int_eq(setenv("UFFD_BROKER_TEST_AUDIT_STORE", "1", 1), 0);
	standin_start(&si, "--allow-uid", "65534", "--max-uffds", "4", NULL);
	unsetenv("UFFD_BROKERD");
	unsetenv("UFFD_BROKER_TEST_DIE_FLAG");
	unsetenv("UFFD_BROKER_TEST_AUDIT_STORE");
	client = spawn(step_client, st, true);
	wait_flag(&st->ready);
	for (i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
		fd = open(flag, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(write(fd, points[i], strlen(points[i])),
		    (ssize_t)strlen(points[i]));
		close(fd);
		atomic_store(&st->go, (int)i + 1);
		for (waited = 0; waited < 20000 &&
		    atomic_load(&st->done) != (int)i + 1; waited += 10)
			usleep(10000);
		ck_assert_msg(atomic_load(&st->done) == (int)i + 1, "%s: the "
		    "creation did not return", points[i]);
		ck_assert_msg(atomic_load(&st->rc) == 0, "%s: the creation "
		    "failed: %d", points[i], atomic_load(&st->rc));
		snprintf(needle, sizeof(needle), "killed at %s", points[i]);
		ck_assert(log_wait(0, "event=test_hook", needle));
		tb.pid = wait_started(&si, (int)i + 2);
		ck_assert_msg(log_wait(0, recovery[i], NULL), "%s: no %s",
		    points[i], recovery[i]);
		ck_assert_int_ne(access(flag, F_OK), 0);
	}
	/*
	 * A listener's first notification (a new session's verification):
	 * its id, which starts anywhere, was written before the kill, so the
	 * next broker finds it and answers it.
	 */
	fd = open(flag, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "received", 8), 8);
	close(fd);
	ck_assert_int_eq(run_client(first_client, NULL, true), 0);
	tb.pid = wait_started(&si, (int)i + 2);
	ck_assert_int_eq(count_in_log("event=restart_answered"), 2);
	/* Four creations, each granted once; none pending, none live. */
	ck_assert(status_wait(5000, "live=0 pending=0 max=4 uffds_granted=4 "
	    "uffds_refused=0"));
	/* What each restarted broker would have read was its state. */
	assert_audit_clean();
	kill(client, SIGKILL);
	reap(client);
	standin_stop(&si);
}
END_TEST

/*
 * Sessions that come and go while the looping client runs: each opens a
 * session, takes its quota of uffds and is refused one more, ends its
 * session while it still holds them (a spent record, with its account),
 * then execs (its address space goes, its process stays: the record
 * changes) and exits a moment later.
 */
static int
churn_one(void *arg)
{
	struct uffdc_session *s;
	struct uffdc_uffd *u[CLIENT_MAX_UFFDS + 1];
	int i;

	(void)arg;
	if (uffdc_session_open(tb.sock, &s) != 0)
		_exit(2);	/* the broker was being killed: not counted */
	for (i = 0; i < CLIENT_MAX_UFFDS + 1; i++)
		if (uffdc_create(s, 0, 0, &u[i]) != 0)
			break;
	uffdc_session_close(s);
	usleep(30000);
	if (i != CLIENT_MAX_UFFDS)
		_exit(1);
	execl("/bin/sleep", "sleep", "0.3", (char *)NULL);
	_exit(3);
}

static int
churn_client(void *arg)
{
	struct looper *lp = arg;
	pid_t pid;
	int status;

	atomic_store(&lp->ready, 1);
	while (!atomic_load(&lp->stop)) {
		if ((pid = fork()) == 0)
			churn_one(NULL);
		CHILD_CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			atomic_fetch_add(&lp->created, 1);
		else if (!WIFEXITED(status) || WEXITSTATUS(status) != 2)
			atomic_fetch_add(&lp->failed, 1);
	}
	return 0;
}

/*
 * A client that does not send its Attach again after a restart: the killed
 * broker initialised the uffd (UFFDIO_API) and died before it tracked it.
 * The client holds it, working, where no count sees it. The broker wrote
 * its inode down before it initialised it, so the next one knows a uffd is
 * unaccounted for: once the client attaches another, it counts the first
 * for the address space's life, and the quota (2) holds: once the first's
 * creation has expired, the third is refused. (Before, it was granted: 3
 * live of 2.)
 */
static int
unseen_client(void *arg)
{
	struct timeval tv = { .tv_sec = 3 };
	struct hand h;
	int a, b, c;

	(void)arg;
	CHILD_CHECK(hand_connect(&h) == 0);
	CHILD_CHECK(hand_jail(&h) == 0);
	CHILD_CHECK(hand_verify(&h) >= 0);
	a = ioctl(h.devfd, USERFAULTFD_IOC_NEW, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	CHILD_CHECK(a >= 0);
	CHILD_CHECK(hand_send(&h, UFFD_BROKER__V1__REQUEST__BODY_PROBE, a) == 0);
	CHILD_CHECK(h.st == UFFD_BROKER__V1__STATUS__OK);
	close(a);
	/* The broker is killed once it initialised a: no answer comes. */
	a = ioctl(h.devfd, USERFAULTFD_IOC_NEW, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	CHILD_CHECK(a >= 0);
	CHILD_CHECK(setsockopt(h.sock, SOL_SOCKET, SO_RCVTIMEO, &tv,
	    sizeof(tv)) == 0);
	CHILD_CHECK(hand_send(&h, UFFD_BROKER__V1__REQUEST__BODY_ATTACH,
	    a) < 0);
	/* a is initialised, and the client's: never sent again. */
	/* The restarted broker: b is granted; c would be the third. */
	for (b = -1; b < 0;) {
		b = ioctl(h.devfd, USERFAULTFD_IOC_NEW, O_CLOEXEC |
		    UFFD_USER_MODE_ONLY);
		if (b < 0) {
			CHILD_CHECK(errno == EAGAIN || errno == ENOSYS);
			usleep(20000);
		}
	}
	CHILD_CHECK(hand_send(&h, UFFD_BROKER__V1__REQUEST__BODY_ATTACH,
	    b) == 0);
	CHILD_CHECK(h.st == UFFD_BROKER__V1__STATUS__OK);
	/* a's creation, pending since, expires (the handshake timeout). */
	usleep(1500000);
	c = ioctl(h.devfd, USERFAULTFD_IOC_NEW, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	if (c >= 0) {
		fprintf(stderr, "unseen_client: a third uffd, over a quota of "
		    "2\n");
		return 1;
	}
	CHILD_CHECK(errno == EDQUOT);
	return 0;
}

START_TEST(test_restart_counts_unseen)
{
	char flag[128];
	struct standin si;
	int fd;

	SKIP_UNDER_VALGRIND("the restarted broker is not under valgrind");
	snprintf(flag, sizeof(flag), "%s/die.%d", getenv("UFFD_TEST_DIR") ?
	    getenv("UFFD_TEST_DIR") : "/tmp", (int)getpid());
	fd = open(flag, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "attach-initialised", 18), 18);
	close(fd);
	ck_assert_int_eq(setenv("UFFD_BROKERD", build_file("uffd-brokerd-hooks"),
	    1), 0);
	ck_assert_int_eq(setenv("UFFD_BROKER_TEST_DIE_FLAG", flag, 1), 0);
	ck_assert_int_eq(setenv("UFFD_BROKER_TEST_AUDIT_STORE", "1", 1), 0);
	standin_start(&si, "--allow-uid", "65534", "--max-uffds", "2",
	    "--handshake-timeout-ms", "1000", "--probe-interval-ms", "100",
	    NULL);
	unsetenv("UFFD_BROKERD");
	unsetenv("UFFD_BROKER_TEST_DIE_FLAG");
	unsetenv("UFFD_BROKER_TEST_AUDIT_STORE");
	ck_assert_int_eq(run_client(unseen_client, NULL, true), 0);
	ck_assert(log_wait(0, "event=test_hook", "killed at attach-initialised"));
	ck_assert(log_wait(0, "event=uffd_unseen", NULL));
	assert_audit_clean();
	unlink(flag);
	standin_stop(&si);
}
END_TEST

/*
 * The journal holds the state: under the hooks build's audit, which after
 * every loop turn compares what a restarted broker would read with the
 * broker's own state, sessions are made, granted, refused, spent and
 * forgotten across upgrades and SIGKILLs. No turn differs, and every
 * restart reads entries of the journal.
 */
START_TEST(test_journal_is_the_state)
{
	struct looper *lp = looper_new(), *churn = looper_new();
	struct standin si;
	uint64_t before, churned;
	int step, upgrades = 0, starts = 1;
	pid_t client, churner;

	SKIP_UNDER_VALGRIND("the restarted broker is not under valgrind");
	ck_assert_int_eq(setenv("UFFD_BROKERD", build_file("uffd-brokerd-hooks"),
	    1), 0);
	ck_assert_int_eq(setenv("UFFD_BROKER_TEST_AUDIT_STORE", "1", 1), 0);
	standin_start(&si, "--allow-uid", "65534", "--max-uffds", "4", NULL);
	unsetenv("UFFD_BROKERD");
	unsetenv("UFFD_BROKER_TEST_AUDIT_STORE");
	client = spawn(loop_client, lp, true);
	churner = spawn(churn_client, churn, true);
	wait_flag(&lp->ready);
	wait_flag(&churn->ready);
	for (step = 1; step <= 6; step++) {
		before = atomic_load(&lp->created);
		churned = atomic_load(&churn->created);
		assert_audit_clean();
		if (step % 2 == 0) {
			ck_assert_int_eq(kill(tb.pid, SIGKILL), 0);
			tb.pid = wait_started(&si, ++starts);
		} else {
			ck_assert_int_eq(kill(tb.pid, SIGUSR2), 0);
			wait_resumed(++upgrades);
		}
		/* Status counts the looping client's uffds: its account's
		 * count changes with no request of its own. */
		while (atomic_load(&lp->created) < before + 20 ||
		    atomic_load(&churn->created) < churned + 3) {
			free(admin_view(
			    UFFD_BROKER__V1__ADMIN_STATUS__VIEW__STATUS));
			usleep(20000);
		}
	}
	atomic_store(&lp->stop, 1);
	atomic_store(&churn->stop, 1);
	ck_assert_int_eq(reap(churner), 0);
	while (atomic_load(&lp->held) != 2)
		usleep(1000);
	ck_assert_msg(atomic_load(&lp->failed) == 0 &&
	    atomic_load(&churn->failed) == 0, "creations failed: %llu "
	    "looping (last %d), %llu churning",
	    (unsigned long long)atomic_load(&lp->failed),
	    atomic_load(&lp->last_error),
	    (unsigned long long)atomic_load(&churn->failed));
	/* Each restart read the journal; no turn's audit found a difference. */
	assert_audit_clean();
	/* (One may follow a whole write, whose journal is empty.) */
	ck_assert_msg(count_in_log("journal_entries=0 ") < starts - 1,
	    "no restart read a journal entry");
	ck_assert_int_eq(starts, 4);
	printf("test_journal_is_the_state: %d upgrades, %d restarts, %llu "
	    "creations, %llu sessions churned\n", upgrades, starts - 1,
	    (unsigned long long)atomic_load(&lp->created),
	    (unsigned long long)atomic_load(&churn->created));
	kill(client, SIGKILL);
	reap(client);
	standin_stop(&si);
}
END_TEST

/*
 * The journal read over a whole state (state_view_open(), pure): the
 * entries apply in order, each record's last version wins, gone records
 * go, accounts no record names are dropped; and the journal ends, with
 * what came before standing, at an entry that is torn, forged, of another
 * state or boot, or out of order.
 */
enum journal_case {
	JOURNAL_GOOD, JOURNAL_TORN, JOURNAL_DIGEST, JOURNAL_OTHER_STATE,
	JOURNAL_OUT_OF_ORDER, JOURNAL_OTHER_BOOT, JOURNAL_NOT_ENTRY,
	JOURNAL_COUNT
};

typedef UffdBroker__State__V1__State TState;
typedef UffdBroker__State__V1__Session TSession;
typedef UffdBroker__State__V1__Account TAccount;
typedef UffdBroker__State__V1__Spent TSpent;
typedef UffdBroker__State__V1__Listener TListener;

static uint8_t *
frame_of(TState *st, const uint8_t boot_id[16], size_t *flen)
{
	size_t len = uffd_broker__state__v1__state__get_packed_size(st);
	uint8_t *msg = malloc(len + 1), *framed;

	ck_assert_ptr_nonnull(msg);
	uffd_broker__state__v1__state__pack(st, msg);
	framed = state_frame(msg, len, 1234, boot_id, flen);
	ck_assert_ptr_nonnull(framed);
	free(msg);
	return framed;
}

static const TSession *
view_session(const TState *st, uint64_t id)
{
	size_t i;

	for (i = 0; i < st->n_sessions; i++)
		if (st->sessions[i]->id == id)
			return st->sessions[i];
	return NULL;
}

START_TEST(test_journal_read)
{
	enum journal_case kind = (enum journal_case)_i;
	TState base = UFFD_BROKER__STATE__V1__STATE__INIT;
	TState e1 = UFFD_BROKER__STATE__V1__STATE__INIT;
	TState e2 = UFFD_BROKER__STATE__V1__STATE__INIT;
	TSession s1 = UFFD_BROKER__STATE__V1__SESSION__INIT, s2, s1b, s1c, s3;
	TAccount a1 = UFFD_BROKER__STATE__V1__ACCOUNT__INIT, a2, a3, a9;
	TSpent sp2 = UFFD_BROKER__STATE__V1__SPENT__INIT;
	TListener l1 = UFFD_BROKER__STATE__V1__LISTENER__INIT;
	UffdBroker__State__V1__Grant grant = UFFD_BROKER__STATE__V1__GRANT__INIT;
	TSession *base_s[] = { &s1, &s2 }, *e1_s[] = { &s1b, &s3 };
	TSession *e2_s[] = { &s1c };
	TAccount *base_a[] = { &a1, &a2, &a9 }, *e1_a[] = { &a3 };
	TAccount *e2_a[] = { &a2 };
	TSpent *e2_sp[] = { &sp2 };
	TListener *base_l[] = { &l1 };
	uint64_t gone_s2 = 2, gone_l1 = 1;
	uint8_t boot_id[16], other_boot[16], *f0, *f1, *f2, *journal;
	size_t n0, n1, n2, jlen;
	struct state_view v;
	BrokerState *st;
	char err[256];
	bool second;

	ck_assert_int_eq(state_boot_id(boot_id), 0);
	memcpy(other_boot, boot_id, sizeof(other_boot));
	other_boot[0] ^= 1;
	s1.id = 1;
	s1.account = 1;
	s1.granted = 1;
	s1.rule = (char *)"r";
	s1.grant = &grant;
	s2 = s1b = s1c = s3 = s1;
	s2.id = 2;
	s2.account = 2;
	s1b.granted = 5;
	s1c.granted = 6;
	s3.id = 3;
	s3.account = 3;
	a1.mm_id = 1;
	a2 = a3 = a9 = a1;
	a2.mm_id = 2;
	a3.mm_id = 3;
	a9.mm_id = 9;		/* named by no record: dropped */
	a2.live_bound = 2;	/* e2's version */
	sp2.id = 2;
	sp2.account = 2;
	l1.id = 1;

	base.has_generation = e1.has_generation = e2.has_generation = true;
	base.generation = e1.generation = e2.generation = 7;
	base.next_id = 2;
	base.sessions = base_s;
	base.n_sessions = 2;
	base.accounts = base_a;
	base.n_accounts = 3;
	base.listeners = base_l;
	base.n_listeners = 1;
	e1.has_journal_seq = e2.has_journal_seq = true;
	e1.journal_seq = 1;
	e1.next_id = 3;
	e1.sessions = e1_s;
	e1.n_sessions = 2;
	e1.accounts = e1_a;
	e1.n_accounts = 1;
	e1.gone_sessions = &gone_s2;
	e1.n_gone_sessions = 1;
	e2.journal_seq = 2;
	e2.next_id = 4;
	e2.sessions = e2_s;
	e2.n_sessions = 1;
	e2.spent = e2_sp;
	e2.n_spent = 1;
	e2.accounts = e2_a;
	e2.n_accounts = 1;
	e2.gone_listeners = &gone_l1;
	e2.n_gone_listeners = 1;
	if (kind == JOURNAL_OTHER_STATE)
		e2.generation = 6;
	if (kind == JOURNAL_OUT_OF_ORDER)
		e2.journal_seq = 3;
	if (kind == JOURNAL_NOT_ENTRY)
		e2.has_journal_seq = false;

	f0 = frame_of(&base, boot_id, &n0);
	f1 = frame_of(&e1, boot_id, &n1);
	f2 = frame_of(&e2, kind == JOURNAL_OTHER_BOOT ? other_boot : boot_id,
	    &n2);
	if (kind == JOURNAL_TORN)
		n2 -= 3;
	if (kind == JOURNAL_DIGEST)
		f2[n2 - 1] ^= 1;
	ck_assert_ptr_nonnull(journal = malloc(n1 + n2));
	memcpy(journal, f1, n1);
	memcpy(journal + n1, f2, n2);
	jlen = n1 + n2;
	st = state_decode(f0, n0, 0, boot_id, err, sizeof(err));
	ck_assert_msg(st != NULL, "%s", err);
	ck_assert_int_eq(state_view_open(&v, st, journal, jlen, boot_id), 0);

	second = kind == JOURNAL_GOOD;
	ck_assert_msg(v.entries == (second ? 2 : 1), "%zu entries read (%s)",
	    v.entries, v.stop);
	st = &v.view;
	ck_assert(!st->has_journal_seq);
	ck_assert_uint_eq(st->generation, 7);
	ck_assert_uint_eq(st->next_id, second ? 4 : 3);
	/* Session 1's last version; 2 gone; 3 new. */
	ck_assert_uint_eq(st->n_sessions, 2);
	ck_assert_ptr_nonnull(view_session(st, 1));
	ck_assert_uint_eq(view_session(st, 1)->granted, second ? 6 : 5);
	ck_assert_ptr_null(view_session(st, 2));
	ck_assert_ptr_nonnull(view_session(st, 3));
	/* The listener gone with the second entry only. */
	ck_assert_uint_eq(st->n_listeners, second ? 0 : 1);
	ck_assert_uint_eq(st->n_spent, second ? 1 : 0);
	/* Accounts: 1 and 3 named by sessions, 2 by the spent record. */
	ck_assert_uint_eq(st->n_accounts, second ? 3 : 2);
	ck_assert_uint_eq(st->accounts[0]->mm_id, 1);
	ck_assert_uint_eq(st->accounts[st->n_accounts - 1]->mm_id, 3);
	if (second)
		ck_assert_uint_eq(st->accounts[1]->live_bound, 2);
	if (!second)
		ck_assert_msg(strstr(v.stop, kind == JOURNAL_TORN ? "torn" :
		    kind == JOURNAL_OTHER_STATE || kind == JOURNAL_OUT_OF_ORDER ||
		    kind == JOURNAL_NOT_ENTRY ? "another state, or out of order" :
		    "does not check") != NULL, "stopped at %s", v.stop);
	state_view_close(&v);
	free(f0);
	free(f1);
	free(f2);
	free(journal);
}
END_TEST

Suite *
make_upgrade_suite(void)
{
	Suite *s = suite_create("upgrade");
	TCase *tc = tcase_create("upgrade");
	TCase *failed = tcase_create("failed");
	TCase *forged = tcase_create("forged");
	TCase *restart = tcase_create("restart");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_upgrade_keeps_sessions);
	suite_add_tcase(s, tc);
	tcase_set_timeout(failed, 120);
	tcase_add_test(failed, test_failed_upgrade_keeps_serving);
	suite_add_tcase(s, failed);
	tcase_set_timeout(forged, 60);
	tcase_add_loop_test(forged, test_forged_state_refused, FORGE_NONE,
	    FORGE_COUNT);
	tcase_add_loop_test(forged, test_journal_read, JOURNAL_GOOD,
	    JOURNAL_COUNT);
	suite_add_tcase(s, forged);
	tcase_set_timeout(restart, 120);
	tcase_add_test(restart, test_restart_keeps_sessions);
	tcase_add_test(restart, test_restart_at_the_worst_moments);
	tcase_add_test(restart, test_journal_is_the_state);
	tcase_add_test(restart, test_restart_counts_unseen);
	suite_add_tcase(s, restart);
	return s;
}
