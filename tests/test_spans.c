// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The in-process spans (lib/spans.c, mmsb/span_abi.h), from inside: this program is linked with
 * libmmsb.a, so it can raise the span__register semaphore itself, as a tracer's uprobe would,
 * and read the registry and its own block as an outside reader does. Exact counts, the span
 * tree's sums, the stack seen from inside a callback, blocks handed between threads, and ends
 * whose begins came before the spans were turned on.
 */
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mmsb/mmsb.h>
#include <mmsb/span_abi.h>

#include "harness.h"
#include "mmsb_probes.h"

/* the semaphore the build made (lib/gen-probes.sh): weak, so a PROBES=0 build links and skips */
extern unsigned short mmsb_span__register_semaphore __attribute__((weak));
extern struct mmsb_span_registry mmsb_span_registry __attribute__((weak));
/* how many threads hold a block (lib/probes.h): the site gate is closed while it is 0 */
extern uint16_t mmsb__spans_used __attribute__((weak));

#define N 200

static void spans_on(bool on)
{
	if (!&mmsb_span__register_semaphore || !&mmsb_span_registry)
		SKIP("libmmsb built with PROBES=0: no in-process spans");
	__atomic_store_n(&mmsb_span__register_semaphore, on ? 1 : 0, __ATOMIC_SEQ_CST);
}

static struct mmsb_span_thread *my_block(void)
{
	int32_t tid = (int32_t)gettid();

	for (struct mmsb_span_thread *t = (void *)(uintptr_t)mmsb_span_registry.head; t;
	     t = (void *)(uintptr_t)t->next)
		if (t->tid == tid)
			return t;
	return NULL;
}

/* The node of the chain KINDS (outermost first, n of them) in T, 0 when there is none. */
static uint16_t node_at(const struct mmsb_span_thread *t, const int *kinds, int n)
{
	uint16_t node = 0;

	for (int i = 0; i < n; i++) {
		node = t->child[node][kinds[i]];
		if (!node)
			return 0;
	}
	return node;
}

/* a recompute that copies its parent, reading it through the public API (a nested api span) */
static int copy_parent(struct mmsb_state *s, uint64_t id, uint8_t *out, size_t size, void *ctx)
{
	(void)ctx;
	return mmsb_page_read(s, id - 1, out, size, 0) < 0 ? -EIO : 0;
}

static struct mmsb_state *chain(uint64_t *a, mmsb_recompute_fn fn, void *ctx)
{
	struct mmsb_state *s = mmsb_state_open(NULL);
	uint64_t b;

	ASSERT_TRUE(s);
	ASSERT_EQ(mmsb_page_create(s, 64, MMSB_LOC_CPU, a), 0);
	ASSERT_EQ(mmsb_page_create(s, 64, MMSB_LOC_CPU, &b), 0);
	ASSERT_EQ(mmsb_edge_add(s, *a, b, MMSB_EDGE_DATA), 0);
	ASSERT_EQ(mmsb_page_set_recompute(s, b, fn, ctx), 0);
	return s;
}

static void updates(struct mmsb_state *s, uint64_t a, int n)
{
	uint8_t buf[64];

	for (int i = 1; i <= n; i++) {
		memset(buf, i, sizeof(buf));
		ASSERT_EQ(mmsb_page_update(s, a, buf, sizeof(buf)), 1);
	}
}

TEST(off_by_default_nothing_kept)
{
	struct mmsb_state *s;
	uint64_t a;

	spans_on(false);
	s = chain(&a, copy_parent, NULL);
	updates(s, a, 10);
	mmsb_state_close(s);
	ASSERT_EQ(mmsb_span_registry.head, 0);
	ASSERT_EQ(mmsb_span_registry.blocks, 0);
	ASSERT_EQ(mmsb_span_registry.magic, MMSB_SPAN_MAGIC);
	ASSERT_EQ(mmsb_span_registry.block_size, sizeof(struct mmsb_span_thread));
}

