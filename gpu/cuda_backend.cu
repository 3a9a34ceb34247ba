// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The CUDA backend of libmmsb (lib/gpu_backend.h): device pages from a size-class pool, masked
 * dense and sparse indexed applies, a batched apply of many deltas over many pages in one launch,
 * page diff to mask, delta merge. Built by nvcc into libmmsb-cuda.so with the CUDA runtime linked
 * statically; libmmsb loads it with dlopen, so neither libmmsb nor a machine without a GPU needs
 * CUDA. Without a driver or a device, init() fails with the runtime's reason and libmmsb stays
 * on the CPU.
 *
 * One stream (the default), every call synchronous at its return: libmmsb reads a GPU page only
 * after a call has returned, so there is nothing to order beyond that.
 *
 * Host data goes up from where it is, with plain pageable copies, as few as its layout allows:
 * each copy has a fixed cost (about 6 us on the H200 measured, docs/gpu.md), and a small
 * pageable copy returns once the driver has it, where a copy from pinned memory waits for the
 * DMA. Gathering the parts into a pinned buffer first was measured slower at every size there.
 */
#include <cuda_runtime.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "gpu_backend.h"
}

#define THREADS 256

/* the original's launch heuristic: 64 threads a block, 128 above 16 Ki elements, 256 above 64 Ki */
static unsigned int threads_for(size_t n)
{
	return n > 65536 ? 256 : n > 16384 ? 128 : 64;
}

static unsigned int blocks_for(size_t n, unsigned int t)
{
	size_t b = (n + t - 1) / t;

	return b > 65535 ? 65535 : b ? (unsigned int)b : 1;
}

__global__ void k_apply_dense(uint8_t *dst, const uint8_t *mask, const uint8_t *pay, size_t n)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x)
		if (mask[i])
			dst[i] = pay[i];
}

__global__ void k_apply_sparse(uint8_t *dst, const uint32_t *idx, const uint8_t *val, size_t n)
{
	for (size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < n;
	     k += (size_t)gridDim.x * blockDim.x)
		dst[idx[k]] = val[k];
}

/* one delta of a batch, as the kernel sees it: offsets into the uploaded staging buffer */
struct kdelta {
	uint8_t *dev;
	size_t mask_off, index_off, pay_off, n; /* mask_off or index_off is ~0 when unused */
};

/*
 * One block per page: its deltas in batch order, a barrier between them, so a later delta of a
 * page overwrites an earlier one exactly as on the CPU. Pages are independent blocks.
 */
__global__ void k_apply_batch(const kdelta *d, const uint32_t *group_start,
			      const uint32_t *group_len, const uint8_t *stage)
{
	uint32_t g = blockIdx.x;

	for (uint32_t k = group_start[g]; k < group_start[g] + group_len[g]; k++) {
		const kdelta x = d[k];

		if (x.index_off != (size_t)~0ull) {
			const uint32_t *idx = (const uint32_t *)(stage + x.index_off);

			for (size_t i = threadIdx.x; i < x.n; i += blockDim.x)
				x.dev[idx[i]] = stage[x.pay_off + i];
		} else {
			for (size_t i = threadIdx.x; i < x.n; i += blockDim.x)
				if (stage[x.mask_off + i])
					x.dev[i] = stage[x.pay_off + i];
		}
		__syncthreads();
	}
}

__global__ void k_diff(const uint8_t *a, const uint8_t *b, size_t n, uint8_t *mask,
		       unsigned long long *changed)
{
	__shared__ unsigned int block_count;
	unsigned int mine = 0;

	if (threadIdx.x == 0)
		block_count = 0;
	__syncthreads();
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x) {
		uint8_t m = a[i] != b[i];

		mask[i] = m;
		mine += m;
	}
	atomicAdd(&block_count, mine);
	__syncthreads();
	if (threadIdx.x == 0)
		atomicAdd(changed, (unsigned long long)block_count);
}

__global__ void k_merge(const uint8_t *ma, const uint8_t *pa, const uint8_t *mb, const uint8_t *pb,
			size_t n, uint8_t *mo, uint8_t *po)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x) {
		mo[i] = ma[i] | mb[i];
		po[i] = mb[i] ? pb[i] : pa[i];
	}
}

/* ---- device memory pool: the original's size classes, and exact allocations above them ---- */

static const size_t classes[] = { 4096, 16384, 65536, 262144, 1048576, 4194304 };
#define N_CLASSES (sizeof(classes) / sizeof(classes[0]))
#define MAX_FREE 64 /* cached blocks per class; more are returned to the driver */

