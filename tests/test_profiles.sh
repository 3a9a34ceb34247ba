#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Trace profiles (profiles/, docs/profiles.md):
#  1. every shipped profile parses, and `mmsb-trace profiles` lists each of them
#  2. every malformed fixture (tests/fixtures/profiles, "# expect LINE: TEXT" on its first line)
#     is refused: one line naming FILE:LINE and the reason, exit 1
#  3. a name that is no profile, and -o without -P, are refused
#  4. every shipped profile records (root and BTF): its outputs, and no others, are written
set -u
O=${O:-.output}
T="$O/mmsb-trace"
W="$O/tests/trace_workload"
# the host profile's Python workload loads libmmsb: this build's, not .output's
MMSB_LIB="$(realpath "$O/libmmsb.so.0" 2>/dev/null)"
export MMSB_LIB
. "$(dirname "$0")/tap.sh"
shipped=(default propagation allocation ffi ci host)

echo "TAP version 13"
echo "1..4"

# 1. shipped profiles
errs=""
"$T" profiles >"$tmp/list" 2>"$tmp/list.err" || errs="profiles exit $?: $(cat "$tmp/list.err")"
for p in "${shipped[@]}"; do
	[ -r "profiles/$p.profile" ] || errs="$errs; profiles/$p.profile missing"
	"$T" profiles "$p" >/dev/null 2>>"$tmp/one.err" || errs="$errs; $p does not parse"
	grep -q "^$p " "$tmp/list" || errs="$errs; $p not listed"
done
"$T" -j profiles >"$tmp/list.json" && python3 -c '
import json, sys
names = {p["name"] for p in json.load(open(sys.argv[1]))}
sys.exit(0 if set(sys.argv[2:]) <= names else 1)' "$tmp/list.json" "${shipped[@]}" || errs="$errs; JSON list"
if [ -z "$errs" ]; then
	ok "the ${#shipped[@]} shipped profiles parse and are listed (text and JSON)"
else
	echo "# $errs"
	bad "shipped profiles"
fi

# 2. malformed fixtures
errs="" count=0
for f in tests/fixtures/profiles/*.profile; do
	read -r _ _ want_line want_text < <(sed -n 's/^# expect \([0-9]*\): \(.*\)/x x \1 \2/p' "$f" | head -1)
	"$T" profiles "$f" >/dev/null 2>"$tmp/e"
	rc=$?
	count=$((count + 1))
	if [ $rc -ne 1 ] || [ "$(wc -l <"$tmp/e")" -ne 1 ] ||
		! grep -q "^mmsb-trace: $f:${want_line%:}: .*$want_text" "$tmp/e"; then
		errs="$errs; $f: exit $rc: $(head -2 "$tmp/e" | tr '\n' ' ')"
	fi
	# record refuses it the same way, before doing anything
	"$T" record -P "$f" -- /bin/true >/dev/null 2>"$tmp/r"
	rc=$?
	if [ $rc -eq 0 ] || ! grep -q "$f:${want_line%:}:" "$tmp/r"; then
		errs="$errs; record -P $f: exit $rc: $(head -1 "$tmp/r")"
	fi
done
if [ -z "$errs" ] && [ $count -ge 10 ]; then
	ok "$count malformed profiles refused with FILE:LINE and the reason, by profiles and by record -P"
else
	echo "# $errs"
	bad "malformed profiles"
fi

# 3. usage
"$T" record -P no-such-profile -- /bin/true >/dev/null 2>"$tmp/e1"
r1=$?
"$T" record -o "$tmp/x" -- /bin/true >/dev/null 2>"$tmp/e2"
r2=$?
if [ $r1 -eq 1 ] && grep -q "no profile 'no-such-profile'" "$tmp/e1" && [ $r2 -eq 2 ] && [ ! -e "$tmp/x" ]; then
	ok "an unknown profile name is refused (exit 1), -o without -P is a usage error (exit 2)"
else
	bad "usage: exit $r1 $(cat "$tmp/e1"), exit $r2 $(cat "$tmp/e2")"
fi

# 4. every shipped profile records
why=$(no_attach)
if [ -n "$why" ]; then
	skip "every shipped profile records" "$why"
else
	errs=""
	for p in "${shipped[@]}"; do
		d="$tmp/rec-$p"
		"$T" -j profiles "$p" >"$tmp/$p.json"
		cmd=("$W" spin 10 100)
		# the host profile samples the host side: a Python host makes one
		[ "$p" = host ] && cmd=(python3 tests/helpers/ffi_workload.py 300000 0)
		"$T" record -P "$p" -o "$d" -- "${cmd[@]}" >"$tmp/$p.out" 2>"$tmp/$p.err" ||
			errs="$errs; $p: exit $?: $(tail -1 "$tmp/$p.err")"
		python3 - "$tmp/$p.json" "$d" "$tmp/$p.out" <<'PY' || errs="$errs; $p outputs"
import json, os, sys
p = json.load(open(sys.argv[1]))[0]
d, out = sys.argv[2], open(sys.argv[3]).read()
files = {"json": "trace.json", "folded": "trace.folded", "speedscope": "trace.speedscope.json"}
want = {files[o] for o in p["outputs"] if o in files}
if p["mode"] == "events":
    want.add("trace.events.ndjson")
have = set(os.listdir(d)) if os.path.isdir(d) else set()
ok = have == want and all(os.path.getsize(os.path.join(d, f)) > 0 for f in have)
ok = ok and (("SPAN " in out) == ("table" in p["outputs"]))
if "trace.json" in have:
    j = json.load(open(os.path.join(d, "trace.json")))
    kinds = {k["kind"] for k in j["kinds"]}
    allowed = set(p["kinds"]) | ({"ffi_host"} if p["host_sample_hz"] else set())
    ok = ok and kinds and kinds <= allowed and j["stack_mode"] == p["stacks"]
if not ok:
    print(f"# {p['name']}: want {sorted(want)}, have {sorted(have)}")
sys.exit(0 if ok else 1)
PY
	done
	if [ -z "$errs" ]; then
		ok "every shipped profile records its kinds into exactly its outputs"
	else
		echo "# $errs"
		bad "profiles record"
	fi
fi
exit $fail
