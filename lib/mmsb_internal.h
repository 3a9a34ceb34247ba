/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Internals shared by the library sources; never installed. */
#ifndef __MMSB_INTERNAL_H
#define __MMSB_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "mmsb/mmsb.h"

#define MMSB_HIDDEN __attribute__((visibility("hidden")))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define min_t(t, a, b) ((t)(a) < (t)(b) ? (t)(a) : (t)(b))
#define max_t(t, a, b) ((t)(a) > (t)(b) ? (t)(a) : (t)(b))

#ifndef offsetofend
#define offsetofend(TYPE, FIELD) (offsetof(TYPE, FIELD) + sizeof(((TYPE *)0)->FIELD))
#endif

/* A caller built against a newer header may pass a larger struct: its extra bytes must be 0. */
static inline bool mmsb__opts_tail_zero(const void *opts, size_t ours, size_t theirs)
{
	const uint8_t *p = opts;

	for (size_t i = ours; i < theirs; i++)
		if (p[i])
			return false;
	return true;
}

/*
 * Options structs, checked the way libbpf checks its own (libbpf_internal.h). Valid: NULL, or a
 * struct that holds at least the fields up to TYPE__last_field and, when it is larger than ours
 * (a newer header), only zeroes past our struct; past, not past the last field, because a struct
 * built without MMSB_OPTS() may hold anything in its padding. OPTS_GET reads a field where the
 * caller's struct has it and gives the fallback where it has not (NULL, or an older header).
 */
#define OPTS_VALID(opts, type)                                                                     \
	(!(opts) || ((opts)->sz >= offsetofend(struct type, type##__last_field) &&                 \
		     mmsb__opts_tail_zero((opts), sizeof(struct type), (opts)->sz)))
#define OPTS_HAS(opts, field) ((opts) && (opts)->sz >= offsetofend(__typeof__(*(opts)), field))
#define OPTS_GET(opts, field, fallback) (OPTS_HAS(opts, field) ? (opts)->field : (fallback))

/* Set errno from a negative error and return NULL: the constructor convention. */
static inline void *mmsb__err_ptr(int err)
{
	errno = err < 0 ? -err : err;
	return NULL;
}

void mmsb__pr(enum mmsb_print_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3))) MMSB_HIDDEN;
#define pr_warn(fmt, ...) mmsb__pr(MMSB_WARN, "mmsb: " fmt, ##__VA_ARGS__)
#define pr_info(fmt, ...) mmsb__pr(MMSB_INFO, "mmsb: " fmt, ##__VA_ARGS__)
#define pr_debug(fmt, ...) mmsb__pr(MMSB_DEBUG, "mmsb: " fmt, ##__VA_ARGS__)

static inline uint64_t mmsb__now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int mmsb__grow_to(void **arr, size_t *cap, size_t need, size_t elem) MMSB_HIDDEN;

/*
 * Grow *arr (of elem-sized items, capacity *cap) to hold at least need items. The test inline:
 * loops push one item at a time, and a call there, even one that returns at once, made the
 * compiler reload whatever it could not prove the callee left alone.
 */
static inline int mmsb__grow(void **arr, size_t *cap, size_t need, size_t elem)
{
	return need <= *cap ? 0 : mmsb__grow_to(arr, cap, need, elem);
}

uint32_t mmsb__crc32c(uint32_t crc, const void *buf, size_t len) MMSB_HIDDEN;

/* Little-endian encoding into a growable byte buffer (log frames, checkpoints, blobs). */
struct mmsb_buf {
	uint8_t *p;
	size_t len, cap;
};

int mmsb__buf_reserve(struct mmsb_buf *b, size_t extra) MMSB_HIDDEN;
void mmsb__buf_free(struct mmsb_buf *b) MMSB_HIDDEN;

