/* SPDX-License-Identifier: ISC */
/*
 * broker.c - the daemon's frame: the device, the listening socket, signals
 * and the liveness timer, and one single-threaded epoll loop over every session.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "broker.h"
#include "log.h"

#define LISTEN_BACKLOG		128
#define EVENTS_PER_TURN		64
/* Fds a session holds at most: socket, pidfd, tracker, probe, listener. */
#define FDS_PER_SESSION		5
/*
 * Free fds kept at all times. When a datagram's fds cannot be installed
 * (the table is full) the kernel releases them inside recvmsg(), in the
 * loop's thread, where their close may block: room for the closer's waiting
 * list (which leaves room for one more datagram's fds before any is read)
 * and the broker's own.
 */
#define FD_RESERVE		(CLOSER_WAITING_MAX + 64)

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

int
broker_rewatch(struct broker *b, int fd, struct watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	return epoll_ctl(b->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
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

/* A listening SOCK_SEQPACKET socket (systemd's, by its socket unit). */
static bool
listening_seqpacket(int fd, const char *name)
{
	int type = 0, acc = 0;
	socklen_t len = sizeof(int);

	(void)name;
	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
	    type == SOCK_SEQPACKET && (len = sizeof(int),
	    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len)) == 0 &&
	    acc != 0;
}

/*
 * The socket systemd passed, if any (sd_listen_fds(3) protocol): its socket
 * unit's, or, in a restart from the fd store (store.c), the one a broker
 * before this one bound and stored ("listen", with its lock, "lock"). *own
 * says which.
 */
static int
activated_socket(struct broker *b, bool *own)
{
	size_t n = store_take_passed();
	int fd;

	*own = false;
	if (n == 0)
		return -1;
	if ((fd = store_take("listen")) >= 0) {
		if (!listening_seqpacket(fd, "listen"))
			fatalx("restart: the stored \"listen\" is not a "
			    "listening SOCK_SEQPACKET socket");
		/* Its lock is held by the stored copy: this one is it. */
		if ((b->lock_fd = store_take("lock")) < 0)
			fatalx("restart: the stored socket's lock is not in "
			    "the store");
		*own = true;
	} else if ((fd = store_take_first(listening_seqpacket)) < 0)
		fatalx("socket activation: none of the %zu fds passed is a "
		    "listening SOCK_SEQPACKET socket", n);
	if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
		fatal("socket activation: fcntl");
	return fd;
}

/*
 * A start-up step on path failed: say what to do where the cause is
 * common — a missing directory, a broker not started as root — then exit.
 */
static void __attribute__((noreturn))
fatal_path(const char *what, const char *path)
{
	char dir[PATH_MAX], *slash;
	int err = errno;
	struct stat st;

	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) != NULL)
		*(slash == dir ? slash + 1 : slash) = '\0';
	errno = err;
	if (err == ENOENT && slash != NULL && stat(dir, &st) < 0)
		fatal("%s %s: the directory %s does not exist: create it "
		    "(systemd-tmpfiles --create uffd-broker.conf, or mkdir -p), "
		    "or choose another path", what, path, dir);
	if ((err == EACCES || err == EPERM) && geteuid() != 0)
		fatal("%s %s: start uffd-brokerd as root: it drops its "
		    "privileges itself after start-up (--user)", what, path);
	fatal("%s %s", what, path);
}

/*
 * One broker per socket path: an flock(2) on PATH.lock, held for the
 * daemon's life and taken before anything at PATH is touched, so that of two
 * brokers starting at once one stops here. The kernel drops the lock when
 * its holder dies, so a file left by a crash is harmless. It is never
 * removed: a broker that opened it but has yet to lock it would then lock a
 * file no other broker sees. It holds the holder's pid, for the message.
 */
static void
lock_socket_path(struct broker *b, const char *path)
{
	char lock[PATH_MAX], pid[16];
	ssize_t n;
	int fd;

	snprintf(lock, sizeof(lock), "%s.lock", path);
	fd = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC,
	    0644);
	if (fd < 0)
		fatal_path("open", lock);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK)
			fatal("flock %s", lock);
		n = pread(fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strspn(pid, "0123456789")] = '\0';
		fatalx("another uffd-brokerd%s%s%s holds %s: refusing to start",
		    pid[0] ? " (pid " : "", pid, pid[0] ? ")" : "", lock);
	}
	if (ftruncate(fd, 0) < 0 || dprintf(fd, "%d\n", (int)getpid()) < 0)
		fatal("write %s", lock);
	b->lock_fd = fd;
}

