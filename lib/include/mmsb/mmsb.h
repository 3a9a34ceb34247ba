/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * libmmsb: the MMSB state bus.
 *
 * Fixed-size pages changed by masked deltas, a checksummed transaction log, atomic checkpoints,
 * a typed dependency graph and a propagation engine that recomputes what depends on a change.
 *
 * Conventions (after libbpf):
 *  - Functions returning int return 0 (or a count) on success and a negative error on failure:
 *    either -errno or -MMSB_ERR_* (>= 4000); mmsb_strerror() names both.
 *  - Constructors return NULL and set errno (positive) on failure. Destructors accept NULL.
 *  - Options structs start with `size_t sz`; declare them with MMSB_OPTS() so fields can be added
 *    without breaking callers.
 *  - The library never prints; it reports through the callback given to mmsb_set_print().
 *
 * Threads: every call that takes a struct mmsb_state serialises on that state's mutex; distinct
 * states are independent. Recompute callbacks, transforms and event handlers run with the state's
 * mutex held: they may read the state (page reads, metadata, graph queries) but a call that would
 * change it (update, route, create, free, edges, checkpoint load) returns -EDEADLK from inside them.
 * A struct mmsb_delta is a plain value: use one delta from one thread at a time.
 */
#ifndef __MMSB_MMSB_H
#define __MMSB_MMSB_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MMSB_API __attribute__((visibility("default")))

#define MMSB_VERSION_MAJOR 0
#define MMSB_VERSION_MINOR 1
#define MMSB_VERSION_PATCH 0

/** @brief The library's version as "MAJOR.MINOR.PATCH". */
MMSB_API const char *mmsb_version(void);

/* ------------------------------------------------------------------------------------------ */
/* Errors                                                                                      */

#define MMSB_ERRNO__START 4000

/* X(name, value, message): the one table that gives the enum and mmsb_strerror(). */
#define MMSB_ERRNO_MAP(X)                                                                          \
	X(PAGE_NOT_FOUND, 4000, "page not found")                                                  \
	X(DELTA_SCHEMA, 4001, "delta mask and payload lengths disagree")                           \
	X(PAGE_MISMATCH, 4002, "delta targets a different page")                                   \
	X(MASK_MISMATCH, 4003, "delta mask lengths differ")                                        \
	X(SIZE_MISMATCH, 4004, "data length does not match the page size")                         \
	X(BAD_LOCATION, 4005, "unsupported page location")                                         \
	X(NO_GPU, 4006, "no GPU backend is available")                                             \
	X(CYCLE, 4007, "edge would close a cycle")                                                 \
	X(EDGE_NOT_FOUND, 4008, "edge not found")                                                  \
	X(BAD_MAGIC, 4009, "bad magic: not an mmsb file of this kind")                             \
	X(BAD_VERSION, 4010, "unsupported format version")                                         \
	X(CORRUPT, 4011, "corrupt record")                                                         \
	X(CHECKSUM, 4012, "checksum mismatch")                                                     \
	X(TORN, 4013, "log ends in a torn frame")                                                  \
	X(TRUNCATED, 4014, "file is truncated")                                                    \
	X(META_CORRUPT, 4015, "metadata blob is corrupt")                                          \
	X(LOG_FAILED, 4016, "log is unusable after an earlier write or sync failure")              \
	X(LOG_FOREIGN, 4017, "log file belongs to another log (id mismatch)")                      \
	X(RECOMPUTE, 4018, "recompute callback failed")                                            \
	X(HANDLER, 4019, "event handler failed")                                                   \
	X(NOT_LOGGED, 4020, "state has no log")

enum mmsb_errno {
#define MMSB__ERR_ENUM(name, value, msg) MMSB_ERR_##name = value,
	MMSB_ERRNO_MAP(MMSB__ERR_ENUM)
#undef MMSB__ERR_ENUM
		MMSB_ERRNO__END,
};

/**
 * @brief Describe an error code.
 * @param err a negative or positive errno or MMSB_ERR_* value
 * @return a static string; never NULL
 */
MMSB_API const char *mmsb_strerror(int err);

/** @brief The symbolic name of an error ("PAGE_NOT_FOUND", "ENOENT"), or "E?" when unknown. */
MMSB_API const char *mmsb_errname(int err);

/* ------------------------------------------------------------------------------------------ */
/* Logging                                                                                     */

enum mmsb_print_level {
	MMSB_WARN,
	MMSB_INFO,
	MMSB_DEBUG,
};

typedef int (*mmsb_print_fn_t)(enum mmsb_print_level level, const char *fmt, va_list ap);

/**
 * @brief Set the function the library reports through (process-wide). The default is none:
 * the library is silent until a caller asks.
 * @return the previous function
 */
MMSB_API mmsb_print_fn_t mmsb_set_print(mmsb_print_fn_t fn);

/* ------------------------------------------------------------------------------------------ */
/* Options                                                                                     */

#define MMSB_OPTS(TYPE, NAME, ...)                                                                 \
	struct TYPE NAME = ({                                                                      \
		memset(&NAME, 0, sizeof(struct TYPE));                                             \
		(struct TYPE){ .sz = sizeof(struct TYPE), __VA_ARGS__ };                           \
	})

enum mmsb_location {
	MMSB_LOC_CPU = 0,
	MMSB_LOC_GPU = 1,
	MMSB_LOC_UNIFIED = 2,
	/* Only as an argument: use the state's default location. */
	MMSB_LOC_DEFAULT = -1,
};

enum mmsb_durability {
	/* Batch: one write and one fdatasync at the end of each update, route or batch (default). */
	MMSB_DURABLE_BATCH = 0,
	/* None: frames are written when 256 KiB are buffered or at flush/close; nothing is synced
	 * (not even the new log's header), except by a checkpoint. */
	MMSB_DURABLE_NONE = 1,
	/*
	 * Every: each update's frame is written and fdatasync'ed before the change is applied (a
	 * batch's frames in one write and sync, before any of it is applied).
	 */
	MMSB_DURABLE_EVERY = 2,
};

