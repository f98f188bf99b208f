/* SPDX-License-Identifier: ISC */
/*
 * jail.c - the broker's own jail (docs/design.md §6), entered once start-up
 * is done: the device is open, the socket bound, the policy loaded.
 *
 *   user          --user NAME|UID[:GID]; otherwise the broker keeps its uid
 *   capabilities  none, but CAP_SYS_PTRACE when the policy needs it: to read
 *                 /proc/PID/exe of other users' processes (rules matching
 *                 on exe), or to initialise uffds with EVENT_FORK (the
 *                 kernel asks the caller of UFFDIO_API for it). The bounding
 *                 set is cleared too.
 *   no-new-privs  set
 *   seccomp       the allow-list below; anything else kills the broker
 *
 * Nothing else is needed: listeners, uffds and pidfds are fds the broker
 * already holds, /proc/PID/status and /proc/PID/cgroup are world-readable,
 * and liveness is a poll on the pidfd, not a signal. The one process the
 * broker makes is its closer (closer.c), forked under this filter: fork(2)'s
 * exact clone flags are allowed, threads are not.
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/userfaultfd.h>
#include <cap-ng.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker.h"
#include "log.h"
#include "sha256.h"

#define IOCTL_CMD_MASK	0xffffffffULL

/* System calls the broker's loop makes, and libc under it (malloc, stdio,
 * syslog, the NSS lookups of a policy reload). */
static const char *const allowed[] = {
	/* the loop */
	"epoll_wait", "epoll_pwait", "epoll_pwait2", "epoll_ctl", "epoll_create1",
	"listen", "accept4", "recvmsg", "sendmsg", "sendto", "recvfrom", "read", "write",
	"writev", "close", "getsockopt", "setsockopt", "fcntl", "kcmp", "pidfd_open", "poll",
	/* the closer process: made, killed (by pidfd, so only it), and its life */
	"socketpair", "pidfd_send_signal", "close_range", "getppid",
	"ppoll", "setitimer", "rt_sigreturn", "rt_sigprocmask", "clock_gettime",
	"gettimeofday", "getpid", "gettid", "unlink", "restart_syscall",
	/* /proc, the policy file, NSS (openat: read-only, below) */
	"newfstatat", "fstat", "statx", "lseek", "readlink",
	"readlinkat", "getdents64", "pread64",
	/* syslog(3) and NSS reach unix sockets only (see socket below) */
	"connect",
	/* memory of libc */
	"brk", "mmap", "munmap", "mremap", "madvise", "mprotect", "futex",
	"getrandom", "exit", "exit_group", "set_robust_list", "rseq", "pipe2",
	"sched_getaffinity", "rt_sigaction",
	/* identity queries of libc and NSS */
	"getuid", "geteuid", "getgid", "getegid", "uname",
	/*
	 * An upgrade (upgrade.c): the state's memfd, and the binary executed
	 * again, which starts under this filter (the dynamic loader and libc's
	 * start-up, libcap-ng's queries). None widens the jail: the new image
	 * is bound by this filter, no-new-privs and the capabilities execve(2)
	 * leaves. The fd store's state memfds are rewritten (store.c).
	 */
	"memfd_create", "execve", "seccomp", "arch_prctl", "access", "fstatfs",
	"set_tid_address", "capget", "ftruncate",
};

/*
 * A sanitizer build (make sanitize) only, never a normal one: what the
 * AddressSanitizer runtime calls in the jailed broker and in the closer it
 * forks. Its reports go to stderr, as the broker's log does.
 */
#ifdef BROKER_SANITIZED
static const char *const sanitizer_allowed[] = {
	"sigaltstack",		/* the runtime's alternate stack, after fork */
	"open",			/* an upgrade's image: the runtime's start-up */
};
#endif

/*
 * A build for valgrind (make valgrind) only, never a normal one: valgrind
 * runs in the broker's process, so the broker's filter binds valgrind's
 * core too. What the core calls in the jailed broker and in the closer it
 * forks, beyond the list above; each was seen killing such a broker. Its
 * reports go to stderr, as the broker's log does (valgrind opens nothing
 * once started: no --log-file, no gdbserver, --vgdb=no).
 */
