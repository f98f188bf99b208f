/* SPDX-License-Identifier: ISC */
/*
 * uffd-brokerctl - the auditor's tool for uffd-broker.
 *
 *   policy check FILE            errors (FILE:LINE) and warnings
 *   policy print FILE            the policy in canonical form
 *   policy explain [--policy FILE] --uid U [--gid G] [--groups G,...]
 *                  [--exe PATH] [--cgroup PATH]
 *                                which rule a peer matches and what it grants
 *   policy dump-bpf client|broker [--raw]
 *                                the seccomp filters, as libseccomp's pseudo
 *                                filter code (or raw BPF with --raw)
 *   status [--socket PATH]       the running broker: sessions, grants,
 *                                refusals, per-rule counters (root or the
 *                                policy's admin group)
 *   holders [--socket PATH]      every process holding /dev/userfaultfd that
 *                                is neither the broker nor a live session
 *                                (docs/design.md §7: a leaked device fd)
 *
 * Exit status: 0 fine, 1 a finding or an error, 2 bad usage.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <nss.h>
#include <pwd.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker.h"
#include "client.h"
#include "config.h"
#include "policy.h"

#define DEVICE_PATH	"/dev/userfaultfd"

static const char usage_text[] =
	    "usage: uffd-brokerctl policy check FILE\n"
	    "       uffd-brokerctl policy print FILE\n"
	    "       uffd-brokerctl policy explain [--policy FILE] --uid U "
	    "[--gid G] [--groups G,...]\n"
	    "                      [--exe PATH] [--cgroup PATH]\n"
	    "       uffd-brokerctl policy dump-bpf client|broker [--raw]\n"
	    "       uffd-brokerctl status [--socket PATH]\n"
	    "       uffd-brokerctl holders [--socket PATH]\n"
	    "       uffd-brokerctl --help | --version\n";

/* Bad usage: the synopsis on stderr, status 2. */
static void __attribute__((noreturn))
usage(void)
{
	fputs(usage_text, stderr);
	exit(2);
}

static void
print_error(void *arg, const char *msg)
{
	(void)arg;
	fprintf(stderr, "%s\n", msg);
}

/* The policy, or every error (FILE:LINE: message) and exit 1. */
static struct policy *
load_or_die(const char *path)
{
	struct policy *p;
	int n;

	if ((n = policy_load_report(path, &p, print_error, NULL)) > 0) {
		fprintf(stderr, "%s: not loaded: %d error%s\n", path, n,
		    n == 1 ? "" : "s");
		exit(1);
	}
	return p;
}

static void
print_warning(void *arg, const char *msg)
{
	printf("%s: warning: %s\n", (const char *)arg, msg);
}

static int
cmd_check(const char *path)
{
	struct policy *p = load_or_die(path);
	unsigned int n;

	n = policy_check(p, print_warning, (void *)path);
	printf("%s: ok: %zu rules, %u warnings\n", path, p->nrules, n);
	policy_free(p);
	return 0;
}

static int
cmd_print(const char *path)
{
	struct policy *p = load_or_die(path);

	policy_print(p, stdout);
	policy_free(p);
	return 0;
}

static bool
user_id(const char *s, uid_t *out)
{
	struct passwd *pw;
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*s != '\0' && *end == '\0') {
		*out = (uid_t)v;
		return true;
	}
	if ((pw = getpwnam(s)) == NULL)
		return false;
	*out = pw->pw_uid;
	return true;
}

static bool
group_id(const char *s, gid_t *out)
{
	struct group *gr;
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*s != '\0' && *end == '\0') {
		*out = (gid_t)v;
		return true;
	}
	if ((gr = getgrnam(s)) == NULL)
		return false;
	*out = gr->gr_gid;
	return true;
}

static int
cmd_explain(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "policy", required_argument, NULL, 'p' },
		{ "uid", required_argument, NULL, 'u' },
		{ "gid", required_argument, NULL, 'g' },
		{ "groups", required_argument, NULL, 'G' },
		{ "exe", required_argument, NULL, 'e' },
		{ "cgroup", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = POLICY_DEFAULT_PATH;
	gid_t groups[POLICY_MAX_ITEMS];
	struct peer peer = { 0 };
	bool have_uid = false, have_gid = false;
	struct policy *p;
	char *tok, *save = NULL;
	struct passwd *pw;
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			path = optarg;
			break;
		case 'u':
			if (!user_id(optarg, &peer.uid)) {
				fprintf(stderr, "--uid: no such user '%s'\n", optarg);
				return 1;
			}
			have_uid = true;
			break;
		case 'g':
			if (!group_id(optarg, &peer.gid)) {
				fprintf(stderr, "--gid: no such group '%s'\n", optarg);
				return 1;
			}
			have_gid = true;
			break;
		case 'G':
			for (tok = strtok_r(optarg, ",", &save); tok != NULL &&
			    peer.ngroups < POLICY_MAX_ITEMS;
			    tok = strtok_r(NULL, ",", &save)) {
				if (!group_id(tok, &groups[peer.ngroups])) {
					fprintf(stderr, "--groups: no such group "
					    "'%s'\n", tok);
					return 1;
				}
				peer.ngroups++;
			}
			peer.groups = groups;
			break;
		case 'e':
			peer.exe = optarg;
			break;
		case 'c':
			peer.cgroup = optarg;
			break;
		default:
			usage();
		}
	}
	if (!have_uid || optind != argc)
		usage();
	/* Without --gid: the user's primary group, as the kernel would say. */
	if (!have_gid)
		peer.gid = (pw = getpwuid(peer.uid)) != NULL ? pw->pw_gid : peer.uid;
	p = load_or_die(path);
	printf("policy: %s\n", path);
	policy_explain(p, &peer, stdout);
	policy_free(p);
	return 0;
}

