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

/* The state's two memfds and the journal, made afresh (store_publish()
 * stores them). */
void
store_init(struct broker *b)
{
	struct store *st = &b->store;
	int i;

	st->state_fd[0] = st->state_fd[1] = st->journal_fd = -1;
	if (getenv("FDSTORE") == NULL || sdnotify_socket() < 0)
		return;
	st->on = true;
	for (i = 0; i < 2; i++) {
		st->state_fd[i] = memfd_create("uffd-brokerd-state",
		    MFD_CLOEXEC);
		if (st->state_fd[i] < 0)
			fatal("fd store: memfd_create");
	}
	if ((st->journal_fd = memfd_create("uffd-brokerd-journal",
	    MFD_CLOEXEC)) < 0)
		fatal("fd store: memfd_create");
	b->reg.tracking = true;
	registry_globals_changed(&b->reg);
}

/*
 * The whole state, to the memfd not written last, under the next
 * generation; then the journal is emptied, its entries being of the
 * generation before (a kill in between leaves them, and a restart reads
 * them only over their own state, which is the other memfd).
 */
static int
write_whole(struct broker *b, char *err, size_t errlen)
{
	struct store *st = &b->store;
	uint8_t *buf;
	size_t len;
	int rc;

	st->generation++;
	if ((buf = state_pack(b, &len, err, errlen)) == NULL) {
		st->generation--;
		return -ENOMEM;
	}
	rc = state_write(st->state_fd[st->generation % 2], buf, len);
	free(buf);
	if (rc < 0) {
		snprintf(err, errlen, "writing the state");
		st->generation--;	/* the last good one stays the other */
		return rc;
	}
	st->whole_len = len;
	st->wholes++;
	st->journal_seq = 0;
	st->journal_len = 0;
	st->journal_at_end = false;
	if (ftruncate(st->journal_fd, 0) < 0) {
		snprintf(err, errlen, "emptying the journal");
		return -errno;
	}
	return 0;
}

/* What changed since the last entry, appended to the journal. */
static int
write_entry(struct broker *b, char *err, size_t errlen)
{
	struct store *st = &b->store;
	uint8_t *buf;
	size_t len;
	int rc;

	if ((buf = state_pack_entry(b, st->journal_seq + 1, &len, err,
	    errlen)) == NULL)
		return -ENOMEM;
	/* At the journal's end: sought only after it was emptied or torn. */
	rc = !st->journal_at_end && lseek(st->journal_fd,
	    (off_t)st->journal_len, SEEK_SET) < 0 ? -errno :
	    state_write_here(st->journal_fd, buf, len);
	st->journal_at_end = false;
	free(buf);
	if (rc < 0) {
		/* Torn: the next entry goes over it, or a whole state. */
		snprintf(err, errlen, "writing the journal");
		return rc;
	}
	st->journal_seq++;
	st->journal_len += len;
	st->journal_at_end = true;
	st->entries++;
	return 0;
}

/*
 * The state written whole, then both memfds and the journal take the names
 * of any the store held (an older image's, or a killed broker's): from
 * here on a broker started in this one's place resumes what this one
 * serves.
 *
 * The older of the store's two states is replaced first (it is of
 * generation G - 1 when the newer, with the journal over it, is G): a kill
 * between a name's drop and its put then leaves the store the newer one
 * and its journal, or already a new whole state, never the older alone.
 */
void
store_publish(struct broker *b)
{
	struct store *st = &b->store;
	uint64_t before = st->generation;
	char err[256];
	int i, k, rc;

	if (!st->on)
		return;
	for (i = 0; i < 2; i++)		/* both hold a state */
		if ((rc = write_whole(b, err, sizeof(err))) < 0)
			store_failed(b, err, -rc);
	registry_changes_written(&b->reg, false);
	for (k = 0; k < 2; k++) {
		i = (int)((before + 1 + (uint64_t)k) % 2);
		snprintf(err, sizeof(err), "state.%d", i);
		drop_named(b, err);
		put_named(b, err, st->state_fd[i]);
	}
	drop_named(b, "journal");
	put_named(b, "journal", st->journal_fd);
	log_event("fd_store", "on=yes generation=%llu",
	    (unsigned long long)st->generation);
}

/*
 * Once the journal is as long as the state, or at least this long, the
 * next change writes the state whole: each entry costs its own records,
 * and the whole write, spread over the entries before it, about as much.
 */
#define JOURNAL_MIN_BYTES	(64u << 10)

static void
sync_changes(struct broker *b, bool keep)
{
	struct store *st = &b->store;
	char err[256];
	int rc;

	if (!st->on || !b->reg.changed)
		return;
	if (st->wholes == 0 || (st->journal_len >= JOURNAL_MIN_BYTES &&
	    st->journal_len >= st->whole_len))
		rc = write_whole(b, err, sizeof(err));
	else if ((rc = write_entry(b, err, sizeof(err))) < 0)
		rc = write_whole(b, err, sizeof(err));
	if (rc < 0) {
		store_failed(b, err, -rc);
		return;		/* the changes stay marked: written next time */
	}
	registry_changes_written(&b->reg, keep);
}

