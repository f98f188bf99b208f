/* SPDX-License-Identifier: ISC */
/*
 * closer.c - a disposable process that closes what peers sent.
 *
 * Closing an fd can block on something its sender controls: the last close
 * of a TCP socket with SO_LINGER and unsent data waits out the linger time,
 * also when that socket only travels inside a unix socket the broker closes
 * (releasing a unix socket releases what is queued in it, at any depth); a
 * FUSE file's flush waits for its daemon. The loop never makes the last
 * close of such an fd. It sends the fds to a closer process over a
 * socketpair (the datagram in flight holds each file, and the closer closes
 * none before the broker's own copies are closed, so the broker's close(2) is
 * never the last) and the closer closes them and acknowledges each batch.
 *
 * A closer that makes no progress for CLOSER_DEADLINE_MS is killed and a new
 * one forked: a pending SIGKILL ends a linger wait at once, and the fds still
 * queued to the old closer are released as it exits, in its own context. The
 * batch it was stuck on names the session whose fds stalled it, which the
 * caller ends. The broker keeps the fds the closer cannot take yet on a
 * waiting list: while it lacks room for one more datagram's fds the loop
 * reads no datagram that may carry any, and the closer is replaced at once.
 *
 * The closer is forked from the jailed broker and inherits its seccomp
 * filter; it closes every other fd it inherited, dies with the broker
 * (PR_SET_PDEATHSIG), and does nothing but recvmsg(2), close(2) and send(2).
 * SIGCHLD is ignored, so closers are reaped by the kernel.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "broker.h"
#include "log.h"

#define CLOSER_BATCH		32	/* fds per datagram to the closer */
#define CLOSER_GO		(1ULL << 63)	/* the broker's copies are closed */

/*
 * The closer's whole life. A batch comes in two datagrams: the fds, then,
 * once the broker has closed its own copies, the same number with GO set.
 * Only then is the closer's close the last one: closing at once could leave
 * the last to the broker.
 */
static void __attribute__((noreturn))
closer_main(int sock, pid_t parent)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * CLOSER_BATCH)];
		struct cmsghdr align;
	} control;
	struct linger abort_close = { .l_onoff = 1, .l_linger = 0 };
	struct cmsghdr *cmsg;
	int held[CLOSER_BATCH], type;
	size_t nheld = 0, i, count;
	uint64_t seq;
	socklen_t len;
	ssize_t n;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(1);
	if ((sock > 0 && syscall(SYS_close_range, 0, sock - 1, 0) < 0) ||
	    syscall(SYS_close_range, sock + 1, ~0U, 0) < 0)
		_exit(1);
	for (;;) {
		struct iovec iov = { .iov_base = &seq, .iov_len = sizeof(seq) };
		struct msghdr msg = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = control.buf,
			.msg_controllen = sizeof(control.buf),
		};

		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof(seq))
			_exit(0);	/* the broker closed its end */
		for (cmsg = CMSG_FIRSTHDR(&msg); cmsg != NULL;
		    cmsg = CMSG_NXTHDR(&msg, cmsg)) {
			if (cmsg->cmsg_level != SOL_SOCKET ||
			    cmsg->cmsg_type != SCM_RIGHTS)
				continue;
			count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (i = 0; i < count && nheld < CLOSER_BATCH; i++)
				memcpy(&held[nheld++], CMSG_DATA(cmsg) +
				    i * sizeof(int), sizeof(int));
		}
		if (!(seq & CLOSER_GO))
			continue;
		for (i = 0; i < nheld; i++) {
			/* A socket's close is then an abort, not a wait. */
			len = sizeof(type);
			if (getsockopt(held[i], SOL_SOCKET, SO_TYPE, &type,
			    &len) == 0)
				(void)setsockopt(held[i], SOL_SOCKET, SO_LINGER,
				    &abort_close, sizeof(abort_close));
			close(held[i]);
		}
		nheld = 0;
		seq &= ~CLOSER_GO;
		if (send(sock, &seq, sizeof(seq), MSG_NOSIGNAL) < 0)
			_exit(0);
	}
}

