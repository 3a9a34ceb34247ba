// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Replay reproduces live state byte for byte; bounds by LSN, epoch and time. */
#include <mmsb/mmsb.h>
#include <time.h>

#include "fixtures.h"
#include "harness.h"

static struct mmsb_state *open_log(const char *path)
{
	MMSB_OPTS(mmsb_state_opts, o, .log_path = path, .durability = MMSB_DURABLE_NONE);

	return mmsb_state_open(&o);
}

static int xor_parents(struct mmsb_state *s, uint64_t id, uint8_t *out, size_t size, void *ctx)
{
	struct mmsb_edge e[8];
	uint8_t buf[256];
	ssize_t n = mmsb_edge_parents(s, id, e, 8);

	(void)ctx;
	memset(out, 0, size);
	for (ssize_t i = 0; i < n && i < 8; i++) {
		ssize_t got = mmsb_page_read(s, e[i].page, buf, sizeof(buf), 0);

		for (ssize_t k = 0; k < got && (size_t)k < size; k++)
			out[k] ^= buf[k];
	}
	return 0;
}

/* A random workload over a graph of pages; returns the number of operations done. */
static int random_workload(struct mmsb_state *s, unsigned seed, int ops)
{
	uint64_t ids[64];
	int n = 0, done = 0;

	srand(seed);
	for (int i = 0; i < 16; i++) {
		ASSERT_EQ(mmsb_page_create(s, 16 + (size_t)(rand() % 200), MMSB_LOC_CPU, &ids[n]),
			  0);
		n++;
	}
	for (int i = 0; i < 24; i++) {
		int a = rand() % n, b = rand() % n;

		if (a == b)
			continue;
		if (a > b) {
			int t = a;

			a = b;
			b = t;
		}
		ASSERT_EQ(
			mmsb_edge_add(s, ids[a], ids[b], rand() % 2 ? MMSB_EDGE_DATA : rand() % 4),
			0);
	}
	for (int i = 0; i < n; i++)
		if (rand() % 2)
			ASSERT_EQ(mmsb_page_set_recompute(s, ids[i], xor_parents, NULL), 0);
	for (int op = 0; op < ops; op++, done++) {
		uint64_t id = ids[rand() % n];
		ssize_t size = mmsb_page_size(s, id);
		uint8_t buf[256], mask[256];

		if (size < 0)
			continue; /* freed */
		switch (rand() % 6) {
		case 0: /* full update */
			for (ssize_t k = 0; k < size; k++)
				buf[k] = (uint8_t)rand();
			ASSERT_GE(mmsb_page_update(s, id, buf, (size_t)size), 0);
			break;
		case 1: { /* sparse */
			size_t cnt = 0;

			for (ssize_t k = 0; k < size; k++)
				if ((mask[k] = rand() % 5 == 0))
					buf[cnt++] = (uint8_t)rand();
			struct mmsb_delta *d =
				mmsb_delta_new(id, mask, (size_t)size, buf, cnt, MMSB_DELTA_SPARSE);

			ASSERT_TRUE(d);
			ASSERT_EQ(mmsb_route(s, d), 0);
			mmsb_delta_free(d);
			break;
		}
		case 2: { /* a batch over several pages */
			struct mmsb_delta *d[4];
			int k = 0;

			for (int j = 0; j < 4; j++) {
				uint64_t pid = ids[rand() % n];
				ssize_t sz = mmsb_page_size(s, pid);

				if (sz < 0)
					continue;
				for (ssize_t q = 0; q < sz; q++) {
					mask[q] = rand() % 3 == 0;
					buf[q] = (uint8_t)rand();
				}
				d[k++] = mmsb_delta_new(pid, mask, (size_t)sz, buf, (size_t)sz, 0);
			}
			ASSERT_EQ(mmsb_route_batch(s, d, (size_t)k), 0);
			for (int j = 0; j < k; j++)
				mmsb_delta_free(d[j]);
			break;
		}
		case 3: /* occasionally free a page or make a new one */
			if (rand() % 8 == 0 && n > 4) {
				ASSERT_EQ(mmsb_page_free(s, id), 0);
			} else if (n < 64 && rand() % 4 == 0) {
				ASSERT_EQ(mmsb_page_create(s, 32, MMSB_LOC_CPU, &ids[n]), 0);
				n++;
			}
			break;
		default: { /* a prefix write */
			uint8_t m[8] = { 1, 1, 1, 1, 1, 1, 1, 1 };

			for (int q = 0; q < 8; q++)
				buf[q] = (uint8_t)rand();
			struct mmsb_delta *d = mmsb_delta_new(id, m, 8, buf, 8, 0);

			ASSERT_EQ(mmsb_route(s, d), 0);
			mmsb_delta_free(d);
		}
		}
	}
	return done;
}

