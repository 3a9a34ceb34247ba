// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Trace profiles: named record settings in a small text format (docs/profiles.md), parsed
 * strictly: an unknown key, a repeated key or a bad value is an error naming FILE:LINE.
 *
 *   # comment
 *   description = what this profile is for
 *   kinds = update,propagate,recompute      (or: all, or none: no span probe)
 *   stacks = outer | all | none
 *   mode = histogram | events
 *   outputs = table,json,folded,speedscope  (any of them, or: none)
 *   duration = 10                            (seconds; 0: until the target exits)
 *   pmu = perf::PAGE-FAULTS,perf::TASK-CLOCK (counters per span, at most 4)
 *   host_sample = 1000                       (record --host-sample=HZ; 0: off)
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/types.h>

#include "mmsb_trace.h"
#include "tool_helpers.h"
#include "trace.h"

#define PROFILE_SUFFIX ".profile"

static const char *const output_names[] = { "table", "json", "folded", "speedscope" };

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

/*
 * Split a comma list, calling fn per item (trimmed). An empty item or one fn refuses is an error;
 * *bad then points at it.
 */
static int each_item(char *list, int (*fn)(const char *item, void *ctx), void *ctx,
		     const char **bad)
{
	char *tok;

	while ((tok = strsep(&list, ","))) {
		char *t = trim(tok);

		if (!*t || fn(t, ctx)) {
			*bad = t;
			return -EINVAL;
		}
	}
	return 0;
}

static int add_kind(const char *item, void *ctx)
{
	int k = span_kind_of(item);

	if (k < 0)
		return -EINVAL;
	*(uint32_t *)ctx |= 1u << k;
	return 0;
}

static int add_output(const char *item, void *ctx)
{
	for (unsigned int i = 0; i < sizeof(output_names) / sizeof(output_names[0]); i++)
		if (!strcmp(item, output_names[i])) {
			*(unsigned int *)ctx |= 1u << i;
			return 0;
		}
	return -EINVAL;
}

/* The value of one key into p; a one-line reason in why on error. */
static int set_key(struct trace_profile *p, const char *key, char *val, char *why, size_t len)
{
	const char *bad = NULL;
	uint64_t v;

	if (!strcmp(key, "description")) {
		snprintf(p->description, sizeof(p->description), "%s", val);
	} else if (!strcmp(key, "kinds")) {
		p->kinds_mask = 0;
		if (!strcmp(val, "all"))
			p->kinds_mask = (1u << SPAN_KINDS) - 1;
		else if (strcmp(val, "none") && each_item(val, add_kind, &p->kinds_mask, &bad)) {
			snprintf(why, len,
				 "kinds: %s '%s' (a comma list of span kinds, 'all' or 'none')",
				 *bad ? "no span kind" : "an empty item", bad);
			return -EINVAL;
		}
	} else if (!strcmp(key, "stacks")) {
		if (!strcmp(val, "outer"))
			p->stack_mode = STACKS_OUTER;
		else if (!strcmp(val, "all"))
			p->stack_mode = STACKS_ALL;
		else if (!strcmp(val, "none"))
			p->stack_mode = STACKS_NONE;
		else {
			snprintf(why, len, "stacks: outer, all or none, not '%s'", val);
			return -EINVAL;
		}
	} else if (!strcmp(key, "mode")) {
		if (!strcmp(val, "histogram") || !strcmp(val, "events")) {
			p->events = !strcmp(val, "events");
		} else {
			snprintf(why, len, "mode: histogram or events, not '%s'", val);
			return -EINVAL;
		}
	} else if (!strcmp(key, "outputs")) {
		p->outputs = 0;
		if (strcmp(val, "none") && each_item(val, add_output, &p->outputs, &bad)) {
			snprintf(why, len,
				 "outputs: %s '%s' (table, json, folded, speedscope, or 'none')",
				 *bad ? "no output" : "an empty item", bad);
			return -EINVAL;
		}
	} else if (!strcmp(key, "duration")) {
		if (parse_u64(val, 0, 86400 * 365, &v)) {
			snprintf(why, len,
				 "duration: whole seconds (0: until the target exits), not '%s'",
				 val);
			return -EINVAL;
		}
		p->duration = v;
	} else if (!strcmp(key, "pmu")) {
		struct pmu_event ev[MAX_PMU];
		char reason[320];
		int n;

		/* resolved now, so a misspelt event is this file's error, with its line */
		if (pmu_resolve(val, ev, &n, reason, sizeof(reason))) {
			snprintf(why, len, "pmu: %.200s", reason);
			return -EINVAL;
		}
		snprintf(p->pmu, sizeof(p->pmu), "%s", val);
	} else if (!strcmp(key, "host_sample")) {
		char reason[256];

		if (parse_u64(val, 0, 1000000, &v) ||
		    (v && host_sample_check(v, reason, sizeof(reason)))) {
			snprintf(why, len,
				 "host_sample: a rate in Hz (0: off), not '%.40s'%s%.150s", val,
				 v ? ": " : "", v ? reason : "");
			return -EINVAL;
		}
		p->host_hz = v;
	} else {
		snprintf(why, len,
			 "unknown key '%s' (keys: description kinds stacks mode outputs duration "
			 "pmu host_sample)",
			 key);
		return -EINVAL;
	}
	return 0;
}

