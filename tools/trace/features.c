// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* mmsb-trace features: what the kernel offers the tracer, and what one probe hit costs here. */
#include <errno.h>
#include <linux/capability.h>
#include <getopt.h>
#include <json-c/json.h>
#include <limits.h>
#include <mmsb/mmsb.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "mmsb_trace.h"
#include "mmsb_trace.skel.h"
#include "tool_helpers.h"
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
