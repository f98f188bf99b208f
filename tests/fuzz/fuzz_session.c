/* SPDX-License-Identifier: ISC */
/*
 * fuzz_session.c - libFuzzer target: the broker's sessions through every
 * state, with real fds. A struct broker with a fixed policy (no jail, no
 * verifier), a real listening socket, the real closer process and loop turns
 * (broker_turn()); the fuzzer is the peer. Each input is a list of steps:
 * connect, send a datagram (through the socket, or straight to
 * session_handle_datagram() with any wire_recv() flags), make a creation
 * under a real seccomp listener, tick, reload, hang up.
 *
 * Nothing is mocked. The peer's fds are real: pipes, fresh uffds, uffds
 * already initialised, sockets, memfds, seccomp listeners, the device. The
 * creations are real too: a helper thread of this process installs a filter
 * of its own that sends userfaultfd(2) and the device ioctl to a listener,
 * and calls them; the broker reads each notification as it reads a client's
 * (the thread's group is this process, the sessions' peer). A process the
 * helper forks (the kid) is under the same filter, as a client's forked
 * child is: it connects, makes creations on the family's listener, exits or
 * execs when told. What cannot be reached so: the verification ioctl (the
 * broker wants a single-threaded peer), the filter's proof (no verifier runs
 * here), and two sessions of one address space (CLONE_VM).
 *
 * The properties, checked after every step (abort on failure):
 *  - every datagram the broker reads gets exactly one reply, and every
 *    reply decodes (docs/design.md §5); connecting gets one (welcome or
 *    refusal); nothing else makes one (an empty datagram is a hang-up:
 *    see step_send());
 *  - a peer's first reply is its welcome or its refusal; a refused peer
 *    gets nothing more than refusals, and status pages if an administrator;
 *  - every creation the broker reads is answered: a client would hang;
 *  - the quota: a ready session's address space never holds more live
 *    uffds plus creations let through than its grant's max_uffds;
 *  - the session tables hold together: listeners' references are their
 *    members, an address space's pending creations its sessions', the
 *    kernel's SO_PASSRIGHTS the state's (fds due exactly in Hello, Probe
 *    and while a creation awaits its Attach);
 *  - no fd leaks: after each input every session, listener and spent
 *    record is gone; every FD_CHECK_EVERY inputs the count of
 *    /proc/self/fd must not have grown past the first input's;
 *  - and the broker's own checks: a state that moves backwards is fatal
 *    (exit, which libFuzzer reports), ASan and UBSan.
 *
 * Set FUZZ_SESSION_LOG=1 to see the broker's log lines (stderr).
 * Run as root (the device, kernel-fault creations); Linux 6.5+
 * (SO_PEERPIDFD), with SO_PASSRIGHTS (6.16) where there is one.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/kcmp.h>
#include <linux/seccomp.h>
#include <linux/userfaultfd.h>
#include <nss.h>
#include <poll.h>
#include <pthread.h>
#include <sanitizer/common_interface_defs.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "phase.h"

#if defined(__x86_64__)
#define FUZZ_AUDIT_ARCH	AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define FUZZ_AUDIT_ARCH	AUDIT_ARCH_AARCH64
#else
#error "fuzz_session: unsupported architecture"
#endif

/*
 * The dummy pages: a fixed address, so that seeds can name it, in what
 * AddressSanitizer leaves to the program on x86-64 and arm64. A Hello that
 * names another page is pointed here (steer_hello()): registering a page of
 * the fuzzer's own heap on a uffd could stop the fuzzer at its next touch.
 */
#define ARENA		0x10000000UL
#define ARENA_PAGES	4

#define MAX_PEERS	10	/* connections per input */
#define MAX_KIDS	2	/* processes forked per input */
#define MAX_STEPS	64
#define MAX_MISSES	3	/* reads that find nothing: 1 ms each */
#define FD_CHECK_EVERY	1	/* inputs: each, so that the input leaking is the one saved */
#define WAIT_MS		5000
#define NSPARE		2	/* listeners whose process is gone */

int	LLVMFuzzerInitialize(int *argc, char ***argv);
int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(real_stderr, "fuzz_session: %s:%d: property "	\
		    "failed: %s\n", __FILE__, __LINE__, #cond);		\
		abort();						\
	}								\
} while (0)

/* Policies an input chooses from; each matches root (the fuzzer). */
static const char *const policies[] = {
	/* user-mode grants, forked sessions */
	"[rule user]\nuid = 0\nmode = user\n"
	"features = MISSING_SHMEM EVENT_REMOVE THREAD_ID\nmax_uffds = 2\n"
	"max_sessions_per_uid = 4\nforked_sessions = yes\n",
	/* kernel faults without the proof (there is no verifier here) */
	"[rule kernel]\nmode = kernel\nprove_filter = off\n"
	"features = MISSING_SHMEM EVENT_REMOVE EVENT_FORK\nmax_uffds = 3\n"
	"forked_sessions = yes\n",
	/* kernel faults with the proof: refused at Hello */
	"[rule proven]\nuid = 0\nmode = kernel\nmax_uffds = 1\n",
	/* refused, but an administrator: the connection stays */
	"[broker]\nadmin_group = 0\n\n[rule no]\nuid = 0\naction = deny\n",
	/* no rule matches */
	"[rule other]\nuid = 12345\n",
	/* one session per uid, no forks */
	"[rule one]\nmode = user\nmax_sessions_per_uid = 1\nmax_uffds = 1\n"
	"forked_sessions = no\n",
	/* by cgroup and executable: the broker reads them */
	"[rule exe]\nexe = /nonexistent\n\n[rule cg]\ncgroup = /**\n"
	"mode = user\nforked_sessions = yes\nmax_uffds = 4\n",
	/* kernel faults for a group */
	"[rule group]\ngid = 0\nmode = kernel\nprove_filter = off\n"
	"features = none\nmax_uffds = 1\nmax_sessions_per_uid = 2\n",
};
#define NPOLICIES	(sizeof(policies) / sizeof(policies[0]))

