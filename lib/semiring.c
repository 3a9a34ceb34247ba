// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The two semirings: tropical (min, +) over doubles and boolean (or, and) over bytes.
 *
 * The one family of public functions without a gate or an api__entry/api__exit pair: each reads
 * only its arguments and touches no state, a scalar operation is a few instructions and a fold
 * a few hundred, and a probe hit costs thousands of times that. The gate alone (a compare and a
 * branch) was 3-5 % of the scalar ones. Their ids stay reserved in lib/api-ids.list.
 */
#include <math.h>

#include "mmsb_internal.h"

/* A fold given n values at NULL: errno EINVAL and the caller's error value. */
static double null_input(double ret)
{
	errno = EINVAL;
	return ret;
}

double mmsb_tropical_fold_add(const double *v, size_t n)
{
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
	double acc = 0.0;

	if (n && !v)
		return null_input(NAN);
	for (size_t i = 0; i < n; i++)
		acc += v[i];
	return acc;
}

void mmsb_tropical_accumulate(double a, double b, double *add, double *mul)
{
	if (add)
		*add = fmin(a, b);
	if (mul)
		*mul = a + b;
}

uint8_t mmsb_boolean_fold_add(const uint8_t *v, size_t n)
{
	if (n && !v)
		return (uint8_t)null_input(0);
	for (size_t i = 0; i < n; i++)
		if (v[i])
			return 1;
	return 0;
}

uint8_t mmsb_boolean_fold_mul(const uint8_t *v, size_t n)
{
	if (n && !v)
		return (uint8_t)null_input(0);
	for (size_t i = 0; i < n; i++)
		if (!v[i])
			return 0;
	return 1;
}

void mmsb_boolean_accumulate(uint8_t a, uint8_t b, uint8_t *add, uint8_t *mul)
{
	if (add)
		*add = a || b;
	if (mul)
		*mul = a && b;
}
