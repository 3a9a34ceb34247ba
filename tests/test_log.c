// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The transaction log: v3 round trips, the original's v1/v2, every corruption, recovery. */
#include <fcntl.h>
#include <mmsb/mmsb.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include "fixtures.h"
#include "harness.h"

static struct mmsb_state *open_log(const char *path, enum mmsb_log_mode mode,
				   enum mmsb_durability dur)
{
	MMSB_OPTS(mmsb_state_opts, o, .log_path = path, .log_mode = mode, .durability = dur);

	return mmsb_state_open(&o);
}

/* A small logged workload: 2 pages, 3 updates, a free. */
static void workload(const char *path)
{
	struct mmsb_state *s = open_log(path, MMSB_LOG_CREATE, MMSB_DURABLE_BATCH);
	uint8_t b[32];
	uint64_t a, c;

	ASSERT_TRUE(s);
	ASSERT_EQ(mmsb_page_create(s, 32, MMSB_LOC_CPU, &a), 0);
	ASSERT_EQ(mmsb_page_create(s, 32, MMSB_LOC_CPU, &c), 0);
	for (int i = 0; i < 3; i++) {
		memset(b, i + 1, sizeof(b));
		b[0] = 0x55;
		ASSERT_EQ(mmsb_page_update(s, a, b, 32), 1);
	}
	ASSERT_EQ(mmsb_page_free(s, c), 0);
	mmsb_state_close(s);
}

TEST(v3_round_trip)
{
	const char *path = th_path("a.tlog");
	struct mmsb_log_record rec;
	struct mmsb_log_reader *r;
	uint64_t lsn = 0;
	int kinds[3] = { 0 }, n = 0, err;

	workload(path);
	ASSERT_TRUE(r = mmsb_log_reader_open(path));
	ASSERT_EQ(mmsb_log_reader_version(r), 3);
	ASSERT_NE(mmsb_log_reader_log_id(r), 0);
	while ((err = mmsb_log_reader_next(r, &rec)) > 0) {
		/* LSNs run 1, 2, 3... and timestamps are real (after 2020) */
		ASSERT_EQ(rec.lsn, ++lsn);
		ASSERT_GT(rec.timestamp, 1577836800000000000ull);
		kinds[rec.kind]++;
		if (rec.kind == MMSB_REC_DELTA) {
			n++;
			ASSERT_EQ(mmsb_delta_epoch(rec.delta), n);
			ASSERT_EQ(mmsb_delta_id(rec.delta), n);
			ASSERT_STR_EQ(mmsb_delta_source(rec.delta), "api");
			/* the first update changes every byte, later ones all but byte 0 */
			ASSERT_EQ(mmsb_delta_mask_count(rec.delta), n == 1 ? 32 : 31);
		}
	}
	ASSERT_EQ(err, 0);
	EXPECT_EQ(kinds[MMSB_REC_PAGE_CREATE], 2);
	EXPECT_EQ(kinds[MMSB_REC_DELTA], 3);
	EXPECT_EQ(kinds[MMSB_REC_PAGE_FREE], 1);
	mmsb_log_reader_close(r);
}

TEST(log_modes_and_locking)
{
	const char *path = th_path("m.tlog");
	struct mmsb_state *s, *t;
	struct mmsb_counters c;
	uint64_t id;

	workload(path);
	/* an existing log is never appended to unless asked */
	errno = 0;
	ASSERT_FALSE(open_log(path, MMSB_LOG_CREATE, MMSB_DURABLE_BATCH));
	ASSERT_EQ(errno, EEXIST);
	ASSERT_TRUE(s = open_log(path, MMSB_LOG_APPEND, MMSB_DURABLE_BATCH));
	ASSERT_EQ(mmsb_state_counters(s, &c), 0);
	ASSERT_EQ(c.next_lsn, 7);
	/* one writer per log */
	ASSERT_FALSE(t = open_log(path, MMSB_LOG_APPEND, MMSB_DURABLE_BATCH));
	ASSERT_EQ(errno, EBUSY);
	ASSERT_EQ(mmsb_page_create(s, 4, MMSB_LOC_CPU, &id), 0);
	mmsb_state_close(s);
	struct mmsb_log_summary sum;

	ASSERT_EQ(mmsb_log_summarize(path, &sum), 0);
	EXPECT_EQ(sum.records, 7);
	EXPECT_EQ(sum.last_lsn, 7);
	ASSERT_TRUE(s = open_log(path, MMSB_LOG_TRUNCATE, MMSB_DURABLE_BATCH));
	mmsb_state_close(s);
	ASSERT_EQ(mmsb_log_summarize(path, &sum), 0);
	EXPECT_EQ(sum.records, 0);
}

