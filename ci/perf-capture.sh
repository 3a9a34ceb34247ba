#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Capture performance: build, run mmsb-bench in stats mode (this machine's figures, untraced),
# run it again under `mmsb-trace record -P ci` (where the time goes), run the regression gate
# (ci/perf-gate.sh: BASE against this tree by instruction counts and paired runs), and write an
# artifact folder with a one-page summary.md. Exit 1 when the gate finds a regression or the
# validator fails. A stored baseline is a report of the machine it was measured on: the figures
# are compared with it when one matches, never judged by it. docs/ci.md has the rules.
#
# Usage: ci/perf-capture.sh [OUTDIR]        (default .output/perf-capture; make perf-capture)
#   PERF_GATE=off        report only: never exit 1 for a regression or the validator
#   PERF_GATE_BASE=REV   the gate's BASE (default: the merge base with main, or HEAD~1)
#   PERF_GATE_OUT=DIR    the gate's builds and runs (default OUTDIR/gate; kept between runs)
#   PERF_BASELINE=FILE   compare with FILE (default: the ci/baselines/*.json of this machine)
#   PERF_KEYS=LIST       only these bench keys (then the validator, which needs them all, is off)
#   PERF_TRACE=off       skip the traced run
#   O=DIR                the build directory (default .output)
set -uo pipefail
cd "$(dirname "$0")/.."
O=${O:-.output}
OUT=${1:-$O/perf-capture}
GATE=${PERF_GATE:-on}
case "$GATE" in on | off) ;; *) echo "perf-capture: PERF_GATE is on or off, not '$GATE'" >&2; exit 2 ;; esac

rm -rf "$OUT"
mkdir -p "$OUT" || exit 1
cmds="$OUT/commands.sh"
printf '#!/bin/sh\n# the commands of this capture, in order (from %s)\n' "$PWD" >"$cmds"
log() { echo "perf-capture: $*" >&2; }
# run CMD...: record it, then run it
run() {
	printf '%q ' "$@" >>"$cmds"
	echo >>"$cmds"
	"$@"
}
status() { echo "$1" >>"$OUT/status"; }

t0=$(date +%s)
# the bench, and the tracer when the traced run is wanted
targets=("$O/mmsb-bench")
[ "${PERF_TRACE:-on}" = off ] || targets=(all)
run make -s -j"$(nproc)" O="$O" "${targets[@]}" >"$OUT/build.txt" 2>&1 || { log "build failed: $OUT/build.txt"; cat "$OUT/build.txt" >&2; exit 1; }
"$O/mmsb-bench" --machine >"$OUT/machine.json" || exit 1

# the baseline: named, or the one measured on this machine
base=${PERF_BASELINE:-}
if [ -z "$base" ]; then
	base=$(python3 ci/perf-report.py pick-baseline "$OUT/machine.json" ci/baselines)
	[ -n "$base" ] || status "baseline_note=no baseline for this machine in ci/baselines (docs/ci.md: refreshing a baseline)"
elif [ ! -r "$base" ]; then
	log "$base: no such baseline"
	exit 2
fi

bench=("$O/mmsb-bench" --json "$OUT/bench.json")
if [ -n "${PERF_KEYS:-}" ]; then
	bench+=(-k "$PERF_KEYS")
	status "validator_note=only some keys ran (PERF_KEYS)"
else
	bench+=(--validate --validation-json "$OUT/validation.json")
fi
[ -n "$base" ] && bench+=(--compare "$base" --compare-json "$OUT/compare.json")
log "bench (stats mode, untraced)${base:+, compared with $base (a report, not judged)}"
run "${bench[@]}" >"$OUT/bench.txt" 2>"$OUT/bench.err"
bench_rc=$?
cat "$OUT/bench.err" >&2

# the traced run: attribution, not figures (tracing costs every short call a probe hit)
if [ "${PERF_TRACE:-on}" = off ]; then
	status "trace_note=PERF_TRACE=off"
elif [ ! -x "$O/mmsb-trace" ]; then
	status "trace_note=mmsb-trace was not built (no BTF, bpftool or clang at build time)"
	log "trace skipped: mmsb-trace was not built; the benchmarks are captured"
