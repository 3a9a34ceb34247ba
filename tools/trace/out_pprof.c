// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * record --pprof: the report as a gzip'd profile.proto, pprof's format (go tool pprof, Pyroscope,
 * Parca), written with protobuf-c (tools/trace/profile.proto) and zlib. One sample per
 * aggregated stack, its frames those walk_stacks() builds for every output, valued calls, self
 * and total ns; in spans mode also on-CPU, off-CPU (asleep) and run-queue ns, and the timer
 * samples, valued samples and cpu ns, their frames those of the folded file. User frames have a
 * mapping with the file's path and build id, at an address of base + file offset.
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include <bpf/bpf.h>

#include "mmsb_version.h"
#include "profile.pb-c.h"
#include "record.h"

typedef Perftools__Profiles__Profile p_profile;
typedef Perftools__Profiles__ValueType p_vtype;
typedef Perftools__Profiles__Sample p_sample;
typedef Perftools__Profiles__Label p_label;
typedef Perftools__Profiles__Mapping p_mapping;
typedef Perftools__Profiles__Location p_location;
typedef Perftools__Profiles__Line p_line;
typedef Perftools__Profiles__Function p_function;

/* The values of every sample; probes mode has the first three. */
enum { V_CALLS, V_SELF, V_TOTAL, V_ON, V_OFF, V_RUNQ, V_SAMPLES, V_CPU, NV };
static const char *const vtype[NV][2] = {
	{ "calls", "count" },	     { "self", "nanoseconds" },	   { "total", "nanoseconds" },
	{ "on_cpu", "nanoseconds" }, { "off_cpu", "nanoseconds" }, { "runq", "nanoseconds" },
	{ "samples", "count" },	     { "cpu", "nanoseconds" },
};
#define PROBES_NV 3

/* Each mapping's addresses: base = id << MAP_SHIFT, the file offset added. */
#define MAP_SHIFT 40

/* A string -> value table, open addressing; keys are copied. */
struct strmap {
	char **keys;
	uint64_t *vals;
	size_t cap, n;
};

/* One sample with what it points to, in one allocation. */
struct psample {
	p_sample s;
	int64_t v[NV];
	p_label lab[3], *labp[3];
	uint64_t loc[];
};

