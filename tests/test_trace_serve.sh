#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# timeout: 150
#
# mmsb-trace serve --listen: /metrics as a real Prometheus scrapes it. Exact counts and the
# tool's own figures only, no time judged against a clock.
#  1. serve starts, and /metrics shows every process (of a copy of the library: no other test's) with the workloads' exact update counts:
#     one started before it (held at its start, found by its maps), two started after it (found
#     by their first span), one that exited (its last figures kept, counted as exited)
#  2. promtool check metrics passes on the text format; the OpenMetrics variant (asked for by
#     Accept) has its content type and ends in # EOF
#  3. a real Prometheus (127.0.0.1 only, scrape_interval 1s) scrapes it: up is 1
#  4. PromQL: the last update count of each workload is its known count, and increase() over
#     the process held at its start (its counters from 0) is exactly the updates it then made
#  5. PromQL: histogram_quantile(0.5, sum by (le) (...)) of every process's recompute durations
#     within 5 % of the recompute p50 of the tool's own table (printed when serve ends)
#  6. the bound: with --keep-exited 0 a process that exits is counted as exited, then leaves
#     /metrics (and its threads the BPF maps: room for later processes)
# SKIP without root, BTF, prometheus, promtool or curl.
set -u
O=${O:-.output}
T="$O/mmsb-trace"
W="$O/tests/trace_workload"
. "$(dirname "$0")/tap.sh"

echo "TAP version 13"
echo "1..6"

names=(metrics promtool prometheus-up promql-counts promql-quantile keep-exited)
why=$(no_attach)
for c in prometheus promtool curl; do
	[ -n "$why" ] || command -v "$c" >/dev/null || why="needs $c (Debian: prometheus, curl)"
done
[ -z "$why" ] || skip_all "$why" "${names[@]}"

