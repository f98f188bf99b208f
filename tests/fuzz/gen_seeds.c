/* SPDX-License-Identifier: ISC */
/*
 * gen_seeds.c - writes the fuzzers' seed corpora (make fuzz-seeds):
 * encoded requests of every body type for fuzz_wire, whole session lives for
 * fuzz_session (in its step encoding), policies for fuzz_policy (the
 * example, its canonical print, and cases of tests/check_policy.c).
 *
 *	gen-seeds DIR		writes DIR/fuzz_wire/, DIR/fuzz_session/, ...
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wire.h"
#include "uffd_broker_state.pb-c.h"

/* As fuzz_session.c has them. */
#define ARENA		0x10000000UL
enum step {
	STEP_CONNECT, STEP_SEND, STEP_DIRECT, STEP_CREATE, STEP_TICK,
	STEP_RELOAD, STEP_HANGUP, STEP_MISS, STEP_TURN, STEP_KID,
};
/* What the kid does (STEP_KID's byte). */
enum { KID_CONNECT = 0, KID_CREATE = 3, KID_EXIT = 6, KID_EXEC = 7 };
enum fd_kind {
	FD_NONE, FD_PIPE, FD_UFFD, FD_UFFD_USED, FD_LISTENER, FD_SPARE,
	FD_SUPERVISED, FD_SOCKET, FD_OWN_SOCKET, FD_DEVICE, FD_MEMFD,
	FD_EVENTFD, FD_EPOLL,
};
/* The creation's spec byte. */
#define C_CLOEXEC	1
#define C_NONBLOCK	2
#define C_USER		4
#define C_DEVICE	0x10
/* As session.c's states (broker.h) and wire_recv()'s flags. */
enum { ST_HELLO, ST_VERIFY, ST_PROBE_CREATE, ST_PROBE_ATTACH, ST_READY };

/* A seed being written. */
struct seed {
	uint8_t		buf[8192];
	size_t		len;
};

static const char *dir;

static void
put(struct seed *sd, const void *p, size_t n)
{
	if (sd->len + n > sizeof(sd->buf)) {
		fprintf(stderr, "gen-seeds: seed too long\n");
		exit(1);
	}
	memcpy(sd->buf + sd->len, p, n);
	sd->len += n;
}

static void
byte(struct seed *sd, unsigned int b)
{
	uint8_t c = b;

	put(sd, &c, 1);
}

