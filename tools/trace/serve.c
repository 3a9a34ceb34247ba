// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * mmsb-trace serve --listen ADDR[:PORT]: record -a (every process that maps the library, those
 * started later too, spans mode) as a Prometheus exporter. record.c runs the session as it does
 * for record -a and hands us, once a second and at the end, every process's figures since it
 * was found (procs_each: one process at a time into a scratch report, its kinds summed by
 * report.c). We keep them as published figures behind a mutex; libmicrohttpd's own thread
 * renders /metrics from that copy, in the Prometheus text format, or OpenMetrics when the
 * scraper asks for it. docs/tracing.md, "serve: Prometheus", says what is exported.
 *
 * Counters never go back: a process's figure below the one last published is published as that
 * one (the TSC's rate, re-estimated at each read, can move a time by a few ns; a thread's
 * off-CPU time goes with its block when another thread takes it). An exited process keeps its
 * last figures SERVE_KEEP_S (--keep-exited), and the SERVE_KEEP_MAX that exited last at most (procs_prune):
 * memory is bounded by the live processes plus those.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <microhttpd.h>

#include "record.h"

#define SERVE_DEFAULT_PORT "9464"
#define SERVE_KEEP_S 300  /* an exited process: 5 minutes (--keep-exited) */
#define SERVE_KEEP_MAX 64 /* and the last 64 at most */

/*
 * The histogram's le bounds: the library's own log-linear slots (8 a power of two) from 2^10 ns
 * (1.024 us) to 2^37 ns (137 s), so a quantile is interpolated in the same slots as the table's
 * p50/p99 and agrees with it; shorter spans fall in the first bucket, longer ones in +Inf.
 * 217 bounds: slot LE_SLOT0 + j starts at bound j.
 */
#define LE_SLOT0 64  /* mmsb_hist_slot(1 << 10) */
#define LE_SLOTN 280 /* mmsb_hist_slot(1ull << 37) */
#define N_LE (LE_SLOTN - LE_SLOT0 + 1)
_Static_assert(LE_SLOTN < HIST_SLOTS, "le bounds inside the slots");

struct sv_kind {
	uint64_t calls, total_ns, self_ns, off_ns, runq_ns;
	uint64_t le[N_LE]; /* spans shorter than bound j, cumulative */
};

struct sv_proc {
	uint64_t serial;
	int pid;
	bool exited;
	char comm[16], cgroup[128];
	uint32_t kinds; /* the kinds traced: their counters from 0, so increase() sees the first */
	uint32_t ran;	/* those with a call: their histograms */
	uint64_t lost, deep, torn;
	struct sv_kind k[SPAN_KINDS];
};

/* the tool's own health, every figure a counter since the start unless said */
struct sv_health {
	uint64_t found, exited, scrapes, exports;
	uint64_t overhead_ns;		  /* spans x span_cost_ns, every process's */
	uint64_t lost, deep, torn;	  /* spans not aggregated, past depth; blocks torn */
	uint64_t smp_lost, switch_lost;	  /* the BPF programs' (CNT_SPAN_*_LOST) */
	uint64_t bpf_run_ns;		  /* their run time (kernel.bpf_stats_enabled) */
	uint64_t span_cost_ns, export_ns; /* gauges: a span's cost, the last export's time */
	int live, kept;			  /* gauges: processes followed now, exited kept */
};

