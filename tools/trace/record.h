/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * mmsb-trace record, between its files: the session (record.c) with its target (target.c), and
 * the report it hands over (report.c: the table; out_*.c: one file per output format).
 */
#ifndef __MMSB_TRACE_RECORD_H
#define __MMSB_TRACE_RECORD_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <linux/types.h> /* the BPF ABI's __u32 and __u64 */

#include "mmsb_trace.h"
#include "tool_helpers.h"
#include "trace.h"

/*
 * How spans are recorded: MODE_SPANS (the default) reads the spans the target keeps itself
 * (inproc.c), no trap per span; MODE_PROBES attaches a program to every span probe, what perf
 * and bpftrace see, with every event (-e).
 */
enum { MODE_SPANS, MODE_PROBES };

/* The files record writes, each opened before the command starts (tool_helpers.h). */
enum { OUT_FOLDED, OUT_JSON, OUT_SPEEDSCOPE, OUT_EVENTS, OUT_PPROF, N_OUT };

/* What record was asked for: the command line, then a profile where the line did not say. */
struct record_opts {
	uint64_t pid;
	double duration;
	const char *folded, *json_out, *speedscope, *events, *lib, *kinds, *profile, *out_dir, *pmu;
	const char *pprof; /* --pprof FILE */
	struct out_file out[N_OUT];
	bool as_root, no_table, stacks_set;
	int stack_mode;
	uint64_t hit_ns;
	const char *hit_src;	 /* "measured", "given" (--hit-cost), "default (...)" */
	uint64_t hit_measure_ns; /* how long the measurement took */
	char paths[4][PATH_MAX]; /* the profile's output files in out_dir */
	char profile_pmu[256];
	struct pmu_event ev[MAX_PMU];
	int n_pmu;
	uint64_t host_hz;   /* --host-sample: 0, off */
	int mode;	    /* MODE_SPANS, MODE_PROBES (--mode) */
	uint64_t sample_hz; /* the default mode's stack samples (-F), 0: none */
	double interval;    /* -i: a report every so many seconds, 0: one at the end */
	const char *listen; /* serve: --listen ADDR[:PORT], the exporter's (serve.c) */
	uint64_t count;	    /* -c: that many intervals, then stop (0: until the end) */
	bool timestamps;    /* -T */
	bool all;	    /* -a: every process that maps the library */
	bool top;	    /* top on a terminal: each interval on a cleared screen */
};

/* The one set of options, filled by record_parse_args() (record_opts.c). */
extern struct record_opts ro;

/*
 * A probe hit's cost is this host's, measured at the start of each run within HIT_BUDGET_NS
 * (features.c: hit_cost_measure) unless --hit-cost gives it; DEFAULT_HIT_NS only when the
 * measurement fails (said so). The report warns when the estimate passes 10 % of the window.
 */
#define DEFAULT_HIT_NS 600
#define HIT_BUDGET_NS 80000000ull
/*
 * --host-sample: every sample interrupts the target, about 15 us each on the VM measured
 * (docs/ffi.md): 1 kHz slows it by about 1 %, 10 kHz by 16 %.
 */
#define DEFAULT_HOST_HZ 1000
/* spans mode's stack samples: perf's and bpftrace's habit, off the beat of periodic work */
#define DEFAULT_SAMPLE_HZ 99

/* Returned by a step of record that found nothing to stop for. */
#define GO_ON (-1)

/* The command line into ro (GO_ON, or the status to exit with); *cmd: the command, or NULL. */
int record_parse_args(int argc, char **argv, char ***cmd);
/* A profile's settings (-P) into ro where the command line did not say; its kinds into *mask. */
int record_apply_profile(uint32_t *mask);

/* ---- the target (target.c) ---- */