/*
 * A socket at the path that someone listens on is not stale: another broker
 * that holds no lock (an older one, or its lock file was removed). Only
 * ECONNREFUSED says nobody listens; a full backlog (EAGAIN) or a socket of
 * another type (EPROTOTYPE) say someone does.
 */
static void
refuse_live_socket(const struct sockaddr_un *sun)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd;

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		fatal("socket");
	if (connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) < 0) {
		if (errno == ECONNREFUSED) {
			close(fd);
			return;
		}
		fatal("%s is in use: refusing to start", sun->sun_path);
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		fatal("getsockopt(SO_PEERCRED)");
	fatalx("another uffd-brokerd (pid %d) answers on %s: refusing to start",
	    (int)cred.pid, sun->sun_path);
}

static int
listen_socket(struct broker *b)
{
	const char *path = b->cfg.socket_path;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path))
		fatalx("socket path too long: %s", path);
	strcpy(sun.sun_path, path);
	lock_socket_path(b, path);
	/* A stale socket from an earlier run is replaced; nothing else is. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			fatalx("%s exists and is not a socket", path);
		refuse_live_socket(&sun);
		if (unlink(path) < 0)
			fatal("unlink %s", path);
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		fatal("socket");
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		fatal_path("bind", path);
	/* Anyone may connect: the policy, by kernel credentials, decides. */
	if (chmod(path, 0666) < 0)
		fatal("chmod %s", path);
	/* What to compare at exit, so as to unlink only our own socket. */
	if (lstat(path, &st) < 0)
		fatal("lstat %s", path);
	b->sock_dev = st.st_dev;
	b->sock_ino = st.st_ino;
	return fd;
}

/*
 * Take connections once everything that serves them is there (the verifier,
 * the jail, the closer): a client that connects earlier is refused
 * (ECONNREFUSED) rather than served by half a broker. A socket systemd
 * passed listens already.
 */
void
broker_listen(struct broker *b)
{
	if (!b->cfg.socket_activated && listen(b->listen_fd, LISTEN_BACKLOG) < 0)
		fatal("listen %s", b->cfg.socket_path);
}

/*
 * No fd reaches the broker from a peer it has not admitted: accepted sockets
 * inherit SO_PASSRIGHTS off from the listening socket, and a peer's
 * SCM_RIGHTS then fails with EPERM in the sender (session.c turns it on
 * while an fd is due). Older kernels (before 6.16) lack the switch: peers'
 * fds arrive, and the closer process disposes of them.
 */
static void
refuse_fds(struct broker *b)
{
	int off = 0;

	if (setsockopt(b->listen_fd, SOL_SOCKET, SO_PASSRIGHTS, &off,
	    sizeof(off)) == 0) {
		b->passrights = true;
		return;
	}
	if (errno != ENOPROTOOPT)
		fatal("setsockopt(SO_PASSRIGHTS)");
	log_warnx("this kernel has no SO_PASSRIGHTS (Linux 6.16+): any peer "
	    "can send fds, which the closer process disposes of");
}

/* Fds the broker holds, counted from what it owns (for the reserve). */
static size_t
fds_in_use(const struct broker *b)
{
	const struct session *s;
	const struct listener *l;
	const struct spent *sp;
	size_t n = 16 + b->closer.nwaiting;	/* device, sockets, closer... */

	TAILQ_FOREACH(s, REGISTRY_SESSIONS(&b->reg), entry)
		n += 4;
	TAILQ_FOREACH(l, REGISTRY_LISTENERS(&b->reg), entry)
		n++;
	TAILQ_FOREACH(sp, REGISTRY_SPENT(&b->reg), entry)
		n += 3;
	return n;
}

/* Is there room for another session, the reserve kept? */
static bool
fds_for_session(const struct broker *b)
{
	return fds_in_use(b) + FDS_PER_SESSION + FD_RESERVE <= b->nofile;
}

/*
 * At exit, unlink the path only if it is still the socket this broker bound:
 * someone may have put another there since (a broker started by hand after
 * removing ours, say), and that one is not ours to remove.
 */
