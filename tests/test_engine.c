// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The throughput engine, the tick, the memory report and provenance. */
#include <mmsb/mmsb.h>

#include "harness.h"

#define PAGES 97
#define PSZ 48
#define DELTAS 5000

/* A reproducible batch: several deltas per page, overlapping masks, dense and sparse. */
static struct mmsb_delta **make_batch(unsigned seed, size_t n)
{
	struct mmsb_delta **ds = calloc(n, sizeof(*ds));
	uint8_t mask[PSZ], pay[PSZ];

	ASSERT_TRUE(ds);
	srand(seed);
	for (size_t i = 0; i < n; i++) {
		uint64_t page = 1 + (uint64_t)(rand() % PAGES);
		size_t len = 1 + (size_t)(rand() % PSZ), cnt = 0;
		bool sparse = rand() % 2;

		for (size_t k = 0; k < len; k++) {
			mask[k] = rand() % 3 == 0;
			if (!sparse || mask[k])
				pay[cnt++] = (uint8_t)rand();
		}
		ds[i] = mmsb_delta_new(page, mask, len, pay, sparse ? cnt : len,
				       sparse ? MMSB_DELTA_SPARSE : 0);
		ASSERT_TRUE(ds[i]);
	}
	return ds;
}

static void free_batch(struct mmsb_delta **ds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		mmsb_delta_free(ds[i]);
	free(ds);
}

static struct mmsb_state *pages_state(const char *log)
{
	MMSB_OPTS(mmsb_state_opts, o, .log_path = log);
	struct mmsb_state *s = mmsb_state_open(&o);
	uint64_t id;

	ASSERT_TRUE(s);
	for (int i = 0; i < PAGES; i++)
		ASSERT_EQ(mmsb_page_create(s, PSZ, MMSB_LOC_CPU, &id), 0);
	return s;
}

static void snapshot(struct mmsb_state *s, uint8_t *bytes, int64_t *epochs)
{
	for (uint64_t id = 1; id <= PAGES; id++) {
		ASSERT_EQ(mmsb_page_read(s, id, bytes + (id - 1) * PSZ, PSZ, 0), PSZ);
		epochs[id - 1] = mmsb_page_epoch(s, id);
	}
}

TEST_TIMEOUT(worker_counts_give_identical_pages, 120)
{
	static uint8_t ref[PAGES * PSZ], got[PAGES * PSZ];
	int64_t ref_ep[PAGES], got_ep[PAGES];
	struct mmsb_delta **ds = make_batch(11, DELTAS);

	/* the reference: each delta routed on its own, in order, then epochs per batch */
	struct mmsb_state *r = pages_state(NULL);

	for (size_t i = 0; i < DELTAS; i++)
		ASSERT_EQ(mmsb_route(r, ds[i]), 0);
	snapshot(r, ref, ref_ep);
	mmsb_state_close(r);
	for (unsigned int w = 1; w <= 8; w++) {
		MMSB_OPTS(mmsb_engine_opts, eo, .workers = w);
		struct mmsb_state *s = pages_state(NULL);
		struct mmsb_engine *e = mmsb_engine_new(s, &eo);
		struct mmsb_throughput m;

		ASSERT_TRUE(e);
		/* the same deltas in two batches of different sizes */
		ASSERT_EQ(mmsb_engine_apply(e, ds, 1234, &m), 0);
		ASSERT_EQ(m.processed, 1234);
		ASSERT_EQ(mmsb_engine_apply(e, ds + 1234, DELTAS - 1234, &m), 0);
		snapshot(s, got, got_ep);
		ASSERT_MEM_EQ(got, ref, sizeof(ref));
		/* a page's epoch moves once per batch that touched it */
		for (int p = 0; p < PAGES; p++)
			ASSERT_LE(got_ep[p], 2);
		mmsb_engine_free(e);
		mmsb_state_close(s);
	}
	free_batch(ds, DELTAS);
}

TEST(bad_delta_changes_nothing)
{
	static uint8_t before[PAGES * PSZ], after[PAGES * PSZ];
	int64_t eb[PAGES], ea[PAGES];
	struct mmsb_delta **ds = make_batch(3, 400);
	const uint8_t m = 1, v = 9;

	for (unsigned int w = 1; w <= 4; w++) {
		MMSB_OPTS(mmsb_engine_opts, eo, .workers = w);
		struct mmsb_state *s = pages_state(NULL);
		struct mmsb_engine *e = mmsb_engine_new(s, &eo);
		struct mmsb_delta *orphan = mmsb_delta_new(PAGES + 50, &m, 1, &v, 1, 0);

		ASSERT_TRUE(e && orphan);
		ASSERT_EQ(mmsb_engine_apply(e, ds, 200, NULL), 0);
		snapshot(s, before, eb);
		/* the unknown page sits late in the batch: nothing before it may apply */
		struct mmsb_delta *saved = ds[350];

		ds[350] = orphan;
		ASSERT_EQ(mmsb_engine_apply(e, ds, 400, NULL), -MMSB_ERR_PAGE_NOT_FOUND);
		ds[350] = NULL;
		ASSERT_EQ(mmsb_engine_apply(e, ds, 400, NULL), -EINVAL);
		ds[350] = saved;
		snapshot(s, after, ea);
		ASSERT_MEM_EQ(after, before, sizeof(before));
		ASSERT_MEM_EQ(ea, eb, sizeof(eb));
		mmsb_delta_free(orphan);
		mmsb_engine_free(e);
		mmsb_state_close(s);
	}
	free_batch(ds, 400);
}