TEST(original_v2_and_v1_read)
{
	const char *p2 = th_path("v2.tlog"), *p1 = th_path("v1.tlog");
	static struct fx f;
	struct mmsb_log_record rec;
	struct mmsb_log_reader *r;
	struct mmsb_log_summary sum;

	fx_v2_log(&f, 2);
	ASSERT_EQ(fx_write(p2, f.b, f.n), 0);
	ASSERT_TRUE(r = mmsb_log_reader_open(p2));
	ASSERT_EQ(mmsb_log_reader_version(r), 2);
	ASSERT_EQ(mmsb_log_reader_next(r, &rec), 1);
	EXPECT_EQ(rec.offset, 12);
	EXPECT_EQ(mmsb_delta_page_id(rec.delta), 1);
	EXPECT_EQ(mmsb_delta_epoch(rec.delta), 1);
	EXPECT_FALSE(mmsb_delta_is_sparse(rec.delta));
	EXPECT_EQ(mmsb_delta_mask_count(rec.delta), 3);
	ASSERT_STR_EQ(mmsb_delta_source(rec.delta), "router");
	EXPECT_TRUE(mmsb_delta_intent(rec.delta) == NULL);
	ASSERT_EQ(mmsb_log_reader_next(r, &rec), 1);
	EXPECT_TRUE(mmsb_delta_is_sparse(rec.delta));
	EXPECT_EQ(mmsb_delta_payload(rec.delta)[1], 0xa4);
	ASSERT_STR_EQ(mmsb_delta_intent(rec.delta), "{\"k\":1}");
	/* frame size = 45 + mask + payload + source + meta in v2 */
	EXPECT_EQ(rec.frame_len, 45 + 5 + 2 + 13 + 7);
	ASSERT_EQ(mmsb_log_reader_next(r, &rec), 1);
	EXPECT_EQ(rec.timestamp, 1700000000000000000ull);
	ASSERT_EQ(mmsb_log_reader_next(r, &rec), 0);
	mmsb_log_reader_close(r);
	ASSERT_EQ(mmsb_log_summarize(p2, &sum), 0);
	EXPECT_EQ(sum.deltas, 3);
	/* the original's estimate: mask + payload + 32 + intent per delta */
	EXPECT_EQ(sum.total_bytes, (4 + 4 + 32) + (5 + 2 + 32 + 7) + (2 + 2 + 32));
	EXPECT_EQ(sum.last_epoch, 2);

	fx_v2_log(&f, 1);
	ASSERT_EQ(fx_write(p1, f.b, f.n), 0);
	ASSERT_EQ(mmsb_log_summarize(p1, &sum), 0);
	EXPECT_EQ(sum.version, 1);
	EXPECT_EQ(sum.deltas, 3);
	EXPECT_EQ(sum.valid_bytes, f.n);
	/* a v1/v2 log is converted, never appended to */
	errno = 0;
	ASSERT_FALSE(open_log(p2, MMSB_LOG_APPEND, MMSB_DURABLE_BATCH));
	ASSERT_EQ(errno, MMSB_ERR_BAD_VERSION);
}

