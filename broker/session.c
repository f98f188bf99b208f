/* SPDX-License-Identifier: ISC */
/*
 * session.c - one connected client: its credentials, its state machine, its
 * end and what is left after it (spent records), and the requests it may
 * send (docs/design.md §5), handed to their phase (handshake.c, grant.c).
 * Every request gets exactly one reply; a request the session's state does
 * not permit is refused, loudly.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "phase.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD	77
#endif

#define FD_KIND_LISTENER	"anon_inode:seccomp notify"
#define FD_KIND_UFFD		"anon_inode:[userfaultfd]"


/*
 * What each state permits besides its requests (request_types below) and
 * its notifications (supervise.c): whether the peer may send fds in it.
 * READY permits them only while a continued creation awaits its Attach.
 */
static const struct state_rules {
	const char	*name;
	bool		fds;
} states[] = {
	[SESSION_HELLO] =	 { "hello",		true },	/* the listener */
	[SESSION_VERIFY] =	 { "verify",		false },
	[SESSION_PROBE_CREATE] = { "probe-create",	false },
	[SESSION_PROBE_ATTACH] = { "probe-attach",	true },	/* the probe */
	[SESSION_READY] =	 { "ready",		true },	/* new uffds */
	[SESSION_DEAD] =	 { "dead",		false },
};

static int session_welcome(struct session *);

static int
peer_pidfd(int sock, pid_t pid)
{
	socklen_t len = sizeof(int);
	int pidfd;

	if (getsockopt(sock, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == 0)
		return pidfd;
	/*
	 * Only a kernel without the option (before Linux 6.5) falls back to
	 * the pid; any other failure (the peer is gone) must not: its pid
	 * may be another process's by now.
	 */
	if (errno != ENOPROTOOPT)
		return -1;
	pidfd = proc_pidfd_open(pid);
	if (pidfd >= 0) {
		struct ucred cred;

		len = sizeof(cred);
		if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
		    cred.pid != pid) {
			close(pidfd);
			return -1;
		}
	}
	return pidfd;
}

/* Refused administrators' connections of one uid that may stay open. */
#define REFUSED_PER_UID		8

unsigned int
session_count_uid(const struct broker *b, uid_t uid, bool refused)
{
	const struct session *s;
	unsigned int n = 0;

	TAILQ_FOREACH(s, REGISTRY_SESSIONS(&b->reg), entry)
		if (s->uid == uid && (s->refusal != NULL) == refused)
			n++;
	return n;
}

/* Takes sock, which is closed on failure. */
struct session *
session_new(struct broker *b, int sock)
{
	struct session *s;
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		log_warn("getsockopt(SO_PEERCRED)");
		close(sock);
		return NULL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		log_warn("calloc");
		close(sock);
		return NULL;
	}
	s->b = b;
	s->id = registry_next_id(&b->reg);
	s->sock = sock;
	s->probe_uffd = -1;
	s->proof_fd = -1;
	s->pid = cred.pid;
	s->uid = cred.uid;
	s->gid = cred.gid;
	s->w_sock = (struct watch){ .kind = WATCH_SOCK, .s = s };
	s->w_pidfd = (struct watch){ .kind = WATCH_PIDFD, .s = s };
	clock_gettime(CLOCK_MONOTONIC, &s->started);
	s->pidfd = peer_pidfd(sock, s->pid);
	s->acct = account_new(b, s->id);
	if (s->pidfd < 0 || s->acct == NULL) {
		/* A peer that exits as it connects gets here: limited by uid. */
		audit_uid(b, s->uid, "warning", "session=%llu pid=%d: pidfd or "
		    "tracker error=\"%s\"", (unsigned long long)s->id,
		    (int)s->pid, strerror(errno));
		if (s->pidfd >= 0)
			close(s->pidfd);
		if (s->acct != NULL)
			account_unref(s->acct);
		close(sock);
		free(s);
		return NULL;
	}
	store_put(b, 's', s->id, ".sock", s->sock);
	store_put(b, 's', s->id, ".pidfd", s->pidfd);
	store_put(b, 'a', s->acct->mm_id, "", s->acct->tracker);
	access_admit(s);
	registry_add_session(&b->reg, s);
	if (broker_watch(b, sock, &s->w_sock, EPOLLIN | EPOLLRDHUP) < 0 ||
	    broker_watch(b, s->pidfd, &s->w_pidfd, EPOLLIN) < 0) {
		session_kill(s, "epoll_ctl failed");
		return NULL;
	}
	s->watching = EPOLLIN | EPOLLRDHUP;
	audit_session(s, "session_connect", "session=%llu pid=%d uid=%u gid=%u",
	    (unsigned long long)s->id, (int)s->pid, (unsigned)s->uid,
	    (unsigned)s->gid);
	return session_welcome(s) == 0 ? s : NULL;
}

