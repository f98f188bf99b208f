/* SPDX-License-Identifier: ISC */
/*
 * broker.h - uffd-brokerd's state. Everything the daemon knows lives in one
 * struct broker and its list of sessions, so it can be walked (status, and
 * later serialised for re-exec).
 */
#ifndef UFFD_BROKER_H
#define UFFD_BROKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <time.h>

#include "invariant.h"
#include "policy.h"
#include "ratelimit.h"
#include "registry.h"
#include "wire.h"

/*
 * Linux 6.6: a listener in this mode wakes the notifying thread and the
 * supervisor synchronously (WF_SYNC), which keeps a round trip on one CPU.
 * Older kernels refuse the flag; the listener works as before.
 */
/*
 * A build with AddressSanitizer (make sanitize): its jail lets the runtime
 * work (jail.c), and the verifier's deadlines are longer (verifier.c).
 */
#if defined(__SANITIZE_ADDRESS__)
#define BROKER_SANITIZED	1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BROKER_SANITIZED	1
#endif
#endif
/*
 * BROKER_UNDER_VALGRIND (CPPFLAGS of make valgrind's build): a broker that
 * runs under valgrind's memcheck, whose jail lets valgrind's core work
 * (jail.c), with longer deadlines (verifier.c) and pidfd calls valgrind
 * 3.19 lacks made natively (proc.c). Never a normal build.
 */

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS		_IOW('!', 4, uint64_t)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP	(1UL << 0)
#endif

#define BROKER_MAX_UIDS		32	/* one rule's uid list: POLICY_MAX_ITEMS */
/* Uids whose log lines are limited each on its own; the others share one. */
#define BROKER_LOG_UIDS		128

/* Linux 6.16's per-socket switch for receiving SCM_RIGHTS (asm-generic). */
#ifndef SO_PASSRIGHTS
#define SO_PASSRIGHTS		83
#endif

/* How clients create uffds (docs/design.md §3). */
enum creation_mode {
	CREATION_AUTO,		/* the device if it opens, else userfaultfd(2) */
	CREATION_DEVICE,	/* the device, or fail at start-up */
	CREATION_SYSCALL,	/* userfaultfd(2), supervised, even if the device exists */
};

struct broker_config {
	const char	*socket_path;	/* NULL with socket activation */
	bool		socket_activated;
	const char	*policy_path;	/* NULL: a one-rule policy from the options */
	/* The site invariants; NULL: access_load() looks for the default. */
	const char	*invariants_path;
	/* The command-line rule: --allow-uid and the grant options. */
	uid_t		allow_uids[BROKER_MAX_UIDS];
	size_t		n_allow_uids;
	struct grant	cli_grant;
	bool		cli_rule;		/* any of those options given */
	unsigned int	max_sessions;
	unsigned int	probe_interval_ms;
	unsigned int	handshake_timeout_ms;
	bool		log_syslog;
	const char	*device_path;
	enum creation_mode creation;
	bool		jail;			/* the self-jail after start-up */
	const char	*user;			/* run as this user once jailed */
	/* Log lines about peers, per interval: per uid, per session. */
	unsigned int	log_burst;
	unsigned int	log_session_burst;
	unsigned int	log_interval_ms;
};

/* A session only moves forward through these states. */
enum session_state {
	SESSION_HELLO,		/* connected; waiting for Hello + listener */
	SESSION_VERIFY,		/* waiting for the verification ioctl */
	SESSION_PROBE_CREATE,	/* covered; waiting for the probe creation */
	SESSION_PROBE_ATTACH,	/* probe created; waiting for Probe + uffd */
	SESSION_READY,		/* serving creations */
	SESSION_DEAD,		/* fds closed; freed after this loop turn */
};

/* What an epoll event points at. */
enum watch_kind {
	WATCH_LISTEN, WATCH_TIMER, WATCH_SIGNAL,
	WATCH_SOCK, WATCH_PIDFD, WATCH_NOTIFY,
	WATCH_CLOSER, WATCH_CLOSER_EXIT,
	WATCH_VERIFIER,
	WATCH_UPGRADE,
};

