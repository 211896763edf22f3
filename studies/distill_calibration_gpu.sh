#!/usr/bin/env bash
# The GPU world study of docs/distill.md ("At GPU budgets"): studies/distill_calibration.py on one CUDA device,
# r3d_tiny trained to memorisation. Rows go to $OUT/study.jsonl as they come (one JSON object per model), logs to
# $OUT/*.log. Needs torch with CUDA and PyAV (PYTHONPATH may point at a folder of wheels unpacked there).
#   OUT=/tmp/out bash studies/distill_calibration_gpu.sh
set -u
OUT=${OUT:-runs/distill_calibration_gpu}
mkdir -p "$OUT"
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
export MODALBRIDGE_HOME=${MODALBRIDGE_HOME:-/tmp/mbhome}
study() {  # name, time limit (s), study arguments...
  local name=$1 limit=$2; shift 2
  echo "== $name: $*"
  timeout "$limit" python3 studies/distill_calibration.py --device cuda --workers 12 --gammas 1 \
    --json-out "$OUT/study.jsonl" "$@" 2>&1 | tee "$OUT/$name.log" | grep -v Warning
}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
# 1. every model r3d_tiny, trained long enough to memorise the 240 noisy training clips
study r3d_200ep 200 --views 8 --rgb-epochs 200 --teacher-epochs 200 --students 0 0.8 1
# 2. the stronger CPU recipe (low-capacity flow/audio teachers, lr 5e-3), trained 4x longer
study pooled_120ep 120 --views 8 --teacher-model pooled --lr 5e-3 --teacher-lr 1e-2 --rgb-epochs 120 \
  --teacher-epochs 120 --students 0 1
# 3. the same as 1 with a second seed
study r3d_200ep_seed1 150 --views 8 --rgb-epochs 200 --teacher-epochs 200 --students 0 1 --seed 1
