// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The throughput engine: big batches applied by a fixed pool of workers, the calling thread being
 * worker 0. Two passes, both split W ways:
 *  - validate: worker j checks the j-th contiguous slice of the batch, resolves each delta's page
 *    and drops its index into bucket [j][owner(page)], owners being a hash of the page id;
 *  - apply: worker k applies buckets [0][k], [1][k], ... in that order. Slices are in input order,
 *    so each page's deltas are applied by one worker in input order, without sorting or locks.
 * Between the passes a barrier lets worker 0 decide: any bad delta anywhere aborts the batch before
 * a byte changes, and a logged state frames and commits the batch there, so what is on disk always
 * precedes what is applied.
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

/* A delta of the batch with its page resolved: what the apply pass reads, contiguous. */
struct item {
	size_t i;
	struct mmsb_page *p;
};

struct bucket {
	struct item *v; /* in input order */
	size_t n, cap;
};

struct worker {
	struct mmsb_engine *e;
	unsigned int k;
	pthread_t thread;
	struct bucket *bucket; /* [owner]: this worker's slice, split by the owner of each page */
	struct mmsb_page **touched; /* pages this worker changed in the batch */
	size_t n_touched, cap_touched;
	uint64_t bytes;
	size_t n_gpu;  /* deltas of this worker's slice to GPU pages */
	size_t err_at; /* smallest bad index this worker saw, or SIZE_MAX */
	int err;
} __attribute__((aligned(64)));

struct mmsb_engine {
	struct mmsb_state *s;
	unsigned int w;
	bool oversubscribed; /* more workers than CPUs: spinning must yield */
	struct worker *wk;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	_Atomic uint64_t job; /* bumped to start a batch */
	_Atomic unsigned int sleepers;
	_Atomic bool stop;

