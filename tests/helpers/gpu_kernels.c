// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Every operation of a GPU backend against a CPU reference, byte for byte, on random data:
 * dense masked apply, sparse indexed apply, the batched apply (many deltas over many pages, some
 * on the same page, in one launch), page diff to mask, delta merge, and the pool (sizes in every
 * class and above the largest). TAP on stdout.
 *
 *   gpu_kernels BACKEND.so [ROUNDS]     exit 0 when everything matched, 4 when the backend has
 *                                        no device here (SKIP), 1 otherwise
 */
#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_backend.h"

static const struct mmsb_gpu_ops *ops;
static int n_test, failed;

static void report(const char *what, int ok)
{
	printf("%s %d %s\n", ok ? "ok" : "not ok", ++n_test, what);
	failed |= !ok;
}

static void fill(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rand();
}

static void fill_mask(uint8_t *m, size_t n, int one_in)
{
	for (size_t i = 0; i < n; i++)
		m[i] = rand() % one_in == 0;
}

/* a device page holding host[0..n) */
static void *dev_copy(const uint8_t *host, size_t n)
{
	void *d;

	if (ops->alloc(n, &d) || ops->upload(d, host, n))
		return NULL;
	return d;
}

static int same_as_device(const void *dev, const uint8_t *ref, size_t n)
{
	uint8_t *got = malloc(n);
	int ok = got && !ops->download(got, dev, n) && !memcmp(got, ref, n);

	free(got);
	return ok;
}

static int check_dense_sparse(size_t n)
{
	uint8_t *page = malloc(n), *ref = malloc(n), *mask = malloc(n), *pay = malloc(n);
	uint32_t *idx = malloc(n * sizeof(*idx));
	void *d;
	size_t k = 0;
	int ok;

	fill(page, n);
	memcpy(ref, page, n);
	fill_mask(mask, n, 3);
	fill(pay, n);
	d = dev_copy(page, n);
	ok = d && !ops->apply_dense(d, mask, pay, n);
	for (size_t i = 0; i < n; i++)
		if (mask[i])
			ref[i] = pay[i];
	ok = ok && same_as_device(d, ref, n);
	/* sparse: every 7th byte, values from pay */
	for (size_t i = 0; i < n; i += 7, k++)
		idx[k] = (uint32_t)i;
	ok = ok && !ops->apply_sparse(d, idx, pay, k);
	for (size_t j = 0; j < k; j++)
		ref[idx[j]] = pay[j];
	ok = ok && same_as_device(d, ref, n);
	if (d)
		ops->free(d, n);
	free(page);
	free(ref);
	free(mask);
	free(pay);
	free(idx);
	return ok;
}

/* 24 deltas over 5 pages of different sizes, dense and sparse, several per page, one launch */
static int check_batch(void)
{
	enum { PAGES = 5, DELTAS = 24 };
	static const size_t sz[PAGES] = { 1, 300, 4096, 65536, 300000 };
	struct mmsb_gpu_delta gd[DELTAS];
	uint8_t *ref[PAGES], *mask[DELTAS], *pay[DELTAS];
	uint32_t *idx[DELTAS];
	void *dev[PAGES];
	int ok = 1;

	for (int p = 0; p < PAGES; p++) {
		ref[p] = malloc(sz[p]);
		fill(ref[p], sz[p]);
		dev[p] = dev_copy(ref[p], sz[p]);
		ok = ok && dev[p];
	}
	for (int i = 0; i < DELTAS; i++) {
		int p = rand() % PAGES;
		size_t n = sz[p];
		bool sparse = rand() % 2;

		mask[i] = malloc(n);
		pay[i] = malloc(n);
		idx[i] = malloc(n * sizeof(uint32_t));
		fill(pay[i], n);
		gd[i] = (struct mmsb_gpu_delta){ .dev = dev[p], .payload = pay[i], .n = n };
		if (sparse) {
			size_t k = 0;

			/* distinct, ascending offsets: a sparse delta writes each byte once */
			for (size_t b = 0; b < n; b++)
				if (rand() % 5 == 0)
					idx[i][k++] = (uint32_t)b;
			gd[i].index = idx[i];
			gd[i].n = k;
			for (size_t j = 0; j < k; j++)
				ref[p][idx[i][j]] = pay[i][j];
		} else {
			fill_mask(mask[i], n, 2);
			gd[i].mask = mask[i];
			for (size_t b = 0; b < n; b++)
				if (mask[i][b])
					ref[p][b] = pay[i][b];
		}
	}
	ok = ok && !ops->apply_batch(gd, DELTAS);
	for (int p = 0; p < PAGES; p++) {
		ok = ok && same_as_device(dev[p], ref[p], sz[p]);
		ops->free(dev[p], sz[p]);
		free(ref[p]);
	}
	for (int i = 0; i < DELTAS; i++) {
		free(mask[i]);
		free(pay[i]);
		free(idx[i]);
	}
	return ok;
}

