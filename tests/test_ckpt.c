// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Checkpoints: v3 round trips, the original's v2, corruption, atomic load. */
#include <fcntl.h>
#include <malloc.h>
#include <mmsb/mmsb.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixtures.h"
#include "harness.h"

static struct mmsb_state *build(void)
{
	struct mmsb_state *s = mmsb_state_open(NULL);
	uint8_t b[100];
	uint64_t id;

	ASSERT_TRUE(s);
	/* created out of order: the file must still be sorted by id */
	ASSERT_EQ(mmsb_page_create_id(s, 30, 100, MMSB_LOC_CPU), 0);
	ASSERT_EQ(mmsb_page_create_id(s, 10, 50, MMSB_LOC_UNIFIED), 0);
	ASSERT_EQ(mmsb_page_create(s, 7, MMSB_LOC_CPU, &id), 0);
	for (int i = 0; i < 100; i++)
		b[i] = (uint8_t)(i * 7);
	ASSERT_EQ(mmsb_page_update(s, 30, b, 100), 1);
	ASSERT_EQ(mmsb_page_update(s, 10, b + 3, 50), 1);
	ASSERT_EQ(mmsb_page_meta_set(s, 10, "owner", "bench", 5), 0);
	ASSERT_EQ(mmsb_edge_add(s, 10, 30, MMSB_EDGE_DATA), 0);
	ASSERT_EQ(mmsb_edge_add(s, 10, 30, MMSB_EDGE_CONTROL), 0);
	ASSERT_EQ(mmsb_edge_add(s, 30, id, MMSB_EDGE_COMPILER), 0);
	return s;
}

static void same_state(struct mmsb_state *a, struct mmsb_state *b)
{
	struct mmsb_divergence d;
	struct mmsb_counters ca, cb;
	uint64_t ta[8], tb[8];

	ASSERT_EQ(mmsb_state_diverge(a, b, &d), 0);
	ASSERT_EQ(d.pages_differing + d.only_in_a + d.only_in_b, 0);
	ASSERT_EQ(mmsb_edge_count(a), mmsb_edge_count(b));
	ASSERT_EQ(mmsb_graph_toposort(a, ta, 8), mmsb_graph_toposort(b, tb, 8));
	ASSERT_MEM_EQ(ta, tb, (size_t)mmsb_page_count(a) * 8);
	ASSERT_EQ(mmsb_page_epoch(a, 30), mmsb_page_epoch(b, 30));
	ASSERT_EQ(mmsb_state_counters(a, &ca), 0);
	ASSERT_EQ(mmsb_state_counters(b, &cb), 0);
	ASSERT_EQ(ca.next_page_id, cb.next_page_id);
	ASSERT_EQ(ca.next_delta_id, cb.next_delta_id);
}

TEST(v3_round_trip_deterministic)
{
	const char *p1 = th_path("a.ckpt"), *p2 = th_path("b.ckpt");
	struct mmsb_state *s = build(), *t = mmsb_state_open(NULL);
	struct mmsb_checkpoint_info info;
	uint8_t val[8], *x, *y;
	size_t nx, ny;

	ASSERT_EQ(mmsb_checkpoint_write(s, p1), 0);
	ASSERT_EQ(mmsb_checkpoint_write(s, p2), 0);
	ASSERT_TRUE(x = fx_read(p1, &nx));
	ASSERT_TRUE(y = fx_read(p2, &ny));
	/* the same state writes the same bytes */
	ASSERT_EQ(nx, ny);
	ASSERT_MEM_EQ(x, y, nx);
	ASSERT_EQ(mmsb_checkpoint_verify(p1, &info), 0);
	EXPECT_EQ(info.version, 3);
	EXPECT_EQ(info.pages, 3);
	EXPECT_EQ(info.edges, 3);
	EXPECT_EQ(info.page_bytes, 157);
	ASSERT_EQ(mmsb_checkpoint_load(t, p1), 0);
	same_state(s, t);
	ASSERT_EQ(mmsb_page_meta_get(t, 10, "owner", val, 8), 5);
	ASSERT_EQ(mmsb_page_location(t, 10), MMSB_LOC_UNIFIED);
	/* restored counters: a new page does not collide with a restored id */
	uint64_t id;

	ASSERT_EQ(mmsb_page_create(t, 1, MMSB_LOC_CPU, &id), 0);
	ASSERT_EQ(id, 32);
	free(x);
	free(y);
	mmsb_state_close(s);
	mmsb_state_close(t);
}

