/* SPDX-License-Identifier: ISC */
/*
 * registry.c - the records the broker owns, and what changed in them
 * (registry.h).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "broker.h"
#include "log.h"

void
registry_init(struct registry *r)
{
	memset(r, 0, sizeof(*r));
	TAILQ_INIT(&r->sessions);
	TAILQ_INIT(&r->graveyard);
	TAILQ_INIT(&r->listeners);
	TAILQ_INIT(&r->dead_listeners);
	TAILQ_INIT(&r->spent);
	TAILQ_INIT(&r->changed_sessions);
	TAILQ_INIT(&r->changed_listeners);
	TAILQ_INIT(&r->changed_spent);
	TAILQ_INIT(&r->changed_accounts);
}

void
registry_free(struct registry *r)
{
	free(r->by_file);
	r->by_file = NULL;
	r->nby_file = r->by_file_cap = 0;
	free(r->gone);
	r->gone = NULL;
	r->ngone = r->gone_cap = 0;
}

/* A record that left: the journal says so (it is never one again). */
static void
record_gone(struct registry *r, enum record_kind kind, uint64_t id)
{
	struct gone *grown;
	size_t cap;

	if (!r->tracking)
		return;
	r->changed = true;
	if (r->ngone == r->gone_cap) {
		cap = r->gone_cap ? 2 * r->gone_cap : 64;
		if ((grown = reallocarray(r->gone, cap, sizeof(*grown))) ==
		    NULL)
			fatal("registry: reallocarray");
		r->gone = grown;
		r->gone_cap = cap;
	}
	r->gone[r->ngone++] = (struct gone){ .kind = kind, .id = id };
}

uint64_t
registry_next_id(struct registry *r)
{
	registry_globals_changed(r);
	return ++r->next_id;
}

void
registry_add_session(struct registry *r, struct session *s)
{
	TAILQ_INSERT_TAIL(&r->sessions, s, entry);
	r->nsessions++;
	registry_session_changed(s);
}

void
registry_bury_session(struct registry *r, struct session *s)
{
	if (s->changed) {
		TAILQ_REMOVE(&r->changed_sessions, s, changed_entry);
		s->changed = false;
	}
	TAILQ_REMOVE(&r->sessions, s, entry);
	TAILQ_INSERT_TAIL(&r->graveyard, s, entry);
	r->nsessions--;
	record_gone(r, RECORD_SESSION, s->id);
}

struct session *
registry_reap_session(struct registry *r)
{
	struct session *s;

	if ((s = TAILQ_FIRST(&r->graveyard)) != NULL)
		TAILQ_REMOVE(&r->graveyard, s, entry);
	return s;
}

struct session *
registry_session_by_id(struct registry *r, uint64_t id)
{
	struct session *s;

	TAILQ_FOREACH(s, &r->sessions, entry)
		if (s->id == id)
			return s;
	return NULL;
}

struct listener *
registry_listener_by_id(struct registry *r, uint64_t id)
{
	struct listener *l;

	TAILQ_FOREACH(l, &r->listeners, entry)
		if (l->id == id)
			return l;
	return NULL;
}

/*
 * kcmp(2) orders the files of two fds (by a per-boot obfuscated pointer):
 * -1 or 1, 0 for the same file, 2 when it cannot say.
 */
static int
file_order(int a, int b)
{
	pid_t self = getpid();

	switch (syscall(SYS_kcmp, self, self, KCMP_FILE, a, b)) {
	case 0:
		return 0;
	case 1:
		return -1;
	case 2:
		return 1;
	default:
		return 2;
	}
}

