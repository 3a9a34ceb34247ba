/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * USDT probes attached with one uprobe_multi link per program (kernel >= 6.6) instead of one
 * perf-event uprobe per call site, as libbpf 1.1's bpf_program__attach_usdt() does: the kernel
 * removes a link's uprobes in one batch, one synchronisation for all of them, where closing a
 * perf event costs 80-90 ms per site (docs/tracing.md, "Attach and detach time"). libbpf 1.1
 * has no API for it, so the link is created with the bpf(2) syscall, and the argument specs that
 * the BPF side's bpf_usdt_arg()/bpf_usdt_cookie() read are written as libbpf's usdt.c writes them.
 */
#ifndef __MMSB_USDT_MULTI_H
#define __MMSB_USDT_MULTI_H

#include <stdint.h>
#include <sys/types.h>

#include <bpf/libbpf.h>

#include "usdt_helpers.h"

/*
 * 1 when this kernel creates uprobe_multi links and filters them by process (6.6 had the link,
 * the process filter came later: libbpf's own probe, repeated here), 0 when not, or when
 * MMSB_TRACE_NO_UPROBE_MULTI is set in the environment (the per-site path, for comparison).
 * Probed once, loading a two-instruction program; needs CAP_BPF.
 */
int usdt_multi_supported(void);

/*
 * Before the object's load, once: its N programs PROGS will be attached with usdt_multi_attach()
 * (the kernel takes such a link only for a program loaded with that attach type, and such a
 * program then attaches no other way), and its __bpf_usdt_specs map gets room for our specs above
 * libbpf's own. 0 or -errno.
 */
int usdt_multi_prepare(struct bpf_object *obj, struct bpf_program *const *progs, int n);

/* The spec ids one object's multi links use, handed out from the top of its map down. */
struct usdt_multi_specs {
	int map_fd;
	int next;  /* the next id to use */
	int floor; /* the lowest we may use: libbpf's own go from 0 up to it */
};

/* Whether PROG was prepared by usdt_multi_prepare(): it attaches with usdt_multi_attach() only. */
int usdt_multi_prepared(const struct bpf_program *prog);

/* After the object's load (prepared): the spec ids its links may use. 0 or -errno. */
int usdt_multi_specs_init(struct usdt_multi_specs *sp, struct bpf_object *obj);

/* One call site to attach, and what bpf_usdt_cookie() returns there. */
struct usdt_multi_site {
	const struct usdt_note *note;
	uint64_t usdt_cookie;
};

struct usdt_multi_link;

/*
 * PROG on each of the N call sites of BINARY (a path) in process PID (0: every process), one
 * uprobe_multi link, the sites' semaphores raised by the kernel while it is in. NULL with errno
 * set on failure (EINVAL for an argument spec libbpf would refuse too, E2BIG when the spec map
 * is full).
 */
struct usdt_multi_link *usdt_multi_attach(struct bpf_program *prog, pid_t pid, const char *binary,
					  const struct usdt_multi_site *sites, int n,
					  struct usdt_multi_specs *sp);

/* The link's sites: out all at once at usdt_multi_link_destroy(). NULL is a no-op. */
void usdt_multi_link_destroy(struct usdt_multi_link *l);

#endif /* __MMSB_USDT_MULTI_H */
