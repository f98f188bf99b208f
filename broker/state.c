/* SPDX-License-Identifier: ISC */
/*
 * state.c - the broker's state written for the next broker and read back
 * (state.h has the format). Writing walks what the broker owns; reading
 * checks the frame and decodes, and trusts nothing it decoded: upgrade.c
 * checks every fd and peer as it adopts them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker.h"
#include "log.h"
#include "state.h"

#define NS(ts)	((int64_t)(ts).tv_sec * 1000000000 + (ts).tv_nsec)

static int
read_boot_id(uint8_t out[16])
{
	char text[64], *p;
	ssize_t n;
	size_t i = 0;
	int fd;

	if ((fd = open("/proc/sys/kernel/random/boot_id",
	    O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	text[n] = '\0';
	/* 8-4-4-4-12 hex digits */
	for (p = text; *p != '\0' && *p != '\n' && i < 32; p++) {
		int v;

		if (*p == '-')
			continue;
		if (*p >= '0' && *p <= '9')
			v = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			v = *p - 'a' + 10;
		else
			return -1;
		if (i % 2 == 0)
			out[i / 2] = (uint8_t)(v << 4);
		else
			out[i / 2] |= (uint8_t)v;
		i++;
	}
	return i == 32 ? 0 : -1;
}

/* Read once: a boot's id does not change (and the journal asks often). */
int
state_boot_id(uint8_t out[16])
{
	static uint8_t id[16];
	static bool known;

	if (!known && read_boot_id(id) == 0)
		known = true;
	if (known)
		memcpy(out, id, sizeof(id));
	return known ? 0 : -1;
}

static void
header_digest(const struct state_header *h, const uint8_t *msg, size_t len,
    uint8_t out[SHA256_LEN])
{
	struct sha256 c;

	sha256_init(&c);
	sha256_update(&c, h, offsetof(struct state_header, digest));
	sha256_update(&c, msg, len);
	sha256_final(&c, out);
}

uint8_t *
state_frame(const uint8_t *msg, size_t len, pid_t pid,
    const uint8_t boot_id[16], size_t *outlen)
{
	struct state_header h = { .magic = STATE_MAGIC };
	uint8_t *buf;

	if (len > STATE_MAX_BYTES - sizeof(h))
		return NULL;
	h.format = STATE_FORMAT;
	h.length = (uint32_t)len;
	h.pid = (int32_t)pid;
	memcpy(h.boot_id, boot_id, sizeof(h.boot_id));
	header_digest(&h, msg, len, h.digest);
	if ((buf = malloc(sizeof(h) + len)) == NULL)
		return NULL;
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), msg, len);
	*outlen = sizeof(h) + len;
	return buf;
}

BrokerState *
state_decode(const uint8_t *buf, size_t len, pid_t pid,
    const uint8_t boot_id[16], char *err, size_t errlen)
{
	struct state_header h;
	uint8_t digest[SHA256_LEN];
	BrokerState *st;

	if (len < sizeof(h)) {
		snprintf(err, errlen, "state truncated: %zu bytes, shorter than "
		    "its header", len);
		return NULL;
	}
	memcpy(&h, buf, sizeof(h));
	if (memcmp(h.magic, STATE_MAGIC, sizeof(h.magic)) != 0) {
		snprintf(err, errlen, "not a uffd-brokerd state (bad magic)");
		return NULL;
	}
	if (h.format != STATE_FORMAT) {
		snprintf(err, errlen, "state format %u is not this broker's "
		    "(%u)", h.format, STATE_FORMAT);
		return NULL;
	}
	if (h.length != len - sizeof(h)) {
		snprintf(err, errlen, "state truncated or padded: header says "
		    "%u bytes, %zu follow", h.length, len - sizeof(h));
		return NULL;
	}
	header_digest(&h, buf + sizeof(h), h.length, digest);
	if (memcmp(digest, h.digest, sizeof(digest)) != 0) {
		snprintf(err, errlen, "state digest mismatch: corrupt or forged");
		return NULL;
	}
	if (memcmp(h.boot_id, boot_id, sizeof(h.boot_id)) != 0) {
		snprintf(err, errlen, "state written in another boot: foreign");
		return NULL;
	}
	if (pid != 0 && h.pid != (int32_t)pid) {
		snprintf(err, errlen, "state written by pid %d, not by this "
		    "broker (%d): foreign", (int)h.pid, (int)pid);
		return NULL;
	}
	st = uffd_broker__state__v1__state__unpack(NULL, h.length,
	    buf + sizeof(h));
	if (st == NULL) {
		snprintf(err, errlen, "state does not decode");
		return NULL;
	}
	return st;
}

