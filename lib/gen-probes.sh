#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Generate the probe header from lib/probes.d, the manifest, lib/api-ids.list and the span kinds
# of bpf/mmsb_spans.h:
#   gen-probes.sh 1 lib/probes.d lib/api-ids.list bpf/mmsb_spans.h OUT.h DTRACE.h
#       probes on: OUT.h includes DTRACE.h (dtrace -h)
#   gen-probes.sh 0 lib/probes.d lib/api-ids.list bpf/mmsb_spans.h OUT.h
#       probes compiled out: empty macros, no notes
#   gen-probes.sh twins lib/probes.d lib/api-ids.list lib/include/mmsb/mmsb.h OUT.c
#       each public function's traced twin (MMSB_API_GATE, lib/probes.h), from its prototype
#   gen-probes.sh sema lib/probes.d OUT.S
#       the semaphores (what `dtrace -G` would make), api__entry's, host__register's and
#       span__register's first, in one aligned 64-bit word: MMSB_API_DEFINEx (lib/probes.h)
#       tests all three with one load
# Both define MMSB_FN_<function> (the API ids), MMSB_PROBE_NAMES (every probe's name, in the
# manifest's order, for the tests and helpers that attach to each) and make each NAME__end /
# api__exit probe share the semaphore of its NAME__begin / api__entry, so a tracer enables a
# span's two ends together. With probes on, MMSB__SPAN_<PROBE>(args) is the in-process span of
# each probe (lib/probes.h): a begin or an end of the kind whose pair it is, nothing for a probe
# of no pair. The kinds are numbered by the C preprocessor from the X-macro itself ($CC -E).
set -eu
mode=$1 manifest=$2
probes=$(sed -n 's/^[[:space:]]*probe[[:space:]]\{1,\}\([a-z0-9_]*\)(.*/\1/p' "$manifest")
if [ "$mode" = sema ]; then
	out=$3
	gate="api__entry host__register span__register"
	for p in $gate; do
		echo "$probes" | grep -qx "$p" || { echo "$manifest: no probe $p" >&2; exit 1; }
	done
	# an end shares its begin's semaphore (below): the rest each have one
	rest=$(echo "$probes" | grep -v -x -e api__exit -e '.*__end' $(printf -- ' -e %s' $gate))
	sema() {
		printf '\t.globl mmsb_%s_semaphore\n\t.hidden mmsb_%s_semaphore\n' "$1" "$1"
		printf '\t.type mmsb_%s_semaphore, STT_OBJECT\n\t.size mmsb_%s_semaphore, 2\n' "$1" "$1"
		printf 'mmsb_%s_semaphore:\n\t.2byte 0\n' "$1"
	}
	{
		echo "/* Generated from $manifest by lib/gen-probes.sh: do not edit. */"
		printf '\t.section .probes, "aw"\n\t.balign 8\n'
		printf '\t.globl mmsb__api_gate\n\t.hidden mmsb__api_gate\n'
		printf '\t.type mmsb__api_gate, STT_OBJECT\n\t.size mmsb__api_gate, 8\n'
		echo "mmsb__api_gate:"
		for p in $gate; do
			sema "$p"
		done
		printf '\t.2byte 0\n'
		for p in $rest; do
			sema "$p"
		done
		printf '\t.section .note.GNU-stack, "", %%progbits\n'
	} >"$out.tmp"
	mv "$out.tmp" "$out"
	exit 0
fi
if [ "$mode" = twins ]; then
	api_list=$3 header=$4 out=$5
	# "MMSB_API ret name(type a, type b);" on one line or several, one line each: "ret name|params"
	protos=$(awk '/^MMSB_API / { p = "" } p != "-" { p = p " " $0 }
		p != "-" && /\);/ { sub(/\);.*/, "", p); sub(/^ *MMSB_API +/, "", p); gsub(/[ \t]+/, " ", p)
			sub(/\(/, "|", p); print p; p = "-" }' p=- "$header")
	{
		echo "/* Generated from $header and $api_list by lib/gen-probes.sh: do not edit. */"
		echo '#include "mmsb_internal.h"'
		echo '#include "probes.h"'
		sed -n 's/^[0-9]\{1,\} \(mmsb_[a-z0-9_]*\)$/\1/p' "$api_list" | while read -r fn; do
			line=$(echo "$protos" | grep -E "[ *]$fn\|" || true)
			if [ -z "$line" ]; then
				echo "$header: no prototype of $fn" >&2
				exit 1
			fi
			decl=${line%%|*} params=${line#*|}
			# the arguments: each parameter's last word
			args=$(echo "$params" | tr ',' '\n' | sed 's/.*[^a-z0-9_]\([a-z0-9_]*\) *$/\1/;/^void$/d' |
				paste -s -d, - | sed 's/,/, /g')
			printf '\nMMSB_HIDDEN __attribute__((cold)) %s__traced(%s)\n{\n\tMMSB_API_TWIN(%s);\n\n\treturn %s(%s);\n}\n' \
				"$decl" "$params" "$fn" "$fn" "$args"
		done
	} >"$out.tmp"
	mv "$out.tmp" "$out"
	exit 0
fi
api_list=$3 spans_h=$4 out=$5 dtrace_h=${6:-}
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
		# "ID begin end" per kind, in the X-macro's order: the kind's number is its line's
		kinds=$(printf '#include "%s"\n#define X(id, n, b, e, c) id b e\nMMSB_SPANS(X)\n' \
			"$(realpath "$spans_h")" | ${CC:-cc} -E -P -x c - | tr -d '"' | xargs -n 3)
		echo "#define MMSB_SPAN_KINDS $(echo "$kinds" | wc -l)"
		echo "$kinds" | awk '{ printf "#define MMSB_SPAN_KIND_%s %d\n", $1, NR - 1 }'
		for p in $probes; do
			upper=$(echo "$p" | sed 's/__/_/g' | tr 'a-z' 'A-Z')
			k=$(echo "$kinds" | awk -v p="$p" '$2 == p || $3 == p { print NR - 1; exit }')
			# MMSB__SPAN_ON_<PROBE>(): whether the span may have work, checked with the
			# probe's own semaphore in one branch
			if [ -z "$k" ]; then
				echo "#define MMSB__SPAN_${upper}(...) do { } while (0)"
				echo "#define MMSB__SPAN_ON_${upper}() 0"
			elif echo "$kinds" | awk -v p="$p" '$2 == p { f = 1 } END { exit !f }'; then
				echo "#define MMSB__SPAN_${upper}(...) mmsb__span_begin($k, MMSB__SPAN_KEY(__VA_ARGS__, 0))"
				echo "#define MMSB__SPAN_ON_${upper}() MMSB_SPAN_REGISTER_ENABLED()"
			else
				echo "#define MMSB__SPAN_${upper}(...) mmsb__span_end($k)"
				echo "#define MMSB__SPAN_ON_${upper}() mmsb__spans_used"
			fi
		done
		echo "#include \"$(basename "$dtrace_h")\""
	fi
	echo "#endif"
} >"$tmp"
mv "$tmp" "$out"
