/* SPDX-License-Identifier: ISC */
/*
 * harness.h - a real broker process per test, clients in forked processes.
 */
#ifndef UFFD_TEST_HARNESS_H
#define UFFD_TEST_HARNESS_H

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <time.h>

#include "wire.h"

#define NOBODY	65534

/* A build with AddressSanitizer (make sanitize): its runtime's needs. */
#if defined(__SANITIZE_ADDRESS__)
#define TEST_SANITIZED	1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_SANITIZED	1
#endif
#endif
/*
 * The broker of a build for valgrind (make valgrind: CPPFLAGS of the whole
 * build, this suite's too), which runs under it.
 */
#ifdef BROKER_UNDER_VALGRIND
#define TEST_UNDER_VALGRIND	1
#endif
/* The verifier's deadlines, as the broker under test has them (verifier.c). */
#if defined(TEST_SANITIZED)
#define VERIFIER_DEADLINE_TEXT	"200 ms"
#define VERIFIER_ANSWER_TEXT	"2000 ms"
#define VERIFIER_ANSWER_MS	2000
#elif defined(TEST_UNDER_VALGRIND)
#define VERIFIER_DEADLINE_TEXT	"800 ms"
#define VERIFIER_ANSWER_TEXT	"4000 ms"
#define VERIFIER_ANSWER_MS	4000
#else
#define VERIFIER_DEADLINE_TEXT	"40 ms"
#define VERIFIER_ANSWER_TEXT	"1000 ms"
#define VERIFIER_ANSWER_MS	1000
#endif

struct broker_proc {
	pid_t	pid;
	char	dir[64];
	char	sock[96];
	char	log[128];
};

/* The broker of the running test (set up by broker_start). */
extern struct broker_proc tb;
/* Nonzero: the next broker_start()s' RLIMIT_NOFILE, soft and hard. */
extern unsigned long broker_nofile;

/* The uffd-brokerd under test ($UFFD_BROKERD, or build/uffd-brokerd). */
const char *brokerd_path(void);
/* A file of the build under test: $UFFD_BUILD/name (build/name). */
const char *build_file(const char *name);
/*
 * exec a broker's argv: under make valgrind ($UFFD_VALGRIND, valgrind's
 * command line, words split at blanks) under valgrind. Returns on failure.
 */
void	exec_brokerd(const char *const *argv);
/* argv with valgrind's command line first under make valgrind, else argv. */
const char *const *valgrind_argv(const char *const *argv);
/*
 * A valgrind report in the output of a program run under valgrind_argv()
 * fails the test, the output kept as a broker's log is.
 */
void	valgrind_check_output(const char *path, const char *what);
/* Marks valgrind's errors in a broker's log (make valgrind sets it so). */
#define VALGRIND_ERROR_MARKER	"valgrind-error-begin"
/*
 * Valgrind keeps the top 12 fds under a process's RLIMIT_NOFILE for itself
 * (its log, the program's file), raising the soft limit by as many when the
 * hard limit allows: the program sees the limit it was given.
 */
#define VALGRIND_RESERVED_FDS	12
/* The brokers run under valgrind (make valgrind: $UFFD_VALGRIND). */
bool	under_valgrind(void);
/*
 * A test that cannot run under valgrind returns, saying why; the reason is
 * printed with the test's name. Keep them few.
 */
#define SKIP_UNDER_VALGRIND(why) do {					\
	if (under_valgrind()) {						\
		printf("%s: skipped under valgrind: %s\n", __func__, why);\
		return;							\
	}								\
} while (0)
/* Start uffd-brokerd with extra arguments (NULL-terminated). */
void	broker_start(const char *arg, ...);
/* SIGTERM, check a clean exit, remove the socket directory. */
void	broker_stop(void);
/* Wait until the broker's log holds a line with every needle. */
bool	log_wait(int timeout_ms, const char *needle1, const char *needle2);
/* Number of open fds of a process. */
int	count_fds(pid_t pid);

/* Run fn(arg) in a child, as nobody if drop. Returns its pid. */
pid_t	spawn(int (*fn)(void *), void *arg, bool drop);
/* The same as uid (its gid the same number, no groups); 0 stays root. */
pid_t	spawn_as(int (*fn)(void *), void *arg, uid_t uid);
/* Wait for a child; its exit code, or 128+signal. */
int	reap(pid_t pid);
/* A client's whole ordinary life: session, one uffd, release. For run_client(). */
int	client_gets_uffd(void *arg);
/* A client the broker refuses a session (-EACCES). For run_client(). */
int	client_open_refused(void *arg);
/* A client over a session limit (-EDQUOT). For run_client(). */
int	client_open_over_limit(void *arg);
/*
 * A seccomp filter that allows everything: the process counts as jailed
 * already, so the library leaves checks it cannot make to the broker.
 */
int	jail_allow_all(void);
/* spawn() and reap() in one; spawn_as() and reap(). */
int	run_client(int (*fn)(void *), void *arg, bool drop);
int	run_client_as(int (*fn)(void *), void *arg, uid_t uid);

/* In a child: fail with the line number when cond is false. */
#define CHILD_CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: child check failed: %s\n",	\
		    __FILE__, __LINE__, #cond);				\
		_exit(1);						\
	}								\
} while (0)

/*
 * Run a program (argv[0] a path, or a name in $PATH), as nobody if drop,
 * its stdout and stderr into the file out. Returns its exit code, or
 * 128+signal.
 */
int	run_program(const char *out, bool drop, const char *const *argv);

/* A file's whole text; free() it. */
char	*read_whole(const char *path);

/*
 * Write text to a file under the run's directory (readable by the broker
 * after its uid change). Returns its path, valid until the next call.
 */
