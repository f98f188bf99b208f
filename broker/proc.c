/*
 * proc.c - what the broker reads from /proc: a thread's thread group, a
 * process's thread count, the kind of an fd, the entries of an epoll set.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"

/* The value of "key:\t<n>" in /proc/<pid>/status, or -1. */
static long
status_field(pid_t pid, const char *key)
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

			value = strtol(line + klen + 1, &end, 10);
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
	return (pid_t)status_field(tid, "Tgid");
}

int
proc_threads(pid_t pid)
{
	return (int)status_field(pid, "Threads");
}

bool
proc_fd_is(int fd, const char *target)
{
	char path[64], link[128];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return false;
	link[n] = '\0';
	return strcmp(link, target) == 0;
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