enum mmsb_log_mode {
	/* Create the log; an existing non-empty file is refused with -EEXIST (default). */
	MMSB_LOG_CREATE = 0,
	/*
	 * Continue an existing v3 log: its id and LSN sequence carry on, and the state starts as the
	 * log leaves it (pages, bytes, epochs, page and delta id counters), rebuilt by replaying it,
	 * so the continued log still replays to the live state. Edges, metadata and recompute
	 * bindings are not in the log: add them again (or keep them in a checkpoint). A log that does
	 * not replay is refused with the replay's error.
	 */
	MMSB_LOG_APPEND = 1,
	/* Discard whatever the file holds and start a new log. */
	MMSB_LOG_TRUNCATE = 2,
};

struct mmsb_state_opts {
	size_t sz;
	/* Transaction log path; NULL means the state keeps no log. */
	const char *log_path;
	enum mmsb_log_mode log_mode;
	enum mmsb_durability durability;
	/* Location used by MMSB_LOC_DEFAULT; CPU when zero. */
	enum mmsb_location default_location;
	/* Propagate in deferred mode: data children are queued until mmsb_propagate_run(). */
	bool deferred;
	size_t : 0;
};
#define mmsb_state_opts__last_field deferred

struct mmsb_state;
struct mmsb_delta;

/* ------------------------------------------------------------------------------------------ */
/* State                                                                                       */

/**
 * @brief Open a state.
 * @param opts options, or NULL for defaults (no log, batch durability, CPU pages)
 * @return the state, or NULL with errno set (EEXIST: the log exists and log_mode is CREATE;
 * EBUSY: another state holds the log; MMSB_ERR_TORN: the log ends in a torn frame, run
 * mmsb_log_recover() first; MMSB_ERR_BAD_MAGIC/BAD_VERSION: not a v3 log)
 */
MMSB_API struct mmsb_state *mmsb_state_open(const struct mmsb_state_opts *opts);

/**
 * @brief Flush the log (and sync it, unless the durability is NONE), then free the state and every
 * page it owns. NULL is a no-op.
 */
MMSB_API void mmsb_state_close(struct mmsb_state *s);

/**
 * @brief Write any buffered log frames, and fdatasync them unless the durability is NONE (which
 * promises nothing). Checkpoints always sync the log, whatever the policy.
 */
MMSB_API int mmsb_state_flush(struct mmsb_state *s);

struct mmsb_counters {
	uint64_t next_page_id;	/* the id the next mmsb_page_create() will try */
	uint64_t next_delta_id; /* the id the next routed delta gets */
	uint64_t next_lsn;	/* the LSN the next logged record gets */
	uint64_t log_id;	/* the log's random 64-bit id, 0 without a log */
};

/** @brief Read the state's id counters. */
MMSB_API int mmsb_state_counters(struct mmsb_state *s, struct mmsb_counters *out);

/* ------------------------------------------------------------------------------------------ */
/* Pages                                                                                       */

/*
 * Page ids run from 1 to MMSB_ID_MAX (2^63 - 1: every id fits a signed 64-bit integer, in any
 * binding) and never wrap: once the id counter has passed MMSB_ID_MAX, mmsb_page_create() fails
 * with -ERANGE. Delta ids and LSNs have the same bound. A page holds 1 to MMSB_PAGE_SIZE_MAX
 * bytes; logs and checkpoints naming a larger page are corrupt, never an allocation.
 */
#define MMSB_ID_MAX 0x7fffffffffffffffull
#define MMSB_PAGE_SIZE_MAX (1ull << 30)

/**
 * @brief Create a zero-filled page with the next free id.
 * @param size bytes, 1 to MMSB_PAGE_SIZE_MAX (-EINVAL otherwise)
 * @param loc MMSB_LOC_CPU, UNIFIED (host memory here), DEFAULT; GPU gives -MMSB_ERR_NO_GPU
 * @param id_out receives the id (may be NULL)
 * @return 0, or -ERANGE when no id up to MMSB_ID_MAX is left
 */
MMSB_API int mmsb_page_create(struct mmsb_state *s, size_t size, int loc, uint64_t *id_out);

/**
 * @brief Create a page with a caller-chosen id, 1 to MMSB_ID_MAX (-ERANGE past it, -EINVAL for
 * 0); -EEXIST when the id is taken.
 */
MMSB_API int mmsb_page_create_id(struct mmsb_state *s, uint64_t id, size_t size, int loc);

/**
 * @brief Free a page: its memory, metadata, recompute binding and every edge into or out of
 * it. Logged. -MMSB_ERR_PAGE_NOT_FOUND when unknown.
 */
MMSB_API int mmsb_page_free(struct mmsb_state *s, uint64_t id);

/**
 * @brief Copy up to len bytes of the page, starting at off, into dst.
 * @return the number of bytes copied (0 when off >= size), or a negative error
 */
MMSB_API ssize_t mmsb_page_read(struct mmsb_state *s, uint64_t id, void *dst, size_t len,
				size_t off);

/** @brief The page's size in bytes, or a negative error. */
MMSB_API ssize_t mmsb_page_size(struct mmsb_state *s, uint64_t id);

/** @brief The page's epoch (0 until first changed), or a negative error. */
MMSB_API int64_t mmsb_page_epoch(struct mmsb_state *s, uint64_t id);

/** @brief The page's location (enum mmsb_location), or a negative error. */
MMSB_API int mmsb_page_location(struct mmsb_state *s, uint64_t id);

/* Flags set by propagation through CONTROL, GPU and COMPILER edges; cleared by recompute. */
#define MMSB_PAGE_STALE (1u << 0)
#define MMSB_PAGE_GPU_SYNC_PENDING (1u << 1)
#define MMSB_PAGE_IR_INVALID (1u << 2)

/** @brief The page's MMSB_PAGE_* flags, or a negative error. */
MMSB_API int mmsb_page_flags(struct mmsb_state *s, uint64_t id);

