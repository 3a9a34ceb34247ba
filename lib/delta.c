// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Deltas: masked writes to one page, with the original's structural rules. */
#include <string.h>

#include "mmsb_internal.h"
#include "probes.h"

#define MMSB_SOURCE_MAX 255

struct mmsb_delta *mmsb__delta_alloc(uint64_t page_id, size_t mask_len, size_t payload_len,
				     bool sparse)
{
	struct mmsb_delta *d;

	if (mask_len > SIZE_MAX / 2 - sizeof(*d) || payload_len > SIZE_MAX / 2 - mask_len)
		return mmsb__err_ptr(-ENOMEM);
	d = malloc(sizeof(*d) + mask_len + payload_len);
	if (!d)
		return NULL;
	memset(d, 0, sizeof(*d));
	d->page_id = page_id;
	d->sparse = sparse;
	d->mask_len = mask_len;
	d->payload_len = payload_len;
	d->mask = (uint8_t *)(d + 1);
	d->payload = d->mask + mask_len;
	d->source = (char *)"api";
	d->timestamp = mmsb__now_ns(CLOCK_REALTIME);
	return d;
}

size_t mmsb__delta_diff(struct mmsb_delta *d, const uint8_t *old, const uint8_t *new, size_t len,
			uint8_t *mask, uint8_t *pay, uint8_t *bits)
{
	size_t count = mmsb__diff_bits(old, new, len, mask, bits);

	d->mask = mask;
	d->mask_len = len;
	d->mask_count = count;
	d->bits = bits;
	/* few bytes changed: log those alone (a 256 KiB page with 256 changed costs 32 KiB, not 288) */
	if (count < len / 2) {
		d->sparse = true;
		d->payload = pay;
		d->payload_len = mmsb__gather(pay, new, mask, len);
	} else {
		/* the bytes outside the mask are equal in old and new: the apply copies new whole */
		d->sparse = false;
		d->whole = true;
		d->payload = (uint8_t *)new;
		d->payload_len = len;
	}
	return count;
}

struct mmsb_delta *mmsb_delta_new(uint64_t page_id, const void *mask, size_t mask_len,
				  const void *payload, size_t payload_len, unsigned int flags)
{
	MMSB_API_GATE(mmsb_delta_new, page_id, mask, mask_len, payload, payload_len, flags);
	const uint8_t *m = mask;
	struct mmsb_delta *d;
	int err;

	if (flags & ~(MMSB_DELTA_SPARSE | MMSB_DELTA_MASK_PACKED))
		return mmsb__err_ptr(-EINVAL);
	if ((mask_len && !mask) || (payload_len && !payload))
		return mmsb__err_ptr(-EINVAL);
	d = mmsb__delta_alloc(page_id, mask_len, payload_len, flags & MMSB_DELTA_SPARSE);
	if (!d)
		return NULL;
	if (flags & MMSB_DELTA_MASK_PACKED) {
		mmsb__unpack_mask(m, mask_len, d->mask);
	} else {
		for (size_t i = 0; i < mask_len; i++)
			d->mask[i] = m[i] != 0;
	}
	d->mask_count = mmsb__popcount_bytes(d->mask, mask_len);
	if (payload_len)
		memcpy(d->payload, payload, payload_len);
	err = mmsb__delta_validate(d);
	if (err) {
		free(d);
		return mmsb__err_ptr(err);
	}
	return d;
}

void mmsb__delta_free(struct mmsb_delta *d)
{
	if (!d)
		return;
	if (d->owns_source)
		free(d->source);
	free(d->intent);
	free(d);
}

void mmsb_delta_free(struct mmsb_delta *d)
{
	MMSB_API_GATE(mmsb_delta_free, d);
	mmsb__delta_free(d);
}

/* Copy everything but mask and payload (callers fill those). */
static int copy_labels(struct mmsb_delta *dst, const struct mmsb_delta *src)
{
	dst->source = src->source;
	dst->owns_source = false;
	dst->intent = NULL;
	if (src->owns_source) {
		dst->source = strdup(src->source);
		if (!dst->source)
			return -ENOMEM;
		dst->owns_source = true;
	}
	if (src->intent) {
		dst->intent = strdup(src->intent);
		if (!dst->intent)
			return -ENOMEM;
	}
	return 0;
}

static struct mmsb_delta *delta_dup(const struct mmsb_delta *d)
{
	struct mmsb_delta *n;

