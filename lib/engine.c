// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The throughput engine: big batches applied by a fixed pool of workers, the calling thread being
 * worker 0. Pages are cut into parts by ranges of ids, worker k owning parts k * PARTS_PER_WORKER
 * on; two passes, each cut into units that any worker may claim, its own first:
 *  - validate: a unit is one slice of the batch and one worker's parts; its claimer checks each
 *    delta of the slice whose page is in those parts, resolves the page and drops its index into
 *    the bucket [slice][part(page)];
 *  - apply: a part's claimer applies buckets [0][part], [1][part], ... in that order. Slices are
 *    in input order, so each page's deltas are applied by one worker in input order, without
 *    sorting or locks.
 * So the worker that files a delta is the one that applies it, unless one of them stole: every
 * worker reads every delta's page id, and what it writes stays in its own cache.
 * Between the passes worker 0 decides, once every unit is done: any bad delta anywhere aborts the
 * batch before a byte changes, and a logged state frames and commits the batch there, so what is
 * on disk always precedes what is applied.
 *
 * Why claimed units and not one fixed slice per worker (docs/benchmarks.md, "Two workers"): on a
 * VM the vCPU a worker needs is not always running, and a batch cut into fixed slices waits for
 * its slowest slice, so a worker that is not scheduled stalls the batch for a whole time slice
 * while worker 0 spins. With claims, worker 0 does whatever nobody else has taken: a batch is
 * never slower than worker 0 alone by more than the wake-up, one unit another worker holds, and
 * a scan of the batch's page ids for each group of parts whose worker did not come.
 * A batch too small for two slices is run by worker 0 alone, without waking anyone.
 */
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "mmsb_internal.h"
#include "probes.h"

#define MAX_WORKERS 64
/* How long an idle worker spins for the next batch before it sleeps on the condition variable. */
#define IDLE_SPIN_NS 50000
/*
 * The smallest slice worth sharing: 512 no-op deltas are about 3 us of work here, the order of a
 * cache-line round trip between vCPUs times the lines a slice shares.
 */
#define SLICE_MIN 512
/* Slices at most: enough for a late worker to still find work, few enough to merge. */
#define MAX_SLICES 4
/* Parts per worker: a late worker's parts are small enough for worker 0 to take some of them. */
#define PARTS_PER_WORKER 4
/*
 * Every PROBE_EVERY batches that could be shared, the way not chosen is tried for PROBE_LEN in a
 * row; the first of them is not counted (it pays the other workers' wake-up, or their cold caches).
 * A probe that confirms the choice makes the interval 4 times longer, up to PROBE_MAX: on a
 * machine whose second CPU is taken, a shared batch can wait a whole time slice for a worker that
 * holds a unit, and probing it often would cost more than sharing ever gains (doubling, the
 * probes of a 2,000-batch run still cost it 3 %).
 */
#define PROBE_EVERY 64
#define PROBE_MAX 4096
#define PROBE_LEN 3
/*
 * Each way's cost is the least of its last EST_N batches (ns a delta). A batch is only ever slowed
 * by what is not the engine (a preemption, a page fault, an interrupt), so the least of a few is
 * the way's own cost. An average was not: one slow batch of the way not chosen held up its
 * figure until the next probe, whose two batches barely moved it, and the engine kept sharing at
 * half the speed of one worker for thousands of batches.
 */
#define EST_N 4
/* Pause iterations before a waiting thread yields its CPU to the thread it waits for. */
#define SPIN_PAUSES 2000

/* A delta of the batch with its page resolved: what the apply pass reads, contiguous. */
struct item {
	size_t i;
	struct mmsb_page *p;
};

/* A line each: the buckets of two workers' parts are written from two cores. */
struct bucket {
	struct item *v; /* in input order */
	size_t n, cap;
} __attribute__((aligned(64)));

/*
 * A validate unit: the deltas of one slice of the batch whose pages belong to one worker's parts.
 * Claimed like a part (the job in the high 32 bits, 1 in the low ones once taken).
 */
struct unit {
	_Atomic uint64_t claim;
	size_t n_gpu;  /* deltas of the unit to GPU pages */
	size_t err_at; /* smallest bad index of the unit, or SIZE_MAX */
	int err;
} __attribute__((aligned(64)));

