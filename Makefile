# uffd-broker - top-level Makefile.
#
#   make            build the broker, the client library and the demo
#   make check      install missing build dependencies (root, Debian), run tests
#   make mutants    the mutation check: each security check in tests/mutants.txt
#                   disabled in turn must make its tests fail (mk/mutants.sh)
#   make demo       install missing dependencies, then run the lazy-restore demo
#                   and the multi-process VMM swap example
#   make example    the VMM swap example alone (EXAMPLE_ARGS="--devices 4")
#   make install    install under $(DESTDIR)$(PREFIX)
#   make clean

PREFIX	?= /usr/local
BINDIR	?= $(PREFIX)/bin
SBINDIR	?= $(PREFIX)/sbin
LIBDIR	?= $(PREFIX)/lib
INCDIR	?= $(PREFIX)/include
PKGDIR	?= $(LIBDIR)/pkgconfig
SYSCONFDIR ?= /etc
DATADIR	?= $(PREFIX)/share

CC	?= cc
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
HARDENING := -D_FORTIFY_SOURCE=2 -fstack-protector-strong \
	-fstack-clash-protection -fcf-protection
#  relro + now: the GOT is read-only once started; noexecstack: no executable stack
LDHARDENING := -Wl,-z,relro -Wl,-z,now -Wl,-z,noexecstack

CFLAGS	?= -O2 -g
ALL_CFLAGS := -std=gnu11 -D_GNU_SOURCE $(WARNINGS) $(HARDENING) $(CFLAGS) \
	-Iproto -I$(B)/proto -I$(B)/gen -Iclient -Ibroker
ALL_LDFLAGS := $(LDHARDENING) $(LDFLAGS)

PROTO_SRC := $(B)/proto/uffd_broker.pb-c.c
PROTO_HDR := $(B)/proto/uffd_broker.pb-c.h
JAIL_RULES := $(B)/gen/jail-rules.h

CLIENT_SRCS := client/session.c client/uffd.c client/monitor.c client/jail.c proto/wire.c
# client/jail.c: the verifier looks for the fragment the library's own code builds.
BROKER_SRCS := broker/main.c broker/broker.c broker/config.c broker/session.c \
	broker/supervise.c broker/handshake.c broker/grant.c broker/liveness.c broker/proc.c broker/log.c \
	broker/policy.c broker/access.c broker/jail.c broker/status.c \
	broker/closer.c broker/ratelimit.c broker/audit.c broker/verifier.c \
	client/jail.c proto/wire.c
