/*
 * supervise.c - the broker's side of each client's seccomp listener
 * (docs/design.md §3): the verification that earns the device fd, the probe
 * creation, and the grant decision for every later creation.
 *
 * One listener serves a family of processes: a client and the processes it
 * forks after jailing itself share its filter. A notification goes to the
 * session of the calling thread group; a forked child's session is bound to
 * the listener its probe creation arrives on, which proves the child is
 * under that filter.
 *
 * A notification's arguments are scalars, so answering CONTINUE has no
 * pointer TOCTOU: the decision "this process may create one uffd with these
 * flags" stays true whatever its other threads do. Each answer is preceded by
 * SECCOMP_IOCTL_NOTIF_ID_VALID, after the /proc reads it depends on.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/time.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "broker.h"
#include "log.h"

#if defined(__x86_64__)
#define NATIVE_AUDIT_ARCH	AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_AUDIT_ARCH	AUDIT_ARCH_AARCH64
#else
#error "uffd-brokerd: unsupported architecture"
#endif

/*
 * How long a notification read may wait before it is given up. It waits
 * only when another holder of the listener took the notification that epoll
 * reported: the library keeps no copy, so a listener that misses
 * LISTENER_MISSES within LISTENER_MISS_WINDOW_MS is shared, and hung up.
 * (A caller interrupted between epoll and the read makes one miss, rarely.)
 */
#define RECV_BOUND_US		1000
#define LISTENER_MISSES		3
#define LISTENER_MISS_WINDOW_MS	10000

/* Whether the kernel lets unprivileged processes have kernel-fault uffds. */
#define SYSCTL_UNPRIVILEGED	"/proc/sys/vm/unprivileged_userfaultfd"
#define CAP_SYS_PTRACE_BIT	19

/* The only flags a uffd may be created with. */
#define CREATE_FLAGS	(O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY)

enum creation_path { VIA_DEVICE, VIA_SYSCALL, NOT_A_CREATION };

struct creation {
	enum creation_path path;
	int		flags;		/* as the kernel reads them: an int */
	pid_t		tid;
	pid_t		tgid;
};

static struct creation
classify(const struct seccomp_notif *n)
{
	struct creation c = { .path = NOT_A_CREATION, .tid = n->pid };

	if (n->data.arch != NATIVE_AUDIT_ARCH)
		return c;
	/*
	 * The kernel's ioctl command is an unsigned int (docs/design.md
	 * fact 10).
	 */
	if (n->data.nr == __NR_ioctl &&
	    (unsigned int)n->data.args[1] == USERFAULTFD_IOC_NEW) {
		c.path = VIA_DEVICE;
		c.flags = (int)n->data.args[2];
	} else if (n->data.nr == __NR_userfaultfd) {
		c.path = VIA_SYSCALL;
		c.flags = (int)n->data.args[0];
	}
	return c;
}

struct listener *
listener_new(struct broker *b, int fd, uint64_t id, uid_t uid,
    unsigned int max_orphans)
{
	struct listener *l;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	l->b = b;
	l->id = id;
	l->uid = uid;
	l->max_orphans = max_orphans;
	l->fd = fd;
	l->refs = 1;
	l->w = (struct watch){ .kind = WATCH_NOTIFY, .l = l };
	if (broker_watch(b, fd, &l->w, EPOLLIN) < 0) {
		free(l);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&b->listeners, l, entry);
	return l;
}

/*
 * Closing a listener fails the family's future creations (ENOSYS); its filter
 * forbids a new listener, so that is final.
 */
void
listener_close(struct listener *l)
{
	struct broker *b = l->b;

	broker_unwatch(b, l->fd);
	close(l->fd);
	l->fd = -1;
	TAILQ_REMOVE(&b->listeners, l, entry);
	TAILQ_INSERT_TAIL(&b->dead_listeners, l, entry);
}

/*
 * Drop a session's reference; the last one orphans the listener (see
 * broker.h). A uid keeps at most as many orphans as it may have sessions:
 * beyond that its oldest is closed, so that opening and ending sessions in a
 * loop cannot pile up the broker's fds.
 */
void
listener_unref(struct listener *l)
{
	struct listener *o, *oldest = NULL;
	unsigned int orphans = 0;

	if (--l->refs > 0)
		return;
	if (l->hung_up) {
		listener_close(l);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &l->orphaned);
	TAILQ_FOREACH(o, &l->b->listeners, entry)
		if (o->refs == 0 && o->uid == l->uid) {
			if (oldest == NULL)
				oldest = o;
			orphans++;
		}
	if (orphans > l->max_orphans)
		listener_close(oldest);
}