/* The steps of an input. */
enum step {
	STEP_CONNECT, STEP_SEND, STEP_DIRECT, STEP_CREATE, STEP_TICK,
	STEP_RELOAD, STEP_HANGUP, STEP_MISS, STEP_TURN, STEP_KID, NSTEPS
};

/* The kinds of fd a datagram carries. */
enum fd_kind {
	FD_NONE, FD_PIPE, FD_UFFD, FD_UFFD_USED, FD_LISTENER, FD_SPARE,
	FD_SUPERVISED, FD_SOCKET, FD_OWN_SOCKET, FD_DEVICE, FD_MEMFD,
	FD_EVENTFD, FD_EPOLL, NKINDS
};

struct client {
	int		sock;	/* ours; -1 once hung up */
	uint64_t	id;	/* the broker's session; 0 if none was made */
	bool		kid;	/* the kid's connection (its pid the peer's) */
	int		replies;	/* read so far */
	bool		refused;	/* its first reply said DENIED */
};

/* What the helper thread, or the kid, is told to do. */
enum cmd_op {
	CMD_CREATE, CMD_FORK, CMD_CONNECT, CMD_EXIT, CMD_EXEC, CMD_RESET
};

struct creation_cmd {
	int		op;
	int		device;	/* the device ioctl, else userfaultfd(2) */
	int		flags;
	int		sock;	/* CMD_FORK: the kid's end of its socketpair */
};

static struct broker b;
static FILE	*real_stderr;
static long	page_size;
static char	policy_paths[NPOLICIES][64];
static int	helper_lis = -1;	/* the helper thread's listener */
static int	cmd_pipe[2], res_pipe[2];
static int	devfd = -1;
static int	spare[NSPARE];
static bool	have_passrights;
static struct sockaddr_un broker_addr;
static socklen_t broker_addrlen;
static struct sigaction fuzzer_alarm;	/* libFuzzer's, chained */
static bool	alarm_chained;
static int	fd_baseline = -1;
static unsigned long inputs;

/* Per input. */
static struct client peers[MAX_PEERS];
static size_t	npeers;
static int	supervised = -1;	/* the last uffd created under the filter */
static int	misses;
/*
 * The kid: a process the helper forked, under its filter. It lives on from
 * input to input (a fork costs more than most inputs) unless it exited or
 * exec'd.
 */
static pid_t	kid_pid = -1;
static int	kid_sock = -1, kid_pidfd = -1;
static bool	kid_execd;
static int	kids;

struct input {
	const uint8_t	*p;
	size_t		n;
};

static uint8_t
take(struct input *in)
{
	if (in->n == 0)
		return 0;
	in->n--;
	return *in->p++;
}

static size_t
take_bytes(struct input *in, size_t want, const uint8_t **out)
{
	*out = in->p;
	if (want > in->n)
		want = in->n;
	in->p += want;
	in->n -= want;
	return want;
}

/* ---- the helper thread: a client's creations, under a real filter ---- */