#ifdef BROKER_UNDER_VALGRIND
static const char *const valgrind_allowed[] = {
	"rt_sigtimedwait",	/* it polls for pending signals, timeout zero */
	"sched_yield",		/* its scheduler hands the CPU on now and then */
	"pipe",			/* a forked child's own scheduler lock (the closer) */
};
#endif

/* ioctls on listeners and on client uffds. */
static const unsigned long allowed_ioctls[] = {
	SECCOMP_IOCTL_NOTIF_RECV, SECCOMP_IOCTL_NOTIF_SEND,
	SECCOMP_IOCTL_NOTIF_ID_VALID, SECCOMP_IOCTL_NOTIF_ADDFD,
	SECCOMP_IOCTL_NOTIF_SET_FLAGS,
	UFFDIO_API, UFFDIO_REGISTER, UFFDIO_UNREGISTER, UFFDIO_ZEROPAGE,
	TCGETS,		/* stdio's isatty() on a log stream */
};

/* prctl(2) options that only read the caller's own settings. */
static const int prctl_queries[] = {
	PR_CAPBSET_READ, PR_GET_SECUREBITS, PR_GET_NO_NEW_PRIVS,
};

static scmp_filter_ctx
broker_jail_build(void)
{
	scmp_filter_ctx ctx;
	size_t i;
	int nr, rc = 0;

#ifdef BROKER_UNDER_VALGRIND
	/* Not asked of the kernel: see jail_load(). */
	if (seccomp_api_set(3) != 0)
		return NULL;
#endif
	if ((ctx = seccomp_init(SCMP_ACT_KILL_PROCESS)) == NULL)
		return NULL;
	for (i = 0; i < sizeof(allowed) / sizeof(allowed[0]) && rc == 0; i++) {
		nr = seccomp_syscall_resolve_name(allowed[i]);
		if (nr == __NR_SCMP_ERROR)
			continue;	/* not on this architecture */
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
	}
#ifdef BROKER_SANITIZED
	for (i = 0; i < sizeof(sanitizer_allowed) / sizeof(sanitizer_allowed[0]) &&
	    rc == 0; i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW,
		    seccomp_syscall_resolve_name(sanitizer_allowed[i]), 0);
	/*
	 * An upgrade's image: the runtime sets its core dump limit as it
	 * starts. (The normal build allows prlimit64 to read limits only.)
	 */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64),
		    1, SCMP_A2(SCMP_CMP_NE, 0, 0));
#endif
#ifdef BROKER_UNDER_VALGRIND
	for (i = 0; i < sizeof(valgrind_allowed) / sizeof(valgrind_allowed[0]) &&
	    rc == 0; i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW,
		    seccomp_syscall_resolve_name(valgrind_allowed[i]), 0);
#endif
	for (i = 0; i < sizeof(allowed_ioctls) / sizeof(allowed_ioctls[0]) &&
	    rc == 0; i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
		    SCMP_A1(SCMP_CMP_MASKED_EQ, IOCTL_CMD_MASK,
		    allowed_ioctls[i]));
	/* Opening files read-only; sockets of the unix family only. */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
		    SCMP_A2(SCMP_CMP_MASKED_EQ, O_WRONLY | O_RDWR | O_CREAT |
		    O_TRUNC | O_APPEND, 0));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
		    SCMP_A0(SCMP_CMP_EQ, AF_UNIX, 0));
	/* getrlimit(2) (libc asks prlimit64 with no new limit); no setting. */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 1,
		    SCMP_A2(SCMP_CMP_EQ, 0, 0));
	/*
	 * fork(2) for the closer, nothing else: clone3's flags are out of a
	 * filter's reach, so it says ENOSYS; clone is allowed with exactly
	 * the flags glibc's fork() passes. The closer asks to die with the
	 * broker, and prctl allows nothing more.
	 */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS),
		    SCMP_SYS(clone3), 0);
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
		    SCMP_A0(SCMP_CMP_EQ, CLONE_CHILD_SETTID |
		    CLONE_CHILD_CLEARTID | SIGCHLD, 0));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
		    SCMP_A0(SCMP_CMP_EQ, PR_SET_PDEATHSIG, 0));
	/* Queries libcap-ng makes as an upgraded image starts: read-only. */
	for (i = 0; i < sizeof(prctl_queries) / sizeof(prctl_queries[0]) &&
	    rc == 0; i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
		    SCMP_A0(SCMP_CMP_EQ, prctl_queries[i], 0));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 2,
		    SCMP_A0(SCMP_CMP_EQ, PR_CAP_AMBIENT, 0),
		    SCMP_A1(SCMP_CMP_EQ, PR_CAP_AMBIENT_IS_SET, 0));