/* A profile is a few lines: anything larger is not one. */
#define PROFILE_MAX_BYTES (1u << 20)

static const char *const keys[] = {
	"description", "kinds", "stacks", "mode", "outputs", "duration", "pmu", "host_sample",
};

int profile_parse(const char *path, struct trace_profile *p)
{
	char line[1024], why[256];
	bool seen[sizeof(keys) / sizeof(keys[0])] = { 0 };
	const char *base = strrchr(path, '/');
	int ln = 0, err = 0;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	memset(p, 0, sizeof(*p));
	p->kinds_mask = (1u << SPAN_KINDS) - 1;
	p->stack_mode = STACKS_OUTER;
	p->outputs = 1u << PROFILE_OUT_TABLE;
	snprintf(p->path, sizeof(p->path), "%s", path);
	base = base ? base + 1 : path;
	snprintf(p->name, sizeof(p->name), "%.*s", (int)strcspn(base, "."), base);
	/*
	 * A regular file, read whole (at most 1 MiB): a FIFO, /dev/zero or a terminal named as a
	 * profile would hang the parse or never end it.
	 */
	err = read_regular(path, PROFILE_MAX_BYTES, &text, &len);
	if (err) {
		p_err("%s: %s", path, input_strerror(err));
		return err;
	}
	f = len ? fmemopen(text, len, "r") : NULL;
	if (!f && len) {
		err = -errno;
		p_err("%s: %s", path, strerror(errno));
		free(text);
		return err;
	}
	while (!err && f && fgets(line, sizeof(line), f)) {
		char *s, *eq, *key, *val, *hash;
		size_t k;

		ln++;
		if (!strchr(line, '\n') && !feof(f)) {
			p_err("%s:%d: line longer than %zu bytes", path, ln, sizeof(line) - 2);
			err = -EINVAL;
			break;
		}
		/* a comment runs from a '#' at the start or after blank space to the end */
		for (hash = line; (hash = strchr(hash, '#')); hash++)
			if (hash == line || isspace((unsigned char)hash[-1])) {
				*hash = 0;
				break;
			}
		s = trim(line);
		if (!*s)
			continue;
		eq = strchr(s, '=');
		if (!eq) {
			p_err("%s:%d: expected 'key = value', got '%s'", path, ln, s);
			err = -EINVAL;
			break;
		}
		*eq = 0;
		key = trim(s);
		val = trim(eq + 1);
		for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			if (!strcmp(key, keys[k]))
				break;
		if (k < sizeof(keys) / sizeof(keys[0]) && seen[k]) {
			p_err("%s:%d: '%s' is set twice", path, ln, key);
			err = -EINVAL;
			break;
		}
		if (k < sizeof(keys) / sizeof(keys[0]) && !*val) {
			p_err("%s:%d: '%s' has no value", path, ln, key);
			err = -EINVAL;
			break;
		}
		if (set_key(p, key, val, why, sizeof(why))) {
			p_err("%s:%d: %s", path, ln, why);
			err = -EINVAL;
			break;
		}
		seen[k] = true;
	}
	if (!err && ferror(f)) {
		p_err("%s: read error", path);
		err = -EIO;
	}
	if (f)
		fclose(f);
	free(text);
	return err;
}

