#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# One run of the spin workload (100 updates, each recomputing a child that spins 2 ms) with
# mmsb-trace --mode probes and a bpftrace script on the same update and recompute spans, both
# attached before the workload starts. Prints a line a kind:
#   KIND MMSB_CALLS MMSB_TOTAL_NS BPFTRACE_CALLS BPFTRACE_TOTAL_NS
# tests/test_trace.sh judges the counts (exact), ci/perf-check.sh the totals (a time: within 5 %).
# Usage: O=DIR tests/helpers/bt-agree.sh SCRATCH_DIR       (root; bpftrace installed)
set -u
O=${O:-.output}
T="$O/mmsb-trace"
WS="$(realpath "$O/tests/trace_workload_static")"
tmp=$1
pids=()
trap 'for p in ${pids[@]+"${pids[@]}"}; do kill "$p" 2>/dev/null; done' EXIT

sed "s|@WORKLOAD@|$WS|g" "$(dirname "$0")/spans.bt" >"$tmp/spans.bt"
rm -f "$tmp/hold"
mkfifo "$tmp/hold"
MMSB_WORKLOAD_HOLD="$tmp/hold" "$WS" spin 100 2000 >"$tmp/w.out" &
wpid=$!
pids+=("$wpid")
# attach once the workload itself runs (not the shell that is about to exec it)
for _ in $(seq 100); do [ "$(readlink "/proc/$wpid/exe")" = "$WS" ] && break; sleep 0.02; done
"$T" record --mode probes -p "$wpid" -k update,recompute -J "$tmp/b.json" >"$tmp/t.out" 2>"$tmp/t.err" &
tpid=$!
bpftrace -p "$wpid" "$tmp/spans.bt" >"$tmp/bt.out" 2>&1 &
bpid=$!
pids+=("$tpid" "$bpid")
for _ in $(seq 300); do
	grep -q attached "$tmp/t.err" && grep -q Attaching "$tmp/bt.out" && break
	sleep 0.1
done
sleep 1
echo go >"$tmp/hold"
wait "$wpid"
wait "$tpid"
kill -INT "$bpid"
wait "$bpid"
pids=()
if ! python3 - "$tmp/b.json" "$tmp/bt.out" <<'PY'; then
import json, re, sys
j = {k["kind"]: k for k in json.load(open(sys.argv[1]))["kinds"]}
bt = dict(re.findall(r"@(\w+): (\d+)", open(sys.argv[2]).read()))
for kind in ("update", "recompute"):
    print(kind, j[kind]["calls"], j[kind]["total_ns"], bt.get(f"{kind}_n", -1), bt.get(f"{kind}_ns", -1))
PY
	sed 's/^/# /' "$tmp/t.err" "$tmp/bt.out" | tail -8 >&2
	exit 1
fi
