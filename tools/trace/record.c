// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * mmsb-trace record: the session. Attach bpf/mmsb_trace.bpf.c to every span probe of libmmsb in
 * one process, run (target.c) or follow it, detach, and hand what the maps hold to the report
 * (report.c, out_*.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/ptrace.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "mmsb_trace.skel.h"
#include "record.h"
#include "syms_helpers.h"
#include "usdt_helpers.h"
#include "usdt_multi.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/*
 * Attach both ends of every wanted span kind. Where load() prepared span_begin and span_end for
 * it, every begin site of every kind goes on one uprobe_multi link and every end site on another
 * (usdt_multi.h: the kernel takes a link's uprobes out in one batch, where libbpf's per-site
 * perf events come out one at a time, 80-90 ms each); links[] then holds a NULL per probe so
 * attached, n_links staying the number of probes (follow() says it). Else libbpf's usdt path.
 */
static int attach_all(struct mmsb_trace_bpf *skel, int pid, const char *lib, uint32_t mask,
		      struct bpf_link **links, int *n_links, struct usdt_multi_link **multi,
		      int *n_multi)
{
	bool use_multi = usdt_multi_prepared(skel->progs.span_begin);
	struct usdt_multi_site *sites = NULL;
	int n_sites[2] = { 0, 0 };
	struct usdt_note *notes;
	int nn = usdt_notes_read(lib, &notes);

	if (nn < 0) {
		p_err("%s: %s", lib, nn == -ENOEXEC ? "not an ELF object" : input_strerror(nn));
		return -1;
	}
	*n_links = 0;
	*n_multi = 0;
	/* begin sites in [0, nn), end sites in [nn, 2 nn) */
	if (use_multi && !(sites = calloc(2 * (size_t)nn + 1, sizeof(*sites)))) {
		p_err("attach: %s", strerror(ENOMEM));
		free(notes);
		return -1;
	}
	for (int k = 0; k < SPAN_KINDS; k++) {
		if (!(mask & (1u << k)) || k == SPAN_HOST)
			continue;
		bool pair = true;

		/* both ends or neither: a begin whose end is not attached would never close */
		for (int end = 0; end < 2 && pair; end++) {
			bool present = false;

			for (int i = 0; i < nn && !present; i++)
				present = !strcmp(notes[i].provider, "mmsb") &&
					  !strcmp(notes[i].name, span_probe(k, end));
			pair = present;
		}
		if (!pair)
			continue; /* an older library without this kind */
		for (int end = 0; end < 2; end++) {
			const char *name = span_probe(k, end);
			LIBBPF_OPTS(bpf_usdt_opts, uo, .usdt_cookie = (uint64_t)k);
			struct bpf_link *l;

			if (use_multi) {
				struct usdt_multi_site *to = sites + end * nn;

				for (int i = 0; i < nn; i++) {
					if (strcmp(notes[i].provider, "mmsb") ||
					    strcmp(notes[i].name, name))
						continue;
					to[n_sites[end]].note = &notes[i];
					/* what bpf_usdt_cookie() returns there: the kind, as below */
					to[n_sites[end]++].usdt_cookie = (uint64_t)k;
				}
				links[(*n_links)++] = NULL;
				continue;
			}
			l = bpf_program__attach_usdt(end ? skel->progs.span_end :
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
	if (use_multi && (n_sites[0] || n_sites[1])) {
		struct usdt_multi_specs sp;

		if (usdt_multi_specs_init(&sp, skel->obj)) {
			p_err("attach: the BPF object's USDT spec map was not prepared (load())");
			goto fail;
		}
		for (int end = 0; end < 2; end++) {
			struct usdt_multi_link *l = usdt_multi_attach(
				end ? skel->progs.span_end : skel->progs.span_begin, pid, lib,
				sites + end * nn, n_sites[end], &sp);

			if (!l) {
				p_err("attach the mmsb span %s probes in %s (%d sites, uprobe_multi): %s",
				      end ? "end" : "begin", lib, n_sites[end], strerror(errno));
				goto fail;
			}
			multi[(*n_multi)++] = l;
		}
	}
	free(sites);
	free(notes);
	if (!*n_links && mask) {
		p_err("%s: no mmsb probes (built with PROBES=0?)", lib);
		return -1;
	}
	return 0;
fail:
	free(sites);
	free(notes);
	return -1;
}

/* One record run: what it holds from attach to detach, released by session_free(). */
struct session {
	struct mmsb_trace_bpf *skel;
	struct bpf_link *links[2 * SPAN_KINDS + 1];
	struct bpf_link **host_links, *host_reg;
	int n_links, n_host_links;
	struct usdt_multi_link *multi[2]; /* the span probes' sites, begin and end (attach_all) */
	int n_multi;
	struct ring_buffer *rb;
	struct timeline tl;
	struct tree tr;
	struct report rp;
	int nr_cpus, *pmu_fds;
	char lib[PATH_MAX], ffi_lib[PATH_MAX];
	uint32_t mask;
	char **cmd;
	bool started;
	struct hit_cal hc;   /* the hit cost's probes in our own process, out at the teardown */
	struct inproc *ip;   /* spans mode: the target's own spans */
	struct procs *procs; /* spans mode, -a: every process's; -- CMD: its descendants' */
#define MAX_CHILD_LINKS 256
	struct bpf_link *child_links[MAX_CHILD_LINKS]; /* -- CMD: each exec'd descendant's */
	int n_child_links, children_untraced;
	int iv_fd;		/* -i: the interval's span_stats, -1 until the first */
	bool ended_at_interval; /* -c: the window ends at the last interval's read */
	int bpf_stats_fd;	/* spans mode: the programs' run time counted while it is open */
	uint64_t iv_start_ns;
	struct bpf_link *span_reg, *switch_link, **smp_links;
	int n_smp_links;
	uint64_t next_export; /* serve: when the exporter gets the figures next */
};

/*
 * Spans mode unless the request needs a program on every probe: per-event output (-e), counters
 * per span (--pmu), a stack per span (--stacks), libffi's calls (ffi_call), the host's side
 * sampled alone. Asked for spans mode with one of those is a usage error, said in one line.
 */
static int choose_mode(struct session *s)
{
	const char *needs = ro.events				    ? "-e" :
			    ro.pmu				    ? "--pmu" :
			    ro.stacks_set			    ? "--stacks" :
			    s->mask & (1u << SPAN_HOST) && ro.kinds ? "-k ffi_call" :
			    !s->mask && ro.host_hz ? "--host-sample without span kinds" :
						     NULL;

	/*
	 * -a and -i read the spans the targets keep (for -i: the probes mode has no figures
	 * between two reads)
	 */
	const char *spans_only = ro.all ? "-a" : ro.interval ? "-i" : NULL;

	if (spans_only && (needs || ro.mode == MODE_PROBES)) {
		p_err("%s needs the spans mode%s%s", spans_only, needs ? ": drop " : "",
		      needs ? needs : "");
		return -1;
	}
	if (ro.mode == MODE_SPANS && needs) {
		p_err("%s needs --mode probes (a program on every probe)", needs);
		return -1;
	}
	if (ro.mode < 0)
		ro.mode = needs ? MODE_PROBES : MODE_SPANS;
	if (ro.mode == MODE_SPANS)
		s->mask &= ~(1u << SPAN_HOST); /* a uprobe on libffi: the probes mode's */
	return 0;
}

/* The request checked whole, and the machine's means for it, before anything is started. */
static int check_request(struct session *s)
{
	if (!!s->cmd + !!ro.pid + ro.all != 1) {
		p_err("record needs one of -p PID, -a or -- CMD [ARGS...]");
		return EXIT_USAGE;
	}
	if (span_mask_of(ro.kinds, &s->mask))
		return EXIT_USAGE;
	if (ro.out_dir && !ro.profile) {
		p_err("-o names where a profile's outputs go: use it with -P");
		return EXIT_USAGE;
	}
	if (ro.profile && record_apply_profile(&s->mask))
		return EXIT_FAIL;
	/* sampling the host alone: span probes would trap on every crossing and slow the host */
	if (ro.host_hz && !ro.kinds && !ro.profile)
		s->mask = 0;
	if (!s->mask && !ro.host_hz) {
		p_err("nothing to trace: no span kind (-k none) and no --host-sample");
		return EXIT_USAGE;
	}
	if (choose_mode(s))
		return EXIT_USAGE;
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
	return GO_ON;
}

/* The library to attach to, found as the invoking user: the paths are theirs. */
static int find_lib_as_user(struct session *s)
{
	if (ro.lib) {
		int fd;

		if (!realpath(ro.lib, s->lib) || faccessat(AT_FDCWD, s->lib, R_OK, AT_EACCESS)) {
			p_err("%s: %s", ro.lib, strerror(errno));
			return EXIT_FAIL;
		}
		/* a FIFO or a device is no library: its ELF read would hang (tool_helpers.h) */
		fd = open_regular(s->lib, 0);
		if (fd < 0) {
			p_err("%s: %s", ro.lib, input_strerror(fd));
			return EXIT_FAIL;
		}
		close(fd);
	} else if (ro.pid) {
		int err = target_lib_of_pid((int)ro.pid, s->lib, sizeof(s->lib));

		if (err == -ENOENT && kill((pid_t)ro.pid, 0) && errno == ESRCH) {
			p_err("process %" PRIu64 ": no such process", ro.pid);
			return EXIT_FAIL;
		}
		if (err) {
			p_err("process %" PRIu64 " has no libmmsb mapped and no mmsb probes",
			      ro.pid);
			return EXIT_FAIL;
		}
	} else if (ro.all) {
		/* -a without -l: the libmmsb this tool runs with, what a system installs once */
		const char *mine = own_libmmsb();

		if (!mine || !realpath(mine, s->lib)) {
			p_err("-a: which libmmsb? name it with -l PATH");
			return EXIT_FAIL;
		}
	} else if (target_lib_of_cmd(s->cmd, s->lib, sizeof(s->lib))) {
		p_err("cannot tell which libmmsb %s loads; name it with -l PATH", s->cmd[0]);
		return EXIT_FAIL;
	}
	return GO_ON;
}

static int find_lib(struct session *s)
{
	int ret;

	if (ro.pid && !ro.as_root) {
		char why[256];
		int err = invoker_may_trace((int)ro.pid, why, sizeof(why));

		if (err == -ESRCH) {
			p_err("process %" PRIu64 ": no such process", ro.pid);
			return EXIT_FAIL;
		}
		if (err) {
			p_err("%s", why);
			return EXIT_FAIL;
		}
	}
	if (as_user_enter()) {
		p_err("cannot take the invoking user's identity");
		return EXIT_FAIL;
	}
	ret = find_lib_as_user(s);
	as_user_leave();
	return ret;
}

/*
 * Every output now, before the command starts: an unwritable path fails here, not after the run
 * it was to record. Each is a temporary until the report is complete (tool_helpers.h).
 */
static int open_outputs(struct session *s)
{
	const char *paths[N_OUT] = {
		[OUT_FOLDED] = ro.folded,	  [OUT_JSON] = ro.json_out,
		[OUT_SPEEDSCOPE] = ro.speedscope, [OUT_EVENTS] = ro.events,
		[OUT_PPROF] = ro.pprof,
	};

	for (int i = 0; i < N_OUT; i++)
		if (paths[i] && out_open(&ro.out[i], paths[i]))
			return -1;
	s->tl.f = ro.out[OUT_EVENTS].f;
	return 0;
}

/*
 * The BPF object opened and set up, the command started (stopped at its exec, so the probes are
 * attached before main runs), then loaded with its pid. GO_ON, or the status to exit with: the
 * command's own when it never ran (127: not found).
 */
static int load(struct session *s)
{
	struct mmsb_trace_bpf *skel = mmsb_trace_bpf__open();
	int nr_cpus;

	s->skel = skel;
	if (!skel) {
		p_err("open BPF object: %s", strerror(errno));
		return EXIT_FAIL;
	}
	skel->rodata->kinds_mask = s->mask;
	skel->rodata->stack_mode = (uint32_t)ro.stack_mode;
	skel->rodata->with_events = !!ro.events;
	if (!(s->mask & (1u << SPAN_HOST)) || !libffi_of((int)ro.pid, s->ffi_lib, PATH_MAX))
		s->ffi_lib[0] = 0;
	skel->rodata->n_pmu = (uint32_t)ro.n_pmu;
	nr_cpus = s->nr_cpus = libbpf_num_possible_cpus();
	if (ro.n_pmu && (nr_cpus <= 0 || nr_cpus > MAX_CPUS)) {
		p_err("--pmu supports up to %d CPUs, this machine has %d", MAX_CPUS, nr_cpus);
		return EXIT_FAIL;
	}
	skel->rodata->nr_cpus = (uint32_t)(nr_cpus > 0 ? nr_cpus : 1);
	if (ro.host_hz && !(s->host_links = calloc((size_t)(nr_cpus > 0 ? nr_cpus : 1),
						   sizeof(*s->host_links)))) {
		p_err("--host-sample: %s", strerror(ENOMEM));
		return EXIT_FAIL;
	}
	if (s->cmd) {
		int status;

		s->tr.lib = s->lib;
		status = start_command(s->cmd, &s->tr, ro.as_root);
		if (status)
			return status < 0 ? EXIT_FAIL : status;
		s->rp.pid = s->tr.main;
	} else {
		s->rp.pid = (int)ro.pid;
	}
	/*
	 * Spans mode follows the command's descendants too: its programs then take any process
	 * whose threads announced a block, which only ours do (our uprobes are per process).
	 */
	skel->rodata->targ_tgid = s->cmd && ro.mode == MODE_SPANS ? 0 : (uint32_t)s->rp.pid;
	/* the span probes on uprobe_multi links where the kernel has them: attach_all() */
	if (ro.mode == MODE_PROBES && (s->mask & ~(1u << SPAN_HOST)) && usdt_multi_supported()) {
		struct bpf_program *progs[] = { skel->progs.span_begin, skel->progs.span_end };
		int err = usdt_multi_prepare(skel->obj, progs, 2);

		if (err) {
			p_err("prepare the span probes' uprobe_multi links: %s", strerror(-err));
			return EXIT_FAIL;
		}
	}
	if (mmsb_trace_bpf__load(skel)) {
		p_err("load BPF programs: %s", strerror(errno));
		return EXIT_FAIL;
	}
	if (ro.n_pmu) {
		s->pmu_fds = malloc((size_t)(ro.n_pmu * nr_cpus) * sizeof(*s->pmu_fds));
		if (!s->pmu_fds)
			return EXIT_FAIL;
		for (int i = 0; i < ro.n_pmu * nr_cpus; i++)
			s->pmu_fds[i] = -1;
		if (pmu_open(ro.ev, ro.n_pmu, bpf_map__fd(skel->maps.pmu_events), nr_cpus,
			     s->pmu_fds))
			return EXIT_FAIL;
	}
	if (ro.events) {
		s->rb = ring_buffer__new(bpf_map__fd(skel->maps.events), timeline_on_event, &s->tl,
					 NULL);
		if (!s->rb) {
			p_err("ring buffer: %s", strerror(errno));
			return EXIT_FAIL;
		}
		s->rp.tl = &s->tl;
	}
	return GO_ON;
}

/*
 * A descendant of the command forked: its memory is its parent's, spans on included. Its blocks
 * are read now, so only what it does from here counts as its own.
 */
static void child_forked(void *ctx, pid_t child)
{
	struct session *s = ctx;

	procs_add_forked(s->procs, child, bpf_map__fd(s->skel->maps.span_blocks));
}

/*
 * A descendant exec'd, stopped before the new program's first instruction: our program on its
 * span__register, so its spans are on from the start if it maps the library (the kernel raises
 * the semaphore when it does). It is found by its first span, as -a finds processes.
 */
static void child_execd(void *ctx, pid_t pid)
{
	struct session *s = ctx;
	struct bpf_link *l;

	if (s->n_child_links == MAX_CHILD_LINKS) {
		s->children_untraced++;
		return;
	}
	l = bpf_program__attach_usdt(s->skel->progs.span_register, pid, s->lib, "mmsb",
				     "span__register", NULL);
	if (l)
		s->child_links[s->n_child_links++] = l;
	else
		s->children_untraced++;
	procs_add_execd(s->procs, pid, bpf_map__fd(s->skel->maps.span_blocks));
}

/* A descendant at its exit stop: its spans read a last time, exactly. */
static void child_exiting(void *ctx, pid_t pid)
{
	struct session *s = ctx;

	procs_exited(s->procs, pid);
}

/*
 * Spans mode: our program on mmsb:span__register (its semaphore turns the target's spans on),
 * the scheduler's switches (off-CPU time per span) and the stack sampler. 0, or -1 after a line.
 */
static int attach_spans(struct session *s)
{
	struct mmsb_trace_bpf *skel = s->skel;
	uint64_t off;

	if (inproc_registry_off(s->lib, &off)) {
		p_err("%s has no in-process spans (mmsb_span_registry): an older libmmsb? use "
		      "--mode probes",
		      s->lib);
		return -1;
	}
	if (ro.all)
		s->procs = procs_new(s->lib, off);
	else
		s->ip = inproc_new(s->rp.pid, s->lib, off);
	if (s->ip && s->cmd) {
		/* the command's descendants too: read apart from it, found as they fork or exec */
		s->procs = procs_new(s->lib, off);
		if (s->procs) {
			procs_exclude(s->procs, s->rp.pid);
			s->tr.on_fork = child_forked;
			s->tr.on_exec = child_execd;
			s->tr.on_exit = child_exiting;
			s->tr.ctx = s;
		}
	}
	if (!s->ip && !s->procs) {
		p_err("in-process spans: %s", strerror(errno));
		return -1;
	}
	s->rp.span_cost_ns = inproc_span_cost();
	/* -a: on the file, for every process that maps it, now or later (pid -1) */
	s->span_reg = bpf_program__attach_usdt(skel->progs.span_register, ro.all ? -1 : s->rp.pid,
					       s->lib, "mmsb", "span__register", NULL);
	if (!s->span_reg) {
		p_err("attach mmsb:span__register in %s: %s (built with PROBES=0?)", s->lib,
		      strerror(errno));
		return -1;
	}
	s->switch_link = bpf_program__attach(skel->progs.span_switch);
	if (!s->switch_link) {
		p_err("attach sched_switch: %s", strerror(errno));
		return -1;
	}
	if (ro.sample_hz) {
		s->smp_links = calloc((size_t)s->nr_cpus, sizeof(*s->smp_links));
		if (!s->smp_links ||
		    perf_sample_open(skel->progs.span_sample, ro.sample_hz, s->nr_cpus,
				     s->smp_links, &s->n_smp_links, "stack samples"))
			return -1;
	}
	return 0;
}

/* The span probes, libffi's call (ffi_call) and the host sampler: 0, or -1 after one line. */
static int attach(struct session *s)
{
	struct mmsb_trace_bpf *skel = s->skel;

	if (ro.mode == MODE_SPANS ? attach_spans(s) :
				    attach_all(skel, s->rp.pid, s->lib, s->mask, s->links,
					       &s->n_links, s->multi, &s->n_multi))
		return -1;
	if (s->ffi_lib[0]) {
		/* the host side of the boundary: libffi's call, entry and return */
		LIBBPF_OPTS(bpf_uprobe_opts, bo, .func_name = "ffi_call");
		LIBBPF_OPTS(bpf_uprobe_opts, eo, .func_name = "ffi_call", .retprobe = true);
		struct bpf_link *b = bpf_program__attach_uprobe_opts(skel->progs.ffi_begin,
								     s->rp.pid, s->ffi_lib, 0, &bo);
		struct bpf_link *e =
			b ? bpf_program__attach_uprobe_opts(skel->progs.ffi_end, s->rp.pid,
							    s->ffi_lib, 0, &eo) :
			    NULL;

		if (!b || !e) {
			p_err("attach ffi_call in %s: %s", s->ffi_lib, strerror(errno));
			bpf_link__destroy(b);
			return -1;
		}
		s->links[s->n_links++] = b;
		s->links[s->n_links++] = e;
	}
	if (ro.host_hz) {
		/* attaching here turns the threads' crossing records on (lib/probes.h) */
		struct bpf_link *l =
			bpf_program__attach_usdt(skel->progs.host_register, s->rp.pid, s->lib,
						 "mmsb", "host__register", NULL);

		if (!l) {
			p_err("--host-sample: %s has no mmsb:host__register probe (%s)", s->lib,
			      strerror(errno));
			return -1;
		}
		s->host_reg = l;
		if (perf_sample_open(skel->progs.host_sample, ro.host_hz, s->nr_cpus, s->host_links,
				     &s->n_host_links, "--host-sample"))
			return -1;
	}
	return 0;
}

/*
 * The window's end, one instant for every kind: the programs stop recording before anything is
 * taken out (a probe's removal takes tens of ms, and they come out one by one). The instant is
 * read after the switch: every span recorded ended before it.
 */
static void stop_window(struct session *s)
{
	struct report *rp = &s->rp;

	__atomic_store_n(&s->skel->bss->window_state, WINDOW_STOPPED, __ATOMIC_SEQ_CST);
	rp->window_end_ns = mono_ns();
	rp->wall_ns = rp->window_end_ns - rp->window_start_ns;
	if (s->ip && s->ended_at_interval)
		inproc_stop_at_interval(s->ip);
	else if (s->ip)
		inproc_stop(s->ip);
	if (s->procs && s->ended_at_interval)
		procs_stop_at_interval(s->procs);
	else if (s->procs)
		procs_refresh(s->procs);
}

/* Spans mode: the maps the programs' figures are read from. */
static struct inproc_maps spans_maps(const struct mmsb_trace_bpf *skel)
{
	return (struct inproc_maps){
		.stats_fd = bpf_map__fd(skel->maps.span_stats),
		.blocks_fd = bpf_map__fd(skel->maps.span_blocks),
		.offcpu_fd = bpf_map__fd(skel->maps.span_offcpu),
		.offcpu_start_fd = bpf_map__fd(skel->maps.offcpu_start),
		.samples_fd = bpf_map__fd(skel->maps.span_samples),
		.stacks_fd = bpf_map__fd(skel->maps.user_stacks),
	};
}

/* Spans mode: what its kernel programs have run for so far (BPF stats), for the cost line. */
static uint64_t spans_run_ns(const struct mmsb_trace_bpf *skel)
{
	return prog_run_ns(skel->progs.span_switch) + prog_run_ns(skel->progs.span_sample) +
	       prog_run_ns(skel->progs.span_register);
}

/*
 * -i: the interval that ends now, its table on stdout (the figures reset each time, as
 * funclatency -i and perf stat -I print them). The whole window's report comes at the end.
 */
static void interval_report(struct session *s, uint64_t n)
{
	struct report iv = {
		.o = &ro,
		.pid = s->rp.pid,
		.window_start_ns = s->iv_start_ns ? s->iv_start_ns : s->rp.window_start_ns,
		.span_cost_ns = s->rp.span_cost_ns,
	};
	struct inproc_maps m = spans_maps(s->skel);

	if (s->iv_fd < 0) {
		s->iv_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "iv_stats", sizeof(struct span_key),
					  sizeof(struct span_stats), 16384, NULL);
		if (s->iv_fd < 0) {
			p_err("-i: a map for the intervals: %s", strerror(errno));
			return;
		}
	}
	iv.window_end_ns = mono_ns();
	iv.wall_ns = iv.window_end_ns - iv.window_start_ns;
	map_empty(s->iv_fd, sizeof(struct span_key));
	/* without it, the next interval covers this one too: its off-CPU time is growth */
	if (inproc_offcpu_read(&m)) {
		p_err("-i: %s", strerror(ENOMEM));
		return;
	}
	if (!(s->ip && inproc_interval(s->ip, &iv, &m, s->mask, s->iv_fd)) &&
	    !(s->procs && procs_interval(s->procs, &iv, &m, s->mask, s->iv_fd)))
		report_interval(&iv, s->iv_fd, n);
	inproc_offcpu_free(&m);
	free(iv.threads);
	free(iv.procs);
	s->iv_start_ns = iv.window_end_ns;
}

/* serve: every process's figures so far, to the exporter (serve.c) */
static void export_figures(struct session *s)
{
	struct inproc_maps m = spans_maps(s->skel);

	s->next_export = mono_ns() + 1000000000ull;
	/* without it, the next export, a second later */
	if (inproc_offcpu_read(&m)) {
		p_err("serve: %s", strerror(ENOMEM));
		return;
	}
	serve_export(s->procs, &m, s->mask, s->skel->bss->counters, s->rp.span_cost_ns,
		     spans_run_ns(s->skel));
	inproc_offcpu_free(&m);
}

/* Follow the target until it exits, the duration ends or we are told to stop. */
static void follow(struct session *s)
{
	struct report *rp = &s->rp;
	uint64_t t0, deadline = 0, last_maps = 0, last_poll = 0, next_iv = 0, n_iv = 0;
	sigset_t chld, old_mask;
	int sfd = -1;
	int status;

	rp->lib = s->lib;
	rp->cmd = s->cmd;
	if (ro.all)
		fprintf(stderr,
			"%s: recording the spans of every process that maps %s (spans mode); %s\n",
			prog_name, s->lib,
			ro.duration ? "tracing for the duration" : "Ctrl-C stops");
	else if (s->ip)
		fprintf(stderr, "%s: recording the spans of %s in process %d (spans mode)%s; %s\n",
			prog_name, s->lib, rp->pid, s->n_smp_links ? ", sampling its stacks" : "",
			ro.duration ? "tracing for the duration" :
				      "Ctrl-C or the target's exit stops");
	else
		fprintf(stderr, "%s: attached to %d probes of %s in process %d%s; %s\n", prog_name,
			s->n_links + !!s->host_reg, s->lib, rp->pid,
			s->n_host_links ? ", sampling its host side" : "",
			ro.duration ? "tracing for the duration" :
				      "Ctrl-C or the target's exit stops");
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (!s->cmd)
		rp->syms = syms_load_pid(rp->pid);
	/* every probe is in: the window opens, for every kind at once */
	t0 = mono_ns();
	__atomic_store_n(&s->skel->bss->window_state, WINDOW_OPEN, __ATOMIC_SEQ_CST);
	rp->window_start_ns = t0;
	if (s->ip) {
		inproc_poll(s->ip, bpf_map__fd(s->skel->maps.span_blocks));
		inproc_start(s->ip);
	}
	if (s->procs)
		procs_scan(s->procs, bpf_map__fd(s->skel->maps.span_blocks), t0);
	if (ro.duration)
		deadline = t0 + (uint64_t)(ro.duration * 1e9);
	if (ro.interval)
		next_iv = t0 + (uint64_t)(ro.interval * 1e9);
	/*
	 * The command's stops and exits come as SIGCHLD: waited for on a signalfd, the tool wakes
	 * for them and for its own deadlines only. Polling waitpid() every 2 ms woke it 500 times
	 * a second, each a switch on a CPU the target may want. The ring buffer (-e) keeps the
	 * 2 ms poll: its events are what it waits for.
	 */
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	if (s->cmd && !s->rb && !sigprocmask(SIG_BLOCK, &chld, &old_mask))
		sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	if (s->cmd) {
		ptrace(PTRACE_CONT, s->tr.main, NULL, NULL);
		s->started = true;
	}
	for (;;) {
		uint64_t now = mono_ns(), nap = sfd >= 0 ? 100000000 : s->cmd ? 2000000 : 50000000;

		if (stop_requested || (deadline && now >= deadline))
			break;
		if (next_iv && now >= next_iv) {
			interval_report(s, ++n_iv);
			next_iv += (uint64_t)(ro.interval * 1e9);
			if (ro.count && n_iv >= ro.count) {
				s->ended_at_interval = true;
				break;
			}
			continue;
		}
		/* never sleep past the deadline (or the interval's end): the window is what was asked */
		if (deadline && deadline - now < nap)
			nap = deadline - now;
		if (next_iv && next_iv - now < nap)
			nap = next_iv - now;
		if (s->cmd) {
			pid_t w = waitpid(-1, &status, __WALL | WNOHANG);

			if (w > 0) {
				if (!tree_event(&s->tr, w, status))
					break;
				continue;
			}
			if (w < 0 && errno == ECHILD) {
				/* nothing left to wait for (cannot happen): never spin */
				s->tr.main_gone = true;
				break;
			}
		} else if (!s->procs && kill(rp->pid, 0) && errno == ESRCH) {
			break;
		}
		if ((s->procs || s->ip) && mono_ns() - last_poll > 100000000ull) {
			/* new processes, from the threads that announced a block */
			if (s->procs)
				procs_poll(s->procs, bpf_map__fd(s->skel->maps.span_blocks), t0);
			/* an exiting process keeps what was read last: read often */
			if (s->procs && mono_ns() - last_maps > 250000000ull) {
				procs_refresh(s->procs);
				last_maps = mono_ns();
			}
			/* blocks whose announcement came before the program did */
			if (s->ip)
				inproc_poll(s->ip, bpf_map__fd(s->skel->maps.span_blocks));
			last_poll = mono_ns();
		}
		if (ro.listen && mono_ns() >= s->next_export)
			export_figures(s);
		if (!s->cmd && !s->procs && mono_ns() - last_maps > 1000000000ull) {
			/* keep recent maps: the target may exit before we report */
			struct syms *sy = syms_load_pid(rp->pid);

			if (sy) {
				syms_free(rp->syms);
				rp->syms = sy;
			}
			last_maps = mono_ns();
		}
		if (s->rb) {
			ring_buffer__poll(s->rb, (int)((nap + 999999) / 1000000));
		} else if (sfd >= 0) {
			struct pollfd pfd = { .fd = sfd, .events = POLLIN };
			struct signalfd_siginfo si;

			if (poll(&pfd, 1, (int)((nap + 999999) / 1000000)) > 0)
				while (read(sfd, &si, sizeof(si)) == sizeof(si))
					; /* waitpid() above reaps what it said */
		} else {
			usleep((useconds_t)((nap + 999) / 1000));
		}
	}
	if (sfd >= 0) {
		close(sfd);
		sigprocmask(SIG_SETMASK, &old_mask, NULL);
	}
	stop_window(s);
}

/*
 * The spans still open at the stop, from the per-thread span stacks (frozen: nothing is recorded
 * any more): per kind the count and the time so far (stop - begin). Begins past the stack's depth
 * still open are counted apart; an entry that cannot be one of this window's open spans (a kind
 * not traced, a begin outside the window, a depth past the stack) is counted as inconsistent,
 * never left unsaid.
 */
static void collect_open(struct session *s)
{
	int fd = bpf_map__fd(s->skel->maps.stacks_open);
	struct report *rp = &s->rp;
	__u32 key, next, *prev = NULL;
	struct span_stack st;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &st))
			continue;
		rp->open_deep += st.overflow;
		if (st.depth > MAX_SPAN_DEPTH) {
			rp->open_bad += st.depth;
			continue;
		}
		for (__u32 d = 0; d < st.depth; d++) {
			const struct open_span *o = &st.s[d];

			if (o->kind >= SPAN_KINDS || !(s->mask & (1u << o->kind)) ||
			    o->start_ns < rp->window_start_ns || o->start_ns > rp->window_end_ns) {
				rp->open_bad++;
				continue;
			}
			rp->open_n[o->kind]++;
			rp->open_ns[o->kind] += rp->window_end_ns - o->start_ns;
		}
	}
}

