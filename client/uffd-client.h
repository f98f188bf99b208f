/* SPDX-License-Identifier: ISC */
/*
 * uffd-client.h - libuffd-client, the jailed side of uffd-broker.
 *
 * A process that may not open /dev/userfaultfd obtains userfaultfds from
 * uffd-brokerd, which decides by policy who gets which features and how many.
 *
 * Lifecycle:
 *   uffdc_session_open()     once, at start-up, while the process has a single
 *                            thread: connects to the broker, maps a dummy page,
 *                            installs the seccomp fragment (for every thread,
 *                            for good) and proves it to the broker.
 *   uffdc_create()           any number of times, from any thread: a new uffd
 *                            bound to this process, initialised by the broker.
 *   uffdc_register(), uffdc_copy(), uffdc_zero(), uffdc_wake(),
 *   uffdc_read_event()       work on the uffd; the broker is not involved.
 *   uffdc_release()          closes a uffd and gives its quota slot back.
 *   uffdc_session_close()    ends the session; uffds already obtained stay valid.
 *
 * Errors: every int-returning function returns 0 (or a documented count) on
 * success and a negative errno on failure. The uffd error kinds are:
 *   -UFFDC_EPARTIAL  a copy or zero was done in part; the byte count is reported
 *   -EEXIST          the page is already present
 *   -ESRCH           the uffd's process is gone (exited or exec'd)
 *   anything else    the kernel's or the broker's refusal, see uffdc_strerror()
 */
#ifndef UFFD_CLIENT_H
#define UFFD_CLIENT_H

#include <linux/userfaultfd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define UFFDC_API __attribute__((visibility("default")))

/* Default broker socket. */
#define UFFDC_DEFAULT_SOCKET	"/run/uffd-broker/socket"

/* A copy or zero that did not cover the whole range. */
#define UFFDC_EPARTIAL		4096

/*
 * The features a VMM's swap monitor asks for (as crosvm's vmm-swap does):
 * missing faults on shmem guest memory, and balloon removals as events.
 */
#define UFFDC_FEATURES_DEFAULT	(UFFD_FEATURE_MISSING_SHMEM | \
				 UFFD_FEATURE_EVENT_REMOVE)

struct uffdc_session;
struct uffdc_uffd;
struct uffdc_deadcheck;

/* A range of memory, for the *_regions calls. */
struct uffdc_range {
	void	*addr;
	size_t	len;
};

/* uffdc_create() flags */
#define UFFDC_USER_MODE_ONLY	(1u << 0)	/* trap user-mode faults only */

/* uffdc_register() modes, as UFFDIO_REGISTER_MODE_* */
#define UFFDC_MODE_MISSING	(1u << 0)
#define UFFDC_MODE_WP		(1u << 1)
#define UFFDC_MODE_MINOR	(1u << 2)

/* uffdc_copy() / uffdc_zero() flags */
#define UFFDC_DONTWAKE		(1u << 0)	/* leave the faulting thread asleep */

enum uffdc_event_kind {
	UFFDC_EVENT_PAGEFAULT = 1,
	UFFDC_EVENT_FORK,
	UFFDC_EVENT_REMAP,
	UFFDC_EVENT_REMOVE,
	UFFDC_EVENT_UNMAP,
};

struct uffdc_event {
	enum uffdc_event_kind kind;
	union {
		struct {
			uint64_t address;
			uint64_t flags;		/* UFFD_PAGEFAULT_FLAG_* */
			uint32_t tid;		/* with UFFD_FEATURE_THREAD_ID */
		} pagefault;
		struct {
			int ufd;		/* the child's uffd, now ours */
		} fork;
		struct {
			uint64_t from, to, len;
		} remap;
		struct {
			uint64_t start, end;
		} remove, unmap;
	};
};

/*
 * Open a session with the broker listening on socket_path (NULL for the
 * default). Call while the process is single-threaded: the broker refuses a
 * process with several threads. Sets no-new-privs and installs a seccomp
 * filter on every thread that cannot be removed.
 * Returns 0 and *out, or a negative errno:
 *   -EACCES          the broker's policy admits no session for this process
 *   -EDQUOT          a limit: the uid's sessions, or the broker's
 *   -EBUSY           the process has several threads (checked before the
 *                    filter is installed: nothing was done)
 *   -ENOENT, -ECONNREFUSED  no broker listens at socket_path
 *   -EACCES before any reply: the socket's permissions (its group)
 *   -ETIMEDOUT       the broker did not answer
 *   others           the kernel's or the protocol's
 * On failure, uffdc_last_reason() says why in words: the broker's, or what
 * to do.
 */
UFFDC_API int	uffdc_session_open(const char *socket_path,
		    struct uffdc_session **out);

/*
 * uffdc_session_open() makes the process non-dumpable first (prctl
 * PR_SET_DUMPABLE 0): another process of its user could otherwise copy its
 * fds, the device fd among them, with pidfd_getfd(2) or ptrace. The broker
 * refuses the device fd to a dumpable process. UFFDC_KEEP_DUMPABLE leaves
 * the process as it is: for sessions that create by userfaultfd(2) (no
 * device fd: user-mode-only rules, or kernels without /dev/userfaultfd).
 */
