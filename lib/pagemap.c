// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The page table: pages by id, open addressing with linear probing and backward-shift deletion
 * (the lookup, every call's first step, is inline in mmsb_internal.h).
 */
#include <string.h>

#include "mmsb_internal.h"

static void map_place(struct mmsb_slot *slots, size_t cap, struct mmsb_slot s)
{
	struct mmsb_page_map tmp = { .slots = slots, .cap = cap };
	size_t i = mmsb__slot_of(&tmp, s.id);

	while (slots[i].p)
		i = (i + 1) & (cap - 1);
	slots[i] = s;
}

/*
 * A large table is mapped and populated in one call. From calloc, its memory faulted in a 4 KiB
 * page at a time, twice where a lookup read a slot before the insert wrote it (the zero page,
 * then a copy), at some 20 us a fault on a VM; a million creates spent a third of their time so.
 */
#define MAP_MAPPED_FROM (256u << 10)

static struct mmsb_slot *slots_alloc(size_t cap)
{
	size_t len = cap * sizeof(struct mmsb_slot);
	struct mmsb_slot *v;
	bool huge;

	if (len < MAP_MAPPED_FROM)
		return calloc(cap, sizeof(*v));
	/* a table is full to at least a quarter: one of 2 MiB or more may take huge pages */
	huge = len >= (2u << 20);
	v = mmsb__mem_map(len, huge ? 2u << 20 : 0, huge);
	if (v)
		mmsb__mem_populate(v, len);
	return v;
}

static void slots_free(struct mmsb_slot *v, size_t cap)
{
	size_t len = cap * sizeof(*v);

	if (len < MAP_MAPPED_FROM)
		free(v);
	else if (v)
		mmsb__mem_unmap(v, len);
}

int mmsb__map_reserve(struct mmsb_page_map *m, size_t n)
{
	size_t ncap = m->cap ? m->cap : 64;
	struct mmsb_slot *ns;

	/* keep the load factor under 1/2 so probes stay short */
	while (n > ncap / 2) {
		if (ncap > SIZE_MAX / 2 / sizeof(*ns))
			return -ENOMEM;
		ncap *= 2;
	}
	if (ncap == m->cap)
		return 0;
	ns = slots_alloc(ncap);
	if (!ns)
		return -ENOMEM;
	/* the slot's own id: a rehash never touches the pages (a cache miss each, at 1M of them) */
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].p)
			map_place(ns, ncap, m->slots[i]);
	slots_free(m->slots, m->cap);
	m->slots = ns;
	m->cap = ncap;
	return 0;
}

int mmsb__map_put(struct mmsb_page_map *m, struct mmsb_page *p)
{
	if ((m->n + 1) * 2 > m->cap && mmsb__map_reserve(m, m->cap ? m->cap : 32))
		return -ENOMEM;
	map_place(m->slots, m->cap, (struct mmsb_slot){ p->id, p });
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
	size_t left = m->n;

	if (m->slab)
		mmsb__slab_closing(m->slab);
	/* up to the last page, not the table's end: a state of a few pages has 64 slots */
	for (size_t i = 0; left; i++) {
		if (m->slots[i].p) {
			mmsb__page_destroy(m->slots[i].p);
			left--;
		}
	}
	slots_free(m->slots, m->cap);
	if (m->slab)
		mmsb__slab_free(m->slab);
	memset(m, 0, sizeof(*m));
}

int mmsb__cmp_page_id(const void *a, const void *b)
{
	uint64_t x = (*(struct mmsb_page *const *)a)->id, y = (*(struct mmsb_page *const *)b)->id;

	return x < y ? -1 : x > y;
}

static int cmp_slot_id(const void *a, const void *b)
{
	uint64_t x = ((const struct mmsb_slot *)a)->id, y = ((const struct mmsb_slot *)b)->id;

	return x < y ? -1 : x > y;
}

struct mmsb_page **mmsb__map_sorted(const struct mmsb_page_map *m, size_t *n)
{
	struct mmsb_slot *v = malloc((m->n ? m->n : 1) * sizeof(*v));
	struct mmsb_page **out = (struct mmsb_page **)v;
	size_t i, k = 0;

	if (!v)
		return NULL;
	for (i = 0; i < m->cap; i++)
		if (m->slots[i].p)
			v[k++] = m->slots[i];
	/* sorted by the ids the slots hold, not through the pages: no cache miss a comparison */
	qsort(v, k, sizeof(*v), cmp_slot_id);
	/* the pointers packed in place, front to back: slot i's pointer lands at or before it */
	for (i = 0; i < k; i++)
		out[i] = v[i].p;
	*n = k;
	return out;
}
