// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* USDT notes out of ELF objects, and the objects a process maps. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <glob.h>
#include <libelf.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tool_helpers.h"
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

/* PATH as an ELF object: 0, -ENOEXEC when it is not one, -errno. elf_close() undoes it. */
static int elf_open(const char *path, int *fd, Elf **elf)
{
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -EINVAL;
	/* a regular file only: libelf reading a FIFO or /dev/zero would hang or never end */
	*fd = open_regular(path, 0);
	if (*fd < 0)
		return *fd;
	*elf = elf_begin(*fd, ELF_C_READ, NULL);
	if (*elf && elf_kind(*elf) == ELF_K_ELF)
		return 0;
	if (*elf)
		elf_end(*elf);
	close(*fd);
	return -ENOEXEC;
}

static void elf_close(int fd, Elf *elf)
{
	elf_end(elf);
	close(fd);
}

int elf_sym_off(const char *path, const char *name, uint64_t *off)
{
	Elf_Scn *scn = NULL;
	uint64_t vaddr = 0;
	Elf *elf;
	int fd, err = elf_open(path, &fd, &elf);

	if (err)
		return err;
	/* .dynsym for a library, .symtab for an executable linked statically */
	while (!vaddr && (scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) ||
		    (sh.sh_type != SHT_DYNSYM && sh.sh_type != SHT_SYMTAB))
			continue;
		d = elf_getdata(scn, NULL);
		for (size_t i = 0; d && sh.sh_entsize && i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym sym;
			const char *n;

			if (!gelf_getsym(d, (int)i, &sym) || sym.st_shndx == SHN_UNDEF)
				continue;
			n = elf_strptr(elf, sh.sh_link, sym.st_name);
			if (n && !strcmp(n, name)) {
				vaddr = sym.st_value;
				break;
			}
		}
	}
	*off = addr_to_off(elf, vaddr);
	elf_close(fd, elf);
	return *off ? 0 : -ENOENT;
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
	err = elf_open(path, &fd, &elf);
	if (err)
		return err;
	if (elf_getshdrstrndx(elf, &shstrndx)) {
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
	elf_close(fd, elf);
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

/* What the dynamic linker reads of one object to find its dependencies. */
struct dyn_info {
	int cls, machine;
	char **needed;
	int n_needed;
	char *rpath, *runpath; /* NULL when absent */
};

static void dyn_free(struct dyn_info *d)
{
	free_strv(d->needed, d->n_needed);
	free(d->rpath);
	free(d->runpath);
	memset(d, 0, sizeof(*d));
}

/* 0, or -ENOEXEC (not ELF), -errno. A static program reads as no dependencies. */
static int dyn_read(const char *path, struct dyn_info *d)
{
	Elf_Scn *scn = NULL;
	GElf_Ehdr eh;
	int fd, err = 0, cap = 0;
	Elf *elf;

	memset(d, 0, sizeof(*d));
	err = elf_open(path, &fd, &elf);
	if (err)
		return err;
	if (!gelf_getehdr(elf, &eh)) {
		err = -ENOEXEC;
		goto out;
	}
	d->cls = gelf_getclass(elf);
	d->machine = eh.e_machine;
	while ((scn = elf_nextscn(elf, scn)) && !err) {
		Elf_Data *data;
		GElf_Shdr sh;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNAMIC || !sh.sh_entsize)
			continue;
		data = elf_getdata(scn, NULL);
		for (size_t i = 0; data && i < sh.sh_size / sh.sh_entsize; i++) {
			const char *s;
			GElf_Dyn dyn;

			if (!gelf_getdyn(data, (int)i, &dyn) || dyn.d_tag == DT_NULL)
				break;
			if (dyn.d_tag != DT_NEEDED && dyn.d_tag != DT_RPATH &&
			    dyn.d_tag != DT_RUNPATH)
				continue;
			s = elf_strptr(elf, sh.sh_link, dyn.d_un.d_val);
			if (!s)
				continue;
			if (dyn.d_tag == DT_RPATH && !d->rpath) {
				d->rpath = strdup(s);
			} else if (dyn.d_tag == DT_RUNPATH && !d->runpath) {
				d->runpath = strdup(s);
			} else if (dyn.d_tag == DT_NEEDED) {
				if (d->n_needed == cap) {
					char **nv = realloc(d->needed, (size_t)(cap ? 2 * cap : 8) *
									       sizeof(*nv));

					if (!nv) {
						err = -ENOMEM;
						break;
					}
					d->needed = nv;
					cap = cap ? 2 * cap : 8;
				}
				if (!(d->needed[d->n_needed] = strdup(s))) {
					err = -ENOMEM;
					break;
				}
				d->n_needed++;
			}
		}
	}
out:
	elf_close(fd, elf);
	if (err)
		dyn_free(d);
	return err;
}

