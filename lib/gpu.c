// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The GPU tier: the backend loaded at run time (gpu_backend.h), GPU-resident pages kept coherent
 * with their host mirror, and the router that picks, per apply, the side a crossover table says is
 * faster (docs/gpu.md).
 *
 * A GPU page has device memory (p->dev) and a host mirror (p->data); p->coh says which is
 * current. An apply on the GPU makes the device copy the only current one; an apply on the CPU,
 * or any read (page_read, diffs, recomputes, checkpoints, replay comparisons), first brings the
 * mirror up to date with one counted download. So the host never reads stale bytes and the device
 * never applies to stale ones.
 */
#include <dlfcn.h>
#include <stddef.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_backend.h"
#include "mmsb_internal.h"
#include "probes.h"

#define MAX_POINTS 512
/*
 * The router's decision grid, filled from the table's nearest points when a table is loaded, so
 * an apply asks one byte: page sizes, densities and batch sizes by powers of two.
 */
#define GRID_SIZES 48
#define GRID_DENS 11 /* log2(density * 1024): 0.1 % ... 100 % */
#define GRID_BATCH 17

struct xo_point {
	double log2_size, density, log2_batch;
	double cpu_ns, gpu_ns;
};

static struct {
	pthread_once_t once;
	void *dl;
	const struct mmsb_gpu_ops *ops; /* NULL: no GPU tier in this process */
	char reason[256], device[256];
	_Atomic uint64_t routed_gpu, routed_cpu, errors;
	_Atomic int policy;
	pthread_rwlock_t lock; /* the table */
	struct xo_point pts[MAX_POINTS];
	size_t n_pts;
	bool measured;
	/* 1: the GPU; cells change one at a time as a table loads, each read whole */
	_Atomic uint8_t grid[GRID_SIZES][GRID_DENS][GRID_BATCH];
} gpu = { .once = PTHREAD_ONCE_INIT, .lock = PTHREAD_RWLOCK_INITIALIZER };

/*
 * The built-in table, used until a measured one is loaded: what `make gpu-check` found on an H200
 * (ci/baselines/gpu-nvidia-h200.crossover, docs/gpu.md). Every apply pays a copy of its delta to
 * the device and a launch and synchronisation (about 15 us together), and the CPU's apply runs
 * at memory bandwidth, so the GPU wins only from 4 MiB pages with at least 1 % of the bytes set.
 * The original's plan (the GPU from 256 KiB) was 2 to 15 times slower there at 256 KiB and 1 MiB.
 */
static void fill_grid(void);
static int table_load(const char *path);

static void default_table(void)
{
	static const double densities[] = { 0.001, 0.01, 0.5 };

	gpu.n_pts = 0;
	for (int l = 10; l <= 26; l += 2)
		for (size_t i = 0; i < sizeof(densities) / sizeof(densities[0]); i++) {
			struct xo_point *p = &gpu.pts[gpu.n_pts++];
			bool on_gpu = l >= 22 && densities[i] >= 0.01;

			p->log2_size = l;
			p->density = densities[i];
			p->log2_batch = 0;
			p->cpu_ns = on_gpu ? 2 : 1;
			p->gpu_ns = on_gpu ? 1 : 2;
		}
	gpu.measured = false;
	fill_grid();
}

static void load_backend(void)
{
	const char *path = getenv("MMSB_GPU_BACKEND"), *off = getenv("MMSB_GPU");
	char own[4096];
	Dl_info info;
	mmsb_gpu_backend_fn fn;
	const struct mmsb_gpu_ops *ops;

	default_table();
	if (off && !strcmp(off, "0")) {
		snprintf(gpu.reason, sizeof(gpu.reason), "disabled by MMSB_GPU=0");
		return;
	}
	if (!path) {
		/* beside libmmsb itself: .output/ in the tree, LIBDIR installed */
		if (!dladdr((void *)load_backend, &info) || !info.dli_fname) {
			snprintf(gpu.reason, sizeof(gpu.reason), "cannot locate libmmsb");
			return;
		}
		snprintf(own, sizeof(own), "%s", info.dli_fname);
		char *slash = strrchr(own, '/');

		snprintf(slash ? slash + 1 : own,
			 sizeof(own) - (size_t)(slash ? slash + 1 - own : 0), "libmmsb-cuda.so");
		path = own;
	}
	gpu.dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!gpu.dl) {
		snprintf(gpu.reason, sizeof(gpu.reason), "no GPU backend: %s", dlerror());
		return;
	}
	fn = (mmsb_gpu_backend_fn)dlsym(gpu.dl, MMSB_GPU_BACKEND_SYMBOL);
	ops = fn ? fn() : NULL;
	if (!ops || ops->abi != MMSB_GPU_ABI) {
		snprintf(gpu.reason, sizeof(gpu.reason), "%.200s: not an mmsb GPU backend (ABI %d)",
			 path, ops ? ops->abi : -1);
		dlclose(gpu.dl);
		gpu.dl = NULL;
		return;
	}
	if (ops->init(gpu.reason, sizeof(gpu.reason))) {
		/* no driver, no device: everything stays on the CPU */
		dlclose(gpu.dl);
		gpu.dl = NULL;
		return;
	}
	ops->describe(gpu.device, sizeof(gpu.device));
	gpu.reason[0] = 0;
	gpu.ops = ops;
	if ((path = getenv("MMSB_GPU_CROSSOVER")) && table_load(path))
		pr_warn("MMSB_GPU_CROSSOVER=%s: not a crossover table; using the built-in one\n",
			path);
}

