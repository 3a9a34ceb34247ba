#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# The perf regression gate: BASE against the work tree, built side by side, judged in one job.
#
#  - CPU-bound keys (mmsb-bench --gate-plan: insn) by the instructions one evaluation executes,
#    counted by valgrind's cachegrind (--cache-sim=no): a run of N evaluations subtracted from
#    one of 2N, so set-up and start-up cancel. The count is the same run to run and on any
#    machine of the kind, so the band is tight: 1 %.
#  - keys bound by fsync or by threads (paired) by timed runs of BASE and HEAD interleaved in
#    this job, key by key (ABBA...): the ratio of their medians, a regression only when every
#    round agrees, with the spread of the per-round ratios. Never against a figure stored from another
#    run or another machine.
#
# Exit 1 naming every key beyond its band (both figures and the ratio) and every key HEAD failed
# to run; 2 when it cannot judge at all (BASE does not build, or predates --evals).
# docs/ci.md has the rules, the bands and why.
#
# Usage: ci/perf-gate.sh [BASE]        (make perf-gate [BASE=REV])
#   BASE                 a revision (default: the merge base with main; HEAD~1 when that is
#                        HEAD and the tree is clean)
#   PERF_GATE_KEYS=LIST  only these keys (comma-separated; default: every key of the plan)
#   PERF_GATE_EVALS=N    evaluations per instruction count (default 200; the runs do N and 2N)
#   PERF_GATE_ROUNDS=N   paired rounds (default 5; each runs BASE and HEAD once)
#   PERF_GATE_PAIRED=off judge the instruction counts only
#   PERF_GATE_BASE_MAKE=VARS  make variables for BASE's build only, VAR=VALUE words split
#                        at blanks (no glob, no quoting): with BASE=HEAD and
#                        PROBES=0, the gate prices the probes built in (ci/probe-overhead.sh)
#   PERF_GATE_OUT=DIR    builds, counts and the report (default $O/perf-gate)
#   O=DIR                the build directory of the work tree (default .output)
set -uo pipefail
cd "$(dirname "$0")/.."
O=${O:-.output}
OUT=${PERF_GATE_OUT:-$O/perf-gate}
EVALS=${PERF_GATE_EVALS:-200}
ROUNDS=${PERF_GATE_ROUNDS:-5}
log() { echo "perf-gate: $*" >&2; }
die() {
	log "$*"
	exit 2
}

command -v valgrind >/dev/null || die "valgrind is not installed (ci/install-deps.sh installs it)"
git rev-parse --git-dir >/dev/null 2>&1 || die "not a git checkout: BASE cannot be built"

# BASE: named, or where this work forked from main
base=${1:-${BASE:-}}
if [ -z "$base" ]; then
	main=$(git rev-parse --verify -q main || git rev-parse --verify -q origin/main) || main=
	base=$([ -n "$main" ] && git merge-base HEAD "$main")
	if [ -z "$base" ] || { [ "$base" = "$(git rev-parse HEAD)" ] &&
		git diff --quiet HEAD -- . 2>/dev/null; }; then
		base=HEAD~1
	fi
fi
sha=$(git rev-parse --verify -q "$base^{commit}") || die "BASE '$base' is not a revision here"
short=$(git rev-parse --short "$sha")
mkdir -p "$OUT" || exit 2
OUT=$(realpath "$OUT")

# builds: BASE from its own tree (cached by commit and make variables, the folder's name without
# '=': make reads a target with one as an assignment), HEAD from the work tree; the bench only
BASE_MAKE=${PERF_GATE_BASE_MAKE:-}
read -ra base_vars <<<"$BASE_MAKE"
bdir="$OUT/base-$sha"
if [ -n "$BASE_MAKE" ]; then
	# readable, and told apart from a value that reads the same (A=1 B=2, A=1_B=2)
	bdir="$bdir-$(printf '%s' "$BASE_MAKE" | tr -c 'A-Za-z0-9-' _)"
	bdir="$bdir-$(printf '%s' "$BASE_MAKE" | cksum | cut -d' ' -f1)"
fi
short="$short${BASE_MAKE:+ ($BASE_MAKE)}"
if [ ! -x "$bdir/build/mmsb-bench" ]; then
	log "building BASE $short into $bdir"
	rm -rf "$bdir" && mkdir -p "$bdir/src" || exit 2
	git archive "$sha" | tar -x -C "$bdir/src" || die "git archive $short failed"
	make -s -C "$bdir/src" -j"$(nproc)" O="$bdir/build" CUDA=0 "${base_vars[@]}" \
		"$bdir/build/mmsb-bench" >"$bdir/build.log" 2>&1 ||
		die "BASE $short does not build: $bdir/build.log"
