// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * mmsb-trace record -a: every process that maps the library, in spans mode. The one uprobe on
 * mmsb:span__register is attached to the file for every process (pid -1): the kernel raises the
 * semaphore in each process that maps it, those started later included, so every one of them
 * keeps its spans. Processes are found at the start by their maps, and later as soon as a thread
 * of theirs announces its block (the span_blocks map). Each is read as record -p reads one
 * (inproc.c); one that exits keeps the figures of its last read, a quarter of a second old at
 * most (what it did after is lost: it cannot be read once gone).
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "record.h"

struct proc {
	int pid;
	struct inproc *ip;
	bool gone;
	uint64_t gone_ns, serial; /* serve: when it was seen gone; which process of its pid */
	char comm[16];
	char cgroup[128];
};

struct procs {
	const char *lib;
	uint64_t sym_off; /* the registry's file offset in lib, the same in every process */
	int exclude;	  /* the main process of record -- CMD, read apart */
	bool tree_only;	  /* record -- CMD: processes come from its tree only */
	dev_t dev;
	ino_t ino;
	struct proc *v;
	int n;
	uint64_t serial; /* processes found so far */
};

struct procs *procs_new(const char *lib, uint64_t sym_off)
{
	struct procs *p = calloc(1, sizeof(*p));
	struct stat st;

	if (!p || stat(lib, &st)) {
		free(p);
		return NULL;
	}
	p->lib = lib;
	p->sym_off = sym_off;
	p->dev = st.st_dev;
	p->ino = st.st_ino;
	return p;
}

int procs_count(const struct procs *p)
{
	return p->n;
}

/* /proc/PID/NAME's first line into buf, the newline dropped; "" when it cannot be read. */
static void proc_line(int pid, const char *name, char *buf, size_t len)
{
	char path[64];
	FILE *f;

	buf[0] = 0;
	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	f = fopen(path, "re");
	if (!f)
		return;
	if (!fgets(buf, (int)len, f))
		buf[0] = 0;
	buf[strcspn(buf, "\n")] = 0;
	fclose(f);
}

/* PID's cgroup: the v2 path ("0::/system.slice/foo.service"), else the first hierarchy's line. */
static void cgroup_of(int pid, char *buf, size_t len)
{
	char path[64], line[128];
	FILE *f;

	buf[0] = 0;
	snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
	f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		if (!strncmp(line, "0::", 3)) {
			snprintf(buf, len, "%s", line + 3);
			break;
		}
		if (!buf[0])
			snprintf(buf, len, "%s", line);
	}
	if (f)
		fclose(f);
}

/* A process's row names: its comm and its cgroup. */
static void proc_names(struct proc *pr)
{
	proc_line(pr->pid, "comm", pr->comm, sizeof(pr->comm));
	cgroup_of(pr->pid, pr->cgroup, sizeof(pr->cgroup));
}

/* Whether PID maps the library's file (by device and inode, whatever path it was opened by). */
static bool maps_lib(const struct procs *p, int pid)
{
	char path[64], line[512];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned long long ino;
		unsigned int maj, min;

		found = sscanf(line, "%*x-%*x %*s %*x %x:%x %llu", &maj, &min, &ino) == 3 &&
			ino == p->ino && makedev(maj, min) == p->dev;
	}
	fclose(f);
	return found;
}

static struct proc *find(struct procs *p, int pid)
{
	/* an exited one's pid may be a new process's: that one is found again */
	for (int i = 0; i < p->n; i++)
		if (p->v[i].pid == pid && !p->v[i].gone)
			return &p->v[i];
	return NULL;
}

/* The I-th process forgotten (serve: exited and kept long enough, or its pid taken again). */
static void forget(struct procs *p, int i)
{
	inproc_free(p->v[i].ip);
	memmove(&p->v[i], &p->v[i + 1], (size_t)(p->n - i - 1) * sizeof(p->v[0]));
	p->n--;
}

