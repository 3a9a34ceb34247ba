// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * usdt_count_run: run a command with a counting BPF program on some of libmmsb's probes, attached
 * before the command starts, and print the hits per probe to stderr. ci/probe-overhead.sh uses it
 * to measure the cost of a probe hit per family; it needs root.
 *
 *   usdt_count_run LIB PREFIX[,PREFIX...]|all -- CMD [ARGS...]
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "mmsb_probes.h"
#include "usdt_count.h"
#include "usdt_count.skel.h"

static bool wanted(const char *name, const char *prefixes)
{
	char *list = strdup(prefixes), *save, *tok;
	bool hit = false;

	for (tok = strtok_r(list, ",", &save); tok && !hit; tok = strtok_r(NULL, ",", &save))
		hit = !strcmp(tok, "all") || !strncmp(name, tok, strlen(tok));
	free(list);
	return hit;
}

int main(int argc, char **argv)
{
	static const char *const probes[] = { MMSB_PROBE_NAMES }; /* lib/probes.d's, in order */
	char names[USDT_COUNT_MAX][64], lib[PATH_MAX];
	struct bpf_link *links[USDT_COUNT_MAX] = { 0 };
	struct usdt_count_bpf *skel;
	int n = 0, go[2], status;
	unsigned long long total = 0;
	pid_t pid;

	if (argc < 5 || strcmp(argv[3], "--")) {
		fprintf(stderr, "usage: usdt_count_run LIB PREFIXES|all -- CMD [ARGS...]\n");
		return 2;
	}
	if (!realpath(argv[1], lib)) {
		fprintf(stderr, "usdt_count_run: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	for (; n < (int)(sizeof(probes) / sizeof(probes[0])) && n < USDT_COUNT_MAX; n++)
		snprintf(names[n], sizeof(names[n]), "%s", probes[n]);
	if (pipe(go))
		return 1;
	pid = fork();
	if (pid < 0)
		return 1;
	if (!pid) {
		char c;

		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(126);
		execvp(argv[4], argv + 4);
		_exit(127);
	}
	close(go[0]);
	skel = usdt_count_bpf__open();
	if (!skel)
		return 1;
	skel->rodata->targ_tgid = (unsigned int)pid;
	if (usdt_count_bpf__load(skel)) {
		fprintf(stderr, "usdt_count_run: load: %s\n", strerror(errno));
		return 1;
	}
	for (int i = 0; i < n; i++) {
		LIBBPF_OPTS(bpf_usdt_opts, uo, .usdt_cookie = (unsigned long long)i);

		if (!wanted(names[i], argv[2]))
			continue;
		links[i] = bpf_program__attach_usdt(skel->progs.count_hit, pid, lib, "mmsb",
						    names[i], &uo);
		if (!links[i]) {
			fprintf(stderr, "usdt_count_run: attach %s: %s\n", names[i],
				strerror(errno));
			return 1;
		}
	}
	if (write(go[1], "g", 1) != 1)
		return 1;
	close(go[1]);
	waitpid(pid, &status, 0);
	for (int i = 0; i < n; i++) {
		if (!links[i])
			continue;
		fprintf(stderr, "hits %-28s %llu\n", names[i],
			(unsigned long long)skel->bss->hits[i]);
		total += skel->bss->hits[i];
		bpf_link__destroy(links[i]);
	}
	fprintf(stderr, "hits total %llu\n", total);
	usdt_count_bpf__destroy(skel);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
