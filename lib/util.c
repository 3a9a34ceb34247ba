// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Errors, the print callback, growable buffers, CRC32C and UTF-8 checks. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "mmsb_internal.h"
#include "probes.h"

#if MMSB_PROBES
/* every thread's crossing record (lib/probes.h); written only while a tracer asks for it */
__thread struct mmsb_host_rec mmsb__host __attribute__((tls_model("initial-exec"))) MMSB_HIDDEN;
__thread uint32_t mmsb__api_reenter __attribute__((tls_model("initial-exec"))) MMSB_HIDDEN;
#endif

const char *mmsb_version(void)
{
	MMSB_API_GATE(mmsb_version);
#define __STR(x) #x
#define STR(x) __STR(x)
	return STR(MMSB_VERSION_MAJOR) "." STR(MMSB_VERSION_MINOR) "." STR(MMSB_VERSION_PATCH);
}

const char *mmsb__strerror(int err)
{
	/* INT_MIN has no positive: it is no error we know either */
	if (err == INT_MIN)
		return "unknown error";
	if (err < 0)
		err = -err;
	switch (err) {
#define MMSB__ERR_MSG(name, value, msg)                                                            \
	case value:                                                                                \
		return msg;
		MMSB_ERRNO_MAP(MMSB__ERR_MSG)
#undef MMSB__ERR_MSG
	}
	return strerror(err);
}

const char *mmsb_strerror(int err)
{
	MMSB_API_GATE(mmsb_strerror, err);
	return mmsb__strerror(err);
}

const char *mmsb_errname(int err)
{
	MMSB_API_GATE(mmsb_errname, err);
	if (err == INT_MIN)
		return "E?";
	if (err < 0)
		err = -err;
	switch (err) {
#define MMSB__ERR_NAME(name, value, msg)                                                           \
	case value:                                                                                \
		return #name;
		MMSB_ERRNO_MAP(MMSB__ERR_NAME)
#undef MMSB__ERR_NAME
	}
	/* strerrorname_np() is glibc >= 2.32; fall back to a number-free marker elsewhere */
	const char *n = strerrorname_np(err);
	return n ? n : "E?";
}

static mmsb_print_fn_t print_fn;

mmsb_print_fn_t mmsb_set_print(mmsb_print_fn_t fn)
{
	MMSB_API_GATE(mmsb_set_print, fn);
	mmsb_print_fn_t old = print_fn;

	print_fn = fn;
	return old;
}

void mmsb__pr(enum mmsb_print_level level, const char *fmt, ...)
{
	mmsb_print_fn_t fn = print_fn;
	va_list ap;
	int saved = errno;

	if (!fn)
		return;
	va_start(ap, fmt);
	fn(level, fmt, ap);
	va_end(ap);
	errno = saved;
}