const struct mmsb_gpu_ops *mmsb__gpu(void)
{
	pthread_once(&gpu.once, load_backend);
	return gpu.ops;
}

/* ---- the router ---- */

static int table_load(const char *path)
{
	struct xo_point pts[MAX_POINTS];
	char line[256], op[16];
	size_t n = 0;
	int ln = 0, err = 0;
	FILE *f = fopen(path, "re");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		double size, density, batch, cpu, g;
		int used = 0;

		ln++;
		if (line[0] == '#' || line[strspn(line, " \t\n")] == 0)
			continue;
		if (sscanf(line, "%15s %lf %lf %lf %lf %lf %n", op, &size, &density, &batch, &cpu,
			   &g, &used) != 6 ||
		    line[used] || strcmp(op, "apply") || size < 1 || density < 0 || density > 1 ||
		    batch < 1 || cpu <= 0 || g <= 0 || n == MAX_POINTS) {
			pr_warn("%s:%d: not 'apply SIZE DENSITY BATCH CPU_NS GPU_NS'\n", path, ln);
			err = -MMSB_ERR_CORRUPT;
			break;
		}
		pts[n++] = (struct xo_point){ log2(size), density, log2(batch), cpu, g };
	}
	fclose(f);
	if (!err && !n)
		err = -MMSB_ERR_CORRUPT;
	if (err)
		return err; /* the table in use is left as it was */
	pthread_rwlock_wrlock(&gpu.lock);
	memcpy(gpu.pts, pts, n * sizeof(*pts));
	gpu.n_pts = n;
	gpu.measured = true;
	fill_grid();
	pthread_rwlock_unlock(&gpu.lock);
	return 0;
}

/* a density as the grid's axis: log2(density * 1024), 0 (0.1 % or less) to 10 (all bytes) */
static double density_axis(double density)
{
	double v = log2(density * 1024);

	return v > 0 ? v : 0;
}

/*
 * The side the nearest measured point found faster, for every grid cell. Distances: one size
 * doubling = one batch doubling = two density doublings. Called with the table locked.
 */
static void fill_grid(void)
{
	for (int sz = 0; sz < GRID_SIZES; sz++)
		for (int dn = 0; dn < GRID_DENS; dn++)
			for (int bt = 0; bt < GRID_BATCH; bt++) {
				double best = INFINITY;
				uint8_t side = 0;

				for (size_t i = 0; i < gpu.n_pts; i++) {
					const struct xo_point *p = &gpu.pts[i];
					double d = fabs(p->log2_size - sz) +
						   fabs(density_axis(p->density) - dn) / 2 +
						   fabs(p->log2_batch - bt);

					if (d < best) {
						best = d;
						side = p->gpu_ns < p->cpu_ns;
					}
				}
				atomic_store_explicit(&gpu.grid[sz][dn][bt], side,
						      memory_order_relaxed);
			}
}

static int log2_bucket(size_t v, int max)
{
	int l = v > 1 ? 63 - __builtin_clzll((unsigned long long)v) : 0;

	/* round to the nearer power of two */
	if (l < 63 && v > 1 && (v - (1ull << l)) > (1ull << l) / 2)
		l++;
	return l < max ? l : max - 1;
}

/* GPU or CPU for an apply of `changed` bytes on a page of `size`, in a batch of `batch`. */
bool mmsb__gpu_prefer(size_t size, size_t changed, size_t batch)
{
	int policy = atomic_load_explicit(&gpu.policy, memory_order_relaxed), dn;

	if (policy == MMSB_GPU_POLICY_CPU)
		return false;
	if (policy == MMSB_GPU_POLICY_GPU)
		return true;
	dn = log2_bucket(size ? (size_t)((double)changed * 1024 / (double)size) : 0, GRID_DENS);
	return atomic_load_explicit(
		&gpu.grid[log2_bucket(size, GRID_SIZES)][dn][log2_bucket(batch, GRID_BATCH)],
		memory_order_relaxed);
}

