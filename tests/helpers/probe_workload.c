// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A workload whose probe counts are known exactly, for tests/test_usdt.c and
 * tests/test_probes.sh (bpftrace). It counts its own calls into the public API (every one goes
 * through CALL) and prints the count, so the api__entry/api__exit totals are checked against an
 * independent figure. The expected count of every other probe is derived in tests/test_usdt.c.
 *
 *   probe_workload DIR     writes DIR/w.tlog and DIR/w.ckpt
 *
 * With MMSB_WORKLOAD_HOLD=FIFO it first reads a byte from FIFO: a test can inspect the running
 * process (libmmsb mapped, nothing done yet) and then let it go.
 */
#include <errno.h>
#include <fcntl.h>
#include <mmsb/mmsb.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned long calls;

/* every call into libmmsb goes through here, so the program knows how many it made */
#define CALL(expr) (calls++, (expr))

#define CHECK(expr)                                                                                \
	do {                                                                                       \
		long __r = (long)(expr);                                                           \
		if (__r < 0) {                                                                     \
			fprintf(stderr, "probe_workload: %s: %ld\n", #expr, __r);                  \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

int main(int argc, char **argv)
{
	char log[4096], ckpt[4096];
	uint8_t buf[1024], mask[1024];
	struct mmsb_delta *d[100];
	uint64_t id;

	if (argc != 2) {
		fprintf(stderr, "usage: probe_workload DIR\n");
		return 2;
	}
	if (getenv("MMSB_WORKLOAD_HOLD")) {
		int fd = open(getenv("MMSB_WORKLOAD_HOLD"), O_RDONLY);
		char c;

		if (fd < 0 || read(fd, &c, 1) < 0)
			return 1;
		close(fd);
	}
	snprintf(log, sizeof(log), "%s/w.tlog", argv[1]);
	snprintf(ckpt, sizeof(ckpt), "%s/w.ckpt", argv[1]);

	/* one logged state, batch durability: every mutating call is one write + one sync */
	MMSB_OPTS(mmsb_state_opts, o, .log_path = log, .log_mode = MMSB_LOG_TRUNCATE,
		  .durability = MMSB_DURABLE_BATCH);
	struct mmsb_state *s = CALL(mmsb_state_open(&o));

	if (!s)
		return 1;
	/* 5 pages of 1 KiB; pages 1 -> 2 -> 3 a passthrough chain */
	for (int i = 0; i < 5; i++)
		CHECK(CALL(mmsb_page_create(s, 1024, MMSB_LOC_CPU, &id)));
	CHECK(CALL(mmsb_edge_add(s, 1, 2, MMSB_EDGE_DATA)));
	CHECK(CALL(mmsb_edge_add(s, 2, 3, MMSB_EDGE_DATA)));
	CHECK(CALL(mmsb_page_set_passthrough(s, 2, 1, NULL, NULL)));
	CHECK(CALL(mmsb_page_set_passthrough(s, 3, 2, NULL, NULL)));
	/* 7 updates of page 1, each changing every byte: each a wave recomputing 2 and 3 */
	for (int u = 1; u <= 7; u++) {
		memset(buf, u, sizeof(buf));
		CHECK(CALL(mmsb_page_update(s, 1, buf, sizeof(buf))));
	}
	/* one routed batch of 4 deltas over pages 4 and 5 */
	memset(mask, 1, 16);
	for (int i = 0; i < 4; i++) {
		memset(buf, 100 + i, 16);
		d[i] = CALL(mmsb_delta_new(4 + (uint64_t)(i % 2), mask, 16, buf, 16, 0));
		if (!d[i])
			return 1;
	}
	CHECK(CALL(mmsb_route_batch(s, d, 4)));
	for (int i = 0; i < 4; i++)
		CALL(mmsb_delta_free(d[i]));
	CHECK(CALL(mmsb_page_free(s, 5)));
	CHECK(CALL(mmsb_checkpoint_write(s, ckpt)));

	/* a second state loads the checkpoint; a third is replayed from the log */
	struct mmsb_state *t = CALL(mmsb_state_open(NULL));

	if (!t)
		return 1;
	CHECK(CALL(mmsb_checkpoint_load(t, ckpt)));
	struct mmsb_state *r = CALL(mmsb_replay(log, NULL));

	if (!r)
		return 1;

	/* the engine: one batch of 100 deltas on page 4, then a tick of 10 */
	struct mmsb_engine *e = CALL(mmsb_engine_new(s, NULL));

	if (!e)
		return 1;
	for (int i = 0; i < 100; i++) {
		memset(buf, i, 16);
		d[i] = CALL(mmsb_delta_new(4, mask, 16, buf, 16, 0));
	}
	CHECK(CALL(mmsb_engine_apply(e, d, 100, NULL)));
	CHECK(CALL(mmsb_tick(e, d, 10, NULL)));
	for (int i = 0; i < 100; i++)
		CALL(mmsb_delta_free(d[i]));
	CALL(mmsb_engine_free(e));

	CALL(mmsb_state_close(r));
	CALL(mmsb_state_close(t));
	CALL(mmsb_state_close(s));
	printf("api_calls %lu\n", calls);
	return 0;
}
