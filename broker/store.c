/* SPDX-License-Identifier: ISC */
/*
 * store.c - the service manager's file descriptor store (sd_notify(3):
 * FDSTORE=1, FDNAME=, FDSTOREREMOVE=1), when the unit keeps one
 * (FileDescriptorStoreMax=, which sets $FDSTORE): every fd the broker must
 * not lose goes there under a name as it comes, and leaves as it closes, so
 * that a broker that is killed leaves its clients' listeners open in the
 * store, and the one started in its place takes them back (docs/upgrade.md).
 *
 *   listen, lock         the listening socket and its lock (not activated)
 *   state.0, state.1     the state (state.h), written to each in turn
 *   l<id>                a listener, by the id of the session that brought it
 *   s<id>.sock, .pidfd,  a session's socket, pidfd and probe (the pidfd and
 *   s<id>.probe          probe stay with its spent record)
 *   a<mm_id>             an address space's tracker
 *
 * The state is written before anything that depends on it is sent: a reply,
 * a notification's answer, the device fd (store_sync() in each), and at the
 * end of each loop turn. A broker killed at any instant leaves a state that
 * says at least what its clients were told. Each write goes to the memfd
 * not written last, so one torn by a kill leaves the other whole.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker.h"
#include "log.h"
#include "state.h"

void
store_name(char *buf, size_t len, char kind, uint64_t id, const char *suffix)
{
	if (kind == 0)
		snprintf(buf, len, "%s", suffix);	/* listen, lock */
	else
		snprintf(buf, len, "%c%llu%s", kind, (unsigned long long)id,
		    suffix);
}

static void
store_failed(struct broker *b, const char *what, int err)
{
	if (b->store.failed)
		return;
	b->store.failed = true;
	log_event("warning", "fd_store=\"%s failed\" error=\"%s\" effect=\"a "
	    "broker restarted now would lose sessions\"", what, strerror(err));
}

static void
put_named(struct broker *b, const char *name, int fd)
{
	char msg[96];
	int rc;

	snprintf(msg, sizeof(msg), "FDSTORE=1\nFDPOLL=0\nFDNAME=%s", name);
	if ((rc = sdnotify_fd(msg, fd)) < 0)
		store_failed(b, "FDSTORE", -rc);
	b->store.puts++;
}

void
store_put(struct broker *b, char kind, uint64_t id, const char *suffix, int fd)
{
	char name[STORE_NAME_MAX];

	if (!b->store.on || b->store.adopting || fd < 0)
		return;
	store_name(name, sizeof(name), kind, id, suffix);
	put_named(b, name, fd);
}

static void
drop_named(struct broker *b, const char *name)
{
	char msg[96];
	int rc;

	snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=%s", name);
	if ((rc = sdnotify_fd(msg, -1)) < 0)
		store_failed(b, "FDSTOREREMOVE", -rc);
	b->store.drops++;
}

void
store_drop(struct broker *b, char kind, uint64_t id, const char *suffix)
{
	char name[STORE_NAME_MAX];

	if (!b->store.on)
		return;
	store_name(name, sizeof(name), kind, id, suffix);
	drop_named(b, name);
}

/* The state's two memfds, made afresh (store_publish() stores them). */
void
store_init(struct broker *b)
{
	struct store *st = &b->store;
	int i;

	st->state_fd[0] = st->state_fd[1] = -1;
	if (getenv("FDSTORE") == NULL || sdnotify_socket() < 0)
		return;
	st->on = true;
	for (i = 0; i < 2; i++) {
		st->state_fd[i] = memfd_create("uffd-brokerd-state",
		    MFD_CLOEXEC);
		if (st->state_fd[i] < 0)
			fatal("fd store: memfd_create");
	}
	st->dirty = true;
}

/*
 * The state written to the new memfds, which then take the names of any
 * the store held (an older image's, or a killed broker's): from here on a
 * broker started in this one's place resumes what this one serves.
 */
