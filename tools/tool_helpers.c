// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Helpers shared by the mmsb tools. */
#include <dlfcn.h>
#include <errno.h>
#include <mmsb/mmsb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tool_helpers.h"

const char *prog_name = "mmsb";

void p_err(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	unsigned long long v;
	char *end;

	/* strtoull accepts "-1" and leading blanks; a count or an id must not */
	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ' || *s == '\t')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno == ERANGE)
		return -ERANGE;
	if (errno || *end || end == s)
		return -EINVAL;
	if (v < lo || v > hi)
		return -ERANGE;
	*out = v;
	return 0;
}

uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void fmt_time_ns(uint64_t ns, char *buf, size_t len)
{
	time_t sec = (time_t)(ns / 1000000000ull);
	struct tm tm;

	if (!ns) {
		snprintf(buf, len, "0");
		return;
	}
	gmtime_r(&sec, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%09lluZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (unsigned long long)(ns % 1000000000ull));
}

int cmd_select(const struct cmd *cmds, int argc, char **argv, int (*help)(int, char **))
{
	const struct cmd *hit = NULL;
	size_t n;

	if (argc < 1)
		return help(argc, argv) ? EXIT_USAGE : EXIT_USAGE;
	n = strlen(argv[0]);
	for (const struct cmd *c = cmds; c->name; c++) {
		if (!strcmp(c->name, argv[0]))
			return c->fn(argc, argv);
		if (!strncmp(c->name, argv[0], n)) {
			if (hit) {
				p_err("'%s' is ambiguous: %s or %s", argv[0], hit->name, c->name);
				return EXIT_USAGE;
			}
			hit = c;
		}
	}
	if (!hit) {
		p_err("unknown command '%s'; try '%s help'", argv[0], prog_name);
		return EXIT_USAGE;
	}
	return hit->fn(argc, argv);
}

int finish_stdout(int ret)
{
	if (fflush(stdout) || ferror(stdout)) {
		p_err("error writing output: %s", strerror(errno));
		return EXIT_FAIL;
	}
	return ret;
}

const char *own_libmmsb(void)
{
	Dl_info info;

	if (dladdr((void *)mmsb_version, &info) && info.dli_fname && strstr(info.dli_fname, ".so"))
		return info.dli_fname;
	return NULL;
}
