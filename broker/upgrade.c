/* SPDX-License-Identifier: ISC */
/*
 * upgrade.c - a broker that execs its binary again in its own place,
 * handing over everything it serves (docs/upgrade.md).
 *
 * A client's listener is the only way its creations reach a supervisor, and
 * its filter cannot get another: the listener must never be closed for the
 * last time. An exec keeps the process, its fds (those without close-on-exec)
 * and its children (the verifier), so the new image holds every listener,
 * socket and uffd the old one held, and takes over from where it stopped.
 *
 *   1. SIGUSR2 (or uffd-brokerctl upgrade): the state is written to a sealed
 *      memfd and the new binary started in a forked child, as a check
 *      (UFFD_BROKER_UPGRADE_CHECK): it reads the state, checks every fd
 *      against the kernel, takes on the jail, and reports. The old broker
 *      serves on meanwhile. The check runs under the old broker's seccomp
 *      filter, as the new image would: a binary that needs a system call the
 *      filter forbids is killed here, not after the exec.
 *   2. The check passed: at the end of a loop turn with no proof in the
 *      verifier and nothing waiting for the closer, the broker stops its
 *      closer, writes the state again and execs. Creations wait meanwhile, in
 *      the kernel and in the sockets' queues; none is refused.
 *   3. The new image (UFFD_BROKER_STATE_FD) adopts the state (this file),
 *      forks a closer, and serves.
 *
 * A check that fails, or does not report within UPGRADE_CHECK_MS, or an
 * execve(2) that fails, leaves the old broker serving; status says why.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker.h"
#include "log.h"
#include "phase.h"
#include "state.h"

#define ENV_STATE_FD		"UFFD_BROKER_STATE_FD"
#define ENV_CHECK		"UFFD_BROKER_UPGRADE_CHECK"

#if defined(BROKER_SANITIZED) || defined(BROKER_UNDER_VALGRIND)
#define UPGRADE_CHECK_MS	30000
#else
#define UPGRADE_CHECK_MS	10000
#endif
/* A check passed, but the verifier or the closer stays busy this long. */
#define UPGRADE_QUIESCE_MS	5000

#define FD_KIND_LISTENER	"anon_inode:seccomp notify"
#define FD_KIND_UFFD		"anon_inode:[userfaultfd]"
#define FD_KIND_PIDFD		"anon_inode:[pidfd]"
#define FD_KIND_EPOLL		"anon_inode:[eventpoll]"
#define FD_KIND_TIMER		"anon_inode:[timerfd]"
#define FD_KIND_SIGNAL		"anon_inode:[signalfd]"

extern char **environ;

typedef void fd_fn(int fd, void *arg);

/* Every fd the state names, once each (an account's tracker too). */
static void
each_fd(struct broker *b, fd_fn *fn, void *arg)
{
	const struct listener *l;
	struct session *s;
	struct spent *sp;
	int fixed[] = { b->listen_fd, b->lock_fd, b->devfd, b->timerfd,
	    b->sigfd, b->verifier.sock, sdnotify_socket() };
	unsigned int walk = account_walk_begin();
	size_t i;

	for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (fixed[i] >= 0)
			fn(fixed[i], arg);
	TAILQ_FOREACH(l, REGISTRY_LISTENERS(&b->reg), entry)
		fn(l->fd, arg);
	TAILQ_FOREACH(s, REGISTRY_SESSIONS(&b->reg), entry) {
		fn(s->sock, arg);
		fn(s->pidfd, arg);
		if (s->probe_uffd >= 0)
			fn(s->probe_uffd, arg);
		if (s->proof_fd >= 0)
			fn(s->proof_fd, arg);
		if (account_walk_first(s->acct, walk))
			fn(s->acct->tracker, arg);
	}
	TAILQ_FOREACH(sp, REGISTRY_SPENT(&b->reg), entry) {
		if (sp->pidfd >= 0)
			fn(sp->pidfd, arg);
		if (sp->probe_uffd >= 0)
			fn(sp->probe_uffd, arg);
		if (account_walk_first(sp->acct, walk))
			fn(sp->acct->tracker, arg);
	}
}

static void
set_inherit(int fd, void *arg)
{
	int on = *(int *)arg;
	int flags = fcntl(fd, F_GETFD);

	if (flags >= 0)
		(void)fcntl(fd, F_SETFD, on ? flags & ~FD_CLOEXEC :
		    flags | FD_CLOEXEC);
}

static void
inherit_all(struct broker *b, bool on)
{
	int v = on;

	each_fd(b, set_inherit, &v);
}

