// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * mmsb-bench: the original MMSB benchmark suite under its original keys and parameters, our
 * stricter keys beside them, the original 10-check validator, and comparison with a baseline.
 * Exit status: 0 ok, 1 failure (a benchmark error, a failed validation), 2 usage.
 */
#include <argp.h>
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <mmsb/mmsb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "bench_build.h"
#include "tool_helpers.h"

const char *argp_program_version = "mmsb-bench 0.1.0";
const char *argp_program_bug_address = "https://github.com/mmsb/mmsb/issues";

struct bench_env benv;

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
#define ALLOCS_COUNTED true
#else
/* sanitizers own malloc: counts are not available in those builds */
void alloc_count_start(void)
{
}

void alloc_count_stop(uint64_t *allocs, uint64_t *bytes)
{
	*allocs = *bytes = 0;
}
#define ALLOCS_COUNTED false
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

/* ---- options ---- */

enum {
	OPT_COMPARE = 1000,
	OPT_VALIDATE,
	OPT_VALIDATION_JSON,
	OPT_FULL_1M,
	OPT_DIR,
	OPT_SEED,
	OPT_GATE,
	OPT_COMPARE_JSON,
	OPT_MACHINE,
	OPT_HOST,
	OPT_CALIBRATE_GPU,
	OPT_EVALS,
	OPT_GATE_PLAN,
};

static struct {
	bool compat, quick, list;
	const char *json, *compare, *validation_json, *compare_json, *host, *calibrate_gpu;
	char *categories, *keys;
	bool gate, machine, gate_plan;
	uint64_t gate_repeats;
	uint64_t evals; /* > 0: fixed work, for counting instructions (no timing, no output) */
	int validate;	/* 0 no, 1 the original's, 2 strict too */
} opt;

static const struct argp_option options[] = {
	{ "mode", 'm', "MODE", 0, "stats (default: many samples, median/p99) or compat (one shot)",
	  0 },
	{ "quick", 'q', NULL, 0, "A smoke run: few samples, small stress parameters (< 30 s)", 0 },
	{ "json", 'j', "FILE", 0, "Write results in the original baseline.json schema + machine",
	  0 },
	{ "categories", 'c', "LIST", 0, "Only these categories (comma-separated)", 0 },
	{ "keys", 'k', "LIST", 0, "Only these keys (comma-separated CATEGORY/NAME)", 0 },
	{ "list", 'l', NULL, 0, "List every key and exit", 0 },
	{ "compare", OPT_COMPARE, "BASELINE", 0,
	  "Ratio to a baseline per key, judged against the key's noise band (docs/ci.md)", 0 },
	{ "gate", OPT_GATE, "REPEATS", OPTION_ARG_OPTIONAL,
	  "With --compare: re-measure a key beyond its band up to REPEATS more times (default 2), "
	  "judge the best run, exit 1 naming every key that still regresses",
	  0 },
	{ "host", OPT_HOST, "LANG", 0,
	  "Also drive the delta, propagation and batch keys from LANG (python) through its "
	  "binding, beside the C figures: the crossing cost per call",
	  0 },
	{ "calibrate-gpu", OPT_CALIBRATE_GPU, "FILE", 0,
	  "Measure the CPU and GPU sides of an apply to a GPU page over page sizes x densities, "
	  "write the router's crossover table to FILE, then check the router's choice is within "
	  "10 % of the faster side at every point (exit 1 if not)",
	  0 },
	{ "machine", OPT_MACHINE, NULL, 0,
	  "Print this machine's block (what a baseline is matched by) as JSON and exit", 0 },
	{ "compare-json", OPT_COMPARE_JSON, "FILE", 0,
	  "Write the comparison per key (figures, ratio, band, runs, verdict) as JSON", 0 },
	{ "validate", OPT_VALIDATE, "strict", OPTION_ARG_OPTIONAL,
	  "The original's 10 checks (exit 1 on a failure); =strict adds the literal targets", 0 },
	{ "validation-json", OPT_VALIDATION_JSON, "FILE", 0,
	  "Write the validation results in the original's schema", 0 },
	{ "full-1m", OPT_FULL_1M, NULL, 0, "Also run memory/full_1m (a million pages)", 0 },
	{ "dir", OPT_DIR, "DIR", 0,
	  "Scratch directory for logs and checkpoints (default: a new one in TMPDIR)", 0 },
	{ "seed", OPT_SEED, "N", 0, "Seed for payloads and picks", 0 },
	{ "evals", OPT_EVALS, "N", 0,
	  "Fixed work for an instruction count (make perf-gate): each timed key runs its setup, "
	  "one warm-up and exactly N evaluations, untimed, and prints only 'KEY evals N'",
	  0 },
	{ "gate-plan", OPT_GATE_PLAN, NULL, 0,
	  "Print how the perf gate judges each key ('insn KEY', 'paired KEY') and exit", 0 },
	{},
};