/* mmsb__grow()'s slow path: need is past *cap */
int mmsb__grow_to(void **arr, size_t *cap, size_t need, size_t elem)
{
	size_t ncap = *cap ? *cap : 4;
	void *p;

	while (ncap < need) {
		if (ncap > SIZE_MAX / 2)
			return -ENOMEM;
		ncap *= 2;
	}
	if (ncap > SIZE_MAX / elem)
		return -ENOMEM;
	p = realloc(*arr, ncap * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

int mmsb__buf_reserve(struct mmsb_buf *b, size_t extra)
{
	if (extra > SIZE_MAX - b->len)
		return -ENOMEM;
	return mmsb__grow((void **)&b->p, &b->cap, b->len + extra, 1);
}

void mmsb__buf_free(struct mmsb_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/*
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of iSCSI, ext4 and btrfs.
 * The SSE4.2 crc32 instruction computes it directly; elsewhere a slice-by-8 table does.
 */
static uint32_t crc_tab[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static bool crc_hw;

/*
 * The crc32 instruction has a latency of three cycles and a throughput of one: one stream of it
 * runs at a third of the unit's speed, slower than the copy it checks. Long buffers run three
 * streams over three blocks at once, joined by the linearity of the CRC: the register after A|B
 * is shift(crc(A), |B|) ^ crc(B) from a zero register, shift being the effect of |B| zero bytes.
 * crc_shift[0] shifts by one block, [1] by two: a table per byte of the register.
 */
#define CRC_BLOCK 4096
static uint32_t crc_shift[2][4][256];

static uint32_t crc_sw(uint32_t c, const uint8_t *p, size_t n);

static uint32_t crc_shift_by(const uint32_t t[4][256], uint32_t c)
{
	return t[0][c & 0xff] ^ t[1][(c >> 8) & 0xff] ^ t[2][(c >> 16) & 0xff] ^ t[3][c >> 24];
}

static void crc_shift_init(void)
{
	static const uint8_t zeros[CRC_BLOCK];
	uint32_t col[2][32];

	/* the shift is linear: its effect on each bit of the register, then any byte's from those */
	for (int b = 0; b < 32; b++) {
		col[0][b] = crc_sw(1u << b, zeros, CRC_BLOCK);
		col[1][b] = crc_sw(col[0][b], zeros, CRC_BLOCK);
	}
	for (int t = 0; t < 2; t++)
		for (int k = 0; k < 4; k++)
			for (uint32_t v = 0; v < 256; v++) {
				uint32_t x = 0;

				for (int b = 0; b < 8; b++)
					if (v & (1u << b))
						x ^= col[t][8 * k + b];
				crc_shift[t][k][v] = x;
			}
}

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc_tab[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_tab[t][i] =
				(crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
#if defined(__x86_64__)
	crc_hw = __builtin_cpu_supports("sse4.2");
#endif
	crc_shift_init();
}

static uint32_t crc_sw(uint32_t c, const uint8_t *p, size_t n)
{
	while (n >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		w ^= c;
		c = crc_tab[7][w & 0xff] ^ crc_tab[6][(w >> 8) & 0xff] ^
		    crc_tab[5][(w >> 16) & 0xff] ^ crc_tab[4][(w >> 24) & 0xff] ^
		    crc_tab[3][(w >> 32) & 0xff] ^ crc_tab[2][(w >> 40) & 0xff] ^
		    crc_tab[1][(w >> 48) & 0xff] ^ crc_tab[0][w >> 56];
		p += 8;
		n -= 8;
	}
	while (n--)
		c = (c >> 8) ^ crc_tab[0][(c ^ *p++) & 0xff];
	return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_x86(uint32_t c, const uint8_t *p, size_t n)
{
	uint64_t c64 = c;

	while (n >= 3 * CRC_BLOCK) {
		uint64_t a = c64, b = 0, d = 0;

		for (size_t i = 0; i < CRC_BLOCK; i += 8) {
			uint64_t wa, wb, wd;

			memcpy(&wa, p + i, 8);
			memcpy(&wb, p + CRC_BLOCK + i, 8);
			memcpy(&wd, p + 2 * CRC_BLOCK + i, 8);
			a = __builtin_ia32_crc32di(a, wa);
			b = __builtin_ia32_crc32di(b, wb);
			d = __builtin_ia32_crc32di(d, wd);
		}
		c64 = crc_shift_by(crc_shift[1], (uint32_t)a) ^
		      crc_shift_by(crc_shift[0], (uint32_t)b) ^ (uint32_t)d;
		p += 3 * CRC_BLOCK;
		n -= 3 * CRC_BLOCK;
	}
	while (n >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		c64 = __builtin_ia32_crc32di(c64, w);
		p += 8;
		n -= 8;
	}
	c = (uint32_t)c64;
	while (n--)
		c = __builtin_ia32_crc32qi(c, *p++);
	return c;
}
#endif

uint32_t mmsb__crc32c(uint32_t crc, const void *buf, size_t len)
{
	uint32_t c = ~crc;

	pthread_once(&crc_once, crc_init);
#if defined(__x86_64__)
	if (crc_hw)
		return ~crc_x86(c, buf, len);
#endif
	return ~crc_sw(c, buf, len);
}

bool mmsb__utf8_valid(const uint8_t *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = s[i];
		size_t k;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			k = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			k = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			k = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (k > n - i - 1)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		/* overlong forms, surrogates and values past U+10FFFF are not UTF-8 */
		if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return false;
		i += k + 1;
	}
	return true;
}
