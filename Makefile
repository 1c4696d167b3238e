# Berth: one Makefile for every component, binary and test.
#   make            build everything into $(BUILD) (default build/)
#   make run        install dependencies, build, run the main job (see README.md)
#   make check      install dependencies, build, run every test (plain and ASan+UBSan), fuzz, VM
# Components are static archives; each binary and test links the ones it needs.

BUILD    ?= build
SANITIZE ?= 0
CC       ?= gcc
MUSL_CC  ?= musl-gcc
V        ?= 0
Q        := $(if $(filter 1,$(V)),,@)

PKGS     := libcjson libcgroup libseccomp libcap libsystemd libcurl libarchive libcrypto libmnl \
            libnftables libmicrohttpd sqlite3
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
            -Wno-unused-parameter
# One version for the programs (--version) and the packages (make deb): the file VERSION.
VERSION  := $(shell cat VERSION)
BASEFLAGS := -std=gnu11 -g -D_GNU_SOURCE -DBERTH_VERSION='"$(VERSION)"' -I. -fno-common \
             -fstack-protector-strong -fPIE $(WARN)
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)

ifeq ($(SANITIZE),1)
  OPT     := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
  LDSAN   := -fsanitize=address,undefined
else
  OPT     := -O2 -D_FORTIFY_SOURCE=2
  LDSAN   :=
endif

CFLAGS  += $(BASEFLAGS) $(OPT) $(PKG_CFLAGS) -MMD -MP
# --as-needed: a program links only the shared libraries its objects use (berth-runtime does not
# load libsystemd, for one).
LDFLAGS += -pie -Wl,-z,relro,-z,now -Wl,--as-needed $(LDSAN)

