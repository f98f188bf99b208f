/* SPDX-License-Identifier: ISC */
/*
 * check_ctl.c - uffd-brokerctl, run as a program: policy check, explain,
 * dump-bpf, and status and holders against a running broker.
 */
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "harness.h"

#define ETC_POLICY	"/etc/uffd-broker/policy.conf"

static const char *
ctl_path(void)
{
	const char *p = getenv("UFFD_BROKERCTL");

	return p ? p : build_file("uffd-brokerctl");
}

static char out_path[PATH_MAX];

/*
 * Run uffd-brokerctl with args (NULL-terminated), as nobody if drop; its
 * output goes to out_path. Returns its exit code. Under make valgrind it
 * runs under valgrind too, as root: it parses policy files and the broker's
 * replies. As nobody it runs natively: valgrind would have to read its
 * suppressions and the binary, which a checkout in root's 0700 home keeps
 * from nobody. So does the client's filter dump: libseccomp asks seccomp(2)
 * about user notification, which valgrind 3.19 lacks.
 */
static int
ctl(bool drop, const char *arg, ...)
{
	const char *argv[16];
	int argc = 0, rc;
	bool vg;
	va_list ap;

	snprintf(out_path, sizeof(out_path), "%s/ctl.out", getenv("UFFD_TEST_DIR"));
	argv[argc++] = ctl_path();
	va_start(ap, arg);
	for (; arg != NULL && argc < 15; arg = va_arg(ap, const char *))
		argv[argc++] = arg;
	va_end(ap);
	argv[argc] = NULL;
	vg = under_valgrind() && !drop && !(argc >= 4 &&
	    strcmp(argv[2], "dump-bpf") == 0 && strcmp(argv[3], "client") == 0);
	rc = run_program(out_path, drop, vg ? valgrind_argv(argv) : argv);
	if (vg)
		valgrind_check_output(out_path, "uffd-brokerctl");
	return rc;
}

/* The output holds a line with the needle(s); quiet: no dump if not. */
static bool
out_scan(const char *needle1, const char *needle2, bool quiet)
{
	char line[1024];
	bool found = false;
	FILE *f = fopen(out_path, "r");

	while (f != NULL && !found && fgets(line, sizeof(line), f) != NULL)
		found = strstr(line, needle1) != NULL &&
		    (needle2 == NULL || strstr(line, needle2) != NULL);
	if (f != NULL)
		fclose(f);
	if (!found && !quiet) {
		fprintf(stderr, "ctl output lacks '%s' '%s':\n", needle1,
		    needle2 ? needle2 : "");
		if ((f = fopen(out_path, "r")) != NULL) {
			while (fgets(line, sizeof(line), f) != NULL)
				fputs(line, stderr);
			fclose(f);
		}
	}
	return found;
}

static bool
out_has(const char *needle1, const char *needle2)
{
	return out_scan(needle1, needle2, false);
}

static bool
out_lacks(const char *needle)
{
	return !out_scan(needle, NULL, true);
}


