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
 * queued to the old closer are released as it exits, in its own context. It
 * says on a page shared with the broker which fd's close(2) it is in, so the
 * broker knows whose fd stalled it — exactly, whatever sessions' fds share a
 * batch — and the caller ends that session. The broker keeps the fds the
 * closer cannot take yet on a waiting list: while it lacks room for one more
 * datagram's fds the loop reads no datagram that may carry any (sessions are
 * paused, session.c), and a closer that spends CLOSER_STALL_MS in one close
 * meanwhile is replaced. A closer that is only slower than the loop (many
 * sessions ending at once, a loaded machine) is waited for, not replaced.
 *
 * The closer is forked from the jailed broker and inherits its seccomp
 * filter; it closes every other fd it inherited, dies with the broker
 * (PR_SET_PDEATHSIG), and does nothing but recvmsg(2), close(2) and send(2).
 * SIGCHLD is ignored, so closers are reaped by the kernel.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <linux/close_range.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "broker.h"
#include "log.h"

#define CLOSER_GO		(1ULL << 63)	/* the broker's copies are closed */

/* A datagram to the closer: a batch (with its fds), or its GO. */
struct closer_msg {
	uint64_t	seq;		/* the batch's number, | CLOSER_GO */
	uint64_t	first;		/* the number of its first fd */
};

/*
 * The closer's whole life. A batch comes in two datagrams: the fds, then,
 * once the broker has closed its own copies, the same number with GO set.
 * Only then is the closer's close the last one: closing at once could leave
 * the last to the broker. Before each close it posts the fd's number on the
 * shared page, after it the same number as closed.
 */
static void __attribute__((noreturn))
closer_main(int sock, pid_t parent, struct closer_page *page)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * CLOSER_BATCH)];
		struct cmsghdr align;
	} control;
	struct linger abort_close = { .l_onoff = 1, .l_linger = 0 };
	struct cmsghdr *cmsg;
	struct closer_msg m;
	int held[CLOSER_BATCH], type;
	size_t nheld = 0, i, count;
	uint64_t first = 0;
	socklen_t len;
	ssize_t n;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(1);
	if ((sock > 0 && syscall(SYS_close_range, 0, sock - 1, 0) < 0) ||
	    syscall(SYS_close_range, sock + 1, ~0U, 0) < 0)
		_exit(1);
	for (;;) {
		struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
		struct msghdr msg = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = control.buf,
			.msg_controllen = sizeof(control.buf),
		};

		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof(m))
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
		if (!(m.seq & CLOSER_GO)) {
			first = m.first;
			continue;
		}
		for (i = 0; i < nheld; i++) {
			atomic_store(&page->closing, first + i);
			/* A socket's close is then an abort, not a wait. */
			len = sizeof(type);
			if (getsockopt(held[i], SOL_SOCKET, SO_TYPE, &type,
			    &len) == 0)
				(void)setsockopt(held[i], SOL_SOCKET, SO_LINGER,
				    &abort_close, sizeof(abort_close));
			close(held[i]);
			atomic_store(&page->closed, first + i);
		}
		nheld = 0;
		m.seq &= ~CLOSER_GO;
		if (send(sock, &m.seq, sizeof(m.seq), MSG_NOSIGNAL) < 0)
			_exit(0);
	}
}

/* Fork a closer. Returns 0 or -errno; the broker goes on without one. */
static int
closer_spawn(struct broker *b)
{
	struct closer *c = &b->closer;
	struct closer_page *page;
	pid_t parent = getpid(), pid;
	int sv[2], pidfd, err;

	/* A page of its own: a killed closer may still write to the old one. */
	page = mmap(NULL, sizeof(*page), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED)
		return -errno;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		err = -errno;
		munmap(page, sizeof(*page));
		return err;
	}
	if ((pid = fork()) < 0) {
		err = -errno;
		close(sv[0]);
		close(sv[1]);
		munmap(page, sizeof(*page));
		return err;
	}
	if (pid == 0)
		closer_main(sv[1], parent, page);
	close(sv[1]);
	/* An unreaped child keeps its pid: this is the closer's pidfd. */
	if ((pidfd = proc_pidfd_open(pid)) < 0) {
		err = -errno;
		close(sv[0]);	/* the closer reads end-of-file and exits */
		munmap(page, sizeof(*page));
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
		munmap(page, sizeof(*page));
		return err;
	}
	c->pid = pid;
	c->pidfd = pidfd;
	c->sock = sv[0];
	c->page = page;
	c->sent = c->acked = 0;
	c->fds_sent = c->seen_closed = c->seen_closing = 0;
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
	munmap(c->page, sizeof(*c->page));
	c->page = NULL;
	c->pidfd = c->sock = -1;
	c->pid = 0;
	c->ninflight = c->inflight_fds = 0;
}

/*
 * Fork the closer. must: a failure is fatal (at start-up); otherwise it is
 * logged and survived (an upgraded image must not lose every listener for
 * want of a process: closer_flush() forks one when fds wait).
 */