TEST_TIMEOUT(replay_matches_live_after_random_workloads, 120)
{
	for (unsigned seed = 1; seed <= 20; seed++) {
		char name[32];
		struct mmsb_divergence d;

		snprintf(name, sizeof(name), "w%u.tlog", seed);
		struct mmsb_state *s = open_log(th_path(name));

		ASSERT_TRUE(s);
		random_workload(s, seed, 300);
		ASSERT_EQ(mmsb_state_verify(s, &d), 0);
		ASSERT_EQ(d.pages_differing, 0);
		ASSERT_EQ(d.pages_compared, mmsb_page_count(s));
		struct mmsb_state *r = mmsb_replay(th_path(name), NULL);

		ASSERT_TRUE(r);
		/* epochs too, not just bytes */
		uint64_t ids[128];
		ssize_t n = mmsb_page_list(s, ids, 128);

		for (ssize_t i = 0; i < n; i++)
			ASSERT_EQ(mmsb_page_epoch(s, ids[i]), mmsb_page_epoch(r, ids[i]));
		mmsb_state_close(r);
		mmsb_state_close(s);
	}
}

TEST(replay_to_lsn_matches_a_midpoint_checkpoint)
{
	const char *log = th_path("m.tlog"), *ck = th_path("m.ckpt");
	struct mmsb_state *s = open_log(log), *mid = mmsb_state_open(NULL), *r;
	struct mmsb_counters c;
	struct mmsb_divergence d;

	ASSERT_TRUE(s);
	random_workload(s, 99, 150);
	ASSERT_EQ(mmsb_checkpoint_write(s, ck), 0);
	ASSERT_EQ(mmsb_state_counters(s, &c), 0);
	random_workload(s, 100, 150); /* more pages, more changes */
	ASSERT_EQ(mmsb_state_flush(s), 0);

	MMSB_OPTS(mmsb_replay_opts, o, .to_lsn = c.next_lsn - 1);
	ASSERT_TRUE(r = mmsb_replay(log, &o));
	ASSERT_EQ(mmsb_checkpoint_load(mid, ck), 0);
	ASSERT_EQ(mmsb_state_diverge(mid, r, &d), 0);
	ASSERT_EQ(d.pages_differing + d.only_in_a + d.only_in_b, 0);
	mmsb_state_close(r);

	/* checkpoint + the log after it == the live state */
	MMSB_OPTS(mmsb_replay_opts, o2, .checkpoint = ck);
	ASSERT_TRUE(r = mmsb_replay(log, &o2));
	ASSERT_EQ(mmsb_state_diverge(s, r, &d), 0);
	ASSERT_EQ(d.pages_differing + d.only_in_a + d.only_in_b, 0);
	/* and the graph comes from the checkpoint */
	EXPECT_GT(mmsb_edge_count(r), 0);
	mmsb_state_close(r);
	mmsb_state_close(mid);
	mmsb_state_close(s);
}