/* An apply unit: the pages of its range of ids, and what applying their deltas did. */
struct part {
	/*
	 * The job in the high 32 bits, 1 in the low ones once taken. A part goes to the same worker
	 * batch after batch when it can (worker k asks for its own parts first): its pages' lines stay
	 * in that worker's cache, where two workers trading them cost more than the deltas.
	 */
	_Atomic uint64_t claim;
	struct mmsb_page **touched; /* pages this part changed in the batch */
	size_t n_touched, cap_touched;
	uint64_t bytes;
	int err;
} __attribute__((aligned(64)));

struct worker {
	struct mmsb_engine *e;
	unsigned int k;
	pthread_t thread;
};

struct mmsb_engine {
	struct mmsb_state *s;
	unsigned int w;	      /* workers, the caller included */
	unsigned int started; /* threads running: workers 1 .. started - 1 */
	bool oversubscribed;  /* more workers than CPUs: waiting must yield at once */
	struct worker *wk;
	unsigned int max_parts; /* PARTS_PER_WORKER * w */
	struct unit *unit;	/* MAX_SLICES * w: [group][slice] */
	struct bucket *bucket;	/* MAX_SLICES * max_parts: [slice][part] */
	struct part *part;	/* max_parts */
	/*
	 * Nanoseconds a delta of the last batches worker 0 ran alone [0] and shared [1]: a batch is
	 * shared only while sharing has been the faster (see pick_shared()).
	 */
	struct est {
		double v[EST_N];
		unsigned int n; /* samples, the next one goes to v[n % EST_N] */
	} est[2];
	unsigned int since_probe, probe_every, probe_left;
	bool probing, probe_best; /* a probe is on, and the choice it is testing */
	bool counted;		  /* this batch's time goes into est */

	pthread_mutex_t mu;
	pthread_cond_t cv;
	_Atomic uint64_t job; /* bumped to start a batch that others may join */
	_Atomic unsigned int sleepers;
	_Atomic bool stop;

