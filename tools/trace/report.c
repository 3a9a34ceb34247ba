// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * mmsb-trace record's report: one walk over the aggregated stacks feeds every output asked for
 * (folded, JSON, speedscope: out_*.c) and sums the kinds, then the table on stdout: per span
 * kind the calls, the inclusive and self time, the share of the wall time, p50/p99.
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>

#include "record.h"
#include "syms_helpers.h"

uint64_t hist_quantile(const uint64_t *hist, uint64_t count, double q)
{
	double want = q * (double)count, seen = 0;

	if (!count)
		return 0;
	for (uint32_t i = 0; i < HIST_SLOTS; i++) {
		double low, high;

		if (!hist[i] || seen + (double)hist[i] < want) {
			seen += (double)hist[i];
			continue;
		}
		/* within the slot, by rank: the slots are an eighth of a power of two wide */
		low = (double)mmsb_hist_slot_low(i);
		high = i + 1 < HIST_SLOTS ? (double)mmsb_hist_slot_low(i + 1) : 2 * low;
		return (uint64_t)(low + (high - low) * (want - seen) / (double)hist[i]);
	}
	return 0;
}

void fmt_dur(uint64_t ns, char *buf, size_t len)
{
	if (ns < 10000)
		snprintf(buf, len, "%" PRIu64 " ns", ns);
	else if (ns < 10000000)
		snprintf(buf, len, "%.1f us", (double)ns / 1e3);
	else if (ns < 10000000000ull)
		snprintf(buf, len, "%.1f ms", (double)ns / 1e6);
	else
		snprintf(buf, len, "%.2f s", (double)ns / 1e9);
}

/* A frame's location: the file, build id and offset of its address, and its source line. */
static struct json_object *frame_json(struct syms *sy, uint64_t ip, const struct sym_frame *f)
{
	struct json_object *l = json_object_new_object();
	struct frame_loc fl;

	if (syms_locate(sy, ip, &fl)) {
		json_object_object_add(l, "module", json_object_new_string(fl.module));
		json_object_object_add(l, "build_id",
				       fl.build_id[0] ? json_object_new_string(fl.build_id) : NULL);
		json_object_object_add(l, "offset", json_object_new_uint64(fl.offset));
	} else {
		json_object_object_add(l, "address", json_object_new_uint64(ip));
	}
	if (!f) {
		/* the walk left the code here: no frame of it, or past it, is real */
		json_object_object_add(l, "code", json_object_new_boolean(0));
		return l;
	}
	if (f->file) {
		json_object_object_add(l, "file", json_object_new_string(f->file));
		json_object_object_add(l, "line", json_object_new_int(f->line));
	}
	if (f->inlined)
		json_object_object_add(l, "inlined", json_object_new_boolean(1));
	return l;
}

/*
 * A public function's traced twin (lib/probes.h: fn__traced, which holds the probes and the span
 * around the function while a tracer is attached) is the library's instrumentation, not a frame
 * of the program: the twin is shown as the function it traces, and the function once, whether
 * the stack holds it inside the twin (the twin's call), outside it (a gate the compiler made a
 * call rather than a jump: -O0, the sanitizers), both or neither. Frames leaf first, k of them,
 * fr_ip beside them; returns the new count.
 */
static bool is_twin(const struct sym_frame *f)
{
	static const char sfx[] = "__traced";
	size_t len = strlen(f->name);

	return !strncmp(f->name, "mmsb_", 5) && len > sizeof(sfx) - 1 &&
	       !strcmp(f->name + len - (sizeof(sfx) - 1), sfx);
}

