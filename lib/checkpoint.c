// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Checkpoints, MMSBSNAP. Version 3 (what we write) holds pages sorted by id with metadata and
 * flags, the edges, the id counters and the log position, each page record and the edge table
 * with its own CRC32C and the whole file with a trailing one. Version 2 (the original's) is read.
 * A load parses the file into a detached state first and swaps only when all of it is valid.
 */
#include <string.h>

#include "mmsb_internal.h"
#include "probes.h"
#include "fileio.h"

#define CKPT_MAGIC "MMSBSNAP"
#define CKPT_END "SNAPEND3"
#define CKPT_V3_HDR 64
#define CKPT_TRAILER 12
#define CKPT_PAGE_FIXED 32 /* id, size, epoch, location, flags, meta_len */
#define CKPT_EDGE 20

struct ckpt_hdr {
	char magic[8];
	uint32_t version, header_len;
	uint64_t pages, edges, next_page_id, next_delta_id, log_lsn, log_id;
} __attribute__((packed));
_Static_assert(sizeof(struct ckpt_hdr) == CKPT_V3_HDR, "v3 checkpoint header layout");

struct ckpt_page {
	uint64_t id, size;
	uint32_t epoch;
	int32_t location;
	uint32_t flags, meta_len;
} __attribute__((packed));
_Static_assert(sizeof(struct ckpt_page) == CKPT_PAGE_FIXED, "v3 page record layout");

struct ckpt_edge {
	uint64_t parent, child;
	uint32_t type;
} __attribute__((packed));
_Static_assert(sizeof(struct ckpt_edge) == CKPT_EDGE, "v3 edge record layout");

/* Put n bytes into the file and into a section CRC. */
static void put_crc(struct mmsb_wfile *w, uint32_t *crc, const void *p, size_t n)
{
	*crc = mmsb__crc32c(*crc, p, n);
	mmsb__wfile_put(w, p, n);
}

static int checkpoint_write(struct mmsb_state *s, const char *path, uint64_t *bytes)
{
	struct mmsb_buf meta = { 0 };
	struct mmsb_page **v = NULL;
	struct mmsb_wfile w;
	struct ckpt_hdr h;
	size_t n = 0;
	uint32_t crc;
	int err;

	if (!s || !path)
		return -EINVAL;
	mmsb__lock(s);
	/* the checkpoint names an LSN: make sure every record up to it is on disk */
	if (s->log) {
		err = mmsb__log_sync(s->log);
		if (err)
			goto out;
	}
	v = mmsb__map_sorted(&s->pages, &n);
	if (!v) {
		err = -ENOMEM;
		goto out;
	}
	err = mmsb__wfile_open(&w, path);
	if (err)
		goto out;
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, CKPT_MAGIC, 8);
	h.version = 3;
	h.header_len = CKPT_V3_HDR;
	h.pages = n;
	h.edges = s->n_edges;
	h.next_page_id = s->next_page_id;
	h.next_delta_id = s->next_delta_id;
	h.log_lsn = s->log ? mmsb__log_next_lsn(s->log) - 1 : 0;
	h.log_id = s->log ? mmsb__log_id(s->log) : 0;
	mmsb__wfile_put(&w, &h, sizeof(h));
	for (size_t i = 0; i < n; i++) {
		struct mmsb_page *p = v[i];
		struct ckpt_page r = {
			.id = p->id,
			.size = p->size,
			.epoch = p->epoch,
			.location = p->location,
			.flags = p->flags,
		};

		meta.len = 0;
		err = mmsb__meta_encode(p, &meta);
		if (err)
			break;
		r.meta_len = (uint32_t)meta.len;
		crc = 0;
		put_crc(&w, &crc, &r, sizeof(r));
		put_crc(&w, &crc, meta.p, meta.len);
		/* a GPU page's device bytes, through its host mirror */
		err = mmsb__page_host(p);
		if (err)
			break;
		put_crc(&w, &crc, p->data, p->size);
		MMSB__WPUT(&w, crc);
	}
	crc = 0;
	for (size_t i = 0; i < n && !err; i++)
		for (uint32_t e = 0; e < v[i]->children.n; e++) {
			struct ckpt_edge r = { v[i]->id, v[i]->children.v[e].peer->id,
					       v[i]->children.v[e].type };

			put_crc(&w, &crc, &r, sizeof(r));
		}
	MMSB__WPUT(&w, crc);
	mmsb__wfile_put(&w, CKPT_END, 8);
	MMSB__WPUT(&w, w.crc);
	if (!err)
		err = w.err;
	*bytes = w.written;
	if (err)
		mmsb__wfile_abort(&w);
	else
		err = mmsb__wfile_commit(&w);
out:
	mmsb__unlock(s);
	mmsb__buf_free(&meta);
	free(v);
	return err;
}