TEST(convert_v2_to_v3)
{
	const char *in = th_path("in.tlog"), *out = th_path("out.tlog");
	static struct fx f;
	struct mmsb_log_reader *a, *b;
	struct mmsb_log_record ra, rb;
	int n = 0;

	fx_v2_log(&f, 2);
	ASSERT_EQ(fx_write(in, f.b, f.n), 0);
	ASSERT_EQ(mmsb_log_convert(in, out), 0);
	ASSERT_TRUE(a = mmsb_log_reader_open(in));
	ASSERT_TRUE(b = mmsb_log_reader_open(out));
	ASSERT_EQ(mmsb_log_reader_version(b), 3);
	while (mmsb_log_reader_next(a, &ra) > 0) {
		ASSERT_EQ(mmsb_log_reader_next(b, &rb), 1);
		ASSERT_EQ(rb.lsn, ++n);
		struct mmsb_delta *x = ra.delta, *y = rb.delta;
		uint8_t mx[8], my[8];

		ASSERT_EQ(mmsb_delta_id(x), mmsb_delta_id(y));
		ASSERT_EQ(mmsb_delta_epoch(x), mmsb_delta_epoch(y));
		ASSERT_EQ(mmsb_delta_timestamp(x), mmsb_delta_timestamp(y));
		ASSERT_EQ(mmsb_delta_mask_len(x), mmsb_delta_mask_len(y));
		mmsb_delta_copy_mask(x, mx, 8);
		mmsb_delta_copy_mask(y, my, 8);
		ASSERT_MEM_EQ(mx, my, mmsb_delta_mask_len(x));
		ASSERT_EQ(mmsb_delta_payload_len(x), mmsb_delta_payload_len(y));
		ASSERT_MEM_EQ(mmsb_delta_payload(x), mmsb_delta_payload(y),
			      mmsb_delta_payload_len(x));
		ASSERT_STR_EQ(mmsb_delta_source(x), mmsb_delta_source(y));
	}
	ASSERT_EQ(mmsb_log_reader_next(b, &rb), 0);
	ASSERT_EQ(n, 3);
	mmsb_log_reader_close(a);
	mmsb_log_reader_close(b);
}

/* Read the whole log; the first error (0 when clean). */
static int read_all(const char *path)
{
	struct mmsb_log_reader *r = mmsb_log_reader_open(path);
	struct mmsb_log_record rec;
	int err;

	if (!r)
		return -errno;
	while ((err = mmsb_log_reader_next(r, &rec)) > 0)
		;
	mmsb_log_reader_close(r);
	return err;
}

TEST_TIMEOUT(every_flipped_byte_is_reported, 120)
{
	const char *path = th_path("f.tlog"), *bad = th_path("bad.tlog");
	uint8_t *orig, *cur;
	size_t n, m;

	workload(path);
	ASSERT_TRUE(orig = fx_read(path, &n));
	for (size_t off = 0; off < n; off++) {
		for (int bit = 0; bit < 8; bit += 3) {
			orig[off] ^= (uint8_t)(1u << bit);
			ASSERT_EQ(fx_write(bad, orig, n), 0);
			int err = read_all(bad);

			if (err >= 0)
				TH_LOG("flip at %zu bit %d not detected", off, bit);
			ASSERT_LT(err, 0);
			ASSERT_NE(err, -ENOMEM);
			/* reading never changes the file */
			ASSERT_TRUE(cur = fx_read(bad, &m));
			ASSERT_EQ(m, n);
			ASSERT_MEM_EQ(cur, orig, n);
			free(cur);
			orig[off] ^= (uint8_t)(1u << bit);
		}
	}
	free(orig);
}

TEST(truncation_in_last_frame_is_torn)
{
	const char *path = th_path("t.tlog"), *bad = th_path("cut.tlog");
	struct mmsb_log_summary sum;
	uint8_t *orig;
	size_t n;

	workload(path);
	ASSERT_EQ(mmsb_log_summarize(path, &sum), 0);
	ASSERT_TRUE(orig = fx_read(path, &n));
	/* the last frame starts where the one before it ends: find it by reading */
	struct mmsb_log_reader *r = mmsb_log_reader_open(path);
	struct mmsb_log_record rec;
	uint64_t last = 0;

	while (mmsb_log_reader_next(r, &rec) > 0)
		last = rec.offset;
	mmsb_log_reader_close(r);
	for (size_t cut = last + 1; cut < n; cut++) {
		ASSERT_EQ(fx_write(bad, orig, cut), 0);
		ASSERT_EQ(read_all(bad), -MMSB_ERR_TORN);
		ASSERT_EQ(mmsb_log_summarize(bad, &sum), -MMSB_ERR_TORN);
		ASSERT_EQ(sum.bad_offset, last);
		ASSERT_EQ(sum.bad_frame, 5);
		ASSERT_EQ(sum.records, 5);
	}
	/* cut exactly at the frame boundary: a clean, shorter log */
	ASSERT_EQ(fx_write(bad, orig, last), 0);
	ASSERT_EQ(read_all(bad), 0);
	free(orig);
}