static void
upgrade_failed(struct broker *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
upgrade_failed(struct broker *b, const char *fmt, ...)
{
	struct upgrade *u = &b->upgrade;
	char quoted[LOG_QUOTED_MAX];
	va_list ap;

	free(u->error);
	va_start(ap, fmt);
	if (vasprintf(&u->error, fmt, ap) < 0)
		u->error = NULL;
	va_end(ap);
	u->failed++;
	log_event("upgrade_failed", "binary=%s reason=%s effect=\"this broker "
	    "serves on\"", u->self, log_quote(quoted, sizeof(quoted),
	    u->error ? u->error : "out of memory"));
	if (u->report >= 0) {
		broker_unwatch(b, u->report);
		close(u->report);
	}
	if (u->pidfd >= 0) {
		(void)proc_pidfd_kill(u->pidfd);
		close(u->pidfd);
	}
	u->report = u->pidfd = -1;
	u->phase = UPGRADE_IDLE;
	verifier_kick(b);	/* proofs held for the exec go on */
}

void
upgrade_init(struct broker *b, char **argv)
{
	struct upgrade *u = &b->upgrade;
	ssize_t n;

	u->argv = argv;
	u->report = u->pidfd = -1;
	u->w = (struct watch){ .kind = WATCH_UPGRADE };
	n = readlink("/proc/self/exe", u->self, sizeof(u->self) - 1);
	u->self[n > 0 ? n : 0] = '\0';
	/* The binary replaced under it: its path names the new one. */
	if (n > 10 && strcmp(u->self + n - 10, " (deleted)") == 0)
		u->self[n - 10] = '\0';
}

/*
 * In the forked child: make the state's fds and the memfd inheritable,
 * say which is which in the environment, and exec the binary. Never
 * returns; a failure is written to the report pipe.
 */
static void __attribute__((noreturn))
exec_check(struct broker *b, int state_fd, int report)
{
	char num[16], msg[256];
	int n;

	inherit_all(b, true);
	set_inherit(state_fd, &(int){ 1 });
	set_inherit(report, &(int){ 1 });
	snprintf(num, sizeof(num), "%d", state_fd);
	(void)setenv(ENV_STATE_FD, num, 1);
	snprintf(num, sizeof(num), "%d", report);
	(void)setenv(ENV_CHECK, num, 1);
	execve(b->upgrade.self, b->upgrade.argv, environ);
	n = snprintf(msg, sizeof(msg), "cannot execute %s: %s",
	    b->upgrade.self, strerror(errno));
	(void)!write(report, msg, (size_t)n);
	_exit(127);
}

void
upgrade_request(struct broker *b)
{
	struct upgrade *u = &b->upgrade;
	char err[256];
	int p[2], fd;
	pid_t pid;

	if (u->phase != UPGRADE_IDLE) {
		log_event("upgrade", "ignored=\"an upgrade is in progress\"");
		return;
	}
	if (u->self[0] == '\0') {
		upgrade_failed(b, "this broker does not know its binary's path");
		return;
	}
	if ((fd = state_save(b, err, sizeof(err))) < 0) {
		upgrade_failed(b, "writing the state: %s", err);
		return;
	}
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
		close(fd);
		upgrade_failed(b, "pipe: %s", strerror(errno));
		return;
	}
	log_event("upgrade", "phase=check binary=%s", u->self);
	if ((pid = fork()) < 0) {
		close(fd);
		close(p[0]);
		close(p[1]);
		upgrade_failed(b, "fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		close(p[0]);
		/* The report end blocks: the check's last word must get out. */
		(void)fcntl(p[1], F_SETFL, 0);
		exec_check(b, fd, p[1]);
	}
	close(fd);
	close(p[1]);
	u->report = p[0];
	u->pidfd = proc_pidfd_open(pid);
	u->nsaid = 0;
	u->phase = UPGRADE_CHECKING;
	clock_gettime(CLOCK_MONOTONIC, &u->since);
	if (broker_watch(b, u->report, &u->w, EPOLLIN) < 0)
		upgrade_failed(b, "epoll_ctl: %s", strerror(errno));
}

/* The check's report: "ok", or why not, then end-of-file. */
void
upgrade_readable(struct broker *b)
{
	struct upgrade *u = &b->upgrade;
	ssize_t n;

	if (u->phase != UPGRADE_CHECKING)
		return;
	while ((n = read(u->report, u->said + u->nsaid,
	    sizeof(u->said) - 1 - u->nsaid)) > 0)
		u->nsaid += (size_t)n;
	if (n < 0 && errno == EAGAIN && u->nsaid < sizeof(u->said) - 1)
		return;
	u->said[u->nsaid] = '\0';
	u->said[strcspn(u->said, "\n")] = '\0';
	if (strcmp(u->said, "ok") != 0) {
		upgrade_failed(b, "the new binary's check: %s", u->nsaid > 0 ?
		    u->said : "it exited without a report (killed, or crashed)");
		return;
	}
	broker_unwatch(b, u->report);
	close(u->report);
	if (u->pidfd >= 0)
		close(u->pidfd);
	u->report = u->pidfd = -1;
	u->phase = UPGRADE_READY;
	clock_gettime(CLOCK_MONOTONIC, &u->since);
	log_event("upgrade", "phase=checked binary=%s", u->self);
}

/* Nothing is in flight that the state does not carry. */
static bool
quiescent(const struct broker *b)
{
	return !b->verifier.busy && !b->verifier.late &&
	    b->closer.nwaiting == 0;
}

static void
upgrade_exec(struct broker *b)
{
	struct upgrade *u = &b->upgrade;
	char err[256], num[16];
	int fd;

	clock_gettime(CLOCK_MONOTONIC, &u->exec_at);
	audit_flush(b, true);
	/* What it holds is released as it exits; the new image forks its own. */
	closer_stop(b);
	if ((fd = state_save(b, err, sizeof(err))) < 0) {
		closer_start(b, false);
		u->exec_at = (struct timespec){ 0 };
		upgrade_failed(b, "writing the state: %s", err);
		return;
	}
	log_event("upgrade", "phase=exec binary=%s sessions=%u", u->self,
	    b->reg.nsessions);
	inherit_all(b, true);
	set_inherit(fd, &(int){ 1 });
	snprintf(num, sizeof(num), "%d", fd);
	(void)setenv(ENV_STATE_FD, num, 1);
	execve(u->self, u->argv, environ);
	/* Still here: the old image serves on. */
	err[0] = '\0';
	snprintf(err, sizeof(err), "%s", strerror(errno));
	(void)unsetenv(ENV_STATE_FD);
	inherit_all(b, false);
	close(fd);
	closer_start(b, false);
	u->exec_at = (struct timespec){ 0 };
	upgrade_failed(b, "execve %s: %s", u->self, err);
}

/* After each loop turn: time the check out, or exec once quiescent. */
void
upgrade_continue(struct broker *b)
{
	struct upgrade *u = &b->upgrade;

	if (u->phase == UPGRADE_CHECKING &&
	    broker_elapsed_ms(&u->since) > UPGRADE_CHECK_MS)
		upgrade_failed(b, "the new binary's check did not report "
		    "within %d ms", UPGRADE_CHECK_MS);
	if (u->phase != UPGRADE_READY)
		return;
	if (quiescent(b)) {
		upgrade_exec(b);
		return;
	}
	if (broker_elapsed_ms(&u->since) > UPGRADE_QUIESCE_MS)
		upgrade_failed(b, "the verifier or the closer stayed busy for "
		    "%d ms", UPGRADE_QUIESCE_MS);
}

int
upgrade_timeout_ms(const struct broker *b)
{
	const struct upgrade *u = &b->upgrade;

	if (u->phase == UPGRADE_READY)
		return 10;	/* until quiescent */
	if (u->phase == UPGRADE_CHECKING)
		return 100;	/* the check's deadline */
	return -1;
}

/* ---- the new image: adopting the state ---- */

enum adopt_mode {
	ADOPT_EXEC,		/* an upgrade's new image: everything */
	ADOPT_CHECK,		/* its check: everything, nothing for good */
	ADOPT_RESTART,		/* a restart: the store's (store.c) */
};

static struct timespec
ts_of(int64_t ns)
{
	return (struct timespec){ .tv_sec = ns / 1000000000,
	    .tv_nsec = ns % 1000000000 };
}


/* The fds adopted so far: each may be named once. */
struct adopt {
	struct broker	*b;
	BrokerState	*st;
	uint8_t		*seen;		/* a bit per fd number */
	size_t		nfds;
	bool		check;		/* the check: adopt nothing for good */
	/* A restart (store.c): the broker's own fds are its own, fresh; a
	 * listener or account whose fd does not check out is dropped. */
	bool		restart;
	pid_t		writer;		/* the broker that wrote the state */
	uint64_t	last_session;	/* ids go up, as the broker made them */
	unsigned int	dropped;
	char		err[256];
};

static bool
fd_new(struct adopt *a, int fd, const char *kind, const char *what)
{
	char link[128];

	if (fd < 0 || (size_t)fd >= a->nfds || fcntl(fd, F_GETFD) < 0) {
		snprintf(a->err, sizeof(a->err), "%s: fd %d is not open", what,
		    fd);
		return false;
	}
	if (a->seen[fd / 8] & (1u << (fd % 8))) {
		snprintf(a->err, sizeof(a->err), "%s: fd %d is named twice",
		    what, fd);
		return false;
	}
	if (kind != NULL && strcmp(proc_fd_link(fd, link, sizeof(link)),
	    kind) != 0) {
		snprintf(a->err, sizeof(a->err), "%s: fd %d is %s, not %s",
		    what, fd, link[0] ? link : "unreadable", kind);
		return false;
	}
	a->seen[fd / 8] |= (uint8_t)(1u << (fd % 8));
	return true;
}

/* A connected unix socket of the type the broker uses. */
static bool
fd_socket(struct adopt *a, int fd, bool listening, const char *what)
{
	int type = 0, acc = 0, dom = 0;
	socklen_t len = sizeof(int);

	if (!fd_new(a, fd, NULL, what))
		return false;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
	    (len = sizeof(int), getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom,
	    &len)) < 0 ||
	    (len = sizeof(int), getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc,
	    &len)) < 0 || type != SOCK_SEQPACKET || dom != AF_UNIX ||
	    (acc != 0) != listening) {
		snprintf(a->err, sizeof(a->err), "%s: fd %d is not a %s unix "
		    "seqpacket socket", what, fd, listening ? "listening" :
		    "connected");
		return false;
	}
	/* The loop never blocks on one (the old broker's were so already). */
	if (!a->check && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		snprintf(a->err, sizeof(a->err), "%s: fd %d: fcntl: %s", what,
		    fd, strerror(errno));
		return false;
	}
	return true;
}

