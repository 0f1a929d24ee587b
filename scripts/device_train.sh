#!/usr/bin/env bash
# Train on a GPU box that has Keras-3-compatible JAX but no TensorFlow (how the shipped models
# were trained). Expects packed datasets (training/pack_dataset.py) in .pack/ and Keras wheels
# in .whl/; runs each "name|trainer|args" job line from $JOBS in parallel on the one GPU and
# leaves one log and one tarball per run in $OUT (runs are small: weights without optimizer state).
#   JOBS=$'b1|beauty|--data .pack/scut128.npz --input-size 128 ...' bash scripts/device_train.sh
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax XLA_PYTHON_CLIENT_MEM_FRACTION=0.15 PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" /tmp/runs
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
pids=()
while IFS='|' read -r name trainer args; do
  [ -n "$name" ] || continue
  ( python3 "training/train_$trainer.py" $args --runs "/tmp/runs/$name" > "$OUT/$name.log" 2>&1
    echo "$name exit $?" >> "$OUT/$name.log"
    find "/tmp/runs/$name" -name "checkpoint*" -delete; tar czf "$OUT/$name.tgz" -C /tmp/runs "$name" ) &
  pids+=($!)
done <<< "$JOBS"
wait "${pids[@]}"
for log in "$OUT"/*.log; do echo "== $log"; grep -E "held-out|rror|exit|Epoch [0-9]+/" "$log" | tail -4; done
ls -la "$OUT"
