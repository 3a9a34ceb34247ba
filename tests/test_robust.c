// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Misuse and limits: NULL, zero and huge arguments to every public call; ids that would wrap;
 * records the writer must refuse because the reader would. Run under ASan+UBSan, no call here may
 * crash or touch memory it was not given.
 */
#include <math.h>
#include <mmsb/mmsb.h>
#include <unistd.h>

#include "fixtures.h"
#include "harness.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* CRC32C (Castagnoli), bit by bit: the tests' own, independent of the library's. */
static uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = crc & 1 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
	}
	return ~crc;
}

/* A v3 log header (36 bytes) with a good CRC. */
static void v3_header(struct fx *f, uint64_t log_id)
{
	size_t at = f->n;
	uint32_t crc;

	fx_log_header(f, 3);
	fx_u32(f, 36);
	fx_u64(f, log_id);
	fx_u64(f, 1700000000000000000ull);
	crc = crc32c(0, f->b + at, 32);
	fx_u32(f, crc);
}

/* A PAGE_CREATE (kind 1) or PAGE_FREE (kind 2) frame with a good CRC. */
static void v3_page_frame(struct fx *f, uint8_t kind, uint64_t lsn, uint64_t page_id, uint64_t size,
			  int32_t loc)
{
	uint8_t body[72] = { 0 };
	uint32_t len = sizeof(body), crc;

	body[0] = kind;
	memcpy(body + 8, &lsn, 8);
	memcpy(body + 24, &page_id, 8);
	memcpy(body + 60, &loc, 4);
	memcpy(body + 64, &size, 8);
	crc = crc32c(crc32c(0, &len, 4), body, sizeof(body));
	fx_u32(f, len);
	fx_u32(f, crc);
	fx_raw(f, body, sizeof(body));
}

static int verify_log(const char *path)
{
	struct mmsb_log_summary s;

	return mmsb_log_summarize(path, &s);
}

TEST(ids_never_wrap)
{
	const char *path = th_path("ids.tlog");
	MMSB_OPTS(mmsb_state_opts, o, .log_path = path);
	struct mmsb_state *s = mmsb_state_open(&o), *r;
	struct mmsb_counters c;
	uint8_t b[8] = { 1 };
	uint64_t id = 0;

	ASSERT_TRUE(s);
	ASSERT_EQ(mmsb_page_create_id(s, 0, 8, MMSB_LOC_CPU), -EINVAL);
	ASSERT_EQ(mmsb_page_create_id(s, UINT64_MAX, 8, MMSB_LOC_CPU), -ERANGE);
	ASSERT_EQ(mmsb_page_create_id(s, MMSB_ID_MAX + 1, 8, MMSB_LOC_CPU), -ERANGE);
	ASSERT_EQ(mmsb_page_create_id(s, MMSB_ID_MAX, 8, MMSB_LOC_CPU), 0);
	ASSERT_EQ(mmsb_state_counters(s, &c), 0);
	ASSERT_EQ(c.next_page_id, MMSB_ID_MAX + 1);
	/* the counter is spent: no id 0, no wrap, and the log stays whole */
	ASSERT_EQ(mmsb_page_create(s, 8, MMSB_LOC_CPU, &id), -ERANGE);
	ASSERT_EQ(id, 0);
	ASSERT_EQ(mmsb_page_create_id(s, 5, 8, MMSB_LOC_CPU), 0);
	ASSERT_EQ(mmsb_page_update(s, MMSB_ID_MAX, b, 8), 1);
	ASSERT_EQ(mmsb_page_update(s, 5, b, 8), 1);
	ASSERT_EQ(mmsb_state_flush(s), 0);
	ASSERT_EQ(verify_log(path), 0);
	ASSERT_EQ(mmsb_state_verify(s, NULL), 0);
	ASSERT_TRUE(r = mmsb_replay(path, NULL));
	ASSERT_EQ(mmsb_page_epoch(r, MMSB_ID_MAX), 1);
	mmsb_state_close(r);

	/* and a checkpoint of the spent counter loads back, spent */
	ASSERT_EQ(mmsb_checkpoint_write(s, th_path("ids.ckpt")), 0);
	ASSERT_EQ(mmsb_checkpoint_verify(th_path("ids.ckpt"), NULL), 0);
	mmsb_state_close(s);
}

