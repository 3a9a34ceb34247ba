#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# timeout: 240
#
# mmsb-trace record's spans mode (the default) against the workload's own counts and clocks, and
# against the probes mode. Containments and exact counts only: no time judged against another.
#  1. counts: spin N: update and recompute calls are the workload's; a recompute span holds its
#     callback's clock and lies in the window
#  2. probes mode counts the same spans on the same workload
#  3. threads: two threads, a row each, no share over 100 %, the process's self time within the
#     threads' time
#  4. off-CPU: a recompute that sleeps is off a CPU for at least the sleeps asked; a spinning one
#     is never asleep
#  5. open at the stop: a recompute blocked across -d is counted open with the spans around it
#  6. -p on a running process: its results are those of the same rounds untraced; the folded
#     stacks are samples under span chains
#  7. --mode spans with -e is a usage error, in one line
#  8. -i 1 -c 3: three interval tables whose calls add up to the window's
#  9. -a: two processes started after it, still alive at its end, with exact counts, a row each
# 10. record -- sh -c '...': the command's descendants that use the library, each read at its
#     exit: exact counts, a row each after the command's; a process beside it that keeps
#     spans too (another mmsb-trace traces it) gets none
# Privileged parts SKIP without root or BTF.
set -u
O=${O:-.output}
T="$O/mmsb-trace"
W="$O/tests/trace_workload"
. "$(dirname "$0")/tap.sh"

echo "TAP version 13"
echo "1..10"

names=(counts probes-agree threads off-cpu open pid usage intervals all-processes children)
why=$(no_attach)
[ -z "$why" ] || skip_all "$why" "${names[@]}"

# kind KIND FIELD of a report (0 when the kind did not run)
jq_kind() {
	python3 -c 'import json, sys
j = json.load(open(sys.argv[1]))
print(next((k.get(sys.argv[3], 0) for k in j["kinds"] if k["kind"] == sys.argv[2]), 0))' "$@"
}

# 1. exact counts, and a span holds its callback
"$T" record -J "$tmp/c.json" -- "$W" spin 300 200 >"$tmp/c.out" 2>"$tmp/c.err"
rc=$?
read -r _ updates _ recomputes _ _ _ _ _ cb < <(grep '^updates' "$tmp/c.out")
if [ $rc -eq 0 ] && python3 - "$tmp/c.json" "${updates:-0}" "${recomputes:-0}" "${cb:-0}" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
n_upd, n_rec, cb = map(int, sys.argv[2:5])
k = {x["kind"]: x for x in j["kinds"]}
bad = 0
def check(what, ok):
    global bad
    if not ok:
        print("# FAILED:", what); bad = 1
check(f"mode {j['mode']}", j["mode"] == "spans")
# the span window is the kernel programs' to see: no zero standing in for it
check("no span window in the spans mode", not {"span_window_ns", "first_begin_ns", "last_end_ns"} & j.keys())
check(f"update calls {k['update']['calls']} == {n_upd}", k["update"]["calls"] == n_upd == 300)
check(f"recompute calls {k['recompute']['calls']} == {n_rec}", k["recompute"]["calls"] == n_rec)
r = k["recompute"]
check(f"recompute total {r['total_ns']} holds the callbacks' {cb}", r["total_ns"] >= cb)
check(f"recompute total {r['total_ns']} inside the window {j['wall_ns']}",
      r["total_ns"] <= j["wall_ns"])
check(f"self {r['self_ns']} <= total {r['total_ns']}", r["self_ns"] <= r["total_ns"])
check("p50 <= p99 <= max", r["p50_ns"] <= r["p99_ns"] <= r["max_ns"] * 1.07)
check(f"histogram holds the calls", sum(c for _, c in r["hist"]) == r["calls"])
check("nothing lost", j["spans_not_aggregated"] == 0 and j["spans_past_depth"] == 0)
sys.exit(bad)
PY
then
	ok "counts: $updates updates, $recomputes recomputes, callbacks ${cb} ns held"
