/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The probe manifest of libmmsb: provider mmsb. This file is the USDT ABI, and its one source:
 * the build generates the probe header (dtrace -h), the semaphores (dtrace -G), the begin/end
 * semaphore sharing and the API function ids below from it, and tests/test_probes.sh checks the
 * built library against it. docs/probes.md is the reference (when each fires, stability).
 *
 * Rules: arguments are integers and pointers, at most 6. Every span is a pair NAME__begin /
 * NAME__end (api__entry / api__exit for the FFI boundary) whose two probes share the begin's
 * semaphore, so a tracer enables both or neither. No pair wraps a per-item step of a hot loop: a
 * batch gets one span and its count. Probes are added, never renamed or re-typed.
 *
 * API function ids (the argument of api__entry and api__exit): stable, append-only.
 * api   1 mmsb_version
 * api   2 mmsb_strerror
 * api   3 mmsb_errname
 * api   4 mmsb_set_print
 * api   5 mmsb_state_open
 * api   6 mmsb_state_close
 * api   7 mmsb_state_flush
 * api   8 mmsb_state_counters
 * api   9 mmsb_page_create
 * api  10 mmsb_page_create_id
 * api  11 mmsb_page_free
 * api  12 mmsb_page_read
 * api  13 mmsb_page_size
 * api  14 mmsb_page_epoch
 * api  15 mmsb_page_location
 * api  16 mmsb_page_flags
 * api  17 mmsb_page_clear_flags
 * api  18 mmsb_page_count
 * api  19 mmsb_page_list
 * api  20 mmsb_page_meta_set
 * api  21 mmsb_page_meta_get
 * api  22 mmsb_page_meta_del
 * api  23 mmsb_page_meta_export
 * api  24 mmsb_page_meta_import
 * api  25 mmsb_delta_new
 * api  26 mmsb_delta_free
 * api  27 mmsb_delta_dup
 * api  28 mmsb_delta_merge
 * api  29 mmsb_delta_to_dense
 * api  30 mmsb_delta_id
 * api  31 mmsb_delta_page_id
 * api  32 mmsb_delta_epoch
 * api  33 mmsb_delta_lsn
 * api  34 mmsb_delta_timestamp
 * api  35 mmsb_delta_is_sparse
 * api  36 mmsb_delta_mask_len
 * api  37 mmsb_delta_mask_count
 * api  38 mmsb_delta_copy_mask
 * api  39 mmsb_delta_payload_len
 * api  40 mmsb_delta_payload
 * api  41 mmsb_delta_source
 * api  42 mmsb_delta_set_source
 * api  43 mmsb_delta_set_intent
 * api  44 mmsb_delta_intent
 * api  45 mmsb_diff_mask
 * api  46 mmsb_page_update
 * api  47 mmsb_route
 * api  48 mmsb_route_batch
 * api  49 mmsb_engine_new
 * api  50 mmsb_engine_free
 * api  51 mmsb_engine_apply
 * api  52 mmsb_memory_report
 * api  53 mmsb_tick
 * api  54 mmsb_edge_add
 * api  55 mmsb_edge_remove
 * api  56 mmsb_edge_children
 * api  57 mmsb_edge_parents
 * api  58 mmsb_edge_count
 * api  59 mmsb_graph_toposort
 * api  60 mmsb_graph_bfs
 * api  61 mmsb_graph_validate
 * api  62 mmsb_provenance
 * api  63 mmsb_page_set_recompute
 * api  64 mmsb_page_set_passthrough
 * api  65 mmsb_propagate_set_deferred
 * api  66 mmsb_propagate
 * api  67 mmsb_propagate_run
 * api  68 mmsb_propagate_pending
 * api  69 mmsb_page_recompute
 * api  70 mmsb_subscribe
 * api  71 mmsb_unsubscribe
 * api  72 mmsb_state_stats
 * api  73 mmsb_state_stats_reset
 * api  74 mmsb_log_reader_open
 * api  75 mmsb_log_reader_close
 * api  76 mmsb_log_reader_version
 * api  77 mmsb_log_reader_log_id
 * api  78 mmsb_log_reader_next
 * api  79 mmsb_log_reader_offset
 * api  80 mmsb_log_reader_frame
 * api  81 mmsb_log_summarize
 * api  82 mmsb_log_recover
 * api  83 mmsb_log_convert
 * api  84 mmsb_checkpoint_write
 * api  85 mmsb_checkpoint_load
 * api  86 mmsb_checkpoint_verify
 * api  87 mmsb_replay
 * api  88 mmsb_state_diverge
 * api  89 mmsb_state_verify
 * api  90 mmsb_check_invariants
 * api  91 mmsb_check_deltas
 * api  92 mmsb_tropical_fold_add
 * api  93 mmsb_tropical_fold_mul
 * api  94 mmsb_tropical_accumulate
 * api  95 mmsb_boolean_fold_add
 * api  96 mmsb_boolean_fold_mul
 * api  97 mmsb_boolean_accumulate
 * api  98 mmsb_page_update_batch
 * api  99 mmsb_gpu_info
 * api 100 mmsb_gpu_set_policy
 * api 101 mmsb_gpu_crossover_load
 * api 102 mmsb_gpu_route
 */

