#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Print the Markdown table of docs/benchmarks.md: key, the original's figure, ours, ratio.

Usage: ci/bench-table.py ci/baselines/original-mmsb.json ci/baselines/c-2cpu-amd-epyc.json
"""
import json
import sys


def fmt_ns(ns):
    if ns < 1e3:
        return f"{ns:.1f} ns"
    if ns < 1e6:
        return f"{ns / 1e3:.2f} us"
    if ns < 1e9:
        return f"{ns / 1e6:.2f} ms"
    return f"{ns / 1e9:.2f} s"


def main():
    base = json.load(open(sys.argv[1]))["benchmarks"]
    ours = json.load(open(sys.argv[2]))["benchmarks"]
    print("| key | original | mmsb | ratio (original / mmsb) |")
    print("|---|---:|---:|---:|")
    for cat, keys in ours.items():
        for name, r in keys.items():
            b = base.get(cat, {}).get(name, {})
            if "skipped" in r:
                print(f"| {cat}/{name} | {fmt_ns(b['median_ns']) if 'median_ns' in b else '-'} | skipped: {r['skipped']} | |")
                continue
            if "median_ns" in r:
                mine = r.get("median_ns_exact", r["median_ns"])
                if "median_ns" in b:
                    print(f"| {cat}/{name} | {fmt_ns(b['median_ns'])} | {fmt_ns(mine)} | {b['median_ns'] / mine:.1f}x |")
                else:
                    print(f"| {cat}/{name} | (new) | {fmt_ns(mine)} | |")
            if "throughput_per_sec" in r:
                o = b.get("throughput_per_sec")
                ratio = f"{r['throughput_per_sec'] / o:.1f}x" if o else ""
                print(f"| {cat}/{name} rate | {o / 1e6:.1f} M/s |" if o else f"| {cat}/{name} rate | (new) |",
                      f"{r['throughput_per_sec'] / 1e6:.1f} M/s | {ratio} |")
            elif "median_ns" not in r:
                vals = ", ".join(f"{k} {v:.6g}" for k, v in r.items() if isinstance(v, (int, float)))
                bv = ", ".join(f"{k} {v:.6g}" for k, v in b.items() if isinstance(v, (int, float)))
                print(f"| {cat}/{name} | {bv or '(new)'} | {vals} | |")


if __name__ == "__main__":
    main()
