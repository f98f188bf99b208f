/* SPDX-License-Identifier: ISC */
/*
 * liveness.c - the dummy-page check (docs/design.md §4). The probe uffd is
 * bound to the client's mm; UFFDIO_ZEROPAGE on the registered dummy page
 * succeeds (first time) or fails with EEXIST while the mm lives, and fails
 * with ESRCH once the process has exited or exec'd.
 */
#include <errno.h>
#include <poll.h>
#include <linux/userfaultfd.h>
#include <string.h>
#include <stdint.h>
#include <sys/ioctl.h>

#include "broker.h"
#include "log.h"

int
liveness_zeropage(int probe_uffd, uint64_t page, uint32_t page_size)
{
	struct uffdio_zeropage zero = {
		.range = { .start = page, .len = page_size },
		.mode = UFFDIO_ZEROPAGE_MODE_DONTWAKE,
	};

	if (probe_uffd < 0)
		return -EBADF;
	if (ioctl(probe_uffd, UFFDIO_ZEROPAGE, &zero) == 0 || errno == EEXIST)
		return 0;
	return -errno;
}

/*
 * Is the session's process alive? Only ESRCH says it is gone (exited or
 * exec'd); any other failure (the client unmapped its dummy page, say) is
 * a misbehaving client, which also ends the session, but alive.
 */
bool
liveness_probe(struct session *s, const char **why)
{
	int rc = liveness_zeropage(s->probe_uffd, s->dummy_page, s->page_size);

	if (rc == 0)
		return true;
	*why = rc == -ESRCH ? "process exited or exec'd" :
	    "liveness probe failed (dummy page unusable)";
	return false;
}

/*
 * A creation the broker continued must be attached at once; one that is not
 * (the kernel failed it, or the client kept the uffd to itself) would hold
 * its quota slot for ever. Creations are continued in order, so all pending
 * ones are older than the last: drop them together once it is stale.
 */
static void
expire_pending(struct session *s)
{
	if (s->pending == 0 ||
	    broker_elapsed_ms(&s->last_continue) <= s->b->cfg.handshake_timeout_ms)
		return;
	audit_session(s, "pending_expired", "session=%llu pid=%d uid=%u "
	    "pending=%u reason=\"creation continued but never attached\"",
	    (unsigned long long)s->id, (int)s->pid, (unsigned)s->uid,
	    s->pending);
	attach_unseen(s);	/* one a killed broker may have initialised */
	session_set_pending(s, 0);
	session_sync_fds(s);
}

/*
 * Has the peer hung up? A client that ends its session closes the socket
 * and then unmaps its dummy page; a probe between the two, before the loop
 * read the hang-up, would blame the page for a clean close.
 */
static bool
hung_up(const struct session *s)
{
	struct pollfd pfd = { .fd = s->sock, .events = POLLRDHUP };

	return poll(&pfd, 1, 0) == 1 &&
	    (pfd.revents & (POLLHUP | POLLRDHUP | POLLERR)) != 0;
}

/* One slice's sessions: see liveness_tick(). */
static void
tick_slice(struct broker *b, unsigned int slice)
{
	struct session *s, *next;
	const char *why;

	for (s = TAILQ_FIRST(REGISTRY_SESSIONS(&b->reg)); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		if (s->id % LIVENESS_SLICES != slice)
			continue;
		if (s->state == SESSION_READY) {
			if (liveness_probe(s, &why))
				expire_pending(s);
			else if (hung_up(s))
				session_hangup(s);
			else
				session_kill(s, why);
		} else if (broker_elapsed_ms(&s->started) >
		    b->cfg.handshake_timeout_ms)
			session_kill(s, "handshake timed out");
	}
}

/*
 * Each tick, for the sessions of its slice: probe the ready ones, expire
 * their stale pending creations, drop handshakes that take too long; ticks
 * the loop missed (it was busy, or stopped) are caught up, a whole sweep at
 * most. Once an interval: prune spent records, flush the audit summaries,
 * close listeners no session took up.
 */
void
liveness_tick(struct broker *b, uint64_t ticks)
{
	struct listener *l, *lnext;
	bool interval = false;
	unsigned int slice;

	if (ticks > LIVENESS_SLICES)
		ticks = LIVENESS_SLICES;
	while (ticks-- > 0) {
		slice = b->ticks++ % LIVENESS_SLICES;
		tick_slice(b, slice);
		interval |= slice == 0;
	}
	if (!interval)
		return;
	session_spent_prune(b, false);
	/* Even when the peer has gone quiet, its summary is written. */
	audit_flush(b, false);
	for (l = TAILQ_FIRST(REGISTRY_LISTENERS(&b->reg)); l != NULL; l = lnext) {
		lnext = TAILQ_NEXT(l, entry);
		if (l->refs == 0 && broker_elapsed_ms(&l->orphaned) >
		    b->cfg.handshake_timeout_ms) {
			audit_uid(b, l->uid, "listener_closed", "listener=%llu "
			    "uid=%u reason=\"no session joined its processes\"",
			    (unsigned long long)l->id, (unsigned)l->uid);
			listener_close(l);
		}
	}
}
