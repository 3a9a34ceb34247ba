// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Crash recovery: a child appends under the batch and every durability policies and is killed
 * with SIGKILL at a random moment. Every update it was told was durable must be in the log, the
 * log may end only in a torn frame (never damage in the middle), nothing after the tear is read
 * as data, and recovery plus replay give the page the last durable contents.
 * MMSB_CRASH_TRIALS sets the number of trials (make check: 200; make stress: 2000).
 */
#include <fcntl.h>
#include <mmsb/mmsb.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static uint8_t pattern(uint64_t i, size_t k)
{
	return (uint8_t)(i * 31 + k);
}

static void child(const char *path, enum mmsb_durability dur, size_t size, int ack_fd)
{
	MMSB_OPTS(mmsb_state_opts, o, .log_path = path, .log_mode = MMSB_LOG_TRUNCATE,
		  .durability = dur);
	struct mmsb_state *s = mmsb_state_open(&o);
	uint8_t *buf = malloc(size);
	uint64_t id;

	if (!s || !buf || mmsb_page_create(s, size, MMSB_LOC_CPU, &id))
		_exit(3);
	for (uint64_t i = 1;; i++) {
		for (size_t k = 0; k < size; k++)
			buf[k] = pattern(i, k);
		if (mmsb_page_update(s, id, buf, size) != 1)
			_exit(3);
		/* the update returned: the policy has made it durable; say so */
		if (write(ack_fd, &i, sizeof(i)) != sizeof(i))
			_exit(3);
	}
}

struct outcome {
	int torn, clean;
	uint64_t acked, read;
};

static void one_trial(const char *path, enum mmsb_durability dur, size_t size, unsigned seed,
		      struct outcome *out)
{
	struct mmsb_log_record rec;
	struct mmsb_log_reader *r;
	uint64_t acked = 0, v, n = 0;
	int fds[2], status, err;
	pid_t pid;

	ASSERT_EQ(pipe(fds), 0);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		close(fds[0]);
		child(path, dur, size, fds[1]);
	}
	close(fds[1]);
	/* let it run between 0.2 and 12 ms, then kill it without warning */
	usleep(200 + (useconds_t)(rand_r(&seed) % 12000));
	kill(pid, SIGKILL);
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFSIGNALED(status));
	while (read(fds[0], &v, sizeof(v)) == sizeof(v))
		acked = v;
	close(fds[0]);

	r = mmsb_log_reader_open(path);
	if (!r) {
		/* killed before the header was synced: allowed only if nothing was acknowledged */
		ASSERT_EQ(acked, 0);
		out->torn++;
		return;
	}
	while ((err = mmsb_log_reader_next(r, &rec)) > 0) {
		if (rec.kind == MMSB_REC_PAGE_CREATE)
			continue;
		ASSERT_EQ(rec.kind, MMSB_REC_DELTA);
		n++;
		/* every frame read back is exactly the n-th update: nothing torn is taken for data */
		ASSERT_EQ(mmsb_delta_id(rec.delta), n);
		ASSERT_EQ(mmsb_delta_payload_len(rec.delta), size);
		const uint8_t *p = mmsb_delta_payload(rec.delta);

		for (size_t k = 0; k < size; k++)
			ASSERT_EQ(p[k], pattern(n, k));
	}
	mmsb_log_reader_close(r);
	/* the log may end cleanly or in a torn frame, never in damage */
	if (err)
		ASSERT_EQ(err, -MMSB_ERR_TORN);
	err ? out->torn++ : out->clean++;
	/* every acknowledged update is there; at most one more (written, not yet acknowledged) */
	ASSERT_GE(n, acked);
	ASSERT_LE(n, acked + 1);
	out->acked += acked;
	out->read += n;

	uint64_t cut;

	ASSERT_EQ(mmsb_log_recover(path, &cut), 0);
	struct mmsb_state *s = mmsb_replay(path, NULL);

	ASSERT_TRUE(s);
	if (n) {
		uint8_t *buf = malloc(size);

		ASSERT_EQ(mmsb_page_read(s, 1, buf, size, 0), (ssize_t)size);
		for (size_t k = 0; k < size; k++)
			ASSERT_EQ(buf[k], pattern(n, k));
		free(buf);
	}
	mmsb_state_close(s);
}

TEST_TIMEOUT(sigkill_under_batch_and_every, 600)
{
	const char *env = getenv("MMSB_CRASH_TRIALS");
	int trials = env ? atoi(env) : 200;
	struct outcome o[2] = { 0 };
	char name[64];

	for (int t = 0; t < trials; t++) {
		enum mmsb_durability dur = t % 2 ? MMSB_DURABLE_EVERY : MMSB_DURABLE_BATCH;
		/* big pages make the kernel's copy long enough for a kill to land inside a write */
		size_t size = t % 4 < 2 ? 4096 : (1u << 20);

		snprintf(name, sizeof(name), "crash%d.tlog", t);
		one_trial(th_path(name), dur, size, (unsigned)t * 2654435761u, &o[t % 2]);
		unlink(th_path(name));
		snprintf(name, sizeof(name), "crash%d.tlog.torn", t);
		unlink(th_path(name));
	}
	for (int i = 0; i < 2; i++)
		TH_LOG("%s: %d trials, %d torn, %d clean, %llu acked, %llu read back",
		       i ? "every" : "batch", o[i].torn + o[i].clean, o[i].torn, o[i].clean,
		       (unsigned long long)o[i].acked, (unsigned long long)o[i].read);
}
