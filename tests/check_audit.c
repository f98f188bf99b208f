/* SPDX-License-Identifier: ISC */
/*
 * check_audit.c - the audit log against hostile peers: values a peer
 * controls (its executable's path, its cgroup) cannot forge a line or a
 * field, and floods of lines are limited.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "harness.h"
#include "log.h"
#include "ratelimit.h"

#define LOG_PREFIX	"uffd-brokerd: event="

/*
 * A name that, written raw, closes the reason's quotes, adds a uid=0 field,
 * and starts a line that reads as root's grant.
 */
#define FORGED_LINE	"uffd-brokerd: event=uffd_granted session=1 pid=1 " \
			"uid=0 rule=x features=0x28 live=1 max=16"
#define EVIL_DIR	"evil\" uid=0 \\ \n" FORGED_LINE " x=\""
#define EVIL_DIR_ESC	"evil\\\" uid=0 \\\\ \\n" FORGED_LINE " x=\\\""

/* cgroup names cannot hold '\n' (EINVAL): CR, NEL, TAB and a bad byte instead. */
#define EVIL_CGROUP	"evil\" uid=0 \\ \r\xc2\x85\t\xff" FORGED_LINE " x=\""
#define EVIL_CGROUP_ESC	"evil\\\" uid=0 \\\\ \\r\\xc2\\x85\\t\\xff" FORGED_LINE \
			" x=\\\""

static const struct {
	const char *value;
	size_t len;		/* of the buffer; 0: LOG_QUOTED_MAX */
	const char *quoted;
} quote_cases[] = {
	{ "", 0, "\"\"" },
	{ "/usr/bin/crosvm --flag=1", 0, "\"/usr/bin/crosvm --flag=1\"" },
	{ "a\"b", 0, "\"a\\\"b\"" },
	{ "a\\b\\", 0, "\"a\\\\b\\\\\"" },
	{ "a\nb\rc\td", 0, "\"a\\nb\\rc\\td\"" },
	{ "\x01\x1b[31m\x7f\x1f", 0, "\"\\x01\\x1b[31m\\x7f\\x1f\"" },
	/* UTF-8 passes: é, €, an emoji, NBSP (U+00A0), U+2027. */
	{ "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xc2\xa0\xe2\x80\xa7", 0,
	    "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xc2\xa0\xe2\x80\xa7\"" },
	/* C1 controls (NEL, CSI) and the line and paragraph separators. */
	{ "\xc2\x85\xc2\x9b\xc2\x80", 0,
	    "\"\\xc2\\x85\\xc2\\x9b\\xc2\\x80\"" },
	{ "\xe2\x80\xa8\xe2\x80\xa9", 0,
	    "\"\\xe2\\x80\\xa8\\xe2\\x80\\xa9\"" },
	/* Not UTF-8: stray bytes, overlongs, a surrogate, beyond U+10FFFF, cut. */
	{ "\xff\xfe\x80", 0, "\"\\xff\\xfe\\x80\"" },
	{ "\xc0\xaf\xe0\x80\xaf", 0,
	    "\"\\xc0\\xaf\\xe0\\x80\\xaf\"" },
	{ "\xed\xa0\x80", 0, "\"\\xed\\xa0\\x80\"" },
	{ "\xf4\x90\x80\x80", 0, "\"\\xf4\\x90\\x80\\x80\"" },
	{ "a\xe2\x82", 0, "\"a\\xe2\\x82\"" },
	{ "\xc3(", 0, "\"\\xc3(\"" },
	/* What fits; what does not is cut at a character and marked. */
	{ "abcdefg", 10, "\"abcdefg\"" },
	{ "abcdefgh", 10, "\"abcd...\"" },
	{ "abcd\"efgh", 10, "\"abcd...\"" },
	{ "ab\nc", 8, "\"ab\\nc\"" },
	{ "abc\xff", 9, "\"abc...\"" },
	{ "\xe2\x82\xac\xe2\x82\xac", 9, "\"\xe2\x82\xac\xe2\x82\xac\"" },
	{ "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", 9, "\"\xe2\x82\xac...\"" },
	{ "\xe2\x82\xac\xe2\x82\xac", 8, "\"...\"" },
};

