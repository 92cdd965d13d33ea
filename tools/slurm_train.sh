#!/usr/bin/env bash
# Train on NUM_GPUS GPUs of a Slurm cluster, one task per GPU, started by srun:
#   tools/slurm_train.sh PARTITION JOB_NAME CONFIG NUM_GPUS [tools/train.py arguments]
#   GPUS_PER_NODE=4 CPUS_PER_TASK=8 tools/slurm_train.sh gpu clip configs/pretrain/X.py 16
# NUM_GPUS above GPUS_PER_NODE (default 8) spans several nodes. SRUN_ARGS adds srun options
# (e.g. SRUN_ARGS="--quotatype=auto --time=2-0"). mmengine reads the rank, world size and
# master address from the SLURM_* variables srun sets (MASTER_PORT, default 29500).
set -euo pipefail
if [ "$#" -lt 4 ]; then
    echo "usage: $0 PARTITION JOB_NAME CONFIG NUM_GPUS [tools/train.py arguments]" >&2
    exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
GPUS=$4
shift 4
positive_integer() {
    if ! [[ ${!1} =~ ^[1-9][0-9]*$ ]]; then
        echo "$0: $1 must be a positive integer, got '${!1}'" >&2
        exit 2
    fi
}
positive_integer GPUS
GPUS_PER_NODE=${GPUS_PER_NODE:-$(( GPUS < 8 ? GPUS : 8 ))}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
positive_integer GPUS_PER_NODE
positive_integer CPUS_PER_TASK
SRUN_ARGS=${SRUN_ARGS:-}
SRUN=${SRUN:-srun}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON=${PYTHON:-python}

# SRUN_ARGS is split into words on purpose (several srun options)
# shellcheck disable=SC2086
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
exec "$SRUN" \
    --partition="$PARTITION" \
    --job-name="$JOB_NAME" \
    --gres="gpu:$GPUS_PER_NODE" \
    --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    $SRUN_ARGS \
    "$PYTHON" -u "$ROOT/tools/train.py" "$CONFIG" --launcher slurm "$@"