#define UFFDC_KEEP_DUMPABLE	(1u << 0)
UFFDC_API int	uffdc_session_open_flags(const char *socket_path,
		    unsigned int flags, struct uffdc_session **out);

/*
 * In a process forked from one that holds session parent (a VMM's device
 * process), open the child's own session with the same broker. Call in the
 * child, before it starts threads. The child is already under the parent's
 * seccomp filter; it proves that to the broker with a probe creation that
 * arrives on the parent's listener. The child's copy of parent may then be
 * closed with uffdc_session_close(), which does not affect the parent.
 * Returns 0 and *out, or a negative errno as uffdc_session_open().
 */
UFFDC_API int	uffdc_session_fork(struct uffdc_session *parent,
		    struct uffdc_session **out);

/* End the session. Uffds obtained from it stay usable until released. */
UFFDC_API void	uffdc_session_close(struct uffdc_session *s);

/*
 * The broker's text for the session's last refusal ("" if none): of a
 * request, or of a creation that uffdc_create() saw refused.
 */
UFFDC_API const char *uffdc_session_reason(const struct uffdc_session *s);

/*
 * Why this thread's last uffdc_session_open() or uffdc_session_fork()
 * failed: the broker's refusal, or the library's words with what to do.
 * Thread-local; valid until the thread's next open.
 */
UFFDC_API const char *uffdc_last_reason(void);

/*
 * Obtain a uffd for this process with the UFFD_FEATURE_* bits in features.
 * Returns 0 and *out, or a negative errno:
 *   -EACCES   the policy does not grant it: kernel faults under a user-mode
 *             rule (pass UFFDC_USER_MODE_ONLY), or features not granted
 *   -EDQUOT   the session's quota of live uffds is reached
 *   -EPERM    the kernel would not allow it (userfaultfd(2) path without
 *             privilege), or the process cannot create here (it exec'd)
 *   -EINVAL   unknown flags
 *   -EAGAIN   the broker could not decide just now, after the library asked
 *             again six times over about 60 ms (it could not count the
 *             live uffds; or a broker killed while deciding, whose
 *             successor asks again): try again later
 *   -ENOSYS   the broker is gone
 * uffdc_session_reason() then has the broker's words.
 */
UFFDC_API int	uffdc_create(struct uffdc_session *s, uint64_t features,
		    unsigned int flags, struct uffdc_uffd **out);

/*
 * What crosvm's Factory::create() does: a uffd with UFFDC_FEATURES_DEFAULT
 * (MISSING_SHMEM | EVENT_REMOVE), kernel faults handled. As uffdc_create().
 */
UFFDC_API int	uffdc_create_default(struct uffdc_session *s,
		    struct uffdc_uffd **out);

/* Live uffds of this session as the broker counts them, and its limit. */
UFFDC_API int	uffdc_session_usage(struct uffdc_session *s,
		    unsigned int *live, unsigned int *max);

/*
 * Close a uffd. Its quota slot is free once no copy of it is left anywhere
 * (the broker counts uffds by whether they exist; nothing is sent).
 * Returns 0 or -errno (close(2)'s).
 */
UFFDC_API int	uffdc_release(struct uffdc_uffd *u);

/*
 * A second handle on the same uffd (a dup of its fd), released on its own.
 * Returns 0 and *out, or a negative errno.
 */
UFFDC_API int	uffdc_dup(const struct uffdc_uffd *u, struct uffdc_uffd **out);

/*
 * Wrap a uffd fd received from another process (a swap monitor receives its
 * device processes' uffds over a unix socket). On success the handle owns fd;
 * on failure (-EBADF: not a userfaultfd; reads /proc/self/fd) the caller
 * still does. features are what the sender reported (0 if unknown).
 * uffdc_release() on such a handle only closes the fd.
 */
UFFDC_API int	uffdc_adopt(int fd, uint64_t features, struct uffdc_uffd **out);

/* The uffd's file descriptor, for poll(2). Owned by the handle. */
UFFDC_API int	uffdc_fd(const struct uffdc_uffd *u);

/* Features the kernel reported when the broker initialised the uffd. */
UFFDC_API uint64_t uffdc_features(const struct uffdc_uffd *u);

/*
 * Register [addr, addr+len) in the UFFDC_MODE_* modes. *ioctls (may be NULL)
 * gets the _UFFDIO_* bits allowed on the range.
 * Returns 0, -ESRCH (process gone), or another negative errno.
 */
UFFDC_API int	uffdc_register(struct uffdc_uffd *u, void *addr, size_t len,
		    unsigned int modes, uint64_t *ioctls);

/* Unregister a range. Returns 0, -ESRCH (process gone) or another -errno. */
UFFDC_API int	uffdc_unregister(struct uffdc_uffd *u, void *addr, size_t len);

