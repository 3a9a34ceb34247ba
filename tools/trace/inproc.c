// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * mmsb-trace record's default mode: the target's threads keep their spans themselves
 * (mmsb/span_abi.h, lib/spans.c) while our program sits on mmsb:span__register, and we read them
 * from its memory (process_vm_readv) at the window's start and end. The figures are the
 * difference of the two reads, clipped to the window: a span open at the start counts in the
 * window it ends in, with only its time inside the window; one open at the end is counted as
 * open, with its time so far. The kernel's part (bpf/mmsb_trace.bpf.c: off-CPU time per span,
 * timer samples with stacks) is read from the maps here too.
 */
#include <errno.h>
#include <limits.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <signal.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <json-c/json.h>
#include <mmsb/mmsb.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "record.h"
#include "syms_helpers.h"
#include "usdt_helpers.h"

/* A block as read: the copy, where it lives, when it was read. */
struct blk {
	uint64_t addr, read_ns, read_u; /* read at: CLOCK_MONOTONIC, and in the span clock */
	struct mmsb_span_thread *t;
};

struct snap {
	struct blk *b;
	int n;
	uint64_t ns; /* the read's instant: before the first block's */
};

struct inproc {
	int pid;
	const char *lib;
	uint64_t reg;	   /* mmsb_span_registry in the target, 0 until found */
	uint64_t sym_off;  /* its file offset in lib */
	struct snap s[2];  /* the window's start and end */
	struct snap iv[2]; /* -i: the previous interval's end (the window's start at first), now */
	/* -i: the off-CPU map's sums at the previous interval's end, per kind and per thread */
	uint64_t iv_off[SPAN_KINDS], iv_wait[SPAN_KINDS];
	struct thread_row *iv_rows;
	int iv_n_rows;
	uint64_t torn;	/* blocks read while their thread wrote, after retries */
	uint32_t clock; /* the registry's: MMSB_SPAN_CLOCK_* */
	/* the TSC beside CLOCK_MONOTONIC at the start and the window's end: its rate */
	uint64_t tsc0, ns0;
	double ns_per_unit;
};

static uint64_t tsc(void)
{
#if defined(__x86_64__)
	return __rdtsc();
#else
	return 0;
#endif
}

/*
 * The TSC and CLOCK_MONOTONIC read together: of a few tries, the one whose TSC reads around the
 * clock's are closest. The TSC's rate is measured from two such pairs, and a preemption between
 * the two reads of one (a millisecond on a busy machine, over a window of a tenth of a second)
 * would put its error, 1 %, into every span.
 */
static void clock_pair(uint64_t *t, uint64_t *ns)
{
	uint64_t best = 0;

	for (int i = 0; i < 5; i++) {
		uint64_t a = tsc(), n = mono_ns(), b = tsc();

		if (!i || b - a < best) {
			best = b - a;
			*t = a + (b - a) / 2;
			*ns = n;
		}
	}
}

/* Now in the target's span clock. */
static uint64_t clock_now(const struct inproc *ip)
{
	return ip->clock == MMSB_SPAN_CLOCK_TSC ? tsc() : mono_ns();
}

static uint64_t u2ns(const struct inproc *ip, uint64_t u)
{
	return (uint64_t)((double)u * ip->ns_per_unit + 0.5);
}

/* Where the file offset OFF of LIB is mapped in PID, by the file's device and inode: 0 if not. */
static uint64_t mapped_at(int pid, const char *lib, uint64_t off)
{
	char path[64], line[PATH_MAX + 128];
	uint64_t addr = 0;
	struct stat st;
	FILE *f;

	if (stat(lib, &st))
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (!addr && fgets(line, sizeof(line), f)) {
		unsigned long long lo, hi, moff, ino;
		unsigned int maj, min;

		if (sscanf(line, "%llx-%llx %*s %llx %x:%x %llu", &lo, &hi, &moff, &maj, &min,
			   &ino) != 6 ||
		    ino != st.st_ino || makedev(maj, min) != st.st_dev)
			continue;
		if (off >= moff && off < moff + (hi - lo))
			addr = lo + (off - moff);
	}
	fclose(f);
	return addr;
}

static int peek(int pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec l = { buf, len }, r = { (void *)(uintptr_t)addr, len };

	return process_vm_readv(pid, &l, 1, &r, 1, 0) == (ssize_t)len ? 0 : -1;
}

int inproc_registry_off(const char *lib, uint64_t *off)
{
	return elf_sym_off(lib, "mmsb_span_registry", off);
}

struct inproc *inproc_new(int pid, const char *lib, uint64_t sym_off)
{
	struct inproc *ip = calloc(1, sizeof(*ip));

