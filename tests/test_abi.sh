#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# The shared library exports exactly the functions the public header declares MMSB_API.
set -u
O=${O:-.output}
echo "TAP version 13"
echo "1..1"
want=$(grep -o 'MMSB_API [^(]*(' lib/include/mmsb/mmsb.h | grep -o 'mmsb_[a-z0-9_]*($' | tr -d '(' | sort -u)
have=$(nm -D --defined-only "$O/libmmsb.so" | awk '$2 == "T" { print $3 }' | sed 's/@.*//' | sort -u)
if [ "$want" = "$have" ]; then
	echo "ok 1 exports match the header ($(echo "$want" | wc -l) functions)"
	exit 0
fi
diff <(echo "$want") <(echo "$have") | sed 's/^/# /'
echo "not ok 1 exports differ from the header (< header only, > library only)"
exit 1
