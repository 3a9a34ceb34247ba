#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Unprivileged: every probe of lib/probes.d is in the built libmmsb.so with its declared argument
# count, a span's two ends share one semaphore, api__entry/exit sit in every public function's
# traced twin (the unprobed ones have none), mmsb-trace list finds them in a running process,
# and `make PROBES=0` leaves no probe at all.
# The tables made from the manifest agree with it: the span kinds (bpf/mmsb_spans.h) name its
# begin/end pairs, and the API ids (lib/api-ids.list) every public function once, and every
# public function but the unprobed ones opens with its gate (MMSB_API_GATE, lib/probes.h).
set -u
O=${O:-.output}
T="$O/mmsb-trace"
. "$(dirname "$0")/tap.sh"
trap 'rm -rf "$tmp"; [ -n "${wpid:-}" ] && kill "$wpid" 2>/dev/null' EXIT

echo "TAP version 13"
echo "1..8"
"$T" -j list "$O/libmmsb.so" >"$tmp/list.json" || bad "mmsb-trace list"
if python3 - lib/probes.d "$tmp/list.json" lib/include/mmsb/mmsb.h lib/api-ids.list <<'PY'
import json, re, sys
manifest = open(sys.argv[1]).read()
declared = {}
for name, args in re.findall(r"^\s*probe\s+([a-z0-9_]+)\((.*)\);", manifest, re.M):
    declared[name] = 0 if not args.strip() else len(args.split(","))
got = {p["name"]: p for o in json.load(open(sys.argv[2])) for p in o["probes"]}
bad = 0
for name, argc in declared.items():
    if name not in got:
        print(f"# {name}: declared, not in the library"); bad = 1
    elif got[name]["args"] != argc:
        print(f"# {name}: {got[name]['args']} arguments in the library, {argc} declared"); bad = 1
for name in got:
    if name not in declared:
        print(f"# {name}: in the library, not in the manifest"); bad = 1
# a span's ends share one semaphore, and every probe has one
for name, p in got.items():
    if not p["semaphore"]:
        print(f"# {name}: no semaphore"); bad = 1
    peer = name[:-5] + "__begin" if name.endswith("__end") else "api__entry" if name == "api__exit" else None
    if peer and peer in got and got[peer]["semaphore"] != p["semaphore"]:
        print(f"# {name} and {peer} have different semaphores"); bad = 1
# api__entry and api__exit at every public function but the unprobed ones (lib/api-ids.list)
api_list = open(sys.argv[4]).read()
unprobed = len(re.findall(r"^# \d+ mmsb_[a-z0-9_]+ \(unprobed\)$", api_list, re.M))
api = len(set(re.findall(r"MMSB_API [^(]*?\b(mmsb_[a-z0-9_]+)\(", open(sys.argv[3]).read())))
ids = len(re.findall(r"^\d+ mmsb_", api_list, re.M))
for name in ("api__entry", "api__exit"):
    if got.get(name, {}).get("sites") != api - unprobed:
        print(f"# {name}: {got.get(name, {}).get('sites')} call sites, {api} public functions, "
              f"{unprobed} unprobed"); bad = 1
if ids != api - unprobed:
    print(f"# the manifest lists {ids} API ids for {api} public functions, {unprobed} unprobed"); bad = 1
print(f"# {len(declared)} probes, {api} public functions, {unprobed} unprobed")
sys.exit(bad)
PY
then
	ok "every probe of lib/probes.d is in libmmsb.so with its argument count and semaphore"
else
	bad "the library does not match the manifest"
fi
# the tables made from the manifest, from the sources alone
if python3 - lib/probes.d bpf/mmsb_spans.h lib/api-ids.list lib/include/mmsb/mmsb.h <<'PY'
import re, sys
probes = re.findall(r"^\s*probe\s+([a-z0-9_]+)\(", open(sys.argv[1]).read(), re.M)
# a span's ends: NAME__begin / NAME__end, api__entry / api__exit; the rest (host__register) are not
ends = {p for p in probes if re.search(r"__(begin|end)$", p) or p in ("api__entry", "api__exit")}
text = re.sub(r"/\*.*?\*/", "", open(sys.argv[2]).read().replace("\\\n", " "), flags=re.S)
spans = re.findall(r'X\(\s*([A-Z0-9_]+),\s*"([a-z0-9_]+)",\s*"([a-z0-9_]+)",\s*"([a-z0-9_]+)",'
                   r'\s*"([a-z ]+)"\s*\)', text)
