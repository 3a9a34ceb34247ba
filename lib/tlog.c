// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The transaction log, MMSBLOG1. Version 3 (what we write) frames every record with its length
 * and a CRC32C, carries an LSN and a real timestamp, and records page creation and free so a log
 * replays on its own. Versions 1 and 2 (the original's) are read. docs/formats.md has the layouts.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mmsb_internal.h"
#include "probes.h"
#include "fileio.h"

/* NONE durability writes once this much is buffered. */
#define LOG_BUF_FLUSH (256u << 10)
/* ... and starts the write-back of what it wrote once this much is unsynced (log_write()) */
#define LOG_WRITEBACK (8u << 20)
#define REC_FLAG_SPARSE 0x01u
/* a DELTA whose mask starts at byte page_size of the page (a range write) */
#define REC_FLAG_OFFSET 0x02u

struct mmsb_log {
	int fd;
	char *path;
	uint64_t log_id, next_lsn;
	enum mmsb_durability dur;
	struct mmsb_buf buf;
	uint64_t size;	  /* bytes on disk */
	uint64_t wb_from; /* write-back started (or synced) up to here */
	bool failed;
	uint64_t pending; /* records framed since the last write */
	uint64_t records, bytes, writes, syncs;
};

/* ---- v3 encoding ---- */

struct rec_hdr {
	uint8_t kind, flags;
	uint16_t source_len;
	uint32_t epoch;
	uint64_t lsn, timestamp, page_id, delta_id;
	uint64_t mask_len, payload_len;
	uint32_t intent_len;
	int32_t location;
	uint64_t page_size;
} __attribute__((packed));
_Static_assert(sizeof(struct rec_hdr) == MMSB_LOG_V3_FIXED, "v3 record header layout");

static size_t mask_bytes(uint64_t n)
{
	return (size_t)((n + 7) / 8);
}

/* Append a whole frame (length, CRC32C of length+body, body) for the body in rec + tail. */
static int frame_begin(struct mmsb_buf *b, size_t body_len, size_t *at)
{
	/* a frame the reader would refuse is never written */
	if (body_len > MMSB_LOG_MAX_FRAME - MMSB_LOG_V3_FRAME_HDR)
		return -E2BIG;
	if (mmsb__buf_reserve(b, MMSB_LOG_V3_FRAME_HDR + body_len))
		return -ENOMEM;
	*at = b->len;
	MMSB__PUT(b, (uint32_t)body_len);
	MMSB__PUT(b, (uint32_t)0); /* CRC, filled by frame_end() */
	return 0;
}

static void frame_end(struct mmsb_buf *b, size_t at)
{
	uint32_t crc = mmsb__crc32c(0, b->p + at, 4);

	crc = mmsb__crc32c(crc, b->p + at + MMSB_LOG_V3_FRAME_HDR,
			   b->len - at - MMSB_LOG_V3_FRAME_HDR);
	memcpy(b->p + at + 4, &crc, 4);
}

static int encode_delta(struct mmsb_buf *b, const struct mmsb_delta *d)
{
	size_t src_len = strlen(d->source), in_len = d->intent ? strlen(d->intent) : 0;
	size_t mb = mask_bytes(d->mask_len), body, at;
	struct rec_hdr h = {
		.kind = MMSB_REC_DELTA,
		.flags = (uint8_t)((d->sparse ? REC_FLAG_SPARSE : 0) |
				   (d->offset ? REC_FLAG_OFFSET : 0)),
		.source_len = (uint16_t)src_len,
		.epoch = d->epoch,
		.lsn = d->lsn,
		.timestamp = d->timestamp,
		.page_id = d->page_id,
		.delta_id = d->id,
		.mask_len = d->mask_len,
		.payload_len = d->payload_len,
		.intent_len = (uint32_t)in_len,
		.page_size = d->offset,
	};
	int err;

	if (src_len > UINT16_MAX || in_len > UINT32_MAX)
		return -E2BIG;
	body = sizeof(h) + mb + d->payload_len + src_len + in_len;
	err = frame_begin(b, body, &at);
	if (err)
		return err;
	mmsb__put(b, &h, sizeof(h));
	/* pack the mask LSB-first: a dense full-page delta costs 1.125x the page, not 2x */
	if (d->bits)
		memcpy(b->p + b->len, d->bits, mb); /* packed by the diff, in its pass */
	else
		mmsb__pack_mask(d->mask, d->mask_len, b->p + b->len);
	b->len += mb;
	mmsb__put(b, d->payload, d->payload_len);
	mmsb__put(b, d->source, src_len);
	mmsb__put(b, d->intent, in_len);
	frame_end(b, at);
	return 0;
}

static int encode_page(struct mmsb_buf *b, enum mmsb_log_kind kind, uint64_t lsn, uint64_t id,
		       uint64_t size, int loc)
{
	struct rec_hdr h = {
		.kind = (uint8_t)kind,
		.lsn = lsn,
		.timestamp = mmsb__now_ns(CLOCK_REALTIME),
		.page_id = id,
		.location = loc,
		.page_size = size,
	};
	size_t at;
	int err = frame_begin(b, sizeof(h), &at);

	if (err)
		return err;
	mmsb__put(b, &h, sizeof(h));
	frame_end(b, at);
	return 0;
}

static void encode_header(uint8_t out[MMSB_LOG_V3_HDR_LEN], uint64_t log_id, uint64_t created)
{
	uint32_t v = 3, hl = MMSB_LOG_V3_HDR_LEN, crc;

	memcpy(out, MMSB_LOG_MAGIC, 8);
	memcpy(out + 8, &v, 4);
	memcpy(out + 12, &hl, 4);
	memcpy(out + 16, &log_id, 8);
	memcpy(out + 24, &created, 8);
	crc = mmsb__crc32c(0, out, 32);
	memcpy(out + 32, &crc, 4);
}

/* ---- the reader, over a read-only mapping ---- */

struct mmsb_log_reader {
	struct mmsb_map map;
	int version;
	uint64_t log_id;
	uint64_t off, frame;
	uint64_t last_lsn;
	struct mmsb_delta *cur;
	int err;
};

/* Is there a well-formed v3 frame (length and CRC) at off? */
static bool frame_ok_at(const uint8_t *p, uint64_t len, uint64_t off)
{
	uint32_t n, crc;

	if (off > len || len - off < MMSB_LOG_V3_FRAME_HDR + MMSB_LOG_V3_FIXED)
		return false;
	memcpy(&n, p + off, 4);
	memcpy(&crc, p + off + 4, 4);
	if (n < MMSB_LOG_V3_FIXED || n > len - off - MMSB_LOG_V3_FRAME_HDR)
		return false;
	return mmsb__crc32c(mmsb__crc32c(0, p + off, 4), p + off + MMSB_LOG_V3_FRAME_HDR, n) == crc;
}

/*
 * A v3 header whose version field was damaged: its CRC holds once the version reads 3 again, or a
 * well-formed v3 frame follows where the first one belongs. Either way it is damage, never the
 * v1/v2 (or unknown) format its version byte now claims: acting on that byte before the CRC would
 * have recover cut every intact frame of the log.
 */
static bool damaged_v3_header(const uint8_t *p, uint64_t len)
{
	uint8_t h[32];
	uint32_t v = 3, crc;

	if (len < MMSB_LOG_V3_HDR_LEN)
		return false;
	memcpy(h, p, 32);
	memcpy(h + 8, &v, 4);
	memcpy(&crc, p + 32, 4);
	return crc == mmsb__crc32c(0, h, 32) || frame_ok_at(p, len, MMSB_LOG_V3_HDR_LEN);
}

static int parse_header(struct mmsb_log_reader *r)
{
	const uint8_t *p = r->map.p;
	uint32_t v, hl, crc;

	if (!r->map.len)
		return -MMSB_ERR_TRUNCATED; /* an empty file is not a log */
	/* a short file is a header torn at creation only when what is there is a header's start */
	if (memcmp(p, MMSB_LOG_MAGIC, min_t(size_t, r->map.len, 8)))
		return -MMSB_ERR_BAD_MAGIC;
	if (r->map.len < 12)
		return -MMSB_ERR_TRUNCATED;
	memcpy(&v, p + 8, 4);
	if (v != 3 && damaged_v3_header(p, r->map.len))
		return -MMSB_ERR_CHECKSUM;
	if (v == 1 || v == 2) {
		r->version = (int)v;
		r->off = 12;
		return 0;
	}
	if (v != 3)
		return -MMSB_ERR_BAD_VERSION;
	if (r->map.len < MMSB_LOG_V3_HDR_LEN)
		return -MMSB_ERR_TRUNCATED;
	memcpy(&hl, p + 12, 4);
	memcpy(&crc, p + 32, 4);
	if (hl != MMSB_LOG_V3_HDR_LEN || crc != mmsb__crc32c(0, p, 32))
		return -MMSB_ERR_CHECKSUM;
	memcpy(&r->log_id, p + 16, 8);
	r->version = 3;
	r->off = MMSB_LOG_V3_HDR_LEN;
	return 0;
}

struct mmsb_log_reader *mmsb__log_reader_open(const char *path)
{
	struct mmsb_log_reader *r;
	int err;

	if (!path)
		return mmsb__err_ptr(-EINVAL);
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	err = mmsb__map_file(path, &r->map);
	if (!err)
		err = parse_header(r);
	if (err) {
		mmsb__log_reader_close(r);
		return mmsb__err_ptr(err);
	}
	return r;
}

struct mmsb_log_reader *mmsb_log_reader_open(const char *path)
{
	MMSB_API_GATE(mmsb_log_reader_open, path);
	return mmsb__log_reader_open(path);
}

void mmsb__log_reader_close(struct mmsb_log_reader *r)
{
	if (!r)
		return;
	mmsb__delta_free(r->cur);
	mmsb__unmap_file(&r->map);
	free(r);
}

void mmsb_log_reader_close(struct mmsb_log_reader *r)
{
	MMSB_API_GATE(mmsb_log_reader_close, r);
	mmsb__log_reader_close(r);
}

int mmsb__log_reader_version(const struct mmsb_log_reader *r)
{
	return r ? r->version : -EINVAL;
}

int mmsb_log_reader_version(const struct mmsb_log_reader *r)
{
	MMSB_API_GATE(mmsb_log_reader_version, r);
	return mmsb__log_reader_version(r);
}

uint64_t mmsb__log_reader_log_id(const struct mmsb_log_reader *r)
{
	return r ? r->log_id : 0;
}

uint64_t mmsb_log_reader_log_id(const struct mmsb_log_reader *r)
{
	MMSB_API_GATE(mmsb_log_reader_log_id, r);
	return mmsb__log_reader_log_id(r);
}

uint64_t mmsb_log_reader_offset(const struct mmsb_log_reader *r)
{
	MMSB_API_GATE(mmsb_log_reader_offset, r);
	return r ? r->off : 0;
}

uint64_t mmsb_log_reader_frame(const struct mmsb_log_reader *r)
{
	MMSB_API_GATE(mmsb_log_reader_frame, r);
	return r ? r->frame : 0;
}

/* Fill a fresh delta from decoded fields; NULL when allocation fails. */
static struct mmsb_delta *make_delta(uint64_t page_id, const uint8_t *mask, uint64_t mask_len,
				     bool packed, const uint8_t *payload, uint64_t payload_len,
				     bool sparse, const uint8_t *src, size_t src_len,
				     const uint8_t *intent, size_t intent_len)
{
	struct mmsb_delta *d = mmsb__delta_alloc(page_id, mask_len, payload_len, sparse);

	if (!d)
		return NULL;
	if (packed) {
		mmsb__unpack_mask(mask, mask_len, d->mask);
	} else {
		for (size_t i = 0; i < mask_len; i++)
			d->mask[i] = mask[i] != 0;
	}
	d->mask_count = mmsb__popcount_bytes(d->mask, mask_len);
	memcpy(d->payload, payload, payload_len);
	d->source = malloc(src_len + 1);
	if (!d->source) {
		free(d);
		return NULL;
	}
	d->owns_source = true;
	memcpy(d->source, src, src_len);
	d->source[src_len] = 0;
	if (intent_len) {
		d->intent = malloc(intent_len + 1);
		if (!d->intent) {
			mmsb__delta_free(d);
			return NULL;
		}
		memcpy(d->intent, intent, intent_len);
		d->intent[intent_len] = 0;
	}
	return d;
}

/* Validate and decode a v3 body. */
static int decode_v3(struct mmsb_log_reader *r, const uint8_t *body, size_t len,
		     struct mmsb_log_record *rec)
{
	struct rec_hdr h;
	uint64_t need;
	const uint8_t *mask, *payload, *src, *intent;
	size_t mb;

	if (len < sizeof(h))
		return -MMSB_ERR_CORRUPT;
	memcpy(&h, body, sizeof(h));
	if (h.kind > MMSB_REC_PAGE_FREE || (h.flags & ~(REC_FLAG_SPARSE | REC_FLAG_OFFSET)) ||
	    (h.kind != MMSB_REC_DELTA && (h.flags & REC_FLAG_OFFSET)) || !h.page_id ||
	    h.page_id > MMSB_ID_MAX || h.delta_id > MMSB_ID_MAX)
		return -MMSB_ERR_CORRUPT;
	/* LSNs start at 1 and run without gaps: a frame out of sequence is not from this writer */
	if (!h.lsn || h.lsn > MMSB_ID_MAX || (r->last_lsn && h.lsn != r->last_lsn + 1))
		return -MMSB_ERR_CORRUPT;
	rec->kind = h.kind;
	rec->lsn = h.lsn;
	rec->timestamp = h.timestamp;
	rec->page_id = h.page_id;
	rec->page_size = h.page_size;
	rec->location = h.location;
	rec->delta = NULL;
	if (h.kind != MMSB_REC_DELTA) {
		if (len != sizeof(h) || h.mask_len || h.payload_len || h.source_len || h.intent_len)
			return -MMSB_ERR_CORRUPT;
		if (h.kind == MMSB_REC_PAGE_CREATE &&
		    (!h.page_size || h.page_size > MMSB_PAGE_SIZE_MAX ||
		     h.location < MMSB_LOC_CPU || h.location > MMSB_LOC_UNIFIED))
			return -MMSB_ERR_CORRUPT;
		if (h.kind == MMSB_REC_PAGE_FREE && (h.page_size || h.location))
			return -MMSB_ERR_CORRUPT;
		r->last_lsn = h.lsn;
		return 0;
	}
	/* every length is checked against the frame before anything is sized from it */
	/* a range write's offset lies inside the largest page; without the flag it is 0 */
	if (h.mask_len > (uint64_t)len * 8 || h.payload_len > len ||
	    ((h.flags & REC_FLAG_OFFSET) ? !h.page_size || h.page_size >= MMSB_PAGE_SIZE_MAX :
					   h.page_size != 0))
		return -MMSB_ERR_CORRUPT;
	mb = mask_bytes(h.mask_len);
	need = sizeof(h) + mb + h.payload_len + h.source_len + (uint64_t)h.intent_len;
	if (need != len)
		return -MMSB_ERR_CORRUPT;
	mask = body + sizeof(h);
	payload = mask + mb;
	src = payload + h.payload_len;
	intent = src + h.source_len;
	if (!mmsb__utf8_valid(src, h.source_len) || memchr(src, 0, h.source_len) ||
	    !mmsb__utf8_valid(intent, h.intent_len) || memchr(intent, 0, h.intent_len))
		return -MMSB_ERR_CORRUPT;
	/* bits past mask_len in the last byte must be clear */
	if ((h.mask_len & 7) && (mask[mb - 1] >> (h.mask_len & 7)))
		return -MMSB_ERR_CORRUPT;
	uint64_t pop = 0;

	for (size_t i = 0; i < mb; i++)
		pop += (uint64_t)__builtin_popcount(mask[i]);
	if ((h.flags & REC_FLAG_SPARSE) ? pop != h.payload_len : h.payload_len != h.mask_len)
		return -MMSB_ERR_CORRUPT;
	rec->delta = make_delta(h.page_id, mask, h.mask_len, true, payload, h.payload_len,
				h.flags & REC_FLAG_SPARSE, src, h.source_len, intent, h.intent_len);
	if (!rec->delta)
		return -ENOMEM;
	rec->delta->id = h.delta_id;
	rec->delta->offset = (h.flags & REC_FLAG_OFFSET) ? h.page_size : 0;
	rec->page_size = 0;
	rec->delta->epoch = h.epoch;
	rec->delta->lsn = h.lsn;
	rec->delta->timestamp = h.timestamp;
	r->last_lsn = h.lsn;
	return 0;
}

/* Is there a well-formed frame anywhere in [from, end)? Then the damage is not a torn tail. */
static bool valid_frame_after(const struct mmsb_log_reader *r, uint64_t from)
{
	const uint8_t *p = r->map.p;
	uint64_t end = r->map.len;

	for (uint64_t o = from; o + MMSB_LOG_V3_FRAME_HDR + MMSB_LOG_V3_FIXED <= end; o++) {
		uint32_t len, crc, c;

		memcpy(&len, p + o, 4);
		if (len < MMSB_LOG_V3_FIXED || len > end - o - MMSB_LOG_V3_FRAME_HDR)
			continue;
		memcpy(&crc, p + o + 4, 4);
		c = mmsb__crc32c(0, p + o, 4);
		if (mmsb__crc32c(c, p + o + MMSB_LOG_V3_FRAME_HDR, len) == crc)
			return true;
	}
	return false;
}

static int next_v3(struct mmsb_log_reader *r, struct mmsb_log_record *rec)
{
	const uint8_t *p = r->map.p + r->off;
	uint64_t left = r->map.len - r->off;
	uint32_t len, crc, c;
	int err;

	if (left < MMSB_LOG_V3_FRAME_HDR)
		return -MMSB_ERR_TORN;
	memcpy(&len, p, 4);
	memcpy(&crc, p + 4, 4);
	if (len > left - MMSB_LOG_V3_FRAME_HDR) {
		/* runs past the end: torn, unless whole frames follow (then the length is damaged) */
		return valid_frame_after(r, r->off + 1) ? -MMSB_ERR_CORRUPT : -MMSB_ERR_TORN;
	}
	c = mmsb__crc32c(0, p, 4);
	if (mmsb__crc32c(c, p + MMSB_LOG_V3_FRAME_HDR, len) != crc) {
		if (r->off + MMSB_LOG_V3_FRAME_HDR + len == r->map.len &&
		    !valid_frame_after(r, r->off + 1))
			return -MMSB_ERR_TORN;
		return -MMSB_ERR_CHECKSUM;
	}
	err = decode_v3(r, p + MMSB_LOG_V3_FRAME_HDR, len, rec);
	if (err)
		return err;
	rec->frame_len = MMSB_LOG_V3_FRAME_HDR + (uint64_t)len;
	return 0;
}

/* v1/v2: fields back to back, no checksum; lengths checked against what is left. */
static int next_v12(struct mmsb_log_reader *r, struct mmsb_log_record *rec)
{
	struct mmsb_cursor c = { .p = r->map.p, .len = r->map.len, .off = r->off };
	uint64_t delta_id, page_id, timestamp;
	uint32_t epoch, mask_len, payload_len, src_len, meta_len = 0;
	const uint8_t *mask, *payload, *src, *meta = NULL;
	uint8_t sparse;

	if (!mmsb__cur_get(&c, &delta_id, 8) || !mmsb__cur_get(&c, &page_id, 8) ||
	    !mmsb__cur_get(&c, &epoch, 4) || !mmsb__cur_get(&c, &mask_len, 4) ||
	    !(mask = mmsb__cur_take(&c, mask_len)) || !mmsb__cur_get(&c, &payload_len, 4) ||
	    !(payload = mmsb__cur_take(&c, payload_len)) || !mmsb__cur_get(&c, &sparse, 1) ||
	    !mmsb__cur_get(&c, &timestamp, 8) || !mmsb__cur_get(&c, &src_len, 4) ||
	    !(src = mmsb__cur_take(&c, src_len)))
		return -MMSB_ERR_TORN;
	if (r->version == 2 &&
	    (!mmsb__cur_get(&c, &meta_len, 4) || !(meta = mmsb__cur_take(&c, meta_len))))
		return -MMSB_ERR_TORN;
	/* the original's ids counted from 1; ids past ours could not be converted to v3 */
	if (sparse > 1 || !page_id || page_id > MMSB_ID_MAX || delta_id > MMSB_ID_MAX)
		return -MMSB_ERR_CORRUPT;
	size_t pop = 0;

	for (size_t i = 0; i < mask_len; i++)
		pop += mask[i] != 0;
	if (sparse ? pop != payload_len : payload_len != mask_len)
		return -MMSB_ERR_CORRUPT;
	/* the original decoded the source lossily; we refuse what is not text */
	if (!mmsb__utf8_valid(src, src_len) || memchr(src, 0, src_len) ||
	    (meta_len && (!mmsb__utf8_valid(meta, meta_len) || memchr(meta, 0, meta_len))))
		return -MMSB_ERR_CORRUPT;
	rec->kind = MMSB_REC_DELTA;
	rec->lsn = 0;
	rec->timestamp = timestamp;
	rec->page_id = page_id;
	rec->page_size = 0;
	rec->location = 0;
	rec->delta = make_delta(page_id, mask, mask_len, false, payload, payload_len, sparse, src,
				src_len, meta, meta_len);
	if (!rec->delta)
		return -ENOMEM;
	rec->delta->id = delta_id;
	rec->delta->epoch = epoch;
	rec->delta->timestamp = timestamp;
	rec->frame_len = c.off - r->off;
	return 0;
}

int mmsb__log_reader_next(struct mmsb_log_reader *r, struct mmsb_log_record *rec)
{
	int err;

	if (!r || !rec)
		return -EINVAL;
	if (r->err)
		return r->err;
	mmsb__delta_free(r->cur);
	r->cur = NULL;
	if (r->off == r->map.len)
		return 0;
	err = r->version == 3 ? next_v3(r, rec) : next_v12(r, rec);
	if (err) {
		r->err = err;
		return err;
	}
	rec->offset = r->off;
	r->cur = rec->delta;
	r->off += rec->frame_len;
	r->frame++;
	return 1;
}

int mmsb_log_reader_next(struct mmsb_log_reader *r, struct mmsb_log_record *rec)
{
	MMSB_API_GATE(mmsb_log_reader_next, r, rec);
	return mmsb__log_reader_next(r, rec);
}

int mmsb_log_summarize(const char *path, struct mmsb_log_summary *out)
{
	MMSB_API_GATE(mmsb_log_summarize, path, out);
	struct mmsb_log_reader *r;
	struct mmsb_log_record rec;
	struct stat st;
	int err;

	if (!path || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (stat(path, &st))
		return -errno;
	out->file_size = (uint64_t)st.st_size;
	/* never open a FIFO or a device: it may block, and it is not a log */
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	r = mmsb__log_reader_open(path);
	if (!r)
		return -errno;
	out->version = r->version;
	out->log_id = r->log_id;
	while ((err = mmsb__log_reader_next(r, &rec)) > 0) {
		if (!out->records++) {
			out->first_lsn = rec.lsn;
			out->first_ts = rec.timestamp;
		}
		out->last_lsn = rec.lsn;
		if (rec.timestamp > out->last_ts)
			out->last_ts = rec.timestamp;
		switch (rec.kind) {
		case MMSB_REC_DELTA:
			out->deltas++;
			out->total_bytes += rec.delta->mask_len + rec.delta->payload_len + 32 +
					    (rec.delta->intent ? strlen(rec.delta->intent) : 0);
			if (rec.delta->epoch > out->last_epoch)
				out->last_epoch = rec.delta->epoch;
			break;
		case MMSB_REC_PAGE_CREATE:
			out->page_creates++;
			break;
		case MMSB_REC_PAGE_FREE:
			out->page_frees++;
			break;
		}
	}
	out->valid_bytes = r->off;
	if (err < 0) {
		out->error = err;
		out->bad_offset = r->off;
		out->bad_frame = r->frame;
	}
	mmsb__log_reader_close(r);
	return err < 0 ? err : 0;
}

/* Copy [from, end) of fd into the first free PATH.torn[.N], synced. */
static int save_torn(const char *path, int fd, uint64_t from, uint64_t end)
{
	char name[PATH_MAX];
	uint8_t buf[1 << 16];
	int out = -1, err = 0;

	for (int i = 0; i < 100 && out < 0; i++) {
		int n = i ? snprintf(name, sizeof(name), "%s.torn.%d", path, i) :
			    snprintf(name, sizeof(name), "%s.torn", path);

		if (n < 0 || (size_t)n >= sizeof(name))
			return -ENAMETOOLONG;
		out = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (out < 0 && errno != EEXIST)
			return -errno;
	}
	if (out < 0)
		return -EEXIST;
	while (from < end && !err) {
		ssize_t n = pread(fd, buf, min_t(uint64_t, sizeof(buf), end - from), (off_t)from);

		if (n <= 0) {
			err = n < 0 ? -errno : -EIO;
			break;
		}
		err = mmsb__write_all(out, buf, (size_t)n);
		from += (uint64_t)n;
	}
	if (!err && fsync(out))
		err = -errno;
	close(out);
	if (!err)
		err = mmsb__fsync_dir(name);
	if (err)
		unlink(name);
	return err;
}

/* Scan a log: the first bad frame's offset and error (0 when clean), and its version. */
static int scan(const char *path, uint64_t *good_end, uint64_t *next_lsn, uint64_t *log_id,
		int *version)
{
	struct mmsb_log_reader *r = mmsb__log_reader_open(path);
	struct mmsb_log_record rec;
	int err;

	if (!r)
		return -errno;
	while ((err = mmsb__log_reader_next(r, &rec)) > 0)
		;
	*good_end = r->off;
	if (next_lsn)
		*next_lsn = r->last_lsn + 1;
	if (log_id)
		*log_id = r->log_id;
	*version = r->version;
	mmsb__log_reader_close(r);
	return err;
}

static uint64_t new_log_id(void)
{
	uint64_t id;

	if (getrandom(&id, sizeof(id), GRND_NONBLOCK) != sizeof(id))
		id = mmsb__now_ns(CLOCK_REALTIME) ^ ((uint64_t)getpid() << 32);
	return id | 1; /* never 0: 0 means "no log" in counters and checkpoints */
}

int mmsb_log_recover(const char *path, uint64_t *cut_bytes)
{
	MMSB_API_GATE(mmsb_log_recover, path, cut_bytes);
	uint64_t good = 0, cut = 0;
	uint8_t hdr[MMSB_LOG_V3_HDR_LEN];
	int fd, err, version = 0;
	struct stat st;

	if (!path)
		return -EINVAL;
	fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* a state appending to this log holds the lock: never cut under a live writer */
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		err = errno == EWOULDBLOCK ? -EBUSY : -errno;
		goto out;
	}
	if (fstat(fd, &st)) {
		err = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode) || !st.st_size) {
		/* not a log, and nothing to repair: say so rather than "clean" */
		err = S_ISREG(st.st_mode) ? -MMSB_ERR_TRUNCATED : -EINVAL;
		goto out;
	}
	/*
	 * Only a torn tail is cut. Anything else the reader refuses (a bad magic, an unknown
	 * version, a header failing its CRC, damage followed by good frames) is returned with the
	 * file untouched: recovery would throw data away.
	 */
	err = scan(path, &good, NULL, NULL, &version);
	if (err == -MMSB_ERR_TRUNCATED) {
		/* a v3 header torn at creation: its bytes go aside, a fresh header takes its place */
		good = 0;
		err = -MMSB_ERR_TORN;
		version = 0;
	}
	if (err != -MMSB_ERR_TORN)
		goto out;
	cut = (uint64_t)st.st_size - good;
	err = save_torn(path, fd, good, (uint64_t)st.st_size);
	if (!err && ftruncate(fd, (off_t)good))
		err = -errno;
	if (!err && !version) {
		encode_header(hdr, new_log_id(), mmsb__now_ns(CLOCK_REALTIME));
		if (pwrite(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr))
			err = errno ? -errno : -EIO;
	}
	if (!err && fsync(fd))
		err = -errno;
out:
	close(fd);
	if (!err && cut_bytes)
		*cut_bytes = cut;
	return err;
}