fi
# A work tree identical to BASE (make perf-gate BASE=HEAD on a clean tree) starts from BASE's
# build: the same objects. Only then: seeded from an older build, a file edited before it would
# look up to date to make.
if [ ! -d "$OUT/head" ] && [ -z "$BASE_MAKE" ] && git diff --quiet "$sha" -- . 2>/dev/null &&
	[ -z "$(git ls-files --others --exclude-standard)" ]; then
	cp -a "$bdir/build" "$OUT/head"
fi
log "building HEAD (the work tree) into $OUT/head"
make -s -j"$(nproc)" O="$OUT/head" CUDA=0 "$OUT/head/mmsb-bench" >"$OUT/head-build.log" 2>&1 ||
	die "the work tree does not build: $OUT/head-build.log"
A="$bdir/build/mmsb-bench"
B="$OUT/head/mmsb-bench"
"$A" --gate-plan 2>/dev/null | awk '{ print $2 }' >"$OUT/base-keys" && [ -s "$OUT/base-keys" ] ||
	die "BASE $short predates mmsb-bench --gate-plan/--evals: choose a later BASE"

# the plan comes from HEAD: a key HEAD adds is reported as new, not judged
"$B" --gate-plan >"$OUT/plan" || die "mmsb-bench --gate-plan failed"
cp "$OUT/plan" "$OUT/plan.all"
if [ -n "${PERF_GATE_KEYS:-}" ]; then
	want=",${PERF_GATE_KEYS},"
	awk -v w="$want" 'index(w, "," $2 ",")' "$OUT/plan" >"$OUT/plan.sel"
	mv "$OUT/plan.sel" "$OUT/plan"
	[ -s "$OUT/plan" ] || die "no key of PERF_GATE_KEYS is in the gate's plan ($B --gate-plan)"
fi

# one instruction count: SIDE KEY EVALS -> "SIDE KEY EVALS IREFS" (an empty count on failure)
count() {
	local bin tmpd ir
	bin=$([ "$1" = base ] && echo "$A" || echo "$B")
	tmpd=$(mktemp -d "$OUT/scratch.XXXXXX")
	ir=$(TMPDIR="$tmpd" valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
		"$bin" -k "$2" --evals "$3" 2>&1 >/dev/null | sed -n 's/.*I *refs: *\([0-9,]*\).*/\1/p' |
		tr -d ,)
	rm -rf "$tmpd"
	echo "$1 $2 $3 ${ir:-fail}"
}
export -f count
export A B OUT

t0=$(date +%s)
: >"$OUT/insn.raw"
awk '$1 == "insn" { print $2 }' "$OUT/plan" | while read -r k; do
	grep -qx "$k" "$OUT/base-keys" || { echo "new $k" >>"$OUT/insn.raw"; continue; }
	for side in base head; do
		printf '%s %s %s\n' "$side" "$k" "$EVALS" "$side" "$k" "$((2 * EVALS))"
	done
done >"$OUT/insn.jobs"
n=$(wc -l <"$OUT/insn.jobs")
log "BASE $short against the work tree: $((n / 4)) keys by instruction count ($n cachegrind runs)"
# counts do not depend on load: run as many at once as there are CPUs
xargs -P "$(nproc)" -L 1 bash -c 'count "$@"' _ <"$OUT/insn.jobs" >>"$OUT/insn.raw"
t_insn=$(($(date +%s) - t0))

t0=$(date +%s)
paired=$(awk '$1 == "paired" { printf "%s%s", s, $2; s = "," }' "$OUT/plan")
: >"$OUT/paired.raw"
if [ -n "$paired" ] && [ "${PERF_GATE_PAIRED:-on}" != off ]; then
	# only what BASE also has
	paired=$(echo "$paired" | tr , '\n' | grep -xFf "$OUT/base-keys" | paste -sd,)
fi
if [ -n "$paired" ] && [ "${PERF_GATE_PAIRED:-on}" != off ]; then
	log "$(echo "$paired" | tr , '\n' | wc -l) keys by $ROUNDS paired rounds (BASE and HEAD interleaved)"
	# a pair is BASE and HEAD on one key back to back (seconds apart, not a suite apart); ABBA:
	# each side goes first every other round, so a drift of the machine cancels
	for r in $(seq "$ROUNDS"); do
		order="base head"
		[ $((r % 2)) -eq 0 ] && order="head base"
		for k in ${paired//,/ }; do
			for side in $order; do
				bin=$([ $side = base ] && echo "$A" || echo "$B")
				f="$OUT/paired-$side-$r-${k//\//_}.json"
				"$bin" -k "$k" --json "$f" >/dev/null 2>"$OUT/paired.err" ||
					die "$side's $k failed in round $r: $(tail -1 "$OUT/paired.err")"
				echo "$side $r $f" >>"$OUT/paired.raw"
			done
		done
	done
fi
t_paired=$(($(date +%s) - t0))

python3 ci/perf-report.py gate "$OUT" "$short" "$t_insn" "$t_paired"
