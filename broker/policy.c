/* SPDX-License-Identifier: ISC */
/*
 * policy.c - load, match, print and explain the access policy.
 *
 * The file is INI, read by inih (libinih): one [broker] section and one
 * [rule NAME] section per rule, in order. inih does the lexing; this file
 * checks every key and value and reports the first error as FILE:LINE. The
 * line count and the section headers come from our reader callback, which
 * sees each line as inih reads it, and refuses the lines on which two
 * readers could disagree (control characters, NUL). A list key may go on
 * over indented lines, which inih hands over as more of its value: that is
 * how policy_print() keeps every line within inih's limit.
 */
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <grp.h>
#include <ini.h>
#include <linux/userfaultfd.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

/* Defaults of a rule's grant: the least a matching peer can get. */
#define DEFAULT_MAX_UFFDS		16
#define DEFAULT_MAX_SESSIONS_PER_UID	64

#define PATH_MAX_POLICY		4096

/* inih's line buffer (INI_MAX_LINE); a longer line would be split. */
#define LINE_MAX_INI		200
/* Where policy_print() wraps lists; a tab counts 8. */
#define PRINT_WIDTH		78

_Static_assert(sizeof("cgroup = ") - 1 + POLICY_ITEM_MAX <= LINE_MAX_INI - 2,
    "a printed exe or cgroup must fit on a line inih reads");

static const struct feature_name {
	const char	*name;
	uint64_t	bit;
} feature_names[] = {
	{ "PAGEFAULT_FLAG_WP",	UFFD_FEATURE_PAGEFAULT_FLAG_WP },
	{ "EVENT_FORK",		UFFD_FEATURE_EVENT_FORK },
	{ "EVENT_REMAP",	UFFD_FEATURE_EVENT_REMAP },
	{ "EVENT_REMOVE",	UFFD_FEATURE_EVENT_REMOVE },
	{ "MISSING_HUGETLBFS",	UFFD_FEATURE_MISSING_HUGETLBFS },
	{ "MISSING_SHMEM",	UFFD_FEATURE_MISSING_SHMEM },
	{ "EVENT_UNMAP",	UFFD_FEATURE_EVENT_UNMAP },
	{ "SIGBUS",		UFFD_FEATURE_SIGBUS },
	{ "THREAD_ID",		UFFD_FEATURE_THREAD_ID },
	{ "MINOR_HUGETLBFS",	UFFD_FEATURE_MINOR_HUGETLBFS },
	{ "MINOR_SHMEM",	UFFD_FEATURE_MINOR_SHMEM },
	{ "EXACT_ADDRESS",	UFFD_FEATURE_EXACT_ADDRESS },
	{ "WP_HUGETLBFS_SHMEM",	UFFD_FEATURE_WP_HUGETLBFS_SHMEM },
#ifdef UFFD_FEATURE_WP_UNPOPULATED
	{ "WP_UNPOPULATED",	UFFD_FEATURE_WP_UNPOPULATED },
#endif
#ifdef UFFD_FEATURE_POISON
	{ "POISON",		UFFD_FEATURE_POISON },
#endif
#ifdef UFFD_FEATURE_WP_ASYNC
	{ "WP_ASYNC",		UFFD_FEATURE_WP_ASYNC },
#endif
#ifdef UFFD_FEATURE_MOVE
	{ "MOVE",		UFFD_FEATURE_MOVE },
#endif
};
#define NFEATURES	(sizeof(feature_names) / sizeof(feature_names[0]))

enum section { SEC_NONE, SEC_BROKER, SEC_RULE, SEC_BAD };

/* The keys of each section, in the order policy_print() writes them. */
static const char *const broker_keys[] = { "admin_group", NULL };
static const char *const rule_keys[] = {
	"uid", "gid", "exe", "cgroup", "action", "mode", "features",
	"max_uffds", "max_sessions_per_uid", "forked_sessions",
	"prove_filter", NULL,
};

struct parse {
	const char	*path;
	FILE		*f;
	char		*buf;		/* the line, as read (getline) */
	size_t		bufsize;
	int		line;		/* of the line inih is handling */
	/*
	 * A key line since the section header (inih's prev_name): to inih, an
	 * indented line after one is more of that key's value.
	 */
	bool		after_key;
	bool		cont;		/* this line is such a continuation */
	struct policy	*p;
	enum section	sec;
	int		seen[16];	/* line each key of the section was seen on */
	int		broker_line;
	char		err[512];
	int		err_line;	/* the line err is about */
};

