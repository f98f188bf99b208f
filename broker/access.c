/* SPDX-License-Identifier: ISC */
/*
 * access.c - who may have a session, by the access policy
 * (docs/design.md §6): the peer's identity as the kernel reports it, the
 * first matching rule, the per-uid session limit; and the policy's reload
 * on SIGHUP.
 */
#include <cap-ng.h>
#include <errno.h>
#include <nss.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "log.h"

struct peer_info {
	struct peer	peer;
	gid_t		*groups;	/* malloc'd; NULL if unknown */
	char		exe[PATH_MAX];
	char		cgroup[PATH_MAX];
};

/* The peer's supplementary groups, however many (NGROUPS_MAX is 65536). */
static bool
read_groups(int sock, struct peer_info *pi)
{
	socklen_t len = 64 * sizeof(gid_t);

	for (;;) {
		free(pi->groups);
		if ((pi->groups = malloc(len ? len : sizeof(gid_t))) == NULL)
			return false;
		if (getsockopt(sock, SOL_SOCKET, SO_PEERGROUPS, pi->groups,
		    &len) == 0)
			break;
		if (errno != ERANGE) {
			free(pi->groups);
			pi->groups = NULL;
			return false;
		}
		/* len now says how much is needed. */
	}
	pi->peer.groups = pi->groups;
	pi->peer.ngroups = len / sizeof(gid_t);
	return true;
}

/*
 * The peer's cgroup v2 path (the "0::/path" line), or false. A path too long
 * for buf is unknown, never cut short: a prefix could match a glob.
 */
static bool
read_cgroup(pid_t pid, char *buf, size_t len)
{
	char path[64];
	bool found = false;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return false;
	while (!found && fgets(buf, len, f) != NULL) {
		n = strlen(buf);
		if (n == 0 || buf[n - 1] != '\n')
			break;		/* too long */
		buf[n - 1] = '\0';
		if (strncmp(buf, "0::", 3) == 0) {
			memmove(buf, buf + 3, n - 3);
			found = true;
		}
	}
	fclose(f);
	return found;
}

/*
 * The peer as the policy sees it. What /proc says is the peer's only if the
 * peer's pidfd is still alive after the reads: its pid was not reused.
 */
static bool
peer_read(const struct session *s, struct peer_info *pi)
{
	char path[64];
	ssize_t n;

	memset(&pi->peer, 0, sizeof(pi->peer));
	pi->groups = NULL;
	pi->peer.uid = s->uid;
	pi->peer.gid = s->gid;
	(void)read_groups(s->sock, pi);
	if (policy_needs_exe(s->b->policy)) {
		snprintf(path, sizeof(path), "/proc/%d/exe", (int)s->pid);
		n = readlink(path, pi->exe, sizeof(pi->exe) - 1);
		if (n > 0) {
			pi->exe[n] = '\0';
			pi->peer.exe = pi->exe;
		}
	}
	if (read_cgroup(s->pid, pi->cgroup, sizeof(pi->cgroup)))
		pi->peer.cgroup = pi->cgroup;
	return proc_pidfd_alive(s->pidfd);
}

/* Sessions of a uid, and its processes whose session ended (spent). */
static unsigned int
sessions_of_uid(struct broker *b, uid_t uid)
{
	return session_count_uid(b, uid, false) + session_spent_of_uid(b, uid);
}

/*
 * Decide whether the peer may have a session: sets s->grant and s->rule, or
 * s->refusal (and s->quota_hit when a limit, not the rules, refuses).
 */
