#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# timeout: 900
#
# mmsb-trace record against ground truth. Privileged parts SKIP without root or BTF.
#  1. without privileges: one line naming what is missing, exit 1
#  2. accuracy: recomputes that spin a known time; calls exact; each span holds what the
#     workload's own clock measured inside it; self times never exceed the window (how close
#     the span is to the callback's clock is judged by make perf-check: under load a preemption
#     inside the span adds to one clock and not the other)
#  3. the folded, speedscope and JSON outputs are well formed
#  4. agreement: bpftrace measuring the same spans of the same run counts the same calls
#     (that their totals agree within 5 % is a time, judged by make perf-check)
#  5. production attach: 12 attach/detach cycles on a process that keeps updating pages; it
#     never crashes, every attach sees hits, its checksum equals an untraced run's
# Nothing here compares a time with another run's: the slowdown against bpftrace is judged by
# make perf-check (ci/perf-check.sh), interleaved.
set -u
O=${O:-.output}
T="$O/mmsb-trace"
W="$O/tests/trace_workload"
WS="$(realpath "$O/tests/trace_workload_static" 2>/dev/null)"
. "$(dirname "$0")/tap.sh"

echo "TAP version 13"
echo "1..5"

# 1. without privileges
if command -v setpriv >/dev/null && [ "$(id -u)" -eq 0 ]; then
	setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
		"$T" record -- /bin/true >"$tmp/o" 2>"$tmp/e"
	rc=$?
	if [ $rc -eq 1 ] && [ "$(wc -l <"$tmp/e")" -eq 1 ] && grep -q "CAP_BPF and CAP_PERFMON" "$tmp/e"; then
		ok "unprivileged record: one line naming CAP_BPF and CAP_PERFMON, exit 1"
	else
		bad "unprivileged record: exit $rc: $(cat "$tmp/e")"
	fi
elif [ "$(id -u)" -ne 0 ]; then
	"$T" record -- /bin/true >"$tmp/o" 2>"$tmp/e"
	if [ $? -eq 1 ] && [ "$(wc -l <"$tmp/e")" -eq 1 ]; then
		ok "unprivileged record: one line, exit 1"
	else
		bad "unprivileged record"
	fi
else
	skip "unprivileged record" "setpriv is not installed"
fi

why=$(no_attach)
[ -z "$why" ] || skip_all "$why" accuracy formats agreement production

# 2. accuracy: 100 updates, each recomputing a child that spins 2 ms
"$T" record --mode probes -J "$tmp/a.json" -- "$W" spin 100 2000 \
	>"$tmp/a.out" 2>"$tmp/a.err"
if python3 - "$tmp/a.json" "$tmp/a.out" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
lib = dict(zip(*[iter(open(sys.argv[2]).readline().split())] * 2))  # updates N recomputes N ...
k = {x["kind"]: x for x in j["kinds"]}
bad = 0
def check(what, ok):
    global bad
    if not ok:
        print("# FAILED:", what); bad = 1
# calls are exact: 100 updates; each changes the parent (1 delta) and the child (1 delta)
for kind, calls in (("update", 100), ("propagate", 100), ("recompute", 100), ("delta_apply", 200),
                    ("state_open", 1), ("state_close", 1), ("page_alloc", 2)):
    check(f"{kind} calls {k.get(kind, {}).get('calls')} == {calls}", k.get(kind, {}).get("calls") == calls)
# 2 public calls a round by the program (one of them mmsb_page_read from inside the recompute
# callback) and 7 around them
check(f"api calls {k['api']['calls']} == 207", k["api"]["calls"] == 207)
# The callbacks timed themselves, inside the recompute spans: a span holds its callback (the
# same clock), plus a diff, a commit and the probe hits nested in it
cb = float(lib["callback_ns"])
got = k["recompute"]["total_ns"]
check(f"recompute total {got} holds the callbacks' own {cb:.0f}", cb <= got <= j["wall_ns"])
want = 100 * 2000e3
check(f"recompute self {k['recompute']['self_ns']} at least the {want:.0f} spun",
      k["recompute"]["self_ns"] >= 0.99 * want)
