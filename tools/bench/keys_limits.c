// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * mmsb-bench's limit keys: each sets one of the library's costs beside what this machine can do at
 * all, both measured in the same process and interleaved round by round, so the ratio holds on a
 * quiet machine and a busy one alike (docs/benchmarks.md, "The core against this machine's
 * limits"). Each prints the median of the per-round ratios and their spread.
 */
#include <errno.h>
#include <fcntl.h>
#include <mmsb/mmsb.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "keys.h"
#include "suite.h"
#include "tool_helpers.h"

/* The median of v[0..n) (sorted in place); *lo and *hi the spread. */
double bench_median(double *v, int n, double *lo, double *hi)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	*lo = v[0];
	*hi = v[n - 1];
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int bench_rounds(void)
{
	return benv.quick ? 2 : 7;
}

/* ---- scaling: the engine with 2 workers against 1, beside two threads summing arrays ---- */

/* The machine's own 2-thread scaling: each thread sums a private 32 KiB array (L1-resident). */
#define PAR_WORDS 4096
#define PAR_PASSES 4000

struct par_arg {
	uint64_t v[PAR_WORDS];
	uint64_t sum;
} __attribute__((aligned(64)));

static void *par_run(void *arg)
{
	struct par_arg *a = arg;
	uint64_t s = 0;

	for (int r = 0; r < PAR_PASSES; r++)
		for (int i = 0; i < PAR_WORDS; i++)
			s += a->v[i] ^ (uint64_t)r;
	a->sum = s;
	return NULL;
}

/* Time for both arrays' work on one thread, and on two: their ratio. */
static int par_scaling(struct par_arg *a, double *ratio)
{
	uint64_t t0 = mono_ns(), one, two;
	pthread_t th;
	int err;

	par_run(&a[0]);
	par_run(&a[1]);
	one = mono_ns() - t0;
	t0 = mono_ns();
	err = pthread_create(&th, NULL, par_run, &a[1]);
	if (err)
		return -err;
	par_run(&a[0]);
	pthread_join(th, NULL);
	two = mono_ns() - t0;
	*ratio = (double)one / (double)(two ? two : 1);
	return 0;
}

/*
 * What one cache line costs to cross between two threads here: a counter bounced between them,
 * each waiting for the other's increment. What the engine's workers pay for each line they share.
 * Up to RTT_TRIPS round trips or RTT_NS, whichever comes first: a wait that spins long yields,
 * so on a machine whose second CPU is busy (or absent) the figure is slow, not endless.
 */
#define RTT_TRIPS 20000
#define RTT_NS 50000000ull
#define RTT_STOP UINT64_MAX

static _Atomic uint64_t rtt_ball __attribute__((aligned(64)));

/* The ball's value once it is want, or RTT_STOP. */
static uint64_t rtt_wait(_Atomic uint64_t *ball, uint64_t want)
{
	unsigned int i = 0;
	uint64_t v;

	while ((v = atomic_load_explicit(ball, memory_order_acquire)) != want && v != RTT_STOP)
		if (++i % 1024 == 0)
			sched_yield();
	return v;
}

static void *rtt_pong(void *arg)
{
	_Atomic uint64_t *ball = arg;

	for (uint64_t i = 0; rtt_wait(ball, 2 * i + 1) != RTT_STOP; i++)
		atomic_store_explicit(ball, 2 * i + 2, memory_order_release);
	return NULL;
}

static int line_rtt(_Atomic uint64_t *ball, double *ns)
{
	uint64_t t0, trips = 0;
	pthread_t th;
	int err;

	atomic_store(ball, 0);
	err = pthread_create(&th, NULL, rtt_pong, (void *)ball);
	if (err)
		return -err;
	t0 = mono_ns();
	while (trips < RTT_TRIPS && (trips % 256 || mono_ns() - t0 < RTT_NS)) {
		atomic_store_explicit(ball, 2 * trips + 1, memory_order_release);
		rtt_wait(ball, 2 * trips + 2);
		trips++;
	}
	*ns = (double)(mono_ns() - t0) / (double)trips;
	atomic_store_explicit(ball, RTT_STOP, memory_order_release);
	pthread_join(th, NULL);
	return 0;
}

/* One engine workload: a state, its pages and one batch of deltas. */
struct eng_load {
	struct mmsb_state *s;
	struct mmsb_delta **ds; /* batch entries; the first n_own are the deltas, then repeats */
	size_t batch, n_own;
};

static void eng_load_free(struct eng_load *l)
{
	for (size_t i = 0; l->ds && i < l->n_own; i++)
		mmsb_delta_free(l->ds[i]);
	free(l->ds);
	mmsb_state_close(l->s);
}

/*
 * pages pages of psz bytes, batch deltas of dsz bytes (a full mask), one per page in turn: the
 * first pages of them are distinct, the rest repeat them (a batch that rewrites each page).
 */
static int eng_load_init(struct eng_load *l, size_t pages, size_t psz, size_t batch, size_t dsz)
{
	uint8_t mask[1024], pay[1024]; /* the largest delta of eng_loads[] */
	int err = 0;

	memset(l, 0, sizeof(*l));
	memset(mask, 1, sizeof(mask));
	l->batch = batch;
	l->s = mmsb_state_open(NULL);
	l->ds = calloc(batch, sizeof(*l->ds));
	if (!l->s || !l->ds)
		return -ENOMEM;
	for (size_t i = 0; i < pages && !err; i++)
		err = mmsb_page_create(l->s, psz, MMSB_LOC_CPU, NULL);
	for (size_t i = 0; i < batch && !err; i++) {
		if (i >= pages) {
			l->ds[i] = l->ds[i % pages];
			continue;
		}
		memset(pay, (int)i, sizeof(pay));
		l->ds[i] = mmsb_delta_new(i + 1, mask, dsz, pay, dsz, 0);
		if (!l->ds[i])
			err = -errno;
		else
			l->n_own++;
	}
	return err;
}

/* Deltas a second through an engine of w workers, after warm-up batches it learns from. */
static int eng_rate(struct eng_load *l, unsigned int w, size_t total, double *rate)
{
	MMSB_OPTS(mmsb_engine_opts, eo, .workers = w);
	struct mmsb_engine *e = mmsb_engine_new(l->s, &eo);
	uint64_t t0;
	int err = 0;

	if (!e)
		return -errno;
	for (int i = 0; i < (benv.quick ? 16 : 256) && !err; i++)
		err = mmsb_engine_apply(e, l->ds, l->batch, NULL);
	t0 = mono_ns();
	for (size_t done = 0; done < total && !err; done += l->batch)
		err = mmsb_engine_apply(e, l->ds, l->batch, NULL);
	*rate = (double)total * 1e9 / (double)(mono_ns() - t0);
	mmsb_engine_free(e);
	return err;
}

/*
 * The engine's workloads: the original's no-op deltas (4,096 1 B pages), phase6's 128 B deltas on
 * 4 KiB pages, and 1 KiB deltas on 512 such pages, each page rewritten 8 times a batch (its delta
 * and page cache-resident: a batch with work in it, the kind sharing can pay for). Deltas a run:
 * the first two as many, the last an eighth.
 */
static const struct {
	const char *key, *key_min, *key_of; /* the result's names: kept, not copied */
	size_t pages, psz, dsz, div;
} eng_loads[] = {
	{ "engine_noop", "engine_noop_min", "noop_of_machine", 4096, 1, 0, 1 },
	{ "engine_128b", "engine_128b_min", "128b_of_machine", 4096, 4096, 128, 2 },
	{ "engine_1k", "engine_1k_min", "1k_of_machine", 512, 4096, 1024, 8 },
};

#define N_LOADS (sizeof(eng_loads) / sizeof(eng_loads[0]))

/*
 * Per round: the machine's 2-thread scaling, then for each workload 1 worker, 2 workers, 1 worker
 * again. The ratio is 2 workers over the mean of the two 1-worker runs around it, so a machine
 * that speeds up or slows down during the round does not pass for the engine; the second 1-worker
 * run over the first is the measure's own noise (the same code timed twice), printed beside.
 */
int limits_scaling_2w(struct bench_result *r)
{
	double machine[BENCH_MAX_ROUNDS], rtt[BENCH_MAX_ROUNDS], ratio[N_LOADS][BENCH_MAX_ROUNDS],
		noise[N_LOADS * BENCH_MAX_ROUNDS];
	double lo, hi, m, med[N_LOADS];
	size_t total = benv.quick ? 1u << 18 : 8u << 20;
	struct par_arg *par = aligned_alloc(64, 2 * sizeof(*par));
	struct eng_load ld[N_LOADS] = { 0 };
	int err = 0, nr = bench_rounds(), nn = 0;

	if (!par)
		return -ENOMEM;
	memset(par, 1, 2 * sizeof(*par));
	for (size_t j = 0; j < N_LOADS && !err; j++)
		err = eng_load_init(&ld[j], eng_loads[j].pages, eng_loads[j].psz, 4096,
				    eng_loads[j].dsz);
	for (int i = 0; i < nr && !err; i++) {
		err = par_scaling(par, &machine[i]);
		if (!err)
			err = line_rtt(&rtt_ball, &rtt[i]);
		for (size_t j = 0; j < N_LOADS && !err; j++) {
			size_t n = total / eng_loads[j].div;
			double a1, b, a2;

			err = eng_rate(&ld[j], 1, n, &a1);
			if (!err)
				err = eng_rate(&ld[j], 2, n, &b);
			if (!err)
				err = eng_rate(&ld[j], 1, n, &a2);
			ratio[j][i] = 2 * b / (a1 + a2);
			noise[nn++] = a2 / a1;
		}
	}
	if (!err) {
		m = bench_median(machine, nr, &lo, &hi);
		bench_value(r, "machine_2t", m);
		bench_value(r, "line_rtt_ns", bench_median(rtt, nr, &lo, &hi));
		for (size_t j = 0; j < N_LOADS; j++) {
			med[j] = bench_median(ratio[j], nr, &lo, &hi);
			bench_value(r, eng_loads[j].key, med[j]);
			bench_value(r, eng_loads[j].key_min, lo);
			bench_value(r, eng_loads[j].key_of, med[j] / m);
		}
		bench_median(noise, nn, &lo, &hi);
		bench_value(r, "noise_1w_min", lo);
		bench_value(r, "noise_1w_max", hi);
		bench_value(r, "rounds", nr);
		printf("METRIC:scaling_2w machine_2t=%.2f engine_noop=%.2f engine_128b=%.2f "
		       "engine_1k=%.2f\n",
		       m, med[0], med[1], med[2]);
	}
	for (size_t j = 0; j < N_LOADS; j++)
		eng_load_free(&ld[j]);
	free(par);
	return err;
}

/* ---- bandwidth: a dense page update against memcpy of the same bytes ---- */

/* A frame's bytes for a dense update of len bytes: header, packed mask, payload, "api". */
static size_t frame_bytes(size_t len)
{
	return 8 + 72 + (len + 7) / 8 + len + 3;
}

struct dense_rig {
	struct mmsb_state *plain, *logged;
	uint64_t plain_id, logged_id;
	uint8_t *buf[2], *dst, *frame;
	size_t len;
	unsigned int flip[4]; /* the next buffer of each op: every update changes the page */
	int fd;
	char log[512], raw[512];
};

static void dense_rig_free(struct dense_rig *g)
{
	mmsb_state_close(g->plain);
	mmsb_state_close(g->logged);
	free(g->buf[0]);
	free(g->buf[1]);
	free(g->dst);
	free(g->frame);
	if (g->fd >= 0)
		close(g->fd);
	unlink(g->log);
	unlink(g->raw);
}

static int dense_rig_init(struct dense_rig *g, size_t len)
{
	struct bench_ctx c = { 0 };
	int err = 0;

	memset(g, 0, sizeof(*g));
	g->fd = -1;
	g->len = len;
	snprintf(g->raw, sizeof(g->raw), "%s/dense-raw.bin", benv.dir);
	g->plain = mmsb_state_open(NULL);
	g->logged = open_logged(&c, "dense.tlog", MMSB_DURABLE_NONE);
	snprintf(g->log, sizeof(g->log), "%s", c.path);
	g->buf[0] = malloc(len);
	g->buf[1] = malloc(len);
	g->dst = malloc(len);
	g->frame = malloc(frame_bytes(len));
	if (!g->plain || !g->logged || !g->buf[0] || !g->buf[1] || !g->dst || !g->frame)
		return -ENOMEM;
	g->fd = open(g->raw, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (g->fd < 0)
		return -errno;
	seed();
	/* eight random bytes a draw: 128 MiB of them a byte at a time took seconds */
	for (size_t i = 0; i + 8 <= len; i += 8) {
		uint64_t a = rnd(), b = rnd();

		memcpy(g->buf[0] + i, &a, 8);
		memcpy(g->buf[1] + i, &b, 8);
	}
	fill_random(g->buf[0] + (len & ~(size_t)7), len & 7);
	fill_random(g->buf[1] + (len & ~(size_t)7), len & 7);
	memset(g->dst, 0, len);
	memset(g->frame, 0x5a, frame_bytes(len));
	err = mmsb_page_create(g->plain, len, MMSB_LOC_CPU, &g->plain_id);
	if (!err)
		err = mmsb_page_create(g->logged, len, MMSB_LOC_CPU, &g->logged_id);
	return err;
}

/* ns an operation, over reps of them: 0 memcpy, 1 update, 2 logged update, 3 raw append */
static int dense_op_ns(struct dense_rig *g, int op, int reps, double *ns)
{
	uint64_t t0 = mono_ns();
	int err = 0;

	for (int i = 0; i < reps && !err; i++) {
		const uint8_t *src = g->buf[g->flip[op]++ & 1];
		int r;

		switch (op) {
		case 0:
			memcpy(g->dst, src, g->len);
			/* the copy must happen: the compiler sees dst read afterwards */
			__asm__ volatile("" : : "r"(g->dst) : "memory");
			break;
		case 1:
		case 2:
			/* two buffers of random bytes alternate: every update changes most bytes */
			r = op == 1 ? mmsb_page_update(g->plain, g->plain_id, src, g->len) :
				      mmsb_page_update(g->logged, g->logged_id, src, g->len);
			err = r == 1 ? 0 : r < 0 ? r : -EPROTO;
			break;
		default:
			if (write(g->fd, g->frame, frame_bytes(g->len)) !=
			    (ssize_t)frame_bytes(g->len))
				err = -EIO;
			break;
		}
	}
	*ns = (double)(mono_ns() - t0) / reps;
	return err;
}

static int dense_limits(struct bench_result *r, size_t len, int reps)
{
	double plain[BENCH_MAX_ROUNDS], logged[BENCH_MAX_ROUNDS], raw[BENCH_MAX_ROUNDS],
		cp[BENCH_MAX_ROUNDS], lo, hi, v[4];
	struct dense_rig g;
	int nr = bench_rounds(), err = dense_rig_init(&g, len);

	if (benv.quick)
		reps = reps > 4 ? reps / 4 : 1;
	/* one of each first: the page, scratch and log buffer grown before anything is timed */
	for (int op = 0; op < 4 && !err; op++)
		err = dense_op_ns(&g, op, 2, &v[op]);
	for (int i = 0; i < nr && !err; i++) {
		/* memcpy, plain, logged, the raw append, interleaved: one round, one machine state */
		for (int op = 0; op < 4 && !err; op++)
			err = dense_op_ns(&g, op, reps, &v[op]);
		cp[i] = v[0];
		plain[i] = v[1] / v[0];
		logged[i] = v[2] / v[0];
		raw[i] = v[3] / v[0];
	}
	if (!err) {
		bench_value(r, "memcpy_ns", bench_median(cp, nr, &lo, &hi));
		bench_value(r, "unlogged_x", bench_median(plain, nr, &lo, &hi));
		bench_value(r, "unlogged_x_max", hi);
		bench_value(r, "logged_x", bench_median(logged, nr, &lo, &hi));
		bench_value(r, "logged_x_max", hi);
		/* what write() alone costs for the frame's bytes here: the logged figure's floor */
		bench_value(r, "raw_write_x", bench_median(raw, nr, &lo, &hi));
		bench_value(r, "rounds", nr);
	}
	dense_rig_free(&g);
	return err;
}

int limits_dense_64k(struct bench_result *r)
{
	return dense_limits(r, 64 << 10, 400);
}

int limits_dense_1m(struct bench_result *r)
{
	return dense_limits(r, 1 << 20, 24);
}

int limits_dense_64m(struct bench_result *r)
{
	if (benv.quick) {
		/* its half GiB of first-touch page faults take seconds on a busy VM */
		r->skipped = true;
		r->skip_reason = "not under --quick (64 MiB buffers)";
		return 0;
	}
	return dense_limits(r, 64 << 20, 2);
}

/* ---- growth: per-page costs from 1k to 1M pages ---- */

/*
 * n logged pages of 64 B, half of them children: create, checkpoint and load, us a page each; the
 * load twice, into memory the process has not used yet and into the memory the first gave back.
 */
static int growth_at(size_t n, double *create, double *write_ck, double *load, double *reload)
{
	struct bench_ctx c = { 0 };
	struct mmsb_state *t = NULL;
	char ckpt[512];
	uint64_t t0;
	int err = 0;

	snprintf(ckpt, sizeof(ckpt), "%s/growth.ckpt", benv.dir);
	c.s = open_logged(&c, "growth.tlog", MMSB_DURABLE_NONE);
	if (!c.s)
		return -errno;
	t0 = mono_ns();
	for (size_t i = 0; i < n && !err; i++)
		err = mmsb_page_create(c.s, 64, MMSB_LOC_CPU, NULL);
	*create = (double)(mono_ns() - t0) / 1e3 / (double)n;
	for (uint64_t i = 1; i < n && !err; i += 2)
		err = mmsb_edge_add(c.s, i, i + 1, MMSB_EDGE_DATA);
	t0 = mono_ns();
	if (!err)
		err = mmsb_checkpoint_write(c.s, ckpt);
	*write_ck = (double)(mono_ns() - t0) / 1e3 / (double)n;
	for (int i = 0; i < 2 && !err; i++) {
		if (!(t = mmsb_state_open(NULL))) {
			err = -errno;
			break;
		}
		t0 = mono_ns();
		err = mmsb_checkpoint_load(t, ckpt);
		*(i ? reload : load) = (double)(mono_ns() - t0) / 1e3 / (double)n;
		mmsb_state_close(t);
	}
	teardown_common(&c);
	unlink(ckpt);
	return err;
}

/*
 * ms to fault in a MiB of anonymous memory mapped anew, a 4 KiB page at a time (no huge pages):
 * what a load into memory the process never had pays the kernel, and on a VM the host, for each
 * page. The kernel may hand back pages the process freed; on this VM they cost the same.
 */
static int first_touch(double *ms)
{
	const size_t len = 64u << 20;
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t t0;

	if (p == MAP_FAILED)
		return -errno;
	madvise(p, len, MADV_NOHUGEPAGE);
	t0 = mono_ns();
	for (size_t i = 0; i < len; i += 4096)
		((volatile uint8_t *)p)[i] = 1;
	*ms = (double)(mono_ns() - t0) / 1e6 / (double)(len >> 20);
	munmap(p, len);
	return 0;
}

int limits_growth(struct bench_result *r)
{
	static const char *const load_name[] = { "load_us_1k", "load_us_10k", "load_us_100k",
						 "load_us_1m" };
	double create[4], write_ck[4], load[4], reload[4], touch = 0;
	int steps = benv.quick ? 2 : 4, err = 0;
	size_t n = 1000;

	for (int i = 0; i < steps && !err; i++, n *= 10)
		err = growth_at(n, &create[i], &write_ck[i], &load[i], &reload[i]);
	if (!err)
		err = first_touch(&touch);
	if (err)
		return err;
	for (int i = 0; i < steps; i++)
		bench_value(r, load_name[i], load[i]);
	bench_value(r, "reload_us_max", reload[steps - 1]);
	/* what memory the process never had costs here: the first load's share of it */
	bench_value(r, "touch_ms_mib", touch);
	bench_value(r, "create_us_1k", create[0]);
	bench_value(r, "create_us_max", create[steps - 1]);
	bench_value(r, "write_us_1k", write_ck[0]);
	bench_value(r, "write_us_max", write_ck[steps - 1]);
	return 0;
}

/* ---- a checkpoint behind a log: its cost should not follow the log's length ---- */

/*
 * ms for a checkpoint of 1 MiB (1,024 pages of 1 KiB) after n logged 8-byte writes under
 * durability none, written as fast as the CPU can: the checkpoint syncs the log first, so what
 * the log left unsynced is what it waits for.
 */
static int ckpt_after(size_t n, double *ms)
{
	struct bench_ctx c = { 0 };
	char ckpt[512];
	uint64_t t0, v = 0;
	int err = 0;

	snprintf(ckpt, sizeof(ckpt), "%s/behind.ckpt", benv.dir);
	c.s = open_logged(&c, "behind.tlog", MMSB_DURABLE_NONE);
	if (!c.s)
		return -errno;
	for (int i = 0; i < 1024 && !err; i++)
		err = mmsb_page_create(c.s, 1024, MMSB_LOC_CPU, NULL);
	for (size_t i = 0; i < n && !err; i++) {
		v++;
		err = mmsb_page_write(c.s, i % 1024 + 1, (i / 1024) % 128 * 8, &v, sizeof(v));
		err = err < 0 ? err : 0;
	}
	t0 = mono_ns();
	if (!err)
		err = mmsb_checkpoint_write(c.s, ckpt);
	*ms = (double)(mono_ns() - t0) / 1e6;
	teardown_common(&c);
	unlink(ckpt);
	return err;
}

int limits_ckpt_behind_log(struct bench_result *r)
{
	static const char *const name[] = { "ckpt_ms_1k", "ckpt_ms_10k", "ckpt_ms_100k",
					    "ckpt_ms_1m" };
	double ms[4], sync_ns = 0;
	int steps = benv.quick ? 2 : 4, err = 0;
	size_t n = 1000;

	for (int i = 0; i < steps && !err; i++, n *= 10)
		err = ckpt_after(n, &ms[i]);
	if (!err)
		err = bench_raw_sync_ns(20, &sync_ns);
	if (err)
		return err;
	for (int i = 0; i < steps; i++)
		bench_value(r, name[i], ms[i]);
	/* the limit: 1, a checkpoint as costly behind the longest log as behind the shortest */
	bench_value(r, "longest_over_shortest", ms[steps - 1] / ms[0]);
	bench_value(r, "sync_ms", sync_ns / 1e6);
	return 0;
}

/* ---- durability: what this disk's sync costs, and how many a call makes ---- */

/*
 * fsync and fdatasync as the library calls them, counted: mmsb-bench's own definitions come
 * before libc's for every caller in the process, as its malloc interposer does.
 */
unsigned long bench_syncs;

int fsync(int fd)
{
	bench_syncs++;
	return (int)syscall(SYS_fsync, fd);
}

int fdatasync(int fd)
{
	bench_syncs++;
	return (int)syscall(SYS_fdatasync, fd);
}

/* us for a 1 KiB append + fdatasync of a file in the scratch directory: this disk's sync */
int bench_raw_sync_ns(int reps, double *ns)
{
	char path[512], buf[1024];
	uint64_t t0;
	int fd, err = 0;

	snprintf(path, sizeof(path), "%s/raw-sync.bin", benv.dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	memset(buf, 0x5a, sizeof(buf));
	t0 = mono_ns();
	for (int i = 0; i < reps && !err; i++)
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) ||
		    syscall(SYS_fdatasync, fd))
			err = -EIO;
	*ns = (double)(mono_ns() - t0) / reps;
	close(fd);
	unlink(path);
	return err;
}
