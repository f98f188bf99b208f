/*
 * log.h - the broker's log: one line per event, key=value, to stderr or
 * syslog. fatal() appends strerror(errno), fatalx() does not.
 */
#ifndef UFFD_BROKER_LOG_H
#define UFFD_BROKER_LOG_H

#include <stdbool.h>

#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))

void	log_init(bool to_syslog);
/* An audit or lifecycle event: "event=NAME" followed by key=value pairs. */
void	log_event(const char *event, const char *fmt, ...) PRINTF_LIKE(2, 3);
void	log_warn(const char *fmt, ...) PRINTF_LIKE(1, 2);
void	log_warnx(const char *fmt, ...) PRINTF_LIKE(1, 2);
__attribute__((noreturn)) void fatal(const char *fmt, ...) PRINTF_LIKE(1, 2);
__attribute__((noreturn)) void fatalx(const char *fmt, ...) PRINTF_LIKE(1, 2);

#endif
