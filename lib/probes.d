/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The probe manifest of libmmsb: provider mmsb. This file is the USDT ABI, and its one source:
 * the build generates the probe header (dtrace -h), the semaphores and their sharing
 * (lib/gen-probes.sh) from it, and tests/test_probes.sh checks the built library against it. Each
 * begin/end pair is also a span kind of mmsb-trace: one line in bpf/mmsb_spans.h. docs/probes.md
 * is the reference (when each fires, stability).
 *
 * Rules: arguments are integers and pointers, at most 6. Every span is a pair NAME__begin /
 * NAME__end (api__entry / api__exit for the FFI boundary) whose two probes share a semaphore,
 * so a tracer enables both or neither. No pair wraps a per-item step of a hot loop: a
 * batch gets one span and its count. Probes are added, never renamed or re-typed.
 *
 * API function ids (the argument of api__entry and api__exit): lib/api-ids.list.
 */

provider mmsb {
	/* the FFI boundary: every public function but the semiring ones (fn: lib/api-ids.list) */
	probe api__entry(uint32_t fn);
	probe api__exit(uint32_t fn);
	/*
	 * a thread's crossing record (struct mmsb_host_rec in lib/probes.h), once per thread, at its
	 * first API call while a tracer is attached here; that attachment also turns the records on
	 */
	probe host__register(void *rec);
	/*
	 * a thread's span block (struct mmsb_span_thread, mmsb/span_abi.h), once per thread, when
	 * it takes the block; a tracer attached here turns the in-process spans on
	 */
	probe span__register(void *block);

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