struct session;
struct listener;

struct watch {
	enum watch_kind	kind;
	struct session	*s;		/* WATCH_SOCK, WATCH_PIDFD */
	struct listener	*l;		/* WATCH_NOTIFY */
};

/*
 * A client's seccomp listener. Processes forked from the client share its
 * filter, so their creations arrive here too: every session of that family
 * holds a reference, and each notification goes to the session of the
 * calling thread group. When the last session ends while processes remain
 * under the filter, the listener is kept for the handshake timeout (a forked
 * child may be about to join), then closed.
 */
struct listener {
	TAILQ_ENTRY(listener) entry;
	struct broker	*b;
	/* The sessions whose lis this is, so that finding a creation's session
	 * costs the family's size, not the broker's. */
	TAILQ_HEAD(, session) members;
	uint64_t	id;		/* the id of the session that brought it */
	uid_t		uid;		/* of that session: orphans count against it */
	int		fd;
	unsigned int	refs;
	unsigned int	max_orphans;	/* the owner's max_sessions_per_uid */
	bool		hung_up;	/* no process is left under the filter */
	unsigned int	misses;		/* reads that found nothing (supervise.c) */
	uint64_t	last_id;	/* of the last notification received */
	bool		has_last_id;
	struct timespec	first_miss;
	struct timespec	orphaned;	/* when refs fell to 0 */
	struct watch	w;
	bool		changed;	/* on the registry's change list */
	TAILQ_ENTRY(listener) changed_entry;
};

/*
 * What is left of a ready session that ended while its process or its
 * address space lives on. Its uffds are the address space's, not the
 * process's: they work as long as it does (a CLONE_VM child may hold them
 * after the process exited), so they count against its quota until the
 * probe says ESRCH. And the process gets no second session for its life
 * (its pidfd says when that ends): after exec it may hold uffds of its old
 * session in its new address space. Both count against the uid's sessions.
 */
/*
 * An address space's account of live uffds, shared (refcounted) by the
 * sessions and spent records of a process and its CLONE_VM children.
 * Granted uffds are added to the tracker and the broker's copies closed:
 * an epoll entry lives exactly as long as its file, so the entries left
 * are the live uffds, wherever they are held. Counting them means reading
 * the tracker's fdinfo, so a grant counts only when live_bound, which a
 * grant raises and only a count lowers, says the quota may be reached.
 */
struct account {
	struct broker	*b;
	uint64_t	mm_id;		/* the first session's id */
	unsigned int	refs;
	int		tracker;
	unsigned int	live_bound;	/* at least the tracker's entries */
	/*
	 * uffds initialised for it that its tracker never got (grant.c:
	 * attach_unseen()): counted live for the address space's life.
	 */
	unsigned int	unseen;
	unsigned int	pending;	/* its ready sessions' pending creations */
	unsigned int	walk;		/* account_walk_first() */
	bool		changed;	/* on the registry's change list */
	TAILQ_ENTRY(account) changed_entry;
};

/*
 * A walk over sessions and spent records that meets each account once:
 * account_walk_first(a, w) is true the first time a walk w meets a.
 */
unsigned int account_walk_begin(void);
bool	account_walk_first(struct account *a, unsigned int walk);

struct spent {
	TAILQ_ENTRY(spent) entry;
	struct broker	*b;
	uint64_t	id;		/* the session's */
	pid_t		pid;
	uid_t		uid;
	int		pidfd;		/* -1 once the process exited */
	/* -1 once the address space is gone (ESRCH on the probe) */
	int		probe_uffd;
	struct account	*acct;		/* NULL once the address space is gone */
	uint64_t	dummy_page;
	uint32_t	page_size;
	bool		changed;	/* on the registry's change list */
	TAILQ_ENTRY(spent) changed_entry;
};

/* A proof a session waits for (verifier.c). */
enum proof_job { PROOF_NONE, PROOF_FILTER, PROOF_PROBE };

