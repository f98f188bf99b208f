/* SPDX-License-Identifier: ISC */
/*
 * sha256.h - SHA-256 (FIPS 180-4), for the digest of the policy in force.
 *
 * In the tree rather than from libcrypto (not a dependency of the broker)
 * or the kernel's AF_ALG sockets (which the broker's jail would have to
 * allow, and a kernel may lack): a digest is computed when a policy loads,
 * jailed, and by uffd-brokerctl, the same code in both.
 */
#ifndef UFFD_BROKER_SHA256_H
#define UFFD_BROKER_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN	32
#define SHA256_HEX_LEN	(2 * SHA256_LEN + 1)	/* with the NUL */

struct sha256 {
	uint32_t	h[8];
	uint64_t	bytes;		/* hashed so far */
	uint8_t		block[64];
	size_t		fill;		/* bytes in block */
};

void	sha256_init(struct sha256 *c);
void	sha256_update(struct sha256 *c, const void *data, size_t len);
void	sha256_final(struct sha256 *c, uint8_t out[SHA256_LEN]);
/* The digest as lowercase hex, as sha256sum(1) writes it. */
void	sha256_hex(const uint8_t digest[SHA256_LEN], char out[SHA256_HEX_LEN]);

#endif
