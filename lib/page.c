// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Pages: their lifecycle (create, free) and the per-page getters of the public API. */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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
/* a line of poison after each slab slot: an overflow of a page's bytes stops there */
#define SLOT_REDZONE 64
#else
#define ASAN_POISON_MEMORY_REGION(a, n) ((void)(a), (void)(n))
#define ASAN_UNPOISON_MEMORY_REGION(a, n) ((void)(a), (void)(n))
#define SLOT_REDZONE 0
#endif
/*
 * LeakSanitizer scans malloc'ed memory, not what the library maps itself: the pages there, and
 * the pointers in a mapped table, must be roots, or it reports every allocation they hold. Weak:
 * the program may run LeakSanitizer (ASan, or -fsanitize=leak) when this library was built
 * without it, and then the hooks are its runtime's.
 */
void __lsan_register_root_region(const void *p, size_t size) __attribute__((weak));
void __lsan_unregister_root_region(const void *p, size_t size) __attribute__((weak));

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

/*
 * The slab. A table of many pages takes their memory from chunks it maps itself instead of from
 * malloc one page at a time. At a million pages most of a create's or a load's time went to
 * faulting that memory in, 4 KiB at a time: 16 us a fault on a VM where each fault traps to the
 * host. A chunk is populated 64 KiB at a time (MADV_POPULATE_WRITE: one call, no trap a page),
 * and once a chunk of its size has been filled, the next ones take huge pages (mmsb__mem_map()).
 * Each page's struct and bytes fill a slot rounded up to a cache line: no allocator header, and
 * no slack needed to keep two pages' lines apart.
 *
 * A chunk holds slots of one size, is aligned to its size (a page finds it by masking its own
 * address), and keeps a bit a slot in its header: the lowest free slot is handed out again,
 * zeroed, before the chunk's fresh memory, and a chunk with room is on its size's list. The free
 * slots are known from the bits, not from links written into them, so memory a chunk no longer
 * uses can go back to the system: each time its pages fall to half the most it held (a quarter
 * if a page it gave back was taken again since), by 16 KiB of slots or more, the system pages
 * under free slots only are dropped (chunk_sweep()); a slot there is zero again when next
 * touched. An empty chunk is kept for the next pages, two in all (SLAB_SPARES), so that pages
 * made and destroyed in turn do not map a chunk each; past that the oldest is unmapped. The slab
 * belongs to a page table and moves with it (a load swaps tables); the state's lock orders its
 * use. Smaller tables stay on malloc (SLAB_FROM).
 */
/*
 * A table this large (itself mapped: 256 KiB of slots) takes its pages from the slab: a create
 * makes its 4,098th page there, a load of 4,097 pages or more starts there (a table is sized to
 * twice its pages). A slab's chunks are memory new to the process, where malloc hands back what
 * the process freed: a state of a thousand pages made in a process that had freed memory took
 * 1.0-1.2 us a page from the slab and 0.3-0.5 from malloc, on a VM where each 4 KiB new to the
 * process costs some 16 us.
 */
#define SLAB_FROM 16384
#define CHUNK_SIZE (2u << 20)
#define CHUNK_STEP (64u << 10)
#define CHUNK_LINE 64
/* the slot of a page of size bytes: its struct, its bytes (and a redzone), to a line */
#define SLOT_OF(size)                                                                              \
	((PAGE_INLINE_OFF + (size) + SLOT_REDZONE + CHUNK_LINE - 1) & ~(size_t)(CHUNK_LINE - 1))
#define SLOT_MAX SLOT_OF(PAGE_INLINE_MAX)
/*
 * Empty chunks kept for the next pages, in all. One a size would let pages made and destroyed at
 * a chunk's edge map and unmap a chunk each time, but a state that freed pages of many sizes
 * would hold 2 MiB a size with no page in it.
 */
#define SLAB_SPARES 2

/* the least slot, and so the most slots a chunk holds */
#define SLOT_MIN SLOT_OF(1)
#define CHUNK_SLOTS (CHUNK_SIZE / SLOT_MIN)
/*
 * A sweep waits for a chunk's pages to fall to half the most it held since the last, by this many
 * bytes of slots; to a quarter if a page it gave back was taken again since: such a page faults in
 * again, so a state that swings by less than 4 times, or by a few pages, pays for it once.
 */
#define SWEEP_BYTES (16u << 10)
/* the smallest system page the dropped[] map has room for */
#define SWEEP_PAGE_MIN 4096