	/* the batch */
	struct mmsb_delta *const *ds;
	size_t n;
	struct mmsb_page **pages; /* pages[i] for ds[i]: only for a logged state, else NULL */
	struct mmsb_page **page_buf;
	size_t cap_pages;
	uint64_t gen, base_id;
	_Atomic unsigned int validated, finished;
	_Atomic int go; /* 0 waiting, 1 apply, -1 abort */
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static void spin_until(struct mmsb_engine *e, _Atomic unsigned int *v, unsigned int want)
{
	for (unsigned int i = 0; atomic_load_explicit(v, memory_order_acquire) < want; i++) {
		if (e->oversubscribed || i > 100000)
			sched_yield();
		else
			cpu_relax();
	}
}

static inline unsigned int owner(const struct mmsb_engine *e, uint64_t page_id)
{
	return (unsigned int)(((page_id * 0x9E3779B97F4A7C15ull) >> 32) % e->w);
}

static int push_item(struct bucket *b, size_t i, struct mmsb_page *p)
{
	if (b->n == b->cap && mmsb__grow((void **)&b->v, &b->cap, b->n + 1, sizeof(*b->v)))
		return -ENOMEM;
	b->v[b->n++] = (struct item){ i, p };
	return 0;
}

/* Pass 1: check this worker's slice and sort it into the owners' buckets. */
static void validate(struct mmsb_engine *e, struct worker *w)
{
	size_t lo = e->n * w->k / e->w, hi = e->n * (w->k + 1) / e->w;

	for (unsigned int b = 0; b < e->w; b++)
		w->bucket[b].n = 0;
	w->n_touched = 0;
	w->n_gpu = 0;
	w->bytes = 0;
	w->err = 0;
	w->err_at = SIZE_MAX;
	for (size_t i = lo; i < hi; i++) {
		struct mmsb_delta *d = e->ds[i];
		int err = d ? mmsb__delta_validate(d) : -EINVAL;

		struct mmsb_page *p = err ? NULL : mmsb__map_get(&e->s->pages, d->page_id);

		if (!err && !p)
			err = -MMSB_ERR_PAGE_NOT_FOUND;
		if (!err)
			err = push_item(&w->bucket[e->w > 1 ? owner(e, d->page_id) : 0], i, p);
		if (!err && e->pages)
			e->pages[i] = p; /* the log pass reads pages in input order */
		if (!err)
			w->n_gpu += p->dev != NULL;
		if (err) {
			w->err = err;
			w->err_at = i;
			return; /* later indices of a slice cannot be the batch's first error */
		}
	}
}

/* Pass 2: apply the deltas of this worker's pages; a page's epoch moves once per batch. */
static int apply(struct mmsb_engine *e, struct worker *w)
{
	for (unsigned int j = 0; j < e->w; j++) {
		const struct bucket *b = &e->wk[j].bucket[w->k];

		for (size_t x = 0; x < b->n; x++) {
			struct mmsb_page *p = b->v[x].p;
			const struct mmsb_delta *d = e->ds[b->v[x].i];

			if (p->batch_gen != e->gen) {
				p->batch_gen = e->gen;
				p->epoch++;
				if (w->n_touched == w->cap_touched &&
				    mmsb__grow((void **)&w->touched, &w->cap_touched,
					       w->n_touched + 1, sizeof(*w->touched)))
					return -ENOMEM;
				w->touched[w->n_touched++] = p;
			}
			size_t bytes;
			int err = mmsb__apply_bytes(p, d, &bytes);

			if (err)
				return err;
			w->bytes += bytes;
		}
	}
	return 0;
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

	for (unsigned int k = 0; k < e->w; k++)
		n_gpu += e->wk[k].n_gpu;
	for (unsigned int j = 0; n_gpu && j < e->w; j++)
		for (unsigned int k = 0; k < e->w; k++) {
			const struct bucket *b = &e->wk[j].bucket[k];

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

	for (unsigned int k = 0; k < e->w; k++)
		if (e->wk[k].err && e->wk[k].err_at < first) {
			first = e->wk[k].err_at;
			err = e->wk[k].err;
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

static void work(struct mmsb_engine *e, struct worker *w)
{
	int go;

	validate(e, w);
	atomic_fetch_add_explicit(&e->validated, 1, memory_order_acq_rel);
	if (!w->k) {
		spin_until(e, &e->validated, e->w);
		go = decide(e);
		if (go)
			w->err = go, w->err_at = 0;
		atomic_store_explicit(&e->go, go ? -1 : 1, memory_order_release);
	} else {
		while (!(go = atomic_load_explicit(&e->go, memory_order_acquire)))
			e->oversubscribed ? sched_yield() : cpu_relax();
	}
	if (atomic_load_explicit(&e->go, memory_order_acquire) > 0) {
		int err = apply(e, w);

		if (err)
			w->err = err, w->err_at = 0;
	}
	atomic_fetch_add_explicit(&e->finished, 1, memory_order_acq_rel);
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
		seen = atomic_load(&e->job);
		work(e, w);
	}
}

static void engine_free(struct mmsb_engine *e);

struct mmsb_engine *mmsb_engine_new(struct mmsb_state *s, const struct mmsb_engine_opts *opts)
{
	MMSB_API_SCOPE(mmsb_engine_new);
	struct mmsb_engine *e;
	unsigned int w;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

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
	e->oversubscribed = cpus > 0 && w > (unsigned int)cpus;
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->cv, NULL);
	e->wk = aligned_alloc(64, sizeof(*e->wk) * w);
	if (!e->wk) {
		free(e);
		return NULL;
	}
	memset(e->wk, 0, sizeof(*e->wk) * w);
	for (unsigned int k = 0; k < w; k++) {
		e->wk[k].e = e;
		e->wk[k].k = k;
		/* each worker's counters on lines of their own: pushes from two cores must not share */
		size_t bsz = (w * sizeof(struct bucket) + 63) & ~(size_t)63;

		e->wk[k].bucket = aligned_alloc(64, bsz);
		if (e->wk[k].bucket)
			memset(e->wk[k].bucket, 0, bsz);
		if (!e->wk[k].bucket) {
			e->w = 1; /* no thread started yet */
			engine_free(e);
			return mmsb__err_ptr(-ENOMEM);
		}
	}
	for (unsigned int k = 1; k < w; k++) {
		int err = pthread_create(&e->wk[k].thread, NULL, worker_main, &e->wk[k]);

		if (err) {
			e->w = k; /* free the ones that started */
			engine_free(e);
			return mmsb__err_ptr(-err);
		}
	}
	return e;
}

static void engine_free(struct mmsb_engine *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&e->mu);
	atomic_store(&e->stop, true);
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mu);
	for (unsigned int k = 1; k < e->w; k++)
		pthread_join(e->wk[k].thread, NULL);
	for (unsigned int k = 0; k < e->w; k++) {
		for (unsigned int b = 0; e->wk[k].bucket && b < e->w; b++)
			free(e->wk[k].bucket[b].v);
		free(e->wk[k].bucket);
		free(e->wk[k].touched);
	}
	free(e->wk);
	free(e->page_buf);
	pthread_cond_destroy(&e->cv);
	pthread_mutex_destroy(&e->mu);
	free(e);
}