/* ---- coherence ---- */

int mmsb__gpu_download(struct mmsb_page *p)
{
	int err;

	MMSB_TRACE(GPU_COPY_BEGIN, p->id, 0, p->size);
	err = gpu.ops->download(p->data, p->dev, p->size);
	MMSB_TRACE(GPU_COPY_END, p->id, 0, err);
	if (err) {
		atomic_fetch_add(&gpu.errors, 1);
		return err;
	}
	p->coh |= MMSB_COH_HOST;
	return 0;
}

int mmsb__gpu_upload(struct mmsb_page *p)
{
	int err;

	if (p->coh & MMSB_COH_DEV)
		return 0;
	MMSB_TRACE(GPU_COPY_BEGIN, p->id, 1, p->size);
	err = gpu.ops->upload(p->dev, p->data, p->size);
	MMSB_TRACE(GPU_COPY_END, p->id, 1, err);
	if (!err)
		p->coh |= MMSB_COH_DEV;
	return err;
}

/* Device copies alive in the process: while there are none, no batch needs to look for one. */
static _Atomic size_t gpu_pages;

bool mmsb__gpu_any_pages(void)
{
	return atomic_load_explicit(&gpu_pages, memory_order_relaxed) != 0;
}

int mmsb__gpu_page_alloc(struct mmsb_page *p)
{
	const struct mmsb_gpu_ops *ops = mmsb__gpu();
	int err;

	if (!ops)
		return -MMSB_ERR_NO_GPU;
	err = ops->alloc(p->size, &p->dev);
	if (err)
		return err;
	p->coh = MMSB_COH_HOST | MMSB_COH_DEV; /* both zeroed */
	atomic_fetch_add_explicit(&gpu_pages, 1, memory_order_relaxed);
	return 0;
}

void mmsb__gpu_page_free(struct mmsb_page *p)
{
	if (p->dev)
		atomic_fetch_sub_explicit(&gpu_pages, 1, memory_order_relaxed);
	if (p->dev && gpu.ops)
		gpu.ops->free(p->dev, p->size);
	p->dev = NULL;
}

/* The host mirror was written directly (a checkpoint load): the device copy is stale. */
void mmsb__gpu_host_written(struct mmsb_page *p)
{
	if (p->dev)
		p->coh = MMSB_COH_HOST;
}

/*
 * A sparse delta as a sparse kernel takes it: the set positions among the first n as indices,
 * and the values right after them in the same buffer, so a backend can send both in one copy.
 */
static uint32_t *sparse_index(const struct mmsb_delta *d, size_t n, size_t *count)
{
	size_t cap = d->mask_count ? d->mask_count : 1;
	uint32_t *idx = malloc(cap * (sizeof(*idx) + 1));

	if (!idx)
		return NULL;
	*count = mmsb__mask_index(d->mask, n, idx);
	memcpy(idx + *count, d->payload, *count);
	return idx;
}

bool mmsb__gpu_route(struct mmsb_page *p, size_t changed)
{
	if (mmsb__gpu_prefer(p->size, changed, 1) && !mmsb__gpu_upload(p))
		return true;
	atomic_fetch_add(&gpu.routed_cpu, 1);
	return false;
}

/*
 * The GPU side takes the delta as it is: a full mask is one upload; a sparse delta goes as indices
 * and values; a dense mask as mask and payload.
 */
int mmsb__gpu_apply(struct mmsb_page *p, const struct mmsb_delta *d, size_t n, size_t changed)
{
	const struct mmsb_gpu_ops *ops = gpu.ops;
	uint32_t *idx = NULL;
	int err;

	MMSB_TRACE(GPU_LAUNCH_BEGIN, p->id, d->sparse ? 1 : 0, changed);
	if (d->sparse) {
		size_t k;

		idx = sparse_index(d, n, &k);
		err = idx ? ops->apply_sparse(p->dev, idx, (uint8_t *)(idx + k), k) : -ENOMEM;
		free(idx);
	} else if (d->mask_count == d->mask_len) {
		err = ops->upload(p->dev, d->payload, n);
	} else {
		err = ops->apply_dense(p->dev, d->mask, d->payload, n);
	}
	MMSB_TRACE(GPU_LAUNCH_END, p->id, changed, err);
	if (err) {
		atomic_fetch_add(&gpu.errors, 1);
		return err;
	}
	p->coh = MMSB_COH_DEV;
	atomic_fetch_add(&gpu.routed_gpu, 1);
	return 0;
}

