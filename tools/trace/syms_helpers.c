// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A process's maps, kept; names through elfutils' libdwfl as perf and eu-addr2line find them:
 * the file's symbol table, else its separate debug file's (.gnu_debuglink, the build id under
 * /usr/lib/debug/.build-id, debuginfod when DEBUGINFOD_URLS is set: libdw loads it itself), the
 * DWARF line and the inlined calls at an address; code in anonymous memory from the JIT's
 * /tmp/perf-PID.map. Nothing but the maps is read until a name is asked for: the maps of a
 * process followed with -p are snapshot every second and most snapshots are never used.
 */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "syms_helpers.h"
#include "tool_helpers.h"

/* A JIT map bigger than this is not read (perf's maps of a long JVM run stay well under it). */
#define JIT_MAP_MAX (256u << 20)

struct module {
	char *path;
	const char *base;  /* basename of path */
	char build_id[41]; /* hex of NT_GNU_BUILD_ID, "" when the file has none */
	bool loaded;	   /* the ELF headers read (build id, segments) */
	/* PT_LOAD segments: a mapping's file offset to the load bias */
	struct {
		uint64_t vaddr, off, filesz;
		bool exec;
	} seg[16];
	int n_seg;
	Dwfl_Module *dm; /* NULL when libdwfl could not take the file */
};

struct map {
	uint64_t start, end, off;
	long mod;  /* index into mods (they move as the array grows); -1 when no file backs it */
	char *tag; /* "[vdso]", "[anon:...]", ... for a map no file backs; NULL when anonymous */
	bool exec;
};

struct jit_sym {
	uint64_t start, size;
	char *name;
	size_t seq; /* its line: the later of two at one address wins, as the JIT reused it */
};

struct syms {
	int pid;
	uid_t uid;	  /* the process's owner: only its (or root's) JIT map is believed */
	struct map *maps; /* ascending, as /proc/PID/maps lists them */
	size_t n_maps;
	struct module *mods;
	size_t n_mods;
	Dwfl *dwfl;
	bool dwfl_tried, jit_tried;
	struct jit_sym *jit;
	size_t n_jit;
	char **paths; /* source paths made absolute, each once: frames point into them */
	size_t n_paths;
};

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

/* The headers only: the build id for syms_locate(), the segments for the load bias. */
static void load_module(struct module *m)
{
	Elf_Scn *scn = NULL;
	size_t n;
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
	if (!elf_getphdrnum(elf, &n))
		for (size_t i = 0; i < n && m->n_seg < 16; i++) {
			GElf_Phdr ph;

			if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD) {
				m->seg[m->n_seg].vaddr = ph.p_vaddr;
				m->seg[m->n_seg].off = ph.p_offset;
				m->seg[m->n_seg].filesz = ph.p_filesz;
				m->seg[m->n_seg].exec = ph.p_flags & PF_X;
				m->n_seg++;
			}
		}
	while (!m->build_id[0] && (scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;

		if (gelf_getshdr(scn, &sh) && sh.sh_type == SHT_NOTE)
			read_build_id(m, elf_getdata(scn, NULL));
	}
out:
	if (elf)
		elf_end(elf);
	close(fd);
}

static struct module *add_module(struct syms *s, const char *path, size_t *cap, long *idx)
{
	struct module *m;

	for (size_t i = 0; i < s->n_mods; i++)
		if (!strcmp(s->mods[i].path, path)) {
			*idx = (long)i;
			return &s->mods[i];
		}
	if (s->n_mods == *cap) {
		size_t nc = *cap ? 2 * *cap : 16;
		struct module *nm = realloc(s->mods, nc * sizeof(*nm));

		if (!nm)
			return NULL;
		s->mods = nm;
		*cap = nc;
	}
	m = &s->mods[s->n_mods];
	memset(m, 0, sizeof(*m));
	m->path = strdup(path);
	if (!m->path)
		return NULL;
	m->base = strrchr(m->path, '/') + 1;
	*idx = (long)s->n_mods++;
	return m;
}

struct syms *syms_load_pid(int pid)
{
	size_t cap_maps = 0, cap_mods = 0;
	struct syms *s = calloc(1, sizeof(*s));
	char file[64], line[4096];
	struct stat st;
	FILE *f;

