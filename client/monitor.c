/* SPDX-License-Identifier: ISC */
/*
 * monitor.c - for a process that serves faults for others (a VMM's swap
 * monitor holding its device processes' uffds), as crosvm's vmm-swap does:
 * register ranges on many uffds at once, and tell which uffds' processes are
 * gone. Uffds whose process is gone are not errors here, they are expected:
 * device processes exit while the monitor keeps running.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "client.h"

struct uffdc_deadcheck {
	void	*page;		/* MAP_SHARED: the same page in every descendant */
	size_t	page_size;
};

int
uffdc_register_regions(const struct uffdc_range *regions, size_t nregions,
    struct uffdc_uffd *const *uffds, size_t nuffds, unsigned int modes)
{
	size_t i, j;
	int rc;

	for (i = 0; i < nregions; i++) {
		for (j = 0; j < nuffds; j++) {
			rc = uffdc_register(uffds[j], regions[i].addr,
			    regions[i].len, modes, NULL);
			if (rc < 0 && rc != -ESRCH)
				return rc;
		}
	}
	return 0;
}

int
uffdc_unregister_regions(const struct uffdc_range *regions, size_t nregions,
    struct uffdc_uffd *const *uffds, size_t nuffds)
{
	size_t i, j;
	int rc;

	for (i = 0; i < nregions; i++) {
		for (j = 0; j < nuffds; j++) {
			rc = uffdc_unregister(uffds[j], regions[i].addr,
			    regions[i].len);
			if (rc < 0 && rc != -ESRCH)
				return rc;
		}
	}
	return 0;
}

int
uffdc_deadcheck_new(struct uffdc_deadcheck **out)
{
	struct uffdc_deadcheck *dc;
	int err;

	*out = NULL;
	if ((dc = calloc(1, sizeof(*dc))) == NULL)
		return -ENOMEM;
	dc->page_size = sysconf(_SC_PAGESIZE);
	/*
	 * Shared, so that a fill through one process's uffd never gives this
	 * process a private copy, and reset() can drop the page for all.
	 */
	dc->page = mmap(NULL, dc->page_size, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (dc->page == MAP_FAILED) {
		err = -errno;
		free(dc);
		return err;
	}
	*out = dc;
	return 0;
}

/*
 * The page is shmem: a kernel without UFFD_FEATURE_MISSING_SHMEM refuses it.
 * Returns 0, -ESRCH (process already gone) or another negative errno.
 */
int
uffdc_deadcheck_register(struct uffdc_deadcheck *dc, struct uffdc_uffd *u)
{
	return uffdc_register(u, dc->page, dc->page_size, UFFDC_MODE_MISSING,
	    NULL);
}

/*
 * UFFDIO_ZEROPAGE needs the uffd's mm: it fails with ESRCH once the process
 * has exited or exec'd. Success or EEXIST both mean alive; any other error
 * says nothing, and "unknown" is reported as alive, as crosvm does.
 * DONTWAKE: no thread of the process waits on this page, nothing to wake.
 */
bool
uffdc_deadcheck_is_dead(struct uffdc_deadcheck *dc, struct uffdc_uffd *u)
{
	return uffdc_zero(u, dc->page, dc->page_size, UFFDC_DONTWAKE,
	    NULL) == -ESRCH;
}

/* Each live check may fill the page; give it back. Returns 0 or -errno. */
int
uffdc_deadcheck_reset(struct uffdc_deadcheck *dc)
{
	return madvise(dc->page, dc->page_size, MADV_REMOVE) < 0 ? -errno : 0;
}

void
uffdc_deadcheck_free(struct uffdc_deadcheck *dc)
{
	if (dc == NULL)
		return;
	munmap(dc->page, dc->page_size);
	free(dc);
}