TEST(replay_refuses_a_foreign_checkpoint)
{
	struct mmsb_state *a = open_log(th_path("a.tlog")), *b = open_log(th_path("b.tlog"));

	ASSERT_TRUE(a && b);
	ASSERT_EQ(mmsb_checkpoint_write(a, th_path("a.ckpt")), 0);
	ASSERT_EQ(mmsb_state_flush(b), 0);
	MMSB_OPTS(mmsb_replay_opts, o, .checkpoint = th_path("a.ckpt"));
	ASSERT_FALSE(mmsb_replay(th_path("b.tlog"), &o));
	ASSERT_EQ(errno, MMSB_ERR_LOG_FOREIGN);
	mmsb_state_close(a);
	mmsb_state_close(b);
}

TEST(replay_to_epoch_and_timestamp)
{
	const char *log = th_path("e.tlog");
	struct mmsb_state *s = open_log(log), *r;
	uint8_t b[4], out[4];
	uint64_t id, ts_after_2 = 0;

	ASSERT_TRUE(s);
	ASSERT_EQ(mmsb_page_create(s, 4, MMSB_LOC_CPU, &id), 0);
	for (int i = 1; i <= 4; i++) {
		memset(b, i, 4);
		ASSERT_EQ(mmsb_page_update(s, id, b, 4), 1);
		if (i == 2) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts_after_2 = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
		}
	}
	ASSERT_EQ(mmsb_state_flush(s), 0);
	MMSB_OPTS(mmsb_replay_opts, oe, .to_epoch = 3);
	ASSERT_TRUE(r = mmsb_replay(log, &oe));
	ASSERT_EQ(mmsb_page_read(r, id, out, 4, 0), 4);
	EXPECT_EQ(out[0], 3);
	EXPECT_EQ(mmsb_page_epoch(r, id), 3);
	mmsb_state_close(r);
	MMSB_OPTS(mmsb_replay_opts, ot, .to_timestamp = ts_after_2);
	ASSERT_TRUE(r = mmsb_replay(log, &ot));
	ASSERT_EQ(mmsb_page_read(r, id, out, 4, 0), 4);
	EXPECT_EQ(out[0], 2);
	mmsb_state_close(r);
	mmsb_state_close(s);
}

TEST(replay_original_log_with_template)
{
	const char *log = th_path("v2.tlog");
	struct mmsb_state *tpl = mmsb_state_open(NULL), *r;
	static struct fx f;
	uint8_t out[5];

	fx_v2_log(&f, 2);
	ASSERT_EQ(fx_write(log, f.b, f.n), 0);
	ASSERT_EQ(mmsb_page_create_id(tpl, 1, 5, MMSB_LOC_CPU), 0);
	/* page 2 is not in the template: its delta is skipped, as the original did */
	MMSB_OPTS(mmsb_replay_opts, o, .template_state = tpl);
	ASSERT_TRUE(r = mmsb_replay(log, &o));
	ASSERT_EQ(mmsb_page_count(r), 1);
	ASSERT_EQ(mmsb_page_read(r, 1, out, 5, 0), 5);
	const uint8_t want[] = { 0x10, 0xa1, 0, 0x13, 0xa4 };

	ASSERT_MEM_EQ(out, want, 5);
	mmsb_state_close(r);
	mmsb_state_close(tpl);
}

/* Every page of a and b: same ids, bytes and epochs; and the same id counters. */
static void same_pages(struct mmsb_state *a, struct mmsb_state *b)
{
	uint64_t ia[16], ib[16];
	uint8_t da[64], db[64];
	struct mmsb_counters ca, cb;
	ssize_t n = mmsb_page_list(a, ia, 16);

	ASSERT_EQ(mmsb_page_list(b, ib, 16), n);
	ASSERT_MEM_EQ(ia, ib, (size_t)n * 8);
	for (ssize_t i = 0; i < n; i++) {
		ASSERT_EQ(mmsb_page_size(a, ia[i]), mmsb_page_size(b, ia[i]));
		ASSERT_EQ(mmsb_page_read(a, ia[i], da, 64, 0), mmsb_page_read(b, ia[i], db, 64, 0));
		ASSERT_MEM_EQ(da, db, (size_t)mmsb_page_size(a, ia[i]));
		ASSERT_EQ(mmsb_page_epoch(a, ia[i]), mmsb_page_epoch(b, ia[i]));
	}
	ASSERT_EQ(mmsb_state_counters(a, &ca), 0);
	ASSERT_EQ(mmsb_state_counters(b, &cb), 0);
	ASSERT_EQ(ca.next_page_id, cb.next_page_id);
	ASSERT_EQ(ca.next_delta_id, cb.next_delta_id);
}

