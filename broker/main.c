/* SPDX-License-Identifier: ISC */
/*
 * main.c - uffd-brokerd: the only process that opens /dev/userfaultfd.
 */
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <unistd.h>

#include "broker.h"
#include "build-config.h"
#include "config.h"
#include "log.h"

int
main(int argc, char **argv)
{
	struct broker b = { .closer = { .pidfd = -1, .sock = -1 },
	    .lock_fd = -1 };
	bool restart;
	char err[256];
	int rc;

	rc = config_parse(argc, argv, &b.cfg, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "uffd-brokerd: %s\n"
		    "Try 'uffd-brokerd --help' for the options.\n", err);
		return 2;
	}
	if (rc == CONFIG_HELP) {
		fputs(config_usage, stdout);
		return 0;
	}
	if (rc == CONFIG_VERSION) {
		printf("uffd-brokerd %s\n", UFFD_BROKER_VERSION);
		return 0;
	}
	log_init(b.cfg.log_syslog);
	registry_init(&b.reg);
	sdnotify_init();
	upgrade_init(&b, argv);
	if (upgrade_resuming()) {
		/* An upgrade's exec: everything is adopted, jailed included. */
		upgrade_resume(&b);
		closer_start(&b, false);
		log_event("ready", "pid=%d", (int)getpid());
		sdnotify("READY=1\nSTATUS=serving (upgraded), policy rules: "
		    "%zu", b.policy->nrules);
		broker_run(&b);
		log_event("stop", "reason=signal");
		sdnotify_close();
		return 0;
	}
	/*
	 * A restart takes back what the fd store kept (store.c): the
	 * listening socket in broker_setup(), the sessions once the verifier
	 * is there to ask again what was being proven.
	 */
	restart = store_restarting();
	store_init(&b);
	broker_setup(&b);
	if (!restart)
		store_publish(&b);
	log_event("start", "socket=%s activated=%s creation=%s policy=%s "
	    "rules=%zu", b.cfg.socket_activated ? "(systemd)" :
	    b.cfg.socket_path, b.cfg.socket_activated ? "yes" : "no",
	    b.via_syscall ? "syscall" : "device",
	    b.cfg.policy_path ? b.cfg.policy_path : "(command line)",
	    b.policy->nrules);
	/* It keeps two capabilities the broker's jail drops. */
	verifier_start(&b);
	if (restart)
		store_restart(&b);
	/* stdio's first use (it may ask isatty) before the jail forbids it. */
	broker_jail(&b);
	closer_start(&b, true);
	broker_listen(&b);
	/* "start" is logged before the jail; clients may connect from here. */
	log_event("ready", "pid=%d", (int)getpid());
	sdnotify("READY=1\nSTATUS=serving, policy rules: %zu", b.policy->nrules);
	if (policy_grants_fork(b.policy))
		log_warnx("EVENT_FORK may be granted: a client's forks will hand "
		    "it uffds the broker does not count");
	broker_run(&b);
	log_event("stop", "reason=signal");
	sdnotify_close();
	return 0;
}
