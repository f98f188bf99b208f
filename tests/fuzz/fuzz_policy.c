/* SPDX-License-Identifier: ISC */
/*
 * fuzz_policy.c - libFuzzer target: the policy parser (policy_load()) on any
 * file, and its promise (policy.h): the canonical print of a policy that
 * loads loads back to the same policy, so printing that gives the same
 * bytes. A difference aborts: that is the property.
 *
 * The input is the file, loaded by path as the broker loads it (a memfd, as
 * /proc/self/fd/N). A file that does not load says each of its errors in
 * the order of its lines, and the lines before the first load. Names of
 * users and groups are looked up in /etc/passwd and /etc/group only, as the
 * broker does (access_load()). What uffd-brokerctl makes of a policy
 * (check, explain, summary) runs on each that loads. After a line "%%", the
 * rest is site invariants (invariant.h): their errors say where, in order,
 * and each assertion a policy breaks names an allow rule, FILE:LINE.
 */
#include <ctype.h>
#include <nss.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "invariant.h"
#include "policy.h"

/* inih's line buffer less its newline and NUL: what a printed line may take. */
#define LINE_MAX_PRINTED	198

int	LLVMFuzzerInitialize(int *argc, char ***argv);
int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int	infd = -1, printfd = -1, invfd = -1;
static char	inpath[64], printpath[64], invpath[64];

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_policy: %s:%d: property failed: %s\n", \
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

static int
memfd(const char *name, char *path, size_t len)
{
	int fd = memfd_create(name, MFD_CLOEXEC);

	if (fd < 0) {
		perror("fuzz_policy: memfd_create");
		exit(1);
	}
	snprintf(path, len, "/proc/self/fd/%d", fd);
	return fd;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	__nss_configure_lookup("passwd", "files");
	__nss_configure_lookup("group", "files");
	infd = memfd("policy", inpath, sizeof(inpath));
	printfd = memfd("printed", printpath, sizeof(printpath));
	invfd = memfd("invariants", invpath, sizeof(invpath));
	return 0;
}

/* Replace the memfd's contents. */
static void
put(int fd, const void *data, size_t size)
{
	CHECK(ftruncate(fd, 0) == 0);
	CHECK(size == 0 || pwrite(fd, data, size, 0) == (ssize_t)size);
}

static char *
print(const struct policy *p, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	CHECK(f != NULL);
	policy_print(p, f);
	CHECK(fclose(f) == 0);
	return buf;
}

static void
no_warning(void *arg, const char *msg)
{
	(void)arg;
	CHECK(msg != NULL && msg[0] != '\0');
}

/*
 * The errors of a file (policy.h): each says where, "PATH:LINE: message", in
 * the order of the lines; past POLICY_MAX_ERRORS one "PATH: N more errors".
 */
struct errors {
	const char	*path;		/* the file's */
	char		first[600];
	long		line;		/* of the last error */
	unsigned int	n;		/* messages */
	bool		more;		/* the "more errors" message came */
};

static void
each_error(void *arg, const char *msg)
{
	struct errors *e = arg;
	size_t n = strlen(e->path);
	long line;

	CHECK(!e->more);	/* the count comes last */
	CHECK(strlen(msg) < POLICY_ERROR_MAX);
	CHECK(strncmp(msg, e->path, n) == 0 && msg[n] == ':');
	if (msg[n + 1] == ' ') {
		CHECK(e->n == POLICY_MAX_ERRORS);
		CHECK(strstr(msg + n, " more errors") != NULL);
		e->more = true;
		return;
	}
	CHECK(isdigit((unsigned char)msg[n + 1]));
	CHECK(strstr(msg + n + 1, ": ") != NULL);
	line = strtol(msg + n + 1, NULL, 10);
	CHECK(line >= 1 && line >= e->line);
	if (e->n++ == 0)
		snprintf(e->first, sizeof(e->first), "%s", msg);
	e->line = line;
}

