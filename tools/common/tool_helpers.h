/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Helpers shared by the mmsb tools: strict numbers, one error path, exit codes, time. */
#ifndef __MMSB_TOOL_HELPERS_H
#define __MMSB_TOOL_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

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

/*
 * An input file named by the user (a profile, a baseline, an ELF object), opened for reading
 * only if it is a regular file: the open never blocks (O_NONBLOCK, cleared after), so a FIFO
 * with no writer, /dev/zero, a terminal or a directory is refused at once rather than hang or
 * be read without end. MAX_BYTES caps its size (0: no cap). The fd (O_CLOEXEC), or -errno:
 * -EINVAL when not a regular file, -EFBIG when larger than MAX_BYTES.
 */
int open_regular(const char *path, size_t max_bytes);
/*
 * The whole of such a file, at most MAX_BYTES, in a NUL-terminated buffer (free it): 0, or
 * -errno as open_regular (-EFBIG also when it grew past the cap while read).
 */
int read_regular(const char *path, size_t max_bytes, char **buf, size_t *len);
/* The reason for an open_regular/read_regular error, for "PATH: reason". */
const char *input_strerror(int err);

/*
 * Run as root on the paths of whoever invoked sudo (docs/tracing.md, "Running as root"): under sudo (euid 0, SUDO_UID/SUDO_GID naming a user other than root) files the user
 * names are opened, and outputs created, with that user's rights, never root's. Without sudo
 * every helper here is a no-op.
 */
/*
 * Whether sudo started us: SUDO_UID set to anything but "0" (even a value that does not parse).
 * What only root itself may ask for (--as-root) is refused when this is true.
 */
bool sudo_env(void);

/* Under sudo: true, and the invoking user's ids. */
bool sudo_invoker(uid_t *uid, gid_t *gid);

/*
 * Take the invoking user's file-system identity (fsuid, fsgid, supplementary groups) until the
 * matching as_user_leave(): opens, creates, renames and mkdirs in between are checked as the
 * user's, and what they create is the user's. Nests. 0, or -errno (then do not go on: nothing
 * was changed and the caller holds no user identity to leave).
 */
int as_user_enter(void);
void as_user_leave(void);

/*
 * In a child before exec: become the invoking user for good (groups, gid, uid), with no new
 * privileges (PR_SET_NO_NEW_PRIVS: a setuid program runs without its privilege). 0 or -errno.
 */
int drop_to_invoker(void);

/*
 * Whether the invoking user could trace process PID (ptrace's rule: the same uid and gid for its
 * real, effective and saved ids, and a dumpable process). 0, or -EPERM with a reason in why;
 * 0 without sudo.
 */
int invoker_may_trace(int pid, char *why, size_t len);

/*
 * An output file named by the user. Never written through a symlink at PATH (refused); written
 * as a temporary beside it that replaces PATH once complete, so a failed run leaves the old file;
 * a FIFO or a character device (/dev/null) is written in place; "-" is stdout. Opened before the
 * work starts, so an unwritable path fails first. Under sudo it is created as the invoking user.
 */
struct out_file {
	FILE *f;
	const char *path;
	int dirfd;
	char name[256], tmp[256]; /* tmp: "" when written in place */
};

/* 0, or -errno after one error line naming PATH. */
int out_open(struct out_file *o, const char *path);
/* Flush, close, rename into place: 0, or -1 after one error line. No-op when not open. */
int out_close(struct out_file *o);
/* Close and remove the temporary: the old file at PATH stays as it was. */
void out_discard(struct out_file *o);
/* Create directory DIR (as the user) unless it exists; a symlink at DIR is refused. 0 or -errno. */
int out_mkdir(const char *dir);

#endif /* __MMSB_TOOL_HELPERS_H */
