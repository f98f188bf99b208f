# SPDX-License-Identifier: ISC
# uffd-broker - top-level Makefile.
#
#   make            build the broker, the client library and the demo
#   make check      install missing build dependencies (root, Debian), run tests
#   make mutants    the mutation check: each security check in tests/mutants.txt
#                   disabled in turn must make its tests fail (mk/mutants.sh)
#   make demo       install missing dependencies, then run the lazy-restore demo
#                   and the multi-process VMM swap example
#   make example    the VMM swap example alone (EXAMPLE_ARGS="--devices 4")
#   make install    install under $(DESTDIR)$(PREFIX); make uninstall
#   make deb, rpm   the packages (mk/build-deb.sh, mk/build-rpm.sh)
#   make clean
#
# The version is the file VERSION; the packages' changelogs must agree
# (mk/check-version.sh, run by make check).

VERSION := $(shell cat VERSION)

PREFIX	?= /usr/local
BINDIR	?= $(PREFIX)/bin
SBINDIR	?= $(PREFIX)/sbin
# Debian's multiarch directory where the compiler names one.
MULTIARCH := $(shell $(or $(CC),cc) -print-multiarch 2>/dev/null)
LIBDIR	?= $(PREFIX)/lib$(if $(MULTIARCH),/$(MULTIARCH))
LIBEXECDIR ?= $(PREFIX)/libexec
INCDIR	?= $(PREFIX)/include
PKGDIR	?= $(LIBDIR)/pkgconfig
# /etc for a system install, PREFIX/etc for any other.
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
DATADIR	?= $(PREFIX)/share
MANDIR	?= $(DATADIR)/man
DOCDIR	?= $(DATADIR)/doc/uffd-broker
# systemd's directories: under PREFIX/lib, as systemd.pc names them for /usr.
UNITDIR	?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d

CC	?= cc
LD	?= ld
OBJCOPY	?= objcopy
AR	?= ar
PROTOC_C ?= protoc-c
B	:= build

SOVERSION := 1
LIBVERSION := 1.0.0

# Warnings are errors: this code runs privileged and parses untrusted input.
WARNINGS := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wformat-security \
	-Wmissing-prototypes -Wstrict-prototypes -Wpointer-arith -Wvla \
	-Wcast-align -Wundef -Wno-unused-parameter
# Hardening, each for a reason:
#  _FORTIFY_SOURCE       bounds-checked libc string and memory calls
#  stack-protector-strong canaries against stack smashing
#  stack-clash-protection probes large stack frames page by page
#  cf-protection          CET shadow-stack and indirect-branch tracking where present
HARDENING := -fstack-protector-strong -fstack-clash-protection -fcf-protection
# (unless the packager's flags set their own level)
FORTIFY := $(if $(findstring _FORTIFY_SOURCE,$(CPPFLAGS) $(CFLAGS)),,-D_FORTIFY_SOURCE=2)
#  relro + now: the GOT is read-only once started; noexecstack: no executable stack
LDHARDENING := -Wl,-z,relro -Wl,-z,now -Wl,-z,noexecstack

CFLAGS	?= -O2 -g
# CPPFLAGS, CFLAGS and LDFLAGS are the packager's (dpkg-buildflags, rpm's
# optflags): each is passed on, and the compiler flags at link time too.
ALL_CFLAGS := -std=gnu11 -D_GNU_SOURCE $(WARNINGS) $(FORTIFY) $(HARDENING) \
	$(CPPFLAGS) $(CFLAGS) -Iproto -I$(B)/proto -I$(B)/gen -Iclient -Ibroker
ALL_LDFLAGS := $(HARDENING) $(CFLAGS) $(LDHARDENING) $(LDFLAGS)

