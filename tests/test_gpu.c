// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The GPU tier without a GPU: the clean refusal (no backend, a backend without a device, the
 * CUDA backend without a driver), and GPU pages through the test backend (tests/helpers/fake_gpu.c,
 * device memory in host memory): byte for byte the same as CPU pages under every policy, host
 * transfers only when the host reads, checkpoints and replay, and the router's table. Each test
 * runs in its own process, so each loads the backend afresh.
 */
#include <limits.h>
#include <mmsb/mmsb.h>
#include <unistd.h>

#include "harness.h"

/* a backend beside this test program */
static void use_backend(const char *name)
{
	char exe[PATH_MAX], path[PATH_MAX + 64];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	ASSERT_GT(n, 0);
	exe[n] = 0;
	slash = strrchr(exe, '/');
	ASSERT_TRUE(slash);
	*slash = 0;
	snprintf(path, sizeof(path), "%s/%s", exe, name);
	setenv("MMSB_GPU_BACKEND", path, 1);
}

/* the test backend, or the one $MMSB_TEST_GPU_BACKEND names (make gpu-check: the CUDA one) */
static void fake(void)
{
	const char *real = getenv("MMSB_TEST_GPU_BACKEND");

	if (real)
		setenv("MMSB_GPU_BACKEND", real, 1);
	else
		use_backend("libmmsb-fakegpu.so");
}

static struct mmsb_gpu_info info(void)
{
	struct mmsb_gpu_info gi = { .sz = sizeof(gi) };

	mmsb_gpu_info(&gi);
	return gi;
}

TEST(no_backend_refuses_cleanly)
{
	struct mmsb_gpu_info gi = { .sz = sizeof(gi) };
	struct mmsb_state *s;
	uint64_t id;

	setenv("MMSB_GPU_BACKEND", "/nonexistent/libmmsb-cuda.so", 1);
	ASSERT_EQ(mmsb_gpu_info(&gi), -MMSB_ERR_NO_GPU);
	ASSERT_FALSE(gi.available);
	ASSERT_TRUE(strstr(gi.reason, "no GPU backend") != NULL);
	s = mmsb_state_open(NULL);
	ASSERT_TRUE(s);
	ASSERT_EQ(mmsb_page_create(s, 64, MMSB_LOC_GPU, &id), -MMSB_ERR_NO_GPU);
	ASSERT_EQ(mmsb_page_create(s, 64, MMSB_LOC_CPU, &id), 0);
	ASSERT_EQ(mmsb_page_count(s), 1);
	ASSERT_EQ(mmsb_gpu_route(4096, 10, 1), MMSB_LOC_CPU); /* the built-in table */
	mmsb_state_close(s);
	/* an output struct from an older header that is too short is refused */
	gi.sz = 8;
	ASSERT_EQ(mmsb_gpu_info(&gi), -EINVAL);
}

TEST(backend_without_device_refuses_cleanly)
{
	struct mmsb_gpu_info gi;
	struct mmsb_state *s;
	uint64_t id;

	use_backend("libmmsb-fakegpu.so"); /* always the test one: it is told to have no device */
	setenv("FAKE_GPU_FAIL", "1", 1);
	gi = info();
	ASSERT_FALSE(gi.available);
	ASSERT_STR_EQ(gi.reason, "fake: no device");
	s = mmsb_state_open(NULL);
	ASSERT_EQ(mmsb_page_create(s, 64, MMSB_LOC_GPU, &id), -MMSB_ERR_NO_GPU);
	mmsb_state_close(s);
}

TEST(cuda_backend_without_driver_or_with_a_device)
{
	struct mmsb_gpu_info gi;
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	ASSERT_GT(n, 0);
	exe[n] = 0;
	*strrchr(exe, '/') = 0;
	strncat(exe, "/../libmmsb-cuda.so", sizeof(exe) - strlen(exe) - 1);
	if (access(exe, R_OK))
		SKIP("libmmsb-cuda.so was not built (no nvcc, or CUDA=0)");
	setenv("MMSB_GPU_BACKEND", exe, 1);
	gi = info();
	if (gi.available) {
		/* a machine with a GPU: a page round trip is make gpu-check's job; it is there */
		ASSERT_STR_EQ(gi.backend, "cuda");
		return;
	}
	/* the runtime's own reason, one line: no driver, or no device */
	ASSERT_TRUE(!strncmp(gi.reason, "CUDA: ", 6));
	ASSERT_TRUE(strchr(gi.reason, '\n') == NULL);
}

