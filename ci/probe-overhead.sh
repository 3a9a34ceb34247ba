#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# The probe overhead budget, measured (docs/probes.md):
#  1. probes built in but not attached against `make PROBES=0`, every key of the perf gate's
#     plan: the perf gate with BASE = HEAD built PROBES=0 (instructions an evaluation for the
#     CPU-bound keys, paired timed runs for the others);
#  2. the same, timed: both builds' mmsb-bench run in turn, ROUNDS times, on KEYS, pinned to
#     one CPU (CPU);
#  3. (root) the cost of one hit with a counting BPF program attached, per probe family: the
#     median with the family attached minus the median without, over the hits per evaluation.
# Usage: ci/probe-overhead.sh [ROUNDS]      (default 5; the machine should be quiet, the tree
#                                           clean: part 1 builds HEAD as committed)
#   KEYS=LIST   part 2's keys (default: three of the suite's, a scalar semiring operation and
#               an allocation, which part 1 puts past the budget)
#   CPU=N       part 2's CPU (default: the last one online)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
CPU=${CPU:-$(($(nproc) - 1))}
KEYS=${KEYS:-delta/cpu_sparse,propagation/single_hop,throughput/single_1w,semiring/boolean_accumulate,allocation/cpu_1kb}
if ! git diff --quiet HEAD -- . || [ -n "$(git ls-files --others --exclude-standard)" ]; then
	echo "probe-overhead: the tree differs from HEAD, which part 1 builds: commit first" >&2
	exit 1
fi
make -s all >/dev/null
make -s O=.output-noprobes PROBES=0 tools >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "## Every key of the perf gate's plan: PROBES=1 (HEAD) against PROBES=0 (BASE)"
echo
# the gate exits 1 for a key past its band: here that is the finding, not a failure; 2 is
rc=0
PERF_GATE_BASE_MAKE=PROBES=0 PERF_GATE_OUT="$tmp/gate" ci/perf-gate.sh HEAD >/dev/null \
	2>"$tmp/gate.err" || rc=$?
if [ $rc -gt 1 ] || [ ! -s "$tmp/gate/gate.md" ]; then
	echo "probe-overhead: the perf gate could not judge: $(tail -1 "$tmp/gate.err")" >&2
	exit 1
fi
# the instruction counts' verdicts are against 1 %, the budget; the paired ones keep their bands
sed -n '/^| key /,/^$/p' "$tmp/gate/gate.md" |
	sed '/| insn |/{s/| REGRESSION |/| over 1 % |/; s/| same |/| within 1 % |/}'
echo

for r in $(seq "$ROUNDS"); do
	taskset -c "$CPU" .output-noprobes/mmsb-bench -k "$KEYS" --json "$tmp/off$r.json" >/dev/null
	taskset -c "$CPU" .output/mmsb-bench -k "$KEYS" --json "$tmp/on$r.json" >/dev/null
done
echo "## Built in, not attached, against PROBES=0, timed ($ROUNDS rounds, alternating, CPU $CPU)"
echo
echo "| key | PROBES=0 median | PROBES=1 median | ratio (median of rounds) | spread of the ratio |"
echo "|---|---:|---:|---:|---:|"
for k in ${KEYS//,/ }; do
	python3 - "$tmp" "$ROUNDS" "$k" <<'PY'
import json, statistics, sys
d, rounds, key = sys.argv[1], int(sys.argv[2]), sys.argv[3]
c, n = key.split("/")
get = lambda f: json.load(open(f))["benchmarks"][c][n]["median_ns_exact"]
off = [get(f"{d}/off{r}.json") for r in range(1, rounds + 1)]
on = [get(f"{d}/on{r}.json") for r in range(1, rounds + 1)]
ratios = [b / a for a, b in zip(off, on)]
print(f"| {key} | {statistics.median(off):.1f} ns | {statistics.median(on):.1f} ns | "
      f"{statistics.median(ratios):.4f} | {min(ratios):.4f} .. {max(ratios):.4f} |")
PY
done

if [ "$(id -u)" -ne 0 ] || [ ! -x .output/tests/usdt_count_run ]; then
	echo
	echo "(per-hit cost skipped: needs root and the BPF skeleton)"
	exit 0
fi
echo
echo "## Cost of one hit, a counting BPF program attached, per family"
echo
echo "| family | key | hits per evaluation | median attached | median not attached | per hit |"
echo "|---|---|---:|---:|---:|---:|"
KEY=delta/cpu_sparse
for fam in api__ update__ delta__apply__ propagate__ page__alloc__ recompute__; do
	key=$KEY
	case $fam in
	recompute__) key=propagation/single_hop ;;
	page__alloc__) key=allocation/cpu_1kb ;;
	esac
	.output/mmsb-bench -k "$key" --json "$tmp/base.json" >/dev/null
	.output/tests/usdt_count_run .output/libmmsb.so "$fam" -- \
		.output/mmsb-bench -k "$key" --json "$tmp/att.json" >/dev/null 2>"$tmp/hits"
	python3 - "$tmp" "$fam" "$key" <<'PY'
import json, sys
d, fam, key = sys.argv[1:4]
c, n = key.split("/")
b = json.load(open(f"{d}/base.json"))["benchmarks"][c][n]
a = json.load(open(f"{d}/att.json"))["benchmarks"][c][n]
hits = int([l.split()[-1] for l in open(f"{d}/hits") if l.startswith("hits total")][0])
per_eval = hits / a["evals"]
cost = (a["median_ns_exact"] - b["median_ns_exact"]) / per_eval
print(f"| {fam}* | {key} | {per_eval:.2f} | {a['median_ns_exact']:.1f} ns | {b['median_ns_exact']:.1f} ns | {cost:.0f} ns |")
PY
done
