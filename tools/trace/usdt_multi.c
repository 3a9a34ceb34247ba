// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * USDT call sites on one uprobe_multi link per program (usdt_multi.h says why). What libbpf 1.1's
 * bpf_program__attach_usdt() does per site, done here for a whole set of sites at once: the
 * argument specs parsed and written where the BPF side's bpf_usdt_arg() and bpf_usdt_cookie()
 * find them (the __bpf_usdt_specs map, indexed by the BPF cookie), the sites' file offsets and
 * their semaphores' handed to the kernel in one BPF_LINK_CREATE.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/bpf.h>
#ifdef __x86_64__
#include <linux/ptrace.h>
#endif

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "usdt_multi.h"

/*
 * The kernel's uapi (include/uapi/linux/bpf.h, 6.6 and later) defined locally: Debian 12's
 * linux-libc-dev (6.1) has neither the attach type nor the link's attributes. BPF_LINK_CREATE's
 * attributes for a uprobe_multi link, as the kernel lays out union bpf_attr's link_create: the
 * kernel reads the size we give and takes what it does not reach as zero.
 */
#define UM_BPF_TRACE_UPROBE_MULTI 48 /* enum bpf_attach_type */

struct um_link_create_attr {
	uint32_t prog_fd;
	uint32_t target_fd;
	uint32_t attach_type;
	uint32_t flags; /* link_create.flags: none for this link */
	/* link_create.uprobe_multi */
	uint64_t path;		  /* const char *: the binary */
	uint64_t offsets;	  /* const unsigned long *: file offsets of the sites */
	uint64_t ref_ctr_offsets; /* const unsigned long *: their semaphores' (0: none) */
	uint64_t cookies;	  /* const __u64 *: what bpf_get_attach_cookie() returns */
	uint32_t cnt;
	uint32_t um_flags; /* BPF_F_UPROBE_MULTI_RETURN (1) or 0 */
	uint32_t pid;	   /* 0: every process */
	uint32_t pad;
};

_Static_assert(offsetof(struct um_link_create_attr, path) == 16, "uapi: link_create union");
_Static_assert(offsetof(struct um_link_create_attr, cnt) == 48, "uapi: uprobe_multi.cnt");
_Static_assert(offsetof(struct um_link_create_attr, pid) == 56, "uapi: uprobe_multi.pid");
_Static_assert(sizeof(unsigned long) == sizeof(uint64_t), "the offsets arrays are u64 arrays");

/*
 * libbpf's struct usdt_spec, the same layout as usdt.bpf.h's struct __bpf_usdt_spec (the BPF side
 * reads what we write): 12 arguments at most (BPF_USDT_MAX_ARG_CNT), each where it lives.
 */
#define UM_MAX_ARGS 12

enum um_arg_type {
	UM_ARG_CONST,	  /* BPF_USDT_ARG_CONST: "4@$71" */
	UM_ARG_REG,	  /* BPF_USDT_ARG_REG: "-4@%eax" */
	UM_ARG_REG_DEREF, /* BPF_USDT_ARG_REG_DEREF: "-4@-20(%rbp)" */
};

struct um_arg_spec {
	uint64_t val_off;
	enum um_arg_type arg_type;
	short reg_off;
	_Bool arg_signed;
	char arg_bitshift;
};

struct um_spec {
	struct um_arg_spec args[UM_MAX_ARGS];
	uint64_t usdt_cookie;
	short arg_cnt;
};

_Static_assert(sizeof(struct um_spec) == 208, "struct __bpf_usdt_spec of libbpf 1.1");

/*
 * How many specs our links may use, above the map's declared size (BPF_USDT_MAX_SPEC_CNT, 256 by
 * default), which stays libbpf's: it hands out its ids from 0 upward and never past the map's
 * size, we hand out ours from the top down and never below the declared size, so the two never
 * meet however many attachments either makes. libmmsb has about 250 distinct (arguments, kind)
 * pairs; 208 bytes a spec.
 */
#define UM_SPECS 1024

struct usdt_multi_link {
	int fd;
};

