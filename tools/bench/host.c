// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * mmsb-bench --host python: the Python binding drives the same keys (bindings/python/mmsb/bench.py)
 * and its medians are set beside the C ones: what crossing from the host costs (docs/ffi.md).
 */
#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "suite.h"
#include "tool_helpers.h"

/* Where the Python package is: $MMSB_PYTHONPATH, else the source tree beside this tool. */
static int python_path(char *out, size_t len)
{
	const char *env = getenv("MMSB_PYTHONPATH");
	char exe[PATH_MAX], *slash;
	ssize_t n;

	if (env && *env) {
		snprintf(out, len, "%s", env);
		return 0;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return -ENOENT;
	exe[n] = 0;
	slash = strrchr(exe, '/');
	if (!slash)
		return -ENOENT;
	*slash = 0;
	snprintf(out, len, "%.*s/../bindings/python", PATH_MAX - 32, exe);
	return access(out, R_OK) ? -ENOENT : 0;
}

struct json_object *run_python_host(bool quick)
{
	char path[PATH_MAX + 32], cmd[512];
	const char *lib = own_libmmsb();
	struct json_object *o;
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	FILE *p;
	int st;

	if (!buf)
		return NULL;
	if (!lib) {
		p_err("--host python needs libmmsb.so (this mmsb-bench is linked statically)");
		free(buf);
		return NULL;
	}
	if (python_path(path, sizeof(path))) {
		p_err("the Python binding is not found: set MMSB_PYTHONPATH to bindings/python");
		free(buf);
		return NULL;
	}
	setenv("MMSB_LIB", lib, 1);
	setenv("PYTHONPATH", path, 1);
	snprintf(cmd, sizeof(cmd), "python3 -m mmsb.bench%s --dir '%s'", quick ? " --quick" : "",
		 benv.dir);
	p = popen(cmd, "r");
	if (!p) {
		p_err("python3: %s", strerror(errno));
		free(buf);
		return NULL;
	}
	for (size_t got; (got = fread(buf + len, 1, cap - len - 1, p)) > 0;) {
		len += got;
		if (len + 1 == cap) {
			char *nb = realloc(buf, 2 * cap);

			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
	}
	st = pclose(p);
	buf[len] = 0;
	o = st == 0 ? json_tokener_parse(buf) : NULL;
	if (!o)
		p_err("python3 -m mmsb.bench failed (exit %d)",
		      WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	free(buf);
	return o;
}

/* Per call, what crossing from the host costs. */
void host_table(struct json_object *host, struct bench_result *res, size_t n,
		struct json_object *out)
{
	struct json_object *keys, *jk = json_object_new_object(), *v;

	if (!json_object_object_get_ex(host, "keys", &keys))
		return;
	printf("\nhost %s %s against C, per evaluation (medians):\n",
	       json_object_object_get_ex(host, "implementation", &v) ? json_object_get_string(v) :
								       "python",
	       json_object_object_get_ex(host, "python", &v) ? json_object_get_string(v) : "");
	printf("%-28s %11s %11s %6s %14s %7s %11s\n", "key", "C", "host", "calls", "crossing/call",
	       "writes", "per write");
	json_object_object_foreach(keys, name, hk)
	{
		struct json_object *m, *c, *w;
		const struct bench_result *r = NULL;
		char cs[32], hs[32], xs[32], ws[32];

		for (size_t i = 0; i < n && !r; i++)
			if (res[i].ran && res[i].samples && !strcmp(key_name(res[i].key), name))
				r = &res[i];
		if (!r || !json_object_object_get_ex(hk, "median_ns", &m) ||
		    !json_object_object_get_ex(hk, "calls_per_eval", &c) ||
		    !json_object_object_get_ex(hk, "writes_per_eval", &w))
			continue;
		double h = json_object_get_double(m), calls = json_object_get_double(c);
		double writes = json_object_get_double(w), cross = (h - r->median) / calls;
		double per_write = (h - r->median) / writes;
		struct json_object *e = json_object_new_object();

		fmt_ns(r->median, cs, sizeof(cs));
		fmt_ns(h, hs, sizeof(hs));
		fmt_ns(cross, xs, sizeof(xs));
		fmt_ns(per_write, ws, sizeof(ws));
		printf("%-28s %11s %11s %6.0f %14s %7.0f %11s\n", name, cs, hs, calls, xs, writes,
		       ws);
		json_object_object_add(e, "c_ns", json_object_new_double(r->median));
		json_object_object_add(e, "host_ns", json_object_new_double(h));
		json_object_object_add(e, "calls_per_eval", json_object_new_double(calls));
		json_object_object_add(e, "writes_per_eval", json_object_new_double(writes));
		json_object_object_add(e, "crossing_ns_per_call", json_object_new_double(cross));
		json_object_object_add(e, "host_cost_ns_per_write",
				       json_object_new_double(per_write));
		json_object_object_add(jk, name, e);
	}
	json_object_object_add(out, "host", json_object_get(host));
	json_object_object_add(out, "host_vs_c", jk);
}