TEST(counts_exact_and_the_tree_adds_up)
{
	static const int upd[] = { MMSB_SPAN_KIND_API, MMSB_SPAN_KIND_UPDATE };
	static const int rec[] = { MMSB_SPAN_KIND_API, MMSB_SPAN_KIND_UPDATE,
				   MMSB_SPAN_KIND_PROPAGATE, MMSB_SPAN_KIND_RECOMPUTE };
	static const int read_in_rec[] = { MMSB_SPAN_KIND_API, MMSB_SPAN_KIND_UPDATE,
					   MMSB_SPAN_KIND_PROPAGATE, MMSB_SPAN_KIND_RECOMPUTE,
					   MMSB_SPAN_KIND_API };
	struct mmsb_span_thread *t;
	struct mmsb_state *s;
	uint64_t a;

	s = chain(&a, copy_parent, NULL);
	spans_on(true);
	updates(s, a, N);
	spans_on(false);
	t = my_block();
	ASSERT_TRUE(t);
	ASSERT_EQ(t->seq & 1, 0);
	ASSERT_EQ(t->depth, 0);
	ASSERT_EQ(t->lost, 0);
	ASSERT_EQ(t->nodes[node_at(t, upd, 1)].count, N); /* mmsb_page_update, outermost */
	ASSERT_EQ(t->nodes[node_at(t, upd, 2)].count, N);
	ASSERT_EQ(t->nodes[node_at(t, rec, 4)].count, N);
	ASSERT_EQ(t->nodes[node_at(t, read_in_rec, 5)].count, N); /* the callback's read */
	/* every node: its histogram holds its count; its total is its self plus its children's */
	for (uint32_t n = 1; n < t->n_nodes; n++) {
		const struct mmsb_span_node *nd = &t->nodes[n];
		uint64_t in_hist = 0, children = 0;

		for (int i = 0; i < MMSB_HIST_SLOTS; i++)
			in_hist += nd->hist[i];
		for (uint32_t c = 1; c < t->n_nodes; c++)
			if (t->nodes[c].parent == n)
				children += t->nodes[c].total;
		EXPECT_EQ(in_hist, nd->count);
		EXPECT_EQ(nd->total, nd->self + children);
		EXPECT_TRUE(nd->max <= nd->total);
		EXPECT_EQ(t->child[nd->parent][nd->kind], n);
	}
	mmsb_state_close(s);
}

/* what the callback saw of its own thread's open spans */
static uint32_t seen_depth;
static uint8_t seen_kinds[MMSB_SPAN_DEPTH];

static int look_inside(struct mmsb_state *s, uint64_t id, uint8_t *out, size_t size, void *ctx)
{
	const struct mmsb_span_thread *t = my_block();

	(void)ctx;
	if (t) {
		seen_depth = t->depth;
		for (uint32_t i = 0; i < t->depth && i < MMSB_SPAN_DEPTH; i++)
			seen_kinds[i] = t->stack[i].kind;
	}
	return copy_parent(s, id, out, size, NULL);
}

TEST(the_open_stack_as_a_reader_sees_it)
{
	struct mmsb_state *s;
	uint64_t a;

	s = chain(&a, look_inside, NULL);
	spans_on(true);
	updates(s, a, 1);
	spans_on(false);
	ASSERT_EQ(seen_depth, 4);
	EXPECT_EQ(seen_kinds[0], MMSB_SPAN_KIND_API);
	EXPECT_EQ(seen_kinds[1], MMSB_SPAN_KIND_UPDATE);
	EXPECT_EQ(seen_kinds[2], MMSB_SPAN_KIND_PROPAGATE);
	EXPECT_EQ(seen_kinds[3], MMSB_SPAN_KIND_RECOMPUTE);
	mmsb_state_close(s);
}

/*
 * The spans turned on (ctx &turn_on) or off (&turn_off) inside a callback. On: the ends of the
 * spans begun before must not close anything. Off: the spans begun before still end.
 */
static bool turn_on = true, turn_off;

static int switch_inside(struct mmsb_state *s, uint64_t id, uint8_t *out, size_t size, void *ctx)
{
	spans_on(*(const bool *)ctx);
	return copy_parent(s, id, out, size, NULL);
}

TEST(ends_of_unseen_begins_are_not_ours)
{
	static const int api[] = { MMSB_SPAN_KIND_API };
	struct mmsb_span_thread *t;
	struct mmsb_state *s;
	uint64_t a;

	spans_on(false);
	s = chain(&a, switch_inside, &turn_on);
	updates(s, a, 1);
	spans_on(false);
	t = my_block();
	ASSERT_TRUE(t);
	/*
	 * The read's api span, outermost: nothing around it was seen to begin. What began after
	 * it (the recompute's delta) is kept too; what began before is not, and nothing is left
	 * open.
	 */
	ASSERT_EQ(t->depth, 0);
	ASSERT_EQ(t->nodes[node_at(t, api, 1)].count, 1);
	for (uint32_t n = 1; n < t->n_nodes; n++) {
		EXPECT_NE(t->nodes[n].kind, MMSB_SPAN_KIND_UPDATE);
		EXPECT_NE(t->nodes[n].kind, MMSB_SPAN_KIND_PROPAGATE);
		EXPECT_NE(t->nodes[n].kind, MMSB_SPAN_KIND_RECOMPUTE);
	}
	mmsb_state_close(s);
}

