#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# timeout: 900
# A short libFuzzer run of every parser's fuzz target, seeded from tests/fuzz/corpus/.
# MMSB_FUZZ_RUNS sets the executions per target (default 20000; make fuzz builds them alone).
set -u
O=${O:-.output}
runs=${MMSB_FUZZ_RUNS:-20000}
targets=(log ckpt meta)
echo "TAP version 13"
echo "1..${#targets[@]}"
if [ -n "${SAN:-}" ]; then
	for i in "${!targets[@]}"; do echo "ok $((i + 1)) fuzz_${targets[$i]} # SKIP the fuzz targets run in the plain make check"; done
	exit 0
fi
if ! make --no-print-directory -s -j"$(nproc)" fuzz O="$O" >/dev/null 2>&1; then
	for i in "${!targets[@]}"; do echo "ok $((i + 1)) fuzz_${targets[$i]} # SKIP clang cannot build libFuzzer targets here"; done
	exit 0
fi
fail=0
for i in "${!targets[@]}"; do
	t=${targets[$i]}
	work=$(mktemp -d)
	if "$O/fuzz/fuzz_$t" -runs="$runs" -max_len=4096 -timeout=10 "$work" "tests/fuzz/corpus/$t" >"$work.log" 2>&1; then
		echo "# $(grep -E '^Done' "$work.log")"
		echo "ok $((i + 1)) fuzz_$t"
	else
		sed 's/^/# /' "$work.log" | tail -40
		echo "not ok $((i + 1)) fuzz_$t"
		fail=1
	fi
	rm -rf "$work" "$work.log"
done
exit $fail
