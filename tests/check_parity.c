/* SPDX-License-Identifier: ISC */
/*
 * check_parity.c - the behaviours of crosvm's vmm-swap userfaultfd module
 * (crosvm swap/src/userfaultfd.rs), through a brokered uffd:
 * its error kinds, its events, try_clone and from_raw_descriptor,
 * register_regions and the dead-uffd check.
 *
 * A "donor" is a jailed client that creates a uffd and sends it to the test
 * process, as a device process sends its uffd to crosvm's swap monitor; the
 * test then plays the monitor, and can let the donor die under it.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "harness.h"

#define PAGE		4096
#define EVENT_WAIT_MS	5000

/* Poll u for its next event and read it; false on timeout or error. */
static bool
next_event(struct uffdc_uffd *u, struct uffdc_event *ev)
{
	struct pollfd pfd = { .fd = uffdc_fd(u), .events = POLLIN };

	return poll(&pfd, 1, EVENT_WAIT_MS) == 1 && uffdc_read_event(u, ev) == 1;
}

static uint8_t *
map_pages(size_t npages, int flags)
{
	void *p = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE,
	    flags | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/*
 * The VmFlags line of the mapping at addr in pid's mm, in flags; false when
 * nothing is mapped there.
 */
static bool
vma_flags(pid_t pid, const void *addr, char *flags, size_t flagslen)
{
	char path[64], line[512];
	bool in = false, mapped = false;
	unsigned long lo, hi;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2)
			in = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
		else if (in && strncmp(line, "VmFlags:", 8) == 0) {
			snprintf(flags, flagslen, "%s", line);
			mapped = true;
		}
	}
	fclose(f);
	return mapped;
}

/* Whether addr is registered for missing faults: "um" in its VmFlags. */
static bool
registered_missing(pid_t pid, const void *addr)
{
	char flags[512];

	return vma_flags(pid, addr, flags, sizeof(flags)) &&
	    strstr(flags, " um") != NULL;
}

/* --- donors: uffds of other processes --- */

enum { DONOR_EXIT = 'x', DONOR_TOUCH = 't' };

struct donor {
	uint64_t features;		/* asked of the broker */
	const struct uffdc_range *touch; /* read on DONOR_TOUCH, page by page */
	size_t	ntouch;
	uint8_t	fill;			/* what the test serves those pages with */
	int	chan[2];		/* the uffd comes to the test over this */
	int	go[2];			/* the test's one command to the donor */
	pid_t	pid;
	struct uffdc_uffd *u;		/* the test's handle on the donor's uffd */
};

static int
donor_main(void *arg)
{
	struct donor *d = arg;
	struct uffdc_session *s;
	struct uffdc_uffd *u;
	uint64_t features;
	size_t i, off;
	char cmd;

	close(d->chan[0]);
	close(d->go[1]);
	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	CHILD_CHECK(uffdc_create(s, d->features, 0, &u) == 0);
	features = uffdc_features(u);
	CHILD_CHECK(wire_send(d->chan[1], &features, sizeof(features),
	    uffdc_fd(u)) == 0);
	CHILD_CHECK(read(d->go[0], &cmd, 1) == 1);
	if (cmd == DONOR_TOUCH) {
		/* Blocks on each page until the test serves it. */
		for (i = 0; i < d->ntouch; i++)
			for (off = 0; off < d->touch[i].len; off += PAGE)
				CHILD_CHECK(((volatile uint8_t *)
				    d->touch[i].addr)[off] == d->fill);
	}
	CHILD_CHECK(uffdc_release(u) == 0);
	uffdc_session_close(s);
	return 0;
}

/* Spawn a donor and adopt the uffd it sends. */
static void
donor_start(struct donor *d, uint64_t features)
{
	struct pollfd pfd;
	uint64_t sent;
	int fd = -1, flags;

	d->features = features;
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
	    d->chan), 0);
	ck_assert_int_eq(pipe2(d->go, O_CLOEXEC), 0);
	d->pid = spawn(donor_main, d, true);
	close(d->chan[1]);
	close(d->go[0]);
	pfd = (struct pollfd){ .fd = d->chan[0], .events = POLLIN };
	ck_assert_int_eq(poll(&pfd, 1, EVENT_WAIT_MS), 1);
	ck_assert_int_eq(wire_recv(d->chan[0], &sent, sizeof(sent), &fd,
	    &flags), sizeof(sent));
	close(d->chan[0]);
	ck_assert_int_ge(fd, 0);
	ck_assert_uint_eq(sent, features);
	ck_assert_int_eq(uffdc_adopt(fd, sent, &d->u), 0);
}

static void
donor_command(struct donor *d, char cmd)
{
	ck_assert_int_eq(write(d->go[1], &cmd, 1), 1);
	close(d->go[1]);
}

/* Let the donor exit and reap it: its mm is gone when this returns. */
static void
donor_exit(struct donor *d)
{
	donor_command(d, DONOR_EXIT);
	ck_assert_int_eq(reap(d->pid), 0);
}

/* After DONOR_TOUCH: serve each page the donor reads, in order. */
static void
donor_serve(struct donor *d)
{
	struct uffdc_event ev;
	uint8_t src[PAGE];
	uint8_t *page;
	size_t i, off;

	memset(src, d->fill, sizeof(src));
	for (i = 0; i < d->ntouch; i++) {
		for (off = 0; off < d->touch[i].len; off += PAGE) {
			page = (uint8_t *)d->touch[i].addr + off;
			ck_assert(next_event(d->u, &ev));
			ck_assert_int_eq(ev.kind, UFFDC_EVENT_PAGEFAULT);
			ck_assert_uint_eq(ev.pagefault.address, (uintptr_t)page);
			ck_assert_int_eq(uffdc_copy(d->u, page, src, PAGE, 0,
			    NULL), 0);
		}
	}
	ck_assert_int_eq(reap(d->pid), 0);
}

/* --- error kinds --- */

