// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The span kinds mmsb-trace knows: each kind's name, its two probes and its category. */
#include <stddef.h>
#include <string.h>
#include <linux/types.h>

#include "mmsb_trace.h"
#include "trace.h"

/* from bpf/mmsb_spans.h: the one list of the kinds */
static const struct span_def {
	const char *name, *begin, *end, *category;
} spans[SPAN_KINDS] = {
#define X(id, name, begin, end, category) [SPAN_##id] = { name, begin, end, category },
	MMSB_SPANS(X)
#undef X
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