int mmsb_log_convert(const char *in, const char *out)
{
	MMSB_API_GATE(mmsb_log_convert, in, out);
	struct mmsb_log_reader *r;
	struct mmsb_log_record rec;
	struct mmsb_buf b = { 0 };
	struct mmsb_wfile w;
	uint8_t hdr[MMSB_LOG_V3_HDR_LEN];
	uint64_t lsn = 1;
	int err;

	if (!in || !out)
		return -EINVAL;
	r = mmsb__log_reader_open(in);
	if (!r)
		return -errno;
	err = mmsb__wfile_open(&w, out);
	if (err) {
		mmsb__log_reader_close(r);
		return err;
	}
	encode_header(hdr, new_log_id(), mmsb__now_ns(CLOCK_REALTIME));
	mmsb__wfile_put(&w, hdr, sizeof(hdr));
	while ((err = mmsb__log_reader_next(r, &rec)) > 0) {
		b.len = 0;
		if (rec.kind == MMSB_REC_DELTA) {
			rec.delta->lsn = lsn++;
			err = encode_delta(&b, rec.delta);
		} else {
			err = encode_page(&b, rec.kind, lsn++, rec.page_id, rec.page_size,
					  rec.location);
		}
		if (err)
			break;
		mmsb__wfile_put(&w, b.p, b.len);
	}
	mmsb__buf_free(&b);
	mmsb__log_reader_close(r);
	if (err) {
		mmsb__wfile_abort(&w);
		return err;
	}
	return mmsb__wfile_commit(&w);
}

