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
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "log.h"

static void *
closer_main(void *arg)
{
	int rfd = *(int *)arg, fds[64];
	ssize_t n, i;

	for (;;) {
		n = read(rfd, fds, sizeof(fds));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return NULL;
		for (i = 0; i < n / (ssize_t)sizeof(int); i++)
			close(fds[i]);
	}
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
	rc = pthread_create(&tid, NULL, closer_main, &b->closer_rfd);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		errno = rc;
		fatal("closer: pthread_create");
	}
	pthread_detach(tid);
}

/*
 * Close fd without blocking the loop. Without a closer (tests that drive
 * sessions without a loop), close here.
 */
void
closer_discard(struct broker *b, int fd)
{
	if (fd < 0)
		return;
	if (b->closer_wfd < 0) {
		close(fd);
		return;
	}
	if (write(b->closer_wfd, &fd, sizeof(fd)) == sizeof(fd))
		return;
	/*
	 * The closer has 16k fds queued and is stuck on one: keep this one
	 * open rather than stall every session (it counts against the fd
	 * limit, which pauses new sessions before the broker runs out).
	 */
	b->fds_leaked++;
	log_warnx("closer is stuck: fd %d left open (%llu so far)", fd,
	    (unsigned long long)b->fds_leaked);
}
