#!/bin/sh
# A Slurm job array over a sweep spec: task I of N runs every N-th unit of the spec (--shard I/N)
# into its own file; --resume lets a requeued or restarted task keep the lines it already wrote.
#   sbatch --array=0-15 docs/sweep/slurm-array.sh docs/sweep/falcon3-1b-cost.json results
# then, when every task is done (or as a dependent job):
#   sbatch --dependency=afterok:JOBID --wrap "./build/bitrom sweep --merge results/shard-*.jsonl -o results/all.jsonl --pareto --html results/all.html"
#SBATCH --job-name=bitrom-sweep
#SBATCH --cpus-per-task=2
#SBATCH --output=slurm-%A_%a.out
set -eu
spec=${1:?usage: slurm-array.sh SPEC.json OUTDIR}
outdir=${2:?usage: slurm-array.sh SPEC.json OUTDIR}
: "${SLURM_ARRAY_TASK_ID:?run under sbatch --array}"
count=${SLURM_ARRAY_TASK_COUNT:-$((SLURM_ARRAY_TASK_MAX - SLURM_ARRAY_TASK_MIN + 1))}
mkdir -p "$outdir"
exec ./build/bitrom sweep "$spec" -o "$outdir/shard-$SLURM_ARRAY_TASK_ID.jsonl" \
    --shard "$SLURM_ARRAY_TASK_ID/$count" -t "${SLURM_CPUS_PER_TASK:-1}" --resume