static inline void mmsb__put(struct mmsb_buf *b, const void *src, size_t n)
{
	if (!n)
		return; /* src may be NULL for an empty field */
	memcpy(b->p + b->len, src, n);
	b->len += n;
}
/* x86-64 and every target we build for is little-endian; the formats are little-endian. */
#define MMSB__PUT(b, v)                                                                            \
	do {                                                                                       \
		__typeof__(v) __v = (v);                                                           \
		mmsb__put((b), &__v, sizeof(__v));                                                 \
	} while (0)

/* Bounds-checked little-endian decoding from a byte range: every get checks before it reads. */
struct mmsb_cursor {
	const uint8_t *p;
	size_t len, off;
};

static inline bool mmsb__cur_get(struct mmsb_cursor *c, void *dst, size_t n)
{
	if (n > c->len - c->off)
		return false;
	memcpy(dst, c->p + c->off, n);
	c->off += n;
	return true;
}

static inline const uint8_t *mmsb__cur_take(struct mmsb_cursor *c, size_t n)
{
	const uint8_t *p;

	if (n > c->len - c->off)
		return NULL;
	p = c->p + c->off;
	c->off += n;
	return p;
}

/* ---- what the library calls of its own API: the same work, without the api__ probes ---- */

const char *mmsb__strerror(int err) MMSB_HIDDEN;
void mmsb__state_close(struct mmsb_state *s) MMSB_HIDDEN;
void mmsb__delta_free(struct mmsb_delta *d) MMSB_HIDDEN;
size_t mmsb__diff_mask(const void *a, const void *b, size_t len, uint8_t *out) MMSB_HIDDEN;
/* The same, and (bits not NULL) the mask packed LSB-first into bits, in the same pass. */
size_t mmsb__diff_bits(const void *a, const void *b, size_t len, uint8_t *out,
		       uint8_t *bits) MMSB_HIDDEN;
ssize_t mmsb__graph_toposort(struct mmsb_state *s, uint64_t *ids, size_t max) MMSB_HIDDEN;
struct mmsb_log_reader *mmsb__log_reader_open(const char *path) MMSB_HIDDEN;
void mmsb__log_reader_close(struct mmsb_log_reader *r) MMSB_HIDDEN;
int mmsb__log_reader_version(const struct mmsb_log_reader *r) MMSB_HIDDEN;
uint64_t mmsb__log_reader_log_id(const struct mmsb_log_reader *r) MMSB_HIDDEN;
int mmsb__log_reader_next(struct mmsb_log_reader *r, struct mmsb_log_record *rec) MMSB_HIDDEN;
struct mmsb_state *mmsb__replay(const char *log_path, const struct mmsb_replay_opts *o) MMSB_HIDDEN;

/* ---- deltas ---- */

struct mmsb_delta {
	/* what validation and apply read: one cache line */
	uint64_t page_id;
	size_t mask_len, mask_count, payload_len;
	uint8_t *mask; /* one byte per entry, 0 or 1 */
	uint8_t *payload;
	bool sparse;
	bool owns_source;
	/* a diff's dense delta: the payload is the page's whole new contents, an apply a copy */
	bool whole;
	uint32_t epoch;
	/* the mask packed LSB-first as the log holds it, when the diff made it; else NULL */
	const uint8_t *bits;
	/* the byte of the page that mask entry 0 stands for (a range write; else 0) */
	uint64_t offset;
	/* labels */
	uint64_t id, lsn, timestamp;
	char *source;
	char *intent;
};

/* A delta whose mask and payload live in the same allocation as the struct. */
struct mmsb_delta *mmsb__delta_alloc(uint64_t page_id, size_t mask_len, size_t payload_len,
				     bool sparse) MMSB_HIDDEN;
