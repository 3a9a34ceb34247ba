#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# mmsb-trace as root on other people's paths (issue 14: S1, S2, S4, D9). Sudo is emulated: root
# with SUDO_UID/SUDO_GID of an unprivileged user (nobody), which is all the tool looks at.
#  1-5. a symlink planted at the -J, -f, -s, -e path or at a file of -o DIR: refused in one line,
#       exit 1, its target untouched, the command never started
#  6.   under sudo the outputs belong to the invoking user and the command runs as that user
#  7.   under sudo a file the user cannot read is not read: profiles and record -P print nothing
#       of it (/etc/shadow, a root-only file) and fail
#  8.   under sudo -p of another user's (root's) process is refused, --as-root too; the user's
#       own process is traced, and root itself traces root's
#  9.   a quote in CMD's path runs no shell (no INJECTED file)
# 10.   a static CMD runs once, as the invoking user: never as root to find its library
# 11.   an unwritable output fails before the command starts
# 12.   the command's exit status is ours: exit 3 gives 3
# 13.   a command killed by SIGSEGV gives 139 and a line saying so
# 14.   -d 1 returns while the command goes on, untraced and alive
# 15.   a child of the command that uses libmmsb is not traced: the user is told in one line
# 16.   under sudo --as-root is refused in one line (exit 2), the command never runs; root itself
#       may use it
# 17.   under sudo a setuid-root command runs without its privilege (no new privileges): its
#       euid is the invoking user's
# 18.   special files as inputs (profiles, list, record -P, record -l of a FIFO; profiles
#       /dev/zero): one line "not a regular file", exit 1, at once (never a hang)
# 19.   plain root (CI): a directory symlink owned by a user in an output path (-J, -o DIR) is
#       not followed: one line naming it, exit 1, its target untouched; a root-owned one is
set -u
O=${O:-.output}
T="$(realpath "$O/mmsb-trace" 2>/dev/null)"
W="$(realpath "$O/tests/trace_workload" 2>/dev/null)"
. "$(dirname "$0")/tap.sh"
kill_sig=KILL

echo "TAP version 13"
echo "1..19"
names=("symlink at -J" "symlink at -f" "symlink at -s" "symlink at -e" "symlink in -o DIR"
	"sudo: outputs and command as the user" "sudo: unreadable inputs" "sudo: -p of root's process"
	"quote in CMD's path" "CMD never run as root" "unwritable output checked first"
	"exit status" "signal status" "-d leaves the command running" "children told"
	"sudo: --as-root refused" "sudo: a setuid command runs unprivileged"
	"special files as inputs" "plain root: a user's directory symlink")
[ "$(id -u)" -eq 0 ] || skip_all "needs root (CAP_BPF, CAP_PERFMON)" "${names[@]}"
[ -r /sys/kernel/btf/vmlinux ] || skip_all "the kernel has no BTF" "${names[@]}"
command -v bpftool >/dev/null || [ -x /usr/sbin/bpftool ] || skip_all "no bpftool" "${names[@]}"
if [ -z "$T" ] || [ ! -x "$T" ] || [ -z "$W" ]; then
	skip_all "mmsb-trace or the workload is not built" "${names[@]}"
fi
[ -n "${SAN:-}" ] && skip_all "runs in the plain build" "${names[@]}"

U=$(id -u nobody 2>/dev/null || echo 65534)
G=$(id -g nobody 2>/dev/null || echo 65534)
as_sudo() { SUDO_UID=$U SUDO_GID=$G SUDO_USER=nobody "$@"; }
chmod 711 "$tmp"
mkdir "$tmp/u" && chown "$U:$G" "$tmp/u"
ulimit -c 0
# every run attaches only the update pair: a second, not the 20 s of every probe
R=("$T" record -k update)

