// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * mmsb-bench's stress keys: run once, each reports values (throughput, divergence, memory) and
 * the original's METRIC lines: throughput, phase6, memory, stability, and our v2 replay
 * divergence and syscalls per delta.
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

static int throughput(struct bench_result *r, unsigned int workers)
{
	const size_t pages = 4096, chunk = 4096;
	uint64_t total = benv.quick ? 409600 : 10000000, done = 0, ns = 0;
	struct mmsb_delta **ds = calloc(chunk, sizeof(*ds));
	double *per = calloc(total / chunk + 1, sizeof(double));
	struct mmsb_state *s = mmsb_state_open(NULL);
	struct mmsb_engine *e = NULL;
	size_t nb = 0;
	bool partial = false;
	int err = 0;

	MMSB_OPTS(mmsb_engine_opts, eo, .workers = workers);
	if (!ds || !per || !s)
		err = -ENOMEM;
	for (size_t i = 1; i <= pages && !err; i++)
		err = mmsb_page_create(s, 1, MMSB_LOC_CPU, NULL);
	/* the original's no-op deltas: empty mask and payload, one per page per batch */
	for (size_t i = 0; i < chunk && !err; i++)
		if (!(ds[i] = mmsb_delta_new(i % pages + 1, NULL, 0, NULL, 0, 0)))
			err = -errno;
	if (!err && !(e = mmsb_engine_new(s, &eo)))
		err = -errno;
	while (!err && done < total) {
		size_t n = total - done < chunk ? total - done : chunk;
		struct mmsb_throughput m;

		err = mmsb_engine_apply(e, ds, n, &m);
		ns += m.duration_ns;
		per[nb++] = (double)m.duration_ns / (double)n;
		done += n;
		if (!partial && done >= 500000) {
			partial = true;
			printf("METRIC:throughput processed=%llu duration_ns=%llu throughput_per_sec=%.0f\n",
			       (unsigned long long)done, (unsigned long long)ns,
			       done * 1e9 / (double)ns);
		}
	}
	if (!err) {
		printf("METRIC:throughput processed=%llu duration_ns=%llu throughput_per_sec=%.0f\n",
		       (unsigned long long)done, (unsigned long long)ns, done * 1e9 / (double)ns);
		bench_value(r, "processed", (double)done);
		bench_value(r, "duration_ns", (double)ns);
		bench_value(r, "throughput_per_sec", done * 1e9 / (double)ns);
		bench_value(r, "workers", workers);
		/* per-delta cost of each batch: the distribution the runner reports */
		r->samples = nb;
		r->raw = per;
	} else {
		free(per);
	}
	mmsb_engine_free(e);
	for (size_t i = 0; ds && i < chunk; i++)
		mmsb_delta_free(ds[i]);
	free(ds);
	mmsb_state_close(s);
	return err;
}

int throughput_1w(struct bench_result *r)
{
	return throughput(r, 1);
}

int throughput_8w(struct bench_result *r)
{
	return throughput(r, 8);
}

int throughput_ncpu(struct bench_result *r)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return throughput(r, n > 0 ? (unsigned int)n : 1);
}

/* phase6: 64 x 4 KiB pages, 20,000 deltas of 128 B full masks, chunks of 1,024. */
static int phase6_deltas(struct mmsb_state **sp, struct mmsb_delta ***dp)
{
	struct mmsb_state *s = mmsb_state_open(NULL);
	struct mmsb_delta **ds = calloc(20000, sizeof(*ds));
	uint8_t mask[128], pay[128];
	int err = 0;

	if (!s || !ds)
		err = -ENOMEM;
	for (int i = 0; i < 64 && !err; i++)
		err = mmsb_page_create(s, 4096, MMSB_LOC_CPU, NULL);
	/* the tick's graph: a 64-node chain */
	for (uint64_t i = 1; i < 64 && !err; i++)
		err = mmsb_edge_add(s, i, i + 1, MMSB_EDGE_DATA);
	memset(mask, 1, sizeof(mask));
	for (int i = 0; i < 20000 && !err; i++) {
		memset(pay, i % 255, sizeof(pay));
		if (!(ds[i] = mmsb_delta_new((uint64_t)(i % 64 + 1), mask, 128, pay, 128, 0)))
			err = -errno;
	}
	*sp = s;
	*dp = ds;
	return err;
}