static int
client_copy_over_existing(void *arg)
{
	struct uffdc_session *s;
	struct uffdc_uffd *u;
	uint8_t src[PAGE], *mem;
	size_t done = 1;

	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	CHILD_CHECK(uffdc_create(s, 0, 0, &u) == 0);
	CHILD_CHECK((mem = map_pages(2, MAP_PRIVATE)) != NULL);
	/* Page 0 present before registration, page 1 filled through the uffd. */
	mem[0] = 0x11;
	CHILD_CHECK(uffdc_register(u, mem, 2 * PAGE, UFFDC_MODE_MISSING,
	    NULL) == 0);
	CHILD_CHECK(uffdc_zero(u, mem + PAGE, PAGE, 0, NULL) == 0);
	memset(src, 0x22, sizeof(src));
	CHILD_CHECK(uffdc_copy(u, mem, src, PAGE, 0, &done) == -EEXIST);
	CHILD_CHECK(done == 0);
	CHILD_CHECK(uffdc_copy(u, mem + PAGE, src, PAGE, 0, &done) == -EEXIST);
	CHILD_CHECK(done == 0);
	CHILD_CHECK(uffdc_zero(u, mem, PAGE, 0, &done) == -EEXIST);
	/* Nothing was overwritten. */
	CHILD_CHECK(mem[0] == 0x11 && mem[PAGE] == 0);
	CHILD_CHECK(uffdc_release(u) == 0);
	uffdc_session_close(s);
	return 0;
}

/*
 * WP and MINOR registration with a uffd the broker initialised with the
 * features they need; the ioctls the kernel then allows on the range.
 */
static int
client_register_modes(void *arg)
{
	struct uffdc_session *s;
	struct uffdc_uffd *u, *plain;
	uint64_t ioctls = 0;
	uint8_t *anon, *shm;
	int memfd;

	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	CHILD_CHECK(uffdc_create(s, UFFD_FEATURE_PAGEFAULT_FLAG_WP |
	    UFFD_FEATURE_MINOR_SHMEM | UFFD_FEATURE_MISSING_SHMEM, 0, &u) == 0);
	CHILD_CHECK(uffdc_create(s, 0, 0, &plain) == 0);
	CHILD_CHECK((anon = map_pages(1, MAP_PRIVATE)) != NULL);
	memfd = memfd_create("minor", MFD_CLOEXEC);
	CHILD_CHECK(memfd >= 0 && ftruncate(memfd, PAGE) == 0);
	shm = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	CHILD_CHECK(shm != MAP_FAILED);

	CHILD_CHECK(uffdc_register(u, anon, PAGE, UFFDC_MODE_MISSING |
	    UFFDC_MODE_WP, &ioctls) == 0);
	CHILD_CHECK(ioctls & (1ULL << _UFFDIO_WRITEPROTECT));
	CHILD_CHECK(uffdc_unregister(u, anon, PAGE) == 0);
	CHILD_CHECK(uffdc_register(u, shm, PAGE, UFFDC_MODE_MINOR, &ioctls) == 0);
	CHILD_CHECK(ioctls & (1ULL << _UFFDIO_CONTINUE));
	CHILD_CHECK(uffdc_unregister(u, shm, PAGE) == 0);
	/* Modes the library does not know are refused before the kernel. */
	CHILD_CHECK(uffdc_register(plain, anon, PAGE, 1u << 7, NULL) == -EINVAL);
	CHILD_CHECK(uffdc_release(plain) == 0);
	CHILD_CHECK(uffdc_release(u) == 0);
	uffdc_session_close(s);
	return 0;
}

START_TEST(test_register_wp_and_minor)
{
	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(run_client(client_register_modes, NULL, true), 0);
	broker_stop();
}
END_TEST

START_TEST(test_copy_over_existing_page)
{
	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(run_client(client_copy_over_existing, NULL, true), 0);
	broker_stop();
}
END_TEST

static int
client_partial_copy(void *arg)
{
	struct uffdc_session *s;
	struct uffdc_uffd *u;
	uint8_t src[2 * PAGE], *mem;
	size_t done = 0;

	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	CHILD_CHECK(uffdc_create(s, 0, 0, &u) == 0);
	CHILD_CHECK((mem = map_pages(4, MAP_PRIVATE)) != NULL);
	CHILD_CHECK(uffdc_register(u, mem, 4 * PAGE, UFFDC_MODE_MISSING,
	    NULL) == 0);
	/* The second page of each pair is already there. */
	CHILD_CHECK(uffdc_zero(u, mem + PAGE, PAGE, 0, NULL) == 0);
	CHILD_CHECK(uffdc_zero(u, mem + 3 * PAGE, PAGE, 0, NULL) == 0);
	memset(src, 0x5a, sizeof(src));
	CHILD_CHECK(uffdc_copy(u, mem, src, 2 * PAGE, 0, &done) ==
	    -UFFDC_EPARTIAL);
	CHILD_CHECK(done == PAGE);
	CHILD_CHECK(mem[0] == 0x5a && mem[PAGE - 1] == 0x5a && mem[PAGE] == 0);
	done = 0;
	CHILD_CHECK(uffdc_zero(u, mem + 2 * PAGE, 2 * PAGE, 0, &done) ==
	    -UFFDC_EPARTIAL);
	CHILD_CHECK(done == PAGE);
	CHILD_CHECK(mem[2 * PAGE] == 0);
	CHILD_CHECK(uffdc_release(u) == 0);
	uffdc_session_close(s);
	return 0;
}

START_TEST(test_partial_copy)
{
	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(run_client(client_partial_copy, NULL, true), 0);
	broker_stop();
}
END_TEST

/*
 * The restorer's helpers: a range filled around pages already present,
 * which are left as they are; zeroes the same way; and page-cache pages of
 * a memfd mapped by UFFDIO_CONTINUE, nothing copied.
 */