/* The pid a pidfd refers to: -1 if it exited, 0 if unreadable. */
static pid_t
pidfd_pid(int fd)
{
	char value[32];

	return proc_fdinfo_field(fd, "Pid:", value, sizeof(value)) ?
	    (pid_t)atoi(value) : 0;
}

static bool
fd_pidfd(struct adopt *a, int fd, pid_t pid, const char *what)
{
	pid_t is;

	if (!fd_new(a, fd, FD_KIND_PIDFD, what))
		return false;
	if ((is = pidfd_pid(fd)) != pid && is != -1) {
		snprintf(a->err, sizeof(a->err), "%s: pidfd %d is of pid %d, "
		    "not %d", what, fd, (int)is, (int)pid);
		return false;
	}
	return true;
}

/* What the broker counts, and its uids' back-off: kept by any adoption. */
static void
adopt_counters_of_broker(struct adopt *a)
{
	struct broker *b = a->b;
	BrokerState *st = a->st;
	size_t i;

	b->reg.next_id = st->next_id;
	b->ticks = st->ticks;
	b->closer_replaced = st->closer_replaced;
	b->upgrade.count = a->restart ? st->upgrades - 1 : st->upgrades;
	if (a->restart && !b->cfg.socket_activated) {
		b->sock_dev = st->sock_dev;	/* unlinked at exit, if still it */
		b->sock_ino = st->sock_ino;
	}
	for (i = 0; i < st->n_backoff && i < VERIFIER_BACKOFF_UIDS; i++) {
		b->verifier.backoff[i].uid = st->backoff[i]->uid;
		b->verifier.backoff[i].until = st->backoff[i]->until_ms;
	}
}

