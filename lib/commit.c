// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The commit path: a delta is logged, then applied, counted and announced. Routing, propagation
 * and the engine come down here; this file goes down to the log, the pages' bytes, the GPU tier
 * and the state's events, and never back up.
 *
 * The order is the invariant: whatever may fail without the page changing (the log write, a
 * download of a GPU page's host mirror) happens before the page changes, so a failed commit
 * leaves the page as it was in every durability mode.
 */
#include <string.h>

#include "mmsb_internal.h"
#include "probes.h"

/* ---- apply: the bytes of a validated delta on the copy of the page that takes them ---- */

/* The bytes d writes among a page's first n (n <= d->mask_len): its set mask positions there. */
static inline size_t delta_written(const struct mmsb_delta *d, size_t n)
{
	return n == d->mask_len ? d->mask_count : mmsb__popcount_bytes(d->mask, n);
}

/* The mask entries of d that fall inside p: from its offset, up to the page's end. */
static inline size_t delta_span(const struct mmsb_page *p, const struct mmsb_delta *d)
{
	return d->offset >= p->size ? 0 : min_t(size_t, d->mask_len, p->size - d->offset);
}

static size_t cpu_apply(struct mmsb_page *p, const struct mmsb_delta *d, size_t n)
{
	uint8_t *dst = p->data + (n ? d->offset : 0);

	if (d->sparse)
		return mmsb__scatter(dst, d->payload, d->mask, n);
	if (d->mask_count == d->mask_len) {
		/* a full mask is a copy */
		memcpy(dst, d->payload, n);
		return n;
	}
	if (d->whole) {
		/* a diff against these very bytes: where the mask is clear they are equal already */
		memcpy(dst, d->payload, n);
		return d->mask_count;
	}
	mmsb__blend(dst, d->payload, d->mask, n);
	/* bytes written: the set positions inside the page */
	return delta_written(d, n);
}

/* d on a GPU page's host mirror (fetched first when stale), which becomes the current copy. */
static int apply_host(struct mmsb_page *p, const struct mmsb_delta *d, size_t *bytes)
{
	int err = mmsb__page_host(p);

	if (err)
		return err;
	*bytes = cpu_apply(p, d, delta_span(p, d));
	if (p->dev)
		p->coh = MMSB_COH_HOST;
	return 0;
}

int mmsb__apply_bytes(struct mmsb_page *p, const struct mmsb_delta *d, size_t *bytes)
{
	size_t n = delta_span(p, d), w;
	bool dev;
	int err;

	/* the device kernels write from byte 0: a range write goes to the host copy */
	if (!p->dev || d->offset) {
		if (p->dev)
			return apply_host(p, d, bytes);
		*bytes = cpu_apply(p, d, n);
		return 0;
	}
	/*
	 * A GPU page: the router's side; an apply the device fails is done on the host instead, and
	 * one whose host copy cannot be fetched on the device, whose copy is current then: in a
	 * logged batch the frame is already durable, so the page takes it if either side can.
	 */
	w = delta_written(d, n);
	dev = mmsb__gpu_route(p, w);
	if (dev && !mmsb__gpu_apply(p, d, n, w)) {
		*bytes = w;
		return 0;
	}
	err = apply_host(p, d, bytes);
	if (err && !dev && (p->coh & MMSB_COH_DEV) && !mmsb__gpu_apply(p, d, n, w)) {
		*bytes = w;
		return 0;
	}
	return err;
}

int mmsb__apply(struct mmsb_page *p, const struct mmsb_delta *d, size_t *bytes)
{
	int err = mmsb__apply_bytes(p, d, bytes);

	if (!err)
		p->epoch++;
	return err;
}

int mmsb__apply_prepare(struct mmsb_page *p, const struct mmsb_delta *d)
{
	size_t w;

	if (!p->dev)
		return 0;
	if (d->offset)
		return mmsb__page_host(p); /* applied on the host: mmsb__apply_bytes() */
	/* the router's side, asked as the apply will ask it; the host when the upload fails */
	w = delta_written(d, delta_span(p, d));
	if (mmsb__gpu_prefer(p->size, w, 1) && !mmsb__gpu_upload(p))
		return 0;
	return mmsb__page_host(p);
}

/* ---- undo: the pages a call changed before its frames were durable ---- */

/* Drop the undo entries from n on (their pages stay as they are). */
static void undo_cut(struct mmsb_state *s, size_t n)
{
	for (size_t i = n; i < s->n_undo; i++)
		free(s->undo[i].data);
	s->n_undo = n;
}

/*
 * Save the bytes [off, off + len) of a page before a change whose frame is not durable yet, for a
 * failed commit to restore: a range write saves its range, not its page.
 */
static int undo_push(struct mmsb_state *s, struct mmsb_page *p, size_t off, size_t len)
{
	uint8_t *copy;
	int err = mmsb__page_host(p);

	if (err)
		return err;
	if (mmsb__grow((void **)&s->undo, &s->cap_undo, s->n_undo + 1, sizeof(*s->undo)))
		return -ENOMEM;
	copy = malloc(len ? len : 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, p->data + off, len); /* the host copy is current: fetched above */
	if (!s->n_undo)
		s->undo_next_delta_id = s->next_delta_id;
	s->undo[s->n_undo++] = (struct mmsb_undo){ p, p->epoch, off, len, copy };
	return 0;
}

/*
 * A wave follows a change to p and frames deltas of its own: p has a data child and propagation
 * is immediate (a deferred state only queues the children).
 */
static bool wave_follows(const struct mmsb_state *s, const struct mmsb_page *p)
{
	if (s->deferred)
		return false;
	for (uint32_t i = 0; i < p->children.n; i++)
		if (p->children.v[i].type == MMSB_EDGE_DATA)
			return true;
	return false;
}

int mmsb__finish(struct mmsb_state *s, int err)
{
	int cerr = s->log ? mmsb__log_commit(s->log) : 0;

	/*
	 * The log lost this call's frames that were not durable yet (the writer cut them and is
	 * disabled): the pages they changed go back, newest first, so memory is what the log holds.
	 * Their children's recompute signatures name epochs that are given back too: forgotten.
	 */
	for (size_t i = s->n_undo; cerr && i-- > 0;) {
		struct mmsb_undo *u = &s->undo[i];

		memcpy(u->p->data + u->off, u->data, u->len);
		mmsb__gpu_host_written(u->p);
		u->p->epoch = u->epoch;
		u->p->has_sig = false; /* its parents changed under it: recompute next time */
		for (uint32_t e = 0; e < u->p->children.n; e++)
			u->p->children.v[e].peer->has_sig = false;
		if (!i)
			s->next_delta_id = s->undo_next_delta_id;
	}
	undo_cut(s, 0);
	return err ? err : cerr;
}

/* ---- commit ---- */

enum apply_how {
	APPLY_ROUTED, /* the router picks the side */
	APPLY_HOST,   /* a batched launch failed: the host mirror */
	APPLY_DONE,   /* a batched launch wrote the bytes */
};

/*
 * After d's frame: the bytes, the epoch, the statistics, the event. A failure here is the device
 * failing an apply and then the download its host fallback needed (mmsb__apply_prepare() made the
 * chosen copy current, so nothing else needs a transfer): the error is returned without the event.
 * When a log holds the frame, its id and epoch are spent all the same, so the next delta never
 * repeats them; the log, not memory, then has the page's bytes.
 */
static int apply_logged(struct mmsb_state *s, struct mmsb_page *p, const struct mmsb_delta *d,
			enum apply_how how)
{
	size_t bytes = 0;
	int err = 0;

	if (how == APPLY_ROUTED)
		err = mmsb__apply_bytes(p, d, &bytes);
	else if (how == APPLY_HOST)
		err = apply_host(p, d, &bytes);
	else
		bytes = delta_written(d, delta_span(p, d));
	if (err && !s->log)
		return err;
	p->epoch++;
	s->next_delta_id = d->id + 1;
	if (err)
		return err;
	s->st.delta_bytes += bytes;
	s->st.deltas_applied++;
	mmsb__emit(s, MMSB_EV_DELTA_APPLIED, p->id, d->id, p->epoch);
	return 0;
}

int mmsb__apply_logged(struct mmsb_state *s, struct mmsb_page *p, const struct mmsb_delta *d)
{
	return apply_logged(s, p, d, APPLY_ROUTED);
}

/*
 * Log d and apply it. The caller's own delta is committed as the policy says (written and
 * synced under batch and every, the threshold write under none) before the page changes: a
 * failed write leaves it untouched. A derived one (propagation, mid-wave) is framed and its page
 * saved; mmsb__finish() commits the wave's frames at once and undoes the pages if that fails.
 * Under batch and none a caller's delta to a page a wave follows is treated as the wave's: one
 * write (and under batch one fdatasync) for the whole call, the page undone with the others.
 * Under every it stays synced before it is applied, as that policy promises.
 */
static int commit(struct mmsb_state *s, struct mmsb_page *p, struct mmsb_delta *d, bool derived)
{
	struct mmsb_log_mark mark;
	int err;

	/* neither counter wraps: a log holding a wrapped one would not replay */
	if (s->next_delta_id > MMSB_ID_MAX || p->epoch == UINT32_MAX)
		return -ERANGE;
	err = mmsb__apply_prepare(p, d);
	if (err)
		return err;
	d->id = s->next_delta_id;
	d->epoch = p->epoch + 1;
	if (s->log) {
		mark = mmsb__log_mark(s->log);
		err = mmsb__log_buffer(s->log, d);
		if (err)
			return err;
		bool later = mmsb__log_durability(s->log) != MMSB_DURABLE_EVERY &&
			     (derived || wave_follows(s, p));

		if (!later)
			err = mmsb__log_commit_batch(s->log);
		else if ((err = undo_push(s, p, delta_span(p, d) ? d->offset : 0,
					  delta_span(p, d))))
			mmsb__log_rollback(s->log, mark);
		if (err)
			return err;
	}
	return apply_logged(s, p, d, APPLY_ROUTED);
}

int mmsb__commit_staged(struct mmsb_state *s, struct mmsb_page **pages, size_t n, uint64_t gen,
			struct mmsb_log_mark mark, int err)
{
	size_t n0 = s->n_undo, i;
	bool later = false;
	uint64_t done;

	if (err)
		goto fail;
	for (i = 0; i < n && mmsb__log_durability(s->log) != MMSB_DURABLE_EVERY && !later; i++)
		later = pages[i]->mark == gen && wave_follows(s, pages[i]);
	if (!later)
		return mmsb__log_commit_batch(s->log);
	/* each page holding a frame saved once, before its first byte changes */
	done = ++s->mark_gen;
	for (i = 0; i < n && !err; i++)
		if (pages[i]->mark == gen) {
			pages[i]->mark = done;
			err = undo_push(s, pages[i], 0, pages[i]->size);
		}
	if (!err)
		return 0;
	undo_cut(s, n0);
fail:
	mmsb__log_rollback(s->log, mark);
	return err;
}

/* One delta, as its own span: route, update and recompute (batches have a span of their own). */
int mmsb__commit_traced(struct mmsb_state *s, struct mmsb_page *p, struct mmsb_delta *d,
			bool derived)
{
	uint64_t before = s->st.delta_bytes;
	int err;

	MMSB_TRACE(DELTA_APPLY_BEGIN, p->id, s->next_delta_id, d->mask_count);
	err = commit(s, p, d, derived);
	MMSB_TRACE(DELTA_APPLY_END, p->id, p->epoch, s->st.delta_bytes - before);
	return err;
}

/* ---- batches ---- */

bool mmsb__batch_on_gpu(struct mmsb_page **pages, struct mmsb_delta *const *ds, size_t n)
{
	size_t gpu = 0, size = 0, changed = 0;

	for (size_t i = 0; i < n; i++) {
		if (pages[i]->dev && ds[i]->offset)
			return false; /* a range write: the host applies it, the batch stays there */
		if (pages[i]->dev) {
			gpu++;
			size += pages[i]->size;
			changed += ds[i]->mask_count;
		}
	}
	return gpu && mmsb__gpu_prefer(size / gpu, changed / gpu, gpu);
}

int mmsb__apply_batch(struct mmsb_state *s, struct mmsb_page **pages, struct mmsb_delta *const *ds,
		      size_t n, bool on_gpu, struct mmsb_page **changed, size_t *n_changed)
{
	enum apply_how gpu = APPLY_ROUTED;
	uint64_t gen = ++s->mark_gen, failed = 0;
	int err = 0, e;

	/* the launch first, so no DELTA_APPLIED of a GPU page comes before its bytes */
	if (on_gpu)
		gpu = mmsb__gpu_apply_batch(pages, ds, n) ? APPLY_HOST : APPLY_DONE;
	for (size_t i = 0; i < n; i++) {
		struct mmsb_page *p = pages[i];

		if (failed && p->mark == failed) {
			/* logged after a delta its page failed: not applied, its id and epoch spent */
			p->epoch = ds[i]->epoch;
			s->next_delta_id = ds[i]->id + 1;
			continue;
		}
		e = apply_logged(s, p, ds[i], p->dev ? gpu : APPLY_ROUTED);
		if (e && !s->log)
			return e; /* nothing logged: nothing to keep in step with */
		if (e) {
			/*
			 * The frames are committed: the other pages' deltas are applied still, and
			 * this page's later ones spend their ids and epochs, so none is used again.
			 */
			err = err ? err : e;
			if (!failed)
				failed = ++s->mark_gen;
			p->mark = failed;
			continue;
		}
		if (p->mark != gen) {
			p->mark = gen;
			changed[(*n_changed)++] = p;
		}
	}
	return err;
}