/* ---- the writer ---- */

int mmsb__log_open(const char *path, enum mmsb_log_mode mode, enum mmsb_durability dur,
		   struct mmsb_log **out)
{
	uint8_t hdr[MMSB_LOG_V3_HDR_LEN];
	struct mmsb_log *l;
	struct stat st;
	int err;

	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->dur = dur;
	l->next_lsn = 1;
	l->path = strdup(path);
	if (!l->path) {
		free(l);
		return -ENOMEM;
	}
	l->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (l->fd < 0) {
		err = -errno;
		goto fail;
	}
	/* one writer per log file, across states and processes */
	if (flock(l->fd, LOCK_EX | LOCK_NB)) {
		err = errno == EWOULDBLOCK ? -EBUSY : -errno;
		goto fail;
	}
	if (fstat(l->fd, &st)) {
		err = -errno;
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		err = -EINVAL;
		goto fail;
	}
	if (st.st_size && mode == MMSB_LOG_CREATE) {
		err = -EEXIST;
		goto fail;
	}
	if (st.st_size && mode == MMSB_LOG_TRUNCATE) {
		if (ftruncate(l->fd, 0)) {
			err = -errno;
			goto fail;
		}
		st.st_size = 0;
	}
	if (st.st_size) {
		/* continue a log only when every frame in it is whole */
		int version = 0;

		err = scan(path, &l->size, &l->next_lsn, &l->log_id, &version);
		if (!err && version != 3)
			err = -MMSB_ERR_BAD_VERSION;
		if (err)
			goto fail;
		if (lseek(l->fd, (off_t)l->size, SEEK_SET) < 0) {
			err = -errno;
			goto fail;
		}
		*out = l;
		return 0;
	}
	l->log_id = new_log_id();
	encode_header(hdr, l->log_id, mmsb__now_ns(CLOCK_REALTIME));
	err = mmsb__write_all(l->fd, hdr, sizeof(hdr));
	/* a new log is durable from its first byte, unless the policy says nothing is */
	if (!err && dur != MMSB_DURABLE_NONE && fdatasync(l->fd))
		err = -errno;
	if (!err && dur != MMSB_DURABLE_NONE)
		err = mmsb__fsync_dir(path);
	if (err)
		goto fail;
	l->size = sizeof(hdr);
	*out = l;
	return 0;
fail:
	mmsb__log_close(l);
	return err;
}

