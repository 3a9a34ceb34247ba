// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * mmsb-trace record: what the user asked for. The help, the options and a profile's settings
 * into the one struct record_opts the session (record.c) and the outputs read.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "record.h"
#include "usdt_helpers.h"

struct record_opts ro;

/* The -k names, from the span list, wrapped under "Kinds:"; then the two that are not probes. */
static void kinds_help(void)
{
	int col = 6;

	for (int k = 0; k < SPAN_KINDS; k++) {
		const char *name = span_name(k);

		if (k == SPAN_HOST)
			continue;
		if (col + 1 + (int)strlen(name) > 85) {
			printf("\n      ");
			col = 6;
		}
		col += printf(" %s", name);
	}
	printf("\n       ffi_call (a host's libffi calls into libmmsb, probed: costs what it measures)\n"
	       "       (ffi_host, the host's side sampled, comes with --host-sample, not -k)\n\n");
}

int record_help(void)
{
	printf("Usage: %s record [OPTIONS] -- CMD [ARGS...]\n"
	       "       %s record [OPTIONS] -p PID\n\n"
	       "Report where the time of one process's libmmsb calls went: per span kind the calls,\n"
	       "the inclusive and self time (on and off a CPU), the share of the threads' time,\n"
	       "p50/p99, per thread, and what the tracing itself cost.\n\n"
	       "      --mode MODE        spans (default): the library keeps its spans itself while\n"
	       "                         traced and they are read from its memory, no trap per\n"
	       "                         call; stacks come from timer samples (-F). probes: a\n"
	       "                         program on every span probe, a trap per begin and end (what\n"
	       "                         perf and bpftrace see); needed for -e, --pmu, --stacks,\n"
	       "                         ffi_call\n"
	       "  -F, --freq HZ          spans mode: stack samples a second on each CPU (default %d,\n"
	       "                         0: none)\n"
	       "  -i, --interval SECS    spans mode: a table every SECS (the interval's figures, reset\n"
	       "                         each time), then the whole window's at the end\n"
	       "  -c, --count N          with -i: stop after N intervals\n"
	       "  -T, --timestamp        with -i: the time of day on each interval's table\n"
	       "  -p, --pid PID          attach to a running process (detaches cleanly); under sudo,\n"
	       "                         one the invoking user could trace\n"
	       "  -a, --all-processes    spans mode: every process that maps the library (-l, or\n"
	       "                         the one this tool runs with), those started later too; a\n"
	       "                         row per process (pid, comm, cgroup); root only, not sudo\n"
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
	       "      --pprof FILE       a gzip'd pprof profile (go tool pprof): calls, self and\n"
	       "                         total ns per stack; spans mode adds on/off-CPU ns and the\n"
	       "                         timer samples\n"
	       "  -e, --events FILE      stream every closed span through a ring buffer into FILE,\n"
	       "                         one JSON object a line; drops are counted and reported\n"
	       "      --pmu EVENTS       count these events per span (comma list, at most 4; see\n"
	       "                         '%s pmu list'), e.g. perf::PAGE-FAULTS,perf::TASK-CLOCK\n"
	       "      --host-sample[=HZ] sample the host's side of the crossings into libmmsb (its\n"
	       "                         marshalling and call loop) with a CPU clock on every CPU,\n"
	       "                         HZ a second (default %d): kind ffi_host. Alone it attaches\n"
	       "                         no span probe (their traps would slow the host); with -k\n"
	       "                         or -P, both\n"
	       "      --hit-cost NS      cost of one probe hit for the overhead estimate (default:\n"
	       "                         measured on this host at the start, within 0.1 s)\n"
	       "      --as-root          root only (refused under sudo): run CMD as root\n\n"
	       "Outputs are never written through a symlink at their path, are replaced only once\n"
	       "complete, and under sudo are created as the invoking user, whose rights also open\n"
	       "the files named here. FILE '-' is stdout.\n\n"
	       "Exit status: the command's (128+N when signal N ended it, 127 when it is not\n"
	       "found); 0 with -p or when -d or a signal ended the tracing first; 1 when the trace\n"
	       "failed; 2 usage.\n\n"
	       "Kinds:",
	       prog_name, prog_name, DEFAULT_SAMPLE_HZ, prog_name, prog_name, DEFAULT_HOST_HZ);
	kinds_help();
	printf("Examples:\n"
	       "  sudo %s record -- .output/mmsb-bench --quick\n"
	       "  sudo %s record -p 4242 -d 10 -f out.folded   # flamegraph.pl out.folded\n"
	       "  sudo %s record -P ci -o artifacts -- .output/mmsb-bench\n",
	       prog_name, prog_name, prog_name);
	return EXIT_OK;
}

