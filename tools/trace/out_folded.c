// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * record --folded: Brendan Gregg's folded stacks, one "frame;frame;leaf N" line per stack, frames
 * root to leaf, weighted by self time in ns (flamegraph.pl, speedscope and inferno read it).
 */
#include <inttypes.h>
#include <stdio.h>

#include "record.h"

void folded_stack(FILE *f, const struct stack_row *row)
{
	if (!row->v->self_ns)
		return;
	if (!row->nf)
		fputs("[no stack];", f);
	for (int i = 0; i < row->nf; i++)
		fprintf(f, "%s;", row->names[i]);
	fprintf(f, "%s %llu\n", row->leaf, (unsigned long long)row->v->self_ns);
}

/* A sampled host frame: under mmsb:ffi_host, its module, then its function. */
void folded_host(FILE *f, const struct host_frame *hf, uint64_t ns)
{
	fprintf(f, "mmsb:ffi_host;%s;%s %" PRIu64 "\n", hf->module, hf->symbol, ns);
}
