/* SPDX-License-Identifier: ISC */
/*
 * config.c - uffd-brokerd's command line, kept apart from main() so that it
 * can be tested on its own.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <nss.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/userfaultfd.h>

#include "broker.h"
#include "config.h"
#include "invariant.h"
#include "policy.h"

/* The --allow-uid list becomes one rule's uid list. */
_Static_assert(BROKER_MAX_UIDS <= POLICY_MAX_ITEMS,
    "--allow-uid takes more uids than a rule holds");

/*
 * Every feature of Linux 6.1's userfaultfd but EVENT_FORK: a fork event hands
 * the reader a new uffd on the child's address space, minted by the kernel
 * outside the broker's quota, and the broker needs CAP_SYS_PTRACE to grant it.
 * --features may still include it, deliberately (the broker warns).
 */
#define DEFAULT_FEATURES (UFFD_FEATURE_PAGEFAULT_FLAG_WP |		\
	UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_EVENT_REMOVE |		\
	UFFD_FEATURE_MISSING_HUGETLBFS | UFFD_FEATURE_MISSING_SHMEM |	\
	UFFD_FEATURE_EVENT_UNMAP | UFFD_FEATURE_SIGBUS |		\
	UFFD_FEATURE_THREAD_ID | UFFD_FEATURE_MINOR_HUGETLBFS |		\
	UFFD_FEATURE_MINOR_SHMEM | UFFD_FEATURE_EXACT_ADDRESS |		\
	UFFD_FEATURE_WP_HUGETLBFS_SHMEM)

