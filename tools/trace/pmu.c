// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Counters per span (record --pmu) and `mmsb-trace pmu list`: event names resolved by libpfm4,
 * one counting perf event per CPU for each, handed to the BPF program, which reads them at every
 * span begin and end (bpf_perf_event_read_value, scaled for multiplexing).
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/perf_event.h>
#include <linux/types.h>
#include <perfmon/pfmlib_perf_event.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "mmsb_trace.h"
#include "tool_helpers.h"
#include "trace.h"

static int pfm_ready(void)
{
	static int err = -1;

	if (err == -1)
		err = pfm_initialize();
	return err;
}

int sys_perf_event_open(struct perf_event_attr *a, pid_t pid, int cpu)
{
	return (int)syscall(SYS_perf_event_open, a, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC);
}

/* Is there a hardware PMU at all? Without one only software events can count. */
static bool have_hw_pmu(void)
{
	return !access("/sys/bus/event_source/devices/cpu", F_OK) ||
	       !access("/sys/bus/event_source/devices/cpu_core", F_OK);
}

static bool is_hw_type(__u32 type)
{
	return type != PERF_TYPE_SOFTWARE && type != PERF_TYPE_TRACEPOINT;
}

int pmu_resolve(const char *list, struct pmu_event *ev, int *n, char *why, size_t len)
{
	char *copy, *tok, *save;
	int err = 0, r;

	*n = 0;
	if ((r = pfm_ready()) != PFM_SUCCESS) {
		snprintf(why, len, "libpfm4: %s", pfm_strerror(r));
		return -EINVAL;
	}
	copy = strdup(list);
	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok && !err; tok = strtok_r(NULL, ",", &save)) {
		struct pmu_event *e = &ev[*n];
		pfm_perf_encode_arg_t arg = { 0 };
		char *fstr = NULL, *end;

		while (*tok == ' ' || *tok == '\t')
			tok++;
		end = tok + strlen(tok);
		while (end > tok && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = 0;

		if (*n == MAX_PMU) {
			snprintf(why, len, "at most %d events, not '%s'", MAX_PMU, list);
			err = -E2BIG;
			break;
		}
		memset(e, 0, sizeof(*e));
		e->attr.size = sizeof(e->attr);
		arg.attr = &e->attr;
		arg.fstr = &fstr;
		arg.size = sizeof(arg);
		/* user and kernel: a page fault is counted in the kernel on the span's behalf */
		r = pfm_get_os_event_encoding(tok, PFM_PLM0 | PFM_PLM3, PFM_OS_PERF_EVENT, &arg);
		if (r != PFM_SUCCESS) {
			snprintf(why, len, "event '%s': %s (see '%s pmu list')", tok,
				 pfm_strerror(r), prog_name);
			err = -EINVAL;
			free(fstr);
			break;
		}
		snprintf(e->name, sizeof(e->name), "%s", tok);
		snprintf(e->canonical, sizeof(e->canonical), "%s", fstr ? fstr : tok);
		free(fstr);
		e->attr.disabled = 0;
		e->attr.inherit = 0;
		/* read_value's enabled/running: what scaling for multiplexing needs */
		e->attr.read_format =
			PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
		(*n)++;
	}
	free(copy);
	return err;
}

int pmu_open(struct pmu_event *ev, int n, int map_fd, int nr_cpus, int *fds)
{
	for (int i = 0; i < n; i++) {
		int opened = 0;

		for (int cpu = 0; cpu < nr_cpus; cpu++) {
			int fd = sys_perf_event_open(&ev[i].attr, -1, cpu), err = errno;
			__u32 idx = (__u32)(i * nr_cpus + cpu);

			fds[i * nr_cpus + cpu] = fd;
			if (fd < 0 && err == ENODEV)
				continue; /* an offline CPU */
			if (fd < 0) {
				if (is_hw_type(ev[i].attr.type) && !have_hw_pmu())
					p_err("event '%s' (%s) cannot be counted here: this machine has "
					      "no hardware PMU; software events (perf::PAGE-FAULTS, "
					      "perf::TASK-CLOCK, perf::CONTEXT-SWITCHES) can",
					      ev[i].name, ev[i].canonical);
				else
					p_err("event '%s' (%s) on CPU %d: %s", ev[i].name,
					      ev[i].canonical, cpu, strerror(err));
				return -err;
			}
			if (bpf_map_update_elem(map_fd, &idx, &fd, BPF_ANY)) {
				p_err("counter '%s' into the BPF map: %s", ev[i].name,
				      strerror(errno));
				return -errno;
			}
			opened++;
		}
		if (!opened) {
			p_err("event '%s': no CPU could count it", ev[i].name);
			return -ENODEV;
		}
	}
	return 0;
}