PROTO_SRC := $(B)/proto/uffd_broker.pb-c.c
PROTO_HDR := $(B)/proto/uffd_broker.pb-c.h
# The broker's state, as one broker hands it to the next (never on the wire).
STATE_SRC := $(B)/proto/uffd_broker_state.pb-c.c
STATE_HDR := $(B)/proto/uffd_broker_state.pb-c.h
JAIL_RULES := $(B)/gen/jail-rules.h
BUILD_CONFIG := $(B)/gen/build-config.h
CLIENT_BPF := $(B)/gen/client-bpf.h
GEN_HDRS := $(PROTO_HDR) $(STATE_HDR) $(JAIL_RULES) $(BUILD_CONFIG) $(CLIENT_BPF)

CLIENT_SRCS := client/session.c client/uffd.c client/monitor.c client/jail.c proto/wire.c
# client/jail.c: the verifier looks for the fragment the library loads;
# client/jail-build.c: the fragment built from its rules (libseccomp), which
# the library does not link.
BROKER_SRCS := broker/main.c broker/broker.c broker/config.c broker/session.c \
	broker/supervise.c broker/handshake.c broker/grant.c broker/liveness.c broker/proc.c broker/log.c \
	broker/policy.c broker/access.c broker/jail.c broker/status.c \
	broker/closer.c broker/ratelimit.c broker/audit.c broker/verifier.c \
	broker/sdnotify.c broker/sha256.c broker/invariant.c \
	broker/state.c broker/upgrade.c broker/store.c broker/registry.c \
	client/jail.c client/jail-build.c proto/wire.c