/* Fork a closer. Returns 0 or -errno; the broker goes on without one. */
static int
closer_spawn(struct broker *b)
{
	struct closer *c = &b->closer;
	pid_t parent = getpid(), pid;
	int sv[2], pidfd, err;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	if ((pid = fork()) < 0) {
		err = -errno;
		close(sv[0]);
		close(sv[1]);
		return err;
	}
	if (pid == 0)
		closer_main(sv[1], parent);
	close(sv[1]);
	/* An unreaped child keeps its pid: this is the closer's pidfd. */
	if ((pidfd = proc_pidfd_open(pid)) < 0) {
		err = -errno;
		close(sv[0]);	/* the closer reads end-of-file and exits */
		return err;
	}
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0 ||
	    broker_watch(b, sv[0], &c->w_sock, EPOLLIN) < 0 ||
	    broker_watch(b, pidfd, &c->w_exit, EPOLLIN) < 0) {
		err = -errno;
		broker_unwatch(b, sv[0]);
		proc_pidfd_kill(pidfd);
		close(pidfd);
		close(sv[0]);
		return err;
	}
	c->pid = pid;
	c->pidfd = pidfd;
	c->sock = sv[0];
	c->sent = c->acked = 0;
	c->ninflight = c->inflight_fds = 0;
	c->go_pending = c->warned = false;
	return 0;
}

/* Kill the closer; what it still holds is released as it exits. */
static void
closer_kill(struct broker *b)
{
	struct closer *c = &b->closer;

	if (c->pidfd < 0)
		return;
	(void)proc_pidfd_kill(c->pidfd);
	broker_unwatch(b, c->pidfd);
	broker_unwatch(b, c->sock);
	close(c->pidfd);
	close(c->sock);	/* only acknowledgements are queued on our end */
	c->pidfd = c->sock = -1;
	c->pid = 0;
	c->ninflight = c->inflight_fds = 0;
}

void
closer_start(struct broker *b)
{
	struct closer *c = &b->closer;
	int rc;

	c->w_sock = (struct watch){ .kind = WATCH_CLOSER };
	c->w_exit = (struct watch){ .kind = WATCH_CLOSER_EXIT };
	/*
	 * Closers are reaped by the kernel, as is the verifier (verifier.c),
	 * the broker's other child, should it exit.
	 */
	if (signal(SIGCHLD, SIG_IGN) == SIG_ERR)
		fatal("closer: ignoring SIGCHLD");
	if ((rc = closer_spawn(b)) < 0) {
		errno = -rc;
		fatal("closer: fork");
	}
}

void
closer_stop(struct broker *b)
{
	closer_flush(b);
	closer_kill(b);
	free(b->closer.waiting);
	b->closer.waiting = NULL;
	b->closer.nwaiting = b->closer.waiting_cap = 0;
}

void
closer_discard(struct broker *b, int fd, uid_t uid, uint64_t session)
{
	struct closer *c = &b->closer;
	struct discard *more;
	size_t cap;

	if (fd < 0)
		return;
	if (c->nwaiting == c->waiting_cap) {
		cap = c->waiting_cap ? 2 * c->waiting_cap : 64;
		if ((more = realloc(c->waiting, cap * sizeof(*more))) == NULL) {
			/* Nothing else to do with it: an fd left open. */
			log_warn("closer: fd %d left open", fd);
			return;
		}
		c->waiting = more;
		c->waiting_cap = cap;
	}
	c->waiting[c->nwaiting++] = (struct discard){
		.fd = fd, .uid = uid, .session = session };
}

bool
closer_has_room(const struct broker *b)
{
	return b->closer.nwaiting + WIRE_SCM_MAX_FD <= CLOSER_WAITING_MAX;
}

