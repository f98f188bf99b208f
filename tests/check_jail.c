/* SPDX-License-Identifier: ISC */
/*
 * check_jail.c - a jailed client cannot make a uffd on its own, initialise
 * one, or take supervision for itself, before or after the broker dies.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "harness.h"

/* The command with bits the kernel ignores: a filter must not. */
#define HIGH_BITS	0xdead00000000UL

/* Try to become a supervisor: load an allow-all filter with a listener. */
static int
own_listener(void)
{
	struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	struct sock_fprog prog = { .len = 1, .filter = &allow };
	long fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
	    SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);

	return fd < 0 ? -errno : (int)fd;
}

struct jail_sync {
	int to_parent[2], to_child[2];
};

static int
client_stays_jailed(void *arg)
{
	struct jail_sync *js = arg;
	struct uffdc_session *s;
	struct uffdc_uffd *u;
	int fd;

	close(js->to_parent[0]);
	close(js->to_child[1]);
	/* Not root: the device node is out of reach. */
	CHILD_CHECK(open("/dev/userfaultfd", O_RDONLY) < 0 && errno == EACCES);
	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	CHILD_CHECK(uffdc_create(s, 0, 0, &u) == 0);

	/* Quota of one is used: no creation without a grant. */
	CHILD_CHECK(ioctl(s->devfd, USERFAULTFD_IOC_NEW, O_CLOEXEC) < 0 &&
	    errno == EDQUOT);
	CHILD_CHECK(syscall(SYS_ioctl, s->devfd,
	    HIGH_BITS | USERFAULTFD_IOC_NEW, O_CLOEXEC) < 0 && errno == EDQUOT);
	CHILD_CHECK(syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY) < 0 &&
	    errno == EPERM);
	CHILD_CHECK(syscall(SYS_userfaultfd, O_CLOEXEC) < 0 && errno == EPERM);

	/* A fresh uffd cannot be initialised by its holder, whatever the bits. */
	CHILD_CHECK(uffdc_release(u) == 0);
	fd = client_new_uffd(s, O_CLOEXEC);
	CHILD_CHECK(fd >= 0);
	{
		struct uffdio_api api = { .api = UFFD_API };

		CHILD_CHECK(ioctl(fd, UFFDIO_API, &api) < 0 && errno == EPERM);
		CHILD_CHECK(syscall(SYS_ioctl, fd, HIGH_BITS | UFFDIO_API,
		    &api) < 0 && errno == EPERM);
	}
	close(fd);

	CHILD_CHECK(own_listener() == -EPERM);

	/* Now the parent kills the broker. */
	sync_signal(js->to_parent[1]);
	sync_wait(js->to_child[0]);
	CHILD_CHECK(ioctl(s->devfd, USERFAULTFD_IOC_NEW, O_CLOEXEC) < 0 &&
	    errno == ENOSYS);
	CHILD_CHECK(syscall(SYS_userfaultfd, O_CLOEXEC) < 0 && errno == ENOSYS);
	CHILD_CHECK(own_listener() == -EPERM);
	return 0;
}

START_TEST(test_jailed_client_cannot_create_alone)
{
	struct jail_sync js;
	pid_t child;
	int status;

	ck_assert_int_eq(pipe2(js.to_parent, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(js.to_child, O_CLOEXEC), 0);
	broker_start("--allow-uid", "65534", "--max-uffds", "1", NULL);
	child = spawn(client_stays_jailed, &js, true);
	close(js.to_parent[1]);
	close(js.to_child[0]);
	sync_wait(js.to_parent[0]);
	ck_assert(log_wait(1000, "event=uffd_refused", "reason=\"userfaultfd(2)"));
	ck_assert(log_wait(1000, "event=quota_hit", "quota reached"));
	kill(tb.pid, SIGKILL);
	ck_assert_int_eq(waitpid(tb.pid, &status, 0), tb.pid);
	tb.pid = 0;
	sync_signal(js.to_child[1]);
	ck_assert_int_eq(reap(child), 0);
	broker_stop();
}
END_TEST

/* Without the jail, the same calls would succeed: the test can fail. */
/*
 * The BPF the library loads was compiled at build time: it is what the
 * rules make with this libseccomp now, instruction for instruction.
 */
START_TEST(test_compiled_fragment_matches_rules)
{
	const struct sock_filter *insns;
	struct sock_filter built[BPF_MAXINSNS];
	size_t len;
	off_t n;
	int fd;

	client_jail_bpf(&insns, &len);
	ck_assert_uint_gt(len, 0);
	ck_assert_int_ge(fd = memfd_create("fragment", MFD_CLOEXEC), 0);
	ck_assert_int_eq(client_jail_export_bpf(fd), 0);
	n = lseek(fd, 0, SEEK_END);
	ck_assert_int_eq(n, (off_t)(len * sizeof(*insns)));
	ck_assert_int_eq(pread(fd, built, n, 0), n);
	ck_assert_int_eq(memcmp(built, insns, n), 0);
	close(fd);
}
END_TEST

START_TEST(test_unjailed_root_can_listen)
{
	int fd = own_listener();

	ck_assert_int_ge(fd, 0);
	close(fd);
}
END_TEST

/*
 * policy/uffd-client.minijail.policy as a libseccomp filter: "name: 1" or
 * "name: argN == V || argN == W ...". Anything else fails the test.
 */
static scmp_filter_ctx
minijail_filter(const char *path)
{
	char line[1024], *colon, *expr, *tok, *save;
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	unsigned int arg;
	unsigned long long v;
	int nr, lineno = 0;
	FILE *f = fopen(path, "r");

	ck_assert_ptr_nonnull(ctx);
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		line[strcspn(line, "\n#")] = '\0';
		if ((colon = strchr(line, ':')) == NULL) {
			ck_assert_msg(strspn(line, " \t") == strlen(line),
			    "%s:%d: not a rule", path, lineno);
			continue;
		}
		*colon = '\0';
		nr = seccomp_syscall_resolve_name(line);
		ck_assert_msg(nr != __NR_SCMP_ERROR, "%s:%d: no system call '%s'",
		    path, lineno, line);
		expr = colon + 1;
		if (strcmp(expr, " 1") == 0) {
			ck_assert_int_eq(seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr,
			    0), 0);
			continue;
		}
		for (tok = strtok_r(expr, "|", &save); tok != NULL;
		    tok = strtok_r(NULL, "|", &save)) {
			ck_assert_msg(sscanf(tok, " arg%u == %lli", &arg,
			    (long long *)&v) == 2 && arg < 6,
			    "%s:%d: cannot read '%s'", path, lineno, tok);
			ck_assert_int_eq(seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr,
			    1, SCMP_CMP(arg, SCMP_CMP_EQ, v, 0)), 0);
		}
	}
	fclose(f);
	return ctx;
}