/*
 * The window closed: the command's processes let go first (a tracee that stops, a signal or a
 * fork, while the probes come out, seconds, would wait for us), then what the maps hold, read
 * while every probe is still in: nothing is recorded any more, and the report comes before the
 * slow teardown (teardown()).
 */
static void collect(struct session *s)
{
	struct mmsb_trace_bpf *skel = s->skel;
	struct report *rp = &s->rp;

	if (s->cmd && !s->tr.main_gone) {
		char other[PATH_MAX];

		/* at its exit stop or still running: its maps are all there, for the symbols */
		syms_free(rp->syms);
		rp->syms = syms_load_pid(s->tr.main);
		int mapped = maps_libmmsb(s->tr.main, s->lib, other, sizeof(other));

		/* nothing recorded is said, never left to look like a process that did nothing */
		if (mapped == 2)
			fprintf(stderr,
				"%s: process %d loaded %s, the probes were on %s: name it with -l\n",
				prog_name, s->tr.main, other, s->lib);
		else if (!mapped && !(s->procs && procs_count(s->procs)))
			fprintf(stderr, "%s: process %d never mapped %s: nothing to record\n",
				prog_name, s->tr.main, s->lib);
	}
	if (s->cmd) {
		tree_release(&s->tr);
		/* spans mode traced them, bar those past MAX_CHILD_LINKS */
		if (s->procs)
			s->tr.untraced = s->children_untraced;
		rp->untraced = s->tr.untraced;
	}
	if (s->rb)
		ring_buffer__consume(s->rb); /* what the target wrote before the stop */
	for (int i = 0; i < CNT_MAX; i++)
		rp->counters[i] = skel->bss->counters[i];
	rp->first_begin_ns = skel->bss->first_begin_ns;
	rp->last_end_ns = skel->bss->last_end_ns;
	if (rp->last_end_ns > rp->first_begin_ns)
		rp->window_ns = rp->last_end_ns - rp->first_begin_ns;
	if (s->ip || s->procs) {
		rp->maps = spans_maps(skel);
		rp->ip = s->ip;
		rp->bpf_run_ns = spans_run_ns(skel);
		inproc_charge_pending(&rp->maps, rp->window_end_ns);
		if (inproc_offcpu_read(&rp->maps))
			p_err("spans: %s", strerror(ENOMEM));
		if (s->ip && inproc_report(s->ip, rp, &rp->maps, s->mask))
			p_err("spans: %s", strerror(ENOMEM));
		/* -- CMD with descendants that kept spans: a row each, the command's first */
		if (s->ip && s->procs && procs_count(s->procs))
			procs_main_row(rp, rp->pid, 0);
		if (s->procs && procs_report(s->procs, rp, &rp->maps, s->mask))
			p_err("spans: %s", strerror(ENOMEM));
		inproc_offcpu_free(&rp->maps);
	} else {
		collect_open(s);
		if (s->bpf_stats_fd >= 0)
			rp->bpf_run_ns = prog_run_ns(skel->progs.span_begin) +
					 prog_run_ns(skel->progs.span_end) +
					 prog_run_ns(skel->progs.ffi_begin) +
					 prog_run_ns(skel->progs.ffi_end);
	}
	features_probe(&rp->features);
}

