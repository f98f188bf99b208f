/* SPDX-License-Identifier: ISC */
/*
 * jail-build.c - the client's seccomp fragment built with libseccomp from
 * its rules (policy/uffd-client.seccomp, as the table jail_rules[]).
 *
 * The library does not link this: the build runs it once (mk/gen-client-bpf.c)
 * and compiles the BPF it makes into the library and the broker alike
 * (client-bpf.h), so a client needs no libseccomp at run time and the
 * broker's verifier looks for exactly the bytes the library loads. The
 * broker, uffd-brokerctl and the tests use it to show the fragment and to
 * check that the compiled bytes are still what the rules make.
 */
#include <errno.h>
#include <linux/seccomp.h>
#include <linux/userfaultfd.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

#include "client.h"

enum jail_action { JAIL_NOTIFY, JAIL_ERRNO };

struct jail_rule {
	enum jail_action action;
	int		error;		/* JAIL_ERRNO */
	const char	*syscall;
	bool		has_arg;	/* argN & mask == value */
	unsigned int	arg;
	uint64_t	mask;
	uint64_t	value;
	int		line;		/* in policy/uffd-client.seccomp */
};

#include "jail-rules.h"

scmp_filter_ctx
client_jail_build(void)
{
	const struct jail_rule *r;
	scmp_filter_ctx ctx;
	uint32_t action;
	size_t i;
	int nr, rc = 0;

	ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (ctx == NULL)
		return NULL;
	for (i = 0; i < sizeof(jail_rules) / sizeof(jail_rules[0]); i++) {
		r = &jail_rules[i];
		nr = seccomp_syscall_resolve_name(r->syscall);
		if (nr == __NR_SCMP_ERROR) {
			rc = -EINVAL;
			break;
		}
		action = r->action == JAIL_NOTIFY ? SCMP_ACT_NOTIFY :
		    SCMP_ACT_ERRNO(r->error);
		if (r->has_arg)
			rc = seccomp_rule_add(ctx, action, nr, 1,
			    SCMP_CMP(r->arg, SCMP_CMP_MASKED_EQ, r->mask,
			    r->value));
		else
			rc = seccomp_rule_add(ctx, action, nr, 0);
		if (rc != 0)
			break;
	}
	if (rc != 0) {
		seccomp_release(ctx);
		return NULL;
	}
	return ctx;
}

int
client_jail_export_bpf(int fd)
{
	scmp_filter_ctx ctx;
	int rc;

	if ((ctx = client_jail_build()) == NULL)
		return -ENOMEM;
	rc = seccomp_export_bpf(ctx, fd);
	seccomp_release(ctx);
	return rc < 0 ? rc : 0;
}