static int
install_listener(bool trap)
{
	struct sock_filter trapping[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		    offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, FUZZ_AUDIT_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		    offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_userfaultfd, 3, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 0, 3),
		/* The command's low 32 bits, as the kernel reads it. */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		    offsetof(struct seccomp_data, args[1])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, USERFAULTFD_IOC_NEW, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_filter allowing[] = {
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {
		.len = trap ? sizeof(trapping) / sizeof(trapping[0]) : 1,
		.filter = trap ? trapping : allowing,
	};
	sigset_t alrm;

	/*
	 * The broker bounds its notification reads with SIGALRM: it must
	 * reach the loop's thread, never one waiting for its creation.
	 */
	sigemptyset(&alrm);
	sigaddset(&alrm, SIGALRM);
	pthread_sigmask(SIG_BLOCK, &alrm, NULL);
	/* This thread only (no TSYNC): the broker's own calls stay free. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -1;
	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
	    SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
}

static int
create(const struct creation_cmd *cmd, int dev)
{
	int rc;

	if (cmd->device)
		rc = ioctl(dev, USERFAULTFD_IOC_NEW, cmd->flags);
	else
		rc = syscall(SYS_userfaultfd, cmd->flags);
	return rc < 0 ? -errno : rc;
}

/*
 * The kid's life: a client's forked child, under the family's filter. It
 * keeps only its socket to us and the device; each answer is a number and
 * maybe an fd. System calls only: no allocation in a forked copy of a
 * threaded process.
 */
static void __attribute__((noreturn))
kid_main(int sock)
{
	struct creation_cmd cmd;
	int fd, rc, dev = -1;

	/* Out of the way first, then at 3 and 4. */
	if ((fd = fcntl(sock, F_DUPFD_CLOEXEC, 200)) < 0 ||
	    dup3(fd, 3, O_CLOEXEC) < 0)
		_exit(1);
	if (devfd >= 0 && ((fd = fcntl(devfd, F_DUPFD_CLOEXEC, 200)) < 0 ||
	    dup3(fd, 4, O_CLOEXEC) < 0))
		_exit(1);
	dev = devfd >= 0 ? 4 : -1;
	if (syscall(SYS_close_range, 5, ~0U, 0) < 0)
		_exit(1);
	sock = 3;
	while (recv(sock, &cmd, sizeof(cmd), 0) == sizeof(cmd)) {
		fd = -1;
		switch (cmd.op) {
		case CMD_CONNECT:
			fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
			rc = fd >= 0 && connect(fd, (struct sockaddr *)&broker_addr,
			    broker_addrlen) == 0 ? 0 : -errno;
			break;
		case CMD_CREATE:
			rc = create(&cmd, dev);
			fd = rc;
			break;
		case CMD_EXEC:
			/* A new address space, the same process (sock closes). */
			execl("/bin/sleep", "sleep", "3600", (char *)NULL);
			_exit(1);
		case CMD_RESET:
			/* The next input's probes find its dummy pages empty. */
			rc = madvise((void *)ARENA, ARENA_PAGES * page_size,
			    MADV_DONTNEED) == 0 ? 0 : -errno;
			break;
		default:
			_exit(0);
		}
		if (wire_send(sock, &rc, sizeof(rc), fd) < 0)
			_exit(1);
		if (fd >= 0)
			close(fd);
	}
	_exit(0);
}

static void *
helper_main(void *arg)
{
	struct creation_cmd cmd;
	int rc;

	(void)arg;
	helper_lis = install_listener(true);
	rc = helper_lis;
	if (write(res_pipe[1], &rc, sizeof(rc)) != sizeof(rc) || rc < 0)
		return NULL;
	while (read(cmd_pipe[0], &cmd, sizeof(cmd)) == sizeof(cmd)) {
		if (cmd.op == CMD_FORK) {
			/* The child is a copy of this thread: its filter too. */
			if ((rc = fork()) == 0)
				kid_main(cmd.sock);
			if (rc < 0)
				rc = -errno;
		} else
			rc = create(&cmd, devfd);
		if (write(res_pipe[1], &rc, sizeof(rc)) != sizeof(rc))
			break;
	}
	return NULL;
}

/* A listener whose filter's thread is gone: of the right kind, hung up. */
static void *
spare_main(void *arg)
{
	*(int *)arg = install_listener(false);
	return NULL;
}

/* ---- plumbing ---- */

static bool
wait_readable(int fd, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	struct timespec t0, now;
	int left = ms, rc;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		rc = poll(&pfd, 1, left);
		if (rc > 0)
			return true;
		if (rc == 0 || errno != EINTR)
			return false;
		clock_gettime(CLOCK_MONOTONIC, &now);
		left = ms - (int)((now.tv_sec - t0.tv_sec) * 1000 +
		    (now.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0)
			return false;
	}
}

static bool
same_file(int a, int c)
{
	pid_t self = getpid();

	return syscall(SYS_kcmp, self, self, KCMP_FILE, a, c) == 0;
}

/* libFuzzer's SIGALRM, for its -timeout, still runs. */
static void
on_alarm(int sig, siginfo_t *si, void *ctx)
{
	if (fuzzer_alarm.sa_flags & SA_SIGINFO) {
		if (fuzzer_alarm.sa_sigaction != NULL)
			fuzzer_alarm.sa_sigaction(sig, si, ctx);
	} else if (fuzzer_alarm.sa_handler != SIG_DFL &&
	    fuzzer_alarm.sa_handler != SIG_IGN)
		fuzzer_alarm.sa_handler(sig);
}

/*
 * One turn of the broker's loop. The broker's notification reads set and
 * clear ITIMER_REAL, which libFuzzer's -timeout uses too: put it back.
 */
static void
turn(void)
{
	struct itimerval saved;

	getitimer(ITIMER_REAL, &saved);
	broker_turn(&b, 0);
	setitimer(ITIMER_REAL, &saved, NULL);
}

static struct session *
find(uint64_t id)
{
	struct session *s;

	TAILQ_FOREACH(s, &b.reg.sessions, entry)
		if (id != 0 && s->id == id)
			return s;
	return NULL;
}

/* The broker's listener on the file of fd, if it holds one. */
static struct listener *
broker_listener(int fd)
{
	struct listener *l;

	TAILQ_FOREACH(l, &b.reg.listeners, entry)
		if (l->fd >= 0 && same_file(fd, l->fd))
			return l;
	return NULL;
}

/* Open fds; with show, each and what it is. */
static int
count_fds(bool show)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	char path[300], link[256];
	ssize_t n;
	int count = 0;

	CHECK(d != NULL);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		count++;
		if (!show)
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		link[n < 0 ? 0 : n] = '\0';
		fprintf(real_stderr, "fuzz_session: fd %s: %s\n", e->d_name,
		    link);
	}
	closedir(d);
	return count;
}

static int
new_uffd(bool initialised)
{
	struct uffdio_api api = { .api = UFFD_API };
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK |
	    UFFD_USER_MODE_ONLY);

	if (fd >= 0 && initialised)
		(void)ioctl(fd, UFFDIO_API, &api);
	return fd;
}

