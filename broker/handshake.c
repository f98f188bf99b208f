/* SPDX-License-Identifier: ISC */
/*
 * handshake.c - a session from Hello to ready (docs/design.md §3): the
 * listener and the filter's proof, the verification that earns the device
 * fd, the probe creation and the probe that makes the session ready.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "log.h"
#include "phase.h"

/* Addresses above this are not user space on any x86-64 or arm64 paging mode. */
#define USER_ADDR_LIMIT		(1ULL << 56)

/*
 * The fields of a Hello or ForkHello, checked alone: pure, for the fuzzer
 * (tests/fuzz/fuzz_wire.c) as for the broker. Returns true, or false with
 * the reply's status and reason.
 */
bool
handshake_hello_check(uint32_t version, uint64_t dummy_page,
    uint32_t page_size, WireStatus *status, char *why, size_t len)
{
	if (version != WIRE_VERSION) {
		*status = UFFD_BROKER__V1__STATUS__BAD_VERSION;
		snprintf(why, len, "protocol version %u is not spoken here "
		    "(only %u)", version, WIRE_VERSION);
		return false;
	}
	if (page_size != (uint32_t)sysconf(_SC_PAGESIZE) || dummy_page == 0 ||
	    dummy_page % page_size != 0 || dummy_page >= USER_ADDR_LIMIT) {
		*status = UFFD_BROKER__V1__STATUS__BAD_MESSAGE;
		snprintf(why, len, "dummy page 0x%llx / page size %u is not a "
		    "page of user memory", (unsigned long long)dummy_page,
		    page_size);
		return false;
	}
	return true;
}

/*
 * Checks common to Hello and ForkHello. Replies and returns false when the
 * request is refused.
 */
static bool
hello_valid(struct session *s, uint32_t version, uint64_t dummy_page,
    uint32_t page_size)
{
	WireStatus status;
	char why[128];

	if (!handshake_hello_check(version, dummy_page, page_size, &status,
	    why, sizeof(why))) {
		session_reply(s, status, NULL, "%s", why);
		return false;
	}
	s->dummy_page = dummy_page;
	s->page_size = page_size;
	return true;
}

static void
hello_reply(struct session *s, const char *text)
{
	UffdBroker__V1__HelloReply hr = UFFD_BROKER__V1__HELLO_REPLY__INIT;
	WireReply reply = UFFD_BROKER__V1__REPLY__INIT;

	hr.version = WIRE_VERSION;
	hr.kernel_faults = s->grant.kernel_faults;
	hr.allowed_features = s->grant.features;
	hr.max_uffds = s->grant.max_uffds;
	hr.has_creation = true;
	hr.creation = session_via_syscall(s) ? UFFD_BROKER__V1__CREATION__SYSCALL :
	    UFFD_BROKER__V1__CREATION__DEVICE;
	reply.body_case = UFFD_BROKER__V1__REPLY__BODY_HELLO;
	reply.hello = &hr;
	session_reply(s, UFFD_BROKER__V1__STATUS__OK, &reply, "%s", text);
}

/*
 * One session per process, for the process's life: one it has now, or one
 * that ended while it lived on (it may still hold uffds).
 */
static bool
pid_has_session(const struct session *s)
{
	const struct session *o;

	/* A connection that has not said Hello yet is not a session. */
	TAILQ_FOREACH(o, REGISTRY_SESSIONS(&s->b->reg), entry)
		if (o != s && o->pid == s->pid && o->refusal == NULL &&
		    o->state > SESSION_HELLO)
			return true;
	return session_pid_spent(s->b, s->pid);
}

static void	hello_proven(struct session *s, int fd);
static void	probe_proven(struct session *s);

/*
 * A listener another session holds, or a process that has or had a
 * session: refused, and the session ends. Returns true then.
 */
static bool
hello_conflicts(struct session *s, int fd)
{
	if (listener_in_use(s->b, fd)) {
		session_reply(s, UFFD_BROKER__V1__STATUS__BAD_FD, NULL,
		    "this listener already belongs to another session");
		session_kill(s, "listener shared with another session");
		return true;
	}
	if (pid_has_session(s)) {
		session_reply(s, UFFD_BROKER__V1__STATUS__OUT_OF_ORDER, NULL,
		    "process %d has or had a session: one per process",
		    (int)s->pid);
		session_kill(s, "second session for one process");
		return true;
	}
	return false;
}

void
handshake_hello(struct session *s, const WireRequest *req, int fd)
{
	const UffdBroker__V1__Hello *h = req->hello;

	if (!hello_valid(s, h->version, h->dummy_page, h->page_size)) {
		close(fd);
		return;
	}
	if (hello_conflicts(s, fd)) {
		close(fd);
		return;
	}
	/* The filter must be the library's fragment (verifier.c). */
	if (verifier_needed(s)) {
		s->proof_fd = fd;
		verifier_ask(s, PROOF_FILTER);
		return;
	}
	hello_proven(s, fd);
}