# the library's own clock around its waves (read just outside the probes: the two differ by a
# few clock reads a wave either way): the waves hold the recomputes they ran
wave = float(lib["wave_ns"])
check(f"propagate total {k['propagate']['total_ns']} holds the recomputes' {got}, and the library's"
      f" wave clock {wave:.0f} holds them too", got <= k["propagate"]["total_ns"] and cb <= wave)
check(f"library recomputes {lib['recomputes']} == 100", lib["recomputes"] == "100")
# nested spans are never counted twice: one thread's self times never exceed the traced window
# (first span begin to last end), and hold at least the time spun in the callbacks
s, w, win = j["self_ns_sum"], j["wall_ns"], j["span_window_ns"]
check(f"self sum {s} inside the span window {win}, holding the {cb:.0f} spun", cb <= s <= 1.001 * win)
check(f"span window {win} inside the wall {w}", 0 < win <= w)
c = j["counters"]
check(f"nothing unmatched {c}", c["unmatched"] == 0 and c["abandoned"] == 0 and c["overflow"] == 0)
print(f"# recompute total {got / 1e6:.2f} ms, the callbacks' clock {cb / 1e6:.2f} ms, "
      f"{want / 1e6:.2f} ms spun; self/window {s / win:.3f}, self/wall {s / w:.3f}")
sys.exit(bad)
PY
then
	ok "accuracy: exact calls, recompute time, the library's wave time, no double counting"
else
	cat "$tmp/a.err" | sed 's/^/# /' | tail -3
	bad "accuracy"
fi

# 3. formats, from a run that writes every output, the event stream included
"$T" record -J "$tmp/f.json" -f "$tmp/f.folded" -s "$tmp/f.ss.json" -e "$tmp/f.ev" -- "$W" spin 50 200 \
	>"$tmp/f.out" 2>"$tmp/f.err"
"$T" record --mode probes -k update,recompute -J "$tmp/h.json" -e "$tmp/h.ev" -- "$W" rounds 20000 >/dev/null 2>&1
if python3 - "$tmp/f.folded" "$tmp/f.ss.json" "$tmp/f.json" tests/fixtures/speedscope-file-format-schema.json \
	"$tmp/f.ev" "$tmp/h.json" "$tmp/h.ev" <<'PY'
import json, re, sys
bad = 0
total = 0
line_re = re.compile(r"^[^;\s][^;]*(;[^;]+)* (\d+)$")
for n, line in enumerate(open(sys.argv[1]), 1):
    line = line.rstrip("\n")
    m = line_re.match(line)
    if not m or not line.rsplit(" ", 1)[0].split(";")[-1].startswith("mmsb:"):
        print(f"# folded line {n} malformed: {line!r}"); bad = 1
    else:
        total += int(m.group(2))
j = json.load(open(sys.argv[3]))
if total != j["self_ns_sum"]:
    print(f"# folded weights {total} != self sum {j['self_ns_sum']}"); bad = 1
for key in ("tool", "libmmsb", "target", "wall_ns", "hits", "estimated_overhead_ns", "counters",
            "features", "kinds", "stacks", "events"):
    if key not in j:
        print("# JSON lacks", key); bad = 1
for key in ("kernel", "btf", "uprobe_ref_ctr", "bpf_cookie", "ringbuf", "privileged", "libbpf"):
    if key not in j.get("features", {}):
        print("# features lack", key); bad = 1
# every user frame carries its file and offset, and a build id where the file has one
locs = [l for st in j["stacks"] for l in st["locations"]]
if not locs or any("offset" not in l and "address" not in l for l in locs) or \
   not any(l.get("build_id") and re.fullmatch(r"[0-9a-f]{40}", l["build_id"]) for l in locs):
    print("# stack locations without file offsets or build ids"); bad = 1
# the event stream: one line per closed span, exactly as many as the calls, none dropped
evs = [json.loads(l) for l in open(sys.argv[5])]
calls = sum(k["calls"] for k in j["kinds"])
if len(evs) != calls or j["events"]["streamed"] != calls or j["events"]["dropped"] != 0:
    print(f"# events {len(evs)} lines, {j['events']} for {calls} calls"); bad = 1
by_kind = {}
for e in evs:
    by_kind[e["kind"]] = by_kind.get(e["kind"], 0) + e["self_ns"]