# Component libraries, in link order (a component may use those after it).
COMPONENTS := agent controlplane images net runtime cgroups lib
lib_SRCS          := $(wildcard lib/*.c)
cgroups_SRCS      := $(wildcard cgroups/*.c)
runtime_SRCS      := $(wildcard runtime/*.c)
net_SRCS          := $(wildcard net/*.c)
images_SRCS       := $(wildcard images/*.c)
controlplane_SRCS := $(wildcard controlplane/*.c)
agent_SRCS        := $(wildcard agent/*.c)
ARCHIVES := $(foreach c,$(COMPONENTS),$(BUILD)/lib$(c).a)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

$(foreach c,$(COMPONENTS),$(eval $(BUILD)/lib$(c).a: $(call obj,$($(c)_SRCS))))
$(BUILD)/lib%.a:
	@mkdir -p $(@D)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

# Programs: one directory of sources each, linked against the component archives.
PROGRAMS := berth-runtime $(if $(wildcard controlplane/daemon/*.c),berth-control) \
            $(if $(wildcard agent/daemon/*.c),berth-agent)
berth-runtime_SRCS := $(wildcard runtime/cli/*.c)
berth-control_SRCS := $(wildcard controlplane/daemon/*.c)
berth-agent_SRCS   := $(wildcard agent/daemon/*.c)

define program
$(BUILD)/bin/$(1): $(call obj,$($(1)_SRCS)) $(ARCHIVES)
	@mkdir -p $$(@D)
	@echo "  LD      $$@"
	$(Q)$(CC) $(LDFLAGS) -o $$@ $(call obj,$($(1)_SRCS)) $(ARCHIVES) $(PKG_LIBS)
endef
$(foreach p,$(PROGRAMS),$(eval $(call program,$(p))))

# berth-shim links only libc, statically against musl, so an idle shim stays tiny
# (docs/shim.md). The sanitizer build uses the normal compiler so ASan+UBSan cover it too.
SHIM_SRCS := $(wildcard runtime/shim/*.c) lib/error.c lib/fs.c lib/clock.c lib/strv.c lib/log.c
ifeq ($(SANITIZE),1)
SHIM_CC     := $(CC)
SHIM_CFLAGS := $(BASEFLAGS) $(OPT)
SHIM_LDFLAGS := $(LDSAN)
else
SHIM_CC     := $(MUSL_CC)
SHIM_CFLAGS := $(BASEFLAGS) -Os -isystem $(BUILD)/musl-include -fno-stack-protector
SHIM_LDFLAGS := -static -Wl,--gc-sections -Wl,-z,norelro
endif
SHIM_OBJS := $(patsubst %.c,$(BUILD)/shim-obj/%.o,$(SHIM_SRCS))

# musl's headers do not carry the kernel's UAPI headers; borrow the system ones.
$(BUILD)/musl-include/.stamp:
	@mkdir -p $(@D)
	$(Q)ln -sfn /usr/include/linux $(@D)/linux
	$(Q)ln -sfn /usr/include/asm-generic $(@D)/asm-generic
	$(Q)ln -sfn /usr/include/$(shell gcc -dumpmachine)/asm $(@D)/asm
	@touch $@

$(BUILD)/shim-obj/%.o: %.c $(BUILD)/musl-include/.stamp
	@mkdir -p $(@D)
	@echo "  CC(shim) $<"
	$(Q)$(SHIM_CC) $(SHIM_CFLAGS) -ffunction-sections -fdata-sections -MMD -MP -c $< -o $@

$(BUILD)/bin/berth-shim: $(SHIM_OBJS)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	$(Q)$(SHIM_CC) $(SHIM_LDFLAGS) -o $@ $^

BINS := $(foreach p,$(PROGRAMS),$(BUILD)/bin/$(p)) $(BUILD)/bin/berth-shim $(BUILD)/bin/berth-init

# berth-init is PID 1 inside containers with initProcessEnabled, bound from the host into any
# image: static (musl), libc only, in every build (a sanitizer runtime could not run there).
$(BUILD)/bin/berth-init: runtime/init/init.c $(BUILD)/musl-include/.stamp
	@mkdir -p $(@D)
	@echo "  CC(static) $@"
	$(Q)$(MUSL_CC) $(BASEFLAGS) -Os -isystem $(BUILD)/musl-include -static -o $@ $<

# berth-probe runs inside test containers: static (musl), so any rootfs can run it.
$(BUILD)/tests/berth-probe: tests/probe/berth-probe.c $(BUILD)/musl-include/.stamp
	@mkdir -p $(@D)
	@echo "  CC(static) $@"
	$(Q)$(MUSL_CC) $(BASEFLAGS) -Os -isystem $(BUILD)/musl-include -static -o $@ $<

# Tests: every tests/{unit,integration}/test_*.c is one Check binary.
UNIT_TESTS  := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
INTEG_TESTS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/integration/test_*.c))
TEST_HELPERS := $(call obj,$(wildcard tests/support/*.c))
# Tools the VM checks run inside the guest (tests/vm/*.c), linked like the tests.
VM_TOOLS    := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/vm/*.c))

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TEST_HELPERS) $(ARCHIVES)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(TEST_HELPERS) $(ARCHIVES) $(PKG_LIBS) $(CHECK_LIBS)

# bench/sched times the placement engine alone (bench/README.md); linked like the tests.
BENCH_TOOLS := $(BUILD)/bench/sched
$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(ARCHIVES)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(ARCHIVES) $(PKG_LIBS)

# Keep objects of pattern-built programs (tests) so a rebuild only recompiles what changed.
.SECONDARY:

.PHONY: all deps run stop sample check test unit integration asan fuzz vm-check bench format clean rootfs deb
.DEFAULT_GOAL := all

all: $(BINS) $(UNIT_TESTS) $(INTEG_TESTS) $(VM_TOOLS) $(BENCH_TOOLS) $(BUILD)/tests/berth-probe

deps:
	@packaging/deps.sh

# The busybox root filesystem that the sample container and the tests run.
rootfs: $(BUILD)/rootfs/busybox/bin/busybox
$(BUILD)/rootfs/busybox/bin/busybox: tests/fixtures/mkrootfs.sh
	$(Q)tests/fixtures/mkrootfs.sh $(BUILD)/rootfs/busybox

# The main job: berth-control + berth-agent on this host and a sample web task (docs/agent.md).
run: deps
	$(Q)$(MAKE) --no-print-directory $(BINS) sample
	$(Q)packaging/main-job.sh $(BUILD)

stop:
	$(Q)packaging/main-job.sh $(BUILD) stop

test: all rootfs
	$(Q)BUILD=$(BUILD) tests/run.sh $(UNIT_TESTS) $(INTEG_TESTS)

unit: all
	$(Q)BUILD=$(BUILD) tests/run.sh $(UNIT_TESTS)

integration: all rootfs
	$(Q)BUILD=$(BUILD) tests/run.sh $(INTEG_TESTS)

asan:
	$(Q)$(MAKE) --no-print-directory BUILD=$(BUILD)/asan SANITIZE=1 test

FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
fuzz:
	$(Q)$(MAKE) --no-print-directory -f tests/fuzz/fuzz.mk BUILD=$(BUILD)/fuzz run

# The main job's sample image (busybox httpd), also imported by the VM's package test.
sample: $(BUILD)/sample/sample-httpd.tar
$(BUILD)/sample/sample-httpd.tar: tests/fixtures/mksample.sh
	$(Q)tests/fixtures/mksample.sh $(BUILD)/sample

vm-check: all rootfs deb sample
	$(Q)BUILD=$(BUILD) tests/vm/run.sh

# berth-agent and berth-control .debs in $(BUILD)/deb (docs/packaging.md).
deb: $(BINS)
	$(Q)packaging/deb/build.sh $(BUILD) $(BUILD)/deb

check: deps
	$(Q)$(MAKE) --no-print-directory all rootfs
	$(Q)tests/check.sh $(BUILD)

bench: all rootfs
	$(Q)BUILD=$(BUILD) bench/run.sh

format:
	$(Q)clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj $(BUILD)/shim-obj -name '*.d' 2>/dev/null)
