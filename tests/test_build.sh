#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Unprivileged: the build's dependencies are complete. A header edit must rebuild every object
# that includes it; a dependency file written by the compiler but never included by the Makefile
# (a variable used before it is defined, a rule without -MMD) silently breaks that, and nothing
# else fails. Run on a built tree ($O), reading make's database (make -p) and building nothing:
#   1. every C source built here is a prerequisite of some target, and that target also has every
#      project header the source includes (the compiler's .d file where it wrote one, else the
#      source's #include lines, followed through project headers);
#   2. make -n -W HEADER (HEADER as if edited, nothing touched) recompiles what includes HEADER,
#      for each header of each tool's folder and of tools/common;
#   3. one version: the Makefile's VERSION is mmsb.h's MMSB_VERSION_MAJOR/MINOR/PATCH, the man
#      pages' .TH lines and what each tool's --version says.
set -u
O=${O:-.output}
. "$(dirname "$0")/tap.sh"
trap 'rm -rf "$tmp"' EXIT

echo "TAP version 13"
echo "1..3"
if [ ! -e "$O/libmmsb.so" ]; then
	ok "every object depends on the headers it includes # SKIP $O is not built"
	ok "make rebuilds what includes an edited tool header # SKIP $O is not built"
	ok "one version # SKIP $O is not built"
	exit 0
fi
# the database: every rule make would use, the included .d files merged in (-q: nothing runs)
make --no-print-directory -pq O="$O" SAN="${SAN:-}" all >"$tmp/db" 2>/dev/null
if python3 - "$O" "$tmp/db" <<'PY'
import glob, os, re, subprocess, sys

O, dbfile = sys.argv[1], sys.argv[2]
# the directories the Makefile passes with -I, generated ones included
incdirs = ["lib/include", "lib", f"{O}/gen", "tools/common", f"{O}/tools", "bpf", f"{O}/bpf",
           "tests", "tests/fuzz", O]

def norm(p):
    return os.path.normpath(p)

# prerequisites per target, from the database (normal and order-only alike)
prereqs, skip = {}, False
for line in open(dbfile, errors="replace"):
    if line.startswith("# Not a target:"):
        skip = True
        continue
    m = re.match(r"^([^#\s%][^:=]*?):{1,2}(?!=)\s*(.*)$", line.rstrip("\n"))
    if not m or "\t" in line[:1]:
        continue
    if skip:
        skip = False
        continue
    deps = {norm(d) for d in m.group(2).replace("|", " ").split()}
    for t in m.group(1).split():
        prereqs.setdefault(norm(t), set()).update(deps)

# the compiler's view: each .d file's target, source (first prerequisite) and headers
dfiles = {}
for d in glob.glob(f"{O}/**/*.d", recursive=True):
    text = open(d).read().replace("\\\n", " ")
    m = re.match(r"\s*([^:]+):\s*(.*)", text)
    if not m:
        continue
    deps = m.group(2).split("\n")[0].split()
    if deps:
        dfiles[norm(deps[0])] = (d, {norm(x) for x in deps[1:] if x.endswith(".h")})

def resolve(name, here, quoted):
    for d in ([here] if quoted else []) + incdirs:
        p = os.path.join(d, name)
        if os.path.isfile(p):
            return norm(p)
    return None  # a system header

def includes(src, seen):
    try:
        text = open(src, errors="replace").read()
    except OSError:
        return seen
    for q, name in re.findall(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', text, re.M):
        p = resolve(name, os.path.dirname(src), q == '"')
        if p and p not in seen:
            seen.add(p)
            includes(p, seen)
    return seen

sources = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard",
                          "*.c", "*.cu"], capture_output=True, text=True).stdout.split()
bad = checked = 0
for src in map(norm, sources):
    users = [t for t, deps in prereqs.items() if src in deps]
    if src not in dfiles and not users:
        continue  # not built in this configuration (fuzz targets, CUDA without nvcc)
    checked += 1
    if not users:
        print(f"# {src}: compiled ({dfiles[src][0]}), but no rule of the Makefile names it: "
              "its .d file is not included")
        bad += 1
        continue
    want = dfiles[src][1] if src in dfiles else {h for h in includes(src, set())}
    have = set().union(*(prereqs[t] for t in users))
    missing = sorted(want - have)
    if missing:
        print(f"# {src} ({', '.join(sorted(users))}): no dependency on {', '.join(missing)}")
        bad += 1
print(f"# {checked} sources built here checked")
sys.exit(1 if bad or not checked else 0)
PY
then
	ok "every object depends on the headers it includes"
else
	bad "objects miss dependencies on headers they include"
fi
# what an edit does: each tool header, as if edited, recompiles every source that includes it
fail_w=0
for h in tools/*/*.h; do
	# a tool's header is included in its folder; a common one anywhere in tools/
	scope="$(dirname "$h")/*.c"
	[ "$(dirname "$h")" = tools/common ] && scope="tools/*/*.c"
	# -o: the rules that rewrite a generated header only when it changes stay out of the answer
	make --no-print-directory -n -W "$h" -o "$O/gen/mmsb_version.h" -o "$O/tools/bench_build.h" \
		-o "$O/gen/probes.mode" O="$O" SAN="${SAN:-}" tools >"$tmp/n" 2>&1
	# shellcheck disable=SC2086 # scope is a glob
	for src in $(grep -l "#include \"$(basename "$h")\"" $scope); do
		if ! grep -q -- "-c $src " "$tmp/n"; then
			echo "# $h edited: make does not recompile $src"
			fail_w=1
		fi
	done
done
if [ "$fail_w" = 0 ]; then
	ok "make rebuilds what includes an edited tool header (make -n -W)"
else
	bad "an edited tool header leaves objects that include it stale"
fi
# one version, said everywhere the same
v=$(sed -n 's/^VERSION := //p' Makefile)
h=$(sed -n 's/^#define MMSB_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)$/\2/p' \
	lib/include/mmsb/mmsb.h | paste -sd.)
why=""
[ -n "$v" ] && [ "$h" = "$v" ] || why="$why; mmsb.h says '$h', the Makefile '$v'"
for m in docs/man/*.1; do
	grep -q "^\.TH .* \"mmsb $v\" " "$m" || why="$why; $m: .TH is not mmsb $v"
done
for t in mmsb-trace mmsb-bench mmsb-tlog; do
	said=$("$O/$t" --version 2>&1 | head -1)
	case "$said" in "$t $v" | "$t $v "*) ;; *) why="$why; $t --version: $said" ;; esac
done
if [ -z "$why" ]; then
	ok "one version: $v in the Makefile, mmsb.h, the man pages and every tool's --version"
else
	bad "the version differs${why}"
fi
exit $fail