static int fold_twins(struct sym_frame *fr, uint64_t *fr_ip, int k, int *cut)
{
	char fn[sizeof(fr->name)] = "";
	int o = 0;

	for (int i = 0; i < k; i++) {
		bool twin = i != *cut && is_twin(&fr[i]), again;

		if (twin)
			fr[i].name[strlen(fr[i].name) - strlen("__traced")] = '\0';
		/* the function itself, just inside its twin or just outside it: shown once */
		again = i != *cut && !fr[i].inlined && o && o - 1 != *cut && !fr[o - 1].inlined &&
			!strcmp(fr[o - 1].name, fr[i].name) && (twin || !strcmp(fn, fr[i].name));
		snprintf(fn, sizeof(fn), "%s", twin ? fr[i].name : "");
		if (again)
			continue;
		if (i == *cut)
			*cut = o;
		fr[o] = fr[i];
		fr_ip[o++] = fr_ip[i];
	}
	return o;
}

/*
 * Frames of a stack id, root first, as names; returns the count. An address can give several:
 * the functions inlined at it are frames of their own, as perf shows them. The walk is cut at
 * the first address that is no code (a stack word read as a return address where a frame
 * pointer was missing): one "[unknown]" root stands for it and what lay past it. With locs,
 * each frame's file, build id, offset and line go there, so the record can be symbolised again
 * later, elsewhere. The leaf-most frames are kept when there are more than max. A public
 * function's traced twin is shown as the function (fold_twins()).
 */
int frames_of(int stacks_fd, int32_t id, struct syms *sy, char names[][256], int max,
	      struct json_object *locs)
{
	static struct sym_frame fr[MAX_STACK_FRAMES];
	static uint64_t fr_ip[MAX_STACK_FRAMES];
	uint64_t ips[MAX_STACK_FRAMES] = { 0 };
	int n = 0, k = 0, cut = -1;

	if (id < 0 || bpf_map_lookup_elem(stacks_fd, &id, ips))
		return 0;
	if (max > MAX_STACK_FRAMES)
		max = MAX_STACK_FRAMES;
	while (n < MAX_STACK_FRAMES && ips[n])
		n++;
	/* leaf first; ips[0] is where the probe hit, every other a return address */
	for (int i = 0; i < n && k < max; i++) {
		int got;

		if (!syms_is_code(sy, ips[i])) {
			cut = k;
			fr_ip[k++] = ips[i];
			break;
		}
		got = syms_frames(sy, ips[i], i > 0, &fr[k], max - k);
		for (int j = 0; j < got; j++)
			fr_ip[k + j] = ips[i];
		k += got;
	}
	k = fold_twins(fr, fr_ip, k, &cut);
	for (int i = k - 1, o = 0; i >= 0; i--, o++) {
		if (i == cut)
			snprintf(names[o], 256, "[unknown]");
		else
			snprintf(names[o], 256, "%s", fr[i].name);
		if (locs)
			json_object_array_add(locs,
					      frame_json(sy, fr_ip[i], i == cut ? NULL : &fr[i]));
	}
	return k;
}

static void kind_add(struct kind_total *t, const struct span_stats *v)
{
	t->count += v->count;
	t->total += v->total_ns;
	t->self += v->self_ns;
	if (!t->min || (v->min_ns && v->min_ns < t->min))
		t->min = v->min_ns;
	if (v->max_ns > t->max)
		t->max = v->max_ns;
	for (int i = 0; i < HIST_SLOTS; i++)
		t->hist[i] += v->hist[i];
	for (int i = 0; i < MAX_PMU; i++) {
		t->pmu_total[i] += v->pmu_total[i];
		t->pmu_self[i] += v->pmu_self[i];
	}
	t->pmu_count += v->pmu_count;
}

/*
 * Spans mode's folded stacks are its samples' (inproc_folded): stacks inside span chains. A run
 * shorter than the sampler's period has none; its folded file holds the exact self time per span
 * chain instead, as with -F 0.
 */
static bool folded_from_samples(const struct report *rp)
{
	return rp->ip && rp->o->sample_hz && rp->counters[CNT_SPAN_SMP];
}

