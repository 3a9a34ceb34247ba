#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# timeout: 60
#
# A program that runs LeakSanitizer (built with ASan) while the library was built without it:
# pages the library keeps in memory it maps itself (a slab's chunks, a large page table) are
# reachable only from there, and LeakSanitizer scans malloc'ed memory only. The library registers
# that memory as root regions through weak references to the runtime's hooks (lib/page.c):
#  1. a state of 9,000 pages kept open at exit: no leak reported (without the roots, the 4,903
#     pages in the slab, and what only they point to, were all "leaked")
#  2. the control: a real leak in the same program is reported, so LeakSanitizer does run here
# Stacks and registers are not roots here: the global and the library's regions must suffice.
set -u
O=${O:-.output}
. "$(dirname "$0")/tap.sh"
echo "TAP version 13"
echo "1..2"
names=(kept_state_not_a_leak a_real_leak_reported)
[ -n "${SAN:-}" ] && skip_all "the library is built with $SAN; this checks a plain one" "${names[@]}"
CC=${CC:-cc}
lib=$(realpath "$O")
echo 'int main(void) { return 0; }' >"$tmp/probe.c"
if ! $CC -fsanitize=address "$tmp/probe.c" -o "$tmp/probe" 2>"$tmp/cc.err"; then
	skip_all "no ASan here: $(head -1 "$tmp/cc.err")" "${names[@]}"
fi
cat >"$tmp/kept.c" <<'EOF'
#include <stdlib.h>
#include <string.h>
#include <mmsb/mmsb.h>

/* reachable from here only through the library's own memory */
struct mmsb_state *kept;

int main(int argc, char **argv)
{
	uint64_t id;

	kept = mmsb_state_open(NULL);
	if (!kept)
		return 2;
	for (int i = 0; i < 9000; i++) {
		if (mmsb_page_create(kept, 64, MMSB_LOC_CPU, &id))
			return 3;
		if (id > 1 && mmsb_edge_add(kept, id - 1, id, MMSB_EDGE_DATA))
			return 4;
	}
	if (argc > 1) {
		char *lost = malloc(4096);

		memset(lost, 1, 4096);
		lost = NULL;
	}
	return 0;
}
EOF
if ! $CC -g -O0 -fsanitize=address -Ilib/include "$tmp/kept.c" -o "$tmp/kept" -L"$lib" -lmmsb \
	-Wl,-rpath,"$lib" 2>"$tmp/cc.err"; then
	sed 's/^/# /' "$tmp/cc.err" | head -5
	for t in "${names[@]}"; do
		bad "$t: the test program does not build"
	done
	exit $fail
fi
run() {
	ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=use_stacks=0:use_registers=0 "$tmp/kept" "$@" \
		>"$tmp/out" 2>&1
}
run leak
# LeakSanitizer stops the world with ptrace: a sandbox that forbids it says so, and nothing else may
if grep -q 'LeakSanitizer has encountered a fatal error\|does not work under ptrace' "$tmp/out"; then
	skip_all "LeakSanitizer does not run here: $(grep -m1 'LeakSanitizer' "$tmp/out")" "${names[@]}"
fi
if ! grep -q 'LeakSanitizer: detected memory leaks' "$tmp/out"; then
	grep -m3 . "$tmp/out" | sed 's/^/# /'
	for t in "${names[@]}"; do
		bad "$t: the program with a leak did not run to LeakSanitizer's report"
	done
	exit $fail
fi
run
rc=$?
if [ "$rc" -eq 0 ] && ! grep -q 'LeakSanitizer' "$tmp/out"; then
	ok "${names[0]}: 9,000 pages kept at exit, no leak reported"
else
	grep -m3 'SUMMARY\|LeakSanitizer\|Direct leak' "$tmp/out" | sed 's/^/# /'
	bad "${names[0]}: exit $rc"
fi
run leak
if grep -q 'Direct leak of 4096 byte' "$tmp/out" && ! grep -q 'libmmsb\|in mmsb_' "$tmp/out"; then
	ok "${names[1]}: the program's own 4 KiB, and nothing of the library's"
else
	grep -m5 'SUMMARY\|Direct leak\|Indirect leak\|#[0-9] .*mmsb' "$tmp/out" | sed 's/^/# /'
	bad "${names[1]}"
fi
exit $fail
