/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Byte-exact fixtures of the original's formats (log versions 1 and 2, checkpoint version 2),
 * built field by field from the layouts in docs/formats.md (all little-endian, no padding).
 */
#ifndef __MMSB_FIXTURES_H
#define __MMSB_FIXTURES_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct fx {
	uint8_t b[1 << 16];
	size_t n;
};

static inline void fx_raw(struct fx *f, const void *p, size_t n)
{
	if (n)
		memcpy(f->b + f->n, p, n);
	f->n += n;
}
static inline void fx_u8(struct fx *f, uint8_t v)
{
	fx_raw(f, &v, 1);
}
static inline void fx_u32(struct fx *f, uint32_t v)
{
	fx_raw(f, &v, 4);
}
static inline void fx_u64(struct fx *f, uint64_t v)
{
	fx_raw(f, &v, 8);
}

/* One v1/v2 TLog frame (section 3.1); mask one byte per entry. */
static inline void fx_log_frame(struct fx *f, int version, uint64_t delta_id, uint64_t page_id,
				uint32_t epoch, const uint8_t *mask, uint32_t mask_len,
				const uint8_t *payload, uint32_t payload_len, uint8_t sparse,
				uint64_t ts, const char *source, const char *intent)
{
	fx_u64(f, delta_id);
	fx_u64(f, page_id);
	fx_u32(f, epoch);
	fx_u32(f, mask_len);
	fx_raw(f, mask, mask_len);
	fx_u32(f, payload_len);
	fx_raw(f, payload, payload_len);
	fx_u8(f, sparse);
	fx_u64(f, ts);
	fx_u32(f, (uint32_t)strlen(source));
	fx_raw(f, source, strlen(source));
	if (version == 2) {
		uint32_t il = intent ? (uint32_t)strlen(intent) : 0;

		fx_u32(f, il);
		fx_raw(f, intent, il);
	}
}

static inline void fx_log_header(struct fx *f, uint32_t version)
{
	fx_raw(f, "MMSBLOG1", 8);
	fx_u32(f, version);
}

/* The reference v2 log: three frames, dense and sparse, one with intent metadata. */
static inline void fx_v2_log(struct fx *f, int version)
{
	const uint8_t m1[] = { 1, 1, 0, 1 }, p1[] = { 0x10, 0x11, 0x12, 0x13 };
	const uint8_t m2[] = { 0, 1, 0, 0, 1 }, p2[] = { 0xa1, 0xa4 };
	const uint8_t m3[] = { 1, 1 }, p3[] = { 0x7f, 0x80 };

	f->n = 0;
	fx_log_header(f, (uint32_t)version);
	fx_log_frame(f, version, 1, 1, 1, m1, 4, p1, 4, 0, 0, "router", NULL);
	fx_log_frame(f, version, 2, 1, 2, m2, 5, p2, 2, 1, 0, "ffi_delta_new", "{\"k\":1}");
	fx_log_frame(f, version, 1, 2, 1, m3, 2, p3, 2, 0, 1700000000000000000ull, "api", NULL);
}

static inline int fx_write(const char *path, const void *p, size_t n)
{
	FILE *fp = fopen(path, "wb");

	if (!fp)
		return -1;
	if (n && fwrite(p, 1, n, fp) != n) {
		fclose(fp);
		return -1;
	}
	return fclose(fp);
}

/* Read a whole file into a malloc'ed buffer. */
static inline uint8_t *fx_read(const char *path, size_t *n)
{
	struct stat st;
	uint8_t *p;
	FILE *fp;

	if (stat(path, &st))
		return NULL;
	p = malloc((size_t)st.st_size + 1);
	fp = fopen(path, "rb");
	if (!p || !fp) {
		free(p);
		if (fp)
			fclose(fp);
		return NULL;
	}
	*n = fread(p, 1, (size_t)st.st_size, fp);
	fclose(fp);
	return p;
}

#endif /* __MMSB_FIXTURES_H */
