/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Probe sites. The macros come from the header generated from lib/probes.d (see
 * lib/gen-probes.sh); with `make PROBES=0` they are empty and no note or semaphore is built.
 *
 *   MMSB_TRACE(UPDATE_BEGIN, id, len);   fires mmsb:update__begin if a tracer enabled it
 *   MMSB_API_GATE(mmsb_page_update, s, id, data, len);   api__entry and api__exit around the call
 *
 * The arguments are evaluated only behind the gate's check, so with nobody attached a site costs
 * a compare and a not-taken branch, and so does a public call.
 */
#ifndef __MMSB_PROBES_H
#define __MMSB_PROBES_H

#include <stdbool.h>
#include <stdint.h>

#include "mmsb_probes.h"

#if MMSB_PROBES
#include "mmsb/span_abi.h"

/*
 * In-process spans (mmsb/span_abi.h, lib/spans.c): a begin is kept only while a tracer holds
 * the span__register semaphore, one load and a not-taken branch otherwise; an end looks at its
 * thread's block only when the thread has one. The generated MMSB__SPAN_<PROBE> macros call
 * these for each begin and end probe of bpf/mmsb_spans.h (lib/gen-probes.sh).
 */
extern __thread struct mmsb_span_thread *mmsb__span_self __attribute__((tls_model("initial-exec")));
/*
 * How many threads hold a block: while none does, an end has nothing to look at. A thread gives
 * its block back once no tracer keeps spans and it has none open (lib/spans.c), so the sites
 * close again after a trace. It lives beside the semaphores, in the word of mmsb__site_gate
 * (lib/gen-probes.sh).
 */
extern uint16_t mmsb__spans_used __attribute__((visibility("hidden")));
void mmsb__span_push(unsigned int kind, uint64_t key);
void mmsb__span_pop(struct mmsb_span_thread *t, unsigned int kind);

static inline void mmsb__span_begin(unsigned int kind, uint64_t key)
{
	if (__builtin_expect(MMSB_SPAN_REGISTER_ENABLED(), 0))
		mmsb__span_push(kind, key);
}

static inline void mmsb__span_end(unsigned int kind)
{
	struct mmsb_span_thread *t = mmsb__span_self;

	if (__builtin_expect(t != NULL, 0))
		mmsb__span_pop(t, kind);
}

/* a begin's key: its first argument, whatever its type */
#define MMSB__SPAN_KEY(a, ...) ((uint64_t)(uintptr_t)(a))

/*
 * The semaphores of the sites inside the library, span__register's and the one every begin and
 * end probe shares, with mmsb__spans_used, in one 64-bit word (4-byte aligned: lib/gen-probes.sh
 * lays it out): nonzero while a tracer holds a probe or the spans, or a thread holds a block.
 */
typedef uint64_t mmsb__u64_a4 __attribute__((aligned(4)));
extern mmsb__u64_a4 mmsb__site_gate __attribute__((visibility("hidden")));

/*
 * The probe, and the in-process span when NAME begins or ends one: while nobody traces, one
 * compare of the site gate and a not-taken branch; behind it, the span and the probe each test
 * their own switch.
 */