static void
unlink_socket(struct broker *b)
{
	const char *path = b->cfg.socket_path;
	struct stat st;

	if (lstat(path, &st) < 0)
		return;
	if (st.st_dev != b->sock_dev || st.st_ino != b->sock_ino) {
		log_warnx("%s is not this broker's socket any more: left in place",
		    path);
		return;
	}
	if (unlink(path) < 0)
		log_warn("unlink %s: left, stale, for the next start to replace",
		    path);
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
		fatal_path("open", b->cfg.device_path);
	if (b->cfg.creation == CREATION_AUTO)
		log_warnx("%s does not exist: supervising userfaultfd(2) instead",
		    b->cfg.device_path);
	b->via_syscall = true;
}

/*
 * The policy, the fd limit, SIGALRM, the epoll set: a fresh broker's and
 * an adopting one's.
 */
void
broker_setup_common(struct broker *b)
{
	struct sigaction sa = { .sa_handler = interrupt };
	struct rlimit nofile;

	if (access_load(b) < 0)
		fatalx("no policy: refusing to start");

	/*
	 * Take all the fds we may; the reserve is never given to sessions.
	 * (An upgraded image keeps the limit it has: its jail allows no
	 * change.)
	 */
	if (getrlimit(RLIMIT_NOFILE, &nofile) < 0)
		fatal("getrlimit");
	if (nofile.rlim_cur != nofile.rlim_max && !b->upgrade.resuming) {
		nofile.rlim_cur = nofile.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &nofile);
		if (getrlimit(RLIMIT_NOFILE, &nofile) < 0)
			fatal("getrlimit");
	}
	b->nofile = nofile.rlim_cur;
	if (b->nofile < FD_RESERVE + 64 + 4 * FDS_PER_SESSION)
		fatalx("RLIMIT_NOFILE %zu is too low: the broker needs %d",
		    b->nofile, FD_RESERVE + 64 + 4 * FDS_PER_SESSION);
	if (b->cfg.max_sessions > (b->nofile - FD_RESERVE - 64) /
	    FDS_PER_SESSION) {
		size_t fit = (b->nofile - FD_RESERVE - 64) / FDS_PER_SESSION;

		log_warnx("RLIMIT_NOFILE %zu fits %zu sessions, not the %zu "
		    "asked: serving at most %zu (raise LimitNOFILE= to at "
		    "least %zu)", b->nofile, fit, (size_t)b->cfg.max_sessions,
		    fit, (size_t)b->cfg.max_sessions * FDS_PER_SESSION +
		    FD_RESERVE + 64);
		b->cfg.max_sessions = fit;
	}
	/* No SA_RESTART: SIGALRM interrupts a blocking notification read. */
	if (sigaction(SIGALRM, &sa, NULL) < 0)
		fatal("sigaction");
	signal(SIGPIPE, SIG_IGN);
	b->w_listen.kind = WATCH_LISTEN;
	b->w_timer.kind = WATCH_TIMER;
	b->w_signal.kind = WATCH_SIGNAL;
	if ((b->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		fatal("epoll_create1");
}

/* The listening socket, the timer and the signals in the epoll set. */
void
broker_setup_loop(struct broker *b)
{
	if (broker_watch(b, b->listen_fd, &b->w_listen, EPOLLIN) < 0 ||
	    broker_watch(b, b->timerfd, &b->w_timer, EPOLLIN) < 0 ||
	    broker_watch(b, b->sigfd, &b->w_signal, EPOLLIN) < 0)
		fatal("epoll_ctl");
}

void
broker_setup(struct broker *b)
{
	struct itimerspec period = { 0 };
	sigset_t mask;
	bool own;

	broker_setup_common(b);
	open_device(b);

	b->listen_fd = activated_socket(b, &own);
	b->cfg.socket_activated = b->listen_fd >= 0 && !own;
	if (b->listen_fd < 0) {
		b->listen_fd = listen_socket(b);
		/* Bound here: kept in the fd store, if any, with its lock. */
		store_put(b, 0, 0, "listen", b->listen_fd);
		store_put(b, 0, 0, "lock", b->lock_fd);
	}
	refuse_fds(b);

	/* The mask and the signalfd outlive an upgrade's exec (upgrade.c). */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR2);
#ifdef UFFD_BROKER_TEST_HOOKS
	sigaddset(&mask, SIGUSR1);
#endif
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		fatal("sigprocmask");
	if ((b->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0)
		fatal("signalfd");

	b->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (b->timerfd < 0)
		fatal("timerfd_create");
	/* The interval's work is done in LIVENESS_SLICES ticks (liveness.c). */
	period.it_interval.tv_sec = b->cfg.probe_interval_ms / 1000 /
	    LIVENESS_SLICES;
	period.it_interval.tv_nsec = (long)((b->cfg.probe_interval_ms *
	    1000000ULL / LIVENESS_SLICES) % 1000000000ULL);
	period.it_value = period.it_interval;
	if (timerfd_settime(b->timerfd, 0, &period, NULL) < 0)
		fatal("timerfd_settime");
	broker_setup_loop(b);
}

/*
 * No session slot is free: tell the peer (the broker speaks first), log it,
 * limited by the peer's uid, and hang up. Without SO_PASSRIGHTS the peer may
 * have queued fds: the closer takes the socket.
 */
static void
refuse_full(struct broker *b, int fd)
{
	WireReply reply = UFFD_BROKER__V1__REPLY__INIT;
	struct ucred cred = { .uid = (uid_t)-1 };
	socklen_t len = sizeof(cred);
	char reason[64];

	(void)getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len);
	snprintf(reason, sizeof(reason), "broker full: %u sessions",
	    b->reg.nsessions);
	reply.status = UFFD_BROKER__V1__STATUS__QUOTA;	/* a limit */
	reply.reason = reason;
	(void)wire_send_msg(fd, &reply.base, -1);
	audit_uid(b, cred.uid, "session_refused", "uid=%u reason=\"%s\"",
	    (unsigned)cred.uid, reason);
	closer_discard(b, fd, cred.uid, 0);
}

