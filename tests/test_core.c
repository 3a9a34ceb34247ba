// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Pages, deltas, metadata, routing, events, statistics, invariants and semirings. */
#include <math.h>
#include <mmsb/mmsb.h>

#include "harness.h"

static struct mmsb_state *open_plain(void)
{
	struct mmsb_state *s = mmsb_state_open(NULL);

	ASSERT_TRUE(s);
	return s;
}

TEST(page_create_read_free)
{
	struct mmsb_state *s = open_plain();
	uint8_t buf[64];
	uint64_t id, ids[4];

	ASSERT_EQ(mmsb_page_create(s, 0, MMSB_LOC_CPU, &id), -EINVAL);
	ASSERT_EQ(mmsb_page_create(s, 64, MMSB_LOC_CPU, &id), 0);
	ASSERT_EQ(id, 1);
	ASSERT_EQ(mmsb_page_size(s, id), 64);
	ASSERT_EQ(mmsb_page_epoch(s, id), 0);
	memset(buf, 0xff, sizeof(buf));
	ASSERT_EQ(mmsb_page_read(s, id, buf, sizeof(buf), 0), 64);
	for (int i = 0; i < 64; i++)
		ASSERT_EQ(buf[i], 0);
	ASSERT_EQ(mmsb_page_read(s, id, buf, 100, 60), 4);
	ASSERT_EQ(mmsb_page_read(s, id, buf, 10, 64), 0);
	ASSERT_EQ(mmsb_page_create_id(s, id, 8, MMSB_LOC_CPU), -EEXIST);
	ASSERT_EQ(mmsb_page_create_id(s, 10, 8, MMSB_LOC_UNIFIED), 0);
	ASSERT_EQ(mmsb_page_location(s, 10), MMSB_LOC_UNIFIED);
	ASSERT_EQ(mmsb_page_create(s, 8, MMSB_LOC_GPU, &id), -MMSB_ERR_NO_GPU);
	ASSERT_EQ(mmsb_page_create(s, 8, 7, &id), -MMSB_ERR_BAD_LOCATION);
	ASSERT_EQ(mmsb_page_create(s, 8, MMSB_LOC_DEFAULT, &id), 0);
	ASSERT_EQ(id, 11);
	ASSERT_EQ(mmsb_page_list(s, ids, 4), 3);
	ASSERT_EQ(ids[0], 1);
	ASSERT_EQ(ids[1], 10);
	ASSERT_EQ(ids[2], 11);
	ASSERT_EQ(mmsb_page_free(s, 10), 0);
	ASSERT_EQ(mmsb_page_free(s, 10), -MMSB_ERR_PAGE_NOT_FOUND);
	ASSERT_EQ(mmsb_page_count(s), 2);
	ASSERT_EQ(mmsb_page_read(s, 10, buf, 1, 0), -MMSB_ERR_PAGE_NOT_FOUND);
	mmsb_state_close(s);
}

TEST(many_pages_map_survives_deletes)
{
	struct mmsb_state *s = open_plain();
	uint64_t id;

	for (int i = 0; i < 5000; i++)
		ASSERT_EQ(mmsb_page_create(s, 16, MMSB_LOC_CPU, &id), 0);
	for (uint64_t i = 1; i <= 5000; i += 3)
		ASSERT_EQ(mmsb_page_free(s, i), 0);
	for (uint64_t i = 1; i <= 5000; i++)
		ASSERT_EQ(mmsb_page_size(s, i), i % 3 == 1 ? -MMSB_ERR_PAGE_NOT_FOUND : 16);
	mmsb_state_close(s);
}

