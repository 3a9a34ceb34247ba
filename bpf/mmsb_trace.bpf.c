// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Span attribution for libmmsb's USDT probes. Each thread keeps a stack of its open spans; an end
 * closes the innermost open span of its kind, so nesting (an api span around an update around a
 * wave around recomputes) gives every span its inclusive time and its self time (inclusive minus
 * the spans directly inside it). Aggregated per (kind, the kinds of the spans around it, user
 * stack): count, total, self, min, max and a log2 histogram. The user stack is taken at the
 * outermost span's begin and inherited inside it, unless stack_mode asks for every begin. Optionally each closed span is also streamed through a ring
 * buffer. Whatever cannot be attributed is counted in counters[], never silently lost.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#include "mmsb_trace.h"

/* set before load */
const volatile __u32 targ_tgid = 0;    /* 0: every process */
const volatile __u32 kinds_mask = ~0u; /* bit per span kind */
const volatile __u32 stack_mode = STACKS_OUTER;
const volatile bool with_events = false;
const volatile __u32 n_pmu = 0;	  /* counters per span, at most MAX_PMU */
const volatile __u32 nr_cpus = 1; /* pmu_events index: event * nr_cpus + cpu */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32); /* tid */
	__type(value, struct span_stack);
} stacks_open SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct span_stack);
} scratch SEC(".maps");

/* allocated as keys come: a value is 2.9 KiB (the histogram), 16384 preallocated would be 47 MiB */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct span_key);
	__type(value, struct span_stats);
} span_stats SEC(".maps");

/* a zeroed span_stats to insert new keys from: too big for the BPF stack */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct span_stats);
} zero_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 16384);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, MAX_STACK_FRAMES * sizeof(__u64));
} user_stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(max_entries, MAX_PMU *MAX_CPUS);
	__type(key, __u32);
	__type(value, __u32);
} pmu_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct host_key);
	__type(value, __u64); /* samples */
} host_samples SEC(".maps");

/* per host thread: where its crossing record is, and its crossings at its previous sample */
struct host_thread {
	__u64 rec;
	__u64 crossings;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32); /* tid */
	__type(value, struct host_thread);
} host_threads SEC(".maps");

/* the default mode: each thread's span block (mmsb:span__register), by tid */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u64);
} span_blocks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct switched_out);
} offcpu_start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct span_tid_node);
	__type(value, struct offcpu_ns);
} span_offcpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct sample_key);
	__type(value, __u64);
} span_samples SEC(".maps");

__u64 counters[CNT_MAX] = {};
/* the traced window: the first span's begin and the last end seen (ktime ns) */
__u64 first_begin_ns = 0, last_end_ns = 0;
/*
 * The window's switch, set by mmsb-trace: WINDOW_BEFORE until every probe is attached, then
 * WINDOW_OPEN, then WINDOW_STOPPED at the instant the window ends, before anything is detached.
 * Every recording program reads it first: nothing is recorded outside the window.
 */
volatile __u32 window_state = WINDOW_BEFORE;
/* mmsb-trace itself, measuring a hit's cost before the window (WINDOW_CAL): cal_begin/cal_end */
volatile __u32 cal_tgid = 0;

static __always_inline bool recording(bool cal)
{
	return window_state == (cal ? WINDOW_CAL : WINDOW_OPEN);
}

/*
 * Counter i on this CPU, scaled to the time it was enabled (multiplexing): false when the
 * counter cannot be read here. Per-CPU counters count whatever runs on the CPU; a span's delta is
 * its thread's as long as the thread stays on the CPU (a migration drops the span's counts).
 */
static __always_inline bool pmu_read(__u32 i, __u32 cpu, __u64 *val)
{
	struct bpf_perf_event_value v = {};
	__u64 idx = (__u64)i * nr_cpus + cpu;

	if (bpf_perf_event_read_value(&pmu_events, idx, &v, sizeof(v)))
		return false;
	*val = v.running && v.running < v.enabled ? v.counter * v.enabled / v.running : v.counter;
	return true;
}

static __always_inline bool wanted(__u32 kind, bool cal)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (cal ? tgid != cal_tgid : targ_tgid && tgid != targ_tgid)
		return false;
	return kind < SPAN_KINDS && (cal || (kinds_mask & (1u << kind)));
}

