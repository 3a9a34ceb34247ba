// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A workload with known ground truth for tests/test_trace.sh:
 *
 *   trace_workload spin N US   N updates of a page whose child recomputes by spinning US
 *                              microseconds of CPU; prints the library's own counters
 *   trace_workload sleep N US  the same, the child sleeping US microseconds (off a CPU)
 *   trace_workload threads T N US   T threads, each doing `spin N US` on a state of its own
 *   trace_workload loop        keep updating pages until SIGUSR1, then print the rounds done and
 *                              a checksum of every page
 *   trace_workload rounds N    the same for exactly N rounds: what a traced `loop` of N rounds
 *                              must have printed
 *   trace_workload fault N P   N updates whose child's recompute maps P fresh pages and writes
 *                              one byte in each: N * P page faults inside recompute spans
 *   trace_workload updates N   N updates of a 1 KiB page alternating two buffers, no log: the C
 *                              twin of tests/helpers/ffi_workload.py; prints ns_per_update
 *   trace_workload hold FIFO   one update whose child's recompute blocks until a byte can be
 *                              read from FIFO: an api, update, propagate and recompute span held
 *                              open for as long as the test wants
 *
 * With MMSB_WORKLOAD_HOLD=FIFO it first reads a byte from FIFO (see probe_workload.c); with
 * MMSB_WORKLOAD_HOLD_END=FIFO, spin and sleep read one after their work, before they exit.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <fcntl.h>
#include <inttypes.h>
#include <mmsb/mmsb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A recompute of known cost: spin or sleep ns, timed by the callback itself. */
struct known_cost {
	uint64_t ns;
	bool sleep;
	uint64_t callback_ns; /* the callbacks' own clock: a second measurement */
};

/* Copy the parent, after spinning (or sleeping) the configured time. */
static int spinning_copy(struct mmsb_state *s, uint64_t id, uint8_t *out, size_t size, void *ctx)
{
	struct known_cost *kc = ctx;
	uint64_t start = now_ns(), until = start + kc->ns;
	struct timespec ts = { (time_t)(kc->ns / 1000000000ull), (long)(kc->ns % 1000000000ull) };
	int err;

	if (kc->sleep)
		nanosleep(&ts, NULL);
	while (now_ns() < until)
		;
	err = mmsb_page_read(s, id - 1, out, size, 0) < 0 ? -EIO : 0;
	kc->callback_ns += now_ns() - start;
	return err;
}

/* Touch a known number of never-used pages: one minor fault each, and nothing else here. */
static int faulting_copy(struct mmsb_state *s, uint64_t id, uint8_t *out, size_t size, void *ctx)
{
	long pages = *(long *)ctx, psz = sysconf(_SC_PAGESIZE);
	volatile uint8_t *m = mmap(NULL, (size_t)(pages * psz), PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED)
		return -errno;
	/* 4 KiB pages, not one huge page: the count is the point */
	madvise((void *)m, (size_t)(pages * psz), MADV_NOHUGEPAGE);
	for (long i = 0; i < pages; i++)
		m[i * psz] = 1;
	munmap((void *)m, (size_t)(pages * psz));
	return mmsb_page_read(s, id - 1, out, size, 0) < 0 ? -EIO : 0;
}

static int fault(long n, long pages)
{
	struct mmsb_state *s = mmsb_state_open(NULL);
	uint8_t buf[256];
	uint64_t a, b;

	if (!s || mmsb_page_create(s, sizeof(buf), MMSB_LOC_CPU, &a) ||
	    mmsb_page_create(s, sizeof(buf), MMSB_LOC_CPU, &b) ||
	    mmsb_edge_add(s, a, b, MMSB_EDGE_DATA) ||
	    mmsb_page_set_recompute(s, b, faulting_copy, &pages))
		return 1;
	for (long i = 1; i <= n; i++) {
		memset(buf, (int)i, sizeof(buf));
		if (mmsb_page_update(s, a, buf, sizeof(buf)) != 1)
			return 1;
	}
	printf("updates %ld pages_touched %ld\n", n, n * pages);
	mmsb_state_close(s);
	return 0;
}