void mmsb__log_close(struct mmsb_log *l)
{
	if (!l)
		return;
	if (l->fd >= 0)
		close(l->fd);
	mmsb__buf_free(&l->buf);
	free(l->path);
	free(l);
}

static int log_fdatasync(struct mmsb_log *l)
{
	int err = 0;

	MMSB_TRACE(LOG_SYNC_BEGIN, l->fd);
	l->syncs++;
	if (fdatasync(l->fd))
		err = -errno;
	else
		l->wb_from = l->size;
	MMSB_TRACE(LOG_SYNC_END, err);
	return err;
}

static int log_write(struct mmsb_log *l, bool sync)
{
	uint64_t start = l->size;
	int err = 0;

	if (l->failed)
		return -MMSB_ERR_LOG_FAILED;
	if (l->buf.len) {
		MMSB_TRACE(LOG_APPEND_BEGIN, l->buf.len, l->pending);
		err = mmsb__write_all(l->fd, l->buf.p, l->buf.len);
		MMSB_TRACE(LOG_APPEND_END, l->buf.len, err);
		l->writes++;
		l->pending = 0;
		if (!err) {
			l->size += l->buf.len;
			l->bytes += l->buf.len;
		}
	}
	if (!err && sync && l->buf.len)
		err = log_fdatasync(l);
	else if (!err && l->size >= l->wb_from + LOG_WRITEBACK) {
		/*
		 * Unsynced (none): start the write-back of what piled up, without waiting for it.
		 * Otherwise the kernel keeps up to a tenth of memory dirty, and the next checkpoint's
		 * fdatasync pays for every frame since the log was opened (91 ms after a million
		 * small deltas here, 11 ms for the same checkpoint once they were out): its cost would
		 * follow the log's history. Every LOG_WRITEBACK bytes, not every write: submitting
		 * the I/O is work done in this thread.
		 */
		sync_file_range(l->fd, (off_t)l->wb_from, (off_t)(l->size - l->wb_from),
				SYNC_FILE_RANGE_WRITE);
		l->wb_from = l->size;
	}
	if (err) {
		/*
		 * A short write leaves part of a frame on disk, and after a failed fdatasync the
		 * kernel may have dropped the dirty pages: cut back to the last good size and
		 * refuse further appends rather than pretend (the PostgreSQL fsync lesson).
		 */
		if (ftruncate(l->fd, (off_t)start) == 0)
			lseek(l->fd, (off_t)start, SEEK_SET);
		l->size = start;
		l->failed = true;
		pr_warn("log %s: write failed, log disabled: %s\n", l->path, mmsb__strerror(err));
	}
	l->buf.len = 0;
	return err;
}

