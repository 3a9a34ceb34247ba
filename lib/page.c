// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The page store: an id-keyed table of fixed-size pages with ordered key/value metadata. */
#include <string.h>

#include "mmsb_internal.h"
#include "probes.h"

/* ---- the id map: open addressing, linear probing, backward-shift deletion ---- */

static void map_place(struct mmsb_slot *slots, size_t cap, struct mmsb_page *p)
{
	struct mmsb_page_map tmp = { .slots = slots, .cap = cap };
	size_t i = mmsb__slot_of(&tmp, p->id);

	while (slots[i].p)
		i = (i + 1) & (cap - 1);
	slots[i] = (struct mmsb_slot){ p->id, p };
}

int mmsb__map_put(struct mmsb_page_map *m, struct mmsb_page *p)
{
	/* keep the load factor under 1/2 so probes stay short */
	if ((m->n + 1) * 2 > m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 64;
		struct mmsb_slot *ns = calloc(ncap, sizeof(*ns));

		if (!ns)
			return -ENOMEM;
		for (size_t i = 0; i < m->cap; i++)
			if (m->slots[i].p)
				map_place(ns, ncap, m->slots[i].p);
		free(m->slots);
		m->slots = ns;
		m->cap = ncap;
	}
	map_place(m->slots, m->cap, p);
	m->n++;
	return 0;
}

void mmsb__map_del(struct mmsb_page_map *m, uint64_t id)
{
	size_t mask = m->cap - 1, i, j;

	if (!m->cap)
		return;
	for (i = mmsb__slot_of(m, id); m->slots[i].p; i = (i + 1) & mask)
		if (m->slots[i].id == id)
			break;
	if (!m->slots[i].p)
		return;
	m->slots[i] = (struct mmsb_slot){ 0, NULL };
	m->n--;
	/* shift later members of the probe run back so lookups never stop at the hole */
	for (j = (i + 1) & mask; m->slots[j].p; j = (j + 1) & mask) {
		size_t home = mmsb__slot_of(m, m->slots[j].id);

		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			m->slots[i] = m->slots[j];
			m->slots[j] = (struct mmsb_slot){ 0, NULL };
			i = j;
		}
	}
}

void mmsb__map_free(struct mmsb_page_map *m)
{
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

int mmsb__cmp_page_id(const void *a, const void *b)
{
	uint64_t x = (*(struct mmsb_page *const *)a)->id, y = (*(struct mmsb_page *const *)b)->id;

	return x < y ? -1 : x > y;
}

struct mmsb_page **mmsb__map_sorted(const struct mmsb_page_map *m, size_t *n)
{
	struct mmsb_page **v = malloc((m->n ? m->n : 1) * sizeof(*v));
	struct mmsb_page *p;
	size_t i, k = 0;

	if (!v)
		return NULL;
	mmsb__map_for_each(m, i, p)
		v[k++] = p;
	qsort(v, k, sizeof(*v), mmsb__cmp_page_id);
	*n = k;
	return v;
}

/* ---- pages ---- */

struct mmsb_page *mmsb__page_new(uint64_t id, size_t size, int loc)
{
	struct mmsb_page *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->data = calloc(1, size);
	if (!p->data) {
		free(p);
		return NULL;
	}
	p->id = id;
	p->size = size;
	p->location = (uint8_t)loc;
	return p;
}

void mmsb__meta_free(struct mmsb_meta_ent *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(m[i].key);
		free(m[i].val);
	}
	free(m);
}

void mmsb__page_destroy(struct mmsb_page *p)
{
	if (!p)
		return;
	mmsb__meta_free(p->meta, p->n_meta);
	free(p->children.v);
	free(p->parents.v);
	mmsb__gpu_page_free(p);
	free(p->data);
	free(p);
}

/* ---- metadata blob: u32 count, then (u32 klen, key, u32 vlen, value) ---- */