/* The original's structural rule (every hot path runs it: inline). */
static inline int mmsb__delta_validate(const struct mmsb_delta *d)
{
	if (d->sparse)
		return d->mask_count == d->payload_len ? 0 : -MMSB_ERR_DELTA_SCHEMA;
	return d->mask_len == d->payload_len ? 0 : -MMSB_ERR_DELTA_SCHEMA;
}
/*
 * Describe the change from old to new (len bytes each) as d's mask and payload, in one pass over
 * both: mask gets the diff, and bits (when not NULL: len / 8 + 1 bytes) the same packed for the
 * log; the payload is new itself (dense: applying it is a copy of new) or, when fewer than half
 * the bytes changed, those bytes gathered into pay (sparse; pay may be new). Returns the number of
 * changed bytes (0: no delta).
 */
size_t mmsb__delta_diff(struct mmsb_delta *d, const uint8_t *old, const uint8_t *new, size_t len,
			uint8_t *mask, uint8_t *pay, uint8_t *bits) MMSB_HIDDEN;
/* The scratch bytes a diff of len bytes needs: its mask, a sparse payload, the packed bits. */
static inline size_t mmsb__diff_scratch(size_t len)
{
	return len > SIZE_MAX / 2 ? 0 : len + len / 2 + 1 + len / 8 + 1;
}
/* Byte-mask kernels (bytes.c): masks are one byte per position, 0 or 1. */
size_t mmsb__popcount_bytes(const uint8_t *mask, size_t n) MMSB_HIDDEN;
void mmsb__pack_mask(const uint8_t *mask, size_t n, uint8_t *bits) MMSB_HIDDEN;
void mmsb__unpack_mask(const uint8_t *bits, size_t n, uint8_t *mask) MMSB_HIDDEN;
/* dst[i] = src[i] where mask[i] */
void mmsb__blend(uint8_t *dst, const uint8_t *src, const uint8_t *mask, size_t n) MMSB_HIDDEN;
/* dst[i] = the next src byte where mask[i]; returns how many were taken */
size_t mmsb__scatter(uint8_t *dst, const uint8_t *src, const uint8_t *mask, size_t n) MMSB_HIDDEN;
/* the bytes of src where mask[i], packed into dst (which may be src); returns how many */
size_t mmsb__gather(uint8_t *dst, const uint8_t *src, const uint8_t *mask, size_t n) MMSB_HIDDEN;
/* the positions i < n where mask[i], in order, into idx; returns how many (< 2^32 per page) */
size_t mmsb__mask_index(const uint8_t *mask, size_t n, uint32_t *idx) MMSB_HIDDEN;

bool mmsb__utf8_valid(const uint8_t *s, size_t n) MMSB_HIDDEN;

/* ---- pages ---- */

struct mmsb_page;

struct mmsb_edge_ent {
	struct mmsb_page *peer;
	uint8_t type;
};

struct mmsb_edge_vec {
	struct mmsb_edge_ent *v;
	uint32_t n, cap;
};

struct mmsb_meta_ent {
	char *key;
	uint8_t *val;
	size_t klen, vlen;
};

struct mmsb_page {
	/* what an apply touches: one cache line */
	uint64_t id;
	size_t size;
	uint8_t *data;
	uint64_t batch_gen;	   /* engine batch that last touched the page */
	const uint8_t *stage_data; /* a logged update batch: the page's staged contents */
	uint32_t stage_epoch;	   /* a logged batch: the epoch its staged deltas reached */
	uint32_t epoch;
	uint8_t location;
	uint8_t flags; /* MMSB_PAGE_* */
	/*
	 * The flags gathered here, where they fill the line's tail: scattered between wider fields,
	 * their padding made every page 16 bytes larger, and a load of a million pages faults in
	 * each byte of them.
	 */
	uint8_t coh;   /* GPU pages: MMSB_COH_* copies that are current */
	bool queued;   /* in the deferred queue */
	bool has_sig;  /* recompute_sig is set */
	bool inv_seen; /* inv_epoch is set */
	bool pooled;   /* the struct lies in a slab's chunk */
	uint64_t mark; /* graph walks */

	struct mmsb_meta_ent *meta;
	size_t n_meta, cap_meta;

	struct mmsb_edge_vec children, parents; /* sorted by (peer id, type) */