TEST(append_restores_the_state_from_its_log)
{
	const char *path = th_path("app.tlog");
	MMSB_OPTS(mmsb_state_opts, o, .log_path = path, .log_mode = MMSB_LOG_APPEND);
	struct mmsb_state *s, *r;
	uint8_t b[64];
	uint64_t a, c, d;

	for (int round = 0; round < 3; round++) {
		ASSERT_TRUE(s = mmsb_state_open(&o));
		if (round) {
			/* what the last round left, before anything new */
			ASSERT_TRUE(r = mmsb_replay(path, NULL));
			same_pages(s, r);
			mmsb_state_close(r);
			ASSERT_EQ(mmsb_page_epoch(s, 1), round + 1);
		}
		ASSERT_EQ(mmsb_page_create(s, 32, MMSB_LOC_CPU, &a), 0);
		ASSERT_EQ(a, (uint64_t)round * 3 + 1); /* ids go on from the log's */
		ASSERT_EQ(mmsb_page_create(s, 64, MMSB_LOC_CPU, &c), 0);
		if (!round) {
			memset(b, 7, sizeof(b));
			ASSERT_EQ(mmsb_page_update(s, a, b, 32), 1);
		}
		memset(b, round + 1, sizeof(b));
		ASSERT_EQ(mmsb_page_update(s, 1, b, 32), 1);
		ASSERT_EQ(mmsb_page_update(s, c, b, 64), 1);
		ASSERT_EQ(mmsb_page_free(s, c), 0);
		ASSERT_EQ(mmsb_page_create(s, 16, MMSB_LOC_CPU, &d), 0);
		ASSERT_GT(d, c); /* a freed id is not reused: the counter came back */
		ASSERT_EQ(mmsb_state_verify(s, NULL), 0);
		ASSERT_TRUE(r = mmsb_replay(path, NULL));
		same_pages(s, r);
		mmsb_state_close(r);
		mmsb_state_close(s);
	}
	struct mmsb_log_summary sum;

	ASSERT_EQ(mmsb_log_summarize(path, &sum), 0);
	ASSERT_EQ(sum.page_creates, 9);
}

static void copy_file(const char *from, const char *to)
{
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	char buf[4096];
	size_t n;

	ASSERT_TRUE(in && out);
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		ASSERT_EQ(fwrite(buf, 1, n, out), n);
	fclose(in);
	ASSERT_EQ(fclose(out), 0);
}

/* s equals what its log replays to, and the log reads to its end */
static void log_describes(struct mmsb_state *s, const char *path)
{
	struct mmsb_log_summary sum;
	struct mmsb_state *r;

	ASSERT_EQ(mmsb_state_verify(s, NULL), 0);
	ASSERT_TRUE(r = mmsb_replay(path, NULL));
	same_pages(s, r);
	mmsb_state_close(r);
	ASSERT_EQ(mmsb_log_summarize(path, &sum), 0);
}