START_TEST(test_ctl_policy_check)
{
	const char *bad, *warn;

	ck_assert_int_eq(ctl(false, "policy", "check", "policy/policy.conf",
	    NULL), 0);
	ck_assert(out_has("policy/policy.conf: ok: 3 rules, 0 warnings", NULL));

	bad = test_file("bad.conf", "[rule a]\nmode = kernel\nfeatures = X\n");
	ck_assert_int_eq(ctl(false, "policy", "check", bad, NULL), 1);
	ck_assert(out_has("bad.conf:3: features: unknown feature 'X'", NULL));

	/* Every error, each FILE:LINE, then how many. */
	bad = test_file("bad.conf", "[rule a]\nmode = kernel\nfeatures = X\n"
	    "[rule b]\nuid = nosuch-xyz\nmax_uffds = -1\n");
	ck_assert_int_eq(ctl(false, "policy", "check", bad, NULL), 1);
	ck_assert(out_has("bad.conf:3: features: unknown feature 'X'", NULL));
	ck_assert(out_has("bad.conf:5: uid: no such user 'nosuch-xyz'", NULL));
	ck_assert(out_has("bad.conf:6: max_uffds: expected a number", NULL));
	ck_assert(out_has("bad.conf: not loaded: 3 errors", NULL));
	ck_assert(out_lacks(": ok:"));

	/* A directory is no policy (it was "ok: 0 rules"). */
	ck_assert_int_eq(ctl(false, "policy", "check", "policy", NULL), 1);
	ck_assert(out_has("policy: not a regular file (a directory)", NULL));
	ck_assert(out_lacks(": ok:"));

	warn = test_file("warn.conf", "[rule everyone]\nmode = kernel\n");
	ck_assert_int_eq(ctl(false, "policy", "check", warn, NULL), 0);
	ck_assert(out_has("warning: rule 'everyone' (line 1) grants kernel "
	    "faults to every uid", NULL));
	ck_assert(out_has("ok: 1 rules, 1 warnings", NULL));
	unlink(out_path);
}
END_TEST

/* "Who may create kernel-fault uffds here, with which features, how many?" */
START_TEST(test_ctl_policy_explain)
{
	ck_assert_int_eq(ctl(false, "policy", "explain", "--policy",
	    "policy/policy.conf", "--uid", "nobody", "--cgroup",
	    "/system.slice/vmm@guest1.service/devices", NULL), 0);
	ck_assert(out_has("rule 'no-user-sessions' (line", "no match: cgroup"));
	ck_assert(out_has("result: granted by rule 'vmm-devices': mode=kernel "
	    "features=\"EVENT_REMOVE MISSING_SHMEM\" max_uffds=4 "
	    "max_sessions_per_uid=64 forked_sessions=yes", NULL));

	ck_assert_int_eq(ctl(false, "policy", "explain", "--policy",
	    "policy/policy.conf", "--uid", "1000", "--gid", "1000", "--cgroup",
	    "/user.slice/user-1000.slice/session-3.scope", NULL), 0);
	ck_assert(out_has("result: refused by rule 'no-user-sessions'", NULL));

	ck_assert_int_eq(ctl(false, "policy", "explain", "--policy",
	    "policy/policy.conf", "--uid", "1000", "--gid", "1000", "--groups",
	    "nogroup", "--cgroup", "/system.slice/restore.service", NULL), 0);
	ck_assert(out_has("result: granted by rule 'restore-helpers': mode=user",
	    NULL));
	ck_assert_int_eq(ctl(false, "policy", "explain", "--policy",
	    "policy/policy.conf", "--uid", "1000", "--gid", "1000", "--cgroup",
	    "/system.slice/restore.service", NULL), 0);
	ck_assert(out_has("result: refused: no rule matches (default deny)",
	    NULL));

	/*
	 * Without --cgroup, the cgroup is any: the broker always knows it, so
	 * a rule on it is a condition, not a miss (this said "granted" for a
	 * peer the broker refuses in a login session).
	 */
	ck_assert_int_eq(ctl(false, "policy", "explain", "--policy",
	    "policy/policy.conf", "--uid", "1000", "--gid", "1000", "--groups",
	    "nogroup", NULL), 0);
	ck_assert(out_has("peer: uid=1000 gid=1000 exe=(any: not given) "
	    "cgroup=(any: not given)", NULL));
	ck_assert(out_has("rule 'no-user-sessions' (line", "): MATCH if its "
	    "cgroup matches /user.slice/** (not given): refused by rule "
	    "'no-user-sessions' (action = deny)"));
	ck_assert(out_has("result: depends on the cgroup (not given): the "
	    "first rule above that matches it decides; otherwise granted by "
	    "rule 'restore-helpers': mode=user", NULL));
	ck_assert(out_lacks("result: granted"));
	ck_assert_int_eq(ctl(false, "policy", "explain", "--policy",
	    "policy/policy.conf", "--uid", "1000", "--gid", "1000", NULL), 0);
	ck_assert(out_has("result: refused, whatever the cgroup (not given)",
	    NULL));

	/* Likewise the executable. */
	ck_assert_int_eq(ctl(false, "policy", "explain", "--policy",
	    test_file("exe.conf", "[rule no-evil]\nexe = /usr/bin/evil /bin/x\n"
	    "action = deny\n[rule vmm]\nuid = 1000\ncgroup = /vmm/**\n"
	    "mode = kernel\n"), "--uid", "1000", NULL), 0);
	ck_assert(out_has("rule 'no-evil' (line 1): MATCH if its executable is "
	    "/usr/bin/evil or /bin/x (not given): refused", NULL));
	ck_assert(out_has("rule 'vmm' (line 4): MATCH if its cgroup matches "
	    "/vmm/** (not given): granted by rule 'vmm': mode=kernel", NULL));
	ck_assert(out_has("result: depends on the executable and cgroup (not "
	    "given): the first rule above that matches it decides; otherwise "
	    "refused: no rule matches (default deny)", NULL));
	ck_assert_int_eq(ctl(false, "policy", "explain", "--policy",
	    "policy/policy.conf", NULL), 2);
	unlink(out_path);
}
END_TEST