/** @brief Clear the given MMSB_PAGE_* flags (a consumer acknowledging them). */
MMSB_API int mmsb_page_clear_flags(struct mmsb_state *s, uint64_t id, unsigned int flags);

/** @brief Number of live pages. */
MMSB_API size_t mmsb_page_count(struct mmsb_state *s);

/**
 * @brief List page ids in ascending order.
 * @return the total number of pages (which may exceed max; only min(max, total) are written)
 */
MMSB_API ssize_t mmsb_page_list(struct mmsb_state *s, uint64_t *ids, size_t max);

/**
 * @brief Set a metadata key (UTF-8, non-empty) to a byte value. Setting an existing key moves it
 * to the end of the ordered list, as the original did.
 */
MMSB_API int mmsb_page_meta_set(struct mmsb_state *s, uint64_t id, const char *key, const void *val,
				size_t len);

/**
 * @brief Copy a metadata value into buf (up to len bytes).
 * @return the value's full length, -ENOENT when the key is absent
 */
MMSB_API ssize_t mmsb_page_meta_get(struct mmsb_state *s, uint64_t id, const char *key, void *buf,
				    size_t len);

/** @brief Remove a metadata key; -ENOENT when absent. */
MMSB_API int mmsb_page_meta_del(struct mmsb_state *s, uint64_t id, const char *key);

/**
 * @brief Encode the page's metadata as the original's blob (u32 count, then u32 key_len, key,
 * u32 value_len, value). @return the blob's full length; copies min(len, full) bytes
 */
MMSB_API ssize_t mmsb_page_meta_export(struct mmsb_state *s, uint64_t id, void *buf, size_t len);

/**
 * @brief Replace the page's metadata with a decoded blob; an empty blob clears it. The blob is
 * fully validated first: on -MMSB_ERR_META_CORRUPT the old metadata stays.
 */
MMSB_API int mmsb_page_meta_import(struct mmsb_state *s, uint64_t id, const void *blob, size_t len);

/* ------------------------------------------------------------------------------------------ */
/* Deltas                                                                                      */

/* The delta's payload holds only the masked bytes, in ascending position order. */
#define MMSB_DELTA_SPARSE (1u << 0)
/*
 * The mask is bit-packed LSB-first: bit i%8 of byte i/8 is entry i, and mask_len counts entries
 * (ceil(mask_len / 8) bytes are read). Without it each mask byte is one entry, nonzero = set.
 */
#define MMSB_DELTA_MASK_PACKED (1u << 1)

/**
 * @brief Build a delta for a page. The original's structural rules are checked here:
 * dense needs payload_len == mask_len, sparse needs payload_len == popcount(mask). The mask may
 * be shorter or longer than the page: positions at or past the page end are ignored.
 * @return a delta (id 0, epoch 0, source "api") or NULL with errno MMSB_ERR_DELTA_SCHEMA/EINVAL
 */
MMSB_API struct mmsb_delta *mmsb_delta_new(uint64_t page_id, const void *mask, size_t mask_len,
					   const void *payload, size_t payload_len,
					   unsigned int flags);

/** @brief Free a delta. NULL is a no-op. */
MMSB_API void mmsb_delta_free(struct mmsb_delta *d);

/** @brief Deep copy. */
MMSB_API struct mmsb_delta *mmsb_delta_dup(const struct mmsb_delta *d);

/**
 * @brief Merge b (the later delta) over a: mask = a.mask | b.mask, each byte from the last
 * writer; result is dense; id, page and source from b; epoch, LSN and timestamp are the max;
 * intent from b if set, else a. @return NULL with errno MMSB_ERR_PAGE_MISMATCH or
 * MMSB_ERR_MASK_MISMATCH when the pages or mask lengths differ
 */
MMSB_API struct mmsb_delta *mmsb_delta_merge(const struct mmsb_delta *a,
					     const struct mmsb_delta *b);

/** @brief A dense copy: a sparse payload expanded to mask_len bytes, zeros where unmasked. */
MMSB_API struct mmsb_delta *mmsb_delta_to_dense(const struct mmsb_delta *d);

/*
 * The getters below accept NULL: they return 0 (false; NULL for the pointers) and set errno to
 * EINVAL, so a binding's stale handle reads as empty rather than crashing.
 */
MMSB_API uint64_t mmsb_delta_id(const struct mmsb_delta *d);
MMSB_API uint64_t mmsb_delta_page_id(const struct mmsb_delta *d);
/** @brief The epoch the page reached when this delta was applied (0 before routing). */
MMSB_API uint32_t mmsb_delta_epoch(const struct mmsb_delta *d);
/** @brief The log sequence number given when routed through a logged state (else 0). */
MMSB_API uint64_t mmsb_delta_lsn(const struct mmsb_delta *d);
/** @brief CLOCK_REALTIME nanoseconds at creation. */
MMSB_API uint64_t mmsb_delta_timestamp(const struct mmsb_delta *d);
MMSB_API bool mmsb_delta_is_sparse(const struct mmsb_delta *d);
/** @brief Number of mask entries. */
MMSB_API size_t mmsb_delta_mask_len(const struct mmsb_delta *d);
/** @brief Number of set mask entries. */
MMSB_API size_t mmsb_delta_mask_count(const struct mmsb_delta *d);
/**
 * @brief The page byte that mask entry 0 stands for: 0, except for the record of a range write
 * (mmsb_page_write()), whose mask and payload cover [offset, offset + mask_len).
 */
MMSB_API uint64_t mmsb_delta_offset(const struct mmsb_delta *d);
/**
 * @brief Copy min(len, mask_len) entries into out, one byte (0 or 1) per entry. 0 with errno
 * EINVAL when d is NULL, or out is NULL and len > 0.
 */
