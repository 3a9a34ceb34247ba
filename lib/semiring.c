// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The two semirings: tropical (min, +) over doubles and boolean (or, and) over bytes. */
#include <math.h>

#include "mmsb_internal.h"
#include "probes.h"

/* A fold given n values at NULL: errno EINVAL and the caller's error value. */
static double null_input(double ret)
{
	errno = EINVAL;
	return ret;
}

double mmsb_tropical_fold_add(const double *v, size_t n)
{
	MMSB_API_GATE(mmsb_tropical_fold_add, v, n);
	double a[4] = { INFINITY, INFINITY, INFINITY, INFINITY };
	size_t i = 0;

	if (n && !v)
		return null_input(NAN);
	/*
	 * min is exact, associative and commutative, so four chains give the same answer as one
	 * without waiting on each compare. `x < acc ? x : acc` keeps acc on a NaN, as fmin does.
	 */
	for (; i + 4 <= n; i += 4)
		for (int k = 0; k < 4; k++)
			a[k] = v[i + k] < a[k] ? v[i + k] : a[k];
	for (; i < n; i++)
		a[0] = v[i] < a[0] ? v[i] : a[0];
	a[0] = a[1] < a[0] ? a[1] : a[0];
	a[2] = a[3] < a[2] ? a[3] : a[2];
	return a[2] < a[0] ? a[2] : a[0];
}

double mmsb_tropical_fold_mul(const double *v, size_t n)
{
	MMSB_API_GATE(mmsb_tropical_fold_mul, v, n);
	double acc = 0.0;

	if (n && !v)
		return null_input(NAN);
	for (size_t i = 0; i < n; i++)
		acc += v[i];
	return acc;
}

void mmsb_tropical_accumulate(double a, double b, double *add, double *mul)
{
	MMSB_API_GATE(mmsb_tropical_accumulate, a, b, add, mul);
	if (add)
		*add = fmin(a, b);
	if (mul)
		*mul = a + b;
}

uint8_t mmsb_boolean_fold_add(const uint8_t *v, size_t n)
{
	MMSB_API_GATE(mmsb_boolean_fold_add, v, n);
	if (n && !v)
		return (uint8_t)null_input(0);
	for (size_t i = 0; i < n; i++)
		if (v[i])
			return 1;
	return 0;
}

uint8_t mmsb_boolean_fold_mul(const uint8_t *v, size_t n)
{
	MMSB_API_GATE(mmsb_boolean_fold_mul, v, n);
	if (n && !v)
		return (uint8_t)null_input(0);
	for (size_t i = 0; i < n; i++)
		if (!v[i])
			return 0;
	return 1;
}

void mmsb_boolean_accumulate(uint8_t a, uint8_t b, uint8_t *add, uint8_t *mul)
{
	MMSB_API_GATE(mmsb_boolean_accumulate, a, b, add, mul);
	if (add)
		*add = a || b;
	if (mul)
		*mul = a && b;
}
