/* SPDX-License-Identifier: ISC */
/*
 * fuzz_wire.c - libFuzzer target: what the broker makes of a datagram before
 * it acts on it (session_request_check(), the Hello's fields), judged against
 * the protocol as proto/uffd_broker.proto and docs/design.md §5 state it.
 *
 * Input: one byte of session state, one byte of refused bit, wire_recv()
 * flags and fd kind, then the datagram (at most WIRE_MAX_DATAGRAM bytes are
 * used, as session_readable() receives no more).
 *
 * The property is the protocol's, written here again on purpose: a change of
 * the request table that the protocol does not allow aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "phase.h"

#define FD_KIND_LISTENER	"anon_inode:seccomp notify"
#define FD_KIND_UFFD		"anon_inode:[userfaultfd]"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The kinds of fd a datagram may carry, as /proc/self/fd reads them. */
static const char *const fd_kinds[8] = {
	NULL,				/* no fd */
	FD_KIND_LISTENER,
	FD_KIND_UFFD,
	"pipe:[4026532]",
	"",				/* readlink failed */
	"socket:[77]",
	"anon_inode:[eventfd]",
	"anon_inode:[userfaultfd] ",	/* a near miss */
};

#define ST(x)	(1u << (x))

/* The protocol: where each request is allowed, and the fd it carries. */
static const struct {
	UffdBroker__V1__Request__BodyCase body;
	unsigned int	states;
	const char	*fd;
} spec[] = {
	{ UFFD_BROKER__V1__REQUEST__BODY_HELLO, ST(SESSION_HELLO),
	    FD_KIND_LISTENER },
	{ UFFD_BROKER__V1__REQUEST__BODY_FORK_HELLO, ST(SESSION_HELLO), NULL },
	{ UFFD_BROKER__V1__REQUEST__BODY_PROBE, ST(SESSION_PROBE_ATTACH),
	    FD_KIND_UFFD },
	{ UFFD_BROKER__V1__REQUEST__BODY_ATTACH, ST(SESSION_READY),
	    FD_KIND_UFFD },
	{ UFFD_BROKER__V1__REQUEST__BODY_RELEASE, ST(SESSION_READY), NULL },
	{ UFFD_BROKER__V1__REQUEST__BODY_STATUS, ST(SESSION_READY), NULL },
};

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_wire: %s:%d: property failed: %s\n", \
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

/* The body's message is there: the handlers dereference it. */
static const void *
body_of(const WireRequest *req)
{
	switch (req->body_case) {
	case UFFD_BROKER__V1__REQUEST__BODY_HELLO:
		return req->hello;
	case UFFD_BROKER__V1__REQUEST__BODY_FORK_HELLO:
		return req->fork_hello;
	case UFFD_BROKER__V1__REQUEST__BODY_PROBE:
		return req->probe;
	case UFFD_BROKER__V1__REQUEST__BODY_ATTACH:
		return req->attach;
	case UFFD_BROKER__V1__REQUEST__BODY_RELEASE:
		return req->release;
	case UFFD_BROKER__V1__REQUEST__BODY_STATUS:
		return req->status;
	case UFFD_BROKER__V1__REQUEST__BODY_ADMIN_STATUS:
		return req->admin_status;
	default:
		return req;	/* no body: nothing to dereference */
	}
}

/* An AdminStatus of a view the broker has: its status, or its policy's. */
static bool
admin(const WireRequest *req)
{
	const UffdBroker__V1__AdminStatus *as = req->admin_status;

	return req->body_case == UFFD_BROKER__V1__REQUEST__BODY_ADMIN_STATUS &&
	    (!as->has_view ||
	    as->view == UFFD_BROKER__V1__ADMIN_STATUS__VIEW__STATUS ||
	    as->view == UFFD_BROKER__V1__ADMIN_STATUS__VIEW__POLICY);
}