static void
adopt_fixed(struct adopt *a)
{
	struct broker *b = a->b;
	BrokerState *st = a->st;
	struct stat sb, dev;

	if (!fd_socket(a, st->listen_fd, true, "listening socket"))
		fatalx("upgrade: %s", a->err);
	b->listen_fd = st->listen_fd;
	b->cfg.socket_activated = st->socket_activated;
	b->passrights = getsockopt(b->listen_fd, SOL_SOCKET, SO_PASSRIGHTS,
	    &(int){ 0 }, &(socklen_t){ sizeof(int) }) == 0;
	b->sock_dev = st->sock_dev;
	b->sock_ino = st->sock_ino;
	b->lock_fd = -1;
	if (st->lock_fd >= 0) {
		if (!fd_new(a, st->lock_fd, NULL, "lock file") ||
		    fstat(st->lock_fd, &sb) < 0 || !S_ISREG(sb.st_mode))
			fatalx("upgrade: %s", a->err[0] ? a->err :
			    "the lock fd is not a file");
		b->lock_fd = st->lock_fd;
	}
	b->devfd = -1;
	b->via_syscall = st->devfd < 0;
	if (st->devfd >= 0) {
		if (!fd_new(a, st->devfd, NULL, "device") ||
		    fstat(st->devfd, &sb) < 0 || !S_ISCHR(sb.st_mode) ||
		    stat(b->cfg.device_path, &dev) < 0 ||
		    dev.st_rdev != sb.st_rdev)
			fatalx("upgrade: %s", a->err[0] ? a->err :
			    "the device fd is not the configured device");
		b->devfd = st->devfd;
	}
	if (!fd_new(a, st->timerfd, FD_KIND_TIMER, "timer") ||
	    !fd_new(a, st->sigfd, FD_KIND_SIGNAL, "signals"))
		fatalx("upgrade: %s", a->err);
	b->timerfd = st->timerfd;
	b->sigfd = st->sigfd;
	if (st->notify_fd >= 0) {
		if (!fd_new(a, st->notify_fd, NULL, "notify socket"))
			fatalx("upgrade: %s", a->err);
		sdnotify_adopt(st->notify_fd);
	}
	adopt_counters_of_broker(a);
	if (st->has_exec_started_ns)
		b->upgrade.exec_at = ts_of(st->exec_started_ns);
	if ((b->upgrade.jailed = st->has_filter_digest)) {
		if (st->filter_digest.len != SHA256_LEN)
			fatalx("upgrade: the filter digest is not SHA-256");
		memcpy(b->upgrade.filter_digest, st->filter_digest.data,
		    SHA256_LEN);
	}
}

static void
adopt_verifier(struct adopt *a)
{
	struct verifier *v = &a->b->verifier;
	BrokerState *st = a->st;
	struct ucred cred;
	socklen_t len = sizeof(cred);

	uint8_t abi[SHA256_LEN];

	v->sock = -1;
	v->w = (struct watch){ .kind = WATCH_VERIFIER };
	TAILQ_INIT(&v->queue);
	if (st->verifier_sock < 0)
		return;
	verifier_abi(abi);
	if (!st->has_verifier_abi || st->verifier_abi.len != SHA256_LEN ||
	    memcmp(st->verifier_abi.data, abi, SHA256_LEN) != 0)
		fatalx("upgrade: this binary's verifier differs from the one "
		    "running (its protocol or the client's fragment changed), "
		    "and a jailed broker cannot start another: restart the "
		    "broker to take it");
	/* A socketpair's credentials are its maker's: the old broker's. */
	if (!fd_socket(a, st->verifier_sock, false, "verifier") ||
	    getsockopt(st->verifier_sock, SOL_SOCKET, SO_PEERCRED, &cred,
	    &len) < 0 || cred.pid != a->writer)
		fatalx("upgrade: %s", a->err[0] ? a->err :
		    "the verifier's socket is not the broker's socketpair");
	v->sock = st->verifier_sock;
	v->pid = st->verifier_pid;
	v->seq = st->verifier_seq;
	if (broker_watch(a->b, v->sock, &v->w, EPOLLIN) < 0)
		fatal("upgrade: epoll_ctl");
}