#define FILL_PAGES	64
static int
client_fill_helpers(void *arg)
{
	static uint8_t src[FILL_PAGES * PAGE], other[PAGE];
	struct uffdc_progress pr = { 0 };
	struct uffdc_session *s;
	struct uffdc_uffd *u;
	uint8_t *mem, *zero, *shm;
	size_t i;
	int memfd;

	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	CHILD_CHECK(uffdc_create(s, UFFD_FEATURE_MINOR_SHMEM, 0, &u) == 0);
	for (i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i * 7 + i / PAGE);
	memset(other, 0xee, sizeof(other));
	CHILD_CHECK((mem = map_pages(FILL_PAGES, MAP_PRIVATE)) != NULL);
	CHILD_CHECK(uffdc_register(u, mem, FILL_PAGES * PAGE,
	    UFFDC_MODE_MISSING, NULL) == 0);
	/* Pages 3 and 10..12 were filled first, by a fault handler say. */
	CHILD_CHECK(uffdc_copy(u, mem + 3 * PAGE, other, PAGE, 0, NULL) == 0);
	for (i = 10; i <= 12; i++)
		CHILD_CHECK(uffdc_copy(u, mem + i * PAGE, other, PAGE, 0,
		    NULL) == 0);
	CHILD_CHECK(uffdc_fill(u, mem + 1, src, PAGE, 0, NULL) == -EINVAL);
	CHILD_CHECK(uffdc_fill(u, mem, src, FILL_PAGES * PAGE, 0, &pr) == 0);
	CHILD_CHECK(pr.filled == (FILL_PAGES - 4) * PAGE);
	CHILD_CHECK(pr.present == 4 * PAGE);
	/* One call per run between present pages, one per present page. */
	CHILD_CHECK(pr.calls <= 3 + 4 + 2);
	for (i = 0; i < FILL_PAGES; i++) {
		bool kept = i == 3 || (i >= 10 && i <= 12);

		CHILD_CHECK(memcmp(mem + i * PAGE, kept ? other : src + i * PAGE,
		    PAGE) == 0);
	}
	/* Zeroes: around a present page too. */
	CHILD_CHECK((zero = map_pages(8, MAP_PRIVATE)) != NULL);
	CHILD_CHECK(uffdc_register(u, zero, 8 * PAGE, UFFDC_MODE_MISSING,
	    NULL) == 0);
	CHILD_CHECK(uffdc_copy(u, zero + 5 * PAGE, other, PAGE, 0, NULL) == 0);
	memset(&pr, 0, sizeof(pr));
	CHILD_CHECK(uffdc_fill(u, zero, NULL, 8 * PAGE, 0, &pr) == 0);
	CHILD_CHECK(pr.filled == 7 * PAGE && pr.present == PAGE);
	CHILD_CHECK(zero[0] == 0 && zero[8 * PAGE - 1] == 0 &&
	    zero[5 * PAGE] == 0xee);
	/* Minor faults: the memfd's pages are in its page cache already. */
	CHILD_CHECK((memfd = memfd_create("fill-minor", MFD_CLOEXEC)) >= 0);
	CHILD_CHECK(pwrite(memfd, src, 16 * PAGE, 0) == 16 * PAGE);
	shm = mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	CHILD_CHECK(shm != MAP_FAILED);
	CHILD_CHECK(uffdc_register(u, shm, 16 * PAGE, UFFDC_MODE_MINOR,
	    NULL) == 0);
	CHILD_CHECK(uffdc_continue(u, shm + 2 * PAGE, PAGE, 0, NULL) == 0);
	memset(&pr, 0, sizeof(pr));
	CHILD_CHECK(uffdc_fill_minor(u, shm, 16 * PAGE, 0, &pr) == 0);
	CHILD_CHECK(pr.filled == 15 * PAGE && pr.present == PAGE);
	CHILD_CHECK(memcmp(shm, src, 16 * PAGE) == 0);
	CHILD_CHECK(uffdc_release(u) == 0);
	uffdc_session_close(s);
	return 0;
}

START_TEST(test_fill_helpers)
{
	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(run_client(client_fill_helpers, NULL, true), 0);
	broker_stop();
}
END_TEST

START_TEST(test_zero_on_dead_process)
{
	struct donor d = { 0 };
	uint8_t src[PAGE], *mem;
	size_t done = 1;

	broker_start("--allow-uid", "65534", NULL);
	ck_assert_ptr_nonnull(mem = map_pages(2, MAP_PRIVATE));
	donor_start(&d, 0);
	/* Alive: fills land in the donor's mm. */
	ck_assert_int_eq(uffdc_register(d.u, mem, 2 * PAGE, UFFDC_MODE_MISSING,
	    NULL), 0);
	ck_assert_int_eq(uffdc_zero(d.u, mem, PAGE, UFFDC_DONTWAKE, NULL), 0);
	ck_assert_int_eq(uffdc_zero(d.u, mem, PAGE, UFFDC_DONTWAKE, NULL),
	    -EEXIST);
	donor_exit(&d);
	ck_assert_int_eq(uffdc_zero(d.u, mem + PAGE, PAGE, UFFDC_DONTWAKE,
	    &done), -ESRCH);
	ck_assert_uint_eq(done, 0);
	/* A present page does not hide it: the mm is checked first. */
	ck_assert_int_eq(uffdc_zero(d.u, mem, PAGE, 0, NULL), -ESRCH);
	memset(src, 1, sizeof(src));
	ck_assert_int_eq(uffdc_copy(d.u, mem + PAGE, src, PAGE, 0, NULL),
	    -ESRCH);
	ck_assert_int_eq(uffdc_release(d.u), 0);
	munmap(mem, 2 * PAGE);
	broker_stop();
}
END_TEST

START_TEST(test_register_on_dead_process)
{
	struct donor d = { 0 };
	uint8_t *mem;

	broker_start("--allow-uid", "65534", NULL);
	ck_assert_ptr_nonnull(mem = map_pages(1, MAP_PRIVATE));
	donor_start(&d, 0);
	ck_assert_int_eq(uffdc_register(d.u, mem, PAGE, UFFDC_MODE_MISSING,
	    NULL), 0);
	ck_assert_int_eq(uffdc_unregister(d.u, mem, PAGE), 0);
	ck_assert(!registered_missing(d.pid, mem));
	donor_exit(&d);
	/* The kernel says ENOMEM here; the library reports -ESRCH. */
	ck_assert_int_eq(uffdc_register(d.u, mem, PAGE, UFFDC_MODE_MISSING,
	    NULL), -ESRCH);
	ck_assert_int_eq(uffdc_unregister(d.u, mem, PAGE), -ESRCH);
	ck_assert_int_eq(uffdc_release(d.u), 0);
	munmap(mem, PAGE);
	broker_stop();
}
END_TEST

struct sleeper {
	volatile uint8_t *mem;
	int	done;		/* pipe: written once the read returned */
	uint8_t	seen;
};

static void *
read_then_report(void *arg)
{
	struct sleeper *sl = arg;

	sl->seen = sl->mem[0];
	sync_signal(sl->done);
	return NULL;
}

