// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * mmsb-bench --calibrate-gpu: the CPU and GPU sides of an apply to a GPU page measured over page
 * sizes x densities, written as the router's crossover table, and the router checked against it
 * (docs/gpu.md).
 */
#include <errno.h>
#include <math.h>
#include <mmsb/mmsb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suite.h"
#include "tool_helpers.h"

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

int calibrate_gpu(const char *path, bool quick)
{
	static const double densities[] = { 0.001, 0.01, 0.1, 0.5, 1.0 };
	struct mmsb_gpu_info gi = { .sz = sizeof(gi) };
	size_t max = quick ? (4u << 20) : (64u << 20);
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
			pt[n].cpu = xo_time(&x, MMSB_GPU_POLICY_CPU, quick);
			pt[n].gpu = xo_time(&x, MMSB_GPU_POLICY_GPU, quick);
			xo_free(&x);
			fmt_ns(pt[n].cpu, cs, sizeof(cs));
			fmt_ns(pt[n].gpu, gs, sizeof(gs));
			printf("%10zu %8.3f %12s %12s  %s\n", size, densities[i], cs, gs,
			       pt[n].gpu < pt[n].cpu ? "GPU" : "CPU");
			n++;
		}
	f = fopen(path, "w");
	if (!f) {
		p_err("%s: %s", path, strerror(errno));
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
		p_err("%s: %s", path, strerror(errno));
		return EXIT_FAIL;
	}
	if (mmsb_gpu_crossover_load(path)) {
		p_err("%s: the table written does not load", path);
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
			got = xo_time(&x, MMSB_GPU_POLICY_AUTO, quick);
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
	printf("%d of %d points within 10 %% of the faster side; table in %s\n", n - bad, n, path);
	return bad ? EXIT_FAIL : EXIT_OK;
}
