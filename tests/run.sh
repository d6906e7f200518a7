#!/bin/sh
# The whole test suite: (1) unit, golden and CLI tests on the optimized build; (2) the same tests on
# an AddressSanitizer (leak detection on) + UndefinedBehaviorSanitizer (float-cast-overflow included)
# build; (3) every parser's fuzz target for a time budget (libFuzzer from clang when available, else a
# gcc driver with the sanitizers).
#   sh tests/run.sh [opt] [asan] [fuzz]     stages to run (default: all three)
#   FUZZ_SECONDS=N                          seconds per fuzz target (default 60; `make fuzz-long`: 600)
# Prints one closing line "N passed, N failed, N skipped" over the stages run.
set -u
cd "$(dirname "$0")/.."
JOBS=${JOBS:-2}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
SAN_CHECKS="address,undefined,float-cast-overflow"
SAN="-O1 -g -fsanitize=$SAN_CHECKS -fno-sanitize-recover=all -fno-omit-frame-pointer"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
passed=0
failed=0
skipped=0
stages=${*:-opt asan fuzz}
mkdir -p build

tally() { # adds the last "N passed, N failed[, N skipped]" of a log; a log without one is a failure
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$1" | tail -n 1)
    if [ -z "$line" ]; then failed=$((failed + 1)); return; fi
    p=${line%% passed*}; f=${line#*, }; f=${f%% failed*}
    s=0
    case "$line" in *skipped*) s=${line##*failed, }; s=${s%% skipped*} ;; esac
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
}

has_stage() { case " $stages " in *" $1 "*) return 0 ;; esac; return 1; }

if has_stage opt; then
    echo "== build"
    if make -s -j"$JOBS" build/bitrom build/bitrom-tests; then
        echo "== tests (optimized build)"
        BITROM=build/bitrom build/bitrom-tests 2>&1 | tee build/tests.log
        tally build/tests.log
    else
        failed=$((failed + 1))
    fi
fi

if has_stage asan; then
    echo "== tests (ASan + LSan + UBSan build)"
    if make -s -j"$JOBS" BUILD=build-asan CFLAGS="$SAN" LDFLAGS="-fsanitize=$SAN_CHECKS" build-asan/bitrom build-asan/bitrom-tests; then
        # BITROM_SANITIZED: the long perplexity table runs only in the optimized pass
        BITROM_SANITIZED=1 BITROM=build-asan/bitrom build-asan/bitrom-tests 2>&1 | tee build/tests-asan.log
        tally build/tests-asan.log
    else
        failed=$((failed + 1))
    fi
fi

# Builds one fuzz target into build-fuzz/NAME; prints nothing on success.
build_fuzzer() {
    target=$1 name=$2
    if [ "$use_libfuzzer" = 1 ]; then
        clang -Isrc -D_GNU_SOURCE -std=c11 -O1 -g -fsanitize=fuzzer,$SAN_CHECKS "$target" $clang_objs -lm -lpthread -o "build-fuzz/$name"
    else
        cc -Isrc -D_GNU_SOURCE -std=c11 $SAN "$target" fuzz/standalone.c build-fuzz/libbitrom.a -lm -lpthread -o "build-fuzz/$name"
    fi
}

# Runs one built fuzz target for FUZZ_SECONDS; writes build-fuzz/NAME.status (ok or FAILED).
run_fuzzer() {
    name=$1
    corpus=fuzz/corpus/${name#fuzz_}
    [ -d "$corpus" ] || corpus=fuzz/corpus
    work=build-fuzz/corpus-$name; rm -rf "$work"; mkdir -p "$work"
    if [ "$use_libfuzzer" = 1 ]; then
        set -- -max_total_time="$FUZZ_SECONDS" -max_len=65536 -timeout=10 -rss_limit_mb=4096 -artifact_prefix=build-fuzz/"$name"- "$work" "$corpus"
    else
        set -- -max_total_time="$FUZZ_SECONDS" "$corpus"
    fi
    if "build-fuzz/$name" "$@" > "build-fuzz/$name.log" 2>&1; then
        echo ok > "build-fuzz/$name.status"
    else
        echo FAILED > "build-fuzz/$name.status"
    fi
}

if has_stage fuzz; then
    echo "== fuzzing ($FUZZ_SECONDS s per target, $JOBS at a time)"
    mkdir -p build-fuzz
    use_libfuzzer=0
    if command -v clang >/dev/null 2>&1; then
        printf 'int LLVMFuzzerTestOneInput(const unsigned char*d,unsigned long n){return 0;}\n' > build/probe.c
        clang -fsanitize=fuzzer build/probe.c -o build/probe 2>/dev/null && use_libfuzzer=1
    fi
    clang_objs=""
    if [ $use_libfuzzer = 1 ]; then
        # libFuzzer needs its objects built by clang too
        make -s BUILD=build-fuzz build-fuzz/gen/techdb_data.c || failed=$((failed + 1))
        mkdir -p build-fuzz/clang
        for src in src/util/*.c src/model/*.c src/model/*/*.c src/kernels/*.c src/chip/*.c src/report/*.c src/serve/*.c build-fuzz/gen/techdb_data.c; do
            [ -f "$src" ] || continue
            obj=build-fuzz/clang/$(echo "$src" | tr / _).o
            [ "$obj" -nt "$src" ] || clang -Isrc -D_GNU_SOURCE -std=c11 -O1 -g -fsanitize=fuzzer-no-link,$SAN_CHECKS -c "$src" -o "$obj" || failed=$((failed + 1))
            clang_objs="$clang_objs $obj"
        done
    else
        make -s -j"$JOBS" BUILD=build-fuzz CFLAGS="$SAN" build-fuzz/libbitrom.a >/dev/null || failed=$((failed + 1))
    fi
    names=""
    for target in fuzz/fuzz_*.c; do
        name=$(basename "$target" .c)
        rm -f "build-fuzz/$name.status"
        if build_fuzzer "$target" "$name"; then names="$names $name"; else failed=$((failed + 1)); echo "fuzz $name: build FAILED"; fi
    done
    # JOBS targets side by side: each is single-threaded
    running=0
    for name in $names; do
        run_fuzzer "$name" &
        running=$((running + 1))
        if [ $running -ge "$JOBS" ]; then wait; running=0; fi
    done
    wait
    for name in $names; do
        if [ "$(cat "build-fuzz/$name.status" 2>/dev/null)" = ok ]; then
            passed=$((passed + 1)); echo "fuzz $name: ok ($(grep -E '^(Done|#[0-9]+)' "build-fuzz/$name.log" | tail -n 1))"
        else
            failed=$((failed + 1)); echo "fuzz $name: FAILED"; tail -n 30 "build-fuzz/$name.log"
        fi
    done
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
