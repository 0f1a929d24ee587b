#!/usr/bin/env bash
# The main job: set up, make sure there are models (your latest runs, else the shipped ones, else a
# quick synthetic training run), export them for the browser, and serve the page.
#   bash scripts/main.sh [--port 8000] [--host 127.0.0.1]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TF_CPP_MIN_LOG_LEVEL=3
PY=.venv/bin/python

for kind in beauty keypoints; do
  if run=$($PY -c "import sys; from facepack.runs import latest_run; r = latest_run('$kind'); print(r or ''); sys.exit(r is None)"); then
    printf '\n== %s model: %s\n' "$kind" "$run"
  else
    printf '\n== No %s model yet: training a small one on synthetic data (a few minutes)\n' "$kind"
    $PY "training/train_$kind.py"
  fi
done

printf '\n== Exporting the models for the browser and Node (static/models, dist/npm)\n'
$PY convert/to_tfjs.py --quantize float16 --npm

printf '\n== Serving the page (Ctrl-C to stop)\n'
exec $PY server.py "$@"