/* One fd of a kind, for peer pr; -1 for none. */
static int
make_fd(enum fd_kind kind, const struct client *pr)
{
	int p[2], fd = -1;

	switch (kind) {
	case FD_NONE:
	case NKINDS:
		break;
	case FD_PIPE:
		if (pipe2(p, O_CLOEXEC) == 0) {
			close(p[1]);
			fd = p[0];
		}
		break;
	case FD_UFFD:
		fd = new_uffd(false);
		break;
	case FD_UFFD_USED:
		fd = new_uffd(true);
		break;
	case FD_LISTENER:
		fd = fcntl(helper_lis, F_DUPFD_CLOEXEC, 0);
		break;
	case FD_SPARE:
		fd = fcntl(spare[inputs % NSPARE], F_DUPFD_CLOEXEC, 0);
		break;
	case FD_SUPERVISED:
		fd = supervised >= 0 ? fcntl(supervised, F_DUPFD_CLOEXEC, 0) :
		    new_uffd(false);
		break;
	case FD_SOCKET:
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
		    p) == 0) {
			close(p[1]);
			fd = p[0];
		}
		break;
	case FD_OWN_SOCKET:
		if (pr->sock >= 0)
			fd = fcntl(pr->sock, F_DUPFD_CLOEXEC, 0);
		break;
	case FD_DEVICE:
		fd = devfd >= 0 ? fcntl(devfd, F_DUPFD_CLOEXEC, 0) :
		    new_uffd(false);
		break;
	case FD_MEMFD:
		fd = memfd_create("fuzz", MFD_CLOEXEC);
		break;
	case FD_EVENTFD:
		fd = eventfd(0, EFD_CLOEXEC);
		break;
	case FD_EPOLL:
		fd = epoll_create1(EPOLL_CLOEXEC);
		break;
	}
	return fd;
}

/*
 * A Hello naming a page of user memory outside the arena names one of the
 * arena's instead (see ARENA). Its other fields, and every other datagram,
 * go as they are.
 */
static size_t
steer_hello(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	WireRequest *req = uffd_broker__v1__request__unpack(NULL, len, in);
	WireStatus st;
	char why[128];
	uint64_t *page = NULL;
	uint32_t version = 0, psz = 0;
	size_t n = len;

	memcpy(out, in, len);
	if (req == NULL)
		return len;
	if (req->body_case == UFFD_BROKER__V1__REQUEST__BODY_HELLO) {
		page = &req->hello->dummy_page;
		version = req->hello->version;
		psz = req->hello->page_size;
	} else if (req->body_case == UFFD_BROKER__V1__REQUEST__BODY_FORK_HELLO) {
		page = &req->fork_hello->dummy_page;
		version = req->fork_hello->version;
		psz = req->fork_hello->page_size;
	}
	if (page != NULL && handshake_hello_check(version, *page, psz, &st,
	    why, sizeof(why)) && (*page < ARENA ||
	    *page >= ARENA + ARENA_PAGES * page_size)) {
		*page = ARENA + (*page / page_size % ARENA_PAGES) * page_size;
		if (uffd_broker__v1__request__get_packed_size(req) <= cap)
			n = uffd_broker__v1__request__pack(req, out);
		else
			n = 0;	/* cannot happen: the fields are fixed */
	}
	uffd_broker__v1__request__free_unpacked(req, NULL);
	return n;
}

/* Send a datagram with fds, as a client does. True if it went. */
static bool
send_datagram(int sock, const void *buf, size_t len, const int *fds,
    size_t nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 3)];
		struct cmsghdr align;
	} control;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cmsg;

	if (nfds > 0) {
		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);
	}
	return sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0;
}

/* Read the replies waiting for a peer: each must decode. How many. */
/* A session's refusal: by the rules (DENIED) or by a limit (QUOTA). */
static bool
refusal_status(WireStatus st)
{
	return st == UFFD_BROKER__V1__STATUS__DENIED ||
	    st == UFFD_BROKER__V1__STATUS__QUOTA;
}

static int
drain(struct client *pr)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} control;
	uint8_t buf[2 * WIRE_MAX_DATAGRAM];
	WireReply *reply;
	int count = 0;
	ssize_t n;

	if (pr->sock < 0)
		return 0;
	for (;;) {
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
		struct msghdr msg = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = control.buf,
			.msg_controllen = sizeof(control.buf),
		};

		n = recvmsg(pr->sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n <= 0)
			break;
		/* The broker sends no fds, and nothing longer than its limit. */
		CHECK(msg.msg_controllen == 0);
		CHECK(n <= WIRE_MAX_DATAGRAM && !(msg.msg_flags & MSG_TRUNC));
		reply = uffd_broker__v1__reply__unpack(NULL, n, buf);
		CHECK(reply != NULL);
		CHECK(reply->reason != NULL);
		/*
		 * The broker speaks first: a welcome, or its refusal (DENIED by
		 * the rules, QUOTA by a limit). A refused peer gets nothing
		 * else but its refusal again, and status pages if it is an
		 * administrator (design §5).
		 */
		if (pr->replies++ == 0) {
			pr->refused = reply->status !=
			    UFFD_BROKER__V1__STATUS__OK;
			CHECK(pr->refused ? refusal_status(reply->status) :
			    reply->body_case ==
			    UFFD_BROKER__V1__REPLY__BODY_WELCOME);
		} else if (pr->refused)
			CHECK(refusal_status(reply->status) ||
			    (reply->status == UFFD_BROKER__V1__STATUS__OK &&
			    reply->body_case ==
			    UFFD_BROKER__V1__REPLY__BODY_ADMIN_STATUS_REPLY));
		else
			CHECK(reply->body_case !=
			    UFFD_BROKER__V1__REPLY__BODY_WELCOME);
		uffd_broker__v1__reply__free_unpacked(reply, NULL);
		count++;
	}
	return count;
}

