/* SPDX-License-Identifier: ISC */
/*
 * grant.c - a ready session's creations (docs/design.md §3): the grant
 * decision on each supervised creation, the Attach that initialises the new
 * uffd with the features granted, and the Status a client asks for.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "phase.h"

static void
fill_status(const struct session *s, WireReply *reply,
    UffdBroker__V1__StatusReply *st)
{
	int live = session_live_uffds(s);

	st->live_uffds = live < 0 ? 0 : (uint32_t)live;
	st->max_uffds = s->grant.max_uffds;
	st->pending = s->pending;
	st->granted_total = s->granted;
	st->refused_total = s->refused;
	st->last_refusal = s->last_refusal;	/* NULL: absent */
	reply->body_case = UFFD_BROKER__V1__REPLY__BODY_STATUS_REPLY;
	reply->status_reply = st;
}

/*
 * A restart (docs/upgrade.md): a client whose Attach the killed broker read
 * sends it again. These two cases are answered as the killed broker would
 * have; anything else is refused as ever.
 */

/*
 * The kernel marks an initialised uffd's features with this bit of its own
 * (fs/userfaultfd.c, UFFD_FEATURE_INITIALIZED), which its fdinfo shows.
 */
#define FEATURE_INITIALIZED	(1ULL << 31)

/*
 * The features and ioctls the kernel shows for a uffd (its fdinfo), if it
 * is initialised.
 */
static bool
uffd_api_of(int fd, uint64_t *features, uint64_t *ioctls)
{
	char value[96];
	unsigned long long api, io;
	unsigned int f;

	/* "API:\t<UFFD_API>:<the context's features>:<its ioctls>" */
	if (!proc_fdinfo_field(fd, "API:", value, sizeof(value)) ||
	    sscanf(value, "%llx:%x:%llx", &api, &f, &io) != 3 ||
	    !(f & FEATURE_INITIALIZED))
		return false;
	*features = f & ~FEATURE_INITIALIZED;
	*ioctls = io;
	return true;
}

/* A uffd by its inode: each has its own (an anonymous inode of its own). */
static uint64_t
fd_ino(int fd)
{
	struct stat sb;

	return fstat(fd, &sb) == 0 ? (uint64_t)sb.st_ino : 0;
}

static void
attach_reply(struct session *s, uint64_t features, uint64_t ioctls,
    const char *text)
{
	UffdBroker__V1__AttachReply ar = UFFD_BROKER__V1__ATTACH_REPLY__INIT;
	WireReply reply = UFFD_BROKER__V1__REPLY__INIT;

	ar.features = features;
	ar.ioctls = ioctls;
	reply.body_case = UFFD_BROKER__V1__REPLY__BODY_ATTACH;
	reply.attach = &ar;
	session_reply(s, UFFD_BROKER__V1__STATUS__OK, &reply, "%s", text);
}

/*
 * The uffd is in the session's tracker: granted already (by the killed
 * broker, whose reply was lost, or this one: a copy of the request the
 * client sent again). Answered again. Counted only if the state still has
 * it pending: the killed broker tracked it and died before it wrote so
 * (this is then the first request since the restart).
 */
static bool
attach_granted_already(struct session *s, int fd)
{
	uint64_t features, ioctls;

	if (!proc_epoll_has(s->acct->tracker, fd) ||
	    !uffd_api_of(fd, &features, &ioctls))
		return false;
	/* Written down by the killed broker, then tracked: seen. */
	if (s->attach_ino != 0 && fd_ino(fd) == s->attach_ino) {
		s->attach_ino = 0;
		registry_session_changed(s);
	}
	close(fd);
	if (s->restarted && s->pending > 0) {
		session_set_pending(s, s->pending - 1);
		s->acct->live_bound++;
		registry_account_changed(s->acct);
		s->granted++;
		if (s->rule != NULL)
			s->rule->granted++;
		audit_session(s, "uffd_adopted", "session=%llu pid=%d uid=%u "
		    "reason=\"granted by the broker that was killed\"",
		    (unsigned long long)s->id, (int)s->pid, (unsigned)s->uid);
	}
	attach_reply(s, features, ioctls, "uffd granted (answered again)");
	return true;
}

/*
 * An Attach's uffd is written down (with the fd store on) before it is
 * initialised, and forgotten once it is tracked: a broker killed in between
 * leaves its successor the uffd to know it by when the client sends the
 * Attach again.
 */

static void
attach_note(struct session *s, uint64_t ino)
{
	if (!s->b->store.on || ino == 0)
		return;
	s->attach_ino = ino;
	registry_session_changed(s);
	store_sync_send(s->b);
}

/*
 * UFFDIO_API said the uffd is not fresh, and it is the one a killed broker
 * wrote down before it initialised it: that broker did, with the features
 * asked, and died before it tracked it. (The client cannot initialise a
 * uffd itself: its filter forbids UFFDIO_API.)
 */