int mmsb__log_buffer(struct mmsb_log *l, struct mmsb_delta *d)
{
	size_t before = l->buf.len;
	int err;

	if (l->failed)
		return -MMSB_ERR_LOG_FAILED;
	if (l->next_lsn > MMSB_ID_MAX)
		return -ERANGE;
	d->lsn = l->next_lsn;
	err = encode_delta(&l->buf, d);
	if (err) {
		l->buf.len = before;
		d->lsn = 0;
		return err;
	}
	l->next_lsn++;
	l->records++;
	l->pending++;
	return 0;
}

struct mmsb_log_mark mmsb__log_mark(const struct mmsb_log *l)
{
	return (struct mmsb_log_mark){ l->buf.len, l->next_lsn, l->records, l->pending };
}

void mmsb__log_rollback(struct mmsb_log *l, struct mmsb_log_mark m)
{
	l->buf.len = m.buf_len;
	l->next_lsn = m.next_lsn;
	l->records = m.records;
	l->pending = m.pending;
}

int mmsb__log_commit_batch(struct mmsb_log *l)
{
	return l->dur == MMSB_DURABLE_NONE ? mmsb__log_commit(l) : log_write(l, true);
}

int mmsb__log_page(struct mmsb_log *l, enum mmsb_log_kind kind, uint64_t id, uint64_t size, int loc)
{
	size_t before = l->buf.len;
	int err;

	if (l->failed)
		return -MMSB_ERR_LOG_FAILED;
	if (l->next_lsn > MMSB_ID_MAX)
		return -ERANGE;
	err = encode_page(&l->buf, kind, l->next_lsn, id, size, loc);
	if (err) {
		l->buf.len = before;
		return err;
	}
	l->next_lsn++;
	l->records++;
	l->pending++;
	if (l->dur == MMSB_DURABLE_EVERY)
		return log_write(l, true);
	return 0;
}