static error_t parse_opt(int key, char *arg, struct argp_state *st)
{
	switch (key) {
	case 'm':
		if (!strcmp(arg, "compat"))
			opt.compat = true;
		else if (strcmp(arg, "stats"))
			argp_error(st, "unknown mode '%s' (stats or compat)", arg);
		break;
	case 'q':
		opt.quick = true;
		break;
	case 'j':
		opt.json = arg;
		break;
	case 'c':
		opt.categories = arg;
		break;
	case 'k':
		opt.keys = arg;
		break;
	case 'l':
		opt.list = true;
		break;
	case OPT_COMPARE:
		opt.compare = arg;
		break;
	case OPT_GATE:
		opt.gate = true;
		opt.gate_repeats = 2;
		if (arg && parse_u64(arg, 0, 20, &opt.gate_repeats))
			argp_error(st, "--gate takes a repeat count from 0 to 20, not '%s'", arg);
		break;
	case OPT_COMPARE_JSON:
		opt.compare_json = arg;
		break;
	case OPT_MACHINE:
		opt.machine = true;
		break;
	case OPT_CALIBRATE_GPU:
		opt.calibrate_gpu = arg;
		break;
	case OPT_HOST:
		if (strcmp(arg, "python"))
			argp_error(st, "--host knows python, not '%s'", arg);
		opt.host = arg;
		break;
	case OPT_VALIDATE:
		if (arg && strcmp(arg, "strict"))
			argp_error(st, "--validate takes no value or =strict, not '%s'", arg);
		opt.validate = arg ? 2 : 1;
		break;
	case OPT_VALIDATION_JSON:
		opt.validation_json = arg;
		break;
	case OPT_FULL_1M:
		benv.full_1m = true;
		break;
	case OPT_DIR:
		if (strlen(arg) >= sizeof(benv.dir) - 32)
			argp_error(st, "directory name too long");
		strcpy(benv.dir, arg);
		break;
	case OPT_SEED:
		if (parse_u64(arg, 0, UINT64_MAX, &benv.seed))
			argp_error(st, "invalid seed '%s'", arg);
		break;
	case OPT_EVALS:
		if (parse_u64(arg, 1, 100000000, &opt.evals))
			argp_error(st, "--evals takes a count from 1 to 100000000, not '%s'", arg);
		break;
	case OPT_GATE_PLAN:
		opt.gate_plan = true;
		break;
	case ARGP_KEY_ARG:
		argp_error(st, "unexpected argument '%s'", arg);
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

static const struct argp argp = {
	.options = options,
	.parser = parse_opt,
	.doc = "Run the MMSB benchmark suite: every key of the original suite with its original "
	       "parameters (the \"1mb\" pages are 256 KiB, \"100_epochs\" replays 5), the stress "
	       "tests and phase6, and our stricter v2 keys.\v"
	       "Times are per evaluation. Stats mode samples each key until it has at least 200 "
	       "samples and 0.3 s (at most 2 s) and reports median, mean, min, max and p99; compat "
	       "mode times one evaluation after one warm-up, as the original did.\n\n"
	       "EXAMPLES:\n"
	       "  mmsb-bench                                  # the whole suite, stats mode\n"
	       "  mmsb-bench -c delta,propagation             # two categories\n"
	       "  mmsb-bench -k delta/cpu_sparse              # one key\n"
	       "  mmsb-bench --json out.json --compare ci/baselines/original-mmsb.json\n"
	       "  mmsb-bench --validate                       # the original 10 checks\n"
	       "  mmsb-bench --compare ci/baselines/c-2cpu-amd-epyc.json --gate   # the CI gate\n"
	       "  mmsb-bench --quick --json smoke.json        # a smoke run",
};

/* ---- running ---- */

struct sampling {
	uint64_t min_samples, max_evals;
	uint64_t min_ns, max_ns;
};

static int cmp_double(const void *a, const void *b)
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

static int run_timed(const struct bench_key *k, struct bench_result *r, const struct sampling *sp)
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
	 * Fixed work: exactly opt.evals evaluations and nothing that depends on a clock, so two
	 * runs execute the same instructions (the perf gate subtracts a run of N from one of 2N).
	 */
	for (uint64_t i = 0; !err && i < opt.evals; i++) {
		if (k->pre)
			err = k->pre(&c);
		if (!err)
			err = k->run(&c);
		if (!err && k->post)
			err = k->post(&c);
	}
	if (opt.evals) {
		if (k->teardown)
			k->teardown(&c);
		r->evals = opt.evals;
		free(v);
		return err;
	}
	/* keys without per-evaluation setup are timed in groups long enough for the clock */
	if (!err && !opt.compat && !k->pre && !k->post) {
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
		if (opt.compat)
			break;
		now = mono_ns();
		if ((n >= sp->min_samples && now - t_start >= sp->min_ns) ||
		    now - t_start >= sp->max_ns || evals >= sp->max_evals)
			break;
	}
	if (k->teardown)
		k->teardown(&c);
	/* timed ones, the warm-up, and the calibration run when there was one */
	r->evals = evals + 1 + (!opt.compat && !k->pre && !k->post);
	if (!err) {
		summarise(r, v, n);
		r->allocs = evals ? (double)sum_allocs / (double)evals : 0;
		r->bytes = evals ? (double)sum_bytes / (double)evals : 0;
	}
	free(v);
	return err;
}

static bool in_list(const char *list, const char *item)
{
	char *copy = strdup(list), *tok, *save;
	bool hit = false;

	for (tok = strtok_r(copy, ",", &save); tok && !hit; tok = strtok_r(NULL, ",", &save))
		hit = !strcmp(tok, item);
	free(copy);
	return hit;
}

static char *key_name(const struct bench_key *k);

/* A derived key (propagation/X_per_apply) is selected by its own name too: it needs X. */
static bool selected(const struct bench_key *k)
{
	char derived[160];

	if (opt.categories && !in_list(opt.categories, k->category))
		return false;
	if (!opt.keys || in_list(opt.keys, key_name(k)))
		return true;
	snprintf(derived, sizeof(derived), "%s_per_apply", key_name(k));
	return k->applies && !strcmp(k->category, "propagation") && in_list(opt.keys, derived);
}

/*
 * Every name in -k and -c must be one the suite knows: a typo in a CI key list runs nothing
 * and would pass. Returns the first unknown (or empty) name, NULL when all are known.
 */
static const char *unknown_name(const char *list, bool categories)
{
	static char bad[128];
	const char *p = list;

	for (;;) {
		size_t len = strcspn(p, ",");
		bool known = false;

		for (size_t i = 0; len && !known && i < n_bench_keys; i++) {
			const struct bench_key *k = &bench_keys[i];
			char name[160];

			if (categories) {
				known = strlen(k->category) == len && !strncmp(p, k->category, len);
				continue;
			}
			snprintf(name, sizeof(name), "%s", key_name(k));
			known = strlen(name) == len && !strncmp(p, name, len);
			if (!known && k->applies && !strcmp(k->category, "propagation")) {
				snprintf(name, sizeof(name), "%s_per_apply", key_name(k));
				known = strlen(name) == len && !strncmp(p, name, len);
			}
		}
		if (!known) {
			snprintf(bad, sizeof(bad), "%.*s", (int)(len < 100 ? len : 100), p);
			return bad;
		}
		if (!p[len])
			return NULL;
		p += len + 1;
	}
}

static char *key_name(const struct bench_key *k)
{
	static char buf[128];

	snprintf(buf, sizeof(buf), "%s/%s", k->category, k->name);
	return buf;
}

static void fmt_ns(double ns, char *buf, size_t len)
{
	if (ns < 1e3)
		snprintf(buf, len, "%.1f ns", ns);
	else if (ns < 1e6)
		snprintf(buf, len, "%.2f us", ns / 1e3);
	else if (ns < 1e9)
		snprintf(buf, len, "%.2f ms", ns / 1e6);
	else
		snprintf(buf, len, "%.2f s", ns / 1e9);
}

static void print_result(const struct bench_result *r)
{
	char med[32], p99[32], mn[32], mx[32];

	if (r->skipped) {
		printf("%-34s skipped: %s\n", key_name(r->key), r->skip_reason);
		return;
	}
	if (r->err) {
		printf("%-34s FAILED: %s\n", key_name(r->key), mmsb_strerror(r->err));
		return;
	}
	if (r->samples) {
		fmt_ns(r->median, med, sizeof(med));
		fmt_ns(r->p99, p99, sizeof(p99));
		fmt_ns(r->min, mn, sizeof(mn));
		fmt_ns(r->max, mx, sizeof(mx));
		printf("%-34s %11s  p99 %11s  min %11s  max %11s  n %-7llu", key_name(r->key), med,
		       p99, mn, mx, (unsigned long long)r->samples);
		if (!r->key->stress)
			printf(" allocs %.1f (%.0f B)", r->allocs, r->bytes);
	} else {
		printf("%-34s", key_name(r->key));
	}
	for (int i = 0; i < r->n_values; i++)
		printf("%s%s=%.6g", i || r->samples ? "  " : " ", r->vname[i], r->value[i]);
	printf("\n");
}

/* ---- derived keys: propagation time per actual apply ---- */

struct derived {
	char name[64];
	const char *category;
	struct bench_result r;
};

/* ---- machine block ---- */

static struct json_object *machine_json(void)
{
	struct json_object *m = json_object_new_object();
	char model[256] = "unknown", line[512];
	struct utsname u;
	FILE *f = fopen("/proc/cpuinfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "model name", 10)) {
			char *p = strchr(line, ':');

			if (p) {
				snprintf(model, sizeof(model), "%s", p + 2);
				model[strcspn(model, "\n")] = 0;
			}
			break;
		}
	if (f)
		fclose(f);
	uname(&u);
	json_object_object_add(m, "cpu_model", json_object_new_string(model));
	json_object_object_add(m, "cores", json_object_new_int((int)sysconf(_SC_NPROCESSORS_ONLN)));
	json_object_object_add(m, "kernel", json_object_new_string(u.release));
	json_object_object_add(m, "arch", json_object_new_string(u.machine));
	json_object_object_add(m, "compiler", json_object_new_string("gcc " __VERSION__));
	json_object_object_add(m, "build_flags", json_object_new_string(MMSB_BUILD_FLAGS));
	json_object_object_add(m, "git_revision", json_object_new_string(MMSB_GIT_REV));
	json_object_object_add(m, "libmmsb", json_object_new_string(mmsb_version()));
	json_object_object_add(m, "allocs_counted", json_object_new_boolean(ALLOCS_COUNTED));
	return m;
}

static void add_result_json(struct json_object *benches, const char *cat, const char *name,
			    const struct bench_result *r)
{
	struct json_object *c, *o = json_object_new_object();

	if (!json_object_object_get_ex(benches, cat, &c)) {
		c = json_object_new_object();
		json_object_object_add(benches, cat, c);
	}
	if (r->skipped) {
		json_object_object_add(o, "skipped", json_object_new_string(r->skip_reason));
	} else if (r->err) {
		json_object_object_add(o, "error", json_object_new_string(mmsb_errname(r->err)));
	} else {
		if (r->samples) {
			/* the original schema: integer ns and bytes */
			json_object_object_add(o, "median_ns",
					       json_object_new_int64(llround(r->median)));
			json_object_object_add(o, "mean_ns",
					       json_object_new_int64(llround(r->mean)));
			json_object_object_add(o, "min_ns", json_object_new_int64(llround(r->min)));
			json_object_object_add(o, "max_ns", json_object_new_int64(llround(r->max)));
			json_object_object_add(o, "p99_ns", json_object_new_int64(llround(r->p99)));
			json_object_object_add(o, "median_ns_exact",
					       json_object_new_double(r->median));
			json_object_object_add(o, "samples",
					       json_object_new_int64((int64_t)r->samples));
			if (r->evals)
				json_object_object_add(o, "evals",
						       json_object_new_int64((int64_t)r->evals));
			json_object_object_add(o, "allocs",
					       json_object_new_int64(llround(r->allocs)));
			json_object_object_add(o, "memory_bytes",
					       json_object_new_int64(llround(r->bytes)));
		}
		for (int i = 0; i < r->n_values; i++)
			json_object_object_add(o, r->vname[i], json_object_new_double(r->value[i]));
	}
	json_object_object_add(c, name, o);
}

/* ---- compare ---- */

/*
 * How far a key may drift from its baseline before it counts as slower (or, inverted, faster).
 * One table for the report and the gate (docs/ci.md): the first matching prefix wins.
 */
static const struct band {
	const char *prefix;
	double band;
	const char *why;
} bands[] = {
	{ "persistence/", 1.50, "fsync: the disk's latency varies between runs" },
	{ "delta/cpu_sparse_durable", 1.50, "an fdatasync per update" },
	{ "system/", 1.50, "three fsyncs per pipeline" },
	{ "stress/", 1.50, "a checkpoint with fsyncs per evaluation" },
	{ "throughput/", 1.50, "threads on shared vCPUs" },
	{ "phase6/", 1.50, "threads on shared vCPUs" },
	{ "", 1.25, "CPU-bound: run-to-run spread on a shared VM is up to 12 %" },
};

/* Keys this short are a few cycles; the clock's and the grouping's noise is a large share. */
#define TINY_KEY_NS 20.0
#define TINY_KEY_BAND 1.50

static double band_of(const char *full, double baseline_ns)
{
	if (baseline_ns < TINY_KEY_NS)
		return TINY_KEY_BAND;
	for (size_t i = 0; i < sizeof(bands) / sizeof(bands[0]); i++)
		if (!strncmp(full, bands[i].prefix, strlen(bands[i].prefix)))
			return bands[i].band;
	return bands[sizeof(bands) / sizeof(bands[0]) - 1].band;
}

static double baseline_median(struct json_object *base, const char *cat, const char *name)
{
	struct json_object *b, *c, *k, *m;

	if (!json_object_object_get_ex(base, "benchmarks", &b) ||
	    !json_object_object_get_ex(b, cat, &c) || !json_object_object_get_ex(c, name, &k))
		return NAN;
	/* the unrounded median when the baseline has it: integer ns are coarse for short keys */
	if (json_object_object_get_ex(k, "median_ns_exact", &m) ||
	    json_object_object_get_ex(k, "median_ns", &m))
		return json_object_get_double(m);
	return NAN;
}

static void run_key(const struct bench_key *k, struct bench_result *r, const struct sampling *sp);

static int compare(struct bench_result *res, size_t n, struct derived *dv, size_t nd,
		   const struct sampling *sp)
{
	struct json_object *base = json_object_from_file(opt.compare), *note;
	struct json_object *out = json_object_new_object(), *keys = json_object_new_array();
	int faster = 0, slower = 0, similar = 0, regressed = 0, ret = EXIT_OK;

	if (!base) {
		p_err("%s: cannot read a baseline: %s", opt.compare, json_util_get_last_err());
		json_object_put(out);
		json_object_put(keys);
		return EXIT_FAIL;
	}
	printf("\ncompared with %s", opt.compare);
	if (json_object_object_get_ex(base, "note", &note))
		printf(" (%s)", json_object_get_string(note));
	printf("\n%-34s %12s %12s %8s %6s %4s  %s\n", "key", "baseline", "this run", "ratio",
	       "band", "runs", "verdict");
	for (size_t i = 0; i < n + nd; i++) {
		struct bench_result *r = i < n ? &res[i] : &dv[i - n].r;
		const char *cat = i < n ? r->key->category : dv[i - n].category;
		const char *name = i < n ? r->key->name : dv[i - n].name;
		double b, ratio, band, best;
		char bs[32], os[32], full[128];
		const char *verdict;
		int runs = 1;

		if (!r->ran || r->err || r->skipped || !r->samples)
			continue;
		b = baseline_median(base, cat, name);
		if (isnan(b) || b <= 0)
			continue;
		snprintf(full, sizeof(full), "%s/%s", cat, name);
		band = band_of(full, b);
		best = r->median;
		/*
		 * A key beyond its band may be noise: measure it again, alone, and judge its best
		 * run. A real regression is slow every time. Derived keys follow their source key.
		 */
		for (uint64_t k = 0; opt.gate && i < n && best / b > band && k < opt.gate_repeats;
		     k++) {
			struct bench_result again = { .key = r->key, .ran = true };

			run_key(r->key, &again, sp);
			runs++;
			if (!again.err && again.samples && again.median < best)
				best = again.median;
		}
		ratio = best / b;
		verdict = ratio * band < 1 ? "faster" : ratio > band ? "slower" : "similar";
		faster += ratio * band < 1;
		slower += ratio > band;
		similar += ratio * band >= 1 && ratio <= band;
		fmt_ns(b, bs, sizeof(bs));
		fmt_ns(best, os, sizeof(os));
		printf("%-34s %12s %12s %8.4f %6.2f %4d  %s (%.2fx)\n", full, bs, os, ratio, band,
		       runs, verdict, ratio < 1 ? 1 / ratio : ratio);
		if (opt.gate && ratio > band && i < n) {
			regressed++;
			fprintf(stderr,
				"mmsb-bench: regression %s: baseline %s, this run %s (best of %d), "
				"ratio %.2f beyond its %.2f band\n",
				full, bs, os, runs, ratio, band);
		}
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "key", json_object_new_string(full));
		json_object_object_add(o, "baseline_ns", json_object_new_double(b));
		json_object_object_add(o, "this_run_ns", json_object_new_double(best));
		json_object_object_add(o, "ratio", json_object_new_double(ratio));
		json_object_object_add(o, "band", json_object_new_double(band));
		json_object_object_add(o, "runs", json_object_new_int(runs));
		json_object_object_add(o, "gated", json_object_new_boolean(opt.gate && i < n));
		json_object_object_add(o, "verdict", json_object_new_string(verdict));
		json_object_array_add(keys, o);
	}
	printf("%d faster, %d similar, %d slower", faster, similar, slower);
	if (opt.gate)
		printf("; gate: %s", regressed ? "FAIL" : "pass");
	printf("\n");
	if (regressed)
		ret = EXIT_FAIL;
	json_object_object_add(out, "baseline", json_object_new_string(opt.compare));
	json_object_object_add(out, "gate", json_object_new_boolean(opt.gate));
	json_object_object_add(out, "repeats", json_object_new_int((int)opt.gate_repeats));
	json_object_object_add(out, "regressions", json_object_new_int(regressed));
	json_object_object_add(out, "faster", json_object_new_int(faster));
	json_object_object_add(out, "similar", json_object_new_int(similar));
	json_object_object_add(out, "slower", json_object_new_int(slower));
	json_object_object_add(out, "keys", keys);
	if (opt.compare_json &&
	    json_object_to_file_ext(opt.compare_json, out,
				    JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED)) {
		p_err("%s: %s", opt.compare_json, json_util_get_last_err());
		ret = EXIT_FAIL;
	}
	json_object_put(out);
	json_object_put(base);
	return ret;
}