static int check_diff_merge(size_t n)
{
	uint8_t *a = malloc(n), *b = malloc(n), *m = malloc(n), *ma = malloc(n), *mb = malloc(n);
	uint8_t *pa = malloc(n), *pb = malloc(n), *mo = malloc(n), *po = malloc(n);
	size_t changed = 0, want = 0;
	void *d;
	int ok;

	fill(a, n);
	memcpy(b, a, n);
	for (size_t i = 0; i < n; i += 3)
		b[i] ^= 0x5A;
	d = dev_copy(a, n);
	ok = d && !ops->diff(d, b, n, m, &changed);
	for (size_t i = 0; i < n; i++) {
		ok = ok && m[i] == (a[i] != b[i]);
		want += a[i] != b[i];
	}
	ok = ok && changed == want;
	fill_mask(ma, n, 2);
	fill_mask(mb, n, 3);
	fill(pa, n);
	fill(pb, n);
	ok = ok && !ops->merge(ma, pa, mb, pb, n, mo, po);
	for (size_t i = 0; i < n && ok; i++)
		ok = mo[i] == (ma[i] | mb[i]) && po[i] == (mb[i] ? pb[i] : pa[i]);
	if (d)
		ops->free(d, n);
	free(a), free(b), free(m), free(ma), free(mb), free(pa), free(pb), free(mo), free(po);
	return ok;
}

/* every size class, its edges, and sizes above the largest: zeroed, exactly usable */
static int check_pool(void)
{
	static const size_t sizes[] = { 1,	4095,	 4096,	  4097,	   16384,  65537,
					262144, 1048575, 4194304, 4194305, 9000000 };
	int ok = 1;

	for (int round = 0; round < 2; round++) /* the second round is served from the pool */
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			size_t n = sizes[i];
			uint8_t *zero = calloc(1, n), *x = malloc(n);
			void *d;

			ok = ok && zero && x && !ops->alloc(n, &d);
			if (!ok)
				break;
			ok = same_as_device(d, zero, n);
			fill(x, n);
			ok = ok && !ops->upload(d, x, n) && same_as_device(d, x, n);
			ops->free(d, n); /* dirty on purpose: the next alloc must zero it */
			free(zero);
			free(x);
		}
	return ok;
}

int main(int argc, char **argv)
{
	char why[256] = "";
	void *h;
	mmsb_gpu_backend_fn fn;
	int rounds = argc > 2 ? atoi(argv[2]) : 3;

	if (argc < 2) {
		fprintf(stderr, "usage: gpu_kernels BACKEND.so [ROUNDS]\n");
		return 2;
	}
	printf("TAP version 13\n");
	h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	fn = h ? (mmsb_gpu_backend_fn)dlsym(h, MMSB_GPU_BACKEND_SYMBOL) : NULL;
	ops = fn ? fn() : NULL;
	if (!ops || ops->abi != MMSB_GPU_ABI) {
		printf("1..0 # SKIP %s: not a GPU backend (%s)\n", argv[1], h ? "ABI" : dlerror());
		return 4;
	}
	if (ops->init(why, sizeof(why))) {
		printf("1..0 # SKIP %s backend: %s\n", ops->name, why);
		return 4;
	}
	printf("1..%d\n", 3 * rounds + 2);
	srand(7);
	for (int r = 0; r < rounds; r++) {
		size_t n = (size_t)1 << (10 + 4 * r); /* 1 KiB, 16 KiB, 256 KiB, ... */
		char what[96];

		snprintf(what, sizeof(what), "%s: dense and sparse apply, %zu B", ops->name, n);
		report(what, check_dense_sparse(n));
		snprintf(what, sizeof(what), "%s: diff to mask and merge, %zu B", ops->name,
			 n + 13);
		report(what, check_diff_merge(n + 13));
		snprintf(what, sizeof(what), "%s: batched apply over 5 pages in one launch (%d)",
			 ops->name, r);
		report(what, check_batch());
	}
	report("pool: every class, its edges and above the largest, zeroed", check_pool());
	struct mmsb_gpu_counters c;

	ops->counters(&c);
	report("transfers counted", c.uploads > 0 && c.downloads > 0 && c.upload_bytes > 0);
	ops->fini();
	return failed;
}
