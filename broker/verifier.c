/* SPDX-License-Identifier: ISC */
/*
 * verifier.c - the process that proves a client's filter (docs/design.md §3).
 *
 * The handshake's verification ioctl proves that some filter sends that
 * call to the listener the broker holds, not that the filter is the
 * library's fragment: a program could install a filter of its own that
 * traps only that call, earn the device fd, and then make and initialise
 * uffds outside the broker. So at Hello, before the broker answers, the
 * verifier reads the peer's seccomp filters (PTRACE_SECCOMP_GET_FILTER) and
 * looks for the fragment, byte for byte as the library loads it (the same
 * code, client/jail.c, builds it here).
 *
 * Every thread of the peer is read, and each must carry the fragment. A
 * filter is never removed, and a thread made later inherits the stack of
 * the thread that made it, so from then on every thread of the process
 * has the fragment: the one that makes the verification call, and the one
 * left when a thread calls execve() (it takes the leader's pid, and keeps
 * its own filters). Reading only the leader would miss a second thread,
 * made before the leader installed the fragment without TSYNC, that
 * execs after Hello and verifies alone under a filter of its own. The
 * threads are read stopped, all of them, and a thread made meanwhile by
 * one not stopped yet is found too (stop_all()).
 *
 * At Hello the client waits in recv() for the reply. PTRACE_INTERRUPT
 * makes that recv() fail with EINTR (the library's socket has a receive
 * timeout, so it is not restarted): the library calls it again.
 *
 * The kernel reads filters only for a tracer with CAP_SYS_ADMIN and under
 * no seccomp filter at all (seccomp_get_filter()), so the verifier cannot
 * have an allow-list of its own. It is forked before the broker drops its
 * privileges and keeps CAP_SYS_ADMIN and CAP_SYS_PTRACE only (the bounding
 * set cleared), no-new-privs, not dumpable, the broker's --user if given;
 * it closes every fd but its socketpair to the broker, dies with the
 * broker (PR_SET_PDEATHSIG), and its only input is a fixed-size request
 * naming a pid. Each request is served by a worker process: a thread the
 * kernel cannot stop (uninterruptible sleep, a vfork parent) would hold it,
 * so the worker dies by SIGALRM at its deadline, and its exit detaches
 * every thread it stopped, delivering any signal one was stopped for.
 *
 * The loop does not wait for it: a session waits for its proof (its socket
 * unread) while others are served; proofs are asked one at a time, uids
 * taking turns. No answer within VERIFIER_ANSWER_MS refuses that session; a
 * verifier that is gone refuses every session that needs the proof, and
 * the broker serves on.
 */
#include <cap-ng.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker.h"
#include "client.h"
#include "log.h"
#include "sha256.h"
#include "phase.h"

#ifndef PTRACE_SECCOMP_GET_FILTER
#define PTRACE_SECCOMP_GET_FILTER	0x420c
#endif

/* Threads of one peer the verifier reads at most. */
#define VERIFIER_MAX_THREADS	64
/*
 * A sanitizer build (broker.h) runs several times slower; under valgrind
 * (a build for it, make valgrind) the verifier's workers run some twenty
 * times slower, and each one's first request is translated afresh.
 */
#if defined(BROKER_SANITIZED)
#define VERIFIER_SLOWER	5
#define VERIFIER_ANSWER_MS	2000
#elif defined(BROKER_UNDER_VALGRIND)
#define VERIFIER_SLOWER	20
#define VERIFIER_ANSWER_MS	4000
#else
#define VERIFIER_SLOWER	1
/* A session's wait for its proof (the loop does not wait). */
#define VERIFIER_ANSWER_MS	1000
#endif
/* A worker's time for one request; the session's wait is longer. */
#define VERIFIER_DEADLINE_MS	(40 * VERIFIER_SLOWER)
/* A uid whose proof ran out of time is refused without one this long. */
#define VERIFIER_BACKOFF_MS	1000
/* How long start-up may take (libseccomp, capabilities). */
#define VERIFIER_START_MS	2000

/* broker -> verifier */
enum verifier_job {
	PROVE_FILTER,		/* the fragment on every thread of pid */
	PROVE_PROBE,		/* the probe uffd beside it is bound to pid's mm */
};

