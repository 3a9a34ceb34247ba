/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * mmsb-bench between its files: the options (mmsb-bench.c), running a key (runner.c), printing
 * and comparing results (report.c), the validator (validate.c), the GPU crossover (gpu.c) and a
 * host language driving the same keys (host.c). The workloads are bench.h's.
 */
#ifndef __MMSB_BENCH_SUITE_H
#define __MMSB_BENCH_SUITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bench.h"

struct json_object;

struct bench_opts {
	bool compat, quick, list;
	const char *json, *compare, *validation_json, *compare_json, *host, *calibrate_gpu;
	char *categories, *keys;
	bool gate, machine, gate_plan;
	uint64_t gate_repeats;
	uint64_t evals; /* > 0: fixed work, for counting instructions (no timing, no output) */
	int validate;	/* 0 no, 1 the original's, 2 strict too */
	struct json_object *baseline; /* --compare's file, read and checked before any key runs */
};

/* How long a timed key is sampled, and how (compat: one shot; evals: fixed work, untimed). */
struct sampling {
	uint64_t min_samples, max_evals;
	uint64_t min_ns, max_ns;
	bool compat;
	uint64_t evals;
};

/* A derived key: propagation time per actual apply. */
struct derived {
	char name[64];
	const char *category;
	struct bench_result r;
};

/* ---- runner.c ---- */

/* Whether the malloc interposer counts (not under sanitizers, which own malloc). */
extern const bool allocs_counted;

int cmp_double(const void *a, const void *b);
/* "category/name", in a static buffer */
char *key_name(const struct bench_key *k);
/* A propagation key that counts its applies has a derived twin, propagation/NAME_per_apply. */
bool key_has_derived(const struct bench_key *k);
/* Whether -c and -k select the key. */
bool key_selected(const struct bench_opts *o, const struct bench_key *k);
/* The first name of LIST the suite does not know ("" for an empty one), NULL when all are. */
const char *unknown_name(const char *list, bool categories);
/* One timed key's samples into r (with sp->evals: exactly that many evaluations, untimed). */
int run_timed(const struct bench_key *k, struct bench_result *r, const struct sampling *sp);
/* Any key: skipped, stress or timed; a GPU key without the GPU tier is skipped, and says why. */
void run_key(const struct bench_key *k, struct bench_result *r, const struct sampling *sp);

/* ---- report.c ---- */

void fmt_ns(double ns, char *buf, size_t len);
void print_result(const struct bench_result *r);
/* This machine's block, what a baseline is matched by. */
struct json_object *machine_json(void);
const struct bench_result *find_result(struct bench_result *res, size_t n, const char *cat,
				       const char *name);
/* The results in the original baseline.json schema, plus the machine block and extras. */
int results_write(const struct bench_opts *o, struct bench_result *res, size_t n,
		  struct derived *dv, size_t nd, struct json_object *extra);
/*
 * The --compare baseline, read (a regular file, at most 64 MiB) and checked before any key runs:
 * a JSON object whose "benchmarks" hold at least one key with a median. NULL after one line.
 */
struct json_object *baseline_load(const char *path);
/* The ratio to a baseline per key, judged against the key's band; with --gate, re-measured. */
int compare(const struct bench_opts *o, struct bench_result *res, size_t n, struct derived *dv,
	    size_t nd, const struct sampling *sp);

/* ---- validate.c ---- */

/* Whether the validator at level (1 the original's, 2 strict too) reads the key. */
bool needed_by_validation(int level, const struct bench_key *k);
int validate(int level, const char *json_path, struct bench_result *res, size_t n);

/* ---- gpu.c ---- */

int calibrate_gpu(const char *path, bool quick);

/* ---- host.c ---- */

/* python3 -m mmsb.bench on this tool's libmmsb: its JSON, or NULL after one error line. */
struct json_object *run_python_host(bool quick);
/* The host's figures beside the C ones, printed and added to out as host and host_vs_c. */
void host_table(struct json_object *host, struct bench_result *res, size_t n,
		struct json_object *out);

#endif /* __MMSB_BENCH_SUITE_H */