/*
 * The broker speaks first (docs/design.md §5): a peer it admits may then
 * send its listener; a refused one reads why and is hung up. Until this
 * point its socket refused every fd (SO_PASSRIGHTS is off on the listening
 * socket and inherited), so no fd of a refused peer ever reaches the broker.
 * An administrator that no rule admits keeps the connection for
 * AdminStatus; one uid's such connections may not crowd out everyone's
 * session slots.
 * Returns 0, or -1 when the session ended.
 */
static int
session_welcome(struct session *s)
{
	UffdBroker__V1__Welcome w = UFFD_BROKER__V1__WELCOME__INIT;
	WireReply reply = UFFD_BROKER__V1__REPLY__INIT;
	char reason[LOG_QUOTED_MAX];

	if (s->refusal == NULL) {
		w.version = WIRE_VERSION;
		reply.body_case = UFFD_BROKER__V1__REPLY__BODY_WELCOME;
		reply.welcome = &w;
		return session_reply(s, UFFD_BROKER__V1__STATUS__OK, &reply,
		    "welcome: send Hello with your listener") < 0 ? -1 : 0;
	}
	/* The refusal quotes the peer's executable and cgroup. */
	audit_session(s, s->quota_hit ? "quota_hit" : "session_refused",
	    "session=%llu pid=%d uid=%u gid=%u rule=%s%s reason=%s",
	    (unsigned long long)s->id, (int)s->pid, (unsigned)s->uid,
	    (unsigned)s->gid, s->rule_name,
	    s->quota_hit ? " what=sessions" : "",
	    log_quote(reason, sizeof(reason), s->refusal));
	access_count_refusal(s);
	/* A limit is QUOTA (the client's EDQUOT); the rules' refusal DENIED. */
	if (session_reply(s, s->quota_hit ? UFFD_BROKER__V1__STATUS__QUOTA :
	    UFFD_BROKER__V1__STATUS__DENIED, NULL, "%s", s->refusal) < 0)
		return -1;
	if (!access_is_admin(s)) {
		session_kill(s, "refused");
		return -1;
	}
	if (session_count_uid(s->b, s->uid, true) > REFUSED_PER_UID) {
		audit_session(s, "session_refused", "session=%llu pid=%d uid=%u "
		    "reason=\"%u refused connections of this uid are pending: "
		    "hung up at once\"", (unsigned long long)s->id, (int)s->pid,
		    (unsigned)s->uid, REFUSED_PER_UID);
		session_kill(s, "refused");
		return -1;
	}
	return 0;
}

static void session_spend(struct session *);

static void
close_watched(struct broker *b, int *fd)
{
	if (*fd < 0)
		return;
	broker_unwatch(b, *fd);
	close(*fd);
	*fd = -1;
}