static void	drop_fds(struct adopt *, const int *, size_t, unsigned int,
		    const char *, uint64_t);
static unsigned int seen_mask(const struct adopt *, const int *, size_t);

static void
adopt_listeners(struct adopt *a)
{
	size_t i;

	for (i = 0; i < a->st->n_listeners; i++) {
		UffdBroker__State__V1__Listener *m = a->st->listeners[i];
		struct listener *l;

		if (m->id == 0 || registry_listener_by_id(&a->b->reg, m->id) != NULL)
			fatalx("upgrade: listener id %llu is zero or named "
			    "twice", (unsigned long long)m->id);
		if (!fd_new(a, m->fd, FD_KIND_LISTENER, "listener")) {
			if (!a->restart)
				fatalx("upgrade: listener %llu: %s",
				    (unsigned long long)m->id, a->err);
			drop_fds(a, &m->fd, 1, seen_mask(a, &m->fd, 1),
			    "listener", m->id);
			continue;
		}
		if ((l = listener_new(a->b, m->fd, m->id, m->uid,
		    m->max_orphans)) == NULL)
			fatalx("upgrade: listener %llu: held twice, or out of "
			    "memory", (unsigned long long)m->id);
		l->refs = 0;
		l->misses = m->misses;
		l->has_last_id = m->has_last_id;
		l->last_id = m->last_id;
		if (m->orphaned_ns != 0) {
			l->orphaned.tv_sec = m->orphaned_ns / 1000000000;
			l->orphaned.tv_nsec = m->orphaned_ns % 1000000000;
		}
	}
}

/* The accounts, by mm_id: adopted as sessions and records name them. */
struct accounts {
	struct account	**v;
	size_t		n;
};

static struct account *
account_of(struct adopt *a, struct accounts *acc, uint64_t mm_id)
{
	size_t i;

	for (i = 0; i < acc->n; i++)
		if (acc->v[i]->mm_id == mm_id)
			return acc->v[i];
	return NULL;
}

static void
adopt_accounts(struct adopt *a, struct accounts *acc)
{
	size_t i;

	if ((acc->v = calloc(a->st->n_accounts + 1, sizeof(*acc->v))) == NULL)
		fatal("upgrade: calloc");
	for (i = 0; i < a->st->n_accounts; i++) {
		UffdBroker__State__V1__Account *m = a->st->accounts[i];
		struct account *ac;

		if (m->mm_id == 0 || account_of(a, acc, m->mm_id) != NULL)
			fatalx("upgrade: account %llu named twice, or zero",
			    (unsigned long long)m->mm_id);
		if (!fd_new(a, m->tracker, FD_KIND_EPOLL, "tracker")) {
			if (!a->restart)
				fatalx("upgrade: account %llu: %s",
				    (unsigned long long)m->mm_id, a->err);
			drop_fds(a, &m->tracker, 1, seen_mask(a,
			    &m->tracker, 1), "account", m->mm_id);
			continue;
		}
		if ((ac = calloc(1, sizeof(*ac))) == NULL)
			fatal("upgrade: calloc");
		ac->b = a->b;
		ac->mm_id = m->mm_id;
		ac->tracker = m->tracker;
		ac->live_bound = m->live_bound;
		ac->unseen = m->unseen;
		acc->v[acc->n++] = ac;
	}
}

static struct rule *
rule_named(struct broker *b, const char *name)
{
	size_t i;

	for (i = 0; i < b->policy->nrules; i++)
		if (strcmp(b->policy->rules[i].name, name) == 0)
			return &b->policy->rules[i];
	return NULL;
}

/*
 * A session's record against the kernel: its socket's peer is the process,
 * uid and gid it says (SO_PEERCRED: the kernel's, not the record's), its
 * pidfd that process's, its fds of their kinds. False with a->err set.
 */