	mmsb_recompute_fn recompute;
	void *recompute_ctx;
	/* passthrough binding: recompute copies (or transforms) this page */
	uint64_t pt_source;
	mmsb_transform_fn pt_fn;
	void *pt_ctx;
	/* epochs of the data parents at the last recompute, folded (RecomputeSignature) */
	uint64_t recompute_sig;

	void *dev;	      /* GPU pages: the device copy (data is its host mirror) */
	uint32_t inv_epoch;   /* epoch at the last invariant check */
	uint32_t integ_epoch; /* last epoch seen by mmsb_check_deltas() */
	uint32_t mem_epoch;   /* epoch at the last memory report */
	uint32_t mem_age;     /* reports since the epoch last moved */

	/* wave scratch, valid while wave == state->wave_gen (indeg: Tarjan's lowlink too) */
	uint64_t wave;
	uint32_t indeg;
	bool dirty, changed, invalidated;
};

/* The key sits beside the pointer so a lookup never touches a page it does not return. */
struct mmsb_slot {
	uint64_t id;
	struct mmsb_page *p; /* NULL: empty */
};

struct mmsb_slab;
struct mmsb_page_map {
	struct mmsb_slot *slots;
	size_t cap, n;		/* cap is a power of two */
	struct mmsb_slab *slab; /* the memory of its pages, once it is large: page.c */
};

static inline size_t mmsb__slot_of(const struct mmsb_page_map *m, uint64_t id)
{
	/* Fibonacci hashing spreads sequential ids over the table */
	return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 17) & (m->cap - 1);
}

/* The page with this id, or NULL (every lookup of the library: inline). */
static inline struct mmsb_page *mmsb__map_get(const struct mmsb_page_map *m, uint64_t id)
{
	if (!m->cap)
		return NULL;
	for (size_t i = mmsb__slot_of(m, id);; i = (i + 1) & (m->cap - 1)) {
		const struct mmsb_slot *sl = &m->slots[i];

		if (!sl->p || sl->id == id)
			return sl->p;
	}
}
/* The rest of the table (pagemap.c). */
int mmsb__map_put(struct mmsb_page_map *m, struct mmsb_page *p) MMSB_HIDDEN;
/* Room for n pages without a rehash (a checkpoint load knows its count up front). */
int mmsb__map_reserve(struct mmsb_page_map *m, size_t n) MMSB_HIDDEN;
void mmsb__map_del(struct mmsb_page_map *m, uint64_t id) MMSB_HIDDEN;
/* Destroy every page of the table, then the table. */
void mmsb__map_free(struct mmsb_page_map *m) MMSB_HIDDEN;
/* qsort comparator for an array of struct mmsb_page pointers, by id. */
int mmsb__cmp_page_id(const void *a, const void *b) MMSB_HIDDEN;
/* Pages sorted by id; caller frees the array. */
struct mmsb_page **mmsb__map_sorted(const struct mmsb_page_map *m, size_t *n) MMSB_HIDDEN;

#define mmsb__map_for_each(m, i, pg)                                                               \
	for ((i) = 0; (i) < (m)->cap; (i)++)                                                       \
		if (((pg) = (m)->slots[i].p) != NULL)

/*
 * A zeroed page of the table m's: its memory comes from the table's slab once the table is large
 * (see page.c), from malloc before. The page is not put in the table.
 */
struct mmsb_page *mmsb__page_new(struct mmsb_page_map *m, uint64_t id, size_t size,
				 int loc) MMSB_HIDDEN;
void mmsb__page_destroy(struct mmsb_page *p) MMSB_HIDDEN;
/*
 * The table is going, with every page (mmsb__map_free): what a destroy frees is not swept or kept
 * for the next page. Then, after the last of its pages, free the slab.
 */