/*
 * The README's uffd-brokerctl policy commands run as written on a stock
 * host (its explain once named a user crosvm, which no host has), against
 * the example policy instead of /etc's, and a broker running it.
 */
START_TEST(test_ctl_readme_examples)
{
	char line[512], cmd[512], *tok, *save;
	const char *args[16] = { NULL };
	int nargs, n = 0;
	bool explain;
	FILE *f = fopen("README.md", "r");

	ck_assert_ptr_nonnull(f);
	broker_start("--policy", "policy/policy.conf", NULL);
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "    uffd-brokerctl policy ", 26) != 0)
			continue;
		line[strcspn(line, "#\n")] = '\0';
		snprintf(cmd, sizeof(cmd), "%s", line + 4);
		explain = strstr(line, " explain ") != NULL;
		nargs = 0;
		save = NULL;
		/* The words after "uffd-brokerctl". */
		for (tok = strtok_r(line + 19, " ", &save); tok != NULL &&
		    nargs < 12; tok = strtok_r(NULL, " ", &save))
			args[nargs++] = strcmp(tok, ETC_POLICY) == 0 ?
			    "policy/policy.conf" : tok;
		if (explain && strstr(cmd, "--policy") == NULL) {
			args[nargs++] = "--policy";
			args[nargs++] = "policy/policy.conf";
		}
		/* The policy in force: the test's broker's. */
		if (nargs == 2 && strcmp(args[1], "summary") == 0) {
			args[nargs++] = "--socket";
			args[nargs++] = tb.sock;
		}
		args[nargs] = NULL;
		ck_assert_msg(ctl(false, args[0], args[1], args[2], args[3],
		    args[4], args[5], args[6], args[7], args[8], args[9],
		    args[10], args[11], args[12], args[13], NULL) == 0,
		    "README: '%s' fails", cmd);
		ck_assert(out_lacks("no such user"));
		if (explain)
			ck_assert(out_has("result: granted by rule ", NULL));
		n++;
	}
	fclose(f);
	ck_assert_int_ge(n, 7);
	unlink(out_path);
	broker_stop();
}
END_TEST

/*
 * "Who on this host may create kernel-fault uffds, with which features, how
 * many?" in one command: from a file, and from the running broker, which
 * knows its own limits.
 */