struct verifier_request {
	uint32_t	seq;
	int32_t		pid;		/* a thread group */
	uint32_t	job;
	uint32_t	uid;		/* pid's, for PROVE_PROBE */
	uint64_t	page;		/* its dummy page, registered on the probe */
};

enum verifier_result {
	UNFINISHED,		/* the worker's deadline passed, on thread tid */
	PROVEN,			/* the fragment is on every thread */
	ABSENT,			/* not among the filters of thread tid */
	UNREADABLE,		/* thread tid's filters not read: error */
	TOO_MANY_THREADS,
	PROBE_ELSEWHERE,	/* the probe writes no page of pid's */
	NOT_PRIVATE,		/* the page is no private anonymous memory */
	DUMPABLE,		/* another process of its user could write it */
	NRESULTS
};

/* verifier -> broker */
struct verifier_answer {
	uint32_t	seq;
	int32_t		result;
	int32_t		error;		/* errno, with UNREADABLE */
	int32_t		tid;		/* the thread it is about */
	uint32_t	threads;	/* threads stopped */
	uint32_t	filters;	/* filters of tid searched */
	uint32_t	usec;		/* the worker's time, first listing to done */
};

/* verifier -> broker, once, when it is ready or failed to be. */
struct verifier_ready {
	int32_t		error;		/* 0, or errno of the step that failed */
	uint32_t	step;
	uint32_t	insns;		/* the fragment's length */
};

static const char *const steps[] = {
	"building the fragment", "capabilities", "no-new-privs",
	"not dumpable", "answer page",
	/* PTRACE_SECCOMP_GET_FILTER is for a tracer under no filter at all */
	("it runs under a seccomp filter (a service manager's seccomp-based "
	"sandboxing, such as systemd's ProtectKernelTunables=?)"),
};
#define NSTEPS	(sizeof(steps) / sizeof(steps[0]))

/* The library's fragment, as it loads it (compiled at build time). */
static struct sock_filter fragment[BPF_MAXINSNS];
static size_t fragment_len;

/*
 * What the verifier process speaks and looks for: its requests' and
 * answers' layout and the library's fragment. An upgrade keeps the verifier
 * forked at start (the jailed broker could not fork another with its
 * capabilities), so a new binary whose verifier would differ is refused
 * (upgrade.c): that takes a restart.
 */
void
verifier_abi(uint8_t out[SHA256_LEN])
{
	static uint8_t abi[SHA256_LEN];
	static bool known;
	const struct sock_filter *insns;
	uint32_t sizes[2] = { sizeof(struct verifier_request),
	    sizeof(struct verifier_answer) };
	struct sha256 c;
	size_t len;

	/* A property of this binary: hashed once (each state write says it). */
	if (!known) {
		client_jail_bpf(&insns, &len);
		sha256_init(&c);
		sha256_update(&c, sizes, sizeof(sizes));
		sha256_update(&c, insns, len * sizeof(*insns));
		sha256_final(&c, abi);
		known = true;
	}
	memcpy(out, abi, SHA256_LEN);
}

/* ---- the verifier process ---- */

static int
build_fragment(void)
{
	const struct sock_filter *insns;
	size_t len;

	client_jail_bpf(&insns, &len);
	if (len == 0 || len > BPF_MAXINSNS)
		return -EIO;
	memcpy(fragment, insns, len * sizeof(*insns));
	fragment_len = len;
	return 0;
}

