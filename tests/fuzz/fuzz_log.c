// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Fuzz the log reader (v1, v2, v3), the summary and replay over arbitrary bytes. */
#include <mmsb/mmsb.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	const char *path = fuzz_file(data, n);
	struct mmsb_log_reader *r = mmsb_log_reader_open(path);
	struct mmsb_log_summary sum;
	struct mmsb_log_record rec;
	struct mmsb_state *s;

	if (r) {
		while (mmsb_log_reader_next(r, &rec) > 0)
			if (rec.delta &&
			    mmsb_delta_mask_count(rec.delta) > mmsb_delta_mask_len(rec.delta))
				abort();
		mmsb_log_reader_close(r);
	}
	mmsb_log_summarize(path, &sum);
	s = mmsb_replay(path, NULL);
	mmsb_state_close(s);
	return 0;
}
