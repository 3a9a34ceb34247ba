#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# timeout: 300
#
# mmsb-trace record --pprof, read by the real pprof (go tool pprof), against the JSON report and
# the folded file of the same run. Exact figures only: no time judged against another.
#  1. spans mode: -raw reads it; per span kind the calls, self, total, on-CPU, off-CPU and
#     run-queue ns are the JSON's; its stacks and weights are the folded file's (the timer
#     samples' cpu ns, or the rows' self ns when the run had no sample); pid and tid labels
#  2. spans mode, -F 0: the same, the folded file the rows' self ns
#  3. -top (-unit=ns) gives each kind's flat calls and ns as the JSON
#  4. -diff_base between the two spans runs: per kind the difference of the JSONs' calls
#  5. probes mode: figures and folded stacks as in 1; every user frame's mapping has the JSON
#     location's file, build id and file offset
#  6. -diff_base between two probes runs
# Privileged parts SKIP without root or BTF; all SKIP without go tool pprof.
set -u
O=${O:-.output}
T="$O/mmsb-trace"
W="$O/tests/trace_workload"
. "$(dirname "$0")/tap.sh"

echo "TAP version 13"
echo "1..6"

names=(spans spans-F0 top diff-spans probes diff-probes)
why=$(no_attach)
if [ -z "$why" ] && { ! command -v go >/dev/null || ! go tool pprof -h >/dev/null 2>&1; }; then
	why="no go tool pprof (Debian golang-go)"
fi
[ -z "$why" ] || skip_all "$why" "${names[@]}"
# go's caches and pprof's settings in the scratch directory, never $HOME
export HOME="$tmp" GOCACHE="$tmp/gocache" PPROF_TMPDIR="$tmp"
pprof() { go tool pprof "$@" 2>"$tmp/pprof.err"; }

# check.py RAW JSON FOLDED: the profile as `pprof -raw` prints it against the run's JSON and folded
cat >"$tmp/check.py" <<'PY'
import collections, json, re, sys

raw, jpath, fpath = sys.argv[1:4]
j = json.load(open(jpath))
bad = 0
def check(what, ok):
    global bad
    if not ok:
        print("# FAILED:", what)
        bad = 1

# -raw: the sample types, the samples (values: location ids, leaf first; labels), the
# locations (lines innermost first), the mappings
types, samples, locs, maps = [], [], {}, {}
part, cur = None, None
for line in open(raw).read().split("\n"):
    if line in ("Samples:", "Locations", "Mappings"):
        part = line
        continue
    if part == "Samples:":
        if not types:
            types = [t.split("/")[0] for t in line.split()]
            continue
        m = re.match(r"^\s*(-?\d+(?:\s+-?\d+)*): ([\d ]*)$", line)
        if m:
            vals = [int(x) for x in m.group(1).split()]
            samples.append({"v": dict(zip(types, vals)),
                            "ids": [int(x) for x in m.group(2).split()], "labels": {}})
        elif line.strip() and samples:
            for k, v in re.findall(r"(\w+):\[([^\]]*)\]", line):
                samples[-1]["labels"][k] = v
    elif part == "Locations":
        m = re.match(r"^\s*(\d+): (0x[0-9a-f]+) (?:M=(\d+) )?(.*)$", line)
        if m:
            cur = {"addr": int(m.group(2), 16), "map": int(m.group(3) or 0), "lines": []}
            locs[int(m.group(1))] = cur
            rest = m.group(4)
        elif line.startswith(" " * 13) and cur:
            rest = line.strip()
        else:
            continue
        ln = re.match(r"^(.*) (\S*):(-?\d+) s=-?\d+$", rest)
        cur["lines"].append(ln.group(1) if ln else rest)
    elif part == "Mappings":
        m = re.match(r"^(\d+): (0x[0-9a-f]+)/(0x[0-9a-f]+)/(0x[0-9a-f]+) (\S+) ?(\S*)", line)
        if m:
            bid = m.group(6) if not m.group(6).startswith("[") else ""
            maps[int(m.group(1))] = (int(m.group(2), 16), int(m.group(4), 16), m.group(5), bid)