TEST(original_v2_checkpoint_read)
{
	const char *path = th_path("v2.ckpt");
	static struct fx f;
	struct mmsb_state *s = mmsb_state_open(NULL);
	uint8_t data[6] = { 1, 2, 3, 4, 5, 6 }, out[6], val[4];
	const uint8_t meta[] = { 1, 0, 0, 0, 1, 0, 0, 0, 'k', 2, 0, 0, 0, 'v', 'w' };

	/* header: magic, version 2, page_count, log_offset; then the records */
	fx_raw(&f, "MMSBSNAP", 8);
	fx_u32(&f, 2);
	fx_u32(&f, 2);
	fx_u64(&f, 1234);
	/* page 5: 6 bytes, epoch 3, CPU, one metadata entry */
	fx_u64(&f, 5);
	fx_u64(&f, 6);
	fx_u32(&f, 3);
	fx_u32(&f, 0);
	fx_u32(&f, sizeof(meta));
	fx_raw(&f, meta, sizeof(meta));
	fx_u32(&f, 6);
	fx_raw(&f, data, 6);
	/* page 2: 2 bytes, epoch 0, UNIFIED, no metadata */
	fx_u64(&f, 2);
	fx_u64(&f, 2);
	fx_u32(&f, 0);
	fx_u32(&f, 2);
	fx_u32(&f, 0);
	fx_u32(&f, 2);
	fx_raw(&f, "\xaa\xbb", 2);
	ASSERT_EQ(fx_write(path, f.b, f.n), 0);
	ASSERT_EQ(mmsb_checkpoint_load(s, path), 0);
	ASSERT_EQ(mmsb_page_count(s), 2);
	ASSERT_EQ(mmsb_page_read(s, 5, out, 6, 0), 6);
	ASSERT_MEM_EQ(out, data, 6);
	ASSERT_EQ(mmsb_page_epoch(s, 5), 3);
	ASSERT_EQ(mmsb_page_location(s, 2), MMSB_LOC_UNIFIED);
	ASSERT_EQ(mmsb_page_meta_get(s, 5, "k", val, 4), 2);
	ASSERT_MEM_EQ(val, "vw", 2);
	/* data_len must equal size */
	memcpy(f.b + f.n - 6, "\x03\0\0\0", 4);
	ASSERT_EQ(fx_write(path, f.b, f.n), 0);
	ASSERT_EQ(mmsb_checkpoint_verify(path, NULL), -MMSB_ERR_CORRUPT);
	mmsb_state_close(s);
}

TEST_TIMEOUT(corruption_rejected_state_untouched, 120)
{
	const char *good = th_path("g.ckpt"), *bad = th_path("x.ckpt");
	struct mmsb_state *s = build(), *t = build();
	uint8_t *orig;
	size_t n;

	ASSERT_EQ(mmsb_checkpoint_write(s, good), 0);
	ASSERT_TRUE(orig = fx_read(good, &n));
	/* every flipped byte and every truncation is refused, and t is left as it was */
	for (size_t off = 0; off < n; off++) {
		orig[off] ^= 0x20;
		ASSERT_EQ(fx_write(bad, orig, n), 0);
		ASSERT_LT(mmsb_checkpoint_load(t, bad), 0);
		orig[off] ^= 0x20;
		ASSERT_EQ(fx_write(bad, orig, off), 0);
		ASSERT_LT(mmsb_checkpoint_load(t, bad), 0);
	}
	same_state(s, t);
	free(orig);
	mmsb_state_close(s);
	mmsb_state_close(t);
}

