// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* State lifecycle, locking, events and statistics. */
#include <string.h>

#include "mmsb_internal.h"
#include "probes.h"

void mmsb__lock(struct mmsb_state *s)
{
	pthread_mutex_lock(&s->lock);
}

void mmsb__unlock(struct mmsb_state *s)
{
	pthread_mutex_unlock(&s->lock);
}

int mmsb__lock_mut(struct mmsb_state *s)
{
	pthread_mutex_lock(&s->lock);
	if (s->in_callback) {
		pthread_mutex_unlock(&s->lock);
		return -EDEADLK;
	}
	return 0;
}

int mmsb__lock_page(struct mmsb_state *s, uint64_t id, bool mut, struct mmsb_page **p)
{
	int err;

	if (!s)
		return -EINVAL;
	if (mut && (err = mmsb__lock_mut(s)))
		return err;
	if (!mut)
		mmsb__lock(s);
	*p = mmsb__map_get(&s->pages, id);
	if (*p)
		return 0;
	mmsb__unlock(s);
	return -MMSB_ERR_PAGE_NOT_FOUND;
}

uint8_t *mmsb__scratch(struct mmsb_state *s, size_t n)
{
	if (mmsb__grow((void **)&s->scratch, &s->scratch_cap, n ? n : 1, 1))
		return NULL;
	return s->scratch;
}

struct mmsb_state *mmsb__state_new(void)
{
	struct mmsb_state *s = calloc(1, sizeof(*s));
	pthread_mutexattr_t a;

	if (!s)
		return NULL;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&s->lock, &a);
	pthread_mutexattr_destroy(&a);
	s->next_page_id = 1;
	s->next_delta_id = 1;
	s->next_sub_id = 1;
	return s;
}

/*
 * A continued log must go on from the state it describes: its pages, bytes, epochs and id counters
 * are rebuilt by replaying it, so the next create cannot log a second PAGE_CREATE of page 1 and
 * the continued log still replays to the live state.
 */
static int restore_from_log(struct mmsb_state *s)
{
	struct mmsb_state *t;

	if (mmsb__log_next_lsn(s->log) == 1)
		return 0; /* a header and no records */
	t = mmsb__replay(mmsb__log_path(s->log), NULL);
	if (!t)
		return -errno;
	s->pages = t->pages;
	memset(&t->pages, 0, sizeof(t->pages));
	mmsb__gens_follow(s, t);
	s->next_page_id = t->next_page_id;
	s->next_delta_id = t->next_delta_id;
	s->graph_gen++;
	mmsb__state_close(t);
	return 0;
}

static struct mmsb_state *state_open(const struct mmsb_state_opts *opts)
{
	int loc = OPTS_GET(opts, default_location, MMSB_LOC_CPU);
	enum mmsb_durability dur = OPTS_GET(opts, durability, 0);
	enum mmsb_log_mode mode = OPTS_GET(opts, log_mode, 0);
	const char *path = OPTS_GET(opts, log_path, NULL);
	struct mmsb_state *s;
	int err;

	if (!OPTS_VALID(opts, mmsb_state_opts))
		return mmsb__err_ptr(-EINVAL);
	if (loc != MMSB_LOC_CPU && loc != MMSB_LOC_UNIFIED && loc != MMSB_LOC_GPU)
		return mmsb__err_ptr(-MMSB_ERR_BAD_LOCATION);
	if (dur > MMSB_DURABLE_EVERY || mode > MMSB_LOG_TRUNCATE)
		return mmsb__err_ptr(-EINVAL);
	s = mmsb__state_new();
	if (!s)
		return NULL;
	s->default_location = loc;
	s->deferred = OPTS_GET(opts, deferred, false);
	if (path) {
		err = mmsb__log_open(path, mode, dur, &s->log);
		if (!err && mode == MMSB_LOG_APPEND)
			err = restore_from_log(s);
		if (err) {
			mmsb__state_close(s);
			return mmsb__err_ptr(err);
		}
	}
	return s;
}

struct mmsb_state *mmsb_state_open(const struct mmsb_state_opts *opts)
{
	MMSB_API_GATE(mmsb_state_open, opts);
	struct mmsb_state *s;

