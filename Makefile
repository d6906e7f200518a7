# bitrom: C11, libc, libm, pthreads. `make` builds build/bitrom; `make test` runs the whole suite
# (unit + golden tests, then the same under ASan+LSan/UBSan, then each fuzzer for 60 s).
CC      ?= cc
CFLAGS  ?= -O2 -g
WARN     = -std=c11 -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wstrict-prototypes -Wvla -Wno-format-truncation
CPPFLAGS = -Isrc -D_GNU_SOURCE
LDLIBS   = -lm -lpthread
# `bitrom server` needs libmicrohttpd (Debian: libmicrohttpd-dev), found by pkg-config or, without
# pkg-config, by linking a probe; without it the rest builds and the command says so.
MHD_LIBS := $(shell pkg-config --libs libmicrohttpd 2>/dev/null || \
              (printf '\043include <microhttpd.h>\nint main(void) { return MHD_is_feature_supported(MHD_FEATURE_IPv6) < 0; }\n' | \
               $(CC) -x c - -lmicrohttpd -o /dev/null 2>/dev/null && echo -lmicrohttpd))
MHD_CFLAGS := $(shell pkg-config --cflags libmicrohttpd 2>/dev/null)
ifneq ($(MHD_LIBS),)
CPPFLAGS += -DBR_HAVE_MHD $(MHD_CFLAGS)
LDLIBS   += $(MHD_LIBS)
endif

LIB_SRC  = $(wildcard src/util/*.c src/model/*.c src/kernels/*.c src/chip/*.c src/report/*.c src/serve/*.c)
CLI_SRC  = $(wildcard src/cli/*.c)
TEST_SRC = $(wildcard tests/*.c)
BENCH_SRC = $(wildcard bench/*.c)

BUILD   ?= build
LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/techdb_data.o
CLI_OBJ  = $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ = $(TEST_SRC:%.c=$(BUILD)/%.o)
BENCH_BIN = $(BENCH_SRC:%.c=$(BUILD)/%)

.PHONY: all test test-fast test-asan fuzz fuzz-long clean bench
all: $(BUILD)/bitrom

$(BUILD)/%.o: %.c $(wildcard src/*/*.h) $(wildcard tests/*.h) tests/tests.def
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) -c $< -o $@

# The technology database is data/tech.json, embedded as a C string (od is in coreutils).
$(BUILD)/gen/techdb_data.c: data/tech.json
	@mkdir -p $(dir $@)
	{ echo 'extern const char br_techdb_json[]; const char br_techdb_json[] = {'; od -An -v -tx1 $< | sed 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g'; echo '0x00};'; } > $@

$(BUILD)/gen/techdb_data.o: $(BUILD)/gen/techdb_data.c
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libbitrom.a: $(LIB_OBJ)
	ar rcs $@ $^

$(BUILD)/bitrom: $(CLI_OBJ) $(BUILD)/libbitrom.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/bitrom-tests: $(TEST_OBJ) $(BUILD)/libbitrom.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

# The suite: normal build, then sanitizer build, then fuzzing (tests/run.sh drives all three;
# each of the targets below runs one stage of it).
test:
	sh tests/run.sh

test-asan:
	sh tests/run.sh asan

fuzz:
	sh tests/run.sh fuzz

# Ten minutes per fuzz target instead of one (the budget `make test` gives).
fuzz-long:
	FUZZ_SECONDS=600 sh tests/run.sh fuzz

test-fast: $(BUILD)/bitrom $(BUILD)/bitrom-tests
	BITROM=$(BUILD)/bitrom $(BUILD)/bitrom-tests

# The micro-benchmarks behind BENCHMARKS.md's kernel measurements (the scripts in bench/ drive
# build/bitrom itself).
bench: $(BUILD)/bitrom $(BENCH_BIN)

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BUILD)/libbitrom.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

clean:
	rm -rf build build-asan build-fuzz
