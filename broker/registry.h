/* SPDX-License-Identifier: ISC */
/*
 * registry.h - the records the broker owns: sessions, listeners (and their
 * index by file), spent records, and the id counter. Every record comes and
 * goes through here, and every change to one is said here, so that:
 *
 *   - the whole can be walked (status, the state an upgrade hands over);
 *   - what changed since the state was last written is known record by
 *     record, and only that is written to the fd store's journal
 *     (store.c): a grant costs one session's record, not every session's.
 *
 * The registry does not decide anything: session.c, supervise.c and the
 * grant logic decide, and tell it. Records are freed at the end of the loop
 * turn that buried them (an epoll event of the same turn may point at one).
 */
#ifndef UFFD_BROKER_REGISTRY_H
#define UFFD_BROKER_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

struct session;
struct listener;
struct spent;
struct account;

TAILQ_HEAD(session_list, session);
TAILQ_HEAD(listener_list, listener);
TAILQ_HEAD(spent_list, spent);
TAILQ_HEAD(account_list, account);

/* A record's kind, in the journal's "gone" lists. */
enum record_kind { RECORD_SESSION, RECORD_LISTENER, RECORD_SPENT };

struct gone {
	enum record_kind kind;
	uint64_t	id;
};

struct registry {
	struct session_list sessions;		/* live, oldest first */
	struct session_list graveyard;		/* buried this turn */
	struct listener_list listeners;
	struct listener_list dead_listeners;	/* closed this turn */
	/* The live listeners in kcmp(2)'s order of their files. */
	struct listener	**by_file;
	size_t		nby_file, by_file_cap;
	struct spent_list spent;
	unsigned int	nsessions;
	uint64_t	next_id;

	/*
	 * Changes since the journal was last written (only while tracking:
	 * the fd store is on). A record is on its changed list at most once.
	 */
	bool		tracking;
	bool		changed;		/* anything, globals included */
	struct session_list changed_sessions;
	struct listener_list changed_listeners;
	struct spent_list changed_spent;
	struct account_list changed_accounts;	/* counts only: live_bound */
	struct gone	*gone;
	size_t		ngone, gone_cap;
};

#define REGISTRY_SESSIONS(r)	(&(r)->sessions)
#define REGISTRY_LISTENERS(r)	(&(r)->listeners)
#define REGISTRY_SPENT(r)	(&(r)->spent)

void	registry_init(struct registry *r);
/* At shut-down: the index and the change lists (records are freed apart). */
void	registry_free(struct registry *r);

/* A new session's id: never one before it, across upgrades and restarts. */
uint64_t registry_next_id(struct registry *r);
void	registry_add_session(struct registry *r, struct session *s);
/* Out of the live list and into the graveyard; freed by reap. */
void	registry_bury_session(struct registry *r, struct session *s);
/* The next buried session, taken off the graveyard (NULL: none). */
struct session *registry_reap_session(struct registry *r);
struct session *registry_session_by_id(struct registry *r, uint64_t id);

struct listener *registry_listener_by_id(struct registry *r, uint64_t id);
/*
 * Where fd's file is, or would go, among the live listeners in file order:
 * O(log n) kcmp calls. False when kcmp cannot order them.
 */
bool	registry_listener_search(struct registry *r, int fd, size_t *pos,
	    bool *found);
/* Room for one more listener in the index: false if out of memory. */
bool	registry_listener_room(struct registry *r);
/* A new listener, at pos of the index (registry_listener_search()). */
void	registry_add_listener(struct registry *r, struct listener *l,
	    size_t pos);
/* Closed: out of the index and the live list; freed by reap. */
void	registry_bury_listener(struct registry *r, struct listener *l);
struct listener *registry_reap_listener(struct registry *r);

void	registry_add_spent(struct registry *r, struct spent *sp);
void	registry_remove_spent(struct registry *r, struct spent *sp);

/* A record changed: it is written to the journal before the next send. */
void	registry_session_changed(struct session *s);
void	registry_listener_changed(struct listener *l);
void	registry_spent_changed(struct spent *sp);
/* An address space's count changed; it is freed (its records went). */
void	registry_account_changed(struct account *a);
void	registry_account_freed(struct account *a);
/* Only the broker's own fields (counters, ids, ticks) changed. */
void	registry_globals_changed(struct registry *r);
/*
 * The journal was written: the change lists start again; or, with keep,
 * only the gone list. Before a send, what was written is kept marked, and
 * written again at the turn's end: the counters an event moves after its
 * reply do not say so. (The records do, as far as the test build's audit
 * sees; keeping them costs their bytes in an entry written anyway.)
 */
void	registry_changes_written(struct registry *r, bool keep);

#endif