void
session_kill(struct session *s, const char *why)
{
	struct broker *b = s->b;

	if (s->state == SESSION_DEAD)
		return;
	registry_globals_changed(&b->reg);	/* its rule's counters */
	attach_unseen(s);
	if (s->refusal == NULL || s->state != SESSION_HELLO)
		audit_session(s, "session_end", "session=%llu pid=%d uid=%u "
		    "rule=%s state=%s forked=%s granted=%llu refused=%llu "
		    "reason=\"%s\"",
		    (unsigned long long)s->id, (int)s->pid, (unsigned)s->uid,
		    s->rule_name, states[s->state].name, s->forked ? "yes" : "no",
		    (unsigned long long)s->granted,
		    (unsigned long long)s->refused, why);
	if (s->state == SESSION_READY)
		session_set_pending(s, 0);
	session_spend(s);
	session_advance(s, SESSION_DEAD);
	/* Datagrams still queued may carry fds: closing releases them. */
	broker_unwatch(b, s->sock);
	if (s->paused) {
		s->paused = false;
		b->npaused--;
	}
	verifier_forget(s);
	if (s->proof_fd >= 0)
		close(s->proof_fd);	/* a listener, which we accepted */
	s->proof_fd = -1;
	closer_discard(b, s->sock, s->uid, s->id);
	store_drop(b, 's', s->id, ".sock");
	s->sock = -1;
	if (s->pidfd >= 0)
		store_drop(b, 's', s->id, ".pidfd");
	close_watched(b, &s->pidfd);
	if (s->lis != NULL) {
		TAILQ_REMOVE(&s->lis->members, s, lis_entry);
		listener_unref(s->lis);
	}
	s->lis = NULL;
	if (s->probe_uffd >= 0) {
		close(s->probe_uffd);
		store_drop(b, 's', s->id, ".probe");
	}
	s->probe_uffd = -1;
	if (s->acct != NULL)
		account_unref(s->acct);
	s->acct = NULL;
	registry_bury_session(&b->reg, s);
}

/* Free dead sessions once no epoll event of this turn can point at them. */
void
session_reap(struct broker *b)
{
	struct session *s;

	while ((s = registry_reap_session(&b->reg)) != NULL) {
		free(s->refusal);
		free(s->last_refusal);
		free(s);
	}
}

/*
 * The session creates by userfaultfd(2), supervised, and never holds the
 * device fd: on a broker without the device, and for a user-mode grant,
 * which needs none (any process may create a UFFD_USER_MODE_ONLY uffd
 * since Linux 5.11, docs/design.md fact 19).
 */
bool
session_via_syscall(const struct session *s)
{
	return s->b->via_syscall || !s->grant.kernel_faults;
}

const char *
session_state_name(enum session_state state)
{
	return states[state].name;
}

/*
 * The one place a session's state moves: only forward. The fd switch
 * moves with it, before whatever makes the peer act on the new state.
 */
void
session_advance(struct session *s, enum session_state to)
{
	if (to <= s->state)
		fatalx("session=%llu: state %s to %s is not forward",
		    (unsigned long long)s->id, states[s->state].name,
		    states[to].name);
	s->state = to;
	registry_session_changed(s);
	session_sync_fds(s);
}

