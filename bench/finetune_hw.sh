#!/bin/sh
# Hardware-aware recovery (README "Training adapters"): the chip's 4-bit activation mode on
# TinyStories text, an adapter trained with the chip in the loop against one trained on the CPU
# (int8 activations) with the same data, seed and schedule, both evaluated on the 4-bit chip.
# TinyStories sample: its first 12 lines train, the last 6 are held out; perplexity per line.
# usage: sh bench/finetune_hw.sh [WORKDIR]   -> a Markdown table on stdout
set -eu
cd "$(dirname "$0")/.."
W=${1:-${TMPDIR:-/tmp}/bitrom-finetune-hw}
A=${BITROM_ASSETS:-../shared/assets}
B=build/bitrom
T=${THREADS:-2}
STEPS=${STEPS:-60}
mkdir -p "$W"
head -12 "$A/data/tinystories-sample.txt" > "$W/train.txt"
tail -6 "$A/data/tinystories-sample.txt" > "$W/heldout.txt"
echo '{"act_bits": 4}' > "$W/chip4.json"
M="$A/models/stories3m"
COMMON="--train $W/train.txt --ctx 128 --batch 4 --steps $STEPS --lr 1e-3 --warmup 5 --seed 1 -t $T"
[ -f "$W/chip/adapter_model.safetensors" ] || $B finetune -m "$M" $COMMON --backend chip --hw "$W/chip4.json" -o "$W/chip" >&2
[ -f "$W/cpu/adapter_model.safetensors" ] || $B finetune -m "$M" $COMMON -o "$W/cpu" >&2
ppl() { $B ppl -m "$M" --per-line -t "$T" "$@" 2>/dev/null | sed -n 's/^perplexity: //p'; }
echo "| adapter | evaluated on | held-out PPL | training lines PPL |"
echo "|---|---|---|---|"
for row in "none|cpu (int8)|" "none|chip, 4-bit|--backend chip --hw $W/chip4.json" \
           "cpu-trained|chip, 4-bit|--backend chip --hw $W/chip4.json --lora $W/cpu" \
           "chip-trained|chip, 4-bit|--backend chip --hw $W/chip4.json --lora $W/chip" \
           "cpu-trained|cpu (int8)|--lora $W/cpu" "chip-trained|cpu (int8)|--lora $W/chip"; do
    name=${row%%|*}; rest=${row#*|}; on=${rest%%|*}; args=${rest#*|}
    # shellcheck disable=SC2086
    echo "| $name | $on | $(ppl -f "$W/heldout.txt" $args) | $(ppl -f "$W/train.txt" $args) |"
done