/* Where libmmsb lives for PID: a mapped libmmsb.so*, or the executable if it carries the probes. */
int target_lib_of_pid(int pid, char *out, size_t len);
/* The libmmsb CMD will load, found without running it; called as the invoking user. */
int target_lib_of_cmd(char **argv, char *out, size_t len);
/* The libffi a host calls libmmsb through (PID 0: the system's). */
bool libffi_of(int pid, char *out, size_t len);
/* Which libmmsb PID maps: 1 the one we attached to, 2 another (its path in other), 0 none. */
int maps_libmmsb(int pid, const char *lib, char *other, size_t len);

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
	/*
	 * Spans mode follows the descendants too: told of each fork (the child stopped, its memory
	 * the parent's) and each exec (stopped before the new program runs), before it goes on.
	 */
	void (*on_fork)(void *ctx, pid_t child);
	void (*on_exec)(void *ctx, pid_t pid);
	void (*on_exit)(void *ctx, pid_t pid); /* stopped at its exit, its memory all there */
	void *ctx;
};

/*
 * Start CMD seized, stopped at its exec: 0 and the pid, or the command's own exit status when it
 * could not start (126 or 127, as a shell says; the child printed why). Under sudo CMD runs as
 * the invoking user unless as_root.
 */
int start_command(char **cmd, struct tree *t, bool as_root);
/* One ptrace stop or death in the tree; false when the main process is done with. */
bool tree_event(struct tree *t, pid_t w, int status);
/* Let every process of the tree go on untraced. */
void tree_release(struct tree *t);
/* The command's end as a shell reports it: the status to exit with, a line for a signal. */
int command_status(const char *name, int status);

/* ---- the default mode: the target's own spans (inproc.c) ---- */

struct inproc;
struct procs;
struct report;
/* An entry of the off-CPU map, with the block its thread had (the programs' tid -> block map). */
struct offcpu_row {
	struct span_tid_node k;
	__u64 blk;
	struct offcpu_ns ns;
};

struct inproc_maps {
	int stats_fd, blocks_fd, offcpu_fd, offcpu_start_fd, samples_fd, stacks_fd;
	/*
	 * The off-CPU map as read once for a pass over the processes (inproc_offcpu_read()), by
	 * tid; none read, no process has off-CPU time.
	 */
	struct offcpu_row *offcpu;
	size_t n_offcpu;
};

/* mmsb_span_registry's file offset in LIB: 0, or -ENOENT for a library older than the mode. */
int inproc_registry_off(const char *lib, uint64_t *off);
/* PID's spans, its registry at the file offset SYM_OFF of LIB (inproc_registry_off()). */
struct inproc *inproc_new(int pid, const char *lib, uint64_t sym_off);
/* The blocks made so far into the programs' tid -> block map (blocks_fd). */
void inproc_poll(struct inproc *ip, int blocks_fd);
/* Read every block at the window's start, and at its end. */
void inproc_start(struct inproc *ip);
void inproc_stop(struct inproc *ip);
/* The window's figures into span_stats and rp (threads, open spans, off-CPU time); the kinds of
 * MASK into the report, every kind into the threads' time. */
int inproc_report(struct inproc *ip, struct report *rp, const struct inproc_maps *m, uint32_t mask);
/*
 * The off-CPU map into M, for the reports and intervals of a pass over the processes that follow
 * (after inproc_charge_pending(), for a window's end); 0 or -ENOMEM. inproc_offcpu_free() after.
 */
int inproc_offcpu_read(struct inproc_maps *m);
void inproc_offcpu_free(struct inproc_maps *m);
/* A stack sample of the spans mode, its frames root first: inproc_samples(). */
struct inproc_sample {
	const struct sample_key *key;
	uint64_t count;
	char (*names)[256]; /* n frames: n_chain of spans, n_user of the user stack, the kernel's */
	int n, n_chain, n_user;
	struct json_object *locs; /* the user frames' locations, when asked */
	int leaf_kind;		  /* the innermost open span's kind, or -1 */
};
/* Each stack sample of the window to FN, its frames named as every output names them. */
void inproc_samples(struct inproc *ip, struct report *rp, const struct inproc_maps *m, bool locs,
		    void (*fn)(const struct inproc_sample *smp, void *ctx), void *ctx);
