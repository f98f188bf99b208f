/* SPDX-License-Identifier: ISC */
/*
 * invariant.c - read the site invariants and check a policy against them
 * (invariant.h; uffd-broker.conf(5), SITE INVARIANTS).
 *
 * The file is a line per assertion, words separated by blanks, read here
 * (no INI: it has no sections and no keys). As with the policy, every
 * error is reported, FILE:LINE, the lines are bounded, and control
 * characters other than tabs are refused, so that what a reviewer sees is
 * what the broker reads. Names of users resolve from /etc/passwd when the
 * file is read, as the policy's do.
 */
#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "invariant.h"

/* As a policy's: within inih's buffer, though no inih reads this file. */
#define LINE_MAX_INV	198
#define WORDS_MAX	32
/* A bound of up to 10^15 live uffds: more than the policy can grant. */
#define LIMIT_MAX	1000000000000000ULL

static const char *const bound_names[] = {
	[BOUND_PROCESS] = "live-per-process",
	[BOUND_UID] = "live-per-uid",
	[BOUND_HOST] = "live-host",
	[BOUND_SESSIONS] = "sessions-per-uid",
};

static const struct {
	const char	*name;
	unsigned int	key;
} key_names[] = {
	{ "uid", MATCH_UID }, { "gid", MATCH_GID },
	{ "exe", MATCH_EXE }, { "cgroup", MATCH_CGROUP },
};

struct iparse {
	const char	*path;
	int		line;
	unsigned int	nerrors;
	policy_error_fn	*error;
	void		*arg;
	char		**w;		/* the line's words */
	size_t		nw;
	size_t		i;		/* the next word */
};

static void __attribute__((format(printf, 2, 3)))
ierr(struct iparse *ip, const char *fmt, ...)
{
	char msg[POLICY_ERROR_MAX - 64], line[POLICY_ERROR_MAX];
	va_list ap;

	if (ip->nerrors++ >= POLICY_MAX_ERRORS)
		return;		/* counted: "N more errors" at the end */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(line, sizeof(line), "%s:%d: %s", ip->path, ip->line, msg);
	ip->error(ip->arg, line);
}

/* The next word, or NULL with an error saying what was expected. */
static const char *
next_word(struct iparse *ip, const char *expected)
{
	if (ip->i == ip->nw) {
		ierr(ip, "expected %s at the end of the line", expected);
		return NULL;
	}
	return ip->w[ip->i++];
}

static bool
parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!isdigit((unsigned char)*s))
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return false;
	*out = v;
	return true;
}

/* One condition, from ip->w[ip->i] on; false after an error. */
static bool
parse_cond(struct iparse *ip, struct invariant_cond *c)
{
	const char *word, *arg;
	unsigned long long v;
	struct passwd *pw;
	uint64_t bit, u;
	size_t k;

	word = ip->w[ip->i++];
	if (strcmp(word, "mode") == 0) {
		if ((arg = next_word(ip, "kernel or user")) == NULL)
			return false;
		if (c->mode >= 0) {
			ierr(ip, "mode: given twice");
			return false;
		}
		if (strcmp(arg, "kernel") != 0 && strcmp(arg, "user") != 0) {
			ierr(ip, "mode: expected kernel or user, got '%s'",
			    arg);
			return false;
		}
		c->mode = strcmp(arg, "kernel") == 0;
		return true;
	}
	if (strcmp(word, "feature") == 0) {
		if ((arg = next_word(ip, "a feature name")) == NULL)
			return false;
		if (policy_feature_bit(arg, &bit) < 0) {
			ierr(ip, "feature: unknown feature '%s'", arg);
			return false;
		}
		c->features |= bit;
		return true;
	}
	if (strcmp(word, "without") == 0) {
		if ((arg = next_word(ip, "uid, gid, exe or cgroup")) == NULL)
			return false;
		for (k = 0; k < sizeof(key_names) / sizeof(key_names[0]); k++)
			if (strcmp(arg, key_names[k].name) == 0) {
				c->without |= key_names[k].key;
				return true;
			}
		ierr(ip, "without: expected uid, gid, exe or cgroup, got '%s'",
		    arg);
		return false;
	}
	if (strcmp(word, "prove_filter") == 0 ||
	    strcmp(word, "forked_sessions") == 0) {
		bool proof = word[0] == 'p';
		const char *want = proof ? "off" : "yes";

		if ((arg = next_word(ip, want)) == NULL)
			return false;
		if (strcmp(arg, want) != 0) {
			ierr(ip, "%s: expected %s, got '%s'", word, want, arg);
			return false;
		}
		if (proof)
			c->prove_off = true;
		else
			c->forked = true;
		return true;
	}
	if (strcmp(word, "uid") == 0) {
		if ((arg = next_word(ip, "a user")) == NULL)
			return false;
		if (c->nuids == INVARIANT_MAX_UIDS) {
			ierr(ip, "uid: more than %d", INVARIANT_MAX_UIDS);
			return false;
		}
		if (parse_uint(arg, (uid_t)-2, &u))
			v = u;
		else if ((pw = getpwnam(arg)) != NULL)
			v = pw->pw_uid;
		else {
			ierr(ip, "uid: no such user '%s'", arg);
			return false;
		}
		c->uids[c->nuids++] = (uid_t)v;
		return true;
	}
	ierr(ip, "unknown condition '%s': expected mode, feature, without, "
	    "prove_filter, forked_sessions or uid", word);
	return false;
}

