// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Propagation: one topologically ordered pass over the pages a change reaches through DATA edges,
 * smallest id first among ready pages, each page recomputed at most once per wave. A recompute
 * that changes nothing ends the wave along that path (change pruning), and a recompute is skipped
 * when the epochs of the page's data parents are what they were at its last recompute.
 */
#include <string.h>

#include "mmsb_internal.h"
#include "probes.h"

static const char propagation_source[] = "propagation";

/* FNV-1a over (parent id, parent epoch) of every DATA parent: the RecomputeSignature. */
static uint64_t recompute_sig(const struct mmsb_page *p)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (uint32_t i = 0; i < p->parents.n; i++) {
		const struct mmsb_page *q = p->parents.v[i].peer;

		if (p->parents.v[i].type != MMSB_EDGE_DATA)
			continue;
		h = (h ^ q->id) * 0x100000001b3ull;
		h = (h ^ q->epoch) * 0x100000001b3ull;
	}
	return h;
}

static bool has_binding(const struct mmsb_page *p)
{
	return p->recompute || p->pt_source;
}

/* Recompute p; 1 when its bytes changed (a logged delta was applied), 0 when not, or -error. */
static int recompute_one(struct mmsb_state *s, struct mmsb_page *p)
{
	struct mmsb_delta d = { 0 };
	uint8_t *buf, *mask;
	uint64_t sig;
	int err;

	if (!has_binding(p))
		return 0;
	sig = recompute_sig(p);
	if (p->has_sig && sig == p->recompute_sig) {
		s->st.recompute_skips++;
		return 0;
	}
	if (p->size > SIZE_MAX / 2 || !(buf = mmsb__scratch(s, 2 * p->size)))
		return -ENOMEM;
	MMSB_TRACE(RECOMPUTE_BEGIN, p->id, p->size);
	mask = buf + p->size;
	err = mmsb__page_host(p);
	if (err) {
		MMSB_TRACE(RECOMPUTE_END, p->id, 0, err);
		return err;
	}
	memcpy(buf, p->data, p->size);

	s->in_callback++;
	if (p->pt_source) {
		struct mmsb_page *src = mmsb__map_get(&s->pages, p->pt_source);

		if (!src)
			err = -MMSB_ERR_PAGE_NOT_FOUND;
		else if ((err = mmsb__page_host(src)))
			;
		else if (p->pt_fn)
			err = p->pt_fn(src->data, src->size, buf, p->size, p->pt_ctx);
		else if (src->size != p->size)
			err = -MMSB_ERR_SIZE_MISMATCH;
		else
			err = (memcpy(buf, src->data, p->size), 0);
	} else {
		err = p->recompute(s, p->id, buf, p->size, p->recompute_ctx);
	}
	s->in_callback--;
	s->st.recomputes++;
	if (err) {
		pr_warn("recompute of page %llu failed: %s\n", (unsigned long long)p->id,
			mmsb__strerror(err));
		MMSB_TRACE(RECOMPUTE_END, p->id, 0, err);
		return err;
	}
	p->recompute_sig = sig;
	p->has_sig = true;
	p->flags &= (uint8_t)~MMSB_PAGE_STALE;

	/* the gathered payload may overwrite buf: it is not needed after this */
	if (!mmsb__delta_diff(&d, p->data, buf, p->size, mask, buf, NULL)) {
		MMSB_TRACE(RECOMPUTE_END, p->id, 0, 0);
		return 0;
	}
	d.page_id = p->id;
	d.source = (char *)propagation_source;
	d.timestamp = mmsb__now_ns(CLOCK_REALTIME);
	err = mmsb__commit_traced(s, p, &d, true);
	MMSB_TRACE(RECOMPUTE_END, p->id, d.mask_count, err);
	return err ? err : 1;
}

static int queue_push(struct mmsb_state *s, struct mmsb_page *p)
{
	if (p->queued)
		return 0;
	if (mmsb__grow((void **)&s->queue, &s->cap_queue, s->n_queue + 1, sizeof(*s->queue)))
		return -ENOMEM;
	s->queue[s->n_queue++] = p->id;
	p->queued = true;
	return 0;
}

