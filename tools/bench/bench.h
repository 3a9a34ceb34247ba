/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* mmsb-bench: the benchmark registry shared by the runner and the workloads. */
#ifndef __MMSB_BENCH_H
#define __MMSB_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mmsb_state;

/* Run-wide settings the workloads read. */
struct bench_env {
	bool quick;    /* smoke run: small stress parameters */
	bool full_1m;  /* the opt-in million-page run */
	char dir[256]; /* scratch directory for logs and checkpoints */
	uint64_t seed;
};

extern struct bench_env benv;

/*
 * A timed key. setup once (untimed), then per evaluation: pre (untimed), run (timed), post
 * (untimed); teardown once. `inner` > 0 lets the runner time several evaluations together when a
 * single one is too short for the clock (keys without pre/post only).
 */
struct bench_ctx {
	struct mmsb_state *s, *s2;
	uint64_t ids[1100];
	uint8_t *buf[2];
	size_t size;
	unsigned int flip;
	void *p;   /* workload-private */
	double *f; /* semiring inputs */
	uint8_t *b;
	char path[512], path2[512];
};

/* A stress key reports values rather than a timing distribution. */
struct bench_result;

/*
 * How the perf gate (ci/perf-gate.sh, docs/ci.md) judges a key: by the instructions one
 * evaluation executes (CPU-bound keys: deterministic under cachegrind), by paired timed runs of
 * BASE and HEAD (keys bound by fsync or by threads, whose instruction counts say nothing about
 * their speed), or not at all (device-bound GPU keys, memory and correctness figures).
 */
enum bench_gate {
	GATE_NONE,
	GATE_INSN,
	GATE_PAIRED,
};

struct bench_key {
	const char *category, *name;
	const char *desc;
	int (*setup)(struct bench_ctx *c);
	int (*pre)(struct bench_ctx *c);
	int (*run)(struct bench_ctx *c);
	int (*post)(struct bench_ctx *c);
	void (*teardown)(struct bench_ctx *c);
	/* stress keys: run once, fill the result's values and print METRIC lines */
	int (*stress)(struct bench_result *r);
	/* deltas applied per evaluation (for the derived per-apply keys), 0 if not meaningful */
	unsigned int applies;
	enum bench_gate gate;
	const char *skip; /* non-NULL: not run on this build, and why */
	bool opt_in;	  /* only with its own flag (memory/full_1m) */
};

#define MAX_VALUES 16

struct bench_result {
	const struct bench_key *key;
	bool ran, skipped;
	const char *skip_reason;
	int err;
	/* timing (ns per evaluation) */
	uint64_t samples;
	uint64_t evals; /* every run() call, the untimed warm-up and calibration included */
	double median, mean, min, max, p99;
	double allocs, bytes; /* per evaluation, counted by the malloc interposer */
	/* a stress key's own samples (ns each), summarised by the runner; malloc'ed */
	double *raw;
	/* named values of stress keys (throughput_per_sec, max_divergence, ...) */
	const char *vname[MAX_VALUES];
	double value[MAX_VALUES];
	int n_values;
};

void bench_value(struct bench_result *r, const char *name, double v);
double bench_get(const struct bench_result *r, const char *name, bool *found);

extern const struct bench_key bench_keys[];
extern const size_t n_bench_keys;

/* The malloc interposer in mmsb-bench.c. */
void alloc_count_start(void);
void alloc_count_stop(uint64_t *allocs, uint64_t *bytes);

#endif /* __MMSB_BENCH_H */
