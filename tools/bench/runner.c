// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * mmsb-bench's runner: which keys run, and running one: timed keys sampled until the sampling
 * says enough (median, mean, min, max, p99 per evaluation), with the library's allocations inside
 * the timed region counted by a malloc interposer; stress keys once.
 */
#include <errno.h>
#include <math.h>
#include <mmsb/mmsb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suite.h"
#include "tool_helpers.h"

/* ---- counting malloc: the library's allocations inside the timed region ---- */

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static int counting;
static uint64_t n_allocs, n_bytes;

static inline void count(size_t n)
{
	if (__atomic_load_n(&counting, __ATOMIC_RELAXED)) {
		__atomic_add_fetch(&n_allocs, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&n_bytes, n, __ATOMIC_RELAXED);
	}
}

/* The executable's definitions win over libc's for every library in the process. */
void *malloc(size_t n)
{
	count(n);
	return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
	count(a * b);
	return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
	count(n);
	return __libc_realloc(p, n);
}

void *aligned_alloc(size_t align, size_t n)
{
	count(n);
	return __libc_memalign(align, n);
}

void alloc_count_start(void)
{
	n_allocs = n_bytes = 0;
	__atomic_store_n(&counting, 1, __ATOMIC_RELEASE);
}

void alloc_count_stop(uint64_t *allocs, uint64_t *bytes)
{
	__atomic_store_n(&counting, 0, __ATOMIC_RELEASE);
	*allocs = n_allocs;
	*bytes = n_bytes;
}
const bool allocs_counted = true;
#else
/* sanitizers own malloc: counts are not available in those builds */
void alloc_count_start(void)
{
}

void alloc_count_stop(uint64_t *allocs, uint64_t *bytes)
{
	*allocs = *bytes = 0;
}
const bool allocs_counted = false;
#endif

void bench_value(struct bench_result *r, const char *name, double v)
{
	if (r->n_values < MAX_VALUES) {
		r->vname[r->n_values] = name;
		r->value[r->n_values++] = v;
	}
}

double bench_get(const struct bench_result *r, const char *name, bool *found)
{
	for (int i = 0; r && i < r->n_values; i++)
		if (!strcmp(r->vname[i], name)) {
			if (found)
				*found = true;
			return r->value[i];
		}
	if (found)
		*found = false;
	return NAN;
}

int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void summarise(struct bench_result *r, double *v, uint64_t n)
{
	double sum = 0;

	if (!n)
		return;
	qsort(v, n, sizeof(*v), cmp_double);
	for (uint64_t i = 0; i < n; i++)
		sum += v[i];
	r->samples = n;
	r->min = v[0];
	r->max = v[n - 1];
	r->mean = sum / (double)n;
	r->median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	r->p99 = v[(uint64_t)ceil(0.99 * (double)n) - 1];
}

int run_timed(const struct bench_key *k, struct bench_result *r, const struct sampling *sp)
{
	struct bench_ctx c = { 0 };
	uint64_t n = 0, cap = 1024, evals = 0, inner = 1, t_start, allocs, bytes;
	uint64_t sum_allocs = 0, sum_bytes = 0;
	double *v = malloc(cap * sizeof(*v));
	int err = 0;

	if (!v)
		return -ENOMEM;
	if (k->setup)
		err = k->setup(&c);
	/* one warm-up evaluation, untimed */
	if (!err && k->pre)
		err = k->pre(&c);
	if (!err)
		err = k->run(&c);
	if (!err && k->post)
		err = k->post(&c);
	/*
	 * Fixed work: exactly sp->evals evaluations and nothing that depends on a clock, so two
	 * runs execute the same instructions (the perf gate subtracts a run of N from one of 2N).
	 */
	for (uint64_t i = 0; !err && i < sp->evals; i++) {
		if (k->pre)
			err = k->pre(&c);
		if (!err)
			err = k->run(&c);
		if (!err && k->post)
			err = k->post(&c);
	}
	if (sp->evals) {
		if (k->teardown)
			k->teardown(&c);
		r->evals = sp->evals;
		free(v);
		return err;
	}
	/* keys without per-evaluation setup are timed in groups long enough for the clock */
	if (!err && !sp->compat && !k->pre && !k->post) {
		uint64_t t0 = mono_ns();

		err = k->run(&c);
		uint64_t one = mono_ns() - t0;

		inner = one >= 2000 ? 1 : 2000 / (one ? one : 1);
		if (inner > 10000)
			inner = 10000;
	}
	t_start = mono_ns();
	while (!err) {
		uint64_t t0, t1, now;

		if (k->pre && (err = k->pre(&c)))
			break;
		alloc_count_start();
		t0 = mono_ns();
		for (uint64_t i = 0; i < inner && !err; i++)
			err = k->run(&c);
		t1 = mono_ns();
		alloc_count_stop(&allocs, &bytes);
		if (err)
			break;
		if (k->post && (err = k->post(&c)))
			break;
		if (n == cap) {
			double *nv = realloc(v, 2 * cap * sizeof(*v));

			if (!nv) {
				err = -ENOMEM;
				break;
			}
			v = nv;
			cap *= 2;
		}
		v[n++] = (double)(t1 - t0) / (double)inner;
		sum_allocs += allocs;
		sum_bytes += bytes;
		evals += inner;
		if (sp->compat)
			break;
		now = mono_ns();
		if ((n >= sp->min_samples && now - t_start >= sp->min_ns) ||
		    now - t_start >= sp->max_ns || evals >= sp->max_evals)
			break;
	}
	if (k->teardown)
		k->teardown(&c);
	/* timed ones, the warm-up, and the calibration run when there was one */
	r->evals = evals + 1 + (!sp->compat && !k->pre && !k->post);
	if (!err) {
		summarise(r, v, n);
		r->allocs = evals ? (double)sum_allocs / (double)evals : 0;
		r->bytes = evals ? (double)sum_bytes / (double)evals : 0;
	}
	free(v);
	return err;
}