static struct {
	pthread_mutex_t lock;
	void *free[N_CLASSES][MAX_FREE];
	int n_free[N_CLASSES];
	/* staging for delta uploads, grown as needed */
	uint8_t *stage;
	size_t stage_size;
	unsigned long long *changed;
	struct mmsb_gpu_counters c;
	char device[256];
} g = { PTHREAD_MUTEX_INITIALIZER };

static int class_of(size_t size)
{
	for (size_t i = 0; i < N_CLASSES; i++)
		if (size <= classes[i])
			return (int)i;
	return -1;
}

static int err_of(cudaError_t e)
{
	switch (e) {
	case cudaSuccess:
		return 0;
	case cudaErrorMemoryAllocation:
		return -ENOMEM;
	case cudaErrorInvalidValue:
		return -EINVAL;
	default:
		return -EIO;
	}
}

static int be_init(char *why, size_t len)
{
	int n = 0;
	cudaError_t e = cudaGetDeviceCount(&n);
	cudaDeviceProp p;

	if (e != cudaSuccess || n == 0) {
		snprintf(why, len, "CUDA: %s", e != cudaSuccess ? cudaGetErrorString(e) : "no device");
		return -ENODEV;
	}
	if ((e = cudaSetDevice(0)) != cudaSuccess || (e = cudaFree(0)) != cudaSuccess ||
	    (e = cudaMalloc((void **)&g.changed, sizeof(*g.changed))) != cudaSuccess) {
		snprintf(why, len, "CUDA: %s", cudaGetErrorString(e));
		return -ENODEV;
	}
	if (cudaGetDeviceProperties(&p, 0) == cudaSuccess)
		snprintf(g.device, sizeof(g.device), "%s, %zu MiB, sm_%d%d", p.name,
			 p.totalGlobalMem >> 20, p.major, p.minor);
	return 0;
}

static void be_fini(void)
{
	pthread_mutex_lock(&g.lock);
	for (size_t c = 0; c < N_CLASSES; c++)
		while (g.n_free[c])
			cudaFree(g.free[c][--g.n_free[c]]);
	cudaFree(g.stage);
	cudaFree(g.changed);
	g.stage = NULL;
	g.stage_size = 0;
	pthread_mutex_unlock(&g.lock);
}

static void be_describe(char *buf, size_t len)
{
	snprintf(buf, len, "%s", g.device[0] ? g.device : "CUDA device");
}

static int be_alloc(size_t size, void **dev)
{
	int c = class_of(size), err = 0;
	void *p = NULL;

	pthread_mutex_lock(&g.lock);
	if (c >= 0 && g.n_free[c]) {
		p = g.free[c][--g.n_free[c]];
		g.c.pool_hits++;
		g.c.pool_bytes_cached -= classes[c];
	} else {
		/* above the largest class: exactly the size asked for, never a smaller block */
		size_t want = c >= 0 ? classes[c] : size;

		err = err_of(cudaMalloc(&p, want));
		if (c >= 0)
			g.c.pool_misses++;
		else
			g.c.large_allocs++;
	}
	if (!err)
		err = err_of(cudaMemset(p, 0, size));
	pthread_mutex_unlock(&g.lock);
	*dev = err ? NULL : p;
	return err;
}

static void be_free(void *dev, size_t size)
{
	int c = class_of(size);

	if (!dev)
		return;
	pthread_mutex_lock(&g.lock);
	if (c >= 0 && g.n_free[c] < MAX_FREE) {
		g.free[c][g.n_free[c]++] = dev;
		g.c.pool_bytes_cached += classes[c];
	} else {
		cudaFree(dev);
	}
	pthread_mutex_unlock(&g.lock);
}

static int be_upload(void *dev, const void *host, size_t n)
{
	int err = err_of(cudaMemcpy(dev, host, n, cudaMemcpyHostToDevice));

	__atomic_add_fetch(&g.c.uploads, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&g.c.upload_bytes, n, __ATOMIC_RELAXED);
	return err;
}

struct part {
	const void *host;
	size_t n;
};

/*
 * The parts of one operation, one after another from dev; parts that follow each other in host
 * memory too go as one copy (a delta's mask and payload, a sparse delta's indices and values).
 */
