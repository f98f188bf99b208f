/* SPDX-License-Identifier: ISC */
/*
 * vmm-swap.c - the multi-process VMM pattern of crosvm's vmm-swap, through
 * the broker.
 *
 * A main process maps guest memory from a memfd, creates the dead-uffd
 * checker, jails itself (uffdc_session_open) and forks a swap monitor and N
 * device processes. Each device process opens its own session
 * (uffdc_session_fork), obtains a uffd bound to its own address space and
 * sends it to the monitor, as does the main process. The monitor swaps the
 * guest memory out to a file, registers the guest region on every uffd
 * (uffdc_register_regions) and serves each fault from the swap file while
 * the devices read all of guest memory and check every page. Then:
 *   - device 0 balloons a range out (MADV_REMOVE): the monitor gets a remove
 *     event on device 0's uffd and serves those pages as zeroes from then on;
 *   - one device process is killed: the monitor's dead check finds its uffd
 *     dead, and the next swap-out's register_regions skips it;
 *   - the surviving devices read everything again, served from the new swap.
 *
 * Processes talk over socketpairs: main to each device and to the monitor
 * (one command byte, one answer byte), devices to the monitor (their uffd,
 * by SCM_RIGHTS).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "uffd-client.h"

#define MAX_DEVICES	16
#define MAIN_INDEX	MAX_DEVICES	/* the main process's uffd, after the devices */
#define BALLOON_FIRST	16		/* pages ballooned out by device 0 */
#define BALLOON_PAGES	16

/* Commands, main to device or monitor; answers are OK or FAIL. */
enum {
	CMD_TOUCH = 't',	/* device: read all guest memory, check it */
	CMD_TOUCH_BALLOONED = 'z', /* the same, ballooned pages read as zero */
	CMD_BALLOON = 'b',	/* device: MADV_REMOVE the balloon range */
	CMD_SWAP_OUT = 's',	/* monitor: swap out, register all uffds */
	CMD_DEAD_CHECK = 'd',	/* monitor: answer the number of dead uffds */
	CMD_QUIT = 'q',
	ANS_OK = 'k',
	ANS_FAIL = 'f',
};

struct guest {
	uint8_t		*mem;
	size_t		size, page, npages;
};

static const char *progname = "uffd-vmm-swap";

static void
die(const char *what, int err)
{
	fprintf(stderr, "%s[%d]: %s: %s\n", progname, (int)getpid(), what,
	    err ? uffdc_strerror(-err) : "failed");
	exit(1);
}

/* What page i of the guest holds before any balloon. */
static uint8_t
pattern(size_t i, size_t off)
{
	return (uint8_t)(i * 131 + off / 64 + 1);
}

static int
send_byte(int fd, char c)
{
	return send(fd, &c, 1, MSG_NOSIGNAL) == 1 ? 0 : -1;
}

static int
recv_byte(int fd)
{
	char c;

	return recv(fd, &c, 1, 0) == 1 ? (unsigned char)c : -1;
}

static int
send_fd(int sock, int index, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = &index, .iov_len = sizeof(index) };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &msg, MSG_NOSIGNAL) == sizeof(index) ? 0 : -1;
}

static int
recv_fd(int sock, int *index)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = index, .iov_len = sizeof(*index) };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *c;
	int fd;

	if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != sizeof(*index))
		return -1;
	c = CMSG_FIRSTHDR(&msg);
	if (c == NULL || c->cmsg_type != SCM_RIGHTS ||
	    c->cmsg_len != CMSG_LEN(sizeof(int)))
		return -1;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/* ---- device processes ---- */

/* Read every page, starting at a different place in each device. */
static bool
touch_all(const struct guest *g, int index, bool ballooned)
{
	size_t n, i, off;

	for (n = 0; n < g->npages; n++) {
		i = (n + (size_t)index * g->npages / 4) % g->npages;
		for (off = 0; off < g->page; off += 512) {
			uint8_t want = pattern(i, off);

			if (ballooned && i >= BALLOON_FIRST &&
			    i < BALLOON_FIRST + BALLOON_PAGES)
				want = 0;
			if (((volatile uint8_t *)g->mem)[i * g->page + off] != want) {
				fprintf(stderr, "device %d: page %zu offset %zu "
				    "reads 0x%02x, expected 0x%02x\n", index, i,
				    off, g->mem[i * g->page + off], want);
				return false;
			}
		}
	}
	return true;
}

