/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * libmmsb's in-process spans: the memory layout an outside reader (mmsb-trace, its BPF programs,
 * any profiler's agent) finds in a process that uses libmmsb. docs/probes.md describes it.
 *
 * While a tracer is attached to the mmsb:span__register probe (its semaphore is non-zero), every
 * thread that opens a span keeps, in a block of its own, the stack of its open spans and, per
 * span tree node (a kind under a chain of enclosing kinds), the count, inclusive and self time
 * and a log-linear histogram of the durations. No probe fires per span: a span costs two reads of
 * the span clock and a few stores. The span clock is the registry's clock: the CPU's time stamp
 * counter where it is invariant (x86: a plain RDTSC, 11 ns where a CLOCK_MONOTONIC read costs
 * 26 ns and, with its LFENCE, waits for every load in flight), else CLOCK_MONOTONIC in ns. A
 * reader converts TSC ticks itself (it reads the TSC beside CLOCK_MONOTONIC twice). The blocks are linked from the exported object
 * mmsb_span_registry; the registry and the blocks are never freed. A thread gives its block back
 * at its exit, or at an end once no tracer keeps spans and it has none open; the next thread to
 * keep a span takes a free one (the one it gave back, if it can) with its figures (they only
 * grow: readers take differences).
 *
 * Reading a block: read seq, the block, seq again; the copy is consistent when both reads give
 * the same even value (the owner makes seq odd while it writes). The current span of a thread is
 * stack[depth - 1] when depth > 0; mmsb:span__register(block) fires once per block, on the owner
 * thread, when the block is made or handed over, so a BPF program learns tid -> block there.
 *
 * Layout version 1. Fields are only appended; a reader checks magic, version and the sizes.
 */
#ifndef __MMSB_SPAN_ABI_H
#define __MMSB_SPAN_ABI_H

#ifndef __bpf__
#include <linux/types.h>
#endif

#define MMSB_SPAN_MAGIC 0x3142535053424d4dull /* "MMBSPSB1", little-endian */
#define MMSB_SPAN_VERSION 1

#define MMSB_SPAN_DEPTH 16  /* open spans kept per thread; deeper ones are counted */
#define MMSB_SPAN_NODES 128 /* span tree nodes per thread, node 0 the root (no span) */
#define MMSB_SPAN_KIND_MAX 32

/*
 * The duration histogram, log-linear: 8 sub-buckets per power of two, so a quantile read at a
 * bucket's middle is within 6.25 % (HdrHistogram's scheme with 3 bits). Durations below 8 ns
 * have a slot each; the last slot holds everything from 2^40 ns (18 minutes) up.
 */
#define MMSB_HIST_SUB_BITS 3
#define MMSB_HIST_SLOTS 312

/* The highest bit set in v (v > 0): six steps, nothing a BPF program cannot run. */
static inline __u32 mmsb__msb64(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) {
		v >>= 32;
		r += 32;
	}
	if (v >> 16) {
		v >>= 16;
		r += 16;
	}
	if (v >> 8) {
		v >>= 8;
		r += 8;
	}
	if (v >> 4) {
		v >>= 4;
		r += 4;
	}
	if (v >> 2) {
		v >>= 2;
		r += 2;
	}
	return r + (__u32)(v >> 1);
}

static inline __u32 mmsb_hist_slot(__u64 ns)
{
	__u32 msb, slot;

	if (ns < (1u << MMSB_HIST_SUB_BITS))
		return (__u32)ns;
	msb = mmsb__msb64(ns);
	slot = ((msb - MMSB_HIST_SUB_BITS + 1) << MMSB_HIST_SUB_BITS) +
	       (__u32)((ns >> (msb - MMSB_HIST_SUB_BITS)) & ((1u << MMSB_HIST_SUB_BITS) - 1));
	return slot < MMSB_HIST_SLOTS ? slot : MMSB_HIST_SLOTS - 1;
}