static int
client_wake(void *arg)
{
	struct uffdc_session *s;
	struct uffdc_uffd *u;
	struct uffdc_event ev;
	struct sleeper sl;
	struct pollfd pfd;
	uint8_t src[PAGE], *mem;
	pthread_t thr;
	int done[2];

	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	CHILD_CHECK(uffdc_create(s, 0, 0, &u) == 0);
	CHILD_CHECK((mem = map_pages(1, MAP_PRIVATE)) != NULL);
	CHILD_CHECK(uffdc_register(u, mem, PAGE, UFFDC_MODE_MISSING, NULL) == 0);
	CHILD_CHECK(pipe2(done, O_CLOEXEC) == 0);
	sl = (struct sleeper){ .mem = mem, .done = done[1] };
	CHILD_CHECK(pthread_create(&thr, NULL, read_then_report, &sl) == 0);
	CHILD_CHECK(next_event(u, &ev));
	CHILD_CHECK(ev.kind == UFFDC_EVENT_PAGEFAULT);
	memset(src, 0x33, sizeof(src));
	CHILD_CHECK(uffdc_copy(u, mem, src, PAGE, UFFDC_DONTWAKE, NULL) == 0);
	/* Filled but not woken: the reader still sleeps. */
	pfd = (struct pollfd){ .fd = done[0], .events = POLLIN };
	CHILD_CHECK(poll(&pfd, 1, 100) == 0);
	CHILD_CHECK(uffdc_wake(u, mem, PAGE) == 0);
	CHILD_CHECK(poll(&pfd, 1, EVENT_WAIT_MS) == 1);
	CHILD_CHECK(pthread_join(thr, NULL) == 0);
	CHILD_CHECK(sl.seen == 0x33);
	close(done[0]);
	close(done[1]);
	CHILD_CHECK(uffdc_release(u) == 0);
	uffdc_session_close(s);
	return 0;
}

START_TEST(test_wake)
{
	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(run_client(client_wake, NULL, true), 0);
	broker_stop();
}
END_TEST

/* --- events --- */

struct faulter {
	volatile uint8_t *mem;
	pid_t	tid;
	uint8_t	seen;
};

static void *
write_then_read(void *arg)
{
	struct faulter *f = arg;

	__atomic_store_n(&f->tid, gettid(), __ATOMIC_RELEASE);
	f->mem[123] = 1;
	f->seen = f->mem[PAGE + 5];
	return NULL;
}

static int
client_pagefault_event(void *arg)
{
	struct uffdc_session *s;
	struct uffdc_uffd *u;
	struct uffdc_event ev;
	struct faulter f;
	uint8_t src[PAGE], *mem;
	pthread_t thr;

	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	CHILD_CHECK(uffdc_create(s, UFFD_FEATURE_THREAD_ID, 0, &u) == 0);
	CHILD_CHECK((mem = map_pages(2, MAP_PRIVATE)) != NULL);
	CHILD_CHECK(uffdc_register(u, mem, 2 * PAGE, UFFDC_MODE_MISSING,
	    NULL) == 0);
	memset(src, 0x44, sizeof(src));
	f = (struct faulter){ .mem = mem };
	CHILD_CHECK(pthread_create(&thr, NULL, write_then_read, &f) == 0);

	/* A write, reported at its page, by the faulting thread's id. */
	CHILD_CHECK(next_event(u, &ev));
	CHILD_CHECK(ev.kind == UFFDC_EVENT_PAGEFAULT);
	CHILD_CHECK(ev.pagefault.address == (uintptr_t)mem);
	CHILD_CHECK(ev.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE);
	CHILD_CHECK(ev.pagefault.tid != 0 && ev.pagefault.tid !=
	    (uint32_t)gettid());
	CHILD_CHECK(ev.pagefault.tid ==
	    (uint32_t)__atomic_load_n(&f.tid, __ATOMIC_ACQUIRE));
	CHILD_CHECK(uffdc_copy(u, mem, src, PAGE, 0, NULL) == 0);

	/* Then a read. */
	CHILD_CHECK(next_event(u, &ev));
	CHILD_CHECK(ev.kind == UFFDC_EVENT_PAGEFAULT);
	CHILD_CHECK(ev.pagefault.address == (uintptr_t)mem + PAGE);
	CHILD_CHECK((ev.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE) == 0);
	CHILD_CHECK(ev.pagefault.tid == (uint32_t)f.tid);
	CHILD_CHECK(uffdc_copy(u, mem + PAGE, src, PAGE, 0, NULL) == 0);

	CHILD_CHECK(pthread_join(thr, NULL) == 0);
	CHILD_CHECK(mem[123] == 1 && mem[0] == 0x44 && f.seen == 0x44);
	CHILD_CHECK(uffdc_read_event(u, &ev) == 0);
	CHILD_CHECK(uffdc_release(u) == 0);
	uffdc_session_close(s);
	return 0;
}

START_TEST(test_event_pagefault)
{
	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(run_client(client_pagefault_event, NULL, true), 0);
	broker_stop();
}
END_TEST

struct forker {
	volatile uint8_t *mem;
	int	status;		/* the forked child's wait status */
};

