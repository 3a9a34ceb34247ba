// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The typed dependency graph: edges live in both endpoints' sorted vectors. */
#include <string.h>

#include "mmsb_internal.h"
#include "probes.h"

static int ent_cmp(const struct mmsb_edge_ent *a, uint64_t id, int type)
{
	if (a->peer->id != id)
		return a->peer->id < id ? -1 : 1;
	return a->type < type ? -1 : a->type > type;
}

/* Index of (id, type) in v, or of where it would go; *found says which. */
static uint32_t vec_find(const struct mmsb_edge_vec *v, uint64_t id, int type, bool *found)
{
	uint32_t lo = 0, hi = v->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (ent_cmp(&v->v[mid], id, type) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < v->n && !ent_cmp(&v->v[lo], id, type);
	return lo;
}

static int vec_reserve(struct mmsb_edge_vec *v)
{
	/*
	 * Room for one peer first: most pages have one or two a side, and a page loaded from a
	 * checkpoint of a million pays for every byte of its vectors in page faults (48 bytes a
	 * side less than the four mmsb__grow starts with).
	 */
	size_t cap = v->cap;
	int err;

	if (v->n == UINT32_MAX)
		return -E2BIG;
	if (!cap) {
		v->v = malloc(sizeof(*v->v));
		if (!v->v)
			return -ENOMEM;
		v->cap = 1;
		return 0;
	}
	err = mmsb__grow((void **)&v->v, &cap, (size_t)v->n + 1, sizeof(*v->v));
	if (err)
		return err;
	v->cap = (uint32_t)min_t(size_t, cap, UINT32_MAX);
	return 0;
}

static void vec_insert(struct mmsb_edge_vec *v, uint32_t at, struct mmsb_page *peer, int type)
{
	memmove(&v->v[at + 1], &v->v[at], (v->n - at) * sizeof(*v->v));
	v->v[at] = (struct mmsb_edge_ent){ peer, (uint8_t)type };
	v->n++;
}

static void vec_remove(struct mmsb_edge_vec *v, uint32_t at)
{
	memmove(&v->v[at], &v->v[at + 1], (v->n - at - 1) * sizeof(*v->v));
	v->n--;
}

/* Link parent -> child without a cycle check; 1 when added, 0 when it existed. */
int mmsb__edge_link(struct mmsb_page *parent, struct mmsb_page *child, int type)
{
	uint32_t ci, pi;
	bool found;
	int err;

	ci = vec_find(&parent->children, child->id, type, &found);
	if (found)
		return 0;
	pi = vec_find(&child->parents, parent->id, type, &found);
	/* reserve both sides before touching either, so a failure leaves no half edge */
	err = vec_reserve(&parent->children);
	if (!err)
		err = vec_reserve(&child->parents);
	if (err)
		return err;
	vec_insert(&parent->children, ci, child, type);
	vec_insert(&child->parents, pi, parent, type);
	return 1;
}

static void edge_unlink(struct mmsb_page *parent, struct mmsb_page *child, int type)
{
	bool found;
	uint32_t i;

	i = vec_find(&parent->children, child->id, type, &found);
	if (found)
		vec_remove(&parent->children, i);
	i = vec_find(&child->parents, parent->id, type, &found);
	if (found)
		vec_remove(&child->parents, i);
}

/* Is `to` reachable from `from` (any edge type)? Iterative DFS with generation marks. */
static bool reaches(struct mmsb_state *s, struct mmsb_page *from, struct mmsb_page *to)
{
	struct mmsb_page **stack = NULL;
	size_t n = 0, cap = 0;
	uint64_t gen = ++s->mark_gen;
	bool hit = false;

	if (from == to)
		return true;
	if (mmsb__grow((void **)&stack, &cap, 16, sizeof(*stack)))
		return true; /* out of memory: answer "cycle" so the caller refuses */
	stack[n++] = from;
	from->mark = gen;
	while (n && !hit) {
		struct mmsb_page *p = stack[--n];

		for (uint32_t i = 0; i < p->children.n; i++) {
			struct mmsb_page *c = p->children.v[i].peer;

			if (c == to) {
				hit = true;
				break;
			}
			if (c->mark == gen)
				continue;
			c->mark = gen;
			if (mmsb__grow((void **)&stack, &cap, n + 1, sizeof(*stack))) {
				hit = true;
				break;
			}
			stack[n++] = c;
		}
	}
	free(stack);
	return hit;
}

int mmsb_edge_add(struct mmsb_state *s, uint64_t parent, uint64_t child, int type)
{
	MMSB_API_GATE(mmsb_edge_add, s, parent, child, type);
	struct mmsb_page *p, *c;
	int err;

	if (!s || type < 0 || type >= MMSB_EDGE__COUNT)
		return -EINVAL;
	err = mmsb__lock_mut(s);
	if (err)
		return err;
	p = mmsb__map_get(&s->pages, parent);
	c = mmsb__map_get(&s->pages, child);
	if (!p || !c) {
		err = -MMSB_ERR_PAGE_NOT_FOUND;
		goto out;
	}
	/* the check runs before anything is linked, so a refusal changes nothing */
	if (reaches(s, c, p)) {
		err = -MMSB_ERR_CYCLE;
		goto out;
	}
	err = mmsb__edge_link(p, c, type);
	if (err > 0) {
		s->n_edges++;
		s->graph_gen++;
		err = 0;
	}
out:
	mmsb__unlock(s);
	return err;
}

int mmsb_edge_remove(struct mmsb_state *s, uint64_t parent, uint64_t child, int type)
{
	MMSB_API_GATE(mmsb_edge_remove, s, parent, child, type);
	struct mmsb_page *p, *c;
	int err, removed = 0;

	if (!s || type < MMSB_EDGE_ANY || type >= MMSB_EDGE__COUNT)
		return -EINVAL;
	err = mmsb__lock_mut(s);
	if (err)
		return err;
	p = mmsb__map_get(&s->pages, parent);
	c = mmsb__map_get(&s->pages, child);
	if (!p || !c) {
		err = -MMSB_ERR_PAGE_NOT_FOUND;
		goto out;
	}
	for (int t = 0; t < MMSB_EDGE__COUNT; t++) {
		bool found;

		if (type != MMSB_EDGE_ANY && t != type)
			continue;
		vec_find(&p->children, child, t, &found);
		if (!found)
			continue;
		edge_unlink(p, c, t);
		removed++;
	}
	s->n_edges -= (size_t)removed;
	s->graph_gen++;
	err = removed ? 0 : -MMSB_ERR_EDGE_NOT_FOUND;
out:
	mmsb__unlock(s);
	return err;
}

void mmsb__edges_drop(struct mmsb_state *s, struct mmsb_page *p)
{
	s->graph_gen++;
	while (p->children.n) {
		struct mmsb_edge_ent e = p->children.v[p->children.n - 1];

		edge_unlink(p, e.peer, e.type);
		s->n_edges--;
	}
	while (p->parents.n) {
		struct mmsb_edge_ent e = p->parents.v[p->parents.n - 1];

		edge_unlink(e.peer, p, e.type);
		s->n_edges--;
	}
}

static ssize_t list_edges(struct mmsb_state *s, uint64_t id, struct mmsb_edge *out, size_t max,
			  bool children)
{
	struct mmsb_edge_vec *v;
	struct mmsb_page *p;
	ssize_t n;

	if (max && !out)
		return -EINVAL;
	n = mmsb__lock_page(s, id, false, &p);
	if (n)
		return n;
	v = children ? &p->children : &p->parents;
	for (uint32_t i = 0; i < v->n && i < max; i++)
		out[i] = (struct mmsb_edge){ v->v[i].peer->id, v->v[i].type };
	n = v->n;
	mmsb__unlock(s);
	return n;
}

ssize_t mmsb_edge_children(struct mmsb_state *s, uint64_t id, struct mmsb_edge *out, size_t max)
{
	MMSB_API_GATE(mmsb_edge_children, s, id, out, max);
	return list_edges(s, id, out, max, true);
}

ssize_t mmsb_edge_parents(struct mmsb_state *s, uint64_t id, struct mmsb_edge *out, size_t max)
{
	MMSB_API_GATE(mmsb_edge_parents, s, id, out, max);
	return list_edges(s, id, out, max, false);
}

size_t mmsb_edge_count(struct mmsb_state *s)
{
	MMSB_API_GATE(mmsb_edge_count, s);
	size_t n;

	if (!s)
		return 0;
	mmsb__lock(s);
	n = s->n_edges;
	mmsb__unlock(s);
	return n;
}

/* ---- a binary min-heap of pages by id: the deterministic tie-break of every ordered walk ---- */

int mmsb__heap_push(struct mmsb_heap *h, struct mmsb_page *p)
{
	size_t i;

	if (mmsb__grow((void **)&h->v, &h->cap, h->n + 1, sizeof(*h->v)))
		return -ENOMEM;
	for (i = h->n++; i && h->v[(i - 1) / 2]->id > p->id; i = (i - 1) / 2)
		h->v[i] = h->v[(i - 1) / 2];
	h->v[i] = p;
	return 0;
}

struct mmsb_page *mmsb__heap_pop(struct mmsb_heap *h)
{
	struct mmsb_page *top = h->v[0], *last = h->v[--h->n];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->v[c + 1]->id < h->v[c]->id)
			c++;
		if (h->v[c]->id >= last->id)
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	if (h->n)
		h->v[i] = last;
	return top;
}