void
store_publish(struct broker *b)
{
	struct store *st = &b->store;
	char name[16];
	int i;

	if (!st->on)
		return;
	store_dirty(b);
	store_sync(b);
	store_dirty(b);
	store_sync(b);		/* both hold a state */
	for (i = 0; i < 2; i++) {
		snprintf(name, sizeof(name), "state.%d", i);
		drop_named(b, name);
		put_named(b, name, st->state_fd[i]);
	}
	log_event("fd_store", "on=yes generation=%llu",
	    (unsigned long long)st->generation);
}

void
store_sync(struct broker *b)
{
	struct store *st = &b->store;
	char err[256];
	uint8_t *buf;
	size_t len;
	int rc;

	if (!st->on || !st->dirty)
		return;
	st->generation++;
	if ((buf = state_pack(b, &len, err, sizeof(err))) == NULL) {
		store_failed(b, err, ENOMEM);
		return;
	}
	rc = state_write(st->state_fd[st->generation % 2], buf, len);
	free(buf);
	if (rc < 0) {
		store_failed(b, "writing the state", -rc);
		st->generation--;	/* the last good one stays the other */
		return;
	}
	st->dirty = false;
}

/*
 * Before something is sent: the state as it is now. What the same event
 * changes after this send is not marked (the mutators do not say), so the
 * next send, or the turn's end, writes again.
 */
void
store_sync_send(struct broker *b)
{
	store_sync(b);
	if (b->store.on)
		b->store.dirty = true;
}

/* ---- a restart: the store's fds come back (sd_listen_fds(3)) ---- */

#define SD_LISTEN_FDS_START	3
#define RESTART_MAX_FDS		65536

struct passed {
	int		fd;
	char		name[STORE_NAME_MAX];
	bool		used;
};

static struct passed *passed;
static size_t npassed;

/*
 * $LISTEN_FDS and $LISTEN_FDNAMES, if they are this process's: every fd
 * passed, by name (taken once, then unset). Returns their number.
 */
size_t
store_take_passed(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	const char *names = getenv("LISTEN_FDNAMES"), *p;
	char *end;
	long n;
	size_t i, len;

	if (passed != NULL || pid == NULL || fds == NULL ||
	    atol(pid) != (long)getpid())
		return npassed;
	errno = 0;
	n = strtol(fds, &end, 10);
	if (errno != 0 || *end != '\0' || n < 1 || n > RESTART_MAX_FDS)
		fatalx("LISTEN_FDS=%s: not a count of fds", fds);
	if ((passed = calloc((size_t)n, sizeof(*passed))) == NULL)
		fatal("calloc");
	for (i = 0, p = names; i < (size_t)n; i++) {
		passed[i].fd = SD_LISTEN_FDS_START + (int)i;
		len = p != NULL ? strcspn(p, ":") : 0;
		if (len >= STORE_NAME_MAX)
			len = STORE_NAME_MAX - 1;
		if (p != NULL)
			memcpy(passed[i].name, p, len);
		passed[i].name[len] = '\0';
		if (p != NULL)
			p = p[strcspn(p, ":")] == ':' ? p + strcspn(p, ":") + 1 :
			    NULL;
		if (fcntl(passed[i].fd, F_SETFD, FD_CLOEXEC) < 0)
			fatal("LISTEN_FDS: fd %d", passed[i].fd);
	}
	npassed = (size_t)n;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return npassed;
}

/* The passed fd of this name, taken (-1: none). */
int
store_take(const char *name)
{
	size_t i;

	for (i = 0; i < npassed; i++)
		if (!passed[i].used && strcmp(passed[i].name, name) == 0) {
			passed[i].used = true;
			return passed[i].fd;
		}
	return -1;
}

/* The first passed fd not taken yet that satisfies ok (-1: none). */
int
store_take_first(bool (*ok)(int fd, const char *name))
{
	size_t i;

	for (i = 0; i < npassed; i++)
		if (!passed[i].used && ok(passed[i].fd, passed[i].name)) {
			passed[i].used = true;
			return passed[i].fd;
		}
	return -1;
}

/*
 * A passed fd a restart closes (its record did not check out): its name
 * leaves the store too, or the store would keep the client's socket open.
 */
