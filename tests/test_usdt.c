// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Privileged: a libbpf program attached to every probe of lib/probes.d, and bpftrace beside it,
 * count the hits of a workload whose counts are known (tests/helpers/probe_workload.c), and the
 * counts must equal them exactly. SKIPs without root, BTF, the BPF skeleton or bpftrace.
 */
#include <fcntl.h>
#include <limits.h>
#include <mmsb/mmsb.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "mmsb_probes.h"

#if __has_include("usdt_count.skel.h")
#include <bpf/libbpf.h>
#include "usdt_count.h"
#include "usdt_count.skel.h"
#define HAVE_SKEL 1
#endif

#define MAX_PROBES 64

/*
 * What the workload must produce, derived from its code, not from a run:
 *  - 2 public state opens (s, t) and 3 closes (s, t, and the replayed r)
 *  - 5 page creates + 5 pages re-created by the replay = 10 allocations; 1 free
 *  - 7 updates of page 1; each a wave in which pages 2 and 3 are recomputed and change:
 *    14 recomputes, 7 + 14 = 21 single-delta applies
 *  - waves: 7 updates + 1 routed batch + 1 tick = 9
 *  - log (batch durability): a write and a sync per commit that has records: 5 creates, 7
 *    updates, the batch, the free, the engine batch, the tick = 16 writes; syncs also for the
 *    checkpoint (the log first) and the close = 18
 *  - engine batches: mmsb_engine_apply and the tick's = 2
 *  - api__entry/exit: the workload counts its own calls and prints the figure
 *  - host__register: once per thread that calls the API while attached: the workload's one
 *  - span__register: once per thread that opens a span while attached: the same one
 * arg0 is the first argument summed over the hits (-1: not checked).
 */
static const struct expect {
	const char *probe;
	long hits, arg0;
} expects[] = {
	{ "host__register", 1, -1 },
	{ "span__register", 1, -1 },
	{ "state__open__begin", 2, -1 },
	{ "state__open__end", 2, -1 },
	{ "state__close__begin", 3, -1 },
	{ "state__close__end", 3, -1 },
	{ "page__alloc__begin", 10, 30 },
	{ "page__alloc__end", 10, 30 },
	{ "page__free__begin", 1, 5 },
	{ "page__free__end", 1, 5 },
	{ "update__begin", 7, 7 },
	{ "update__end", 7, 7 },
	{ "delta__apply__begin", 21, 42 },
	{ "delta__apply__end", 21, 42 },
	{ "route__batch__begin", 1, 4 },
	{ "route__batch__end", 1, 4 },
	{ "propagate__begin", 9, -1 },
	{ "propagate__end", 9, -1 },
	{ "recompute__begin", 14, 35 },
	{ "recompute__end", 14, 35 },
	{ "log__append__begin", 16, -1 },
	{ "log__append__end", 16, -1 },
	{ "log__sync__begin", 18, -1 },
	{ "log__sync__end", 18, -1 },
	{ "checkpoint__write__begin", 1, -1 },
	{ "checkpoint__write__end", 1, -1 },
	{ "checkpoint__load__begin", 1, -1 },
	{ "checkpoint__load__end", 1, 4 },
	{ "replay__begin", 1, -1 },
	{ "replay__end", 1, -1 },
	{ "engine__batch__begin", 2, 110 },
	{ "engine__batch__end", 2, 110 },
	{ "tick__begin", 1, 10 },
	{ "tick__end", 1, -1 },
	/* the workload has no GPU pages: the GPU spans are test_gpu's (through mmsb-trace, docs) */
	{ "gpu__launch__begin", 0, -1 },
	{ "gpu__launch__end", 0, -1 },
	{ "gpu__copy__begin", 0, -1 },
	{ "gpu__copy__end", 0, -1 },
};

/* The probe names of the manifest, in order: generated from lib/probes.d (lib/gen-probes.sh). */
static const char *const probe_names[] = { MMSB_PROBE_NAMES };

static int manifest(char names[][64], int max)
{
	int n = 0;

	for (; n < (int)(sizeof(probe_names) / sizeof(probe_names[0])) && n < max; n++)
		snprintf(names[n], 64, "%s", probe_names[n]);
	return n;
}

static const char *out_dir(void)
{
	return getenv("O") ? getenv("O") : ".output";
}

static void need_privileges(void)
{
	if (getenv("SAN") && *getenv("SAN"))
		SKIP("attach tests run in the plain build, not under sanitizers");
	if (geteuid())
		SKIP("needs root (CAP_BPF and CAP_PERFMON) to attach uprobes");
	if (access("/sys/kernel/btf/vmlinux", R_OK))
		SKIP("the kernel has no BTF (/sys/kernel/btf/vmlinux)");
}

static long expected_hits(const char *probe, long api_calls, long *arg0)
{
	*arg0 = -1;
	if (!strcmp(probe, "api__entry") || !strcmp(probe, "api__exit"))
		return api_calls;
	for (size_t i = 0; i < sizeof(expects) / sizeof(expects[0]); i++)
		if (!strcmp(expects[i].probe, probe)) {
			*arg0 = expects[i].arg0;
			return expects[i].hits;
		}
	return -2; /* a probe the test does not know: a new probe needs its count here */
}