/* ---- the validator: the original's 10 checks, its thresholds, its order ---- */

static const struct bench_result *find(struct bench_result *res, size_t n, const char *cat,
				       const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (res[i].ran && !strcmp(res[i].key->category, cat) &&
		    !strcmp(res[i].key->name, name))
			return &res[i];
	return NULL;
}

struct check {
	const char *id, *desc, *target;
	bool passed;
	char details[256];
	struct json_object *json;
};

static bool median_le(struct bench_result *res, size_t n, const char *cat, const char *name,
		      double limit_ns, struct check *c)
{
	const struct bench_result *r = find(res, n, cat, name);
	char v[32], l[32];

	if (!r || r->err || !r->samples) {
		snprintf(c->details, sizeof(c->details), "%s/%s did not run", cat, name);
		return false;
	}
	fmt_ns(r->median, v, sizeof(v));
	fmt_ns(limit_ns, l, sizeof(l));
	snprintf(c->details, sizeof(c->details), "%s/%s median %s (threshold %s)", cat, name, v, l);
	c->json = json_object_new_object();
	json_object_object_add(c->json, "metric", json_object_new_string(key_name(r->key)));
	json_object_object_add(c->json, "value", json_object_new_double(r->median));
	json_object_object_add(c->json, "threshold", json_object_new_double(limit_ns));
	json_object_object_add(c->json, "summary", json_object_new_string(c->details));
	return r->median <= limit_ns;
}

