// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* mmsb-trace features: what the kernel offers the tracer, and what one probe hit costs here. */
#include <errno.h>
#include <linux/capability.h>
#include <getopt.h>
#include <json-c/json.h>
#include <limits.h>
#include <mmsb/mmsb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "mmsb_probes.h"
#include "mmsb_trace.h"
#include "mmsb_trace.skel.h"
#include "tool_helpers.h"
#include "usdt_helpers.h"
#include "trace.h"

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

int features_help(void)
{
	printf("Usage: %s [-j] features [--calibrate]\n\n"
	       "Report what this kernel offers the tracer: BTF, uprobes with reference-counted\n"
	       "semaphores, the BPF cookie, the BPF ring buffer, and our privileges. With\n"
	       "--calibrate (root), measure the cost of one probe hit with the tracer's own\n"
	       "program attached: the number record's overhead estimate wants (--hit-cost).\n",
	       prog_name);
	return EXIT_OK;
}

/*
 * Time N calls of a libmmsb function with a span probe pair (mmsb_page_epoch: api__entry and
 * api__exit), untraced and then with the tracer attached to those two probes of our own process.
 */
static int calibrate(double *per_hit_ns, uint64_t *hits)
{
	const int n = 200000;
	struct mmsb_state *s = mmsb_state_open(NULL);
	struct mmsb_trace_bpf *skel = NULL;
	struct bpf_link *l[2] = { 0 };
	const char *lib = own_libmmsb();
	char path[PATH_MAX];
	uint64_t id, t0, plain, traced;
	int err = -1;

	if (!s || !lib || !realpath(lib, path) || mmsb_page_create(s, 8, MMSB_LOC_CPU, &id))
		goto out;
	for (int i = 0; i < n / 10; i++) /* warm */
		mmsb_page_epoch(s, id);
	t0 = mono_ns();
	for (int i = 0; i < n; i++)
		mmsb_page_epoch(s, id);
	plain = mono_ns() - t0;
	skel = mmsb_trace_bpf__open();
	if (!skel)
		goto out;
	skel->rodata->targ_tgid = (uint32_t)getpid();
	skel->rodata->kinds_mask = 1u << SPAN_API;
	if (mmsb_trace_bpf__load(skel))
		goto out;
	LIBBPF_OPTS(bpf_usdt_opts, uo, .usdt_cookie = SPAN_API);
	l[0] = bpf_program__attach_usdt(skel->progs.span_begin, getpid(), path, "mmsb",
					"api__entry", &uo);
	l[1] = bpf_program__attach_usdt(skel->progs.span_end, getpid(), path, "mmsb", "api__exit",
					&uo);
	if (!l[0] || !l[1])
		goto out;
	skel->bss->counters[CNT_HITS] = 0;
	skel->bss->window_state = WINDOW_OPEN;
	t0 = mono_ns();
	for (int i = 0; i < n; i++)
		mmsb_page_epoch(s, id);
	traced = mono_ns() - t0;
	*hits = skel->bss->counters[CNT_HITS];
	*per_hit_ns = *hits ? (double)(traced > plain ? traced - plain : 0) / (double)*hits : 0;
	err = *hits ? 0 : -1;
out:
	bpf_link__destroy(l[0]);
	bpf_link__destroy(l[1]);
	mmsb_trace_bpf__destroy(skel);
	mmsb_state_close(s);
	return err;
}

#define HIT_BATCH 32	/* calls a batch */
#define HIT_BATCHES 512 /* at most, each way */

/*
 * The api pair's call sites of mmsb_page_epoch, as uprobes running cal_begin/cal_end with the
 * probes' semaphore counted: 0, or -1. The sites sit in the function's traced twin, a local
 * symbol a stripped library lacks; what names them is their argument, the function's API id,
 * a constant in the note ("4@$14").
 */
static bool epoch_site(const struct usdt_note *n)
{
	const char *c = strchr(n->args, '$');
	char *end;

	return n->n_args == 1 && c && strtoul(c + 1, &end, 10) == MMSB_FN_mmsb_page_epoch && c[1] &&
	       !*end;
}

static int attach_epoch_sites(struct mmsb_trace_bpf *skel, struct hit_cal *hc, const char *path)
{
	struct usdt_note *notes;
	int nn, err = 0;

	nn = usdt_notes_read(path, &notes);
	if (nn < 0)
		return -1;
	for (int i = 0; i < nn && !err; i++) {
		bool b = !strcmp(notes[i].name, "api__entry"),
		     e = !strcmp(notes[i].name, "api__exit");
		struct bpf_link *l;

		if (strcmp(notes[i].provider, "mmsb") || (!b && !e) || !epoch_site(&notes[i]))
			continue;
		if (hc->n >= HIT_SITES) {
			err = -1;
			break;
		}
		/* the library fires its probes only while their semaphore is set */
		LIBBPF_OPTS(bpf_uprobe_opts, uo, .ref_ctr_offset = (size_t)notes[i].sema_off);
		l = bpf_program__attach_uprobe_opts(b ? skel->progs.cal_begin : skel->progs.cal_end,
						    getpid(), path, (size_t)notes[i].pc_off, &uo);
		if (!l)
			err = -1;
		else
			hc->l[hc->n++] = l;
	}
	free(notes);
	return err;
}

