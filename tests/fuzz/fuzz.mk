# Fuzz targets: every tests/fuzz/fuzz_*.c is a libFuzzer target built with clang against the
# component sources (ASan+UBSan). `run` fuzzes each for FUZZ_SECONDS from its seed corpus.
BUILD ?= build/fuzz
FUZZ_SECONDS ?= 20
FCC := clang
PKGS := libcjson libcgroup libseccomp libcap libsystemd libcurl libarchive libcrypto libmnl \
        libnftables libmicrohttpd sqlite3
FCFLAGS := -std=gnu11 -g -O1 -D_GNU_SOURCE -I. -Wall -Wextra -Werror -Wno-unused-parameter \
           -fsanitize=fuzzer,address,undefined $(shell pkg-config --cflags $(PKGS))
FLIBS := $(shell pkg-config --libs $(PKGS))
LIB_SRCS := $(wildcard lib/*.c) $(wildcard cgroups/*.c) $(wildcard runtime/*.c) \
            $(wildcard net/*.c) $(wildcard images/*.c) $(wildcard controlplane/*.c)
TARGETS := $(patsubst tests/fuzz/%.c,$(BUILD)/%,$(wildcard tests/fuzz/fuzz_*.c))

all: $(TARGETS)

# Targets for the shim's own code link the shim source they test (the shim is not a library).
$(BUILD)/fuzz_shim_json: tests/fuzz/fuzz_shim_json.c runtime/shim/jsonfmt.c $(LIB_SRCS)
	@mkdir -p $(@D)
	@echo "  FUZZCC  $@"
	@$(FCC) $(FCFLAGS) -o $@ $^ $(FLIBS)

$(BUILD)/%: tests/fuzz/%.c $(LIB_SRCS)
	@mkdir -p $(@D)
	@echo "  FUZZCC  $@"
	@$(FCC) $(FCFLAGS) -o $@ $< $(LIB_SRCS) $(FLIBS)

run: all
	@BUILD=$(BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh $(TARGETS)

.PHONY: all run