	if (!ip)
		return NULL;
	ip->pid = pid;
	ip->lib = lib;
	ip->sym_off = sym_off;
	ip->ns_per_unit = 1;
	clock_pair(&ip->tsc0, &ip->ns0);
	return ip;
}

/* The registry, once the target has mapped the library; true when found and valid. */
static bool find_registry(struct inproc *ip)
{
	struct mmsb_span_registry r;
	uint64_t a;

	if (ip->reg)
		return true;
	a = mapped_at(ip->pid, ip->lib, ip->sym_off);
	if (!a || peek(ip->pid, a, &r, sizeof(r)) || r.magic != MMSB_SPAN_MAGIC ||
	    r.version != MMSB_SPAN_VERSION || r.block_size != sizeof(struct mmsb_span_thread))
		return false;
	ip->reg = a;
	ip->clock = r.clock;
	return true;
}

/*
 * One block, consistent: its seq read before and after the copy, even and the same. A thread
 * that never stops writing gets three tries, then the copy is kept as it is (counted as torn:
 * its node figures may be one span apart from each other).
 */
static int read_block(struct inproc *ip, uint64_t addr, struct blk *b)
{
	const size_t head = offsetof(struct mmsb_span_thread, nodes);
	struct mmsb_span_thread *t = malloc(sizeof(*t));
	uint32_t seq;

	if (!t)
		return -ENOMEM;
	for (int tries = 0;; tries++) {
		b->read_ns = mono_ns();
		b->read_u = clock_now(ip);
		if (peek(ip->pid, addr, t, head) || t->magic != MMSB_SPAN_MAGIC ||
		    t->n_nodes > MMSB_SPAN_NODES) {
			free(t);
			return -EIO;
		}
		if (peek(ip->pid, addr, t, head + t->n_nodes * sizeof(t->nodes[0])) ||
		    peek(ip->pid, addr + offsetof(struct mmsb_span_thread, seq), &seq,
			 sizeof(seq))) {
			free(t);
			return -EIO;
		}
		if ((seq == t->seq && !(seq & 1)) || tries == 2) {
			ip->torn += seq != t->seq || (seq & 1);
			break;
		}
	}
	if (t->depth > MMSB_SPAN_DEPTH)
		t->depth = 0; /* torn mid-write: no stack rather than a wrong one */
	b->addr = addr;
	b->t = t;
	return 0;
}

static void snap_free(struct snap *s)
{
	for (int i = 0; i < s->n; i++)
		free(s->b[i].t);
	free(s->b);
	memset(s, 0, sizeof(*s));
}

/* Every block, newest first, into S. */
static void snapshot(struct inproc *ip, struct snap *s)
{
	struct mmsb_span_registry r;
	uint64_t a;

	snap_free(s);
	s->ns = mono_ns();
	if (!find_registry(ip) || peek(ip->pid, ip->reg, &r, sizeof(r)))
		return;
	ip->clock = r.clock;
	for (a = r.head; a && s->n < 65536;) {
		struct blk *nb = realloc(s->b, (size_t)(s->n + 1) * sizeof(*nb));

		if (!nb)
			return;
		s->b = nb;
		if (read_block(ip, a, &s->b[s->n]))
			return;
		a = s->b[s->n++].t->next;
	}
}

void inproc_start(struct inproc *ip)
{
	snapshot(ip, &ip->s[0]);
}

/* The TSC's rate over everything since we started: a third of a second at least, attached. */
static void rate_update(struct inproc *ip)
{
	uint64_t t, ns;

	clock_pair(&t, &ns);
	if (ip->clock == MMSB_SPAN_CLOCK_TSC && t > ip->tsc0)
		ip->ns_per_unit = (double)(ns - ip->ns0) / (double)(t - ip->tsc0);
}

/* A process found after the window opened: every span it keeps is the window's. */
void inproc_start_at(struct inproc *ip, uint64_t ns)
{
	snap_free(&ip->s[0]);
	ip->s[0].ns = ns;
}

/*
 * -a: the blocks re-read into the end's copy while the process lives; false once it is gone
 * (or unreadable), its last copy kept: an exited process keeps its last figures.
 */
bool inproc_refresh(struct inproc *ip)
{
	struct snap t = { 0 };

	if (kill(ip->pid, 0) && errno == ESRCH)
		return false;
	snapshot(ip, &t);
	if (!t.ns || (!t.n && ip->s[1].n)) {
		snap_free(&t);
		return false;
	}
	snap_free(&ip->s[1]);
	ip->s[1] = t;
	rate_update(ip);
	return true;
}