static const struct option long_options[] = {
	{ "socket",		required_argument, NULL, 's' },
	{ "allow-uid",		required_argument, NULL, 'u' },
	{ "max-uffds",		required_argument, NULL, 'm' },
	{ "max-sessions-per-uid", required_argument, NULL, 'S' },
	{ "max-sessions",	required_argument, NULL, 'M' },
	{ "user-mode-only",	no_argument,	   NULL, 'U' },
	{ "features",		required_argument, NULL, 'f' },
	{ "probe-interval-ms",	required_argument, NULL, 'p' },
	{ "handshake-timeout-ms", required_argument, NULL, 't' },
	{ "device",		required_argument, NULL, 'd' },
	{ "syslog",		no_argument,	   NULL, 'l' },
	{ "creation",		required_argument, NULL, 'c' },
	{ "policy",		required_argument, NULL, 'P' },
	{ "invariants",		required_argument, NULL, 'N' },
	{ "user",		required_argument, NULL, 'W' },
	{ "no-jail",		no_argument,	   NULL, 'J' },
	{ "no-forked-sessions",	no_argument,	   NULL, 'F' },
	{ "log-burst",		required_argument, NULL, 'b' },
	{ "log-session-burst",	required_argument, NULL, 'B' },
	{ "log-interval-ms",	required_argument, NULL, 'i' },
	{ "help",		no_argument,	   NULL, 'h' },
	{ "version",		no_argument,	   NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

const char config_usage[] =
"usage: uffd-brokerd [options]\n"
"  --socket PATH               listen on PATH (default " BROKER_DEFAULT_SOCKET ";\n"
"                              ignored under systemd socket activation)\n"
"  --policy FILE               the access policy (default " POLICY_DEFAULT_PATH ",\n"
"                              unless the options below give a one-rule policy)\n"
"  --invariants FILE           the site invariants every policy must keep\n"
"                              (default " INVARIANT_DEFAULT_PATH ",\n"
"                              if it exists)\n"
"  --max-sessions N            sessions in all (default 1024)\n"
"One-rule policy on the command line (rule name \"command-line\"):\n"
"  --allow-uid USER|UID        admit peers of this user (repeatable)\n"
"  --max-uffds N               live uffds per process (default 16)\n"
"  --max-sessions-per-uid N    sessions per uid (default 64)\n"
"  --user-mode-only            grant only UFFD_USER_MODE_ONLY uffds\n"
"  --features MASK|NAMES       UFFD_FEATURE_* bits that may be granted: a\n"
"                              mask, or names (MISSING_SHMEM,EVENT_REMOVE)\n"
"  --no-forked-sessions        refuse sessions of processes forked from clients\n"
"Other options:\n"
"  -h, --help                  this text\n"
"  -V, --version               the version\n"
"  --probe-interval-ms N       liveness probe period (default 1000)\n"
"  --handshake-timeout-ms N    drop unfinished handshakes after N ms (default 5000)\n"
"  --device PATH               the userfaultfd device (default /dev/userfaultfd)\n"
"  --creation MODE             auto (the device if it exists, else userfaultfd(2)),\n"
"                              device, or syscall (default auto)\n"
"  --syslog                    log to syslog instead of stderr\n"
"  --log-burst N               log lines about the peers of one uid per\n"
"                              interval (default 100); the rest are counted\n"
"                              and summed up in one line per interval\n"
"  --log-session-burst N       the same per session (default 20)\n"
"  --log-interval-ms N         the interval of both (default 10000)\n"
"  --user NAME|UID[:GID]       run as this user once started (the self-jail)\n"
"  --no-jail                   skip the self-jail (no-new-privs, capabilities,\n"
"                              seccomp allow-list): for debugging only\n";

static int __attribute__((format(printf, 3, 4)))
bad(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* --features NAME[,NAME...]: the policy's feature names. */
static int
parse_feature_names(const char *arg, unsigned long long *out, char *err,
    size_t errlen)
{
	char buf[512], *tok, *save = NULL;
	uint64_t bit;

	if (snprintf(buf, sizeof(buf), "%s", arg) >= (int)sizeof(buf))
		return bad(err, errlen, "--features: too long");
	*out = 0;
	for (tok = strtok_r(buf, ", |", &save); tok != NULL;
	    tok = strtok_r(NULL, ", |", &save)) {
		if (policy_feature_bit(tok, &bit) < 0)
			return bad(err, errlen, "--features: '%s' is neither a "
			    "mask nor a feature name (MISSING_SHMEM, ...)", tok);
		*out |= bit;
	}
	if (*out == 0)
		return bad(err, errlen, "--features: bad mask '%s'", arg);
	return 0;
}

static const char *
option_name(int val)
{
	const struct option *o;

	for (o = long_options; o->name != NULL; o++)
		if (o->val == val)
			return o->name;
	return "?";
}

static int
parse_uint(const char *arg, unsigned long long max, unsigned long long *out)
{
	char *end;

	errno = 0;
	if (*arg == '-' || *arg == '\0')
		return -EINVAL;
	*out = strtoull(arg, &end, 0);
	if (errno != 0 || *end != '\0' || *out > max)
		return -ERANGE;
	return 0;
}

int
config_parse(int argc, char **argv, struct broker_config *cfg, char *err,
    size_t errlen)
{
	unsigned long long v;
	int opt;

	*cfg = (struct broker_config){
		.socket_path = BROKER_DEFAULT_SOCKET,
		.cli_grant = {
			.kernel_faults = true,
			.features = DEFAULT_FEATURES,
			.max_uffds = 16,
			.max_sessions_per_uid = 64,
			.forked_sessions = true,
			.prove_filter = true,
		},
		.max_sessions = 1024,
		.probe_interval_ms = 1000,
		.handshake_timeout_ms = 5000,
		.device_path = "/dev/userfaultfd",
		.creation = CREATION_AUTO,
		.jail = true,
		.log_burst = 100,
		.log_session_burst = 20,
		.log_interval_ms = 10000,
	};
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "hV", long_options, NULL)) != -1) {
		switch (opt) {
		case 's':
			cfg->socket_path = optarg;
			break;
		case 'd':
			cfg->device_path = optarg;
			break;
		case 'P':
			cfg->policy_path = optarg;
			break;
		case 'N':
			cfg->invariants_path = optarg;
			break;
		case 'W':
			cfg->user = optarg;
			break;
		case 'J':
			cfg->jail = false;
			break;
		case 'U':
			cfg->cli_grant.kernel_faults = false;
			cfg->cli_rule = true;
			break;
		case 'l':
			cfg->log_syslog = true;
			break;
		case 'F':
			cfg->cli_grant.forked_sessions = false;
			cfg->cli_rule = true;
			break;
		case 'c':
			if (strcmp(optarg, "auto") == 0)
				cfg->creation = CREATION_AUTO;
			else if (strcmp(optarg, "device") == 0)
				cfg->creation = CREATION_DEVICE;
			else if (strcmp(optarg, "syscall") == 0)
				cfg->creation = CREATION_SYSCALL;
			else
				return bad(err, errlen, "--creation: expected auto, "
				    "device or syscall, got '%s'", optarg);
			break;
		case 'h':
			return CONFIG_HELP;
		case 'V':
			return CONFIG_VERSION;
		case 'u':
			/* A number, or a user name (from /etc/passwd). */
			if (parse_uint(optarg, UINT_MAX - 1, &v) < 0) {
				struct passwd *pw;

				__nss_configure_lookup("passwd", "files");
				if ((pw = getpwnam(optarg)) == NULL)
					return bad(err, errlen, "--allow-uid: no "
					    "such user or bad uid '%s'", optarg);
				v = pw->pw_uid;
			}
			if (cfg->n_allow_uids == BROKER_MAX_UIDS)
				return bad(err, errlen, "--allow-uid: more than %d uids",
				    BROKER_MAX_UIDS);
			cfg->allow_uids[cfg->n_allow_uids++] = (uid_t)v;
			cfg->cli_rule = true;
			break;
		case 'f':
			/* A mask, or names as the policy file takes them. */
			if (parse_uint(optarg, UINT64_MAX, &v) < 0 &&
			    parse_feature_names(optarg, &v, err, errlen) < 0)
				return -EINVAL;
			cfg->cli_grant.features = v;
			cfg->cli_rule = true;
			break;
		case 'm': case 'S': case 'M': case 'p': case 't':
		case 'b': case 'B': case 'i':
			if (parse_uint(optarg, 1000000, &v) < 0 || v == 0)
				return bad(err, errlen, "--%s: expected a number from 1 "
				    "to 1000000, got '%s'", option_name(opt), optarg);
			if (opt == 'm' || opt == 'S')
				cfg->cli_rule = true;
			if (opt == 'm')
				cfg->cli_grant.max_uffds = v;
			else if (opt == 'S')
				cfg->cli_grant.max_sessions_per_uid = v;
			else if (opt == 'M')
				cfg->max_sessions = v;
			else if (opt == 'p')
				cfg->probe_interval_ms = v;
			else if (opt == 't')
				cfg->handshake_timeout_ms = v;
			else if (opt == 'b')
				cfg->log_burst = v;
			else if (opt == 'B')
				cfg->log_session_burst = v;
			else
				cfg->log_interval_ms = v;
			break;
		default:
			return bad(err, errlen, "unknown option, or option without "
			    "its value: '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc)
		return bad(err, errlen, "unexpected argument '%s'", argv[optind]);
	/* One source of truth: a policy file, or the command-line rule. */
	if (cfg->policy_path != NULL && cfg->cli_rule)
		return bad(err, errlen, "--policy excludes --allow-uid, "
		    "--max-uffds, --max-sessions-per-uid, --user-mode-only, "
		    "--features and --no-forked-sessions: put them in the policy");
	if (cfg->policy_path == NULL && !cfg->cli_rule)
		cfg->policy_path = POLICY_DEFAULT_PATH;
	return 0;
}
