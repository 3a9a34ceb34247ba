/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The span kinds, each written once: X(ID, name, begin probe, end probe, category). The list
 * makes the kinds' ids (SPAN_<ID> in mmsb_trace.h: the attach cookie, the index of every table,
 * numbered in this order) and mmsb-trace's span table (tools/trace/spans.c): the -k names, the
 * probes it attaches, the categories of its report. A new kind is one line appended here plus
 * its NAME__begin / NAME__end pair in lib/probes.d; tests/test_probes.sh checks every line
 * against lib/probes.d. Plain C only: the BPF program includes it too.
 */
#ifndef __MMSB_SPANS_H
#define __MMSB_SPANS_H

/* clang-format off: one kind a line, whatever the width */
#define MMSB_SPANS(X)                                                                              \
	X(API, "api", "api__entry", "api__exit", "library")                                        \
	X(STATE_OPEN, "state_open", "state__open__begin", "state__open__end", "allocation")        \
	X(STATE_CLOSE, "state_close", "state__close__begin", "state__close__end", "allocation")    \
	X(PAGE_ALLOC, "page_alloc", "page__alloc__begin", "page__alloc__end", "allocation")        \
	X(PAGE_FREE, "page_free", "page__free__begin", "page__free__end", "allocation")            \
	X(UPDATE, "update", "update__begin", "update__end", "routing")                             \
	X(DELTA_APPLY, "delta_apply", "delta__apply__begin", "delta__apply__end", "delta apply")   \
	X(ROUTE_BATCH, "route_batch", "route__batch__begin", "route__batch__end", "routing")       \
	X(PROPAGATE, "propagate", "propagate__begin", "propagate__end", "propagation")             \
	X(RECOMPUTE, "recompute", "recompute__begin", "recompute__end", "recompute")               \
	X(LOG_APPEND, "log_append", "log__append__begin", "log__append__end", "log")               \
	X(LOG_SYNC, "log_sync", "log__sync__begin", "log__sync__end", "log")                       \
	X(CHECKPOINT_WRITE, "checkpoint_write", "checkpoint__write__begin",                        \
	  "checkpoint__write__end", "checkpoint")                                                  \
	X(CHECKPOINT_LOAD, "checkpoint_load", "checkpoint__load__begin", "checkpoint__load__end",  \
	  "checkpoint")                                                                            \
	X(REPLAY, "replay", "replay__begin", "replay__end", "checkpoint")                          \
	X(ENGINE_BATCH, "engine_batch", "engine__batch__begin", "engine__batch__end", "routing")   \
	X(TICK, "tick", "tick__begin", "tick__end", "routing")                                     \
	/* not libmmsb's probes: a host's libffi call into it (ctypes, cffi), a uprobe on       */ \
	/* ffi_call from entry to return; mmsb-trace attaches it by hand (record.c)             */ \
	X(HOST, "ffi_call", "ffi_call", "ffi_call", "ffi host")                                    \
	X(GPU_LAUNCH, "gpu_launch", "gpu__launch__begin", "gpu__launch__end", "gpu")               \
	X(GPU_COPY, "gpu_copy", "gpu__copy__begin", "gpu__copy__end", "gpu")
/* clang-format on */

#endif /* __MMSB_SPANS_H */