static int
cmd_dump_bpf(int argc, char **argv)
{
	scmp_filter_ctx ctx;
	bool raw = argc == 2 && strcmp(argv[1], "--raw") == 0;
	int rc;

	if (argc < 1 || argc > 2 || (argc == 2 && !raw))
		usage();
	/* Raw, the client's is the BPF compiled at build time, as it loads. */
	if (raw && strcmp(argv[0], "client") == 0) {
		const struct sock_filter *insns;
		size_t len;

		client_jail_bpf(&insns, &len);
		return fwrite(insns, sizeof(*insns), len, stdout) == len &&
		    fflush(stdout) == 0 ? 0 : 1;
	}
	if (strcmp(argv[0], "client") == 0) {
		ctx = client_jail_build();
		if (!raw)
			printf("# libuffd-client's fragment, from "
			    "policy/uffd-client.seccomp\n");
	} else if (strcmp(argv[0], "broker") == 0) {
		ctx = broker_jail_filter();
		if (!raw)
			printf("# uffd-brokerd's own allow-list (broker/jail.c)\n");
	} else
		usage();
	if (ctx == NULL) {
		fprintf(stderr, "uffd-brokerctl: building the filter failed\n");
		return 1;
	}
	fflush(stdout);
	rc = raw ? seccomp_export_bpf(ctx, STDOUT_FILENO) :
	    seccomp_export_pfc(ctx, STDOUT_FILENO);
	seccomp_release(ctx);
	return rc < 0 ? 1 : 0;
}

/* The broker's status lines; calls fn for each. Returns 0 or -errno. */
static int
fetch_status(const char *sock_path, void (*fn)(void *, const char *),
    void *arg)
{
	UffdBroker__V1__AdminStatus as = UFFD_BROKER__V1__ADMIN_STATUS__INIT;
	WireRequest req = UFFD_BROKER__V1__REQUEST__INIT;
	struct uffdc_session s;
	WireReply *reply;
	char refusal[sizeof(s.reason)];
	uint32_t offset = 0, total = 1;
	size_t i;
	int rc = 0;

	memset(&s, 0, sizeof(s));
	if ((s.sock = client_connect(sock_path)) < 0)
		return s.sock;
	/* No rule need admit an administrator: a refusal is no answer yet. */
	if ((rc = client_welcome(&s)) < 0 && rc != -EACCES) {
		close(s.sock);
		return rc;
	}
	snprintf(refusal, sizeof(refusal), "%s", rc < 0 ? s.reason : "");
	rc = 0;
	req.body_case = UFFD_BROKER__V1__REQUEST__BODY_ADMIN_STATUS;
	req.admin_status = &as;
	while (offset < total) {
		as.offset = offset;
		if ((rc = client_call(&s, &req, -1, &reply)) < 0) {
			if (s.reason[0] != '\0' || refusal[0] != '\0')
				fprintf(stderr, "uffd-brokerctl: %s\n",
				    s.reason[0] != '\0' ? s.reason : refusal);
			break;
		}
		if (reply->body_case !=
		    UFFD_BROKER__V1__REPLY__BODY_ADMIN_STATUS_REPLY ||
		    reply->admin_status_reply->next_offset <= offset) {
			uffd_broker__v1__reply__free_unpacked(reply, NULL);
			rc = -EPROTO;
			break;
		}
		for (i = 0; i < reply->admin_status_reply->n_lines; i++)
			fn(arg, reply->admin_status_reply->lines[i]);
		offset = reply->admin_status_reply->next_offset;
		total = reply->admin_status_reply->total;
		uffd_broker__v1__reply__free_unpacked(reply, NULL);
	}
	close(s.sock);
	return rc;
}

static void
print_line(void *arg, const char *line)
{
	(void)arg;
	puts(line);
}

