#!/bin/sh
# Decode speed with -t 1 and -t 2 while other CPU-bound processes run (a pool that degrades
# gracefully: -t 2 must never be slower than -t 1). Starts HOGS busy-loop processes (default 1),
# runs `bitrom bench` with 1 and 2 threads interleaved REPS times on each model, prints the medians
# and the share of the -t 2 runs' pool jobs that ran solo (the caller alone, workers asleep).
#   sh bench/contention.sh [BIN=build/bitrom] [REPS=5] [HOGS=1] [MODEL...]
# Without models it uses models/stories3m and a random bitnet_b1_58-large model made by `bitrom gen`.
set -eu
bin=${1:-build/bitrom} reps=${2:-5} hogs=${3:-1}
shift 3 2>/dev/null || shift $#
tmp=$(mktemp -d)
pids=""
cleanup() { [ -z "$pids" ] || kill $pids 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM
models="$*"
if [ -z "$models" ]; then
    "$bin" gen --preset bitnet-large -o "$tmp/bitnet-large" >/dev/null 2>&1
    models="models/stories3m $tmp/bitnet-large"
fi
h=0
while [ "$h" -lt "$hogs" ]; do
    sh -c 'while :; do :; done' &
    pids="$pids $!"
    h=$((h + 1))
done
median() { sort -n | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
field() { sed -n "s/.*\"$1\": \([0-9.]*\).*/\1/p" "$2"; }
printf '| model | competing processes | -t 1 tg tok/s | -t 2 tg tok/s | ratio | -t 2 jobs run solo |\n|---|---|---|---|---|---|\n'
for model in $models; do
    i=0
    : > "$tmp/t1"; : > "$tmp/t2"
    while [ "$i" -lt "$reps" ]; do
        for t in 1 2; do
            "$bin" bench -m "$model" -t $t -p 16 -n 64 --chunks 1 --json 2>/dev/null | tail -1 >> "$tmp/t$t"
        done
        i=$((i + 1))
    done
    a=$(field tg_tokens_per_s "$tmp/t1" | median) b=$(field tg_tokens_per_s "$tmp/t2" | median)
    solo=$(awk '{j = $0; s = $0; sub(/.*"pool_jobs": /, "", j); sub(/.*"pool_solo_jobs": /, "", s); J += j + 0; S += s + 0} END {printf "%.0f %%", J ? 100 * S / J : 0}' "$tmp/t2")
    printf '| %s | %s | %s | %s | %s | %s |\n' "$(basename "$model")" "$hogs" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", b / a}')" "$solo"
done