#ifdef UFFD_BROKER_TEST_HOOKS
static void audit_store(struct broker *);
#endif

void
store_sync(struct broker *b)
{
	sync_changes(b, false);
#ifdef UFFD_BROKER_TEST_HOOKS
	audit_store(b);
#endif
}

/*
 * Before something is sent: what changed, as it is now. What changes after
 * the send is said to the registry as it changes, and written at the next
 * send or the turn's end (the test build's audit checks, every turn, that
 * nothing is left unsaid).
 */
void
store_sync_send(struct broker *b)
{
	sync_changes(b, true);
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
		if (st[i] != NULL && (!st[i]->has_generation ||
		    st[i]->has_journal_seq)) {
			state_free(st[i]);
			st[i] = NULL;
			snprintf(why[i], sizeof(why[i]), "no generation, or a "
			    "journal entry");
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

/*
 * The journal the store keeps, read whole (NULL and *len 0: none; NULL and
 * why set: unreadable, and then the state alone stands, and the restart
 * says so).
 */
static uint8_t *
take_journal(size_t *len, char *why, size_t whylen)
{
	uint8_t *buf = NULL;
	bool first = true;
	int fd;

	*len = 0;
	why[0] = '\0';
	/* Each name once: an older broker's stray copy is not read. */
	while ((fd = store_take("journal")) >= 0) {
		if (first)
			buf = state_read_all(fd, len, why, whylen);
		first = false;
		close(fd);
	}
	return buf;
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

	TAILQ_FOREACH(l, REGISTRY_LISTENERS(&b->reg), entry) {
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
	TAILQ_FOREACH(s, REGISTRY_SESSIONS(&b->reg), entry)
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
	struct state_view v;
	struct stat sb;
	BrokerState *st;
	char err[600];
	unsigned int dropped, stale = 0;
	uint8_t boot_id[16], *journal;
	char unread[256];
	size_t i, len;

	if ((st = newest_state(err, sizeof(err))) == NULL)
		fatalx("restart: no state in the fd store: %s", err);
	if (state_boot_id(boot_id) < 0)
		fatalx("restart: cannot read this boot's id");
	journal = take_journal(&len, unread, sizeof(unread));
	if (state_view_open(&v, st, journal, len, boot_id) < 0)
		fatalx("restart: out of memory");
	free(journal);
	st = &v.view;
	if (unread[0] != '\0')
		log_event("warning", "restart=\"the journal is unreadable: "
		    "%s\" effect=\"the whole state alone is resumed: what "
		    "changed after it is lost\"", unread);
	log_event("restart_state", "generation=%llu journal_entries=%zu "
	    "journal_end=\"%s\"", (unsigned long long)st->generation,
	    v.entries, v.stop);
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
	    b->reg.nsessions, b->reg.nby_file, dropped, stale);
	b->store.generation = st->generation;
	state_view_close(&v);
	free(passed);
	passed = NULL;
	npassed = 0;
	store_publish(b);
}

#ifdef UFFD_BROKER_TEST_HOOKS
/*
 * The test build's audit ($UFFD_BROKER_TEST_AUDIT_STORE): after each turn's
 * write, what a broker restarted now would read (the newest whole state and
 * its journal, from this broker's own memfds) must be the broker's state
 * as it is. A change that was not said to the registry shows up here as a
 * record that differs, and the broker stops.
 */
static int
cmp_id_session(const void *a, const void *b)
{
	uint64_t x = (*(UffdBroker__State__V1__Session *const *)a)->id;
	uint64_t y = (*(UffdBroker__State__V1__Session *const *)b)->id;

	return x < y ? -1 : x > y;
}

static int
cmp_id_listener(const void *a, const void *b)
{
	uint64_t x = (*(UffdBroker__State__V1__Listener *const *)a)->id;
	uint64_t y = (*(UffdBroker__State__V1__Listener *const *)b)->id;

	return x < y ? -1 : x > y;
}

static int
cmp_id_spent(const void *a, const void *b)
{
	uint64_t x = (*(UffdBroker__State__V1__Spent *const *)a)->id;
	uint64_t y = (*(UffdBroker__State__V1__Spent *const *)b)->id;

	return x < y ? -1 : x > y;
}

static int
cmp_id_account(const void *a, const void *b)
{
	uint64_t x = (*(UffdBroker__State__V1__Account *const *)a)->mm_id;
	uint64_t y = (*(UffdBroker__State__V1__Account *const *)b)->mm_id;

	return x < y ? -1 : x > y;
}

/* Packed, with its records in id order: what two states compare by. */
static uint8_t *
canonical(BrokerState *st, size_t *len)
{
	uint8_t *buf;

	state_sort(st->sessions, st->n_sessions, sizeof(*st->sessions),
	    cmp_id_session);
	state_sort(st->listeners, st->n_listeners, sizeof(*st->listeners),
	    cmp_id_listener);
	state_sort(st->spent, st->n_spent, sizeof(*st->spent), cmp_id_spent);
	state_sort(st->accounts, st->n_accounts, sizeof(*st->accounts),
	    cmp_id_account);
	st->has_journal_seq = false;
	*len = uffd_broker__state__v1__state__get_packed_size(st);
	if ((buf = malloc(*len + 1)) != NULL)
		uffd_broker__state__v1__state__pack(st, buf);
	return buf;
}

/* The first record of a kind whose encoding differs, for the log. */
#define FIRST_DIFF(a, b, field, idf, what)				\
	do {								\
		size_t i_;						\
		for (i_ = 0; i_ < (a)->n_##field && i_ < (b)->n_##field; i_++) { \
			uint8_t x_[4096], y_[4096];			\
			size_t nx_, ny_;				\
			nx_ = protobuf_c_message_get_packed_size(&(a)->field[i_]->base); \
			ny_ = protobuf_c_message_get_packed_size(&(b)->field[i_]->base); \
			if (nx_ > sizeof(x_) || ny_ > sizeof(y_))	\
				continue;				\
			protobuf_c_message_pack(&(a)->field[i_]->base, x_); \
			protobuf_c_message_pack(&(b)->field[i_]->base, y_); \
			if (nx_ != ny_ || memcmp(x_, y_, nx_) != 0 ||	\
			    (a)->field[i_]->idf != (b)->field[i_]->idf) { \
				snprintf(what, sizeof(what), #field " %llu", \
				    (unsigned long long)(a)->field[i_]->idf); \
				break;					\
			}						\
		}							\
		if (what[0] == '\0' && (a)->n_##field != (b)->n_##field) \
			snprintf(what, sizeof(what), #field ": %zu, not %zu", \
			    (a)->n_##field, (b)->n_##field);		\
	} while (0)

static void
audit_store(struct broker *b)
{
	static int on = -1;
	BrokerState *whole[2] = { NULL, NULL }, *live, *base;
	struct state_view v;
	uint8_t boot_id[16], *mine, *theirs, *journal, *buf;
	size_t nmine, ntheirs, len, jlen;
	char err[256], what[128] = "";
	int i;

	if (on < 0)
		on = getenv("UFFD_BROKER_TEST_AUDIT_STORE") != NULL;
	if (!on || !b->store.on || state_boot_id(boot_id) < 0)
		return;
	for (i = 0; i < 2; i++)
		whole[i] = state_read(b->store.state_fd[i], 0, err, sizeof(err));
	base = whole[0] == NULL || (whole[1] != NULL &&
	    whole[1]->generation > whole[0]->generation) ? whole[1] : whole[0];
	state_free(base == whole[0] ? whole[1] : whole[0]);
	if (base == NULL)
		fatalx("store audit: no whole state reads back");
	if ((journal = state_read_all(b->store.journal_fd, &jlen, err,
	    sizeof(err))) == NULL)
		fatalx("store audit: the journal: %s", err);
	if (state_view_open(&v, base, journal, jlen, boot_id) < 0)
		fatalx("store audit: out of memory");
	free(journal);
	if ((buf = state_pack(b, &len, err, sizeof(err))) == NULL ||
	    (live = state_decode(buf, len, getpid(), boot_id, err,
	    sizeof(err))) == NULL)
		fatalx("store audit: %s", err);
	free(buf);
	if (v.entries != b->store.journal_seq)
		fatalx("store audit: %zu journal entries read back, %llu "
		    "written (%s)", v.entries,
		    (unsigned long long)b->store.journal_seq, v.stop);
	mine = canonical(live, &nmine);
	theirs = canonical(&v.view, &ntheirs);
	if (mine == NULL || theirs == NULL)
		fatalx("store audit: out of memory");
	if (nmine != ntheirs || memcmp(mine, theirs, nmine) != 0) {
		FIRST_DIFF(live, &v.view, sessions, id, what);
		if (what[0] == '\0')
			FIRST_DIFF(live, &v.view, listeners, id, what);
		if (what[0] == '\0')
			FIRST_DIFF(live, &v.view, spent, id, what);
		if (what[0] == '\0')
			FIRST_DIFF(live, &v.view, accounts, mm_id, what);
		fatalx("store audit: what a restart would read differs from "
		    "the broker's state: %s", what[0] ? what : "its own fields");
	}
	free(mine);
	free(theirs);
	state_free(live);
	state_view_close(&v);
}
#endif