#ifdef UFFD_BROKER_TEST_HOOKS
	/* Test builds only: a jail that differs (an upgrade must refuse it). */
	if (rc == 0 && getenv("UFFD_BROKER_TEST_WIDER_JAIL") != NULL)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(getcwd), 0);
#endif
	if (rc != 0) {
		seccomp_release(ctx);
		return NULL;
	}
	return ctx;
}

/* The program seccomp_load() would load, as BPF. Returns 0 or -errno. */
static int
jail_export(scmp_filter_ctx ctx, struct sock_filter *insns, size_t *ninsns)
{
	size_t len = 0;
	ssize_t n = 0;
	int p[2], rc;

	/* At most 32 KiB: a pipe's buffer holds it. */
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	rc = seccomp_export_bpf(ctx, p[1]);
	close(p[1]);
	while (rc == 0 && len < BPF_MAXINSNS * sizeof(*insns) &&
	    (n = read(p[0], (char *)insns + len,
	    BPF_MAXINSNS * sizeof(*insns) - len)) > 0)
		len += n;
	close(p[0]);
	if (rc != 0)
		return rc;
	if (n < 0 || len == 0 || len % sizeof(insns[0]) != 0)
		return -EINVAL;
	*ninsns = len / sizeof(insns[0]);
	return 0;
}

static struct sock_filter jail_insns[BPF_MAXINSNS];

/* SHA-256 of the program: what an upgrade compares (upgrade.c). */
static int
jail_digest(scmp_filter_ctx ctx, uint8_t out[SHA256_LEN])
{
	struct sha256 c;
	size_t n = 0;
	int rc;

	if ((rc = jail_export(ctx, jail_insns, &n)) < 0)
		return rc;
	sha256_init(&c);
	sha256_update(&c, jail_insns, n * sizeof(jail_insns[0]));
	sha256_final(&c, out);
	return 0;
}

#ifdef BROKER_UNDER_VALGRIND
/*
 * Valgrind 3.19 (Debian 12) does not know seccomp(2), so libseccomp, asking
 * through it, would find no SCMP_ACT_KILL_PROCESS and refuse the filter.
 * The kernel has both (libseccomp's API level 3, set above); the program
 * seccomp_load() would load is exported and loaded with prctl(2), which
 * valgrind passes on.
 */
static int
jail_load(scmp_filter_ctx ctx)
{
	struct sock_fprog prog = { .filter = jail_insns };
	size_t n = 0;
	int rc;

	if ((rc = jail_export(ctx, jail_insns, &n)) < 0)
		return rc;
	prog.len = (unsigned short)n;
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
		return -errno;
	return 0;
}
#else
static int
jail_load(scmp_filter_ctx ctx)
{
	return seccomp_load(ctx);
}
#endif

void *
broker_jail_filter(void)
{
	return broker_jail_build();
}