/* The profile being built: a report's, from the walk to pprof_write(). */
static struct pprof {
	bool on;
	int nv;
	struct strmap strs, fns, locs, maps, rows;
	char **str;
	p_function **fn;
	p_location **loc;
	p_mapping **map;
	struct psample **smp;
	size_t n_str, n_fn, n_loc, n_map, n_smp;
	size_t cap_str, cap_fn, cap_loc, cap_map, cap_smp;
	bool nomem;
} pp;

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static bool map_get(const struct strmap *m, const char *key, uint64_t *val)
{
	if (!m->cap)
		return false;
	for (size_t i = hash_str(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		if (!m->keys[i])
			return false;
		if (!strcmp(m->keys[i], key)) {
			*val = m->vals[i];
			return true;
		}
	}
}

static int map_put(struct strmap *m, const char *key, uint64_t val)
{
	size_t i;

	if (2 * (m->n + 1) > m->cap) {
		struct strmap g = { .cap = m->cap ? 2 * m->cap : 256 };

		g.keys = calloc(g.cap, sizeof(*g.keys));
		g.vals = calloc(g.cap, sizeof(*g.vals));
		if (!g.keys || !g.vals) {
			free(g.keys);
			free(g.vals);
			return -ENOMEM;
		}
		for (size_t j = 0; j < m->cap; j++) {
			if (!m->keys[j])
				continue;
			for (i = hash_str(m->keys[j]) & (g.cap - 1); g.keys[i];
			     i = (i + 1) & (g.cap - 1))
				;
			g.keys[i] = m->keys[j];
			g.vals[i] = m->vals[j];
		}
		g.n = m->n;
		free(m->keys);
		free(m->vals);
		*m = g;
	}
	for (i = hash_str(key) & (m->cap - 1); m->keys[i]; i = (i + 1) & (m->cap - 1))
		;
	m->keys[i] = strdup(key);
	if (!m->keys[i])
		return -ENOMEM;
	m->vals[i] = val;
	m->n++;
	return 0;
}

static void map_free(struct strmap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->keys[i]);
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

/* Append P to the array *V of *N (capacity *CAP): false when out of memory (counted). */
static bool push(void ***v, size_t *n, size_t *cap, void *p)
{
	if (!p) {
		pp.nomem = true;
		return false;
	}
	if (*n == *cap) {
		size_t nc = *cap ? 2 * *cap : 64;
		void **nv = realloc(*v, nc * sizeof(**v));

		if (!nv) {
			pp.nomem = true;
			return false;
		}
		*v = nv;
		*cap = nc;
	}
	(*v)[(*n)++] = p;
	return true;
}
#define PUSH(arr, x) push((void ***)&pp.arr, &pp.n_##arr, &pp.cap_##arr, (x))

/* The string table's index of S ("" is 0). */
static int64_t str_id(const char *s)
{
	uint64_t id;
	char *d;

	if (map_get(&pp.strs, s, &id))
		return (int64_t)id;
	d = strdup(s);
	if (!PUSH(str, d)) {
		free(d);
		return 0;
	}
	if (map_put(&pp.strs, s, pp.n_str - 1))
		pp.nomem = true;
	return (int64_t)(pp.n_str - 1);
}

static void pp_init(const struct report *rp)
{
	if (pp.on)
		return;
	memset(&pp, 0, sizeof(pp));
	pp.on = true;
	pp.nv = rp->inproc ? NV : PROBES_NV;
	str_id("");
}

/* The function NAME (in FILE, "" when unknown): its id. */
static uint64_t fn_id(const char *name, const char *file)
{
	char key[600];
	uint64_t id;
	p_function *f;

	snprintf(key, sizeof(key), "%s\n%s", name, file);
	if (map_get(&pp.fns, key, &id))
		return id;
	f = malloc(sizeof(*f));
	if (!f || !PUSH(fn, f)) {
		free(f);
		return 0;
	}
	perftools__profiles__function__init(f);
	f->id = pp.n_fn;
	f->name = f->system_name = str_id(name);
	f->filename = str_id(file);
	if (map_put(&pp.fns, key, f->id))
		pp.nomem = true;
	return f->id;
}

/* A location of NL frames (innermost first, each inlined into the next), keyed by KEY. */
static uint64_t loc_id(const char *key, uint64_t map_id, uint64_t addr, const char **names,
		       const char **files, const int *lines, int nl)
{
	p_location *l;
	uint64_t id;

	if (map_get(&pp.locs, key, &id))
		return id;
	l = calloc(1, sizeof(*l) + (size_t)nl * (sizeof(p_line) + sizeof(p_line *)));
	if (!l || !PUSH(loc, l)) {
		free(l);
		return 0;
	}
	perftools__profiles__location__init(l);
	l->id = pp.n_loc;
	l->mapping_id = map_id;
	l->address = addr;
	l->n_line = (size_t)nl;
	l->line = (p_line **)(l + 1);
	for (int i = 0; i < nl; i++) {
		p_line *ln = (p_line *)((char *)(l + 1) + (size_t)nl * sizeof(p_line *)) + i;

		perftools__profiles__line__init(ln);
		ln->function_id = fn_id(names[i], files[i] ? files[i] : "");
		ln->line = lines[i];
		l->line[i] = ln;
	}
	if (map_put(&pp.locs, key, l->id))
		pp.nomem = true;
	return l->id;
}

/* A frame of no file: a span kind, "[unknown]", a kernel function. */
static uint64_t loc_plain(const char *name)
{
	const char *files[1] = { "" };
	int lines[1] = { 0 };
	char key[320];

	snprintf(key, sizeof(key), "-\n%s", name);
	return loc_id(key, 0, 0, &name, files, lines, 1);
}

/* The mapping of MODULE (with BUILD_ID): its id. */
static uint64_t map_id(const char *module, const char *build_id)
{
	char key[PATH_MAX + 128];
	p_mapping *m;
	uint64_t id;

	snprintf(key, sizeof(key), "%s\n%s", module, build_id);
	if (map_get(&pp.maps, key, &id))
		return id;
	m = malloc(sizeof(*m));
	if (!m || !PUSH(map, m)) {
		free(m);
		return 0;
	}
	perftools__profiles__mapping__init(m);
	m->id = pp.n_map;
	m->memory_start = m->id << MAP_SHIFT;
	m->memory_limit = (m->id + 1) << MAP_SHIFT;
	m->file_offset = 0;
	m->filename = str_id(module);
	m->build_id = str_id(build_id);
	/* named by mmsb-trace: nothing for pprof to symbolise */
	m->has_functions = m->has_filenames = m->has_line_numbers = m->has_inline_frames = true;
	if (map_put(&pp.maps, key, m->id))
		pp.nomem = true;
	return m->id;
}

static const char *jstr(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string) ?
		       json_object_get_string(v) :
		       NULL;
}