	if (!s)
		return NULL;
	s->pid = pid;
	snprintf(file, sizeof(file), "/proc/%d", pid);
	s->uid = stat(file, &st) ? 0 : st.st_uid;
	snprintf(file, sizeof(file), "/proc/%d/maps", pid);
	f = fopen(file, "re");
	if (!f) {
		free(s);
		return NULL;
	}
	/* every mapping: the non-executable ones tell a stack or data address from code */
	while (fgets(line, sizeof(line), f)) {
		unsigned long long start, end, off;
		char perms[8], *name;
		struct map mp = { .mod = -1 };
		int at = 0;

		if (sscanf(line, "%llx-%llx %7s %llx %*x:%*x %*u %n", &start, &end, perms, &off,
			   &at) < 4 ||
		    !at)
			continue;
		name = line + at;
		name[strcspn(name, "\n")] = 0;
		mp.start = start;
		mp.end = end;
		mp.off = off;
		mp.exec = perms[2] == 'x';
		if (name[0] == '/') {
			if (!add_module(s, name, &cap_mods, &mp.mod))
				break;
		} else if (name[0] && !(mp.tag = strdup(name))) {
			break;
		}
		if (s->n_maps == cap_maps) {
			size_t nc = cap_maps ? 2 * cap_maps : 64;
			struct map *nm = realloc(s->maps, nc * sizeof(*nm));

			if (!nm) {
				free(mp.tag);
				break;
			}
			s->maps = nm;
			cap_maps = nc;
		}
		s->maps[s->n_maps++] = mp;
	}
	fclose(f);
	return s;
}

void syms_free(struct syms *s)
{
	if (!s)
		return;
	if (s->dwfl)
		dwfl_end(s->dwfl);
	for (size_t i = 0; i < s->n_mods; i++)
		free(s->mods[i].path);
	for (size_t i = 0; i < s->n_maps; i++)
		free(s->maps[i].tag);
	for (size_t i = 0; i < s->n_jit; i++)
		free(s->jit[i].name);
	free(s->jit);
	for (size_t i = 0; i < s->n_paths; i++)
		free(s->paths[i]);
	free(s->paths);
	free(s->mods);
	free(s->maps);
	free(s);
}

static const struct map *find_map(struct syms *s, uint64_t addr)
{
	size_t lo = 0, hi = s ? s->n_maps : 0;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (addr < s->maps[mid].start)
			hi = mid;
		else if (addr >= s->maps[mid].end)
			lo = mid + 1;
		else
			return &s->maps[mid];
	}
	return NULL;
}

bool syms_is_code(struct syms *s, uint64_t addr)
{
	const struct map *m;

	if (!s)
		return true;
	m = find_map(s, addr);
	return m && m->exec;
}

bool syms_locate(struct syms *s, uint64_t addr, struct frame_loc *loc)
{
	const struct map *m = find_map(s, addr);
	struct module *mod;

	if (!m || m->mod < 0)
		return false;
	mod = &s->mods[m->mod];
	if (!mod->loaded)
		load_module(mod);
	loc->module = mod->path;
	loc->build_id = mod->build_id;
	loc->offset = addr - m->start + m->off;
	return true;
}

/*
 * The load bias of the module an executable mapping holds: the mapping's start less the address
 * its file offset has in the file's own layout, from the segment that offset is in.
 */
static bool map_bias(const struct map *m, const struct module *mod, uint64_t *bias)
{
	for (int want_exec = 1; want_exec >= 0; want_exec--)
		for (int i = 0; i < mod->n_seg; i++) {
			uint64_t so = mod->seg[i].off & ~4095ull;

			if (mod->seg[i].exec != want_exec || m->off < so ||
			    m->off >= mod->seg[i].off + mod->seg[i].filesz)
				continue;
			*bias = m->start - m->off + mod->seg[i].off - mod->seg[i].vaddr;
			return true;
		}
	return false;
}

/* Every module comes with its file already open: nothing is looked up by name. */
static int no_find_elf(Dwfl_Module *mod, void **ud, const char *name, Dwarf_Addr base,
		       char **file_name, Elf **elfp)
{
	(void)mod, (void)ud, (void)name, (void)base, (void)file_name, (void)elfp;
	return -1;
}

static char *debuginfo_path; /* NULL: libdwfl's default, ":.debug:/usr/lib/debug" */
static const Dwfl_Callbacks dwfl_callbacks = {
	.find_elf = no_find_elf,
	.find_debuginfo = dwfl_standard_find_debuginfo,
	.debuginfo_path = &debuginfo_path,
};

/*
 * The address space as libdwfl sees it, built the first time a name is asked for: each file
 * with an executable mapping, at the bias that mapping gives it. Files are opened with
 * open_regular() (never a device), by whoever calls us (the invoking user under sudo).
 */