void map_empty(int fd, size_t key_size)
{
	char key[64];

	if (key_size > sizeof(key))
		return;
	/* a key that cannot be deleted would come back first forever: stop there */
	while (!bpf_map_get_next_key(fd, NULL, key))
		if (bpf_map_delete_elem(fd, key))
			break;
}

uint64_t prog_run_ns(const struct bpf_program *prog)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len))
		return 0;
	return info.run_time_ns;
}

static uint64_t min_of(const uint64_t *v, int n)
{
	uint64_t m = n ? v[0] : 0;

	for (int i = 1; i < n; i++)
		if (v[i] < m)
			m = v[i];
	return m;
}

/*
 * calibrate() bounded in time, for record, on the run's own loaded programs before its window
 * opens: batches of HIT_BATCH mmsb_page_epoch calls untraced for a fifth of the budget, then with
 * that function's api pair attached in our own process (cal_begin/cal_end, the run's settings)
 * until the budget is spent; the difference of the batches' medians per hit. Medians of small
 * batches: a preemption spoils one batch, not the figure. Then the maps are emptied of what it
 * recorded; the probes stay in hc until the caller's teardown (hit_cal_free: their removal is
 * slow).
 */
int hit_cost_measure(struct mmsb_trace_bpf *skel, uint64_t budget_ns, struct hit_cal *hc,
		     double *per_hit_ns)
{
	static uint64_t plain[HIT_BATCHES], traced[HIT_BATCHES];
	uint64_t t_end = mono_ns() + budget_ns, t_plain, id, calls = 0, hits;
	const char *lib = own_libmmsb();
	int np = 0, nt = 0, err = -1;
	char path[PATH_MAX];

	memset(hc, 0, sizeof(*hc));
	hc->s = mmsb_state_open(NULL);
	if (!hc->s || !lib || !realpath(lib, path) || mmsb_page_create(hc->s, 8, MMSB_LOC_CPU, &id))
		return -1;
	t_plain = mono_ns() + budget_ns / 5;
	for (int i = 0; i < HIT_BATCH; i++) /* warm */
		mmsb_page_epoch(hc->s, id);
	while (np < HIT_BATCHES && (np < 3 || mono_ns() < t_plain)) {
		uint64_t t0 = mono_ns();

		for (int i = 0; i < HIT_BATCH; i++)
			mmsb_page_epoch(hc->s, id);
		plain[np++] = mono_ns() - t0;
	}
	if (attach_epoch_sites(skel, hc, path) || !hc->n)
		return -1;
	skel->bss->cal_tgid = (uint32_t)getpid();
	__atomic_store_n(&skel->bss->window_state, WINDOW_CAL, __ATOMIC_SEQ_CST);
	while (nt < HIT_BATCHES && (nt < 3 || mono_ns() < t_end)) {
		uint64_t t0 = mono_ns();

		for (int i = 0; i < HIT_BATCH; i++)
			mmsb_page_epoch(hc->s, id);
		traced[nt++] = mono_ns() - t0;
		calls += HIT_BATCH;
	}
	__atomic_store_n(&skel->bss->window_state, WINDOW_BEFORE, __ATOMIC_SEQ_CST);
	/* the hits the program saw, per call: 2 unless a probe did not fire */
	hits = skel->bss->counters[CNT_HITS];
	if (hits) {
		double per_call = (double)hits / (double)calls;
		/*
		 * The fastest batch of each: a batch another task preempted is only slower, so
		 * the minimum is the undisturbed cost, where a median on a busy machine can put
		 * the traced batches below the plain ones.
		 */
		uint64_t mp = min_of(plain, np), mt = min_of(traced, nt);
		/*
		 * The programs' own run time per call (BPF stats, when the caller enabled them)
		 * is taken out: the run's report adds its programs' measured run time, and a hit
		 * is then the trap alone, whatever a program does (a stack walk at an outermost
		 * begin only, say).
		 */
		double prog = (double)(prog_run_ns(skel->progs.cal_begin) +
				       prog_run_ns(skel->progs.cal_end)) /
			      (double)calls;
		double call = mt > mp ? (double)(mt - mp) / HIT_BATCH : 0;

		*per_hit_ns = call > prog ? (call - prog) / per_call : 0;
		err = 0;
	}
	/* nothing of it in the run's report */
	map_empty(bpf_map__fd(skel->maps.stacks_open), sizeof(__u32));
	map_empty(bpf_map__fd(skel->maps.span_stats), sizeof(struct span_key));
	map_empty(bpf_map__fd(skel->maps.user_stacks), sizeof(__u32));
	memset(skel->bss->counters, 0, sizeof(skel->bss->counters));
	skel->bss->first_begin_ns = skel->bss->last_end_ns = 0;
	return err;
}