static struct {
	pthread_mutex_t lock; /* pub, n_pub, h */
	struct sv_proc *pub, *cur;
	int n_pub, n_cur, cap_cur, cap_pub;
	struct sv_health h;
	struct MHD_Daemon *d;
	int stats_fd;
	uint64_t keep_ns;
} sv = { .lock = PTHREAD_MUTEX_INITIALIZER,
	 .stats_fd = -1,
	 .keep_ns = SERVE_KEEP_S * 1000000000ull };

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* One process's figures, from its scratch report (procs_each's callback). */
static void take_proc(void *ctx, uint64_t serial, const struct proc_row *row,
		      const struct report *rp)
{
	const uint32_t *mask = ctx;
	struct sv_proc *p;

	if (sv.n_cur == sv.cap_cur) {
		int cap = sv.cap_cur ? 2 * sv.cap_cur : 16;
		struct sv_proc *v = realloc(sv.cur, (size_t)cap * sizeof(*v));

		if (!v)
			return;
		sv.cur = v;
		sv.cap_cur = cap;
	}
	p = &sv.cur[sv.n_cur++];
	memset(p, 0, sizeof(*p));
	p->serial = serial;
	p->pid = row->pid;
	p->exited = row->exited;
	snprintf(p->comm, sizeof(p->comm), "%s", row->comm);
	snprintf(p->cgroup, sizeof(p->cgroup), "%s", row->cgroup);
	p->lost = rp->span_lost;
	p->deep = rp->span_deep;
	p->torn = rp->span_torn;
	p->kinds = *mask;
	for (int k = 0; k < SPAN_KINDS; k++) {
		const struct kind_total *t = &rp->kt[k];
		struct sv_kind *o = &p->k[k];
		uint64_t n = 0;
		int j = 0;

		if (!t->count)
			continue;
		p->ran |= 1u << k;
		o->calls = t->count;
		o->total_ns = t->total;
		o->self_ns = t->self;
		o->off_ns = rp->off_ns[k];
		o->runq_ns = rp->wait_ns[k];
		/* bound j holds the slots below LE_SLOT0 + j */
		for (int s = 0; s < HIST_SLOTS && j < N_LE; s++) {
			while (j < N_LE && s >= LE_SLOT0 + j)
				o->le[j++] = n;
			n += t->hist[s];
		}
		while (j < N_LE)
			o->le[j++] = n;
	}
}

/* cur's figures never below prev's (the same process, last published): counters go on. */
static void clamp(struct sv_proc *cur, const struct sv_proc *prev, struct sv_health *h)
{
	uint64_t calls = 0, prev_calls = 0;

	cur->lost = max_u64(cur->lost, prev->lost);
	cur->deep = max_u64(cur->deep, prev->deep);
	cur->torn = max_u64(cur->torn, prev->torn);
	cur->kinds |= prev->kinds;
	cur->ran |= prev->ran;
	for (int k = 0; k < SPAN_KINDS; k++) {
		struct sv_kind *c = &cur->k[k];
		const struct sv_kind *p = &prev->k[k];

		if (!(cur->kinds & (1u << k)))
			continue;
		prev_calls += p->calls;
		c->calls = max_u64(c->calls, p->calls);
		calls += c->calls;
		c->total_ns = max_u64(c->total_ns, p->total_ns);
		c->self_ns = max_u64(c->self_ns, p->self_ns);
		c->off_ns = max_u64(c->off_ns, p->off_ns);
		c->runq_ns = max_u64(c->runq_ns, p->runq_ns);
		/* cumulative in j before and after: the max of two such is too */
		for (int j = 0; j < N_LE; j++)
			c->le[j] = max_u64(c->le[j], p->le[j]);
		if (c->le[N_LE - 1] > c->calls)
			c->calls = c->le[N_LE - 1];
	}
	h->overhead_ns += (calls - prev_calls) * h->span_cost_ns;
	h->lost += cur->lost - prev->lost;
	h->deep += cur->deep - prev->deep;
	h->torn += cur->torn - prev->torn;
	h->exited += cur->exited && !prev->exited;
}