# not lib/probes.d's: the host's libffi call, a uprobe on the function itself
NOT_PROBES = {"ffi_call"}
bad = 0
seen = set()
for sid, name, begin, end, cat in spans:
    for p in (begin, end):
        if p not in NOT_PROBES and p not in probes:
            print(f"# span {name}: {p} is not a probe of lib/probes.d"); bad = 1
        seen.add(p)
    if begin not in NOT_PROBES and not (begin.endswith("__begin") and end == begin[:-7] + "__end"
                                        or (begin, end) == ("api__entry", "api__exit")):
        print(f"# span {name}: {begin} / {end} is not a begin/end pair"); bad = 1
for p in sorted(ends - seen):
    print(f"# {p}: a span end of lib/probes.d that no line of bpf/mmsb_spans.h names"); bad = 1
for what, col in (("id", 0), ("name", 1)):
    dup = {s[col] for s in spans if [t[col] for t in spans].count(s[col]) > 1}
    if dup:
        print(f"# span {what}s used twice: {sorted(dup)}"); bad = 1
if not spans or len(spans) > 31:
    print(f"# {len(spans)} span kinds: 1 to 31 fit the BPF side's mask and chain"); bad = 1
# the API ids: every public function once, every id once
lines = [l for l in open(sys.argv[3]).read().splitlines() if l.strip() and not l.startswith("#")]
ids = [l.split() for l in lines]
if any(len(i) != 2 or not i[0].isdigit() or not i[1].startswith("mmsb_") for i in ids):
    print("# lib/api-ids.list: a line that is not 'ID mmsb_function'"); bad = 1
nums = [i[0] for i in ids]
names = [i[1] for i in ids if len(i) > 1]
# a public function without a probe keeps its id in a comment line, never reused
reserved = re.findall(r"^# (\d+) (mmsb_[a-z0-9_]+) \(unprobed\)$", open(sys.argv[3]).read(), re.M)
unprobed = {f for _, f in reserved}
# only arithmetic on the arguments goes without a probe: the semiring family (lib/semiring.c)
for f in sorted(unprobed):
    if not re.fullmatch(r"mmsb_(tropical|boolean)_[a-z_]+", f):
        print(f"# {f}: unprobed in lib/api-ids.list, and not a semiring operation"); bad = 1
nums += [n for n, _ in reserved]
# a removed function's id stays taken too
nums += re.findall(r"^# (\d+) mmsb_[a-z0-9_]+ \(removed\)$", open(sys.argv[3]).read(), re.M)
names += [f for _, f in reserved]
public = set(re.findall(r"MMSB_API [^(]*?\b(mmsb_[a-z0-9_]+)\(", open(sys.argv[4]).read()))
if len(set(nums)) != len(nums) or len(set(names)) != len(names):
    print("# lib/api-ids.list: an id or a function listed twice"); bad = 1
for f in sorted(public - set(names)):
    print(f"# {f}: public, and no id in lib/api-ids.list"); bad = 1
for f in sorted(set(names) - public):
    print(f"# {f}: has an id, is not public (a removed one's line is a comment)"); bad = 1
# every public function opens with its gate, handing the twin its own arguments in order
import glob
gated = {}
for src in glob.glob("lib/*.c"):
    for fn, params, gate in re.findall(r"\b(mmsb_[a-z0-9_]+)\(([^)]*)\)\n\{\n\s*(MMSB_API_GATE\([^;]*\));",
                                       open(src).read()):
        args = [] if params.strip() == "void" else [re.findall(r"\w+", p)[-1] for p in params.split(",")]
        gated[fn] = gate == f"MMSB_API_GATE({', '.join([fn] + args)})"
for f in sorted(public - unprobed):
    if not gated.get(f):
        print(f"# {f}: does not open with MMSB_API_GATE({f}, its arguments)"); bad = 1
sources = "".join(open(src).read() for src in glob.glob("lib/*.c"))
for f in sorted(unprobed):
    if re.search(rf"MMSB_API_GATE\({f}\b", sources):
        print(f"# {f}: unprobed in lib/api-ids.list, and opens with a gate"); bad = 1