	/* the batch */
	struct mmsb_delta *const *ds;
	size_t n;
	/*
	 * Slices of the batch, groups of parts (one a worker) and parts: worker k owns parts
	 * k * PARTS_PER_WORKER on, and validates the deltas to their pages (units [k][*]).
	 */
	unsigned int n_slices, n_groups, n_parts;
	uint64_t seq;		  /* the batch's job number */
	bool any_gpu;		  /* a GPU page may be in the batch */
	struct mmsb_page **pages; /* pages[i] for ds[i]: only for a logged state, else NULL */
	struct mmsb_page **page_buf;
	size_t cap_pages;
	uint64_t gen, base_id;
	uint64_t id_scale;		   /* UINT64_MAX / next_page_id: part_of() */
	_Atomic uint32_t batch;		   /* the job running now; publishes the batch */
	_Atomic unsigned int vdone, adone; /* units and parts finished */
	_Atomic uint32_t go;		   /* the job whose apply pass may start (or was aborted) */
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* One round of a wait: pause a little, then give the CPU to whoever we wait for. */
static inline void wait_step(const struct mmsb_engine *e, unsigned int *i)
{
	if (e->oversubscribed || ++*i > SPIN_PAUSES)
		sched_yield();
	else
		cpu_relax();
}

static void wait_done(struct mmsb_engine *e, _Atomic unsigned int *v, unsigned int want)
{
	unsigned int i = 0;

	while (atomic_load_explicit(v, memory_order_acquire) < want)
		wait_step(e, &i);
}

/*
 * Unit or part c of job, when nobody has taken it yet. The word holds the job in its high 32 bits
 * and 1 in the low ones once taken, so a worker that comes late to a batch never takes a unit of
 * the next.
 */
static bool take(_Atomic uint64_t *c, uint32_t job)
{
	uint64_t v = atomic_load_explicit(c, memory_order_acquire);

	return v == (uint64_t)job << 32 &&
	       atomic_compare_exchange_strong_explicit(c, &v, v | 1, memory_order_acq_rel,
						       memory_order_acquire);
}

/*
 * The j-th unit worker k asks for, of n, per of them its own: its own first (k * per on), then
 * any, from the last. The other workers take theirs from the first, so a unit changes worker (and
 * its lines core) only where the two meet; a late worker finds them all taken.
 */
static inline unsigned int nth_unit(unsigned int k, unsigned int per, unsigned int n,
				    unsigned int j)
{
	return j < per ? k * per + j : n - 1 - (j - per);
}

/*
 * Parts are ranges of page ids: id / next_page_id as a 64-bit fraction (a multiply, not a division
 * per delta), its top 32 bits scaled to [0, n_parts). Pages are allocated in id order, so a part's
 * pages lie together in memory. A hash spread them evenly and interleaved them: each worker's
 * prefetches then pulled in the lines of the other's pages around its own, and the two traded
 * them every batch (a shared no-op batch ran at half the speed of one worker; by runs of 1,024
 * ids, faster than one). Ids far apart (a page created with an id well past the others) put most
 * pages in one part; the chooser then finds sharing slower and runs such batches on worker 0.
 */
static inline unsigned int part_of(const struct mmsb_engine *e, uint64_t page_id)
{
	return (unsigned int)((((page_id * e->id_scale) >> 32) * e->n_parts) >> 32);
}

static int push_item(struct bucket *b, size_t i, struct mmsb_page *p)
{
	if (mmsb__grow((void **)&b->v, &b->cap, b->n + 1, sizeof(*b->v)))
		return -ENOMEM;
	b->v[b->n++] = (struct item){ i, p };
	return 0;
}

/*
 * Pass 1: check the deltas of unit u (a slice of the batch, its group's pages only) and sort them
 * into the group's buckets. Every worker reads every delta's page id, and only the worker that
 * will apply a page writes anything about it: an item handed from one core to another cost more
 * than the work it carried (docs/benchmarks.md, "Two workers").
 */
static void validate(struct mmsb_engine *e, unsigned int u)
{
	struct unit *un = &e->unit[u];
	unsigned int g = u / MAX_SLICES, c = u % MAX_SLICES;
	unsigned int per = e->n_parts / e->n_groups;
	struct bucket *bk = &e->bucket[(size_t)c * e->max_parts];
	size_t lo = e->n * c / e->n_slices, hi = e->n * (c + 1) / e->n_slices;

	for (unsigned int k = g * per; k < (g + 1) * per; k++)
		bk[k].n = 0;
	un->n_gpu = 0;
	un->err = 0;
	un->err_at = SIZE_MAX;
	/* a copy of the table's header: the pushes below could alias it */
	const struct mmsb_page_map map = e->s->pages;
	struct mmsb_delta *const *ds = e->ds;

	for (size_t i = lo; i < hi; i++) {
		struct mmsb_delta *d = ds[i];
		/* a NULL delta is group 0's to report */
		unsigned int k = d && e->n_parts > 1 ? part_of(e, d->page_id) : 0;
		struct mmsb_page *p = NULL;
		int err;

		if (k / per != g)
			continue;
		err = d ? mmsb__delta_validate(d) : -EINVAL;
		if (!err && !(p = mmsb__map_get(&map, d->page_id)))
			err = -MMSB_ERR_PAGE_NOT_FOUND;
		if (!err)
			err = push_item(&bk[k], i, p);
		if (!err && e->pages)
			e->pages[i] = p; /* the log pass reads pages in input order */
		if (!err && e->any_gpu)
			un->n_gpu += p->dev != NULL;
		if (err) {
			un->err = err;
			un->err_at = i;
			return; /* later indices of a unit cannot be the batch's first error */
		}
	}
}

/* Pass 2: apply the deltas of part k's pages; a page's epoch moves once per batch. */
static int apply(struct mmsb_engine *e, unsigned int k)
{
	struct part *pt = &e->part[k];
	/* read once: the stores below could alias them */
	struct mmsb_delta *const *ds = e->ds;
	const uint64_t gen = e->gen;
	uint64_t bytes = 0;
	int err = 0;

	for (unsigned int c = 0; c < e->n_slices && !err; c++) {
		const struct bucket *b = &e->bucket[(size_t)c * e->max_parts + k];

		for (size_t x = 0; x < b->n; x++) {
			struct mmsb_page *p = b->v[x].p;
			size_t n;

			if (p->batch_gen != gen) {
				p->batch_gen = gen;
				p->epoch++;
				if (mmsb__grow((void **)&pt->touched, &pt->cap_touched,
					       pt->n_touched + 1, sizeof(*pt->touched))) {
					err = -ENOMEM;
					break;
				}
				pt->touched[pt->n_touched++] = p;
			}
			err = mmsb__apply_bytes(p, ds[b->v[x].i], &n);
			if (err)
				break;
			bytes += n;
		}
	}
	pt->bytes += bytes;
	return err;
}

/*
 * Worker 0, the others waiting: each GPU page's copy that its first delta writes made current
 * before the batch is logged, so a download that fails aborts the batch with nothing changed.
 */
static int prepare_gpu(struct mmsb_engine *e)
{
	uint64_t gen = ++e->s->mark_gen;
	size_t n_gpu = 0;
	int err = 0;

	for (unsigned int g = 0; g < e->n_groups; g++)
		for (unsigned int c = 0; c < e->n_slices; c++)
			n_gpu += e->unit[g * MAX_SLICES + c].n_gpu;
	for (unsigned int c = 0; n_gpu && c < e->n_slices; c++)
		for (unsigned int k = 0; k < e->n_parts; k++) {
			const struct bucket *b = &e->bucket[(size_t)c * e->max_parts + k];

			for (size_t x = 0; x < b->n && !err; x++) {
				struct mmsb_page *p = b->v[x].p;

				if (!p->dev || p->mark == gen)
					continue;
				p->mark = gen;
				err = mmsb__apply_prepare(p, e->ds[b->v[x].i]);
			}
			if (err)
				return err;
		}
	return 0;
}

/* Worker 0 between the passes: the batch's first error, else log and commit it. */
static int decide(struct mmsb_engine *e)
{
	struct mmsb_state *s = e->s;
	size_t first = SIZE_MAX;
	int err = 0;

	for (unsigned int g = 0; g < e->n_groups; g++)
		for (unsigned int c = 0; c < e->n_slices; c++) {
			const struct unit *un = &e->unit[g * MAX_SLICES + c];

			if (un->err && un->err_at < first) {
				first = un->err_at;
				err = un->err;
			}
		}
	if (!err)
		err = prepare_gpu(e);
	if (err || !s->log)
		return err;
	/* framed whole, then written and synced once: the batch is durable before it is visible */
	struct mmsb_log_mark mark = mmsb__log_mark(s->log);

	for (size_t i = 0; i < e->n && !err; i++) {
		/* the record carries id, epoch and LSN; the caller's delta stays untouched */
		struct mmsb_delta rec = *e->ds[i];

		rec.id = e->base_id + i;
		rec.epoch = e->pages[i]->epoch + 1;
		err = mmsb__log_buffer(s->log, &rec);
	}
	if (err) {
		mmsb__log_rollback(s->log, mark);
		return err;
	}
	return mmsb__log_commit_batch(s->log);
}

/*
 * The units of job's passes that this thread can claim. Worker 0 (first) also decides between the
 * passes and waits for every unit to finish; it returns the batch's error (a bad delta, the log).
 */
static int work(struct mmsb_engine *e, struct worker *w, uint32_t job)
{
	unsigned int units = MAX_SLICES * e->w, i = 0;
	bool first = !w->k;
	int err = 0;

	/* Parts and units past this batch's counts hold an older job: never taken. */
	for (unsigned int j = 0; j < MAX_SLICES + units; j++) {
		unsigned int u = nth_unit(w->k, MAX_SLICES, units, j);

		if (atomic_load_explicit(&e->batch, memory_order_acquire) != job ||
		    !take(&e->unit[u].claim, job))
			continue;
		validate(e, u);
		atomic_fetch_add_explicit(&e->vdone, 1, memory_order_release);
	}
	if (first) {
		wait_done(e, &e->vdone, e->n_groups * e->n_slices);
		err = decide(e);
		/* an abort leaves nothing to claim */
		for (unsigned int k = 0; k < e->n_parts; k++)
			atomic_store_explicit(&e->part[k].claim, (uint64_t)job << 32 | !!err,
					      memory_order_relaxed);
		atomic_store_explicit(&e->go, job, memory_order_release);
	} else {
		/* until worker 0 has decided, or a later batch has started without us */
		while (atomic_load_explicit(&e->go, memory_order_acquire) != job &&
		       atomic_load_explicit(&e->batch, memory_order_acquire) == job)
			wait_step(e, &i);
	}
	for (unsigned int j = 0; j < PARTS_PER_WORKER + e->max_parts; j++) {
		unsigned int k = nth_unit(w->k, PARTS_PER_WORKER, e->max_parts, j);
		int aerr;

		if (atomic_load_explicit(&e->go, memory_order_acquire) != job ||
		    !take(&e->part[k].claim, job))
			continue;
		aerr = apply(e, k);
		if (aerr)
			e->part[k].err = aerr;
		atomic_fetch_add_explicit(&e->adone, 1, memory_order_release);
	}
	if (first && !err)
		wait_done(e, &e->adone, e->n_parts);
	return err;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct mmsb_engine *e = w->e;
	uint64_t seen = 0;

	for (;;) {
		uint64_t t0 = mmsb__now_ns(CLOCK_MONOTONIC);
		unsigned int i = 0;

		/* spin a little: batches often come back to back */
		while (atomic_load(&e->job) == seen && !atomic_load(&e->stop)) {
			if (e->oversubscribed || ++i % 64 == 0) {
				if (e->oversubscribed)
					sched_yield();
				if (mmsb__now_ns(CLOCK_MONOTONIC) - t0 > IDLE_SPIN_NS)
					break;
			}
			cpu_relax();
		}
		pthread_mutex_lock(&e->mu);
		atomic_fetch_add(&e->sleepers, 1);
		while (atomic_load(&e->job) == seen && !atomic_load(&e->stop))
			pthread_cond_wait(&e->cv, &e->mu);
		atomic_fetch_sub(&e->sleepers, 1);
		pthread_mutex_unlock(&e->mu);
		if (atomic_load(&e->stop))
			return NULL;
		seen = atomic_load_explicit(&e->job, memory_order_acquire);
		work(e, w, (uint32_t)seen);
	}
}

static void engine_free(struct mmsb_engine *e);

/* aligned_alloc, zeroed: the engine's per-line arrays */
static void *zalloc64(size_t n)
{
	void *p;

	n = (n + 63) & ~(size_t)63;
	p = aligned_alloc(64, n);
	if (p)
		memset(p, 0, n);
	return p;
}

struct mmsb_engine *mmsb_engine_new(struct mmsb_state *s, const struct mmsb_engine_opts *opts)
{
	MMSB_API_GATE(mmsb_engine_new, s, opts);
	struct mmsb_engine *e;
	unsigned int w;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int err = -ENOMEM;