/* Everything but reading filters goes. Returns 0 or -errno, *step set. */
static int
setup(uid_t uid, gid_t gid, uint32_t *step, struct verifier_answer **ans)
{
	int rc;

	*step = 5;
	if (prctl(PR_GET_SECCOMP) != 0)
		return -EPERM;
	*step = 0;
	if ((rc = build_fragment()) < 0)
		return rc;
	*step = 1;
	capng_clear(CAPNG_SELECT_ALL);
	capng_updatev(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED,
	    CAP_SYS_ADMIN, CAP_SYS_PTRACE, -1);
	if (uid != getuid() || gid != getgid())
		rc = capng_change_id(uid, gid,
		    CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_BOUNDING);
	else
		rc = capng_apply(CAPNG_SELECT_ALL);
	if (rc != 0)
		return -EPERM;
	*step = 2;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	/* No core file; its /proc/PID files are root's. */
	*step = 3;
	if (prctl(PR_SET_DUMPABLE, 0) < 0)
		return -errno;
	/* Where a worker leaves its answer, also when its deadline kills it. */
	*step = 4;
	*ans = mmap(NULL, sizeof(**ans), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	return *ans == MAP_FAILED ? -errno : 0;
}

/*
 * Stop tid, which this worker then traces until it exits. Returns 0, or
 * -ESRCH when the thread is gone, or another -errno.
 */
static int
stop(pid_t tid)
{
	int status;

	if (ptrace(PTRACE_SEIZE, tid, 0, 0) < 0 ||
	    ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0 ||
	    waitpid(tid, &status, __WALL) != tid)
		return -errno;
	/* Stopped: by our interrupt, a group stop, or a signal to deliver. */
	return WIFSTOPPED(status) ? 0 : -ESRCH;
}

static void
answer(struct verifier_answer *ans, enum verifier_result result, pid_t tid,
    int error)
{
	ans->result = result;
	ans->tid = tid;
	ans->error = error;
}

/*
 * Stop every thread of pid, as /proc lists them, into tids. The listing is
 * read while they are stopped, one entry after the other: the kernel adds a
 * new thread at the end of its group's list, and goes on with a listing
 * after the last thread it returned. So the listing's end, read once every
 * thread before it is stopped, shows that no running thread of the group
 * made another meanwhile. Returns how many were stopped, or -1 with the
 * answer filled. A pid that is no live thread group's (0, negative, gone)
 * has no listing.
 */
static int
stop_all(pid_t pid, pid_t *tids, struct verifier_answer *ans)
{
	struct dirent *d;
	char path[32];
	DIR *dir;
	pid_t tid;
	int n = 0, rc = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if ((dir = opendir(path)) == NULL) {
		answer(ans, UNREADABLE, pid, errno);
		return -1;
	}
	while ((d = readdir(dir)) != NULL) {
		if ((tid = (pid_t)atoi(d->d_name)) <= 0)
			continue;	/* "." and ".." */
		if (n == VERIFIER_MAX_THREADS) {
			answer(ans, TOO_MANY_THREADS, pid, 0);
			rc = -1;
			break;
		}
		/* Named in the answer if the deadline passes here. */
		ans->tid = tid;
		if ((rc = stop(tid)) == -ESRCH) {
			rc = 0;		/* it exited: nothing left to prove */
			continue;
		}
		if (rc < 0) {
			answer(ans, UNREADABLE, tid, -rc);
			break;
		}
		tids[n++] = tid;
	}
	closedir(dir);
	return rc < 0 ? -1 : n;
}

/* Is the fragment among the filters of the stopped thread tid? */
static bool
has_fragment(pid_t tid, struct verifier_answer *ans)
{
	static struct sock_filter insns[BPF_MAXINSNS];
	unsigned long i;
	long len;

	/* The index order is the kernel's (newest first): search them all. */
	for (i = 0;; i++) {
		ans->filters = i;
		len = ptrace(PTRACE_SECCOMP_GET_FILTER, tid, (void *)i, insns);
		if (len < 0) {
			if (errno == ENOENT)
				answer(ans, ABSENT, tid, 0);
			else
				answer(ans, UNREADABLE, tid, errno);
			return false;
		}
		if ((size_t)len == fragment_len && memcmp(insns, fragment,
		    fragment_len * sizeof(insns[0])) == 0) {
			ans->filters = i + 1;
			return true;
		}
	}
}

/* A worker's job: stop every thread of pid, then read each one's filters. */
static void
prove(pid_t pid, struct verifier_answer *ans)
{
	pid_t tids[VERIFIER_MAX_THREADS];
	struct timespec t0;
	int n, i;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((n = stop_all(pid, tids, ans)) < 0)
		return;
	ans->threads = n;
	for (i = 0; i < n; i++)
		if (!has_fragment(tids[i], ans))
			return;
	answer(ans, PROVEN, pid, 0);
	ans->usec = broker_elapsed_ms(&t0) * 1000;
}

/* The mapping at page in pid is private anonymous memory (/proc/PID/maps). */
static bool
private_anonymous(pid_t pid, uint64_t page)
{
	unsigned long long start, end, inode;
	char path[64], line[512], perms[8];
	bool yes = false;
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return false;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "%llx-%llx %7s %*s %*s %llu %n", &start, &end,
		    perms, &inode, &n) != 4 || page < start || page >= end)
			continue;
		/* No file, no name ([heap] and the like are not ours). */
		yes = perms[3] == 'p' && inode == 0 && line[n] == '\0';
		break;
	}
	fclose(f);
	return yes;
}

