/* SPDX-License-Identifier: ISC */
/*
 * jail.c - the client's seccomp fragment (docs/design.md §3).
 *
 * The rules are data: policy/uffd-client.seccomp, turned into the table
 * jail_rules[] at build time, so what an auditor reads there is what the
 * library loads. In short: every uffd creation is sent to the broker,
 * UFFDIO_API and a new listener are refused. ioctl commands are compared on
 * their low 32 bits, as the kernel reads them, so a command with high bits
 * set is caught too. Other architectures' system calls kill the process
 * (libseccomp's bad-arch default).
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/userfaultfd.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

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

#ifndef SECCOMP_FILTER_FLAG_TSYNC_ESRCH
#define SECCOMP_FILTER_FLAG_TSYNC_ESRCH	(1UL << 4)
#endif

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

/*
 * The filter is loaded with seccomp(2) directly rather than seccomp_load():
 * libseccomp caches one listener per process (docs/design.md fact 11), and
 * this fd must leave the process right after, never to be seen again here.
 */
int
client_jail_install(void)
{
	struct sock_fprog prog;
	struct sock_filter *insns = NULL;
	off_t len;
	int memfd, rc, listener;

	memfd = memfd_create("uffd-client-bpf", MFD_CLOEXEC);
	if (memfd < 0)
		return -errno;
	if ((rc = client_jail_export_bpf(memfd)) < 0)
		goto out;
	len = lseek(memfd, 0, SEEK_END);
	if (len <= 0 || len % sizeof(struct sock_filter) != 0 ||
	    (insns = malloc(len)) == NULL ||
	    pread(memfd, insns, len, 0) != len) {
		rc = -EIO;
		goto out;
	}
	prog.len = len / sizeof(struct sock_filter);
	prog.filter = insns;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		rc = -errno;
		goto out;
	}
	listener = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
	    SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_TSYNC |
	    SECCOMP_FILTER_FLAG_TSYNC_ESRCH, &prog);
	rc = listener < 0 ? -errno : listener;
out:
	free(insns);
	close(memfd);
	return rc;
}
