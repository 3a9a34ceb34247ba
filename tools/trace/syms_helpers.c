// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Process maps and ELF symbol tables (.symtab, else .dynsym), read once per module. */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "syms_helpers.h"
#include "tool_helpers.h"

struct sym {
	uint64_t addr, size; /* link-time address (st_value) */
	char *name;
};

struct module {
	char *path;
	const char *base;  /* basename of path */
	char build_id[41]; /* hex of NT_GNU_BUILD_ID, "" when the file has none */
	struct sym *syms;
	size_t n_syms;
	bool loaded;
	/* PT_LOAD segments, to turn a file offset into a link-time address */
	struct {
		uint64_t vaddr, off, filesz;
	} seg[16];
	int n_seg;
};

struct map {
	uint64_t start, end, off;
	size_t mod; /* index into mods: they move as the array grows */
};

struct syms {
	struct map *maps;
	size_t n_maps;
	struct module *mods;
	size_t n_mods;
};

static int cmp_sym(const void *a, const void *b)
{
	const struct sym *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* The GNU build id in a note section: what names this exact file later, wherever it moved. */
static void read_build_id(struct module *m, Elf_Data *data)
{
	size_t off = 0, name_off, desc_off;
	GElf_Nhdr nh;

	while (data && (off = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
		const unsigned char *d = (const unsigned char *)data->d_buf + desc_off;

		if (nh.n_type != NT_GNU_BUILD_ID || nh.n_namesz != 4 ||
		    memcmp((const char *)data->d_buf + name_off, "GNU", 4) || nh.n_descsz > 20)
			continue;
		for (size_t i = 0; i < nh.n_descsz; i++)
			sprintf(m->build_id + 2 * i, "%02x", d[i]);
		return;
	}
}

static void load_module(struct module *m)
{
	size_t cap = 0, shnum;
	Elf_Scn *scn = NULL, *dyn = NULL, *tab = NULL;
	Elf *elf;
	int fd;

	m->loaded = true;
	if (elf_version(EV_CURRENT) == EV_NONE)
		return;
	fd = open_regular(m->path, 0); /* a mapped device (/dev/zero) is no ELF: never read it */
	if (fd < 0)
		return;
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (!elf || elf_kind(elf) != ELF_K_ELF)
		goto out;
	if (!elf_getphdrnum(elf, &shnum))
		for (size_t i = 0; i < shnum && m->n_seg < 16; i++) {
			GElf_Phdr ph;

			if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD) {
				m->seg[m->n_seg].vaddr = ph.p_vaddr;
				m->seg[m->n_seg].off = ph.p_offset;
				m->seg[m->n_seg].filesz = ph.p_filesz;
				m->n_seg++;
			}
		}
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;

		if (!gelf_getshdr(scn, &sh))
			continue;
		if (sh.sh_type == SHT_SYMTAB)
			tab = scn;
		else if (sh.sh_type == SHT_DYNSYM)
			dyn = scn;
		else if (sh.sh_type == SHT_NOTE && !m->build_id[0])
			read_build_id(m, elf_getdata(scn, NULL));
	}
	/* the full table when the file has one; the dynamic one (exports only) otherwise */
	scn = tab ? tab : dyn;
	if (scn) {
		GElf_Shdr sh;
		Elf_Data *data = elf_getdata(scn, NULL);

		gelf_getshdr(scn, &sh);
		for (size_t i = 0; data && sh.sh_entsize && i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym s;
			const char *name;

			if (!gelf_getsym(data, (int)i, &s) || GELF_ST_TYPE(s.st_info) != STT_FUNC ||
			    !s.st_value || !(name = elf_strptr(elf, sh.sh_link, s.st_name)))
				continue;
			if (m->n_syms == cap) {
				struct sym *nv =
					realloc(m->syms, (cap ? 2 * cap : 256) * sizeof(*nv));

				if (!nv)
					break;
				m->syms = nv;
				cap = cap ? 2 * cap : 256;
			}
			m->syms[m->n_syms].addr = s.st_value;
			m->syms[m->n_syms].size = s.st_size;
			m->syms[m->n_syms].name = strdup(name);
			m->n_syms++;
		}
		qsort(m->syms, m->n_syms, sizeof(*m->syms), cmp_sym);
	}
out:
	if (elf)
		elf_end(elf);
	close(fd);
}

