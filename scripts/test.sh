#!/usr/bin/env bash
# Set everything up and run the whole test suite (what CI runs: .ci/run calls this).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export TF_CPP_MIN_LOG_LEVEL=3 KERAS_BACKEND=tensorflow
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
