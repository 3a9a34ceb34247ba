# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# What ci/perf-capture.sh records around mmsb-bench: every kind, aggregated (no event stream:
# the bench makes millions of spans), all files for the artifact folder. The gated figures come
# from an untraced run; this one says where the time goes.
description = the CI capture: every kind aggregated, files for the artifact folder
kinds = all
stacks = outer
mode = histogram
outputs = table, json, folded, speedscope
duration = 0