else
	cat "$tmp/c.err"
	bad "counts"
fi

# 2. the probes mode on the same workload counts the same spans
"$T" record --mode probes -J "$tmp/p.json" -- "$W" spin 300 200 >/dev/null 2>"$tmp/p.err"
rc=$?
agree=1
for kind in api update propagate recompute delta_apply; do
	a=$(jq_kind "$tmp/c.json" "$kind" calls)
	b=$(jq_kind "$tmp/p.json" "$kind" calls)
	[ "$a" = "$b" ] && [ "$a" -gt 0 ] || { echo "# $kind: spans $a, probes $b"; agree=0; }
done
if [ $rc -eq 0 ] && [ $agree -eq 1 ] &&
	[ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["mode"])' "$tmp/p.json")" = probes ]; then
	ok "probes-agree: api, update, propagate, recompute, delta_apply counted alike"
else
	cat "$tmp/p.err"
	bad "probes-agree"
fi

# 3. two threads: shares of thread time
"$T" record -J "$tmp/t.json" -- "$W" threads 2 500 100 >/dev/null 2>"$tmp/t.err"
rc=$?
if [ $rc -eq 0 ] && python3 - "$tmp/t.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
th = j["threads"]
bad = 0
def check(what, ok):
    global bad
    if not ok:
        print("# FAILED:", what); bad = 1
check(f"{len(th)} thread rows", len(th) == 2)
for t in th:
    check(f"thread {t['tid']}: share {t['share']:.3f} <= 1", 0 < t["share"] <= 1)
    check(f"thread {t['tid']}: {t['spans']} spans", t["spans"] > 0)
    check(f"thread {t['tid']}: time {t['time_ns']} inside the window", t["time_ns"] <= j["wall_ns"])
check(f"thread time {j['thread_ns']} = the rows'", j["thread_ns"] == sum(t["time_ns"] for t in th))
check(f"self sum {j['self_ns_sum']} within the thread time {j['thread_ns']}",
      j["self_ns_sum"] <= j["thread_ns"])
upd = next(k for k in j["kinds"] if k["kind"] == "update")
check(f"update calls {upd['calls']} == 1000", upd["calls"] == 1000)
check(f"update share {upd['self_share']} <= 1", upd["self_share"] <= 1)
sys.exit(bad)
PY
then
	ok "threads: two rows, shares of thread time under 100 %"
else
	cat "$tmp/t.err"
	bad "threads"
fi

# 4. off a CPU: 40 recomputes that sleep 2 ms each; then the spinning ones of test 1
"$T" record -J "$tmp/s.json" -- "$W" sleep 40 2000 >/dev/null 2>"$tmp/s.err"
rc=$?
off=$(jq_kind "$tmp/s.json" recompute off_cpu_ns)
on=$(jq_kind "$tmp/s.json" recompute on_cpu_ns)
spin_off=$(jq_kind "$tmp/c.json" recompute off_cpu_ns)
spin_self=$(jq_kind "$tmp/c.json" recompute self_ns)
if [ $rc -eq 0 ] && [ "$off" -ge 80000000 ] && [ "$on" -lt "$off" ] &&
	[ "$spin_off" -lt $((spin_self / 10)) ]; then
	ok "off-cpu: sleeping recompute $off ns asleep, $on ns on a CPU; spinning one $spin_off ns asleep"
else
	cat "$tmp/s.err"
	bad "off-cpu: asleep $off ns (>= 80 ms), on $on; spinning asleep $spin_off of $spin_self"
fi