struct mmsb_page_chunk {
	struct mmsb_slab *slab;
	struct mmsb_page_chunk *next, *prev; /* on its size's list while it has room */
	uint32_t slot, n_slots;		     /* the size of each slot, and how many fit */
	uint32_t live, fresh;		     /* pages in it; slots ever handed out (the lowest) */
	uint32_t high;			     /* most pages since the last sweep */
	uint32_t hint;			     /* used[] has no zero bit below word hint */
	uint32_t populated;		     /* bytes populated from the chunk's start */
	bool swept;			     /* huge pages are off since its first sweep */
	bool regrown;			     /* a page it gave back was taken again since */
	uint64_t used[(CHUNK_SLOTS + 63) / 64]; /* a bit a slot holding a page */
	/* a bit a system page a sweep gave back, until a slot on it is handed out again */
	uint64_t dropped[CHUNK_SIZE / SWEEP_PAGE_MIN / 64];
};

/* slots start past the header, on a line */
#define CHUNK_HDR ((sizeof(struct mmsb_page_chunk) + CHUNK_LINE - 1) & ~(size_t)(CHUNK_LINE - 1))

struct mmsb_slab {
	/* by slot size, in lines */
	struct mmsb_page_chunk *avail[SLOT_MAX / CHUNK_LINE + 1];
	/* a chunk of this size has been filled: the next ones will be, and take huge pages */
	bool filled[SLOT_MAX / CHUNK_LINE + 1];
	struct mmsb_page_chunk *spare[SLAB_SPARES]; /* empty, still on their lists; newest first */
	bool closing;				    /* its table is being freed, with every page */
};

static struct mmsb_page_chunk *chunk_of(const struct mmsb_page *p)
{
	return (struct mmsb_page_chunk *)((uintptr_t)p & ~(uintptr_t)(CHUNK_SIZE - 1));
}

/* The system's page: what madvise() drops at least, whatever length it is given. */
static size_t sys_page(void)
{
	/* states in two threads may ask first together: the same answer, stored atomically */
	static size_t cached;
	size_t pg = __atomic_load_n(&cached, __ATOMIC_RELAXED);

	if (!pg) {
		pg = (size_t)sysconf(_SC_PAGESIZE);
		__atomic_store_n(&cached, pg, __ATOMIC_RELAXED);
	}
	return pg;
}

/*
 * Memory the library maps for itself to hold pages, or pointers to them: a slab's chunks, a large
 * page table. LeakSanitizer scans malloc'ed memory only, so each mapping is a root region for it.
 * align is 0 (the system page's, mmap's own) or a power of two: when it is past the system page,
 * twice the length is mapped, the aligned part kept and the rest given back.
 *
 * huge: all of it will be used, so transparent huge pages may back it where the system allows
 * them on request: one fault maps 2 MiB. On a VM whose every fault, and every first touch of a
 * page the fault mapped, exits to the host (some 20 us a 4 KiB page here), a million creates
 * ran 5 times as fast so, once the host had backed the memory. Otherwise never: on "always", an
 * aligned 2 MiB region holding a few pages would hold 2 MiB.
 */
