/* SPDX-License-Identifier: ISC */
/*
 * ratelimit.h - how many log lines about peers are written, as journald's
 * RateLimitBurst in RateLimitIntervalSec: a burst per interval, the rest
 * counted for a summary. Pure: the time is an argument, nothing is logged.
 */
#ifndef UFFD_BROKER_RATELIMIT_H
#define UFFD_BROKER_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ratelimit {
	uint64_t	start_ms;	/* of the current interval */
	unsigned int	lines;		/* let through in it */
};

/* One uid's limit and what it suppressed, an entry of a fixed table. */
struct uid_rate {
	struct ratelimit rl;
	uint64_t	suppressed;	/* since its last summary */
	uid_t		uid;
	bool		used;
};

/*
 * Is there room for one more line at now_ms? An interval begins with the
 * first line after the last one is over. The caller counts the line it
 * writes (rl->lines++).
 */
bool	ratelimit_room(struct ratelimit *rl, unsigned int burst,
	    unsigned int interval_ms, uint64_t now_ms);

/*
 * The entry for uid in tab (n entries): its own, else a free one, else the
 * one whose interval began longest ago if that interval is over (idle); that
 * entry's former contents go to *evicted (evicted->used says whether there
 * were any: a summary may be owed). NULL when every entry is in an interval
 * not over yet: the caller counts the line against an entry shared by such
 * uids, so that a user cannot reset its limit by cycling uids.
 */
struct uid_rate *ratelimit_uid(struct uid_rate *tab, size_t n, uid_t uid,
	    unsigned int interval_ms, uint64_t now_ms, struct uid_rate *evicted);

/*
 * The suppressed lines of e to report at now_ms: its count once its interval
 * is over (interval_ms 0: at once), then 0 until it suppresses again.
 */
uint64_t ratelimit_summary(struct uid_rate *e, unsigned int interval_ms,
	    uint64_t now_ms);

#endif