	if (!s || !OPTS_VALID(opts, mmsb_engine_opts))
		return mmsb__err_ptr(-EINVAL);
	w = OPTS_GET(opts, workers, 0);
	if (!w)
		w = 1;
	if (w > MAX_WORKERS)
		return mmsb__err_ptr(-EINVAL);
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->s = s;
	e->w = w;
	e->started = 1; /* the caller is worker 0 */
	e->probe_every = PROBE_EVERY;
	e->oversubscribed = cpus > 0 && w > (unsigned int)cpus;
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->cv, NULL);
	e->wk = calloc(w, sizeof(*e->wk));
	e->max_parts = PARTS_PER_WORKER * w;
	e->unit = zalloc64(sizeof(*e->unit) * MAX_SLICES * w);
	e->bucket = zalloc64(sizeof(*e->bucket) * MAX_SLICES * e->max_parts);
	e->part = zalloc64(sizeof(*e->part) * e->max_parts);
	if (!e->wk || !e->unit || !e->bucket || !e->part)
		goto fail;
	for (unsigned int k = 0; k < w; k++)
		e->wk[k] = (struct worker){ .e = e, .k = k };
	for (; e->started < w; e->started++) {
		err = -pthread_create(&e->wk[e->started].thread, NULL, worker_main,
				      &e->wk[e->started]);
		if (err)
			goto fail;
	}
	return e;
fail:
	engine_free(e);
	return mmsb__err_ptr(err);
}