static double value_of(struct bench_result *res, size_t n, const char *cat, const char *name,
		       const char *value)
{
	const struct bench_result *r = find(res, n, cat, name);

	return r && !r->err ? bench_get(r, value, NULL) : NAN;
}

static int validate(struct bench_result *res, size_t n)
{
	struct check cs[20];
	int nc = 0, pass = 0, n_orig;
	struct check *c;

#define CHECK(i, d, t) (c = &cs[nc++], *c = (struct check){ .id = i, .desc = d, .target = t }, c)
	c = CHECK("deterministic_replay", "Replay divergence < 1e-9 over 1000 cycles",
		  "replay/100_epochs median <= 50 ms");
	c->passed = median_le(res, n, "replay", "100_epochs", 50e6, c);
	c = CHECK("delta_integrity", "100% schema valid, 0 orphans",
		  "delta/cpu_sparse median <= 2 ms");
	c->passed = median_le(res, n, "delta", "cpu_sparse", 2e6, c);
	c = CHECK("page_graph_consistency",
		  "validation < 1 ms/page; cycle detect < 10 ms per 10k pages",
		  "graph/topological_sort_1024 median <= 15 ms");
	c->passed = median_le(res, n, "graph", "topological_sort_1024", 15e6, c);
	c = CHECK("algorithm_isolation", "0 side effects, purity 100%",
		  "semiring/boolean_fold_add median <= 5 ms");
	c->passed = median_le(res, n, "semiring", "boolean_fold_add", 5e6, c);
	{
		double single = value_of(res, n, "throughput", "single_1w", "throughput_per_sec");
		double multi = value_of(res, n, "throughput", "multi_8w", "throughput_per_sec");

		c = CHECK("delta_throughput", ">= 1 M/s single, >= 10 M/s multi",
			  "single >= 1.0 M/s and multi >= 1.5 M/s");
		c->passed = single >= 1e6 && multi >= 1.5e6;
		snprintf(c->details, sizeof(c->details),
			 "single %.2f M/s, multi (8 workers) %.2f M/s%s", single / 1e6, multi / 1e6,
			 multi < 10e6 ? "; multi target (10 M/s) tracked as risk" : "");
		c->json = json_object_new_object();
		json_object_object_add(c->json, "single_throughput",
				       json_object_new_double(single));
		json_object_object_add(c->json, "multi_throughput", json_object_new_double(multi));
	}
	c = CHECK("tick_latency", "< 16 ms per tick", "system/full_pipeline median <= 16 ms");
	c->passed = median_le(res, n, "system", "full_pipeline", 16e6, c);
	{
		double avg = value_of(res, n, "memory", "snapshot", "avg");
		double proj = value_of(res, n, "memory", "snapshot", "projected");
		double gc = value_of(res, n, "memory", "gc", "duration_ms");
		double frag = value_of(res, n, "memory", "fragmentation", "estimate");

		c = CHECK("memory_footprint", "avg page <= 1 KB; 1M pages <= 1 GB; GC < 3 ms",
			  "avg <= 1024, projected <= 1 GiB, gc <= 3 ms, fragmentation <= 1 GiB");
		c->passed =
			avg <= 1024 && proj <= 1073741824.0 && gc <= 3.0 && frag <= 1073741824.0;
		snprintf(c->details, sizeof(c->details),
			 "avg %.0f B, projected %.0f B, report %.3f ms, fragmentation %.0f B", avg,
			 proj, gc, frag);
		c->json = json_object_new_object();
		json_object_object_add(c->json, "avg", json_object_new_double(avg));
		json_object_object_add(c->json, "projected", json_object_new_double(proj));
		json_object_object_add(c->json, "gc_ms", json_object_new_double(gc));
		json_object_object_add(c->json, "fragmentation_estimate",
				       json_object_new_double(frag));
	}
	{
		double cycles = value_of(res, n, "stability", "10k_cycles", "cycles");
		double fails = value_of(res, n, "stability", "10k_cycles", "invariant_failures");
		double div = value_of(res, n, "stability", "10k_cycles", "max_divergence");

		c = CHECK("invariant_preservation", "0 failures across 10,000 cycles",
			  "cycles == 10000 and failures == 0");
		c->passed = cycles == 10000 && fails == 0;
		snprintf(c->details, sizeof(c->details), "%.0f cycles, %.0f invariant failures",
			 cycles, fails);
		c = CHECK("stability_under_perturbation", "bounded error, no NaNs",
			  "max_divergence <= 0.5");
		c->passed = div <= 0.5;
		snprintf(c->details, sizeof(c->details), "max divergence %.4f (true maximum)", div);
	}
	c = CHECK("traceability_observability", "provenance resolve < 50 ms; depth < 32",
		  "graph/bfs_1024 median <= 50 ms");
	c->passed = median_le(res, n, "graph", "bfs_1024", 50e6, c);
	n_orig = nc;

	if (opt.validate == 2) {
		/* the literal targets the original wrote down and never checked */
		double l2 = value_of(res, n, "replay", "divergence_1000", "max_l2_divergence");
		double multi = value_of(res, n, "throughput", "multi_8w", "throughput_per_sec");
		double gc = value_of(res, n, "memory", "gc", "duration_ms");
		const struct bench_result *cyc = find(res, n, "graph", "cycle_detect_10k");

		c = CHECK("strict_replay_divergence", "divergence < 1e-9 over 1000 cycles",
			  "replay/divergence_1000 max L2 < 1e-9");
		c->passed = l2 < 1e-9;
		snprintf(c->details, sizeof(c->details), "max L2 %.3g over 10 checks", l2);
		c = CHECK("strict_cycle_detect", "cycle detect < 10 ms per 10k pages",
			  "graph/cycle_detect_10k median < 10 ms");
		c->passed = cyc && !cyc->err && cyc->median < 10e6;
		snprintf(c->details, sizeof(c->details), "median %.3f ms",
			 cyc ? cyc->median / 1e6 : NAN);
		c = CHECK("strict_multi_throughput", ">= 10 M/s multi",
			  "throughput/multi_8w >= 10 M/s");
		c->passed = multi >= 10e6;
		snprintf(c->details, sizeof(c->details), "%.2f M/s with 8 workers on %ld CPUs",
			 multi / 1e6, sysconf(_SC_NPROCESSORS_ONLN));
		c = CHECK("strict_gc", "GC < 3 ms", "memory/gc < 3 ms");
		c->passed = gc < 3.0;
		snprintf(c->details, sizeof(c->details), "%.3f ms (a report; nothing is freed)",
			 gc);
		/* purity: the semiring folds give the same answer three times over */
		double v[1024];
		uint8_t bv[1024];

		for (int i = 0; i < 1024; i++) {
			v[i] = (double)((i * 7919) % 1000) / 7.0;
			bv[i] = (uint8_t)(i % 3 == 0);
		}
		bool same = true;
		double a0 = mmsb_tropical_fold_add(v, 1024), m0 = mmsb_tropical_fold_mul(v, 1024);
		uint8_t b0 = mmsb_boolean_fold_add(bv, 1024), c0 = mmsb_boolean_fold_mul(bv, 1024);

		for (int run = 0; run < 3; run++)
			same &= mmsb_tropical_fold_add(v, 1024) == a0 &&
				mmsb_tropical_fold_mul(v, 1024) == m0 &&
				mmsb_boolean_fold_add(bv, 1024) == b0 &&
				mmsb_boolean_fold_mul(bv, 1024) == c0;
		c = CHECK("strict_purity", "purity 100%", "semiring folds identical over 3 runs");
		c->passed = same;
		snprintf(c->details, sizeof(c->details), "%s", same ? "identical" : "differ");
		/* provenance: resolve a 32-deep chain's lineage under 50 ms */
		struct mmsb_state *s = mmsb_state_open(NULL);
		uint64_t ids[64];
		bool cached;
		uint64_t t0 = mono_ns();
		ssize_t got = -1;

		for (int i = 1; s && i <= 33; i++)
			mmsb_page_create(s, 1, MMSB_LOC_CPU, NULL);
		for (uint64_t i = 1; s && i < 33; i++)
			mmsb_edge_add(s, i, i + 1, MMSB_EDGE_DATA);
		t0 = mono_ns();
		if (s)
			got = mmsb_provenance(s, 33, 31, ids, 64, &cached);
		double ms = (double)(mono_ns() - t0) / 1e6;

		mmsb_state_close(s);
		c = CHECK("strict_provenance", "provenance resolve < 50 ms; depth < 32",
			  "mmsb_provenance over a 31-deep chain < 50 ms");
		c->passed = got == 32 && ms < 50;
		snprintf(c->details, sizeof(c->details), "%zd pages in %.3f ms", got, ms);
	}

	printf("\n");
	for (int i = 0; i < nc; i++) {
		if (i == n_orig)
			printf("strict tier (the literal targets):\n");
		printf("%s %2d %-28s %s\n", cs[i].passed ? "\u2713" : "\u2717",
		       i < n_orig ? i + 1 : i - n_orig + 1, cs[i].id, cs[i].details);
	}
	for (int i = 0; i < n_orig; i++)
		pass += cs[i].passed;
	printf("Result: %d/%d PASS\n", pass, n_orig);
	if (opt.validate == 2) {
		int sp = 0;

		for (int i = n_orig; i < nc; i++)
			sp += cs[i].passed;
		printf("Strict: %d/%d PASS\n", sp, nc - n_orig);
	}
	if (opt.validation_json) {
		struct json_object *o = json_object_new_object(), *arr = json_object_new_array();
		char ts[48];

		fmt_time_ns((uint64_t)time(NULL) * 1000000000ull, ts, sizeof(ts));
		json_object_object_add(o, "timestamp", json_object_new_string(ts));
		json_object_object_add(o, "pass_count", json_object_new_int(pass));
		json_object_object_add(o, "total", json_object_new_int(n_orig));
		for (int i = 0; i < nc; i++) {
			struct json_object *r = json_object_new_object();

			json_object_object_add(r, "index", json_object_new_int(i + 1));
			json_object_object_add(r, "id", json_object_new_string(cs[i].id));
			json_object_object_add(r, "description",
					       json_object_new_string(cs[i].desc));
			json_object_object_add(r, "passed", json_object_new_boolean(cs[i].passed));
			json_object_object_add(r, "target", json_object_new_string(cs[i].target));
			json_object_object_add(
				r, "tier",
				json_object_new_string(i < n_orig ? "original" : "strict"));
			if (!cs[i].json) {
				cs[i].json = json_object_new_object();
				json_object_object_add(cs[i].json, "summary",
						       json_object_new_string(cs[i].details));
			}
			json_object_object_add(r, "details", cs[i].json);
			cs[i].json = NULL;
			json_object_array_add(arr, r);
		}
		json_object_object_add(o, "results", arr);
		if (json_object_to_file_ext(opt.validation_json, o, JSON_C_TO_STRING_PRETTY)) {
			p_err("%s: %s", opt.validation_json, json_util_get_last_err());
			json_object_put(o);
			return EXIT_FAIL;
		}
		json_object_put(o);
	}
	for (int i = 0; i < nc; i++)
		json_object_put(cs[i].json);
	return pass == n_orig ? EXIT_OK : EXIT_FAIL;
}

