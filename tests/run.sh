#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Run test programs, pass their TAP through, and end with one plain line of totals:
#   N passed, N failed, N skipped
# A program that dies without reporting a failure counts as one failure. A script runs under a
# timeout (a C test program's harness times each of its tests itself): the `# timeout: SECONDS`
# line of its header, else 300 s; one that runs out is killed with all it started and fails.
set -u
pass=0 fail=0 skip=0
for t in "$@"; do
	name=$(basename "$t")
	echo "# ---- $name"
	out=$(mktemp)
	limit=
	case "$t" in
	*.sh) limit=$(sed -n '1,20s/^# timeout: \([0-9]*\)$/\1/p' "$t" | head -1)
	      limit=${limit:-300} ;;
	esac
	start=$(date +%s)
	if [ -n "$limit" ]; then
		# timeout runs it in a process group of its own and kills the group: what the
		# script started in the background goes too
		timeout -k 10 "$limit" "$t" 2>&1 | tee "$out"
	else
		"$t" 2>&1 | tee "$out"
	fi
	rc=${PIPESTATUS[0]}
	echo "# $name: $(($(date +%s) - start)) s"
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		echo "not ok - $name timed out after $limit s"
		fail=$((fail + 1))
	fi
	p=$(grep -cE '^ok [0-9]+ ' "$out" | tr -d ' ')
	s=$(grep -cE '^ok [0-9]+ .*# SKIP' "$out" | tr -d ' ')
	f=$(grep -cE '^not ok [0-9]+ ' "$out" | tr -d ' ')
	rm -f "$out"
	pass=$((pass + p - s))
	skip=$((skip + s))
	fail=$((fail + f))
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] && [ "$f" -eq 0 ]; then
		echo "not ok - $name exited with status $rc"
		fail=$((fail + 1))
	fi
done
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