/* Fork; the child reads a registered page: its uffd must serve it. */
static void *
fork_and_wait(void *arg)
{
	struct forker *fk = arg;
	pid_t pid;

	fk->status = -1;
	if ((pid = fork()) < 0)
		return NULL;
	if (pid == 0) {
		/* The forking thread is the parent PDEATHSIG watches. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
			_exit(126);
		_exit(fk->mem[0] == 0x5a ? 0 : 1);
	}
	if (waitpid(pid, &fk->status, 0) != pid)
		fk->status = -1;
	return NULL;
}

static int
client_fork_event(void *arg)
{
	struct uffdc_session *s;
	struct uffdc_uffd *u, *cu;
	struct uffdc_event ev;
	struct forker fk;
	uint8_t src[PAGE], *mem;
	pthread_t thr;

	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	CHILD_CHECK(uffdc_create(s, UFFD_FEATURE_EVENT_FORK, 0, &u) == 0);
	CHILD_CHECK((mem = map_pages(1, MAP_PRIVATE)) != NULL);
	CHILD_CHECK(uffdc_register(u, mem, PAGE, UFFDC_MODE_MISSING, NULL) == 0);
	fk = (struct forker){ .mem = mem };
	/* fork() waits until its event is read: fork on another thread. */
	CHILD_CHECK(pthread_create(&thr, NULL, fork_and_wait, &fk) == 0);
	CHILD_CHECK(next_event(u, &ev));
	CHILD_CHECK(ev.kind == UFFDC_EVENT_FORK);
	CHILD_CHECK(ev.fork.ufd >= 0);
	CHILD_CHECK(uffdc_adopt(ev.fork.ufd, uffdc_features(u), &cu) == 0);
	/* The child's fault arrives on the child's uffd, not on ours. */
	CHILD_CHECK(next_event(cu, &ev));
	CHILD_CHECK(ev.kind == UFFDC_EVENT_PAGEFAULT);
	CHILD_CHECK(ev.pagefault.address == (uintptr_t)mem);
	CHILD_CHECK(uffdc_read_event(u, &ev) == 0);
	memset(src, 0x5a, sizeof(src));
	CHILD_CHECK(uffdc_copy(cu, mem, src, PAGE, 0, NULL) == 0);
	CHILD_CHECK(pthread_join(thr, NULL) == 0);
	CHILD_CHECK(WIFEXITED(fk.status) && WEXITSTATUS(fk.status) == 0);
	/* The copy went to the child's mm: ours is still missing the page. */
	CHILD_CHECK(uffdc_zero(u, mem, PAGE, 0, NULL) == 0);
	CHILD_CHECK(mem[0] == 0);
	/* The child is gone, and its uffd says so. */
	CHILD_CHECK(uffdc_zero(cu, mem, PAGE, 0, NULL) == -ESRCH);
	CHILD_CHECK(uffdc_release(cu) == 0);
	CHILD_CHECK(uffdc_release(u) == 0);
	uffdc_session_close(s);
	return 0;
}

START_TEST(test_event_fork)
{
	char mask[32];

	snprintf(mask, sizeof(mask), "0x%llx", (unsigned long long)
	    (UFFDC_FEATURES_DEFAULT | UFFD_FEATURE_EVENT_FORK));
	broker_start("--allow-uid", "65534", "--features", mask, NULL);
	ck_assert_int_eq(run_client(client_fork_event, NULL, true), 0);
	broker_stop();
}
END_TEST

/* A memory operation that waits until its event is read: run on a thread. */
struct mm_op {
	void	*addr;
	size_t	len;
	void	*to;		/* mremap: where to */
	int	advice;		/* madvise */
	void	*result;	/* mremap: the new address */
	int	rc;
};

static void *
do_mremap(void *arg)
{
	struct mm_op *op = arg;

	op->result = mremap(op->addr, op->len, op->len,
	    MREMAP_MAYMOVE | MREMAP_FIXED, op->to);
	return NULL;
}

static void *
do_madvise(void *arg)
{
	struct mm_op *op = arg;

	op->rc = madvise(op->addr, op->len, op->advice);
	return NULL;
}

static void *
do_munmap(void *arg)
{
	struct mm_op *op = arg;

	op->rc = munmap(op->addr, op->len);
	return NULL;
}

static int
client_remap_event(void *arg)
{
	struct uffdc_session *s;
	struct uffdc_uffd *u;
	struct uffdc_event ev;
	struct mm_op op;
	uint8_t *mem, *to;
	pthread_t thr;

	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	CHILD_CHECK(uffdc_create(s, UFFD_FEATURE_EVENT_REMAP, 0, &u) == 0);
	CHILD_CHECK((mem = map_pages(2, MAP_PRIVATE)) != NULL);
	CHILD_CHECK((to = map_pages(2, MAP_PRIVATE)) != NULL);
	CHILD_CHECK(uffdc_register(u, mem, 2 * PAGE, UFFDC_MODE_MISSING,
	    NULL) == 0);
	op = (struct mm_op){ .addr = mem, .len = 2 * PAGE, .to = to };
	CHILD_CHECK(pthread_create(&thr, NULL, do_mremap, &op) == 0);
	CHILD_CHECK(next_event(u, &ev));
	CHILD_CHECK(ev.kind == UFFDC_EVENT_REMAP);
	CHILD_CHECK(ev.remap.from == (uintptr_t)mem);
	CHILD_CHECK(ev.remap.to == (uintptr_t)to);
	CHILD_CHECK(ev.remap.len == 2 * PAGE);
	CHILD_CHECK(pthread_join(thr, NULL) == 0);
	CHILD_CHECK(op.result == to);
	/* The registration moved with the mapping. */
	CHILD_CHECK(uffdc_zero(u, to, PAGE, 0, NULL) == 0);
	CHILD_CHECK(uffdc_release(u) == 0);
	uffdc_session_close(s);
	return 0;
}

START_TEST(test_event_remap)
{
	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(run_client(client_remap_event, NULL, true), 0);
	broker_stop();
}
END_TEST

/* madvise() on a registered range; expect one REMOVE event for it. */
static void
expect_remove(struct uffdc_uffd *u, uint8_t *addr, size_t len, int advice)
{
	struct mm_op op = { .addr = addr, .len = len, .advice = advice };
	struct uffdc_event ev;
	pthread_t thr;

	CHILD_CHECK(pthread_create(&thr, NULL, do_madvise, &op) == 0);
	CHILD_CHECK(next_event(u, &ev));
	CHILD_CHECK(ev.kind == UFFDC_EVENT_REMOVE);
	CHILD_CHECK(ev.remove.start == (uintptr_t)addr);
	CHILD_CHECK(ev.remove.end == (uintptr_t)addr + len);
	CHILD_CHECK(pthread_join(thr, NULL) == 0);
	CHILD_CHECK(op.rc == 0);
}

static int
client_remove_event(void *arg)
{
	struct uffdc_session *s;
	struct uffdc_uffd *u;
	uint8_t *anon, *shared;
	int memfd;

	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	CHILD_CHECK(uffdc_create(s, UFFDC_FEATURES_DEFAULT, 0, &u) == 0);
	/* Anonymous memory given back with DONTNEED ... */
	CHILD_CHECK((anon = map_pages(2, MAP_PRIVATE)) != NULL);
	CHILD_CHECK(uffdc_register(u, anon, 2 * PAGE, UFFDC_MODE_MISSING,
	    NULL) == 0);
	CHILD_CHECK(uffdc_zero(u, anon, 2 * PAGE, 0, NULL) == 0);
	expect_remove(u, anon, 2 * PAGE, MADV_DONTNEED);
	/* ... and shared guest memory with REMOVE, as a balloon does. */
	memfd = memfd_create("guest", MFD_CLOEXEC);
	CHILD_CHECK(memfd >= 0 && ftruncate(memfd, 2 * PAGE) == 0);
	shared = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED,
	    memfd, 0);
	CHILD_CHECK(shared != MAP_FAILED);
	CHILD_CHECK(uffdc_register(u, shared, 2 * PAGE, UFFDC_MODE_MISSING,
	    NULL) == 0);
	CHILD_CHECK(uffdc_zero(u, shared, 2 * PAGE, 0, NULL) == 0);
	expect_remove(u, shared + PAGE, PAGE, MADV_REMOVE);
	/* The removed page is missing again; the other one is still there. */
	CHILD_CHECK(uffdc_zero(u, shared + PAGE, PAGE, 0, NULL) == 0);
	CHILD_CHECK(uffdc_zero(u, shared, PAGE, 0, NULL) == -EEXIST);
	close(memfd);
	CHILD_CHECK(uffdc_release(u) == 0);
	uffdc_session_close(s);
	return 0;
}