/* the keys the validator reads */
static void run_key(const struct bench_key *k, struct bench_result *r, const struct sampling *sp)
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

/* ---- the GPU crossover (docs/gpu.md) ---- */

struct xo_case {
	struct mmsb_state *s;
	uint64_t page;
	struct mmsb_delta *d[2];
	size_t size;
	double density;
};

/* Two deltas (alternated, so each apply changes bytes) at this density: sparse below 5 %. */
static int xo_setup(struct xo_case *x, size_t size, double density)
{
	size_t set = (size_t)((double)size * density);
	bool sparse = density < 0.05;
	uint8_t *mask = calloc(1, size), *pay = malloc(size);
	int err = 0;

	memset(x, 0, sizeof(*x));
	x->size = size;
	x->density = density;
	x->s = mmsb_state_open(NULL);
	if (!x->s || !mask || !pay) {
		err = -ENOMEM;
		goto out;
	}
	err = mmsb_page_create(x->s, size, MMSB_LOC_GPU, &x->page);
	if (err)
		goto out;
	if (!set)
		set = 1;
	/* spread evenly: every (size / set)-th byte */
	for (size_t k = 0; k < set; k++)
		mask[(size_t)((double)k * (double)size / (double)set)] = 1;
	for (int v = 0; v < 2 && !err; v++) {
		memset(pay, v ? 0x5A : 0xA5, size);
		x->d[v] = mmsb_delta_new(x->page, mask, size, pay, sparse ? set : size,
					 sparse ? MMSB_DELTA_SPARSE : 0);
		err = x->d[v] ? 0 : -errno;
	}
out:
	free(mask);
	free(pay);
	return err;
}