#define NP 4
static const size_t sizes[NP] = { 1, 100, 4096, 70000 };

/* A random delta for a page of size sz: dense, sparse or full mask. */
static struct mmsb_delta *random_delta(uint64_t page, size_t sz, uint8_t *mask, uint8_t *pay)
{
	int kind = rand() % 3;
	size_t len = sz, cnt = 0;

	for (size_t k = 0; k < len; k++) {
		mask[k] = kind == 2 || rand() % 4 == 0;
		if (kind != 1 || mask[k])
			pay[cnt++] = (uint8_t)rand();
	}
	return mmsb_delta_new(page, mask, len, pay, kind == 1 ? cnt : len,
			      kind == 1 ? MMSB_DELTA_SPARSE : 0);
}

/* GPU pages and CPU twins given the same deltas, updates and batches: the same bytes. */
static void twins(int policy)
{
	static uint8_t mask[70000], pay[70000], a[70000], b[70000];
	struct mmsb_state *s;
	uint64_t g[NP], c[NP];

	fake();
	ASSERT_EQ(mmsb_gpu_set_policy(policy), 0);
	s = mmsb_state_open(NULL);
	ASSERT_TRUE(s);
	for (int i = 0; i < NP; i++) {
		ASSERT_EQ(mmsb_page_create(s, sizes[i], MMSB_LOC_GPU, &g[i]), 0);
		ASSERT_EQ(mmsb_page_create(s, sizes[i], MMSB_LOC_CPU, &c[i]), 0);
	}
	srand(42 + (unsigned)policy);
	for (int r = 0; r < 300; r++) {
		int i = rand() % NP;
		unsigned seed = (unsigned)rand();
		struct mmsb_delta *dg, *dc;

		srand(seed);
		dg = random_delta(g[i], sizes[i], mask, pay);
		srand(seed);
		dc = random_delta(c[i], sizes[i], mask, pay);
		ASSERT_TRUE(dg && dc);
		if (r % 10 == 9) {
			/* a batch: both twins of two pages */
			int j = (i + 1) % NP;
			struct mmsb_delta *bg[2], *bc[2];

			srand(seed + 1);
			bg[0] = dg;
			bg[1] = random_delta(g[j], sizes[j], mask, pay);
			srand(seed + 1);
			bc[0] = dc;
			bc[1] = random_delta(c[j], sizes[j], mask, pay);
			ASSERT_EQ(mmsb_route_batch(s, bg, 2), 0);
			ASSERT_EQ(mmsb_route_batch(s, bc, 2), 0);
			mmsb_delta_free(bg[1]);
			mmsb_delta_free(bc[1]);
		} else if (r % 7 == 6) {
			/* a whole-page update: diffed against the (fetched) mirror */
			for (size_t k = 0; k < sizes[i]; k++)
				a[k] = (uint8_t)rand();
			ASSERT_EQ(mmsb_page_update(s, g[i], a, sizes[i]),
				  mmsb_page_update(s, c[i], a, sizes[i]));
		} else {
			ASSERT_EQ(mmsb_route(s, dg), 0);
			ASSERT_EQ(mmsb_route(s, dc), 0);
		}
		mmsb_delta_free(dg);
		mmsb_delta_free(dc);
		if (r % 25 == 0 || r == 299)
			for (int k = 0; k < NP; k++) {
				ASSERT_EQ(mmsb_page_read(s, g[k], a, sizes[k], 0),
					  (ssize_t)sizes[k]);
				ASSERT_EQ(mmsb_page_read(s, c[k], b, sizes[k], 0),
					  (ssize_t)sizes[k]);
				ASSERT_EQ(memcmp(a, b, sizes[k]), 0);
				ASSERT_EQ(mmsb_page_epoch(s, g[k]), mmsb_page_epoch(s, c[k]));
			}
	}
	struct mmsb_gpu_info gi = info();

	if (policy == MMSB_GPU_POLICY_GPU)
		ASSERT_GT(gi.routed_gpu, 0);
	if (policy == MMSB_GPU_POLICY_CPU)
		ASSERT_EQ(gi.routed_gpu, 0);
	ASSERT_EQ(gi.errors, 0);
	mmsb_state_close(s);
}

