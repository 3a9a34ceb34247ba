// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * mmsb-bench's report: a line per key, the results as JSON (the original baseline.json schema
 * plus a machine block), and the comparison with a baseline, by ratio, against each key's band.
 */
#include <argp.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <mmsb/mmsb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench_build.h"
#include "suite.h"
#include "tool_helpers.h"

void fmt_ns(double ns, char *buf, size_t len)
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

void print_result(const struct bench_result *r)
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

struct json_object *machine_json(void)
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
	json_object_object_add(m, "allocs_counted", json_object_new_boolean(allocs_counted));
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

const struct bench_result *find_result(struct bench_result *res, size_t n, const char *cat,
				       const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (res[i].ran && !strcmp(res[i].key->category, cat) &&
		    !strcmp(res[i].key->name, name))
			return &res[i];
	return NULL;
}

int results_write(const struct bench_opts *o, struct bench_result *res, size_t n,
		  struct derived *dv, size_t nd, struct json_object *extra)
{
	int ret = EXIT_OK;
	struct json_object *doc = json_object_new_object(), *b = json_object_new_object();
	struct json_object *ins = json_object_new_object();
	char ts[48];
	const struct bench_result *r;

	fmt_time_ns((uint64_t)time(NULL) * 1000000000ull, ts, sizeof(ts));
	json_object_object_add(doc, "timestamp", json_object_new_string(ts));
	json_object_object_add(doc, "tool", json_object_new_string(argp_program_version));
	json_object_object_add(doc, "mode", json_object_new_string(o->compat ? "compat" : "stats"));
	json_object_object_add(doc, "quick", json_object_new_boolean(o->quick));
	struct mmsb_gpu_info gi = { .sz = sizeof(gi) };

	json_object_object_add(doc, "cuda_available",
			       json_object_new_boolean(mmsb_gpu_info(&gi) == 0));
	if (gi.available)
		json_object_object_add(doc, "gpu", json_object_new_string(gi.device));
	json_object_object_add(doc, "machine", machine_json());
	/* the original's instrumentation block, from this run's medians */
	if ((r = find_result(res, n, "allocation", "cpu_1kb")) && r->samples)
		json_object_object_add(ins, "allocation_ns",
				       json_object_new_int64(llround(r->median)));
	if ((r = find_result(res, n, "propagation", "single_hop")) && r->samples)
		json_object_object_add(ins, "propagation_ns",
				       json_object_new_int64(llround(r->median)));
	if ((r = find_result(res, n, "delta", "cpu_dense")) && r->samples)
		json_object_object_add(ins, "delta_avg_ns",
				       json_object_new_int64(llround(r->mean)));
	if ((r = find_result(res, n, "semiring", "tropical_fold_add")) && r->samples)
		json_object_object_add(ins, "semiring_tropical_add_ns",
				       json_object_new_int64(llround(r->median)));
	if ((r = find_result(res, n, "semiring", "boolean_fold_add")) && r->samples)
		json_object_object_add(ins, "semiring_boolean_add_ns",
				       json_object_new_int64(llround(r->median)));
	json_object_object_add(doc, "instrumentation", ins);
	for (size_t i = 0; i < n; i++)
		if (res[i].ran)
			add_result_json(b, res[i].key->category, res[i].key->name, &res[i]);
	for (size_t i = 0; i < nd; i++)
		add_result_json(b, dv[i].category, dv[i].name, &dv[i].r);
	json_object_object_add(doc, "benchmarks", b);
	json_object_object_foreach(extra, hname, hval)
		json_object_object_add(doc, hname, json_object_get(hval));
	if (json_object_to_file_ext(o->json, doc,
				    JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED)) {
		p_err("%s: %s", o->json, json_util_get_last_err());
		ret = EXIT_FAIL;
	}
	json_object_put(doc);
	return ret;
}

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

/* A baseline is a few hundred keys: anything this large is not one. */
#define BASELINE_MAX_BYTES (64u << 20)

struct json_object *baseline_load(const char *path)
{
	struct json_object *base = NULL, *b, *k, *m;
	struct json_tokener *tok;
	enum json_tokener_error jerr = json_tokener_success;
	size_t len, medians = 0;
	char *text;
	int err = read_regular(path, BASELINE_MAX_BYTES, &text, &len);

