/* SPDX-License-Identifier: ISC */
/*
 * ratelimit.c - bursts per interval and counts of what was over them, for
 * the log lines about peers (audit.c writes the lines).
 */
#include "ratelimit.h"

bool
ratelimit_room(struct ratelimit *rl, unsigned int burst,
    unsigned int interval_ms, uint64_t now_ms)
{
	if (now_ms - rl->start_ms >= interval_ms) {
		rl->start_ms = now_ms;
		rl->lines = 0;
	}
	return rl->lines < burst;
}

struct uid_rate *
ratelimit_uid(struct uid_rate *tab, size_t n, uid_t uid,
    unsigned int interval_ms, uint64_t now_ms, struct uid_rate *evicted)
{
	struct uid_rate *e, *slot = NULL, *oldest = NULL;

	evicted->used = false;
	for (e = tab; e < tab + n; e++) {
		if (e->used && e->uid == uid)
			return e;
		if (!e->used) {
			if (slot == NULL)
				slot = e;
		} else if (oldest == NULL || e->rl.start_ms < oldest->rl.start_ms)
			oldest = e;
	}
	if (slot == NULL) {
		if (oldest == NULL || now_ms - oldest->rl.start_ms < interval_ms)
			return NULL;
		*evicted = *oldest;
		slot = oldest;
	}
	*slot = (struct uid_rate){ .rl.start_ms = now_ms, .uid = uid,
	    .used = true };
	return slot;
}

uint64_t
ratelimit_summary(struct uid_rate *e, unsigned int interval_ms,
    uint64_t now_ms)
{
	uint64_t n = e->suppressed;

	if (n == 0 || now_ms - e->rl.start_ms < interval_ms)
		return 0;
	e->suppressed = 0;
	return n;
}
