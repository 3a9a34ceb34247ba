// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The span kinds mmsb-trace knows: each kind's name, its two probes and its category. */
#include <stddef.h>
#include <string.h>
#include <linux/types.h>

#include "mmsb_trace.h"
#include "trace.h"

static const struct span_def {
	const char *name, *begin, *end, *category;
} spans[SPAN_KINDS] = {
	[SPAN_API] = { "api", "api__entry", "api__exit", "ffi" },
	[SPAN_STATE_OPEN] = { "state_open", "state__open__begin", "state__open__end",
			      "allocation" },
	[SPAN_STATE_CLOSE] = { "state_close", "state__close__begin", "state__close__end",
			       "allocation" },
	[SPAN_PAGE_ALLOC] = { "page_alloc", "page__alloc__begin", "page__alloc__end",
			      "allocation" },
	[SPAN_PAGE_FREE] = { "page_free", "page__free__begin", "page__free__end", "allocation" },
	[SPAN_UPDATE] = { "update", "update__begin", "update__end", "routing" },
	[SPAN_DELTA_APPLY] = { "delta_apply", "delta__apply__begin", "delta__apply__end",
			       "delta apply" },
	[SPAN_ROUTE_BATCH] = { "route_batch", "route__batch__begin", "route__batch__end",
			       "routing" },
	[SPAN_PROPAGATE] = { "propagate", "propagate__begin", "propagate__end", "propagation" },
	[SPAN_RECOMPUTE] = { "recompute", "recompute__begin", "recompute__end", "recompute" },
	[SPAN_LOG_APPEND] = { "log_append", "log__append__begin", "log__append__end", "log" },
	[SPAN_LOG_SYNC] = { "log_sync", "log__sync__begin", "log__sync__end", "log" },
	[SPAN_CHECKPOINT_WRITE] = { "checkpoint_write", "checkpoint__write__begin",
				    "checkpoint__write__end", "checkpoint" },
	[SPAN_CHECKPOINT_LOAD] = { "checkpoint_load", "checkpoint__load__begin",
				   "checkpoint__load__end", "checkpoint" },
	[SPAN_REPLAY] = { "replay", "replay__begin", "replay__end", "checkpoint" },
	[SPAN_ENGINE_BATCH] = { "engine_batch", "engine__batch__begin", "engine__batch__end",
				"routing" },
	[SPAN_TICK] = { "tick", "tick__begin", "tick__end", "routing" },
	/* not libmmsb's: a host's libffi call into it (ctypes, cffi), entry to return */
	[SPAN_HOST] = { "ffi_call", "ffi_call", "ffi_call", "ffi host" },
	[SPAN_GPU_LAUNCH] = { "gpu_launch", "gpu__launch__begin", "gpu__launch__end", "gpu" },
	[SPAN_GPU_COPY] = { "gpu_copy", "gpu__copy__begin", "gpu__copy__end", "gpu" },
};

int span_kind_of(const char *name)
{
	for (int k = 0; k < SPAN_KINDS; k++)
		if (!strcmp(spans[k].name, name))
			return k;
	return -1;
}

const char *span_name(int kind)
{
	return kind >= 0 && kind < SPAN_KINDS ? spans[kind].name : "?";
}

const char *span_category(int kind)
{
	return kind >= 0 && kind < SPAN_KINDS ? spans[kind].category : "?";
}

const char *span_probe(int kind, bool end)
{
	if (kind < 0 || kind >= SPAN_KINDS)
		return NULL;
	return end ? spans[kind].end : spans[kind].begin;
}