/* -c ended the window: its end is the last interval's, so the intervals add up to the window. */
void inproc_stop_at_interval(struct inproc *ip)
{
	if (!ip->iv[0].ns) {
		inproc_stop(ip);
		return;
	}
	snap_free(&ip->s[1]);
	ip->s[1] = ip->iv[0];
	memset(&ip->iv[0], 0, sizeof(ip->iv[0]));
}

void inproc_stop(struct inproc *ip)
{
	snapshot(ip, &ip->s[1]);
	rate_update(ip);
}

/* Blocks made before we came (or not yet announced) into the programs' tid -> block map. */
void inproc_poll(struct inproc *ip, int blocks_fd)
{
	struct mmsb_span_registry r;
	uint64_t a;
	int n = 0;

	if (!find_registry(ip) || peek(ip->pid, ip->reg, &r, sizeof(r)))
		return;
	for (a = r.head; a && n++ < 65536;) {
		struct {
			uint64_t magic;
			uint32_t seq, depth;
			int32_t tid;
			uint32_t overflow;
			uint64_t next;
		} h;
		_Static_assert(offsetof(struct mmsb_span_thread, next) == 24, "block header");
		__u32 tid;

		if (peek(ip->pid, a, &h, sizeof(h)) || h.magic != MMSB_SPAN_MAGIC)
			return;
		tid = (__u32)h.tid;
		if (tid)
			bpf_map_update_elem(blocks_fd, &tid, &a, BPF_ANY);
		a = h.next;
	}
}

static const struct blk *find_blk(const struct snap *s, uint64_t addr)
{
	for (int i = 0; i < s->n; i++)
		if (s->b[i].addr == addr)
			return &s->b[i];
	return NULL;
}

/* The chain of kinds around NODE, as span_key.chain has it: parent in the low 5 bits. */
static uint64_t chain_of(const struct mmsb_span_thread *t, uint16_t node)
{
	uint64_t chain = 0;
	int shift = 0;

	for (uint16_t p = t->nodes[node].parent; p && p < t->n_nodes && shift < 60; shift += 5) {
		chain |= (uint64_t)(t->nodes[p].kind + 1) << shift;
		p = t->nodes[p].parent;
	}
	return chain;
}

/*
 * The kinds of NODE and the spans around it, outermost first (NODE's own last), as the folded
 * samples and the profile name them: how many, or -1 when THREAD's block is not in the window's
 * end (a thread we never read) or there is no node (a sample outside every span).
 */
int inproc_node_kinds(const struct inproc *ip, int blocks_fd, uint32_t tid, uint32_t node,
		      int *kinds, int max)
{
	const struct mmsb_span_thread *t;
	const struct blk *b;
	__u64 addr;
	int n = 0;

	if (!node || bpf_map_lookup_elem(blocks_fd, &tid, &addr) ||
	    !(b = find_blk(&ip->s[1], addr)))
		return -1;
	t = b->t;
	for (uint32_t p = node; p && p < t->n_nodes && n < max; p = t->nodes[p].parent)
		kinds[n++] = t->nodes[p].kind;
	for (int i = 0; i < n / 2; i++) {
		int k = kinds[i];

		kinds[i] = kinds[n - 1 - i];
		kinds[n - 1 - i] = k;
	}
	return n;
}

/* Add a node's figures of the window into span_stats. */
static void stats_add(const struct inproc *ip, int fd, const struct mmsb_span_thread *t,
		      uint16_t node, const struct mmsb_span_node *d)
{
	struct span_key key = { .kind = t->nodes[node].kind,
				.stack_id = -1,
				.chain = chain_of(t, node) };
	static struct span_stats v;

	memset(&v, 0, sizeof(v));
	bpf_map_lookup_elem(fd, &key, &v);
	v.count += d->count;
	v.total_ns += u2ns(ip, d->total);
	v.self_ns += u2ns(ip, d->self);
	if (u2ns(ip, d->max) > v.max_ns)
		v.max_ns = u2ns(ip, d->max);
	for (uint32_t i = 0; i < MMSB_HIST_SLOTS; i++) {
		uint64_t lo = mmsb_hist_slot_low(i);
		uint64_t hi = i + 1 < MMSB_HIST_SLOTS ? mmsb_hist_slot_low(i + 1) : 2 * lo;
		uint32_t slot = i;

		if (!d->hist[i])
			continue;
		/* a slot of ticks into the slot of ns that holds its middle */
		if (ip->ns_per_unit != 1)
			slot = mmsb_hist_slot(u2ns(ip, (lo + hi) / 2));
		/* no minimum is kept: the lowest slot's bound stands for it */
		if (!v.min_ns || mmsb_hist_slot_low(slot) < v.min_ns)
			v.min_ns = mmsb_hist_slot_low(slot);
		v.hist[slot] += d->hist[i];
	}
	bpf_map_update_elem(fd, &key, &v, BPF_ANY);
}