static void phase6_free(struct mmsb_state *s, struct mmsb_delta **ds)
{
	for (int i = 0; ds && i < 20000; i++)
		mmsb_delta_free(ds[i]);
	free(ds);
	mmsb_state_close(s);
}

static int phase6_rate(struct mmsb_state *s, struct mmsb_delta **ds, unsigned int w, double *rate,
		       uint64_t *dur)
{
	MMSB_OPTS(mmsb_engine_opts, eo, .workers = w);
	struct mmsb_engine *e = mmsb_engine_new(s, &eo);
	uint64_t ns = 0;
	int err = 0;

	if (!e)
		return -errno;
	for (int i = 0; i < 20000 && !err; i += 1024) {
		struct mmsb_throughput m;

		err = mmsb_engine_apply(e, ds + i, 20000 - i < 1024 ? (size_t)(20000 - i) : 1024,
					&m);
		ns += m.duration_ns;
	}
	mmsb_engine_free(e);
	*rate = 20000 * 1e9 / (double)ns;
	*dur = ns;
	return err;
}

int phase6_throughput(struct bench_result *r)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	struct mmsb_delta **ds;
	struct mmsb_state *s;
	double single, multi;
	uint64_t d1, dn;
	int err = phase6_deltas(&s, &ds);

	if (!err)
		err = phase6_rate(s, ds, 1, &single, &d1);
	if (!err)
		err = phase6_rate(s, ds, ncpu > 0 ? (unsigned int)ncpu : 1, &multi, &dn);
	if (!err) {
		bench_value(r, "processed", 20000);
		bench_value(r, "duration_us", (double)dn / 1e3);
		/* both measured: the original multiplied the one rate by the worker count */
		bench_value(r, "throughput_per_sec_single", single);
		bench_value(r, "throughput_per_sec_multi", multi);
		bench_value(r, "workers", (double)ncpu);
		bench_value(r, "multi_extrapolated", 0);
	}
	phase6_free(s, ds);
	return err;
}

int phase6_tick(struct bench_result *r)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	MMSB_OPTS(mmsb_engine_opts, eo, .workers = ncpu > 0 ? (unsigned int)ncpu : 1);
	struct mmsb_tick_metrics m;
	struct mmsb_delta **ds;
	struct mmsb_engine *e;
	struct mmsb_state *s;
	int err = phase6_deltas(&s, &ds);

	if (!err && !(e = mmsb_engine_new(s, &eo)))
		err = -errno;
	if (!err) {
		err = mmsb_tick(e, ds, 20000, &m);
		mmsb_engine_free(e);
	}
	if (!err) {
		bench_value(r, "propagation_us", (double)(m.apply_ns + m.propagation_ns) / 1e3);
		bench_value(r, "graph_us", (double)m.graph_ns / 1e3);
		bench_value(r, "gc_us", (double)m.memory_ns / 1e3);
		bench_value(r, "total_us", (double)m.total_ns / 1e3);
		bench_value(r, "meets_budget_ms", m.within_budget);
		bench_value(r, "graph_has_cycle", m.graph_has_cycle);
		bench_value(r, "gc_invoked", 0);
	}
	phase6_free(s, ds);
	return err;
}

/* ---- memory ---- */