struct session {
	TAILQ_ENTRY(session) entry;
	TAILQ_ENTRY(session) lis_entry;	/* on lis->members */
	struct broker	*b;
	uint64_t	id;
	enum session_state state;
	struct watch	w_sock, w_pidfd;

	int		sock;
	int		pidfd;
	struct listener	*lis;		/* the filter's listener; NULL until known */
	bool		forked;		/* joined through a forked ancestor's listener */
	int		probe_uffd;	/* registered on the dummy page */
	/* The address space's account: its tracker and quota (CLONE_VM
	 * children share it). */
	struct account	*acct;

	pid_t		pid;
	uid_t		uid;
	gid_t		gid;
	char		*refusal;	/* set: the peer is refused on connect */
	bool		fds_on;		/* SO_PASSRIGHTS: the peer may send fds */
	bool		paused;		/* not read until the closer has room */
	enum proof_job	proof;		/* not read until the verifier answers */
	bool		proof_queued;	/* on the verifier's queue */
	struct timespec	proof_since;	/* asked for */
	TAILQ_ENTRY(session) proof_entry;
	int		proof_fd;	/* Hello's listener, while its proof runs */
	uint32_t	watching;	/* the socket's epoll events now */
	unsigned int	unwanted_fds;	/* sent where none was due */
	const char	*doom;		/* ended after this datagram, for this */
	bool		quota_hit;	/* refused by a limit, not by the rules */
	struct grant	grant;		/* as admitted; a reload does not revoke it */
	struct rule	*rule;		/* that admitted or refused it, for counters;
					   NULL if none, or a reload dropped it */
	char		rule_name[POLICY_NAME_MAX];
	uint64_t	dummy_page;
	uint32_t	page_size;
	struct timespec	started;

	unsigned int	pending;	/* creations continued, not yet attached */
	uint64_t	continued_id;	/* the notification of the last one */
	/*
	 * The inode of the uffd an Attach initialises, written to the state
	 * before UFFDIO_API and cleared once it is tracked (grant.c): a
	 * broker killed in between leaves its successor the uffd to know it
	 * by, or to count unseen.
	 */
	uint64_t	attach_ino;
	struct timespec	last_continue;	/* pending ones expire after the timeout */
	uint64_t	granted;
	uint64_t	refused;
	char		*last_refusal;	/* of a creation, for StatusReply */
	/* Resumed by a restart: its first request may be one sent again, with
	 * the uffd of an Attach the killed broker took (grant.c). */
	bool		restarted;
	bool		has_req_seq;	/* the request being answered has a seq */
	bool		speaks_seq;	/* its requests are numbered: Restarted */
	uint64_t	req_seq;
	struct ratelimit log_rate;	/* its log lines (audit.c) */
	bool		changed;	/* on the registry's change list */
	TAILQ_ENTRY(session) changed_entry;
};

/* The closer process (closer.c). */
#define CLOSER_DEADLINE_MS	1000	/* without progress: replaced */
#define CLOSER_STALL_MS		200	/* in one close() while the list is full */
#define CLOSER_BATCH		32	/* fds per datagram to the closer */
#define CLOSER_INFLIGHT		64	/* batches sent, not yet acknowledged */
#define CLOSER_RING		(CLOSER_BATCH * CLOSER_INFLIGHT)
#define CLOSER_WAITING_MAX	512	/* fds kept back; then datagrams wait */

/* An fd to be closed, and whose it was: session 0 is the broker's own. */
struct discard {
	int		fd;
	uid_t		uid;
	uint64_t	session;
};

/* Whose an fd sent to the closer was: the one it is stuck on is blamed. */
struct owner {
	uid_t		uid;
	uint64_t	session;
};

/* A batch sent to the closer. */
struct batch {
	uint64_t	seq;
	size_t		nfds;
};

/*
 * A page the closer shares with the broker: the number of the fd whose
 * close(2) it is in, and of the last one it closed (fds are numbered from 1
 * in the order sent). Written by the closer only.
 */
struct closer_page {
	_Atomic uint64_t closing;
	_Atomic uint64_t closed;
};