void mmsb_engine_free(struct mmsb_engine *e)
{
	MMSB_API_SCOPE(mmsb_engine_free);
	engine_free(e);
}

/* Run a batch with the state locked; the touched pages stay in the workers for mmsb_tick(). */
static int run_locked(struct mmsb_engine *e, struct mmsb_delta *const *ds, size_t n)
{
	struct mmsb_state *s = e->s;
	int err = 0;

	e->pages = NULL;
	/* the batch's ids are next_delta_id .. + n - 1: they never pass MMSB_ID_MAX */
	if (s->next_delta_id > MMSB_ID_MAX || n > MMSB_ID_MAX + 1 - s->next_delta_id)
		return -ERANGE;
	if (s->log) {
		if (n > e->cap_pages &&
		    mmsb__grow((void **)&e->page_buf, &e->cap_pages, n, sizeof(*e->page_buf)))
			return -ENOMEM;
		e->pages = e->page_buf;
	}
	MMSB_TRACE(ENGINE_BATCH_BEGIN, n, e->w);
	e->ds = ds;
	e->n = n;
	e->gen = ++s->batch_gen;
	e->base_id = s->next_delta_id;
	atomic_store(&e->validated, 0);
	atomic_store(&e->finished, 0);
	atomic_store(&e->go, 0);
	if (e->w > 1) {
		atomic_fetch_add(&e->job, 1);
		/* a worker that counted itself a sleeper is waiting on the condition variable */
		if (atomic_load(&e->sleepers)) {
			pthread_mutex_lock(&e->mu);
			pthread_cond_broadcast(&e->cv);
			pthread_mutex_unlock(&e->mu);
		}
	}
	work(e, &e->wk[0]);
	spin_until(e, &e->finished, e->w);
	for (unsigned int k = 0; k < e->w && !err; k++)
		err = e->wk[k].err;
	if (atomic_load(&e->go) > 0) {
		/* applied (an ENOMEM while recording touched pages does not undo the bytes) */
		s->next_delta_id += n;
		s->st.deltas_applied += n;
		for (unsigned int k = 0; k < e->w; k++)
			s->st.delta_bytes += e->wk[k].bytes;
	}
	if (MMSB_ENGINE_BATCH_END_ENABLED()) {
		uint64_t pages = 0;

		/* summed only for a tracer: nobody attached, nobody pays */
		for (unsigned int k = 0; k < e->w; k++)
			pages += e->wk[k].n_touched;
		MMSB_ENGINE_BATCH_END(n, err ? 0 : pages, err);
	}
	MMSB_SPAN(ENGINE_BATCH_END);
	return err;
}

int mmsb_engine_apply(struct mmsb_engine *e, struct mmsb_delta *const *ds, size_t n,
		      struct mmsb_throughput *m)
{
	MMSB_API_SCOPE(mmsb_engine_apply);
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
			for (unsigned int k = 0; k < e->w; k++)
				m->pages += e->wk[k].n_touched;
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
	MMSB_API_SCOPE(mmsb_memory_report);
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
	MMSB_API_SCOPE(mmsb_tick);
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
	/* with no batch the workers' lists are the previous batch's: nothing changed this tick */
	for (unsigned int k = 0; n && k < e->w; k++)
		m->pages += e->wk[k].n_touched;
	changed = malloc((m->pages ? m->pages : 1) * sizeof(*changed));
	if (!changed) {
		err = -ENOMEM;
		goto out;
	}
	for (unsigned int k = 0; n && k < e->w; k++) {
		if (!e->wk[k].n_touched)
			continue;
		memcpy(changed + n_changed, e->wk[k].touched,
		       e->wk[k].n_touched * sizeof(*changed));
		n_changed += e->wk[k].n_touched;
	}
	err = mmsb__wave(e->s, changed, n_changed, NULL, 0);
	m->propagation_ns = mmsb__now_ns(CLOCK_MONOTONIC) - t1;
	t1 += m->propagation_ns;
	if (err)
		goto out;
	err = mmsb__tarjan(&e->s->pages, &e->s->mark_gen, &rep);
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
