# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Where a change goes: routing, the wave, recomputes and the applies they cause. A stack at every
# begin, so a recompute is charged to the callback's own call path, not the update's.
description = routing, waves, recomputes and applies, with a stack at every span
kinds = update, route_batch, engine_batch, tick, propagate, recompute, delta_apply
stacks = all
mode = histogram
outputs = table, json, folded, speedscope