static bool jbool(struct json_object *o, const char *k, bool dflt)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_boolean(v) : dflt;
}

static uint64_t ju64(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_uint64(v) : 0;
}

/*
 * User frames NAMES[0..N), root first, with their locations as frames_of() gives them: one
 * location per address, the functions inlined there its lines. Their ids, root first, into IDS.
 */
static size_t user_locs(char (*names)[256], struct json_object *locs, int n, uint64_t *ids)
{
	const char *fnames[MAX_STACK_FRAMES], *files[MAX_STACK_FRAMES];
	int lines[MAX_STACK_FRAMES];
	size_t k = 0;

	for (int i = 0, g; i < n; i += g) {
		struct json_object *l = json_object_array_get_idx(locs, (size_t)i);
		const char *module = jstr(l, "module"), *bid = jstr(l, "build_id");
		char key[PATH_MAX + 64 * 256];
		size_t o;

		/* the functions inlined at this address follow it, each into the one before */
		for (g = 1; i + g < n && jbool(json_object_array_get_idx(locs, (size_t)(i + g)),
					       "inlined", false);
		     g++)
			;
		if (!jbool(l, "code", true)) {
			ids[k++] = loc_plain(names[i]);
			g = 1;
			continue;
		}
		o = (size_t)snprintf(key, sizeof(key), "%s\n%s\n%" PRIx64, module ? module : "",
				     module ? "" : "addr", ju64(l, module ? "offset" : "address"));
		for (int j = 0; j < g; j++) {
			struct json_object *lj = json_object_array_get_idx(locs, (size_t)(i + j));
			struct json_object *v;

			/* lines innermost first: the last inlined function is line[0] */
			fnames[g - 1 - j] = names[i + j];
			files[g - 1 - j] = jstr(lj, "file");
			lines[g - 1 - j] = json_object_object_get_ex(lj, "line", &v) ?
						   json_object_get_int(v) :
						   0;
			if (o < sizeof(key))
				o += (size_t)snprintf(key + o, sizeof(key) - o, "\n%s:%s:%d",
						      names[i + j], files[g - 1 - j] ?: "",
						      lines[g - 1 - j]);
		}
		if (module) {
			uint64_t m = map_id(module, bid ? bid : "");

			ids[k++] = loc_id(key, m, (m << MAP_SHIFT) + ju64(l, "offset"), fnames,
					  files, lines, g);
		} else {
			ids[k++] = loc_id(key, 0, ju64(l, "address"), fnames, files, lines, g);
		}
	}
	return k;
}

