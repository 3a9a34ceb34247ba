// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * mmsb-bench: the original MMSB benchmark suite under its original keys and parameters, our
 * stricter keys beside them, the original 10-check validator, and comparison with a baseline.
 * This file: the options and the run's order; suite.h names the other rooms.
 * Exit status: 0 ok, 1 failure (a benchmark error, a failed validation), 2 usage.
 */
#include <argp.h>
#include <errno.h>
#include <json-c/json.h>
#include <mmsb/mmsb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mmsb_version.h"
#include "suite.h"
#include "tool_helpers.h"

const char *argp_program_version = "mmsb-bench " MMSB_TOOLS_VERSION;
const char *argp_program_bug_address = "https://github.com/mmsb/mmsb/issues";

struct bench_env benv;

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

static struct bench_opts opt;

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

/* Returned by a step of main that found nothing to stop for. */
#define GO_ON (-1)

static int check_args(void)
{
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
	return GO_ON;
}

/* --gate-plan, --machine, --list: say something and exit. */
static int print_info(void)
{
	if (opt.gate_plan) {
		for (size_t i = 0; i < n_bench_keys; i++)
			if (bench_keys[i].gate != GATE_NONE)
				printf("%s %s\n",
				       bench_keys[i].gate == GATE_INSN ? "insn" : "paired",
				       key_name(&bench_keys[i]));
		return EXIT_OK;
	}
	if (opt.machine) {
		struct json_object *m = machine_json();

		printf("%s\n", json_object_to_json_string_ext(m, JSON_C_TO_STRING_PRETTY |
									 JSON_C_TO_STRING_SPACED));
		json_object_put(m);
		return EXIT_OK;
	}
	for (size_t i = 0; i < n_bench_keys; i++) {
		const struct bench_key *k = &bench_keys[i];

		printf("%-34s %s%s%s%s\n", key_name(k), k->desc, k->skip ? " [skipped: " : "",
		       k->skip ? k->skip : "", k->skip ? "]" : "");
	}
	for (size_t i = 0; i < n_bench_keys; i++)
		if (key_has_derived(&bench_keys[i]))
			printf("propagation/%s_per_apply%*s v2: %s divided by its %u applies\n",
			       bench_keys[i].name,
			       (int)(34 - strlen("propagation/_per_apply") -
				     strlen(bench_keys[i].name)),
			       "", bench_keys[i].name, bench_keys[i].applies);
	return EXIT_OK;
}

