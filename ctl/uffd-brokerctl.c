/* SPDX-License-Identifier: ISC */
/*
 * uffd-brokerctl - the auditor's tool for uffd-broker.
 *
 *   policy check FILE [--invariants FILE]
 *                                errors (FILE:LINE), warnings, and the site
 *                                invariants the policy breaks
 *   policy print FILE            the policy in canonical form
 *   policy summary FILE | [--socket PATH]
 *                                who may have which uffds, how many: from a
 *                                file, or the running broker's in force
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
 *                                (docs/design.md §7: a leaked device fd);
 *                                the broker is known by its status, or by
 *                                the socket it listens on
 *   upgrade [--socket PATH]      the broker execs its binary again in its
 *                                place (SIGUSR2), handing over every session;
 *                                waits for the outcome (docs/upgrade.md)
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
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "broker.h"
#include "client.h"
#include "config.h"
#include "invariant.h"
#include "log.h"
#include "policy.h"

#define DEVICE_PATH	"/dev/userfaultfd"

static const char usage_text[] =
	    "usage: uffd-brokerctl policy check FILE [--invariants FILE]\n"
	    "       uffd-brokerctl policy print FILE\n"
	    "       uffd-brokerctl policy summary FILE [--invariants FILE]\n"
	    "       uffd-brokerctl policy summary [--socket PATH]\n"
	    "       uffd-brokerctl policy explain [--policy FILE] --uid U "
	    "[--gid G] [--groups G,...]\n"
	    "                      [--exe PATH] [--cgroup PATH]\n"
	    "       uffd-brokerctl policy dump-bpf client|broker [--raw]\n"
	    "       uffd-brokerctl status [--socket PATH]\n"
	    "       uffd-brokerctl holders [--socket PATH]\n"
	    "       uffd-brokerctl upgrade [--socket PATH]\n"
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

/*
 * The site invariants: the file given, or the default one if anything is
 * there, as the broker takes them; or none. Every error and exit 1 if they
 * do not load.
 */
static struct invariants *
invariants_or_die(const char *given)
{
	const char *path = given;
	struct invariants *inv;
	struct stat st;
	int n;

	if (path == NULL && (lstat(INVARIANT_DEFAULT_PATH, &st) == 0 ||
	    errno != ENOENT))
		path = INVARIANT_DEFAULT_PATH;
	if (path == NULL)
		return NULL;
	if ((n = invariants_load_report(path, &inv, print_error, NULL)) > 0) {
		fprintf(stderr, "%s: not loaded: %d error%s\n", path, n,
		    n == 1 ? "" : "s");
		exit(1);
	}
	return inv;
}

/* policy check and summary: FILE [--invariants FILE]; the latter, or NULL. */
static const char *
invariants_option(int argc, char **argv)
{
	if (argc == 1)
		return NULL;
	if (argc == 3 && strcmp(argv[1], "--invariants") == 0)
		return argv[2];
	usage();
	return NULL;
}

static void
print_violation(void *arg, size_t rule, const char *msg)
{
	(void)arg;
	(void)rule;
	fprintf(stderr, "%s\n", msg);
}

static int
cmd_check(int argc, char **argv)
{
	const char *path = argv[0];
	struct invariants *inv = invariants_or_die(invariants_option(argc,
	    argv));
	struct policy *p = load_or_die(path);
	unsigned int n, broken = 0;

	n = policy_check(p, print_warning, (void *)path);
	if (inv != NULL)
		broken = invariants_check(inv, p, print_violation, NULL);
	if (broken > 0)
		fprintf(stderr, "%s: not loaded: breaks %u invariant%s of %s\n",
		    path, broken, broken == 1 ? "" : "s", inv->path);
	else
		printf("%s: ok: %zu rules, %u warnings, %zu invariants kept\n",
		    path, p->nrules, n, inv != NULL ? inv->n : 0);
	policy_free(p);
	invariants_free(inv);
	return broken > 0 ? 1 : 0;
}