	MMSB_TRACE(STATE_OPEN_BEGIN, OPTS_GET(opts, log_path, NULL));
	s = state_open(opts);
	/*
	 * A site a way out: one site for both made GCC share it with the failure paths' tail, and
	 * the success path paid a load, a test and a jump more than the site's compare and branch.
	 */
	if (s)
		MMSB_TRACE(STATE_OPEN_END, s, 0);
	else
		MMSB_TRACE(STATE_OPEN_END, s, -errno);
	return s;
}

/*
 * Everything a state holds, freed; traced: the public close, whose span ends before the last
 * free. Inlined into both closes, so that neither calls the other: an end probe after that call
 * kept a frame in mmsb_state_close(), 15 instructions a close, traced or not, where the gate and
 * the two sites are 6.
 */
static inline __attribute__((always_inline)) void state_free(struct mmsb_state *s, bool traced)
{
	size_t i;

	if (s->log) {
		int err = mmsb__log_flush(s->log);

		if (err)
			pr_warn("closing log %s: %s\n", mmsb__log_path(s->log),
				mmsb__strerror(err));
		mmsb__log_close(s->log);
	}
	mmsb__map_free(&s->pages);
	if (s->prov)
		for (i = 0; i < MMSB_PROV_SLOTS; i++)
			free(s->prov[i].ids);
	free(s->prov);
	free(s->queue);
	for (i = 0; i < s->n_undo; i++)
		free(s->undo[i].data);
	free(s->undo);
	free(s->subs);
	free(s->scratch);
	pthread_mutex_destroy(&s->lock);
	if (traced)
		MMSB_TRACE(STATE_CLOSE_END, s);
	free(s);
}

void mmsb__state_close(struct mmsb_state *s)
{
	if (s)
		state_free(s, false);
}

void mmsb_state_close(struct mmsb_state *s)
{
	MMSB_API_GATE(mmsb_state_close, s);

	if (!s)
		return;
	MMSB_TRACE(STATE_CLOSE_BEGIN, s, s->pages.n);
	state_free(s, true);
}

int mmsb_state_flush(struct mmsb_state *s)
{
	MMSB_API_GATE(mmsb_state_flush, s);
	int err;

	if (!s)
		return -EINVAL;
	mmsb__lock(s);
	err = s->log ? mmsb__log_flush(s->log) : 0;
	mmsb__unlock(s);
	return err;
}

int mmsb_state_counters(struct mmsb_state *s, struct mmsb_counters *out)
{
	MMSB_API_GATE(mmsb_state_counters, s, out);
	if (!s || !out)
		return -EINVAL;
	mmsb__lock(s);
	out->next_page_id = s->next_page_id;
	out->next_delta_id = s->next_delta_id;
	out->next_lsn = s->log ? mmsb__log_next_lsn(s->log) : 0;
	out->log_id = s->log ? mmsb__log_id(s->log) : 0;
	mmsb__unlock(s);
	return 0;
}

/* ---- events ---- */

int64_t mmsb_subscribe(struct mmsb_state *s, unsigned int mask, mmsb_event_filter_fn filter,
		       mmsb_event_fn fn, void *ctx)
{
	MMSB_API_GATE(mmsb_subscribe, s, mask, filter, fn, ctx);
	int64_t id;
	int err;

	if (!s || !fn || !mask || (mask & ~MMSB_EV_ALL))
		return -EINVAL;
	mmsb__lock(s);
	err = mmsb__grow((void **)&s->subs, &s->cap_subs, s->n_subs + 1, sizeof(*s->subs));
	if (err) {
		mmsb__unlock(s);
		return err;
	}
	id = s->next_sub_id++;
	s->subs[s->n_subs++] = (struct mmsb_sub){ id, mask, filter, fn, ctx };
	mmsb__unlock(s);
	return id;
}

