// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * mmsb-trace record: attach bpf/mmsb_trace.bpf.c to every span probe of libmmsb in one process,
 * run or follow it, then report where the time went: a table per span kind, folded stacks
 * weighted by self time, JSON and a speedscope profile.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <mmsb/mmsb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "mmsb_trace.h"
#include "mmsb_trace.skel.h"
#include "syms_helpers.h"
#include "tool_helpers.h"
#include "trace.h"
#include "usdt_helpers.h"

/* Measured with `mmsb-trace features --calibrate` on the reference machine (docs/tracing.md). */
#define DEFAULT_HIT_NS 600
/*
 * --host-sample: every sample interrupts the target, about 15 us each on the VM measured
 * (docs/ffi.md): 1 kHz slows it by about 1 %, 10 kHz by 16 %.
 */
#define DEFAULT_HOST_HZ 1000

static const struct span_def {
	const char *name, *begin, *end, *category;
} spans[SPAN_KINDS] = {
	[SPAN_API] = { "api", "api__entry", "api__exit", "ffi" },
	[SPAN_STATE_OPEN] = { "state_open", "state__open__begin", "state__open__end",
			      "allocation" },
	[SPAN_STATE_CLOSE] = { "state_close", "state__close__begin", "state__close__end",
			       "allocation" },
	[SPAN_PAGE_ALLOC] = { "page_alloc", "page__alloc__begin", "page__alloc__end",
			      "allocation" },
	[SPAN_PAGE_FREE] = { "page_free", "page__free__begin", "page__free__end", "allocation" },
	[SPAN_UPDATE] = { "update", "update__begin", "update__end", "routing" },
	[SPAN_DELTA_APPLY] = { "delta_apply", "delta__apply__begin", "delta__apply__end",
			       "delta apply" },
	[SPAN_ROUTE_BATCH] = { "route_batch", "route__batch__begin", "route__batch__end",
			       "routing" },
	[SPAN_PROPAGATE] = { "propagate", "propagate__begin", "propagate__end", "propagation" },
	[SPAN_RECOMPUTE] = { "recompute", "recompute__begin", "recompute__end", "recompute" },
	[SPAN_LOG_APPEND] = { "log_append", "log__append__begin", "log__append__end", "log" },
	[SPAN_LOG_SYNC] = { "log_sync", "log__sync__begin", "log__sync__end", "log" },
	[SPAN_CHECKPOINT_WRITE] = { "checkpoint_write", "checkpoint__write__begin",
				    "checkpoint__write__end", "checkpoint" },
	[SPAN_CHECKPOINT_LOAD] = { "checkpoint_load", "checkpoint__load__begin",
				   "checkpoint__load__end", "checkpoint" },
	[SPAN_REPLAY] = { "replay", "replay__begin", "replay__end", "checkpoint" },
	[SPAN_ENGINE_BATCH] = { "engine_batch", "engine__batch__begin", "engine__batch__end",
				"routing" },
	[SPAN_TICK] = { "tick", "tick__begin", "tick__end", "routing" },
	/* not libmmsb's: a host's libffi call into it (ctypes, cffi), entry to return */
	[SPAN_HOST] = { "ffi_call", "ffi_call", "ffi_call", "ffi host" },
	[SPAN_GPU_LAUNCH] = { "gpu_launch", "gpu__launch__begin", "gpu__launch__end", "gpu" },
	[SPAN_GPU_COPY] = { "gpu_copy", "gpu__copy__begin", "gpu__copy__end", "gpu" },
};

int span_kind_of(const char *name)
{
	for (int k = 0; k < SPAN_KINDS; k++)
		if (!strcmp(spans[k].name, name))
			return k;
	return -1;
}

const char *span_name(int kind)
{
	return kind >= 0 && kind < SPAN_KINDS ? spans[kind].name : "?";
}

/* The files record writes, each opened before the command starts (tool_helpers.h). */
enum { OUT_FOLDED, OUT_JSON, OUT_SPEEDSCOPE, OUT_EVENTS, N_OUT };

static struct {
	uint64_t pid;
	double duration;
	const char *folded, *json_out, *speedscope, *events, *lib, *kinds, *profile, *out_dir, *pmu;
	struct out_file out[N_OUT];
	bool as_root, no_table, stacks_set;
	int stack_mode;
	uint64_t hit_ns;
	char paths[4][PATH_MAX]; /* the profile's output files in out_dir */
	char profile_pmu[256];
	struct pmu_event ev[MAX_PMU];
	int n_pmu;
	uint64_t host_hz; /* --host-sample: 0, off */
} ro;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

int record_help(void)
{
	printf("Usage: %s record [OPTIONS] -- CMD [ARGS...]\n"
	       "       %s record [OPTIONS] -p PID\n\n"
	       "Attach to every span probe of libmmsb in one process and report where its time went:\n"
	       "per span kind the calls, the inclusive and self time, the share of the traced wall\n"
	       "time, p50/p99, and the probe hits with their estimated cost.\n\n"
	       "  -p, --pid PID          attach to a running process (detaches cleanly); under sudo,\n"
	       "                         one the invoking user could trace\n"
	       "  -d, --duration SECS    stop after SECS (default: Ctrl-C or the target's exit);\n"
	       "                         the command goes on, untraced, and is not waited for\n"
	       "  -l, --lib PATH         the libmmsb.so to attach to (default: found from the target)\n"
	       "  -k, --kinds LIST       only these span kinds (comma-separated; see below), or none\n"
	       "  -P, --profile NAME|FILE  settings from a trace profile ('%s profiles' lists\n"
	       "                         them); options given here override it\n"
	       "  -o, --output-dir DIR   where a profile's outputs go (default: .): trace.json,\n"
	       "                         trace.folded, trace.speedscope.json, trace.events.ndjson\n"
	       "      --stacks MODE      outer (default: the outermost span's, inherited inside it),\n"
	       "                         all (every span's; a stack walk per begin) or none\n"
	       "  -f, --folded FILE      folded stacks weighted in ns of self time\n"
	       "  -J, --json FILE        everything, as JSON\n"
	       "  -s, --speedscope FILE  a speedscope profile (with -e, also a timeline per thread)\n"
	       "  -e, --events FILE      stream every closed span through a ring buffer into FILE,\n"
	       "                         one JSON object a line; drops are counted and reported\n"
	       "      --pmu EVENTS       count these events per span (comma list, at most 4; see\n"
	       "                         '%s pmu list'), e.g. perf::PAGE-FAULTS,perf::TASK-CLOCK\n"
	       "      --host-sample[=HZ] sample the host's side of the crossings into libmmsb (its\n"
	       "                         marshalling and call loop) with a CPU clock on every CPU,\n"
	       "                         HZ a second (default %d): kind ffi_host. Alone it attaches\n"
	       "                         no span probe (their traps would slow the host); with -k\n"
	       "                         or -P, both\n"
	       "      --hit-cost NS      cost of one probe hit for the overhead estimate (default %d)\n"
	       "      --as-root          under sudo: run CMD as root, and allow -p of any process\n\n"
	       "Outputs are never written through a symlink at their path, are replaced only once\n"
	       "complete, and under sudo are created as the invoking user, whose rights also open\n"
	       "the files named here. FILE '-' is stdout.\n\n"
	       "Exit status: the command's (128+N when signal N ended it, 127 when it is not\n"
	       "found); 0 with -p or when -d or a signal ended the tracing first; 1 when the trace\n"
	       "failed; 2 usage.\n\n"
	       "Kinds: api state_open state_close page_alloc page_free update delta_apply route_batch\n"
	       "       propagate recompute log_append log_sync checkpoint_write checkpoint_load\n"
	       "       replay engine_batch tick gpu_launch gpu_copy\n"
	       "       ffi_call (a host's libffi calls into libmmsb, probed: costs what it measures)\n"
	       "       (ffi_host, the host's side sampled, comes with --host-sample, not -k)\n\n"
	       "Examples:\n"
	       "  sudo %s record -- .output/mmsb-bench --quick\n"
	       "  sudo %s record -p 4242 -d 10 -f out.folded   # flamegraph.pl out.folded\n"
	       "  sudo %s record -P ci -o artifacts -- .output/mmsb-bench\n",
	       prog_name, prog_name, prog_name, prog_name, DEFAULT_HOST_HZ, DEFAULT_HIT_NS,
	       prog_name, prog_name, prog_name);
	return EXIT_OK;
}

/* Root, or CAP_SYS_ADMIN, or CAP_BPF with CAP_PERFMON: what loading and attaching need. */
bool have_bpf_caps(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2] = { 0 };
	uint64_t eff;

	if (!geteuid())
		return true;
	if (syscall(SYS_capget, &h, d))
		return false;
	eff = d[0].effective | ((uint64_t)d[1].effective << 32);
	/* CAP_SYS_ADMIN 21, CAP_PERFMON 38, CAP_BPF 39 (not every libc header has the last two) */
	return (eff >> 21 & 1) || ((eff >> 38 & 1) && (eff >> 39 & 1));
}

