// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The span kinds mmsb-trace knows (bpf/mmsb_spans.h): names, probes, categories; -k lists. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <linux/types.h>

#include "mmsb_trace.h"
#include "tool_helpers.h"
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

int span_mask_of(const char *list, uint32_t *mask)
{
	char *copy, *tok, *save;

	*mask = 0;
	if (!list) {
		*mask = ~0u;
		return 0;
	}
	if (!strcmp(list, "none"))
		return 0;
	copy = strdup(list);
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int k = span_kind_of(tok);

		if (k < 0 && !strcmp(tok, "ffi_host")) {
			p_err("ffi_host is sampled, not a probed kind: use --host-sample");
			free(copy);
			return -EINVAL;
		}
		if (k < 0) {
			p_err("unknown span kind '%s' (see '%s help record')", tok, prog_name);
			free(copy);
			return -EINVAL;
		}
		*mask |= 1u << k;
	}
	free(copy);
	return 0;
}