void
access_admit(struct session *s)
{
	struct broker *b = s->b;
	struct peer_info pi;
	struct rule *r;
	const char *unknown = NULL;
	unsigned int n, keys;
	int rc = 0;

	snprintf(s->rule_name, sizeof(s->rule_name), "(none)");
	if (!peer_read(s, &pi)) {
		free(pi.groups);
		s->refusal = strdup("the peer exited during admission");
		return;
	}
	/*
	 * What the rules match on but could not be read refuses the peer: a
	 * deny rule must not be skipped for want of a value (fail closed).
	 */
	keys = policy_keys(b->policy);
	if ((keys & MATCH_EXE) && pi.peer.exe == NULL)
		unknown = "executable";
	else if ((keys & MATCH_CGROUP) && pi.peer.cgroup == NULL)
		unknown = "cgroup";
	else if ((keys & MATCH_GID) && pi.peer.groups == NULL)
		unknown = "supplementary groups";
	if (unknown != NULL)
		rc = asprintf(&s->refusal, "the policy matches on the peer's %s, "
		    "which the broker could not read", unknown);
	else if ((r = policy_match(b->policy, &pi.peer)) == NULL) {
		rc = asprintf(&s->refusal, "no rule of the policy matches uid %u "
		    "gid %u exe %s cgroup %s", (unsigned)s->uid,
		    (unsigned)s->gid, pi.peer.exe ? pi.peer.exe : "(not read)",
		    pi.peer.cgroup ? pi.peer.cgroup : "(none)");
	} else if (r->grant.deny) {
		snprintf(s->rule_name, sizeof(s->rule_name), "%s", r->name);
		s->rule = r;
		rc = asprintf(&s->refusal, "refused by rule '%s'", r->name);
	} else if ((n = sessions_of_uid(b, s->uid)) >=
	    r->grant.max_sessions_per_uid) {
		snprintf(s->rule_name, sizeof(s->rule_name), "%s", r->name);
		s->rule = r;
		s->quota_hit = true;
		rc = asprintf(&s->refusal, "uid %u already has %u sessions "
		    "(limit %u of rule '%s')", (unsigned)s->uid, n,
		    r->grant.max_sessions_per_uid, r->name);
	} else {
		snprintf(s->rule_name, sizeof(s->rule_name), "%s", r->name);
		s->rule = r;
		s->grant = r->grant;
		r->sessions++;
	}
	if (rc < 0)
		s->refusal = strdup("refused");
	free(pi.groups);
}

/*
 * The refusal is delivered (the peer asked for something): count it. An
 * administrator's status query on a refused connection is not counted.
 */
void
access_count_refusal(struct session *s)
{
	if (s->rule != NULL)
		s->rule->refusals++;
	else
		s->b->policy->no_match++;
}

/* The rule of this name in p, or NULL. */
static struct rule *
rule_named(struct policy *p, const char *name)
{
	size_t i;

	for (i = 0; i < p->nrules; i++)
		if (strcmp(p->rules[i].name, name) == 0)
			return &p->rules[i];
	return NULL;
}

/* Each error of a policy (or of the invariants) that does not load. */
static void
log_load_error(void *arg, const char *msg)
{
	(void)arg;
	log_warnx("policy: %s", msg);
}

static void
log_violation(void *arg, size_t rule, const char *msg)
{
	(void)arg;
	(void)rule;
	log_warnx("policy: %s", msg);
}

/* A reload's first error (policy check lists them all). */
static void
keep_reload_error(void *arg, const char *msg)
{
	char *first = arg;

	if (first[0] == '\0')
		snprintf(first, POLICY_ERROR_MAX, "%s", msg);
}

static void
keep_violation(void *arg, size_t rule, const char *msg)
{
	(void)rule;
	keep_reload_error(arg, msg);
}

/*
 * The site invariants' file: the one given, or the default one if anything
 * is there at start-up (a file that is there but does not load stops the
 * start). Once the broker has one, each reload reads it again.
 */
static const char *
invariants_path(struct broker *b)
{
	struct stat st;

	if (b->cfg.invariants_path == NULL &&
	    (lstat(INVARIANT_DEFAULT_PATH, &st) == 0 || errno != ENOENT))
		b->cfg.invariants_path = INVARIANT_DEFAULT_PATH;
	return b->cfg.invariants_path;
}

int
access_load(struct broker *b)
{
	const char *inv = invariants_path(b);
	int n;

	/*
	 * Names in the policy come from /etc/passwd and /etc/group, at start-up
	 * and at every reload alike: NSS modules that reach other services
	 * (systemd-userdb, sssd, LDAP) make system calls the jail forbids.
	 */
	__nss_configure_lookup("passwd", "files");
	__nss_configure_lookup("group", "files");

	if (inv != NULL && (n = invariants_load_report(inv, &b->invariants,
	    log_load_error, NULL)) > 0) {
		log_warnx("invariants not loaded: %d error%s", n,
		    n == 1 ? "" : "s");
		return -EINVAL;
	}
	if (b->cfg.policy_path == NULL) {
		b->policy = policy_single("command-line", b->cfg.allow_uids,
		    b->cfg.n_allow_uids, &b->cfg.cli_grant);
		if (b->policy == NULL)
			return -ENOMEM;
	} else if ((n = policy_load_report(b->cfg.policy_path, &b->policy,
	    log_load_error, NULL)) > 0) {
		log_warnx("policy not loaded: %d error%s", n,
		    n == 1 ? "" : "s");
		return -EINVAL;
	}
	/* A policy that breaks an invariant does not load. */
	if (b->invariants != NULL && (n = invariants_check(b->invariants,
	    b->policy, log_violation, NULL)) > 0) {
		log_warnx("policy not loaded: it breaks %d invariant%s of %s",
		    n, n == 1 ? "" : "s", inv);
		policy_free(b->policy);
		b->policy = NULL;
		return -EINVAL;
	}
	return 0;
}

