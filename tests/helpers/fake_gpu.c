// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A GPU backend for tests (lib/gpu_backend.h) where device memory is host memory and each
 * operation costs what the test chooses, so the router's policy and the coherence of GPU pages
 * can be tested on a machine without a GPU:
 *
 *   FAKE_GPU_FAIL=1          init fails ("fake: no device"), as a machine without a GPU does
 *   FAKE_GPU_FAIL=download   every download (device to host) fails with -EIO, copying nothing;
 *                            read at each call, so a test can set and unset it as it goes
 *   FAKE_GPU_LAUNCH_NS=N     every apply costs N ns (a launch and a synchronisation)
 *   FAKE_GPU_NS_PER_KIB=N    plus N ns per KiB moved to or from the "device"
 *
 * The costs are spun, not slept, so they show in the caller's clock like real work.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gpu_backend.h"

static struct mmsb_gpu_counters c;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static double launch_ns, ns_per_kib;

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void cost(size_t bytes, bool launch)
{
	double until = now_ns() + (launch ? launch_ns : 0) + ns_per_kib * (double)bytes / 1024;

	while (now_ns() < until)
		;
}

static int fk_init(char *why, size_t len)
{
	const char *f = getenv("FAKE_GPU_FAIL"), *l = getenv("FAKE_GPU_LAUNCH_NS"),
		   *b = getenv("FAKE_GPU_NS_PER_KIB");

	if (f && !strcmp(f, "1")) {
		snprintf(why, len, "fake: no device");
		return -ENODEV;
	}
	launch_ns = l ? atof(l) : 0;
	ns_per_kib = b ? atof(b) : 0;
	return 0;
}

static void fk_fini(void)
{
}

static void fk_describe(char *buf, size_t len)
{
	snprintf(buf, len, "fake device (launch %.0f ns, %.0f ns/KiB)", launch_ns, ns_per_kib);
}

static int fk_alloc(size_t size, void **dev)
{
	*dev = calloc(1, size);
	pthread_mutex_lock(&lock);
	c.pool_misses++;
	pthread_mutex_unlock(&lock);
	return *dev ? 0 : -ENOMEM;
}

static void fk_free(void *dev, size_t size)
{
	(void)size;
	free(dev);
}

static void count(uint64_t *what, uint64_t *bytes, size_t n)
{
	pthread_mutex_lock(&lock);
	(*what)++;
	if (bytes)
		*bytes += n;
	pthread_mutex_unlock(&lock);
}

static int fk_upload(void *dev, const void *host, size_t n)
{
	memcpy(dev, host, n);
	cost(n, false);
	count(&c.uploads, &c.upload_bytes, n);
	return 0;
}

static int fk_download(void *host, const void *dev, size_t n)
{
	const char *f = getenv("FAKE_GPU_FAIL");

	if (f && !strcmp(f, "download"))
		return -EIO;
	memcpy(host, dev, n);
	cost(n, false);
	count(&c.downloads, &c.download_bytes, n);
	return 0;
}

static int fk_apply_dense(void *dev, const uint8_t *mask, const uint8_t *pay, size_t n)
{
	uint8_t *d = dev;

	for (size_t i = 0; i < n; i++)
		if (mask[i])
			d[i] = pay[i];
	cost(2 * n, true);
	count(&c.launches, NULL, 0);
	return 0;
}

static int fk_apply_sparse(void *dev, const uint32_t *idx, const uint8_t *val, size_t n)
{
	uint8_t *d = dev;

	for (size_t k = 0; k < n; k++)
		d[idx[k]] = val[k];
	cost(5 * n, true);
	count(&c.launches, NULL, 0);
	return 0;
}

static int fk_apply_batch(const struct mmsb_gpu_delta *d, size_t n)
{
	size_t bytes = 0;

	for (size_t i = 0; i < n; i++) {
		uint8_t *p = d[i].dev;

		for (size_t k = 0; k < d[i].n; k++) {
			if (d[i].index)
				p[d[i].index[k]] = d[i].payload[k];
			else if (d[i].mask[k])
				p[k] = d[i].payload[k];
		}
		bytes += d[i].index ? 5 * d[i].n : 2 * d[i].n;
	}
	cost(bytes, true);
	count(&c.launches, NULL, 0);
	return 0;
}

static int fk_diff(const void *dev, const void *host, size_t n, uint8_t *mask, size_t *changed)
{
	const uint8_t *a = dev, *b = host;

	*changed = 0;
	for (size_t i = 0; i < n; i++)
		*changed += (mask[i] = a[i] != b[i]);
	cost(2 * n, true);
	count(&c.launches, NULL, 0);
	return 0;
}

static int fk_merge(const uint8_t *ma, const uint8_t *pa, const uint8_t *mb, const uint8_t *pb,
		    size_t n, uint8_t *mo, uint8_t *po)
{
	for (size_t i = 0; i < n; i++) {
		mo[i] = ma[i] | mb[i];
		po[i] = mb[i] ? pb[i] : pa[i];
	}
	cost(6 * n, true);
	count(&c.launches, NULL, 0);
	return 0;
}

static int fk_sync(void)
{
	count(&c.syncs, NULL, 0);
	return 0;
}

static void fk_counters(struct mmsb_gpu_counters *out)
{
	pthread_mutex_lock(&lock);
	*out = c;
	pthread_mutex_unlock(&lock);
}

static const struct mmsb_gpu_ops ops = {
	.abi = MMSB_GPU_ABI,
	.name = "fake",
	.init = fk_init,
	.fini = fk_fini,
	.describe = fk_describe,
	.alloc = fk_alloc,
	.free = fk_free,
	.upload = fk_upload,
	.download = fk_download,
	.apply_dense = fk_apply_dense,
	.apply_sparse = fk_apply_sparse,
	.apply_batch = fk_apply_batch,
	.diff = fk_diff,
	.merge = fk_merge,
	.sync = fk_sync,
	.counters = fk_counters,
};

__attribute__((visibility("default"))) const struct mmsb_gpu_ops *mmsb_gpu_backend(void)
{
	return &ops;
}