/* What a changed page does to its children, by edge type. */
static int notify_children(struct mmsb_state *s, struct mmsb_page *p, bool deferred)
{
	for (uint32_t i = 0; i < p->children.n; i++) {
		struct mmsb_page *c = p->children.v[i].peer;

		switch (p->children.v[i].type) {
		case MMSB_EDGE_DATA:
			if (deferred) {
				int err = queue_push(s, c);

				if (err)
					return err;
				mmsb__emit(s, MMSB_EV_PAGE_INVALIDATED, c->id, 0, c->epoch);
			} else if (!c->invalidated) {
				c->invalidated = true;
				mmsb__emit(s, MMSB_EV_PAGE_INVALIDATED, c->id, 0, c->epoch);
			}
			c->dirty = true;
			break;
		case MMSB_EDGE_CONTROL:
			c->flags |= MMSB_PAGE_STALE;
			mmsb__emit(s, MMSB_EV_PAGE_STALE, c->id, 0, c->epoch);
			break;
		case MMSB_EDGE_GPU:
			c->flags |= MMSB_PAGE_GPU_SYNC_PENDING;
			mmsb__emit(s, MMSB_EV_GPU_SYNC_NEEDED, c->id, 0, c->epoch);
			break;
		case MMSB_EDGE_COMPILER:
			c->flags |= MMSB_PAGE_IR_INVALID;
			mmsb__emit(s, MMSB_EV_IR_INVALIDATED, c->id, 0, c->epoch);
			break;
		}
	}
	return 0;
}

static void wave_enter(struct mmsb_page *p, uint64_t gen)
{
	p->wave = gen;
	p->indeg = 0;
	p->dirty = p->changed = p->invalidated = false;
}

/*
 * changed: pages whose bytes already changed; dirty: pages to recompute. In deferred mode only the
 * seeds are handled and their data children are queued; otherwise every page reachable through
 * DATA edges joins the wave and is visited in topological order.
 */
static int wave(struct mmsb_state *s, struct mmsb_page **changed, size_t n_changed,
		struct mmsb_page **dirty, size_t n_dirty, bool deferred)
{
	uint64_t gen = ++s->wave_gen, t0 = mmsb__now_ns(CLOCK_MONOTONIC);
	struct mmsb_page **set = NULL;
	size_t n_set = 0, cap_set = 0, recomputed = 0;
	struct mmsb_heap h = { 0 };
	int err = 0;

	MMSB_TRACE(PROPAGATE_BEGIN, n_changed, n_dirty);
	if (mmsb__grow((void **)&set, &cap_set, n_changed + n_dirty + 1, sizeof(*set))) {
		MMSB_TRACE(PROPAGATE_END, 0, 0, -ENOMEM);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n_changed + n_dirty; i++) {
		struct mmsb_page *p = i < n_changed ? changed[i] : dirty[i - n_changed];

		if (p->wave != gen) {
			wave_enter(p, gen);
			set[n_set++] = p;
		}
		if (i < n_changed)
			p->changed = true;
		else
			p->dirty = true;
	}
	/* the affected subgraph: everything the seeds reach through DATA edges */
	for (size_t i = 0; !deferred && i < n_set; i++) {
		struct mmsb_page *p = set[i];

		for (uint32_t e = 0; e < p->children.n; e++) {
			struct mmsb_page *c = p->children.v[e].peer;

			if (p->children.v[e].type != MMSB_EDGE_DATA || c->wave == gen)
				continue;
			if (mmsb__grow((void **)&set, &cap_set, n_set + 1, sizeof(*set))) {
				err = -ENOMEM;
				goto out;
			}
			wave_enter(c, gen);
			set[n_set++] = c;
		}
	}
	for (size_t i = 0; !deferred && i < n_set; i++)
		for (uint32_t e = 0; e < set[i]->children.n; e++)
			if (set[i]->children.v[e].type == MMSB_EDGE_DATA)
				set[i]->children.v[e].peer->indeg++;
	for (size_t i = 0; i < n_set; i++)
		if (!set[i]->indeg && (err = mmsb__heap_push(&h, set[i])))
			goto out;

	while (h.n) {
		struct mmsb_page *p = mmsb__heap_pop(&h);

		if (p->dirty) {
			int r = recompute_one(s, p);

			if (r < 0) {
				err = r;
				goto out;
			}
			if (r) {
				recomputed++;
				p->changed = true;
				mmsb__emit(s, MMSB_EV_PAGE_CHANGED, p->id, 0, p->epoch);
			}
		}
		if (p->changed && (err = notify_children(s, p, deferred)))
			goto out;
		for (uint32_t e = 0; !deferred && e < p->children.n; e++) {
			struct mmsb_page *c = p->children.v[e].peer;

			if (p->children.v[e].type == MMSB_EDGE_DATA && !--c->indeg &&
			    (err = mmsb__heap_push(&h, c)))
				goto out;
		}
	}
out:
	free(h.v);
	free(set);
	s->st.waves++;
	s->st.wave_ns += mmsb__now_ns(CLOCK_MONOTONIC) - t0;
	MMSB_TRACE(PROPAGATE_END, n_set, recomputed, err);
	return err;
}

int mmsb__wave(struct mmsb_state *s, struct mmsb_page **changed, size_t n_changed,
	       struct mmsb_page **dirty, size_t n_dirty)
{
	return wave(s, changed, n_changed, dirty, n_dirty, s->deferred);
}

