#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# The GPU tier's tools without a GPU (docs/gpu.md):
#  1. every backend operation against a CPU reference (tests/helpers/gpu_kernels.c), on the test
#     backend; the CUDA backend's run SKIPs here with the runtime's reason
#  2. mmsb-bench's GPU keys skip with the reason when there is no GPU, run on the test backend
#  3. --calibrate-gpu on a test backend whose launch costs 20 us: a table that loads, and the
#     router picks the faster side at every point of it
set -u
O=${O:-.output}
B="$O/mmsb-bench"
FAKE="$(realpath "$O/tests/libmmsb-fakegpu.so")"
. "$(dirname "$0")/tap.sh"

echo "TAP version 13"
echo "1..4"

if "$O/tests/gpu_kernels" "$FAKE" >"$tmp/k" 2>&1 && ! grep -q "^not ok" "$tmp/k"; then
	ok "every backend operation matches the CPU byte for byte (test backend, $(grep -c '^ok' "$tmp/k") checks)"
else
	sed 's/^/# /' "$tmp/k" | grep -v "^# ok" | head
	bad "backend operations"
fi
if [ -r "$O/libmmsb-cuda.so" ]; then
	"$O/tests/gpu_kernels" "$O/libmmsb-cuda.so" >"$tmp/c" 2>&1
	rc=$?
	if [ $rc -eq 4 ]; then
		skip "CUDA kernels against the CPU" "$(sed -n 's/.*# SKIP //p' "$tmp/c")"
	elif [ $rc -eq 0 ]; then
		ok "CUDA kernels match the CPU byte for byte"
	else
		sed 's/^/# /' "$tmp/c" | grep -v "^# ok" | head
		bad "CUDA kernels"
	fi
else
	skip "CUDA kernels against the CPU" "libmmsb-cuda.so not built (no nvcc, or CUDA=0)"
fi

# 2. the GPU keys
MMSB_GPU_BACKEND=/nonexistent.so "$B" -k allocation/gpu_1kb,delta/gpu_sparse >"$tmp/s" 2>&1
MMSB_GPU_BACKEND="$FAKE" "$B" --quick -k allocation/gpu_1kb,delta/gpu_sparse,delta/gpu_dense \
	--json "$tmp/f.json" >"$tmp/f" 2>&1
if grep -q "^delta/gpu_sparse *skipped: no GPU: no GPU backend" "$tmp/s" &&
	python3 -c 'import json,sys; b=json.load(open(sys.argv[1]))["benchmarks"]; sys.exit(0 if all(b[c][k]["median_ns"] > 0 for c, k in (("allocation","gpu_1kb"),("delta","gpu_sparse"),("delta","gpu_dense"))) and json.load(open(sys.argv[1]))["cuda_available"] else 1)' "$tmp/f.json"; then
	ok "GPU keys: skipped with the reason without a GPU, measured on the test backend"
else
	sed 's/^/# /' "$tmp/s" "$tmp/f" | tail -6
	bad "GPU keys"
fi

# 3. the crossover and the router: the sweep writes a table that loads, and the router, on it,
# picks at every point a side within 10 % of the faster one by the sweep's own figures. Which
# side wins where is the machine's (make perf-check looks at it); test_gpu.c checks the router
# on a table with both sides.
MMSB_GPU_BACKEND="$FAKE" FAKE_GPU_LAUNCH_NS=20000 "$B" --quick --calibrate-gpu "$tmp/xo" >"$tmp/x" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q "35 of 35 points within 10 % of the faster side" "$tmp/x" &&
	[ "$(grep -c '^apply ' "$tmp/xo")" -eq 35 ]; then
	ok "calibrate-gpu: a 35-point table that loads, the router within 10 % of the faster side at every point"
else
	sed 's/^/# /' "$tmp/x" | tail -8
	bad "calibrate-gpu: exit $rc"
fi
exit $fail