struct account *
account_new(struct broker *b, uint64_t mm_id)
{
	struct account *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return NULL;
	a->b = b;
	if ((a->tracker = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		free(a);
		return NULL;
	}
	a->mm_id = mm_id;
	a->refs = 1;
	return a;
}

unsigned int
account_walk_begin(void)
{
	static unsigned int walks;

	return ++walks;
}

bool
account_walk_first(struct account *a, unsigned int walk)
{
	if (a == NULL || a->walk == walk)
		return false;
	a->walk = walk;
	return true;
}

void
account_unref(struct account *a)
{
	if (--a->refs > 0)
		return;
	registry_account_freed(a);
	close(a->tracker);
	store_drop(a->b, 'a', a->mm_id, "");
	free(a);
}

int
account_count(struct account *a)
{
	int n = proc_epoll_count(a->tracker);

	if (n >= 0)
		n += (int)a->unseen;
	if (n >= 0 && a->live_bound != (unsigned int)n) {
		a->live_bound = (unsigned int)n;
		registry_account_changed(a);
	}
	return n;
}

int
session_live_uffds(const struct session *s)
{
	return account_count(s->acct);
}

void
session_set_pending(struct session *s, unsigned int pending)
{
	s->acct->pending = s->acct->pending - s->pending + pending;
	s->pending = pending;
	registry_session_changed(s);
}

/*
 * The session ends. Unless both its process and its address space are gone,
 * keep what is left (see struct spent): the probe and the tracker while the
 * address space lives, the pidfd while the process does.
 */
static void
session_spend(struct session *s)
{
	struct spent *sp;
	bool alive, mm_alive;

	if (s->state != SESSION_READY || s->b->stopping)
		return;
	alive = proc_pidfd_alive(s->pidfd);
	mm_alive = liveness_zeropage(s->probe_uffd, s->dummy_page,
	    s->page_size) != -ESRCH;
	if ((!alive && !mm_alive) || (sp = calloc(1, sizeof(*sp))) == NULL)
		return;
	sp->b = s->b;
	sp->id = s->id;
	sp->pid = s->pid;
	sp->uid = s->uid;
	sp->pidfd = sp->probe_uffd = -1;
	sp->dummy_page = s->dummy_page;
	sp->page_size = s->page_size;
	if (alive) {
		broker_unwatch(s->b, s->pidfd);
		sp->pidfd = s->pidfd;
		s->pidfd = -1;
	}
	if (mm_alive) {
		sp->probe_uffd = s->probe_uffd;
		sp->acct = s->acct;
		s->probe_uffd = -1;
		s->acct = NULL;
	}
	registry_add_spent(&s->b->reg, sp);
}

/*
 * Let go of what is gone: the pidfd once the process exited, the probe and
 * the tracker once the address space is gone. True while anything is left.
 */
static bool
spent_update(struct spent *sp, bool all)
{
	int pidfd = sp->pidfd, probe = sp->probe_uffd;

	if (sp->pidfd >= 0 && (all || !proc_pidfd_alive(sp->pidfd))) {
		close(sp->pidfd);
		store_drop(sp->b, 's', sp->id, ".pidfd");
		sp->pidfd = -1;
	}
	if (sp->probe_uffd >= 0 && (all || liveness_zeropage(sp->probe_uffd,
	    sp->dummy_page, sp->page_size) == -ESRCH)) {
		if (!all)
			log_event("session_released", "session=%llu pid=%d "
			    "uid=%u live=%d reason=\"address space gone\"",
			    (unsigned long long)sp->id, (int)sp->pid,
			    (unsigned)sp->uid, account_count(sp->acct));
		close(sp->probe_uffd);
		store_drop(sp->b, 's', sp->id, ".probe");
		account_unref(sp->acct);
		sp->probe_uffd = -1;
		sp->acct = NULL;
	}
	if (sp->pidfd != pidfd || sp->probe_uffd != probe)
		registry_spent_changed(sp);	/* a restart would adopt them */
	return sp->pidfd >= 0 || sp->probe_uffd >= 0;
}

bool
session_pid_spent(struct broker *b, pid_t pid)
{
	struct spent *sp;

	TAILQ_FOREACH(sp, REGISTRY_SPENT(&b->reg), entry)
		if (sp->pid == pid && sp->pidfd >= 0 &&
		    proc_pidfd_alive(sp->pidfd))
			return true;
	return false;
}

unsigned int
session_spent_of_uid(struct broker *b, uid_t uid)
{
	struct spent *sp;
	unsigned int n = 0;

	TAILQ_FOREACH(sp, REGISTRY_SPENT(&b->reg), entry)
		if (sp->uid == uid && spent_update(sp, false))
			n++;
	return n;
}

/* Forget what is gone (everything at shut-down). */
void
session_spent_prune(struct broker *b, bool all)
{
	struct spent *sp, *next;

	for (sp = TAILQ_FIRST(REGISTRY_SPENT(&b->reg)); sp != NULL; sp = next) {
		next = TAILQ_NEXT(sp, entry);
		if (spent_update(sp, all))
			continue;
		/* Its process and address space are gone: the uid's room back. */
		if (!all)
			audit_uid(b, sp->uid, "session_forgotten", "session=%llu "
			    "pid=%d uid=%u reason=\"process and address space "
			    "gone\"", (unsigned long long)sp->id, (int)sp->pid,
			    (unsigned)sp->uid);
		registry_remove_spent(&b->reg, sp);
		free(sp);
	}
}

/*
 * Is the probe's address space the one of another session, whose dummy page
 * is at page? Registering that page on this probe fails with EBUSY exactly
 * when it is mapped in this address space and registered on another uffd:
 * that session's probe, in the same address space (CLONE_VM). A peer could
 * fake it only with a page at that address registered on a uffd of its own,
 * which would make it share its quota, never get more.
 */
static bool
same_address_space(const struct session *s, uint64_t page, uint32_t page_size)
{
	struct uffdio_register reg = {
		.range = { .start = page, .len = page_size },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};

	/*
	 * Our own dummy page is registered on this probe already: the other
	 * session's at the same address is in another address space (in
	 * ours, this probe's registration would have failed).
	 */
	if (page == s->dummy_page)
		return false;
	if (ioctl(s->probe_uffd, UFFDIO_REGISTER, &reg) == 0) {
		/* A page of this process's own: not ours to watch. */
		(void)ioctl(s->probe_uffd, UFFDIO_UNREGISTER, &reg.range);
		return false;
	}
	return errno == EBUSY;
}

/*
 * A new probe joins the address space of a live or spent session of its
 * uid, if it shares one: it then counts on that account.
 */
void
session_join_address_space(struct session *s)
{
	struct session *o;
	struct spent *sp;
	struct account *a = NULL;

	TAILQ_FOREACH(o, REGISTRY_SESSIONS(&s->b->reg), entry)
		if (o != s && o->uid == s->uid && o->state == SESSION_READY &&
		    same_address_space(s, o->dummy_page, o->page_size)) {
			a = o->acct;
			break;
		}
	if (a == NULL)
		TAILQ_FOREACH(sp, REGISTRY_SPENT(&s->b->reg), entry)
			if (sp->uid == s->uid && sp->probe_uffd >= 0 &&
			    same_address_space(s, sp->dummy_page,
			    sp->page_size)) {
				a = sp->acct;
				break;
			}
	if (a == NULL)
		return;
	a->refs++;
	account_unref(s->acct);
	s->acct = a;
}

int
session_reply(struct session *s, WireStatus status, WireReply *body,
    const char *fmt, ...)
{
	WireReply none = UFFD_BROKER__V1__REPLY__INIT;
	WireReply *reply = body ? body : &none;
	char reason[256];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	reply->status = status;
	reply->reason = reason;
	reply->has_seq = s->has_req_seq;
	reply->seq = s->req_seq;
	/* The peer acts on the reply at once: fds flow (or not) before it. */
	session_sync_fds(s);
	/* A client that does not read its replies loses its session. */
	store_sync_send(s->b);	/* what the peer is told is written first */
	if ((rc = wire_send_msg(s->sock, &reply->base, -1)) < 0) {
		audit_session(s, "warning", "session=%llu pid=%d: reply not "
		    "sent error=\"%s\"", (unsigned long long)s->id,
		    (int)s->pid, strerror(-rc));
		session_kill(s, "reply could not be sent");
	}
	return rc;
}






/*
 * An fd the peer sent where none was due goes to the closer. A peer that
 * keeps sending them loses its session once the datagram is answered: a
 * session's budget of fds the broker must dispose of.
 */
#define SESSION_UNWANTED_FDS	16

static void
unwanted_fd(struct session *s, int fd)
{
	if (fd < 0)
		return;
	closer_discard(s->b, fd, s->uid, s->id);
	registry_session_changed(s);	/* even on a Status, which is not */
	if (++s->unwanted_fds > SESSION_UNWANTED_FDS)
		s->doom = "sent too many fds where none was due";
}








#define IN(st)	(1u << (st))

/* One row per request: where it is permitted and which fd it carries. */
static const struct request_type {
	UffdBroker__V1__Request__BodyCase body;
	const char	*name;
	unsigned int	states;
	const char	*fd_kind;	/* NULL: the request carries no fd */
	void		(*handle)(struct session *, const WireRequest *, int);
} request_types[] = {
	{ UFFD_BROKER__V1__REQUEST__BODY_HELLO, "hello",
	    IN(SESSION_HELLO), FD_KIND_LISTENER, handshake_hello },
	{ UFFD_BROKER__V1__REQUEST__BODY_FORK_HELLO, "fork-hello",
	    IN(SESSION_HELLO), NULL, handshake_fork_hello },
	{ UFFD_BROKER__V1__REQUEST__BODY_PROBE, "probe",
	    IN(SESSION_PROBE_ATTACH), FD_KIND_UFFD, handshake_probe },
	{ UFFD_BROKER__V1__REQUEST__BODY_ATTACH, "attach",
	    IN(SESSION_READY), FD_KIND_UFFD, grant_attach },
	{ UFFD_BROKER__V1__REQUEST__BODY_RELEASE, "release",
	    IN(SESSION_READY), NULL, grant_status },
	{ UFFD_BROKER__V1__REQUEST__BODY_STATUS, "status",
	    IN(SESSION_READY), NULL, grant_status },
};

/* An AdminStatus request of a view this broker has. */
static bool
admin_request(const WireRequest *req)
{
	const UffdBroker__V1__AdminStatus *as = req->admin_status;

	return req->body_case == UFFD_BROKER__V1__REQUEST__BODY_ADMIN_STATUS &&
	    (!as->has_view ||
	    as->view == UFFD_BROKER__V1__ADMIN_STATUS__VIEW__STATUS ||
	    as->view == UFFD_BROKER__V1__ADMIN_STATUS__VIEW__POLICY);
}

/* Is this datagram a well-formed AdminStatus request? */
static bool
admin_query(const uint8_t *buf, size_t len, int recv_flags)
{
	WireRequest *req;
	bool yes;

	if (recv_flags != 0 ||
	    (req = uffd_broker__v1__request__unpack(NULL, len, buf)) == NULL)
		return false;
	yes = admin_request(req);
	uffd_broker__v1__request__free_unpacked(req, NULL);
	return yes;
}

/*
 * What the broker makes of a datagram before it acts on it, from the
 * datagram, how it arrived (recv_flags), the kind of its fd and the
 * session's state alone: nothing is sent, read or closed here, so that a
 * fuzzer runs exactly this (tests/fuzz/fuzz_wire.c). fd_kind is what the
 * fd's /proc/self/fd link reads, "" if unreadable, NULL for no fd.
 */
enum request_verdict
session_request_check(enum session_state state, bool refused,
    const uint8_t *buf, size_t len, int recv_flags, const char *fd_kind,
    struct request_check *out)
{
	const struct request_type *rt = NULL;
	WireRequest *req;
	size_t i;

	memset(out, 0, sizeof(*out));
	/*
	 * A refused peer gets its refusal whatever it sends, and nothing else
	 * (an administrator's status query aside: the caller asks who it is).
	 */
	if (refused && !admin_query(buf, len, recv_flags))
		return REQUEST_REFUSED;
	if (recv_flags & (WIRE_TRUNCATED | WIRE_FDS_LOST | WIRE_TOO_MANY_FDS |
	    WIRE_FOREIGN_CMSG)) {
		if (recv_flags & WIRE_TRUNCATED) {
			out->status = UFFD_BROKER__V1__STATUS__BAD_MESSAGE;
			snprintf(out->why, sizeof(out->why),
			    "datagram longer than %d bytes", WIRE_MAX_DATAGRAM);
		} else {
			out->status = UFFD_BROKER__V1__STATUS__BAD_FD;
			snprintf(out->why, sizeof(out->why),
			    "at most %d fd per request, and nothing but fds",
			    WIRE_MAX_FDS);
		}
		return REQUEST_BAD;
	}
	req = uffd_broker__v1__request__unpack(NULL, len, buf);
	if (req == NULL) {
		out->status = UFFD_BROKER__V1__STATUS__BAD_MESSAGE;
		snprintf(out->why, sizeof(out->why),
		    "undecodable request (%zu bytes)", len);
		return REQUEST_BAD;
	}
	out->req = req;
	/* Status for administrators, whatever the session's state. */
	if (admin_request(req))
		return REQUEST_ADMIN;
	if (req->body_case == UFFD_BROKER__V1__REQUEST__BODY_ADMIN_STATUS) {
		out->status = UFFD_BROKER__V1__STATUS__BAD_MESSAGE;
		snprintf(out->why, sizeof(out->why), "unknown status view %d",
		    (int)req->admin_status->view);
		return REQUEST_BAD;
	}
	for (i = 0; i < sizeof(request_types) / sizeof(request_types[0]); i++)
		if (request_types[i].body == req->body_case)
			rt = &request_types[i];
	if (rt == NULL) {
		out->status = UFFD_BROKER__V1__STATUS__BAD_MESSAGE;
		snprintf(out->why, sizeof(out->why),
		    "unknown request type %d", (int)req->body_case);
	} else if (!(rt->states & IN(state))) {
		out->status = UFFD_BROKER__V1__STATUS__OUT_OF_ORDER;
		snprintf(out->why, sizeof(out->why),
		    "%s is not allowed in session state %s", rt->name,
		    states[state].name);
	} else if (rt->fd_kind == NULL && fd_kind != NULL) {
		out->status = UFFD_BROKER__V1__STATUS__BAD_FD;
		snprintf(out->why, sizeof(out->why), "%s takes no fd", rt->name);
	} else if (rt->fd_kind != NULL && (fd_kind == NULL ||
	    strcmp(fd_kind, rt->fd_kind) != 0)) {
		out->status = UFFD_BROKER__V1__STATUS__BAD_FD;
		snprintf(out->why, sizeof(out->why),
		    "%s needs one fd of kind %s", rt->name, rt->fd_kind);
	} else {
		out->rt = rt;
		return REQUEST_OK;
	}
	return REQUEST_BAD;
}

void
session_handle_datagram(struct session *s, const uint8_t *buf, size_t len,
    int fd, int recv_flags)
{
	struct request_check rc;
	enum request_verdict v;
	char link[128];

	v = session_request_check(s->state, s->refusal != NULL, buf, len,
	    recv_flags, fd < 0 ? NULL : proc_fd_link(fd, link, sizeof(link)),
	    &rc);
	if (v == REQUEST_ADMIN && s->refusal != NULL && !access_is_admin(s))
		v = REQUEST_REFUSED;
	if (!(v == REQUEST_ADMIN || (v == REQUEST_OK &&
	    rc.req->body_case == UFFD_BROKER__V1__REQUEST__BODY_STATUS)))
		registry_session_changed(s);
	s->has_req_seq = rc.req != NULL && rc.req->has_seq;
	if (s->has_req_seq && !s->speaks_seq) {
		s->speaks_seq = true;
		registry_session_changed(s);	/* once: Status changes nothing else */
	}
	s->req_seq = s->has_req_seq ? rc.req->seq : 0;
	switch (v) {
	case REQUEST_REFUSED:
		unwanted_fd(s, fd);
		if (session_reply(s, UFFD_BROKER__V1__STATUS__DENIED, NULL, "%s",
		    s->refusal) == 0)
			session_kill(s, "refused");
		break;
	case REQUEST_ADMIN:
		unwanted_fd(s, fd);
		status_admin(s, rc.req->admin_status);
		break;
	case REQUEST_BAD:
		unwanted_fd(s, fd);
		session_reply(s, rc.status, NULL, "%s", rc.why);
		break;
	case REQUEST_OK:
		rc.rt->handle(s, rc.req, fd);
		break;
	}
	if (rc.req != NULL)
		uffd_broker__v1__request__free_unpacked(rc.req, NULL);
	if (s->state != SESSION_DEAD) {
		s->has_req_seq = false;
		if (s->restarted) {
			s->restarted = false;	/* its grace is over */
			session_sync_fds(s);
		}
	}
}

/*
 * A session waiting for room on the closer's list or for its proof is not
 * read: its socket stays watched for a hang-up only, so that the loop does
 * not spin on it.
 */
void
session_watch_sync(struct session *s)
{
	uint32_t want = s->paused || s->proof != PROOF_NONE ? 0 :
	    EPOLLIN | EPOLLRDHUP;

	if (s->state == SESSION_DEAD || s->watching == want)
		return;
	if (broker_rewatch(s->b, s->sock, &s->w_sock, want) == 0)
		s->watching = want;
}

static void
session_pause(struct session *s)
{
	if (s->paused)
		return;
	s->paused = true;
	s->b->npaused++;
	session_watch_sync(s);
}

void
session_resume_all(struct broker *b)
{
	struct session *s;

	TAILQ_FOREACH(s, REGISTRY_SESSIONS(&b->reg), entry) {
		if (!s->paused || s->state == SESSION_DEAD)
			continue;
		s->paused = false;
		b->npaused--;
		session_watch_sync(s);
	}
}

void
session_readable(struct session *s)
{
	uint8_t buf[WIRE_MAX_DATAGRAM];
	int fds[WIRE_SCM_MAX_FD], flags;
	size_t nfds, i;
	ssize_t n;

	/*
	 * Fds that may come with the datagram need room on the closer's
	 * waiting list; without it, the session is not read until there is
	 * (closer.c). Whatever SO_PASSRIGHTS says now: the kernel checks it at
	 * send time, and a datagram queued while it was on carries its fds
	 * still.
	 */
	if (!closer_has_room(s->b)) {
		session_pause(s);
		return;
	}
	n = wire_recv_fds(s->sock, buf, sizeof(buf), fds, WIRE_SCM_MAX_FD,
	    &nfds, &flags);
	if (n == -EAGAIN)
		return;
	/* A stranger's fds are closed off the loop's thread (closer.c). */
	for (i = 1; i < nfds; i++)
		unwanted_fd(s, fds[i]);
	if (n <= 0) {
		if (nfds > 0)
			unwanted_fd(s, fds[0]);
		session_hangup(s);
		return;
	}
	session_handle_datagram(s, buf, (size_t)n, nfds > 0 ? fds[0] : -1,
	    flags);
	if (s->state != SESSION_DEAD && s->doom != NULL)
		session_kill(s, s->doom);
	if (nfds > 0)
		closer_flush(s->b);
}

/*
 * Fds are due in the handshake's Hello (the listener) and Probe (the probe
 * uffd), and while a supervised creation awaits its Attach. Elsewhere the
 * kernel refuses the peer's fds (EPERM) before they are queued.
 */
static bool
fds_due(const struct session *s)
{
	return s->refusal == NULL && states[s->state].fds &&
	    (s->state != SESSION_READY || s->pending > 0 || s->restarted);
}

void
session_sync_fds(struct session *s)
{
	int on = fds_due(s);

	if (!s->b->passrights || s->sock < 0 || s->fds_on == on)
		return;
	if (setsockopt(s->sock, SOL_SOCKET, SO_PASSRIGHTS, &on, sizeof(on)) < 0)
		log_warn("session=%llu: SO_PASSRIGHTS", (unsigned long long)s->id);
	else
		s->fds_on = on;
}

void
session_resync(struct session *s)
{
	s->fds_on = !fds_due(s);
	session_sync_fds(s);
	s->watching = 0;
	session_watch_sync(s);
}

void
session_hangup(struct session *s)
{
	const char *why = "client closed the session";

	/*
	 * A hang-up is often a death: probe at once so the log says which.
	 * Only ESRCH says so: uffdc_session_close() unmaps the dummy page
	 * right after it hangs up, so any other failure is a clean close.
	 */
	if (s->state == SESSION_READY &&
	    liveness_zeropage(s->probe_uffd, s->dummy_page, s->page_size) ==
	    -ESRCH)
		why = "process exited or exec'd";
	session_kill(s, why);
}