static void hold(void)
{
	const char *f = getenv("MMSB_WORKLOAD_HOLD");
	char c;
	int fd;

	if (!f)
		return;
	fd = open(f, O_RDONLY);
	if (fd < 0 || read(fd, &c, 1) < 0)
		exit(1);
	close(fd);
}

/* Block in the recompute until the FIFO named by ctx gives a byte. */
static int blocking_copy(struct mmsb_state *s, uint64_t id, uint8_t *out, size_t size, void *ctx)
{
	int fd = open((const char *)ctx, O_RDONLY);
	char c;

	if (fd < 0 || read(fd, &c, 1) < 0)
		return -EIO;
	close(fd);
	return mmsb_page_read(s, id - 1, out, size, 0) < 0 ? -EIO : 0;
}

static int hold_open(const char *fifo)
{
	struct mmsb_state *s = mmsb_state_open(NULL);
	uint8_t buf[64] = { 1 };
	uint64_t a, b;

	if (!s || mmsb_page_create(s, sizeof(buf), MMSB_LOC_CPU, &a) ||
	    mmsb_page_create(s, sizeof(buf), MMSB_LOC_CPU, &b) ||
	    mmsb_edge_add(s, a, b, MMSB_EDGE_DATA) ||
	    mmsb_page_set_recompute(s, b, blocking_copy, (void *)fifo))
		return 1;
	if (mmsb_page_update(s, a, buf, sizeof(buf)) != 1)
		return 1;
	printf("held\n");
	mmsb_state_close(s);
	return 0;
}

static int spin(long n, long us, bool sleep)
{
	struct mmsb_state *s = mmsb_state_open(NULL);
	struct known_cost kc = { .ns = (uint64_t)us * 1000, .sleep = sleep };
	uint8_t buf[256];
	struct mmsb_stats st;
	uint64_t a, b;

	if (!s || mmsb_page_create(s, sizeof(buf), MMSB_LOC_CPU, &a) ||
	    mmsb_page_create(s, sizeof(buf), MMSB_LOC_CPU, &b) ||
	    mmsb_edge_add(s, a, b, MMSB_EDGE_DATA) ||
	    mmsb_page_set_recompute(s, b, spinning_copy, &kc))
		return 1;
	for (long i = 1; i <= n; i++) {
		memset(buf, (int)i, sizeof(buf));
		if (mmsb_page_update(s, a, buf, sizeof(buf)) != 1)
			return 1;
	}
	mmsb_state_stats(s, &st);
	/* the library's own measurements, the second opinion on the trace */
	printf("updates %ld recomputes %" PRIu64 " wave_ns %" PRIu64 " waves %" PRIu64
	       " callback_ns %" PRIu64 "\n",
	       n, st.recomputes, st.wave_ns, st.waves, kc.callback_ns);
	fflush(stdout);
	/* MMSB_WORKLOAD_HOLD_END=FIFO: alive, its work done, until a byte can be read */
	if (getenv("MMSB_WORKLOAD_HOLD_END")) {
		int fd = open(getenv("MMSB_WORKLOAD_HOLD_END"), O_RDONLY);
		char c;

		if (fd < 0 || read(fd, &c, 1) < 0)
			return 1;
		close(fd);
	}
	mmsb_state_close(s);
	return 0;
}

static long spin_n, spin_us;

static void *spin_thread(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)spin(spin_n, spin_us, false);
}

/* T threads at once, each its own state: one line each, as spin prints. */
static int threads(long t, long n, long us)
{
	pthread_t th[64];
	int err = 0;

	spin_n = n;
	spin_us = us;
	for (long i = 0; i < t; i++)
		if (pthread_create(&th[i], NULL, spin_thread, NULL))
			return 1;
	for (long i = 0; i < t; i++) {
		void *ret;

		pthread_join(th[i], &ret);
		err |= (int)(intptr_t)ret;
	}
	return err;
}