TEST(metadata_ordered_and_blob)
{
	struct mmsb_state *s = open_plain();
	uint8_t blob[256], val[8];
	uint64_t id;
	ssize_t n;

	ASSERT_EQ(mmsb_page_create(s, 8, MMSB_LOC_CPU, &id), 0);
	ASSERT_EQ(mmsb_page_meta_export(s, id, blob, sizeof(blob)), 0);
	ASSERT_EQ(mmsb_page_meta_set(s, id, "a", "1", 1), 0);
	ASSERT_EQ(mmsb_page_meta_set(s, id, "b", "22", 2), 0);
	/* re-setting a key moves it to the end, as the original did */
	ASSERT_EQ(mmsb_page_meta_set(s, id, "a", "333", 3), 0);
	n = mmsb_page_meta_export(s, id, blob, sizeof(blob));
	const uint8_t want[] = { 2,   0, 0, 0, 1, 0,   0, 0, 'b', 2, 0,	  0,   0,  '2',
				 '2', 1, 0, 0, 0, 'a', 3, 0, 0,	  0, '3', '3', '3' };
	ASSERT_EQ(n, sizeof(want));
	ASSERT_MEM_EQ(blob, want, sizeof(want));
	ASSERT_EQ(mmsb_page_meta_get(s, id, "a", val, sizeof(val)), 3);
	ASSERT_MEM_EQ(val, "333", 3);
	ASSERT_EQ(mmsb_page_meta_get(s, id, "zz", val, sizeof(val)), -ENOENT);
	/* a corrupt blob leaves the old metadata alone */
	uint8_t bad[sizeof(want)];

	memcpy(bad, want, sizeof(want));
	bad[4] = 200; /* key length past the end */
	ASSERT_EQ(mmsb_page_meta_import(s, id, bad, sizeof(bad)), -MMSB_ERR_META_CORRUPT);
	bad[4] = 1;
	bad[0] = 0xff; /* absurd count */
	ASSERT_EQ(mmsb_page_meta_import(s, id, bad, sizeof(bad)), -MMSB_ERR_META_CORRUPT);
	ASSERT_EQ(mmsb_page_meta_get(s, id, "b", val, sizeof(val)), 2);
	ASSERT_EQ(mmsb_page_meta_import(s, id, want, 15), 0 - MMSB_ERR_META_CORRUPT);
	/* a valid one replaces it; an empty one clears it */
	ASSERT_EQ(mmsb_page_meta_import(s, id, want, sizeof(want)), 0);
	ASSERT_EQ(mmsb_page_meta_del(s, id, "b"), 0);
	ASSERT_EQ(mmsb_page_meta_get(s, id, "b", val, sizeof(val)), -ENOENT);
	ASSERT_EQ(mmsb_page_meta_import(s, id, NULL, 0), 0);
	ASSERT_EQ(mmsb_page_meta_export(s, id, blob, sizeof(blob)), 0);
	ASSERT_EQ(mmsb_page_meta_set(s, id, "k", NULL, 0), 0);
	ASSERT_EQ(mmsb_page_meta_get(s, id, "k", NULL, 0), 0);
	ASSERT_EQ(mmsb_page_meta_set(s, id, "\xff", "x", 1), -EILSEQ);
	mmsb_state_close(s);
}

TEST(delta_validation_rules)
{
	const uint8_t mask3[] = { 1, 0, 1 }, pay3[] = { 7, 8, 9 }, pay2[] = { 7, 9 };
	const uint8_t packed[] = { 0x05 };
	struct mmsb_delta *d;

	/* dense: payload as long as the mask */
	ASSERT_TRUE(d = mmsb_delta_new(1, mask3, 3, pay3, 3, 0));
	ASSERT_EQ(mmsb_delta_mask_count(d), 2);
	mmsb_delta_free(d);
	errno = 0;
	ASSERT_FALSE(mmsb_delta_new(1, mask3, 3, pay2, 2, 0));
	ASSERT_EQ(errno, MMSB_ERR_DELTA_SCHEMA);
	/* sparse: payload as long as the popcount */
	ASSERT_TRUE(d = mmsb_delta_new(1, mask3, 3, pay2, 2, MMSB_DELTA_SPARSE));
	mmsb_delta_free(d);
	ASSERT_FALSE(mmsb_delta_new(1, mask3, 3, pay3, 3, MMSB_DELTA_SPARSE));
	/* packed masks count entries, not bytes */
	ASSERT_TRUE(d = mmsb_delta_new(1, packed, 3, pay2, 2,
				       MMSB_DELTA_SPARSE | MMSB_DELTA_MASK_PACKED));
	uint8_t m[3];

	ASSERT_EQ(mmsb_delta_copy_mask(d, m, 3), 3);
	ASSERT_MEM_EQ(m, mask3, 3);
	mmsb_delta_free(d);
	ASSERT_FALSE(mmsb_delta_new(1, mask3, 3, pay3, 3, 0x80));
	ASSERT_EQ(errno, EINVAL);
	/* empty deltas are legal and change nothing but the epoch */
	ASSERT_TRUE(d = mmsb_delta_new(1, NULL, 0, NULL, 0, 0));
	mmsb_delta_free(d);
}

