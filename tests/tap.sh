# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# shellcheck shell=bash
# What every tests/test_*.sh shares: source it, print "1..N", then report with ok/bad/skip.
# $tmp is a scratch directory removed at exit (a script that sets its own EXIT trap removes it
# there); the script ends with `exit $fail`.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0 fail=0
ok() { n=$((n + 1)); echo "ok $n $1"; }
bad() { n=$((n + 1)); fail=1; echo "not ok $n $1"; }
skip() { n=$((n + 1)); echo "ok $n $1 # SKIP $2"; }
# wait_mapped PID: until the process has libmmsb mapped (at its start, or a host's import of the
# binding): at once when it has, at most 30 s on a loaded machine; false if it never does.
wait_mapped() {
	for _ in $(seq 300); do
		grep -q libmmsb "/proc/$1/maps" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
# wait_recording FILE: until mmsb-trace's start line ("... recording the spans ...") is in FILE,
# its stderr: the probes are in and the window is open. At most 30 s; false if it never is.
wait_recording() {
	for _ in $(seq 300); do
		grep -q recording "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
