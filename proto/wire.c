/* SPDX-License-Identifier: ISC */
/*
 * wire.c - datagram and fd framing for the uffd-broker protocol.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wire.h"

ssize_t
wire_recv_fds(int sock, void *buf, size_t cap, int *fds, size_t maxfds,
    size_t *nfds, int *flags)
{
	/* Room for every fd one datagram can carry: none is dropped unseen. */
	union {
		char buf[CMSG_SPACE(sizeof(int) * WIRE_SCM_MAX_FD)];
		struct cmsghdr align;
	} control;
	struct iovec iov = { .iov_base = buf, .iov_len = cap };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = control.buf, .msg_controllen = sizeof(control.buf),
	};
	struct cmsghdr *cmsg;
	ssize_t n;

	*nfds = 0;
	*flags = 0;
	do {
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (msg.msg_flags & MSG_TRUNC)
		*flags |= WIRE_TRUNCATED;
	if (msg.msg_flags & MSG_CTRUNC)
		*flags |= WIRE_FDS_LOST;

	for (cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
		size_t i, count;
		int *p;

		if (cmsg->cmsg_level != SOL_SOCKET ||
		    cmsg->cmsg_type != SCM_RIGHTS) {
			*flags |= WIRE_FOREIGN_CMSG;
			continue;
		}
		count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		p = (int *)(void *)CMSG_DATA(cmsg);
		for (i = 0; i < count; i++) {
			int one;

			memcpy(&one, &p[i], sizeof(one));
			if (*nfds < maxfds)
				fds[(*nfds)++] = one;
			else
				close(one);	/* maxfds is too small: caller's choice */
		}
	}
	if (*nfds > WIRE_MAX_FDS)
		*flags |= WIRE_TOO_MANY_FDS;
	return n;
}

ssize_t
wire_recv(int sock, void *buf, size_t cap, int *fd, int *flags)
{
	int fds[WIRE_SCM_MAX_FD];
	size_t nfds, i;
	ssize_t n;

	n = wire_recv_fds(sock, buf, cap, fds, WIRE_SCM_MAX_FD, &nfds, flags);
	*fd = n >= 0 && nfds > 0 ? fds[0] : -1;
	for (i = 1; n >= 0 && i < nfds; i++)
		close(fds[i]);
	return n;
}

int
wire_send(int sock, const void *buf, size_t len, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (fd >= 0) {
		struct cmsghdr *cmsg;

		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = sizeof(control.buf);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	}
	do {
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EMSGSIZE;
}

int
wire_send_msg(int sock, const ProtobufCMessage *msg, int fd)
{
	uint8_t buf[WIRE_MAX_DATAGRAM];
	size_t len;

	len = protobuf_c_message_get_packed_size(msg);
	if (len > sizeof(buf))
		return -EMSGSIZE;
	protobuf_c_message_pack(msg, buf);
	return wire_send(sock, buf, len, fd);
}

const char *
wire_status_name(WireStatus status)
{
	const ProtobufCEnumValue *v;

	v = protobuf_c_enum_descriptor_get_value(
	    &uffd_broker__v1__status__descriptor, status);
	return v ? v->name : "UNKNOWN";
}