static __always_inline void host_add(__u64 ip, __u32 cls)
{
	struct host_key k = { .ip = ip, .cls = cls };
	__u64 zero = 0, *v = bpf_map_lookup_elem(&host_samples, &k);

	if (!v) {
		bpf_map_update_elem(&host_samples, &k, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&host_samples, &k);
	}
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		__sync_fetch_and_add(&counters[CNT_SMP_LOST], 1);
}

static __always_inline int begin(struct pt_regs *ctx, __u32 kind, bool cal)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid(), zero = 0;
	struct span_stack *st;

	if (!recording(cal) || !wanted(kind, cal))
		return 0;
	__sync_fetch_and_add(&counters[CNT_HITS], 1);
	st = bpf_map_lookup_elem(&stacks_open, &tid);
	if (!st) {
		/* a thread's first span: start from a zeroed stack */
		struct span_stack *z = bpf_map_lookup_elem(&scratch, &zero);

		if (!z)
			return 0;
		z->depth = 0;
		z->overflow = 0;
		bpf_map_update_elem(&stacks_open, &tid, z, BPF_ANY);
		st = bpf_map_lookup_elem(&stacks_open, &tid);
		if (!st)
			return 0;
	}
	if (st->depth >= MAX_SPAN_DEPTH || st->overflow) {
		st->overflow++;
		__sync_fetch_and_add(&counters[CNT_OVERFLOW], 1);
		return 0;
	}
	__u32 d = st->depth;

	if (d >= MAX_SPAN_DEPTH)
		return 0;
	st->s[d].kind = kind;
	st->s[d].child_ns = 0;
	st->s[d].stack_id = -1;
	st->s[d].chain = 0;
	st->s[d].cpu = -1;
	if (d > 0) {
		struct open_span *parent = &st->s[(d - 1) & (MAX_SPAN_DEPTH - 1)];

		st->s[d].chain = (parent->chain << 5) | (parent->kind + 1);
		st->s[d].stack_id = parent->stack_id;
	}
	/* a stack walk is most of a hit's cost: by default only the outermost span pays it */
	if (stack_mode == STACKS_ALL || (stack_mode == STACKS_OUTER && d == 0)) {
		long id = bpf_get_stackid(ctx, &user_stacks, BPF_F_USER_STACK);

		if (id < 0)
			__sync_fetch_and_add(&counters[CNT_STACK_ERR], 1);
		st->s[d].stack_id = id < 0 ? -1 : (__s32)id;
	}
	st->depth = d + 1;
	if (n_pmu) {
		__u32 cpu = bpf_get_smp_processor_id();
		bool ok = cpu < nr_cpus;

		for (__u32 i = 0; i < MAX_PMU && ok; i++) {
			st->s[d].pmu_child[i] = 0;
			if (i < n_pmu)
				ok = pmu_read(i, cpu, &st->s[d].pmu_start[i]);
		}
		st->s[d].cpu = ok ? (__s32)cpu : -1;
	}
	/* last, so the span does not include the stack walk */
	st->s[d].start_ns = bpf_ktime_get_ns();
	if (!first_begin_ns)
		__sync_val_compare_and_swap(&first_begin_ns, 0, st->s[d].start_ns);
	return 0;
}

static __always_inline void record(struct open_span *o, __u64 dur, __u64 self, __u32 depth,
				   __u32 tid, const __u64 *pmu_delta, bool pmu_ok, bool cal)
{
	struct span_key key = { .kind = o->kind, .stack_id = o->stack_id, .chain = o->chain };
	struct span_stats *v = bpf_map_lookup_elem(&span_stats, &key);

	if (!v) {
		__u32 zero = 0;
		struct span_stats *init = bpf_map_lookup_elem(&zero_stats, &zero);

		if (!init)
			return;
		if (bpf_map_update_elem(&span_stats, &key, init, BPF_NOEXIST) &&
		    !bpf_map_lookup_elem(&span_stats, &key)) {
			__sync_fetch_and_add(&counters[CNT_STATS_FULL], 1);
			return;
		}
		v = bpf_map_lookup_elem(&span_stats, &key);
		if (!v)
			return;
	}
	__sync_fetch_and_add(&v->count, 1);
	__sync_fetch_and_add(&v->total_ns, dur);
	__sync_fetch_and_add(&v->self_ns, self);
	/* min/max race only between threads of one key: good enough for a report */
	if (!v->min_ns || dur < v->min_ns)
		v->min_ns = dur;
	if (dur > v->max_ns)
		v->max_ns = dur;
	__u32 slot = mmsb_hist_slot(dur);

	if (slot < HIST_SLOTS)
		__sync_fetch_and_add(&v->hist[slot], 1);
	if (pmu_ok) {
		for (__u32 i = 0; i < MAX_PMU; i++) {
			__u64 self_c =
				pmu_delta[i] > o->pmu_child[i] ? pmu_delta[i] - o->pmu_child[i] : 0;

			__sync_fetch_and_add(&v->pmu_total[i], pmu_delta[i]);
			__sync_fetch_and_add(&v->pmu_self[i], self_c);
		}
		__sync_fetch_and_add(&v->pmu_count, 1);
	}
	if (with_events && !cal) {
		struct span_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

		if (!e) {
			__sync_fetch_and_add(&counters[CNT_EVENTS_DROPPED], 1);
			return;
		}
		e->start_ns = o->start_ns;
		e->dur_ns = dur;
		e->self_ns = self;
		e->tid = tid;
		e->kind = o->kind;
		e->depth = depth;
		e->stack_id = o->stack_id;
		bpf_ringbuf_submit(e, 0);
	}
}

