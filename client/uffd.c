/* SPDX-License-Identifier: ISC */
/*
 * uffd.c - operations on a uffd the broker granted. The broker is not
 * involved: these are the kernel's ioctls with the reference module's error
 * kinds (partial copy, page exists, process gone).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "client.h"

int
uffdc_fd(const struct uffdc_uffd *u)
{
	return u->fd;
}

uint64_t
uffdc_features(const struct uffdc_uffd *u)
{
	return u->features;
}

int
uffdc_dup(const struct uffdc_uffd *u, struct uffdc_uffd **out)
{
	struct uffdc_uffd *d;

	*out = NULL;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return -ENOMEM;
	if ((d->fd = fcntl(u->fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		int err = -errno;

		free(d);
		return err;
	}
	d->features = u->features;
	d->ioctls = u->ioctls;
	/* Like uffdc_create(): each handle holds the session until released. */
	if ((d->s = u->s) != NULL) {
		pthread_mutex_lock(&d->s->lock);
		d->s->refs++;
		pthread_mutex_unlock(&d->s->lock);
	}
	*out = d;
	return 0;
}

/*
 * Whether fd is a userfaultfd: the kernel names its file
 * "anon_inode:[userfaultfd]" whichever way it was created (userfaultfd(2),
 * USERFAULTFD_IOC_NEW, a fork event). An ioctl probe could not tell: another
 * driver may give the same command number a meaning.
 * Returns 0, -EBADF (not a uffd, or not open) or the -errno of readlink.
 */
static int
check_is_uffd(int fd)
{
	static const char want[] = "anon_inode:[userfaultfd]";
	char path[64], link[sizeof(want) + 1];
	ssize_t n;

	if (fcntl(fd, F_GETFD) < 0)
		return -errno;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if ((n = readlink(path, link, sizeof(link))) < 0)
		return -errno;
	if ((size_t)n != sizeof(want) - 1 || memcmp(link, want, n) != 0)
		return -EBADF;
	return 0;
}

/* On failure the caller still owns fd: it may not be ours to close. */
int
uffdc_adopt(int fd, uint64_t features, struct uffdc_uffd **out)
{
	struct uffdc_uffd *u;
	int rc;

	*out = NULL;
	if ((rc = check_is_uffd(fd)) < 0)
		return rc;
	if ((u = calloc(1, sizeof(*u))) == NULL)
		return -ENOMEM;
	/* No session: the broker counts this uffd for its creator, not for us. */
	u->s = NULL;
	u->fd = fd;
	u->features = features;
	*out = u;
	return 0;
}

/* ENOMEM from (un)register: the uffd's mm is gone (docs/design.md fact 4). */
static int
register_errno(int err)
{
	return err == ENOMEM ? -ESRCH : -err;
}

int
uffdc_register(struct uffdc_uffd *u, void *addr, size_t len,
    unsigned int modes, uint64_t *ioctls)
{
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)addr, .len = len },
	};

	if (modes == 0 || (modes & ~(UFFDC_MODE_MISSING | UFFDC_MODE_WP |
	    UFFDC_MODE_MINOR)))
		return -EINVAL;
	if (modes & UFFDC_MODE_MISSING)
		reg.mode |= UFFDIO_REGISTER_MODE_MISSING;
	if (modes & UFFDC_MODE_WP)
		reg.mode |= UFFDIO_REGISTER_MODE_WP;
	if (modes & UFFDC_MODE_MINOR)
		reg.mode |= UFFDIO_REGISTER_MODE_MINOR;
	if (ioctl(u->fd, UFFDIO_REGISTER, &reg) < 0)
		return register_errno(errno);
	if (ioctls)
		*ioctls = reg.ioctls;
	return 0;
}

int
uffdc_unregister(struct uffdc_uffd *u, void *addr, size_t len)
{
	struct uffdio_range range = { .start = (uintptr_t)addr, .len = len };

	if (ioctl(u->fd, UFFDIO_UNREGISTER, &range) < 0)
		return register_errno(errno);
	return 0;
}

