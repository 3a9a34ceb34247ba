# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# The API boundary alone: every crossing into libmmsb, streamed, so the timeline shows how the
# host batches its calls (docs/tracing.md, "ffi").
description = every public API crossing, as a timeline per thread
kinds = api
stacks = outer
mode = events
outputs = table, json, folded, speedscope