TEST(apply_prefix_and_past_end)
{
	struct mmsb_state *s = open_plain();
	uint8_t mask[12], pay[12], out[8];
	struct mmsb_delta *d;
	uint64_t id;

	ASSERT_EQ(mmsb_page_create(s, 8, MMSB_LOC_CPU, &id), 0);
	/* a mask longer than the page: positions past the end are ignored */
	for (int i = 0; i < 12; i++) {
		mask[i] = 1;
		pay[i] = (uint8_t)(i + 1);
	}
	ASSERT_TRUE(d = mmsb_delta_new(id, mask, 12, pay, 12, 0));
	ASSERT_EQ(mmsb_route(s, d), 0);
	ASSERT_EQ(mmsb_delta_epoch(d), 1);
	ASSERT_EQ(mmsb_delta_id(d), 1);
	mmsb_delta_free(d);
	ASSERT_EQ(mmsb_page_read(s, id, out, 8, 0), 8);
	ASSERT_MEM_EQ(out, pay, 8);
	/* a short sparse mask touches a prefix only */
	const uint8_t m2[] = { 0, 1, 0 }, p2[] = { 0xaa };

	ASSERT_TRUE(d = mmsb_delta_new(id, m2, 3, p2, 1, MMSB_DELTA_SPARSE));
	ASSERT_EQ(mmsb_route(s, d), 0);
	mmsb_delta_free(d);
	ASSERT_EQ(mmsb_page_read(s, id, out, 8, 0), 8);
	ASSERT_EQ(out[0], 1);
	ASSERT_EQ(out[1], 0xaa);
	ASSERT_EQ(out[2], 3);
	ASSERT_EQ(out[7], 8);
	/* epochs are monotonic: each apply is old + 1 */
	ASSERT_EQ(mmsb_page_epoch(s, id), 2);
	/* routing to an unknown page changes nothing */
	ASSERT_TRUE(d = mmsb_delta_new(99, m2, 3, p2, 1, MMSB_DELTA_SPARSE));
	ASSERT_EQ(mmsb_route(s, d), -MMSB_ERR_PAGE_NOT_FOUND);
	mmsb_delta_free(d);
	mmsb_state_close(s);
}

TEST(merge_is_last_writer_wins)
{
	const uint8_t ma[] = { 1, 1, 0, 0 }, pa[] = { 1, 2, 0, 0 };
	const uint8_t mb[] = { 0, 1, 1, 0 }, pb[] = { 20, 30 };
	struct mmsb_delta *a, *b, *m, *dense;
	uint8_t mask[4];

	ASSERT_TRUE(a = mmsb_delta_new(5, ma, 4, pa, 4, 0));
	ASSERT_TRUE(b = mmsb_delta_new(5, mb, 4, pb, 2, MMSB_DELTA_SPARSE));
	ASSERT_EQ(mmsb_delta_set_intent(b, "{\"why\":\"test\"}"), 0);
	ASSERT_TRUE(m = mmsb_delta_merge(a, b));
	ASSERT_FALSE(mmsb_delta_is_sparse(m));
	mmsb_delta_copy_mask(m, mask, 4);
	const uint8_t wm[] = { 1, 1, 1, 0 }, wp[] = { 1, 20, 30, 0 };

	ASSERT_MEM_EQ(mask, wm, 4);
	ASSERT_EQ(mmsb_delta_payload_len(m), 4);
	ASSERT_MEM_EQ(mmsb_delta_payload(m), wp, 4);
	ASSERT_STR_EQ(mmsb_delta_intent(m), "{\"why\":\"test\"}");
	ASSERT_TRUE(dense = mmsb_delta_to_dense(b));
	const uint8_t wd[] = { 0, 20, 30, 0 };

	ASSERT_MEM_EQ(mmsb_delta_payload(dense), wd, 4);
	mmsb_delta_free(dense);
	mmsb_delta_free(m);
	/* different pages or mask lengths do not merge */
	struct mmsb_delta *c = mmsb_delta_new(6, ma, 4, pa, 4, 0);

	ASSERT_FALSE(mmsb_delta_merge(a, c));
	ASSERT_EQ(errno, MMSB_ERR_PAGE_MISMATCH);
	mmsb_delta_free(c);
	c = mmsb_delta_new(5, ma, 3, pa, 3, 0);
	ASSERT_FALSE(mmsb_delta_merge(a, c));
	ASSERT_EQ(errno, MMSB_ERR_MASK_MISMATCH);
	mmsb_delta_free(c);
	ASSERT_EQ(mmsb_delta_set_intent(a, "\xc0\xaf"), -EILSEQ);
	mmsb_delta_free(a);
	mmsb_delta_free(b);
}