/* The Hello's fields: what passes is a page of user memory. */
static void
hello_fields(uint32_t version, uint64_t page, uint32_t page_size)
{
	WireStatus status = UFFD_BROKER__V1__STATUS__OK;
	char why[128];
	bool ok;

	memset(why, 'x', sizeof(why));
	ok = handshake_hello_check(version, page, page_size, &status, why,
	    sizeof(why));
	if (ok) {
		CHECK(version == WIRE_VERSION);
		CHECK(page_size == (uint32_t)sysconf(_SC_PAGESIZE));
		CHECK(page != 0 && page % page_size == 0);
		CHECK(page < (1ULL << 56));
		return;
	}
	CHECK(memchr(why, '\0', sizeof(why)) != NULL && why[0] != '\0');
	CHECK(status == (version != WIRE_VERSION ?
	    UFFD_BROKER__V1__STATUS__BAD_VERSION :
	    UFFD_BROKER__V1__STATUS__BAD_MESSAGE));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum session_state state;
	enum request_verdict v, want;
	struct request_check rc;
	WireRequest *mine = NULL;
	const char *kind;
	bool refused;
	int flags;
	size_t i, len;
	const uint8_t *buf;

	if (size < 2)
		return 0;
	state = (enum session_state)(data[0] % (SESSION_DEAD + 1));
	refused = data[1] & 1;
	flags = (data[1] >> 1) & (WIRE_TRUNCATED | WIRE_FDS_LOST |
	    WIRE_TOO_MANY_FDS | WIRE_FOREIGN_CMSG);
	kind = fd_kinds[data[1] >> 5];
	buf = data + 2;
	len = size - 2;
	if (len > WIRE_MAX_DATAGRAM)
		len = WIRE_MAX_DATAGRAM;

	v = session_request_check(state, refused, buf, len, flags, kind, &rc);

	/* The protocol's answer, worked out independently. */
	if (flags == 0)
		mine = uffd_broker__v1__request__unpack(NULL, len, buf);
	if (refused)
		want = mine != NULL && admin(mine) ? REQUEST_ADMIN :
		    REQUEST_REFUSED;
	else if (flags != 0 || mine == NULL)
		want = REQUEST_BAD;
	else if (admin(mine))
		want = REQUEST_ADMIN;
	else if (mine->body_case == UFFD_BROKER__V1__REQUEST__BODY_ADMIN_STATUS)
		want = REQUEST_BAD;	/* a view the broker does not have */
	else {
		want = REQUEST_BAD;
		for (i = 0; i < sizeof(spec) / sizeof(spec[0]); i++) {
			if (spec[i].body != mine->body_case)
				continue;
			if ((spec[i].states & ST(state)) &&
			    ((spec[i].fd == NULL && kind == NULL) ||
			    (spec[i].fd != NULL && kind != NULL &&
			    strcmp(spec[i].fd, kind) == 0)))
				want = REQUEST_OK;
		}
	}
	CHECK(v == want);

	switch (v) {
	case REQUEST_REFUSED:
		CHECK(rc.req == NULL);
		break;
	case REQUEST_BAD:
		CHECK(rc.status != UFFD_BROKER__V1__STATUS__OK);
		CHECK(memchr(rc.why, '\0', sizeof(rc.why)) != NULL);
		CHECK(rc.why[0] != '\0');
		/* Truncation is a bad message; the other flags are about fds. */
		if (flags & WIRE_TRUNCATED)
			CHECK(rc.status == UFFD_BROKER__V1__STATUS__BAD_MESSAGE);
		else if (flags != 0)
			CHECK(rc.status == UFFD_BROKER__V1__STATUS__BAD_FD);
		else if (mine == NULL)
			CHECK(rc.status == UFFD_BROKER__V1__STATUS__BAD_MESSAGE);
		break;
	case REQUEST_ADMIN:
		CHECK(rc.req != NULL);
		CHECK(rc.req->body_case ==
		    UFFD_BROKER__V1__REQUEST__BODY_ADMIN_STATUS);
		CHECK(rc.req->admin_status != NULL);
		CHECK(admin(rc.req));
		break;
	case REQUEST_OK:
		CHECK(!refused && flags == 0);
		CHECK(rc.req != NULL && rc.rt != NULL);
		CHECK(body_of(rc.req) != NULL);
		if (rc.req->body_case == UFFD_BROKER__V1__REQUEST__BODY_HELLO)
			hello_fields(rc.req->hello->version,
			    rc.req->hello->dummy_page, rc.req->hello->page_size);
		else if (rc.req->body_case ==
		    UFFD_BROKER__V1__REQUEST__BODY_FORK_HELLO)
			hello_fields(rc.req->fork_hello->version,
			    rc.req->fork_hello->dummy_page,
			    rc.req->fork_hello->page_size);
		break;
	}
	if (rc.req != NULL) {
		CHECK(body_of(rc.req) != NULL);
		uffd_broker__v1__request__free_unpacked(rc.req, NULL);
	}
	if (mine != NULL)
		uffd_broker__v1__request__free_unpacked(mine, NULL);
	return 0;
}
