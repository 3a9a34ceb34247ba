// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * mmsb-trace: where libmmsb's time goes, from its USDT probes.
 *
 *   mmsb-trace record [OPTS] -- CMD | -p PID   where the time went, per span kind and stack
 *   mmsb-trace [-j] list [BINARY | -p PID]   the probes of an object, or of every object a
 *                                            process maps (no privileges needed)
 *   mmsb-trace features [--calibrate]        what the kernel offers, the cost of one hit
 *   mmsb-trace [-j] profiles [NAME|FILE...]  trace profiles: list them, or check some
 *   mmsb-trace [-j] pmu list [--all]         the counters record --pmu can read here
 *   mmsb-trace help [COMMAND]
 *
 * Exit status: 0 ok, 1 failure, 2 usage (record -- CMD: the command's own). Commands match by
 * unique prefix, as in bpftool.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <mmsb/mmsb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmsb_version.h"
#include "tool_helpers.h"
#include "trace.h"
#include "usdt_helpers.h"

bool json;

/* One probe of one object: its call sites folded together. */
struct probe_row {
	struct usdt_note first;
	int sites;
};

static int cmp_row(const void *a, const void *b)
{
	const struct probe_row *x = a, *y = b;
	int c = strcmp(x->first.provider, y->first.provider);

	return c ? c : strcmp(x->first.name, y->first.name);
}

static int fold(const struct usdt_note *v, int n, struct probe_row **out)
{
	struct probe_row *rows = calloc(n ? (size_t)n : 1, sizeof(*rows));
	int k = 0;

	if (!rows)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		int j;

		for (j = 0; j < k; j++)
			if (!strcmp(rows[j].first.provider, v[i].provider) &&
			    !strcmp(rows[j].first.name, v[i].name))
				break;
		if (j == k)
			rows[k++].first = v[i];
		rows[j].sites++;
	}
	qsort(rows, (size_t)k, sizeof(*rows), cmp_row);
	*out = rows;
	return k;
}

static void list_text(const char *obj, const struct probe_row *r, int n, bool header)
{
	if (header)
		printf("%s\n", obj);
	printf("  %-32s %4s  %-10s %5s  %s\n", "PROBE", "ARGS", "SEMAPHORE", "SITES",
	       "ARG SPEC (first site)");
	for (int i = 0; i < n; i++) {
		char probe[160], sema[48];

		snprintf(probe, sizeof(probe), "%s:%s", r[i].first.provider, r[i].first.name);
		if (r[i].first.sema)
			snprintf(sema, sizeof(sema), "0x%" PRIx64, r[i].first.sema_off);
		else
			snprintf(sema, sizeof(sema), "-");
		printf("  %-32s %4d  %-10s %5d  %s\n", probe, r[i].first.n_args, sema, r[i].sites,
		       r[i].first.args);
	}
}

static struct json_object *list_json(const char *obj, const struct probe_row *r, int n)
{
	struct json_object *o = json_object_new_object(), *arr = json_object_new_array();

	json_object_object_add(o, "object", json_object_new_string(obj));
	for (int i = 0; i < n; i++) {
		struct json_object *p = json_object_new_object();

		json_object_object_add(p, "provider", json_object_new_string(r[i].first.provider));
		json_object_object_add(p, "name", json_object_new_string(r[i].first.name));
		json_object_object_add(p, "args", json_object_new_int(r[i].first.n_args));
		json_object_object_add(p, "arg_spec", json_object_new_string(r[i].first.args));
		json_object_object_add(p, "semaphore", json_object_new_uint64(r[i].first.sema));
		json_object_object_add(p, "semaphore_offset",
				       json_object_new_uint64(r[i].first.sema_off));
		json_object_object_add(p, "sites", json_object_new_int(r[i].sites));
		json_object_array_add(arr, p);
	}
	json_object_object_add(o, "probes", arr);
	return o;
}

/* List one object; *found counts probes. Objects without notes are skipped silently under -p. */
static int list_object(const char *path, bool quiet_empty, struct json_object *arr, int *found,
		       bool header)
{
	struct probe_row *rows;
	struct usdt_note *v;
	int n = usdt_notes_read(path, &v), k;

	if (n < 0) {
		if (quiet_empty)
			return 0;
		p_err("%s: %s", path, n == -ENOEXEC ? "not an ELF object" : input_strerror(n));
		return EXIT_FAIL;
	}
	if (!n && quiet_empty) {
		free(v);
		return 0;
	}
	k = fold(v, n, &rows);
	free(v);
	if (k < 0)
		return EXIT_FAIL;
	*found += k;
	if (json)
		json_object_array_add(arr, list_json(path, rows, k));
	else if (k)
		list_text(path, rows, k, header);
	free(rows);
	return EXIT_OK;
}

/* The libmmsb.so this tool runs with: the default object for `list`. */
static int do_list_help(void)
{
	printf("Usage: %s [-j] list [BINARY | -p PID]\n\n"
	       "List the USDT probes of an ELF object, or of every object a running process maps,\n"
	       "from their .note.stapsdt notes: provider:name, argument count, the semaphore's file\n"
	       "offset (what the kernel counts attachments in), the first call site's argument spec\n"
	       "and the number of call sites. Needs no privileges. Without an argument it lists the\n"
	       "libmmsb.so this tool was built with.\n\n"
	       "Examples:\n"
	       "  %s list /usr/local/lib/libmmsb.so\n"
	       "  %s list -p 1234          # every object of process 1234\n"
	       "  %s -j list | jq '.[0].probes[].name'\n",
	       prog_name, prog_name, prog_name, prog_name);
	return EXIT_OK;
}