START_TEST(test_ctl_policy_summary)
{
	const char *path;

	ck_assert_int_eq(ctl(false, "policy", "summary", "policy/policy.conf",
	    NULL), 0);
	ck_assert(out_has("source: file policy/policy.conf", NULL));
	ck_assert(out_has("rule 'vmm-devices' (line ", "): allow, kernel-fault "
	    "uffds"));
	ck_assert(out_has("  matches: uid 65534 (nobody)", NULL));
	ck_assert(out_has("  features: EVENT_REMOVE MISSING_SHMEM", NULL));
	ck_assert(out_has("  matches: gid 65534 (nogroup)", NULL));
	ck_assert(out_has("kernel-fault uffds: rule 'vmm-devices'", NULL));
	ck_assert(out_has("  live: at most 256 per uid, at most 256 host-wide",
	    NULL));
	ck_assert(out_has("sessions host-wide: the broker's --max-sessions",
	    NULL));
	ck_assert_int_eq(ctl(false, "policy", "summary", "policy", NULL), 1);
	ck_assert(out_has("policy: not a regular file (a directory)", NULL));
	ck_assert_int_eq(ctl(false, "policy", "summary", "a", "b", NULL), 2);

	/* The running broker's policy in force, with its --max-sessions. */
	path = test_file("summary.conf", "[broker]\nadmin_group = nogroup\n"
	    "[rule n]\nuid = 65534\ncgroup = /**\nmode = kernel\n"
	    "features = EVENT_FORK\n");
	broker_start("--policy", path, "--max-sessions", "12", NULL);
	ck_assert_int_eq(ctl(false, "policy", "summary", "--socket", tb.sock,
	    NULL), 0);
	ck_assert(out_has("source: file ", "summary.conf"));
	ck_assert(out_has("in force: since ", NULL));
	ck_assert(out_has("sessions host-wide: at most 12 open at once "
	    "(--max-sessions)", NULL));
	ck_assert(out_has("  warning: rule 'n' (line 3) grants EVENT_FORK",
	    NULL));
	ck_assert(out_has("  live: no bound per uid (rule 'n')", NULL));
	/* For root and the admin group, as status is. */
	ck_assert_int_eq(ctl(true, "policy", "summary", "--socket", tb.sock,
	    NULL), 0);
	ck_assert(out_has("rule 'n' (line 3): allow", NULL));
	broker_stop();
	broker_start("--allow-uid", "0", NULL);
	ck_assert_int_eq(ctl(true, "policy", "summary", "--socket", tb.sock,
	    NULL), 1);
	ck_assert(out_has("no rule of the policy matches uid 65534", NULL));
	unlink(out_path);
	broker_stop();
}
END_TEST

/*
 * Site invariants: policy check refuses a policy that breaks one, naming the
 * assertion and the rule, each FILE:LINE; summary says which rule breaks it.
 */