def frames(s):
    """root first"""
    return [n for i in reversed(s["ids"]) for n in reversed(locs[i]["lines"])]

spans = j["mode"] == "spans"
want = ["calls", "self", "total"] + (["on_cpu", "off_cpu", "runq", "samples", "cpu"] if spans else [])
check(f"sample types {types} == {want}", types == want)
rows = [s for s in samples if not s["v"].get("samples")]
timer = [s for s in samples if s["v"].get("samples")]

# per kind: the rows' sums are the JSON's (a row's kind: its label, its leaf frame)
sums = collections.defaultdict(lambda: collections.Counter())
for s in rows:
    kind = s["labels"].get("kind")
    check(f"row leaf {frames(s)[-1:]} is its kind {kind}", frames(s)[-1:] == ["mmsb:" + str(kind)])
    sums[kind].update(s["v"])
fields = {"calls": "calls", "self": "self_ns", "total": "total_ns"}
if spans:
    fields.update(on_cpu="on_cpu_ns", off_cpu="off_cpu_ns", runq="runq_ns")
for k in j["kinds"]:
    for t, f in fields.items():
        check(f"{k['kind']} {t}: pprof {sums[k['kind']][t]} == JSON {k[f]}",
              sums[k["kind"]][t] == k[f])
check("no kind the JSON lacks", set(sums) <= {k["kind"] for k in j["kinds"]})

# the folded file: the timer samples' cpu ns when the run has samples, else the rows' self ns
folded = collections.Counter()
for line in open(fpath):
    stack, _, n = line.rstrip("\n").rpartition(" ")
    folded[stack] += int(n)
from_samples = spans and j.get("sample_hz") and j.get("stack_samples")
mine = collections.Counter()
for s in timer if from_samples else rows:
    w = s["v"]["cpu" if from_samples else "self"]
    if w:
        mine[";".join(frames(s))] += w
check(f"{len(mine)} stacks as the folded file's {len(folded)}, to the ns", mine == folded)
if mine != folded:
    for st in sorted(set(mine) | set(folded))[:5]:
        if mine[st] != folded[st]:
            print(f"#   {st}: pprof {mine[st]} folded {folded[st]}")

# labels: the process, and in spans mode each sample's thread
pid = str(j["target"]["pid"])
check("every sample's pid label is the target's", all(s["labels"].get("pid") == pid for s in samples))
if spans:
    tids = {str(t["tid"]) for t in j["threads"]}
    check(f"timer samples' tids in {tids}", all(s["labels"].get("tid") in tids for s in timer))

# user frames: each mapped location's file, build id and offset are a JSON location's
jl = {(l["module"], l["build_id"] or "", l["offset"])
      for st in j["stacks"] for l in st["locations"] if "module" in l and l.get("code", True)}
pl = set()
for l in locs.values():
    # pprof gives a profile without mappings a nameless one of its own
    if l["map"] in maps:
        start, off, path, bid = maps[l["map"]]
        pl.add((path, bid, l["addr"] - start + off))
if not spans:
    check(f"{len(pl)} mapped locations are the JSON's {len(jl)}", pl == jl and len(pl) > 0)
print(f"# {len(samples)} samples ({len(timer)} timer), {len(locs)} locations, {len(maps)} mappings")
sys.exit(bad)
PY

# run NAME ARGS...: record ARGS into NAME.{pb.gz,json,folded}, then its -raw
run() {
	local n=$1
	shift
	"$T" record --pprof "$tmp/$n.pb.gz" -J "$tmp/$n.json" -f "$tmp/$n.folded" "$@" \
		>"$tmp/$n.out" 2>"$tmp/$n.err" && pprof -raw "$tmp/$n.pb.gz" >"$tmp/$n.raw"
}

