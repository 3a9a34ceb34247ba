// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * record --events: every closed span through the ring buffer, one JSON object a line (NDJSON),
 * written as it arrives; the first TIMELINE_MAX are also kept for the speedscope timeline.
 */
#include <stdio.h>
#include <stdlib.h>

#include "record.h"

int timeline_on_event(void *ctx, void *data, size_t size)
{
	const struct span_event *e = data;
	struct timeline *tl = ctx;

	if (size < sizeof(*e))
		return 0;
	tl->streamed++;
	if (fprintf(tl->f,
		    "{\"start_ns\":%llu,\"dur_ns\":%llu,\"self_ns\":%llu,\"tid\":%u,"
		    "\"kind\":\"%s\",\"depth\":%u,\"stack_id\":%d}\n",
		    (unsigned long long)e->start_ns, (unsigned long long)e->dur_ns,
		    (unsigned long long)e->self_ns, e->tid, span_name((int)e->kind), e->depth,
		    e->stack_id) < 0)
		tl->write_err = true;
	if (tl->n == tl->cap) {
		size_t cap = tl->cap ? 2 * tl->cap : 4096;
		struct span_event *nv =
			cap <= TIMELINE_MAX ? realloc(tl->v, cap * sizeof(*nv)) : NULL;

		if (!nv) {
			tl->not_kept++;
			return 0;
		}
		tl->v = nv;
		tl->cap = cap;
	}
	tl->v[tl->n++] = *e;
	return 0;
}