static void __attribute__((format(printf, 2, 3)))
perr(struct parse *ps, const char *fmt, ...)
{
	char msg[384];
	va_list ap;

	if (ps->err[0] != '\0')
		return;		/* the first error is the one reported */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ps->err_line = ps->line;
	snprintf(ps->err, sizeof(ps->err), "%s:%d: %s%s", ps->path, ps->line,
	    msg, ps->cont ? " (an indented line continues the value above)" : "");
}

static int
key_index(const char *const *keys, const char *name)
{
	int i;

	for (i = 0; keys[i] != NULL; i++)
		if (strcmp(keys[i], name) == 0)
			return i;
	return -1;
}

static bool
valid_rule_name(const char *s)
{
	if (*s == '\0' || strlen(s) >= POLICY_NAME_MAX)
		return false;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr("-_.", *s) == NULL)
			return false;
	return true;
}

static void
rule_defaults(struct rule *r)
{
	r->grant = (struct grant){
		.max_uffds = DEFAULT_MAX_UFFDS,
		.max_sessions_per_uid = DEFAULT_MAX_SESSIONS_PER_UID,
		.prove_filter = true,
	};
}

/* A section header, as the reader sees it: "[name]". */
static void
section_begin(struct parse *ps, char *line)
{
	struct policy *p = ps->p;
	struct rule *r;
	char *end = strchr(line, ']'), *name;
	size_t i;

	memset(ps->seen, 0, sizeof(ps->seen));
	if (end == NULL) {
		ps->sec = SEC_BAD;	/* inih reports the syntax error */
		return;
	}
	*end = '\0';
	name = line + 1;
	if (strcmp(name, "broker") == 0) {
		if (ps->broker_line != 0) {
			ps->sec = SEC_BAD;
			perr(ps, "duplicate section [broker] (first on line %d)",
			    ps->broker_line);
			return;
		}
		ps->broker_line = ps->line;
		ps->sec = SEC_BROKER;
		return;
	}
	if (strncmp(name, "rule ", 5) != 0) {
		ps->sec = SEC_BAD;
		perr(ps, "unknown section [%s]; expected [broker] or [rule NAME]",
		    name);
		return;
	}
	name += 5;
	while (*name == ' ')
		name++;
	if (!valid_rule_name(name)) {
		ps->sec = SEC_BAD;
		perr(ps, "bad rule name '%s': use up to %d letters, digits, "
		    "'-', '_' and '.'", name, POLICY_NAME_MAX - 1);
		return;
	}
	for (i = 0; i < p->nrules; i++)
		if (strcmp(p->rules[i].name, name) == 0) {
			ps->sec = SEC_BAD;
			perr(ps, "duplicate rule name '%s' (first on line %d)",
			    name, p->rules[i].line);
			return;
		}
	if (p->nrules == POLICY_MAX_RULES) {
		ps->sec = SEC_BAD;
		perr(ps, "more than %d rules", POLICY_MAX_RULES);
		return;
	}
	r = &p->rules[p->nrules++];
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->line = ps->line;
	rule_defaults(r);
	ps->sec = SEC_RULE;
}

/*
 * inih's reader: one line at a time, counted, checked, and seen as inih will
 * see it. inih skips every isspace() character before a line's text, and
 * reads an indented line after a key line as more of that key's value (even
 * one that starts with '['): this reader must agree on where sections start,
 * or a rule could merge silently into the one before.
 */