START_TEST(test_audit_quote_table)
{
	char buf[LOG_QUOTED_MAX];
	size_t len = quote_cases[_i].len ? quote_cases[_i].len : sizeof(buf);

	memset(buf, 'Z', sizeof(buf));
	ck_assert_str_eq(log_quote(buf, len, quote_cases[_i].value),
	    quote_cases[_i].quoted);
	ck_assert_uint_le(strlen(buf) + 1, len);
}
END_TEST

/* The longest value a peer may have (a PATH_MAX path of escapes) still fits. */
START_TEST(test_audit_quote_long)
{
	char value[PATH_MAX], buf[LOG_QUOTED_MAX];

	memset(value, '\n', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	log_quote(buf, sizeof(buf), value);
	ck_assert_uint_eq(strlen(buf), sizeof(buf) - 1);
	ck_assert_str_eq(buf + strlen(buf) - 6, "\\n...\"");
}
END_TEST

/* A raw control byte that reached the line writer does not end the line. */
START_TEST(test_audit_line_writer_controls)
{
	const char *path = test_file("line.log", "");
	char line[256];
	FILE *f;
	int fd;

	ck_assert_int_ge(fd = open(path, O_WRONLY | O_CLOEXEC), 0);
	ck_assert_int_eq(dup2(fd, 2), 2);
	log_init(false);
	log_event("test", "v=%s w=1", "a\nb\rc\x7f\x1b");
	ck_assert_ptr_nonnull(f = fopen(path, "r"));
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
	ck_assert_str_eq(line, "uffd-brokerd: event=test v=a?b?c?? w=1\n");
	ck_assert_ptr_null(fgets(line, sizeof(line), f));
	fclose(f);
	close(fd);
}
END_TEST

/* ---- the limiter, on its own ---- */

#define STEPS	12

/* One limiter through time: is there room for a line at t? */
static const struct {
	unsigned int burst, interval_ms;
	struct { uint64_t t; bool room; } steps[STEPS];	/* t 0 ends */
} room_cases[] = {
	{ 3, 10, { { 100, true }, { 101, true }, { 102, true }, { 103, false },
	    { 109, false }, { 110, true }, { 111, true }, { 119, true },
	    { 119, false }, { 500, true } } },
	{ 1, 1000, { { 5000, true }, { 5000, false }, { 5999, false },
	    { 6000, true }, { 6001, false } } },
};

START_TEST(test_ratelimit_room_table)
{
	struct ratelimit rl = { 0 };
	bool room;
	int i;

	for (i = 0; i < STEPS && room_cases[_i].steps[i].t != 0; i++) {
		room = ratelimit_room(&rl, room_cases[_i].burst,
		    room_cases[_i].interval_ms, room_cases[_i].steps[i].t);
		ck_assert_msg(room == room_cases[_i].steps[i].room,
		    "case %d step %d", _i, i);
		if (room)
			rl.lines++;
	}
}
END_TEST

/*
 * A table of two uids, interval 10: each step looks uid up at t (and, with
 * line, writes a line for it, which may begin a new interval), then counts
 * suppress lines against it. slot: the entry's index, -1 for none (the
 * shared one); evicted: the uid that lost its entry, -1 none; owed: the
 * summary the evicted entry still had.
 */
static const struct uid_step {
	uid_t	uid;
	uint64_t t;
	bool	line;
	unsigned int suppress;
	int	slot, evicted;
	uint64_t owed;
} uid_steps[] = {
	{ 1, 100, true, 0, 0, -1, 0 },		/* free entries first */
	{ 2, 103, true, 5, 1, -1, 0 },
	{ 1, 104, false, 0, 0, -1, 0 },		/* its own */
	{ 3, 105, false, 0, -1, -1, 0 },	/* full, none idle: shared */
	{ 3, 109, false, 0, -1, -1, 0 },
	{ 1, 112, true, 0, 0, -1, 0 },		/* uid 1 begins a new interval */
	{ 3, 113, false, 0, 1, 2, 5 },		/* so uid 2's is the oldest */
	{ 2, 114, false, 0, -1, -1, 0 },	/* an evicted uid starts over */
	{ 2, 122, false, 0, 0, 1, 0 },
	{ 3, 122, false, 0, 1, -1, 0 },
};

START_TEST(test_ratelimit_uid_table)
{
	struct uid_rate tab[2] = { 0 }, evicted, *e;
	const struct uid_step *st;
	size_t i;

	for (i = 0; i < sizeof(uid_steps) / sizeof(uid_steps[0]); i++) {
		st = &uid_steps[i];
		e = ratelimit_uid(tab, 2, st->uid, 10, st->t, &evicted);
		ck_assert_msg(e == (st->slot < 0 ? NULL : &tab[st->slot]),
		    "step %zu: entry %td", i, e ? e - tab : -1);
		ck_assert_msg(evicted.used == (st->evicted >= 0), "step %zu", i);
		if (st->evicted >= 0) {
			ck_assert_uint_eq(evicted.uid, st->evicted);
			ck_assert_uint_eq(evicted.suppressed, st->owed);
		}
		if (e == NULL)
			continue;
		ck_assert_uint_eq(e->uid, st->uid);
		if (st->line && ratelimit_room(&e->rl, 5, 10, st->t))
			e->rl.lines++;
		e->suppressed += st->suppress;
	}
}
END_TEST

/* A summary is owed once the interval is over, once; at once at shut-down. */
START_TEST(test_ratelimit_summary)
{
	struct uid_rate e = { .rl = { .start_ms = 100, .lines = 3 },
	    .suppressed = 7, .used = true };

	ck_assert_uint_eq(ratelimit_summary(&e, 10, 105), 0);
	ck_assert_uint_eq(ratelimit_summary(&e, 10, 109), 0);
	ck_assert_uint_eq(ratelimit_summary(&e, 10, 110), 7);
	ck_assert_uint_eq(ratelimit_summary(&e, 10, 111), 0);
	e.suppressed = 2;
	ck_assert_uint_eq(ratelimit_summary(&e, 0, 100), 2);
	ck_assert_uint_eq(ratelimit_summary(&e, 0, 100), 0);
}
END_TEST

/*
 * Walk a line's fields after the prefix: key=value, the value bare or quoted
 * (a backslash escapes the next byte). Returns the number of fields named
 * key, with the first one's raw value in val; -1 if the line is not made of
 * such fields, or holds a control byte.
 */
static int
field(const char *line, const char *key, char *val, size_t vallen)
{
	const char *p = line + strlen("uffd-brokerd: "), *k, *v;
	size_t klen;
	int n = 0;

	for (;;) {
		for (k = p; (*p >= 'a' && *p <= 'z') || *p == '_'; p++)
			;
		if (p == k || *p++ != '=')
			return -1;
		klen = p - 1 - k;
		v = p;
		if (*p == '"') {
			for (p++; *p != '"'; p++)
				if (*p == '\0' || (*p == '\\' && *++p == '\0'))
					return -1;
			p++;
		} else
			while (*p != ' ' && *p != '\0' && *p != '"')
				p++;
		if (klen == strlen(key) && strncmp(k, key, klen) == 0 &&
		    n++ == 0)
			snprintf(val, vallen, "%.*s", (int)(p - v), v);
		if (*p == '\0')
			break;
		if (*p++ != ' ')
			return -1;
	}
	for (p = line; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return -1;
	return n;
}

/*
 * Every line of the log is one event: it starts with the prefix, is made of
 * key=value fields, with one event and at most one uid; no line is a grant
 * to root; and want (the escaped peer value) is there.
 */
static void
assert_log_unforged(const char *want)
{
	char *log = read_whole(tb.log), *line, *save = NULL, val[64];
	bool found = strstr(log, want) != NULL;
	int lines = 0;

	/* The lines first: a forged one says more than a missing value. */
	for (line = strtok_r(log, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save), lines++) {
		ck_assert_msg(strncmp(line, LOG_PREFIX, strlen(LOG_PREFIX)) == 0,
		    "line without the prefix: %s", line);
		ck_assert_msg(field(line, "event", val, sizeof(val)) == 1,
		    "not one event of key=value fields: %s", line);
		ck_assert_msg(field(line, "uid", val, sizeof(val)) <= 1,
		    "a second uid field: %s", line);
		ck_assert_msg(!(strstr(line, "event=uffd_granted") != NULL &&
		    field(line, "uid", val, sizeof(val)) == 1 &&
		    strcmp(val, "0") == 0), "a forged grant to root: %s", line);
	}
	ck_assert_int_gt(lines, 2);
	ck_assert_msg(found, "escaped value missing: %s", want);
	free(log);
}

/* The test binary re-exec'd as a client: a session the broker refuses. */
int
audit_client_main(const char *sock)
{
	struct uffdc_session *s;
	int rc = uffdc_session_open(sock, &s);

	if (rc != -EACCES) {
		fprintf(stderr, "session open: %d, expected -EACCES\n", rc);
		return 1;
	}
	return 0;
}

/*
 * A client run from a directory whose name forges a grant to root: the
 * refusal that quotes its executable is logged escaped.
 */
START_TEST(test_audit_exe_path_escaped)
{
	char dir[PATH_MAX], exe[PATH_MAX + 16], out[PATH_MAX];
	const char *argv[] = { exe, "--audit-client", tb.sock, NULL };

	snprintf(dir, sizeof(dir), "%s/" EVIL_DIR, getenv("UFFD_TEST_DIR"));
	snprintf(exe, sizeof(exe), "%s/client", dir);
	snprintf(out, sizeof(out), "%s/client.out", getenv("UFFD_TEST_DIR"));
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	copy_file("/proc/self/exe", exe);
	broker_start("--policy", test_file("exe.conf",
	    "[rule crosvm]\nexe = /usr/bin/crosvm\n"), NULL);
	ck_assert_int_eq(run_program(out, true, argv), 0);
	ck_assert(log_wait(1000, "event=session_refused", "exe "));
	assert_log_unforged("/" EVIL_DIR_ESC "/client cgroup /\"");
	broker_stop();
	ck_assert_int_eq(unlink(exe), 0);
	ck_assert_int_eq(rmdir(dir), 0);
	unlink(out);
}
END_TEST

/* The test's cgroup, under the cgroup v2 hierarchy's mount point; or false. */
static bool
evil_cgroup(char *buf, size_t len)
{
	char line[1024], mnt[512], *sep;
	bool found = false;
	FILE *f = fopen("/proc/self/mountinfo", "r");

	while (f != NULL && !found && fgets(line, sizeof(line), f) != NULL) {
		/* "ID PARENT MAJ:MIN ROOT MOUNT OPTS ... - TYPE SOURCE SUPER" */
		sep = strstr(line, " - ");
		if (sep != NULL && strncmp(sep, " - cgroup2 ", 11) == 0 &&
		    sscanf(line, "%*s %*s %*s %*s %511s", mnt) == 1) {
			snprintf(buf, len, "%s/" EVIL_CGROUP, mnt);
			found = true;
		}
	}
	if (f != NULL)
		fclose(f);
	return found;
}

/* Remove the test's cgroup once its client is gone (EBUSY till then). */
static bool
cgroup_remove(const char *path)
{
	int i;

	for (i = 0; i < 100 && rmdir(path) < 0 && errno == EBUSY; i++)
		usleep(10000);
	return access(path, F_OK) != 0;
}

/* In the runner, after the tests: the cgroup goes even if its test failed. */
static void
cgroup_teardown(void)
{
	char cg[PATH_MAX];

	if (evil_cgroup(cg, sizeof(cg)) && !cgroup_remove(cg))
		fprintf(stderr, "audit: cgroup %s left behind\n", cg);
}

struct in_cgroup {
	int	go[2];
};

static int
client_refused_after_go(void *arg)
{
	struct in_cgroup *c = arg;

	close(c->go[1]);
	sync_wait(c->go[0]);
	return client_open_refused(NULL);
}

/*
 * A client in a cgroup whose name closes the reason's quotes and adds
 * fields and terminal controls: the refusal quoting its cgroup is escaped.
 */
START_TEST(test_audit_cgroup_escaped)
{
	char cg[PATH_MAX], procs[PATH_MAX + 16], pid[16];
	struct in_cgroup c;
	pid_t client;
	int fd;

	if (!evil_cgroup(cg, sizeof(cg))) {
		fprintf(stderr, "audit: no cgroup2 mount; cgroup test skipped\n");
		return;
	}
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", cg);
	ck_assert_int_eq(mkdir(cg, 0755), 0);
	broker_start("--policy", test_file("cgroup.conf",
	    "[rule vmm]\ncgroup = /system.slice/vmm@*.service\n"), NULL);
	ck_assert_int_eq(pipe2(c.go, O_CLOEXEC), 0);
	client = spawn(client_refused_after_go, &c, true);
	close(c.go[0]);
	snprintf(pid, sizeof(pid), "%d", (int)client);
	ck_assert_int_ge(fd = open(procs, O_WRONLY | O_CLOEXEC), 0);
	ck_assert_int_eq(write(fd, pid, strlen(pid)), (ssize_t)strlen(pid));
	close(fd);
	sync_signal(c.go[1]);
	close(c.go[1]);
	ck_assert_int_eq(reap(client), 0);
	ck_assert(cgroup_remove(cg));
	ck_assert(log_wait(1000, "event=session_refused", "cgroup /"));
	assert_log_unforged("cgroup /" EVIL_CGROUP_ESC "\"");
	broker_stop();
}
END_TEST

/* ---- floods ---- */

#define ATTEMPTS	100000
#define GOOD_UID	64001	/* a second, well-behaved user */
#define STORM_UID	64002	/* a user no rule admits */
#define STORM		2000

/* The limits the flood tests run with. */
#define SESSION_BURST	10
#define UID_BURST	50

static const char flood_policy[] =
	"[rule jailed]\nuid = 65534\nmode = kernel\nmax_uffds = 1\n"
	"[rule good]\nuid = 64001\nmode = kernel\n";

/* A broker limiting log lines per interval_ms; its tick every 100 ms. */
static void
flood_broker_start(int interval_ms)
{
	char interval[16];

	snprintf(interval, sizeof(interval), "%d", interval_ms);
	broker_start("--policy", test_file("flood.conf", flood_policy),
	    "--log-session-burst", "10", "--log-burst", "50",
	    "--log-interval-ms", interval, "--probe-interval-ms", "100", NULL);
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/*
 * Intervals a peer wrote in for ms: one, unless a slow run made its attack
 * outlast it (each interval has its own burst).
 */
static unsigned long
intervals(double ms, int interval_ms)
{
	return (unsigned long)(ms / interval_ms) + 1;
}

/*
 * Lines of the log holding both needles (needle2 may be NULL); *sum (may be
 * NULL) adds up their suppressed= counts.
 */
static unsigned long
log_count(const char *needle1, const char *needle2, unsigned long long *sum)
{
	char *log = read_whole(tb.log), *line, *save = NULL, val[32];
	unsigned long n = 0;

	if (sum != NULL)
		*sum = 0;
	for (line = strtok_r(log, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (strstr(line, needle1) == NULL ||
		    (needle2 != NULL && strstr(line, needle2) == NULL))
			continue;
		n++;
		if (sum != NULL && field(line, "suppressed", val, sizeof(val)) == 1)
			*sum += strtoull(val, NULL, 10);
	}
	free(log);
	return n;
}

/*
 * Wait until the lines holding needle and the suppressed= counts of the
 * summaries holding summary add up to want (or a timeout), then return
 * both: the last summary comes from the tick an interval after the flood.
 */
static void
log_wait_total(int timeout_ms, const char *needle, const char *summary,
    unsigned long want, unsigned long *lines, unsigned long long *suppressed)
{
	int waited;

	for (waited = 0;; waited += 50) {
		*lines = log_count(needle, NULL, NULL);
		log_count("event=log_suppressed", summary, suppressed);
		if (*lines + *suppressed >= want || waited >= timeout_ms)
			return;
		usleep(50000);
	}
}

/* What the attacker and the well-behaved client share with the test. */
struct flood {
	int		done[2], go[2];
	unsigned long	attempts;	/* made so far by the attacker */
	unsigned long	attempts_seen;	/* by the good client, when served */
	double		loop_ms, served_ms;
};

/* The session's refusals as the broker counts them (its Status reply). */
static uint64_t
refused_total(struct uffdc_session *s)
{
	UffdBroker__V1__StatusRequest st = UFFD_BROKER__V1__STATUS_REQUEST__INIT;
	WireRequest req = UFFD_BROKER__V1__REQUEST__INIT;
	WireReply *reply;
	uint64_t n;

	req.body_case = UFFD_BROKER__V1__REQUEST__BODY_STATUS;
	req.status = &st;
	CHILD_CHECK(client_call(s, &req, -1, &reply) == 0);
	CHILD_CHECK(reply->body_case ==
	    UFFD_BROKER__V1__REPLY__BODY_STATUS_REPLY);
	n = reply->status_reply->refused_total;
	uffd_broker__v1__reply__free_unpacked(reply, NULL);
	return n;
}

/* Hold the one uffd of the quota, then ask for more, ATTEMPTS times. */
static int
quota_attacker(void *arg)
{
	struct flood *f = arg;
	struct uffdc_session *s;
	struct uffdc_uffd *held, *u;
	double t0;
	unsigned long i;

	close(f->done[0]);
	close(f->go[1]);
	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	CHILD_CHECK(uffdc_create(s, 0, 0, &held) == 0);
	t0 = now_ms();
	for (i = 0; i < ATTEMPTS; i++) {
		CHILD_CHECK(uffdc_create(s, 0, 0, &u) == -EDQUOT);
		f->attempts = i + 1;
	}
	f->loop_ms = now_ms() - t0;
	CHILD_CHECK(refused_total(s) == ATTEMPTS);
	sync_signal(f->done[1]);
	/* The session stays open, silent, while the test reads the log. */
	sync_wait(f->go[0]);
	uffdc_session_close(s);
	return 0;
}

static int
good_client(void *arg)
{
	struct flood *f = arg;
	struct uffdc_session *s;
	struct uffdc_uffd *u;
	double t0 = now_ms();

	CHILD_CHECK(uffdc_session_open(tb.sock, &s) == 0);
	CHILD_CHECK(uffdc_create(s, 0, 0, &u) == 0);
	f->served_ms = now_ms() - t0;
	f->attempts_seen = f->attempts;
	uffdc_session_close(s);
	return 0;
}

/*
 * A jailed client over its quota asks 10^5 times: the log holds its burst
 * and a summary whose count makes up the rest exactly, its refusals are all
 * counted, and another user is served meanwhile.
 */
START_TEST(test_audit_quota_flood)
{
	const int interval_ms = 3000;
	struct flood *f = mmap(NULL, sizeof(*f), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	unsigned long long suppressed;
	unsigned long hits, lines, summaries, n;
	char pid[32];
	pid_t attacker;
	double t0, flood_ms;
	int i;

	ck_assert_ptr_ne(f, MAP_FAILED);
	ck_assert_int_eq(pipe2(f->done, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(f->go, O_CLOEXEC), 0);
	flood_broker_start(interval_ms);
	t0 = now_ms();
	attacker = spawn(quota_attacker, f, true);
	close(f->done[1]);
	close(f->go[0]);
	for (i = 0; i < 500 && f->attempts < ATTEMPTS / 20; i++)
		usleep(10000);
	ck_assert_uint_ge(f->attempts, ATTEMPTS / 20);
	ck_assert_int_eq(run_client_as(good_client, f, GOOD_UID), 0);
	fprintf(stderr, "audit: another user served in %.1f ms, at attempt "
	    "%lu of the flood\n", f->served_ms, f->attempts_seen);
	ck_assert_uint_lt(f->attempts_seen, ATTEMPTS);
	/* Under valgrind a handshake alone takes 100-300 ms. */
	ck_assert_msg(f->served_ms < (under_valgrind() ? 1000 : 100),
	    "served in %.1f ms", f->served_ms);
	ck_assert(log_wait(0, "event=uffd_granted", "uid=64001"));

	sync_wait(f->done[0]);
	flood_ms = now_ms() - t0;
	fprintf(stderr, "audit: %d refused creations in %.0f ms\n", ATTEMPTS,
	    f->loop_ms);
	/* The last summary comes from the tick: the attacker is now silent. */
	log_wait_total(interval_ms + 1000, "event=quota_hit", "uid=65534",
	    ATTEMPTS, &hits, &suppressed);
	fprintf(stderr, "audit: summary %.0f ms after the flood ended\n",
	    now_ms() - t0 - flood_ms);
	summaries = log_count("event=log_suppressed", "uid=65534", NULL);
	snprintf(pid, sizeof(pid), " pid=%d ", (int)attacker);
	lines = log_count(pid, NULL, NULL);
	n = intervals(flood_ms, interval_ms);
	ck_assert_msg(hits + suppressed == ATTEMPTS, "%lu lines + %llu "
	    "suppressed", hits, suppressed);
	ck_assert_msg(lines <= n * SESSION_BURST, "%lu lines about the "
	    "session in %lu intervals", lines, n);
	ck_assert_uint_le(summaries, n);
	ck_assert_uint_eq(log_count("uid=65534", NULL, NULL), lines + summaries);

	sync_signal(f->go[1]);
	ck_assert_int_eq(reap(attacker), 0);
	broker_stop();
	munmap(f, sizeof(*f));
}
END_TEST

/* A full broker names the uid it hangs up on (its line counts against it). */
START_TEST(test_audit_broker_full)
{
	char c, reason[256];
	WireStatus st;
	int held, sock;

	broker_start("--allow-uid", "65534", "--max-sessions", "1", NULL);
	ck_assert_int_ge(held = raw_connect(), 0);
	ck_assert(log_wait(1000, "event=session_connect", "uid=0"));
	/* It reads why, then the hang-up. */
	ck_assert_int_ge(sock = raw_connect_quiet(), 0);
	ck_assert_int_eq(raw_welcome(sock, &st, reason, sizeof(reason)), 0);
	ck_assert_int_eq(st, UFFD_BROKER__V1__STATUS__QUOTA);
	ck_assert_str_eq(reason, "broker full: 1 sessions");
	ck_assert_int_eq(recv(sock, &c, 1, 0), 0);
	ck_assert(log_wait(1000, "event=session_refused", "uid=0 "
	    "reason=\"broker full: 1 sessions\""));
	close(sock);
	close(held);
	broker_stop();
}
END_TEST

/* A user no rule admits connects STORM times, each reading why. */
static int
connect_storm(void *arg)
{
	WireStatus st;
	char reason[256];
	int i, sock;

	for (i = 0; i < STORM; i++) {
		CHILD_CHECK((sock = raw_connect_quiet()) >= 0);
		CHILD_CHECK(raw_welcome(sock, &st, reason, sizeof(reason)) == 0);
		CHILD_CHECK(st == UFFD_BROKER__V1__STATUS__DENIED);
		close(sock);
	}
	return 0;
}

START_TEST(test_audit_connect_storm)
{
	const int interval_ms = 1000;
	unsigned long long suppressed;
	unsigned long lines, summaries, n;
	double t0, storm_ms;

	flood_broker_start(interval_ms);
	t0 = now_ms();
	ck_assert_int_eq(run_client_as(connect_storm, NULL, STORM_UID), 0);
	storm_ms = now_ms() - t0;
	fprintf(stderr, "audit: %d refused connections in %.0f ms\n", STORM,
	    storm_ms);
	log_wait_total(interval_ms + 1000, " uid=64002 gid=", "uid=64002",
	    2 * STORM, &lines, &suppressed);
	summaries = log_count("event=log_suppressed", "uid=64002", NULL);
	n = intervals(storm_ms, interval_ms);
	/* Each connection is two events: session_connect, session_refused. */
	ck_assert_msg(lines + suppressed == 2 * STORM, "%lu lines + %llu "
	    "suppressed", lines, suppressed);
	ck_assert_msg(lines <= n * UID_BURST, "%lu lines about uid 64002 in "
	    "%lu intervals", lines, n);
	ck_assert_uint_le(summaries, n);
	/* Another user is not silenced by it. */
	ck_assert_int_eq(run_client_as(good_client, &(struct flood){ 0 },
	    GOOD_UID), 0);
	ck_assert(log_wait(1000, "event=uffd_granted", "uid=64001"));
	broker_stop();
}
END_TEST

Suite *
make_audit_suite(void)
{
	Suite *s = suite_create("audit");
	TCase *quote = tcase_create("quote");
	TCase *limit = tcase_create("ratelimit");
	TCase *forge = tcase_create("forgery");
	TCase *flood = tcase_create("flood");

	tcase_add_loop_test(quote, test_audit_quote_table, 0,
	    sizeof(quote_cases) / sizeof(quote_cases[0]));
	tcase_add_test(quote, test_audit_quote_long);
	tcase_add_test(quote, test_audit_line_writer_controls);
	suite_add_tcase(s, quote);
	tcase_add_loop_test(limit, test_ratelimit_room_table, 0,
	    sizeof(room_cases) / sizeof(room_cases[0]));
	tcase_add_test(limit, test_ratelimit_uid_table);
	tcase_add_test(limit, test_ratelimit_summary);
	suite_add_tcase(s, limit);
	tcase_set_timeout(forge, 20);
	tcase_add_unchecked_fixture(forge, NULL, cgroup_teardown);
	tcase_add_test(forge, test_audit_exe_path_escaped);
	tcase_add_test(forge, test_audit_cgroup_escaped);
	suite_add_tcase(s, forge);
	tcase_set_timeout(flood, 30);
	tcase_add_test(flood, test_audit_quota_flood);
	tcase_add_test(flood, test_audit_connect_storm);
	tcase_add_test(flood, test_audit_broker_full);
	suite_add_tcase(s, flood);
	return s;
}