/* Kahn's algorithm over every page; the heap makes ties go to the smallest id. */
ssize_t mmsb__graph_toposort(struct mmsb_state *s, uint64_t *ids, size_t max)
{
	struct mmsb_heap h = { 0 };
	struct mmsb_page *p;
	size_t i, k = 0;
	ssize_t ret;

	if (!s || (max && !ids))
		return -EINVAL;
	mmsb__lock(s);
	mmsb__map_for_each(&s->pages, i, p)
		p->indeg = 0;
	mmsb__map_for_each(&s->pages, i, p)
		for (uint32_t e = 0; e < p->children.n; e++)
			p->children.v[e].peer->indeg++;
	/* several typed edges between one pair count once each, and are released once each */
	mmsb__map_for_each(&s->pages, i, p)
		if (!p->indeg && mmsb__heap_push(&h, p))
			goto nomem;
	while (h.n) {
		p = mmsb__heap_pop(&h);
		if (k < max)
			ids[k] = p->id;
		k++;
		for (uint32_t e = 0; e < p->children.n; e++) {
			struct mmsb_page *c = p->children.v[e].peer;

			if (!--c->indeg && mmsb__heap_push(&h, c))
				goto nomem;
		}
	}
	/* a short order means a cycle, which edge_add never lets in */
	ret = k == s->pages.n ? (ssize_t)k : -MMSB_ERR_CYCLE;
	goto out;
nomem:
	ret = -ENOMEM;
out:
	free(h.v);
	mmsb__unlock(s);
	return ret;
}