/* Every peer got exactly the replies it was due. */
static void
replies(const struct client *due)
{
	size_t i;
	int got;

	for (i = 0; i < npeers; i++) {
		got = drain(&peers[i]);
		if (got != (&peers[i] == due)) {
			fprintf(real_stderr, "fuzz_session: peer %zu (session "
			    "%llu) got %d replies, due %d\n", i,
			    (unsigned long long)peers[i].id, got,
			    &peers[i] == due);
			abort();
		}
	}
}

/* What the protocol says about fds (docs/design.md §5). */
static bool
fds_due(const struct session *s)
{
	return s->refusal == NULL && (s->state == SESSION_HELLO ||
	    s->state == SESSION_PROBE_ATTACH ||
	    (s->state == SESSION_READY && s->pending > 0));
}

/* The broker's tables hold together. */
static void
invariants(void)
{
	const struct session *s, *m;
	const struct listener *l;
	unsigned int n = 0, refs, pending;
	size_t nlis = 0;
	socklen_t len;
	int on;

	TAILQ_FOREACH(s, &b.reg.sessions, entry) {
		n++;
		CHECK(s->state != SESSION_DEAD);
		CHECK(s->sock >= 0 && s->pidfd >= 0 && s->acct != NULL);
		CHECK(s->state != SESSION_READY || s->probe_uffd >= 0);
		CHECK(s->state == SESSION_READY || s->pending == 0);
		/*
		 * The quota: the address space's live uffds and the creations
		 * let through for them never pass it.
		 */
		if (s->state == SESSION_READY) {
			int live = proc_epoll_count(s->acct->tracker);

			CHECK(live >= 0);
			CHECK((unsigned int)live + s->acct->pending <=
			    s->grant.max_uffds);
		}
		CHECK(s->refusal == NULL || s->state == SESSION_HELLO);
		if (s->lis != NULL) {
			refs = 0;
			TAILQ_FOREACH(m, &s->lis->members, lis_entry)
				refs += m == s;
			CHECK(refs == 1);
			CHECK(s->lis->fd >= 0);
		}
		/* An address space's pending creations are its sessions'. */
		pending = 0;
		TAILQ_FOREACH(m, &b.reg.sessions, entry)
			if (m->acct == s->acct)
				pending += m->pending;
		CHECK(s->acct->pending == pending);
		if (!b.passrights)
			continue;
		CHECK(s->fds_on == fds_due(s));
		len = sizeof(on);
		CHECK(getsockopt(s->sock, SOL_SOCKET, SO_PASSRIGHTS, &on,
		    &len) == 0);
		CHECK((on != 0) == s->fds_on);
	}
	CHECK(n == b.reg.nsessions);
	TAILQ_FOREACH(l, &b.reg.listeners, entry) {
		nlis++;
		refs = 0;
		TAILQ_FOREACH(m, &l->members, lis_entry) {
			CHECK(m->lis == l);
			refs++;
		}
		CHECK(l->refs == refs);
		CHECK(l->fd >= 0);
		CHECK(refs > 0 || !l->hung_up);
	}
	CHECK(nlis == b.reg.nby_file);
	CHECK(TAILQ_EMPTY(&b.reg.graveyard) &&
	    TAILQ_EMPTY(&b.reg.dead_listeners));
}

/* ---- the steps ---- */

/* The kid's answer to a command: a number, and maybe an fd. */
static int
kid_answer(int *fd)
{
	uint8_t buf[sizeof(int)];
	int rc, flags;

	*fd = -1;
	CHECK(wait_readable(kid_sock, WAIT_MS));
	CHECK(wire_recv(kid_sock, buf, sizeof(buf), fd, &flags) ==
	    sizeof(buf) && flags == 0);
	memcpy(&rc, buf, sizeof(rc));
	return rc;
}

static void
kid_send(int op, const struct creation_cmd *c)
{
	struct creation_cmd cmd = { .op = op };

	if (c != NULL)
		cmd = *c;
	cmd.op = op;
	CHECK(send(kid_sock, &cmd, sizeof(cmd), MSG_NOSIGNAL) == sizeof(cmd));
}

/* A kid, if there is none: forked by the helper, so under its filter. */
static bool
kid_spawn(void)
{
	struct creation_cmd cmd = { .op = CMD_FORK };
	int sv[2], rc;

	if (kid_pid > 0 && !kid_execd)
		return true;
	if (kid_pid > 0 || kids == MAX_KIDS)
		return false;
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
	cmd.sock = sv[1];
	CHECK(write(cmd_pipe[1], &cmd, sizeof(cmd)) == sizeof(cmd));
	CHECK(wait_readable(res_pipe[0], WAIT_MS));
	CHECK(read(res_pipe[0], &rc, sizeof(rc)) == sizeof(rc) && rc > 0);
	close(sv[1]);
	kid_pid = rc;
	kid_sock = sv[0];
	CHECK((kid_pidfd = syscall(SYS_pidfd_open, kid_pid, 0)) >= 0);
	kids++;
	return true;
}

/* The kid gone: killed if it is not dead yet, and waited for. */
static void
kid_reap(void)
{
	if (kid_pid <= 0)
		return;
	(void)syscall(SYS_pidfd_send_signal, kid_pidfd, SIGKILL, NULL, 0);
	CHECK(wait_readable(kid_pidfd, WAIT_MS));
	close(kid_pidfd);
	close(kid_sock);
	kid_pidfd = kid_sock = -1;
	kid_pid = -1;
	kid_execd = false;
}

