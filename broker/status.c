/* SPDX-License-Identifier: ISC */
/*
 * status.c - the broker's state as key=value lines, for uffd-brokerctl
 * status: the broker, the policy in force (where from, its digest, since
 * when), each rule's counters, each session; or the summary of the policy
 * (uffd-brokerctl policy summary). A page at a time: lines before the page
 * are counted, not formatted.
 */
#include <limits.h>
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

/* Where the policy in force comes from, for status and the summary. */
static void
policy_source(const struct broker *b, char *buf, size_t len)
{
	if (b->cfg.policy_path != NULL)
		snprintf(buf, len, "file %s", b->cfg.policy_path);
	else
		snprintf(buf, len, "command line");
}

/* The policy in force: where from, its digest, since when; the last reload. */
static void
walk_policy(struct broker *b, struct page *pg)
{
	const struct policy *p = b->policy;
	char digest[SHA256_HEX_LEN], loaded[64], at[64], quoted[LOG_QUOTED_MAX];
	char inv_digest[SHA256_HEX_LEN], count[16];

	sha256_hex(p->digest, digest);
	policy_time_text(&p->loaded, loaded, sizeof(loaded));
	policy_time_text(&b->reload_at, at, sizeof(at));
	snprintf(count, sizeof(count), "%zu",
	    b->invariants ? b->invariants->n : 0);
	if (b->invariants != NULL)
		sha256_hex(b->invariants->digest, inv_digest);
	emit(pg, "policy source=%s digest=sha256:%s loaded=%s rules=%zu "
	    "invariants=%s%s%s%s%s last_reload=%s%s%s%s%s",
	    b->cfg.policy_path ? b->cfg.policy_path : "(command line)", digest,
	    loaded, p->nrules,
	    b->invariants ? b->invariants->path : "none",
	    b->invariants ? " invariants_digest=sha256:" : "",
	    b->invariants ? inv_digest : "",
	    b->invariants ? " invariants_count=" : "",
	    b->invariants ? count : "",
	    b->reload == RELOAD_NONE ? "none" : b->reload == RELOAD_OK ? "ok" :
	    "failed", b->reload == RELOAD_NONE ? "" : " last_reload_at=",
	    b->reload == RELOAD_NONE ? "" : at,
	    b->reload == RELOAD_FAILED ? " last_reload_error=" : "",
	    b->reload == RELOAD_FAILED ? log_quote(quoted, sizeof(quoted),
	    b->reload_error ? b->reload_error : "") : "");
}