#define MMSB_TRACE(NAME, ...)                                                                      \
	do {                                                                                       \
		if (__builtin_expect(mmsb__site_gate != 0, 0)) {                                   \
			MMSB__SPAN_##NAME(__VA_ARGS__);                                            \
			if (MMSB_##NAME##_ENABLED())                                               \
				MMSB_##NAME(__VA_ARGS__);                                          \
		}                                                                                  \
	} while (0)

/*
 * The host side of the boundary, sampled (mmsb-trace record --host-sample, docs/ffi.md). While a
 * tracer is attached to host__register, each thread keeps a record of its crossings into the
 * library: how deep it is in API calls and how many outermost calls it has made. The tracer's
 * timer samples read it, so no probe fires per call: a trap per crossing would cost the host as
 * much as the marshalling measured. A thread hands over its record's address with
 * host__register (see mmsb__host_enter). The layout is an ABI shared with bpf/mmsb_trace.h
 * (struct mmsb_host_rec_abi).
 */
struct mmsb_host_rec {
	uint32_t depth;	    /* API calls open on this thread */
	uint32_t reserved;  /* zero */
	uint64_t crossings; /* outermost API calls begun */
};

/* initial-exec: a fixed offset from the thread pointer, no __tls_get_addr on the call path */
extern __thread struct mmsb_host_rec mmsb__host __attribute__((tls_model("initial-exec")));

static inline bool mmsb__host_enter(void)
{
	struct mmsb_host_rec *h = &mmsb__host;

	/*
	 * Announced at the first crossing, and again every 4096: a tracer attached later (or the
	 * next one) learns of the record within 4096 crossings, for a trap every 4096 calls.
	 */
	if (!h->depth++ && !(h->crossings++ & 4095))
		MMSB_HOST_REGISTER(h);
	return true;
}

/* What an API call's entry turned on, for its exit to undo: nothing while nobody traces. */
enum { MMSB__API_HOST = 1, MMSB__API_SPAN = 2, MMSB__API_PROBE = 4 };

struct mmsb__api_scope {
	uint32_t id; /* the API function's (lib/probes.d) */
	uint32_t on; /* MMSB__API_*: what the entry did, whatever a tracer did since */
};

/* A tracer holds one of the three switches: the crossing record, the span, the probe. */
/* always inlined: each traced twin keeps a site of its own for api__entry and api__exit */
static inline __attribute__((always_inline)) uint32_t mmsb__api_enter(uint32_t id)
{
	uint32_t on = 0;

	if (MMSB_HOST_REGISTER_ENABLED() && mmsb__host_enter())
		on |= MMSB__API_HOST;
	if (MMSB_SPAN_REGISTER_ENABLED()) {
		mmsb__span_push(MMSB_SPAN_KIND_API, id);
		on |= MMSB__API_SPAN;
	}
	if (MMSB_API_ENTRY_ENABLED()) {
		MMSB_API_ENTRY(id);
		on |= MMSB__API_PROBE;
	}
	return on;
}

static inline __attribute__((always_inline)) void mmsb__api_exit(const struct mmsb__api_scope *sc)
{
	struct mmsb_span_thread *t = mmsb__span_self;

	if (sc->on & MMSB__API_HOST)
		mmsb__host.depth--;
	if ((sc->on & MMSB__API_SPAN) && t)
		mmsb__span_pop(t, MMSB_SPAN_KIND_API);
	if (sc->on & MMSB__API_PROBE)
		MMSB_API_EXIT(sc->id);
}

static inline __attribute__((always_inline)) void mmsb__api_leave(const struct mmsb__api_scope *sc)
{
	if (__builtin_expect(sc->on != 0, 0))
		mmsb__api_exit(sc);
}

/*
 * The semaphores of api__entry, host__register and span__register share one aligned 64-bit word
 * (lib/gen-probes.sh lays them out): nonzero while a tracer holds any of the three.
 */
extern uint64_t mmsb__api_gate __attribute__((visibility("hidden")));
/*
 * The API id of the function whose traced twin is making its one call into it, 0 otherwise: a
 * public call of another function in between (a signal handler's, a callback's after a tracer
 * left and came back) is traced as its own, and cannot take the twin's turn.
 */
extern __thread uint32_t mmsb__api_reenter __attribute__((tls_model("initial-exec")))
__attribute__((visibility("hidden")));

/* the gate is open: whether this call of function id is to be traced, or is its twin's own */
static inline __attribute__((always_inline)) bool mmsb__api_trace_call(uint32_t id)
{
	if (mmsb__api_reenter == id) {
		mmsb__api_reenter = 0;
		return false;
	}
	return true;
}

static inline void mmsb__api_reenter_done(const uint32_t *unused)
{
	(void)unused;
	mmsb__api_reenter = 0;
}

/*
 * The first statement of every public function (lib/api-ids.list), given its arguments:
 *
 *   int mmsb_page_update(struct mmsb_state *s, uint64_t id, const void *data, size_t len)
 *   {
 *           MMSB_API_GATE(mmsb_page_update, s, id, data, len);
 *
 * Shut, the gate costs one compare and a branch, and nothing after it: a scope held by the
 * function itself kept its state live across the body and, its traced path calling out, made
 * the compiler save the callee-saved registers on every call (about 25 instructions,
 * docs/probes.md). Open, the call goes to the function's traced twin (fn__traced, generated
 * from mmsb.h by lib/gen-probes.sh), which holds the scope (api__entry and api__exit, the span,
 * the crossing) around one more call of the function, marked with mmsb__api_reenter so that
 * this one passes the gate. A traced call's stack shows the twin above the function.
 */
#define MMSB_API_GATE(fn, ...)                                                                     \
	do {                                                                                       \
		extern __typeof__(fn) fn##__traced __attribute__((visibility("hidden")));          \
		if (__builtin_expect(mmsb__api_gate != 0, 0) &&                                    \
		    mmsb__api_trace_call(MMSB_FN_##fn))                                            \
			return fn##__traced(__VA_ARGS__);                                          \
	} while (0)

/*
 * The traced twin's body, before its call of fn (lib/gen-probes.sh). The scope's exit runs from
 * the cleanup of a scoped variable: every return path is covered, and an exit undoes exactly
 * what its entry did, so a tracer that comes or goes mid-call leaves nothing unmatched. The turn
 * is cleared at the return too, in case a tracer left before the call looked.
 */
#define MMSB_API_TWIN(fn)                                                                          \
	const struct mmsb__api_scope mmsb__api_scope                                               \
		__attribute__((cleanup(mmsb__api_leave))) = { MMSB_FN_##fn,                        \
							      mmsb__api_enter(MMSB_FN_##fn) };     \
	const uint32_t mmsb__api_turn __attribute__((cleanup(mmsb__api_reenter_done))) =           \
		mmsb__api_reenter = MMSB_FN_##fn
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
#define MMSB_API_GATE(fn, ...)                                                                     \
	do {                                                                                       \
	} while (0)
#endif

#endif /* __MMSB_PROBES_H */