void serve_export(struct procs *p, const struct inproc_maps *m, uint32_t mask,
		  const __u64 *counters, uint64_t span_cost_ns, uint64_t bpf_run_ns)
{
	static const struct sv_proc zero;
	uint64_t t0 = mono_ns();
	struct sv_health h;
	int i = 0;

	if (sv.stats_fd < 0 || !p)
		return;
	sv.n_cur = 0;
	procs_each(p, m, mask, sv.stats_fd, take_proc, &mask);
	pthread_mutex_lock(&sv.lock);
	h = sv.h;
	pthread_mutex_unlock(&sv.lock);
	h.span_cost_ns = span_cost_ns;
	h.live = h.kept = 0;
	/* both in the order procs found them (serials increasing): one pass */
	for (int c = 0; c < sv.n_cur; c++) {
		struct sv_proc *cur = &sv.cur[c];

		while (i < sv.n_pub && sv.pub[i].serial < cur->serial)
			i++;
		if (i < sv.n_pub && sv.pub[i].serial == cur->serial) {
			clamp(cur, &sv.pub[i], &h);
		} else {
			h.found++;
			clamp(cur, &zero, &h);
		}
		h.live += !cur->exited;
		h.kept += cur->exited;
	}
	h.bpf_run_ns = max_u64(h.bpf_run_ns, bpf_run_ns);
	h.smp_lost = counters[CNT_SPAN_SMP_LOST];
	h.switch_lost = counters[CNT_SPAN_SWITCH_LOST];
	h.exports++;
	h.export_ns = mono_ns() - t0;
	pthread_mutex_lock(&sv.lock);
	{
		/* swap: the old published array is the next export's to fill */
		struct sv_proc *v = sv.pub;
		int cap = sv.cap_pub;

		sv.pub = sv.cur;
		sv.n_pub = sv.n_cur;
		sv.cap_pub = sv.cap_cur;
		sv.cur = v;
		sv.cap_cur = cap;
		sv.n_cur = 0;
	}
	h.scrapes = sv.h.scrapes;
	sv.h = h;
	pthread_mutex_unlock(&sv.lock);
	/* what exited long enough ago goes only now: every exit was published once */
	procs_prune(p, m, mono_ns(), sv.keep_ns, SERVE_KEEP_MAX);
}

/* A label value as the text formats quote it: backslash, double quote and newline escaped. */
static void put_label(FILE *f, const char *name, const char *v)
{
	fprintf(f, "%s=\"", name);
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fprintf(f, "\\%c", *v);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
	fputc('"', f);
}

static void put_labels(FILE *f, const struct sv_proc *p, int k)
{
	fprintf(f, "{pid=\"%d\",", p->pid);
	put_label(f, "comm", p->comm);
	fputc(',', f);
	put_label(f, "cgroup", p->cgroup);
	fputc(',', f);
	put_label(f, "kind", span_name(k));
}

/* HELP and TYPE; OpenMetrics names a counter's family without its _total. */
static void put_head(FILE *f, bool om, const char *name, const char *type, const char *help)
{
	size_t len = strlen(name);

	if (om && !strcmp(type, "counter") && len > 6 && !strcmp(name + len - 6, "_total"))
		len -= 6;
	fprintf(f, "# HELP %.*s %s\n# TYPE %.*s %s\n", (int)len, name, help, (int)len, name, type);
}

static double secs(uint64_t ns)
{
	return (double)ns / 1e9;
}

enum { F_CALLS, F_TOTAL, F_SELF, F_ON, F_OFF, F_RUNQ };

/* One counter of every (process, kind). */
static void put_kind_counter(FILE *f, bool om, const char *name, const char *help, int what)
{
	put_head(f, om, name, "counter", help);
	for (int i = 0; i < sv.n_pub; i++) {
		const struct sv_proc *p = &sv.pub[i];

		for (int k = 0; k < SPAN_KINDS; k++) {
			const struct sv_kind *t = &p->k[k];
			uint64_t busy = t->off_ns + t->runq_ns;

			if (!(p->kinds & (1u << k)))
				continue;
			fputs(name, f);
			put_labels(f, p, k);
			switch (what) {
			case F_CALLS:
				fprintf(f, "} %" PRIu64 "\n", t->calls);
				break;
			case F_TOTAL:
				fprintf(f, "} %.9f\n", secs(t->total_ns));
				break;
			case F_SELF:
				fprintf(f, "} %.9f\n", secs(t->self_ns));
				break;
			case F_ON:
				/* the self time less what the switch program saw off a CPU */
				fprintf(f, "} %.9f\n",
					secs(t->self_ns > busy ? t->self_ns - busy : 0));
				break;
			case F_OFF:
				fprintf(f, ",state=\"asleep\"} %.9f\n", secs(t->off_ns));
				fputs(name, f);
				put_labels(f, p, k);
				fprintf(f, ",state=\"runq\"} %.9f\n", secs(t->runq_ns));
				break;
			}
		}
	}
}

