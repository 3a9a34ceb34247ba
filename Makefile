# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# One non-recursive build into $(O). Quick reference:
#   make                 libmmsb.so, libmmsb.a, tools, tests, examples
#   make check           install missing packages, build, run every test (TAP), print the totals
#   make check SAN=address,undefined    the same under sanitizers (into .output-san-address-undefined)
#   make install PREFIX=/usr/local DESTDIR=
#   make format-check    clang-format must agree with every C file
#   V=1 shows commands; O=DIR builds elsewhere; EXTRA_CFLAGS/EXTRA_LDFLAGS append.

# The one version: the tools (mmsb_version.h below) and the .pc take it from here;
# lib/include/mmsb/mmsb.h spells it MMSB_VERSION_MAJOR/MINOR/PATCH and the man pages in their .TH
# lines, and tests/test_build.sh checks that they all agree.
VERSION := 0.1.0
# PROBES=1 builds the USDT probes of lib/probes.d in; PROBES=0 compiles every probe out.
PROBES ?= 1
DTRACE ?= dtrace
SAN ?=
comma := ,
ifeq ($(SAN),)
O ?= .output
else
# one tree per sanitizer set: objects built with other flags must never be reused
O ?= .output-san-$(subst $(comma),-,$(SAN))
endif
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
DESTDIR ?=

CC ?= cc
CLANG_FORMAT ?= clang-format
PKG_CONFIG ?= pkg-config

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

CFLAGS := -g -O2 -fno-omit-frame-pointer -Wall -Wextra -Werror -std=gnu11 \
	  -D_GNU_SOURCE -Ilib/include -Ilib -I$(O)/gen $(EXTRA_CFLAGS)
LDFLAGS := $(EXTRA_LDFLAGS)
ifneq ($(SAN),)
CFLAGS += -fsanitize=$(SAN) -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SAN)
endif
DEPFLAGS = -MMD -MP
# a program compiled and linked in one step: its .d is named after it
LINK_DEPFLAGS = -MMD -MP -MT $@ -MF $@.d

# BPF: CO-RE programs into skeletons, vmlinux.h from the running kernel's BTF. Without BTF (or
# without clang/bpftool) the BPF parts are not built and their tests SKIP and say why.
CLANG ?= clang
BPFTOOL ?= $(shell command -v bpftool 2>/dev/null || echo /usr/sbin/bpftool)
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux
ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_SKELS := $(patsubst bpf/%.bpf.c,$(O)/bpf/%.skel.h,$(BPF_SRCS))
HAVE_BPF := $(shell test -r $(VMLINUX_BTF) && test -x $(BPFTOOL) && command -v $(CLANG) >/dev/null && echo 1)
# clang -target bpf does not search the multiarch dirs (asm/ headers): hand it the host's list
CLANG_BPF_SYS_INCLUDES := $(shell $(CLANG) -v -E - </dev/null 2>&1 | \
	sed -n '/<...> search starts here:/,/End of search list./{ s| \(/.*\)|-idirafter \1|p }')
LIBBPF_LIBS := $(shell $(PKG_CONFIG) --libs libbpf 2>/dev/null || echo -lbpf -lelf -lz)

JSONC_CFLAGS := $(shell $(PKG_CONFIG) --cflags json-c 2>/dev/null)
JSONC_LIBS := $(shell $(PKG_CONFIG) --libs json-c 2>/dev/null || echo -ljson-c)
# mmsb-trace's symbols: elfutils' libdwfl (libdw loads libdebuginfod itself when it is used)
DW_LIBS := $(shell $(PKG_CONFIG) --libs libdw 2>/dev/null || echo -ldw -lelf)
# mmsb-trace --pprof: pprof's profile.proto into C by protoc-c at build time, gzip'd by zlib
PROTOC_C ?= protoc-c
PROTOBUF_C_CFLAGS := $(shell $(PKG_CONFIG) --cflags libprotobuf-c 2>/dev/null)
PROTOBUF_C_LIBS := $(shell $(PKG_CONFIG) --libs libprotobuf-c 2>/dev/null || echo -lprotobuf-c)
ZLIB_LIBS := $(shell $(PKG_CONFIG) --libs zlib 2>/dev/null || echo -lz)
# mmsb-trace serve: /metrics over HTTP (Debian libmicrohttpd-dev)
MHD_LIBS := $(shell $(PKG_CONFIG) --libs libmicrohttpd 2>/dev/null || echo -lmicrohttpd)

