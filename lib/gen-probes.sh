#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Generate the probe header from lib/probes.d, the manifest:
#   gen-probes.sh 1 lib/probes.d OUT.h DTRACE.h   probes on: OUT.h includes DTRACE.h (dtrace -h)
#   gen-probes.sh 0 lib/probes.d OUT.h            probes compiled out: empty macros, no notes
# Both define MMSB_FN_<function> (the API ids) and make each NAME__end / api__exit probe share the
# semaphore of its NAME__begin / api__entry, so a tracer enables a span's two ends together.
set -eu
mode=$1 manifest=$2 out=$3 dtrace_h=${4:-}
probes=$(sed -n 's/^[[:space:]]*probe[[:space:]]\{1,\}\([a-z0-9_]*\)(.*/\1/p' "$manifest")
tmp="$out.tmp"
{
	echo "/* Generated from $manifest by lib/gen-probes.sh: do not edit. */"
	echo "#ifndef __MMSB_PROBES_GEN_H"
	echo "#define __MMSB_PROBES_GEN_H"
	echo "#define MMSB_PROBES $mode"
	sed -n 's/^ \* api *\([0-9]\{1,\}\) \(mmsb_[a-z0-9_]*\)$/#define MMSB_FN_\2 \1/p' "$manifest"
	for p in $probes; do
		upper=$(echo "$p" | sed 's/__/_/g' | tr 'a-z' 'A-Z')
		if [ "$mode" = 1 ]; then
			case "$p" in
			*__end) echo "#define mmsb_${p}_semaphore mmsb_${p%__end}__begin_semaphore" ;;
			api__exit) echo "#define mmsb_api__exit_semaphore mmsb_api__entry_semaphore" ;;
			esac
		else
			echo "#define MMSB_${upper}(...) do { } while (0)"
			echo "#define MMSB_${upper}_ENABLED() 0"
		fi
	done
	if [ "$mode" = 1 ]; then
		echo "#include \"$(basename "$dtrace_h")\""
	fi
	echo "#endif"
} >"$tmp"
mv "$tmp" "$out"