# the kinds' flat figures of `pprof -top -unit=ns` for sample SAMPLE against the JSON's FIELD
top_check() {
	pprof -top -unit=ns -nodefraction=0 -sample_index="$2" "$tmp/$1.pb.gz" >"$tmp/$1.top" &&
		python3 - "$tmp/$1.top" "$tmp/$1.json" "$3" <<'PY'
import json, re, sys
top = {}
for line in open(sys.argv[1]):
    m = re.match(r"^\s*(-?\d+)(?:ns)?\s.*\smmsb:(\w+)$", line)
    if m:
        top[m.group(2)] = int(m.group(1))
j = json.load(open(sys.argv[2]))
want = {k["kind"]: k[sys.argv[3]] for k in j["kinds"] if k[sys.argv[3]]}
top = {k: v for k, v in top.items() if v}
if top != want:
    print(f"# FAILED: -top {top} != JSON {want}")
    sys.exit(1)
PY
}

# -diff_base OLD NEW: per kind the flat calls are NEW's JSON calls less OLD's
diff_check() {
	pprof -top -nodefraction=0 -sample_index=calls -diff_base "$tmp/$1.pb.gz" "$tmp/$2.pb.gz" \
		>"$tmp/diff.top" && python3 - "$tmp/diff.top" "$tmp/$1.json" "$tmp/$2.json" <<'PY'
import json, re, sys
top = {}
for line in open(sys.argv[1]):
    m = re.match(r"^\s*(-?\d+)\s.*\smmsb:(\w+)$", line)
    if m:
        top[m.group(2)] = int(m.group(1))
a, b = ({k["kind"]: k["calls"] for k in json.load(open(p))["kinds"]} for p in sys.argv[2:4])
want = {k: b.get(k, 0) - a.get(k, 0) for k in set(a) | set(b) if b.get(k, 0) != a.get(k, 0)}
top = {k: v for k, v in top.items() if v}
if top != want or not want:
    print(f"# FAILED: -diff_base {top} != the JSONs' {want}")
    sys.exit(1)
print(f"# calls, new less old: {want}")
PY
}

# 1. spans mode, samples on
if run s1 -- "$W" spin 200 300 && python3 "$tmp/check.py" "$tmp/s1.raw" "$tmp/s1.json" \
	"$tmp/s1.folded"; then
	ok "spans: figures per kind, stacks as the folded file, labels"
else
	cat "$tmp/s1.err" "$tmp/pprof.err"
	bad "spans"
fi

# 2. spans mode, -F 0: the folded file holds the rows' self ns
if run s2 -F 0 -- "$W" spin 300 300 && python3 "$tmp/check.py" "$tmp/s2.raw" "$tmp/s2.json" \
	"$tmp/s2.folded"; then
	ok "spans-F0: figures per kind, stacks as the folded file"
else
	cat "$tmp/s2.err" "$tmp/pprof.err"
	bad "spans-F0"
fi

# 3. -top
okt=1
for pair in calls:calls self:self_ns total:total_ns on_cpu:on_cpu_ns off_cpu:off_cpu_ns \
	runq:runq_ns; do
	top_check s1 "${pair%%:*}" "${pair#*:}" || okt=0
done
if [ $okt = 1 ]; then
	ok "top: each kind's calls and ns as the JSON's"
else
	cat "$tmp/pprof.err"
	bad "top"
fi

# 4. -diff_base between the spans runs
if diff_check s1 s2; then
	ok "diff-spans: -diff_base gives the calls' difference"
else
	cat "$tmp/pprof.err"
	bad "diff-spans"
fi

# 5. probes mode (a few kinds: each probe takes tens of ms to remove)
K=update,propagate,recompute,delta_apply
if run p1 --mode probes -k "$K" -- "$W" spin 100 300 &&
	python3 "$tmp/check.py" "$tmp/p1.raw" "$tmp/p1.json" "$tmp/p1.folded" &&
	top_check p1 self self_ns; then
	ok "probes: figures per kind, stacks as the folded file, mappings as the JSON's locations"
else
	cat "$tmp/p1.err" "$tmp/pprof.err"
	bad "probes"
fi

# 6. -diff_base between two probes runs
if run p2 --mode probes -k "$K" -- "$W" spin 150 300 && diff_check p1 p2; then
	ok "diff-probes: -diff_base gives the calls' difference"
else
	cat "$tmp/p2.err" "$tmp/pprof.err"
	bad "diff-probes"
fi
exit $fail