int mmsb__log_commit(struct mmsb_log *l)
{
	switch (l->dur) {
	case MMSB_DURABLE_BATCH:
		return log_write(l, true);
	case MMSB_DURABLE_NONE:
		return l->buf.len >= LOG_BUF_FLUSH ? log_write(l, false) : 0;
	case MMSB_DURABLE_EVERY:
		break;
	}
	return l->failed ? -MMSB_ERR_LOG_FAILED : 0;
}

int mmsb__log_sync(struct mmsb_log *l)
{
	int err;

	if (l->failed)
		return -MMSB_ERR_LOG_FAILED;
	err = log_write(l, false);
	return err ? err : log_fdatasync(l);
}

int mmsb__log_flush(struct mmsb_log *l)
{
	return l->dur == MMSB_DURABLE_NONE ? log_write(l, false) : mmsb__log_sync(l);
}

enum mmsb_durability mmsb__log_durability(const struct mmsb_log *l)
{
	return l->dur;
}

uint64_t mmsb__log_next_lsn(const struct mmsb_log *l)
{
	return l->next_lsn;
}

uint64_t mmsb__log_id(const struct mmsb_log *l)
{
	return l->log_id;
}

const char *mmsb__log_path(const struct mmsb_log *l)
{
	return l->path;
}

void mmsb__log_stats(const struct mmsb_log *l, struct mmsb_stats *st)
{
	st->log_records = l->records;
	st->log_bytes = l->bytes;
	st->log_writes = l->writes;
	st->log_syncs = l->syncs;
}

void mmsb__log_stats_reset(struct mmsb_log *l)
{
	l->records = l->bytes = l->writes = l->syncs = 0;
}