static Dwfl *get_dwfl(struct syms *s)
{
	if (s->dwfl_tried)
		return s->dwfl;
	s->dwfl_tried = true;
	s->dwfl = dwfl_begin(&dwfl_callbacks);
	if (!s->dwfl)
		return NULL;
	dwfl_report_begin(s->dwfl);
	for (size_t i = 0; i < s->n_maps; i++) {
		const struct map *m = &s->maps[i];
		struct module *mod;
		uint64_t bias;
		int fd;

		if (!m->exec || m->mod < 0)
			continue;
		mod = &s->mods[m->mod];
		if (mod->dm)
			continue;
		if (!mod->loaded)
			load_module(mod);
		if (!map_bias(m, mod, &bias) || (fd = open_regular(mod->path, 0)) < 0)
			continue;
		/* on success libdwfl owns fd */
		mod->dm = dwfl_report_elf(s->dwfl, mod->path, mod->path, fd, bias, true);
		if (!mod->dm)
			close(fd);
	}
	dwfl_report_end(s->dwfl, NULL, NULL);
	return s->dwfl;
}

static int cmp_jit(const void *a, const void *b)
{
	const struct jit_sym *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->seq < y->seq ? 1 : x->seq > y->seq ? -1 : 0; /* the latest first */
}

/*
 * /tmp/perf-PID.map, perf's JIT interface (CPython 3.12's -X perf, Node's --perf-basic-prof,
 * the JVM's perf-map-agent): "START SIZE name" a line, hex. Read once, only if it is a regular
 * file of the process's owner or root (perf's rule: anyone may create a file in /tmp).
 */
static void load_jit(struct syms *s)
{
	size_t cap = 0, seq = 0, len = 0, w = 0;
	char path[64], *line = NULL;
	struct stat st;
	FILE *f;
	int fd;

	s->jit_tried = true;
	snprintf(path, sizeof(path), "/tmp/perf-%d.map", s->pid);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (st.st_uid && st.st_uid != s->uid) ||
	    (uint64_t)st.st_size > JIT_MAP_MAX || !(f = fdopen(fd, "r"))) {
		close(fd);
		return;
	}
	while (getline(&line, &len, f) > 0) {
		unsigned long long start, size;
		char *p = line, *e;

		start = strtoull(p, &e, 16);
		if (e == p || *e != ' ')
			continue;
		size = strtoull(p = e + 1, &e, 16);
		if (e == p || *e != ' ' || !size)
			continue;
		e[1 + strcspn(e + 1, "\n")] = 0;
		if (s->n_jit == cap) {
			size_t nc = cap ? 2 * cap : 256;
			struct jit_sym *nv = realloc(s->jit, nc * sizeof(*nv));

			if (!nv)
				break;
			s->jit = nv;
			cap = nc;
		}
		s->jit[s->n_jit].name = strdup(e + 1);
		if (!s->jit[s->n_jit].name)
			break;
		s->jit[s->n_jit].start = start;
		s->jit[s->n_jit].size = size;
		s->jit[s->n_jit++].seq = seq++;
	}
	free(line);
	fclose(f);
	/* one symbol per start address: the latest line's */
	qsort(s->jit, s->n_jit, sizeof(*s->jit), cmp_jit);
	for (size_t i = 0; i < s->n_jit; i++) {
		if (w && s->jit[w - 1].start == s->jit[i].start) {
			free(s->jit[i].name);
			continue;
		}
		s->jit[w++] = s->jit[i];
	}
	s->n_jit = w;
}

static const char *jit_name(struct syms *s, uint64_t addr)
{
	size_t lo = 0, hi;

	if (!s->jit_tried)
		load_jit(s);
	hi = s->n_jit;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (s->jit[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo && addr - s->jit[lo - 1].start < s->jit[lo - 1].size)
		return s->jit[lo - 1].name;
	return NULL;
}

/* A DIE's name, through its abstract origin (an inlined instance has none of its own). */
static const char *die_name(Dwarf_Die *die)
{
	Dwarf_Attribute a;

	return dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &a));
}

/*
 * The inlined calls at pc, innermost first, into f (each with the line it is at), and the file
 * and line of the call into the function that holds them all in *file, *line. Returns how many.
 */