/* A sample of the frames IDS (root first, N) with values V and labels; its index. */
static size_t sample_add(const uint64_t *ids, size_t n, const int64_t *v, const char *kind, int pid,
			 int tid)
{
	struct psample *s = calloc(1, sizeof(*s) + n * sizeof(uint64_t));
	size_t nl = 0;

	if (!s || !PUSH(smp, s)) {
		free(s);
		return SIZE_MAX;
	}
	perftools__profiles__sample__init(&s->s);
	/* the leaf first */
	for (size_t i = 0; i < n; i++)
		s->loc[i] = ids[n - 1 - i];
	s->s.location_id = s->loc;
	s->s.n_location_id = n;
	memcpy(s->v, v, sizeof(s->v));
	s->s.value = s->v;
	s->s.n_value = (size_t)pp.nv;
	for (int i = 0; i < 3; i++) {
		perftools__profiles__label__init(&s->lab[i]);
		s->labp[i] = &s->lab[i];
	}
	if (kind) {
		s->lab[nl].key = str_id("kind");
		s->lab[nl++].str = str_id(kind);
	}
	s->lab[nl].key = str_id("pid");
	s->lab[nl++].num = pid;
	if (tid) {
		s->lab[nl].key = str_id("tid");
		s->lab[nl++].num = tid;
	}
	s->s.label = s->labp;
	s->s.n_label = nl;
	return pp.n_smp - 1;
}

static void row_key(char *buf, size_t len, uint32_t kind, uint64_t chain)
{
	snprintf(buf, len, "%u:%" PRIx64, kind, chain);
}

void pprof_stack(struct report *rp, const struct stack_row *row)
{
	uint64_t ids[MAX_STACK_FRAMES + 2];
	int64_t v[NV] = { 0 };
	int nu = row->nf - row->depth;
	size_t k = 0, idx;
	char key[64];

	pp_init(rp);
	if (!row->nf)
		ids[k++] = loc_plain("[no stack]");
	/* the user frames' locations, from the row's walk */
	if (nu > 0 && row->locs && (int)json_object_array_length(row->locs) == nu) {
		k += user_locs(row->names, row->locs, nu, ids + k);
	} else {
		for (int i = 0; i < nu; i++)
			ids[k++] = loc_plain(row->names[i]);
	}
	for (int i = nu > 0 ? nu : 0; i < row->nf; i++)
		ids[k++] = loc_plain(row->names[i]);
	ids[k++] = loc_plain(row->leaf);
	v[V_CALLS] = (int64_t)row->v->count;
	v[V_SELF] = (int64_t)row->v->self_ns;
	v[V_TOTAL] = (int64_t)row->v->total_ns;
	idx = sample_add(ids, k, v, span_name((int)row->key->kind), rp->pid, 0);
	/* spans mode: a row is its (kind, chain); its off-CPU time is added in pprof_write() */
	row_key(key, sizeof(key), row->key->kind, row->key->chain);
	if (rp->inproc && idx != SIZE_MAX && map_put(&pp.rows, key, idx))
		pp.nomem = true;
}

/*
 * Spans mode: the off-CPU time of each (thread, node), as offcpu_collect() sums it per kind,
 * into the row of the node's kind and chain; a row that had no closed span gets a sample of its
 * own. Then each row's on-CPU time: its self time less both, never below 0.
 */