static void
accept_clients(struct broker *b)
{
	int fd, i;

	/* Bounded, so that a flood of connections cannot starve the others. */
	for (i = 0; i < 16; i++) {
		if (!fds_for_session(b)) {
			log_warnx("fds running short of the reserve; pausing "
			    "new sessions");
			broker_unwatch(b, b->listen_fd);
			b->accept_paused = true;
			return;
		}
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
		if (b->reg.nsessions >= b->cfg.max_sessions) {
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
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
			if (!b->stopping)
				sdnotify("STOPPING=1");
			b->stopping = true;
		} else if (si.ssi_signo == SIGHUP) {
			sdnotify_reloading();
			access_reload(b);
			sdnotify("READY=1\nSTATUS=serving, policy rules: %zu",
			    b->policy->nrules);
		}
		else if (si.ssi_signo == SIGUSR2)
			upgrade_request(b);
#ifdef UFFD_BROKER_TEST_HOOKS
		/* Test builds only: a system call outside the jail's list. */
		else if (si.ssi_signo == SIGUSR1) {
			log_event("test_hook", "calling socket(AF_INET)");
			(void)socket(AF_INET, SOCK_STREAM, 0);
		}
#endif
	}
}

#ifdef UFFD_BROKER_TEST_HOOKS
/*
 * Test builds only: the broker is killed (SIGKILL) at a point of its work,
 * if the file $UFFD_BROKER_TEST_DIE_FLAG names exists and holds that
 * point's name (removed first, so that the broker started in its place
 * lives on):
 *   received        a notification received, not answered
 *   attach-read     an Attach read, nothing done
 *   attach-initialised  its uffd initialised (UFFDIO_API), not tracked
 *   attach-tracked  its uffd initialised and tracked, nothing written
 */
