/*
 * wire.c - datagram and fd framing for the uffd-broker protocol.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wire.h"

/* Room for a few more fds than allowed, so extras are seen and closed. */
#define WIRE_CMSG_FDS	8

ssize_t
wire_recv(int sock, void *buf, size_t cap, int *fd, int *flags)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * WIRE_CMSG_FDS)];
		struct cmsghdr align;
	} control;
	struct iovec iov = { .iov_base = buf, .iov_len = cap };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = control.buf, .msg_controllen = sizeof(control.buf),
	};
	struct cmsghdr *cmsg;
	ssize_t n;

	*fd = -1;
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
		size_t i, nfds;
		int *fds;

		if (cmsg->cmsg_level != SOL_SOCKET ||
		    cmsg->cmsg_type != SCM_RIGHTS) {
			*flags |= WIRE_FOREIGN_CMSG;
			continue;
		}
		nfds = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		fds = (int *)(void *)CMSG_DATA(cmsg);
		for (i = 0; i < nfds; i++) {
			int one;

			memcpy(&one, &fds[i], sizeof(one));
			if (*fd < 0) {
				*fd = one;
				continue;
			}
			close(one);
			*flags |= WIRE_TOO_MANY_FDS;
		}
	}
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