if any(by_kind.get(k["kind"]) != k["self_ns"] for k in j["kinds"]):
    print("# events' self time per kind differs from the aggregate"); bad = 1
ss = json.load(open(sys.argv[2]))
try:
    import jsonschema
    jsonschema.validate(ss, json.load(open(sys.argv[4])))
except ImportError:
    # without jsonschema: the parts of the schema a sampled profile needs
    p = ss["profiles"][0]
    if p["type"] != "sampled" or len(p["samples"]) != len(p["weights"]) or \
       any(i >= len(ss["shared"]["frames"]) for s in p["samples"] for i in s):
        print("# speedscope structure"); bad = 1
except Exception as e:
    print("# speedscope schema:", str(e).splitlines()[0]); bad = 1
# the timeline: an evented profile whose opens and closes nest, one open per event
tl = [p for p in ss["profiles"] if p["type"] == "evented"]
if not tl:
    print("# no evented timeline"); bad = 1
opens = 0
for p in tl:
    stack, at = [], 0
    for e in p["events"]:
        if e["at"] < at:
            print("# timeline goes backwards"); bad = 1; break
        at = e["at"]
        if e["type"] == "O":
            stack.append(e["frame"]); opens += 1
        elif not stack or stack.pop() != e["frame"]:
            print("# timeline close does not match its open"); bad = 1; break
    if stack:
        print("# timeline leaves frames open"); bad = 1
if opens != len(evs):
    print(f"# timeline opens {opens} != events {len(evs)}"); bad = 1
# a heavier stream: whatever is not in the file is counted as dropped, nothing else goes missing
h = json.load(open(sys.argv[6]))
hcalls = sum(k["calls"] for k in h["kinds"])
hlines = sum(1 for _ in open(sys.argv[7]))
print(f"# heavy stream: {hcalls} spans, {hlines} streamed, {h['events']['dropped']} dropped")
if hlines != h["events"]["streamed"] or hlines + h["events"]["dropped"] != hcalls:
    print("# heavy stream does not add up"); bad = 1
sys.exit(bad)
PY
then
	ok "folded lines parse and add up to the self time; speedscope (sampled + timeline) matches its schema; JSON complete with build ids; events exact"
else
	bad "formats"
fi

# 4. agreement with bpftrace on the same run: the counts (the totals are a time: perf-check)
if ! command -v bpftrace >/dev/null; then
	skip "agreement with bpftrace" "bpftrace is not installed"
elif O="$O" tests/helpers/bt-agree.sh "$tmp" >"$tmp/agree" &&
	awk '{ print "# " $1 ": mmsb-trace " $2 " calls, bpftrace " $4 } $2 != $4 || $2 <= 0 { bad = 1 }
	     END { exit bad + (NR != 2) }' "$tmp/agree"; then
	ok "agreement: bpftrace counts the same update and recompute calls on the same run"
else
	bad "agreement with bpftrace"
fi

# 5. production attach: 12 cycles (3 s each on a host where a probe hit costs 25 us) on a process that keeps going
"$W" loop >"$tmp/loop.out" &
lpid=$!
pids+=("$lpid")
wait_mapped $lpid
cycles=0 zero=0
for i in $(seq 12); do
	"$T" record --mode probes -p "$lpid" -k update,propagate -d 1 >"$tmp/p.out" 2>"$tmp/p.err" || break
	hits=$(sed -n 's/.* \([0-9]*\) probe hits.*/\1/p' "$tmp/p.out")
	[ "${hits:-0}" -gt 0 ] || zero=$((zero + 1))
	kill -0 "$lpid" 2>/dev/null || break
	cycles=$i
done
kill -USR1 "$lpid"
wait "$lpid"
rc=$?
read -r _ rounds _ sum _ <"$tmp/loop.out"
want=$("$W" rounds "$rounds" | awk '{ print $4 }')
echo "# $cycles cycles, $zero without hits; $rounds rounds, checksum $sum (untraced: $want)"
if [ "$cycles" -eq 12 ] && [ "$zero" -eq 0 ] && [ $rc -eq 0 ] && [ "$sum" = "$want" ]; then
	ok "production attach: 12 attach/detach cycles, hits every time, the same checksum as untraced"
else
	sed 's/^/# /' "$tmp/p.err" | tail -3
	bad "production attach"
fi
exit $fail