void mmsb__slab_closing(struct mmsb_slab *sl) MMSB_HIDDEN;
void mmsb__slab_free(struct mmsb_slab *sl) MMSB_HIDDEN;
/* Zeroed memory mapped for pages or pointers to them, populated apart (page.c). */
void *mmsb__mem_map(size_t len, size_t align, bool huge) MMSB_HIDDEN;
void mmsb__mem_populate(void *p, size_t len) MMSB_HIDDEN;
void mmsb__mem_unmap(void *p, size_t len) MMSB_HIDDEN;
/* Metadata (meta.c): the blob is u32 count, then (u32 klen, key, u32 vlen, value) per entry. */
int mmsb__meta_encode(const struct mmsb_page *p, struct mmsb_buf *b) MMSB_HIDDEN;
/* Decode a blob into a fresh entry array (validated whole before anything is returned). */
int mmsb__meta_decode(const uint8_t *blob, size_t len, struct mmsb_meta_ent **out,
		      size_t *n) MMSB_HIDDEN;
void mmsb__meta_free(struct mmsb_meta_ent *m, size_t n) MMSB_HIDDEN;
/*
 * The GPU tier (gpu.c): device work only, never a call back into the page store or the commit
 * path. p->data is a GPU page's host mirror, current when coh has HOST; p->dev the device copy,
 * current when coh has DEV; at least one of the two always is.
 */
#define MMSB_COH_HOST 1
#define MMSB_COH_DEV 2
struct mmsb_gpu_ops;
const struct mmsb_gpu_ops *mmsb__gpu(void) MMSB_HIDDEN;
bool mmsb__gpu_prefer(size_t size, size_t changed, size_t batch) MMSB_HIDDEN;
int mmsb__gpu_page_alloc(struct mmsb_page *p) MMSB_HIDDEN;
/* Has any page of the process a device copy? (false: no page's p->dev needs a look) */
bool mmsb__gpu_any_pages(void) MMSB_HIDDEN;
void mmsb__gpu_page_free(struct mmsb_page *p) MMSB_HIDDEN;
void mmsb__gpu_host_written(struct mmsb_page *p) MMSB_HIDDEN;
/* Copy the device copy into the host mirror (counted in mmsb_gpu_info().errors on a failure). */
int mmsb__gpu_download(struct mmsb_page *p) MMSB_HIDDEN;
/* Make the device copy current: an upload when it is stale. */
int mmsb__gpu_upload(struct mmsb_page *p) MMSB_HIDDEN;
/*
 * The router for one apply of `changed` bytes to p: true when it goes to the device, whose copy is
 * then current; false when the host takes it (counted as routed to the CPU).
 */
bool mmsb__gpu_route(struct mmsb_page *p, size_t changed) MMSB_HIDDEN;
/* Apply d's first n bytes to p's (current) device copy, which becomes the only current one. */
int mmsb__gpu_apply(struct mmsb_page *p, const struct mmsb_delta *d, size_t n,
		    size_t changed) MMSB_HIDDEN;
/*
 * The deltas to GPU pages among pages[0..n), in input order and one launch; CPU pages are skipped.
 * On an error no device copy is marked current: the caller applies them on the host.
 */
int mmsb__gpu_apply_batch(struct mmsb_page **pages, struct mmsb_delta *const *ds,
			  size_t n) MMSB_HIDDEN;

/* Bring a page's host copy up to date before the host reads it (a no-op for CPU pages). */
static inline int mmsb__page_host(struct mmsb_page *p)
{
	if (!p->dev || (p->coh & MMSB_COH_HOST))
		return 0;
	return mmsb__gpu_download(p);
}

/* ---- graph ---- */

/* A binary min-heap of pages by id: ties in every ordered walk go to the smallest id. */
struct mmsb_heap {
	struct mmsb_page **v;
	size_t n, cap;
};

int mmsb__heap_push(struct mmsb_heap *h, struct mmsb_page *p) MMSB_HIDDEN;
struct mmsb_page *mmsb__heap_pop(struct mmsb_heap *h) MMSB_HIDDEN;