void
store_forget_fd(struct broker *b, int fd)
{
	size_t i;

	for (i = 0; i < npassed; i++)
		if (passed[i].fd == fd && passed[i].name[0] != '\0')
			drop_named(b, passed[i].name);
}

bool
store_restarting(void)
{
	size_t i;

	store_take_passed();
	for (i = 0; i < npassed; i++)
		if (strncmp(passed[i].name, "state.", 6) == 0)
			return true;
	return false;
}

/* The newer of the two states that check out (NULL: neither). */
static BrokerState *
newest_state(char *err, size_t errlen)
{
	BrokerState *st[2] = { NULL, NULL };
	char why[2][256] = { "not in the store", "not in the store" };
	char name[16];
	int i, fd;

	for (i = 0; i < 2; i++) {
		snprintf(name, sizeof(name), "state.%d", i);
		/* Each name once: an older broker's stray copy is no state. */
		while ((fd = store_take(name)) >= 0) {
			if (st[i] == NULL)
				st[i] = state_read(fd, 0, why[i],
				    sizeof(why[i]));
			close(fd);
		}
		if (st[i] != NULL && !st[i]->has_generation) {
			state_free(st[i]);
			st[i] = NULL;
			snprintf(why[i], sizeof(why[i]), "no generation");
		}
	}
	if (st[0] == NULL && st[1] == NULL) {
		snprintf(err, errlen, "state.0: %s; state.1: %s", why[0],
		    why[1]);
		return NULL;
	}
	if (st[0] == NULL || (st[1] != NULL &&
	    st[1]->generation > st[0]->generation)) {
		state_free(st[0]);
		return st[1];
	}
	state_free(st[1]);
	return st[0];
}

/* An fd number of the state, replaced by the passed fd of its name. */
static int
fd_of(char kind, uint64_t id, const char *suffix, int old)
{
	char name[STORE_NAME_MAX];

	if (old < 0)
		return -1;
	store_name(name, sizeof(name), kind, id, suffix);
	return store_take(name);
}

/* The state's fd numbers, the old process's, made this one's by name. */
static void
translate(BrokerState *st)
{
	size_t i;

	for (i = 0; i < st->n_listeners; i++)
		st->listeners[i]->fd = fd_of('l', st->listeners[i]->id, "",
		    st->listeners[i]->fd);
	for (i = 0; i < st->n_accounts; i++)
		st->accounts[i]->tracker = fd_of('a', st->accounts[i]->mm_id,
		    "", st->accounts[i]->tracker);
	for (i = 0; i < st->n_sessions; i++) {
		UffdBroker__State__V1__Session *m = st->sessions[i];

		m->sock = fd_of('s', m->id, ".sock", m->sock);
		m->pidfd = fd_of('s', m->id, ".pidfd", m->pidfd);
		m->probe_uffd = fd_of('s', m->id, ".probe", m->probe_uffd);
		/*
		 * Not stored: a Hello whose filter was being proven has lost
		 * its listener, and the session is dropped (its client's
		 * open fails; it may try again).
		 */
		m->proof_fd = -1;
	}
	for (i = 0; i < st->n_spent; i++) {
		UffdBroker__State__V1__Spent *m = st->spent[i];

		m->pidfd = fd_of('s', m->id, ".pidfd", m->pidfd);
		m->probe_uffd = fd_of('s', m->id, ".probe", m->probe_uffd);
	}
}

/*
 * Notifications the killed broker received and did not answer: the kernel
 * delivers a notification once, so they would wait for ever. The kernel
 * numbers a filter's notifications one after another; the state has the
 * last one each listener received before anything was answered, so the
 * lost one is at most a few ids on (notifications withdrawn meanwhile skip
 * ids). SECCOMP_IOCTL_NOTIF_ID_VALID says which of those is received and
 * waiting, and it is answered EAGAIN: the decision was lost with the
 * broker, and the library asks again (uffdc_create()). An error is always
 * a safe answer: nothing is granted without a decision.
 */
#define LOST_ID_WINDOW	64

/*
 * What the state counted for the lost notification did not happen: a
 * creation counted pending; a verification written as done before its
 * device fd went (handshake.c), which is then undone: the client asks again.
 */
