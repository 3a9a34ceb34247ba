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
#       the semaphores (what `dtrace -G` would make), laid out so that one load tests several
#       (lib/probes.h): api__entry's, host__register's and span__register's in the 64-bit word
#       of the public functions' gate; span__register's, the one every other probe shares and
#       the library's own mmsb__spans_used in the word of the sites inside the library
# The headers (modes 1 and 0) both define MMSB_FN_<function> (the API ids), MMSB_PROBE_NAMES
# (every probe's name, in the manifest's order, for the tests and helpers that attach to each)
# and MMSB_SPAN_KIND_<ID> (the span kinds, numbered by the C preprocessor from the X-macro
# itself, $CC -E). With probes on, the header makes api__exit share api__entry's semaphore and
# every begin and end probe of the library's spans share one, so a tracer enables a span's two
# ends together (and any probe opens every site: docs/probes.md), and MMSB__SPAN_<PROBE>(args)
# is the in-process span of each probe (lib/probes.h): a begin or an end of the kind whose pair
# it is, nothing for a probe of no pair.
set -eu
mode=$1 manifest=$2
probes=$(sed -n 's/^[[:space:]]*probe[[:space:]]\{1,\}\([a-z0-9_]*\)(.*/\1/p' "$manifest")
if [ "$mode" = sema ]; then
	out=$3
	for p in api__entry api__exit host__register span__register; do
		echo "$probes" | grep -qx "$p" || { echo "$manifest: no probe $p" >&2; exit 1; }
	done
	sym() { # name size: a hidden object here
		printf '\t.globl %s\n\t.hidden %s\n\t.type %s, STT_OBJECT\n\t.size %s, %s\n%s:\n' \
			"$1" "$1" "$1" "$1" "$2" "$1"
	}
	{
		echo "/* Generated from $manifest by lib/gen-probes.sh: do not edit. */"
		printf '\t.section .probes, "aw"\n\t.balign 16\n'
		sym mmsb__api_gate 8
		sym mmsb_api__entry_semaphore 2
		printf '\t.2byte 0\n'
		sym mmsb_host__register_semaphore 2
		printf '\t.2byte 0\n'
		sym mmsb__site_gate 8
		sym mmsb_span__register_semaphore 2
		printf '\t.2byte 0\n\t.2byte 0\n'
		sym mmsb__probe_semaphore 2
		printf '\t.2byte 0\n'
		sym mmsb__spans_used 2
		printf '\t.2byte 0\n\t.2byte 0\n'
		printf '\t.section .note.GNU-stack, "", %%progbits\n'
	} >"$out.tmp"
	mv "$out.tmp" "$out"
	exit 0
fi
if [ "$mode" = twins ]; then
	api_list=$3 header=$4 out=$5
	# a parameter the twin can pass on: "[const] type words [*...] [const] [*...]name"
	param_re='^ *(const )?[a-z_][a-z0-9_]*( [a-z_][a-z0-9_]*)*[ *]+(const )?[*]*[a-z_][a-z0-9_]* *$'
	# "MMSB_API ret name(type a, type b);" on one line or several, one line each: "ret name|params"
	protos=$(awk '/^MMSB_API / { p = "" } p != "-" { p = p " " $0 }
		p != "-" && /\);/ { sub(/\);.*/, "", p); sub(/^ *MMSB_API +/, "", p); gsub(/[ \t]+/, " ", p)
			sub(/\(/, "|", p); print p; p = "-" }' p=- "$header")
	# read before the loop, which is no pipeline's: a failure anywhere stops the script
	fns=$(sed -n 's/^[0-9]\{1,\} \(mmsb_[a-z0-9_]*\)$/\1/p' "$api_list")
	trap 'rm -f "$out.tmp"' EXIT
	{
		echo "/* Generated from $header and $api_list by lib/gen-probes.sh: do not edit. */"
		echo '#include "mmsb_internal.h"'
		echo '#include "probes.h"'
		for fn in $fns; do
			line=$(echo "$protos" | grep -E "[ *]$fn\|" || true)
			if [ -z "$line" ]; then
				echo "$header: no prototype of $fn" >&2
				exit 1
			fi
			decl=${line%%|*} params=${line#*|}
			# the arguments: each parameter's last word, which must be its name (not a
			# function pointer's or an array's, nor "int" of a nameless "unsigned int")
			args=$(echo "$params" | tr ',' '\n' | sed 's/.*[^a-z0-9_]\([a-z0-9_]*\) *$/\1/;/^void$/d' |
				paste -s -d, - | sed 's/,/, /g')
			if { [ "$params" != void ] && echo "$params" | tr ',' '\n' | grep -qvE "$param_re"; } ||
				echo "$args" | tr -d ' ' | tr ',' '\n' |
				grep -qxE 'char|short|int|long|signed|unsigned|float|double|const|void'; then
				echo "$header: $fn($params): a parameter is not \"type name\", its traced" \
					"twin cannot be made (lib/gen-probes.sh)" >&2
				exit 1
			fi
			# declared from the function's own type: the compiler checks the definition
			printf '\nextern __typeof__(%s) %s__traced MMSB_HIDDEN;\n' "$fn" "$fn"
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
			api__entry | host__register | span__register) ;;
			api__exit) echo "#define mmsb_api__exit_semaphore mmsb_api__entry_semaphore" ;;
			*) echo "#define mmsb_${p}_semaphore mmsb__probe_semaphore" ;;
			esac
		else
			echo "#define MMSB_${upper}(...) do { } while (0)"
			echo "#define MMSB_${upper}_ENABLED() 0"
		fi
	done
	# "ID begin end" per kind, in the X-macro's order: the kind's number is its line's
	kinds=$(printf '#include "%s"\n#define X(id, n, b, e, c) id b e\nMMSB_SPANS(X)\n' \
		"$(realpath "$spans_h")" | ${CC:-cc} -E -P -x c - | tr -d '"' | xargs -n 3)
	echo "#define MMSB_SPAN_KINDS $(echo "$kinds" | wc -l)"
	echo "$kinds" | awk '{ printf "#define MMSB_SPAN_KIND_%s %d\n", $1, NR - 1 }'
	if [ "$mode" = 1 ]; then
		for p in $probes; do
			upper=$(echo "$p" | sed 's/__/_/g' | tr 'a-z' 'A-Z')
			k=$(echo "$kinds" | awk -v p="$p" '$2 == p || $3 == p { print NR - 1; exit }')
			if [ -z "$k" ]; then
				echo "#define MMSB__SPAN_${upper}(...) do { } while (0)"
			elif echo "$kinds" | awk -v p="$p" '$2 == p { f = 1 } END { exit !f }'; then
				echo "#define MMSB__SPAN_${upper}(...) mmsb__span_begin($k, MMSB__SPAN_KEY(__VA_ARGS__, 0))"
			else
				echo "#define MMSB__SPAN_${upper}(...) mmsb__span_end($k)"
			fi
		done
		echo "#include \"$(basename "$dtrace_h")\""
	fi
	echo "#endif"
} >"$tmp"
mv "$tmp" "$out"