struct closer {
	pid_t		pid;
	int		pidfd;		/* -1: no closer */
	int		sock;		/* our end of the socketpair */
	struct closer_page *page;	/* its own, mapped shared before fork */
	struct watch	w_sock, w_exit;
	uint64_t	sent, acked;	/* batch numbers */
	uint64_t	fds_sent;	/* the last fd's number */
	uint64_t	seen_closed;	/* page->closed as last seen */
	uint64_t	seen_closing;	/* page->closing as last seen */
	bool		go_pending;	/* the last batch's GO is not sent yet */
	struct timespec	progress;	/* last fd closed, or first send after idle */
	struct batch	inflight[CLOSER_INFLIGHT];
	size_t		ninflight;
	size_t		inflight_fds;	/* in those batches */
	struct owner	owners[CLOSER_RING];	/* of fd n: owners[n % RING] */
	bool		warned;		/* about a failed send, once a closer */
	struct discard	*waiting;	/* not yet sent */
	size_t		nwaiting, waiting_cap;
};

/* The filter verifier process (verifier.c). */
#define VERIFIER_BACKOFF_UIDS	64
struct turn {
	uid_t		uid;
	uint64_t	at;		/* the count of proofs asked, when it was */
};
struct backoff {
	uid_t		uid;
	uint64_t	until;		/* broker_now_ms(); 0: unused */
};

struct verifier {
	pid_t		pid;
	int		sock;		/* -1: none (it did not start, or is gone) */
	uint32_t	seq;		/* of the last request */
	struct watch	w;		/* its answers and hang-up */
	TAILQ_HEAD(, session) queue;	/* proofs not asked yet */
	bool		busy;		/* request seq not answered yet */
	bool		late;		/* and refused: its answer is awaited */
	struct session	*asked;		/* whose it is; NULL if it ended */
	struct timespec	asked_at;
	/* uids' turns: the uid served longest ago (or never) goes next */
	struct turn	turns[VERIFIER_BACKOFF_UIDS];
	uint64_t	nturns;
	/* uids whose last proof ran out of time (verifier_admit()) */
	struct backoff	backoff[VERIFIER_BACKOFF_UIDS];
};

/*
 * An upgrade (upgrade.c): SIGUSR2 starts the new binary as a check, on a
 * copy of the state, while this broker serves on; once it says it would
 * resume everything, this broker execs it in its own place.
 */
enum upgrade_phase {
	UPGRADE_IDLE,
	UPGRADE_CHECKING,	/* the check runs */
	UPGRADE_READY,		/* it passed: exec once quiescent */
};

struct upgrade {
	char		**argv;		/* as this broker was started */
	char		self[4096];	/* its binary, by path */
	enum upgrade_phase phase;
	int		report;		/* the check's report pipe */
	int		pidfd;		/* the check's process */
	struct watch	w;
	char		said[512];	/* what the check reported */
	size_t		nsaid;
	struct timespec	since;		/* the phase began */
	unsigned int	count;		/* upgrades this broker came through */
	unsigned int	failed;		/* upgrades refused since start */
	char		*error;		/* why the last one was refused */
	bool		jailed;		/* filter_digest is the jail's */
	uint8_t		filter_digest[32];
	struct timespec	exec_at;	/* the exec began (or 0) */
	bool		resuming;	/* this image is an upgrade's */
};

/*
 * The service manager's file descriptor store (store.c): every fd the
 * broker must not lose is kept there under a name, and the state in two
 * memfds written in turn, so that a broker killed and started again takes
 * them back (docs/upgrade.md).
 */
#define STORE_NAME_MAX	32
struct store {
	bool		on;		/* $FDSTORE and $NOTIFY_SOCKET */
	bool		adopting;	/* fds coming back: stored already */
	int		state_fd[2];
	uint64_t	generation;	/* of the whole state last written */
	/*
	 * The journal: what changed since that state, entry by entry. Once
	 * it outgrows the state, the state is written whole again.
	 */
	int		journal_fd;
	uint64_t	journal_seq;	/* of its last entry; 0: empty */
	size_t		journal_len;
	size_t		whole_len;	/* of the whole state last written */
	uint64_t	wholes, entries;	/* written so far */
	ino_t		listen_ino;	/* the listening socket's (state.c) */
	bool		journal_at_end;	/* its file offset is journal_len */
	unsigned int	puts, drops;	/* sent to the store */
	bool		failed;		/* a write or a send failed: said once */
};