int mmsb__edge_link(struct mmsb_page *parent, struct mmsb_page *child, int type) MMSB_HIDDEN;
void mmsb__edges_drop(struct mmsb_state *s, struct mmsb_page *p) MMSB_HIDDEN;
int mmsb__tarjan(struct mmsb_page_map *m, uint64_t *mark_gen, struct mmsb_cycle_report *r,
		 bool fresh) MMSB_HIDDEN;

/* ---- log writer ---- */

#define MMSB_LOG_MAGIC "MMSBLOG1"
#define MMSB_LOG_V3_HDR_LEN 36
#define MMSB_LOG_V3_FIXED 72 /* fixed part of a v3 record body */
#define MMSB_LOG_V3_FRAME_HDR 8
/* Frames larger than this are refused as corrupt before anything is allocated. */
#define MMSB_LOG_MAX_FRAME (1ull << 32)

struct mmsb_log;

int mmsb__log_open(const char *path, enum mmsb_log_mode mode, enum mmsb_durability dur,
		   struct mmsb_log **out) MMSB_HIDDEN;
void mmsb__log_close(struct mmsb_log *l) MMSB_HIDDEN;
int mmsb__log_page(struct mmsb_log *l, enum mmsb_log_kind kind, uint64_t id, uint64_t size,
		   int loc) MMSB_HIDDEN;
/* End of an update/route/batch: the group commit the durability policy asks for. */
int mmsb__log_commit(struct mmsb_log *l) MMSB_HIDDEN;
/* Write and fdatasync whatever is buffered, whatever the policy. */
int mmsb__log_sync(struct mmsb_log *l) MMSB_HIDDEN;
/* Write whatever is buffered; fdatasync unless the policy is NONE. */
int mmsb__log_flush(struct mmsb_log *l) MMSB_HIDDEN;
/* Framing for the commit path: frame without writing, undo to a mark, one write + sync. */
struct mmsb_log_mark {
	size_t buf_len;
	uint64_t next_lsn, records, pending;
};
struct mmsb_log_mark mmsb__log_mark(const struct mmsb_log *l) MMSB_HIDDEN;
void mmsb__log_rollback(struct mmsb_log *l, struct mmsb_log_mark m) MMSB_HIDDEN;
/* Frame d into the buffer, not written yet; assigns d->lsn. */
int mmsb__log_buffer(struct mmsb_log *l, struct mmsb_delta *d) MMSB_HIDDEN;
/* NONE: the usual threshold write; BATCH and EVERY: write and fdatasync now. */
int mmsb__log_commit_batch(struct mmsb_log *l) MMSB_HIDDEN;
uint64_t mmsb__log_next_lsn(const struct mmsb_log *l) MMSB_HIDDEN;
enum mmsb_durability mmsb__log_durability(const struct mmsb_log *l) MMSB_HIDDEN;
uint64_t mmsb__log_id(const struct mmsb_log *l) MMSB_HIDDEN;
const char *mmsb__log_path(const struct mmsb_log *l) MMSB_HIDDEN;
void mmsb__log_stats(const struct mmsb_log *l, struct mmsb_stats *st) MMSB_HIDDEN;
void mmsb__log_stats_reset(struct mmsb_log *l) MMSB_HIDDEN;

/* ---- checkpoints ---- */

int mmsb__checkpoint_parse(const char *path, struct mmsb_state **out,
			   struct mmsb_checkpoint_info *info) MMSB_HIDDEN;
/*
 * Replay the records of the v3 log at log_path after LSN after onto t (a parsed checkpoint of that
 * log): -MMSB_ERR_LOG_FOREIGN when the file is not the v3 log with id log_id.
 */
int mmsb__replay_tail(struct mmsb_state *t, const char *log_path, uint64_t log_id,
		      uint64_t after) MMSB_HIDDEN;

/* ---- state ---- */

struct mmsb_sub {
	int64_t id;
	unsigned int mask;
	mmsb_event_filter_fn filter;
	mmsb_event_fn fn;
	void *ctx;
};

#define MMSB_PROV_SLOTS 128