static int
device_main(const struct guest *g, struct uffdc_session *parent, int index,
    int ctl, int chan)
{
	struct uffdc_session *s;
	struct uffdc_uffd *u;
	int cmd, rc;
	bool ok;

	if ((rc = uffdc_session_fork(parent, &s)) < 0)
		die("device: uffdc_session_fork", rc);
	uffdc_session_close(parent);
	if ((rc = uffdc_create(s, UFFDC_FEATURES_DEFAULT, 0, &u)) < 0)
		die("device: uffdc_create", rc);
	if (send_fd(chan, index, uffdc_fd(u)) < 0)
		die("device: sending the uffd", errno);
	close(chan);
	while ((cmd = recv_byte(ctl)) > 0 && cmd != CMD_QUIT) {
		switch (cmd) {
		case CMD_TOUCH:
		case CMD_TOUCH_BALLOONED:
			ok = touch_all(g, index, cmd == CMD_TOUCH_BALLOONED);
			break;
		case CMD_BALLOON:
			/* Blocks until the monitor has read the remove event. */
			ok = madvise(g->mem + BALLOON_FIRST * g->page,
			    BALLOON_PAGES * g->page, MADV_REMOVE) == 0;
			break;
		default:
			ok = false;
		}
		send_byte(ctl, ok ? ANS_OK : ANS_FAIL);
	}
	uffdc_release(u);
	uffdc_session_close(s);
	return 0;
}

/* ---- the swap monitor ---- */

struct monitor {
	const struct guest *g;
	struct uffdc_deadcheck *dc;
	struct uffdc_uffd *uffds[MAX_DEVICES + 1];
	int		index[MAX_DEVICES + 1];
	size_t		n;
	int		swapfd;
	uint8_t		*removed;	/* per page: ballooned out, serve zeroes */
	uint8_t		*buf;
	unsigned long	faults, copies, zeroes, wakes, removes;
};

static const char *
who(const struct monitor *m, size_t k, char *buf, size_t len)
{
	if (m->index[k] == MAIN_INDEX)
		snprintf(buf, len, "main");
	else
		snprintf(buf, len, "device %d", m->index[k]);
	return buf;
}

/* Write the guest to the swap file, drop it, and register it everywhere. */
static int
swap_out(struct monitor *m)
{
	const struct guest *g = m->g;
	struct uffdc_range r = { g->mem, g->size };
	size_t k, live = 0;
	int rc;

	if ((rc = uffdc_unregister_regions(&r, 1, m->uffds, m->n)) < 0)
		return rc;
	if (pwrite(m->swapfd, g->mem, g->size, 0) != (ssize_t)g->size)
		return -errno;
	if (madvise(g->mem, g->size, MADV_REMOVE) < 0)
		return -errno;
	memset(m->removed, 0, g->npages);
	/* uffds of dead processes are skipped (-ESRCH), as crosvm's are. */
	if ((rc = uffdc_register_regions(&r, 1, m->uffds, m->n,
	    UFFDC_MODE_MISSING)) < 0)
		return rc;
	for (k = 0; k < m->n; k++)
		if (!uffdc_deadcheck_is_dead(m->dc, m->uffds[k]))
			live++;
	uffdc_deadcheck_reset(m->dc);
	printf("monitor: swapped out %zu KiB; register_regions over %zu uffds: "
	    "%zu live, %zu skipped (process gone)\n", g->size / 1024, m->n,
	    live, m->n - live);
	return 0;
}

