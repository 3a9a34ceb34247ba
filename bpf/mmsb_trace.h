/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * ABI between mmsb_trace.bpf.c and mmsb-trace: fixed-size types only, no system includes (the
 * span list is ours, plain C).
 */
#ifndef __MMSB_TRACE_H
#define __MMSB_TRACE_H

#include "mmsb_spans.h"
#include "mmsb/span_abi.h" /* the in-process spans' layout, the histogram's slots */

/* span kinds: SPAN_API, SPAN_STATE_OPEN, ... one per line of mmsb_spans.h (the attach cookie) */
enum {
#define X(id, name, begin, end, category) SPAN_##id,
	MMSB_SPANS(X)
#undef X
		SPAN_KINDS
};

/* a kind is a bit of kinds_mask (32) and 5 bits of span_key.chain (kind + 1) */
_Static_assert(SPAN_KINDS <= 31, "span kinds: at most 31");

#define MAX_SPAN_DEPTH 16	   /* open spans per thread; deeper ones are counted, not timed */
#define HIST_SLOTS MMSB_HIST_SLOTS /* log-linear: mmsb_hist_slot() */
#define MAX_STACK_FRAMES 64
#define MAX_PMU 4    /* counters read at every begin and end (--pmu) */
#define MAX_CPUS 256 /* pmu_events holds MAX_PMU * MAX_CPUS per-CPU counters */

struct span_key {
	__u32 kind;
	__s32 stack_id; /* user stack (see stack_mode), -1 without */
	/*
	 * The kinds of the open spans around this one, 5 bits each (kind + 1), the parent in the
	 * low bits; 0 at the outermost level. Twelve levels fit; deeper ones keep the inner twelve.
	 */
	__u64 chain;
};

/* stack_mode: which begins take a user stack */
#define STACKS_NONE 0
#define STACKS_OUTER 1 /* the outermost span's; nested spans inherit it (default) */
#define STACKS_ALL 2   /* every span's: precise, a stack walk per begin */

struct span_stats {
	__u64 count;
	__u64 total_ns; /* inclusive */
	__u64 self_ns;	/* exclusive: minus the spans nested inside */
	__u64 min_ns, max_ns;
	__u64 hist[HIST_SLOTS];
	/* counter deltas, scaled for multiplexing: inclusive, and minus the nested spans' */
	__u64 pmu_total[MAX_PMU], pmu_self[MAX_PMU];
	__u64 pmu_count; /* spans whose counters were read at both ends on one CPU */
};

/* counters[]: what went wrong or was left out, never silently */
#define CNT_OVERFLOW 0	     /* spans deeper than MAX_SPAN_DEPTH: not timed */
#define CNT_UNMATCHED 1	     /* an end whose begin was not seen (attached mid-span) */
#define CNT_ABANDONED 2	     /* begins closed by an outer end without their own end */
#define CNT_STACK_ERR 3	     /* the user stack could not be taken */
#define CNT_EVENTS_DROPPED 4 /* ring buffer full */
#define CNT_HITS 5	     /* probe hits seen (begins + ends) */
#define CNT_STATS_FULL 6     /* the stats map was full: a span not aggregated */
#define CNT_PMU_SKIPPED 7    /* spans without counters: migrated CPUs, or a read failed */
#define CNT_HOST_OTHER 8     /* ffi_call into something else than libmmsb: a cost, not a span */
/* --host-sample */
#define CNT_CROSSINGS 9	  /* crossings into libmmsb seen by the samples (their records' counts) */
#define CNT_SMP_EARLY 10  /* a target thread before its first crossing (start-up, non-callers) */
#define CNT_SMP_SPAN 11	  /* inside an API call: the library's time */
#define CNT_SMP_KERNEL 12 /* kernel mode outside API calls: the host's system calls, faults */
#define CNT_SMP_LOST 13	  /* a record unreadable, or the host_samples map full */
#define CNT_SMP_HOST 14	  /* user mode outside API calls: the host's (host_samples) */
/* the default mode (in-process spans) */
#define CNT_SPAN_SMP 15		/* timer samples of the target's threads */
#define CNT_SPAN_SMP_LOST 16	/* a sample whose thread's span block could not be read */
#define CNT_SPAN_SWITCH_LOST 17 /* a switch whose thread's span block could not be read */
#define CNT_MAX 18

/*
 * Host samples (--host-sample): a timer sample of a target thread in user mode outside every
 * API call is the host's; the boundary's (HOST_FFI) when the thread crossed into libmmsb since
 * its previous sample, its own work (HOST_OTHER) when it did not.
 */
#define HOST_FFI 0
#define HOST_OTHER 1

struct host_key {
	__u64 ip;
	__u32 cls; /* HOST_FFI, HOST_OTHER */
	__u32 pad;
};

/* struct mmsb_host_rec of lib/probes.h: a thread's crossings, read from the target's memory */
struct mmsb_host_rec_abi {
	__u32 depth;
	__u32 reserved;
	__u64 crossings;
};

/* a thread's open spans (the stacks_open map, read by mmsb-trace at the stop) */
struct open_span {
	__u64 start_ns, child_ns, chain;
	__u32 kind;
	__s32 stack_id;
	/* counters at the begin (scaled), and the nested spans' deltas; cpu -1: none taken */
	__u64 pmu_start[MAX_PMU], pmu_child[MAX_PMU];
	__s32 cpu;
	__u32 pad;
};

struct span_stack {
	__u32 depth;	/* entries used */
	__u32 overflow; /* begins past MAX_SPAN_DEPTH still open */
	struct open_span s[MAX_SPAN_DEPTH];
};

/*
 * The default mode: the target's threads keep their spans themselves (mmsb/span_abi.h). The
 * kernel adds what only it sees: the time each thread spent off a CPU while a span was open,
 * charged to the innermost one (span_offcpu), and timer samples with the open span and the
 * stacks (span_samples). node: the span's node in its thread's block, 0 outside every span.
 */
struct span_tid_node {
	__u32 tid;
	__u32 node;
};

struct offcpu_ns {
	__u64 blocked; /* asleep: I/O, a lock, a sleep */
	__u64 waiting; /* runnable, preempted: waiting for a CPU */
};

/* a thread switched out inside a span (offcpu_start, by tid) */
struct switched_out {
	__u64 ts;
	__u32 node;
	__u32 blocked;
};

struct sample_key {
	__u32 tid;
	__u32 node;
	__s32 ustack, kstack; /* in user_stacks; -1 without */
};

/* window_state */
#define WINDOW_BEFORE 0	 /* probes being attached: nothing recorded */
#define WINDOW_OPEN 1	 /* recording */
#define WINDOW_STOPPED 2 /* the window is over: nothing recorded, the probes may come out */
#define WINDOW_CAL 3	 /* before the window: mmsb-trace measuring a hit's cost on itself */

struct span_event {
	__u64 start_ns, dur_ns, self_ns;
	__u32 tid, kind;
	__u32 depth;
	__s32 stack_id;
};

#endif /* __MMSB_TRACE_H */
