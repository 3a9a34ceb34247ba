// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Byte-mask kernels, eight positions at a time in a 64-bit word (SWAR). Masks are one byte per
 * position, 0 or 1; on disk they are bits, LSB-first. Plain C: no target flags, every CPU.
 */
#include <string.h>

#include "mmsb_internal.h"
#include "probes.h"

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull
#define LOWS7 0x7f7f7f7f7f7f7f7full

static inline uint64_t load64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static inline void store64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

/* 0x80 in every byte of x that is nonzero, 0 elsewhere (no carries cross bytes). */
static inline uint64_t nonzero_highs(uint64_t x)
{
	return (((x & LOWS7) + LOWS7) | x) & HIGHS;
}

size_t mmsb__popcount_bytes(const uint8_t *mask, size_t n)
{
	size_t c = 0, i = 0;

	for (; i + 8 <= n; i += 8)
		c += (size_t)__builtin_popcountll(nonzero_highs(load64(mask + i)));
	for (; i < n; i++)
		c += mask[i] != 0;
	return c;
}

size_t mmsb__diff_mask(const void *a, const void *b, size_t len, uint8_t *out)
{
	const uint8_t *x = a, *y = b;
	size_t n = 0, i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t d = nonzero_highs(load64(x + i) ^ load64(y + i));

		store64(out + i, d >> 7);
		n += (size_t)__builtin_popcountll(d);
	}
	for (; i < len; i++) {
		out[i] = x[i] != y[i];
		n += out[i];
	}
	return n;
}

size_t mmsb_diff_mask(const void *a, const void *b, size_t len, uint8_t *out)
{
	MMSB_API_SCOPE(mmsb_diff_mask);
	if (len && (!a || !b || !out)) {
		errno = EINVAL;
		return 0;
	}
	return mmsb__diff_mask(a, b, len, out);
}

void mmsb__pack_mask(const uint8_t *mask, size_t n, uint8_t *bits)
{
	size_t i = 0;

	/* byte k of the word (0 or 1) lands on bit k: a multiply gathers them into the top byte */
	for (; i + 8 <= n; i += 8)
		bits[i >> 3] = (uint8_t)((load64(mask + i) * 0x0102040810204080ull) >> 56);
	if (i < n) {
		uint8_t last = 0;

		for (size_t k = 0; i + k < n; k++)
			last |= (uint8_t)(mask[i + k] << k);
		bits[i >> 3] = last;
	}
}

void mmsb__unpack_mask(const uint8_t *bits, size_t n, uint8_t *mask)
{
	size_t i = 0;

	/* replicate the byte, keep bit k in byte k, then turn each kept bit into a 1 */
	for (; i + 8 <= n; i += 8) {
		uint64_t t = (bits[i >> 3] * ONES) & 0x8040201008040201ull;

		store64(mask + i, ((t + LOWS7) >> 7) & ONES);
	}
	for (; i < n; i++)
		mask[i] = (bits[i >> 3] >> (i & 7)) & 1;
}

void mmsb__blend(uint8_t *dst, const uint8_t *src, const uint8_t *mask, size_t n)
{
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t m = load64(mask + i);

		if (!m)
			continue;
		m *= 0xff; /* 0/1 bytes to 0x00/0xff: no byte carries into the next */
		store64(dst + i, (load64(dst + i) & ~m) | (load64(src + i) & m));
	}
	for (; i < n; i++)
		if (mask[i])
			dst[i] = src[i];
}

size_t mmsb__scatter(uint8_t *dst, const uint8_t *src, const uint8_t *mask, size_t n)
{
	size_t k = 0, i = 0;

	/* sparse payloads: skip empty stretches of the mask a word at a time */
	for (; i + 8 <= n; i += 8) {
		if (!load64(mask + i))
			continue;
		for (size_t j = i; j < i + 8; j++)
			if (mask[j])
				dst[j] = src[k++];
	}
	for (; i < n; i++)
		if (mask[i])
			dst[i] = src[k++];
	return k;
}

size_t mmsb__mask_index(const uint8_t *mask, size_t n, uint32_t *idx)
{
	size_t k = 0, i = 0;

	/* a word at a time; inside a nonzero word only its set bytes (little-endian: byte j is bits 8j..) */
	for (; i + 8 <= n; i += 8) {
		for (uint64_t h = nonzero_highs(load64(mask + i)); h; h &= h - 1)
			idx[k++] = (uint32_t)(i + ((unsigned int)__builtin_ctzll(h) >> 3));
	}
	for (; i < n; i++)
		if (mask[i])
			idx[k++] = (uint32_t)i;
	return k;
}

size_t mmsb__gather(uint8_t *dst, const uint8_t *src, const uint8_t *mask, size_t n)
{
	size_t k = 0, i = 0;

	/* dst may be src itself: k never passes i */
	for (; i + 8 <= n; i += 8) {
		if (!load64(mask + i))
			continue;
		for (size_t j = i; j < i + 8; j++)
			if (mask[j])
				dst[k++] = src[j];
	}
	for (; i < n; i++)
		if (mask[i])
			dst[k++] = src[i];
	return k;
}
