/*
 * config.h - uffd-brokerd's command line.
 */
#ifndef UFFD_BROKER_CONFIG_H
#define UFFD_BROKER_CONFIG_H

#include <stddef.h>

#include "broker.h"

#define BROKER_DEFAULT_SOCKET	"/run/uffd-broker/socket"

extern const char config_usage[];

/*
 * Fill cfg from argv. Returns 0, 1 when --help was asked, or -EINVAL with a
 * message in err.
 */
int	config_parse(int argc, char **argv, struct broker_config *cfg,
	    char *err, size_t errlen);

#endif
