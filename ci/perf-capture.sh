#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Capture performance: build, run mmsb-bench in stats mode (the gated figures, untraced), run it
# again under `mmsb-trace record -P ci` (where the time goes), and write an artifact folder with a
# one-page summary.md. Then judge: exit 1 when a key regresses beyond its band against this
# machine's baseline (after re-measuring it) or when the validator fails. docs/ci.md has the rules.
#
# Usage: ci/perf-capture.sh [OUTDIR]        (default .output/perf-capture; make perf-capture)
#   PERF_GATE=off        report only: never exit 1 for a regression or the validator
#   PERF_BASELINE=FILE   compare with FILE (default: the ci/baselines/*.json of this machine)
#   PERF_KEYS=LIST       only these bench keys (then the validator, which needs them all, is off)
#   PERF_REPEATS=N       re-measure a key beyond its band up to N more times (default 2)
#   PERF_TRACE=off       skip the traced run
#   O=DIR                the build directory (default .output)
set -uo pipefail
cd "$(dirname "$0")/.."
O=${O:-.output}
OUT=${1:-$O/perf-capture}
GATE=${PERF_GATE:-on}
REPEATS=${PERF_REPEATS:-2}
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
run make -s -j"$(nproc)" all O="$O" >"$OUT/build.txt" 2>&1 || { log "build failed: $OUT/build.txt"; cat "$OUT/build.txt" >&2; exit 1; }
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
[ -n "$base" ] && bench+=(--compare "$base" --gate="$REPEATS" --compare-json "$OUT/compare.json")
log "bench (stats mode, untraced)${base:+, compared with $base}"
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

# judge
regressed=0 invalid=0
if [ -r "$OUT/compare.json" ]; then
	regressed=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["regressions"])' "$OUT/compare.json")
elif [ -n "$base" ]; then
	log "the comparison did not complete (mmsb-bench exit $bench_rc)"
	regressed=1
fi
if [ -r "$OUT/validation.json" ]; then
	invalid=$(python3 -c 'import json,sys; v=json.load(open(sys.argv[1])); print(v["total"]-v["pass_count"])' "$OUT/validation.json")
fi
if [ "$bench_rc" -ne 0 ] && [ "$regressed" -eq 0 ] && [ "$invalid" -eq 0 ]; then
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
[ "$regressed" -gt 0 ] && log "$regressed key(s) regressed beyond their band (listed above)"
[ "$invalid" -gt 0 ] && log "the validator failed: $OUT/validation.json"
[ "$verdict" = FAIL ] && exit 1
[ "$GATE" = off ] && [ "$verdict" != pass ] && log "PERF_GATE=off: reported, not failed"

exit 0