int
jail_user(const char *spec, uid_t *uid, gid_t *gid)
{
	struct passwd *pw;
	unsigned long u, g;
	char *end;

	errno = 0;
	u = strtoul(spec, &end, 10);
	if (end != spec && errno == 0 && (*end == '\0' || *end == ':')) {
		g = u;
		if (*end == ':') {
			g = strtoul(end + 1, &end, 10);
			if (*end != '\0')
				return -1;
		}
		*uid = (uid_t)u;
		*gid = (gid_t)g;
		return 0;
	}
	if ((pw = getpwnam(spec)) == NULL)
		return -1;
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

void
broker_jail(struct broker *b)
{
	bool ptrace = policy_needs_exe(b->policy) || policy_grants_fork(b->policy);
	scmp_filter_ctx ctx;
	uid_t uid = getuid();
	gid_t gid = getgid();
	int rc;

	if (!b->cfg.jail) {
		log_warnx("--no-jail: the broker runs with all its privileges");
		return;
	}
	if (b->cfg.user != NULL && jail_user(b->cfg.user, &uid, &gid) < 0)
		fatalx("--user %s: no such user", b->cfg.user);

	capng_clear(CAPNG_SELECT_BOTH);
	/*
	 * Inheritable and ambient too, so that an upgrade's exec keeps it; an
	 * inheritable capability must stay in the bounding set.
	 */
	if (ptrace)
		capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED |
		    CAPNG_INHERITABLE | CAPNG_BOUNDING_SET, CAP_SYS_PTRACE);
	if (b->cfg.user != NULL && uid != getuid())
		rc = capng_change_id(uid, gid,
		    CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_BOUNDING);
	else
		rc = capng_apply(CAPNG_SELECT_BOTH);
	if (rc != 0)
		fatalx("dropping privileges failed (libcap-ng error %d)", rc);
	if (ptrace && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE,
	    CAP_SYS_PTRACE, 0, 0) < 0)
		fatal("prctl(PR_CAP_AMBIENT_RAISE)");
	/*
	 * A uid change makes the process non-dumpable, and its /proc/self
	 * files root's: the broker reads its own fdinfo to count live uffds.
	 */
	if (prctl(PR_SET_DUMPABLE, 1) < 0)
		fatal("prctl(PR_SET_DUMPABLE)");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fatal("prctl(PR_SET_NO_NEW_PRIVS)");
	if ((ctx = broker_jail_build()) == NULL)
		fatalx("building the broker's seccomp filter failed");
	if ((rc = jail_digest(ctx, b->upgrade.filter_digest)) < 0)
		fatalx("exporting the broker's seccomp filter: %s",
		    strerror(-rc));
	if ((rc = jail_load(ctx)) < 0)
		fatalx("loading the broker's seccomp filter: %s", strerror(-rc));
	seccomp_release(ctx);
	b->upgrade.jailed = true;
	log_event("jailed", "uid=%u gid=%u caps=%s no_new_privs=yes "
	    "seccomp=%s", (unsigned)getuid(), (unsigned)getgid(),
	    ptrace ? "cap_sys_ptrace" : "none",
#if defined(BROKER_SANITIZED)
	    "allow-list+sanitizer-runtime"
#elif defined(BROKER_UNDER_VALGRIND)
	    "allow-list+valgrind-core"
#else
	    "allow-list"
#endif
	    );
}

void
jail_resume(struct broker *b)
{
	uint8_t digest[SHA256_LEN];
	scmp_filter_ctx ctx;
	bool same;
	int rc;

	if (!b->upgrade.jailed) {
		/* The old image ran unjailed (--no-jail): as at a start. */
		broker_jail(b);
		return;
	}
	if ((ctx = broker_jail_build()) == NULL)
		fatalx("building the broker's seccomp filter failed");
	if ((rc = jail_digest(ctx, digest)) < 0)
		fatalx("exporting the broker's seccomp filter: %s",
		    strerror(-rc));
	same = memcmp(digest, b->upgrade.filter_digest, SHA256_LEN) == 0;
	seccomp_release(ctx);
	/*
	 * A filter in force cannot be widened, and stacking this one on it
	 * would bind the new image by both: what it allows beyond the old
	 * would kill it, later, while it serves. Refused here, in the check.
	 */
	if (!same)
		fatalx("upgrade: this binary's jail differs from the one in force, "
		    "which a process cannot widen: restart the broker to take it");
	memcpy(b->upgrade.filter_digest, digest, SHA256_LEN);
	(void)capng_get_caps_process();
	log_event("jailed", "uid=%u gid=%u caps=%s no_new_privs=yes "
	    "seccomp=%s", (unsigned)getuid(), (unsigned)getgid(),
	    capng_have_capability(CAPNG_EFFECTIVE, CAP_SYS_PTRACE) ?
	    "cap_sys_ptrace" : "none", "kept");
}