TEST(absurd_lengths_never_allocated)
{
	const char *path = th_path("abs.tlog");
	struct rlimit rl = { 256u << 20, 256u << 20 };
	static struct fx f;

	/*
	 * With the address space capped, an attempt to allocate would show up as ENOMEM. ASan
	 * and TSan reserve terabytes of shadow: there the error codes alone tell.
	 */
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
	ASSERT_EQ(setrlimit(RLIMIT_AS, &rl), 0);
#else
	(void)rl;
#endif
	fx_v2_log(&f, 2);
	uint32_t huge = 0xfffffff0u;

	memcpy(f.b + 12 + 20, &huge, 4); /* first frame's mask_len */
	ASSERT_EQ(fx_write(path, f.b, f.n), 0);
	ASSERT_EQ(read_all(path), -MMSB_ERR_TORN);

	/* a v3 frame length of 4 GiB */
	workload(th_path("v3.tlog"));
	size_t n;
	uint8_t *p = fx_read(th_path("v3.tlog"), &n);

	ASSERT_TRUE(p);
	memcpy(p + 36, &huge, 4);
	ASSERT_EQ(fx_write(path, p, n), 0);
	int err = read_all(path);

	ASSERT_TRUE(err == -MMSB_ERR_TORN || err == -MMSB_ERR_CORRUPT);
	free(p);
}

TEST(bad_magic_and_version)
{
	const char *path = th_path("x.tlog");
	static struct fx f;

	ASSERT_EQ(fx_write(path, "NOTALOG!\x02\0\0\0", 12), 0);
	ASSERT_FALSE(mmsb_log_reader_open(path));
	ASSERT_EQ(errno, MMSB_ERR_BAD_MAGIC);
	f.n = 0;
	fx_log_header(&f, 9);
	ASSERT_EQ(fx_write(path, f.b, f.n), 0);
	ASSERT_FALSE(mmsb_log_reader_open(path));
	ASSERT_EQ(errno, MMSB_ERR_BAD_VERSION);
	ASSERT_EQ(fx_write(path, "MMSB", 4), 0);
	ASSERT_FALSE(mmsb_log_reader_open(path));
	ASSERT_EQ(errno, MMSB_ERR_TRUNCATED);
}

TEST(recover_cuts_torn_tail_only)
{
	const char *path = th_path("r.tlog");
	uint8_t *orig, *saved, *now;
	size_t n, ns, nn;
	uint64_t cut = 99;

	workload(path);
	ASSERT_TRUE(orig = fx_read(path, &n));
	/* a clean log: nothing to do */
	ASSERT_EQ(mmsb_log_recover(path, &cut), 0);
	ASSERT_EQ(cut, 0);
	/* a torn tail: cut and kept aside, byte for byte */
	ASSERT_EQ(fx_write(path, orig, n - 5), 0);
	ASSERT_EQ(mmsb_log_recover(path, &cut), 0);
	ASSERT_GT(cut, 0);
	ASSERT_TRUE(saved = fx_read(th_path("r.tlog.torn"), &ns));
	ASSERT_EQ(ns, cut);
	ASSERT_MEM_EQ(saved, orig + (n - 5 - cut), cut);
	ASSERT_EQ(read_all(path), 0);
	/* the recovered log can be continued */
	struct mmsb_state *s = open_log(path, MMSB_LOG_APPEND, MMSB_DURABLE_BATCH);

	ASSERT_TRUE(s);
	mmsb_state_close(s);
	free(saved);
	/* damage inside the log is not a torn tail: refused, file untouched */
	ASSERT_EQ(fx_write(path, orig, n), 0);
	orig[60] ^= 0xff;
	ASSERT_EQ(fx_write(path, orig, n), 0);
	ASSERT_EQ(mmsb_log_recover(path, &cut), -MMSB_ERR_CHECKSUM);
	ASSERT_TRUE(now = fx_read(path, &nn));
	ASSERT_EQ(nn, n);
	ASSERT_MEM_EQ(now, orig, n);
	/* a torn log cannot be opened for append until recovered */
	ASSERT_EQ(fx_write(path, orig, 40), 0);
	errno = 0;
	orig[60] ^= 0xff;
	ASSERT_EQ(fx_write(path, orig, n - 1), 0);
	ASSERT_FALSE(open_log(path, MMSB_LOG_APPEND, MMSB_DURABLE_BATCH));
	ASSERT_EQ(errno, MMSB_ERR_TORN);
	free(now);
	free(orig);
}