static bool
session_checks(struct adopt *a, const UffdBroker__State__V1__Session *m)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (m->state >= SESSION_DEAD || m->proof > PROOF_PROBE ||
	    m->id == 0 || m->id > a->st->next_id) {
		snprintf(a->err, sizeof(a->err), "state %u, proof %u or id "
		    "out of range", m->state, m->proof);
		return false;
	}
	if (!fd_socket(a, m->sock, false, "socket"))
		return false;
	if (getsockopt(m->sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
	    cred.pid != m->pid || cred.uid != m->uid || cred.gid != m->gid) {
		snprintf(a->err, sizeof(a->err), "socket's peer is not pid %d "
		    "uid %u gid %u", (int)m->pid, m->uid, m->gid);
		return false;
	}
	if (!fd_pidfd(a, m->pidfd, m->pid, "pidfd"))
		return false;
	if (m->probe_uffd >= 0 &&
	    !fd_new(a, m->probe_uffd, FD_KIND_UFFD, "probe"))
		return false;
	if (m->proof_fd >= 0 &&
	    !fd_new(a, m->proof_fd, FD_KIND_LISTENER, "listener to prove"))
		return false;
	if ((m->proof == PROOF_FILTER) != (m->proof_fd >= 0) ||
	    (m->proof == PROOF_PROBE && m->probe_uffd < 0)) {
		snprintf(a->err, sizeof(a->err), "proof without its fd");
		return false;
	}
	/* Only a forked session waiting for its probe has no listener yet. */
	if (m->state >= SESSION_VERIFY && m->refusal == NULL &&
	    registry_listener_by_id(&a->b->reg, m->listener) == NULL &&
	    !(m->forked && m->listener == 0 &&
	    m->state == SESSION_PROBE_CREATE)) {
		snprintf(a->err, sizeof(a->err), "listener %llu is not in the "
		    "state", (unsigned long long)m->listener);
		return false;
	}
	if (m->state == SESSION_READY && m->probe_uffd < 0) {
		snprintf(a->err, sizeof(a->err), "ready without a probe");
		return false;
	}
	if (m->id <= a->last_session) {
		snprintf(a->err, sizeof(a->err), "session ids out of order");
		return false;
	}
	if (m->state > SESSION_HELLO && m->refusal == NULL &&
	    !handshake_hello_check(WIRE_VERSION, m->dummy_page, m->page_size,
	    &(WireStatus){ 0 }, a->err, sizeof(a->err)))
		return false;
	return true;
}

static bool
is_seen(const struct adopt *a, int fd)
{
	return fd >= 0 && (size_t)fd < a->nfds &&
	    (a->seen[fd / 8] & (1u << (fd % 8)));
}

/* Which of a record's fds other records had claimed before its checks. */
static unsigned int
seen_mask(const struct adopt *a, const int *fds, size_t n)
{
	unsigned int mask = 0;
	size_t i;

	for (i = 0; i < n; i++)
		if (is_seen(a, fds[i]))
			mask |= 1u << i;
	return mask;
}

/*
 * A record whose fds did not check out: the fds it claimed, and those its
 * checks did not reach, are closed (each once), and unclaimed again; never
 * another record's (before: set in before), nor the broker's own.
 */
static void
drop_fds(struct adopt *a, const int *fds, size_t n, unsigned int before,
    const char *what, uint64_t id)
{
	char quoted[LOG_QUOTED_MAX];
	size_t i, j;
	bool twice;

	log_event("resume_dropped", "%s=%llu reason=%s effect=\"its fds are "
	    "closed\"", what, (unsigned long long)id,
	    log_quote(quoted, sizeof(quoted), a->err));
	a->dropped++;
	for (i = 0; i < n; i++) {
		if (fds[i] < 3 || (size_t)fds[i] >= a->nfds ||
		    (before & (1u << i)) || fds[i] == a->b->epfd)
			continue;
		for (j = 0, twice = false; j < i; j++)
			twice |= fds[j] == fds[i];
		if (twice)
			continue;
		a->seen[fds[i] / 8] &= (uint8_t)~(1u << (fds[i] % 8));
		if (a->restart)
			store_forget_fd(a->b, fds[i]);
		if (!a->check)
			close(fds[i]);
	}
}

static void
adopt_session(struct adopt *a, struct accounts *acc,
    const UffdBroker__State__V1__Session *m)
{
	struct broker *b = a->b;
	int fds[] = { m->sock, m->pidfd, m->probe_uffd, m->proof_fd };
	struct account *ac;
	struct session *s;
	struct listener *l;

	unsigned int before = seen_mask(a, fds, 4);

	a->err[0] = '\0';
	ac = account_of(a, acc, m->account);
	if (!session_checks(a, m) || ac == NULL) {
		if (ac == NULL && a->err[0] == '\0')
			snprintf(a->err, sizeof(a->err), "account %llu is not "
			    "in the state", (unsigned long long)m->account);
		drop_fds(a, fds, 4, before, "session", m->id);
		return;
	}
	a->last_session = m->id;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		fatal("upgrade: calloc");
	s->b = b;
	s->id = m->id;
	s->state = m->state;
	s->sock = m->sock;
	s->pidfd = m->pidfd;
	s->pid = m->pid;
	s->uid = m->uid;
	s->gid = m->gid;
	s->refusal = m->refusal ? strdup(m->refusal) : NULL;
	s->forked = m->forked;
	s->probe_uffd = m->probe_uffd;
	s->proof_fd = m->proof_fd;
	s->unwanted_fds = m->unwanted_fds;
	s->quota_hit = m->quota_hit;
	s->grant.kernel_faults = m->grant->kernel_faults;
	s->grant.features = m->grant->features;
	s->grant.max_uffds = m->grant->max_uffds;
	s->grant.max_sessions_per_uid = m->grant->max_sessions_per_uid;
	s->grant.forked_sessions = m->grant->forked_sessions;
	s->grant.prove_filter = m->grant->prove_filter;
	snprintf(s->rule_name, sizeof(s->rule_name), "%s", m->rule);
	s->rule = m->has_rule ? rule_named(b, s->rule_name) : NULL;
	s->dummy_page = m->dummy_page;
	s->page_size = m->page_size;
	s->started = ts_of(m->started_ns);
	s->pending = m->pending;
	s->last_continue = ts_of(m->last_continue_ns);
	s->granted = m->granted;
	s->continued_id = m->continued_id;
	s->attach_ino = m->attach_ino;
	s->speaks_seq = m->speaks_seq;
	s->refused = m->refused;
	s->last_refusal = m->last_refusal ? strdup(m->last_refusal) : NULL;
	s->w_sock = (struct watch){ .kind = WATCH_SOCK, .s = s };
	s->w_pidfd = (struct watch){ .kind = WATCH_PIDFD, .s = s };
	s->restarted = a->restart;
	s->acct = ac;
	ac->refs++;
	if (s->state == SESSION_READY)
		ac->pending += s->pending;
	if (m->listener != 0 && (l = registry_listener_by_id(&b->reg, m->listener)) != NULL) {
		s->lis = l;
		l->refs++;
		TAILQ_INSERT_TAIL(&l->members, s, lis_entry);
	}
	registry_add_session(&b->reg, s);
	/* Watched with no events until the proofs are asked again (below). */
	if (broker_watch(b, s->sock, &s->w_sock, 0) < 0 ||
	    broker_watch(b, s->pidfd, &s->w_pidfd, EPOLLIN) < 0)
		fatal("upgrade: epoll_ctl");
	s->proof = m->proof;
}