START_TEST(test_event_remove)
{
	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(run_client(client_remove_event, NULL, true), 0);
	broker_stop();
}
END_TEST

static int
client_unmap_event(void *arg)
{
	struct uffdc_session *s;
	struct uffdc_uffd *u;
	struct uffdc_event ev;
	struct mm_op op;
	uint8_t *mem;
	pthread_t thr;

	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	CHILD_CHECK(uffdc_create(s, UFFD_FEATURE_EVENT_UNMAP, 0, &u) == 0);
	CHILD_CHECK((mem = map_pages(3, MAP_PRIVATE)) != NULL);
	CHILD_CHECK(uffdc_register(u, mem, 3 * PAGE, UFFDC_MODE_MISSING,
	    NULL) == 0);
	op = (struct mm_op){ .addr = mem + PAGE, .len = PAGE };
	CHILD_CHECK(pthread_create(&thr, NULL, do_munmap, &op) == 0);
	CHILD_CHECK(next_event(u, &ev));
	CHILD_CHECK(ev.kind == UFFDC_EVENT_UNMAP);
	CHILD_CHECK(ev.unmap.start == (uintptr_t)mem + PAGE);
	CHILD_CHECK(ev.unmap.end == (uintptr_t)mem + 2 * PAGE);
	CHILD_CHECK(pthread_join(thr, NULL) == 0);
	CHILD_CHECK(op.rc == 0);
	CHILD_CHECK(uffdc_release(u) == 0);
	uffdc_session_close(s);
	return 0;
}

START_TEST(test_event_unmap)
{
	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(run_client(client_unmap_event, NULL, true), 0);
	broker_stop();
}
END_TEST

/* --- handles: dup and adopt --- */

static int
client_dup(void *arg)
{
	struct uffdc_session *s;
	struct uffdc_uffd *u, *d, *d2;
	unsigned int live;
	uint8_t *mem;

	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	CHILD_CHECK(uffdc_create(s, UFFDC_FEATURES_DEFAULT, 0, &u) == 0);
	CHILD_CHECK(uffdc_dup(u, &d) == 0);
	CHILD_CHECK(uffdc_fd(d) >= 0 && uffdc_fd(d) != uffdc_fd(u));
	CHILD_CHECK(fcntl(uffdc_fd(d), F_GETFD) == FD_CLOEXEC);
	CHILD_CHECK(uffdc_features(d) == uffdc_features(u));
	CHILD_CHECK((mem = map_pages(3, MAP_PRIVATE)) != NULL);
	/* One uffd: registered through one handle, filled through the other. */
	CHILD_CHECK(uffdc_register(u, mem, 3 * PAGE, UFFDC_MODE_MISSING,
	    NULL) == 0);
	CHILD_CHECK(uffdc_zero(d, mem, PAGE, 0, NULL) == 0);
	CHILD_CHECK(uffdc_zero(u, mem, PAGE, 0, NULL) == -EEXIST);
	CHILD_CHECK(uffdc_session_usage(s, &live, NULL) == 0);
	CHILD_CHECK(live == 1);
	/* Releasing one handle leaves the uffd live and usable. */
	CHILD_CHECK(uffdc_release(u) == 0);
	CHILD_CHECK(uffdc_session_usage(s, &live, NULL) == 0);
	CHILD_CHECK(live == 1);
	CHILD_CHECK(uffdc_zero(d, mem + PAGE, PAGE, 0, NULL) == 0);
	CHILD_CHECK(uffdc_release(d) == 0);
	CHILD_CHECK(uffdc_session_usage(s, &live, NULL) == 0);
	CHILD_CHECK(live == 0);
	/* A dup holds the session too: it outlives uffdc_session_close(). */
	CHILD_CHECK(uffdc_create(s, UFFDC_FEATURES_DEFAULT, 0, &u) == 0);
	CHILD_CHECK(uffdc_dup(u, &d2) == 0);
	CHILD_CHECK(uffdc_release(u) == 0);
	uffdc_session_close(s);
	CHILD_CHECK(uffdc_register(d2, mem + 2 * PAGE, PAGE,
	    UFFDC_MODE_MISSING, NULL) == 0);
	CHILD_CHECK(uffdc_zero(d2, mem + 2 * PAGE, PAGE, 0, NULL) == 0);
	CHILD_CHECK(uffdc_release(d2) == 0);
	return 0;
}

START_TEST(test_dup_handle)
{
	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(run_client(client_dup, NULL, true), 0);
	broker_stop();
}
END_TEST

/* fd is refused and left open for its owner. */
static bool
adopt_refused(int fd)
{
	static uint64_t junk;	/* a non-NULL pointer the library must clear */
	struct uffdc_uffd *a = (struct uffdc_uffd *)(void *)&junk;

	return uffdc_adopt(fd, 0, &a) == -EBADF && a == NULL &&
	    fcntl(fd, F_GETFD) >= 0;
}