# CUDA: the GPU backend, its own shared object loaded at run time (libmmsb never links CUDA).
# CUDA=auto builds it when nvcc is found, CUDA=1 requires it, CUDA=0 skips it. sm_90 code plus
# PTX, the runtime linked statically: it builds on a machine without a GPU and loads only on one.
CUDA ?= auto
CUDA_PATH ?= /usr/local/cuda
NVCC ?= $(CUDA_PATH)/bin/nvcc
NVCC_FLAGS := -O2 -Ilib -Xcompiler -fPIC,-fvisibility=hidden -shared -cudart static \
	-gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90
HAVE_NVCC := $(shell test -x $(NVCC) && echo 1)
ifeq ($(CUDA),1)
ifneq ($(HAVE_NVCC),1)
$(error CUDA=1 but $(NVCC) is not there (set CUDA_PATH or NVCC))
endif
endif
BUILD_CUDA := $(if $(filter 0,$(CUDA)),,$(HAVE_NVCC))
GPU_SO := $(if $(BUILD_CUDA),$(O)/libmmsb-cuda.so)

LIB_SRCS := $(wildcard lib/*.c)
LIB_OBJS := $(patsubst lib/%.c,$(O)/lib/%.o,$(LIB_SRCS))
ifeq ($(PROBES),1)
# the semaphores of every probe and the public functions' traced twins (lib/gen-probes.sh)
LIB_OBJS += $(O)/lib/probes_sema.o $(O)/lib/api_twins.o
endif
HEADERS := lib/include/mmsb/mmsb.h lib/include/mmsb/span_abi.h

TOOLS := mmsb-tlog mmsb-bench mmsb-trace
TOOL_BINS := $(addprefix $(O)/,$(TOOLS))

TEST_SRCS := $(filter-out tests/harness.c,$(wildcard tests/test_*.c))
TEST_BINS := $(patsubst tests/%.c,$(O)/tests/%,$(TEST_SRCS))
TEST_SCRIPTS := $(wildcard tests/test_*.sh)
HELPER_BINS := $(O)/tests/probe_workload $(O)/tests/probe_workload_static $(O)/tests/trace_workload \
	       $(O)/tests/trace_workload_static $(O)/tests/libmmsb-fakegpu.so $(O)/tests/gpu_kernels \
	       $(if $(HAVE_BPF),$(O)/tests/usdt_count_run)
# extra libraries of one test program: TEST_LIBS_<name without test_>
TEST_LIBS_usdt := $(LIBBPF_LIBS)
EXAMPLE_SRCS := $(wildcard docs/examples/*.c)
EXAMPLE_BINS := $(patsubst docs/examples/%.c,$(O)/examples/%,$(EXAMPLE_SRCS))

# Each tool is built from its folder's files, plus what the tools share (tools/common/).
COMMON_OBJS := $(patsubst %.c,$(O)/%.o,$(wildcard tools/common/*.c))
tool_objs = $(patsubst %.c,$(O)/%.o,$(wildcard tools/$(1)/*.c)) $(COMMON_OBJS)
TLOG_OBJS := $(call tool_objs,tlog)
BENCH_OBJS := $(call tool_objs,bench)
# the generated profile.pb-c.c is no file of tools/trace: named here, built in $(O)/gen
TRACE_OBJS := $(call tool_objs,trace) $(O)/gen/profile.pb-c.o
TOOL_OBJS := $(sort $(TLOG_OBJS) $(BENCH_OBJS) $(TRACE_OBJS))

# Every object compiled with DEPFLAGS: their .d files are included below, so each object is
# rebuilt when a header it includes changes (tests/test_build.sh checks that none is missed).
# Defined after every list it names: := expands them here, and an empty one loses its .d files.
ALL_OBJS := $(LIB_OBJS) $(TOOL_OBJS) \
	    $(patsubst tests/%.c,$(O)/tests/%.o,$(TEST_SRCS)) $(O)/tests/harness.o \
	    $(patsubst docs/examples/%.c,$(O)/examples/%.o,$(EXAMPLE_SRCS))

RPATH = -Wl,-rpath,$(abspath $(O))

.PHONY: all lib bpf tools tests examples check test depcheck format format-check install \
	uninstall deps perf-capture perf-gate perf-check gpu-check \
	demo clean stress fuzz FORCE trace-bench
.DELETE_ON_ERROR:
.SECONDARY:

all: lib bpf tools tests examples

lib: $(O)/libmmsb.so $(O)/libmmsb.a $(GPU_SO)

$(O)/libmmsb-cuda.so: gpu/cuda_backend.cu lib/gpu_backend.h | $(O)/lib
	$(call msg,NVCC,$@)
	$(Q)$(NVCC) $(NVCC_FLAGS) -o $@ $<

$(O)/tests/gpu_kernels: tests/helpers/gpu_kernels.c lib/gpu_backend.h | $(O)/tests
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $(LINK_DEPFLAGS) $(LDFLAGS) $< -o $@ -ldl

# the test backend: device memory is host memory, costs are chosen (tests/test_gpu.c)
$(O)/tests/libmmsb-fakegpu.so: tests/helpers/fake_gpu.c lib/gpu_backend.h | $(O)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(LINK_DEPFLAGS) -fPIC -shared $< -o $@
tools: $(TOOL_BINS)
ifeq ($(HAVE_BPF),1)
bpf: $(BPF_SKELS)
else
bpf:
	$(call msg,SKIP,bpf: no $(VMLINUX_BTF), bpftool or clang: BPF skeletons not built)
endif
tests: $(TEST_BINS) $(HELPER_BINS)
examples: $(EXAMPLE_BINS)

$(O)/lib/%.o: lib/%.c $(O)/gen/mmsb_probes.h | $(O)/lib
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(DEPFLAGS) -fPIC -fvisibility=hidden -c $< -o $@

# ---- probes: everything from lib/probes.d; the mode is remembered so PROBES= changes rebuild ----

$(O)/gen/probes.mode: FORCE | $(O)/gen
	$(Q)echo $(PROBES) > $@.new && (cmp -s $@.new $@ && rm -f $@.new || mv $@.new $@)

$(O)/gen/mmsb_probes_dtrace.h: lib/probes.d | $(O)/gen
	$(call msg,DTRACE,$@)
	$(Q)$(DTRACE) -h -s $< -o $@

$(O)/gen/mmsb_probes.h: lib/probes.d lib/api-ids.list bpf/mmsb_spans.h lib/gen-probes.sh \
			$(O)/gen/probes.mode $(if $(filter 1,$(PROBES)),$(O)/gen/mmsb_probes_dtrace.h)
	$(call msg,GEN,$@)
	$(Q)CC="$(CC)" lib/gen-probes.sh $(PROBES) $< lib/api-ids.list bpf/mmsb_spans.h $@ \
		$(O)/gen/mmsb_probes_dtrace.h

$(O)/gen/probes_sema.S: lib/probes.d lib/gen-probes.sh | $(O)/gen
	$(call msg,GEN,$@)
	$(Q)lib/gen-probes.sh sema $< $@

$(O)/gen/api_twins.c: lib/probes.d lib/api-ids.list $(HEADERS) lib/gen-probes.sh | $(O)/gen
	$(call msg,GEN,$@)
	$(Q)lib/gen-probes.sh twins $< lib/api-ids.list lib/include/mmsb/mmsb.h $@

$(O)/lib/api_twins.o: $(O)/gen/api_twins.c $(O)/gen/mmsb_probes.h | $(O)/lib
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(DEPFLAGS) -fPIC -fvisibility=hidden -c $< -o $@

$(O)/lib/probes_sema.o: $(O)/gen/probes_sema.S | $(O)/lib
	$(call msg,AS,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(O)/gen:
	$(Q)mkdir -p $@

# -Bsymbolic-functions: a traced twin calls its public function (lib/probes.h) in the library
# itself, never through the PLT, so a wrapper interposed on that function runs once a call.
$(O)/libmmsb.so: $(LIB_OBJS) lib/libmmsb.map
	$(call msg,LD,$@)
	$(Q)$(CC) -shared -Wl,-soname,libmmsb.so.0 -Wl,--version-script=lib/libmmsb.map \
		-Wl,-Bsymbolic-functions \
		-Wl,--no-undefined $(LDFLAGS) $(LIB_OBJS) -o $@.0 -lpthread -lm
	$(Q)ln -sf libmmsb.so.0 $@

$(O)/libmmsb.a: $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(O)/tools/%.o: tools/%.c | $(O)/tools
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(JSONC_CFLAGS) $(PROTOBUF_C_CFLAGS) -Itools/common -I$(O)/tools -Ibpf -I$(O)/bpf \
		$(DEPFLAGS) -c $< -o $@

$(O)/mmsb-tlog: $(TLOG_OBJS) $(O)/libmmsb.so
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(LDFLAGS) $(filter %.o,$^) -o $@ -L$(O) -lmmsb $(RPATH) $(JSONC_LIBS)

$(O)/mmsb-bench: $(BENCH_OBJS) \
		 $(O)/libmmsb.so
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(LDFLAGS) $(filter %.o,$^) -o $@ -L$(O) -lmmsb $(RPATH) $(JSONC_LIBS) -lm

$(O)/mmsb-trace: $(TRACE_OBJS) $(O)/libmmsb.so
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(LDFLAGS) $(filter %.o,$^) -o $@ -L$(O) -lmmsb $(RPATH) $(JSONC_LIBS) \
		$(LIBBPF_LIBS) $(DW_LIBS) -lelf -lpfm $(PROTOBUF_C_LIBS) $(ZLIB_LIBS) $(MHD_LIBS)

# profile.proto (pprof's, Apache-2.0) into C; the .h is made with the .c
$(O)/gen/profile.pb-c.c: tools/trace/profile.proto | $(O)/gen
	$(call msg,PROTOC-C,$@)
	$(Q)$(PROTOC_C) --c_out=$(O)/gen --proto_path=tools/trace $<
$(O)/gen/profile.pb-c.h: $(O)/gen/profile.pb-c.c

$(O)/gen/profile.pb-c.o: $(O)/gen/profile.pb-c.c $(O)/gen/profile.pb-c.h
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(PROTOBUF_C_CFLAGS) $(DEPFLAGS) -c $< -o $@

# before out_pprof.o's first compile; then its .d file names it
$(O)/tools/trace/out_pprof.o: | $(O)/gen/profile.pb-c.h

# the tracer's BPF skeletons exist before its first compile; then its .d files name them
$(filter-out $(COMMON_OBJS),$(TRACE_OBJS)): | $(BPF_SKELS)

# What the bench's machine block says about this build; rewritten only when it changes.
BUILD_INFO = \#define MMSB_GIT_REV "$(shell git describe --always --dirty 2>/dev/null || echo unknown)"\n\#define MMSB_BUILD_FLAGS "$(strip $(CFLAGS))"
$(O)/tools/bench_build.h: FORCE | $(O)/tools
	$(Q)printf '$(BUILD_INFO)\n' > $@.new && (cmp -s $@.new $@ && rm -f $@.new || mv $@.new $@)

$(O)/tools/bench/report.o: $(O)/tools/bench_build.h

# The version for the tools, rewritten only when VERSION changes (a FORCE rule, as above).
$(O)/gen/mmsb_version.h: FORCE | $(O)/gen
	$(Q)printf '#define MMSB_TOOLS_VERSION "$(VERSION)"\n' > $@.new && \
		(cmp -s $@.new $@ && rm -f $@.new || mv $@.new $@)

# before their first compile; then their .d files name it
$(TOOL_OBJS): | $(O)/gen/mmsb_version.h

FORCE:

$(O)/tests/%.o: tests/%.c | $(O)/tests $(O)/gen/mmsb_probes.h $(if $(HAVE_BPF),$(BPF_SKELS))
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Itests -Ibpf -I$(O)/bpf $(DEPFLAGS) -c $< -o $@

$(O)/tests/test_%: $(O)/tests/test_%.o $(O)/tests/harness.o $(O)/libmmsb.so
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(LDFLAGS) $(filter %.o,$^) -o $@ -L$(O) -lmmsb $(RPATH) -lpthread -lm \
		$(TEST_LIBS_$*)

# reads libmmsb's in-process spans from inside: linked with libmmsb.a for its semaphore
$(O)/tests/test_spans: $(O)/tests/test_spans.o $(O)/tests/harness.o $(O)/libmmsb.a
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(LDFLAGS) $(filter %.o,$^) $(O)/libmmsb.a -o $@ -lpthread -lm

$(O)/tests/probe_workload: tests/helpers/probe_workload.c $(O)/libmmsb.so | $(O)/tests
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $(LINK_DEPFLAGS) $(LDFLAGS) $< -o $@ -L$(O) -lmmsb $(RPATH)

$(O)/tests/usdt_count_run: tests/helpers/usdt_count_run.c $(BPF_SKELS) $(O)/gen/mmsb_probes.h \
			  | $(O)/tests
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $(LINK_DEPFLAGS) -Ibpf -I$(O)/bpf $(LDFLAGS) $< -o $@ $(LIBBPF_LIBS)

$(O)/tests/trace_workload: tests/helpers/trace_workload.c $(O)/libmmsb.so | $(O)/tests
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $(LINK_DEPFLAGS) $(LDFLAGS) $< -o $@ -L$(O) -lmmsb $(RPATH)

$(O)/tests/trace_workload_static: tests/helpers/trace_workload.c $(O)/libmmsb.a | $(O)/tests
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $(LINK_DEPFLAGS) $(LDFLAGS) $< $(O)/libmmsb.a -o $@ -lpthread -lm

# the same linked with libmmsb.a: its probes live in the executable itself
$(O)/tests/probe_workload_static: tests/helpers/probe_workload.c $(O)/libmmsb.a | $(O)/tests
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $(LINK_DEPFLAGS) $(LDFLAGS) $< $(O)/libmmsb.a -o $@ -lpthread -lm

$(O)/examples/%.o: docs/examples/%.c | $(O)/examples
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(DEPFLAGS) -c $< -o $@

$(O)/examples/%: $(O)/examples/%.o $(O)/libmmsb.so
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(LDFLAGS) $(filter %.o,$^) -o $@ -L$(O) -lmmsb $(RPATH)

$(O)/vmlinux.h: $(VMLINUX_BTF) | $(O)/bpf
	$(call msg,GEN,$@)
	$(Q)$(BPFTOOL) btf dump file $< format c > $@

$(O)/bpf/%.bpf.o: bpf/%.bpf.c $(O)/vmlinux.h | $(O)/bpf
	$(call msg,BPF,$@)
	$(Q)$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -I$(O) -Ibpf -Ilib/include \
		$(CLANG_BPF_SYS_INCLUDES) -MD -MP -c $< -o $@

$(O)/bpf/%.skel.h: $(O)/bpf/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@

$(O)/lib $(O)/tools $(O)/tests $(O)/examples $(O)/bpf:
	$(Q)mkdir -p $@

-include $(ALL_OBJS:.o=.d) $(patsubst bpf/%.bpf.c,$(O)/bpf/%.bpf.d,$(BPF_SRCS)) \
	 $(addsuffix .d,$(HELPER_BINS))

# ---- tests ----

deps:
	$(Q)ci/install-deps.sh

# make check: packages, build, format, every test program; the last line is the total.
# The build runs a job per CPU unless make was given -j (the tests themselves run one at a time).
CHECK_JOBS = $(if $(filter -j%,$(MAKEFLAGS)),,-j$(shell nproc))
check: deps
	$(Q)$(MAKE) --no-print-directory $(CHECK_JOBS) all
	$(Q)$(MAKE) --no-print-directory format-check
	$(Q)O=$(O) SAN=$(SAN) tests/run.sh $(TEST_BINS) $(TEST_SCRIPTS)

test: all
	$(Q)O=$(O) SAN=$(SAN) tests/run.sh $(TEST_BINS) $(TEST_SCRIPTS)

# Every object depends on the headers it includes (also one of make check's tests).
depcheck: all
	$(Q)O=$(O) SAN=$(SAN) tests/test_build.sh

# Long crash-recovery soak: many more SIGKILL trials than make check runs.
stress: tests
	$(Q)MMSB_CRASH_TRIALS=$${MMSB_CRASH_TRIALS:-2000} $(O)/tests/test_crash

FORMAT_SRCS = $(shell git ls-files --cached --others --exclude-standard '*.c' '*.h' 2>/dev/null || find lib tools tests docs -name '*.[ch]')

format-check:
	$(call msg,FORMAT,check)
	$(Q)$(CLANG_FORMAT) --dry-run --Werror $(FORMAT_SRCS)

format:
	$(Q)$(CLANG_FORMAT) -i $(FORMAT_SRCS)

# ---- fuzz targets (libFuzzer): every parser has one ----

FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(O)/fuzz/%,$(FUZZ_SRCS))
FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Ilib/include -Ilib -I$(O)/gen

fuzz: $(FUZZ_BINS)

# The library is compiled once with the fuzzer's flags and linked into every target.
FUZZ_LIB_OBJS := $(patsubst lib/%.c,$(O)/fuzz/lib/%.o,$(LIB_SRCS)) \
		 $(if $(filter 1,$(PROBES)),$(O)/fuzz/lib/api_twins.o)

$(O)/fuzz/lib/%.o: lib/%.c $(wildcard lib/*.h) $(HEADERS) $(O)/gen/mmsb_probes.h | $(O)/fuzz
	$(Q)mkdir -p $(@D)
	$(Q)clang $(FUZZ_FLAGS) -c $< -o $@

$(O)/fuzz/lib/api_twins.o: $(O)/gen/api_twins.c $(wildcard lib/*.h) $(O)/gen/mmsb_probes.h | $(O)/fuzz
	$(Q)mkdir -p $(@D)
	$(Q)clang $(FUZZ_FLAGS) -c $< -o $@

$(O)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB_OBJS) $(filter %/probes_sema.o,$(LIB_OBJS)) | $(O)/fuzz
	$(call msg,FUZZ,$@)
	$(Q)clang $(FUZZ_FLAGS) -Itests/fuzz $< $(FUZZ_LIB_OBJS) $(filter %/probes_sema.o,$(LIB_OBJS)) \
		-o $@ -lpthread -lm

$(O)/fuzz:
	$(Q)mkdir -p $@

# ---- the demo: a real workload, then the log it left ----

demo: $(O)/examples/pipeline $(O)/mmsb-tlog
	$(Q)rm -rf $(O)/demo && mkdir -p $(O)/demo
	$(Q)$(O)/examples/pipeline $(O)/demo
	$(Q)$(O)/mmsb-tlog summary $(O)/demo/pipeline.tlog
	$(Q)$(O)/mmsb-tlog ckpt-info $(O)/demo/pipeline.ckpt

# ---- the bench under the tracer: where the suite's time goes ----
# BENCH_ARGS defaults to a quick run; `make trace-bench BENCH_ARGS=` runs the whole suite.

BENCH_ARGS ?= --quick
# ci/trace-bench.sh: under sudo every file and folder is made with the invoking user's rights.
trace-bench: all
	$(Q)O=$(O) ci/trace-bench.sh $(O)/perf $(BENCH_ARGS)

# ---- the GPU tier on a machine with a GPU (docs/gpu.md) ----

gpu-check:
	$(Q)O=$(O) ci/gpu-check.sh

# ---- CI perf capture: figures, traces, the regression gate (docs/ci.md) ----

perf-capture: all
	$(Q)O=$(O) ci/perf-capture.sh $(O)/perf-capture

# The regression gate: BASE (default: the merge base with main, or HEAD~1) against the work
# tree, CPU-bound keys by instruction counts, fsync- and thread-bound keys by paired runs.
BASE ?=
perf-gate:
	$(Q)O=$(O) ci/perf-gate.sh $(BASE)

# Every timing judgment, each measured interleaved inside one run (make check judges none).
perf-check: all
	$(Q)O=$(O) ci/perf-check.sh

# ---- install ----

$(O)/libmmsb.pc: lib/libmmsb.pc.in | $(O)/lib
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@VERSION@|$(VERSION)|' \
		$< > $@

install: lib tools $(O)/libmmsb.pc
	$(call msg,INSTALL,$(DESTDIR)$(PREFIX))
	$(Q)install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(PREFIX)/include/mmsb \
		$(DESTDIR)$(PREFIX)/bin
	$(Q)install -m 0755 $(O)/libmmsb.so.0 $(DESTDIR)$(LIBDIR)/libmmsb.so.0
	$(Q)$(if $(GPU_SO),install -m 0755 $(GPU_SO) $(DESTDIR)$(LIBDIR)/libmmsb-cuda.so,true)
	$(Q)ln -sf libmmsb.so.0 $(DESTDIR)$(LIBDIR)/libmmsb.so
	$(Q)install -m 0644 $(O)/libmmsb.a $(DESTDIR)$(LIBDIR)/libmmsb.a
	$(Q)install -m 0644 $(HEADERS) $(DESTDIR)$(PREFIX)/include/mmsb/
	$(Q)install -m 0644 $(O)/libmmsb.pc $(DESTDIR)$(LIBDIR)/pkgconfig/libmmsb.pc
	$(Q)install -d $(DESTDIR)$(PREFIX)/share/mmsb/profiles
	$(Q)install -m 0644 profiles/*.profile $(DESTDIR)$(PREFIX)/share/mmsb/profiles/
	$(Q)$(CC) $(LDFLAGS) $(TLOG_OBJS) -o $(DESTDIR)$(PREFIX)/bin/mmsb-tlog -L$(O) -lmmsb \
		-Wl,-rpath,$(LIBDIR) $(JSONC_LIBS)
	$(Q)$(CC) $(LDFLAGS) $(BENCH_OBJS) -o $(DESTDIR)$(PREFIX)/bin/mmsb-bench -L$(O) -lmmsb \
		-Wl,-rpath,$(LIBDIR) $(JSONC_LIBS) -lm
	$(Q)$(CC) $(LDFLAGS) $(TRACE_OBJS) -o $(DESTDIR)$(PREFIX)/bin/mmsb-trace -L$(O) -lmmsb \
		-Wl,-rpath,$(LIBDIR) $(JSONC_LIBS) $(LIBBPF_LIBS) $(DW_LIBS) -lelf -lpfm \
		$(PROTOBUF_C_LIBS) $(ZLIB_LIBS) $(MHD_LIBS)

uninstall:
	$(Q)rm -f $(DESTDIR)$(LIBDIR)/libmmsb.so* $(DESTDIR)$(LIBDIR)/libmmsb.a \
		$(DESTDIR)$(LIBDIR)/libmmsb-cuda.so \
		$(DESTDIR)$(LIBDIR)/pkgconfig/libmmsb.pc $(addprefix $(DESTDIR)$(PREFIX)/bin/,$(TOOLS))
	$(Q)rm -rf $(DESTDIR)$(PREFIX)/include/mmsb $(DESTDIR)$(PREFIX)/share/mmsb

clean:
	$(call msg,CLEAN,$(O))
	$(Q)rm -rf $(O)