/*
 * Is the probe bound to pid's address space? A peer could send, as its
 * probe, a fresh uffd another process made (a decoy forked before its
 * filter). With every thread of pid stopped, write a random token through
 * the probe into the dummy page and read it back from pid's memory. The
 * page must be private anonymous memory (so that no other address space
 * sees what is written there) and pid not dumpable (so that no other
 * process of its user writes it meanwhile); only a probe bound to pid's
 * address space, or one pid shares (CLONE_VM), puts the token there.
 */
static void
prove_probe(const struct verifier_request *req, int probe,
    struct verifier_answer *ans)
{
	static uint64_t page[4096 / sizeof(uint64_t)]
	    __attribute__((aligned(4096)));
	long psz = sysconf(_SC_PAGESIZE);
	struct uffdio_copy copy = {
		.dst = req->page, .src = (uintptr_t)page, .len = psz,
	};
	uint64_t token = 0, seen = 0;
	struct iovec local = { .iov_base = &seen, .iov_len = sizeof(seen) };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)req->page,
	    .iov_len = sizeof(seen) };
	pid_t tids[VERIFIER_MAX_THREADS];
	char path[32];
	struct stat st;

	if (psz > (long)sizeof(page) || stop_all(req->pid, tids, ans) < 0)
		return;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)req->pid);
	if (req->uid != 0 && (stat(path, &st) < 0 || st.st_uid != 0)) {
		answer(ans, DUMPABLE, req->pid, 0);
		return;
	}
	if (!private_anonymous(req->pid, req->page)) {
		answer(ans, NOT_PRIVATE, req->pid, 0);
		return;
	}
	while (token == 0)
		if (getrandom(&token, sizeof(token), 0) != sizeof(token)) {
			answer(ans, UNREADABLE, req->pid, errno);
			return;
		}
	page[0] = token;
	if (ioctl(probe, UFFDIO_COPY, &copy) < 0) {
		answer(ans, errno == EEXIST ? NOT_PRIVATE : PROBE_ELSEWHERE,
		    req->pid, errno);
		return;
	}
	if (process_vm_readv(req->pid, &local, 1, &remote, 1, 0) !=
	    (ssize_t)sizeof(seen)) {
		answer(ans, UNREADABLE, req->pid, errno);
		return;
	}
	answer(ans, seen == token ? PROVEN : PROBE_ELSEWHERE, req->pid, 0);
}

/*
 * One request. The worker's exit detaches every thread it stopped: the
 * kernel does it for a tracer that exits, deadline or not. Its answer
 * stands only if it exited of itself.
 */
static void
serve(const struct verifier_request *req, int probe,
    struct verifier_answer *ans)
{
	struct itimerval deadline = {
		.it_value = { .tv_usec = VERIFIER_DEADLINE_MS * 1000 } };
	int status;
	pid_t pid;

	memset(ans, 0, sizeof(*ans));
	if ((pid = fork()) < 0) {
		answer(ans, UNREADABLE, req->pid, errno);
	} else if (pid == 0) {
		if (setitimer(ITIMER_REAL, &deadline, NULL) < 0)
			_exit(1);
		if (req->job == PROVE_PROBE)
			prove_probe(req, probe, ans);
		else
			prove(req->pid, ans);
		_exit(0);
	} else if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		ans->result = UNFINISHED;
	ans->seq = req->seq;
}

/*
 * A request, and the probe uffd beside a PROVE_PROBE one (*probe, else -1).
 * Anything else beside it (the broker sends nothing else) ends the request.
 */