# 5. a recompute blocked on a FIFO across the stop: the spans begin once we are attached (the
# in-process spans see only begins made while a tracer holds them on)
mkfifo "$tmp/go" "$tmp/fifo"
MMSB_WORKLOAD_HOLD="$tmp/go" "$W" hold "$tmp/fifo" >"$tmp/h.out" &
hp=$!
pids+=("$hp")
wait_mapped "$hp"
"$T" record -p "$hp" -d 2 -J "$tmp/h.json" >/dev/null 2>"$tmp/h.err" &
tp=$!
wait_recording "$tmp/h.err"
echo x >"$tmp/go"
wait "$tp"
rc=$?
echo x >"$tmp/fifo"
wait "$hp"
hrc=$?
if [ $rc -eq 0 ] && [ $hrc -eq 0 ] && python3 - "$tmp/h.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
k = {x["kind"]: x for x in j["kinds"]}
bad = 0
for kind in ("update", "propagate", "recompute"):
    o = k.get(kind, {}).get("open", {})
    if o.get("count") != 1 or not 0 < o.get("ns_so_far", 0) <= j["wall_ns"]:
        print(f"# FAILED: {kind} open {o}"); bad = 1
sys.exit(bad)
PY
then
	ok "open: update, propagate and recompute open at the stop, their time within the window"
else
	cat "$tmp/h.err"
	bad "open"
fi

# 6. -p on a running process: its results unchanged; samples under span chains, where every
#    public call runs through its traced twin (lib/probes.h): the twin named as the function
"$W" loop >"$tmp/l.out" &
lp=$!
pids+=("$lp")
wait_mapped "$lp"
"$T" record -p "$lp" -d 1 -F 999 -f "$tmp/l.folded" -J "$tmp/l.json" >/dev/null 2>"$tmp/l.err"
rc=$?
kill -USR1 "$lp"
wait "$lp"
read -r _ rounds _ sum _ < "$tmp/l.out"
read -r _ r2 _ sum2 _ < <("$W" rounds "${rounds:-1}")
if [ $rc -eq 0 ] && [ "$sum" = "$sum2" ] && [ "$rounds" = "$r2" ] && [ -s "$tmp/l.folded" ] &&
	awk '!/^[^ ]+ [0-9]+$/ { bad = 1 } /^mmsb:api;mmsb:update/ { chain = 1 }
	     /[;]mmsb_[a-z0-9_]*__traced[; ]/ { bad = 1 }
	     END { exit bad || !chain }' "$tmp/l.folded"; then
	ok "pid: $rounds rounds, checksum $sum as untraced; folded samples under span chains, each public function's twin shown as the function"
else
	cat "$tmp/l.err"
	head -3 "$tmp/l.folded" | sed 's/^/# /'
	bad "pid: rounds $rounds/$r2 checksum $sum/$sum2"
fi

# 7. usage
"$T" record --mode spans -e "$tmp/e.ndjson" -- "$W" spin 1 1 >/dev/null 2>"$tmp/u.err"
rc=$?
if [ $rc -eq 2 ] && [ "$(wc -l <"$tmp/u.err")" -eq 1 ] && grep -q -- "--mode probes" "$tmp/u.err" &&
	[ ! -e "$tmp/e.ndjson" ]; then
	ok "usage: $(cat "$tmp/u.err")"
else
	bad "usage: rc $rc, $(cat "$tmp/u.err")"
fi

# 8. intervals: -c ends the window at the last interval's read
"$W" loop >/dev/null &
ip=$!
pids+=("$ip")
wait_mapped "$ip"
"$T" record -p "$ip" -i 1 -c 3 -T -k update >"$tmp/i.out" 2>"$tmp/i.err"
rc=$?
kill -USR1 "$ip"
wait "$ip"
if [ $rc -eq 0 ] && python3 - "$tmp/i.out" <<'PY'
import re, sys
out = open(sys.argv[1]).read().split("\n")
ivs, total, cur = [], None, None
for line in out:
    if re.match(r"^\d\d:\d\d:\d\d interval \d+: ", line):
        cur = "iv"
    elif line.startswith("mmsb-trace: window:"):
        cur = "total"
    m = re.match(r"^update\s+\S+\s+(\d+)\s", line)
    if m and cur == "iv":
        ivs.append(int(m.group(1)))
    elif m and cur == "total":
        total = int(m.group(1))