static void pp_offcpu(struct report *rp)
{
	struct span_tid_node k, next, *prev = NULL;
	struct offcpu_ns ov;

	while (!bpf_map_get_next_key(rp->maps.offcpu_fd, prev, &next)) {
		int kinds[64], n, kind;
		uint64_t chain = 0, idx, ids[16];
		char key[64];

		k = next;
		prev = &k;
		if (bpf_map_lookup_elem(rp->maps.offcpu_fd, &k, &ov))
			continue;
		n = inproc_node_kinds(rp->ip, rp->maps.blocks_fd, k.tid, k.node, kinds, 64);
		if (n <= 0)
			continue;
		kind = kinds[n - 1];
		/* only the kinds the report has (-k) */
		if (kind < 0 || kind >= SPAN_KINDS || !(rp->kt[kind].count || rp->open_n[kind]))
			continue;
		/* as span_key.chain: the parent in the low 5 bits, twelve levels */
		for (int i = n - 2, shift = 0; i >= 0 && shift < 60; i--, shift += 5)
			chain |= (uint64_t)(kinds[i] + 1) << shift;
		row_key(key, sizeof(key), (uint32_t)kind, chain);
		if (!map_get(&pp.rows, key, &idx)) {
			int64_t v[NV] = { 0 };
			char name[64];
			size_t nf = 0;
			int depth = 0;

			/* the row walk_stacks() would have made: the chain, outermost first */
			for (uint64_t ch = chain; ch && depth < 13; ch >>= 5)
				depth++;
			if (!depth)
				ids[nf++] = loc_plain("[no stack]");
			for (int i = depth - 1; i >= 0; i--) {
				snprintf(name, sizeof(name), "mmsb:%s",
					 span_name((int)((chain >> (5 * i)) & 31) - 1));
				ids[nf++] = loc_plain(name);
			}
			snprintf(name, sizeof(name), "mmsb:%s", span_name(kind));
			ids[nf++] = loc_plain(name);
			idx = sample_add(ids, nf, v, span_name(kind), rp->pid, 0);
			if (idx == SIZE_MAX || map_put(&pp.rows, key, idx)) {
				pp.nomem = true;
				continue;
			}
		}
		pp.smp[idx]->v[V_OFF] += (int64_t)ov.blocked;
		pp.smp[idx]->v[V_RUNQ] += (int64_t)ov.waiting;
	}
	for (size_t i = 0; i < pp.n_smp; i++) {
		int64_t *v = pp.smp[i]->v;

		v[V_ON] = v[V_SELF] > v[V_OFF] + v[V_RUNQ] ? v[V_SELF] - v[V_OFF] - v[V_RUNQ] : 0;
	}
}

struct timer_ctx {
	const struct report *rp;
	uint64_t period_ns;
};

/* A timer sample of the spans mode, each PERIOD_NS: its frames as the folded output names them. */
static void timer_sample(const struct inproc_sample *smp, void *arg)
{
	const struct timer_ctx *c = arg;
	uint64_t ids[MMSB_SPAN_DEPTH * 2 + 2 * MAX_STACK_FRAMES];
	int64_t v[NV] = { 0 };
	size_t o = 0;
	int i;

	for (i = 0; i < smp->n_chain; i++)
		ids[o++] = loc_plain(smp->names[i]);
	if ((int)json_object_array_length(smp->locs) == smp->n_user)
		o += user_locs(smp->names + i, smp->locs, smp->n_user, ids + o);
	for (i += smp->n_user; i < smp->n; i++)
		ids[o++] = loc_plain(smp->names[i]);
	v[V_SAMPLES] = (int64_t)smp->count;
	v[V_CPU] = (int64_t)(smp->count * c->period_ns);
	sample_add(ids, o, v, smp->leaf_kind >= 0 ? span_name(smp->leaf_kind) : NULL, c->rp->pid,
		   (int)smp->key->tid);
}

/* The serialised profile, gzip'd, into OUT's file: 0 or -1. */
static int gzip_out(struct out_file *out, const uint8_t *buf, size_t len)
{
	uint8_t chunk[65536];
	z_stream zs = { 0 };
	int zr;

	if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
	    Z_OK)
		return -1;
	zs.next_in = (Bytef *)(uintptr_t)buf;
	zs.avail_in = (uInt)len;
	do {
		zs.next_out = chunk;
		zs.avail_out = sizeof(chunk);
		zr = deflate(&zs, Z_FINISH);
		if (zr == Z_STREAM_ERROR || fwrite(chunk, 1, sizeof(chunk) - zs.avail_out,
						   out->f) != sizeof(chunk) - zs.avail_out) {
			deflateEnd(&zs);
			return -1;
		}
	} while (zr != Z_STREAM_END);
	deflateEnd(&zs);
	return 0;
}

static void pp_free(void)
{
	for (size_t i = 0; i < pp.n_str; i++)
		free(pp.str[i]);
	for (size_t i = 0; i < pp.n_fn; i++)
		free(pp.fn[i]);
	for (size_t i = 0; i < pp.n_loc; i++)
		free(pp.loc[i]);
	for (size_t i = 0; i < pp.n_map; i++)
		free(pp.map[i]);
	for (size_t i = 0; i < pp.n_smp; i++)
		free(pp.smp[i]);
	free(pp.str);
	free(pp.fn);
	free(pp.loc);
	free(pp.map);
	free(pp.smp);
	map_free(&pp.strs);
	map_free(&pp.fns);
	map_free(&pp.locs);
	map_free(&pp.maps);
	map_free(&pp.rows);
	memset(&pp, 0, sizeof(pp));
}

