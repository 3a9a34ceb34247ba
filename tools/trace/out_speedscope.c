// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * record --speedscope: a speedscope profile (https://www.speedscope.app/file-format-schema.json).
 * A sampled profile of libmmsb's self time, one sample per stack weighted in ns; with -e, also
 * an evented timeline per thread from the event stream, and the file opens on it.
 */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "mmsb_version.h"
#include "record.h"

/* Index of a speedscope frame by name, adding it to the shared table the first time. */
static int intern_frame(struct speedscope *ss, const char *name)
{
	struct json_object *idx, *fr;
	int at;

	if (json_object_object_get_ex(ss->index, name, &idx))
		return json_object_get_int(idx);
	at = (int)json_object_array_length(ss->frames);
	fr = json_object_new_object();
	json_object_object_add(fr, "name", json_object_new_string(name));
	json_object_array_add(ss->frames, fr);
	json_object_object_add(ss->index, name, json_object_new_int(at));
	return at;
}

void speedscope_init(struct speedscope *ss)
{
	ss->frames = json_object_new_array();
	ss->index = json_object_new_object();
	ss->samples = json_object_new_array();
	ss->weights = json_object_new_array();
}

void speedscope_free(struct speedscope *ss)
{
	json_object_put(ss->frames);
	json_object_put(ss->index);
	json_object_put(ss->samples);
	json_object_put(ss->weights);
	ss->frames = ss->index = ss->samples = ss->weights = NULL;
}

/* Every stack's frames go into the table; only those with self time become a sample. */
void speedscope_stack(struct speedscope *ss, const struct stack_row *row)
{
	struct json_object *sample = json_object_new_array();

	for (int i = 0; i < row->nf; i++)
		json_object_array_add(sample, json_object_new_int(intern_frame(ss, row->names[i])));
	json_object_array_add(sample, json_object_new_int(intern_frame(ss, row->leaf)));
	if (!row->v->self_ns) {
		json_object_put(sample);
		return;
	}
	json_object_array_add(ss->samples, sample);
	json_object_array_add(ss->weights, json_object_new_uint64(row->v->self_ns));
}

void speedscope_host(struct speedscope *ss, const struct host_frame *hf, uint64_t ns)
{
	struct json_object *sample = json_object_new_array();

	json_object_array_add(sample, json_object_new_int(intern_frame(ss, "mmsb:ffi_host")));
	json_object_array_add(sample, json_object_new_int(intern_frame(ss, hf->module)));
	json_object_array_add(sample, json_object_new_int(intern_frame(ss, hf->symbol)));
	json_object_array_add(ss->samples, sample);
	json_object_array_add(ss->weights, json_object_new_uint64(ns));
}

static int cmp_event(const void *a, const void *b)
{
	const struct span_event *x = a, *y = b;

	if (x->tid != y->tid)
		return x->tid < y->tid ? -1 : 1;
	if (x->start_ns != y->start_ns)
		return x->start_ns < y->start_ns ? -1 : 1;
	return x->depth < y->depth ? -1 : x->depth > y->depth; /* the outer span opens first */
}

static void add_event(struct json_object *evs, const char *type, int frame, uint64_t at)
{
	struct json_object *e = json_object_new_object();

	json_object_object_add(e, "type", json_object_new_string(type));
	json_object_object_add(e, "frame", json_object_new_int(frame));
	json_object_object_add(e, "at", json_object_new_uint64(at));
	json_object_array_add(evs, e);
}

/*
 * One thread's spans from v[*i] on as an evented profile, opened and closed in order; *i ends
 * past them. A span that would outlive its parent (a lost event can make one look so) is clamped
 * to the parent's end, so the opens and closes always nest as the format requires.
 */
static struct json_object *thread_timeline(struct speedscope *ss, const struct timeline *tl,
					   size_t *i, uint64_t t0)
{
	struct json_object *p = json_object_new_object(), *evs = json_object_new_array();
	uint64_t open_end[MAX_SPAN_DEPTH + 1];
	int open_frame[MAX_SPAN_DEPTH + 1];
	uint32_t tid = tl->v[*i].tid;
	uint64_t first = tl->v[*i].start_ns - t0, last = first;
	char name[64];
	int depth = 0;

	for (; *i < tl->n && tl->v[*i].tid == tid; (*i)++) {
		const struct span_event *e = &tl->v[*i];
		uint64_t start = e->start_ns - t0, end = start + e->dur_ns;
		char leaf[64];

		while (depth && open_end[depth - 1] <= start) {
			depth--;
			add_event(evs, "C", open_frame[depth], open_end[depth]);
		}
		if (depth == MAX_SPAN_DEPTH + 1)
			continue; /* cannot happen with depth-bounded spans; never break nesting */
		if (depth && end > open_end[depth - 1])
			end = open_end[depth - 1];
		snprintf(leaf, sizeof(leaf), "mmsb:%s", span_name((int)e->kind));
		open_frame[depth] = intern_frame(ss, leaf);
		open_end[depth] = end;
		add_event(evs, "O", open_frame[depth], start);
		depth++;
		if (end > last)
			last = end;
	}
	while (depth) {
		depth--;
		add_event(evs, "C", open_frame[depth], open_end[depth]);
	}
	snprintf(name, sizeof(name), "thread %u timeline", tid);
	json_object_object_add(p, "type", json_object_new_string("evented"));
	json_object_object_add(p, "name", json_object_new_string(name));
	json_object_object_add(p, "unit", json_object_new_string("nanoseconds"));
	json_object_object_add(p, "startValue", json_object_new_uint64(first));
	json_object_object_add(p, "endValue", json_object_new_uint64(last));
	json_object_object_add(p, "events", evs);
	return p;
}

