#!/bin/sh
# Training throughput of `bitrom finetune` (BENCHMARKS.md): tokens/s at 1 and 2 threads and the time
# per step split into forward, backward and optimizer, for stories3m and a random checkpoint of the
# bitnet_b1_58-large shape (`bitrom gen --preset bitnet-large`, with the LLaMA SentencePiece
# vocabulary as its tokenizer). Default targets (v, o, down), rank 16; the median over the steps
# after the first. The machine's other load is printed with each row; on a shared machine the wall
# time understates the speed, so tokens per CPU-second (user + system of all threads, between the
# second and the last step) is printed too: on one thread it is the speed on a dedicated core.
# usage: sh bench/finetune_speed.sh [WORKDIR]   -> a Markdown table on stdout
set -eu
cd "$(dirname "$0")/.."
W=${1:-${TMPDIR:-/tmp}/bitrom-finetune-speed}
A=${BITROM_ASSETS:-../shared/assets}
B=build/bitrom
mkdir -p "$W"
if [ ! -f "$W/large/tokenizer.model" ]; then
    $B gen --preset bitnet-large -o "$W/large" --force >&2
    cp "$A/tokenizers/llama2-tokenizer.model" "$W/large/tokenizer.model"
fi
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
field() { sed -n "s/.*\"$1\": \([0-9.e+-]*\).*/\1/p" "$2" | tail -n +2; }
echo "| model | threads | ctx x batch | tokens/s (wall) | tokens per CPU-second | forward s/step | backward s/step | optimizer s/step | load average |"
echo "|---|---|---|---|---|---|---|---|---|"
for spec in "stories3m|$A/models/stories3m|256|4|6" "bitnet-large|$W/large|64|1|3"; do
    IFS='|' read -r name model ctx batch steps <<EOT
$spec
EOT
    for t in 1 2; do
        rm -rf "$W/out"
        $B finetune -m "$model" --train "$A/data/kjv_train.txt" --ctx "$ctx" --batch "$batch" --steps "$steps" -t "$t" -o "$W/out" 2>/dev/null
        L="$W/out/train.jsonl"
        cpu_rate=$(awk -v tok=$((ctx * batch)) -F'"cpu_s": ' '/"loss"/ {split($2, a, ","); c[++n] = a[1]} END {printf "%.0f", (n - 1) * tok / (c[n] - c[1])}' "$L")
        echo "| $name | $t | $ctx x $batch | $(field tokens_per_s "$L" | median) | $cpu_rate | $(field fwd_s "$L" | median) | $(field bwd_s "$L" | median) | $(field opt_s "$L" | median) | $(cut -d' ' -f1 /proc/loadavg) |"
    done
done