static void engine_free(struct mmsb_engine *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&e->mu);
	atomic_store(&e->stop, true);
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mu);
	for (unsigned int k = 1; k < e->started; k++)
		pthread_join(e->wk[k].thread, NULL);
	for (unsigned int b = 0; e->bucket && b < MAX_SLICES * e->max_parts; b++)
		free(e->bucket[b].v);
	for (unsigned int k = 0; e->part && k < e->max_parts; k++)
		free(e->part[k].touched);
	free(e->unit);
	free(e->bucket);
	free(e->part);
	free(e->wk);
	free(e->page_buf);
	pthread_cond_destroy(&e->cv);
	pthread_mutex_destroy(&e->mu);
	free(e);
}

void mmsb_engine_free(struct mmsb_engine *e)
{
	MMSB_API_GATE(mmsb_engine_free, e);
	engine_free(e);
}

/* The way's cost: the least of its recent batches, 0 when it has none. */
static double est_min(const struct est *x)
{
	double m = 0;

	for (unsigned int i = 0; i < min_t(unsigned int, x->n, EST_N); i++)
		if (!m || x->v[i] < m)
			m = x->v[i];
	return m;
}

/*
 * Share this batch, or let worker 0 run it alone? Whichever has been faster a delta lately, and
 * now and then the other, so a machine whose second CPU comes back (or goes) is followed. On a VM
 * whose vCPUs are not co-scheduled a shared batch can cost more than one worker's: the workers
 * wait for each other and the pages' cache lines move between them (docs/benchmarks.md).
 */
