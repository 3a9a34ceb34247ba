# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Who creates and frees states and pages, from where.
description = state and page creation and release, with a stack at every span
kinds = state_open, state_close, page_alloc, page_free
stacks = all
mode = histogram
outputs = table, json, folded
pmu = perf::PAGE-FAULTS