/* Let the closer close the last batch sent. 0 or -errno. */
static int
send_go(struct closer *c)
{
	uint64_t go = c->sent | CLOSER_GO;

	if (send(c->sock, &go, sizeof(go), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		return -errno;
	c->go_pending = false;
	return 0;
}

/* Send one batch: waiting fds of one session from the front. 0 or -errno. */
static int
send_batch(struct closer *c)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * CLOSER_BATCH)];
		struct cmsghdr align;
	} control;
	uint64_t seq = c->sent + 1;
	struct iovec iov = { .iov_base = &seq, .iov_len = sizeof(seq) };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
	};
	struct cmsghdr *cmsg;
	size_t n = 0, i;

	while (n < c->nwaiting && n < CLOSER_BATCH &&
	    c->waiting[n].session == c->waiting[0].session)
		n++;
	memset(&control, 0, sizeof(control));
	msg.msg_controllen = CMSG_SPACE(n * sizeof(int));
	cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(n * sizeof(int));
	for (i = 0; i < n; i++)
		memcpy(CMSG_DATA(cmsg) + i * sizeof(int), &c->waiting[i].fd,
		    sizeof(int));
	if (sendmsg(c->sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		return -errno;
	if (c->sent == c->acked)
		clock_gettime(CLOCK_MONOTONIC, &c->progress);
	c->sent = seq;
	c->inflight[c->ninflight++] = (struct batch){ .seq = seq,
	    .uid = c->waiting[0].uid, .session = c->waiting[0].session,
	    .nfds = n };
	c->inflight_fds += n;
	/*
	 * Each file is held by the datagram, or by the closer, which waits
	 * for GO: ours is not the last close.
	 */
	for (i = 0; i < n; i++)
		close(c->waiting[i].fd);
	c->nwaiting -= n;
	memmove(c->waiting, c->waiting + n, c->nwaiting * sizeof(*c->waiting));
	c->go_pending = true;
	return send_go(c);
}

void
closer_flush(struct broker *b)
{
	struct closer *c = &b->closer;
	int rc = 0;

	if (c->sock < 0 && c->nwaiting > 0 && (rc = closer_spawn(b)) < 0) {
		errno = -rc;
		log_warn("closer: fork; %zu fds wait", c->nwaiting);
		return;
	}
	if (c->go_pending)
		rc = send_go(c);
	/*
	 * Fds in flight count against the sender's user: past RLIMIT_NOFILE
	 * the kernel refuses more (ETOOMANYREFS). Half of it is ours to use.
	 */
	while (rc == 0 && c->nwaiting > 0 && c->ninflight < CLOSER_INFLIGHT &&
	    c->inflight_fds + CLOSER_BATCH <= b->nofile / 2)
		rc = send_batch(c);
	if (rc < 0 && rc != -EAGAIN && !c->warned) {
		c->warned = true;
		errno = -rc;
		log_warn("closer: sending fds (%s)", rc == -ETOOMANYREFS ?
		    "other processes of the broker's user have fds in flight: "
		    "run it as a user of its own" : "the closer is replaced");
	}
}

void
closer_readable(struct broker *b)
{
	struct closer *c = &b->closer;
	uint64_t seq;
	size_t done;

	while (recv(c->sock, &seq, sizeof(seq), MSG_DONTWAIT) ==
	    (ssize_t)sizeof(seq)) {
		if (seq <= c->acked || seq > c->sent)
			continue;	/* cannot happen: our own child */
		c->acked = seq;
		clock_gettime(CLOCK_MONOTONIC, &c->progress);
	}
	for (done = 0; done < c->ninflight && c->inflight[done].seq <= c->acked;
	    done++)
		c->inflight_fds -= c->inflight[done].nfds;
	c->ninflight -= done;
	memmove(c->inflight, c->inflight + done,
	    c->ninflight * sizeof(c->inflight[0]));
}

int
closer_timeout_ms(const struct broker *b)
{
	const struct closer *c = &b->closer;
	double left;

	if (c->ninflight == 0)
		return -1;
	left = CLOSER_DEADLINE_MS - broker_elapsed_ms(&c->progress);
	return left <= 0 ? 0 : (int)left + 1;
}

/*
 * Replace a closer that is stuck (no progress within the deadline, or the
 * waiting list full) or gone. Fills *blame with the batch it was stuck on,
 * and returns true, when it replaced one.
 */
bool
closer_check(struct broker *b, struct batch *blame, bool exited)
{
	struct closer *c = &b->closer;
	int rc;

	memset(blame, 0, sizeof(*blame));
	if (!exited) {
		if (c->ninflight == 0)
			return false;
		if (closer_has_room(b) &&
		    broker_elapsed_ms(&c->progress) < CLOSER_DEADLINE_MS)
			return false;
		*blame = c->inflight[0];
	}
	b->closer_replaced++;
	closer_kill(b);
	if ((rc = closer_spawn(b)) < 0) {
		errno = -rc;
		log_warn("closer: fork");
	}
	closer_flush(b);
	return true;
}
