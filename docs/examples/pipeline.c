// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * pipeline: the original benchmark's full pipeline as a program. 24 pages of 1 KiB in a
 * passthrough chain, 5 random updates of the head (each one wave down the chain), a checkpoint,
 * and a replay of the log checked byte for byte against the live state.
 *
 *   cc pipeline.c $(pkg-config --cflags --libs libmmsb) -o pipeline && ./pipeline /tmp
 */
#include <errno.h>
#include <inttypes.h>
#include <mmsb/mmsb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAGES 24
#define PAGE_SIZE 1024
#define UPDATES 5

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int fail(const char *what, int err)
{
	fprintf(stderr, "pipeline: %s: %s\n", what, mmsb_strerror(err));
	return 1;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : ".";
	char log_path[4096], ckpt_path[4096];
	uint64_t ids[PAGES];
	uint8_t buf[PAGE_SIZE];
	struct mmsb_stats st;
	struct mmsb_divergence d;
	struct mmsb_checkpoint_info info;
	int err;

	snprintf(log_path, sizeof(log_path), "%s/pipeline.tlog", dir);
	snprintf(ckpt_path, sizeof(ckpt_path), "%s/pipeline.ckpt", dir);

	MMSB_OPTS(mmsb_state_opts, opts, .log_path = log_path, .log_mode = MMSB_LOG_TRUNCATE,
		  .durability = MMSB_DURABLE_BATCH);
	struct mmsb_state *s = mmsb_state_open(&opts);

	if (!s)
		return fail(log_path, -errno);
	printf("pipeline: %d pages x %d B in a passthrough chain, log %s (batch durability)\n",
	       PAGES, PAGE_SIZE, log_path);
	for (int i = 0; i < PAGES; i++) {
		err = mmsb_page_create(s, PAGE_SIZE, MMSB_LOC_CPU, &ids[i]);
		if (!err && i) {
			err = mmsb_edge_add(s, ids[i - 1], ids[i], MMSB_EDGE_DATA);
			if (!err)
				err = mmsb_page_set_passthrough(s, ids[i], ids[i - 1], NULL, NULL);
		}
		if (err)
			return fail("building the chain", err);
	}

	srand(42);
	for (int u = 1; u <= UPDATES; u++) {
		uint64_t t0;

		for (int k = 0; k < PAGE_SIZE; k++)
			buf[k] = (uint8_t)rand();
		mmsb_state_stats_reset(s);
		t0 = now_ns();
		err = mmsb_page_update(s, ids[0], buf, PAGE_SIZE);
		if (err < 0)
			return fail("update", err);
		mmsb_state_stats(s, &st);
		printf("update %d: %" PRIu64 " deltas applied (%" PRIu64 " bytes), %" PRIu64
		       " recomputes, %" PRIu64 " log write + %" PRIu64 " sync, %.1f us\n",
		       u, st.deltas_applied, st.delta_bytes, st.recomputes, st.log_writes,
		       st.log_syncs, (double)(now_ns() - t0) / 1e3);
	}
	uint8_t tail[PAGE_SIZE];

	mmsb_page_read(s, ids[PAGES - 1], tail, PAGE_SIZE, 0);
	printf("tail page %" PRIu64 ": epoch %" PRId64 ", %s the head\n", ids[PAGES - 1],
	       mmsb_page_epoch(s, ids[PAGES - 1]),
	       memcmp(tail, buf, PAGE_SIZE) ? "DIFFERS from" : "equals");

	err = mmsb_checkpoint_write(s, ckpt_path);
	if (!err)
		err = mmsb_checkpoint_verify(ckpt_path, &info);
	if (err)
		return fail(ckpt_path, err);
	printf("checkpoint %s: %" PRIu64 " pages, %" PRIu64 " edges, %" PRIu64
	       " bytes, up to lsn %" PRIu64 "\n",
	       ckpt_path, info.pages, info.edges, info.file_size, info.log_lsn);

	err = mmsb_state_verify(s, &d);
	if (err < 0)
		return fail("replay", err);
	printf("replay of the log: %s (%" PRIu64 " pages compared, %" PRIu64 " differ, L2 %.1f)\n",
	       err ? "DIVERGES" : "matches the live state", d.pages_compared, d.pages_differing,
	       d.l2);
	mmsb_state_close(s);
	return err ? 1 : 0;
}
