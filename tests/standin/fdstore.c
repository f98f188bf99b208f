/* SPDX-License-Identifier: ISC */
/*
 * uffd-fdstore - a stand-in for systemd's service manager, as far as the
 * broker's restart needs one, for the tests (this machine does not run
 * systemd as PID 1). It does what a unit with Type=notify, Restart=always
 * and FileDescriptorStoreMax= does:
 *
 *   - starts the service with $NOTIFY_SOCKET (a datagram socket of its own)
 *     and $FDSTORE;
 *   - keeps the fds sent with FDSTORE=1 under their FDNAME=, drops those
 *     named by FDSTOREREMOVE=1 (the sd_notify(3) protocol);
 *   - when the service dies other than by a clean exit, starts it again
 *     after RESTART_MS with every stored fd passed as sd_listen_fds(3) does:
 *     fds 3.., $LISTEN_FDS, $LISTEN_FDNAMES, $LISTEN_PID;
 *   - on SIGTERM, stops the service (SIGTERM) and exits when it has.
 *
 * It writes a line to its standard output at each start ("started pid=N
 * fds=M") and each readiness ("ready pid=N"), and, on SIGUSR1, the names it
 * holds to the file given as --dump. Not installed.
 *
 *   uffd-fdstore --notify PATH --dump FILE -- BROKER ARGS...
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_STORED	16384
#define RESTART_MS	100
#define NAME_MAX_LEN	255

struct stored {
	int	fd;
	char	name[NAME_MAX_LEN + 1];
};

static struct stored store[MAX_STORED];
static size_t nstored;
static char **service;
static const char *dump_path;

static void
drop_named(const char *name)
{
	size_t i = 0;

	while (i < nstored) {
		if (strcmp(store[i].name, name) == 0) {
			close(store[i].fd);
			store[i] = store[--nstored];
		} else
			i++;
	}
}

static void
keep(int fd, const char *name)
{
	if (nstored == MAX_STORED) {
		fprintf(stderr, "uffd-fdstore: store full, %s dropped\n", name);
		close(fd);
		return;
	}
	store[nstored].fd = fd;
	snprintf(store[nstored].name, sizeof(store[nstored].name), "%s", name);
	nstored++;
}

/* One datagram: assignments, one a line, and maybe fds. */
static void
notified(int sock, pid_t service_pid)
{
	char buf[4096], cbuf[CMSG_SPACE(sizeof(int) * 16)], name[NAME_MAX_LEN + 1];
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) - 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
	    .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;
	int fds[16], nfds = 0, i;
	bool fdstore = false, remove = false;
	char *line, *save;
	ssize_t n;

	n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n < 0)
		return;
	buf[n] = '\0';
	for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));

			for (i = 0; i < k && nfds < 16; i++)
				memcpy(&fds[nfds++], CMSG_DATA(c) + i * sizeof(int),
				    sizeof(int));
		}
	name[0] = '\0';
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (strcmp(line, "FDSTORE=1") == 0)
			fdstore = true;
		else if (strcmp(line, "FDSTOREREMOVE=1") == 0)
			remove = true;
		else if (strncmp(line, "FDNAME=", 7) == 0)
			snprintf(name, sizeof(name), "%s", line + 7);
		else if (strcmp(line, "READY=1") == 0) {
			printf("ready pid=%d\n", (int)service_pid);
			fflush(stdout);
		}
	}
	if (remove && name[0] != '\0')
		drop_named(name);
	for (i = 0; i < nfds; i++) {
		if (fdstore)
			keep(fds[i], name[0] ? name : "stored");
		else
			close(fds[i]);
	}
}