/* The smallest duration a slot holds; the slot holds up to the next slot's. */
static inline __u64 mmsb_hist_slot_low(__u32 slot)
{
	__u32 sub = slot & ((1u << MMSB_HIST_SUB_BITS) - 1), msb;

	if (slot < (1u << MMSB_HIST_SUB_BITS))
		return slot;
	msb = (slot >> MMSB_HIST_SUB_BITS) + MMSB_HIST_SUB_BITS - 1;
	return (__u64)((1u << MMSB_HIST_SUB_BITS) + sub) << (msb - MMSB_HIST_SUB_BITS);
}

/* the registry's clock: what every time in a block counts */
#define MMSB_SPAN_CLOCK_MONOTONIC 0 /* CLOCK_MONOTONIC, ns */
#define MMSB_SPAN_CLOCK_TSC 1	    /* x86's invariant time stamp counter, ticks */

/* An open span. Times in the registry's clock. */
struct mmsb_span_frame {
	__u64 start; /* the clock at its begin */
	__u64 child; /* inclusive time of the spans that closed directly inside it */
	__u64 key;   /* its begin probe's first argument (a page id, a count, a pointer) */
	__u16 node;  /* its node, 0 when the node table was full (not aggregated) */
	__u8 kind;   /* the span kind (bpf/mmsb_spans.h order, docs/probes.md) */
	__u8 pad[5];
};

/* A node of the thread's span tree: one kind under one chain of enclosing kinds. */
struct mmsb_span_node {
	__u64 count; /* spans closed */
	__u64 total; /* inclusive, in the registry's clock */
	__u64 self;  /* minus the spans directly inside */
	__u64 max;
	__u16 parent; /* 0: an outermost span */
	__u8 kind;
	__u8 pad[5];
	__u32 hist[MMSB_HIST_SLOTS]; /* inclusive durations, mmsb_hist_slot() of the clock's */
};

struct mmsb_span_thread {
	__u64 magic;	      /* MMSB_SPAN_MAGIC */
	__u32 seq;	      /* odd while the owner writes */
	__u32 depth;	      /* frames in stack[] */
	__s32 tid;	      /* the owner; 0 while the block is free */
	__u32 overflow;	      /* spans open past MMSB_SPAN_DEPTH */
	__u64 next;	      /* the next block (an address in the process), 0 at the end */
	__u64 owner_since_ns; /* CLOCK_MONOTONIC when tid took the block */
	__u32 owners;	      /* times a thread took the block, tid's included */
	__u32 n_nodes;	      /* nodes[] in use, the root included */
	__u64 deep;	      /* spans closed past MMSB_SPAN_DEPTH: counted here, not timed */
	__u64 lost;	      /* spans closed without a node (the table was full) */
	__s32 last_tid;	      /* the owner, or the last one: kept when it exits */
	char comm[16];	      /* last_tid's name when it took the block */
	__u32 pad;
	struct mmsb_span_frame stack[MMSB_SPAN_DEPTH];
	__u8 child[MMSB_SPAN_NODES][MMSB_SPAN_KIND_MAX]; /* node of (parent, kind), 0: none yet */
	struct mmsb_span_node nodes[MMSB_SPAN_NODES];
};

/* The exported object mmsb_span_registry. */
struct mmsb_span_registry {
	__u64 magic;	  /* MMSB_SPAN_MAGIC */
	__u32 version;	  /* MMSB_SPAN_VERSION */
	__u32 block_size; /* sizeof(struct mmsb_span_thread) */
	__u64 head;	  /* the newest block, 0 before the first */
	__u32 blocks;	  /* blocks made */
	__u32 kinds;	  /* span kinds this library knows */
	__u32 clock;	  /* MMSB_SPAN_CLOCK_*: set when the library is loaded */
	__u32 pad;
};

#endif /* __MMSB_SPAN_ABI_H */
