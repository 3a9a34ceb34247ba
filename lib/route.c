// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Routing: the update and route entry points. Each checks its input, commits its deltas
 * (commit.c) and runs one propagation wave over the pages they changed.
 */
#include <string.h>

#include "mmsb_internal.h"
#include "probes.h"

/*
 * Inlined into each entry point, so that a sampled stack names mmsb_page_update() or
 * mmsb_page_write() and not a shared helper the call jumped to (tests/test_trace_syms.sh).
 * Write len bytes at offset of page id (whole: the write must be the whole page), diffed against
 * the bytes it replaces: only those bytes are read, diffed, logged, applied and saved for an
 * undo, so the cost is the write's, whatever the page's size. 1 when a delta was routed, 0 when
 * the bytes were unchanged, or an error with nothing changed.
 */
static inline __attribute__((always_inline)) int update_range(struct mmsb_state *s, uint64_t id,
							      uint64_t offset, const void *data,
							      size_t len, bool whole)
{
	struct mmsb_delta d = { 0 };
	struct mmsb_page *p;
	uint8_t *scratch;
	uint64_t t0;
	int err;

	if (!s || (len && !data))
		return -EINVAL;
	err = mmsb__lock_mut(s);
	if (err)
		return err;
	MMSB_TRACE(UPDATE_BEGIN, id, len);
	t0 = mmsb__now_ns(CLOCK_MONOTONIC);
	p = mmsb__map_get(&s->pages, id);
	if (!p) {
		err = -MMSB_ERR_PAGE_NOT_FOUND;
		goto out;
	}
	if (whole ? len != p->size : offset > p->size || len > p->size - offset) {
		err = -MMSB_ERR_SIZE_MISMATCH;
		goto out;
	}
	if (!len)
		goto out; /* an empty range changes nothing */
	/* the mask, room for a sparse payload of up to half the bytes, the packed mask */
	scratch = mmsb__diff_scratch(len) ? mmsb__scratch(s, mmsb__diff_scratch(len)) : NULL;
	if (!scratch) {
		err = -ENOMEM;
		goto out;
	}
	err = mmsb__page_host(p);
	if (err)
		goto out;
	/* the packed mask is for the log's frame: without a log, no packing */
	if (!mmsb__delta_diff(&d, p->data + offset, data, len, scratch, scratch + len,
			      s->log ? scratch + len + len / 2 + 1 : NULL))
		goto out; /* unchanged: no delta, no epoch */
	d.page_id = id;
	d.offset = offset;
	d.source = (char *)"api";
	d.timestamp = mmsb__now_ns(CLOCK_REALTIME);
	err = mmsb__commit_traced(s, p, &d, false);
	s->st.delta_ns += mmsb__now_ns(CLOCK_MONOTONIC) - t0;
	if (!err) {
		err = mmsb__wave(s, &p, 1, NULL, 0);
		mmsb__emit(s, MMSB_EV_PAGE_CHANGED, id, 0, p->epoch);
	}
	/* the call's one commit: the delta's own frame too when a wave followed it */
	err = mmsb__finish(s, err);
	if (!err)
		err = 1;
out:
	MMSB_TRACE(UPDATE_END, id, d.mask_count, err < 0 ? err : 0);
	mmsb__unlock(s);
	return err;
}

int mmsb_page_update(struct mmsb_state *s, uint64_t id, const void *data, size_t len)
{
	MMSB_API_GATE(mmsb_page_update, s, id, data, len);
	return update_range(s, id, 0, data, len, true);
}

int mmsb_page_write(struct mmsb_state *s, uint64_t id, uint64_t offset, const void *data,
		    size_t len)
{
	MMSB_API_GATE(mmsb_page_write, s, id, offset, data, len);
	return update_range(s, id, offset, data, len, false);
}

/* A batch's page arrays (its n pages, then the changed ones) and the state's lock. */
static int batch_open(struct mmsb_state *s, size_t n, struct mmsb_page ***pages)
{
	int err;

	if (n > SIZE_MAX / (2 * sizeof(**pages)))
		return -ENOMEM;
	*pages = malloc(2 * n * sizeof(**pages));
	if (!*pages)
		return -ENOMEM;
	err = mmsb__lock_mut(s);
	if (err) {
		free(*pages);
		*pages = NULL;
	}
	return err;
}

/*
 * Stamp and frame the next delta of a batch for page p, whose earlier deltas in the batch are
 * staged too (p->mark == gen): ids from base on, epochs counted per page. Nothing is applied.
 */
static int stage(struct mmsb_state *s, struct mmsb_page *p, struct mmsb_delta *d, uint64_t gen,
		 uint64_t id)
{
	if (p->mark != gen) {
		p->mark = gen;
		p->stage_epoch = p->epoch;
		p->stage_data = NULL;
	}
	if (id > MMSB_ID_MAX || p->stage_epoch == UINT32_MAX)
		return -ERANGE;
	d->id = id;
	d->epoch = ++p->stage_epoch;
	return s->log ? mmsb__log_buffer(s->log, d) : 0;
}

