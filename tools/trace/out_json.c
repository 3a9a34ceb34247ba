// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * record --json: everything the run found, as one JSON document (docs/formats.md): the target,
 * the counters, the kinds with their histograms, every stack with its frames' locations.
 */
#include <json-c/json.h>
#include <mmsb/mmsb.h>
#include <string.h>

#include "mmsb_version.h"
#include "record.h"

/* Counters of a span kind or stack as JSON: per event total, self, self per call; IPC if known. */
static struct json_object *pmu_json(const struct record_opts *ro, const uint64_t *total,
				    const uint64_t *self, uint64_t count)
{
	struct json_object *o = json_object_new_object();
	int cyc = -1, ins = -1;

	json_object_object_add(o, "spans_counted", json_object_new_uint64(count));
	for (int i = 0; i < ro->n_pmu; i++) {
		struct json_object *e = json_object_new_object();
		const char *c = ro->ev[i].canonical;

		if (total)
			json_object_object_add(e, "total", json_object_new_uint64(total[i]));
		json_object_object_add(e, "self", json_object_new_uint64(self[i]));
		json_object_object_add(
			e, "self_per_call",
			json_object_new_double(count ? (double)self[i] / (double)count : 0));
		json_object_object_add(o, ro->ev[i].name, e);
		if (strcasestr(c, "::CYCLES") || strcasestr(c, "CPU_CLK_UNHALTED"))
			cyc = i;
		if (strcasestr(c, "::INSTRUCTIONS") || strcasestr(c, "INST_RETIRED"))
			ins = i;
	}
	if (cyc >= 0 && ins >= 0 && self[cyc])
		json_object_object_add(
			o, "ipc", json_object_new_double((double)self[ins] / (double)self[cyc]));
	return o;
}

struct json_object *json_stack(const struct record_opts *o, const struct stack_row *row)
{
	struct json_object *js = json_object_new_object(), *jf = json_object_new_array();
	const struct span_stats *v = row->v;

	for (int i = 0; i < row->nf; i++)
		json_object_array_add(jf, json_object_new_string(row->names[i]));
	json_object_object_add(js, "kind", json_object_new_string(span_name((int)row->key->kind)));
	json_object_object_add(js, "stack_id", json_object_new_int(row->key->stack_id));
	json_object_object_add(js, "depth", json_object_new_int(row->depth));
	json_object_object_add(js, "frames", jf);
	json_object_object_add(js, "locations", row->locs);
	json_object_object_add(js, "calls", json_object_new_uint64(v->count));
	json_object_object_add(js, "total_ns", json_object_new_uint64(v->total_ns));
	json_object_object_add(js, "self_ns", json_object_new_uint64(v->self_ns));
	if (o->n_pmu)
		json_object_object_add(
			js, "pmu", pmu_json(o, NULL, (const uint64_t *)v->pmu_self, v->pmu_count));
	return js;
}

static struct json_object *kind_json(const struct report *rp, int k)
{
	const struct kind_total *t = &rp->kt[k];
	struct json_object *jk = json_object_new_object(), *jh = json_object_new_array(), *jo;

	json_object_object_add(jk, "kind", json_object_new_string(span_name(k)));
	json_object_object_add(jk, "category", json_object_new_string(span_category(k)));
	json_object_object_add(jk, "calls", json_object_new_uint64(t->count));
	json_object_object_add(jk, "total_ns", json_object_new_uint64(t->total));
	json_object_object_add(jk, "self_ns", json_object_new_uint64(t->self));
	json_object_object_add(jk, "min_ns", json_object_new_uint64(t->min));
	json_object_object_add(jk, "max_ns", json_object_new_uint64(t->max));
	json_object_object_add(jk, "p50_ns",
			       json_object_new_uint64(hist_quantile(t->hist, t->count, 0.5)));
	json_object_object_add(jk, "p99_ns",
			       json_object_new_uint64(hist_quantile(t->hist, t->count, 0.99)));
	json_object_object_add(
		jk, "self_share",
		json_object_new_double(report_share_base(rp) ?
					       (double)t->self / (double)report_share_base(rp) :
					       0));
	if (rp->inproc) {
		uint64_t off = rp->off_ns[k], wait = rp->wait_ns[k];

		/* the self time apart: off a CPU asleep, waiting for one, and on one */
		json_object_object_add(jk, "off_cpu_ns", json_object_new_uint64(off));
		json_object_object_add(jk, "runq_ns", json_object_new_uint64(wait));
		json_object_object_add(
			jk, "on_cpu_ns",
			json_object_new_uint64(t->self > off + wait ? t->self - off - wait : 0));
	}
	/* the non-empty slots, [lowest ns, count]: a slot holds up to the next one's lowest */
	for (uint32_t i = 0; i < HIST_SLOTS; i++) {
		struct json_object *b;

		if (!t->hist[i])
			continue;
		b = json_object_new_array();
		json_object_array_add(b, json_object_new_uint64(mmsb_hist_slot_low(i)));
		json_object_array_add(b, json_object_new_uint64(t->hist[i]));
		json_object_array_add(jh, b);
	}
	json_object_object_add(jk, "hist", jh);
	/* begun in the window, still open at its stop: not in calls nor the times above */
	jo = json_object_new_object();
	json_object_object_add(jo, "count", json_object_new_uint64(rp->open_n[k]));
	json_object_object_add(jo, "ns_so_far", json_object_new_uint64(rp->open_ns[k]));
	json_object_object_add(jk, "open", jo);
	if (rp->o->n_pmu)
		json_object_object_add(jk, "pmu",
				       pmu_json(rp->o, t->pmu_total, t->pmu_self, t->pmu_count));
	return jk;
}