/* How the last SIGHUP reload went. */
enum reload_result { RELOAD_NONE, RELOAD_OK, RELOAD_FAILED };

struct broker {
	struct broker_config cfg;
	struct policy	*policy;
	struct invariants *invariants;	/* NULL: none */
	/* The policy's summary (status.c), made when first asked for. */
	char		*summary;
	enum reload_result reload;
	struct timespec	reload_at;	/* CLOCK_REALTIME */
	char		*reload_error;	/* the first error of a failed one */
	int		epfd;
	int		listen_fd;
	int		lock_fd;	/* PATH.lock, flock'd for the broker's life */
	dev_t		sock_dev;	/* the socket file it bound, to unlink */
	ino_t		sock_ino;	/* only that one at exit */
	int		devfd;		/* -1 when creation is by userfaultfd(2) */
	bool		via_syscall;
	int		timerfd;
	uint64_t	ticks;		/* liveness ticks so far */
	int		sigfd;
	struct watch	w_listen, w_timer, w_signal;
	/* Sessions, listeners, spent records, ids: what it owns (registry.h). */
	struct registry	reg;
	bool		stopping;
	bool		accept_paused;	/* out of fds: listen socket unwatched */
	unsigned int	npaused;	/* sessions not read: no room for fds */
	bool		passrights;	/* the kernel has SO_PASSRIGHTS */
	size_t		nofile;		/* RLIMIT_NOFILE */
	struct closer	closer;
	uint64_t	closer_replaced;
	struct verifier	verifier;
	struct upgrade	upgrade;
	struct store	store;
	/* Log lines about peers, by uid: a fixed table, as any user may connect. */
	struct uid_rate	log_uids[BROKER_LOG_UIDS];
	struct uid_rate	log_others;	/* uids that found no entry free */
};

/* session.c */
struct session *session_new(struct broker *b, int sock);
void	session_kill(struct session *s, const char *why);
void	session_reap(struct broker *b);
void	session_readable(struct session *s);
/* Read the sessions paused for want of room on the closer's list again. */
void	session_resume_all(struct broker *b);
/* Watch the socket for datagrams unless the session waits (room, proof). */
void	session_watch_sync(struct session *s);
void	session_hangup(struct session *s);
/* By userfaultfd(2), without the device fd (user-mode grants, no device). */
bool	session_via_syscall(const struct session *s);
/* Let the peer send fds exactly while one is due (SO_PASSRIGHTS). */
void	session_sync_fds(struct session *s);
/* An adopted session (upgrade.c): its fd switch and watch set again. */
void	session_resync(struct session *s);
/* Live uffds of the session, or a negative errno if they cannot be counted. */
int	session_live_uffds(const struct session *s);
const char *session_state_name(enum session_state state);
/* Move the state forward (fatal otherwise), and the fd switch with it. */
void	session_advance(struct session *s, enum session_state to);
/* Sessions of a uid: admitted ones, or refused ones waiting for a request. */
unsigned int session_count_uid(const struct broker *b, uid_t uid, bool refused);
bool	session_pid_spent(struct broker *b, pid_t pid);
unsigned int session_spent_of_uid(struct broker *b, uid_t uid);
void	session_spent_prune(struct broker *b, bool all);
struct account *account_new(struct broker *b, uint64_t mm_id);	/* or NULL */
void	account_unref(struct account *a);
/* Count the address space's live uffds exactly (and tighten live_bound). */
int	account_count(struct account *a);
/* Move a ready session's pending creations, and its account's with them. */
void	session_set_pending(struct session *s, unsigned int pending);
/* A new probe joins the address space of a session it shares (CLONE_VM). */
void	session_join_address_space(struct session *s);
int	session_reply(struct session *s, WireStatus status,
	    WireReply *body, const char *fmt, ...)
	    __attribute__((format(printf, 4, 5)));