# 1-5. planted symlinks: each output alone, then a file of a profile's -o DIR
printf 'precious\n' >"$tmp/victim"
cat >"$tmp/json.profile" <<'EOF'
kinds = update
outputs = json
EOF
mkdir "$tmp/od"
i=0
for opt in -J -f -s -e -P; do
	i=$((i + 1))
	rm -f "$tmp/ran" "$tmp/link" "$tmp/od/trace.json"
	if [ "$opt" = -P ]; then
		ln -s "$tmp/victim" "$tmp/od/trace.json"
		args=(-P "$tmp/json.profile" -o "$tmp/od")
		link="$tmp/od/trace.json"
	else
		ln -s "$tmp/victim" "$tmp/link"
		args=("$opt" "$tmp/link")
		link="$tmp/link"
	fi
	"${R[@]}" "${args[@]}" -- sh -c "touch '$tmp/ran'" >"$tmp/o" 2>"$tmp/e"
	rc=$?
	if [ $rc -eq 1 ] && [ "$(cat "$tmp/victim")" = precious ] && [ -L "$link" ] &&
		[ "$(wc -l <"$tmp/e")" -eq 1 ] && [ ! -e "$tmp/ran" ]; then
		ok "${names[i - 1]}: refused ($(cat "$tmp/e")), the target untouched"
	else
		sed 's/^/# /' "$tmp/e" | head -3
		bad "${names[i - 1]}: exit $rc, target now '$(head -c 40 "$tmp/victim")'"
	fi
	printf 'precious\n' >"$tmp/victim"
done

# 6. under sudo: outputs owned by the user, the command run as the user
as_sudo "${R[@]}" -J "$tmp/u/j.json" -f "$tmp/u/f.folded" -- sh -c "id -u >'$tmp/u/id'" \
	>"$tmp/o" 2>"$tmp/e"
rc=$?
own="$(stat -c %u "$tmp/u/j.json" 2>/dev/null) $(stat -c %u "$tmp/u/f.folded" 2>/dev/null)"
if [ $rc -eq 0 ] && [ "$own" = "$U $U" ] && [ "$(cat "$tmp/u/id" 2>/dev/null)" = "$U" ]; then
	ok "sudo: outputs owned by uid $U, the command ran as uid $U"
else
	sed 's/^/# /' "$tmp/e" | head -3
	bad "sudo: exit $rc, outputs owned by '$own', command ran as '$(cat "$tmp/u/id" 2>/dev/null)'"
fi

# 7. under sudo: a file the user cannot read is never read (its content never printed)
printf 'SECRET-LINE-%s\n' $$ >"$tmp/secret.profile"
chmod 600 "$tmp/secret.profile"
as_sudo "$T" profiles /etc/shadow >"$tmp/o1" 2>&1
rc1=$?
as_sudo "$T" profiles "$tmp/secret.profile" >"$tmp/o2" 2>&1
rc2=$?
as_sudo "${R[@]}" -P "$tmp/secret.profile" -- sh -c "touch '$tmp/ran'" >"$tmp/o3" 2>&1
rc3=$?
shadow1=$(head -1 /etc/shadow | cut -d: -f1-2)
if [ $rc1 -eq 1 ] && [ $rc2 -eq 1 ] && [ $rc3 -eq 1 ] && ! grep -qF "$shadow1" "$tmp/o1" &&
	! grep -q SECRET "$tmp/o2" "$tmp/o3" && [ "$(cat "$tmp/o1" "$tmp/o2" "$tmp/o3" | wc -l)" -eq 3 ]; then
	ok "sudo: profiles /etc/shadow, a root-only profile and record -P of it: one line, exit 1, no content"
else
	sed 's/^/# /' "$tmp/o1" "$tmp/o2" "$tmp/o3" | sed 's/:[^:]*:/:...:/' | head -4
	bad "sudo: unreadable inputs: exit $rc1 $rc2 $rc3"
fi

# 8. under sudo: -p of root's process needs --as-root; the user's own process is fine
if ! command -v setpriv >/dev/null; then
	skip "${names[7]}" "setpriv is not installed"