/*
 * Every probe out, after the report: the kernel removes a perf-event probe one at a time, tens of
 * ms each (about 20 s for every kind's sites on libbpf's usdt path); a uprobe_multi link's sites
 * come out together, in about as long as one (attach_all). The sampler first, the records' switch last: the kernel takes a
 * probe out only once every task has passed a quiescent point, and a host busy in user space can
 * hold that for seconds. The time it took ends the table.
 */
static void teardown(struct session *s)
{
	int n = s->n_host_links + s->n_multi + !!s->host_reg + s->n_smp_links + !!s->span_reg +
		!!s->switch_link;
	uint64_t t0 = mono_ns();
	char d[32];

	for (int i = 0; i < s->n_links; i++)
		n += !!s->links[i]; /* a NULL: a probe on a multi link (attach_all) */
	fflush(stdout);
	for (int i = 0; i < s->n_smp_links; i++)
		bpf_link__destroy(s->smp_links[i]);
	s->n_smp_links = 0;
	bpf_link__destroy(s->switch_link);
	s->switch_link = NULL;
	/* the spans' switch: the target's threads stop keeping them */
	bpf_link__destroy(s->span_reg);
	s->span_reg = NULL;
	for (int i = 0; i < s->n_child_links; i++)
		bpf_link__destroy(s->child_links[i]);
	n += s->n_child_links;
	s->n_child_links = 0;
	for (int i = 0; i < s->n_host_links; i++)
		bpf_link__destroy(s->host_links[i]);
	s->n_host_links = 0;
	for (int i = 0; i < s->n_links; i++)
		bpf_link__destroy(s->links[i]);
	s->n_links = 0;
	for (int i = 0; i < s->n_multi; i++)
		usdt_multi_link_destroy(s->multi[i]);
	s->n_multi = 0;
	bpf_link__destroy(s->host_reg);
	s->host_reg = NULL;
	n += s->hc.n;
	hit_cal_free(&s->hc);
	fmt_dur(mono_ns() - t0, d, sizeof(d));
	if (!ro.no_table && n) {
		printf("teardown after the report: %d probe link%s removed in %s\n", n,
		       n > 1 ? "s" : "", d);
		fflush(stdout);
	}
}