TEST_TIMEOUT(libbpf_counts_every_probe_exactly, 120)
{
	need_privileges();
#ifndef HAVE_SKEL
	SKIP("the BPF skeleton was not built (no clang BPF target or bpftool)");
#else
	char names[MAX_PROBES][64], lib[PATH_MAX], bin[PATH_MAX], so[PATH_MAX], dir[PATH_MAX];
	struct bpf_link *links[MAX_PROBES] = { 0 };
	int n = manifest(names, MAX_PROBES), go[2], out[2], status;
	struct usdt_count_bpf *skel;
	long api_calls = -1;
	char buf[256];
	pid_t pid;

	ASSERT_GT(n, 0);
	ASSERT_LE(n, USDT_COUNT_MAX);
	snprintf(so, sizeof(so), "%s/libmmsb.so", out_dir());
	ASSERT_TRUE(realpath(so, lib));
	snprintf(bin, sizeof(bin), "%s/tests/probe_workload", out_dir());
	snprintf(dir, sizeof(dir), "%s", th_tmpdir());
	ASSERT_EQ(pipe(go), 0);
	ASSERT_EQ(pipe(out), 0);
	/* the child waits on a pipe: every probe is attached before it runs a single instruction */
	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		char c;

		close(go[1]);
		close(out[0]);
		dup2(out[1], 1);
		if (read(go[0], &c, 1) != 1)
			_exit(3);
		execl(bin, bin, dir, (char *)NULL);
		_exit(4);
	}
	close(go[0]);
	close(out[1]);
	skel = usdt_count_bpf__open();
	ASSERT_TRUE(skel);
	skel->rodata->targ_tgid = (uint32_t)pid;
	ASSERT_EQ(usdt_count_bpf__load(skel), 0);
	for (int i = 0; i < n; i++) {
		LIBBPF_OPTS(bpf_usdt_opts, uo, .usdt_cookie = (uint64_t)i);

		links[i] = bpf_program__attach_usdt(skel->progs.count_hit, pid, lib, "mmsb",
						    names[i], &uo);
		if (!links[i])
			TH_LOG("attach %s: %s", names[i], strerror(errno));
		ASSERT_TRUE(links[i]);
	}
	ASSERT_EQ(write(go[1], "g", 1), 1);
	close(go[1]);
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ssize_t got = read(out[0], buf, sizeof(buf) - 1);

	ASSERT_GT(got, 0);
	buf[got] = 0;
	ASSERT_EQ(sscanf(buf, "api_calls %ld", &api_calls), 1);
	TH_LOG("the workload made %ld API calls", api_calls);
	for (int i = 0; i < n; i++) {
		long arg0, want = expected_hits(names[i], api_calls, &arg0);

		if (want == -2)
			TH_LOG("probe %s has no expected count in tests/test_usdt.c", names[i]);
		ASSERT_NE(want, -2);
		if ((long)skel->bss->hits[i] != want)
			TH_LOG("%s: %llu hits, expected %ld", names[i],
			       (unsigned long long)skel->bss->hits[i], want);
		EXPECT_EQ(skel->bss->hits[i], want);
		if (arg0 >= 0)
			EXPECT_EQ(skel->bss->arg0_sum[i], arg0);
	}
	for (int i = 0; i < n; i++)
		bpf_link__destroy(links[i]);
	usdt_count_bpf__destroy(skel);
#endif
}

/*
 * bpftrace 0.17 (Debian 12) resolves a USDT of a shared library in the -c child before the child
 * has mapped it, and fails ("Error finding location"): it traces the workload linked statically,
 * whose probes are in the executable.
 */
TEST_TIMEOUT(bpftrace_counts_the_same, 180)
{
	char lib[PATH_MAX], so[PATH_MAX], cmd[4 * PATH_MAX], line[1024], names[MAX_PROBES][64];
	long api_calls = -1, seen = 0;
	int n = manifest(names, MAX_PROBES);
	FILE *p;

	need_privileges();
	if (system("command -v bpftrace >/dev/null 2>&1"))
		SKIP("bpftrace is not installed");
	snprintf(so, sizeof(so), "%s/tests/probe_workload_static", out_dir());
	ASSERT_TRUE(realpath(so, lib));
	/* bpftrace prints the map at exit: @[usdt:BINARY:mmsb:NAME]: COUNT */
	snprintf(cmd, sizeof(cmd),
		 "BPFTRACE_MAX_PROBES=1024 bpftrace -e 'usdt:%s:mmsb:* { @[probe] = count(); }' "
		 "-c '%s %s' 2>&1",
		 lib, lib, th_tmpdir());
	p = popen(cmd, "r");
	ASSERT_TRUE(p);
	long counts[MAX_PROBES] = { 0 };

	while (fgets(line, sizeof(line), p)) {
		char *at = strstr(line, ":mmsb:"), name[64];
		long c;

		if (sscanf(line, "api_calls %ld", &api_calls) == 1)
			continue;
		if (!at || sscanf(at + 6, "%63[a-z0-9_]]: %ld", name, &c) != 2)
			continue;
		for (int i = 0; i < n; i++)
			if (!strcmp(names[i], name))
				counts[i] = c, seen++;
	}
	pclose(p);
	ASSERT_GT(api_calls, 0);
	ASSERT_GT(seen, 0);
	for (int i = 0; i < n; i++) {
		long arg0, want = expected_hits(names[i], api_calls, &arg0);

		if (counts[i] != want)
			TH_LOG("bpftrace %s: %ld hits, expected %ld", names[i], counts[i], want);
		EXPECT_EQ(counts[i], want);
	}
}