static int
serve_fault(struct monitor *m, struct uffdc_uffd *u, uint64_t address)
{
	const struct guest *g = m->g;
	uint8_t *page = (uint8_t *)(uintptr_t)(address & ~(uint64_t)(g->page - 1));
	size_t i = (size_t)(page - g->mem);
	struct uffdc_progress pr = { 0 };
	int rc;

	if (page < g->mem || i >= g->size)
		return -EFAULT;
	i /= g->page;
	m->faults++;
	/*
	 * Another process's fault may have filled the shared page first:
	 * uffdc_fill() then leaves it and wakes this process's faulting thread.
	 */
	if (m->removed[i])
		rc = uffdc_fill(u, page, NULL, g->page, 0, &pr);
	else {
		if (pread(m->swapfd, m->buf, g->page, i * g->page) !=
		    (ssize_t)g->page)
			return -EIO;
		rc = uffdc_fill(u, page, m->buf, g->page, 0, &pr);
	}
	if (rc == 0 && pr.present > 0)
		m->wakes++;
	else if (rc == 0 && m->removed[i])
		m->zeroes++;
	else if (rc == 0)
		m->copies++;
	/* The process died while we served it: nothing left to wake. */
	return rc == -ESRCH ? 0 : rc;
}

static int
serve_events(struct monitor *m, size_t k)
{
	struct uffdc_event ev;
	char name[32];
	size_t i;
	int rc;

	while ((rc = uffdc_read_event(m->uffds[k], &ev)) == 1) {
		switch (ev.kind) {
		case UFFDC_EVENT_PAGEFAULT:
			if ((rc = serve_fault(m, m->uffds[k],
			    ev.pagefault.address)) < 0)
				return rc;
			break;
		case UFFDC_EVENT_REMOVE:
			m->removes++;
			for (i = (ev.remove.start - (uintptr_t)m->g->mem) /
			    m->g->page; i < (ev.remove.end -
			    (uintptr_t)m->g->mem) / m->g->page &&
			    i < m->g->npages; i++)
				m->removed[i] = 1;
			printf("monitor: remove event [0x%llx, 0x%llx) from %s: "
			    "%llu pages ballooned out\n",
			    (unsigned long long)ev.remove.start,
			    (unsigned long long)ev.remove.end,
			    who(m, k, name, sizeof(name)),
			    (unsigned long long)((ev.remove.end -
			    ev.remove.start) / m->g->page));
			break;
		default:
			fprintf(stderr, "monitor: unexpected event %d\n",
			    (int)ev.kind);
			return -EPROTO;
		}
	}
	/* A dead process's uffd reads as end of file: nothing more from it. */
	return rc == 0 || rc == -ESRCH ? 0 : rc;
}

static int
dead_check(struct monitor *m)
{
	char name[32];
	size_t k;
	int dead = 0;

	for (k = 0; k < m->n; k++)
		if (uffdc_deadcheck_is_dead(m->dc, m->uffds[k])) {
			printf("monitor: dead check: uffd of %s is dead\n",
			    who(m, k, name, sizeof(name)));
			dead++;
		}
	uffdc_deadcheck_reset(m->dc);
	return dead;
}