	if (!d)
		return mmsb__err_ptr(-EINVAL);
	n = mmsb__delta_alloc(d->page_id, d->mask_len, d->payload_len, d->sparse);
	if (!n)
		return NULL;
	n->id = d->id;
	n->lsn = d->lsn;
	n->epoch = d->epoch;
	n->timestamp = d->timestamp;
	n->mask_count = d->mask_count;
	n->offset = d->offset;
	memcpy(n->mask, d->mask, d->mask_len);
	memcpy(n->payload, d->payload, d->payload_len);
	if (copy_labels(n, d)) {
		mmsb__delta_free(n);
		return mmsb__err_ptr(-ENOMEM);
	}
	return n;
}

struct mmsb_delta *mmsb_delta_dup(const struct mmsb_delta *d)
{
	MMSB_API_GATE(mmsb_delta_dup, d);
	return delta_dup(d);
}

/* Expand d's payload to dense positions into out (mask_len bytes, zeros where unmasked). */
static void expand(const struct mmsb_delta *d, uint8_t *out)
{
	if (!d->sparse) {
		for (size_t i = 0; i < d->mask_len; i++)
			out[i] = d->mask[i] ? d->payload[i] : 0;
		return;
	}
	size_t k = 0;

	for (size_t i = 0; i < d->mask_len; i++)
		out[i] = d->mask[i] ? d->payload[k++] : 0;
}

struct mmsb_delta *mmsb_delta_to_dense(const struct mmsb_delta *d)
{
	MMSB_API_GATE(mmsb_delta_to_dense, d);
	struct mmsb_delta *n;

	if (!d)
		return mmsb__err_ptr(-EINVAL);
	n = delta_dup(d);
	if (!n || !d->sparse)
		return n;
	/* the dense payload needs mask_len bytes: build a fresh one and keep the labels */
	struct mmsb_delta *e = mmsb__delta_alloc(d->page_id, d->mask_len, d->mask_len, false);

	if (!e) {
		mmsb__delta_free(n);
		return NULL;
	}
	memcpy(e->mask, d->mask, d->mask_len);
	expand(d, e->payload);
	e->id = d->id;
	e->lsn = d->lsn;
	e->epoch = d->epoch;
	e->timestamp = d->timestamp;
	e->mask_count = d->mask_count;
	e->offset = d->offset;
	e->source = n->source;
	e->owns_source = n->owns_source;
	e->intent = n->intent;
	n->owns_source = false;
	n->intent = NULL;
	mmsb__delta_free(n);
	return e;
}

struct mmsb_delta *mmsb_delta_merge(const struct mmsb_delta *a, const struct mmsb_delta *b)
{
	MMSB_API_GATE(mmsb_delta_merge, a, b);
	struct mmsb_delta *m;
	uint8_t *bd;

	if (!a || !b)
		return mmsb__err_ptr(-EINVAL);
	if (a->page_id != b->page_id)
		return mmsb__err_ptr(-MMSB_ERR_PAGE_MISMATCH);
	if (a->mask_len != b->mask_len || a->offset != b->offset)
		return mmsb__err_ptr(-MMSB_ERR_MASK_MISMATCH);
	m = mmsb__delta_alloc(b->page_id, a->mask_len, a->mask_len, false);
	if (!m)
		return NULL;
	bd = malloc(b->mask_len ? b->mask_len : 1);
	if (!bd) {
		mmsb__delta_free(m);
		return NULL;
	}
	expand(a, m->payload);
	expand(b, bd);
	for (size_t i = 0; i < m->mask_len; i++) {
		m->mask[i] = a->mask[i] | b->mask[i];
		if (b->mask[i])
			m->payload[i] = bd[i];
	}
	free(bd);
	m->mask_count = mmsb__popcount_bytes(m->mask, m->mask_len);
	m->offset = a->offset;
	m->id = b->id;
	m->epoch = max_t(uint32_t, a->epoch, b->epoch);
	m->lsn = max_t(uint64_t, a->lsn, b->lsn);
	m->timestamp = max_t(uint64_t, a->timestamp, b->timestamp);
	if (copy_labels(m, b)) {
		mmsb__delta_free(m);
		return mmsb__err_ptr(-ENOMEM);
	}
	if (!m->intent && a->intent) {
		m->intent = strdup(a->intent);
		if (!m->intent) {
			mmsb__delta_free(m);
			return mmsb__err_ptr(-ENOMEM);
		}
	}
	return m;
}

/* A getter given no delta: 0 (NULL for the pointers), and errno says why. */
static uint64_t delta_null(void)
{
	errno = EINVAL;
	return 0;
}

