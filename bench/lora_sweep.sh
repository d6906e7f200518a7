#!/bin/sh
# The paper's Fig. 6a experiment on our model: adapter weight bits 4..8 (A8) vs KJV eval perplexity
# (--ctx 256 --chunks 48), stories3m + the KJV adapter. usage: sh bench/lora_sweep.sh [ASSETS_DIR]
set -eu
cd "$(dirname "$0")/.."
A=${1:-../shared/assets}
B=build/bitrom
[ -x $B ] || make -s build/bitrom
ppl() { $B ppl -m models/stories3m -f $A/data/kjv_eval.txt --ctx 256 --chunks 48 "$@" 2>/dev/null | sed -n 's/^perplexity: //p'; }
echo "| adapter | KJV eval PPL |"
echo "|---|---|"
echo "| none (base model) | $(ppl) |"
echo "| float (f32) | $(ppl --lora $A/adapters/stories3m-kjv/peft) |"
for b in 8 7 6 5 4 3 2; do
    echo "| W${b}A8 | $(ppl --lora $A/adapters/stories3m-kjv/peft --lora-bits $b) |"
done
echo "| ternary W1.58A8 | $(ppl --lora $A/adapters/stories3m-kjv/peft --lora-bits 1) |"