print(f"# {len(spans)} span kinds, {len(ids)} API ids")
sys.exit(bad)
PY
then
	ok "the span kinds name every begin/end pair of lib/probes.d; the API ids and gates every public function"
else
	bad "bpf/mmsb_spans.h or lib/api-ids.list disagrees with lib/probes.d or mmsb.h"
fi
# a running process: the workload, held at its start (libmmsb mapped) until the FIFO is written
mkfifo "$tmp/hold"
MMSB_WORKLOAD_HOLD="$tmp/hold" "$O/tests/probe_workload" "$tmp" >/dev/null &
wpid=$!
wait_mapped $wpid
if "$T" list -p "$wpid" >"$tmp/plist" 2>&1 && grep -q "libmmsb.so" "$tmp/plist" &&
	grep -q "mmsb:update__begin" "$tmp/plist"; then
	ok "mmsb-trace list -p finds the probes in a running process"
else
	sed 's/^/# /' "$tmp/plist" | head; bad "mmsb-trace list -p"
fi
echo go >"$tmp/hold"
wait "$wpid" 2>/dev/null
wpid=
if "$T" list -p 4194303 >/dev/null 2>"$tmp/err"; then
	bad "a missing PID is an error"
elif [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "no such process" "$tmp/err"; then
	ok "a missing PID is one line and exit 1"
else
	bad "missing PID message: $(cat "$tmp/err")"
fi
# compiled out: no note, no semaphore
if make --no-print-directory -s -j"$(nproc)" lib O="$O-noprobes" PROBES=0 SAN="${SAN:-}" >"$tmp/log" 2>&1; then
	if ! readelf -n "$O-noprobes/libmmsb.so" | grep -q stapsdt &&
		! nm "$O-noprobes/libmmsb.so" | grep -qE '_semaphore|mmsb__(api|site)_gate|__traced' &&
		! readelf -S "$O-noprobes/libmmsb.so" | grep -q '\.probes' &&
		"$T" list "$O-noprobes/libmmsb.so" | grep -q "no USDT probes"; then
		ok "PROBES=0 leaves no probe and no semaphore"
	else
		bad "PROBES=0 still has probes"
	fi
else
	sed 's/^/# /' "$tmp/log" | tail; bad "make PROBES=0"
fi
if readelf -n "$O/libmmsb.so" | grep -q stapsdt; then
	ok "the default build has its probes (readelf -n)"
else
	bad "the default build has no probes"
fi
# a traced twin calls its public function inside the library (-Bsymbolic-functions): through
# the PLT, a wrapper interposed on the function would run twice a traced call
twins=$(objdump -d --no-show-raw-insn "$O/libmmsb.so" | awk '
	/^[0-9a-f]+ <mmsb_[a-z0-9_]+__traced>:$/ { fn = $2; sub(/^</, "", fn); sub(/__traced>:$/, "", fn); n++ }
	/^$/ { fn = "" }
	fn != "" && /[ \t]call[ \t]/ && index($0, "<" fn "@plt>") { print fn; fn = "" }
	END { print n + 0 }')
if [ "$(echo "$twins" | tail -1)" -gt 0 ] && [ "$(echo "$twins" | wc -l)" -eq 1 ]; then
	ok "every traced twin ($twins) calls its function inside the library, not through the PLT"
else
	echo "$twins" | head -5 | sed 's/^/# through the PLT: /'
	bad "a traced twin calls its function through the PLT"
fi
# bpftrace lists the same probes (root, and only if bpftrace is installed)
if [ "$(id -u)" -ne 0 ] || ! command -v bpftrace >/dev/null; then
	ok "bpftrace -l lists every probe # SKIP needs root and bpftrace"
else
	want=$(grep -cE '^[[:space:]]*probe ' lib/probes.d)
	got=$(bpftrace -l "usdt:$(realpath "$O/libmmsb.so"):*" 2>/dev/null | grep -c ':mmsb:')
	if [ "$got" -eq "$want" ]; then
		ok "bpftrace -l lists all $want probes"
	else
		bad "bpftrace -l lists $got probes, the manifest $want"
	fi
fi
exit $fail