/*
 * Batches big enough to share, many times over: the engine runs some shared and some on worker 0
 * alone (it picks by what has been faster, and tries the other way now and then), and every one,
 * applied or refused, must leave what one worker leaves.
 */
TEST_TIMEOUT(shared_and_alone_batches_agree, 120)
{
	static uint8_t ref[PAGES * PSZ], got[PAGES * PSZ];
	int64_t ref_ep[PAGES], got_ep[PAGES];
	struct mmsb_delta **a = make_batch(5, DELTAS), **b = make_batch(6, DELTAS);
	const uint8_t m = 1, v = 9;
	struct mmsb_delta *orphan = mmsb_delta_new(PAGES + 50, &m, 1, &v, 1, 0);
	/* no page: the largest id falls in a part too */
	struct mmsb_delta *far = mmsb_delta_new(UINT64_MAX, &m, 1, &v, 1, 0);

	ASSERT_TRUE(orphan && far);
	for (unsigned int w = 1; w <= 3; w++) {
		MMSB_OPTS(mmsb_engine_opts, eo, .workers = w);
		struct mmsb_state *s = pages_state(NULL);
		struct mmsb_engine *e = mmsb_engine_new(s, &eo);

		ASSERT_TRUE(e);
		for (int i = 0; i < 300; i++) {
			struct mmsb_delta **ds = i % 2 ? b : a, *saved = ds[4321];

			ASSERT_EQ(mmsb_engine_apply(e, ds, DELTAS - i, NULL), 0);
			/* a bad delta late in the batch: refused whole, whoever validated it */
			ds[4321] = orphan;
			ASSERT_EQ(mmsb_engine_apply(e, ds, DELTAS, NULL), -MMSB_ERR_PAGE_NOT_FOUND);
			/*
			 * two, in other slices and (by their ids) other workers' parts: the
			 * batch's error is the earlier one's
			 */
			if (i % 10 == 0) {
				struct mmsb_delta *later = ds[4400], *earlier = ds[100];

				ds[4400] = NULL;
				ASSERT_EQ(mmsb_engine_apply(e, ds, DELTAS, NULL),
					  -MMSB_ERR_PAGE_NOT_FOUND);
				ds[4400] = later;
				ds[100] = NULL;
				ASSERT_EQ(mmsb_engine_apply(e, ds, DELTAS, NULL), -EINVAL);
				ds[100] = far;
				ASSERT_EQ(mmsb_engine_apply(e, ds, DELTAS, NULL),
					  -MMSB_ERR_PAGE_NOT_FOUND);
				ds[100] = earlier;
			}
			ds[4321] = saved;
		}
		snapshot(s, w == 1 ? ref : got, w == 1 ? ref_ep : got_ep);
		if (w > 1) {
			ASSERT_MEM_EQ(got, ref, sizeof(ref));
			ASSERT_MEM_EQ(got_ep, ref_ep, sizeof(ref_ep));
		}
		mmsb_engine_free(e);
		mmsb_state_close(s);
	}
	mmsb_delta_free(orphan);
	mmsb_delta_free(far);
	free_batch(a, DELTAS);
	free_batch(b, DELTAS);
}

TEST(logged_batches_replay)
{
	struct mmsb_state *s = pages_state(th_path("e.tlog"));
	MMSB_OPTS(mmsb_engine_opts, eo, .workers = 3);
	struct mmsb_engine *e = mmsb_engine_new(s, &eo);
	struct mmsb_delta **ds = make_batch(5, 3000);
	struct mmsb_divergence d;
	struct mmsb_stats st;

	ASSERT_TRUE(e);
	ASSERT_EQ(mmsb_state_stats_reset(s), 0);
	for (int b = 0; b < 3; b++)
		ASSERT_EQ(mmsb_engine_apply(e, ds + b * 1000, 1000, NULL), 0);
	ASSERT_EQ(mmsb_state_stats(s, &st), 0);
	/* batch durability: one write and one sync per batch, not per delta */
	EXPECT_EQ(st.log_writes, 3);
	EXPECT_EQ(st.log_syncs, 3);
	EXPECT_EQ(st.log_records, 3000);
	ASSERT_EQ(mmsb_state_verify(s, &d), 0);
	mmsb_engine_free(e);
	mmsb_state_close(s);
	free_batch(ds, 3000);
}

