// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Count USDT hits per probe: one program attached to every probe, each attachment carrying its
 * slot as the USDT cookie. Also sums each hit's first argument, so a test can check that argument
 * specs decode. The probe tests and mmsb-trace's overhead calibration use it.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
/*
 * Every site of every probe: api__entry's 98 sites each pass their function id as a constant,
 * one argument spec apiece, and with the rest that is past libbpf's default of 256 specs.
 */
#define BPF_USDT_MAX_SPEC_CNT 512
#include <bpf/usdt.bpf.h>

#include "usdt_count.h"

/* only this process (0: any) */
const volatile __u32 targ_tgid = 0;

__u64 hits[USDT_COUNT_MAX] = {};
__u64 arg0_sum[USDT_COUNT_MAX] = {};

SEC("usdt")
int count_hit(struct pt_regs *ctx)
{
	__u64 slot = bpf_usdt_cookie(ctx);
	long arg0 = 0;

	if (targ_tgid && (bpf_get_current_pid_tgid() >> 32) != targ_tgid)
		return 0;
	if (slot >= USDT_COUNT_MAX)
		return 0;
	__sync_fetch_and_add(&hits[slot], 1);
	if (bpf_usdt_arg_cnt(ctx) > 0 && !bpf_usdt_arg(ctx, 0, &arg0))
		__sync_fetch_and_add(&arg0_sum[slot], (__u64)arg0);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