static bool
attach_initialised_by_the_killed(struct session *s, int fd, uint64_t features,
    struct uffdio_api *api)
{
	uint64_t shown, ioctls;

	if (!uffd_api_of(fd, &shown, &ioctls) || shown != features)
		return false;
	api->features = features;
	api->ioctls = ioctls;
	audit_session(s, "uffd_adopted", "session=%llu pid=%d uid=%u "
	    "reason=\"initialised by the broker that was killed\"",
	    (unsigned long long)s->id, (int)s->pid, (unsigned)s->uid);
	return true;
}

/*
 * A uffd written down as being initialised, and never tracked: the session
 * ends, or its creation expires, before the client sends the Attach again
 * after a restart (or tracking it failed). The client may hold it
 * initialised, where no count sees it: it counts against the address
 * space, for its life.
 */
void
attach_unseen(struct session *s)
{
	if (s->attach_ino == 0)
		return;
	/* Tracked after all (by the killed broker, just before it died). */
	if (s->acct != NULL && !proc_epoll_has_ino(s->acct->tracker,
	    s->attach_ino, 0)) {
		s->acct->unseen++;
		s->acct->live_bound++;
		registry_account_changed(s->acct);
	}
	audit_session(s, "uffd_unseen", "session=%llu pid=%d uid=%u "
	    "reason=\"initialised and not tracked: counted for the address "
	    "space's life\"", (unsigned long long)s->id, (int)s->pid,
	    (unsigned)s->uid);
	s->attach_ino = 0;
	registry_session_changed(s);
}

void
grant_attach(struct session *s, const WireRequest *req, int fd)
{
	uint64_t features = req->attach->features;
	uint64_t allowed = s->grant.features;
	UffdBroker__V1__AttachReply ar = UFFD_BROKER__V1__ATTACH_REPLY__INIT;
	WireReply reply = UFFD_BROKER__V1__REPLY__INIT;
	struct epoll_event ev = { .events = 0 };
	struct uffdio_api api;
	char names[512];
	uint64_t ino;
	int rc;
	bool adopted = false, written;

	TEST_HOOK(s->b, "attach-read");
	/*
	 * A copy sent again of one already granted (after a restart, the
	 * client sends again what it was not answered): answered again,
	 * nothing counted, whether a creation is pending or not.
	 */
	if (attach_granted_already(s, fd))
		return;
	if (s->pending == 0) {
		close(fd);
		session_reply(s, UFFD_BROKER__V1__STATUS__OUT_OF_ORDER, NULL,
		    "attach without a supervised creation");
		return;
	}
	if (features & ~allowed) {
		close(fd);
		session_set_pending(s, s->pending - 1);
		s->refused++;
		if (s->rule != NULL)
			s->rule->refused++;
		audit_session(s, "uffd_refused", "session=%llu pid=%d uid=%u "
		    "rule=%s reason=\"features not granted\" requested=0x%llx "
		    "allowed=0x%llx", (unsigned long long)s->id, (int)s->pid,
		    (unsigned)s->uid, s->rule_name, (unsigned long long)features,
		    (unsigned long long)allowed);
		session_reply(s, UFFD_BROKER__V1__STATUS__DENIED, NULL,
		    "features 0x%llx are not granted (allowed: 0x%llx)",
		    (unsigned long long)(features & ~allowed),
		    (unsigned long long)allowed);
		return;
	}
	/* A killed broker's, written down: known by its inode. */
	ino = fd_ino(fd);
	written = s->attach_ino != 0 && ino == s->attach_ino;
	if (!written)
		attach_unseen(s);	/* another uffd than the one written */
	attach_note(s, ino);
	if ((rc = proc_uffd_api(fd, features, &api)) < 0 &&
	    !(adopted = rc == -EINVAL && written &&
	    attach_initialised_by_the_killed(s, fd, features, &api))) {
		close(fd);
		/* Not initialised here; the one written down may have been. */
		if (written)
			attach_unseen(s);
		s->attach_ino = 0;
		session_reply(s, rc == -EINVAL ? UFFD_BROKER__V1__STATUS__BAD_FD :
		    UFFD_BROKER__V1__STATUS__FAILED, NULL,
		    "UFFDIO_API with features 0x%llx failed: %s%s",
		    (unsigned long long)features, strerror(-rc),
		    rc == -EINVAL ? " (not a fresh uffd, or features unknown "
		    "to this kernel)" : "");
		return;
	}
	TEST_HOOK(s->b, "attach-initialised");
	session_set_pending(s, s->pending - 1);
	/* Adopted: the killed broker may have tracked it before it died. */
	rc = adopted && proc_epoll_has(s->acct->tracker, fd) ? 0 :
	    epoll_ctl(s->acct->tracker, EPOLL_CTL_ADD, fd, &ev);
	close(fd);
	TEST_HOOK(s->b, "attach-tracked");
	if (rc < 0) {
		audit_session(s, "warning", "session=%llu: tracking a granted "
		    "uffd error=\"%s\"", (unsigned long long)s->id,
		    strerror(errno));
		attach_unseen(s);
		session_reply(s, UFFD_BROKER__V1__STATUS__FAILED, NULL,
		    "broker could not track the uffd");
		session_kill(s, "uffd tracking failed");
		return;
	}
	s->attach_ino = 0;	/* tracked */
	s->acct->live_bound++;
	registry_account_changed(s->acct);
	s->granted++;
	if (s->rule != NULL)
		s->rule->granted++;
	/* Not counted here: live_at_most is exact after a count near the quota. */
	policy_feature_names(features, names, sizeof(names));
	audit_session(s, "uffd_granted", "session=%llu pid=%d uid=%u "
	    "rule=%s features=\"%s\" live_at_most=%u max=%u",
	    (unsigned long long)s->id, (int)s->pid, (unsigned)s->uid,
	    s->rule_name, names, s->acct->live_bound, s->grant.max_uffds);
	/* UFFDIO_API reports every feature the kernel has; the uffd has these. */
	ar.features = features;
	ar.ioctls = api.ioctls;
	reply.body_case = UFFD_BROKER__V1__REPLY__BODY_ATTACH;
	reply.attach = &ar;
	session_reply(s, UFFD_BROKER__V1__STATUS__OK, &reply, "uffd granted");
}

