# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A Python host for tests/test_ffi.sh: N page updates through the binding (N crossings into
libmmsb), and M ctypes calls into libc (crossings that are not libmmsb's).

usage: ffi_workload.py N M     prints "crossings X other Y ns_per_update Z"
"""
import ctypes
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "bindings", "python"))
import mmsb  # noqa: E402

n, m = int(sys.argv[1]), int(sys.argv[2])
libc = ctypes.CDLL(None)
s = mmsb.State()
a = s.page_create(1024)
bufs = [bytes(1024), bytes([1]) * 1024]
t = time.perf_counter_ns()
for i in range(n):
    s.update(a, bufs[i & 1])
per = (time.perf_counter_ns() - t) / n
for _ in range(m):
    libc.getpid()
s.close()
# state_open, page_create, n updates, state_close: the crossings into libmmsb
print(f"crossings {n + 3} other {m} ns_per_update {per:.0f}")
