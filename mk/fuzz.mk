# SPDX-License-Identifier: ISC
# fuzz.mk - the fuzzers (tests/fuzz/), included by the Makefile.
#
#   make fuzz                  replay each fuzzer's regressions, then run it
#                              for FUZZ_SECONDS (60) on a copy of its corpus
#   make fuzz FUZZERS=fuzz_policy FUZZ_SECONDS=300
#   make fuzz-build            the binaries alone, in $(B)/fuzz/
#   make fuzz-seeds            write the generated seeds into tests/fuzz/corpus/
#
# libFuzzer with AddressSanitizer and UndefinedBehaviorSanitizer (clang). The
# project's sources are compiled again, instrumented, into $(B)/fuzz/obj/:
# the fuzzers run the broker's own code, not a copy. Crashes, leaks and
# timeouts fail the run; their inputs are kept in $(B)/fuzz/artifacts/.
# New inputs a run finds stay in its temporary directory: the corpus in the
# tree changes only by hand.

FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZERS ?= fuzz_wire fuzz_policy fuzz_session fuzz_state
FUZZ_SAN := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
# _FORTIFY_SOURCE's checked calls would hide accesses from ASan; libseccomp's
# SCMP_A* macros leave a field to its default, which clang warns about.
FUZZ_CFLAGS := $(filter-out -D_FORTIFY_SOURCE=%,$(ALL_CFLAGS)) $(FUZZ_SAN) \
	-fno-omit-frame-pointer -Wno-missing-field-initializers -Itests/fuzz
FUZZ_DIR := $(B)/fuzz

# What each fuzzer links besides its own source.
FUZZ_BROKER_SRCS := $(filter-out broker/main.c,$(BROKER_SRCS))
FUZZ_BROKER_OBJS := $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(FUZZ_BROKER_SRCS)) \
	$(FUZZ_DIR)/obj/proto/uffd_broker.pb-c.o \
	$(FUZZ_DIR)/obj/proto/uffd_broker_state.pb-c.o
fuzz_wire_OBJS := $(FUZZ_BROKER_OBJS)
fuzz_session_OBJS := $(FUZZ_BROKER_OBJS)
fuzz_policy_OBJS := $(FUZZ_DIR)/obj/broker/policy.o $(FUZZ_DIR)/obj/broker/sha256.o \
	$(FUZZ_DIR)/obj/broker/invariant.o
fuzz_state_OBJS := $(FUZZ_BROKER_OBJS)
# -max_len: a datagram is at most WIRE_MAX_DATAGRAM (1024) bytes.
fuzz_wire_MAXLEN := 1026
fuzz_session_MAXLEN := 4096
fuzz_policy_MAXLEN := 8192
fuzz_state_MAXLEN := 8192

FUZZ_BINS := $(patsubst %,$(FUZZ_DIR)/%,$(FUZZERS))

.PHONY: fuzz-build fuzz-seeds

$(FUZZ_DIR)/obj/%.o: %.c $(GEN_HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c -o $@ $<
$(FUZZ_DIR)/obj/proto/%.pb-c.o: $(B)/proto/%.pb-c.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(filter-out -Wcast-align -Wmissing-prototypes,$(FUZZ_CFLAGS)) -MMD -MP -c -o $@ $<

define fuzzer_rule
$(FUZZ_DIR)/$(1): $(FUZZ_DIR)/obj/tests/fuzz/$(1).o $$($(1)_OBJS)
	$$(FUZZ_CC) $$(FUZZ_SAN) -o $$@ $$^ $$(BROKER_LIBS)
endef
$(foreach f,fuzz_wire fuzz_policy fuzz_session fuzz_state,$(eval $(call fuzzer_rule,$(f))))

# The seed generator: plain, no fuzzing runtime.
$(FUZZ_DIR)/gen-seeds: tests/fuzz/gen_seeds.c $(B)/pie/proto/uffd_broker.pb-c.o \
	$(B)/pie/proto/uffd_broker_state.pb-c.o $(GEN_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/fuzz -o $@ tests/fuzz/gen_seeds.c \
		$(B)/pie/proto/uffd_broker.pb-c.o \
		$(B)/pie/proto/uffd_broker_state.pb-c.o -lprotobuf-c

fuzz-build: $(FUZZ_BINS)

fuzz-seeds: $(FUZZ_DIR)/gen-seeds
	$(FUZZ_DIR)/gen-seeds tests/fuzz/corpus

fuzz: $(FUZZ_BINS)
	@FUZZ_MAXLEN_fuzz_wire=$(fuzz_wire_MAXLEN) \
	FUZZ_MAXLEN_fuzz_session=$(fuzz_session_MAXLEN) \
	FUZZ_MAXLEN_fuzz_policy=$(fuzz_policy_MAXLEN) \
	FUZZ_MAXLEN_fuzz_state=$(fuzz_state_MAXLEN) \
	sh mk/fuzz-run.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZERS)