/* Every kind that ran, then ffi_host when the host was sampled. */
static struct json_object *kinds_json(const struct report *rp)
{
	struct json_object *jkinds = json_object_new_array(), *jk;

	for (int k = 0; k < SPAN_KINDS; k++)
		if (rp->kt[k].count || rp->open_n[k])
			json_object_array_add(jkinds, kind_json(rp, k));
	if (!rp->o->host_hz)
		return jkinds;
	jk = json_object_new_object();
	json_object_object_add(jk, "kind", json_object_new_string("ffi_host"));
	json_object_object_add(jk, "category", json_object_new_string("ffi host"));
	json_object_object_add(jk, "sampled", json_object_new_boolean(true));
	json_object_object_add(jk, "calls", json_object_new_uint64(rp->counters[CNT_CROSSINGS]));
	json_object_object_add(jk, "total_ns", json_object_new_uint64(rp->host_ns));
	json_object_object_add(jk, "self_ns", json_object_new_uint64(rp->host_ns));
	json_object_object_add(
		jk, "self_share",
		json_object_new_double(rp->wall_ns ? (double)rp->host_ns / (double)rp->wall_ns :
						     0));
	json_object_array_add(jkinds, jk);
	return jkinds;
}

/* --host-sample's figures and frames */
static struct json_object *host_json(const struct report *rp)
{
	static const char *const cls[] = { [HOST_FFI] = "ffi_host", [HOST_OTHER] = "host_own" };
	const uint64_t *c = rp->counters, period = rp->period;
	struct json_object *o = json_object_new_object(), *fr = json_object_new_array();

	json_object_object_add(o, "hz", json_object_new_uint64(rp->o->host_hz));
	json_object_object_add(o, "period_ns", json_object_new_uint64(period));
	json_object_object_add(o, "crossings", json_object_new_uint64(c[CNT_CROSSINGS]));
	json_object_object_add(o, "ffi_host_ns",
			       json_object_new_uint64(rp->host.samples[HOST_FFI] * period));
	json_object_object_add(
		o, "ffi_host_ns_per_crossing",
		json_object_new_double(c[CNT_CROSSINGS] ?
					       (double)(rp->host.samples[HOST_FFI] * period) /
						       (double)c[CNT_CROSSINGS] :
					       0));
	for (int k = HOST_FFI; k <= HOST_OTHER; k++)
		json_object_object_add(o, k == HOST_FFI ? "samples_ffi_host" : "samples_host_own",
				       json_object_new_uint64(rp->host.samples[k]));
	json_object_object_add(o, "samples_between_crossings",
			       json_object_new_uint64(c[CNT_SMP_HOST]));
	json_object_object_add(o, "samples_in_spans", json_object_new_uint64(c[CNT_SMP_SPAN]));
	json_object_object_add(o, "samples_kernel", json_object_new_uint64(c[CNT_SMP_KERNEL]));
	json_object_object_add(o, "samples_before_first_crossing",
			       json_object_new_uint64(c[CNT_SMP_EARLY]));
	json_object_object_add(o, "samples_lost", json_object_new_uint64(c[CNT_SMP_LOST]));
	for (int i = 0; i < rp->host.n; i++) {
		for (int k = HOST_FFI; k <= HOST_OTHER; k++) {
			const struct host_frame *hf = &rp->host.f[i];
			struct json_object *f;

			if (!hf->samples[k])
				continue;
			f = json_object_new_object();
			json_object_object_add(f, "class", json_object_new_string(cls[k]));
			json_object_object_add(f, "module", json_object_new_string(hf->module));
			json_object_object_add(f, "function", json_object_new_string(hf->symbol));
			json_object_object_add(f, "samples",
					       json_object_new_uint64(hf->samples[k]));
			json_object_object_add(f, "ns",
					       json_object_new_uint64(hf->samples[k] * period));
			json_object_array_add(fr, f);
		}
	}
	json_object_object_add(o, "frames", fr);
	return o;
}