TEST(gpu_pages_equal_cpu_pages_on_the_gpu)
{
	twins(MMSB_GPU_POLICY_GPU);
}

TEST(gpu_pages_equal_cpu_pages_on_the_cpu)
{
	twins(MMSB_GPU_POLICY_CPU);
}

TEST(gpu_pages_equal_cpu_pages_routed)
{
	char path[] = "/tmp/mmsb-xo.XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

	/* the built-in table keeps pages this small on the CPU: one that mixes both sides */
	ASSERT_TRUE(f);
	fprintf(f, "apply 100 0.5 1 10 20\napply 4096 0.5 1 20 10\n");
	fclose(f);
	fake();
	ASSERT_EQ(mmsb_gpu_crossover_load(path), 0);
	unlink(path);
	twins(MMSB_GPU_POLICY_AUTO);
	ASSERT_GT(info().routed_gpu, 0);
	ASSERT_GT(info().routed_cpu, 0);
}

TEST(host_transfers_only_when_the_host_reads)
{
	static uint8_t buf[65536], mask[65536];
	struct mmsb_gpu_info g0, g1;
	struct mmsb_state *s;
	struct mmsb_delta *d;
	uint64_t id;

	fake();
	mmsb_gpu_set_policy(MMSB_GPU_POLICY_GPU);
	s = mmsb_state_open(NULL);
	ASSERT_EQ(mmsb_page_create(s, sizeof(buf), MMSB_LOC_GPU, &id), 0);
	memset(mask, 0, sizeof(mask));
	memset(mask, 1, 100);
	memset(buf, 9, sizeof(buf));
	d = mmsb_delta_new(id, mask, sizeof(mask), buf, sizeof(buf), 0);
	g0 = info();
	ASSERT_EQ(mmsb_route(s, d), 0); /* applied on the device: no page copy */
	g1 = info();
	ASSERT_EQ(g1.downloads, g0.downloads);
	ASSERT_EQ(g1.launches, g0.launches + 1);
	ASSERT_EQ(mmsb_page_read(s, id, buf, 200, 0), 200); /* the host reads: one download */
	ASSERT_EQ(buf[99], 9);
	ASSERT_EQ(buf[100], 0);
	g0 = info();
	ASSERT_EQ(g0.downloads, g1.downloads + 1);
	ASSERT_EQ(g0.download_bytes, g1.download_bytes + sizeof(buf));
	ASSERT_EQ(mmsb_page_read(s, id, buf, 200, 0), 200); /* still current: no copy */
	ASSERT_EQ(info().downloads, g0.downloads);
	/* on the CPU the mirror is current and the device copy goes stale: one upload later */
	mmsb_gpu_set_policy(MMSB_GPU_POLICY_CPU);
	ASSERT_EQ(mmsb_route(s, d), 0);
	mmsb_gpu_set_policy(MMSB_GPU_POLICY_GPU);
	g0 = info();
	ASSERT_EQ(mmsb_route(s, d), 0);
	g1 = info();
	/* the whole page went up once (a backend may also count the kernel's inputs) */
	ASSERT_GE(g1.uploads, g0.uploads + 1);
	ASSERT_GE(g1.upload_bytes - g0.upload_bytes, sizeof(buf));
	mmsb_delta_free(d);
	mmsb_state_close(s);
}