static char *
reader(char *str, int num, void *stream)
{
	struct parse *ps = stream;
	ssize_t n;
	size_t len, i;
	unsigned char c;
	char *s;

	ps->cont = false;
	if (ps->err[0] != '\0' ||
	    (n = getline(&ps->buf, &ps->bufsize, ps->f)) < 0)
		return NULL;
	ps->line++;
	len = n;
	if (ps->buf[len - 1] == '\n')
		len--;
	if (len > (size_t)num - 2) {
		perr(ps, "line longer than %d characters", num - 2);
		return NULL;
	}
	/*
	 * No control characters but tabs (and the \r of a \r\n): inih takes
	 * \v, \f and \r for blanks and ends a line at NUL, and a terminal
	 * would show a reviewer something else than what the broker reads.
	 */
	if (len > 0 && len < (size_t)n && ps->buf[len - 1] == '\r')
		len--;
	for (i = 0; i < len; i++) {
		c = ps->buf[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			perr(ps, "control character 0x%02x: only spaces and tabs "
			    "are allowed", c);
			return NULL;
		}
	}
	memcpy(str, ps->buf, n + 1);

	s = str;
	if (ps->line == 1 && strncmp(s, "\xef\xbb\xbf", 3) == 0)
		s += 3;		/* inih skips a UTF-8 byte order mark */
	while (isspace((unsigned char)*s))
		s++;
	if (*s == '\0' || *s == ';' || *s == '#')
		return str;	/* blank, or a comment */
	if (s > str && ps->after_key) {
		ps->cont = true;
		if (*s == '[') {
			perr(ps, "a section header must start its line");
			return NULL;
		}
	} else if (*s == '[') {
		char copy[LINE_MAX_INI];

		ps->after_key = false;
		snprintf(copy, sizeof(copy), "%s", s);
		section_begin(ps, copy);
	}
	return str;
}

/* Split a list value on spaces and commas; calls item() for each. */
static bool
each_item(struct parse *ps, const char *key, const char *value,
    bool (*item)(struct parse *, const char *, const char *, void *),
    void *arg)
{
	char buf[LINE_MAX_INI], *tok, *save = NULL;
	bool any = false;

	snprintf(buf, sizeof(buf), "%s", value);
	for (tok = strtok_r(buf, " \t,", &save); tok != NULL;
	    tok = strtok_r(NULL, " \t,", &save)) {
		any = true;
		if (!item(ps, key, tok, arg))
			return false;
	}
	if (!any)
		perr(ps, "%s: empty value", key);
	return any;
}

static bool
parse_number(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end;

	if (!isdigit((unsigned char)*s))
		return false;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno == 0 && *end == '\0' && *out <= max;
}

static bool
item_uid(struct parse *ps, const char *key, const char *tok, void *arg)
{
	struct rule *r = arg;
	unsigned long long v;
	struct passwd *pw;

	if (r->nuids == POLICY_MAX_ITEMS) {
		perr(ps, "%s: more than %d entries", key, POLICY_MAX_ITEMS);
		return false;
	}
	if (parse_number(tok, (uid_t)-2, &v))
		r->uids[r->nuids++] = (uid_t)v;
	else if ((pw = getpwnam(tok)) != NULL)
		r->uids[r->nuids++] = pw->pw_uid;
	else {
		perr(ps, "%s: no such user '%s'", key, tok);
		return false;
	}
	return true;
}

static bool
group_id(struct parse *ps, const char *key, const char *tok, gid_t *out)
{
	unsigned long long v;
	struct group *gr;

	if (parse_number(tok, (gid_t)-2, &v))
		*out = (gid_t)v;
	else if ((gr = getgrnam(tok)) != NULL)
		*out = gr->gr_gid;
	else {
		perr(ps, "%s: no such group '%s'", key, tok);
		return false;
	}
	return true;
}

static bool
item_gid(struct parse *ps, const char *key, const char *tok, void *arg)
{
	struct rule *r = arg;

	if (r->ngids == POLICY_MAX_ITEMS) {
		perr(ps, "%s: more than %d entries", key, POLICY_MAX_ITEMS);
		return false;
	}
	return group_id(ps, key, tok, &r->gids[r->ngids++]);
}

static bool
item_path(struct parse *ps, const char *key, const char *tok, void *arg)
{
	struct rule *r = arg;
	bool exe = strcmp(key, "exe") == 0;
	char **list = exe ? r->exes : r->cgroups;
	size_t *n = exe ? &r->nexes : &r->ncgroups;

	if (tok[0] != '/') {
		perr(ps, "%s: '%s' is not an absolute path", key, tok);
		return false;
	}
	if (strlen(tok) > POLICY_ITEM_MAX) {
		perr(ps, "%s: a path longer than %d characters", key,
		    POLICY_ITEM_MAX);
		return false;
	}
	if (*n == POLICY_MAX_ITEMS) {
		perr(ps, "%s: more than %d entries", key, POLICY_MAX_ITEMS);
		return false;
	}
	if ((list[*n] = strdup(tok)) == NULL) {
		perr(ps, "out of memory");
		return false;
	}
	(*n)++;
	return true;
}

