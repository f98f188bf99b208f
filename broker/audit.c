/* SPDX-License-Identifier: ISC */
/*
 * audit.c - the log lines about peers. Any local user can connect, so each
 * line counts against its session's and its uid's limits (ratelimit.c); a
 * line over either is not written but counted, and each uid's count is
 * written as one summary line per interval, by its next line or by the tick,
 * whichever comes first. Counters (status, the Status reply) stay exact: only
 * lines are limited. Lines not about a peer (start, stop, policy_reload,
 * fatal) go to log_event() and are never limited.
 */
#include <stdarg.h>

#include "broker.h"
#include "log.h"

static void
summary(struct broker *b, const struct uid_rate *e, uint64_t n)
{
	if (e == &b->log_others)
		log_event("log_suppressed", "uid=(others) suppressed=%llu "
		    "interval_ms=%u", (unsigned long long)n,
		    b->cfg.log_interval_ms);
	else
		log_event("log_suppressed", "uid=%u suppressed=%llu "
		    "interval_ms=%u", (unsigned)e->uid, (unsigned long long)n,
		    b->cfg.log_interval_ms);
}

/* The uid's entry: the evicted one's summary is written first. */
static struct uid_rate *
uid_rate(struct broker *b, uid_t uid, uint64_t now)
{
	struct uid_rate evicted, *e;

	e = ratelimit_uid(b->log_uids, BROKER_LOG_UIDS, uid,
	    b->cfg.log_interval_ms, now, &evicted);
	if (evicted.used && evicted.suppressed > 0)
		summary(b, &evicted, evicted.suppressed);
	return e != NULL ? e : &b->log_others;
}

/* May a line about uid (and its session's, if any) be written now? */
static bool
allowed(struct broker *b, struct ratelimit *session, uid_t uid)
{
	const struct broker_config *c = &b->cfg;
	uint64_t now = broker_now_ms(), n;
	struct uid_rate *e = uid_rate(b, uid, now);

	if ((n = ratelimit_summary(e, c->log_interval_ms, now)) > 0)
		summary(b, e, n);
	if (!ratelimit_room(&e->rl, c->log_burst, c->log_interval_ms, now) ||
	    (session != NULL && !ratelimit_room(session, c->log_session_burst,
	    c->log_interval_ms, now))) {
		e->suppressed++;
		return false;
	}
	e->rl.lines++;
	if (session != NULL)
		session->lines++;
	return true;
}

void
audit_session(struct session *s, const char *event, const char *fmt, ...)
{
	va_list ap;

	if (!allowed(s->b, &s->log_rate, s->uid))
		return;
	va_start(ap, fmt);
	log_vevent(event, fmt, ap);
	va_end(ap);
}

void
audit_uid(struct broker *b, uid_t uid, const char *event, const char *fmt, ...)
{
	va_list ap;

	if (!allowed(b, NULL, uid))
		return;
	va_start(ap, fmt);
	log_vevent(event, fmt, ap);
	va_end(ap);
}

void
audit_flush(struct broker *b, bool all)
{
	unsigned int interval = all ? 0 : b->cfg.log_interval_ms;
	uint64_t now = broker_now_ms(), n;
	size_t i;

	for (i = 0; i < BROKER_LOG_UIDS; i++)
		if (b->log_uids[i].used && (n = ratelimit_summary(
		    &b->log_uids[i], interval, now)) > 0)
			summary(b, &b->log_uids[i], n);
	if ((n = ratelimit_summary(&b->log_others, interval, now)) > 0)
		summary(b, &b->log_others, n);
}
