#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# mmsb-bench as a smoke test: behaviour only, never a timing. The quick run completes, its JSON
# parses and holds every listed key, compat mode and the validator print what they should, a
# comparison reads a baseline, and bad flags are usage errors.
set -u
O=${O:-.output}
B="$O/mmsb-bench"
. "$(dirname "$0")/tap.sh"

echo "TAP version 13"
echo "1..6"
if "$B" --quick --json "$tmp/q.json" >"$tmp/out" 2>&1; then
	ok "mmsb-bench --quick completes ($(grep -c . "$tmp/out") lines)"
else
	tail -20 "$tmp/out" | sed 's/^/# /'; bad "mmsb-bench --quick"
fi
"$B" --list | awk '{ print $1 }' | grep / | grep -v '^memory/full_1m$' | sort >"$tmp/keys"
if python3 - "$tmp/q.json" "$tmp/keys" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
want = [k.strip() for k in open(sys.argv[2]) if k.strip()]
have = {f"{c}/{n}" for c, ks in d["benchmarks"].items() for n in ks}
missing = [k for k in want if k not in have]
for k in missing:
    print("# missing", k)
m = d["machine"]
for f in ("cpu_model", "cores", "kernel", "compiler", "build_flags", "git_revision"):
    if f not in m:
        print("# machine block lacks", f); missing.append(f)
for c, ks in d["benchmarks"].items():
    for name, v in ks.items():
        if "error" in v:
            print("# error in", c, name, v["error"]); missing.append(name)
sys.exit(1 if missing else 0)
PY
then
	ok "the JSON is valid and has every key of --list and the machine block"
else
	bad "JSON keys"
fi
if "$B" --mode compat -c semiring >"$tmp/c" 2>&1 && grep -q "n 1 " "$tmp/c"; then
	ok "compat mode times one evaluation"
else
	sed 's/^/# /' "$tmp/c" | tail -5; bad "compat mode"
fi
"$B" --quick --validate=strict >"$tmp/v" 2>&1
if [ "$(grep -cE '^(✓|✗) ' "$tmp/v")" -eq 16 ] && grep -q '^Result: [0-9]*/10 PASS' "$tmp/v"; then
	ok "the validator prints 10 checks, the strict tier and a result line"
else
	tail -20 "$tmp/v" | sed 's/^/# /'; bad "validator output"
fi
if "$B" --quick -c delta --compare ci/baselines/original-mmsb.json >"$tmp/cmp" 2>&1 &&
	grep -q 'delta/cpu_sparse .*\(faster\|similar\|slower\)' "$tmp/cmp"; then
	ok "--compare reads a baseline and judges each key"
else
	tail -10 "$tmp/cmp" | sed 's/^/# /'; bad "--compare"
fi
"$B" --mode fast >/dev/null 2>&1
r1=$?
"$B" --seed -1 >/dev/null 2>&1
r2=$?
if [ $r1 -eq 2 ] && [ $r2 -eq 2 ]; then
	ok "bad flags are usage errors (exit 2)"
else
	bad "bad flags exit $r1 and $r2"
fi
exit $fail