static struct json_object *target_json(const struct report *rp)
{
	struct json_object *tgt = json_object_new_object();

	json_object_object_add(tgt, "pid", json_object_new_int(rp->pid));
	json_object_object_add(tgt, "library", json_object_new_string(rp->lib));
	if (rp->cmd) {
		struct json_object *a = json_object_new_array();

		for (char **p = rp->cmd; *p; p++)
			json_object_array_add(a, json_object_new_string(*p));
		json_object_object_add(tgt, "command", a);
		json_object_object_add(tgt, "untraced_processes",
				       json_object_new_int(rp->untraced));
	}
	return tgt;
}

static struct json_object *counters_json(const struct report *rp)
{
	static const char *const cnt_names[] = {
		"overflow", "unmatched",  "abandoned",	 "stack_errors", "events_dropped",
		"hits",	    "stats_full", "pmu_skipped", "host_other",
	};
	struct json_object *c = json_object_new_object();

	for (int i = 0; i <= CNT_HOST_OTHER; i++)
		json_object_object_add(c, cnt_names[i], json_object_new_uint64(rp->counters[i]));
	uint64_t open = 0;

	for (int k = 0; k < SPAN_KINDS; k++)
		open += rp->open_n[k];
	json_object_object_add(c, "crossings", json_object_new_uint64(rp->counters[CNT_CROSSINGS]));
	/* spans open at the stop, those past the stack's depth, and stack entries that make none */
	json_object_object_add(c, "open", json_object_new_uint64(open));
	json_object_object_add(c, "open_past_depth", json_object_new_uint64(rp->open_deep));
	json_object_object_add(c, "open_inconsistent", json_object_new_uint64(rp->open_bad));
	return c;
}

static struct json_object *events_json(const struct report *rp)
{
	struct json_object *ev = json_object_new_object();

	json_object_object_add(ev, "file", json_object_new_string(rp->o->events));
	json_object_object_add(ev, "streamed", json_object_new_uint64(rp->tl->streamed));
	json_object_object_add(ev, "dropped",
			       json_object_new_uint64(rp->counters[CNT_EVENTS_DROPPED]));
	json_object_object_add(ev, "timeline_not_kept", json_object_new_uint64(rp->tl->not_kept));
	return ev;
}

/* Spans mode: each thread's time in the window and its spans' share of it. */
static struct json_object *threads_json(const struct report *rp)
{
	struct json_object *a = json_object_new_array();

	for (int i = 0; i < rp->n_threads; i++) {
		const struct thread_row *r = &rp->threads[i];
		struct json_object *t = json_object_new_object();

		if (r->pid)
			json_object_object_add(t, "pid", json_object_new_int(r->pid));
		json_object_object_add(t, "tid", json_object_new_int(r->tid));
		json_object_object_add(t, "comm", json_object_new_string(r->comm));
		json_object_object_add(t, "owners", json_object_new_int((int)r->owners));
		json_object_object_add(t, "time_ns", json_object_new_uint64(r->time_ns));
		json_object_object_add(t, "in_spans_ns", json_object_new_uint64(r->in_spans_ns));
		json_object_object_add(t, "off_cpu_ns", json_object_new_uint64(r->off_ns));
		json_object_object_add(t, "runq_ns", json_object_new_uint64(r->wait_ns));
		json_object_object_add(t, "spans", json_object_new_uint64(r->spans));
		json_object_object_add(
			t, "share",
			json_object_new_double(
				r->time_ns ? (double)r->in_spans_ns / (double)r->time_ns : 0));
		json_object_array_add(a, t);
	}
	return a;
}

/* -a: each process's threads summed, with its name and cgroup. */
static struct json_object *procs_json(const struct report *rp)
{
	struct json_object *a = json_object_new_array();

	for (int i = 0; i < rp->n_procs; i++) {
		const struct proc_row *r = &rp->procs[i];
		struct json_object *p = json_object_new_object();

		json_object_object_add(p, "pid", json_object_new_int(r->pid));
		json_object_object_add(p, "comm", json_object_new_string(r->comm));
		json_object_object_add(p, "cgroup", json_object_new_string(r->cgroup));
		json_object_object_add(p, "exited", json_object_new_boolean(r->exited));
		json_object_object_add(p, "threads", json_object_new_int(r->threads));
		json_object_object_add(p, "time_ns", json_object_new_uint64(r->time_ns));
		json_object_object_add(p, "in_spans_ns", json_object_new_uint64(r->in_spans_ns));
		json_object_object_add(p, "spans", json_object_new_uint64(r->spans));
		json_object_array_add(a, p);
	}
	return a;
}

