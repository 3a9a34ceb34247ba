// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The test runner behind harness.h: fork per test, timeout, TAP 13. */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static struct th_test *head, **tail = &head;
static int skip_fd = -1;   /* child: where SKIP writes its reason */
static bool expect_failed; /* child: an EXPECT_* failed */
static char tmpdir[256];

void th_register(struct th_test *t)
{
	*tail = t;
	tail = &t->next;
}

void th_skip(const char *file, int line, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	(void)file;
	(void)line;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0 && skip_fd >= 0 && write(skip_fd, buf, strlen(buf)) < 0)
		n = 0;
	exit(KSFT_SKIP);
}

void th_fail(bool fatal, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	printf("# %s:%d: %s", file, line, fatal ? "ASSERT " : "EXPECT ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!fatal)
		expect_failed = true;
}

const char *th_tmpdir(void)
{
	if (!tmpdir[0]) {
		const char *base = getenv("TMPDIR");

		snprintf(tmpdir, sizeof(tmpdir), "%s/mmsb-test.XXXXXX", base ? base : "/tmp");
		if (!mkdtemp(tmpdir)) {
			th_fail(true, __FILE__, __LINE__, "mkdtemp: %s", strerror(errno));
			exit(KSFT_FAIL);
		}
	}
	return tmpdir;
}

const char *th_path(const char *name)
{
	/* a ring of buffers: a test holds several paths at once, and nothing leaks */
	static char ring[64][512];
	static unsigned next;
	char *p = ring[next++ % 64];

	snprintf(p, sizeof(ring[0]), "%s/%s", th_tmpdir(), name);
	return p;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static void child_exit(void)
{
	/* MMSB_TEST_KEEP=1 leaves the files behind for a post-mortem */
	if (tmpdir[0] && getenv("MMSB_TEST_KEEP")) {
		printf("# kept %s\n", tmpdir);
		return;
	}
	if (tmpdir[0])
		nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Run one test; returns KSFT_PASS, KSFT_FAIL or KSFT_SKIP and fills reason. */
static int run_one(struct th_test *t, char *reason, size_t rlen)
{
	int fds[2], status = 0, ret;
	struct timespec start, now;
	pid_t pid;

	reason[0] = 0;
	if (pipe(fds))
		return KSFT_FAIL;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		snprintf(reason, rlen, "fork: %s", strerror(errno));
		return KSFT_FAIL;
	}
	if (!pid) {
		close(fds[0]);
		skip_fd = fds[1];
		/* its own process group, so a timeout kills whatever the test started */
		setpgid(0, 0);
		atexit(child_exit);
		t->fn();
		exit(expect_failed ? KSFT_FAIL : KSFT_PASS);
	}
	close(fds[1]);
	setpgid(pid, pid);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec >= t->timeout_s) {
			kill(-pid, SIGKILL);
			waitpid(pid, &status, 0);
			snprintf(reason, rlen, "timeout after %d s", t->timeout_s);
			close(fds[0]);
			return KSFT_FAIL;
		}
		usleep(2000);
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == KSFT_SKIP) {
		ssize_t n = read(fds[0], reason, rlen - 1);

		reason[n > 0 ? n : 0] = 0;
		ret = KSFT_SKIP;
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == KSFT_PASS) {
		ret = KSFT_PASS;
	} else {
		if (WIFSIGNALED(status))
			snprintf(reason, rlen, "killed by signal %d", WTERMSIG(status));
		ret = KSFT_FAIL;
	}
	close(fds[0]);
	return ret;
}

static bool selected(const char *name, char **only, int n_only)
{
	if (!n_only)
		return true;
	for (int i = 0; i < n_only; i++)
		if (!strcmp(name, only[i]))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	char *only[64];
	int n_only = 0, opt, n = 0, k = 0, pass = 0, fail = 0, skip = 0;
	struct th_test *t;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt(argc, argv, "lt:h")) != -1) {
		switch (opt) {
		case 'l':
			for (t = head; t; t = t->next)
				printf("%s\n", t->name);
			return 0;
		case 't':
			if (n_only < 64)
				only[n_only++] = optarg;
			break;
		default:
			fprintf(stderr, "usage: %s [-l] [-t NAME]...\n", argv[0]);
			return 2;
		}
	}
	for (t = head; t; t = t->next)
		n += selected(t->name, only, n_only);
	if (n_only && !n) {
		fprintf(stderr, "%s: no test matches\n", argv[0]);
		return 2;
	}
	printf("TAP version 13\n1..%d\n", n);
	for (t = head; t; t = t->next) {
		char reason[512];
		int r;

		if (!selected(t->name, only, n_only))
			continue;
		k++;
		printf("# RUN %s\n", t->name);
		r = run_one(t, reason, sizeof(reason));
		if (r == KSFT_PASS) {
			pass++;
			printf("ok %d %s\n", k, t->name);
		} else if (r == KSFT_SKIP) {
			skip++;
			printf("ok %d %s # SKIP %s\n", k, t->name, reason);
		} else {
			fail++;
			printf("not ok %d %s%s%s\n", k, t->name, reason[0] ? " # " : "", reason);
		}
	}
	printf("# Totals: pass:%d fail:%d skip:%d\n", pass, fail, skip);
	return fail ? KSFT_FAIL : KSFT_PASS;
}