TEST(merge_then_apply_equals_sequential_apply)
{
	struct mmsb_state *s1 = open_plain(), *s2 = open_plain();
	uint8_t m1[64], p1[64], m2[64], p2[64], o1[64], o2[64];
	uint64_t id;

	srand(7);
	ASSERT_EQ(mmsb_page_create(s1, 64, MMSB_LOC_CPU, &id), 0);
	ASSERT_EQ(mmsb_page_create(s2, 64, MMSB_LOC_CPU, &id), 0);
	for (int i = 0; i < 64; i++) {
		m1[i] = rand() & 1;
		m2[i] = rand() & 1;
		p1[i] = (uint8_t)rand();
		p2[i] = (uint8_t)rand();
	}
	struct mmsb_delta *a = mmsb_delta_new(id, m1, 64, p1, 64, 0);
	struct mmsb_delta *b = mmsb_delta_new(id, m2, 64, p2, 64, 0);
	struct mmsb_delta *m = mmsb_delta_merge(a, b);

	ASSERT_EQ(mmsb_route(s1, a), 0);
	ASSERT_EQ(mmsb_route(s1, b), 0);
	ASSERT_EQ(mmsb_route(s2, m), 0);
	mmsb_page_read(s1, id, o1, 64, 0);
	mmsb_page_read(s2, id, o2, 64, 0);
	ASSERT_MEM_EQ(o1, o2, 64);
	mmsb_delta_free(a);
	mmsb_delta_free(b);
	mmsb_delta_free(m);
	mmsb_state_close(s1);
	mmsb_state_close(s2);
}

TEST(diff_mask_and_update_noop)
{
	struct mmsb_state *s = open_plain();
	uint8_t a[16] = { 0 }, b[16] = { 0 }, mask[16];
	uint64_t id;

	b[3] = 1;
	b[15] = 9;
	ASSERT_EQ(mmsb_diff_mask(a, b, 16, mask), 2);
	ASSERT_EQ(mask[3], 1);
	ASSERT_EQ(mask[4], 0);
	ASSERT_EQ(mmsb_page_create(s, 16, MMSB_LOC_CPU, &id), 0);
	/* unchanged contents: no delta, no epoch */
	ASSERT_EQ(mmsb_page_update(s, id, a, 16), 0);
	ASSERT_EQ(mmsb_page_epoch(s, id), 0);
	ASSERT_EQ(mmsb_page_update(s, id, b, 16), 1);
	ASSERT_EQ(mmsb_page_epoch(s, id), 1);
	ASSERT_EQ(mmsb_page_update(s, id, b, 16), 0);
	ASSERT_EQ(mmsb_page_epoch(s, id), 1);
	ASSERT_EQ(mmsb_page_update(s, id, b, 15), -MMSB_ERR_SIZE_MISMATCH);
	mmsb_state_close(s);
}

TEST(update_batch_one_wave_and_checked_whole)
{
	struct mmsb_state *s = open_plain();
	uint8_t x[8] = { 1, 2, 3 }, y[8] = { 9 }, z[8] = { 0 }, out[8];
	struct mmsb_counters c0, c1;
	uint64_t a, b, child;

	ASSERT_EQ(mmsb_page_create(s, 8, MMSB_LOC_CPU, &a), 0);
	ASSERT_EQ(mmsb_page_create(s, 8, MMSB_LOC_CPU, &b), 0);
	ASSERT_EQ(mmsb_page_create(s, 8, MMSB_LOC_CPU, &child), 0);
	ASSERT_EQ(mmsb_edge_add(s, a, child, MMSB_EDGE_DATA), 0);
	ASSERT_EQ(mmsb_page_set_passthrough(s, child, a, NULL, NULL), 0);
	/* a bad write anywhere changes nothing */
	struct mmsb_page_write bad[] = { { a, x, 8 }, { b, y, 7 } };

	ASSERT_EQ(mmsb_page_update_batch(s, bad, 2), -MMSB_ERR_SIZE_MISMATCH);
	bad[1] = (struct mmsb_page_write){ 999, y, 8 };
	ASSERT_EQ(mmsb_page_update_batch(s, bad, 2), -MMSB_ERR_PAGE_NOT_FOUND);
	ASSERT_EQ(mmsb_page_epoch(s, a), 0);
	/* a twice (in order), b once, an unchanged write to nothing: 3 deltas, one wave */
	struct mmsb_page_write w[] = { { a, y, 8 }, { b, y, 8 }, { a, x, 8 }, { child, z, 8 } };

	ASSERT_EQ(mmsb_state_counters(s, &c0), 0);
	ASSERT_EQ(mmsb_page_update_batch(s, w, 3), 3);
	ASSERT_EQ(mmsb_state_counters(s, &c1), 0);
	ASSERT_EQ(c1.next_delta_id - c0.next_delta_id, 4); /* 3 writes + the child's recompute */
	ASSERT_EQ(mmsb_page_epoch(s, child), 1);	   /* one wave: recomputed once */
	ASSERT_EQ(mmsb_page_epoch(s, a), 2);
	ASSERT_EQ(mmsb_page_epoch(s, b), 1);
	ASSERT_EQ(mmsb_page_read(s, child, out, 8, 0), 8);
	ASSERT_EQ(memcmp(out, x, 8), 0); /* the passthrough saw the last write of a */
	ASSERT_EQ(mmsb_page_update_batch(s, w + 2, 1), 0);
	ASSERT_EQ(mmsb_page_update_batch(s, w, 0), 0);
	ASSERT_EQ(mmsb_page_update_batch(NULL, w, 1), -EINVAL);
	mmsb_state_close(s);
}

