// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * In-process spans (lib/include/mmsb/span_abi.h): each thread's open spans and its per-node
 * aggregates, kept while a tracer holds the mmsb:span__register semaphore, read from outside
 * (mmsb-trace's default mode) without a trap per span. lib/probes.h has the inline checks; this
 * file is the work behind them.
 *
 * One writer per block, its thread: the figures are plain stores bracketed by seq, which readers
 * in other processes check. A block is never freed; the registry only grows (one block per
 * thread alive at once, at most), so a reader may follow next pointers at any time.
 */
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#if defined(__x86_64__)
#include <cpuid.h>
#include <x86intrin.h>
#endif
#include <time.h>
#include <unistd.h>

#include "mmsb_internal.h"
#include "probes.h"

#if MMSB_PROBES
struct mmsb_span_registry mmsb_span_registry __attribute__((visibility("default"))) = {
	.magic = MMSB_SPAN_MAGIC,
	.version = MMSB_SPAN_VERSION,
	.block_size = sizeof(struct mmsb_span_thread),
	.kinds = MMSB_SPAN_KINDS,
};

__thread struct mmsb_span_thread *mmsb__span_self __attribute__((tls_model("initial-exec")))
MMSB_HIDDEN;

static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;
/* set when a block could not be made: this thread (and the next ones) do without */
static __thread bool no_block;
/*
 * Set while this thread writes its block, takes it or gives it back: a signal handler's call
 * into the library meanwhile keeps no span. Its begin would have written a frame over the one
 * being pushed (whose end then found another kind on top and left it open for good), taken a
 * second block, or given this one back twice; its end finds the guard too, so its spans are
 * neither kept nor closed. (A handler that leaves by siglongjmp() from inside leaves it set:
 * the thread keeps no spans after.) Initial-exec as every TLS variable on the call path.
 */
static __thread bool busy __attribute__((tls_model("initial-exec")));

/* The guard: false when a handler interrupted a holder; the compiler moves no access across. */
static inline bool guard_take(void)
{
	if (busy)
		return false;
	busy = true;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	return true;
}

static inline void guard_drop(void)
{
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	busy = false;
}

_Static_assert(MMSB_SPAN_KINDS <= MMSB_SPAN_KIND_MAX, "span kinds: at most MMSB_SPAN_KIND_MAX");
_Static_assert(MMSB_SPAN_NODES <= 256, "node ids are 8 bits in child[]");

static bool use_tsc;

/* The span clock (mmsb/span_abi.h): the TSC where it is invariant, else CLOCK_MONOTONIC. */
static inline uint64_t span_clock(void)
{
#if defined(__x86_64__)
	if (__builtin_expect(use_tsc, 1))
		return __rdtsc();
#endif
	return mmsb__now_ns(CLOCK_MONOTONIC);
}

/* Chosen at load, before any block: a reader finds the registry's clock set from the start. */
__attribute__((constructor)) static void clock_choose(void)
{
#if defined(__x86_64__)
	unsigned int a, b, c, d;

	/* CPUID 0x80000007 EDX bit 8: the TSC runs at one rate in every state, on every CPU */
	use_tsc = __get_cpuid(0x80000007, &a, &b, &c, &d) && (d & (1u << 8));
#endif
	mmsb_span_registry.clock = use_tsc ? MMSB_SPAN_CLOCK_TSC : MMSB_SPAN_CLOCK_MONOTONIC;
}

/* The owner's writes, between two seq increments a reader can see. */
static inline void write_begin(struct mmsb_span_thread *t)
{
	__atomic_store_n(&t->seq, t->seq + 1, __ATOMIC_RELAXED);
	/*
	 * The odd seq is seen before any store that follows (smp_wmb: a no-op on x86). TSan
	 * refuses thread fences; its readers are other processes, outside what it checks, and
	 * its targets keep stores in order: the compiler's barrier is what remains to keep.
	 */
#if defined(__SANITIZE_THREAD__)
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
#else
	__atomic_thread_fence(__ATOMIC_RELEASE);
#endif
}

static inline void write_end(struct mmsb_span_thread *t)
{
	__atomic_store_n(&t->seq, t->seq + 1, __ATOMIC_RELEASE);
}

/*
 * mmsb__spans_used counts the threads that hold a block. At its ceiling it stays there, and the
 * sites stay open for good, as they did before blocks were given back.
 */
static void used_add(int d)
{
	uint16_t v = __atomic_load_n(&mmsb__spans_used, __ATOMIC_RELAXED);

	do
		if (v == UINT16_MAX)
			return;
	while (!__atomic_compare_exchange_n(&mmsb__spans_used, &v, (uint16_t)(v + d), true,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED));
}

/* The block given up, for the next thread to take over; its figures stay in it. Guarded. */
static void block_put(struct mmsb_span_thread *t)
{
	mmsb__span_self = NULL;
	write_begin(t);
	t->depth = 0;
	t->overflow = 0;
	write_end(t);
	__atomic_store_n(&t->tid, 0, __ATOMIC_RELEASE);
	used_add(-1);
}

/*
 * A thread's exit hands its block to the next thread: the block the key held, unless a signal
 * handler's end gave it back between the key's clearing and this call.
 */
static void thread_exit(void *arg)
{
	if (!guard_take())
		return;
	if (arg == mmsb__span_self)
		block_put(arg);
	guard_drop();
}

/*
 * A forked child has one thread, the forking one, with a copy of every block: the others'
 * threads do not exist there, and its own block is its own under its new tid.
 */
static void fork_child(void)
{
	struct mmsb_span_thread *self = mmsb__span_self;

	for (struct mmsb_span_thread *t =
		     (void *)(uintptr_t)__atomic_load_n(&mmsb_span_registry.head, __ATOMIC_ACQUIRE);
	     t; t = (void *)(uintptr_t)t->next) {
		if (t == self) {
			t->tid = (int32_t)gettid();
			continue;
		}
		/* the threads that held these do not exist here: nor do their open spans */
		t->tid = 0;
		t->depth = 0;
		t->overflow = 0;
		t->seq += t->seq & 1;
	}
	if (mmsb__spans_used != UINT16_MAX)
		mmsb__spans_used = self ? 1 : 0;
	if (self) {
		self->owner_since_ns = mmsb__now_ns(CLOCK_MONOTONIC);
		self->owners++;
		__atomic_store_n(&self->last_tid, self->tid, __ATOMIC_RELAXED);
		MMSB_SPAN_REGISTER(self);
	}
}

static void exit_key_make(void)
{
	if (pthread_key_create(&exit_key, thread_exit))
		exit_key = (pthread_key_t)-1;
	else
		pthread_atfork(NULL, NULL, fork_child);
}

/* A free block taken over, the one this thread gave back last if MINE, else any; or NULL. */
static struct mmsb_span_thread *block_take(int32_t tid, bool mine)
{
	struct mmsb_span_thread *t;
	int32_t free_tid = 0;

	for (t = (void *)(uintptr_t)__atomic_load_n(&mmsb_span_registry.head, __ATOMIC_ACQUIRE); t;
	     t = (void *)(uintptr_t)t->next) {
		if ((!mine || __atomic_load_n(&t->last_tid, __ATOMIC_RELAXED) == tid) &&
		    __atomic_compare_exchange_n(&t->tid, &free_tid, tid, false, __ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED))
			break;
		free_tid = 0;
	}
	return t;
}

/*
 * A block for this thread: the one it gave back after the last trace, so that a reader finds a
 * thread in one block from trace to trace; else a free one; else a new one linked at the head.
 */
static struct mmsb_span_thread *block_get(void)
{
	struct mmsb_span_thread *t;
	int32_t tid = (int32_t)gettid();

	pthread_once(&exit_once, exit_key_make);
	if (exit_key == (pthread_key_t)-1)
		return NULL; /* its block could never be handed on: no spans for this thread */
	t = block_take(tid, true);
	if (!t)
		t = block_take(tid, false);
	if (!t) {
		uint64_t head;

		t = mmap(NULL, sizeof(*t), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			 0);
		if (t == MAP_FAILED)
			return NULL;
		t->magic = MMSB_SPAN_MAGIC;
		t->tid = tid;
		t->n_nodes = 1; /* the root */
		head = __atomic_load_n(&mmsb_span_registry.head, __ATOMIC_RELAXED);
		do
			t->next = head;
		while (!__atomic_compare_exchange_n(&mmsb_span_registry.head, &head,
						    (uint64_t)(uintptr_t)t, true, __ATOMIC_RELEASE,
						    __ATOMIC_RELAXED));
		__atomic_fetch_add(&mmsb_span_registry.blocks, 1, __ATOMIC_RELAXED);
	}
	write_begin(t);
	t->owner_since_ns = mmsb__now_ns(CLOCK_MONOTONIC);
	t->owners++;
	__atomic_store_n(&t->last_tid, tid, __ATOMIC_RELAXED); /* read by other threads' takes */
	prctl(PR_GET_NAME, t->comm);
	write_end(t);
	if (pthread_setspecific(exit_key, t)) {
		__atomic_store_n(&t->tid, 0, __ATOMIC_RELEASE);
		return NULL;
	}
	used_add(1);
	/* the one trap of a thread's block: a tracer's program learns tid -> block here */
	MMSB_SPAN_REGISTER(t);
	return t;
}

/* The node of KIND under PARENT, made on first use; 0 when the table is full. */
static uint16_t node_of(struct mmsb_span_thread *t, uint16_t parent, unsigned int kind)
{
	uint16_t n = t->child[parent][kind];
	struct mmsb_span_node *nd;

	if (n || t->n_nodes >= MMSB_SPAN_NODES)
		return n;
	n = (uint16_t)t->n_nodes;
	nd = &t->nodes[n];
	nd->parent = parent;
	nd->kind = (uint8_t)kind;
	t->child[parent][kind] = (uint8_t)n;
	t->n_nodes++;
	return n;
}

static void span_push(unsigned int kind, uint64_t key)
{
	struct mmsb_span_thread *t = mmsb__span_self;
	struct mmsb_span_frame *f;

	if (!t) {
		t = no_block ? NULL : block_get();
		if (!t) {
			no_block = true;
			return;
		}
		mmsb__span_self = t;
	}
	if (t->depth >= MMSB_SPAN_DEPTH) {
		t->overflow++;
		return;
	}
	write_begin(t);
	f = &t->stack[t->depth];
	f->node = node_of(t, t->depth ? t->stack[t->depth - 1].node : 0, kind);
	f->kind = (uint8_t)kind;
	f->key = key;
	f->child = 0;
	f->start = span_clock();
	t->depth++;
	write_end(t);
}

void mmsb__span_push(unsigned int kind, uint64_t key)
{
	if (!guard_take())
		return;
	span_push(kind, key);
	guard_drop();
}

/*
 * With no tracer keeping spans and none open on this thread, its block goes back: once every
 * thread that kept spans has ended one more (or exited), no thread holds one, and each site is
 * again a compare and a branch instead of its slow path. Taken again at the next kept begin.
 */
static void block_idle(struct mmsb_span_thread *t)
{
	if (!t->depth && !MMSB_SPAN_REGISTER_ENABLED()) {
		pthread_setspecific(exit_key, NULL);
		block_put(t);
	}
}

static void span_pop(struct mmsb_span_thread *t, unsigned int kind)
{
	struct mmsb_span_frame *f;
	struct mmsb_span_node *nd;
	uint64_t end, dur, self;

	if (t->overflow) {
		/* spans nest: the innermost open one is past the stack */
		t->overflow--;
		t->deep++;
		return;
	}
	/*
	 * An end whose begin was not kept (it came before a tracer turned the spans on) finds
	 * another kind on top, or nothing: it is not ours to close.
	 */
	if (!t->depth || t->stack[t->depth - 1].kind != kind)
		return;
	write_begin(t);
	/*
	 * The frame comes off right at the clock's read: a switch out after it is the parent's
	 * (an off-CPU program charges the innermost span it finds), and so is its time.
	 */
	end = span_clock();
	f = &t->stack[--t->depth];
	dur = end - f->start;
	self = dur > f->child ? dur - f->child : 0;
	if (f->node) {
		nd = &t->nodes[f->node];
		nd->count++;
		nd->total += dur;
		nd->self += self;
		if (dur > nd->max)
			nd->max = dur;
		nd->hist[mmsb_hist_slot(dur)]++;
	} else {
		t->lost++;
	}
	if (t->depth)
		t->stack[t->depth - 1].child += dur;
	write_end(t);
}

void mmsb__span_pop(struct mmsb_span_thread *t, unsigned int kind)
{
	if (!guard_take())
		return;
	/*
	 * The caller read t before the guard: a handler's end in between may have given the block
	 * back (and another thread taken it). Under the guard the thread's own pointer cannot
	 * change, so this is the block it holds, or it holds none.
	 */
	if (t == mmsb__span_self) {
		span_pop(t, kind);
		block_idle(t);
	}
	guard_drop();
}
#endif