static void put_histogram(FILE *f, bool om)
{
	static const char name[] = "mmsb_span_duration_seconds";

	put_head(f, om, name, "histogram",
		 "Span durations, inclusive; le bounds are the library's log-linear slots, 8 a "
		 "power of two from 2^10 ns to 2^37 ns");
	for (int i = 0; i < sv.n_pub; i++) {
		const struct sv_proc *p = &sv.pub[i];

		for (int k = 0; k < SPAN_KINDS; k++) {
			const struct sv_kind *t = &p->k[k];

			if (!(p->ran & (1u << k)))
				continue;
			for (int j = 0; j < N_LE; j++) {
				fprintf(f, "%s_bucket", name);
				put_labels(f, p, k);
				fprintf(f, ",le=\"%.9g\"} %" PRIu64 "\n",
					secs(mmsb_hist_slot_low(LE_SLOT0 + (uint32_t)j)), t->le[j]);
			}
			fprintf(f, "%s_bucket", name);
			put_labels(f, p, k);
			fprintf(f, ",le=\"+Inf\"} %" PRIu64 "\n", t->calls);
			fprintf(f, "%s_sum", name);
			put_labels(f, p, k);
			fprintf(f, "} %.9f\n", secs(t->total_ns));
			fprintf(f, "%s_count", name);
			put_labels(f, p, k);
			fprintf(f, "} %" PRIu64 "\n", t->calls);
		}
	}
}

static void put_one(FILE *f, bool om, const char *name, const char *type, const char *help,
		    const char *labels, double v)
{
	if (help)
		put_head(f, om, name, type, help);
	fprintf(f, "%s%s %.9g\n", name, labels ? labels : "", v);
}