/* Rewrite one u64 of a v3 checkpoint's header and fix the trailing CRC. */
static void ckpt_patch(const char *path, size_t off, uint64_t v)
{
	size_t n;
	uint8_t *p = fx_read(path, &n);
	uint32_t crc;

	ASSERT_TRUE(p);
	memcpy(p + off, &v, 8);
	crc = crc32c(0, p, n - 4);
	memcpy(p + n - 4, &crc, 4);
	ASSERT_EQ(fx_write(path, p, n), 0);
	free(p);
}

TEST(checkpoint_counters_checked)
{
	const char *path = th_path("c.ckpt"), *bad = th_path("bad.ckpt");
	struct mmsb_state *s = mmsb_state_open(NULL);
	size_t n;
	uint8_t *p;

	ASSERT_EQ(mmsb_page_create_id(s, 10, 8, MMSB_LOC_CPU), 0);
	ASSERT_EQ(mmsb_checkpoint_write(s, path), 0);
	ASSERT_TRUE(p = fx_read(path, &n));
	const struct {
		size_t off;
		uint64_t v;
	} cases[] = {
		{ 32, UINT64_MAX },	  /* next_page_id that wraps on the next create */
		{ 32, MMSB_ID_MAX + 2 },  /* past the last id */
		{ 32, 10 },		  /* not past the ids the file holds */
		{ 40, UINT64_MAX },	  /* next_delta_id */
		{ 48, UINT64_MAX },	  /* log_lsn */
		{ 64, 0 },		  /* page id 0 */
		{ 64, UINT64_MAX },	  /* page id past the last one */
		{ 72, (1ull << 30) + 1 }, /* page size past MMSB_PAGE_SIZE_MAX */
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		ASSERT_EQ(fx_write(bad, p, n), 0);
		ckpt_patch(bad, cases[i].off, cases[i].v);
		if (mmsb_checkpoint_verify(bad, NULL) == 0)
			TH_LOG("case %zu accepted", i);
		EXPECT_NE(mmsb_checkpoint_verify(bad, NULL), 0);
		EXPECT_NE(mmsb_checkpoint_load(s, bad), 0);
	}
	ASSERT_EQ(mmsb_page_count(s), 1);
	ckpt_patch(bad, 32, 11); /* the page record patched above, a sane counter: still refused */
	ASSERT_NE(mmsb_checkpoint_verify(bad, NULL), 0);
	ASSERT_EQ(fx_write(bad, p, n), 0);
	ckpt_patch(bad, 32, MMSB_ID_MAX + 1); /* a spent counter is what a state can write */
	ASSERT_EQ(mmsb_checkpoint_verify(bad, NULL), 0);
	free(p);
	mmsb_state_close(s);
}

/*
 * A checkpoint whose edges close a cycle is refused, whichever page the load's walk meets first,
 * and the state it was loaded into keeps what it held. The cycle is written by hand, with good
 * CRCs: a state never holds one.
 */
TEST(checkpoint_with_a_cycle_refused)
{
	const char *path = th_path("chain.ckpt"), *bad = th_path("cycle.ckpt");
	struct mmsb_state *s = mmsb_state_open(NULL), *t = mmsb_state_open(NULL);
	const size_t edge = 20, tail = 4 + 8 + 4; /* edges' CRC, end mark, file CRC */
	const uint64_t n_pages = 64;
	uint8_t b[8] = { 7 }, got[8];
	uint32_t crc;
	size_t n;
	uint8_t *p;

	ASSERT_TRUE(s && t);
	for (uint64_t i = 1; i <= n_pages; i++)
		ASSERT_EQ(mmsb_page_create_id(s, i, 8, MMSB_LOC_CPU), 0);
	for (uint64_t i = 1; i < n_pages; i++)
		ASSERT_EQ(mmsb_edge_add(s, i, i + 1, MMSB_EDGE_DATA), 0);
	ASSERT_EQ(mmsb_checkpoint_write(s, path), 0);
	ASSERT_EQ(mmsb_page_create_id(t, 5, 8, MMSB_LOC_CPU), 0);
	ASSERT_EQ(mmsb_page_update(t, 5, b, 8), 1);
	for (uint64_t from = 2; from < n_pages; from += 30) {
		uint64_t parent, child = 1;
		uint8_t *last, *first;

		ASSERT_TRUE(p = fx_read(path, &n));
		ASSERT_TRUE(n > tail + (n_pages - 1) * edge);
		last = p + n - tail - edge;
		first = last - (n_pages - 2) * edge;
		/* the last edge, 63 -> 64, becomes from -> 1: a cycle of 2, 32 and 62 pages */
		memcpy(&parent, last, 8);
		ASSERT_EQ(parent, n_pages - 1);
		memcpy(last, &from, 8);
		memcpy(last + 8, &child, 8);
		crc = crc32c(0, first, (n_pages - 1) * edge);
		memcpy(p + n - tail, &crc, 4);
		crc = crc32c(0, p, n - 4);
		memcpy(p + n - 4, &crc, 4);
		ASSERT_EQ(fx_write(bad, p, n), 0);
		free(p);
		EXPECT_EQ(mmsb_checkpoint_verify(bad, NULL), -MMSB_ERR_CYCLE);
		EXPECT_EQ(mmsb_checkpoint_load(t, bad), -MMSB_ERR_CYCLE);
		ASSERT_EQ(mmsb_page_count(t), 1);
		ASSERT_EQ(mmsb_page_read(t, 5, got, 8, 0), 8);
		ASSERT_EQ(memcmp(got, b, 8), 0);
		ASSERT_EQ(mmsb_page_epoch(t, 5), 1);
	}
	/* the chain itself loads */
	ASSERT_EQ(mmsb_checkpoint_load(t, path), 0);
	ASSERT_EQ(mmsb_page_count(t), n_pages);
	mmsb_state_close(t);
	mmsb_state_close(s);
}

