/* SPDX-License-Identifier: ISC */
/*
 * check_grant.c - a jailed client gets a uffd bound to its own address space
 * and serves its faults with it; quotas and refusals hold.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "client.h"
#include "harness.h"

#define PAGE	4096
#define NPAGES	8

struct toucher {
	volatile uint8_t *mem;
	size_t npages;
	uint8_t seen[NPAGES];
};

static void *
touch(void *arg)
{
	struct toucher *t = arg;
	size_t i;

	for (i = 0; i < t->npages; i++)
		t->seen[i] = t->mem[i * PAGE + 7];
	return NULL;
}

/* Serve faults on mem from another thread: even pages by copy, odd by zero. */
static int
serve_region(struct uffdc_uffd *u, uint8_t *mem)
{
	struct toucher t = { .mem = mem, .npages = NPAGES };
	struct pollfd pfd = { .fd = uffdc_fd(u), .events = POLLIN };
	uint8_t src[PAGE];
	struct uffdc_event ev;
	pthread_t thr;
	size_t served = 0, i;

	CHILD_CHECK(uffdc_register(u, mem, NPAGES * PAGE, UFFDC_MODE_MISSING,
	    NULL) == 0);
	CHILD_CHECK(pthread_create(&thr, NULL, touch, &t) == 0);
	while (served < NPAGES) {
		CHILD_CHECK(poll(&pfd, 1, 5000) == 1);
		while (uffdc_read_event(u, &ev) == 1) {
			uint8_t *page;
			size_t idx;

			CHILD_CHECK(ev.kind == UFFDC_EVENT_PAGEFAULT);
			page = (uint8_t *)(uintptr_t)(ev.pagefault.address &
			    ~(uint64_t)(PAGE - 1));
			idx = (page - mem) / PAGE;
			CHILD_CHECK(idx < NPAGES);
			if (idx % 2 == 0) {
				memset(src, 0xa0 + (int)idx, PAGE);
				CHILD_CHECK(uffdc_copy(u, page, src, PAGE, 0,
				    NULL) == 0);
			} else
				CHILD_CHECK(uffdc_zero(u, page, PAGE, 0, NULL) == 0);
			served++;
		}
	}
	pthread_join(thr, NULL);
	for (i = 0; i < NPAGES; i++) {
		uint8_t want = i % 2 == 0 ? 0xa0 + (int)i : 0;

		CHILD_CHECK(t.seen[i] == want);
		CHILD_CHECK(mem[i * PAGE] == want && mem[i * PAGE + PAGE - 1] == want);
	}
	return 0;
}

static int
client_serves_anon_and_shared(void *arg)
{
	struct uffdc_session *s;
	struct uffdc_uffd *u;
	uint8_t *anon, *shared;
	int memfd;

	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	CHILD_CHECK(uffdc_create(s, UFFD_FEATURE_MISSING_SHMEM, 0, &u) == 0);
	CHILD_CHECK(uffdc_features(u) == UFFD_FEATURE_MISSING_SHMEM);
	anon = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memfd = memfd_create("guest", MFD_CLOEXEC);
	CHILD_CHECK(memfd >= 0 && ftruncate(memfd, NPAGES * PAGE) == 0);
	shared = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED,
	    memfd, 0);
	CHILD_CHECK(anon != MAP_FAILED && shared != MAP_FAILED);
	CHILD_CHECK(serve_region(u, anon) == 0);
	CHILD_CHECK(serve_region(u, shared) == 0);
	CHILD_CHECK(uffdc_release(u) == 0);
	uffdc_session_close(s);
	return 0;
}

START_TEST(test_jailed_client_serves_faults)
{
	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(run_client(client_serves_anon_and_shared, NULL, true), 0);
	ck_assert(log_wait(1000, "event=uffd_granted", "uid=65534"));
	broker_stop();
}
END_TEST

/* An address the broker does not map: only the client's mm has it. */
#define CLIENT_ONLY_ADDR	((void *)0x6f0000000000UL)

static bool
broker_maps(uintptr_t addr)
{
	char path[64], line[512];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)tb.pid);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && addr >= lo &&
		    addr < hi)
			found = true;
	}
	fclose(f);
	return found;
}

