#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Helpers of ci/perf-capture.sh and ci/perf-gate.sh (standard library only).

  perf-report.py pick-baseline MACHINE_JSON DIR   the baseline in DIR measured on this machine
  perf-report.py summary OUTDIR                   OUTDIR/summary.md from the capture's files
  perf-report.py gate OUTDIR BASE T_INSN T_PAIRED the gate's verdict from ci/perf-gate.sh's runs

A baseline matches when its machine block has the same CPU model, core count and architecture:
ratios against figures from other hardware say nothing about a change (docs/ci.md).
"""
import glob
import json
import os
import statistics
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
    gate_ = load(os.path.join(out, "gate.json"))
    if gate_ is None:
        w.append(f"- regression gate: not judged: {status.get('gate_note', 'no gate run')}")
    else:
        reg = [k["key"] for k in gate_["keys"] if k["verdict"] == "REGRESSION"]
        w.append(f"- regression gate ({'on' if status.get('gate') == 'on' else 'off: a report'}): "
                 f"BASE `{gate_['base']}` against this tree, {len(gate_['keys'])} keys, "
                 f"{len(reg)} regressed" + (f" ({', '.join(reg)})" if reg else "")
                 + " (ci/perf-gate.sh: instruction counts and paired runs)")
    if cmp_ is None:
        w.append(f"- stored baseline: none compared ({status.get('baseline_note', 'no comparison')})")
    else:
        w.append(f"- against the stored baseline `{cmp_['baseline']}` (a report of that machine, "
                 f"not judged): {cmp_['faster']} faster, {cmp_['similar']} similar, "
                 f"{cmp_['slower']} slower")
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
    if gate_ is not None:
        text = read_text(os.path.join(out, "gate.md")).splitlines()
        w.extend(["## The regression gate", ""] + text[2:] + [""])
    if cmp_ is not None:
        keys = cmp_["keys"]
        flagged = [k for k in keys if k["verdict"] != "similar"]
        w.append("## Against the stored baseline: keys outside their band" if flagged else
                 "## Against the stored baseline: every key within its band")
        w.append("")
        w.append("| key | baseline | this run | ratio | band | runs | verdict |")
        w.append("|---|---:|---:|---:|---:|---:|---|")
        shown = flagged if flagged else sorted(keys, key=lambda k: -k["ratio"])[:8]
        for k in shown:
            v = k["verdict"]
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
    for name, what in (("bench.json", "untraced stats-mode run (this machine's figures)"),
                       ("gate.md", "the regression gate's table (gate/ has its builds and runs)"),
                       ("gate.json", "per key: how judged, BASE, HEAD, ratio, band, verdict"),
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


# The gate's bands (docs/ci.md). Instruction counts are deterministic (the same count run to run,
# 5 of 5), so 1 % is a real change of 1 %, never noise; no key needs more. Paired timings carry the
# machine's noise: BAND_PAIRED is above the spread measured on paired runs of one build (docs/ci.md).
BAND_INSN = 1.01
BAND_PAIRED = {"default": 1.15, "throughput/multi_8w": 1.25, "throughput/multi_ncpu": 1.25,
               "phase6/throughput": 1.25}


def paired_figures(bench):
    """(name, value, lower_is_better) of every judged figure in one bench JSON."""
    for cat, keys in bench.get("benchmarks", {}).items():
        for name, r in keys.items():
            key = f"{cat}/{name}"
            if "median_ns_exact" in r and "throughput_per_sec" not in r:
                yield key, r["median_ns_exact"], True
            for f, v in r.items():
                if f.startswith("throughput_per_sec"):
                    yield key + ("" if f == "throughput_per_sec" else f":{f[19:]}"), v, False


def runs_made(out):
    return bool(read_text(os.path.join(out, "paired.raw")).strip())


def gate(out, base, t_insn, t_paired):
    rows, failed, cannot = [], [], []
    counts = {}
    for line in read_text(os.path.join(out, "insn.raw")).splitlines():
        f = line.split()
        if f[0] == "new":
            rows.append({"key": f[1], "how": "insn", "verdict": "new in HEAD: not judged"})
            continue
        counts[(f[0], f[1], int(f[2]))] = None if f[3] == "fail" else int(f[3])
    for key in sorted({k for _, k, _ in counts}):
        n = min(e for _, k, e in counts if k == key)
        per = {}
        for side in ("base", "head"):
            one, two = counts.get((side, key, n)), counts.get((side, key, 2 * n))
            per[side] = None if one is None or two is None else (two - one) / n
        row = {"key": key, "how": "insn", "base": per["base"], "head": per["head"], "band": BAND_INSN}
        if per["base"] is None or per["head"] is None or per["base"] <= 0:
            row["verdict"] = "FAILED to count"
            cannot.append(row)
        else:
            row["ratio"] = per["head"] / per["base"]
            row["verdict"] = ("REGRESSION" if row["ratio"] > BAND_INSN else
                              "fewer" if row["ratio"] < 1 / BAND_INSN else "same")
            if row["verdict"] == "REGRESSION":
                failed.append(row)
        rows.append(row)
    # paired: per key and round, BASE's and HEAD's figure from runs made back to back
    pairs = {}
    for line in read_text(os.path.join(out, "paired.raw")).splitlines():
        side, rnd, path = line.split()
        for key, v, low in paired_figures(load(path) or {}):
            pairs.setdefault(key, {}).setdefault(int(rnd), {})[side] = (v, low)
    plan = [l.split() for l in read_text(os.path.join(out, "plan")).splitlines()]
    base_keys = set(read_text(os.path.join(out, "base-keys")).split())
    paired_plan = {k for how, k in plan if how == "paired"} if runs_made(out) else set()
    full = [l.split() for l in read_text(os.path.join(out, "plan.all")).splitlines()] or plan
    for key in sorted(base_keys - {k for _, k in full}):
        # a key BASE judged and HEAD no longer has: renamed or dropped, said rather than skipped
        rows.append({"key": key, "how": "-", "verdict": "gone from HEAD's plan: not judged"})
    for key in sorted(paired_plan - {k.split(":")[0] for k in pairs}):
        row = {"key": key, "how": "paired", "verdict": "FAILED to measure"}
        cannot.append(row)
        rows.append(row)
    for key in sorted(pairs):
        rounds = [r for r in pairs[key].values() if "base" in r and "head" in r]
        if not rounds or min(min(r["base"][0], r["head"][0]) for r in rounds) <= 0:
            # a figure missing or zero on one side: HEAD broke the key, or BASE did
            row = {"key": key, "how": "paired", "verdict": "FAILED to measure"}
            cannot.append(row)
            rows.append(row)
            continue
        low = rounds[0]["head"][1]
        b = [r["base"][0] for r in rounds]
        h = [r["head"][0] for r in rounds]
        # a ratio of slowness: above 1 is worse whichever way the figure reads
        ratio = statistics.median(h) / statistics.median(b)
        per_round = [x / y for x, y in zip(h, b)]
        if not low:
            ratio, per_round = 1 / ratio, [1 / x for x in per_round]
        band = BAND_PAIRED.get(key.split(":")[0], BAND_PAIRED["default"])
        # one noisy pair must not decide: a regression is slower in every round as well (with 5
        # rounds, noise alone does that one time in 32)
        most = all(x > 1 for x in per_round)
        row = {"key": key, "how": "paired", "base": statistics.median(b),
               "head": statistics.median(h), "ratio": ratio, "band": band, "rounds": len(h),
               "spread": [min(per_round), max(per_round)], "unit": "ns" if low else "/s",
               "verdict": "REGRESSION" if ratio > band and most else
                          "faster" if ratio < 1 / band else "same"}
        if row["verdict"] == "REGRESSION":
            failed.append(row)
        rows.append(row)

    def fig(row, side):
        v = row.get(side)
        if v is None:
            return "-"
        if row["how"] == "insn":
            return f"{v:,.1f} insn"
        return fmt_ns(v) if row["unit"] == "ns" else f"{v / 1e6:.2f} M/s"

    verdict = "FAIL" if failed or cannot else "pass"
    w = [f"# Perf gate: {verdict} (BASE {base} against the work tree)", "",
         f"- {sum(r['how'] == 'insn' for r in rows)} keys by instructions per evaluation "
         f"(cachegrind, band {BAND_INSN:.2f}), {t_insn} s",
         f"- {sum(r['how'] == 'paired' for r in rows)} figures by paired timed runs "
         f"(BASE and HEAD back to back per key, ratio of medians, a regression only when every "
         f"round is slower too), {t_paired} s", "",
         "| key | how | BASE | HEAD | ratio | band | spread | verdict |",
         "|---|---|---:|---:|---:|---:|---|---|"]
    for r in rows:
        sp = f"{r['spread'][0]:.2f}-{r['spread'][1]:.2f}" if "spread" in r else ""
        ratio = f"{r['ratio']:.4f}" if "ratio" in r else "-"
        band = f"{r['band']:.2f}" if "band" in r else "-"
        w.append(f"| {r['key']} | {r['how']} | {fig(r, 'base')} | {fig(r, 'head')} | {ratio} | "
                 f"{band} | {sp} | {r['verdict']} |")
    text = "\n".join(w) + "\n"
    with open(os.path.join(out, "gate.md"), "w") as f:
        f.write(text)
    with open(os.path.join(out, "gate.json"), "w") as f:
        json.dump({"base": base, "pass": not failed and not cannot, "keys": rows}, f, indent=1)
    print(text, end="")
    for r in failed:
        print(f"perf-gate: regression {r['key']}: BASE {fig(r, 'base')}, HEAD {fig(r, 'head')}, "
              f"ratio {r['ratio']:.4f} beyond its {r['band']:.2f} band", file=sys.stderr)
    for r in cannot:
        print(f"perf-gate: {r['key']}: {r['verdict']}", file=sys.stderr)
    # a key that ran under BASE and fails to under HEAD is as much a failure as a slow one
    sys.exit(1 if failed or cannot else 0)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "pick-baseline":
        pick_baseline(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "summary":
        summary(sys.argv[2])
    elif len(sys.argv) == 6 and sys.argv[1] == "gate":
        gate(*sys.argv[2:])
    else:
        sys.exit(__doc__.strip().splitlines()[2] + "\n" + __doc__.strip().splitlines()[3])


if __name__ == "__main__":
    main()
