#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Generate the probe header from lib/probes.d, the manifest, and lib/api-ids.list:
#   gen-probes.sh 1 lib/probes.d lib/api-ids.list OUT.h DTRACE.h   probes on: OUT.h includes
#                                                                   DTRACE.h (dtrace -h)
#   gen-probes.sh 0 lib/probes.d lib/api-ids.list OUT.h            probes compiled out: empty
#                                                                   macros, no notes
# Both define MMSB_FN_<function> (the API ids), MMSB_PROBE_NAMES (every probe's name, in the
# manifest's order, for the tests and helpers that attach to each) and make each NAME__end /
# api__exit probe share the semaphore of its NAME__begin / api__entry, so a tracer enables a
# span's two ends together.
set -eu
mode=$1 manifest=$2 api_list=$3 out=$4 dtrace_h=${5:-}
probes=$(sed -n 's/^[[:space:]]*probe[[:space:]]\{1,\}\([a-z0-9_]*\)(.*/\1/p' "$manifest")
# every line of the id list is a comment, blank, or "ID mmsb_function": nothing is dropped silently
bad=$(grep -n -v -E '^(#.*|[[:space:]]*|[0-9]+ mmsb_[a-z0-9_]+)$' "$api_list" || true)
if [ -n "$bad" ]; then
	echo "$api_list: not \"ID mmsb_function\": $bad" >&2
	exit 1
fi
tmp="$out.tmp"
{
	echo "/* Generated from $manifest and $api_list by lib/gen-probes.sh: do not edit. */"
	echo "#ifndef __MMSB_PROBES_GEN_H"
	echo "#define __MMSB_PROBES_GEN_H"
	echo "#define MMSB_PROBES $mode"
	sed -n 's/^\([0-9]\{1,\}\) \(mmsb_[a-z0-9_]*\)$/#define MMSB_FN_\2 \1/p' "$api_list"
	printf '#define MMSB_PROBE_NAMES'
	sep=' '
	for p in $probes; do
		printf '%s"%s"' "$sep" "$p"
		sep=', '
	done
	echo
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