/*
 * The CRCs inside a checkpoint: each page record's and the edge table's. A load checks the
 * trailer's CRC alone, which covers them (docs/formats.md); the writer must still write them right,
 * for verify and for older readers, and verify must refuse a file where one is wrong even when the
 * trailer was fixed up to match.
 */
TEST(checkpoint_inner_crcs_written_and_verified)
{
	const char *path = th_path("inner.ckpt"), *bad = th_path("inner-bad.ckpt");
	struct mmsb_state *s = mmsb_state_open(NULL);
	size_t at[8], n_at = 0, n, off = 64;
	uint64_t pages, edges;
	uint32_t crc;
	uint8_t *p;

	ASSERT_TRUE(s);
	for (uint64_t i = 1; i <= 3; i++) {
		uint8_t b[24];

		memset(b, (int)i, sizeof(b));
		ASSERT_EQ(mmsb_page_create_id(s, i, 8 * i, MMSB_LOC_CPU), 0);
		ASSERT_EQ(mmsb_page_update(s, i, b, 8 * i), 1);
	}
	ASSERT_EQ(mmsb_page_meta_set(s, 2, "unit", "ms", 2), 0);
	ASSERT_EQ(mmsb_edge_add(s, 1, 2, MMSB_EDGE_DATA), 0);
	ASSERT_EQ(mmsb_edge_add(s, 2, 3, MMSB_EDGE_CONTROL), 0);
	ASSERT_EQ(mmsb_checkpoint_write(s, path), 0);
	ASSERT_TRUE(p = fx_read(path, &n));
	memcpy(&pages, p + 16, 8);
	memcpy(&edges, p + 24, 8);
	ASSERT_EQ(pages, 3);
	ASSERT_EQ(edges, 2);
	/* a record: id, size, epoch, location, flags, meta_len, the blob, the bytes, its CRC */
	for (uint64_t i = 0; i < pages; i++) {
		uint64_t size;
		uint32_t meta_len;
		size_t len;

		memcpy(&size, p + off + 8, 8);
		memcpy(&meta_len, p + off + 28, 4);
		len = 32 + meta_len + size;
		ASSERT_TRUE(off + len + 4 <= n);
		memcpy(&crc, p + off + len, 4);
		EXPECT_EQ(crc, crc32c(0, p + off, len));
		at[n_at++] = off + len;
		off += len + 4;
	}
	ASSERT_TRUE(off + edges * 20 + 4 + 12 == n);
	memcpy(&crc, p + off + edges * 20, 4);
	EXPECT_EQ(crc, crc32c(0, p + off, edges * 20));
	at[n_at++] = off + edges * 20;
	ASSERT_EQ(mmsb_checkpoint_verify(path, NULL), 0);
	/* each inner CRC wrong, the trailer's made to match: verify refuses the file */
	for (size_t k = 0; k < n_at; k++) {
		p[at[k]] ^= 1;
		crc = crc32c(0, p, n - 4);
		memcpy(p + n - 4, &crc, 4);
		ASSERT_EQ(fx_write(bad, p, n), 0);
		EXPECT_EQ(mmsb_checkpoint_verify(bad, NULL), -MMSB_ERR_CHECKSUM);
		p[at[k]] ^= 1;
	}
	free(p);
	mmsb_state_close(s);
}

