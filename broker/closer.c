/*
 * closer.c - a thread that closes what strangers sent.
 *
 * Closing an fd can block: the last close of a TCP socket with SO_LINGER and
 * unsent data waits for the linger time, a FUSE file's flush waits for its
 * daemon. An fd a peer sends the broker is of any kind, and so is every fd
 * still queued in a session socket when the broker closes it (closing the
 * socket releases them). The loop never closes such fds itself: it hands
 * them to this thread through a pipe, and goes on serving.
 *
 * The thread is started after the jail, inherits its seccomp filter, blocks
 * every signal (SIGALRM bounds the loop's notification reads and must reach
 * the loop's thread), and does nothing but read(2) and close(2).
 *
 * Sockets get SO_LINGER {1, 0} before they go: their close is then an
 * abort, never a wait, so a lingering socket cannot wedge the closer.
 * What still can: a file whose flush waits on a process the client
 * controls (a FUSE daemon). Fds that do not fit in the pipe meanwhile are
 * kept on a list and offered again at every tick; none is lost.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "log.h"

static void *
closer_main(void *arg)
{
	struct broker *b = arg;
	int fds[64];
	ssize_t n, i;

	for (;;) {
		n = read(b->closer_rfd, fds, sizeof(fds));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (i = 0; i < n / (ssize_t)sizeof(int); i++)
			close(fds[i]);
	}
	/* Cannot happen with a pipe we own; if it does, the loop closes. */
	__atomic_store_n(&b->closer_dead, true, __ATOMIC_RELEASE);
	return NULL;
}

void
closer_start(struct broker *b)
{
	sigset_t all, old;
	pthread_t tid;
	int p[2], rc;

	if (pipe2(p, O_CLOEXEC) < 0)
		fatal("closer: pipe");
	/* The loop never waits on the closer: a full pipe is its problem. */
	if (fcntl(p[1], F_SETFL, O_NONBLOCK) < 0)
		fatal("closer: fcntl");
	b->closer_rfd = p[0];
	b->closer_wfd = p[1];
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&tid, NULL, closer_main, b);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		errno = rc;
		fatal("closer: pthread_create");
	}
	pthread_detach(tid);
}

static bool
closer_queue(struct broker *b, int fd)
{
	return write(b->closer_wfd, &fd, sizeof(fd)) == sizeof(fd);
}

/*
 * Close fd without blocking the loop. Without a closer (tests that drive
 * sessions without a loop, or a closer gone), close here.
 */
void
closer_discard(struct broker *b, int fd)
{
	struct linger abort_close = { .l_onoff = 1, .l_linger = 0 };
	int type, *more;
	socklen_t len = sizeof(type);

	if (fd < 0)
		return;
	if (b->closer_wfd < 0 ||
	    __atomic_load_n(&b->closer_dead, __ATOMIC_ACQUIRE)) {
		close(fd);
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_close,
		    sizeof(abort_close));
	if (b->nwaiting == 0 && closer_queue(b, fd))
		return;
	/*
	 * The closer has 16k fds queued and is stuck on one: keep this one
	 * for later rather than stall every session. It counts against the
	 * fd limit, which pauses new sessions before the broker runs out.
	 */
	if (b->nwaiting == b->waiting_cap) {
		size_t cap = b->waiting_cap ? 2 * b->waiting_cap : 256;

		if ((more = realloc(b->waiting, cap * sizeof(int))) == NULL) {
			log_warn("closer: fd %d left open", fd);
			return;
		}
		b->waiting = more;
		b->waiting_cap = cap;
	}
	b->waiting[b->nwaiting++] = fd;
	if (b->nwaiting == 1)
		log_warnx("closer is behind: fds wait to be closed");
}

/* Offer the waiting fds again (each tick). */
void
closer_flush(struct broker *b)
{
	size_t done = 0;

	while (done < b->nwaiting && closer_queue(b, b->waiting[done]))
		done++;
	memmove(b->waiting, b->waiting + done,
	    (b->nwaiting - done) * sizeof(int));
	b->nwaiting -= done;
}