static void xo_free(struct xo_case *x)
{
	mmsb_delta_free(x->d[0]);
	mmsb_delta_free(x->d[1]);
	mmsb_state_close(x->s);
}

/* Median ns of one apply under policy, in groups of at least 50 us, at least 15 groups. */
static double xo_time(struct xo_case *x, int policy, bool quick)
{
	double samples[64];
	int n = 0, group = 1, flip = 0;
	uint64_t t0, spent = 0, budget = quick ? 20000000ull : 60000000ull;

	mmsb_gpu_set_policy(policy);
	for (int i = 0; i < 4; i++) /* settle: the copy the policy wants is current */
		mmsb_route(x->s, x->d[flip ^= 1]);
	for (;;) {
		t0 = mono_ns();
		for (int i = 0; i < group; i++)
			mmsb_route(x->s, x->d[flip ^= 1]);
		if (mono_ns() - t0 >= 50000 || group >= 1 << 14)
			break;
		group *= 2;
	}
	while (n < 64 && (n < 15 || spent < budget)) {
		t0 = mono_ns();
		for (int i = 0; i < group; i++)
			mmsb_route(x->s, x->d[flip ^= 1]);
		uint64_t dt = mono_ns() - t0;

		spent += dt;
		samples[n++] = (double)dt / group;
	}
	qsort(samples, (size_t)n, sizeof(*samples), cmp_double);
	return samples[n / 2];
}

static int calibrate_gpu(void)
{
	static const double densities[] = { 0.001, 0.01, 0.1, 0.5, 1.0 };
	struct mmsb_gpu_info gi = { .sz = sizeof(gi) };
	size_t max = opt.quick ? (4u << 20) : (64u << 20);
	struct {
		size_t size;
		double density, cpu, gpu;
	} pt[64];
	int n = 0, bad = 0;
	FILE *f;

	if (mmsb_gpu_info(&gi)) {
		p_err("--calibrate-gpu: no GPU: %s", gi.reason);
		return EXIT_FAIL;
	}
	printf("GPU crossover on %s (%s backend): ns per apply to a GPU page, medians\n", gi.device,
	       gi.backend);
	printf("%10s %8s %12s %12s  %s\n", "page", "density", "cpu", "gpu", "faster");
	for (size_t size = 1024; size <= max && n < 64; size *= 4)
		for (size_t i = 0; i < sizeof(densities) / sizeof(densities[0]) && n < 64; i++) {
			struct xo_case x;
			char cs[32], gs[32];

			if (xo_setup(&x, size, densities[i])) {
				p_err("--calibrate-gpu: a %zu-byte GPU page: %s", size,
				      mmsb_strerror(-errno));
				xo_free(&x);
				return EXIT_FAIL;
			}
			pt[n].size = size;
			pt[n].density = densities[i];
			pt[n].cpu = xo_time(&x, MMSB_GPU_POLICY_CPU, opt.quick);
			pt[n].gpu = xo_time(&x, MMSB_GPU_POLICY_GPU, opt.quick);
			xo_free(&x);
			fmt_ns(pt[n].cpu, cs, sizeof(cs));
			fmt_ns(pt[n].gpu, gs, sizeof(gs));
			printf("%10zu %8.3f %12s %12s  %s\n", size, densities[i], cs, gs,
			       pt[n].gpu < pt[n].cpu ? "GPU" : "CPU");
			n++;
		}
	f = fopen(opt.calibrate_gpu, "w");
	if (!f) {
		p_err("%s: %s", opt.calibrate_gpu, strerror(errno));
		return EXIT_FAIL;
	}
	fprintf(f,
		"# mmsb GPU crossover: %s; mmsb-bench --calibrate-gpu\n"
		"# apply SIZE DENSITY BATCH CPU_NS GPU_NS\n",
		gi.device);
	for (int i = 0; i < n; i++)
		fprintf(f, "apply %zu %.4f 1 %.1f %.1f\n", pt[i].size, pt[i].density, pt[i].cpu,
			pt[i].gpu);
	if (fclose(f)) {
		p_err("%s: %s", opt.calibrate_gpu, strerror(errno));
		return EXIT_FAIL;
	}
	if (mmsb_gpu_crossover_load(opt.calibrate_gpu)) {
		p_err("%s: the table written does not load", opt.calibrate_gpu);
		return EXIT_FAIL;
	}
	/*
	 * The router, now on this table, at every point: the side it picks must be within 10 % of the
	 * faster one, by this calibration's figures. The routed apply is timed too, as a check that
	 * the choice is what runs (reported, not judged: it is one more noisy run).
	 */
	mmsb_gpu_set_policy(MMSB_GPU_POLICY_AUTO);
	printf("\nthe router on this table:\n%10s %8s %7s %12s %12s %8s %12s\n", "page", "density",
	       "choice", "its time", "faster", "ratio", "routed run");
	for (int i = 0; i < n; i++) {
		struct xo_case x;
		double best = fmin(pt[i].cpu, pt[i].gpu), chosen, got = NAN;
		char cs[32], bs[32], rs[32] = "-";
		int side =
			mmsb_gpu_route(pt[i].size, (size_t)(pt[i].density * (double)pt[i].size), 1);

		chosen = side == MMSB_LOC_GPU ? pt[i].gpu : pt[i].cpu;
		if (!xo_setup(&x, pt[i].size, pt[i].density))
			got = xo_time(&x, MMSB_GPU_POLICY_AUTO, opt.quick);
		xo_free(&x);
		fmt_ns(chosen, cs, sizeof(cs));
		fmt_ns(best, bs, sizeof(bs));
		if (!isnan(got))
			fmt_ns(got, rs, sizeof(rs));
		printf("%10zu %8.3f %7s %12s %12s %8.3f %12s%s\n", pt[i].size, pt[i].density,
		       side == MMSB_LOC_GPU ? "GPU" : "CPU", cs, bs, chosen / best, rs,
		       chosen > 1.10 * best ? "  <- more than 10 % slower" : "");
		bad += chosen > 1.10 * best;
	}
	mmsb_gpu_set_policy(MMSB_GPU_POLICY_AUTO);
	printf("%d of %d points within 10 %% of the faster side; table in %s\n", n - bad, n,
	       opt.calibrate_gpu);
	return bad ? EXIT_FAIL : EXIT_OK;
}

/* ---- a host language driving the same keys (docs/ffi.md) ---- */