uint8_t *
state_read_all(int fd, size_t *len, char *err, size_t errlen)
{
	struct stat sb;
	uint8_t *buf;
	size_t got = 0;
	ssize_t n;

	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "state fd %d is not a file", fd);
		return NULL;
	}
	if (sb.st_size > STATE_MAX_BYTES) {
		snprintf(err, errlen, "state of %lld bytes is over the limit",
		    (long long)sb.st_size);
		return NULL;
	}
	if ((buf = malloc(sb.st_size > 0 ? (size_t)sb.st_size : 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	while (got < (size_t)sb.st_size &&
	    (n = pread(fd, buf + got, (size_t)sb.st_size - got, got)) > 0)
		got += (size_t)n;
	*len = got;
	return buf;
}

BrokerState *
state_read(int fd, pid_t pid, char *err, size_t errlen)
{
	uint8_t boot_id[16], *buf;
	BrokerState *st;
	size_t len;

	if (state_boot_id(boot_id) < 0) {
		snprintf(err, errlen, "cannot read this boot's id");
		return NULL;
	}
	if ((buf = state_read_all(fd, &len, err, errlen)) == NULL)
		return NULL;
	st = state_decode(buf, len, pid, boot_id, err, errlen);
	free(buf);
	return st;
}

void
state_free(BrokerState *st)
{
	if (st != NULL)
		uffd_broker__state__v1__state__free_unpacked(st, NULL);
}

/* The encoder: the broker's structures as messages, owned by one arena. */
struct enc {
	UffdBroker__State__V1__Listener *lis;
	UffdBroker__State__V1__Listener **lisp;
	UffdBroker__State__V1__Account *acc;
	UffdBroker__State__V1__Account **accp;
	UffdBroker__State__V1__Session *ses;
	UffdBroker__State__V1__Session **sesp;
	UffdBroker__State__V1__Grant *grants;
	UffdBroker__State__V1__Spent *spe;
	UffdBroker__State__V1__Spent **spep;
	UffdBroker__State__V1__RuleCounters *rules;
	UffdBroker__State__V1__RuleCounters **rulesp;
	UffdBroker__State__V1__Backoff *bo;
	UffdBroker__State__V1__Backoff **bop;
	unsigned int walk;		/* accounts written: account_walk_first() */
	uint8_t abi[SHA256_LEN];
};

static void
enc_free(struct enc *e)
{
	free(e->lis); free(e->lisp); free(e->acc); free(e->accp);
	free(e->ses); free(e->sesp); free(e->grants); free(e->spe);
	free(e->spep); free(e->rules); free(e->rulesp); free(e->bo);
	free(e->bop);
}

/* Each account once: a session's and its spent records' may be shared. */
static void
enc_account(struct enc *e, BrokerState *st, struct account *a)
{
	UffdBroker__State__V1__Account *m;

	if (!account_walk_first(a, e->walk))
		return;
	m = &e->acc[st->n_accounts];
	uffd_broker__state__v1__account__init(m);
	m->mm_id = a->mm_id;
	m->tracker = a->tracker;
	m->live_bound = a->live_bound;
	m->has_unseen = a->unseen != 0;
	m->unseen = a->unseen;
	e->accp[st->n_accounts++] = m;
}

static bool
enc_alloc(struct enc *e, size_t nl, size_t ns, size_t nsp, size_t nr)
{
	size_t na = ns + nsp + 1;

	e->lis = calloc(nl + 1, sizeof(*e->lis));
	e->lisp = calloc(nl + 1, sizeof(*e->lisp));
	e->acc = calloc(na, sizeof(*e->acc));
	e->accp = calloc(na, sizeof(*e->accp));
	e->ses = calloc(ns + 1, sizeof(*e->ses));
	e->sesp = calloc(ns + 1, sizeof(*e->sesp));
	e->grants = calloc(ns + 1, sizeof(*e->grants));
	e->spe = calloc(nsp + 1, sizeof(*e->spe));
	e->spep = calloc(nsp + 1, sizeof(*e->spep));
	e->rules = calloc(nr + 1, sizeof(*e->rules));
	e->rulesp = calloc(nr + 1, sizeof(*e->rulesp));
	e->bo = calloc(VERIFIER_BACKOFF_UIDS, sizeof(*e->bo));
	e->bop = calloc(VERIFIER_BACKOFF_UIDS, sizeof(*e->bop));
	return e->lis && e->lisp && e->acc && e->accp && e->ses &&
	    e->sesp && e->grants && e->spe && e->spep && e->rules &&
	    e->rulesp && e->bo && e->bop;
}

static void
enc_session(struct enc *e, BrokerState *st, struct session *s)
{
	UffdBroker__State__V1__Session *m = &e->ses[st->n_sessions];
	UffdBroker__State__V1__Grant *g = &e->grants[st->n_sessions];

	uffd_broker__state__v1__session__init(m);
	uffd_broker__state__v1__grant__init(g);
	g->kernel_faults = s->grant.kernel_faults;
	g->features = s->grant.features;
	g->max_uffds = s->grant.max_uffds;
	g->max_sessions_per_uid = s->grant.max_sessions_per_uid;
	g->forked_sessions = s->grant.forked_sessions;
	g->prove_filter = s->grant.prove_filter;
	m->id = s->id;
	m->state = s->state;
	m->sock = s->sock;
	m->pidfd = s->pidfd;
	m->pid = s->pid;
	m->uid = s->uid;
	m->gid = s->gid;
	m->refusal = s->refusal;
	m->listener = s->lis != NULL ? s->lis->id : 0;
	m->forked = s->forked;
	m->probe_uffd = s->probe_uffd;
	m->account = s->acct != NULL ? s->acct->mm_id : 0;
	m->proof = s->proof;
	m->proof_fd = s->proof_fd;
	m->unwanted_fds = s->unwanted_fds;
	m->quota_hit = s->quota_hit;
	m->grant = g;
	m->rule = (char *)s->rule_name;
	m->has_rule = s->rule != NULL;
	m->dummy_page = s->dummy_page;
	m->page_size = s->page_size;
	m->started_ns = NS(s->started);
	m->pending = s->pending;
	m->last_continue_ns = NS(s->last_continue);
	m->granted = s->granted;
	m->refused = s->refused;
	m->last_refusal = s->last_refusal;
	m->has_speaks_seq = true;
	m->speaks_seq = s->speaks_seq;
	m->has_continued_id = true;
	m->continued_id = s->continued_id;
	m->has_attach_ino = s->attach_ino != 0;
	m->attach_ino = s->attach_ino;
	e->sesp[st->n_sessions++] = m;
	enc_account(e, st, s->acct);
}

static void
enc_spent(struct enc *e, BrokerState *st, struct spent *sp)
{
	UffdBroker__State__V1__Spent *m = &e->spe[st->n_spent];

	uffd_broker__state__v1__spent__init(m);
	m->id = sp->id;
	m->pid = sp->pid;
	m->uid = sp->uid;
	m->pidfd = sp->pidfd;
	m->probe_uffd = sp->probe_uffd;
	m->account = sp->acct != NULL ? sp->acct->mm_id : 0;
	m->dummy_page = sp->dummy_page;
	m->page_size = sp->page_size;
	e->spep[st->n_spent++] = m;
	enc_account(e, st, sp->acct);
}

static void
enc_broker(struct enc *e, BrokerState *st, struct broker *b)
{
	const struct policy *p = b->policy;
	const struct verifier *v = &b->verifier;
	size_t i;

	st->next_id = b->reg.next_id;
	st->ticks = b->ticks;
	st->listen_fd = b->listen_fd;
	st->socket_activated = b->cfg.socket_activated;
	st->lock_fd = b->lock_fd;
	st->sock_dev = b->sock_dev;
	st->sock_ino = b->sock_ino;
	st->devfd = b->devfd;
	st->timerfd = b->timerfd;
	st->sigfd = b->sigfd;
	st->notify_fd = sdnotify_socket();
	verifier_abi(e->abi);
	st->has_verifier_abi = true;
	st->verifier_abi.data = e->abi;
	st->verifier_abi.len = SHA256_LEN;
	st->verifier_sock = v->sock;
	st->verifier_pid = v->pid;
	st->verifier_seq = v->seq;
	st->closer_replaced = b->closer_replaced;
	st->no_match = p->no_match;
	st->upgrades = b->upgrade.count + 1;
	if (b->upgrade.exec_at.tv_sec != 0) {
		st->has_exec_started_ns = true;
		st->exec_started_ns = NS(b->upgrade.exec_at);
	}
	if (b->upgrade.jailed) {
		st->has_filter_digest = true;
		st->filter_digest.data = b->upgrade.filter_digest;
		st->filter_digest.len = SHA256_LEN;
	}
	st->backoff = e->bop;
	for (i = 0; i < VERIFIER_BACKOFF_UIDS; i++) {
		UffdBroker__State__V1__Backoff *m;

		if (v->backoff[i].until == 0)
			continue;
		m = &e->bo[st->n_backoff];
		uffd_broker__state__v1__backoff__init(m);
		m->uid = v->backoff[i].uid;
		m->until_ms = v->backoff[i].until;
		e->bop[st->n_backoff++] = m;
	}
	st->rules = e->rulesp;
	for (i = 0; i < p->nrules; i++) {
		UffdBroker__State__V1__RuleCounters *m = &e->rules[i];

		uffd_broker__state__v1__rule_counters__init(m);
		m->name = p->rules[i].name;
		m->sessions = p->rules[i].sessions;
		m->refusals = p->rules[i].refusals;
		m->granted = p->rules[i].granted;
		m->refused = p->rules[i].refused;
		e->rulesp[st->n_rules++] = m;
	}
}

static void
enc_listener(struct enc *e, BrokerState *st, const struct listener *l)
{
	UffdBroker__State__V1__Listener *m = &e->lis[st->n_listeners];

	uffd_broker__state__v1__listener__init(m);
	m->id = l->id;
	m->uid = l->uid;
	m->fd = l->fd;
	m->max_orphans = l->max_orphans;
	m->misses = l->misses;
	m->orphaned_ns = l->refs == 0 ? NS(l->orphaned) : 0;
	m->has_last_id = l->has_last_id;
	m->last_id = l->last_id;
	e->lisp[st->n_listeners++] = m;
}

/* The records that are gone, by kind, for a journal entry. */
static bool
enc_gone(BrokerState *st, const struct registry *r)
{
	size_t i;

	st->gone_sessions = calloc(r->ngone + 1, sizeof(uint64_t));
	st->gone_listeners = calloc(r->ngone + 1, sizeof(uint64_t));
	st->gone_spent = calloc(r->ngone + 1, sizeof(uint64_t));
	if (st->gone_sessions == NULL || st->gone_listeners == NULL ||
	    st->gone_spent == NULL)
		return false;
	for (i = 0; i < r->ngone; i++)
		switch (r->gone[i].kind) {
		case RECORD_SESSION:
			st->gone_sessions[st->n_gone_sessions++] = r->gone[i].id;
			break;
		case RECORD_LISTENER:
			st->gone_listeners[st->n_gone_listeners++] =
			    r->gone[i].id;
			break;
		case RECORD_SPENT:
			st->gone_spent[st->n_gone_spent++] = r->gone[i].id;
			break;
		}
	return true;
}

/*
 * The state framed: the whole of it (journal_seq 0), or a journal entry
 * (journal_seq > 0) of the broker's fields and the records the registry
 * says changed or went since the last entry. malloc'd, or NULL.
 */
static uint8_t *
pack(struct broker *b, uint64_t journal_seq, size_t *framed, char *err,
    size_t errlen)
{
	BrokerState st = UFFD_BROKER__STATE__V1__STATE__INIT;
	struct registry *r = &b->reg;
	bool entry = journal_seq > 0;
	struct enc e = { 0 };
	const struct listener *l;
	struct session *s;
	struct spent *sp;
	struct account *a;
	struct stat sb;
	size_t nl = 0, ns = 0, nsp = 0, na = 0, len;
	uint8_t boot_id[16], *msg = NULL, *buf = NULL;

	if (entry) {
		TAILQ_FOREACH(l, &r->changed_listeners, changed_entry)
			nl++;
		TAILQ_FOREACH(s, &r->changed_sessions, changed_entry)
			ns++;
		TAILQ_FOREACH(sp, &r->changed_spent, changed_entry)
			nsp++;
		TAILQ_FOREACH(a, &r->changed_accounts, changed_entry)
			na++;
	} else {
		TAILQ_FOREACH(l, &r->listeners, entry)
			nl++;
		TAILQ_FOREACH(s, &r->sessions, entry)
			ns++;
		TAILQ_FOREACH(sp, &r->spent, entry)
			nsp++;
	}
	if (state_boot_id(boot_id) < 0) {
		snprintf(err, errlen, "cannot read this boot's id");
		return NULL;
	}
	if (!enc_alloc(&e, nl, ns, nsp + na, b->policy->nrules) ||
	    (entry && !enc_gone(&st, r))) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	e.walk = account_walk_begin();
	enc_broker(&e, &st, b);
	if (b->store.listen_ino == 0 && fstat(b->listen_fd, &sb) == 0)
		b->store.listen_ino = sb.st_ino;	/* the socket's for life */
	if (b->store.listen_ino != 0) {
		st.has_listen_ino = true;
		st.listen_ino = b->store.listen_ino;
	}
	if (b->store.on) {
		st.has_generation = true;
		st.generation = b->store.generation;
	}
	if (entry) {
		st.has_journal_seq = true;
		st.journal_seq = journal_seq;
	}
	st.listeners = e.lisp;
	st.accounts = e.accp;
	st.sessions = e.sesp;
	st.spent = e.spep;
	if (entry) {
		TAILQ_FOREACH(l, &r->changed_listeners, changed_entry)
			enc_listener(&e, &st, l);
		TAILQ_FOREACH(s, &r->changed_sessions, changed_entry)
			enc_session(&e, &st, s);
		TAILQ_FOREACH(sp, &r->changed_spent, changed_entry)
			enc_spent(&e, &st, sp);
		TAILQ_FOREACH(a, &r->changed_accounts, changed_entry)
			enc_account(&e, &st, a);
	} else {
		TAILQ_FOREACH(l, &r->listeners, entry)
			enc_listener(&e, &st, l);
		TAILQ_FOREACH(s, &r->sessions, entry)
			enc_session(&e, &st, s);
		TAILQ_FOREACH(sp, &r->spent, entry)
			enc_spent(&e, &st, sp);
	}

	len = uffd_broker__state__v1__state__get_packed_size(&st);
	if ((msg = malloc(len ? len : 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	uffd_broker__state__v1__state__pack(&st, msg);
	if ((buf = state_frame(msg, len, getpid(), boot_id, framed)) == NULL)
		snprintf(err, errlen, "state of %zu bytes is over the limit", len);
out:
	free(msg);
	free(st.gone_sessions);
	free(st.gone_listeners);
	free(st.gone_spent);
	enc_free(&e);
	return buf;
}

uint8_t *
state_pack(struct broker *b, size_t *framed, char *err, size_t errlen)
{
	return pack(b, 0, framed, err, errlen);
}

uint8_t *
state_pack_entry(struct broker *b, uint64_t journal_seq, size_t *framed,
    char *err, size_t errlen)
{
	return pack(b, journal_seq, framed, err, errlen);
}

/* Write buf whole at offset 0 of fd, cut to its length. Returns 0 or -errno. */
int
state_write(int fd, const uint8_t *buf, size_t len)
{
	int rc;

	if (lseek(fd, 0, SEEK_SET) < 0)
		return -errno;
	if ((rc = state_write_here(fd, buf, len)) < 0)
		return rc;
	return ftruncate(fd, (off_t)len) < 0 ? -errno : 0;
}

int
state_write_here(int fd, const uint8_t *buf, size_t len)
{
	size_t off = 0;
	ssize_t n = 0;

	while (off < len && (n = write(fd, buf + off, len - off)) > 0)
		off += (size_t)n;
	if (off != len)
		return n < 0 ? -errno : -EIO;
	return 0;
}

int
state_save(struct broker *b, char *err, size_t errlen)
{
	uint8_t *buf;
	size_t framed;
	int fd, rc;

	if ((buf = state_pack(b, &framed, err, errlen)) == NULL)
		return -1;
	fd = memfd_create("uffd-brokerd-state", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0) {
		snprintf(err, errlen, "memfd_create: %s", strerror(errno));
		free(buf);
		return -1;
	}
	/* Sealed: what the next broker reads is what this one wrote. */
	if ((rc = state_write(fd, buf, framed)) < 0 || fcntl(fd, F_ADD_SEALS,
	    F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
		snprintf(err, errlen, "writing the state: %s",
		    strerror(rc < 0 ? -rc : errno));
		close(fd);
		fd = -1;
	}
	free(buf);
	return fd;
}

/* ---- a whole state and the journal over it, as one (a restart's) ---- */

/* A record of one part, by its id, in the order written. */
struct rec {
	uint64_t	id;
	size_t		order;
	void		*m;
};

static int
cmp_rec(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void
swap_bytes(unsigned char *a, unsigned char *b, size_t size)
{
	unsigned char t;

	while (size-- > 0) {
		t = *a;
		*a++ = *b;
		*b++ = t;
	}
}

static void
sift_down(unsigned char *base, size_t root, size_t n, size_t size,
    int (*cmp)(const void *, const void *))
{
	size_t child;

	while ((child = 2 * root + 1) < n) {
		if (child + 1 < n && cmp(base + child * size,
		    base + (child + 1) * size) < 0)
			child++;
		if (cmp(base + root * size, base + child * size) >= 0)
			return;
		swap_bytes(base + root * size, base + child * size, size);
		root = child;
	}
}

/*
 * qsort(3) without qsort: glibc's asks sysinfo(2) how much memory there is
 * before a large sort, which the jail forbids. A heap sort, in place.
 */
void
state_sort(void *base, size_t n, size_t size,
    int (*cmp)(const void *, const void *))
{
	unsigned char *b = base;
	size_t i;

	if (n < 2)
		return;
	for (i = n / 2; i-- > 0;)
		sift_down(b, i, n, size, cmp);
	for (i = n - 1; i > 0; i--) {
		swap_bytes(b, b + i * size, size);
		sift_down(b, 0, i, size, cmp);
	}
}

/*
 * The last version of each record, unless it is gone (ids are never
 * reused: gone is for good), as an array of message pointers in id order.
 */
static void **
latest(struct rec *r, size_t n, uint64_t *gone, size_t ngone, size_t *out)
{
	void **v;
	size_t i, k = 0;

	state_sort(r, n, sizeof(*r), cmp_rec);
	state_sort(gone, ngone, sizeof(*gone), cmp_u64);
	if ((v = calloc(n + 1, sizeof(*v))) == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		if (i + 1 < n && r[i + 1].id == r[i].id)
			continue;	/* a later version follows */
		if (ngone > 0 && bsearch(&r[i].id, gone, ngone, sizeof(*gone),
		    cmp_u64) != NULL)
			continue;
		v[k++] = r[i].m;
	}
	*out = k;
	return v;
}

/* The parts' records of one kind, each with its id and place. */
#define GATHER(v, field, idfield, recs, nrecs)				\
	do {								\
		size_t p_, i_;						\
		for (p_ = 0; p_ < (v)->nparts; p_++)			\
			for (i_ = 0; i_ < (v)->parts[p_]->n_##field; i_++) { \
				(recs)[nrecs].id =			\
				    (v)->parts[p_]->field[i_]->idfield;	\
				(recs)[nrecs].order = (nrecs);		\
				(recs)[nrecs].m = (v)->parts[p_]->field[i_]; \
				(nrecs)++;				\
			}						\
	} while (0)

#define GONE(v, field, out, nout)					\
	do {								\
		size_t p_, i_;						\
		for (p_ = 0; p_ < (v)->nparts; p_++)			\
			for (i_ = 0; i_ < (v)->parts[p_]->n_##field; i_++) \
				(out)[(nout)++] = (v)->parts[p_]->field[i_]; \
	} while (0)

/* How many records of one kind all the parts hold. */
#define COUNT(v, field, n)						\
	do {								\
		size_t p_;						\
		for (p_ = 0; p_ < (v)->nparts; p_++)			\
			(n) += (v)->parts[p_]->n_##field;		\
	} while (0)

/* Is an account named by a session or spent record of the view? */
static bool
account_named(const BrokerState *st, uint64_t mm_id)
{
	size_t i;

	for (i = 0; i < st->n_sessions; i++)
		if (st->sessions[i]->account == mm_id)
			return true;
	for (i = 0; i < st->n_spent; i++)
		if (st->spent[i]->account == mm_id)
			return true;
	return false;
}

static bool
merge(struct state_view *v)
{
	BrokerState *last = v->parts[v->nparts - 1], *st = &v->view;
	size_t nr = 0, ng = 0, n, ngone, i, k;
	struct rec *recs;
	uint64_t *gone;
	bool ok = false;

	COUNT(v, sessions, nr);
	COUNT(v, listeners, nr);
	COUNT(v, spent, nr);
	COUNT(v, accounts, nr);
	COUNT(v, gone_sessions, ng);
	COUNT(v, gone_listeners, ng);
	COUNT(v, gone_spent, ng);
	recs = calloc(nr + 1, sizeof(*recs));
	gone = calloc(ng + 1, sizeof(*gone));

	/* The broker's own fields, rules and back-off: the last part's. */
	*st = *last;
	st->has_journal_seq = false;
	st->n_gone_sessions = st->n_gone_listeners = st->n_gone_spent = 0;
	st->sessions = NULL;
	st->listeners = NULL;
	st->spent = NULL;
	st->accounts = NULL;
	st->n_sessions = st->n_listeners = st->n_spent = st->n_accounts = 0;
	if (recs == NULL || gone == NULL)
		goto out;

	n = ngone = 0;
	GATHER(v, sessions, id, recs, n);
	GONE(v, gone_sessions, gone, ngone);
	if ((st->sessions = (void *)latest(recs, n, gone, ngone,
	    &st->n_sessions)) == NULL)
		goto out;
	n = ngone = 0;
	GATHER(v, listeners, id, recs, n);
	GONE(v, gone_listeners, gone, ngone);
	if ((st->listeners = (void *)latest(recs, n, gone, ngone,
	    &st->n_listeners)) == NULL)
		goto out;
	n = ngone = 0;
	GATHER(v, spent, id, recs, n);
	GONE(v, gone_spent, gone, ngone);
	if ((st->spent = (void *)latest(recs, n, gone, ngone,
	    &st->n_spent)) == NULL)
		goto out;
	/* Accounts go with the records that name them. */
	n = 0;
	GATHER(v, accounts, mm_id, recs, n);
	if ((st->accounts = (void *)latest(recs, n, gone, 0,
	    &st->n_accounts)) == NULL)
		goto out;
	for (i = k = 0; i < st->n_accounts; i++)
		if (account_named(st, st->accounts[i]->mm_id))
			st->accounts[k++] = st->accounts[i];
	st->n_accounts = k;
	ok = true;
out:
	free(recs);
	free(gone);
	return ok;
}

void
state_view_close(struct state_view *v)
{
	size_t i;

	free(v->view.sessions);
	free(v->view.listeners);
	free(v->view.spent);
	free(v->view.accounts);
	for (i = 0; i < v->nparts; i++)
		state_free(v->parts[i]);
	free(v->parts);
	memset(v, 0, sizeof(*v));
}

int
state_view_open(struct state_view *v, BrokerState *base,
    const uint8_t *journal, size_t len, const uint8_t boot_id[16])
{
	struct state_header h;
	BrokerState *e, **grown;
	size_t off = 0, cap = 16;
	char err[256];

	memset(v, 0, sizeof(*v));
	snprintf(v->stop, sizeof(v->stop), "its end");
	if ((v->parts = calloc(cap, sizeof(*v->parts))) == NULL) {
		state_free(base);
		return -1;
	}
	v->parts[v->nparts++] = base;
	while (off < len) {
		if (len - off < sizeof(h) || (memcpy(&h, journal + off,
		    sizeof(h)), h.length > len - off - sizeof(h))) {
			snprintf(v->stop, sizeof(v->stop), "a torn entry");
			break;
		}
		e = state_decode(journal + off, sizeof(h) + h.length, 0,
		    boot_id, err, sizeof(err));
		if (e == NULL) {
			snprintf(v->stop, sizeof(v->stop), "an entry that does "
			    "not check: %s", err);
			break;
		}
		if (!e->has_journal_seq || !e->has_generation ||
		    !base->has_generation ||
		    e->generation != base->generation ||
		    e->journal_seq != v->entries + 1) {
			snprintf(v->stop, sizeof(v->stop), "an entry of another "
			    "state, or out of order");
			state_free(e);
			break;
		}
		if (v->nparts == cap) {
			cap *= 2;
			if ((grown = reallocarray(v->parts, cap,
			    sizeof(*grown))) == NULL) {
				state_free(e);
				state_view_close(v);
				return -1;
			}
			v->parts = grown;
		}
		v->parts[v->nparts++] = e;
		v->entries++;
		off += sizeof(h) + h.length;
	}
	if (!merge(v)) {
		state_view_close(v);
		return -1;
	}
	return 0;
}