	if (err) {
		p_err("%s: cannot read a baseline: %s", path, input_strerror(err));
		return NULL;
	}
	tok = json_tokener_new();
	if (tok && len && len <= INT_MAX) {
		base = json_tokener_parse_ex(tok, text, (int)len);
		jerr = json_tokener_get_error(tok);
		/* the whole file is one value: a NUL inside or trailing bytes are not a baseline */
		if (base && (jerr != json_tokener_success || strlen(text) != len ||
			     text[json_tokener_get_parse_end(tok) +
				  strspn(text + json_tokener_get_parse_end(tok), " \t\r\n")])) {
			json_object_put(base);
			base = NULL;
		}
	}
	json_tokener_free(tok);
	free(text);
	if (!base) {
		p_err("%s: not a baseline: %s", path,
		      !len			   ? "the file is empty" :
		      jerr != json_tokener_success ? json_tokener_error_desc(jerr) :
						     "not one JSON value");
		return NULL;
	}
	if (json_object_is_type(base, json_type_object) &&
	    json_object_object_get_ex(base, "benchmarks", &b) &&
	    json_object_is_type(b, json_type_object)) {
		json_object_object_foreach(b, cat, c)
		{
			(void)cat;
			if (!json_object_is_type(c, json_type_object))
				continue;
			json_object_object_foreach(c, name, kv)
			{
				(void)name;
				k = kv;
				if (json_object_is_type(k, json_type_object) &&
				    (json_object_object_get_ex(k, "median_ns_exact", &m) ||
				     json_object_object_get_ex(k, "median_ns", &m)) &&
				    (json_object_is_type(m, json_type_int) ||
				     json_object_is_type(m, json_type_double)))
					medians++;
			}
		}
	}
	if (!medians) {
		p_err("%s: not a baseline: no \"benchmarks\" object with a key's median_ns", path);
		json_object_put(base);
		return NULL;
	}
	return base;
}

int compare(const struct bench_opts *o, struct bench_result *res, size_t n, struct derived *dv,
	    size_t nd, const struct sampling *sp)
{
	struct json_object *base = o->baseline, *note;
	struct json_object *out = json_object_new_object(), *keys = json_object_new_array();
	int faster = 0, slower = 0, similar = 0, regressed = 0, ret = EXIT_OK;

	printf("\ncompared with %s", o->compare);
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
		for (uint64_t k = 0; o->gate && i < n && best / b > band && k < o->gate_repeats;
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
		if (o->gate && ratio > band && i < n) {
			regressed++;
			fprintf(stderr,
				"mmsb-bench: regression %s: baseline %s, this run %s (best of %d), "
				"ratio %.2f beyond its %.2f band\n",
				full, bs, os, runs, ratio, band);
		}
		struct json_object *jo = json_object_new_object();

		json_object_object_add(jo, "key", json_object_new_string(full));
		json_object_object_add(jo, "baseline_ns", json_object_new_double(b));
		json_object_object_add(jo, "this_run_ns", json_object_new_double(best));
		json_object_object_add(jo, "ratio", json_object_new_double(ratio));
		json_object_object_add(jo, "band", json_object_new_double(band));
		json_object_object_add(jo, "runs", json_object_new_int(runs));
		json_object_object_add(jo, "gated", json_object_new_boolean(o->gate && i < n));
		json_object_object_add(jo, "verdict", json_object_new_string(verdict));
		json_object_array_add(keys, jo);
	}
	printf("%d faster, %d similar, %d slower", faster, similar, slower);
	if (o->gate)
		printf("; gate: %s", regressed ? "FAIL" : "pass");
	printf("\n");
	if (regressed)
		ret = EXIT_FAIL;
	json_object_object_add(out, "baseline", json_object_new_string(o->compare));
	json_object_object_add(out, "gate", json_object_new_boolean(o->gate));
	json_object_object_add(out, "repeats", json_object_new_int((int)o->gate_repeats));
	json_object_object_add(out, "regressions", json_object_new_int(regressed));
	json_object_object_add(out, "faster", json_object_new_int(faster));
	json_object_object_add(out, "similar", json_object_new_int(similar));
	json_object_object_add(out, "slower", json_object_new_int(slower));
	json_object_object_add(out, "keys", keys);
	if (o->compare_json &&
	    json_object_to_file_ext(o->compare_json, out,
				    JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED)) {
		p_err("%s: %s", o->compare_json, json_util_get_last_err());
		ret = EXIT_FAIL;
	}
	json_object_put(out);
	return ret;
}