static bool
item_feature(struct parse *ps, const char *key, const char *tok, void *arg)
{
	struct rule *r = arg;
	uint64_t bit;

	/* Both MISSING_SHMEM and UFFD_FEATURE_MISSING_SHMEM are accepted. */
	if (policy_feature_bit(tok, &bit) == 0) {
		r->grant.features |= bit;
		return true;
	}
	perr(ps, "%s: unknown feature '%s'", key, tok);
	return false;
}

static bool
parse_choice(struct parse *ps, const char *key, const char *value,
    const char *yes, const char *no, bool *out)
{
	if (strcmp(value, yes) == 0)
		*out = true;
	else if (strcmp(value, no) == 0)
		*out = false;
	else {
		perr(ps, "%s: expected '%s' or '%s', got '%s'", key, yes, no,
		    value);
		return false;
	}
	return true;
}

static bool
parse_limit(struct parse *ps, const char *key, const char *value,
    unsigned int *out)
{
	unsigned long long v;

	if (!parse_number(value, POLICY_MAX_LIMIT, &v) || v == 0) {
		perr(ps, "%s: expected a number from 1 to %d, got '%s'", key,
		    POLICY_MAX_LIMIT, value);
		return false;
	}
	*out = (unsigned int)v;
	return true;
}

/* The keys whose value is a list: indented lines after them add items. */
static const struct list_key {
	const char	*name;
	unsigned int	match;		/* MATCH_*; 0 for features */
	bool		(*item)(struct parse *, const char *, const char *,
			    void *);
} list_keys[] = {
	{ "uid",	MATCH_UID,	item_uid },
	{ "gid",	MATCH_GID,	item_gid },
	{ "exe",	MATCH_EXE,	item_path },
	{ "cgroup",	MATCH_CGROUP,	item_path },
	{ "features",	0,		item_feature },
};

static const struct list_key *
list_key(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(list_keys) / sizeof(list_keys[0]); i++)
		if (strcmp(list_keys[i].name, name) == 0)
			return &list_keys[i];
	return NULL;
}

static bool
rule_key(struct parse *ps, struct rule *r, const char *name, const char *value)
{
	const struct list_key *lk = list_key(name);
	struct grant *g = &r->grant;

	if (lk != NULL) {
		r->keys |= lk->match;
		/* "none" is the empty set of features, said explicitly. */
		if (lk->match == 0 && strcmp(value, "none") == 0)
			return true;
		return each_item(ps, name, value, lk->item, r);
	}
	if (strcmp(name, "action") == 0)
		return parse_choice(ps, name, value, "deny", "allow", &g->deny);
	if (strcmp(name, "mode") == 0)
		return parse_choice(ps, name, value, "kernel", "user",
		    &g->kernel_faults);
	if (strcmp(name, "max_uffds") == 0)
		return parse_limit(ps, name, value, &g->max_uffds);
	if (strcmp(name, "max_sessions_per_uid") == 0)
		return parse_limit(ps, name, value, &g->max_sessions_per_uid);
	if (strcmp(name, "forked_sessions") == 0)
		return parse_choice(ps, name, value, "yes", "no",
		    &g->forked_sessions);
	if (strcmp(name, "prove_filter") == 0)
		return parse_choice(ps, name, value, "required", "off",
		    &g->prove_filter);
	return false;
}

/*
 * An indented line after a key line: inih hands it over as more of that
 * key's value. A list takes more items; any other value is complete.
 */
static int
continuation(struct parse *ps, const char *name, const char *value)
{
	const struct list_key *lk = list_key(name);
	struct rule *r;

	if (ps->sec != SEC_RULE || lk == NULL) {
		perr(ps, "%s: one value only, not a list", name);
		return 0;
	}
	r = &ps->p->rules[ps->p->nrules - 1];
	/* Only "none" leaves a features line without a bit set. */
	if (lk->match == 0 && r->grant.features == 0) {
		perr(ps, "features: 'none' stands alone");
		return 0;
	}
	return each_item(ps, name, value, lk->item, r);
}