static bool pick_shared(struct mmsb_engine *e)
{
	double alone = est_min(&e->est[0]), shared = est_min(&e->est[1]);
	/* untried ways first: shared, then alone */
	bool best = !shared || (alone && shared < alone);

	e->counted = true;
	if (e->probe_left) {
		e->probe_left--;
		return !e->probe_best;
	}
	if (e->probing) {
		/* the probe is over: the same choice again, or the other one now */
		e->probing = false;
		e->probe_every = best == e->probe_best ?
					 min_t(unsigned int, 4 * e->probe_every, PROBE_MAX) :
					 PROBE_EVERY;
	}
	if (++e->since_probe < e->probe_every)
		return best;
	e->since_probe = 0;
	e->probing = true;
	e->probe_best = best;
	e->probe_left = PROBE_LEN - 1;
	e->counted = false;
	/* judged on this probe's batches alone: what the way cost a while ago is not evidence */
	e->est[!best].n = 0;
	return !best;
}

static void learn(struct mmsb_engine *e, bool shared, uint64_t ns, size_t n)
{
	struct est *x = &e->est[shared];

	if (e->counted)
		x->v[x->n++ % EST_N] = (double)ns / (double)n;
}

/* The pages the last batch changed, over its parts. */
static uint64_t touched_pages(const struct mmsb_engine *e)
{
	uint64_t pages = 0;

	for (unsigned int k = 0; k < e->n_parts; k++)
		pages += e->part[k].n_touched;
	return pages;
}