static int
client_registers_private_address(void *arg)
{
	struct uffdc_session *s;
	struct uffdc_uffd *u;
	uint8_t *p;
	char path[64], link[64];
	ssize_t n;

	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	CHILD_CHECK(uffdc_create(s, 0, 0, &u) == 0);
	p = mmap(CLIENT_ONLY_ADDR, PAGE, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	CHILD_CHECK(p == CLIENT_ONLY_ADDR);
	/* Bound to this mm: the range registers, and fills land here. */
	CHILD_CHECK(uffdc_register(u, p, PAGE, UFFDC_MODE_MISSING, NULL) == 0);
	CHILD_CHECK(uffdc_zero(u, p, PAGE, 0, NULL) == 0);
	CHILD_CHECK(p[0] == 0);
	/* The one fd the broker gave is the device, never a uffd of its own. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", s->devfd);
	n = readlink(path, link, sizeof(link) - 1);
	CHILD_CHECK(n > 0);
	link[n] = '\0';
	CHILD_CHECK(strcmp(link, "/dev/userfaultfd") == 0);
	return 0;
}

START_TEST(test_uffd_bound_to_client_mm)
{
	broker_start("--allow-uid", "65534", NULL);
	ck_assert(!broker_maps((uintptr_t)CLIENT_ONLY_ADDR));
	ck_assert_int_eq(run_client(client_registers_private_address, NULL,
	    true), 0);
	ck_assert(!broker_maps((uintptr_t)CLIENT_ONLY_ADDR));
	broker_stop();
}
END_TEST

static int
client_quota(void *arg)
{
	struct uffdc_session *s;
	struct uffdc_uffd *a, *b, *c;
	unsigned int live, max;
	int dupfd;

	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	CHILD_CHECK(uffdc_create(s, 0, 0, &a) == 0);
	CHILD_CHECK(uffdc_create(s, 0, 0, &b) == 0);
	CHILD_CHECK(uffdc_create(s, 0, 0, &c) == -EDQUOT);
	CHILD_CHECK(uffdc_session_usage(s, &live, &max) == 0);
	CHILD_CHECK(live == 2 && max == 2);
	/* A copy kept elsewhere keeps the uffd alive, and counted. */
	dupfd = dup(uffdc_fd(a));
	CHILD_CHECK(uffdc_release(a) == 0);
	CHILD_CHECK(uffdc_create(s, 0, 0, &c) == -EDQUOT);
	close(dupfd);
	CHILD_CHECK(uffdc_session_usage(s, &live, NULL) == 0);
	CHILD_CHECK(live == 1);
	CHILD_CHECK(uffdc_create(s, 0, 0, &c) == 0);
	CHILD_CHECK(uffdc_release(b) == 0 && uffdc_release(c) == 0);
	uffdc_session_close(s);
	return 0;
}

START_TEST(test_per_process_limit)
{
	broker_start("--allow-uid", "65534", "--max-uffds", "2", NULL);
	ck_assert_int_eq(run_client(client_quota, NULL, true), 0);
	ck_assert(log_wait(1000, "event=quota_hit", "quota reached: 2 of 2"));
	broker_stop();
}
END_TEST

static int
client_refused(void *arg)
{
	struct uffdc_session *s;

	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == -EACCES);
	return 0;
}

/*
 * A released uffd's slot is free again once no copy is left: release sends
 * the broker nothing, so its count near the quota must see the close; a
 * dup still holds the slot.
 */
static int
client_slot_reuse(void *arg)
{
	struct uffdc_session *s;
	struct uffdc_uffd *a, *b, *c, *d, *e;

	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	CHILD_CHECK(uffdc_create(s, 0, 0, &a) == 0);
	CHILD_CHECK(uffdc_create(s, 0, 0, &b) == 0);
	CHILD_CHECK(uffdc_create(s, 0, 0, &c) == -EDQUOT);
	CHILD_CHECK(uffdc_release(a) == 0);
	CHILD_CHECK(uffdc_create(s, 0, 0, &c) == 0);
	CHILD_CHECK(uffdc_dup(c, &d) == 0);
	CHILD_CHECK(uffdc_release(c) == 0);
	CHILD_CHECK(uffdc_create(s, 0, 0, &e) == -EDQUOT);
	CHILD_CHECK(uffdc_release(d) == 0);
	CHILD_CHECK(uffdc_create(s, 0, 0, &e) == 0);
	CHILD_CHECK(uffdc_release(b) == 0 && uffdc_release(e) == 0);
	uffdc_session_close(s);
	return 0;
}

START_TEST(test_released_slot_reused)
{
	broker_start("--allow-uid", "65534", "--max-uffds", "2", NULL);
	ck_assert_int_eq(run_client(client_slot_reuse, NULL, true), 0);
	ck_assert(log_wait(1000, "event=quota_hit", "quota reached: 2 of 2"));
	broker_stop();
}
END_TEST