/* A program linked with libmmsb.a carries the mmsb probes in the executable itself. */
static bool has_mmsb_probes(const char *path)
{
	struct usdt_note *v;
	int n = usdt_notes_read(path, &v);
	bool yes = false;

	for (int i = 0; i < n && !yes; i++)
		yes = !strcmp(v[i].provider, "mmsb");
	if (n >= 0)
		free(v);
	return yes;
}

/* Where libmmsb lives for PID: a mapped libmmsb.so*, or the executable if it carries the probes. */
static int target_lib_of_pid(int pid, char *out, size_t len)
{
	char **objs, exe[64];
	int n = proc_mapped_objects(pid, &objs);

	if (n < 0)
		return n;
	for (int i = 0; i < n; i++)
		if (strstr(objs[i], "libmmsb.so")) {
			snprintf(out, len, "%s", objs[i]);
			free_strv(objs, n);
			return 0;
		}
	free_strv(objs, n);
	snprintf(exe, sizeof(exe), "/proc/%d/exe", pid);
	ssize_t k = readlink(exe, out, len - 1);

	if (k > 0) {
		out[k] = 0;
		if (has_mmsb_probes(out))
			return 0;
	}
	return -ENOENT;
}

/* The file execvp will run for NAME: a path as given, else the first executable on $PATH. */
static int find_program(const char *name, char *out)
{
	const char *path = getenv("PATH");
	char cand[PATH_MAX];

	if (strchr(name, '/'))
		return realpath(name, out) ? 0 : -errno;
	if (!path)
		path = "/bin:/usr/bin"; /* execvp's default */
	while (path) {
		size_t dl = strcspn(path, ":");
		struct stat st;

		/* AT_EACCESS: checked with the ids the command will run with (the user's) */
		snprintf(cand, sizeof(cand), "%.*s/%s", (int)(dl ? dl : 1), dl ? path : ".", name);
		if (!faccessat(AT_FDCWD, cand, X_OK, AT_EACCESS) && !stat(cand, &st) &&
		    S_ISREG(st.st_mode) && realpath(cand, out))
			return 0;
		path = path[dl] ? path + dl + 1 : NULL;
	}
	return -ENOENT;
}

/*
 * The libmmsb CMD will load, found without running it (it would run as root, and a static
 * program simply runs under the dynamic linker's trace mode): the executable itself when it
 * carries the probes, else what its DT_NEEDED chain resolves to, else (a script, an interpreter
 * that loads libmmsb at run time) the one this tool runs with. Called as the invoking user.
 */
static int target_lib_of_cmd(char **argv, char *out, size_t len)
{
	char exe[PATH_MAX];
	const char *mine;

	if (!find_program(argv[0], exe)) {
		if (has_mmsb_probes(exe)) {
			snprintf(out, len, "%s", exe);
			return 0;
		}
		if (!elf_find_needed(exe, "libmmsb.so", out, len))
			return 0;
	}
	mine = own_libmmsb();
	if (mine && realpath(mine, out))
		return 0;
	return -ENOENT;
}

static int kinds_mask_of(const char *list, uint32_t *mask)
{
	char *copy, *tok, *save;

	*mask = 0;
	if (!list) {
		*mask = ~0u;
		return 0;
	}
	if (!strcmp(list, "none"))
		return 0;
	copy = strdup(list);
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int k = span_kind_of(tok);

		if (k < 0 && !strcmp(tok, "ffi_host")) {
			p_err("ffi_host is sampled, not a probed kind: use --host-sample");
			free(copy);
			return -EINVAL;
		}
		if (k < 0) {
			p_err("unknown span kind '%s' (see '%s help record')", tok, prog_name);
			free(copy);
			return -EINVAL;
		}
		*mask |= 1u << k;
	}
	free(copy);
	return 0;
}

struct kind_total {
	uint64_t count, total, self, min, max, hist[HIST_SLOTS];
	uint64_t pmu_total[MAX_PMU], pmu_self[MAX_PMU], pmu_count;
};

/* Counters of a span kind or stack as JSON: per event total, self, self per call; IPC if known. */
static struct json_object *pmu_json(const uint64_t *total, const uint64_t *self, uint64_t count)
{
	struct json_object *o = json_object_new_object();
	int cyc = -1, ins = -1;