ssize_t mmsb_graph_toposort(struct mmsb_state *s, uint64_t *ids, size_t max)
{
	MMSB_API_GATE(mmsb_graph_toposort, s, ids, max);
	return mmsb__graph_toposort(s, ids, max);
}

ssize_t mmsb_graph_bfs(struct mmsb_state *s, uint64_t root, uint64_t *ids, size_t max)
{
	MMSB_API_GATE(mmsb_graph_bfs, s, root, ids, max);
	struct mmsb_page **q = NULL, *r;
	size_t head = 0, n = 0, cap = 0;
	uint64_t gen;
	ssize_t ret;

	if (max && !ids)
		return -EINVAL;
	ret = mmsb__lock_page(s, root, false, &r);
	if (ret)
		return ret;
	gen = ++s->mark_gen;
	if (mmsb__grow((void **)&q, &cap, 16, sizeof(*q))) {
		ret = -ENOMEM;
		goto out;
	}
	q[n++] = r;
	r->mark = gen;
	while (head < n) {
		struct mmsb_page *p = q[head++];

		for (uint32_t e = 0; e < p->children.n; e++) {
			struct mmsb_page *c = p->children.v[e].peer;

			if (c->mark == gen)
				continue;
			c->mark = gen;
			if (mmsb__grow((void **)&q, &cap, n + 1, sizeof(*q))) {
				ret = -ENOMEM;
				goto out;
			}
			q[n++] = c;
		}
	}
	for (size_t i = 0; i < n && i < max; i++)
		ids[i] = q[i]->id;
	ret = (ssize_t)n;
out:
	free(q);
	mmsb__unlock(s);
	return ret;
}

