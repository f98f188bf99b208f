/* SPDX-License-Identifier: ISC */
/*
 * policy.c - load, match, print and explain the access policy.
 *
 * The file is INI, read by inih (libinih): one [broker] section and one
 * [rule NAME] section per rule, in order. inih does the lexing; this file
 * checks every key and value and reports every error as FILE:LINE, in the
 * order of the lines. The line count and the section headers come from our
 * reader callback, which sees each line as inih reads it, and refuses the
 * lines on which two readers could disagree (control characters, NUL). A
 * list key may go on over indented lines, which inih hands over as more of
 * its value: that is how policy_print() keeps every line within inih's
 * limit.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <grp.h>
#include <ini.h>
#include <linux/userfaultfd.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy.h"

/* Defaults of a rule's grant: the least a matching peer can get. */
#define DEFAULT_MAX_UFFDS		16
#define DEFAULT_MAX_SESSIONS_PER_UID	64

#define PATH_MAX_POLICY		4096

/* inih's line buffer (INI_MAX_LINE); a longer line would be split. */
#define LINE_MAX_INI		200
/* Where policy_print() wraps lists; a tab counts 8. */
#define PRINT_WIDTH		78

#define MAX_U64(a, b)		((a) > (b) ? (a) : (b))
#define MIN_U64(a, b)		((a) < (b) ? (a) : (b))

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

/* An error, kept until the file is read: reported in the order of lines. */
struct perror {
	int		line;		/* 0: about the file, not a line */
	char		msg[POLICY_ERROR_MAX];
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
	/*
	 * After an error, what follows is read on for more errors, but not
	 * where it would be taken for what it is not: the continuations of a
	 * key whose line was wrong (key_bad), or of a line inih never saw
	 * (skip_cont), are skipped.
	 */
	bool		key_bad;
	bool		skip_cont;
	bool		features_none;	/* the key line: "features = none" */
	struct policy	*p;
	enum section	sec;
	int		seen[16];	/* line each key of the section was seen on */
	int		broker_line;
	struct sha256	sha;		/* of every byte read */
	struct perror	*errors;	/* the first POLICY_MAX_ERRORS */
	size_t		nkept;
	unsigned int	nerrors;	/* all of them */
};

static void __attribute__((format(printf, 3, 4)))
perr_at(struct parse *ps, int line, const char *fmt, ...)
{
	char msg[POLICY_ERROR_MAX - 64];
	struct perror *e;
	va_list ap;

	ps->nerrors++;
	if (ps->errors == NULL &&
	    (ps->errors = calloc(POLICY_MAX_ERRORS, sizeof(*e))) == NULL)
		return;		/* counted; policy_load_report() says so */
	if (ps->nkept == POLICY_MAX_ERRORS)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	e = &ps->errors[ps->nkept++];
	e->line = line;
	if (line > 0)
		snprintf(e->msg, sizeof(e->msg), "%s:%d: %s%s", ps->path, line,
		    msg, ps->cont ? " (an indented line continues the value "
		    "above)" : "");
	else
		snprintf(e->msg, sizeof(e->msg), "%s: %s", ps->path, msg);
}

#define perr(ps, ...)	perr_at((ps), (ps)->line, __VA_ARGS__)

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