/* The loader skips a file of another class or machine and goes on searching: so do we. */
static bool loadable(const char *path, const struct dyn_info *want)
{
	struct dyn_info d;
	bool ok;

	if (access(path, F_OK) || dyn_read(path, &d))
		return false;
	ok = d.cls == want->cls && d.machine == want->machine;
	dyn_free(&d);
	return ok;
}

/*
 * NAME in one directory of a search list, $ORIGIN expanded to the requesting object's directory.
 * Other dynamic string tokens ($LIB, $PLATFORM) depend on the loader: such a directory is skipped.
 */
static bool try_dir(const char *dir, size_t dl, const char *origin, const char *name,
		    const struct dyn_info *want, char *out, size_t len)
{
	char d[PATH_MAX], cand[PATH_MAX + 256];
	size_t k = 0;

	for (size_t i = 0; i < dl && k < sizeof(d) - 1; i++) {
		if (dir[i] != '$') {
			d[k++] = dir[i];
			continue;
		}
		if (!strncmp(dir + i, "$ORIGIN", 7) && dl - i >= 7)
			i += 6;
		else if (!strncmp(dir + i, "${ORIGIN}", 9) && dl - i >= 9)
			i += 8;
		else
			return false;
		k += (size_t)snprintf(d + k, sizeof(d) - k, "%s", origin);
		if (k >= sizeof(d) - 1)
			return false;
	}
	d[k] = 0;
	/* an empty entry is the current directory, as for LD_LIBRARY_PATH */
	snprintf(cand, sizeof(cand), "%s/%s", k ? d : ".", name);
	return loadable(cand, want) && realpath(cand, out) && strlen(out) < len;
}

static bool try_list(const char *list, const char *seps, const char *origin, const char *name,
		     const struct dyn_info *want, char *out, size_t len)
{
	while (list) {
		size_t dl = strcspn(list, seps);

		if (try_dir(list, dl, origin, name, want, out, len))
			return true;
		list = list[dl] ? list + dl + 1 : NULL;
	}
	return false;
}

/* /etc/ld.so.conf and what it includes: the directories ldconfig puts in the cache. */
static void ld_conf(const char *file, char *dirs, size_t len, int depth)
{
	char line[PATH_MAX];
	FILE *f;

	if (depth > 4 || !(f = fopen(file, "re")))
		return;
	while (fgets(line, sizeof(line), f)) {
		char *s = line + strspn(line, " \t"), *e;

		s[strcspn(s, "#\n")] = 0;
		for (e = s + strlen(s); e > s && (e[-1] == ' ' || e[-1] == '\t');)
			*--e = 0;
		if (!strncmp(s, "include", 7) && (s[7] == ' ' || s[7] == '\t')) {
			glob_t g;

			s += 8 + strspn(s + 8, " \t");
			if (!glob(s, 0, NULL, &g))
				for (size_t i = 0; i < g.gl_pathc; i++)
					ld_conf(g.gl_pathv[i], dirs, len, depth + 1);
			globfree(&g);
		} else if (*s == '/' && strlen(dirs) + strlen(s) + 2 < len) {
			strcat(dirs, ":");
			strcat(dirs, s);
		}
	}
	fclose(f);
}