static int send(void *dev, const struct part *pt, int n_parts)
{
	size_t off = 0;
	int err = 0;

	for (int i = 0; i < n_parts && !err; i++) {
		size_t n = pt[i].n;

		while (i + 1 < n_parts && (const uint8_t *)pt[i].host + pt[i].n == pt[i + 1].host)
			n += pt[++i].n;
		err = be_upload((uint8_t *)dev + off, (const uint8_t *)pt[i].host + pt[i].n - n, n);
		off += n;
	}
	return err;
}

static int be_download(void *host, const void *dev, size_t n)
{
	int err = err_of(cudaMemcpy(host, dev, n, cudaMemcpyDeviceToHost));

	__atomic_add_fetch(&g.c.downloads, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&g.c.download_bytes, n, __ATOMIC_RELAXED);
	return err;
}

/* the staging buffer, at least n bytes; called with g.lock held */
static int stage_reserve(size_t n)
{
	if (n <= g.stage_size)
		return 0;
	cudaFree(g.stage);
	g.stage = NULL;
	g.stage_size = 0;
	if (cudaMalloc((void **)&g.stage, n) != cudaSuccess)
		return -ENOMEM;
	g.stage_size = n;
	return 0;
}

static int launched(void)
{
	cudaError_t e = cudaGetLastError();

	__atomic_add_fetch(&g.c.launches, 1, __ATOMIC_RELAXED);
	if (e == cudaSuccess)
		e = cudaDeviceSynchronize();
	__atomic_add_fetch(&g.c.syncs, 1, __ATOMIC_RELAXED);
	return err_of(e);
}

static int be_apply_dense(void *dev, const uint8_t *mask, const uint8_t *pay, size_t n)
{
	unsigned int t = threads_for(n);
	int err;

	struct part pt[] = { { mask, n }, { pay, n } };

	pthread_mutex_lock(&g.lock);
	err = stage_reserve(2 * n);
	if (!err)
		err = send(g.stage, pt, 2);
	if (!err) {
		k_apply_dense<<<blocks_for(n, t), t>>>((uint8_t *)dev, g.stage, g.stage + n, n);
		err = launched();
	}
	pthread_mutex_unlock(&g.lock);
	return err;
}

static int be_apply_sparse(void *dev, const uint32_t *idx, const uint8_t *val, size_t n)
{
	unsigned int t = threads_for(n);
	int err;

	struct part pt[] = { { idx, 4 * n }, { val, n } };

	if (!n)
		return 0;
	pthread_mutex_lock(&g.lock);
	err = stage_reserve(5 * n);
	if (!err)
		err = send(g.stage, pt, 2);
	if (!err) {
		k_apply_sparse<<<blocks_for(n, t), t>>>((uint8_t *)dev, (const uint32_t *)g.stage,
							g.stage + 4 * n, n);
		err = launched();
	}
	pthread_mutex_unlock(&g.lock);
	return err;
}

static size_t align8(size_t v)
{
	return (v + 7) & ~(size_t)7;
}

/*
 * Pack every delta's data into one host buffer (one upload), group the deltas by page keeping
 * their order, and launch one block per page.
 */