/*
 * Iterative Tarjan SCC. Each frame remembers the next child to look at, so a path as deep as the
 * page count costs heap, not stack. Uses the pages' indeg (as lowlink) and mark (as index + 1
 * of the current generation) scratch fields.
 *
 * Roots are taken in id order, so the cycle reported is the same from run to run. A map just
 * built (every page's scratch still zero) whose caller asks only whether a cycle exists, a
 * checkpoint being loaded, is walked in table order instead: at a million pages the sort cost
 * n log n comparisons and 32 bytes of memory a page that the load had to fault in.
 */
struct tj_frame {
	struct mmsb_page *p;
	uint32_t next;
};

int mmsb__tarjan(struct mmsb_page_map *m, uint64_t *mark_gen, struct mmsb_cycle_report *r,
		 bool fresh)
{
	struct mmsb_page **order = NULL, **stk = NULL;
	struct tj_frame *call = NULL;
	size_t n_roots = m->cap, n_stk = 0, cap_stk = 0, n_call = 0, cap_call = 0;
	uint64_t base = *mark_gen + 1, idx = 0;
	int err = 0;

	memset(r, 0, sizeof(*r));
	if (!fresh) {
		order = mmsb__map_sorted(m, &n_roots);
		if (!order)
			return -ENOMEM;
		/* mark < base: unvisited; mark = base + index: visited; dirty: on the Tarjan stack */
		for (size_t i = 0; i < n_roots; i++)
			order[i]->dirty = false;
	}
	for (size_t i = 0; i < n_roots && !r->has_cycle; i++) {
		struct mmsb_page *root = order ? order[i] : m->slots[i].p;

		if (!root || root->mark >= base)
			continue;
		if (mmsb__grow((void **)&call, &cap_call, n_call + 1, sizeof(*call)))
			goto nomem;
		call[n_call++] = (struct tj_frame){ root, 0 };
		root->mark = base + idx;
		root->indeg = (uint32_t)idx++;
		r->visited++;
		if (mmsb__grow((void **)&stk, &cap_stk, n_stk + 1, sizeof(*stk)))
			goto nomem;
		stk[n_stk++] = root;
		root->dirty = true;
		while (n_call) {
			struct tj_frame *f = &call[n_call - 1];
			struct mmsb_page *p = f->p;

			if (f->next < p->children.n) {
				struct mmsb_page *c = p->children.v[f->next++].peer;

				if (c == p) {
					/* a self-loop is a cycle on its own */
					r->has_cycle = true;
					r->cycle = malloc(sizeof(*r->cycle));
					if (!r->cycle)
						goto nomem;
					r->cycle[0] = p->id;
					r->n_cycle = 1;
					goto done;
				}
				if (c->mark < base) {
					c->mark = base + idx;
					c->indeg = (uint32_t)idx++;
					r->visited++;
					if (mmsb__grow((void **)&call, &cap_call, n_call + 1,
						       sizeof(*call)) ||
					    mmsb__grow((void **)&stk, &cap_stk, n_stk + 1,
						       sizeof(*stk)))
						goto nomem;
					call[n_call++] = (struct tj_frame){ c, 0 };
					stk[n_stk++] = c;
					c->dirty = true;
				} else if (c->dirty) {
					uint32_t ci = (uint32_t)(c->mark - base);

					if (ci < p->indeg)
						p->indeg = ci;
				}
				continue;
			}
			/* p is finished: pop its component when it is a root */
			n_call--;
			if (n_call) {
				struct mmsb_page *parent = call[n_call - 1].p;

				if (p->indeg < parent->indeg)
					parent->indeg = p->indeg;
			}
			if (p->indeg != (uint32_t)(p->mark - base))
				continue;
			size_t start = n_stk;

			do
				stk[--start]->dirty = false;
			while (stk[start] != p);
			if (n_stk - start > 1) {
				r->has_cycle = true;
				r->n_cycle = n_stk - start;
				r->cycle = malloc(r->n_cycle * sizeof(*r->cycle));
				if (!r->cycle)
					goto nomem;
				for (size_t k = 0; k < r->n_cycle; k++)
					r->cycle[k] = stk[start + k]->id;
				goto done;
			}
			n_stk = start;
		}
	}
done:
	if (r->has_cycle) {
		/* ascending ids: a stable report */
		for (size_t a = 1; a < r->n_cycle; a++)
			for (size_t b = a; b && r->cycle[b - 1] > r->cycle[b]; b--) {
				uint64_t t = r->cycle[b];

				r->cycle[b] = r->cycle[b - 1];
				r->cycle[b - 1] = t;
			}
	}
	goto out;
nomem:
	err = -ENOMEM;
	free(r->cycle);
	r->cycle = NULL;
out:
	/* a page is dirty exactly while it is on the stack */
	while (n_stk)
		stk[--n_stk]->dirty = false;
	*mark_gen = base + idx;
	free(order);
	free(stk);
	free(call);
	return err;
}

