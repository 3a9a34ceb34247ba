#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Counters per span (mmsb-trace record --pmu, pmu list):
#  1. pmu list offers the software events on any machine
#  2. page faults per span: recomputes that touch a known number of fresh pages; the recompute
#     spans' self count holds it, the spans around them get (almost) none
#  3. TASK-CLOCK per span: on-CPU time never more than the span's own time (make perf-check
#     judges the 5 % agreement, pinned: how much of it is on CPU depends on the machine's load)
#  4. hardware events: refused with one line naming the missing PMU (no hardware PMU), or
#     counted with an IPC (a machine with one)
set -u
O=${O:-.output}
T="$O/mmsb-trace"
W="$O/tests/trace_workload"
. "$(dirname "$0")/tap.sh"

echo "TAP version 13"
echo "1..4"

if "$T" pmu list >"$tmp/list" 2>&1 &&
	grep -qE '^perf::PAGE-FAULTS +os +yes' "$tmp/list" &&
	grep -qE '^perf::TASK-CLOCK +os +yes' "$tmp/list" &&
	grep -qE '^perf::CONTEXT-SWITCHES +os +yes' "$tmp/list"; then
	ok "pmu list: PAGE-FAULTS, TASK-CLOCK and CONTEXT-SWITCHES countable"
else
	sed 's/^/# /' "$tmp/list" | head -5
	bad "pmu list"
fi

why=$(no_attach)
[ -z "$why" ] || skip_all "$why" page-faults task-clock hardware

# 50 updates, each recompute touching 200 fresh pages: 10,000 faults in recompute spans
"$T" record --pmu perf::PAGE-FAULTS,perf::TASK-CLOCK -k update,propagate,recompute \
	-J "$tmp/f.json" -- "$W" fault 50 200 >"$tmp/f.out" 2>"$tmp/f.err"
rc=$?
python3 - "$tmp/f.json" <<'PY' >"$tmp/check" 2>&1
import json, sys
j = json.load(open(sys.argv[1]))
k = {x["kind"]: x for x in j["kinds"]}
rec = k["recompute"]["pmu"]
pf, want = rec["perf::PAGE-FAULTS"]["self"], 50 * 200
around = k["update"]["pmu"]["perf::PAGE-FAULTS"]["self"] + k["propagate"]["pmu"]["perf::PAGE-FAULTS"]["self"]
print(f"# recompute page faults {pf} (touched {want}), around them {around}, "
      f"spans counted {rec['spans_counted']}, skipped {j['counters']['pmu_skipped']}")
# At least the pages touched. More when other tasks fault on the CPU within a span: the counters
# are per CPU, and a span counts what its CPU counted between its begin and its end (seen: 113
# more over 10,000 beside builds, 3,239 and 5,954 more beside fault-heavy test runs), so no upper
# bound holds under load; what is judged is that the faults land in the spans that took them:
# the spans around the recomputes hold fewer than half of what the recomputes touched.
# A span that migrated CPUs is not counted (spans_counted): only the counted ones' pages are owed.
owed = want * rec["spans_counted"] // k["recompute"]["calls"]
ok_pf = pf >= owed and around < want / 2 and rec["spans_counted"] >= 45
tc, ns = rec["perf::TASK-CLOCK"]["self"], k["recompute"]["self_ns"] * rec["spans_counted"] / k["recompute"]["calls"]
print(f"# recompute TASK-CLOCK {tc} ns against its self time {ns:.0f} ns")
# on-CPU time cannot exceed the span's time; some was counted
ok_tc = 0 < tc <= 1.01 * ns
print("pf", "ok" if ok_pf else "bad")
print("tc", "ok" if ok_tc else "bad")
PY
grep '^#' "$tmp/check"
if [ $rc -eq 0 ] && grep -q "^pf ok" "$tmp/check"; then
	ok "page faults per span: the recompute spans hold the pages touched, the spans around them none"
else
	sed 's/^/# /' "$tmp/f.err" | tail -3
	bad "page faults per span"
fi
if [ $rc -eq 0 ] && grep -q "^tc ok" "$tmp/check"; then
	ok "TASK-CLOCK per span: counted, never more than the span's own time"
else
	bad "TASK-CLOCK per span"
fi

# hardware events
if [ -e /sys/bus/event_source/devices/cpu ] || [ -e /sys/bus/event_source/devices/cpu_core ]; then
	"$T" record --pmu cycles,instructions -k recompute -J "$tmp/h.json" -- "$W" spin 20 100 \
		>/dev/null 2>"$tmp/h.err"
	if python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); k=[x for x in j["kinds"] if x["kind"]=="recompute"][0]; sys.exit(0 if k["pmu"].get("ipc", 0) > 0 else 1)' "$tmp/h.json"; then
		ok "hardware counters: cycles and instructions per span, with an IPC"
	else
		bad "hardware counters: $(cat "$tmp/h.err")"
	fi
else
	"$T" record --pmu perf::PAGE-FAULTS,cycles -- "$W" spin 1 1 >/dev/null 2>"$tmp/h.err"
	rc=$?
	if [ $rc -eq 1 ] && [ "$(wc -l <"$tmp/h.err")" -eq 1 ] && grep -q "no hardware PMU" "$tmp/h.err"; then
		ok "hardware counters # SKIP this machine has no hardware PMU (the refusal is one line, exit 1: checked)"
	else
		bad "hardware event refusal: exit $rc: $(cat "$tmp/h.err")"
	fi
fi
exit $fail