static void comm_of(int pid, int tid, char *buf, size_t len)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", pid, tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n > 0) {
		buf[n] = 0;
		buf[strcspn(buf, "\n")] = 0;
	}
}

/*
 * One block's window: the end's figures minus the start's, the time before the window taken
 * off the spans that were open at the start, the spans open at the end counted as open. Its row
 * in rp->threads.
 */
static void block_window(struct inproc *ip, const struct snap *base, const struct blk *e,
			 int stats_fd, uint32_t mask, struct report *rp)
{
	const struct blk *b = find_blk(base, e->addr);
	const struct mmsb_span_thread *t1 = e->t, *t0 = b ? b->t : NULL;
	uint64_t t0_ns = b ? b->read_ns : base->ns, t1_ns = e->read_ns;
	/* the same instants in the span clock: a block first read at the end began in the window */
	uint64_t t0_u = b ? b->read_u : 0, t1_u = e->read_u;
	static struct mmsb_span_node d[MMSB_SPAN_NODES];
	struct thread_row *row = &rp->threads[rp->n_threads++];
	uint32_t kept = 0; /* frames of the start's stack still open at the end */

	memset(d, 0, sizeof(d));
	memset(row, 0, sizeof(*row)); /* rp->threads grows by realloc() */
	for (uint32_t n = 1; n < t1->n_nodes; n++) {
		const struct mmsb_span_node *a = &t1->nodes[n];
		const struct mmsb_span_node *z = t0 && n < t0->n_nodes ? &t0->nodes[n] : NULL;

		d[n].count = a->count - (z ? z->count : 0);
		d[n].total = a->total - (z ? z->total : 0);
		d[n].self = a->self - (z ? z->self : 0);
		d[n].max = a->max; /* the largest since the block was made */
		for (int i = 0; i < MMSB_HIST_SLOTS; i++)
			d[n].hist[i] = a->hist[i] - (z ? z->hist[i] : 0);
	}
	/* the start's open spans: those still open at the end are the end's to count */
	while (t0 && kept < t0->depth && kept < t1->depth &&
	       t0->stack[kept].start == t1->stack[kept].start &&
	       t0->stack[kept].kind == t1->stack[kept].kind)
		kept++;
	for (uint32_t i = kept; t0 && i < t0->depth; i++) {
		const struct mmsb_span_frame *f = &t0->stack[i];
		uint64_t before = t0_u > f->start ? t0_u - f->start : 0;
		uint64_t inner = i + 1 < t0->depth && t0_u > t0->stack[i + 1].start ?
					 t0_u - t0->stack[i + 1].start :
					 0;
		uint64_t self_before = before > f->child + inner ? before - f->child - inner : 0;

		if (!f->node || f->node >= t1->n_nodes)
			continue;
		d[f->node].total -= before < d[f->node].total ? before : d[f->node].total;
		d[f->node].self -= self_before < d[f->node].self ? self_before : d[f->node].self;
	}
	/* the owner at the start, and every thread that took the block after */
	row->owners = t1->owners - (t0 ? t0->owners : 0) + (t0 && t0->tid);
	/*
	 * Free for the whole window (given back before it, taken by nobody since): no thread's
	 * row. Its last_tid may be a live thread's, in another block now.
	 */
	if (!row->owners) {
		rp->n_threads--;
		return;
	}
	/* a block given back keeps its thread's tid and name (tid is 0 until another takes it) */
	row->tid = t1->last_tid;
	snprintf(row->comm, sizeof(row->comm), "%.15s", t1->comm);
	if (t1->tid)
		comm_of(ip->pid, t1->tid, row->comm, sizeof(row->comm));
	/* the thread's time: the window, from when it took the block if that was later */
	row->time_ns = t1_ns - (t1->owner_since_ns > t0_ns && t1->owner_since_ns < t1_ns ?
					t1->owner_since_ns :
					t0_ns);
	for (uint32_t n = 1; n < t1->n_nodes; n++) {
		if (!d[n].count && !d[n].total)
			continue;
		/* the thread's time counts every span; the report, the kinds asked for (-k) */
		if (!t1->nodes[n].parent)
			row->in_spans_ns += u2ns(ip, d[n].total);
		if (!(mask & (1u << t1->nodes[n].kind)))
			continue;
		stats_add(ip, stats_fd, t1, (uint16_t)n, &d[n]);
		row->spans += d[n].count;
	}
	/* open at the end: their time in the window so far */
	for (uint32_t i = 0; i < t1->depth; i++) {
		const struct mmsb_span_frame *f = &t1->stack[i];
		uint64_t from = f->start > t0_u ? f->start : t0_u;
		uint64_t so_far = u2ns(ip, t1_u > from ? t1_u - from : 0);

		if (f->kind >= SPAN_KINDS) {
			rp->open_bad++;
			continue;
		}
		if (!i)
			row->in_spans_ns += so_far;
		if (!(mask & (1u << f->kind)))
			continue;
		rp->open_n[f->kind]++;
		rp->open_ns[f->kind] += so_far;
	}
	rp->open_deep += t1->overflow;
	rp->span_deep += t1->deep - (t0 ? t0->deep : 0);
	rp->span_lost += t1->lost - (t0 ? t0->lost : 0);
	rp->thread_ns += row->time_ns;
}