static volatile sig_atomic_t stop;

static void on_usr1(int sig)
{
	(void)sig;
	stop = 1;
}

/* Update a chain's head round after round (until SIGUSR1, or n rounds); print a checksum. */
static int loop(long n)
{
	struct mmsb_state *s = mmsb_state_open(NULL);
	uint64_t sum = 0xcbf29ce484222325ull, ids[8];
	uint8_t buf[512];
	long rounds = 0;
	uint64_t t0;

	if (!s)
		return 1;
	for (int i = 0; i < 8; i++)
		if (mmsb_page_create(s, sizeof(buf), MMSB_LOC_CPU, &ids[i]))
			return 1;
	for (int i = 1; i < 8; i++)
		if (mmsb_edge_add(s, ids[i - 1], ids[i], MMSB_EDGE_DATA) ||
		    mmsb_page_set_passthrough(s, ids[i], ids[i - 1], NULL, NULL))
			return 1;
	t0 = now_ns();
	while (n ? rounds < n : !stop) {
		for (size_t k = 0; k < sizeof(buf); k++)
			buf[k] = (uint8_t)(rounds * 131 + (long)k);
		if (mmsb_page_update(s, ids[0], buf, sizeof(buf)) < 0)
			return 1;
		rounds++;
	}
	t0 = now_ns() - t0;
	/* FNV-1a over every page: the propagated state, not just the head */
	for (int i = 0; i < 8; i++) {
		mmsb_page_read(s, ids[i], buf, sizeof(buf), 0);
		for (size_t k = 0; k < sizeof(buf); k++)
			sum = (sum ^ buf[k]) * 0x100000001b3ull;
	}
	printf("rounds %ld checksum %016" PRIx64 " ns %" PRIu64 "\n", rounds, sum, t0);
	mmsb_state_close(s);
	return 0;
}

/* What ffi_workload.py does through the Python binding, called from C. */
static int updates(long n)
{
	static uint8_t bufs[2][1024];
	struct mmsb_state *s = mmsb_state_open(NULL);
	uint64_t page, t0;

	if (!s || mmsb_page_create(s, sizeof(bufs[0]), MMSB_LOC_CPU, &page))
		return 1;
	memset(bufs[1], 1, sizeof(bufs[1]));
	t0 = now_ns();
	for (long i = 0; i < n; i++)
		if (mmsb_page_update(s, page, bufs[i & 1], sizeof(bufs[0])) < 0)
			return 1;
	printf("updates %ld ns_per_update %.0f\n", n, (double)(now_ns() - t0) / (double)n);
	mmsb_state_close(s);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "spin")) {
		hold();
		return spin(atol(argv[2]), atol(argv[3]), false);
	}
	if (argc == 4 && !strcmp(argv[1], "sleep"))
		return spin(atol(argv[2]), atol(argv[3]), true);
	if (argc == 5 && !strcmp(argv[1], "threads") && atol(argv[2]) > 0 && atol(argv[2]) <= 64)
		return threads(atol(argv[2]), atol(argv[3]), atol(argv[4]));
	if (argc == 2 && !strcmp(argv[1], "loop")) {
		signal(SIGUSR1, on_usr1);
		hold();
		return loop(0);
	}
	if (argc == 3 && !strcmp(argv[1], "rounds") && atol(argv[2]) > 0)
		return loop(atol(argv[2]));
	if (argc == 4 && !strcmp(argv[1], "fault") && atol(argv[2]) > 0 && atol(argv[3]) > 0)
		return fault(atol(argv[2]), atol(argv[3]));
	if (argc == 3 && !strcmp(argv[1], "updates") && atol(argv[2]) > 0)
		return updates(atol(argv[2]));
	if (argc == 3 && !strcmp(argv[1], "hold")) {
		hold();
		return hold_open(argv[2]);
	}
	fprintf(stderr,
		"usage: trace_workload spin N US | sleep N US | threads T N US | loop | rounds N |\n"
		"       fault N PAGES | updates N | hold FIFO\n");
	return 2;
}