static void
uncount(struct listener *l, uint64_t id)
{
	struct session *s;

	TAILQ_FOREACH(s, &l->members, lis_entry) {
		if (s->continued_id != id)
			continue;
		if (s->state == SESSION_READY && s->pending > 0)
			session_set_pending(s, s->pending - 1);
		else if (s->state == SESSION_PROBE_CREATE && !s->forked)
			s->state = SESSION_VERIFY;	/* back, not forward */
		s->continued_id = 0;
	}
}

static unsigned int
answer_lost(struct broker *b)
{
	struct seccomp_notif_resp resp;
	struct listener *l;
	unsigned int n = 0;
	uint64_t id, i;

	TAILQ_FOREACH(l, &b->listeners, entry) {
		if (!l->has_last_id)
			continue;
		for (i = 0; i < LOST_ID_WINDOW; i++) {
			id = l->last_id + i;
			if (ioctl(l->fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) < 0)
				continue;
			resp = (struct seccomp_notif_resp){ .id = id,
			    .error = -EAGAIN };
			if (ioctl(l->fd, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0)
				continue;
			log_event("restart_answered", "listener=%llu id=%llu "
			    "errno=%d reason=\"received by the broker that was "
			    "killed, not answered: the caller asks again\"",
			    (unsigned long long)l->id,
			    (unsigned long long)id, EAGAIN);
			uncount(l, id);
			n++;
		}
	}
	return n;
}

/*
 * Every session is told: a request it sent may have been read by the broker
 * that died, and is to be sent again (the library does: client_call()).
 */
static void
tell_restarted(struct broker *b, uint64_t generation)
{
	UffdBroker__V1__Restarted r = UFFD_BROKER__V1__RESTARTED__INIT;
	WireReply reply = UFFD_BROKER__V1__REPLY__INIT;
	struct session *s;

	r.generation = generation;
	reply.status = UFFD_BROKER__V1__STATUS__OK;
	reply.reason = (char *)"broker restarted: send again a request not "
	    "answered";
	reply.body_case = UFFD_BROKER__V1__REPLY__BODY_RESTARTED;
	reply.restarted = &r;
	/* Not to an older library, which would take it for a reply. */
	TAILQ_FOREACH(s, &b->sessions, entry)
		if (s->refusal == NULL && s->speaks_seq)
			(void)wire_send_msg(s->sock, &reply.base, -1);
}

/*
 * After broker_setup() (which took the listening socket and its lock from
 * the passed fds) and the verifier's start: the state, then every session.
 * A passed fd that no record names is stale: closed, and dropped from the
 * store. Fatal only when no state checks out at all, or it is another
 * socket's.
 */
void
store_restart(struct broker *b)
{
	struct stat sb;
	BrokerState *st;
	char err[600];
	unsigned int dropped, stale = 0;
	size_t i;

	if ((st = newest_state(err, sizeof(err))) == NULL)
		fatalx("restart: no state in the fd store: %s", err);
	if (!st->has_listen_ino || fstat(b->listen_fd, &sb) < 0 ||
	    sb.st_ino != st->listen_ino)
		fatalx("restart: the state is of another listening socket: "
		    "foreign");
	translate(st);
	dropped = upgrade_adopt_restart(b, st);
	(void)answer_lost(b);
	tell_restarted(b, st->generation);
	for (i = 0; i < npassed; i++) {
		if (passed[i].used)
			continue;
		log_event("restart_stale", "name=%s fd=%d effect=\"closed, and "
		    "dropped from the store\"", passed[i].name, passed[i].fd);
		close(passed[i].fd);
		if (b->store.on && passed[i].name[0] != '\0')
			drop_named(b, passed[i].name);
		stale++;
	}
	log_event("restarted", "generation=%llu sessions=%u listeners=%zu "
	    "dropped=%u stale_fds=%u", (unsigned long long)st->generation,
	    b->nsessions, b->nby_file, dropped, stale);
	b->store.generation = st->generation;
	state_free(st);
	free(passed);
	passed = NULL;
	npassed = 0;
	store_publish(b);
}