print(f"# intervals {ivs}, window {total}")
sys.exit(0 if len(ivs) == 3 and total and sum(ivs) == total and min(ivs) > 0 else 1)
PY
then
	ok "intervals: three tables with the time of day, their update calls add up to the window's"
else
	cat "$tmp/i.err"
	bad "intervals"
fi

# 9. -a: two processes that start after it, alive at its end
mkfifo "$tmp/end"
"$T" record -a -l "$(readlink -f "$O/libmmsb.so")" -d 3 -J "$tmp/a.json" >"$tmp/a.out" 2>"$tmp/a.err" &
tp=$!
wait_recording "$tmp/a.err"
MMSB_WORKLOAD_HOLD_END="$tmp/end" "$W" spin 200 100 >"$tmp/a1.out" &
a1=$!
MMSB_WORKLOAD_HOLD_END="$tmp/end" "$W" spin 300 100 >"$tmp/a2.out" &
a2=$!
pids+=("$a1" "$a2")
wait "$tp"
rc=$?
echo xx >"$tmp/end"
wait "$a1" "$a2" 2>/dev/null
if [ $rc -eq 0 ] && python3 - "$tmp/a.json" "$a1" "$a2" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
want = {int(sys.argv[2]): 200, int(sys.argv[3]): 300}
procs = {p["pid"]: p for p in j["processes"]}
bad = 0
for pid, n in want.items():
    p = procs.get(pid)
    # a spin update is 7 spans: api, update, delta_apply, propagate, recompute, and in the
    # recompute its read (api) and its delta; plus the set-up: 9 (state_open, two page_allocs
    # and the six api calls around them)
    if not p or p["spans"] != 7 * n + 9 or p["threads"] != 1 or p["comm"] != "trace_workload":
        print(f"# FAILED: process {pid}: {p}"); bad = 1
upd = next(k for k in j["kinds"] if k["kind"] == "update")
if upd["calls"] < 500:
    print(f"# FAILED: update calls {upd['calls']} < 500"); bad = 1
sys.exit(bad)
PY
then
	ok "all-processes: two processes started after it, 200 and 300 updates counted exactly, a row each"
else
	cat "$tmp/a.err"
	bad "all-processes"
fi

# 10. the command's children, and nobody else's: beside it runs a process that keeps spans (it is
# traced by another mmsb-trace), which a scan of every process mapping the library would find
"$W" loop >/dev/null &
by=$!
pids+=("$by")
wait_mapped "$by"
"$T" record -p "$by" -J "$tmp/by.json" >/dev/null 2>"$tmp/by.err" &
pids+=($!)
wait_recording "$tmp/by.err"
"$T" record -J "$tmp/k.json" -- sh -c "'$W' spin 300 100 >/dev/null; '$W' threads 2 100 100 >/dev/null" \
	>/dev/null 2>"$tmp/k.err"
rc=$?
if [ $rc -eq 0 ] && ! grep -q "not traced\|never mapped" "$tmp/k.err" && python3 - "$tmp/k.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
procs = j.get("processes", [])
# the shell first, then its two children: 7 spans a spin update, 9 to set up, 2 to close;
# the threads one: two threads of 100 updates, two states
want = [("sh", 0, 0), ("trace_workload", 1, 7 * 300 + 11), ("trace_workload", 2, 2 * (7 * 100 + 11))]
have = [(p["comm"], p["threads"], p["spans"]) for p in procs]
print(f"# processes {have}")
sys.exit(0 if have == want and all(p["exited"] for p in procs[1:]) else 1)
PY
then
	ok "children: the command's two children that use the library, each counted exactly at its exit; nobody else's"
else
	cat "$tmp/k.err"
	bad "children"
fi
exit $fail