static int offcpu_row_cmp(const void *a, const void *b)
{
	const struct offcpu_row *x = a, *y = b;

	return x->k.tid < y->k.tid ? -1 : x->k.tid > y->k.tid;
}

/*
 * Every entry of the off-CPU map whose thread has a block in the programs' tid -> block map, with
 * that block's address, sorted by tid. Read once for all the processes of a pass: each process
 * walking the map for its own threads made a pass of serve's export (every second), -a's report
 * or an interval cost three syscalls an entry a process.
 */
int inproc_offcpu_read(struct inproc_maps *m)
{
	struct span_tid_node k, next, *prev = NULL;
	struct offcpu_row *v = NULL, *nv;
	size_t n = 0, cap = 0;

	inproc_offcpu_free(m);
	while (!bpf_map_get_next_key(m->offcpu_fd, prev, &next)) {
		k = next;
		prev = &k;
		if (n == cap) {
			nv = realloc(v, (cap = cap ? 2 * cap : 256) * sizeof(*v));
			if (!nv) {
				free(v);
				return -ENOMEM;
			}
			v = nv;
		}
		v[n].k = k;
		if (!bpf_map_lookup_elem(m->offcpu_fd, &k, &v[n].ns) &&
		    !bpf_map_lookup_elem(m->blocks_fd, &k.tid, &v[n].blk))
			n++;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), offcpu_row_cmp);
	m->offcpu = v;
	m->n_offcpu = n;
	return 0;
}

void inproc_offcpu_free(struct inproc_maps *m)
{
	free(m->offcpu);
	m->offcpu = NULL;
	m->n_offcpu = 0;
}

/* The off-CPU sums so far (M's, as read), added per kind (of S's blocks) and per thread row. */
static void offcpu_sums(const struct snap *s, const struct inproc_maps *m, uint64_t *off,
			uint64_t *wait, struct thread_row *rows, int n_rows)
{
	for (int i = 0; i < s->n; i++) {
		const struct blk *b = &s->b[i];
		uint32_t tid = (uint32_t)b->t->last_tid;
		size_t lo = 0, hi = m->n_offcpu;

		/* a block read twice (a list that loops) is charged once */
		if (find_blk(s, b->addr) != b)
			continue;
		/* the first row of the thread the block last had */
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (m->offcpu[mid].k.tid < tid)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (; lo < m->n_offcpu && m->offcpu[lo].k.tid == tid; lo++) {
			const struct offcpu_row *o = &m->offcpu[lo];

			/* the tid's figures in another block (an earlier one, another process's) */
			if (o->blk != b->addr || o->k.node >= b->t->n_nodes)
				continue;
			off[b->t->nodes[o->k.node].kind] += o->ns.blocked;
			wait[b->t->nodes[o->k.node].kind] += o->ns.waiting;
			for (int r = 0; r < n_rows; r++) {
				if (rows[r].tid != (int)tid)
					continue;
				rows[r].off_ns += o->ns.blocked;
				rows[r].wait_ns += o->ns.waiting;
			}
		}
	}
}

/*
 * Threads still off a CPU at the window's end have not come back to charge it: charged here, up
 * to the end, once for every process.
 */
void inproc_charge_pending(const struct inproc_maps *m, uint64_t end_ns)
{
	__u32 tid, tnext, *tprev = NULL;
	struct span_tid_node k;
	struct switched_out so;
	struct offcpu_ns v;

	while (!bpf_map_get_next_key(m->offcpu_start_fd, tprev, &tnext)) {
		tid = tnext;
		tprev = &tid;
		if (bpf_map_lookup_elem(m->offcpu_start_fd, &tid, &so) || so.ts >= end_ns)
			continue;
		k = (struct span_tid_node){ .tid = tid, .node = so.node };
		memset(&v, 0, sizeof(v));
		bpf_map_lookup_elem(m->offcpu_fd, &k, &v);
		*(so.blocked ? &v.blocked : &v.waiting) += end_ns - so.ts;
		bpf_map_update_elem(m->offcpu_fd, &k, &v, BPF_ANY);
	}
}