/* Run a batch with the state locked; the touched pages stay in the parts for mmsb_tick(). */
static int run_locked(struct mmsb_engine *e, struct mmsb_delta *const *ds, size_t n)
{
	struct mmsb_state *s = e->s;
	size_t nc = n / SLICE_MIN;
	/* two slices at least, or worker 0 runs it alone and nothing is learnt of it */
	bool may_share = e->w > 1 && nc >= 2, shared;
	uint64_t t0 = 0;
	int err;

	e->pages = NULL;
	/* the batch's ids are next_delta_id .. + n - 1: they never pass MMSB_ID_MAX */
	if (s->next_delta_id > MMSB_ID_MAX || n > MMSB_ID_MAX + 1 - s->next_delta_id)
		return -ERANGE;
	if (s->log) {
		if (mmsb__grow((void **)&e->page_buf, &e->cap_pages, n, sizeof(*e->page_buf)))
			return -ENOMEM;
		e->pages = e->page_buf;
	}
	/* and sharing paying lately */
	shared = may_share && pick_shared(e);
	e->n_slices = shared ? (unsigned int)min_t(size_t, nc, MAX_SLICES) : 1;
	e->n_groups = shared ? e->w : 1;
	e->n_parts = shared ? e->max_parts : 1;
	MMSB_TRACE(ENGINE_BATCH_BEGIN, n, shared ? e->w : 1);
	e->ds = ds;
	e->n = n;
	e->any_gpu = mmsb__gpu_any_pages();
	e->gen = ++s->batch_gen;
	e->base_id = s->next_delta_id;
	/* an id past the state's counter is no page: its part does not matter, only that it has one */
	e->id_scale = UINT64_MAX / (s->next_page_id ? s->next_page_id : 1);
	for (unsigned int k = 0; k < e->n_parts; k++) {
		e->part[k].n_touched = 0;
		e->part[k].bytes = 0;
		e->part[k].err = 0;
	}
	atomic_store_explicit(&e->vdone, 0, memory_order_relaxed);
	atomic_store_explicit(&e->adone, 0, memory_order_relaxed);
	/*
	 * Job 0 is never used: a claim word never reset since the engine was made holds 0, which
	 * would read as free in job 0 (a unit past this batch's slices, reading past its end).
	 */
	do
		e->seq++;
	while (!(uint32_t)e->seq);
	/* the resets below, and the batch above, are published by the store to e->batch */
	for (unsigned int g = 0; g < e->n_groups; g++)
		for (unsigned int c = 0; c < e->n_slices; c++)
			atomic_store_explicit(&e->unit[g * MAX_SLICES + c].claim,
					      (e->seq & 0xffffffffu) << 32, memory_order_relaxed);
	atomic_store_explicit(&e->batch, (uint32_t)e->seq, memory_order_release);
	if (may_share)
		t0 = mmsb__now_ns(CLOCK_MONOTONIC);
	if (shared) {
		/*
		 * seq_cst, as the sleeper's count is: a worker counts itself before it reads the job,
		 * and this store must not pass the load of the count, or each misses the other and
		 * the worker sleeps through the batch
		 */
		atomic_store(&e->job, e->seq);
		/* a worker that counted itself a sleeper is waiting on the condition variable */
		if (atomic_load(&e->sleepers)) {
			pthread_mutex_lock(&e->mu);
			pthread_cond_broadcast(&e->cv);
			pthread_mutex_unlock(&e->mu);
		}
	}
	err = work(e, &e->wk[0], (uint32_t)e->seq);
	if (may_share)
		learn(e, shared, mmsb__now_ns(CLOCK_MONOTONIC) - t0, n);
	if (!err) {
		/* applied (an ENOMEM while recording touched pages does not undo the bytes) */
		s->next_delta_id += n;
		s->st.deltas_applied += n;
		for (unsigned int k = 0; k < e->n_parts; k++) {
			s->st.delta_bytes += e->part[k].bytes;
			if (!err)
				err = e->part[k].err;
		}
	}
	/* the pages are summed only for a tracer (the arguments are evaluated under its check) */
	MMSB_TRACE(ENGINE_BATCH_END, n, err ? 0 : touched_pages(e), err);
	return err;
}

int mmsb_engine_apply(struct mmsb_engine *e, struct mmsb_delta *const *ds, size_t n,
		      struct mmsb_throughput *m)
{
	MMSB_API_GATE(mmsb_engine_apply, e, ds, n, m);
	uint64_t t0 = mmsb__now_ns(CLOCK_MONOTONIC);
	int err;

	if (!e || (n && !ds))
		return -EINVAL;
	err = mmsb__lock_mut(e->s);
	if (err)
		return err;
	err = n ? run_locked(e, ds, n) : 0;
	mmsb__unlock(e->s);
	if (m) {
		memset(m, 0, sizeof(*m));
		if (!err && n) {
			m->processed = n;
			m->pages = touched_pages(e);
		}
		m->duration_ns = mmsb__now_ns(CLOCK_MONOTONIC) - t0;
		m->rate = m->duration_ns ? (double)m->processed * 1e9 / (double)m->duration_ns : 0;
	}
	return err;
}