int mmsb__meta_encode(const struct mmsb_page *p, struct mmsb_buf *b)
{
	size_t need = p->n_meta ? 4 : 0;

	for (size_t i = 0; i < p->n_meta; i++)
		need += 8 + p->meta[i].klen + p->meta[i].vlen;
	if (mmsb__buf_reserve(b, need))
		return -ENOMEM;
	/* an empty blob means no entries, exactly as the original wrote it */
	if (!p->n_meta)
		return 0;
	MMSB__PUT(b, (uint32_t)p->n_meta);
	for (size_t i = 0; i < p->n_meta; i++) {
		MMSB__PUT(b, (uint32_t)p->meta[i].klen);
		mmsb__put(b, p->meta[i].key, p->meta[i].klen);
		MMSB__PUT(b, (uint32_t)p->meta[i].vlen);
		mmsb__put(b, p->meta[i].val, p->meta[i].vlen);
	}
	return 0;
}

int mmsb__meta_decode(const uint8_t *blob, size_t len, struct mmsb_meta_ent **out, size_t *n)
{
	struct mmsb_cursor c = { .p = blob, .len = len };
	struct mmsb_meta_ent *m = NULL;
	uint32_t count, i;

	*out = NULL;
	*n = 0;
	if (!len)
		return 0;
	if (!mmsb__cur_get(&c, &count, 4))
		return -MMSB_ERR_META_CORRUPT;
	/* each entry takes at least 8 bytes: a count the blob cannot hold is corrupt */
	if (count > (len - 4) / 8)
		return -MMSB_ERR_META_CORRUPT;
	m = calloc(count ? count : 1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	for (i = 0; i < count; i++) {
		uint32_t kl, vl;
		const uint8_t *k, *v;

		if (!mmsb__cur_get(&c, &kl, 4) || !(k = mmsb__cur_take(&c, kl)) ||
		    !mmsb__cur_get(&c, &vl, 4) || !(v = mmsb__cur_take(&c, vl)) ||
		    !mmsb__utf8_valid(k, kl) || memchr(k, 0, kl))
			goto corrupt;
		m[i].key = malloc(kl + 1);
		m[i].val = malloc(vl ? vl : 1);
		if (!m[i].key || !m[i].val) {
			mmsb__meta_free(m, i + 1);
			return -ENOMEM;
		}
		memcpy(m[i].key, k, kl);
		m[i].key[kl] = 0;
		memcpy(m[i].val, v, vl);
		m[i].klen = kl;
		m[i].vlen = vl;
	}
	/* trailing bytes are ignored, as the original did */
	*out = m;
	*n = count;
	return 0;
corrupt:
	mmsb__meta_free(m, i + 1);
	return -MMSB_ERR_META_CORRUPT;
}

/* ---- public page API ---- */

static int page_insert(struct mmsb_state *s, uint64_t id, size_t size, int loc, bool logged)
{
	struct mmsb_page *p;
	int err;

	if (loc == MMSB_LOC_DEFAULT)
		loc = s->default_location;
	if (loc == MMSB_LOC_GPU && !mmsb__gpu())
		return -MMSB_ERR_NO_GPU;
	if (loc != MMSB_LOC_CPU && loc != MMSB_LOC_UNIFIED && loc != MMSB_LOC_GPU)
		return -MMSB_ERR_BAD_LOCATION;
	/* what every reader of logs and checkpoints accepts, and nothing else */
	if (!id || id > MMSB_ID_MAX)
		return -ERANGE;
	if (!size || size > MMSB_PAGE_SIZE_MAX)
		return -EINVAL;
	if (mmsb__map_get(&s->pages, id))
		return -EEXIST;
	p = mmsb__page_new(id, size, loc);
	if (!p)
		return -ENOMEM;
	if (loc == MMSB_LOC_GPU && (err = mmsb__gpu_page_alloc(p))) {
		mmsb__page_destroy(p);
		return err;
	}
	if (logged && s->log) {
		err = mmsb__log_page(s->log, MMSB_REC_PAGE_CREATE, id, size, loc);
		if (!err)
			err = mmsb__log_commit(s->log);
		if (err) {
			mmsb__page_destroy(p);
			return err;
		}
	}
	err = mmsb__map_put(&s->pages, p);
	if (err) {
		mmsb__page_destroy(p);
		return err;
	}
	if (id >= s->next_page_id)
		s->next_page_id = id + 1;
	mmsb__emit(s, MMSB_EV_PAGE_CREATED, id, 0, 0);
	return 0;
}

int mmsb__page_insert(struct mmsb_state *s, uint64_t id, size_t size, int loc, bool logged)
{
	int err;

	MMSB_TRACE(PAGE_ALLOC_BEGIN, id, size, loc);
	err = page_insert(s, id, size, loc, logged);
	MMSB_TRACE(PAGE_ALLOC_END, id, err);
	return err;
}

int mmsb_page_create(struct mmsb_state *s, size_t size, int loc, uint64_t *id_out)
{
	MMSB_API_SCOPE(mmsb_page_create);
	uint64_t id;
	int err;

	if (!s || !size || size > MMSB_PAGE_SIZE_MAX)
		return -EINVAL;
	err = mmsb__lock_mut(s);
	if (err)
		return err;
	id = s->next_page_id;
	/* ids the caller chose may sit ahead of the counter */
	while (id <= MMSB_ID_MAX && mmsb__map_get(&s->pages, id))
		id++;
	/* ids never wrap: past the last one there is no "next" */
	err = id > MMSB_ID_MAX ? -ERANGE : mmsb__page_insert(s, id, size, loc, true);
	mmsb__unlock(s);
	if (!err && id_out)
		*id_out = id;
	return err;
}

int mmsb_page_create_id(struct mmsb_state *s, uint64_t id, size_t size, int loc)
{
	MMSB_API_SCOPE(mmsb_page_create_id);
	int err;

	if (!s || !size || size > MMSB_PAGE_SIZE_MAX || !id)
		return -EINVAL;
	if (id > MMSB_ID_MAX)
		return -ERANGE;
	err = mmsb__lock_mut(s);
	if (err)
		return err;
	err = mmsb__page_insert(s, id, size, loc, true);
	mmsb__unlock(s);
	return err;
}

static void queue_drop(struct mmsb_state *s, uint64_t id)
{
	size_t k = 0;

	for (size_t i = 0; i < s->n_queue; i++)
		if (s->queue[i] != id)
			s->queue[k++] = s->queue[i];
	s->n_queue = k;
}

int mmsb_page_free(struct mmsb_state *s, uint64_t id)
{
	MMSB_API_SCOPE(mmsb_page_free);
	struct mmsb_page *p;
	int err;

	if (!s)
		return -EINVAL;
	err = mmsb__lock_mut(s);
	if (err)
		return err;
	MMSB_TRACE(PAGE_FREE_BEGIN, id);
	p = mmsb__map_get(&s->pages, id);
	if (!p) {
		err = -MMSB_ERR_PAGE_NOT_FOUND;
		goto out;
	}
	if (s->log) {
		err = mmsb__log_page(s->log, MMSB_REC_PAGE_FREE, id, 0, 0);
		if (!err)
			err = mmsb__log_commit(s->log);
		if (err)
			goto out;
	}
	mmsb__edges_drop(s, p);
	if (p->queued)
		queue_drop(s, id);
	mmsb__map_del(&s->pages, id);
	mmsb__page_destroy(p);
	mmsb__emit(s, MMSB_EV_PAGE_DELETED, id, 0, 0);
out:
	MMSB_TRACE(PAGE_FREE_END, id, err);
	mmsb__unlock(s);
	return err;
}

ssize_t mmsb_page_read(struct mmsb_state *s, uint64_t id, void *dst, size_t len, size_t off)
{
	MMSB_API_SCOPE(mmsb_page_read);
	struct mmsb_page *p;
	int err;
	size_t n = 0;

	if (len && !dst)
		return -EINVAL;
	err = mmsb__lock_page(s, id, false, &p);
	if (err)
		return err;
	if (off < p->size) {
		err = mmsb__page_host(p);
		if (err) {
			mmsb__unlock(s);
			return err;
		}
		n = min_t(size_t, len, p->size - off);
		if (n)
			memcpy(dst, p->data + off, n);
	}
	mmsb__unlock(s);
	return (ssize_t)n;
}

ssize_t mmsb_page_size(struct mmsb_state *s, uint64_t id)
{
	MMSB_API_SCOPE(mmsb_page_size);
	struct mmsb_page *p;
	int err;
	ssize_t n;

	err = mmsb__lock_page(s, id, false, &p);
	if (err)
		return err;
	n = (ssize_t)p->size;
	mmsb__unlock(s);
	return n;
}

int64_t mmsb_page_epoch(struct mmsb_state *s, uint64_t id)
{
	MMSB_API_SCOPE(mmsb_page_epoch);
	struct mmsb_page *p;
	int err;
	int64_t e;

	err = mmsb__lock_page(s, id, false, &p);
	if (err)
		return err;
	e = p->epoch;
	mmsb__unlock(s);
	return e;
}

int mmsb_page_location(struct mmsb_state *s, uint64_t id)
{
	MMSB_API_SCOPE(mmsb_page_location);
	struct mmsb_page *p;
	int err;
	int l;

	err = mmsb__lock_page(s, id, false, &p);
	if (err)
		return err;
	l = p->location;
	mmsb__unlock(s);
	return l;
}

int mmsb_page_flags(struct mmsb_state *s, uint64_t id)
{
	MMSB_API_SCOPE(mmsb_page_flags);
	struct mmsb_page *p;
	int err;
	int f;

	err = mmsb__lock_page(s, id, false, &p);
	if (err)
		return err;
	f = p->flags;
	mmsb__unlock(s);
	return f;
}

int mmsb_page_clear_flags(struct mmsb_state *s, uint64_t id, unsigned int flags)
{
	MMSB_API_SCOPE(mmsb_page_clear_flags);
	struct mmsb_page *p;
	int err;

	err = mmsb__lock_page(s, id, false, &p);
	if (err)
		return err;
	p->flags &= (uint8_t)~flags;
	mmsb__unlock(s);
	return 0;
}

size_t mmsb_page_count(struct mmsb_state *s)
{
	MMSB_API_SCOPE(mmsb_page_count);
	size_t n;

	if (!s)
		return 0;
	mmsb__lock(s);
	n = s->pages.n;
	mmsb__unlock(s);
	return n;
}

ssize_t mmsb_page_list(struct mmsb_state *s, uint64_t *ids, size_t max)
{
	MMSB_API_SCOPE(mmsb_page_list);
	struct mmsb_page **v;
	size_t n;

	if (!s || (max && !ids))
		return -EINVAL;
	mmsb__lock(s);
	v = mmsb__map_sorted(&s->pages, &n);
	mmsb__unlock(s);
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n && i < max; i++)
		ids[i] = v[i]->id;
	free(v);
	return (ssize_t)n;
}

