#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# The FFI boundary from a Python host (docs/ffi.md), traced on both sides:
#  1. mmsb-bench --host python puts the Python-driven figures beside the C ones
#  2. record on a Python program: one ffi_call span (libffi, host side) per crossing into libmmsb,
#     each holding exactly one api span (library side); ctypes calls into other libraries are
#     counted, not attributed; the folded stacks carry mmsb:ffi_call;mmsb:api frames
#  3. record --host-sample on the same program: every crossing counted, no probe on the call
#     path, the host's samples kept by module and function
#  4. record --host-sample -p on a Python host already calling: its records are announced again
#     (every 4096 crossings), so a tracer that comes late counts it
# How the sampled host side compares with the Python-driven minus the C-driven time of the same
# updates is a timing: make perf-check judges it (ci/perf-check.sh), interleaved.
set -u
O=${O:-.output}
T="$O/mmsb-trace"
. "$(dirname "$0")/tap.sh"

echo "TAP version 13"
echo "1..4"

if [ -n "${SAN:-}" ]; then
	skip "host python bench" "a sanitizer build's library cannot load into an uninstrumented python3"
	skip "ffi attribution" "attach tests run in the plain build, not under sanitizers"
	skip "sampled host side" "attach tests run in the plain build, not under sanitizers"
	skip "sampled host side, attached late" "attach tests run in the plain build, not under sanitizers"
	exit 0
fi

"$O/mmsb-bench" --quick --host python --json "$tmp/h.json" >"$tmp/h.out" 2>"$tmp/h.err"
rc=$?
if [ $rc -eq 0 ] && python3 - "$tmp/h.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
want = {"delta/cpu_sparse", "delta/cpu_dense", "propagation/single_hop", "propagation/chain_10",
        "propagation/batch_32x4", "delta/update_x64", "delta/update_batch_x64"}
h = j.get("host_vs_c", {})
bad = want - set(h)
for k in want & set(h):
    e = h[k]
    if not (e["c_ns"] > 0 and e["host_ns"] > 0 and e["calls_per_eval"] >= 1):
        bad.add(k)
print(f"# crossing per call {h['delta/cpu_sparse']['crossing_ns_per_call']:.0f} ns, batch per write "
      f"{h['delta/update_batch_x64']['host_cost_ns_per_write']:.0f} ns")
sys.exit(1 if bad else 0)
PY
then
	ok "mmsb-bench --host python: every key beside its C twin, crossing cost per call"
else
	sed 's/^/# /' "$tmp/h.err" | tail -3
	bad "mmsb-bench --host python: exit $rc"
fi

if [ "$(id -u)" -ne 0 ] || [ ! -r /sys/kernel/btf/vmlinux ]; then
	skip "ffi attribution" "needs root (CAP_BPF, CAP_PERFMON) and a kernel with BTF"
	skip "sampled host side" "needs root (CAP_BPF, CAP_PERFMON) and a kernel with BTF"
	skip "sampled host side, attached late" "needs root (CAP_BPF, CAP_PERFMON) and a kernel with BTF"
	exit $fail
fi
"$T" record -k api,ffi_call,update -J "$tmp/f.json" -f "$tmp/f.folded" -- \
	python3 tests/helpers/ffi_workload.py 5000 300 >"$tmp/f.out" 2>"$tmp/f.err"
rc=$?
if [ $rc -eq 0 ] && python3 - "$tmp/f.json" "$tmp/f.out" "$tmp/f.folded" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
w = dict(zip(*[iter(open(sys.argv[2]).read().split())] * 2))
k = {x["kind"]: x for x in j["kinds"]}
crossings, other = int(w["crossings"]), int(w["other"])
ffi, api = k.get("ffi_call", {}), k.get("api", {})
folded = open(sys.argv[3]).read()
checks = {
    f"ffi_call spans {ffi.get('calls')} == crossings {crossings}": ffi.get("calls") == crossings,
    f"api spans {api.get('calls')} == crossings": api.get("calls") == crossings,
    f"other ffi calls counted {j['counters']['host_other']} >= {other}": j["counters"]["host_other"] >= other,
    "folded has mmsb:ffi_call;mmsb:api": "mmsb:ffi_call;mmsb:api" in folded,
    "no unmatched ends": j["counters"]["unmatched"] == 0,
}
for what, good in checks.items():
    print(("# " if good else "# FAILED: ") + what)