static __always_inline int end(struct pt_regs *ctx, __u32 kind, __u64 now, bool cal)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct span_stack *st;
	int found = -1;

	if (!recording(cal) || !wanted(kind, cal))
		return 0;
	__sync_fetch_and_add(&counters[CNT_HITS], 1);
	st = bpf_map_lookup_elem(&stacks_open, &tid);
	if (!st) {
		__sync_fetch_and_add(&counters[CNT_UNMATCHED], 1);
		return 0;
	}
	if (st->overflow) {
		st->overflow--;
		return 0;
	}
	/* the innermost open span of this kind */
	for (int i = MAX_SPAN_DEPTH - 1; i >= 0; i--) {
		if ((__u32)i >= st->depth)
			continue;
		if (st->s[i].kind == kind) {
			found = i;
			break;
		}
	}
	if (found < 0) {
		__sync_fetch_and_add(&counters[CNT_UNMATCHED], 1);
		return 0;
	}
	/* spans opened inside it and never closed are dropped, counted */
	if ((__u32)found + 1 < st->depth)
		__sync_fetch_and_add(&counters[CNT_ABANDONED], st->depth - (__u32)found - 1);
	struct open_span *o = &st->s[found & (MAX_SPAN_DEPTH - 1)];
	__u64 dur = now - o->start_ns;

	/* an FFI call that never entered libmmsb is someone else's: counted, not a span */
	if (kind == SPAN_HOST && !o->child_ns) {
		__sync_fetch_and_add(&counters[CNT_HOST_OTHER], 1);
		st->depth = (__u32)found;
		return 0;
	}
	__u64 self = dur > o->child_ns ? dur - o->child_ns : 0;
	__u64 delta[MAX_PMU] = {};
	bool pmu_ok = false;

	if (n_pmu) {
		__u32 cpu = bpf_get_smp_processor_id();

		/* counts are only the span's own while it stayed on the CPU it began on */
		pmu_ok = o->cpu >= 0 && (__u32)o->cpu == cpu;
		for (__u32 i = 0; i < MAX_PMU && pmu_ok; i++) {
			__u64 now_c = 0;

			if (i >= n_pmu)
				break;
			pmu_ok = pmu_read(i, cpu, &now_c);
			delta[i] = now_c > o->pmu_start[i] ? now_c - o->pmu_start[i] : 0;
		}
		if (!pmu_ok)
			__sync_fetch_and_add(&counters[CNT_PMU_SKIPPED], 1);
	}
	record(o, dur, self, (__u32)found, tid, delta, pmu_ok, cal);
	/* racy between threads by a few ns at most: a report's window, not a clock */
	if (now > last_end_ns)
		last_end_ns = now;
	if (found > 0) {
		struct open_span *parent = &st->s[(found - 1) & (MAX_SPAN_DEPTH - 1)];

		parent->child_ns += dur;
		for (__u32 i = 0; i < MAX_PMU && pmu_ok; i++)
			parent->pmu_child[i] += delta[i];
	}
	st->depth = (__u32)found;
	return 0;
}

SEC("usdt")
int span_begin(struct pt_regs *ctx)
{
	return begin(ctx, (__u32)bpf_usdt_cookie(ctx), false);
}

SEC("usdt")
int span_end(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_ns();

	return end(ctx, (__u32)bpf_usdt_cookie(ctx), now, false);
}

/*
 * The host side of the boundary: libffi's ffi_call, which a ctypes (or cffi) host calls for every
 * foreign call. Only calls that reach libmmsb become spans (see end()); the rest are counted.
 */