static ssize_t
recv_request(int sock, struct verifier_request *req, int *probe)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = { .iov_base = req, .iov_len = sizeof(*req) };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = control.buf, .msg_controllen = sizeof(control.buf),
	};
	struct cmsghdr *cmsg;
	ssize_t n;

	*probe = -1;
	if ((n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC)) < 0)
		return n;
	if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		return -1;
	if ((cmsg = CMSG_FIRSTHDR(&msg)) != NULL &&
	    cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS &&
	    cmsg->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(probe, CMSG_DATA(cmsg), sizeof(int));
	return n;
}

static void __attribute__((noreturn))
verifier_main(int sock, pid_t parent, uid_t uid, gid_t gid)
{
	struct verifier_ready ready = { 0 };
	struct verifier_request req;
	struct verifier_answer *ans = NULL;
	ssize_t n;
	int probe;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(1);
	if ((sock > 0 && syscall(SYS_close_range, 0, sock - 1, 0) < 0) ||
	    syscall(SYS_close_range, sock + 1, ~0U, 0) < 0)
		_exit(1);
	(void)prctl(PR_SET_NAME, "uffd-verifier");
	/* A worker dies at its deadline; the verifier waits for each. */
	signal(SIGALRM, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	ready.error = -setup(uid, gid, &ready.step, &ans);
	ready.insns = fragment_len;
	if (send(sock, &ready, sizeof(ready), MSG_NOSIGNAL) < 0 ||
	    ready.error != 0)
		_exit(1);
	/* One request at a time; anything but a request ends it. */
	for (;;) {
		n = recv_request(sock, &req, &probe);
		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof(req) || req.job > PROVE_PROBE ||
		    (probe >= 0) != (req.job == PROVE_PROBE))
			_exit(0);
		serve(&req, probe, ans);
		if (probe >= 0)
			close(probe);
		if (send(sock, ans, sizeof(*ans), MSG_NOSIGNAL) < 0)
			_exit(0);
	}
}

/* ---- the broker's side ---- */

static void	conclude(struct session *s, int rc,
	    const struct verifier_answer *ans);

/* Take s off the queue of proofs not asked yet. */
static void
unqueue(struct verifier *v, struct session *s)
{
	TAILQ_REMOVE(&v->queue, s, proof_entry);
	s->proof_queued = false;
}

void
verifier_start(struct broker *b)
{
	struct verifier *v = &b->verifier;
	struct verifier_ready ready = { 0 };
	const char *step = "no answer";
	struct pollfd pfd;
	uid_t uid = getuid();
	gid_t gid = getgid();
	pid_t parent = getpid(), pid;
	ssize_t n = -1;
	int sv[2];

	v->sock = -1;
	v->w = (struct watch){ .kind = WATCH_VERIFIER };
	TAILQ_INIT(&v->queue);
	if (b->cfg.user != NULL && jail_user(b->cfg.user, &uid, &gid) < 0)
		fatalx("--user %s: no such user", b->cfg.user);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		fatal("verifier: socketpair");
	if ((pid = fork()) < 0)
		fatal("verifier: fork");
	if (pid == 0)
		verifier_main(sv[1], parent, uid, gid);
	close(sv[1]);
	pfd = (struct pollfd){ .fd = sv[0], .events = POLLIN };
	if (poll(&pfd, 1, VERIFIER_START_MS) == 1)
		n = recv(sv[0], &ready, sizeof(ready), MSG_TRUNC);
	if (n == (ssize_t)sizeof(ready) && ready.step < NSTEPS)
		step = steps[ready.step];
	if (n != (ssize_t)sizeof(ready) || ready.error != 0) {
		log_warnx("the verifier did not start (%s%s%s): kernel-fault "
		    "sessions that need a proven filter are refused", step,
		    ready.error != 0 ? ": " : "",
		    ready.error != 0 ? strerror(ready.error) : "");
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(sv[0]);
		return;
	}
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0 ||
	    broker_watch(b, sv[0], &v->w, EPOLLIN) < 0)
		fatal("verifier: fcntl or epoll_ctl");
	v->pid = pid;
	v->sock = sv[0];
	log_event("verifier", "pid=%d uid=%u caps=cap_sys_admin,cap_sys_ptrace "
	    "fragment_insns=%u", (int)pid, (unsigned)uid, ready.insns);
}