TEST(durability_policies_count_syscalls)
{
	struct mmsb_delta *d[200];
	const uint8_t m[] = { 1 };
	struct mmsb_stats st;
	uint64_t id;

	for (int pol = 0; pol < 3; pol++) {
		char name[32];

		snprintf(name, sizeof(name), "d%d.tlog", pol);
		struct mmsb_state *s = open_log(th_path(name), MMSB_LOG_CREATE, pol);

		ASSERT_TRUE(s);
		ASSERT_EQ(mmsb_page_create(s, 1, MMSB_LOC_CPU, &id), 0);
		for (int i = 0; i < 200; i++) {
			uint8_t v = (uint8_t)i;

			d[i] = mmsb_delta_new(id, m, 1, &v, 1, 0);
		}
		ASSERT_EQ(mmsb_state_stats_reset(s), 0);
		ASSERT_EQ(mmsb_route_batch(s, d, 200), 0);
		ASSERT_EQ(mmsb_state_stats(s, &st), 0);
		EXPECT_EQ(st.log_records, 200);
		if (pol == MMSB_DURABLE_BATCH) {
			/* group commit: one write and one sync for the whole batch */
			EXPECT_EQ(st.log_writes, 1);
			EXPECT_EQ(st.log_syncs, 1);
		} else if (pol == MMSB_DURABLE_EVERY) {
			/* a batch is all or nothing: every frame durable before its first byte changes */
			EXPECT_EQ(st.log_syncs, 1);
		} else {
			EXPECT_EQ(st.log_syncs, 0);
		}
		for (int i = 0; i < 200; i++) {
			EXPECT_EQ(mmsb_delta_lsn(d[i]), i + 2);
			mmsb_delta_free(d[i]);
		}
		mmsb_state_close(s);
		struct mmsb_log_summary sum;

		ASSERT_EQ(mmsb_log_summarize(th_path(name), &sum), 0);
		EXPECT_EQ(sum.deltas, 200);
	}
}

/*
 * A change to a page with data children: under batch the call's one group commit holds its own
 * frame and the wave's (one write, one fdatasync per call), under every each frame is synced
 * before its change, under none nothing is synced.
 */
TEST(propagating_calls_commit_once)
{
	const uint8_t m[] = { 1 };
	struct mmsb_stats st;

	for (int pol = 0; pol < 3; pol++) {
		char name[32];
		uint8_t buf[8];
		uint8_t v = 1;

		snprintf(name, sizeof(name), "p%d.tlog", pol);
		struct mmsb_state *s = open_log(th_path(name), MMSB_LOG_CREATE, pol);

		ASSERT_TRUE(s);
		/* 1 -> 2 -> 3, passthrough: each call below logs 3 frames */
		for (int i = 0; i < 3; i++)
			ASSERT_EQ(mmsb_page_create(s, sizeof(buf), MMSB_LOC_CPU, NULL), 0);
		ASSERT_EQ(mmsb_edge_add(s, 1, 2, MMSB_EDGE_DATA), 0);
		ASSERT_EQ(mmsb_edge_add(s, 2, 3, MMSB_EDGE_DATA), 0);
		ASSERT_EQ(mmsb_page_set_passthrough(s, 2, 1, NULL, NULL), 0);
		ASSERT_EQ(mmsb_page_set_passthrough(s, 3, 2, NULL, NULL), 0);
		for (int op = 0; op < 4; op++) {
			struct mmsb_delta *d;
			struct mmsb_page_write w = { 1, buf, sizeof(buf) };

			v++;
			memset(buf, v, sizeof(buf));
			ASSERT_TRUE(d = mmsb_delta_new(1, m, 1, &v, 1, 0));
			ASSERT_EQ(mmsb_state_stats_reset(s), 0);
			switch (op) {
			case 0:
				ASSERT_EQ(mmsb_page_update(s, 1, buf, sizeof(buf)), 1);
				break;
			case 1:
				ASSERT_EQ(mmsb_route(s, d), 0);
				break;
			case 2:
				ASSERT_EQ(mmsb_page_update_batch(s, &w, 1), 1);
				break;
			default:
				ASSERT_EQ(mmsb_route_batch(s, &d, 1), 0);
				break;
			}
			ASSERT_EQ(mmsb_state_stats(s, &st), 0);
			EXPECT_EQ(st.log_records, 3);
			EXPECT_EQ(mmsb_page_epoch(s, 3), mmsb_page_epoch(s, 1));
			if (pol == MMSB_DURABLE_BATCH) {
				EXPECT_EQ(st.log_writes, 1);
				EXPECT_EQ(st.log_syncs, 1);
			} else if (pol == MMSB_DURABLE_EVERY) {
				EXPECT_EQ(st.log_writes, 3);
				EXPECT_EQ(st.log_syncs, 3);
			} else {
				EXPECT_EQ(st.log_syncs, 0);
			}
			mmsb_delta_free(d);
		}
		mmsb_state_close(s);
		struct mmsb_state *r = mmsb_replay(th_path(name), NULL);

		ASSERT_TRUE(r);
		EXPECT_EQ(mmsb_page_epoch(r, 3), 4);
		mmsb_state_close(r);
	}
}

