/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Probe sites. The macros come from the header generated from lib/probes.d (see
 * lib/gen-probes.sh); with `make PROBES=0` they are empty and no note or semaphore is built.
 *
 *   MMSB_TRACE(UPDATE_BEGIN, id, len);   fires mmsb:update__begin if a tracer enabled it
 *   MMSB_API_SCOPE(mmsb_page_update);    api__entry now, api__exit on every return
 *
 * The arguments are evaluated only under the probe's semaphore check, so a probe with nobody
 * attached costs a load and a not-taken branch.
 */
#ifndef __MMSB_PROBES_H
#define __MMSB_PROBES_H

#include <stdint.h>

#include "mmsb_probes.h"

#if MMSB_PROBES
#define MMSB_TRACE(NAME, ...)                                                                      \
	do {                                                                                       \
		if (MMSB_##NAME##_ENABLED())                                                       \
			MMSB_##NAME(__VA_ARGS__);                                                  \
	} while (0)

static inline void mmsb__api_leave(const uint32_t *fn)
{
	if (MMSB_API_EXIT_ENABLED())
		MMSB_API_EXIT(*fn);
}

/* The exit fires from the cleanup of a scoped variable: every return path is covered. */
#define MMSB_API_SCOPE(fn)                                                                         \
	const uint32_t mmsb__api_fn __attribute__((cleanup(mmsb__api_leave))) = MMSB_FN_##fn;      \
	if (MMSB_API_ENTRY_ENABLED())                                                              \
	MMSB_API_ENTRY(mmsb__api_fn)
#else
/* compiled out: the arguments still count as used, but are never evaluated */
static inline void mmsb__probe_args(int unused, ...)
{
	(void)unused;
}

#define MMSB_TRACE(NAME, ...)                                                                      \
	do {                                                                                       \
		if (0)                                                                             \
			mmsb__probe_args(0, __VA_ARGS__);                                          \
	} while (0)
#define MMSB_API_SCOPE(fn) ((void)0)
#endif

#endif /* __MMSB_PROBES_H */