int mmsb_checkpoint_write(struct mmsb_state *s, const char *path)
{
	MMSB_API_GATE(mmsb_checkpoint_write, s, path);
	uint64_t bytes = 0;
	int err;

	if (!s || !path)
		return -EINVAL;
	MMSB_TRACE(CHECKPOINT_WRITE_BEGIN, path, s->pages.n);
	err = checkpoint_write(s, path, &bytes);
	MMSB_TRACE(CHECKPOINT_WRITE_END, bytes, err);
	return err;
}

/* ---- parsing into a detached state ---- */

static int add_page(struct mmsb_state *t, uint64_t id, uint64_t size, uint32_t epoch, int loc,
		    uint32_t flags, const uint8_t *meta, size_t meta_len, const uint8_t *data,
		    bool replace)
{
	struct mmsb_page *p, *old;
	int err;

	if (!id || id > MMSB_ID_MAX || !size || size > MMSB_PAGE_SIZE_MAX || loc < MMSB_LOC_CPU ||
	    loc > MMSB_LOC_UNIFIED ||
	    flags & ~(uint32_t)(MMSB_PAGE_STALE | MMSB_PAGE_GPU_SYNC_PENDING |
				MMSB_PAGE_IR_INVALID))
		return -MMSB_ERR_CORRUPT;
	old = mmsb__map_get(&t->pages, id);
	if (old && !replace)
		return -MMSB_ERR_CORRUPT;
	if (loc == MMSB_LOC_GPU && !mmsb__gpu()) {
		/* no GPU tier in this process: the bytes are kept, in host memory */
		pr_warn("checkpoint page %llu is a GPU page; loading it on the CPU\n",
			(unsigned long long)id);
		loc = MMSB_LOC_CPU;
	}
	p = mmsb__page_new(&t->pages, id, (size_t)size, loc);
	if (!p)
		return -ENOMEM;
	if (loc == MMSB_LOC_GPU && (err = mmsb__gpu_page_alloc(p))) {
		mmsb__page_destroy(p);
		return err;
	}
	err = mmsb__meta_decode(meta, meta_len, &p->meta, &p->n_meta);
	if (err) {
		mmsb__page_destroy(p);
		return err;
	}
	p->cap_meta = p->n_meta;
	memcpy(p->data, data, (size_t)size);
	mmsb__gpu_host_written(p);
	p->epoch = epoch;
	p->flags = (uint8_t)flags;
	if (old) {
		/* the original let a later record replace an earlier one with the same id */
		mmsb__map_del(&t->pages, id);
		mmsb__page_destroy(old);
	}
	err = mmsb__map_put(&t->pages, p);
	if (err) {
		mmsb__page_destroy(p);
		return err;
	}
	if (id >= t->next_page_id)
		t->next_page_id = id + 1;
	return 0;
}

static int parse_v2(const struct mmsb_map *m, struct mmsb_state *t,
		    struct mmsb_checkpoint_info *info)
{
	struct mmsb_cursor c = { .p = m->p, .len = m->len, .off = 12 };
	uint32_t count;
	uint64_t log_off;
	int err;