void *mmsb__mem_map(size_t len, size_t align, bool huge)
{
	size_t extra = align > sys_page() ? align : 0;
	uint8_t *m =
		mmap(NULL, len + extra, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t at = (uintptr_t)m;

	if (m == MAP_FAILED)
		return NULL;
	if (extra) {
		at = (at + align - 1) & ~(uintptr_t)(align - 1);
		if (at > (uintptr_t)m)
			munmap(m, at - (uintptr_t)m);
		munmap((void *)(at + len), (uintptr_t)m + extra - at);
	}
	madvise((void *)at, len, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	if (__lsan_register_root_region)
		__lsan_register_root_region((void *)at, len);
	return (void *)at;
}

/* Fault in [p, p + len) for writing in one call: on a VM each page's fault exits to the host. */
void mmsb__mem_populate(void *p, size_t len)
{
#ifdef MADV_POPULATE_WRITE
	/* a kernel before 5.14 refuses it, and each page faults in when first touched */
	madvise(p, len, MADV_POPULATE_WRITE);
#endif
}

void mmsb__mem_unmap(void *p, size_t len)
{
	/* ASan would hold the poison of a slot against whatever is mapped there next */
	ASAN_UNPOISON_MEMORY_REGION(p, len);
	if (__lsan_unregister_root_region)
		__lsan_unregister_root_region(p, len);
	munmap(p, len);
}

static bool chunk_has_room(const struct mmsb_page_chunk *c)
{
	return c->live < c->n_slots;
}

static uint8_t *slot_at(struct mmsb_page_chunk *c, size_t i)
{
	return (uint8_t *)c + CHUNK_HDR + i * c->slot;
}

static void avail_add(struct mmsb_slab *sl, struct mmsb_page_chunk *c)
{
	struct mmsb_page_chunk **head = &sl->avail[c->slot / CHUNK_LINE];

	c->prev = NULL;
	c->next = *head;
	if (*head)
		(*head)->prev = c;
	*head = c;
}

static void avail_del(struct mmsb_slab *sl, struct mmsb_page_chunk *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		sl->avail[c->slot / CHUNK_LINE] = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
}

static struct mmsb_page_chunk *chunk_new(struct mmsb_slab *sl, size_t n)
{
	struct mmsb_page_chunk *c =
		mmsb__mem_map(CHUNK_SIZE, CHUNK_SIZE, sl->filled[n / CHUNK_LINE]);

	if (!c)
		return NULL;
	/* ASan: nothing past the header is a page's until it is handed out */
	ASAN_POISON_MEMORY_REGION((uint8_t *)c + CHUNK_HDR, CHUNK_SIZE - CHUNK_HDR);
	c->slab = sl;
	c->slot = (uint32_t)n;
	c->n_slots = (uint32_t)((CHUNK_SIZE - CHUNK_HDR) / n);
	avail_add(sl, c);
	return c;
}

/* Slot i is handed out again: the pages under it are no longer dropped. Was one? */
static bool undrop(struct mmsb_page_chunk *c, size_t i)
{
	size_t pg = sys_page(), at = CHUNK_HDR + i * c->slot;
	bool was = false;

	for (size_t q = at / pg; q <= (at + c->slot - 1) / pg; q++) {
		was |= c->dropped[q / 64] >> (q % 64) & 1;
		c->dropped[q / 64] &= ~(1ull << (q % 64));
	}
	return was;
}

/*
 * The lowest free slot, its first used bytes zero: one handed out before (cleared), or the next
 * fresh one (zero as mapped), populated with its step.
 */
static uint8_t *chunk_take(struct mmsb_page_chunk *c, size_t used)
{
	bool reused = c->live < c->fresh;
	size_t i, w, end, to;
	uint8_t *v;

	if (reused) {
		/* the lowest zero bit is a freed slot: one lies below fresh, and all past it are 0 */
		for (w = c->hint; !~c->used[w]; w++)
			;
		c->hint = (uint32_t)w;
		i = w * 64 + (size_t)__builtin_ctzll(~c->used[w]);
		/* memory given back, faulted in again: the next sweep waits longer */
		if (c->swept && undrop(c, i))
			c->regrown = true;
	} else {
		i = c->fresh++;
		end = CHUNK_HDR + (i + 1) * c->slot;
		if (end > c->populated) {
			to = min_t(size_t, (end + CHUNK_STEP - 1) & ~(size_t)(CHUNK_STEP - 1),
				   CHUNK_SIZE);
			mmsb__mem_populate((uint8_t *)c + c->populated, to - c->populated);
			c->populated = (uint32_t)to;
		}
	}
	c->used[i / 64] |= 1ull << (i % 64);
	if (++c->live > c->high)
		c->high = c->live;
	v = slot_at(c, i);
	ASAN_UNPOISON_MEMORY_REGION(v, used);
	if (reused)
		memset(v, 0, used);
	return v;
}

/* no slot of [a, b] holds a page */
static bool slots_empty(const struct mmsb_page_chunk *c, size_t a, size_t b)
{
	for (size_t w = a / 64; w <= b / 64; w++) {
		uint64_t m = ~0ull;

		if (w == a / 64)
			m &= ~0ull << (a % 64);
		if (w == b / 64)
			m &= ~0ull >> (63 - b % 64);
		if (c->used[w] & m)
			return false;
	}
	return true;
}

/*
 * Give back the system pages that hold free slots only and are not given back yet, in runs: one
 * call a run. The header's page stays, and so does what lies past the slots ever handed out (at
 * most a populate step). A huge page would only be split by it, and khugepaged would fill it
 * again: a chunk's first sweep turns them off.
 */
static void chunk_sweep(struct mmsb_page_chunk *c)
{
	const size_t pg = sys_page(), last = CHUNK_HDR + (size_t)c->fresh * c->slot;
	size_t run = 0;

	c->high = c->live;
	c->regrown = false;
	if (pg < SWEEP_PAGE_MIN || CHUNK_SIZE % pg)
		return;
	if (!c->swept) {
		madvise(c, CHUNK_SIZE, MADV_NOHUGEPAGE);
		c->swept = true;
	}
	for (size_t q = pg; q + pg <= last; q += pg) {
		size_t a = (q - CHUNK_HDR) / c->slot, b = (q + pg - 1 - CHUNK_HDR) / c->slot;
		uint64_t bit = 1ull << (q / pg % 64), *d = &c->dropped[q / pg / 64];

		if (!(*d & bit) && slots_empty(c, a, b)) {
			*d |= bit;
			run = run ? run : q;
			continue;
		}
		if (run)
			madvise((uint8_t *)c + run, q - run, MADV_DONTNEED);
		run = 0;
	}
	if (run)
		madvise((uint8_t *)c + run, last / pg * pg - run, MADV_DONTNEED);
}

static void spare_drop(struct mmsb_slab *sl, const struct mmsb_page_chunk *c)
{
	for (size_t i = 0; i < SLAB_SPARES; i++) {
		if (sl->spare[i] == c) {
			memmove(&sl->spare[i], &sl->spare[i + 1],
				(SLAB_SPARES - 1 - i) * sizeof(sl->spare[0]));
			sl->spare[SLAB_SPARES - 1] = NULL;
			return;
		}
	}
}

/* A page's struct and bytes, zeroed: size bytes of it, in a slot of its size's chunks. */
static struct mmsb_page *slab_take(struct mmsb_slab *sl, size_t size)
{
	size_t n = SLOT_OF(size);
	struct mmsb_page_chunk *c = sl->avail[n / CHUNK_LINE];
	uint8_t *v;

	if (!c && !(c = chunk_new(sl, n)))
		return NULL;
	if (!c->live)
		spare_drop(sl, c);
	v = chunk_take(c, PAGE_INLINE_OFF + size);
	if (!chunk_has_room(c)) {
		avail_del(sl, c);
		sl->filled[n / CHUNK_LINE] = true;
	}
	return (struct mmsb_page *)v;
}

static void slab_give(struct mmsb_page_chunk *c, void *v)
{
	struct mmsb_slab *sl = c->slab;
	struct mmsb_page_chunk *old = sl->spare[SLAB_SPARES - 1];
	size_t i = (size_t)((uint8_t *)v - slot_at(c, 0)) / c->slot;

	/* ASan then sees any use of the page after its destroy */
	ASAN_POISON_MEMORY_REGION(v, c->slot);
	if (!chunk_has_room(c))
		avail_add(sl, c);
	c->used[i / 64] &= ~(1ull << (i % 64));
	c->hint = min_t(uint32_t, c->hint, (uint32_t)(i / 64));
	if (--c->live) {
		if ((size_t)(c->high - c->live) * c->slot >= SWEEP_BYTES &&
		    c->live <= c->high / (c->regrown ? 4 : 2) && !sl->closing)
			chunk_sweep(c);
		return;
	}
	if (sl->closing) {
		avail_del(sl, c);
		mmsb__mem_unmap(c, CHUNK_SIZE);
		return;
	}
	/* kept for the next page; the oldest spare past SLAB_SPARES goes back */
	c->high = 0;
	memmove(&sl->spare[1], &sl->spare[0], (SLAB_SPARES - 1) * sizeof(sl->spare[0]));
	sl->spare[0] = c;
	if (old) {
		avail_del(sl, old);
		mmsb__mem_unmap(old, CHUNK_SIZE);
	}
}

void mmsb__slab_closing(struct mmsb_slab *sl)
{
	sl->closing = true;
}

void mmsb__slab_free(struct mmsb_slab *sl)
{
	/* every page is destroyed by now: what is left are the empty chunks kept for the next */
	for (size_t i = 0; i < ARRAY_SIZE(sl->avail); i++) {
		while (sl->avail[i]) {
			struct mmsb_page_chunk *c = sl->avail[i];

			avail_del(sl, c);
			mmsb__mem_unmap(c, CHUNK_SIZE);
		}
	}
	free(sl);
}

/* a page's struct and bytes from its table's slab, made when the table first needs it */
static struct mmsb_page *slab_page(struct mmsb_page_map *m, size_t size)
{
	struct mmsb_page *p;

	if (!m->slab && !(m->slab = calloc(1, sizeof(*m->slab))))
		return NULL;
	p = slab_take(m->slab, size);
	if (p)
		p->pooled = true;
	return p;
}

struct mmsb_page *mmsb__page_new(struct mmsb_page_map *m, uint64_t id, size_t size, int loc)
{
	bool inl = size <= PAGE_INLINE_MAX;
	struct mmsb_page *p;

	if (inl && m->cap >= SLAB_FROM)
		p = slab_page(m, size);
	else
		p = calloc(1, (inl ? PAGE_INLINE_OFF + size : sizeof(*p)) + PAGE_SLACK);
	if (!p)
		return NULL;
	if (inl) {
		p->data = (uint8_t *)p + PAGE_INLINE_OFF;
	} else {
		p->data = calloc(1, size);
		if (!p->data) {
			free(p);
			return NULL;
		}
	}
	p->id = id;
	p->size = size;
	p->location = (uint8_t)loc;
	return p;
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
	if (p->pooled)
		slab_give(chunk_of(p), p);
	else
		free(p);
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
	p = mmsb__page_new(&s->pages, id, size, loc);
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
