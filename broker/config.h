/* SPDX-License-Identifier: ISC */
/*
 * config.h - uffd-brokerd's command line.
 */
#ifndef UFFD_BROKER_CONFIG_H
#define UFFD_BROKER_CONFIG_H

#include <stddef.h>

#include "broker.h"

#define BROKER_DEFAULT_SOCKET	"/run/uffd-broker/socket"

extern const char config_usage[];

/* What config_parse() returns besides 0 and -EINVAL. */
#define CONFIG_HELP	1	/* -h, --help */
#define CONFIG_VERSION	2	/* -V, --version */

/*
 * Fill cfg from argv. Returns 0, CONFIG_HELP or CONFIG_VERSION when one was
 * asked, or -EINVAL with a message in err.
 */
int	config_parse(int argc, char **argv, struct broker_config *cfg,
	    char *err, size_t errlen);

#endif
