#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# make trace-bench: the bench under mmsb-trace, its table and outputs in OUTDIR.
# Usage: ci/trace-bench.sh OUTDIR [BENCH ARGS...]      (root, or sudo: make trace-bench)
#
# Under sudo every file and folder here is made with the invoking user's rights, never root's:
# the folder, the table (tee as the user) and, by mmsb-trace itself, its outputs and the bench's
# JSON. A link planted at OUTDIR, or above it, then leads only where that user could write.
set -euo pipefail
cd "$(dirname "$0")/.."
O=${O:-.output}
out=$1
shift
as_user=()
if [ "$(id -u)" -eq 0 ] && [ -n "${SUDO_UID:-}" ]; then
	as_user=(setpriv --reuid="$SUDO_UID" --regid="$SUDO_GID" --init-groups --)
fi
"${as_user[@]}" mkdir -p "$out"
# the table is shown from the pipe, never read back (as root) from a path the user controls
"$O/mmsb-trace" record -J "$out/trace.json" -f "$out/trace.folded" -s "$out/trace.speedscope.json" \
	-- "$O/mmsb-bench" "$@" --json "$out/bench.json" | "${as_user[@]}" tee "$out/trace.txt" |
	sed -n '/^mmsb-trace:/,$p' 
echo "outputs in $out: bench.json trace.json trace.folded trace.speedscope.json trace.txt"