void hit_cal_free(struct hit_cal *hc)
{
	for (int i = 0; i < hc->n; i++)
		bpf_link__destroy(hc->l[i]);
	mmsb_state_close(hc->s);
	memset(hc, 0, sizeof(*hc));
}

void features_probe(struct trace_features *f)
{
	struct utsname u;

	memset(f, 0, sizeof(*f));
	uname(&u);
	snprintf(f->kernel, sizeof(f->kernel), "%s", u.release);
	f->btf = !access("/sys/kernel/btf/vmlinux", R_OK);
	f->refctr = !access("/sys/bus/event_source/devices/uprobe/format/ref_ctr_offset", R_OK);
	f->priv = have_bpf_caps();
	f->ringbuf = f->cookie = -1;
	if (f->priv) {
		/* probing loads tiny programs and maps: it needs the privileges itself */
		f->ringbuf = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL) == 1;
		f->cookie = libbpf_probe_bpf_helper(BPF_PROG_TYPE_KPROBE,
						    BPF_FUNC_get_attach_cookie, NULL) == 1;
	}
}

struct json_object *features_json(const struct trace_features *f)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "kernel", json_object_new_string(f->kernel));
	json_object_object_add(o, "btf", json_object_new_boolean(f->btf));
	json_object_object_add(o, "uprobe_ref_ctr", json_object_new_boolean(f->refctr));
	json_object_object_add(o, "bpf_cookie",
			       f->cookie < 0 ? NULL : json_object_new_boolean(f->cookie));
	json_object_object_add(o, "ringbuf",
			       f->ringbuf < 0 ? NULL : json_object_new_boolean(f->ringbuf));
	json_object_object_add(o, "privileged", json_object_new_boolean(f->priv));
	json_object_object_add(o, "libbpf", json_object_new_string(libbpf_version_string()));
	return o;
}

int do_features(int argc, char **argv)
{
	struct trace_features f;
	bool cal = false;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--calibrate"))
			cal = true;
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return features_help();
		else {
			p_err("features takes only --calibrate, not '%s'", argv[i]);
			return EXIT_USAGE;
		}
	}
	features_probe(&f);
	double per_hit = 0;
	uint64_t hits = 0;
	int cal_err = 0;

	if (cal) {
		if (!f.priv) {
			p_err("--calibrate needs CAP_BPF and CAP_PERFMON (or root)");
			return EXIT_FAIL;
		}
		cal_err = calibrate(&per_hit, &hits);
	}
	if (json) {
		struct json_object *o = features_json(&f);

		if (cal && !cal_err) {
			json_object_object_add(o, "hit_cost_ns", json_object_new_double(per_hit));
			json_object_object_add(o, "calibration_hits", json_object_new_uint64(hits));
		}
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
									 JSON_C_TO_STRING_SPACED));
		json_object_put(o);
	} else {
		printf("kernel                  %s\n", f.kernel);
		printf("BTF                     %s\n",
		       f.btf ? "yes (/sys/kernel/btf/vmlinux)" : "no");
		printf("uprobe semaphores       %s\n",
		       f.refctr ? "kernel reference counts them (ref_ctr_offset)" : "no");
		printf("BPF cookie              %s\n",
		       f.cookie < 0 ? "unknown (needs privileges to probe)" :
		       f.cookie	    ? "yes" :
				      "no");
		printf("BPF ring buffer         %s\n",
		       f.ringbuf < 0 ? "unknown (needs privileges to probe)" :
		       f.ringbuf     ? "yes" :
				       "no");
		printf("privileges              %s\n",
		       f.priv ? "yes" : "no: record needs CAP_BPF and CAP_PERFMON, or root");
		printf("libbpf                  %s\n", libbpf_version_string());
		if (cal && !cal_err)
			printf("cost of one probe hit   %.0f ns (%llu hits, api__entry/exit)\n",
			       per_hit, (unsigned long long)hits);
	}
	if (cal && cal_err) {
		p_err("calibration failed");
		return EXIT_FAIL;
	}
	return EXIT_OK;
}