void run_key(const struct bench_key *k, struct bench_result *r, const struct sampling *sp)
{
	if (k->skip) {
		r->skipped = true;
		r->skip_reason = k->skip;
	} else if (k->stress) {
		r->err = k->stress(r);
		if (r->raw) {
			summarise(r, r->raw, r->samples);
			free(r->raw);
			r->raw = NULL;
		}
	} else {
		r->err = run_timed(k, r, sp);
	}
	if (r->err == -MMSB_ERR_NO_GPU) {
		/* a GPU key on a machine without the GPU tier: skipped, and why */
		static char why[320];
		struct mmsb_gpu_info gi = { .sz = sizeof(gi) };

		mmsb_gpu_info(&gi);
		snprintf(why, sizeof(why), "no GPU: %s", gi.reason);
		r->err = 0;
		r->skipped = true;
		r->skip_reason = why;
	}
}

char *key_name(const struct bench_key *k)
{
	static char buf[128];

	snprintf(buf, sizeof(buf), "%s/%s", k->category, k->name);
	return buf;
}

bool key_has_derived(const struct bench_key *k)
{
	return k->applies && !strcmp(k->category, "propagation");
}

/* Does the name at P (LEN bytes: a -c or -k token) name k: its category, or its own or derived name? */
static bool names_key(const char *p, size_t len, const struct bench_key *k, bool category)
{
	static const char derived[] = "_per_apply";
	const char *full = key_name(k);
	size_t fl = strlen(full), dl = sizeof(derived) - 1;

	if (category)
		return strlen(k->category) == len && !strncmp(p, k->category, len);
	if (len == fl && !strncmp(p, full, len))
		return true;
	return key_has_derived(k) && len == fl + dl && !strncmp(p, full, fl) &&
	       !strncmp(p + fl, derived, dl);
}

/* Does a token of the comma-separated LIST name k? */
static bool list_names(const char *list, const struct bench_key *k, bool category)
{
	for (const char *p = list;; p += strcspn(p, ",") + 1) {
		size_t len = strcspn(p, ",");

		if (names_key(p, len, k, category))
			return true;
		if (!p[len])
			return false;
	}
}

/* A derived key (propagation/X_per_apply) is selected by its own name too: it needs X. */
bool key_selected(const struct bench_opts *o, const struct bench_key *k)
{
	if (o->categories && !list_names(o->categories, k, true))
		return false;
	return !o->keys || list_names(o->keys, k, false);
}

/*
 * Every name in -k and -c must be one the suite knows: a typo in a CI key list runs nothing
 * and would pass. Returns the first unknown (or empty) name, NULL when all are known.
 */
const char *unknown_name(const char *list, bool categories)
{
	static char bad[128];

	for (const char *p = list;; p += strcspn(p, ",") + 1) {
		size_t len = strcspn(p, ",");
		bool known = false;

		for (size_t i = 0; len && !known && i < n_bench_keys; i++)
			known = names_key(p, len, &bench_keys[i], categories);
		if (!known) {
			snprintf(bad, sizeof(bad), "%.*s", (int)(len < 100 ? len : 100), p);
			return bad;
		}
		if (!p[len])
			return NULL;
	}
}