static void *one_update(void *arg)
{
	struct mmsb_state *s = arg;
	uint8_t buf[64] = { 7 };
	uint64_t id;

	if (mmsb_page_create(s, sizeof(buf), MMSB_LOC_CPU, &id))
		return (void *)1;
	return (void *)(intptr_t)(mmsb_page_update(s, id, buf, sizeof(buf)) != 1);
}

TEST(an_exited_threads_block_goes_to_the_next)
{
	struct mmsb_state *s = mmsb_state_open(NULL);
	struct mmsb_span_thread *t;
	pthread_t th;
	void *ret;

	ASSERT_TRUE(s);
	spans_on(true);
	for (int i = 0; i < 3; i++) {
		ASSERT_EQ(pthread_create(&th, NULL, one_update, s), 0);
		ASSERT_EQ(pthread_join(th, &ret), 0);
		ASSERT_TRUE(ret == NULL);
	}
	spans_on(false);
	/* one thread at a time: one block, three owners, the figures of all three */
	ASSERT_EQ(mmsb_span_registry.blocks, 1);
	t = (void *)(uintptr_t)mmsb_span_registry.head;
	ASSERT_TRUE(t);
	EXPECT_EQ(t->tid, 0);
	EXPECT_EQ(t->owners, 3);
	EXPECT_NE(t->last_tid, 0);
	EXPECT_EQ(t->depth, 0);
	for (uint32_t n = 1; n < t->n_nodes; n++)
		if (t->nodes[n].kind == MMSB_SPAN_KIND_UPDATE)
			EXPECT_EQ(t->nodes[n].count, 3);
	mmsb_state_close(s);
}

/*
 * After a trace the sites close again: a thread gives its block back at its first end with no
 * tracer keeping spans and none of its spans open, and once no thread holds one, a site inside
 * the library is a compare and a branch again instead of its slow path for good. The block is
 * taken again at the next kept begin, by whichever thread makes it.
 */
TEST(the_sites_close_again_after_a_trace)
{
	static const int api[] = { MMSB_SPAN_KIND_API };
	struct mmsb_span_thread *t;
	struct mmsb_state *s;
	pthread_t th;
	void *ret;
	uint8_t buf[64];
	uint64_t a;

	spans_on(false);
	if (!&mmsb__spans_used)
		SKIP("libmmsb built with PROBES=0: no in-process spans");
	s = chain(&a, switch_inside, &turn_off);
	ASSERT_EQ(mmsb__spans_used, 0);
	/* four spans open when the tracer leaves, in the callback: each still ends, then none */
	spans_on(true);
	memset(buf, 1, sizeof(buf));
	ASSERT_EQ(mmsb_page_update(s, a, buf, sizeof(buf)), 1);
	ASSERT_FALSE(my_block());
	ASSERT_EQ(mmsb__spans_used, 0);
	t = (void *)(uintptr_t)mmsb_span_registry.head;
	ASSERT_TRUE(t);
	EXPECT_EQ(t->tid, 0);
	EXPECT_EQ(t->depth, 0);
	EXPECT_EQ(t->nodes[node_at(t, api, 1)].count, 1);

	/* held from the next kept begin; another thread's comes and goes with it */
	ASSERT_EQ(mmsb_page_set_recompute(s, a + 1, copy_parent, NULL), 0);
	spans_on(true);
	memset(buf, 2, sizeof(buf));
	ASSERT_EQ(mmsb_page_update(s, a, buf, sizeof(buf)), 1);
	ASSERT_TRUE(my_block());
	ASSERT_EQ(mmsb__spans_used, 1);
	ASSERT_EQ(pthread_create(&th, NULL, one_update, s), 0);
	ASSERT_EQ(pthread_join(th, &ret), 0);
	ASSERT_TRUE(ret == NULL);
	ASSERT_EQ(mmsb__spans_used, 1);
	/* the tracer gone, this thread holds its block until one more of its spans ends */
	spans_on(false);
	ASSERT_EQ(mmsb__spans_used, 1);
	memset(buf, 3, sizeof(buf));
	ASSERT_EQ(mmsb_page_update(s, a, buf, sizeof(buf)), 1);
	ASSERT_FALSE(my_block());
	ASSERT_EQ(mmsb__spans_used, 0);
	mmsb_state_close(s);
}

