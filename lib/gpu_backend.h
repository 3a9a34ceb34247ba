/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The ABI between libmmsb and a device backend loaded at run time (gpu/cuda_backend.cu builds
 * libmmsb-cuda.so; tests build a fake one). libmmsb never links CUDA: it dlopen()s the backend
 * and calls mmsb_gpu_backend() for this table. Every function returns 0 or a negative errno and
 * is called with the backend's own serialisation (one stream, synchronous at each return unless
 * said otherwise). Buffers named "host" are host memory, "dev" are the backend's.
 */
#ifndef __MMSB_GPU_BACKEND_H
#define __MMSB_GPU_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#define MMSB_GPU_ABI 1

/* one delta of a batched apply: dense (mask bytes + payload) or sparse (indices + values) */
struct mmsb_gpu_delta {
	void *dev;		/* the page */
	const uint8_t *mask;	/* dense: one byte per page byte, n of them; sparse: NULL */
	const uint32_t *index;	/* sparse: n byte offsets; dense: NULL */
	const uint8_t *payload; /* dense: n bytes (only masked ones are used); sparse: n values */
	size_t n;
};

struct mmsb_gpu_counters {
	uint64_t uploads, downloads, upload_bytes, download_bytes;
	uint64_t launches, syncs;
	uint64_t pool_hits, pool_misses, pool_bytes_cached, large_allocs;
};

struct mmsb_gpu_ops {
	int abi; /* MMSB_GPU_ABI */
	const char *name;
	/* 0, or -ENODEV etc. with a one-line reason (no driver, no device) in why */
	int (*init)(char *why, size_t len);
	void (*fini)(void);
	/* device name and memory, for reports */
	void (*describe)(char *buf, size_t len);
	/* zeroed device memory of size bytes (pooled by size class; larger sizes exactly) */
	int (*alloc)(size_t size, void **dev);
	void (*free)(void *dev, size_t size);
	int (*upload)(void *dev, const void *host, size_t n);
	int (*download)(void *host, const void *dev, size_t n);
	/* dev[i] = payload[i] where mask[i], i < n */
	int (*apply_dense)(void *dev, const uint8_t *mask, const uint8_t *payload, size_t n);
	/* dev[index[k]] = values[k], k < n */
	int (*apply_sparse)(void *dev, const uint32_t *index, const uint8_t *values, size_t n);
	/* every delta of the batch in one launch; deltas of one page are applied in order */
	int (*apply_batch)(const struct mmsb_gpu_delta *d, size_t n);
	/* mask_out[i] = (dev[i] != host[i]); the number of differing bytes in *changed */
	int (*diff)(const void *dev, const void *host, size_t n, uint8_t *mask_out,
		    size_t *changed);
	/* masked overwrite-merge of two dense deltas: out = b where mask_b, else a (masks or'ed) */
	int (*merge)(const uint8_t *mask_a, const uint8_t *pay_a, const uint8_t *mask_b,
		     const uint8_t *pay_b, size_t n, uint8_t *mask_out, uint8_t *pay_out);
	int (*sync)(void);
	void (*counters)(struct mmsb_gpu_counters *out);
};

/* the one symbol a backend exports */
typedef const struct mmsb_gpu_ops *(*mmsb_gpu_backend_fn)(void);
#define MMSB_GPU_BACKEND_SYMBOL "mmsb_gpu_backend"

#endif /* __MMSB_GPU_BACKEND_H */
