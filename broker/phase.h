/* SPDX-License-Identifier: ISC */
/*
 * phase.h - the two phases of a session and what links them: the handshake
 * (Hello to ready: handshake.c) and the grant (creations, Attach, Status:
 * grant.c), driven by datagrams (session.c's request table) and by seccomp
 * notifications (supervise.c's table). One table per source says what each
 * state permits; session_advance() is the one place a state moves.
 * Internal to the broker.
 */
#ifndef UFFD_BROKER_PHASE_H
#define UFFD_BROKER_PHASE_H

#include <linux/seccomp.h>
#include <stdbool.h>

#include "broker.h"

/* Whether the kernel lets unprivileged processes have kernel-fault uffds. */
#define SYSCTL_UNPRIVILEGED	"/proc/sys/vm/unprivileged_userfaultfd"
#define CAP_SYS_PTRACE_BIT	19

/* The only flags a uffd may be created with. */
#define CREATE_FLAGS	(O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY)

enum creation_path { VIA_DEVICE, VIA_SYSCALL, NOT_A_CREATION };

struct creation {
	enum creation_path path;
	int		flags;		/* as the kernel reads them: an int */
	pid_t		tid;
	pid_t		tgid;
};

/* supervise.c: answering a notification */
void	notif_respond(struct listener *l, const struct seccomp_notif *n,
	    int error, bool cont);
/* The notification is still waiting for its answer (the caller is there). */
bool	notif_pending(struct listener *l, const struct seccomp_notif *n);
/* Refuse a creation with error, logged; s is NULL without a session. */
void	notif_refuse(struct listener *l, struct session *s,
	    const struct seccomp_notif *n, const struct creation *c, int error,
	    const char *why);

/* handshake.c: the Hello's fields (pure); requests, then notifications */
bool	handshake_hello_check(uint32_t version, uint64_t dummy_page,
	    uint32_t page_size, WireStatus *status, char *why, size_t len);
void	handshake_hello(struct session *s, const WireRequest *req, int fd);
void	handshake_fork_hello(struct session *s, const WireRequest *req, int fd);
void	handshake_probe(struct session *s, const WireRequest *req, int fd);
/* The verifier's outcome for the proof s->proof: why is NULL if proven. */
void	handshake_proven(struct session *s, const char *why);
void	handshake_verify(struct session *s, const struct seccomp_notif *n,
	    const struct creation *c);
void	handshake_probe_create(struct session *s, const struct seccomp_notif *n,
	    const struct creation *c);

/* grant.c */
void	grant_attach(struct session *s, const WireRequest *req, int fd);
void	grant_status(struct session *s, const WireRequest *req, int fd);
void	grant_decide(struct session *s, const struct seccomp_notif *n,
	    const struct creation *c);

#endif