static int inlines(Dwarf_Die *cu, uint64_t pc, struct sym_frame *f, int max, const char **file,
		   int *line)
{
	Dwarf_Die *scopes = NULL;
	Dwarf_Files *files = NULL;
	int n, k = 0;

	if (!cu || (n = dwarf_getscopes(cu, pc, &scopes)) <= 0)
		return 0;
	if (dwarf_getsrcfiles(cu, &files, NULL))
		files = NULL;
	for (int i = 0; i < n && k < max; i++) {
		Dwarf_Attribute a;
		Dwarf_Word w;
		int tag = dwarf_tag(&scopes[i]);

		if (tag == DW_TAG_subprogram)
			break;
		if (tag != DW_TAG_inlined_subroutine)
			continue; /* a lexical block */
		snprintf(f[k].name, sizeof(f[k].name), "%s", die_name(&scopes[i]) ?: "[inlined]");
		f[k].file = *file;
		f[k].line = *line;
		f[k++].inlined = true;
		/* the caller's line is the call site */
		*file = NULL;
		*line = 0;
		if (files && !dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_file, &a), &w))
			*file = dwarf_filesrc(files, w, NULL, NULL);
		if (!dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_line, &a), &w))
			*line = (int)w;
	}
	free(scopes);
	return k;
}

/*
 * A source path as eu-addr2line prints it: relative ones (the compiler's view, from where it
 * ran) under the unit's DW_AT_comp_dir. Kept in s until syms_free(); the path itself when
 * nothing is to be joined or memory runs out.
 */
static const char *full_path(struct syms *s, const char *dir, const char *file)
{
	char *p, **np;

	if (!file || file[0] == '/' || !dir || !dir[0] || asprintf(&p, "%s/%s", dir, file) < 0)
		return file;
	for (size_t i = 0; i < s->n_paths; i++)
		if (!strcmp(s->paths[i], p)) {
			free(p);
			return s->paths[i];
		}
	np = realloc(s->paths, (s->n_paths + 1) * sizeof(*np));
	if (!np) {
		free(p);
		return file;
	}
	s->paths = np;
	return s->paths[s->n_paths++] = p;
}

int syms_frames(struct syms *s, uint64_t addr, bool caller, struct sym_frame *f, int max)
{
	const struct map *m = find_map(s, addr);
	uint64_t pc = caller && addr ? addr - 1 : addr; /* the call, not what follows it */
	struct module *mod = NULL;
	const char *name = NULL, *file = NULL, *dir = NULL;
	int k = 0, line = 0;

	if (max <= 0)
		return 0;
	memset(&f[0], 0, sizeof(f[0]));
	if (!s) { /* no snapshot: nothing known either way */
		snprintf(f[0].name, sizeof(f[0].name), "[unknown]+0x%llx",
			 (unsigned long long)addr);
		return 1;
	}
	if (!m || !m->exec) {
		/* no code (syms_is_code()): never shown as a place in some code */
		snprintf(f[0].name, sizeof(f[0].name), "[unknown]");
		return 1;
	}
	if (m->mod >= 0) {
		mod = &s->mods[m->mod];
		if (get_dwfl(s) && mod->dm) {
			Dwfl_Line *ln = dwfl_module_getsrc(mod->dm, pc);
			Dwarf_Addr bias = 0;
			Dwarf_Die *cu = dwfl_module_addrdie(mod->dm, pc, &bias);
			Dwarf_Attribute a;
			GElf_Off off;
			GElf_Sym sym;

			name = dwfl_module_addrinfo(mod->dm, pc, &off, &sym, NULL, NULL, NULL);
			if (ln)
				file = dwfl_lineinfo(ln, NULL, &line, NULL, NULL, NULL);
			k = inlines(cu, pc - bias, f, max - 1, &file, &line);
			dir = cu ? dwarf_formstring(dwarf_attr(cu, DW_AT_comp_dir, &a)) : NULL;
		}
	}
	if (!name && m->exec && (m->mod < 0 || !mod->dm))
		name = jit_name(s, addr);
	memset(&f[k], 0, sizeof(f[k]));
	if (name)
		snprintf(f[k].name, sizeof(f[k].name), "%s", name);
	else if (mod)
		snprintf(f[k].name, sizeof(f[k].name), "%s+0x%llx", mod->base,
			 (unsigned long long)(addr - m->start + m->off));
	else if (m->tag)
		snprintf(f[k].name, sizeof(f[k].name), "%s+0x%llx", m->tag,
			 (unsigned long long)(addr - m->start + m->off));
	else /* anonymous memory no JIT map names: perf's "//anon" */
		snprintf(f[k].name, sizeof(f[k].name), "//anon+0x%llx", (unsigned long long)addr);
	f[k].file = file;
	f[k].line = file ? line : 0;
	for (int i = 0; i <= k; i++)
		f[i].file = full_path(s, dir, f[i].file);
	return k + 1;
}

void syms_name(struct syms *s, uint64_t addr, char *buf, size_t len)
{
	struct sym_frame f[8];
	int n = syms_frames(s, addr, false, f, 8);

	snprintf(buf, len, "%s", f[n - 1].name);
}