static void
adopt_spent(struct adopt *a, struct accounts *acc,
    const UffdBroker__State__V1__Spent *m)
{
	int fds[] = { m->pidfd, m->probe_uffd };
	unsigned int before = seen_mask(a, fds, 2);
	struct spent *sp;
	struct account *ac = NULL;

	a->err[0] = '\0';
	/* A probe exactly when an address space is named (session.c). */
	if ((m->probe_uffd >= 0) != (m->account != 0))
		snprintf(a->err, sizeof(a->err), "probe and account disagree");
	if (a->err[0] != '\0' ||
	    (m->pidfd >= 0 && !fd_pidfd(a, m->pidfd, m->pid, "pidfd")) ||
	    (m->probe_uffd >= 0 && !fd_new(a, m->probe_uffd, FD_KIND_UFFD,
	    "probe")) ||
	    (m->account != 0 && (ac = account_of(a, acc, m->account)) == NULL)) {
		if (a->err[0] == '\0')
			snprintf(a->err, sizeof(a->err), "account %llu is not "
			    "in the state", (unsigned long long)m->account);
		drop_fds(a, fds, 2, before, "spent", m->id);
		return;
	}
	if ((sp = calloc(1, sizeof(*sp))) == NULL)
		fatal("upgrade: calloc");
	sp->b = a->b;
	sp->id = m->id;
	sp->pid = m->pid;
	sp->uid = m->uid;
	sp->pidfd = m->pidfd;
	sp->probe_uffd = m->probe_uffd;
	sp->acct = ac;
	if (ac != NULL)
		ac->refs++;
	sp->dummy_page = m->dummy_page;
	sp->page_size = m->page_size;
	registry_add_spent(&a->b->reg, sp);
}

static void
adopt_counters(struct adopt *a)
{
	struct rule *r;
	size_t i;

	a->b->policy->no_match = a->st->no_match;
	for (i = 0; i < a->st->n_rules; i++) {
		const UffdBroker__State__V1__RuleCounters *m = a->st->rules[i];

		if ((r = rule_named(a->b, m->name)) == NULL)
			continue;	/* the policy on disk changed since */
		r->sessions = m->sessions;
		r->refusals = m->refusals;
		r->granted = m->granted;
		r->refused = m->refused;
	}
}

/* Accounts nobody names any more are closed (their trackers with them). */
static void
settle_accounts(struct adopt *a, struct accounts *acc)
{
	size_t i;

	for (i = 0; i < acc->n; i++) {
		if (acc->v[i]->refs > 0)
			continue;
		if (a->restart)
			store_forget_fd(a->b, acc->v[i]->tracker);
		if (!a->check)
			close(acc->v[i]->tracker);
		free(acc->v[i]);
	}
	free(acc->v);
}

/*
 * Adopt what the state names. Returns the number of sessions and records
 * dropped (their fds did not check out); structural faults are fatal.
 */