static int do_list(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct json_object *arr = json_object_new_array();
	const char *path = NULL;
	uint64_t pid = 0;
	int c, ret = EXIT_OK, found = 0;
	char why[256];

	optind = 1;
	while ((c = getopt_long(argc, argv, "p:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (parse_u64(optarg, 1, 4194304, &pid)) {
				p_err("invalid PID '%s'", optarg);
				json_object_put(arr);
				return EXIT_USAGE;
			}
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			json_object_put(arr);
			return do_list_help();
		default:
			json_object_put(arr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		path = argv[optind++];
	if (optind < argc || (path && pid)) {
		p_err("list takes one BINARY or -p PID");
		json_object_put(arr);
		return EXIT_USAGE;
	}
	/* under sudo: the user's files with the user's rights, and only a process they could trace */
	if (pid && invoker_may_trace((int)pid, why, sizeof(why))) {
		p_err("%s", why);
		json_object_put(arr);
		return EXIT_FAIL;
	}
	if (as_user_enter()) {
		p_err("cannot take the invoking user's identity");
		json_object_put(arr);
		return EXIT_FAIL;
	}
	if (pid) {
		char **objs;
		int n = proc_mapped_objects((int)pid, &objs);

		if (n < 0) {
			p_err("process %" PRIu64 ": %s", pid,
			      n == -ENOENT ? "no such process" : strerror(-n));
			as_user_leave();
			json_object_put(arr);
			return EXIT_FAIL;
		}
		for (int i = 0; i < n && ret == EXIT_OK; i++)
			ret = list_object(objs[i], true, arr, &found, true);
		free_strv(objs, n);
	} else {
		if (!path && !(path = own_libmmsb())) {
			p_err("no libmmsb.so found; name a BINARY");
			as_user_leave();
			json_object_put(arr);
			return EXIT_FAIL;
		}
		ret = list_object(path, false, arr, &found, false);
	}
	as_user_leave();
	if (ret == EXIT_OK && json)
		printf("%s\n", json_object_to_json_string_ext(
				       arr, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
	else if (ret == EXIT_OK && !found)
		printf("no USDT probes found\n");
	json_object_put(arr);
	return ret;
}

static int do_help(int argc, char **argv);

static const struct cmd cmds[] = {
	{ "record", do_record, "attribute a command's or a process's time, per span and stack" },
	{ "top", do_top, "every process's spans, live: record -a -i 1 on a cleared screen" },
	{ "serve", do_serve, "every process's spans as Prometheus metrics: --listen ADDR" },
	{ "list", do_list, "the USDT probes of a binary or of a running process" },
	{ "features", do_features, "what this kernel offers; --calibrate: the cost of a hit" },
	{ "profiles", do_profiles, "the trace profiles record -P can use, or check some" },
	{ "pmu", do_pmu, "'pmu list': the counters record --pmu can read here" },
	{ "help", do_help, "this text, or 'help COMMAND'" },
	{},
};

static int do_help(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "list"))
		return do_list_help();
	if (argc > 1 && !strcmp(argv[1], "record"))
		return record_help();
	if (argc > 1 && !strcmp(argv[1], "serve"))
		return serve_help();
	if (argc > 1 && !strcmp(argv[1], "features"))
		return features_help();
	if (argc > 1 && !strcmp(argv[1], "profiles"))
		return profiles_help();
	if (argc > 1 && !strcmp(argv[1], "pmu"))
		return pmu_help();
	if (argc > 1) {
		p_err("no help for '%s'", argv[1]);
		return EXIT_USAGE;
	}
	printf("Usage: %s [OPTIONS] COMMAND [ARGS]\n\n"
	       "Attribute the time of programs using libmmsb, from the library's USDT probes.\n\n"
	       "Commands:\n",
	       prog_name);
	for (const struct cmd *c = cmds; c->name; c++)
		printf("  %-8s %s\n", c->name, c->summary);
	printf("\nOptions:\n"
	       "  -j, --json     JSON output\n"
	       "  -V, --version  versions of the tool and the library\n"
	       "  -h, --help     this text\n\n"
	       "Commands match by unique prefix. '%s help COMMAND' explains one.\n"
	       "Exit status: 0 ok, 1 failure, 2 usage; record -- CMD exits with CMD's status.\n",
	       prog_name);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	int c;

	prog_name = "mmsb-trace";
	/* global options come before the command ('+': stop at the first non-option) */
	while ((c = getopt_long(argc, argv, "+jVh", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'V':
			printf("mmsb-trace " MMSB_TOOLS_VERSION " (libmmsb %s)\n", mmsb_version());
			return finish_stdout(EXIT_OK);
		case 'h':
			return finish_stdout(do_help(0, NULL));
		default:
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		do_help(0, NULL);
		return EXIT_USAGE;
	}
	return finish_stdout(cmd_select(cmds, argc - optind, argv + optind, do_help));
}