/* The stack samples as folded stacks, weighted by PERIOD_NS each. */
void inproc_folded(struct inproc *ip, struct report *rp, const struct inproc_maps *m, FILE *f,
		   uint64_t period_ns);
/* Threads still off a CPU at END_NS: their time up to it charged, once for every process. */
void inproc_charge_pending(const struct inproc_maps *m, uint64_t end_ns);
/* A process found after the window opened (-a): its figures count from NS, all of them. */
void inproc_start_at(struct inproc *ip, uint64_t ns);
/* -c ended the window: its end is the last interval's read. */
void inproc_stop_at_interval(struct inproc *ip);
void procs_stop_at_interval(struct procs *p);
/* -a: re-read while it lives; false once it is gone, its last figures kept. */
bool inproc_refresh(struct inproc *ip);
/* -i: the interval ending now, added into IV and STATS_FD (a map like span_stats). */
int inproc_interval(struct inproc *ip, struct report *iv, const struct inproc_maps *m,
		    uint32_t mask, int stats_fd);
void inproc_free(struct inproc *ip);

/* ---- -a: every process that maps the library (procs.c) ---- */

struct procs;
/* SYM_OFF: inproc_registry_off(LIB), for every process found */
struct procs *procs_new(const char *lib, uint64_t sym_off);
/* The processes that map the library now, read at the window's start (NS). */
void procs_scan(struct procs *p, int blocks_fd, uint64_t ns);
/* Threads that announced a block (span_blocks) in a process not seen yet: found, from NS. */
void procs_poll(struct procs *p, int blocks_fd, uint64_t ns);
/* Every live process re-read; an exited one keeps its last figures. */
void procs_refresh(struct procs *p);
/* The window's figures of every process into rp (its threads, processes, stats map). */
int procs_report(struct procs *p, struct report *rp, const struct inproc_maps *m, uint32_t mask);
/* -i: every process's interval into IV and STATS_FD. */
int procs_interval(struct procs *p, struct report *iv, const struct inproc_maps *m, uint32_t mask,
		   int stats_fd);
int procs_count(const struct procs *p);
/* record -- CMD: the main process is read apart (inproc): never one of these */
void procs_exclude(struct procs *p, int pid);
/* A forked child, its memory a copy of its parent's: read now, its figures from here on. */
void procs_add_forked(struct procs *p, int pid, int blocks_fd);
/* A descendant that exec'd: a new program, every span of it counts. */
void procs_add_execd(struct procs *p, int pid, int blocks_fd);
/* A descendant stopped at its exit: read a last time, exactly, then gone. */
void procs_exited(struct procs *p, int pid);
/* The main process's row, before the children's (record -- CMD with children). */
void procs_main_row(struct report *rp, int pid, int first);
/*
 * serve: each process's figures since it was found, one at a time: into a scratch report and
 * STATS_FD (a map like span_stats, emptied first), its kinds summed, handed to FN. SERIAL tells
 * a process from a later one with its pid.
 */
struct proc_row;
int procs_each(struct procs *p, const struct inproc_maps *m, uint32_t mask, int stats_fd,
	       void (*fn)(void *ctx, uint64_t serial, const struct proc_row *row,
			  const struct report *rp),
	       void *ctx);
/*
 * serve: an exited process is kept KEEP_NS after its exit, and the last KEEP_MAX at most; then
 * forgotten, its threads out of the programs' maps (inproc_forget).
 */
void procs_prune(struct procs *p, const struct inproc_maps *m, uint64_t now_ns, uint64_t keep_ns,
		 int keep_max);
void inproc_forget(struct inproc *ip, const struct inproc_maps *m);
void procs_free(struct procs *p);
/* ns a span costs the target on this host (measured in our process, about 5 ms) */
uint64_t inproc_span_cost(void);