MMSB_API size_t mmsb_delta_copy_mask(const struct mmsb_delta *d, uint8_t *out, size_t len);
MMSB_API size_t mmsb_delta_payload_len(const struct mmsb_delta *d);
MMSB_API const uint8_t *mmsb_delta_payload(const struct mmsb_delta *d);
/** @brief The NUL-terminated source label ("api", "propagation", ...). */
MMSB_API const char *mmsb_delta_source(const struct mmsb_delta *d);
/** @brief Set the source label (at most 255 bytes). */
MMSB_API int mmsb_delta_set_source(struct mmsb_delta *d, const char *src);
/**
 * @brief Set the intent metadata (UTF-8, JSON by convention); NULL or "" clears it.
 * -EILSEQ when it is not valid UTF-8.
 */
MMSB_API int mmsb_delta_set_intent(struct mmsb_delta *d, const char *intent);
/** @brief The intent metadata, or NULL when none. */
MMSB_API const char *mmsb_delta_intent(const struct mmsb_delta *d);

/**
 * @brief Diff two buffers: out[i] = (a[i] != b[i]) for i < len, one byte per entry.
 * @return the number of differing bytes; 0 with errno EINVAL when len > 0 and a, b or out is NULL
 */
MMSB_API size_t mmsb_diff_mask(const void *a, const void *b, size_t len, uint8_t *out);

/* ------------------------------------------------------------------------------------------ */
/* Routing                                                                                     */

/**
 * @brief Write new full-page contents: the bytes are diffed against the page and, when any
 * differs, routed as one dense delta (source "api") followed by a propagation wave. Nothing
 * happens when the contents are unchanged (return 0; 1 when a delta was routed).
 * -MMSB_ERR_SIZE_MISMATCH when len != page size.
 */
MMSB_API int mmsb_page_update(struct mmsb_state *s, uint64_t id, const void *data, size_t len);

/**
 * @brief Write len bytes at byte offset of a page, as mmsb_page_update() writes a whole one:
 * diffed against the bytes they replace and, when any differs, logged and applied as one delta
 * (source "api") whose mask starts at offset (mmsb_delta_offset()), then a propagation wave.
 * Its cost is the write's, not the page's: 10 bytes into a 64 MiB page read, log and apply 10
 * bytes (a GPU page's host copy is fetched first when it is stale).
 * @return 1 when a delta was routed, 0 when the bytes were unchanged (or len is 0), or a negative
 * error with nothing changed: -EINVAL (s NULL, data NULL with len > 0), -MMSB_ERR_PAGE_NOT_FOUND,
 * -MMSB_ERR_SIZE_MISMATCH (the range passes the page's end), -EDEADLK (inside a callback)
 */
MMSB_API int mmsb_page_write(struct mmsb_state *s, uint64_t id, uint64_t offset, const void *data,
			     size_t len);

/** One whole-page write of a batch: data must be the page's size. */
struct mmsb_page_write {
	uint64_t id;
	const void *data;
	size_t len;
};

/**
 * @brief Write many pages in one call: each write is diffed against its page as
 * mmsb_page_update() does (an unchanged page makes no delta), all of them are logged and
 * applied in order, then one propagation wave runs over the changed pages.
 *
 * Every write is checked (page exists, size matches) before the first byte changes; a bad one
 * changes nothing. With a log, the batch and the wave it starts are one commit (one write and,
 * under batch durability, one fdatasync): a failed log write changes nothing either, every page
 * is as before the call (all or nothing). This is the entry point for hosts that pay per call
 * (FFI): one crossing for n writes.
 * @return the number of writes that changed their page, or a negative error
 */
MMSB_API int mmsb_page_update_batch(struct mmsb_state *s, const struct mmsb_page_write *w,
				    size_t n);

/**
 * @brief Apply one delta: logged first (so a failed log write leaves the page untouched), then
 * applied (epoch = old + 1), events, then one propagation wave. The delta receives its id,
 * epoch, LSN and timestamp.
 */
MMSB_API int mmsb_route(struct mmsb_state *s, struct mmsb_delta *d);

/**
 * @brief Apply a batch: every delta is validated first (nothing is applied if any is bad), then
 * each page's deltas are logged and applied in input order, then ONE propagation wave runs over
 * every changed page; the batch and its wave are one commit (under every: the batch is written
 * and synced before its first byte changes). In every mode a failed commit leaves every page as
 * it was before the call.
 */
MMSB_API int mmsb_route_batch(struct mmsb_state *s, struct mmsb_delta *const *ds, size_t n);

/* ------------------------------------------------------------------------------------------ */
/* Throughput engine and tick                                                                  */

struct mmsb_engine;

struct mmsb_engine_opts {
	size_t sz;
	/* Worker threads including the caller's; 0 means 1. At most 64. */
	unsigned int workers;
	size_t : 0;
};
#define mmsb_engine_opts__last_field workers

/**
 * @brief An engine that applies large batches on a fixed pool of worker threads. Pages are
 * partitioned among the workers by id, so each page's deltas are applied by one worker, in input
 * order. Destroy it before the state.
 * @return the engine, or NULL with errno set
 */
MMSB_API struct mmsb_engine *mmsb_engine_new(struct mmsb_state *s,
					     const struct mmsb_engine_opts *opts);

/** @brief Stop the workers and free the engine. NULL is a no-op. */
MMSB_API void mmsb_engine_free(struct mmsb_engine *e);

struct mmsb_throughput {
	uint64_t processed;   /* deltas applied */
	uint64_t pages;	      /* distinct pages changed */
	uint64_t duration_ns; /* wall time of the whole call */
	double rate;	      /* processed per second */
};

/**
 * @brief Apply a batch: the whole batch is validated first (a bad delta or unknown page changes
 * nothing); then each page's deltas are applied in input order, which leaves the bytes
 * merge-then-apply would, and the page's epoch goes up by one for the batch. With a log the deltas
 * are logged (each record carrying its id, LSN and its page's new epoch) and committed before any
 * page changes. The deltas themselves are read-only to the engine (not stamped), so one set may be
 * applied again and shared between threads. No propagation and no per-delta events: this is the
 * bulk path; mmsb_tick() adds the wave.
 * Serialises on the state like every other call.
 */
