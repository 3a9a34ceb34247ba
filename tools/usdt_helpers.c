// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* USDT notes out of ELF objects, and the objects a process maps. */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "usdt_helpers.h"

#define NT_STAPSDT 3

/* Address to file offset through the loadable segments. */
static uint64_t addr_to_off(Elf *elf, uint64_t addr)
{
	size_t n;

	if (!addr || elf_getphdrnum(elf, &n))
		return 0;
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (addr >= ph.p_vaddr && addr < ph.p_vaddr + ph.p_memsz)
			return addr - ph.p_vaddr + ph.p_offset;
	}
	return 0;
}

static int count_args(const char *s)
{
	int n = 0;

	for (const char *p = s; *p;) {
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		n++;
		while (*p && *p != ' ')
			p++;
	}
	return n;
}

int usdt_notes_read(const char *path, struct usdt_note **out)
{
	struct usdt_note *v = NULL;
	size_t n = 0, cap = 0, shstrndx;
	uint64_t base_addr = 0;
	Elf_Scn *scn = NULL;
	int fd, err = 0;
	Elf *elf;

	*out = NULL;
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (!elf || elf_kind(elf) != ELF_K_ELF || elf_getshdrstrndx(elf, &shstrndx)) {
		err = -ENOEXEC;
		goto out;
	}
	/* .stapsdt.base says where the object was linked, for prelinked files */
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		const char *name;

		if (!gelf_getshdr(scn, &sh) || !(name = elf_strptr(elf, shstrndx, sh.sh_name)))
			continue;
		if (!strcmp(name, ".stapsdt.base"))
			base_addr = sh.sh_addr;
	}
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		GElf_Nhdr nh;
		size_t off = 0, name_off, desc_off;
		const char *name;
		Elf_Data *data;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE ||
		    !(name = elf_strptr(elf, shstrndx, sh.sh_name)) ||
		    strcmp(name, ".note.stapsdt"))
			continue;
		data = elf_getdata(scn, NULL);
		while (data && (off = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
			const char *desc = (const char *)data->d_buf + desc_off, *p, *end;
			uint64_t pc, base, sema;
			struct usdt_note *u;

			if (nh.n_type != NT_STAPSDT || nh.n_namesz != 8 ||
			    memcmp((const char *)data->d_buf + name_off, "stapsdt", 8) ||
			    nh.n_descsz < 3 * 8 + 3)
				continue;
			memcpy(&pc, desc, 8);
			memcpy(&base, desc + 8, 8);
			memcpy(&sema, desc + 16, 8);
			if (n == cap) {
				struct usdt_note *nv =
					realloc(v, (cap ? 2 * cap : 64) * sizeof(*v));

				if (!nv) {
					err = -ENOMEM;
					goto out;
				}
				v = nv;
				cap = cap ? 2 * cap : 64;
			}
			u = &v[n];
			memset(u, 0, sizeof(*u));
			/* three NUL-terminated strings, every one inside the note */
			p = desc + 24;
			end = desc + nh.n_descsz;
			const char *strs[3];

			for (int k = 0; k < 3; k++) {
				const char *z = memchr(p, 0, (size_t)(end - p));

				strs[k] = z ? p : NULL;
				p = z ? z + 1 : end;
			}
			if (!strs[0] || !strs[1] || !strs[2])
				continue;
			snprintf(u->provider, sizeof(u->provider), "%s", strs[0]);
			snprintf(u->name, sizeof(u->name), "%s", strs[1]);
			snprintf(u->args, sizeof(u->args), "%s", strs[2]);
			u->n_args = count_args(u->args);
			/* prelink moves the object: the note's base against the section's tells by how much */
			if (base_addr && base != base_addr) {
				pc += base_addr - base;
				if (sema)
					sema += base_addr - base;
			}
			u->pc = pc;
			u->pc_off = addr_to_off(elf, pc);
			u->sema = sema;
			u->sema_off = addr_to_off(elf, sema);
			n++;
		}
	}
out:
	if (elf)
		elf_end(elf);
	close(fd);
	if (err) {
		free(v);
		return err;
	}
	*out = v;
	return (int)n;
}

void free_strv(char **v, int n)
{
	for (int i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

int proc_mapped_objects(int pid, char ***paths)
{
	char file[64], line[4096];
	char **v = NULL;
	int n = 0, cap = 0;
	FILE *f;

	*paths = NULL;
	snprintf(file, sizeof(file), "/proc/%d/maps", pid);
	f = fopen(file, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *path = strchr(line, '/');
		bool dup = false;

		if (!path)
			continue; /* anonymous, [heap], [stack], [vdso] */
		path[strcspn(path, "\n")] = 0;
		if (strstr(path, " (deleted)"))
			continue;
		for (int i = 0; i < n && !dup; i++)
			dup = !strcmp(v[i], path);
		if (dup)
			continue;
		if (n == cap) {
			char **nv = realloc(v, (size_t)(cap ? 2 * cap : 16) * sizeof(*v));

			if (!nv)
				goto nomem;
			v = nv;
			cap = cap ? 2 * cap : 16;
		}
		if (!(v[n] = strdup(path)))
			goto nomem;
		n++;
	}
	fclose(f);
	*paths = v;
	return n;
nomem:
	fclose(f);
	free_strv(v, n);
	return -ENOMEM;
}