TEST(batch_is_validated_whole)
{
	struct mmsb_state *s = open_plain();
	const uint8_t m[] = { 1 }, p[] = { 5 };
	struct mmsb_delta *d[3];
	uint64_t a, b;
	uint8_t v;

	ASSERT_EQ(mmsb_page_create(s, 1, MMSB_LOC_CPU, &a), 0);
	ASSERT_EQ(mmsb_page_create(s, 1, MMSB_LOC_CPU, &b), 0);
	d[0] = mmsb_delta_new(a, m, 1, p, 1, 0);
	d[1] = mmsb_delta_new(b, m, 1, p, 1, 0);
	d[2] = mmsb_delta_new(77, m, 1, p, 1, 0);
	ASSERT_EQ(mmsb_route_batch(s, d, 3), -MMSB_ERR_PAGE_NOT_FOUND);
	mmsb_page_read(s, a, &v, 1, 0);
	ASSERT_EQ(v, 0);
	ASSERT_EQ(mmsb_page_epoch(s, a), 0);
	ASSERT_EQ(mmsb_route_batch(s, d, 2), 0);
	mmsb_page_read(s, b, &v, 1, 0);
	ASSERT_EQ(v, 5);
	for (int i = 0; i < 3; i++)
		mmsb_delta_free(d[i]);
	mmsb_state_close(s);
}

struct ev_log {
	int count[MMSB_EV__COUNT];
	int fail_on;
};

static int on_event(struct mmsb_state *s, const struct mmsb_event *ev, void *ctx)
{
	struct ev_log *l = ctx;
	uint8_t b[4] = { 9, 9, 9, 9 };

	l->count[ev->type]++;
	/* handlers may read but not change the state */
	if (ev->type == MMSB_EV_PAGE_CHANGED && mmsb_page_update(s, ev->page_id, b, 4) != -EDEADLK)
		return -EPROTO;
	return ev->type == (enum mmsb_event_type)l->fail_on ? -EIO : 0;
}

static bool only_page_1(const struct mmsb_event *ev, void *ctx)
{
	(void)ctx;
	return ev->page_id == 1;
}

TEST(events_filtered_and_errors_reported)
{
	struct mmsb_state *s = open_plain();
	struct ev_log all = { .fail_on = MMSB_EV_DELTA_APPLIED }, one = { .fail_on = -1 };
	uint8_t b[4] = { 1, 2, 3, 4 };
	struct mmsb_stats st;
	int64_t sub;
	uint64_t p1, p2;

	ASSERT_GT(mmsb_subscribe(s, MMSB_EV_ALL, NULL, on_event, &all), 0);
	ASSERT_GT(sub = mmsb_subscribe(s, MMSB_EV_MASK(MMSB_EV_PAGE_CHANGED), only_page_1, on_event,
				       &one),
		  0);
	ASSERT_EQ(mmsb_page_create(s, 4, MMSB_LOC_CPU, &p1), 0);
	ASSERT_EQ(mmsb_page_create(s, 4, MMSB_LOC_CPU, &p2), 0);
	ASSERT_EQ(mmsb_page_update(s, p1, b, 4), 1);
	ASSERT_EQ(mmsb_page_update(s, p2, b, 4), 1);
	EXPECT_EQ(all.count[MMSB_EV_PAGE_CREATED], 2);
	EXPECT_EQ(all.count[MMSB_EV_DELTA_APPLIED], 2);
	EXPECT_EQ(all.count[MMSB_EV_PAGE_CHANGED], 2);
	EXPECT_EQ(one.count[MMSB_EV_PAGE_CHANGED], 1);
	ASSERT_EQ(mmsb_state_stats(s, &st), 0);
	/* the failing handler's errors are counted and kept, not swallowed */
	EXPECT_EQ(st.handler_errors, 2);
	EXPECT_EQ(st.last_handler_error, -EIO);
	ASSERT_EQ(mmsb_unsubscribe(s, sub), 0);
	ASSERT_EQ(mmsb_unsubscribe(s, sub), -ENOENT);
	ASSERT_EQ(mmsb_page_free(s, p2), 0);
	EXPECT_EQ(all.count[MMSB_EV_PAGE_DELETED], 1);
	mmsb_state_close(s);
}