	if (!mmsb__cur_get(&c, &count, 4) || !mmsb__cur_get(&c, &log_off, 8))
		return -MMSB_ERR_TRUNCATED;
	for (uint32_t i = 0; i < count; i++) {
		uint64_t id, size;
		uint32_t epoch, meta_len, data_len;
		int32_t loc;
		const uint8_t *meta, *data;

		if (!mmsb__cur_get(&c, &id, 8) || !mmsb__cur_get(&c, &size, 8) ||
		    !mmsb__cur_get(&c, &epoch, 4) || !mmsb__cur_get(&c, &loc, 4) ||
		    !mmsb__cur_get(&c, &meta_len, 4) || !(meta = mmsb__cur_take(&c, meta_len)) ||
		    !mmsb__cur_get(&c, &data_len, 4))
			return -MMSB_ERR_TRUNCATED;
		if (data_len != size)
			return -MMSB_ERR_CORRUPT;
		if (!(data = mmsb__cur_take(&c, data_len)))
			return -MMSB_ERR_TRUNCATED;
		err = add_page(t, id, size, epoch, loc, 0, meta, meta_len, data, true);
		if (err)
			return err;
	}
	if (c.off != c.len)
		return -MMSB_ERR_CORRUPT;
	info->version = 2;
	info->log_lsn = 0;
	return 0;
}

/*
 * The trailer's CRC covers every byte before it, the records' and the edge table's own CRCs too:
 * once it holds, those hold as the writer wrote them, and a load does not read every page's bytes
 * a second time to check them (a quarter of a small load's instructions). whole checks them as
 * well (mmsb_checkpoint_verify): a file it passes loads in older versions of the library too,
 * which check them on load, and a writer that got them wrong is found.
 */
static int parse_v3(const struct mmsb_map *m, struct mmsb_state *t,
		    struct mmsb_checkpoint_info *info, bool whole)
{
	struct mmsb_cursor c = { .p = m->p, .len = m->len - CKPT_TRAILER };
	struct mmsb_cycle_report rep;
	struct ckpt_hdr h;
	uint32_t want;
	size_t at;
	int err;

	if (m->len < CKPT_V3_HDR + CKPT_TRAILER + 4)
		return -MMSB_ERR_TRUNCATED;
	if (memcmp(m->p + m->len - CKPT_TRAILER, CKPT_END, 8))
		return -MMSB_ERR_TRUNCATED;
	memcpy(&want, m->p + m->len - 4, 4);
	if (mmsb__crc32c(0, m->p, m->len - 4) != want)
		return -MMSB_ERR_CHECKSUM;
	mmsb__cur_get(&c, &h, sizeof(h));
	/* counters past the last id would wrap on the next create or route */
	if (h.header_len != CKPT_V3_HDR || !h.next_page_id || h.next_page_id > MMSB_ID_MAX + 1 ||
	    !h.next_delta_id || h.next_delta_id > MMSB_ID_MAX + 1 || h.log_lsn > MMSB_ID_MAX)
		return -MMSB_ERR_CORRUPT;
	/* counts the file cannot hold are corrupt, before anything is sized from them */
	if (h.pages > (c.len - c.off) / (CKPT_PAGE_FIXED + 5) ||
	    h.edges > (c.len - c.off) / CKPT_EDGE)
		return -MMSB_ERR_CORRUPT;
	/* the table sized once: no rehash of a million pages on the way */
	if (mmsb__map_reserve(&t->pages, (size_t)h.pages))
		return -ENOMEM;
	for (uint64_t i = 0; i < h.pages; i++) {
		struct ckpt_page r;
		const uint8_t *meta, *data;

		at = c.off;
		if (!mmsb__cur_get(&c, &r, sizeof(r)) || !(meta = mmsb__cur_take(&c, r.meta_len)) ||
		    r.size > c.len || !(data = mmsb__cur_take(&c, (size_t)r.size)) ||
		    !mmsb__cur_get(&c, &want, 4))
			return -MMSB_ERR_CORRUPT;
		if (whole && mmsb__crc32c(0, m->p + at, c.off - 4 - at) != want)
			return -MMSB_ERR_CHECKSUM;
		/* ids ascend strictly: what we write, and it rules out duplicates */
		if (i && r.id <= t->next_page_id - 1)
			return -MMSB_ERR_CORRUPT;
		err = add_page(t, r.id, r.size, r.epoch, r.location, r.flags, meta, r.meta_len,
			       data, false);
		if (err)
			return err;
	}
	at = c.off;
	for (uint64_t i = 0; i < h.edges; i++) {
		struct ckpt_edge e;
		struct mmsb_page *p, *ch;

		if (!mmsb__cur_get(&c, &e, sizeof(e)))
			return -MMSB_ERR_CORRUPT;
		p = mmsb__map_get(&t->pages, e.parent);
		ch = mmsb__map_get(&t->pages, e.child);
		if (!p || !ch || e.type >= MMSB_EDGE__COUNT || p == ch)
			return -MMSB_ERR_CORRUPT;
		err = mmsb__edge_link(p, ch, (int)e.type);
		if (err < 0)
			return err;
		if (!err)
			return -MMSB_ERR_CORRUPT; /* a duplicate edge */
		t->n_edges++;
	}
	if (!mmsb__cur_get(&c, &want, 4) || c.off != c.len)
		return -MMSB_ERR_CORRUPT;
	if (whole && mmsb__crc32c(0, m->p + at, c.off - 4 - at) != want)
		return -MMSB_ERR_CHECKSUM;
	err = mmsb__tarjan(&t->pages, &t->mark_gen, &rep, true);
	if (err)
		return err;
	free(rep.cycle);
	if (rep.has_cycle)
		return -MMSB_ERR_CYCLE;
	/* the writer's counter is always past every id it holds */
	if (t->next_page_id > h.next_page_id)
		return -MMSB_ERR_CORRUPT;
	t->next_page_id = h.next_page_id;
	t->next_delta_id = h.next_delta_id;
	info->version = 3;
	info->log_lsn = h.log_lsn;
	info->log_id = h.log_id;
	return 0;
}