/*
 * The verifier is gone (it exited, or broke the protocol): the proofs it
 * had and those waiting are refused, as is every later one.
 */
static void
verifier_lost(struct broker *b, const char *why)
{
	struct verifier *v = &b->verifier;
	struct session *s;

	log_event("verifier_lost", "pid=%d reason=\"%s\" effect=\"kernel-fault "
	    "sessions that need a proven filter are refused\"", (int)v->pid,
	    why);
	broker_unwatch(b, v->sock);
	close(v->sock);
	v->sock = -1;
	v->busy = v->late = false;
	if ((s = v->asked) != NULL) {
		v->asked = NULL;
		conclude(s, -EPIPE, NULL);
	}
	while ((s = TAILQ_FIRST(&v->queue)) != NULL) {
		unqueue(v, s);
		conclude(s, -EPIPE, NULL);
	}
}

/*
 * Proofs are asked one at a time, and the loop does not wait for them: the
 * session waits (its socket is not read) while the verifier works, and the
 * answer comes back through the loop. A proof the verifier does not answer
 * within VERIFIER_ANSWER_MS is refused; its late answer is skipped by its
 * sequence number.
 */

/* Send the request for s's proof. 0, -EAGAIN (full: later) or -errno. */
static int
ask(struct broker *b, struct session *s)
{
	struct verifier *v = &b->verifier;
	struct verifier_request req = { .pid = s->pid };
	int rc;

	req.seq = v->seq + 1;
	if (s->proof == PROOF_PROBE) {
		req.job = PROVE_PROBE;
		req.uid = s->uid;
		req.page = s->dummy_page;
	} else
		req.job = PROVE_FILTER;
	if ((rc = wire_send(v->sock, &req, sizeof(req),
	    s->proof == PROOF_PROBE ? s->probe_uffd : -1)) < 0)
		return rc;
	v->seq = req.seq;
	v->asked = s;
	v->busy = true;
	clock_gettime(CLOCK_MONOTONIC, &v->asked_at);
	return 0;
}

/* Why a peer's filter is not proven, for its refusal and the log. */
static void
unproven(int rc, const struct verifier_answer *ans, char *buf, size_t len)
{
	if (rc == -ETIMEDOUT)
		snprintf(buf, len, "the broker's verifier did not answer within "
		    "%d ms", VERIFIER_ANSWER_MS);
	else if (rc < 0)
		snprintf(buf, len, "the broker has no verifier (it did not "
		    "start, or it exited)");
	else if (ans->result == ABSENT)
		snprintf(buf, len, "the library's seccomp fragment is not among "
		    "the %u filters of thread %d", ans->filters, (int)ans->tid);
	else if (ans->result == UNREADABLE)
		snprintf(buf, len, "the filters of thread %d could not be read: "
		    "%s%s", (int)ans->tid, strerror(ans->error),
		    ans->error == EINVAL || ans->error == EIO ? " (no filter, "
		    "or a kernel without CONFIG_CHECKPOINT_RESTORE)" : "");
	else if (ans->result == TOO_MANY_THREADS)
		snprintf(buf, len, "more than %d threads", VERIFIER_MAX_THREADS);
	else if (ans->result == PROBE_ELSEWHERE)
		snprintf(buf, len, "the probe uffd is not bound to the peer's "
		    "address space (another process made it)");
	else if (ans->result == NOT_PRIVATE)
		snprintf(buf, len, "the dummy page is not untouched private "
		    "anonymous memory");
	else if (ans->result == DUMPABLE)
		snprintf(buf, len, "the peer is dumpable");
	else
		snprintf(buf, len, "thread %d did not stop within %d ms",
		    (int)ans->tid, VERIFIER_DEADLINE_MS);
}

/*
 * A proof that ran out of time (a thread the kernel cannot stop) costs the
 * verifier its deadline, and every other proof waits behind it: a uid whose
 * proof did so is refused without asking for VERIFIER_BACKOFF_MS, so that
 * one admitted user repeating it in a loop spends a deadline a second.
 */
