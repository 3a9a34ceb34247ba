// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Fuzz checkpoint loading (v2 and v3): a failed load must leave the state exactly as it was. */
#include <mmsb/mmsb.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	const char *path = fuzz_file(data, n);
	struct mmsb_state *s = mmsb_state_open(NULL);
	uint8_t b[4] = { 1, 2, 3, 4 }, out[4];
	struct mmsb_checkpoint_info info;

	if (!s || mmsb_page_create_id(s, 77, 4, MMSB_LOC_CPU) || mmsb_page_update(s, 77, b, 4) != 1)
		abort();
	mmsb_checkpoint_verify(path, &info);
	if (mmsb_checkpoint_load(s, path) < 0) {
		if (mmsb_page_count(s) != 1 || mmsb_page_read(s, 77, out, 4, 0) != 4 ||
		    memcmp(out, b, 4))
			abort();
	}
	mmsb_state_close(s);
	return 0;
}