static ssize_t meta_find(const struct mmsb_page *p, const char *key)
{
	size_t kl = strlen(key);

	for (size_t i = 0; i < p->n_meta; i++)
		if (p->meta[i].klen == kl && !memcmp(p->meta[i].key, key, kl))
			return (ssize_t)i;
	return -1;
}

static void meta_remove(struct mmsb_page *p, size_t i)
{
	free(p->meta[i].key);
	free(p->meta[i].val);
	memmove(&p->meta[i], &p->meta[i + 1], (p->n_meta - i - 1) * sizeof(p->meta[0]));
	p->n_meta--;
}

int mmsb_page_meta_set(struct mmsb_state *s, uint64_t id, const char *key, const void *val,
		       size_t len)
{
	MMSB_API_SCOPE(mmsb_page_meta_set);
	struct mmsb_meta_ent e = { 0 };
	struct mmsb_page *p;
	ssize_t i;
	int err;

	if (!key || !*key || (len && !val) || len > UINT32_MAX || strlen(key) > UINT32_MAX)
		return -EINVAL;
	if (!mmsb__utf8_valid((const uint8_t *)key, strlen(key)))
		return -EILSEQ;
	e.klen = strlen(key);
	e.vlen = len;
	e.key = strdup(key);
	e.val = malloc(len ? len : 1);
	if (!e.key || !e.val) {
		free(e.key);
		free(e.val);
		return -ENOMEM;
	}
	if (len)
		memcpy(e.val, val, len);
	err = mmsb__lock_page(s, id, false, &p);
	if (!err &&
	    (err = mmsb__grow((void **)&p->meta, &p->cap_meta, p->n_meta + 1, sizeof(*p->meta))))
		mmsb__unlock(s);
	if (err) {
		free(e.key);
		free(e.val);
		return err;
	}
	i = meta_find(p, key);
	if (i >= 0)
		meta_remove(p, (size_t)i);
	p->meta[p->n_meta++] = e;
	mmsb__unlock(s);
	return 0;
}