static int
client_adopt(void *arg)
{
	struct uffdc_session *s;
	struct uffdc_uffd *u, *a = NULL;
	int p[2], efd, devfd, fd, closed;
	uint8_t *mem;

	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	CHILD_CHECK(uffdc_create(s, UFFDC_FEATURES_DEFAULT, 0, &u) == 0);
	CHILD_CHECK(pipe2(p, O_CLOEXEC) == 0);
	CHILD_CHECK(adopt_refused(p[0]));
	/* Another anonymous inode, and the device that makes uffds. */
	CHILD_CHECK((efd = eventfd(0, EFD_CLOEXEC)) >= 0);
	CHILD_CHECK(adopt_refused(efd));
	CHILD_CHECK((devfd = fcntl(s->devfd, F_DUPFD_CLOEXEC, 0)) >= 0);
	CHILD_CHECK(adopt_refused(devfd));
	/* No fd at all. */
	closed = p[1];
	close(p[1]);
	CHILD_CHECK(uffdc_adopt(closed, 0, &a) == -EBADF && a == NULL);
	CHILD_CHECK(uffdc_adopt(-1, 0, &a) == -EBADF && a == NULL);

	/* A uffd is taken, and used. */
	CHILD_CHECK((fd = fcntl(uffdc_fd(u), F_DUPFD_CLOEXEC, 0)) >= 0);
	CHILD_CHECK(uffdc_adopt(fd, uffdc_features(u), &a) == 0);
	CHILD_CHECK(uffdc_fd(a) == fd);
	CHILD_CHECK(uffdc_features(a) == UFFDC_FEATURES_DEFAULT);
	CHILD_CHECK((mem = map_pages(1, MAP_PRIVATE)) != NULL);
	CHILD_CHECK(uffdc_register(a, mem, PAGE, UFFDC_MODE_MISSING, NULL) == 0);
	CHILD_CHECK(uffdc_zero(a, mem, PAGE, 0, NULL) == 0);
	/* Release closes that fd and nothing else. */
	CHILD_CHECK(uffdc_release(a) == 0);
	CHILD_CHECK(fcntl(fd, F_GETFD) < 0 && errno == EBADF);
	CHILD_CHECK(fcntl(uffdc_fd(u), F_GETFD) >= 0);
	close(p[0]);
	close(efd);
	close(devfd);
	CHILD_CHECK(uffdc_release(u) == 0);
	uffdc_session_close(s);
	return 0;
}

START_TEST(test_adopt_rejects_non_uffd)
{
	broker_start("--allow-uid", "65534", NULL);
	ck_assert_int_eq(run_client(client_adopt, NULL, true), 0);
	broker_stop();
}
END_TEST

/* --- several processes: *_regions and the dead-uffd check --- */

/* Far from where mmap() places anything unless asked to (checked anyway). */
#define UNMAPPED_ADDR	((void *)0x6e0000000000UL)

START_TEST(test_register_regions_skips_dead)
{
	struct donor a = { .fill = 0xa0 }, b = { .fill = 0xb0 }, c = { 0 };
	struct uffdc_range regions[2];
	struct uffdc_uffd *uffds[3];

	broker_start("--allow-uid", "65534", NULL);
	/* Mapped before the donors fork: the same ranges in every process. */
	regions[0] = (struct uffdc_range){ map_pages(1, MAP_PRIVATE), PAGE };
	regions[1] = (struct uffdc_range){ map_pages(2, MAP_PRIVATE), 2 * PAGE };
	ck_assert_ptr_nonnull(regions[0].addr);
	ck_assert_ptr_nonnull(regions[1].addr);
	a.touch = b.touch = regions;
	a.ntouch = b.ntouch = 2;
	donor_start(&a, 0);
	donor_start(&b, 0);
	donor_start(&c, 0);
	donor_exit(&c);
	/* The dead one in the middle: the walk goes on past it. */
	uffds[0] = a.u;
	uffds[1] = c.u;
	uffds[2] = b.u;
	ck_assert_int_eq(uffdc_register_regions(regions, 2, uffds, 3,
	    UFFDC_MODE_MISSING), 0);
	/* Each live donor's reads come to its uffd as faults. */
	donor_command(&a, DONOR_TOUCH);
	donor_serve(&a);
	donor_command(&b, DONOR_TOUCH);
	donor_serve(&b);
	ck_assert_int_eq(uffdc_release(a.u), 0);
	ck_assert_int_eq(uffdc_release(b.u), 0);
	ck_assert_int_eq(uffdc_release(c.u), 0);
	munmap(regions[0].addr, regions[0].len);
	munmap(regions[1].addr, regions[1].len);
	broker_stop();
}
END_TEST

START_TEST(test_register_regions_fails_on_other_error)
{
	struct donor a = { 0 }, c = { 0 };
	struct uffdc_range regions[2], hole;
	struct uffdc_uffd *uffds[2];
	uint8_t *good, *good2;
	char flags[512];

	broker_start("--allow-uid", "65534", NULL);
	ck_assert_ptr_nonnull(good = map_pages(1, MAP_PRIVATE));
	ck_assert_ptr_nonnull(good2 = map_pages(1, MAP_PRIVATE));
	hole = (struct uffdc_range){ UNMAPPED_ADDR, PAGE };
	donor_start(&a, 0);
	donor_start(&c, 0);
	donor_exit(&c);
	uffds[0] = c.u;
	uffds[1] = a.u;

	/* An unaligned range stops the walk: what follows is not registered. */
	regions[0] = (struct uffdc_range){ good + 1, PAGE };
	regions[1] = (struct uffdc_range){ good2, PAGE };
	ck_assert_int_eq(uffdc_register_regions(regions, 2, uffds, 2,
	    UFFDC_MODE_MISSING), -EINVAL);
	ck_assert(!registered_missing(a.pid, good));
	ck_assert(!registered_missing(a.pid, good2));
	/* What came before it is. */
	regions[0] = (struct uffdc_range){ good, PAGE };
	regions[1] = (struct uffdc_range){ good2 + 1, PAGE };
	ck_assert_int_eq(uffdc_register_regions(regions, 2, uffds, 2,
	    UFFDC_MODE_MISSING), -EINVAL);
	ck_assert(registered_missing(a.pid, good));
	/* Nothing mapped there. */
	ck_assert(!vma_flags(a.pid, hole.addr, flags, sizeof(flags)));
	ck_assert_int_eq(uffdc_register_regions(&hole, 1, uffds, 2,
	    UFFDC_MODE_MISSING), -EINVAL);
	/* Modes are checked too. */
	ck_assert_int_eq(uffdc_register_regions(regions, 1, uffds, 2, 0),
	    -EINVAL);

	donor_exit(&a);
	ck_assert_int_eq(uffdc_release(a.u), 0);
	ck_assert_int_eq(uffdc_release(c.u), 0);
	munmap(good, PAGE);
	munmap(good2, PAGE);
	broker_stop();
}
END_TEST