/* Free closed listeners once no epoll event of this turn can point at them. */
void
listener_reap(struct broker *b)
{
	struct listener *l;

	while ((l = TAILQ_FIRST(&b->dead_listeners)) != NULL) {
		TAILQ_REMOVE(&b->dead_listeners, l, entry);
		free(l);
	}
}

/* Answer a notification; a vanished caller (ENOENT) is not an error. */
static void
respond(struct listener *l, const struct seccomp_notif *n, int error,
    bool cont)
{
	struct seccomp_notif_resp resp = {
		.id = n->id,
		.error = error ? -error : 0,
		.flags = cont ? SECCOMP_USER_NOTIF_FLAG_CONTINUE : 0,
	};

	if (ioctl(l->fd, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0 &&
	    errno != ENOENT)
		audit_uid(l->b, l->uid, "warning", "listener=%llu: answering "
		    "notification error=\"%s\"", (unsigned long long)l->id,
		    strerror(errno));
}

static bool
still_pending(struct listener *l, const struct seccomp_notif *n)
{
	__u64 id = n->id;

	return ioctl(l->fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

/* Refuse a creation; s is NULL when the caller has no session. */
static void
refuse(struct listener *l, struct session *s, const struct seccomp_notif *n,
    const struct creation *c, int error, const char *why)
{
	if (s != NULL) {
		s->refused++;
		if (s->rule != NULL)
			s->rule->refused++;
		audit_session(s, error == EDQUOT ? "quota_hit" : "uffd_refused",
		    "session=%llu pid=%d tid=%d uid=%u rule=%s%s flags=0x%x "
		    "errno=%d reason=\"%s\"", (unsigned long long)s->id,
		    (int)s->pid, (int)c->tid, (unsigned)s->uid, s->rule_name,
		    error == EDQUOT ? " what=uffds" : "", (unsigned)c->flags,
		    error, why);
	} else
		audit_uid(l->b, l->uid, "uffd_refused", "listener=%llu pid=%d "
		    "tid=%d flags=0x%x errno=%d reason=\"%s\"",
		    (unsigned long long)l->id, (int)c->tgid, (int)c->tid,
		    (unsigned)c->flags, error, why);
	respond(l, n, error, false);
}

/*
 * The peer's first trapped ioctl: it arrived on the listener the broker holds,
 * from the peer's thread group. With the peer single-threaded while this
 * thread is parked, every thread it will ever have inherits the filter, so it
 * may hold the device fd: install it as the ioctl's result.
 */
static void
verify(struct session *s, const struct seccomp_notif *n,
    const struct creation *c)
{
	struct listener *l = s->lis;
	struct seccomp_notif_addfd addfd = {
		.id = n->id,
		.flags = SECCOMP_ADDFD_FLAG_SEND,
		.srcfd = s->b->devfd,
		.newfd_flags = O_CLOEXEC,
	};
	int threads, fd;

	if (c->path != VIA_DEVICE) {
		refuse(l, s, n, c, EPERM, "verification must be the device ioctl");
		session_kill(s, "verification by the wrong system call");
		return;
	}
	threads = proc_threads(s->pid);
	if (threads != 1) {
		refuse(l, s, n, c, EPERM, "several threads at the handshake");
		session_kill(s, "peer not single-threaded at verification");
		return;
	}
	/* Its fds would be anyone's of its user (pidfd_getfd(2)). */
	if (proc_dumpable(s->pid)) {
		refuse(l, s, n, c, EPERM, "peer is dumpable: another process of "
		    "its user could take the device fd");
		session_kill(s, "peer dumpable at verification");
		return;
	}
	/*
	 * The pid read from /proc is still the peer's: its pidfd is live.
	 * (A poll, not pidfd_send_signal(0): the jailed broker may not signal
	 * other users' processes.)
	 */
	if (!proc_pidfd_alive(s->pidfd) || !still_pending(l, n)) {
		session_kill(s, "peer vanished during verification");
		return;
	}
	fd = ioctl(l->fd, SECCOMP_IOCTL_NOTIF_ADDFD, &addfd);
	if (fd < 0) {
		audit_session(s, "warning", "session=%llu: installing the device "
		    "fd error=\"%s\"", (unsigned long long)s->id,
		    strerror(errno));
		session_kill(s, "device fd not installed");
		return;
	}
	session_advance(s, SESSION_PROBE_CREATE);
	audit_session(s, "session_verified", "session=%llu pid=%d uid=%u "
	    "device_fd=%d", (unsigned long long)s->id, (int)s->pid,
	    (unsigned)s->uid, fd);
}

/*
 * userfaultfd(2) without UFFD_USER_MODE_ONLY: would the kernel allow this
 * process? CONTINUE runs the call as the client, so the kernel decides in the
 * end; asking first gives the refusal a reason in the log.
 */
static bool
kernel_allows_kernel_faults(pid_t tid)
{
	/* The kernel asks the calling thread, in the initial user namespace. */
	return proc_sysctl_int(SYSCTL_UNPRIVILEGED) == 1 ||
	    (proc_init_userns(tid) && proc_has_cap(tid, CAP_SYS_PTRACE_BIT));
}

/* The probe creation: the broker's own liveness handle needs no kernel faults. */
static void
probe_create(struct session *s, const struct seccomp_notif *n,
    const struct creation *c)
{
	enum creation_path path = session_via_syscall(s) ? VIA_SYSCALL :
	    VIA_DEVICE;

	if (c->path != path || (c->flags & ~CREATE_FLAGS) ||
	    !(c->flags & UFFD_USER_MODE_ONLY)) {
		refuse(s->lis, s, n, c, EPERM, "bad probe creation");
		session_kill(s, "bad probe creation");
	} else if (still_pending(s->lis, n)) {
		/* Fds flow before the probe can be sent. */
		session_advance(s, SESSION_PROBE_ATTACH);
		respond(s->lis, n, 0, true);
	}
}

/* The grant decision for a creation by a ready session. */
static void
decide(struct session *s, const struct seccomp_notif *n,
    const struct creation *c)
{
	const struct grant *g = &s->grant;
	struct listener *l = s->lis;
	unsigned int live;
	int counted, rc;
	char why[128];

	if (c->path == VIA_SYSCALL && !session_via_syscall(s)) {
		refuse(l, s, n, c, EPERM,
		    "userfaultfd(2) is not brokered here; use /dev/userfaultfd");
		return;
	}
	if (c->path == VIA_DEVICE && session_via_syscall(s)) {
		refuse(l, s, n, c, EPERM, "this session creates by "
		    "userfaultfd(2); it has no device");
		return;
	}
	if (c->flags & ~CREATE_FLAGS) {
		refuse(l, s, n, c, EINVAL, "unknown creation flags");
		return;
	}
	if (!(c->flags & UFFD_USER_MODE_ONLY)) {
		if (!g->kernel_faults) {
			refuse(l, s, n, c, EPERM, "kernel faults not granted");
			return;
		}
		if (c->path == VIA_SYSCALL && !kernel_allows_kernel_faults(c->tid)) {
			refuse(l, s, n, c, EPERM, "the kernel allows this process "
			    "only user-mode faults through userfaultfd(2) "
			    "(vm.unprivileged_userfaultfd=0, no CAP_SYS_PTRACE)");
			return;
		}
	}
	/*
	 * The creation runs in the caller's address space: it must be the
	 * session's, alive. A thread group whose probe says ESRCH has exec'd
	 * (or is exiting): its session is over.
	 */
	if ((rc = liveness_zeropage(s->probe_uffd, s->dummy_page,
	    s->page_size)) < 0) {
		refuse(l, s, n, c, EPERM, rc == -ESRCH ? "address space gone: "
		    "the process exec'd" : "dummy page unusable");
		session_kill(s, rc == -ESRCH ? "address space gone (exec)" :
		    "liveness probe failed (dummy page unusable)");
		return;
	}
	if ((counted = session_live_uffds(s)) < 0) {
		refuse(l, s, n, c, EAGAIN, "cannot count the session's live "
		    "uffds just now");
		return;
	}
	/* The quota is the address space's: CLONE_VM children share it. */
	live = (unsigned int)counted + session_pending_of_mm(s);
	if (live >= g->max_uffds) {
		snprintf(why, sizeof(why), "quota reached: %u of %u uffds live",
		    live, g->max_uffds);
		refuse(l, s, n, c, EDQUOT, why);
		return;
	}
	if (!still_pending(l, n))
		return;
	s->pending++;
	clock_gettime(CLOCK_MONOTONIC, &s->last_continue);
	session_sync_fds(s);	/* before the new uffd can be sent */
	respond(l, n, 0, true);
}

/*
 * A call from outside the family's sessions while the listener's owner is
 * still in its handshake: the listener was borrowed, not made by the peer.
 * The owner loses its session before it can earn the device fd.
 */
static void
owner_check(struct listener *l)
{
	struct session *s;

	TAILQ_FOREACH(s, &l->b->sessions, entry)
		if (s->lis == l && s->id == l->id) {
			if (s->state < SESSION_READY)
				session_kill(s, "handshake notification from "
				    "another process");
			return;
		}
}

/*
 * The session of the calling thread group on this listener: one bound to it,
 * or a forked session waiting for its probe, which this notification binds.
 */
static struct session *
session_of(struct listener *l, pid_t tgid)
{
	struct session *s;

	TAILQ_FOREACH(s, &l->b->sessions, entry) {
		if (s->pid != tgid || s->refusal != NULL)
			continue;
		if (s->lis == l)
			return s;
		if (s->lis == NULL && s->forked &&
		    s->state == SESSION_PROBE_CREATE) {
			s->lis = l;
			l->refs++;
			audit_session(s, "session_joined", "session=%llu "
			    "pid=%d uid=%u listener=%llu",
			    (unsigned long long)s->id,
			    (int)s->pid, (unsigned)s->uid,
			    (unsigned long long)l->id);
			return s;
		}
	}
	return NULL;
}

/*
 * What a creation means in each state, the notifications' counterpart of
 * session.c's request table: in any other state it is out of order.
 */
static void (*const notifications[])(struct session *,
    const struct seccomp_notif *, const struct creation *) = {
	[SESSION_VERIFY] = verify,		/* earns the device fd */
	[SESSION_PROBE_CREATE] = probe_create,	/* the liveness handle */
	[SESSION_READY] = decide,		/* a grant, or not */
	[SESSION_DEAD] = NULL,
};

void
supervise_notification(struct listener *l)
{
	struct seccomp_notif n;
	struct creation c;
	struct session *s;
	struct itimerval bound = { .it_value = { .tv_usec = RECV_BOUND_US } };
	struct itimerval off = { 0 };
	int rc;

	/* The kernel insists on a zeroed buffer. */
	memset(&n, 0, sizeof(n));
	/*
	 * RECV blocks when no notification is pending, whatever the fd's flags:
	 * bound it with SIGALRM (no SA_RESTART) so the loop never hangs.
	 */
	setitimer(ITIMER_REAL, &bound, NULL);
	rc = ioctl(l->fd, SECCOMP_IOCTL_NOTIF_RECV, &n);
	setitimer(ITIMER_REAL, &off, NULL);
	if (rc < 0 && errno == EINTR) {
		if (l->misses == 0 || broker_elapsed_ms(&l->first_miss) >
		    LISTENER_MISS_WINDOW_MS) {
			l->misses = 0;
			clock_gettime(CLOCK_MONOTONIC, &l->first_miss);
		}
		if (++l->misses >= LISTENER_MISSES)
			listener_hangup(l, "listener shared: another process "
			    "takes its notifications");
		return;
	}
	if (rc < 0) {
		if (errno == ENOENT)
			return;		/* the caller went away first */
		audit_uid(l->b, l->uid, "warning", "listener=%llu: receiving "
		    "notification error=\"%s\"", (unsigned long long)l->id,
		    strerror(errno));
		listener_hangup(l, "listener failed");
		return;
	}
	c = classify(&n);
	c.tgid = proc_tgid(c.tid);
	s = c.path == NOT_A_CREATION ? NULL : session_of(l, c.tgid);
	/* The library's fragment sends creations only. */
	if (c.path == NOT_A_CREATION) {
		refuse(l, s, &n, &c, ENOSYS, "not a uffd creation");
		listener_hangup(l, "its filter sends other system calls: not "
		    "the library's fragment");
		return;
	}
	if (s == NULL) {
		refuse(l, NULL, &n, &c, EPERM, "caller has no session on this "
		    "listener");
		owner_check(l);
		return;
	}
	if (notifications[s->state] == NULL) {
		refuse(l, s, &n, &c, EPERM, "creation out of order");
		return;
	}
	notifications[s->state](s, &n, &c);
}

/* No task is left under the filter (or it failed): every session on it ends. */
void
listener_hangup(struct listener *l, const char *why)
{
	struct session *s, *next;

	l->hung_up = true;
	l->refs++;	/* hold it while its sessions let go */
	for (s = TAILQ_FIRST(&l->b->sessions); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		if (s->lis == l)
			session_kill(s, why);
	}
	listener_unref(l);
}