/* Start the service, the stored fds at 3.. with their names. */
static pid_t
start(const char *notify_path)
{
	char count[16], pidtext[16], *names;
	size_t i, len = 1;
	int *high;
	pid_t pid;

	for (i = 0; i < nstored; i++)
		len += strlen(store[i].name) + 1;
	if ((names = calloc(1, len)) == NULL ||
	    (high = calloc(nstored + 1, sizeof(int))) == NULL)
		return -1;
	for (i = 0; i < nstored; i++) {
		if (i > 0)
			strcat(names, ":");
		strcat(names, store[i].name);
	}
	pid = fork();
	if (pid != 0) {
		free(names);
		free(high);
		if (pid > 0) {
			printf("started pid=%d fds=%zu\n", (int)pid, nstored);
			fflush(stdout);
		}
		return pid;
	}
	/* Out of the way of 3..3+n first, then into place. */
	for (i = 0; i < nstored; i++)
		if ((high[i] = fcntl(store[i].fd, F_DUPFD_CLOEXEC,
		    (int)(3 + nstored + 16))) < 0)
			_exit(127);
	for (i = 0; i < nstored; i++)
		if (dup2(high[i], (int)(3 + i)) < 0)
			_exit(127);
	snprintf(count, sizeof(count), "%zu", nstored);
	snprintf(pidtext, sizeof(pidtext), "%d", (int)getpid());
	setenv("NOTIFY_SOCKET", notify_path, 1);
	setenv("FDSTORE", "4096", 1);
	if (nstored > 0) {
		setenv("LISTEN_FDS", count, 1);
		setenv("LISTEN_FDNAMES", names, 1);
		setenv("LISTEN_PID", pidtext, 1);
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	execv(service[0], service);
	_exit(127);
}

static void
dump(void)
{
	FILE *f;
	size_t i;

	if (dump_path == NULL || (f = fopen(dump_path, "we")) == NULL)
		return;
	for (i = 0; i < nstored; i++)
		fprintf(f, "%s\n", store[i].name);
	fclose(f);
}

int
main(int argc, char **argv)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	const char *notify_path = NULL;
	struct signalfd_siginfo si;
	struct pollfd pfd[3];
	sigset_t mask;
	int sock, sigfd, pidfd = -1, status, i;
	bool stopping = false;
	pid_t pid = 0;

	for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--notify") == 0 && i + 1 < argc)
			notify_path = argv[++i];
		else if (strcmp(argv[i], "--dump") == 0 && i + 1 < argc)
			dump_path = argv[++i];
	}
	if (notify_path == NULL || i + 1 >= argc) {
		fprintf(stderr, "usage: uffd-fdstore --notify PATH [--dump FILE] "
		    "-- SERVICE ARGS...\n");
		return 2;
	}
	service = argv + i + 1;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", notify_path);
	unlink(notify_path);
	if ((sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(sock, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		perror("uffd-fdstore: notify socket");
		return 1;
	}
	/* Big enough for a storm of FDSTORE messages. */
	setsockopt(sock, SOL_SOCKET, SO_RCVBUF, &(int){ 8 << 20 }, sizeof(int));
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGUSR1);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sigfd = signalfd(-1, &mask, SFD_CLOEXEC);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	for (;;) {
		if (pidfd < 0 && !stopping) {
			if ((pid = start(notify_path)) < 0)
				return 1;
			pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
		}
		pfd[0] = (struct pollfd){ .fd = sock, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = sigfd, .events = POLLIN };
		pfd[2] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
		if (poll(pfd, pidfd >= 0 ? 3 : 2, -1) < 0 && errno != EINTR)
			return 1;
		/* The notifications before the exit: all of them. */
		if (pfd[0].revents & POLLIN) {
			notified(sock, pid);
			continue;
		}
		if (pfd[1].revents & POLLIN &&
		    read(sigfd, &si, sizeof(si)) == sizeof(si)) {
			if (si.ssi_signo == SIGUSR1) {
				dump();
				continue;
			}
			stopping = true;
			if (pidfd >= 0)
				kill(pid, SIGTERM);
			else
				break;
		}
		if (pidfd >= 0 && pfd[2].revents & POLLIN) {
			waitpid(pid, &status, 0);
			close(pidfd);
			pidfd = -1;
			printf("exited pid=%d status=0x%x\n", (int)pid, status);
			fflush(stdout);
			if (stopping || (WIFEXITED(status) &&
			    WEXITSTATUS(status) == 0))
				break;
			/* Restart=always, RestartSec= */
			usleep(RESTART_MS * 1000);
			/* What the service sent before it died. */
			while (poll(pfd, 1, 0) == 1)
				notified(sock, pid);
		}
	}
	while (nstored > 0)
		close(store[--nstored].fd);
	unlink(notify_path);
	return 0;
}