else
	"$W" loop >/dev/null &
	rpid=$!
	pids+=("$rpid")
	setpriv --reuid="$U" --regid="$G" --clear-groups "$W" loop >/dev/null &
	upid=$!
	pids+=("$upid")
	wait_mapped $rpid
	wait_mapped $upid
	as_sudo "${R[@]}" -p "$rpid" -d 1 >"$tmp/o" 2>"$tmp/e"
	rc1=$?
	as_sudo "${R[@]}" --as-root -p "$rpid" -d 1 >/dev/null 2>"$tmp/e2"
	rc2=$?
	"${R[@]}" --as-root -p "$rpid" -d 1 >/dev/null 2>"$tmp/e4"
	rc4=$?
	as_sudo "${R[@]}" -p "$upid" -d 1 >/dev/null 2>"$tmp/e3"
	rc3=$?
	if [ $rc1 -eq 1 ] && [ "$(wc -l <"$tmp/e")" -eq 1 ] && [ $rc2 -eq 2 ] &&
		[ "$(wc -l <"$tmp/e2")" -eq 1 ] && [ $rc3 -eq 0 ] && [ $rc4 -eq 0 ]; then
		ok "sudo: -p of root's process refused ($(cat "$tmp/e")), with --as-root too; the user's own and root's by root: traced"
	else
		sed 's/^/# /' "$tmp/e" "$tmp/e2" "$tmp/e3" "$tmp/e4" | head -4
		bad "sudo: -p: root's $rc1, with --as-root $rc2, the user's own $rc3, root's by root $rc4"
	fi
	kill -9 "$rpid" "$upid" 2>/dev/null
	wait "$rpid" "$upid" 2>/dev/null
fi

# 9. a quote in the command's path: no shell ever sees it
q="$tmp/x';touch INJECTED;'"
cp /bin/true "$q"
(cd "$tmp" && "${R[@]}" -- "$q" >/dev/null 2>"$tmp/e")
rc=$?
if [ ! -e "$tmp/INJECTED" ] && [ $rc -eq 0 ]; then
	ok "a quote in CMD's path runs no shell"
else
	sed 's/^/# /' "$tmp/e" | head -3
	bad "a quote in CMD's path: exit $rc, INJECTED $([ -e "$tmp/INJECTED" ] && echo created)"
fi

# 10. a static command runs once, as the user: never as root to find its library (the dynamic
# linker's trace mode, as ldd uses it, simply runs a static program)
cat >"$tmp/idstatic.c" <<'EOF'
#include <stdio.h>
#include <unistd.h>
int main(void)
{
	FILE *f = fopen(OUT, "a"); /* no argument: the linker's trace mode would give it none */

	return !f || fprintf(f, "%u\n", getuid()) < 0 || fclose(f);
}
EOF
if ! cc -static -DOUT="\"$tmp/u/ran\"" -o "$tmp/u/idstatic" "$tmp/idstatic.c" 2>/dev/null; then
	skip "${names[9]}" "no static C toolchain to build the probe program"
else
	as_sudo "${R[@]}" -- "$tmp/u/idstatic" >/dev/null 2>"$tmp/e"
	rc=$?
	if [ $rc -eq 0 ] && [ "$(cat "$tmp/u/ran" 2>/dev/null)" = "$U" ]; then
		ok "sudo: a static CMD ran once, as uid $U"
	else
		sed 's/^/# /' "$tmp/e" | head -3
		bad "sudo: a static CMD ran as: $(tr '\n' ' ' <"$tmp/u/ran" 2>/dev/null)(exit $rc)"
	fi
fi

# 11. an unwritable output is found before the command starts
rm -f "$tmp/ran"
"${R[@]}" -J "$tmp/no/such/dir.json" -- sh -c "touch '$tmp/ran'" >/dev/null 2>"$tmp/e"
rc=$?
if [ $rc -eq 1 ] && [ ! -e "$tmp/ran" ] && [ "$(wc -l <"$tmp/e")" -eq 1 ]; then
	ok "unwritable -J: $(cat "$tmp/e"), the command never started"
else
	sed 's/^/# /' "$tmp/e" | head -3
	bad "unwritable -J: exit $rc, the command $([ -e "$tmp/ran" ] && echo ran)"
fi

# 12. the command's exit status
"${R[@]}" -- sh -c 'exit 3' >/dev/null 2>"$tmp/e"
rc=$?
if [ $rc -eq 3 ]; then
	ok "record -- sh -c 'exit 3' exits 3"
