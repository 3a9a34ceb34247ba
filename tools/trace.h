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

/* The libmmsb.so this tool runs with, or NULL. */
const char *own_libmmsb(void);

#endif /* __MMSB_TRACE_TOOL_H */