/* Every aggregated stack once: summed per kind into rp->kt, and handed to each file output. */
static void walk_stacks(struct report *rp, struct speedscope *ss, struct json_object *jstacks)
{
	static char names[MAX_STACK_FRAMES][256];
	FILE *folded = rp->o->out[OUT_FOLDED].f;
	bool pprof = rp->o->out[OUT_PPROF].f;
	struct span_key key, next, *prev = NULL;

	while (!bpf_map_get_next_key(rp->stats_fd, prev, &next)) {
		struct stack_row row = { .key = &key, .names = names };
		struct span_stats v;
		char leaf[64];
		int kinds[13];

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(rp->stats_fd, &key, &v) || key.kind >= SPAN_KINDS)
			continue;
		kind_add(&rp->kt[key.kind], &v);
		rp->self_sum += v.self_ns;
		row.v = &v;
		/* the user frames' locations, for the JSON and the profile */
		row.locs = jstacks || pprof ? json_object_new_array() : NULL;
		row.nf = frames_of(rp->stacks_fd, key.stack_id, rp->syms, names,
				   MAX_STACK_FRAMES - 13, row.locs);
		/* then the spans around this one, outermost first */
		for (uint64_t ch = key.chain; ch && row.depth < 13; ch >>= 5)
			kinds[row.depth++] = (int)(ch & 31) - 1;
		for (int i = row.depth - 1; i >= 0; i--)
			snprintf(names[row.nf++], 256, "mmsb:%s", span_name(kinds[i]));
		/* the span kind is the leaf frame */
		snprintf(leaf, sizeof(leaf), "mmsb:%s", span_name((int)key.kind));
		row.leaf = leaf;
		if (ss)
			speedscope_stack(ss, &row);
		if (folded && !folded_from_samples(rp))
			folded_stack(folded, &row);
		if (pprof)
			pprof_stack(rp, &row);
		/* the JSON's stack takes row.locs */
		if (jstacks)
			json_object_array_add(jstacks, json_stack(rp->o, &row));
		else
			json_object_put(row.locs);
	}
}

/* The host's side, sampled: ffi_host, then the module, then the function. */
static void walk_host(struct report *rp, struct speedscope *ss)
{
	FILE *folded = rp->o->out[OUT_FOLDED].f;

	rp->period = rp->o->host_hz ? 1000000000ull / rp->o->host_hz : 0;
	rp->host_ns = rp->host.samples[HOST_FFI] * rp->period;
	for (int i = 0; i < rp->host.n; i++) {
		const struct host_frame *hf = &rp->host.f[i];
		uint64_t ns = hf->samples[HOST_FFI] * rp->period;

		if (!ns)
			continue;
		if (ss)
			speedscope_host(ss, hf, ns);
		if (folded)
			folded_host(folded, hf, ns);
	}
	rp->self_sum += rp->host_ns;
}