TEST_TIMEOUT(header_bit_flips_are_damage, 120)
{
	const char *path = th_path("h.tlog"), *bad = th_path("hbad.tlog");
	uint8_t *orig, *cur;
	size_t n, m;
	uint64_t cut;
	char torn[4096];

	workload(path);
	ASSERT_TRUE(orig = fx_read(path, &n));
	snprintf(torn, sizeof(torn), "%s.torn", bad);
	for (size_t off = 0; off < 36; off++) {
		for (int bit = 0; bit < 8; bit++) {
			struct mmsb_log_summary sum;
			struct mmsb_state *r;
			int err;

			orig[off] ^= (uint8_t)(1u << bit);
			ASSERT_EQ(fx_write(bad, orig, n), 0);
			/* verify rejects it, and never as another format with fewer frames */
			err = mmsb_log_summarize(bad, &sum);
			if (!err)
				TH_LOG("flip at %zu bit %d verifies", off, bit);
			ASSERT_LT(err, 0);
			ASSERT_FALSE(r = mmsb_replay(bad, NULL));
			/* recover refuses and leaves every byte where it was */
			cut = 99;
			err = mmsb_log_recover(bad, &cut);
			if (!err)
				TH_LOG("flip at %zu bit %d: recover cut %llu", off, bit,
				       (unsigned long long)cut);
			ASSERT_LT(err, 0);
			ASSERT_NE(err, -MMSB_ERR_TORN);
			ASSERT_TRUE(cur = fx_read(bad, &m));
			ASSERT_EQ(m, n);
			ASSERT_MEM_EQ(cur, orig, n);
			free(cur);
			ASSERT_NE(access(torn, F_OK), 0);
			orig[off] ^= (uint8_t)(1u << bit);
		}
	}
	/* a v3 header alone (no frames yet) with its version flipped is damage too */
	for (int bit = 0; bit < 8; bit++) {
		struct mmsb_log_summary sum;

		orig[8] ^= (uint8_t)(1u << bit);
		ASSERT_EQ(fx_write(bad, orig, 36), 0);
		ASSERT_LT(mmsb_log_summarize(bad, &sum), 0);
		ASSERT_LT(mmsb_log_recover(bad, &cut), 0);
		orig[8] ^= (uint8_t)(1u << bit);
	}
	/* a header torn at creation: set aside, replaced by a fresh one that verifies */
	for (size_t len = 1; len < 36; len++) {
		struct mmsb_log_summary sum;

		unlink(torn);
		ASSERT_EQ(fx_write(bad, orig, len), 0);
		ASSERT_LT(mmsb_log_summarize(bad, &sum), 0);
		ASSERT_EQ(mmsb_log_recover(bad, &cut), 0);
		ASSERT_EQ(cut, len);
		ASSERT_EQ(mmsb_log_summarize(bad, &sum), 0);
		ASSERT_EQ(sum.version, 3);
		ASSERT_EQ(access(torn, F_OK), 0);
	}
	free(orig);
}