/* Upgrades this broker came through, and the last one refused. */
static void
walk_upgrade(struct broker *b, struct page *pg)
{
	static const char *const phases[] = {
		[UPGRADE_IDLE] = "idle", [UPGRADE_CHECKING] = "checking",
		[UPGRADE_READY] = "ready",
	};
	const struct upgrade *u = &b->upgrade;
	char quoted[LOG_QUOTED_MAX];

	emit(pg, "upgrade upgrades=%u refused=%u phase=%s%s%s", u->count,
	    u->failed, phases[u->phase], u->error ? " last_refusal=" : "",
	    u->error ? log_quote(quoted, sizeof(quoted), u->error) : "");
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

	TAILQ_FOREACH(l, REGISTRY_LISTENERS(&b->reg), entry)
		listeners++;
	TAILQ_FOREACH(s, REGISTRY_SESSIONS(&b->reg), entry)
		admitted += s->refusal == NULL;
	emit(pg, "broker pid=%d creation=%s policy=%s rules=%zu sessions=%u "
	    "connections=%u listeners=%u sessions_refused_no_rule=%llu",
	    (int)getpid(),
	    b->via_syscall ? "syscall" : "device",
	    b->cfg.policy_path ? b->cfg.policy_path : "(command line)",
	    p->nrules, admitted, b->reg.nsessions, listeners,
	    (unsigned long long)p->no_match);
	walk_policy(b, pg);
	walk_upgrade(b, pg);
	for (i = 0; i < p->nrules; i++)
		emit(pg, "rule name=%s line=%d sessions=%llu "
		    "sessions_refused=%llu uffds_granted=%llu uffds_refused=%llu",
		    p->rules[i].name,
		    p->rules[i].line, (unsigned long long)p->rules[i].sessions,
		    (unsigned long long)p->rules[i].refusals,
		    (unsigned long long)p->rules[i].granted,
		    (unsigned long long)p->rules[i].refused);
	TAILQ_FOREACH(s, REGISTRY_SESSIONS(&b->reg), entry) {
		if (s->refusal != NULL)
			continue;
		live = s->state == SESSION_READY ? session_live_uffds(s) : 0;
		emit(pg, "session id=%llu pid=%d uid=%u gid=%u rule=%s state=%s "
		    "forked=%s listener=%llu live=%u pending=%u max=%u "
		    "uffds_granted=%llu uffds_refused=%llu",
		    (unsigned long long)s->id,
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
status_policy_changed(struct broker *b)
{
	free(b->summary);
	b->summary = NULL;
}

/*
 * The summary of the policy in force, made once (it looks names up) and
 * kept until the policy changes. NULL if out of memory.
 */
static const char *
summary_text(struct broker *b)
{
	struct policy_origin o = { .running = true };
	char source[PATH_MAX + 8], when[64], *reload = NULL, *inv = NULL;
	char hex[SHA256_HEX_LEN];
	size_t len = 0;
	FILE *f;

	if (b->summary != NULL)
		return b->summary;
	policy_source(b, source, sizeof(source));
	o.source = source;
	o.pid = getpid();
	o.max_sessions = b->cfg.max_sessions;
	if (b->reload == RELOAD_FAILED) {
		policy_time_text(&b->reload_at, when, sizeof(when));
		if (asprintf(&reload, "failed at %s, the policy above stays in "
		    "force: %s", when,
		    b->reload_error ? b->reload_error : "") < 0)
			reload = NULL;
		o.last_reload = reload;
	}
	/* In force, the policy keeps them: it would not have loaded. */
	if (b->invariants != NULL) {
		sha256_hex(b->invariants->digest, hex);
		if (asprintf(&inv, "%s, %zu assertion%s: the policy keeps them "
		    "all", b->invariants->path, b->invariants->n,
		    b->invariants->n == 1 ? "" : "s") < 0)
			inv = NULL;
		o.invariants = inv;
		o.invariants_digest = hex;
	}
	if ((f = open_memstream(&b->summary, &len)) != NULL) {
		policy_summary(b->policy, &o, f);
		if (fclose(f) != 0) {
			free(b->summary);
			b->summary = NULL;
		}
	}
	free(reload);
	free(inv);
	return b->summary;
}

/* The summary's lines, as pages of status lines. */
static void
walk_summary(struct broker *b, struct page *pg)
{
	const char *line, *end;

	if ((line = summary_text(b)) == NULL) {
		emit(pg, "# out of memory");
		return;
	}
	for (; *line != '\0'; line = *end ? end + 1 : end) {
		end = strchrnul(line, '\n');
		emit(pg, "%.*s", (int)(end - line), line);
	}
}

/* An administrator's AdminStatus, of a view session_request_check() knows. */
void
status_admin(struct session *s, const UffdBroker__V1__AdminStatus *as)
{
	const uint32_t offset = as->offset;
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
		audit_session(s, "admin_status", "session=%llu pid=%d uid=%u "
		    "view=%s", (unsigned long long)s->id, (int)s->pid,
		    (unsigned)s->uid, as->view ==
		    UFFD_BROKER__V1__ADMIN_STATUS__VIEW__POLICY ? "policy" :
		    "status");
	if (as->view == UFFD_BROKER__V1__ADMIN_STATUS__VIEW__POLICY)
		walk_summary(s->b, &pg);
	else
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