/* The table on stdout, unless a profile leaves it out (its files are still written). */
static void tprintf(const struct report *rp, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void tprintf(const struct report *rp, const char *fmt, ...)
{
	va_list ap;

	if (rp->o->no_table)
		return;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
}

static double share(uint64_t ns, uint64_t of)
{
	return of ? (double)ns / (double)of : 0;
}

uint64_t report_share_base(const struct report *rp)
{
	/* spans mode: the threads' times, so a process's shares add up to at most 100 % */
	return rp->inproc && rp->thread_ns ? rp->thread_ns : rp->wall_ns;
}

/* -a: a row per process, its threads summed; an exited one's figures are its last read's. */
static void table_procs(const struct report *rp)
{
	tprintf(rp, "\n%-8s %-16s %7s %11s %11s %7s %10s  %s\n", "PID", "COMM", "THREADS", "TIME",
		"IN SPANS", "SHARE", "SPANS", "CGROUP");
	for (int i = 0; i < rp->n_procs; i++) {
		const struct proc_row *r = &rp->procs[i];
		char tm[32], in[32];

		fmt_dur(r->time_ns, tm, sizeof(tm));
		fmt_dur(r->in_spans_ns, in, sizeof(in));
		tprintf(rp, "%-8d %-16s %7d %11s %11s %6.1f%% %10" PRIu64 "  %s%s\n", r->pid,
			r->comm, r->threads, tm, in, 100.0 * share(r->in_spans_ns, r->time_ns),
			r->spans, r->cgroup, r->exited ? " (exited)" : "");
	}
}

/* Spans mode's heading, kinds and threads: self time split on and off a CPU. */
static void table_spans(const struct report *rp)
{
	uint64_t spans = 0, base = report_share_base(rp), cost;
	char ov[32];

	for (int k = 0; k < SPAN_KINDS; k++)
		spans += rp->kt[k].count + rp->open_n[k];
	cost = spans * rp->span_cost_ns + rp->bpf_run_ns;
	fmt_dur(cost, ov, sizeof(ov));
	char who[64];

	if (rp->o->all || rp->n_procs > 1)
		snprintf(who, sizeof(who), "%d process%s", rp->n_procs,
			 rp->n_procs == 1 ? "" : "es");
	else
		snprintf(who, sizeof(who), "process %d", rp->pid);
	tprintf(rp,
		"mmsb-trace: window: %.2f s, %s, %d thread%s (%.2f s of thread time): "
		"spans mode, %" PRIu64 " spans, estimated cost %s (%.1f%% of the thread time: "
		"%" PRIu64 " ns a span, measured, and the kernel programs' run time)\n\n",
		(double)rp->wall_ns / 1e9, who, rp->n_threads, rp->n_threads == 1 ? "" : "s",
		(double)rp->thread_ns / 1e9, spans, ov, 100.0 * share(cost, base),
		rp->span_cost_ns);
	tprintf(rp, "%-16s %-12s %10s %11s %11s %7s %11s %11s %11s %9s %9s\n", "SPAN", "CATEGORY",
		"CALLS", "TOTAL", "SELF", "SELF%", "ON-CPU", "OFF-CPU", "RUNQ", "P50", "P99");
	for (int k = 0; k < SPAN_KINDS; k++) {
		const struct kind_total *t = &rp->kt[k];
		uint64_t off = rp->off_ns[k], wait = rp->wait_ns[k];
		uint64_t on = t->self > off + wait ? t->self - off - wait : 0;
		char tot[32], self[32], p50[32], p99[32], son[32], soff[32], swait[32];

		if (!t->count)
			continue;
		fmt_dur(t->total, tot, sizeof(tot));
		fmt_dur(t->self, self, sizeof(self));
		fmt_dur(on, son, sizeof(son));
		fmt_dur(off, soff, sizeof(soff));
		fmt_dur(wait, swait, sizeof(swait));
		fmt_dur(hist_quantile(t->hist, t->count, 0.5), p50, sizeof(p50));
		fmt_dur(hist_quantile(t->hist, t->count, 0.99), p99, sizeof(p99));
		tprintf(rp, "%-16s %-12s %10" PRIu64 " %11s %11s %6.1f%% %11s %11s %11s %9s %9s\n",
			span_name(k), span_category(k), t->count, tot, self,
			100.0 * share(t->self, base), son, soff, swait, p50, p99);
	}
	if (rp->o->all || rp->n_procs > 1)
		table_procs(rp);
	tprintf(rp, "\n%-8s %-16s %4s %11s %11s %7s %11s %11s %10s\n", "TID", "COMM", "OWN", "TIME",
		"IN SPANS", "SHARE", "OFF-CPU", "RUNQ", "SPANS");
	for (int i = 0; i < rp->n_threads; i++) {
		const struct thread_row *r = &rp->threads[i];
		char tm[32], in[32], off[32], wait[32];

		fmt_dur(r->time_ns, tm, sizeof(tm));
		fmt_dur(r->in_spans_ns, in, sizeof(in));
		fmt_dur(r->off_ns, off, sizeof(off));
		fmt_dur(r->wait_ns, wait, sizeof(wait));
		tprintf(rp, "%-8d %-16s %4u %11s %11s %6.1f%% %11s %11s %10" PRIu64 "\n", r->tid,
			r->comm, r->owners, tm, in, 100.0 * share(r->in_spans_ns, r->time_ns), off,
			wait, r->spans);
	}
}

/* The heading and a row per kind that ran, then ffi_host and the counters per call. */
static void table_kinds(const struct report *rp)
{
	const struct record_opts *o = rp->o;
	uint64_t hits = rp->counters[CNT_HITS], overhead = hits * o->hit_ns + rp->bpf_run_ns;
	char ov[32];

	/* spans mode that found no process to read still says so, not what probes would have hit */
	if (rp->inproc || o->mode == MODE_SPANS) {
		table_spans(rp);
		return;
	}
	fmt_dur(overhead, ov, sizeof(ov));
	/* the window is every kind's: shares are of it */
	tprintf(rp,
		"mmsb-trace: window: %.2f s from attach to stop, process %d: %" PRIu64
		" probe hits, estimated probe cost %s (%.1f%% of the window, at %" PRIu64
		" ns a hit (%s) and the programs' run time)\n\n",
		(double)rp->wall_ns / 1e9, rp->pid, hits, ov, 100.0 * share(overhead, rp->wall_ns),
		o->hit_ns, o->hit_src);
	tprintf(rp, "%-16s %-12s %10s %11s %11s %7s %9s %9s\n", "SPAN", "CATEGORY", "CALLS",
		"TOTAL", "SELF", "SELF%", "P50", "P99");
	for (int k = 0; k < SPAN_KINDS; k++) {
		const struct kind_total *t = &rp->kt[k];
		char tot[32], self[32], p50[32], p99[32];

		if (!t->count)
			continue;
		fmt_dur(t->total, tot, sizeof(tot));
		fmt_dur(t->self, self, sizeof(self));
		fmt_dur(hist_quantile(t->hist, t->count, 0.5), p50, sizeof(p50));
		fmt_dur(hist_quantile(t->hist, t->count, 0.99), p99, sizeof(p99));
		tprintf(rp, "%-16s %-12s %10" PRIu64 " %11s %11s %6.1f%% %9s %9s\n", span_name(k),
			span_category(k), t->count, tot, self, 100.0 * share(t->self, rp->wall_ns),
			p50, p99);
	}
	if (o->host_hz) {
		char self[32];

		fmt_dur(rp->host_ns, self, sizeof(self));
		tprintf(rp, "%-16s %-12s %10" PRIu64 " %11s %11s %6.1f%% %9s %9s\n", "ffi_host",
			"ffi host", rp->counters[CNT_CROSSINGS], self, self,
			100.0 * share(rp->host_ns, rp->wall_ns), "-", "-");
	}
	if (!o->n_pmu)
		return;
	/* the counters, per call of each kind (self: the nested spans' counts taken out) */
	tprintf(rp, "\n%-16s", "SPAN (self/call)");
	for (int i = 0; i < o->n_pmu; i++)
		tprintf(rp, " %22.22s", o->ev[i].name);
	tprintf(rp, "\n");
	for (int k = 0; k < SPAN_KINDS; k++) {
		const struct kind_total *t = &rp->kt[k];

		if (!t->count)
			continue;
		tprintf(rp, "%-16s", span_name(k));
		for (int i = 0; i < o->n_pmu; i++)
			tprintf(rp, " %22.2f",
				t->pmu_count ? (double)t->pmu_self[i] / (double)t->pmu_count : 0.0);
		tprintf(rp, "\n");
	}
}

/* The spans open at the stop, per kind: their count and time so far (not in the rows above). */
static void table_open(const struct report *rp)
{
	uint64_t n = rp->open_deep + rp->open_bad;
	const char *sep = "";

	for (int k = 0; k < SPAN_KINDS; k++)
		n += rp->open_n[k];
	tprintf(rp, "open at stop:");
	if (!n)
		tprintf(rp, " none");
	for (int k = 0; k < SPAN_KINDS; k++) {
		char d[32];

		if (!rp->open_n[k])
			continue;
		fmt_dur(rp->open_ns[k], d, sizeof(d));
		tprintf(rp, "%s %s %" PRIu64 " (%s so far)", sep, span_name(k), rp->open_n[k], d);
		sep = ",";
	}
	if (rp->open_deep)
		tprintf(rp, "%s past depth %d %" PRIu64, sep, MAX_SPAN_DEPTH, rp->open_deep);
	if (rp->open_bad)
		tprintf(rp, "; inconsistent stack entries %" PRIu64, rp->open_bad);
	tprintf(rp, "\n");
}

/* What the table's figures cover: the attributed share, what was lost, the host's samples. */
static void table_footer(const struct report *rp)
{
	const uint64_t *c = rp->counters;

	if (rp->inproc)
		tprintf(rp,
			"\nself time in spans: %.1f%% of the thread time; spans past depth %d %" PRIu64
			" (counted, not timed), not aggregated (node table full) %" PRIu64
			", blocks read while written %" PRIu64 "; %" PRIu64
			" stack samples (%" PRIu64 " unreadable)\n",
			100.0 * share(rp->self_sum, report_share_base(rp)), MMSB_SPAN_DEPTH,
			rp->span_deep, rp->span_lost, rp->span_torn, c[CNT_SPAN_SMP],
			c[CNT_SPAN_SMP_LOST]);
	else if (rp->window_ns)
		tprintf(rp,
			"\nself time attributed: %.1f%% of the window, %.1f%% of the span window "
			"(first begin to last end); "
			"overflow %" PRIu64 ", unmatched ends %" PRIu64 ", abandoned %" PRIu64
			", stack errors %" PRIu64 ", not aggregated (map full) %" PRIu64 "\n",
			100.0 * share(rp->self_sum, rp->wall_ns),
			100.0 * (double)rp->self_sum / (double)rp->window_ns, c[CNT_OVERFLOW],
			c[CNT_UNMATCHED], c[CNT_ABANDONED], c[CNT_STACK_ERR], c[CNT_STATS_FULL]);
	else
		tprintf(rp, "\nself time attributed: %.1f%% of the window (no span probes)\n",
			100.0 * share(rp->self_sum, rp->wall_ns));
	table_open(rp);
	if (rp->o->host_hz) {
		uint64_t classified = rp->host.samples[HOST_FFI] + rp->host.samples[HOST_OTHER];
		uint64_t unclassified =
			c[CNT_SMP_HOST] > classified ? c[CNT_SMP_HOST] - classified : 0;

		tprintf(rp,
			"host samples every %" PRIu64 " ns on each CPU: %" PRIu64
			" host with a crossing since the thread's previous sample (ffi_host, %.0f ns a "
			"crossing), %" PRIu64 " host without (its own work), %" PRIu64
			" in API calls, %" PRIu64 " kernel mode outside them, %" PRIu64
			" before the thread's first crossing, %" PRIu64 " unattributed\n",
			rp->period, rp->host.samples[HOST_FFI],
			c[CNT_CROSSINGS] ? (double)rp->host_ns / (double)c[CNT_CROSSINGS] : 0,
			rp->host.samples[HOST_OTHER], c[CNT_SMP_SPAN], c[CNT_SMP_KERNEL],
			c[CNT_SMP_EARLY], c[CNT_SMP_LOST] + unclassified);
	}
	if (rp->tl)
		tprintf(rp,
			"events: %" PRIu64 " streamed to %s, %" PRIu64
			" dropped (ring buffer full)%s\n",
			rp->tl->streamed, rp->o->events, c[CNT_EVENTS_DROPPED],
			rp->tl->not_kept ? "; the speedscope timeline holds the first 524288" : "");
}

/* One line on stderr when the traps' estimated cost passes 10 % of the window. */
static void overhead_warning(const struct report *rp)
{
	uint64_t overhead = rp->counters[CNT_HITS] * rp->o->hit_ns + rp->bpf_run_ns;

	if (rp->inproc || !rp->wall_ns || overhead * 10 <= rp->wall_ns)
		return;
	fflush(stdout);
	fprintf(stderr,
		"%s: the probes cost an estimated %.1f %% of the traced time on this host (%" PRIu64
		" ns a hit): figures include it\n",
		prog_name, 100.0 * share(overhead, rp->wall_ns), rp->o->hit_ns);
}

void report_sum_kinds(struct report *rp, int stats_fd)
{
	struct span_key key, next, *prev = NULL;
	struct span_stats v;

	while (!bpf_map_get_next_key(stats_fd, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(stats_fd, &key, &v) || key.kind >= SPAN_KINDS)
			continue;
		kind_add(&rp->kt[key.kind], &v);
		rp->self_sum += v.self_ns;
	}
}

void report_interval(struct report *iv, int stats_fd, uint64_t n)
{
	report_sum_kinds(iv, stats_fd);
	if (iv->o->top)
		tprintf(iv,
			"\033[H\033[2J"); /* home, clear: the terminal shows this interval only */
	if (iv->o->timestamps || iv->o->top) {
		time_t now = time(NULL);
		char ts[16];

		strftime(ts, sizeof(ts), "%H:%M:%S", localtime(&now));
		tprintf(iv, "%s ", ts);
	}
	tprintf(iv, "interval %" PRIu64 ": ", n);
	table_spans(iv);
	table_open(iv);
	tprintf(iv, "\n");
	fflush(stdout);
}

int report_write(struct report *rp)
{
	struct record_opts *o = rp->o;
	struct json_object *jstacks = o->json_out ? json_object_new_array() : NULL;
	struct speedscope ss, *ssp = o->speedscope ? &ss : NULL;
	int ret = EXIT_OK;

	if (ssp)
		speedscope_init(ssp);
	memset(rp->kt, 0, sizeof(rp->kt));
	rp->self_sum = 0;
	walk_stacks(rp, ssp, jstacks);
	walk_host(rp, ssp);
	if (folded_from_samples(rp) && o->out[OUT_FOLDED].f)
		inproc_folded(rp->ip, rp, &rp->maps, o->out[OUT_FOLDED].f,
			      1000000000ull / o->sample_hz);
	if (out_close(&o->out[OUT_FOLDED]))
		ret = EXIT_FAIL;
	table_kinds(rp);
	table_footer(rp);
	overhead_warning(rp);
	if (o->json_out && json_report_write(rp, jstacks))
		ret = EXIT_FAIL;
	if (o->out[OUT_PPROF].f && pprof_write(rp))
		ret = EXIT_FAIL;
	if (ssp) {
		if (speedscope_write(ssp, &o->out[OUT_SPEEDSCOPE], rp->tl))
			ret = EXIT_FAIL;
		speedscope_free(ssp);
	}
	return ret;
}

/* A JSON document into its output file, then the file into place. */
int write_json(struct out_file *o, struct json_object *j, int flags)
{
	const char *s = json_object_to_json_string_ext(j, flags | JSON_C_TO_STRING_NOSLASHESCAPE);

	if (!s || fputs(s, o->f) < 0 || fputc('\n', o->f) < 0) {
		p_err("%s: %s", o->path, s ? strerror(errno) : "cannot serialise the report");
		out_discard(o);
		return -1;
	}
	return out_close(o);
}