TEST_SRCS := $(wildcard tests/*.c)

# The library: position-independent, every symbol hidden unless UFFDC_API.
LIB_OBJS := $(patsubst %.c,$(B)/pic/%.o,$(CLIENT_SRCS)) $(B)/pic/proto/uffd_broker.pb-c.o
BROKER_OBJS := $(patsubst %.c,$(B)/pie/%.o,$(BROKER_SRCS)) $(B)/pie/proto/uffd_broker.pb-c.o
BROKER_LIB_OBJS := $(filter-out $(B)/pie/broker/main.o,$(BROKER_OBJS))
TEST_OBJS := $(patsubst %.c,$(B)/pie/%.o,$(TEST_SRCS))

LIB_SO := $(B)/libuffd-client.so.$(LIBVERSION)
LIB_A := $(B)/libuffd-client.a
BROKERD := $(B)/uffd-brokerd
DEMO := $(B)/uffd-restore-demo
VMM_SWAP := $(B)/uffd-vmm-swap
CTL := $(B)/uffd-brokerctl
TESTBIN := $(B)/check-uffd-broker
# The broker with test hooks (SIGUSR2 makes a forbidden system call), for the
# test that its jail kills it. Never installed.
BROKERD_HOOKS := $(B)/uffd-brokerd-hooks

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

LIB_LIBS := -lseccomp -lprotobuf-c -lpthread
BROKER_LIBS := -lprotobuf-c -linih -lseccomp -lcap-ng -lpthread

.PHONY: all check mutants demo example install clean deps
all: $(BROKERD) $(CTL) $(LIB_SO) $(LIB_A) $(DEMO) $(VMM_SWAP)

$(PROTO_SRC) $(PROTO_HDR): proto/uffd_broker.proto
	@mkdir -p $(B)/proto
	$(PROTOC_C) --c_out=$(B)/proto -Iproto $<

# The client's seccomp fragment is data (policy/); the library loads exactly it.
$(JAIL_RULES): policy/uffd-client.seccomp mk/gen-jail.awk
	@mkdir -p $(dir $@)
	awk -f mk/gen-jail.awk $< > $@.tmp && mv $@.tmp $@

$(B)/pic/%.o: %.c $(PROTO_HDR) $(JAIL_RULES)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fPIC -fvisibility=hidden -MMD -MP -c -o $@ $<
$(B)/pic/proto/uffd_broker.pb-c.o: $(PROTO_SRC)
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -Wcast-align -Wmissing-prototypes,$(ALL_CFLAGS)) -fPIC -fvisibility=hidden -c -o $@ $<

$(B)/pie/%.o: %.c $(PROTO_HDR) $(JAIL_RULES)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fPIE -MMD -MP -c -o $@ $<
$(B)/pie/proto/uffd_broker.pb-c.o: $(PROTO_SRC)
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -Wcast-align -Wmissing-prototypes,$(ALL_CFLAGS)) -fPIE -c -o $@ $<

$(LIB_SO): $(LIB_OBJS) client/libuffd-client.map
	$(CC) -shared -Wl,-soname,libuffd-client.so.$(SOVERSION) \
		-Wl,--version-script=client/libuffd-client.map $(ALL_LDFLAGS) \
		-o $@ $(LIB_OBJS) $(LIB_LIBS)
	ln -sf libuffd-client.so.$(LIBVERSION) $(B)/libuffd-client.so.$(SOVERSION)
	ln -sf libuffd-client.so.$(SOVERSION) $(B)/libuffd-client.so

$(LIB_A): $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

$(BROKERD): $(BROKER_OBJS)
	$(CC) -pie $(ALL_LDFLAGS) -o $@ $^ $(BROKER_LIBS)

$(B)/hooks/broker/broker.o: broker/broker.c $(PROTO_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -DUFFD_BROKER_TEST_HOOKS -fPIE -MMD -MP -c -o $@ $<
$(BROKERD_HOOKS): $(filter-out $(B)/pie/broker/broker.o,$(BROKER_OBJS)) $(B)/hooks/broker/broker.o
	$(CC) -pie $(ALL_LDFLAGS) -o $@ $^ $(BROKER_LIBS)

# A sanitized broker: $(call sanitized_broker,DIR,COMPILER,FLAGS)
define sanitized_broker
$(B)/$(1)/%.o: %.c $(PROTO_HDR) $(JAIL_RULES)
	@mkdir -p $$(dir $$@)
	$(2) $$(ALL_CFLAGS) $(3) -fPIE -MMD -MP -c -o $$@ $$<
$(B)/$(1)/proto/uffd_broker.pb-c.o: $(PROTO_SRC)
	@mkdir -p $$(dir $$@)
	$(2) $$(filter-out -Wcast-align -Wmissing-prototypes,$$(ALL_CFLAGS)) $(3) -fPIE -c -o $$@ $$<
$(B)/$(1)/uffd-brokerd: $(patsubst %.c,$(B)/$(1)/%.o,$(BROKER_SRCS)) $(B)/$(1)/proto/uffd_broker.pb-c.o
	$(2) -pie $(3) $$(ALL_LDFLAGS) -o $$@ $$^ $$(BROKER_LIBS)
endef
$(eval $(call sanitized_broker,asan,$(CC),$(ASAN_FLAGS)))
$(eval $(call sanitized_broker,ubsan,$(UBSAN_CC),$(UBSAN_FLAGS)))

$(DEMO): $(B)/pie/demo/restore-demo.o $(LIB_SO)
	$(CC) -pie $(ALL_LDFLAGS) -o $@ $< -L$(B) -luffd-client \
		-Wl,-rpath,'$$ORIGIN' -lpthread

# The auditor's tool: the broker's policy and jail code, the client's fragment.
$(CTL): $(B)/pie/ctl/uffd-brokerctl.o $(BROKER_LIB_OBJS) $(LIB_A)
	$(CC) -pie $(ALL_LDFLAGS) -o $@ $^ $(BROKER_LIBS) $(LIB_LIBS)

$(VMM_SWAP): $(B)/pie/demo/vmm-swap.o $(LIB_SO)
	$(CC) -pie $(ALL_LDFLAGS) -o $@ $< -L$(B) -luffd-client \
		-Wl,-rpath,'$$ORIGIN'

# The tests link the static library and the broker's objects, to reach the
# internals a misbehaving client or a unit test needs.
$(TESTBIN): $(TEST_OBJS) $(LIB_A) $(BROKER_LIB_OBJS)
	$(CC) -pie $(ALL_LDFLAGS) -o $@ $(TEST_OBJS) $(BROKER_LIB_OBJS) $(LIB_A) \
		$(LIB_LIBS) -linih -lcap-ng $$(pkg-config --libs check)

deps:
	@sh mk/ensure-deps.sh

check: deps
	@$(MAKE) --no-print-directory all $(TESTBIN) $(BROKERD_HOOKS) $(BROKERD_ASAN) $(BROKERD_UBSAN)
	$(TESTBIN)

# Each mutant is built in a copy of the tree (test binary and broker only)
# and tested with the suites the table names; two at a time.
mutants: deps
	@bash mk/mutants.sh

demo: deps
	@$(MAKE) --no-print-directory all
	sh demo/run-demo.sh $(B) restore $(DEMO_ARGS)
	sh demo/run-demo.sh $(B) vmm-swap

example: deps
	@$(MAKE) --no-print-directory all
	sh demo/run-demo.sh $(B) vmm-swap $(EXAMPLE_ARGS)

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR) $(DESTDIR)$(PKGDIR)
	install -m 0755 $(BROKERD) $(DESTDIR)$(SBINDIR)/uffd-brokerd
	install -m 0755 $(CTL) $(DESTDIR)$(SBINDIR)/uffd-brokerctl
	install -m 0755 $(LIB_SO) $(DESTDIR)$(LIBDIR)/
	ln -sf libuffd-client.so.$(LIBVERSION) $(DESTDIR)$(LIBDIR)/libuffd-client.so.$(SOVERSION)
	ln -sf libuffd-client.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libuffd-client.so
	install -m 0644 $(LIB_A) $(DESTDIR)$(LIBDIR)/
	install -m 0644 client/uffd-client.h $(DESTDIR)$(INCDIR)/
	install -d $(DESTDIR)$(SYSCONFDIR)/uffd-broker $(DESTDIR)$(DATADIR)/uffd-broker
	# The example policy is a starting point a site edits: never overwrite
	# a site's file.
	[ -e $(DESTDIR)$(SYSCONFDIR)/uffd-broker/policy.conf ] || \
		install -m 0644 policy/policy.conf $(DESTDIR)$(SYSCONFDIR)/uffd-broker/policy.conf
	install -m 0644 policy/policy.conf policy/uffd-client.seccomp \
		policy/uffd-client.minijail.policy docs/security.md docs/design.md \
		$(DESTDIR)$(DATADIR)/uffd-broker/
	# Written here, so that it names the PREFIX of this install.
	sed -e 's|@PREFIX@|$(PREFIX)|;s|@LIBDIR@|$(LIBDIR)|;s|@INCDIR@|$(INCDIR)|;s|@VERSION@|$(LIBVERSION)|' \
		client/uffd-client.pc.in > $(DESTDIR)$(PKGDIR)/uffd-client.pc

clean:
	rm -rf $(B)

-include $(shell find $(B) -name '*.d' 2>/dev/null)