bool
registry_listener_search(struct registry *r, int fd, size_t *pos,
    bool *found)
{
	size_t lo = 0, hi = r->nby_file, mid;
	int o;

	*found = false;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((o = file_order(fd, r->by_file[mid]->fd)) == 2)
			return false;
		if (o == 0) {
			*found = true;
			lo = mid;
			break;
		}
		if (o < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	*pos = lo;
	return true;
}

bool
registry_listener_room(struct registry *r)
{
	struct listener **grown;
	size_t cap;

	if (r->nby_file < r->by_file_cap)
		return true;
	cap = r->by_file_cap ? 2 * r->by_file_cap : 64;
	if ((grown = reallocarray(r->by_file, cap, sizeof(*grown))) == NULL)
		return false;
	r->by_file = grown;
	r->by_file_cap = cap;
	return true;
}

void
registry_add_listener(struct registry *r, struct listener *l, size_t pos)
{
	TAILQ_INSERT_TAIL(&r->listeners, l, entry);
	memmove(&r->by_file[pos + 1], &r->by_file[pos],
	    (r->nby_file - pos) * sizeof(*r->by_file));
	r->by_file[pos] = l;
	r->nby_file++;
	registry_listener_changed(l);
}

void
registry_bury_listener(struct registry *r, struct listener *l)
{
	size_t i;

	for (i = 0; i < r->nby_file && r->by_file[i] != l; i++)
		;
	if (i < r->nby_file) {
		memmove(&r->by_file[i], &r->by_file[i + 1],
		    (r->nby_file - i - 1) * sizeof(*r->by_file));
		r->nby_file--;
	}
	if (l->changed) {
		TAILQ_REMOVE(&r->changed_listeners, l, changed_entry);
		l->changed = false;
	}
	TAILQ_REMOVE(&r->listeners, l, entry);
	TAILQ_INSERT_TAIL(&r->dead_listeners, l, entry);
	record_gone(r, RECORD_LISTENER, l->id);
}

struct listener *
registry_reap_listener(struct registry *r)
{
	struct listener *l;

	if ((l = TAILQ_FIRST(&r->dead_listeners)) != NULL)
		TAILQ_REMOVE(&r->dead_listeners, l, entry);
	return l;
}

void
registry_add_spent(struct registry *r, struct spent *sp)
{
	TAILQ_INSERT_TAIL(&r->spent, sp, entry);
	registry_spent_changed(sp);
}

void
registry_remove_spent(struct registry *r, struct spent *sp)
{
	if (sp->changed) {
		TAILQ_REMOVE(&r->changed_spent, sp, changed_entry);
		sp->changed = false;
	}
	TAILQ_REMOVE(&r->spent, sp, entry);
	record_gone(r, RECORD_SPENT, sp->id);
}

void
registry_session_changed(struct session *s)
{
	struct registry *r = &s->b->reg;

	if (!r->tracking || s->state == SESSION_DEAD)
		return;
	r->changed = true;
	if (!s->changed) {
		s->changed = true;
		TAILQ_INSERT_TAIL(&r->changed_sessions, s, changed_entry);
	}
}

void
registry_listener_changed(struct listener *l)
{
	struct registry *r = &l->b->reg;

	if (!r->tracking || l->fd < 0)
		return;
	r->changed = true;
	if (!l->changed) {
		l->changed = true;
		TAILQ_INSERT_TAIL(&r->changed_listeners, l, changed_entry);
	}
}

void
registry_spent_changed(struct spent *sp)
{
	struct registry *r = &sp->b->reg;

	if (!r->tracking)
		return;
	r->changed = true;
	if (!sp->changed) {
		sp->changed = true;
		TAILQ_INSERT_TAIL(&r->changed_spent, sp, changed_entry);
	}
}

void
registry_account_changed(struct account *a)
{
	struct registry *r = &a->b->reg;

	if (!r->tracking)
		return;
	r->changed = true;
	if (!a->changed) {
		a->changed = true;
		TAILQ_INSERT_TAIL(&r->changed_accounts, a, changed_entry);
	}
}

void
registry_account_freed(struct account *a)
{
	if (a->changed) {
		TAILQ_REMOVE(&a->b->reg.changed_accounts, a, changed_entry);
		a->changed = false;
	}
}

void
registry_globals_changed(struct registry *r)
{
	if (r->tracking)
		r->changed = true;
}

void
registry_changes_written(struct registry *r, bool keep)
{
	struct session *s;
	struct listener *l;
	struct spent *sp;
	struct account *a;

	r->ngone = 0;
	if (keep)
		return;

	while ((s = TAILQ_FIRST(&r->changed_sessions)) != NULL) {
		TAILQ_REMOVE(&r->changed_sessions, s, changed_entry);
		s->changed = false;
	}
	while ((l = TAILQ_FIRST(&r->changed_listeners)) != NULL) {
		TAILQ_REMOVE(&r->changed_listeners, l, changed_entry);
		l->changed = false;
	}
	while ((sp = TAILQ_FIRST(&r->changed_spent)) != NULL) {
		TAILQ_REMOVE(&r->changed_spent, sp, changed_entry);
		sp->changed = false;
	}
	while ((a = TAILQ_FIRST(&r->changed_accounts)) != NULL) {
		TAILQ_REMOVE(&r->changed_accounts, a, changed_entry);
		a->changed = false;
	}
	r->changed = false;
}