/* Conditions to the end of the line: at least one. */
static bool
parse_conds(struct iparse *ip, struct invariant_cond *c)
{
	if (ip->i == ip->nw) {
		ierr(ip, "expected a condition at the end of the line");
		return false;
	}
	while (ip->i < ip->nw)
		if (!parse_cond(ip, c))
			return false;
	return true;
}

/* "never CONDITION ..." or "max BOUND N [for CONDITION ...]". */
static bool
parse_assertion(struct iparse *ip, struct invariant *v)
{
	const char *word = ip->w[ip->i++], *arg;
	size_t k;

	v->cond.mode = -1;
	if (strcmp(word, "never") == 0) {
		v->never = true;
		return parse_conds(ip, &v->cond);
	}
	if (strcmp(word, "max") != 0) {
		ierr(ip, "unknown assertion '%s': expected never or max", word);
		return false;
	}
	if ((arg = next_word(ip, "live-per-process, live-per-uid, live-host "
	    "or sessions-per-uid")) == NULL)
		return false;
	for (k = 0; k < sizeof(bound_names) / sizeof(bound_names[0]); k++)
		if (strcmp(arg, bound_names[k]) == 0)
			break;
	if (k == sizeof(bound_names) / sizeof(bound_names[0])) {
		ierr(ip, "max: expected live-per-process, live-per-uid, "
		    "live-host or sessions-per-uid, got '%s'", arg);
		return false;
	}
	v->bound = (enum invariant_bound)k;
	if ((arg = next_word(ip, "a number")) == NULL)
		return false;
	if (!parse_uint(arg, LIMIT_MAX, &v->limit)) {
		ierr(ip, "max %s: expected a number from 0 to %llu, got '%s'",
		    bound_names[k], LIMIT_MAX, arg);
		return false;
	}
	if (ip->i == ip->nw)
		return true;	/* every allow rule */
	if (strcmp(ip->w[ip->i++], "for") != 0) {
		ierr(ip, "max: expected 'for' and conditions after the number, "
		    "got '%s'", ip->w[ip->i - 1]);
		return false;
	}
	return parse_conds(ip, &v->cond);
}

/*
 * A line: checked as the policy's are, its comment cut ("#" at its start
 * or after a blank), split into words. False if there is nothing to read.
 */
static bool
split_line(struct iparse *ip, char *buf, size_t len, char **words)
{
	char *s, *save = NULL;
	size_t i;

	ip->nw = ip->i = 0;
	if (len > LINE_MAX_INV) {
		ierr(ip, "line longer than %d characters", LINE_MAX_INV);
		return false;
	}
	for (i = 0; i < len; i++)
		if (((unsigned char)buf[i] < 0x20 && buf[i] != '\t') ||
		    buf[i] == 0x7f) {
			ierr(ip, "control character 0x%02x: only spaces and "
			    "tabs are allowed", (unsigned char)buf[i]);
			return false;
		}
	buf[len] = '\0';
	for (i = 0; i < len; i++)
		if (buf[i] == '#' && (i == 0 || buf[i - 1] == ' ' ||
		    buf[i - 1] == '\t')) {
			buf[i] = '\0';
			break;
		}
	for (s = strtok_r(buf, " \t", &save); s != NULL;
	    s = strtok_r(NULL, " \t", &save)) {
		if (ip->nw == WORDS_MAX) {
			ierr(ip, "more than %d words", WORDS_MAX);
			return false;
		}
		words[ip->nw++] = s;
	}
	ip->w = words;
	return ip->nw > 0;
}