TEST(stats_count_and_reset)
{
	struct mmsb_state *s = open_plain();
	uint8_t b[8] = { 1 };
	struct mmsb_stats st;
	uint64_t a, c;

	ASSERT_EQ(mmsb_page_create(s, 8, MMSB_LOC_CPU, &a), 0);
	ASSERT_EQ(mmsb_page_create(s, 8, MMSB_LOC_CPU, &c), 0);
	ASSERT_EQ(mmsb_edge_add(s, a, c, MMSB_EDGE_DATA), 0);
	ASSERT_EQ(mmsb_page_set_passthrough(s, c, a, NULL, NULL), 0);
	ASSERT_EQ(mmsb_page_update(s, a, b, 8), 1);
	ASSERT_EQ(mmsb_state_stats(s, &st), 0);
	EXPECT_EQ(st.pages, 2);
	EXPECT_EQ(st.page_bytes, 16);
	EXPECT_EQ(st.edges, 1);
	EXPECT_EQ(st.deltas_applied, 2);
	EXPECT_EQ(st.recomputes, 1);
	EXPECT_EQ(st.waves, 1);
	EXPECT_EQ(st.max_depth, 1);
	ASSERT_EQ(mmsb_state_stats_reset(s), 0);
	ASSERT_EQ(mmsb_state_stats(s, &st), 0);
	EXPECT_EQ(st.deltas_applied, 0);
	EXPECT_EQ(st.pages, 2);
	mmsb_state_close(s);
}

TEST(invariants_and_integrity)
{
	struct mmsb_state *s = open_plain();
	struct mmsb_invariant_result r;
	struct mmsb_violation v[4];
	const uint8_t m[] = { 1 }, p[] = { 1 };
	struct mmsb_delta *d[3];
	uint64_t a;

	ASSERT_EQ(mmsb_page_create(s, 1, MMSB_LOC_CPU, &a), 0);
	ASSERT_EQ(mmsb_page_meta_set(s, a, "k", "v", 1), 0);
	ASSERT_EQ(mmsb_check_invariants(s, MMSB_INV_ALL, &r), 0);
	ASSERT_EQ(r.failed, 0);
	d[0] = mmsb_delta_new(a, m, 1, p, 1, 0);
	d[1] = mmsb_delta_new(a, m, 1, p, 1, 0);
	d[2] = mmsb_delta_new(42, m, 1, p, 1, 0);
	ASSERT_EQ(mmsb_route(s, d[0]), 0); /* epoch 1 */
	ASSERT_EQ(mmsb_route(s, d[1]), 0); /* epoch 2 */
	/* feeding them newest first: the older one regresses; the orphan is an orphan */
	struct mmsb_delta *order[] = { d[1], d[0], d[2] };

	ASSERT_EQ(mmsb_check_deltas(s, order, 3, v, 4), 2);
	EXPECT_EQ(v[0].kind, MMSB_VIOL_EPOCH_REGRESSION);
	EXPECT_EQ(v[0].a, 2);
	EXPECT_EQ(v[0].b, 1);
	EXPECT_EQ(v[1].kind, MMSB_VIOL_ORPHAN);
	ASSERT_EQ(mmsb_check_invariants(s, MMSB_INV_EPOCH_MONOTONIC, &r), 0);
	for (int i = 0; i < 3; i++)
		mmsb_delta_free(d[i]);
	mmsb_state_close(s);
}

TEST(semirings)
{
	const double v[] = { 3.0, -1.5, 7.0 };
	const uint8_t t[] = { 0, 2, 0 }, f[] = { 0, 0 };
	double add, mul;
	uint8_t ba, bm;

	EXPECT_TRUE(mmsb_tropical_fold_add(v, 3) == -1.5);
	EXPECT_TRUE(mmsb_tropical_fold_mul(v, 3) == 8.5);
	EXPECT_TRUE(isinf(mmsb_tropical_fold_add(NULL, 0)));
	EXPECT_TRUE(mmsb_tropical_fold_mul(NULL, 0) == 0.0);
	const double withnan[] = { NAN, 2.0, NAN, 7.0, -1.0 };

	/* a NaN never wins a min, as with fmin() */
	EXPECT_TRUE(mmsb_tropical_fold_add(withnan, 5) == -1.0);
	EXPECT_TRUE(mmsb_tropical_fold_add(withnan, 1) == INFINITY);
	mmsb_tropical_accumulate(2.0, 5.0, &add, &mul);
	EXPECT_TRUE(add == 2.0 && mul == 7.0);
	EXPECT_EQ(mmsb_boolean_fold_add(t, 3), 1);
	EXPECT_EQ(mmsb_boolean_fold_add(f, 2), 0);
	EXPECT_EQ(mmsb_boolean_fold_mul(t, 3), 0);
	EXPECT_EQ(mmsb_boolean_fold_mul(NULL, 0), 1);
	EXPECT_EQ(mmsb_boolean_fold_add(NULL, 0), 0);
	mmsb_boolean_accumulate(1, 0, &ba, &bm);
	EXPECT_EQ(ba, 1);
	EXPECT_EQ(bm, 0);
}