SEC("uprobe")
int ffi_begin(struct pt_regs *ctx)
{
	return begin(ctx, SPAN_HOST, false);
}

SEC("uretprobe")
int ffi_end(struct pt_regs *ctx)
{
	return end(ctx, SPAN_HOST, bpf_ktime_get_ns(), false);
}

/*
 * mmsb-trace's own measure of a hit's cost (record, before the window opens): the api pair's
 * call sites in one function of its own libmmsb, as plain uprobes, recording into these maps
 * while window_state is WINDOW_CAL (mmsb-trace empties them after): the same trap and the same
 * work as span_begin/span_end with the run's settings, less the event stream, on a site or two
 * instead of the 196 of every probed public function (each takes tens of ms to remove).
 */
SEC("uprobe")
int cal_begin(struct pt_regs *ctx)
{
	return begin(ctx, SPAN_API, true);
}

SEC("uprobe")
int cal_end(struct pt_regs *ctx)
{
	return end(ctx, SPAN_API, bpf_ktime_get_ns(), true);
}

/*
 * A thread's crossing record (lib/probes.h), announced at its first crossing and every 4096th:
 * the first announcement this tracer sees starts the thread's count from the crossing that made
 * it (the ones before it are a time before this trace); a later one of the same record is
 * nothing new.
 */
SEC("usdt")
int host_register(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct mmsb_host_rec_abi rec;
	struct host_thread t = {}, *old;
	__u32 tid = (__u32)id;
	long addr;

	if (!recording(false) || (targ_tgid && (id >> 32) != targ_tgid))
		return 0;
	if (bpf_usdt_arg(ctx, 0, &addr) || bpf_probe_read_user(&rec, sizeof(rec), (void *)addr))
		return 0;
	old = bpf_map_lookup_elem(&host_threads, &tid);
	if (old && old->rec == (__u64)addr)
		return 0;
	t.rec = (__u64)addr;
	t.crossings = rec.crossings ? rec.crossings - 1 : 0;
	bpf_map_update_elem(&host_threads, &tid, &t, BPF_ANY);
	return 0;
}

/*
 * The host's side of the boundary, sampled (--host-sample): a CPU clock on every CPU. A sample
 * of a target thread reads the thread's crossing record (it runs on the thread's CPU, in its
 * context, so the record reads as the thread last wrote it): inside an API call it is the
 * library's time; outside, in user mode, the host's, by address, counted as the boundary's
 * (HOST_FFI) when the thread crossed since its previous sample and as its own work otherwise.
 */
SEC("perf_event")
int host_sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid(), ip, before;
	__u32 tid = (__u32)id;
	struct mmsb_host_rec_abi rec;
	struct host_thread *t;

	if (!recording(false) || (id >> 32) != targ_tgid)
		return 0;
	t = bpf_map_lookup_elem(&host_threads, &tid);
	if (!t) {
		__sync_fetch_and_add(&counters[CNT_SMP_EARLY], 1);
		return 0;
	}
	if (bpf_probe_read_user(&rec, sizeof(rec), (const void *)t->rec)) {
		__sync_fetch_and_add(&counters[CNT_SMP_LOST], 1);
		return 0;
	}
	/* crossings since this thread's previous sample; the last sample's count is the total's */
	before = t->crossings;
	t->crossings = rec.crossings;
	if (rec.crossings > before)
		__sync_fetch_and_add(&counters[CNT_CROSSINGS], rec.crossings - before);
	if (rec.depth) {
		__sync_fetch_and_add(&counters[CNT_SMP_SPAN], 1);
		return 0;
	}
	/* kernel text is in the upper half: the host's system calls and faults */
	ip = PT_REGS_IP(&ctx->regs);
	if (ip >> 63) {
		__sync_fetch_and_add(&counters[CNT_SMP_KERNEL], 1);
		return 0;
	}
	__sync_fetch_and_add(&counters[CNT_SMP_HOST], 1);
	host_add(ip, rec.crossings != before ? HOST_FFI : HOST_OTHER);
	return 0;
}

/*
 * ---- the default mode: the target keeps its spans, the kernel adds what only it sees ----
 *
 * A thread's block is announced on the thread, once, by mmsb:span__register (attaching here is
 * what turns the spans on); mmsb-trace adds the blocks that were made before it came.
 */