TEST(page_size_bounded_everywhere)
{
	const char *path = th_path("big.tlog");
	struct mmsb_state *s = mmsb_state_open(NULL), *r;
	static struct fx f;

	ASSERT_EQ(mmsb_page_create(s, MMSB_PAGE_SIZE_MAX + 1, MMSB_LOC_CPU, NULL), -EINVAL);
	ASSERT_EQ(mmsb_page_create(s, SIZE_MAX, MMSB_LOC_CPU, NULL), -EINVAL);
	ASSERT_EQ(mmsb_page_create_id(s, 3, SIZE_MAX, MMSB_LOC_CPU), -EINVAL);
	ASSERT_EQ(mmsb_page_count(s), 0);
	mmsb_state_close(s);

	/* a well-checksummed PAGE_CREATE of 2^64 - 1 bytes: corrupt, never a calloc */
	const uint64_t sizes[] = { UINT64_MAX, MMSB_PAGE_SIZE_MAX + 1, 0 };

	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		f.n = 0;
		v3_header(&f, 0x1234567 | 1);
		v3_page_frame(&f, 1, 1, 1, sizes[i], MMSB_LOC_CPU);
		ASSERT_EQ(fx_write(path, f.b, f.n), 0);
		ASSERT_EQ(verify_log(path), -MMSB_ERR_CORRUPT);
		errno = 0;
		ASSERT_FALSE(r = mmsb_replay(path, NULL));
		ASSERT_EQ(errno, MMSB_ERR_CORRUPT);
	}
	/* the largest page is a page */
	f.n = 0;
	v3_header(&f, 0x1234567 | 1);
	v3_page_frame(&f, 1, 1, 1, 4096, MMSB_LOC_CPU);
	ASSERT_EQ(fx_write(path, f.b, f.n), 0);
	ASSERT_EQ(verify_log(path), 0);
}

TEST(lsn_and_ids_checked_by_the_reader)
{
	const char *path = th_path("lsn.tlog");
	static struct fx f;
	const struct {
		uint64_t lsn1, lsn2, page_id;
	} cases[] = {
		{ 0, 1, 1 },				 /* a first LSN of 0 */
		{ 0, 0, 1 },				 /* LSN 0 twice */
		{ 1, 2, 0 },				 /* page id 0 */
		{ 1, 2, UINT64_MAX },			 /* page id past MMSB_ID_MAX */
		{ MMSB_ID_MAX + 1, MMSB_ID_MAX + 2, 1 }, /* LSNs past it */
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		f.n = 0;
		v3_header(&f, 77);
		v3_page_frame(&f, 1, cases[i].lsn1, cases[i].page_id, 16, MMSB_LOC_CPU);
		v3_page_frame(&f, 2, cases[i].lsn2, cases[i].page_id, 0, 0);
		ASSERT_EQ(fx_write(path, f.b, f.n), 0);
		if (verify_log(path) != -MMSB_ERR_CORRUPT)
			TH_LOG("case %zu", i);
		EXPECT_EQ(verify_log(path), -MMSB_ERR_CORRUPT);
	}
	f.n = 0;
	v3_header(&f, 77);
	v3_page_frame(&f, 1, 1, 9, 16, MMSB_LOC_CPU);
	v3_page_frame(&f, 2, 2, 9, 0, 0);
	ASSERT_EQ(fx_write(path, f.b, f.n), 0);
	ASSERT_EQ(verify_log(path), 0);
}