/*
 * A row in RP's threads for each block of E, its figures since BASE (the spans' into STATS_FD),
 * with the process's pid and its off-CPU time; the kinds' off-CPU sums into OFF and WAIT.
 * 0, or -ENOMEM with nothing added.
 */
static int window_rows(struct inproc *ip, const struct snap *base, const struct snap *e,
		       const struct inproc_maps *m, int stats_fd, uint32_t mask, uint64_t *off,
		       uint64_t *wait, struct report *rp)
{
	struct thread_row *rows =
		realloc(rp->threads, (size_t)(rp->n_threads + e->n + 1) * sizeof(*rp->threads));
	int first = rp->n_threads;

	if (!rows)
		return -ENOMEM;
	rp->threads = rows;
	for (int i = 0; i < e->n; i++)
		block_window(ip, base, &e->b[i], stats_fd, mask, rp);
	for (int i = first; i < rp->n_threads; i++)
		rp->threads[i].pid = ip->pid;
	offcpu_sums(e, m, off, wait, rp->threads + first, rp->n_threads - first);
	return 0;
}

int inproc_report(struct inproc *ip, struct report *rp, const struct inproc_maps *m, uint32_t mask)
{
	if (window_rows(ip, &ip->s[0], &ip->s[1], m, m->stats_fd, mask, rp->off_ns, rp->wait_ns,
			rp))
		return -ENOMEM;
	rp->span_torn += ip->torn;
	rp->inproc = true;
	return 0;
}

/*
 * -i: the figures of the interval that ends now, from the previous one's end (the window's start
 * for the first), into IV (its threads, open spans, off-CPU time) and STATS_FD, emptied first.
 * The off-CPU time is the map's growth over the interval: what a thread still out has not yet
 * come back to charge goes to the interval it comes back in.
 */
int inproc_interval(struct inproc *ip, struct report *iv, const struct inproc_maps *m,
		    uint32_t mask, int stats_fd)
{
	const struct snap *base = ip->iv[0].ns ? &ip->iv[0] : &ip->s[0];
	uint64_t off[SPAN_KINDS] = { 0 }, wait[SPAN_KINDS] = { 0 };
	struct thread_row *prev_rows = ip->iv_rows, *rows;
	int n_prev = ip->iv_n_rows, first = iv->n_threads, n_rows;
	struct snap *e = &ip->iv[1];

	snapshot(ip, e);
	rate_update(ip);
	if (window_rows(ip, base, e, m, stats_fd, mask, off, wait, iv))
		return -ENOMEM;
	rows = iv->threads + first;
	n_rows = iv->n_threads - first;
	for (int k = 0; k < SPAN_KINDS; k++) {
		iv->off_ns[k] += off[k] - ip->iv_off[k];
		iv->wait_ns[k] += wait[k] - ip->iv_wait[k];
		ip->iv_off[k] = off[k];
		ip->iv_wait[k] = wait[k];
	}
	/* each row's sums so far are kept for the next interval; its interval's are the growth */
	ip->iv_rows = calloc((size_t)n_rows + 1, sizeof(*ip->iv_rows));
	if (ip->iv_rows)
		memcpy(ip->iv_rows, rows, (size_t)n_rows * sizeof(*ip->iv_rows));
	for (int i = 0; i < n_rows; i++) {
		struct thread_row *r = &rows[i];

		for (int j = 0; j < n_prev; j++) {
			if (prev_rows[j].tid != r->tid)
				continue;
			r->off_ns -= prev_rows[j].off_ns;
			r->wait_ns -= prev_rows[j].wait_ns;
			break;
		}
	}
	free(prev_rows);
	ip->iv_n_rows = ip->iv_rows ? n_rows : 0;
	iv->inproc = true;
	snap_free(&ip->iv[0]);
	ip->iv[0] = *e;
	memset(e, 0, sizeof(*e));
	return 0;
}

/* The kernel's symbols (/proc/kallsyms, read as root), sorted, for the samples' kernel stacks. */
struct ksym {
	uint64_t addr;
	char *name;
};

static struct ksym *ksyms;
static size_t n_ksyms;

