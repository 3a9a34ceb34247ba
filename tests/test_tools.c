// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* mmsb-tlog as a user runs it: exit codes, error lines, outputs. */
#include <mmsb/mmsb.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixtures.h"
#include "harness.h"

static char out[1 << 16];

/* Run `mmsb-tlog ARGS` with stderr folded into stdout; returns the exit status. */
static int tlog(const char *args)
{
	const char *o = getenv("O") ? getenv("O") : ".output";
	char cmd[4096];
	size_t n;
	FILE *p;
	int st;

	snprintf(cmd, sizeof(cmd), "%s/mmsb-tlog %s 2>&1", o, args);
	p = popen(cmd, "r");
	ASSERT_TRUE(p);
	n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = 0;
	st = pclose(p);
	ASSERT_TRUE(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void make_log(const char *path)
{
	MMSB_OPTS(mmsb_state_opts, o, .log_path = path);
	struct mmsb_state *s = mmsb_state_open(&o);
	uint8_t b[16] = { 1, 2, 3 };
	uint64_t id;

	ASSERT_TRUE(s);
	ASSERT_EQ(mmsb_page_create(s, 16, MMSB_LOC_CPU, &id), 0);
	ASSERT_EQ(mmsb_page_update(s, id, b, 16), 1);
	b[5] = 9;
	ASSERT_EQ(mmsb_page_update(s, id, b, 16), 1);
	mmsb_state_close(s);
}

TEST(usage_errors_exit_2)
{
	const char *o = getenv("O") ? getenv("O") : ".output";
	char bin[512];

	snprintf(bin, sizeof(bin), "%s/mmsb-tlog", o);
	if (access(bin, X_OK))
		SKIP("%s not built", bin);
	ASSERT_EQ(tlog(""), 2);
	ASSERT_EQ(tlog("frobnicate x"), 2);
	ASSERT_TRUE(strstr(out, "unknown command 'frobnicate'"));
	ASSERT_EQ(tlog("summary"), 2);
	ASSERT_EQ(tlog("summary a b"), 2);
	ASSERT_EQ(tlog("dump --limit -3 x"), 2);
	ASSERT_TRUE(strstr(out, "invalid record count '-3'"));
	ASSERT_EQ(tlog("dump --page abc x"), 2);
	ASSERT_EQ(tlog("c x"), 2); /* convert or ckpt-*: ambiguous */
	ASSERT_TRUE(strstr(out, "ambiguous"));
	ASSERT_EQ(tlog("help"), 0);
	ASSERT_TRUE(strstr(out, "recover"));
	ASSERT_EQ(tlog("help dump"), 0);
	ASSERT_TRUE(strstr(out, "EXAMPLES"));
	ASSERT_EQ(tlog("--version"), 0);
}

TEST(summary_dump_verify)
{
	const char *log = th_path("a.tlog");
	char args[1024];

	make_log(log);
	snprintf(args, sizeof(args), "su %s", log); /* prefix match */
	ASSERT_EQ(tlog(args), 0);
	ASSERT_TRUE(strstr(out, "records:      3 (2 deltas, 1 page creates, 0 page frees)"));
	snprintf(args, sizeof(args), "dump %s", log);
	ASSERT_EQ(tlog(args), 0);
	ASSERT_TRUE(strstr(out, "PAGE_CREATE"));
	ASSERT_TRUE(strstr(out, "epoch 2 sparse mask 1/16 payload 1"));
	snprintf(args, sizeof(args), "dump --json -x -p 1 %s", log);
	ASSERT_EQ(tlog(args), 0);
	/* few bytes changed: the updates are logged sparse, changed bytes only */
	ASSERT_TRUE(strstr(out, "\"payload\": \"010203\""));
	ASSERT_TRUE(strstr(out, "\"payload\": \"09\""));
	snprintf(args, sizeof(args), "verify %s", log);
	ASSERT_EQ(tlog(args), 0);
	ASSERT_TRUE(strstr(out, "ok: version 3, 3 records"));
}

TEST(bad_files_exit_1_with_one_line)
{
	const char *log = th_path("b.tlog"), *torn = th_path("t.tlog");
	char args[1024];
	uint8_t *p;
	size_t n;

	snprintf(args, sizeof(args), "verify %s", th_path("missing"));
	ASSERT_EQ(tlog(args), 1);
	ASSERT_TRUE(strstr(out, "No such file"));
	make_log(log);
	ASSERT_TRUE(p = fx_read(log, &n));
	p[n - 3] ^= 1;
	ASSERT_EQ(fx_write(log, p, n), 0);
	snprintf(args, sizeof(args), "verify %s", log);
	ASSERT_EQ(tlog(args), 1);
	/* the first bad frame named with its byte offset */
	ASSERT_TRUE(strstr(out, "frame 2 at offset"));
	ASSERT_EQ(strchr(out, '\n'), out + strlen(out) - 1);
	p[n - 3] ^= 1;
	ASSERT_EQ(fx_write(torn, p, n - 3), 0);
	snprintf(args, sizeof(args), "verify --json %s", torn);
	ASSERT_EQ(tlog(args), 1);
	ASSERT_TRUE(strstr(out, "\"error\": \"TORN\""));
	snprintf(args, sizeof(args), "recover %s", torn);
	ASSERT_EQ(tlog(args), 0);
	ASSERT_TRUE(strstr(out, "cut "));
	snprintf(args, sizeof(args), "verify %s", torn);
	ASSERT_EQ(tlog(args), 0);
	free(p);
}

TEST(convert_and_checkpoints)
{
	const char *v2 = th_path("v2.tlog"), *v3 = th_path("v3.tlog"), *ck = th_path("s.ckpt");
	static struct fx f;
	char args[1024];

	fx_v2_log(&f, 2);
	ASSERT_EQ(fx_write(v2, f.b, f.n), 0);
	snprintf(args, sizeof(args), "convert %s %s", v2, v3);
	ASSERT_EQ(tlog(args), 0);
	snprintf(args, sizeof(args), "summary --json %s", v3);
	ASSERT_EQ(tlog(args), 0);
	ASSERT_TRUE(strstr(out, "\"deltas\": 3"));
	ASSERT_TRUE(strstr(out, "\"version\": 3"));

	struct mmsb_state *s = mmsb_state_open(NULL);

	ASSERT_EQ(mmsb_page_create_id(s, 4, 10, MMSB_LOC_CPU), 0);
	ASSERT_EQ(mmsb_checkpoint_write(s, ck), 0);
	mmsb_state_close(s);
	snprintf(args, sizeof(args), "ckpt-info %s", ck);
	ASSERT_EQ(tlog(args), 0);
	ASSERT_TRUE(strstr(out, "pages:         1 (10 bytes)"));
	snprintf(args, sizeof(args), "ckpt-verify %s", v2); /* a log is not a checkpoint */
	ASSERT_EQ(tlog(args), 1);
	ASSERT_TRUE(strstr(out, "bad magic"));
}

TEST(not_logs_and_damaged_headers_exit_1)
{
	const char *empty = th_path("e.tlog"), *fifo = th_path("f.tlog"), *log = th_path("h.tlog");
	const char *files[] = { empty, "/dev/null", "/dev/zero", fifo };
	const char *verbs[] = { "verify", "summary", "recover", "dump" };
	char args[1024];
	uint8_t *p, *q;
	size_t n, m;

	ASSERT_EQ(fx_write(empty, "", 0), 0);
	ASSERT_EQ(mkfifo(fifo, 0600), 0);
	for (size_t i = 0; i < 4; i++)
		for (size_t v = 0; v < 4; v++) {
			snprintf(args, sizeof(args), "%s %s", verbs[v], files[i]);
			ASSERT_EQ(tlog(args), 1);
			/* one line saying what is wrong */
			ASSERT_EQ(strchr(out, '\n'), out + strlen(out) - 1);
			ASSERT_TRUE(strstr(out, i ? "not a regular file" : "empty file"));
		}

	/* a flipped version bit is damage: verify and recover exit 1, the file stays */
	make_log(log);
	ASSERT_TRUE(p = fx_read(log, &n));
	for (int bit = 0; bit < 8; bit++) {
		p[8] ^= (uint8_t)(1u << bit);
		ASSERT_EQ(fx_write(log, p, n), 0);
		snprintf(args, sizeof(args), "verify %s", log);
		ASSERT_EQ(tlog(args), 1);
		snprintf(args, sizeof(args), "recover %s", log);
		ASSERT_EQ(tlog(args), 1);
		ASSERT_TRUE(strstr(out, "nothing changed"));
		ASSERT_TRUE(q = fx_read(log, &m));
		ASSERT_EQ(m, n);
		ASSERT_MEM_EQ(q, p, n);
		free(q);
		p[8] ^= (uint8_t)(1u << bit);
	}
	free(p);
}