/* inih's handler: one key of the current section. */
static int
handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse *ps = user;
	const char *const *keys;
	const char *where = ps->sec == SEC_BROKER ? "[broker]" : "[rule]";
	int k;

	(void)section;
	if (ps->err[0] != '\0' || ps->sec == SEC_BAD)
		return 0;
	if (ps->sec == SEC_NONE) {
		perr(ps, "key '%s' outside a section", name);
		return 0;
	}
	if (ps->cont)
		return continuation(ps, name, value);
	keys = ps->sec == SEC_BROKER ? broker_keys : rule_keys;
	if ((k = key_index(keys, name)) < 0) {
		if (ps->sec == SEC_RULE)
			perr(ps, "unknown key '%s' in [rule %s]", name,
			    ps->p->rules[ps->p->nrules - 1].name);
		else
			perr(ps, "unknown key '%s' in %s", name, where);
		return 0;
	}
	if (ps->seen[k] != 0) {
		perr(ps, "duplicate key '%s' (first on line %d)", name,
		    ps->seen[k]);
		return 0;
	}
	ps->seen[k] = ps->line;
	ps->after_key = true;
	if (ps->sec == SEC_BROKER) {
		ps->p->has_admin_group = group_id(ps, name, value,
		    &ps->p->admin_gid);
		return ps->p->has_admin_group;
	}
	if (!rule_key(ps, &ps->p->rules[ps->p->nrules - 1], name, value)) {
		perr(ps, "%s: bad value '%s'", name, value);
		return 0;
	}
	return 1;
}