static long sys_bpf(int cmd, void *attr, unsigned int size)
{
	return syscall(__NR_bpf, cmd, attr, size);
}

static int link_create(int prog_fd, const char *path, const uint64_t *offsets,
		       const uint64_t *ref_ctr_offsets, const uint64_t *cookies, uint32_t cnt,
		       int pid)
{
	struct um_link_create_attr a;
	long fd;

	memset(&a, 0, sizeof(a));
	a.prog_fd = (uint32_t)prog_fd;
	a.attach_type = UM_BPF_TRACE_UPROBE_MULTI;
	a.path = (uint64_t)(uintptr_t)path;
	a.offsets = (uint64_t)(uintptr_t)offsets;
	a.ref_ctr_offsets = (uint64_t)(uintptr_t)ref_ctr_offsets;
	a.cookies = (uint64_t)(uintptr_t)cookies;
	a.cnt = cnt;
	a.pid = (uint32_t)pid;
	fd = sys_bpf(BPF_LINK_CREATE, &a, sizeof(a));
	return fd < 0 ? -errno : (int)fd;
}

/*
 * libbpf's probe (features.c, probe_uprobe_multi_link), repeated: a link on "/" fails with EBADF
 * where the kernel has the link at all; then pid -1 fails with EINVAL only where the link filters
 * by process (the first kernels filtered by thread: a probe in another thread of the target would
 * not fire).
 */
static int probe_kernel(void)
{
	struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, lo,
		    .expected_attach_type = (enum bpf_attach_type)UM_BPF_TRACE_UPROBE_MULTI);
	uint64_t off = 0;
	int prog_fd, fd, ok = 0;

	prog_fd = bpf_prog_load(BPF_PROG_TYPE_KPROBE, NULL, "GPL", insns, 2, &lo);
	if (prog_fd < 0)
		return 0; /* EINVAL: an older kernel without the attach type */
	fd = link_create(prog_fd, "/", &off, NULL, NULL, 1, 0);
	if (fd == -EBADF) {
		fd = link_create(prog_fd, "/", &off, NULL, NULL, 1, -1);
		ok = fd == -EINVAL;
	}
	if (fd >= 0)
		close(fd);
	close(prog_fd);
	return ok;
}

int usdt_multi_supported(void)
{
	static int supported = -1;

	if (supported < 0) {
#ifdef __x86_64__
		const char *no = getenv("MMSB_TRACE_NO_UPROBE_MULTI");

		supported = no && *no && strcmp(no, "0") ? 0 : probe_kernel();
#else
		/* the argument specs are parsed for x86-64 only (parse_arg) */
		supported = 0;
#endif
	}
	return supported;
}

static struct bpf_map *specs_map(struct bpf_object *obj)
{
	/* usdt.bpf.h's map, in every object that includes it (libbpf finds it by name too) */
	return bpf_object__find_map_by_name(obj, "__bpf_usdt_specs");
}

int usdt_multi_prepare(struct bpf_object *obj, struct bpf_program *const *progs, int n)
{
	struct bpf_map *m = specs_map(obj);
	int err;

	if (!m || bpf_map__value_size(m) != sizeof(struct um_spec))
		return -ENOENT; /* not libbpf 1.1's usdt.bpf.h: we would write what it cannot read */
	for (int i = 0; i < n; i++) {
		err = bpf_program__set_expected_attach_type(
			progs[i], (enum bpf_attach_type)UM_BPF_TRACE_UPROBE_MULTI);
		if (err)
			return err;
	}
	return bpf_map__set_max_entries(m, bpf_map__max_entries(m) + UM_SPECS);
}

int usdt_multi_prepared(const struct bpf_program *prog)
{
	return bpf_program__expected_attach_type(prog) ==
	       (enum bpf_attach_type)UM_BPF_TRACE_UPROBE_MULTI;
}