int mmsb__gpu_apply_batch(struct mmsb_page **pages, struct mmsb_delta *const *ds, size_t n)
{
	struct mmsb_gpu_delta *gd = calloc(n ? n : 1, sizeof(*gd));
	uint32_t **idx = calloc(n ? n : 1, sizeof(*idx));
	size_t k = 0, changed = 0;
	int err = gd && idx ? 0 : -ENOMEM;

	for (size_t i = 0; i < n && !err; i++) {
		struct mmsb_page *p = pages[i];
		const struct mmsb_delta *d = ds[i];
		size_t len = min_t(size_t, d->mask_len, p->size);

		if (!p->dev)
			continue;
		err = mmsb__gpu_upload(p);
		gd[k].dev = p->dev;
		gd[k].n = len;
		if (!err && d->sparse) {
			idx[k] = sparse_index(d, len, &gd[k].n);
			err = idx[k] ? 0 : -ENOMEM;
			gd[k].index = idx[k];
			gd[k].payload = idx[k] ? (uint8_t *)(idx[k] + gd[k].n) : NULL;
		} else {
			gd[k].mask = d->mask;
			gd[k].payload = d->payload;
		}
		changed += d->mask_count;
		k++;
	}
	MMSB_TRACE(GPU_LAUNCH_BEGIN, 0, 2, changed);
	if (!err)
		err = gpu.ops->apply_batch(gd, k);
	MMSB_TRACE(GPU_LAUNCH_END, 0, changed, err);
	for (size_t i = 0; !err && i < n; i++)
		if (pages[i]->dev)
			pages[i]->coh = MMSB_COH_DEV;
	if (err)
		atomic_fetch_add(&gpu.errors, 1);
	else
		atomic_fetch_add(&gpu.routed_gpu, k);
	for (size_t i = 0; idx && i < n; i++)
		free(idx[i]);
	free(idx);
	free(gd);
	return err;
}

/* ---- public ---- */

int mmsb_gpu_info(struct mmsb_gpu_info *out)
{
	MMSB_API_GATE(mmsb_gpu_info, out);
	const struct mmsb_gpu_ops *ops = mmsb__gpu();
	struct mmsb_gpu_counters c = { 0 };
	struct mmsb_gpu_info info = { .sz = sizeof(info) }, *caller = out;

	/* an output struct: a caller built against an older header gets the fields it knows */
	if (!OPTS_HAS(caller, mmsb_gpu_info__last_field))
		return -EINVAL;
	out = &info;
	out->available = ops != NULL;
	snprintf(out->backend, sizeof(out->backend), "%s", ops ? ops->name : "");
	snprintf(out->device, sizeof(out->device), "%s", gpu.device);
	snprintf(out->reason, sizeof(out->reason), "%s", gpu.reason);
	if (ops)
		ops->counters(&c);
	out->uploads = c.uploads;
	out->downloads = c.downloads;
	out->upload_bytes = c.upload_bytes;
	out->download_bytes = c.download_bytes;
	out->launches = c.launches;
	out->syncs = c.syncs;
	out->pool_hits = c.pool_hits;
	out->pool_misses = c.pool_misses;
	out->routed_gpu = atomic_load(&gpu.routed_gpu);
	out->routed_cpu = atomic_load(&gpu.routed_cpu);
	out->errors = atomic_load(&gpu.errors);
	pthread_rwlock_rdlock(&gpu.lock);
	out->crossover_measured = gpu.measured;
	out->crossover_points = gpu.n_pts;
	pthread_rwlock_unlock(&gpu.lock);
	info.sz = caller->sz < sizeof(info) ? caller->sz : sizeof(info);
	memcpy(caller, &info, info.sz);
	return ops ? 0 : -MMSB_ERR_NO_GPU;
}

int mmsb_gpu_set_policy(int policy)
{
	MMSB_API_GATE(mmsb_gpu_set_policy, policy);

	if (policy < MMSB_GPU_POLICY_AUTO || policy > MMSB_GPU_POLICY_GPU)
		return -EINVAL;
	atomic_store(&gpu.policy, policy);
	return 0;
}

int mmsb_gpu_crossover_load(const char *path)
{
	MMSB_API_GATE(mmsb_gpu_crossover_load, path);

	if (!path)
		return -EINVAL;
	mmsb__gpu();
	return table_load(path);
}

int mmsb_gpu_route(size_t page_size, size_t changed, size_t batch)
{
	MMSB_API_GATE(mmsb_gpu_route, page_size, changed, batch);

	if (changed > page_size)
		return -EINVAL;
	mmsb__gpu();
	return mmsb__gpu_prefer(page_size, changed, batch) ? MMSB_LOC_GPU : MMSB_LOC_CPU;
}
