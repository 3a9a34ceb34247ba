#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# timeout: 240
#
# mmsb-trace's symbols and speedscope file, against eu-addr2line (elfutils) on the same addresses.
#  1. inlines: a C program built here with -g -O2 calls libmmsb from a function inlined into
#     another: the inlined one is a frame of its own, with its file:line and its caller's call line
#  2. oracle: every frame of every stack (name, file, line, inlined chain) is what
#     `eu-addr2line -i -f` gives at that address (at the call, address - 1, for a return address)
#  3. libc's root frame has its name (__libc_start_call_main) where libc's separate debug file is
#     installed (libc6-dbg), never libc.so.6+0x...
#  4. JIT: a frame in anonymous code is named from /tmp/perf-PID.map
#  5. a Python host (an interpreter built without frame pointers): no stack or data address is
#     shown as a code frame; a walk that left the code ends in one "[unknown]" root
#  6. speedscope: with -e it opens on a timeline; the sampled profile's stacks are in name order;
#     no JSON file escapes a slash
# Privileged parts SKIP without root or BTF; the comparisons SKIP without eu-addr2line.
set -u
O=${O:-.output}
T="$O/mmsb-trace"
. "$(dirname "$0")/tap.sh"
jitmap=
trap 'rm -rf "$tmp"; [ -n "$jitmap" ] && rm -f "$jitmap"' EXIT
# never ask a debuginfod server: the answer would depend on the network
unset DEBUGINFOD_URLS

echo "TAP version 13"
echo "1..6"

names=(inlines oracle libc-root jit python speedscope)
why=$(no_attach)
if [ -z "$why" ] && ! command -v eu-addr2line >/dev/null; then
	why="eu-addr2line (elfutils) is not installed: ci/install-deps.sh"
fi
[ -z "$why" ] || skip_all "$why" "${names[@]}"

# The program: updates through an inlined function, then through a JIT trampoline (anonymous
# code that keeps the frame-pointer chain) that perf's JIT map names.
cat >"$tmp/prog.c" <<'EOF'
#include <mmsb/mmsb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static struct mmsb_state *st;
static uint64_t page;
static unsigned char buf[64];

static inline __attribute__((always_inline)) int update_inline(int round)
{
	buf[0] = (unsigned char)(round + 1);
	return mmsb_page_update(st, page, buf, sizeof(buf)); /* L_INLINED */
}

__attribute__((noinline)) int via_inline(int rounds)
{
	int err = 0;

	for (int i = 0; i < rounds; i++)
		err |= update_inline(i) < 0; /* L_CALL */
	return err;
}

__attribute__((noinline)) long from_jit(long rounds)
{
	int err = 0;

	for (long i = 0; i < rounds; i++) {
		buf[1] = (unsigned char)(i + 1);
		err |= mmsb_page_update(st, page, buf, sizeof(buf)) < 0;
	}
	return err;
}

int main(int argc, char **argv)
{
	/* push %rbp; mov %rsp,%rbp; mov %rdi,%rax; mov %rsi,%rdi; call *%rax; pop %rbp; ret */
	static const unsigned char code[] = { 0x55, 0x48, 0x89, 0xe5, 0x48, 0x89, 0xf8,
					      0x48, 0x89, 0xf7, 0xff, 0xd0, 0x5d, 0xc3 };
	int rounds = argc > 1 ? atoi(argv[1]) : 3, err;
	long (*jit)(long (*)(long), long);
	char path[64];
	void *mem;
	FILE *f;

	st = mmsb_state_open(NULL);
	if (!st || mmsb_page_create(st, sizeof(buf), MMSB_LOC_CPU, &page))
		return 1;
	mem = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return 1;
	memcpy(mem, code, sizeof(code));
	if (mprotect(mem, 4096, PROT_READ | PROT_EXEC))
		return 1;
	snprintf(path, sizeof(path), "/tmp/perf-%d.map", (int)getpid());
	f = fopen(path, "w");
	if (!f)
		return 1;
	fprintf(f, "%lx %zx jit_trampoline\n", (unsigned long)mem, sizeof(code));
	fclose(f);
	jit = (long (*)(long (*)(long), long))mem;
	err = via_inline(rounds);
	err |= (int)jit(from_jit, rounds);
	printf("pid %d jit %lx err %d\n", (int)getpid(), (unsigned long)mem, err);
	mmsb_state_close(st);
	return err != 0;
}
EOF
lib=$(realpath "$O")
if ! ${CC:-cc} -g -O2 -fno-omit-frame-pointer -Ilib/include "$tmp/prog.c" -o "$tmp/prog" \
	-L"$lib" -lmmsb -Wl,-rpath,"$lib" 2>"$tmp/cc.err"; then
	sed 's/^/# /' "$tmp/cc.err" | head -5
	for t in "${names[@]}"; do
		bad "$t: the test program does not build"
	done
	exit 1
