/* SPDX-License-Identifier: ISC */
/*
 * log.c - single-line key=value logging for uffd-brokerd.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
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

/*
 * The length of the UTF-8 character at p if it may be written as it is; 0
 * for a byte to escape: a control (C0, DEL, C1), U+2028 or U+2029, or a byte
 * that does not start a well-formed character (UTF-8 as RFC 3629: no
 * overlongs, surrogates or code points above U+10FFFF).
 */
static size_t
utf8_plain(const unsigned char *p)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (*p >= 0x20 && *p < 0x7f)
		return 1;
	if (*p >= 0xc2 && *p <= 0xdf)
		n = 2;
	else if (*p >= 0xe0 && *p <= 0xef)
		n = 3;
	else if (*p >= 0xf0 && *p <= 0xf4)
		n = 4;
	else
		return 0;
	if (*p == 0xe0)
		lo = 0xa0;
	else if (*p == 0xed)
		hi = 0x9f;
	else if (*p == 0xf0)
		lo = 0x90;
	else if (*p == 0xf4)
		hi = 0x8f;
	/* A NUL fails the range check: the walk never passes the end. */
	for (i = 1; i < n; i++)
		if (p[i] < (i == 1 ? lo : 0x80) || p[i] > (i == 1 ? hi : 0xbf))
			return 0;
	if ((p[0] == 0xc2 && p[1] < 0xa0) ||
	    (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)))
		return 0;
	return n;
}

/* One byte as an escape; returns its length. */
static size_t
escape_byte(char esc[5], unsigned char c)
{
	if (c == '\n' || c == '\r' || c == '\t')
		c = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
	else if (c != '"' && c != '\\')
		return snprintf(esc, 5, "\\x%02x", c);
	return snprintf(esc, 5, "\\%c", c);
}

const char *
log_quote(char *buf, size_t len, const char *value)
{
	const unsigned char *p = (const unsigned char *)value;
	const char *piece;
	char esc[5];
	size_t o = 1, cut = 1, n, plen;

	buf[0] = '"';
	for (; *p != '\0'; p += n) {
		if ((n = utf8_plain(p)) > 0 && *p != '"' && *p != '\\') {
			piece = (const char *)p;
			plen = n;
		} else {
			piece = esc;
			plen = escape_byte(esc, *p);
			n = 1;
		}
		/* Cut at a character, never inside an escape, and say so. */
		if (o + plen + 2 > len) {
			memcpy(buf + cut, "...\"", 5);
			return buf;
		}
		memcpy(buf + o, piece, plen);
		o += plen;
		if (o + 5 <= len)
			cut = o;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

static void PRINTF_LIKE(3, 0)
vlog(int pri, const char *prefix, const char *fmt, va_list ap, const char *tail)
{
	char line[1024], *p;

	vsnprintf(line, sizeof(line), fmt, ap);
	/* Values are escaped (log_quote); this keeps any line one line anyway. */
	for (p = line; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	if (log_to_syslog)
		syslog(pri, "%s%s%s", prefix, line, tail);
	else
		fprintf(stderr, "uffd-brokerd: %s%s%s\n", prefix, line, tail);
}

void
log_vevent(const char *event, const char *fmt, va_list ap)
{
	char prefix[64];

	snprintf(prefix, sizeof(prefix), "event=%s ", event);
	/* Warnings about a peer go to syslog as log_warn()'s do. */
	vlog(strcmp(event, "warning") == 0 ? LOG_WARNING : LOG_NOTICE, prefix,
	    fmt, ap, "");
}

void
log_event(const char *event, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vevent(event, fmt, ap);
	va_end(ap);
}

static void PRINTF_LIKE(4, 0)
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

/* Where a fatal error is also reported: an upgrade's check (upgrade.c). */
static int report_fd = -1;

void
log_set_report(int fd)
{
	report_fd = fd;
}

static void PRINTF_LIKE(2, 0)
report_fatal(int err, const char *fmt, va_list ap)
{
	char msg[512];
	int n;

	if (report_fd < 0)
		return;
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;
	if (err != 0)
		n += snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s",
		    strerror(err));
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;
	(void)!write(report_fd, msg, (size_t)n);
}

void
fatal(const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog_err(LOG_CRIT, "event=fatal ", err, fmt, ap);
	va_end(ap);
	va_start(ap, fmt);
	report_fatal(err, fmt, ap);
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
	va_start(ap, fmt);
	report_fatal(0, fmt, ap);
	va_end(ap);
	exit(1);
}