int memory_snapshot(struct bench_result *r)
{
	struct mmsb_state *s = mmsb_state_open(NULL);
	struct mmsb_memory_report m;
	int err = 0;

	for (int i = 0; s && i < 2048 && !err; i++)
		err = mmsb_page_create(s, KIB, MMSB_LOC_CPU, NULL);
	if (!s)
		return -errno;
	if (!err)
		err = mmsb_memory_report(s, 3, &m);
	if (!err) {
		double projected = (double)m.avg_bytes * 1e6;

		printf("METRIC:memory_snapshot avg=%llu total=%llu projected=%.0f\n",
		       (unsigned long long)m.avg_bytes, (unsigned long long)m.bytes, projected);
		bench_value(r, "avg", (double)m.avg_bytes);
		bench_value(r, "total", (double)m.bytes);
		bench_value(r, "projected", projected);
	}
	mmsb_state_close(s);
	return err;
}

/*
 * The original's "incremental GC" freed cold pages. Nothing is freed here: the key times the
 * report that finds them, on the original's configuration (256 pages, 3 ageing snapshots).
 */
int memory_gc(struct bench_result *r)
{
	struct mmsb_state *s = mmsb_state_open(NULL);
	struct mmsb_memory_report m;
	uint64_t t0, ns;
	int err = 0;

	for (int i = 0; s && i < 256 && !err; i++)
		err = mmsb_page_create(s, KIB, MMSB_LOC_CPU, NULL);
	if (!s)
		return -errno;
	for (int i = 0; i < 3 && !err; i++)
		err = mmsb_memory_report(s, 0, &m);
	t0 = mono_ns();
	if (!err)
		err = mmsb_memory_report(s, 0, &m);
	ns = mono_ns() - t0;
	if (!err) {
		printf("METRIC:memory_gc duration_ms=%.3f reclaimed=0 pages=%llu\n",
		       (double)ns / 1e6, (unsigned long long)m.pages);
		bench_value(r, "duration_ms", (double)ns / 1e6);
		bench_value(r, "cold_pages", (double)m.cold_pages);
		bench_value(r, "reclaimed", 0);
	}
	mmsb_state_close(s);
	return err;
}

int memory_fragmentation(struct bench_result *r)
{
	struct mmsb_state *s = mmsb_state_open(NULL);
	/* live pages peak near 1,024 + 512 x 32: room for every one */
	const size_t cap = 1024 + 512 * 64;
	uint64_t *live = malloc(cap * sizeof(*live)), created = 0;
	struct mmsb_memory_report m = { 0 };
	size_t n = 0;
	int err = 0;

	if (!s || !live)
		err = -ENOMEM;
	for (int i = 0; i < 512 && !err; i++) {
		int burst = 32 + i % 32;

		for (int k = 0; k < burst && !err && n < cap; k++) {
			err = mmsb_page_create(s, KIB, MMSB_LOC_CPU, &live[n]);
			n++;
			created++;
		}
		/* past 1,024 live pages, free the newest half-burst */
		if (n > 1024)
			for (int k = 0; k < burst / 2 && !err; k++)
				err = mmsb_page_free(s, live[--n]);
		if (i % 128 == 127 && !err)
			err = mmsb_memory_report(s, 3, &m);
	}
	if (!err) {
		printf("METRIC:memory_fragmentation total_pages=%llu estimate=%llu\n",
		       (unsigned long long)m.pages, (unsigned long long)m.bytes);
		bench_value(r, "total_pages", (double)m.pages);
		bench_value(r, "estimate", (double)m.bytes);
		bench_value(r, "pages_created", (double)created);
	}
	free(live);
	mmsb_state_close(s);
	return err;
}

static uint64_t rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long long size = 0, res = 0;

	if (f) {
		if (fscanf(f, "%llu %llu", &size, &res) != 2)
			res = 0;
		fclose(f);
	}
	return res * (uint64_t)sysconf(_SC_PAGESIZE);
}