MMSB_API int mmsb_engine_apply(struct mmsb_engine *e, struct mmsb_delta *const *ds, size_t n,
			       struct mmsb_throughput *m);

struct mmsb_memory_report {
	uint64_t pages, bytes, avg_bytes;
	uint64_t cold_pages; /* pages whose epoch has not moved for more than cold_age reports */
};

/**
 * @brief Census of the state's pages. Each call ages the pages whose epoch did not change since
 * the previous call; a page older than cold_age is counted cold. Nothing is ever freed.
 */
MMSB_API int mmsb_memory_report(struct mmsb_state *s, uint32_t cold_age,
				struct mmsb_memory_report *r);

#define MMSB_TICK_BUDGET_NS 16000000ull /* 16 ms, the original's frame budget */

struct mmsb_tick_metrics {
	uint64_t apply_ns, propagation_ns, graph_ns, memory_ns, total_ns;
	uint64_t processed, pages;
	double rate;
	bool graph_has_cycle;
	bool within_budget; /* total_ns <= MMSB_TICK_BUDGET_NS */
	struct mmsb_memory_report memory;
};

/**
 * @brief One tick: mmsb_engine_apply(), then ONE propagation wave from every changed page, then
 * graph validation (Tarjan), then a memory report (cold age 3). Fills every phase's time.
 */
MMSB_API int mmsb_tick(struct mmsb_engine *e, struct mmsb_delta *const *ds, size_t n,
		       struct mmsb_tick_metrics *m);

/* ------------------------------------------------------------------------------------------ */
/* Graph                                                                                       */

enum mmsb_edge_type {
	MMSB_EDGE_DATA = 0,	/* child is recomputed when the parent changes */
	MMSB_EDGE_CONTROL = 1,	/* child is marked MMSB_PAGE_STALE */
	MMSB_EDGE_GPU = 2,	/* child is marked MMSB_PAGE_GPU_SYNC_PENDING */
	MMSB_EDGE_COMPILER = 3, /* child is marked MMSB_PAGE_IR_INVALID */
	MMSB_EDGE__COUNT,
	/* Only for mmsb_edge_remove(): every type between the pair. */
	MMSB_EDGE_ANY = -1,
};

struct mmsb_edge {
	uint64_t page; /* the other end: a child in children(), a parent in parents() */
	int type;      /* enum mmsb_edge_type */
};

/**
 * @brief Add parent -> child of a type. Edges of different types may join one pair; adding an
 * existing (pair, type) does nothing and returns 0. An edge that would close a cycle (including
 * parent == child) is refused with -MMSB_ERR_CYCLE and the graph is left exactly as it was.
 */
MMSB_API int mmsb_edge_add(struct mmsb_state *s, uint64_t parent, uint64_t child, int type);

/** @brief Remove one type (or MMSB_EDGE_ANY); -MMSB_ERR_EDGE_NOT_FOUND when none matched. */
MMSB_API int mmsb_edge_remove(struct mmsb_state *s, uint64_t parent, uint64_t child, int type);

/**
 * @brief A page's children (or parents), ordered by (page id, type).
 * @return the total count; writes min(max, total)
 */
MMSB_API ssize_t mmsb_edge_children(struct mmsb_state *s, uint64_t id, struct mmsb_edge *out,
				    size_t max);
MMSB_API ssize_t mmsb_edge_parents(struct mmsb_state *s, uint64_t id, struct mmsb_edge *out,
				   size_t max);

/** @brief Number of edges in the graph. */
MMSB_API size_t mmsb_edge_count(struct mmsb_state *s);

/**
 * @brief Topological order of every page (Kahn's algorithm; among ready pages the smallest id
 * first, so the order is deterministic). @return the page count; writes min(max, count)
 */
MMSB_API ssize_t mmsb_graph_toposort(struct mmsb_state *s, uint64_t *ids, size_t max);

/**
 * @brief Breadth-first descendants of root (root first), children visited in id order.
 * @return the number reached; writes min(max, count)
 */
MMSB_API ssize_t mmsb_graph_bfs(struct mmsb_state *s, uint64_t root, uint64_t *ids, size_t max);

struct mmsb_cycle_report {
	bool has_cycle;
	size_t visited;	 /* pages visited */
	size_t n_cycle;	 /* members of the first cyclic strongly connected component */
	uint64_t *cycle; /* malloc'ed, ascending ids; free with free() */
};

/**
 * @brief Iterative Tarjan over the whole graph, stopping at the first cyclic component.
 * With cycle rejection in place the live graph never has one; this checks it (and a
 * loaded checkpoint's edges).
 */
MMSB_API int mmsb_graph_validate(struct mmsb_state *s, struct mmsb_cycle_report *r);

/**
 * @brief Provenance: the page and its ancestors (every edge type), breadth first, at most depth
 * hops up (depth 0 means 32), each level in id order. Results are cached per (page, depth) and
 * the cache is invalidated by any change to the graph.
 * @param from_cache set to whether the answer came from the cache (may be NULL)
 * @return the number of pages in the lineage; writes min(max, count)
 */
MMSB_API ssize_t mmsb_provenance(struct mmsb_state *s, uint64_t id, unsigned int depth,
				 uint64_t *ids, size_t max, bool *from_cache);

/* ------------------------------------------------------------------------------------------ */
/* Propagation                                                                                 */

/**
 * A recompute callback: write the page's new contents into out (size bytes, pre-filled with the
 * current contents). Return 0 or a negative error (the wave stops and the error is returned).
 */
typedef int (*mmsb_recompute_fn)(struct mmsb_state *s, uint64_t id, uint8_t *out, size_t size,
				 void *ctx);

/** A passthrough transform: dst (dst_len bytes, pre-filled) from src. Return 0 or -error. */
typedef int (*mmsb_transform_fn)(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
				 void *ctx);

/** @brief Bind a recompute callback to a page (NULL unbinds). */
MMSB_API int mmsb_page_set_recompute(struct mmsb_state *s, uint64_t id, mmsb_recompute_fn fn,
				     void *ctx);

