# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Everything, as record does without a profile, with every file written.
description = every span kind, outermost stacks, the table and all files
kinds = all
stacks = outer
mode = histogram
outputs = table, json, folded, speedscope
