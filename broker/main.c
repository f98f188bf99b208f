/*
 * main.c - uffd-brokerd: the only process that opens /dev/userfaultfd.
 */
#include <linux/userfaultfd.h>
#include <stdio.h>

#include "broker.h"
#include "config.h"
#include "log.h"

int
main(int argc, char **argv)
{
	struct broker b = { .closer = { .pidfd = -1, .sock = -1 } };
	char err[256];
	int rc;

	rc = config_parse(argc, argv, &b.cfg, err, sizeof(err));
	if (rc != 0) {
		if (rc < 0)
			fprintf(stderr, "uffd-brokerd: %s\n", err);
		fputs(config_usage, rc < 0 ? stderr : stdout);
		return rc < 0 ? 2 : 0;
	}
	log_init(b.cfg.log_syslog);
	broker_setup(&b);
	log_event("start", "socket=%s activated=%s creation=%s policy=%s "
	    "rules=%zu", b.cfg.socket_activated ? "(systemd)" :
	    b.cfg.socket_path, b.cfg.socket_activated ? "yes" : "no",
	    b.via_syscall ? "syscall" : "device",
	    b.cfg.policy_path ? b.cfg.policy_path : "(command line)",
	    b.policy->nrules);
	/* It keeps two capabilities the broker's jail drops. */
	verifier_start(&b);
	/* stdio's first use (it may ask isatty) before the jail forbids it. */
	broker_jail(&b);
	closer_start(&b);
	broker_listen(&b);
	if (policy_grants_fork(b.policy))
		log_warnx("EVENT_FORK may be granted: a client's forks will hand "
		    "it uffds the broker does not count");
	broker_run(&b);
	log_event("stop", "reason=signal");
	return 0;
}
