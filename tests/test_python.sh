#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# The Python binding (bindings/python) against this build's libmmsb: every bound operation and
# errors crossing the boundary (bindings/python/tests/test_mmsb.py prints the TAP).
set -u
O=${O:-.output}
if [ -n "${SAN:-}" ]; then
	echo "TAP version 13"
	echo "1..1"
	echo "ok 1 python binding # SKIP a sanitizer build's library cannot load into an uninstrumented python3"
	exit 0
fi
if ! command -v python3 >/dev/null; then
	echo "TAP version 13"
	echo "1..1"
	echo "ok 1 python binding # SKIP python3 is not installed"
	exit 0
fi
MMSB_LIB="$(realpath "$O/libmmsb.so.0")" exec python3 bindings/python/tests/test_mmsb.py 2>&1
