#!/bin/sh
# The whole test suite: (1) unit, golden and CLI tests on the optimized build; (2) the same tests on
# an AddressSanitizer + UndefinedBehaviorSanitizer build; (3) every parser's fuzz target for a bounded
# number of inputs (libFuzzer from clang when available, else a gcc driver with the sanitizers).
# Prints one closing line "N passed, N failed" over all three.
set -u
cd "$(dirname "$0")/.."
JOBS=${JOBS:-2}
FUZZ_RUNS=${FUZZ_RUNS:-20000}
SAN="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
passed=0
failed=0

tally() { # reads the last "N passed, N failed" of a log
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$1" | tail -n 1)
    if [ -z "$line" ]; then failed=$((failed + 1)); return; fi
    p=${line%% passed*}; f=${line#*, }; f=${f%% failed*}
    passed=$((passed + p)); failed=$((failed + f))
}

echo "== build"
make -s -j"$JOBS" build/bitrom build/bitrom-tests || { echo "0 passed, 1 failed"; exit 1; }

echo "== tests (optimized build)"
BITROM=build/bitrom build/bitrom-tests 2>&1 | tee build/tests.log
tally build/tests.log

echo "== tests (ASan + UBSan build)"
if make -s -j"$JOBS" BUILD=build-asan CFLAGS="$SAN" LDFLAGS="-fsanitize=address,undefined" build-asan/bitrom build-asan/bitrom-tests; then
    # BITROM_SANITIZED: the long perplexity table runs only in the optimized pass
    BITROM_SANITIZED=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
        BITROM=build-asan/bitrom build-asan/bitrom-tests 2>&1 | tee build/tests-asan.log
    tally build/tests-asan.log
else
    failed=$((failed + 1))
fi

echo "== fuzzing ($FUZZ_RUNS inputs per target)"
make -s -j"$JOBS" BUILD=build-fuzz CFLAGS="$SAN" build-fuzz/libbitrom.a >/dev/null || failed=$((failed + 1))
use_libfuzzer=0
if command -v clang >/dev/null 2>&1; then
    printf 'int LLVMFuzzerTestOneInput(const unsigned char*d,unsigned long n){return 0;}\n' > build/probe.c
    clang -fsanitize=fuzzer build/probe.c -o build/probe 2>/dev/null && use_libfuzzer=1
fi
for target in fuzz/fuzz_*.c; do
    name=$(basename "$target" .c)
    corpus=fuzz/corpus/${name#fuzz_}
    [ -d "$corpus" ] || corpus=fuzz/corpus
    if [ $use_libfuzzer = 1 ]; then
        # libFuzzer needs its objects built by clang too
        objs=""
        mkdir -p build-fuzz/clang
        for src in src/util/*.c src/model/*.c src/kernels/*.c src/chip/*.c src/report/*.c build-fuzz/gen/techdb_data.c; do
            [ -f "$src" ] || continue
            obj=build-fuzz/clang/$(echo "$src" | tr / _).o
            [ "$obj" -nt "$src" ] || clang -Isrc -D_GNU_SOURCE -std=c11 -O1 -g -fsanitize=fuzzer-no-link,address,undefined -c "$src" -o "$obj" || failed=$((failed + 1))
            objs="$objs $obj"
        done
        clang -Isrc -D_GNU_SOURCE -std=c11 -O1 -g -fsanitize=fuzzer,address,undefined "$target" $objs -lm -lpthread -o "build-fuzz/$name" || { failed=$((failed + 1)); continue; }
        work=build-fuzz/corpus-$name; rm -rf "$work"; mkdir -p "$work"
        if "build-fuzz/$name" -runs="$FUZZ_RUNS" -max_len=65536 -timeout=10 -artifact_prefix=build-fuzz/ "$work" "$corpus" > "build-fuzz/$name.log" 2>&1; then
            passed=$((passed + 1)); echo "fuzz $name: ok ($(tail -n 1 "build-fuzz/$name.log"))"
        else
            failed=$((failed + 1)); echo "fuzz $name: FAILED"; tail -n 30 "build-fuzz/$name.log"
        fi
    else
        cc -Isrc -D_GNU_SOURCE -std=c11 $SAN "$target" fuzz/standalone.c build-fuzz/libbitrom.a -lm -lpthread -o "build-fuzz/$name" || { failed=$((failed + 1)); continue; }
        if "build-fuzz/$name" -runs="$FUZZ_RUNS" "$corpus" > "build-fuzz/$name.log" 2>&1; then
            passed=$((passed + 1)); echo "fuzz $name: ok ($(tail -n 1 "build-fuzz/$name.log"))"
        else
            failed=$((failed + 1)); echo "fuzz $name: FAILED"; tail -n 30 "build-fuzz/$name.log"
        fi
    fi
done

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