int mmsb_graph_validate(struct mmsb_state *s, struct mmsb_cycle_report *r)
{
	MMSB_API_GATE(mmsb_graph_validate, s, r);
	int err;

	if (!s || !r)
		return -EINVAL;
	mmsb__lock(s);
	err = mmsb__tarjan(&s->pages, &s->mark_gen, r, false);
	mmsb__unlock(s);
	return err;
}

/* Ancestors breadth first, each level sorted by id; out is malloc'ed. */
static ssize_t lineage(struct mmsb_state *s, struct mmsb_page *root, unsigned int depth,
		       uint64_t **out)
{
	struct mmsb_page **q = NULL;
	size_t n = 0, cap = 0, level_start = 0;
	uint64_t gen = ++s->mark_gen, *ids;

	if (mmsb__grow((void **)&q, &cap, 16, sizeof(*q)))
		return -ENOMEM;
	q[n++] = root;
	root->mark = gen;
	for (unsigned int d = 0; d < depth && level_start < n; d++) {
		size_t level_end = n;

		for (size_t i = level_start; i < level_end; i++)
			for (uint32_t e = 0; e < q[i]->parents.n; e++) {
				struct mmsb_page *p = q[i]->parents.v[e].peer;

				if (p->mark == gen)
					continue;
				p->mark = gen;
				if (mmsb__grow((void **)&q, &cap, n + 1, sizeof(*q))) {
					free(q);
					return -ENOMEM;
				}
				q[n++] = p;
			}
		/* a stable answer whatever order edges were added in: each level by id */
		qsort(q + level_end, n - level_end, sizeof(*q), mmsb__cmp_page_id);
		level_start = level_end;
	}
	ids = malloc(n * sizeof(*ids));
	if (!ids) {
		free(q);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		ids[i] = q[i]->id;
	free(q);
	*out = ids;
	return (ssize_t)n;
}

ssize_t mmsb_provenance(struct mmsb_state *s, uint64_t id, unsigned int depth, uint64_t *ids,
			size_t max, bool *from_cache)
{
	MMSB_API_GATE(mmsb_provenance, s, id, depth, ids, max, from_cache);
	struct mmsb_prov_ent *slot;
	struct mmsb_page *p;
	uint64_t *v;
	ssize_t n;

	if (!s || (max && !ids))
		return -EINVAL;
	if (!depth)
		depth = 32;
	n = mmsb__lock_page(s, id, false, &p);
	if (n)
		return n;
	if (!s->prov && !(s->prov = calloc(MMSB_PROV_SLOTS, sizeof(*s->prov)))) {
		n = -ENOMEM;
		goto out;
	}
	slot = &s->prov[(id * 0x9E3779B97F4A7C15ull) >> 57];
	if (slot->ids && slot->id == id && slot->depth == depth &&
	    slot->graph_gen == s->graph_gen) {
		n = (ssize_t)slot->n;
		if (max && slot->n)
			memcpy(ids, slot->ids, min_t(size_t, max, slot->n) * sizeof(*ids));
		if (from_cache)
			*from_cache = true;
		goto out;
	}
	n = lineage(s, p, depth, &v);
	if (n < 0)
		goto out;
	if (max && n)
		memcpy(ids, v, min_t(size_t, max, (size_t)n) * sizeof(*ids));
	free(slot->ids);
	*slot = (struct mmsb_prov_ent){ id, s->graph_gen, depth, (size_t)n, v };
	if (from_cache)
		*from_cache = false;
out:
	mmsb__unlock(s);
	return n;
}