/* A process to follow: its blocks read now (at the window's start) or counted from NS. */
static void add(struct procs *p, int pid, int blocks_fd, bool at_start, uint64_t ns)
{
	struct proc *v, *pr;

	/* an exited process of the same pid: a row per pid, the live one's */
	for (int i = 0; i < p->n; i++)
		if (p->v[i].pid == pid && p->v[i].gone)
			forget(p, i--);
	v = realloc(p->v, (size_t)(p->n + 1) * sizeof(*v));
	if (!v)
		return;
	p->v = v;
	pr = &v[p->n];
	memset(pr, 0, sizeof(*pr));
	pr->pid = pid;
	pr->serial = ++p->serial;
	pr->ip = inproc_new(pid, p->lib, p->sym_off);
	if (!pr->ip)
		return;
	proc_names(pr);
	inproc_poll(pr->ip, blocks_fd);
	if (at_start)
		inproc_start(pr->ip);
	else
		inproc_start_at(pr->ip, ns);
	p->n++;
}

void procs_scan(struct procs *p, int blocks_fd, uint64_t ns)
{
	struct dirent *de;
	DIR *d;

	/* record -- CMD: the tree tells of its processes; another that maps the library is not ours */
	if (p->tree_only)
		return;
	d = opendir("/proc");
	while (d && (de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		/* not ourselves: mmsb-trace links libmmsb too */
		if (*end || pid <= 0 || pid == getpid() || pid == p->exclude || find(p, (int)pid) ||
		    !maps_lib(p, (int)pid))
			continue;
		add(p, (int)pid, blocks_fd, true, ns);
	}
	if (d)
		closedir(d);
}

void procs_poll(struct procs *p, int blocks_fd, uint64_t ns)
{
	__u32 tid, next, *prev = NULL;

	while (!p->tree_only && !bpf_map_get_next_key(blocks_fd, prev, &next)) {
		char status[64], path[64];
		int tgid = 0;
		FILE *f;

		tid = next;
		prev = &tid;
		snprintf(path, sizeof(path), "/proc/%u/status", tid);
		f = fopen(path, "re");
		while (f && fgets(status, sizeof(status), f))
			if (sscanf(status, "Tgid: %d", &tgid) == 1)
				break;
		if (f)
			fclose(f);
		/* a tid of the map may be reused by now: the process must map the library */
		if (tgid > 0 && tgid != getpid() && tgid != p->exclude && !find(p, tgid) &&
		    maps_lib(p, tgid))
			add(p, tgid, blocks_fd, false, ns);
	}
	for (int i = 0; i < p->n; i++)
		if (!p->v[i].gone)
			inproc_poll(p->v[i].ip, blocks_fd);
}

void procs_exclude(struct procs *p, int pid)
{
	/*
	 * record -- CMD: the command is read apart, and its descendants are told of by the
	 * ptrace tree; a tid in the blocks map may since be another process's, never ours to add.
	 */
	p->exclude = pid;
	p->tree_only = true;
}

void procs_add_forked(struct procs *p, int pid, int blocks_fd)
{
	if (pid != p->exclude && !find(p, pid))
		add(p, pid, blocks_fd, true, mono_ns());
}

void procs_stop_at_interval(struct procs *p)
{
	for (int i = 0; i < p->n; i++)
		if (!p->v[i].gone && p->v[i].ip)
			inproc_stop_at_interval(p->v[i].ip);
}

void procs_refresh(struct procs *p)
{
	for (int i = 0; i < p->n; i++)
		if (!p->v[i].gone && p->v[i].ip && !inproc_refresh(p->v[i].ip)) {
			p->v[i].gone = true;
			p->v[i].gone_ns = mono_ns();
		}
}

/* The rows of one process's threads, summed into its own row. */
static void proc_row(struct report *rp, const struct proc *pr, int first)
{
	struct proc_row *r = &rp->procs[rp->n_procs++];

	memset(r, 0, sizeof(*r));
	r->pid = pr->pid;
	r->exited = pr->gone;
	snprintf(r->comm, sizeof(r->comm), "%s", pr->comm);
	snprintf(r->cgroup, sizeof(r->cgroup), "%s", pr->cgroup);
	for (int i = first; i < rp->n_threads; i++) {
		r->threads++;
		r->time_ns += rp->threads[i].time_ns;
		r->in_spans_ns += rp->threads[i].in_spans_ns;
		r->spans += rp->threads[i].spans;
	}
}

void procs_add_execd(struct procs *p, int pid, int blocks_fd)
{
	struct proc *pr = find(p, pid);

	/* forked, then exec'd: what it had is its parent's program's, gone with it */
	if (pr && pr->ip)
		inproc_start_at(pr->ip, mono_ns());
	else if (pid != p->exclude)
		add(p, pid, blocks_fd, false, mono_ns());
}

void procs_exited(struct procs *p, int pid)
{
	struct proc *pr = find(p, pid);

	if (!pr || pr->gone || !pr->ip)
		return;
	inproc_refresh(pr->ip);
	pr->gone = true;
	pr->gone_ns = mono_ns();
}

/* Room in RP for N more process rows, after those it has: 0 or -ENOMEM. */
static int rows_room(struct report *rp, int n)
{
	struct proc_row *rows = realloc(rp->procs, (size_t)(rp->n_procs + n + 1) * sizeof(*rows));

	if (!rows)
		return -ENOMEM;
	rp->procs = rows;
	return 0;
}

void procs_main_row(struct report *rp, int pid, int first)
{
	struct proc pr = { .pid = pid };

	if (rows_room(rp, 1))
		return;
	proc_names(&pr);
	proc_row(rp, &pr, first);
}

int procs_report(struct procs *p, struct report *rp, const struct inproc_maps *m, uint32_t mask)
{
	/* after the main process's row, when there is one */
	if (rows_room(rp, p->n))
		return -ENOMEM;
	for (int i = 0; i < p->n; i++) {
		int first = rp->n_threads;

		if (!p->v[i].ip || inproc_report(p->v[i].ip, rp, m, mask))
			continue;
		/* a process that never kept a span (never mapped the library) is no row */
		if (rp->n_threads > first)
			proc_row(rp, &p->v[i], first);
	}
	return 0;
}

int procs_interval(struct procs *p, struct report *iv, const struct inproc_maps *m, uint32_t mask,
		   int stats_fd)
{
	if (rows_room(iv, p->n))
		return -ENOMEM;
	for (int i = 0; i < p->n; i++) {
		int first = iv->n_threads;

		/* an exited process has nothing new: its last interval was its last */
		if (!p->v[i].ip || p->v[i].gone ||
		    inproc_interval(p->v[i].ip, iv, m, mask, stats_fd))
			continue;
		proc_row(iv, &p->v[i], first);
	}
	return 0;
}

int procs_each(struct procs *p, const struct inproc_maps *m, uint32_t mask, int stats_fd,
	       void (*fn)(void *ctx, uint64_t serial, const struct proc_row *row,
			  const struct report *rp),
	       void *ctx)
{
	struct inproc_maps mine = *m;

	mine.stats_fd = stats_fd;
	for (int i = 0; i < p->n; i++) {
		struct proc_row row;
		struct report r = { .o = &ro, .procs = &row };

		if (!p->v[i].ip)
			continue;
		map_empty(stats_fd, sizeof(struct span_key));
		if (!inproc_report(p->v[i].ip, &r, &mine, mask)) {
			proc_row(&r, &p->v[i], 0);
			report_sum_kinds(&r, stats_fd);
			fn(ctx, p->v[i].serial, &row, &r);
		}
		free(r.threads);
	}
	return 0;
}

void procs_prune(struct procs *p, const struct inproc_maps *m, uint64_t now_ns, uint64_t keep_ns,
		 int keep_max)
{
	int gone = 0;

	for (int i = p->n - 1; i >= 0; i--) {
		if (p->v[i].gone && now_ns - p->v[i].gone_ns > keep_ns) {
			inproc_forget(p->v[i].ip, m);
			forget(p, i);
		} else {
			gone += p->v[i].gone;
		}
	}
	/* past KEEP_MAX, the one that exited first goes */
	for (; gone > keep_max; gone--) {
		int old = -1;

		for (int i = 0; i < p->n; i++)
			if (p->v[i].gone && (old < 0 || p->v[i].gone_ns < p->v[old].gone_ns))
				old = i;
		inproc_forget(p->v[old].ip, m);
		forget(p, old);
	}
}

void procs_free(struct procs *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->n; i++)
		inproc_free(p->v[i].ip);
	free(p->v);
	free(p);
}