/* Where named profiles live: $MMSB_PROFILES, then beside the tool (source tree, installed). */
static int profile_dirs(char dirs[][PATH_MAX], int max)
{
	const char *env = getenv("MMSB_PROFILES");
	char exe[PATH_MAX], *slash;
	ssize_t n;
	int k = 0;

	if (env && *env && k < max)
		snprintf(dirs[k++], PATH_MAX, "%s", env);
	/* .output/mmsb-trace in the source tree; PREFIX/bin/mmsb-trace installed */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = 0;
		slash = strrchr(exe, '/');
		if (slash) {
			*slash = 0;
			static const char *const rel[] = { "../profiles",
							   "../share/mmsb/profiles" };

			for (int i = 0; i < 2 && k < max; i++) {
				char d[PATH_MAX + 32];

				snprintf(d, sizeof(d), "%.*s/%s", PATH_MAX - 32, exe, rel[i]);
				if (realpath(d, dirs[k]))
					k++;
			}
		}
	}
	return k;
}

static int profile_load_as_user(const char *name_or_path, struct trace_profile *p)
{
	char dirs[4][PATH_MAX], path[PATH_MAX + 64];
	int nd;

	/* a path names a file; a bare name is looked up */
	if (strchr(name_or_path, '/') || strstr(name_or_path, PROFILE_SUFFIX))
		return profile_parse(name_or_path, p);
	nd = profile_dirs(dirs, 4);
	for (int i = 0; i < nd; i++) {
		snprintf(path, sizeof(path), "%.3900s/%s%s", dirs[i], name_or_path, PROFILE_SUFFIX);
		/* AT_EACCESS: the file-system ids as_user_enter() set, not the real (root) ones */
		if (!faccessat(AT_FDCWD, path, R_OK, AT_EACCESS))
			return profile_parse(path, p);
	}
	p_err("no profile '%s' (see '%s profiles')", name_or_path, prog_name);
	return -ENOENT;
}

/*
 * Profiles are the user's files: under sudo they are read with the user's rights, so a parse
 * error can only ever quote a file the user could have read anyway (never /etc/shadow).
 */
static int user_identity(void)
{
	int err = as_user_enter();

	if (err)
		p_err("cannot take the invoking user's identity: %s", strerror(-err));
	return err;
}

int profile_load(const char *name_or_path, struct trace_profile *p)
{
	int err = user_identity();

	if (err)
		return err;
	err = profile_load_as_user(name_or_path, p);
	as_user_leave();
	return err;
}

static struct json_object *profile_json(const struct trace_profile *p)
{
	struct json_object *o = json_object_new_object(), *k = json_object_new_array(),
			   *out = json_object_new_array();

	json_object_object_add(o, "name", json_object_new_string(p->name));
	json_object_object_add(o, "path", json_object_new_string(p->path));
	json_object_object_add(o, "description", json_object_new_string(p->description));
	for (int i = 0; i < SPAN_KINDS; i++)
		if (p->kinds_mask & (1u << i))
			json_object_array_add(k, json_object_new_string(span_name(i)));
	json_object_object_add(o, "kinds", k);
	json_object_object_add(o, "stacks",
			       json_object_new_string(p->stack_mode == STACKS_ALL  ? "all" :
						      p->stack_mode == STACKS_NONE ? "none" :
										     "outer"));
	json_object_object_add(o, "mode",
			       json_object_new_string(p->events ? "events" : "histogram"));
	for (unsigned int i = 0; i < sizeof(output_names) / sizeof(output_names[0]); i++)
		if (p->outputs & (1u << i))
			json_object_array_add(out, json_object_new_string(output_names[i]));
	json_object_object_add(o, "outputs", out);
	json_object_object_add(o, "duration_s", json_object_new_uint64(p->duration));
	json_object_object_add(o, "pmu", json_object_new_string(p->pmu));
	json_object_object_add(o, "host_sample_hz", json_object_new_uint64(p->host_hz));
	return o;
}