/*
 * Every kind but the GPU's, begun and ended with the spans on: nothing may stay open. A site
 * that fires its end probe under its own check (the engine batch's) and forgets the span's end
 * would leave a frame on the stack for good, under which every later span would nest.
 */
TEST(every_begin_has_its_end)
{
	static const int kinds[] = {
		MMSB_SPAN_KIND_API,
		MMSB_SPAN_KIND_STATE_OPEN,
		MMSB_SPAN_KIND_STATE_CLOSE,
		MMSB_SPAN_KIND_PAGE_ALLOC,
		MMSB_SPAN_KIND_PAGE_FREE,
		MMSB_SPAN_KIND_UPDATE,
		MMSB_SPAN_KIND_DELTA_APPLY,
		MMSB_SPAN_KIND_ROUTE_BATCH,
		MMSB_SPAN_KIND_PROPAGATE,
		MMSB_SPAN_KIND_RECOMPUTE,
		MMSB_SPAN_KIND_LOG_APPEND,
		MMSB_SPAN_KIND_LOG_SYNC,
		MMSB_SPAN_KIND_CHECKPOINT_WRITE,
		MMSB_SPAN_KIND_CHECKPOINT_LOAD,
		MMSB_SPAN_KIND_REPLAY,
		MMSB_SPAN_KIND_ENGINE_BATCH,
		MMSB_SPAN_KIND_TICK,
	};
	uint8_t buf[64] = { 0 }, mask[64];
	struct mmsb_state *s, *t, *r;
	struct mmsb_delta *d[16];
	struct mmsb_span_thread *b;
	struct mmsb_engine *e;
	uint64_t id;

	spans_on(true);
	MMSB_OPTS(mmsb_state_opts, o, .log_path = th_path("s.tlog"), .log_mode = MMSB_LOG_TRUNCATE,
		  .durability = MMSB_DURABLE_BATCH);
	s = mmsb_state_open(&o);
	ASSERT_TRUE(s);
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(mmsb_page_create(s, sizeof(buf), MMSB_LOC_CPU, &id), 0);
	ASSERT_EQ(mmsb_edge_add(s, 1, 2, MMSB_EDGE_DATA), 0);
	ASSERT_EQ(mmsb_page_set_recompute(s, 2, copy_parent, NULL), 0);
	memset(buf, 1, sizeof(buf));
	ASSERT_EQ(mmsb_page_update(s, 1, buf, sizeof(buf)), 1);
	memset(mask, 1, sizeof(mask));
	for (int i = 0; i < 16; i++) {
		memset(buf, 2 + i, sizeof(buf));
		d[i] = mmsb_delta_new(1 + (uint64_t)(i % 2) * 2, mask, 16, buf, 16, 0);
		ASSERT_TRUE(d[i]);
	}
	ASSERT_EQ(mmsb_route_batch(s, d, 4), 0);
	e = mmsb_engine_new(s, NULL);
	ASSERT_TRUE(e);
	ASSERT_EQ(mmsb_engine_apply(e, d + 4, 6, NULL), 0);
	ASSERT_EQ(mmsb_tick(e, d + 10, 6, NULL), 0);
	mmsb_engine_free(e);
	for (int i = 0; i < 16; i++)
		mmsb_delta_free(d[i]);
	ASSERT_EQ(mmsb_page_free(s, 3), 0);
	ASSERT_EQ(mmsb_checkpoint_write(s, th_path("s.ckpt")), 0);
	t = mmsb_state_open(NULL);
	ASSERT_TRUE(t);
	ASSERT_EQ(mmsb_checkpoint_load(t, th_path("s.ckpt")), 0);
	r = mmsb_replay(th_path("s.tlog"), NULL);
	ASSERT_TRUE(r);
	mmsb_state_close(r);
	mmsb_state_close(t);
	mmsb_state_close(s);
	spans_on(false);
	b = my_block();
	ASSERT_TRUE(b);
	EXPECT_EQ(b->depth, 0);
	EXPECT_EQ(b->overflow, 0);
	EXPECT_EQ(b->lost, 0);
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		uint64_t n = 0;

		for (uint32_t i = 1; i < b->n_nodes; i++)
			if (b->nodes[i].kind == kinds[k])
				n += b->nodes[i].count;
		if (!n)
			TH_LOG("kind %d never closed", kinds[k]);
		EXPECT_GT(n, 0);
	}
}