/* The rest of Hello, once the peer's filter is proven (or need not be). */
static void
hello_proven(struct session *s, int fd)
{
	/*
	 * Again: while this Hello's proof ran, another with the same listener,
	 * or from the same process, may have been proven and taken it.
	 */
	if (hello_conflicts(s, fd)) {
		close(fd);
		return;
	}
	if ((s->lis = listener_new(s->b, fd, s->id, s->uid,
	    s->grant.max_sessions_per_uid)) == NULL) {
		close(fd);
		session_reply(s, UFFD_BROKER__V1__STATUS__FAILED, NULL,
		    "broker could not watch the listener");
		session_kill(s, "listener not watched");
		return;
	}
	TAILQ_INSERT_TAIL(&s->lis->members, s, lis_entry);
	/* Without a device there is no fd to earn: go straight to the probe. */
	if (session_via_syscall(s)) {
		session_advance(s, SESSION_PROBE_CREATE);
		hello_reply(s, "listener received; create the probe with "
		    "userfaultfd(2)");
	} else {
		session_advance(s, SESSION_VERIFY);
		hello_reply(s, "listener received; prove coverage with the "
		    "verification ioctl");
	}
}

void
handshake_fork_hello(struct session *s, const WireRequest *req, int fd)
{
	const UffdBroker__V1__ForkHello *h = req->fork_hello;

	(void)fd;
	if (!s->grant.forked_sessions) {
		session_reply(s, UFFD_BROKER__V1__STATUS__DENIED, NULL,
		    "forked sessions are not allowed by rule '%s'", s->rule_name);
		session_kill(s, "forked sessions not allowed");
		return;
	}
	if (pid_has_session(s)) {
		session_reply(s, UFFD_BROKER__V1__STATUS__OUT_OF_ORDER, NULL,
		    "process %d has or had a session: one per process",
		    (int)s->pid);
		session_kill(s, "second session for one process");
		return;
	}
	if (!hello_valid(s, h->version, h->dummy_page, h->page_size))
		return;
	/* Bound to a listener when its probe creation arrives on one. */
	s->forked = true;
	session_advance(s, SESSION_PROBE_CREATE);
	hello_reply(s, session_via_syscall(s) ?
	    "create the probe with userfaultfd(2) under the inherited filter" :
	    "create the probe on the inherited device fd");
}