void
grant_status(struct session *s, const WireRequest *req, int fd)
{
	UffdBroker__V1__StatusReply st = UFFD_BROKER__V1__STATUS_REPLY__INIT;
	WireReply reply = UFFD_BROKER__V1__REPLY__INIT;

	(void)req;
	(void)fd;
	fill_status(s, &reply, &st);
	session_reply(s, UFFD_BROKER__V1__STATUS__OK, &reply, "%u of %u uffds live",
	    st.live_uffds + st.pending, st.max_uffds);
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

/* The grant decision for a creation by a ready session. */
void
grant_decide(struct session *s, const struct seccomp_notif *n,
    const struct creation *c)
{
	const struct grant *g = &s->grant;
	struct listener *l = s->lis;
	struct account *a = s->acct;
	unsigned int live;
	int rc;
	char why[96 + POLICY_NAME_MAX];

	if (c->path == VIA_SYSCALL && !session_via_syscall(s)) {
		notif_refuse(l, s, n, c, EPERM,
		    "userfaultfd(2) is not brokered here; use /dev/userfaultfd");
		return;
	}
	if (c->path == VIA_DEVICE && session_via_syscall(s)) {
		notif_refuse(l, s, n, c, EPERM, "this session creates by "
		    "userfaultfd(2); it has no device");
		return;
	}
	if (c->flags & ~CREATE_FLAGS) {
		notif_refuse(l, s, n, c, EINVAL, "unknown creation flags");
		return;
	}
	if (!(c->flags & UFFD_USER_MODE_ONLY)) {
		if (!g->kernel_faults) {
			snprintf(why, sizeof(why), "kernel faults not granted "
			    "(rule '%s' is user mode: create with "
			    "UFFDC_USER_MODE_ONLY)", s->rule_name);
			notif_refuse(l, s, n, c, EACCES, why);
			return;
		}
		if (c->path == VIA_SYSCALL && !kernel_allows_kernel_faults(c->tid)) {
			notif_refuse(l, s, n, c, EPERM, "the kernel allows this process "
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
		notif_refuse(l, s, n, c, EPERM, rc == -ESRCH ? "address space gone: "
		    "the process exec'd" : "dummy page unusable");
		session_kill(s, rc == -ESRCH ? "address space gone (exec)" :
		    "liveness probe failed (dummy page unusable)");
		return;
	}
	/*
	 * The quota is the address space's: CLONE_VM children share it. The
	 * uffds are counted only when the bound says the quota may be reached.
	 */
	if (a->live_bound + a->pending >= g->max_uffds &&
	    account_count(a) < 0) {
		notif_refuse(l, s, n, c, EAGAIN, "cannot count the session's live "
		    "uffds just now");
		return;
	}
	live = a->live_bound + a->pending;
	if (live >= g->max_uffds) {
		snprintf(why, sizeof(why), "quota reached: %u of %u uffds live",
		    live, g->max_uffds);
		notif_refuse(l, s, n, c, EDQUOT, why);
		return;
	}
	if (!notif_pending(l, n))
		return;
	session_set_pending(s, s->pending + 1);
	s->continued_id = n->id;
	clock_gettime(CLOCK_MONOTONIC, &s->last_continue);
	/* The last refusal is no longer the news (StatusReply.last_refusal). */
	free(s->last_refusal);
	s->last_refusal = NULL;
	session_sync_fds(s);	/* before the new uffd can be sent */
	notif_respond(l, n, 0, true);
}