int mmsb_page_set_recompute(struct mmsb_state *s, uint64_t id, mmsb_recompute_fn fn, void *ctx)
{
	MMSB_API_GATE(mmsb_page_set_recompute, s, id, fn, ctx);
	struct mmsb_page *p;
	int err;

	err = mmsb__lock_page(s, id, true, &p);
	if (err)
		return err;
	p->recompute = fn;
	p->recompute_ctx = ctx;
	p->pt_source = 0;
	p->pt_fn = NULL;
	p->has_sig = false;
	mmsb__unlock(s);
	return 0;
}

int mmsb_page_set_passthrough(struct mmsb_state *s, uint64_t target, uint64_t source,
			      mmsb_transform_fn fn, void *ctx)
{
	MMSB_API_GATE(mmsb_page_set_passthrough, s, target, source, fn, ctx);
	struct mmsb_page *t, *src;
	int err;

	if (!s || target == source)
		return -EINVAL;
	err = mmsb__lock_mut(s);
	if (err)
		return err;
	t = mmsb__map_get(&s->pages, target);
	src = mmsb__map_get(&s->pages, source);
	if (!t || !src) {
		err = -MMSB_ERR_PAGE_NOT_FOUND;
	} else if (!fn && t->size != src->size) {
		err = -MMSB_ERR_SIZE_MISMATCH;
	} else {
		t->recompute = NULL;
		t->pt_source = source;
		t->pt_fn = fn;
		t->pt_ctx = ctx;
		t->has_sig = false;
	}
	mmsb__unlock(s);
	return err;
}

int mmsb_propagate_set_deferred(struct mmsb_state *s, bool deferred)
{
	MMSB_API_GATE(mmsb_propagate_set_deferred, s, deferred);
	int err;

	if (!s)
		return -EINVAL;
	err = mmsb__lock_mut(s);
	if (err)
		return err;
	s->deferred = deferred;
	mmsb__unlock(s);
	return 0;
}

int mmsb_propagate(struct mmsb_state *s, const uint64_t *changed, size_t n)
{
	MMSB_API_GATE(mmsb_propagate, s, changed, n);
	struct mmsb_page **v;
	int err;

	if (!s || (n && !changed))
		return -EINVAL;
	v = malloc((n ? n : 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	err = mmsb__lock_mut(s);
	if (err) {
		free(v);
		return err;
	}
	for (size_t i = 0; i < n && !err; i++)
		if (!(v[i] = mmsb__map_get(&s->pages, changed[i])))
			err = -MMSB_ERR_PAGE_NOT_FOUND;
	if (!err)
		err = mmsb__wave(s, v, n, NULL, 0);
	err = mmsb__finish(s, err);
	mmsb__unlock(s);
	free(v);
	return err;
}

int mmsb_propagate_run(struct mmsb_state *s)
{
	MMSB_API_GATE(mmsb_propagate_run, s);
	struct mmsb_page **v = NULL;
	size_t n = 0;
	int err;

	if (!s)
		return -EINVAL;
	err = mmsb__lock_mut(s);
	if (err)
		return err;
	if (!s->n_queue)
		goto out;
	v = malloc(s->n_queue * sizeof(*v));
	if (!v) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < s->n_queue; i++) {
		struct mmsb_page *p = mmsb__map_get(&s->pages, s->queue[i]);

		if (p) {
			p->queued = false;
			v[n++] = p;
		}
	}
	s->n_queue = 0;
	/* the queued pages and everything their changes reach, in one immediate wave */
	err = wave(s, NULL, 0, v, n, false);
	err = mmsb__finish(s, err);
out:
	mmsb__unlock(s);
	free(v);
	return err;
}

size_t mmsb_propagate_pending(struct mmsb_state *s)
{
	MMSB_API_GATE(mmsb_propagate_pending, s);
	size_t n;

	if (!s)
		return 0;
	mmsb__lock(s);
	n = s->n_queue;
	mmsb__unlock(s);
	return n;
}

int mmsb_page_recompute(struct mmsb_state *s, uint64_t id)
{
	MMSB_API_GATE(mmsb_page_recompute, s, id);
	struct mmsb_page *p;
	int err, ret;

	err = mmsb__lock_page(s, id, true, &p);
	if (err)
		return err;
	err = recompute_one(s, p);
	if (err > 0) {
		int werr = mmsb__wave(s, &p, 1, NULL, 0);

		mmsb__emit(s, MMSB_EV_PAGE_CHANGED, p->id, 0, p->epoch);
		err = werr ? werr : 1;
	}
	ret = mmsb__finish(s, err < 0 ? err : 0);
	mmsb__unlock(s);
	return ret ? ret : err;
}
