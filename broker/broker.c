/*
 * broker.c - the daemon's frame: the device, the listening socket, signals
 * and the liveness timer, and one single-threaded epoll loop over every session.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "broker.h"
#include "log.h"

#define SD_LISTEN_FDS_START	3
#define LISTEN_BACKLOG		128
#define EVENTS_PER_TURN		64

static void
interrupt(int sig)
{
	(void)sig;
}

int
broker_watch(struct broker *b, int fd, struct watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	return epoll_ctl(b->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

void
broker_unwatch(struct broker *b, int fd)
{
	(void)epoll_ctl(b->epfd, EPOLL_CTL_DEL, fd, NULL);
}

double
broker_elapsed_ms(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - since->tv_sec) * 1e3 +
	    (now.tv_nsec - since->tv_nsec) / 1e6;
}

uint64_t
broker_now_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* The socket systemd passed, if any (sd_listen_fds(3) protocol). */
static int
activated_socket(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	int type;
	socklen_t len = sizeof(type);

	if (pid == NULL || fds == NULL || atol(pid) != (long)getpid())
		return -1;
	if (atoi(fds) != 1)
		fatalx("socket activation: expected 1 socket, got %s", fds);
	if (getsockopt(SD_LISTEN_FDS_START, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
	    type != SOCK_SEQPACKET)
		fatalx("socket activation: fd 3 is not a SOCK_SEQPACKET socket");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (fcntl(SD_LISTEN_FDS_START, F_SETFD, FD_CLOEXEC) < 0 ||
	    fcntl(SD_LISTEN_FDS_START, F_SETFL, O_NONBLOCK) < 0)
		fatal("socket activation: fcntl");
	return SD_LISTEN_FDS_START;
}

static int
listen_socket(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path))
		fatalx("socket path too long: %s", path);
	strcpy(sun.sun_path, path);
	/* A stale socket from an earlier run is replaced; nothing else is. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			fatalx("%s exists and is not a socket", path);
		if (unlink(path) < 0)
			fatal("unlink %s", path);
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		fatal("socket");
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		fatal("bind %s", path);
	/* Anyone may connect: the policy, by kernel credentials, decides. */
	if (chmod(path, 0666) < 0)
		fatal("chmod %s", path);
	if (listen(fd, LISTEN_BACKLOG) < 0)
		fatal("listen %s", path);
	return fd;
}

/*
 * The device, or the supervised userfaultfd(2) path when it is missing (as
 * crosvm's Factory falls back) or when the configuration asks for it.
 */
static void
open_device(struct broker *b)
{
	b->devfd = -1;
	if (b->cfg.creation != CREATION_SYSCALL)
		b->devfd = open(b->cfg.device_path, O_RDONLY | O_CLOEXEC);
	if (b->devfd >= 0)
		return;
	if (b->cfg.creation == CREATION_DEVICE ||
	    (b->cfg.creation == CREATION_AUTO && errno != ENOENT))
		fatal("open %s", b->cfg.device_path);
	if (b->cfg.creation == CREATION_AUTO)
		log_warnx("%s does not exist: supervising userfaultfd(2) instead",
		    b->cfg.device_path);
	b->via_syscall = true;
}

void
broker_setup(struct broker *b)
{
	struct itimerspec period = { 0 };
	sigset_t mask;

	struct sigaction sa = { .sa_handler = interrupt };
	struct rlimit nofile;

	TAILQ_INIT(&b->sessions);
	TAILQ_INIT(&b->graveyard);
	TAILQ_INIT(&b->listeners);
	TAILQ_INIT(&b->dead_listeners);
	TAILQ_INIT(&b->spent);
	if (access_load(b) < 0)
		fatalx("no policy: refusing to start");

	/* Each session holds up to five fds; take all the fds we may. */
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
		nofile.rlim_cur = nofile.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &nofile);
		if (b->cfg.max_sessions > (nofile.rlim_cur - 32) / 5)
			b->cfg.max_sessions = (nofile.rlim_cur - 32) / 5;
	}
	/* No SA_RESTART: SIGALRM interrupts a blocking notification read. */
	if (sigaction(SIGALRM, &sa, NULL) < 0)
		fatal("sigaction");
	b->w_listen.kind = WATCH_LISTEN;
	b->w_timer.kind = WATCH_TIMER;
	b->w_signal.kind = WATCH_SIGNAL;

	open_device(b);

	b->listen_fd = activated_socket();
	b->cfg.socket_activated = b->listen_fd >= 0;
	if (b->listen_fd < 0)
		b->listen_fd = listen_socket(b->cfg.socket_path);

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
#ifdef UFFD_BROKER_TEST_HOOKS
	sigaddset(&mask, SIGUSR2);