/* A connection, by this process or by the kid. */
static void
step_connect(bool kid)
{
	struct client *pr;
	uint64_t before = b.reg.next_id;
	int fd;

	if (npeers == MAX_PEERS)
		return;
	if (kid) {
		if (!kid_spawn())
			return;
		kid_send(CMD_CONNECT, NULL);
		CHECK(kid_answer(&fd) == 0 && fd >= 0);
	} else {
		fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		CHECK(fd >= 0);
		CHECK(connect(fd, (struct sockaddr *)&broker_addr,
		    broker_addrlen) == 0);
	}
	pr = &peers[npeers++];
	memset(pr, 0, sizeof(*pr));
	pr->sock = fd;
	pr->kid = kid;
	turn();
	/* Accepted as a session, or refused as the broker is full. */
	pr->id = b.reg.next_id != before ? b.reg.next_id : 0;
	replies(pr);
}

static void
step_send(struct input *in, bool direct)
{
	struct client *pr = npeers ? &peers[take(in) % npeers] : NULL;
	uint8_t spec = take(in), flags = take(in), out[2 * WIRE_MAX_DATAGRAM];
	size_t want = take(in) | (size_t)take(in) << 8, len, nfds = 0, i;
	enum fd_kind kind = (enum fd_kind)((spec & 0x0f) % NKINDS);
	const uint8_t *bytes;
	struct session *s;
	int fds[3];
	bool sent;

	want %= direct ? WIRE_MAX_DATAGRAM + 1 : sizeof(out) + 1;
	len = take_bytes(in, want, &bytes);
	if (pr == NULL || pr->sock < 0)
		return;
	turn();		/* what else is due happens first */
	replies(NULL);
	if ((s = find(pr->id)) == NULL)
		return;
	len = steer_hello(bytes, len, out, sizeof(out));
	if (kind != FD_NONE)
		for (i = 0; i < (direct ? 1 : 1 + (spec >> 4) % 3); i++)
			if ((fds[nfds] = make_fd((kind + i) % NKINDS, pr)) >= 0)
				nfds++;
	if (direct) {
		/* As session_readable() hands a datagram on, and after it. */
		session_handle_datagram(s, out, len, nfds ? fds[0] : -1,
		    flags & (WIRE_TRUNCATED | WIRE_FDS_LOST |
		    WIRE_TOO_MANY_FDS | WIRE_FOREIGN_CMSG));
		if (s->state != SESSION_DEAD && s->doom != NULL)
			session_kill(s, s->doom);
		turn();
		replies(pr);
		return;
	}
	CHECK(closer_has_room(&b));
	sent = send_datagram(pr->sock, out, len, fds, nfds);
	for (i = 0; i < nfds; i++)
		close(fds[i]);
	turn();
	/*
	 * An empty datagram reads as a hang-up (recvmsg(2) returns 0 for
	 * both on SOCK_SEQPACKET; wire.h): the session ends, unanswered.
	 * The library never sends one.
	 */
	if (sent && len == 0) {
		CHECK(find(pr->id) == NULL);
		sent = false;
	}
	replies(sent ? pr : NULL);
}

/*
 * A creation under the filter, by the helper thread or by the kid: the
 * broker reads it from its copy of the family's listener, if it holds one
 * (else the call would wait for ever, as no real client's does: the library
 * keeps no copy of its listener).
 */
static void
step_create(struct input *in, bool kid)
{
	uint8_t spec = take(in);
	struct creation_cmd cmd = {
		.op = CMD_CREATE,
		.device = (spec >> 4) & 1,
		.flags = ((spec & 1) ? O_CLOEXEC : 0) |
		    ((spec & 2) ? O_NONBLOCK : 0) |
		    ((spec & 4) ? UFFD_USER_MODE_ONLY : 0) |
		    ((spec & 8) ? O_RDWR : 0),
	};
	struct seccomp_notif n;
	struct seccomp_notif_resp resp = { .error = -ENOSYS };
	struct listener *l;
	int rc, fd, answers = kid ? kid_sock : res_pipe[0];

	turn();
	replies(NULL);
	if ((l = broker_listener(helper_lis)) == NULL)
		return;
	if (kid && (kid_pid <= 0 || kid_execd))
		return;
	if (kid)
		kid_send(CMD_CREATE, &cmd);
	else
		CHECK(write(cmd_pipe[1], &cmd, sizeof(cmd)) == sizeof(cmd));
	CHECK(wait_readable(l->fd, WAIT_MS));
	turn();
	replies(NULL);
	if (!wait_readable(answers, broker_listener(helper_lis) ?
	    WAIT_MS : 100)) {
		/*
		 * Only a listener the broker let go of may leave a creation
		 * waiting: the kernel fails it (ENOSYS) once no copy is left,
		 * and this process holds one.
		 */
		CHECK(broker_listener(helper_lis) == NULL);
		memset(&n, 0, sizeof(n));
		CHECK(ioctl(helper_lis, SECCOMP_IOCTL_NOTIF_RECV, &n) == 0);
		resp.id = n.id;
		CHECK(ioctl(helper_lis, SECCOMP_IOCTL_NOTIF_SEND, &resp) == 0);
	}
	if (kid)
		rc = kid_answer(&fd);
	else {
		CHECK(wait_readable(res_pipe[0], WAIT_MS));
		CHECK(read(res_pipe[0], &rc, sizeof(rc)) == sizeof(rc));
		fd = rc;
	}
	if (fd >= 0) {
		if (supervised >= 0)
			close(supervised);
		supervised = fd;
	}
}