TEST(checkpoint_replay_and_propagation_through_gpu_pages)
{
	char dir[] = "/tmp/mmsb-gpu.XXXXXX", log[64], ck[64];
	uint8_t x[512], y[512];
	struct mmsb_divergence dv;
	struct mmsb_state *s, *t;
	uint64_t a, b, c;

	fake();
	mmsb_gpu_set_policy(MMSB_GPU_POLICY_GPU);
	ASSERT_TRUE(mkdtemp(dir));
	snprintf(log, sizeof(log), "%s/g.tlog", dir);
	snprintf(ck, sizeof(ck), "%s/g.ckpt", dir);
	MMSB_OPTS(mmsb_state_opts, o, .log_path = log);
	s = mmsb_state_open(&o);
	ASSERT_TRUE(s);
	/* CPU head -> GPU middle -> CPU tail, passthrough all the way */
	ASSERT_EQ(mmsb_page_create(s, sizeof(x), MMSB_LOC_CPU, &a), 0);
	ASSERT_EQ(mmsb_page_create(s, sizeof(x), MMSB_LOC_GPU, &b), 0);
	ASSERT_EQ(mmsb_page_create(s, sizeof(x), MMSB_LOC_CPU, &c), 0);
	ASSERT_EQ(mmsb_edge_add(s, a, b, MMSB_EDGE_DATA), 0);
	ASSERT_EQ(mmsb_edge_add(s, b, c, MMSB_EDGE_DATA), 0);
	ASSERT_EQ(mmsb_page_set_passthrough(s, b, a, NULL, NULL), 0);
	ASSERT_EQ(mmsb_page_set_passthrough(s, c, b, NULL, NULL), 0);
	for (int i = 1; i <= 5; i++) {
		memset(x, i, sizeof(x));
		x[i] = 0xEE;
		ASSERT_EQ(mmsb_page_update(s, a, x, sizeof(x)), 1);
	}
	ASSERT_EQ(mmsb_page_read(s, c, y, sizeof(y), 0), (ssize_t)sizeof(y));
	ASSERT_EQ(memcmp(x, y, sizeof(x)), 0);
	ASSERT_EQ(mmsb_checkpoint_write(s, ck), 0);
	ASSERT_EQ(mmsb_state_verify(s, &dv), 0); /* the log replays to exactly these bytes */
	t = mmsb_state_open(NULL);
	ASSERT_EQ(mmsb_checkpoint_load(t, ck), 0);
	ASSERT_EQ(mmsb_page_location(t, b), MMSB_LOC_GPU);
	ASSERT_EQ(mmsb_state_diverge(s, t, &dv), 0);
	ASSERT_EQ(dv.pages_differing, 0);
	ASSERT_EQ(dv.pages_compared, 3);
	ASSERT_EQ(info().errors, 0);
	mmsb_state_close(t);
	mmsb_state_close(s);
	unlink(log);
	unlink(ck);
	rmdir(dir);
}

/*
 * A GPU page whose host mirror is stale and whose download fails, applied on the host: the
 * error comes back before the delta is logged, from route, route_batch, the engine and update,
 * with the page's epoch, its bytes and the log's counters as they were.
 */