/* The report, the event stream closed, and the status: the command's, unless the report failed. */
static int conclude(struct session *s)
{
	struct report *rp = &s->rp;
	struct tree *tr = &s->tr;
	int ret;

	/*
	 * The objects read for symbols with the user's rights, as the user could (--as-root is
	 * root's own, never under sudo); the outputs are the user's in any case (out_close).
	 */
	if (!ro.as_root && as_user_enter()) {
		p_err("cannot take the invoking user's identity");
		return EXIT_FAIL;
	}
	if (ro.host_hz &&
	    host_collect(bpf_map__fd(s->skel->maps.host_samples), rp->syms, &rp->host))
		p_err("--host-sample: %s", strerror(ENOMEM));
	rp->o = &ro;
	rp->stats_fd = bpf_map__fd(s->skel->maps.span_stats);
	rp->stacks_fd = bpf_map__fd(s->skel->maps.user_stacks);
	ret = report_write(rp);
	if (!ro.as_root)
		as_user_leave();
	if (s->tl.f) {
		if (s->tl.write_err) {
			p_err("%s: %s", ro.events, strerror(EIO));
			out_discard(&ro.out[OUT_EVENTS]);
			ret = EXIT_FAIL;
		} else if (out_close(&ro.out[OUT_EVENTS])) {
			ret = EXIT_FAIL;
		}
		s->tl.f = NULL;
	}
	if (tr->untraced)
		fprintf(stderr,
			"%s: %d other process%s of the command (first: %d) used libmmsb and %s not "
			"traced: only process %d is (docs/tracing.md)\n",
			prog_name, tr->untraced, tr->untraced > 1 ? "es" : "", tr->first_untraced,
			tr->untraced > 1 ? "were" : "was", tr->main);
	teardown(s);
	if (s->cmd && !tr->main_gone && !tr->main_exiting) {
		/* -d or a signal ended the tracing: the command goes on, we do not wait for it */
		fprintf(stderr, "%s: tracing ended; process %d goes on untraced\n", prog_name,
			tr->main);
	} else if (s->cmd) {
		/* it has exited or is exiting: its status is ours, unless the report failed */
		if (!tr->main_gone && waitpid(tr->main, &tr->main_status, 0) == tr->main)
			tr->main_gone = true;
		if (tr->main_gone) {
			int st = command_status(s->cmd[0], tr->main_status);

			if (ret == EXIT_OK)
				ret = st;
		}
	}
	return ret;
}

