/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Symbolising user addresses after the target has exited: its maps, kept, and ELF symbol tables. */
#ifndef __MMSB_SYMS_HELPERS_H
#define __MMSB_SYMS_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct syms;

/* Snapshot a process's file-backed executable mappings. NULL with errno on failure. */
struct syms *syms_load_pid(int pid);
void syms_free(struct syms *s);

/*
 * Name addr: "function" when an ELF symbol covers it, else "module+0xoffset" (the module's file
 * offset), else "[unknown]+0xaddr". Never fails; buf receives the name.
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

#endif /* __MMSB_SYMS_HELPERS_H */
