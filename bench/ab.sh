#!/bin/sh
# A/B comparison of two bitrom binaries on one model, runs interleaved (A B A B ...) so that drift
# in machine load hits both alike; prints the median prompt and decode speed of each and the median
# share of the bandwidth probed around each decode run.
#   sh bench/ab.sh BIN_A BIN_B MODEL [REPS=5] [extra bench options...]
set -eu
a=$1 b=$2 model=$3 reps=${4:-5}
shift 4 2>/dev/null || shift $#
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
i=0
while [ "$i" -lt "$reps" ]; do
    for bin in a b; do
        eval exe=\$$bin
        "$exe" bench -m "$model" --chunks 1 --json "$@" 2>/dev/null | tail -1 >> "$tmp/$bin"
    done
    i=$((i + 1))
done
median() { sort -n | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
field() { sed -n "s/.*\"$1\": \([0-9.]*\).*/\1/p" "$2"; }
printf '| binary | pp tok/s | tg tok/s | %% of BW |\n|---|---|---|---|\n'
for bin in a b; do
    eval exe=\$$bin
    printf '| %s | %s | %s | %s |\n' "$exe" "$(field pp_tokens_per_s "$tmp/$bin" | median)" "$(field tg_tokens_per_s "$tmp/$bin" | median)" \
        "$(field bw_fraction "$tmp/$bin" | median | awk '{printf "%.1f", 100 * $1}')"
done