fi
# probes mode: a user stack per span, symbolised by the report (spans mode samples them instead)
"$T" record --mode probes -k update -J "$tmp/p.json" -f "$tmp/p.folded" -s "$tmp/p.ss.json" \
	-e "$tmp/p.ev" -- "$tmp/prog" 3 >"$tmp/p.out" 2>"$tmp/p.err"
rc=$?
pid=$(sed -n 's/^pid \([0-9]*\) .*/\1/p' "$tmp/p.out")
[ -n "$pid" ] && jitmap=/tmp/perf-$pid.map
if [ $rc -ne 0 ] || [ -z "$pid" ]; then
	sed 's/^/# /' "$tmp/p.err" | tail -3
	for t in "${names[@]}"; do
		bad "$t: record exited $rc"
	done
	exit 1
fi

# What eu-addr2line says at each address of the JSON's stacks: one request per module, the
# addresses in the file's own layout (its PT_LOAD segments), the call for a return address.
python3 - "$tmp/p.json" "$tmp/oracle.json" <<'PY'
import json, subprocess, sys
j = json.load(open(sys.argv[1]))
want = {}  # module -> {(offset, caller)}
for st in j["stacks"]:
    locs = st["locations"]
    starts = [i for i, l in enumerate(locs) if not l.get("inlined")]
    for n, i in enumerate(starts):
        l = locs[i]
        if "module" in l:
            # the last address is where the probe hit; every other is a return address
            want.setdefault(l["module"], set()).add((l["offset"], n != len(starts) - 1))
out = {}
for mod, offs in want.items():
    segs = []
    for line in subprocess.run(["readelf", "-lW", mod], capture_output=True, text=True).stdout.splitlines():
        f = line.split()
        if f and f[0] == "LOAD":
            segs.append((int(f[1], 16), int(f[2], 16), int(f[4], 16)))
    offs = sorted(offs)
    addrs = []
    for off, caller in offs:
        vaddr = next((off - o + v for o, v, sz in segs if o <= off < o + sz), off)
        addrs.append(hex(vaddr - caller))
    res = subprocess.run(["eu-addr2line", "-i", "-f", "-e", mod] + addrs, capture_output=True,
                         text=True).stdout.splitlines()
    # per address: pairs of lines, "name[ inlined at ...]" then "file:line[:col]", innermost
    # first; the next address starts at a name without " inlined at"
    k = 0
    for off, caller in offs:
        frames = []
        while k + 1 < len(res):
            name, src = res[k], res[k + 1]
            k += 2
            inl = " inlined at " in name
            f, _, rest = src.partition(":")
            line = int(rest.split(":")[0]) if rest.split(":")[0].isdigit() else 0
            frames.append([name.split(" ")[0], None if f == "??" else f, line])
            if not inl:
                break
        out[f"{mod}:{off}:{int(caller)}"] = frames
json.dump(out, open(sys.argv[2], "w"))
PY

check() { # check NAME PYTHON-SNIPPET: runs it on the JSON files; ok when it exits 0
	local t=$1
	shift
	if python3 - "$tmp/p.json" "$tmp/oracle.json" "$tmp/p.ss.json" "$tmp/prog.c" \
		"$jitmap" "$tmp/py.json" tests/fixtures/speedscope-file-format-schema.json; then
		ok "$t"
	else
		bad "$t"
	fi
}

# 1. the inlined function, a frame of its own, with its line and the call's line in its caller
check "inlines: update_inline a frame of its own, prog.c:LINE for it and for the call in via_inline" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
src = open(sys.argv[4]).read().splitlines()
line_of = lambda mark: next(i + 1 for i, l in enumerate(src) if mark in l)
for st in j["stacks"]:
    fr = st["frames"]
    if "update_inline" in fr:
        i = fr.index("update_inline")
        inl, caller = st["locations"][i], st["locations"][i - 1]
        got = (fr[i - 1], inl.get("inlined"), inl.get("file"), inl.get("line"), caller.get("line"))
        exp = ("via_inline", True, sys.argv[4], line_of("L_INLINED"), line_of("L_CALL"))
        print(f"# {';'.join(fr)}: {got}")
        sys.exit(0 if got == exp else 1)
print("# no stack holds update_inline:", [s["frames"] for s in j["stacks"]])
sys.exit(1)
PY

