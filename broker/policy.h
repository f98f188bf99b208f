/* SPDX-License-Identifier: ISC */
/*
 * policy.h - the broker's access policy (docs/design.md §6): ordered rules
 * matching a peer to what it is granted. The first rule that matches
 * decides; no match is a refusal. Shared by uffd-brokerd and uffd-brokerctl.
 */
#ifndef UFFD_BROKER_POLICY_H
#define UFFD_BROKER_POLICY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

#include "build-config.h"
#include "sha256.h"

#define POLICY_DEFAULT_PATH	UFFD_BROKER_SYSCONFDIR "/uffd-broker/policy.conf"
#define POLICY_NAME_MAX		64
#define POLICY_MAX_ITEMS	32	/* entries of one match key */
/*
 * The longest exe path or cgroup pattern: one fits on a printed line after
 * "cgroup = " within inih's 198 characters, so that policy_print() loads back.
 */
#define POLICY_ITEM_MAX		189
#define POLICY_MAX_RULES	256
#define POLICY_MAX_LIMIT	1000000
/* An error message, "FILE:LINE: message", at most (with its NUL). */
#define POLICY_ERROR_MAX	600
/* Errors of one file reported one by one; the rest are counted. */
#define POLICY_MAX_ERRORS	50

/* What a matching rule grants. */
struct grant {
	bool		deny;			/* action = deny */
	bool		kernel_faults;		/* mode = kernel; else user-mode only */
	uint64_t	features;		/* UFFD_FEATURE_* that may be granted */
	unsigned int	max_uffds;		/* live uffds per process */
	unsigned int	max_sessions_per_uid;
	bool		forked_sessions;	/* children of a client may join */
	/*
	 * With kernel faults: the device fd only to a peer whose every
	 * thread carries the library's fragment (verifier.c).
	 */
	bool		prove_filter;
};

/* Which match keys a rule gives; a rule without any matches every peer. */
enum match_key {
	MATCH_UID	= 1 << 0,
	MATCH_GID	= 1 << 1,
	MATCH_EXE	= 1 << 2,
	MATCH_CGROUP	= 1 << 3,
};

struct rule {
	char		name[POLICY_NAME_MAX];
	int		line;
	unsigned int	keys;
	uid_t		uids[POLICY_MAX_ITEMS];
	size_t		nuids;
	gid_t		gids[POLICY_MAX_ITEMS];
	size_t		ngids;
	char		*exes[POLICY_MAX_ITEMS];
	size_t		nexes;
	char		*cgroups[POLICY_MAX_ITEMS];	/* fnmatch(3) globs */
	size_t		ncgroups;
	struct grant	grant;
	/* Counters, carried over a reload by rule name. */
	uint64_t	sessions, refusals, granted, refused;
};

struct policy {
	char		*path;		/* NULL: built from the command line */
	struct rule	*rules;
	size_t		nrules;
	bool		has_admin_group;
	gid_t		admin_gid;
	uint64_t	no_match;	/* peers refused for want of a rule */
	/*
	 * SHA-256 of the file as read, byte for byte (what sha256sum(1) says
	 * of it); of the canonical form, without names, for the command line.
	 */
	uint8_t		digest[SHA256_LEN];
	struct timespec	loaded;		/* CLOCK_REALTIME, once it loaded */
};

/* A peer as the broker sees it. exe and cgroup may be NULL (unknown). */
struct peer {
	uid_t		uid;
	gid_t		gid;
	const gid_t	*groups;	/* supplementary groups */
	size_t		ngroups;
	const char	*exe;
	const char	*cgroup;
};

/* Called with each error of a file, "FILE:LINE: message", in line order. */
typedef void policy_error_fn(void *arg, const char *msg);

/*
 * Load a policy file, a regular file. Returns 0 and *out, or the number of
 * errors found, each passed to error (the first POLICY_MAX_ERRORS; then one
 * "FILE: N more errors" message). An error on a line does not stop the
 * reading: the lines after it are checked too.
 */
int	policy_load_report(const char *path, struct policy **out,
	    policy_error_fn *error, void *arg);

/*
 * Load a policy file. Returns 0 and *out, or -1 with the first error,
 * "FILE:LINE: message", in err.
 */
int	policy_load(const char *path, struct policy **out, char *err,
	    size_t errlen);

/*
 * Open a file the broker reads (a policy, invariants) for reading: a
 * regular file only, never waiting (a FIFO would block the broker's loop).
 * Returns the stream, or NULL with "FILE: message" in err.
 */
FILE	*policy_fopen(const char *path, char *err, size_t errlen);

/* A one-rule policy, for the broker's command-line options. */
struct policy *policy_single(const char *name, const uid_t *uids,
	    size_t nuids, const struct grant *g);

void	policy_free(struct policy *p);

/* The first rule matching the peer, or NULL. */
struct rule *policy_match(const struct policy *p, const struct peer *peer);

/* Whether the peer is in the policy's admin group. */
bool	policy_is_admin(const struct policy *p, const struct peer *peer);

