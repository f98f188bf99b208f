/* SPDX-License-Identifier: ISC */
/*
 * session.c - a client's session with uffd-brokerd: the handshake that proves
 * the client jailed, and the supervised creation of each uffd.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "client.h"

/* A broker that does not answer within this time is taken as gone. */
#define CLIENT_REPLY_TIMEOUT_SEC	5

/* Why this thread's last uffdc_session_open() or _fork() failed. */
static __thread char open_reason[256];

/*
 * The process's threads, from /proc/self/status; -1 if it cannot tell. A
 * process already under a seccomp filter (a VMM's own jail, which may kill
 * on open(2)) is not asked: the broker's check then stands alone.
 */
static int
count_threads(void)
{
	char buf[2048], *p;
	ssize_t n;
	int fd, threads = -1;

	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != 0)
		return -1;
	if ((fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if ((p = strstr(buf, "\nThreads:")) != NULL)
		threads = atoi(p + strlen("\nThreads:"));
	return threads;
}

int
client_connect(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = CLIENT_REPLY_TIMEOUT_SEC };
	int sock;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	strcpy(sun.sun_path, path);
	sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return -errno;
	if (setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(sock, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int err = -errno;

		close(sock);
		return err;
	}
	return sock;
}

int
client_status_errno(WireStatus status)
{
	switch (status) {
	case UFFD_BROKER__V1__STATUS__OK:		return 0;
	case UFFD_BROKER__V1__STATUS__DENIED:		return EACCES;
	case UFFD_BROKER__V1__STATUS__QUOTA:		return EDQUOT;
	case UFFD_BROKER__V1__STATUS__BAD_FD:		return EBADF;
	case UFFD_BROKER__V1__STATUS__BAD_VERSION:	return EPROTONOSUPPORT;
	case UFFD_BROKER__V1__STATUS__FAILED:		return EIO;
	default:					return EPROTO;
	}
}

/* Read one datagram from the broker, unpacked. Returns 0 or -errno. */
static int
client_receive_raw(struct uffdc_session *s, WireReply **reply)
{
	uint8_t buf[WIRE_MAX_DATAGRAM];
	WireReply *r;
	ssize_t n;
	int rfd, flags;

	*reply = NULL;
	do {
		n = recv(s->sock, buf, 0, MSG_PEEK);	/* wait, honouring SO_RCVTIMEO */
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? -ETIMEDOUT : -errno;
	n = wire_recv(s->sock, buf, sizeof(buf), &rfd, &flags);
	if (rfd >= 0)
		close(rfd);	/* the broker never sends fds on the socket */
	if (n < 0)
		return (int)n;
	if (n == 0)
		return -ECONNRESET;
	if (flags != 0 || rfd >= 0)
		return -EPROTO;
	r = uffd_broker__v1__reply__unpack(NULL, n, buf);
	if (r == NULL)
		return -EPROTO;
	*reply = r;
	return 0;
}

/* A reply's reason to s->reason, its status as 0 or -errno (r freed then). */
static int
client_reply_status(struct uffdc_session *s, WireReply *r, WireReply **reply)
{
	int err;

	snprintf(s->reason, sizeof(s->reason), "%s", r->reason);
	if ((err = client_status_errno(r->status)) != 0) {
		uffd_broker__v1__reply__free_unpacked(r, NULL);
		return -err;
	}
	*reply = r;
	return 0;
}

/* Read one reply; its reason goes to s->reason. */
static int
client_receive(struct uffdc_session *s, WireReply **reply)
{
	WireReply *r;
	int rc;

	*reply = NULL;
	s->reason[0] = '\0';
	if ((rc = client_receive_raw(s, &r)) < 0)
		return rc;
	return client_reply_status(s, r, reply);
}

/* Sent again after a Restarted notice at most this often, a request. */
#define CLIENT_RESENDS		4

/*
 * Send a request and read its reply. A broker killed and started again
 * (docs/upgrade.md) may have read the request and died: its successor says
 * Restarted, and the request is sent again, with its number. Replies with
 * another number answer an earlier copy of an earlier request: skipped.
 */
int
client_call(struct uffdc_session *s, const WireRequest *req, int fd,
    WireReply **reply)
{
	WireRequest numbered = *req;
	unsigned int resends = 0;
	WireReply *r;
	int rc;

	*reply = NULL;
	s->reason[0] = '\0';
	numbered.has_seq = true;
	numbered.seq = ++s->seq;
	if ((rc = wire_send_msg(s->sock, &numbered.base, fd)) < 0)
		return rc;
	for (;;) {
		if ((rc = client_receive_raw(s, &r)) < 0)
			return rc;
		/*
		 * A copy sent again may be refused (EPERM: the broker took
		 * the first copy's fd, and wants none now): the first copy's
		 * reply is then on its way.
		 */
		if (r->body_case == UFFD_BROKER__V1__REPLY__BODY_RESTARTED) {
			uffd_broker__v1__reply__free_unpacked(r, NULL);
			if (resends++ < CLIENT_RESENDS)
				(void)wire_send_msg(s->sock, &numbered.base, fd);
			continue;
		}
		if (r->has_seq && r->seq != numbered.seq) {
			uffd_broker__v1__reply__free_unpacked(r, NULL);
			continue;
		}
		return client_reply_status(s, r, reply);
	}
}

int
client_welcome(struct uffdc_session *s)
{
	WireReply *reply;
	int rc;

	if ((rc = client_receive(s, &reply)) < 0)
		return rc;
	if (reply->body_case != UFFD_BROKER__V1__REPLY__BODY_WELCOME)
		rc = -EPROTO;
	else if (reply->welcome->version != WIRE_VERSION)
		rc = -EPROTONOSUPPORT;
	uffd_broker__v1__reply__free_unpacked(reply, NULL);
	return rc;
}

int
client_verify(void)
{
	int fd, tries;

	/*
	 * Any fd will do: the fragment matches the command alone. EAGAIN:
	 * a broker restarted while deciding asks again (see uffdc_create()).
	 */
	for (tries = 0; (fd = ioctl(-1, USERFAULTFD_IOC_NEW, 0)) < 0 &&
	    errno == EAGAIN && tries < 6; tries++)
		usleep(1000 << tries);
	return fd < 0 ? -errno : fd;
}

int
client_new_uffd(const struct uffdc_session *s, unsigned int flags)
{
	int fd;

	if (s->via_syscall)
		fd = syscall(SYS_userfaultfd, flags);
	else
		fd = ioctl(s->devfd, USERFAULTFD_IOC_NEW, flags);
	return fd < 0 ? -errno : fd;
}

/* What the broker's HelloReply tells the client about its grant. */
static int
session_hello_reply(struct uffdc_session *s, WireReply *reply)
{
	int rc = 0;

	if (reply->body_case == UFFD_BROKER__V1__REPLY__BODY_HELLO) {
		s->kernel_faults = reply->hello->kernel_faults;
		s->allowed_features = reply->hello->allowed_features;
		s->max_uffds = reply->hello->max_uffds;
		s->via_syscall = reply->hello->creation ==
		    UFFD_BROKER__V1__CREATION__SYSCALL;
	} else
		rc = -EPROTO;
	uffd_broker__v1__reply__free_unpacked(reply, NULL);
	return rc;
}

/*
 * Hello with the filter's listener (a process opening its session), or
 * ForkHello without one (listener -1: a child under its parent's filter).
 * The two carry the same fields.
 */
static int
session_greet(struct uffdc_session *s, int listener)
{
	UffdBroker__V1__Hello hello = UFFD_BROKER__V1__HELLO__INIT;
	UffdBroker__V1__ForkHello fork = UFFD_BROKER__V1__FORK_HELLO__INIT;
	WireRequest req = UFFD_BROKER__V1__REQUEST__INIT;
	WireReply *reply;
	int rc;

	hello.version = fork.version = WIRE_VERSION;
	hello.dummy_page = fork.dummy_page = (uintptr_t)s->dummy;
	hello.page_size = fork.page_size = s->page_size;
	if (listener >= 0) {
		req.body_case = UFFD_BROKER__V1__REQUEST__BODY_HELLO;
		req.hello = &hello;
	} else {
		req.body_case = UFFD_BROKER__V1__REQUEST__BODY_FORK_HELLO;
		req.fork_hello = &fork;
	}
	rc = client_call(s, &req, listener, &reply);
	/* Only the broker may answer this filter's notifications. */
	if (listener >= 0)
		close(listener);
	if (rc < 0)
		return rc;
	return session_hello_reply(s, reply);
}

static int
session_hello(struct uffdc_session *s)
{
	int listener = client_jail_install();

	return listener < 0 ? listener : session_greet(s, listener);
}

static int
session_probe(struct uffdc_session *s)
{
	UffdBroker__V1__Probe probe = UFFD_BROKER__V1__PROBE__INIT;
	WireRequest req = UFFD_BROKER__V1__REQUEST__INIT;
	WireReply *reply;
	int fd, rc;

	fd = client_new_uffd(s, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (fd < 0)
		return fd;
	req.body_case = UFFD_BROKER__V1__REQUEST__BODY_PROBE;
	req.probe = &probe;
	rc = client_call(s, &req, fd, &reply);
	/* The broker keeps the probe; this process has no use for it. */
	close(fd);
	if (rc == 0)
		uffd_broker__v1__reply__free_unpacked(reply, NULL);
	return rc;
}

/* A session with its dummy page mapped and its socket connected. */
static int
session_alloc(const char *path, struct uffdc_session **out)
{
	struct uffdc_session *s;

	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	s->refs = 1;
	s->sock = s->devfd = -1;
	*out = s;
	s->page_size = sysconf(_SC_PAGESIZE);
	if ((s->path = strdup(path)) == NULL)
		return -ENOMEM;
	/*
	 * Private: the broker proves its probe by writing a token here that
	 * only this address space can see.
	 */
	s->dummy = mmap(NULL, s->page_size, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (s->dummy == MAP_FAILED) {
		s->dummy = NULL;
		return -errno;
	}
	if ((s->sock = client_connect(path)) < 0)
		return s->sock;
	s->connected = true;
	return client_welcome(s);
}

/*
 * A session that could not be opened: say why in open_reason — the broker's
 * words if it gave any, else what to do — close it, and return rc.
 */
static int
open_failed(struct uffdc_session *s, int rc, const char *why)
{
	const char *path = s != NULL && s->path != NULL ? s->path : "";

	if (why != NULL)
		snprintf(open_reason, sizeof(open_reason), "%s", why);
	else if (s != NULL && s->reason[0] != '\0')
		snprintf(open_reason, sizeof(open_reason), "%s", s->reason);
	else if (s != NULL && !s->connected && (rc == -ENOENT ||
	    rc == -ECONNREFUSED))
		snprintf(open_reason, sizeof(open_reason), "no broker listens at "
		    "%s (%s): is uffd-brokerd running?", path, strerror(-rc));
	else if (s != NULL && !s->connected && rc == -EACCES)
		snprintf(open_reason, sizeof(open_reason), "%s: %s: the process "
		    "needs the socket's group (uffd-clients)", path,
		    strerror(-rc));
	else if (rc == -ETIMEDOUT)
		snprintf(open_reason, sizeof(open_reason), "the broker at %s did "
		    "not answer within %d s", path, CLIENT_REPLY_TIMEOUT_SEC);
	else
		snprintf(open_reason, sizeof(open_reason), "%s", uffdc_strerror(rc));
	uffdc_session_close(s);
	return rc;
}

const char *
uffdc_last_reason(void)
{
	return open_reason;
}

int
uffdc_session_open(const char *socket_path, struct uffdc_session **out)
{
	return uffdc_session_open_flags(socket_path, 0, out);
}

int
uffdc_session_open_flags(const char *socket_path, unsigned int flags,
    struct uffdc_session **out)
{
	struct uffdc_session *s;
	char why[128];
	int rc, threads;

	*out = NULL;
	open_reason[0] = '\0';
	if (flags & ~UFFDC_KEEP_DUMPABLE)
		return open_failed(NULL, -EINVAL, "unknown flags");
	/*
	 * Before anything that cannot be undone (the filter): the broker
	 * refuses a process with several threads, since the ones made before
	 * the filter would escape it.
	 */
	if ((threads = count_threads()) > 1) {
		snprintf(why, sizeof(why), "the process has %d threads: open the "
		    "session before starting any", threads);
		return open_failed(NULL, -EBUSY, why);
	}
	/*
	 * Before the device fd arrives: a dumpable process's fds are anyone's
	 * of its user (pidfd_getfd(2)). The broker checks.
	 */
	if (!(flags & UFFDC_KEEP_DUMPABLE) && prctl(PR_SET_DUMPABLE, 0) < 0)
		return open_failed(NULL, -errno, "prctl(PR_SET_DUMPABLE)");
	if ((rc = session_alloc(socket_path ? socket_path :
	    UFFDC_DEFAULT_SOCKET, &s)) < 0)
		goto fail;
	if ((rc = session_hello(s)) < 0)
		goto fail;
	if (!s->via_syscall) {
		if ((rc = client_verify()) < 0)
			goto fail;
		s->devfd = rc;
	}
	if ((rc = session_probe(s)) < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	/* The reason is the caller's to read (uffdc_last_reason()): no output. */
	return open_failed(s, rc, NULL);
}

int
uffdc_session_fork(struct uffdc_session *parent, struct uffdc_session **out)
{
	struct uffdc_session *s;
	int rc;

	*out = NULL;
	open_reason[0] = '\0';
	if (parent == NULL || parent->path == NULL)
		return open_failed(NULL, -EINVAL, "no parent session");
	if ((rc = session_alloc(parent->path, &s)) < 0)
		goto fail;
	/* The inherited device fd, earned by the parent's verification. */
	if (!parent->via_syscall && (s->devfd = fcntl(parent->devfd,
	    F_DUPFD_CLOEXEC, 0)) < 0) {
		rc = -errno;
		goto fail;
	}
	if ((rc = session_greet(s, -1)) < 0)
		goto fail;
	/* The broker's answer, not the parent's, says how to create. */
	if (!s->via_syscall && s->devfd < 0) {
		rc = -EPROTO;
		goto fail;
	}
	if ((rc = session_probe(s)) < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	return open_failed(s, rc, NULL);
}

/* Drop one reference, under s->lock; frees s and returns true on the last. */
static bool
session_unref_locked(struct uffdc_session *s)
{
	if (--s->refs > 0) {
		pthread_mutex_unlock(&s->lock);
		return false;
	}
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_destroy(&s->lock);
	free(s->path);
	free(s);
	return true;
}

void
uffdc_session_close(struct uffdc_session *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	if (s->sock >= 0)
		close(s->sock);
	if (s->devfd >= 0)
		close(s->devfd);
	if (s->dummy != NULL)
		munmap(s->dummy, s->page_size);
	s->sock = s->devfd = -1;
	s->dummy = NULL;
	session_unref_locked(s);
}

const char *
uffdc_session_reason(const struct uffdc_session *s)
{
	return s->reason;
}

/*
 * The creation itself gets only an errno from the broker: ask it why
 * (StatusReply's last_refusal) for uffdc_session_reason(). Under s->lock.
 */
static void
creation_refused(struct uffdc_session *s, int rc)
{
	UffdBroker__V1__StatusRequest status = UFFD_BROKER__V1__STATUS_REQUEST__INIT;
	WireRequest req = UFFD_BROKER__V1__REQUEST__INIT;
	WireReply *reply;

	if (rc == -ENOSYS) {
		snprintf(s->reason, sizeof(s->reason), "%s", uffdc_strerror(rc));
		return;
	}
	/* Only the broker's refusals have its words; not the kernel's EMFILE. */
	if (rc != -EACCES && rc != -EDQUOT && rc != -EPERM && rc != -EINVAL &&
	    rc != -EAGAIN) {
		s->reason[0] = '\0';
		return;
	}
	req.body_case = UFFD_BROKER__V1__REQUEST__BODY_STATUS;
	req.status = &status;
	if (client_call(s, &req, -1, &reply) < 0)
		return;
	if (reply->body_case == UFFD_BROKER__V1__REPLY__BODY_STATUS_REPLY &&
	    reply->status_reply->last_refusal != NULL)
		snprintf(s->reason, sizeof(s->reason), "%s",
		    reply->status_reply->last_refusal);
	else
		s->reason[0] = '\0';
	uffd_broker__v1__reply__free_unpacked(reply, NULL);
}

/* EAGAIN from a creation: asked again up to 6 times, 1 ms to 32 ms apart. */
#define CREATE_TRIES		6
#define CREATE_RETRY_US		1000

int
uffdc_create(struct uffdc_session *s, uint64_t features, unsigned int flags,
    struct uffdc_uffd **out)
{
	UffdBroker__V1__Attach attach = UFFD_BROKER__V1__ATTACH__INIT;
	WireRequest req = UFFD_BROKER__V1__REQUEST__INIT;
	struct uffdc_uffd *u;
	WireReply *reply;
	int fd, rc, tries;

	*out = NULL;
	if (flags & ~UFFDC_USER_MODE_ONLY)
		return -EINVAL;
	if ((u = calloc(1, sizeof(*u))) == NULL)
		return -ENOMEM;
	pthread_mutex_lock(&s->lock);
	if (s->sock < 0) {
		rc = -ENOTCONN;
		goto out;
	}
	/*
	 * EAGAIN: the broker could not decide just now (it could not count
	 * the live uffds, or it was killed while deciding and its successor
	 * asks again): asked again, a few times, a little later each time.
	 */
	for (tries = 0; (fd = client_new_uffd(s, O_CLOEXEC | O_NONBLOCK |
	    ((flags & UFFDC_USER_MODE_ONLY) ? UFFD_USER_MODE_ONLY : 0))) ==
	    -EAGAIN && tries < CREATE_TRIES; tries++)
		usleep(CREATE_RETRY_US << tries);
	if (fd < 0) {
		rc = fd;
		creation_refused(s, rc);
		goto out;
	}
	attach.features = features;
	req.body_case = UFFD_BROKER__V1__REQUEST__BODY_ATTACH;
	req.attach = &attach;
	if ((rc = client_call(s, &req, fd, &reply)) < 0) {
		close(fd);
		goto out;
	}
	if (reply->body_case != UFFD_BROKER__V1__REPLY__BODY_ATTACH) {
		uffd_broker__v1__reply__free_unpacked(reply, NULL);
		close(fd);
		rc = -EPROTO;
		goto out;
	}
	u->s = s;
	u->fd = fd;
	u->features = reply->attach->features;
	u->ioctls = reply->attach->ioctls;
	uffd_broker__v1__reply__free_unpacked(reply, NULL);
	s->refs++;
	*out = u;
	u = NULL;
out:
	pthread_mutex_unlock(&s->lock);
	free(u);
	return rc;
}

int
uffdc_create_default(struct uffdc_session *s, struct uffdc_uffd **out)
{
	return uffdc_create(s, UFFDC_FEATURES_DEFAULT, 0, out);
}

static int
session_simple_call(struct uffdc_session *s, WireRequest *req,
    unsigned int *live, unsigned int *max)
{
	WireReply *reply;
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = s->sock < 0 ? -ENOTCONN : client_call(s, req, -1, &reply);
	pthread_mutex_unlock(&s->lock);
	if (rc < 0)
		return rc;
	if (reply->body_case == UFFD_BROKER__V1__REPLY__BODY_STATUS_REPLY) {
		if (live)
			*live = reply->status_reply->live_uffds +
			    reply->status_reply->pending;
		if (max)
			*max = reply->status_reply->max_uffds;
	} else
		rc = -EPROTO;
	uffd_broker__v1__reply__free_unpacked(reply, NULL);
	return rc;
}

int
uffdc_session_usage(struct uffdc_session *s, unsigned int *live,
    unsigned int *max)
{
	UffdBroker__V1__StatusRequest status = UFFD_BROKER__V1__STATUS_REQUEST__INIT;
	WireRequest req = UFFD_BROKER__V1__REQUEST__INIT;

	req.body_case = UFFD_BROKER__V1__REQUEST__BODY_STATUS;
	req.status = &status;
	return session_simple_call(s, &req, live, max);
}

int
uffdc_release(struct uffdc_uffd *u)
{
	struct uffdc_session *s;
	int rc = 0;

	if (u == NULL)
		return 0;
	s = u->s;
	if (close(u->fd) < 0)
		rc = -errno;
	free(u);
	/*
	 * Nothing to tell the broker: it counts live uffds by whether they
	 * still exist anywhere, and the quota slot is free once the last copy
	 * of this one is closed. (An adopted uffd, uffdc_adopt, has no session.)
	 */
	if (s != NULL) {
		pthread_mutex_lock(&s->lock);
		session_unref_locked(s);
	}
	return rc;
}