/*
 * The result of a fill ioctl: the kernel reports bytes done (or a negative
 * errno) in the struct, and fails with EAGAIN when it stopped part-way.
 */
static int
fill_result(int rc, int err, int64_t done_or_err, size_t len, size_t *done)
{
	size_t n = done_or_err > 0 ? (size_t)done_or_err : 0;

	if (done)
		*done = n;
	if (rc == 0)
		return n == len ? 0 : -UFFDC_EPARTIAL;
	if (n > 0)
		return -UFFDC_EPARTIAL;
	if (done_or_err < 0)
		err = (int)-done_or_err;
	return -err;
}

int
uffdc_copy(struct uffdc_uffd *u, void *dst, const void *src, size_t len,
    unsigned int flags, size_t *done)
{
	struct uffdio_copy copy = {
		.dst = (uintptr_t)dst, .src = (uintptr_t)src, .len = len,
		.mode = (flags & UFFDC_DONTWAKE) ? UFFDIO_COPY_MODE_DONTWAKE : 0,
	};
	int rc = ioctl(u->fd, UFFDIO_COPY, &copy);

	return fill_result(rc, errno, copy.copy, len, done);
}

int
uffdc_zero(struct uffdc_uffd *u, void *dst, size_t len, unsigned int flags,
    size_t *done)
{
	struct uffdio_zeropage zero = {
		.range = { .start = (uintptr_t)dst, .len = len },
		.mode = (flags & UFFDC_DONTWAKE) ? UFFDIO_ZEROPAGE_MODE_DONTWAKE : 0,
	};
	int rc = ioctl(u->fd, UFFDIO_ZEROPAGE, &zero);

	return fill_result(rc, errno, zero.zeropage, len, done);
}

int
uffdc_continue(struct uffdc_uffd *u, void *addr, size_t len,
    unsigned int flags, size_t *done)
{
	struct uffdio_continue cont = {
		.range = { .start = (uintptr_t)addr, .len = len },
		.mode = (flags & UFFDC_DONTWAKE) ? UFFDIO_CONTINUE_MODE_DONTWAKE : 0,
	};
	int rc = ioctl(u->fd, UFFDIO_CONTINUE, &cont);

	return fill_result(rc, errno, cont.mapped, len, done);
}

enum fill_kind { FILL_COPY, FILL_ZERO, FILL_CONTINUE };
#define FILL_STALLS	1000	/* calls in a row that placed nothing */

/*
 * The range in as few ioctls as the kernel allows: each call fills up to
 * the first page already present (EEXIST, or a partial result ending
 * there); that page is stepped over and the rest asked for again.
 */
static int
fill_range(struct uffdc_uffd *u, enum fill_kind kind, uint8_t *dst,
    const uint8_t *src, size_t len, unsigned int flags,
    struct uffdc_progress *p)
{
	struct uffdc_progress none;
	size_t page = (size_t)sysconf(_SC_PAGESIZE), off = 0, done;
	uint64_t present = 0;
	unsigned int stalls = 0;
	int rc;

	if (p == NULL)
		p = memset(&none, 0, sizeof(none));
	if ((uintptr_t)dst % page != 0 || len % page != 0)
		return -EINVAL;
	while (off < len) {
		done = 0;
		if (kind == FILL_COPY)
			rc = uffdc_copy(u, dst + off, src + off, len - off, flags,
			    &done);
		else if (kind == FILL_ZERO)
			rc = uffdc_zero(u, dst + off, len - off, flags, &done);
		else
			rc = uffdc_continue(u, dst + off, len - off, flags, &done);
		p->calls++;
		p->filled += done;
		off += done;
		if (rc == -EEXIST) {
			present += page;
			off += page;
		} else if (rc != 0 && rc != -UFFDC_EPARTIAL && rc != -EAGAIN)
			return rc;
		/* EAGAIN: the mm was changing (a fork, a remap): ask again. */
		stalls = done > 0 || rc == -EEXIST ? 0 : stalls + 1;
		if (stalls > FILL_STALLS)
			return -EAGAIN;
	}
	p->present += present;
	/*
	 * A page another uffd filled (a process sharing the memory) wakes only
	 * that uffd's waiters: wake this one's too.
	 */
	if (present > 0 && !(flags & UFFDC_DONTWAKE))
		return uffdc_wake(u, dst, len);
	return 0;
}

