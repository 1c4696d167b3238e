# Fuzz targets: every tests/fuzz/fuzz_*.c is a libFuzzer target built with clang against the
# component sources (ASan+UBSan). `run` fuzzes each for FUZZ_SECONDS from its seed corpus.
# The component sources are compiled once into one archive that every target links.
BUILD ?= build/fuzz
FUZZ_SECONDS ?= 20
FCC := clang
PKGS := libcjson libcgroup libseccomp libcap libsystemd libcurl libarchive libcrypto libmnl \
        libnftables libmicrohttpd sqlite3
FCFLAGS := -std=gnu11 -g -O1 -D_GNU_SOURCE -DBERTH_VERSION='"$(shell cat VERSION)"' -I. -Wall -Wextra -Werror -Wno-unused-parameter \
           -fsanitize=fuzzer-no-link,address,undefined $(shell pkg-config --cflags $(PKGS))
FLIBS := $(shell pkg-config --libs $(PKGS))
LIB_SRCS := $(wildcard lib/*.c) $(wildcard cgroups/*.c) $(wildcard runtime/*.c) \
            $(wildcard net/*.c) $(wildcard images/*.c) $(wildcard controlplane/*.c) \
            $(wildcard agent/*.c)
LIB_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
TARGETS := $(patsubst tests/fuzz/%.c,$(BUILD)/%,$(wildcard tests/fuzz/fuzz_*.c))

all: $(TARGETS)

# -MMD: a changed header recompiles every object that includes it (a struct that grew must not
# be seen at two sizes in one target).
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	@$(FCC) $(FCFLAGS) -MMD -MP -c $< -o $@

-include $(LIB_OBJS:.o=.d) $(BUILD)/obj/runtime/shim/jsonfmt.d

$(BUILD)/libberth-fuzz.a: $(LIB_OBJS)
	@rm -f $@ && ar rcs $@ $^

# Targets for the shim's own code link the shim source they test (the shim is not a library).
$(BUILD)/fuzz_shim_json: tests/fuzz/fuzz_shim_json.c $(BUILD)/obj/runtime/shim/jsonfmt.o $(BUILD)/libberth-fuzz.a
	@echo "  FUZZCC  $@"
	@$(FCC) $(FCFLAGS) -fsanitize=fuzzer -o $@ $^ $(FLIBS)

$(BUILD)/%: tests/fuzz/%.c $(BUILD)/libberth-fuzz.a
	@echo "  FUZZCC  $@"
	@$(FCC) $(FCFLAGS) -fsanitize=fuzzer -o $@ $^ $(FLIBS)

run: all
	@BUILD=$(BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh $(TARGETS)

.SECONDARY:
.PHONY: all run