int mmsb_unsubscribe(struct mmsb_state *s, int64_t sub_id)
{
	MMSB_API_GATE(mmsb_unsubscribe, s, sub_id);
	int err = -ENOENT;

	if (!s)
		return -EINVAL;
	mmsb__lock(s);
	for (size_t i = 0; i < s->n_subs; i++) {
		if (s->subs[i].id != sub_id)
			continue;
		memmove(&s->subs[i], &s->subs[i + 1], (s->n_subs - i - 1) * sizeof(*s->subs));
		s->n_subs--;
		err = 0;
		break;
	}
	mmsb__unlock(s);
	return err;
}

static const char *const ev_names[MMSB_EV__COUNT] = {
	"PAGE_CREATED", "PAGE_DELETED",	 "PAGE_CHANGED",    "PAGE_INVALIDATED",
	"PAGE_STALE",	"DELTA_APPLIED", "GPU_SYNC_NEEDED", "IR_INVALIDATED",
};

void mmsb__emit(struct mmsb_state *s, enum mmsb_event_type t, uint64_t page, uint64_t delta,
		uint32_t epoch)
{
	struct mmsb_event ev = { .type = t, .page_id = page, .delta_id = delta, .epoch = epoch };

	s->st.events++;
	/* handlers may unsubscribe: walk by index and re-check the bound each step */
	for (size_t i = 0; i < s->n_subs; i++) {
		struct mmsb_sub sub = s->subs[i];
		int err;

		if (!(sub.mask & MMSB_EV_MASK(t)))
			continue;
		s->in_callback++;
		if (sub.filter && !sub.filter(&ev, sub.ctx)) {
			s->in_callback--;
			continue;
		}
		err = sub.fn(s, &ev, sub.ctx);
		s->in_callback--;
		if (err) {
			s->st.handler_errors++;
			s->st.last_handler_error = err;
			pr_warn("event %s page %llu: handler of subscription %lld failed: %s\n",
				ev_names[t], (unsigned long long)page, (long long)sub.id,
				mmsb__strerror(err));
		}
	}
}

/* ---- statistics ---- */

static uint32_t longest_path(struct mmsb_state *s)
{
	ssize_t n = mmsb__graph_toposort(s, NULL, 0);
	uint64_t *order;
	uint32_t best = 0;

	if (n <= 0)
		return 0;
	order = malloc((size_t)n * sizeof(*order));
	if (!order || mmsb__graph_toposort(s, order, (size_t)n) != n) {
		free(order);
		return 0;
	}
	/* depth[p] lives in the page's indeg scratch during this walk */
	for (ssize_t i = 0; i < n; i++)
		mmsb__map_get(&s->pages, order[i])->indeg = 0;
	for (ssize_t i = 0; i < n; i++) {
		struct mmsb_page *p = mmsb__map_get(&s->pages, order[i]);

		for (uint32_t k = 0; k < p->children.n; k++) {
			struct mmsb_page *c = p->children.v[k].peer;

			if (c->indeg < p->indeg + 1)
				c->indeg = p->indeg + 1;
		}
		if (p->indeg > best)
			best = p->indeg;
	}
	free(order);
	return best;
}

int mmsb_state_stats(struct mmsb_state *s, struct mmsb_stats *out)
{
	MMSB_API_GATE(mmsb_state_stats, s, out);
	struct mmsb_page *p;
	size_t i;

	if (!s || !out)
		return -EINVAL;
	mmsb__lock(s);
	*out = s->st;
	out->pages = s->pages.n;
	out->page_bytes = 0;
	memset(out->pages_by_location, 0, sizeof(out->pages_by_location));
	mmsb__map_for_each(&s->pages, i, p) {
		out->page_bytes += p->size;
		out->pages_by_location[p->location]++;
	}
	out->edges = s->n_edges;
	if (s->log)
		mmsb__log_stats(s->log, out);
	out->max_depth = longest_path(s);
	mmsb__unlock(s);
	return 0;
}

int mmsb_state_stats_reset(struct mmsb_state *s)
{
	MMSB_API_GATE(mmsb_state_stats_reset, s);
	if (!s)
		return -EINVAL;
	mmsb__lock(s);
	memset(&s->st, 0, sizeof(s->st));
	if (s->log)
		mmsb__log_stats_reset(s->log);
	mmsb__unlock(s);
	return 0;
}
