#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# make install into a scratch DESTDIR, then build and run a program the way a user would:
#   cc prog.c $(pkg-config --cflags --libs libmmsb)
set -u
O=${O:-.output}
. "$(dirname "$0")/tap.sh"

echo "TAP version 13"
echo "1..4"
if make --no-print-directory -s install O="$O" DESTDIR="$tmp" PREFIX=/usr/local >"$tmp/log" 2>&1; then
	ok install
else
	sed 's/^/# /' "$tmp/log"; bad install
fi
if [ -f "$tmp/usr/local/include/mmsb/mmsb.h" ] && [ ! -e "$tmp/usr/local/include/mmsb/mmsb_internal.h" ] &&
	[ -f "$tmp/usr/local/lib/pkgconfig/libmmsb.pc" ] && [ -x "$tmp/usr/local/bin/mmsb-tlog" ]; then
	ok "installed the public header only, the .pc and the tools"
else
	bad "installed files"
fi
export PKG_CONFIG_PATH="$tmp/usr/local/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$tmp"
# shellcheck disable=SC2046
# a sanitizer build of the library needs its runtime in the program too
san=${SAN:+-fsanitize=$SAN}
# shellcheck disable=SC2086
if cc $san docs/examples/pipeline.c $(pkg-config --cflags --libs libmmsb) -o "$tmp/pipeline" 2>"$tmp/log"; then
	ok "cc prog.c \$(pkg-config --cflags --libs libmmsb)"
else
	sed 's/^/# /' "$tmp/log"; bad "build with pkg-config"
fi
if LD_LIBRARY_PATH="$tmp/usr/local/lib" "$tmp/pipeline" "$tmp" >"$tmp/log" 2>&1 &&
	grep -q "matches the live state" "$tmp/log"; then
	ok "the installed library runs the pipeline"
else
	sed 's/^/# /' "$tmp/log"; bad "run against the installed library"
fi
exit $fail
