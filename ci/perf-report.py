#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Helpers of ci/perf-capture.sh (standard library only).

  perf-report.py pick-baseline MACHINE_JSON DIR   the baseline in DIR measured on this machine
  perf-report.py summary OUTDIR                   OUTDIR/summary.md from the capture's files

A baseline matches when its machine block has the same CPU model, core count and architecture:
ratios against figures from other hardware say nothing about a change (docs/ci.md).
"""
import glob
import json
import os
import sys

MATCH = ("cpu_model", "cores", "arch")


def fmt_ns(ns):
    if ns < 1e3:
        return f"{ns:.1f} ns"
    if ns < 1e6:
        return f"{ns / 1e3:.2f} us"
    if ns < 1e9:
        return f"{ns / 1e6:.2f} ms"
    return f"{ns / 1e9:.2f} s"


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def pick_baseline(machine_json, directory):
    me = load(machine_json)
    if me is None:
        sys.exit(f"perf-report: {machine_json}: not a machine block")
    for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
        b = load(path)
        if not isinstance(b, dict) or "benchmarks" not in b:
            continue  # validation results, or not a baseline
        m = b.get("machine", {})
        if all(m.get(k) == me.get(k) for k in MATCH):
            print(path)
            return
    # nothing printed: no baseline for this machine


def read_text(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def summary(out):
    bench = load(os.path.join(out, "bench.json")) or {}
    cmp_ = load(os.path.join(out, "compare.json"))
    val = load(os.path.join(out, "validation.json"))
    trace = load(os.path.join(out, "trace.json"))
    status = dict(line.split("=", 1) for line in read_text(os.path.join(out, "status")).splitlines()
                  if "=" in line)
    m = bench.get("machine", {})
    w = []
    verdict = status.get("verdict", "unknown")
    w.append(f"# Perf capture: {verdict}")
    w.append("")
    w.append(f"- revision `{m.get('git_revision', '?')}`, {bench.get('timestamp', '?')}, "
             f"{bench.get('mode', '?')} mode{' (quick)' if bench.get('quick') else ''}")
    w.append(f"- machine: {m.get('cpu_model', '?')}, {m.get('cores', '?')} CPUs, "
             f"{m.get('arch', '?')}, kernel {m.get('kernel', '?')}, {m.get('compiler', '?')}")
    if cmp_ is None:
        w.append(f"- regression gate: not judged: {status.get('baseline_note', 'no comparison')}")
    else:
        w.append(f"- regression gate ({'on' if status.get('gate') == 'on' else 'off: a report'}): "
                 f"{cmp_['regressions']} regressed against `{cmp_['baseline']}`; "
                 f"{cmp_['faster']} faster, {cmp_['similar']} similar, {cmp_['slower']} slower "
                 f"(a key beyond its band is measured up to {cmp_['repeats']} more times, "
                 f"its best run judged)")
    if val is None:
        w.append(f"- validator: not run ({status.get('validator_note', 'no results')})")
    else:
        failed = [r["id"] for r in val.get("results", []) if not r.get("passed")]
        w.append(f"- validator: {val.get('pass_count')}/{val.get('total')} passed"
                 + (f"; failed: {', '.join(failed)}" if failed else ""))
    if trace is None:
        w.append(f"- trace: skipped: {status.get('trace_note', 'no trace')}")
    else:
        w.append(f"- trace: {trace['hits']} probe hits over {trace['wall_ns'] / 1e9:.2f} s "
                 f"(profile `ci`), self time attributed "
                 f"{100 * trace['self_ns_sum'] / max(trace['wall_ns'], 1):.1f} % of the wall time")
    w.append("")
    if cmp_ is not None:
        keys = cmp_["keys"]
        flagged = [k for k in keys if k["verdict"] != "similar"]
        w.append("## Keys outside their band" if flagged else "## Every key within its band")
        w.append("")
        w.append("| key | baseline | this run | ratio | band | runs | verdict |")
        w.append("|---|---:|---:|---:|---:|---:|---|")
        shown = flagged if flagged else sorted(keys, key=lambda k: -k["ratio"])[:8]
        for k in shown:
            v = k["verdict"]
            if v == "slower" and k["gated"]:
                v = "**REGRESSION**" if status.get("gate") == "on" else "slower (reported)"
            w.append(f"| {k['key']} | {fmt_ns(k['baseline_ns'])} | {fmt_ns(k['this_run_ns'])} | "
                     f"{k['ratio']:.2f} | {k['band']:.2f} | {k['runs']} | {v} |")
        if not flagged:
            w.append("")
            w.append(f"(the 8 highest ratios of {len(keys)} compared keys)")
        w.append("")
    if trace is not None:
        w.append("## Where the traced bench's time went (self time, top 6)")
        w.append("")
        w.append("| span | category | calls | total | self | share |")
        w.append("|---|---|---:|---:|---:|---:|")
        for k in sorted(trace["kinds"], key=lambda k: -k["self_ns"])[:6]:
            w.append(f"| {k['kind']} | {k['category']} | {k['calls']} | {fmt_ns(k['total_ns'])} | "
                     f"{fmt_ns(k['self_ns'])} | {100 * k['self_share']:.1f} % |")
        w.append("")
    w.append("## Artifacts")
    w.append("")
    for name, what in (("bench.json", "untraced stats-mode run (the gated figures)"),
                       ("bench.txt", "its console output, the comparison table included"),
                       ("compare.json", "per key: baseline, this run, ratio, band, runs, verdict"),
                       ("validation.json", "the original's 10 checks"),
                       ("machine.json", "the machine block"),
                       ("trace.json", "mmsb-trace record -P ci: everything"),
                       ("trace.folded", "folded stacks, ns of self time (flamegraph.pl, inferno)"),
                       ("trace.speedscope.json", "open in speedscope"),
                       ("trace.txt", "the traced bench's output and the attribution table"),
                       ("commands.sh", "the exact commands, in order")):
        if os.path.exists(os.path.join(out, name)):
            w.append(f"- `{name}`: {what}")
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(w) + "\n")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "pick-baseline":
        pick_baseline(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "summary":
        summary(sys.argv[2])
    else:
        sys.exit(__doc__.strip().splitlines()[2] + "\n" + __doc__.strip().splitlines()[3])


if __name__ == "__main__":
    main()