/* The assertion as a message quotes it: its words, single spaces. */
static void
tidy(const struct iparse *ip, char *out, size_t len)
{
	size_t i, off = 0;

	out[0] = '\0';
	for (i = 0; i < ip->nw && off < len; i++)
		off += snprintf(out + off, len - off, "%s%s", i ? " " : "",
		    ip->w[i]);
}

int
invariants_load_report(const char *path, struct invariants **out,
    policy_error_fn *error, void *arg)
{
	struct iparse ip = { .path = path, .error = error, .arg = arg };
	struct invariants *inv;
	struct invariant *v;
	char err[POLICY_ERROR_MAX], *buf = NULL, *words[WORDS_MAX];
	size_t bufsize = 0, len;
	struct sha256 sha;
	ssize_t n;
	FILE *f;

	*out = NULL;
	if ((f = policy_fopen(path, err, sizeof(err))) == NULL) {
		error(arg, err);
		return 1;
	}
	inv = calloc(1, sizeof(*inv));
	if (inv == NULL || (inv->v = calloc(INVARIANT_MAX,
	    sizeof(*inv->v))) == NULL || (inv->path = strdup(path)) == NULL) {
		fclose(f);
		invariants_free(inv);
		snprintf(err, sizeof(err), "%s: out of memory", path);
		error(arg, err);
		return 1;
	}
	sha256_init(&sha);
	while ((n = getline(&buf, &bufsize, f)) > 0) {
		sha256_update(&sha, buf, n);
		ip.line++;
		len = n;
		if (buf[len - 1] == '\n')
			len--;
		if (len > 0 && buf[len - 1] == '\r' && (size_t)n > len)
			len--;
		if (!split_line(&ip, buf, len, words))
			continue;
		if (inv->n == INVARIANT_MAX) {
			ierr(&ip, "more than %d assertions", INVARIANT_MAX);
			continue;
		}
		v = &inv->v[inv->n];
		memset(v, 0, sizeof(*v));
		v->line = ip.line;
		if (!parse_assertion(&ip, v))
			continue;
		tidy(&ip, v->text, sizeof(v->text));
		inv->n++;
	}
	if (ferror(f)) {
		snprintf(err, sizeof(err), "%s: read error", path);
		ip.nerrors++;
		error(arg, err);
	}
	fclose(f);
	free(buf);
	if (ip.nerrors > POLICY_MAX_ERRORS) {
		snprintf(err, sizeof(err), "%s: %u more errors", path,
		    ip.nerrors - POLICY_MAX_ERRORS);
		error(arg, err);
	}
	if (ip.nerrors > 0) {
		invariants_free(inv);
		return (int)ip.nerrors;
	}
	sha256_final(&sha, inv->digest);
	*out = inv;
	return 0;
}

void
invariants_free(struct invariants *inv)
{
	if (inv == NULL)
		return;
	free(inv->v);
	free(inv->path);
	free(inv);
}

/* ---- checking ---- */

static bool
lists_uid(const struct rule *r, uid_t uid)
{
	size_t i;

	for (i = 0; (r->keys & MATCH_UID) && i < r->nuids; i++)
		if (r->uids[i] == uid)
			return true;
	return false;
}

/* Whether an allow rule meets all the conditions. */
static bool
meets(const struct rule *r, const struct invariant_cond *c)
{
	const struct grant *g = &r->grant;
	size_t i;

	if (g->deny || (c->mode >= 0 && g->kernel_faults != (c->mode == 1)) ||
	    (g->features & c->features) != c->features ||
	    (r->keys & c->without) != 0 ||
	    (c->prove_off && (!g->kernel_faults || g->prove_filter)) ||
	    (c->forked && !g->forked_sessions))
		return false;
	for (i = 0; i < c->nuids; i++)
		if (!lists_uid(r, c->uids[i]))
			return false;
	return true;
}

static bool
take_meeting(const struct policy *p, size_t i, void *arg)
{
	return meets(&p->rules[i], arg);
}

/* What a rule meeting the conditions is: "grants EVENT_FORK, ...". */
static void
describe(const struct invariant_cond *c, char *buf, size_t len)
{
	char names[512];
	size_t off = 0, k;

#define SAY(...) do {							\
	if (off < len)							\
		off += snprintf(buf + off, len - off, "%s", off ? ", " : "");\
	if (off < len)							\
		off += snprintf(buf + off, len - off, __VA_ARGS__);	\
} while (0)
	buf[0] = '\0';
	if (c->mode == 1)
		SAY("grants kernel faults");
	else if (c->mode == 0)
		SAY("grants user-mode faults only");
	if (c->features != 0) {
		policy_feature_names(c->features, names, sizeof(names));
		SAY("grants %s", names);
	}
	for (k = 0; k < sizeof(key_names) / sizeof(key_names[0]); k++)
		if (c->without & key_names[k].key)
			SAY("does not match on %s", key_names[k].name);
	if (c->prove_off)
		SAY("gives the device fd without the filter proof");
	if (c->forked)
		SAY("admits forked sessions");
	for (k = 0; k < c->nuids; k++)
		SAY("matches uid %u", (unsigned)c->uids[k]);
	if (off == 0)
		SAY("is an allow rule");