int pmu_help(void)
{
	printf("Usage: %s [-j] pmu list [--all]\n\n"
	       "The events record --pmu accepts on this machine: each PMU libpfm4 finds present,\n"
	       "its events, and whether a counter for it opens here (a hardware event does not on a\n"
	       "machine without a hardware PMU, such as most VMs). --all also lists events that\n"
	       "cannot be counted. Events are named as libpfm4 names them (perf::PAGE-FAULTS,\n"
	       "perf::CYCLES, or a core PMU's own event names).\n",
	       prog_name);
	return EXIT_OK;
}

/* Can a counter for this event open in this process? The errno when not. */
static int probe_event(const char *name)
{
	struct perf_event_attr attr = { .size = sizeof(attr) };
	pfm_perf_encode_arg_t arg = { .attr = &attr, .size = sizeof(arg) };
	int fd;

	if (pfm_get_os_event_encoding(name, PFM_PLM3, PFM_OS_PERF_EVENT, &arg) != PFM_SUCCESS)
		return EINVAL;
	attr.exclude_kernel = 1; /* what an unprivileged process may count on itself */
	fd = sys_perf_event_open(&attr, 0, -1);
	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

int do_pmu(int argc, char **argv)
{
	struct json_object *arr = json_object_new_array();
	bool all = false;
	int shown = 0;

	if (argc < 2 || strcmp(argv[1], "list")) {
		json_object_put(arr);
		if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
			return pmu_help();
		p_err("pmu takes 'list' (see '%s help pmu')", prog_name);
		return EXIT_USAGE;
	}
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--all")) {
			p_err("pmu list takes only --all, not '%s'", argv[i]);
			json_object_put(arr);
			return EXIT_USAGE;
		}
		all = true;
	}
	if (pfm_ready() != PFM_SUCCESS) {
		p_err("libpfm4: %s", pfm_strerror(pfm_ready()));
		json_object_put(arr);
		return EXIT_FAIL;
	}
	if (!json)
		printf("%-40s %-10s %s\n", "EVENT", "PMU TYPE", "COUNTS HERE");
	for (int p = PFM_PMU_NONE; p < PFM_PMU_MAX; p++) {
		pfm_pmu_info_t pi = { .size = sizeof(pi) };

		if (pfm_get_pmu_info((pfm_pmu_t)p, &pi) != PFM_SUCCESS || !pi.is_present)
			continue;
		for (int e = pi.first_event; e != -1; e = pfm_get_event_next(e)) {
			pfm_event_info_t ei = { .size = sizeof(ei) };
			char full[256];
			const char *type;
			int err;

			if (pfm_get_event_info(e, PFM_OS_PERF_EVENT, &ei) != PFM_SUCCESS)
				continue;
			snprintf(full, sizeof(full), "%s::%s", pi.name, ei.name);
			err = probe_event(full);
			if (err && !all)
				continue;
			type = pi.type == PFM_PMU_TYPE_OS_GENERIC ? "os" :
			       pi.type == PFM_PMU_TYPE_CORE	  ? "core" :
			       pi.type == PFM_PMU_TYPE_UNCORE	  ? "uncore" :
								    "other";
			shown++;
			if (json) {
				struct json_object *o = json_object_new_object();

				json_object_object_add(o, "event", json_object_new_string(full));
				json_object_object_add(o, "pmu_type", json_object_new_string(type));
				json_object_object_add(
					o, "description",
					json_object_new_string(ei.desc ? ei.desc : ""));
				json_object_object_add(o, "countable",
						       json_object_new_boolean(!err));
				if (err)
					json_object_object_add(
						o, "reason", json_object_new_string(strerror(err)));
				json_object_array_add(arr, o);
			} else {
				printf("%-40s %-10s %s\n", full, type, err ? strerror(err) : "yes");
			}
		}
	}
	if (json)
		printf("%s\n", json_object_to_json_string_ext(
				       arr, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
	else if (!have_hw_pmu())
		printf("\n(no hardware PMU on this machine: hardware events cannot be counted)\n");
	json_object_put(arr);
	return shown ? EXIT_OK : EXIT_FAIL;
}