TEST(errors_have_names)
{
	char want[32];

	ASSERT_STR_EQ(mmsb_errname(-MMSB_ERR_CYCLE), "CYCLE");
	ASSERT_STR_EQ(mmsb_strerror(-MMSB_ERR_PAGE_NOT_FOUND), "page not found");
	ASSERT_STR_EQ(mmsb_errname(-ENOENT), "ENOENT");
	ASSERT_TRUE(strlen(mmsb_strerror(-EIO)) > 0);
	snprintf(want, sizeof(want), "%d.%d.%d", MMSB_VERSION_MAJOR, MMSB_VERSION_MINOR,
		 MMSB_VERSION_PATCH);
	ASSERT_STR_EQ(mmsb_version(), want);
}

TEST(opts_size_checked)
{
	struct {
		struct mmsb_state_opts o;
		uint64_t future;
	} big = { 0 };
	struct mmsb_state *s;

	big.o.sz = sizeof(big);
	ASSERT_TRUE(s = mmsb_state_open(&big.o));
	mmsb_state_close(s);
	big.future = 1; /* a field this library does not know, set: refused */
	ASSERT_FALSE(mmsb_state_open(&big.o));
	ASSERT_EQ(errno, EINVAL);
	big.o.sz = 4;
	big.future = 0;
	ASSERT_FALSE(mmsb_state_open(&big.o));
}

TEST(mask_kernels_match_the_plain_loops)
{
	uint8_t a[203], b[203], out[203], bits[26], mask[203], got[203];
	struct mmsb_delta *d;

	srand(99);
	for (size_t len = 0; len <= 203; len++) {
		size_t want = 0;

		for (size_t i = 0; i < len; i++) {
			a[i] = (uint8_t)rand();
			b[i] = rand() % 3 ? a[i] : (uint8_t)rand();
			want += a[i] != b[i];
		}
		ASSERT_EQ(mmsb_diff_mask(a, b, len, out), want);
		for (size_t i = 0; i < len; i++)
			ASSERT_EQ(out[i], a[i] != b[i]);
		/* a packed mask, LSB-first, read back one byte per entry */
		memset(bits, 0, sizeof(bits));
		for (size_t i = 0; i < len; i++) {
			mask[i] = rand() & 1;
			bits[i / 8] |= (uint8_t)(mask[i] << (i % 8));
		}
		ASSERT_TRUE(d = mmsb_delta_new(1, bits, len, a, len, MMSB_DELTA_MASK_PACKED));
		ASSERT_EQ(mmsb_delta_copy_mask(d, got, len), len);
		ASSERT_MEM_EQ(got, mask, len);
		mmsb_delta_free(d);
	}
}

/*
 * Dense updates take the fast paths (the diff's packed bits go to the log, the apply is a copy,
 * the frame's CRC runs three streams): what the log holds must replay to exactly the live bytes,
 * pages of odd sizes around the 32-byte and 12 KiB steps of those paths included.
 */
TEST(dense_updates_log_what_they_apply)
{
	static const size_t sizes[] = { 31, 33, 4097, 12287, 12289, 100003 };
	MMSB_OPTS(mmsb_state_opts, o, .log_path = th_path("dense.tlog"));
	struct mmsb_state *s = mmsb_state_open(&o);
	struct mmsb_divergence dv;
	uint8_t *buf = malloc(100003);

	ASSERT_TRUE(s && buf);
	srand(7);
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		uint64_t id;

		ASSERT_EQ(mmsb_page_create(s, sizes[k], MMSB_LOC_CPU, &id), 0);
		for (int round = 0; round < 4; round++) {
			/* all bytes new, then a third, then a few: dense, dense, sparse */
			for (size_t i = 0; i < sizes[k]; i++)
				if (round == 0 || rand() % (round == 3 ? 50 : 3) == 0)
					buf[i] = (uint8_t)rand();
			ASSERT_GE(mmsb_page_update(s, id, buf, sizes[k]), 0);
		}
	}
	ASSERT_EQ(mmsb_state_verify(s, &dv), 0);
	ASSERT_EQ(dv.pages_differing, 0);
	ASSERT_EQ(dv.pages_compared, sizeof(sizes) / sizeof(sizes[0]));
	mmsb_state_close(s);
	free(buf);
}