/* The page, from the published copy (sv.lock held). */
static void render(FILE *f, bool om)
{
	const struct sv_health *h = &sv.h;
	struct rusage ru;

	put_kind_counter(f, om, "mmsb_span_calls_total", "Spans closed, per process and kind",
			 F_CALLS);
	put_kind_counter(f, om, "mmsb_span_seconds_total",
			 "Time in spans, inclusive of the spans nested in them", F_TOTAL);
	put_kind_counter(f, om, "mmsb_span_self_seconds_total",
			 "Time in spans, less the spans nested in them", F_SELF);
	put_kind_counter(f, om, "mmsb_span_oncpu_seconds_total",
			 "Self time on a CPU: the self time less the off-CPU time", F_ON);
	put_kind_counter(f, om, "mmsb_span_offcpu_seconds_total",
			 "Self time off a CPU: asleep, or runnable waiting for a CPU (runq)",
			 F_OFF);
	put_histogram(f, om);
	put_one(f, om, "mmsb_trace_processes", "gauge",
		"Processes in /metrics: followed now (live), exited and kept", "{state=\"live\"}",
		h->live);
	put_one(f, om, "mmsb_trace_processes", "gauge", NULL, "{state=\"exited\"}", h->kept);
	put_one(f, om, "mmsb_trace_processes_found_total", "counter",
		"Processes that map the library, found since the start", NULL, (double)h->found);
	put_one(f, om, "mmsb_trace_processes_exited_total", "counter",
		"Processes followed that exited since the start", NULL, (double)h->exited);
	put_one(f, om, "mmsb_trace_scrapes_total", "counter", "Scrapes of /metrics served", NULL,
		(double)h->scrapes);
	put_one(f, om, "mmsb_trace_exports_total", "counter",
		"Reads of every process's figures (one a second)", NULL, (double)h->exports);
	put_one(f, om, "mmsb_trace_lost_total", "counter",
		"What could not be counted: switches and samples whose thread's span block could "
		"not be read, spans closed when a thread's node table was full, spans past the "
		"stack's depth, blocks read while their thread wrote",
		"{what=\"switches\"}", (double)h->switch_lost);
	put_one(f, om, "mmsb_trace_lost_total", "counter", NULL, "{what=\"samples\"}",
		(double)h->smp_lost);
	put_one(f, om, "mmsb_trace_lost_total", "counter", NULL, "{what=\"spans_not_aggregated\"}",
		(double)h->lost);
	put_one(f, om, "mmsb_trace_lost_total", "counter", NULL, "{what=\"spans_past_depth\"}",
		(double)h->deep);
	put_one(f, om, "mmsb_trace_lost_total", "counter", NULL, "{what=\"blocks_torn\"}",
		(double)h->torn);
	put_one(f, om, "mmsb_trace_estimated_overhead_seconds_total", "counter",
		"What the spans cost the traced processes, estimated: spans times the cost of "
		"one, measured on this host at the start",
		NULL, secs(h->overhead_ns));
	put_one(f, om, "mmsb_trace_bpf_run_seconds_total", "counter",
		"Run time of the kernel programs (the context switches' and the registration's), "
		"counted while the kernel's BPF statistics are on (0: not counted here)",
		NULL, secs(h->bpf_run_ns));
	put_one(f, om, "mmsb_trace_span_cost_seconds", "gauge",
		"What one span costs a traced process on this host (measured)", NULL,
		secs(h->span_cost_ns));
	put_one(f, om, "mmsb_trace_export_duration_seconds", "gauge",
		"How long the last read of every process's figures took", NULL, secs(h->export_ns));
	if (!getrusage(RUSAGE_SELF, &ru))
		put_one(f, om, "mmsb_trace_cpu_seconds_total", "counter",
			"CPU time of the exporter itself, user and system", NULL,
			(double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
				(double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
	if (om)
		fputs("# EOF\n", f);
}

/* OpenMetrics when the Accept header names it, as Prometheus's scrape does; else the text 0.0.4. */
static bool wants_openmetrics(struct MHD_Connection *c)
{
	const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept");

	return a && strstr(a, "application/openmetrics-text");
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned int status, const char *type,
			     char *body, size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result ret;

	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", type);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	bool om = wants_openmetrics(c);
	char *body = NULL;
	size_t len = 0;
	FILE *f;

	(void)cls;
	(void)version;
	(void)upload;
	(void)upload_size;
	(void)con_cls;
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", strdup("GET only\n"), 9);
	if (strcmp(url, "/metrics")) {
		static const char page[] = "mmsb-trace serve: the metrics are at /metrics\n";

		return reply(c, strcmp(url, "/") ? MHD_HTTP_NOT_FOUND : MHD_HTTP_OK, "text/plain",
			     strdup(page), sizeof(page) - 1);
	}
	f = open_memstream(&body, &len);
	if (!f)
		return MHD_NO;
	pthread_mutex_lock(&sv.lock);
	sv.h.scrapes++;
	render(f, om);
	pthread_mutex_unlock(&sv.lock);
	if (fclose(f)) {
		free(body);
		return MHD_NO;
	}
	return reply(c, MHD_HTTP_OK,
		     om ? "application/openmetrics-text; version=1.0.0; charset=utf-8" :
			  "text/plain; version=0.0.4; charset=utf-8",
		     body, len);
}

/* ADDR[:PORT], [V6ADDR][:PORT]: the address to bind, port 9464 when none is given. */
static int resolve(const char *listen, struct sockaddr_storage *ss)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV }, *ai;
	char host[256];
	const char *port = SERVE_DEFAULT_PORT, *colon;
	int err;

	if (listen[0] == '[') {
		const char *end = strchr(listen, ']');

		if (!end || (end[1] && end[1] != ':'))
			return -EINVAL;
		snprintf(host, sizeof(host), "%.*s", (int)(end - listen - 1), listen + 1);
		if (end[1])
			port = end + 2;
	} else if ((colon = strrchr(listen, ':')) && colon == strchr(listen, ':')) {
		snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
		port = colon + 1;
	} else {
		snprintf(host, sizeof(host), "%s", listen);
	}
	err = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
	if (err)
		return -EINVAL;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	return 0;
}

int serve_start(const char *listen)
{
	struct sockaddr_storage ss = { 0 };
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;

	if (resolve(listen, &ss)) {
		p_err("--listen %s: not an address (ADDR[:PORT], [V6ADDR][:PORT])", listen);
		return -1;
	}
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* on demand: a process's entries, tens, not the 16384 preallocated */
	sv.stats_fd = bpf_map_create(
		BPF_MAP_TYPE_HASH, "serve_stats", sizeof(struct span_key),
		sizeof(struct span_stats), 16384,
		&(struct bpf_map_create_opts){ .sz = sizeof(struct bpf_map_create_opts),
					       .map_flags = BPF_F_NO_PREALLOC });
	if (sv.stats_fd < 0) {
		p_err("serve: a map for each process's figures: %s", strerror(errno));
		return -1;
	}
	/* a few connections, each with a deadline: a stuck scraper holds nothing for long */
	sv.d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR,
				(struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, 16u,
				MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
	if (!sv.d) {
		p_err("--listen %s: cannot listen there (in use? not an address of this host?)",
		      listen);
		return -1;
	}
	fprintf(stderr, "%s: serving /metrics on %s (Prometheus text, OpenMetrics)\n", prog_name,
		listen);
	return 0;
}

void serve_stop(void)
{
	if (sv.d)
		MHD_stop_daemon(sv.d);
	sv.d = NULL;
	if (sv.stats_fd >= 0)
		close(sv.stats_fd);
	sv.stats_fd = -1;
	free(sv.pub);
	free(sv.cur);
	sv.pub = sv.cur = NULL;
	sv.n_pub = sv.n_cur = sv.cap_pub = sv.cap_cur = 0;
}

int serve_help(void)
{
	printf("Usage: %s serve --listen ADDR[:PORT] [--keep-exited SECS] [-l LIB] [-k KINDS]\n\n"
	       "Export every process's spans to Prometheus: record -a (every process that maps\n"
	       "the library, those started later too) served as /metrics on ADDR:PORT (port %s\n"
	       "when none is given), in the Prometheus text format or OpenMetrics, per process\n"
	       "(pid, comm, cgroup) and span kind: calls, inclusive, self, on-CPU and off-CPU\n"
	       "seconds, the duration histogram; and the tool's own health. Figures count from\n"
	       "the start (a process's from when it was found), read once a second; an exited\n"
	       "process keeps its last figures %d s, and the last %d exited at most. SIGTERM or\n"
	       "Ctrl-C ends it, with record's table of the whole run on stdout. Root only.\n\n"
	       "      --listen ADDR[:PORT]  where to serve, e.g. 127.0.0.1:9464, [::1]:9464\n"
	       "      --keep-exited SECS  how long an exited process stays (default %d)\n"
	       "  -l, --lib PATH         the libmmsb.so (default: the one this tool runs with)\n"
	       "  -k, --kinds LIST       only these span kinds (as record -k)\n"
	       "  -d, --duration SECS    stop after SECS (default: until a signal)\n\n"
	       "The other record options apply as they do to record -a (record --help).\n"
	       "docs/tracing.md, \"serve: Prometheus\"; contrib/mmsb-trace.service runs it.\n",
	       prog_name, SERVE_DEFAULT_PORT, SERVE_KEEP_S, SERVE_KEEP_MAX, SERVE_KEEP_S);
	return EXIT_OK;
}

int do_serve(int argc, char **argv)
{
	char **args = calloc((size_t)argc + 4, sizeof(*args));
	bool listen = false;
	int n = 0, ret;

	if (!args)
		return EXIT_FAIL;
	for (int i = 1; i < argc; i++)
		listen |= !strncmp(argv[i], "--listen", 8);
	if (!listen && !(argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))) {
		free(args);
		p_err("serve needs --listen ADDR[:PORT] (e.g. 127.0.0.1:%s)", SERVE_DEFAULT_PORT);
		return EXIT_USAGE;
	}
	/* record -a -F 0 [OPTIONS]: no stack samples, nothing here shows them */
	args[n++] = "serve";
	args[n++] = "-a";
	args[n++] = "-F";
	args[n++] = "0";
	for (int i = 1; i < argc; i++) {
		uint64_t v;

		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			free(args);
			return serve_help();
		}
		/* serve's own: record never sees it */
		if (!strcmp(argv[i], "--keep-exited")) {
			if (i + 1 >= argc || parse_u64(argv[i + 1], 0, 86400 * 365, &v)) {
				p_err("--keep-exited takes whole seconds");
				free(args);
				return EXIT_USAGE;
			}
			sv.keep_ns = v * 1000000000ull;
			i++;
			continue;
		}
		args[n++] = argv[i];
	}
	ret = do_record(n, args);
	free(args);
	return ret;
}