/*
 * Parse and validate a whole checkpoint into a new detached state; whole: every CRC in it, not the
 * trailer's alone (parse_v3()).
 */
static int parse(const char *path, struct mmsb_state **out, struct mmsb_checkpoint_info *info,
		 bool whole)
{
	struct mmsb_map m;
	struct mmsb_state *t;
	uint32_t version;
	int err;

	memset(info, 0, sizeof(*info));
	err = mmsb__map_file(path, &m);
	if (err)
		return err;
	info->file_size = m.len;
	if (m.len < 12) {
		err = m.len >= 8 && memcmp(m.p, CKPT_MAGIC, 8) ? -MMSB_ERR_BAD_MAGIC :
								 -MMSB_ERR_TRUNCATED;
		goto out;
	}
	if (memcmp(m.p, CKPT_MAGIC, 8)) {
		err = -MMSB_ERR_BAD_MAGIC;
		goto out;
	}
	memcpy(&version, m.p + 8, 4);
	t = mmsb__state_new();
	if (!t) {
		err = -ENOMEM;
		goto out;
	}
	if (version == 2)
		err = parse_v2(&m, t, info);
	else if (version == 3)
		err = parse_v3(&m, t, info, whole);
	else
		err = -MMSB_ERR_BAD_VERSION;
	if (err) {
		mmsb__state_close(t);
		goto out;
	}
	info->pages = t->pages.n;
	info->edges = t->n_edges;
	info->next_page_id = t->next_page_id;
	info->next_delta_id = t->next_delta_id;
	struct mmsb_page *p;
	size_t i;

	mmsb__map_for_each(&t->pages, i, p)
		info->page_bytes += p->size;
	*out = t;
out:
	mmsb__unmap_file(&m);
	return err;
}

int mmsb_checkpoint_verify(const char *path, struct mmsb_checkpoint_info *info)
{
	MMSB_API_GATE(mmsb_checkpoint_verify, path, info);
	struct mmsb_checkpoint_info tmp;
	struct mmsb_state *t;
	int err;

	if (!path)
		return -EINVAL;
	err = parse(path, &t, info ? info : &tmp, true);
	if (!err)
		mmsb__state_close(t);
	return err;
}