	json_object_object_add(o, "spans_counted", json_object_new_uint64(count));
	for (int i = 0; i < ro.n_pmu; i++) {
		struct json_object *e = json_object_new_object();
		const char *c = ro.ev[i].canonical;

		if (total)
			json_object_object_add(e, "total", json_object_new_uint64(total[i]));
		json_object_object_add(e, "self", json_object_new_uint64(self[i]));
		json_object_object_add(
			e, "self_per_call",
			json_object_new_double(count ? (double)self[i] / (double)count : 0));
		json_object_object_add(o, ro.ev[i].name, e);
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

static uint64_t hist_quantile(const uint64_t *hist, uint64_t count, double q)
{
	uint64_t want = (uint64_t)(q * (double)count), seen = 0;

	if (!count)
		return 0;
	for (int i = 0; i < HIST_SLOTS; i++) {
		seen += hist[i];
		if (seen > want || (seen == count && seen))
			return 2ull
			       << i; /* the bucket's upper bound: slot i holds [2^i, 2^(i+1)) */
	}
	return 0;
}

static void fmt_dur(uint64_t ns, char *buf, size_t len)
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

/*
 * Frames of a stack id, root first, as names; returns the count. Each frame's file, build id and
 * offset go to locs, so the record can be symbolised again later, elsewhere.
 */
static int frames_of(int stacks_fd, int32_t id, struct syms *sy, char names[][256], int max,
		     struct json_object *locs)
{
	uint64_t ips[MAX_STACK_FRAMES] = { 0 };
	int n = 0, k = 0;

	if (id < 0 || bpf_map_lookup_elem(stacks_fd, &id, ips))
		return 0;
	while (n < MAX_STACK_FRAMES && ips[n])
		n++;
	for (int i = n - 1; i >= 0 && k < max; i--) {
		struct json_object *l = json_object_new_object();
		struct frame_loc fl;

		syms_name(sy, ips[i], names[k++], 256);
		if (syms_locate(sy, ips[i], &fl)) {
			json_object_object_add(l, "module", json_object_new_string(fl.module));
			json_object_object_add(
				l, "build_id",
				fl.build_id[0] ? json_object_new_string(fl.build_id) : NULL);
			json_object_object_add(l, "offset", json_object_new_uint64(fl.offset));
		} else {
			json_object_object_add(l, "address", json_object_new_uint64(ips[i]));
		}
		json_object_array_add(locs, l);
	}
	return k;
}

/* Index of a speedscope frame by name, adding it to the shared table the first time. */
static int intern_frame(struct json_object *tab, struct json_object *index, const char *name)
{
	struct json_object *idx, *fr;
	int at;

	if (json_object_object_get_ex(index, name, &idx))
		return json_object_get_int(idx);
	at = (int)json_object_array_length(tab);
	fr = json_object_new_object();
	json_object_object_add(fr, "name", json_object_new_string(name));
	json_object_array_add(tab, fr);
	json_object_object_add(index, name, json_object_new_int(at));
	return at;
}

/*
 * The event stream: each closed span as it happened. Written to the file as it arrives; the first
 * TIMELINE_MAX are also kept for the speedscope timeline (the rest counted as not kept).
 */
#define TIMELINE_MAX (1u << 19)

struct timeline {
	FILE *f;
	struct span_event *v;
	size_t n, cap;
	uint64_t streamed, not_kept;
	bool write_err;
};

static int on_event(void *ctx, void *data, size_t size)
{
	const struct span_event *e = data;
	struct timeline *tl = ctx;

	if (size < sizeof(*e))
		return 0;
	tl->streamed++;
	if (fprintf(tl->f,
		    "{\"start_ns\":%llu,\"dur_ns\":%llu,\"self_ns\":%llu,\"tid\":%u,"
		    "\"kind\":\"%s\",\"depth\":%u,\"stack_id\":%d}\n",
		    (unsigned long long)e->start_ns, (unsigned long long)e->dur_ns,
		    (unsigned long long)e->self_ns, e->tid,
		    e->kind < SPAN_KINDS ? spans[e->kind].name : "?", e->depth, e->stack_id) < 0)
		tl->write_err = true;
	if (tl->n == tl->cap) {
		size_t cap = tl->cap ? 2 * tl->cap : 4096;
		struct span_event *nv =
			cap <= TIMELINE_MAX ? realloc(tl->v, cap * sizeof(*nv)) : NULL;

		if (!nv) {
			tl->not_kept++;
			return 0;
		}
		tl->v = nv;
		tl->cap = cap;
	}
	tl->v[tl->n++] = *e;
	return 0;
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
 * One evented speedscope profile per thread: its spans as a timeline, opened and closed in
 * order. A span that would outlive its parent (a lost event can make one look so) is clamped to
 * the parent's end, so the opens and closes always nest as the format requires.
 */
static void timeline_profiles(struct timeline *tl, struct json_object *profs,
			      struct json_object *tab, struct json_object *index)
{
	uint64_t t0 = UINT64_MAX, open_end[MAX_SPAN_DEPTH + 1];
	int open_frame[MAX_SPAN_DEPTH + 1];

	qsort(tl->v, tl->n, sizeof(*tl->v), cmp_event);
	for (size_t i = 0; i < tl->n; i++)
		if (tl->v[i].start_ns < t0)
			t0 = tl->v[i].start_ns;
	for (size_t i = 0; i < tl->n;) {
		struct json_object *p = json_object_new_object(), *evs = json_object_new_array();
		uint32_t tid = tl->v[i].tid;
		uint64_t first = tl->v[i].start_ns - t0, last = first;
		char name[64];
		int depth = 0;

		for (; i < tl->n && tl->v[i].tid == tid; i++) {
			const struct span_event *e = &tl->v[i];
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
			snprintf(leaf, sizeof(leaf), "mmsb:%s",
				 e->kind < SPAN_KINDS ? spans[e->kind].name : "?");
			open_frame[depth] = intern_frame(tab, index, leaf);
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
		json_object_array_add(profs, p);
	}
}

/* The table on stdout, unless a profile leaves it out (its files are still written). */
static void tprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void tprintf(const char *fmt, ...)
{
	va_list ap;

	if (ro.no_table)
		return;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
}

struct report {
	struct mmsb_trace_bpf *skel;
	struct syms *syms;
	uint64_t wall_ns;
	int pid;
	char **cmd;
	const char *lib;
	uint64_t counters[CNT_MAX];
	uint64_t window_ns;	 /* first span begin to last span end: the traced window */
	struct timeline *tl;	 /* NULL without -e */
	struct host_report host; /* --host-sample */
	struct trace_features features;
	int untraced; /* other processes of the command's tree that used libmmsb */
};

/* A JSON document into its output file, then the file into place. */
static int write_json(struct out_file *o, struct json_object *j, int flags)
{
	const char *s = json_object_to_json_string_ext(j, flags | JSON_C_TO_STRING_NOSLASHESCAPE);

	if (!s || fputs(s, o->f) < 0 || fputc('\n', o->f) < 0) {
		p_err("%s: %s", o->path, s ? strerror(errno) : "cannot serialise the report");
		out_discard(o);
		return -1;
	}
	return out_close(o);
}

/* --host-sample's figures and frames, for the JSON report */
static struct json_object *host_json(const struct report *rp, uint64_t period)
{
	static const char *const cls[] = { [HOST_FFI] = "ffi_host", [HOST_OTHER] = "host_own" };
	const uint64_t *c = rp->counters;
	struct json_object *o = json_object_new_object(), *fr = json_object_new_array();

	json_object_object_add(o, "hz", json_object_new_uint64(ro.host_hz));
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
			struct json_object *f;

			if (!rp->host.f[i].samples[k])
				continue;
			f = json_object_new_object();
			json_object_object_add(f, "class", json_object_new_string(cls[k]));
			json_object_object_add(f, "module",
					       json_object_new_string(rp->host.f[i].module));
			json_object_object_add(f, "function",
					       json_object_new_string(rp->host.f[i].symbol));
			json_object_object_add(f, "samples",
					       json_object_new_uint64(rp->host.f[i].samples[k]));
			json_object_object_add(
				f, "ns", json_object_new_uint64(rp->host.f[i].samples[k] * period));
			json_object_array_add(fr, f);
		}
	}
	json_object_object_add(o, "frames", fr);
	return o;
}

static int write_outputs(struct report *rp)
{
	int stats_fd = bpf_map__fd(rp->skel->maps.span_stats);
	int stacks_fd = bpf_map__fd(rp->skel->maps.user_stacks);
	struct kind_total kt[SPAN_KINDS] = { 0 };
	struct span_key key, next, *prev = NULL;
	struct json_object *jstacks = json_object_new_array();
	FILE *folded = ro.out[OUT_FOLDED].f;
	static char names[MAX_STACK_FRAMES][256];
	struct json_object *frames_tab = json_object_new_array(),
			   *samples = json_object_new_array(), *weights = json_object_new_array();
	struct json_object *frame_index = json_object_new_object();
	uint64_t hits = rp->counters[CNT_HITS], self_sum = 0;
	int ret = EXIT_OK;

	while (!bpf_map_get_next_key(stats_fd, prev, &next)) {
		struct span_stats v;
		int nf;

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(stats_fd, &key, &v) || key.kind >= SPAN_KINDS)
			continue;
		struct kind_total *t = &kt[key.kind];

		t->count += v.count;
		t->total += v.total_ns;
		t->self += v.self_ns;
		if (!t->min || (v.min_ns && v.min_ns < t->min))
			t->min = v.min_ns;
		if (v.max_ns > t->max)
			t->max = v.max_ns;
		for (int i = 0; i < HIST_SLOTS; i++)
			t->hist[i] += v.hist[i];
		for (int i = 0; i < MAX_PMU; i++) {
			t->pmu_total[i] += v.pmu_total[i];
			t->pmu_self[i] += v.pmu_self[i];
		}
		t->pmu_count += v.pmu_count;
		self_sum += v.self_ns;

		struct json_object *jlocs = json_object_new_array();

		nf = frames_of(stacks_fd, key.stack_id, rp->syms, names, MAX_STACK_FRAMES - 13,
			       jlocs);
		/* then the spans around this one, outermost first */
		int kinds[13], nk = 0;

		for (uint64_t ch = key.chain; ch && nk < 13; ch >>= 5)
			kinds[nk++] = (int)(ch & 31) - 1;
		for (int i = nk - 1; i >= 0; i--)
			snprintf(names[nf++], 256, "mmsb:%s",
				 kinds[i] >= 0 && kinds[i] < SPAN_KINDS ? spans[kinds[i]].name :
									  "?");
		struct json_object *js = json_object_new_object(), *jf = json_object_new_array();
		struct json_object *sample = json_object_new_array();

		for (int i = 0; i < nf; i++) {
			json_object_array_add(jf, json_object_new_string(names[i]));
			json_object_array_add(sample, json_object_new_int(intern_frame(
							      frames_tab, frame_index, names[i])));
		}
		/* the span kind is the leaf frame */
		char leaf[64];

		snprintf(leaf, sizeof(leaf), "mmsb:%s", spans[key.kind].name);
		json_object_array_add(
			sample, json_object_new_int(intern_frame(frames_tab, frame_index, leaf)));
		if (v.self_ns) {
			json_object_array_add(samples, sample);
			json_object_array_add(weights, json_object_new_uint64(v.self_ns));
		} else {
			json_object_put(sample);
		}
		if (folded && v.self_ns) {
			if (!nf)
				fputs("[no stack];", folded);
			for (int i = 0; i < nf; i++)
				fprintf(folded, "%s;", names[i]);
			fprintf(folded, "%s %llu\n", leaf, (unsigned long long)v.self_ns);
		}
		json_object_object_add(js, "kind", json_object_new_string(spans[key.kind].name));
		json_object_object_add(js, "stack_id", json_object_new_int(key.stack_id));
		json_object_object_add(js, "depth", json_object_new_int(nk));
		json_object_object_add(js, "frames", jf);
		json_object_object_add(js, "locations", jlocs);
		json_object_object_add(js, "calls", json_object_new_uint64(v.count));
		json_object_object_add(js, "total_ns", json_object_new_uint64(v.total_ns));
		json_object_object_add(js, "self_ns", json_object_new_uint64(v.self_ns));
		if (ro.n_pmu)
			json_object_object_add(
				js, "pmu",
				pmu_json(NULL, (const uint64_t *)v.pmu_self, v.pmu_count));
		json_object_array_add(jstacks, js);
	}
	/* the host's side, sampled: ffi_host, then the module, then the function */
	uint64_t period = ro.host_hz ? 1000000000ull / ro.host_hz : 0;
	uint64_t host_ns = rp->host.samples[HOST_FFI] * period;

	for (int i = 0; i < rp->host.n; i++) {
		const struct host_frame *hf = &rp->host.f[i];
		uint64_t ns = hf->samples[HOST_FFI] * period;
		struct json_object *sample;

		if (!ns)
			continue;
		sample = json_object_new_array();
		json_object_array_add(sample, json_object_new_int(intern_frame(
						      frames_tab, frame_index, "mmsb:ffi_host")));
		json_object_array_add(sample, json_object_new_int(intern_frame(
						      frames_tab, frame_index, hf->module)));
		json_object_array_add(sample, json_object_new_int(intern_frame(
						      frames_tab, frame_index, hf->symbol)));
		json_object_array_add(samples, sample);
		json_object_array_add(weights, json_object_new_uint64(ns));
		if (folded)
			fprintf(folded, "mmsb:ffi_host;%s;%s %" PRIu64 "\n", hf->module, hf->symbol,
				ns);
	}
	self_sum += host_ns;
	if (out_close(&ro.out[OUT_FOLDED]))
		ret = EXIT_FAIL;

	/* the table */
	char w[32], ov[32];
	uint64_t overhead = hits * ro.hit_ns;

	fmt_dur(rp->wall_ns, w, sizeof(w));
	fmt_dur(overhead, ov, sizeof(ov));
	tprintf("mmsb-trace: %s traced in process %d, %" PRIu64
		" probe hits, estimated probe cost %s "
		"(%.1f%% of the wall time, at %" PRIu64 " ns a hit)\n\n",
		w, rp->pid, hits, ov,
		rp->wall_ns ? 100.0 * (double)overhead / (double)rp->wall_ns : 0, ro.hit_ns);
	tprintf("%-16s %-12s %10s %11s %11s %7s %9s %9s\n", "SPAN", "CATEGORY", "CALLS", "TOTAL",
		"SELF", "SELF%", "P50<=", "P99<=");
	struct json_object *jkinds = json_object_new_array();

	for (int k = 0; k < SPAN_KINDS; k++) {
		char tot[32], self[32], p50[32], p99[32];
		struct kind_total *t = &kt[k];

		if (!t->count)
			continue;
		fmt_dur(t->total, tot, sizeof(tot));
		fmt_dur(t->self, self, sizeof(self));
		fmt_dur(hist_quantile(t->hist, t->count, 0.5), p50, sizeof(p50));
		fmt_dur(hist_quantile(t->hist, t->count, 0.99), p99, sizeof(p99));
		tprintf("%-16s %-12s %10" PRIu64 " %11s %11s %6.1f%% %9s %9s\n", spans[k].name,
			spans[k].category, t->count, tot, self,
			rp->wall_ns ? 100.0 * (double)t->self / (double)rp->wall_ns : 0, p50, p99);
		struct json_object *jk = json_object_new_object(), *jh = json_object_new_array();

		json_object_object_add(jk, "kind", json_object_new_string(spans[k].name));
		json_object_object_add(jk, "category", json_object_new_string(spans[k].category));
		json_object_object_add(jk, "calls", json_object_new_uint64(t->count));
		json_object_object_add(jk, "total_ns", json_object_new_uint64(t->total));
		json_object_object_add(jk, "self_ns", json_object_new_uint64(t->self));
		json_object_object_add(jk, "min_ns", json_object_new_uint64(t->min));
		json_object_object_add(jk, "max_ns", json_object_new_uint64(t->max));
		json_object_object_add(
			jk, "p50_ns",
			json_object_new_uint64(hist_quantile(t->hist, t->count, 0.5)));
		json_object_object_add(
			jk, "p99_ns",
			json_object_new_uint64(hist_quantile(t->hist, t->count, 0.99)));
		json_object_object_add(
			jk, "self_share",
			json_object_new_double(rp->wall_ns ? (double)t->self / (double)rp->wall_ns :
							     0));
		for (int i = 0; i < HIST_SLOTS; i++)
			json_object_array_add(jh, json_object_new_uint64(t->hist[i]));
		json_object_object_add(jk, "log2_hist", jh);
		if (ro.n_pmu)
			json_object_object_add(jk, "pmu",
					       pmu_json(t->pmu_total, t->pmu_self, t->pmu_count));
		json_object_array_add(jkinds, jk);
	}
	if (ro.host_hz) {
		char self[32];
		struct json_object *jk = json_object_new_object();

		fmt_dur(host_ns, self, sizeof(self));
		tprintf("%-16s %-12s %10" PRIu64 " %11s %11s %6.1f%% %9s %9s\n", "ffi_host",
			"ffi host", rp->counters[CNT_CROSSINGS], self, self,
			rp->wall_ns ? 100.0 * (double)host_ns / (double)rp->wall_ns : 0, "-", "-");
		json_object_object_add(jk, "kind", json_object_new_string("ffi_host"));
		json_object_object_add(jk, "category", json_object_new_string("ffi host"));
		json_object_object_add(jk, "sampled", json_object_new_boolean(true));
		json_object_object_add(jk, "calls",
				       json_object_new_uint64(rp->counters[CNT_CROSSINGS]));
		json_object_object_add(jk, "total_ns", json_object_new_uint64(host_ns));
		json_object_object_add(jk, "self_ns", json_object_new_uint64(host_ns));
		json_object_object_add(
			jk, "self_share",
			json_object_new_double(rp->wall_ns ? (double)host_ns / (double)rp->wall_ns :
							     0));
		json_object_array_add(jkinds, jk);
	}
	if (ro.n_pmu) {
		/* the counters, per call of each kind (self: the nested spans' counts taken out) */
		tprintf("\n%-16s", "SPAN (self/call)");
		for (int i = 0; i < ro.n_pmu; i++)
			tprintf(" %22.22s", ro.ev[i].name);
		tprintf("\n");
		for (int k = 0; k < SPAN_KINDS; k++) {
			struct kind_total *t = &kt[k];

			if (!t->count)
				continue;
			tprintf("%-16s", spans[k].name);
			for (int i = 0; i < ro.n_pmu; i++)
				tprintf(" %22.2f", t->pmu_count ? (double)t->pmu_self[i] /
									  (double)t->pmu_count :
								  0.0);
			tprintf("\n");
		}
	}
	static const char *const cnt_names[CNT_MAX] = {
		"overflow", "unmatched",  "abandoned",	 "stack_errors", "events_dropped",
		"hits",	    "stats_full", "pmu_skipped", "host_other",	 "reserved",
	};

	if (rp->window_ns)
		tprintf("\nself time attributed: %.1f%% of the wall time, %.1f%% of the span window; "
			"overflow %" PRIu64 ", unmatched ends %" PRIu64 ", abandoned %" PRIu64
			", stack errors %" PRIu64 ", not aggregated (map full) %" PRIu64 "\n",
			rp->wall_ns ? 100.0 * (double)self_sum / (double)rp->wall_ns : 0,
			100.0 * (double)self_sum / (double)rp->window_ns,
			rp->counters[CNT_OVERFLOW], rp->counters[CNT_UNMATCHED],
			rp->counters[CNT_ABANDONED], rp->counters[CNT_STACK_ERR],
			rp->counters[CNT_STATS_FULL]);
	else
		tprintf("\nself time attributed: %.1f%% of the wall time (no span probes)\n",
			rp->wall_ns ? 100.0 * (double)self_sum / (double)rp->wall_ns : 0);
	if (ro.host_hz) {
		const uint64_t *c = rp->counters;
		uint64_t classified = rp->host.samples[HOST_FFI] + rp->host.samples[HOST_OTHER];
		uint64_t unclassified =
			c[CNT_SMP_HOST] > classified ? c[CNT_SMP_HOST] - classified : 0;

		tprintf("host samples every %" PRIu64 " ns on each CPU: %" PRIu64
			" host with a crossing since the thread's previous sample (ffi_host, %.0f ns a "
			"crossing), %" PRIu64 " host without (its own work), %" PRIu64
			" in API calls, %" PRIu64 " kernel mode outside them, %" PRIu64
			" before the thread's first crossing, %" PRIu64 " unattributed\n",
			period, rp->host.samples[HOST_FFI],
			c[CNT_CROSSINGS] ? (double)host_ns / (double)c[CNT_CROSSINGS] : 0,
			rp->host.samples[HOST_OTHER], c[CNT_SMP_SPAN], c[CNT_SMP_KERNEL],
			c[CNT_SMP_EARLY], c[CNT_SMP_LOST] + unclassified);
	}
	if (rp->tl)
		tprintf("events: %" PRIu64 " streamed to %s, %" PRIu64
			" dropped (ring buffer full)%s\n",
			rp->tl->streamed, ro.events, rp->counters[CNT_EVENTS_DROPPED],
			rp->tl->not_kept ? "; the speedscope timeline holds the first 524288" : "");

	if (ro.json_out) {
		struct json_object *o = json_object_new_object(), *c = json_object_new_object();
		struct json_object *tgt = json_object_new_object();

		json_object_object_add(o, "tool", json_object_new_string("mmsb-trace 0.1.0"));
		json_object_object_add(o, "libmmsb", json_object_new_string(mmsb_version()));
		json_object_object_add(tgt, "pid", json_object_new_int(rp->pid));
		json_object_object_add(tgt, "library", json_object_new_string(rp->lib));
		if (rp->cmd) {
			struct json_object *a = json_object_new_array();

			for (char **p = rp->cmd; *p; p++)
				json_object_array_add(a, json_object_new_string(*p));
			json_object_object_add(tgt, "command", a);
		}
		if (rp->cmd)
			json_object_object_add(tgt, "untraced_processes",
					       json_object_new_int(rp->untraced));
		json_object_object_add(o, "target", tgt);
		json_object_object_add(o, "wall_ns", json_object_new_uint64(rp->wall_ns));
		json_object_object_add(o, "span_window_ns", json_object_new_uint64(rp->window_ns));
		json_object_object_add(o, "hits", json_object_new_uint64(hits));
		json_object_object_add(o, "hit_cost_ns", json_object_new_uint64(ro.hit_ns));
		json_object_object_add(o, "estimated_overhead_ns",
				       json_object_new_uint64(overhead));
		json_object_object_add(o, "self_ns_sum", json_object_new_uint64(self_sum));
		for (int i = 0; i <= CNT_HOST_OTHER; i++)
			json_object_object_add(c, cnt_names[i],
					       json_object_new_uint64(rp->counters[i]));
		json_object_object_add(c, "crossings",
				       json_object_new_uint64(rp->counters[CNT_CROSSINGS]));
		json_object_object_add(o, "counters", c);
		if (ro.host_hz)
			json_object_object_add(o, "host_sampling", host_json(rp, period));
		json_object_object_add(o, "features", features_json(&rp->features));
		if (rp->tl) {
			struct json_object *ev = json_object_new_object();

			json_object_object_add(ev, "file", json_object_new_string(ro.events));
			json_object_object_add(ev, "streamed",
					       json_object_new_uint64(rp->tl->streamed));
			json_object_object_add(
				ev, "dropped",
				json_object_new_uint64(rp->counters[CNT_EVENTS_DROPPED]));
			json_object_object_add(ev, "timeline_not_kept",
					       json_object_new_uint64(rp->tl->not_kept));
			json_object_object_add(o, "events", ev);
		}
		json_object_object_add(
			o, "stack_mode",
			json_object_new_string(ro.stack_mode == STACKS_ALL  ? "all" :
					       ro.stack_mode == STACKS_NONE ? "none" :
									      "outer"));
		json_object_object_add(o, "kinds", jkinds);
		json_object_object_add(o, "stacks", jstacks);
		jkinds = jstacks = NULL;
		if (write_json(&ro.out[OUT_JSON], o,
			       JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED))
			ret = EXIT_FAIL;
		json_object_put(o);
	}
	if (ro.speedscope) {
		struct json_object *o = json_object_new_object(),
				   *shared = json_object_new_object();
		struct json_object *prof = json_object_new_object(),
				   *profs = json_object_new_array();
		uint64_t end = 0;

		for (size_t i = 0; i < json_object_array_length(weights); i++)
			end += json_object_get_uint64(json_object_array_get_idx(weights, i));
		json_object_object_add(
			o, "$schema",
			json_object_new_string(
				"https://www.speedscope.app/file-format-schema.json"));
		json_object_object_add(shared, "frames", frames_tab);
		json_object_object_add(o, "shared", shared);
		json_object_object_add(prof, "type", json_object_new_string("sampled"));
		json_object_object_add(prof, "name", json_object_new_string("libmmsb self time"));
		json_object_object_add(prof, "unit", json_object_new_string("nanoseconds"));
		json_object_object_add(prof, "startValue", json_object_new_int(0));
		json_object_object_add(prof, "endValue", json_object_new_uint64(end));
		json_object_object_add(prof, "samples", samples);
		json_object_object_add(prof, "weights", weights);
		json_object_array_add(profs, prof);
		if (rp->tl)
			timeline_profiles(rp->tl, profs, frames_tab, frame_index);
		json_object_object_add(o, "profiles", profs);
		json_object_object_add(o, "name", json_object_new_string("mmsb-trace"));
		json_object_object_add(o, "activeProfileIndex", json_object_new_int(0));
		json_object_object_add(o, "exporter", json_object_new_string("mmsb-trace 0.1.0"));
		frames_tab = samples = weights = NULL;
		if (write_json(&ro.out[OUT_SPEEDSCOPE], o, JSON_C_TO_STRING_PLAIN))
			ret = EXIT_FAIL;
		json_object_put(o);
	}
	json_object_put(jkinds);
	json_object_put(jstacks);
	json_object_put(frames_tab);
	json_object_put(samples);
	json_object_put(weights);
	json_object_put(frame_index);
	return ret;
}

/* Attach both ends of every wanted span kind. */
static int attach_all(struct mmsb_trace_bpf *skel, int pid, const char *lib, uint32_t mask,
		      struct bpf_link **links, int *n_links)
{
	struct usdt_note *notes;
	int nn = usdt_notes_read(lib, &notes);