void
closer_start(struct broker *b, bool must)
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
		if (must)
			fatal("closer: fork");
		log_warn("closer: fork (again when fds are to be closed)");
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
	struct closer_msg go = { .seq = c->sent | CLOSER_GO };

	if (send(c->sock, &go, sizeof(go), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		return -errno;
	c->go_pending = false;
	return 0;
}

/* Send one batch: waiting fds from the front. 0 or -errno. */
static int
send_batch(struct closer *c)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * CLOSER_BATCH)];
		struct cmsghdr align;
	} control;
	struct closer_msg m = { .seq = c->sent + 1, .first = c->fds_sent + 1 };
	struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
	};
	struct cmsghdr *cmsg;
	size_t n = c->nwaiting < CLOSER_BATCH ? c->nwaiting : CLOSER_BATCH, i;

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
	c->sent = m.seq;
	c->inflight[c->ninflight++] = (struct batch){ .seq = m.seq, .nfds = n };
	c->inflight_fds += n;
	/*
	 * Each file is held by the datagram, or by the closer, which waits
	 * for GO: ours is not the last close.
	 */
	for (i = 0; i < n; i++) {
		c->owners[(c->fds_sent + 1 + i) % CLOSER_RING] = (struct owner){
		    .uid = c->waiting[i].uid, .session = c->waiting[i].session };
		close(c->waiting[i].fd);
	}
	c->fds_sent += n;
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

/*
 * Has the closer closed an fd, or begun another close, since last seen?
 * That is progress: a stall is the time since, so a close just begun (by
 * a closer that was only waiting for the CPU) is not one.
 */
static void
closer_observe(struct closer *c)
{
	uint64_t closed, closing;

	if (c->page == NULL)
		return;
	closed = atomic_load(&c->page->closed);
	closing = atomic_load(&c->page->closing);
	if (closed != c->seen_closed || closing != c->seen_closing) {
		c->seen_closed = closed;
		c->seen_closing = closing;
		clock_gettime(CLOCK_MONOTONIC, &c->progress);
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
	}
	closer_observe(c);
	for (done = 0; done < c->ninflight && c->inflight[done].seq <= c->acked;
	    done++)
		c->inflight_fds -= c->inflight[done].nfds;
	c->ninflight -= done;
	memmove(c->inflight, c->inflight + done,
	    c->ninflight * sizeof(c->inflight[0]));
}

/*
 * The fd whose close the closer is in, if it is in one: its number, or 0.
 * The page is the closer's to write, so its numbers are checked against
 * what was sent.
 */
static uint64_t
closer_closing(const struct closer *c)
{
	uint64_t closed, closing;

	if (c->page == NULL)
		return 0;
	closed = atomic_load(&c->page->closed);
	closing = atomic_load(&c->page->closing);
	if (closing <= closed || closing > c->fds_sent ||
	    c->fds_sent - closing >= CLOSER_RING)
		return 0;
	return closing;
}

/*
 * How long the closer may go without progress: while the waiting list is
 * full, a closer inside one close(2) has CLOSER_STALL_MS, since sessions
 * wait for it; otherwise CLOSER_DEADLINE_MS.
 */
static int
closer_limit_ms(const struct broker *b)
{
	if (!closer_has_room(b) && closer_closing(&b->closer) != 0)
		return CLOSER_STALL_MS;
	return CLOSER_DEADLINE_MS;
}

int
closer_timeout_ms(struct broker *b)
{
	struct closer *c = &b->closer;
	double left;

	if (c->ninflight == 0)
		return -1;
	closer_observe(c);
	left = closer_limit_ms(b) - broker_elapsed_ms(&c->progress);
	/* While sessions wait for room, look again often: it may get stuck. */
	if (!closer_has_room(b) && left > CLOSER_STALL_MS / 4)
		left = CLOSER_STALL_MS / 4;
	return left <= 0 ? 0 : (int)left + 1;
}

/*
 * Replace a closer that is stuck (no progress within its limit) or gone.
 * Fills *blame with the owner of the fd it was stuck in, if any, and
 * returns true, when it replaced one.
 */
bool
closer_check(struct broker *b, struct owner *blame, bool exited)
{
	struct closer *c = &b->closer;
	uint64_t closing;
	int rc;

	memset(blame, 0, sizeof(*blame));
	if (!exited) {
		if (c->ninflight == 0)
			return false;
		closer_observe(c);
		if (broker_elapsed_ms(&c->progress) < closer_limit_ms(b))
			return false;
		if ((closing = closer_closing(c)) != 0)
			*blame = c->owners[closing % CLOSER_RING];
	}
	b->closer_replaced++;
	registry_globals_changed(&b->reg);
	closer_kill(b);
	if ((rc = closer_spawn(b)) < 0) {
		errno = -rc;
		log_warn("closer: fork");
	}
	closer_flush(b);
	return true;
}