/* One evented speedscope profile per thread: its spans as a timeline. */
static void timeline_profiles(struct speedscope *ss, struct timeline *tl, struct json_object *profs)
{
	uint64_t t0 = UINT64_MAX;

	qsort(tl->v, tl->n, sizeof(*tl->v), cmp_event);
	for (size_t i = 0; i < tl->n; i++)
		if (tl->v[i].start_ns < t0)
			t0 = tl->v[i].start_ns;
	for (size_t i = 0; i < tl->n;)
		json_object_array_add(profs, thread_timeline(ss, tl, &i, t0));
}

static const char *frame_name(struct json_object *frames, struct json_object *idx)
{
	struct json_object *fr = json_object_array_get_idx(frames, json_object_get_int(idx)), *nm;

	return json_object_object_get_ex(fr, "name", &nm) ? json_object_get_string(nm) : "";
}

/* Two samples by their frames' names, root first; a stack before the stacks it is a prefix of. */
static int cmp_sample(const void *a, const void *b, void *ctx)
{
	struct json_object *x = *(struct json_object *const *)a,
			   *y = *(struct json_object *const *)b;
	size_t nx = json_object_array_length(x), ny = json_object_array_length(y);

	for (size_t i = 0; i < nx && i < ny; i++) {
		int c = strcmp(frame_name(ctx, json_object_array_get_idx(x, i)),
			       frame_name(ctx, json_object_array_get_idx(y, i)));

		if (c)
			return c;
	}
	return nx < ny ? -1 : nx > ny;
}

/*
 * The samples in the order of their stacks' names, as flamegraph.pl sorts its lines. speedscope
 * shows a sampled profile first in "Time Order", and the walk's order is the stack map's hash
 * order: drawn as it came it looks like a timeline and is none. Sorted, equal prefixes sit side
 * by side and the view is a flame graph, each function one box.
 */
static void sort_samples(struct speedscope *ss)
{
	size_t n = json_object_array_length(ss->samples);
	struct json_object **pairs = calloc(n * 2, sizeof(*pairs)), *samples, *weights;

	if (!pairs)
		return; /* unsorted, still valid */
	/* each sample with its weight behind it: sorted as one */
	for (size_t i = 0; i < n; i++) {
		pairs[2 * i] = json_object_array_get_idx(ss->samples, i);
		pairs[2 * i + 1] = json_object_array_get_idx(ss->weights, i);
	}
	qsort_r(pairs, n, 2 * sizeof(*pairs), cmp_sample, ss->frames);
	samples = json_object_new_array_ext((int)n);
	weights = json_object_new_array_ext((int)n);
	for (size_t i = 0; i < n; i++) {
		json_object_array_add(samples, json_object_get(pairs[2 * i]));
		json_object_array_add(weights, json_object_get(pairs[2 * i + 1]));
	}
	json_object_put(ss->samples);
	json_object_put(ss->weights);
	ss->samples = samples;
	ss->weights = weights;
	free(pairs);
}

/*
 * The document into out; the frames, samples and weights go with it. It opens on the first
 * thread's timeline when there is one (-e): a profile that is time, shown as time.
 */
int speedscope_write(struct speedscope *ss, struct out_file *out, struct timeline *tl)
{
	struct json_object *o = json_object_new_object(), *shared = json_object_new_object();
	struct json_object *prof = json_object_new_object(), *profs = json_object_new_array();
	uint64_t end = 0;
	int ret;

	sort_samples(ss);
	for (size_t i = 0; i < json_object_array_length(ss->weights); i++)
		end += json_object_get_uint64(json_object_array_get_idx(ss->weights, i));
	json_object_object_add(
		o, "$schema",
		json_object_new_string("https://www.speedscope.app/file-format-schema.json"));
	json_object_object_add(shared, "frames", ss->frames);
	json_object_object_add(o, "shared", shared);
	json_object_object_add(prof, "type", json_object_new_string("sampled"));
	json_object_object_add(
		prof, "name",
		json_object_new_string("libmmsb self time (stacks by name, not time)"));
	json_object_object_add(prof, "unit", json_object_new_string("nanoseconds"));
	json_object_object_add(prof, "startValue", json_object_new_int(0));
	json_object_object_add(prof, "endValue", json_object_new_uint64(end));
	json_object_object_add(prof, "samples", ss->samples);
	json_object_object_add(prof, "weights", ss->weights);
	json_object_array_add(profs, prof);
	if (tl)
		timeline_profiles(ss, tl, profs);
	json_object_object_add(o, "profiles", profs);
	json_object_object_add(o, "name", json_object_new_string("mmsb-trace"));
	/* profile 0 is the sampled one; 1, when there, the first timeline */
	json_object_object_add(o, "activeProfileIndex",
			       json_object_new_int(json_object_array_length(profs) > 1));
	json_object_object_add(o, "exporter",
			       json_object_new_string("mmsb-trace " MMSB_TOOLS_VERSION));
	ss->frames = ss->samples = ss->weights = NULL;
	ret = write_json(out, o, JSON_C_TO_STRING_PLAIN);
	json_object_put(o);
	return ret;
}
