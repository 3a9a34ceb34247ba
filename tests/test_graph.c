// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The typed graph and the propagation wave. */
#include <mmsb/mmsb.h>

#include "harness.h"

#define PSZ 8

/* A recompute that records its call order and writes (sum of data parents' byte 0) + 1. */
struct rec {
	uint64_t order[64];
	int n;
	int per_page[64];
};

static int sum_parents(struct mmsb_state *s, uint64_t id, uint8_t *out, size_t size, void *ctx)
{
	struct rec *r = ctx;
	struct mmsb_edge e[16];
	ssize_t n = mmsb_edge_parents(s, id, e, 16);
	uint8_t v = 1, b;

	if (r->n < 64)
		r->order[r->n++] = id;
	r->per_page[id]++;
	for (ssize_t i = 0; i < n; i++) {
		if (e[i].type != MMSB_EDGE_DATA)
			continue;
		mmsb_page_read(s, e[i].page, &b, 1, 0);
		v = (uint8_t)(v + b);
	}
	memset(out, v, size);
	return 0;
}

static struct mmsb_state *graph_of(int pages, struct rec *r)
{
	struct mmsb_state *s = mmsb_state_open(NULL);
	uint64_t id;

	ASSERT_TRUE(s);
	for (int i = 1; i <= pages; i++) {
		ASSERT_EQ(mmsb_page_create(s, PSZ, MMSB_LOC_CPU, &id), 0);
		ASSERT_EQ(id, i);
		if (r)
			ASSERT_EQ(mmsb_page_set_recompute(s, id, sum_parents, r), 0);
	}
	return s;
}

static void poke(struct mmsb_state *s, uint64_t id, uint8_t v)
{
	uint8_t b[PSZ];

	memset(b, v, PSZ);
	ASSERT_GE(mmsb_page_update(s, id, b, PSZ), 0);
}

static uint8_t byte0(struct mmsb_state *s, uint64_t id)
{
	uint8_t b = 0xee;

	mmsb_page_read(s, id, &b, 1, 0);
	return b;
}

TEST(chain_propagates_in_order)
{
	struct rec r = { 0 };
	struct mmsb_state *s = graph_of(5, &r);

	for (uint64_t i = 1; i < 5; i++)
		ASSERT_EQ(mmsb_edge_add(s, i, i + 1, MMSB_EDGE_DATA), 0);
	poke(s, 1, 10);
	/* 2 = 10+1, 3 = 12, 4 = 13, 5 = 14 */
	ASSERT_EQ(r.n, 4);
	for (int i = 0; i < 4; i++)
		EXPECT_EQ(r.order[i], i + 2);
	EXPECT_EQ(byte0(s, 5), 14);
	EXPECT_EQ(mmsb_page_epoch(s, 5), 1);
	mmsb_state_close(s);
}

TEST(diamond_recomputes_each_page_once)
{
	struct rec r = { 0 };
	struct mmsb_state *s = graph_of(4, &r);

	/* A=1 -> B=2, A -> C=3, B -> D=4, C -> D */
	ASSERT_EQ(mmsb_edge_add(s, 1, 2, MMSB_EDGE_DATA), 0);
	ASSERT_EQ(mmsb_edge_add(s, 1, 3, MMSB_EDGE_DATA), 0);
	ASSERT_EQ(mmsb_edge_add(s, 2, 4, MMSB_EDGE_DATA), 0);
	ASSERT_EQ(mmsb_edge_add(s, 3, 4, MMSB_EDGE_DATA), 0);
	poke(s, 1, 5);
	EXPECT_EQ(r.per_page[2], 1);
	EXPECT_EQ(r.per_page[3], 1);
	/* the original recomputed D twice, once while C was stale */
	EXPECT_EQ(r.per_page[4], 1);
	ASSERT_EQ(r.n, 3);
	EXPECT_EQ(r.order[0], 2);
	EXPECT_EQ(r.order[1], 3);
	EXPECT_EQ(r.order[2], 4);
	/* D saw both B (6) and C (6) already recomputed */
	EXPECT_EQ(byte0(s, 4), 13);
	mmsb_state_close(s);
}

