// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The host's side of the FFI boundary, sampled (record --host-sample): a CPU-clock timer on
 * every CPU runs host_sample() in the BPF object, which reads the sampled thread's crossing
 * record (lib/probes.h) and keeps the target's user-mode samples taken outside every API call,
 * by address and by whether the thread crossed into libmmsb since its previous sample (the
 * boundary's time: marshalling, the call loop) or not (the host's own work). Here those
 * addresses become frames, module and function, and the time per crossing.
 *
 * Why sampled and not probed: a crossing from CPython costs about 0.6 us on the host side, and a
 * uprobe hit costs about 1.3 us on the VM measured, and slows the host code after it; probes on
 * libffi or on the library's entry would more than double what they measure (docs/ffi.md).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/perf_event.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "mmsb_trace.h"
#include "syms_helpers.h"
#include "tool_helpers.h"
#include "trace.h"

int host_sample_check(uint64_t hz, char *why, size_t len)
{
	uint64_t max_rate = 0;
	FILE *f = fopen("/proc/sys/kernel/perf_event_max_sample_rate", "re");

	if (f) {
		if (fscanf(f, "%" SCNu64, &max_rate) != 1)
			max_rate = 0;
		fclose(f);
	}
	if (!hz || (max_rate && hz > max_rate)) {
		snprintf(why, len,
			 "%" PRIu64 " Hz: the kernel samples at most %" PRIu64
			 " Hz (kernel.perf_event_max_sample_rate)",
			 hz, max_rate);
		return -EINVAL;
	}
	return 0;
}

int perf_sample_open(struct bpf_program *prog, uint64_t hz, int nr_cpus, struct bpf_link **links,
		     int *n_links, const char *what)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE,
		.size = sizeof(attr),
		.config = PERF_COUNT_SW_CPU_CLOCK,
		/* a fixed period in ns of CPU time, so every sample weighs the same */
		.sample_period = 1000000000ull / hz,
	};

	*n_links = 0;
	for (int cpu = 0; cpu < nr_cpus; cpu++) {
		int fd = sys_perf_event_open(&attr, -1, cpu), err = errno;
		struct bpf_link *l;

		if (fd < 0 && err == ENODEV)
			continue; /* an offline CPU */
		if (fd < 0) {
			p_err("%s: a CPU clock on CPU %d: %s", what, cpu, strerror(err));
			return -err;
		}
		l = bpf_program__attach_perf_event(prog, fd);
		if (!l) {
			err = errno;
			close(fd);
			p_err("%s: attach on CPU %d: %s", what, cpu, strerror(err));
			return -err;
		}
		links[(*n_links)++] = l; /* the link owns fd */
	}
	return *n_links ? 0 : -ENODEV;
}

static int cmp_frame(const void *a, const void *b)
{
	const struct host_frame *x = a, *y = b;
	uint64_t nx = x->samples[HOST_FFI] + x->samples[HOST_OTHER];
	uint64_t ny = y->samples[HOST_FFI] + y->samples[HOST_OTHER];

	return nx < ny ? 1 : nx > ny ? -1 : strcmp(x->symbol, y->symbol);
}

int host_collect(int samples_fd, struct syms *sy, struct host_report *hr)
{
	struct host_key key, next, *prev = NULL;
	size_t cap = 0;

	while (!bpf_map_get_next_key(samples_fd, prev, &next)) {
		char sym[192], mod[64] = "[unknown]";
		struct frame_loc fl;
		struct host_frame *f = NULL;
		uint64_t count;

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(samples_fd, &key, &count) || key.cls > HOST_OTHER)
			continue;
		hr->samples[key.cls] += count;
		syms_name(sy, key.ip, sym, sizeof(sym));
		if (syms_locate(sy, key.ip, &fl)) {
			const char *slash = strrchr(fl.module, '/');

			snprintf(mod, sizeof(mod), "%s", slash ? slash + 1 : fl.module);
		}
		/* one frame per module and function: addresses inside a function add up */
		for (int i = 0; i < hr->n && !f; i++)
			if (!strcmp(hr->f[i].symbol, sym) && !strcmp(hr->f[i].module, mod))
				f = &hr->f[i];
		if (!f) {
			if ((size_t)hr->n == cap) {
				size_t nc = cap ? 2 * cap : 64;
				struct host_frame *nf = realloc(hr->f, nc * sizeof(*nf));

				if (!nf)
					return -ENOMEM;
				hr->f = nf;
				cap = nc;
			}
			f = &hr->f[hr->n++];
			memset(f, 0, sizeof(*f));
			snprintf(f->module, sizeof(f->module), "%s", mod);
			snprintf(f->symbol, sizeof(f->symbol), "%s", sym);
		}
		f->samples[key.cls] += count;
	}
	if (hr->n)
		qsort(hr->f, (size_t)hr->n, sizeof(*hr->f), cmp_frame);
	return 0;
}

void host_report_free(struct host_report *hr)
{
	free(hr->f);
	hr->f = NULL;
	hr->n = 0;
}