/* The kid: connects, creates, exits or execs. */
static void
step_kid(struct input *in)
{
	/* Exits and execs are rarer: each costs a fork at the next step. */
	switch (take(in) % 8) {
	case 0:
	case 1:
	case 2:
		step_connect(true);
		return;
	case 3:
	case 4:
	case 5:
		step_create(in, true);
		return;
	case 6:
		if (kid_pid <= 0)
			return;
		/* Its sessions see it go (their pidfds), at the next turn. */
		if (!kid_execd) {
			kid_send(CMD_EXIT, NULL);
			CHECK(wait_readable(kid_pidfd, WAIT_MS));
		}
		kid_reap();
		break;
	case 7:
		if (kid_pid <= 0 || kid_execd)
			return;
		kid_send(CMD_EXEC, NULL);
		/* Its socket to us is close-on-exec. */
		CHECK(wait_readable(kid_sock, WAIT_MS));
		kid_execd = true;
		break;
	}
	turn();
	replies(NULL);
}

static void
step_reload(struct input *in)
{
	b.cfg.policy_path = policy_paths[take(in) % NPOLICIES];
	access_reload(&b);
	turn();
	replies(NULL);
}

static void
step_hangup(struct input *in)
{
	struct client *pr = npeers ? &peers[take(in) % npeers] : NULL;

	if (pr == NULL || pr->sock < 0)
		return;
	close(pr->sock);
	pr->sock = -1;
	turn();
	replies(NULL);
}

/* A read that finds nothing, as when another holder took the notification. */
static void
step_miss(struct input *in)
{
	struct itimerval saved;
	struct listener *l;
	unsigned int i = take(in) % 4;

	if (misses++ == MAX_MISSES)
		return;
	l = TAILQ_FIRST(&b.reg.listeners);
	while (l != NULL && i-- > 0)
		l = TAILQ_NEXT(l, entry);
	if (l == NULL)
		return;
	getitimer(ITIMER_REAL, &saved);
	supervise_notification(l);
	setitimer(ITIMER_REAL, &saved, NULL);
	turn();
	replies(NULL);
}

static void
step_tick(struct input *in)
{
	unsigned int i, n = take(in) % LIVENESS_SLICES + 1;

	for (i = 0; i < n; i++)
		liveness_tick(&b, 1);
	turn();
	replies(NULL);
}

/* ---- setup, and an input's end ---- */

static int
policy_memfd(const char *text, char *path, size_t len)
{
	int fd = memfd_create("policy", MFD_CLOEXEC);

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		perror("fuzz_session: policy memfd");
		exit(1);
	}
	snprintf(path, len, "/proc/self/fd/%d", fd);
	return fd;
}

static void
listen_socket(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int off = 0, fd;

	/* An abstract name: nothing on disk to clean up. */
	snprintf(sun.sun_path + 1, sizeof(sun.sun_path) - 1,
	    "uffd-broker-fuzz-%d", (int)getpid());
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(fd, 16) < 0) {
		perror("fuzz_session: listening socket");
		exit(1);
	}
	b.listen_fd = fd;
	broker_addr = sun;
	broker_addrlen = sizeof(sun);
	have_passrights = setsockopt(fd, SOL_SOCKET, SO_PASSRIGHTS, &off,
	    sizeof(off)) == 0;
	if (broker_watch(&b, fd, &b.w_listen, EPOLLIN) < 0) {
		perror("fuzz_session: epoll_ctl");
		exit(1);
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct rlimit nofile;
	pthread_t t;
	char name[256];
	size_t i;
	int rc;

	(void)argc;
	(void)argv;
	real_stderr = stderr;
	/* The broker's log lines, formatted and thrown away. */
	if (getenv("FUZZ_SESSION_LOG") == NULL &&
	    (stderr = fopen("/dev/null", "we")) == NULL) {
		perror("fuzz_session: /dev/null");
		exit(1);
	}
	page_size = sysconf(_SC_PAGESIZE);
	__nss_configure_lookup("passwd", "files");
	__nss_configure_lookup("group", "files");
	signal(SIGPIPE, SIG_IGN);
	if (mmap((void *)ARENA, ARENA_PAGES * page_size, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) !=
	    (void *)ARENA) {
		perror("fuzz_session: the dummy pages");
		exit(1);
	}
	for (i = 0; i < NPOLICIES; i++)
		(void)policy_memfd(policies[i], policy_paths[i],
		    sizeof(policy_paths[i]));

	/* What broker_setup() would make, less the device and the signals. */
	registry_init(&b.reg);
	b.cfg.max_sessions = 3;
	b.cfg.probe_interval_ms = 1000;
	b.cfg.log_burst = 100;
	b.cfg.log_session_burst = 20;
	b.cfg.log_interval_ms = 10000;
	b.devfd = -1;
	b.lock_fd = b.timerfd = b.sigfd = -1;
	b.verifier.sock = -1;
	b.closer.pidfd = b.closer.sock = -1;
	b.w_listen.kind = WATCH_LISTEN;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
		nofile.rlim_cur = nofile.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &nofile);
		(void)getrlimit(RLIMIT_NOFILE, &nofile);
	}
	b.nofile = nofile.rlim_cur;
	if ((b.epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		perror("fuzz_session: epoll_create1");
		exit(1);
	}
	listen_socket();
	devfd = open("/dev/userfaultfd", O_RDONLY | O_CLOEXEC);
	/* Before any thread: the closer is forked. */
	closer_start(&b, true);

	if (pipe2(cmd_pipe, O_CLOEXEC) < 0 || pipe2(res_pipe, O_CLOEXEC) < 0 ||
	    pthread_create(&t, NULL, helper_main, NULL) != 0 ||
	    read(res_pipe[0], &rc, sizeof(rc)) != sizeof(rc) || rc < 0) {
		fprintf(real_stderr, "fuzz_session: no seccomp listener (run "
		    "as root, Linux 5.0+)\n");
		exit(1);
	}
	pthread_detach(t);
	/*
	 * The sanitizers' symbolizer, which libFuzzer starts the first time it
	 * names a newly covered function, keeps two pipes for the run: start
	 * it now, so that the fd count after the first input is the baseline.
	 */
	__sanitizer_symbolize_pc(__builtin_return_address(0), "%p %F %L", name,
	    sizeof(name));
	for (i = 0; i < NSPARE; i++) {
		spare[i] = -1;
		if (pthread_create(&t, NULL, spare_main, &spare[i]) != 0 ||
		    pthread_join(t, NULL) != 0 || spare[i] < 0) {
			fprintf(real_stderr, "fuzz_session: no spare listener\n");
			exit(1);
		}
	}
	return 0;
}