TEST(batch_to_several_parents_is_one_wave)
{
	struct rec r = { 0 };
	struct mmsb_state *s = graph_of(3, &r);
	uint8_t m[PSZ], p1[PSZ], p2[PSZ];
	struct mmsb_delta *d[2];
	struct mmsb_stats st;

	ASSERT_EQ(mmsb_page_set_recompute(s, 1, NULL, NULL), 0);
	ASSERT_EQ(mmsb_page_set_recompute(s, 2, NULL, NULL), 0);
	ASSERT_EQ(mmsb_edge_add(s, 1, 3, MMSB_EDGE_DATA), 0);
	ASSERT_EQ(mmsb_edge_add(s, 2, 3, MMSB_EDGE_DATA), 0);
	memset(m, 1, PSZ);
	memset(p1, 2, PSZ);
	memset(p2, 3, PSZ);
	d[0] = mmsb_delta_new(1, m, PSZ, p1, PSZ, 0);
	d[1] = mmsb_delta_new(2, m, PSZ, p2, PSZ, 0);
	ASSERT_EQ(mmsb_state_stats_reset(s), 0);
	ASSERT_EQ(mmsb_route_batch(s, d, 2), 0);
	/* the shared child is recomputed once, after both parents changed */
	EXPECT_EQ(r.per_page[3], 1);
	EXPECT_EQ(byte0(s, 3), 6);
	ASSERT_EQ(mmsb_state_stats(s, &st), 0);
	EXPECT_EQ(st.waves, 1);
	mmsb_delta_free(d[0]);
	mmsb_delta_free(d[1]);
	mmsb_state_close(s);
}

TEST(change_pruning_ends_the_wave)
{
	struct rec r = { 0 };
	struct mmsb_state *s = graph_of(3, &r);

	ASSERT_EQ(mmsb_edge_add(s, 1, 2, MMSB_EDGE_DATA), 0);
	ASSERT_EQ(mmsb_edge_add(s, 2, 3, MMSB_EDGE_DATA), 0);
	/* page 2 = (page 1 byte 0) + 1 and page 1 only changes past byte 0 */
	uint8_t b[PSZ] = { 0, 9, 9, 9, 9, 9, 9, 9 };

	ASSERT_EQ(mmsb_page_update(s, 1, b, PSZ), 1);
	EXPECT_EQ(r.per_page[2], 1);
	EXPECT_EQ(r.per_page[3], 1); /* 2 went 0 -> 1, so 3 runs */
	b[1] = 7;
	ASSERT_EQ(mmsb_page_update(s, 1, b, PSZ), 1);
	EXPECT_EQ(r.per_page[2], 2);
	/* 2 recomputed to the same bytes: 3 is not touched */
	EXPECT_EQ(r.per_page[3], 1);
	mmsb_state_close(s);
}

TEST(recompute_skipped_when_parent_epochs_unchanged)
{
	struct rec r = { 0 };
	struct mmsb_state *s = graph_of(2, &r);
	struct mmsb_stats st;
	uint64_t one = 1;

	ASSERT_EQ(mmsb_edge_add(s, 1, 2, MMSB_EDGE_DATA), 0);
	poke(s, 1, 3);
	EXPECT_EQ(r.per_page[2], 1);
	/* nothing changed page 1 since: a forced wave does not rerun page 2 */
	ASSERT_EQ(mmsb_propagate(s, &one, 1), 0);
	EXPECT_EQ(r.per_page[2], 1);
	ASSERT_EQ(mmsb_page_recompute(s, 2), 0);
	EXPECT_EQ(r.per_page[2], 1);
	ASSERT_EQ(mmsb_state_stats(s, &st), 0);
	EXPECT_EQ(st.recompute_skips, 2);
	mmsb_state_close(s);
}

TEST(edge_types_set_flags)
{
	struct mmsb_state *s = graph_of(5, NULL);

	ASSERT_EQ(mmsb_edge_add(s, 1, 2, MMSB_EDGE_CONTROL), 0);
	ASSERT_EQ(mmsb_edge_add(s, 1, 3, MMSB_EDGE_GPU), 0);
	ASSERT_EQ(mmsb_edge_add(s, 1, 4, MMSB_EDGE_COMPILER), 0);
	ASSERT_EQ(mmsb_edge_add(s, 1, 5, MMSB_EDGE_CONTROL), 0);
	ASSERT_EQ(mmsb_edge_add(s, 1, 5, MMSB_EDGE_COMPILER), 0);
	ASSERT_EQ(mmsb_edge_count(s), 5);
	poke(s, 1, 1);
	EXPECT_EQ(mmsb_page_flags(s, 2), MMSB_PAGE_STALE);
	EXPECT_EQ(mmsb_page_flags(s, 3), MMSB_PAGE_GPU_SYNC_PENDING);
	EXPECT_EQ(mmsb_page_flags(s, 4), MMSB_PAGE_IR_INVALID);
	EXPECT_EQ(mmsb_page_flags(s, 5), MMSB_PAGE_STALE | MMSB_PAGE_IR_INVALID);
	ASSERT_EQ(mmsb_page_clear_flags(s, 5, MMSB_PAGE_STALE), 0);
	EXPECT_EQ(mmsb_page_flags(s, 5), MMSB_PAGE_IR_INVALID);
	/* flags-only edges do not make pages data descendants */
	EXPECT_EQ(mmsb_page_epoch(s, 2), 0);
	mmsb_state_close(s);
}

