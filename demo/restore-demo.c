/* SPDX-License-Identifier: ISC */
/*
 * restore-demo.c - lazily restore a memory image through a brokered uffd.
 *
 * The process jails itself with libuffd-client, obtains a uffd from the
 * broker and registers an empty region. A fault handler thread fills the
 * 2 MiB chunk of each fault, and prefetch threads fill the chunks in order
 * ahead of the application, with the library's uffdc_fill(): each data run
 * of the image in one UFFDIO_COPY, each hole in one UFFDIO_ZEROPAGE. The main
 * thread (the application) touches the whole region, then every byte is
 * checked against the image.
 *
 * --mode minor: guest memory in a memfd (shmem) whose page cache holds the
 * image already; the region maps it and is registered for minor faults,
 * which UFFDIO_CONTINUE serves: no page is allocated or copied on the way.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "uffd-client.h"

#define CHUNK		(2u << 20)	/* the unit a fault or a prefetcher fills */
#define PREFETCHERS	2

enum mode { MODE_COPY, MODE_MINOR };

/*
 * The region is cut into 2 MiB chunks, each filled once, whole, by whoever
 * claims it first: the fault handler (the chunk a fault is in) or one of
 * the prefetch threads (in order, ahead of the application). Data runs are
 * found with SEEK_DATA/SEEK_HOLE and filled with one call each; holes with
 * one zeroing call each; nothing is scanned page by page.
 */
struct restore {
	enum mode	mode;
	struct uffdc_uffd *uffd;
	uint8_t		*region;
	const uint8_t	*image;
	int		extents_fd;	/* SEEK_DATA/SEEK_HOLE: the image, or the memfd */
	size_t		size, page, nchunks;
	uint8_t		*claimed;	/* per chunk: 0 free, 1 taken */
	size_t		next;		/* the prefetchers' cursor */
	volatile bool	done;
	uint64_t	faults;
	struct uffdc_progress progress[1 + PREFETCHERS];
	int		error;
};

struct worker {
	struct restore	*r;
	int		index;		/* 0: the fault handler */
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool
claim(struct restore *r, size_t c)
{
	return __atomic_exchange_n(&r->claimed[c], 1, __ATOMIC_ACQ_REL) == 0;
}

/* Where data starts at or after pos (end if none), and where it ends. */
static void
next_extent(int fd, size_t pos, size_t end, size_t *data, size_t *hole)
{
	off_t d = lseek(fd, (off_t)pos, SEEK_DATA), h;

	if (d < 0 || (size_t)d >= end) {
		*data = *hole = end;
		return;
	}
	h = lseek(fd, d, SEEK_HOLE);
	*data = (size_t)d;
	*hole = h < 0 || (size_t)h > end ? end : (size_t)h;
}

static size_t
page_down(const struct restore *r, size_t x)
{
	return x / r->page * r->page;
}

static size_t
page_up(const struct restore *r, size_t x)
{
	return (x + r->page - 1) / r->page * r->page;
}

/* Fill chunk c: each data run in one call, each hole in one. */
static int
fill_chunk(struct restore *r, size_t c, struct uffdc_progress *p)
{
	size_t pos = c * CHUNK, end = pos + CHUNK, data, hole;
	int rc = 0;

	if (end > r->size)
		end = r->size;
	while (pos < end && rc == 0) {
		next_extent(r->extents_fd, pos, end, &data, &hole);
		data = page_down(r, data);
		hole = page_up(r, hole);
		if (data < pos)
			data = pos;
		if (hole > end)
			hole = end;
		/* A hole: zeroes (in minor mode, shmem gives them itself). */
		if (data > pos && r->mode == MODE_COPY)
			rc = uffdc_fill(r->uffd, r->region + pos, NULL,
			    data - pos, 0, p);
		if (rc == 0 && hole > data) {
			if (r->mode == MODE_MINOR)
				rc = uffdc_fill_minor(r->uffd, r->region + data,
				    hole - data, 0, p);
			else {
				/* The source's pages in first, in one call. */
				(void)madvise((void *)(r->image + data),
				    hole - data, MADV_POPULATE_READ);
				rc = uffdc_fill(r->uffd, r->region + data,
				    r->image + data, hole - data, 0, p);
			}
		}
		pos = hole > pos ? hole : end;
	}
	return rc;
}

static void *
prefetcher(void *arg)
{
	struct worker *w = arg;
	struct restore *r = w->r;
	size_t c;
	int rc;

	while (!r->done && r->error == 0 &&
	    (c = __atomic_fetch_add(&r->next, 1, __ATOMIC_RELAXED)) < r->nchunks)
		if (claim(r, c) &&
		    (rc = fill_chunk(r, c, &r->progress[w->index])) < 0)
			r->error = rc;
	return NULL;
}

/* A fault's chunk first, unless someone has it already (its fill wakes). */
static void *
handler(void *arg)
{
	struct worker *w = arg;
	struct restore *r = w->r;
	struct pollfd pfd = { .fd = uffdc_fd(r->uffd), .events = POLLIN };
	struct uffdc_event ev;
	size_t c;
	int rc;

	while (!r->done) {
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		while ((rc = uffdc_read_event(r->uffd, &ev)) == 1) {
			if (ev.kind != UFFDC_EVENT_PAGEFAULT)
				continue;
			r->faults++;
			c = (ev.pagefault.address - (uintptr_t)r->region) / CHUNK;
			if (claim(r, c) &&
			    (rc = fill_chunk(r, c, &r->progress[0])) < 0) {
				r->error = rc;
				return NULL;
			}
		}
		if (rc < 0) {
			r->error = rc;
			return NULL;
		}
	}
	return NULL;
}

/* A few hundred MiB with holes: random data, zero chunks, scattered zero pages. */
static int
make_image(const char *dir, size_t size, char *path, size_t pathlen)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	uint8_t *buf;
	size_t off, i;
	int fd;