/**
 * @brief Recompute target as a copy of source, or transform(source) when fn is given. Without a
 * transform the sizes must match (-MMSB_ERR_SIZE_MISMATCH). Add the DATA edge separately.
 */
MMSB_API int mmsb_page_set_passthrough(struct mmsb_state *s, uint64_t target, uint64_t source,
				       mmsb_transform_fn fn, void *ctx);

/** @brief Switch between immediate (false) and deferred (true) propagation. */
MMSB_API int mmsb_propagate_set_deferred(struct mmsb_state *s, bool deferred);

/**
 * @brief Run one wave from pages that changed outside the routing calls (or to force a
 * recompute of their data children).
 */
MMSB_API int mmsb_propagate(struct mmsb_state *s, const uint64_t *changed, size_t n);

/** @brief Deferred mode: recompute every queued page (and what their changes reach) in one wave. */
MMSB_API int mmsb_propagate_run(struct mmsb_state *s);

/** @brief Number of pages queued for deferred recompute. */
MMSB_API size_t mmsb_propagate_pending(struct mmsb_state *s);

/**
 * @brief Recompute one page now, unless its data parents' epochs are unchanged since its last
 * recompute. @return 1 when the page changed, 0 when unchanged or skipped
 */
MMSB_API int mmsb_page_recompute(struct mmsb_state *s, uint64_t id);

/* ------------------------------------------------------------------------------------------ */
/* Events                                                                                      */

enum mmsb_event_type {
	MMSB_EV_PAGE_CREATED = 0,
	MMSB_EV_PAGE_DELETED,
	MMSB_EV_PAGE_CHANGED,
	MMSB_EV_PAGE_INVALIDATED,
	MMSB_EV_PAGE_STALE,
	MMSB_EV_DELTA_APPLIED,
	MMSB_EV_GPU_SYNC_NEEDED,
	MMSB_EV_IR_INVALIDATED,
	MMSB_EV__COUNT,
};

#define MMSB_EV_MASK(t) (1u << (t))
#define MMSB_EV_ALL ((1u << MMSB_EV__COUNT) - 1)

struct mmsb_event {
	enum mmsb_event_type type;
	uint64_t page_id;
	uint64_t delta_id; /* DELTA_APPLIED only */
	uint32_t epoch;	   /* the page's epoch after the change */
};

/** Filter: return true to deliver. */
typedef bool (*mmsb_event_filter_fn)(const struct mmsb_event *ev, void *ctx);
/**
 * Handler: return 0 or a negative error. Errors are not swallowed: each is reported through the
 * print callback and counted (mmsb_stats.handler_errors, mmsb_stats.last_handler_error).
 */
typedef int (*mmsb_event_fn)(struct mmsb_state *s, const struct mmsb_event *ev, void *ctx);

/**
 * @brief Subscribe to the event types in mask (MMSB_EV_MASK()), optionally filtered. Handlers run
 * synchronously in subscription order. @return a subscription id (> 0) or a negative error
 */
MMSB_API int64_t mmsb_subscribe(struct mmsb_state *s, unsigned int mask,
				mmsb_event_filter_fn filter, mmsb_event_fn fn, void *ctx);
MMSB_API int mmsb_unsubscribe(struct mmsb_state *s, int64_t sub_id);

/* ------------------------------------------------------------------------------------------ */
/* Statistics                                                                                  */

struct mmsb_stats {
	uint64_t pages, page_bytes;
	uint64_t pages_by_location[3];
	uint64_t edges;
	uint64_t deltas_applied, delta_bytes, delta_ns;
	uint64_t waves, wave_ns, recomputes, recompute_skips;
	uint64_t log_records, log_bytes, log_writes, log_syncs;
	uint64_t events, handler_errors;
	int last_handler_error;
	uint32_t max_depth; /* longest path in the graph, in edges */
};

MMSB_API int mmsb_state_stats(struct mmsb_state *s, struct mmsb_stats *out);
/** @brief Zero the latency and count statistics (not the page/edge census). */
MMSB_API int mmsb_state_stats_reset(struct mmsb_state *s);

/* ------------------------------------------------------------------------------------------ */
/* Transaction log                                                                             */

enum mmsb_log_kind {
	MMSB_REC_DELTA = 0,
	MMSB_REC_PAGE_CREATE = 1,
	MMSB_REC_PAGE_FREE = 2,
};

struct mmsb_log_record {
	enum mmsb_log_kind kind;
	uint64_t lsn;	    /* 0 in v1/v2 logs */
	uint64_t timestamp; /* CLOCK_REALTIME ns (0 where the original wrote 0) */
	uint64_t page_id;
	uint64_t page_size;	  /* PAGE_CREATE */
	int location;		  /* PAGE_CREATE */
	struct mmsb_delta *delta; /* DELTA: owned by the reader, valid until the next call */
	uint64_t offset;	  /* byte offset of the frame in the file */
	uint64_t frame_len;	  /* bytes the frame occupies */
};

struct mmsb_log_reader;

/**
 * @brief Open a log of any version (1, 2 or 3) for reading. NULL with errno
 * MMSB_ERR_BAD_MAGIC, MMSB_ERR_BAD_VERSION, MMSB_ERR_TRUNCATED, MMSB_ERR_CHECKSUM or an errno.
 */
MMSB_API struct mmsb_log_reader *mmsb_log_reader_open(const char *path);
MMSB_API void mmsb_log_reader_close(struct mmsb_log_reader *r);
/** @brief 1, 2 or 3 (-EINVAL for NULL; the other getters return 0 for NULL). */
MMSB_API int mmsb_log_reader_version(const struct mmsb_log_reader *r);
/** @brief The v3 log id (0 for v1/v2). */
MMSB_API uint64_t mmsb_log_reader_log_id(const struct mmsb_log_reader *r);
/**
 * @brief Read the next record.
 * @return 1 with *rec filled, 0 at a clean end, or a negative error (MMSB_ERR_TORN for an
 * incomplete final frame, MMSB_ERR_CHECKSUM, MMSB_ERR_CORRUPT, MMSB_ERR_TRUNCATED); after an
 * error mmsb_log_reader_offset() names the bad frame's offset
 */