void
handshake_probe(struct session *s, const WireRequest *req, int fd)
{
	struct uffdio_register reg = {
		.range = { .start = s->dummy_page, .len = s->page_size },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	struct uffdio_api api;
	int rc;

	(void)req;
	/* The library's dummy page is private; a shared one is refused below. */
	if ((rc = proc_uffd_api(fd, UFFD_FEATURE_MISSING_SHMEM, &api)) < 0) {
		close(fd);
		session_reply(s, UFFD_BROKER__V1__STATUS__BAD_FD, NULL,
		    "probe uffd refused by UFFDIO_API (%s): not a fresh uffd",
		    strerror(-rc));
		session_kill(s, "probe uffd not fresh");
		return;
	}
	if (ioctl(fd, UFFDIO_REGISTER, &reg) < 0) {
		rc = errno;
		close(fd);
		session_reply(s, UFFD_BROKER__V1__STATUS__FAILED, NULL,
		    "dummy page 0x%llx cannot be registered on the probe: %s",
		    (unsigned long long)s->dummy_page, strerror(rc));
		session_kill(s, "dummy page not registrable");
		return;
	}
	s->probe_uffd = fd;
	store_put(s->b, 's', s->id, ".probe", fd);
	/* Before anything follows the probe's address space: it is the peer's. */
	if (verifier_needed(s)) {
		verifier_ask(s, PROOF_PROBE);
		return;
	}
	probe_proven(s);
}

/*
 * The verifier's outcome. Refused: the peer is told why, and the session
 * ends. (The session may have ended meanwhile: then no outcome comes.)
 */
void
handshake_proven(struct session *s, const char *why)
{
	enum proof_job job = s->proof;
	int fd = s->proof_fd;

	registry_session_changed(s);
	s->proof = PROOF_NONE;
	s->proof_fd = -1;
	session_watch_sync(s);
	if (why == NULL) {
		if (job == PROOF_FILTER)
			hello_proven(s, fd);
		else
			probe_proven(s);
		return;
	}
	if (fd >= 0)
		close(fd);
	audit_session(s, "session_refused", "session=%llu pid=%d uid=%u gid=%u "
	    "rule=%s reason=\"%s not proven: %s\"", (unsigned long long)s->id,
	    (int)s->pid, (unsigned)s->uid, (unsigned)s->gid, s->rule_name,
	    job == PROOF_FILTER ? "filter" : "probe", why);
	(void)session_reply(s, UFFD_BROKER__V1__STATUS__DENIED, NULL,
	    "%s not proven: %s", job == PROOF_FILTER ? "filter" : "probe", why);
	session_kill(s, job == PROOF_FILTER ? "filter not proven" :
	    "probe not proven");
}

/* The rest of the probe, once it is proven (or need not be). */
static void
probe_proven(struct session *s)
{
	const char *why;
	char grant[640];

	session_join_address_space(s);
	if (!liveness_probe(s, &why)) {
		session_reply(s, UFFD_BROKER__V1__STATUS__FAILED, NULL,
		    "liveness probe failed: %s", why);
		session_kill(s, why);
		return;
	}
	session_advance(s, SESSION_READY);
	policy_grant_text(&s->grant, grant, sizeof(grant));
	audit_session(s, "session_open", "session=%llu pid=%d uid=%u gid=%u "
	    "rule=%s forked=%s listener=%llu address_space=%llu creation=%s %s "
	    "handshake_ms=%.3f",
	    (unsigned long long)s->id, (int)s->pid, (unsigned)s->uid,
	    (unsigned)s->gid, s->rule_name, s->forked ? "yes" : "no",
	    (unsigned long long)s->lis->id, (unsigned long long)s->acct->mm_id,
	    session_via_syscall(s) ? "syscall" : "device", grant,
	    broker_elapsed_ms(&s->started));
	session_reply(s, UFFD_BROKER__V1__STATUS__OK, NULL, "session ready");
}

/*
 * The peer's first trapped ioctl: it arrived on the listener the broker holds,
 * from the peer's thread group. With the peer single-threaded while this
 * thread is parked, every thread it will ever have inherits the filter, so it
 * may hold the device fd: install it as the ioctl's result.
 */
void
handshake_verify(struct session *s, const struct seccomp_notif *n,
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
		notif_refuse(l, s, n, c, EPERM, "verification must be the device ioctl");
		session_kill(s, "verification by the wrong system call");
		return;
	}
	threads = proc_threads(s->pid);
	if (threads != 1) {
		notif_refuse(l, s, n, c, EPERM, "several threads at the handshake");
		session_kill(s, "peer not single-threaded at verification");
		return;
	}
	/* Its fds would be anyone's of its user (pidfd_getfd(2)). */
	if (proc_dumpable(s->pid)) {
		notif_refuse(l, s, n, c, EPERM, "peer is dumpable: another process of "
		    "its user could take the device fd");
		session_kill(s, "peer dumpable at verification");
		return;
	}
	/*
	 * The pid read from /proc is still the peer's: its pidfd is live.
	 * (A poll, not pidfd_send_signal(0): the jailed broker may not signal
	 * other users' processes.)
	 */
	if (!proc_pidfd_alive(s->pidfd) || !notif_pending(l, n)) {
		session_kill(s, "peer vanished during verification");
		return;
	}
	/*
	 * Written as verified before the fd goes: a broker killed after it
	 * resumes at the probe; one killed before it finds this notification
	 * unanswered, and undoes the step (store.c, uncount()).
	 */
	session_advance(s, SESSION_PROBE_CREATE);
	s->continued_id = n->id;
	store_sync_send(s->b);
	fd = ioctl(l->fd, SECCOMP_IOCTL_NOTIF_ADDFD, &addfd);
	if (fd < 0) {
		audit_session(s, "warning", "session=%llu: installing the device "
		    "fd error=\"%s\"", (unsigned long long)s->id,
		    strerror(errno));
		session_kill(s, "device fd not installed");
		return;
	}
	audit_session(s, "session_verified", "session=%llu pid=%d uid=%u "
	    "device_fd=%d", (unsigned long long)s->id, (int)s->pid,
	    (unsigned)s->uid, fd);
}

/* The probe creation: the broker's own liveness handle needs no kernel faults. */
void
handshake_probe_create(struct session *s, const struct seccomp_notif *n,
    const struct creation *c)
{
	enum creation_path path = session_via_syscall(s) ? VIA_SYSCALL :
	    VIA_DEVICE;

	if (c->path != path || (c->flags & ~CREATE_FLAGS) ||
	    !(c->flags & UFFD_USER_MODE_ONLY)) {
		notif_refuse(s->lis, s, n, c, EPERM, "bad probe creation");
		session_kill(s, "bad probe creation");
	} else if (notif_pending(s->lis, n)) {
		/* Fds flow before the probe can be sent. */
		session_advance(s, SESSION_PROBE_ATTACH);
		notif_respond(s->lis, n, 0, true);
	}
}
