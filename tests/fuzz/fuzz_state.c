/* SPDX-License-Identifier: ISC */
/*
 * fuzz_state.c - libFuzzer target: state_decode() (broker/state.c), what a
 * broker reads from the state an upgrade hands it. The first byte chooses:
 * even, the rest is the whole state, header and all (nearly every input is
 * refused by the header's checks); odd, the rest is the message, framed
 * with a right header (this pid, this boot), so that the decoder and the
 * protobuf-c unpacking behind it see every input.
 *
 * Properties: a refusal says why; in a state that decodes, everything the
 * adoption (broker/upgrade.c) reads without a check is there: each
 * repeated field's elements, a session's grant and rule, a rule's name.
 * (Not a property: that a decoded state packs to bytes that decode again.
 * protobuf-c merges a message field given twice, and the merge can pack to
 * bytes it then refuses; the broker never packs what it decoded.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "state.h"

int	LLVMFuzzerInitialize(int *argc, char ***argv);
int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t boot_id[16];

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_state: %s:%d: property failed: %s\n", \
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	CHECK(state_boot_id(boot_id) == 0);
	return 0;
}

/* Read every field the adoption reads; ASan says if one is not there. */
static void
walk(const BrokerState *st)
{
	volatile uint64_t sum = 0;
	size_t i;

	for (i = 0; i < st->n_listeners; i++)
		sum += st->listeners[i]->id + (uint64_t)st->listeners[i]->fd;
	for (i = 0; i < st->n_accounts; i++)
		sum += st->accounts[i]->mm_id + (uint64_t)st->accounts[i]->tracker;
	for (i = 0; i < st->n_sessions; i++) {
		const UffdBroker__State__V1__Session *m = st->sessions[i];

		CHECK(m->grant != NULL && m->rule != NULL);
		sum += m->id + m->grant->features + strlen(m->rule);
		if (m->refusal != NULL)
			sum += strlen(m->refusal);
		if (m->last_refusal != NULL)
			sum += strlen(m->last_refusal);
	}
	for (i = 0; i < st->n_spent; i++)
		sum += st->spent[i]->id + (uint64_t)st->spent[i]->pidfd;
	for (i = 0; i < st->n_rules; i++) {
		CHECK(st->rules[i]->name != NULL);
		sum += strlen(st->rules[i]->name);
	}
	for (i = 0; i < st->n_backoff; i++)
		sum += st->backoff[i]->until_ms;
	if (st->has_filter_digest)
		CHECK(st->filter_digest.len == 0 || st->filter_digest.data != NULL);
	(void)sum;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *framed = NULL;
	const uint8_t *buf;
	size_t len;
	BrokerState *st;
	char err[256] = "";

	if (size < 1)
		return 0;
	if (data[0] & 1) {
		framed = state_frame(data + 1, size - 1, getpid(), boot_id, &len);
		if (framed == NULL)
			return 0;
		buf = framed;
	} else {
		buf = data + 1;
		len = size - 1;
	}
	st = state_decode(buf, len, getpid(), boot_id, err, sizeof(err));
	if (st == NULL) {
		CHECK(err[0] != '\0');
		free(framed);
		return 0;
	}
	walk(st);
	state_free(st);
	free(framed);
	return 0;
}