#undef SAY
}

struct report {
	const struct invariants *inv;
	const struct invariant *v;
	const struct policy *p;
	void		(*fn)(void *, size_t, const char *);
	void		*arg;
	unsigned int	n;
};

static void __attribute__((format(printf, 3, 4)))
broken(struct report *rp, const struct rule *r, const char *fmt, ...)
{
	char why[400], msg[POLICY_ERROR_MAX + 400], where[64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (rp->p->path != NULL)
		snprintf(where, sizeof(where), ":%d", r->line);
	else
		where[0] = '\0';
	snprintf(msg, sizeof(msg), "%s%s: rule '%s' breaks invariant '%s' "
	    "(%s:%d): %s", rp->p->path ? rp->p->path : "command line", where,
	    r->name, rp->v->text, rp->inv->path, rp->v->line, why);
	if (rp->fn != NULL)
		rp->fn(rp->arg, (size_t)(r - rp->p->rules), msg);
	rp->n++;
}

/* A "max" on a bound of each rule's own: live-per-process, sessions. */
static void
check_each(struct report *rp)
{
	const struct invariant *v = rp->v;
	const struct rule *r;
	unsigned int have;
	size_t i;

	for (i = 0; i < rp->p->nrules; i++) {
		r = &rp->p->rules[i];
		if (!meets(r, &v->cond))
			continue;
		have = v->bound == BOUND_PROCESS ? r->grant.max_uffds :
		    r->grant.max_sessions_per_uid;
		if (have > v->limit)
			broken(rp, r, "%s = %u", v->bound == BOUND_PROCESS ?
			    "max_uffds" : "max_sessions_per_uid", have);
	}
}

/*
 * A "max" on live uffds per uid or host-wide: each rule's own bound, then
 * all of the rules' together (a uid's sessions may come from several).
 */
static void
check_live(struct report *rp)
{
	const struct invariant *v = rp->v;
	const char *what = v->bound == BOUND_UID ? "per uid" : "host-wide";
	struct policy_bound b;
	struct policy_total t;
	const struct rule *r;
	uint64_t have;
	unsigned int before = rp->n;
	size_t i;

	for (i = 0; i < rp->p->nrules; i++) {
		r = &rp->p->rules[i];
		if (!meets(r, &v->cond))
			continue;
		b = policy_rule_bound(r);
		have = v->bound == BOUND_UID ? b.per_uid : b.host;
		if (have == 0)
			broken(rp, r, "no bound on live uffds %s: %s", what,
			    b.why);
		else if (have > v->limit)
			broken(rp, r, "up to %llu live uffds %s",
			    (unsigned long long)have, what);
	}
	if (rp->n > before)
		return;
	policy_total(rp->p, take_meeting, (void *)&v->cond, &t);
	have = v->bound == BOUND_UID ? t.per_uid : t.host;
	if (t.n > 1 && have > v->limit)
		broken(rp, t.first, "with %zu other rule%s it concerns, up to "
		    "%llu live uffds %s", t.n - 1, t.n == 2 ? "" : "s",
		    (unsigned long long)have, what);
}

unsigned int
invariants_check(const struct invariants *inv, const struct policy *p,
    void (*fn)(void *, size_t, const char *), void *arg)
{
	struct report rp = { .inv = inv, .p = p, .fn = fn, .arg = arg };
	char why[400];
	size_t i, j;

	for (j = 0; j < inv->n; j++) {
		rp.v = &inv->v[j];
		if (rp.v->never) {
			for (i = 0; i < p->nrules; i++)
				if (meets(&p->rules[i], &rp.v->cond)) {
					describe(&rp.v->cond, why, sizeof(why));
					broken(&rp, &p->rules[i], "it %s", why);
				}
		} else if (rp.v->bound == BOUND_PROCESS ||
		    rp.v->bound == BOUND_SESSIONS)
			check_each(&rp);
		else
			check_live(&rp);
	}
	return rp.n;
}
