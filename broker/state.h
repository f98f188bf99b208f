/* SPDX-License-Identifier: ISC */
/*
 * state.h - the broker's state as one broker hands it to the next
 * (docs/upgrade.md): a header, then the State message of
 * proto/uffd_broker_state.proto.
 *
 *   magic      "UFFDBST\0"
 *   format     STATE_FORMAT: a broker reads its own format only
 *   length     of the message that follows
 *   pid        of the broker that wrote it
 *   boot_id    /proc/sys/kernel/random/boot_id of the boot it was written in
 *   digest     SHA-256 of the header up to here and of the message
 *
 * A state that fails any of these, or does not decode, is refused whole.
 * What it decodes to is checked again as it is adopted (upgrade.c): every
 * fd against the kernel, every peer by the kernel's credentials.
 */
#ifndef UFFD_BROKER_STATE_H
#define UFFD_BROKER_STATE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sha256.h"
#include "uffd_broker_state.pb-c.h"

#define STATE_MAGIC		"UFFDBST"	/* and its NUL: 8 bytes */
#define STATE_FORMAT		1
/* A state larger than this is refused unread: 3564 sessions take ~0.5 MiB. */
#define STATE_MAX_BYTES		(64u << 20)

typedef UffdBroker__State__V1__State	BrokerState;

struct state_header {
	char		magic[8];
	uint32_t	format;
	uint32_t	length;
	int32_t		pid;
	uint8_t		boot_id[16];
	uint8_t		digest[SHA256_LEN];
};

struct broker;

/* This boot's id (16 bytes). Returns 0 or -1. */
int	state_boot_id(uint8_t out[16]);

/*
 * Write the broker's state into a new memfd, sealed against writes.
 * Returns the memfd, or -1 with err set.
 */
int	state_save(struct broker *b, char *err, size_t errlen);

/* The broker's state framed, in a malloc'd buffer; NULL with err set. */
uint8_t	*state_pack(struct broker *b, size_t *len, char *err, size_t errlen);
/* Write a framed state over the whole of fd. Returns 0 or -errno. */
int	state_write(int fd, const uint8_t *buf, size_t len);
/* Write all of buf at fd's offset (no pwrite64 in the jail). 0 or -errno. */
int	state_write_here(int fd, const uint8_t *buf, size_t len);

/*
 * Check and decode a state: pure (tests/fuzz drive it). pid is the
 * broker that must have written it (its own pid across an exec; 0, any:
 * a restart's, whose writer is gone); boot_id this boot's. Returns the state (free it with state_free()) or NULL with
 * err set.
 */
BrokerState *state_decode(const uint8_t *buf, size_t len, pid_t pid,
	    const uint8_t boot_id[16], char *err, size_t errlen);
/* The whole of a memfd (a regular file, at most STATE_MAX_BYTES),
 * malloc'd; NULL with err set. */
uint8_t	*state_read_all(int fd, size_t *len, char *err, size_t errlen);
/* Read the whole of a state memfd and state_decode() it. */
BrokerState *state_read(int fd, pid_t pid, char *err, size_t errlen);
void	state_free(BrokerState *st);

/*
 * A journal entry (journal_seq 1, 2, ...): the broker's fields and the
 * records the registry says changed or went since the entry before.
 */
uint8_t	*state_pack_entry(struct broker *b, uint64_t journal_seq,
	    size_t *len, char *err, size_t errlen);

/*
 * A whole state and the journal written over it, merged (store.c, at a
 * restart): the last version of each record, less those gone. The journal
 * is read entry by entry while each checks (state_decode(), the base's
 * generation, the next number); what follows a torn or foreign entry is
 * not read. The view owns base, and its records are the parts'.
 */
struct state_view {
	BrokerState	view;
	BrokerState	**parts;	/* base, then the entries read */
	size_t		nparts;
	size_t		entries;
	char		stop[300];	/* what ended the journal */
};
int	state_view_open(struct state_view *v, BrokerState *base,
	    const uint8_t *journal, size_t len, const uint8_t boot_id[16]);
void	state_view_close(struct state_view *v);

/* qsort(3)'s job, with no system call (state.c says why). */
void	state_sort(void *base, size_t n, size_t size,
	    int (*cmp)(const void *, const void *));

/* Frame a packed message: header + message, into a malloc'd buffer. */
uint8_t	*state_frame(const uint8_t *msg, size_t len, pid_t pid,
	    const uint8_t boot_id[16], size_t *outlen);

#endif