/*
 * A creation let through but not yet attached counts: a client cannot run
 * several creations past the quota before it attaches any.
 */
static int
client_pending_counts(void *arg)
{
	UffdBroker__V1__Attach attach = UFFD_BROKER__V1__ATTACH__INIT;
	WireRequest req = UFFD_BROKER__V1__REQUEST__INIT;
	struct uffdc_session *s;
	char reason[256];
	WireStatus st;
	int fd;

	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	fd = client_new_uffd(s, O_CLOEXEC);
	CHILD_CHECK(fd >= 0);
	CHILD_CHECK(client_new_uffd(s, O_CLOEXEC) == -EDQUOT);
	req.body_case = UFFD_BROKER__V1__REQUEST__BODY_ATTACH;
	req.attach = &attach;
	CHILD_CHECK(raw_call(s->sock, &req, fd, &st, reason,
	    sizeof(reason)) == 0);
	CHILD_CHECK(st == UFFD_BROKER__V1__STATUS__OK);
	CHILD_CHECK(client_new_uffd(s, O_CLOEXEC) == -EDQUOT);
	uffdc_session_close(s);
	return 0;
}

START_TEST(test_pending_creation_counts)
{
	broker_start("--allow-uid", "65534", "--max-uffds", "1", NULL);
	ck_assert_int_eq(run_client(client_pending_counts, NULL, true), 0);
	broker_stop();
}
END_TEST

START_TEST(test_refused_uid)
{
	int sock;
	WireStatus st;
	char reason[256];
	UffdBroker__V1__Hello hello = UFFD_BROKER__V1__HELLO__INIT;
	WireRequest req = UFFD_BROKER__V1__REQUEST__INIT;

	broker_start("--allow-uid", "0", NULL);
	ck_assert_int_eq(run_client(client_refused, NULL, true), 0);
	ck_assert(log_wait(1000, "event=session_refused",
	    "rule=(none) reason=\"no rule of the policy matches uid 65534 "));
	/* The text the refused peer reads first, and then a hang-up. */
	ck_assert_int_eq(setresuid(NOBODY, NOBODY, 0), 0);
	sock = raw_connect_quiet();
	ck_assert_int_eq(setresuid(0, 0, 0), 0);
	ck_assert_int_eq(raw_welcome(sock, &st, reason, sizeof(reason)), 0);
	ck_assert_int_eq(st, UFFD_BROKER__V1__STATUS__DENIED);
	ck_assert_msg(strncmp(reason, "no rule of the policy matches uid 65534 "
	    "gid 0 exe (not read) cgroup /", 64) == 0, "reason: %s", reason);
	hello.version = WIRE_VERSION;
	hello.dummy_page = 0x10000;
	hello.page_size = PAGE;
	req.body_case = UFFD_BROKER__V1__REQUEST__BODY_HELLO;
	req.hello = &hello;
	ck_assert_int_lt(raw_call(sock, &req, -1, &st, reason, sizeof(reason)), 0);
	close(sock);
	broker_stop();
}
END_TEST

static int
client_user_mode_only(void *arg)
{
	struct uffdc_session *s;
	struct uffdc_uffd *u;

	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	/* Kernel faults under a user-mode rule: EACCES, and why in words. */
	CHILD_CHECK(uffdc_create(s, 0, 0, &u) == -EACCES);
	CHILD_CHECK(strstr(uffdc_session_reason(s), "kernel faults not granted "
	    "(rule '") != NULL);
	CHILD_CHECK(strstr(uffdc_session_reason(s), "UFFDC_USER_MODE_ONLY") !=
	    NULL);
	CHILD_CHECK(uffdc_create(s, 0, UFFDC_USER_MODE_ONLY, &u) == 0);
	/* Features outside the grant are refused with the broker's reason. */
	CHILD_CHECK(uffdc_create(s, UFFD_FEATURE_EVENT_FORK,
	    UFFDC_USER_MODE_ONLY, &u) == -EACCES);
	CHILD_CHECK(strstr(uffdc_session_reason(s), "not granted") != NULL);
	uffdc_session_close(s);
	return 0;
}

START_TEST(test_mode_and_features_refused)
{
	broker_start("--allow-uid", "65534", "--user-mode-only", NULL);
	ck_assert_int_eq(run_client(client_user_mode_only, NULL, true), 0);
	ck_assert(log_wait(1000, "event=uffd_refused", "kernel faults not granted"));
	ck_assert(log_wait(1000, "event=uffd_refused", "features not granted"));
	broker_stop();
}
END_TEST

