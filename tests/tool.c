/* SPDX-License-Identifier: ISC */
/*
 * tool.c - small helpers the test suite, the benchmarks (tests/bench) and
 * the load test (tests/load) share.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tool.h"

uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void
sleep_ms(unsigned int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
	    .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

bool
socket_listening(const char *path)
{
	char line[512], *p;
	unsigned long flags;
	bool yes = false;
	FILE *f = fopen("/proc/net/unix", "re");

	while (f != NULL && !yes && fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if ((p = strrchr(line, ' ')) == NULL || strcmp(p + 1, path) != 0)
			continue;
		/* Num RefCount Protocol Flags ...: __SO_ACCEPTCON is 1 << 16. */
		if (sscanf(line, "%*s %*s %*s %lx", &flags) == 1)
			yes = (flags & 0x10000) != 0;
	}
	if (f != NULL)
		fclose(f);
	return yes;
}

void
print_log_tail(const char *path, unsigned int last)
{
	char line[1024];
	char **ring = calloc(last, sizeof(*ring));
	unsigned int n = 0, i;
	FILE *f = fopen(path, "re");

	if (f == NULL || ring == NULL) {
		if (f != NULL)
			fclose(f);
		free(ring);
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		free(ring[n % last]);
		ring[n % last] = strdup(line);
		n++;
	}
	fclose(f);
	fprintf(stderr, "--- the broker's log (last %u lines) ---\n", last);
	for (i = n > last ? n - last : 0; i < n; i++)
		fputs(ring[i % last] ? ring[i % last] : "", stderr);
	for (i = 0; i < last; i++)
		free(ring[i]);
	free(ring);
}
