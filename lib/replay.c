// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Replay a log (optionally on top of a checkpoint) into a detached state; compare states. */
#include <math.h>
#include <string.h>

#include "mmsb_internal.h"
#include "probes.h"

static int seed_from_template(struct mmsb_state *t, struct mmsb_state *tpl)
{
	struct mmsb_page **v;
	size_t n;
	int err = 0;

	mmsb__lock(tpl);
	v = mmsb__map_sorted(&tpl->pages, &n);
	for (size_t i = 0; v && i < n && !err; i++)
		err = mmsb__page_insert(t, v[i]->id, v[i]->size, v[i]->location, false);
	mmsb__unlock(tpl);
	free(v);
	return v ? err : -ENOMEM;
}

static int replay_record(struct mmsb_state *t, const struct mmsb_log_record *rec, int version,
			 const struct mmsb_replay_opts *o)
{
	struct mmsb_page *p;
	size_t bytes;
	int err;

	switch (rec->kind) {
	case MMSB_REC_PAGE_CREATE: {
		/* a GPU page replays into host memory where there is no GPU tier, as checkpoints do */
		int loc = rec->location == MMSB_LOC_GPU && !mmsb__gpu() ? MMSB_LOC_CPU :
									  rec->location;
		err = mmsb__page_insert(t, rec->page_id, rec->page_size, loc, false);
		return err == -EEXIST ? -MMSB_ERR_CORRUPT : err;
	}
	case MMSB_REC_PAGE_FREE:
		p = mmsb__map_get(&t->pages, rec->page_id);
		if (!p)
			return -MMSB_ERR_PAGE_NOT_FOUND;
		mmsb__edges_drop(t, p);
		mmsb__map_del(&t->pages, p->id);
		mmsb__page_destroy(p);
		return 0;
	case MMSB_REC_DELTA:
		break;
	}
	if (OPTS_GET(o, to_epoch, 0) && rec->delta->epoch > o->to_epoch)
		return 0;
	p = mmsb__map_get(&t->pages, rec->page_id);
	if (!p)
		/* v1/v2 logs never said which pages existed: the original skipped such deltas */
		return version == 3 ? -MMSB_ERR_PAGE_NOT_FOUND : 0;
	err = mmsb__apply(p, rec->delta, &bytes);
	if (err)
		return err;
	/* v3 records the epoch each delta produced; a complete history reproduces it exactly */
	if (version == 3)
		p->epoch = rec->delta->epoch;
	if (rec->delta->id >= t->next_delta_id)
		t->next_delta_id = rec->delta->id + 1;
	t->st.deltas_applied++;
	return 0;
}

/* r's records after LSN after (v3; every record of v1/v2) onto t. */
static int replay_records(struct mmsb_state *t, struct mmsb_log_reader *r, int version,
			  uint64_t after, const struct mmsb_replay_opts *o, uint64_t *records)
{
	struct mmsb_log_record rec;
	int err;

	while ((err = mmsb__log_reader_next(r, &rec)) > 0) {
		if (version == 3 && rec.lsn <= after)
			continue; /* already in the checkpoint */
		if (OPTS_GET(o, to_lsn, 0) && rec.lsn > o->to_lsn)
			break;
		if (OPTS_GET(o, to_timestamp, 0) && rec.timestamp > o->to_timestamp)
			continue;
		err = replay_record(t, &rec, version, o);
		if (err)
			break;
		(*records)++;
	}
	return err < 0 ? err : 0;
}

int mmsb__replay_tail(struct mmsb_state *t, const char *log_path, uint64_t log_id, uint64_t after)
{
	struct mmsb_log_reader *r = mmsb__log_reader_open(log_path);
	uint64_t records = 0;
	int err;

	if (!r)
		return -errno;
	if (mmsb__log_reader_version(r) != 3 || mmsb__log_reader_log_id(r) != log_id)
		err = -MMSB_ERR_LOG_FOREIGN;
	else
		err = replay_records(t, r, 3, after, NULL, &records);
	mmsb__log_reader_close(r);
	return err;
}