START_TEST(test_ctl_policy_invariants)
{
	const char *inv = test_file("site.inv", "# the site's\n"
	    "never mode kernel without exe\nnever feature EVENT_FORK\n");
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s", inv);
	ck_assert_int_eq(ctl(false, "policy", "check", "policy/policy.conf",
	    "--invariants", path, NULL), 1);
	ck_assert(out_has("policy/policy.conf:63: rule 'vmm-devices' breaks "
	    "invariant 'never mode kernel without exe' (", "site.inv:2): it "
	    "grants kernel faults, does not match on exe"));
	ck_assert(out_has("policy/policy.conf: not loaded: breaks 1 invariant "
	    "of ", "site.inv"));
	ck_assert(out_lacks(": ok:"));
	ck_assert_int_eq(ctl(false, "policy", "summary", "policy/policy.conf",
	    "--invariants", path, NULL), 0);
	ck_assert(out_has("invariants: ", "site.inv, 2 assertions:"));
	ck_assert(out_has("invariants digest: sha256:", NULL));
	ck_assert(out_has("  breaks: policy/policy.conf:63: rule 'vmm-devices' "
	    "breaks", NULL));

	/* The example invariants, kept by the example policy. */
	ck_assert_int_eq(ctl(false, "policy", "check", "policy/policy.conf",
	    "--invariants", "policy/invariants.conf", NULL), 0);
	ck_assert(out_has("policy/policy.conf: ok: 3 rules, 0 warnings, 7 "
	    "invariants kept", NULL));

	/* Kept. */
	test_file("site.inv", "never feature EVENT_FORK\n"
	    "max live-per-uid 256 for mode kernel\n");
	ck_assert_int_eq(ctl(false, "policy", "check", "policy/policy.conf",
	    "--invariants", path, NULL), 0);
	ck_assert(out_has("policy/policy.conf: ok: 3 rules, 0 warnings, 2 "
	    "invariants kept", NULL));
	/* Invariants that do not load: every error. */
	test_file("site.inv", "never\nmax live-per-uid x\n");
	ck_assert_int_eq(ctl(false, "policy", "check", "policy/policy.conf",
	    "--invariants", path, NULL), 1);
	ck_assert(out_has("site.inv:1: expected a condition", NULL));
	ck_assert(out_has("site.inv:2: max live-per-uid: expected a number",
	    NULL));
	ck_assert(out_has("site.inv: not loaded: 2 errors", NULL));
	ck_assert_int_eq(ctl(false, "policy", "check", "policy/policy.conf",
	    "--invariants", NULL), 2);
	unlink(out_path);
}
END_TEST

