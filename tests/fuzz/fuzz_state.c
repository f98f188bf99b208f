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
 *
 * First byte with bit 1 set: a journal (state_view_open(), a restart's
 * read). The rest is messages, each a 16-bit length and its bytes, framed
 * right: the first the whole state, the others entries over it. In what
 * the journal and the state merge to, each record is there once, in id
 * order; none the entries said went; every account is named by a record;
 * and everything the adoption reads is there.
 * (Not a property: that a decoded state packs to bytes that decode again.
 * protobuf-c merges a message field given twice, and the merge can pack to
 * bytes it then refuses; the broker never packs what it decoded.)
 */
#include <stdbool.h>
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

/* The view a restart adopts: each record once, none gone, accounts named. */
static void
check_view(const struct state_view *v)
{
	const BrokerState *st = &v->view;
	size_t i, j, p;
	bool named;

	CHECK(v->entries + 1 == v->nparts);
	for (i = 1; i < st->n_sessions; i++)
		CHECK(st->sessions[i - 1]->id < st->sessions[i]->id);
	for (i = 1; i < st->n_listeners; i++)
		CHECK(st->listeners[i - 1]->id < st->listeners[i]->id);
	for (i = 1; i < st->n_spent; i++)
		CHECK(st->spent[i - 1]->id < st->spent[i]->id);
	for (i = 1; i < st->n_accounts; i++)
		CHECK(st->accounts[i - 1]->mm_id < st->accounts[i]->mm_id);
	for (p = 1; p < v->nparts; p++) {
		for (j = 0; j < v->parts[p]->n_gone_sessions; j++)
			for (i = 0; i < st->n_sessions; i++)
				CHECK(st->sessions[i]->id !=
				    v->parts[p]->gone_sessions[j]);
		for (j = 0; j < v->parts[p]->n_gone_spent; j++)
			for (i = 0; i < st->n_spent; i++)
				CHECK(st->spent[i]->id != v->parts[p]->gone_spent[j]);
	}
	for (i = 0; i < st->n_accounts; i++) {
		named = false;
		for (j = 0; j < st->n_sessions; j++)
			named |= st->sessions[j]->account == st->accounts[i]->mm_id;
		for (j = 0; j < st->n_spent; j++)
			named |= st->spent[j]->account == st->accounts[i]->mm_id;
		CHECK(named);
	}
	walk(st);
}

static void
journal_input(const uint8_t *data, size_t size)
{
	uint8_t *journal = NULL, *f, *grown;
	size_t off = 0, len, flen, jlen = 0;
	BrokerState *base = NULL;
	struct state_view v;
	char err[256];
	uint16_t n;

	while (off + 2 <= size) {
		memcpy(&n, data + off, 2);
		off += 2;
		len = n < size - off ? n : size - off;
		if ((f = state_frame(data + off, len, 1, boot_id, &flen)) == NULL)
			break;
		off += len;
		if (base == NULL) {
			base = state_decode(f, flen, 0, boot_id, err, sizeof(err));
			free(f);
			if (base == NULL)
				return;
			continue;
		}
		if ((grown = realloc(journal, jlen + flen)) == NULL) {
			free(f);
			break;
		}
		journal = grown;
		memcpy(journal + jlen, f, flen);
		jlen += flen;
		free(f);
	}
	if (base == NULL) {
		free(journal);
		return;
	}
	CHECK(state_view_open(&v, base, journal, jlen, boot_id) == 0);
	check_view(&v);
	state_view_close(&v);
	free(journal);
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
	if (data[0] & 2) {
		journal_input(data + 1, size - 1);
		return 0;
	}
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