int
uffdc_fill(struct uffdc_uffd *u, void *dst, const void *src, size_t len,
    unsigned int flags, struct uffdc_progress *progress)
{
	return fill_range(u, src != NULL ? FILL_COPY : FILL_ZERO, dst, src, len,
	    flags, progress);
}

int
uffdc_fill_minor(struct uffdc_uffd *u, void *dst, size_t len,
    unsigned int flags, struct uffdc_progress *progress)
{
	return fill_range(u, FILL_CONTINUE, dst, NULL, len, flags, progress);
}

int
uffdc_wake(struct uffdc_uffd *u, void *addr, size_t len)
{
	struct uffdio_range range = { .start = (uintptr_t)addr, .len = len };

	return ioctl(u->fd, UFFDIO_WAKE, &range) < 0 ? -errno : 0;
}

int
uffdc_read_event(struct uffdc_uffd *u, struct uffdc_event *ev)
{
	struct uffd_msg msg;
	ssize_t n;

	do {
		n = read(u->fd, &msg, sizeof(msg));
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? 0 : -errno;
	if (n != sizeof(msg))
		return -EIO;

	memset(ev, 0, sizeof(*ev));
	switch (msg.event) {
	case UFFD_EVENT_PAGEFAULT:
		ev->kind = UFFDC_EVENT_PAGEFAULT;
		ev->pagefault.address = msg.arg.pagefault.address;
		ev->pagefault.flags = msg.arg.pagefault.flags;
		ev->pagefault.tid = msg.arg.pagefault.feat.ptid;
		break;
	case UFFD_EVENT_FORK:
		ev->kind = UFFDC_EVENT_FORK;
		ev->fork.ufd = (int)msg.arg.fork.ufd;
		break;
	case UFFD_EVENT_REMAP:
		ev->kind = UFFDC_EVENT_REMAP;
		ev->remap.from = msg.arg.remap.from;
		ev->remap.to = msg.arg.remap.to;
		ev->remap.len = msg.arg.remap.len;
		break;
	case UFFD_EVENT_REMOVE:
		ev->kind = UFFDC_EVENT_REMOVE;
		ev->remove.start = msg.arg.remove.start;
		ev->remove.end = msg.arg.remove.end;
		break;
	case UFFD_EVENT_UNMAP:
		ev->kind = UFFDC_EVENT_UNMAP;
		ev->unmap.start = msg.arg.remove.start;
		ev->unmap.end = msg.arg.remove.end;
		break;
	default:
		return -EPROTO;
	}
	return 1;
}

const char *
uffdc_strerror(int err)
{
	switch (-err) {
	case 0:			return "success";
	case UFFDC_EPARTIAL:	return "partially copied";
	case EEXIST:		return "page already exists";
	case ESRCH:		return "the uffd's process is gone (exited or exec'd)";
	case EACCES:		return "not granted by the broker's policy";
	case EDQUOT:		return "a limit of the broker's is reached";
	case ENOSYS:		return "the broker is gone: no broker supervises "
				    "this process any more";
	case EPERM:		return "refused: the kernel would not allow it, or "
				    "this process cannot create here";
	case EBUSY:		return "the process has several threads: open "
				    "the session before starting any";
	case EPROTO:		return "protocol error with the broker";
	case ETIMEDOUT:		return "the broker did not answer";
	default:		return strerror(-err);
	}
}