static struct mmsb_state *replay(const char *log_path, const struct mmsb_replay_opts *o,
				 uint64_t *records)
{
	struct mmsb_checkpoint_info info = { 0 };
	struct mmsb_log_reader *r;
	struct mmsb_state *t = NULL;
	int err, version;

	if (!log_path || !OPTS_VALID(o, mmsb_replay_opts))
		return mmsb__err_ptr(-EINVAL);
	r = mmsb__log_reader_open(log_path);
	if (!r)
		return NULL;
	version = mmsb__log_reader_version(r);
	if (OPTS_GET(o, checkpoint, NULL)) {
		err = mmsb__checkpoint_parse(o->checkpoint, &t, &info);
		if (err)
			goto fail;
		if (info.log_id && version == 3 && info.log_id != mmsb__log_reader_log_id(r)) {
			err = -MMSB_ERR_LOG_FOREIGN;
			goto fail;
		}
	} else {
		t = mmsb__state_new();
		if (!t) {
			err = -ENOMEM;
			goto fail;
		}
		if (version != 3 && OPTS_GET(o, template_state, NULL)) {
			err = seed_from_template(t, o->template_state);
			if (err)
				goto fail;
		}
	}
	err = replay_records(t, r, version, info.log_lsn, o, records);
	if (err)
		goto fail;
	mmsb__log_reader_close(r);
	return t;
fail:
	mmsb__log_reader_close(r);
	mmsb__state_close(t);
	return mmsb__err_ptr(err);
}

struct mmsb_state *mmsb__replay(const char *log_path, const struct mmsb_replay_opts *o)
{
	uint64_t records = 0;
	struct mmsb_state *t;

	MMSB_TRACE(REPLAY_BEGIN, log_path);
	t = replay(log_path, o, &records);
	MMSB_TRACE(REPLAY_END, records, t ? 0 : -errno);
	return t;
}

struct mmsb_state *mmsb_replay(const char *log_path, const struct mmsb_replay_opts *o)
{
	MMSB_API_GATE(mmsb_replay, log_path, o);
	return mmsb__replay(log_path, o);
}

static int state_diverge(struct mmsb_state *a, struct mmsb_state *b, struct mmsb_divergence *out)
{
	struct mmsb_page *p, *q;
	double sum = 0;
	size_t i;

	if (!a || !b || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	mmsb__lock(a);
	if (a != b)
		mmsb__lock(b);
	mmsb__map_for_each(&a->pages, i, p) {
		bool differs = false;

		q = mmsb__map_get(&b->pages, p->id);
		if (!q) {
			out->only_in_a++;
			continue;
		}
		out->pages_compared++;
		size_t n = min_t(size_t, p->size, q->size);
		int err = mmsb__page_host(p);

		if (err || (err = mmsb__page_host(q))) {
			if (a != b)
				mmsb__unlock(b);
			mmsb__unlock(a);
			return err;
		}

		for (size_t k = 0; k < n; k++) {
			int d = (int)p->data[k] - (int)q->data[k];

			if (!d)
				continue;
			differs = true;
			sum += (double)d * d;
			if ((uint32_t)abs(d) > out->max_delta)
				out->max_delta = (uint32_t)abs(d);
		}
		if (p->size != q->size) {
			double dl = (double)p->size - (double)q->size;

			differs = true;
			sum += dl * dl;
			out->max_delta = 255;
		}
		out->pages_differing += differs;
	}
	mmsb__map_for_each(&b->pages, i, q)
		if (!mmsb__map_get(&a->pages, q->id))
			out->only_in_b++;
	if (a != b)
		mmsb__unlock(b);
	mmsb__unlock(a);
	out->l2 = sqrt(sum);
	return 0;
}

int mmsb_state_diverge(struct mmsb_state *a, struct mmsb_state *b, struct mmsb_divergence *out)
{
	MMSB_API_GATE(mmsb_state_diverge, a, b, out);
	return state_diverge(a, b, out);
}

int mmsb_state_verify(struct mmsb_state *s, struct mmsb_divergence *out)
{
	MMSB_API_GATE(mmsb_state_verify, s, out);
	struct mmsb_divergence tmp;
	struct mmsb_state *t;
	char *path;
	int err;

	if (!s)
		return -EINVAL;
	if (!out)
		out = &tmp;
	mmsb__lock(s);
	if (!s->log) {
		mmsb__unlock(s);
		return -MMSB_ERR_NOT_LOGGED;
	}
	err = mmsb__log_flush(s->log);
	path = strdup(mmsb__log_path(s->log));
	mmsb__unlock(s);
	if (err || !path) {
		free(path);
		return err ? err : -ENOMEM;
	}
	t = mmsb__replay(path, NULL);
	free(path);
	if (!t)
		return -errno;
	err = state_diverge(s, t, out);
	mmsb__state_close(t);
	if (err)
		return err;
	return out->pages_differing || out->only_in_a || out->only_in_b ? 1 : 0;
}