TEST(tick_runs_one_wave_and_reports)
{
	struct mmsb_state *s = pages_state(NULL);
	struct mmsb_engine *e = mmsb_engine_new(s, NULL);
	struct mmsb_delta **ds = make_batch(8, 300);
	struct mmsb_tick_metrics m;
	struct mmsb_stats st;
	uint8_t a[PSZ], b[PSZ];

	ASSERT_TRUE(e);
	/* page 1 feeds page 2 */
	ASSERT_EQ(mmsb_edge_add(s, 1, 2, MMSB_EDGE_DATA), 0);
	ASSERT_EQ(mmsb_page_set_passthrough(s, 2, 1, NULL, NULL), 0);
	ASSERT_EQ(mmsb_state_stats_reset(s), 0);
	ASSERT_EQ(mmsb_tick(e, ds, 300, &m), 0);
	ASSERT_EQ(mmsb_state_stats(s, &st), 0);
	EXPECT_EQ(st.waves, 1);
	EXPECT_EQ(m.processed, 300);
	EXPECT_FALSE(m.graph_has_cycle);
	EXPECT_EQ(m.memory.pages, PAGES);
	EXPECT_EQ(m.memory.bytes, PAGES * PSZ);
	/* what the tick says of its budget, not whether this machine met it (a loaded one may not) */
	EXPECT_EQ(m.within_budget, m.total_ns <= MMSB_TICK_BUDGET_NS);
	EXPECT_GE(m.total_ns, m.apply_ns + m.propagation_ns + m.graph_ns);
	mmsb_page_read(s, 1, a, PSZ, 0);
	mmsb_page_read(s, 2, b, PSZ, 0);
	ASSERT_MEM_EQ(a, b, PSZ);
	mmsb_engine_free(e);
	mmsb_state_close(s);
	free_batch(ds, 300);
}

TEST(memory_report_ages_and_frees_nothing)
{
	struct mmsb_state *s = pages_state(NULL);
	struct mmsb_memory_report r;
	uint8_t b[PSZ] = { 1 };

	for (int i = 0; i < 4; i++)
		ASSERT_EQ(mmsb_memory_report(s, 2, &r), 0);
	/* four reports without change: every page is older than 2 */
	EXPECT_EQ(r.cold_pages, PAGES);
	ASSERT_EQ(mmsb_page_update(s, 5, b, PSZ), 1);
	ASSERT_EQ(mmsb_memory_report(s, 2, &r), 0);
	EXPECT_EQ(r.cold_pages, PAGES - 1);
	EXPECT_EQ(r.pages, PAGES);
	EXPECT_EQ(r.avg_bytes, PSZ);
	EXPECT_EQ(mmsb_page_count(s), PAGES);
	mmsb_state_close(s);
}

TEST(provenance_lineage_and_cache)
{
	struct mmsb_state *s = pages_state(NULL);
	uint64_t ids[16];
	bool cached;

	/* 1 -> 3, 2 -> 3, 3 -> 4, 5 -> 4 (control) */
	ASSERT_EQ(mmsb_edge_add(s, 1, 3, MMSB_EDGE_DATA), 0);
	ASSERT_EQ(mmsb_edge_add(s, 2, 3, MMSB_EDGE_DATA), 0);
	ASSERT_EQ(mmsb_edge_add(s, 3, 4, MMSB_EDGE_DATA), 0);
	ASSERT_EQ(mmsb_edge_add(s, 5, 4, MMSB_EDGE_CONTROL), 0);
	ASSERT_EQ(mmsb_provenance(s, 4, 0, ids, 16, &cached), 5);
	EXPECT_FALSE(cached);
	const uint64_t want[] = { 4, 3, 5, 1, 2 };

	ASSERT_MEM_EQ(ids, want, sizeof(want));
	ASSERT_EQ(mmsb_provenance(s, 4, 0, ids, 16, &cached), 5);
	EXPECT_TRUE(cached);
	ASSERT_EQ(mmsb_provenance(s, 4, 1, ids, 16, &cached), 3);
	EXPECT_FALSE(cached);
	/* a graph change invalidates: the new ancestor shows at once */
	ASSERT_EQ(mmsb_edge_add(s, 9, 1, MMSB_EDGE_DATA), 0);
	ASSERT_EQ(mmsb_provenance(s, 4, 0, ids, 16, &cached), 6);
	EXPECT_FALSE(cached);
	EXPECT_EQ(ids[5], 9);
	ASSERT_EQ(mmsb_page_free(s, 3), 0);
	ASSERT_EQ(mmsb_provenance(s, 4, 0, ids, 16, &cached), 2);
	EXPECT_FALSE(cached);
	ASSERT_EQ(mmsb_provenance(s, 999, 0, ids, 16, &cached), -MMSB_ERR_PAGE_NOT_FOUND);
	mmsb_state_close(s);
}