/* A whole client life under the minijail list and nothing else. */
static int
client_under_minijail_list(void *arg)
{
	scmp_filter_ctx ctx = arg;
	struct uffdc_session *s;
	struct uffdc_deadcheck *dc;
	struct uffdc_uffd *u, *d;
	struct uffdc_event ev;
	uint8_t *mem, src[4096];

	CHILD_CHECK((mem = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0)) != MAP_FAILED);
	CHILD_CHECK(uffdc_deadcheck_new(&dc) == 0);
	/* What the child itself needs to report and end, besides the list. */
	CHILD_CHECK(seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(exit_group),
	    0) == 0);
#ifdef TEST_SANITIZED
	/* The sanitizer runtime of this test build (make sanitize). */
	CHILD_CHECK(seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(sigaltstack),
	    0) == 0);
#endif
	CHILD_CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
	CHILD_CHECK(seccomp_load(ctx) == 0);

	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	/*
	 * Without EVENT_REMOVE: the dead-uffd check's reset below is in this
	 * very mm, and would wait for its own remove event to be read.
	 */
	CHILD_CHECK(uffdc_create(s, UFFD_FEATURE_MISSING_SHMEM, 0, &u) == 0);
	CHILD_CHECK(uffdc_register(u, mem, 2 * 4096, UFFDC_MODE_MISSING,
	    NULL) == 0);
	memset(src, 0x3c, sizeof(src));
	CHILD_CHECK(uffdc_copy(u, mem, src, 4096, 0, NULL) == 0);
	CHILD_CHECK(uffdc_zero(u, mem + 4096, 4096, 0, NULL) == 0);
	CHILD_CHECK(uffdc_wake(u, mem, 4096) == 0);
	CHILD_CHECK(uffdc_read_event(u, &ev) == 0);
	CHILD_CHECK(mem[0] == 0x3c && mem[4096] == 0);
	CHILD_CHECK(uffdc_dup(u, &d) == 0);
	CHILD_CHECK(uffdc_deadcheck_register(dc, d) == 0);
	CHILD_CHECK(!uffdc_deadcheck_is_dead(dc, d));
	CHILD_CHECK(uffdc_deadcheck_reset(dc) == 0);
	CHILD_CHECK(uffdc_unregister(u, mem, 2 * 4096) == 0);
	CHILD_CHECK(uffdc_release(d) == 0);
	CHILD_CHECK(uffdc_release(u) == 0);
	uffdc_session_close(s);
	return 0;
}

START_TEST(test_minijail_fragment_suffices)
{
	scmp_filter_ctx ctx = minijail_filter("policy/uffd-client.minijail.policy");

	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(run_client(client_under_minijail_list, ctx, true), 0);
	ck_assert(log_wait(1000, "event=uffd_granted", NULL));
	seccomp_release(ctx);
	broker_stop();
}
END_TEST

Suite *
make_jail_suite(void)
{
	Suite *s = suite_create("jail");
	TCase *tc = tcase_create("jail");

	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_jailed_client_cannot_create_alone);
	tcase_add_test(tc, test_compiled_fragment_matches_rules);
	tcase_add_test(tc, test_unjailed_root_can_listen);
	tcase_add_test(tc, test_minijail_fragment_suffices);
	suite_add_tcase(s, tc);
	return s;
}