/* Spans mode's own figures: its cost, what it could not time or read. */
static void spans_json(const struct report *rp, struct json_object *o)
{
	uint64_t spans = 0;

	for (int k = 0; k < SPAN_KINDS; k++)
		spans += rp->kt[k].count + rp->open_n[k];
	json_object_object_add(o, "thread_ns", json_object_new_uint64(rp->thread_ns));
	json_object_object_add(o, "spans", json_object_new_uint64(spans));
	json_object_object_add(o, "span_cost_ns", json_object_new_uint64(rp->span_cost_ns));
	json_object_object_add(o, "bpf_run_ns", json_object_new_uint64(rp->bpf_run_ns));
	json_object_object_add(o, "estimated_overhead_ns",
			       json_object_new_uint64(spans * rp->span_cost_ns + rp->bpf_run_ns));
	json_object_object_add(o, "spans_past_depth", json_object_new_uint64(rp->span_deep));
	json_object_object_add(o, "spans_not_aggregated", json_object_new_uint64(rp->span_lost));
	json_object_object_add(o, "blocks_read_while_written",
			       json_object_new_uint64(rp->span_torn));
	json_object_object_add(o, "stack_samples",
			       json_object_new_uint64(rp->counters[CNT_SPAN_SMP]));
	json_object_object_add(o, "sample_hz", json_object_new_uint64(rp->o->sample_hz));
	json_object_object_add(o, "threads", threads_json(rp));
	if (rp->o->all || rp->n_procs)
		json_object_object_add(o, "processes", procs_json(rp));
}

int json_report_write(const struct report *rp, struct json_object *jstacks)
{
	struct record_opts *ro = rp->o;
	struct json_object *o = json_object_new_object();
	uint64_t hits = rp->counters[CNT_HITS];
	int ret;

	json_object_object_add(o, "tool", json_object_new_string("mmsb-trace " MMSB_TOOLS_VERSION));
	json_object_object_add(o, "libmmsb", json_object_new_string(mmsb_version()));
	json_object_object_add(o, "target", target_json(rp));
	json_object_object_add(o, "wall_ns", json_object_new_uint64(rp->wall_ns));
	/* the window, attach complete to stop (CLOCK_MONOTONIC ns) */
	json_object_object_add(o, "window_start_ns", json_object_new_uint64(rp->window_start_ns));
	json_object_object_add(o, "window_end_ns", json_object_new_uint64(rp->window_end_ns));
	json_object_object_add(o, "mode", json_object_new_string(rp->inproc ? "spans" : "probes"));
	if (rp->inproc) {
		spans_json(rp, o);
	} else {
		/* the spans in it: only the kernel's programs see each begin and end */
		json_object_object_add(o, "span_window_ns", json_object_new_uint64(rp->window_ns));
		json_object_object_add(o, "first_begin_ns",
				       json_object_new_uint64(rp->first_begin_ns));
		json_object_object_add(o, "last_end_ns", json_object_new_uint64(rp->last_end_ns));
		json_object_object_add(o, "hits", json_object_new_uint64(hits));
		json_object_object_add(o, "hit_cost_ns", json_object_new_uint64(ro->hit_ns));
		json_object_object_add(o, "hit_cost_source", json_object_new_string(ro->hit_src));
		if (ro->hit_measure_ns)
			json_object_object_add(o, "hit_cost_measured_in_ns",
					       json_object_new_uint64(ro->hit_measure_ns));
		json_object_object_add(o, "estimated_overhead_ns",
				       json_object_new_uint64(hits * ro->hit_ns + rp->bpf_run_ns));
		json_object_object_add(o, "bpf_run_ns", json_object_new_uint64(rp->bpf_run_ns));
	}
	json_object_object_add(o, "self_ns_sum", json_object_new_uint64(rp->self_sum));
	json_object_object_add(o, "counters", counters_json(rp));
	if (ro->host_hz)
		json_object_object_add(o, "host_sampling", host_json(rp));
	json_object_object_add(o, "features", features_json(&rp->features));
	if (rp->tl)
		json_object_object_add(o, "events", events_json(rp));
	json_object_object_add(o, "stack_mode",
			       json_object_new_string(ro->stack_mode == STACKS_ALL  ? "all" :
						      ro->stack_mode == STACKS_NONE ? "none" :
										      "outer"));
	json_object_object_add(o, "kinds", kinds_json(rp));
	json_object_object_add(o, "stacks", jstacks);
	ret = write_json(&ro->out[OUT_JSON], o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED);
	json_object_put(o);
	return ret;
}