TEST(empty_and_special_files_are_not_logs)
{
	const char *path = th_path("empty.tlog"), *fifo = th_path("fifo.tlog");
	const char *files[] = { path, "/dev/null", "/dev/zero", fifo };
	struct mmsb_log_summary sum;
	uint64_t cut;

	ASSERT_EQ(fx_write(path, "", 0), 0);
	ASSERT_EQ(mkfifo(fifo, 0600), 0);
	for (size_t i = 0; i < 4; i++) {
		/* refused without blocking on the FIFO (the test's timeout would tell) */
		ASSERT_LT(mmsb_log_summarize(files[i], &sum), 0);
		ASSERT_FALSE(mmsb_log_reader_open(files[i]));
		ASSERT_FALSE(mmsb_replay(files[i], NULL));
		ASSERT_LT(mmsb_log_recover(files[i], &cut), 0);
		if (i)
			ASSERT_FALSE(open_log(files[i], MMSB_LOG_APPEND, MMSB_DURABLE_BATCH));
	}
	/* an empty file is still where a new log may begin */
	struct mmsb_state *s = open_log(path, MMSB_LOG_APPEND, MMSB_DURABLE_BATCH);

	ASSERT_TRUE(s);
	mmsb_state_close(s);
	ASSERT_EQ(mmsb_log_summarize(path, &sum), 0);
}

#define BIG (512u << 10) /* a dense frame of it passes the 256 KiB write threshold of `none` */

/* Everything a failed commit must leave alone: bytes and epochs of both pages. */
struct snap {
	uint8_t *a, *c;
	int64_t ea, ec;
};

static void snap_take(struct mmsb_state *s, struct snap *x)
{
	x->a = malloc(BIG);
	x->c = malloc(BIG);
	ASSERT_EQ(mmsb_page_read(s, 1, x->a, BIG, 0), BIG);
	ASSERT_EQ(mmsb_page_read(s, 2, x->c, BIG, 0), BIG);
	x->ea = mmsb_page_epoch(s, 1);
	x->ec = mmsb_page_epoch(s, 2);
}

static void snap_same(struct mmsb_state *s, struct snap *x, bool page1_may_move)
{
	struct snap y;

	snap_take(s, &y);
	if (!page1_may_move) {
		ASSERT_MEM_EQ(y.a, x->a, BIG);
		ASSERT_EQ(y.ea, x->ea);
	}
	ASSERT_MEM_EQ(y.c, x->c, BIG);
	ASSERT_EQ(y.ec, x->ec);
	free(y.a);
	free(y.c);
	free(x->a);
	free(x->c);
}

/* Every byte of the child depends on the parent's first: its recompute delta is page-sized. */
static int spread(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len, void *ctx)
{
	(void)src_len;
	(void)ctx;
	for (size_t i = 0; i < dst_len; i++)
		dst[i] = (uint8_t)(src[0] + i);
	return 0;
}

/*
 * Ops 0-3 change a page without children; ops 4-7 change one byte of page 1, whose child page 2
 * then takes a page-sized frame: under batch and none the two share the call's one write, which
 * fails, and both pages go back; under every page 1's frame was synced before it changed and stays.
 */