static int ksym_cmp(const void *a, const void *b)
{
	const struct ksym *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static const char *ksym_name(uint64_t addr)
{
	size_t lo = 0, hi;

	if (!ksyms) {
		FILE *f = fopen("/proc/kallsyms", "re");
		char line[512], name[256];
		unsigned long long a;
		size_t cap = 0;

		while (f && fgets(line, sizeof(line), f)) {
			if (sscanf(line, "%llx %*c %255s", &a, name) != 2 || !a)
				continue;
			if (n_ksyms == cap) {
				struct ksym *nk =
					realloc(ksyms, (cap = cap ? 2 * cap : 65536) * sizeof(*nk));

				if (!nk)
					break;
				ksyms = nk;
			}
			ksyms[n_ksyms].addr = a;
			ksyms[n_ksyms++].name = strdup(name);
		}
		if (f)
			fclose(f);
		if (!ksyms)
			ksyms = calloc(1, sizeof(*ksyms)); /* tried: never again */
		else
			qsort(ksyms, n_ksyms, sizeof(*ksyms), ksym_cmp);
	}
	hi = n_ksyms;
	if (!hi || addr < ksyms[0].addr)
		return "[kernel]";
	/* the last symbol at or below addr */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (ksyms[mid].addr <= addr)
			lo = mid;
		else
			hi = mid;
	}
	return ksyms[lo].name ? ksyms[lo].name : "[kernel]";
}

/*
 * Each stack sample of the window, its frames named root first as every output names them: the
 * span chain (the thread's open spans, outermost first: "mmsb:KIND", or "[outside-spans]" when
 * there is none), the user stack, then the kernel's ("NAME_[k]"). With LOCS, the user frames'
 * locations too (frames_of()).
 */
void inproc_samples(struct inproc *ip, struct report *rp, const struct inproc_maps *m, bool locs,
		    void (*fn)(const struct inproc_sample *smp, void *ctx), void *ctx)
{
	/* the span chain, the user stack, the kernel's */
	static char names[MMSB_SPAN_DEPTH * 2 + 2 * MAX_STACK_FRAMES][256];
	struct sample_key k, next, *prev = NULL;
	__u64 count;

	while (!bpf_map_get_next_key(m->samples_fd, prev, &next)) {
		uint64_t ips[MAX_STACK_FRAMES] = { 0 };
		int kinds[MMSB_SPAN_DEPTH * 2], n, nk;
		struct inproc_sample smp = { .key = &k, .names = names, .leaf_kind = -1 };

		k = next;
		prev = &k;
		if (bpf_map_lookup_elem(m->samples_fd, &k, &count))
			continue;
		smp.count = count;
		n = inproc_node_kinds(ip, m->blocks_fd, k.tid, k.node, kinds,
				      (int)(sizeof(kinds) / sizeof(kinds[0])));
		/* no kinds: a node the block no longer has, as good as none */
		if (n <= 0)
			snprintf(names[smp.n++], sizeof(names[0]), "[outside-spans]");
		for (int i = 0; i < n; i++)
			snprintf(names[smp.n++], sizeof(names[0]), "mmsb:%s", span_name(kinds[i]));
		if (n > 0)
			smp.leaf_kind = kinds[n - 1];
		smp.n_chain = smp.n;
		smp.locs = locs ? json_object_new_array() : NULL;
		smp.n_user = frames_of(m->stacks_fd, k.ustack, rp->syms, names + smp.n,
				       MAX_STACK_FRAMES, smp.locs);
		smp.n += smp.n_user;
		if (k.kstack >= 0 && !bpf_map_lookup_elem(m->stacks_fd, &k.kstack, ips)) {
			for (nk = 0; nk < MAX_STACK_FRAMES && ips[nk]; nk++)
				;
			for (int i = nk - 1; i >= 0; i--)
				/* the suffix kept whatever the name's length */
				snprintf(names[smp.n++], sizeof(names[0]), "%.*s_[k]",
					 (int)sizeof(names[0]) - 5, ksym_name(ips[i]));
		}
		fn(&smp, ctx);
		json_object_put(smp.locs);
	}
}

struct folded_ctx {
	FILE *f;
	uint64_t period_ns;
};

static void folded_sample(const struct inproc_sample *smp, void *arg)
{
	const struct folded_ctx *c = arg;

	/* the chain always has a frame: the sample has one at least */
	for (int i = 0; i < smp->n; i++)
		fprintf(c->f, "%s%c", smp->names[i], i + 1 < smp->n ? ';' : ' ');
	fprintf(c->f, "%" PRIu64 "\n", smp->count * c->period_ns);
}

