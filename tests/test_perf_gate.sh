#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# The CI regression gate (ci/perf-capture.sh, docs/ci.md) on three stable keys:
#  1. against a baseline made 2x faster than this machine: exit 1, every key named with both
#     figures and the ratio, each re-measured before it was judged
#  2. against this machine's own fresh baseline: exit 0
#  3. PERF_GATE=off turns the same regression into a report: exit 0, the summary says so
#  4. the artifact folder is complete (trace files when root and BTF allow)
# Behaviour, not timing: the ratios are 2x by construction, the bands 1.25.
set -u
O=${O:-.output}
. "$(dirname "$0")/tap.sh"
keys=delta/cpu_sparse,propagation/single_hop,graph/topological_sort_1024

echo "TAP version 13"
echo "1..4"

if [ -n "${SAN:-}" ]; then
	for t in regression fresh report artifacts; do
		skip "$t" "the gate is judged on the plain build's figures, not under sanitizers"
	done
	exit 0
fi

# a baseline of this machine, now, and the same made twice as fast
"$O/mmsb-bench" -k "$keys" --json "$tmp/fresh.json" >/dev/null || echo "# fresh baseline failed"
python3 - "$tmp/fresh.json" "$tmp/fast.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
for cat in j["benchmarks"].values():
    for r in cat.values():
        for f in ("median_ns", "median_ns_exact"):
            if f in r:
                r[f] = r[f] / 2
json.dump(j, open(sys.argv[2], "w"))
PY

# 1. a real regression
PERF_BASELINE="$tmp/fast.json" PERF_KEYS="$keys" PERF_TRACE=off O="$O" \
	ci/perf-capture.sh "$tmp/reg" >"$tmp/reg.out" 2>"$tmp/reg.err"
rc=$?
named=0
for k in ${keys//,/ }; do
	grep -qE "regression $k: baseline .*, this run .* \(best of 3\), ratio [0-9.]+ beyond its 1.25 band" \
		"$tmp/reg.err" && named=$((named + 1))
done
if [ $rc -eq 1 ] && [ $named -eq 3 ] && grep -q "^# Perf capture: FAIL" "$tmp/reg/summary.md" &&
	grep -q "REGRESSION" "$tmp/reg/summary.md"; then
	ok "2x-faster baseline: exit 1, the 3 keys named with both figures and the ratio, best of 3 runs"
else
	sed 's/^/# /' "$tmp/reg.err" | tail -6
	bad "regression: exit $rc, $named of 3 keys named"
fi

# 2. no regression against this machine's own figures
PERF_BASELINE="$tmp/fresh.json" PERF_KEYS="$keys" PERF_TRACE=off O="$O" \
	ci/perf-capture.sh "$tmp/same" >"$tmp/same.out" 2>"$tmp/same.err"
rc=$?
if [ $rc -eq 0 ] && grep -q "^# Perf capture: pass" "$tmp/same/summary.md"; then
	ok "this machine's fresh baseline: exit 0"
else
	sed 's/^/# /' "$tmp/same.err" | tail -6
	bad "fresh baseline: exit $rc"
fi

# 3. the override
PERF_GATE=off PERF_BASELINE="$tmp/fast.json" PERF_KEYS="$keys" PERF_TRACE=off O="$O" \
	ci/perf-capture.sh "$tmp/off" >"$tmp/off.out" 2>"$tmp/off.err"
rc=$?
if [ $rc -eq 0 ] && grep -q "PERF_GATE=off" "$tmp/off/summary.md" &&
	grep -q "slower (reported)" "$tmp/off/summary.md"; then
	ok "PERF_GATE=off: the same regression reported, exit 0"
else
	bad "PERF_GATE=off: exit $rc"
fi

# 4. the artifact folder (with the trace when it can run)
trace=on why=""
if [ "$(id -u)" -ne 0 ] || [ ! -r /sys/kernel/btf/vmlinux ]; then
	trace=off why="no trace files: needs root and BTF"
fi
PERF_BASELINE="$tmp/fresh.json" PERF_KEYS="$keys" PERF_TRACE=$trace O="$O" \
	ci/perf-capture.sh "$tmp/art" >/dev/null 2>"$tmp/art.err"
rc=$?
want="bench.json bench.txt compare.json machine.json commands.sh summary.md"
[ $trace = on ] && want="$want trace.json trace.folded trace.speedscope.json trace.txt"
missing=""
for f in $want; do [ -s "$tmp/art/$f" ] || missing="$missing $f"; done
if [ $rc -le 1 ] && [ -z "$missing" ] && grep -q "mmsb-bench" "$tmp/art/commands.sh" &&
	python3 -c 'import json,sys; [json.load(open(f)) for f in sys.argv[1:]]' \
		"$tmp/art/bench.json" "$tmp/art/compare.json" "$tmp/art/machine.json"; then
	ok "artifact folder complete${why:+ ($why)}: $want"
else
	sed 's/^/# /' "$tmp/art.err" | tail -4
	bad "artifacts: exit $rc, missing:$missing"
fi
exit $fail