/* The lines before the first error load. */
static void
first_error(const uint8_t *data, size_t size, const char *err)
{
	size_t n = strlen(inpath), off = 0;
	struct policy *p;
	char again[600];
	long line, i;

	line = strtol(err + n + 1, NULL, 10);
	for (i = 1; i < line; i++) {
		const uint8_t *nl = memchr(data + off, '\n', size - off);

		CHECK(nl != NULL);	/* the line exists */
		off = nl - data + 1;
	}
	put(infd, data, off);
	if (policy_load(inpath, &p, again, sizeof(again)) < 0) {
		fprintf(stderr, "fuzz_policy: the error is not the first: %s\n"
		    "the %ld lines before it say: %s\n", err, line - 1, again);
		abort();
	}
	policy_free(p);
}

static bool
same_strings(char *const *a, char *const *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return true;
}

/* Loading the print gives the same policy (policy.h). */
static void
same_policy(const struct policy *p, const struct policy *q)
{
	const struct rule *r, *s;
	size_t i;

	CHECK(p->nrules == q->nrules);
	CHECK(p->has_admin_group == q->has_admin_group);
	CHECK(!p->has_admin_group || p->admin_gid == q->admin_gid);
	for (i = 0; i < p->nrules; i++) {
		r = &p->rules[i];
		s = &q->rules[i];
		CHECK(strcmp(r->name, s->name) == 0);
		CHECK(r->keys == s->keys);
		CHECK(r->nuids == s->nuids && memcmp(r->uids, s->uids,
		    r->nuids * sizeof(r->uids[0])) == 0);
		CHECK(r->ngids == s->ngids && memcmp(r->gids, s->gids,
		    r->ngids * sizeof(r->gids[0])) == 0);
		CHECK(r->nexes == s->nexes &&
		    same_strings(r->exes, s->exes, r->nexes));
		CHECK(r->ncgroups == s->ncgroups &&
		    same_strings(r->cgroups, s->cgroups, r->ncgroups));
		CHECK(r->grant.deny == s->grant.deny);
		/* A deny rule grants nothing: its print says only that. */
		if (r->grant.deny)
			continue;
		CHECK(r->grant.kernel_faults == s->grant.kernel_faults);
		CHECK(r->grant.features == s->grant.features);
		CHECK(r->grant.max_uffds == s->grant.max_uffds);
		CHECK(r->grant.max_sessions_per_uid ==
		    s->grant.max_sessions_per_uid);
		CHECK(r->grant.forked_sessions == s->grant.forked_sessions);
		/* The proof is printed only where it means something. */
		if (r->grant.kernel_faults)
			CHECK(r->grant.prove_filter == s->grant.prove_filter);
	}
}

/* Some peers: the same rule matches each in both policies. */
static void
same_matches(const struct policy *p, const struct policy *q)
{
	static const gid_t groups[] = { 4, 27, 100 };
	static const struct peer peers[] = {
		{ .uid = 0, .gid = 0, .exe = "/usr/bin/crosvm",
		    .cgroup = "/system.slice/vmm@a.service/dev" },
		{ .uid = 1000, .gid = 1000, .groups = groups, .ngroups = 3,
		    .exe = "/usr/libexec/uffd-broker/uffd-restore-demo",
		    .cgroup = "/user.slice/user-1000.slice/session-2.scope" },
		{ .uid = 65534, .gid = 65534 },
		{ .uid = 7, .gid = 4, .exe = "/a", .cgroup = "/" },
	};
	const struct rule *a, *b;
	size_t i;

	for (i = 0; i < sizeof(peers) / sizeof(peers[0]); i++) {
		a = policy_match(p, &peers[i]);
		b = policy_match(q, &peers[i]);
		CHECK((a == NULL) == (b == NULL));
		CHECK(a == NULL || a - p->rules == b - q->rules);
		CHECK(policy_is_admin(p, &peers[i]) ==
		    policy_is_admin(q, &peers[i]));
	}
}