/*
 * Decode and act on one datagram of a session: it replies, and may read
 * /proc, run ioctls and end the session. fd is owned by the callee.
 */
void	session_handle_datagram(struct session *s, const uint8_t *buf,
	    size_t len, int fd, int recv_flags);

/* What session_request_check() makes of a datagram. */
enum request_verdict {
	REQUEST_REFUSED,	/* the peer is refused: its refusal, and the end */
	REQUEST_BAD,		/* answered with status and why, nothing more */
	REQUEST_ADMIN,		/* AdminStatus, if the peer is an administrator */
	REQUEST_OK,		/* the request table's handler acts on it */
};

struct request_type;

struct request_check {
	WireRequest	*req;		/* if it decoded: the caller frees it */
	const struct request_type *rt;	/* OK: its row of the request table */
	WireStatus	status;		/* BAD: the reply's status */
	char		why[128];	/* BAD: the reply's reason */
};

/*
 * The decoding and validation session_handle_datagram() does before it acts:
 * a function of the session's state, whether the peer is refused, the bytes,
 * wire_recv()'s flags and the fd's kind (its /proc/self/fd link, "" if
 * unreadable, NULL for none). Pure: it sends, reads and closes nothing
 * (tests/fuzz/fuzz_wire.c drives it).
 */
enum request_verdict session_request_check(enum session_state state,
	    bool refused, const uint8_t *buf, size_t len, int recv_flags,
	    const char *fd_kind, struct request_check *out);

/* grant.c: an Attach's uffd written down and never tracked: counted for
 * the address space's life (the session ends, or its creation expires). */
void	attach_unseen(struct session *s);

/* access.c */
int	access_load(struct broker *b);
void	access_admit(struct session *s);
void	access_reload(struct broker *b);
bool	access_is_admin(const struct session *s);
void	access_count_refusal(struct session *s);

/* audit.c: a line about a peer, unless over its limits; summaries. */
void	audit_session(struct session *s, const char *event, const char *fmt,
	    ...) __attribute__((format(printf, 3, 4)));
