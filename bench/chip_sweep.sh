#!/bin/sh
# The chip's accuracy finding (issue 4): stories3m perplexity through the simulated chip for 8- and
# 4-bit activations and local register widths 6, 8, 10 (saturating), with the overflow counts.
# usage: sh bench/chip_sweep.sh [ASSETS_DIR]   -> a Markdown table on stdout
set -eu
cd "$(dirname "$0")/.."
A=${1:-../shared/assets}
B=build/bitrom
[ -x $B ] || make -s build/bitrom
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "| activations | register bits | TinyStories PPL (per line) | overflows | KJV eval PPL (ctx 256, 48 blocks) | overflows |"
echo "|---|---|---|---|---|---|"
ref_ts=$($B ppl -m models/stories3m -f $A/data/tinystories-sample.txt --per-line 2>/dev/null | sed -n 's/^perplexity: //p')
ref_kjv=$($B ppl -m models/stories3m -f $A/data/kjv_eval.txt --ctx 256 --chunks 48 2>/dev/null | sed -n 's/^perplexity: //p')
echo "| 8 (CPU reference) | - | $ref_ts | - | $ref_kjv | - |"
for act in 8 4; do
    for bits in 6 8 10; do
        printf '{"act_bits": %s, "register_bits": %s, "overflow": "saturate"}\n' $act $bits > "$tmp/hw.json"
        ts=$($B ppl -m models/stories3m -f $A/data/tinystories-sample.txt --per-line --backend chip --hw "$tmp/hw.json" 2>"$tmp/e1")
        kjv=$($B ppl -m models/stories3m -f $A/data/kjv_eval.txt --ctx 256 --chunks 48 --backend chip --hw "$tmp/hw.json" 2>"$tmp/e2")
        o1=$(sed -n 's/.*, \([0-9]*\) overflows.*/\1/p' "$tmp/e1")
        o2=$(sed -n 's/.*, \([0-9]*\) overflows.*/\1/p' "$tmp/e2")
        echo "| $act | $bits | $(echo "$ts" | sed -n 's/^perplexity: //p') | $o1 | $(echo "$kjv" | sed -n 's/^perplexity: //p') | $o2 |"
    done
done