provider mmsb {
	/* the FFI boundary: every public function, entered and left (fn: the id above) */
	probe api__entry(uint32_t fn);
	probe api__exit(uint32_t fn);
	/*
	 * a thread's crossing record (struct mmsb_host_rec in lib/probes.h), once per thread, at its
	 * first API call while a tracer is attached here; that attachment also turns the records on
	 */
	probe host__register(void *rec);

	/* mmsb_state_open(): opening the log included */
	probe state__open__begin(const char *log_path);
	probe state__open__end(void *state, int err);
	/* mmsb_state_close(): the final log flush and freeing every page */
	probe state__close__begin(void *state, uint64_t pages);
	probe state__close__end(void *state);

	/* a page is allocated (create, replay, template) and freed */
	probe page__alloc__begin(uint64_t page, uint64_t size, int location);
	probe page__alloc__end(uint64_t page, int err);
	probe page__free__begin(uint64_t page);
	probe page__free__end(uint64_t page, int err);

	/* mmsb_page_update(): diff, log, apply, wave; changed is 0 for a no-op update */
	probe update__begin(uint64_t page, uint64_t len);
	probe update__end(uint64_t page, uint64_t changed, int err);

	/* one delta logged and applied (route, update, recompute; batches have their own span) */
	probe delta__apply__begin(uint64_t page, uint64_t delta_id, uint64_t mask_set);
	probe delta__apply__end(uint64_t page, uint32_t epoch, uint64_t bytes);

	/* mmsb_route_batch(): validation, every apply, one wave */
	probe route__batch__begin(uint64_t deltas);
	probe route__batch__end(uint64_t deltas, uint64_t pages, int err);

	/* one propagation wave over the affected subgraph */
	probe propagate__begin(uint64_t changed, uint64_t dirty);
	probe propagate__end(uint64_t visited, uint64_t recomputed, int err);

	/* one page recomputed inside a wave (or by mmsb_page_recompute()) */
	probe recompute__begin(uint64_t page, uint64_t size);
	probe recompute__end(uint64_t page, uint64_t changed, int err);

	/* buffered log frames written to the file, and the file synced */
	probe log__append__begin(uint64_t bytes, uint64_t records);
	probe log__append__end(uint64_t bytes, int err);
	probe log__sync__begin(int fd);
	probe log__sync__end(int err);

	/* checkpoints written and loaded (path: the checkpoint file) */
	probe checkpoint__write__begin(const char *path, uint64_t pages);
	probe checkpoint__write__end(uint64_t bytes, int err);
	probe checkpoint__load__begin(const char *path);
	probe checkpoint__load__end(uint64_t pages, int err);

	/* mmsb_replay(): a log (and checkpoint) into a detached state */
	probe replay__begin(const char *log_path);
	probe replay__end(uint64_t records, int err);

	/* a throughput engine batch: validate and apply on the workers */
	probe engine__batch__begin(uint64_t deltas, uint32_t workers);
	probe engine__batch__end(uint64_t deltas, uint64_t pages, int err);

	/* a tick: engine batch, wave, graph validation, memory report */
	probe tick__begin(uint64_t deltas);
	probe tick__end(uint64_t total_ns, int within_budget);

	/* an apply on the GPU: upload of the delta, the kernel, the synchronisation at its end */
	probe gpu__launch__begin(uint64_t page, int sparse, uint64_t bytes);
	probe gpu__launch__end(uint64_t page, uint64_t bytes, int err);
	/* a whole GPU page copied: to_device 1 an upload, 0 a download (before a host read) */
	probe gpu__copy__begin(uint64_t page, int to_device, uint64_t bytes);
	probe gpu__copy__end(uint64_t page, int to_device, int err);
};