int pprof_write(struct report *rp)
{
	struct out_file *out = &rp->o->out[OUT_PPROF];
	p_profile p = PERFTOOLS__PROFILES__PROFILE__INIT;
	p_vtype vt[NV], *vtp[NV], period_type = PERFTOOLS__PROFILES__VALUE_TYPE__INIT;
	uint64_t period = rp->inproc && rp->o->sample_hz ? 1000000000ull / rp->o->sample_hz : 0;
	int64_t comments[3];
	struct timespec now;
	char line[PATH_MAX + 64];
	uint8_t *buf;
	size_t len;
	int ret;

	pp_init(rp);
	if (rp->inproc && rp->ip) {
		struct timer_ctx tc = { rp, period };

		pp_offcpu(rp);
		if (period)
			inproc_samples(rp->ip, rp, &rp->maps, true, timer_sample, &tc);
	}
	for (int i = 0; i < pp.nv; i++) {
		perftools__profiles__value_type__init(&vt[i]);
		vt[i].type = str_id(vtype[i][0]);
		vt[i].unit = str_id(vtype[i][1]);
		vtp[i] = &vt[i];
	}
	p.sample_type = vtp;
	p.n_sample_type = (size_t)pp.nv;
	p.default_sample_type = str_id("self");
	/* spans mode's, -F 0 too: a profile made with samples and one without compare (-diff_base) */
	if (rp->inproc) {
		period_type.type = str_id("cpu");
		period_type.unit = str_id("nanoseconds");
		p.period_type = &period_type;
		p.period = (int64_t)period;
	}
	comments[0] = str_id("mmsb-trace " MMSB_TOOLS_VERSION);
	snprintf(line, sizeof(line), "mode %s, process %d, library %s",
		 rp->inproc ? "spans" : "probes", rp->pid, rp->lib ? rp->lib : "?");
	comments[1] = str_id(line);
	comments[2] = str_id(rp->inproc ? "samples/cpu: the timer samples (-F); the others: the "
					  "spans, exact" :
					  "the spans, exact");
	p.comment = comments;
	p.n_comment = 3;
	/* the window's start on the wall clock: its CLOCK_MONOTONIC instant carried over */
	clock_gettime(CLOCK_REALTIME, &now);
	p.time_nanos = (int64_t)((uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec -
				 (mono_ns() - rp->window_start_ns));
	p.duration_nanos = (int64_t)rp->wall_ns;
	/* mapping[0] is the main binary: the first that is no shared object */
	for (size_t i = 1; i < pp.n_map; i++) {
		p_mapping *m = pp.map[i];

		if (strstr(pp.str[pp.map[0]->filename], ".so") &&
		    !strstr(pp.str[m->filename], ".so")) {
			pp.map[i] = pp.map[0];
			pp.map[0] = m;
			break;
		}
	}
	/* every string is in by now: the table does not move again */
	p.sample = (p_sample **)pp.smp;
	p.n_sample = pp.n_smp;
	p.mapping = pp.map;
	p.n_mapping = pp.n_map;
	p.location = pp.loc;
	p.n_location = pp.n_loc;
	p.function = pp.fn;
	p.n_function = pp.n_fn;
	p.string_table = pp.str;
	p.n_string_table = pp.n_str;
	if (pp.nomem) {
		p_err("%s: out of memory building the profile", out->path);
		out_discard(out);
		pp_free();
		return -1;
	}
	len = perftools__profiles__profile__get_packed_size(&p);
	buf = malloc(len ? len : 1);
	if (!buf || perftools__profiles__profile__pack(&p, buf) != len || gzip_out(out, buf, len)) {
		p_err("%s: %s", out->path, buf ? strerror(errno ? errno : EIO) : "out of memory");
		out_discard(out);
		ret = -1;
	} else {
		ret = out_close(out);
	}
	free(buf);
	pp_free();
	return ret;
}