else
	sed 's/^/# /' "$tmp/e" | head -3
	bad "record -- sh -c 'exit 3' exits $rc"
fi

# 13. a command killed by a signal: 128 + N, and a line as a shell's
"${R[@]}" -- sh -c 'kill -SEGV $$' >/dev/null 2>"$tmp/e"
rc=$?
if [ $rc -eq 139 ] && grep -q "Segmentation fault" "$tmp/e"; then
	ok "a SIGSEGV'd command: exit 139, '$(grep Segmentation "$tmp/e")'"
else
	sed 's/^/# /' "$tmp/e" | head -3
	bad "a SIGSEGV'd command: exit $rc"
fi

# 14. -d ends the tracing, not the command
"${R[@]}" -d 1 -- sleep 5 >/dev/null 2>"$tmp/e"
rc=$?
spid=$(sed -n 's/.* in process \([0-9]*\).*/\1/p' "$tmp/e" | head -1)
state=$(awk '{ print $3 }' "/proc/${spid:-0}/stat" 2>/dev/null)
if [ $rc -eq 0 ] && [ -n "$spid" ] && kill -0 "$spid" 2>/dev/null && [ -n "$state" ] &&
	[ "$state" != Z ] && [ "$state" != t ]; then
	ok "-d 1 -- sleep 5: returned, the sleep (pid $spid) still running untraced"
else
	sed 's/^/# /' "$tmp/e" | head -3
	bad "-d 1 -- sleep 5: exit $rc, the sleep ${spid:-?} in state '${state:-gone}'"
fi
[ -n "$spid" ] && kill "$spid" 2>/dev/null

# 15. a child of the command uses libmmsb: the probes mode does not trace it, and says so (the
# spans mode traces it: test_trace_spans.sh)
"${R[@]}" --mode probes -- sh -c "'$W' spin 3 10 >/dev/null; :" >/dev/null 2>"$tmp/e"
rc=$?
if [ $rc -eq 0 ] && grep -q "not traced" "$tmp/e"; then
	ok "a child using libmmsb: '$(grep "not traced" "$tmp/e")'"
else
	sed 's/^/# /' "$tmp/e" | head -3
	bad "a child using libmmsb: exit $rc, nothing said"
fi
# 16. --as-root under sudo: a user allowed to sudo only mmsb-trace must not get a root command
rm -f "$tmp/pwned"
as_sudo "${R[@]}" --as-root -- sh -c "touch '$tmp/pwned'" >/dev/null 2>"$tmp/e"
rc=$?
"${R[@]}" --as-root -- sh -c "id -u >'$tmp/rootid'" >/dev/null 2>"$tmp/e2"
rc2=$?
if [ $rc -eq 2 ] && [ ! -e "$tmp/pwned" ] && [ "$(wc -l <"$tmp/e")" -eq 1 ] && [ $rc2 -eq 0 ] &&
	[ "$(cat "$tmp/rootid" 2>/dev/null)" = 0 ]; then
	ok "sudo: --as-root refused ($(cat "$tmp/e")), the command never ran; root itself may use it"
else
	sed 's/^/# /' "$tmp/e" "$tmp/e2" | head -3
	bad "sudo: --as-root: exit $rc, $([ -e "$tmp/pwned" ] && echo "a root file created" || echo "no file"); root's exit $rc2"
fi
# 17. a setuid-root program linked to libmmsb run under sudo: the kernel would grant the setuid at an exec traced by
# root, so the tracer must ask for no new privileges, as any ptracer the user could run
cat >"$tmp/euid.c" <<'EOF'
#include <stdio.h>
#include <unistd.h>
const char *mmsb_version(void);
int main(void)
{
	printf("euid=%u libmmsb %s\n", (unsigned int)geteuid(), mmsb_version());
	return 0;
}
EOF
L="$(realpath "$O")"
if ! cc -o "$tmp/u/euid" "$tmp/euid.c" -L"$L" -Wl,-rpath,"$L" -l:libmmsb.so.0 2>/dev/null ||
	! command -v setpriv >/dev/null; then
	skip "${names[16]}" "no C compiler or no setpriv"