/*
 * A whole-page write applied on the device: the host copy is the write itself, so it is made
 * current too, and the page's next write in the batch is diffed without a download.
 */
static void keep_host(struct mmsb_page *p, const void *data)
{
	if (!p->dev || (p->coh & MMSB_COH_HOST))
		return;
	memcpy(p->data, data, p->size);
	p->coh |= MMSB_COH_HOST;
}

/* One wave over the pages a batch changed, their events, and the state's verdict on it all. */
static int batch_wave(struct mmsb_state *s, struct mmsb_page **changed, size_t n_changed, int err)
{
	if (!err)
		err = mmsb__wave(s, changed, n_changed, NULL, 0);
	for (size_t i = 0; i < n_changed; i++)
		mmsb__emit(s, MMSB_EV_PAGE_CHANGED, changed[i]->id, 0, changed[i]->epoch);
	return mmsb__finish(s, err);
}

int mmsb_page_update_batch(struct mmsb_state *s, const struct mmsb_page_write *w, size_t n)
{
	MMSB_API_GATE(mmsb_page_update_batch, s, w, n);
	struct mmsb_page **pages, **changed;
	size_t n_changed = 0, max = 0;
	int err = 0, writes = 0;
	uint64_t gen, t0;
	uint8_t *scratch;

	if (!s || (n && !w))
		return -EINVAL;
	if (!n)
		return 0;
	err = batch_open(s, n, &pages);
	if (err)
		return err;
	changed = pages + n;
	MMSB_TRACE(ROUTE_BATCH_BEGIN, n);
	t0 = mmsb__now_ns(CLOCK_MONOTONIC);
	/* check the whole batch before the first byte changes */
	for (size_t i = 0; i < n; i++) {
		pages[i] = mmsb__map_get(&s->pages, w[i].id);
		if (!pages[i]) {
			err = -MMSB_ERR_PAGE_NOT_FOUND;
			goto out;
		}
		if (w[i].len != pages[i]->size || (w[i].len && !w[i].data)) {
			err = w[i].len != pages[i]->size ? -MMSB_ERR_SIZE_MISMATCH : -EINVAL;
			goto out;
		}
		if (w[i].len > max)
			max = w[i].len;
	}
	scratch = mmsb__diff_scratch(max) ? mmsb__scratch(s, mmsb__diff_scratch(max)) : NULL;
	if (!scratch) {
		err = -ENOMEM;
		goto out;
	}
	if (s->log) {
		/* each write diffed against the one before it on its page, as the apply will be */
		struct mmsb_log_mark mark = mmsb__log_mark(s->log);
		uint64_t id = s->next_delta_id;

		gen = ++s->mark_gen;
		for (size_t i = 0; i < n && !err; i++) {
			struct mmsb_page *p = pages[i];
			struct mmsb_delta d = { 0 };

			if (p->mark != gen && (err = mmsb__page_host(p)))
				break;
			if (!mmsb__delta_diff(
				    &d, p->mark == gen && p->stage_data ? p->stage_data : p->data,
				    w[i].data, w[i].len, scratch, scratch + w[i].len,
				    scratch + w[i].len + w[i].len / 2 + 1))
				continue;
			d.page_id = w[i].id;
			d.source = (char *)"api";
			d.timestamp = mmsb__now_ns(CLOCK_REALTIME);
			err = stage(s, p, &d, gen, id++);
			p->stage_data = w[i].data;
		}
		err = mmsb__commit_staged(s, pages, n, gen, mark, err);
		if (err)
			goto out;
	}
	/*
	 * Each write against the one before it on its page (the page itself for its first), as it
	 * was staged: the same deltas, ids and epochs in the same order. With a log nothing here needs
	 * a download: staging fetched every page's host copy, and a write applied on the device
	 * leaves the host copy current too (keep_host()). Should an apply fail all the same once the
	 * frames are committed, the rest of the batch's ids and epochs are still spent, so the next
	 * delta never repeats one the log holds.
	 */
	gen = ++s->mark_gen;
	for (size_t i = 0; i < n; i++) {
		struct mmsb_page *p = pages[i];
		struct mmsb_delta d = { 0 };
		bool first;

		if (p->mark != gen) {
			p->mark = gen;
			p->stage_data = NULL;
		}
		first = !p->stage_data;
		if (!s->log && (err = mmsb__page_host(p)))
			break;
		if (!mmsb__delta_diff(&d, first ? p->data : p->stage_data, w[i].data, w[i].len,
				      scratch, scratch + w[i].len, NULL))
			continue;
		p->stage_data = w[i].data;
		if (err) {
			/* framed and committed, not applied: its id and epoch are spent all the same */
			s->next_delta_id++;
			p->epoch++;
			continue;
		}
		d.page_id = w[i].id;
		d.source = (char *)"api";
		d.timestamp = mmsb__now_ns(CLOCK_REALTIME);
		if (s->log) {
			/* framed above: the same delta, its id and epoch in sequence */
			MMSB_TRACE(DELTA_APPLY_BEGIN, p->id, s->next_delta_id, d.mask_count);
			d.id = s->next_delta_id;
			d.epoch = p->epoch + 1;
			err = mmsb__apply_logged(s, p, &d);
			MMSB_TRACE(DELTA_APPLY_END, p->id, p->epoch, d.mask_count);
		} else {
			err = mmsb__commit_traced(s, p, &d, false);
		}
		if (err && !s->log)
			break;
		if (err)
			continue; /* apply_logged spent this one's id and epoch */
		keep_host(p, w[i].data);
		writes++;
		if (first)
			changed[n_changed++] = p;
	}
	s->st.delta_ns += mmsb__now_ns(CLOCK_MONOTONIC) - t0;
	err = batch_wave(s, changed, n_changed, err);
out:
	MMSB_TRACE(ROUTE_BATCH_END, n, n_changed, err);
	mmsb__unlock(s);
	free(pages);
	return err ? err : writes;
}

