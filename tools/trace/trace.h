/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* mmsb-trace's verbs, shared between its files. */
#ifndef __MMSB_TRACE_TOOL_H
#define __MMSB_TRACE_TOOL_H

#include <limits.h>
#include <sys/types.h>
#include <stdbool.h>
#include <stdint.h>
#include <linux/perf_event.h>

extern bool json;

int do_record(int argc, char **argv);
/* top: record -a -i 1 (or -i SECS), each interval's table on a cleared terminal */
int do_top(int argc, char **argv);
/* serve --listen ADDR: record -a as a Prometheus exporter (serve.c) */
int do_serve(int argc, char **argv);
int serve_help(void);
int do_features(int argc, char **argv);
int record_help(void);
int features_help(void);

bool have_bpf_caps(void);

/* What the kernel offers the tracer; ringbuf and cookie are -1 when unprivileged (unknown). */
struct trace_features {
	char kernel[65];
	bool btf, refctr, priv;
	int ringbuf, cookie;
};

struct json_object;

void features_probe(struct trace_features *f);

/* The cost of one probe hit here, measured for record (features.c): what it holds till freed. */
struct mmsb_state;
struct mmsb_trace_bpf;
struct bpf_link;

#define HIT_SITES 8 /* the api pair's sites in mmsb_page_epoch, at most */

struct hit_cal {
	struct mmsb_state *s;
	struct bpf_link *l[HIT_SITES];
	int n;
};

/*
 * On the run's loaded programs, before its window opens, within budget_ns (give or take a
 * batch): 0 and the ns a hit, or -1. The maps are left as it found them, empty.
 */
int hit_cost_measure(struct mmsb_trace_bpf *skel, uint64_t budget_ns, struct hit_cal *hc,
		     double *per_hit_ns);
/* Its probes out (slow: tens of ms each); a zeroed hc is nothing. */
void hit_cal_free(struct hit_cal *hc);
/* The same as a JSON object (unknown as null), for features --json and record's report */
struct json_object *features_json(const struct trace_features *f);

/* Span kinds (spans.c) by name (the -k list, profiles): the index, or -1. */
int span_kind_of(const char *name);
/* A kind's name and category ("?" for none); the probe that begins or ends it (NULL for none). */
const char *span_name(int kind);
const char *span_category(int kind);
const char *span_probe(int kind, bool end);
/* A -k list (comma-separated names, or "none"; NULL: all) as a mask of kinds: 0 or -EINVAL. */
int span_mask_of(const char *list, uint32_t *mask);

/* A counter per span (pmu.c): the name asked for, libpfm4's full name, the attr. */
struct pmu_event {
	char name[64], canonical[256];
	struct perf_event_attr attr;
};

/* Resolve a comma list of event names (libpfm4); the reason in why on failure. */
int pmu_resolve(const char *list, struct pmu_event *ev, int *n, char *why, size_t len);
/* Open each event on every CPU into the BPF map (index event * nr_cpus + cpu); fds receives them. */
int pmu_open(struct pmu_event *ev, int n, int map_fd, int nr_cpus, int *fds);
int do_pmu(int argc, char **argv);
int sys_perf_event_open(struct perf_event_attr *a, pid_t pid, int cpu);

/* The host's side of the boundary, sampled (host.c): frames by module and function. */
struct host_frame {
	char module[64], symbol[192];
	uint64_t samples[2]; /* HOST_FFI, HOST_OTHER */
};

struct host_report {
	uint64_t samples[2];
	struct host_frame *f; /* most samples first */
	int n;
};

struct bpf_program;
struct bpf_link;
struct syms;

/* 0, or -EINVAL with the reason: a rate the kernel allows */
int host_sample_check(uint64_t hz, char *why, size_t len);
/* Every key (KEY_SIZE bytes, at most 64) deleted from the map behind fd. */
void map_empty(int fd, size_t key_size);
/* What a program has run for so far, in ns: 0 unless BPF run-time stats are on (an fd held). */
uint64_t prog_run_ns(const struct bpf_program *prog);
/*
 * A CPU clock on every CPU at hz, each running prog; the links (one per CPU) into links. WHAT
 * names the samples in an error line.
 */
int perf_sample_open(struct bpf_program *prog, uint64_t hz, int nr_cpus, struct bpf_link **links,
		     int *n_links, const char *what);
int host_collect(int samples_fd, struct syms *sy, struct host_report *hr);
void host_report_free(struct host_report *hr);
int pmu_help(void);

/* A trace profile (profile.c, docs/profiles.md): record's settings by name. */
enum { PROFILE_OUT_TABLE, PROFILE_OUT_JSON, PROFILE_OUT_FOLDED, PROFILE_OUT_SPEEDSCOPE };

struct trace_profile {
	char name[64], path[PATH_MAX], description[256];
	uint32_t kinds_mask;
	int stack_mode;
	bool events;
	unsigned int outputs; /* 1 << PROFILE_OUT_* */
	char pmu[256];	      /* record --pmu, "" for none */
	uint64_t duration;    /* seconds, 0: until the target exits */
	uint64_t host_hz;     /* record --host-sample, 0: off */
};

/* Parse FILE strictly; errors are printed as FILE:LINE: reason. 0 or -errno. */
int profile_parse(const char *path, struct trace_profile *p);
/* A path, or a name looked up in the profile directories. */
int profile_load(const char *name_or_path, struct trace_profile *p);
int do_profiles(int argc, char **argv);
int profiles_help(void);

#endif /* __MMSB_TRACE_TOOL_H */