/* This host's cost of a hit, on the loaded programs before the window: ro.hit_ns, its source. */
static void measure_hit_cost(struct session *s)
{
	uint64_t t0 = mono_ns();
	double ns;

	if (s->mask && !hit_cost_measure(s->skel, HIT_BUDGET_NS, &s->hc, &ns)) {
		ro.hit_measure_ns = mono_ns() - t0;
		ro.hit_ns = (uint64_t)(ns + 0.5);
		ro.hit_src = "measured";
		return;
	}
	ro.hit_ns = DEFAULT_HIT_NS;
	ro.hit_src = s->mask ? "default (the measurement failed)" : "default (no span probes)";
	if (s->mask)
		fprintf(stderr, "%s: the hit cost could not be measured: %d ns a hit assumed\n",
			prog_name, DEFAULT_HIT_NS);
}

static void session_free(struct session *s)
{
	int status;

	for (int i = 0; i < s->n_links; i++)
		bpf_link__destroy(s->links[i]);
	for (int i = 0; i < s->n_multi; i++)
		usdt_multi_link_destroy(s->multi[i]);
	for (int i = 0; i < s->n_host_links; i++)
		bpf_link__destroy(s->host_links[i]);
	free(s->host_links);
	for (int i = 0; i < s->n_smp_links; i++)
		bpf_link__destroy(s->smp_links[i]);
	free(s->smp_links);
	if (s->iv_fd >= 0)
		close(s->iv_fd);
	if (s->bpf_stats_fd >= 0)
		close(s->bpf_stats_fd);
	bpf_link__destroy(s->switch_link);
	bpf_link__destroy(s->span_reg);
	for (int i = 0; i < s->n_child_links; i++)
		bpf_link__destroy(s->child_links[i]);
	inproc_free(s->ip);
	procs_free(s->procs);
	free(s->rp.procs);
	free(s->rp.threads);
	bpf_link__destroy(s->host_reg);
	hit_cal_free(&s->hc);
	host_report_free(&s->rp.host);
	if (s->tr.main > 0 && !s->started && !s->tr.main_gone) {
		/* stopped at its exec, never ran an instruction of its own: nothing was started */
		kill(s->tr.main, SIGKILL);
		waitpid(s->tr.main, &status, 0);
	}
	syms_free(s->rp.syms);
	ring_buffer__free(s->rb);
	for (int i = 0; s->pmu_fds && i < ro.n_pmu * s->nr_cpus; i++)
		if (s->pmu_fds[i] >= 0)
			close(s->pmu_fds[i]);
	free(s->pmu_fds);
	/* what was not completed leaves the files at those paths as they were */
	for (int i = 0; i < N_OUT; i++)
		out_discard(&ro.out[i]);
	free(s->tl.v);
	mmsb_trace_bpf__destroy(s->skel);
	serve_stop();
}