void	audit_uid(struct broker *b, uid_t uid, const char *event,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Summaries whose interval is over (all: every one, at shut-down). */
void	audit_flush(struct broker *b, bool all);

/* status.c */
void	status_admin(struct session *s, const UffdBroker__V1__AdminStatus *as);
/* The policy changed, or a reload failed: the summary is made again. */
void	status_policy_changed(struct broker *b);

/* supervise.c */
void	supervise_notification(struct listener *l);
struct listener *listener_new(struct broker *b, int fd, uint64_t id,
	    uid_t uid, unsigned int max_orphans);
void	listener_unref(struct listener *l);
void	listener_reap(struct broker *b);
void	listener_close(struct listener *l);
/* Is this fd's file one of the live listeners? (true if it cannot tell) */
bool	listener_in_use(struct broker *b, int fd);
void	listener_hangup(struct listener *l, const char *why);

/* liveness.c */
bool	liveness_probe(struct session *s, const char **why);
/* UFFDIO_ZEROPAGE on a probe: 0 (alive), -ESRCH (gone) or another -errno. */
int	liveness_zeropage(int probe_uffd, uint64_t page, uint32_t page_size);
/*
 * The probe interval is cut into this many ticks, each probing the sessions
 * of its slice (by id), so that a sweep of many sessions never stalls the
 * loop for long; exits are seen at once anyway (the pidfd). (The closer
 * once made this unsafe: more turns sent it smaller batches, a storm filled
 * its list, and a full list replaced it and blamed an innocent session. It
 * now batches any sessions' fds and is replaced only when stuck.)
 */
#define LIVENESS_SLICES	10
/* The timer fired ticks times since last read. */
void	liveness_tick(struct broker *b, uint64_t ticks);

/* closer.c */
/* must: fatal on failure; otherwise logged (forked again when needed) */
void	closer_start(struct broker *b, bool must);
void	closer_stop(struct broker *b);
/* Hand fd to the closer, on behalf of a session (0: the broker itself). */
void	closer_discard(struct broker *b, int fd, uid_t uid, uint64_t session);
/* Room on the waiting list for one more datagram's fds. */
bool	closer_has_room(const struct broker *b);
void	closer_flush(struct broker *b);		/* send what waits */
void	closer_readable(struct broker *b);	/* acknowledgements */
/* ms until the closer's deadline, or -1: for epoll_wait. */
int	closer_timeout_ms(struct broker *b);
bool	closer_check(struct broker *b, struct owner *blame, bool exited);

/* jail.c */
void	broker_jail(struct broker *b);		/* fatal on failure */
/*
 * After an upgrade's exec: the old image's jail holds (its filter, its
 * capabilities as execve(2) left them); its filter is stacked again only
 * if this binary's differs. Fatal on failure.
 */
void	jail_resume(struct broker *b);
void	*broker_jail_filter(void);		/* scmp_filter_ctx, for dumps */
/* --user's "NAME", "UID" or "UID:GID" as ids. Returns 0 or -1. */
int	jail_user(const char *spec, uid_t *uid, gid_t *gid);

/* store.c: the file descriptor store, when the service manager keeps one. */
void	store_init(struct broker *b);		/* before broker_jail() */
void	store_publish(struct broker *b);	/* the state, in the store */
/* Keep fd under "<kind><id><suffix>" ("s12.sock"); forget it. */
void	store_put(struct broker *b, char kind, uint64_t id, const char *suffix,
	    int fd);
void	store_drop(struct broker *b, char kind, uint64_t id, const char *suffix);
void	store_name(char *buf, size_t len, char kind, uint64_t id,
	    const char *suffix);
/* Write what changed (before a reply, an answer, a turn's end). */
void	store_sync(struct broker *b);
void	store_sync_send(struct broker *b);	/* before each send */
/* A broker started with the store's fds: are there any (LISTEN_FDNAMES)? */
bool	store_restarting(void);
/* Take them back: the sessions, after broker_setup() and the verifier. */
void	store_restart(struct broker *b);
/* The fds passed by $LISTEN_FDS, by name: their number; take one. */
size_t	store_take_passed(void);
int	store_take(const char *name);
int	store_take_first(bool (*ok)(int fd, const char *name));
void	store_forget_fd(struct broker *b, int fd);	/* closed by a restart */

/* upgrade.c: re-exec in place, handing over every session. */
void	upgrade_init(struct broker *b, char **argv);
void	upgrade_request(struct broker *b);	/* SIGUSR2 */
void	upgrade_readable(struct broker *b);	/* the check's report */
void	upgrade_continue(struct broker *b);	/* after each loop turn */
int	upgrade_timeout_ms(const struct broker *b);	/* -1: none due */
bool	upgrade_resuming(void);		/* this image is an upgrade's */
void	upgrade_resume(struct broker *b);	/* instead of broker_setup() */
struct UffdBroker__State__V1__State;
unsigned int upgrade_adopt_restart(struct broker *b,
	    struct UffdBroker__State__V1__State *st);

/* verifier.c */
void	verifier_start(struct broker *b);	/* before broker_jail() */
/* Does the session's grant need its filter and probe proven? */
bool	verifier_needed(const struct session *s);
/*
 * Ask for a proof: at Hello (PROOF_FILTER), that every thread of the peer
 * carries the library's fragment; at the probe (PROOF_PROBE), that the
 * probe is bound to the peer's address space. The session waits; the
 * outcome goes to handshake_proven(), maybe before this returns.
 */
void	verifier_ask(struct session *s, enum proof_job job);
void	verifier_forget(struct session *s);	/* the session ends */
void	verifier_kick(struct broker *b);	/* ask what waits, if idle */
void	verifier_abi(uint8_t out[32]);		/* what an upgrade compares */
/* Answers (and, with hangup, the verifier's exit). */
void	verifier_readable(struct broker *b, bool hangup);
int	verifier_timeout_ms(const struct broker *b);	/* -1: none due */
void	verifier_check(struct broker *b);	/* refuse a proof out of time */

/* proc.c */
pid_t	proc_tgid(pid_t tid);
int	proc_threads(pid_t pid);
bool	proc_has_cap(pid_t pid, int cap);	/* in its effective set */
/* The task is in the initial user namespace. */
bool	proc_init_userns(pid_t tid);
/*
 * Another process of its user may take its fds (not root's: a root peer
 * gives away nothing root could not take). Unreadable counts as dumpable.
 */
bool	proc_dumpable(pid_t pid);
/* The pidfd's process has not exited (so its pid was not reused). */
bool	proc_pidfd_alive(int pidfd);
/* pidfd_open(2); pidfd_send_signal(2) of SIGKILL. -1 and errno on failure. */
int	proc_pidfd_open(pid_t pid);
int	proc_pidfd_kill(int pidfd);
int	proc_sysctl_int(const char *path);	/* -1 if unreadable */
/* What /proc/self/fd/FD links to (its kind): buf, or "" if unreadable. */
const char *proc_fd_link(int fd, char *buf, size_t len);
/* UFFDIO_API on a uffd a client hands over; -EINVAL: it was not fresh. */
struct uffdio_api;
int	proc_uffd_api(int fd, uint64_t features, struct uffdio_api *api);
int	proc_epoll_count(int epfd);
/*
 * Does the epoll set watch fd's file? By its inode (each uffd has its own),
 * not by fd number, which epoll keys entries by: the number an entry was
 * added under may have been another process's (a killed broker's).
 */
bool	proc_epoll_has(int epfd, int fd);
/* The same by inode (and device; 0: any): a uffd written down by inode. */
bool	proc_epoll_has_ino(int epfd, uint64_t ino, uint64_t dev);
/* The value of the line "KEY\tvalue" of /proc/self/fdinfo/FD. */
bool	proc_fdinfo_field(int fd, const char *key, char *buf, size_t len);

/* broker.c */
void	broker_setup(struct broker *b);	/* fatal on failure */
/* Its parts, for a broker that adopts its fds (upgrade.c): the policy,
 * limits, SIGALRM and the epoll set; then the fixed fds watched. */
void	broker_setup_common(struct broker *b);
void	broker_setup_loop(struct broker *b);
void	broker_listen(struct broker *b);	/* fatal on failure */

/* sdnotify.c: the service manager's $NOTIFY_SOCKET, if any. */
void	sdnotify_init(void);			/* before broker_jail() */
int	sdnotify_socket(void);			/* -1: none */
int	sdnotify_fd(const char *msg, int fd);	/* with an fd: 0 or -errno */
void	sdnotify_adopt(int fd);			/* an upgrade's */
void	sdnotify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	sdnotify_reloading(void);
void	sdnotify_close(void);
void	broker_run(struct broker *b);	/* until SIGTERM or SIGINT */
#ifdef UFFD_BROKER_TEST_HOOKS
void	test_hook(struct broker *b, const char *point);
#define TEST_HOOK(b, point)	test_hook((b), (point))
#else
#define TEST_HOOK(b, point)	((void)0)
#endif
/*
 * One turn of broker_run()'s loop: the events ready within timeout_ms, then
 * the closer, and dead sessions and listeners freed (tests/fuzz drives it).
 */
void	broker_turn(struct broker *b, int timeout_ms);
int	broker_timeout_ms(struct broker *b);	/* for broker_turn() */
int	broker_watch(struct broker *b, int fd, struct watch *w, uint32_t events);
void	broker_unwatch(struct broker *b, int fd);
int	broker_rewatch(struct broker *b, int fd, struct watch *w, uint32_t events);
double	broker_elapsed_ms(const struct timespec *since);
uint64_t broker_now_ms(void);		/* CLOCK_MONOTONIC */

#endif
