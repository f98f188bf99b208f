/* SPDX-License-Identifier: ISC */
/*
 * restore-demo.c - lazily restore a memory image through a brokered uffd.
 *
 * The process jails itself with libuffd-client, obtains a uffd from the
 * broker, registers an empty region, and lets a handler thread fill each
 * missing page from the image on first touch: UFFDIO_COPY for data (runs of
 * contiguous pages in one call), UFFDIO_ZEROPAGE for all-zero pages. The main
 * thread touches the whole region, then every byte is checked against the image.
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

#define BATCH_PAGES	64		/* 256 KiB per UFFDIO_COPY at most */
#define CHUNK		(2u << 20)

struct restore {
	struct uffdc_uffd *uffd;
	uint8_t		*region;
	const uint8_t	*image;
	size_t		size, page;
	uint8_t		*served;	/* per page; written by the handler only */
	volatile bool	done;
	uint64_t	faults, copied_pages, zeroed_pages, copy_calls, zero_calls;
	int		error;
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool
page_is_zero(const uint8_t *p, size_t len)
{
	static const uint8_t zero[4096];
	size_t off;

	for (off = 0; off < len; off += sizeof(zero))
		if (memcmp(p + off, zero, sizeof(zero)) != 0)
			return false;
	return true;
}

/* Fill the run of same-kind, unserved pages starting at page idx. */
static int
serve(struct restore *r, size_t idx)
{
	size_t npages = r->size / r->page, n = 1, done = 0, len;
	bool zero = page_is_zero(r->image + idx * r->page, r->page);
	uint8_t *dst = r->region + idx * r->page;
	int rc;

	while (n < BATCH_PAGES && idx + n < npages && !r->served[idx + n] &&
	    page_is_zero(r->image + (idx + n) * r->page, r->page) == zero)
		n++;
	len = n * r->page;
	for (;;) {
		size_t step = 0;

		if (zero)
			rc = uffdc_zero(r->uffd, dst + done, len - done, 0, &step);
		else
			rc = uffdc_copy(r->uffd, dst + done,
			    r->image + idx * r->page + done, len - done, 0, &step);
		done += step;
		if (rc != -UFFDC_EPARTIAL || done == len)
			break;
	}
	/* EEXIST: another fault already filled part of the run; it is served. */
	if (rc < 0 && rc != -EEXIST && rc != -UFFDC_EPARTIAL)
		return rc;
	memset(r->served + idx, 1, n);
	if (zero) {
		r->zeroed_pages += n;
		r->zero_calls++;
	} else {
		r->copied_pages += n;
		r->copy_calls++;
	}
	return 0;
}

static void *
handler(void *arg)
{
	struct restore *r = arg;
	struct pollfd pfd = { .fd = uffdc_fd(r->uffd), .events = POLLIN };
	struct uffdc_event ev;
	int rc;

	while (!r->done) {
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		while ((rc = uffdc_read_event(r->uffd, &ev)) == 1) {
			size_t idx;

			if (ev.kind != UFFDC_EVENT_PAGEFAULT)
				continue;
			r->faults++;
			idx = (ev.pagefault.address - (uintptr_t)r->region) / r->page;
			if ((rc = serve(r, idx)) < 0) {
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

static void
usage(void)
{
	fprintf(stderr, "usage: uffd-restore-demo [--socket PATH] [--image FILE | "
	    "--size-mib N] [--workdir DIR]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "image", required_argument, NULL, 'i' },
		{ "size-mib", required_argument, NULL, 'n' },
		{ "workdir", required_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sock = NULL, *image_path = NULL, *workdir = "/tmp";
	char made[4096] = "";
	size_t size_mib = 256, i, mismatches = 0, next_report;
	struct restore r = { 0 };
	struct uffdc_session *s;
	struct stat st;
	pthread_t thr;
	double t0, t1, t2, t3, t_uffd;
	int opt, fd, rc;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 's': sock = optarg; break;
		case 'i': image_path = optarg; break;
		case 'w': workdir = optarg; break;
		case 'n': size_mib = strtoul(optarg, NULL, 10); break;
		default: usage();
		}
	}
	if (optind != argc || size_mib == 0)
		usage();
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
	r.image = mmap(NULL, r.size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	r.region = mmap(NULL, r.size, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	r.served = calloc(r.size / r.page, 1);
	if (r.image == MAP_FAILED || r.region == MAP_FAILED || r.served == NULL) {
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
	if ((rc = uffdc_create(s, 0, 0, &r.uffd)) < 0) {
		fprintf(stderr, "uffd: %s (%s)\n", uffdc_strerror(rc),
		    uffdc_session_reason(s));
		return 1;
	}
	t2 = t_uffd = now_s();
	printf("jailed as uid %u; session in %.3f ms, uffd in %.3f ms\n",
	    (unsigned)getuid(), (t1 - t0) * 1e3, (t2 - t1) * 1e3);
	if ((rc = uffdc_register(r.uffd, r.region, r.size, UFFDC_MODE_MISSING,
	    NULL)) < 0) {
		fprintf(stderr, "register: %s\n", uffdc_strerror(rc));
		return 1;
	}
	if (pthread_create(&thr, NULL, handler, &r) != 0) {
		fprintf(stderr, "pthread_create failed\n");
		return 1;
	}

	t2 = now_s();
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
	pthread_join(thr, NULL);
	if (r.error) {
		fprintf(stderr, "handler failed: %s\n", uffdc_strerror(r.error));
		return 1;
	}

	for (i = 0; i < r.size; i += r.page)
		if (memcmp(r.region + i, r.image + i, r.page) != 0)
			mismatches++;
	printf("restore of %s: %zu MiB\n", made[0] ? "generated image" :
	    image_path, r.size >> 20);
	printf("  pages copied %llu in %llu UFFDIO_COPY calls, pages zeroed %llu "
	    "in %llu UFFDIO_ZEROPAGE calls\n",
	    (unsigned long long)r.copied_pages, (unsigned long long)r.copy_calls,
	    (unsigned long long)r.zeroed_pages, (unsigned long long)r.zero_calls);
	printf("  faults %llu, %.0f MB/s, time to get the uffd %.3f ms\n",
	    (unsigned long long)r.faults, r.size / 1e6 / (t3 - t2),
	    (t_uffd - t0) * 1e3);
	if (made[0])
		unlink(made);
	uffdc_release(r.uffd);
	uffdc_session_close(s);
	if (mismatches != 0 ||
	    r.copied_pages + r.zeroed_pages != r.size / r.page) {
		printf("RESTORE FAILED: %zu pages differ from the image\n",
		    mismatches);
		return 1;
	}
	printf("restore verified: every byte matches the image\n");
	return 0;
}