int do_record(int argc, char **argv)
{
	static struct session s;
	int ret;

	memset(&s, 0, sizeof(s));
	s.nr_cpus = 1;
	s.iv_fd = -1;
	s.bpf_stats_fd = -1;
	ret = record_parse_args(argc, argv, &s.cmd);
	if (ret == GO_ON)
		ret = check_request(&s);
	if (ret == GO_ON)
		ret = find_lib(&s);
	if (ret == GO_ON && ro.listen && serve_start(ro.listen))
		ret = EXIT_FAIL; /* before anything is attached: a port in use fails at once */
	if (ret != GO_ON)
		return ret;
	if (open_outputs(&s))
		ret = EXIT_FAIL;
	else
		ret = load(&s);
	if (ret == GO_ON)
		/*
		 * the programs' own run time, part of the cost line, counted apart from the traps
		 * in the probe mode (features.c); -1: not counted here
		 */
		s.bpf_stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (ret == GO_ON && !ro.hit_src && ro.mode == MODE_PROBES)
		measure_hit_cost(&s);
	if (ret == GO_ON)
		ret = attach(&s) ? EXIT_FAIL : GO_ON;
	if (ret == GO_ON) {
		follow(&s);
		collect(&s);
		if (ro.listen)
			export_figures(&s); /* the last figures, pending off-CPU time charged */
		ret = conclude(&s);
	}
	session_free(&s);
	return ret;
}