/*
 * Flags the broker does not know are refused by the broker, before the
 * kernel sees them: a creation it continued would hold a quota slot, and a
 * kernel that learns a new flag would give it unasked.
 */
static int
client_unknown_flags(void *arg)
{
	static const unsigned int bad[] = { O_APPEND, O_NOCTTY, 1u << 28,
	    1u << 31 };
	struct uffdc_session *s;
	struct uffdc_uffd *u;
	unsigned int live, i;

	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHILD_CHECK(client_new_uffd(s, O_CLOEXEC | UFFD_USER_MODE_ONLY |
		    bad[i]) == -EINVAL);
	/* No creation was continued: nothing pending, the slot is free. */
	CHILD_CHECK(uffdc_session_usage(s, &live, NULL) == 0);
	CHILD_CHECK(live == 0);
	CHILD_CHECK(uffdc_create(s, 0, 0, &u) == 0);
	CHILD_CHECK(uffdc_release(u) == 0);
	uffdc_session_close(s);
	return 0;
}

START_TEST(test_unknown_creation_flags_refused)
{
	broker_start("--allow-uid", "65534", "--max-uffds", "1", NULL);
	ck_assert_int_eq(run_client(client_unknown_flags, NULL, true), 0);
	ck_assert(log_wait(1000, "event=uffd_refused", "unknown creation flags"));
	broker_stop();
}
END_TEST

/*
 * Attach takes the uffd the broker let the client create, fresh: not one the
 * client made before its filter and initialised as it liked (here with
 * EVENT_FORK, which the grant does not have).
 */
static int
client_stale_attach(void *arg)
{
	struct uffdio_api api = { .api = UFFD_API,
	    .features = UFFD_FEATURE_EVENT_FORK };
	struct uffdc_session *s;
	unsigned int live;
	int old, fd;
	WireStatus st;
	char reason[256];
	UffdBroker__V1__Attach attach = UFFD_BROKER__V1__ATTACH__INIT;
	WireRequest req = UFFD_BROKER__V1__REQUEST__INIT;

	old = syscall(SYS_userfaultfd, O_CLOEXEC);
	CHILD_CHECK(old >= 0 && ioctl(old, UFFDIO_API, &api) == 0);
	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	fd = client_new_uffd(s, O_CLOEXEC);
	CHILD_CHECK(fd >= 0);
	req.body_case = UFFD_BROKER__V1__REQUEST__BODY_ATTACH;
	req.attach = &attach;
	CHILD_CHECK(raw_call(s->sock, &req, old, &st, reason,
	    sizeof(reason)) == 0);
	CHILD_CHECK(st == UFFD_BROKER__V1__STATUS__BAD_FD);
	CHILD_CHECK(strstr(reason, "not a fresh uffd") != NULL);
	/* The creation is still due its Attach: the right uffd is taken. */
	CHILD_CHECK(raw_call(s->sock, &req, fd, &st, reason,
	    sizeof(reason)) == 0);
	CHILD_CHECK(st == UFFD_BROKER__V1__STATUS__OK);
	CHILD_CHECK(uffdc_session_usage(s, &live, NULL) == 0);
	CHILD_CHECK(live == 1);
	uffdc_session_close(s);
	return 0;
}

START_TEST(test_attach_must_be_fresh)
{
	broker_start("--allow-uid", "0", "--max-uffds", "1", NULL);
	ck_assert_int_eq(run_client(client_stale_attach, NULL, false), 0);
	broker_stop();
}
END_TEST

/*
 * One Attach per continued creation. While one is due the peer may send
 * fds, so it can queue a second Attach behind the first, with a fresh uffd
 * it made before its filter: over the quota, and never supervised.
 */
struct twice {
	int	to_test[2], to_child[2];
};

