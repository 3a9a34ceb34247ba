/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Reading USDT (SystemTap SDT v3) notes from ELF objects; libbpf has no public API for it. */
#ifndef __MMSB_USDT_HELPERS_H
#define __MMSB_USDT_HELPERS_H

#include <stddef.h>
#include <stdint.h>

struct usdt_note {
	char provider[64];
	char name[64];
	char args[256];	   /* the argument spec string, e.g. "-4@%edi 8@%rsi" */
	int n_args;	   /* the number of space-separated argument specs */
	uint64_t pc;	   /* the call site's address in the object (prelink-corrected) */
	uint64_t pc_off;   /* its file offset */
	uint64_t sema;	   /* the semaphore's address, 0 when the probe has none */
	uint64_t sema_off; /* its file offset (what the kernel's ref_ctr_offset takes) */
};

/*
 * Read every stapsdt note of an ELF file. Returns the number of notes (0 when there are none)
 * and a malloc'ed array in *out, or a negative errno (-ENOEXEC for a file that is not ELF).
 */
int usdt_notes_read(const char *path, struct usdt_note **out);

/*
 * The object whose DT_NEEDED name starts with PREFIX ("libmmsb.so") that the dynamic linker would
 * load for the program EXE, found by reading ELF files, never by running anything: DT_NEEDED
 * breadth first through the dependencies, each looked up as ld.so does (DT_RPATH of the object
 * and of the executable unless DT_RUNPATH, LD_LIBRARY_PATH, DT_RUNPATH, $ORIGIN expanded, then
 * the directories of /etc/ld.so.conf and the system's). 0 and the real path in out, -ENOENT when
 * EXE needs no such object, -ENOEXEC when EXE is not ELF.
 */
int elf_find_needed(const char *exe, const char *prefix, char *out, size_t len);

/*
 * The file offset of the defined symbol NAME (from .dynsym or .symtab) in the ELF file PATH: 0,
 * -ENOENT when it has none, -ENOEXEC when PATH is not ELF, or -errno. A regular file only.
 */
int elf_sym_off(const char *path, const char *name, uint64_t *off);

/* The regular files a process maps, deduplicated, in map order; returns the count or -errno. */
int proc_mapped_objects(int pid, char ***paths);
void free_strv(char **v, int n);

#endif /* __MMSB_USDT_HELPERS_H */
