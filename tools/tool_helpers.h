/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Helpers shared by the mmsb tools: strict numbers, one error path, exit codes, time. */
#ifndef __MMSB_TOOL_HELPERS_H
#define __MMSB_TOOL_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exit codes of every mmsb tool: 0 ok, 1 failure, 2 usage. */
#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2

extern const char *prog_name;

/* One error line on stderr: "PROG: message". */
void p_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Parse an unsigned decimal (or 0x hex) number strictly: the whole string, no sign, no
 * overflow, within [lo, hi]. Returns 0 or -EINVAL/-ERANGE.
 */
int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);

/* CLOCK_MONOTONIC in nanoseconds: every tool times with this. */
uint64_t mono_ns(void);

/* RFC 3339 UTC with nanoseconds, or "0" for a zero timestamp. */
void fmt_time_ns(uint64_t ns, char *buf, size_t len);

/*
 * A subcommand table after bpftool's: a name, the function, and a one-line summary.
 * Names match by unique prefix.
 */
struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

int cmd_select(const struct cmd *cmds, int argc, char **argv, int (*help)(int, char **));

/* The libmmsb.so this tool runs with (the dynamic linker's choice), or NULL when linked in. */
const char *own_libmmsb(void);

/* Flush stdout and report a write error (full disk, closed pipe) as a failure. */
int finish_stdout(int ret);

#endif /* __MMSB_TOOL_HELPERS_H */