static int
client_attach_twice(void *arg)
{
	struct twice *t = arg;
	UffdBroker__V1__Attach attach = UFFD_BROKER__V1__ATTACH__INIT;
	WireRequest req = UFFD_BROKER__V1__REQUEST__INIT;
	struct uffdc_session *s;
	unsigned int live;
	char reason[256];
	WireStatus st;
	int old, fd;

	old = syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	CHILD_CHECK(old >= 0);
	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	fd = client_new_uffd(s, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	CHILD_CHECK(fd >= 0);
	/* Both are queued while the broker is stopped, an fd being due. */
	sync_signal(t->to_test[1]);
	sync_wait(t->to_child[0]);
	req.body_case = UFFD_BROKER__V1__REQUEST__BODY_ATTACH;
	req.attach = &attach;
	CHILD_CHECK(wire_send_msg(s->sock, &req.base, fd) == 0);
	CHILD_CHECK(wire_send_msg(s->sock, &req.base, old) == 0);
	sync_signal(t->to_test[1]);
	CHILD_CHECK(raw_welcome(s->sock, &st, reason, sizeof(reason)) == 0);
	CHILD_CHECK(st == UFFD_BROKER__V1__STATUS__OK);
	CHILD_CHECK(raw_welcome(s->sock, &st, reason, sizeof(reason)) == 0);
	CHILD_CHECK(st == UFFD_BROKER__V1__STATUS__OUT_OF_ORDER);
	CHILD_CHECK(strstr(reason, "attach without a supervised creation"));
	CHILD_CHECK(uffdc_session_usage(s, &live, NULL) == 0);
	CHILD_CHECK(live == 1);
	uffdc_session_close(s);
	return 0;
}

START_TEST(test_attach_needs_a_creation)
{
	struct twice t;
	pid_t child;

	ck_assert_int_eq(pipe2(t.to_test, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(t.to_child, O_CLOEXEC), 0);
	broker_start("--allow-uid", "65534", "--max-uffds", "1", NULL);
	child = spawn(client_attach_twice, &t, true);
	sync_wait(t.to_test[0]);
	broker_pause();
	sync_signal(t.to_child[1]);
	sync_wait(t.to_test[0]);
	broker_resume();
	ck_assert_int_eq(reap(child), 0);
	broker_stop();
}
END_TEST

/*
 * A creation whose caller was interrupted after the broker read it, before
 * the answer (a signal: the call is restarted as a new notification), is not
 * counted: the broker asks the kernel whether it is still pending
 * (SECCOMP_IOCTL_NOTIF_ID_VALID) before it takes a quota slot for it.
 */
static int signalled = -1;

static void
note_signal(int sig)
{
	(void)sig;
	if (write(signalled, "s", 1) != 1)
		_exit(125);
}

struct withdraw {
	int	to_test[2], to_child[2];
};

static int
client_interrupted_creation(void *arg)
{
	struct withdraw *w = arg;
	struct sigaction sa = { .sa_handler = note_signal,
	    .sa_flags = SA_RESTART };
	struct uffdc_session *s;
	struct uffdc_uffd *u;
	unsigned int live;

	signalled = w->to_test[1];
	CHILD_CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	sync_signal(w->to_test[1]);
	sync_wait(w->to_child[0]);
	CHILD_CHECK(uffdc_create(s, 0, 0, &u) == 0);
	CHILD_CHECK(uffdc_session_usage(s, &live, NULL) == 0);
	CHILD_CHECK(live == 1);
	CHILD_CHECK(uffdc_release(u) == 0);
	uffdc_session_close(s);
	return 0;
}

START_TEST(test_withdrawn_creation_not_counted)
{
	struct withdraw w;
	pid_t child;

	ck_assert_int_eq(pipe2(w.to_test, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(w.to_child, O_CLOEXEC), 0);
	broker_start("--allow-uid", "65534", "--max-uffds", "1", NULL);
	child = spawn(client_interrupted_creation, &w, true);
	sync_wait(w.to_test[0]);
	broker_trace();
	sync_signal(w.to_child[1]);
	/* The broker has read the creation; the caller is interrupted. */
	broker_hold_at_notification();
	ck_assert_int_eq(kill(child, SIGUSR1), 0);
	sync_wait(w.to_test[0]);
	broker_untrace();
	ck_assert_int_eq(reap(child), 0);
	ck_assert(!log_wait(0, "event=quota_hit", NULL));
	broker_stop();
}
END_TEST

Suite *
make_grant_suite(void)
{
	Suite *s = suite_create("grant");
	TCase *tc = tcase_create("grant");

	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_jailed_client_serves_faults);
	tcase_add_test(tc, test_uffd_bound_to_client_mm);
	tcase_add_test(tc, test_per_process_limit);
	tcase_add_test(tc, test_released_slot_reused);
	tcase_add_test(tc, test_pending_creation_counts);
	tcase_add_test(tc, test_refused_uid);
	tcase_add_test(tc, test_mode_and_features_refused);
	tcase_add_test(tc, test_unknown_creation_flags_refused);
	tcase_add_test(tc, test_attach_must_be_fresh);
	tcase_add_test(tc, test_attach_needs_a_creation);
	tcase_add_test(tc, test_withdrawn_creation_not_counted);
	suite_add_tcase(s, tc);
	return s;
}