	if (nn < 0) {
		p_err("%s: %s", lib, strerror(-nn));
		return -1;
	}
	*n_links = 0;
	for (int k = 0; k < SPAN_KINDS; k++) {
		if (!(mask & (1u << k)) || k == SPAN_HOST)
			continue;
		for (int end = 0; end < 2; end++) {
			const char *name = end ? spans[k].end : spans[k].begin;
			bool present = false;

			for (int i = 0; i < nn && !present; i++)
				present = !strcmp(notes[i].provider, "mmsb") &&
					  !strcmp(notes[i].name, name);
			if (!present)
				continue; /* an older library without this probe */
			LIBBPF_OPTS(bpf_usdt_opts, uo, .usdt_cookie = (uint64_t)k);
			struct bpf_link *l = bpf_program__attach_usdt(end ? skel->progs.span_end :
									    skel->progs.span_begin,
								      pid, lib, "mmsb", name, &uo);

			if (!l) {
				p_err("attach mmsb:%s in %s: %s", name, lib, strerror(errno));
				free(notes);
				return -1;
			}
			links[(*n_links)++] = l;
		}
	}
	free(notes);
	if (!*n_links && mask) {
		p_err("%s: no mmsb probes (built with PROBES=0?)", lib);
		return -1;
	}
	return 0;
}

/* The profile's settings, where the command line did not say otherwise. */
static int apply_profile(uint32_t *mask)
{
	static const char *const files[] = {
		[PROFILE_OUT_JSON] = "trace.json",
		[PROFILE_OUT_FOLDED] = "trace.folded",
		[PROFILE_OUT_SPEEDSCOPE] = "trace.speedscope.json",
		[PROFILE_OUT_TABLE] =
			"trace.events.ndjson", /* the table has no file: events use it */
	};
	const char *dir = ro.out_dir ? ro.out_dir : ".";
	struct trace_profile p;

	if (profile_load(ro.profile, &p))
		return -1;
	if (ro.out_dir && out_mkdir(ro.out_dir))
		return -1;
	if (!ro.kinds)
		*mask = p.kinds_mask;
	if (!ro.stacks_set)
		ro.stack_mode = p.stack_mode;
	if (!ro.duration && p.duration)
		ro.duration = (double)p.duration;
	ro.no_table = !(p.outputs & (1u << PROFILE_OUT_TABLE));
	for (int i = 0; i < 4; i++)
		snprintf(ro.paths[i], sizeof(ro.paths[i]), "%s/%s", dir, files[i]);
	if (!ro.json_out && (p.outputs & (1u << PROFILE_OUT_JSON)))
		ro.json_out = ro.paths[PROFILE_OUT_JSON];
	if (!ro.folded && (p.outputs & (1u << PROFILE_OUT_FOLDED)))
		ro.folded = ro.paths[PROFILE_OUT_FOLDED];
	if (!ro.speedscope && (p.outputs & (1u << PROFILE_OUT_SPEEDSCOPE)))
		ro.speedscope = ro.paths[PROFILE_OUT_SPEEDSCOPE];
	if (!ro.events && p.events)
		ro.events = ro.paths[PROFILE_OUT_TABLE];
	if (!ro.host_hz)
		ro.host_hz = p.host_hz;
	if (!ro.pmu && p.pmu[0]) {
		snprintf(ro.profile_pmu, sizeof(ro.profile_pmu), "%s", p.pmu);
		ro.pmu = ro.profile_pmu;
	}
	return 0;
}

/*
 * The libffi a host calls libmmsb through: the one the target maps, else the system's (a ctypes
 * host loads it only when it imports ctypes; uprobes on its file catch it when it does).
 */
static bool libffi_of(int pid, char *out, size_t len)
{
	char **objs;
	Dl_info info;
	void *h, *sym;
	int n = pid ? proc_mapped_objects(pid, &objs) : -1;

	for (int i = 0; i < n; i++)
		if (strstr(objs[i], "/libffi.so")) {
			snprintf(out, len, "%s", objs[i]);
			free_strv(objs, n);
			return true;
		}
	if (n >= 0)
		free_strv(objs, n);
	h = dlopen("libffi.so.8", RTLD_LAZY | RTLD_LOCAL);
	if (!h)
		h = dlopen("libffi.so.7", RTLD_LAZY | RTLD_LOCAL);
	sym = h ? dlsym(h, "ffi_call") : NULL;
	if (!sym || !dladdr(sym, &info) || !info.dli_fname || !realpath(info.dli_fname, out)) {
		if (h)
			dlclose(h);
		return false;
	}
	dlclose(h);
	return true;
}

/* Which libmmsb PID maps: 1 the one we attached to, 2 another (its path in other), 0 none. */
static int maps_libmmsb(int pid, const char *lib, char *other, size_t len)
{
	char **objs;
	int n = proc_mapped_objects(pid, &objs), found = 0;

	for (int i = 0; i < n && found != 1; i++) {
		if (!strcmp(objs[i], lib)) {
			found = 1;
		} else if (strstr(objs[i], "libmmsb.so")) {
			snprintf(other, len, "%s", objs[i]);
			found = 2;
		}
	}
	if (n >= 0)
		free_strv(objs, n);
	return found;
}

/*
 * The command's process tree, under ptrace only where tracing needs a stop: the exec (the probes
 * go in before main runs), the main process's exit (its maps still there, for the symbols) and
 * its descendants' exits (did they use libmmsb? BPF follows the one process). Seized, not
 * PTRACE_TRACEME'd: PTRACE_INTERRUPT can stop a running tracee to detach, so -d and Ctrl-C end
 * the tracing and never the command.
 */
struct tree {
	pid_t main;
	int main_status;
	bool main_exiting, main_gone;
	pid_t pids[1024]; /* the descendants being followed */
	int n;
	int untraced; /* of those, the processes that mapped libmmsb */
	pid_t first_untraced;
	const char *lib;
};

static bool tree_add(struct tree *t, pid_t pid)
{
	for (int i = 0; i < t->n; i++)
		if (t->pids[i] == pid)
			return true;
	if (t->n == (int)(sizeof(t->pids) / sizeof(t->pids[0])))
		return false;
	t->pids[t->n++] = pid;
	return true;
}

static void tree_del(struct tree *t, pid_t pid)
{
	for (int i = 0; i < t->n; i++)
		if (t->pids[i] == pid) {
			t->pids[i] = t->pids[--t->n];
			return;
		}
}

/* A descendant about to exit or be let go: count it if it used libmmsb. */
static void tree_check(struct tree *t, pid_t pid)
{
	char other[PATH_MAX];

	if (pid != t->main && maps_libmmsb(pid, t->lib, other, sizeof(other)) && !t->untraced++)
		t->first_untraced = pid;
}

/* Resume a tracee from a stop as if it were not traced. */
static void tree_resume(pid_t pid, int status)
{
	int sig = WSTOPSIG(status), ev = status >> 16;

	if (ev == PTRACE_EVENT_STOP) {
		/* a group-stop (job control) stays stopped; a new child's first stop goes on */
		if (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU)
			ptrace(PTRACE_LISTEN, pid, NULL, NULL);
		else
			ptrace(PTRACE_CONT, pid, NULL, NULL);
	} else {
		/* an event (fork, exec, exit) carries no signal; a signal stop delivers its signal */
		ptrace(PTRACE_CONT, pid, NULL, (void *)(long)(ev ? 0 : sig));
	}
}

/* One ptrace stop or death in the tree; false when the main process is done with. */
static bool tree_event(struct tree *t, pid_t w, int status)
{
	int ev = status >> 16;

	if (!WIFSTOPPED(status)) {
		if (w != t->main) {
			tree_del(t, w);
			return true;
		}
		t->main_status = status;
		t->main_gone = true;
		return false;
	}
	if (w != t->main && !tree_add(t, w)) {
		/* more descendants than we can follow: let this one go */
		ptrace(PTRACE_DETACH, w, NULL, NULL);
		return true;
	}
	if (ev == PTRACE_EVENT_FORK || ev == PTRACE_EVENT_VFORK) {
		unsigned long child;

		if (!ptrace(PTRACE_GETEVENTMSG, w, NULL, &child) && !tree_add(t, (pid_t)child))
			ptrace(PTRACE_DETACH, (pid_t)child, NULL, NULL);
	} else if (ev == PTRACE_EVENT_EXIT && w == t->main) {
		t->main_exiting = true;
		return false; /* stays stopped: the caller reads its maps, then lets it go */
	} else if (ev == PTRACE_EVENT_EXIT) {
		tree_check(t, w);
	}
	tree_resume(w, status);
	return true;
}

/*
 * Stop PID wherever it runs and detach from it, passing on a signal it was stopped for. A tracee
 * that does not stop within two seconds (blocked in the kernel) is left to the kernel, which
 * detaches every tracee of ours when we exit: it goes on then.
 */
static void tree_detach(struct tree *t, pid_t pid)
{
	int status;

	if (ptrace(PTRACE_INTERRUPT, pid, NULL, NULL))
		return; /* gone already */
	for (int waited = 0; waited < 2000; waited++) {
		pid_t w = waitpid(pid, &status, __WALL | WNOHANG);

		if (w == 0) {
			usleep(1000);
			continue;
		}
		if (w != pid)
			return;
		if (!WIFSTOPPED(status)) {
			if (pid == t->main) {
				t->main_status = status;
				t->main_gone = true;
			}
			return;
		}
		if ((status >> 16) == PTRACE_EVENT_FORK || (status >> 16) == PTRACE_EVENT_VFORK) {
			unsigned long child;

			/* its new child is ours too until let go */
			if (!ptrace(PTRACE_GETEVENTMSG, pid, NULL, &child))
				tree_add(t, (pid_t)child);
		}
		tree_check(t, pid);
		ptrace(PTRACE_DETACH, pid, NULL,
		       (void *)(long)((status >> 16) ? 0 : WSTOPSIG(status)));
		return;
	}
}

/*
 * Let every process of the tree go on untraced, the newest first: a parent blocked in vfork()
 * reaches no stop until its child has been let go to exec. The main process last, unless it is
 * at its exit stop already.
 */
static void tree_release(struct tree *t)
{
	if (t->main_exiting)
		ptrace(PTRACE_DETACH, t->main, NULL, NULL);
	while (t->n) {
		pid_t pid = t->pids[t->n - 1];

		tree_detach(t, pid);
		tree_del(t, pid);
	}
	if (!t->main_exiting && !t->main_gone)
		tree_detach(t, t->main);
}

/*
 * Start CMD seized, stopped at its exec: 0 and the pid, or the command's own exit status when it
 * could not start (126 or 127, as a shell says; the child printed why).
 */
static int start_command(char **cmd, struct tree *t)
{
	int go[2], status;
	pid_t child;
	char b = 0;

	if (pipe2(go, O_CLOEXEC)) {
		p_err("pipe: %s", strerror(errno));
		return -1;
	}
	child = fork();
	if (child < 0) {
		p_err("fork: %s", strerror(errno));
		close(go[0]);
		close(go[1]);
		return -1;
	}
	if (!child) {
		int err;

		close(go[1]);
		/* no exec before the parent holds us: the exec must be a traced stop */
		if (read(go[0], &b, 1) != 1)
			_exit(126);
		/* under sudo the command is the user's, never root's, unless --as-root */
		if (!ro.as_root && (err = drop_to_invoker())) {
			fprintf(stderr, "%s: cannot run %s as the invoking user: %s\n", prog_name,
				cmd[0], strerror(-err));
			_exit(126);
		}
		execvp(cmd[0], cmd);
		err = errno;
		fprintf(stderr, "%s: %s: %s\n", prog_name, cmd[0], strerror(err));
		_exit(err == ENOENT ? 127 : 126);
	}
	close(go[0]);
	t->main = child;
	if (ptrace(PTRACE_SEIZE, child, NULL,
		   (void *)(long)(PTRACE_O_TRACEEXEC | PTRACE_O_TRACEEXIT | PTRACE_O_TRACEFORK |
				  PTRACE_O_TRACEVFORK))) {
		p_err("ptrace %s: %s", cmd[0], strerror(errno));
		close(go[1]); /* the child reads end of file and leaves without running CMD */
		waitpid(child, &status, 0);
		t->main_gone = true;
		return -1;
	}
	if (write(go[1], "g", 1) != 1) {
		p_err("start %s: %s", cmd[0], strerror(errno));
		close(go[1]);
		kill(child, SIGKILL);
		waitpid(child, &status, 0);
		t->main_gone = true;
		return -1;
	}
	close(go[1]);
	for (;;) {
		if (waitpid(child, &status, __WALL) != child) {
			if (errno == EINTR)
				continue;
			p_err("%s did not start: %s", cmd[0], strerror(errno));
			return -1;
		}
		if (!WIFSTOPPED(status)) {
			t->main_gone = true;
			if (WIFSIGNALED(status))
				return 128 + WTERMSIG(status);
			return WEXITSTATUS(status) ? WEXITSTATUS(status) : 126;
		}
		if ((status >> 16) == PTRACE_EVENT_EXEC)
			return 0;
		tree_resume(child, status);
	}
}

/* The command's end as a shell reports it: the status to exit with, a line for a signal. */
static int command_status(const char *name, int status)
{
	int sig;

	if (WIFEXITED(status)) {
		if (WEXITSTATUS(status))
			fprintf(stderr, "%s: %s exited with status %d\n", prog_name, name,
				WEXITSTATUS(status));
		return WEXITSTATUS(status);
	}
	sig = WTERMSIG(status);
	/* as bash: an interrupt or a broken pipe is what the user did, no news */
	if (sig != SIGINT && sig != SIGPIPE)
		fprintf(stderr, "%s: %s: %s%s\n", prog_name, name, strsignal(sig),
			WCOREDUMP(status) ? " (core dumped)" : "");
	return 128 + sig;
}

int do_record(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "duration", required_argument, NULL, 'd' },
		{ "lib", required_argument, NULL, 'l' },
		{ "kinds", required_argument, NULL, 'k' },
		{ "folded", required_argument, NULL, 'f' },
		{ "json", required_argument, NULL, 'J' },
		{ "speedscope", required_argument, NULL, 's' },
		{ "events", required_argument, NULL, 'e' },
		{ "profile", required_argument, NULL, 'P' },
		{ "output-dir", required_argument, NULL, 'o' },
		{ "stacks", required_argument, NULL, 1 },
		{ "hit-cost", required_argument, NULL, 2 },
		{ "as-root", no_argument, NULL, 3 },
		{ "pmu", required_argument, NULL, 4 },
		{ "host-sample", optional_argument, NULL, 5 },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct bpf_link *links[2 * SPAN_KINDS + 1] = { 0 };
	char lib[PATH_MAX], ffi_lib[PATH_MAX];
	struct report rp = { 0 };
	struct mmsb_trace_bpf *skel = NULL;
	struct ring_buffer *rb = NULL;
	struct timeline tl = { 0 };
	int nr_cpus = 1, *pmu_fds = NULL, n_host_links = 0;
	struct bpf_link **host_links = NULL, *host_reg = NULL;
	uint32_t mask;
	int c, n_links = 0, ret = EXIT_FAIL, status = 0;
	uint64_t t0, deadline = 0, last_maps = 0;
	struct tree tr = { 0 };
	bool started = false;
	char **cmd = NULL;