/* Parse a checkpoint for replay; the detached state is the caller's. */
int mmsb__checkpoint_parse(const char *path, struct mmsb_state **out,
			   struct mmsb_checkpoint_info *info)
{
	return parse(path, out, info, false);
}

/*
 * A state with a log goes on writing that log, so what it holds must be what the log describes:
 * only a checkpoint of this log, at an LSN the log holds, is loaded, and the log's records after
 * that LSN are replayed on top of it. The id counters then continue past everything logged, and
 * the log still replays to the live state. Anything else is refused before the state changes.
 */
static int onto_log(struct mmsb_state *s, struct mmsb_state *t,
		    const struct mmsb_checkpoint_info *info, const char *path)
{
	uint64_t id = mmsb__log_id(s->log), last = mmsb__log_next_lsn(s->log) - 1;
	int err;

	if (info->version != 3 || info->log_id != id) {
		pr_warn("checkpoint %s: not a checkpoint of log %s (log id %016llx, checkpoint's "
			"%016llx)\n",
			path, mmsb__log_path(s->log), (unsigned long long)id,
			(unsigned long long)info->log_id);
		return -MMSB_ERR_LOG_FOREIGN;
	}
	if (info->log_lsn > last) {
		pr_warn("checkpoint %s: names LSN %llu, past the end of log %s (LSN %llu)\n", path,
			(unsigned long long)info->log_lsn, mmsb__log_path(s->log),
			(unsigned long long)last);
		return -MMSB_ERR_LOG_FOREIGN;
	}
	/* the tail is read from the file: everything the writer buffered goes there first */
	err = mmsb__log_flush(s->log);
	if (!err)
		err = mmsb__replay_tail(t, mmsb__log_path(s->log), id, info->log_lsn);
	if (err)
		pr_warn("checkpoint %s: replaying log %s after LSN %llu: %s\n", path,
			mmsb__log_path(s->log), (unsigned long long)info->log_lsn,
			mmsb__strerror(err));
	return err;
}

static int checkpoint_load(struct mmsb_state *s, const char *path, uint64_t *pages)
{
	struct mmsb_checkpoint_info info;
	struct mmsb_page_map old;
	struct mmsb_state *t;
	struct mmsb_page *p;
	size_t i;
	int err;

	if (!s || !path)
		return -EINVAL;
	err = parse(path, &t, &info, false);
	if (err)
		return err;
	err = mmsb__lock_mut(s);
	if (err) {
		mmsb__state_close(t);
		return err;
	}
	if (s->log) {
		err = onto_log(s, t, &info, path);
		if (err) {
			mmsb__unlock(s);
			mmsb__state_close(t);
			return err;
		}
	}
	*pages = t->pages.n;
	/* recompute bindings belong to the process, not the file: keep them by page id */
	mmsb__map_for_each(&t->pages, i, p) {
		struct mmsb_page *o = mmsb__map_get(&s->pages, p->id);

		if (!o)
			continue;
		p->recompute = o->recompute;
		p->recompute_ctx = o->recompute_ctx;
		p->pt_source = o->pt_source;
		p->pt_fn = o->pt_fn;
		p->pt_ctx = o->pt_ctx;
	}
	old = s->pages;
	s->pages = t->pages;
	s->n_edges = t->n_edges;
	s->next_page_id = max_t(uint64_t, t->next_page_id, 1);
	s->next_delta_id = t->next_delta_id;
	s->n_queue = 0;
	s->graph_gen++;
	mmsb__gens_follow(s, t); /* the marks of the load's cycle check */
	t->pages = old;
	mmsb__unlock(s);
	/* the old pages go with the detached state */
	mmsb__state_close(t);
	return 0;
}

int mmsb_checkpoint_load(struct mmsb_state *s, const char *path)
{
	MMSB_API_GATE(mmsb_checkpoint_load, s, path);
	uint64_t pages = 0;
	int err;

	MMSB_TRACE(CHECKPOINT_LOAD_BEGIN, path);
	err = checkpoint_load(s, path, &pages);
	MMSB_TRACE(CHECKPOINT_LOAD_END, err ? 0 : pages, err);
	return err;
}