TEST_TIMEOUT(failed_commit_changes_nothing, 120)
{
	const char *path = th_path("fsz.tlog");
	enum mmsb_durability durs[] = { MMSB_DURABLE_BATCH, MMSB_DURABLE_NONE, MMSB_DURABLE_EVERY };

	signal(SIGXFSZ, SIG_IGN); /* a write past RLIMIT_FSIZE is EFBIG, not a kill */
	for (size_t k = 0; k < 3; k++)
		for (int op = 0; op < 9; op++) {
			struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
			uint8_t *b = malloc(BIG);
			struct mmsb_state *s, *r;
			struct mmsb_divergence dv;
			struct mmsb_counters c0, c1;
			bool kids = op >= 4, moved = kids && durs[k] == MMSB_DURABLE_EVERY;
			struct snap x;
			struct stat st;
			int err;

			ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &rl), 0);
			unlink(path);
			ASSERT_TRUE(s = open_log(path, MMSB_LOG_CREATE, durs[k]));
			ASSERT_EQ(mmsb_page_create(s, BIG, MMSB_LOC_CPU, NULL), 0);
			ASSERT_EQ(mmsb_page_create(s, BIG, MMSB_LOC_CPU, NULL), 0);
			if (kids) {
				/* page 2 derives from page 1: the wave's frame is what fails */
				ASSERT_EQ(mmsb_edge_add(s, 1, 2, MMSB_EDGE_DATA), 0);
				ASSERT_EQ(mmsb_page_set_passthrough(s, 2, 1, spread, NULL), 0);
			}
			memset(b, 1, BIG);
			ASSERT_EQ(mmsb_page_update(s, 1, b, BIG), 1);
			ASSERT_EQ(mmsb_state_flush(s), 0);
			ASSERT_EQ(stat(path, &st), 0);
			/* room for a one-byte frame of page 1 (a 64 KiB mask), none for a dense one */
			rl.rlim_cur = (rlim_t)st.st_size + (100u << 10);
			ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &rl), 0);
			snap_take(s, &x);
			ASSERT_EQ(mmsb_state_counters(s, &c0), 0);
			memset(b, 2, BIG);
			struct mmsb_delta *d = mmsb_delta_new(2, b, BIG, b, BIG, 0);
			struct mmsb_delta *d1 = mmsb_delta_new(1, b, BIG, b, BIG, 0);
			struct mmsb_delta *ds[2] = { d1, d };
			struct mmsb_page_write w[2] = { { 1, b, BIG }, { 2, b, BIG } };
			uint8_t one = 9, bit = 1;
			struct mmsb_delta *e = mmsb_delta_new(1, &bit, 1, &one, 1, 0);

			ASSERT_TRUE(d && d1 && e);
			if (kids) {
				b[0] = 9; /* one byte: a small frame for page 1, a full one for page 2 */
				memset(b + 1, 1, BIG - 1);
			}
			switch (op) {
			case 0:
				err = mmsb_page_update(s, 2, b, BIG);
				break;
			case 1:
				err = mmsb_route(s, d);
				break;
			case 2:
				err = mmsb_page_update_batch(s, w, 2);
				break;
			case 3:
				err = mmsb_route_batch(s, ds, 2);
				break;
			case 4:
				err = mmsb_page_update(s, 1, b, BIG);
				break;
			case 5:
				err = mmsb_route(s, e);
				break;
			case 6:
				err = mmsb_page_update_batch(s, w, 1);
				break;
			case 7:
				err = mmsb_route_batch(s, &e, 1);
				break;
			default:
				/* a range write: its undo holds the range, not the page */
				err = mmsb_page_write(s, 1, 0, b, 1);
				break;
			}
			if (err >= 0)
				TH_LOG("durability %d op %d: %d", (int)durs[k], op, err);
			ASSERT_LT(err, 0);
			snap_same(s, &x, moved);
			/* the delta ids the call took are given back with its changes */
			ASSERT_EQ(mmsb_state_counters(s, &c1), 0);
			EXPECT_EQ(c1.next_delta_id, c0.next_delta_id + moved);
			if (moved) {
				/* every: page 1's one byte was synced before it changed */
				EXPECT_EQ(mmsb_page_epoch(s, 1), x.ea + 1);
			}
			/* memory is what the log holds */
			rl.rlim_cur = RLIM_INFINITY;
			ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &rl), 0);
			ASSERT_TRUE(r = mmsb_replay(path, NULL));
			ASSERT_EQ(mmsb_state_diverge(s, r, &dv), 0);
			ASSERT_EQ(dv.pages_differing + dv.only_in_a + dv.only_in_b, 0);
			ASSERT_EQ(mmsb_page_epoch(s, 1), mmsb_page_epoch(r, 1));
			ASSERT_EQ(mmsb_page_epoch(s, 2), mmsb_page_epoch(r, 2));
			mmsb_state_close(r);
			mmsb_delta_free(d);
			mmsb_delta_free(d1);
			mmsb_delta_free(e);
			mmsb_state_close(s);
			free(b);
		}
}