/* Where the Python package is: $MMSB_PYTHONPATH, else the source tree beside this tool. */
static int python_path(char *out, size_t len)
{
	const char *env = getenv("MMSB_PYTHONPATH");
	char exe[PATH_MAX], *slash;
	ssize_t n;

	if (env && *env) {
		snprintf(out, len, "%s", env);
		return 0;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return -ENOENT;
	exe[n] = 0;
	slash = strrchr(exe, '/');
	if (!slash)
		return -ENOENT;
	*slash = 0;
	snprintf(out, len, "%.*s/../bindings/python", PATH_MAX - 32, exe);
	return access(out, R_OK) ? -ENOENT : 0;
}

/* Run python3 -m mmsb.bench on this tool's libmmsb; its JSON, or NULL after one error line. */
static struct json_object *run_python_host(void)
{
	char path[PATH_MAX + 32], cmd[512];
	const char *lib = own_libmmsb();
	struct json_object *o;
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	FILE *p;
	int st;

	if (!buf)
		return NULL;
	if (!lib) {
		p_err("--host python needs libmmsb.so (this mmsb-bench is linked statically)");
		free(buf);
		return NULL;
	}
	if (python_path(path, sizeof(path))) {
		p_err("the Python binding is not found: set MMSB_PYTHONPATH to bindings/python");
		free(buf);
		return NULL;
	}
	setenv("MMSB_LIB", lib, 1);
	setenv("PYTHONPATH", path, 1);
	snprintf(cmd, sizeof(cmd), "python3 -m mmsb.bench%s --dir '%s'",
		 opt.quick ? " --quick" : "", benv.dir);
	p = popen(cmd, "r");
	if (!p) {
		p_err("python3: %s", strerror(errno));
		free(buf);
		return NULL;
	}
	for (size_t got; (got = fread(buf + len, 1, cap - len - 1, p)) > 0;) {
		len += got;
		if (len + 1 == cap) {
			char *nb = realloc(buf, 2 * cap);

			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
	}
	st = pclose(p);
	buf[len] = 0;
	o = st == 0 ? json_tokener_parse(buf) : NULL;
	if (!o)
		p_err("python3 -m mmsb.bench failed (exit %d)",
		      WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	free(buf);
	return o;
}

/* The host's figures beside the C ones: per call, what crossing from the host costs. */
static void host_table(struct json_object *host, struct bench_result *res, size_t n,
		       struct json_object *out)
{
	struct json_object *keys, *jk = json_object_new_object(), *v;

	if (!json_object_object_get_ex(host, "keys", &keys))
		return;
	printf("\nhost %s %s against C, per evaluation (medians):\n",
	       json_object_object_get_ex(host, "implementation", &v) ? json_object_get_string(v) :
								       "python",
	       json_object_object_get_ex(host, "python", &v) ? json_object_get_string(v) : "");
	printf("%-28s %11s %11s %6s %14s %7s %11s\n", "key", "C", "host", "calls", "crossing/call",
	       "writes", "per write");
	json_object_object_foreach(keys, name, hk)
	{
		struct json_object *m, *c, *w;
		const struct bench_result *r = NULL;
		char cs[32], hs[32], xs[32], ws[32];

		for (size_t i = 0; i < n && !r; i++)
			if (res[i].ran && res[i].samples && !strcmp(key_name(res[i].key), name))
				r = &res[i];
		if (!r || !json_object_object_get_ex(hk, "median_ns", &m) ||
		    !json_object_object_get_ex(hk, "calls_per_eval", &c) ||
		    !json_object_object_get_ex(hk, "writes_per_eval", &w))
			continue;
		double h = json_object_get_double(m), calls = json_object_get_double(c);
		double writes = json_object_get_double(w), cross = (h - r->median) / calls;
		double per_write = (h - r->median) / writes;
		struct json_object *e = json_object_new_object();

		fmt_ns(r->median, cs, sizeof(cs));
		fmt_ns(h, hs, sizeof(hs));
		fmt_ns(cross, xs, sizeof(xs));
		fmt_ns(per_write, ws, sizeof(ws));
		printf("%-28s %11s %11s %6.0f %14s %7.0f %11s\n", name, cs, hs, calls, xs, writes,
		       ws);
		json_object_object_add(e, "c_ns", json_object_new_double(r->median));
		json_object_object_add(e, "host_ns", json_object_new_double(h));
		json_object_object_add(e, "calls_per_eval", json_object_new_double(calls));
		json_object_object_add(e, "writes_per_eval", json_object_new_double(writes));
		json_object_object_add(e, "crossing_ns_per_call", json_object_new_double(cross));
		json_object_object_add(e, "host_cost_ns_per_write",
				       json_object_new_double(per_write));
		json_object_object_add(jk, name, e);
	}
	json_object_object_add(out, "host", json_object_get(host));
	json_object_object_add(out, "host_vs_c", jk);
}

static bool needed_by_validation(const struct bench_key *k)
{
	static const char *const need[] = {
		"replay/100_epochs",	     "delta/cpu_sparse",     "graph/topological_sort_1024",
		"semiring/boolean_fold_add", "throughput/single_1w", "throughput/multi_8w",
		"system/full_pipeline",	     "memory/snapshot",	     "memory/gc",
		"memory/fragmentation",	     "stability/10k_cycles", "graph/bfs_1024",
	};
	static const char *const strict[] = { "replay/divergence_1000", "graph/cycle_detect_10k" };
	char *name = key_name(k);

	for (size_t i = 0; opt.validate && i < sizeof(need) / sizeof(need[0]); i++)
		if (!strcmp(name, need[i]))
			return true;
	for (size_t i = 0; opt.validate == 2 && i < sizeof(strict) / sizeof(strict[0]); i++)
		if (!strcmp(name, strict[i]))
			return true;
	return false;
}

static int rm_scratch(void)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", benv.dir);
	return system(cmd);
}

int main(int argc, char **argv)
{
	struct sampling sp = { 200, 200000, 300000000ull, 2000000000ull };
	struct bench_result *res;
	struct json_object *host = NULL, *host_out = NULL;
	struct derived dv[8];
	size_t nd = 0;
	bool made_dir = false;
	int ret = EXIT_OK;

	prog_name = "mmsb-bench";
	argp_err_exit_status = EXIT_USAGE;
	if (argp_parse(&argp, argc, argv, 0, NULL, NULL))
		return EXIT_USAGE;
	if ((opt.gate || opt.compare_json) && !opt.compare) {
		p_err("--gate and --compare-json need --compare BASELINE");
		return EXIT_USAGE;
	}
	if (opt.evals && (opt.compare || opt.validate || opt.host || opt.json || opt.compat)) {
		p_err("--evals measures nothing: it goes with none of --compare, --validate, --host, "
		      "--json, --mode compat");
		return EXIT_USAGE;
	}
	for (int c = 0; c < 2; c++) {
		const char *list = c ? opt.categories : opt.keys, *bad;

		if (list && (bad = unknown_name(list, c))) {
			p_err("%s: %s '%s' (mmsb-bench --list shows them)", c ? "-c" : "-k",
			      *bad ? (c ? "no such category" : "no such key") : "an empty name in",
			      *bad ? bad : list);
			return EXIT_USAGE;
		}
	}
	if (opt.calibrate_gpu)
		return finish_stdout(calibrate_gpu());
	if (opt.gate_plan) {
		for (size_t i = 0; i < n_bench_keys; i++)
			if (bench_keys[i].gate != GATE_NONE)
				printf("%s %s\n",
				       bench_keys[i].gate == GATE_INSN ? "insn" : "paired",
				       key_name(&bench_keys[i]));
		return finish_stdout(EXIT_OK);
	}
	if (opt.machine) {
		struct json_object *m = machine_json();

		printf("%s\n", json_object_to_json_string_ext(m, JSON_C_TO_STRING_PRETTY |
									 JSON_C_TO_STRING_SPACED));
		json_object_put(m);
		return finish_stdout(EXIT_OK);
	}
	if (opt.list) {
		for (size_t i = 0; i < n_bench_keys; i++) {
			const struct bench_key *k = &bench_keys[i];

			printf("%-34s %s%s%s%s\n", key_name(k), k->desc,
			       k->skip ? " [skipped: " : "", k->skip ? k->skip : "",
			       k->skip ? "]" : "");
		}
		for (size_t i = 0; i < n_bench_keys; i++)
			if (bench_keys[i].applies && !strcmp(bench_keys[i].category, "propagation"))
				printf("propagation/%s_per_apply%*s v2: %s divided by its %u applies\n",
				       bench_keys[i].name,
				       (int)(34 - strlen("propagation/_per_apply") -
					     strlen(bench_keys[i].name)),
				       "", bench_keys[i].name, bench_keys[i].applies);
		return finish_stdout(EXIT_OK);
	}
	benv.quick = opt.quick;
	if (opt.quick)
		sp = (struct sampling){ 5, 2000, 5000000ull, 50000000ull };
	if (!benv.dir[0]) {
		const char *t = getenv("TMPDIR");

		snprintf(benv.dir, sizeof(benv.dir), "%s/mmsb-bench.XXXXXX", t ? t : "/tmp");
		if (!mkdtemp(benv.dir)) {
			p_err("%s: %s", benv.dir, strerror(errno));
			return EXIT_FAIL;
		}
		made_dir = true;
	} else {
		struct stat st;

		if (mkdir(benv.dir, 0755) && errno != EEXIST) {
			p_err("--dir %s: %s", benv.dir, strerror(errno));
			return EXIT_FAIL;
		}
		if (stat(benv.dir, &st)) {
			p_err("--dir %s: %s", benv.dir, strerror(errno));
			return EXIT_FAIL;
		}
		if (!S_ISDIR(st.st_mode)) {
			p_err("--dir %s: not a directory", benv.dir);
			return EXIT_FAIL;
		}
	}
	host_out = json_object_new_object();
	if (opt.host) {
		/* the host first: its keys are the ones the C run times beside it */
		static char keys[1024];
		struct json_object *hk;
		size_t at = 0;

		host = run_python_host();
		if (!host)
			return EXIT_FAIL;
		if (!opt.keys && json_object_object_get_ex(host, "keys", &hk)) {
			json_object_object_foreach(hk, name, v)
			{
				(void)v;
				at += (size_t)snprintf(keys + at, sizeof(keys) - at, "%s%s",
						       at ? "," : "", name);
				if (at >= sizeof(keys))
					break;
			}
			opt.keys = keys;
		}
	}
	res = calloc(n_bench_keys, sizeof(*res));
	if (!res)
		return EXIT_FAIL;
	printf("mmsb-bench %s mode%s, libmmsb %s, %ld CPUs\n", opt.compat ? "compat" : "stats",
	       opt.quick ? " (quick)" : "", mmsb_version(), sysconf(_SC_NPROCESSORS_ONLN));
	for (size_t i = 0; i < n_bench_keys; i++) {
		const struct bench_key *k = &bench_keys[i];
		struct bench_result *r = &res[i];

		r->key = k;
		if (!selected(k) && !needed_by_validation(k))
			continue;
		if (k->opt_in && !benv.full_1m)
			continue;
		r->ran = true;
		if (opt.evals) {
			/* instruction counting: timed keys only, and nothing printed that varies */
			if (k->stress || k->skip)
				continue;
			r->err = run_timed(k, r, &sp);
			if (r->err)
				p_err("%s: %s", key_name(k), mmsb_strerror(r->err));
			else
				printf("%s evals %llu\n", key_name(k),
				       (unsigned long long)opt.evals);
			ret = r->err ? EXIT_FAIL : ret;
			continue;
		}
		run_key(k, r, &sp);
		if (r->err)
			ret = EXIT_FAIL;
		print_result(r);
		fflush(stdout);
		if (k->applies && !strcmp(k->category, "propagation") && !r->err && nd < 8) {
			struct derived *d = &dv[nd++];

			snprintf(d->name, sizeof(d->name), "%s_per_apply", k->name);
			d->category = k->category;
			d->r = *r;
			d->r.median /= k->applies;
			d->r.mean /= k->applies;
			d->r.min /= k->applies;
			d->r.max /= k->applies;
			d->r.p99 /= k->applies;
			d->r.allocs /= k->applies;
			d->r.bytes /= k->applies;
			d->r.n_values = 0;
			bench_value(&d->r, "applies", k->applies);
		}
	}
	if (opt.evals)
		goto out;
	for (size_t i = 0; i < nd; i++) {
		char med[32];

		fmt_ns(dv[i].r.median, med, sizeof(med));
		printf("%-34s %11s  per apply (%g applies)\n", dv[i].name, med, dv[i].r.value[0]);
	}
	if (host)
		host_table(host, res, n_bench_keys, host_out);
	if (opt.json) {
		struct json_object *o = json_object_new_object(), *b = json_object_new_object();
		struct json_object *ins = json_object_new_object();
		char ts[48];
		const struct bench_result *r;

		fmt_time_ns((uint64_t)time(NULL) * 1000000000ull, ts, sizeof(ts));
		json_object_object_add(o, "timestamp", json_object_new_string(ts));
		json_object_object_add(o, "tool", json_object_new_string(argp_program_version));
		json_object_object_add(o, "mode",
				       json_object_new_string(opt.compat ? "compat" : "stats"));
		json_object_object_add(o, "quick", json_object_new_boolean(opt.quick));
		struct mmsb_gpu_info gi = { .sz = sizeof(gi) };

		json_object_object_add(o, "cuda_available",
				       json_object_new_boolean(mmsb_gpu_info(&gi) == 0));
		if (gi.available)
			json_object_object_add(o, "gpu", json_object_new_string(gi.device));
		json_object_object_add(o, "machine", machine_json());
		/* the original's instrumentation block, from this run's medians */
		if ((r = find(res, n_bench_keys, "allocation", "cpu_1kb")) && r->samples)
			json_object_object_add(ins, "allocation_ns",
					       json_object_new_int64(llround(r->median)));
		if ((r = find(res, n_bench_keys, "propagation", "single_hop")) && r->samples)
			json_object_object_add(ins, "propagation_ns",
					       json_object_new_int64(llround(r->median)));
		if ((r = find(res, n_bench_keys, "delta", "cpu_dense")) && r->samples)
			json_object_object_add(ins, "delta_avg_ns",
					       json_object_new_int64(llround(r->mean)));
		if ((r = find(res, n_bench_keys, "semiring", "tropical_fold_add")) && r->samples)
			json_object_object_add(ins, "semiring_tropical_add_ns",
					       json_object_new_int64(llround(r->median)));
		if ((r = find(res, n_bench_keys, "semiring", "boolean_fold_add")) && r->samples)
			json_object_object_add(ins, "semiring_boolean_add_ns",
					       json_object_new_int64(llround(r->median)));
		json_object_object_add(o, "instrumentation", ins);
		for (size_t i = 0; i < n_bench_keys; i++)
			if (res[i].ran)
				add_result_json(b, res[i].key->category, res[i].key->name, &res[i]);
		for (size_t i = 0; i < nd; i++)
			add_result_json(b, dv[i].category, dv[i].name, &dv[i].r);
		json_object_object_add(o, "benchmarks", b);
		json_object_object_foreach(host_out, hname, hval)
			json_object_object_add(o, hname, json_object_get(hval));
		if (json_object_to_file_ext(opt.json, o,
					    JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED)) {
			p_err("%s: %s", opt.json, json_util_get_last_err());
			ret = EXIT_FAIL;
		}
		json_object_put(o);
	}
	if (opt.compare && compare(res, n_bench_keys, dv, nd, &sp))
		ret = EXIT_FAIL;
	if (opt.validate && validate(res, n_bench_keys))
		ret = EXIT_FAIL;
out:
	if (made_dir)
		rm_scratch();
	json_object_put(host);
	json_object_put(host_out);
	free(res);
	return finish_stdout(ret);
}