int
policy_load(const char *path, struct policy **out, char *err, size_t errlen)
{
	struct parse ps = { .path = path };
	int rc;

	*out = NULL;
	if ((ps.f = fopen(path, "re")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	ps.p = calloc(1, sizeof(*ps.p));
	if (ps.p != NULL)
		ps.p->rules = calloc(POLICY_MAX_RULES, sizeof(struct rule));
	if (ps.p == NULL || ps.p->rules == NULL ||
	    (ps.p->path = strdup(path)) == NULL) {
		fclose(ps.f);
		policy_free(ps.p);
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	rc = ini_parse_stream(reader, &ps, handler, &ps);
	fclose(ps.f);
	free(ps.buf);
	/*
	 * inih returns the first line it found wrong, and reads on past a
	 * line it cannot parse (which it does not hand to us): such a line
	 * before our first error is the first error.
	 */
	if (rc != 0 && (ps.err[0] == '\0' || (rc > 0 && rc < ps.err_line))) {
		ps.err[0] = '\0';
		ps.line = rc;
		ps.cont = false;
		perr(&ps, "syntax error: expected 'key = value', '[section]' "
		    "or a comment");
	}
	if (ps.err[0] != '\0') {
		snprintf(err, errlen, "%s", ps.err);
		policy_free(ps.p);
		return -1;
	}
	*out = ps.p;
	return 0;
}

struct policy *
policy_single(const char *name, const uid_t *uids, size_t nuids,
    const struct grant *g)
{
	struct policy *p = calloc(1, sizeof(*p));
	struct rule *r;

	if (p == NULL || (p->rules = calloc(1, sizeof(*r))) == NULL) {
		free(p);
		return NULL;
	}
	r = &p->rules[0];
	snprintf(r->name, sizeof(r->name), "%s", name);
	/* More uids than a rule holds: none dropped silently. */
	if (nuids > POLICY_MAX_ITEMS) {
		free(p->rules);
		free(p);
		return NULL;
	}
	memcpy(r->uids, uids, nuids * sizeof(uid_t));
	r->nuids = nuids;
	r->keys = MATCH_UID;
	r->grant = *g;
	p->nrules = nuids > 0 ? 1 : 0;
	return p;
}

void
policy_free(struct policy *p)
{
	size_t i, j;

	if (p == NULL)
		return;
	for (i = 0; p->rules != NULL && i < p->nrules; i++) {
		for (j = 0; j < p->rules[i].nexes; j++)
			free(p->rules[i].exes[j]);
		for (j = 0; j < p->rules[i].ncgroups; j++)
			free(p->rules[i].cgroups[j]);
	}
	free(p->rules);
	free(p->path);
	free(p);
}

static bool
in_group(const struct peer *peer, gid_t gid)
{
	size_t i;

	if (peer->gid == gid)
		return true;
	for (i = 0; i < peer->ngroups; i++)
		if (peer->groups[i] == gid)
			return true;
	return false;
}

/*
 * A cgroup glob: '*' does not cross a '/' (FNM_PATHNAME); a pattern ending
 * in a slash and two stars also matches everything below what the rest of
 * it matches.
 */
static bool
cgroup_matches(const char *pattern, const char *path)
{
	char prefix[PATH_MAX_POLICY], sub[PATH_MAX_POLICY];
	size_t plen = strlen(pattern), i;

	if (plen < 3 || strcmp(pattern + plen - 3, "/**") != 0)
		return fnmatch(pattern, path, FNM_PATHNAME) == 0;
	if (plen - 3 >= sizeof(prefix) || strlen(path) >= sizeof(sub))
		return false;
	memcpy(prefix, pattern, plen - 3);
	prefix[plen - 3] = '\0';
	if (prefix[0] == '\0')
		return true;		/* the root's subtree: every cgroup */
	/* The path itself, or any of its ancestors, matches the prefix. */
	snprintf(sub, sizeof(sub), "%s", path);
	for (i = strlen(sub); i > 0; i--) {
		if (sub[i] != '\0' && sub[i] != '/')
			continue;
		sub[i] = '\0';
		if (fnmatch(prefix, sub, FNM_PATHNAME) == 0)
			return true;
	}
	return false;
}

/*
 * Does the rule match? If not and why is given, it says which key failed.
 */
static bool
rule_matches(const struct rule *r, const struct peer *peer, char *why,
    size_t len)
{
	size_t i;
	bool ok;

	if (r->keys & MATCH_UID) {
		for (ok = false, i = 0; i < r->nuids && !ok; i++)
			ok = r->uids[i] == peer->uid;
		if (!ok) {
			snprintf(why, len, "uid %u is not listed",
			    (unsigned)peer->uid);
			return false;
		}
	}
	if (r->keys & MATCH_GID) {
		for (ok = false, i = 0; i < r->ngids && !ok; i++)
			ok = in_group(peer, r->gids[i]);
		if (!ok) {
			snprintf(why, len, "gid %u and its groups are not listed",
			    (unsigned)peer->gid);
			return false;
		}
	}
	if (r->keys & MATCH_EXE) {
		for (ok = false, i = 0; i < r->nexes && !ok && peer->exe; i++)
			ok = strcmp(r->exes[i], peer->exe) == 0;
		if (!ok) {
			snprintf(why, len, "executable %s is not listed",
			    peer->exe ? peer->exe : "(unknown)");
			return false;
		}
	}
	if (r->keys & MATCH_CGROUP) {
		for (ok = false, i = 0; i < r->ncgroups && !ok && peer->cgroup;
		    i++)
			ok = cgroup_matches(r->cgroups[i], peer->cgroup);
		if (!ok) {
			snprintf(why, len, "cgroup %s matches no pattern",
			    peer->cgroup ? peer->cgroup : "(unknown)");
			return false;
		}
	}
	return true;
}

struct rule *
policy_match(const struct policy *p, const struct peer *peer)
{
	char why[160];
	size_t i;

	for (i = 0; i < p->nrules; i++)
		if (rule_matches(&p->rules[i], peer, why, sizeof(why)))
			return &p->rules[i];
	return NULL;
}

bool
policy_is_admin(const struct policy *p, const struct peer *peer)
{
	return peer->uid == 0 ||
	    (p->has_admin_group && in_group(peer, p->admin_gid));
}

int
policy_feature_bit(const char *name, uint64_t *bit)
{
	size_t i;

	if (strncmp(name, "UFFD_FEATURE_", 13) == 0)
		name += 13;
	for (i = 0; i < NFEATURES; i++)
		if (strcmp(feature_names[i].name, name) == 0) {
			*bit = feature_names[i].bit;
			return 0;
		}
	return -1;
}

void
policy_feature_names(uint64_t features, char *buf, size_t len)
{
	size_t i, off = 0;

	buf[0] = '\0';
	for (i = 0; i < NFEATURES && off < len; i++)
		if (features & feature_names[i].bit) {
			off += snprintf(buf + off, len - off, "%s%s",
			    off ? " " : "", feature_names[i].name);
			features &= ~feature_names[i].bit;
		}
	if (features != 0 && off < len)
		off += snprintf(buf + off, len - off, "%s0x%llx", off ? " " : "",
		    (unsigned long long)features);
	if (off == 0)
		snprintf(buf, len, "none");
}

void
policy_grant_text(const struct grant *g, char *buf, size_t len)
{
	char features[512];

	if (g->deny) {
		snprintf(buf, len, "action=deny");
		return;
	}
	policy_feature_names(g->features, features, sizeof(features));
	snprintf(buf, len, "mode=%s features=\"%s\" max_uffds=%u "
	    "max_sessions_per_uid=%u forked_sessions=%s%s",
	    g->kernel_faults ? "kernel" : "user", features, g->max_uffds,
	    g->max_sessions_per_uid, g->forked_sessions ? "yes" : "no",
	    !g->kernel_faults ? "" : g->prove_filter ?
	    " prove_filter=required" : " prove_filter=off");
}

/* A list key being printed: where its current line has got to. */
struct list_out {
	FILE		*f;
	size_t		col;
	bool		any;	/* an item printed */
};

static void
list_start(struct list_out *o, FILE *f, const char *key)
{
	o->f = f;
	o->col = strlen(key) + 2;
	o->any = false;
	fprintf(f, "%s =", key);
}

/*
 * The first item goes on the key's line; the others follow while the line
 * stays within PRINT_WIDTH, else start an indented line, on which any item
 * fits (POLICY_ITEM_MAX): every line loads back.
 */
static void
list_item(struct list_out *o, const char *item)
{
	size_t len = strlen(item);

	if (o->any && o->col + 1 + len > PRINT_WIDTH) {
		fprintf(o->f, "\n\t%s", item);
		o->col = 8 + len;
	} else {
		fprintf(o->f, " %s", item);
		o->col += 1 + len;
	}
	o->any = true;
}

static void
list_ids(FILE *f, const char *key, const unsigned int *ids, size_t n)
{
	struct list_out o;
	char num[16];
	size_t i;

	list_start(&o, f, key);
	for (i = 0; i < n; i++) {
		snprintf(num, sizeof(num), "%u", ids[i]);
		list_item(&o, num);
	}
	fputc('\n', f);
}

static void
list_strings(FILE *f, const char *key, char *const *items, size_t n)
{
	struct list_out o;
	size_t i;

	list_start(&o, f, key);
	for (i = 0; i < n; i++)
		list_item(&o, items[i]);
	fputc('\n', f);
}

void
policy_print(const struct policy *p, FILE *f)
{
	const struct rule *r;
	struct list_out o;
	char features[512], *name, *save;
	size_t i;

	fprintf(f, "# uffd-broker policy (canonical form)\n");
	if (p->has_admin_group)
		fprintf(f, "\n[broker]\nadmin_group = %u\n",
		    (unsigned)p->admin_gid);
	for (i = 0; i < p->nrules; i++) {
		r = &p->rules[i];
		fprintf(f, "\n[rule %s]\n", r->name);
		if (r->keys & MATCH_UID)
			list_ids(f, "uid", r->uids, r->nuids);
		if (r->keys & MATCH_GID)
			list_ids(f, "gid", r->gids, r->ngids);
		if (r->keys & MATCH_EXE)
			list_strings(f, "exe", r->exes, r->nexes);
		if (r->keys & MATCH_CGROUP)
			list_strings(f, "cgroup", r->cgroups, r->ncgroups);
		fprintf(f, "action = %s\n", r->grant.deny ? "deny" : "allow");
		if (r->grant.deny)
			continue;
		fprintf(f, "mode = %s\n", r->grant.kernel_faults ? "kernel" :
		    "user");
		policy_feature_names(r->grant.features, features,
		    sizeof(features));
		list_start(&o, f, "features");
		save = NULL;
		for (name = strtok_r(features, " ", &save); name != NULL;
		    name = strtok_r(NULL, " ", &save))
			list_item(&o, name);
		fprintf(f, "\nmax_uffds = %u\nmax_sessions_per_uid = %u\n"
		    "forked_sessions = %s\n", r->grant.max_uffds,
		    r->grant.max_sessions_per_uid,
		    r->grant.forked_sessions ? "yes" : "no");
		/* Only kernel faults need the proof (the device fd). */
		if (r->grant.kernel_faults)
			fprintf(f, "prove_filter = %s\n",
			    r->grant.prove_filter ? "required" : "off");
	}
}

static void __attribute__((format(printf, 4, 5)))
warnf(void (*warn)(void *, const char *), void *arg, unsigned int *n,
    const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	warn(arg, msg);
	(*n)++;
}

unsigned int
policy_check(const struct policy *p, void (*warn)(void *, const char *),
    void *arg)
{
	const struct rule *r, *all = NULL;
	unsigned int n = 0;
	size_t i;

	if (p->nrules == 0)
		warnf(warn, arg, &n, "no rules: every peer is refused");
	for (i = 0; i < p->nrules; i++) {
		r = &p->rules[i];
		if (all != NULL) {
			warnf(warn, arg, &n, "rule '%s' (line %d) is never "
			    "reached: rule '%s' (line %d) matches every peer",
			    r->name, r->line, all->name, all->line);
			continue;
		}
		if (r->keys == 0)
			all = r;
		if (r->grant.deny)
			continue;
		if (r->grant.kernel_faults && !(r->keys & (MATCH_UID | MATCH_GID)))
			warnf(warn, arg, &n, "rule '%s' (line %d) grants kernel "
			    "faults to every uid%s", r->name, r->line,
			    r->keys ? " (it matches on exe or cgroup only)" : "");
		if (r->grant.kernel_faults && (r->keys & (MATCH_UID | MATCH_GID)) &&
		    !(r->keys & (MATCH_EXE | MATCH_CGROUP)))
			warnf(warn, arg, &n, "rule '%s' (line %d) grants kernel "
			    "faults on uid/gid alone: any program of those users "
			    "can open a session; match exe or cgroup too (see "
			    "docs/security.md)", r->name, r->line);
		if (r->grant.kernel_faults && !r->grant.prove_filter)
			warnf(warn, arg, &n, "rule '%s' (line %d) grants kernel "
			    "faults with prove_filter = off: a program that "
			    "installs a filter of its own instead of the "
			    "library's gets the device fd, and makes uffds "
			    "outside the broker's grant", r->name, r->line);
		if (r->grant.features & UFFD_FEATURE_EVENT_FORK)
			warnf(warn, arg, &n, "rule '%s' (line %d) grants "
			    "EVENT_FORK: a client's forks hand it uffds the "
			    "broker does not count, and the broker must keep "
			    "CAP_SYS_PTRACE", r->name, r->line);
		if ((r->keys & MATCH_UID) && r->nuids > 0) {
			size_t j;

			for (j = 0; j < r->nuids; j++)
				if (r->uids[j] == 0 && r->grant.kernel_faults)
					warnf(warn, arg, &n, "rule '%s' (line "
					    "%d) grants kernel faults to root",
					    r->name, r->line);
		}
	}
	return n;
}

void
policy_explain(const struct policy *p, const struct peer *peer, FILE *f)
{
	const struct rule *r;
	char why[160], grant[640];
	size_t i;

	fprintf(f, "peer: uid=%u gid=%u exe=%s cgroup=%s\n", (unsigned)peer->uid,
	    (unsigned)peer->gid, peer->exe ? peer->exe : "(not given)",
	    peer->cgroup ? peer->cgroup : "(not given)");
	for (i = 0; i < p->nrules; i++) {
		r = &p->rules[i];
		if (!rule_matches(r, peer, why, sizeof(why))) {
			fprintf(f, "rule '%s' (line %d): no match: %s\n",
			    r->name, r->line, why);
			continue;
		}
		policy_grant_text(&r->grant, grant, sizeof(grant));
		fprintf(f, "rule '%s' (line %d): MATCH\n", r->name, r->line);
		if (r->grant.deny)
			fprintf(f, "result: refused by rule '%s' (action = "
			    "deny)\n", r->name);
		else
			fprintf(f, "result: granted by rule '%s': %s\n", r->name,
			    grant);
		return;
	}
	fprintf(f, "result: refused: no rule matches (default deny)\n");
}

unsigned int
policy_keys(const struct policy *p)
{
	unsigned int keys = 0;
	size_t i;

	for (i = 0; i < p->nrules; i++)
		keys |= p->rules[i].keys;
	return keys;
}

bool
policy_needs_exe(const struct policy *p)
{
	size_t i;

	for (i = 0; i < p->nrules; i++)
		if (p->rules[i].keys & MATCH_EXE)
			return true;
	return false;
}

bool
policy_grants_fork(const struct policy *p)
{
	size_t i;

	for (i = 0; i < p->nrules; i++)
		if (!p->rules[i].grant.deny &&
		    (p->rules[i].grant.features & UFFD_FEATURE_EVENT_FORK))
			return true;
	return false;
}
