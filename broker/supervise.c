/*
 * supervise.c - the broker's side of each client's seccomp listener
 * (DESIGN §3): the verification that earns the device fd, the probe creation,
 * and the grant decision for every later creation.
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
#include <string.h>
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

/* How long a notification read may wait before it is given up. */
#define RECV_BOUND_US	100000

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
	/* The kernel's ioctl command is an unsigned int (DESIGN fact 10). */
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

/* Answer a notification; a vanished caller (ENOENT) is not an error. */
static void
respond(struct session *s, const struct seccomp_notif *n, int error,
    bool cont)
{
	struct seccomp_notif_resp resp = {
		.id = n->id,
		.error = error ? -error : 0,
		.flags = cont ? SECCOMP_USER_NOTIF_FLAG_CONTINUE : 0,
	};

	if (ioctl(s->listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0 &&
	    errno != ENOENT)
		log_warn("session=%llu: answering notification",
		    (unsigned long long)s->id);
}

static bool
still_pending(struct session *s, const struct seccomp_notif *n)
{
	__u64 id = n->id;

	return ioctl(s->listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

static void
refuse(struct session *s, const struct seccomp_notif *n,
    const struct creation *c, int error, const char *why)
{
	s->refused++;
	log_event("uffd_refused", "session=%llu pid=%d tid=%d uid=%u "
	    "flags=0x%x errno=%d reason=\"%s\"", (unsigned long long)s->id,
	    (int)s->pid, (int)c->tid, (unsigned)s->uid, (unsigned)c->flags,
	    error, why);
	respond(s, n, error, false);
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
	struct seccomp_notif_addfd addfd = {
		.id = n->id,
		.flags = SECCOMP_ADDFD_FLAG_SEND,
		.srcfd = s->b->devfd,
		.newfd_flags = O_CLOEXEC,
	};
	int threads, fd;

	if (c->path != VIA_DEVICE) {
		refuse(s, n, c, EPERM, "verification must be the device ioctl");
		session_kill(s, "verification by the wrong system call");
		return;
	}
	threads = proc_threads(s->pid);
	if (threads != 1) {
		refuse(s, n, c, EPERM, "several threads at the handshake");
		session_kill(s, "peer not single-threaded at verification");
		return;
	}
	/* The pid read from /proc is still the peer's: its pidfd is live. */
	if (syscall(SYS_pidfd_send_signal, s->pidfd, 0, NULL, 0) < 0 ||
	    !still_pending(s, n)) {
		session_kill(s, "peer vanished during verification");
		return;
	}
	fd = ioctl(s->listener, SECCOMP_IOCTL_NOTIF_ADDFD, &addfd);
	if (fd < 0) {
		log_warn("session=%llu: installing the device fd",
		    (unsigned long long)s->id);
		session_kill(s, "device fd not installed");
		return;
	}
	s->state = SESSION_PROBE_CREATE;
	log_event("session_verified", "session=%llu pid=%d uid=%u device_fd=%d",
	    (unsigned long long)s->id, (int)s->pid, (unsigned)s->uid, fd);
}

/* The grant decision for a creation by a ready session. */
static void
decide(struct session *s, const struct seccomp_notif *n,
    const struct creation *c)
{
	const struct broker_config *cfg = &s->b->cfg;
	unsigned int live;
	char why[128];

	if (c->path == VIA_SYSCALL) {
		refuse(s, n, c, EPERM,
		    "userfaultfd(2) is not brokered here; use /dev/userfaultfd");
		return;
	}
	if (c->flags & ~CREATE_FLAGS) {
		refuse(s, n, c, EINVAL, "unknown creation flags");
		return;
	}
	if (!cfg->kernel_faults && !(c->flags & UFFD_USER_MODE_ONLY)) {
		refuse(s, n, c, EPERM, "kernel faults not granted");
		return;
	}
	live = session_live_uffds(s) + s->pending;
	if (live >= cfg->max_uffds) {
		snprintf(why, sizeof(why), "quota reached: %u of %u uffds live",
		    live, cfg->max_uffds);
		refuse(s, n, c, EDQUOT, why);
		return;
	}
	if (!still_pending(s, n))
		return;
	s->pending++;
	respond(s, n, 0, true);
}

void
supervise_notification(struct session *s)
{
	struct seccomp_notif n;
	struct creation c;
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
	rc = ioctl(s->listener, SECCOMP_IOCTL_NOTIF_RECV, &n);
	setitimer(ITIMER_REAL, &off, NULL);
	if (rc < 0) {
		if (errno == ENOENT || errno == EINTR)
			return;		/* the caller went away first */
		log_warn("session=%llu: receiving notification",
		    (unsigned long long)s->id);
		session_kill(s, "listener failed");
		return;
	}
	c = classify(&n);
	c.tgid = proc_tgid(c.tid);
	if (c.path == NOT_A_CREATION) {
		refuse(s, &n, &c, ENOSYS, "not a uffd creation");
		return;
	}
	if (c.tgid != s->pid) {
		refuse(s, &n, &c, EPERM, "caller outside the session's process");
		if (s->state < SESSION_READY)
			session_kill(s, "handshake notification from another process");
		return;
	}
	switch (s->state) {
	case SESSION_VERIFY:
		verify(s, &n, &c);
		break;
	case SESSION_PROBE_CREATE:
		/* The probe is the broker's, and needs no kernel faults. */
		if (c.path != VIA_DEVICE || (c.flags & ~CREATE_FLAGS) ||
		    !(c.flags & UFFD_USER_MODE_ONLY)) {
			refuse(s, &n, &c, EPERM, "bad probe creation");
			session_kill(s, "bad probe creation");
		} else if (still_pending(s, &n)) {
			s->state = SESSION_PROBE_ATTACH;
			respond(s, &n, 0, true);
		}
		break;
	case SESSION_READY:
		decide(s, &n, &c);
		break;
	default:
		refuse(s, &n, &c, EPERM, "creation out of order");
		break;
	}
}
