/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Symbolising user addresses after the target has exited: its maps, kept, then elfutils' libdwfl
 * on the files they name (symbol tables, separate debug info, DWARF lines and inlines) and the
 * JIT's /tmp/perf-PID.map.
 */
#ifndef __MMSB_SYMS_HELPERS_H
#define __MMSB_SYMS_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct syms;

/* Snapshot a process's mappings (nothing else is read yet). NULL with errno on failure. */
struct syms *syms_load_pid(int pid);
void syms_free(struct syms *s);

/*
 * Name addr: "function" when a symbol covers it (the file's, its separate debug file's, or a JIT
 * map's), else "module+0xoffset" (the module's file offset), else "[unknown]" when it is no code
 * (syms_is_code(): a stack or data address is never shown as a place in code), or
 * "[unknown]+0xaddr" without a snapshot. Never fails; buf receives the name. The function that
 * holds addr, not what was inlined into it.
 */
void syms_name(struct syms *s, uint64_t addr, char *buf, size_t len);

/* Where addr lives, for records that outlive the process: the file, its build id, the offset. */
struct frame_loc {
	const char *module;   /* the mapped file's path */
	const char *build_id; /* hex; "" when the file carries none */
	uint64_t offset;      /* file offset */
};

/* false when no file mapping covers addr */
bool syms_locate(struct syms *s, uint64_t addr, struct frame_loc *loc);

/*
 * Whether addr lies in an executable mapping of the snapshot. A frame-pointer walk through code
 * built without frame pointers reads stack or heap words as return addresses: such an address
 * is no code, and nothing the walk found past it can be trusted. True when s is NULL (nothing
 * known either way).
 */
bool syms_is_code(struct syms *s, uint64_t addr);

/* One frame as perf shows it: the function, and its source line where DWARF has one. */
struct sym_frame {
	char name[256];
	const char *file; /* NULL without line info; valid until syms_free() */
	int line;
	bool inlined; /* inlined into the next frame (its caller) */
};

/*
 * The frames of addr, innermost first: the functions inlined there, each inlined into the next,
 * then the function that holds them (named as syms_name() does). For a return address (caller)
 * the call instruction, addr - 1, is looked up: the line and the inlines of the call, not of
 * what follows it. Returns how many were written (at least 1 when max > 0).
 */
int syms_frames(struct syms *s, uint64_t addr, bool caller, struct sym_frame *f, int max);

#endif /* __MMSB_SYMS_HELPERS_H */
