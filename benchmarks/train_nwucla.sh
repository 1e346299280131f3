#!/usr/bin/env bash
# The NW-UCLA accuracy runs (official recipe, project trainer), one at a time, each resumable.
#
#   nohup benchmarks/train_nwucla.sh > runs/train_nwucla.out 2>&1 &     # start or continue
#   RUNS="lightv2_joint" benchmarks/train_nwucla.sh                     # only some runs
#
# A run lives in runs/nwucla_ctrgcn_<run>/ (git-ignored: checkpoint.npz every epoch, log.jsonl
# flushed line by line, best.ctrgcn / last.ctrgcn). A killed run continues with --resume from its
# last finished epoch; a finished one is skipped. When a run reaches its last epoch its log is
# copied to benchmarks/results/nwucla/ and its last-epoch weights (no choosing by the validation
# view) become the shipped float16 file ctrgcn/pretrained/nwucla_ctrgcn_<run>.ctrgcn.
# Two cores: run nothing else heavy meanwhile, and never a benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-"joint bone motion bone_motion light_joint lightv1_joint lightv2_joint light_joint_aug lightv2_joint_aug bone_motion_aug bone_aug motion_aug joint_aug"}
WORK_ROOT=${WORK_ROOT:-runs}      # smoke tests: WORK_ROOT=/tmp/r EXTRA="--set epochs=1 --set train_subset=8"
SHIP_DIR=${SHIP_DIR:-ctrgcn/pretrained}
RESULTS=${RESULTS:-benchmarks/results/nwucla}
read -r -a extra <<< "${EXTRA:-}"
mkdir -p "$WORK_ROOT" "$RESULTS" "$SHIP_DIR"

finished() {  # finished WORK_DIR CONFIG: the log holds the evaluation of the config's last epoch
    python - "$1" "$2" "${extra[@]}" <<'PY'
import json, sys
from ctrgcn.commands.train import resolve
from ctrgcn.training.config import load_config, merged_config
work, name, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
cfg = merged_config(load_config(resolve(name)))
epochs = int(next((a.split("=", 1)[1] for a in rest if a.startswith("epochs=")), cfg["epochs"]))
try:
    with open(work + "/log.jsonl") as f:
        records = [json.loads(line) for line in f if line.strip()]
except OSError:
    records = []
sys.exit(0 if any(r.get("epoch") == epochs - 1 and "val_acc" in r for r in records) else 1)
PY
}

for run in $RUNS; do
    name=nwucla_ctrgcn_$run
    work=$WORK_ROOT/$name
    if finished "$work" "$name"; then
        echo "$(date -u +%FT%TZ) $name: finished, skipped"
    else
        resume=()
        [ -f "$work/checkpoint.npz" ] && resume=(--resume)
        echo "$(date -u +%FT%TZ) $name: training ${resume[*]:-from scratch}"
        python -u -m ctrgcn train --config "$name" --set progress=false --set "work_dir=$work" "${extra[@]}" "${resume[@]}"
        finished "$work" "$name" || { echo "$name: stopped before its last epoch"; exit 1; }
    fi
    mkdir -p "$RESULTS/$name"
    cp "$work/log.jsonl" "$RESULTS/$name/log.jsonl"
    python -m ctrgcn convert "$work/last.ctrgcn" "$SHIP_DIR/$name.ctrgcn" --dtype float16 --keep-bn --classes nwucla
    echo "$(date -u +%FT%TZ) $name: shipped $SHIP_DIR/$name.ctrgcn"
done
