/* SPDX-License-Identifier: ISC */
/*
 * sdnotify.c - the service manager's notification protocol (sd_notify(3)),
 * written out rather than linked from libsystemd: one datagram of
 * newline-separated assignments to the unix socket named by $NOTIFY_SOCKET
 * (a path, or '@' for the abstract namespace).
 *
 * The socket is opened and connected at start-up, before the jail; later
 * notifications are a send(2) on it, which the jail allows. Without
 * $NOTIFY_SOCKET every call is a no-op.
 *
 *   READY=1                      the broker listens (sdnotify_ready)
 *   RELOADING=1, MONOTONIC_USEC  a SIGHUP reload begins; READY=1 ends it
 *   STOPPING=1                   SIGTERM or SIGINT was received
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "log.h"

static int notify_fd = -1;

/*
 * Connect to $NOTIFY_SOCKET, if set, and unset it (so that nothing the
 * broker starts inherits it). A bad value is logged and ignored: the
 * service manager then times the start-up out, which names the problem.
 */
void
sdnotify_init(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	const char *path = getenv("NOTIFY_SOCKET");
	socklen_t len;
	size_t n;
	int fd;

	if (path == NULL)
		return;
	n = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || n < 2 ||
	    n >= sizeof(sun.sun_path)) {
		log_warnx("NOTIFY_SOCKET is neither an absolute path nor an "
		    "abstract name: not notifying the service manager");
		goto out;
	}
	memcpy(sun.sun_path, path, n);
	if (sun.sun_path[0] == '@')
		sun.sun_path[0] = '\0';
	len = offsetof(struct sockaddr_un, sun_path) + n +
	    (path[0] == '/' ? 1 : 0);
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sun, len) < 0) {
		log_warn("NOTIFY_SOCKET %s", path);
		if (fd >= 0)
			close(fd);
		goto out;
	}
	notify_fd = fd;
out:
	unsetenv("NOTIFY_SOCKET");
}

int
sdnotify_socket(void)
{
	return notify_fd;
}

/* The socket an upgrade's old image connected (upgrade.c). */
void
sdnotify_adopt(int fd)
{
	notify_fd = fd;
}

/* Send one notification; a failure is logged, never fatal. */
void
sdnotify(const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	int n;

	if (notify_fd < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return;
	if (send(notify_fd, msg, (size_t)n, MSG_NOSIGNAL) != n)
		log_warn("notifying the service manager");
}

/*
 * One notification with an fd beside it (fd < 0: none), for the fd store.
 * Returns 0 or -errno.
 */
int
sdnotify_fd(const char *msg, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = (void *)msg, .iov_len = strlen(msg) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;

	if (notify_fd < 0)
		return -ENOTCONN;
	if (fd >= 0) {
		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	return sendmsg(notify_fd, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

/* RELOADING=1 carries the time the reload began, as systemd asks. */
void
sdnotify_reloading(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	sdnotify("RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000ULL +
	    (unsigned long long)ts.tv_nsec / 1000);
}

void
sdnotify_close(void)
{
	if (notify_fd >= 0)
		close(notify_fd);
	notify_fd = -1;
}