/* The properties of the policy part; the policy if it loads, or NULL. */
static struct policy *
policy_part(const uint8_t *data, size_t size)
{
	struct errors errs = { .path = inpath };
	struct policy *p, *q;
	char err[600], *first, *again, *line, *save = NULL;
	int nerr;
	size_t len1, len2;
	FILE *devnull;

	put(infd, data, size);
	if ((nerr = policy_load_report(inpath, &p, each_error, &errs)) > 0) {
		CHECK(p == NULL);
		CHECK(errs.n > 0 && errs.n <= POLICY_MAX_ERRORS);
		CHECK(errs.more == ((unsigned int)nerr > errs.n));
		first_error(data, size, errs.first);
		return NULL;
	}
	CHECK(nerr == 0);
	CHECK(p != NULL && p->nrules <= POLICY_MAX_RULES);
	/* What uffd-brokerctl does with a policy, for the coverage. */
	(void)policy_check(p, no_warning, NULL);
	CHECK((devnull = fopen("/dev/null", "we")) != NULL);
	policy_explain(p, &(struct peer){ .uid = 0, .exe = "/x",
	    .cgroup = "/y" }, devnull);
	policy_explain(p, &(struct peer){ .uid = 65534 }, devnull);
	policy_summary(p, &(struct policy_origin){ .source = "file x" },
	    devnull);
	policy_summary(p, &(struct policy_origin){ .running = true,
	    .source = "file x", .max_sessions = 1, .last_reload = "failed" },
	    devnull);
	fclose(devnull);

	first = print(p, &len1);
	put(printfd, first, len1);
	if (policy_load(printpath, &q, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_policy: the print does not load: %s\n"
		    "--- print:\n%s---\n", err, first);
		abort();
	}
	again = print(q, &len2);
	if (len1 != len2 || memcmp(first, again, len1) != 0) {
		fprintf(stderr, "fuzz_policy: print, load, print differs\n"
		    "--- first:\n%s--- again:\n%s---\n", first, again);
		abort();
	}
	same_policy(p, q);
	same_matches(p, q);
	/* Every printed line is one inih reads whole. */
	for (line = strtok_r(first, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save))
		CHECK(strlen(line) <= LINE_MAX_PRINTED);
	free(first);
	free(again);
	policy_free(q);
	return p;
}

/* A broken invariant: said of an allow rule of the policy, FILE:LINE. */
struct violations {
	const struct policy	*p;
	unsigned int		n;
};

static void
each_violation(void *arg, size_t rule, const char *msg)
{
	struct violations *v = arg;
	const struct rule *r;
	char want[POLICY_NAME_MAX + 64];
	size_t n = strlen(inpath);

	CHECK(rule < v->p->nrules);
	r = &v->p->rules[rule];
	CHECK(!r->grant.deny);
	CHECK(strncmp(msg, inpath, n) == 0 && msg[n] == ':');
	CHECK(strtol(msg + n + 1, NULL, 10) == r->line);
	snprintf(want, sizeof(want), ": rule '%s' breaks invariant '", r->name);
	CHECK(strstr(msg, want) != NULL);
	CHECK(strstr(msg, invpath) != NULL);
	v->n++;
}

/* The invariants part: its errors as the policy's; checked if both load. */
static void
invariants_part(const struct policy *p, const uint8_t *data, size_t size)
{
	struct errors errs = { .path = invpath };
	struct violations v = { .p = p };
	struct invariants *inv;
	int nerr;

	put(invfd, data, size);
	if ((nerr = invariants_load_report(invpath, &inv, each_error,
	    &errs)) > 0) {
		CHECK(inv == NULL);
		CHECK(errs.n > 0 && errs.n <= POLICY_MAX_ERRORS);
		CHECK(errs.more == ((unsigned int)nerr > errs.n));
		return;
	}
	CHECK(nerr == 0 && inv != NULL && inv->n <= INVARIANT_MAX);
	if (p != NULL)
		CHECK(invariants_check(inv, p, each_violation, &v) == v.n);
	invariants_free(inv);
}

/*
 * The input: a policy, and after a line "%%" the site invariants to check
 * it against (none without the line: the corpus's older seeds).
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *sep = NULL;
	struct policy *p;
	size_t psize = size, i;

	if (size >= 3 && memcmp(data, "%%\n", 3) == 0)
		psize = 0;
	for (i = 0; psize == size && i + 4 <= size; i++)
		if (memcmp(data + i, "\n%%\n", 4) == 0)
			psize = i + 1;
	if (psize < size)
		sep = data + psize + 3;
	p = policy_part(data, psize);
	if (sep != NULL)
		invariants_part(p, sep, size - (size_t)(sep - data));
	policy_free(p);
	return 0;
}