static void
save(const char *fuzzer, const char *name, const void *p, size_t n)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, fuzzer);
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/%s", dir, fuzzer, name);
	if ((f = fopen(path, "w")) == NULL || fwrite(p, 1, n, f) != n ||
	    fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

/* ---- requests ---- */

static size_t
pack(WireRequest *req, uint8_t *out)
{
	return uffd_broker__v1__request__pack(req, out);
}

static size_t
hello(uint8_t *out, bool fork, uint32_t version, uint64_t page)
{
	UffdBroker__V1__Hello h = UFFD_BROKER__V1__HELLO__INIT;
	UffdBroker__V1__ForkHello fh = UFFD_BROKER__V1__FORK_HELLO__INIT;
	WireRequest req = UFFD_BROKER__V1__REQUEST__INIT;

	if (fork) {
		fh.version = version;
		fh.dummy_page = page;
		fh.page_size = 4096;
		req.body_case = UFFD_BROKER__V1__REQUEST__BODY_FORK_HELLO;
		req.fork_hello = &fh;
	} else {
		h.version = version;
		h.dummy_page = page;
		h.page_size = 4096;
		req.body_case = UFFD_BROKER__V1__REQUEST__BODY_HELLO;
		req.hello = &h;
	}
	return pack(&req, out);
}

static size_t
simple(uint8_t *out, UffdBroker__V1__Request__BodyCase body, uint64_t arg)
{
	UffdBroker__V1__Probe probe = UFFD_BROKER__V1__PROBE__INIT;
	UffdBroker__V1__Attach attach = UFFD_BROKER__V1__ATTACH__INIT;
	UffdBroker__V1__Release release = UFFD_BROKER__V1__RELEASE__INIT;
	UffdBroker__V1__StatusRequest status = UFFD_BROKER__V1__STATUS_REQUEST__INIT;
	UffdBroker__V1__AdminStatus admin = UFFD_BROKER__V1__ADMIN_STATUS__INIT;
	WireRequest req = UFFD_BROKER__V1__REQUEST__INIT;

	req.body_case = body;
	switch (body) {
	case UFFD_BROKER__V1__REQUEST__BODY_PROBE:
		req.probe = &probe;
		break;
	case UFFD_BROKER__V1__REQUEST__BODY_ATTACH:
		attach.features = arg;
		req.attach = &attach;
		break;
	case UFFD_BROKER__V1__REQUEST__BODY_RELEASE:
		req.release = &release;
		break;
	case UFFD_BROKER__V1__REQUEST__BODY_STATUS:
		req.status = &status;
		break;
	case UFFD_BROKER__V1__REQUEST__BODY_ADMIN_STATUS:
		admin.offset = (uint32_t)arg;
		req.admin_status = &admin;
		break;
	default:
		break;
	}
	return pack(&req, out);
}

/* AdminStatus with a view (POLICY: the summary; others are refused). */
static size_t
admin_view(uint8_t *out, uint32_t offset, int view)
{
	UffdBroker__V1__AdminStatus admin = UFFD_BROKER__V1__ADMIN_STATUS__INIT;
	WireRequest req = UFFD_BROKER__V1__REQUEST__INIT;

	req.body_case = UFFD_BROKER__V1__REQUEST__BODY_ADMIN_STATUS;
	admin.offset = offset;
	admin.has_view = true;
	admin.view = view;
	req.admin_status = &admin;
	return pack(&req, out);
}

/* fuzz_wire: state byte, flags byte (refused, flags << 1, kind << 5), bytes */
static void
wire(const char *name, unsigned int state, bool refused, unsigned int flags,
    unsigned int kind, const uint8_t *p, size_t n)
{
	struct seed sd = { .len = 0 };

	byte(&sd, state);
	byte(&sd, (refused ? 1 : 0) | flags << 1 | kind << 5);
	put(&sd, p, n);
	save("fuzz_wire", name, sd.buf, sd.len);
}

static void
wire_seeds(void)
{
	uint8_t m[WIRE_MAX_DATAGRAM];
	size_t n;

	/* fd kinds in fuzz_wire: 0 none, 1 listener, 2 uffd, 3 pipe */
	n = hello(m, false, WIRE_VERSION, ARENA);
	wire("hello", ST_HELLO, false, 0, 1, m, n);
	wire("hello-no-fd", ST_HELLO, false, 0, 0, m, n);
	wire("hello-ready", ST_READY, false, 0, 1, m, n);
	wire("hello-refused", ST_HELLO, true, 0, 1, m, n);
	wire("hello-truncated", ST_HELLO, false, 1, 1, m, n);
	wire("hello-fds-lost", ST_HELLO, false, 2, 1, m, n);
	n = hello(m, false, 2, ARENA);
	wire("hello-version", ST_HELLO, false, 0, 1, m, n);
	n = hello(m, false, WIRE_VERSION, ARENA + 1);
	wire("hello-unaligned", ST_HELLO, false, 0, 1, m, n);
	n = hello(m, false, WIRE_VERSION, 1ULL << 56);
	wire("hello-kernel-page", ST_HELLO, false, 0, 1, m, n);
	n = hello(m, true, WIRE_VERSION, ARENA);
	wire("fork-hello", ST_HELLO, false, 0, 0, m, n);
	wire("fork-hello-fd", ST_HELLO, false, 0, 3, m, n);
	n = simple(m, UFFD_BROKER__V1__REQUEST__BODY_PROBE, 0);
	wire("probe", ST_PROBE_ATTACH, false, 0, 2, m, n);
	wire("probe-pipe", ST_PROBE_ATTACH, false, 0, 3, m, n);
	n = simple(m, UFFD_BROKER__V1__REQUEST__BODY_ATTACH,
	    UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_EVENT_REMOVE);
	wire("attach", ST_READY, false, 0, 2, m, n);
	wire("attach-hello", ST_HELLO, false, 0, 2, m, n);
	n = simple(m, UFFD_BROKER__V1__REQUEST__BODY_RELEASE, 0);
	wire("release", ST_READY, false, 0, 0, m, n);
	n = simple(m, UFFD_BROKER__V1__REQUEST__BODY_STATUS, 0);
	wire("status", ST_READY, false, 0, 0, m, n);
	wire("status-fd", ST_READY, false, 0, 3, m, n);
	n = simple(m, UFFD_BROKER__V1__REQUEST__BODY_ADMIN_STATUS, 3);
	wire("admin-status", ST_VERIFY, false, 0, 0, m, n);
	wire("admin-status-refused", ST_HELLO, true, 0, 0, m, n);
	n = admin_view(m, 0, UFFD_BROKER__V1__ADMIN_STATUS__VIEW__POLICY);
	wire("admin-policy", ST_READY, false, 0, 0, m, n);
	n = admin_view(m, 0, 7);
	wire("admin-view-unknown", ST_HELLO, true, 0, 0, m, n);
	n = simple(m, UFFD_BROKER__V1__REQUEST__BODY__NOT_SET, 0);
	wire("empty", ST_READY, false, 0, 0, m, n);
	wire("undecodable", ST_HELLO, false, 0, 0,
	    (const uint8_t *)"\x0a\x05\x08", 3);
}

/* ---- session lives ---- */

static void
step_send(struct seed *sd, unsigned int step, unsigned int peer,
    unsigned int spec, unsigned int flags, const uint8_t *m, size_t n)
{
	byte(sd, step);
	byte(sd, peer);
	byte(sd, spec);
	byte(sd, flags);
	byte(sd, n & 0xff);
	byte(sd, n >> 8);
	put(sd, m, n);
}

static void
send_req(struct seed *sd, unsigned int peer, unsigned int spec,
    const uint8_t *m, size_t n)
{
	step_send(sd, STEP_SEND, peer, spec, 0, m, n);
}

static void
step2(struct seed *sd, unsigned int step, unsigned int arg)
{
	byte(sd, step);
	byte(sd, arg);
}

static void
session_seeds(void)
{
	struct seed sd;
	uint8_t m[WIRE_MAX_DATAGRAM], big[1500];
	size_t n;

	/* A user-mode client's whole life: policy 0, by syscall, passrights. */
	sd.len = 0;
	byte(&sd, 0);
	byte(&sd, 1 | 2);
	byte(&sd, STEP_CONNECT);
	n = hello(m, false, WIRE_VERSION, ARENA);
	send_req(&sd, 0, FD_LISTENER, m, n);
	step2(&sd, STEP_CREATE, C_CLOEXEC | C_NONBLOCK | C_USER);
	n = simple(m, UFFD_BROKER__V1__REQUEST__BODY_PROBE, 0);
	send_req(&sd, 0, FD_SUPERVISED, m, n);
	step2(&sd, STEP_CREATE, C_CLOEXEC | C_NONBLOCK | C_USER);
	n = simple(m, UFFD_BROKER__V1__REQUEST__BODY_ATTACH,
	    UFFD_FEATURE_MISSING_SHMEM);
	send_req(&sd, 0, FD_SUPERVISED, m, n);
	n = simple(m, UFFD_BROKER__V1__REQUEST__BODY_STATUS, 0);
	send_req(&sd, 0, FD_NONE, m, n);
	n = simple(m, UFFD_BROKER__V1__REQUEST__BODY_RELEASE, 0);
	send_req(&sd, 0, FD_NONE, m, n);
	n = simple(m, UFFD_BROKER__V1__REQUEST__BODY_ADMIN_STATUS, 0);
	send_req(&sd, 0, FD_NONE, m, n);
	step2(&sd, STEP_CREATE, C_CLOEXEC | C_USER);
	step2(&sd, STEP_CREATE, C_CLOEXEC);
	step2(&sd, STEP_TICK, 9);
	step2(&sd, STEP_HANGUP, 0);
	save("fuzz_session", "user-life", sd.buf, sd.len);

	/*
	 * Kernel faults by the device: the verification is refused (the
	 * fuzzer has threads), its listener stays for a forked session, which
	 * proves itself by its probe creation on it, and is granted.
	 */
	sd.len = 0;
	byte(&sd, 1);
	byte(&sd, 2);
	byte(&sd, STEP_CONNECT);
	n = hello(m, false, WIRE_VERSION, ARENA);
	send_req(&sd, 0, FD_LISTENER, m, n);
	step2(&sd, STEP_CREATE, C_DEVICE | C_CLOEXEC);
	byte(&sd, STEP_CONNECT);
	n = hello(m, true, WIRE_VERSION, ARENA + 4096);
	send_req(&sd, 1, FD_NONE, m, n);
	step2(&sd, STEP_CREATE, C_DEVICE | C_CLOEXEC | C_NONBLOCK | C_USER);
	n = simple(m, UFFD_BROKER__V1__REQUEST__BODY_PROBE, 0);
	send_req(&sd, 1, FD_SUPERVISED, m, n);
	step2(&sd, STEP_CREATE, C_DEVICE | C_CLOEXEC | C_NONBLOCK);
	n = simple(m, UFFD_BROKER__V1__REQUEST__BODY_ATTACH,
	    UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_MISSING_SHMEM);
	send_req(&sd, 1, FD_SUPERVISED, m, n);
	step2(&sd, STEP_CREATE, C_CLOEXEC);
	n = simple(m, UFFD_BROKER__V1__REQUEST__BODY_STATUS, 0);
	send_req(&sd, 1, FD_NONE, m, n);
	save("fuzz_session", "kernel-forked", sd.buf, sd.len);

	/* Refused, an administrator, asking for status; then a Hello. */
	sd.len = 0;
	byte(&sd, 3);
	byte(&sd, 2);
	byte(&sd, STEP_CONNECT);
	n = simple(m, UFFD_BROKER__V1__REQUEST__BODY_ADMIN_STATUS, 0);
	send_req(&sd, 0, FD_NONE, m, n);
	n = simple(m, UFFD_BROKER__V1__REQUEST__BODY_ADMIN_STATUS, 1);
	send_req(&sd, 0, FD_PIPE, m, n);
	n = hello(m, false, WIRE_VERSION, ARENA);
	send_req(&sd, 0, FD_LISTENER, m, n);
	save("fuzz_session", "refused-admin", sd.buf, sd.len);

	/* An administrator asking for the policy's summary, page by page. */
	sd.len = 0;
	byte(&sd, 3);
	byte(&sd, 2);
	byte(&sd, STEP_CONNECT);
	n = admin_view(m, 0, UFFD_BROKER__V1__ADMIN_STATUS__VIEW__POLICY);
	send_req(&sd, 0, FD_NONE, m, n);
	n = admin_view(m, 5, UFFD_BROKER__V1__ADMIN_STATUS__VIEW__POLICY);
	send_req(&sd, 0, FD_NONE, m, n);
	n = admin_view(m, 0, 9);
	send_req(&sd, 0, FD_NONE, m, n);
	save("fuzz_session", "admin-policy", sd.buf, sd.len);

	/* No rule matches; one session per uid; the broker full. */
	sd.len = 0;
	byte(&sd, 4);
	byte(&sd, 0);
	byte(&sd, STEP_CONNECT);
	save("fuzz_session", "no-match", sd.buf, sd.len);
	sd.len = 0;
	byte(&sd, 5);
	byte(&sd, 3);
	byte(&sd, STEP_CONNECT);
	byte(&sd, STEP_CONNECT);
	n = hello(m, true, WIRE_VERSION, ARENA);
	send_req(&sd, 0, FD_NONE, m, n);
	save("fuzz_session", "one-session", sd.buf, sd.len);
	sd.len = 0;
	byte(&sd, 0);
	byte(&sd, 3);
	byte(&sd, STEP_CONNECT);
	byte(&sd, STEP_CONNECT);
	byte(&sd, STEP_CONNECT);
	byte(&sd, STEP_CONNECT);
	save("fuzz_session", "full", sd.buf, sd.len);

	/* Handshakes that time out; pending creations that expire. */
	sd.len = 0;
	byte(&sd, 0);
	byte(&sd, 1 | 2 | 4);
	byte(&sd, STEP_CONNECT);
	n = hello(m, false, WIRE_VERSION, ARENA);
	send_req(&sd, 0, FD_LISTENER, m, n);
	step2(&sd, STEP_TICK, 9);
	save("fuzz_session", "timeout", sd.buf, sd.len);

	/* Without SO_PASSRIGHTS: fds where none is due, too many, too long. */
	sd.len = 0;
	byte(&sd, 0);
	byte(&sd, 1);
	byte(&sd, STEP_CONNECT);
	n = simple(m, UFFD_BROKER__V1__REQUEST__BODY_STATUS, 0);
	send_req(&sd, 0, FD_PIPE | 2 << 4, m, n);
	n = hello(m, true, WIRE_VERSION, ARENA);
	send_req(&sd, 0, FD_EVENTFD, m, n);
	memset(big, 0, sizeof(big));
	send_req(&sd, 0, FD_MEMFD, big, sizeof(big));
	n = hello(m, false, WIRE_VERSION, ARENA);
	step_send(&sd, STEP_DIRECT, 0, FD_LISTENER, 4, m, n);
	step_send(&sd, STEP_DIRECT, 0, FD_UFFD_USED, 0, m, n);
	send_req(&sd, 0, FD_OWN_SOCKET, m, n);
	save("fuzz_session", "legacy-fds", sd.buf, sd.len);

	/* A reload to a denying policy, and back. */
	sd.len = 0;
	byte(&sd, 0);
	byte(&sd, 3);
	byte(&sd, STEP_CONNECT);
	n = hello(m, false, WIRE_VERSION, ARENA);
	send_req(&sd, 0, FD_LISTENER, m, n);
	step2(&sd, STEP_RELOAD, 3);
	byte(&sd, STEP_CONNECT);
	step2(&sd, STEP_RELOAD, 0);
	n = simple(m, UFFD_BROKER__V1__REQUEST__BODY_ADMIN_STATUS, 0);
	send_req(&sd, 0, FD_NONE, m, n);
	save("fuzz_session", "reload", sd.buf, sd.len);

	/* A listener whose process is gone; a listener that misses reads. */
	sd.len = 0;
	byte(&sd, 0);
	byte(&sd, 3);
	byte(&sd, STEP_CONNECT);
	n = hello(m, false, WIRE_VERSION, ARENA);
	send_req(&sd, 0, FD_SPARE, m, n);
	byte(&sd, STEP_TURN);
	byte(&sd, STEP_CONNECT);
	send_req(&sd, 1, FD_LISTENER, m, n);
	step2(&sd, STEP_MISS, 0);
	step2(&sd, STEP_MISS, 0);
	step2(&sd, STEP_MISS, 0);
	save("fuzz_session", "listeners", sd.buf, sd.len);

	/* Bad Hellos, and a probe that is not fresh. */
	sd.len = 0;
	byte(&sd, 0);
	byte(&sd, 3);
	byte(&sd, STEP_CONNECT);
	n = hello(m, false, 7, ARENA);
	send_req(&sd, 0, FD_LISTENER, m, n);
	n = hello(m, false, WIRE_VERSION, 0);
	send_req(&sd, 0, FD_LISTENER, m, n);
	n = hello(m, false, WIRE_VERSION, ARENA);
	send_req(&sd, 0, FD_LISTENER, m, n);
	step2(&sd, STEP_CREATE, C_CLOEXEC | C_USER);
	n = simple(m, UFFD_BROKER__V1__REQUEST__BODY_PROBE, 0);
	send_req(&sd, 0, FD_UFFD_USED, m, n);
	save("fuzz_session", "bad-hello-probe", sd.buf, sd.len);

	/*
	 * A family: this process's session, and its forked child's (the
	 * kid, under the same filter) joining by its probe creation on the
	 * family's listener; the kid is granted a uffd, then exits, or execs.
	 */
	for (n = 0; n < 2; n++) {
		size_t k;

		sd.len = 0;
		byte(&sd, 0);
		byte(&sd, 1 | 2 | 8);
		byte(&sd, STEP_CONNECT);
		k = hello(m, false, WIRE_VERSION, ARENA);
		send_req(&sd, 0, FD_LISTENER, m, k);
		step2(&sd, STEP_CREATE, C_CLOEXEC | C_USER);
		k = simple(m, UFFD_BROKER__V1__REQUEST__BODY_PROBE, 0);
		send_req(&sd, 0, FD_SUPERVISED, m, k);
		step2(&sd, STEP_KID, KID_CONNECT);
		k = hello(m, true, WIRE_VERSION, ARENA + 4096);
		send_req(&sd, 1, FD_NONE, m, k);
		step2(&sd, STEP_KID, KID_CREATE);
		byte(&sd, C_CLOEXEC | C_USER);
		k = simple(m, UFFD_BROKER__V1__REQUEST__BODY_PROBE, 0);
		send_req(&sd, 1, FD_SUPERVISED, m, k);
		step2(&sd, STEP_KID, KID_CREATE);
		byte(&sd, C_CLOEXEC | C_NONBLOCK | C_USER);
		k = simple(m, UFFD_BROKER__V1__REQUEST__BODY_ATTACH,
		    UFFD_FEATURE_MISSING_SHMEM);
		send_req(&sd, 1, FD_SUPERVISED, m, k);
		step2(&sd, STEP_CREATE, C_CLOEXEC | C_USER);
		k = simple(m, UFFD_BROKER__V1__REQUEST__BODY_STATUS, 0);
		send_req(&sd, 1, FD_NONE, m, k);
		step2(&sd, STEP_KID, n == 0 ? KID_EXIT : KID_EXEC);
		step2(&sd, STEP_TICK, 9);
		k = simple(m, UFFD_BROKER__V1__REQUEST__BODY_ADMIN_STATUS, 0);
		send_req(&sd, 0, FD_NONE, m, k);
		step2(&sd, STEP_KID, KID_CONNECT);
		k = hello(m, true, WIRE_VERSION, ARENA + 4096);
		send_req(&sd, 2, FD_NONE, m, k);
		save("fuzz_session", n == 0 ? "family-exit" : "family-exec",
		    sd.buf, sd.len);
	}

	/* The kid alone: its own Hello with the family's listener. */
	sd.len = 0;
	byte(&sd, 6);
	byte(&sd, 1 | 2);
	step2(&sd, STEP_KID, KID_CONNECT);
	n = hello(m, false, WIRE_VERSION, ARENA);
	send_req(&sd, 0, FD_LISTENER, m, n);
	step2(&sd, STEP_KID, KID_CREATE);
	byte(&sd, C_CLOEXEC | C_USER);
	n = simple(m, UFFD_BROKER__V1__REQUEST__BODY_PROBE, 0);
	send_req(&sd, 0, FD_SUPERVISED, m, n);
	step2(&sd, STEP_CREATE, C_CLOEXEC | C_USER);
	byte(&sd, STEP_CONNECT);
	n = hello(m, false, WIRE_VERSION, ARENA + 4096);
	send_req(&sd, 1, FD_LISTENER, m, n);
	save("fuzz_session", "kid-hello", sd.buf, sd.len);
}

/* ---- policies ---- */

static const char *const policy_cases[] = {
	"",
	"# only a comment\n\n; another\n",
	"[broker]\nadmin_group = 0\n\n[rule a]\nuid = 0, 65534 nobody\n"
	"mode = kernel\nfeatures = MISSING_SHMEM UFFD_FEATURE_EVENT_REMOVE\n",
	"[rule a]\n\v[rule x]\nuid = 5\n",
	"[rule a]\nuid = 0\n  [rule x]\nuid = 5\n",
	"[rule a]\n\tuid = 0\n\tmode = kernel\n",
	"[rule a]\nmode = kernel\n  user\n",
	"[broker]\nadmin_group = 0\n  4\n",
	"[rule a]\nfeatures = none\n  MISSING_SHMEM\n",
	"[rule a]\nfoo = 1\n",
	"[rule a]\nuid = 0\n\nuid = 1\n",
	"[rule a]\nuid = 0\n[rule a]\nuid = 1\n",
	"[rule a b]\n",
	"[rules]\nuid = 0\n",
	"uid = 0\n",
	"[broker]\n[broker]\n",
	"[rule a]\nmax_uffds = 0\n",
	"[rule a]\nmax_sessions_per_uid = 12x\n",
	"[rule a]\naction = permit\n",
	"[rule a]\nfeatures = MISSING_SHMEM BOGUS\n",
	"[rule a]\nexe = crosvm\n",
	"[rule a]\nuid = ,\n",
	"[rule a]\nuid\n",
	"\n[rule a\n",
	"[rule a]\r\nuid = 0 \r\n\r\n[rule b]\r\n",
	"\xef\xbb\xbf[rule a]\nuid = 0\n",
	"[rule a]\n\t[rule x]\n \t uid = 5\n",
	"[rule a]\nuid = 0\n  65534\t1, 2\n",
	"[rule a]\nuid = 0\n\n# between\n\t65534\n",
	"[rule a]\nfeatures = MISSING_SHMEM\n  EVENT_REMOVE\n",
	"[rule deny-user-slice]\ncgroup = /user.slice/**\naction = deny\n"
	"[rule by-exe]\nuid = 1000\nexe = /usr/bin/crosvm\nmode = kernel\n"
	"[rule by-group]\ngid = 4\nfeatures = THREAD_ID\n"
	"[rule by-cgroup]\ncgroup = /system.slice/vmm@*.service\n"
	"max_uffds = 3\n"
	"[rule root]\nuid = 0\n"
	"[rule any-cgroup]\ncgroup = /**\n",
	"[rule k]\nmode = kernel\nprove_filter = off\nforked_sessions = yes\n"
	"max_sessions_per_uid = 1000000\nmax_uffds = 1\n",
	/* policy print's names, in comments, on continuation lines too */
	"[broker]\nadmin_group = 4 ; adm\n\n[rule a]\n"
	"uid = 0 65534 ; root nobody\n\t1 2 ; daemon bin\n"
	"gid = 4000000000 ; -\n",
	/* errors on many lines, each reported */
	"[rule a]\nuid = x, 0 y\n\tz\nmode = sideways\n\tuser\nbogus = 1\n"
	"\tmore\n[rule a]\nuid = 4\n[rule b\nuid\n\t0\nmax_uffds = 0\n",
	/* site invariants, after a line "%%": broken, kept, wrong */
	"[rule k]\nuid = 0 65534\ncgroup = /**\nmode = kernel\n"
	"features = EVENT_FORK\nprove_filter = off\nforked_sessions = yes\n"
	"[rule g]\ngid = 4\nmax_uffds = 9\n[rule d]\naction = deny\n"
	"%%\n# the site's\nnever mode kernel without exe\n"
	"never feature EVENT_FORK\nnever prove_filter off\n"
	"never forked_sessions yes\nnever mode kernel uid root\n"
	"max live-per-process 8\nmax sessions-per-uid 4 for mode kernel\n"
	"max live-per-uid 100 for mode kernel\nmax live-host 1000\n",
	"[rule a]\nuid = 1\nexe = /a\nmode = kernel\nmax_uffds = 2\n"
	"[rule b]\nuid = 2\nexe = /b\nmode = kernel\nmax_uffds = 2\n"
	"%%\nnever mode kernel without exe without cgroup\n"
	"max live-per-uid 200 for mode kernel # together\nmax live-host 256\n",
	"[rule a]\nuid = 1\n%%\nnever\nmax live-per-uid x\nmax foo 1\n"
	"never mode kernel mode user\nnever without pid\nfrobnicate\n"
	"never uid no-such-user\nmax live-host 5 for\n",
};

static void
copy_file(const char *from, const char *name)
{
	static char buf[65536];
	size_t n;
	FILE *f = fopen(from, "r");

	if (f == NULL) {
		perror(from);
		exit(1);
	}
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	save("fuzz_policy", name, buf, n);
}

static void
policy_seeds(void)
{
	static const char nul[] = "[rule a]\nuid = 0\0, 65534\n";
	char name[32];
	size_t i;

	copy_file("policy/policy.conf", "example");
	copy_file("tests/golden/policy.conf.printed", "example-printed");
	for (i = 0; i < sizeof(policy_cases) / sizeof(policy_cases[0]); i++) {
		snprintf(name, sizeof(name), "case-%02zu", i);
		save("fuzz_policy", name, policy_cases[i],
		    strlen(policy_cases[i]));
	}
	/* A NUL byte, which inih would take for the line's end. */
	save("fuzz_policy", "nul", nul, sizeof(nul) - 1);
}

/*
 * fuzz_state: a state with one of everything, as the message alone (first
 * byte odd: the fuzzer frames it) and with a header of another boot (even:
 * refused, but the header's bytes are there to mutate).
 */
static void
state_seeds(void)
{
	UffdBroker__State__V1__State st = UFFD_BROKER__STATE__V1__STATE__INIT;
	UffdBroker__State__V1__Session ses = UFFD_BROKER__STATE__V1__SESSION__INIT;
	UffdBroker__State__V1__Session *sesp[] = { &ses };
	UffdBroker__State__V1__Grant grant = UFFD_BROKER__STATE__V1__GRANT__INIT;
	UffdBroker__State__V1__Account acc = UFFD_BROKER__STATE__V1__ACCOUNT__INIT;
	UffdBroker__State__V1__Account *accp[] = { &acc };
	UffdBroker__State__V1__Listener lis = UFFD_BROKER__STATE__V1__LISTENER__INIT;
	UffdBroker__State__V1__Listener *lisp[] = { &lis };
	UffdBroker__State__V1__Spent sp = UFFD_BROKER__STATE__V1__SPENT__INIT;
	UffdBroker__State__V1__Spent *spp[] = { &sp };
	UffdBroker__State__V1__RuleCounters rc = UFFD_BROKER__STATE__V1__RULE_COUNTERS__INIT;
	UffdBroker__State__V1__RuleCounters *rcp[] = { &rc };
	uint8_t buf[4096], hdr[76] = "UFFDBST";
	size_t n;

	st.next_id = 3;
	st.listen_fd = 3;
	st.lock_fd = 4;
	st.devfd = 5;
	st.timerfd = 6;
	st.sigfd = 7;
	st.verifier_sock = 8;
	st.verifier_pid = 100;
	st.notify_fd = -1;
	st.upgrades = 1;
	lis.id = 1;
	lis.uid = 65534;
	lis.fd = 9;
	lis.max_orphans = 64;
	st.listeners = lisp;
	st.n_listeners = 1;
	acc.mm_id = 1;
	acc.tracker = 10;
	acc.live_bound = 2;
	st.accounts = accp;
	st.n_accounts = 1;
	grant.kernel_faults = true;
	grant.features = 0x1ff;
	grant.max_uffds = 4;
	grant.max_sessions_per_uid = 64;
	ses.id = 1;
	ses.state = 4;
	ses.sock = 11;
	ses.pidfd = 12;
	ses.pid = 200;
	ses.uid = 65534;
	ses.gid = 65534;
	ses.listener = 1;
	ses.probe_uffd = 13;
	ses.account = 1;
	ses.proof_fd = -1;
	ses.grant = &grant;
	ses.rule = "r";
	ses.has_rule = true;
	ses.page_size = 4096;
	ses.dummy_page = 0x7f0000000000ULL;
	ses.granted = 7;
	ses.last_refusal = "quota reached";
	st.sessions = sesp;
	st.n_sessions = 1;
	sp.id = 2;
	sp.pid = 300;
	sp.uid = 65534;
	sp.pidfd = -1;
	sp.probe_uffd = 14;
	sp.account = 1;
	sp.page_size = 4096;
	st.spent = spp;
	st.n_spent = 1;
	rc.name = "r";
	rc.sessions = 2;
	rc.granted = 7;
	st.rules = rcp;
	st.n_rules = 1;
	buf[0] = 1;
	n = uffd_broker__state__v1__state__pack(&st, buf + 1);
	save("fuzz_state", "message", buf, n + 1);
	/* magic, format 1, length, pid 1, a boot id of zeros, no digest */
	buf[0] = 0;
	hdr[8] = 1;
	memcpy(hdr + 12, &(uint32_t){ (uint32_t)n }, 4);
	hdr[16] = 1;
	memcpy(buf + 1, hdr, sizeof(hdr));
	n = uffd_broker__state__v1__state__pack(&st, buf + 1 + sizeof(hdr));
	save("fuzz_state", "framed", buf, n + 1 + sizeof(hdr));
	/*
	 * A journal (first byte 2): the state, then an entry over it that
	 * changes the session, adds one and says the spent record went, each
	 * as a 16-bit length and the message.
	 */
	buf[0] = 2;
	st.has_generation = true;
	st.generation = 5;
	n = uffd_broker__state__v1__state__pack(&st, buf + 3);
	memcpy(buf + 1, &(uint16_t){ (uint16_t)n }, 2);
	{
		UffdBroker__State__V1__Session s2 = ses;
		UffdBroker__State__V1__Session *s2p[] = { &ses, &s2 };
		uint64_t gone = 2;
		size_t m;

		ses.granted = 8;
		s2.id = 3;
		st.sessions = s2p;
		st.n_sessions = 2;
		st.spent = NULL;
		st.n_spent = 0;
		st.has_journal_seq = true;
		st.journal_seq = 1;
		st.gone_spent = &gone;
		st.n_gone_spent = 1;
		m = uffd_broker__state__v1__state__pack(&st, buf + 5 + n);
		memcpy(buf + 3 + n, &(uint16_t){ (uint16_t)m }, 2);
		save("fuzz_state", "journal", buf, 5 + n + m);
	}
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen-seeds DIR\n");
		return 1;
	}
	dir = argv[1];
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		perror(dir);
		return 1;
	}
	wire_seeds();
	session_seeds();
	policy_seeds();
	state_seeds();
	return 0;
}
