/* SPDX-License-Identifier: ISC */
/*
 * jail.c - the client's seccomp fragment (docs/design.md §3).
 *
 * The rules are data: policy/uffd-client.seccomp, turned into the table
 * jail_rules[] and compiled to BPF at build time (client/jail-build.c), so
 * what an auditor reads there is what the library loads. In short: every uffd creation is sent to the broker,
 * UFFDIO_API and a new listener are refused. ioctl commands are compared on
 * their low 32 bits, as the kernel reads them, so a command with high bits
 * set is caught too. Other architectures' system calls kill the process
 * (libseccomp's bad-arch default).
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/userfaultfd.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "client.h"

/* The fragment as BPF, compiled at build time (client/jail-build.c). */
#include "client-bpf.h"

#ifndef SECCOMP_FILTER_FLAG_TSYNC_ESRCH
#define SECCOMP_FILTER_FLAG_TSYNC_ESRCH	(1UL << 4)
#endif

void
client_jail_bpf(const struct sock_filter **insns, size_t *len)
{
	*insns = client_bpf;
	*len = sizeof(client_bpf) / sizeof(client_bpf[0]);
}

/*
 * The filter is loaded with seccomp(2): the listener fd must leave the
 * process right after, never to be seen again here.
 */
int
client_jail_install(void)
{
	struct sock_fprog prog = {
		.len = sizeof(client_bpf) / sizeof(client_bpf[0]),
		/* The kernel copies the program; it never writes it. */
		.filter = (struct sock_filter *)(uintptr_t)client_bpf,
	};
	int listener;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	listener = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
	    SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_TSYNC |
	    SECCOMP_FILTER_FLAG_TSYNC_ESRCH, &prog);
	return listener < 0 ? -errno : listener;
}
