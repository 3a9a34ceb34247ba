#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# make trace-bench: the bench under mmsb-trace, its table and outputs in OUTDIR, then what the
# tracing costs: ROUNDS (default 5) runs of the bench untraced and traced, interleaved, the bench's
# wall time (untraced: exec to exit; traced: the window, which is exec to exit) as medians, their
# ratio, and the tool's own estimate of its cost beside the measured difference.
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

rounds=${ROUNDS:-5}
[ "$rounds" -gt 0 ] || exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 0755 "$tmp"
echo "cost of tracing: $rounds rounds, untraced and traced interleaved"
for i in $(seq "$rounds"); do
	t0=$(date +%s%N)
	"${as_user[@]}" "$O/mmsb-bench" "$@" >/dev/null
	echo $(($(date +%s%N) - t0)) >>"$tmp/untraced"
	"$O/mmsb-trace" record -J "$tmp/t.json" -- "$O/mmsb-bench" "$@" >/dev/null 2>&1
	python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["wall_ns"], j["estimated_overhead_ns"])' \
		"$tmp/t.json" >>"$tmp/traced"
done
python3 - "$tmp/untraced" "$tmp/traced" <<'PY'
import statistics, sys
u = [int(l) for l in open(sys.argv[1])]
t = [tuple(map(int, l.split())) for l in open(sys.argv[2])]
mu, mt = statistics.median(u), statistics.median(w for w, _ in t)
est = statistics.median(e for _, e in t)
diff = mt - mu
print(f"untraced {mu / 1e9:.3f} s (spread {min(u) / 1e9:.3f}-{max(u) / 1e9:.3f}), "
      f"traced {mt / 1e9:.3f} s (spread {min(w for w, _ in t) / 1e9:.3f}-"
      f"{max(w for w, _ in t) / 1e9:.3f}): ratio {mt / mu:.3f}")
print(f"measured difference {diff / 1e6:.1f} ms; the tool's estimate {est / 1e6:.1f} ms"
      + (f" ({est / diff:.2f} of it)" if diff > 0 else ""))
PY
