/* SPDX-License-Identifier: ISC */
/*
 * tool.h - small helpers the test suite, the benchmarks and the load test
 * share (tests/tool.c). Nothing here depends on libcheck.
 */
#ifndef UFFD_TEST_TOOL_H
#define UFFD_TEST_TOOL_H

#include <stdbool.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t now_ns(void);
/* Sleep ms milliseconds, signals or not. */
void	sleep_ms(unsigned int ms);
/* Is the unix socket bound to path listening (/proc/net/unix)? */
bool	socket_listening(const char *path);
/* The last lines of a log file, on stderr, under a heading. */
void	print_log_tail(const char *path, unsigned int last);

#endif