print(f"# host side (libffi) self {ffi['self_ns'] / ffi['calls']:.0f} ns a crossing, traced")
sys.exit(0 if all(checks.values()) else 1)
PY
then
	ok "ffi attribution: one ffi_call span per crossing around one api span; other ctypes calls counted, not attributed"
else
	sed 's/^/# /' "$tmp/f.err" | tail -3
	bad "ffi attribution: exit $rc"
fi

# 3. The host side, sampled: 1,000,000 updates from Python under the sampler. The host's own
#    work after its last crossing (the interpreter's teardown, 8-18 ms here) is a fixed cost
#    against a loop whose length is the machine's: at 300,000 it was 2.6-5.2 % of the samples
#    with crossings, and the bound below is 5 %.
N=1000000
"$T" record --host-sample -J "$tmp/s.json" -f "$tmp/s.folded" -- \
	python3 tests/helpers/ffi_workload.py $N 0 >"$tmp/s.out" 2>"$tmp/s.err"
rc=$?
if [ $rc -eq 0 ] && python3 - "$tmp/s.json" "$tmp/s.folded" $N <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
h = j["host_sampling"]
n = int(sys.argv[3])
folded = open(sys.argv[2]).read()
own, ffi = h["samples_host_own"], h["samples_ffi_host"]
checks = {
    f"crossings counted {h['crossings']}, made {n} + 3": n <= h["crossings"] <= n + 3,
    f"no probe on the call path: hits {j['hits']}, kinds {[k['kind'] for k in j['kinds']]}":
        j["hits"] == 0 and [k["kind"] for k in j["kinds"]] == ["ffi_host"],
    "folded has mmsb:ffi_host;<module>;<function> frames": "\nmmsb:ffi_host;" in "\n" + folded,
    # a thread calling in a loop crosses between any two samples: its own work is the rest
    f"host samples {ffi} with crossings, {own} without": ffi > 0 and own < 0.05 * ffi,
}
for what, good in checks.items():
    print(("# " if good else "# FAILED: ") + what)
print(f"# ffi_host {h['ffi_host_ns_per_crossing']:.0f} ns a crossing (a figure; make perf-check judges it)")
sys.exit(0 if all(checks.values()) else 1)
PY
then
	ok "sampled host side: every crossing counted, no probe on the call path, frames by module and function"
else
	sed 's/^/# /' "$tmp/s.err" | tail -3
	bad "sampled host side: exit $rc"
fi

# 4. Attached late, with -p, for 2 s, to a host that has made a million crossings already. Taking
# the last probe out of a host busy in user space waits for the kernel (docs/ffi.md): seconds.
python3 tests/helpers/ffi_workload.py 100000000 0 >/dev/null 2>&1 &
host=$!
# once it has loaded libmmsb (seconds on a loaded machine), and a moment of calls after that
wait_mapped $host
sleep 1
"$T" record --host-sample -p $host -d 2 -J "$tmp/p.json" >"$tmp/p.out" 2>"$tmp/p.err"
rc=$?
kill $host 2>/dev/null
wait $host 2>/dev/null
if [ $rc -eq 0 ] && python3 - "$tmp/p.json" <<'PY'
import json, sys
h = json.load(open(sys.argv[1]))["host_sampling"]
checks = {
    # a host crossing every few us for 2 s, however loaded the machine: far more than 10,000
    f"crossings counted in 2 s: {h['crossings']}": 10000 < h["crossings"] < 100000000,
    f"samples in crossings {h['samples_ffi_host']}": h["samples_ffi_host"] > 0,
    f"samples before the first announcement seen: {h['samples_before_first_crossing']}":
        h["samples_before_first_crossing"] < 50,
}
for what, good in checks.items():
    print(("# " if good else "# FAILED: ") + what)
sys.exit(0 if all(checks.values()) else 1)
PY
then
	ok "sampled host side, attached late: the host's records announce themselves again"
else
	sed 's/^/# /' "$tmp/p.err" | tail -3
	bad "sampled host side, attached late: exit $rc"
fi
exit $fail
