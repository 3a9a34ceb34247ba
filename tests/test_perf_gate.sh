#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# timeout: 900
#
# The regression gate (ci/perf-gate.sh, docs/ci.md), judged on behaviour, never on a timing:
#  1. BASE=HEAD against an unchanged checkout of HEAD: exit 0, the instruction counts equal
#  2. the same checkout with a volatile loop in mmsb_page_update: exit 1 naming delta/cpu_sparse
#     (which calls it) with both counts and the ratio; semiring/tropical_fold_add (which does not)
#     unchanged
#  3. the paired judgment on runs made up here: HEAD slower in every round is a regression (a
#     time, and a throughput, which reads the other way); one wild round alone is not; a key
#     whose figure HEAD did not produce fails too
#  4. ci/perf-capture.sh runs the gate and writes a complete artifact folder; PERF_GATE=off
#     reports the same regression and exits 0
# The instruction counts are deterministic (test_bench.sh checks it), so these verdicts are too.
set -u
O=${O:-.output}
. "$(dirname "$0")/tap.sh"
keys=delta/cpu_sparse,semiring/tropical_fold_add
wt="$tmp/wt"

echo "TAP version 13"
echo "1..4"

why=""
[ -n "${SAN:-}" ] && why="the gate counts instructions of the plain build under valgrind"
command -v valgrind >/dev/null || why=${why:-"valgrind is not installed"}
git rev-parse --verify -q HEAD >/dev/null 2>&1 || why=${why:-"not a git checkout with a commit"}
if [ -n "$why" ]; then
	for t in unchanged regression paired capture; do skip "$t" "$why"; done
	exit 0
fi

# a clone of HEAD beside the work tree (sharing its objects, writing nothing into its .git), so
# the test judges committed code and can change it
git clone -q --shared "$(git rev-parse --show-toplevel)" "$wt" &&
	git -C "$wt" checkout -q --detach "$(git rev-parse HEAD)" || { bad "git clone"; exit 1; }
gate() {
	(cd "$wt" && PERF_GATE_KEYS=$keys PERF_GATE_PAIRED=off PERF_GATE_EVALS=50 PERF_GATE_OUT="$tmp/g" \
		ci/perf-gate.sh HEAD) >"$tmp/$1.out" 2>"$tmp/$1.err"
}

# 1. nothing changed
gate same
rc=$?
if [ $rc -eq 0 ] && grep -q "^# Perf gate: pass" "$tmp/same.out" &&
	[ "$(grep -c '| insn | .* | same |$' "$tmp/same.out")" -eq 2 ]; then
	ok "BASE=HEAD on an unchanged tree: exit 0, both keys the same count"
else
	sed 's/^/# /' "$tmp/same.err" "$tmp/same.out" | tail -8
	bad "unchanged tree: exit $rc"
fi
grep '| insn |' "$tmp/same.out" | sed 's/^/# /'

# 2. a volatile loop at the top of mmsb_page_update: a few hundred more instructions a call
sed -i '/^int mmsb_page_update(/,/^{/ s/^{$/{\n\tfor (volatile int spin = 0; spin < 50; spin++)\n\t\t;/' \
	"$wt/lib/route.c"
if ! grep -q "volatile int spin" "$wt/lib/route.c"; then
	bad "regression: could not plant the loop in lib/route.c's mmsb_page_update"
else
	gate slow
	rc=$?
	if [ $rc -eq 1 ] &&
		grep -qE "^perf-gate: regression delta/cpu_sparse: BASE [0-9,.]+ insn, HEAD [0-9,.]+ insn, ratio [0-9.]+ beyond its 1.01 band" "$tmp/slow.err" &&
		! grep -q "regression semiring" "$tmp/slow.err" &&
		grep -q '| semiring/tropical_fold_add | insn | .* | same |' "$tmp/slow.out"; then
		ok "a volatile loop in mmsb_page_update: exit 1 naming delta/cpu_sparse; the semiring key the same"
	else
		sed 's/^/# /' "$tmp/slow.err" "$tmp/slow.out" | tail -8
		bad "planted regression: exit $rc"
	fi
	grep "^perf-gate: regression" "$tmp/slow.err" | sed 's/^/# /'