struct mmsb_prov_ent {
	uint64_t id, graph_gen;
	unsigned int depth;
	size_t n;
	uint64_t *ids; /* NULL: empty slot */
};

struct mmsb_undo {
	struct mmsb_page *p;
	uint32_t epoch;
	size_t off, len; /* the bytes the change may write */
	uint8_t *data;	 /* those bytes before the change */
};

struct mmsb_state {
	pthread_mutex_t lock; /* recursive: callbacks under it may read the state */
	struct mmsb_page_map pages;
	size_t n_edges;
	uint64_t next_page_id, next_delta_id;
	int default_location;
	bool deferred;
	/* > 0 while a recompute, transform or handler runs: mutations are refused then */
	int in_callback;
	struct mmsb_log *log;

	uint64_t wave_gen, mark_gen;
	uint64_t graph_gen; /* bumped by every graph change: invalidates provenance */
	uint64_t batch_gen;
	struct mmsb_prov_ent *prov; /* direct-mapped provenance cache, MMSB_PROV_SLOTS */
	uint64_t *queue;	    /* deferred recompute queue, FIFO, no duplicates */
	size_t n_queue, cap_queue;

	struct mmsb_sub *subs;
	size_t n_subs, cap_subs;
	int64_t next_sub_id;

	/*
	 * Pages changed in this call whose frames are not durable yet (propagation's, and under batch
	 * and none the caller's own when a wave follows): undone if the call's commit fails.
	 */
	struct mmsb_undo *undo;
	size_t n_undo, cap_undo;
	uint64_t undo_next_delta_id; /* next_delta_id before the first of them */

	uint8_t *scratch; /* diff masks and recompute buffers: see mmsb__scratch() */
	size_t scratch_cap;

	struct mmsb_stats st;
};

void mmsb__lock(struct mmsb_state *s) MMSB_HIDDEN;
void mmsb__unlock(struct mmsb_state *s) MMSB_HIDDEN;
/* Lock and refuse mutation from inside a callback; returns 0 with the lock held, or -EDEADLK. */
int mmsb__lock_mut(struct mmsb_state *s) MMSB_HIDDEN;

/*
 * The prologue of a call on one page: lock s (refusing mutation from inside a callback when mut,
 * as mmsb__lock_mut() does) and find page id. 0 with the lock held and *p set; else the lock is
 * not held and the error says why: -EINVAL (no state), -EDEADLK, -MMSB_ERR_PAGE_NOT_FOUND.
 */
int mmsb__lock_page(struct mmsb_state *s, uint64_t id, bool mut, struct mmsb_page **p) MMSB_HIDDEN;
int mmsb__page_insert(struct mmsb_state *s, uint64_t id, size_t size, int loc,
		      bool logged) MMSB_HIDDEN;
/*
 * The state's one scratch buffer, at least n bytes, owned by the state and used under its lock.
 * It lives until the next mmsb__scratch() call, which may move it: a caller is done with it before
 * anything it calls asks again. A propagation wave asks (each recompute diffs in it), so an update
 * or route commits the delta its scratch holds before it starts the wave, and never reads the
 * scratch after.
 */
uint8_t *mmsb__scratch(struct mmsb_state *s, size_t n) MMSB_HIDDEN;
void mmsb__emit(struct mmsb_state *s, enum mmsb_event_type t, uint64_t page, uint64_t delta,
		uint32_t epoch) MMSB_HIDDEN;
struct mmsb_state *mmsb__state_new(void) MMSB_HIDDEN;

/*
 * S takes over the pages of T (a checkpoint or a log built into a detached state): they carry
 * the marks of T's walks, so S's next walks start past T's generations, or a page whose mark
 * equals a walk's generation counts as already visited.
 */
static inline void mmsb__gens_follow(struct mmsb_state *s, const struct mmsb_state *t)
{
	s->mark_gen = max_t(uint64_t, s->mark_gen, t->mark_gen);
	s->wave_gen = max_t(uint64_t, s->wave_gen, t->wave_gen);
}