static int
monitor_main(const struct guest *g, struct uffdc_deadcheck *dc, int ctl,
    int chan, size_t nuffds)
{
	struct monitor m = { .g = g, .dc = dc };
	struct pollfd pfd[MAX_DEVICES + 2];
	size_t k;
	int cmd, fd, rc;

	m.removed = calloc(g->npages, 1);
	m.buf = malloc(g->page);
	m.swapfd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (m.removed == NULL || m.buf == NULL || m.swapfd < 0)
		die("monitor: set-up", errno);
	for (m.n = 0; m.n < nuffds; m.n++) {
		if ((fd = recv_fd(chan, &m.index[m.n])) < 0)
			die("monitor: receiving a uffd", errno);
		if ((rc = uffdc_adopt(fd, UFFDC_FEATURES_DEFAULT,
		    &m.uffds[m.n])) < 0)
			die("monitor: uffdc_adopt", rc);
		if ((rc = uffdc_deadcheck_register(dc, m.uffds[m.n])) < 0)
			die("monitor: uffdc_deadcheck_register", rc);
	}
	close(chan);
	printf("monitor: holds %zu uffds (%zu devices and main)\n", m.n,
	    m.n - 1);
	send_byte(ctl, ANS_OK);

	pfd[0] = (struct pollfd){ .fd = ctl, .events = POLLIN };
	for (k = 0; k < m.n; k++)
		pfd[k + 1] = (struct pollfd){ .fd = uffdc_fd(m.uffds[k]),
		    .events = POLLIN };
	for (;;) {
		if (poll(pfd, m.n + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("monitor: poll", errno);
		}
		for (k = 0; k < m.n; k++) {
			if (pfd[k + 1].revents & POLLIN &&
			    (rc = serve_events(&m, k)) < 0)
				die("monitor: serving", rc);
			/* A dead process's uffd hangs up: stop polling it. */
			if (pfd[k + 1].revents & (POLLHUP | POLLERR))
				pfd[k + 1].fd = -1;
		}
		if (!(pfd[0].revents & (POLLIN | POLLHUP)))
			continue;
		cmd = recv_byte(ctl);
		if (cmd == CMD_SWAP_OUT) {
			rc = swap_out(&m);
			if (rc < 0)
				fprintf(stderr, "monitor: swap-out: %s\n",
				    uffdc_strerror(rc));
			send_byte(ctl, rc < 0 ? ANS_FAIL : ANS_OK);
		} else if (cmd == CMD_DEAD_CHECK)
			send_byte(ctl, (char)dead_check(&m));
		else
			break;
	}
	printf("monitor: %lu faults served: %lu copied from swap, %lu zeroed, "
	    "%lu already filled by another process (woken); %lu remove "
	    "events\n", m.faults, m.copies, m.zeroes, m.wakes, m.removes);
	for (k = 0; k < m.n; k++)
		uffdc_release(m.uffds[k]);
	return 0;
}

/* ---- the main process ---- */

struct child {
	pid_t	pid;
	int	ctl;
};

static struct child devices[MAX_DEVICES], monitor;
static int ndevices;

static void
kill_children(void)
{
	int i;

	for (i = 0; i < ndevices; i++)
		if (devices[i].pid > 0)
			kill(devices[i].pid, SIGKILL);
	if (monitor.pid > 0)
		kill(monitor.pid, SIGKILL);
}

static void
fail(const char *what)
{
	fprintf(stderr, "%s: FAILED: %s\n", progname, what);
	kill_children();
	while (wait(NULL) > 0)
		;
	exit(1);
}

static void
command(struct child *c, char cmd, const char *what)
{
	if (send_byte(c->ctl, cmd) < 0 || recv_byte(c->ctl) != ANS_OK)
		fail(what);
}

/* Every live device reads all guest memory; faults are served meanwhile. */
static void
touch_everywhere(char cmd, const char *what)
{
	int i;

	for (i = 0; i < ndevices; i++)
		if (devices[i].pid > 0 && send_byte(devices[i].ctl, cmd) < 0)
			fail(what);
	for (i = 0; i < ndevices; i++)
		if (devices[i].pid > 0 && recv_byte(devices[i].ctl) != ANS_OK)
			fail(what);
	printf("main: %s\n", what);
}

static pid_t
fork_child(struct child *c)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		fail("socketpair");
	fflush(stdout);
	if ((c->pid = fork()) < 0)
		fail("fork");
	if (c->pid == 0) {
		/* A main process that dies takes its family with it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(sv[0]);
		c->ctl = sv[1];
		return 0;
	}
	close(sv[1]);
	c->ctl = sv[0];
	return c->pid;
}

/* On stderr with status 2 (bad usage), or on stdout with 0 (--help). */
static void
usage(int rc)
{
	fprintf(rc ? stderr : stdout, "usage: %s [--socket PATH] [--devices N] "
	    "[--mem-mib M]\n", progname);
	exit(rc);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "devices", required_argument, NULL, 'n' },
		{ "mem-mib", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sock = NULL;
	struct uffdc_deadcheck *dc;
	struct uffdc_session *s;
	struct uffdc_uffd *u;
	struct guest g;
	size_t i, off, mib = 16;
	int chan[2], opt, rc, victim, dead, memfd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	ndevices = 3;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (opt == 'h')
			usage(0);
		else if (opt == 's')
			sock = optarg;
		else if (opt == 'n')
			ndevices = atoi(optarg);
		else if (opt == 'm')
			mib = strtoul(optarg, NULL, 10);
		else
			usage(2);
	}
	if (ndevices < 2 || ndevices > MAX_DEVICES || mib < 1 || mib > 4096)
		usage(2);

	/* Guest memory: a memfd every process of the VM maps shared. */
	g.page = sysconf(_SC_PAGESIZE);
	g.size = mib << 20;
	g.npages = g.size / g.page;
	memfd = memfd_create("guest-memory", MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, g.size) < 0)
		fail("memfd");
	g.mem = mmap(NULL, g.size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (g.mem == MAP_FAILED)
		fail("mmap guest memory");
	close(memfd);
	for (i = 0; i < g.npages; i++)
		for (off = 0; off < g.page; off++)
			g.mem[i * g.page + off] = pattern(i, off);

	/* Before forking, so its page is at one address in every process. */
	if ((rc = uffdc_deadcheck_new(&dc)) < 0)
		die("uffdc_deadcheck_new", rc);
	if ((rc = uffdc_session_open(sock, &s)) < 0) {
		fprintf(stderr, "%s: session: %s (%s)\n", progname,
		    uffdc_strerror(rc), s ? uffdc_session_reason(s) : "");
		return 1;
	}
	printf("main: jailed; %d device processes, %zu MiB of guest memory\n",
	    ndevices, mib);

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, chan) < 0)
		fail("socketpair");
	if (fork_child(&monitor) == 0) {
		close(chan[1]);
		uffdc_session_close(s);
		exit(monitor_main(&g, dc, monitor.ctl, chan[0], ndevices + 1));
	}
	for (i = 0; i < (size_t)ndevices; i++)
		if (fork_child(&devices[i]) == 0) {
			close(chan[0]);
			exit(device_main(&g, s, (int)i, devices[i].ctl, chan[1]));
		}
	close(chan[0]);
	/*
	 * Every process that maps guest memory needs a uffd registered on it,
	 * or the kernel zero-fills what it touches instead of asking the
	 * monitor: the main process maps it too.
	 */
	if ((rc = uffdc_create(s, UFFDC_FEATURES_DEFAULT, 0, &u)) < 0)
		die("main: uffdc_create", rc);
	if (send_fd(chan[1], MAIN_INDEX, uffdc_fd(u)) < 0)
		fail("sending main's uffd");
	close(chan[1]);
	if (recv_byte(monitor.ctl) != ANS_OK)
		fail("monitor start-up");

	command(&monitor, CMD_SWAP_OUT, "swap-out");
	touch_everywhere(CMD_TOUCH, "every device read all guest memory, "
	    "served from swap: all pages verified");

	command(&devices[0], CMD_BALLOON, "balloon");
	touch_everywhere(CMD_TOUCH_BALLOONED, "ballooned pages read as zero "
	    "in every device");

	victim = ndevices - 1;
	kill(devices[victim].pid, SIGKILL);
	waitpid(devices[victim].pid, NULL, 0);
	devices[victim].pid = 0;
	printf("main: killed device %d\n", victim);
	if (send_byte(monitor.ctl, CMD_DEAD_CHECK) < 0 ||
	    (dead = recv_byte(monitor.ctl)) != 1)
		fail("dead check: expected exactly one dead uffd");

	command(&monitor, CMD_SWAP_OUT, "second swap-out");
	touch_everywhere(CMD_TOUCH_BALLOONED, "surviving devices read all "
	    "guest memory again: all pages verified");

	for (i = 0; i < (size_t)ndevices; i++)
		if (devices[i].pid > 0) {
			send_byte(devices[i].ctl, CMD_QUIT);
			waitpid(devices[i].pid, &rc, 0);
			if (!WIFEXITED(rc) || WEXITSTATUS(rc) != 0)
				fail("device exit");
		}
	send_byte(monitor.ctl, CMD_QUIT);
	waitpid(monitor.pid, &rc, 0);
	if (!WIFEXITED(rc) || WEXITSTATUS(rc) != 0)
		fail("monitor exit");
	uffdc_release(u);
	uffdc_session_close(s);
	uffdc_deadcheck_free(dc);
	munmap(g.mem, g.size);
	printf("%s: ok\n", progname);
	return 0;
}
