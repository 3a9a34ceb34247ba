// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Pages: their lifecycle (create, free) and the per-page getters of the public API. */
#include <string.h>
#include <sys/mman.h>

/* gcc says __SANITIZE_ADDRESS__, clang __has_feature(address_sanitizer) */
#if defined(__SANITIZE_ADDRESS__)
#define PAGE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PAGE_ASAN 1
#endif
#endif
#ifdef PAGE_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/lsan_interface.h>
#else
#define ASAN_POISON_MEMORY_REGION(a, n) ((void)(a), (void)(n))
#define ASAN_UNPOISON_MEMORY_REGION(a, n) ((void)(a), (void)(n))
#define __lsan_register_root_region(a, n) ((void)(a), (void)(n))
#define __lsan_unregister_root_region(a, n) ((void)(a), (void)(n))
#endif

#include "mmsb_internal.h"
#include "probes.h"

/* ---- pages ---- */

/*
 * A page up to this size has its bytes in the allocation of its struct: one malloc and one
 * free a page instead of two, which is most of what creating a small page costs.
 */
#define PAGE_INLINE_MAX 4096
/* where inline bytes start: past the struct, 16-byte aligned as malloc's own are */
#define PAGE_INLINE_OFF ((sizeof(struct mmsb_page) + 15) & ~(size_t)15)

static inline bool page_inline(const struct mmsb_page *p)
{
	return p->data == (const uint8_t *)p + PAGE_INLINE_OFF;
}

/*
 * A page's struct (and inline bytes), zeroed, with a cache line's worth of slack after it. Packed
 * as malloc packs them, a small page shared lines with its neighbours: the engine's workers each
 * apply a different set of pages, and two of them writing one page's bytes and the next page's
 * epoch traded that line batch after batch (half of a shared batch's time was that miss). With
 * the slack, what a page's apply writes (its struct's first line, its bytes) is at least a line
 * from anything another page's apply writes. aligned_alloc() would do it in less memory, at
 * twice the cost of a page create (glibc's memalign splits a larger chunk).
 */
#define PAGE_SLACK 64

static struct mmsb_page *page_alloc(size_t n)
{
	return calloc(1, n + PAGE_SLACK);
}

static struct mmsb_page *page_init(struct mmsb_page *p, uint64_t id, size_t size, int loc)
{
	p->id = id;
	p->size = size;
	p->location = (uint8_t)loc;
	return p;
}

struct mmsb_page *mmsb__page_new(uint64_t id, size_t size, int loc)
{
	struct mmsb_page *p;

	if (size <= PAGE_INLINE_MAX) {
		p = page_alloc(PAGE_INLINE_OFF + size);
		if (!p)
			return NULL;
		p->data = (uint8_t *)p + PAGE_INLINE_OFF;
	} else {
		p = page_alloc(sizeof(*p));
		if (!p)
			return NULL;
		p->data = calloc(1, size);
		if (!p->data) {
			free(p);
			return NULL;
		}
	}
	return page_init(p, id, size, loc);
}

/*
 * Page pools. A checkpoint load makes all its pages at once, and at a million pages most of its
 * time went to faulting their memory in, 4 KiB at a time: about 15 us a fault on a VM, where
 * each fault traps to the host. A pool hands out pages from chunks it maps itself and populates
 * 64 KiB at a time (MADV_POPULATE_WRITE: one call, no trap a page), each page's struct and
 * bytes in a slot rounded up to a cache line: no allocator header, and no slack needed to keep
 * two pages' lines apart. Fresh mappings are zero, and a slot is never handed out twice.
 *
 * A chunk is aligned to its size, so a page finds it by masking its own address, and counts its
 * live pages (plus one while a pool is filling it): the last page destroyed unmaps it. The
 * price: the memory of a destroyed page comes back only with its chunk's last, where malloc
 * could reuse it at once. The pages of one chunk belong to one state, whose lock orders their
 * destruction.
 */
#define CHUNK_SIZE (2u << 20)
#define CHUNK_STEP (64u << 10)
#define CHUNK_LINE 64

struct mmsb_page_chunk {
	size_t live;
};

static struct mmsb_page_chunk *chunk_of(const struct mmsb_page *p)
{
	return (struct mmsb_page_chunk *)((uintptr_t)p & ~(uintptr_t)(CHUNK_SIZE - 1));
}

static struct mmsb_page_chunk *chunk_map(void)
{
	uint8_t *m = mmap(NULL, 2 * CHUNK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			  -1, 0);
	uintptr_t at;

