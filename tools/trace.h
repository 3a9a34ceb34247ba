/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* mmsb-trace's verbs, shared between its files. */
#ifndef __MMSB_TRACE_TOOL_H
#define __MMSB_TRACE_TOOL_H

#include <stdbool.h>

extern bool json;

int do_record(int argc, char **argv);
int do_features(int argc, char **argv);
int record_help(void);
int features_help(void);

bool have_bpf_caps(void);

/* What the kernel offers the tracer; ringbuf and cookie are -1 when unprivileged (unknown). */
struct trace_features {
	char kernel[65];
	bool btf, refctr, priv;
	int ringbuf, cookie;
};

struct json_object;

void features_probe(struct trace_features *f);
/* The same as a JSON object (unknown as null), for features --json and record's report */
struct json_object *features_json(const struct trace_features *f);

/* The libmmsb.so this tool runs with, or NULL. */
const char *own_libmmsb(void);

#endif /* __MMSB_TRACE_TOOL_H */
