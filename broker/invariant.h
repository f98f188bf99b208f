/* SPDX-License-Identifier: ISC */
/*
 * invariant.h - site invariants: assertions a security team keeps beside
 * the policy, in a file of their own (uffd-broker.conf(5), SITE
 * INVARIANTS), that every policy must satisfy to load: in uffd-brokerctl
 * policy check, at the broker's start and at each reload. Android's
 * neverallow rules are the model.
 *
 *   never CONDITION ...                   no allow rule meets them all
 *   max BOUND N [for CONDITION ...]       the allow rules meeting them
 *                                         grant at most N
 *
 * Shared by uffd-brokerd and uffd-brokerctl.
 */
#ifndef UFFD_BROKER_INVARIANT_H
#define UFFD_BROKER_INVARIANT_H

#include "policy.h"

#define INVARIANT_DEFAULT_PATH	UFFD_BROKER_SYSCONFDIR \
				"/uffd-broker/invariants.conf"
#define INVARIANT_MAX		256	/* assertions in a file */
#define INVARIANT_MAX_UIDS	8	/* "uid U" conditions in one */
#define INVARIANT_TEXT_MAX	200

/* What a "max" bounds. */
enum invariant_bound {
	BOUND_PROCESS,		/* live-per-process: max_uffds */
	BOUND_UID,		/* live-per-uid: the rules together, per uid */
	BOUND_HOST,		/* live-host: the rules together, host-wide */
	BOUND_SESSIONS,		/* sessions-per-uid: max_sessions_per_uid */
};

/* Which rules an assertion is about: allow rules meeting every condition. */
struct invariant_cond {
	int		mode;		/* -1 any, 0 user, 1 kernel */
	uint64_t	features;	/* granting all of these */
	unsigned int	without;	/* MATCH_* keys it does not match on */
	bool		prove_off;	/* prove_filter = off (with kernel) */
	bool		forked;		/* forked_sessions = yes */
	uid_t		uids[INVARIANT_MAX_UIDS];	/* listing each */
	size_t		nuids;
};

struct invariant {
	int		line;
	char		text[INVARIANT_TEXT_MAX];	/* as written, tidied */
	bool		never;			/* else max */
	enum invariant_bound bound;
	uint64_t	limit;
	struct invariant_cond cond;
};

struct invariants {
	char		*path;
	struct invariant *v;
	size_t		n;
	uint8_t		digest[SHA256_LEN];	/* of the file as read */
};

/*
 * Load a file of invariants (a regular file). Returns 0 and *out, or the
 * number of errors, each "FILE:LINE: message" passed to error in the order
 * of the lines.
 */
int	invariants_load_report(const char *path, struct invariants **out,
	    policy_error_fn *error, void *arg);
void	invariants_free(struct invariants *inv);

/*
 * Check a policy against the invariants: each assertion it breaks is one
 * message, "POLICY:LINE: rule 'NAME' breaks invariant 'TEXT' (FILE:LINE):
 * why", passed to fn (if not NULL) with the index of the rule it names.
 * Returns how many.
 */
unsigned int invariants_check(const struct invariants *inv,
	    const struct policy *p,
	    void (*fn)(void *arg, size_t rule, const char *msg), void *arg);

#endif
