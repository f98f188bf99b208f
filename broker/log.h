/* SPDX-License-Identifier: ISC */
/*
 * log.h - the broker's log: one line per event, key=value, to stderr or
 * syslog. fatal() appends strerror(errno), fatalx() does not.
 */
#ifndef UFFD_BROKER_LOG_H
#define UFFD_BROKER_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))

/* Room for a quoted value: its quotes, escapes and NUL; longer ones are cut. */
#define LOG_QUOTED_MAX	640

void	log_init(bool to_syslog);
/*
 * value as a quoted field value for "key=%s", written to buf (len bytes, at
 * least 6): '"' and '\\' get a backslash; \n \r \t are written so; other
 * control bytes (C0, DEL, C1 as UTF-8), U+2028/U+2029 and bytes that are not
 * UTF-8 become \xNN. So the value is one line and cannot close its quotes.
 * A value that does not fit ends in "..." before the closing quote.
 * Every value a peer controls goes through here. Returns buf.
 */
const char *log_quote(char *buf, size_t len, const char *value);
/* An audit or lifecycle event: "event=NAME" followed by key=value pairs. */
void	log_event(const char *event, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* As log_event(); event "warning" at log_warn()'s syslog priority. */
void	log_vevent(const char *event, const char *fmt, va_list ap)
	    PRINTF_LIKE(2, 0);
void	log_warn(const char *fmt, ...) PRINTF_LIKE(1, 2);
void	log_warnx(const char *fmt, ...) PRINTF_LIKE(1, 2);
/* fatal() and fatalx() write their message to fd too (an upgrade's check). */
void	log_set_report(int fd);
__attribute__((noreturn)) void fatal(const char *fmt, ...) PRINTF_LIKE(1, 2);
__attribute__((noreturn)) void fatalx(const char *fmt, ...) PRINTF_LIKE(1, 2);

#endif