int memory_full_1m(struct bench_result *r)
{
	uint64_t before = rss_bytes(), after;
	struct mmsb_state *s = mmsb_state_open(NULL);
	struct mmsb_memory_report m;
	int err = 0;

	for (int i = 0; s && i < 1000000 && !err; i++)
		err = mmsb_page_create(s, KIB, MMSB_LOC_CPU, NULL);
	if (!s)
		return -errno;
	if (!err)
		err = mmsb_memory_report(s, 3, &m);
	after = rss_bytes();
	if (!err) {
		printf("METRIC:memory_full_run total=%llu avg=%llu\n", (unsigned long long)m.bytes,
		       (unsigned long long)m.avg_bytes);
		bench_value(r, "total", (double)m.bytes);
		bench_value(r, "avg", (double)m.avg_bytes);
		/* what the process really holds: data, headers, allocator and table overhead */
		bench_value(r, "rss_bytes", (double)(after - before));
		bench_value(r, "rss_per_page", (double)(after - before) / 1e6);
	}
	mmsb_state_close(s);
	return err;
}

/* ---- stability: the original's 10,000 cycles with its LCG ---- */

static uint64_t lcg;

static uint64_t lcg_next(void)
{
	lcg = lcg * 6364136223846793005ull + 1;
	return lcg;
}

static double lcg_unit(void)
{
	return (double)(lcg_next() >> 11) / 9007199254740992.0;
}

int stability(struct bench_result *r)
{
	int cycles = benv.quick ? 200 : 10000, failures = 0, err = 0;
	double value[32] = { 0 }, base[32] = { 0 }, div = 0, max_div = 0;
	struct mmsb_state *s = mmsb_state_open(NULL);
	struct mmsb_invariant_result inv;
	uint8_t mask[32], pay[32];

	lcg = 0x5eedcafed00df001ull;
	for (int i = 0; s && i < 256 && !err; i++)
		err = mmsb_page_create(s, 128, MMSB_LOC_CPU, NULL);
	if (!s)
		return -errno;
	for (int c = 0; c < cycles && !err; c++) {
		/* 100 deltas: a 32-entry mask on a 128 B page, 1-15 random positions */
		for (int k = 0; k < 100 && !err; k++) {
			uint64_t page = lcg_next() % 256 + 1;
			int draws = (int)(lcg_next() % 15) + 1;
			size_t cnt = 0;
			struct mmsb_delta *d;

			memset(mask, 0, sizeof(mask));
			for (int j = 0; j < draws; j++)
				mask[lcg_next() % 32] = 1;
			for (int j = 0; j < 32; j++)
				if (mask[j])
					pay[cnt++] = (uint8_t)lcg_next();
			d = mmsb_delta_new(page, mask, 32, pay, cnt, MMSB_DELTA_SPARSE);
			err = d ? mmsb_route(s, d) : -errno;
			mmsb_delta_free(d);
		}
		/* 4 graph operations from lower to higher ids, so the graph stays acyclic */
		for (int k = 0; k < 4 && !err; k++) {
			uint64_t a = lcg_next() % 256 + 1, b = lcg_next() % 256 + 1;
			int type = (int)(lcg_next() % 4), e;

			if (a == b)
				continue;
			if (a > b) {
				uint64_t t = a;

				a = b;
				b = t;
			}
			e = lcg_next() & 1 ? mmsb_edge_add(s, a, b, type) :
					     mmsb_edge_remove(s, a, b, type);
			if (e && e != -MMSB_ERR_EDGE_NOT_FOUND)
				err = e;
		}
		/* the 32-channel signal probe: random walk, EMA baseline, max deviation */
		div = 0;
		for (int ch = 0; ch < 32; ch++) {
			value[ch] += (lcg_unit() * 2 - 1) * 0.01;
			base[ch] = 0.995 * base[ch] + 0.005 * value[ch];
			double d = fabs(value[ch] - base[ch]);

			if (!isfinite(d))
				failures++;
			if (d > div)
				div = d;
		}
		if (div > max_div)
			max_div = div;
		if (c % 100 == 99 && !err) {
			err = mmsb_check_invariants(s, MMSB_INV_ALL, &inv);
			if (err > 0) {
				failures++;
				err = 0;
			}
		}
	}
	if (!err) {
		/* the original printed the last divergence as "max"; we print the true maximum */
		printf("METRIC:stability cycles=%d max_divergence=%.6f invariant_failures=%d\n",
		       cycles, max_div, failures);
		bench_value(r, "cycles", cycles);
		bench_value(r, "max_divergence", max_div);
		bench_value(r, "last_divergence", div);
		bench_value(r, "invariant_failures", failures);
	}
	mmsb_state_close(s);
	return err;
}