/* Everything the input made goes, as at a broker's stop, and the closer
 * takes what it is sent. */
static void
finish(void)
{
	struct session *s;
	struct listener *l;
	size_t i;
	int n;

	if (kid_execd)
		kid_reap();
	kids = 0;
	while ((s = TAILQ_FIRST(&b.reg.sessions)) != NULL)
		session_kill(s, "fuzz: input done");
	while ((l = TAILQ_FIRST(&b.reg.listeners)) != NULL)
		listener_close(l);
	session_spent_prune(&b, true);
	CHECK(TAILQ_EMPTY(&b.reg.spent));
	turn();
	for (i = 0; b.closer.nwaiting > 0; i++) {
		CHECK(i < 100);		/* the closer is stuck */
		(void)wait_readable(b.closer.sock, 50);
		closer_readable(&b);
		closer_flush(&b);
	}
	for (i = 0; i < npeers; i++)
		if (peers[i].sock >= 0)
			close(peers[i].sock);
	npeers = 0;
	if (supervised >= 0)
		close(supervised);
	supervised = -1;
	policy_free(b.policy);
	b.policy = NULL;
	/* The next input's probes find the dummy pages unpopulated. */
	(void)madvise((void *)ARENA, ARENA_PAGES * page_size, MADV_DONTNEED);
	if (kid_pid > 0) {
		kid_send(CMD_RESET, NULL);
		CHECK(kid_answer(&n) == 0 && n < 0);
	}
	if (++inputs % FD_CHECK_EVERY != 0)
		return;
	/* The kid's socket and pidfd, if it lives on, are not the input's. */
	n = count_fds(false) - (kid_pid > 0 ? 2 : 0);
	if (fd_baseline < 0)
		fd_baseline = n;
	if (n > fd_baseline) {
		fprintf(real_stderr, "fuzz_session: fds leaked: %d open, %d "
		    "after the first %d inputs\n", n, fd_baseline,
		    FD_CHECK_EVERY);
		(void)count_fds(true);
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	struct sigaction sa = { .sa_sigaction = on_alarm,
	    .sa_flags = SA_SIGINFO };
	uint8_t mode;
	int off = 0, on = 1;
	size_t steps;

	/* No SA_RESTART: SIGALRM interrupts a blocking notification read. */
	if (!alarm_chained) {
		CHECK(sigaction(SIGALRM, &sa, &fuzzer_alarm) == 0);
		alarm_chained = true;
	}
	b.cfg.policy_path = policy_paths[take(&in) % NPOLICIES];
	CHECK(access_load(&b) == 0);
	mode = take(&in);
	b.via_syscall = mode & 1;
	/*
	 * With SO_PASSRIGHTS, as the broker runs on Linux 6.16+: accepted
	 * sockets refuse fds until the broker says; without, as on older
	 * kernels: any peer's fds arrive.
	 */
	b.passrights = have_passrights && (mode & 2);
	if (have_passrights)
		CHECK(setsockopt(b.listen_fd, SOL_SOCKET, SO_PASSRIGHTS,
		    b.passrights ? &off : &on, sizeof(int)) == 0);
	b.cfg.handshake_timeout_ms = (mode & 4) ? 0 : 60000;
	/* A broker that fills up, or one with room for every connection. */
	b.cfg.max_sessions = (mode & 8) ? MAX_PEERS : 3;
	misses = 0;

	for (steps = 0; in.n > 0 && steps < MAX_STEPS; steps++) {
		switch ((enum step)(take(&in) % NSTEPS)) {
		case STEP_CONNECT:
			step_connect(false);
			break;
		case STEP_SEND:
			step_send(&in, false);
			break;
		case STEP_DIRECT:
			step_send(&in, true);
			break;
		case STEP_CREATE:
			step_create(&in, false);
			break;
		case STEP_KID:
			step_kid(&in);
			break;
		case STEP_TICK:
			step_tick(&in);
			break;
		case STEP_RELOAD:
			step_reload(&in);
			break;
		case STEP_HANGUP:
			step_hangup(&in);
			break;
		case STEP_MISS:
			step_miss(&in);
			break;
		case STEP_TURN:
		case NSTEPS:
			turn();
			replies(NULL);
			break;
		}
		invariants();
	}
	finish();
	return 0;
}