MMSB_API int mmsb_log_reader_next(struct mmsb_log_reader *r, struct mmsb_log_record *rec);
/** @brief Offset of the next (or, after an error, the bad) frame. */
MMSB_API uint64_t mmsb_log_reader_offset(const struct mmsb_log_reader *r);
/** @brief Zero-based index of the next (or bad) frame. */
MMSB_API uint64_t mmsb_log_reader_frame(const struct mmsb_log_reader *r);

struct mmsb_log_summary {
	int version;
	uint64_t log_id;
	uint64_t records, deltas, page_creates, page_frees;
	/* The original's estimate: sum of mask_len + payload_len + 32 + intent_len per delta. */
	uint64_t total_bytes;
	uint32_t last_epoch; /* max epoch over all deltas */
	uint64_t first_lsn, last_lsn;
	uint64_t first_ts, last_ts;
	uint64_t file_size;
	uint64_t valid_bytes; /* header + every good frame */
	int error;	      /* 0, or the first bad frame's error */
	uint64_t bad_offset;  /* when error != 0 */
	uint64_t bad_frame;
};

/**
 * @brief Read the whole log and summarise it; stops at the first bad frame (reported in
 * error/bad_offset/bad_frame, and returned). Never changes the file. An empty file is
 * -MMSB_ERR_TRUNCATED and a file that is not a regular one (FIFO, device) -EINVAL: neither is a
 * log, and neither is opened to be waited on.
 */
MMSB_API int mmsb_log_summarize(const char *path, struct mmsb_log_summary *out);

/**
 * @brief Cut a torn tail: the bytes from the first bad frame on are copied to PATH.torn (synced)
 * and the log truncated to its last good frame. When the bad frame is followed by whole frames
 * the damage is inside the log, not a torn write: nothing changes and the frame's error
 * (MMSB_ERR_CHECKSUM, MMSB_ERR_CORRUPT) is returned. A file shorter than a header that starts
 * like one (a header torn at creation) is set aside the same way and given a fresh header.
 * Anything else the reader refuses (a v3 header failing its CRC: MMSB_ERR_CHECKSUM; a bad magic
 * or version; an empty or non-regular file) is returned and the file left as it was.
 * @param cut_bytes receives the number of bytes moved (0 when the log was clean)
 */
MMSB_API int mmsb_log_recover(const char *path, uint64_t *cut_bytes);

/** @brief Rewrite a v1/v2/v3 log as a new v3 log (atomically: temp file, fsync, rename). */
MMSB_API int mmsb_log_convert(const char *in, const char *out);

/* ------------------------------------------------------------------------------------------ */
/* Checkpoints                                                                                 */

/**
 * @brief Write a checkpoint atomically (temp file, fsync, rename, fsync of the directory):
 * pages sorted by id with metadata, edges, id counters and the log's LSN, all checksummed.
 * Syncs the log first so the checkpoint never refers to an LSN that is not durable.
 */
MMSB_API int mmsb_checkpoint_write(struct mmsb_state *s, const char *path);

/**
 * @brief Load a checkpoint (v3, or the original's MMSBSNAP v2) into the state, replacing its
 * pages, edges and counters. The whole file is validated and the new state built before anything
 * is replaced: on error the state is exactly as it was. Recompute bindings survive for page ids
 * that exist in the checkpoint.
 *
 * A state with a log goes on writing it, so it must stay what the log describes: only a
 * checkpoint written from this log (same log id) at an LSN the log holds is loaded, and the log's
 * records after that LSN are replayed on top of it (checkpoint plus the log's tail), so the state
 * and its id counters continue from everything logged. A checkpoint of another log, of no log,
 * a v2 one or one naming a later LSN is refused with -MMSB_ERR_LOG_FOREIGN, the state unchanged.
 */
MMSB_API int mmsb_checkpoint_load(struct mmsb_state *s, const char *path);

struct mmsb_checkpoint_info {
	int version;
	uint64_t pages, edges, page_bytes;
	uint64_t next_page_id, next_delta_id;
	uint64_t log_lsn, log_id;
	uint64_t file_size;
};

/** @brief Validate a checkpoint completely without loading it; fills info when non-NULL. */
MMSB_API int mmsb_checkpoint_verify(const char *path, struct mmsb_checkpoint_info *info);

/* ------------------------------------------------------------------------------------------ */
/* Replay                                                                                      */

struct mmsb_replay_opts {
	size_t sz;
	/* Start from this checkpoint (records with LSN <= its LSN are skipped). */
	const char *checkpoint;
	/*
	 * v1/v2 logs carry no page records: pages are created zeroed with the ids, sizes and
	 * locations of this state's pages (the original's behaviour).
	 */
	struct mmsb_state *template_state;
	/* Stop bounds; 0 means unbounded. Epoch is per page: a page stops at epoch to_epoch. */
	uint64_t to_lsn;
	uint32_t to_epoch;
	uint64_t to_timestamp;
	size_t : 0;
};
#define mmsb_replay_opts__last_field to_timestamp

/**
 * @brief Replay a log into a new detached state (no log of its own). Deltas for unknown pages are
 * an error (-MMSB_ERR_PAGE_NOT_FOUND) for v3 logs, which record page creation; v1/v2 skip them.
 * @return the state, or NULL with errno set
 */
MMSB_API struct mmsb_state *mmsb_replay(const char *log_path, const struct mmsb_replay_opts *opts);

struct mmsb_divergence {
	double l2;	    /* sqrt of summed squared byte differences over common pages */
	uint32_t max_delta; /* largest byte difference; 255 where sizes differ */
	uint64_t pages_compared, pages_differing;
	uint64_t only_in_a, only_in_b;
};