/*
 * The policy in canonical form; loading the output gives the same policy.
 * Long lists go on over indented continuation lines. Users and groups are
 * numbers, each line of them followed by a comment of their names
 * ("uid = 0 65534 ; root nobody"; "-" for a number without one).
 */
void	policy_print(const struct policy *p, FILE *f);

/*
 * The name of a uid or gid (/etc/passwd, /etc/group), in buf, if it has one
 * a printed line may show: up to POLICY_ID_NAME_MAX letters, digits, '.',
 * '_', '-' and '$'. NULL otherwise.
 */
#define POLICY_ID_NAME_MAX	32
const char *policy_user_name(uid_t uid, char *buf, size_t len);
const char *policy_group_name(gid_t gid, char *buf, size_t len);

/*
 * Things a reviewer should know that are not errors (a rule granting kernel
 * faults to every uid, a rule never reached, EVENT_FORK granted). Calls
 * warn for each; returns how many.
 */
unsigned int policy_check(const struct policy *p,
	    void (*warn)(void *arg, const char *msg), void *arg);

/*
 * Where a policy summary's policy comes from, and what bounds it besides
 * the rules. running: the broker's own policy in force, which knows its
 * limits; otherwise a file, read by uffd-brokerctl.
 */
struct policy_origin {
	bool		running;
	const char	*source;	/* "file PATH", "command line" */
	int		pid;		/* running: the broker's */
	unsigned int	max_sessions;	/* running: --max-sessions in force */
	const char	*last_reload;	/* running: NULL, or a failed reload */
	const char	*invariants;	/* the site invariants, or NULL */
	const char	*invariants_digest;	/* their hex SHA-256 */
	/* Called after each rule's warnings, to say more of it. */
	void		(*notes)(void *arg, size_t rule, FILE *f);
	void		*notes_arg;
};

/*
 * Who may have which uffds, rule by rule: who the rule matches (names and
 * numbers), its mode, features by name, and the bound it puts on live
 * uffds per process, per uid and host-wide, with policy_check()'s warnings
 * under it; then the totals of kernel-fault and user-mode grants. Lines of
 * at most POLICY_SUMMARY_WIDTH characters but for a long path or pattern
 * and the invariants' digest.
 */
#define POLICY_SUMMARY_WIDTH	80
void	policy_summary(const struct policy *p, const struct policy_origin *o,
	    FILE *f);
/* A line of a summary: head, then text's words wrapped under it. */
void	policy_summary_line(FILE *f, const char *head, const char *text);

/*
 * The most live uffds a rule's sessions may hold, as the broker counts
 * them: per uid, max_sessions_per_uid x max_uffds (a session is admitted
 * only while its uid has fewer sessions, ended ones whose process or
 * address space lives on included); host-wide, that times its distinct
 * uids. 0: no bound, and why says why (EVENT_FORK: none at all; a rule
 * not on uid: none host-wide).
 */
struct policy_bound {
	uint64_t	per_uid;
	uint64_t	host;
	size_t		uids;		/* distinct uids it lists */
	const char	*why;
};
struct policy_bound policy_rule_bound(const struct rule *r);

/* The same for the rules take() chooses, together. */
struct policy_total {
	uint64_t	per_uid;	/* 0: no bound */
	uint64_t	host;		/* 0: no bound */
	size_t		n;		/* rules taken */
	const struct rule *first;	/* the first taken */
	const struct rule *no_uid_bound, *no_host_bound;	/* the first */
};
void	policy_total(const struct policy *p,
	    bool (*take)(const struct policy *, size_t, void *), void *arg,
	    struct policy_total *t);

/* "2025-01-31T12:00:00Z" (UTC), for a policy's load time. */
void	policy_time_text(const struct timespec *t, char *buf, size_t len);

/*
 * Why each rule before the match does not match, and what the match grants.
 * An exe or cgroup of NULL is not given, so any: a rule matching on it
 * matches on a condition, which is said, and the walk goes on.
 */
void	policy_explain(const struct policy *p, const struct peer *peer, FILE *f);

/* The MATCH_* keys any rule uses. */
unsigned int policy_keys(const struct policy *p);

/* Whether any rule matches on the executable (the broker then needs ptrace
 * access to read /proc/PID/exe of other users' processes). */
bool	policy_needs_exe(const struct policy *p);
/* Whether any rule may grant EVENT_FORK (UFFDIO_API then needs CAP_SYS_PTRACE). */
bool	policy_grants_fork(const struct policy *p);

/* "MISSING_SHMEM EVENT_REMOVE" for a feature mask ("none" if 0). */
void	policy_feature_names(uint64_t features, char *buf, size_t len);
/* A feature's bit from its name (MISSING_SHMEM or UFFD_FEATURE_...): 0 or -1. */
int	policy_feature_bit(const char *name, uint64_t *bit);

/* The grant of a rule as key=value text, for logs. */
void	policy_grant_text(const struct grant *g, char *buf, size_t len);

#endif