/* ---- the report (report.c, out_*.c) ---- */

/* One span kind, summed over its stacks. */
struct kind_total {
	uint64_t count, total, self, min, max, hist[HIST_SLOTS];
	uint64_t pmu_total[MAX_PMU], pmu_self[MAX_PMU], pmu_count;
};

/*
 * The event stream (out_events.c): each closed span as it happened. Written to the file as it
 * arrives; the first TIMELINE_MAX are also kept for the speedscope timeline (the rest counted as
 * not kept).
 */
#define TIMELINE_MAX (1u << 19)

struct timeline {
	FILE *f;
	struct span_event *v;
	size_t n, cap;
	uint64_t streamed, not_kept;
	bool write_err;
};

/* The ring buffer's callback: ctx is the struct timeline. */
int timeline_on_event(void *ctx, void *data, size_t size);

struct syms;
struct json_object;

/* A thread of the default mode: its time in the window and what its spans took of it. */
struct thread_row {
	int pid, tid;
	char comm[16];
	uint32_t owners;  /* threads that had its block in the window (exited ones handed it on) */
	uint64_t time_ns; /* the window, from its first span if later */
	uint64_t in_spans_ns;	  /* inside its outermost spans, open ones so far included */
	uint64_t off_ns, wait_ns; /* inside spans, off a CPU: asleep, waiting for one */
	uint64_t spans;		  /* closed in the window */
};

/* -a: a process of the window: its threads' sums, and where it runs */
struct proc_row {
	int pid;
	char comm[16];
	char cgroup[128]; /* its cgroup v2 path: containers told apart */
	bool exited;	  /* its last figures, read before it exited */
	int threads;
	uint64_t time_ns, in_spans_ns, spans;
};

struct report {
	struct record_opts *o;
	int stats_fd, stacks_fd; /* the BPF maps span_stats and user_stacks */
	struct syms *syms;
	uint64_t wall_ns; /* the window: window_end_ns - window_start_ns */
	int pid;
	char **cmd;
	const char *lib;
	uint64_t counters[CNT_MAX];
	/* the window, attach complete to stop (CLOCK_MONOTONIC, the programs' clock) */
	uint64_t window_start_ns, window_end_ns;
	uint64_t first_begin_ns, last_end_ns; /* the spans recorded in it: first begin, last end */
	uint64_t window_ns;	 /* first span begin to last span end: the span window */
	struct timeline *tl;	 /* NULL without -e */
	struct host_report host; /* --host-sample */
	struct trace_features features;
	int untraced; /* other processes of the command's tree that used libmmsb */
	/* spans open at the stop (collect_open): per kind, the count and the time so far */
	uint64_t open_n[SPAN_KINDS], open_ns[SPAN_KINDS];
	uint64_t open_deep; /* begins past the stack's depth still open */
	uint64_t open_bad;  /* stack entries that cannot be this window's open spans */
	/* the default mode (inproc.c) */
	bool inproc;
	struct thread_row *threads;
	int n_threads;
	struct proc_row *procs; /* -a */
	int n_procs;
	uint64_t thread_ns; /* the threads' times summed: what shares are of */
	uint64_t off_ns[SPAN_KINDS], wait_ns[SPAN_KINDS]; /* self time off a CPU per kind */
	uint64_t span_deep, span_lost, span_torn, span_cost_ns;
	uint64_t bpf_run_ns; /* spans mode: its kernel programs' run time, the cost line's part */
	struct inproc *ip;
	struct inproc_maps maps;
	/* what report_write() sums from the maps */
	struct kind_total kt[SPAN_KINDS];
	uint64_t self_sum, host_ns, period; /* period: of a host sample, in ns */
};

/*
 * One aggregated stack, as every output sees it: its frames root first (user stack, then the
 * spans around this one, outermost first), the span kind as leaf.
 */