void
test_hook(struct broker *b, const char *point)
{
	const char *flag = getenv("UFFD_BROKER_TEST_DIE_FLAG");
	char buf[32];
	ssize_t n;
	int fd;

	(void)b;
	if (flag == NULL || (fd = open(flag, O_RDONLY | O_CLOEXEC)) < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	if (strcmp(buf, point) != 0 || unlink(flag) < 0)
		return;
	log_event("test_hook", "killed at %s", point);
	(void)proc_pidfd_kill(proc_pidfd_open(getpid()));
}
#endif

/*
 * A stuck closer (or a dead one) is replaced; the session whose fds it was
 * stuck on, if it is still there, ends: it sent what cannot be closed.
 */
static void
replace_closer(struct broker *b, bool exited)
{
	struct session *s;
	struct owner blame;

	if (!closer_check(b, &blame, exited))
		return;
	if (blame.session == 0)
		log_event("closer_replaced", "reason=\"%s\"", exited ?
		    "closer exited" : "no progress closing fds");
	else
		audit_uid(b, blame.uid, "closer_replaced", "reason=\"no "
		    "progress closing fds\" uid=%u session=%llu",
		    (unsigned)blame.uid, (unsigned long long)blame.session);
	if (blame.session != 0 &&
	    (s = registry_session_by_id(&b->reg, blame.session)) != NULL)
		session_kill(s, "its fds stalled the closer");
}

static void
dispatch(struct broker *b, const struct epoll_event *ev)
{
	struct watch *w = ev->data.ptr;
	struct session *s = w->s;
	struct listener *l = w->l;
	uint64_t ticks;

	/* Any event may change the state, but a session's request says itself
	 * (session_handle_datagram(): reading status changes nothing). */
	if (w->kind != WATCH_SOCK)
		registry_globals_changed(&b->reg);
	switch (w->kind) {
	case WATCH_LISTEN:
		accept_clients(b);
		return;
	case WATCH_TIMER:
		if (read(b->timerfd, &ticks, sizeof(ticks)) == sizeof(ticks))
			liveness_tick(b, ticks);
		return;
	case WATCH_SIGNAL:
		read_signals(b);
		return;
	case WATCH_CLOSER:
		closer_readable(b);
		return;
	case WATCH_CLOSER_EXIT:
		replace_closer(b, true);
		return;
	case WATCH_VERIFIER:
		verifier_readable(b, ev->events & (EPOLLHUP | EPOLLERR));
		return;
	case WATCH_UPGRADE:
		upgrade_readable(b);
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

/* How long the loop may wait for events: until the closer's, the
 * verifier's or an upgrade's deadline, whichever comes first (-1: none). */
int
broker_timeout_ms(struct broker *b)
{
	int t[] = { closer_timeout_ms(b), verifier_timeout_ms(b),
	    upgrade_timeout_ms(b) };
	int min = -1;
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (t[i] >= 0 && (min < 0 || t[i] < min))
			min = t[i];
	return min;
}

void
broker_turn(struct broker *b, int timeout_ms)
{
	struct epoll_event events[EVENTS_PER_TURN];
	int i, n;

	n = epoll_wait(b->epfd, events, EVENTS_PER_TURN, timeout_ms);
	if (n < 0) {
		if (errno == EINTR)
			return;
		fatal("epoll_wait");
	}
	for (i = 0; i < n; i++)
		dispatch(b, &events[i]);
	/* Sessions that ended this turn handed their fds over. */
	closer_flush(b);
	replace_closer(b, false);
	verifier_check(b);
	if (b->npaused > 0 && closer_has_room(b))
		session_resume_all(b);
	if (b->accept_paused && fds_for_session(b) &&
	    broker_watch(b, b->listen_fd, &b->w_listen, EPOLLIN) == 0)
		b->accept_paused = false;
	session_reap(b);
	listener_reap(b);
	store_sync(b);
	upgrade_continue(b);
}

void
broker_run(struct broker *b)
{
	struct session *s;
	struct listener *l;

	while (!b->stopping)
		broker_turn(b, broker_timeout_ms(b));

	while ((s = TAILQ_FIRST(REGISTRY_SESSIONS(&b->reg))) != NULL)
		session_kill(s, "broker stopping");
	while ((l = TAILQ_FIRST(REGISTRY_LISTENERS(&b->reg))) != NULL)
		listener_close(l);
	session_spent_prune(b, true);
	session_reap(b);
	listener_reap(b);
	audit_flush(b, true);
	closer_stop(b);
	if (!b->cfg.socket_activated)
		unlink_socket(b);
	/* Nothing allocated outlives the loop: leak checkers stay quiet. */
	registry_free(&b->reg);
	policy_free(b->policy);
	b->policy = NULL;
	invariants_free(b->invariants);
	b->invariants = NULL;
	status_policy_changed(b);
	free(b->reload_error);
	b->reload_error = NULL;
}