TEST(cycle_rejected_graph_unchanged)
{
	struct mmsb_state *s = graph_of(3, NULL);
	struct mmsb_edge e[8];

	ASSERT_EQ(mmsb_edge_add(s, 1, 2, MMSB_EDGE_DATA), 0);
	ASSERT_EQ(mmsb_edge_add(s, 2, 3, MMSB_EDGE_DATA), 0);
	ASSERT_EQ(mmsb_edge_add(s, 3, 1, MMSB_EDGE_CONTROL), 0 - MMSB_ERR_CYCLE);
	ASSERT_EQ(mmsb_edge_add(s, 2, 2, MMSB_EDGE_DATA), -MMSB_ERR_CYCLE);
	/* an existing edge of another type between the pair survives the refusal */
	ASSERT_EQ(mmsb_edge_add(s, 2, 1, MMSB_EDGE_GPU), -MMSB_ERR_CYCLE);
	ASSERT_EQ(mmsb_edge_add(s, 1, 2, MMSB_EDGE_GPU), 0);
	ASSERT_EQ(mmsb_edge_add(s, 1, 2, MMSB_EDGE_GPU), 0); /* a duplicate is a no-op */
	ASSERT_EQ(mmsb_edge_count(s), 3);
	ASSERT_EQ(mmsb_edge_children(s, 1, e, 8), 2);
	EXPECT_EQ(e[0].page, 2);
	EXPECT_EQ(e[0].type, MMSB_EDGE_DATA);
	EXPECT_EQ(e[1].type, MMSB_EDGE_GPU);
	ASSERT_EQ(mmsb_edge_parents(s, 3, e, 8), 1);
	EXPECT_EQ(e[0].page, 2);
	ASSERT_EQ(mmsb_edge_remove(s, 1, 2, MMSB_EDGE_GPU), 0);
	ASSERT_EQ(mmsb_edge_remove(s, 1, 2, MMSB_EDGE_GPU), -MMSB_ERR_EDGE_NOT_FOUND);
	ASSERT_EQ(mmsb_edge_remove(s, 1, 2, MMSB_EDGE_ANY), 0);
	ASSERT_EQ(mmsb_edge_count(s), 1);
	ASSERT_EQ(mmsb_edge_add(s, 3, 1, MMSB_EDGE_DATA), 0); /* no longer a cycle */
	ASSERT_EQ(mmsb_edge_add(s, 1, 9, MMSB_EDGE_DATA), -MMSB_ERR_PAGE_NOT_FOUND);
	ASSERT_EQ(mmsb_edge_add(s, 1, 3, 9), -EINVAL);
	mmsb_state_close(s);
}

TEST(free_drops_edges)
{
	struct mmsb_state *s = graph_of(3, NULL);
	struct mmsb_edge e[4];

	ASSERT_EQ(mmsb_edge_add(s, 1, 2, MMSB_EDGE_DATA), 0);
	ASSERT_EQ(mmsb_edge_add(s, 2, 3, MMSB_EDGE_DATA), 0);
	ASSERT_EQ(mmsb_page_free(s, 2), 0);
	ASSERT_EQ(mmsb_edge_count(s), 0);
	ASSERT_EQ(mmsb_edge_children(s, 1, e, 4), 0);
	ASSERT_EQ(mmsb_edge_parents(s, 3, e, 4), 0);
	mmsb_state_close(s);
}

TEST(toposort_bfs_deterministic)
{
	uint64_t want[8], got[8], bfs[8];

	for (int run = 0; run < 3; run++) {
		struct mmsb_state *s = graph_of(7, NULL);

		/* added in a scrambled order each run: the answers may not depend on it */
		int edges[][2] = { { 5, 1 }, { 7, 2 }, { 1, 3 }, { 5, 3 }, { 2, 4 }, { 6, 4 } };

		for (int i = 0; i < 6; i++) {
			int k = (i + run * 2) % 6;

			ASSERT_EQ(mmsb_edge_add(s, edges[k][0], edges[k][1], MMSB_EDGE_DATA), 0);
		}
		ASSERT_EQ(mmsb_graph_toposort(s, got, 8), 7);
		if (!run)
			memcpy(want, got, sizeof(got));
		ASSERT_MEM_EQ(got, want, 7 * sizeof(uint64_t));
		ASSERT_EQ(mmsb_graph_bfs(s, 5, bfs, 8), 3);
		EXPECT_EQ(bfs[0], 5);
		EXPECT_EQ(bfs[1], 1);
		EXPECT_EQ(bfs[2], 3);
		mmsb_state_close(s);
	}
	/* smallest ready id first: 5 then 1 (now ready) then 3, 6, 7, 2, 4 */
	const uint64_t expect[] = { 5, 1, 3, 6, 7, 2, 4 };

	ASSERT_MEM_EQ(want, expect, sizeof(expect));
}

