/* SPDX-License-Identifier: ISC */
/*
 * wire.h - one protobuf-c message per SOCK_SEQPACKET datagram, with at most
 * one file descriptor beside it. Shared by the broker and the client library;
 * not part of the client's public interface.
 */
#ifndef UFFD_BROKER_WIRE_H
#define UFFD_BROKER_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "uffd_broker.pb-c.h"

#define WIRE_VERSION		1
/* Largest datagram either side sends; anything longer is refused. */
#define WIRE_MAX_DATAGRAM	1024
/* fds accepted per datagram; more are a protocol error (and closed). */
#define WIRE_MAX_FDS		1
/* The kernel's limit of fds in one datagram (SCM_MAX_FD). */
#define WIRE_SCM_MAX_FD		253

typedef UffdBroker__V1__Request		WireRequest;
typedef UffdBroker__V1__Reply		WireReply;
typedef UffdBroker__V1__Status		WireStatus;

/* What wire_recv() found wrong with a datagram, beside its bytes. */
enum wire_recv_flags {
	WIRE_TRUNCATED	= 1 << 0,	/* datagram longer than the buffer */
	WIRE_FDS_LOST	= 1 << 1,	/* ancillary data truncated by the kernel */
	WIRE_TOO_MANY_FDS = 1 << 2,	/* more fds than WIRE_MAX_FDS (closed) */
	WIRE_FOREIGN_CMSG = 1 << 3,	/* ancillary data other than SCM_RIGHTS */
};

/*
 * Receive one datagram into buf. At most one fd is kept in *fd (-1 if none);
 * every other fd received is closed at once and reported in *flags.
 * Returns the datagram length (0 on orderly hang-up) or a negative errno.
 */
ssize_t	wire_recv(int sock, void *buf, size_t cap, int *fd, int *flags);

/*
 * As wire_recv(), handing every fd received to the caller (up to maxfds;
 * pass WIRE_SCM_MAX_FD to be given all): a caller that must not close a
 * stranger's fd in its own thread (closing may block) disposes of them.
 * More than WIRE_MAX_FDS sets WIRE_TOO_MANY_FDS.
 */
ssize_t	wire_recv_fds(int sock, void *buf, size_t cap, int *fds,
	    size_t maxfds, size_t *nfds, int *flags);

/*
 * Send one datagram with an optional fd (-1 for none). Never raises SIGPIPE
 * and never blocks when the socket is non-blocking.
 * Returns 0 or a negative errno.
 */
int	wire_send(int sock, const void *buf, size_t len, int fd);

/* Pack and send a message with an optional fd. Returns 0 or a negative errno. */
int	wire_send_msg(int sock, const ProtobufCMessage *msg, int fd);

/* Name of a status code, for logs and error texts. */
const char *wire_status_name(WireStatus status);

#endif
