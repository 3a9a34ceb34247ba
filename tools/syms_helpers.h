/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Symbolising user addresses after the target has exited: its maps, kept, and ELF symbol tables. */
#ifndef __MMSB_SYMS_HELPERS_H
#define __MMSB_SYMS_HELPERS_H

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

/* Module of addr (basename), or NULL: for build-id + offset records. */
const char *syms_module(struct syms *s, uint64_t addr, uint64_t *file_off);

#endif /* __MMSB_SYMS_HELPERS_H */