static int be_apply_batch(const struct mmsb_gpu_delta *d, size_t n)
{
	size_t data = 0, off = 0, meta;
	uint32_t n_groups = 0, *order, *gstart, *glen;
	struct kdelta *kd;
	uint8_t *host;
	int err;

	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++)
		data += align8(d[i].index ? 4 * d[i].n : d[i].n) + align8(d[i].n);
	order = (uint32_t *)malloc(3 * n * sizeof(uint32_t));
	if (!order)
		return -ENOMEM;
	gstart = order + n;
	glen = gstart + n;
	/* stable grouping by page: pages in first-seen order, deltas in batch order */
	for (size_t i = 0, k = 0; i < n; i++) {
		bool seen = false;

		for (size_t j = 0; j < i && !seen; j++)
			seen = d[j].dev == d[i].dev;
		if (seen)
			continue;
		gstart[n_groups] = (uint32_t)k;
		glen[n_groups] = 0;
		for (size_t j = i; j < n; j++)
			if (d[j].dev == d[i].dev) {
				order[k++] = (uint32_t)j;
				glen[n_groups]++;
			}
		n_groups++;
	}
	meta = align8(n * sizeof(struct kdelta)) + align8(2 * n_groups * sizeof(uint32_t));
	host = (uint8_t *)malloc(data + meta);
	if (!host) {
		free(order);
		return -ENOMEM;
	}
	kd = (struct kdelta *)(host + data);
	for (size_t k = 0; k < n; k++) {
		const struct mmsb_gpu_delta *x = &d[order[k]];
		size_t first = x->index ? 4 * x->n : x->n;

		memcpy(host + off, x->index ? (const void *)x->index : (const void *)x->mask, first);
		kd[k].dev = (uint8_t *)x->dev;
		kd[k].n = x->n;
		kd[k].mask_off = x->index ? ~(size_t)0 : off;
		kd[k].index_off = x->index ? off : ~(size_t)0;
		off += align8(first);
		memcpy(host + off, x->payload, x->n);
		kd[k].pay_off = off;
		off += align8(x->n);
	}
	uint32_t *gs = (uint32_t *)(host + data + align8(n * sizeof(struct kdelta)));

	memcpy(gs, gstart, n_groups * sizeof(uint32_t));
	memcpy(gs + n_groups, glen, n_groups * sizeof(uint32_t));
	pthread_mutex_lock(&g.lock);
	err = stage_reserve(data + meta);
	if (!err) {
		struct part pt = { host, data + meta };

		err = send(g.stage, &pt, 1);
	}
	if (!err) {
		k_apply_batch<<<n_groups, THREADS>>>(
			(const struct kdelta *)(g.stage + data),
			(const uint32_t *)(g.stage + data + align8(n * sizeof(struct kdelta))),
			(const uint32_t *)(g.stage + data + align8(n * sizeof(struct kdelta))) +
				n_groups,
			g.stage);
		err = launched();
	}
	pthread_mutex_unlock(&g.lock);
	free(host);
	free(order);
	return err;
}

static int be_diff(const void *dev, const void *host, size_t n, uint8_t *mask_out, size_t *changed)
{
	unsigned long long c = 0;
	unsigned int t = threads_for(n);
	int err;

	pthread_mutex_lock(&g.lock);
	err = stage_reserve(2 * n);
	if (!err) {
		struct part pt = { host, n };

		err = send(g.stage, &pt, 1);
	}
	if (!err)
		err = err_of(cudaMemset(g.changed, 0, sizeof(*g.changed)));
	if (!err) {
		k_diff<<<blocks_for(n, t), t>>>((const uint8_t *)dev, g.stage, n, g.stage + n,
						 g.changed);
		err = launched();
	}
	if (!err)
		err = be_download(mask_out, g.stage + n, n);
	if (!err)
		err = err_of(cudaMemcpy(&c, g.changed, sizeof(c), cudaMemcpyDeviceToHost));
	pthread_mutex_unlock(&g.lock);
	*changed = (size_t)c;
	return err;
}

static int be_merge(const uint8_t *ma, const uint8_t *pa, const uint8_t *mb, const uint8_t *pb,
		    size_t n, uint8_t *mo, uint8_t *po)
{
	unsigned int t = threads_for(n);
	struct part pt[] = { { ma, n }, { pa, n }, { mb, n }, { pb, n } };
	int err;

	pthread_mutex_lock(&g.lock);
	err = stage_reserve(6 * n);
	if (!err)
		err = send(g.stage, pt, 4);
	if (!err) {
		k_merge<<<blocks_for(n, t), t>>>(g.stage, g.stage + n, g.stage + 2 * n,
						 g.stage + 3 * n, n, g.stage + 4 * n,
						 g.stage + 5 * n);
		err = launched();
	}
	if (!err)
		err = be_download(mo, g.stage + 4 * n, n);
	if (!err)
		err = be_download(po, g.stage + 5 * n, n);
	pthread_mutex_unlock(&g.lock);
	return err;
}

static int be_sync(void)
{
	__atomic_add_fetch(&g.c.syncs, 1, __ATOMIC_RELAXED);
	return err_of(cudaDeviceSynchronize());
}

static void be_counters(struct mmsb_gpu_counters *out)
{
	pthread_mutex_lock(&g.lock);
	*out = g.c;
	pthread_mutex_unlock(&g.lock);
}

static const struct mmsb_gpu_ops ops = {
	MMSB_GPU_ABI,	 "cuda",	  be_init,	 be_fini,	 be_describe,
	be_alloc,	 be_free,	  be_upload,	 be_download,	 be_apply_dense,
	be_apply_sparse, be_apply_batch, be_diff,	 be_merge,	 be_sync,
	be_counters,
};

extern "C" __attribute__((visibility("default"))) const struct mmsb_gpu_ops *mmsb_gpu_backend(void)
{
	return &ops;
}