TEST(tarjan_on_deep_chain)
{
	struct mmsb_state *s = graph_of(0, NULL);
	struct mmsb_cycle_report rep;
	uint64_t id;

	/* deep enough that a recursive walk would be a risk; the iterative one is not */
	for (int i = 0; i < 100000; i++)
		ASSERT_EQ(mmsb_page_create(s, 1, MMSB_LOC_CPU, &id), 0);
	for (uint64_t i = 1; i < 100000; i++)
		ASSERT_EQ(mmsb_edge_add(s, i, i + 1, MMSB_EDGE_DATA), 0);
	ASSERT_EQ(mmsb_graph_validate(s, &rep), 0);
	EXPECT_FALSE(rep.has_cycle);
	EXPECT_EQ(rep.visited, 100000);
	free(rep.cycle);
	mmsb_state_close(s);
}

TEST(deferred_queues_until_run)
{
	struct rec r = { 0 };
	struct mmsb_state *s = graph_of(3, &r);

	ASSERT_EQ(mmsb_edge_add(s, 1, 2, MMSB_EDGE_DATA), 0);
	ASSERT_EQ(mmsb_edge_add(s, 2, 3, MMSB_EDGE_DATA), 0);
	ASSERT_EQ(mmsb_propagate_set_deferred(s, true), 0);
	poke(s, 1, 4);
	poke(s, 1, 5); /* queued once, not twice */
	EXPECT_EQ(r.n, 0);
	EXPECT_EQ(mmsb_propagate_pending(s), 1);
	ASSERT_EQ(mmsb_propagate_run(s), 0);
	EXPECT_EQ(mmsb_propagate_pending(s), 0);
	/* the run is one immediate wave: 2 then 3, once each */
	EXPECT_EQ(r.per_page[2], 1);
	EXPECT_EQ(r.per_page[3], 1);
	EXPECT_EQ(byte0(s, 3), 7);
	mmsb_state_close(s);
}

static int add_one(const uint8_t *src, size_t sl, uint8_t *dst, size_t dl, void *ctx)
{
	(void)ctx;
	for (size_t i = 0; i < dl; i++)
		dst[i] = (uint8_t)(src[i % sl] + 1);
	return 0;
}

static int failing(struct mmsb_state *s, uint64_t id, uint8_t *out, size_t size, void *ctx)
{
	(void)s;
	(void)id;
	(void)out;
	(void)size;
	(void)ctx;
	return -EDOM;
}

TEST(passthrough_and_transform)
{
	struct mmsb_state *s = graph_of(3, NULL);
	uint64_t big;

	ASSERT_EQ(mmsb_page_create(s, 16, MMSB_LOC_CPU, &big), 0);
	ASSERT_EQ(mmsb_page_set_passthrough(s, big, 1, NULL, NULL), -MMSB_ERR_SIZE_MISMATCH);
	ASSERT_EQ(mmsb_page_set_passthrough(s, 2, 1, NULL, NULL), 0);
	ASSERT_EQ(mmsb_page_set_passthrough(s, 3, 2, add_one, NULL), 0);
	ASSERT_EQ(mmsb_edge_add(s, 1, 2, MMSB_EDGE_DATA), 0);
	ASSERT_EQ(mmsb_edge_add(s, 2, 3, MMSB_EDGE_DATA), 0);
	poke(s, 1, 40);
	EXPECT_EQ(byte0(s, 2), 40);
	EXPECT_EQ(byte0(s, 3), 41);
	/* a failing recompute surfaces as the call's error */
	ASSERT_EQ(mmsb_page_set_recompute(s, 3, failing, NULL), 0);
	uint8_t b[PSZ] = { 1 };

	ASSERT_EQ(mmsb_page_update(s, 1, b, PSZ), -EDOM);
	mmsb_state_close(s);
}

TEST(wave_order_is_deterministic_across_runs)
{
	uint64_t first[64];
	int nfirst = 0;

	for (int run = 0; run < 4; run++) {
		struct rec r = { 0 };
		struct mmsb_state *s = graph_of(20, &r);

		srand(1234);
		for (int i = 0; i < 40; i++) {
			int a = 1 + rand() % 19, b = a + 1 + rand() % (20 - a);

			/* duplicates are no-ops; a < b keeps it acyclic */
			ASSERT_EQ(mmsb_edge_add(s, a, b, MMSB_EDGE_DATA), 0);
		}
		poke(s, 1, (uint8_t)(run + 1));
		poke(s, 2, 9);
		if (!run) {
			memcpy(first, r.order, sizeof(first));
			nfirst = r.n;
		}
		ASSERT_EQ(r.n, nfirst);
		ASSERT_MEM_EQ(r.order, first, (size_t)nfirst * sizeof(uint64_t));
		mmsb_state_close(s);
	}
}