ssize_t mmsb_page_meta_get(struct mmsb_state *s, uint64_t id, const char *key, void *buf,
			   size_t len)
{
	MMSB_API_SCOPE(mmsb_page_meta_get);
	struct mmsb_page *p;
	int err;
	ssize_t i, n;

	if (!key || (len && !buf))
		return -EINVAL;
	err = mmsb__lock_page(s, id, false, &p);
	if (err)
		return err;
	i = meta_find(p, key);
	if (i < 0) {
		n = -ENOENT;
	} else {
		n = (ssize_t)p->meta[i].vlen;
		if (len)
			memcpy(buf, p->meta[i].val, min_t(size_t, len, p->meta[i].vlen));
	}
	mmsb__unlock(s);
	return n;
}

int mmsb_page_meta_del(struct mmsb_state *s, uint64_t id, const char *key)
{
	MMSB_API_SCOPE(mmsb_page_meta_del);
	struct mmsb_page *p;
	int err;
	ssize_t i;

	if (!key)
		return -EINVAL;
	err = mmsb__lock_page(s, id, false, &p);
	if (err)
		return err;
	i = meta_find(p, key);
	if (i >= 0)
		meta_remove(p, (size_t)i);
	mmsb__unlock(s);
	return i >= 0 ? 0 : -ENOENT;
}

ssize_t mmsb_page_meta_export(struct mmsb_state *s, uint64_t id, void *buf, size_t len)
{
	MMSB_API_SCOPE(mmsb_page_meta_export);
	struct mmsb_buf b = { 0 };
	struct mmsb_page *p;
	ssize_t n;
	int err;

	if (len && !buf)
		return -EINVAL;
	err = mmsb__lock_page(s, id, false, &p);
	if (err)
		return err;
	err = mmsb__meta_encode(p, &b);
	mmsb__unlock(s);
	if (err)
		return err;
	n = (ssize_t)b.len;
	if (len && b.len)
		memcpy(buf, b.p, min_t(size_t, len, b.len));
	mmsb__buf_free(&b);
	return n;
}

int mmsb_page_meta_import(struct mmsb_state *s, uint64_t id, const void *blob, size_t len)
{
	MMSB_API_SCOPE(mmsb_page_meta_import);
	struct mmsb_meta_ent *m;
	struct mmsb_page *p;
	size_t n;
	int err;

	if (len && !blob)
		return -EINVAL;
	/* decode before taking the page: a corrupt blob never touches the old metadata */
	err = mmsb__meta_decode(blob, len, &m, &n);
	if (err)
		return err;
	err = mmsb__lock_page(s, id, false, &p);
	if (err) {
		mmsb__meta_free(m, n);
		return err;
	}
	mmsb__meta_free(p->meta, p->n_meta);
	p->meta = m;
	p->n_meta = n;
	p->cap_meta = m ? max_t(size_t, n, 1) : 0;
	mmsb__unlock(s);
	return 0;
}