	if (m == MAP_FAILED)
		return NULL;
	/* twice the size mapped, the aligned chunk kept, the rest given back */
	at = ((uintptr_t)m + CHUNK_SIZE - 1) & ~(uintptr_t)(CHUNK_SIZE - 1);
	if (at > (uintptr_t)m)
		munmap(m, at - (uintptr_t)m);
	munmap((void *)(at + CHUNK_SIZE), (uintptr_t)m + CHUNK_SIZE - at);
	/*
	 * An aligned 2 MiB region is what transparent huge pages take whole where they are on
	 * "always": a load of one page would hold 2 MiB. The pool populates what it hands out.
	 */
	madvise((void *)at, CHUNK_SIZE, MADV_NOHUGEPAGE);
	/* LeakSanitizer scans malloc'ed memory only: the pages' own allocations live on in here */
	__lsan_register_root_region((void *)at, CHUNK_SIZE);
	return (struct mmsb_page_chunk *)at;
}

static void chunk_put(struct mmsb_page_chunk *c)
{
	if (--c->live)
		return;
	/* ASan would hold the poison of its slots against whatever is mapped there next */
	ASAN_UNPOISON_MEMORY_REGION(c, CHUNK_SIZE);
	__lsan_unregister_root_region(c, CHUNK_SIZE);
	munmap(c, CHUNK_SIZE);
}

static size_t slot_size(size_t size)
{
	return (PAGE_INLINE_OFF + size + CHUNK_LINE - 1) & ~(size_t)(CHUNK_LINE - 1);
}

void mmsb__page_pool_done(struct mmsb_page_pool *pool)
{
	if (pool->cur)
		chunk_put(pool->cur);
	memset(pool, 0, sizeof(*pool));
}

/* n bytes, a slot_size(), zero */
static void *pool_take(struct mmsb_page_pool *pool, size_t n)
{
	struct mmsb_page_chunk *c;
	size_t to;

	if (!pool->cur || pool->off + n > CHUNK_SIZE) {
		c = chunk_map();
		if (!c)
			return NULL;
		mmsb__page_pool_done(pool);
		c->live = 1;
		pool->cur = c;
		pool->off = CHUNK_LINE; /* the header's line */
	}
	c = pool->cur;
	if (pool->off + n > pool->populated) {
		to = min_t(size_t, (pool->off + n + CHUNK_STEP - 1) & ~(size_t)(CHUNK_STEP - 1),
			   CHUNK_SIZE);
#ifdef MADV_POPULATE_WRITE
		/* a kernel before 5.14 refuses it, and each page faults in when first touched */
		madvise((uint8_t *)c + pool->populated, to - pool->populated, MADV_POPULATE_WRITE);
#endif
		pool->populated = to;
	}
	c->live++;
	pool->off += n;
	return (uint8_t *)c + pool->off - n;
}

struct mmsb_page *mmsb__page_new_pooled(struct mmsb_page_pool *pool, uint64_t id, size_t size,
					int loc)
{
	struct mmsb_page *p;

	if (!pool || size > PAGE_INLINE_MAX)
		return mmsb__page_new(id, size, loc);
	p = pool_take(pool, slot_size(size));
	if (!p)
		return NULL;
	p->data = (uint8_t *)p + PAGE_INLINE_OFF;
	p->pooled = true;
	return page_init(p, id, size, loc);
}

void mmsb__page_destroy(struct mmsb_page *p)
{
	if (!p)
		return;
	mmsb__meta_free(p->meta, p->n_meta);
	free(p->children.v);
	free(p->parents.v);
	mmsb__gpu_page_free(p);
	if (!page_inline(p))
		free(p->data);
	if (p->pooled) {
		struct mmsb_page_chunk *c = chunk_of(p);

		/* a slot is never handed out again: ASan then sees any use of it after this */
		ASAN_POISON_MEMORY_REGION(p, slot_size(p->size));
		chunk_put(c);
	} else {
		free(p);
	}
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
	MMSB_API_GATE(mmsb_page_create, s, size, loc, id_out);
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
	MMSB_API_GATE(mmsb_page_create_id, s, id, size, loc);
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
	MMSB_API_GATE(mmsb_page_free, s, id);
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
	MMSB_API_GATE(mmsb_page_read, s, id, dst, len, off);
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
	MMSB_API_GATE(mmsb_page_size, s, id);
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
	MMSB_API_GATE(mmsb_page_epoch, s, id);
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
	MMSB_API_GATE(mmsb_page_location, s, id);
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
	MMSB_API_GATE(mmsb_page_flags, s, id);
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
	MMSB_API_GATE(mmsb_page_clear_flags, s, id, flags);
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
	MMSB_API_GATE(mmsb_page_count, s);
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
	MMSB_API_GATE(mmsb_page_list, s, ids, max);
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
