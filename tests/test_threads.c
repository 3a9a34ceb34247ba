// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* One state from several threads: every call serialises on the state; nothing is lost or torn. */
#include <mmsb/mmsb.h>
#include <pthread.h>

#include "harness.h"

#define THREADS 4
#define ROUNDS 2000
#define PSZ 64

struct ctx {
	struct mmsb_state *s;
	uint64_t page;
	int idx;
};

static void *writer(void *arg)
{
	struct ctx *c = arg;
	uint8_t b[PSZ];

	for (int i = 1; i <= ROUNDS; i++) {
		/* every byte of a page carries the same value: a torn update would show */
		memset(b, (i + c->idx) & 0xff, PSZ);
		if (mmsb_page_update(c->s, c->page, b, PSZ) < 0)
			return (void *)1;
	}
	return NULL;
}

static void *reader(void *arg)
{
	struct ctx *c = arg;
	uint8_t b[PSZ];

	for (int i = 0; i < ROUNDS; i++) {
		uint64_t id = 1 + (uint64_t)(i % THREADS);

		if (mmsb_page_read(c->s, id, b, PSZ, 0) != PSZ)
			return (void *)1;
		for (int k = 1; k < PSZ; k++)
			if (b[k] != b[0])
				return (void *)2;
	}
	return NULL;
}

TEST_TIMEOUT(writers_and_readers_share_a_state, 120)
{
	MMSB_OPTS(mmsb_state_opts, o, .log_path = th_path("t.tlog"),
		  .durability = MMSB_DURABLE_NONE);
	struct mmsb_state *s = mmsb_state_open(&o);
	pthread_t w[THREADS], r[THREADS];
	struct ctx cw[THREADS], cr[THREADS];
	uint64_t id, sink;
	struct mmsb_divergence d;
	void *ret;

	ASSERT_TRUE(s);
	for (int i = 0; i < THREADS; i++)
		ASSERT_EQ(mmsb_page_create(s, PSZ, MMSB_LOC_CPU, &id), 0);
	/* a sink page that follows page 1: waves run concurrently with the writers */
	ASSERT_EQ(mmsb_page_create(s, PSZ, MMSB_LOC_CPU, &sink), 0);
	ASSERT_EQ(mmsb_edge_add(s, 1, sink, MMSB_EDGE_DATA), 0);
	ASSERT_EQ(mmsb_page_set_passthrough(s, sink, 1, NULL, NULL), 0);
	for (int i = 0; i < THREADS; i++) {
		cw[i] = (struct ctx){ s, (uint64_t)i + 1, i };
		cr[i] = (struct ctx){ s, 0, i };
		ASSERT_EQ(pthread_create(&w[i], NULL, writer, &cw[i]), 0);
		ASSERT_EQ(pthread_create(&r[i], NULL, reader, &cr[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		ASSERT_EQ(pthread_join(w[i], &ret), 0);
		ASSERT_TRUE(ret == NULL);
		ASSERT_EQ(pthread_join(r[i], &ret), 0);
		ASSERT_TRUE(ret == NULL);
	}
	for (uint64_t i = 1; i <= THREADS; i++)
		ASSERT_EQ(mmsb_page_epoch(s, i), ROUNDS);
	ASSERT_EQ(mmsb_page_epoch(s, sink), ROUNDS);
	/* the log holds every update from every thread, in an order that replays to the same state */
	ASSERT_EQ(mmsb_state_verify(s, &d), 0);
	mmsb_state_close(s);
}

TEST(distinct_states_in_parallel)
{
	pthread_t t[THREADS];
	struct ctx c[THREADS];
	void *ret;

	for (int i = 0; i < THREADS; i++) {
		c[i].s = mmsb_state_open(NULL);
		ASSERT_TRUE(c[i].s);
		ASSERT_EQ(mmsb_page_create(c[i].s, PSZ, MMSB_LOC_CPU, &c[i].page), 0);
		c[i].idx = i;
		ASSERT_EQ(pthread_create(&t[i], NULL, writer, &c[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		ASSERT_EQ(pthread_join(t[i], &ret), 0);
		ASSERT_TRUE(ret == NULL);
		ASSERT_EQ(mmsb_page_epoch(c[i].s, c[i].page), ROUNDS);
		mmsb_state_close(c[i].s);
	}
}