uint64_t mmsb_delta_id(const struct mmsb_delta *d)
{
	MMSB_API_GATE(mmsb_delta_id, d);
	return d ? d->id : (uint64_t)delta_null();
}

uint64_t mmsb_delta_page_id(const struct mmsb_delta *d)
{
	MMSB_API_GATE(mmsb_delta_page_id, d);
	return d ? d->page_id : (uint64_t)delta_null();
}

uint32_t mmsb_delta_epoch(const struct mmsb_delta *d)
{
	MMSB_API_GATE(mmsb_delta_epoch, d);
	return d ? d->epoch : (uint32_t)delta_null();
}

uint64_t mmsb_delta_lsn(const struct mmsb_delta *d)
{
	MMSB_API_GATE(mmsb_delta_lsn, d);
	return d ? d->lsn : (uint64_t)delta_null();
}

uint64_t mmsb_delta_timestamp(const struct mmsb_delta *d)
{
	MMSB_API_GATE(mmsb_delta_timestamp, d);
	return d ? d->timestamp : (uint64_t)delta_null();
}

bool mmsb_delta_is_sparse(const struct mmsb_delta *d)
{
	MMSB_API_GATE(mmsb_delta_is_sparse, d);
	return d ? d->sparse : delta_null() != 0;
}

size_t mmsb_delta_mask_len(const struct mmsb_delta *d)
{
	MMSB_API_GATE(mmsb_delta_mask_len, d);
	return d ? d->mask_len : (size_t)delta_null();
}

size_t mmsb_delta_mask_count(const struct mmsb_delta *d)
{
	MMSB_API_GATE(mmsb_delta_mask_count, d);
	return d ? d->mask_count : (size_t)delta_null();
}

size_t mmsb_delta_copy_mask(const struct mmsb_delta *d, uint8_t *out, size_t len)
{
	MMSB_API_GATE(mmsb_delta_copy_mask, d, out, len);
	size_t n;

	if (!d || (len && !out))
		return (size_t)delta_null();
	n = min_t(size_t, len, d->mask_len);
	if (n)
		memcpy(out, d->mask, n);
	return n;
}

uint64_t mmsb_delta_offset(const struct mmsb_delta *d)
{
	MMSB_API_GATE(mmsb_delta_offset, d);
	return d ? d->offset : (uint64_t)delta_null();
}

size_t mmsb_delta_payload_len(const struct mmsb_delta *d)
{
	MMSB_API_GATE(mmsb_delta_payload_len, d);
	return d ? d->payload_len : (size_t)delta_null();
}

const uint8_t *mmsb_delta_payload(const struct mmsb_delta *d)
{
	MMSB_API_GATE(mmsb_delta_payload, d);
	return d ? d->payload : mmsb__err_ptr(-EINVAL);
}

const char *mmsb_delta_source(const struct mmsb_delta *d)
{
	MMSB_API_GATE(mmsb_delta_source, d);
	return d ? d->source : mmsb__err_ptr(-EINVAL);
}

int mmsb_delta_set_source(struct mmsb_delta *d, const char *src)
{
	MMSB_API_GATE(mmsb_delta_set_source, d, src);
	size_t n;
	char *c;

	if (!d || !src)
		return -EINVAL;
	n = strlen(src);
	if (n > MMSB_SOURCE_MAX)
		return -ENAMETOOLONG;
	if (!mmsb__utf8_valid((const uint8_t *)src, n))
		return -EILSEQ;
	c = strdup(src);
	if (!c)
		return -ENOMEM;
	if (d->owns_source)
		free(d->source);
	d->source = c;
	d->owns_source = true;
	return 0;
}

int mmsb_delta_set_intent(struct mmsb_delta *d, const char *intent)
{
	MMSB_API_GATE(mmsb_delta_set_intent, d, intent);
	char *c = NULL;

	if (!d)
		return -EINVAL;
	if (intent && *intent) {
		size_t n = strlen(intent);

		if (n > UINT32_MAX)
			return -E2BIG;
		if (!mmsb__utf8_valid((const uint8_t *)intent, n))
			return -EILSEQ;
		c = strdup(intent);
		if (!c)
			return -ENOMEM;
	}
	free(d->intent);
	d->intent = c;
	return 0;
}

const char *mmsb_delta_intent(const struct mmsb_delta *d)
{
	MMSB_API_GATE(mmsb_delta_intent, d);
	return d ? d->intent : mmsb__err_ptr(-EINVAL);
}