TEST(failed_download_is_an_error_before_the_log)
{
	char dir[] = "/tmp/mmsb-gpu.XXXXXX", log[64];
	static uint8_t buf[4096], mask[4096];
	struct mmsb_counters c0, c1;
	struct mmsb_state *s, *r;
	struct mmsb_engine *e;
	struct mmsb_delta *d;
	uint64_t id;
	int64_t epoch;

	use_backend("libmmsb-fakegpu.so"); /* the knob is the test backend's */
	ASSERT_TRUE(mkdtemp(dir));
	snprintf(log, sizeof(log), "%s/d.tlog", dir);
	MMSB_OPTS(mmsb_state_opts, o, .log_path = log, .durability = MMSB_DURABLE_BATCH);
	s = mmsb_state_open(&o);
	ASSERT_TRUE(s);
	ASSERT_EQ(mmsb_page_create(s, sizeof(buf), MMSB_LOC_GPU, &id), 0);
	memset(mask, 1, 16);
	memset(buf, 7, sizeof(buf));
	d = mmsb_delta_new(id, mask, sizeof(mask), buf, sizeof(buf), 0);
	ASSERT_TRUE(d);
	/* applied on the device: the host mirror is stale from here on */
	ASSERT_EQ(mmsb_gpu_set_policy(MMSB_GPU_POLICY_GPU), 0);
	ASSERT_EQ(mmsb_route(s, d), 0);
	ASSERT_TRUE(e = mmsb_engine_new(s, NULL));
	/* on the host from here on: each apply needs the mirror, and its download fails */
	ASSERT_EQ(mmsb_gpu_set_policy(MMSB_GPU_POLICY_CPU), 0);
	setenv("FAKE_GPU_FAIL", "download", 1);
	epoch = mmsb_page_epoch(s, id);
	ASSERT_EQ(mmsb_state_counters(s, &c0), 0);
	for (int op = 0; op < 4; op++) {
		int err;

		switch (op) {
		case 0:
			err = mmsb_route(s, d);
			break;
		case 1:
			err = mmsb_route_batch(s, &d, 1);
			break;
		case 2:
			err = mmsb_engine_apply(e, &d, 1, NULL);
			break;
		default:
			err = mmsb_page_update(s, id, buf, sizeof(buf)); /* diffed on the mirror */
			break;
		}
		if (err != -EIO)
			TH_LOG("op %d: %d", op, err);
		ASSERT_EQ(err, -EIO);
		ASSERT_EQ(mmsb_page_epoch(s, id), epoch);
		ASSERT_EQ(mmsb_state_counters(s, &c1), 0);
		ASSERT_EQ(c1.next_lsn, c0.next_lsn);
		ASSERT_EQ(c1.next_delta_id, c0.next_delta_id);
	}
	ASSERT_GE(info().errors, 4);
	/* the device copy is intact, and the log replays to it */
	unsetenv("FAKE_GPU_FAIL");
	memset(buf, 0, sizeof(buf));
	ASSERT_EQ(mmsb_page_read(s, id, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	for (size_t k = 0; k < sizeof(buf); k++)
		ASSERT_EQ(buf[k], k < 16 ? 7 : 0);
	ASSERT_EQ(mmsb_state_flush(s), 0);
	ASSERT_TRUE(r = mmsb_replay(log, NULL));
	ASSERT_EQ(mmsb_page_epoch(r, id), epoch);
	mmsb_state_close(r);
	mmsb_engine_free(e);
	mmsb_delta_free(d);
	mmsb_state_close(s);
	unlink(log);
	rmdir(dir);
}

/*
 * A batch over a CPU page and a GPU page whose host copy cannot be downloaded: the GPU page's first
 * write goes to the device, so the host copy of the second must not need a download once the
 * batch is logged. Before, it did: the call failed after the commit with the rest of the batch's
 * ids unspent, the next update logged an id the log held, and the log no longer replayed.
 */
TEST(update_batch_needs_no_download_after_its_commit)
{
	char dir[] = "/tmp/mmsb-gpu.XXXXXX", log[64];
	static uint8_t v[5][4096], out[4096];
	struct mmsb_page_write w[5];
	struct mmsb_counters c0, c1;
	struct mmsb_divergence dv;
	struct mmsb_state *s;
	uint64_t cpu, gpu;
	int ret;

	fake();
	ASSERT_TRUE(mkdtemp(dir));
	snprintf(log, sizeof(log), "%s/b.tlog", dir);
	MMSB_OPTS(mmsb_state_opts, o, .log_path = log, .durability = MMSB_DURABLE_BATCH);
	s = mmsb_state_open(&o);
	ASSERT_TRUE(s);
	ASSERT_EQ(mmsb_page_create(s, sizeof(out), MMSB_LOC_CPU, &cpu), 0);
	ASSERT_EQ(mmsb_page_create(s, sizeof(out), MMSB_LOC_GPU, &gpu), 0);
	ASSERT_EQ(mmsb_gpu_set_policy(MMSB_GPU_POLICY_GPU), 0);
	for (int i = 0; i < 5; i++) {
		memset(v[i], i + 1, sizeof(v[i]));
		w[i] = (struct mmsb_page_write){ i & 1 ? gpu : cpu, v[i], sizeof(v[i]) };
	}
	ASSERT_EQ(mmsb_state_counters(s, &c0), 0);
	if (!getenv("MMSB_TEST_GPU_BACKEND"))
		setenv("FAKE_GPU_FAIL", "download", 1);
	ret = mmsb_page_update_batch(s, w, 5);
	if (ret != 5)
		TH_LOG("batch: %d", ret);
	ASSERT_EQ(ret, 5);
	ASSERT_EQ(mmsb_state_counters(s, &c1), 0);
	ASSERT_EQ(c1.next_delta_id, c0.next_delta_id + 5);
	ASSERT_EQ(mmsb_page_epoch(s, cpu), 3);
	ASSERT_EQ(mmsb_page_epoch(s, gpu), 2);
	/* downloads still fail: a new update of each page logs after the batch */
	memset(v[0], 9, sizeof(v[0]));
	ASSERT_EQ(mmsb_page_update(s, gpu, v[0], sizeof(v[0])), 1);
	ASSERT_EQ(mmsb_page_update(s, cpu, v[0], sizeof(v[0])), 1);
	ASSERT_EQ(mmsb_page_read(s, cpu, out, sizeof(out), 0), (ssize_t)sizeof(out));
	ASSERT_EQ(memcmp(out, v[0], sizeof(out)), 0);
	unsetenv("FAKE_GPU_FAIL");
	ASSERT_EQ(mmsb_page_read(s, gpu, out, sizeof(out), 0), (ssize_t)sizeof(out));
	ASSERT_EQ(memcmp(out, v[0], sizeof(out)), 0);
	/* and the log replays to the live state */
	ASSERT_EQ(mmsb_state_verify(s, &dv), 0);
	ASSERT_EQ(dv.pages_compared, 2);
	ASSERT_EQ(mmsb_page_epoch(s, gpu), 3);
	mmsb_state_close(s);
	unlink(log);
	rmdir(dir);
}

/*
 * A routed batch the router keeps off the device as a batch, whose GPU page's first delta goes to
 * the device alone and its second to the host, whose copy cannot be downloaded: both are logged
 * by then. Before, the call failed there and left the CPU page's later delta logged, unapplied,
 * its id unspent; now the second goes to the device copy, current then, and the batch completes.
 */
TEST(route_batch_after_its_commit_takes_the_side_that_works)
{
	char dir[] = "/tmp/mmsb-gpu.XXXXXX", log[64], table[64];
	static uint8_t full[4096], mask[4096], one[1] = { 5 }, out[4096];
	struct mmsb_counters c0, c1;
	struct mmsb_delta *ds[3];
	struct mmsb_state *s;
	uint64_t cpu, gpu;
	FILE *f;
	int ret;

	if (getenv("MMSB_TEST_GPU_BACKEND"))
		SKIP("the download failure is the test backend's");
	use_backend("libmmsb-fakegpu.so");
	ASSERT_TRUE(mkdtemp(dir));
	snprintf(log, sizeof(log), "%s/r.tlog", dir);
	snprintf(table, sizeof(table), "%s/xo", dir);
	/* 4 KiB pages: a full delta alone on the GPU, a 1-byte one and a batch of 2 on the CPU */
	ASSERT_TRUE(f = fopen(table, "w"));
	fprintf(f, "apply 4096 1 1 9000 500\n"
		   "apply 4096 0.001 1 500 9000\n"
		   "apply 4096 0.5 2 500 9000\n");
	ASSERT_EQ(fclose(f), 0);
	ASSERT_EQ(mmsb_gpu_crossover_load(table), 0);
	MMSB_OPTS(mmsb_state_opts, o, .log_path = log, .durability = MMSB_DURABLE_BATCH);
	s = mmsb_state_open(&o);
	ASSERT_TRUE(s);
	ASSERT_EQ(mmsb_page_create(s, sizeof(out), MMSB_LOC_CPU, &cpu), 0);
	ASSERT_EQ(mmsb_page_create(s, sizeof(out), MMSB_LOC_GPU, &gpu), 0);
	memset(full, 3, sizeof(full));
	memset(mask, 1, sizeof(mask));
	ASSERT_TRUE(ds[0] = mmsb_delta_new(gpu, mask, sizeof(mask), full, sizeof(full), 0));
	memset(mask, 0, sizeof(mask));
	mask[7] = 1;
	ASSERT_TRUE(ds[1] = mmsb_delta_new(gpu, mask, sizeof(mask), one, 1, MMSB_DELTA_SPARSE));
	ASSERT_TRUE(ds[2] = mmsb_delta_new(cpu, mask, sizeof(mask), one, 1, MMSB_DELTA_SPARSE));
	ASSERT_EQ(mmsb_state_counters(s, &c0), 0);
	setenv("FAKE_GPU_FAIL", "download", 1);
	ret = mmsb_route_batch(s, ds, 3);
	if (ret)
		TH_LOG("batch: %d", ret);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(mmsb_state_counters(s, &c1), 0);
	ASSERT_EQ(c1.next_delta_id, c0.next_delta_id + 3);
	ASSERT_EQ(mmsb_page_epoch(s, gpu), 2);
	ASSERT_EQ(mmsb_page_epoch(s, cpu), 1);
	/* a new delta logs after them, and the log replays to the live state */
	memset(out, 4, sizeof(out));
	ASSERT_EQ(mmsb_page_update(s, cpu, out, sizeof(out)), 1);
	unsetenv("FAKE_GPU_FAIL");
	ASSERT_EQ(mmsb_page_read(s, gpu, out, sizeof(out), 0), (ssize_t)sizeof(out));
	for (size_t k = 0; k < sizeof(out); k++)
		ASSERT_EQ(out[k], k == 7 ? 5 : 3);
	ASSERT_EQ(mmsb_state_verify(s, NULL), 0);
	for (int i = 0; i < 3; i++)
		mmsb_delta_free(ds[i]);
	mmsb_state_close(s);
	unlink(log);
	unlink(table);
	rmdir(dir);
}

TEST(router_follows_its_table_and_keeps_it_on_a_bad_file)
{
	char path[] = "/tmp/mmsb-xo.XXXXXX";
	int fd = mkstemp(path);
	FILE *f;

	ASSERT_GE(fd, 0);
	fake();
	/* the built-in table, measured on an H200: the GPU from 4 MiB pages with 1 % of bytes set */
	ASSERT_EQ(mmsb_gpu_route(256 << 10, 128 << 10, 1), MMSB_LOC_CPU);
	ASSERT_EQ(mmsb_gpu_route(1 << 20, 1 << 19, 1), MMSB_LOC_CPU);
	ASSERT_EQ(mmsb_gpu_route(4 << 20, 2 << 20, 1), MMSB_LOC_GPU);
	ASSERT_EQ(mmsb_gpu_route(64 << 20, 64 << 10, 1), MMSB_LOC_CPU);
	ASSERT_EQ(mmsb_gpu_route(64 << 20, 8 << 20, 1), MMSB_LOC_GPU);
	f = fdopen(fd, "w");
	/* small pages faster on the CPU, large ones on the GPU; a sparse large delta on the CPU */
	fprintf(f, "# test table\n"
		   "apply 1024 0.5 1 500 9000\n"
		   "apply 1048576 0.5 1 90000 20000\n"
		   "apply 1048576 0.001 1 900 20000\n");
	fclose(f);
	ASSERT_EQ(mmsb_gpu_crossover_load(path), 0);
	ASSERT_EQ(mmsb_gpu_route(1024, 512, 1), MMSB_LOC_CPU);
	ASSERT_EQ(mmsb_gpu_route(2048, 1024, 1), MMSB_LOC_CPU);
	ASSERT_EQ(mmsb_gpu_route(1 << 20, 1 << 19, 1), MMSB_LOC_GPU);
	ASSERT_EQ(mmsb_gpu_route(1 << 20, 1000, 1), MMSB_LOC_CPU);
	ASSERT_EQ(mmsb_gpu_route(100, 200, 1), -EINVAL);
	/* a bad table is refused whole: the loaded one stays */
	f = fopen(path, "w");
	fprintf(f, "apply 1024 0.5 1 9000 500\napply 1048576 half 1 1 2\n");
	fclose(f);
	ASSERT_EQ(mmsb_gpu_crossover_load(path), -MMSB_ERR_CORRUPT);
	ASSERT_EQ(mmsb_gpu_route(1024, 512, 1), MMSB_LOC_CPU);
	ASSERT_EQ(mmsb_gpu_crossover_load("/nonexistent/table"), -ENOENT);
	ASSERT_EQ(mmsb_gpu_set_policy(7), -EINVAL);
	unlink(path);
}