/*
 * Fill missing pages at dst with len bytes from src. *done (may be NULL) gets
 * the bytes filled. Returns 0, -UFFDC_EPARTIAL (some bytes filled), -EEXIST,
 * -ESRCH, or another negative errno.
 */
UFFDC_API int	uffdc_copy(struct uffdc_uffd *u, void *dst, const void *src,
		    size_t len, unsigned int flags, size_t *done);

/* As uffdc_copy(), filling with zeroes. */
UFFDC_API int	uffdc_zero(struct uffdc_uffd *u, void *dst, size_t len,
		    unsigned int flags, size_t *done);

/*
 * Map pages already in the page cache of a shmem or hugetlbfs region
 * registered with UFFDC_MODE_MINOR (UFFDIO_CONTINUE): no page is allocated
 * or copied. As uffdc_copy() otherwise (-EEXIST: already mapped).
 */
UFFDC_API int	uffdc_continue(struct uffdc_uffd *u, void *addr, size_t len,
		    unsigned int flags, size_t *done);

/* What the uffdc_fill*() calls did; the caller's, added to by each call. */
struct uffdc_progress {
	uint64_t	filled;		/* bytes placed (copied, zeroed, mapped) */
	uint64_t	present;	/* bytes already there, left alone */
	uint64_t	calls;		/* fill ioctls made */
};

/*
 * Fill the page-aligned range [dst, dst + len) of a registered region:
 * copy it from src, or, with src NULL, zero it. Pages already present
 * (a fault handler, another thread, or another process's uffd on shared
 * memory filled them) are skipped, not overwritten, and the rest of the
 * range is filled past them; a kernel that stops part-way is asked again.
 * Threads waiting on the range are woken unless flags has UFFDC_DONTWAKE,
 * on the skipped pages too. Any number of threads may fill
 * ranges of one uffd at once. progress (may be NULL) is added to.
 * Returns 0, -EINVAL (not page-aligned), -ESRCH (the uffd's process is
 * gone), or another negative errno (the range is then filled in part).
 */
UFFDC_API int	uffdc_fill(struct uffdc_uffd *u, void *dst, const void *src,
		    size_t len, unsigned int flags,
		    struct uffdc_progress *progress);

/* As uffdc_fill(), mapping page-cache pages with uffdc_continue(). */
UFFDC_API int	uffdc_fill_minor(struct uffdc_uffd *u, void *dst, size_t len,
		    unsigned int flags, struct uffdc_progress *progress);

/* Wake threads waiting on faults in the range. Returns 0 or -errno. */
UFFDC_API int	uffdc_wake(struct uffdc_uffd *u, void *addr, size_t len);

/*
 * Read the next event without blocking.
 * Returns 1 and *ev, 0 if none is pending, or a negative errno.
 */
UFFDC_API int	uffdc_read_event(struct uffdc_uffd *u, struct uffdc_event *ev);

/*
 * Register every range on every uffd, as crosvm's register_regions: a uffd
 * whose process is gone (-ESRCH) is skipped; any other error stops the walk
 * and is returned. uffds must cover every process that may touch the ranges,
 * or pages touched by a process left out are zero-filled by its kernel
 * instead of served. Returns 0 or a negative errno.
 */
UFFDC_API int	uffdc_register_regions(const struct uffdc_range *regions,
		    size_t nregions, struct uffdc_uffd *const *uffds,
		    size_t nuffds, unsigned int modes);

/* Unregister every range from every uffd, skipping dead ones, as above. */
UFFDC_API int	uffdc_unregister_regions(const struct uffdc_range *regions,
		    size_t nregions, struct uffdc_uffd *const *uffds,
		    size_t nuffds);

/*
 * The dead-uffd check for a monitor that holds other processes' uffds
 * (crosvm's DeadUffdChecker). Create it in the main process before forking,
 * so that its shared dummy page is mapped at the same address in every
 * descendant; register each uffd on it; is_dead() then tells whether the
 * uffd's process has exited or exec'd. reset() frees the page's contents
 * (MADV_REMOVE) so the memory is given back between checks. The page is
 * shmem: register uffds created with UFFD_FEATURE_MISSING_SHMEM (in
 * UFFDC_FEATURES_DEFAULT). Call reset() from the monitor, whose own address
 * space is not registered: in a process where the page is registered on a
 * uffd with EVENT_REMOVE, MADV_REMOVE waits until that event is read.
 */
UFFDC_API int	uffdc_deadcheck_new(struct uffdc_deadcheck **out);
UFFDC_API int	uffdc_deadcheck_register(struct uffdc_deadcheck *dc,
		    struct uffdc_uffd *u);
/* true when the uffd's process is gone; false when alive or unknown. */
UFFDC_API bool	uffdc_deadcheck_is_dead(struct uffdc_deadcheck *dc,
		    struct uffdc_uffd *u);
UFFDC_API int	uffdc_deadcheck_reset(struct uffdc_deadcheck *dc);
UFFDC_API void	uffdc_deadcheck_free(struct uffdc_deadcheck *dc);

/* Text for an error returned by this library (pass the negative value). */
UFFDC_API const char *uffdc_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif
