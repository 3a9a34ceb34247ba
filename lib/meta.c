// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Page metadata: ordered key/value entries per page, their public API and the blob codec that
 * checkpoints and mmsb_page_meta_export/import share.
 */
#include <string.h>

#include "mmsb_internal.h"
#include "probes.h"

void mmsb__meta_free(struct mmsb_meta_ent *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(m[i].key);
		free(m[i].val);
	}
	free(m);
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

/* ---- public metadata API ---- */

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
	MMSB_API_GATE(mmsb_page_meta_set, s, id, key, val, len);
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
	MMSB_API_GATE(mmsb_page_meta_get, s, id, key, buf, len);
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
	MMSB_API_GATE(mmsb_page_meta_del, s, id, key);
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
	MMSB_API_GATE(mmsb_page_meta_export, s, id, buf, len);
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
	MMSB_API_GATE(mmsb_page_meta_import, s, id, blob, len);
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