static void memory_report_locked(struct mmsb_state *s, uint32_t cold_age,
				 struct mmsb_memory_report *r)
{
	struct mmsb_page *p;
	size_t i;

	memset(r, 0, sizeof(*r));
	mmsb__map_for_each(&s->pages, i, p) {
		r->pages++;
		r->bytes += p->size;
		if (p->epoch == p->mem_epoch) {
			if (p->mem_age < UINT32_MAX)
				p->mem_age++;
		} else {
			p->mem_epoch = p->epoch;
			p->mem_age = 0;
		}
		r->cold_pages += p->mem_age > cold_age;
	}
	r->avg_bytes = r->pages ? r->bytes / r->pages : 0;
}

int mmsb_memory_report(struct mmsb_state *s, uint32_t cold_age, struct mmsb_memory_report *r)
{
	MMSB_API_GATE(mmsb_memory_report, s, cold_age, r);
	if (!s || !r)
		return -EINVAL;
	mmsb__lock(s);
	memory_report_locked(s, cold_age, r);
	mmsb__unlock(s);
	return 0;
}

int mmsb_tick(struct mmsb_engine *e, struct mmsb_delta *const *ds, size_t n,
	      struct mmsb_tick_metrics *m)
{
	MMSB_API_GATE(mmsb_tick, e, ds, n, m);
	struct mmsb_tick_metrics tmp;
	struct mmsb_cycle_report rep;
	struct mmsb_page **changed = NULL;
	size_t n_changed = 0;
	uint64_t t0, t1;
	int err;

	if (!e || (n && !ds))
		return -EINVAL;
	if (!m)
		m = &tmp;
	memset(m, 0, sizeof(*m));
	err = mmsb__lock_mut(e->s);
	if (err)
		return err;
	MMSB_TRACE(TICK_BEGIN, n);
	t0 = mmsb__now_ns(CLOCK_MONOTONIC);
	err = n ? run_locked(e, ds, n) : 0;
	t1 = mmsb__now_ns(CLOCK_MONOTONIC);
	m->apply_ns = t1 - t0;
	if (err)
		goto out;
	m->processed = n;
	/* with no batch the parts' lists are the previous batch's: nothing changed this tick */
	m->pages = n ? touched_pages(e) : 0;
	changed = malloc((m->pages ? m->pages : 1) * sizeof(*changed));
	if (!changed) {
		err = -ENOMEM;
		goto out;
	}
	for (unsigned int k = 0; n && k < e->n_parts; k++) {
		if (!e->part[k].n_touched)
			continue;
		memcpy(changed + n_changed, e->part[k].touched,
		       e->part[k].n_touched * sizeof(*changed));
		n_changed += e->part[k].n_touched;
	}
	err = mmsb__wave(e->s, changed, n_changed, NULL, 0);
	m->propagation_ns = mmsb__now_ns(CLOCK_MONOTONIC) - t1;
	t1 += m->propagation_ns;
	if (err)
		goto out;
	err = mmsb__tarjan(&e->s->pages, &e->s->mark_gen, &rep, false);
	if (err)
		goto out;
	m->graph_has_cycle = rep.has_cycle;
	free(rep.cycle);
	m->graph_ns = mmsb__now_ns(CLOCK_MONOTONIC) - t1;
	t1 += m->graph_ns;
	memory_report_locked(e->s, 3, &m->memory);
	m->memory_ns = mmsb__now_ns(CLOCK_MONOTONIC) - t1;
out:
	err = mmsb__finish(e->s, err);
	mmsb__unlock(e->s);
	free(changed);
	m->total_ns = mmsb__now_ns(CLOCK_MONOTONIC) - t0;
	m->rate = m->apply_ns ? (double)m->processed * 1e9 / (double)m->apply_ns : 0;
	m->within_budget = m->total_ns <= MMSB_TICK_BUDGET_NS;
	MMSB_TRACE(TICK_END, m->total_ns, m->within_budget);
	return err;
}