/* Anonymous memory resident in this process, KiB (the kernel's own count), or -1. */
static long rss_anon_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	ASSERT_TRUE(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "RssAnon: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/*
 * Why a reading of rss_anon_kib() says nothing of the library's memory, or NULL. Under ASan its
 * quarantine keeps what was freed, under TSan the shadow of what was touched stays.
 */
static const char *rss_unjudged(long kib)
{
#ifdef TH_SANITIZER
	return "under " TH_SANITIZER;
#endif
	return kib < 0 ? "no RssAnon in /proc/self/status" : NULL;
}

/* page i's 64 bytes: its id, then a byte of its own */
static void page_bytes(uint8_t b[64], uint64_t i)
{
	memset(b, (int)(i * 13), 64);
	memcpy(b, &i, sizeof(i));
}

/*
 * A load's pages share chunks of memory (lib/page.c): freed one by one, in an order that leaves
 * every chunk holding pages to the end, each page left keeps its bytes, and the last one freed
 * gives the memory back, all but two chunks kept for the next pages while the state lives, the
 * rest with the state. 26,000 pages of 64 bytes fill four chunks: a chunk never given back leaves
 * 2 MiB resident.
 */
TEST(loaded_pages_freed_one_by_one)
{
	const char *path = th_path("many.ckpt");
	const uint64_t n = 26000, stride = 7;
	struct mmsb_state *s = mmsb_state_open(NULL), *t = mmsb_state_open(NULL);
	uint8_t b[64], got[64];
	long before, loaded, freed, after;

	ASSERT_TRUE(s && t);
	for (uint64_t i = 1; i <= n; i++) {
		page_bytes(b, i);
		ASSERT_EQ(mmsb_page_create_id(s, i, sizeof(b), MMSB_LOC_CPU), 0);
		ASSERT_EQ(mmsb_page_update(s, i, b, sizeof(b)), 1);
	}
	ASSERT_EQ(mmsb_checkpoint_write(s, path), 0);
	mmsb_state_close(s);
	/* what malloc keeps of s is given back first: the load's own table must not land in it */
	malloc_trim(0);
	before = rss_anon_kib();
	ASSERT_EQ(mmsb_checkpoint_load(t, path), 0);
	loaded = rss_anon_kib();
	ASSERT_EQ(mmsb_page_count(t), n);
	/* stride 7 through the ids, seven passes: every chunk loses pages from the first pass on */
	for (uint64_t k = 0; k < stride; k++) {
		for (uint64_t i = 1 + k; i <= n; i += stride)
			ASSERT_EQ(mmsb_page_free(t, i), 0);
		for (uint64_t i = 1 + k + 1; i <= n && k + 1 < stride; i += 97 * stride) {
			page_bytes(b, i);
			ASSERT_EQ(mmsb_page_read(t, i, got, sizeof(got), 0), (ssize_t)sizeof(got));
			ASSERT_EQ(memcmp(got, b, sizeof(b)), 0);
		}
	}
	ASSERT_EQ(mmsb_page_count(t), 0);
	malloc_trim(0);
	freed = rss_anon_kib();
	mmsb_state_close(t);
	malloc_trim(0);
	after = rss_anon_kib();
	TH_LOG("RssAnon %ld KiB before the load, %ld loaded, %ld after the last free, %ld closed",
	       before, loaded, freed, after);
	if (rss_unjudged(before)) {
		TH_LOG("the memory given back not judged: %s", rss_unjudged(before));
		return;
	}
	ASSERT_TRUE(loaded - before >= 4096);
	/* the page table (1 MiB) and the two chunks kept are all that may stay */
	ASSERT_TRUE(freed - before < 1024 + 2 * 2048 + 512);
	ASSERT_TRUE(after - before < 1024);
}

/*
 * A destroyed page's slot is handed out again, cleared: 32,768 pages filled with 0xff, every other
 * one of those in the slab (the 4,098th on) freed, and as many made again. The new pages read as
 * zero, the old ones keep their bytes, and the memory does not grow by the new pages' 4 MiB.
 */
TEST(freed_slots_are_reused_and_cleared)
{
	/* a table of 16,384 slots or more takes its pages from the slab: from the 4,098th on */
	const uint64_t n = 32768, slab_from = 4098;
	struct mmsb_state *s = mmsb_state_open(NULL);
	uint8_t ff[64], got[64], zero[64] = { 0 };
	uint64_t id, freed = 0;
	long before, after;

	ASSERT_TRUE(s);
	memset(ff, 0xff, sizeof(ff));
	for (uint64_t i = 1; i <= n; i++) {
		ASSERT_EQ(mmsb_page_create_id(s, i, sizeof(ff), MMSB_LOC_CPU), 0);
		ASSERT_EQ(mmsb_page_update(s, i, ff, sizeof(ff)), 1);
	}
	for (uint64_t i = slab_from; i <= n; i += 2, freed++)
		ASSERT_EQ(mmsb_page_free(s, i), 0);
	malloc_trim(0);
	before = rss_anon_kib();
	for (uint64_t i = 0; i < freed; i++) {
		ASSERT_EQ(mmsb_page_create(s, sizeof(ff), MMSB_LOC_CPU, &id), 0);
		ASSERT_TRUE(id > n);
		ASSERT_EQ(mmsb_page_read(s, id, got, sizeof(got), 0), (ssize_t)sizeof(got));
		ASSERT_EQ(memcmp(got, zero, sizeof(got)), 0);
	}
	for (uint64_t i = 1; i <= n; i++) {
		if (i >= slab_from && (i - slab_from) % 2 == 0)
			continue;
		ASSERT_EQ(mmsb_page_read(s, i, got, sizeof(got), 0), (ssize_t)sizeof(got));
		ASSERT_EQ(memcmp(got, ff, sizeof(got)), 0);
	}
	malloc_trim(0);
	after = rss_anon_kib();
	mmsb_state_close(s);
	TH_LOG("RssAnon %ld KiB with %" PRIu64 " pages freed, %ld made again", before, freed,
	       after);
	if (rss_unjudged(before)) {
		TH_LOG("the memory reused not judged: %s", rss_unjudged(before));
		return;
	}
	ASSERT_TRUE(after - before < 256);
}

/*
 * A state keeps two empty chunks in all for its next pages, whatever sizes it freed: eight sizes,
 * each filling a chunk and starting a second (the first size's first 4,097 pages come from malloc,
 * before the slab), all freed, leave the table and two chunks resident where a chunk kept for each
 * size would hold 16 MiB.
 */
TEST(freed_sizes_keep_two_chunks_in_all)
{
	static const size_t size[] = { 64, 512, 1024, 1536, 2048, 2560, 3072, 4000 };
	struct mmsb_state *s = mmsb_state_open(NULL);
	uint64_t id = 1, n;
	long before, made, freed;

	ASSERT_TRUE(s);
	malloc_trim(0);
	before = rss_anon_kib();
	for (size_t k = 0; k < sizeof(size) / sizeof(size[0]); k++) {
		/* a 2 MiB chunk's worth of this size's slots (struct and bytes), and one more */
		n = (2u << 20) / (size[k] + 208) + 1 + (k ? 0 : 4097);
		for (uint64_t i = 0; i < n; i++, id++) {
			ASSERT_EQ(mmsb_page_create_id(s, id, size[k], MMSB_LOC_CPU), 0);
			ASSERT_EQ(mmsb_page_write(s, id, 0, &id, sizeof(id)), 1);
		}
	}
	made = rss_anon_kib();
	for (uint64_t i = 1; i < id; i++)
		ASSERT_EQ(mmsb_page_free(s, i), 0);
	malloc_trim(0);
	freed = rss_anon_kib();
	mmsb_state_close(s);
	TH_LOG("RssAnon %ld KiB before, %ld with %" PRIu64 " pages, %ld with them freed", before,
	       made, id - 1, freed);
	if (rss_unjudged(before)) {
		TH_LOG("the memory kept not judged: %s", rss_unjudged(before));
		return;
	}
	ASSERT_TRUE(made - before >= 16384);
	/* the table (512 KiB) and two chunks */
	ASSERT_TRUE(freed - before < 512 + 2 * 2048 + 1024);
}

/*
 * A state that shrinks gives memory back while it lives: 65,536 pages of 64 B, 63 of every 64
 * freed in a scattered order, leave at most half the memory they took resident (the system pages
 * under free slots only go back). The pages left keep their bytes, and pages made again in the
 * freed slots, some of them in memory given back, read as zero.
 */
TEST(a_shrunk_state_gives_memory_back)
{
	const uint64_t n = 65536;
	struct mmsb_state *s = mmsb_state_open(NULL);
	uint8_t b[64], got[64], zero[64] = { 0 };
	long before, made, shrunk;
	uint64_t id;

	ASSERT_TRUE(s);
	malloc_trim(0);
	before = rss_anon_kib();
	for (uint64_t i = 1; i <= n; i++) {
		page_bytes(b, i);
		ASSERT_EQ(mmsb_page_create_id(s, i, sizeof(b), MMSB_LOC_CPU), 0);
		ASSERT_EQ(mmsb_page_update(s, i, b, sizeof(b)), 1);
	}
	made = rss_anon_kib();
	/* 40,503 is odd: k * 40,503 mod n visits every id once, scattered */
	for (uint64_t k = 0; k < n; k++) {
		id = k * 40503 % n + 1;
		if (id % 64)
			ASSERT_EQ(mmsb_page_free(s, id), 0);
	}
	malloc_trim(0);
	shrunk = rss_anon_kib();
	for (uint64_t i = 0; i < n / 2; i++) {
		ASSERT_EQ(mmsb_page_create(s, sizeof(b), MMSB_LOC_CPU, &id), 0);
		ASSERT_EQ(mmsb_page_read(s, id, got, sizeof(got), 0), (ssize_t)sizeof(got));
		ASSERT_EQ(memcmp(got, zero, sizeof(got)), 0);
	}
	for (uint64_t i = 64; i <= n; i += 64) {
		page_bytes(b, i);
		ASSERT_EQ(mmsb_page_read(s, i, got, sizeof(got), 0), (ssize_t)sizeof(got));
		ASSERT_EQ(memcmp(got, b, sizeof(b)), 0);
	}
	mmsb_state_close(s);
	TH_LOG("RssAnon %ld KiB before, %ld with %" PRIu64 " pages, %ld with 1 in 64 left", before,
	       made, n, shrunk);
	if (rss_unjudged(before)) {
		TH_LOG("the memory given back not judged: %s", rss_unjudged(before));
		return;
	}
	ASSERT_TRUE(made - before >= 16384);
	ASSERT_TRUE(shrunk - before < (made - before) / 2);
}

/*
 * A load's cycle check marks the pages it walks, in the detached state it builds: the state
 * loaded into must then start its own walks past those marks. It did not, and a walk took the
 * page whose mark equalled its generation for one already visited: an edge closing a cycle was
 * accepted, and a routed batch logged a page at its old epoch.
 */
TEST(a_load_leaves_no_marks_ahead_of_the_state)
{
	const char *path = th_path("chain.ckpt"), *log = th_path("chain.tlog");
	MMSB_OPTS(mmsb_state_opts, create, .log_path = log, .log_mode = MMSB_LOG_CREATE);
	MMSB_OPTS(mmsb_state_opts, append, .log_path = log, .log_mode = MMSB_LOG_APPEND);
	const uint64_t n = 64;
	struct mmsb_delta *ds[64];
	struct mmsb_cycle_report rep;
	struct mmsb_state *s, *t, *r;
	uint8_t one = 1, v = 0;

	ASSERT_TRUE(s = mmsb_state_open(&create));
	for (uint64_t i = 1; i <= n; i++) {
		ASSERT_EQ(mmsb_page_create_id(s, i, 8, MMSB_LOC_CPU), 0);
		for (int k = 0; k < 5; k++) {
			v = (uint8_t)(k + 1);
			ASSERT_EQ(mmsb_page_update(s, i, (uint8_t[8]){ v }, 8), 1);
		}
	}
	for (uint64_t i = 1; i < n; i++)
		ASSERT_EQ(mmsb_edge_add(s, i, i + 1, MMSB_EDGE_CONTROL), 0);
	ASSERT_EQ(mmsb_checkpoint_write(s, path), 0);
	mmsb_state_close(s);

	/* every page of the chain is a step of the cycle the edge would close, whatever the order */
	ASSERT_TRUE(t = mmsb_state_open(NULL));
	ASSERT_EQ(mmsb_checkpoint_load(t, path), 0);
	ASSERT_EQ(mmsb_edge_add(t, n, 1, MMSB_EDGE_DATA), -MMSB_ERR_CYCLE);
	ASSERT_EQ(mmsb_graph_validate(t, &rep), 0);
	ASSERT_FALSE(rep.has_cycle);
	ASSERT_EQ(rep.visited, n);
	mmsb_state_close(t);

	/* a batch after the load reaches every page, and the log says what the state holds */
	ASSERT_TRUE(s = mmsb_state_open(&append));
	ASSERT_EQ(mmsb_checkpoint_load(s, path), 0);
	v = 99;
	for (uint64_t i = 1; i <= n; i++)
		ASSERT_TRUE(ds[i - 1] = mmsb_delta_new(i, &one, 1, &v, 1, 0));
	ASSERT_EQ(mmsb_route_batch(s, ds, n), 0);
	ASSERT_EQ(mmsb_state_flush(s), 0);
	ASSERT_TRUE(r = mmsb_replay(log, NULL));
	for (uint64_t i = 1; i <= n; i++) {
		ASSERT_EQ(mmsb_page_epoch(s, i), 6);
		ASSERT_EQ(mmsb_page_epoch(r, i), 6);
		mmsb_delta_free(ds[i - 1]);
	}
	mmsb_state_close(r);
	mmsb_state_close(s);
}

TEST(write_is_atomic)
{
	const char *path = th_path("c.ckpt");
	struct mmsb_state *s = build();
	struct stat st;

	ASSERT_EQ(mmsb_checkpoint_write(s, path), 0);
	/* no temporary left behind, and a failed write leaves the old file in place */
	ASSERT_EQ(mmsb_checkpoint_write(s, "/nonexistent-dir/x.ckpt"), -ENOENT);
	ASSERT_EQ(stat(path, &st), 0);
	ASSERT_EQ(mmsb_checkpoint_verify(path, NULL), 0);
	ASSERT_EQ(mmsb_checkpoint_verify(th_path("missing.ckpt"), NULL), -ENOENT);
	mmsb_state_close(s);
}

TEST(recompute_bindings_survive_load)
{
	const char *path = th_path("r.ckpt");
	struct mmsb_state *s = mmsb_state_open(NULL);
	uint8_t b[4] = { 1, 2, 3, 4 }, out[4];

	ASSERT_EQ(mmsb_page_create_id(s, 1, 4, MMSB_LOC_CPU), 0);
	ASSERT_EQ(mmsb_page_create_id(s, 2, 4, MMSB_LOC_CPU), 0);
	ASSERT_EQ(mmsb_edge_add(s, 1, 2, MMSB_EDGE_DATA), 0);
	ASSERT_EQ(mmsb_checkpoint_write(s, path), 0);
	ASSERT_EQ(mmsb_page_set_passthrough(s, 2, 1, NULL, NULL), 0);
	ASSERT_EQ(mmsb_checkpoint_load(s, path), 0);
	ASSERT_EQ(mmsb_page_update(s, 1, b, 4), 1);
	ASSERT_EQ(mmsb_page_read(s, 2, out, 4, 0), 4);
	ASSERT_MEM_EQ(out, b, 4);
	mmsb_state_close(s);
}

/* A pid that no longer runs: a child that has exited and been reaped. */
static pid_t dead_pid(void)
{
	pid_t pid = fork();

	ASSERT_GE(pid, 0);
	if (!pid)
		_exit(0);
	ASSERT_EQ(waitpid(pid, NULL, 0), pid);
	return pid;
}

static bool exists_nofollow(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

TEST(temp_files_never_follow_links_and_stale_ones_go)
{
	const char *path = th_path("t.ckpt"), *victim = th_path("victim");
	char old_name[4096], stale[4096], stale_link[4096], foreign[4096];
	struct mmsb_state *s = build();
	struct stat st;
	size_t n;
	uint8_t *v;
	pid_t dead = dead_pid();

	ASSERT_EQ(fx_write(victim, "precious", 8), 0);
	/* the name the writer used to pick, planted as a symlink to somebody's file */
	snprintf(old_name, sizeof(old_name), "%s.tmp.%d", path, (int)getpid());
	ASSERT_EQ(symlink(victim, old_name), 0);
	/* a killed writer's full-size leftover, and a link with a leftover's name */
	snprintf(stale, sizeof(stale), "%s.tmp.%d.00000000deadbeef", path, (int)dead);
	ASSERT_EQ(fx_write(stale, "leftover", 8), 0);
	snprintf(stale_link, sizeof(stale_link), "%s.tmp.%d", path, (int)dead);
	ASSERT_EQ(symlink(victim, stale_link), 0);
	/* a leftover of a writer that still runs (our parent) is its business */
	snprintf(foreign, sizeof(foreign), "%s.tmp.%d.0000000000000001", path, (int)getppid());
	ASSERT_EQ(fx_write(foreign, "running", 7), 0);

	ASSERT_EQ(mmsb_checkpoint_write(s, path), 0);
	ASSERT_EQ(mmsb_checkpoint_verify(path, NULL), 0);
	ASSERT_TRUE(v = fx_read(victim, &n));
	ASSERT_EQ(n, 8);
	ASSERT_MEM_EQ(v, "precious", 8);
	free(v);
	ASSERT_TRUE(exists_nofollow(old_name)); /* untouched, not written through */
	ASSERT_FALSE(exists_nofollow(stale));
	ASSERT_TRUE(exists_nofollow(stale_link)); /* only regular files are cleaned */
	ASSERT_TRUE(exists_nofollow(foreign));

	/* a symlink at the destination is replaced by the file, its target untouched */
	ASSERT_EQ(unlink(path), 0);
	ASSERT_EQ(symlink(victim, path), 0);
	ASSERT_EQ(mmsb_checkpoint_write(s, path), 0);
	ASSERT_EQ(lstat(path, &st), 0);
	ASSERT_TRUE(S_ISREG(st.st_mode));
	ASSERT_TRUE(v = fx_read(victim, &n));
	ASSERT_MEM_EQ(v, "precious", 8);
	free(v);
	mmsb_state_close(s);
}

/*
 * Cleaning is for exactly the names the library writes, and only when their writer is gone: a
 * user's files with close names stay, and so does a leftover whose lock is held (a writer in
 * another PID namespace on a shared volume, its PID meaningless here).
 */
TEST(stale_cleaning_takes_only_dead_writers_files)
{
	const char *path = th_path("r.ckpt");
	char close1[4096], close2[4096], close3[4096], locked[4096];
	struct mmsb_state *s = build();
	pid_t dead = dead_pid();
	int fd;

	snprintf(close1, sizeof(close1), "%s.tmp.%d", path, (int)dead);
	snprintf(close2, sizeof(close2), "%s.tmp.%d.final", path, (int)dead);
	snprintf(close3, sizeof(close3), "%s.tmp.%d.00000000deadbeef0", path, (int)dead);
	snprintf(locked, sizeof(locked), "%s.tmp.%d.00000000feedface", path, (int)dead);
	ASSERT_EQ(fx_write(close1, "mine", 4), 0);
	ASSERT_EQ(fx_write(close2, "mine", 4), 0);
	ASSERT_EQ(fx_write(close3, "mine", 4), 0);
	ASSERT_EQ(fx_write(locked, "alive", 5), 0);
	ASSERT_TRUE((fd = open(locked, O_RDONLY)) >= 0);
	ASSERT_EQ(flock(fd, LOCK_EX), 0);

	ASSERT_EQ(mmsb_checkpoint_write(s, path), 0);
	ASSERT_TRUE(exists_nofollow(close1));
	ASSERT_TRUE(exists_nofollow(close2));
	ASSERT_TRUE(exists_nofollow(close3));
	ASSERT_TRUE(exists_nofollow(locked));
	close(fd);
	/* its lock gone, it is a dead writer's leftover: the next write takes it */
	ASSERT_EQ(mmsb_checkpoint_write(s, path), 0);
	ASSERT_FALSE(exists_nofollow(locked));
	mmsb_state_close(s);
}

/* A device, a FIFO or a directory at the destination is refused, never replaced by a file. */
TEST(special_files_are_never_replaced)
{
	const char *fifo = th_path("f.ckpt"), *dir = th_path("d.ckpt");
	struct mmsb_state *s = build();
	struct stat st;

	ASSERT_EQ(mkfifo(fifo, 0600), 0);
	ASSERT_EQ(mkdir(dir, 0700), 0);
	ASSERT_EQ(mmsb_checkpoint_write(s, fifo), -EINVAL);
	ASSERT_EQ(mmsb_checkpoint_write(s, dir), -EISDIR);
	ASSERT_EQ(lstat(fifo, &st), 0);
	ASSERT_TRUE(S_ISFIFO(st.st_mode));
	ASSERT_EQ(lstat(dir, &st), 0);
	ASSERT_TRUE(S_ISDIR(st.st_mode));
	if (!geteuid() && !lstat("/dev/null", &st) && S_ISCHR(st.st_mode)) {
		ASSERT_EQ(mmsb_checkpoint_write(s, "/dev/null"), -EINVAL);
		ASSERT_EQ(lstat("/dev/null", &st), 0);
		ASSERT_TRUE(S_ISCHR(st.st_mode));
	}
	mmsb_state_close(s);
}
