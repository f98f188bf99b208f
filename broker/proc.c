/* SPDX-License-Identifier: ISC */
/*
 * proc.c - what the broker reads from /proc: a thread's thread group, a
 * process's thread count and capabilities, a sysctl, the kind of an fd, the
 * entries of an epoll set.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifdef BROKER_UNDER_VALGRIND
#include <valgrind/valgrind.h>
#endif

#include "broker.h"

/* The value of "key:\t<n>" in /proc/<pid>/status, in base, or -1. */
static long
status_field(pid_t pid, const char *key, int base)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	long value = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			char *end;

			value = strtol(line + klen + 1, &end, base);
			if (end == line + klen + 1)
				value = -1;
			break;
		}
	}
	fclose(f);
	return value;
}

pid_t
proc_tgid(pid_t tid)
{
	return (pid_t)status_field(tid, "Tgid", 10);
}

int
proc_threads(pid_t pid)
{
	return (int)status_field(pid, "Threads", 10);
}

bool
proc_dumpable(pid_t pid)
{
	char path[32];
	struct stat st;

	/*
	 * A non-dumpable process's /proc files are root's (not its directory,
	 * which the kernel leaves to its euid, for ps).
	 */
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	return stat(path, &st) < 0 || st.st_uid != 0;
}

bool
proc_pidfd_alive(int pidfd)
{
	struct pollfd pfd = { .fd = pidfd, .events = POLLIN };

	/* A pidfd becomes readable when its process exits. */
	return poll(&pfd, 1, 0) == 0;
}

#ifdef BROKER_UNDER_VALGRIND
/*
 * Valgrind 3.19 (Debian 12) knows neither pidfd_open(2) nor
 * pidfd_send_signal(2), and fails them with ENOSYS. Under valgrind, the
 * build for it (make valgrind) makes them on the real CPU, outside the
 * emulation (a client request): they read and write none of the broker's
 * memory, so memcheck misses nothing. The raw instruction, and no stack
 * canary: errno and the canary live in the guest's thread storage, which
 * the real CPU does not address.
 */
__attribute__((no_stack_protector)) static unsigned long
native_syscall(unsigned long tid, unsigned long nr, unsigned long a0,
    unsigned long a1)
{
	register unsigned long a2 __asm__("rdx") = 0;
	register unsigned long a3 __asm__("r10") = 0;
	unsigned long ret;

	__asm__ volatile ("syscall" : "=a" (ret) : "0" (nr), "D" (a0),
	    "S" (a1), "r" (a2), "r" (a3) : "rcx", "r11", "memory");
	return ret;
}

static long
pidfd_syscall(long nr, long a0, long a1)
{
	long rc;

	if (!RUNNING_ON_VALGRIND)
		return syscall(nr, a0, a1, NULL, 0);
	rc = (long)VALGRIND_NON_SIMD_CALL3(native_syscall, nr, a0, a1);
	if (rc < 0 && rc > -4096) {
		errno = -rc;
		return -1;
	}
	return rc;
}
#else
static long
pidfd_syscall(long nr, long a0, long a1)
{
	return syscall(nr, a0, a1, NULL, 0);
}
#endif

int
proc_pidfd_open(pid_t pid)
{
	return (int)pidfd_syscall(SYS_pidfd_open, pid, 0);
}

int
proc_pidfd_kill(int pidfd)
{
	return (int)pidfd_syscall(SYS_pidfd_send_signal, pidfd, SIGKILL);
}

/*
 * In the initial user namespace, a task's uid_map is the identity over the
 * whole range. (The ns/user link would need ptrace access to the task.)
 */
bool
proc_init_userns(pid_t tid)
{
	char path[64], line[128];
	unsigned long inside, outside, count;
	bool yes = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)tid);
	if ((f = fopen(path, "re")) == NULL)
		return false;
	if (fgets(line, sizeof(line), f) != NULL &&
	    sscanf(line, "%lu %lu %lu", &inside, &outside, &count) == 3)
		yes = inside == 0 && outside == 0 && count == 4294967295UL &&
		    fgets(line, sizeof(line), f) == NULL;
	fclose(f);
	return yes;
}

bool
proc_has_cap(pid_t pid, int cap)
{
	long eff = status_field(pid, "CapEff", 16);

	return eff > 0 && (eff & (1L << cap)) != 0;
}

int
proc_sysctl_int(const char *path)
{
	char buf[32];
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return atoi(buf);
}

const char *
proc_fd_link(int fd, char *buf, size_t len)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, buf, len - 1);
	buf[n < 0 ? 0 : n] = '\0';
	return buf;
}

bool
proc_fdinfo_field(int fd, const char *key, char *buf, size_t len)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if ((f = fopen(path, "re")) == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, klen) == 0) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(buf, len, "%s", line + klen +
			    strspn(line + klen, " \t"));
			found = true;
		}
	fclose(f);
	return found;
}

bool
proc_epoll_has(int epfd, int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return false;
	return proc_epoll_has_ino(epfd, (uint64_t)st.st_ino,
	    (uint64_t)st.st_dev);
}

bool
proc_epoll_has_ino(int epfd, uint64_t want_ino, uint64_t want_dev)
{
	char path[64], line[256], *p;
	unsigned long ino, dev;
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", epfd);
	if ((f = fopen(path, "re")) == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "tfd:", 4) == 0 &&
		    (p = strstr(line, " ino:")) != NULL &&
		    sscanf(p, " ino:%lx sdev:%lx", &ino, &dev) == 2)
			found = ino == (unsigned long)want_ino &&
			    (want_dev == 0 || dev == (unsigned long)want_dev);
	fclose(f);
	return found;
}

int
proc_epoll_count(int epfd)
{
	char path[64], line[256];
	int count = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", epfd);
	if ((f = fopen(path, "re")) == NULL)
		return -errno;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "tfd:", 4) == 0)
			count++;
	fclose(f);
	return count;
}

/* UFFDIO_API on a uffd the client hands over; EINVAL means it was not fresh. */
int
proc_uffd_api(int fd, uint64_t features, struct uffdio_api *api)
{
	*api = (struct uffdio_api){ .api = UFFD_API, .features = features };
	return ioctl(fd, UFFDIO_API, api) < 0 ? -errno : 0;
}
