/*
 * log.c - single-line key=value logging for uffd-brokerd.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "log.h"

static bool log_to_syslog;

void
log_init(bool to_syslog)
{
	log_to_syslog = to_syslog;
	if (to_syslog)
		openlog("uffd-brokerd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	else
		setvbuf(stderr, NULL, _IOLBF, 0);
}

static void
vlog(int pri, const char *prefix, const char *fmt, va_list ap, const char *tail)
{
	char line[1024];

	vsnprintf(line, sizeof(line), fmt, ap);
	if (log_to_syslog)
		syslog(pri, "%s%s%s", prefix, line, tail);
	else
		fprintf(stderr, "uffd-brokerd: %s%s%s\n", prefix, line, tail);
}

void
log_event(const char *event, const char *fmt, ...)
{
	char prefix[64];
	va_list ap;

	snprintf(prefix, sizeof(prefix), "event=%s ", event);
	va_start(ap, fmt);
	vlog(LOG_NOTICE, prefix, fmt, ap, "");
	va_end(ap);
}

static void
vlog_err(int pri, const char *prefix, int err, const char *fmt, va_list ap)
{
	char tail[128];

	snprintf(tail, sizeof(tail), "%s%s%s", err ? " error=\"" : "",
	    err ? strerror(err) : "", err ? "\"" : "");
	vlog(pri, prefix, fmt, ap, tail);
}

void
log_warn(const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog_err(LOG_WARNING, "event=warning ", err, fmt, ap);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog_err(LOG_WARNING, "event=warning ", 0, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog_err(LOG_CRIT, "event=fatal ", err, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog_err(LOG_CRIT, "event=fatal ", 0, fmt, ap);
	va_end(ap);
	exit(1);
}
