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

# `bitrom sweep --mpi` needs MPI (Debian: mpich and libmpich-dev): used when `mpicc -show` gives flags
# that compile and link an MPI program, or forced with MPI=1 (MPI=0 builds without). Only bitrom-mpi,
# built next to bitrom from the same objects and src/sweep/mpi.c compiled for MPI, links it; bitrom
# runs bitrom-mpi for --mpi and says "built without MPI" when it is not there.
MPI_SHOW := $(shell mpicc -show 2>/dev/null || mpicc --showme 2>/dev/null)
MPI_CPP  := $(filter -I%,$(MPI_SHOW))
MPI_LIBS := $(filter -L% -l% -Wl%,$(MPI_SHOW))
ifeq ($(origin MPI),undefined)
MPI := $(if $(MPI_SHOW),$(shell printf '\043include <mpi.h>\nint main(void) { return MPI_Init(0, 0); }\n' | \
          $(CC) -x c - $(MPI_CPP) $(MPI_LIBS) -o /dev/null 2>/dev/null && echo 1),)
endif

LIB_SRC  = $(wildcard src/util/*.c src/model/*.c src/model/*/*.c src/kernels/*.c src/chip/*.c src/report/*.c src/serve/*.c src/rtl/*.c src/sweep/*.c src/train/*.c)
CLI_SRC  = $(wildcard src/cli/*.c)
TEST_SRC = $(wildcard tests/*.c)
BENCH_SRC = $(wildcard bench/*.c)

BUILD   ?= build
LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/techdb_data.o $(BUILD)/gen/rtl_sources.o $(BUILD)/gen/version.o
CLI_OBJ  = $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ = $(TEST_SRC:%.c=$(BUILD)/%.o)
BENCH_BIN = $(BENCH_SRC:%.c=$(BUILD)/%)

# The RTL (rtl/*.v). With verilator installed, bitrom_top is compiled for each macro shape of
# VL_MODELS (name:rows:cols:trimla_columns; keep src/rtl/vsim_verilator.cpp in step) into build-vl/,
# shared by every BUILD (it does not depend on CFLAGS), and linked in: --backend rtl. Without
# verilator, src/rtl/vsim_stub.c says so at run time and everything else builds as before.
RTL_V      = $(wildcard rtl/*.v)
RTL_FILES  = $(RTL_V) $(wildcard rtl/tb/*.v) rtl/synth.ys
VERILATOR ?= $(shell command -v verilator 2>/dev/null)
VL_BUILD   = build-vl
VL_MODELS  = full:2048:1024:8 small:64:32:4
ifneq ($(VERILATOR),)
VL_ROOT   := $(shell $(VERILATOR) --getenv VERILATOR_ROOT 2>/dev/null)
VL_NAMES   = $(foreach m,$(VL_MODELS),$(word 1,$(subst :, ,$(m))))
VL_LIBS    = $(foreach n,$(VL_NAMES),$(VL_BUILD)/$(n)/Vbitrom_$(n)__ALL.a)
VL_OBJ     = $(VL_BUILD)/vsim_verilator.o $(VL_LIBS) $(VL_BUILD)/verilated.o $(VL_BUILD)/verilated_threads.o
VL_CXX     = $(CXX) -O2 -std=c++17 -I$(VL_ROOT)/include -I$(VL_ROOT)/include/vltstd
CPPFLAGS  += -DBR_HAVE_VERILATOR
LINK       = $(CXX)
LDLIBS    += -lstdc++
else
VL_OBJ     =
LINK       = $(CC)
endif

.PHONY: FORCE all test test-fast test-asan fuzz fuzz-long clean bench synth test-rtl-full mutate
all: $(BUILD)/bitrom

$(BUILD)/%.o: %.c $(wildcard src/*/*.h src/*/*/*.h) $(wildcard tests/*.h) tests/tests.def
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) -c $< -o $@

# The technology database is data/tech.json, embedded as a C string (od is in coreutils).
$(BUILD)/gen/techdb_data.c: data/tech.json
	@mkdir -p $(dir $@)
	{ echo 'extern const char br_techdb_json[]; const char br_techdb_json[] = {'; od -An -v -tx1 $< | sed 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g'; echo '0x00};'; } > $@

$(BUILD)/gen/techdb_data.o: $(BUILD)/gen/techdb_data.c
	$(CC) $(CFLAGS) -c $< -o $@

# The version every sweep result line carries: `git describe`, rewritten only when it changes.
$(BUILD)/gen/version.c: FORCE
	@mkdir -p $(dir $@)
	@v=$$(git describe --always --dirty 2>/dev/null || echo unknown); \
	  printf 'extern const char br_version[]; const char br_version[] = "%s";\n' "$$v" > $@.tmp; \
	  if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

$(BUILD)/gen/version.o: $(BUILD)/gen/version.c
	$(CC) $(CFLAGS) -c $< -o $@

FORCE:

# The RTL sources, embedded so `bitrom rtl` writes a complete design anywhere.
$(BUILD)/gen/rtl_sources.c: $(RTL_FILES)
	@mkdir -p $(dir $@)
	{ i=0; for f in $^; do echo "static const char f$$i[] = {"; od -An -v -tx1 $$f | sed 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g'; echo '0x00};'; i=$$((i+1)); done; \
	  echo 'extern const char *const br_rtl_source_names[]; extern const char *const br_rtl_source_texts[];'; \
	  printf 'const char *const br_rtl_source_names[] = {'; for f in $^; do printf '"%s", ' "$$f"; done; echo '0};'; \
	  printf 'const char *const br_rtl_source_texts[] = {'; i=0; for f in $^; do printf 'f%d, ' $$i; i=$$((i+1)); done; echo '0};'; } > $@

$(BUILD)/gen/rtl_sources.o: $(BUILD)/gen/rtl_sources.c
	$(CC) $(CFLAGS) -c $< -o $@

$(VL_BUILD)/%/.stamp: $(RTL_V)
	@mkdir -p $(dir $@)
	m=$$(echo "$(VL_MODELS)" | tr ' ' '\n' | grep "^$*:"); set -- $$(echo $$m | tr ':' ' '); \
	$(VERILATOR) --cc --build -j 2 -O3 --x-assign fast --x-initial fast --noassert -MAKEFLAGS OPT_FAST=-O2 -Wno-fatal -Wno-WIDTH --top-module bitrom_top \
	  -GROWS=$$2 -GCOLS=$$3 -GTC=$$4 --prefix Vbitrom_$* -Mdir $(VL_BUILD)/$* $(RTL_V) > $(VL_BUILD)/$*.log 2>&1 || { tail -n 20 $(VL_BUILD)/$*.log; exit 1; }
	touch $@

$(foreach n,$(VL_NAMES),$(eval $(VL_BUILD)/$(n)/Vbitrom_$(n)__ALL.a: $(VL_BUILD)/$(n)/.stamp ; @test -f $$@))

$(VL_BUILD)/verilated.o $(VL_BUILD)/verilated_threads.o: $(VL_BUILD)/%.o:
	@mkdir -p $(VL_BUILD)
	$(VL_CXX) -c $(VL_ROOT)/include/$*.cpp -o $@

$(VL_BUILD)/vsim_verilator.o: src/rtl/vsim_verilator.cpp src/rtl/vsim.h src/util/error.h $(foreach n,$(VL_NAMES),$(VL_BUILD)/$(n)/.stamp)
	$(VL_CXX) -Isrc $(foreach n,$(VL_NAMES),-I$(VL_BUILD)/$(n)) -c $< -o $@

# rebuilt from scratch: `ar r` keeps members of sources that were moved or deleted
$(BUILD)/libbitrom.a: $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

MPI_BIN = $(if $(filter 1,$(MPI)),$(BUILD)/bitrom-mpi)

$(BUILD)/bitrom: $(CLI_OBJ) $(BUILD)/libbitrom.a $(VL_OBJ) | $(MPI_BIN)
	$(LINK) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

# bitrom with src/sweep/mpi.c built for MPI: its object comes before the library, whose MPI-less
# mpi.o is then not linked.
$(BUILD)/mpi/sweep_mpi.o: src/sweep/mpi.c $(wildcard src/*/*.h src/*/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -DBR_HAVE_MPI $(MPI_CPP) $(WARN) $(CFLAGS) -c $< -o $@

$(BUILD)/bitrom-mpi: $(CLI_OBJ) $(BUILD)/mpi/sweep_mpi.o $(BUILD)/libbitrom.a $(VL_OBJ)
	$(LINK) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS) $(MPI_LIBS)

$(BUILD)/bitrom-tests: $(TEST_OBJ) $(BUILD)/libbitrom.a $(VL_OBJ)
	$(LINK) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

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

# Mutation testing (tools/mutate.sh, the list in tools/mutations.txt): ARGS="--list", "--full" or ids.
mutate:
	sh tools/mutate.sh $(ARGS)

# The RTL's full-macro vectors (2048 x 1024: row, K and partial tiles, register widths 4..10 saturating
# and wrapping, 4- and 8-bit activations, one K-tiled matrix through iverilog); `make test` runs the
# same kinds of vectors on small macros.
test-rtl-full: $(BUILD)/bitrom $(BUILD)/bitrom-tests
	BITROM_RTL_FULL=1 BITROM=$(BUILD)/bitrom $(BUILD)/bitrom-tests test_rtl_full_macro test_rtl_stories3m_matrices

# Synthesis of the default macro's periphery (OSU 0.18 um cells): cells, area at 180 and 65 nm, the
# periphery's share of the macro, the critical path; HW=CONFIG.json for another design point.
SYNTH_DIR ?= $(BUILD)/synth
synth: $(BUILD)/bitrom
	$(BUILD)/bitrom rtl -o $(SYNTH_DIR) --synth $(if $(HW),--hw $(HW))

test-fast: $(BUILD)/bitrom $(BUILD)/bitrom-tests
	BITROM=$(BUILD)/bitrom $(BUILD)/bitrom-tests

# The micro-benchmarks behind BENCHMARKS.md's kernel measurements (the scripts in bench/ drive
# build/bitrom itself).
bench: $(BUILD)/bitrom $(BENCH_BIN)

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BUILD)/libbitrom.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

clean:
	rm -rf build build-asan build-fuzz build-vl build-mut
