// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The workloads of mmsb-bench: every key of the original suite with its original parameters
 * (docs/benchmarks.md), then our stricter v2 keys. This file: the registry and the timed keys;
 * keys_stress.c: the stress keys, run once.
 *
 * Rules kept from the reference: every timed update changes bytes (two buffers alternate, so the
 * original's no-op early return is never what we time); states that the original gave a log get
 * one, in a scratch directory, with durability "none" (the original wrote each frame and never
 * synced; "none" never syncs either); seeds are fixed.
 */
#include <errno.h>
#include <math.h>
#include <mmsb/mmsb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keys.h"
#include "tool_helpers.h"

static uint64_t rng_state;

uint64_t rnd(void)
{
	/* xorshift64*: fast, seeded, good enough for payloads and picks */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1Dull;
}

void fill_random(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rnd();
}

void seed(void)
{
	rng_state = benv.seed ? benv.seed : 0x9E3779B97F4A7C15ull;
}

static void scratch(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", benv.dir, name);
}

struct mmsb_state *open_logged(struct bench_ctx *c, const char *name, enum mmsb_durability dur)
{
	scratch(c->path, sizeof(c->path), name);
	MMSB_OPTS(mmsb_state_opts, o, .log_path = c->path, .log_mode = MMSB_LOG_TRUNCATE,
		  .durability = dur);
	return mmsb_state_open(&o);
}

void teardown_common(struct bench_ctx *c)
{
	mmsb_state_close(c->s2);
	mmsb_state_close(c->s);
	free(c->buf[0]);
	free(c->buf[1]);
	free(c->p);
	free(c->f);
	free(c->b);
	if (c->path[0])
		unlink(c->path);
	if (c->path2[0])
		unlink(c->path2);
}

/* update_page with the next of two buffers: 1 when bytes changed, as every timed update must */
static int flip_update(struct bench_ctx *c, uint64_t id)
{
	int r = mmsb_page_update(c->s, id, c->buf[c->flip], c->size);

	c->flip ^= 1;
	return r == 1 ? 0 : r < 0 ? r : -EAGAIN;
}

/* ---- allocation ---- */

static int alloc_run(size_t size)
{
	struct mmsb_state *s = mmsb_state_open(NULL);
	uint64_t id;
	int err;

	if (!s)
		return -errno;
	err = mmsb_page_create(s, size, MMSB_LOC_CPU, &id);
	mmsb_state_close(s);
	return err;
}

/* A logged state's page create, the page freed untimed: what a create costs once warm. */
static int create_logged_setup(struct bench_ctx *c)
{
	c->s = open_logged(c, "create.tlog", MMSB_DURABLE_NONE);
	return c->s ? 0 : -errno;
}

static int create_logged_run(struct bench_ctx *c)
{
	return mmsb_page_create(c->s, SMALL_PAGE, MMSB_LOC_CPU, &c->ids[0]);
}

static int create_logged_post(struct bench_ctx *c)
{
	return mmsb_page_free(c->s, c->ids[0]);
}

static int alloc_1kb(struct bench_ctx *c)
{
	(void)c;
	return alloc_run(SMALL_PAGE);
}

static int alloc_1mb(struct bench_ctx *c)
{
	(void)c;
	return alloc_run(LARGE_PAGE);
}

/* The GPU twins: a GPU page; -MMSB_ERR_NO_GPU (the key is skipped, with the reason) without. */
static int alloc_gpu_run(size_t size)
{
	struct mmsb_state *s = mmsb_state_open(NULL);
	uint64_t id;
	int err;

	if (!s)
		return -errno;
	err = mmsb_page_create(s, size, MMSB_LOC_GPU, &id);
	mmsb_state_close(s);
	return err;
}

static int alloc_gpu_setup(struct bench_ctx *c)
{
	struct mmsb_gpu_info gi = { .sz = sizeof(gi) };

	(void)c;
	return mmsb_gpu_info(&gi);
}

static int alloc_gpu_1kb(struct bench_ctx *c)
{
	(void)c;
	return alloc_gpu_run(SMALL_PAGE);
}

static int alloc_gpu_1mb(struct bench_ctx *c)
{
	(void)c;
	return alloc_gpu_run(LARGE_PAGE);
}

/* ---- delta ---- */

static int delta_setup(struct bench_ctx *c, size_t size, size_t first, size_t count, bool random)
{
	seed();
	c->s = open_logged(c, "delta.tlog", MMSB_DURABLE_NONE);
	c->size = size;
	c->buf[0] = calloc(1, size);
	c->buf[1] = calloc(1, size);
	if (!c->s || !c->buf[0] || !c->buf[1])
		return -ENOMEM;
	if (random) {
		fill_random(c->buf[0], size);
		fill_random(c->buf[1], size);
	} else {
		/* bytes [first, first + count) become 0xFF, then back to 0: the same bytes change */
		memset(c->buf[0] + first, 0xff, count);
	}
	return mmsb_page_create(c->s, size, MMSB_LOC_CPU, &c->ids[0]);
}

/* the delta keys on a GPU page (update_page: diffed on the mirror, applied where routed) */
static int delta_gpu_setup(struct bench_ctx *c, size_t first, size_t count, bool random)
{
	int err = delta_setup(c, LARGE_PAGE, first, count, random);

	if (err)
		return err;
	err = mmsb_page_free(c->s, c->ids[0]);
	return err ? err : mmsb_page_create(c->s, LARGE_PAGE, MMSB_LOC_GPU, &c->ids[0]);
}

static int delta_gpu_sparse_setup(struct bench_ctx *c)
{
	return delta_gpu_setup(c, 0, 256, false); /* the first 256 B, as the original */
}

static int delta_gpu_dense_setup(struct bench_ctx *c)
{
	return delta_gpu_setup(c, 0, 0, true);
}

static int delta_dense_256k_setup(struct bench_ctx *c)
{
	return delta_setup(c, LARGE_PAGE, 0, 0, true);
}

static int delta_sparse_setup(struct bench_ctx *c)
{
	return delta_setup(c, SMALL_PAGE, 1, 10, false); /* bytes 1-10: 1% */
}

static int delta_dense_setup(struct bench_ctx *c)
{
	return delta_setup(c, SMALL_PAGE, 0, 0, true);
}

static int delta_sparse_256k_setup(struct bench_ctx *c)
{
	return delta_setup(c, LARGE_PAGE, 0, 256, false); /* the first 256 B: 0.1% */
}

static int delta_run(struct bench_ctx *c)
{
	return flip_update(c, c->ids[0]);
}

/* A 64 MiB page whose 10 bytes at 40 MiB flip with mmsb_page_write(): the write's cost only. */
#define WRITE_PAGE (64u << 20)
#define WRITE_AT (40u << 20)

static int write_10b_setup(struct bench_ctx *c)
{
	seed();
	c->s = open_logged(c, "write.tlog", MMSB_DURABLE_NONE);
	c->size = 10;
	c->buf[0] = malloc(10);
	c->buf[1] = calloc(1, 10);
	if (!c->s || !c->buf[0] || !c->buf[1])
		return -ENOMEM;
	memset(c->buf[0], 0xff, 10);
	return mmsb_page_create(c->s, WRITE_PAGE, MMSB_LOC_CPU, &c->ids[0]);
}

static int write_10b_run(struct bench_ctx *c)
{
	int r = mmsb_page_write(c->s, c->ids[0], WRITE_AT, c->buf[c->flip], 10);

	c->flip ^= 1;
	return r == 1 ? 0 : r < 0 ? r : -EAGAIN;
}

/* The same sparse update under batch durability: one write and one fdatasync each. */
static int delta_durable_setup(struct bench_ctx *c)
{
	int err = delta_sparse_setup(c);

	if (err)
		return err;
	mmsb_state_close(c->s);
	c->s = open_logged(c, "durable.tlog", MMSB_DURABLE_BATCH);
	if (!c->s)
		return -errno;
	return mmsb_page_create(c->s, SMALL_PAGE, MMSB_LOC_CPU, &c->ids[0]);
}

/*
 * 64 pages written one call each, and the same 64 writes in one mmsb_page_update_batch(): the C
 * twins of the Python host's keys (mmsb-bench --host python), where each call is a crossing.
 */
#define BATCH_PAGES 64

static int update64_setup(struct bench_ctx *c)
{
	struct mmsb_page_write *w;
	int err = delta_setup(c, SMALL_PAGE, 1, 10, false);

	if (err)
		return err;
	for (int i = 1; i < BATCH_PAGES && !err; i++)
		err = mmsb_page_create(c->s, SMALL_PAGE, MMSB_LOC_CPU, &c->ids[i]);
	w = calloc(2 * BATCH_PAGES, sizeof(*w));
	if (!w)
		return -ENOMEM;
	c->p = w;
	for (int set = 0; set < 2; set++)
		for (int i = 0; i < BATCH_PAGES; i++)
			w[set * BATCH_PAGES + i] =
				(struct mmsb_page_write){ c->ids[i], c->buf[set], SMALL_PAGE };
	return err;
}

static int update64_run(struct bench_ctx *c)
{
	for (int i = 0; i < BATCH_PAGES; i++) {
		int r = mmsb_page_update(c->s, c->ids[i], c->buf[c->flip], c->size);

		if (r != 1)
			return r < 0 ? r : -EAGAIN;
	}
	c->flip ^= 1;
	return 0;
}

static int update_batch64_run(struct bench_ctx *c)
{
	const struct mmsb_page_write *w = c->p;
	int r = mmsb_page_update_batch(c->s, w + c->flip * BATCH_PAGES, BATCH_PAGES);

	c->flip ^= 1;
	return r == BATCH_PAGES ? 0 : r < 0 ? r : -EAGAIN;
}

/* ---- semiring ---- */

static int semiring_setup(struct bench_ctx *c)
{
	seed();
	c->f = malloc(1024 * sizeof(double));
	c->b = malloc(1024);
	if (!c->f || !c->b)
		return -ENOMEM;
	for (int i = 0; i < 1024; i++) {
		c->f[i] = (double)(rnd() % 1000000) / 1000.0;
		c->b[i] = rnd() & 1;
	}
	return 0;
}

/* the results feed a volatile sink so the compiler cannot drop the call */
static volatile double sink_d;
static volatile uint8_t sink_b;

static int trop_add(struct bench_ctx *c)
{
	sink_d = mmsb_tropical_fold_add(c->f, 1024);
	return 0;
}

static int trop_mul(struct bench_ctx *c)
{
	sink_d = mmsb_tropical_fold_mul(c->f, 1024);
	return 0;
}

static int trop_acc(struct bench_ctx *c)
{
	double a, m;

	mmsb_tropical_accumulate(c->f[c->flip & 1023], c->f[(c->flip + 1) & 1023], &a, &m);
	c->flip++;
	sink_d = a + m;
	return 0;
}

static int bool_add(struct bench_ctx *c)
{
	sink_b = mmsb_boolean_fold_add(c->b, 1024);
	return 0;
}

static int bool_mul(struct bench_ctx *c)
{
	sink_b = mmsb_boolean_fold_mul(c->b, 1024);
	return 0;
}

static int bool_acc(struct bench_ctx *c)
{
	uint8_t a, m;

	mmsb_boolean_accumulate(c->b[c->flip & 1023], c->b[(c->flip + 1) & 1023], &a, &m);
	c->flip++;
	sink_b = a ^ m;
	return 0;
}

/* ---- propagation ---- */

static int chain_setup(struct bench_ctx *c, int pages)
{
	int err = 0;

	seed();
	c->s = open_logged(c, "prop.tlog", MMSB_DURABLE_NONE);
	c->size = SMALL_PAGE;
	c->buf[0] = malloc(SMALL_PAGE);
	c->buf[1] = malloc(SMALL_PAGE);
	if (!c->s || !c->buf[0] || !c->buf[1])
		return -ENOMEM;
	fill_random(c->buf[0], SMALL_PAGE);
	fill_random(c->buf[1], SMALL_PAGE);
	for (int i = 0; i < pages && !err; i++) {
		err = mmsb_page_create(c->s, SMALL_PAGE, MMSB_LOC_CPU, &c->ids[i]);
		if (!err && i)
			err = mmsb_edge_add(c->s, c->ids[i - 1], c->ids[i], MMSB_EDGE_DATA);
		if (!err && i)
			err = mmsb_page_set_passthrough(c->s, c->ids[i], c->ids[i - 1], NULL, NULL);
	}
	return err;
}

static int single_hop_setup(struct bench_ctx *c)
{
	return chain_setup(c, 2);
}

static int chain_10_setup(struct bench_ctx *c)
{
	return chain_setup(c, 10);
}

static int chain_head_run(struct bench_ctx *c)
{
	return flip_update(c, c->ids[0]);
}

/* The signature skip: a wave from an unchanged parent does not rerun the child. */
static int cached_setup(struct bench_ctx *c)
{
	int err = chain_setup(c, 2);

	return err ? err : flip_update(c, c->ids[0]);
}

static int cached_run(struct bench_ctx *c)
{
	return mmsb_propagate(c->s, &c->ids[0], 1);
}

/* Two sets of k full-mask deltas on the head, alternated so each batch changes the whole chain. */
struct batch_set {
	struct mmsb_delta *d[2][4];
	int k;
};

static int batch_setup(struct bench_ctx *c, int pages, int k)
{
	struct batch_set *b;
	uint8_t mask[SMALL_PAGE], pay[SMALL_PAGE];
	int err = chain_setup(c, pages);

	if (err)
		return err;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	c->p = b;
	b->k = k;
	memset(mask, 1, sizeof(mask));
	for (int set = 0; set < 2; set++)
		for (int i = 0; i < k; i++) {
			fill_random(pay, sizeof(pay));
			b->d[set][i] =
				mmsb_delta_new(c->ids[0], mask, SMALL_PAGE, pay, SMALL_PAGE, 0);
			if (!b->d[set][i])
				return -errno;
		}
	return 0;
}

static int batch_32x4_setup(struct bench_ctx *c)
{
	return batch_setup(c, 32, 4);
}

static int batch_128x2_setup(struct bench_ctx *c)
{
	return batch_setup(c, 128, 2);
}

static int batch_run(struct bench_ctx *c)
{
	struct batch_set *b = c->p;
	int err = mmsb_route_batch(c->s, b->d[c->flip], (size_t)b->k);

	c->flip ^= 1;
	return err;
}

static void batch_teardown(struct bench_ctx *c)
{
	struct batch_set *b = c->p;

	for (int set = 0; b && set < 2; set++)
		for (int i = 0; i < b->k; i++)
			mmsb_delta_free(b->d[set][i]);
	teardown_common(c);
}

/* ---- graph ---- */

static int graph_setup(struct bench_ctx *c, int pages, int fanout)
{
	int err = 0;

	c->s = mmsb_state_open(NULL);
	c->p = malloc((size_t)pages * sizeof(uint64_t));
	if (!c->s || !c->p)
		return -ENOMEM;
	for (int i = 1; i <= pages && !err; i++)
		err = mmsb_page_create(c->s, 1, MMSB_LOC_CPU, NULL);
	/* the original fixture: each node points at its next `fanout` ids */
	for (int i = 1; i <= pages && !err; i++)
		for (int k = 1; k <= fanout && i + k <= pages && !err; k++)
			err = mmsb_edge_add(c->s, (uint64_t)i, (uint64_t)(i + k), MMSB_EDGE_DATA);
	return err;
}

static int graph_1024_setup(struct bench_ctx *c)
{
	return graph_setup(c, 1024, 4);
}

static int toposort_run(struct bench_ctx *c)
{
	ssize_t n = mmsb_graph_toposort(c->s, c->p, 1024);

	return n == 1024 ? 0 : n < 0 ? (int)n : -EPROTO;
}

static int bfs_run(struct bench_ctx *c)
{
	/* BFS from roots 1-4 */
	for (uint64_t r = 1; r <= 4; r++) {
		ssize_t n = mmsb_graph_bfs(c->s, r, c->p, 1024);

		if (n < 0)
			return (int)n;
	}
	return 0;
}

static int graph_10k_setup(struct bench_ctx *c)
{
	return graph_setup(c, 10000, 2);
}

static int cycle_run(struct bench_ctx *c)
{
	struct mmsb_cycle_report r;
	int err = mmsb_graph_validate(c->s, &r);

	free(r.cycle);
	return err ? err : r.has_cycle ? -EPROTO : 0;
}

/* ---- persistence ---- */

static int persist_setup(struct bench_ctx *c)
{
	uint8_t buf[SMALL_PAGE];
	uint64_t id;
	int err = 0;

	seed();
	c->s = mmsb_state_open(NULL);
	if (!c->s)
		return -errno;
	scratch(c->path2, sizeof(c->path2), "persist.ckpt");
	for (int i = 0; i < 16 && !err; i++) {
		err = mmsb_page_create(c->s, SMALL_PAGE, MMSB_LOC_CPU, &id);
		fill_random(buf, sizeof(buf));
		if (!err)
			err = mmsb_page_update(c->s, id, buf, SMALL_PAGE) == 1 ? 0 : -EPROTO;
	}
	return err ? err : mmsb_checkpoint_write(c->s, c->path2);
}

static int checkpoint_run(struct bench_ctx *c)
{
	return mmsb_checkpoint_write(c->s, c->path2);
}

static int restore_run(struct bench_ctx *c)
{
	c->s2 = mmsb_state_open(NULL);
	if (!c->s2)
		return -errno;
	return mmsb_checkpoint_load(c->s2, c->path2);
}

static int close_s2(struct bench_ctx *c)
{
	mmsb_state_close(c->s2);
	c->s2 = NULL;
	return 0;
}

/* ---- replay ---- */

static int replay_setup(struct bench_ctx *c)
{
	uint8_t buf[SMALL_PAGE];
	int err;

	seed();
	c->s = open_logged(c, "replay.tlog", MMSB_DURABLE_NONE);
	if (!c->s)
		return -errno;
	err = mmsb_page_create(c->s, SMALL_PAGE, MMSB_LOC_CPU, &c->ids[0]);
	for (int i = 0; i < 5 && !err; i++) {
		fill_random(buf, sizeof(buf));
		err = mmsb_page_update(c->s, c->ids[0], buf, SMALL_PAGE) == 1 ? 0 : -EPROTO;
	}
	return err ? err : mmsb_state_flush(c->s);
}

static int replay_run(struct bench_ctx *c)
{
	MMSB_OPTS(mmsb_replay_opts, o, .to_epoch = 5);
	c->s2 = mmsb_replay(c->path, &o);
	return c->s2 ? 0 : -errno;
}

/* ---- stress and system (all timed, as the original) ---- */

static int typical_setup(struct bench_ctx *c)
{
	seed();
	c->b = malloc(40 * SMALL_PAGE);
	if (!c->b)
		return -ENOMEM;
	fill_random(c->b, 40 * SMALL_PAGE);
	for (int i = 0; i < 46; i++)
		c->ids[i] = rnd();
	return 0;
}

static int typical_run(struct bench_ctx *c)
{
	char ckpt[512];
	uint64_t ids[20];
	int err = 0;

	struct mmsb_state *s = open_logged(c, "typical.tlog", MMSB_DURABLE_NONE);

	if (!s)
		return -errno;
	scratch(ckpt, sizeof(ckpt), "typical.ckpt");
	for (int i = 0; i < 20 && !err; i++)
		err = mmsb_page_create(s, SMALL_PAGE, MMSB_LOC_CPU, &ids[i]);
	/* 6 random DATA edges from the first half to the second; no recompute bound */
	for (int i = 0; i < 6 && !err; i++)
		err = mmsb_edge_add(s, ids[c->ids[i] % 10], ids[10 + c->ids[i] / 10 % 10],
				    MMSB_EDGE_DATA);
	for (int i = 0; i < 40 && !err; i++) {
		int r = mmsb_page_update(s, ids[c->ids[6 + i] % 20], c->b + (size_t)i * SMALL_PAGE,
					 SMALL_PAGE);

		err = r < 0 ? r : 0;
	}
	if (!err)
		err = mmsb_checkpoint_write(s, ckpt);
	mmsb_state_close(s);
	unlink(ckpt);
	unlink(c->path);
	return err;
}

static int pipeline_run(struct bench_ctx *c)
{
	uint64_t ids[24];
	char ckpt[512];
	int err = 0;
	struct mmsb_state *s = open_logged(c, "pipeline.tlog", MMSB_DURABLE_NONE), *t = NULL, *r;

	if (!s)
		return -errno;
	scratch(ckpt, sizeof(ckpt), "pipeline.ckpt");
	for (int i = 0; i < 24 && !err; i++) {
		err = mmsb_page_create(s, SMALL_PAGE, MMSB_LOC_CPU, &ids[i]);
		if (!err && i)
			err = mmsb_edge_add(s, ids[i - 1], ids[i], MMSB_EDGE_DATA);
		if (!err && i)
			err = mmsb_page_set_passthrough(s, ids[i], ids[i - 1], NULL, NULL);
	}
	/* 5 updates of the head, each cascading 24 applies */
	for (int u = 0; u < 5 && !err; u++)
		err = mmsb_page_update(s, ids[0], c->b + (size_t)u * SMALL_PAGE, SMALL_PAGE) == 1 ?
			      0 :
			      -EPROTO;
	if (!err)
		err = mmsb_checkpoint_write(s, ckpt);
	if (!err && !(t = mmsb_state_open(NULL)))
		err = -errno;
	if (!err)
		err = mmsb_checkpoint_load(t, ckpt);
	if (!err)
		err = mmsb_state_flush(s);
	if (!err) {
		MMSB_OPTS(mmsb_replay_opts, o, .to_epoch = 5);
		r = mmsb_replay(c->path, &o);
		if (!r)
			err = -errno;
		mmsb_state_close(r);
	}
	mmsb_state_close(t);
	mmsb_state_close(s);
	unlink(ckpt);
	unlink(c->path);
	return err;
}

/*
 * The keys that sync, against this disk's own sync: each round times a 1 KiB append +
 * fdatasync (the floor of any durable step here) beside full_pipeline, checkpoint_100pages and
 * restore_100pages, interleaved, and counts the syncs each makes.
 */
struct sync_key {
	const char *ratio, *syncs;
	int (*setup)(struct bench_ctx *c);
	int (*run)(struct bench_ctx *c);
	int (*post)(struct bench_ctx *c);
};

static int sync_key_ns(const struct sync_key *k, int reps, double *ns, unsigned long *syncs)
{
	struct bench_ctx c = { 0 };
	unsigned long s0;
	uint64_t t0, sum = 0;
	int err = k->setup(&c);

	s0 = bench_syncs;
	for (int i = 0; i < reps && !err; i++) {
		t0 = mono_ns();
		err = k->run(&c);
		sum += mono_ns() - t0;
		if (!err && k->post)
			err = k->post(&c);
	}
	*syncs = (bench_syncs - s0) / (unsigned long)reps;
	*ns = (double)sum / reps;
	teardown_common(&c);
	return err;
}

static int durability_vs_fsync(struct bench_result *r)
{
	static const struct sync_key keys[] = {
		{ "pipeline_x", "pipeline_syncs", typical_setup, pipeline_run, NULL },
		{ "checkpoint_x", "checkpoint_syncs", persist_setup, checkpoint_run, NULL },
		{ "restore_x", "restore_syncs", persist_setup, restore_run, close_s2 },
	};
	double ratio[3][BENCH_MAX_ROUNDS], raw[BENCH_MAX_ROUNDS], lo, hi;
	unsigned long syncs[3] = { 0 };
	int nr = bench_rounds(), err = 0;

	for (int i = 0; i < nr && !err; i++) {
		double ns;

		err = bench_raw_sync_ns(benv.quick ? 4 : 20, &raw[i]);
		for (int k = 0; k < 3 && !err; k++) {
			err = sync_key_ns(&keys[k], benv.quick ? 2 : 10, &ns, &syncs[k]);
			ratio[k][i] = ns / raw[i];
		}
	}
	if (err)
		return err;
	bench_value(r, "sync_us", bench_median(raw, nr, &lo, &hi) / 1e3);
	for (int k = 0; k < 3; k++) {
		bench_value(r, keys[k].ratio, bench_median(ratio[k], nr, &lo, &hi));
		bench_value(r, keys[k].syncs, (double)syncs[k]);
	}
	return 0;
}

/* ---- the registry, in the original suite's order, then ours ---- */

/* TIMED_G and STRESS_G name how the perf gate judges the key (enum bench_gate) */
#define TIMED_G(g, cat, nm, d, su, pr, ru, po, td, ap)                                             \
	{                                                                                          \
		.category = cat, .name = nm, .desc = d, .setup = su, .pre = pr, .run = ru,         \
		.post = po, .teardown = td, .applies = ap, .gate = g                               \
	}
#define TIMED(...) TIMED_G(GATE_INSN, __VA_ARGS__)
#define STRESS_G(g, cat, nm, d, fn)                                                                \
	{                                                                                          \
		.category = cat, .name = nm, .desc = d, .stress = fn, .gate = g                    \
	}
#define STRESS(...) STRESS_G(GATE_NONE, __VA_ARGS__)
const struct bench_key bench_keys[] = {
	TIMED("allocation", "cpu_1kb", "state open + one 1 KiB CPU page + close (all timed)", NULL,
	      NULL, alloc_1kb, NULL, NULL, 0),
	TIMED("allocation", "cpu_1mb", "the same with a 256 KiB page (the original's \"1mb\")",
	      NULL, NULL, alloc_1mb, NULL, NULL, 0),
	TIMED_G(GATE_NONE, "allocation", "gpu_1kb",
		"state open + one 1 KiB GPU page + close (all timed)", alloc_gpu_setup, NULL,
		alloc_gpu_1kb, NULL, NULL, 0),
	TIMED_G(GATE_NONE, "allocation", "gpu_1mb", "the same with a 256 KiB GPU page",
		alloc_gpu_setup, NULL, alloc_gpu_1mb, NULL, NULL, 0),
	TIMED("delta", "cpu_sparse", "update_page on 1 KiB: bytes 1-10 flip 0x00/0xFF",
	      delta_sparse_setup, NULL, delta_run, NULL, teardown_common, 1),
	TIMED("delta", "cpu_dense", "update_page on 1 KiB with 1024 random bytes",
	      delta_dense_setup, NULL, delta_run, NULL, teardown_common, 1),
	TIMED_G(GATE_NONE, "delta", "gpu_sparse",
		"update_page on a 256 KiB GPU page: the first 256 B flip", delta_gpu_sparse_setup,
		NULL, delta_run, NULL, teardown_common, 1),
	TIMED_G(GATE_NONE, "delta", "gpu_dense",
		"update_page on a 256 KiB GPU page with random bytes", delta_gpu_dense_setup, NULL,
		delta_run, NULL, teardown_common, 1),
	TIMED("semiring", "tropical_fold_add", "min over 1024 doubles", semiring_setup, NULL,
	      trop_add, NULL, teardown_common, 0),
	TIMED("semiring", "tropical_fold_mul", "sum over 1024 doubles", semiring_setup, NULL,
	      trop_mul, NULL, teardown_common, 0),
	TIMED("semiring", "tropical_accumulate", "(min, +) of two scalars", semiring_setup, NULL,
	      trop_acc, NULL, teardown_common, 0),
	TIMED("semiring", "boolean_fold_add", "OR over 1024 bools", semiring_setup, NULL, bool_add,
	      NULL, teardown_common, 0),
	TIMED("semiring", "boolean_fold_mul", "AND over 1024 bools", semiring_setup, NULL, bool_mul,
	      NULL, teardown_common, 0),
	TIMED("semiring", "boolean_accumulate", "(or, and) of two bools", semiring_setup, NULL,
	      bool_acc, NULL, teardown_common, 0),
	TIMED("propagation", "single_hop", "update a 1 KiB parent; passthrough child (2 applies)",
	      single_hop_setup, NULL, chain_head_run, NULL, teardown_common, 2),
	TIMED("propagation", "chain_10",
	      "update the head of a 10-page passthrough chain (10 applies)", chain_10_setup, NULL,
	      chain_head_run, NULL, teardown_common, 10),
	TIMED("propagation", "batch_32x4",
	      "route 4 full-mask deltas on a 32-chain head (35 applies)", batch_32x4_setup, NULL,
	      batch_run, NULL, batch_teardown, 35),
	TIMED("propagation", "batch_128x2",
	      "route 2 full-mask deltas on a 128-chain head (129 applies)", batch_128x2_setup, NULL,
	      batch_run, NULL, batch_teardown, 129),
	TIMED("graph", "topological_sort_1024", "Kahn over 1024 nodes, edges to the next 4",
	      graph_1024_setup, NULL, toposort_run, NULL, teardown_common, 0),
	TIMED("graph", "bfs_1024", "BFS from roots 1-4 over the same fixture", graph_1024_setup,
	      NULL, bfs_run, NULL, teardown_common, 0),
	TIMED_G(GATE_PAIRED, "persistence", "checkpoint_100pages",
		"checkpoint 16 x 1 KiB pages (atomic, fsync'ed)", persist_setup, NULL,
		checkpoint_run, NULL, teardown_common, 0),
	TIMED("persistence", "restore_100pages", "new state + load that checkpoint", persist_setup,
	      NULL, restore_run, close_s2, teardown_common, 0),
	TIMED("replay", "100_epochs", "replay a 1-page log of 5 updates to epoch 5", replay_setup,
	      NULL, replay_run, close_s2, teardown_common, 0),
	TIMED_G(GATE_PAIRED, "stress", "typical_workload",
		"open, 20 pages, 6 edges, 40 updates, checkpoint, close (all timed)", typical_setup,
		NULL, typical_run, NULL, teardown_common, 0),
	TIMED_G(GATE_PAIRED, "system", "full_pipeline",
		"24-chain, 5 head updates (120 applies), checkpoint, load, replay to epoch 5 (all timed)",
		typical_setup, NULL, pipeline_run, NULL, teardown_common, 120),
	STRESS_G(GATE_PAIRED, "throughput", "single_1w",
		 "10 M no-op deltas on 4,096 1 B pages, 1 worker", throughput_1w),
	STRESS_G(GATE_PAIRED, "throughput", "multi_8w",
		 "the same with 8 workers (the original's count)", throughput_8w),
	STRESS_G(GATE_PAIRED, "phase6", "throughput",
		 "64 x 4 KiB pages, 20,000 x 128 B deltas, 1 and all workers", phase6_throughput),
	STRESS("phase6", "tick", "one tick over the phase6 deltas: apply, wave, Tarjan, memory",
	       phase6_tick),
	STRESS("memory", "snapshot", "2,048 x 1 KiB pages: average and projection to 1 M",
	       memory_snapshot),
	STRESS("memory", "gc", "the cold-page report on 256 pages (nothing is freed)", memory_gc),
	STRESS("memory", "fragmentation", "512 bursts, newest half-burst freed past 1,024 live",
	       memory_fragmentation),
	{ .category = "memory",
	  .name = "full_1m",
	  .desc = "1 M x 1 KiB pages, logical and RSS (opt-in)",
	  .stress = memory_full_1m,
	  .opt_in = true },
	STRESS("stability", "10k_cycles",
	       "10,000 cycles of 100 deltas + 4 graph ops, invariants every 100 (original LCG)",
	       stability),
	/* ours, stricter */
	TIMED("delta", "cpu_sparse_256k", "v2: the CPU twin of gpu_sparse (256 KiB page, 256 B)",
	      delta_sparse_256k_setup, NULL, delta_run, NULL, teardown_common, 1),
	TIMED("delta", "cpu_dense_256k", "v2: the CPU twin of gpu_dense (256 KiB page, random)",
	      delta_dense_256k_setup, NULL, delta_run, NULL, teardown_common, 1),
	TIMED_G(GATE_PAIRED, "delta", "cpu_sparse_durable",
		"v2: cpu_sparse under batch durability (write + fdatasync)", delta_durable_setup,
		NULL, delta_run, NULL, teardown_common, 1),
	TIMED("allocation", "create_logged_1kb",
	      "v2: one 1 KiB page created in a logged state (freed untimed)", create_logged_setup,
	      NULL, create_logged_run, create_logged_post, teardown_common, 0),
	TIMED("delta", "write_10b_64m",
	      "v2: mmsb_page_write of 10 bytes into a 64 MiB page (logged)", write_10b_setup, NULL,
	      write_10b_run, NULL, teardown_common, 1),
	TIMED("delta", "update_x64", "v2: 64 x 1 KiB pages, one update_page call each",
	      update64_setup, NULL, update64_run, NULL, teardown_common, 64),
	TIMED("delta", "update_batch_x64", "v2: the same 64 writes in one update_batch call",
	      update64_setup, NULL, update_batch64_run, NULL, teardown_common, 64),
	TIMED("propagation", "recompute_cached",
	      "v2: a wave from an unchanged parent (signature skip)", cached_setup, NULL,
	      cached_run, NULL, teardown_common, 0),
	TIMED("graph", "cycle_detect_10k", "v2: Tarjan over 10,000 pages", graph_10k_setup, NULL,
	      cycle_run, NULL, teardown_common, 0),
	STRESS_G(GATE_PAIRED, "throughput", "multi_ncpu",
		 "v2: the same with one worker per online CPU", throughput_ncpu),
	STRESS("throughput", "scaling_2w",
	       "v2: engine 2 workers / 1 (no-op, 128 B, 1 KiB deltas) beside 2 threads / 1 and a line's round trip",
	       limits_scaling_2w),
	STRESS("delta", "dense_64k_vs_memcpy",
	       "v2: dense update_page of 64 KiB, unlogged and logged, / memcpy of it (same run)",
	       limits_dense_64k),
	STRESS("delta", "dense_1m_vs_memcpy", "v2: the same at 1 MiB", limits_dense_1m),
	STRESS("delta", "dense_64m_vs_memcpy", "v2: the same at 64 MiB", limits_dense_64m),
	STRESS("system", "durability_vs_fsync",
	       "v2: full_pipeline, checkpoint_100pages, restore_100pages / a 1 KiB write+fdatasync",
	       durability_vs_fsync),
	STRESS("persistence", "growth_1k_1m",
	       "v2: us a page to create (logged), checkpoint, load and load again 64 B pages, 1k to 1M; fault cost",
	       limits_growth),
	STRESS("persistence", "checkpoint_behind_log",
	       "v2: ms to checkpoint 1 MiB after 1k to 1M logged writes (durability none), and their ratio",
	       limits_ckpt_behind_log),
	STRESS("replay", "divergence_1000", "v2: 1000 updates, replay vs live every 100: L2",
	       divergence_1000),
	STRESS("syscalls", "per_delta",
	       "v2: log write + fdatasync calls per delta, batch durability", syscalls_per_delta),
};

const size_t n_bench_keys = sizeof(bench_keys) / sizeof(bench_keys[0]);