#if MMSB_PROBES
#include "probes.h" /* the per-thread state behind the public functions' gate */

struct toggled {
	int stop;		/* set once the switches have flipped enough */
	pthread_barrier_t done; /* the switches are off: read what is left */
	uint32_t depth[2], host_depth[2], reenter[2];
	uint64_t crossings[2]; /* each worker's, as it goes: twins ran */
};

struct toggle_arg {
	struct toggled *tg;
	int me;
};

static void *toggle_worker(void *p)
{
	struct toggle_arg *arg = p;
	struct toggled *tg = arg->tg;
	struct mmsb_span_thread *b;
	struct mmsb_state *s;
	uint64_t a;

	s = chain(&a, copy_parent, NULL);
	while (!__atomic_load_n(&tg->stop, __ATOMIC_SEQ_CST)) {
		updates(s, a, 50);
		__atomic_store_n(&tg->crossings[arg->me], mmsb__host.crossings, __ATOMIC_SEQ_CST);
	}
	mmsb_state_close(s);
	pthread_barrier_wait(&tg->done);
	b = my_block();
	tg->depth[arg->me] = b ? b->depth : 0;
	tg->host_depth[arg->me] = mmsb__host.depth;
	tg->reenter[arg->me] = mmsb__api_reenter;
	return NULL;
}

/*
 * A tracer comes and goes while calls are open: the three switches of the public functions'
 * gate (the API probe, the crossing record, the spans) flipped at random from another thread
 * while two threads make public calls, one nested in each recompute. Each call's twin undoes
 * what its own entry did: once the switches are off, no span is open, no crossing counted as
 * open, and no twin's turn is left behind. The crossings counted show that twins ran.
 */
TEST(switches_flipped_mid_call_leave_nothing_open)
{
	unsigned short *sw[] = { &mmsb_span__register_semaphore, &mmsb_host__register_semaphore,
				 &mmsb_api__entry_semaphore };
	struct toggled tg = { .stop = 0 };
	struct toggle_arg arg[2] = { { &tg, 0 }, { &tg, 1 } };
	uint64_t x = 88172645463325252ull, flips = 0;
	pthread_t th[2];

	spans_on(false);
#ifdef TH_TSAN
	/* the kernel writes the semaphores behind the library's back: a race TSan would report */
	SKIP("the switches flip while the library reads them, by design: not under TSan");
#endif
	ASSERT_EQ(pthread_barrier_init(&tg.done, NULL, 3), 0);
	for (int i = 0; i < 2; i++)
		ASSERT_EQ(pthread_create(&th[i], NULL, toggle_worker, &arg[i]), 0);
	/*
	 * A random switch on or off after a random spin, while the calls go on: 20,000 times,
	 * and until each worker has made calls through its twins (a busy machine may start them
	 * late), for 20 s at most.
	 */
	for (time_t t_end = time(NULL) + 20;
	     flips < 20000 || __atomic_load_n(&tg.crossings[0], __ATOMIC_SEQ_CST) < 100 ||
	     __atomic_load_n(&tg.crossings[1], __ATOMIC_SEQ_CST) < 100;
	     flips++) {
		if (time(NULL) > t_end)
			break;
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		__atomic_store_n(sw[x % 3], (x >> 8) & 1, __ATOMIC_SEQ_CST);
		for (volatile unsigned int spin = (x >> 16) & 1023; spin; spin--)
			;
	}
	for (int i = 0; i < 3; i++)
		__atomic_store_n(sw[i], 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&tg.stop, 1, __ATOMIC_SEQ_CST);
	pthread_barrier_wait(&tg.done);
	for (int i = 0; i < 2; i++)
		ASSERT_EQ(pthread_join(th[i], NULL), 0);
	pthread_barrier_destroy(&tg.done);
	TH_LOG("%llu flips; crossings while traced %llu and %llu", (unsigned long long)flips,
	       (unsigned long long)tg.crossings[0], (unsigned long long)tg.crossings[1]);
	for (int i = 0; i < 2; i++) {
		EXPECT_GE(tg.crossings[i], 100);
		EXPECT_EQ(tg.depth[i], 0);
		EXPECT_EQ(tg.host_depth[i], 0);
		EXPECT_EQ(tg.reenter[i], 0);
	}
}