/* The scratch directory: --dir (made if missing), else a new one in TMPDIR (*made: remove it). */
static int scratch_dir(bool *made)
{
	struct stat st;

	if (!benv.dir[0]) {
		const char *t = getenv("TMPDIR");

		snprintf(benv.dir, sizeof(benv.dir), "%s/mmsb-bench.XXXXXX", t ? t : "/tmp");
		if (!mkdtemp(benv.dir)) {
			p_err("%s: %s", benv.dir, strerror(errno));
			return -1;
		}
		*made = true;
		return 0;
	}
	if (mkdir(benv.dir, 0755) && errno != EEXIST) {
		p_err("--dir %s: %s", benv.dir, strerror(errno));
		return -1;
	}
	if (stat(benv.dir, &st)) {
		p_err("--dir %s: %s", benv.dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		p_err("--dir %s: not a directory", benv.dir);
		return -1;
	}
	return 0;
}

/* The host first: its keys are the ones the C run times beside it (unless -k names them). */
static struct json_object *host_first(void)
{
	static char keys[1024];
	struct json_object *host = run_python_host(opt.quick), *hk;
	size_t at = 0;

	if (!host || opt.keys || !json_object_object_get_ex(host, "keys", &hk))
		return host;
	json_object_object_foreach(hk, name, v)
	{
		(void)v;
		at += (size_t)snprintf(keys + at, sizeof(keys) - at, "%s%s", at ? "," : "", name);
		if (at >= sizeof(keys))
			break;
	}
	opt.keys = keys;
	return host;
}

/* A propagation key's time per actual apply, beside it. */
static void derive(const struct bench_key *k, const struct bench_result *r, struct derived *d)
{
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

/* Every selected key (and those the validator reads), in the registry's order. */
static int run_suite(struct bench_result *res, struct derived *dv, size_t *nd,
		     const struct sampling *sp)
{
	int ret = EXIT_OK;

	for (size_t i = 0; i < n_bench_keys; i++) {
		const struct bench_key *k = &bench_keys[i];
		struct bench_result *r = &res[i];

		r->key = k;
		if (!key_selected(&opt, k) && !needed_by_validation(opt.validate, k))
			continue;
		if (k->opt_in && !benv.full_1m)
			continue;
		r->ran = true;
		if (opt.evals) {
			/* instruction counting: timed keys only, and nothing printed that varies */
			if (k->stress || k->skip)
				continue;
			r->err = run_timed(k, r, sp);
			if (r->err)
				p_err("%s: %s", key_name(k), mmsb_strerror(r->err));
			else
				printf("%s evals %llu\n", key_name(k),
				       (unsigned long long)opt.evals);
			ret = r->err ? EXIT_FAIL : ret;
			continue;
		}
		run_key(k, r, sp);
		if (r->err)
			ret = EXIT_FAIL;
		print_result(r);
		fflush(stdout);
		if (key_has_derived(k) && !r->err && *nd < 8)
			derive(k, r, &dv[(*nd)++]);
	}
	return ret;
}

static int rm_scratch(void)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", benv.dir);
	return system(cmd);
}

int main(int argc, char **argv)
{
	struct sampling sp = { 200, 200000, 300000000ull, 2000000000ull, false, 0 };
	struct json_object *host = NULL, *host_out = NULL;
	struct bench_result *res;
	struct derived dv[8];
	bool made_dir = false;
	size_t nd = 0;
	int ret;

	prog_name = "mmsb-bench";
	argp_err_exit_status = EXIT_USAGE;
	if (argp_parse(&argp, argc, argv, 0, NULL, NULL))
		return EXIT_USAGE;
	ret = check_args();
	if (ret != GO_ON)
		return ret;
	if (opt.calibrate_gpu)
		return finish_stdout(calibrate_gpu(opt.calibrate_gpu, opt.quick));
	if (opt.gate_plan || opt.machine || opt.list)
		return finish_stdout(print_info());
	/* a bad baseline fails now, not after the whole suite ran */
	if (opt.compare && !(opt.baseline = baseline_load(opt.compare)))
		return EXIT_FAIL;
	benv.quick = opt.quick;
	if (opt.quick)
		sp = (struct sampling){ 5, 2000, 5000000ull, 50000000ull, false, 0 };
	sp.compat = opt.compat;
	sp.evals = opt.evals;
	if (scratch_dir(&made_dir))
		return EXIT_FAIL;
	host_out = json_object_new_object();
	if (opt.host && !(host = host_first()))
		return EXIT_FAIL;
	res = calloc(n_bench_keys, sizeof(*res));
	if (!res)
		return EXIT_FAIL;
	printf("mmsb-bench %s mode%s, libmmsb %s, %ld CPUs\n", opt.compat ? "compat" : "stats",
	       opt.quick ? " (quick)" : "", mmsb_version(), sysconf(_SC_NPROCESSORS_ONLN));
	ret = run_suite(res, dv, &nd, &sp);
	if (opt.evals)
		goto out;
	for (size_t i = 0; i < nd; i++) {
		char med[32];

		fmt_ns(dv[i].r.median, med, sizeof(med));
		printf("%-34s %11s  per apply (%g applies)\n", dv[i].name, med, dv[i].r.value[0]);
	}
	if (host)
		host_table(host, res, n_bench_keys, host_out);
	if (opt.json && results_write(&opt, res, n_bench_keys, dv, nd, host_out))
		ret = EXIT_FAIL;
	if (opt.compare && compare(&opt, res, n_bench_keys, dv, nd, &sp))
		ret = EXIT_FAIL;
	if (opt.validate && validate(opt.validate, opt.validation_json, res, n_bench_keys))
		ret = EXIT_FAIL;
out:
	if (made_dir)
		rm_scratch();
	json_object_put(host);
	json_object_put(host_out);
	json_object_put(opt.baseline);
	free(res);
	return finish_stdout(ret);
}