/* The loader's last resort: the configured directories, then where this system's libc lives. */
static const char *system_dirs(void)
{
	static char dirs[8192];
	Dl_info info;

	if (dirs[0])
		return dirs + 1;
	ld_conf("/etc/ld.so.conf", dirs, sizeof(dirs), 0);
	/* the multiarch directory (/lib/x86_64-linux-gnu) without naming the architecture */
	if (dladdr((void *)fopen, &info) && info.dli_fname && strrchr(info.dli_fname, '/')) {
		const char *fn = info.dli_fname;
		int n = (int)(strrchr(fn, '/') - fn);

		if (strlen(dirs) + (size_t)n * 2 + 8 < sizeof(dirs))
			snprintf(dirs + strlen(dirs), sizeof(dirs) - strlen(dirs), ":%.*s:/usr%.*s",
				 n, fn, n, fn);
	}
	snprintf(dirs + strlen(dirs), sizeof(dirs) - strlen(dirs),
		 ":/lib64:/usr/lib64:/lib:/usr/lib");
	return dirs + 1;
}

/* Where NAME, needed by OBJ (at path obj_path), resolves, in the loader's order. */
static bool resolve(const char *name, const char *obj_path, const struct dyn_info *obj,
		    const struct dyn_info *exe, char *out, size_t len)
{
	char origin[PATH_MAX], *slash;
	const char *llp = getenv("LD_LIBRARY_PATH");

	snprintf(origin, sizeof(origin), "%s", obj_path);
	slash = strrchr(origin, '/');
	if (slash)
		*(slash == origin ? slash + 1 : slash) = 0;
	if (strchr(name, '/'))
		return loadable(name, obj) && realpath(name, out) && strlen(out) < len;
	if (!obj->runpath) {
		if (obj->rpath && try_list(obj->rpath, ":", origin, name, obj, out, len))
			return true;
		/* the executable's RPATH applies to every object without a RUNPATH */
		if (exe != obj && exe->rpath && !exe->runpath &&
		    try_list(exe->rpath, ":", "", name, obj, out, len))
			return true;
	}
	if (llp && *llp && try_list(llp, ":;", origin, name, obj, out, len))
		return true;
	if (obj->runpath && try_list(obj->runpath, ":", origin, name, obj, out, len))
		return true;
	return try_list(system_dirs(), ":", origin, name, obj, out, len);
}

#define MAX_OBJECTS 256

int elf_find_needed(const char *exe, const char *prefix, char *out, size_t len)
{
	char *queue[MAX_OBJECTS], path[PATH_MAX];
	struct dyn_info ed, d;
	int n = 0, err;

	if (!realpath(exe, path))
		return -errno;
	err = dyn_read(path, &ed);
	if (err)
		return err;
	queue[n++] = strdup(path);
	err = -ENOENT;
	for (int i = 0; i < n && err == -ENOENT; i++) {
		if (!queue[i] || (i && dyn_read(queue[i], &d)))
			continue;
		if (!i)
			d = ed;
		for (int k = 0; k < d.n_needed && err == -ENOENT; k++) {
			const char *base = strrchr(d.needed[k], '/');
			bool seen = false;

			base = base ? base + 1 : d.needed[k];
			if (!resolve(d.needed[k], queue[i], &d, &ed, path, sizeof(path)))
				continue;
			if (!strncmp(base, prefix, strlen(prefix))) {
				snprintf(out, len, "%s", path);
				err = 0;
				break;
			}
			for (int j = 0; j < n && !seen; j++)
				seen = queue[j] && !strcmp(queue[j], path);
			if (!seen && n < MAX_OBJECTS)
				queue[n++] = strdup(path);
		}
		if (i)
			dyn_free(&d);
	}
	/* the executable's names, RPATH and RUNPATH were borrowed by the first round */
	dyn_free(&ed);
	for (int i = 0; i < n; i++)
		free(queue[i]);
	return err;
}