const char *test_file(const char *name, const char *text);

/* Raw protocol, for playing a misbehaving client. */
/* Connect to tb's broker and read its welcome (or refusal); -1 on failure. */
int	raw_connect(void);
/* Connect without reading anything. */
int	raw_connect_quiet(void);
/*
 * Read the broker's next reply (its welcome, first): status and reason.
 * Returns 0 or -errno (-ECONNRESET when the broker hung up).
 */
int	raw_welcome(int sock, WireStatus *status, char *reason,
	    size_t reasonlen);
/* Send bytes (+fd); read the reply's status and reason. Returns 0, or -errno
 * (-ECONNRESET when the broker closed the session). */
int	raw_exchange(int sock, const void *buf, size_t len, int fd,
	    WireStatus *status, char *reason, size_t reasonlen);
int	raw_call(int sock, const WireRequest *req, int fd, WireStatus *status,
	    char *reason, size_t reasonlen);

/*
 * The running broker's AdminStatus view (STATUS, or the POLICY summary),
 * every page, as root: its lines, each ended by a newline (free()), or NULL.
 */
char	*admin_view(UffdBroker__V1__AdminStatus__View view);

/* The broker closed the socket: the next read (within 2 s) sees the end. */
bool	closed_by_broker(int sock);

/*
 * A client's handshake made by hand, one step at a time, for a client that
 * misbehaves at one of them. Each returns 0 or -errno; a reply's status and
 * reason are kept in the struct.
 */
struct hand {
	int		sock;
	int		devfd;		/* from hand_verify() */
	void		*dummy;		/* the liveness page (private) */
	uint32_t	page_size;
	WireStatus	st;
	char		reason[256];
};
/* Connect to tb's broker, read its welcome (h->st), map the dummy page. */
int	hand_connect(struct hand *h);
/* Hello with listener (-1: none) and version; the reply's status in h->st. */
int	hand_hello(struct hand *h, int listener, uint32_t version);
/* Install the library's filter, Hello with its listener: 0 when OK. */
int	hand_jail(struct hand *h);
/* The verification ioctl: the device fd (also h->devfd), or -errno. */
int	hand_verify(struct hand *h);
/* A Probe, Attach (no features) or StatusRequest, with fd (or -1). */
int	hand_send(struct hand *h, UffdBroker__V1__Request__BodyCase body,
	    int fd);
/*
 * A listener of the library's filter, from a child that installed it and
 * exited: of the right kind, with no process under it.
 */
int	spare_listener(void);

/*
 * Holding the broker still at a chosen point, to order a race for certain.
 * broker_pause() returns once the broker is stopped (SIGSTOP).
 */
void	broker_pause(void);
void	broker_resume(void);
/*
 * Trace the broker (ptrace), stopped; run it until one of its
 * SECCOMP_IOCTL_NOTIF_RECV has returned a notification, and leave it stopped
 * there, before it looks at it; let it go.
 */
void	broker_trace(void);
void	broker_hold_at_notification(void);
/* The same after a system call nr whose argument arg & mask == value. */
void	broker_hold_after(long nr, int arg, uint64_t mask, uint64_t value);
void	broker_untrace(void);
/* Wait until pid sleeps in system call nr (/proc/PID/syscall). */
bool	wait_in_syscall(pid_t pid, long nr, int timeout_ms);
/* fork(), the child getting the pid want (clone3's set_tid; root). -1: taken. */
pid_t	fork_with_pid(pid_t want);

/*
 * A TCP socket whose last close blocks for linger_s seconds: SO_LINGER on,
 * and a full send queue its peer (*server, kept by the caller) never reads.
 */
int	lingering_socket(int linger_s, int *server);
/* Copy a file, mode 0755 (a program nobody may run from the test dir). */
void	copy_file(const char *from, const char *to);
/* Queue fd in a fresh unix socket (closing ours); returns that socket. */
int	nest_in_unix_socket(int fd);
double	ms_since(const struct timespec *t0);
/* A well-behaved client's whole life (client_gets_uffd), in ms. */
double	timed_client_ms(bool drop);
/* Processes whose parent is parent. */
int	count_children(pid_t parent);
/* A process's (or thread's) state letter in /proc/PID/stat, or 0. */
char	proc_state(pid_t pid);
/* Wait until thread tid is in state ('D': a vfork parent), up to timeout. */
bool	wait_task_state(pid_t tid, char state, int timeout_ms);
/* The broker's child processes (its verifier and closer), up to max. */
int	broker_children(pid_t pid, pid_t *out, int max);
/* A field of /proc/PID/status, as text. */
void	status_field(pid_t pid, const char *key, char *out, size_t len);

/* Pipes for ordering a parent and a child: one byte each way. */
void	sync_signal(int fd);
void	sync_wait(int fd);

Suite	*make_config_suite(void);
Suite	*make_grant_suite(void);
Suite	*make_jail_suite(void);
Suite	*make_handshake_suite(void);
Suite	*make_liveness_suite(void);
Suite	*make_protocol_suite(void);
Suite	*make_daemon_suite(void);
Suite	*make_family_suite(void);
Suite	*make_example_suite(void);
Suite	*make_parity_suite(void);
Suite	*make_policy_suite(void);
Suite	*make_ctl_suite(void);
Suite	*make_hostile_suite(void);
Suite	*make_audit_suite(void);
Suite	*make_integrity_suite(void);
/* The test binary exec'd by a client keeping its session's fds. */
int	exec_relay_main(const char *sock);
Suite	*make_verifier_suite(void);
Suite	*make_survival_suite(void);
Suite	*make_upgrade_suite(void);

/* The test binary run as a refused client of the broker at sock. */
int	audit_client_main(const char *sock);

#endif