static unsigned int
adopt(struct broker *b, BrokerState *st, enum adopt_mode mode)
{
	bool check = mode == ADOPT_CHECK;
	struct adopt a = { .b = b, .st = st, .check = check,
	    .restart = mode == ADOPT_RESTART,
	    .writer = check ? getppid() : getpid() };
	struct accounts acc = { 0 };
	struct session *s;
	size_t i;

	a.nfds = b->nofile;
	if ((a.seen = calloc(a.nfds / 8 + 1, 1)) == NULL)
		fatal("upgrade: calloc");
	b->store.adopting = true;	/* in the store already */
	if (a.restart)
		adopt_counters_of_broker(&a);
	else {
		adopt_fixed(&a);
		adopt_verifier(&a);
	}
	adopt_listeners(&a);
	adopt_accounts(&a, &acc);
	for (i = 0; i < st->n_sessions; i++)
		adopt_session(&a, &acc, st->sessions[i]);
	for (i = 0; i < st->n_spent; i++)
		adopt_spent(&a, &acc, st->spent[i]);
	settle_accounts(&a, &acc);
	adopt_counters(&a);
	free(a.seen);
	b->store.adopting = false;
	/*
	 * Sessions' fd switches and watches, as their state wants them. Not
	 * in a check: the switch is the socket's, shared with the broker that
	 * serves on, whose sessions may have moved on since the state.
	 */
	if (check)
		return a.dropped;
	TAILQ_FOREACH(s, REGISTRY_SESSIONS(&b->reg), entry)
		session_resync(s);
	return a.dropped;
}

/* Proofs that waited in the old broker's queue are asked again, in order. */
static void
ask_again(struct broker *b)
{
	struct session *s, *next;

	/* An answer may end a session at once: next is taken first. */
	for (s = TAILQ_FIRST(REGISTRY_SESSIONS(&b->reg)); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		if (s->proof != PROOF_NONE)
			verifier_ask(s, s->proof);
	}
}

/*
 * Listeners nobody holds a reference to wait for a forked child, as an
 * orphan does; one of a session the state lost is closed at its timeout.
 */
static void
settle_listeners(struct broker *b)
{
	struct listener *l;

	TAILQ_FOREACH(l, REGISTRY_LISTENERS(&b->reg), entry)
		if (l->refs == 0 && l->orphaned.tv_sec == 0 &&
		    l->orphaned.tv_nsec == 0)
			clock_gettime(CLOCK_MONOTONIC, &l->orphaned);
}

/*
 * A restart's adoption (store.c): the sessions, listeners, accounts,
 * spent records and counters of a state whose fd numbers are already this
 * process's. Returns the number dropped.
 */
unsigned int
upgrade_adopt_restart(struct broker *b, BrokerState *st)
{
	unsigned int dropped = adopt(b, st, ADOPT_RESTART);
	struct session *s;

	settle_listeners(b);
	ask_again(b);
	TAILQ_FOREACH(s, REGISTRY_SESSIONS(&b->reg), entry)
		if (s->proof == PROOF_NONE)
			session_watch_sync(s);
	return dropped;
}

bool
upgrade_resuming(void)
{
	return getenv(ENV_STATE_FD) != NULL;
}

static int
env_fd(const char *name)
{
	const char *v = getenv(name);
	char *end;
	long n;

	if (v == NULL)
		return -1;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || *end != '\0' || end == v || n < 3 || n > INT_MAX)
		fatalx("%s=%s is not an fd number", name, v);
	return (int)n;
}

/*
 * The new image's start, instead of broker_setup(): the state read and
 * checked, its fds adopted. In a check, the report fd gets "ok" or why
 * not and the process exits; otherwise it returns to serve.
 */
void
upgrade_resume(struct broker *b)
{
	int fd = env_fd(ENV_STATE_FD), report = env_fd(ENV_CHECK);
	bool check = report >= 0;
	BrokerState *st;
	char err[256];
	unsigned int dropped;
	uint64_t generation;
	struct session *s;

	(void)unsetenv(ENV_STATE_FD);
	(void)unsetenv(ENV_CHECK);
	b->upgrade.resuming = true;
	if (check) {
		log_set_report(report);
		(void)fcntl(report, F_SETFD, FD_CLOEXEC);
	}
	(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	/* In a check, the state is the parent's; after an exec, our own. */
	st = state_read(fd, check ? getppid() : getpid(), err, sizeof(err));
	close(fd);
	if (st == NULL)
		fatalx("upgrade: state refused: %s", err);
	broker_setup_common(b);
	dropped = adopt(b, st, check ? ADOPT_CHECK : ADOPT_EXEC);
	generation = st->has_generation ? st->generation : 0;
	state_free(st);
	broker_setup_loop(b);
	if (check && dropped > 0)
		fatalx("upgrade: %u sessions or records would be dropped",
		    dropped);
	jail_resume(b);
	if (check) {
		(void)!write(report, "ok\n", 3);
		_exit(0);
	}
	inherit_all(b, false);
	store_init(b);		/* new state memfds, in the old ones' names */
	b->store.generation = generation;	/* on from the old image's */
	store_publish(b);
	settle_listeners(b);
	ask_again(b);
	TAILQ_FOREACH(s, REGISTRY_SESSIONS(&b->reg), entry)
		if (s->proof == PROOF_NONE)
			session_watch_sync(s);
	log_event("resumed", "upgrades=%u sessions=%u listeners=%zu "
	    "dropped=%u handover_ms=%.3f", b->upgrade.count, b->reg.nsessions,
	    b->reg.nby_file, dropped, b->upgrade.exec_at.tv_sec != 0 ?
	    broker_elapsed_ms(&b->upgrade.exec_at) : 0.0);
	b->upgrade.exec_at = (struct timespec){ 0 };
}
