#!/bin/sh
# The lm_head formats and weight layouts against the exact f32 path on a real model: perplexity on
# the TinyStories sample (one sequence per line) and the KL divergence of the logits on a fixed
# 128-token window of it. Prints a Markdown table.
#   sh bench/head_kl.sh [MODEL=models/stories3m] [TEXT=../shared/assets/data/tinystories-sample.txt]
set -eu
cd "$(dirname "$0")/.."
M=${1:-models/stories3m}
F=${2:-../shared/assets/data/tinystories-sample.txt}
B=build/bitrom
[ -x $B ] || make -s build/bitrom
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
toks=$($B tokenize -m "$M" -f "$F" 2>/dev/null | tr -s ' \n' ' ' | cut -d' ' -f1-128)
$B logits -m "$M" --tokens "$toks" -o "$tmp/ref.f32" --head f32 >/dev/null 2>&1
echo "| weights layout | lm_head | TinyStories PPL (per line) | mean KL vs f32 (nats, 128 positions) | argmax agreement |"
echo "|---|---|---|---|---|"
for layout in 2bit base3; do
    for head in f32 q8 q6 q4; do
        ppl=$($B ppl -m "$M" -f "$F" --per-line --head $head --layout $layout 2>/dev/null | sed -n 's/^perplexity: //p')
        $B logits -m "$M" --tokens "$toks" -o "$tmp/o.f32" --head $head --layout $layout >/dev/null 2>&1
        cmp=$($B compare -m "$M" -f "$tmp/ref.f32" --with "$tmp/o.f32" 2>/dev/null)
        kl=$(echo "$cmp" | sed -n 's/.*mean KL(reference || other): \([-0-9.e+]*\).*/\1/p')
        agree=$(echo "$cmp" | sed -n 's/.*argmax agreement: \([^,]*\),.*/\1/p')
        echo "| $layout | $head | $ppl | $kl | $agree |"
    done
done