int usdt_multi_specs_init(struct usdt_multi_specs *sp, struct bpf_object *obj)
{
	struct bpf_map *m = specs_map(obj);
	int max = m ? (int)bpf_map__max_entries(m) : 0;

	if (!m || max <= UM_SPECS || bpf_map__fd(m) < 0)
		return -ENOENT;
	sp->map_fd = bpf_map__fd(m);
	sp->next = max - 1;
	sp->floor = max - UM_SPECS;
	return 0;
}

#ifdef __x86_64__
/* libbpf 1.1's usdt.c, calc_pt_regs_off(): a register's offset in struct pt_regs */
static int reg_off(const char *name)
{
	static const struct {
		const char *names[4];
		size_t off;
	} map[] = {
		{ { "rip", "eip", "", "" }, offsetof(struct pt_regs, rip) },
		{ { "rax", "eax", "ax", "al" }, offsetof(struct pt_regs, rax) },
		{ { "rbx", "ebx", "bx", "bl" }, offsetof(struct pt_regs, rbx) },
		{ { "rcx", "ecx", "cx", "cl" }, offsetof(struct pt_regs, rcx) },
		{ { "rdx", "edx", "dx", "dl" }, offsetof(struct pt_regs, rdx) },
		{ { "rsi", "esi", "si", "sil" }, offsetof(struct pt_regs, rsi) },
		{ { "rdi", "edi", "di", "dil" }, offsetof(struct pt_regs, rdi) },
		{ { "rbp", "ebp", "bp", "bpl" }, offsetof(struct pt_regs, rbp) },
		{ { "rsp", "esp", "sp", "spl" }, offsetof(struct pt_regs, rsp) },
		{ { "r8", "r8d", "r8w", "r8b" }, offsetof(struct pt_regs, r8) },
		{ { "r9", "r9d", "r9w", "r9b" }, offsetof(struct pt_regs, r9) },
		{ { "r10", "r10d", "r10w", "r10b" }, offsetof(struct pt_regs, r10) },
		{ { "r11", "r11d", "r11w", "r11b" }, offsetof(struct pt_regs, r11) },
		{ { "r12", "r12d", "r12w", "r12b" }, offsetof(struct pt_regs, r12) },
		{ { "r13", "r13d", "r13w", "r13b" }, offsetof(struct pt_regs, r13) },
		{ { "r14", "r14d", "r14w", "r14b" }, offsetof(struct pt_regs, r14) },
		{ { "r15", "r15d", "r15w", "r15b" }, offsetof(struct pt_regs, r15) },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		for (int j = 0; j < 4; j++)
			if (!strcmp(name, map[i].names[j]))
				return (int)map[i].off;
	return -ENOENT;
}

/*
 * libbpf 1.1's usdt.c, parse_usdt_arg() for x86-64, format for format: the same strings accepted
 * and refused (a "sym(%rip)" operand is refused, as libbpf 1.1 does), the same spec written. The
 * length of ARG's text consumed, or -errno.
 */
static int parse_arg(const char *arg, struct um_arg_spec *a)
{
	char reg[16];
	int sz, len, off;
	long val;

	if (sscanf(arg, " %d @ %ld ( %%%15[^)] ) %n", &sz, &val, reg, &len) == 3) {
		a->arg_type = UM_ARG_REG_DEREF; /* -4@-20(%rbp) */
		a->val_off = (uint64_t)val;
	} else if (sscanf(arg, " %d @ ( %%%15[^)] ) %n", &sz, reg, &len) == 2) {
		a->arg_type = UM_ARG_REG_DEREF; /* 8@(%rsp) */
		a->val_off = 0;
	} else if (sscanf(arg, " %d @ %%%15s %n", &sz, reg, &len) == 2) {
		a->arg_type = UM_ARG_REG; /* -4@%eax */
		a->val_off = 0;
	} else if (sscanf(arg, " %d @ $%ld %n", &sz, &val, &len) == 2) {
		a->arg_type = UM_ARG_CONST; /* 4@$71 */
		a->val_off = (uint64_t)val;
		reg[0] = 0;
	} else {
		return -EINVAL;
	}
	if (a->arg_type != UM_ARG_CONST) {
		off = reg_off(reg);
		if (off < 0)
			return off;
		a->reg_off = (short)off;
	}
	a->arg_signed = sz < 0;
	if (sz < 0)
		sz = -sz;
	if (sz != 1 && sz != 2 && sz != 4 && sz != 8)
		return -EINVAL;
	a->arg_bitshift = (char)(64 - sz * 8);
	return len;
}
#else
static int parse_arg(const char *arg, struct um_arg_spec *a)
{
	(void)arg;
	(void)a;
	return -EOPNOTSUPP;
}
#endif

/* libbpf 1.1's parse_usdt_spec(): every argument of the note's string, in order. */
static int parse_spec(const char *args, uint64_t usdt_cookie, struct um_spec *sp)
{
	const char *s = args;

	memset(sp, 0, sizeof(*sp)); /* padding too: equal specs compare equal (memcmp below) */
	sp->usdt_cookie = usdt_cookie;
	while (s[0]) {
		int len;

		if (sp->arg_cnt >= UM_MAX_ARGS)
			return -E2BIG;
		len = parse_arg(s, &sp->args[sp->arg_cnt]);
		if (len < 0)
			return len;
		s += len;
		sp->arg_cnt++;
	}
	return 0;
}

struct usdt_multi_link *usdt_multi_attach(struct bpf_program *prog, pid_t pid, const char *binary,
					  const struct usdt_multi_site *sites, int n,
					  struct usdt_multi_specs *sp)
{
	struct um_spec *specs = calloc((size_t)n + 1, sizeof(*specs));
	uint64_t *offs = calloc((size_t)n + 1, sizeof(*offs));
	uint64_t *refs = calloc((size_t)n + 1, sizeof(*refs));
	uint64_t *cookies = calloc((size_t)n + 1, sizeof(*cookies));
	int *ids = calloc((size_t)n + 1, sizeof(*ids));
	struct usdt_multi_link *l = NULL;
	int err = 0, n_specs = 0, next = sp->next, fd;

	if (!specs || !offs || !refs || !cookies || !ids) {
		err = -ENOMEM;
		goto out;
	}
	if (n <= 0) {
		err = -EINVAL;
		goto out;
	}
	for (int i = 0; i < n && !err; i++) {
		const struct usdt_note *no = sites[i].note;
		int k;

		err = parse_spec(no->args, sites[i].usdt_cookie, &specs[n_specs]);
		if (err)
			break;
		/* one spec per distinct (arguments, cookie): api__entry's 98 sites, 98 constants */
		for (k = 0; k < n_specs && memcmp(&specs[k], &specs[n_specs], sizeof(*specs)); k++)
			;
		if (k == n_specs) {
			if (next < sp->floor) {
				err = -E2BIG;
				break;
			}
			ids[n_specs++] = next--;
			err = bpf_map_update_elem(sp->map_fd, &ids[k], &specs[k], BPF_ANY) ?
				      -errno :
				      0;
		}
		offs[i] = no->pc_off;
		refs[i] = no->sema ? no->sema_off : 0;
		cookies[i] = (uint64_t)ids[k]; /* the spec id: bpf_usdt_arg() looks it up by it */
	}
	if (err)
		goto out;
	/* libbpf's convention: -1 every process, 0 this one */
	fd = link_create(bpf_program__fd(prog), binary, offs, refs, cookies, (uint32_t)n,
			 pid < 0 ? 0 :
			 pid	 ? pid :
				   getpid());
	if (fd < 0) {
		err = fd;
		goto out;
	}
	l = malloc(sizeof(*l));
	if (!l) {
		close(fd);
		err = -ENOMEM;
		goto out;
	}
	l->fd = fd;
	sp->next = next; /* the ids are the link's until the object goes */
out:
	free(specs);
	free(offs);
	free(refs);
	free(cookies);
	free(ids);
	if (!l)
		errno = -err;
	return l;
}

void usdt_multi_link_destroy(struct usdt_multi_link *l)
{
	if (!l)
		return;
	/* the last reference: the kernel takes every uprobe of the link out, then syncs once */
	close(l->fd);
	free(l);
}