static void profile_print(const struct trace_profile *p)
{
	int nk = 0;

	printf("%-12s %s\n", p->name, p->description);
	printf("%-12s   file %s\n", "", p->path);
	printf("%-12s   kinds ", "");
	for (int i = 0; i < SPAN_KINDS; i++)
		if (p->kinds_mask & (1u << i))
			nk++;
	if (nk == SPAN_KINDS)
		printf("all");
	else if (!nk)
		printf("none");
	else
		for (int i = 0, c = 0; i < SPAN_KINDS; i++)
			if (p->kinds_mask & (1u << i))
				printf("%s%s", c++ ? "," : "", span_name(i));
	printf("; stacks %s; mode %s; outputs ",
	       p->stack_mode == STACKS_ALL  ? "all" :
	       p->stack_mode == STACKS_NONE ? "none" :
					      "outer",
	       p->events ? "events" : "histogram");
	for (unsigned int i = 0, c = 0; i < sizeof(output_names) / sizeof(output_names[0]); i++)
		if (p->outputs & (1u << i))
			printf("%s%s", c++ ? "," : "", output_names[i]);
	if (!p->outputs)
		printf("none");
	if (p->duration)
		printf("; duration %llu s", (unsigned long long)p->duration);
	if (p->pmu[0])
		printf("; pmu %s", p->pmu);
	if (p->host_hz)
		printf("; host sampled at %llu Hz", (unsigned long long)p->host_hz);
	printf("\n");
}

int profiles_help(void)
{
	printf("Usage: %s [-j] profiles [NAME|FILE...]\n\n"
	       "List the trace profiles record -P can use, from $MMSB_PROFILES, the source tree's\n"
	       "profiles/ and PREFIX/share/mmsb/profiles (the first holding a name wins); or parse\n"
	       "the named ones and show their settings. A profile that does not parse is reported\n"
	       "as FILE:LINE: reason, and the exit status is 1. The format is in docs/profiles.md.\n",
	       prog_name);
	return EXIT_OK;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Read one profile (a name or a path) and show it: into arr with -j, printed otherwise. */
static int show(const char *name_or_path, struct json_object *arr)
{
	struct trace_profile p;
	int err = profile_load(name_or_path, &p);

	if (err)
		return err;
	if (json)
		json_object_array_add(arr, profile_json(&p));
	else
		profile_print(&p);
	return 0;
}

static int profiles_as_user(int argc, char **argv)
{
	struct json_object *arr = json_object_new_array();
	char dirs[4][PATH_MAX], seen[64][64];
	int ret = EXIT_OK, nseen = 0;

	if (argc > 1) {
		for (int i = 1; i < argc; i++) {
			if (show(argv[i], arr))
				ret = EXIT_FAIL;
		}
	} else {
		int nd = profile_dirs(dirs, 4);

		for (int d = 0; d < nd; d++) {
			struct dirent *de;
			char *names[256];
			int nn = 0;
			DIR *dir = opendir(dirs[d]);

			if (!dir)
				continue;
			while ((de = readdir(dir)) && nn < 256) {
				size_t l = strlen(de->d_name), sl = strlen(PROFILE_SUFFIX);

				if (l > sl && !strcmp(de->d_name + l - sl, PROFILE_SUFFIX))
					names[nn++] = strdup(de->d_name);
			}
			closedir(dir);
			qsort(names, nn, sizeof(*names), cmp_str);
			for (int i = 0; i < nn; i++) {
				char path[PATH_MAX + 300];
				bool dup = false;

				/* a name found earlier on the path hides this one */
				for (int s = 0; s < nseen && !dup; s++)
					dup = !strcmp(seen[s], names[i]);
				if (!dup && nseen < 64)
					snprintf(seen[nseen++], 64, "%s", names[i]);
				snprintf(path, sizeof(path), "%.3900s/%s", dirs[d], names[i]);
				free(names[i]);
				if (!dup && show(path, arr))
					ret = EXIT_FAIL;
			}
		}
		if (!nseen && !json)
			printf("no profiles found (set MMSB_PROFILES to a directory of *.profile)\n");
	}
	if (json)
		printf("%s\n", json_object_to_json_string_ext(
				       arr, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(arr);
	return ret;
}

int do_profiles(int argc, char **argv)
{
	int ret;

	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
		return profiles_help();
	if (user_identity())
		return EXIT_FAIL;
	ret = profiles_as_user(argc, argv);
	as_user_leave();
	return ret;
}