/* The samples as folded stacks, weighted by their period in ns. */
void inproc_folded(struct inproc *ip, struct report *rp, const struct inproc_maps *m, FILE *f,
		   uint64_t period_ns)
{
	struct folded_ctx c = { f, period_ns };

	inproc_samples(ip, rp, m, false, folded_sample, &c);
}

#define COST_BATCH 64	 /* calls a batch */
#define COST_BATCHES 200 /* each way, interleaved */

/*
 * What a span costs the target on this host, measured on the library's own code: mmsb-trace
 * links libmmsb, so it raises its own copy's span__register semaphore (found from the probe's
 * note, as a tracer's uprobe would raise it) and times batches of mmsb_page_epoch(), one api
 * span a call, with the spans off and on, interleaved. The fastest batch of each is the
 * undisturbed cost (a preempted batch is only slower); their difference over the calls is a
 * span's. About 5 ms. 0 when it cannot be measured.
 */
uint64_t inproc_span_cost(void)
{
	uint64_t best[2] = { UINT64_MAX, UINT64_MAX }, id;
	const char *lib = own_libmmsb();
	volatile uint16_t *sema = NULL;
	struct usdt_note *notes;
	struct mmsb_state *s;
	char path[PATH_MAX];
	Dl_info info;
	int n;

	if (!lib || !realpath(lib, path) || !dladdr((void *)mmsb_version, &info) ||
	    (n = usdt_notes_read(path, &notes)) <= 0)
		return 0;
	for (int i = 0; i < n; i++)
		if (!strcmp(notes[i].name, "span__register") && notes[i].sema)
			sema = (volatile uint16_t *)((char *)info.dli_fbase + notes[i].sema);
	free(notes);
	s = mmsb_state_open(NULL);
	if (!sema || !s || mmsb_page_create(s, 8, MMSB_LOC_CPU, &id)) {
		mmsb_state_close(s);
		return 0;
	}
	for (int b = 0; b < 2 * COST_BATCHES; b++) {
		uint64_t t0;

		__atomic_store_n(sema, b & 1, __ATOMIC_RELAXED);
		t0 = mono_ns();
		for (int i = 0; i < COST_BATCH; i++)
			mmsb_page_epoch(s, id);
		t0 = mono_ns() - t0;
		if (t0 < best[b & 1])
			best[b & 1] = t0;
	}
	__atomic_store_n(sema, 0, __ATOMIC_RELAXED);
	mmsb_state_close(s);
	return best[1] > best[0] ? (best[1] - best[0] + COST_BATCH / 2) / COST_BATCH : 0;
}

/*
 * serve: a process forgotten, its gone threads out of the programs' maps (tid -> block, the
 * off-CPU figures, a switch pending), which would otherwise fill with every thread that ever
 * ran and leave no room for those of processes started later.
 */
void inproc_forget(struct inproc *ip, const struct inproc_maps *m)
{
	const struct snap *s = &ip->s[1];
	__u32 tid, next, *prev = NULL, *gone = NULL;
	struct span_tid_node k, knext, *kprev = NULL;
	int n = 0, cap = 0;

	while (!bpf_map_get_next_key(m->blocks_fd, prev, &next)) {
		__u64 addr;

		tid = next;
		prev = &tid;
		/* one of its blocks, and the thread gone (a tid taken again re-registers it) */
		if (bpf_map_lookup_elem(m->blocks_fd, &tid, &addr) || !find_blk(s, addr) ||
		    !(kill((pid_t)tid, 0) && errno == ESRCH))
			continue;
		if (n == cap) {
			__u32 *v = realloc(gone, (size_t)(cap = cap ? 2 * cap : 64) * sizeof(*v));

			if (!v)
				break;
			gone = v;
		}
		gone[n++] = tid;
	}
	/* deleted after the walk: a walk from a deleted key starts over */
	for (int i = 0; i < n; i++) {
		bpf_map_delete_elem(m->blocks_fd, &gone[i]);
		bpf_map_delete_elem(m->offcpu_start_fd, &gone[i]);
	}
	for (bool again = n > 0; again;) {
		again = false;
		kprev = NULL;
		while (!again && !bpf_map_get_next_key(m->offcpu_fd, kprev, &knext)) {
			k = knext;
			kprev = &k;
			for (int i = 0; i < n && !again; i++)
				again = k.tid == gone[i] && !bpf_map_delete_elem(m->offcpu_fd, &k);
		}
	}
	free(gone);
}

void inproc_free(struct inproc *ip)
{
	if (!ip)
		return;
	snap_free(&ip->s[0]);
	snap_free(&ip->s[1]);
	snap_free(&ip->iv[0]);
	snap_free(&ip->iv[1]);
	free(ip->iv_rows);
	free(ip);
}