	snprintf(path, pathlen, "%s/uffd-demo-image.XXXXXX", dir);
	if ((fd = mkstemp(path)) < 0)
		return -errno;
	if ((buf = malloc(CHUNK)) == NULL || ftruncate(fd, size) < 0)
		goto fail;
	for (off = 0; off < size; off += CHUNK) {
		x ^= x << 13; x ^= x >> 7; x ^= x << 17;
		if (x % 4 == 0)
			continue;		/* a 2 MiB hole */
		for (i = 0; i < CHUNK / 8; i++) {
			x ^= x << 13; x ^= x >> 7; x ^= x << 17;
			memcpy(buf + i * 8, &x, 8);
		}
		for (i = 0; i < CHUNK; i += 4096)
			if ((buf[i] & 15) == 0)
				memset(buf + i, 0, 4096);	/* a zero page in data */
		if (pwrite(fd, buf, CHUNK, off) != (ssize_t)CHUNK)
			goto fail;
	}
	free(buf);
	return fd;
fail:
	free(buf);
	close(fd);
	unlink(path);
	return -EIO;
}

/* On stderr with status 2 (bad usage), or on stdout with 0 (--help). */
static void
usage(int rc)
{
	fprintf(rc ? stderr : stdout, "usage: uffd-restore-demo [--socket PATH] "
	    "[--image FILE | --size-mib N] [--workdir DIR]\n"
	    "                         [--mode copy|minor] [--no-prefetch]\n");
	exit(rc);
}

/*
 * Minor mode: the image's data in a memfd's page cache (as a post-copy
 * receiver would have put it there), its holes left holes; the region maps
 * the memfd. Returns the memfd, or -errno.
 */