	memset(&ro, 0, sizeof(ro));
	ro.hit_ns = DEFAULT_HIT_NS;
	ro.stack_mode = STACKS_OUTER;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+p:d:l:k:f:J:s:e:P:o:h", opts, NULL)) != -1) {
		uint64_t v;

		switch (c) {
		case 'p':
			if (parse_u64(optarg, 1, 4194304, &ro.pid)) {
				p_err("invalid PID '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'd':
			if (parse_u64(optarg, 1, 86400 * 365, &v)) {
				p_err("invalid duration '%s' (whole seconds)", optarg);
				return EXIT_USAGE;
			}
			ro.duration = (double)v;
			break;
		case 'l':
			ro.lib = optarg;
			break;
		case 'k':
			ro.kinds = optarg;
			break;
		case 'f':
			ro.folded = optarg;
			break;
		case 'J':
			ro.json_out = optarg;
			break;
		case 's':
			ro.speedscope = optarg;
			break;
		case 'e':
			ro.events = optarg;
			break;
		case 'P':
			ro.profile = optarg;
			break;
		case 'o':
			ro.out_dir = optarg;
			break;
		case 1:
			if (!strcmp(optarg, "outer"))
				ro.stack_mode = STACKS_OUTER;
			else if (!strcmp(optarg, "all"))
				ro.stack_mode = STACKS_ALL;
			else if (!strcmp(optarg, "none"))
				ro.stack_mode = STACKS_NONE;
			else {
				p_err("--stacks takes outer, all or none, not '%s'", optarg);
				return EXIT_USAGE;
			}
			ro.stacks_set = true;
			break;
		case 2:
			if (parse_u64(optarg, 0, 1000000, &ro.hit_ns)) {
				p_err("invalid hit cost '%s' (ns)", optarg);
				return EXIT_USAGE;
			}
			break;
		case 3:
			ro.as_root = true;
			break;
		case 4:
			ro.pmu = optarg;
			break;
		case 5:
			ro.host_hz = DEFAULT_HOST_HZ;
			if (optarg && parse_u64(optarg, 1, 1000000, &ro.host_hz)) {
				p_err("invalid --host-sample rate '%s' (Hz)", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h':
			return record_help();
		default:
			return EXIT_USAGE;
		}
	}
	if (optind < argc && !strcmp(argv[optind], "--"))
		optind++;
	if (optind < argc)
		cmd = argv + optind;
	if (!!cmd == !!ro.pid) {
		p_err("record needs either -p PID or -- CMD [ARGS...]");
		return EXIT_USAGE;
	}
	if (kinds_mask_of(ro.kinds, &mask))
		return EXIT_USAGE;
	if (ro.out_dir && !ro.profile) {
		p_err("-o names where a profile's outputs go: use it with -P");
		return EXIT_USAGE;
	}
	if (ro.profile && apply_profile(&mask))
		return EXIT_FAIL;
	/* sampling the host alone: span probes would trap on every crossing and slow the host */
	if (ro.host_hz && !ro.kinds && !ro.profile)
		mask = 0;
	if (!mask && !ro.host_hz) {
		p_err("nothing to trace: no span kind (-k none) and no --host-sample");
		return EXIT_USAGE;
	}
	if (ro.pmu) {
		char why[320];

		if (pmu_resolve(ro.pmu, ro.ev, &ro.n_pmu, why, sizeof(why))) {
			p_err("--pmu: %s", why);
			return EXIT_USAGE;
		}
	}
	if (ro.host_hz) {
		char why[256];

		if (host_sample_check(ro.host_hz, why, sizeof(why))) {
			p_err("--host-sample: %s", why);
			return EXIT_USAGE;
		}
	}
	if (!have_bpf_caps()) {
		p_err("record needs CAP_BPF and CAP_PERFMON (or root); try: sudo %s record ...",
		      prog_name);
		return EXIT_FAIL;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		p_err("the kernel has no BTF (/sys/kernel/btf/vmlinux): CO-RE programs cannot load");
		return EXIT_FAIL;
	}

	/* find the library, as the invoking user: the paths are theirs */
	if (ro.pid && !ro.as_root) {
		char why[256];
		int err = invoker_may_trace((int)ro.pid, why, sizeof(why));

		if (err == -ESRCH) {
			p_err("process %" PRIu64 ": no such process", ro.pid);
			return EXIT_FAIL;
		}
		if (err) {
			p_err("%s; --as-root traces it anyway", why);
			return EXIT_FAIL;
		}
	}
	if (as_user_enter()) {
		p_err("cannot take the invoking user's identity");
		return EXIT_FAIL;
	}
	if (ro.lib) {
		if (!realpath(ro.lib, lib) || faccessat(AT_FDCWD, lib, R_OK, AT_EACCESS)) {
			p_err("%s: %s", ro.lib, strerror(errno));
			as_user_leave();
			return EXIT_FAIL;
		}
	} else if (ro.pid) {
		int err = target_lib_of_pid((int)ro.pid, lib, sizeof(lib));

		if (err == -ENOENT && kill((pid_t)ro.pid, 0) && errno == ESRCH) {
			p_err("process %" PRIu64 ": no such process", ro.pid);
			as_user_leave();
			return EXIT_FAIL;
		}
		if (err) {
			p_err("process %" PRIu64 " has no libmmsb mapped and no mmsb probes",
			      ro.pid);
			as_user_leave();
			return EXIT_FAIL;
		}
	} else if (target_lib_of_cmd(cmd, lib, sizeof(lib))) {
		p_err("cannot tell which libmmsb %s loads; name it with -l PATH", cmd[0]);
		as_user_leave();
		return EXIT_FAIL;
	}
	as_user_leave();

	/*
	 * Every output now, before the command starts: an unwritable path fails here, not after the
	 * run it was to record. Each is a temporary until the report is complete (tool_helpers.h).
	 */
	{
		const char *paths[N_OUT] = {
			[OUT_FOLDED] = ro.folded,
			[OUT_JSON] = ro.json_out,
			[OUT_SPEEDSCOPE] = ro.speedscope,
			[OUT_EVENTS] = ro.events,
		};

		for (int i = 0; i < N_OUT; i++)
			if (paths[i] && out_open(&ro.out[i], paths[i]))
				goto out;
	}
	tl.f = ro.out[OUT_EVENTS].f;

	skel = mmsb_trace_bpf__open();
	if (!skel) {
		p_err("open BPF object: %s", strerror(errno));
		goto out;
	}
	skel->rodata->kinds_mask = mask;
	skel->rodata->stack_mode = (uint32_t)ro.stack_mode;
	skel->rodata->with_events = !!ro.events;
	if (!(mask & (1u << SPAN_HOST)) || !libffi_of((int)ro.pid, ffi_lib, sizeof(ffi_lib)))
		ffi_lib[0] = 0;
	skel->rodata->n_pmu = (uint32_t)ro.n_pmu;
	nr_cpus = libbpf_num_possible_cpus();
	if (ro.n_pmu && (nr_cpus <= 0 || nr_cpus > MAX_CPUS)) {
		p_err("--pmu supports up to %d CPUs, this machine has %d", MAX_CPUS, nr_cpus);
		goto out;
	}
	skel->rodata->nr_cpus = (uint32_t)(nr_cpus > 0 ? nr_cpus : 1);
	if (ro.host_hz &&
	    !(host_links = calloc((size_t)(nr_cpus > 0 ? nr_cpus : 1), sizeof(*host_links)))) {
		p_err("--host-sample: %s", strerror(ENOMEM));
		goto out;
	}

	if (cmd) {
		/* the child stops at its exec, so the probes are attached before main runs */
		tr.lib = lib;
		status = start_command(cmd, &tr);
		if (status) {
			/* it never ran (127: not found): its status is ours, the outputs go */
			ret = status < 0 ? EXIT_FAIL : status;
			goto out;
		}
		rp.pid = tr.main;
	} else {
		rp.pid = (int)ro.pid;
	}
	skel->rodata->targ_tgid = (uint32_t)rp.pid;
	if (mmsb_trace_bpf__load(skel)) {
		p_err("load BPF programs: %s", strerror(errno));
		goto out;
	}
	if (ro.n_pmu) {
		pmu_fds = malloc((size_t)(ro.n_pmu * nr_cpus) * sizeof(*pmu_fds));
		if (!pmu_fds)
			goto out;
		for (int i = 0; i < ro.n_pmu * nr_cpus; i++)
			pmu_fds[i] = -1;
		if (pmu_open(ro.ev, ro.n_pmu, bpf_map__fd(skel->maps.pmu_events), nr_cpus, pmu_fds))
			goto out;
	}
	if (ro.events) {
		rb = ring_buffer__new(bpf_map__fd(skel->maps.events), on_event, &tl, NULL);
		if (!rb) {
			p_err("ring buffer: %s", strerror(errno));
			goto out;
		}
		rp.tl = &tl;
	}
	if (attach_all(skel, rp.pid, lib, mask, links, &n_links))
		goto out;
	if (ffi_lib[0]) {
		/* the host side of the boundary: libffi's call, entry and return */
		LIBBPF_OPTS(bpf_uprobe_opts, bo, .func_name = "ffi_call");
		LIBBPF_OPTS(bpf_uprobe_opts, eo, .func_name = "ffi_call", .retprobe = true);
		struct bpf_link *b = bpf_program__attach_uprobe_opts(skel->progs.ffi_begin, rp.pid,
								     ffi_lib, 0, &bo);
		struct bpf_link *e = b ? bpf_program__attach_uprobe_opts(skel->progs.ffi_end,
									 rp.pid, ffi_lib, 0, &eo) :
					 NULL;

		if (!b || !e) {
			p_err("attach ffi_call in %s: %s", ffi_lib, strerror(errno));
			bpf_link__destroy(b);
			goto out;
		}
		links[n_links++] = b;
		links[n_links++] = e;
	}
	if (ro.host_hz) {
		/* attaching here turns the threads' crossing records on (lib/probes.h) */
		struct bpf_link *l = bpf_program__attach_usdt(skel->progs.host_register, rp.pid,
							      lib, "mmsb", "host__register", NULL);

		if (!l) {
			p_err("--host-sample: %s has no mmsb:host__register probe (%s)", lib,
			      strerror(errno));
			goto out;
		}
		host_reg = l;
		if (host_sample_open(skel->progs.host_sample, ro.host_hz, nr_cpus, host_links,
				     &n_host_links))
			goto out;
	}
	rp.skel = skel;
	rp.lib = lib;
	rp.cmd = cmd;
	fprintf(stderr, "%s: attached to %d probes of %s in process %d%s; %s\n", prog_name,
		n_links + !!host_reg, lib, rp.pid, n_host_links ? ", sampling its host side" : "",
		ro.duration ? "tracing for the duration" : "Ctrl-C or the target's exit stops");
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	t0 = mono_ns();
	if (ro.duration)
		deadline = t0 + (uint64_t)(ro.duration * 1e9);
	if (cmd) {
		ptrace(PTRACE_CONT, tr.main, NULL, NULL);
		started = true;
	} else {
		rp.syms = syms_load_pid(rp.pid);
	}

	/* follow the target until it exits, the duration ends or we are told to stop */
	for (;;) {
		if (stop_requested || (deadline && mono_ns() >= deadline))
			break;
		if (cmd) {
			pid_t w = waitpid(-1, &status, __WALL | WNOHANG);

			if (w > 0) {
				if (!tree_event(&tr, w, status))
					break;
				continue;
			}
			if (w < 0 && errno == ECHILD) {
				/* nothing left to wait for (cannot happen): never spin */
				tr.main_gone = true;
				break;
			}
		} else if (kill(rp.pid, 0) && errno == ESRCH) {
			break;
		} else if (mono_ns() - last_maps > 1000000000ull) {
			/* keep recent maps: the target may exit before we report */
			struct syms *s = syms_load_pid(rp.pid);

			if (s) {
				syms_free(rp.syms);
				rp.syms = s;
			}
			last_maps = mono_ns();
		}
		if (rb)
			ring_buffer__poll(rb, cmd ? 2 : 50);
		else
			usleep(cmd ? 2000 : 50000);
	}
	rp.wall_ns = mono_ns() - t0;
	if (cmd && !tr.main_gone) {
		char other[PATH_MAX];

		/* at its exit stop or still running: its maps are all there, for the symbols */
		syms_free(rp.syms);
		rp.syms = syms_load_pid(tr.main);
		if (maps_libmmsb(tr.main, lib, other, sizeof(other)) == 2)
			fprintf(stderr,
				"%s: process %d loaded %s, the probes were on %s: name it with -l\n",
				prog_name, tr.main, other, lib);
	}
	/*
	 * Let the command's processes go first: a tracee that stops (a signal, a fork) while the
	 * probes come out (seconds) would wait for us. Then detach the probes before reporting: the
	 * target runs on untraced. The sampler first: its samples must cover the traced time.
	 */
	if (cmd) {
		tree_release(&tr);
		rp.untraced = tr.untraced;
	}
	for (int i = 0; i < n_host_links; i++)
		bpf_link__destroy(host_links[i]);
	n_host_links = 0;
	for (int i = 0; i < n_links; i++)
		bpf_link__destroy(links[i]);
	n_links = 0;
	if (rb)
		ring_buffer__consume(rb); /* what the target wrote before we detached */
	for (int i = 0; i < CNT_MAX; i++)
		rp.counters[i] = skel->bss->counters[i];
	if (skel->bss->last_end_ns > skel->bss->first_begin_ns)
		rp.window_ns = skel->bss->last_end_ns - skel->bss->first_begin_ns;
	features_probe(&rp.features);
	/*
	 * The objects read for symbols with the user's rights, as the user could (--as-root: the
	 * user asked for root's view); the outputs are the user's in any case (out_close).
	 */
	if (!ro.as_root && as_user_enter()) {
		p_err("cannot take the invoking user's identity");
		goto out;
	}
	if (ro.host_hz && host_collect(bpf_map__fd(skel->maps.host_samples), rp.syms, &rp.host))
		p_err("--host-sample: %s", strerror(ENOMEM));
	ret = write_outputs(&rp);
	if (!ro.as_root)
		as_user_leave();
	/*
	 * The records' switch last, after the report: the kernel takes a probe out only once every
	 * task has passed a quiescent point, and a host busy in user space (what this measures, with
	 * nothing trapping) can hold that for seconds.
	 */
	fflush(stdout);
	bpf_link__destroy(host_reg);
	host_reg = NULL;
	if (tl.f) {
		if (tl.write_err) {
			p_err("%s: %s", ro.events, strerror(EIO));
			out_discard(&ro.out[OUT_EVENTS]);
			ret = EXIT_FAIL;
		} else if (out_close(&ro.out[OUT_EVENTS])) {
			ret = EXIT_FAIL;
		}
		tl.f = NULL;
	}
	if (tr.untraced)
		fprintf(stderr,
			"%s: %d other process%s of the command (first: %d) used libmmsb and %s not "
			"traced: only process %d is (docs/tracing.md)\n",
			prog_name, tr.untraced, tr.untraced > 1 ? "es" : "", tr.first_untraced,
			tr.untraced > 1 ? "were" : "was", tr.main);
	if (cmd && !tr.main_gone && !tr.main_exiting) {
		/* -d or a signal ended the tracing: the command goes on, we do not wait for it */
		fprintf(stderr, "%s: tracing ended; process %d goes on untraced\n", prog_name,
			tr.main);
	} else if (cmd) {
		/* it has exited or is exiting: its status is ours, unless the report failed */
		if (!tr.main_gone && waitpid(tr.main, &tr.main_status, 0) == tr.main)
			tr.main_gone = true;
		if (tr.main_gone) {
			int st = command_status(cmd[0], tr.main_status);

			if (ret == EXIT_OK)
				ret = st;
		}
	}
out:
	for (int i = 0; i < n_links; i++)
		bpf_link__destroy(links[i]);
	for (int i = 0; i < n_host_links; i++)
		bpf_link__destroy(host_links[i]);
	free(host_links);
	bpf_link__destroy(host_reg);
	host_report_free(&rp.host);
	if (tr.main > 0 && !started && !tr.main_gone) {
		/* stopped at its exec, never ran an instruction of its own: nothing was started */
		kill(tr.main, SIGKILL);
		waitpid(tr.main, &status, 0);
	}
	syms_free(rp.syms);
	ring_buffer__free(rb);
	for (int i = 0; pmu_fds && i < ro.n_pmu * nr_cpus; i++)
		if (pmu_fds[i] >= 0)
			close(pmu_fds[i]);
	free(pmu_fds);
	/* what was not completed leaves the files at those paths as they were */
	for (int i = 0; i < N_OUT; i++)
		out_discard(&ro.out[i]);
	free(tl.v);
	mmsb_trace_bpf__destroy(skel);
	return ret;
}
