/* SPDX-License-Identifier: ISC */
/*
 * client.h - libuffd-client internals, shared by its files and by the tests
 * that play a misbehaving client. Nothing here is exported from the .so.
 */
#ifndef UFFD_CLIENT_INTERNAL_H
#define UFFD_CLIENT_INTERNAL_H

#include <pthread.h>
#include <linux/filter.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdint.h>

#include "uffd-client.h"
#include "wire.h"

struct uffdc_session {
	pthread_mutex_t	lock;		/* one request/reply at a time; guards refs */
	unsigned int	refs;		/* the opener's, plus one per uffd handle */
	int		sock;
	int		devfd;		/* /dev/userfaultfd, usable only through the broker */
	bool		via_syscall;	/* the broker supervises userfaultfd(2) instead */
	bool		connected;	/* to the broker's socket */
	char		*path;		/* the broker's socket, for forked sessions */
	void		*dummy;		/* the liveness page, never touched */
	size_t		page_size;
	bool		kernel_faults;
	uint64_t	allowed_features;
	unsigned int	max_uffds;
	char		reason[256];	/* broker's text for the last refusal */
	uint64_t	seq;		/* of the last request */
};

struct uffdc_uffd {
	struct uffdc_session *s;
	int		fd;
	uint64_t	features;
	uint64_t	ioctls;
};

/*
 * Build the client's seccomp fragment (docs/design.md §3) and install it on
 * every thread with a listener, after setting no-new-privs.
 * Returns the listener fd or a negative errno.
 */
int	client_jail_install(void);

/* The fragment as the library loads it: BPF compiled at build time. */
void	client_jail_bpf(const struct sock_filter **insns, size_t *len);

/*
 * jail-build.c, not in the library: the fragment as a libseccomp filter,
 * from policy/uffd-client.seccomp (for the build, uffd-brokerctl's dump and
 * the tests). NULL on failure; seccomp_release() it.
 */
scmp_filter_ctx client_jail_build(void);

/*
 * Write the fragment, as libseccomp builds it now, as raw BPF to fd.
 * Returns 0 or a negative errno.
 */
int	client_jail_export_bpf(int fd);

/* Connect to the broker. Returns the socket or a negative errno. */
int	client_connect(const char *path);
/*
 * Read the broker's first datagram: 0 when it admits us (fds may flow from
 * then on), -EACCES with its reason in s->reason when it refuses.
 */
int	client_welcome(struct uffdc_session *s);

/*
 * Send req (with fd, or -1) and wait for the reply. Stores the broker's
 * reason in s->reason. Returns 0 with *reply (free with
 * uffd_broker__v1__reply__free_unpacked) or a negative errno, the status
 * mapped by client_status_errno().
 */
int	client_call(struct uffdc_session *s, const WireRequest *req, int fd,
	    WireReply **reply);

/* The errno a broker status maps to (0 for OK). */
int	client_status_errno(WireStatus status);

/*
 * The verification ioctl: any fd, the broker answers with the device fd.
 * Returns the device fd or a negative errno.
 */
int	client_verify(void);

/*
 * Create a uffd the session's way: ioctl(USERFAULTFD_IOC_NEW) on the device
 * fd, or userfaultfd(2). Returns a uffd or -errno.
 */
int	client_new_uffd(const struct uffdc_session *s, unsigned int flags);

#endif