static int
cmd_print(const char *path)
{
	struct policy *p = load_or_die(path);

	policy_print(p, stdout);
	policy_free(p);
	return 0;
}

/* A summary's notes of a rule: the invariants it breaks. */
struct broken {
	const struct invariants	*inv;
	const struct policy	*p;
	size_t			rule;
	FILE			*f;
};

static void
note_violation(void *arg, size_t rule, const char *msg)
{
	struct broken *b = arg;

	if (rule == b->rule)
		policy_summary_line(b->f, "  breaks: ", msg);
}

static void
summary_notes(void *arg, size_t rule, FILE *f)
{
	struct broken *b = arg;

	b->rule = rule;
	b->f = f;
	(void)invariants_check(b->inv, b->p, note_violation, b);
}

/*
 * Who may have which uffds, by a policy file (the broker's own: cmd_summary),
 * and the site invariants each rule breaks.
 */
static int
cmd_summary_file(int argc, char **argv)
{
	const char *path = argv[0];
	struct invariants *inv = invariants_or_die(invariants_option(argc,
	    argv));
	struct policy *p = load_or_die(path);
	struct policy_origin o = { .running = false };
	struct broken b = { .inv = inv, .p = p };
	char source[PATH_MAX + 8], text[PATH_MAX + 128], hex[SHA256_HEX_LEN];
	unsigned int n = 0;

	snprintf(source, sizeof(source), "file %s", path);
	o.source = source;
	if (inv != NULL) {
		n = invariants_check(inv, p, NULL, NULL);
		sha256_hex(inv->digest, hex);
		snprintf(text, sizeof(text), "%s, %zu assertion%s: %s",
		    inv->path, inv->n, inv->n == 1 ? "" : "s", n == 0 ?
		    "the policy keeps them all" : "the policy breaks some "
		    "(below): it would not load");
		o.invariants = text;
		o.invariants_digest = hex;
		o.notes = summary_notes;
		o.notes_arg = &b;
	}
	policy_summary(p, &o, stdout);
	policy_free(p);
	invariants_free(inv);
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

/*
 * The broker's status lines (view STATUS), or the summary of its policy
 * (POLICY); calls fn for each. Returns 0 or -errno.
 */
static int
fetch_view(const char *sock_path, UffdBroker__V1__AdminStatus__View view,
    void (*fn)(void *, const char *), void *arg)
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
	if (view != UFFD_BROKER__V1__ADMIN_STATUS__VIEW__STATUS) {
		as.has_view = true;
		as.view = view;
	}
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

static int
fetch_status(const char *sock_path, void (*fn)(void *, const char *),
    void *arg)
{
	return fetch_view(sock_path,
	    UFFD_BROKER__V1__ADMIN_STATUS__VIEW__STATUS, fn, arg);
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

/* What upgrade reads of the status: the broker's pid, its upgrade line. */
struct upgrade_view {
	long		pid;
	unsigned int	upgrades, refused;
	char		phase[16];
	char		refusal[LOG_QUOTED_MAX];
};

static void
upgrade_line(void *arg, const char *line)
{
	struct upgrade_view *v = arg;
	const char *r;

	if (strncmp(line, "broker pid=", 11) == 0)
		v->pid = strtol(line + 11, NULL, 10);
	if (strncmp(line, "upgrade ", 8) != 0)
		return;
	if (sscanf(line, "upgrade upgrades=%u refused=%u phase=%15s",
	    &v->upgrades, &v->refused, v->phase) != 3)
		v->pid = -1;
	if ((r = strstr(line, " last_refusal=")) != NULL)
		snprintf(v->refusal, sizeof(v->refusal), "%s", r + 14);
}

static int
upgrade_fetch(const char *sock, struct upgrade_view *v)
{
	int rc;

	memset(v, 0, sizeof(*v));
	if ((rc = fetch_status(sock, upgrade_line, v)) < 0)
		return rc;
	return v->pid > 0 && v->phase[0] != '\0' ? 0 : -EPROTO;
}

struct fds_of;
static size_t	listening_at(const char *, unsigned long *, size_t);
static void	scan_fds(pid_t, const unsigned long *, size_t, struct fds_of *);
static bool	holds_listener(pid_t, const unsigned long *, size_t);

/* Does pid hold the socket listening at path (sock_diag, not the name)? */
static bool
holds_socket(pid_t pid, const char *path)
{
	unsigned long inos[8];
	size_t n = listening_at(path, inos, 8);

	return n > 0 && holds_listener(pid, inos, n);
}

/*
 * upgrade: SIGUSR2 to the broker at the socket, by pidfd. The pid its
 * status names must hold the very socket listening at the path (the
 * kernel's sock_diag and /proc, as holders finds the broker): a server that
 * lies in its status is not believed. That is asked again once the pidfd
 * is open, so a pid reused meanwhile is not signalled either. Then the
 * status, until the upgrade is counted or refused.
 */
#define UPGRADE_WAIT_MS		60000
static int
cmd_upgrade(int argc, char **argv)
{
	const char *sock = socket_option(argc, argv);
	struct upgrade_view before, now;
	pid_t peer;
	int rc, pidfd, waited;

	if ((rc = upgrade_fetch(sock, &before)) < 0) {
		fprintf(stderr, "uffd-brokerctl: status from %s: %s\n", sock,
		    strerror(-rc));
		return 1;
	}
	peer = (pid_t)before.pid;
	if (!holds_socket(peer, sock)) {
		fprintf(stderr, "uffd-brokerctl: the status of %s names pid %d, "
		    "which does not hold that socket: not signalling\n", sock,
		    (int)peer);
		return 1;
	}
	if (strcmp(before.phase, "idle") != 0) {
		fprintf(stderr, "uffd-brokerctl: an upgrade is in progress "
		    "(%s)\n", before.phase);
		return 1;
	}
	if ((pidfd = (int)syscall(SYS_pidfd_open, peer, 0)) < 0 ||
	    !holds_socket(peer, sock) ||
	    syscall(SYS_pidfd_send_signal, pidfd, SIGUSR2, NULL, 0) < 0) {
		fprintf(stderr, "uffd-brokerctl: signalling the broker (pid "
		    "%ld): %s\n", before.pid, strerror(errno));
		return 1;
	}
	close(pidfd);
	for (waited = 0; waited < UPGRADE_WAIT_MS; waited += 50) {
		usleep(50000);
		if (upgrade_fetch(sock, &now) < 0)
			continue;	/* between two images: asked again */
		if (now.upgrades > before.upgrades) {
			printf("upgraded: pid %ld, %u upgrade%s so far\n",
			    now.pid, now.upgrades, now.upgrades == 1 ? "" : "s");
			return 0;
		}
		if (now.refused > before.refused) {
			fprintf(stderr, "uffd-brokerctl: upgrade refused, the "
			    "broker serves on: %s\n", now.refusal);
			return 1;
		}
	}
	fprintf(stderr, "uffd-brokerctl: no outcome within %d s\n",
	    UPGRADE_WAIT_MS / 1000);
	return 1;
}

/*
 * policy summary FILE, or [--socket PATH]: the running broker's policy in
 * force, as it summarises it (its command-line limits included).
 */
static int
cmd_summary(int argc, char **argv)
{
	const char *sock;
	int rc;

	if (argc >= 2 && strncmp(argv[1], "--", 2) != 0)
		return cmd_summary_file(argc - 1, argv + 1);
	sock = socket_option(argc, argv);
	if ((rc = fetch_view(sock, UFFD_BROKER__V1__ADMIN_STATUS__VIEW__POLICY,
	    print_line, NULL)) < 0) {
		fprintf(stderr, "uffd-brokerctl: policy summary from %s: %s\n",
		    sock, strerror(-rc));
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

/* Sockets listening at a path, and the device fds of one process. */
#define MAX_LISTENERS	8
#define MAX_DEVICE_FDS	64

/* sock_diag's file of a socket is this one. */
static bool
same_file(const struct unix_diag_vfs *vfs, const struct stat *st)
{
	/* The kernel's own dev_t: major << 20 | minor. */
	return vfs->udiag_vfs_ino == st->st_ino &&
	    makedev(vfs->udiag_vfs_dev >> 20, vfs->udiag_vfs_dev & 0xfffff) ==
	    st->st_dev;
}

/*
 * NLMSG_NEXT and RTA_NEXT, with the casts through void *: each message and
 * attribute starts at an aligned offset (NLMSG_ALIGN, RTA_ALIGN) of an
 * aligned buffer, which the compiler cannot see (clang's -Wcast-align).
 */
static const struct nlmsghdr *
nl_next(const struct nlmsghdr *h, ssize_t *len)
{
	size_t step = NLMSG_ALIGN(h->nlmsg_len);

	*len -= (ssize_t)step;
	return (const void *)((const char *)h + step);
}

static const struct rtattr *
rta_next(const struct rtattr *a, int *len)
{
	size_t step = RTA_ALIGN(a->rta_len);

	*len -= (int)step;
	return (const void *)((const char *)a + step);
}

/*
 * The inodes of the sockets listening at the socket file path: those bound
 * to that very file, as sock_diag reports it (UDIAG_SHOW_VFS). Not by name:
 * a socket bound to the same name in another mount namespace is another.
 * Returns how many.
 */
static size_t
listening_at(const char *path, unsigned long *inos, size_t max)
{
	struct {
		struct nlmsghdr		nlh;
		struct unix_diag_req	req;
	} msg = {
		.nlh = {
			.nlmsg_len = sizeof(msg),
			.nlmsg_type = SOCK_DIAG_BY_FAMILY,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
		},
		.req = {
			.sdiag_family = AF_UNIX,
			.udiag_states = 1 << 10,	/* TCP_LISTEN */
			.udiag_show = UDIAG_SHOW_VFS,
		},
	};
	static char buf[32768] __attribute__((aligned(NLMSG_ALIGNTO)));
	const struct unix_diag_vfs *vfs;
	const struct unix_diag_msg *m;
	const struct nlmsghdr *h;
	const struct rtattr *a;
	struct stat st;
	size_t n = 0;
	ssize_t len;
	int fd, alen;
	bool done = false;

	if (stat(path, &st) < 0 || !S_ISSOCK(st.st_mode) ||
	    (fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC,
	    NETLINK_SOCK_DIAG)) < 0)
		return 0;
	if (send(fd, &msg, sizeof(msg), 0) != sizeof(msg)) {
		close(fd);
		return 0;
	}
	while (!done && (len = recv(fd, buf, sizeof(buf), 0)) > 0) {
		for (h = (const void *)buf; NLMSG_OK(h, len);
		    h = nl_next(h, &len)) {
			if (h->nlmsg_type == NLMSG_DONE ||
			    h->nlmsg_type == NLMSG_ERROR) {
				done = true;
				break;
			}
			m = NLMSG_DATA(h);
			alen = h->nlmsg_len - NLMSG_LENGTH(sizeof(*m));
			for (a = (const void *)(m + 1);
			    RTA_OK(a, alen); a = rta_next(a, &alen)) {
				if (a->rta_type != UNIX_DIAG_VFS ||
				    RTA_PAYLOAD(a) < sizeof(*vfs))
					continue;
				vfs = RTA_DATA(a);
				if (same_file(vfs, &st) && n < max)
					inos[n++] = m->udiag_ino;
			}
		}
	}
	close(fd);
	return n;
}

/* One process's fds: the device's, and whether it holds a listener. */
struct fds_of {
	int		fds[MAX_DEVICE_FDS];
	size_t		n;
	unsigned int	more;		/* device fds past MAX_DEVICE_FDS */
	bool		listener;
};

static void
scan_fds(pid_t pid, const unsigned long *inos, size_t ninos,
    struct fds_of *out)
{
	char path[PATH_MAX], link[PATH_MAX];
	struct dirent *fe;
	unsigned long ino;
	DIR *fds;
	ssize_t n;
	size_t i;

	memset(out, 0, sizeof(*out));
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	if ((fds = opendir(path)) == NULL)
		return;		/* gone, or not ours to read */
	while ((fe = readdir(fds)) != NULL) {
		if (fe->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd/%s", (int)pid,
		    fe->d_name);
		if ((n = readlink(path, link, sizeof(link) - 1)) <= 0)
			continue;
		link[n] = '\0';
		if (sscanf(link, "socket:[%lu]", &ino) == 1) {
			for (i = 0; i < ninos; i++)
				out->listener |= ino == inos[i];
		} else if (strcmp(link, DEVICE_PATH) != 0)
			continue;
		else if (out->n < MAX_DEVICE_FDS)
			out->fds[out->n++] = atoi(fe->d_name);
		else
			out->more++;
	}
	closedir(fds);
}

static bool
holds_listener(pid_t pid, const unsigned long *inos, size_t n)
{
	struct fds_of f;

	scan_fds(pid, inos, n, &f);
	return f.listener;
}


/*
 * Every process holding the device that the broker does not vouch for. The
 * broker's status names it and its live sessions; without the status, the
 * broker is the holder of its listening socket (so is a socket-activating
 * service manager, which holds no device), said on stderr, and every
 * session's process is listed.
 */
static int
cmd_holders(int argc, char **argv)
{
	const char *sock = socket_option(argc, argv);
	struct known k = { .n = 0 };
	unsigned long inos[MAX_LISTENERS];
	struct fds_of fo;
	char comm[64];
	struct dirent *pe;
	DIR *proc;
	unsigned int found = 0;
	size_t ninos, i;
	pid_t pid, self = getpid();
	int rc;

	rc = fetch_status(sock, collect_pid, &k);
	if (rc < 0)
		fprintf(stderr, "uffd-brokerctl: no status from %s (%s): every "
		    "holder but the broker is listed, sessions included\n",
		    sock, strerror(-rc));
	ninos = listening_at(sock, inos, MAX_LISTENERS);
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
		scan_fds(pid, inos, ninos, &fo);
		if (fo.n == 0)
			continue;
		comm_of(pid, comm, sizeof(comm));
		if (fo.listener) {
			fprintf(stderr, "uffd-brokerctl: pid %d (%s) holds the "
			    "socket listening at %s: the broker, not listed\n",
			    (int)pid, comm, sock);
			continue;
		}
		for (i = 0; i < fo.n; i++)
			printf("holder pid=%d comm=%s fd=%d: holds %s and is "
			    "neither the broker nor a live session\n", (int)pid,
			    comm, fo.fds[i], DEVICE_PATH);
		if (fo.more > 0)
			printf("holder pid=%d comm=%s: %u more fds of %s\n",
			    (int)pid, comm, fo.more, DEVICE_PATH);
		found += fo.n + fo.more;
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
		if (strcmp(argv[2], "check") == 0 && argc >= 4)
			return cmd_check(argc - 3, argv + 3);
		if (strcmp(argv[2], "print") == 0 && argc == 4)
			return cmd_print(argv[3]);
		if (strcmp(argv[2], "summary") == 0)
			return cmd_summary(argc - 2, argv + 2);
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
	if (strcmp(argv[1], "upgrade") == 0)
		return cmd_upgrade(argc - 1, argv + 1);
	usage();
	return 2;
}