/* a thread that keeps spans, sees the tracer leave, gives its block back with its next end */
static void *update_then_leave(void *arg)
{
	if (one_update(arg) || mmsb__spans_used != 1)
		return (void *)1;
	__atomic_store_n(&mmsb_span__register_semaphore, 0, __ATOMIC_SEQ_CST);
	if (one_update(arg))
		return (void *)1;
	return (void *)(intptr_t)(mmsb__spans_used != 0);
}

/*
 * From trace to trace a thread takes back the block it gave back, not the first free one: a
 * reader then finds each thread in one block, not one thread's figures spread over several.
 */
TEST(a_thread_takes_back_its_own_block)
{
	struct mmsb_span_thread *mine;
	struct mmsb_state *s;
	uint8_t buf[64];
	pthread_t th;
	void *ret;
	uint64_t a;

	spans_on(false);
	s = chain(&a, copy_parent, NULL);
	spans_on(true);
	memset(buf, 1, sizeof(buf));
	ASSERT_EQ(mmsb_page_update(s, a, buf, sizeof(buf)), 1);
	ASSERT_TRUE(mine = my_block());
	/* another thread's block, made while this one is held: the registry's head */
	ASSERT_EQ(pthread_create(&th, NULL, one_update, s), 0);
	ASSERT_EQ(pthread_join(th, &ret), 0);
	ASSERT_TRUE(ret == NULL);
	ASSERT_EQ(mmsb_span_registry.blocks, 2);
	ASSERT_TRUE((void *)(uintptr_t)mmsb_span_registry.head != mine);
	spans_on(false);
	memset(buf, 2, sizeof(buf));
	ASSERT_EQ(mmsb_page_update(s, a, buf, sizeof(buf)), 1);
	ASSERT_FALSE(my_block());
	spans_on(true);
	memset(buf, 3, sizeof(buf));
	ASSERT_EQ(mmsb_page_update(s, a, buf, sizeof(buf)), 1);
	ASSERT_TRUE(my_block() == mine);
	spans_on(false);
	mmsb_state_close(s);
}

static pthread_barrier_t taken;

/* takes the free block, with the spans on, and holds it until told */
static void *take_and_hold(void *arg)
{
	if (one_update(arg))
		return (void *)1;
	pthread_barrier_wait(&taken);
	pthread_barrier_wait(&taken);
	return NULL;
}

/*
 * An end reads its thread's block before the pop takes the guard: a signal handler's end in
 * between can give that block back, and another thread take it. The interrupted end, with the
 * block it read, must then leave it alone (it gave it back twice: a count of 65535, the sites
 * open for good; or it reset the other thread's block). Each interleaving made by hand.
 */
TEST(an_end_interrupted_before_its_pop_leaves_the_block_alone)
{
	struct mmsb_span_thread *stale, *b;
	struct mmsb_state *s = mmsb_state_open(NULL);
	uint8_t buf[64] = { 0 };
	pthread_t th;
	void *ret;
	uint64_t id;

	ASSERT_TRUE(s);
	ASSERT_EQ(mmsb_page_create(s, sizeof(buf), MMSB_LOC_CPU, &id), 0);
	for (int other = 0; other < 2; other++) {
		/* held at depth 0, the tracer gone: the next end gives it back */
		spans_on(true);
		buf[0]++;
		ASSERT_EQ(mmsb_page_update(s, id, buf, sizeof(buf)), 1);
		spans_on(false);
		ASSERT_TRUE(stale = mmsb__span_self); /* what mmsb__span_end read */
		/* the handler's call */
		buf[0]++;
		ASSERT_EQ(mmsb_page_update(s, id, buf, sizeof(buf)), 1);
		ASSERT_TRUE(mmsb__span_self == NULL);
		ASSERT_EQ(mmsb__spans_used, 0);
		if (other) {
			ASSERT_EQ(pthread_barrier_init(&taken, NULL, 2), 0);
			spans_on(true);
			ASSERT_EQ(pthread_create(&th, NULL, take_and_hold, s), 0);
			pthread_barrier_wait(&taken);
			spans_on(false);
		}
		/* the interrupted end goes on */
		mmsb__span_pop(stale, MMSB_SPAN_KIND_API);
		ASSERT_EQ(mmsb__spans_used, other);
		if (other) {
			b = (void *)(uintptr_t)mmsb_span_registry.head;
			ASSERT_TRUE(b == stale);
			EXPECT_NE(b->tid, 0);
			pthread_barrier_wait(&taken);
			ASSERT_EQ(pthread_join(th, &ret), 0);
			ASSERT_TRUE(ret == NULL);
			pthread_barrier_destroy(&taken);
			ASSERT_EQ(mmsb__spans_used, 0);
		}
	}
	mmsb_state_close(s);
}

