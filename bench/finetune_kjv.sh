#!/bin/sh
# The README's KJV and Brown adapters trained from scratch by bitrom (r 16, alpha 32 on v, o, down,
# the reference's shape), eval perplexity every 50 (KJV) or 150 (Brown) steps with the ppl --ctx 256 --chunks 48
# protocol, and the task-switching table of the two adapters.
# usage: sh bench/finetune_kjv.sh [WORKDIR]   -> the curves (from train.jsonl) and the table on stdout
set -eu
cd "$(dirname "$0")/.."
W=${1:-${TMPDIR:-/tmp}/bitrom-finetune-kjv}
A=${BITROM_ASSETS:-../shared/assets}
B=build/bitrom
T=${THREADS:-2}
M="$A/models/stories3m"
mkdir -p "$W"
for task in kjv brown; do
    ev=50; [ $task = kjv ] || ev=150
    [ -f "$W/$task/adapter_model.safetensors" ] ||
        nice -n 5 $B finetune -m "$M" --train "$A/data/${task}_train.txt" --eval "$A/data/${task}_eval.txt" -o "$W/$task" \
            --steps 450 --batch 4 --lr 4e-3 --warmup 20 --eval-every $ev -t "$T" >&2
    echo "$task: step, tokens, wall minutes, CPU minutes, eval PPL"
    sed -n 's/.*"step": \([0-9]*\), "tokens": \([0-9]*\), "train_s": \([0-9.]*\), "cpu_s": \([0-9.]*\), "eval_ppl": \([0-9.]*\).*/\1 \2 \3 \4 \5/p' "$W/$task/train.jsonl" |
        awk '{printf "| %d | %d | %.1f | %.1f | %.2f |\n", $1, $2, $3 / 60, $4 / 60, $5}'
done
ppl() { $B ppl -m "$M" -t "$T" "$@" 2>/dev/null | sed -n 's/^perplexity: //p'; }
echo "| adapter | KJV eval | Brown eval | TinyStories sample (per line) |"
echo "|---|---|---|---|"
for ad in none kjv brown; do
    if [ $ad = none ]; then L=""; else L="--lora $W/$ad"; fi
    # shellcheck disable=SC2086
    echo "| $ad | $(ppl -f "$A/data/kjv_eval.txt" --ctx 256 --chunks 48 $L) | $(ppl -f "$A/data/brown_eval.txt" --ctx 256 --chunks 48 $L) | $(ppl -f "$A/data/tinystories-sample.txt" --per-line $L) |"
done