SEC("usdt")
int span_register(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid(), blk;
	__u32 tid = (__u32)id;
	long addr;

	if ((targ_tgid && (id >> 32) != targ_tgid) || bpf_usdt_arg(ctx, 0, &addr))
		return 0;
	blk = (__u64)addr;
	bpf_map_update_elem(&span_blocks, &tid, &blk, BPF_ANY);
	return 0;
}

/*
 * The innermost open span of the current thread, from its block (the thread's own memory: it
 * is current): its node, 0 outside every span. false when the block cannot be read.
 */
static __always_inline bool current_node(__u32 tid, __u32 *node)
{
	const struct mmsb_span_thread *t;
	__u64 *blk = bpf_map_lookup_elem(&span_blocks, &tid);
	__u32 depth;
	__u16 n;

	*node = 0;
	if (!blk)
		return true; /* never opened a span */
	t = (const void *)*blk;
	if (bpf_probe_read_user(&depth, sizeof(depth), &t->depth))
		return false;
	if (!depth || depth > MMSB_SPAN_DEPTH)
		return true;
	if (bpf_probe_read_user(&n, sizeof(n), &t->stack[(depth - 1) & (MMSB_SPAN_DEPTH - 1)].node))
		return false;
	*node = n;
	return true;
}

/*
 * Off-CPU time, charged to the span the thread left the CPU in: at the switch out, the
 * thread's innermost span and why it left (asleep or preempted); at its switch back in, the
 * time between goes to that span. What is still out at the window's end mmsb-trace charges up
 * to the end (offcpu_start).
 */
SEC("tp_btf/sched_switch")
int BPF_PROG(span_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u64 now = bpf_ktime_get_ns();
	struct switched_out *so;
	__u32 tid;

	if (!recording(false))
		return 0;
	/* every process (-a): the threads with a block, which current_node() looks up */
	if (!targ_tgid || prev->tgid == targ_tgid) {
		struct switched_out o = { .ts = now };

		tid = prev->pid;
		if (!current_node(tid, &o.node)) {
			__sync_fetch_and_add(&counters[CNT_SPAN_SWITCH_LOST], 1);
		} else if (o.node) {
			o.blocked = !preempt && prev->__state != 0;
			bpf_map_update_elem(&offcpu_start, &tid, &o, BPF_ANY);
		}
	}
	if (!targ_tgid || next->tgid == targ_tgid) {
		tid = next->pid;
		so = bpf_map_lookup_elem(&offcpu_start, &tid);
		if (so) {
			struct span_tid_node k = { .tid = tid, .node = so->node };
			struct offcpu_ns *v = bpf_map_lookup_elem(&span_offcpu, &k);
			__u64 d = now - so->ts;

			if (!v) {
				struct offcpu_ns z = {};

				bpf_map_update_elem(&span_offcpu, &k, &z, BPF_NOEXIST);
				v = bpf_map_lookup_elem(&span_offcpu, &k);
			}
			if (v && so->blocked)
				__sync_fetch_and_add(&v->blocked, d);
			else if (v)
				__sync_fetch_and_add(&v->waiting, d);
			bpf_map_delete_elem(&offcpu_start, &tid);
		}
	}
	return 0;
}

/*
 * The stacks: a CPU clock on every CPU samples the target's threads with their innermost span,
 * user stack and kernel stack. Counts and times come from the blocks, exactly; these say where
 * inside a span the CPU went.
 */
SEC("perf_event")
int span_sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid(), one = 1, *v;
	struct sample_key k = {};

	if (!recording(false) || (targ_tgid && (id >> 32) != targ_tgid))
		return 0;
	k.tid = (__u32)id;
	/* every process (-a): only the threads that keep spans */
	if (!targ_tgid && !bpf_map_lookup_elem(&span_blocks, &k.tid))
		return 0;
	if (!current_node(k.tid, &k.node)) {
		__sync_fetch_and_add(&counters[CNT_SPAN_SMP_LOST], 1);
		return 0;
	}
	k.ustack = bpf_get_stackid(ctx, &user_stacks, BPF_F_USER_STACK);
	k.kstack = bpf_get_stackid(ctx, &user_stacks, 0);
	__sync_fetch_and_add(&counters[CNT_SPAN_SMP], 1);
	v = bpf_map_lookup_elem(&span_samples, &k);
	if (v)
		__sync_fetch_and_add(v, 1);
	else if (bpf_map_update_elem(&span_samples, &k, &one, BPF_NOEXIST))
		__sync_fetch_and_add(&counters[CNT_SPAN_SMP_LOST], 1);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