struct stack_row {
	const struct span_key *key;
	const struct span_stats *v;
	char (*names)[256];
	int nf;			  /* frames in names */
	int depth;		  /* the enclosing spans */
	const char *leaf;	  /* "mmsb:KIND" */
	struct json_object *locs; /* each frame's file, build id and offset */
};

/* -i: one interval's table on stdout, from STATS_FD (the interval's map). */
void report_interval(struct report *iv, int stats_fd, uint64_t n);
/* Every entry of STATS_FD (a map like span_stats) summed per kind into rp->kt and self_sum. */
void report_sum_kinds(struct report *rp, int stats_fd);
/* Every output of the run: the table on stdout and the files asked for. EXIT_OK or EXIT_FAIL. */
int report_write(struct report *rp);
/*
 * The frames of user stack ID (in the stack map STACKS_FD), root first, as names, inlined
 * functions as frames of their own and a walk cut at its first address that is not code; with
 * LOCS, each frame's file, line, build id and offset there. Returns the count.
 */
int frames_of(int stacks_fd, int32_t id, struct syms *sy, char names[][256], int max,
	      struct json_object *locs);
/* What shares are of: the threads' time in spans mode, else the window. */
uint64_t report_share_base(const struct report *rp);
/* The table's duration format: "812 ns", "12.3 us", "4.5 ms", "2.10 s" */
void fmt_dur(uint64_t ns, char *buf, size_t len);
/* The upper bound of the log2 bucket holding quantile q */
uint64_t hist_quantile(const uint64_t *hist, uint64_t count, double q);

/* Folded stacks (out_folded.c): one line per stack, weighted by self time in ns. */
void folded_stack(FILE *f, const struct stack_row *row);
void folded_host(FILE *f, const struct host_frame *hf, uint64_t ns);

/*
 * The JSON report (out_json.c): a stack's object during the walk (it takes row->locs), then the
 * document with the stacks collected (taken too).
 */
struct json_object *json_stack(const struct record_opts *o, const struct stack_row *row);
int json_report_write(const struct report *rp, struct json_object *jstacks);

/* The speedscope profile (out_speedscope.c): frames interned and weighted during the walk. */
struct speedscope {
	struct json_object *frames, *index, *samples, *weights;
};

void speedscope_init(struct speedscope *ss);
void speedscope_stack(struct speedscope *ss, const struct stack_row *row);
void speedscope_host(struct speedscope *ss, const struct host_frame *hf, uint64_t ns);
int speedscope_write(struct speedscope *ss, struct out_file *out, struct timeline *tl);
void speedscope_free(struct speedscope *ss);

/*
 * The pprof profile (out_pprof.c): a sample per stack during the walk, then the timer samples
 * and off-CPU time (spans mode), gzip'd into its output file.
 */
void pprof_stack(struct report *rp, const struct stack_row *row);
int pprof_write(struct report *rp);
/*
 * For it, from inproc.c: the kinds of NODE of thread TID's block at the window's end and of the
 * spans around it, outermost first, into KINDS (at most MAX): their count, or -1 when the block
 * is not known (a sample "[outside-spans]").
 */
int inproc_node_kinds(const struct inproc *ip, int blocks_fd, uint32_t tid, uint32_t node,
		      int *kinds, int max);

/*
 * serve (serve.c): the exporter. serve_start() listens on ADDR[:PORT] (its own thread), before
 * anything is attached; serve_export() hands it every process's figures so far (record.c, once
 * a second and at the end); serve_stop() at the session's end.
 */
int serve_start(const char *listen);
void serve_export(struct procs *p, const struct inproc_maps *m, uint32_t mask,
		  const __u64 *counters, uint64_t span_cost_ns, uint64_t bpf_run_ns);
void serve_stop(void);

/* A JSON document into its output file, then the file into place. */
int write_json(struct out_file *o, struct json_object *j, int flags);

#endif /* __MMSB_TRACE_RECORD_H */
