#!/bin/sh
# bitrom against the CPU peers on the same random ternary models, interleaved (CPU-PEERS.md).
# The peers are built outside this repository; point at their binaries (each one is optional):
#   IK_LLAMA_BENCH, IK_LLAMA_QUANTIZE   ik_llama.cpp llama-bench / llama-quantize (IQ2_BN)
#   BITNET_BENCH, BITNET_QUANTIZE       bitnet.cpp (2024 release) llama-bench / llama-quantize (I2_S)
#   LLAMA_BENCH, LLAMA_QUANTIZE         a llama.cpp llama-bench / llama-quantize with TQ2_0
# Every peer file is made by the peer's own quantizer from one F32 GGUF written by `bitrom gen`,
# with a Q6_K token embedding (the configuration of CPU-PEERS.md); bitrom reads bitnet.cpp's I2_S
# file (it repacks at load), so all engines run the same weights.
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

# $1 preset, $2 output name, $3 quantizer, $4 type: requantize the F32 GGUF with a Q6_K embedding
peer_file() {
    [ -f "$W/$1-$2.gguf" ] && return 0
    # --act silu: llama.cpp's `bitnet` architecture, the one the 2024 bitnet.cpp reads (the shape is what counts)
    [ -f "$W/$1-f32.gguf" ] || { log "generating $1 (F32 GGUF)"; $B gen --preset "$1" -o "$W/$1-f32.gguf" --type f32 --act silu >&2; }
    log "quantizing $1 to $2 with $3"
    "$3" --token-embedding-type q6_k "$W/$1-f32.gguf" "$W/$1-$2.gguf" "$4" 1 >/dev/null 2>&1 # 1 thread: bitnet.cpp's I2_S needs it
}

for preset in ${PRESETS:-bitnet-large bitnet-2b-4t}; do
    if [ -n "${BITNET_QUANTIZE:-}" ]; then
        peer_file "$preset" i2_s "$BITNET_QUANTIZE" I2_S
    else
        [ -f "$W/$preset-i2_s.gguf" ] || $B gen --preset "$preset" -o "$W/$preset-i2_s.gguf" --type i2_s >&2
    fi
    [ -z "${IK_LLAMA_QUANTIZE:-}" ] || peer_file "$preset" iq2_bn "$IK_LLAMA_QUANTIZE" iq2_bn
    [ -z "${LLAMA_QUANTIZE:-}" ] || peer_file "$preset" tq2_0 "$LLAMA_QUANTIZE" TQ2_0
    rm -f "$W/$preset-f32.gguf"
done

# one llama-bench run -> "pp tg" (t/s)
peer_run() { # binary model; the Markdown table (the forks' CSV layouts differ, and quote commas)
    "$1" -m "$2" -t "$T" -p 128 -n 64 -r 1 2>/dev/null | awk -F'|' 'NF > 3 {
        t = $(NF - 2); v = $(NF - 1); gsub(/ /, "", t); split(v, a, "±"); gsub(/ /, "", a[1])
        if (t ~ /^pp[0-9]/) pp = a[1]; if (t ~ /^tg[0-9]/) tg = a[1] } END { print pp + 0, tg + 0 }'
}
bitrom_run() { # model head layout -> "pp tg bandwidth tg_GB/s fraction", bandwidth probed around the decode run
    $B bench -m "$1" -t "$T" --head "$2" --layout "$3" --chunks 1 --json 2>/dev/null |
        sed -n 's/.*"pp_tokens_per_s": \([0-9.]*\).*"tg_tokens_per_s": \([0-9.]*\).*"tg_gb_per_s": \([0-9.]*\).*"mem_bw_gb_per_s": \([0-9.]*\).*"bw_fraction": \([0-9.]*\).*/\1 \2 \4 \3 \5/p'
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "| model shape | engine / format | decode tok/s | prompt-128 tok/s | decode GB/s, % of the bandwidth probed around it |"
echo "|---|---|---|---|---|"
for preset in ${PRESETS:-bitnet-large bitnet-2b-4t}; do
    : > "$W/$preset.results"
    for r in $(seq 1 "$R"); do
        log "$preset: repetition $r of $R"
        for cfg in 2bit:q8 2bit:q6 2bit:q4 base3:q6; do
            set -- $(bitrom_run "$W/$preset-i2_s.gguf" "${cfg#*:}" "${cfg%:*}")
            echo "bitrom-$cfg $1 $2 $3 $4 $5" >> "$W/$preset.results"
        done
        if [ -n "${IK_LLAMA_BENCH:-}" ] && [ -f "$W/$preset-iq2_bn.gguf" ]; then
            set -- $(peer_run "$IK_LLAMA_BENCH" "$W/$preset-iq2_bn.gguf")
            echo "ik_llama-iq2_bn $1 $2" >> "$W/$preset.results"
        fi
        if [ -n "${BITNET_BENCH:-}" ]; then
            set -- $(peer_run "$BITNET_BENCH" "$W/$preset-i2_s.gguf")
            echo "bitnet.cpp-i2_s $1 $2" >> "$W/$preset.results"
        fi
        if [ -n "${LLAMA_BENCH:-}" ] && [ -f "$W/$preset-tq2_0.gguf" ]; then
            set -- $(peer_run "$LLAMA_BENCH" "$W/$preset-tq2_0.gguf")
            echo "llama.cpp-tq2_0 $1 $2" >> "$W/$preset.results"
        fi
    done
    for eng in $(awk '{print $1}' "$W/$preset.results" | sort -u); do
        pp=$(awk -v e=$eng '$1==e {print $2}' "$W/$preset.results" | median)
        tg=$(awk -v e=$eng '$1==e {print $3}' "$W/$preset.results" | median)
        share=""
        case $eng in bitrom-*)
            share="$(awk -v e=$eng '$1==e {print $5}' "$W/$preset.results" | median) GB/s, $(awk -v e=$eng '$1==e {print 100 * $6}' "$W/$preset.results" | median) %" ;;
        esac
        case $eng in
            bitrom-2bit:q8) name="bitrom, 2-bit layout + q8 head" ;;
            bitrom-2bit:q6) name="bitrom, 2-bit layout + q6 head" ;;
            bitrom-2bit:q4) name="bitrom, 2-bit layout + q4 head" ;;
            bitrom-base3:q6) name="bitrom, base-3 layout (1.6 bpw) + q6 head" ;;
            ik_llama-iq2_bn) name="ik_llama.cpp, IQ2_BN + Q6_K embedding" ;;
            bitnet.cpp-i2_s) name="bitnet.cpp, I2_S + Q6_K embedding" ;;
            llama.cpp-tq2_0) name="llama.cpp kernels, TQ2_0 + Q6_K embedding" ;;
            *) name=$eng ;;
        esac
        echo "| $preset | $name | $tg | $pp | $share |"
    done
    bw=$(awk '$1 ~ /^bitrom/ {print $4}' "$W/$preset.results" | median)
    log "$preset: memory read bandwidth measured by bitrom bench: median $bw GB/s"
    echo "| $preset | (memory read bandwidth, 2 threads, median of bitrom's probes) | $bw GB/s | | |"
done
echo
echo "$(date -u +%Y-%m-%d), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $T threads, median of $R interleaved repetitions"
