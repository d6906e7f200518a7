#!/bin/sh
# Batched decoding throughput of an OpenAI-style server: C clients at once, each sending R completion
# requests of N generated tokens (greedy, 4-token prompt), for each C in the list; the client counts
# are interleaved within each repetition, the median of the repetitions is printed.
#   sh bench/server_clients.sh MODEL "1 2 4 8" [R=4] [N=64] [REPS=3] [SERVER_ARGS="--parallel 8 -c 256 -t 2"]
#   PEER=/path/to/llama-server sh bench/server_clients.sh MODEL.gguf ... "--parallel 8 -c 2048 -t 2"
#     runs llama.cpp's server on the same file instead (its -c is shared by the slots: 8 x 256)
# Prints: clients, aggregate generated tok/s, per-client tok/s, ratio to the first client count.
set -eu
MODEL=$1
COUNTS=${2:-"1 2 4 8"}
R=${3:-4}
N=${4:-64}
REPS=${5:-3}
ARGS=${6:-"--parallel 8 -c 256 -t 2"}
BITROM=${BITROM:-build/bitrom}
PEER=${PEER:-}
PORT=${PORT:-18290}
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT
if [ -n "$PEER" ]; then
    # shellcheck disable=SC2086
    "$PEER" -m "$MODEL" --host 127.0.0.1 --port "$PORT" $ARGS > "$work/server.log" 2>&1 &
    extra=', "ignore_eos": true'
else
    # shellcheck disable=SC2086
    "$BITROM" server -m "$MODEL" --port "$PORT" $ARGS 2>"$work/server.log" &
    extra=''
fi
pid=$!
i=0
until curl -s -f "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -lt 1200 ] || { cat "$work/server.log"; exit 1; }
    kill -0 "$pid" 2>/dev/null || { cat "$work/server.log"; exit 1; }
    sleep 0.5
done
body="{\"prompt\": [1, 300, 400, 500], \"max_tokens\": $N, \"temperature\": 0$extra}"
one_client() { # $1: output file; a request without a completion count is logged, not fatal
    for _ in $(seq "$R"); do
        r=$(curl -s -m 600 -d "$body" "http://127.0.0.1:$PORT/v1/completions" || true)
        n=$(printf '%s' "$r" | grep -o '"completion_tokens": *[0-9]*' | grep -o '[0-9]*$' || true)
        if [ -n "$n" ]; then echo "$n" >> "$1"; else printf '%s\n' "$r" | head -c 300 >> "$work/failed"; echo >> "$work/failed"; fi
    done
}
one_client "$work/warmup" # first touches of the weights and caches
for rep in $(seq "$REPS"); do
    for c in $COUNTS; do
        rm -f "$work"/tok.*
        t0=$(date +%s.%N)
        pids=""
        for k in $(seq "$c"); do
            one_client "$work/tok.$k" &
            pids="$pids $!"
        done
        # shellcheck disable=SC2086
        wait $pids
        t1=$(date +%s.%N)
        tokens=$(cat "$work"/tok.* | awk '{s += $1} END {print s}')
        echo "$c $(echo "$tokens $t0 $t1" | awk '{printf "%.2f", $1 / ($3 - $2)}')" >> "$work/runs"
    done
done
echo "clients  tok/s(all)  tok/s(each)  x(first)"
first=""
for c in $COUNTS; do
    med=$(awk -v c="$c" '$1 == c {print $2}' "$work/runs" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')
    [ -n "$first" ] || first=$med
    echo "$c $med $first" | awk '{printf "%7d  %10.1f  %11.1f  %8.2f\n", $1, $2, $2 / $1, $2 / $3}'
done
echo "runs (clients tok/s): $(tr '\n' ';' < "$work/runs")"
if [ -s "$work/failed" ]; then echo "requests without a completion count: $(grep -c . "$work/failed")"; head -n 3 "$work/failed"; tail -n 40 "$work/server.log"; fi