# a port nothing listens on now
free_port() {
	python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
sp=$(free_port)
pp=$(free_port)
[ "$pp" = "$sp" ] && pp=$((sp + 1))
# a copy of the library that only this test's workloads load (their RUNPATH yields to
# LD_LIBRARY_PATH): other tests running beside this one map another file, and serve, which
# follows a file, does not see them
mkdir "$tmp/lib"
cp "$(readlink -f "$O/libmmsb.so")" "$tmp/lib/libmmsb.so.0"
lib="$tmp/lib/libmmsb.so.0"
export LD_LIBRARY_PATH="$tmp/lib"
mkfifo "$tmp/start" "$tmp/end" "$tmp/end3" "$tmp/end4"

# held at its start: found by serve's scan of the maps, every counter from 0
MMSB_WORKLOAD_HOLD="$tmp/start" MMSB_WORKLOAD_HOLD_END="$tmp/end" "$W" spin 150 100 \
	>"$tmp/w0.out" &
w0=$!
pids+=("$w0")
wait_mapped "$w0"
"$T" serve --listen "127.0.0.1:$sp" -l "$lib" >"$tmp/serve.out" 2>"$tmp/serve.err" &
tp=$!
pids+=("$tp")
wait_recording "$tmp/serve.err"
MMSB_WORKLOAD_HOLD_END="$tmp/end" "$W" spin 200 100 >"$tmp/w1.out" &
w1=$!
MMSB_WORKLOAD_HOLD_END="$tmp/end" "$W" spin 300 100 >"$tmp/w2.out" &
w2=$!
# exits once read with all its work (a process's last read is at most 0.25 s old)
MMSB_WORKLOAD_HOLD_END="$tmp/end3" "$W" spin 100 100 >"$tmp/w3.out" &
w3=$!
pids+=("$w1" "$w2" "$w3")

# VALUE of a series in a /metrics file: calls PID KIND
calls() {
	sed -n "s/^mmsb_span_calls_total{pid=\"$2\",.*kind=\"$3\"} \([0-9]*\)$/\1/p" "$1"
}
# until the figures read once a second have every workload's updates
for _ in $(seq 150); do
	curl -s "http://127.0.0.1:$sp/metrics" >"$tmp/m.txt"
	[ "$(calls "$tmp/m.txt" "$w1" update)" = 200 ] &&
		[ "$(calls "$tmp/m.txt" "$w2" update)" = 300 ] &&
		[ "$(calls "$tmp/m.txt" "$w3" update)" = 100 ] && break
	sleep 0.2
done
echo x >"$tmp/end3"
wait "$w3"
for _ in $(seq 150); do
	curl -s "http://127.0.0.1:$sp/metrics" >"$tmp/m.txt"
	grep -q '^mmsb_trace_processes_exited_total 1$' "$tmp/m.txt" && break
	sleep 0.2
done
m0=$(calls "$tmp/m.txt" "$w0" update)
if [ "$m0" = 0 ] && [ "$(calls "$tmp/m.txt" "$w1" update)" = 200 ] &&
	[ "$(calls "$tmp/m.txt" "$w2" update)" = 300 ] &&
	[ "$(calls "$tmp/m.txt" "$w3" update)" = 100 ] &&
	grep -q "^mmsb_span_calls_total{pid=\"$w1\",comm=\"trace_workload\",cgroup=\"/" "$tmp/m.txt" &&
	grep -q '^mmsb_trace_processes{state="live"} 3$' "$tmp/m.txt" &&
	grep -q '^mmsb_trace_processes{state="exited"} 1$' "$tmp/m.txt" &&
	grep -q "^mmsb_span_duration_seconds_bucket{pid=\"$w2\",.*,kind=\"recompute\",le=\"+Inf\"} 300$" "$tmp/m.txt"; then
	ok "metrics: four processes, 0 (held), 200, 300 and 100 (exited) updates, exact; 3 live, 1 exited"
else
	echo "# w0 $m0 w1 $(calls "$tmp/m.txt" "$w1" update) w2 $(calls "$tmp/m.txt" "$w2" update) w3 $(calls "$tmp/m.txt" "$w3" update)"
	grep '^mmsb_trace' "$tmp/m.txt" | sed 's/^/# /'
	sed 's/^/# /' "$tmp/serve.err"
	bad "metrics"
fi

curl -s -D "$tmp/om.hdr" -H 'Accept: application/openmetrics-text; version=1.0.0' \
	"http://127.0.0.1:$sp/metrics" >"$tmp/om.txt"
if promtool check metrics <"$tmp/m.txt" >"$tmp/promtool.out" 2>&1 &&
	grep -qi '^content-type: application/openmetrics-text' "$tmp/om.hdr" &&
	[ "$(tail -n 1 "$tmp/om.txt")" = "# EOF" ] &&
	grep -q '^# TYPE mmsb_span_calls counter$' "$tmp/om.txt"; then
	ok "promtool: check metrics passes; OpenMetrics when asked, ending in # EOF"
else
	sed 's/^/# /' "$tmp/promtool.out" | head -20
	bad "promtool"
fi

# a real Prometheus, on 127.0.0.1 only, its data in $tmp
cat >"$tmp/prom.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: mmsb
    static_configs:
      - targets: ['127.0.0.1:$sp']
EOF
prometheus --config.file="$tmp/prom.yml" --storage.tsdb.path="$tmp/tsdb" \
	--web.listen-address="127.0.0.1:$pp" --log.level=warn >"$tmp/prom.log" 2>&1 &
prom=$!
pids+=("$prom")
# PromQL QUERY [TIME]: the first result's value, or nothing
q() {
	curl -s "http://127.0.0.1:$pp/api/v1/query" --data-urlencode "query=$1" \
		${2:+--data-urlencode "time=$2"} | python3 -c 'import json, sys
r = json.load(sys.stdin).get("data", {}).get("result", [])
print(r[0]["value"][1] if r else "")' 2>/dev/null
}
# three scrapes of w0 at 0 before it works
up=
for _ in $(seq 150); do
	up=$(q 'up{job="mmsb"}')
	[ "$up" = 1 ] && [ "$(q "count_over_time(mmsb_span_calls_total{kind=\"update\",pid=\"$w0\"}[5m])")" -ge 3 ] 2>/dev/null && break
	sleep 0.2
done
if [ "$up" = 1 ]; then
	ok "prometheus-up: a real Prometheus scrapes serve: up 1"
else
	sed 's/^/# /' "$tmp/prom.log" | tail -20
	bad "prometheus-up"
fi

# w0 works now, then holds; three scrapes more after its count settles
echo x >"$tmp/start"
for _ in $(seq 150); do
	[ "$(q "count_over_time((mmsb_span_calls_total{kind=\"update\",pid=\"$w0\"} == 150)[5m:1s])")" -ge 3 ] 2>/dev/null && break
	sleep 0.2
done
# at the last sample's own time: no extrapolation past it, none before the first (it is 0)
ts=$(q "timestamp(mmsb_span_calls_total{kind=\"update\",pid=\"$w0\"})")
inc=$(q "increase(mmsb_span_calls_total{kind=\"update\",pid=\"$w0\"}[5m])" "$ts")
rate=$(q "rate(mmsb_span_calls_total{kind=\"update\",pid=\"$w0\"}[5m]) * 300" "$ts")
l1=$(q "mmsb_span_calls_total{kind=\"update\",pid=\"$w1\"}")
l2=$(q "mmsb_span_calls_total{kind=\"update\",pid=\"$w2\"}")
l3=$(q "mmsb_span_calls_total{kind=\"update\",pid=\"$w3\"}")
echo "# PromQL: increase(update calls of held $w0[5m]) $inc, rate*300 $rate; last values $l1 $l2 $l3"
if python3 -c 'import sys
inc, rate, l1, l2, l3 = map(float, sys.argv[1:])
sys.exit(not (abs(inc - 150) < 0.01 and abs(rate - 150) < 0.01 and (l1, l2, l3) == (200, 300, 100)))' \
	"${inc:-0}" "${rate:-0}" "${l1:-0}" "${l2:-0}" "${l3:-0}"; then
	ok "promql-counts: increase() and rate() of the held process 150 exactly, last values 200, 300, 100"
else
	bad "promql-counts"
fi

hq=$(q 'histogram_quantile(0.5, sum by (le) (mmsb_span_duration_seconds_bucket{kind="recompute"}))')
# serve's end: the whole run's table, the tool's own p50
kill -TERM "$tp"
wait "$tp"
rc=$?
echo x >"$tmp/end"
p50=$(awk '$1 == "recompute" { print $(NF - 3), $(NF - 2) }' "$tmp/serve.out")
echo "# PromQL: histogram_quantile(0.5) of every process's recompute durations $hq s; the table's p50 $p50"
if [ $rc -eq 0 ] && python3 -c 'import sys
v, u = sys.argv[2].split()
p50 = float(v) * {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1}[u]
hq = float(sys.argv[1])
sys.exit(not abs(hq - p50) <= 0.05 * p50)' "${hq:-0}" "${p50:-0 s}"; then
	ok "promql-quantile: histogram_quantile(0.5) within 5 % of the table's recompute p50"
else
	sed 's/^/# /' "$tmp/serve.out" | head -20
	bad "promql-quantile"
fi

# 6. --keep-exited 0: an exited process leaves /metrics at the next read
"$T" serve --listen "127.0.0.1:$sp" --keep-exited 0 -l "$lib" >"$tmp/s6.out" 2>"$tmp/s6.err" &
t6=$!
pids+=("$t6")
wait_recording "$tmp/s6.err"
MMSB_WORKLOAD_HOLD_END="$tmp/end4" "$W" spin 50 100 >"$tmp/w4.out" &
w4=$!
pids+=("$w4")
for _ in $(seq 150); do
	curl -s "http://127.0.0.1:$sp/metrics" >"$tmp/m6.txt"
	[ "$(calls "$tmp/m6.txt" "$w4" update)" = 50 ] && break
	sleep 0.2
done
seen=$(calls "$tmp/m6.txt" "$w4" update)
echo x >"$tmp/end4"
wait "$w4"
for _ in $(seq 150); do
	curl -s "http://127.0.0.1:$sp/metrics" >"$tmp/m6.txt"
	grep -q '^mmsb_trace_processes_exited_total 1$' "$tmp/m6.txt" &&
		! grep -q "pid=\"$w4\"" "$tmp/m6.txt" && break
	sleep 0.2
done
kill -TERM "$t6"
wait "$t6"
rc=$?
if [ $rc -eq 0 ] && [ "$seen" = 50 ] && grep -q '^mmsb_trace_processes_exited_total 1$' "$tmp/m6.txt" &&
	grep -q '^mmsb_trace_processes{state="exited"} 0$' "$tmp/m6.txt" &&
	! grep -q "pid=\"$w4\"" "$tmp/m6.txt"; then
	ok "keep-exited: 50 updates seen, then exited and gone from /metrics with --keep-exited 0"
else
	grep '^mmsb_trace_proc' "$tmp/m6.txt" | sed 's/^/# /'
	bad "keep-exited"
fi
exit $fail
