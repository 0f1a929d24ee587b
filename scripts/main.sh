#!/usr/bin/env bash
# The main job: set up, make sure there are models, export them for the browser (only when
# something changed), and serve the page.
#   bash scripts/main.sh [-h] [--beauty RUN] [--keypoints RUN] [--force-export] [server.py options: --port 8000 --host 127.0.0.1 ...]
# Models: --beauty/--keypoints RUN (a run folder, its model.keras or model.weights.json, a run name, 'latest' or 'shipped');
# by default the newest run trained on real data that is not worse than the shipped model, else
# models/shipped (the choice and why are printed); with neither, a quick synthetic training run.
# The export is skipped when static/models was built from the same models, options, code and
# versions (its build key); --force-export converts anyway.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<'HELP'
usage: bash scripts/main.sh [--beauty RUN] [--keypoints RUN] [--force-export] [server.py options]

The main job: set up (.venv, node_modules, vendored TF.js: bash scripts/setup.sh; the first run
installs for a few minutes), make sure there are models, export them for the browser and Node
(static/models, dist/npm; skipped when unchanged) and serve the page (python server.py).

options:
  -h, --help        show this help and exit (before any setup)
  --beauty RUN      beauty model: a run folder, its model.keras or model.weights.json, a run name,
                    'latest' or 'shipped' (default: the newest run trained on real data that is not
                    worse than models/shipped, else models/shipped; the choice and why are printed;
                    with neither, a quick synthetic training run)
  --keypoints RUN   keypoint model, chosen the same way
  --force-export    convert the models even when static/models was built from the same models,
                    options, code and versions (its build key)
  anything else     passed to server.py (below)

HELP
  local py=.venv/bin/python
  [ -x "$py" ] || py=$(command -v python3 || true)
  if [ -n "$py" ] && "$py" server.py --help 2>/dev/null; then
    return 0
  fi
  echo "server.py options: --host HOST, --port PORT (default 8000), --models DIR, --vendor DIR, --debug (python server.py --help)"
}

declare -a CHOICE=() SERVER_ARGS=() FORCE=()
declare -A RUN=()
while [ $# -gt 0 ]; do
  case "$1" in
    --beauty|--keypoints)
      [ $# -ge 2 ] || { echo "error: $1 needs a RUN (a run folder, its model.keras or model.weights.json, a run name, latest or shipped)" >&2; exit 2; }
      RUN[${1#--}]=$2; CHOICE+=("$1" "$2"); shift 2 ;;
    --beauty=*|--keypoints=*)
      opt=${1%%=*}; RUN[${opt#--}]=${1#*=}; CHOICE+=("$opt" "${1#*=}"); shift ;;
    --force-export) FORCE=(--force); shift ;;
    -h|--help) usage; exit 0 ;;
    *) SERVER_ARGS+=("$1"); shift ;;
  esac
done

bash scripts/setup.sh
export TF_CPP_MIN_LOG_LEVEL=3
PY=.venv/bin/python

for kind in beauty keypoints; do
  if [ -n "${RUN[$kind]:-}" ]; then
    $PY -m facepack.runs "$kind" --run "${RUN[$kind]}" --quiet \
      || { $PY -m facepack.runs "$kind" --run "${RUN[$kind]}" || true; exit 2; }
  elif ! $PY -m facepack.runs "$kind" --quiet; then
    printf '\n== No %s model yet: training a small one on synthetic data (a few minutes)\n' "$kind"
    $PY "training/train_$kind.py"
  fi
done

printf '\n== Models for the browser and Node (static/models, dist/npm; skipped when unchanged)\n'
$PY convert/to_tfjs.py --quantize float16 --npm --lock-wait 900 ${CHOICE[@]+"${CHOICE[@]}"} ${FORCE[@]+"${FORCE[@]}"}

printf '\n== Serving the page (Ctrl-C to stop)\n'
exec $PY server.py ${SERVER_ARGS[@]+"${SERVER_ARGS[@]}"}