/* A block given back is not given back again when its thread exits (the count would wrap). */
TEST(a_block_given_back_is_not_given_back_at_exit)
{
	struct mmsb_state *s = mmsb_state_open(NULL);
	pthread_t th;
	void *ret;

	ASSERT_TRUE(s);
	spans_on(true);
	ASSERT_EQ(mmsb__spans_used, 0);
	ASSERT_EQ(pthread_create(&th, NULL, update_then_leave, s), 0);
	ASSERT_EQ(pthread_join(th, &ret), 0);
	ASSERT_TRUE(ret == NULL);
	ASSERT_EQ(mmsb__spans_used, 0);
	ASSERT_EQ(mmsb_span_registry.blocks, 1);
	mmsb_state_close(s);
}

static pthread_barrier_t at_fork;

/* a recompute that holds its thread, four spans deep, while the test forks */
static int wait_for_fork(struct mmsb_state *s, uint64_t id, uint8_t *out, size_t size, void *ctx)
{
	(void)ctx;
	pthread_barrier_wait(&at_fork); /* inside */
	pthread_barrier_wait(&at_fork); /* forked */
	return copy_parent(s, id, out, size, NULL);
}

static void *update_once(void *arg)
{
	uint64_t *a = arg;
	struct mmsb_state *s = (struct mmsb_state *)(uintptr_t)a[1];
	uint8_t buf[64] = { 5 };

	return (void *)(intptr_t)(mmsb_page_update(s, a[0], buf, sizeof(buf)) != 1);
}

/*
 * A forked child has none of the other threads: nor their blocks' open spans. A child thread
 * that takes such a block starts it empty, and gives it back; the count is the child's own.
 */
TEST(a_forked_child_starts_from_its_own_blocks)
{
	struct mmsb_state *s;
	uint64_t arg[2];
	pthread_t th;
	int status;
	void *ret;
	pid_t pid;

#ifdef TH_TSAN
	SKIP("fork with another thread running: not under TSan");
#endif
	spans_on(false);
	s = chain(&arg[0], wait_for_fork, NULL);
	arg[1] = (uint64_t)(uintptr_t)s;
	ASSERT_EQ(pthread_barrier_init(&at_fork, NULL, 2), 0);
	spans_on(true);
	ASSERT_EQ(pthread_create(&th, NULL, update_once, arg), 0);
	pthread_barrier_wait(&at_fork);
	pid = fork();
	if (!pid) {
		/*
		 * The worker's block, four deep in the parent, is free and empty here (a state of
		 * the child's own: the worker held s's lock at the fork).
		 */
		struct mmsb_state *c;
		uint8_t buf[64];
		uint64_t id;
		int bad = mmsb__spans_used != 0;

		c = chain(&id, copy_parent, NULL);
		memset(buf, 6, sizeof(buf));
		bad |= mmsb_page_update(c, id, buf, sizeof(buf)) != 1;
		bad |= mmsb__spans_used != 1 || mmsb_span_registry.blocks != 1;
		__atomic_store_n(&mmsb_span__register_semaphore, 0, __ATOMIC_SEQ_CST);
		memset(buf, 7, sizeof(buf));
		bad |= mmsb_page_update(c, id, buf, sizeof(buf)) != 1;
		bad |= mmsb__spans_used != 0;
		_exit(bad);
	}
	ASSERT_TRUE(pid > 0);
	pthread_barrier_wait(&at_fork);
	ASSERT_EQ(pthread_join(th, &ret), 0);
	ASSERT_TRUE(ret == NULL);
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(WEXITSTATUS(status), 0);
	pthread_barrier_destroy(&at_fork);
	spans_on(false);
	mmsb_state_close(s);
}
#endif