fi

# 3. the paired judgment, on figures made up here: a stats key's median and a throughput
mkdir -p "$tmp/p"
python3 - "$tmp/p" <<'PY'
import json, os, sys
d = sys.argv[1]
lines = ""
for r in range(1, 6):
    for side in ("base", "head"):
        slow = side == "head"
        # HEAD: the pipeline twice as slow and the throughput halved in every round; the
        # durable delta slower in one wild round only
        durable = 2000e3 if slow and r == 3 else 199e3 if slow else 200e3
        f = os.path.join(d, f"{side}-{r}.json")
        # and HEAD's checkpoint key broke: its figure is 0
        json.dump({"benchmarks": {
            "system": {"full_pipeline": {"median_ns_exact": 2e6 if slow else 1e6}},
            "throughput": {"single_1w": {"median_ns_exact": 10.0,
                                         "throughput_per_sec": 4e7 if slow else 8e7}},
            "persistence": {"checkpoint_100pages": {"median_ns_exact": 0 if slow else 5e5}},
            "delta": {"cpu_sparse_durable": {"median_ns_exact": durable}}}}, open(f, "w"))
        lines += f"{side} {r} {f}\n"
open(os.path.join(d, "paired.raw"), "w").write(lines)
PY
: >"$tmp/p/insn.raw"
python3 ci/perf-report.py gate "$tmp/p" made-up 0 0 >"$tmp/p.out" 2>"$tmp/p.err"
rc=$?
if [ $rc -eq 1 ] && grep -q "regression system/full_pipeline: .* ratio 2.0000 beyond its 1.15 band" "$tmp/p.err" &&
	grep -q "regression throughput/single_1w: BASE 80.00 M/s, HEAD 40.00 M/s, ratio 2.0000" "$tmp/p.err" &&
	! grep -q "cpu_sparse_durable" "$tmp/p.err" &&
	grep -q "perf-gate: persistence/checkpoint_100pages: FAILED to measure" "$tmp/p.err" &&
	grep -q '| delta/cpu_sparse_durable | paired | .* | same |' "$tmp/p.out"; then
	ok "paired: slower in every round is a regression (times and throughputs); one wild round is not; a broken key fails"
else
	sed 's/^/# /' "$tmp/p.err" "$tmp/p.out" | tail -10
	bad "paired judgment: exit $rc"
fi

# 4. the capture runs the gate (on the planted regression) and keeps every artifact
run_capture() {
	# the gate's builds of test 2 are reused (the planted tree is HEAD's side)
	(cd "$wt" && PERF_GATE=$1 PERF_GATE_BASE=HEAD PERF_KEYS=$keys PERF_TRACE=off O="$tmp/g/head" \
		PERF_BASELINE=ci/baselines/c-2cpu-amd-epyc.json PERF_GATE_PAIRED=off \
		PERF_GATE_EVALS=50 PERF_GATE_OUT="$tmp/g" ci/perf-capture.sh "$tmp/cap-$1") >/dev/null 2>"$tmp/cap-$1.err"
}
run_capture on
rc_on=$?
run_capture off
rc_off=$?
missing=""
for f in bench.json bench.txt machine.json commands.sh summary.md gate.md gate.json gate.txt; do
	[ -s "$tmp/cap-on/$f" ] || missing="$missing $f"
done
if [ $rc_on -eq 1 ] && [ $rc_off -eq 0 ] && [ -z "$missing" ] &&
	grep -q "^# Perf capture: FAIL" "$tmp/cap-on/summary.md" &&
	grep -q "1 regressed (delta/cpu_sparse)" "$tmp/cap-on/summary.md" &&
	grep -q "PERF_GATE=off" "$tmp/cap-off/summary.md" &&
	grep -q "not judged" "$tmp/cap-on/summary.md"; then
	ok "perf-capture: the gate decides (exit 1; PERF_GATE=off reports, exit 0), the artifacts complete, the stored baseline a report"
else
	sed 's/^/# /' "$tmp/cap-on.err" | tail -6
	bad "perf-capture: exit $rc_on and $rc_off, missing:$missing"
fi
exit $fail