static struct backoff *
backoff_of(struct verifier *v, uid_t uid)
{
	struct backoff *oldest = &v->backoff[0];
	size_t i;

	for (i = 0; i < VERIFIER_BACKOFF_UIDS; i++) {
		if (v->backoff[i].uid == uid)
			return &v->backoff[i];
		if (v->backoff[i].until < oldest->until)
			oldest = &v->backoff[i];
	}
	return oldest;
}

/*
 * Is s's uid backed off? Checked when the proof is asked for and again when
 * its turn comes: proofs queued before the first one ran out of time must
 * not each cost the verifier its deadline.
 */
static bool
backed_off(struct verifier *v, const struct session *s, char *why, size_t len)
{
	struct backoff *bo = backoff_of(v, s->uid);

	if (bo->uid != s->uid || broker_now_ms() >= bo->until)
		return false;
	snprintf(why, len, "a proof for uid %u ran out of time less than %d ms "
	    "ago", (unsigned)s->uid, VERIFIER_BACKOFF_MS);
	return true;
}

/* The proof's outcome goes to the handshake (rc: 0 with ans, or -errno). */
static void
conclude(struct session *s, int rc, const struct verifier_answer *ans)
{
	struct verifier *v = &s->b->verifier;
	struct backoff *bo;
	char why[256];

	if (rc == 0 && ans->result == PROVEN) {
		if (s->proof == PROOF_FILTER)
			audit_session(s, "filter_proven", "session=%llu pid=%d "
			    "uid=%u threads=%u read_us=%u round_trip_us=%.0f",
			    (unsigned long long)s->id, (int)s->pid,
			    (unsigned)s->uid, ans->threads, ans->usec,
			    broker_elapsed_ms(&v->asked_at) * 1000);
		handshake_proven(s, NULL);
		return;
	}
	unproven(rc, ans, why, sizeof(why));
	if (rc == -ETIMEDOUT || (rc == 0 && ans->result == UNFINISHED)) {
		bo = backoff_of(v, s->uid);
		bo->uid = s->uid;
		bo->until = broker_now_ms() + VERIFIER_BACKOFF_MS;
	}
	handshake_proven(s, why);
}

/* When uid's last proof was asked (0: not lately), and its slot. */
static struct turn *
turn_of(struct verifier *v, uid_t uid)
{
	struct turn *oldest = &v->turns[0];
	size_t i;

	for (i = 0; i < VERIFIER_BACKOFF_UIDS; i++) {
		if (v->turns[i].at != 0 && v->turns[i].uid == uid)
			return &v->turns[i];
		if (v->turns[i].at < oldest->at)
			oldest = &v->turns[i];
	}
	return oldest;
}

static uint64_t
turn_at(struct verifier *v, uid_t uid)
{
	struct turn *t = turn_of(v, uid);

	return t->at != 0 && t->uid == uid ? t->at : 0;
}

/*
 * The next proof: of the uid whose last proof was asked longest ago (or
 * never), the first it queued. A uid with many proofs waiting gets one
 * turn in each round, not the queue.
 */
static struct session *
next_turn(struct verifier *v)
{
	struct session *s, *pick = NULL;
	uint64_t at, best = UINT64_MAX;

	TAILQ_FOREACH(s, &v->queue, proof_entry)
		if ((at = turn_at(v, s->uid)) < best) {
			best = at;
			pick = s;
			if (at == 0)
				break;
		}
	return pick;
}

/* Ask for the next proof waiting, uids in turn. */
static void
ask_next(struct broker *b)
{
	struct verifier *v = &b->verifier;
	struct session *pick;
	struct turn *t;
	char why[128];
	int rc;

	/*
	 * An upgrade that passed its check waits for the verifier to be idle:
	 * the proofs queued meanwhile go with the state (upgrade.c), so that a
	 * stream of Hellos cannot hold the upgrade off.
	 */
	if (b->upgrade.phase == UPGRADE_READY)
		return;
	while (!v->busy && v->sock >= 0 && !TAILQ_EMPTY(&v->queue)) {
		pick = next_turn(v);
		if (backed_off(v, pick, why, sizeof(why))) {
			unqueue(v, pick);
			handshake_proven(pick, why);
			continue;
		}
		if ((rc = ask(b, pick)) == -EAGAIN)
			return;		/* the answer to a late one makes room */
		unqueue(v, pick);
		t = turn_of(v, pick->uid);
		t->uid = pick->uid;
		t->at = ++v->nturns;
		if (rc < 0) {
			verifier_lost(b, strerror(-rc));
			conclude(pick, -EPIPE, NULL);
		}
	}
}

