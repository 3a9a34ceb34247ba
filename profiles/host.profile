# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# The host's side of every crossing into libmmsb, sampled, with no probe on the call path: what a
# Python (or any FFI) host pays around its calls, by module and function (docs/ffi.md).
description = the host's side of the FFI boundary, sampled at 1 kHz; no span probe
kinds = none
host_sample = 1000
outputs = table, json, folded, speedscope