/** @brief Compare two states' pages byte for byte. */
MMSB_API int mmsb_state_diverge(struct mmsb_state *a, struct mmsb_state *b,
				struct mmsb_divergence *out);

/**
 * @brief Replay the state's own log (flushed first) and compare with the live pages.
 * @return 0 when identical, 1 when they diverge (details in *out), or a negative error
 */
MMSB_API int mmsb_state_verify(struct mmsb_state *s, struct mmsb_divergence *out);

/* ------------------------------------------------------------------------------------------ */
/* Invariants and integrity                                                                    */

#define MMSB_INV_EPOCH_MONOTONIC (1u << 0) /* no page's epoch went down since the last check */
#define MMSB_INV_PAGE_CONSISTENT (1u << 1) /* data present for each page, metadata encodes */
#define MMSB_INV_ACYCLIC (1u << 2)	   /* Tarjan finds no cycle */
#define MMSB_INV_ALL 0x7u

struct mmsb_invariant_result {
	unsigned int checked, failed; /* MMSB_INV_* bits */
	char details[256];	      /* the first failure, human readable */
};

/** @brief Check invariants. @return 0 when all passed, 1 when any failed, or a negative error */
MMSB_API int mmsb_check_invariants(struct mmsb_state *s, unsigned int which,
				   struct mmsb_invariant_result *r);

enum mmsb_violation_kind {
	MMSB_VIOL_ORPHAN = 0,		/* the delta's page does not exist */
	MMSB_VIOL_SCHEMA = 1,		/* mask/payload lengths break the rules */
	MMSB_VIOL_EPOCH_REGRESSION = 2, /* epoch lower than the last one seen for that page */
};

struct mmsb_violation {
	uint64_t delta_id, page_id;
	enum mmsb_violation_kind kind;
	uint64_t a, b; /* SCHEMA: mask_len, payload_len; REGRESSION: previous, current */
};

/**
 * @brief Check deltas (for instance read back from a log) against the state. Epochs seen per page
 * are remembered across calls. @return the number of violations (out receives min(max, n))
 */
MMSB_API ssize_t mmsb_check_deltas(struct mmsb_state *s, struct mmsb_delta *const *ds, size_t n,
				   struct mmsb_violation *out, size_t max);

/* ------------------------------------------------------------------------------------------ */
/* Semirings: tropical (min, +) over double and boolean (or, and) over bytes                    */

/*
 * A fold given v == NULL with n > 0 sets errno to EINVAL and returns NaN (tropical) or 0
 * (boolean); the accumulators skip a NULL output.
 */

MMSB_API double mmsb_tropical_fold_add(const double *v, size_t n); /* min; +inf when empty */
MMSB_API double mmsb_tropical_fold_mul(const double *v, size_t n); /* sum; 0 when empty */
MMSB_API void mmsb_tropical_accumulate(double a, double b, double *add, double *mul);
MMSB_API uint8_t mmsb_boolean_fold_add(const uint8_t *v, size_t n); /* or; 0 when empty */
MMSB_API uint8_t mmsb_boolean_fold_mul(const uint8_t *v, size_t n); /* and; 1 when empty */
MMSB_API void mmsb_boolean_accumulate(uint8_t a, uint8_t b, uint8_t *add, uint8_t *mul);

/* ------------------------------------------------------------------------------------------ */
/* The GPU tier (docs/gpu.md)                                                                   */

/*
 * libmmsb loads a device backend at run time (libmmsb-cuda.so beside the library, or
 * $MMSB_GPU_BACKEND; MMSB_GPU=0 disables it) and never links CUDA itself. Without a driver or a
 * device, MMSB_LOC_GPU pages are refused with MMSB_ERR_NO_GPU and mmsb_gpu_info() says why.
 */
struct mmsb_gpu_info {
	size_t sz;
	bool available;
	char backend[16]; /* "cuda", or the test backend's name */
	char device[256]; /* name, memory, compute capability */
	char reason[256]; /* why there is no GPU tier, when there is none */
	uint64_t uploads, downloads, upload_bytes, download_bytes; /* counted host transfers */
	uint64_t launches, syncs, pool_hits, pool_misses;
	uint64_t routed_gpu, routed_cpu, errors; /* the router's choices; GPU applies that failed */
	bool crossover_measured; /* a measured table is loaded (else the built-in) */
	uint64_t crossover_points;
	size_t : 0;
};
#define mmsb_gpu_info__last_field crossover_points

/** @brief The GPU tier's state and counters. @return 0, or -MMSB_ERR_NO_GPU (reason filled) */
MMSB_API int mmsb_gpu_info(struct mmsb_gpu_info *out);

enum mmsb_gpu_policy {
	MMSB_GPU_POLICY_AUTO = 0, /* the crossover table decides, per apply (default) */
	MMSB_GPU_POLICY_CPU = 1,  /* GPU pages are applied on their host mirror */
	MMSB_GPU_POLICY_GPU = 2,  /* GPU pages are applied on the device */
};

/** @brief Process-wide: who applies deltas to GPU pages (benchmarks force each side). */
MMSB_API int mmsb_gpu_set_policy(int policy);

/**
 * @brief Load a crossover table ("apply SIZE DENSITY BATCH CPU_NS GPU_NS" lines, as
 * `mmsb-bench --calibrate-gpu` writes); $MMSB_GPU_CROSSOVER is loaded at start. A bad file
 * changes nothing. @return 0, or -errno / -MMSB_ERR_CORRUPT
 */
MMSB_API int mmsb_gpu_crossover_load(const char *path);

/**
 * @brief Where an apply of `changed` bytes to a GPU page of `page_size` bytes, in a batch of
 * `batch`, would run: MMSB_LOC_GPU or MMSB_LOC_CPU (the router's choice, for tests and tools).
 */
MMSB_API int mmsb_gpu_route(size_t page_size, size_t changed, size_t batch);

#ifdef __cplusplus
}
#endif

#endif /* __MMSB_MMSB_H */
