/* SPDX-License-Identifier: ISC */
/*
 * supervise.c - the broker's side of each client's seccomp listener
 * (docs/design.md §3): reading a notification, finding its session, and
 * handing it to the phase its state permits (handshake.c: the verification
 * that earns the device fd, the probe creation; grant.c: the grant decision
 * for every later creation); the listeners' lives.
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
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include "log.h"
#include "phase.h"

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

bool
listener_in_use(struct broker *b, int fd)
{
	size_t pos;
	bool found;

	/* A listener held twice would let one family answer for another. */
	return !registry_listener_search(&b->reg, fd, &pos, &found) || found;
}

struct listener *
listener_new(struct broker *b, int fd, uint64_t id, uid_t uid,
    unsigned int max_orphans)
{
	struct listener *l;
	size_t pos;
	bool found;

	if (!registry_listener_search(&b->reg, fd, &pos, &found) || found ||
	    !registry_listener_room(&b->reg))
		return NULL;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	l->b = b;
	l->id = id;
	l->uid = uid;
	l->max_orphans = max_orphans;
	l->fd = fd;
	l->refs = 1;
	TAILQ_INIT(&l->members);
	l->w = (struct watch){ .kind = WATCH_NOTIFY, .l = l };
	/* Best effort: before Linux 6.6 this is EINVAL (see broker.h). */
	(void)ioctl(fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS,
	    SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
	if (broker_watch(b, fd, &l->w, EPOLLIN) < 0) {
		free(l);
		return NULL;
	}
	registry_add_listener(&b->reg, l, pos);
	store_put(b, 'l', id, "", fd);
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

	registry_bury_listener(&b->reg, l);
	broker_unwatch(b, l->fd);
	close(l->fd);
	store_drop(b, 'l', l->id, "");
	l->fd = -1;
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
	registry_listener_changed(l);	/* orphaned */
	if (l->hung_up) {
		listener_close(l);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &l->orphaned);
	TAILQ_FOREACH(o, REGISTRY_LISTENERS(&l->b->reg), entry)
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

	while ((l = registry_reap_listener(&b->reg)) != NULL) {
		free(l);
	}
}

/* Answer a notification; a vanished caller (ENOENT) is not an error. */
void
notif_respond(struct listener *l, const struct seccomp_notif *n, int error,
    bool cont)
{
	struct seccomp_notif_resp resp = {
		.id = n->id,
		.error = error ? -error : 0,
		.flags = cont ? SECCOMP_USER_NOTIF_FLAG_CONTINUE : 0,
	};

	store_sync_send(l->b);	/* what the caller is answered is written first */
	if (ioctl(l->fd, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0 &&
	    errno != ENOENT)
		audit_uid(l->b, l->uid, "warning", "listener=%llu: answering "
		    "notification error=\"%s\"", (unsigned long long)l->id,
		    strerror(errno));
}

bool
notif_pending(struct listener *l, const struct seccomp_notif *n)
{
	__u64 id = n->id;

	return ioctl(l->fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

/* Refuse a creation; s is NULL when the caller has no session. */
void
notif_refuse(struct listener *l, struct session *s, const struct seccomp_notif *n,
    const struct creation *c, int error, const char *why)
{
	if (s != NULL) {
		s->refused++;
		if (s->rule != NULL)
			s->rule->refused++;
		/* The creation gets an errno; a Status tells the client why. */
		free(s->last_refusal);
		s->last_refusal = strdup(why);
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
	notif_respond(l, n, error, false);
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

	TAILQ_FOREACH(s, REGISTRY_SESSIONS(&l->b->reg), entry)
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
session_of(struct listener *l, pid_t tgid, bool leader)
{
	struct session *s;

	/* The listener's own sessions: a grant's is among them. */
	TAILQ_FOREACH(s, &l->members, lis_entry)
		if (s->pid == tgid && s->refusal == NULL &&
		    (!leader || proc_pidfd_alive(s->pidfd)))
			return s;
	/* A forked session's first creation, on its family's listener. */
	TAILQ_FOREACH(s, REGISTRY_SESSIONS(&l->b->reg), entry) {
		if (s->pid != tgid || s->refusal != NULL || s->lis != NULL ||
		    !s->forked || s->state != SESSION_PROBE_CREATE)
			continue;
		if (leader && !proc_pidfd_alive(s->pidfd))
			continue;
		s->lis = l;
		l->refs++;
		TAILQ_INSERT_TAIL(&l->members, s, lis_entry);
		registry_session_changed(s);
		registry_listener_changed(l);
		audit_session(s, "session_joined", "session=%llu pid=%d uid=%u "
		    "listener=%llu", (unsigned long long)s->id, (int)s->pid,
		    (unsigned)s->uid, (unsigned long long)l->id);
		return s;
	}
	return NULL;
}

/*
 * What a creation means in each state, the notifications' counterpart of
 * session.c's request table: in any other state it is out of order.
 */
static void (*const notifications[])(struct session *,
    const struct seccomp_notif *, const struct creation *) = {
	[SESSION_VERIFY] = handshake_verify,		/* earns the device fd */
	[SESSION_PROBE_CREATE] = handshake_probe_create,	/* the liveness handle */
	[SESSION_READY] = grant_decide,		/* a grant, or not */
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
		registry_listener_changed(l);
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
	/* In the state before it is answered: see store_restart(). */
	l->last_id = n.id;
	l->has_last_id = true;
	registry_listener_changed(l);
	/*
	 * Written now (one small journal entry): a broker killed from here
	 * on leaves its successor the id to find this notification by, even
	 * the first of a listener, whose ids start anywhere.
	 */
	store_sync_send(l->b);
	TEST_HOOK(l->b, "received");
	c = classify(&n);
	s = NULL;
	/*
	 * A thread whose tid is the pid of a session's live process is that
	 * process's leader (a live process's pid is not reused, and only its
	 * leader has it as tid): its thread group needs no /proc lookup.
	 */
	if (c.path != NOT_A_CREATION &&
	    (s = session_of(l, c.tid, true)) != NULL)
		c.tgid = c.tid;
	else {
		c.tgid = proc_tgid(c.tid);
		if (c.path != NOT_A_CREATION)
			s = session_of(l, c.tgid, false);
	}
	/* The library's fragment sends creations only. */
	if (c.path == NOT_A_CREATION) {
		notif_refuse(l, s, &n, &c, ENOSYS, "not a uffd creation");
		listener_hangup(l, "its filter sends other system calls: not "
		    "the library's fragment");
		return;
	}
	if (s == NULL) {
		notif_refuse(l, NULL, &n, &c, EPERM, "caller has no session on this "
		    "listener");
		owner_check(l);
		return;
	}
	registry_session_changed(s);	/* its counters, its pending */
	if (notifications[s->state] == NULL) {
		notif_refuse(l, s, &n, &c, EPERM, "creation out of order");
		return;
	}
	notifications[s->state](s, &n, &c);
}

/* No task is left under the filter (or it failed): every session on it ends. */
void
listener_hangup(struct listener *l, const char *why)
{
	struct session *s;

	l->hung_up = true;
	l->refs++;	/* hold it while its sessions let go */
	/* Each leaves the list as it ends. */
	while ((s = TAILQ_FIRST(&l->members)) != NULL)
		session_kill(s, why);
	listener_unref(l);
}