TEST(checkpoint_load_on_a_logged_state_replays_the_tail)
{
	const char *path = th_path("ct.tlog"), *ck = th_path("ct.ckpt"), *early = th_path("e.tlog");
	MMSB_OPTS(mmsb_state_opts, o, .log_path = path, .log_mode = MMSB_LOG_APPEND);
	MMSB_OPTS(mmsb_state_opts, oe, .log_path = early, .log_mode = MMSB_LOG_APPEND);
	struct mmsb_state *s, *f, *r;
	struct mmsb_counters c0, c1;
	uint8_t b[32];
	uint64_t a, c, d;

	ASSERT_TRUE(s = mmsb_state_open(&o));
	ASSERT_EQ(mmsb_page_create(s, 32, MMSB_LOC_CPU, &a), 0);
	memset(b, 1, sizeof(b));
	ASSERT_EQ(mmsb_page_update(s, a, b, 32), 1);
	ASSERT_EQ(mmsb_checkpoint_write(s, ck), 0);
	/* the log's tail after the checkpoint: a page created, both changed, one freed */
	ASSERT_EQ(mmsb_page_create(s, 32, MMSB_LOC_CPU, &c), 0);
	ASSERT_EQ(mmsb_page_create(s, 16, MMSB_LOC_CPU, &d), 0);
	memset(b, 2, sizeof(b));
	ASSERT_EQ(mmsb_page_update(s, a, b, 32), 1);
	ASSERT_EQ(mmsb_page_update(s, c, b, 32), 1);
	ASSERT_EQ(mmsb_page_free(s, d), 0);
	mmsb_state_close(s);

	ASSERT_TRUE(s = mmsb_state_open(&o));
	ASSERT_EQ(mmsb_checkpoint_load(s, ck), 0);
	/* checkpoint plus the log's tail: the state the log describes, counters past it all */
	log_describes(s, path);
	ASSERT_EQ(mmsb_page_epoch(s, a), 2);
	ASSERT_EQ(mmsb_page_create(s, 32, MMSB_LOC_CPU, &d), 0);
	ASSERT_EQ(d, c + 2); /* not c again, and not the freed one */
	memset(b, 3, sizeof(b));
	ASSERT_EQ(mmsb_page_update(s, d, b, 32), 1);
	ASSERT_EQ(mmsb_page_update(s, a, b, 32), 1);
	log_describes(s, path);

	/* refused, the state unchanged: another log's checkpoint, and one of no log */
	f = mmsb_state_open(NULL);
	ASSERT_TRUE(f);
	ASSERT_EQ(mmsb_page_create(f, 8, MMSB_LOC_CPU, &c), 0);
	ASSERT_EQ(mmsb_checkpoint_write(f, th_path("none.ckpt")), 0);
	mmsb_state_close(f);
	MMSB_OPTS(mmsb_state_opts, of, .log_path = th_path("f.tlog"));
	ASSERT_TRUE(f = mmsb_state_open(&of));
	ASSERT_EQ(mmsb_page_create(f, 8, MMSB_LOC_CPU, &c), 0);
	ASSERT_EQ(mmsb_checkpoint_write(f, th_path("f.ckpt")), 0);
	mmsb_state_close(f);
	ASSERT_EQ(mmsb_state_counters(s, &c0), 0);
	ASSERT_TRUE(r = mmsb_replay(path, NULL));
	ASSERT_EQ(mmsb_checkpoint_load(s, th_path("f.ckpt")), -MMSB_ERR_LOG_FOREIGN);
	ASSERT_EQ(mmsb_checkpoint_load(s, th_path("none.ckpt")), -MMSB_ERR_LOG_FOREIGN);
	ASSERT_EQ(mmsb_state_counters(s, &c1), 0);
	ASSERT_MEM_EQ(&c0, &c1, sizeof(c0));
	same_pages(s, r);
	mmsb_state_close(r);
	log_describes(s, path);

	/* this log's checkpoint at an LSN a shorter copy of the log does not hold */
	ASSERT_EQ(mmsb_state_flush(s), 0);
	copy_file(path, early);
	memset(b, 4, sizeof(b));
	ASSERT_EQ(mmsb_page_update(s, d, b, 32), 1);
	ASSERT_EQ(mmsb_checkpoint_write(s, ck), 0);
	mmsb_state_close(s);
	ASSERT_TRUE(s = mmsb_state_open(&oe));
	ASSERT_EQ(mmsb_state_counters(s, &c0), 0);
	ASSERT_EQ(mmsb_checkpoint_load(s, ck), -MMSB_ERR_LOG_FOREIGN);
	ASSERT_EQ(mmsb_state_counters(s, &c1), 0);
	ASSERT_MEM_EQ(&c0, &c1, sizeof(c0));
	log_describes(s, early);
	mmsb_state_close(s);
}