/* The profile's settings, where the command line did not say otherwise. */
int record_apply_profile(uint32_t *mask)
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

/* top: set before record parses its options, which clear ro */
static bool top;

int do_top(int argc, char **argv)
{
	char **args = calloc((size_t)argc + 4, sizeof(*args));
	int n = 0, ret;

	if (!args)
		return EXIT_FAIL;
	/* record -a -i 1 [OPTIONS]: a later -i of the user's overrides the 1 */
	args[n++] = "top";
	args[n++] = "-a";
	args[n++] = "-i";
	args[n++] = "1";
	for (int i = 1; i < argc; i++)
		args[n++] = argv[i];
	top = true;
	ret = do_record(n, args);
	free(args);
	return ret;
}

int record_parse_args(int argc, char **argv, char ***cmd)
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
		{ "mode", required_argument, NULL, 6 },
		{ "pprof", required_argument, NULL, 7 },
		{ "freq", required_argument, NULL, 'F' },
		{ "interval", required_argument, NULL, 'i' },
		{ "all-processes", no_argument, NULL, 'a' },
		{ "count", required_argument, NULL, 'c' },
		{ "timestamp", no_argument, NULL, 'T' },
		{ "listen", required_argument, NULL, 8 },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	int c;

	memset(&ro, 0, sizeof(ro));
	ro.hit_ns = DEFAULT_HIT_NS;
	ro.hit_src = NULL; /* measured in do_record() */
	ro.stack_mode = STACKS_OUTER;
	ro.mode = -1; /* chosen in check_request(): what the options need */
	ro.sample_hz = DEFAULT_SAMPLE_HZ;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+p:d:l:k:f:J:s:e:P:o:F:i:c:Tah", opts, NULL)) != -1) {
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
			ro.hit_src = "given";
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
		case 6:
			if (!strcmp(optarg, "spans")) {
				ro.mode = MODE_SPANS;
			} else if (!strcmp(optarg, "probes")) {
				ro.mode = MODE_PROBES;
			} else {
				p_err("--mode takes spans or probes, not '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		case 7:
			ro.pprof = optarg;
			break;
		case 8:
			ro.listen = optarg; /* serve's (serve.c) */
			break;
		case 'F':
			if (parse_u64(optarg, 0, 100000, &ro.sample_hz)) {
				p_err("invalid sample rate '%s' (Hz, 0 to 100000)", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'i':
			if (parse_u64(optarg, 1, 86400, &v)) {
				p_err("invalid interval '%s' (whole seconds)", optarg);
				return EXIT_USAGE;
			}
			ro.interval = (double)v;
			break;
		case 'c':
			if (parse_u64(optarg, 1, UINT32_MAX, &ro.count)) {
				p_err("invalid count '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'T':
			ro.timestamps = true;
			break;
		case 'a':
			ro.all = true;
			break;
		case 'h':
			return record_help();
		default:
			return EXIT_USAGE;
		}
	}
	/*
	 * --as-root is for root itself. Under sudo it would hand root to whoever may sudo only
	 * mmsb-trace (a command run as root, any process traced): any SUDO_UID but root's, even
	 * one that does not parse, refuses it.
	 */
	if (ro.as_root && sudo_env()) {
		p_err("--as-root is refused under sudo (SUDO_UID=%.20s): only root itself may use it",
		      getenv("SUDO_UID"));
		return EXIT_USAGE;
	}
	/* every user's processes, read: sudo may grant mmsb-trace to users who may not */
	ro.top = top && isatty(STDOUT_FILENO);
	if (ro.all && sudo_env()) {
		p_err("-a is refused under sudo (SUDO_UID=%.20s): it reads every user's processes",
		      getenv("SUDO_UID"));
		return EXIT_USAGE;
	}
	if (ro.listen && (!ro.all || ro.interval)) {
		p_err("--listen is serve's: every process (-a), no -i");
		return EXIT_USAGE;
	}
	if ((ro.count || ro.timestamps) && !ro.interval) {
		p_err("%s needs -i SECS", ro.count ? "-c" : "-T");
		return EXIT_USAGE;
	}
	if (optind < argc && !strcmp(argv[optind], "--"))
		optind++;
	*cmd = optind < argc ? argv + optind : NULL;
	return GO_ON;
}
