// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Byte-mask kernels, eight positions at a time in a 64-bit word (SWAR). Masks are one byte per
 * position, 0 or 1; on disk they are bits, LSB-first. Plain C: no target flags, every CPU; the
 * diff, which a dense update runs over every byte of the page, also has an AVX2 twin chosen at
 * run time on the CPUs that have it.
 */
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

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

/*
 * How many of x's bytes are 1, x's bytes being 0 or 1: a multiply sums them into the top byte.
 * (__builtin_popcountll is a library call without -mpopcnt, and cost a dense diff half its time.)
 */
static inline size_t sum_ones(uint64_t x)
{
	return (size_t)((x * ONES) >> 56);
}

size_t mmsb__popcount_bytes(const uint8_t *mask, size_t n)
{
	size_t c = 0, i = 0;

	for (; i + 8 <= n; i += 8)
		c += sum_ones(nonzero_highs(load64(mask + i)) >> 7);
	for (; i < n; i++)
		c += mask[i] != 0;
	return c;
}

#if defined(__x86_64__)
/* 32 positions an iteration: the mask bytes, and the same packed into 4 bytes of bits. */
__attribute__((target("avx2,popcnt"))) static size_t
diff_avx2(const uint8_t *x, const uint8_t *y, size_t len, uint8_t *out, uint8_t *bits, size_t *done)
{
	const __m256i one = _mm256_set1_epi8(1);
	size_t n = 0, i = 0;

	for (; i + 32 <= len; i += 32) {
		__m256i eq = _mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(x + i)),
					       _mm256_loadu_si256((const __m256i *)(y + i)));
		uint32_t ne = ~(uint32_t)_mm256_movemask_epi8(eq);

		_mm256_storeu_si256((__m256i *)(out + i), _mm256_andnot_si256(eq, one));
		if (bits)
			memcpy(bits + i / 8, &ne, 4);
		n += (size_t)__builtin_popcount(ne);
	}
	*done = i;
	return n;
}

static bool have_avx2(void)
{
	/* a race only computes the same answer twice; relaxed atomics say so to TSan */
	static int v = -1;
	int r = __atomic_load_n(&v, __ATOMIC_RELAXED);

	if (r < 0) {
		r = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt");
		__atomic_store_n(&v, r, __ATOMIC_RELAXED);
	}
	return r;
}
#endif

size_t mmsb__diff_bits(const void *a, const void *b, size_t len, uint8_t *out, uint8_t *bits)
{
	const uint8_t *x = a, *y = b;
	size_t n = 0, i = 0;

#if defined(__x86_64__)
	if (len >= 32 && have_avx2())
		n = diff_avx2(x, y, len, out, bits, &i);
#endif
	/* i is a multiple of 32 here: the bits of the rest start on a byte */
	size_t from = i;

	for (; i + 8 <= len; i += 8) {
		uint64_t d = nonzero_highs(load64(x + i) ^ load64(y + i)) >> 7;

		store64(out + i, d);
		n += sum_ones(d);
	}
	for (; i < len; i++) {
		out[i] = x[i] != y[i];
		n += out[i];
	}
	if (bits && from < len)
		mmsb__pack_mask(out + from, len - from, bits + from / 8);
	return n;
}

size_t mmsb__diff_mask(const void *a, const void *b, size_t len, uint8_t *out)
{
	return mmsb__diff_bits(a, b, len, out, NULL);
}

size_t mmsb_diff_mask(const void *a, const void *b, size_t len, uint8_t *out)
{
	MMSB_API_GATE(mmsb_diff_mask, a, b, len, out);
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