void
verifier_kick(struct broker *b)
{
	ask_next(b);
}

bool
verifier_needed(const struct session *s)
{
	return s->grant.kernel_faults && s->grant.prove_filter;
}

void
verifier_ask(struct session *s, enum proof_job job)
{
	struct verifier *v = &s->b->verifier;
	char why[128];

	registry_session_changed(s);
	s->proof = job;
	if (backed_off(v, s, why, sizeof(why))) {
		handshake_proven(s, why);
		return;
	}
	if (v->sock < 0) {
		conclude(s, -EPIPE, NULL);
		return;
	}
	TAILQ_INSERT_TAIL(&v->queue, s, proof_entry);
	s->proof_queued = true;
	clock_gettime(CLOCK_MONOTONIC, &s->proof_since);
	session_watch_sync(s);
	ask_next(s->b);
}

void
verifier_forget(struct session *s)
{
	struct verifier *v = &s->b->verifier;

	if (s->proof_queued)
		unqueue(v, s);
	if (v->asked == s)
		v->asked = NULL;	/* its answer, when it comes, is skipped */
	s->proof = PROOF_NONE;
}

/* The verifier's answers (and its hang-up). */
void
verifier_readable(struct broker *b, bool hangup)
{
	struct verifier *v = &b->verifier;
	struct verifier_answer ans;
	struct session *s;
	ssize_t n;

	while (v->sock >= 0) {
		n = recv(v->sock, &ans, sizeof(ans), MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			if (hangup)
				verifier_lost(b, "exited");
			break;
		}
		if (n != (ssize_t)sizeof(ans) || ans.result < 0 ||
		    ans.result >= NRESULTS) {
			verifier_lost(b, n == 0 || (n < 0 &&
			    errno == ECONNRESET) ? "exited" :
			    "answered out of protocol");
			break;
		}
		/* One request is out at a time; an older answer cannot come. */
		if (!v->busy || ans.seq != v->seq)
			continue;
		v->busy = v->late = false;
		if ((s = v->asked) != NULL) {
			v->asked = NULL;
			conclude(s, 0, &ans);
		}
	}
	ask_next(b);
}

int
verifier_timeout_ms(const struct broker *b)
{
	const struct verifier *v = &b->verifier;
	const struct session *oldest = TAILQ_FIRST(&v->queue);
	double left;

	if (!v->busy)
		return -1;
	if (!v->late)
		left = VERIFIER_ANSWER_MS - broker_elapsed_ms(&v->asked_at);
	else if (oldest != NULL)
		left = VERIFIER_ANSWER_MS - broker_elapsed_ms(&oldest->proof_since);
	else
		return -1;
	return left <= 0 ? 0 : (int)left + 1;
}

/*
 * A proof the verifier did not answer in time is refused, and its uid
 * backed off. Nothing more is sent until the late answer comes: the
 * verifier serves one request at a time, so the next would wait behind it
 * and run out of time through no fault of its uid. Meanwhile proofs that
 * have waited as long are refused, their uids not backed off.
 */
void
verifier_check(struct broker *b)
{
	struct verifier *v = &b->verifier;
	struct session *s, *next;
	char why[128];

	if (!v->busy)
		return;
	if (!v->late && broker_elapsed_ms(&v->asked_at) >= VERIFIER_ANSWER_MS) {
		v->late = true;
		if ((s = v->asked) != NULL) {
			v->asked = NULL;
			conclude(s, -ETIMEDOUT, NULL);
		}
	}
	if (!v->late)
		return;
	snprintf(why, sizeof(why), "the broker's verifier did not answer "
	    "within %d ms (busy with an earlier proof)", VERIFIER_ANSWER_MS);
	for (s = TAILQ_FIRST(&v->queue); s != NULL; s = next) {
		next = TAILQ_NEXT(s, proof_entry);
		if (broker_elapsed_ms(&s->proof_since) < VERIFIER_ANSWER_MS)
			continue;
		unqueue(v, s);
		handshake_proven(s, why);
	}
}