elif ! "$O/mmsb-trace" -j features | grep -q '"privileged": true'; then
	status "trace_note=needs root, or CAP_BPF and CAP_PERFMON"
	log "trace skipped: needs root, or CAP_BPF and CAP_PERFMON; the benchmarks are captured"
elif [ ! -r /sys/kernel/btf/vmlinux ]; then
	status "trace_note=the kernel has no BTF"
	log "trace skipped: the kernel has no BTF; the benchmarks are captured"
else
	traced=("$O/mmsb-bench" --json "$OUT/bench-traced.json")
	[ -n "${PERF_KEYS:-}" ] && traced+=(-k "$PERF_KEYS")
	log "the same bench under mmsb-trace record -P ci"
	if ! run "$O/mmsb-trace" record -P ci -o "$OUT" -- "${traced[@]}" >"$OUT/trace.txt" 2>"$OUT/trace.err"; then
		status "trace_note=$(tail -1 "$OUT/trace.err")"
		log "trace failed: $(tail -1 "$OUT/trace.err")"
	fi
fi

# the gate: BASE against this tree, in this job
log "the regression gate (ci/perf-gate.sh)"
gdir=${PERF_GATE_OUT:-$OUT/gate}
run env PERF_GATE_OUT="$gdir" PERF_GATE_KEYS="${PERF_KEYS:-}" O="$O" \
	ci/perf-gate.sh ${PERF_GATE_BASE:+"$PERF_GATE_BASE"} >"$OUT/gate.txt" 2>"$OUT/gate.err"
gate_rc=$?
cat "$OUT/gate.err" >&2
[ -r "$gdir/gate.md" ] && cp "$gdir/gate.md" "$OUT/gate.md"
[ -r "$gdir/gate.json" ] && cp "$gdir/gate.json" "$OUT/gate.json"

# judge
regressed=0 invalid=0
if [ $gate_rc -eq 1 ]; then
	# a regression, or a key HEAD failed to run: the gate failed either way
	regressed=$(python3 -c 'import json,sys; print(max(1, sum(k["verdict"] == "REGRESSION" or k["verdict"].startswith("FAILED") for k in json.load(open(sys.argv[1]))["keys"])))' "$OUT/gate.json" 2>/dev/null || echo 1)
elif [ $gate_rc -ne 0 ]; then
	status "gate_note=$(grep 'perf-gate:' "$OUT/gate.err" | tail -1)"
fi
# a bench that failed is a failure; one that only differs from a stored baseline is a report
[ "$bench_rc" -ne 0 ] && [ ! -r "$OUT/compare.json" ] && [ -n "$base" ] &&
	log "the comparison did not complete (mmsb-bench exit $bench_rc)"
if [ -r "$OUT/validation.json" ]; then
	invalid=$(python3 -c 'import json,sys; v=json.load(open(sys.argv[1])); print(v["total"]-v["pass_count"])' "$OUT/validation.json")
fi
if [ "$bench_rc" -ne 0 ] && [ "$invalid" -eq 0 ]; then
	log "mmsb-bench failed (exit $bench_rc): $OUT/bench.txt"
	invalid=1
fi
verdict=pass
if [ "$regressed" -gt 0 ] || [ "$invalid" -gt 0 ]; then
	verdict=$([ "$GATE" = on ] && echo FAIL || echo "failures reported (PERF_GATE=off)")
fi
status "gate=$GATE"
status "verdict=$verdict"
python3 ci/perf-report.py summary "$OUT"
log "$(head -1 "$OUT/summary.md" | sed 's/^# //') in $(($(date +%s) - t0)) s; artifacts and summary.md in $OUT"
[ "$regressed" -gt 0 ] && log "$regressed key(s) regressed beyond their band against the gate's BASE (listed above)"
[ "$invalid" -gt 0 ] && log "the validator failed: $OUT/validation.json"
[ "$verdict" = FAIL ] && exit 1
[ "$GATE" = off ] && [ "$verdict" != pass ] && log "PERF_GATE=off: reported, not failed"

exit 0