/* ---- the commit path (commit.c): log, then apply, count and emit ---- */

/*
 * Apply a validated delta's bytes (the side the router picks for a GPU page, the host when the
 * device fails it): 0 with the bytes written in *bytes, or the error of a failed download of the
 * host mirror, the page unchanged.
 */
int mmsb__apply_bytes(struct mmsb_page *p, const struct mmsb_delta *d, size_t *bytes) MMSB_HIDDEN;
/* The same, then epoch = old + 1 (replay). */
int mmsb__apply(struct mmsb_page *p, const struct mmsb_delta *d, size_t *bytes) MMSB_HIDDEN;
/*
 * Before d is logged: make current the copy of p its apply will write, so a download that fails
 * fails here, while nothing is logged or moved, and not after the frame is written.
 */
int mmsb__apply_prepare(struct mmsb_page *p, const struct mmsb_delta *d) MMSB_HIDDEN;

/*
 * Log d (when there is a log), apply it, count it, emit DELTA_APPLIED, inside a delta__apply span.
 * The delta is already validated. The frame is committed as the durability policy says before the
 * page changes, so a failed write changes nothing; a derived delta (propagation), and under batch
 * and none a caller's delta to a page a wave follows, is only framed, its page saved for
 * mmsb__finish() to commit or undo: the caller calls it even when this fails. For one delta at a
 * time; a logged batch frames its deltas first (mmsb__commit_staged()) and then applies them with
 * mmsb__apply_logged/mmsb__apply_batch.
 */
int mmsb__commit_traced(struct mmsb_state *s, struct mmsb_page *p, struct mmsb_delta *d,
			bool derived) MMSB_HIDDEN;
/*
 * A logged batch's frames are buffered (the pages holding them marked gen), or err says why not.
 * Commit them before the first byte changes; or, under batch and none when a wave follows, leave
 * them for the call's one commit in mmsb__finish(), each page saved to be undone with the wave's
 * pages if it fails. On an error the frames are dropped and nothing has changed.
 */
int mmsb__commit_staged(struct mmsb_state *s, struct mmsb_page **pages, size_t n, uint64_t gen,
			struct mmsb_log_mark mark, int err) MMSB_HIDDEN;
/* A delta already framed and committed (its id and epoch stamped): apply, count, emit. */
int mmsb__apply_logged(struct mmsb_state *s, struct mmsb_page *p,
		       const struct mmsb_delta *d) MMSB_HIDDEN;
/* Does this batch's GPU work go to the device in one launch? The router, at the batch's size. */
bool mmsb__batch_on_gpu(struct mmsb_page **pages, struct mmsb_delta *const *ds,
			size_t n) MMSB_HIDDEN;
/*
 * A routed batch already framed and committed: apply each delta in input order (GPU pages in one
 * launch when on_gpu), the pages it changed into changed[] (each once). With a log, an apply that
 * fails does not stop it: the other pages' deltas are applied, the failed page's later ones only
 * spend their ids and epochs (the log holds them all), and the first error is returned. Without
 * one it stops at the error.
 */
int mmsb__apply_batch(struct mmsb_state *s, struct mmsb_page **pages, struct mmsb_delta *const *ds,
		      size_t n, bool on_gpu, struct mmsb_page **changed,
		      size_t *n_changed) MMSB_HIDDEN;

/*
 * End of a mutating call: the log's group commit; the call's own error wins. When the commit fails,
 * the pages the call changed without a durable frame go back to their bytes and epochs, and the
 * delta ids they took are given back.
 */
int mmsb__finish(struct mmsb_state *s, int err) MMSB_HIDDEN;

/* ---- propagation ---- */

int mmsb__wave(struct mmsb_state *s, struct mmsb_page **changed, size_t n_changed,
	       struct mmsb_page **dirty, size_t n_dirty) MMSB_HIDDEN;

#endif /* __MMSB_INTERNAL_H */