/* A section header, as inih reads it: the name between the brackets. */
static void
section_begin(struct parse *ps, const char *name)
{
	struct policy *p = ps->p;
	struct rule *r;
	size_t i;

	memset(ps->seen, 0, sizeof(ps->seen));
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
 * inih's find_chars_or_comment(): the first of chars, or the start of an
 * inline comment (a ';' after a blank), or the end.
 */
static const char *
ini_stop(const char *s, const char *chars)
{
	bool was_space = false;

	while (*s != '\0' && strchr(chars, *s) == NULL &&
	    !(was_space && *s == ';')) {
		was_space = isspace((unsigned char)*s);
		s++;
	}
	return s;
}

/*
 * A line with no control characters but tabs (and the \r of a \r\n), within
 * inih's buffer: inih takes \v, \f and \r for blanks and ends a line at NUL,
 * and a terminal would show a reviewer something else than what the broker
 * reads. len: the line without its newline.
 */
static bool
line_ok(struct parse *ps, size_t len, size_t max)
{
	size_t i;
	unsigned char c;

	if (len > max) {
		perr(ps, "line longer than %zu characters", max);
		return false;
	}
	if (len > 0 && ps->buf[len] == '\n' && ps->buf[len - 1] == '\r')
		len--;
	for (i = 0; i < len; i++) {
		c = ps->buf[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			perr(ps, "control character 0x%02x: only spaces and "
			    "tabs are allowed", c);
			return false;
		}
	}
	return true;
}

/*
 * A line not handed to inih (it is blank to inih). Unless it continued a
 * value, what it was is lost: a section's keys would go to the section
 * before, an indented line after it to the key before.
 */
static char *
line_dropped(struct parse *ps, char *str, const char *s, bool indented)
{
	if (!indented || !ps->after_key) {
		ps->skip_cont = true;
		if (*s == '[')
			ps->sec = SEC_BAD;
	}
	memcpy(str, "\n", 2);
	return str;
}

/*
 * inih's reader: one line at a time, counted, checked, and seen as inih will
 * see it. inih skips every isspace() character before a line's text, and
 * reads an indented line after a key line as more of that key's value (even
 * one that starts with '['): this reader must agree on where sections start,
 * or a rule could merge silently into the one before. A line that is wrong
 * is reported and handed over blank, and the reading goes on.
 */
static char *
reader(char *str, int num, void *stream)
{
	struct parse *ps = stream;
	const char *s, *end, *name;
	bool indented;
	ssize_t n;
	size_t len;

	ps->cont = false;
	if ((n = getline(&ps->buf, &ps->bufsize, ps->f)) < 0)
		return NULL;
	sha256_update(&ps->sha, ps->buf, n);
	ps->line++;
	len = n;
	if (ps->buf[len - 1] == '\n')
		len--;
	s = ps->buf;
	if (ps->line == 1 && strncmp(s, "\xef\xbb\xbf", 3) == 0)
		s += 3;		/* inih skips a UTF-8 byte order mark */
	while (s < ps->buf + len && isspace((unsigned char)*s))
		s++;
	indented = s > ps->buf;
	if (!line_ok(ps, len, (size_t)num - 2))
		return line_dropped(ps, str, s, indented);
	memcpy(str, ps->buf, n + 1);
	s = str + (s - ps->buf);
	while (isspace((unsigned char)*s))
		s++;		/* the newline of a blank line */
	if (*s == '\0' || *s == ';' || *s == '#')
		return str;	/* blank, or a comment */
	if (indented && ps->after_key) {
		ps->cont = true;
		if (*s == '[') {
			perr(ps, "a section header must start its line");
			ps->cont = false;
			return line_dropped(ps, str, s, false);
		}
		return str;
	}
	ps->skip_cont = false;
	if (*s == '[') {
		char copy[LINE_MAX_INI];

		if (*(end = ini_stop(s + 1, "]")) != ']') {
			perr(ps, "syntax error: a section header without its "
			    "']'");
			ps->sec = SEC_BAD;
			ps->skip_cont = true;
			return str;
		}
		ps->after_key = false;
		snprintf(copy, sizeof(copy), "%.*s", (int)(end - s - 1), s + 1);
		section_begin(ps, copy);
		return str;
	}
	/* "key = value", or "key: value"; inih needs a key for what follows. */
	if (*(end = ini_stop(s, "=:")) == '\0' || *end == ';') {
		perr(ps, "syntax error: expected 'key = value', '[section]' or "
		    "a comment");
		ps->skip_cont = true;
		return str;
	}
	for (name = end; name > s && isspace((unsigned char)name[-1]); name--)
		;
	ps->after_key = name > s;
	return str;
}

/*
 * What an item of a list did: ITEM_BAD is reported and the next item is
 * checked; after ITEM_STOP (the list is full) there is no point.
 */
enum item { ITEM_OK, ITEM_BAD, ITEM_STOP };

typedef enum item item_fn(struct parse *, const char *, const char *, void *);

/* Split a list value on spaces and commas; calls item() for each. */
static bool
each_item(struct parse *ps, const char *key, const char *value, item_fn *item,
    void *arg)
{
	char buf[LINE_MAX_INI], *tok, *save = NULL;
	bool any = false, ok = true;
	enum item rc;

	snprintf(buf, sizeof(buf), "%s", value);
	for (tok = strtok_r(buf, " \t,", &save); tok != NULL;
	    tok = strtok_r(NULL, " \t,", &save)) {
		any = true;
		if ((rc = item(ps, key, tok, arg)) == ITEM_OK)
			continue;
		ok = false;
		if (rc == ITEM_STOP)
			break;
	}
	if (!any)
		perr(ps, "%s: empty value", key);
	return any && ok;
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

static enum item
item_uid(struct parse *ps, const char *key, const char *tok, void *arg)
{
	struct rule *r = arg;
	unsigned long long v;
	struct passwd *pw;

	if (r->nuids == POLICY_MAX_ITEMS) {
		perr(ps, "%s: more than %d entries", key, POLICY_MAX_ITEMS);
		return ITEM_STOP;
	}
	if (parse_number(tok, (uid_t)-2, &v))
		r->uids[r->nuids++] = (uid_t)v;
	else if ((pw = getpwnam(tok)) != NULL)
		r->uids[r->nuids++] = pw->pw_uid;
	else {
		perr(ps, "%s: no such user '%s'", key, tok);
		return ITEM_BAD;
	}
	return ITEM_OK;
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

static enum item
item_gid(struct parse *ps, const char *key, const char *tok, void *arg)
{
	struct rule *r = arg;

	if (r->ngids == POLICY_MAX_ITEMS) {
		perr(ps, "%s: more than %d entries", key, POLICY_MAX_ITEMS);
		return ITEM_STOP;
	}
	if (!group_id(ps, key, tok, &r->gids[r->ngids]))
		return ITEM_BAD;
	r->ngids++;
	return ITEM_OK;
}

static enum item
item_path(struct parse *ps, const char *key, const char *tok, void *arg)
{
	struct rule *r = arg;
	bool exe = strcmp(key, "exe") == 0;
	char **list = exe ? r->exes : r->cgroups;
	size_t *n = exe ? &r->nexes : &r->ncgroups;

	if (*n == POLICY_MAX_ITEMS) {
		perr(ps, "%s: more than %d entries", key, POLICY_MAX_ITEMS);
		return ITEM_STOP;
	}
	if (tok[0] != '/') {
		perr(ps, "%s: '%s' is not an absolute path", key, tok);
		return ITEM_BAD;
	}
	if (strlen(tok) > POLICY_ITEM_MAX) {
		perr(ps, "%s: a path longer than %d characters", key,
		    POLICY_ITEM_MAX);
		return ITEM_BAD;
	}
	if ((list[*n] = strdup(tok)) == NULL) {
		perr(ps, "out of memory");
		return ITEM_STOP;
	}
	(*n)++;
	return ITEM_OK;
}

static enum item
item_feature(struct parse *ps, const char *key, const char *tok, void *arg)
{
	struct rule *r = arg;
	uint64_t bit;

	/* Both MISSING_SHMEM and UFFD_FEATURE_MISSING_SHMEM are accepted. */
	if (policy_feature_bit(tok, &bit) == 0) {
		r->grant.features |= bit;
		return ITEM_OK;
	}
	perr(ps, "%s: unknown feature '%s'", key, tok);
	return ITEM_BAD;
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
	item_fn		*item;
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
		if (lk->match == 0 && strcmp(value, "none") == 0) {
			ps->features_none = true;
			return true;
		}
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
	char buf[LINE_MAX_INI], *end;
	struct rule *r;

	/*
	 * A comment after a blank ends the value, as on a key line: libinih
	 * 55 (Debian 12's) leaves it in a continuation, the current one cuts
	 * it. Cut here, the file means the same with either.
	 */
	snprintf(buf, sizeof(buf), "%s", value);
	end = buf + (ini_stop(buf, "") - buf);
	while (end > buf && isspace((unsigned char)end[-1]))
		end--;
	*end = '\0';
	value = buf;
	/* What it would continue is no key, or not the one inih thinks. */
	if (ps->key_bad || ps->skip_cont)
		return 1;
	if (ps->sec != SEC_RULE || lk == NULL) {
		perr(ps, "%s: one value only, not a list", name);
		return 0;
	}
	r = &ps->p->rules[ps->p->nrules - 1];
	if (lk->match == 0 && ps->features_none) {
		perr(ps, "features: 'none' stands alone");
		return 0;
	}
	return each_item(ps, name, value, lk->item, r);
}

/*
 * A key line of the current section. A key that is no key of its section
 * sets key_bad: the lines that continue it are not checked as its items.
 */
static bool
key_line(struct parse *ps, const char *name, const char *value)
{
	const char *const *keys;
	unsigned int before = ps->nerrors;
	int k;

	ps->key_bad = true;
	ps->features_none = false;
	if (ps->sec == SEC_NONE) {
		perr(ps, "key '%s' outside a section", name);
		return false;
	}
	keys = ps->sec == SEC_BROKER ? broker_keys : rule_keys;
	if ((k = key_index(keys, name)) < 0) {
		if (ps->sec == SEC_RULE)
			perr(ps, "unknown key '%s' in [rule %s]", name,
			    ps->p->rules[ps->p->nrules - 1].name);
		else
			perr(ps, "unknown key '%s' in [broker]", name);
		return false;
	}
	if (ps->seen[k] != 0) {
		perr(ps, "duplicate key '%s' (first on line %d)", name,
		    ps->seen[k]);
		return false;
	}
	ps->seen[k] = ps->line;
	ps->key_bad = false;
	if (ps->sec == SEC_BROKER)
		return ps->p->has_admin_group = group_id(ps, name, value,
		    &ps->p->admin_gid);
	if (rule_key(ps, &ps->p->rules[ps->p->nrules - 1], name, value))
		return true;
	if (ps->nerrors == before)
		perr(ps, "%s: bad value '%s'", name, value);
	return false;
}

/* inih's handler: one key of the current section, or more of its value. */
static int
handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse *ps = user;

	(void)section;
	if (ps->sec == SEC_BAD)
		return 1;	/* the section's header is reported */
	if (ps->cont)
		return continuation(ps, name, value);
	return key_line(ps, name, value);
}

FILE *
policy_fopen(const char *path, char *err, size_t errlen)
{
	struct stat st;
	const char *what;
	FILE *f;
	int fd;

	/* O_NONBLOCK: opening a FIFO must not wait for a writer. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		what = S_ISDIR(st.st_mode) ? "a directory" :
		    S_ISFIFO(st.st_mode) ? "a FIFO" :
		    S_ISSOCK(st.st_mode) ? "a socket" :
		    S_ISCHR(st.st_mode) ? "a character device" :
		    S_ISBLK(st.st_mode) ? "a block device" : "not a file";
		snprintf(err, errlen, "%s: not a regular file (%s)", path,
		    what);
		close(fd);
		return NULL;
	}
	if ((f = fdopen(fd, "re")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
	}
	return f;
}

/* Errors in the order of their lines (a stable sort: a few dozen at most). */
static void
report_errors(struct parse *ps, policy_error_fn *error, void *arg)
{
	struct perror tmp;
	char msg[POLICY_ERROR_MAX];
	size_t i, j;

	for (i = 1; i < ps->nkept; i++)
		for (j = i; j > 0 && ps->errors[j - 1].line >
		    ps->errors[j].line; j--) {
			tmp = ps->errors[j];
			ps->errors[j] = ps->errors[j - 1];
			ps->errors[j - 1] = tmp;
		}
	for (i = 0; i < ps->nkept; i++)
		error(arg, ps->errors[i].msg);
	if (ps->nerrors > ps->nkept) {
		snprintf(msg, sizeof(msg), "%s: %u more errors", ps->path,
		    ps->nerrors - (unsigned int)ps->nkept);
		error(arg, msg);
	}
}

/* Whether an error was reported on this line. */
static bool
error_on_line(const struct parse *ps, int line)
{
	size_t i;

	for (i = 0; i < ps->nkept; i++)
		if (ps->errors[i].line == line)
			return true;
	return false;
}

int
policy_load_report(const char *path, struct policy **out,
    policy_error_fn *error, void *arg)
{
	struct parse ps = { .path = path };
	char err[POLICY_ERROR_MAX];
	unsigned int n;
	ssize_t len;
	int rc;

	*out = NULL;
	if ((ps.f = policy_fopen(path, err, sizeof(err))) == NULL) {
		error(arg, err);
		return 1;
	}
	ps.p = calloc(1, sizeof(*ps.p));
	if (ps.p != NULL)
		ps.p->rules = calloc(POLICY_MAX_RULES, sizeof(struct rule));
	if (ps.p == NULL || ps.p->rules == NULL ||
	    (ps.p->path = strdup(path)) == NULL) {
		fclose(ps.f);
		policy_free(ps.p);
		snprintf(err, sizeof(err), "%s: out of memory", path);
		error(arg, err);
		return 1;
	}
	sha256_init(&ps.sha);
	rc = ini_parse_stream(reader, &ps, handler, &ps);
	ps.cont = false;
	/* The digest is of the whole file, though inih stopped early. */
	while (!ferror(ps.f) && (len = getline(&ps.buf, &ps.bufsize, ps.f)) > 0)
		sha256_update(&ps.sha, ps.buf, len);
	if (ferror(ps.f))
		perr_at(&ps, 0, "read error: %s", strerror(errno));
	fclose(ps.f);
	free(ps.buf);
	/*
	 * The reader reports each line inih cannot parse, and inih returns
	 * the first line it found wrong: never one without an error, but if
	 * ever the two disagreed, inih's word is reported too.
	 */
	if (rc > 0 && !error_on_line(&ps, rc))
		perr_at(&ps, rc, "syntax error: expected 'key = value', "
		    "'[section]' or a comment");
	else if (rc < 0)
		perr_at(&ps, 0, "out of memory");
	if ((n = ps.nerrors) > 0) {
		if (ps.nkept == 0) {
			snprintf(err, sizeof(err), "%s: %u errors (out of "
			    "memory to say which)", path, n);
			error(arg, err);
		} else
			report_errors(&ps, error, arg);
		free(ps.errors);
		policy_free(ps.p);
		return (int)n;
	}
	sha256_final(&ps.sha, ps.p->digest);
	clock_gettime(CLOCK_REALTIME, &ps.p->loaded);
	*out = ps.p;
	return 0;
}

/* policy_load()'s error callback: the first message. */
struct first_error {
	char	*buf;
	size_t	len;
	bool	done;
};

static void
keep_first(void *arg, const char *msg)
{
	struct first_error *fe = arg;

	if (!fe->done)
		snprintf(fe->buf, fe->len, "%s", msg);
	fe->done = true;
}

int
policy_load(const char *path, struct policy **out, char *err, size_t errlen)
{
	struct first_error fe = { .buf = err, .len = errlen };

	return policy_load_report(path, out, keep_first, &fe) == 0 ? 0 : -1;
}

static void	print_policy(const struct policy *p, FILE *f, bool names);

/*
 * The digest of a policy not read from a file: of its canonical form
 * without names (which /etc/passwd may change), as policy print would write
 * it without comments.
 */
static int
canonical_digest(struct policy *p)
{
	struct sha256 sha;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	if ((f = open_memstream(&text, &len)) == NULL)
		return -1;
	print_policy(p, f, false);
	if (fclose(f) != 0) {
		free(text);
		return -1;
	}
	sha256_init(&sha);
	sha256_update(&sha, text, len);
	sha256_final(&sha, p->digest);
	free(text);
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
	if (canonical_digest(p) < 0) {
		policy_free(p);
		return NULL;
	}
	clock_gettime(CLOCK_REALTIME, &p->loaded);
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

/*
 * The name of a user or a group, as a comment may show it: at most
 * POLICY_ID_NAME_MAX characters, each a letter, a digit, '.', '_', '-' or
 * '$' (a name of /etc/passwd may hold anything but ':' and a newline, which
 * a printed line must not). NULL if none.
 */
static const char *
printable_name(const char *name, char *buf, size_t len)
{
	size_t i, n;

	if (name == NULL || (n = strlen(name)) == 0 ||
	    n > POLICY_ID_NAME_MAX || n >= len)
		return NULL;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) &&
		    strchr("._-$", name[i]) == NULL)
			return NULL;
	memcpy(buf, name, n + 1);
	return buf;
}

const char *
policy_user_name(uid_t uid, char *buf, size_t len)
{
	struct passwd *pw = getpwuid(uid);

	return printable_name(pw ? pw->pw_name : NULL, buf, len);
}

const char *
policy_group_name(gid_t gid, char *buf, size_t len)
{
	struct group *gr = getgrgid(gid);

	return printable_name(gr ? gr->gr_name : NULL, buf, len);
}

/*
 * A list key being printed: where its current line has got to, and the
 * names of its items so far, for the comment that ends the line.
 */
struct list_out {
	FILE		*f;
	size_t		col;
	bool		any;	/* an item printed */
	bool		named;	/* items have names (uids, gids) */
	char		names[PRINT_WIDTH + 1];
	size_t		nameslen;
	bool		anyname;	/* a name on this line, not only "-" */
};

static void
list_start(struct list_out *o, FILE *f, const char *key, bool named)
{
	o->f = f;
	o->col = strlen(key) + 2;
	o->any = false;
	o->named = named;
	o->names[0] = '\0';
	o->nameslen = 0;
	o->anyname = false;
	fprintf(f, "%s =", key);
}

/* The line's names as a comment: inih (and the parser) ignore it. */
static void
list_names(struct list_out *o)
{
	if (o->anyname)
		fprintf(o->f, " ; %s", o->names);
	o->names[0] = '\0';
	o->nameslen = 0;
	o->anyname = false;
}

/* The name of the item just printed, for the line's comment. */
static void
list_name(struct list_out *o, const char *name)
{
	snprintf(o->names + o->nameslen, sizeof(o->names) - o->nameslen,
	    "%s%s", o->nameslen ? " " : "", name ? name : "-");
	o->nameslen += strlen(o->names + o->nameslen);
	o->anyname |= name != NULL;
}

/*
 * The first item goes on the key's line; the others follow while the line,
 * with the comment of its names, stays within PRINT_WIDTH, else start an
 * indented line, on which any item fits (POLICY_ITEM_MAX, or a number and a
 * name of POLICY_ID_NAME_MAX): every line loads back. name: the item's, or
 * NULL ("-" in the comment).
 */
static void
list_item(struct list_out *o, const char *item, const char *name)
{
	size_t len = strlen(item), names = 0;

	if (o->named)	/* " ; " and the names, this one's included */
		names = 3 + o->nameslen + (o->nameslen ? 1 : 0) +
		    (name ? strlen(name) : 1);
	if (o->any && o->col + 1 + len + names > PRINT_WIDTH) {
		list_names(o);
		fprintf(o->f, "\n\t%s", item);
		o->col = 8 + len;
	} else {
		fprintf(o->f, " %s", item);
		o->col += 1 + len;
	}
	o->any = true;
	if (o->named)
		list_name(o, name);
}

static void
list_end(struct list_out *o)
{
	list_names(o);
	fputc('\n', o->f);
}

/* A list of uids (users) or gids, with their names if names. */
static void
list_ids(FILE *f, const char *key, const unsigned int *ids, size_t n,
    bool users, bool names)
{
	struct list_out o;
	char num[16], buf[POLICY_ID_NAME_MAX + 1];
	const char *name = NULL;
	size_t i;

	list_start(&o, f, key, names);
	for (i = 0; i < n; i++) {
		snprintf(num, sizeof(num), "%u", ids[i]);
		if (names)
			name = users ? policy_user_name(ids[i], buf,
			    sizeof(buf)) : policy_group_name(ids[i], buf,
			    sizeof(buf));
		list_item(&o, num, name);
	}
	list_end(&o);
}

static void
list_strings(FILE *f, const char *key, char *const *items, size_t n)
{
	struct list_out o;
	size_t i;

	list_start(&o, f, key, false);
	for (i = 0; i < n; i++)
		list_item(&o, items[i], NULL);
	list_end(&o);
}

void
policy_print(const struct policy *p, FILE *f)
{
	print_policy(p, f, true);
}

static void
print_policy(const struct policy *p, FILE *f, bool names)
{
	const struct rule *r;
	struct list_out o;
	char features[512], *name, *save, buf[POLICY_ID_NAME_MAX + 1];
	const char *gname = NULL;
	size_t i;

	fprintf(f, "# uffd-broker policy (canonical form)\n");
	if (p->has_admin_group) {
		if (names)
			gname = policy_group_name(p->admin_gid, buf,
			    sizeof(buf));
		fprintf(f, "\n[broker]\nadmin_group = %u%s%s\n",
		    (unsigned)p->admin_gid, gname ? " ; " : "",
		    gname ? gname : "");
	}
	for (i = 0; i < p->nrules; i++) {
		r = &p->rules[i];
		fprintf(f, "\n[rule %s]\n", r->name);
		if (r->keys & MATCH_UID)
			list_ids(f, "uid", r->uids, r->nuids, true, names);
		if (r->keys & MATCH_GID)
			list_ids(f, "gid", r->gids, r->ngids, false, names);
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
		list_start(&o, f, "features", false);
		save = NULL;
		for (name = strtok_r(features, " ", &save); name != NULL;
		    name = strtok_r(NULL, " ", &save))
			list_item(&o, name, NULL);
		list_end(&o);
		fprintf(f, "max_uffds = %u\nmax_sessions_per_uid = %u\n"
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

/* The first rule before rule i that matches every peer, or NULL. */
static const struct rule *
shadowed_by(const struct policy *p, size_t i)
{
	size_t j;

	for (j = 0; j < i; j++)
		if (p->rules[j].keys == 0)
			return &p->rules[j];
	return NULL;
}

/* The warnings about rule i; how many. */
static unsigned int
check_rule(const struct policy *p, size_t i,
    void (*warn)(void *, const char *), void *arg)
{
	const struct rule *r = &p->rules[i], *all;
	unsigned int n = 0;
	size_t j;

	if ((all = shadowed_by(p, i)) != NULL) {
		warnf(warn, arg, &n, "rule '%s' (line %d) is never reached: "
		    "rule '%s' (line %d) matches every peer", r->name, r->line,
		    all->name, all->line);
		return n;
	}
	if (r->grant.deny)
		return n;
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
	if (r->keys & MATCH_UID)
		for (j = 0; j < r->nuids; j++)
			if (r->uids[j] == 0 && r->grant.kernel_faults)
				warnf(warn, arg, &n, "rule '%s' (line %d) "
				    "grants kernel faults to root", r->name,
				    r->line);
	return n;
}

unsigned int
policy_check(const struct policy *p, void (*warn)(void *, const char *),
    void *arg)
{
	unsigned int n = 0;
	size_t i;

	if (p->nrules == 0)
		warnf(warn, arg, &n, "no rules: every peer is refused");
	for (i = 0; i < p->nrules; i++)
		n += check_rule(p, i, warn, arg);
	return n;
}

/* ---- the summary ---- */

/* A line being written, wrapped within POLICY_SUMMARY_WIDTH. */
struct wrap {
	FILE		*f;
	size_t		col;
	size_t		indent;		/* of the lines it wraps onto */
	bool		fresh;		/* nothing on the line after its head */
};

static void
wrap_start(struct wrap *w, FILE *f, const char *head)
{
	w->f = f;
	w->col = strlen(head);
	w->indent = w->col;
	w->fresh = true;
	fputs(head, f);
}

/* One word (an item, with its punctuation): on this line, or the next. */
static void
wrap_word(struct wrap *w, const char *word)
{
	size_t len = strlen(word);

	if (!w->fresh && w->col + 1 + len > POLICY_SUMMARY_WIDTH) {
		fprintf(w->f, "\n%*s%s", (int)w->indent, "", word);
		w->col = w->indent + len;
	} else {
		fprintf(w->f, "%s%s", w->fresh ? "" : " ", word);
		w->col += (w->fresh ? 0 : 1) + len;
	}
	w->fresh = false;
}

/* Words of a text, each wrapped so. */
static void
wrap_words(struct wrap *w, const char *text)
{
	char buf[512], *word, *save = NULL;

	snprintf(buf, sizeof(buf), "%s", text);
	for (word = strtok_r(buf, " ", &save); word != NULL;
	    word = strtok_r(NULL, " ", &save))
		wrap_word(w, word);
}

static void
wrap_end(struct wrap *w)
{
	fputc('\n', w->f);
}

/* "uid 0 (root), 65534 (nobody)" for a key's ids, after head. */
static void
summary_ids(FILE *f, const char *head, const char *key,
    const unsigned int *ids, size_t n, bool users)
{
	char word[16 + POLICY_ID_NAME_MAX + 8], buf[POLICY_ID_NAME_MAX + 1];
	const char *name;
	struct wrap w;
	size_t i;

	wrap_start(&w, f, head);
	wrap_word(&w, key);
	for (i = 0; i < n; i++) {
		name = users ? policy_user_name(ids[i], buf, sizeof(buf)) :
		    policy_group_name(ids[i], buf, sizeof(buf));
		snprintf(word, sizeof(word), "%u%s%s%s%s", ids[i],
		    name ? " (" : "", name ? name : "", name ? ")" : "",
		    i + 1 < n ? "," : "");
		wrap_word(&w, word);
	}
	wrap_end(&w);
}

static void
summary_strings(FILE *f, const char *head, const char *key,
    char *const *items, size_t n)
{
	struct wrap w;
	size_t i;

	wrap_start(&w, f, head);
	wrap_word(&w, key);
	for (i = 0; i < n; i++)
		wrap_word(&w, items[i]);
	wrap_end(&w);
}

/* Who the rule matches: one line a key, the first after "  matches: ". */
static void
summary_matches(const struct rule *r, FILE *f)
{
	static const char head[] = "  matches: ", more[] = "           ";
	const char *h = head;

	if (r->keys == 0) {
		fprintf(f, "%severy peer\n", head);
		return;
	}
	if (r->keys & MATCH_UID) {
		summary_ids(f, h, "uid", r->uids, r->nuids, true);
		h = more;
	}
	if (r->keys & MATCH_GID) {
		summary_ids(f, h, "gid", r->gids, r->ngids, false);
		h = more;
	}
	if (r->keys & MATCH_EXE) {
		summary_strings(f, h, "exe", r->exes, r->nexes);
		h = more;
	}
	if (r->keys & MATCH_CGROUP)
		summary_strings(f, h, "cgroup", r->cgroups, r->ncgroups);
}

/* Distinct uids of a rule's list. */
static size_t
distinct_uids(const struct rule *r)
{
	size_t i, j, n = 0;

	for (i = 0; i < r->nuids; i++) {
		for (j = 0; j < i && r->uids[j] != r->uids[i]; j++)
			;
		n += j == i;
	}
	return n;
}

struct policy_bound
policy_rule_bound(const struct rule *r)
{
	struct policy_bound b = { .why = NULL };

	if (r->grant.features & UFFD_FEATURE_EVENT_FORK) {
		b.why = "EVENT_FORK hands the client a uffd per fork, "
		    "which the broker does not count";
		return b;
	}
	b.per_uid = (uint64_t)r->grant.max_sessions_per_uid *
	    r->grant.max_uffds;
	b.uids = distinct_uids(r);
	if (r->keys & MATCH_UID)
		b.host = b.per_uid * b.uids;
	else if (r->keys & MATCH_GID)
		b.why = "it matches on gid: any number of uids may be in "
		    "its groups";
	else
		b.why = "it matches every uid";
	return b;
}

/*
 * Per uid, rule R's sessions number at most R's max_sessions_per_uid, and
 * all of the uid's at most the largest: the least of the sum of the rules'
 * own bounds and the largest limit times the largest max_uffds bounds them.
 */
void
policy_total(const struct policy *p,
    bool (*take)(const struct policy *, size_t, void *), void *arg,
    struct policy_total *t)
{
	const struct rule *r;
	struct policy_bound b;
	uint64_t sum = 0, sessions = 0, uffds = 0;
	size_t i;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < p->nrules; i++) {
		if (!take(p, i, arg))
			continue;
		r = &p->rules[i];
		if (t->n++ == 0)
			t->first = r;
		b = policy_rule_bound(r);
		if (b.per_uid == 0 && t->no_uid_bound == NULL)
			t->no_uid_bound = r;
		if (b.host == 0 && t->no_host_bound == NULL)
			t->no_host_bound = r;
		sum += b.per_uid;
		t->host += b.host;
		sessions = MAX_U64(sessions, r->grant.max_sessions_per_uid);
		uffds = MAX_U64(uffds, r->grant.max_uffds);
	}
	t->per_uid = MIN_U64(sum, sessions * uffds);
	if (t->no_uid_bound != NULL)
		t->per_uid = 0;
	if (t->no_host_bound != NULL)
		t->host = 0;
}

static void
summary_bound(const struct rule *r, FILE *f)
{
	struct policy_bound b = policy_rule_bound(r);
	struct wrap w;
	char text[256];

	wrap_start(&w, f, "  live uffds: ");
	if (b.per_uid == 0) {
		snprintf(text, sizeof(text), "no bound: %s; counted, at most "
		    "%u per process (address space)", b.why,
		    r->grant.max_uffds);
		wrap_words(&w, text);
		wrap_end(&w);
		return;
	}
	snprintf(text, sizeof(text), "at most %u per process (address space), "
	    "%llu per uid (%u sessions x %u),", r->grant.max_uffds,
	    (unsigned long long)b.per_uid, r->grant.max_sessions_per_uid,
	    r->grant.max_uffds);
	wrap_words(&w, text);
	if (b.host > 0)
		snprintf(text, sizeof(text), "%llu host-wide (%zu uid%s)",
		    (unsigned long long)b.host, b.uids, b.uids == 1 ? "" : "s");
	else
		snprintf(text, sizeof(text), "no bound host-wide: %s", b.why);
	wrap_words(&w, text);
	wrap_end(&w);
}

static void
summary_warning(void *arg, const char *msg)
{
	struct wrap w;

	wrap_start(&w, arg, "  warning: ");
	wrap_words(&w, msg);
	wrap_end(&w);
}

static void
summary_rule(const struct policy *p, const struct policy_origin *o, size_t i,
    FILE *f)
{
	const struct rule *r = &p->rules[i], *all = shadowed_by(p, i);
	char where[32], features[512], *word, *save = NULL;
	struct wrap w;

	if (r->line > 0)
		snprintf(where, sizeof(where), "line %d", r->line);
	else
		snprintf(where, sizeof(where), "the command line");
	fprintf(f, "\nrule '%s' (%s): %s\n", r->name, where, all != NULL ?
	    "never reached" : r->grant.deny ? "deny" :
	    r->grant.kernel_faults ? "allow, kernel-fault uffds" :
	    "allow, user-mode uffds only");
	summary_matches(r, f);
	if (all == NULL && !r->grant.deny) {
		policy_feature_names(r->grant.features, features,
		    sizeof(features));
		wrap_start(&w, f, "  features: ");
		for (word = strtok_r(features, " ", &save); word != NULL;
		    word = strtok_r(NULL, " ", &save))
			wrap_word(&w, word);
		wrap_end(&w);
		fprintf(f, "  forked sessions: %s\n", r->grant.forked_sessions ?
		    "yes" : "no");
		if (r->grant.kernel_faults)
			fprintf(f, "  filter proof: %s\n",
			    r->grant.prove_filter ? "required" : "off");
		summary_bound(r, f);
	}
	(void)check_rule(p, i, summary_warning, f);
	if (o->notes != NULL)
		o->notes(o->notes_arg, i, f);
}

void
policy_summary_line(FILE *f, const char *head, const char *text)
{
	struct wrap w;

	wrap_start(&w, f, head);
	wrap_words(&w, text);
	wrap_end(&w);
}

/* Whether rule i is reached and grants kernel faults (or user-mode ones). */
static bool
granting(const struct policy *p, size_t i, void *arg)
{
	const bool *kernel = arg;

	return shadowed_by(p, i) == NULL && !p->rules[i].grant.deny &&
	    p->rules[i].grant.kernel_faults == *kernel;
}

/* The rules granting kernel faults (or user-mode ones only), and their sum. */
static void
summary_total(const struct policy *p, bool kernel, FILE *f)
{
	struct policy_total t;
	struct wrap w;
	char text[256];
	size_t i, k;

	policy_total(p, granting, &kernel, &t);
	wrap_start(&w, f, kernel ? "kernel-fault uffds: " :
	    "user-mode uffds only: ");
	wrap_word(&w, t.n == 0 ? "none: no rule grants them" : t.n == 1 ?
	    "rule" : "rules");
	for (i = 0, k = 0; i < p->nrules; i++) {
		if (!granting(p, i, &kernel))
			continue;
		snprintf(text, sizeof(text), "'%s'%s", p->rules[i].name,
		    ++k < t.n ? "," : "");
		wrap_word(&w, text);
	}
	wrap_end(&w);
	if (t.n == 0)
		return;
	wrap_start(&w, f, "  live: ");
	if (t.per_uid > 0)
		snprintf(text, sizeof(text), "at most %llu per uid,",
		    (unsigned long long)t.per_uid);
	else
		snprintf(text, sizeof(text), "no bound per uid (rule '%s'),",
		    t.no_uid_bound->name);
	wrap_words(&w, text);
	if (t.host > 0)
		snprintf(text, sizeof(text), "at most %llu host-wide",
		    (unsigned long long)t.host);
	else
		snprintf(text, sizeof(text), "no bound host-wide (rule '%s')",
		    t.no_host_bound->name);
	wrap_words(&w, text);
	wrap_end(&w);
}

void
policy_time_text(const struct timespec *t, char *buf, size_t len)
{
	struct tm tm;

	if (gmtime_r(&t->tv_sec, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "%lld", (long long)t->tv_sec);
}

void
policy_summary(const struct policy *p, const struct policy_origin *o,
    FILE *f)
{
	char digest[SHA256_HEX_LEN], when[64], buf[POLICY_ID_NAME_MAX + 1];
	char text[128];
	const char *gname;
	struct wrap w;
	size_t i;

	sha256_hex(p->digest, digest);
	fprintf(f, "# uffd-broker policy summary\n");
	fprintf(f, "source: %s\n", o->source);
	fprintf(f, "digest: sha256:%s\n", digest);
	if (o->running) {
		policy_time_text(&p->loaded, when, sizeof(when));
		fprintf(f, "in force: since %s, in the broker (pid %d)\n", when,
		    o->pid);
		if (o->last_reload != NULL) {
			wrap_start(&w, f, "last reload: ");
			wrap_words(&w, o->last_reload);
			wrap_end(&w);
		}
	}
	policy_summary_line(f, "invariants: ", o->invariants != NULL ?
	    o->invariants : "none");
	if (o->invariants_digest != NULL)
		fprintf(f, "invariants digest: sha256:%s\n",
		    o->invariants_digest);
	fprintf(f, "rules: %zu\n", p->nrules);
	gname = p->has_admin_group ? policy_group_name(p->admin_gid, buf,
	    sizeof(buf)) : NULL;
	if (p->has_admin_group)
		fprintf(f, "status for: root and group %u%s%s%s\n",
		    (unsigned)p->admin_gid, gname ? " (" : "", gname ? gname :
		    "", gname ? ")" : "");
	else
		fprintf(f, "status for: root only\n");
	wrap_start(&w, f, "sessions host-wide: ");
	if (o->running)
		snprintf(text, sizeof(text), "at most %u open at once "
		    "(--max-sessions)", o->max_sessions);
	else
		snprintf(text, sizeof(text), "the broker's --max-sessions open "
		    "at once (1024 unless given; not in the file)");
	wrap_words(&w, text);
	wrap_end(&w);
	if (p->nrules == 0)
		fprintf(f, "\nno rules: every peer is refused\n");
	for (i = 0; i < p->nrules; i++)
		summary_rule(p, o, i, f);
	fputc('\n', f);
	summary_total(p, true, f);
	summary_total(p, false, f);
}

/* "executable", "cgroup", or both: the values a peer to explain lacks. */
static const char *
open_names(unsigned int open)
{
	if (open == (MATCH_EXE | MATCH_CGROUP))
		return "executable and cgroup";
	return open == MATCH_EXE ? "executable" : "cgroup";
}

/* The condition on values not given under which a rule matches. */
static void
explain_condition(const struct rule *r, unsigned int open, FILE *f)
{
	size_t i;

	if (open & MATCH_EXE) {
		fprintf(f, " if its executable is");
		for (i = 0; i < r->nexes; i++)
			fprintf(f, "%s %s", i > 0 ? " or" : "", r->exes[i]);
	}
	if (open & MATCH_CGROUP) {
		fprintf(f, "%s if its cgroup matches", open & MATCH_EXE ?
		    " and" : "");
		for (i = 0; i < r->ncgroups; i++)
			fprintf(f, "%s %s", i > 0 ? " or" : "", r->cgroups[i]);
	}
}

static void
explain_outcome(const struct rule *r, FILE *f)
{
	char grant[640];

	if (r == NULL)
		fprintf(f, "refused: no rule matches (default deny)\n");
	else if (r->grant.deny)
		fprintf(f, "refused by rule '%s' (action = deny)\n", r->name);
	else {
		policy_grant_text(&r->grant, grant, sizeof(grant));
		fprintf(f, "granted by rule '%s': %s\n", r->name, grant);
	}
}

/*
 * An executable or a cgroup not given is any: the broker always knows a
 * peer's cgroup, and its executable when a rule needs it. A rule that
 * matches on one matches on a condition, said, and the walk goes on to what
 * decides for the peers that do not meet it.
 */
void
policy_explain(const struct policy *p, const struct peer *peer, FILE *f)
{
	const unsigned int unknown = (peer->exe ? 0 : MATCH_EXE) |
	    (peer->cgroup ? 0 : MATCH_CGROUP);
	const struct rule *r, *decides = NULL;
	struct rule given;
	unsigned int open, conditions = 0;
	bool may_grant = false;
	char why[160];
	size_t i;

	fprintf(f, "peer: uid=%u gid=%u exe=%s cgroup=%s\n", (unsigned)peer->uid,
	    (unsigned)peer->gid, peer->exe ? peer->exe : "(any: not given)",
	    peer->cgroup ? peer->cgroup : "(any: not given)");
	for (i = 0; i < p->nrules && decides == NULL; i++) {
		r = &p->rules[i];
		/* The rule on the values given. */
		open = r->keys & unknown;
		given = *r;
		given.keys &= ~open;
		if (!rule_matches(&given, peer, why, sizeof(why))) {
			fprintf(f, "rule '%s' (line %d): no match: %s\n",
			    r->name, r->line, why);
			continue;
		}
		fprintf(f, "rule '%s' (line %d): MATCH", r->name, r->line);
		if (open == 0) {
			fputc('\n', f);
			decides = r;
			break;
		}
		explain_condition(r, open, f);
		fprintf(f, " (not given): ");
		explain_outcome(r, f);
		conditions |= open;
		may_grant |= !r->grant.deny;
	}
	fprintf(f, "result: ");
	if (conditions != 0 && !may_grant && (decides == NULL ||
	    decides->grant.deny)) {
		fprintf(f, "refused, whatever the %s (not given)\n",
		    open_names(conditions));
		return;
	}
	if (conditions != 0)
		fprintf(f, "depends on the %s (not given): the first rule "
		    "above that matches it decides; otherwise ",
		    open_names(conditions));
	explain_outcome(decides, f);
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
