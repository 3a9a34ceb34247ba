// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Invariant checks and delta integrity checks. */
#include <stdio.h>
#include <string.h>

#include "mmsb_internal.h"
#include "probes.h"

int mmsb_check_invariants(struct mmsb_state *s, unsigned int which, struct mmsb_invariant_result *r)
{
	MMSB_API_GATE(mmsb_check_invariants, s, which, r);
	struct mmsb_buf b = { 0 };
	struct mmsb_page **v;
	size_t n;
	int err = 0;

	if (!s || !r || !which || (which & ~MMSB_INV_ALL))
		return -EINVAL;
	memset(r, 0, sizeof(*r));
	r->checked = which;
	mmsb__lock(s);
	v = mmsb__map_sorted(&s->pages, &n);
	if (!v) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct mmsb_page *p = v[i];

		if ((which & MMSB_INV_EPOCH_MONOTONIC) && p->inv_seen && p->epoch < p->inv_epoch &&
		    !(r->failed & MMSB_INV_EPOCH_MONOTONIC)) {
			r->failed |= MMSB_INV_EPOCH_MONOTONIC;
			snprintf(r->details, sizeof(r->details),
				 "EpochMonotonicity: page %llu went from epoch %u to %u",
				 (unsigned long long)p->id, p->inv_epoch, p->epoch);
		}
		if (which & MMSB_INV_PAGE_CONSISTENT) {
			struct mmsb_meta_ent *m;
			size_t nm;
			int e;

			b.len = 0;
			e = mmsb__meta_encode(p, &b);
			if (!e)
				e = mmsb__meta_decode(b.p, b.len, &m, &nm);
			if (!e)
				mmsb__meta_free(m, nm);
			if ((e || !p->data || !p->size || nm != p->n_meta) &&
			    !(r->failed & MMSB_INV_PAGE_CONSISTENT)) {
				r->failed |= MMSB_INV_PAGE_CONSISTENT;
				if (!r->details[0])
					snprintf(r->details, sizeof(r->details),
						 "PageConsistency: page %llu: %s",
						 (unsigned long long)p->id,
						 e ? mmsb__strerror(e) :
						     "data or metadata missing");
			}
		}
	}
	/* the monotonicity check is stateful: remember where every page is now */
	if (which & MMSB_INV_EPOCH_MONOTONIC)
		for (size_t i = 0; i < n; i++) {
			v[i]->inv_epoch = v[i]->epoch;
			v[i]->inv_seen = true;
		}
	if (which & MMSB_INV_ACYCLIC) {
		struct mmsb_cycle_report rep;

		err = mmsb__tarjan(&s->pages, &s->mark_gen, &rep, false);
		if (!err && rep.has_cycle) {
			r->failed |= MMSB_INV_ACYCLIC;
			if (!r->details[0]) {
				int k = snprintf(r->details, sizeof(r->details),
						 "GraphAcyclicity: cycle");
				for (size_t i = 0; i < rep.n_cycle && k < (int)sizeof(r->details);
				     i++)
					k += snprintf(r->details + k,
						      sizeof(r->details) - (size_t)k, "%s%llu",
						      i ? " -> " : " ",
						      (unsigned long long)rep.cycle[i]);
			}
		}
		if (!err)
			free(rep.cycle);
	}
out:
	mmsb__unlock(s);
	mmsb__buf_free(&b);
	free(v);
	if (err)
		return err;
	return r->failed ? 1 : 0;
}

ssize_t mmsb_check_deltas(struct mmsb_state *s, struct mmsb_delta *const *ds, size_t n,
			  struct mmsb_violation *out, size_t max)
{
	MMSB_API_GATE(mmsb_check_deltas, s, ds, n, out, max);
	size_t nv = 0;

	if (!s || (n && !ds) || (max && !out))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!ds[i])
			return -EINVAL;
	mmsb__lock(s);
	for (size_t i = 0; i < n; i++) {
		const struct mmsb_delta *d = ds[i];
		struct mmsb_violation v = { .delta_id = d->id, .page_id = d->page_id };
		struct mmsb_page *p = mmsb__map_get(&s->pages, d->page_id);

		if (!p) {
			v.kind = MMSB_VIOL_ORPHAN;
		} else if (mmsb__delta_validate(d)) {
			v.kind = MMSB_VIOL_SCHEMA;
			v.a = d->mask_len;
			v.b = d->payload_len;
		} else if (d->epoch < p->integ_epoch) {
			v.kind = MMSB_VIOL_EPOCH_REGRESSION;
			v.a = p->integ_epoch;
			v.b = d->epoch;
		} else {
			p->integ_epoch = d->epoch;
			continue;
		}
		if (nv < max)
			out[nv] = v;
		nv++;
	}
	mmsb__unlock(s);
	return (ssize_t)nv;
}