TEST_SRCS := $(wildcard tests/*.c)

# The library: position-independent, every symbol hidden unless UFFDC_API.
LIB_OBJS := $(patsubst %.c,$(B)/pic/%.o,$(CLIENT_SRCS)) $(B)/pic/proto/uffd_broker.pb-c.o
BROKER_OBJS := $(patsubst %.c,$(B)/pie/%.o,$(BROKER_SRCS)) $(B)/pie/proto/uffd_broker.pb-c.o \
	$(B)/pie/proto/uffd_broker_state.pb-c.o
BROKER_LIB_OBJS := $(filter-out $(B)/pie/broker/main.o,$(BROKER_OBJS))
TEST_OBJS := $(patsubst %.c,$(B)/pie/%.o,$(TEST_SRCS))

LIB_SO := $(B)/libuffd-client.so.$(LIBVERSION)
LIB_A := $(B)/libuffd-client.a
LIB_INTERNAL := $(B)/internal/libuffd-client.a
BROKERD := $(B)/uffd-brokerd
DEMO := $(B)/uffd-restore-demo
VMM_SWAP := $(B)/uffd-vmm-swap
CTL := $(B)/uffd-brokerctl
TESTBIN := $(B)/check-uffd-broker
BENCH := $(B)/uffd-bench
LOAD := $(B)/uffd-load
# The broker with test hooks (SIGUSR1 makes a forbidden system call; a flag
# file kills it after a notification is received), for the tests of its
# jail and of a restart. Never installed.
BROKERD_HOOKS := $(B)/uffd-brokerd-hooks
# A stand-in for systemd's fd store and restarts, for the restart tests
# (tests/standin/fdstore.c). Never installed.
FDSTORE := $(B)/uffd-fdstore

# The broker built with AddressSanitizer, for the test that a clean stop
# frees all it allocated (LeakSanitizer at exit) and touches nothing freed.
# Never installed.
BROKERD_ASAN := $(B)/asan/uffd-brokerd
ASAN_FLAGS := -fsanitize=address -fno-omit-frame-pointer
# The broker with UndefinedBehaviorSanitizer in trap mode: undefined
# behaviour is an illegal instruction, with no runtime that would need
# system calls outside the jail, so it runs jailed. Built with clang, whose
# UBSan also checks the arguments libc declares nonnull (memmove(NULL, ...)),
# which GCC's does not. Never installed.
BROKERD_UBSAN := $(B)/ubsan/uffd-brokerd
UBSAN_CC ?= clang
# (libseccomp's SCMP_A* macros leave a field to its default: clang warns.)
UBSAN_FLAGS := -fsanitize=undefined -fsanitize-trap=undefined -Wno-missing-field-initializers

LIB_LIBS := -lprotobuf-c -lpthread
BROKER_LIBS := -lprotobuf-c -linih -lseccomp -lcap-ng -lpthread

.PHONY: all check check-journal test sanitize sanitize-run valgrind valgrind-run mutants \
	demo example install \
	install-files uninstall clean deps rpm bench load fuzz FORCE
all: $(BROKERD) $(CTL) $(LIB_SO) $(LIB_A) $(DEMO) $(VMM_SWAP)

# One protoc-c run makes both (a grouped target: not twice under -j).
$(PROTO_SRC) $(PROTO_HDR) &: proto/uffd_broker.proto
	@mkdir -p $(B)/proto
	$(PROTOC_C) --c_out=$(B)/proto -Iproto $<
$(STATE_SRC) $(STATE_HDR) &: proto/uffd_broker_state.proto
	@mkdir -p $(B)/proto
	$(PROTOC_C) --c_out=$(B)/proto -Iproto $<

# The version and the directories the binaries name, rewritten only when
# they change (so a changed SYSCONFDIR rebuilds what uses it).
$(BUILD_CONFIG): FORCE
	@mkdir -p $(dir $@)
	@printf '%s\n' '/* generated by the Makefile */' \
		'#define UFFD_BROKER_VERSION "$(VERSION)"' \
		'#define UFFD_BROKER_SYSCONFDIR "$(SYSCONFDIR)"' > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@
FORCE:

# The client's fragment compiled to BPF on the build machine (the library
# loads it without libseccomp; the broker's verifier looks for it).
$(B)/gen-client-bpf: mk/gen-client-bpf.c client/jail-build.c $(PROTO_HDR) $(JAIL_RULES) $(BUILD_CONFIG)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ mk/gen-client-bpf.c client/jail-build.c -lseccomp
$(CLIENT_BPF): $(B)/gen-client-bpf
	$(B)/gen-client-bpf > $@.tmp && mv $@.tmp $@

# The client's seccomp fragment is data (policy/); the library loads exactly it.
$(JAIL_RULES): policy/uffd-client.seccomp mk/gen-jail.awk
	@mkdir -p $(dir $@)
	awk -f mk/gen-jail.awk $< > $@.tmp && mv $@.tmp $@

$(B)/pic/%.o: %.c $(GEN_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fPIC -fvisibility=hidden -MMD -MP -c -o $@ $<
$(B)/pic/proto/uffd_broker.pb-c.o: $(PROTO_SRC)
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -Wcast-align -Wmissing-prototypes,$(ALL_CFLAGS)) -fPIC -fvisibility=hidden -MMD -MP -c -o $@ $<

$(B)/pie/%.o: %.c $(GEN_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fPIE -MMD -MP -c -o $@ $<
$(B)/pie/proto/%.pb-c.o: $(B)/proto/%.pb-c.c
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -Wcast-align -Wmissing-prototypes,$(ALL_CFLAGS)) -fPIE -MMD -MP -c -o $@ $<

$(LIB_SO): $(LIB_OBJS) client/libuffd-client.map
	$(CC) -shared -Wl,-soname,libuffd-client.so.$(SOVERSION) \
		-Wl,--version-script=client/libuffd-client.map $(ALL_LDFLAGS) \
		-o $@ $(LIB_OBJS) $(LIB_LIBS)
	ln -sf libuffd-client.so.$(LIBVERSION) $(B)/libuffd-client.so.$(SOVERSION)
	ln -sf libuffd-client.so.$(SOVERSION) $(B)/libuffd-client.so

# The installed archive exports the API alone, as the shared library does:
# its objects are linked into one, and every hidden symbol made local, so a
# program may have its own client_connect or protobuf descriptors.
# The tests and uffd-brokerctl link the internal archive instead.
$(LIB_A): $(LIB_OBJS)
	rm -f $@ $(B)/libuffd-client.o
	$(LD) -r -o $(B)/libuffd-client.o $^
	$(OBJCOPY) --localize-hidden $(B)/libuffd-client.o
	$(AR) rcs $@ $(B)/libuffd-client.o
$(LIB_INTERNAL): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	$(AR) rcs $@ $^

$(BROKERD): $(BROKER_OBJS)
	$(CC) -pie $(ALL_LDFLAGS) -o $@ $^ $(BROKER_LIBS)

$(FDSTORE): tests/standin/fdstore.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $<

HOOKED := broker/broker.o broker/supervise.o broker/grant.o broker/jail.o broker/store.o
$(B)/hooks/broker/%.o: broker/%.c $(GEN_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -DUFFD_BROKER_TEST_HOOKS -fPIE -MMD -MP -c -o $@ $<
$(BROKERD_HOOKS): $(filter-out $(addprefix $(B)/pie/,$(HOOKED)),$(BROKER_OBJS)) \
	$(addprefix $(B)/hooks/,$(HOOKED))
	$(CC) -pie $(ALL_LDFLAGS) -o $@ $^ $(BROKER_LIBS)

# A sanitized broker: $(call sanitized_broker,DIR,COMPILER,FLAGS)
define sanitized_broker
$(B)/$(1)/%.o: %.c $(GEN_HDRS)
	@mkdir -p $$(dir $$@)
	$(2) $$(ALL_CFLAGS) $(3) -fPIE -MMD -MP -c -o $$@ $$<
$(B)/$(1)/proto/%.pb-c.o: $(B)/proto/%.pb-c.c
	@mkdir -p $$(dir $$@)
	$(2) $$(filter-out -Wcast-align -Wmissing-prototypes,$$(ALL_CFLAGS)) $(3) -fPIE -MMD -MP -c -o $$@ $$<
$(B)/$(1)/uffd-brokerd: $(patsubst %.c,$(B)/$(1)/%.o,$(BROKER_SRCS)) $(B)/$(1)/proto/uffd_broker.pb-c.o \
	$(B)/$(1)/proto/uffd_broker_state.pb-c.o
	$(2) -pie $(3) $$(ALL_LDFLAGS) -o $$@ $$^ $$(BROKER_LIBS)
endef
$(eval $(call sanitized_broker,asan,$(CC),$(ASAN_FLAGS)))
$(eval $(call sanitized_broker,ubsan,$(UBSAN_CC),$(UBSAN_FLAGS)))

$(DEMO): $(B)/pie/demo/restore-demo.o $(LIB_SO)
	$(CC) -pie $(ALL_LDFLAGS) -o $@ $< -L$(B) -luffd-client \
		-Wl,-rpath,'$$ORIGIN' -lpthread

# The auditor's tool: the broker's policy and jail code, the client's fragment.
$(CTL): $(B)/pie/ctl/uffd-brokerctl.o $(BROKER_LIB_OBJS) $(LIB_INTERNAL)
	$(CC) -pie $(ALL_LDFLAGS) -o $@ $^ $(BROKER_LIBS) $(LIB_LIBS)

$(VMM_SWAP): $(B)/pie/demo/vmm-swap.o $(LIB_SO)
	$(CC) -pie $(ALL_LDFLAGS) -o $@ $< -L$(B) -luffd-client \
		-Wl,-rpath,'$$ORIGIN'

# The tests link the static library and the broker's objects, to reach the
# internals a misbehaving client or a unit test needs.
$(TESTBIN): $(TEST_OBJS) $(LIB_INTERNAL) $(BROKER_LIB_OBJS)
	$(CC) -pie $(ALL_LDFLAGS) -o $@ $(TEST_OBJS) $(BROKER_LIB_OBJS) $(LIB_INTERNAL) \
		$(LIB_LIBS) -lseccomp -linih -lcap-ng $$(pkg-config --libs check)

deps:
	@sh mk/ensure-deps.sh

check: deps
	@$(MAKE) --no-print-directory test

# The tests alone, with the build dependencies present (debian/rules).
test: all $(TESTBIN) $(BROKERD_HOOKS) $(BROKERD_ASAN) $(BROKERD_UBSAN) $(FDSTORE) $(BENCH) $(LOAD)
	sh mk/check-tree.sh $(B)
	UFFD_BUILD=$(B) $(TESTBIN)
	@# The benchmarks, briefly: they must run, whatever the figures.
	$(BENCH) --quick --json $(B)/bench-quick.json > $(B)/bench-quick.txt 2>&1 || \
		{ cat $(B)/bench-quick.txt; exit 1; }
	$(LOAD) --quick > $(B)/load-quick.txt 2>&1 || { cat $(B)/load-quick.txt; exit 1; }
	@tail -n 4 $(B)/load-quick.txt

# The whole suite against a build with AddressSanitizer and UBSan (clang):
# brokers jailed as always, clients, the library and the tests themselves
# instrumented. A report fails the test that caused it (the harness reads
# each broker's log before removing it; the tests' own reports are their
# exit status). Built in $(B)/san.
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer
sanitize: deps
	@$(MAKE) --no-print-directory B=$(B)/san CC=clang \
		CFLAGS="$(SAN_FLAGS)" LDFLAGS="$(SAN_FLAGS)" sanitize-run
sanitize-run: all $(TESTBIN) $(BROKERD_HOOKS) $(BROKERD_ASAN) $(BROKERD_UBSAN) $(FDSTORE)
	UFFD_BUILD=$(B) CK_TIMEOUT_MULTIPLIER=4 \
		ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:symbolize=0 \
		UBSAN_OPTIONS=print_stacktrace=1 $(TESTBIN)

# The whole suite with every broker it starts under valgrind's memcheck
# (the harness runs them under $UFFD_VALGRIND): any error (an invalid
# access, a branch on uninitialised bytes, uninitialised bytes sent on a
# socket) or a definite leak, in the broker, its closer or its verifier,
# fails the test, and the broker's log is kept in $(B)/valgrind-reports.
# uffd-brokerctl runs under valgrind too, as its tests run it. The build
# is the normal one (-O2) but for BROKER_UNDER_VALGRIND: a jail that lets
# valgrind's core work (broker/jail.c), longer verifier deadlines. The
# clients, the library and the tests run natively: valgrind 3.19 (Debian
# 12) has no seccomp(2), without which the library cannot install its
# listener. The whole suite, about 4 minutes. Built in $(B)/vg.
VALGRIND := valgrind -q --vgdb=no --suppressions=$(abspath tests/valgrind.supp) \
	--error-exitcode=99 --leak-check=full \
	--show-leak-kinds=definite --errors-for-leak-kinds=definite \
	--error-markers=valgrind-error-begin,valgrind-error-end --num-callers=30
valgrind: deps
	@$(MAKE) --no-print-directory B=$(B)/vg \
		CPPFLAGS="$(CPPFLAGS) -DBROKER_UNDER_VALGRIND" valgrind-run
valgrind-run: all $(TESTBIN) $(BROKERD_HOOKS) $(BROKERD_ASAN) $(BROKERD_UBSAN) $(FDSTORE)
	rm -rf $(B)/valgrind-reports
	mkdir -p $(B)/valgrind-reports
	UFFD_BUILD=$(B) UFFD_VALGRIND="$(VALGRIND)" \
		UFFD_VALGRIND_REPORTS=$(abspath $(B)/valgrind-reports) \
		CK_TIMEOUT_MULTIPLIER=4 $(TESTBIN)
	@# A report the suite kept is a failure, whatever the tests said.
	@if [ -n "$$(ls $(B)/valgrind-reports)" ]; then \
		echo "valgrind reported: $(B)/valgrind-reports" >&2; exit 1; fi

# The suites again with every broker's fd store on and its journal audited
# each loop turn (mk/check-journal.sh): a change not told to the registry
# fails the test whose broker it stops.
check-journal: deps
	@$(MAKE) --no-print-directory all $(TESTBIN) $(BROKERD_HOOKS) $(FDSTORE)
	@bash mk/check-journal.sh

# Each mutant is built in a copy of the tree (test binary and broker only)
# and tested with the suites the table names; two at a time.
mutants: deps
	@bash mk/mutants.sh

# Quiet: the build's command lines with V=1. One line ends it: the verdict.
demo: deps
	@$(MAKE) --no-print-directory $(if $(V),,-s) all
	@sh demo/run-demo.sh $(B) restore $(DEMO_ARGS) && \
	sh demo/run-demo.sh $(B) vmm-swap && \
	echo "demo: PASSED: restore and vmm-swap, each as nobody under the" \
	    "broker's least-grant policy" || \
	{ echo "demo: FAILED (see above)"; exit 1; }

example: deps
	@$(MAKE) --no-print-directory all
	sh demo/run-demo.sh $(B) vmm-swap $(EXAMPLE_ARGS)

# The benchmarks (tests/bench/): a real broker, clients as nobody; the table
# on stdout, the same figures in $(B)/bench.json (BENCH_ARGS="--quick").
# Fails when a benchmark breaks, not when a figure misses its goal. As root.
# (tests/tool.c: helpers they share with the suite.)
$(BENCH): $(B)/pie/tests/bench/bench.o $(B)/pie/tests/tool.o $(LIB_SO)
	$(CC) -pie $(ALL_LDFLAGS) -o $@ $(filter %.o,$^) -L$(B) -luffd-client \
		-Wl,-rpath,'$$ORIGIN' -lpthread -lm

bench: deps
	@$(MAKE) --no-print-directory $(BROKERD) $(DEMO) $(BENCH)
	$(BENCH) --json $(B)/bench.json $(BENCH_ARGS)

# The load test (tests/load/): N clients x M grant/release cycles with
# session churn against a real broker; fails when the broker's fds or RSS
# do not come back after the load, a grant fails, or the broker dies
# (LOAD_ARGS="--clients 64 --cycles 100000 --churn 1000"). As root.
$(LOAD): $(B)/pie/tests/load/load.o $(B)/pie/tests/tool.o $(LIB_SO)
	$(CC) -pie $(ALL_LDFLAGS) -o $@ $(filter %.o,$^) -L$(B) -luffd-client \
		-Wl,-rpath,'$$ORIGIN'

load: deps
	@$(MAKE) --no-print-directory $(BROKERD) $(LOAD)
	$(LOAD) $(LOAD_ARGS)

# Installed programs link the library from LIBDIR; the build's own copies
# find it beside them ($$ORIGIN), so that the tests and the demo run from
# the tree.
$(B)/inst/uffd-%: $(B)/pie/demo/%.o $(LIB_SO)
	@mkdir -p $(dir $@)
	$(CC) -pie $(ALL_LDFLAGS) -o $@ $< -L$(B) -luffd-client -lpthread
INST_DEMOS := $(B)/inst/uffd-restore-demo $(B)/inst/uffd-vmm-swap

UNITS := $(B)/packaging/uffd-brokerd.service packaging/uffd-brokerd.socket
$(B)/packaging/%: packaging/%.in FORCE
	@mkdir -p $(dir $@)
	@sed -e 's|@SBINDIR@|$(SBINDIR)|g;s|@SYSCONFDIR@|$(SYSCONFDIR)|g' $< > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@
$(B)/uffd-client.pc: client/uffd-client.pc.in FORCE
	@sed -e 's|@PREFIX@|$(PREFIX)|;s|@LIBDIR@|$(LIBDIR)|;s|@INCDIR@|$(INCDIR)|;s|@VERSION@|$(VERSION)|' $< > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@

include mk/man.mk

install-files: all $(INST_DEMOS) $(UNITS) $(B)/uffd-client.pc $(MAN_PAGES)

install: install-files
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR) \
		$(DESTDIR)$(PKGDIR) $(DESTDIR)$(LIBEXECDIR)/uffd-broker \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR) \
		$(DESTDIR)$(SYSCONFDIR)/uffd-broker $(DESTDIR)$(DATADIR)/uffd-broker \
		$(DESTDIR)$(DOCDIR) $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(MANDIR)/man8
	install -m 0755 $(BROKERD) $(CTL) $(DESTDIR)$(SBINDIR)/
	install -m 0755 $(INST_DEMOS) $(DESTDIR)$(LIBEXECDIR)/uffd-broker/
	install -m 0644 $(LIB_SO) $(DESTDIR)$(LIBDIR)/
	ln -sf libuffd-client.so.$(LIBVERSION) $(DESTDIR)$(LIBDIR)/libuffd-client.so.$(SOVERSION)
	ln -sf libuffd-client.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libuffd-client.so
	install -m 0644 $(LIB_A) $(DESTDIR)$(LIBDIR)/
	install -m 0644 client/uffd-client.h $(DESTDIR)$(INCDIR)/
	install -m 0644 $(B)/uffd-client.pc $(DESTDIR)$(PKGDIR)/
	install -m 0644 $(UNITS) $(DESTDIR)$(UNITDIR)/
	install -m 0644 packaging/uffd-broker.sysusers $(DESTDIR)$(SYSUSERSDIR)/uffd-broker.conf
	install -m 0644 packaging/uffd-broker.tmpfiles $(DESTDIR)$(TMPFILESDIR)/uffd-broker.conf
	# The example policy is a starting point a site edits: never overwrite
	# a site's file.
	[ -e $(DESTDIR)$(SYSCONFDIR)/uffd-broker/policy.conf ] || \
		install -m 0644 policy/policy.conf $(DESTDIR)$(SYSCONFDIR)/uffd-broker/policy.conf
	install -m 0644 policy/policy.conf policy/invariants.conf policy/uffd-client.seccomp \
		policy/uffd-client.minijail.policy $(DESTDIR)$(DATADIR)/uffd-broker/
	install -m 0644 README.md NEWS.md docs/design.md docs/security.md \
		docs/packaging.md $(DESTDIR)$(DOCDIR)/
	for m in $(MAN_PAGES); do \
		install -m 0644 $$m $(DESTDIR)$(MANDIR)/man$${m##*.}/; done

# Everything install wrote but the site's policy (a conffile: remove it
# by hand, as a package's purge would).
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/uffd-brokerd $(DESTDIR)$(SBINDIR)/uffd-brokerctl
	rm -rf $(DESTDIR)$(LIBEXECDIR)/uffd-broker $(DESTDIR)$(DATADIR)/uffd-broker \
		$(DESTDIR)$(DOCDIR)
	rm -f $(DESTDIR)$(LIBDIR)/libuffd-client.so.$(LIBVERSION) \
		$(DESTDIR)$(LIBDIR)/libuffd-client.so.$(SOVERSION) \
		$(DESTDIR)$(LIBDIR)/libuffd-client.so $(DESTDIR)$(LIBDIR)/libuffd-client.a \
		$(DESTDIR)$(INCDIR)/uffd-client.h $(DESTDIR)$(PKGDIR)/uffd-client.pc \
		$(DESTDIR)$(UNITDIR)/uffd-brokerd.service $(DESTDIR)$(UNITDIR)/uffd-brokerd.socket \
		$(DESTDIR)$(SYSUSERSDIR)/uffd-broker.conf $(DESTDIR)$(TMPFILESDIR)/uffd-broker.conf
	for m in $(notdir $(MAN_PAGES)); do \
		rm -f $(DESTDIR)$(MANDIR)/man$${m##*.}/$$m; done

# The binary RPMs, into $(B)/rpm (RPMBUILD_ARGS="--without check").
rpm:
	bash mk/build-rpm.sh $(B)/rpm $(RPMBUILD_ARGS)

clean:
	rm -rf $(B)

-include $(shell find $(B) -name '*.d' 2>/dev/null)
include mk/fuzz.mk