TEST(null_and_empty_arguments)
{
	struct mmsb_state *s = mmsb_state_open(NULL);
	uint8_t a[4] = { 1, 2, 3, 4 }, m[4];
	uint64_t ids[4];
	bool cached;

	/* delta getters: 0 or NULL and EINVAL, never a crash */
	errno = 0;
	ASSERT_EQ(mmsb_delta_id(NULL), 0);
	ASSERT_EQ(errno, EINVAL);
	ASSERT_EQ(mmsb_delta_page_id(NULL), 0);
	ASSERT_EQ(mmsb_delta_epoch(NULL), 0);
	ASSERT_EQ(mmsb_delta_lsn(NULL), 0);
	ASSERT_EQ(mmsb_delta_timestamp(NULL), 0);
	ASSERT_FALSE(mmsb_delta_is_sparse(NULL));
	ASSERT_EQ(mmsb_delta_mask_len(NULL), 0);
	ASSERT_EQ(mmsb_delta_mask_count(NULL), 0);
	ASSERT_EQ(mmsb_delta_payload_len(NULL), 0);
	ASSERT_TRUE(mmsb_delta_payload(NULL) == NULL);
	ASSERT_TRUE(mmsb_delta_source(NULL) == NULL);
	ASSERT_TRUE(mmsb_delta_intent(NULL) == NULL);
	ASSERT_EQ(mmsb_delta_copy_mask(NULL, m, 4), 0);
	ASSERT_TRUE(mmsb_delta_dup(NULL) == NULL);
	ASSERT_TRUE(mmsb_delta_to_dense(NULL) == NULL);
	ASSERT_TRUE(mmsb_delta_merge(NULL, NULL) == NULL);
	ASSERT_EQ(mmsb_delta_set_source(NULL, "x"), -EINVAL);
	ASSERT_EQ(mmsb_delta_set_intent(NULL, "x"), -EINVAL);

	struct mmsb_delta *d = mmsb_delta_new(1, a, 4, a, 4, 0);

	ASSERT_TRUE(d);
	errno = 0;
	ASSERT_EQ(mmsb_delta_copy_mask(d, NULL, 4), 0);
	ASSERT_EQ(errno, EINVAL);
	ASSERT_EQ(mmsb_delta_copy_mask(d, NULL, 0), 0);
	mmsb_delta_free(d);
	ASSERT_TRUE(mmsb_delta_new(1, NULL, 4, a, 4, 0) == NULL);
	ASSERT_TRUE(mmsb_delta_new(1, a, 4, NULL, 4, 0) == NULL);
	ASSERT_TRUE(d = mmsb_delta_new(1, NULL, 0, NULL, 0, 0));
	mmsb_delta_free(d);

	/* byte helpers and semirings */
	errno = 0;
	ASSERT_EQ(mmsb_diff_mask(NULL, a, 4, m), 0);
	ASSERT_EQ(errno, EINVAL);
	ASSERT_EQ(mmsb_diff_mask(a, a, 4, NULL), 0);
	ASSERT_EQ(mmsb_diff_mask(NULL, NULL, 0, NULL), 0);
	errno = 0;
	ASSERT_TRUE(isnan(mmsb_tropical_fold_add(NULL, 3)));
	ASSERT_EQ(errno, EINVAL);
	ASSERT_TRUE(isnan(mmsb_tropical_fold_mul(NULL, 3)));
	ASSERT_TRUE(isinf(mmsb_tropical_fold_add(NULL, 0)));
	ASSERT_EQ(mmsb_boolean_fold_add(NULL, 3), 0);
	ASSERT_EQ(mmsb_boolean_fold_mul(NULL, 3), 0);
	ASSERT_EQ(mmsb_boolean_fold_mul(NULL, 0), 1);
	mmsb_tropical_accumulate(1, 2, NULL, NULL);
	mmsb_boolean_accumulate(1, 0, NULL, NULL);

	/* state calls: NULL state, NULL buffers with zero lengths */
	ASSERT_EQ(mmsb_page_create(NULL, 4, MMSB_LOC_CPU, NULL), -EINVAL);
	ASSERT_EQ(mmsb_page_create(s, 0, MMSB_LOC_CPU, NULL), -EINVAL);
	ASSERT_EQ(mmsb_page_create_id(s, 1, 4, MMSB_LOC_CPU), 0);
	ASSERT_EQ(mmsb_page_create_id(s, 2, 4, MMSB_LOC_CPU), 0);
	ASSERT_EQ(mmsb_edge_add(s, 1, 2, MMSB_EDGE_DATA), 0);
	ASSERT_EQ(mmsb_page_read(s, 1, NULL, 0, 0), 0);
	ASSERT_EQ(mmsb_page_read(s, 1, NULL, 4, 0), -EINVAL);
	ASSERT_EQ(mmsb_page_meta_set(s, 1, "k", "v", 1), 0);
	ASSERT_EQ(mmsb_page_meta_export(s, 1, NULL, 0), 14);
	ASSERT_EQ(mmsb_page_meta_get(s, 1, "k", NULL, 0), 1);
	ASSERT_EQ(mmsb_page_meta_get(s, 1, NULL, NULL, 0), -EINVAL);
	ASSERT_EQ(mmsb_page_update(s, 1, NULL, 4), -EINVAL);
	ASSERT_EQ(mmsb_page_update_batch(s, NULL, 0), 0);
	ASSERT_EQ(mmsb_page_update_batch(s, NULL, 1), -EINVAL);
	ASSERT_EQ(mmsb_route(s, NULL), -EINVAL);
	ASSERT_EQ(mmsb_route_batch(s, NULL, 0), 0);
	ASSERT_EQ(mmsb_route_batch(s, NULL, 2), -EINVAL);
	ASSERT_EQ(mmsb_page_list(s, NULL, 0), 2);
	ASSERT_EQ(mmsb_graph_toposort(s, NULL, 0), 2);
	ASSERT_EQ(mmsb_graph_bfs(s, 1, NULL, 0), 2);
	ASSERT_EQ(mmsb_edge_children(s, 1, NULL, 0), 1);
	ASSERT_EQ(mmsb_provenance(s, 2, 0, NULL, 0, NULL), 2);
	ASSERT_EQ(mmsb_provenance(s, 2, 0, NULL, 0, &cached), 2); /* from the cache: no memcpy */
	ASSERT_TRUE(cached);
	ASSERT_EQ(mmsb_provenance(s, 2, 0, ids, 4, NULL), 2);
	ASSERT_EQ(mmsb_provenance(s, 2, 0, NULL, 4, NULL), -EINVAL);
	ASSERT_EQ(mmsb_graph_validate(s, NULL), -EINVAL);
	ASSERT_EQ(mmsb_check_deltas(s, NULL, 0, NULL, 0), 0);
	struct mmsb_delta *nulls[2] = { NULL, NULL };

	ASSERT_EQ(mmsb_check_deltas(s, nulls, 2, NULL, 0), -EINVAL);
	ASSERT_EQ(mmsb_route_batch(s, nulls, 2), -EINVAL);
	ASSERT_EQ(mmsb_state_counters(s, NULL), -EINVAL);
	ASSERT_EQ(mmsb_state_stats(s, NULL), -EINVAL);
	ASSERT_EQ(mmsb_state_diverge(s, NULL, NULL), -EINVAL);
	ASSERT_EQ(mmsb_memory_report(s, 0, NULL), -EINVAL);
	ASSERT_EQ(mmsb_check_invariants(s, MMSB_INV_ALL, NULL), -EINVAL);
	ASSERT_EQ(mmsb_checkpoint_write(s, NULL), -EINVAL);
	ASSERT_EQ(mmsb_checkpoint_load(s, NULL), -EINVAL);
	ASSERT_EQ(mmsb_checkpoint_verify(NULL, NULL), -EINVAL);
	ASSERT_EQ(mmsb_log_summarize(NULL, NULL), -EINVAL);
	ASSERT_EQ(mmsb_log_recover(NULL, NULL), -EINVAL);
	ASSERT_EQ(mmsb_log_convert(NULL, NULL), -EINVAL);
	ASSERT_TRUE(mmsb_replay(NULL, NULL) == NULL);
	ASSERT_TRUE(mmsb_log_reader_open(NULL) == NULL);
	ASSERT_EQ(mmsb_log_reader_next(NULL, NULL), -EINVAL);
	ASSERT_EQ(mmsb_log_reader_version(NULL), -EINVAL);
	ASSERT_EQ(mmsb_log_reader_log_id(NULL), 0);
	ASSERT_EQ(mmsb_log_reader_offset(NULL), 0);
	ASSERT_EQ(mmsb_log_reader_frame(NULL), 0);
	mmsb_log_reader_close(NULL);
	ASSERT_EQ(mmsb_gpu_info(NULL), -EINVAL);
	ASSERT_TRUE(mmsb_strerror(0));
	ASSERT_TRUE(mmsb_strerror(-123456));
	ASSERT_TRUE(mmsb_errname(INT32_MIN));
	ASSERT_TRUE(mmsb_strerror(INT32_MIN));

	/* a tick with nothing to apply: no memcpy from the workers' empty lists */
	struct mmsb_engine *e = mmsb_engine_new(s, NULL);
	struct mmsb_tick_metrics tm;

	ASSERT_TRUE(e);
	ASSERT_EQ(mmsb_tick(e, NULL, 0, &tm), 0);
	ASSERT_EQ(tm.pages, 0);
	ASSERT_EQ(mmsb_tick(e, NULL, 0, NULL), 0);
	ASSERT_EQ(mmsb_engine_apply(e, NULL, 0, NULL), 0);
	ASSERT_EQ(mmsb_engine_apply(e, NULL, 1, NULL), -EINVAL);
	ASSERT_EQ(mmsb_engine_apply(e, nulls, 2, NULL), -EINVAL);
	mmsb_engine_free(e);
	mmsb_engine_free(NULL);
	mmsb_state_close(s);
	mmsb_state_close(NULL);
}