struct syms *syms_load_pid(int pid)
{
	char file[64], line[4096];
	struct syms *s = calloc(1, sizeof(*s));
	size_t cap_maps = 0, cap_mods = 0;
	FILE *f;

	if (!s)
		return NULL;
	snprintf(file, sizeof(file), "/proc/%d/maps", pid);
	f = fopen(file, "re");
	if (!f) {
		free(s);
		return NULL;
	}
	while (fgets(line, sizeof(line), f)) {
		unsigned long long start, end, off;
		char perms[8], *path = strchr(line, '/');
		struct module *mod = NULL;
		size_t mi = 0;

		if (!path || sscanf(line, "%llx-%llx %7s %llx", &start, &end, perms, &off) != 4 ||
		    perms[2] != 'x')
			continue;
		path[strcspn(path, "\n")] = 0;
		for (size_t i = 0; i < s->n_mods && !mod; i++)
			if (!strcmp(s->mods[i].path, path)) {
				mod = &s->mods[i];
				mi = i;
			}
		if (!mod) {
			if (s->n_mods == cap_mods) {
				struct module *nm = realloc(
					s->mods, (cap_mods ? 2 * cap_mods : 16) * sizeof(*nm));

				if (!nm)
					break;
				s->mods = nm;
				cap_mods = cap_mods ? 2 * cap_mods : 16;
			}
			mi = s->n_mods;
			mod = &s->mods[s->n_mods++];
			memset(mod, 0, sizeof(*mod));
			mod->path = strdup(path);
			mod->base = strrchr(mod->path, '/') + 1;
		}
		if (s->n_maps == cap_maps) {
			struct map *nm =
				realloc(s->maps, (cap_maps ? 2 * cap_maps : 32) * sizeof(*nm));

			if (!nm)
				break;
			s->maps = nm;
			cap_maps = cap_maps ? 2 * cap_maps : 32;
		}
		s->maps[s->n_maps++] = (struct map){ start, end, off, mi };
	}
	fclose(f);
	return s;
}

void syms_free(struct syms *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_mods; i++) {
		for (size_t k = 0; k < s->mods[i].n_syms; k++)
			free(s->mods[i].syms[k].name);
		free(s->mods[i].syms);
		free(s->mods[i].path);
	}
	free(s->mods);
	free(s->maps);
	free(s);
}

static const struct map *find_map(struct syms *s, uint64_t addr)
{
	for (size_t i = 0; s && i < s->n_maps; i++)
		if (addr >= s->maps[i].start && addr < s->maps[i].end)
			return &s->maps[i];
	return NULL;
}

bool syms_locate(struct syms *s, uint64_t addr, struct frame_loc *loc)
{
	const struct map *m = find_map(s, addr);
	struct module *mod;

	if (!m)
		return false;
	mod = &s->mods[m->mod];
	if (!mod->loaded)
		load_module(mod);
	loc->module = mod->path;
	loc->build_id = mod->build_id;
	loc->offset = addr - m->start + m->off;
	return true;
}

void syms_name(struct syms *s, uint64_t addr, char *buf, size_t len)
{
	const struct map *m = find_map(s, addr);
	uint64_t off, vaddr = 0;
	struct module *mod;
	bool have_vaddr = false;

	if (!m) {
		snprintf(buf, len, "[unknown]+0x%llx", (unsigned long long)addr);
		return;
	}
	mod = &s->mods[m->mod];
	off = addr - m->start + m->off;
	if (!mod->loaded)
		load_module(mod);
	for (int i = 0; i < mod->n_seg; i++)
		if (off >= mod->seg[i].off && off < mod->seg[i].off + mod->seg[i].filesz) {
			vaddr = off - mod->seg[i].off + mod->seg[i].vaddr;
			have_vaddr = true;
			break;
		}
	if (have_vaddr && mod->n_syms) {
		/* the last symbol starting at or before vaddr, if vaddr is inside it */
		size_t lo = 0, hi = mod->n_syms;

		while (lo < hi) {
			size_t mid = (lo + hi) / 2;

			if (mod->syms[mid].addr <= vaddr)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo) {
			const struct sym *sy = &mod->syms[lo - 1];

			if (vaddr < sy->addr + (sy->size ? sy->size : 1)) {
				snprintf(buf, len, "%s", sy->name);
				return;
			}
		}
	}
	snprintf(buf, len, "%s+0x%llx", mod->base, (unsigned long long)off);
}