static const char *
socket_option(int argc, char **argv)
{
	if (argc == 1)
		return BROKER_DEFAULT_SOCKET;
	if (argc == 3 && strcmp(argv[1], "--socket") == 0)
		return argv[2];
	usage();
	return NULL;
}

static int
cmd_status(int argc, char **argv)
{
	const char *sock = socket_option(argc, argv);
	int rc = fetch_status(sock, print_line, NULL);

	if (rc < 0) {
		fprintf(stderr, "uffd-brokerctl: status from %s: %s\n", sock,
		    strerror(-rc));
		return 1;
	}
	return 0;
}

/* The pids the broker vouches for: itself and its live sessions. */
struct known {
	pid_t	pids[4096];
	size_t	n;
};

static void
collect_pid(void *arg, const char *line)
{
	struct known *k = arg;
	const char *p = strstr(line, " pid=");

	/* Only a ready session has proven itself; a connection may be idle. */
	if ((strncmp(line, "broker ", 7) == 0 ||
	    (strncmp(line, "session ", 8) == 0 &&
	    strstr(line, " state=ready ") != NULL)) && p != NULL &&
	    k->n < sizeof(k->pids) / sizeof(k->pids[0]))
		k->pids[k->n++] = (pid_t)atoi(p + 5);
}

static bool
known_pid(const struct known *k, pid_t pid)
{
	size_t i;

	for (i = 0; i < k->n; i++)
		if (k->pids[i] == pid)
			return true;
	return false;
}

static void
comm_of(pid_t pid, char *buf, size_t len)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	buf[0] = '\0';
	if ((f = fopen(path, "r")) != NULL) {
		if (fgets(buf, len, f) != NULL)
			buf[strcspn(buf, "\n")] = '\0';
		fclose(f);
	}
}

static int
cmd_holders(int argc, char **argv)
{
	const char *sock = socket_option(argc, argv);
	struct known k = { .n = 0 };
	char path[PATH_MAX], link[PATH_MAX], comm[64];
	struct dirent *pe, *fe;
	DIR *proc, *fds;
	unsigned int found = 0;
	ssize_t n;
	pid_t pid, self = getpid();
	int rc;

	rc = fetch_status(sock, collect_pid, &k);
	if (rc < 0)
		fprintf(stderr, "uffd-brokerctl: no status from %s (%s): every "
		    "holder is listed\n", sock, strerror(-rc));
	if ((proc = opendir("/proc")) == NULL) {
		perror("uffd-brokerctl: /proc");
		return 1;
	}
	while ((pe = readdir(proc)) != NULL) {
		if (!isdigit((unsigned char)pe->d_name[0]))
			continue;
		pid = (pid_t)atoi(pe->d_name);
		if (pid == self || known_pid(&k, pid))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
		if ((fds = opendir(path)) == NULL)
			continue;	/* gone, or not ours to read */
		while ((fe = readdir(fds)) != NULL) {
			if (fe->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "/proc/%d/fd/%s", (int)pid,
			    fe->d_name);
			n = readlink(path, link, sizeof(link) - 1);
			if (n <= 0)
				continue;
			link[n] = '\0';
			if (strcmp(link, DEVICE_PATH) != 0)
				continue;
			comm_of(pid, comm, sizeof(comm));
			printf("holder pid=%d comm=%s fd=%s: holds %s and is "
			    "neither the broker nor a live session\n", (int)pid,
			    comm, fe->d_name, DEVICE_PATH);
			found++;
		}
		closedir(fds);
	}
	closedir(proc);
	if (found == 0)
		printf("no other holder of %s\n", DEVICE_PATH);
	return found > 0 ? 1 : 0;
}

int
main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	if (argc == 2 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0)) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (argc == 2 && (strcmp(argv[1], "--version") == 0 ||
	    strcmp(argv[1], "-V") == 0)) {
		printf("uffd-brokerctl %s\n", UFFD_BROKER_VERSION);
		return 0;
	}
	/* Names resolve as the broker resolves them (broker/access.c). */
	__nss_configure_lookup("passwd", "files");
	__nss_configure_lookup("group", "files");
	if (strcmp(argv[1], "policy") == 0 && argc >= 3) {
		if (strcmp(argv[2], "check") == 0 && argc == 4)
			return cmd_check(argv[3]);
		if (strcmp(argv[2], "print") == 0 && argc == 4)
			return cmd_print(argv[3]);
		if (strcmp(argv[2], "explain") == 0)
			return cmd_explain(argc - 2, argv + 2);
		if (strcmp(argv[2], "dump-bpf") == 0)
			return cmd_dump_bpf(argc - 3, argv + 3);
		usage();
	}
	if (strcmp(argv[1], "status") == 0)
		return cmd_status(argc - 1, argv + 1);
	if (strcmp(argv[1], "holders") == 0)
		return cmd_holders(argc - 1, argv + 1);
	usage();
	return 2;
}