/* A reload that did not load: the policy in force stays, and says so. */
static void
reload_failed(struct broker *b, int n, const char *first)
{
	char quoted[LOG_QUOTED_MAX];

	/* The error quotes the file's text. */
	log_event("policy_reload", "result=failed rules_in_force=%zu "
	    "errors=%d error=%s", b->policy->nrules, n,
	    log_quote(quoted, sizeof(quoted), first));
	/* status says what runs is not the file on disk. */
	b->reload = RELOAD_FAILED;
	b->reload_error = strdup(first);
}

/*
 * SIGHUP: load the invariants and the policy file again. A file that does
 * not load, or a policy that breaks an invariant, leaves the policy (and the
 * invariants) in force; a good one applies to the next request. Sessions
 * keep the grant they were admitted with; counters follow rules by name.
 */
void
access_reload(struct broker *b)
{
	struct policy *np, *old = b->policy;
	struct invariants *ninv = NULL;
	struct session *s;
	struct rule *r, *o;
	char first[POLICY_ERROR_MAX] = "";
	size_t i;
	int n;

	if (b->cfg.policy_path == NULL) {
		log_event("policy_reload", "result=ignored reason=\"the policy "
		    "comes from the command line\"");
		return;
	}
	clock_gettime(CLOCK_REALTIME, &b->reload_at);
	status_policy_changed(b);
	free(b->reload_error);
	b->reload_error = NULL;
	if (b->cfg.invariants_path != NULL && (n = invariants_load_report(
	    b->cfg.invariants_path, &ninv, keep_reload_error, first)) > 0) {
		reload_failed(b, n, first);
		return;
	}
	if ((n = policy_load_report(b->cfg.policy_path, &np, keep_reload_error,
	    first)) > 0) {
		invariants_free(ninv);
		reload_failed(b, n, first);
		return;
	}
	if (ninv != NULL && (n = invariants_check(ninv, np, keep_violation,
	    first)) > 0) {
		policy_free(np);
		invariants_free(ninv);
		reload_failed(b, n, first);
		return;
	}
	b->reload = RELOAD_OK;
	for (i = 0; i < np->nrules; i++) {
		r = &np->rules[i];
		if ((o = rule_named(old, r->name)) != NULL) {
			r->sessions = o->sessions;
			r->refusals = o->refusals;
			r->granted = o->granted;
			r->refused = o->refused;
		}
	}
	np->no_match = old->no_match;
	TAILQ_FOREACH(s, REGISTRY_SESSIONS(&b->reg), entry)
		if (s->rule != NULL) {
			s->rule = rule_named(np, s->rule_name);
			registry_session_changed(s);
		}
	b->policy = np;
	policy_free(old);
	invariants_free(b->invariants);
	b->invariants = ninv;
	log_event("policy_reload", "result=ok path=%s rules=%zu invariants=%zu",
	    b->cfg.policy_path, np->nrules, ninv != NULL ? ninv->n : 0);
	/* The jail dropped what the old policy did not need, for good. */
	if ((policy_needs_exe(np) || policy_grants_fork(np)) &&
	    b->cfg.jail && !capng_have_capability(CAPNG_EFFECTIVE,
	    CAP_SYS_PTRACE))
		log_warnx("the policy matches on exe or grants EVENT_FORK, which "
		    "need CAP_SYS_PTRACE, dropped at start-up: those rules fail "
		    "closed until the broker is restarted");
}

/* Root, or a member of the policy's admin group (uffd-brokerctl status). */
bool
access_is_admin(const struct session *s)
{
	struct peer_info pi;
	bool yes;

	memset(&pi, 0, sizeof(pi.peer));
	pi.groups = NULL;
	pi.peer.uid = s->uid;
	pi.peer.gid = s->gid;
	(void)read_groups(s->sock, &pi);
	yes = policy_is_admin(s->b->policy, &pi.peer);
	free(pi.groups);
	return yes;
}
