#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# The GPU tier on a machine with a GPU (make gpu-check), in one run of a few minutes:
#  1. build with CUDA=1 (sm_90 + PTX)
#  2. every kernel against the CPU byte for byte on random data (tests/helpers/gpu_kernels.c),
#     and the library's GPU pages against CPU twins (tests/test_gpu on the CUDA backend)
#  3. the crossover table (mmsb-bench --calibrate-gpu: 1 KiB to 64 MiB x 5 densities), with the
#     router checked within 10 % of the faster side at every point
#  4. the GPU keys beside their CPU twins, on that table
# Outputs go to ci/baselines/gpu-<device>.{crossover,bench.json,check.txt}, ready to commit.
# Without a GPU it stops after the build and says why (exit 4). GPU_CHECK_BACKEND=PATH runs it on
# another backend (tests/helpers/fake_gpu.c: a rehearsal), writing to $O/gpu-check/ instead.
# GPU_CHECK_BUILD=0 uses the build already in $O (made with CUDA=1 on a machine with the build
# dependencies, and copied to a GPU machine that has only a driver and a runtime).
set -uo pipefail
cd "$(dirname "$0")/.."
O=${O:-.output}
log() { echo "gpu-check: $*" >&2; }
t0=$(date +%s)

if [ "${GPU_CHECK_BUILD:-1}" != 0 ]; then
	make -s -j"$(nproc)" CUDA=1 O="$O" all || { log "build failed"; exit 1; }
elif [ ! -x "$O/mmsb-bench" ] || [ ! -e "$O/libmmsb-cuda.so" ]; then
	log "GPU_CHECK_BUILD=0, but $O has no CUDA=1 build (make CUDA=1 all first)"
	exit 1
fi
# GPU_CHECK_BACKEND: another backend (the test one rehearses this script on a machine without a GPU)
B="$(realpath "${GPU_CHECK_BACKEND:-$O/libmmsb-cuda.so}")"
export MMSB_GPU_BACKEND="$B"
info=$("$O/tests/gpu_kernels" "$B" 1 2>&1 | sed -n 's/^1\.\.0 # SKIP //p')
if [ -n "$info" ]; then
	log "no GPU here: $info"
	exit 4
fi
dev=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 | tr -c 'A-Za-z0-9\n' - | tr 'A-Z' 'a-z' | sed 's/-*$//')
dev=${dev:-cuda}
out=ci/baselines/gpu-$dev
if [ -n "${GPU_CHECK_BACKEND:-}" ]; then
	# a rehearsal on another backend is not a device's baseline: it stays in the build directory
	mkdir -p "$O/gpu-check"
	out="$O/gpu-check/rehearsal"
fi
report="$out.check.txt"
{
	echo "# make gpu-check on $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)"
	echo "# $(date -u +%FT%TZ), $(git describe --always --dirty 2>/dev/null)"
} >"$report"
fail=0
log "kernels against the CPU"
"$O/tests/gpu_kernels" "$B" 4 | tee -a "$report" | grep -q "^not ok" && fail=1
log "GPU pages against CPU twins"
MMSB_TEST_GPU_BACKEND="$B" "$O/tests/test_gpu" 2>&1 | tee -a "$report" | grep -q "^not ok" && fail=1
log "crossover table and the router (a few minutes)"
"$O/mmsb-bench" --calibrate-gpu "$out.crossover" | tee -a "$report" || fail=1
log "GPU keys beside their CPU twins"
MMSB_GPU_CROSSOVER="$(realpath "$out.crossover")" "$O/mmsb-bench" -c allocation,delta \
	--json "$out.bench.json" | tee -a "$report" || fail=1
echo "# $(($(date +%s) - t0)) s, $([ $fail -eq 0 ] && echo pass || echo FAIL)" >>"$report"
log "$([ $fail -eq 0 ] && echo pass || echo FAIL) in $(($(date +%s) - t0)) s: $out.{crossover,bench.json,check.txt}"
exit $fail
