/*
 * liveness.c - the dummy-page check (DESIGN §4). The probe uffd is bound to
 * the client's mm; UFFDIO_ZEROPAGE on the registered dummy page succeeds (first
 * time) or fails with EEXIST while the mm lives, and fails with ESRCH once the
 * process has exited or exec'd.
 */
#include <errno.h>
#include <linux/userfaultfd.h>
#include <string.h>
#include <sys/ioctl.h>

#include "broker.h"
#include "log.h"

bool
liveness_probe(struct session *s, const char **why)
{
	struct uffdio_zeropage zero = {
		.range = { .start = s->dummy_page, .len = s->page_size },
		.mode = UFFDIO_ZEROPAGE_MODE_DONTWAKE,
	};

	if (s->probe_uffd < 0) {
		*why = "no probe uffd";
		return false;
	}
	if (ioctl(s->probe_uffd, UFFDIO_ZEROPAGE, &zero) == 0 || errno == EEXIST)
		return true;
	*why = errno == ESRCH ? "process exited or exec'd" :
	    "liveness probe failed";
	return false;
}

/* Each tick: probe ready sessions, and drop handshakes that take too long. */
void
liveness_tick(struct broker *b)
{
	struct session *s, *next;
	const char *why;

	for (s = TAILQ_FIRST(&b->sessions); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		if (s->state == SESSION_READY) {
			if (!liveness_probe(s, &why))
				session_kill(s, why);
		} else if (broker_elapsed_ms(&s->started) >
		    b->cfg.handshake_timeout_ms)
			session_kill(s, "handshake timed out");
	}
}
