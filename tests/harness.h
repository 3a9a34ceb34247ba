/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Our own kselftest-style harness (the kernel's is GPL-2.0-only, so this is written fresh).
 *
 *   TEST(name) { ASSERT_EQ(f(), 0); EXPECT_TRUE(x); }
 *   TEST_TIMEOUT(slow_one, 120) { ... }
 *
 * Each test runs in a forked child with a timeout (default 30 s). ASSERT_* stops the test,
 * EXPECT_* records the failure and carries on, SKIP(reason, ...) ends it with exit code 4 and the
 * reason. Output is TAP 13. Options: -l lists the tests, -t NAME runs only NAME (repeatable).
 */
#ifndef __MMSB_HARNESS_H
#define __MMSB_HARNESS_H

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The sanitizer the test was built with: TH_ASAN or TH_TSAN defined, and TH_SANITIZER naming it.
 * What a test of resident memory or of a deliberate race cannot judge under it. gcc says
 * __SANITIZE_*__, clang __has_feature(*_sanitizer).
 */
#if defined(__SANITIZE_ADDRESS__)
#define TH_ASAN 1
#elif defined(__SANITIZE_THREAD__)
#define TH_TSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TH_ASAN 1
#elif __has_feature(thread_sanitizer)
#define TH_TSAN 1
#endif
#endif
#if defined(TH_ASAN)
#define TH_SANITIZER "ASan"
#elif defined(TH_TSAN)
#define TH_SANITIZER "TSan"
#endif

#define KSFT_PASS 0
#define KSFT_FAIL 1
#define KSFT_SKIP 4

struct th_test {
	const char *name;
	void (*fn)(void);
	int timeout_s;
	struct th_test *next;
};

void th_register(struct th_test *t);
void th_skip(const char *file, int line, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 3, 4)));
void th_fail(bool fatal, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* A per-test scratch directory, removed after the test; created on first use. */
const char *th_tmpdir(void);
/* th_tmpdir()/name; each call's string stays valid for the next 63 calls. */
const char *th_path(const char *name);

#define TEST_TIMEOUT(name, secs)                                                                   \
	static void th_fn_##name(void);                                                            \
	static struct th_test th_t_##name = { #name, th_fn_##name, secs, NULL };                   \
	__attribute__((constructor)) static void th_reg_##name(void)                               \
	{                                                                                          \
		th_register(&th_t_##name);                                                         \
	}                                                                                          \
	static void th_fn_##name(void)

#define TEST(name) TEST_TIMEOUT(name, 30)

#define SKIP(...) th_skip(__FILE__, __LINE__, __VA_ARGS__)

#define TH_CMP(fatal, a, op, b, name_a, name_b, fmt_a, fmt_b)                                      \
	do {                                                                                       \
		__typeof__(a) __a = (a);                                                           \
		__typeof__(b) __b = (b);                                                           \
		if (!(__a op __b)) {                                                               \
			th_fail(fatal, __FILE__, __LINE__, "%s %s %s: " fmt_a " vs " fmt_b,        \
				name_a, #op, name_b, __a, __b);                                    \
			if (fatal)                                                                 \
				exit(KSFT_FAIL);                                                   \
		}                                                                                  \
	} while (0)

/* Integers are compared and printed as intmax_t. */
#define TH_ICMP(fatal, a, op, b)                                                                   \
	TH_CMP(fatal, (intmax_t)(a), op, (intmax_t)(b), #a, #b, "%jd", "%jd")

#define ASSERT_EQ(a, b) TH_ICMP(true, a, ==, b)
#define ASSERT_NE(a, b) TH_ICMP(true, a, !=, b)
#define ASSERT_LT(a, b) TH_ICMP(true, a, <, b)
#define ASSERT_LE(a, b) TH_ICMP(true, a, <=, b)
#define ASSERT_GT(a, b) TH_ICMP(true, a, >, b)
#define ASSERT_GE(a, b) TH_ICMP(true, a, >=, b)
#define EXPECT_EQ(a, b) TH_ICMP(false, a, ==, b)
#define EXPECT_NE(a, b) TH_ICMP(false, a, !=, b)
#define EXPECT_LT(a, b) TH_ICMP(false, a, <, b)
#define EXPECT_LE(a, b) TH_ICMP(false, a, <=, b)
#define EXPECT_GT(a, b) TH_ICMP(false, a, >, b)
#define EXPECT_GE(a, b) TH_ICMP(false, a, >=, b)

#define TH_BOOL(fatal, c, want)                                                                    \
	do {                                                                                       \
		if ((bool)(c) != (bool)(want)) {                                                   \
			th_fail(fatal, __FILE__, __LINE__, "expected %s to be %s", #c,             \
				(want) ? "true" : "false");                                        \
			if (fatal)                                                                 \
				exit(KSFT_FAIL);                                                   \
		}                                                                                  \
	} while (0)
#define ASSERT_TRUE(c) TH_BOOL(true, c, true)
#define ASSERT_FALSE(c) TH_BOOL(true, c, false)
#define EXPECT_TRUE(c) TH_BOOL(false, c, true)
#define EXPECT_FALSE(c) TH_BOOL(false, c, false)

#define TH_MEM(fatal, a, b, n)                                                                     \
	do {                                                                                       \
		size_t __n = (n);                                                                  \
		const uint8_t *__a = (const uint8_t *)(a), *__b = (const uint8_t *)(b);            \
		for (size_t __i = 0; __i < __n; __i++)                                             \
			if (__a[__i] != __b[__i]) {                                                \
				th_fail(fatal, __FILE__, __LINE__,                                 \
					"%s and %s differ at byte %zu: 0x%02x vs 0x%02x", #a, #b,  \
					__i, __a[__i], __b[__i]);                                  \
				if (fatal)                                                         \
					exit(KSFT_FAIL);                                           \
				break;                                                             \
			}                                                                          \
	} while (0)
#define ASSERT_MEM_EQ(a, b, n) TH_MEM(true, a, b, n)
#define EXPECT_MEM_EQ(a, b, n) TH_MEM(false, a, b, n)

#define ASSERT_STR_EQ(a, b)                                                                        \
	do {                                                                                       \
		const char *__a = (a), *__b = (b);                                                 \
		if (!__a || !__b || strcmp(__a, __b)) {                                            \
			th_fail(true, __FILE__, __LINE__, "%s == %s: \"%s\" vs \"%s\"", #a, #b,    \
				__a ? __a : "(null)", __b ? __b : "(null)");                       \
			exit(KSFT_FAIL);                                                           \
		}                                                                                  \
	} while (0)

/* Diagnostics: TAP comment lines. */
#define TH_LOG(fmt, ...) printf("# " fmt "\n", ##__VA_ARGS__)

#endif /* __MMSB_HARNESS_H */