START_TEST(test_unregister_regions_skips_dead)
{
	struct donor a = { 0 }, c = { 0 };
	struct uffdc_range regions[2], bad;
	struct uffdc_uffd *uffds[2];

	broker_start("--allow-uid", "65534", NULL);
	regions[0] = (struct uffdc_range){ map_pages(1, MAP_PRIVATE), PAGE };
	regions[1] = (struct uffdc_range){ map_pages(2, MAP_PRIVATE), 2 * PAGE };
	ck_assert_ptr_nonnull(regions[0].addr);
	ck_assert_ptr_nonnull(regions[1].addr);
	donor_start(&a, 0);
	donor_start(&c, 0);
	uffds[0] = c.u;
	uffds[1] = a.u;
	ck_assert_int_eq(uffdc_register_regions(regions, 2, uffds, 2,
	    UFFDC_MODE_MISSING), 0);
	ck_assert(registered_missing(a.pid, regions[0].addr));
	ck_assert(registered_missing(a.pid, regions[1].addr));
	ck_assert(registered_missing(c.pid, regions[1].addr));
	donor_exit(&c);
	ck_assert_int_eq(uffdc_unregister_regions(regions, 2, uffds, 2), 0);
	ck_assert(!registered_missing(a.pid, regions[0].addr));
	ck_assert(!registered_missing(a.pid, regions[1].addr));
	/* Another error still stops it. */
	bad = (struct uffdc_range){ (uint8_t *)regions[0].addr + 1, PAGE };
	ck_assert_int_eq(uffdc_unregister_regions(&bad, 1, uffds, 2), -EINVAL);
	donor_exit(&a);
	ck_assert_int_eq(uffdc_release(a.u), 0);
	ck_assert_int_eq(uffdc_release(c.u), 0);
	munmap(regions[0].addr, regions[0].len);
	munmap(regions[1].addr, regions[1].len);
	broker_stop();
}
END_TEST

/* Starts of this process's shared writable mappings. */
static size_t
shared_mappings(uintptr_t *starts, size_t max)
{
	char line[512], perms[8];
	unsigned long lo, hi;
	size_t n = 0;
	FILE *f;

	ck_assert_ptr_nonnull(f = fopen("/proc/self/maps", "r"));
	while (fgets(line, sizeof(line), f) && n < max)
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 &&
		    strcmp(perms, "rw-s") == 0)
			starts[n++] = lo;
	fclose(f);
	return n;
}

/* Whether the page at addr is in memory (for shmem: in its page cache). */
static bool
resident(void *addr)
{
	unsigned char vec;

	ck_assert_int_eq(mincore(addr, PAGE, &vec), 0);
	return vec & 1;
}

START_TEST(test_deadcheck)
{
	struct uffdc_deadcheck *dc;
	struct donor d = { 0 };
	uintptr_t before[64], after[64];
	size_t nbefore, nafter, i, j;
	void *page = NULL;

	broker_start("--allow-uid", "65534", NULL);
	/* Before the donor forks, so that it maps the page too. */
	nbefore = shared_mappings(before, 64);
	ck_assert_int_eq(uffdc_deadcheck_new(&dc), 0);
	/* Find the checker's page, to see what reset() does to it. */
	nafter = shared_mappings(after, 64);
	ck_assert_uint_eq(nafter, nbefore + 1);
	for (i = 0; i < nafter && page == NULL; i++) {
		for (j = 0; j < nbefore && before[j] != after[i]; j++)
			;
		if (j == nbefore)
			page = (void *)after[i];
	}
	ck_assert_ptr_nonnull(page);
	donor_start(&d, UFFD_FEATURE_MISSING_SHMEM);
	ck_assert_int_eq(uffdc_deadcheck_register(dc, d.u), 0);
	ck_assert(registered_missing(d.pid, page));
	/* Alive, whether the check fills the page or finds it filled. */
	ck_assert(!resident(page));
	ck_assert(!uffdc_deadcheck_is_dead(dc, d.u));
	ck_assert(resident(page));
	ck_assert(!uffdc_deadcheck_is_dead(dc, d.u));
	/* reset() gives the page back, for every process that maps it. */
	ck_assert_int_eq(uffdc_deadcheck_reset(dc), 0);
	ck_assert(!resident(page));
	ck_assert(!uffdc_deadcheck_is_dead(dc, d.u));
	donor_exit(&d);
	ck_assert(uffdc_deadcheck_is_dead(dc, d.u));
	ck_assert_int_eq(uffdc_deadcheck_reset(dc), 0);
	ck_assert(!resident(page));
	/* A dead process cannot be registered either. */
	ck_assert_int_eq(uffdc_deadcheck_register(dc, d.u), -ESRCH);
	ck_assert_int_eq(uffdc_release(d.u), 0);
	uffdc_deadcheck_free(dc);
	broker_stop();
}
END_TEST

Suite *
make_parity_suite(void)
{
	Suite *s = suite_create("parity");
	TCase *tc = tcase_create("parity");

	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_register_wp_and_minor);
	tcase_add_test(tc, test_copy_over_existing_page);
	tcase_add_test(tc, test_partial_copy);
	tcase_add_test(tc, test_fill_helpers);
	tcase_add_test(tc, test_zero_on_dead_process);
	tcase_add_test(tc, test_register_on_dead_process);
	tcase_add_test(tc, test_wake);
	tcase_add_test(tc, test_event_pagefault);
	tcase_add_test(tc, test_event_fork);
	tcase_add_test(tc, test_event_remap);
	tcase_add_test(tc, test_event_remove);
	tcase_add_test(tc, test_event_unmap);
	tcase_add_test(tc, test_dup_handle);
	tcase_add_test(tc, test_adopt_rejects_non_uffd);
	tcase_add_test(tc, test_register_regions_skips_dead);
	tcase_add_test(tc, test_register_regions_fails_on_other_error);
	tcase_add_test(tc, test_unregister_regions_skips_dead);
	tcase_add_test(tc, test_deadcheck);
	suite_add_tcase(s, tc);
	return s;
}