/* A range write: only its bytes change, it is logged with its offset and replays, it propagates. */
TEST(page_write_a_range)
{
	MMSB_OPTS(mmsb_state_opts, o, .log_path = th_path("write.tlog"));
	struct mmsb_state *s = mmsb_state_open(&o), *r;
	static uint8_t want[1 << 20], got[1 << 20];
	const uint8_t ten[10] = "0123456789";
	struct mmsb_log_reader *rd;
	struct mmsb_log_record rec;
	struct mmsb_divergence dv;
	uint64_t a, b, offs = 0;
	int deltas = 0;

	ASSERT_TRUE(s);
	ASSERT_EQ(mmsb_page_create(s, sizeof(want), MMSB_LOC_CPU, &a), 0);
	ASSERT_EQ(mmsb_page_create(s, sizeof(want), MMSB_LOC_CPU, &b), 0);
	ASSERT_EQ(mmsb_edge_add(s, a, b, MMSB_EDGE_DATA), 0);
	ASSERT_EQ(mmsb_page_set_passthrough(s, b, a, NULL, NULL), 0);
	ASSERT_EQ(mmsb_page_write(s, a, 777777, ten, 10), 1);
	ASSERT_EQ(mmsb_page_write(s, a, 777777, ten, 10), 0); /* unchanged: no delta */
	ASSERT_EQ(mmsb_page_write(s, a, sizeof(want) - 1, "!", 1), 1);
	ASSERT_EQ(mmsb_page_write(s, a, 0, "ab", 2), 1);
	ASSERT_EQ(mmsb_page_write(s, a, sizeof(want), ten, 0), 0);
	memcpy(want + 777777, ten, 10);
	want[sizeof(want) - 1] = '!';
	memcpy(want, "ab", 2);
	ASSERT_EQ(mmsb_page_read(s, a, got, sizeof(got), 0), sizeof(got));
	ASSERT_MEM_EQ(got, want, sizeof(want));
	ASSERT_EQ(mmsb_page_read(s, b, got, sizeof(got), 0), sizeof(got)); /* propagated */
	ASSERT_MEM_EQ(got, want, sizeof(want));
	ASSERT_EQ(mmsb_page_epoch(s, a), 3);
	/* bad input changes nothing */
	ASSERT_EQ(mmsb_page_write(s, a, sizeof(want) - 9, ten, 10), -MMSB_ERR_SIZE_MISMATCH);
	ASSERT_EQ(mmsb_page_write(s, a, UINT64_MAX, ten, 10), -MMSB_ERR_SIZE_MISMATCH);
	ASSERT_EQ(mmsb_page_write(s, a, 0, NULL, 10), -EINVAL);
	ASSERT_EQ(mmsb_page_write(s, 12345, 0, ten, 10), -MMSB_ERR_PAGE_NOT_FOUND);
	ASSERT_EQ(mmsb_page_write(NULL, a, 0, ten, 10), -EINVAL);
	ASSERT_EQ(mmsb_page_epoch(s, a), 3);
	ASSERT_EQ(mmsb_state_flush(s), 0);
	/* the records: the caller's three with their offsets and 10, 1, 2 mask entries */
	ASSERT_TRUE(rd = mmsb_log_reader_open(th_path("write.tlog")));
	while (mmsb_log_reader_next(rd, &rec) > 0)
		if (rec.kind == MMSB_REC_DELTA && rec.page_id == a) {
			deltas++;
			offs += mmsb_delta_offset(rec.delta);
			ASSERT_LE(mmsb_delta_mask_len(rec.delta), 10);
		}
	mmsb_log_reader_close(rd);
	ASSERT_EQ(deltas, 3);
	ASSERT_EQ(offs, 777777 + sizeof(want) - 1);
	/* the log replays to the live bytes, and a dup keeps the offset */
	ASSERT_EQ(mmsb_state_verify(s, &dv), 0);
	ASSERT_EQ(dv.pages_differing, 0);
	ASSERT_TRUE(r = mmsb_replay(th_path("write.tlog"), NULL));
	ASSERT_EQ(mmsb_page_read(r, a, got, sizeof(got), 0), sizeof(got));
	ASSERT_MEM_EQ(got, want, sizeof(want));
	mmsb_state_close(r);
	mmsb_state_close(s);
}
