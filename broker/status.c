/* SPDX-License-Identifier: ISC */
/*
 * status.c - the broker's state as key=value lines, for uffd-brokerctl
 * status: the broker, each rule's counters, each session. A page at a time:
 * lines before the page are counted, not formatted.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "log.h"

/* A page of a reply: what fits in one datagram, with room for framing. */
#define PAGE_BYTES	800
#define PAGE_LINES	32

struct page {
	unsigned int	first;		/* index of the page's first line */
	unsigned int	index;		/* of the next line emitted */
	unsigned int	next;		/* first line not in the page */
	size_t		bytes;
	char		*lines[PAGE_LINES];
	size_t		n;
	bool		full;
};

static void __attribute__((format(printf, 2, 3)))
emit(struct page *pg, const char *fmt, ...)
{
	va_list ap;
	char *line;
	int len;

	if (pg->index++ < pg->first || pg->full)
		return;
	va_start(ap, fmt);
	len = vasprintf(&line, fmt, ap);
	va_end(ap);
	if (len < 0)
		return;
	/* The page's first line always goes in, so that paging progresses. */
	if (pg->n == PAGE_LINES || (pg->n > 0 && pg->bytes + len > PAGE_BYTES)) {
		free(line);
		pg->full = true;
		return;
	}
	if (len > PAGE_BYTES)
		line[PAGE_BYTES] = '\0';
	pg->lines[pg->n++] = line;
	pg->bytes += len + 4;
	pg->next = pg->index;
}

static void
walk(struct broker *b, struct page *pg)
{
	const struct policy *p = b->policy;
	const struct session *s;
	const struct listener *l;
	unsigned int listeners = 0, admitted = 0;
	size_t i;
	int live;

	TAILQ_FOREACH(l, &b->listeners, entry)
		listeners++;
	TAILQ_FOREACH(s, &b->sessions, entry)
		admitted += s->refusal == NULL;
	emit(pg, "broker pid=%d creation=%s policy=%s rules=%zu sessions=%u "
	    "connections=%u listeners=%u no_rule_refusals=%llu", (int)getpid(),
	    b->via_syscall ? "syscall" : "device",
	    b->cfg.policy_path ? b->cfg.policy_path : "(command line)",
	    p->nrules, admitted, b->nsessions, listeners,
	    (unsigned long long)p->no_match);
	for (i = 0; i < p->nrules; i++)
		emit(pg, "rule name=%s line=%d sessions=%llu refusals=%llu "
		    "granted=%llu refused=%llu", p->rules[i].name,
		    p->rules[i].line, (unsigned long long)p->rules[i].sessions,
		    (unsigned long long)p->rules[i].refusals,
		    (unsigned long long)p->rules[i].granted,
		    (unsigned long long)p->rules[i].refused);
	TAILQ_FOREACH(s, &b->sessions, entry) {
		if (s->refusal != NULL)
			continue;
		live = s->state == SESSION_READY ? session_live_uffds(s) : 0;
		emit(pg, "session id=%llu pid=%d uid=%u gid=%u rule=%s state=%s "
		    "forked=%s listener=%llu live=%u pending=%u max=%u "
		    "granted=%llu refused=%llu", (unsigned long long)s->id,
		    (int)s->pid, (unsigned)s->uid, (unsigned)s->gid, s->rule_name,
		    session_state_name(s->state), s->forked ? "yes" : "no",
		    s->lis ? (unsigned long long)s->lis->id : 0ULL,
		    live > 0 ? (unsigned int)live : 0,
		    s->pending, s->grant.max_uffds,
		    (unsigned long long)s->granted,
		    (unsigned long long)s->refused);
	}
}

void
status_admin(struct session *s, uint32_t offset)
{
	UffdBroker__V1__AdminStatusReply ar =
	    UFFD_BROKER__V1__ADMIN_STATUS_REPLY__INIT;
	WireReply reply = UFFD_BROKER__V1__REPLY__INIT;
	struct page pg = { .first = offset, .next = offset };
	size_t i;

	if (!access_is_admin(s)) {
		audit_session(s, "admin_refused", "session=%llu pid=%d uid=%u",
		    (unsigned long long)s->id, (int)s->pid, (unsigned)s->uid);
		session_reply(s, UFFD_BROKER__V1__STATUS__DENIED, NULL,
		    "status is for root and the policy's admin group");
		return;
	}
	if (offset == 0)
		audit_session(s, "admin_status", "session=%llu pid=%d uid=%u",
		    (unsigned long long)s->id, (int)s->pid, (unsigned)s->uid);
	walk(s->b, &pg);
	ar.n_lines = pg.n;
	ar.lines = pg.lines;
	ar.next_offset = pg.n > 0 ? pg.next : pg.index;
	ar.total = pg.index;
	reply.body_case = UFFD_BROKER__V1__REPLY__BODY_ADMIN_STATUS_REPLY;
	reply.admin_status_reply = &ar;
	session_reply(s, UFFD_BROKER__V1__STATUS__OK, &reply, "%zu lines", pg.n);
	for (i = 0; i < pg.n; i++)
		free(pg.lines[i]);
}
