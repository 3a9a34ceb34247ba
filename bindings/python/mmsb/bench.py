# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The delta, propagation and batch keys of mmsb-bench, driven from Python through the binding.

    python3 -m mmsb.bench [--quick] [--seconds S] [--dir DIR] [--keys K1,K2]    JSON on stdout

Each key builds the same state as its C twin in tools/bench/keys.c (the same page sizes, chains,
log with durability none, alternating buffers so every timed update changes bytes) and times the
binding's public methods, which is what a Python host pays. `mmsb-bench --host python` runs this
and puts the figures beside the C ones: the difference per library call is the crossing cost.
"""
import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time

import mmsb

SMALL = 1024


def _logged(d, name):
    return mmsb.State(log_path=os.path.join(d, name), log_mode=mmsb.LOG_TRUNCATE,
                      durability=mmsb.DURABLE_NONE)


def _two_buffers(rng, size, sparse):
    if sparse:  # bytes 1-10 flip 0xFF / 0x00, as delta/cpu_sparse
        a = bytearray(size)
        a[1:11] = b"\xff" * 10
        return [bytes(a), bytes(size)]
    return [bytes(rng.getrandbits(8) for _ in range(size)) for _ in range(2)]


class Key:
    """setup() -> run(i) callable timed per evaluation; calls = library calls per evaluation."""
    calls = 1
    writes = 1

    def __init__(self, d, rng):
        self.d, self.rng = d, rng

    def close(self):
        self.s.close()


class DeltaSparse(Key):
    name = "delta/cpu_sparse"

    def setup(self, sparse=True):
        self.s = _logged(self.d, "delta.tlog")
        self.page = self.s.page_create(SMALL)
        bufs, upd, page = _two_buffers(self.rng, SMALL, sparse), self.s.update, self.page
        return lambda i: upd(page, bufs[i & 1])


class DeltaDense(DeltaSparse):
    name = "delta/cpu_dense"

    def setup(self):
        return super().setup(sparse=False)


class Chain(Key):
    pages = 2
    name = "propagation/single_hop"

    def setup(self):
        self.s = _logged(self.d, "prop.tlog")
        self.ids = []
        for i in range(self.pages):
            self.ids.append(self.s.page_create(SMALL))
            if i:
                self.s.edge_add(self.ids[i - 1], self.ids[i])
                self.s.set_passthrough(self.ids[i], self.ids[i - 1])
        bufs, upd, head = _two_buffers(self.rng, SMALL, False), self.s.update, self.ids[0]
        return lambda i: upd(head, bufs[i & 1])


class Chain10(Chain):
    pages = 10
    name = "propagation/chain_10"


class Batch32x4(Chain):
    pages, k = 32, 4
    name = "propagation/batch_32x4"
    writes = 4

    def setup(self):
        super().setup()
        full = b"\x01" * SMALL
        self.sets = [[mmsb.Delta(self.ids[0], full,
                                 bytes(self.rng.getrandbits(8) for _ in range(SMALL)))
                      for _ in range(self.k)] for _ in range(2)]
        rb, sets = self.s.route_batch, self.sets
        return lambda i: rb(sets[i & 1])

    def close(self):
        for s in self.sets:
            for d in s:
                d.close()
        super().close()


class Update64(Key):
    """64 pages written one call each: what a host without a batch entry point pays."""
    name = "delta/update_x64"
    calls = writes = 64

    def setup(self):
        self.s = _logged(self.d, "batch.tlog")
        self.ids = [self.s.page_create(SMALL) for _ in range(64)]
        bufs = _two_buffers(self.rng, SMALL, True)
        upd, ids = self.s.update, self.ids

        def run(i):
            b = bufs[i & 1]
            for p in ids:
                upd(p, b)
        return run


class UpdateBatch64(Update64):
    """The same 64 writes in one mmsb_page_update_batch() call: one crossing, one wave."""
    name = "delta/update_batch_x64"
    calls = 1

    def setup(self):
        super().setup()
        bufs = _two_buffers(self.rng, SMALL, True)
        batches = [[(p, b) for p in self.ids] for b in bufs]
        ub = self.s.update_batch
        return lambda i: ub(batches[i & 1])


KEYS = [DeltaSparse, DeltaDense, Chain, Chain10, Batch32x4, Update64, UpdateBatch64]


def measure(run, quick, seconds=None):
    """Median ns per evaluation over groups of evaluations long enough for the clock."""
    min_samples, min_ns, max_ns = (20, 20e6, 200e6) if quick else (200, 300e6, 2e9)
    if seconds:  # a longer run, for a sampler watching it (docs/ffi.md)
        min_ns = max_ns = seconds * 1e9
    for i in range(50):  # warm up
        run(i)
    group, i = 1, 0
    while True:  # a group of at least 20 us
        t = time.perf_counter_ns()
        for _ in range(group):
            run(i)
            i += 1
        if time.perf_counter_ns() - t >= 20000 or group >= 1 << 16:
            break
        group *= 2
    samples, start = [], time.perf_counter_ns()
    while True:
        t = time.perf_counter_ns()
        for _ in range(group):
            run(i)
            i += 1
        samples.append((time.perf_counter_ns() - t) / group)
        spent = time.perf_counter_ns() - start
        if (len(samples) >= min_samples and spent >= min_ns) or spent >= max_ns:
            break
    samples.sort()
    return samples[len(samples) // 2], len(samples) * group


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m mmsb.bench", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="few samples (a smoke run)")
    ap.add_argument("--seconds", type=float, help="time each key this long (default 0.3 to 2)")
    ap.add_argument("--dir", help="scratch directory for the logs (default: a new one)")
    ap.add_argument("--keys", help="only these keys (comma-separated)")
    ap.add_argument("--list", action="store_true", help="list the keys and exit")
    a = ap.parse_args(argv)
    if a.list:
        for k in KEYS:
            print(k.name)
        return 0
    want = set(a.keys.split(",")) if a.keys else None
    if want and want - {k.name for k in KEYS}:
        print(f"mmsb.bench: unknown key(s): {', '.join(sorted(want - {k.name for k in KEYS}))}",
              file=sys.stderr)
        return 2
    tmp = None
    if not a.dir:
        tmp = tempfile.TemporaryDirectory(prefix="mmsb-bench-py.")
        a.dir = tmp.name
    out = {"host": "python", "python": platform.python_version(),
           "implementation": platform.python_implementation(), "libmmsb": mmsb.version(),
           "keys": {}}
    rng = random.Random(0x9E3779B97F4A7C15)
    for cls in KEYS:
        if want and cls.name not in want:
            continue
        k = cls(a.dir, rng)
        try:
            run = k.setup()
            median, evals = measure(run, a.quick, a.seconds)
        except mmsb.Error as e:
            print(f"mmsb.bench: {cls.name}: {e}", file=sys.stderr)
            return 1
        finally:
            k.close()
        out["keys"][cls.name] = {"median_ns": median, "evaluations": evals,
                                 "calls_per_eval": cls.calls, "writes_per_eval": cls.writes}
    json.dump(out, sys.stdout, indent=2)
    print()
    if tmp:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
