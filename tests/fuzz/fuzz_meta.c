// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Fuzz the metadata blob decoder: decode, re-encode, decode again must agree. */
#include <mmsb/mmsb.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	struct mmsb_state *s = mmsb_state_open(NULL);
	ssize_t len, len2;
	uint8_t *a, *b;

	if (!s || mmsb_page_create_id(s, 1, 1, MMSB_LOC_CPU))
		abort();
	if (mmsb_page_meta_import(s, 1, data, n) == 0) {
		len = mmsb_page_meta_export(s, 1, NULL, 0);
		a = malloc((size_t)len + 1);
		if (!a || mmsb_page_meta_export(s, 1, a, (size_t)len) != len)
			abort();
		if (mmsb_page_meta_import(s, 1, a, (size_t)len))
			abort();
		len2 = mmsb_page_meta_export(s, 1, NULL, 0);
		b = malloc((size_t)len2 + 1);
		if (!b || len2 != len || mmsb_page_meta_export(s, 1, b, (size_t)len2) != len2 ||
		    memcmp(a, b, (size_t)len))
			abort();
		free(a);
		free(b);
	}
	mmsb_state_close(s);
	return 0;
}