int mmsb_route(struct mmsb_state *s, struct mmsb_delta *d)
{
	MMSB_API_GATE(mmsb_route, s, d);
	struct mmsb_page *p;
	uint64_t t0;
	int err;

	if (!s || !d)
		return -EINVAL;
	err = mmsb__delta_validate(d);
	if (err)
		return err;
	err = mmsb__lock_page(s, d->page_id, true, &p);
	if (err)
		return err;
	t0 = mmsb__now_ns(CLOCK_MONOTONIC);
	err = mmsb__commit_traced(s, p, d, false);
	s->st.delta_ns += mmsb__now_ns(CLOCK_MONOTONIC) - t0;
	if (!err) {
		err = mmsb__wave(s, &p, 1, NULL, 0);
		mmsb__emit(s, MMSB_EV_PAGE_CHANGED, p->id, 0, p->epoch);
	}
	/* the call's one commit: the delta's own frame too when a wave followed it */
	err = mmsb__finish(s, err);
	mmsb__unlock(s);
	return err;
}

int mmsb_route_batch(struct mmsb_state *s, struct mmsb_delta *const *ds, size_t n)
{
	MMSB_API_GATE(mmsb_route_batch, s, ds, n);
	struct mmsb_page **pages, **changed;
	struct mmsb_log_mark mark = { 0 };
	size_t n_changed = 0;
	uint64_t gen, t0;
	bool on_gpu;
	int err;

	if (!s || (n && !ds))
		return -EINVAL;
	if (!n)
		return 0;
	err = batch_open(s, n, &pages);
	if (err)
		return err;
	changed = pages + n;
	if (s->log)
		mark = mmsb__log_mark(s->log);
	MMSB_TRACE(ROUTE_BATCH_BEGIN, n);
	t0 = mmsb__now_ns(CLOCK_MONOTONIC);
	/* validate the whole batch before the first byte changes */
	for (size_t i = 0; i < n; i++) {
		if (!ds[i]) {
			err = -EINVAL;
			goto out;
		}
		err = mmsb__delta_validate(ds[i]);
		if (err)
			goto out;
		pages[i] = mmsb__map_get(&s->pages, ds[i]->page_id);
		if (!pages[i]) {
			err = -MMSB_ERR_PAGE_NOT_FOUND;
			goto out;
		}
	}
	/* GPU pages in a batch the router sends to the device: their bytes in one launch */
	on_gpu = mmsb__batch_on_gpu(pages, ds, n);
	/*
	 * Input order keeps each page's deltas in order; pages are independent, so this is the
	 * same as grouping by page first. A page's first delta routed alone has the copy it writes
	 * made current before the batch is logged: a download that fails logs nothing.
	 */
	gen = ++s->mark_gen;
	for (size_t i = 0; i < n && !err; i++) {
		if (!on_gpu && pages[i]->mark != gen)
			err = mmsb__apply_prepare(pages[i], ds[i]);
		if (!err)
			err = stage(s, pages[i], ds[i], gen, s->next_delta_id + i);
	}
	if (s->log)
		err = mmsb__commit_staged(s, pages, n, gen, mark, err);
	if (err)
		goto out;
	err = mmsb__apply_batch(s, pages, ds, n, on_gpu, changed, &n_changed);
	s->st.delta_ns += mmsb__now_ns(CLOCK_MONOTONIC) - t0;
	err = batch_wave(s, changed, n_changed, err);
out:
	MMSB_TRACE(ROUTE_BATCH_END, n, n_changed, err);
	mmsb__unlock(s);
	free(pages);
	return err;
}
