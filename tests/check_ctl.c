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
 * runs under valgrind too: it parses policy files and the broker's replies.
 */
static int
ctl(bool drop, const char *arg, ...)
{
	const char *argv[16];
	int argc = 0, rc;
	va_list ap;

	snprintf(out_path, sizeof(out_path), "%s/ctl.out", getenv("UFFD_TEST_DIR"));
	argv[argc++] = ctl_path();
	va_start(ap, arg);
	for (; arg != NULL && argc < 15; arg = va_arg(ap, const char *))
		argv[argc++] = arg;
	va_end(ap);
	argv[argc] = NULL;
	rc = run_program(out_path, drop, valgrind_argv(argv));
	if (under_valgrind())
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
	    "nogroup", NULL), 0);
	ck_assert(out_has("result: granted by rule 'restore-helpers': mode=user",
	    NULL));

	ck_assert_int_eq(ctl(false, "policy", "explain", "--policy",
	    "policy/policy.conf", "--uid", "1000", "--gid", "1000", NULL), 0);
	ck_assert(out_has("result: refused: no rule matches (default deny)",
	    NULL));
	ck_assert_int_eq(ctl(false, "policy", "explain", "--policy",
	    "policy/policy.conf", NULL), 2);
	unlink(out_path);
}
END_TEST

/* The client dump is exactly the BPF the library loads. */
START_TEST(test_ctl_dump_bpf)
{
	char lib_path[PATH_MAX];
	struct stat a, b;
	int fd;

	/*
	 * Natively: libseccomp asks seccomp(2) whether the kernel has user
	 * notification, and valgrind 3.19 has no seccomp(2) (make valgrind).
	 */
	unsetenv("UFFD_VALGRIND");
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
	ck_assert(out_has("rule name=command-line", "sessions=1 refusals=0 "
	    "granted=1 refused=0"));
	snprintf(pidstr, sizeof(pidstr), " pid=%d uid=65534", (int)client);
	ck_assert(out_has("session id=", pidstr));
	ck_assert(out_has(pidstr, "state=ready forked=no"));
	ck_assert(out_has(pidstr, "live=1 pending=0 max=16 granted=1"));
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
	tcase_add_test(tc, test_ctl_dump_bpf);
	tcase_add_test(tc, test_ctl_status_and_holders);
	tcase_add_test(tc, test_ctl_status_admin_group);
	tcase_add_test(tc, test_ctl_status_refused_peer);
	suite_add_tcase(s, tc);
	return s;
}
