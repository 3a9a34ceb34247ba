/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* mmsb-bench's workloads between their files: keys.c (registry, timed keys), keys_stress.c. */
#ifndef __MMSB_BENCH_KEYS_H
#define __MMSB_BENCH_KEYS_H

#include <mmsb/mmsb.h>
#include <stddef.h>
#include <stdint.h>

#include "bench.h"

#define KIB 1024
#define SMALL_PAGE 1024
#define LARGE_PAGE 262144 /* the original's "1mb" */

/* Seeded payloads and picks (xorshift64*): seed() restarts the sequence from benv.seed. */
void seed(void);
uint64_t rnd(void);
void fill_random(uint8_t *p, size_t n);
/* A state logging to NAME in the scratch directory (c->path), truncated, with durability dur. */
struct mmsb_state *open_logged(struct bench_ctx *c, const char *name, enum mmsb_durability dur);
/* Close both states, free the buffers, remove the scratch files. */
void teardown_common(struct bench_ctx *c);

/* The stress keys (keys_stress.c): run once, fill the result's values. */
int divergence_1000(struct bench_result *r);
int memory_fragmentation(struct bench_result *r);
int memory_full_1m(struct bench_result *r);
int memory_gc(struct bench_result *r);
int memory_snapshot(struct bench_result *r);
int phase6_throughput(struct bench_result *r);
int phase6_tick(struct bench_result *r);
int stability(struct bench_result *r);
int syscalls_per_delta(struct bench_result *r);
int throughput_1w(struct bench_result *r);
int throughput_8w(struct bench_result *r);
int throughput_ncpu(struct bench_result *r);
/* The limit keys (keys_limits.c): a cost beside this machine's own limit, measured together. */
int limits_scaling_2w(struct bench_result *r);
int limits_dense_64k(struct bench_result *r);
int limits_dense_1m(struct bench_result *r);
int limits_dense_64m(struct bench_result *r);
int limits_growth(struct bench_result *r);
int limits_ckpt_behind_log(struct bench_result *r);
/* fsync and fdatasync calls in the process so far (keys_limits.c interposes both) */
extern unsigned long bench_syncs;
int bench_raw_sync_ns(int reps, double *ns);
/* median of v[0..n) (sorted in place), its spread; the rounds a limit key runs (at most the max) */
double bench_median(double *v, int n, double *lo, double *hi);
int bench_rounds(void);
#define BENCH_MAX_ROUNDS 9

#endif /* __MMSB_BENCH_KEYS_H */
