#!/bin/sh
# bitrom against the CPU peers on the same random ternary models, interleaved (CPU-PEERS.md).
# The peers are built outside this repository; point at their llama-bench binaries:
#   IK_LLAMA_BENCH=/path/to/ik_llama.cpp/build/bin/llama-bench  IK_LLAMA_QUANTIZE=.../llama-quantize
#   LLAMA_BENCH=/path/to/llama.cpp/build/bin/llama-bench        (upstream: reads TQ1_0 / TQ2_0)
#   BITNET_BENCH=/path/to/BitNet/build/bin/llama-bench          (bitnet.cpp: reads I2_S)
# usage: [PRESETS="bitnet-large bitnet-2b-4t"] sh bench/peers.sh [WORKDIR] [REPETITIONS]   -> a Markdown table on stdout, details on stderr
set -eu
cd "$(dirname "$0")/.."
W=${1:-${TMPDIR:-/tmp}/bitrom-bench}
R=${2:-3}
T=${THREADS:-2}
B=build/bitrom
[ -x $B ] || make -s build/bitrom
mkdir -p "$W"
log() { echo "$*" >&2; }

for preset in ${PRESETS:-bitnet-large bitnet-2b-4t}; do
    [ -f "$W/$preset-i2_s.gguf" ] || { log "generating $preset (I2_S GGUF)"; $B gen --preset $preset -o "$W/$preset-i2_s.gguf" --type i2_s >&2; }
    if [ -n "${IK_LLAMA_QUANTIZE:-}" ] && [ ! -f "$W/$preset-iq2_bn.gguf" ]; then
        log "requantizing for ik_llama.cpp: IQ2_BN, Q6_K token embedding"
        "$IK_LLAMA_QUANTIZE" --allow-requantize --token-embedding-type q6_k "$W/$preset-i2_s.gguf" "$W/$preset-iq2_bn.gguf" iq2_bn >/dev/null 2>&1
    fi
    if [ -n "${LLAMA_BENCH:-}" ] && [ ! -f "$W/$preset-tq2_0.gguf" ]; then
        $B gen --preset $preset -o "$W/$preset-tq2_0.gguf" --type tq2_0 >&2
    fi
done

# one llama-bench run -> "pp tg" (t/s)
peer_run() { # binary model
    "$1" -m "$2" -t "$T" -p 128 -n 64 -r 1 -o csv 2>/dev/null | awk -F, 'NR>1 {gsub(/"/,""); if ($NF ~ /^pp/) pp=$(NF-2); if ($NF ~ /^tg/) tg=$(NF-2)} END {print pp+0, tg+0}'
}
bitrom_run() { # model head
    $B bench -m "$1" -t "$T" --head "$2" --chunks 1 --json 2>/dev/null | sed -n 's/.*"pp_tokens_per_s": \([0-9.]*\).*"tg_tokens_per_s": \([0-9.]*\).*"mem_bw_gb_per_s": \([0-9.]*\).*/\1 \2 \3/p'
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "| model shape | engine / format | decode tok/s | prompt-128 tok/s |"
echo "|---|---|---|---|"
for preset in ${PRESETS:-bitnet-large bitnet-2b-4t}; do
    : > "$W/$preset.results"
    for r in $(seq 1 "$R"); do
        log "$preset: repetition $r of $R"
        for head in q8 q4; do
            set -- $(bitrom_run "$W/$preset-i2_s.gguf" $head)
            echo "bitrom-$head $1 $2 $3" >> "$W/$preset.results"
        done
        if [ -n "${IK_LLAMA_BENCH:-}" ]; then
            set -- $(peer_run "$IK_LLAMA_BENCH" "$W/$preset-iq2_bn.gguf")
            echo "ik_llama-iq2_bn $1 $2" >> "$W/$preset.results"
            set -- $(peer_run "$IK_LLAMA_BENCH" "$W/$preset-i2_s.gguf")
            echo "ik_llama-i2_s $1 $2" >> "$W/$preset.results"
        fi
        if [ -n "${LLAMA_BENCH:-}" ]; then
            set -- $(peer_run "$LLAMA_BENCH" "$W/$preset-tq2_0.gguf")
            echo "llama.cpp-tq2_0 $1 $2" >> "$W/$preset.results"
        fi
        if [ -n "${BITNET_BENCH:-}" ]; then
            set -- $(peer_run "$BITNET_BENCH" "$W/$preset-i2_s.gguf")
            echo "bitnet.cpp-i2_s $1 $2" >> "$W/$preset.results"
        fi
    done
    for eng in $(awk '{print $1}' "$W/$preset.results" | sort -u); do
        pp=$(awk -v e=$eng '$1==e {print $2}' "$W/$preset.results" | median)
        tg=$(awk -v e=$eng '$1==e {print $3}' "$W/$preset.results" | median)
        case $eng in
            bitrom-q8) name="bitrom, 2-bit ternary + q8 head" ;;
            bitrom-q4) name="bitrom, 2-bit ternary + q4 head" ;;
            ik_llama-iq2_bn) name="ik_llama.cpp IQ2_BN + Q6_K embedding" ;;
            ik_llama-i2_s) name="ik_llama.cpp reading bitnet.cpp I2_S (F32 embedding)" ;;
            *) name=$eng ;;
        esac
        echo "| $preset | $name | $tg | $pp |"
    done
    bw=$(awk '$1 ~ /^bitrom/ {print $4}' "$W/$preset.results" | median)
    log "$preset: memory read bandwidth measured by bitrom bench: median $bw GB/s"
done
echo
echo "$(date -u +%Y-%m-%d), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $T threads, median of $R interleaved repetitions"