/* ---- v2: replay divergence over 1000 cycles, syscalls per delta ---- */

int divergence_1000(struct bench_result *r)
{
	struct bench_ctx c = { 0 };
	struct mmsb_divergence d;
	uint8_t buf[SMALL_PAGE];
	double max_l2 = 0;
	int err = 0, checks = 0;

	seed();
	c.s = open_logged(&c, "divergence.tlog", MMSB_DURABLE_NONE);
	if (!c.s)
		return -errno;
	for (int i = 0; i < 16 && !err; i++)
		err = mmsb_page_create(c.s, SMALL_PAGE, MMSB_LOC_CPU, &c.ids[i]);
	for (int cyc = 1; cyc <= 1000 && !err; cyc++) {
		fill_random(buf, sizeof(buf));
		err = mmsb_page_update(c.s, c.ids[rnd() % 16], buf, SMALL_PAGE) < 0 ? -EPROTO : 0;
		if (!err && cyc % 100 == 0) {
			int v = mmsb_state_verify(c.s, &d);

			if (v < 0)
				err = v;
			if (d.l2 > max_l2)
				max_l2 = d.l2;
			checks++;
		}
	}
	if (!err) {
		bench_value(r, "cycles", 1000);
		bench_value(r, "checks", checks);
		bench_value(r, "max_l2_divergence", max_l2);
	}
	teardown_common(&c);
	return err;
}

int syscalls_per_delta(struct bench_result *r)
{
	struct bench_ctx c = { 0 };
	struct mmsb_delta *ds[1000];
	uint8_t m = 1, v;
	struct mmsb_stats st;
	struct mmsb_engine *e = NULL;
	int err = 0;

	c.s = open_logged(&c, "syscalls.tlog", MMSB_DURABLE_BATCH);
	if (!c.s)
		return -errno;
	for (int i = 0; i < 64 && !err; i++)
		err = mmsb_page_create(c.s, 64, MMSB_LOC_CPU, &c.ids[i]);
	for (int i = 0; i < 1000; i++) {
		v = (uint8_t)i;
		ds[i] = mmsb_delta_new(c.ids[i % 64], &m, 1, &v, 1, 0);
	}
	/* routed batches of 1,000 under batch durability: one group commit each */
	mmsb_state_stats_reset(c.s);
	for (int b = 0; b < 10 && !err; b++)
		err = mmsb_route_batch(c.s, ds, 1000);
	mmsb_state_stats(c.s, &st);
	if (!err)
		bench_value(r, "route_batch", (double)(st.log_writes + st.log_syncs) / 10000.0);
	if (!err && !(e = mmsb_engine_new(c.s, NULL)))
		err = -errno;
	mmsb_state_stats_reset(c.s);
	for (int b = 0; b < 10 && !err; b++)
		err = mmsb_engine_apply(e, ds, 1000, NULL);
	mmsb_state_stats(c.s, &st);
	if (!err)
		bench_value(r, "engine_batch", (double)(st.log_writes + st.log_syncs) / 10000.0);
	mmsb_engine_free(e);
	/* single updates: a commit each (the honest cost of batch durability without batching) */
	mmsb_state_stats_reset(c.s);
	for (int i = 0; i < 100 && !err; i++) {
		uint8_t buf[64];

		memset(buf, i + 1, sizeof(buf));
		err = mmsb_page_update(c.s, c.ids[0], buf, 64) < 0 ? -EPROTO : 0;
	}
	mmsb_state_stats(c.s, &st);
	if (!err)
		bench_value(r, "update", (double)(st.log_writes + st.log_syncs) / 100.0);
	for (int i = 0; i < 1000; i++)
		mmsb_delta_free(ds[i]);
	teardown_common(&c);
	return err;
}