static int
load_memfd(struct restore *r, int image_fd)
{
	size_t pos = 0, data, hole, n;
	ssize_t w;
	int fd;

	if ((fd = memfd_create("uffd-demo-guest", MFD_CLOEXEC)) < 0 ||
	    ftruncate(fd, (off_t)r->size) < 0)
		return -errno;
	while (pos < r->size) {
		next_extent(image_fd, pos, r->size, &data, &hole);
		for (pos = data; pos < hole; pos += (size_t)w) {
			n = hole - pos > CHUNK ? CHUNK : hole - pos;
			if ((w = pwrite(fd, r->image + pos, n, (off_t)pos)) <= 0)
				return -EIO;
		}
		pos = hole > data ? hole : r->size;
	}
	return fd;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "image", required_argument, NULL, 'i' },
		{ "size-mib", required_argument, NULL, 'n' },
		{ "workdir", required_argument, NULL, 'w' },
		{ "mode", required_argument, NULL, 'm' },
		{ "no-prefetch", no_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sock = NULL, *image_path = NULL, *workdir = "/tmp";
	char made[4096] = "";
	size_t size_mib = 256, i, mismatches = 0, next_report;
	struct restore r = { .mode = MODE_COPY };
	struct worker workers[1 + PREFETCHERS];
	struct uffdc_progress total = { 0 };
	struct uffdc_session *s;
	struct stat st;
	pthread_t thr[1 + PREFETCHERS];
	double t0, t1, t2, t3, t_uffd, t_load = 0;
	int opt, fd, memfd = -1, rc, nthreads = 1 + PREFETCHERS, k;
	uint64_t features = 0;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'h': usage(0); break;
		case 's': sock = optarg; break;
		case 'i': image_path = optarg; break;
		case 'w': workdir = optarg; break;
		case 'n': size_mib = strtoul(optarg, NULL, 10); break;
		case 'P': nthreads = 1; break;
		case 'm':
			if (strcmp(optarg, "copy") == 0)
				r.mode = MODE_COPY;
			else if (strcmp(optarg, "minor") == 0)
				r.mode = MODE_MINOR;
			else
				usage(2);
			break;
		default: usage(2);
		}
	}
	if (optind != argc || size_mib == 0)
		usage(2);
	r.page = sysconf(_SC_PAGESIZE);

	if (image_path != NULL) {
		if ((fd = open(image_path, O_RDONLY | O_CLOEXEC)) < 0) {
			perror(image_path);
			return 1;
		}
	} else {
		printf("making a %zu MiB image with holes in %s ...\n", size_mib,
		    workdir);
		fd = make_image(workdir, size_mib << 20, made, sizeof(made));
		if (fd < 0) {
			fprintf(stderr, "cannot make image: %s\n", strerror(-fd));
			return 1;
		}
		image_path = made;
	}
	if (fstat(fd, &st) < 0 || st.st_size == 0) {
		fprintf(stderr, "%s: empty or unreadable image\n", image_path);
		return 1;
	}
	/* The region is whole pages; the image's tail page reads as zeroes. */
	r.size = ((size_t)st.st_size + r.page - 1) / r.page * r.page;
	r.nchunks = (r.size + CHUNK - 1) / CHUNK;
	r.image = mmap(NULL, r.size, PROT_READ, MAP_PRIVATE, fd, 0);
	r.claimed = calloc(r.nchunks, 1);
	if (r.image == MAP_FAILED || r.claimed == NULL) {
		perror("mmap");
		return 1;
	}
	r.extents_fd = fd;
	if (r.mode == MODE_MINOR) {
		t0 = now_s();
		if ((memfd = load_memfd(&r, fd)) < 0) {
			fprintf(stderr, "memfd: %s\n", strerror(-memfd));
			return 1;
		}
		t_load = now_s() - t0;
		r.extents_fd = memfd;
		r.region = mmap(NULL, r.size, PROT_READ | PROT_WRITE,
		    MAP_SHARED, memfd, 0);
		features = UFFD_FEATURE_MINOR_SHMEM;
	} else
		r.region = mmap(NULL, r.size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r.region == MAP_FAILED) {
		perror("mmap");
		return 1;
	}

	/* Single-threaded here, as the broker requires for the handshake. */
	t0 = now_s();
	if ((rc = uffdc_session_open(sock, &s)) < 0) {
		fprintf(stderr, "session: %s\n", uffdc_strerror(rc));
		return 1;
	}
	t1 = now_s();
	/* Faults of this process's own accesses only: the least to ask for. */
	if ((rc = uffdc_create(s, features, UFFDC_USER_MODE_ONLY,
	    &r.uffd)) < 0) {
		fprintf(stderr, "uffd: %s (%s)\n", uffdc_strerror(rc),
		    uffdc_session_reason(s));
		return 1;
	}
	t2 = t_uffd = now_s();
	printf("jailed as uid %u; session in %.3f ms, uffd in %.3f ms\n",
	    (unsigned)getuid(), (t1 - t0) * 1e3, (t2 - t1) * 1e3);
	if ((rc = uffdc_register(r.uffd, r.region, r.size, r.mode == MODE_MINOR ?
	    UFFDC_MODE_MINOR : UFFDC_MODE_MISSING, NULL)) < 0) {
		fprintf(stderr, "register: %s\n", uffdc_strerror(rc));
		return 1;
	}

	t2 = now_s();
	for (k = 0; k < nthreads; k++) {
		workers[k] = (struct worker){ .r = &r, .index = k };
		if (pthread_create(&thr[k], NULL, k == 0 ? handler : prefetcher,
		    &workers[k]) != 0) {
			fprintf(stderr, "pthread_create failed\n");
			return 1;
		}
	}
	next_report = r.size / 4;
	for (i = 0; i < r.size; i += r.page) {
		(void)*(volatile uint8_t *)(r.region + i);
		if (r.error)
			break;
		if (i + r.page >= next_report) {
			printf("restored %3zu%% (%zu of %zu MiB)\n",
			    (i + r.page) * 100 / r.size, (i + r.page) >> 20,
			    r.size >> 20);
			fflush(stdout);
			next_report += r.size / 4;
		}
	}
	t3 = now_s();
	r.done = true;
	for (k = 0; k < nthreads; k++)
		pthread_join(thr[k], NULL);
	if (r.error) {
		fprintf(stderr, "restore failed: %s\n", uffdc_strerror(r.error));
		return 1;
	}
	for (k = 0; k < nthreads; k++) {
		total.filled += r.progress[k].filled;
		total.present += r.progress[k].present;
		total.calls += r.progress[k].calls;
	}

	for (i = 0; i < r.size; i += r.page)
		if (memcmp(r.region + i, r.image + i, r.page) != 0)
			mismatches++;
	printf("restore of %s (%s mode, %d prefetch threads): %zu MiB\n",
	    made[0] ? "generated image" : image_path,
	    r.mode == MODE_MINOR ? "minor" : "copy", nthreads - 1, r.size >> 20);
	printf("  filled %llu MiB in %llu calls (%llu MiB already there), "
	    "faults %llu\n", (unsigned long long)(total.filled >> 20),
	    (unsigned long long)total.calls,
	    (unsigned long long)(total.present >> 20),
	    (unsigned long long)r.faults);
	if (r.mode == MODE_MINOR)
		printf("  image loaded into the memfd's page cache in %.3f s "
		    "(%.0f MB/s), before the restore\n", t_load,
		    r.size / 1e6 / t_load);
	printf("  %.0f MB/s, time to get the uffd %.3f ms\n",
	    r.size / 1e6 / (t3 - t2), (t_uffd - t0) * 1e3);
	if (made[0])
		unlink(made);
	uffdc_release(r.uffd);
	uffdc_session_close(s);
	/* Each chunk is filled once, whole: nothing twice, nothing left out. */
	if (mismatches != 0 || (r.mode == MODE_COPY && (total.filled != r.size ||
	    total.present != 0))) {
		printf("RESTORE FAILED: %zu pages differ from the image, %llu "
		    "bytes filled of %zu\n", mismatches,
		    (unsigned long long)total.filled, r.size);
		return 1;
	}
	printf("restore verified: every byte matches the image\n");
	return 0;
}
