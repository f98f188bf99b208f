/*
 * jail.c - the client's seccomp fragment (DESIGN §3).
 *
 * The fragment sends every uffd creation to the broker and keeps the client
 * from doing what only the broker may do:
 *   ioctl(*, USERFAULTFD_IOC_NEW, *)        -> user notification (broker decides)
 *   userfaultfd(2)                          -> user notification (broker decides)
 *   ioctl(*, UFFDIO_API, *)                 -> EPERM (the broker initialises uffds)
 *   seccomp(*, flags & NEW_LISTENER, *)     -> EPERM (no second supervisor, ever)
 * ioctl commands are compared on their low 32 bits, as the kernel reads them,
 * so a command with high bits set is caught too. Other architectures' system
 * calls kill the process (libseccomp's bad-arch default).
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

#define IOCTL_CMD_MASK	0xffffffffULL

#ifndef SECCOMP_FILTER_FLAG_TSYNC_ESRCH
#define SECCOMP_FILTER_FLAG_TSYNC_ESRCH	(1UL << 4)
#endif

static scmp_filter_ctx
jail_build(void)
{
	scmp_filter_ctx ctx;
	int rc = 0;

	ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (ctx == NULL)
		return NULL;
	rc |= seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(ioctl), 1,
	    SCMP_A1(SCMP_CMP_MASKED_EQ, IOCTL_CMD_MASK, USERFAULTFD_IOC_NEW));
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
	    SCMP_A1(SCMP_CMP_MASKED_EQ, IOCTL_CMD_MASK, UFFDIO_API));
	rc |= seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(userfaultfd), 0);
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(seccomp), 1,
	    SCMP_A1(SCMP_CMP_MASKED_EQ, SECCOMP_FILTER_FLAG_NEW_LISTENER,
	    SECCOMP_FILTER_FLAG_NEW_LISTENER));
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

	if ((ctx = jail_build()) == NULL)
		return -ENOMEM;
	rc = seccomp_export_bpf(ctx, fd);
	seccomp_release(ctx);
	return rc < 0 ? rc : 0;
}

/*
 * The filter is loaded with seccomp(2) directly rather than seccomp_load():
 * libseccomp caches one listener per process (DESIGN fact 11), and this fd
 * must leave the process right after, never to be seen again here.
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