# 2. every frame of every stack against eu-addr2line
check "oracle: every frame's name, file:line and inlines as eu-addr2line -i -f gives them" <<'PY'
import json, sys
j, oracle = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
bad = n = 0
for st in j["stacks"]:
    locs, fr = st["locations"], st["frames"]
    starts = [i for i, l in enumerate(locs) if not l.get("inlined")]
    for g, i in enumerate(starts):
        l = locs[i]
        if "module" not in l:
            continue
        end = starts[g + 1] if g + 1 < len(starts) else len(locs)
        # ours root first (the function, then what is inlined into it); the oracle innermost first
        ours = [[fr[k], locs[k].get("file"), locs[k].get("line", 0)] for k in range(end - 1, i - 1, -1)]
        theirs = oracle[f"{l['module']}:{l['offset']}:{int(g != len(starts) - 1)}"]
        n += 1
        if ours != theirs:
            print(f"# {l['module']}+{l['offset']:#x}: ours {ours}, eu-addr2line {theirs}"); bad = 1
print(f"# {n} addresses compared")
sys.exit(bad or not n)
PY

# 3. libc's root frame, named through its separate debug file
libc=$(awk '$6 ~ /\/libc\.so\.6$/ { print $6; exit }' /proc/self/maps)
bid=$(readelf -n "$libc" 2>/dev/null | sed -n 's/.*Build ID: \([0-9a-f]*\)/\1/p')
if [ -z "$bid" ] || [ ! -r "/usr/lib/debug/.build-id/${bid:0:2}/${bid:2}.debug" ]; then
	skip "libc-root" "libc's separate debug file is not installed (libc6-dbg)"
else
	check "libc-root: __libc_start_call_main through /usr/lib/debug/.build-id, as eu-addr2line" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
roots = {(s["frames"][0], s["locations"][0].get("module", "").rsplit("/", 1)[-1]) for s in j["stacks"]}
print("# roots:", sorted(roots))
sys.exit(0 if roots == {("__libc_start_call_main", "libc.so.6")} else 1)
PY
fi

# 4. the JIT's frame, from its map (read while the file is there: the tracer read it at the report)
check "jit: the trampoline in anonymous code named from /tmp/perf-PID.map" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
start, size, name = open(sys.argv[5]).read().split()
start, size = int(start, 16), int(size, 16)
for st in j["stacks"]:
    fr = st["frames"]
    if name in fr:
        i = fr.index(name)
        addr = st["locations"][i].get("address", -1)
        print(f"# {';'.join(fr)}: {addr:#x} in [{start:#x}, {start + size:#x})")
        sys.exit(0 if fr[i - 1:i + 2] == ["main", name, "from_jit"] and start <= addr < start + size else 1)
print("# no stack holds", name, [s["frames"] for s in j["stacks"]])
sys.exit(1)
PY
rm -f "$jitmap"

# 5. a Python host: its interpreter keeps no frame pointers, the walk reads stack words
MMSB_LIB="$lib/libmmsb.so.0" "$T" record --mode probes -k update -J "$tmp/py.json" -- \
	python3 tests/helpers/ffi_workload.py 100 0 >"$tmp/py.out" 2>"$tmp/py.err"
check "python: no stack or data address shown as a code frame; a cut walk ends in [unknown]" <<'PY'
import json, re, sys
j = json.load(open(sys.argv[6]))
bad = 0
for st in j["stacks"]:
    fr, locs = st["frames"], st["locations"]
    for i, l in enumerate(locs):
        if l.get("code") is False:
            # the walk left the code: one root frame says so, nothing past it
            if i != 0 or fr[0] != "[unknown]":
                print(f"# a non-code address not as the root [unknown]: {fr}"); bad = 1
        elif "module" not in l or re.match(r"\[unknown\]\+0x", fr[i]):
            print(f"# frame {fr[i]!r} {l} is no code in a mapped file: {fr}"); bad = 1
    if "mmsb_page_update" not in fr:
        print(f"# libmmsb's frame missing: {fr}"); bad = 1
print("# " + " | ".join(";".join(s["frames"]) for s in j["stacks"][:3]))
sys.exit(bad or not j["stacks"])
PY

# 6. speedscope: opens on the timeline, samples in name order; no "\/" in any JSON file
check "speedscope: opens on a timeline, samples in name order; no escaped slash in any JSON" <<'PY'
import json, sys
ss = json.load(open(sys.argv[3]))
p = ss["profiles"]
bad = 0
if p[ss["activeProfileIndex"]]["type"] != "evented":
    print(f"# opens on profile {ss['activeProfileIndex']}: {p[ss['activeProfileIndex']]['type']}"); bad = 1
names = [[ss["shared"]["frames"][i]["name"] for i in s] for s in p[0]["samples"]]
if p[0]["type"] != "sampled" or names != sorted(names) or len(names) < 2:
    print("# sampled profile not in name order:", names); bad = 1
for f in (sys.argv[1], sys.argv[3], sys.argv[6]):
    if "\\/" in open(f).read():
        print(f"# {f} escapes slashes"); bad = 1
try:
    import jsonschema
    jsonschema.validate(ss, json.load(open(sys.argv[7])))
except ImportError:
    pass
except Exception as e:
    print("# speedscope schema:", str(e).splitlines()[0]); bad = 1
sys.exit(bad)
PY

exit $fail
