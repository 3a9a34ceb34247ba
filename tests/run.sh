#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Run test programs, pass their TAP through, and end with one plain line of totals:
#   N passed, N failed, N skipped
# A program that dies without reporting a failure counts as one failure. A script runs under a
# timeout (a C test program's harness times each of its tests itself): the `# timeout: SECONDS`
# line of its header, else 300 s; one that runs out is killed with all it started and fails.
#
# TEST_JOBS programs run at once (default: the CPUs, at most 4): most of a test's time is spent
# waiting on a workload, a probe's removal or a sync, and every test judges exact counts and
# containments only, never one run's time against another's, so a neighbour cannot fail it.
# Each program's output is kept whole and printed, in the order given, as soon as it and every
# program before it are done.
set -u
jobs=${TEST_JOBS:-$(nproc 2>/dev/null || echo 1)}
[ "$jobs" -gt 4 ] && jobs=4
[ "$jobs" -lt 1 ] && jobs=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# run_one I PATH: the program's output into $work/I.out, its status and time into $work/I.rc
run_one() {
	local i=$1 t=$2 limit= start rc
	case "$t" in
	*.sh) limit=$(sed -n '1,20s/^# timeout: \([0-9]*\)$/\1/p' "$t" | head -1)
	      limit=${limit:-300} ;;
	esac
	start=$(date +%s)
	if [ -n "$limit" ]; then
		# timeout runs it in a process group of its own and kills the group: what the
		# script started in the background goes too
		timeout -k 10 "$limit" "$t" >"$work/$i.out" 2>&1
	else
		"$t" >"$work/$i.out" 2>&1
	fi
	rc=$?
	echo "$rc $(($(date +%s) - start)) ${limit:-0}" >"$work/$i.rc"
}

pass=0 fail=0 skip=0 shown=0
args=("$@")

# show_done: print, in the order given, every program done since the last call
show_done() {
	local name out rc secs limit p s f
	while [ "$shown" -lt "${#args[@]}" ] && [ -s "$work/$shown.rc" ]; do
		name=$(basename "${args[$shown]}")
		out="$work/$shown.out"
		read -r rc secs limit <"$work/$shown.rc"
		echo "# ---- $name"
		cat "$out"
		echo "# $name: $secs s"
		if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
			echo "not ok - $name timed out after $limit s"
			fail=$((fail + 1))
		fi
		p=$(grep -cE '^ok [0-9]+ ' "$out" | tr -d ' ')
		s=$(grep -cE '^ok [0-9]+ .*# SKIP' "$out" | tr -d ' ')
		f=$(grep -cE '^not ok [0-9]+ ' "$out" | tr -d ' ')
		pass=$((pass + p - s))
		skip=$((skip + s))
		fail=$((fail + f))
		if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] && [ "$f" -eq 0 ]; then
			echo "not ok - $name exited with status $rc"
			fail=$((fail + 1))
		fi
		shown=$((shown + 1))
	done
}

i=0
for t in "$@"; do
	while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
		wait -n
		show_done
	done
	run_one "$i" "$t" &
	i=$((i + 1))
done
while [ "$(jobs -rp | wc -l)" -gt 0 ]; do
	wait -n
	show_done
done
wait
show_done
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