/* The client dump is exactly the BPF the library loads. */
START_TEST(test_ctl_dump_bpf)
{
	char lib_path[PATH_MAX];
	struct stat a, b;
	int fd;

	/* (ctl() runs the client's dump natively under make valgrind.) */
	ck_assert_int_eq(ctl(false, "policy", "dump-bpf", "client", NULL), 0);
	ck_assert(out_has("filter for syscall \"userfaultfd\"", NULL));
	ck_assert(out_has("if ($a1.lo32 & 0xffffffff == 43520)", NULL));
	ck_assert(out_has("action 0x7fc00000", NULL));	/* USER_NOTIF */
	ck_assert_int_eq(ctl(false, "policy", "dump-bpf", "broker", NULL), 0);
	ck_assert(out_has("action KILL_PROCESS", NULL));
	ck_assert(out_has("filter for syscall \"epoll_wait\"", NULL));

	ck_assert_int_eq(ctl(false, "policy", "dump-bpf", "client", "--raw",
	    NULL), 0);
	snprintf(lib_path, sizeof(lib_path), "%s/lib.bpf", getenv("UFFD_TEST_DIR"));
	fd = open(lib_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(client_jail_export_bpf(fd), 0);
	close(fd);
	ck_assert_int_eq(stat(out_path, &a), 0);
	ck_assert_int_eq(stat(lib_path, &b), 0);
	ck_assert_int_gt(a.st_size, 0);
	ck_assert_int_eq(a.st_size % 8, 0);
	ck_assert_int_eq(a.st_size, b.st_size);
	{
		char *x = malloc(a.st_size), *y = malloc(b.st_size);
		FILE *fa = fopen(out_path, "r"), *fb = fopen(lib_path, "r");

		ck_assert_int_eq(fread(x, 1, a.st_size, fa), a.st_size);
		ck_assert_int_eq(fread(y, 1, b.st_size, fb), b.st_size);
		ck_assert_int_eq(memcmp(x, y, a.st_size), 0);
		fclose(fa);
		fclose(fb);
		free(x);
		free(y);
	}
	unlink(lib_path);
	unlink(out_path);
}
END_TEST

/* A client that keeps its session (and one uffd) until its pipe closes. */
static int
holding_client(void *arg)
{
	int *p = arg;
	struct uffdc_session *s;
	struct uffdc_uffd *u;
	char c;

	close(p[1]);
	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	CHILD_CHECK(uffdc_create(s, 0, 0, &u) == 0);
	CHILD_CHECK(write(p[3], "r", 1) == 1);
	if (read(p[0], &c, 1) < 0)
		return 2;
	uffdc_session_close(s);
	return 0;
}

START_TEST(test_ctl_status_and_holders)
{
	char pidstr[64];
	int p[4], dev, leak[2], opened[2];
	pid_t client, leaker;
	char c;

	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(p + 2, O_CLOEXEC), 0);
	client = spawn(holding_client, p, true);
	close(p[0]);
	close(p[3]);
	ck_assert_int_eq(read(p[2], &c, 1), 1);

	ck_assert_int_eq(ctl(false, "status", "--socket", tb.sock, NULL), 0);
	snprintf(pidstr, sizeof(pidstr), "broker pid=%d ", (int)tb.pid);
	ck_assert(out_has(pidstr, "rules=1 sessions=1"));
	ck_assert(out_has("rule name=command-line", "sessions=1 "
	    "sessions_refused=0 uffds_granted=1 uffds_refused=0"));
	ck_assert(out_has("policy source=(command line) digest=sha256:",
	    " rules=1 invariants=none last_reload=none"));
	snprintf(pidstr, sizeof(pidstr), " pid=%d uid=65534", (int)client);
	ck_assert(out_has("session id=", pidstr));
	ck_assert(out_has(pidstr, "state=ready forked=no"));
	ck_assert(out_has(pidstr, "live=1 pending=0 max=16 uffds_granted=1"));
	ck_assert(log_wait(1000, "event=admin_status", "uid=0"));

	/* Not for everyone. */
	ck_assert_int_eq(ctl(true, "status", "--socket", tb.sock, NULL), 1);
	ck_assert(out_has("status is for root and the policy's admin group",
	    NULL));
	ck_assert(log_wait(1000, "event=admin_refused", "uid=65534"));

	/* A process holding the device outside any session is reported. */
	/* (Another broker on this machine would be listed: not asserted.) */
	ctl(false, "holders", "--socket", tb.sock, NULL);
	snprintf(pidstr, sizeof(pidstr), "holder pid=%d ", (int)tb.pid);
	ck_assert(out_lacks(pidstr));
	ck_assert_int_eq(pipe2(leak, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(opened, O_CLOEXEC), 0);
	leaker = fork();
	ck_assert_int_ge(leaker, 0);
	if (leaker == 0) {
		close(leak[1]);
		dev = open("/dev/userfaultfd", O_RDONLY | O_CLOEXEC);
		/* An idle connection to the broker is no cover. */
		if (raw_connect() < 0)
			_exit(3);
		sync_signal(opened[1]);
		if (read(leak[0], &c, 1) < 0)
			_exit(2);
		_exit(dev >= 0 ? 0 : 1);
	}
	close(leak[0]);
	close(opened[1]);
	sync_wait(opened[0]);
	close(opened[0]);
	ck_assert_int_eq(ctl(false, "holders", "--socket", tb.sock, NULL), 1);
	snprintf(pidstr, sizeof(pidstr), "holder pid=%d ", (int)leaker);
	ck_assert(out_has(pidstr, "neither the broker nor a live session"));
	/* The broker and the session hold it too, and are not listed. */
	snprintf(pidstr, sizeof(pidstr), "holder pid=%d ", (int)tb.pid);
	ck_assert(out_lacks(pidstr));
	snprintf(pidstr, sizeof(pidstr), "holder pid=%d ", (int)client);
	ck_assert(out_lacks(pidstr));
	close(leak[1]);
	ck_assert_int_eq(reap(leaker), 0);

	close(p[1]);
	ck_assert_int_eq(reap(client), 0);
	close(p[2]);
	unlink(out_path);
	broker_stop();
}
END_TEST

/*
 * Without the broker's status (here: the broker is full), the broker is
 * known by the socket it listens on, not named a foreign holder; anyone
 * else holding the device still is.
 */
START_TEST(test_ctl_holders_without_status)
{
	char needle[64], c;
	int idle, leak[2], opened[2], dev;
	pid_t leaker;

	broker_start("--allow-uid", "65534", "--max-sessions", "1", NULL);
	ck_assert_int_ge(idle = raw_connect(), 0);	/* the one connection */
	ck_assert_int_eq(pipe2(leak, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(opened, O_CLOEXEC), 0);
	if ((leaker = fork()) == 0) {
		close(leak[1]);
		dev = open("/dev/userfaultfd", O_RDONLY | O_CLOEXEC);
		sync_signal(opened[1]);
		if (read(leak[0], &c, 1) < 0)
			_exit(2);
		_exit(dev >= 0 ? 0 : 1);
	}
	close(leak[0]);
	close(opened[1]);
	sync_wait(opened[0]);
	close(opened[0]);

	ck_assert_int_eq(ctl(false, "holders", "--socket", tb.sock, NULL), 1);
	ck_assert(out_has("uffd-brokerctl: no status from ", "every holder but "
	    "the broker is listed"));
	snprintf(needle, sizeof(needle), "uffd-brokerctl: pid %d (",
	    (int)tb.pid);
	ck_assert(out_has(needle, "holds the socket listening at"));
	snprintf(needle, sizeof(needle), "holder pid=%d ", (int)tb.pid);
	ck_assert(out_lacks(needle));
	snprintf(needle, sizeof(needle), "holder pid=%d ", (int)leaker);
	ck_assert(out_has(needle, "neither the broker nor a live session"));

	/* No socket at the path: nothing vouches for the broker. */
	ck_assert_int_eq(ctl(false, "holders", "--socket", "/nonexistent/s",
	    NULL), 1);
	snprintf(needle, sizeof(needle), "holder pid=%d ", (int)tb.pid);
	ck_assert(out_has(needle, NULL));

	close(leak[1]);
	ck_assert_int_eq(reap(leaker), 0);
	close(idle);
	unlink(out_path);
	broker_stop();
}
END_TEST

/* A refused peer asking for status gets its refusal, not the status. */
START_TEST(test_ctl_status_refused_peer)
{
	broker_start("--allow-uid", "0", NULL);
	ck_assert_int_eq(ctl(true, "status", "--socket", tb.sock, NULL), 1);
	ck_assert(out_has("no rule of the policy matches uid 65534", NULL));
	ck_assert(log_wait(1000, "event=session_refused", "uid=65534"));
	unlink(out_path);
	broker_stop();
}
END_TEST

/* The policy's admin group may ask too. */
START_TEST(test_ctl_status_admin_group)
{
	const char *path = test_file("admin.conf", "[broker]\n"
	    "admin_group = nogroup\n[rule n]\nuid = 65534\n");

	broker_start("--policy", path, NULL);
	ck_assert_int_eq(ctl(true, "status", "--socket", tb.sock, NULL), 0);
	ck_assert(out_has("rule name=n line=3", NULL));
	unlink(out_path);
	broker_stop();
}
END_TEST

Suite *
make_ctl_suite(void)
{
	Suite *s = suite_create("ctl");
	TCase *tc = tcase_create("uffd-brokerctl");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_ctl_policy_check);
	tcase_add_test(tc, test_ctl_policy_explain);
	tcase_add_test(tc, test_ctl_readme_examples);
	tcase_add_test(tc, test_ctl_policy_summary);
	tcase_add_test(tc, test_ctl_policy_invariants);
	tcase_add_test(tc, test_ctl_dump_bpf);
	tcase_add_test(tc, test_ctl_status_and_holders);
	tcase_add_test(tc, test_ctl_status_admin_group);
	tcase_add_test(tc, test_ctl_holders_without_status);
	tcase_add_test(tc, test_ctl_status_refused_peer);
	suite_add_tcase(s, tc);
	return s;
}