else
	chown 0:0 "$tmp/u/euid" && chmod 4755 "$tmp/u/euid"
	# the calibration: run by the user directly, the bit takes (not a nosuid mount)
	direct=$(setpriv --reuid="$U" --regid="$G" --clear-groups "$tmp/u/euid" 2>/dev/null |
		grep -o 'euid=[0-9]*')
	if [ "$direct" != "euid=0" ]; then
		skip "${names[16]}" "setuid bits do not take here ($direct)"
	else
		as_sudo "${R[@]}" -- "$tmp/u/euid" >"$tmp/o" 2>"$tmp/e"
		rc=$?
		got=$(grep -o 'euid=[0-9]*' "$tmp/o")
		if [ $rc -eq 0 ] && [ "$got" = "euid=$U" ]; then
			ok "sudo: a setuid-root command ran with $got (the invoking user's), not root's"
		else
			sed 's/^/# /' "$tmp/e" | head -3
			bad "sudo: a setuid-root command: exit $rc, ran with '${got:-?}'"
		fi
	fi
fi
# 18. a FIFO (no writer) or /dev/zero named as an input: refused at once, never waited on
mkfifo "$tmp/fifo"
res=""
for args in "profiles $tmp/fifo" "profiles /dev/zero" "list $tmp/fifo" \
	"record -P $tmp/fifo -- true" "record -k update -l $tmp/fifo -- true"; do
	# shellcheck disable=SC2086
	timeout 10 "$T" $args >"$tmp/o" 2>"$tmp/e"
	rc=$?
	[ $rc -eq 1 ] && [ "$(wc -l <"$tmp/e")" -eq 1 ] && grep -q 'not a regular file' "$tmp/e" ||
		res="$res [$args: exit $rc$([ $rc -eq 124 ] && echo ', hung'), $(head -c 80 "$tmp/e")]"
done
if [ -z "$res" ]; then
	ok "profiles, list, record -P and -l of a FIFO, profiles /dev/zero: one line, exit 1, at once"
else
	bad "special files as inputs:$res"
fi
# 19. plain root on a checkout a pull request controls: u/odlink -> a root-only directory, the
# link committed (owned) by the user; a root-owned link is the system's and followed
mkdir "$tmp/rootdir" && chmod 700 "$tmp/rootdir"
ln -s "$tmp/rootdir" "$tmp/u/odlink" && chown -h "$U:$G" "$tmp/u/odlink"
ln -s "$tmp/rootdir" "$tmp/rlink"
res=""
(cd "$tmp" && "${R[@]}" -J u/odlink/trace.json -- true) >/dev/null 2>"$tmp/e"
rc=$?
[ $rc -eq 1 ] && [ "$(wc -l <"$tmp/e")" -eq 1 ] && grep -q odlink "$tmp/e" ||
	res="$res [-J u/odlink/trace.json: exit $rc, $(head -c 120 "$tmp/e")]"
(cd "$tmp" && "${R[@]}" -P "$tmp/json.profile" -o u/odlink/sub -- true) >/dev/null 2>"$tmp/e2"
rc2=$?
[ $rc2 -eq 1 ] && [ "$(wc -l <"$tmp/e2")" -eq 1 ] ||
	res="$res [-o u/odlink/sub: exit $rc2, $(head -c 120 "$tmp/e2")]"
[ -z "$(ls -A "$tmp/rootdir")" ] || res="$res [the target now holds: $(ls -A "$tmp/rootdir" | tr '\n' ' ')]"
"${R[@]}" -J "$tmp/rlink/trace.json" -- true >/dev/null 2>"$tmp/e3"
rc3=$?
[ $rc3 -eq 0 ] && [ -s "$tmp/rootdir/trace.json" ] ||
	res="$res [root's link: exit $rc3, $(head -c 120 "$tmp/e3")]"
if [ -z "$res" ]; then
	ok "plain root: a user's directory link refused ($(cat "$tmp/e")), -o through it too; root's followed"
else
	bad "plain root, directory links:$res"
fi
exit $fail