#endif
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		fatal("sigprocmask");
	signal(SIGPIPE, SIG_IGN);
	if ((b->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0)
		fatal("signalfd");

	b->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (b->timerfd < 0)
		fatal("timerfd_create");
	period.it_interval.tv_sec = b->cfg.probe_interval_ms / 1000;
	period.it_interval.tv_nsec = (b->cfg.probe_interval_ms % 1000) * 1000000L;
	period.it_value = period.it_interval;
	if (timerfd_settime(b->timerfd, 0, &period, NULL) < 0)
		fatal("timerfd_settime");

	if ((b->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		fatal("epoll_create1");
	if (broker_watch(b, b->listen_fd, &b->w_listen, EPOLLIN) < 0 ||
	    broker_watch(b, b->timerfd, &b->w_timer, EPOLLIN) < 0 ||
	    broker_watch(b, b->sigfd, &b->w_signal, EPOLLIN) < 0)
		fatal("epoll_ctl");
}

/* No session slot is free: say so, limited by the peer's uid, and hang up. */
static void
refuse_full(struct broker *b, int fd)
{
	struct ucred cred = { .uid = (uid_t)-1 };
	socklen_t len = sizeof(cred);

	(void)getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len);
	audit_uid(b, cred.uid, "session_refused", "uid=%u reason=\"broker "
	    "full: %u sessions\"", (unsigned)cred.uid, b->nsessions);
	close(fd);
}

static void
accept_clients(struct broker *b)
{
	int fd, i;

	/* Bounded, so that a flood of connections cannot starve the others. */
	for (i = 0; i < 16; i++) {
		fd = accept4(b->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE) {
				/* Stop accepting until a session is freed. */
				log_warn("accept: out of fds; pausing new sessions");
				broker_unwatch(b, b->listen_fd);
				b->accept_paused = true;
			} else if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn("accept");
			return;
		}
		if (b->nsessions >= b->cfg.max_sessions) {
			refuse_full(b, fd);
			continue;
		}
		(void)session_new(b, fd);
	}
}

static void
read_signals(struct broker *b)
{
	struct signalfd_siginfo si;

	while (read(b->sigfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
			b->stopping = true;
		else if (si.ssi_signo == SIGHUP)
			access_reload(b);
#ifdef UFFD_BROKER_TEST_HOOKS
		/* Test builds only: a system call outside the jail's list. */
		else if (si.ssi_signo == SIGUSR2) {
			log_event("test_hook", "calling socket(AF_INET)");
			(void)socket(AF_INET, SOCK_STREAM, 0);
		}
#endif
	}
}

static void
dispatch(struct broker *b, const struct epoll_event *ev)
{
	struct watch *w = ev->data.ptr;
	struct session *s = w->s;
	struct listener *l = w->l;
	uint64_t ticks;

	switch (w->kind) {
	case WATCH_LISTEN:
		accept_clients(b);
		return;
	case WATCH_TIMER:
		if (read(b->timerfd, &ticks, sizeof(ticks)) == sizeof(ticks))
			liveness_tick(b);
		return;
	case WATCH_SIGNAL:
		read_signals(b);
		return;
	case WATCH_NOTIFY:
		if (l->fd < 0)
			return;		/* closed earlier in this turn */
		if (ev->events & EPOLLIN)
			supervise_notification(l);
		else
			listener_hangup(l, "process exited: no process is left "
			    "under its filter");
		return;
	default:
		break;
	}
	if (s->state == SESSION_DEAD)
		return;
	switch (w->kind) {
	case WATCH_SOCK:
		if (ev->events & EPOLLIN)
			session_readable(s);
		else
			session_hangup(s);
		break;
	case WATCH_PIDFD:
		session_kill(s, "process exited");
		break;
	default:
		break;
	}
}

void
broker_run(struct broker *b)
{
	struct epoll_event events[EVENTS_PER_TURN];
	struct session *s;
	struct listener *l;
	int i, n;

	while (!b->stopping) {
		n = epoll_wait(b->epfd, events, EVENTS_PER_TURN, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fatal("epoll_wait");
		}
		for (i = 0; i < n; i++)
			dispatch(b, &events[i]);
		if (b->accept_paused && !TAILQ_EMPTY(&b->graveyard) &&
		    broker_watch(b, b->listen_fd, &b->w_listen, EPOLLIN) == 0)
			b->accept_paused = false;
		session_reap(b);
		listener_reap(b);
	}

	while ((s = TAILQ_FIRST(&b->sessions)) != NULL)
		session_kill(s, "broker stopping");
	while ((l = TAILQ_FIRST(&b->listeners)) != NULL)
		listener_close(l);
	session_spent_prune(b, true);
	session_reap(b);
	listener_reap(b);
	audit_flush(b, true);
	if (!b->cfg.socket_activated)
		unlink(b->cfg.socket_path);
}
