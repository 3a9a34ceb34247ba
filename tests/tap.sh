# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# shellcheck shell=bash
# What every tests/test_*.sh shares: source it, print "1..N", then report with ok/bad/skip.
# $tmp is a scratch directory; the processes a test starts in the background go into pids. At
# exit each of them is sent $kill_sig (TERM unless the script says otherwise) and reaped, then
# $tmp is removed (a script that sets its own EXIT trap does that itself). The script ends with
# `exit $fail`.
tmp=$(mktemp -d)
pids=()
kill_sig=TERM
tap_exit() {
	local p

	for p in ${pids[@]+"${pids[@]}"}; do
		kill -"$kill_sig" "$p" 2>/dev/null
	done
	for p in ${pids[@]+"${pids[@]}"}; do
		wait "$p" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap tap_exit EXIT
n=0 fail=0
ok() { n=$((n + 1)); echo "ok $n $1"; }
bad() { n=$((n + 1)); fail=1; echo "not ok $n $1"; }
skip() { n=$((n + 1)); echo "ok $n $1 # SKIP $2"; }
# skip_all WHY NAME...: each named test skipped for WHY, and the script ends there.
skip_all() {
	local why=$1 t

	shift
	for t in "$@"; do
		skip "$t" "$why"
	done
	exit $fail
}
# no_attach: why this run cannot attach BPF programs (the sanitizer builds do not; it takes root
# and a kernel with BTF), or nothing when it can.
no_attach() {
	if [ -n "${SAN:-}" ]; then
		echo "attach tests run in the plain build, not under sanitizers"
	elif [ "$(id -u)" -ne 0 ] || [ ! -r /sys/kernel/btf/vmlinux ]; then
		echo "needs root (CAP_BPF, CAP_PERFMON) and a kernel with BTF"
	fi
}
# wait_grep PATTERN FILE: until FILE holds PATTERN, every 0.1 s: at once when it does, at most
# 30 s on a loaded machine; false if it never does (or FILE never exists).
wait_grep() {
	for _ in $(seq 300); do
		grep -qs "$1" "$2" && return 0
		sleep 0.1
	done
	return 1
}
# wait_mapped PID: until the process has libmmsb mapped (at its start, or a host's import of the
# binding).
wait_mapped() { wait_grep libmmsb "/proc/$1/maps"; }
# wait_recording FILE: until mmsb-trace's start line ("... recording the spans ...") is in FILE,
# its stderr: the probes are in and the window is open.
wait_recording() { wait_grep recording "$1"; }
