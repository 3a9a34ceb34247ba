// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Fuzz the log reader (v1, v2, v3: the header included), the summary and replay over arbitrary
 * bytes; a log that verifies is continued with MMSB_LOG_APPEND and must replay to the live state,
 * and recover on one that does not must repair it or fail.
 */
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
	if (mmsb_log_summarize(path, &sum) == 0 && sum.version == 3) {
		/* a log that verifies can be continued, and the continued log replays to the state */
		MMSB_OPTS(mmsb_state_opts, o, .log_path = path, .log_mode = MMSB_LOG_APPEND,
			  .durability = MMSB_DURABLE_NONE);
		uint8_t b[16] = { 1, 2, 3 };
		struct mmsb_divergence dv;
		struct mmsb_state *r;
		uint64_t id;

		s = mmsb_state_open(&o);
		if (s && mmsb_page_create(s, sizeof(b), MMSB_LOC_CPU, &id) == 0) {
			if (mmsb_page_update(s, id, b, sizeof(b)) != 1 ||
			    mmsb_state_verify(s, &dv) != 0)
				abort();
		}
		mmsb_state_close(s);
		r = mmsb_replay(path, NULL);
		if (s && !r)
			abort(); /* the library wrote a log its reader rejects */
		mmsb_state_close(r);
	} else {
		/* whatever verify rejects, recover either repairs (then it verifies) or fails */
		uint64_t cut;

		if (mmsb_log_recover(path, &cut) == 0 && mmsb_log_summarize(path, &sum) != 0)
			abort();
	}
	s = mmsb_replay(path, NULL);
	mmsb_state_close(s);
	return 0;
}
